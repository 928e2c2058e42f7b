// The local APIC of one vCPU (Intel SDM Vol. 3A, chapter 11 "Advanced Programmable Interrupt
// Controller"): the xAPIC register page (an MmioDevice at IA32_APIC_BASE, FEE00000h by default), the
// x2APIC MSRs 800h-8FFh, interrupt acceptance (IRR/ISR/TMR, TPR/PPR, EOI with the EOI broadcast to
// the IOAPICs), IPIs through the ICR, the local vector table with LINT0/LINT1, the error status
// register, and the APIC timer in one-shot, periodic and TSC-deadline modes.
//
// Time. The timer counts the virtual clock: the APIC "bus clock" that feeds the divider runs at
// 1 GHz virtual, so one timer tick before the divider is one virtual nanosecond
// (APIC_TIMER_NS_PER_TICK). Linux calibrates the timer against another clock, so any constant works;
// 1 ns makes traces easy to read. The current count is computed from elapsed virtual time, never
// ticked. The TSC is virtual nanoseconds too (the machine makes RDTSC return the virtual time, which
// counts one ns per retired instruction), so IA32_TSC_DEADLINE compares against `clock.now()`.
//
// Interface to the CPU side. The machine asks `extIntPending` first (ExtINT from the 8259 through
// LINT0 in virtual-wire mode, or an ExtINT message: not subject to the TPR, SDM 11.5.1); if set it
// takes the vector from the PIC and calls `acknowledgeExtInt()`. Otherwise `pendingVector()` gives the
// highest deliverable vector (or -1) and `acknowledge()` moves it from IRR to ISR when the CPU takes
// it. MOV CR8 maps onto `getTpr`/`setTpr`. RDMSR/WRMSR of 1Bh, 6E0h and 800h-8FFh go to
// `readMsr`/`writeMsr`; null/false mean #GP.
import type { MmioDevice } from './mmio-bus.ts';
import type { TimerHandle, VirtualClock } from '../machine/clock.ts';
import { type ApicBus, type ApicEndpoint, type ApicMessage, DeliveryMode, Shorthand } from './apic-bus.ts';

export const APIC_DEFAULT_BASE = 0xfee00000;
export const APIC_PAGE_SIZE = 0x1000;
export const MSR_IA32_APIC_BASE = 0x1b;
export const MSR_IA32_TSC_DEADLINE = 0x6e0;
export const X2APIC_MSR_FIRST = 0x800;
export const X2APIC_MSR_LAST = 0x8ff;
/** Virtual ns per APIC timer bus clock (before the divide configuration): a 1 GHz virtual bus. */
export const APIC_TIMER_NS_PER_TICK = 1;

// IA32_APIC_BASE (SDM 11.4.4, 11.12.1).
const BASE_BSP = 1n << 8n;
const BASE_EXTD = 1n << 10n;
const BASE_EN = 1n << 11n;
const BASE_ADDRESS_LOW_BITS = 0xfffn;

// Register offsets in the xAPIC page; x2APIC MSR = 800h + offset / 16 (SDM 11.4.1 and 11.12.1.2).
const REG_ID = 0x020, REG_VERSION = 0x030, REG_TPR = 0x080, REG_APR = 0x090, REG_PPR = 0x0a0, REG_EOI = 0x0b0;
const REG_RRD = 0x0c0, REG_LDR = 0x0d0, REG_DFR = 0x0e0, REG_SVR = 0x0f0;
const REG_ISR = 0x100, REG_TMR = 0x180, REG_IRR = 0x200, REG_ESR = 0x280;
const REG_ICR_LOW = 0x300, REG_ICR_HIGH = 0x310;
const REG_TIMER_INITIAL = 0x380, REG_TIMER_CURRENT = 0x390, REG_TIMER_DIVIDE = 0x3e0, REG_SELF_IPI = 0x3f0;

/** Local vector table entries (SDM 11.5.1), with their xAPIC offsets and writable bits. */
const enum Lvt { Cmci, Timer, Thermal, Performance, Lint0, Lint1, Error }
const LVT_TABLE: ReadonlyArray<{ offset: number; writable: number }> = [
  { offset: 0x2f0, writable: 0x000107ff }, // CMCI: vector, delivery mode, mask
  { offset: 0x320, writable: 0x000700ff }, // timer: vector, mask, timer mode 18:17
  { offset: 0x330, writable: 0x000107ff }, // thermal sensor
  { offset: 0x340, writable: 0x000107ff }, // performance monitoring counters
  { offset: 0x350, writable: 0x0001a7ff }, // LINT0: + polarity 13, trigger mode 15
  { offset: 0x360, writable: 0x0001a7ff }, // LINT1
  { offset: 0x370, writable: 0x000100ff }, // error: vector, mask
];
const LVT_MASKED = 1 << 16;
const LVT_TRIGGER_LEVEL = 1 << 15;
const LVT_REMOTE_IRR = 1 << 14;
const LVT_ACTIVE_LOW = 1 << 13;
const LVT_RESET = LVT_MASKED;
const TIMER_MODE_SHIFT = 17;
const enum TimerMode { OneShot = 0, Periodic = 1, TscDeadline = 2, Reserved = 3 }

const SVR_SOFTWARE_ENABLE = 1 << 8;
const SVR_SUPPRESS_EOI_BROADCAST = 1 << 12;
const VERSION_DIRECTED_EOI = 1 << 24;

// ICR low dword (SDM 11.6.1): vector 7:0, delivery mode 10:8, destination mode 11, delivery status 12
// (read-only; always idle here because delivery is immediate), level 14, trigger 15, shorthand 19:18.
const ICR_LOW_WRITABLE = 0x000ccfff;
const ICR_DEST_LOGICAL = 1 << 11;
const ICR_LEVEL_ASSERT = 1 << 14;
const ICR_TRIGGER_LEVEL = 1 << 15;

// Error status register bits (SDM 11.5.3).
const ESR_SEND_ILLEGAL_VECTOR = 1 << 5;
const ESR_RECEIVE_ILLEGAL_VECTOR = 1 << 6;
const ESR_ILLEGAL_REGISTER_ADDRESS = 1 << 7;

/** x2APIC MSRs that do not exist although their xAPIC offset does (SDM 11.12.1.2). */
const X2APIC_ABSENT = new Set([REG_APR, REG_RRD, REG_DFR, REG_ICR_HIGH]);

export interface LocalApicOptions {
  /** IA32_APIC_BASE.BSP at reset; default: APIC ID 0 is the bootstrap processor. */
  bsp?: boolean;
  /** Advertise (version bit 24) and honour SVR bit 12, EOI-broadcast suppression. Off by default:
   *  it is only useful with an IOAPIC that has a directed-EOI register, which the 82093AA lacks. */
  eoiBroadcastSuppression?: boolean;
  /** Implement the CMCI LVT entry at 2F0h (max LVT entry 6 instead of 5). */
  cmci?: boolean;
  /** MAXPHYADDR: bits of IA32_APIC_BASE at and above it are reserved. 36 when CPUID 80000008h is absent. */
  maxPhysAddrBits?: number;
}

/** A 256-bit interrupt vector set (IRR, ISR, TMR) as eight 32-bit words, word i = vectors 32i..32i+31. */
class VectorSet {
  readonly words = new Uint32Array(8);
  has(v: number): boolean { return (this.words[v >>> 5] & (1 << (v & 31))) !== 0; }
  add(v: number): void { this.words[v >>> 5] |= 1 << (v & 31); }
  remove(v: number): void { this.words[v >>> 5] &= ~(1 << (v & 31)); }
  clear(): void { this.words.fill(0); }
  /** The highest vector in the set, or -1. */
  highest(): number {
    for (let i = 7; i >= 0; i--) if (this.words[i]) return i * 32 + 31 - Math.clz32(this.words[i]);
    return -1;
  }
}

type WriteOutcome = 'ok' | 'read-only' | 'reserved';

export class LocalApic implements MmioDevice, ApicEndpoint {
  readonly name: string;
  /** INIT received: the machine resets the vCPU (APs then wait for a SIPI; the BSP restarts). */
  onInit: (() => void) | null = null;
  /** Start-up IPI accepted while waiting for one: start the AP at `vector << 12` (CS = vector << 8). */
  onSipi: ((vector: number) => void) | null = null;
  onNmi: (() => void) | null = null;
  onSmi: (() => void) | null = null;
  /** A new interrupt became pending (IRR, ExtINT): wake the vCPU if it is halted. */
  onInterruptRequest: (() => void) | null = null;
  /** The guest moved the register page: relocate this device on the MMIO bus. */
  onBaseChange: ((base: number) => void) | null = null;

  private readonly version: number;
  private readonly svrWritable: number;
  private readonly apicBaseReserved: bigint;
  private readonly lvtOffsets: Map<number, Lvt>;

  // IA32_APIC_BASE
  private baseAddress = APIC_DEFAULT_BASE;
  private bsp: boolean;
  private enabled = true;
  private x2apic = false;

  // Registers (reset values set by resetRegisters)
  private idRegister = 0;
  private tpr = 0;
  private ldr = 0;
  private dfr = 0;
  private svr = 0;
  private readonly irr = new VectorSet();
  private readonly isr = new VectorSet();
  private readonly tmr = new VectorSet();
  private esr = 0;
  private errorsSinceEsrWrite = 0;
  private errorInterruptArmed = true;
  private icrLow = 0;
  private icrHigh = 0;
  private readonly lvt = new Uint32Array(LVT_TABLE.length);

  // Timer: the count is `timerBaseCount` at virtual time `timerBaseNs` and falls by one every tick.
  private timerInitial = 0;
  private timerDivide = 0;
  private timerRunning = false;
  private timerBaseNs = 0;
  private timerBaseCount = 0;
  private timerDeadlineNs = 0;
  private timerHandle: TimerHandle | null = null;
  private tscDeadline = 0n;

  // Pins and latches
  private readonly lintLevel = [false, false];
  private extIntRequested = false;
  private awaitingSipi: boolean;

  constructor(readonly initialApicId: number, private readonly clock: VirtualClock, private readonly bus: ApicBus,
    options: LocalApicOptions = {}) {
    this.name = `lapic${initialApicId}`;
    this.bsp = options.bsp ?? initialApicId === 0;
    this.awaitingSipi = !this.bsp;
    const suppression = options.eoiBroadcastSuppression ?? false;
    const maxLvt = options.cmci ? 6 : 5;
    this.version = 0x14 | (maxLvt << 16) | (suppression ? VERSION_DIRECTED_EOI : 0);
    this.svrWritable = 0x1ff | (suppression ? SVR_SUPPRESS_EOI_BROADCAST : 0);
    this.apicBaseReserved = ((1n << 64n) - (1n << BigInt(options.maxPhysAddrBits ?? 36))) | 0x2ffn;
    this.lvtOffsets = new Map<number, Lvt>();
    LVT_TABLE.forEach((e, i) => { if (options.cmci || i !== Lvt.Cmci) this.lvtOffsets.set(e.offset, i); });
    this.resetRegisters();
    bus.attach(this);
  }

  // ---- ApicEndpoint -------------------------------------------------------------------------

  get hardwareEnabled(): boolean { return this.enabled; }
  get x2apicMode(): boolean { return this.x2apic; }
  get softwareEnabled(): boolean { return (this.svr & SVR_SOFTWARE_ENABLE) !== 0; }
  get apicId(): number { return this.x2apic ? this.initialApicId : this.idRegister >>> 24; }
  get logicalDestination(): number {
    // x2APIC: LDR is derived from the x2APIC ID: cluster = ID[31:4] in 31:16, 1 << ID[3:0] in 15:0 (SDM 11.12.10.2).
    const id = this.initialApicId;
    return this.x2apic ? (((id >>> 4) << 16) | (1 << (id & 0xf))) >>> 0 : this.ldr;
  }
  get clusterModel(): boolean { return (this.dfr >>> 28) === 0; }

  /** APR (SDM 11.6.2.4): TPR if it is at least the IRR class and above the ISR class, else the highest of the three classes. */
  arbitrationPriority(): number {
    const irrv = Math.max(this.irr.highest(), 0), isrv = Math.max(this.isr.highest(), 0);
    if ((this.tpr >>> 4) >= (irrv >>> 4) && (this.tpr >>> 4) > (isrv >>> 4)) return this.tpr;
    return Math.max(this.tpr & 0xf0, isrv & 0xf0, irrv & 0xf0);
  }

  accept(m: ApicMessage): void {
    if (m.deliveryMode === DeliveryMode.Init && m.levelTriggered && !m.assert) return; // INIT level de-assert: no effect (SDM 11.6.1)
    this.receive(m.deliveryMode, m.vector, m.levelTriggered);
  }

  // ---- Interrupt acceptance and the CPU interface -------------------------------------------

  /** PPR (SDM 11.8.3.1): TPR when its class is at least the in-service class, else the in-service class. */
  processorPriority(): number {
    const isrv = Math.max(this.isr.highest(), 0);
    return (this.tpr >>> 4) >= (isrv >>> 4) ? this.tpr : isrv & 0xf0;
  }

  /** The highest IRR vector whose priority class is above the PPR's, or -1. */
  pendingVector(): number {
    if (!this.enabled) return -1;
    const v = this.irr.highest();
    return v >= 0 && (v >>> 4) > (this.processorPriority() >>> 4) ? v : -1;
  }

  /** The CPU takes the pending interrupt: IRR → ISR. With nothing deliverable, returns the spurious vector (SDM 11.9). */
  acknowledge(): number {
    const v = this.pendingVector();
    if (v < 0) return this.svr & 0xff;
    this.irr.remove(v);
    this.isr.add(v);
    return v;
  }

  /** ExtINT: the 8259 supplies the vector. With the APIC hardware-disabled, LINT0 is the CPU's INTR pin (SDM 11.4.3). */
  get extIntPending(): boolean {
    if (!this.enabled) return this.lintLevel[0];
    if (this.extIntRequested) return true;
    const e = this.lvt[Lvt.Lint0];
    return (e & LVT_MASKED) === 0 && lvtMode(e) === DeliveryMode.ExtInt && this.lintAsserted(0);
  }

  acknowledgeExtInt(): void { this.extIntRequested = false; }

  /** CR8 view of the TPR: CR8[3:0] = TPR[7:4] (SDM 11.8.6). */
  getTpr(): number { return this.tpr >>> 4; }
  setTpr(cr8: number): void { this.tpr = (cr8 & 0xf) << 4; }

  /** Drive the LINT0 (8259 INTR) or LINT1 (NMI) pin. */
  setLint(pin: 0 | 1, level: boolean): void {
    const was = this.lintLevel[pin];
    if (was === level) return;
    this.lintLevel[pin] = level;
    if (!this.enabled) { // the pins are INTR and NMI
      if (pin === 0 && level) this.notify();
      if (pin === 1 && level) this.onNmi?.();
      return;
    }
    const e = this.lvt[Lvt.Lint0 + pin];
    if (e & LVT_MASKED) return;
    const asserted = this.lintAsserted(pin);
    if (lvtMode(e) === DeliveryMode.ExtInt) { if (asserted) this.notify(); return; }
    if (isLevelFixed(e)) this.serviceLevelLint(pin);
    else if (asserted) this.deliverLvt(Lvt.Lint0 + pin);
  }

  /** Program LINT0 as ExtINT and LINT1 as NMI and software-enable the APIC, as PC firmware does
   *  on the BSP so the 8259 keeps working through the APIC ("virtual wire mode", MP spec 3.6.2.2). */
  enterVirtualWireMode(): void {
    this.writeRegister(REG_SVR, this.svr | SVR_SOFTWARE_ENABLE);
    this.writeRegister(LVT_TABLE[Lvt.Lint0].offset, DeliveryMode.ExtInt << 8);
    this.writeRegister(LVT_TABLE[Lvt.Lint1].offset, DeliveryMode.Nmi << 8);
  }

  // ---- xAPIC page (MmioDevice) ---------------------------------------------------------------

  read(offset: number, size: number): number | bigint {
    // The page is decoded only in xAPIC mode (SDM 11.12.2: x2APIC mode disables the MMIO interface).
    if (!this.enabled || this.x2apic) return size === 8 ? 0xffffffffffffffffn : size === 4 ? 0xffffffff : (1 << (8 * size)) - 1;
    const within = offset & 0xf;
    const value = this.readRegister(offset & 0xff0);
    if (value === null) { this.signalError(ESR_ILLEGAL_REGISTER_ADDRESS); return size === 8 ? 0n : 0; }
    if (size === 8) return within === 0 ? BigInt(value >>> 0) : 0n;
    if (within >= 4) return 0;
    const shifted = value >>> (8 * within);
    return size === 4 ? shifted >>> 0 : shifted & ((1 << (8 * size)) - 1);
  }

  write(offset: number, size: number, value: number | bigint): void {
    if (!this.enabled || this.x2apic) return;
    // Registers are written with aligned 32-bit stores only (SDM 11.4.1); others are dropped, as KVM does.
    if (size !== 4 || (offset & 0xf) !== 0) return;
    if (this.writeRegister(offset, Number(BigInt.asUintN(32, BigInt(value)))) === 'reserved') {
      this.signalError(ESR_ILLEGAL_REGISTER_ADDRESS);
    }
  }

  // ---- MSRs -----------------------------------------------------------------------------------

  static isApicMsr(index: number): boolean {
    return index === MSR_IA32_APIC_BASE || index === MSR_IA32_TSC_DEADLINE || (index >= X2APIC_MSR_FIRST && index <= X2APIC_MSR_LAST);
  }

  /** RDMSR of an APIC MSR; null means #GP. */
  readMsr(index: number): bigint | null {
    if (index === MSR_IA32_APIC_BASE) return this.apicBase;
    if (index === MSR_IA32_TSC_DEADLINE) return this.readTscDeadline();
    if (index < X2APIC_MSR_FIRST || index > X2APIC_MSR_LAST || !this.x2apic) return null;
    const reg = (index - X2APIC_MSR_FIRST) << 4;
    if (X2APIC_ABSENT.has(reg) || reg === REG_EOI || reg === REG_SELF_IPI) return null; // absent or write-only
    if (reg === REG_ICR_LOW) return (BigInt(this.icrHigh >>> 0) << 32n) | BigInt(this.icrLow >>> 0);
    const v = this.readRegister(reg);
    return v === null ? null : BigInt(v >>> 0);
  }

  /** WRMSR of an APIC MSR; false means #GP. */
  writeMsr(index: number, value: bigint): boolean {
    if (index === MSR_IA32_APIC_BASE) return this.writeApicBase(value);
    if (index === MSR_IA32_TSC_DEADLINE) { this.writeTscDeadline(value); return true; }
    if (index < X2APIC_MSR_FIRST || index > X2APIC_MSR_LAST || !this.x2apic) return false;
    const reg = (index - X2APIC_MSR_FIRST) << 4;
    if (X2APIC_ABSENT.has(reg)) return false;
    if (reg === REG_ICR_LOW) { // one 64-bit write: destination in 63:32 (SDM 11.12.9)
      this.icrHigh = Number(value >> 32n) >>> 0;
      this.icrLow = Number(value & 0xffffffffn) & ICR_LOW_WRITABLE;
      this.sendIpi();
      return true;
    }
    if (value >> 32n !== 0n) return false; // bits 63:32 are reserved in every other register
    const v = Number(value);
    // EOI and ESR accept only zero in x2APIC mode (SDM 11.12.1.2, 11.5.3).
    if ((reg === REG_EOI || reg === REG_ESR) && v !== 0) return false;
    if (reg === REG_SELF_IPI) { this.sendSelfIpi(v & 0xff); return true; }
    return this.writeRegister(reg, v) === 'ok';
  }

  /** IA32_APIC_BASE: base address, EN (bit 11), EXTD (bit 10), BSP (bit 8). */
  get apicBase(): bigint {
    return BigInt(this.baseAddress) | (this.bsp ? BASE_BSP : 0n) | (this.x2apic ? BASE_EXTD : 0n) | (this.enabled ? BASE_EN : 0n);
  }

  /** WRMSR IA32_APIC_BASE with the legal mode transitions of SDM 11.12.5; false means #GP. */
  writeApicBase(value: bigint): boolean {
    value = BigInt.asUintN(64, value);
    if (value & this.apicBaseReserved) return false;
    const en = (value & BASE_EN) !== 0n, extd = (value & BASE_EXTD) !== 0n;
    if (extd && !en) return false; // EN=0, EXTD=1 is the invalid state
    if (this.x2apic && en && !extd) return false; // x2APIC → xAPIC must go through disabled
    if (!this.enabled && extd) return false; // disabled → x2APIC must go through xAPIC
    const wasEnabled = this.enabled;
    this.bsp = (value & BASE_BSP) !== 0n;
    this.enabled = en;
    this.x2apic = extd;
    // Disabling the APIC returns it to its power-up state (SDM 11.4.3; 11.12.5.1 for x2APIC → disabled).
    if (wasEnabled && !en) this.resetRegisters(true);
    const base = Number(value & ~BASE_ADDRESS_LOW_BITS);
    if (base !== this.baseAddress) { this.baseAddress = base; this.onBaseChange?.(base); }
    return true;
  }

  // ---- TSC deadline ---------------------------------------------------------------------------

  /** IA32_TSC_DEADLINE; ignored outside TSC-deadline mode; 0 disarms (SDM 11.5.4.1). */
  writeTscDeadline(tsc: bigint): void {
    if (this.timerMode() !== TimerMode.TscDeadline) return;
    this.stopTimer();
    this.tscDeadline = BigInt.asUintN(64, tsc);
    if (this.tscDeadline === 0n) return;
    const at = Number(this.tscDeadline);
    if (at <= this.clock.now()) { this.expireTscDeadline(); return; }
    this.timerHandle = this.clock.schedule(at, () => { this.timerHandle = null; this.expireTscDeadline(); });
  }

  /** Reads return zero outside TSC-deadline mode and after the deadline fired. */
  readTscDeadline(): bigint { return this.timerMode() === TimerMode.TscDeadline ? this.tscDeadline : 0n; }

  /** INIT (SDM 11.4.7.3): power-up register state except the APIC ID; APIC_BASE and the x2APIC mode stay. */
  initReset(): void {
    this.resetRegisters(false);
    this.awaitingSipi = !this.bsp;
  }

  // ---- Registers ------------------------------------------------------------------------------

  /** Power-up values (SDM 11.4.7.1); `resetId` restores the ID register to the initial APIC ID. */
  private resetRegisters(resetId = true): void {
    if (resetId) this.idRegister = (this.initialApicId & 0xff) << 24;
    this.stopTimer();
    this.tpr = 0; this.ldr = 0; this.dfr = 0xffffffff; this.svr = 0xff;
    this.irr.clear(); this.isr.clear(); this.tmr.clear();
    this.esr = 0; this.errorsSinceEsrWrite = 0; this.errorInterruptArmed = true;
    this.icrLow = 0; this.icrHigh = 0;
    this.lvt.fill(LVT_RESET);
    this.timerInitial = 0; this.timerDivide = 0; this.tscDeadline = 0n;
    this.extIntRequested = false;
  }

  /** The 32-bit value of a register, or null for a reserved offset. */
  private readRegister(reg: number): number | null {
    if (reg >= REG_ISR && reg < REG_ISR + 0x80) return this.isr.words[(reg - REG_ISR) >> 4];
    if (reg >= REG_TMR && reg < REG_TMR + 0x80) return this.tmr.words[(reg - REG_TMR) >> 4];
    if (reg >= REG_IRR && reg < REG_IRR + 0x80) return this.irr.words[(reg - REG_IRR) >> 4];
    const lvt = this.lvtOffsets.get(reg);
    if (lvt !== undefined) return this.lvt[lvt];
    switch (reg) {
      case REG_ID: return this.x2apic ? this.initialApicId >>> 0 : this.idRegister;
      case REG_VERSION: return this.version;
      case REG_TPR: return this.tpr;
      case REG_APR: return this.arbitrationPriority();
      case REG_PPR: return this.processorPriority();
      case REG_EOI: return 0; // write-only
      case REG_LDR: return this.logicalDestination;
      case REG_DFR: return this.dfr;
      case REG_SVR: return this.svr;
      case REG_ESR: return this.esr;
      case REG_ICR_LOW: return this.icrLow;
      case REG_ICR_HIGH: return this.icrHigh;
      case REG_TIMER_INITIAL: return this.timerInitial;
      case REG_TIMER_CURRENT: return this.currentCount();
      case REG_TIMER_DIVIDE: return this.timerDivide;
      default: return null;
    }
  }

  private writeRegister(reg: number, v: number): WriteOutcome {
    if (reg >= REG_ISR && reg < REG_IRR + 0x80) return 'read-only'; // ISR, TMR, IRR
    const lvt = this.lvtOffsets.get(reg);
    if (lvt !== undefined) { this.writeLvt(lvt, v); return 'ok'; }
    switch (reg) {
      case REG_ID:
        if (this.x2apic) return 'read-only';
        this.idRegister = v & 0xff000000; return 'ok';
      case REG_VERSION: case REG_APR: case REG_PPR: case REG_TIMER_CURRENT: return 'read-only';
      case REG_TPR: this.tpr = v & 0xff; return 'ok';
      case REG_EOI: this.endOfInterrupt(); return 'ok';
      case REG_LDR:
        if (this.x2apic) return 'read-only';
        this.ldr = v & 0xff000000; return 'ok';
      case REG_DFR: this.dfr = (v | 0x0fffffff) >>> 0; return 'ok'; // bits 27:0 read as ones
      case REG_SVR: this.writeSvr(v); return 'ok';
      case REG_ESR: // write-then-read: the write latches the errors seen since the previous write (SDM 11.5.3)
        this.esr = this.errorsSinceEsrWrite; this.errorsSinceEsrWrite = 0; this.errorInterruptArmed = true; return 'ok';
      case REG_ICR_LOW: this.icrLow = v & ICR_LOW_WRITABLE; this.sendIpi(); return 'ok';
      case REG_ICR_HIGH: this.icrHigh = v & 0xff000000; return 'ok';
      case REG_TIMER_INITIAL: this.writeInitialCount(v >>> 0); return 'ok';
      case REG_TIMER_DIVIDE: this.writeDivide(v & 0xb); return 'ok';
      default: return 'reserved';
    }
  }

  /** SVR (SDM 11.9): clearing the software-enable bit masks every LVT entry (SDM 11.4.7.2). */
  private writeSvr(v: number): void {
    this.svr = v & this.svrWritable;
    if (!this.softwareEnabled) for (let i = 0; i < this.lvt.length; i++) this.lvt[i] |= LVT_MASKED;
  }

  private writeLvt(index: Lvt, v: number): void {
    const old = this.lvt[index];
    let value = v & LVT_TABLE[index].writable;
    if (index === Lvt.Timer && ((value >>> TIMER_MODE_SHIFT) & 3) === TimerMode.Reserved) {
      value = (value & ~(3 << TIMER_MODE_SHIFT)) | (old & (3 << TIMER_MODE_SHIFT));
    }
    // While software-disabled, the mask bits cannot be cleared (SDM 11.4.7.2).
    if (!this.softwareEnabled) value |= LVT_MASKED;
    this.lvt[index] = (value | (old & LVT_REMOTE_IRR)) >>> 0;
    if (index === Lvt.Timer) this.timerLvtChanged(old);
    if (index === Lvt.Lint0 || index === Lvt.Lint1) this.serviceLevelLint(index - Lvt.Lint0);
  }

  // ---- Delivery -------------------------------------------------------------------------------

  /** Accept an interrupt of `mode` from the bus or from a local source. */
  private receive(mode: DeliveryMode, vector: number, levelTriggered: boolean): void {
    switch (mode) {
      case DeliveryMode.Fixed:
      case DeliveryMode.LowestPriority:
        this.acceptFixed(vector, levelTriggered); return;
      case DeliveryMode.Smi: this.onSmi?.(); return;
      case DeliveryMode.Nmi: this.onNmi?.(); return;
      case DeliveryMode.Init: this.initReset(); this.onInit?.(); return;
      case DeliveryMode.StartUp: // SIPIs outside the wait-for-SIPI state are ignored (SDM, MP initialization protocol)
        if (!this.awaitingSipi) return;
        this.awaitingSipi = false; this.onSipi?.(vector); return;
      case DeliveryMode.ExtInt: this.extIntRequested = true; this.notify(); return;
    }
  }

  private acceptFixed(vector: number, levelTriggered: boolean): void {
    if (!this.softwareEnabled) return; // a software-disabled APIC drops fixed interrupts, as KVM does
    if (vector < 16) { this.signalError(ESR_RECEIVE_ILLEGAL_VECTOR); return; }
    this.irr.add(vector);
    // The TMR records the trigger mode when the interrupt is accepted into the IRR (SDM 11.8.4).
    if (levelTriggered) this.tmr.add(vector); else this.tmr.remove(vector);
    this.notify();
  }

  /** Deliver an edge-triggered local interrupt from LVT entry `index` (timer, error, LINT edge, ...). */
  private deliverLvt(index: Lvt): void {
    const e = this.lvt[index];
    if (e & LVT_MASKED) return;
    const mode = lvtMode(e);
    // LVT entries support fixed, SMI, NMI, INIT and (LINT0 only) ExtINT; other codes are reserved.
    if (mode === DeliveryMode.LowestPriority || mode === DeliveryMode.StartUp || mode === DeliveryMode.ExtInt || mode === DeliveryMode.Reserved) return;
    this.receive(mode, e & 0xff, false);
  }

  /** Level-triggered fixed LINT: deliver while asserted and Remote IRR is clear (SDM 11.5.1). */
  private serviceLevelLint(pin: number): void {
    const index = Lvt.Lint0 + pin;
    const e = this.lvt[index];
    if ((e & LVT_MASKED) || !isLevelFixed(e) || (e & LVT_REMOTE_IRR) || !this.lintAsserted(pin)) return;
    const vector = e & 0xff;
    this.acceptFixed(vector, true);
    if (this.irr.has(vector)) this.lvt[index] |= LVT_REMOTE_IRR;
  }

  private lintAsserted(pin: number): boolean {
    return this.lintLevel[pin] !== ((this.lvt[Lvt.Lint0 + pin] & LVT_ACTIVE_LOW) !== 0);
  }

  /** EOI (SDM 11.8.5): retire the highest in-service vector; level-triggered ones are broadcast to the IOAPICs. */
  private endOfInterrupt(): void {
    const v = this.isr.highest();
    if (v < 0) return;
    this.isr.remove(v);
    if (!this.tmr.has(v)) return;
    for (const pin of [0, 1]) {
      const index = Lvt.Lint0 + pin;
      if ((this.lvt[index] & LVT_REMOTE_IRR) && (this.lvt[index] & 0xff) === v) {
        this.lvt[index] &= ~LVT_REMOTE_IRR;
        this.serviceLevelLint(pin);
      }
    }
    if (!(this.svr & SVR_SUPPRESS_EOI_BROADCAST)) this.bus.broadcastEoi(v);
  }

  private sendIpi(): void {
    const low = this.icrLow;
    const mode = ((low >>> 8) & 7) as DeliveryMode;
    if (mode === DeliveryMode.Reserved || mode === DeliveryMode.ExtInt) return; // reserved ICR delivery modes
    const vector = low & 0xff;
    if ((mode === DeliveryMode.Fixed || mode === DeliveryMode.LowestPriority) && vector < 16) {
      this.signalError(ESR_SEND_ILLEGAL_VECTOR);
      return;
    }
    this.bus.deliver({
      vector, deliveryMode: mode, logical: (low & ICR_DEST_LOGICAL) !== 0,
      destination: this.x2apic ? this.icrHigh >>> 0 : this.icrHigh >>> 24, wide: this.x2apic,
      shorthand: ((low >>> 18) & 3) as Shorthand, levelTriggered: (low & ICR_TRIGGER_LEVEL) !== 0,
      assert: (low & ICR_LEVEL_ASSERT) !== 0 || mode !== DeliveryMode.Init,
    }, this);
  }

  /** x2APIC SELF IPI register (SDM 11.12.11): a fixed, edge-triggered IPI to this APIC. */
  private sendSelfIpi(vector: number): void {
    if (vector < 16) { this.signalError(ESR_SEND_ILLEGAL_VECTOR); return; }
    this.acceptFixed(vector, false);
  }

  /** Record an error and raise the error LVT interrupt once per ESR write (SDM 11.5.3). */
  private signalError(bits: number): void {
    this.errorsSinceEsrWrite |= bits;
    if (!this.errorInterruptArmed) return;
    this.errorInterruptArmed = false;
    this.deliverLvt(Lvt.Error);
  }

  private notify(): void { this.onInterruptRequest?.(); }

  // ---- Timer (SDM 11.5.4) -----------------------------------------------------------------------

  private timerMode(): TimerMode { return (this.lvt[Lvt.Timer] >>> TIMER_MODE_SHIFT) & 3; }

  /** Divide configuration bits 3,1,0: 000→2, 001→4, ..., 110→128, 111→1 (SDM 11.5.4). */
  private tickNs(): number {
    const code = (this.timerDivide & 3) | ((this.timerDivide >>> 1) & 4);
    return (code === 7 ? 1 : 2 << code) * APIC_TIMER_NS_PER_TICK;
  }

  private currentCount(mode = this.timerMode()): number {
    if (!this.timerRunning || mode === TimerMode.TscDeadline) return 0;
    const ticks = Math.floor((this.clock.now() - this.timerBaseNs) / this.tickNs());
    if (ticks < this.timerBaseCount) return this.timerBaseCount - ticks;
    // Periodic: the count reloads from the initial count each time it reaches zero.
    return mode === TimerMode.Periodic ? this.timerInitial - ((ticks - this.timerBaseCount) % this.timerInitial) : 0;
  }

  /** Writing the initial count (re)starts the count-down; 0 stops it; ignored in TSC-deadline mode. */
  private writeInitialCount(count: number): void {
    if (this.timerMode() === TimerMode.TscDeadline) return;
    this.stopTimer();
    this.timerInitial = count;
    if (count !== 0) this.startCount(count);
  }

  /** A new divisor takes effect from the current count onward. */
  private writeDivide(value: number): void {
    const count = this.currentCount();
    this.timerDivide = value;
    this.restartFromCurrent(count);
  }

  /** One-shot ↔ periodic keeps counting; entering or leaving TSC-deadline mode disarms the timer (SDM 11.5.4.1). */
  private timerLvtChanged(oldLvt: number): void {
    const oldMode = (oldLvt >>> TIMER_MODE_SHIFT) & 3, newMode = this.timerMode();
    if (oldMode === newMode) return;
    if (oldMode === TimerMode.TscDeadline || newMode === TimerMode.TscDeadline) {
      this.stopTimer();
      this.timerInitial = 0;
      this.tscDeadline = 0n;
      return;
    }
    this.restartFromCurrent(this.currentCount(oldMode)); // what counted under the old mode goes on under the new
  }

  private restartFromCurrent(count: number): void {
    if (!this.timerRunning) return;
    this.stopTimer();
    if (count !== 0) this.startCount(count);
  }

  private startCount(count: number): void {
    this.timerRunning = true;
    this.timerBaseNs = this.clock.now();
    this.timerBaseCount = count;
    this.armTimer(this.timerBaseNs + count * this.tickNs());
  }

  private armTimer(atNs: number): void {
    this.timerDeadlineNs = atNs;
    this.timerHandle = this.clock.schedule(atNs, (now) => this.countReachedZero(now));
  }

  private countReachedZero(now: number): void {
    this.timerHandle = null;
    this.deliverLvt(Lvt.Timer);
    if (this.timerMode() !== TimerMode.Periodic) { this.timerRunning = false; return; }
    // Re-arm at the next period boundary after `now` (periods the clock jumped over coalesce in the IRR).
    const period = this.timerInitial * this.tickNs();
    const missed = Math.floor((now - this.timerDeadlineNs) / period);
    this.armTimer(this.timerDeadlineNs + (missed + 1) * period);
  }

  private expireTscDeadline(): void {
    this.tscDeadline = 0n;
    this.deliverLvt(Lvt.Timer);
  }

  private stopTimer(): void {
    this.clock.cancel(this.timerHandle);
    this.timerHandle = null;
    this.timerRunning = false;
  }
}

function lvtMode(entry: number): DeliveryMode { return ((entry >>> 8) & 7) as DeliveryMode; }
function isLevelFixed(entry: number): boolean {
  return (entry & LVT_TRIGGER_LEVEL) !== 0 && lvtMode(entry) === DeliveryMode.Fixed;
}
