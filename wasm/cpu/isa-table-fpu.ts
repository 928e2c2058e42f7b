// The x87, MMX, SSE and SSE2 instruction forms, in the Form format of wasm/cpu/isa-table.ts (which
// stays the table the decoder is generated from; these forms are merged into it once their
// handlers exist). Until then the differential tester (emu/difftest) generates cases from them
// with `hvlab difftest --only sse|sse-int|mmx|x87|MNEMONIC|FORM-KEY`; without --only it keeps to
// the integer table. Plain TypeScript data: never compiled by asc.
//
// Families: sse (SSE/SSE2 floating point, packed and scalar, conversions, compares, moves, logic,
// shuffles, LDMXCSR/STMXCSR), sse-int (SSE2 integer on XMM, MOVNTI), mmx (integer on MM
// registers incl. the SSE/SSE2 MMX extensions, EMMS), x87 (incl. FXSAVE/FXRSTOR).
//
// Operand tokens, in addition to those of isa-table.ts (SDM Vol. 2, Appendix A.2 where it has one):
//   V             XMM register in ModRM.reg (REX.R selects XMM8-15)
//   Wx            XMM register in ModRM.rm, or m128 that must be 16-byte aligned (legacy SSE: #GP)
//   Wu            XMM register or m128 with no alignment requirement (MOVUPS/MOVUPD/MOVDQU)
//   Wq / Wd       XMM register or m64 / m32 (scalar and half-register forms; no alignment rule)
//   U             XMM register in ModRM.rm only (mod = 3)
//   P             MM register in ModRM.reg (REX.R is ignored: MM0-7)
//   Qq / Qd       MM register in ModRM.rm (REX.B ignored), or m64 / m32
//   N             MM register in ModRM.rm only (mod = 3)
//   Ey / Gy / My  GPR or memory of 32 or 64 bits by REX.W (66h is a mandatory prefix or invalid
//                 here; these forms have osize 'v' and are generated at 32 and 64 bits only)
//   Gd            32-bit GPR in ModRM.reg (MOVMSKPS, PMOVMSKB, PEXTRW: the result is zero-extended)
//   RdMw          32-bit GPR in ModRM.rm, or m16 (PINSRW)
//   ST            ST(0), implicit
//   STi           ST(i) in ModRM.rm (mod = 3, i = rm; REX.B ignored)
//   #0 .. #7      not an operand: the form needs mod = 3 and this ModRM.rm value (D9 E8 = FLD1 is
//                 op 0xd9, ext 5, '#0'); several forms then share (op, ext) and differ by rm
//   AX            fixed operand (FNSTSW AX)
//   Mw Md Mq      memory operand of 2 / 4 / 8 bytes (x87 m16int, m32fp/m32int, m64fp/m64int, m64)
//   Mt            m80: x87 extended real (FLD/FSTP m80fp) or packed BCD (FBLD/FBSTP)
//   Mo            m128, memory only, 16-byte aligned (MOVNTPS/MOVNTPD/MOVNTDQ). (isa-table.ts
//                 already uses Mdq for CMPXCHG8B/16B's m64/m128.)
//   Me            x87 environment: 28 bytes, or 14 with 66h (FLDENV/FNSTENV; osize 'v', 16/32)
//   Ms            x87 state: 108 bytes, or 94 with 66h (FRSTOR/FNSAVE; osize 'v', 16/32)
//   Mx            512-byte FXSAVE area, 16-byte aligned (osize 'v': 32 = FXSAVE, 64 = FXSAVE64)
//
// Register forms and memory forms of one opcode (MOVLPS/MOVHLPS, FADD m32/FADD ST,ST(i)) are
// separate forms: their r/m tokens say which ModRM.mod they take.
//
// Undefined flags: `undef` keeps its isa-table.ts meaning for RFLAGS (bits 0..11) and, shifted
// left by FSW_UNDEF_SHIFT, declares the x87 condition codes the manual leaves undefined (C0 = FSW
// bit 8, C1 = 9, C2 = 10, C3 = 14), e.g. FADD: C0 C2 C3 (C1 is the round-up / stack-fault bit).
// The tester masks them when it compares FSW (emu/difftest/generate.ts fswMaskFor). SSE forms
// leave RFLAGS alone except (U)COMISS/(U)COMISD (ZF PF CF set, OF SF AF cleared: all defined) and
// FCOMI & co. (same, and C1 = 0 with C0 C2 C3 unchanged: defined).
//
// Not here: SSE3 and later (except FISTTP, SSE3's x87 store, which the x87 list includes), AVX,
// the undocumented x87 aliases (D9 D8+i FSTP1, DC D0+i FCOM2, DF C0+i FFREEP, ...), the 287/387
// no-ops FENI/FDISI/FSETPM, 3DNow!, PREFETCH* and the fences (isa-table.ts has them), CLFLUSH.
// Legacy CMPPS/CMPPD/CMPSS/CMPSD predicates are 0..7 (imm8[7:3] is reserved); the generator
// keeps to those.

import type { Form } from './isa-table.ts';

/** `undef` bits above this shift are FSW condition codes (FSW bit << 16). */
export const FSW_UNDEF_SHIFT = 16;
/** The x87 condition-code bits of FSW. */
export const FSW_C0 = 0x100, FSW_C1 = 0x200, FSW_C2 = 0x400, FSW_C3 = 0x4000;
export const FSW_CC = FSW_C0 | FSW_C1 | FSW_C2 | FSW_C3;

const C0 = FSW_C0 << FSW_UNDEF_SHIFT, C1 = FSW_C1 << FSW_UNDEF_SHIFT;
const C2 = FSW_C2 << FSW_UNDEF_SHIFT, C3 = FSW_C3 << FSW_UNDEF_SHIFT;
/** Most x87 operations: C1 = round-up / stack fault, C0 C2 C3 undefined. */
const C023 = C0 | C2 | C3;
/** FPTAN FSIN FCOS FSINCOS: C2 = argument out of range, C0 C3 undefined. */
const C03 = C0 | C3;
/** Control instructions the manual documents as leaving all four undefined (FNSTSW, FNSTCW, FLDCW,
 *  FNSTENV, FNCLEX, FWAIT, FNOP, FFREE). */
const CALL = C0 | C1 | C2 | C3;

export const fpuForms: Form[] = [];
function f(form: Form) { fpuForms.push(form); }

type Pfx = 'none' | 0x66 | 0xf3 | 0xf2;
const pfx = (p: Pfx): number | undefined => (p === 'none' ? undefined : p);

// ==================================================================== SSE / SSE2 floating point

/** An SSE form on map 1 (0F xx). */
function sse(fam: string, mn: string, p: Pfx, op: number, ops: string[], extra: Partial<Form> = {}) {
  const imm = ops.includes('Ib') ? 'b' : 'none';
  const ext = extra.ext;
  f({ mn, fam, map: 1, op, ext, modrm: true, imm, ops, osize: ops.some((t) => /^[EGM]y$/.test(t)) ? 'v' : 'none', prefix: pfx(p), ...extra });
}

// Arithmetic: PS (none, m128), PD (66, m128), SS (F3, m32), SD (F2, m64).
const arith: [string, number, boolean][] = [
  // [stem, opcode, has PD/SD forms]
  ['add', 0x58, true], ['mul', 0x59, true], ['sub', 0x5c, true], ['min', 0x5d, true],
  ['div', 0x5e, true], ['max', 0x5f, true], ['sqrt', 0x51, true], ['rsqrt', 0x52, false], ['rcp', 0x53, false],
];
for (const [stem, op, dbl] of arith) {
  sse('sse', `${stem}ps`, 'none', op, ['V', 'Wx']);
  sse('sse', `${stem}ss`, 0xf3, op, ['V', 'Wd']);
  if (dbl) {
    sse('sse', `${stem}pd`, 0x66, op, ['V', 'Wx']);
    sse('sse', `${stem}sd`, 0xf2, op, ['V', 'Wq']);
  }
}
// Compares with a predicate immediate (0..7: eq lt le unord neq nlt nle ord).
sse('sse', 'cmpps', 'none', 0xc2, ['V', 'Wx', 'Ib']);
sse('sse', 'cmppd', 0x66, 0xc2, ['V', 'Wx', 'Ib']);
sse('sse', 'cmpss', 0xf3, 0xc2, ['V', 'Wd', 'Ib']);
sse('sse', 'cmpsd', 0xf2, 0xc2, ['V', 'Wq', 'Ib']);
// Scalar compares into RFLAGS: ZF PF CF set, OF SF AF cleared (all defined).
sse('sse', 'ucomiss', 'none', 0x2e, ['V', 'Wd']);
sse('sse', 'ucomisd', 0x66, 0x2e, ['V', 'Wq']);
sse('sse', 'comiss', 'none', 0x2f, ['V', 'Wd']);
sse('sse', 'comisd', 0x66, 0x2f, ['V', 'Wq']);
// Logic, unpack, shuffle.
for (const [stem, op] of [['and', 0x54], ['andn', 0x55], ['or', 0x56], ['xor', 0x57], ['unpcklp', 0x14], ['unpckhp', 0x15]] as const) {
  const s = stem.endsWith('p') ? stem : `${stem}p`;
  sse('sse', `${s}s`, 'none', op, ['V', 'Wx']);
  sse('sse', `${s}d`, 0x66, op, ['V', 'Wx']);
}
sse('sse', 'shufps', 'none', 0xc6, ['V', 'Wx', 'Ib']);
sse('sse', 'shufpd', 0x66, 0xc6, ['V', 'Wx', 'Ib']);
// Moves.
sse('sse', 'movups', 'none', 0x10, ['V', 'Wu']);
sse('sse', 'movups', 'none', 0x11, ['Wu', 'V']);
sse('sse', 'movupd', 0x66, 0x10, ['V', 'Wu']);
sse('sse', 'movupd', 0x66, 0x11, ['Wu', 'V']);
sse('sse', 'movss', 0xf3, 0x10, ['V', 'Wd']); // xmm, xmm: low dword; xmm, m32: zero-extends
sse('sse', 'movss', 0xf3, 0x11, ['Wd', 'V']);
sse('sse', 'movsd', 0xf2, 0x10, ['V', 'Wq']);
sse('sse', 'movsd', 0xf2, 0x11, ['Wq', 'V']);
sse('sse', 'movaps', 'none', 0x28, ['V', 'Wx']);
sse('sse', 'movaps', 'none', 0x29, ['Wx', 'V']);
sse('sse', 'movapd', 0x66, 0x28, ['V', 'Wx']);
sse('sse', 'movapd', 0x66, 0x29, ['Wx', 'V']);
sse('sse', 'movlps', 'none', 0x12, ['V', 'Mq']);
sse('sse', 'movhlps', 'none', 0x12, ['V', 'U']);
sse('sse', 'movlps', 'none', 0x13, ['Mq', 'V']);
sse('sse', 'movlpd', 0x66, 0x12, ['V', 'Mq']);
sse('sse', 'movlpd', 0x66, 0x13, ['Mq', 'V']);
sse('sse', 'movhps', 'none', 0x16, ['V', 'Mq']);
sse('sse', 'movlhps', 'none', 0x16, ['V', 'U']);
sse('sse', 'movhps', 'none', 0x17, ['Mq', 'V']);
sse('sse', 'movhpd', 0x66, 0x16, ['V', 'Mq']);
sse('sse', 'movhpd', 0x66, 0x17, ['Mq', 'V']);
sse('sse', 'movntps', 'none', 0x2b, ['Mo', 'V']);
sse('sse', 'movntpd', 0x66, 0x2b, ['Mo', 'V']);
sse('sse', 'movmskps', 'none', 0x50, ['Gd', 'U']);
sse('sse', 'movmskpd', 0x66, 0x50, ['Gd', 'U']);
// Conversions.
sse('sse', 'cvtpi2ps', 'none', 0x2a, ['V', 'Qq']); // MM source: x87 -> MMX transition
sse('sse', 'cvtpi2pd', 0x66, 0x2a, ['V', 'Qq']);
sse('sse', 'cvtsi2ss', 0xf3, 0x2a, ['V', 'Ey']);
sse('sse', 'cvtsi2sd', 0xf2, 0x2a, ['V', 'Ey']);
sse('sse', 'cvttps2pi', 'none', 0x2c, ['P', 'Wq']);
sse('sse', 'cvttpd2pi', 0x66, 0x2c, ['P', 'Wx']);
sse('sse', 'cvttss2si', 0xf3, 0x2c, ['Gy', 'Wd']);
sse('sse', 'cvttsd2si', 0xf2, 0x2c, ['Gy', 'Wq']);
sse('sse', 'cvtps2pi', 'none', 0x2d, ['P', 'Wq']);
sse('sse', 'cvtpd2pi', 0x66, 0x2d, ['P', 'Wx']);
sse('sse', 'cvtss2si', 0xf3, 0x2d, ['Gy', 'Wd']);
sse('sse', 'cvtsd2si', 0xf2, 0x2d, ['Gy', 'Wq']);
sse('sse', 'cvtps2pd', 'none', 0x5a, ['V', 'Wq']);
sse('sse', 'cvtpd2ps', 0x66, 0x5a, ['V', 'Wx']);
sse('sse', 'cvtss2sd', 0xf3, 0x5a, ['V', 'Wd']);
sse('sse', 'cvtsd2ss', 0xf2, 0x5a, ['V', 'Wq']);
sse('sse', 'cvtdq2ps', 'none', 0x5b, ['V', 'Wx']);
sse('sse', 'cvtps2dq', 0x66, 0x5b, ['V', 'Wx']);
sse('sse', 'cvttps2dq', 0xf3, 0x5b, ['V', 'Wx']);
sse('sse', 'cvttpd2dq', 0x66, 0xe6, ['V', 'Wx']);
sse('sse', 'cvtpd2dq', 0xf2, 0xe6, ['V', 'Wx']);
sse('sse', 'cvtdq2pd', 0xf3, 0xe6, ['V', 'Wq']);
// MXCSR (0F AE /2, /3; /0 /1 are FXSAVE/FXRSTOR below, /5-/7 with mod = 3 the fences).
sse('sse', 'ldmxcsr', 'none', 0xae, ['Md'], { ext: 2 });
sse('sse', 'stmxcsr', 'none', 0xae, ['Md'], { ext: 3 });

// ==================================================================== SSE2 integer (XMM) and MMX

// [mnemonic, opcode, MMX r/m token (undefined: no MMX form)]. The XMM form is 66 0F op V, Wx.
const intOps: [string, number, string | undefined][] = [
  ['punpcklbw', 0x60, 'Qd'], ['punpcklwd', 0x61, 'Qd'], ['punpckldq', 0x62, 'Qd'], ['packsswb', 0x63, 'Qq'],
  ['pcmpgtb', 0x64, 'Qq'], ['pcmpgtw', 0x65, 'Qq'], ['pcmpgtd', 0x66, 'Qq'], ['packuswb', 0x67, 'Qq'],
  ['punpckhbw', 0x68, 'Qq'], ['punpckhwd', 0x69, 'Qq'], ['punpckhdq', 0x6a, 'Qq'], ['packssdw', 0x6b, 'Qq'],
  ['punpcklqdq', 0x6c, undefined], ['punpckhqdq', 0x6d, undefined],
  ['pcmpeqb', 0x74, 'Qq'], ['pcmpeqw', 0x75, 'Qq'], ['pcmpeqd', 0x76, 'Qq'],
  ['psrlw', 0xd1, 'Qq'], ['psrld', 0xd2, 'Qq'], ['psrlq', 0xd3, 'Qq'], ['paddq', 0xd4, 'Qq'], ['pmullw', 0xd5, 'Qq'],
  ['psubusb', 0xd8, 'Qq'], ['psubusw', 0xd9, 'Qq'], ['pminub', 0xda, 'Qq'], ['pand', 0xdb, 'Qq'],
  ['paddusb', 0xdc, 'Qq'], ['paddusw', 0xdd, 'Qq'], ['pmaxub', 0xde, 'Qq'], ['pandn', 0xdf, 'Qq'],
  ['pavgb', 0xe0, 'Qq'], ['psraw', 0xe1, 'Qq'], ['psrad', 0xe2, 'Qq'], ['pavgw', 0xe3, 'Qq'],
  ['pmulhuw', 0xe4, 'Qq'], ['pmulhw', 0xe5, 'Qq'],
  ['psubsb', 0xe8, 'Qq'], ['psubsw', 0xe9, 'Qq'], ['pminsw', 0xea, 'Qq'], ['por', 0xeb, 'Qq'],
  ['paddsb', 0xec, 'Qq'], ['paddsw', 0xed, 'Qq'], ['pmaxsw', 0xee, 'Qq'], ['pxor', 0xef, 'Qq'],
  ['psllw', 0xf1, 'Qq'], ['pslld', 0xf2, 'Qq'], ['psllq', 0xf3, 'Qq'], ['pmuludq', 0xf4, 'Qq'],
  ['pmaddwd', 0xf5, 'Qq'], ['psadbw', 0xf6, 'Qq'],
  ['psubb', 0xf8, 'Qq'], ['psubw', 0xf9, 'Qq'], ['psubd', 0xfa, 'Qq'], ['psubq', 0xfb, 'Qq'],
  ['paddb', 0xfc, 'Qq'], ['paddw', 0xfd, 'Qq'], ['paddd', 0xfe, 'Qq'],
];
for (const [mn, op, mmx] of intOps) {
  if (mmx) sse('mmx', mn, 'none', op, ['P', mmx]);
  sse('sse-int', mn, 0x66, op, ['V', 'Wx']);
}
// Shifts by an immediate: groups 12/13/14 (0F 71/72/73 /ext ib).
for (const [op, ext, mn, mmx] of [
  [0x71, 2, 'psrlw', true], [0x71, 4, 'psraw', true], [0x71, 6, 'psllw', true],
  [0x72, 2, 'psrld', true], [0x72, 4, 'psrad', true], [0x72, 6, 'pslld', true],
  [0x73, 2, 'psrlq', true], [0x73, 3, 'psrldq', false], [0x73, 6, 'psllq', true], [0x73, 7, 'pslldq', false],
] as const) {
  if (mmx) sse('mmx', mn, 'none', op, ['N', 'Ib'], { ext });
  sse('sse-int', mn, 0x66, op, ['U', 'Ib'], { ext });
}
// Moves and the rest.
sse('mmx', 'movd', 'none', 0x6e, ['P', 'Ey']); // REX.W: movq mm, r/m64
sse('mmx', 'movd', 'none', 0x7e, ['Ey', 'P']);
sse('mmx', 'movq', 'none', 0x6f, ['P', 'Qq']);
sse('mmx', 'movq', 'none', 0x7f, ['Qq', 'P']);
sse('mmx', 'pshufw', 'none', 0x70, ['P', 'Qq', 'Ib']);
sse('mmx', 'pinsrw', 'none', 0xc4, ['P', 'RdMw', 'Ib']);
sse('mmx', 'pextrw', 'none', 0xc5, ['Gd', 'N', 'Ib']);
sse('mmx', 'pmovmskb', 'none', 0xd7, ['Gd', 'N']);
sse('mmx', 'movntq', 'none', 0xe7, ['Mq', 'P']);
sse('mmx', 'maskmovq', 'none', 0xf7, ['P', 'N']); // stores to DS:[RDI]
f({ mn: 'emms', fam: 'mmx', map: 1, op: 0x77, modrm: false, imm: 'none', ops: [], osize: 'none' });

sse('sse-int', 'movd', 0x66, 0x6e, ['V', 'Ey']); // REX.W: movq xmm, r/m64
sse('sse-int', 'movd', 0x66, 0x7e, ['Ey', 'V']);
sse('sse-int', 'movq', 0xf3, 0x7e, ['V', 'Wq']);
sse('sse-int', 'movq', 0x66, 0xd6, ['Wq', 'V']);
sse('sse-int', 'movdqa', 0x66, 0x6f, ['V', 'Wx']);
sse('sse-int', 'movdqa', 0x66, 0x7f, ['Wx', 'V']);
sse('sse-int', 'movdqu', 0xf3, 0x6f, ['V', 'Wu']);
sse('sse-int', 'movdqu', 0xf3, 0x7f, ['Wu', 'V']);
sse('sse-int', 'pshufd', 0x66, 0x70, ['V', 'Wx', 'Ib']);
sse('sse-int', 'pshufhw', 0xf3, 0x70, ['V', 'Wx', 'Ib']);
sse('sse-int', 'pshuflw', 0xf2, 0x70, ['V', 'Wx', 'Ib']);
sse('sse-int', 'pinsrw', 0x66, 0xc4, ['V', 'RdMw', 'Ib']);
sse('sse-int', 'pextrw', 0x66, 0xc5, ['Gd', 'U', 'Ib']);
sse('sse-int', 'pmovmskb', 0x66, 0xd7, ['Gd', 'U']);
sse('sse-int', 'movntdq', 0x66, 0xe7, ['Mo', 'V']);
sse('sse-int', 'maskmovdqu', 0x66, 0xf7, ['V', 'U']); // stores to DS:[RDI]
sse('sse-int', 'movq2dq', 0xf3, 0xd6, ['V', 'N']); // x87 -> MMX transition
sse('sse-int', 'movdq2q', 0xf2, 0xd6, ['P', 'U']);
sse('sse-int', 'movnti', 'none', 0xc3, ['My', 'Gy']); // a GPR store; no FP state

// ==================================================================== x87

function x(mn: string, op: number, ext: number, ops: string[], undef: number, osize: Form['osize'] = 'none') {
  f({ mn, fam: 'x87', map: 0, op, ext, modrm: true, imm: 'none', ops, osize, undef: undef || undefined });
}

// Arithmetic and compares: D8 (m32fp / ST,ST(i)), DC (m64fp / ST(i),ST), DA (m32int), DE (m16int / pop).
const arith87 = ['fadd', 'fmul', 'fcom', 'fcomp', 'fsub', 'fsubr', 'fdiv', 'fdivr'];
arith87.forEach((mn, k) => {
  const cmp = mn.startsWith('fcom');
  const u = cmp ? 0 : C023; // FCOM*: C0 C2 C3 = result, C1 = 0
  const imn = `fi${mn.slice(1)}`;
  x(mn, 0xd8, k, ['Md'], u);
  x(mn, 0xdc, k, ['Mq'], u);
  x(imn, 0xda, k, ['Md'], u);
  x(imn, 0xde, k, ['Mw'], u);
  x(mn, 0xd8, k, cmp ? ['STi'] : ['ST', 'STi'], u);
});
// DC / DE register forms: the destination is ST(i); /4 is FSUBR and /5 FSUB (and /6 FDIVR, /7
// FDIV) here, the reverse of D8 (SDM Vol. 2A, FSUB/FSUBR opcode tables).
for (const [ext, mn] of [[0, 'fadd'], [1, 'fmul'], [4, 'fsubr'], [5, 'fsub'], [6, 'fdivr'], [7, 'fdiv']] as const) {
  x(mn, 0xdc, ext, ['STi', 'ST'], C023);
  x(`${mn}p`, 0xde, ext, ['STi', 'ST'], C023);
}
x('fcompp', 0xde, 3, ['#1'], 0);
x('fucom', 0xdd, 4, ['STi'], 0);
x('fucomp', 0xdd, 5, ['STi'], 0);
x('fucompp', 0xda, 5, ['#1'], 0);
x('fcomi', 0xdb, 6, ['ST', 'STi'], 0);
x('fucomi', 0xdb, 5, ['ST', 'STi'], 0);
x('fcomip', 0xdf, 6, ['ST', 'STi'], 0);
x('fucomip', 0xdf, 5, ['ST', 'STi'], 0);
x('ftst', 0xd9, 4, ['#4'], 0);
x('fxam', 0xd9, 4, ['#5'], 0);

// Loads and stores. FLD/FILD/FBLD: C1 = stack overflow; FST/FIST/FBSTP: C1 = round-up/underflow.
x('fld', 0xd9, 0, ['Md'], C023);
x('fld', 0xdd, 0, ['Mq'], C023);
x('fld', 0xdb, 5, ['Mt'], C023);
x('fld', 0xd9, 0, ['STi'], C023);
x('fst', 0xd9, 2, ['Md'], C023);
x('fst', 0xdd, 2, ['Mq'], C023);
x('fst', 0xdd, 2, ['STi'], C023);
x('fstp', 0xd9, 3, ['Md'], C023);
x('fstp', 0xdd, 3, ['Mq'], C023);
x('fstp', 0xdb, 7, ['Mt'], C023);
x('fstp', 0xdd, 3, ['STi'], C023);
x('fild', 0xdf, 0, ['Mw'], C023);
x('fild', 0xdb, 0, ['Md'], C023);
x('fild', 0xdf, 5, ['Mq'], C023);
x('fist', 0xdf, 2, ['Mw'], C023);
x('fist', 0xdb, 2, ['Md'], C023);
x('fistp', 0xdf, 3, ['Mw'], C023);
x('fistp', 0xdb, 3, ['Md'], C023);
x('fistp', 0xdf, 7, ['Mq'], C023);
x('fisttp', 0xdf, 1, ['Mw'], C023); // SSE3
x('fisttp', 0xdb, 1, ['Md'], C023);
x('fisttp', 0xdd, 1, ['Mq'], C023);
x('fbld', 0xdf, 4, ['Mt'], C023);
x('fbstp', 0xdf, 6, ['Mt'], C023);
x('fxch', 0xd9, 1, ['STi'], C023);
['fcmovb', 'fcmove', 'fcmovbe', 'fcmovu'].forEach((mn, k) => x(mn, 0xda, k, ['ST', 'STi'], C023));
['fcmovnb', 'fcmovne', 'fcmovnbe', 'fcmovnu'].forEach((mn, k) => x(mn, 0xdb, k, ['ST', 'STi'], C023));
// Constants (D9 E8-EE).
['fld1', 'fldl2t', 'fldl2e', 'fldpi', 'fldlg2', 'fldln2', 'fldz'].forEach((mn, k) => x(mn, 0xd9, 5, [`#${k}`], C023));
// D9 E0-E1, F0-FF.
x('fchs', 0xd9, 4, ['#0'], C023);
x('fabs', 0xd9, 4, ['#1'], C023);
const d9f0: [string, number][] = [
  ['f2xm1', C023], ['fyl2x', C023], ['fptan', C03], ['fpatan', C023],
  ['fxtract', C023], ['fprem1', 0], ['fdecstp', C023], ['fincstp', C023],
];
d9f0.forEach(([mn, u], k) => x(mn, 0xd9, 6, [`#${k}`], u));
const d9f8: [string, number][] = [
  ['fprem', 0], ['fyl2xp1', C023], ['fsqrt', C023], ['fsincos', C03],
  ['frndint', C023], ['fscale', C023], ['fsin', C03], ['fcos', C03],
];
d9f8.forEach(([mn, u], k) => x(mn, 0xd9, 7, [`#${k}`], u));
x('ffree', 0xdd, 0, ['STi'], CALL);
x('fnop', 0xd9, 2, ['#0'], CALL);
// Control.
x('fnstsw', 0xdf, 4, ['AX', '#0'], CALL);
x('fnstsw', 0xdd, 7, ['Mw'], CALL);
x('fnstcw', 0xd9, 7, ['Mw'], CALL);
x('fldcw', 0xd9, 5, ['Mw'], CALL);
x('fnclex', 0xdb, 4, ['#2'], CALL);
x('fninit', 0xdb, 4, ['#3'], 0); // C0-C3 cleared
x('fnstenv', 0xd9, 6, ['Me'], CALL, 'v'); // then masks all exceptions
x('fldenv', 0xd9, 4, ['Me'], 0, 'v');
x('fnsave', 0xdd, 6, ['Ms'], 0, 'v'); // then FNINIT
x('frstor', 0xdd, 4, ['Ms'], 0, 'v');
f({ mn: 'fwait', fam: 'x87', map: 0, op: 0x9b, modrm: false, imm: 'none', ops: [], osize: 'none', undef: CALL });
// FXSAVE / FXRSTOR (REX.W: the 64-bit FIP/FDP format).
sse('x87', 'fxsave', 'none', 0xae, ['Mx'], { ext: 0, osize: 'v' });
sse('x87', 'fxrstor', 'none', 0xae, ['Mx'], { ext: 1, osize: 'v' });
