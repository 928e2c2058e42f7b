// A PC as far as hvlab builds one today: one host (WebAssembly instance), one vCPU, guest RAM, the
// port bus with COM1 and isa-debug-exit. `run` is the VMM loop: it calls the core (KVM_RUN) and
// handles each exit: port I/O goes to the devices, HLT with nothing to wake the CPU ends the run,
// a triple fault is a shutdown. The interrupt controllers and timers come with the Linux-boot issue.
import * as abi from '../../wasm/abi.ts';
import { Host, type Vcpu, opcodeName } from './host.ts';
import { PortBus } from '../devices/port-bus.ts';
import { Uart16550 } from '../devices/uart16550.ts';
import { DebugExit } from '../devices/debug-exit.ts';

export interface MachineOptions {
  ramBytes: number;
  /** Firmware image for the reset vector (`hvlab boot --bios`). */
  firmware?: Uint8Array;
  /** Receives every byte the guest writes to COM1. */
  serialOut?: (byte: number) => void;
}

export type StopReason = 'debug-exit' | 'halted' | 'shutdown' | 'exception' | 'instruction-limit';

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

export class Machine {
  readonly host: Host;
  readonly vcpu: Vcpu;
  readonly bus = new PortBus();
  readonly com1: Uart16550;
  readonly debugExit = new DebugExit();

  constructor(opts: MachineOptions) {
    this.host = new Host({ ramBytes: opts.ramBytes, firmware: opts.firmware });
    this.vcpu = this.host.vcpu(0);
    this.vcpu.resetArchitectural();
    this.com1 = new Uart16550(0x3f8, opts.serialOut ?? (() => {}), 'com1');
    this.bus.register(0x3f8, 8, this.com1);
    this.bus.register(this.debugExit.port, 1, this.debugExit);
  }

  run(maxInstructions = 10_000_000_000): RunResult {
    const v = this.vcpu;
    const start = v.counter(abi.CNT_INSTRUCTIONS);
    const done = (reason: StopReason, message: string): RunResult => ({
      reason, status: this.debugExit.status, instructions: v.counter(abi.CNT_INSTRUCTIONS) - start, message,
    });
    for (;;) {
      const used = Number(v.counter(abi.CNT_INSTRUCTIONS) - start);
      if (used >= maxInstructions) return done('instruction-limit', `stopped after ${used} instructions`);
      const reason = v.run(Math.min(SLICE, maxInstructions - used));
      switch (reason) {
        case abi.EXIT_BUDGET: break;
        case abi.EXIT_IO: {
          const io = v.io();
          if (io.isIn) v.completeIn(this.bus.read(io.port, io.size));
          else this.bus.write(io.port, io.size, io.data);
          if (this.debugExit.status !== null) return done('debug-exit', `the guest exited with status ${this.debugExit.status}`);
          break;
        }
        case abi.EXIT_HLT:
          // Nothing can raise an interrupt yet, so a halted CPU stays halted.
          return done('halted', `the guest halted at 0x${v.exit().rip.toString(16)} with nothing to wake it`);
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

  private unimplementedSummary(): string {
    const missed = this.vcpu.unimplementedOpcodes();
    if (missed.size === 0) return '';
    const list = [...missed].map(([op, n]) => `${opcodeName(op)} ×${n}`).join(', ');
    return `; unimplemented instructions hit (#UD): ${list}`;
  }
}
