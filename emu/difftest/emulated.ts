// Runs differential-test cases in hvlab's core with the same layout as the native runner:
// flat guest RAM covering the code page and the data region, INT3 after the instruction.
import * as abi from '../../wasm/abi.ts';
import { Host, type Vcpu } from '../machine/host.ts';
import { defaultCpuid } from '../cpu/cpuid.ts';
import { defaultCpuModel, type CpuModel } from '../cpu/models.ts';
import {
  CODE_ADDR, CODE_OFFSET, CODE_SIZE, DATA_ADDR, DATA_SIZE, FXSAVE_BYTES, GS_BASE, fillPattern,
  type CaseInput, type CaseResult, type Outcome,
} from './types.ts';

/** Guest RAM for difftest: 4 MiB covers the code page (2 MiB) and the data region (3 MiB). */
const RAM_BYTES = 4 << 20;
/** End of the FXSAVE fields FXRSTOR loads (XMM15 ends at 0xa0 + 16 * 16 = 416). */
const FX_LOADED_END = abi.FX_XMM0 + 16 * 16;

/** The signal the native CPU delivers for an exception vector, as the runner reports it. */
export function outcomeOfVector(vector: number): Outcome {
  switch (vector) {
    case abi.VEC_BP: return 'trap';
    case abi.VEC_DE: return 'DE';
    case abi.VEC_UD: return 'UD';
    case abi.VEC_GP: case abi.VEC_PF: case abi.VEC_SS: return 'SEGV';
    case abi.VEC_AC: return 'BUS';
    case abi.VEC_MF: return 'MF';
    case abi.VEC_XM: return 'XM';
    default: return 'other';
  }
}

/** FSW.TOP of the FXSAVE image at `at`. */
function topOf(img: Uint8Array, at: number): number { return (img[at + abi.FX_FSW + 1] >> 3) & 7; }

/** Copy the eight 16-byte ST slots between an image in stack order and the vCPU state in physical
 *  order: stack slot i <-> physical slot (top + i) & 7. */
function copyStSlots(from: Uint8Array, fromAt: number, to: Uint8Array, toAt: number, top: number, toPhysical: boolean): void {
  for (let i = 0; i < 8; i++) {
    const phys = abi.FX_ST0 + 16 * ((top + i) & 7), stack = abi.FX_ST0 + 16 * i;
    const src = fromAt + (toPhysical ? stack : phys), dst = toAt + (toPhysical ? phys : stack);
    to.set(from.subarray(src, src + 16), dst);
  }
}

export class EmulatedRunner {
  readonly host: Host;
  readonly vcpu: Vcpu;
  /** The CPU model the cases run on (default: the host's vendor, emu/cpu/models.ts). */
  constructor(readonly model: CpuModel = defaultCpuModel()) {
    this.host = new Host({ ramBytes: RAM_BYTES, cpuid: defaultCpuid(model) });
    this.vcpu = this.host.vcpu(0);
  }
  private readonly pattern = new Uint8Array(DATA_SIZE);
  private readonly int3Page = new Uint8Array(CODE_SIZE).fill(0xcc);

  run(c: CaseInput, budget = 100_000): CaseResult {
    const ram = this.host.ram();
    ram.set(this.int3Page, CODE_ADDR);
    fillPattern(c.dataSeed, this.pattern);
    ram.set(this.pattern, DATA_ADDR);
    this.host.writeGuest(CODE_ADDR + CODE_OFFSET, c.code); // also drops stale decoded code
    const v = this.vcpu;
    v.reset();
    c.regs.forEach((r, i) => v.setReg(i, r));
    v.rip = BigInt(CODE_ADDR + CODE_OFFSET);
    v.rflags = c.rflags | 0x202n;
    v.gsBase = BigInt(GS_BASE);
    // reset() left the default FPU state (FNINIT values, MXCSR 0x1F80); a case image replaces it
    // like FXRSTOR would: every field but MXCSR_MASK (and the reserved/available tail 416..511).
    const fx = v.base + abi.ST_FXSAVE;
    if (c.fpu) {
      if (c.fpu.length !== FXSAVE_BYTES) throw new Error(`case FPU image is ${c.fpu.length} bytes`);
      const bytes = this.host.bytes;
      bytes.set(c.fpu.subarray(0, abi.FX_MXCSR_MASK), fx);
      bytes.set(c.fpu.subarray(abi.FX_XMM0, FX_LOADED_END), fx + abi.FX_XMM0);
      // The image's ST slots are in stack order (slot i = ST(i)); the core keeps them in physical
      // order (slot j = R_j, ST(i) = R_((TOP + i) & 7)), so MM_j is slot j (wasm/abi.ts FX_ST0).
      copyStSlots(c.fpu, 0, bytes, fx, topOf(c.fpu, 0), true);
    }
    const reason = v.run(budget);
    let outcome: Outcome;
    if (reason === abi.EXIT_EXCEPTION) outcome = outcomeOfVector(v.exit().vector);
    else if (reason === abi.EXIT_BUDGET) outcome = 'timeout';
    else outcome = 'other';
    const after = ram.subarray(DATA_ADDR, DATA_ADDR + DATA_SIZE);
    const dataDiff: [number, number][] = [];
    for (let i = 0; i < DATA_SIZE; i++) if (after[i] !== this.pattern[i]) dataDiff.push([i, after[i]]);
    const result: CaseResult = {
      outcome,
      regs: Array.from({ length: 16 }, (_, i) => v.reg(i)),
      rip: v.rip,
      rflags: v.rflags,
      dataDiff,
    };
    if (c.fpu) {
      const img = this.host.bytes.slice(fx, fx + FXSAVE_BYTES);
      copyStSlots(this.host.bytes, fx, img, 0, topOf(img, 0), false);
      result.fpu = img;
    }
    return result;
  }
}
