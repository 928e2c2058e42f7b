// The ACPI fixed-hardware register block (ACPI 6.3 section 4.8, "Fixed Hardware Programming Model"):
// the PM1a event block (status and enable), the PM1a control block and the power-management timer,
// laid out as QEMU's PIIX4 PM function places them when firmware sets its I/O base to 0x600:
//
//   base+0  PM1a_STS  16-bit, write 1 to clear   (ACPI 4.8.4.1.1, Table 4-16)
//   base+2  PM1a_EN   16-bit                      (ACPI 4.8.4.1.2, Table 4-17)
//   base+4  PM1a_CNT  16-bit                      (ACPI 4.8.4.2.1, Table 4-18)
//   base+6  (unused: PM1_CNT_LEN is 2; reads 0)
//   base+8  PM_TMR    32-bit read-only, 24 bits counting at 3.579545 MHz (ACPI 4.8.4.3)
//
// There is no SMI_CMD port: the board is always in ACPI mode, so SCI_EN reads 1 and cannot be
// cleared (ACPI 4.8.4.2.1: "SCI_EN ... hardware-only mode where this bit is hardwired to 1").
// No GPE block: the only SCI sources are the fixed events TMR (timer MSB toggles) and PWRBTN.
// The SCI is level-triggered: the line stays raised while an enabled status bit is set.
import type { PortDevice } from './port-bus.ts';
import type { IrqLine } from './irq.ts';
import type { TimerHandle, VirtualClock } from '../machine/clock.ts';

/** QEMU's PIIX4/ICH9 PM I/O base as SeaBIOS programs it. */
export const ACPI_PM_BASE = 0x600;
export const PM1A_EVT_OFFSET = 0;
export const PM1A_CNT_OFFSET = 4;
export const PM_TMR_OFFSET = 8;
/** Lengths the FADT advertises (PM1_EVT_LEN, PM1_CNT_LEN, PM_TMR_LEN). */
export const PM1_EVT_LEN = 4;
export const PM1_CNT_LEN = 2;
export const PM_TMR_LEN = 4;
/** Ports the device claims from `base`. */
export const ACPI_PM_PORT_COUNT = PM_TMR_OFFSET + PM_TMR_LEN;
/** ISA IRQ of the SCI on the PC (PIIX4 routes it to IRQ 9; the MADT overrides it to level, high). */
export const ACPI_SCI_IRQ = 9;

/** SLP_TYP values this chipset decodes; the DSDT's \_S0_ and \_S5_ packages carry them. */
export const SLP_TYP_S0 = 0;
export const SLP_TYP_S5 = 5;

/** ACPI 4.8.3.3: the PM timer runs at 3.579545 MHz. */
export const PM_TIMER_HZ = 3_579_545;
/** 24-bit counter (the FADT leaves TMR_VAL_EXT clear). */
export const PM_TIMER_BITS = 24;

// PM1 status / enable bits (ACPI Tables 4-16 and 4-17: the enable bit sits at its status bit).
export const PM1_TMR = 1 << 0;
export const PM1_BM_STS = 1 << 4;
export const PM1_GBL = 1 << 5;
export const PM1_PWRBTN = 1 << 8;
export const PM1_SLPBTN = 1 << 9;
export const PM1_RTC = 1 << 10;
export const PM1_PCIEXP_WAKE = 1 << 14;
export const PM1_WAK_STS = 1 << 15;
const STATUS_BITS = PM1_TMR | PM1_BM_STS | PM1_GBL | PM1_PWRBTN | PM1_SLPBTN | PM1_RTC | PM1_PCIEXP_WAKE | PM1_WAK_STS;
const ENABLE_BITS = PM1_TMR | PM1_GBL | PM1_PWRBTN | PM1_SLPBTN | PM1_RTC | PM1_PCIEXP_WAKE;
/** Events this board can raise; the others (GBL, SLPBTN, RTC, PCIEXP_WAKE) never happen here, but
 *  their enable bits stick so ACPICA's "does the enable bit stick" probe of GBL_EN succeeds, as on QEMU. */
const SCI_SOURCES = PM1_TMR | PM1_PWRBTN;

// PM1 control bits (ACPI Table 4-18).
export const PM1_CNT_SCI_EN = 1 << 0;
const PM1_CNT_BM_RLD = 1 << 1;
const PM1_CNT_SLP_TYP_SHIFT = 10;
const PM1_CNT_SLP_TYP = 7 << PM1_CNT_SLP_TYP_SHIFT;
export const PM1_CNT_SLP_EN = 1 << 13;
/** Bits that read back; GBL_RLS (bit 2) and SLP_EN are write-only and read 0. */
const CONTROL_STORED = PM1_CNT_BM_RLD | PM1_CNT_SLP_TYP;

/** The ports of each block for a device at `base`, in the form the ACPI table builder takes. */
export function acpiPmBlocks(base = ACPI_PM_BASE): { pm1aEventBlock: number; pm1aControlBlock: number; pmTimerBlock: number } {
  return { pm1aEventBlock: base + PM1A_EVT_OFFSET, pm1aControlBlock: base + PM1A_CNT_OFFSET, pmTimerBlock: base + PM_TMR_OFFSET };
}

const NS_PER_SECOND = 1_000_000_000;

/** floor(a / b) for non-negative integers a, b with a < 2^53: exact, unlike Math.floor(a / b) alone,
 *  whose quotient may round up to the next integer. */
function floorDiv(a: number, b: number): number {
  let q = Math.floor(a / b);
  if (q * b > a) q--;
  else if ((q + 1) * b <= a) q++;
  return q;
}

function ceilDiv(a: number, b: number): number {
  const q = floorDiv(a, b);
  return q * b === a ? q : q + 1;
}

/** Timer ticks elapsed after `ns` virtual nanoseconds: floor(ns × 3579545 / 10^9), exact for any
 *  time a double holds (split into whole seconds so no product passes 2^53). Never decreases. */
export function pmTimerTicksAt(ns: number): number {
  const whole = Math.floor(ns);
  const seconds = Math.floor(whole / NS_PER_SECOND);
  const rest = whole - seconds * NS_PER_SECOND;
  return seconds * PM_TIMER_HZ + floorDiv(rest * PM_TIMER_HZ, NS_PER_SECOND);
}

/** The first whole virtual nanosecond at which `pmTimerTicksAt` reaches `ticks`. */
export function nsAtPmTimerTicks(ticks: number): number {
  const seconds = floorDiv(ticks, PM_TIMER_HZ);
  const rest = ticks - seconds * PM_TIMER_HZ;
  return seconds * NS_PER_SECOND + ceilDiv(rest * NS_PER_SECOND, PM_TIMER_HZ);
}

/** TMR_STS is set each time the counter's MSB toggles (ACPI 4.8.4.1.1), i.e. every 2^23 ticks. */
const TIMER_MSB_PERIOD = 2 ** (PM_TIMER_BITS - 1);
const TIMER_MODULUS = 2 ** PM_TIMER_BITS;

type RegisterName = 'status' | 'enable' | 'control' | 'timer';
const REGISTERS: ReadonlyArray<{ name: RegisterName; offset: number; width: number }> = [
  { name: 'status', offset: PM1A_EVT_OFFSET, width: 2 },
  { name: 'enable', offset: PM1A_EVT_OFFSET + 2, width: 2 },
  { name: 'control', offset: PM1A_CNT_OFFSET, width: PM1_CNT_LEN },
  { name: 'timer', offset: PM_TMR_OFFSET, width: PM_TMR_LEN },
];

export class AcpiPm implements PortDevice {
  readonly name = 'acpi-pm';
  /** Status bits other than TMR_STS, which is derived from the counter. */
  private status = 0;
  private enable = 0;
  private control = 0;
  /** MSB periods (2^23 ticks) that had elapsed when software last cleared TMR_STS: TMR_STS is set
   *  while more have elapsed since. */
  private timerPeriodsAcknowledged = 0;
  private timerEvent: TimerHandle | null = null;

  constructor(
    private readonly clock: VirtualClock,
    private readonly sci: IrqLine,
    /** Called when the guest enters S5 (soft off): SLP_EN written with SLP_TYP = SLP_TYP_S5. */
    private readonly onPowerOff: () => void,
    readonly base = ACPI_PM_BASE,
  ) {}

  /** The 24-bit PM timer value at the current virtual time. */
  timerValue(): number { return this.ticksNow() % TIMER_MODULUS; }

  /** A press of the fixed-feature power button (ACPI 4.8.2.2.1.1): sets PWRBTN_STS. */
  pressPowerButton(): void {
    this.status |= PM1_PWRBTN;
    this.refresh();
  }

  read(port: number, size: number): number {
    const offset = port - this.base;
    const values = this.snapshot();
    let value = 0;
    for (let i = 0; i < size; i++) {
      const reg = REGISTERS.find((r) => offset + i >= r.offset && offset + i < r.offset + r.width);
      if (reg) value |= ((values[reg.name] >>> (8 * (offset + i - reg.offset))) & 0xff) << (8 * i);
    }
    return value >>> 0;
  }

  /** Accesses of any width and alignment: each register receives the bytes that fall inside it,
   *  with a mask of which bytes those are (so a byte write to PM1a_CNT+1 sets SLP_TYP and SLP_EN). */
  write(port: number, size: number, value: number): void {
    const offset = port - this.base;
    for (const reg of REGISTERS) {
      let bits = 0, mask = 0;
      for (let i = 0; i < size; i++) {
        const at = offset + i - reg.offset;
        if (at < 0 || at >= reg.width) continue;
        bits |= ((value >>> (8 * i)) & 0xff) << (8 * at);
        mask |= 0xff << (8 * at);
      }
      if (mask) this.writeRegister(reg.name, bits >>> 0, mask >>> 0);
    }
    this.refresh();
  }

  private writeRegister(name: RegisterName, bits: number, mask: number): void {
    switch (name) {
      case 'status': this.clearStatus(bits & mask); return;
      case 'enable': this.enable = ((this.enable & ~mask) | (bits & mask)) & ENABLE_BITS; return;
      case 'control': this.writeControl(bits, mask); return;
      case 'timer': return; // read-only
    }
  }

  private clearStatus(bits: number): void {
    if (bits & PM1_TMR) this.timerPeriodsAcknowledged = Math.floor(this.ticksNow() / TIMER_MSB_PERIOD);
    this.status &= ~(bits & STATUS_BITS);
  }

  private writeControl(bits: number, mask: number): void {
    this.control = ((this.control & ~mask) | (bits & mask)) & CONTROL_STORED;
    if (!(bits & mask & PM1_CNT_SLP_EN)) return;
    // ACPI 4.8.4.2.1 / 16.1.6: writing SLP_EN makes the hardware enter the state in SLP_TYP. Only
    // S5 exists on this board (the DSDT offers only \_S0_ and \_S5_); other types are ignored.
    const sleepType = (this.control & PM1_CNT_SLP_TYP) >> PM1_CNT_SLP_TYP_SHIFT;
    if (sleepType === SLP_TYP_S5) this.onPowerOff();
  }

  private ticksNow(): number { return pmTimerTicksAt(this.clock.now()); }

  private timerStatusPending(ticks: number): boolean {
    return Math.floor(ticks / TIMER_MSB_PERIOD) > this.timerPeriodsAcknowledged;
  }

  private snapshot(): Record<RegisterName, number> {
    const ticks = this.ticksNow();
    return {
      status: this.status | (this.timerStatusPending(ticks) ? PM1_TMR : 0),
      enable: this.enable,
      control: this.control | PM1_CNT_SCI_EN,
      timer: ticks % TIMER_MODULUS,
    };
  }

  /** Drive the SCI from the enabled status bits, and when the timer event is enabled but not yet
   *  pending, schedule a wake-up at the next MSB toggle so the SCI rises on time. */
  private refresh(): void {
    const ticks = this.ticksNow();
    const timerPending = this.timerStatusPending(ticks);
    const status = this.status | (timerPending ? PM1_TMR : 0);
    this.sci.set((status & this.enable & SCI_SOURCES) !== 0);
    this.clock.cancel(this.timerEvent);
    this.timerEvent = null;
    if ((this.enable & PM1_TMR) && !timerPending) {
      const nextToggle = nsAtPmTimerTicks((this.timerPeriodsAcknowledged + 1) * TIMER_MSB_PERIOD);
      this.timerEvent = this.clock.schedule(nextToggle, () => { this.timerEvent = null; this.refresh(); });
    }
  }
}
