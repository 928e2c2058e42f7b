// Fast paths for the common case, using WebAssembly's own float instructions where their result is
// provably the x86 result: round-to-nearest-even (MXCSR.RC = 0, the IEEE default that wasm
// implements), normal or zero operands, and a normal (or exactly zero) result. Everything else —
// NaNs, infinities, denormals (DAZ/DE), tiny results (UE/FTZ), overflow, other rounding modes —
// goes to the integer implementation in softfloat.ts. The only flag a fast path can raise is PE,
// and it is computed exactly:
//  * binary64 add: the TwoSum error term (exact in binary64 when nothing overflows).
//  * binary64 mul/div/sqrt: integer arithmetic on the odd parts of the significands.
//  * binary32 ops are computed in binary64 and narrowed once. A binary32 product is exact in
//    binary64; for +, /, sqrt the double rounding is innocuous because 53 >= 2*24 + 2 (Figueroa,
//    "When is double rounding innocuous?", 1995), and exactness is checked in binary64.
// `fastHit` tells the caller whether the fast path produced the result.
import { MXCSR_PE, raisePost, curMxcsr } from './mxcsr';

export let fastHit: bool = false;

const F64_MIN_NORMAL: f64 = 2.2250738585072014e-308;
const F64_MAX: f64 = 1.7976931348623157e308;
const F32_MIN_NORMAL: f64 = 1.1754943508222875e-38;
const F32_MAX: f64 = 3.4028234663852886e38;

/** RC = nearest: the only mode wasm float arithmetic implements. */
// @ts-ignore: decorator
@inline function nearestMode(): bool { return (curMxcsr & 0x6000) == 0; }

/** Normal or zero (not denormal, infinity or NaN). */
// @ts-ignore: decorator
@inline export function normalOrZero(x: u64, dbl: bool): bool {
  if (dbl) {
    const e = <u32>(x >> 52) & 0x7ff;
    return e != 0x7ff && (e != 0 || (x << 1) == 0);
  }
  const e = <u32>(x >> 23) & 0xff;
  return e != 0xff && (e != 0 || (<u32>x << 1) == 0);
}

// @ts-ignore: decorator
@inline function asF64(x: u64, dbl: bool): f64 {
  return dbl ? reinterpret<f64>(x) : <f64>reinterpret<f32>(<u32>x);
}

/** Bits of a binary64 value narrowed to the format (for binary32, one RNE rounding). */
// @ts-ignore: decorator
@inline function fromF64(s: f64, dbl: bool): u64 {
  return dbl ? reinterpret<u64>(s) : <u64>reinterpret<u32>(<f32>s);
}

/** |r| is a normal of the format that cannot come from a tiny exact value (strictly above the
 *  smallest normal) and is finite. */
// @ts-ignore: decorator
@inline function safeMagnitude(r: f64, dbl: bool): bool {
  const m = abs<f64>(r);
  return dbl ? m > F64_MIN_NORMAL && m <= F64_MAX : m > F32_MIN_NORMAL && m <= F32_MAX;
}

/** The odd part of a normal binary64's significand. */
// @ts-ignore: decorator
@inline function oddSig(x: u64): u64 {
  const m = (x & 0x000fffffffffffff) | 0x0010000000000000;
  return m >> ctz(m);
}

/** Whether the product of two odd significands (< 2^53 each) is exactly `target`, an odd
 *  significand < 2^53; sizes are compared first so the 64-bit product never overflows. */
// @ts-ignore: decorator
@inline function oddProductIs(x: u64, y: u64, target: u64): bool {
  const bits = <i32>(128 - clz(x) - clz(y)); // the product has bits-1 or bits bits
  if (bits - 1 > 53) return false;
  return x * y == target;
}

/** Odd product fits in 53 bits (the binary64 product of normals is exact when it is normal). */
// @ts-ignore: decorator
@inline function oddProductFits(x: u64, y: u64): bool {
  const bits = <i32>(128 - clz(x) - clz(y));
  if (bits <= 53) return true;
  if (bits - 1 > 53) return false;
  return x * y < 0x20000000000000;
}

export function fastAdd(a: u64, b: u64, dbl: bool, sub: bool): u64 {
  fastHit = false;
  if (!nearestMode() || !normalOrZero(a, dbl) || !normalOrZero(b, dbl)) return 0;
  const x = asF64(a, dbl);
  const y = sub ? -asF64(b, dbl) : asF64(b, dbl);
  const s = x + y;
  if (s == 0) { fastHit = true; return fromF64(s, dbl); } // exact: +0, or -0 for -0 + -0
  const r = fromF64(s, dbl);
  const rf = asF64(r, dbl);
  if (!safeMagnitude(rf, dbl)) return 0;
  const bb = s - x;
  const err = (x - (s - bb)) + (y - bb); // TwoSum: x + y = s + err exactly
  if (err != 0 || rf != s) raisePost(MXCSR_PE);
  fastHit = true;
  return r;
}

export function fastMul(a: u64, b: u64, dbl: bool): u64 {
  fastHit = false;
  if (!nearestMode() || !normalOrZero(a, dbl) || !normalOrZero(b, dbl)) return 0;
  const x = asF64(a, dbl), y = asF64(b, dbl);
  const s = x * y;
  if (x == 0 || y == 0) { fastHit = true; return fromF64(s, dbl); }
  const r = fromF64(s, dbl);
  const rf = asF64(r, dbl);
  if (!safeMagnitude(rf, dbl)) return 0;
  const exact = dbl ? oddProductFits(oddSig(a), oddSig(b)) : rf == s;
  if (!exact) raisePost(MXCSR_PE);
  fastHit = true;
  return r;
}

export function fastDiv(a: u64, b: u64, dbl: bool): u64 {
  fastHit = false;
  if (!nearestMode() || !normalOrZero(a, dbl) || !normalOrZero(b, dbl)) return 0;
  const x = asF64(a, dbl), y = asF64(b, dbl);
  if (y == 0) return 0;
  const q = x / y;
  if (x == 0) { fastHit = true; return fromF64(q, dbl); }
  const r = fromF64(q, dbl);
  const rf = asF64(r, dbl);
  if (!safeMagnitude(rf, dbl)) return 0;
  const exact = dbl ? oddProductIs(oddSig(r), oddSig(b), oddSig(a)) : rf * y == x;
  if (!exact) raisePost(MXCSR_PE);
  fastHit = true;
  return r;
}

export function fastSqrt(a: u64, dbl: bool): u64 {
  fastHit = false;
  if (!nearestMode() || !normalOrZero(a, dbl)) return 0;
  const x = asF64(a, dbl);
  if (x < 0) return 0;
  const s = Math.sqrt(x); // sqrt(+-0) = +-0
  const r = fromF64(s, dbl);
  if (x != 0) {
    const rf = asF64(r, dbl);
    const exact = dbl ? oddProductIs(oddSig(r), oddSig(r), oddSig(a)) : rf * rf == x;
    if (!exact) raisePost(MXCSR_PE);
  }
  fastHit = true;
  return r;
}

/** binary64 -> binary32, round to nearest. */
export function fastNarrow(x: u64): u64 {
  fastHit = false;
  if (!nearestMode() || !normalOrZero(x, true)) return 0;
  const d = reinterpret<f64>(x);
  const r = <f32>d;
  if (d != 0) {
    if (!safeMagnitude(<f64>r, false)) return 0;
    if (<f64>r != d) raisePost(MXCSR_PE);
  }
  fastHit = true;
  return <u64>reinterpret<u32>(r);
}

/** Whether the last fastToInt rounded (the caller raises PE once the range check passed). */
export let fastInexact: bool = false;

/** Float -> integer for |x| < 2^62, any rounding mode (wasm has all four roundings to integral);
 *  the caller range-checks the 32-bit case and raises PE from `fastInexact`. */
export function fastToInt(x: u64, dbl: bool, truncate: bool): i64 {
  fastHit = false;
  if (!normalOrZero(x, dbl)) return 0;
  const d = asF64(x, dbl);
  if (abs<f64>(d) >= 4611686018427387904.0) return 0; // 2^62
  let r: f64;
  switch (truncate ? 3 : (curMxcsr >> 13) & 3) {
    case 0: r = nearest<f64>(d); break;
    case 1: r = floor<f64>(d); break;
    case 2: r = ceil<f64>(d); break;
    default: r = trunc<f64>(d); break;
  }
  fastInexact = r != d;
  fastHit = true;
  return <i64>r;
}
