// The MC146818A RTC and CMOS RAM through ports 70h/71h, in virtual time, checked against the
// datasheet (register formats, periodic rates, alarm "don't care" codes, register C semantics) and
// the PC's CMOS memory-size bytes.
import { describe, it, expect, beforeEach } from 'vitest';
import { PortBus } from '../../emu/devices/port-bus.ts';
import { CmosRtc } from '../../emu/devices/cmos-rtc.ts';
import { VirtualClock } from '../../emu/machine/clock.ts';
import type { IrqLine } from '../../emu/devices/irq.ts';

const SECOND = 1e9;
const REG_A = 0x0a, REG_B = 0x0b, REG_C = 0x0c, REG_D = 0x0d;
// Sunday 15 March 2026, 13:45:59 UTC.
const START = new Date(Date.UTC(2026, 2, 15, 13, 45, 59));

let clock: VirtualClock;
let bus: PortBus;
let rtc: CmosRtc;
let irqLevel: boolean;
let irqRises: number;

const cmosRead = (reg: number) => { bus.write(0x70, 1, reg); return bus.read(0x71, 1); };
const cmosWrite = (reg: number, value: number) => { bus.write(0x70, 1, reg); bus.write(0x71, 1, value); };
const time = () => [4, 2, 0].map(cmosRead); // hours, minutes, seconds
const date = () => [6, 7, 8, 9, 0x32].map(cmosRead); // weekday, day, month, year, century

function setup(ramBytes = 256 * 2 ** 20, ramBelow4GiB?: number): void {
  clock = new VirtualClock();
  bus = new PortBus();
  irqLevel = false;
  irqRises = 0;
  const irq8: IrqLine = { set: (level) => { if (level && !irqLevel) irqRises++; irqLevel = level; } };
  rtc = new CmosRtc(clock, { ramBytes, ramBelow4GiB, startTime: START, irq8 });
  rtc.register(bus);
}

/** Run to `ns` deadline by deadline; at each, an interrupt handler reads register C if IRQ 8 is high. */
function runUntil(ns: number, onInterrupt?: (regC: number) => void): void {
  while (clock.nextDeadline() <= ns) {
    clock.advanceTo(clock.nextDeadline());
    if (irqLevel && onInterrupt) onInterrupt(cmosRead(REG_C));
  }
  clock.advanceTo(ns);
}

beforeEach(() => setup());

describe('MC146818A RTC', () => {
  it('reads the start time in BCD, 24-hour mode (the PC default)', () => {
    expect(time()).toEqual([0x13, 0x45, 0x59]);
    expect(date()).toEqual([0x01, 0x15, 0x03, 0x26, 0x20]);
    expect(cmosRead(REG_D)).toBe(0x80); // VRT
  });

  it('advances with virtual time, carrying into minutes', () => {
    runUntil(SECOND - 1);
    expect(time()).toEqual([0x13, 0x45, 0x59]);
    runUntil(SECOND);
    expect(time()).toEqual([0x13, 0x46, 0x00]);
    runUntil(3601 * SECOND);
    expect(time()).toEqual([0x14, 0x46, 0x00]);
  });

  it('reads binary when register B.DM is set, and 12-hour time with bit 7 for PM', () => {
    cmosWrite(REG_B, 0x06); // binary, 24-hour
    expect(time()).toEqual([13, 45, 59]);
    expect(date()).toEqual([1, 15, 3, 26, 0x20]); // the century byte is plain RAM, written in BCD
    cmosWrite(REG_B, 0x04); // binary, 12-hour
    expect(cmosRead(4)).toBe(0x81);
    cmosWrite(REG_B, 0x00); // BCD, 12-hour
    expect(cmosRead(4)).toBe(0x81);
  });

  it('sets the time with SET held, and resumes on the next second boundary', () => {
    runUntil(2.25 * SECOND);
    cmosWrite(REG_B, 0x82); // SET, 24-hour, BCD
    cmosWrite(4, 0x08);
    cmosWrite(2, 0x30);
    cmosWrite(0, 0x00);
    cmosWrite(7, 0x29);
    cmosWrite(8, 0x02);
    cmosWrite(9, 0x28); // 29 February 2028 (a leap year), 08:30:00
    runUntil(3.5 * SECOND); // frozen while SET is held
    expect(time()).toEqual([0x08, 0x30, 0x00]);
    cmosWrite(REG_B, 0x02);
    runUntil(4.5 * SECOND); // one update, at 4 s
    expect(time()).toEqual([0x08, 0x30, 0x01]);
    expect(date().slice(1)).toEqual([0x29, 0x02, 0x28, 0x20]);
    expect(cmosRead(6)).toBe(0x03); // Tuesday
  });

  it('shows UIP during the 244 µs before an update', () => {
    runUntil(0.5 * SECOND);
    expect(cmosRead(REG_A)).toBe(0x26);
    runUntil(SECOND - 200_000);
    expect(cmosRead(REG_A)).toBe(0xa6);
    runUntil(SECOND);
    expect(cmosRead(REG_A)).toBe(0x26);
  });

  it('raises the periodic interrupt at 1024 Hz (rate 6) over one virtual second', () => {
    let interrupts = 0;
    cmosWrite(REG_A, 0x26);
    cmosWrite(REG_B, 0x42); // PIE
    runUntil(SECOND, (c) => { expect(c & 0xc0).toBe(0xc0); interrupts++; });
    expect(interrupts).toBe(1024);
    expect(irqRises).toBe(1024);
  });

  it('runs the periodic interrupt at 2 Hz with rate 15 and not at all with rate 0', () => {
    let interrupts = 0;
    cmosWrite(REG_A, 0x2f);
    cmosWrite(REG_B, 0x42);
    runUntil(5 * SECOND, () => interrupts++);
    expect(interrupts).toBe(10);
    cmosWrite(REG_A, 0x20);
    runUntil(10 * SECOND, () => interrupts++);
    expect(interrupts).toBe(10);
  });

  it('sets the flags without interrupts and clears them when register C is read', () => {
    runUntil(1.1 * SECOND);
    expect(cmosRead(REG_C)).toBe(0x50); // PF (rate 6 runs even with PIE clear) and UF; no IRQF
    expect(cmosRead(REG_C)).toBe(0x00);
    expect(irqRises).toBe(0);
  });

  it('holds IRQ 8 until register C is read', () => {
    cmosWrite(REG_B, 0x12); // UIE
    runUntil(3 * SECOND);
    expect(irqRises).toBe(1); // no read of C: the line stayed high
    expect(cmosRead(REG_C)).toBe(0xd0); // IRQF, PF, UF
    expect(irqLevel).toBe(false);
    runUntil(4 * SECOND);
    expect(irqRises).toBe(2);
  });

  it('raises the update-ended interrupt once per second', () => {
    let interrupts = 0;
    cmosWrite(REG_B, 0x12);
    runUntil(5 * SECOND, (c) => { expect(c & 0x90).toBe(0x90); interrupts++; });
    expect(interrupts).toBe(5);
  });

  it('fires the alarm when hours, minutes and seconds match', () => {
    cmosWrite(1, 0x05);
    cmosWrite(3, 0x46);
    cmosWrite(5, 0x13); // 13:46:05, six seconds after the start
    cmosWrite(REG_B, 0x22); // AIE
    const at: number[] = [];
    runUntil(100 * SECOND, (c) => { expect(c & 0xa0).toBe(0xa0); at.push(clock.now()); });
    expect(at).toEqual([6 * SECOND]);
  });

  it('treats alarm bytes C0h-FFh as "don\'t care"', () => {
    cmosWrite(1, 0x30);
    cmosWrite(3, 0xc0);
    cmosWrite(5, 0xff); // every minute at :30
    cmosWrite(REG_B, 0x22);
    const at: number[] = [];
    runUntil(181 * SECOND, () => at.push(clock.now() / SECOND));
    expect(at).toEqual([31, 91, 151]);
  });

  it('stops with the divider in reset and restarts half a second after release', () => {
    runUntil(0.25 * SECOND);
    cmosWrite(REG_A, 0x66); // DV = 110: reset
    runUntil(10 * SECOND);
    expect(time()).toEqual([0x13, 0x45, 0x59]);
    cmosWrite(REG_A, 0x26);
    runUntil(10.5 * SECOND - 1);
    expect(cmosRead(0)).toBe(0x59);
    runUntil(10.5 * SECOND);
    expect(cmosRead(0)).toBe(0x00);
  });

  it('masks NMI with port 70h bit 7', () => {
    bus.write(0x70, 1, 0x8f);
    expect(rtc.nmiMasked).toBe(true);
    bus.write(0x70, 1, 0x0f);
    expect(rtc.nmiMasked).toBe(false);
  });

  it('keeps CMOS RAM bytes', () => {
    cmosWrite(0x0f, 0x0a); // shutdown status
    cmosWrite(0x7f, 0x5a);
    expect(cmosRead(0x0f)).toBe(0x0a);
    expect(cmosRead(0x7f)).toBe(0x5a);
  });

  it('fills the memory-size bytes for 32 MiB', () => {
    setup(32 * 2 ** 20);
    expect([0x15, 0x16].map(cmosRead)).toEqual([0x80, 0x02]); // 640 KiB
    expect([0x17, 0x18].map(cmosRead)).toEqual([0x00, 0x7c]); // 31744 KiB above 1 MiB
    expect([0x30, 0x31].map(cmosRead)).toEqual([0x00, 0x7c]);
    expect([0x34, 0x35].map(cmosRead)).toEqual([0x00, 0x01]); // 256 blocks of 64 KiB above 16 MiB
    expect([0x5b, 0x5c, 0x5d].map(cmosRead)).toEqual([0, 0, 0]);
  });

  it('fills the memory-size bytes for 8 GiB split at 3 GiB', () => {
    setup(8 * 2 ** 30, 3 * 2 ** 30);
    expect([0x17, 0x18].map(cmosRead)).toEqual([0xff, 0xff]); // capped at 65535 KiB
    expect([0x34, 0x35].map(cmosRead)).toEqual([0x00, 0xbf]); // (3 GiB - 16 MiB) / 64 KiB = 48896
    expect([0x5b, 0x5c, 0x5d].map(cmosRead)).toEqual([0x00, 0x40, 0x01]); // 5 GiB / 64 KiB = 81920
  });
});
