// SSE/SSE2 conversions between binary32, binary64 and 32/64-bit signed integers (SDM Vol. 2,
// CVT*). One lane converter serves them all; each instruction only fixes the lane count, the two
// formats, truncation and what happens to the destination's remaining bytes.
//
// Exceptions: float -> integer raises IE (and returns the integer indefinite 80000000H or
// 8000000000000000H) on a NaN, an infinity or a value out of range after rounding, otherwise PE
// when inexact; it never reports DE (a denormal under DAZ is a zero). Integer -> float raises PE
// when inexact. Float -> float raises IE on an SNaN (quieted), DE on a denormal, and the narrowing
// one OE/UE/PE, honouring FTZ. Rounding follows MXCSR.RC except for the truncating CVTT* forms.
import { begin, finish, simdFault } from './mxcsr';
import { intToFloat, floatToInt, f32ToF64, f64ToF32 } from './softfloat';

export const CV_I32: i32 = 0;
export const CV_I64: i32 = 1;
export const CV_F32: i32 = 2;
export const CV_F64: i32 = 3;

// @ts-ignore: decorator
@inline function fmtSize(fmt: i32): usize { return fmt == CV_I32 || fmt == CV_F32 ? 4 : 8; }

// @ts-ignore: decorator
@inline function loadLane(p: usize, i: i32, fmt: i32): u64 {
  return fmtSize(fmt) == 4 ? <u64>load<u32>(p + (<usize>i << 2)) : load<u64>(p + (<usize>i << 3));
}

// @ts-ignore: decorator
@inline function storeLane(p: usize, i: i32, fmt: i32, v: u64): void {
  if (fmtSize(fmt) == 4) store<u32>(p + (<usize>i << 2), <u32>v);
  else store<u64>(p + (<usize>i << 3), v);
}

/** One value from format `from` to format `to`. */
function convertLane(v: u64, from: i32, to: i32, truncate: bool): u64 {
  if (from == CV_I32 || from == CV_I64) {
    return intToFloat(from == CV_I32 ? <i64><i32><u32>v : <i64>v, to == CV_F64);
  }
  const dblIn = from == CV_F64;
  if (to == CV_I32 || to == CV_I64) return <u64>floatToInt(v, dblIn, to == CV_I64, truncate);
  if (from == to) return v;
  return dblIn ? f64ToF32(v) : f32ToF64(v);
}

/** Convert lanes 0..n-1 (n <= 4) of `src` into lanes 0..n-1 of `dst`. If `zeroTo` is nonzero the
 *  destination bytes after the converted lanes, up to byte `zeroTo`, are cleared; otherwise they
 *  are kept. All source lanes are read before anything is written (src may overlap dst), and
 *  nothing is written if an unmasked exception results. Returns the raised flags. */
export function convert(dst: usize, src: usize, n: i32, from: i32, to: i32, truncate: bool,
                        zeroTo: i32, mxcsr: i32): i32 {
  begin(mxcsr);
  const v0 = loadLane(src, 0, from);
  const v1 = n > 1 ? loadLane(src, 1, from) : 0;
  const v2 = n > 2 ? loadLane(src, 2, from) : 0;
  const v3 = n > 3 ? loadLane(src, 3, from) : 0;
  const r0 = convertLane(v0, from, to, truncate);
  const r1 = n > 1 ? convertLane(v1, from, to, truncate) : 0;
  const r2 = n > 2 ? convertLane(v2, from, to, truncate) : 0;
  const r3 = n > 3 ? convertLane(v3, from, to, truncate) : 0;
  const f = finish();
  if (simdFault(f, mxcsr)) return f;
  storeLane(dst, 0, to, r0);
  if (n > 1) storeLane(dst, 1, to, r1);
  if (n > 2) storeLane(dst, 2, to, r2);
  if (n > 3) storeLane(dst, 3, to, r3);
  const end = <i32>(<usize>n * fmtSize(to));
  if (zeroTo > end) memory.fill(dst + <usize>end, 0, <usize>(zeroTo - end));
  return f;
}

// --- the instructions ------------------------------------------------------------------------
// dst/src widths: xmm 16 bytes, mm 8, r32 4, r64 8 (a 32-bit GPR result is 4 bytes: the caller
// zero-extends it into the 64-bit register). `truncate` selects the CVTT* form.

/** CVTPI2PS xmm, mm/m64: two int32 to the low two singles; the high quadword is kept. */
export function cvtpi2ps(dst: usize, src: usize, mxcsr: i32): i32 { return convert(dst, src, 2, CV_I32, CV_F32, false, 0, mxcsr); }
/** CVTPS2PI / CVTTPS2PI mm, xmm/m64. */
export function cvtps2pi(dst: usize, src: usize, truncate: bool, mxcsr: i32): i32 { return convert(dst, src, 2, CV_F32, CV_I32, truncate, 0, mxcsr); }
/** CVTPI2PD xmm, mm/m64 (exact). */
export function cvtpi2pd(dst: usize, src: usize, mxcsr: i32): i32 { return convert(dst, src, 2, CV_I32, CV_F64, false, 0, mxcsr); }
/** CVTPD2PI / CVTTPD2PI mm, xmm/m128. */
export function cvtpd2pi(dst: usize, src: usize, truncate: bool, mxcsr: i32): i32 { return convert(dst, src, 2, CV_F64, CV_I32, truncate, 0, mxcsr); }
/** CVTSI2SS xmm, r/m32|r/m64 (`is64`): lane 0, the rest kept. */
export function cvtsi2ss(dst: usize, src: usize, is64: bool, mxcsr: i32): i32 { return convert(dst, src, 1, is64 ? CV_I64 : CV_I32, CV_F32, false, 0, mxcsr); }
/** CVTSI2SD xmm, r/m32|r/m64. */
export function cvtsi2sd(dst: usize, src: usize, is64: bool, mxcsr: i32): i32 { return convert(dst, src, 1, is64 ? CV_I64 : CV_I32, CV_F64, false, 0, mxcsr); }
/** CVTSS2SI / CVTTSS2SI r32|r64, xmm/m32. */
export function cvtss2si(dst: usize, src: usize, is64: bool, truncate: bool, mxcsr: i32): i32 { return convert(dst, src, 1, CV_F32, is64 ? CV_I64 : CV_I32, truncate, 0, mxcsr); }
/** CVTSD2SI / CVTTSD2SI r32|r64, xmm/m64. */
export function cvtsd2si(dst: usize, src: usize, is64: bool, truncate: bool, mxcsr: i32): i32 { return convert(dst, src, 1, CV_F64, is64 ? CV_I64 : CV_I32, truncate, 0, mxcsr); }
/** CVTSS2SD xmm, xmm/m32: lane 0, the high quadword kept. */
export function cvtss2sd(dst: usize, src: usize, mxcsr: i32): i32 { return convert(dst, src, 1, CV_F32, CV_F64, false, 0, mxcsr); }
/** CVTSD2SS xmm, xmm/m64: lane 0, the other three singles kept. */
export function cvtsd2ss(dst: usize, src: usize, mxcsr: i32): i32 { return convert(dst, src, 1, CV_F64, CV_F32, false, 0, mxcsr); }
/** CVTPS2PD xmm, xmm/m64: the low two singles to two doubles. */
export function cvtps2pd(dst: usize, src: usize, mxcsr: i32): i32 { return convert(dst, src, 2, CV_F32, CV_F64, false, 0, mxcsr); }
/** CVTPD2PS xmm, xmm/m128: two doubles to the low two singles; the high quadword is zeroed. */
export function cvtpd2ps(dst: usize, src: usize, mxcsr: i32): i32 { return convert(dst, src, 2, CV_F64, CV_F32, false, 16, mxcsr); }
/** CVTDQ2PS xmm, xmm/m128. */
export function cvtdq2ps(dst: usize, src: usize, mxcsr: i32): i32 { return convert(dst, src, 4, CV_I32, CV_F32, false, 0, mxcsr); }
/** CVTPS2DQ / CVTTPS2DQ xmm, xmm/m128. */
export function cvtps2dq(dst: usize, src: usize, truncate: bool, mxcsr: i32): i32 { return convert(dst, src, 4, CV_F32, CV_I32, truncate, 0, mxcsr); }
/** CVTDQ2PD xmm, xmm/m64: the low two int32 to two doubles (exact). */
export function cvtdq2pd(dst: usize, src: usize, mxcsr: i32): i32 { return convert(dst, src, 2, CV_I32, CV_F64, false, 0, mxcsr); }
/** CVTPD2DQ / CVTTPD2DQ xmm, xmm/m128: two doubles to the low two int32; the high quadword zeroed. */
export function cvtpd2dq(dst: usize, src: usize, truncate: bool, mxcsr: i32): i32 { return convert(dst, src, 2, CV_F64, CV_I32, truncate, 16, mxcsr); }
