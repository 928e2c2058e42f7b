// Pack, unpack, shuffle, insert/extract and mask-extraction operations, integer and floating-point
// (SDM Vol. 2). Width conventions as in integer.ts: `w` = 8 (MMX) or 16 (XMM). None raises a
// floating-point exception: SHUFPS/UNPCKLPS and friends only move bits.
import { ldw, stw } from './vec';

// --- pack ------------------------------------------------------------------------------------

export const PACK_SSWB: i32 = 0; // PACKSSWB: signed words -> signed bytes
export const PACK_SSDW: i32 = 1; // PACKSSDW: signed doublewords -> signed words
export const PACK_USWB: i32 = 2; // PACKUSWB: signed words -> unsigned bytes

/** PACKSSWB/PACKSSDW/PACKUSWB: dst's elements narrowed with saturation, then src's. For MMX both
 *  narrow inputs are [dst.q, src.q], so the low 8 bytes of the result are the MMX result. */
export function pack(dst: usize, src: usize, w: i32, kind: i32): void {
  let a: v128, b: v128;
  if (w == 16) { a = v128.load(dst); b = v128.load(src); }
  else { a = v128.load64_lane(src, v128.load64_zero(dst), 1); b = a; }
  let r: v128;
  switch (kind) {
    case PACK_SSWB: r = i8x16.narrow_i16x8_s(a, b); break;
    case PACK_SSDW: r = i16x8.narrow_i32x4_s(a, b); break;
    default: r = i8x16.narrow_i16x8_u(a, b); break;
  }
  stw(dst, r, w);
}

// --- unpack (interleave) ---------------------------------------------------------------------

/** Interleave the low halves of a and b, element size esz. */
// @ts-ignore: decorator
@inline function interleaveLow(a: v128, b: v128, esz: i32): v128 {
  switch (esz) {
    case 1: return i8x16.shuffle(a, b, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    case 2: return i16x8.shuffle(a, b, 0, 8, 1, 9, 2, 10, 3, 11);
    case 4: return i32x4.shuffle(a, b, 0, 4, 1, 5);
    default: return i64x2.shuffle(a, b, 0, 2);
  }
}

/** Half of an operand (the low half, or the high half when `high`), zero-extended. */
// @ts-ignore: decorator
@inline function loadHalf(p: usize, w: i32, high: bool): v128 {
  if (w == 16) return v128.load64_zero(p + (high ? 8 : 0));
  return v128.load32_zero(p + (high ? 4 : 0));
}

/** PUNPCKLBW/WD/DQ/QDQ (esz 1/2/4/8), and with w = 16 UNPCKLPS (esz 4) / UNPCKLPD (esz 8):
 *  interleave the low halves, dst's element first. PUNPCKLQDQ exists only for XMM. */
export function punpckl(dst: usize, src: usize, w: i32, esz: i32): void {
  stw(dst, interleaveLow(loadHalf(dst, w, false), loadHalf(src, w, false), esz), w);
}

/** PUNPCKHBW/WD/DQ/QDQ, UNPCKHPS/UNPCKHPD: interleave the high halves. */
export function punpckh(dst: usize, src: usize, w: i32, esz: i32): void {
  stw(dst, interleaveLow(loadHalf(dst, w, true), loadHalf(src, w, true), esz), w);
}

// --- shuffles --------------------------------------------------------------------------------

/** Four elements of size esz (2 or 4) of `src` picked by the 2-bit fields of imm, to `dst`. */
function shuffle4(dst: usize, src: usize, imm: i32, esz: i32): void {
  if (esz == 4) {
    const e0 = load<u32>(src + ((imm & 3) << 2)), e1 = load<u32>(src + (((imm >> 2) & 3) << 2));
    const e2 = load<u32>(src + (((imm >> 4) & 3) << 2)), e3 = load<u32>(src + (((imm >> 6) & 3) << 2));
    store<u32>(dst, e0); store<u32>(dst, e1, 4); store<u32>(dst, e2, 8); store<u32>(dst, e3, 12);
  } else {
    const e0 = load<u16>(src + ((imm & 3) << 1)), e1 = load<u16>(src + (((imm >> 2) & 3) << 1));
    const e2 = load<u16>(src + (((imm >> 4) & 3) << 1)), e3 = load<u16>(src + (((imm >> 6) & 3) << 1));
    store<u16>(dst, e0); store<u16>(dst, e1, 2); store<u16>(dst, e2, 4); store<u16>(dst, e3, 6);
  }
}

/** PSHUFD xmm, xmm/m128, imm8. */
export function pshufd(dst: usize, src: usize, imm: i32): void { shuffle4(dst, src, imm, 4); }

/** PSHUFW mm, mm/m64, imm8. */
export function pshufw(dst: usize, src: usize, imm: i32): void { shuffle4(dst, src, imm, 2); }

/** PSHUFLW xmm, xmm/m128, imm8: low four words shuffled, high quadword copied. */
export function pshuflw(dst: usize, src: usize, imm: i32): void {
  const hi = load<u64>(src, 8);
  shuffle4(dst, src, imm, 2);
  store<u64>(dst, hi, 8);
}

/** PSHUFHW xmm, xmm/m128, imm8: high four words shuffled, low quadword copied. */
export function pshufhw(dst: usize, src: usize, imm: i32): void {
  const lo = load<u64>(src);
  shuffle4(dst + 8, src + 8, imm, 2);
  store<u64>(dst, lo);
}

/** SHUFPS xmm1, xmm2/m128, imm8: two dwords of dst then two of src, picked by imm. */
export function shufps(dst: usize, src: usize, imm: i32): void {
  const e0 = load<u32>(dst + ((imm & 3) << 2)), e1 = load<u32>(dst + (((imm >> 2) & 3) << 2));
  const e2 = load<u32>(src + (((imm >> 4) & 3) << 2)), e3 = load<u32>(src + (((imm >> 6) & 3) << 2));
  store<u32>(dst, e0); store<u32>(dst, e1, 4); store<u32>(dst, e2, 8); store<u32>(dst, e3, 12);
}

/** SHUFPD xmm1, xmm2/m128, imm8: dst.q[imm.0], then src.q[imm.1]. */
export function shufpd(dst: usize, src: usize, imm: i32): void {
  const q0 = load<u64>(dst + ((imm & 1) << 3)), q1 = load<u64>(src + (((imm >> 1) & 1) << 3));
  store<u64>(dst, q0); store<u64>(dst, q1, 8);
}

// --- insert / extract / masks ----------------------------------------------------------------

/** PEXTRW r32, mm|xmm, imm8: the selected word, zero-extended (imm taken modulo the word count). */
export function pextrw(src: usize, w: i32, imm: i32): i32 {
  return <i32>load<u16>(src + ((imm & ((w >> 1) - 1)) << 1));
}

/** PINSRW mm|xmm, r32/m16, imm8: replace the selected word with the low 16 bits of `value`. */
export function pinsrw(dst: usize, value: i32, w: i32, imm: i32): void {
  store<u16>(dst + ((imm & ((w >> 1) - 1)) << 1), <u16>value);
}

/** PMOVMSKB r32, mm|xmm: the sign bit of each byte. */
export function pmovmskb(src: usize, w: i32): i32 {
  return i8x16.bitmask(ldw(src, w));
}

/** MOVMSKPS r32, xmm: the sign bits of the four singles. */
export function movmskps(src: usize): i32 { return i32x4.bitmask(v128.load(src)); }

/** MOVMSKPD r32, xmm: the sign bits of the two doubles. */
export function movmskpd(src: usize): i32 { return i64x2.bitmask(v128.load(src)); }

/** MASKMOVQ mm1, mm2 / MASKMOVDQU xmm1, xmm2: byte i of the data register `src` is stored at
 *  [rDI + i] iff bit 7 of byte i of the mask register is set. Returns that byte-enable mask (bit i
 *  = byte i); the caller performs the stores, byte by byte, so that unselected bytes are not
 *  accessed (no fault, no write) — and so a mask of 0 writes nothing. */
export function maskmovMask(mask: usize, w: i32): i32 {
  return pmovmskb(mask, w);
}

/** The same applied to a w-byte buffer `mem` holding the destination's current bytes: the selected
 *  bytes of `src` replace those of `mem`. */
export function maskmovMerge(mem: usize, src: usize, mask: usize, w: i32): void {
  const sel = i8x16.shr_s(ldw(mask, w), 7);
  stw(mem, v128.bitselect(ldw(src, w), ldw(mem, w), sel), w);
}
