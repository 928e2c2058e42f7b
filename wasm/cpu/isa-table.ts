// The instruction table: the one source of truth for what hvlab decodes and implements.
//
// From it, wasm/gen/generate.ts emits the decoder's attribute table (ModRM present, immediate kind)
// that the AssemblyScript core reads, and the differential tester (emu/difftest) generates its
// cases, counts forms and masks the flags the manual leaves undefined. Handlers live in
// wasm/cpu/*.ts, found by the mnemonic given here. Plain TypeScript data: it is never compiled by asc.
//
// Operand tokens (Intel SDM Vol. 2, Appendix A.2 notation):
//   Eb/Ew/Ed/Ev/Eq  ModRM r/m operand (register or memory) of byte/word/dword/osize/qword
//   Gb/Gv           ModRM reg operand
//   M / Mq / Mdq    ModRM memory operand only (Mdq: CMPXCHG8B/16B, 8 or 16 bytes by REX.W)
//   Ib/Iw/Iz/Iv     immediate byte/word/osize capped at 32 bits (sign-extended)/full osize (MOV r,imm64)
//   Jb/Jz           relative branch displacement (8 or 32 bits; Intel ignores 66h on near branches)
//   Zb/Zv           register encoded in the low 3 bits of the opcode (plus REX.B)
//   AL/rAX/CL/DX/1  fixed operands
//   Ob/Ov           moffs (MOV AL/rAX <-> absolute address)
//   Xb/Xv/Yb/Yv     string operands [rSI] / [rDI]

import * as abi from '../abi.ts';

export type Imm = 'none' | 'b' | 'w' | 'z' | 'v' | 'wb' | 'moffs' | 'd';

/** Operand-size behaviour: b = byte; v = 16/32/64 by 66h/REX.W; d64 = 16/64, default 64 (stack ops);
 *  f64 = always 64 in long mode (near branches); w = always 16; none = no data operand. */
export type OSize = 'b' | 'v' | 'd64' | 'f64' | 'w' | 'none';

export interface Form {
  mn: string;
  fam: string; // family, for `hvlab difftest --only FAMILY`
  map: 0 | 1 | 2 | 3; // 0 one-byte, 1 = 0F, 2 = 0F 38, 3 = 0F 3A
  op: number;
  ext?: number; // ModRM.reg opcode extension
  modrm: boolean;
  imm: Imm;
  ops: string[];
  osize: OSize;
  /** A mandatory prefix that selects this form (F3 for POPCNT/LZCNT/TZCNT, F3 90 = PAUSE). */
  prefix?: number;
  /** RFLAGS bits the manual leaves undefined after this instruction; 'shift' and 'rotate' are
   *  count-dependent (OF undefined unless the masked count is 1; AF undefined for shifts). */
  undef?: number | 'shift' | 'rotate' | 'shiftd';
  /** Accepts REP (movs/stos/lods/ins/outs) or REPE/REPNE (cmps/scas). */
  rep?: 'rep' | 'repcc';
  /** Valid with LOCK when the destination is memory. */
  lock?: boolean;
  /** Not covered by the user-mode differential oracle (privileged, or results that depend on
   *  the host like CPUID/RDTSC); tested by other means. */
  noDiff?: boolean;
}

const CF = 0x1, PF = 0x4, AF = 0x10, ZF = 0x40, SF = 0x80, OF = 0x800;

export const forms: Form[] = [];
function f(form: Form) { forms.push(form); }

// ---- ALU: ADD OR ADC SBB AND SUB XOR CMP (00-3F, 80-83) ----
const alu = ['add', 'or', 'adc', 'sbb', 'and', 'sub', 'xor', 'cmp'];
alu.forEach((mn, k) => {
  const logic = mn === 'and' || mn === 'or' || mn === 'xor';
  const undef = logic ? AF : undefined;
  const lock = mn !== 'cmp';
  const b = k * 8;
  f({ mn, fam: 'alu', map: 0, op: b + 0, modrm: true, imm: 'none', ops: ['Eb', 'Gb'], osize: 'b', undef, lock });
  f({ mn, fam: 'alu', map: 0, op: b + 1, modrm: true, imm: 'none', ops: ['Ev', 'Gv'], osize: 'v', undef, lock });
  f({ mn, fam: 'alu', map: 0, op: b + 2, modrm: true, imm: 'none', ops: ['Gb', 'Eb'], osize: 'b', undef });
  f({ mn, fam: 'alu', map: 0, op: b + 3, modrm: true, imm: 'none', ops: ['Gv', 'Ev'], osize: 'v', undef });
  f({ mn, fam: 'alu', map: 0, op: b + 4, modrm: false, imm: 'b', ops: ['AL', 'Ib'], osize: 'b', undef });
  f({ mn, fam: 'alu', map: 0, op: b + 5, modrm: false, imm: 'z', ops: ['rAX', 'Iz'], osize: 'v', undef });
  f({ mn, fam: 'alu', map: 0, op: 0x80, ext: k, modrm: true, imm: 'b', ops: ['Eb', 'Ib'], osize: 'b', undef, lock });
  f({ mn, fam: 'alu', map: 0, op: 0x81, ext: k, modrm: true, imm: 'z', ops: ['Ev', 'Iz'], osize: 'v', undef, lock });
  f({ mn, fam: 'alu', map: 0, op: 0x83, ext: k, modrm: true, imm: 'b', ops: ['Ev', 'Ib'], osize: 'v', undef, lock });
});
f({ mn: 'test', fam: 'alu', map: 0, op: 0x84, modrm: true, imm: 'none', ops: ['Eb', 'Gb'], osize: 'b', undef: AF });
f({ mn: 'test', fam: 'alu', map: 0, op: 0x85, modrm: true, imm: 'none', ops: ['Ev', 'Gv'], osize: 'v', undef: AF });
f({ mn: 'test', fam: 'alu', map: 0, op: 0xa8, modrm: false, imm: 'b', ops: ['AL', 'Ib'], osize: 'b', undef: AF });
f({ mn: 'test', fam: 'alu', map: 0, op: 0xa9, modrm: false, imm: 'z', ops: ['rAX', 'Iz'], osize: 'v', undef: AF });

// ---- Group 3 (F6/F7), group 4/5 (FE/FF) ----
for (const [op, E, I, osize] of [[0xf6, 'Eb', 'Ib', 'b'], [0xf7, 'Ev', 'Iz', 'v']] as const) {
  // The decoder special-cases F6/F7: only /0 and /1 (TEST) carry an immediate.
  f({ mn: 'test', fam: 'alu', map: 0, op, ext: 0, modrm: true, imm: osize === 'b' ? 'b' : 'z', ops: [E, I], osize, undef: AF });
  f({ mn: 'test', fam: 'alu', map: 0, op, ext: 1, modrm: true, imm: osize === 'b' ? 'b' : 'z', ops: [E, I], osize, undef: AF });
  f({ mn: 'not', fam: 'unary', map: 0, op, ext: 2, modrm: true, imm: 'none', ops: [E], osize, lock: true });
  f({ mn: 'neg', fam: 'unary', map: 0, op, ext: 3, modrm: true, imm: 'none', ops: [E], osize, lock: true });
  f({ mn: 'mul', fam: 'muldiv', map: 0, op, ext: 4, modrm: true, imm: 'none', ops: [E], osize, undef: SF | ZF | AF | PF });
  f({ mn: 'imul', fam: 'muldiv', map: 0, op, ext: 5, modrm: true, imm: 'none', ops: [E], osize, undef: SF | ZF | AF | PF });
  f({ mn: 'div', fam: 'muldiv', map: 0, op, ext: 6, modrm: true, imm: 'none', ops: [E], osize, undef: CF | PF | AF | ZF | SF | OF });
  f({ mn: 'idiv', fam: 'muldiv', map: 0, op, ext: 7, modrm: true, imm: 'none', ops: [E], osize, undef: CF | PF | AF | ZF | SF | OF });
}
f({ mn: 'inc', fam: 'unary', map: 0, op: 0xfe, ext: 0, modrm: true, imm: 'none', ops: ['Eb'], osize: 'b', lock: true });
f({ mn: 'dec', fam: 'unary', map: 0, op: 0xfe, ext: 1, modrm: true, imm: 'none', ops: ['Eb'], osize: 'b', lock: true });
f({ mn: 'inc', fam: 'unary', map: 0, op: 0xff, ext: 0, modrm: true, imm: 'none', ops: ['Ev'], osize: 'v', lock: true });
f({ mn: 'dec', fam: 'unary', map: 0, op: 0xff, ext: 1, modrm: true, imm: 'none', ops: ['Ev'], osize: 'v', lock: true });
f({ mn: 'call', fam: 'branch', map: 0, op: 0xff, ext: 2, modrm: true, imm: 'none', ops: ['Eq'], osize: 'f64' });
f({ mn: 'jmp', fam: 'branch', map: 0, op: 0xff, ext: 4, modrm: true, imm: 'none', ops: ['Eq'], osize: 'f64' });
f({ mn: 'push', fam: 'stack', map: 0, op: 0xff, ext: 6, modrm: true, imm: 'none', ops: ['Ev'], osize: 'd64' });

// ---- Multiply ----
f({ mn: 'imul', fam: 'muldiv', map: 0, op: 0x69, modrm: true, imm: 'z', ops: ['Gv', 'Ev', 'Iz'], osize: 'v', undef: SF | ZF | AF | PF });
f({ mn: 'imul', fam: 'muldiv', map: 0, op: 0x6b, modrm: true, imm: 'b', ops: ['Gv', 'Ev', 'Ib'], osize: 'v', undef: SF | ZF | AF | PF });
f({ mn: 'imul', fam: 'muldiv', map: 1, op: 0xaf, modrm: true, imm: 'none', ops: ['Gv', 'Ev'], osize: 'v', undef: SF | ZF | AF | PF });

// ---- Shifts and rotates: group 2 ----
const grp2 = ['rol', 'ror', 'rcl', 'rcr', 'shl', 'shr', 'sal', 'sar'];
grp2.forEach((mn, k) => {
  const undef = k < 4 ? 'rotate' : 'shift';
  const fam = k < 4 ? 'rotate' : 'shift';
  f({ mn, fam, map: 0, op: 0xc0, ext: k, modrm: true, imm: 'b', ops: ['Eb', 'Ib'], osize: 'b', undef });
  f({ mn, fam, map: 0, op: 0xc1, ext: k, modrm: true, imm: 'b', ops: ['Ev', 'Ib'], osize: 'v', undef });
  f({ mn, fam, map: 0, op: 0xd0, ext: k, modrm: true, imm: 'none', ops: ['Eb', '1'], osize: 'b', undef });
  f({ mn, fam, map: 0, op: 0xd1, ext: k, modrm: true, imm: 'none', ops: ['Ev', '1'], osize: 'v', undef });
  f({ mn, fam, map: 0, op: 0xd2, ext: k, modrm: true, imm: 'none', ops: ['Eb', 'CL'], osize: 'b', undef });
  f({ mn, fam, map: 0, op: 0xd3, ext: k, modrm: true, imm: 'none', ops: ['Ev', 'CL'], osize: 'v', undef });
});
f({ mn: 'shld', fam: 'shift', map: 1, op: 0xa4, modrm: true, imm: 'b', ops: ['Ev', 'Gv', 'Ib'], osize: 'v', undef: 'shiftd' });
f({ mn: 'shld', fam: 'shift', map: 1, op: 0xa5, modrm: true, imm: 'none', ops: ['Ev', 'Gv', 'CL'], osize: 'v', undef: 'shiftd' });
f({ mn: 'shrd', fam: 'shift', map: 1, op: 0xac, modrm: true, imm: 'b', ops: ['Ev', 'Gv', 'Ib'], osize: 'v', undef: 'shiftd' });
f({ mn: 'shrd', fam: 'shift', map: 1, op: 0xad, modrm: true, imm: 'none', ops: ['Ev', 'Gv', 'CL'], osize: 'v', undef: 'shiftd' });

// ---- Bit test and scan ----
const btUndef = OF | SF | AF | PF;
(['bt', 'bts', 'btr', 'btc'] as const).forEach((mn, k) => {
  f({ mn, fam: 'bit', map: 1, op: [0xa3, 0xab, 0xb3, 0xbb][k], modrm: true, imm: 'none', ops: ['Ev', 'Gv'], osize: 'v', undef: btUndef, lock: mn !== 'bt' });
  f({ mn, fam: 'bit', map: 1, op: 0xba, ext: 4 + k, modrm: true, imm: 'b', ops: ['Ev', 'Ib'], osize: 'v', undef: btUndef, lock: mn !== 'bt' });
});
f({ mn: 'bsf', fam: 'bit', map: 1, op: 0xbc, modrm: true, imm: 'none', ops: ['Gv', 'Ev'], osize: 'v', undef: CF | OF | SF | AF | PF });
f({ mn: 'bsr', fam: 'bit', map: 1, op: 0xbd, modrm: true, imm: 'none', ops: ['Gv', 'Ev'], osize: 'v', undef: CF | OF | SF | AF | PF });
f({ mn: 'tzcnt', fam: 'bit', map: 1, op: 0xbc, prefix: 0xf3, modrm: true, imm: 'none', ops: ['Gv', 'Ev'], osize: 'v', undef: OF | SF | AF | PF });
f({ mn: 'lzcnt', fam: 'bit', map: 1, op: 0xbd, prefix: 0xf3, modrm: true, imm: 'none', ops: ['Gv', 'Ev'], osize: 'v', undef: OF | SF | AF | PF });
f({ mn: 'popcnt', fam: 'bit', map: 1, op: 0xb8, prefix: 0xf3, modrm: true, imm: 'none', ops: ['Gv', 'Ev'], osize: 'v' });
for (let r = 0; r < 8; r++) f({ mn: 'bswap', fam: 'bit', map: 1, op: 0xc8 + r, modrm: false, imm: 'none', ops: ['Zv'], osize: 'v' });

// ---- Data movement ----
f({ mn: 'mov', fam: 'mov', map: 0, op: 0x88, modrm: true, imm: 'none', ops: ['Eb', 'Gb'], osize: 'b' });
f({ mn: 'mov', fam: 'mov', map: 0, op: 0x89, modrm: true, imm: 'none', ops: ['Ev', 'Gv'], osize: 'v' });
f({ mn: 'mov', fam: 'mov', map: 0, op: 0x8a, modrm: true, imm: 'none', ops: ['Gb', 'Eb'], osize: 'b' });
f({ mn: 'mov', fam: 'mov', map: 0, op: 0x8b, modrm: true, imm: 'none', ops: ['Gv', 'Ev'], osize: 'v' });
f({ mn: 'mov', fam: 'mov', map: 0, op: 0xc6, ext: 0, modrm: true, imm: 'b', ops: ['Eb', 'Ib'], osize: 'b' });
f({ mn: 'mov', fam: 'mov', map: 0, op: 0xc7, ext: 0, modrm: true, imm: 'z', ops: ['Ev', 'Iz'], osize: 'v' });
f({ mn: 'mov', fam: 'mov', map: 0, op: 0xa0, modrm: false, imm: 'moffs', ops: ['AL', 'Ob'], osize: 'b' });
f({ mn: 'mov', fam: 'mov', map: 0, op: 0xa1, modrm: false, imm: 'moffs', ops: ['rAX', 'Ov'], osize: 'v' });
f({ mn: 'mov', fam: 'mov', map: 0, op: 0xa2, modrm: false, imm: 'moffs', ops: ['Ob', 'AL'], osize: 'b' });
f({ mn: 'mov', fam: 'mov', map: 0, op: 0xa3, modrm: false, imm: 'moffs', ops: ['Ov', 'rAX'], osize: 'v' });
for (let r = 0; r < 8; r++) {
  f({ mn: 'mov', fam: 'mov', map: 0, op: 0xb0 + r, modrm: false, imm: 'b', ops: ['Zb', 'Ib'], osize: 'b' });
  f({ mn: 'mov', fam: 'mov', map: 0, op: 0xb8 + r, modrm: false, imm: 'v', ops: ['Zv', 'Iv'], osize: 'v' });
}
f({ mn: 'movzx', fam: 'mov', map: 1, op: 0xb6, modrm: true, imm: 'none', ops: ['Gv', 'Eb'], osize: 'v' });
f({ mn: 'movzx', fam: 'mov', map: 1, op: 0xb7, modrm: true, imm: 'none', ops: ['Gv', 'Ew'], osize: 'v' });
f({ mn: 'movsx', fam: 'mov', map: 1, op: 0xbe, modrm: true, imm: 'none', ops: ['Gv', 'Eb'], osize: 'v' });
f({ mn: 'movsx', fam: 'mov', map: 1, op: 0xbf, modrm: true, imm: 'none', ops: ['Gv', 'Ew'], osize: 'v' });
f({ mn: 'movsxd', fam: 'mov', map: 0, op: 0x63, modrm: true, imm: 'none', ops: ['Gv', 'Ed'], osize: 'v' });
f({ mn: 'movbe', fam: 'mov', map: 2, op: 0xf0, modrm: true, imm: 'none', ops: ['Gv', 'M'], osize: 'v' });
f({ mn: 'movbe', fam: 'mov', map: 2, op: 0xf1, modrm: true, imm: 'none', ops: ['M', 'Gv'], osize: 'v' });
f({ mn: 'lea', fam: 'mov', map: 0, op: 0x8d, modrm: true, imm: 'none', ops: ['Gv', 'M'], osize: 'v' });
f({ mn: 'xchg', fam: 'xchg', map: 0, op: 0x86, modrm: true, imm: 'none', ops: ['Eb', 'Gb'], osize: 'b', lock: true });
f({ mn: 'xchg', fam: 'xchg', map: 0, op: 0x87, modrm: true, imm: 'none', ops: ['Ev', 'Gv'], osize: 'v', lock: true });
for (let r = 1; r < 8; r++) f({ mn: 'xchg', fam: 'xchg', map: 0, op: 0x90 + r, modrm: false, imm: 'none', ops: ['rAX', 'Zv'], osize: 'v' });
f({ mn: 'nop', fam: 'misc', map: 0, op: 0x90, modrm: false, imm: 'none', ops: [], osize: 'none' });
f({ mn: 'pause', fam: 'misc', map: 0, op: 0x90, prefix: 0xf3, modrm: false, imm: 'none', ops: [], osize: 'none' });
f({ mn: 'nop', fam: 'misc', map: 1, op: 0x1f, ext: 0, modrm: true, imm: 'none', ops: ['Ev'], osize: 'v' });
// 0F 0D: PREFETCH/PREFETCHW (APM Vol. 3; SDM Vol. 2B, PREFETCHW): every AMD64 CPU has it, and Linux
// uses it on AMD whenever long mode is there (arch/x86/kernel/cpu/amd.c sets X86_FEATURE_3DNOWPREFETCH).
// Memory forms only (the register form is #UD); /0 and /3-/7 are PREFETCH (AMD's aliases), /2
// PREFETCHWT1's encoding.
for (let ext = 0; ext < 8; ext++) {
  f({ mn: ext === 1 ? 'prefetchw' : ext === 2 ? 'prefetchwt1' : 'prefetch', fam: 'misc', map: 1, op: 0x0d, ext, modrm: true, imm: 'none', ops: ['M'], osize: 'b', noDiff: true });
}
for (const op of [0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e]) {
  // 0F 18-1E: prefetch hints and reserved NOPs (SDM Vol. 2B, NOP; Table A-3). Memory is not touched.
  f({ mn: 'hint_nop', fam: 'misc', map: 1, op, modrm: true, imm: 'none', ops: ['Ev'], osize: 'v', noDiff: true });
}
f({ mn: 'xadd', fam: 'xchg', map: 1, op: 0xc0, modrm: true, imm: 'none', ops: ['Eb', 'Gb'], osize: 'b', lock: true });
f({ mn: 'xadd', fam: 'xchg', map: 1, op: 0xc1, modrm: true, imm: 'none', ops: ['Ev', 'Gv'], osize: 'v', lock: true });
f({ mn: 'cmpxchg', fam: 'xchg', map: 1, op: 0xb0, modrm: true, imm: 'none', ops: ['Eb', 'Gb'], osize: 'b', lock: true });
f({ mn: 'cmpxchg', fam: 'xchg', map: 1, op: 0xb1, modrm: true, imm: 'none', ops: ['Ev', 'Gv'], osize: 'v', lock: true });
f({ mn: 'cmpxchg8b', fam: 'xchg', map: 1, op: 0xc7, ext: 1, modrm: true, imm: 'none', ops: ['Mdq'], osize: 'v', lock: true });
f({ mn: 'cbw', fam: 'convert', map: 0, op: 0x98, modrm: false, imm: 'none', ops: [], osize: 'v' });
f({ mn: 'cwd', fam: 'convert', map: 0, op: 0x99, modrm: false, imm: 'none', ops: [], osize: 'v' });

// ---- Conditional ops ----
for (let cc = 0; cc < 16; cc++) {
  f({ mn: 'jcc', fam: 'branch', map: 0, op: 0x70 + cc, modrm: false, imm: 'b', ops: ['Jb'], osize: 'f64' });
  f({ mn: 'jcc', fam: 'branch', map: 1, op: 0x80 + cc, modrm: false, imm: 'd', ops: ['Jz'], osize: 'f64' });
  f({ mn: 'setcc', fam: 'cond', map: 1, op: 0x90 + cc, modrm: true, imm: 'none', ops: ['Eb'], osize: 'b' });
  f({ mn: 'cmovcc', fam: 'cond', map: 1, op: 0x40 + cc, modrm: true, imm: 'none', ops: ['Gv', 'Ev'], osize: 'v' });
}

// ---- Branches ----
f({ mn: 'jmp', fam: 'branch', map: 0, op: 0xeb, modrm: false, imm: 'b', ops: ['Jb'], osize: 'f64' });
f({ mn: 'jmp', fam: 'branch', map: 0, op: 0xe9, modrm: false, imm: 'd', ops: ['Jz'], osize: 'f64' });
f({ mn: 'call', fam: 'branch', map: 0, op: 0xe8, modrm: false, imm: 'd', ops: ['Jz'], osize: 'f64' });
f({ mn: 'ret', fam: 'branch', map: 0, op: 0xc3, modrm: false, imm: 'none', ops: [], osize: 'f64' });
f({ mn: 'ret', fam: 'branch', map: 0, op: 0xc2, modrm: false, imm: 'w', ops: ['Iw'], osize: 'f64' });
f({ mn: 'loopne', fam: 'branch', map: 0, op: 0xe0, modrm: false, imm: 'b', ops: ['Jb'], osize: 'f64' });
f({ mn: 'loope', fam: 'branch', map: 0, op: 0xe1, modrm: false, imm: 'b', ops: ['Jb'], osize: 'f64' });
f({ mn: 'loop', fam: 'branch', map: 0, op: 0xe2, modrm: false, imm: 'b', ops: ['Jb'], osize: 'f64' });
f({ mn: 'jrcxz', fam: 'branch', map: 0, op: 0xe3, modrm: false, imm: 'b', ops: ['Jb'], osize: 'f64' });

// ---- Stack ----
for (let r = 0; r < 8; r++) {
  f({ mn: 'push', fam: 'stack', map: 0, op: 0x50 + r, modrm: false, imm: 'none', ops: ['Zv'], osize: 'd64' });
  f({ mn: 'pop', fam: 'stack', map: 0, op: 0x58 + r, modrm: false, imm: 'none', ops: ['Zv'], osize: 'd64' });
}
f({ mn: 'push', fam: 'stack', map: 0, op: 0x68, modrm: false, imm: 'z', ops: ['Iz'], osize: 'd64' });
f({ mn: 'push', fam: 'stack', map: 0, op: 0x6a, modrm: false, imm: 'b', ops: ['Ib'], osize: 'd64' });
f({ mn: 'pop', fam: 'stack', map: 0, op: 0x8f, ext: 0, modrm: true, imm: 'none', ops: ['Ev'], osize: 'd64' });
f({ mn: 'pushf', fam: 'stack', map: 0, op: 0x9c, modrm: false, imm: 'none', ops: [], osize: 'd64' });
f({ mn: 'popf', fam: 'stack', map: 0, op: 0x9d, modrm: false, imm: 'none', ops: [], osize: 'd64' });
f({ mn: 'enter', fam: 'stack', map: 0, op: 0xc8, modrm: false, imm: 'wb', ops: ['Iw', 'Ib'], osize: 'd64' });
f({ mn: 'leave', fam: 'stack', map: 0, op: 0xc9, modrm: false, imm: 'none', ops: [], osize: 'd64' });

// ---- Strings ----
const strs: [string, number, string[], 'rep' | 'repcc'][] = [
  ['movs', 0xa4, ['Yb', 'Xb'], 'rep'], ['cmps', 0xa6, ['Xb', 'Yb'], 'repcc'], ['stos', 0xaa, ['Yb', 'AL'], 'rep'],
  ['lods', 0xac, ['AL', 'Xb'], 'rep'], ['scas', 0xae, ['AL', 'Yb'], 'repcc'],
];
for (const [mn, op, ops, rep] of strs) {
  f({ mn, fam: 'string', map: 0, op, modrm: false, imm: 'none', ops, osize: 'b', rep });
  f({ mn, fam: 'string', map: 0, op: op + 1, modrm: false, imm: 'none', ops: ops.map((o) => o.replace('b', 'v').replace('AL', 'rAX')), osize: 'v', rep });
}

// ---- Flags and misc ----
f({ mn: 'lahf', fam: 'flags', map: 0, op: 0x9f, modrm: false, imm: 'none', ops: [], osize: 'none' });
f({ mn: 'sahf', fam: 'flags', map: 0, op: 0x9e, modrm: false, imm: 'none', ops: [], osize: 'none' });
f({ mn: 'clc', fam: 'flags', map: 0, op: 0xf8, modrm: false, imm: 'none', ops: [], osize: 'none' });
f({ mn: 'stc', fam: 'flags', map: 0, op: 0xf9, modrm: false, imm: 'none', ops: [], osize: 'none' });
f({ mn: 'cmc', fam: 'flags', map: 0, op: 0xf5, modrm: false, imm: 'none', ops: [], osize: 'none' });
f({ mn: 'cld', fam: 'flags', map: 0, op: 0xfc, modrm: false, imm: 'none', ops: [], osize: 'none' });
f({ mn: 'std', fam: 'flags', map: 0, op: 0xfd, modrm: false, imm: 'none', ops: [], osize: 'none' });
f({ mn: 'xlat', fam: 'mov', map: 0, op: 0xd7, modrm: false, imm: 'none', ops: [], osize: 'b' });
f({ mn: 'ud2', fam: 'misc', map: 1, op: 0x0b, modrm: false, imm: 'none', ops: [], osize: 'none' });
f({ mn: 'int3', fam: 'misc', map: 0, op: 0xcc, modrm: false, imm: 'none', ops: [], osize: 'none', noDiff: true });
f({ mn: 'int', fam: 'misc', map: 0, op: 0xcd, modrm: false, imm: 'b', ops: ['Ib'], osize: 'none', noDiff: true });
f({ mn: 'hlt', fam: 'misc', map: 0, op: 0xf4, modrm: false, imm: 'none', ops: [], osize: 'none', noDiff: true });
f({ mn: 'cpuid', fam: 'misc', map: 1, op: 0xa2, modrm: false, imm: 'none', ops: [], osize: 'none', noDiff: true });
f({ mn: 'rdtsc', fam: 'misc', map: 1, op: 0x31, modrm: false, imm: 'none', ops: [], osize: 'none', noDiff: true });
f({ mn: 'fence', fam: 'misc', map: 1, op: 0xae, ext: 5, modrm: true, imm: 'none', ops: [], osize: 'none', noDiff: true });
f({ mn: 'fence', fam: 'misc', map: 1, op: 0xae, ext: 6, modrm: true, imm: 'none', ops: [], osize: 'none', noDiff: true });
f({ mn: 'fence', fam: 'misc', map: 1, op: 0xae, ext: 7, modrm: true, imm: 'none', ops: [], osize: 'none', noDiff: true });

// ---- System and legacy-mode instructions (wasm/cpu/ops/system.ts). Not user-mode testable on the
// host CPU: they are checked by the bare-metal kernels of test/guests/ (and against QEMU). ----
const sys = (mn: string, map: 0 | 1, op: number, modrm: boolean, imm: Imm, ext?: number) =>
  f({ mn, fam: 'system', map, op, ext, modrm, imm, ops: [], osize: 'none', noDiff: true });
sys('cli', 0, 0xfa, false, 'none'); sys('sti', 0, 0xfb, false, 'none');
for (const op of [0xe4, 0xe5, 0xe6, 0xe7]) sys(op < 0xe6 ? 'in' : 'out', 0, op, false, 'b');
for (const op of [0xec, 0xed, 0xee, 0xef]) sys(op < 0xee ? 'in' : 'out', 0, op, false, 'none');
sys('mov_from_cr', 1, 0x20, true, 'none'); sys('mov_to_cr', 1, 0x22, true, 'none');
sys('mov_from_dr', 1, 0x21, true, 'none'); sys('mov_to_dr', 1, 0x23, true, 'none');
sys('lar', 1, 0x02, true, 'none'); sys('lsl', 1, 0x03, true, 'none');
sys('verr', 1, 0x00, true, 'none', 4); sys('verw', 1, 0x00, true, 'none', 5);
[0, 1, 2, 3].forEach((e) => sys(['sldt', 'str', 'lldt', 'ltr'][e], 1, 0x00, true, 'none', e));
[0, 1, 2, 3, 4, 6, 7].forEach((e) => sys(['sgdt', 'sidt', 'lgdt', 'lidt', 'smsw', '', 'lmsw', 'invlpg'][e], 1, 0x01, true, 'none', e));
sys('clts', 1, 0x06, false, 'none'); sys('invd', 1, 0x08, false, 'none'); sys('wbinvd', 1, 0x09, false, 'none');
sys('wrmsr', 1, 0x30, false, 'none'); sys('rdmsr', 1, 0x32, false, 'none');
sys('syscall', 1, 0x05, false, 'none'); sys('sysret', 1, 0x07, false, 'none');
sys('sysenter', 1, 0x34, false, 'none'); sys('sysexit', 1, 0x35, false, 'none');
sys('iret', 0, 0xcf, false, 'none'); sys('retf', 0, 0xcb, false, 'none'); sys('retf', 0, 0xca, false, 'w');
sys('into', 0, 0xce, false, 'none'); sys('int1', 0, 0xf1, false, 'none');
sys('mov_from_sreg', 0, 0x8c, true, 'none'); sys('mov_to_sreg', 0, 0x8e, true, 'none');
for (const op of [0x06, 0x07, 0x0e, 0x16, 0x17, 0x1e, 0x1f]) sys(op & 1 ? 'pop_sreg' : 'push_sreg', 0, op, false, 'none');
for (const op of [0xa0, 0xa1, 0xa8, 0xa9]) sys(op & 1 ? 'pop_sreg' : 'push_sreg', 1, op, false, 'none');
sys('les', 0, 0xc4, true, 'none'); sys('lds', 0, 0xc5, true, 'none');
sys('lss', 1, 0xb2, true, 'none'); sys('lfs', 1, 0xb4, true, 'none'); sys('lgs', 1, 0xb5, true, 'none');
sys('pusha', 0, 0x60, false, 'none'); sys('popa', 0, 0x61, false, 'none'); sys('bound', 0, 0x62, true, 'none');
for (const op of [0x27, 0x2f, 0x37, 0x3f]) sys(['daa', 'das', 'aaa', 'aas'][(op >> 3) & 3], 0, op, false, 'none');
sys('aam', 0, 0xd4, false, 'b'); sys('aad', 0, 0xd5, false, 'b');
sys('jmp_far', 0, 0xea, false, 'none'); sys('call_far', 0, 0x9a, false, 'none');
sys('callf_indirect', 0, 0xff, true, 'none', 3); sys('jmpf_indirect', 0, 0xff, true, 'none', 5);
sys('alu_82', 0, 0x82, true, 'b');
sys('xsave', 1, 0xae, true, 'none', 4); sys('xrstor', 1, 0xae, true, 'none', 5);
f({ mn: 'invpcid', fam: 'system', map: 2, op: 0x82, modrm: true, imm: 'none', ops: [], osize: 'none', noDiff: true, prefix: 0x66 });

/** Opcodes that do not exist in 64-bit mode (SDM Vol. 2, Table A-2 "i64"): #UD, not "unimplemented". */
export const invalidIn64 = [
  0x06, 0x07, 0x0e, 0x16, 0x17, 0x1e, 0x1f, 0x27, 0x2f, 0x37, 0x3f, 0x60, 0x61, 0x62, 0x82, 0x9a,
  0xc4, 0xc5, 0xce, 0xd4, 0xd5, 0xd6, 0xea,
];

/** Legacy and REX prefix bytes (consumed by the decoder's prefix loop, never dispatched). */
export const prefixBytes = [0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65, 0x66, 0x67, 0xf0, 0xf2, 0xf3,
  ...Array.from({ length: 16 }, (_, i) => 0x40 + i)];

/** Opcode index used by the decoder and the #UD-by-opcode counters (see OPC_* in wasm/abi.ts). */
export function opcodeIndex(map: number, op: number): number { return map * 0x100 + op; }

/** Immediate kind -> IMM_* code of the decoder's attribute byte (wasm/abi.ts). */
export const IMM_CODES: Record<Imm, number> = {
  none: abi.IMM_NONE, b: abi.IMM_B, w: abi.IMM_W, z: abi.IMM_Z, v: abi.IMM_V, wb: abi.IMM_WB, moffs: abi.IMM_MOFFS, d: abi.IMM_D,
};

/** Opcodes whose ModRM/immediate shape is known although hvlab does not implement them yet
 *  (x87, system instructions): decoding them fully lets the #UD report name the whole instruction. */
export const shapeOnly: { map: number; op: number; modrm: boolean; imm: Imm }[] = [
  ...[0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf].map((op) => ({ map: 0, op, modrm: true, imm: 'none' as Imm })),
  { map: 1, op: 0x0d, modrm: true, imm: 'none' },
];
