// Shared shapes of the differential tester: a case runs the same instruction bytes on this
// machine's CPU (test/native/runner.c) and in hvlab's WebAssembly core, then both outcomes are compared.

import * as abi from '../../wasm/abi.ts';

/** Guest-linear layout of a case, identical natively (mmap MAP_FIXED) and in the emulator (flat RAM). */
export const CODE_ADDR = 0x200000; // one RWX page; the instruction starts at CODE_ADDR + CODE_OFFSET
export const CODE_OFFSET = 0x800; // every other byte of the code page is 0xCC (INT3)
export const CODE_SIZE = 0x1000;
export const DATA_ADDR = 0x300000; // the compared data region, filled from the case's seed
export const DATA_SIZE = 0x2000;
export const GS_BASE = DATA_ADDR; // GS base for gs: overrides (FS is glibc's TLS natively and is not used)

export const REG_NAMES = ['rax', 'rcx', 'rdx', 'rbx', 'rsp', 'rbp', 'rsi', 'rdi',
  'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15'] as const;

export interface CaseInput {
  /** Instruction bytes, 1..15. Placed at CODE_ADDR + CODE_OFFSET; INT3 bytes follow. */
  code: Uint8Array;
  /** RAX..R15 in encoding order. */
  regs: bigint[];
  /** Initial RFLAGS: only CF PF AF ZF SF OF DF may be set (IF and bit 1 are added by both sides). */
  rflags: bigint;
  /** Seed of the data region's initial contents (see fillPattern). */
  dataSeed: number;
  /**
   * x87/MMX/SSE state to start from: a 512-byte FXSAVE image in the 64-bit (FXSAVE64) layout of
   * wasm/abi.ts (FX_* offsets). Natively it is loaded with FXRSTOR64; hvlab copies it into the
   * vCPU state at ST_FXSAVE (except MXCSR_MASK, which FXRSTOR ignores). Its MXCSR must only set
   * bits the host supports (MXCSR_MASK, normally 0xFFFF). When set, the result carries the image
   * at the end of the case (CaseResult.fpu) and the FPU state is compared. Without it both sides
   * start from the default image (see defaultFpuImage) and the FPU state is not reported.
   * Keep images canonical, as the generator does: FXRSTOR forces FCW bit 6 to 1 and bits 7 and
   * 13-15 to 0, and recomputes FSW.ES/B from the exception flags and masks, while hvlab copies
   * the image as it is.
   */
  fpu?: Uint8Array;
}

/** How a case ended. 'trap' = reached an INT3 after the instruction (the normal end).
 *  'MF' = x87 floating-point error (#MF, vector 16): a waiting x87/MMX instruction found an
 *  unmasked exception pending in FSW (set by an earlier instruction or loaded with the image).
 *  'XM' = unmasked SIMD floating-point exception (#XM, vector 19). Natively both are SIGFPE,
 *  told apart from #DE by the vector the kernel reports (see test/native/runner.c). */
export type Outcome = 'trap' | 'DE' | 'UD' | 'SEGV' | 'BUS' | 'timeout' | 'other' | 'MF' | 'XM';

export interface CaseResult {
  outcome: Outcome;
  regs: bigint[];
  rip: bigint; // after a trap: address after the INT3; after a fault: the faulting instruction
  rflags: bigint;
  /** Bytes of the data region that differ from the initial pattern: [offset, value] pairs, ascending. */
  dataDiff: [number, number][];
  /** The FXSAVE image (512 bytes, 64-bit layout) at the end of the case; only when the input had
   *  `fpu`. Natively: the kernel's signal-frame copy (bytes 464..511 hold its fpx_sw_bytes). */
  fpu?: Uint8Array;
}

/** Size of an FXSAVE image. */
export const FXSAVE_BYTES = abi.FXSAVE_SIZE;

/** The state both sides start from when a case has no `fpu` image: FNINIT values (FCW 0x037F,
 *  FSW 0, abridged FTW 0 = all empty), MXCSR 0x1F80, every ST/MM/XMM register 0. */
export function defaultFpuImage(): Uint8Array {
  const img = new Uint8Array(FXSAVE_BYTES);
  const v = new DataView(img.buffer);
  v.setUint16(abi.FX_FCW, 0x037f, true);
  v.setUint32(abi.FX_MXCSR, 0x1f80, true);
  return img;
}

/** xorshift32 fill of the data region: both sides compute the same initial bytes from the seed. */
export function fillPattern(seed: number, out: Uint8Array): void {
  let x = seed >>> 0 || 1;
  const words = out.length >>> 2;
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  for (let i = 0; i < words; i++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    view.setUint32(i * 4, x, true);
  }
}
