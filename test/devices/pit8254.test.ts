// The 8254 driven through ports 40h-43h and 61h as a guest would, in virtual time. Expected values
// come from the Intel 8254 datasheet: a 1.193182 MHz input clock, the count loaded on the first
// clock pulse after it is written, mode 0's OUT rising N + 1 pulses after the write, mode 2's
// period of N pulses, the read-back status format.
import { describe, it, expect, beforeEach } from 'vitest';
import { PortBus } from '../../emu/devices/port-bus.ts';
import { Pit8254, SystemControlPortB } from '../../emu/devices/pit8254.ts';
import { VirtualClock } from '../../emu/machine/clock.ts';
import type { IrqLine } from '../../emu/devices/irq.ts';

const CH0 = 0x40, CH2 = 0x42, CONTROL = 0x43, PORT_B = 0x61;
const HZ = 1_193_182;
/** When input-clock pulse k (counted from virtual time 0) occurs, in ns. */
const pulseNs = (k: number) => Math.ceil((k * 1e9) / HZ);

let clock: VirtualClock;
let bus: PortBus;
let edges: Array<{ level: boolean; at: number }>;
const outb = (port: number, value: number) => bus.write(port, 1, value);
const inb = (port: number) => bus.read(port, 1);

/** Run the way the machine does: straight to each deadline, firing it, until `ns`. */
function runUntil(ns: number): void {
  while (clock.nextDeadline() <= ns) clock.advanceTo(clock.nextDeadline());
  clock.advanceTo(ns);
}

beforeEach(() => {
  clock = new VirtualClock();
  bus = new PortBus();
  edges = [];
  const irq0: IrqLine = { set: (level) => edges.push({ level, at: clock.now() }) };
  const pit = new Pit8254(clock, { irq0 });
  pit.register(bus);
  new SystemControlPortB(pit).register(bus);
});

describe('8254 PIT', () => {
  it('mode 2 with count 1193 raises IRQ 0 every 1193 / 1.193182 MHz = 999.85 µs', () => {
    runUntil(5000);
    outb(CONTROL, 0x34); // counter 0, LSB then MSB, mode 2, binary
    outb(CH0, 1193 & 0xff);
    outb(CH0, 1193 >> 8);
    edges = [];
    runUntil(5000 + 1e9);
    const rises = edges.filter((e) => e.level).map((e) => e.at);
    // Written at 5000 ns, after pulse 5 (4191 ns): the count loads on pulse 6 and OUT rises N pulses later.
    expect(rises[0]).toBe(pulseNs(6 + 1193));
    for (let i = 1; i < rises.length; i++) {
      expect(Math.abs(rises[i] - rises[i - 1] - (1193 * 1e9) / HZ)).toBeLessThanOrEqual(1);
    }
    expect(rises.length).toBe(1000); // 1 s / 999.85 µs, the first one 1.0007 ms in
    // OUT is low for exactly one pulse before each rise.
    const falls = edges.filter((e) => !e.level).map((e) => e.at);
    expect(falls[0]).toBe(pulseNs(6 + 1192));
  });

  it('schedules virtual-clock callbacks only at OUT transitions', () => {
    let scheduled = 0;
    const schedule = clock.schedule.bind(clock);
    clock.schedule = (at, fire) => { scheduled++; return schedule(at, fire); };
    outb(CONTROL, 0x34);
    outb(CH0, 1193 & 0xff);
    outb(CH0, 1193 >> 8);
    runUntil(1e9);
    // Two transitions per period on counter 0, plus counter 1's 18.2 Hz square wave left by reset.
    expect(scheduled).toBeLessThan(2 * 1001 + 2 * 19 + 10);
  });

  it('latches the count mid-count: the value follows elapsed virtual time', () => {
    outb(CONTROL, 0x34);
    outb(CH0, 50000 & 0xff);
    outb(CH0, 50000 >> 8); // written at t = 0: loaded on pulse 1
    runUntil(10_000_000); // 10 ms: pulse 11931 (10e6 ns * 1.193182e-3 = 11931.82)
    outb(CONTROL, 0x00); // counter latch command, counter 0
    runUntil(20_000_000); // the latch holds the value while time goes on
    const count = inb(CH0) | (inb(CH0) << 8);
    expect(count).toBe(50000 - (11931 - 1)); // 38070
    // Without a latch each byte is read live.
    const live = inb(CH0) | (inb(CH0) << 8);
    expect(live).toBe(50000 - (23863 - 1)); // 20 ms is pulse 23863 (23863.64)
  });

  it('reports status and count through the read-back command', () => {
    outb(CONTROL, 0xb0); // counter 2, LSB then MSB, mode 0, binary
    outb(CONTROL, 0xe8); // read-back: status only (COUNT# = 1), counter 2
    // OUT low (mode 0 after the control word), NULL COUNT (no count yet), RW = 11, mode 0, binary.
    expect(inb(CH2)).toBe(0x70);
    outb(PORT_B, 0x01); // gate 2 high
    outb(CH2, 0x00);
    outb(CH2, 0x10); // 4096
    outb(CONTROL, 0xe8);
    expect(inb(CH2)).toBe(0x70); // written, not yet loaded: NULL COUNT until the next pulse
    runUntil(pulseNs(101)); // 100 pulses after loading on pulse 1
    outb(CONTROL, 0xc8); // read-back: status and count, counter 2
    expect(inb(CH2)).toBe(0x30); // the status comes first, whichever was latched first
    expect(inb(CH2) | (inb(CH2) << 8)).toBe(4096 - 100);
  });

  it('ignores a second latch until the first one is read', () => {
    outb(CONTROL, 0x34);
    outb(CH0, 0xff);
    outb(CH0, 0xff);
    runUntil(pulseNs(11));
    outb(CONTROL, 0x00);
    runUntil(pulseNs(21));
    outb(CONTROL, 0x00);
    expect(inb(CH0) | (inb(CH0) << 8)).toBe(0xffff - 10);
  });

  it('mode 0 raises OUT N + 1 pulses after the count is written', () => {
    outb(CONTROL, 0x30); // counter 0, mode 0
    expect(edges.at(-1)).toEqual({ level: false, at: 0 }); // mode 0 sets OUT low at once
    outb(CH0, 100);
    outb(CH0, 0); // written at t = 0, pulse 0
    runUntil(pulseNs(101) - 1);
    expect(edges.at(-1)!.level).toBe(false);
    runUntil(pulseNs(101));
    expect(edges.at(-1)).toEqual({ level: true, at: pulseNs(101) });
    runUntil(1e9);
    expect(edges.at(-1)!.at).toBe(pulseNs(101)); // one-shot: no further change
    outb(CONTROL, 0x00);
    expect(inb(CH0) | (inb(CH0) << 8)).toBe((100 - (HZ - 1)) & 0xffff); // counting goes on, wrapping
  });

  it('takes count 0 as 65536', () => {
    outb(CONTROL, 0x34);
    outb(CH0, 0);
    outb(CH0, 0);
    edges = [];
    runUntil(1e9);
    expect(edges.filter((e) => e.level).length).toBe(18); // 1.193182 MHz / 65536 = 18.2 Hz
  });

  it('gates counter 2 with port 61h bit 0 and shows OUT 2 in bit 5', () => {
    outb(PORT_B, 0x00); // gate low
    outb(CONTROL, 0xb0); // counter 2, mode 0
    outb(CH2, 1000 & 0xff);
    outb(CH2, 1000 >> 8);
    runUntil(10_000_000);
    expect(inb(PORT_B) & 0x20).toBe(0); // gate low: the count holds, OUT stays low
    outb(CONTROL, 0x80); // latch counter 2
    expect(inb(CH2) | (inb(CH2) << 8)).toBe(1000);
    const start = clock.now(); // pulse 11931; counting resumes with pulse 11932
    outb(PORT_B, 0x01);
    expect(inb(PORT_B) & 0x03).toBe(0x01);
    runUntil(pulseNs(11931 + 999));
    expect(inb(PORT_B) & 0x20).toBe(0);
    runUntil(pulseNs(11931 + 1000));
    expect(inb(PORT_B) & 0x20).toBe(0x20);
    expect(start).toBe(10_000_000);
  });

  it('stops counter 2 and forces OUT high when the gate drops in mode 2', () => {
    outb(PORT_B, 0x01);
    outb(CONTROL, 0xb4); // counter 2, mode 2
    outb(CH2, 10);
    outb(CH2, 0);
    runUntil(pulseNs(10)); // the count reached 1: OUT low for this pulse
    expect(inb(PORT_B) & 0x20).toBe(0);
    outb(PORT_B, 0x00);
    expect(inb(PORT_B) & 0x20).toBe(0x20);
  });

  it('mode 3 gives a square wave: high for ceil(N/2) pulses, low for floor(N/2)', () => {
    outb(PORT_B, 0x01);
    outb(CONTROL, 0xb6); // counter 2, mode 3
    outb(CH2, 9);
    outb(CH2, 0); // loaded on pulse 1
    const out2 = (pulse: number) => { runUntil(pulseNs(pulse)); return (inb(PORT_B) & 0x20) !== 0; };
    const wave = [];
    for (let p = 1; p <= 19; p++) wave.push(out2(p) ? 1 : 0);
    expect(wave.join('')).toBe('1111100001111100001');
  });

  it('reads a mode 3 count decrementing by two', () => {
    outb(PORT_B, 0x01);
    outb(CONTROL, 0xb6);
    outb(CH2, 100);
    outb(CH2, 0);
    runUntil(pulseNs(11)); // 10 pulses after loading
    outb(CONTROL, 0x80);
    expect(inb(CH2) | (inb(CH2) << 8)).toBe(100 - 2 * 10);
  });

  it('honours LSB-only and MSB-only access', () => {
    outb(CONTROL, 0x10); // counter 0, LSB only, mode 0
    outb(CH0, 0x80); // count 0x0080, loaded on pulse 1
    runUntil(pulseNs(17));
    expect(inb(CH0)).toBe(0x80 - 16);
    outb(CONTROL, 0x20); // MSB only, mode 0
    outb(CH0, 0x02); // count 0x0200 written at pulse 17, loaded on pulse 18
    runUntil(pulseNs(18 + 256));
    expect(inb(CH0)).toBe(0x01);
  });

  it('counts in BCD', () => {
    outb(CONTROL, 0x31); // counter 0, mode 0, BCD
    outb(CH0, 0x00);
    outb(CH0, 0x10); // 1000 decimal
    runUntil(pulseNs(1 + 1)); // one decrement
    outb(CONTROL, 0x00);
    expect(inb(CH0) | (inb(CH0) << 8)).toBe(0x0999);
  });

  it('toggles the refresh bit (port 61h bit 4) every 15.085 µs of virtual time', () => {
    const b0 = inb(PORT_B) & 0x10;
    runUntil(15_085);
    expect(inb(PORT_B) & 0x10).toBe(b0 ^ 0x10);
  });
});
