// x87 double extended precision (80-bit) values: register format, classification, 128-bit helpers
// and the single rounding step that every computed result goes through.
// Intel SDM Vol. 1: 4.2.2 (formats), 4.8.3 (special values), 8.1.5 (control word), 4.9.1 and 8.5
// (exceptions and their masked responses), Table 4-7 (NaN rules).
//
// Register format at a pointer (10 bytes): u64 significand with the explicit integer bit 63 at +0,
// u16 sign (bit 15) | biased exponent (bits 0-14, bias 16383) at +8.
//
// Behaviour measured on the real x87 (test/fpu/x87ref.c) and reproduced here:
//  * tininess is detected AFTER rounding (with unbounded exponent, at the precision-control
//    precision); masked underflow sets UE only when the result is also inexact;
//  * denormal results are rounded at the PC position of the stored significand (bit 40 for
//    24-bit, bit 11 for 53-bit), i.e. the exponent range is the full 15 bits for every PC;
//  * C1 = 1 when the magnitude was rounded up (inexact results only);
//  * unmasked overflow/underflow deliver the rounded result with the exponent biased by ∓24576
//    (0x6000); when even that does not fit, the masked response is delivered instead.

/** Exception flags, in status-word bit positions. */
export const FE_IE: u32 = 0x01;
export const FE_DE: u32 = 0x02;
export const FE_ZE: u32 = 0x04;
export const FE_OE: u32 = 0x08;
export const FE_UE: u32 = 0x10;
export const FE_PE: u32 = 0x20;
/** Condition codes, in status-word bit positions. */
export const SW_C0: u32 = 0x0100;
export const SW_C1: u32 = 0x0200;
export const SW_C2: u32 = 0x0400;
export const SW_C3: u32 = 0x4000;

/** Control word after FNINIT: every exception masked, 64-bit precision, round to nearest. */
export const CW_DEFAULT: u32 = 0x037f;

/** Operand classes (`classify`). */
export const C_ZERO: i32 = 0;
export const C_NORMAL: i32 = 1;
/** Denormal or pseudo-denormal (exponent 0, significand non-zero). */
export const C_DENORMAL: i32 = 2;
export const C_INF: i32 = 3;
export const C_QNAN: i32 = 4;
export const C_SNAN: i32 = 5;
/** Unnormal, pseudo-NaN, pseudo-infinity: integer bit clear with a non-zero exponent. */
export const C_UNSUPPORTED: i32 = 6;

export const EXP_BIAS: i32 = 16383;
/** Exponent adjustment for unmasked overflow/underflow results (SDM Vol. 1, 8.5.4, 8.5.5). */
export const EXP_WRAP: i32 = 0x6000;
export const INT_BIT: u64 = 0x8000000000000000;
export const QUIET_BIT: u64 = 0x4000000000000000;
/** The "real indefinite" QNaN: sign 1, exponent 0x7fff, significand 0xC000000000000000. */
export const INDEFINITE_SE: u32 = 0xffff;
export const INDEFINITE_SIG: u64 = 0xc000000000000000;

export const RC_NEAREST: u32 = 0;
export const RC_DOWN: u32 = 1;
export const RC_UP: u32 = 2;
export const RC_ZERO: u32 = 3;

@inline export function sigAt(p: usize): u64 { return load<u64>(p); }
@inline export function seAt(p: usize): u32 { return <u32>load<u16>(p, 8); }
@inline export function store80(p: usize, se: u32, sig: u64): void {
  store<u64>(p, sig);
  store<u16>(p, <u16>se, 8);
}

/** Rounding control (CW bits 10-11). */
@inline export function rcOf(cw: u32): u32 { return (cw >> 10) & 3; }

/** Significand precision selected by PC (CW bits 8-9): 00 = 24, 10 = 53, 11 = 64 bits.
 *  The reserved setting 01 behaves as 64 bits here. */
@inline export function precOf(cw: u32): i32 {
  const pc = (cw >> 8) & 3;
  return pc == 0 ? 24 : pc == 2 ? 53 : 64;
}

export function classify(se: u32, sig: u64): i32 {
  const e = se & 0x7fff;
  if (e == 0) return sig == 0 ? C_ZERO : C_DENORMAL;
  if ((sig & INT_BIT) == 0) return C_UNSUPPORTED;
  if (e == 0x7fff) {
    if ((sig << 1) == 0) return C_INF;
    return (sig & QUIET_BIT) != 0 ? C_QNAN : C_SNAN;
  }
  return C_NORMAL;
}

@inline export function isNaNClass(c: i32): bool { return c == C_QNAN || c == C_SNAN; }

// ---- unpacked operands ------------------------------------------------------------------------

/** Result of `unpack`: significand with bit 63 set and the biased exponent (below 1 for denormals). */
export let uSig: u64 = 0;
export let uExp: i32 = 0;

/** Normalizes a finite non-zero operand (normal, denormal or pseudo-denormal) into uSig/uExp. */
@inline export function unpack(se: u32, sig: u64): void {
  let e = <i32>(se & 0x7fff);
  if (e == 0) {
    const lz = <i32>clz(sig);
    sig <<= lz;
    e = 1 - lz;
  }
  uSig = sig;
  uExp = e;
}

// ---- 128-bit helpers (wasm has no i128); results in wHi:wLo ------------------------------------

export let wHi: u64 = 0;
export let wLo: u64 = 0;
export let wRem: u64 = 0;

/** wHi:wLo = a * b (unsigned 128-bit product). */
@inline export function mul64(a: u64, b: u64): void {
  const a0 = a & 0xffffffff, a1 = a >> 32, b0 = b & 0xffffffff, b1 = b >> 32;
  const p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
  const mid = (p00 >> 32) + (p01 & 0xffffffff) + (p10 & 0xffffffff);
  wHi = p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
  wLo = (mid << 32) | (p00 & 0xffffffff);
}

/** High half of the 128-bit product. */
@inline export function mulHi64(a: u64, b: u64): u64 {
  const a0 = a & 0xffffffff, a1 = a >> 32, b0 = b & 0xffffffff, b1 = b >> 32;
  const p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
  const mid = (p00 >> 32) + (p01 & 0xffffffff) + (p10 & 0xffffffff);
  return p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
}

/** wHi:wLo = (hi:lo) >> s with every shifted-out bit ORed into bit 0 ("jamming"), s >= 0. */
export function shr128jam(hi: u64, lo: u64, s: i32): void {
  if (s == 0) { wHi = hi; wLo = lo; return; }
  if (s < 64) {
    wLo = (hi << (64 - s)) | (lo >> s) | ((lo << (64 - s)) != 0 ? 1 : 0);
    wHi = hi >> s;
  } else if (s == 64) {
    wLo = hi | (lo != 0 ? 1 : 0);
    wHi = 0;
  } else if (s < 128) {
    wLo = (hi >> (s - 64)) | (((hi << (128 - s)) | lo) != 0 ? 1 : 0);
    wHi = 0;
  } else {
    wLo = (hi | lo) != 0 ? 1 : 0;
    wHi = 0;
  }
}

/** Quotient of (u1:u0) / v for a normalized divisor (bit 63 set) and u1 < v; remainder in wRem.
 *  Knuth's algorithm D in base 2^32 (Hacker's Delight, divlu). */
export function udiv128(u1: u64, u0: u64, v: u64): u64 {
  const b: u64 = 0x100000000;
  const vn1 = v >> 32, vn0 = v & 0xffffffff;
  const un1 = u0 >> 32, un0 = u0 & 0xffffffff;
  let q1 = u1 / vn1;
  let rhat = u1 - q1 * vn1;
  while (q1 >= b || q1 * vn0 > ((rhat << 32) | un1)) {
    q1--;
    rhat += vn1;
    if (rhat >= b) break;
  }
  const un21 = ((u1 << 32) | un1) - q1 * v;
  let q0 = un21 / vn1;
  rhat = un21 - q0 * vn1;
  while (q0 >= b || q0 * vn0 > ((rhat << 32) | un0)) {
    q0--;
    rhat += vn1;
    if (rhat >= b) break;
  }
  wRem = ((un21 << 32) | un0) - q0 * v;
  return (q1 << 32) | q0;
}

// ---- rounding ---------------------------------------------------------------------------------

/** Whether rounding increments the magnitude (SDM Vol. 1, 4.8.4). rc: 0 nearest-even, 1 down,
 *  2 up, 3 toward zero; sign is 0 or non-zero. */
@inline export function roundInc(rc: u32, sign: u32, lsb: bool, rbit: bool, sticky: bool): bool {
  if (rc == RC_NEAREST) return rbit && (sticky || lsb);
  if (rc == RC_ZERO) return false;
  return (rbit || sticky) && ((rc == RC_DOWN) == (sign != 0));
}

// Outputs of roundSig: the rounded significand (rounding bits cleared), whether it was inexact,
// whether it was incremented, and whether the increment carried out of bit 63 (rHi is then 2^63).
export let rHi: u64 = 0;
export let rInexact: bool = false;
export let rInc: bool = false;
export let rCarry: bool = false;

/** Rounds hi:lo at the position selected by `mask` (the low bits of hi that do not belong to the
 *  significand; 0 for 64-bit precision, where lo holds the rounding bits). */
export function roundSig(sign: u32, hi: u64, lo: u64, mask: u64, rc: u32): void {
  let lsb: bool, rbit: bool, sticky: bool;
  if (mask == 0) {
    lsb = (hi & 1) != 0;
    rbit = (lo >> 63) != 0;
    sticky = (lo << 1) != 0;
  } else {
    const half = (mask >> 1) + 1;
    lsb = (hi & (mask + 1)) != 0;
    rbit = (hi & half) != 0;
    sticky = ((hi & (half - 1)) | lo) != 0;
  }
  rInexact = rbit || sticky;
  rInc = roundInc(rc, sign, lsb, rbit, sticky);
  let r = hi & ~mask;
  rCarry = false;
  if (rInc) {
    r += mask + 1;
    if (r == 0) { r = INT_BIT; rCarry = true; }
  }
  rHi = r;
}

/** The largest finite magnitude at a precision, and infinity, for masked overflow (SDM Vol. 1,
 *  Table 4-10): nearest → ∞; toward zero → max; down → +max/−∞; up → +∞/−max. */
function overflowMasked(dst: usize, sign: u32, mask: u64, rc: u32): u32 {
  const toInf = rc == RC_NEAREST || (rc == RC_UP && sign == 0) || (rc == RC_DOWN && sign != 0);
  if (toInf) {
    store80(dst, sign | 0x7fff, INT_BIT);
    return FE_OE | FE_PE | SW_C1;
  }
  store80(dst, sign | 0x7ffe, ~mask);
  return FE_OE | FE_PE;
}

/**
 * Rounds sign × hi:lo × 2^(exp − 16383 − 63) to `prec` significand bits per the control word and
 * stores it at dst. hi must have bit 63 set (exp is then the biased exponent of the leading bit;
 * it may lie anywhere in i32 range); lo holds further bits (any non-zero bit counts as sticky).
 * `sign` is 0 or 0x8000. Returns PE/UE/OE and C1 as raised.
 */
export function roundPack(dst: usize, sign: u32, exp: i32, hi: u64, lo: u64, prec: i32, cw: u32): u32 {
  const rc = rcOf(cw);
  if (prec == 64 && exp > 0 && exp < 0x7ffe) {
    // Fast path: 64-bit precision, no overflow or underflow possible.
    if (lo == 0) { store80(dst, sign | <u32>exp, hi); return 0; }
    let inc: bool;
    if (rc == RC_NEAREST) inc = lo > INT_BIT || (lo == INT_BIT && (hi & 1) != 0);
    else inc = rc != RC_ZERO && ((rc == RC_DOWN) == (sign != 0));
    if (inc) {
      hi++;
      if (hi == 0) { hi = INT_BIT; exp++; }
    }
    store80(dst, sign | <u32>exp, hi);
    return inc ? FE_PE | SW_C1 : FE_PE;
  }
  const mask: u64 = prec >= 64 ? 0 : ((<u64>1 << <u64>(64 - prec)) - 1);
  if (exp <= 0 && (cw & FE_UE) == 0 && exp + EXP_WRAP <= 0) {
    // Unmasked underflow too deep even for the wrapped exponent: the x87 delivers a signed zero.
    store80(dst, sign, 0);
    return FE_UE | FE_PE;
  }
  if (exp <= 0 && (cw & FE_UE) != 0) {
    // Masked underflow (or unmasked but beyond the wrapped range): gradual underflow.
    // Tiny after rounding unless the normal-position rounding reaches 2^-16382.
    let tiny = true;
    if (exp == 0) {
      roundSig(sign, hi, lo, mask, rc);
      if (rCarry) tiny = false;
    }
    shr128jam(hi, lo, 1 - exp);
    roundSig(sign, wHi, wLo, mask, rc);
    const e: u32 = (rHi & INT_BIT) != 0 ? 1 : 0;
    store80(dst, sign | e, rHi);
    if (!rInexact) return 0;
    return FE_PE | (tiny ? FE_UE : 0) | (rInc ? SW_C1 : 0);
  }
  roundSig(sign, hi, lo, mask, rc);
  let flags: u32 = (rInexact ? FE_PE : 0) | (rInc ? SW_C1 : 0);
  if (rCarry) exp++;
  if (exp >= 0x7fff) {
    if ((cw & FE_OE) != 0) return overflowMasked(dst, sign, mask, rc);
    if (exp - EXP_WRAP >= 0x7fff) {
      // Unmasked overflow beyond the wrapped range: the x87 delivers a signed infinity.
      store80(dst, sign | 0x7fff, INT_BIT);
      return FE_OE | FE_PE | SW_C1;
    }
    exp -= EXP_WRAP;
    flags |= FE_OE;
  } else if (exp <= 0) {
    // Unmasked underflow (tiny after rounding): deliver the wrapped normalized result.
    exp += EXP_WRAP;
    flags |= FE_UE;
  }
  store80(dst, sign | <u32>exp, rHi);
  return flags;
}

/** Stores a finite value unchanged except that a pseudo-denormal gets exponent field 1 (the
 *  x87 passes operands through this way, e.g. FSCALE by ±0, FPREM by ±∞). */
export function storeCanonical(dst: usize, se: u32, sig: u64): void {
  if ((se & 0x7fff) == 0 && (sig & INT_BIT) != 0) se |= 1;
  store80(dst, se, sig);
}

/** Rounds a finite non-zero operand (any encoding of class NORMAL or DENORMAL) to prec. */
export function roundOperand(dst: usize, se: u32, sig: u64, prec: i32, cw: u32): u32 {
  unpack(se, sig);
  return roundPack(dst, se & 0x8000, uExp, uSig, 0, prec, cw);
}

// ---- invalid operands and NaNs ----------------------------------------------------------------

/** Invalid operation: masked → the real indefinite; unmasked → destination untouched. */
export function invalid(dst: usize, cw: u32): u32 {
  if ((cw & FE_IE) != 0) store80(dst, INDEFINITE_SE, INDEFINITE_SIG);
  return FE_IE;
}

/** One NaN operand: SNaN → IE and quieted (unmasked IE: not written); QNaN → itself. */
export function propagateNaN1(dst: usize, se: u32, sig: u64, c: i32, cw: u32): u32 {
  const flags: u32 = c == C_SNAN ? FE_IE : 0;
  if (flags != 0 && (cw & FE_IE) == 0) return flags;
  store80(dst, se, sig | QUIET_BIT);
  return flags;
}

/**
 * NaN result of a two-operand operation when at least one operand is a NaN (SDM Vol. 1, Table
 * 4-7, x87 column): SNaN and QNaN → the QNaN; two SNaNs or two QNaNs → the larger significand
 * (equal: the positive one); a NaN and a number → the NaN; SNaN results are quieted and raise IE.
 */
export function propagateNaN2(dst: usize, aSE: u32, aSig: u64, ca: i32, bSE: u32, bSig: u64, cb: i32, cw: u32): u32 {
  const flags: u32 = ca == C_SNAN || cb == C_SNAN ? FE_IE : 0;
  if (flags != 0 && (cw & FE_IE) == 0) return flags;
  let pickA: bool;
  if (!isNaNClass(cb)) pickA = true;
  else if (!isNaNClass(ca)) pickA = false;
  else if (ca != cb) pickA = ca == C_QNAN;
  else if (aSig != bSig) pickA = aSig > bSig;
  else pickA = (aSE & 0x8000) == 0;
  if (pickA) store80(dst, aSE, aSig | QUIET_BIT);
  else store80(dst, bSE, bSig | QUIET_BIT);
  return flags;
}

/**
 * Common first checks of a two-operand arithmetic operation: an unsupported encoding → IE (even
 * against a NaN); then NaN propagation. Returns the flags when handled, or -1 to continue.
 */
export function checkNaN2(dst: usize, aSE: u32, aSig: u64, ca: i32, bSE: u32, bSig: u64, cb: i32, cw: u32): i32 {
  if (ca == C_UNSUPPORTED || cb == C_UNSUPPORTED) return <i32>invalid(dst, cw);
  if (isNaNClass(ca) || isNaNClass(cb)) return <i32>propagateNaN2(dst, aSE, aSig, ca, bSE, bSig, cb, cw);
  return -1;
}

/** Stores a signed infinity. */
@inline export function storeInf(dst: usize, sign: u32): void { store80(dst, sign | 0x7fff, INT_BIT); }
/** Stores a signed zero. */
@inline export function storeZero(dst: usize, sign: u32): void { store80(dst, sign, 0); }
