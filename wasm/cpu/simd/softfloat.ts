// IEEE 754 binary32/binary64 arithmetic with x86 SSE semantics, in integer arithmetic so that every
// rounding mode, every exception flag and every NaN payload is exact. WebAssembly's own float ops
// round to nearest only and may return any NaN, so here they only give estimates that integer
// arithmetic then corrects; the common round-to-nearest cases are first offered to fastpath.ts,
// which uses them where their result is provably exact.
//
// Values travel as raw bit patterns in a u64 (a binary32 in the low 32 bits); `dbl` selects the
// format. References: IEEE 754-2008 clause 7 and the SDM Vol. 1 (behaviour confirmed against this
// machine's CPU by test/simd-ops.test.ts):
//  * 4.8.3.5 / Table 4-7: NaN results (first source's NaN wins, SNaN quieted; invalid without a NaN
//    operand gives the QNaN floating-point indefinite, sign 1, quiet bit, zero payload).
//  * 4.9.2 priority: a NaN operand, then other invalid operations and divide-by-zero, then DE:
//    QNaN + denormal, x/0 with a denormal x, sqrt of a negative denormal report no DE.
//  * 4.9.1.5 (underflow): x86 detects tininess AFTER rounding (as if the exponent range were
//    unbounded); with underflow masked, UE is raised only when the result is also inexact.
//  * 10.2.3.3/10.2.3.4: FTZ (masked underflow: a tiny result, exact or not, becomes a zero of the
//    same sign with UE and PE) and DAZ (denormal inputs become zeros of the same sign, no DE).
//  * 4.9.1.4 (overflow, masked): by rounding mode, infinity or the largest finite number.
//  * 11.5.2.2 (unmasked OE/UE, #XM): OE or UE, plus PE only if rounding the significand to the
//    format's precision (exponent unbounded) was inexact.
import {
  MXCSR_IE, MXCSR_DE, MXCSR_ZE, MXCSR_OE, MXCSR_UE, MXCSR_PE, MXCSR_FTZ,
  RC_NEAREST, RC_DOWN, RC_UP, RC_ZERO, raisePre, raisePost, curMxcsr, dazOn, masked, rcOf,
} from './mxcsr';
import {
  fastHit, fastInexact, fastAdd, fastMul, fastDiv, fastSqrt, fastNarrow, fastToInt, normalOrZero,
} from './fastpath';

// --- format parameters ----------------------------------------------------------------------

// @ts-ignore: decorator
@inline export function fracBits(dbl: bool): i32 { return dbl ? 52 : 23; }
// @ts-ignore: decorator
@inline function expMax(dbl: bool): i32 { return dbl ? 0x7ff : 0xff; }
// @ts-ignore: decorator
@inline function bias(dbl: bool): i32 { return dbl ? 1023 : 127; }
// @ts-ignore: decorator
@inline export function signBit(dbl: bool): u64 { return dbl ? 0x8000000000000000 : 0x80000000; }
// @ts-ignore: decorator
@inline function fracMask(dbl: bool): u64 { return dbl ? 0x000fffffffffffff : 0x007fffff; }
// @ts-ignore: decorator
@inline function quietBit(dbl: bool): u64 { return dbl ? 0x0008000000000000 : 0x00400000; }
// @ts-ignore: decorator
@inline function infBits(dbl: bool): u64 { return dbl ? 0x7ff0000000000000 : 0x7f800000; }
/** QNaN floating-point indefinite (SDM Vol. 1, Table 4-3). */
// @ts-ignore: decorator
@inline export function defaultNaN(dbl: bool): u64 { return dbl ? 0xfff8000000000000 : 0xffc00000; }

// @ts-ignore: decorator
@inline export function biasedExp(x: u64, dbl: bool): i32 {
  return <i32>(x >> <u64>fracBits(dbl)) & expMax(dbl);
}
// @ts-ignore: decorator
@inline export function isNaN(x: u64, dbl: bool): bool {
  return biasedExp(x, dbl) == expMax(dbl) && (x & fracMask(dbl)) != 0;
}
// @ts-ignore: decorator
@inline export function isSNaN(x: u64, dbl: bool): bool {
  return isNaN(x, dbl) && (x & quietBit(dbl)) == 0;
}
// @ts-ignore: decorator
@inline export function isInf(x: u64, dbl: bool): bool {
  return (x & ~signBit(dbl)) == infBits(dbl);
}
/** Zero or denormal (exponent field 0). */
// @ts-ignore: decorator
@inline export function isZeroOrDenormal(x: u64, dbl: bool): bool { return biasedExp(x, dbl) == 0; }
// @ts-ignore: decorator
@inline export function isZero(x: u64, dbl: bool): bool { return (x & ~signBit(dbl)) == 0; }
// @ts-ignore: decorator
@inline export function isDenormal(x: u64, dbl: bool): bool {
  return biasedExp(x, dbl) == 0 && (x & fracMask(dbl)) != 0;
}
// @ts-ignore: decorator
@inline export function signOf(x: u64, dbl: bool): u64 { return x & signBit(dbl); }
// @ts-ignore: decorator
@inline export function quiet(x: u64, dbl: bool): u64 { return x | quietBit(dbl); }
// @ts-ignore: decorator
@inline function negSign(neg: bool, dbl: bool): u64 { return neg ? signBit(dbl) : 0; }

/** NaN result of a two-operand operation where at least one operand is a NaN (Table 4-7): the
 *  first source operand's NaN if it is one, else the second's, quieted; IE when either is an SNaN. */
export function propagateNaN2(a: u64, b: u64, dbl: bool): u64 {
  if (isSNaN(a, dbl) || isSNaN(b, dbl)) raisePre(MXCSR_IE);
  return quiet(isNaN(a, dbl) ? a : b, dbl);
}

/** NaN result of a one-operand operation (`a` is a NaN). */
export function propagateNaN1(a: u64, dbl: bool): u64 {
  if (isSNaN(a, dbl)) raisePre(MXCSR_IE);
  return quiet(a, dbl);
}

/** A non-NaN input as the arithmetic sees it: a denormal becomes a signed zero under DAZ, and
 *  otherwise raises DE (a pre-computation exception). */
export function conditionInput(x: u64, dbl: bool): u64 {
  if (isDenormal(x, dbl)) {
    if (dazOn()) return signOf(x, dbl);
    raisePre(MXCSR_DE);
  }
  return x;
}

/** DE for a denormal operand (what is left of denormals after DAZ, so only when DAZ = 0). Checked
 *  after the invalid-operation and divide-by-zero conditions, which take priority and suppress it
 *  (SDM Vol. 1, 4.9.2: a NaN operand, other invalid operations and #Z rank above #D). */
export function checkDenormal(a: u64, b: u64, dbl: bool): void {
  if (isDenormal(a, dbl) || isDenormal(b, dbl)) raisePre(MXCSR_DE);
}

/** DAZ alone (DE is reported separately, see checkDenormal). */
// @ts-ignore: decorator
@inline export function dazInput(x: u64, dbl: bool): u64 {
  return dazOn() && isDenormal(x, dbl) ? signOf(x, dbl) : x;
}

// --- unpacking -------------------------------------------------------------------------------
// A finite nonzero value is unpacked to sig * 2^(exp - 62) with bit 62 of sig set.

let uSig: u64 = 0;
let uExp: i32 = 0;

function unpack(x: u64, dbl: bool): void {
  const fb = fracBits(dbl);
  const e = biasedExp(x, dbl);
  let f = x & fracMask(dbl);
  if (e != 0) {
    uSig = (f | (<u64>1 << <u64>fb)) << <u64>(62 - fb);
    uExp = e - bias(dbl);
  } else {
    const s = <i32>clz(f) - 1;
    uSig = f << <u64>s;
    uExp = 1 - bias(dbl) - (s - (62 - fb));
  }
}

/** sig >> n, keeping a 1 in bit 0 if any 1 was shifted out (n >= 0). */
// @ts-ignore: decorator
@inline export function shiftRightJam(sig: u64, n: i32): u64 {
  if (n == 0) return sig;
  if (n >= 64) return sig != 0 ? 1 : 0;
  return (sig >> <u64>n) | ((sig & ((<u64>1 << <u64>n) - 1)) != 0 ? 1 : 0);
}

/** Whether the last roundShift dropped nonzero bits. */
export let roundInexact: bool = false;

/** sig / 2^n rounded to an integer in rounding mode `rc` for a value of sign `neg` (n >= 1). */
export function roundShift(sig: u64, n: i32, neg: bool, rc: i32): u64 {
  let q: u64, rest: u64, half: u64;
  if (n >= 64) {
    q = 0; rest = sig; half = 0x8000000000000000; // sig < 2^63 always: never above half
    if (rest >= half) rest = half - 1;
  } else {
    q = sig >> <u64>n;
    rest = sig & ((<u64>1 << <u64>n) - 1);
    half = <u64>1 << <u64>(n - 1);
  }
  roundInexact = rest != 0;
  if (rest != 0) {
    switch (rc) {
      case RC_NEAREST: if (rest > half || (rest == half && (q & 1) != 0)) q++; break;
      case RC_DOWN: if (neg) q++; break;
      case RC_UP: if (!neg) q++; break;
      default: break; // RC_ZERO
    }
  }
  return q;
}

/** Round sig * 2^(exp - 62) (sig != 0, any bit pattern) to the format, with sign `neg`, under the
 *  current MXCSR: overflow, tininess after rounding, FTZ, and the OE/UE/PE flags. */
export function roundPack(neg: bool, exp: i32, sig: u64, dbl: bool): u64 {
  // Normalize so that bit 62 is the leading one.
  const lz = <i32>clz(sig);
  if (lz == 0) { sig = (sig >> 1) | (sig & 1); exp += 1; }
  else { sig <<= <u64>(lz - 1); exp -= lz - 1; }
  const fb = fracBits(dbl);
  const drop = 62 - fb; // bits below the format's precision
  const rc = rcOf(curMxcsr);
  const sign = negSign(neg, dbl);
  let e = exp + bias(dbl); // biased exponent of the leading bit
  // Round to the full precision as if the exponent range were unbounded.
  let q = roundShift(sig, drop, neg, rc);
  const inexactFull = roundInexact;
  if ((q >> <u64>(fb + 1)) != 0) { q >>= 1; e++; }
  if (e >= 1) {
    if (e >= expMax(dbl)) return overflow(neg, dbl, rc, inexactFull);
    if (inexactFull) raisePost(MXCSR_PE);
    return sign | ((<u64>(e - 1) << <u64>fb) + q);
  }
  // Tiny (after rounding). With underflow unmasked the instruction faults with UE, plus PE if that
  // unbounded-exponent rounding was inexact (as the bias-adjusted result of x87 would be).
  if (!masked(MXCSR_UE)) { raisePost(inexactFull ? MXCSR_UE | MXCSR_PE : MXCSR_UE); return sign; }
  if ((curMxcsr & MXCSR_FTZ) != 0) { raisePost(MXCSR_UE | MXCSR_PE); return sign; }
  // Denormal result: round again at the coarser position (not from q: no double rounding).
  const qd = roundShift(sig, drop + 1 - (exp + bias(dbl)), neg, rc);
  if (roundInexact) raisePost(MXCSR_UE | MXCSR_PE);
  return sign | qd; // qd == 2^fb is the smallest normal's encoding
}

/** Overflow result (SDM Vol. 1, Table 4-10): infinity, or the largest finite value when the
 *  rounding goes toward zero for this sign. */
function overflow(neg: bool, dbl: bool, rc: i32, inexact: bool): u64 {
  // Masked: always OE and PE. Unmasked (#XM): OE, plus PE only if the significand was rounded.
  raisePost(masked(MXCSR_OE) ? MXCSR_OE | MXCSR_PE : inexact ? MXCSR_OE | MXCSR_PE : MXCSR_OE);
  const toInf = rc == RC_NEAREST || (rc == RC_DOWN && neg) || (rc == RC_UP && !neg);
  const mag = toInf ? infBits(dbl) : infBits(dbl) - 1;
  return negSign(neg, dbl) | mag;
}

// --- arithmetic ------------------------------------------------------------------------------

/** a + b (or a - b when `sub`). */
export function fadd(a: u64, b: u64, dbl: bool, sub: bool): u64 {
  const f = fastAdd(a, b, dbl, sub);
  if (fastHit) return f;
  if (isNaN(a, dbl) || isNaN(b, dbl)) return propagateNaN2(a, b, dbl);
  a = dazInput(a, dbl);
  b = dazInput(b, dbl);
  if (sub) b ^= signBit(dbl);
  const aInf = isInf(a, dbl), bInf = isInf(b, dbl);
  if (aInf && bInf && signOf(a, dbl) != signOf(b, dbl)) { raisePre(MXCSR_IE); return defaultNaN(dbl); }
  checkDenormal(a, b, dbl);
  if (aInf || bInf) return aInf ? a : b;
  const aZero = isZero(a, dbl), bZero = isZero(b, dbl);
  if (aZero && bZero) {
    // Exact zero sum: the common sign, else +0 (-0 when rounding down). IEEE 754 6.3.
    if (signOf(a, dbl) == signOf(b, dbl)) return a;
    return rcOf(curMxcsr) == RC_DOWN ? signBit(dbl) : 0;
  }
  if (aZero) return repack(b, dbl);
  if (bZero) return repack(a, dbl);
  let aNeg = signOf(a, dbl) != 0, bNeg = signOf(b, dbl) != 0;
  unpack(a, dbl);
  let sa = uSig >> 1, ea = uExp; // leading bit at 61: room for the carry
  unpack(b, dbl);
  let sb = uSig >> 1, eb = uExp;
  if (ea < eb || (ea == eb && sa < sb)) {
    let t = sa; sa = sb; sb = t;
    const te = ea; ea = eb; eb = te;
    const tn = aNeg; aNeg = bNeg; bNeg = tn;
  }
  sb = shiftRightJam(sb, ea - eb);
  let r: u64;
  if (aNeg == bNeg) r = sa + sb;
  else {
    r = sa - sb;
    if (r == 0) return rcOf(curMxcsr) == RC_DOWN ? signBit(dbl) : 0;
  }
  return roundPack(aNeg, ea + 1, r, dbl);
}

/** A finite nonzero value through roundPack: exact, but a denormal result is subject to FTZ/UE. */
function repack(x: u64, dbl: bool): u64 {
  unpack(x, dbl);
  return roundPack(signOf(x, dbl) != 0, uExp, uSig, dbl);
}

/** High 64 bits of the unsigned 128-bit product a*b. */
// @ts-ignore: decorator
@inline export function mulHigh64(a: u64, b: u64): u64 {
  const a0 = a & 0xffffffff, a1 = a >> 32, b0 = b & 0xffffffff, b1 = b >> 32;
  const p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
  const mid = (p00 >> 32) + (p01 & 0xffffffff) + (p10 & 0xffffffff);
  return p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
}

/** a * b. */
export function fmul(a: u64, b: u64, dbl: bool): u64 {
  const f = fastMul(a, b, dbl);
  if (fastHit) return f;
  if (isNaN(a, dbl) || isNaN(b, dbl)) return propagateNaN2(a, b, dbl);
  a = dazInput(a, dbl);
  b = dazInput(b, dbl);
  const neg = (signOf(a, dbl) ^ signOf(b, dbl)) != 0;
  const aInf = isInf(a, dbl), bInf = isInf(b, dbl);
  const aZero = isZero(a, dbl), bZero = isZero(b, dbl);
  if ((aInf && bZero) || (bInf && aZero)) { raisePre(MXCSR_IE); return defaultNaN(dbl); }
  checkDenormal(a, b, dbl);
  if (aInf || bInf) return negSign(neg, dbl) | infBits(dbl);
  if (aZero || bZero) return negSign(neg, dbl);
  unpack(a, dbl);
  const sa = uSig, ea = uExp;
  unpack(b, dbl);
  const sb = uSig, eb = uExp;
  // sa, sb in [2^62, 2^63): the 126-bit product's top 64 bits, sticky from the low 64.
  const hi = mulHigh64(sa, sb);
  const lo = sa * sb;
  return roundPack(neg, ea + eb + 2, hi | (lo != 0 ? 1 : 0), dbl);
}

/** a / b. */
export function fdiv(a: u64, b: u64, dbl: bool): u64 {
  const f = fastDiv(a, b, dbl);
  if (fastHit) return f;
  if (isNaN(a, dbl) || isNaN(b, dbl)) return propagateNaN2(a, b, dbl);
  a = dazInput(a, dbl);
  b = dazInput(b, dbl);
  const neg = (signOf(a, dbl) ^ signOf(b, dbl)) != 0;
  const aInf = isInf(a, dbl), bInf = isInf(b, dbl);
  const aZero = isZero(a, dbl), bZero = isZero(b, dbl);
  if ((aInf && bInf) || (aZero && bZero)) { raisePre(MXCSR_IE); return defaultNaN(dbl); }
  if (bZero && !aInf) { raisePre(MXCSR_ZE); return negSign(neg, dbl) | infBits(dbl); }
  checkDenormal(a, b, dbl);
  if (aInf) return negSign(neg, dbl) | infBits(dbl);
  if (bInf || aZero) return negSign(neg, dbl);
  unpack(a, dbl);
  const ma = uSig >> 10, ea = uExp; // 53-bit integers, bit 52 set
  unpack(b, dbl);
  const mb = uSig >> 10, eb = uExp;
  // Q = floor(ma * 2^56 / mb), in [2^55, 2^57). A binary64 quotient is within 2^-53 relative, so
  // the estimate is off by a few units and the true remainder is small enough to be computed
  // modulo 2^64; one signed division then corrects it exactly.
  let q = <u64>((<f64>ma / <f64>mb) * 72057594037927936.0); // * 2^56
  let r = <i64>((ma << 56) - q * mb);
  const t = r / <i64>mb;
  q += <u64>t;
  r -= t * <i64>mb;
  if (r < 0) { q--; r += <i64>mb; }
  return roundPack(neg, ea - eb + 6, q | (r != 0 ? 1 : 0), dbl);
}

/** sqrt(a). */
export function fsqrt(a: u64, dbl: bool): u64 {
  const f = fastSqrt(a, dbl);
  if (fastHit) return f;
  if (isNaN(a, dbl)) return propagateNaN1(a, dbl);
  a = dazInput(a, dbl);
  if (isZero(a, dbl)) return a; // sqrt(-0) = -0
  if (signOf(a, dbl) != 0) { raisePre(MXCSR_IE); return defaultNaN(dbl); }
  checkDenormal(a, 0, dbl);
  if (isInf(a, dbl)) return a;
  unpack(a, dbl);
  let m = uSig >> 10; // value = m * 2^k, m a 53-bit integer
  let k = uExp - 52;
  if ((k & 1) != 0) { m <<= 1; k -= 1; }
  // S = floor(sqrt(m * 2^58)) in [2^55, 2^56); estimate from binary64 sqrt, then correct with the
  // exact remainder m*2^58 - S^2 (small, so computed modulo 2^64).
  let s = <u64>(Math.sqrt(<f64>m) * 536870912.0); // * 2^29
  let r = <i64>((m << 58) - s * s);
  while (r < 0) { s--; r += <i64>(2 * s + 1); }
  while (r > <i64>(2 * s)) { r -= <i64>(2 * s + 1); s++; }
  return roundPack(false, ((k - 58) >> 1) + 62, s | (r != 0 ? 1 : 0), dbl);
}

// --- comparison ------------------------------------------------------------------------------

export const REL_LT: i32 = 0;
export const REL_EQ: i32 = 1;
export const REL_GT: i32 = 2;
export const REL_UN: i32 = 3;

/** Ordering of two conditioned (DAZ already applied), non-NaN values. */
export function compareOrdered(a: u64, b: u64, dbl: bool): i32 {
  if (isZero(a, dbl) && isZero(b, dbl)) return REL_EQ;
  const sa = signOf(a, dbl) != 0, sb = signOf(b, dbl) != 0;
  if (sa != sb) return sa ? REL_LT : REL_GT;
  if (a == b) return REL_EQ;
  // Same sign: magnitude order is bit-pattern order, reversed for negatives.
  return (a < b) != sa ? REL_LT : REL_GT;
}

// --- conversions -----------------------------------------------------------------------------

/** Integer (as a signed 64-bit value) to float, rounded per MXCSR.RC; PE when inexact. */
export function intToFloat(v: i64, dbl: bool): u64 {
  if (v == 0) return 0;
  const neg = v < 0;
  const mag: u64 = neg ? <u64>(0 - v) : <u64>v;
  // Fast: exact when the significant bits fit the precision; else wasm's conversion rounds to
  // nearest even, right for RC = nearest.
  const sigBits = 64 - <i32>clz(mag) - <i32>ctz(mag);
  const exact = sigBits <= (dbl ? 53 : 24);
  if (exact || rcOf(curMxcsr) == RC_NEAREST) {
    if (!exact) raisePost(MXCSR_PE);
    return dbl ? reinterpret<u64>(<f64>v) : <u64>reinterpret<u32>(<f32>v);
  }
  return roundPack(neg, 62, mag, dbl);
}

/** Result of a float-to-integer conversion that is out of range or NaN: integer indefinite. */
// @ts-ignore: decorator
@inline export function intIndefinite(is64: bool): i64 { return is64 ? <i64>0x8000000000000000 : <i64>0x80000000; }

/** Float to a 32- or 64-bit signed integer, rounded per MXCSR.RC or truncated. Out of range or NaN:
 *  integer indefinite and IE (no PE); otherwise PE when inexact. DE is never reported; DAZ applies. */
export function floatToInt(x: u64, dbl: bool, is64: bool, truncate: bool): i64 {
  if (isNaN(x, dbl) || isInf(x, dbl)) { raisePre(MXCSR_IE); return intIndefinite(is64); }
  x = dazInput(x, dbl);
  const fr = fastToInt(x, dbl, truncate);
  if (fastHit) {
    if (!is64 && (fr < -2147483648 || fr > 2147483647)) { raisePre(MXCSR_IE); return intIndefinite(false); }
    if (fastInexact) raisePost(MXCSR_PE);
    return fr;
  }
  if (isZero(x, dbl)) return 0;
  const neg = signOf(x, dbl) != 0;
  unpack(x, dbl);
  if (uExp >= 63) {
    // Only -2^63 fits, and only in a 64-bit destination.
    if (is64 && neg && uExp == 63 && uSig == 0x4000000000000000) return <i64>0x8000000000000000;
    raisePre(MXCSR_IE);
    return intIndefinite(is64);
  }
  const rc = truncate ? RC_ZERO : rcOf(curMxcsr);
  let q = uSig;
  let inexact = false;
  if (uExp < 62) { q = roundShift(uSig, 62 - uExp, neg, rc); inexact = roundInexact; }
  const limit: u64 = is64 ? 0x8000000000000000 : 0x80000000; // |min|; max is limit - 1
  if (q > limit || (q == limit && !neg)) { raisePre(MXCSR_IE); return intIndefinite(is64); }
  if (inexact) raisePost(MXCSR_PE);
  return neg ? <i64>(0 - q) : <i64>q;
}

/** binary32 -> binary64: exact; SNaN quieted with IE; DE/DAZ on denormals. */
export function f32ToF64(x: u64): u64 {
  if (isNaN(x, false)) {
    if (isSNaN(x, false)) raisePre(MXCSR_IE);
    return ((x & 0x80000000) << 32) | 0x7ff8000000000000 | ((x & 0x3fffff) << 29);
  }
  if (normalOrZero(x, false)) return reinterpret<u64>(<f64>reinterpret<f32>(<u32>x)); // exact
  x = conditionInput(x, false);
  const neg = (x & 0x80000000) != 0;
  if (isZero(x, false)) return negSign(neg, true);
  if (isInf(x, false)) return negSign(neg, true) | infBits(true);
  unpack(x, false);
  return roundPack(neg, uExp, uSig, true);
}

/** binary64 -> binary32, rounded per MXCSR; NaN payload keeps its top 22 fraction bits. */
export function f64ToF32(x: u64): u64 {
  if (isNaN(x, true)) {
    if (isSNaN(x, true)) raisePre(MXCSR_IE);
    return ((x >> 32) & 0x80000000) | 0x7fc00000 | ((x >> 29) & 0x3fffff);
  }
  const f = fastNarrow(x);
  if (fastHit) return f;
  x = conditionInput(x, true);
  const neg = (x >> 63) != 0;
  if (isZero(x, true)) return negSign(neg, false);
  if (isInf(x, true)) return negSign(neg, false) | infBits(false);
  unpack(x, true);
  return roundPack(neg, uExp, uSig, false);
}
