// The table of operations under test: for each, the real instruction (run by the C reference
// sseref.c) and the library call (run in wasm by the generated AssemblyScript entry). Both programs
// are generated from this one table (test/simd/build.ts), so their numbering cannot drift.
//
// C side (AT&T syntax): before the instruction xmm0/xmm1/xmm2 hold operands A/B/C, mm0/mm1/mm2
// their low quadwords (MMX ops only), rax the low quadword of B, rdi the address of the result
// buffer R. `$I` in the text is replaced by the immediate.
// AS side: `R` (result buffer, usize), `A`, `B`, `C` (operand addresses), `M` (MXCSR) and `I` (imm)
// are in scope; the snippet may assign the returned flags to `f`.
// Result kinds: 'x' R = xmm0; 'm' R = mm0 (bytes 8-15 of R keep A's); 'g' R = rax (zero-extended);
// 'f' R = RFLAGS & (OF SF ZF AF PF CF) after COMI (flags preset to all ones); 'w' R = the memory at
// rdi, preset to A. Before the operation R holds A for 'x', 'm', 'w' and zero for 'g', 'f'.

export type ResultKind = 'x' | 'm' | 'g' | 'f' | 'w';
export type Family = 'integer' | 'shuffle' | 'float-arith' | 'float-compare' | 'convert' | 'rcp';

/** How operands are generated (see operands.ts). */
export type Gen =
  | { kind: 'int'; esz: number; w: number }                // integer lanes of esz bytes
  | { kind: 'shift'; esz: number; w: number }              // A integer lanes, B a shift count
  | { kind: 'float'; dbl: boolean; lanes: number; unary?: boolean } // float lanes (pairs)
  | { kind: 'cvt'; from: 'i32' | 'i64' | 'f32' | 'f64'; lanes: number } // B holds the sources
  | { kind: 'rcp'; lanes: number };

export interface OpDef {
  name: string;
  family: Family;
  asm: string;
  res: ResultKind;
  as: string;
  gen: Gen;
  imms?: number[];
  mmx?: boolean;
}

export const ops: OpDef[] = [];

function add(o: OpDef): void { ops.push(o); }

const SHIFT_IMMS = [0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 255];
const ALL_IMMS = Array.from({ length: 256 }, (_, i) => i);

// --- integer -----------------------------------------------------------------------------------

/** One MMX and one XMM variant of an integer op. `call(w)` is the AS call for width w. */
function intOp(mn: string, esz: number, call: (w: number) => string, opts: { mmx?: boolean; xmm?: boolean; family?: Family } = {}): void {
  const family = opts.family ?? 'integer';
  if (opts.mmx !== false) {
    add({ name: `${mn}_mm`, family, asm: `${mn} %%mm1, %%mm0`, res: 'm', mmx: true, as: `${call(8)};`, gen: { kind: 'int', esz, w: 8 } });
  }
  if (opts.xmm !== false) {
    add({ name: `${mn}_xmm`, family, asm: `${mn} %%xmm1, %%xmm0`, res: 'x', as: `${call(16)};`, gen: { kind: 'int', esz, w: 16 } });
  }
}

const SZ: Record<string, number> = { b: 1, w: 2, d: 4, q: 8 };
for (const s of ['b', 'w', 'd', 'q']) {
  intOp(`padd${s}`, SZ[s], (w) => `S.padd(R, B, ${w}, ${SZ[s]})`);
  intOp(`psub${s}`, SZ[s], (w) => `S.psub(R, B, ${w}, ${SZ[s]})`);
}
for (const s of ['b', 'w']) {
  intOp(`padds${s}`, SZ[s], (w) => `S.padds(R, B, ${w}, ${SZ[s]}, false)`);
  intOp(`paddus${s}`, SZ[s], (w) => `S.padds(R, B, ${w}, ${SZ[s]}, true)`);
  intOp(`psubs${s}`, SZ[s], (w) => `S.psubs(R, B, ${w}, ${SZ[s]}, false)`);
  intOp(`psubus${s}`, SZ[s], (w) => `S.psubs(R, B, ${w}, ${SZ[s]}, true)`);
  intOp(`pavg${s}`, SZ[s], (w) => `S.pavg(R, B, ${w}, ${SZ[s]})`);
}
intOp('pmullw', 2, (w) => `S.pmullw(R, B, ${w})`);
intOp('pmulhw', 2, (w) => `S.pmulhw(R, B, ${w}, false)`);
intOp('pmulhuw', 2, (w) => `S.pmulhw(R, B, ${w}, true)`);
intOp('pmuludq', 4, (w) => `S.pmuludq(R, B, ${w})`);
intOp('pmaddwd', 2, (w) => `S.pmaddwd(R, B, ${w})`);
intOp('pminub', 1, (w) => `S.pminmaxub(R, B, ${w}, false)`);
intOp('pmaxub', 1, (w) => `S.pminmaxub(R, B, ${w}, true)`);
intOp('pminsw', 2, (w) => `S.pminmaxsw(R, B, ${w}, false)`);
intOp('pmaxsw', 2, (w) => `S.pminmaxsw(R, B, ${w}, true)`);
intOp('psadbw', 1, (w) => `S.psadbw(R, B, ${w})`);
intOp('pand', 4, (w) => `S.plogic(R, B, ${w}, S.LOGIC_AND)`);
intOp('pandn', 4, (w) => `S.plogic(R, B, ${w}, S.LOGIC_ANDN)`);
intOp('por', 4, (w) => `S.plogic(R, B, ${w}, S.LOGIC_OR)`);
intOp('pxor', 4, (w) => `S.plogic(R, B, ${w}, S.LOGIC_XOR)`);
for (const s of ['b', 'w', 'd']) {
  intOp(`pcmpeq${s}`, SZ[s], (w) => `S.pcmpeq(R, B, ${w}, ${SZ[s]})`);
  intOp(`pcmpgt${s}`, SZ[s], (w) => `S.pcmpgt(R, B, ${w}, ${SZ[s]})`);
}
for (const [l, k] of [['a', 'andps'], ['an', 'andnps'], ['o', 'orps'], ['x', 'xorps']] as const) {
  const kind = { a: 'S.LOGIC_AND', an: 'S.LOGIC_ANDN', o: 'S.LOGIC_OR', x: 'S.LOGIC_XOR' }[l];
  intOp(k, 4, () => `S.plogic(R, B, 16, ${kind})`, { mmx: false });
  intOp(k.replace('ps', 'pd'), 8, () => `S.plogic(R, B, 16, ${kind})`, { mmx: false });
}

// shifts
const SHIFT_KIND: Record<string, string> = { ll: 'S.SHIFT_LL', rl: 'S.SHIFT_RL', ra: 'S.SHIFT_RA' };
for (const k of ['ll', 'rl', 'ra']) {
  for (const s of k == 'ra' ? ['w', 'd'] : ['w', 'd', 'q']) {
    const mn = `ps${k}${s}`, esz = SZ[s];
    for (const w of [8, 16]) {
      const r = w == 8 ? '%%mm' : '%%xmm';
      add({ name: `${mn}_${w == 8 ? 'mm' : 'xmm'}`, family: 'integer', asm: `${mn} ${r}1, ${r}0`, res: w == 8 ? 'm' : 'x', mmx: w == 8,
        as: `S.pshiftReg(R, B, ${w}, ${esz}, ${SHIFT_KIND[k]});`, gen: { kind: 'shift', esz, w } });
      add({ name: `${mn}_${w == 8 ? 'mm' : 'xmm'}_imm`, family: 'integer', asm: `${mn} $I, ${r}0`, res: w == 8 ? 'm' : 'x', mmx: w == 8,
        as: `S.pshiftImm(R, I, ${w}, ${esz}, ${SHIFT_KIND[k]});`, gen: { kind: 'int', esz, w }, imms: SHIFT_IMMS });
    }
  }
}
for (const [mn, left] of [['pslldq', true], ['psrldq', false]] as const) {
  add({ name: mn, family: 'integer', asm: `${mn} $I, %%xmm0`, res: 'x', as: `S.pbyteShift(R, I, ${left});`,
    gen: { kind: 'int', esz: 1, w: 16 }, imms: [...Array.from({ length: 18 }, (_, i) => i), 31, 128, 255] });
}

// --- pack / unpack / shuffle / insert / extract --------------------------------------------------

intOp('packsswb', 2, (w) => `S.pack(R, B, ${w}, S.PACK_SSWB)`, { family: 'shuffle' });
intOp('packssdw', 4, (w) => `S.pack(R, B, ${w}, S.PACK_SSDW)`, { family: 'shuffle' });
intOp('packuswb', 2, (w) => `S.pack(R, B, ${w}, S.PACK_USWB)`, { family: 'shuffle' });
for (const [s, esz] of [['bw', 1], ['wd', 2], ['dq', 4], ['qdq', 8]] as const) {
  const mmx = esz != 8;
  intOp(`punpckl${s}`, esz, (w) => `S.punpckl(R, B, ${w}, ${esz})`, { family: 'shuffle', mmx });
  intOp(`punpckh${s}`, esz, (w) => `S.punpckh(R, B, ${w}, ${esz})`, { family: 'shuffle', mmx });
}
intOp('unpcklps', 4, () => 'S.punpckl(R, B, 16, 4)', { family: 'shuffle', mmx: false });
intOp('unpckhps', 4, () => 'S.punpckh(R, B, 16, 4)', { family: 'shuffle', mmx: false });
intOp('unpcklpd', 8, () => 'S.punpckl(R, B, 16, 8)', { family: 'shuffle', mmx: false });
intOp('unpckhpd', 8, () => 'S.punpckh(R, B, 16, 8)', { family: 'shuffle', mmx: false });

const xi = { kind: 'int', esz: 2, w: 16 } as const;
add({ name: 'pshufd', family: 'shuffle', asm: 'pshufd $I, %%xmm1, %%xmm0', res: 'x', as: 'S.pshufd(R, B, I);', gen: xi, imms: ALL_IMMS });
add({ name: 'pshufhw', family: 'shuffle', asm: 'pshufhw $I, %%xmm1, %%xmm0', res: 'x', as: 'S.pshufhw(R, B, I);', gen: xi, imms: ALL_IMMS });
add({ name: 'pshuflw', family: 'shuffle', asm: 'pshuflw $I, %%xmm1, %%xmm0', res: 'x', as: 'S.pshuflw(R, B, I);', gen: xi, imms: ALL_IMMS });
add({ name: 'pshufw', family: 'shuffle', asm: 'pshufw $I, %%mm1, %%mm0', res: 'm', mmx: true, as: 'S.pshufw(R, B, I);', gen: { kind: 'int', esz: 2, w: 8 }, imms: ALL_IMMS });
add({ name: 'shufps', family: 'shuffle', asm: 'shufps $I, %%xmm1, %%xmm0', res: 'x', as: 'S.shufps(R, B, I);', gen: xi, imms: ALL_IMMS });
add({ name: 'shufpd', family: 'shuffle', asm: 'shufpd $I, %%xmm1, %%xmm0', res: 'x', as: 'S.shufpd(R, B, I);', gen: xi, imms: [0, 1, 2, 3, 4, 0xfe, 0xff] });
const WORD_IMMS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 11, 0x83, 0xff];
add({ name: 'pextrw_xmm', family: 'shuffle', asm: 'pextrw $I, %%xmm1, %%eax', res: 'g', as: 'store<u32>(R, S.pextrw(B, 16, I));', gen: xi, imms: WORD_IMMS });
add({ name: 'pextrw_mm', family: 'shuffle', asm: 'pextrw $I, %%mm1, %%eax', res: 'g', mmx: true, as: 'store<u32>(R, S.pextrw(B, 8, I));', gen: { kind: 'int', esz: 2, w: 8 }, imms: WORD_IMMS });
add({ name: 'pinsrw_xmm', family: 'shuffle', asm: 'pinsrw $I, %%eax, %%xmm0', res: 'x', as: 'S.pinsrw(R, load<i32>(B), 16, I);', gen: xi, imms: WORD_IMMS });
add({ name: 'pinsrw_mm', family: 'shuffle', asm: 'pinsrw $I, %%eax, %%mm0', res: 'm', mmx: true, as: 'S.pinsrw(R, load<i32>(B), 8, I);', gen: { kind: 'int', esz: 2, w: 8 }, imms: WORD_IMMS });
add({ name: 'pmovmskb_xmm', family: 'shuffle', asm: 'pmovmskb %%xmm1, %%eax', res: 'g', as: 'store<u32>(R, S.pmovmskb(B, 16));', gen: { kind: 'int', esz: 1, w: 16 } });
add({ name: 'pmovmskb_mm', family: 'shuffle', asm: 'pmovmskb %%mm1, %%eax', res: 'g', mmx: true, as: 'store<u32>(R, S.pmovmskb(B, 8));', gen: { kind: 'int', esz: 1, w: 8 } });
add({ name: 'movmskps', family: 'shuffle', asm: 'movmskps %%xmm1, %%eax', res: 'g', as: 'store<u32>(R, S.movmskps(B));', gen: { kind: 'int', esz: 4, w: 16 } });
add({ name: 'movmskpd', family: 'shuffle', asm: 'movmskpd %%xmm1, %%eax', res: 'g', as: 'store<u32>(R, S.movmskpd(B));', gen: { kind: 'int', esz: 8, w: 16 } });
add({ name: 'maskmovdqu', family: 'shuffle', asm: 'maskmovdqu %%xmm2, %%xmm1', res: 'w', as: 'S.maskmovMerge(R, B, C, 16);', gen: { kind: 'int', esz: 1, w: 16 } });
add({ name: 'maskmovq', family: 'shuffle', asm: 'maskmovq %%mm2, %%mm1', res: 'w', mmx: true, as: 'S.maskmovMerge(R, B, C, 8);', gen: { kind: 'int', esz: 1, w: 8 } });

// --- floating point ----------------------------------------------------------------------------

const SHAPES = [['ps', 'S.PS', false, 4], ['ss', 'S.SS', false, 1], ['pd', 'S.PD', true, 2], ['sd', 'S.SD', true, 1]] as const;
for (const [op, k] of [['add', 'FP_ADD'], ['sub', 'FP_SUB'], ['mul', 'FP_MUL'], ['div', 'FP_DIV'], ['min', 'FP_MIN'], ['max', 'FP_MAX'], ['sqrt', 'FP_SQRT']]) {
  for (const [sh, shape, dbl, lanes] of SHAPES) {
    add({ name: `${op}${sh}`, family: 'float-arith', asm: `${op}${sh} %%xmm1, %%xmm0`, res: 'x',
      as: `f = S.fpArith(S.${k}, ${shape}, R, B, M);`, gen: { kind: 'float', dbl, lanes, unary: op == 'sqrt' } });
  }
}
for (const [sh, shape, dbl, lanes] of SHAPES) {
  add({ name: `cmp${sh}`, family: 'float-compare', asm: `cmp${sh} $I, %%xmm1, %%xmm0`, res: 'x',
    as: `f = S.fpCmp(${shape}, R, B, I, M);`, gen: { kind: 'float', dbl, lanes }, imms: [0, 1, 2, 3, 4, 5, 6, 7, 8, 13, 0x1f, 0xff] });
}
for (const [mn, dbl, sig] of [['comiss', false, true], ['ucomiss', false, false], ['comisd', true, true], ['ucomisd', true, false]] as const) {
  add({ name: mn, family: 'float-compare', asm: `${mn} %%xmm1, %%xmm0`, res: 'f',
    as: `f = S.fpComi(A, B, ${dbl}, ${sig}, M); if (!S.simdFault(f, M)) store<u32>(R, f >>> S.COMI_SHIFT);`,
    gen: { kind: 'float', dbl, lanes: 1 } });
}
add({ name: 'rcpps', family: 'rcp', asm: 'rcpps %%xmm1, %%xmm0', res: 'x', as: 'S.fpRcp(S.PS, R, B);', gen: { kind: 'rcp', lanes: 4 } });
add({ name: 'rcpss', family: 'rcp', asm: 'rcpss %%xmm1, %%xmm0', res: 'x', as: 'S.fpRcp(S.SS, R, B);', gen: { kind: 'rcp', lanes: 1 } });
add({ name: 'rsqrtps', family: 'rcp', asm: 'rsqrtps %%xmm1, %%xmm0', res: 'x', as: 'S.fpRsqrt(S.PS, R, B);', gen: { kind: 'rcp', lanes: 4 } });
add({ name: 'rsqrtss', family: 'rcp', asm: 'rsqrtss %%xmm1, %%xmm0', res: 'x', as: 'S.fpRsqrt(S.SS, R, B);', gen: { kind: 'rcp', lanes: 1 } });

// --- conversions -------------------------------------------------------------------------------

function cvt(name: string, asm: string, res: ResultKind, as: string, from: 'i32' | 'i64' | 'f32' | 'f64', lanes: number, mmx = false): void {
  add({ name, family: 'convert', asm, res, as: `f = ${as};`, gen: { kind: 'cvt', from, lanes }, mmx });
}
cvt('cvtpi2ps', 'cvtpi2ps %%mm1, %%xmm0', 'x', 'S.cvtpi2ps(R, B, M)', 'i32', 2, true);
cvt('cvtps2pi', 'cvtps2pi %%xmm1, %%mm0', 'm', 'S.cvtps2pi(R, B, false, M)', 'f32', 2, true);
cvt('cvttps2pi', 'cvttps2pi %%xmm1, %%mm0', 'm', 'S.cvtps2pi(R, B, true, M)', 'f32', 2, true);
cvt('cvtpi2pd', 'cvtpi2pd %%mm1, %%xmm0', 'x', 'S.cvtpi2pd(R, B, M)', 'i32', 2, true);
cvt('cvtpd2pi', 'cvtpd2pi %%xmm1, %%mm0', 'm', 'S.cvtpd2pi(R, B, false, M)', 'f64', 2, true);
cvt('cvttpd2pi', 'cvttpd2pi %%xmm1, %%mm0', 'm', 'S.cvtpd2pi(R, B, true, M)', 'f64', 2, true);
cvt('cvtsi2ss_32', 'cvtsi2ssl %%eax, %%xmm0', 'x', 'S.cvtsi2ss(R, B, false, M)', 'i32', 1);
cvt('cvtsi2ss_64', 'cvtsi2ssq %%rax, %%xmm0', 'x', 'S.cvtsi2ss(R, B, true, M)', 'i64', 1);
cvt('cvtsi2sd_32', 'cvtsi2sdl %%eax, %%xmm0', 'x', 'S.cvtsi2sd(R, B, false, M)', 'i32', 1);
cvt('cvtsi2sd_64', 'cvtsi2sdq %%rax, %%xmm0', 'x', 'S.cvtsi2sd(R, B, true, M)', 'i64', 1);
for (const t of ['', 't']) {
  const tr = t == 't';
  cvt(`cvt${t}ss2si_32`, `cvt${t}ss2si %%xmm1, %%eax`, 'g', `S.cvtss2si(R, B, false, ${tr}, M)`, 'f32', 1);
  cvt(`cvt${t}ss2si_64`, `cvt${t}ss2si %%xmm1, %%rax`, 'g', `S.cvtss2si(R, B, true, ${tr}, M)`, 'f32', 1);
  cvt(`cvt${t}sd2si_32`, `cvt${t}sd2si %%xmm1, %%eax`, 'g', `S.cvtsd2si(R, B, false, ${tr}, M)`, 'f64', 1);
  cvt(`cvt${t}sd2si_64`, `cvt${t}sd2si %%xmm1, %%rax`, 'g', `S.cvtsd2si(R, B, true, ${tr}, M)`, 'f64', 1);
  cvt(`cvt${t}ps2dq`, `cvt${t}ps2dq %%xmm1, %%xmm0`, 'x', `S.cvtps2dq(R, B, ${tr}, M)`, 'f32', 4);
  cvt(`cvt${t}pd2dq`, `cvt${t}pd2dq %%xmm1, %%xmm0`, 'x', `S.cvtpd2dq(R, B, ${tr}, M)`, 'f64', 2);
}
cvt('cvtss2sd', 'cvtss2sd %%xmm1, %%xmm0', 'x', 'S.cvtss2sd(R, B, M)', 'f32', 1);
cvt('cvtsd2ss', 'cvtsd2ss %%xmm1, %%xmm0', 'x', 'S.cvtsd2ss(R, B, M)', 'f64', 1);
cvt('cvtps2pd', 'cvtps2pd %%xmm1, %%xmm0', 'x', 'S.cvtps2pd(R, B, M)', 'f32', 2);
cvt('cvtpd2ps', 'cvtpd2ps %%xmm1, %%xmm0', 'x', 'S.cvtpd2ps(R, B, M)', 'f64', 2);
cvt('cvtdq2ps', 'cvtdq2ps %%xmm1, %%xmm0', 'x', 'S.cvtdq2ps(R, B, M)', 'i32', 4);
cvt('cvtdq2pd', 'cvtdq2pd %%xmm1, %%xmm0', 'x', 'S.cvtdq2pd(R, B, M)', 'i32', 2);

export const opIndex = new Map(ops.map((o, i) => [o.name, i]));
