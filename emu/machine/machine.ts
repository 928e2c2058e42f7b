// The PC: one host (WebAssembly instance), one vCPU, guest RAM, and the devices of a QEMU-like
// i440FX board wired as a PC wires them (ARCHITECTURE.md, section 4): COM1, the 8259 pair, the 8254
// PIT, the RTC/CMOS, the i8042 (reset line), the 0xCF9 reset register, the local APIC and the IOAPIC,
// PCI configuration mechanism #1 with the host and ISA bridges, the ACPI PM block (PM timer, S5
// soft-off), fw_cfg, isa-debug-exit and pc-testdev. `run` is the VMM loop: it calls the core
// (KVM_RUN), handles each exit, delivers interrupts at the guest's interrupt window, and moves
// virtual time: time follows the instruction count and HLT skips to the next timer event, so a run
// repeats exactly.
import * as abi from '../../wasm/abi.ts';
import { Host, type Vcpu, opcodeName, type MmuMode } from './host.ts';
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
import { I440fxHostBridge, Piix3IsaBridge } from '../devices/pci/chipset.ts';
import { AcpiPm, ACPI_PM_PORT_COUNT, acpiPmBlocks } from '../devices/acpi-pm.ts';
import { FwCfg } from '../devices/fw-cfg.ts';
import { defaultCpuid, type CpuidEntry } from '../cpu/cpuid.ts';
import type { PageSize } from '../hv/mm/nested-page-table.ts';

export interface MachineOptions {
  ramBytes: number;
  /** Firmware image for the reset vector (`hvlab boot --bios`). */
  firmware?: Uint8Array;
  /** Receives every byte the guest writes to COM1. */
  serialOut?: (byte: number) => void;
  mmu?: MmuMode;
  hostPageSize?: PageSize;
}

/** 'halted': nothing can ever wake the vCPU (HLT with IF = 0 or no timer left); 'idle': halted,
 *  waiting for an interrupt, when the run's budget of virtual time ran out (input may wake it). */
export type StopReason = 'debug-exit' | 'halted' | 'idle' | 'shutdown' | 'exception' | 'instruction-limit' | 'poweroff' | 'reset' | 'stopped';

export interface RunResult {
  reason: StopReason;
  /** Exit status requested through isa-debug-exit. */
  status: number | null;
  instructions: bigint;
  /** A sentence for the user, naming the instruction when the guest died on one. */
  message: string;
}

/** Instructions per call into the core: returning regularly lets V8 tier the module up. */
const SLICE = 1_000_000;

/** ISA IRQ -> IOAPIC GSI: IRQ 0 is wired to pin 2 (the MADT says so with an override). */
const isaGsi = (irq: number) => (irq === 0 ? 2 : irq);

/** The CPUID of a PC with a local APIC: APIC, x2APIC and TSC-deadline on top of the core's table,
 *  and the initial APIC ID in leaf 1 EBX[31:24]. */
function pcCpuid(): CpuidEntry[] {
  return defaultCpuid().map((e) => (e.leaf === 1
    ? { ...e, edx: (e.edx | (1 << 9)) >>> 0, ecx: (e.ecx | (1 << 21) | (1 << 24)) >>> 0, ebx: (e.ebx & 0x00ffffff) | (1 << 16) }
    : e));
}

export class Machine {
  readonly host: Host;
  readonly vcpu: Vcpu;
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
  /** Set by a device that ends the run (power-off, reset). */
  private stopRequest: StopReason | null = null;
  /** Virtual ns spent halted (skipped): TSC = instructions + this, so the TSC follows virtual time. */
  private haltedNs = 0;
  private instructionsAtStart = 0n;
  private userStop = false;
  /** The vCPU executed HLT and waits for an interrupt. */
  private halted = false;

  constructor(opts: MachineOptions) {
    this.host = new Host({ ramBytes: opts.ramBytes, firmware: opts.firmware, mmu: opts.mmu, hostPageSize: opts.hostPageSize, cpuid: pcCpuid() });
    this.vcpu = this.host.vcpu(0);
    this.vcpu.resetArchitectural();
    this.instructionsAtStart = this.vcpu.counter(abi.CNT_INSTRUCTIONS);

    // Interrupt controllers: ISA lines go to both the 8259s and the IOAPIC (the guest picks one).
    this.ioapic = new IoApic(this.apicBus);
    this.lapic = new LocalApic(0, this.clock, this.apicBus, { bsp: true, maxPhysAddrBits: 40 });
    this.apicBus.attach(this.lapic);
    this.lapic.onNmi = () => this.vcpu.injectNmi();
    this.pic.onOutputChange = (level) => this.lapic.setLint(0, level);
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
      read: (gpa, len) => {
        if (!(gpa >= 0 && gpa + len <= this.host.ramBytes)) throw new RangeError('outside RAM');
        return this.host.ram().slice(gpa, gpa + len);
      },
      write: (gpa, bytes) => this.host.writeGuest(gpa, bytes),
    }, { cpus: 1, ramSize: opts.ramBytes });
    this.fwCfg.attach(this.bus);

    // The core asks the host for device memory and device MSRs.
    this.host.devices = {
      mmioRead: (_vcpu, gpa, size) => (this.apicPage(gpa) ? this.lapic.read(gpa - this.apicBase, size) : this.mmio.read(gpa, size)),
      mmioWrite: (_vcpu, gpa, size, value) => {
        if (this.apicPage(gpa)) this.lapic.write(gpa - this.apicBase, size, value);
        else this.mmio.write(gpa, size, value);
      },
      msrRead: (_vcpu, index) => (LocalApic.isApicMsr(index) ? this.lapic.readMsr(index) : undefined),
      msrWrite: (_vcpu, index, value) => (LocalApic.isApicMsr(index) ? this.lapic.writeMsr(index, value) : undefined),
    };
  }

  /** ACPI description of this board (for buildAcpiTables). */
  acpiConfig(tableBase: number, rsdpAddress: number) {
    return {
      cpus: 1,
      ioApic: { id: 0, address: IOAPIC_DEFAULT_BASE, gsiBase: 0 },
      localApicAddress: APIC_DEFAULT_BASE,
      pm: { ...acpiPmBlocks(this.pm.base), sciIrq: 9, resetRegister: { port: 0xcf9, value: 0x06 } },
      hpet: false as const,
      tableBase, rsdpAddress,
    };
  }

  private get apicBase(): number { return Number(this.lapic.apicBase & 0xfffff000n); }
  private apicPage(gpa: number): boolean {
    return this.lapic.hardwareEnabled && !this.lapic.x2apicMode && gpa >= this.apicBase && gpa < this.apicBase + APIC_PAGE_SIZE;
  }

  /** Instructions retired on this machine. */
  get instructions(): bigint { return this.vcpu.counter(abi.CNT_INSTRUCTIONS) - this.instructionsAtStart; }

  /** Virtual time in ns: the instructions retired plus the time skipped while halted. */
  private virtualNow(): number { return Number(this.instructions) * this.clock.nsPerInstruction + this.haltedNs; }

  /** Ask a running `run` to return at the next exit (Ctrl-A X, a script's timeout). */
  stop(): void { this.userStop = true; }

  /** An interrupt the vCPU could take now: ExtINT from the PIC through LINT0, or a LAPIC vector. */
  private interruptReady(): boolean {
    if (this.lapic.extIntPending) return this.pic.interruptPending;
    return this.lapic.pendingVector() >= 0;
  }

  private acknowledgeInterrupt(): number {
    if (this.lapic.extIntPending && this.pic.interruptPending) {
      this.lapic.acknowledgeExtInt();
      return this.pic.acknowledge();
    }
    return this.lapic.acknowledge();
  }

  /** Inject when the guest can take it; otherwise ask the core for an interrupt-window exit. */
  private deliverInterrupts(): void {
    const v = this.vcpu;
    if (v.pendingInterrupt >= 0 || !this.interruptReady()) { v.requestInterruptWindow(false); return; }
    if (v.interruptsEnabled) { v.injectInterrupt(this.acknowledgeInterrupt()); v.requestInterruptWindow(false); }
    else v.requestInterruptWindow(true);
  }

  /** Run until something ends the run or `maxInstructions` of virtual time (instructions, and the
   *  time a halted vCPU skips, counted as instructions) have passed. */
  run(maxInstructions = 10_000_000_000): RunResult {
    const v = this.vcpu;
    const start = this.instructions;
    const startNs = this.virtualNow();
    const done = (reason: StopReason, message: string): RunResult => ({
      reason, status: this.debugExit.status, instructions: this.instructions - start, message,
    });
    this.userStop = false;
    let spins = 0;
    for (;;) {
      if (++spins % 1_000_000 === 0 && process.env.HVLAB_DEBUG) {
        process.stderr.write(`[run loop: ${spins} iterations, halted ${this.halted}, now ${this.virtualNow()}, next ${this.clock.nextDeadline()}, rip ${v.rip.toString(16)}, irqReady ${this.interruptReady()}, pending ${v.pendingInterrupt}, IF ${v.interruptsEnabled}]\n`);
      }
      const used = Math.floor((this.virtualNow() - startNs) / this.clock.nsPerInstruction);
      if (this.halted) {
        if (this.interruptReady() || v.pendingInterrupt >= 0 || v.nmiPending) {
          this.halted = false;
        } else {
          // Nothing to do until the next timer event: skip virtual time to it (the TSC follows).
          const next = this.clock.nextDeadline();
          if (next === Infinity || !v.interruptsEnabled) {
            return done('halted', `the guest halted at 0x${v.rip.toString(16)} with nothing to wake it`);
          }
          if (this.stopRequest || this.userStop) { /* fall through to the checks below */ } else {
            if (used >= maxInstructions) return done('idle', 'the guest is idle (halted, waiting for an interrupt)');
            const skip = Math.min(Math.max(0, next - this.virtualNow()), (maxInstructions - used) * this.clock.nsPerInstruction);
            this.haltedNs += skip;
            v.setReg64(abi.ST_TSC_OFFSET, BigInt(Math.round(this.haltedNs / this.clock.nsPerInstruction)));
            this.clock.advanceTo(this.virtualNow());
            continue;
          }
        }
      }
      if (this.stopRequest) { const r = this.stopRequest; this.stopRequest = null; return done(r, r === 'poweroff' ? 'the guest powered off' : 'the guest reset the machine'); }
      if (this.userStop) return done('stopped', 'stopped');
      if (used >= maxInstructions) return done('instruction-limit', `stopped after ${used} instructions`);
      this.deliverInterrupts();
      const untilEvent = Math.ceil((this.clock.nextDeadline() - this.virtualNow()) / this.clock.nsPerInstruction);
      const budget = Math.max(1, Math.min(SLICE, maxInstructions - used, untilEvent));
      const reason = v.run(budget);
      this.clock.advanceTo(this.virtualNow());
      switch (reason) {
        case abi.EXIT_BUDGET: case abi.EXIT_IRQ_WINDOW: break;
        case abi.EXIT_IO: {
          const io = v.io();
          if (io.isIn) v.completeIn(this.bus.read(io.port, io.size));
          else this.bus.write(io.port, io.size, io.data);
          if (this.debugExit.status !== null) return done('debug-exit', `the guest exited with status ${this.debugExit.status}`);
          break;
        }
        case abi.EXIT_HLT: this.halted = true; break;
        case abi.EXIT_SHUTDOWN:
          return done('shutdown', `triple fault: ${this.describeLastInstruction()}${this.unimplementedSummary()}`);
        case abi.EXIT_EXCEPTION: {
          const e = v.exit();
          return done('exception', `exception ${e.vector} at ${this.describeLastInstruction()}`);
        }
        default:
          return done('exception', `unexpected exit ${reason}`);
      }
    }
  }

  private describeLastInstruction(): string {
    const e = this.vcpu.exit();
    const bytes = Array.from(e.bytes, (b) => b.toString(16).padStart(2, '0')).join(' ');
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
