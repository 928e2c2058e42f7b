// Motorola MC146818A real-time clock and its 128 bytes of CMOS RAM (MC146818A datasheet; the PC's
// use of the RAM per the IBM PC AT Technical Reference and QEMU/SeaBIOS). Port 70h selects a
// register (bit 7 masks NMI), port 71h reads or writes it.
//
// The clock runs in virtual time from a fixed start date, so runs are reproducible. The time and
// calendar registers hold their values at a known second boundary, as written (a guest setting the
// date field by field passes through invalid dates); the registers are computed from them and the
// whole seconds elapsed since that boundary when read. The
// 32.768 kHz divider chain has a phase (its release from reset) from which periodic interrupts and
// the once-a-second update cycles are counted. Callbacks are scheduled for update cycles (once per
// virtual second) and, only while PIE is set, for periodic interrupts; PF is otherwise computed on
// demand when register C is read.
import type { PortBus, PortDevice } from './port-bus.ts';
import type { IrqLine } from './irq.ts';
import type { TimerHandle, VirtualClock } from '../machine/clock.ts';
import { clockTickTime, clockTicksAt } from './pit8254.ts';

export const RTC_INDEX_PORT = 0x70;
export const RTC_DATA_PORT = 0x71;
/** The time base: a 32.768 kHz crystal. */
export const RTC_HZ = 32768;
export const DEFAULT_RTC_START = new Date(Date.UTC(2026, 0, 1, 0, 0, 0));

/** Clock registers (datasheet Figure 3 "Address Map"). */
export const enum RtcReg {
  Seconds = 0x00, SecondsAlarm = 0x01, Minutes = 0x02, MinutesAlarm = 0x03, Hours = 0x04, HoursAlarm = 0x05,
  DayOfWeek = 0x06, DayOfMonth = 0x07, Month = 0x08, Year = 0x09, A = 0x0a, B = 0x0b, C = 0x0c, D = 0x0d,
}

/** The CMOS RAM bytes PC firmware and OS loaders read (QEMU hw/i386/pc.c, SeaBIOS). */
export const CMOS_BASE_MEMORY_KIB = 0x15; // word: conventional memory in KiB (640)
export const CMOS_EXTENDED_MEMORY_KIB = 0x17; // word: KiB above 1 MiB, at most 65535
export const CMOS_EXTENDED_MEMORY_KIB_2 = 0x30; // word: a copy of 0x17 (POST-measured)
export const CMOS_CENTURY = 0x32; // BCD century (ACPI FADT.CENTURY points here)
export const CMOS_MEMORY_ABOVE_16M = 0x34; // word: 64 KiB blocks between 16 MiB and the PCI hole
export const CMOS_MEMORY_ABOVE_4G = 0x5b; // 3 bytes: 64 KiB blocks above 4 GiB

const A_UIP = 0x80, A_DIVIDER = 0x70, A_RATE = 0x0f;
const DIVIDER_32K_NORMAL = 0x20; // DV2-0 = 010: 32.768 kHz time base, operating
const B_SET = 0x80, B_PIE = 0x40, B_UIE = 0x10, B_DM_BINARY = 0x04, B_24_HOUR = 0x02;
const C_IRQF = 0x80, C_PF = 0x40, C_AF = 0x20, C_UF = 0x10;
/** PF/PIE, AF/AIE and UF/UIE share bit positions in registers C and B. */
const INTERRUPT_SOURCES = C_PF | C_AF | C_UF;
const D_VRT = 0x80;
/** Alarm bytes with both top bits set match any value ("don't care", datasheet "Alarm"). */
const ALARM_DONT_CARE = 0xc0;

const NS_PER_S = 1_000_000_000;
/** UIP rises 244 µs (8 time-base cycles) before each update cycle (datasheet tBUC). */
const UIP_LEAD_NS = clockTickTime(8, RTC_HZ);
/** Releasing the divider from reset starts the first update cycle half a second later. */
const FIRST_UPDATE_AFTER_RESET_NS = NS_PER_S / 2;

export interface CmosRtcOptions {
  /** Guest RAM in bytes, for the memory-size bytes of the CMOS RAM. */
  ramBytes: number;
  /** RAM mapped below 4 GiB (the rest sits above 4 GiB). Default: all of it, or 3 GiB when there
   *  are 3.5 GiB or more (QEMU's i440fx split). */
  ramBelow4GiB?: number;
  /** The wall-clock time at virtual time `clock.now()`. Default DEFAULT_RTC_START (UTC). */
  startTime?: Date;
  /** IRQ 8: driven high while IRQF is set, low when register C is read. */
  irq8?: IrqLine;
}

interface CalendarTime { year: number; month: number; day: number; hour: number; minute: number; second: number }

export class CmosRtc implements PortDevice {
  readonly name = 'cmos-rtc';
  private readonly ram = new Uint8Array(128);
  private index = 0;
  private nmiMask = false;
  private regA = DIVIDER_32K_NORMAL | 0x06; // 1024 Hz periodic rate, as PC firmware leaves it
  private regB = B_24_HOUR;
  private flags = 0; // register C's PF, AF, UF
  /** The calendar registers at `secondBoundaryNs` while the clock runs; the held time otherwise. */
  private base: CalendarTime;
  private secondBoundaryNs: number;
  /** When the divider chain last left reset: periodic ticks count from here. */
  private dividerStartNs: number;
  /** PF has been accounted for up to this time. */
  private periodicCheckedNs: number;
  /** Register 6 is an independent counter; the offset keeps a written value across days. */
  private dayOfWeekOffset = 0;
  private readonly irq8?: IrqLine;
  private updateTimer: TimerHandle | null = null;
  private periodicTimer: TimerHandle | null = null;

  constructor(private readonly clock: VirtualClock, options: CmosRtcOptions) {
    const start = options.startTime ?? DEFAULT_RTC_START;
    this.base = calendarOf(Math.floor(start.getTime() / 1000));
    this.secondBoundaryNs = this.dividerStartNs = this.periodicCheckedNs = clock.now();
    this.irq8 = options.irq8;
    this.fillMemorySize(options);
    this.ram[CMOS_CENTURY] = this.encode(Math.floor(this.base.year / 100));
    this.reschedule();
  }

  register(bus: PortBus): void { bus.register(RTC_INDEX_PORT, 2, this); }

  /** Port 70h bit 7: NMI disabled. */
  get nmiMasked(): boolean { return this.nmiMask; }

  private fillMemorySize(options: CmosRtcOptions): void {
    const KiB = 1024, MiB = 1024 * KiB, BLOCK = 64 * KiB;
    const below4g = options.ramBelow4GiB ?? (options.ramBytes >= 0xe0000000 ? 0xc0000000 : options.ramBytes);
    const above4g = Math.max(options.ramBytes - below4g, 0);
    const extendedKiB = Math.min(Math.max(Math.floor(below4g / KiB) - 1024, 0), 0xffff);
    const above16mBlocks = Math.min(Math.max(Math.floor((below4g - 16 * MiB) / BLOCK), 0), 0xffff);
    this.setWord(CMOS_BASE_MEMORY_KIB, 640);
    this.setWord(CMOS_EXTENDED_MEMORY_KIB, extendedKiB);
    this.setWord(CMOS_EXTENDED_MEMORY_KIB_2, extendedKiB);
    this.setWord(CMOS_MEMORY_ABOVE_16M, above16mBlocks);
    const above4gBlocks = Math.floor(above4g / BLOCK);
    this.ram[CMOS_MEMORY_ABOVE_4G] = above4gBlocks & 0xff;
    this.ram[CMOS_MEMORY_ABOVE_4G + 1] = (above4gBlocks >> 8) & 0xff;
    this.ram[CMOS_MEMORY_ABOVE_4G + 2] = (above4gBlocks >> 16) & 0xff;
  }

  private setWord(offset: number, value: number): void {
    this.ram[offset] = value & 0xff;
    this.ram[offset + 1] = value >> 8;
  }

  // ---- the ports ----

  read(port: number): number {
    if (port === RTC_INDEX_PORT) return 0xff; // the index register is write-only
    return this.readRegister(this.index);
  }

  write(port: number, _size: number, value: number): void {
    value &= 0xff;
    if (port === RTC_INDEX_PORT) {
      this.index = value & 0x7f;
      this.nmiMask = (value & 0x80) !== 0;
    } else {
      this.writeRegister(this.index, value);
    }
  }

  private readRegister(reg: number): number {
    switch (reg) {
      case RtcReg.Seconds: return this.encode(this.calendar().second);
      case RtcReg.Minutes: return this.encode(this.calendar().minute);
      case RtcReg.Hours: return this.encodeHours(this.calendar().hour);
      case RtcReg.DayOfWeek: return this.dayOfWeek();
      case RtcReg.DayOfMonth: return this.encode(this.calendar().day);
      case RtcReg.Month: return this.encode(this.calendar().month);
      case RtcReg.Year: return this.encode(this.calendar().year % 100);
      case RtcReg.A: return this.regA | (this.updateInProgress() ? A_UIP : 0);
      case RtcReg.B: return this.regB;
      case RtcReg.C: return this.readAndClearFlags();
      case RtcReg.D: return D_VRT; // valid RAM and time: the battery is fine
      default: return this.ram[reg]; // the alarm bytes and the CMOS RAM
    }
  }

  private writeRegister(reg: number, value: number): void {
    switch (reg) {
      case RtcReg.Seconds: this.setCalendar({ second: this.decode(value) }); return;
      case RtcReg.Minutes: this.setCalendar({ minute: this.decode(value) }); return;
      case RtcReg.Hours: this.setCalendar({ hour: this.decodeHours(value) }); return;
      case RtcReg.DayOfMonth: this.setCalendar({ day: this.decode(value) }); return;
      case RtcReg.Month: this.setCalendar({ month: this.decode(value) }); return;
      case RtcReg.Year: this.setCalendar({ year: Math.floor(this.calendar().year / 100) * 100 + this.decode(value) }); return;
      case RtcReg.DayOfWeek:
        this.dayOfWeekOffset = (((this.decode(value) - 1 - this.weekday()) % 7) + 7) % 7;
        return;
      case RtcReg.A: this.writeRegA(value); return;
      case RtcReg.B: this.writeRegB(value); return;
      case RtcReg.C: case RtcReg.D: return; // read-only
      default: this.ram[reg] = value;
    }
  }

  // ---- time keeping ----

  private get dividerRunning(): boolean { return (this.regA & A_DIVIDER) === DIVIDER_32K_NORMAL; }
  private get clockRunning(): boolean { return this.dividerRunning && !(this.regB & B_SET); }

  /** Whole seconds since `secondBoundaryNs` (0 while the clock is stopped). */
  private secondsElapsed(ns: number): number {
    return this.clockRunning ? Math.floor((ns - this.secondBoundaryNs) / NS_PER_S) : 0;
  }

  /** The calendar at `ns`: the registers as written until the next update, then carried forward. */
  private calendar(ns = this.clock.now()): CalendarTime {
    const k = this.secondsElapsed(ns);
    return k === 0 ? { ...this.base } : calendarOf(secondsOf(this.base) + k);
  }

  /** Move the reference second boundary up to the present, so `base` is the current time. */
  private rebase(): void {
    const k = this.secondsElapsed(this.clock.now());
    if (k === 0) return;
    this.base = this.calendar();
    this.secondBoundaryNs += k * NS_PER_S;
  }

  /** 0 (Sunday) to 6, from the date. */
  private weekday(): number { return new Date(secondsOf(this.calendar()) * 1000).getUTCDay(); }

  /** Register 6: 1 (Sunday) to 7. */
  private dayOfWeek(): number { return this.encode(((this.weekday() + this.dayOfWeekOffset) % 7) + 1); }

  /** Replace some calendar fields of the current time; the divider phase is kept. */
  private setCalendar(change: Partial<CalendarTime>): void {
    this.rebase();
    this.base = { ...this.base, ...change };
  }

  /** UIP: set from 244 µs before an update cycle until it completes (the update itself is instantaneous here). */
  private updateInProgress(): boolean {
    if (!this.clockRunning) return false;
    const intoSecond = (this.clock.now() - this.secondBoundaryNs) % NS_PER_S;
    return intoSecond >= NS_PER_S - UIP_LEAD_NS;
  }

  private writeRegA(value: number): void {
    const wasRunning = this.dividerRunning;
    this.syncPeriodicFlag();
    this.rebase();
    this.regA = value & ~A_UIP;
    const now = this.clock.now();
    if (this.dividerRunning && !wasRunning) {
      // Out of reset (or another divider setting): the first update comes half a second later.
      this.dividerStartNs = now - (NS_PER_S - FIRST_UPDATE_AFTER_RESET_NS);
      this.secondBoundaryNs = this.dividerStartNs;
      this.periodicCheckedNs = now;
    }
    this.reschedule();
  }

  private writeRegB(value: number): void {
    this.syncPeriodicFlag();
    const wasSet = (this.regB & B_SET) !== 0;
    this.rebase();
    // Setting SET aborts any update cycle and clears UIE (datasheet Register B, SET and UIE).
    if (value & B_SET) value &= ~B_UIE;
    this.regB = value;
    if (wasSet && !(value & B_SET) && this.dividerRunning) {
      // Updates resume on the divider chain's next second boundary.
      const now = this.clock.now();
      this.secondBoundaryNs = this.dividerStartNs + Math.floor((now - this.dividerStartNs) / NS_PER_S) * NS_PER_S;
    }
    this.reschedule();
    this.updateIrq();
  }

  // ---- interrupts ----

  /** Periodic rate RS3-0 as a number of 32.768 kHz cycles (datasheet Table 5), or 0 for none. */
  private periodCycles(): number {
    const rs = this.regA & A_RATE;
    if (rs === 0 || !this.dividerRunning) return 0;
    return rs <= 2 ? 1 << (rs + 6) : 1 << (rs - 1);
  }

  private periodicIndex(ns: number, cycles: number): number {
    return Math.floor(clockTicksAt(ns - this.dividerStartNs, RTC_HZ) / cycles);
  }

  /** Set PF if a periodic tick passed since the last check (PF is set whether or not PIE is). */
  private syncPeriodicFlag(): void {
    const now = this.clock.now();
    const cycles = this.periodCycles();
    if (cycles && this.periodicIndex(now, cycles) > this.periodicIndex(this.periodicCheckedNs, cycles)) this.flags |= C_PF;
    this.periodicCheckedNs = now;
  }

  private readAndClearFlags(): number {
    this.syncPeriodicFlag();
    const value = this.flags | (this.irqf ? C_IRQF : 0);
    this.flags = 0;
    this.updateIrq();
    return value;
  }

  private get irqf(): boolean { return (this.flags & this.regB & INTERRUPT_SOURCES) !== 0; }

  private updateIrq(): void { this.irq8?.set(this.irqf); }

  /** An update cycle at second boundary `at`: UF, and AF when the alarm bytes match the new time. */
  private updateCycle(at: number): void {
    this.flags |= C_UF;
    const t = this.calendar(at);
    if (this.alarmMatches(RtcReg.SecondsAlarm, this.encode(t.second)) &&
        this.alarmMatches(RtcReg.MinutesAlarm, this.encode(t.minute)) &&
        this.alarmMatches(RtcReg.HoursAlarm, this.encodeHours(t.hour))) this.flags |= C_AF;
    this.updateIrq();
    this.scheduleUpdate(at + NS_PER_S);
  }

  private alarmMatches(reg: RtcReg, current: number): boolean {
    const alarm = this.ram[reg];
    return (alarm & ALARM_DONT_CARE) === ALARM_DONT_CARE || alarm === current;
  }

  private periodicTick(at: number): void {
    this.flags |= C_PF;
    this.periodicCheckedNs = Math.max(this.periodicCheckedNs, at);
    this.updateIrq();
    this.schedulePeriodic(at);
  }

  private reschedule(): void {
    const now = this.clock.now();
    this.clock.cancel(this.updateTimer);
    this.updateTimer = null;
    if (this.clockRunning) this.scheduleUpdate(this.secondBoundaryNs + (this.secondsElapsed(now) + 1) * NS_PER_S);
    this.schedulePeriodic(now);
  }

  private scheduleUpdate(at: number): void {
    this.updateTimer = this.clock.schedule(at, () => this.updateCycle(at));
  }

  /** Schedule the first periodic tick after `after`, if periodic interrupts are enabled. */
  private schedulePeriodic(after: number): void {
    this.clock.cancel(this.periodicTimer);
    this.periodicTimer = null;
    const cycles = this.periodCycles();
    if (!cycles || !(this.regB & B_PIE)) return;
    const next = (this.periodicIndex(after, cycles) + 1) * cycles;
    const at = this.dividerStartNs + clockTickTime(next, RTC_HZ);
    this.periodicTimer = this.clock.schedule(at, () => this.periodicTick(at));
  }

  // ---- data formats (register B: DM selects binary or BCD, 24/12 the hour format) ----

  private get binary(): boolean { return (this.regB & B_DM_BINARY) !== 0; }

  private encode(value: number): number { return this.binary ? value : toBcd(value); }
  private decode(value: number): number { return this.binary ? value : fromBcd(value); }

  /** 12-hour format: 1-12 with bit 7 set for PM. */
  private encodeHours(hour: number): number {
    if (this.regB & B_24_HOUR) return this.encode(hour);
    return this.encode(hour % 12 || 12) | (hour >= 12 ? 0x80 : 0);
  }

  private decodeHours(value: number): number {
    if (this.regB & B_24_HOUR) return this.decode(value);
    return (this.decode(value & 0x7f) % 12) + (value & 0x80 ? 12 : 0);
  }
}

/** Seconds since the Unix epoch; out-of-range fields carry over (31 February is 2 or 3 March). */
function secondsOf(t: CalendarTime): number {
  return Date.UTC(t.year, t.month - 1, t.day, t.hour, t.minute, t.second) / 1000;
}

function calendarOf(seconds: number): CalendarTime {
  const d = new Date(seconds * 1000);
  return {
    year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate(),
    hour: d.getUTCHours(), minute: d.getUTCMinutes(), second: d.getUTCSeconds(),
  };
}

function toBcd(v: number): number { return ((Math.floor(v / 10) % 10) << 4) | (v % 10); }
function fromBcd(v: number): number { return (v >> 4) * 10 + (v & 0x0f); }
