// Intel 8254 programmable interval timer (Intel 8254 datasheet, order no. 231164) and the AT's
// system control port B (port 61h, IBM PC AT Technical Reference, "System Control Port B").
// Counter 0 drives IRQ 0, counter 1 once paced DRAM refresh, counter 2 is gated by port 61h bit 0
// and feeds the speaker; its OUT is readable in port 61h bit 5.
//
// The counters are never ticked: each one remembers the input-clock tick at which its counting
// element was loaded, and its count and OUT are functions of the ticks elapsed since then, computed
// from virtual time. Virtual-clock callbacks are scheduled only for OUT transitions.
import type { PortBus, PortDevice } from './port-bus.ts';
import type { IrqLine } from './irq.ts';
import type { TimerHandle, VirtualClock } from '../machine/clock.ts';

export const PIT_PORT = 0x40; // counters 0-2 at 0x40-0x42, control word at 0x43
export const PIT_CONTROL_PORT = 0x43;
export const SYSTEM_CONTROL_PORT_B = 0x61;
/** The PC's 8254 input clock: 14.31818 MHz / 12. */
export const PIT_HZ = 1_193_182;
const NS_PER_S = 1_000_000_000;

/** Ticks of an `hz` clock (tick 0 at time 0) that have occurred by virtual time `ns`. Computed in
 *  whole seconds plus a remainder so the products stay exact in a double. */
export function clockTicksAt(ns: number, hz: number): number {
  const seconds = Math.floor(ns / NS_PER_S);
  return seconds * hz + Math.floor(((ns - seconds * NS_PER_S) * hz) / NS_PER_S);
}

/** The virtual time (ns, rounded up) at which tick `tick` of an `hz` clock occurs. */
export function clockTickTime(tick: number, hz: number): number {
  const seconds = Math.floor(tick / hz);
  return seconds * NS_PER_S + Math.ceil(((tick - seconds * hz) * NS_PER_S) / hz);
}

/** Control word fields (datasheet Figure 8). */
const CW_BCD = 0x01;
const CW_READ_BACK = 3; // SC1 SC0 = 11
const RB_NO_COUNT = 0x20, RB_NO_STATUS = 0x10;
const STATUS_OUT = 0x80, STATUS_NULL_COUNT = 0x40;

const enum Access { Latch = 0, Lsb = 1, Msb = 2, LsbMsb = 3 }

/** OUT and count as functions of `e`, the ticks elapsed since the counting element was loaded with
 *  `n` (e = 0 on the loading clock pulse, -1 between the count write or trigger and that pulse); and
 *  the next e at which OUT changes. */
interface ModeBehaviour {
  /** OUT from the control word write until a count is loaded (or, in modes 1 and 5, triggered). */
  readonly outBeforeLoad: boolean;
  /** Counting is started by a rising GATE edge (modes 1, 5) rather than by writing the count. */
  readonly gateTriggered: boolean;
  /** GATE low suspends counting (modes 0, 4); in modes 2 and 3 it forces OUT high and reloads on the rising edge. */
  readonly gatePauses: boolean;
  /** A count written while counting takes effect at the end of the current period (modes 2, 3). */
  readonly periodic: boolean;
  out(e: number, n: number): boolean;
  /** The count element's value (before wrap-around to the count modulus). */
  count(e: number, n: number): number;
  /** The smallest e' > e at which out(e') differs from out(e), or null if OUT never changes again. */
  nextChange(e: number, n: number): number | null;
}

/** Modes 0, 1: OUT low while counting down from n, high from the terminal count on (datasheet
 *  "Mode 0": with a count of N, OUT goes high N + 1 clock pulses after the count is written, the
 *  first pulse being the one that loads it). */
const terminalCountMode = (gateTriggered: boolean): ModeBehaviour => ({
  outBeforeLoad: gateTriggered, // mode 0: low from the control word on; mode 1: high until triggered
  gateTriggered,
  gatePauses: !gateTriggered,
  periodic: false,
  out: (e, n) => e >= n,
  count: (e, n) => n - e,
  nextChange: (e, n) => (e < n ? n : null),
});

/** Modes 4, 5: OUT high, low for one clock when the count reaches zero, then high again. */
const strobeMode = (gateTriggered: boolean): ModeBehaviour => ({
  outBeforeLoad: true,
  gateTriggered,
  gatePauses: !gateTriggered,
  periodic: false,
  out: (e, n) => e !== n,
  count: (e, n) => n - e,
  nextChange: (e, n) => (e < n ? n : e === n ? n + 1 : null),
});

/** Mode 2, rate generator: the count runs n..1; OUT is low for the one clock at count 1, then the
 *  count reloads. A period of n clocks, the first rising edge n + 1 clocks after the count write. */
const rateGenerator: ModeBehaviour = {
  outBeforeLoad: true,
  gateTriggered: false,
  gatePauses: false,
  periodic: true,
  out: (e, n) => n < 2 || e < 0 || e % n !== n - 1, // a count of 1 is illegal in mode 2
  count: (e, n) => n - (e % n),
  nextChange: (e, n) => {
    if (n < 2) return null;
    if (e < 0) return n - 1;
    const phase = e % n;
    return phase < n - 1 ? e + (n - 1 - phase) : e + 1;
  },
};

/** Mode 3, square wave: OUT high for ceil(n/2) clocks, low for floor(n/2). The count decrements by
 *  two; an odd count loads n - 1 (datasheet "Mode 3", odd counts). */
const squareWave: ModeBehaviour = {
  outBeforeLoad: true,
  gateTriggered: false,
  gatePauses: false,
  periodic: true,
  out: (e, n) => n < 2 || e < 0 || e % n < Math.ceil(n / 2),
  count: (e, n) => {
    const high = Math.ceil(n / 2);
    const phase = e % n;
    const halfElapsed = phase < high ? phase : phase - high;
    return (n & ~1) - 2 * halfElapsed;
  },
  nextChange: (e, n) => {
    if (n < 2) return null; // a count of 1 is illegal in mode 3
    const high = Math.ceil(n / 2);
    if (e < 0) return high;
    const phase = e % n;
    return phase < high ? e + (high - phase) : e + (n - phase);
  },
};

/** Modes 6 and 7 are aliases of modes 2 and 3 (the datasheet's X10, X11). */
const MODES: readonly ModeBehaviour[] = [
  terminalCountMode(false), terminalCountMode(true), rateGenerator, squareWave, strobeMode(false), strobeMode(true),
];

/** One counter: control logic, count register, counting element, output latch. */
class PitCounter {
  private mode = 0;
  private access = Access.LsbMsb;
  private bcd = false;
  private behaviour: ModeBehaviour = MODES[0];
  /** The count register (CR) as written: 16 bits, null until a full count has been written. */
  private countRegister: number | null = null;
  private writeMsbNext = false;
  private readMsbNext = false;
  private lsbWritten = 0;
  /** A latched status byte, read before a latched count (datasheet "Read-Back Command"). */
  private latchedStatus: number | null = null;
  /** Bytes of a latched count not yet read, first one first. */
  private latchedCount: number[] = [];
  /** The counting element's start value (1..65536, or 1..10000 in BCD). */
  private n = 0x10000;
  /** The tick at which the counting element was loaded with `n` (Infinity: not counting). */
  private loadTick = Infinity;
  /** While GATE suspends counting (modes 0, 4): the count's progress (elapsed ticks) it holds. */
  private frozenElapsed: number | null = null;
  /** A count written while a periodic mode counts: loaded when the current period ends. */
  private pendingReload: { tick: number; n: number } | null = null;
  /** The written count has not reached the counting element before this tick (status NULL COUNT). */
  private nullCountUntil = Infinity;
  private out = false;
  private timer: TimerHandle | null = null;

  constructor(
    private readonly clock: VirtualClock,
    private gate: boolean,
    private readonly onOut: (level: boolean) => void,
  ) {}

  private tickNow(): number { return clockTicksAt(this.clock.now(), PIT_HZ); }
  private get modulus(): number { return this.bcd ? 10000 : 0x10000; }

  /** Control word for this counter (not a latch command). */
  program(mode: number, access: Access, bcd: boolean): void {
    this.mode = mode > 5 ? mode - 4 : mode;
    this.behaviour = MODES[this.mode];
    this.access = access;
    this.bcd = bcd;
    this.countRegister = null;
    this.writeMsbNext = this.readMsbNext = false;
    this.latchedStatus = null;
    this.latchedCount = [];
    this.loadTick = Infinity;
    this.frozenElapsed = null;
    this.pendingReload = null;
    this.nullCountUntil = Infinity;
    this.refresh(this.tickNow());
  }

  writeCount(byte: number): void {
    if (this.access === Access.LsbMsb && !this.writeMsbNext) {
      this.lsbWritten = byte;
      this.writeMsbNext = true;
      // Mode 0: writing the first byte stops counting and sets OUT low at once.
      if (this.mode === 0) { this.loadTick = Infinity; this.frozenElapsed = null; this.refresh(this.tickNow()); }
      return;
    }
    this.writeMsbNext = false;
    const value = this.access === Access.Lsb ? byte : this.access === Access.Msb ? byte << 8 : this.lsbWritten | (byte << 8);
    this.countRegister = value;
    this.countWritten(this.tickNow());
  }

  /** The count register as a counting-element start value: 0 is the maximum (2^16, or 10^4 in BCD). */
  private decodedCount(): number {
    const raw = this.countRegister ?? 0;
    const n = this.bcd ? fromBcd(raw) : raw;
    return n === 0 ? this.modulus : n;
  }

  private countWritten(now: number): void {
    const b = this.behaviour;
    const n = this.decodedCount();
    if (b.gateTriggered || (b.periodic && !this.gate)) {
      this.nullCountUntil = Infinity; // loaded by the next rising GATE edge
    } else if (b.periodic && this.loadTick <= now) {
      // Modes 2 and 3: the current period is not disturbed; the new count loads when it ends. (Mode 3
      // on the chip reloads at the end of the current half-cycle; the period end keeps OUT's phase.)
      const periodEnd = this.loadTick + (Math.floor((now - this.loadTick) / this.n) + 1) * this.n;
      this.pendingReload = { tick: periodEnd, n };
      this.nullCountUntil = periodEnd;
    } else {
      this.load(n, now + 1); // on the next clock pulse
      if (b.gatePauses && !this.gate) this.frozenElapsed = 0; // loaded, but GATE low holds the count
    }
    this.refresh(now);
  }

  private load(n: number, tick: number): void {
    this.n = n;
    this.loadTick = tick;
    this.frozenElapsed = null;
    this.pendingReload = null;
    this.nullCountUntil = tick;
  }

  setGate(level: boolean): void {
    if (level === this.gate) return;
    this.gate = level;
    const now = this.tickNow();
    this.applyPendingReload(now);
    const b = this.behaviour;
    if (b.gatePauses) {
      // Counting resumes with the next clock pulse, and never before the count has been loaded.
      if (level && this.frozenElapsed !== null) {
        this.loadTick = Math.max(this.loadTick, now - this.frozenElapsed);
        this.frozenElapsed = null;
      } else if (!level && this.loadTick !== Infinity) {
        this.frozenElapsed = Math.max(now - this.loadTick, 0);
      }
    } else if (level && this.countRegister !== null) {
      this.load(this.decodedCount(), now + 1); // trigger (modes 1, 5) or restart (modes 2, 3) on the next clock
    } else if (!level && b.periodic) {
      this.loadTick = Infinity; // counting stops, OUT goes high; GATE rising reloads the count register
      this.pendingReload = null;
    }
    this.refresh(now);
  }

  private applyPendingReload(tick: number): void {
    if (this.pendingReload && tick >= this.pendingReload.tick) {
      const { n, tick: at } = this.pendingReload;
      this.load(n, at);
    }
  }

  private elapsed(tick: number): number {
    return this.frozenElapsed ?? tick - this.loadTick; // -Infinity when not counting
  }

  outAt(tick: number): boolean {
    if (this.behaviour.periodic && !this.gate) return true;
    if (this.loadTick === Infinity && this.frozenElapsed === null) return this.behaviour.outBeforeLoad;
    return this.behaviour.out(this.elapsed(tick), this.n);
  }

  private countAt(tick: number): number {
    const e = Math.max(this.elapsed(tick), 0);
    const m = this.modulus;
    const value = (((this.behaviour.count(e, this.n) % m) + m) % m);
    return this.bcd ? toBcd(value) : value;
  }

  /** Bring OUT up to date at `tick` and schedule a callback for its next transition. */
  private refresh(tick: number): void {
    this.applyPendingReload(tick);
    this.drive(this.outAt(tick));
    this.clock.cancel(this.timer);
    this.timer = null;
    const next = this.nextEventTick(tick);
    if (next !== null) this.timer = this.clock.schedule(clockTickTime(next, PIT_HZ), () => this.refresh(next));
  }

  private nextEventTick(tick: number): number | null {
    if (this.frozenElapsed !== null || this.loadTick === Infinity) return null;
    const e = tick - this.loadTick;
    const change = this.behaviour.nextChange(e, this.n);
    let next = change === null ? null : this.loadTick + change;
    if (this.pendingReload && (next === null || this.pendingReload.tick <= next)) next = this.pendingReload.tick;
    return next;
  }

  private drive(level: boolean): void {
    if (level === this.out) return;
    this.out = level;
    this.onOut(level);
  }

  latchCount(): void {
    if (this.latchedCount.length) return; // a second latch before the first is read is ignored
    const now = this.tickNow();
    this.applyPendingReload(now);
    this.latchedCount = this.countBytes(this.countAt(now));
  }

  /** Status byte (datasheet Figure 11): OUT, NULL COUNT, RW1 RW0, M2-M0, BCD. */
  latchStatus(): void {
    if (this.latchedStatus !== null) return;
    const now = this.tickNow();
    this.applyPendingReload(now);
    this.latchedStatus = (this.outAt(now) ? STATUS_OUT : 0) | (now < this.nullCountUntil ? STATUS_NULL_COUNT : 0) |
      (this.access << 4) | (this.mode << 1) | (this.bcd ? CW_BCD : 0);
  }

  private countBytes(count: number): number[] {
    switch (this.access) {
      case Access.Lsb: return [count & 0xff];
      case Access.Msb: return [count >> 8];
      default: return [count & 0xff, count >> 8];
    }
  }

  read(): number {
    if (this.latchedStatus !== null) {
      const status = this.latchedStatus;
      this.latchedStatus = null;
      return status;
    }
    if (this.latchedCount.length) return this.latchedCount.shift()!;
    const count = this.countAt(this.tickNow());
    if (this.access !== Access.LsbMsb) return this.countBytes(count)[0];
    this.readMsbNext = !this.readMsbNext;
    return this.readMsbNext ? count & 0xff : count >> 8;
  }
}

function fromBcd(v: number): number {
  return ((v >> 12) & 0xf) * 1000 + ((v >> 8) & 0xf) * 100 + ((v >> 4) & 0xf) * 10 + (v & 0xf);
}
function toBcd(v: number): number {
  return ((Math.floor(v / 1000) % 10) << 12) | ((Math.floor(v / 100) % 10) << 8) | ((Math.floor(v / 10) % 10) << 4) | (v % 10);
}

export interface Pit8254Options {
  /** IRQ 0: counter 0's OUT. */
  irq0?: IrqLine;
}

export class Pit8254 implements PortDevice {
  readonly name = 'pit8254';
  private readonly counters: PitCounter[];

  constructor(readonly clock: VirtualClock, options: Pit8254Options = {}) {
    const irq0 = options.irq0;
    // GATE 0 and 1 are tied high on the PC; GATE 2 comes from port 61h bit 0 (low at reset).
    this.counters = [0, 1, 2].map((i) => new PitCounter(clock, i !== 2, (level) => { if (i === 0) irq0?.set(level); }));
    this.reset();
  }

  /** The state the PC BIOS leaves (and QEMU resets to): every counter in mode 3, count 0 (65536). */
  reset(): void {
    for (let i = 0; i < 3; i++) {
      this.write(PIT_CONTROL_PORT, 1, (i << 6) | (Access.LsbMsb << 4) | (3 << 1));
      this.write(PIT_PORT + i, 1, 0);
      this.write(PIT_PORT + i, 1, 0);
    }
  }

  register(bus: PortBus): void { bus.register(PIT_PORT, 4, this); }

  read(port: number): number {
    const i = port - PIT_PORT;
    return i >= 0 && i < 3 ? this.counters[i].read() : 0xff; // the control word register cannot be read
  }

  write(port: number, _size: number, value: number): void {
    value &= 0xff;
    const i = port - PIT_PORT;
    if (i >= 0 && i < 3) { this.counters[i].writeCount(value); return; }
    if (port !== PIT_CONTROL_PORT) return;
    const select = value >> 6;
    if (select === CW_READ_BACK) { this.readBack(value); return; }
    const access = ((value >> 4) & 3) as Access;
    if (access === Access.Latch) this.counters[select].latchCount();
    else this.counters[select].program((value >> 1) & 7, access, (value & CW_BCD) !== 0);
  }

  /** Read-back command (datasheet Figure 10): bits 3-1 select counters 2-1-0; COUNT and STATUS are
   *  active low. */
  private readBack(value: number): void {
    for (let i = 0; i < 3; i++) {
      if (!(value & (2 << i))) continue;
      if (!(value & RB_NO_COUNT)) this.counters[i].latchCount();
      if (!(value & RB_NO_STATUS)) this.counters[i].latchStatus();
    }
  }

  setGate(counter: number, level: boolean): void { this.counters[counter].setGate(level); }

  /** OUT of `counter` now. */
  out(counter: number): boolean { return this.counters[counter].outAt(clockTicksAt(this.clock.now(), PIT_HZ)); }
}

/** Port 61h. Write: bit 0 GATE 2, bit 1 speaker data enable, bits 2-3 parity/channel-check enables.
 *  Read: those bits, bit 4 the refresh request toggle (every 15.085 µs, counter 1's period as the
 *  BIOS programs it), bit 5 OUT 2, bits 6-7 channel-check/parity errors (never). */
export class SystemControlPortB implements PortDevice {
  readonly name = 'system-control-port-b';
  private value = 0;
  static readonly REFRESH_PERIOD_NS = 15_085;

  constructor(private readonly pit: Pit8254) {}

  register(bus: PortBus): void { bus.register(SYSTEM_CONTROL_PORT_B, 1, this); }

  /** Speaker output enabled (bit 1): the speaker sounds counter 2's OUT. */
  get speakerEnabled(): boolean { return (this.value & 0x02) !== 0; }

  read(): number {
    const refresh = Math.floor(this.pit.clock.now() / SystemControlPortB.REFRESH_PERIOD_NS) & 1;
    return (this.value & 0x0f) | (refresh << 4) | (this.pit.out(2) ? 0x20 : 0);
  }

  write(_port: number, _size: number, value: number): void {
    this.value = value & 0x0f;
    this.pit.setGate(2, (value & 0x01) !== 0);
  }
}
