// The 8042 keyboard controller through ports 60h/64h (IBM PC AT Technical Reference command set),
// and the chipset reset control register at CF9h (Intel PIIX4/ICH).
import { describe, it, expect, beforeEach } from 'vitest';
import { PortBus } from '../../emu/devices/port-bus.ts';
import { I8042 } from '../../emu/devices/i8042.ts';
import { SystemReset, type ResetKind } from '../../emu/devices/system-reset.ts';
import type { IrqLine } from '../../emu/devices/irq.ts';

const DATA = 0x60, STATUS = 0x64, COMMAND = 0x64;
const OBF = 0x01, AUX = 0x20;

let bus: PortBus;
let resets: number;
let a20: boolean[];
let irq1: boolean[];
let irq12: boolean[];
const outb = (port: number, value: number) => bus.write(port, 1, value);
const inb = (port: number) => bus.read(port, 1);
const line = (log: boolean[]): IrqLine => ({ set: (level) => { if (level !== (log.at(-1) ?? false)) log.push(level); } });
/** Read every byte waiting in the output buffer, as a driver polling the status register does. */
function drain(): number[] {
  const bytes: number[] = [];
  while (inb(STATUS) & OBF) bytes.push(inb(DATA));
  return bytes;
}

beforeEach(() => {
  bus = new PortBus();
  resets = 0;
  a20 = [];
  irq1 = [];
  irq12 = [];
  const kbc = new I8042({
    irq1: line(irq1), irq12: line(irq12), onReset: () => resets++, onA20Change: (on) => a20.push(on),
  });
  kbc.register(bus);
});

describe('i8042 keyboard controller', () => {
  it('starts with an empty output buffer and the keyboard not inhibited', () => {
    expect(inb(STATUS) & (OBF | 0x10)).toBe(0x10);
  });

  it('passes the self-test (AAh -> 55h) and the interface test (ABh -> 00h)', () => {
    outb(COMMAND, 0xaa);
    expect(inb(STATUS) & OBF).toBe(OBF);
    expect(inb(DATA)).toBe(0x55);
    expect(inb(STATUS) & OBF).toBe(0);
    expect(inb(STATUS) & 0x04).toBe(0x04); // system flag
    outb(COMMAND, 0xab);
    expect(drain()).toEqual([0x00]);
  });

  it('reads and writes the command byte (20h / 60h)', () => {
    outb(COMMAND, 0x20);
    expect(drain()).toEqual([0x65]);
    outb(COMMAND, 0x60);
    outb(DATA, 0x00); // no interrupts, no system flag
    expect(inb(STATUS) & 0x08).toBe(0); // the last write went to the data port
    outb(COMMAND, 0x20);
    expect(drain()).toEqual([0x00]);
    expect(inb(STATUS) & 0x04).toBe(0); // the status system flag follows command byte bit 2
  });

  it('disables and enables the keyboard and aux interfaces in the command byte', () => {
    const commandByte = () => { outb(COMMAND, 0x20); return drain()[0]; };
    outb(COMMAND, 0xad);
    expect(commandByte() & 0x10).toBe(0x10);
    outb(COMMAND, 0xae);
    expect(commandByte() & 0x10).toBe(0);
    outb(COMMAND, 0xa8);
    expect(commandByte() & 0x20).toBe(0);
    outb(COMMAND, 0xa7);
    expect(commandByte() & 0x20).toBe(0x20);
  });

  it('answers keyboard reset with ACK then the BAT result, raising IRQ 1 for each byte', () => {
    outb(DATA, 0xff);
    expect(irq1).toEqual([true]);
    expect(inb(DATA)).toBe(0xfa);
    expect(irq1).toEqual([true, false, true]); // the next byte makes a new edge
    expect(inb(DATA)).toBe(0xaa);
    expect(irq1).toEqual([true, false, true, false]);
  });

  it('raises no IRQ 1 when command byte bit 0 is clear', () => {
    outb(COMMAND, 0x60);
    outb(DATA, 0x44);
    outb(DATA, 0xf4);
    expect(irq1).toEqual([]);
    expect(drain()).toEqual([0xfa]);
  });

  it('acknowledges keyboard commands and their parameter bytes', () => {
    outb(DATA, 0xed); outb(DATA, 0x07); // LEDs
    outb(DATA, 0xf3); outb(DATA, 0x20); // typematic rate
    outb(DATA, 0xf0); outb(DATA, 0x00); // which scan code set?
    outb(DATA, 0xf2); // identify: MF2 keyboard
    outb(DATA, 0xee); // echo
    outb(DATA, 0x01); // not a command: resend
    expect(drain()).toEqual([0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0x02, 0xfa, 0xab, 0x83, 0xee, 0xfe]);
  });

  it('loops a byte back through the aux output buffer with IRQ 12 (D3h)', () => {
    outb(COMMAND, 0x60);
    outb(DATA, 0x47); // keyboard and aux interrupts
    outb(COMMAND, 0xd3);
    outb(DATA, 0x5a);
    expect(inb(STATUS) & (OBF | AUX)).toBe(OBF | AUX);
    expect(irq12).toEqual([true]);
    expect(irq1).toEqual([]);
    expect(inb(DATA)).toBe(0x5a);
    expect(irq12).toEqual([true, false]);
  });

  it('reads and writes the output port: A20 on bit 1, reset on bit 0', () => {
    outb(COMMAND, 0xd0);
    expect(drain()[0] & 0x03).toBe(0x03); // not in reset, A20 enabled
    outb(COMMAND, 0xd1);
    outb(DATA, 0x01); // A20 off
    expect(a20).toEqual([false]);
    outb(COMMAND, 0xd0);
    expect(drain()[0] & 0x03).toBe(0x01);
    outb(COMMAND, 0xdf); // enable A20
    expect(a20).toEqual([false, true]);
    expect(resets).toBe(0);
    outb(COMMAND, 0xd1);
    outb(DATA, 0x02); // reset line low
    expect(resets).toBe(1);
  });

  it('resets the system on FEh (pulse output port bit 0), not on FFh', () => {
    outb(COMMAND, 0xff);
    expect(resets).toBe(0);
    outb(COMMAND, 0xfe);
    expect(resets).toBe(1);
  });
});

describe('reset control register (CF9h)', () => {
  let kinds: ResetKind[];
  beforeEach(() => {
    kinds = [];
    new SystemReset((kind) => kinds.push(kind)).register(bus);
  });

  it('resets when RST_CPU is written, of the kind SYS_RST and FULL_RST select', () => {
    outb(0xcf9, 0x02);
    expect(kinds).toEqual([]);
    expect(inb(0xcf9)).toBe(0x02);
    outb(0xcf9, 0x06);
    outb(0xcf9, 0x04);
    outb(0xcf9, 0x0e);
    expect(kinds).toEqual(['hard', 'soft', 'full']);
    expect(inb(0xcf9)).toBe(0x0a); // bits 1 and 3 read back, RST_CPU does not
  });
});
