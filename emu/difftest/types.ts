// Shared shapes of the differential tester: a case runs the same instruction bytes on this
// machine's CPU (test/native/runner.c) and in hvlab's WebAssembly core, then both outcomes are compared.

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
}

/** How a case ended. 'trap' = reached an INT3 after the instruction (the normal end). */
export type Outcome = 'trap' | 'DE' | 'UD' | 'SEGV' | 'BUS' | 'timeout' | 'other';

export interface CaseResult {
  outcome: Outcome;
  regs: bigint[];
  rip: bigint; // after a trap: address after the INT3; after a fault: the faulting instruction
  rflags: bigint;
  /** Bytes of the data region that differ from the initial pattern: [offset, value] pairs, ascending. */
  dataDiff: [number, number][];
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
