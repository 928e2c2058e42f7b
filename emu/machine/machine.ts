// The PC: one host (WebAssembly instance), one vCPU, guest RAM, and the devices of a QEMU-like
// i440FX board wired as a PC wires them (ARCHITECTURE.md, section 4): COM1, the 8259 pair, the 8254
// PIT, the RTC/CMOS, the i8042 (reset line), the 0xCF9 reset register, the local APIC and the IOAPIC,
// PCI configuration mechanism #1 with the host and ISA bridges, the ACPI PM block (PM timer, S5
// soft-off), fw_cfg, isa-debug-exit and pc-testdev. `run` is the VMM loop: it calls the core
// (KVM_RUN), handles each exit, delivers interrupts at the guest's interrupt window, and moves
// virtual time: time follows the instruction count and HLT skips to the next timer event, so a run
// repeats exactly.
import * as abi from '../../wasm/abi.ts';
import { Host, type Vcpu, type Vm, opcodeName, type MmuMode } from './host.ts';
import { RoundRobinScheduler, type SchedGuest } from '../hv/sched/round-robin.ts';
import { VirtualClock } from './clock.ts';
import { PortBus } from '../devices/port-bus.ts';
import { MmioBus } from '../devices/mmio-bus.ts';
import { WiredIrq, type IrqSink } from '../devices/irq.ts';
import { Uart16550 } from '../devices/uart16550.ts';
import { DebugExit } from '../devices/debug-exit.ts';
import { Pic8259Pair } from '../devices/pic8259.ts';
import { Pit8254, SystemControlPortB } from '../devices/pit8254.ts';
import { CmosRtc } from '../devices/cmos-rtc.ts';
import { I8042 } from '../devices/i8042.ts';
import { SystemReset } from '../devices/system-reset.ts';
import { PcTestdev } from '../devices/pc-testdev.ts';
import { ApicBus } from '../devices/apic-bus.ts';
import { LocalApic, APIC_DEFAULT_BASE, APIC_PAGE_SIZE } from '../devices/lapic.ts';
import { IoApic, IOAPIC_DEFAULT_BASE, IOAPIC_MMIO_SIZE } from '../devices/ioapic.ts';
import { PciBus, PciHostBridge } from '../devices/pci/host-bridge.ts';
import { I440fxHostBridge, Piix3IsaBridge, PCI_INTX_GSI, PCI_MMIO_WINDOW_END } from '../devices/pci/chipset.ts';

const PCI_WINDOW_ALIGN = 256 << 20;
import { AcpiPm, ACPI_PM_PORT_COUNT, acpiPmBlocks } from '../devices/acpi-pm.ts';
import { FwCfg } from '../devices/fw-cfg.ts';
import { defaultCpuid, type CpuidEntry } from '../cpu/cpuid.ts';
import { KvmParavirt, pvConfig, withKvmLeaves, type PvOption } from './kvm-pv.ts';
import type { PageSize } from '../hv/mm/nested-page-table.ts';
import type { AttachedDrive } from './drives.ts';

export interface MachineOptions {
  ramBytes: number;
  /** Firmware image for the reset vector (`hvlab boot --bios`). */
  firmware?: Uint8Array;
  /** Receives every byte the guest writes to COM1. */
  serialOut?: (byte: number) => void;
  mmu?: MmuMode;
  hostPageSize?: PageSize;
  /** vCPUs (1-4): vCPU 0 is the bootstrap processor; the others wait for INIT and SIPI. */
  smp?: number;
  /** KVM's paravirtual interface (kvm-pv.ts): 'on' (default), 'off' (no hypervisor leaves),
   *  'realtime' (with KVM_HINTS_REALTIME), or a feature list. */
  pv?: PvOption;
  /** Pause-loop exiting: on (default; KVM's VMX defaults, gap 128 and window 4096, in instructions),
   *  off, or explicit. */
  ple?: boolean | { gap: number; window: number };
  /** End the run when a vCPU meets an instruction hvlab does not implement (default true); the guest
   *  gets its #UD either way. */
  stopOnUnimplemented?: boolean;
  /** Build the board on a VM of this host (many guests on one host) instead of a host of its own;
   *  the host must have been made with pcCpuid(). */
  host?: Host;
  /** Guest RAM allocated on first touch (with `host`; ept and shadow). */
  demand?: boolean;
  /** The guest's name in messages. */
  name?: string;
}

/** 'halted': nothing can ever wake the vCPU (HLT with IF = 0 or no timer left); 'idle': halted,
 *  waiting for an interrupt, when the run's budget of virtual time ran out (input may wake it). */
export type StopReason = 'debug-exit' | 'halted' | 'idle' | 'shutdown' | 'exception' | 'instruction-limit' | 'poweroff' | 'reset' | 'stopped' | 'unimplemented' | 'out-of-memory' | 'timeout';

export interface RunResult {
  reason: StopReason;
  /** Exit status requested through isa-debug-exit. */
  status: number | null;
  instructions: bigint;
  /** A sentence for the user, naming the instruction when the guest died on one. */
  message: string;
}


/** ISA IRQ -> IOAPIC GSI: IRQ 0 is wired to pin 2 (the MADT says so with an override). */
const isaGsi = (irq: number) => (irq === 0 ? 2 : irq);

/** KVM's VMX defaults (arch/x86/kvm/vmx/vmx.c ple_gap, ple_window), cycles read as instructions. */
const PLE_DEFAULTS = { gap: 128, window: 4096 };
/** A vCPU's window doubles on each pause-loop exit up to this multiple (KVM's grow_ple_window) and
 *  is back at the base when the vCPU is scheduled in again (ple_window_shrink = 0). */
const PLE_WINDOW_GROWTH_MAX = 16;

const apicBaseOf = (l: LocalApic) => Number(l.apicBase & 0xfffff000n);

/** The CPUID of a PC with a local APIC: APIC, x2APIC and TSC-deadline on top of the core's table,
 *  and the initial APIC ID in leaf 1 EBX[31:24]. */
export function pcCpuid(): CpuidEntry[] {
  return defaultCpuid().map((e) => (e.leaf === 1
    ? { ...e, edx: (e.edx | (1 << 9)) >>> 0, ecx: (e.ecx | (1 << 21) | (1 << 24)) >>> 0, ebx: (e.ebx & 0x00ffffff) | (1 << 16) }
    : e));
}

/** How a vCPU stands: running, halted (HLT, waiting for an interrupt), or an application processor
 *  waiting for a start-up IPI (SDM Vol. 3A, 9.4 and 11.6.1). */
/** 'paging': blocked until the host's swap device has read a page back (pagingUntil). */
type VcpuState = 'running' | 'halted' | 'wait-for-sipi' | 'paging';

/** Why a vCPU slice ended the guest's run. */
export interface GuestEnd { reason: StopReason; message: string }

export class Machine implements SchedGuest<GuestEnd> {
  readonly host: Host;
  /** The guest this board is built on: its memory, its vCPU slots. */
  readonly vm: Vm;
  /** The bootstrap processor. */
  readonly vcpu: Vcpu;
  readonly vcpus: Vcpu[] = [];
  readonly lapics: LocalApic[] = [];
  private readonly states: VcpuState[] = [];
  readonly clock = new VirtualClock();
  readonly bus = new PortBus();
  readonly mmio = new MmioBus();
  readonly com1: Uart16550;
  readonly debugExit = new DebugExit();
  readonly pic = new Pic8259Pair();
  readonly apicBus = new ApicBus();
  readonly lapic: LocalApic;
  readonly ioapic: IoApic;
  readonly pit: Pit8254;
  readonly rtc: CmosRtc;
  readonly i8042: I8042;
  readonly pm: AcpiPm;
  readonly pci = new PciBus();
  readonly fwCfg: FwCfg;
  /** Disks attached with --drive (emu/machine/drives.ts). */
  drives: AttachedDrive[] = [];
  /** Set by a device that ends the run (power-off, reset). */
  private stopRequest: StopReason | null = null;
  /** Virtual time in ns at the start of the current round of vCPU slices. */
  private nowNs = 0;
  /** Instructions retired by all vCPUs (the count at construction is subtracted). */
  private instructionsAtStart = 0n;
  private userStop = false;
  private readonly stopOnUnimplemented: boolean;
  /** INIT and start-up IPIs a vCPU has received but not yet taken up (applyApicEvents). */
  private apEvents: Array<{ init: boolean; sipi: number | null } | null> = [];
  /** KVM's paravirtual interface, when offered (kvm-pv.ts). */
  readonly pv: KvmParavirt | null;
  /** Pause-loop exiting parameters (null: off), and each vCPU's current window (grown on exits). */
  private readonly ple: { gap: number; window: number } | null;
  private pleWindow: number[] = [];
  /** A KVM_HC_KICK_CPU that found the vCPU not yet halted: its next HLT returns (KVM's pv_unhalted). */
  private unhalted: boolean[] = [];
  /** What a vCPU asked the scheduler in its last slice: yield to vCPU n (-1: any), or nothing. */
  private yieldRequest: Array<number | null> = [];
  /** Each vCPU's steal so far (host ns runnable without a host CPU), as the scheduler last said. */
  private stealNs: number[] = [];
  /** A 'paging' vCPU's virtual time of wake-up (its swap-in done). */
  private pagingUntil: number[] = [];
  /** Host ns each vCPU ran in its last slice (the scheduler's ranNs). */
  private lastSliceNs: number[] = [];
  /** Exits by cause, for --json and the status line. */
  readonly exitCounts = { halt: 0, pauseLoop: 0, hypercall: 0, io: 0, eptViolation: 0 };
  /** A one-guest host's scheduler (run): one host CPU per vCPU. */
  private scheduler: RoundRobinScheduler<GuestEnd> | null = null;

  constructor(opts: MachineOptions) {
    const cpus = opts.smp ?? 1;
    this.stopOnUnimplemented = opts.stopOnUnimplemented ?? true;
    if (!(Number.isInteger(cpus) && cpus >= 1 && cpus <= abi.MAX_VCPUS)) throw new Error(`hvlab: --smp must be 1 to ${abi.MAX_VCPUS} (got ${cpus})`);
    const pv = pvConfig(opts.pv);
    const cpuid = withKvmLeaves(pcCpuid(), pv);
    if (opts.host) {
      this.host = opts.host;
      this.vm = opts.host.createVm({ ramBytes: opts.ramBytes, vcpus: cpus, mmu: opts.mmu, firmware: opts.firmware,
        hostPageSize: opts.hostPageSize, demand: opts.demand, name: opts.name, cpuid });
    } else {
      this.host = new Host({ ramBytes: opts.ramBytes, firmware: opts.firmware, mmu: opts.mmu, hostPageSize: opts.hostPageSize, cpuid });
      this.vm = this.host.vm0;
    }
    this.ple = opts.ple === false ? null : opts.ple === true || opts.ple === undefined ? { ...PLE_DEFAULTS } : opts.ple;

    // Interrupt controllers: ISA lines go to both the 8259s and the IOAPIC (the guest picks one);
    // one local APIC per vCPU, all on the APIC bus; the 8259's INTR reaches every LINT0.
    this.ioapic = new IoApic(this.apicBus);
    for (let i = 0; i < cpus; i++) {
      const v = this.vm.vcpu(i);
      v.resetArchitectural();
      const lapic = new LocalApic(i, this.clock, this.apicBus, { bsp: i === 0, maxPhysAddrBits: 40 });
      this.apicBus.attach(lapic);
      lapic.onNmi = () => v.injectNmi();
      // INIT and SIPI arrive from another vCPU's ICR write, in the middle of its run: like KVM's
      // kvm_apic_accept_events, the target takes them up itself at its next entry (applyApicEvents),
      // so no core call for this vCPU is made while another one runs.
      lapic.onInit = () => { if (i !== 0) { this.apEvents[i] = { init: true, sipi: null }; this.states[i] = 'wait-for-sipi'; } };
      lapic.onSipi = (vector) => {
        if (this.states[i] !== 'wait-for-sipi') return;
        this.apEvents[i] = { init: this.apEvents[i]?.init ?? false, sipi: vector };
        this.states[i] = 'running';
      };
      this.vcpus.push(v);
      this.lapics.push(lapic);
      this.states.push(i === 0 ? 'running' : 'wait-for-sipi');
    }
    this.apEvents = this.vcpus.map(() => null);
    this.unhalted = this.vcpus.map(() => false);
    this.yieldRequest = this.vcpus.map(() => null);
    this.stealNs = this.vcpus.map(() => 0);
    this.lastSliceNs = this.vcpus.map(() => 0);
    this.pagingUntil = this.vcpus.map(() => 0);
    this.pleWindow = this.vcpus.map(() => this.ple?.window ?? 0);
    this.pv = pv ? new KvmParavirt(pv, this.paravirtBoard()) : null;
    this.vcpu = this.vcpus[0];
    this.lapic = this.lapics[0];
    this.instructionsAtStart = this.totalRetired();
    this.pic.onOutputChange = (level) => { for (const l of this.lapics) l.setLint(0, level); };
    const isa = (irq: number) => new WiredIrq([{ sink: this.pic, line: irq }, { sink: this.ioapic, line: isaGsi(irq) }]);
    const isaSink: IrqSink = { setIrq: (line, level) => { this.pic.setIrq(line, level); this.ioapic.setIrq(isaGsi(line), level); } };
    this.pic.register(this.bus);
    this.mmio.register(IOAPIC_DEFAULT_BASE, IOAPIC_MMIO_SIZE, this.ioapic);

    this.com1 = new Uart16550(0x3f8, opts.serialOut ?? (() => {}), 'com1', isa(4));
    this.bus.register(0x3f8, 8, this.com1);
    this.bus.register(this.debugExit.port, 1, this.debugExit);
    this.pit = new Pit8254(this.clock, { irq0: isa(0) });
    this.pit.register(this.bus);
    new SystemControlPortB(this.pit).register(this.bus);
    this.rtc = new CmosRtc(this.clock, { ramBytes: opts.ramBytes, irq8: isa(8) });
    this.rtc.register(this.bus);
    this.i8042 = new I8042({ irq1: isa(1), irq12: isa(12), onReset: () => { this.stopRequest = 'reset'; } });
    this.i8042.register(this.bus);
    new SystemReset(() => { this.stopRequest = 'reset'; }).register(this.bus);
    new PcTestdev({ irqs: isaSink }).register(this.bus, this.mmio);
    const hostBridge = new PciHostBridge(this.pci);
    hostBridge.attach(this.bus);
    this.pci.addFunction(0, 0, new I440fxHostBridge());
    this.pci.addFunction(1, 0, new Piix3IsaBridge());
    this.pm = new AcpiPm(this.clock, isa(9), () => { this.stopRequest = 'poweroff'; });
    this.bus.register(this.pm.base, ACPI_PM_PORT_COUNT, this.pm);
    this.fwCfg = new FwCfg({
      read: (gpa, len) => this.vm.memory.read(gpa, len),
      write: (gpa, bytes) => this.vm.memory.write(gpa, bytes),
    }, { cpus, ramSize: opts.ramBytes });
    this.fwCfg.attach(this.bus);

    // The core asks the host for device memory and device MSRs (by host vCPU slot).
    // Each vCPU sees its own local APIC at the APIC base.
    const first = this.vm.vcpuFirst;
    this.vm.devices = {
      mmioRead: (vcpu, gpa, size) => {
        const l = this.lapics[vcpu - first];
        return this.apicPage(l, gpa) ? l.read(gpa - apicBaseOf(l), size) : this.mmio.read(gpa, size);
      },
      mmioWrite: (vcpu, gpa, size, value) => {
        const l = this.lapics[vcpu - first];
        if (this.apicPage(l, gpa)) l.write(gpa - apicBaseOf(l), size, value);
        else this.mmio.write(gpa, size, value);
      },
      msrRead: (vcpu, index) => {
        if (LocalApic.isApicMsr(index)) return this.lapics[vcpu - first].readMsr(index);
        if (KvmParavirt.isKvmMsr(index)) return this.pv ? this.pv.msrRead(vcpu - first, index) : null;
        return undefined;
      },
      msrWrite: (vcpu, index, value) => {
        if (LocalApic.isApicMsr(index)) return this.lapics[vcpu - first].writeMsr(index, value);
        if (KvmParavirt.isKvmMsr(index)) return this.pv ? this.pv.msrWrite(vcpu - first, index, value, this.stealNs[vcpu - first]) : false;
        return undefined;
      },
    };
  }

  /** ACPI description of this board (for buildAcpiTables). */
  acpiConfig(tableBase: number, rsdpAddress: number) {
    return {
      cpus: this.vcpus.length,
      ioApic: { id: 0, address: IOAPIC_DEFAULT_BASE, gsiBase: 0 },
      localApicAddress: APIC_DEFAULT_BASE,
      pm: { ...acpiPmBlocks(this.pm.base), sciIrq: 9, resetRegister: { port: 0xcf9, value: 0x06 } },
      hpet: false as const,
      tableBase, rsdpAddress,
      // BARs go above RAM (rounded up to 256 MiB) and below the IOAPIC.
      pci: { memoryWindow: { base: Math.ceil(this.vm.ramBytes / PCI_WINDOW_ALIGN) * PCI_WINDOW_ALIGN, limit: PCI_MMIO_WINDOW_END }, intxGsi: PCI_INTX_GSI },
    };
  }

  private apicPage(l: LocalApic, gpa: number): boolean {
    const base = apicBaseOf(l);
    return l.hardwareEnabled && !l.x2apicMode && gpa >= base && gpa < base + APIC_PAGE_SIZE;
  }

  private totalRetired(): bigint {
    let n = 0n;
    for (const v of this.vcpus) n += v.counter(abi.CNT_INSTRUCTIONS);
    return n;
  }

  /** Virtual time in ns (what the guest's clocks have seen). */
  get virtualNs(): number { return this.nowNs; }

  /** Instructions retired on this machine, by all vCPUs. */
  get instructions(): bigint { return this.totalRetired() - this.instructionsAtStart; }

  /** Ask a running `run` to return at the next exit (Ctrl-A X, a script's timeout). */
  stop(): void { this.userStop = true; }

  /** An interrupt vCPU `i` could take now: ExtINT from the PIC through LINT0, or a LAPIC vector. */
  private interruptReady(i: number): boolean {
    const l = this.lapics[i];
    if (l.extIntPending) return this.pic.interruptPending;
    return l.pendingVector() >= 0;
  }

  private acknowledgeInterrupt(i: number): number {
    const l = this.lapics[i];
    if (l.extIntPending && this.pic.interruptPending) {
      l.acknowledgeExtInt();
      return this.pic.acknowledge();
    }
    return l.acknowledge();
  }

  /** Inject when the guest can take it; otherwise ask the core for an interrupt-window exit. */
  private deliverInterrupts(i: number): void {
    const v = this.vcpus[i];
    if (v.pendingInterrupt >= 0 || !this.interruptReady(i)) { v.requestInterruptWindow(false); return; }
    if (v.interruptsEnabled) { v.injectInterrupt(this.acknowledgeInterrupt(i)); v.requestInterruptWindow(false); }
    else v.requestInterruptWindow(true);
  }

  private wakeable(i: number): boolean {
    const v = this.vcpus[i];
    return this.interruptReady(i) || v.pendingInterrupt >= 0 || v.nmiPending;
  }

  /** Run until something ends the run or `maxInstructions` of virtual time have passed (1 ns per
   *  instruction; the time halted vCPUs skip counts too). This board is then a one-guest host: the
   *  host's scheduler gives every vCPU a host CPU, so in each round every running vCPU executes the
   *  same number of instructions (up to the next timer event), then virtual time moves on by that
   *  much — deterministic, and the TSCs of all vCPUs agree. */
  run(maxInstructions = 10_000_000_000): RunResult {
    const startInstr = this.instructions;
    this.userStop = false;
    this.scheduler ??= new RoundRobinScheduler<GuestEnd>([this]);
    this.scheduler.nowNs = this.nowNs;
    let end: GuestEnd | null = null;
    this.scheduler.run(maxInstructions * this.clock.nsPerInstruction, (_g, r) => { end = r; });
    const ended = end as GuestEnd | null;
    // A guest that ended can run again (a test may reset it): the next run starts a new scheduler.
    if (ended) this.scheduler = null;
    return this.result(ended ?? (this.states.some((st) => st === 'running')
      ? { reason: 'instruction-limit', message: `stopped after ${maxInstructions} instructions` }
      : { reason: 'idle', message: 'the guest is idle (halted, waiting for an interrupt)' }), startInstr);
  }

  /** A run's result, with the instructions retired since `startInstr`. */
  result(end: GuestEnd, startInstr = 0n): RunResult {
    return { reason: end.reason, status: this.debugExit.status, instructions: this.instructions - startInstr, message: end.message };
  }

  // ---- The scheduler's view of this guest (emu/hv/sched) ----
  get vcpuCount(): number { return this.vcpus.length; }
  pollStop(): GuestEnd | null {
    if (this.stopRequest) {
      const r = this.stopRequest;
      this.stopRequest = null;
      return { reason: r, message: r === 'poweroff' ? 'the guest powered off' : 'the guest reset the machine' };
    }
    if (this.userStop) return { reason: 'stopped', message: 'stopped' };
    return null;
  }
  wakeHalted(): void {
    for (let i = 0; i < this.vcpus.length; i++) {
      if (this.states[i] === 'paging' && this.clock.now() >= this.pagingUntil[i]) this.states[i] = 'running';
      if (this.states[i] === 'halted' && (this.wakeable(i) || this.unhalted[i])) { this.states[i] = 'running'; this.unhalted[i] = false; }
    }
  }
  /** The scheduler is about to run vCPU `i`, which has waited `stealNs` in total while runnable. */
  enterVcpu(i: number, stealNs: number): void {
    this.stealNs[i] = stealNs;
    if (this.ple) this.pleWindow[i] = this.ple.window;
    this.pv?.enterVcpu(i, stealNs);
  }
  /** vCPU `i` lost its host CPU while runnable. */
  preemptVcpu(i: number): void { this.pv?.preemptVcpu(i); }
  /** Whether vCPU `i` yielded in its last slice, and to whom (-1: any vCPU of this guest). */
  takeYield(i: number): number | null {
    const r = this.yieldRequest[i];
    this.yieldRequest[i] = null;
    return r;
  }

  /** What KVM's paravirtual interface needs of this board. */
  private paravirtBoard() {
    return {
      vcpuCount: this.vcpus.length,
      ramBytes: this.vm.ramBytes,
      vcpuOfApicId: (id: number) => this.lapics.findIndex((l) => l.apicId === id),
      atCpl0: (i: number) => (this.vcpus[i].segment(abi.SEG_CS).selector & 3) === 0 || (this.vcpus[i].cr0 & 1n) === 0n,
      unhalt: (i: number) => {
        if (this.states[i] === 'halted') this.states[i] = 'running';
        else if (this.states[i] === 'running') this.unhalted[i] = true;
      },
      deliverIpi: (i: number, vector: number, mode: number, level: boolean) => {
        const l = this.lapics[i];
        if (!l.hardwareEnabled) return false;
        l.accept({ vector, deliveryMode: mode, logical: false, destination: l.apicId, wide: true, shorthand: 0, levelTriggered: level, assert: true });
        return true;
      },
      yieldTo: (from: number, to: number) => { this.yieldRequest[from] = to; },
      flushTlb: (i: number) => this.vcpus[i].flushTlb(),
      readGuest: (gpa: number, length: number) => this.vm.memory.read(gpa, length),
      writeGuest: (gpa: number, bytes: Uint8Array) => this.vm.memory.write(gpa, bytes),
    };
  }
  isRunnable(i: number): boolean { return this.states[i] === 'running'; }
  stuck(): GuestEnd | null {
    if (this.states.some((st) => st === 'running' || st === 'paging')) return null;
    if (this.clock.nextDeadline() !== Infinity && this.vcpus.some((v, i) => this.states[i] === 'halted' && v.interruptsEnabled)) return null;
    return { reason: 'halted', message: `the guest halted at 0x${this.vcpu.rip.toString(16)} with nothing to wake it` };
  }
  nextDeadline(): number { return this.clock.nextDeadline(); }
  stopPending(): boolean { return this.stopRequest !== null || this.userStop; }
  advance(ns: number): void { this.nowNs = ns; this.clock.advanceTo(ns); }

  /** Run vCPU `i` for `budgetNs` of this round (less if it halts or yields), starting `offsetNs`
   *  into the round (the rest of a yielder's round); handles its exits. Returns a result when the
   *  run must end. */
  runSlice(i: number, budgetNs: number, offsetNs = 0): GuestEnd | null {
    const v = this.vcpus[i];
    const retiredBefore = v.counter(abi.CNT_INSTRUCTIONS);
    try {
      return this.runVcpu(i, Math.floor(budgetNs / this.clock.nsPerInstruction), this.nowNs + offsetNs);
    } finally {
      this.lastSliceNs[i] = Number(v.counter(abi.CNT_INSTRUCTIONS) - retiredBefore) * this.clock.nsPerInstruction;
    }
  }

  /** The host ns vCPU `i` ran in its last slice (it retired one instruction per nsPerInstruction). */
  ranNs(i: number): number { return this.lastSliceNs[i]; }
  /** When vCPU `i`, blocked on a swap-in, can go on (null: not blocked). */
  resumeAt(i: number): number | null { return this.states[i] === 'paging' ? this.pagingUntil[i] : null; }

  /** The exit loop of one slice: `budget` instructions from `startNs` of virtual time. */
  private runVcpu(i: number, budget: number, startNs: number): GuestEnd | null {
    const v = this.vcpus[i];
    if (this.states[i] === 'paging' && startNs >= this.pagingUntil[i]) this.states[i] = 'running'; // (resumed in the round)
    this.applyApicEvents(i);
    v.configurePauseLoopExiting(this.ple?.gap ?? 0, this.ple ? this.pleWindow[i] : 0); // (INIT clears the vCPU's state)
    const retiredBefore = v.counter(abi.CNT_INSTRUCTIONS);
    const unimplementedBefore = v.counter(abi.CNT_UNIMPLEMENTED);
    // TSC = virtual time: the round's start plus the instructions this vCPU ran in it.
    v.setReg64(abi.ST_TSC_OFFSET, BigInt.asUintN(64, BigInt(Math.round(startNs / this.clock.nsPerInstruction)) - retiredBefore));
    for (;;) {
      const ran = Number(v.counter(abi.CNT_INSTRUCTIONS) - retiredBefore);
      if (ran >= budget) return null;
      // Device reads in the middle of a slice see the time this vCPU has reached.
      this.clock.advanceTo(startNs + ran * this.clock.nsPerInstruction);
      this.deliverInterrupts(i);
      const reason = v.run(budget - ran);
      if (this.vm.outOfMemory) return { reason: 'out-of-memory', message: this.vm.outOfMemoryMessage() };
      if (this.host.deviceError) {
        const e = this.host.deviceError;
        this.host.deviceError = null;
        return { reason: 'exception', message: `a device failed on vCPU ${i}'s access: ${e.message}` };
      }
      if (this.stopOnUnimplemented && v.counter(abi.CNT_UNIMPLEMENTED) !== unimplementedBefore) {
        return { reason: 'unimplemented', message: this.describeUnimplemented(i) };
      }
      switch (reason) {
        case abi.EXIT_BUDGET: case abi.EXIT_IRQ_WINDOW: break;
        case abi.EXIT_IO: {
          this.exitCounts.io++;
          const io = v.io();
          this.clock.advanceTo(startNs + Number(v.counter(abi.CNT_INSTRUCTIONS) - retiredBefore) * this.clock.nsPerInstruction);
          try {
            if (io.isIn) v.completeIn(this.bus.read(io.port, io.size));
            else this.bus.write(io.port, io.size, io.data);
          } catch (e) {
            return { reason: 'exception', message: `the device at port 0x${io.port.toString(16)} failed: ${(e as Error).message}` };
          }
          if (this.debugExit.status !== null) return { reason: 'debug-exit', message: `the guest exited with status ${this.debugExit.status}` };
          if (this.stopRequest) return null;
          break;
        }
        case abi.EXIT_HLT:
          this.exitCounts.halt++;
          if (this.wakeable(i)) break;
          if (this.unhalted[i]) { this.unhalted[i] = false; break; } // kicked before it halted
          this.states[i] = 'halted';
          return null;
        case abi.EXIT_HYPERCALL: {
          this.exitCounts.hypercall++;
          const r = { nr: v.reg(0), a0: v.reg(3), a1: v.reg(1), a2: v.reg(2), a3: v.reg(6) }; // RAX; RBX, RCX, RDX, RSI
          v.setReg(0, BigInt.asUintN(64, this.pv ? this.pv.hypercall(i, r) : -1000n)); // -KVM_ENOSYS without the interface
          if (this.yieldRequest[i] !== null) return null; // KVM_HC_SCHED_YIELD: the slice ends here
          break;
        }
        case abi.EXIT_PAUSE_LOOP:
          // A spinning vCPU: give the host CPU to a sibling (KVM's kvm_vcpu_on_spin), and let this one
          // spin longer before its next exit (grow_ple_window).
          this.exitCounts.pauseLoop++;
          if (this.ple) this.pleWindow[i] = Math.min(this.pleWindow[i] * 2, this.ple.window * PLE_WINDOW_GROWTH_MAX);
          this.yieldRequest[i] = -1;
          return null;
        case abi.EXIT_SHUTDOWN:
          return { reason: 'shutdown', message: `triple fault on vCPU ${i}: ${this.describeLastInstruction(v)}${this.unimplementedSummary()}` };
        case abi.EXIT_EXCEPTION: {
          const e = v.exit();
          return { reason: 'exception', message: `exception ${e.vector} at ${this.describeLastInstruction(v)}` };
        }
        case abi.EXIT_EPT_VIOLATION: {
          // The host memory manager's: a first touch gets a frame and the instruction restarts.
          this.exitCounts.eptViolation++;
          const e = v.exit();
          const r = this.vm.handleEptViolation(e.address);
          if (r === 'mapped') {
            // A major fault: the vCPU waits for the swap device (no async PF: the guest just stalls),
            // then restarts the instruction.
            const wait = this.vm.memory.lastFaultNs;
            if (wait > 0) {
              this.pagingUntil[i] = startNs + Number(v.counter(abi.CNT_INSTRUCTIONS) - retiredBefore) * this.clock.nsPerInstruction + wait;
              this.states[i] = 'paging';
              this.clock.schedule(this.pagingUntil[i], () => {}); // (the round ends when it is done)
              return null;
            }
            break;
          }
          if (r === 'out-of-memory') return { reason: 'out-of-memory', message: this.vm.outOfMemoryMessage() };
          return { reason: 'exception', message: `an EPT violation the host cannot resolve at gpa 0x${e.address.toString(16)} (qualification 0x${e.errorCode.toString(16)}) on vCPU ${i}` };
        }
        default:
          return { reason: 'exception', message: `unexpected exit ${reason}` };
      }
    }
  }

  /** vCPU `i` takes up an INIT (architectural reset, SDM Vol. 3A, 9.1.1) and a start-up IPI: real
   *  mode at vector * 4 KiB, CS = vector << 8, IP = 0 (9.4.4.1). */
  private applyApicEvents(i: number): void {
    const e = this.apEvents[i];
    if (!e) return;
    this.apEvents[i] = null;
    const v = this.vcpus[i];
    if (e.init) v.resetArchitectural();
    if (e.sipi !== null) {
      v.setSegment(abi.SEG_CS, { base: BigInt(e.sipi << 12), limit: 0xffff, selector: e.sipi << 8, attr: 0x9b });
      v.rip = 0n;
    }
  }

  /** The instruction hvlab does not implement that vCPU `i` just met: address, bytes, opcode. */
  private describeUnimplemented(i: number): string {
    const v = this.vcpus[i];
    const lin = v.reg64(abi.ST_UNIMPLEMENTED_LIN);
    const where = v.probeWalk(lin, 'fetch', 0, true);
    const gpa = where.ok ? Number(where.gpa) : Number(lin);
    const bytes = gpa + 15 <= this.vm.ramBytes ? Array.from(this.vm.memory.read(gpa, 15), (b) => b.toString(16).padStart(2, '0')).join(' ') : 'unreadable';
    return `vCPU ${i} met an instruction hvlab does not implement at 0x${lin.toString(16)} (bytes ${bytes}; opcode ${opcodeName(v.exit().opcode)}): the guest got #UD${this.unimplementedSummary()}`;
  }

  private describeLastInstruction(v: Vcpu = this.vcpu): string {
    const e = v.exit();
    let raw = e.bytes;
    if (raw.length === 0) {
      // The core copies the bytes only when CS:RIP is a plain offset into RAM: else read them
      // through the guest's own translation (a cold walk) and its memory map.
      const where = v.probeWalk(v.segment(abi.SEG_CS).base + e.rip, 'fetch', 0, true);
      const gpa = where.ok ? Number(where.gpa) : -1;
      if (gpa >= 0 && gpa + 15 <= this.vm.ramBytes) raw = this.vm.memory.read(gpa, 15);
    }
    const bytes = Array.from(raw, (b) => b.toString(16).padStart(2, '0')).join(' ');
    return `0x${e.rip.toString(16)} (${bytes || 'no bytes fetched'})`;
  }

  /** The #UD counts by opcode, for a message. */
  unimplementedSummary(): string {
    const missed = this.vcpu.unimplementedOpcodes();
    if (missed.size === 0) return '';
    const list = [...missed].map(([op, n]) => `${opcodeName(op)} ×${n}`).join(', ');
    return `; unimplemented instructions hit (#UD): ${list}`;
  }
}
