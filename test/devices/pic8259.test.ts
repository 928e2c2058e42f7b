// The 8259A pair driven through its I/O ports the way Linux and PC firmware program it, checked
// against the Intel 8259A datasheet (ICW/OCW formats, priority resolution, INTA sequence).
import { describe, it, expect, beforeEach } from 'vitest';
import { PortBus } from '../../emu/devices/port-bus.ts';
import { Pic8259Pair } from '../../emu/devices/pic8259.ts';

const MASTER_CMD = 0x20, MASTER_DATA = 0x21, SLAVE_CMD = 0xa0, SLAVE_DATA = 0xa1, ELCR1 = 0x4d0, ELCR2 = 0x4d1;
const OCW3_READ_IRR = 0x0a, OCW3_READ_ISR = 0x0b, OCW3_POLL = 0x0c;
const EOI = 0x20, SPECIFIC_EOI = 0x60, ROTATE_ON_EOI = 0xa0, SET_PRIORITY = 0xc0;

let pic: Pic8259Pair;
let bus: PortBus;
let outputs: boolean[];
const outb = (port: number, value: number) => bus.write(port, 1, value);
const inb = (port: number) => bus.read(port, 1);
const isr = (cmd: number) => { outb(cmd, OCW3_READ_ISR); return inb(cmd); };
const irr = (cmd: number) => { outb(cmd, OCW3_READ_IRR); return inb(cmd); };

/** Linux's init_8259A: ICW1 edge/cascade/ICW4, ICW2 vector base, ICW3 wiring, ICW4 8086 mode. */
function initLikeLinux(icw4 = 0x01, icw1 = 0x11): void {
  outb(MASTER_CMD, icw1); outb(MASTER_DATA, 0x20); outb(MASTER_DATA, 0x04); outb(MASTER_DATA, icw4);
  outb(SLAVE_CMD, icw1); outb(SLAVE_DATA, 0x28); outb(SLAVE_DATA, 0x02); outb(SLAVE_DATA, icw4);
}

beforeEach(() => {
  pic = new Pic8259Pair();
  bus = new PortBus();
  pic.register(bus);
  outputs = [];
  pic.onOutputChange = (level) => outputs.push(level);
  initLikeLinux();
});

describe('8259A pair', () => {
  it('delivers IRQ 3 as vector base + 3 and keeps it in service until EOI', () => {
    pic.setIrq(3, true);
    expect(pic.interruptPending).toBe(true);
    expect(outputs).toEqual([true]);
    expect(pic.acknowledge()).toBe(0x23);
    expect(outputs).toEqual([true, false]); // ISR 3 blocks further requests of its level
    expect(isr(MASTER_CMD)).toBe(0x08);
    expect(irr(MASTER_CMD)).toBe(0x00); // edge mode: INTA clears the IRR bit
    outb(MASTER_CMD, EOI);
    expect(isr(MASTER_CMD)).toBe(0x00);
    expect(pic.interruptPending).toBe(false); // the line is still high, but no new edge came
  });

  it('reads back the mask written with OCW1 (Linux probes the PIC this way)', () => {
    outb(MASTER_DATA, 0xff);
    expect(inb(MASTER_DATA)).toBe(0xff);
    outb(SLAVE_DATA, 0xa5);
    expect(inb(SLAVE_DATA)).toBe(0xa5);
  });

  it('resolves priority: the lower IR first, a higher one nests, a lower one waits for the EOI', () => {
    pic.setIrq(5, true);
    pic.setIrq(1, true);
    expect(pic.acknowledge()).toBe(0x21);
    expect(pic.interruptPending).toBe(false); // IR5 is below the in-service IR1
    outb(MASTER_CMD, EOI);
    expect(pic.acknowledge()).toBe(0x25);
    pic.setIrq(0, true); // IR0 outranks the in-service IR5
    expect(pic.acknowledge()).toBe(0x20);
    expect(isr(MASTER_CMD)).toBe(0x21);
    outb(MASTER_CMD, EOI); // non-specific EOI clears the highest in-service level, IR0
    expect(isr(MASTER_CMD)).toBe(0x20);
  });

  it('masks with OCW1 without losing the request', () => {
    outb(MASTER_DATA, 0x08);
    pic.setIrq(3, true);
    expect(pic.interruptPending).toBe(false);
    expect(irr(MASTER_CMD)).toBe(0x08);
    outb(MASTER_DATA, 0x00);
    expect(pic.interruptPending).toBe(true);
    expect(pic.acknowledge()).toBe(0x23);
  });

  it('cascades the slave through IR2: vector 0x28 + n, master ISR bit 2 and slave ISR bit n', () => {
    pic.setIrq(10, true);
    expect(pic.interruptPending).toBe(true);
    expect(pic.acknowledge()).toBe(0x2a);
    expect(isr(MASTER_CMD)).toBe(0x04);
    expect(isr(SLAVE_CMD)).toBe(0x04);
    outb(SLAVE_CMD, SPECIFIC_EOI | 2); // Linux: specific EOI to the slave, then to the master's IR2
    outb(MASTER_CMD, SPECIFIC_EOI | 2);
    expect(isr(SLAVE_CMD)).toBe(0);
    expect(isr(MASTER_CMD)).toBe(0);
  });

  it('blocks a second slave request while the master has IR2 in service (fully nested mode)', () => {
    pic.setIrq(12, true);
    expect(pic.acknowledge()).toBe(0x2c);
    pic.setIrq(9, true); // higher priority on the slave, but the master's IR2 is in service
    expect(pic.interruptPending).toBe(false);
    outb(SLAVE_CMD, EOI);
    outb(MASTER_CMD, EOI);
    expect(pic.acknowledge()).toBe(0x29);
  });

  it('lets the slave nest in special fully nested mode (ICW4.SFNM)', () => {
    initLikeLinux(0x11);
    pic.setIrq(12, true);
    expect(pic.acknowledge()).toBe(0x2c);
    pic.setIrq(9, true);
    expect(pic.interruptPending).toBe(true);
    expect(pic.acknowledge()).toBe(0x29);
  });

  it('answers IR7 without setting ISR when the request vanished before INTA', () => {
    pic.setIrq(3, true);
    expect(outputs).toEqual([true]); // the CPU saw INT...
    pic.setIrq(3, false); // ...but the edge-triggered request went away before the INTA cycle
    expect(pic.acknowledge()).toBe(0x27);
    expect(isr(MASTER_CMD)).toBe(0x00);
    expect(irr(MASTER_CMD)).toBe(0x00);
  });

  it('answers IR7 when the request was masked between INT and INTA', () => {
    pic.setIrq(4, true);
    outb(MASTER_DATA, 0x10);
    expect(pic.acknowledge()).toBe(0x27);
    expect(isr(MASTER_CMD)).toBe(0x00);
  });

  it('needs a new rising edge in edge mode', () => {
    pic.setIrq(6, true);
    expect(pic.acknowledge()).toBe(0x26);
    outb(MASTER_CMD, EOI);
    pic.setIrq(6, true); // no change of level
    expect(pic.interruptPending).toBe(false);
    pic.setIrq(6, false);
    pic.setIrq(6, true);
    expect(pic.acknowledge()).toBe(0x26);
  });

  it('keeps IRR set while a level-triggered (ELCR) line is high', () => {
    outb(ELCR2, 0x08); // IRQ 11 level triggered
    expect(inb(ELCR2)).toBe(0x08);
    pic.setIrq(11, true);
    expect(pic.acknowledge()).toBe(0x2b);
    expect(irr(SLAVE_CMD)).toBe(0x08);
    outb(SLAVE_CMD, EOI);
    outb(MASTER_CMD, EOI);
    expect(pic.acknowledge()).toBe(0x2b); // still requesting: serviced again
    outb(SLAVE_CMD, EOI);
    outb(MASTER_CMD, EOI);
    pic.setIrq(11, false);
    expect(irr(SLAVE_CMD)).toBe(0x00);
    expect(pic.interruptPending).toBe(false);
  });

  it('forces the ELCR bits of IRQ 0, 1, 2, 8 and 13 to 0 (edge)', () => {
    outb(ELCR1, 0xff);
    outb(ELCR2, 0xff);
    expect(inb(ELCR1)).toBe(0xf8);
    expect(inb(ELCR2)).toBe(0xde);
  });

  it('makes every input level triggered with ICW1.LTIM', () => {
    initLikeLinux(0x01, 0x19);
    pic.setIrq(4, true);
    expect(pic.acknowledge()).toBe(0x24);
    expect(irr(MASTER_CMD)).toBe(0x10);
  });

  it('sets no ISR bit in automatic EOI mode', () => {
    initLikeLinux(0x03);
    pic.setIrq(3, true);
    expect(pic.acknowledge()).toBe(0x23);
    expect(isr(MASTER_CMD)).toBe(0x00);
    pic.setIrq(5, true); // nothing in service blocks it
    expect(pic.acknowledge()).toBe(0x25);
  });

  it('rotates priorities with OCW2 set-priority and rotate-on-EOI', () => {
    outb(MASTER_CMD, SET_PRIORITY | 4); // IR4 lowest: order 5 6 7 0 1 3 4
    pic.setIrq(1, true);
    pic.setIrq(6, true);
    expect(pic.acknowledge()).toBe(0x26);
    outb(MASTER_CMD, ROTATE_ON_EOI); // IR6 becomes lowest: order 7 0 1 3 4 5 6
    pic.setIrq(5, true);
    expect(pic.acknowledge()).toBe(0x21);
    outb(MASTER_CMD, ROTATE_ON_EOI); // IR1 lowest: order 2 3 4 5 6 7 0 1
    pic.setIrq(0, true);
    expect(pic.acknowledge()).toBe(0x25); // IR5 now outranks IR0
  });

  it('answers a poll command with 80h | IR and acknowledges it', () => {
    pic.setIrq(3, true);
    outb(MASTER_CMD, OCW3_POLL);
    expect(inb(MASTER_CMD)).toBe(0x83);
    expect(isr(MASTER_CMD)).toBe(0x08);
    outb(MASTER_CMD, OCW3_POLL);
    expect(inb(MASTER_CMD)).toBe(0x00); // nothing pending
  });

  it('lets lower levels through a masked in-service level in special mask mode', () => {
    pic.setIrq(3, true);
    expect(pic.acknowledge()).toBe(0x23);
    pic.setIrq(5, true);
    expect(pic.interruptPending).toBe(false);
    outb(MASTER_CMD, 0x68); // OCW3: ESMM | SMM
    outb(MASTER_DATA, 0x08); // mask the in-service IR3
    expect(pic.acknowledge()).toBe(0x25);
    outb(MASTER_CMD, 0x48); // leave special mask mode
    outb(MASTER_DATA, 0x00);
    expect(isr(MASTER_CMD)).toBe(0x28);
  });

  it('ICW1 clears the mask and restarts the edge detector', () => {
    outb(MASTER_DATA, 0xff);
    pic.setIrq(3, true);
    initLikeLinux();
    expect(inb(MASTER_DATA)).toBe(0x00);
    expect(pic.interruptPending).toBe(false); // the line is high but needs a new edge
  });
});
