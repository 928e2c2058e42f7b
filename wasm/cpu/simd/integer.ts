// MMX / SSE2 packed-integer arithmetic, logic, compares and shifts (SDM Vol. 2, each instruction's
// "Operation" section). Every function serves both forms: `w` is the operand width in bytes, 8 for an
// MMX register (mm, m64) or 16 for an XMM register (xmm, m128); `esz` the element size in bytes.
// `dst` is the first source and the destination, `src` the second source; they may be the same
// register. These operations are exact in WebAssembly SIMD, so each is one or a few v128 ops.
// None of them touches MXCSR.

import { ldw, stw } from './vec';

// --- add / subtract --------------------------------------------------------------------------

/** PADDB/PADDW/PADDD/PADDQ: wrapping add per element. */
export function padd(dst: usize, src: usize, w: i32, esz: i32): void {
  const a = ldw(dst, w), b = ldw(src, w);
  let r: v128;
  switch (esz) {
    case 1: r = i8x16.add(a, b); break;
    case 2: r = i16x8.add(a, b); break;
    case 4: r = i32x4.add(a, b); break;
    default: r = i64x2.add(a, b); break;
  }
  stw(dst, r, w);
}

/** PSUBB/PSUBW/PSUBD/PSUBQ: wrapping dst - src per element. */
export function psub(dst: usize, src: usize, w: i32, esz: i32): void {
  const a = ldw(dst, w), b = ldw(src, w);
  let r: v128;
  switch (esz) {
    case 1: r = i8x16.sub(a, b); break;
    case 2: r = i16x8.sub(a, b); break;
    case 4: r = i32x4.sub(a, b); break;
    default: r = i64x2.sub(a, b); break;
  }
  stw(dst, r, w);
}

/** PADDSB/PADDSW (signed) and PADDUSB/PADDUSW (`unsigned`): saturating add, esz 1 or 2. */
export function padds(dst: usize, src: usize, w: i32, esz: i32, unsigned: bool): void {
  const a = ldw(dst, w), b = ldw(src, w);
  let r: v128;
  if (esz == 1) r = unsigned ? i8x16.add_sat_u(a, b) : i8x16.add_sat_s(a, b);
  else r = unsigned ? i16x8.add_sat_u(a, b) : i16x8.add_sat_s(a, b);
  stw(dst, r, w);
}

/** PSUBSB/PSUBSW (signed) and PSUBUSB/PSUBUSW (`unsigned`): saturating dst - src, esz 1 or 2. */
export function psubs(dst: usize, src: usize, w: i32, esz: i32, unsigned: bool): void {
  const a = ldw(dst, w), b = ldw(src, w);
  let r: v128;
  if (esz == 1) r = unsigned ? i8x16.sub_sat_u(a, b) : i8x16.sub_sat_s(a, b);
  else r = unsigned ? i16x8.sub_sat_u(a, b) : i16x8.sub_sat_s(a, b);
  stw(dst, r, w);
}

// --- multiply --------------------------------------------------------------------------------

/** PMULLW: low 16 bits of each signed word product. */
export function pmullw(dst: usize, src: usize, w: i32): void {
  stw(dst, i16x8.mul(ldw(dst, w), ldw(src, w)), w);
}

/** PMULHW (signed) / PMULHUW (`unsigned`): high 16 bits of each word product. */
export function pmulhw(dst: usize, src: usize, w: i32, unsigned: bool): void {
  const a = ldw(dst, w), b = ldw(src, w);
  let lo: v128, hi: v128;
  if (unsigned) { lo = i32x4.extmul_low_i16x8_u(a, b); hi = i32x4.extmul_high_i16x8_u(a, b); }
  else { lo = i32x4.extmul_low_i16x8_s(a, b); hi = i32x4.extmul_high_i16x8_s(a, b); }
  stw(dst, i16x8.shuffle(lo, hi, 1, 3, 5, 7, 9, 11, 13, 15), w);
}

/** PMULUDQ: unsigned 32x32->64 product of the even doublewords (dword 0, and dword 2 for XMM). */
export function pmuludq(dst: usize, src: usize, w: i32): void {
  const a = ldw(dst, w), b = ldw(src, w);
  const ae = i32x4.shuffle(a, a, 0, 2, 0, 2), be = i32x4.shuffle(b, b, 0, 2, 0, 2);
  stw(dst, i64x2.extmul_low_i32x4_u(ae, be), w);
}

/** PMADDWD: signed word products summed in adjacent pairs into doublewords (0x8000*0x8000*2 wraps
 *  to 0x80000000, as on hardware). */
export function pmaddwd(dst: usize, src: usize, w: i32): void {
  stw(dst, i32x4.dot_i16x8_s(ldw(dst, w), ldw(src, w)), w);
}

// --- average, min, max, sum of absolute differences --------------------------------------------

/** PAVGB/PAVGW: unsigned (a + b + 1) >> 1, esz 1 or 2. */
export function pavg(dst: usize, src: usize, w: i32, esz: i32): void {
  const a = ldw(dst, w), b = ldw(src, w);
  stw(dst, esz == 1 ? i8x16.avgr_u(a, b) : i16x8.avgr_u(a, b), w);
}

/** PMINUB (`max` false) / PMAXUB. */
export function pminmaxub(dst: usize, src: usize, w: i32, max: bool): void {
  const a = ldw(dst, w), b = ldw(src, w);
  stw(dst, max ? i8x16.max_u(a, b) : i8x16.min_u(a, b), w);
}

/** PMINSW (`max` false) / PMAXSW. */
export function pminmaxsw(dst: usize, src: usize, w: i32, max: bool): void {
  const a = ldw(dst, w), b = ldw(src, w);
  stw(dst, max ? i16x8.max_s(a, b) : i16x8.min_s(a, b), w);
}

/** PSADBW: per 8-byte group, the sum of |a - b| over the unsigned bytes, zero-extended into the
 *  group's quadword (bits 16-63 cleared). */
export function psadbw(dst: usize, src: usize, w: i32): void {
  const a = ldw(dst, w), b = ldw(src, w);
  const d = i8x16.sub(i8x16.max_u(a, b), i8x16.min_u(a, b));
  const s4 = i32x4.extadd_pairwise_i16x8_u(i16x8.extadd_pairwise_i8x16_u(d));
  const s2 = i32x4.add(s4, i32x4.shuffle(s4, s4, 1, 0, 3, 2));
  stw(dst, v128.and(s2, i64x2.splat(0xffffffff)), w);
}

// --- logic -----------------------------------------------------------------------------------

export const LOGIC_AND: i32 = 0;
export const LOGIC_ANDN: i32 = 1; // (NOT dst) AND src
export const LOGIC_OR: i32 = 2;
export const LOGIC_XOR: i32 = 3;

/** PAND/PANDN/POR/PXOR, and with w = 16 also ANDPS/ANDPD, ANDNPS/ANDNPD, ORPS/ORPD, XORPS/XORPD
 *  (bitwise, no floating-point exceptions). */
export function plogic(dst: usize, src: usize, w: i32, op: i32): void {
  const a = ldw(dst, w), b = ldw(src, w);
  let r: v128;
  switch (op) {
    case LOGIC_AND: r = v128.and(a, b); break;
    case LOGIC_ANDN: r = v128.andnot(b, a); break;
    case LOGIC_OR: r = v128.or(a, b); break;
    default: r = v128.xor(a, b); break;
  }
  stw(dst, r, w);
}

// --- compare ---------------------------------------------------------------------------------

/** PCMPEQB/W/D: all-ones where equal. */
export function pcmpeq(dst: usize, src: usize, w: i32, esz: i32): void {
  const a = ldw(dst, w), b = ldw(src, w);
  let r: v128;
  switch (esz) {
    case 1: r = i8x16.eq(a, b); break;
    case 2: r = i16x8.eq(a, b); break;
    default: r = i32x4.eq(a, b); break;
  }
  stw(dst, r, w);
}

/** PCMPGTB/W/D: all-ones where dst > src, signed. */
export function pcmpgt(dst: usize, src: usize, w: i32, esz: i32): void {
  const a = ldw(dst, w), b = ldw(src, w);
  let r: v128;
  switch (esz) {
    case 1: r = i8x16.gt_s(a, b); break;
    case 2: r = i16x8.gt_s(a, b); break;
    default: r = i32x4.gt_s(a, b); break;
  }
  stw(dst, r, w);
}

// --- shifts ----------------------------------------------------------------------------------

export const SHIFT_LL: i32 = 0; // PSLLW/D/Q
export const SHIFT_RL: i32 = 1; // PSRLW/D/Q
export const SHIFT_RA: i32 = 2; // PSRAW/D (there is no PSRAQ before AVX-512)

/** Shift every element of `dst` by `count` (the full 64-bit count). A count above the element
 *  width minus one gives zero for logical shifts and the sign fill for arithmetic ones. */
export function pshift(dst: usize, count: u64, w: i32, esz: i32, kind: i32): void {
  const bits = <u64>(esz << 3);
  const a = ldw(dst, w);
  let r: v128;
  if (count >= bits) {
    if (kind != SHIFT_RA) { stw(dst, i64x2.splat(0), w); return; }
    count = bits - 1;
  }
  const c = <i32>count;
  switch (esz) {
    case 2: r = kind == SHIFT_LL ? i16x8.shl(a, c) : kind == SHIFT_RL ? i16x8.shr_u(a, c) : i16x8.shr_s(a, c); break;
    case 4: r = kind == SHIFT_LL ? i32x4.shl(a, c) : kind == SHIFT_RL ? i32x4.shr_u(a, c) : i32x4.shr_s(a, c); break;
    default: r = kind == SHIFT_LL ? i64x2.shl(a, c) : i64x2.shr_u(a, c); break;
  }
  stw(dst, r, w);
}

/** PSLLx/PSRLx/PSRAx mm|xmm, mm/m64|xmm/m128: the count is the low 64 bits of `src`. */
export function pshiftReg(dst: usize, src: usize, w: i32, esz: i32, kind: i32): void {
  pshift(dst, load<u64>(src), w, esz, kind);
}

/** The immediate forms (0F 71/72/73 /2 /4 /6). */
export function pshiftImm(dst: usize, imm: i32, w: i32, esz: i32, kind: i32): void {
  pshift(dst, <u64>(imm & 0xff), w, esz, kind);
}

/** PSLLDQ (`left`) / PSRLDQ xmm, imm8: whole-register byte shift; a count above 15 clears it. */
export function pbyteShift(dst: usize, imm: i32, left: bool): void {
  const n = min(imm & 0xff, 16);
  const iota = i8x16(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  // swizzle yields 0 for an index >= 16; iota - n wraps to >= 240 for the bytes shifted in.
  const idx = left ? i8x16.sub(iota, i8x16.splat(<i8>n)) : i8x16.add(iota, i8x16.splat(<i8>n));
  v128.store(dst, i8x16.swizzle(v128.load(dst), idx));
}
