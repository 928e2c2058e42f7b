// WebAssembly SIMD fast paths for packed floating-point instructions, taken only when the v128
// result is provably the x86 result (see fastpath.ts for the scalar counterparts and the
// reasoning). Each returns false, having done nothing, when a lane is outside the safe domain; the
// caller then runs the exact per-lane implementation.
//  * ADD/SUB/MUL/DIV/SQRT PS and ADD/SUB PD: RC = nearest, every lane normal or zero and below
//    2^(emax-1) in magnitude (keeps TwoSum free of intermediate overflow), every result normal
//    (strictly above the smallest normal), finite, or an exact zero. PE is computed exactly:
//    TwoSum error terms for sums; for PS products, quotients and roots an exact binary64 check
//    (24-bit x 24-bit products are exact in binary64).
//  * MIN/MAX and CMP, PS and PD: any RC, no NaN and no denormal lane (so DAZ, DE, IE cannot
//    matter); MIN/MAX is the SDM's `a < b ? a : b` as a lane select.
import { MXCSR_PE, raisePost, curMxcsr, simdFault } from './mxcsr';

const F32_MIN_NORMAL: f32 = 1.17549435e-38;
const F32_MAX: f32 = 3.40282347e38;
const F64_MIN_NORMAL: f64 = 2.2250738585072014e-308;
const F64_MAX: f64 = 1.7976931348623157e308;

export const PK_ADD: i32 = 0;
export const PK_SUB: i32 = 1;
export const PK_MUL: i32 = 2;
export const PK_DIV: i32 = 3;
export const PK_MIN: i32 = 4;
export const PK_MAX: i32 = 5;
export const PK_SQRT: i32 = 6;

/** Lanes that are neither NaN nor denormal (infinities allowed). */
// @ts-ignore: decorator
@inline function noNaNDenormal(x: v128, dbl: bool): bool {
  if (dbl) {
    const e = v128.and(x, i64x2.splat(0x7ff0000000000000));
    const f = v128.and(x, i64x2.splat(0x000fffffffffffff));
    const nan = v128.and(i64x2.eq(e, i64x2.splat(0x7ff0000000000000)), i64x2.ne(f, i64x2.splat(0)));
    const den = v128.and(i64x2.eq(e, i64x2.splat(0)), i64x2.ne(f, i64x2.splat(0)));
    return !v128.any_true(v128.or(nan, den));
  }
  const e = v128.and(x, i32x4.splat(0x7f800000));
  const f = v128.and(x, i32x4.splat(0x007fffff));
  const nan = v128.and(i32x4.eq(e, i32x4.splat(0x7f800000)), i32x4.ne(f, i32x4.splat(0)));
  const den = v128.and(i32x4.eq(e, i32x4.splat(0)), i32x4.ne(f, i32x4.splat(0)));
  return !v128.any_true(v128.or(nan, den));
}

/** Lanes normal or zero and below 2^(emax-1) in magnitude. */
// @ts-ignore: decorator
@inline function moderate(x: v128, dbl: bool): bool {
  if (dbl) return noNaNDenormal(x, true) && i64x2.all_true(f64x2.lt(f64x2.abs(x), f64x2.splat(4.49423283715579e307)));
  return noNaNDenormal(x, false) && i32x4.all_true(f32x4.lt(f32x4.abs(x), f32x4.splat(8.507059e37)));
}

/** Result lanes normal (strictly above the smallest normal) and finite, or exempted by `zeroOk`. */
// @ts-ignore: decorator
@inline function safeResult(r: v128, zeroOk: v128, dbl: bool): bool {
  if (dbl) {
    const m = f64x2.abs(r);
    const ok = v128.and(f64x2.gt(m, f64x2.splat(F64_MIN_NORMAL)), f64x2.le(m, f64x2.splat(F64_MAX)));
    return i64x2.all_true(v128.or(ok, zeroOk));
  }
  const m = f32x4.abs(r);
  const ok = v128.and(f32x4.gt(m, f32x4.splat(F32_MIN_NORMAL)), f32x4.le(m, f32x4.splat(F32_MAX)));
  return i32x4.all_true(v128.or(ok, zeroOk));
}

/** The four binary32 lanes as two f64x2 (low pair, high pair), exactly. */
// @ts-ignore: decorator
@inline function lo64(x: v128): v128 { return f64x2.promote_low_f32x4(x); }
// @ts-ignore: decorator
@inline function hi64(x: v128): v128 { return f64x2.promote_low_f32x4(i64x2.shuffle(x, x, 1, 0)); }

/** Packed arithmetic (op = PK_*) on 16-byte operands; true if done (result stored unless the
 *  raised PE is unmasked; PE recorded with raisePost). */
export function packedArithFast(op: i32, dbl: bool, dst: usize, src: usize): bool {
  const x = v128.load(dst), y = v128.load(src);
  let r: v128;
  let inexact = false;
  if (op == PK_MIN || op == PK_MAX) {
    if (!noNaNDenormal(x, dbl) || !noNaNDenormal(y, dbl)) return false;
    let sel: v128;
    if (dbl) sel = op == PK_MIN ? f64x2.lt(x, y) : f64x2.gt(x, y);
    else sel = op == PK_MIN ? f32x4.lt(x, y) : f32x4.gt(x, y);
    v128.store(dst, v128.bitselect(x, y, sel)); // both zero, or equal: the second operand
    return true;
  }
  if ((curMxcsr & 0x6000) != 0) return false; // not round-to-nearest
  const zero = dbl ? f64x2.splat(0) : f32x4.splat(0);
  if (op == PK_SQRT) {
    if (!moderate(y, dbl) || dbl) return false;
    if (!i32x4.all_true(f32x4.ge(y, zero))) return false; // negative: IE, slow path
    r = f32x4.sqrt(y);
    const rl = lo64(r), rh = hi64(r);
    inexact = v128.any_true(v128.or(f64x2.ne(f64x2.mul(rl, rl), lo64(y)), f64x2.ne(f64x2.mul(rh, rh), hi64(y))));
  } else {
    if (!moderate(x, dbl) || !moderate(y, dbl)) return false;
    if (op == PK_ADD || op == PK_SUB) {
      const yy = op == PK_SUB ? (dbl ? f64x2.neg(y) : f32x4.neg(y)) : y;
      if (dbl) {
        r = f64x2.add(x, yy);
        const bb = f64x2.sub(r, x);
        const err = f64x2.add(f64x2.sub(x, f64x2.sub(r, bb)), f64x2.sub(yy, bb));
        if (!safeResult(r, f64x2.eq(r, zero), true)) return false;
        inexact = v128.any_true(f64x2.ne(err, zero));
      } else {
        r = f32x4.add(x, yy);
        const bb = f32x4.sub(r, x);
        const err = f32x4.add(f32x4.sub(x, f32x4.sub(r, bb)), f32x4.sub(yy, bb));
        if (!safeResult(r, f32x4.eq(r, zero), false)) return false;
        inexact = v128.any_true(f32x4.ne(err, zero));
      }
    } else {
      if (dbl) return false; // binary64 products/quotients: the scalar fast path checks exactness
      if (op == PK_MUL) {
        r = f32x4.mul(x, y);
        if (!safeResult(r, v128.or(f32x4.eq(x, zero), f32x4.eq(y, zero)), false)) return false;
        inexact = v128.any_true(v128.or(f64x2.ne(f64x2.mul(lo64(x), lo64(y)), lo64(r)),
                                        f64x2.ne(f64x2.mul(hi64(x), hi64(y)), hi64(r))));
      } else {
        if (v128.any_true(f32x4.eq(y, zero))) return false; // divide by zero: ZE or IE
        r = f32x4.div(x, y);
        if (!safeResult(r, f32x4.eq(x, zero), false)) return false;
        inexact = v128.any_true(v128.or(f64x2.ne(f64x2.mul(lo64(r), lo64(y)), lo64(x)),
                                        f64x2.ne(f64x2.mul(hi64(r), hi64(y)), hi64(x))));
      }
    }
  }
  if (inexact) {
    raisePost(MXCSR_PE);
    if (simdFault(MXCSR_PE, curMxcsr)) return true; // #XM: destination unchanged
  }
  v128.store(dst, r);
  return true;
}

/** CMPPS/CMPPD predicate `pred` with v128 compares; true if done. */
export function packedCmpFast(dbl: bool, dst: usize, src: usize, pred: i32): bool {
  const x = v128.load(dst), y = v128.load(src);
  if (!noNaNDenormal(x, dbl) || !noNaNDenormal(y, dbl)) return false;
  let r: v128;
  // Without NaNs: UNORD is false, ORD true, NLT is >=, NLE is >.
  switch (pred & 7) {
    case 0: r = dbl ? f64x2.eq(x, y) : f32x4.eq(x, y); break;
    case 1: r = dbl ? f64x2.lt(x, y) : f32x4.lt(x, y); break;
    case 2: r = dbl ? f64x2.le(x, y) : f32x4.le(x, y); break;
    case 3: r = i64x2.splat(0); break;
    case 4: r = dbl ? f64x2.ne(x, y) : f32x4.ne(x, y); break;
    case 5: r = dbl ? f64x2.ge(x, y) : f32x4.ge(x, y); break;
    case 6: r = dbl ? f64x2.gt(x, y) : f32x4.gt(x, y); break;
    default: r = i64x2.splat(-1); break;
  }
  v128.store(dst, r);
  return true;
}
