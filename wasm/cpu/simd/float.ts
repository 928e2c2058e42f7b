// SSE/SSE2 floating-point arithmetic, MIN/MAX, compares, COMI/UCOMI and RCP/RSQRT, packed and
// scalar, single and double (SDM Vol. 2, each instruction; exceptions per Vol. 1, 11.5).
//
// `shape` selects PS/SS/PD/SD (mxcsr.ts): a packed op processes every lane of the 16-byte operands,
// a scalar op only lane 0 and leaves the other lanes of `dst` unchanged (the scalar `src` may be a
// 4- or 8-byte memory operand: only lane 0 is read). Results are written in place; if the outcome
// is an unmasked exception, `dst` is restored, so it is unchanged as the SDM requires.
import {
  MXCSR_IE, EFL_CF, EFL_PF, EFL_ZF, COMI_SHIFT,
  begin, finish, simdFault, raisePre, curMxcsr,
} from './mxcsr';
import {
  fadd, fmul, fdiv, fsqrt, isNaN, isSNaN, isZero, conditionInput, dazInput, checkDenormal, compareOrdered,
  REL_LT, REL_EQ, REL_GT, REL_UN,
} from './softfloat';
import { RCP_TABLE, RSQRT_TABLE } from './rcp-table';
import { RCP_TABLE_AMD, RSQRT_TABLE_AMD, RCP_BITS_AMD, RSQRT_BITS_AMD } from './rcp-table-amd';
import { packedArithFast, packedCmpFast } from './packed';

export const FP_ADD: i32 = 0;
export const FP_SUB: i32 = 1;
export const FP_MUL: i32 = 2;
export const FP_DIV: i32 = 3;
export const FP_MIN: i32 = 4;
export const FP_MAX: i32 = 5;
export const FP_SQRT: i32 = 6; // one operand: dst = sqrt(src)
// (The same numbering as packed.ts's PK_*.)

// @ts-ignore: decorator
@inline export function shapeDouble(shape: i32): bool { return (shape & 2) != 0; }
/** Number of lanes an operation of this shape processes. */
// @ts-ignore: decorator
@inline export function shapeLanes(shape: i32): i32 { return (shape & 1) != 0 ? 1 : (shape & 2) != 0 ? 2 : 4; }

// @ts-ignore: decorator
@inline export function ldf(p: usize, dbl: bool): u64 { return dbl ? load<u64>(p) : <u64>load<u32>(p); }
// @ts-ignore: decorator
@inline export function stf(p: usize, v: u64, dbl: bool): void {
  if (dbl) store<u64>(p, v); else store<u32>(p, <u32>v);
}

/** MINPS/MAXPS...: if either operand is a NaN (IE, QNaN included) or both are zeros (of any
 *  signs), the second operand is returned (an SNaN stays signaling); otherwise the smaller (the
 *  larger). DAZ applies to the comparison and to the value returned, even beside a NaN; DE is not
 *  reported when an operand is a NaN. */
export function fminmax(a: u64, b: u64, dbl: bool, max: bool): u64 {
  const cb = dazInput(b, dbl);
  if (isNaN(a, dbl) || isNaN(b, dbl)) { raisePre(MXCSR_IE); return cb; }
  const ca = dazInput(a, dbl);
  checkDenormal(ca, cb, dbl);
  const rel = compareOrdered(ca, cb, dbl);
  if (isZero(ca, dbl) && isZero(cb, dbl)) return cb;
  return rel == (max ? REL_GT : REL_LT) ? ca : cb;
}

// @ts-ignore: decorator
@inline function laneOp(op: i32, a: u64, b: u64, dbl: bool): u64 {
  switch (op) {
    case FP_ADD: return fadd(a, b, dbl, false);
    case FP_SUB: return fadd(a, b, dbl, true);
    case FP_MUL: return fmul(a, b, dbl);
    case FP_DIV: return fdiv(a, b, dbl);
    case FP_MIN: return fminmax(a, b, dbl, false);
    case FP_MAX: return fminmax(a, b, dbl, true);
    default: return fsqrt(b, dbl);
  }
}

/** The flags of the instruction; on an unmasked exception `dst` gets back its saved bytes. */
// @ts-ignore: decorator
@inline function commit(dst: usize, save0: u64, save1: u64): i32 {
  const f = finish();
  if (simdFault(f, curMxcsr)) { store<u64>(dst, save0); store<u64>(dst, save1, 8); }
  return f;
}

/** ADDPS/ADDSS/ADDPD/ADDSD, SUB*, MUL*, DIV*, MIN*, MAX*, SQRT* (op = FP_*). Returns the raised
 *  exception flags (MXCSR bits 0-5). */
export function fpArith(op: i32, shape: i32, dst: usize, src: usize, mxcsr: i32): i32 {
  begin(mxcsr);
  const dbl = shapeDouble(shape);
  if ((shape & 1) == 0 && packedArithFast(op, dbl, dst, src)) return finish();
  const n = shapeLanes(shape);
  const es: usize = dbl ? 8 : 4;
  const save0 = load<u64>(dst), save1 = load<u64>(dst, 8);
  for (let i = 0; i < n; i++) {
    const o = <usize>i * es;
    stf(dst + o, laneOp(op, ldf(dst + o, dbl), ldf(src + o, dbl), dbl), dbl);
  }
  return commit(dst, save0, save1);
}

// --- compares --------------------------------------------------------------------------------

/** CMPPS/CMPSS/CMPPD/CMPSD predicate (imm8 bits 2:0; the legacy encodings ignore bits 7:3):
 *  EQ, LT, LE, UNORD, NEQ, NLT, NLE, ORD. */
export function compareLane(a: u64, b: u64, dbl: bool, pred: i32): bool {
  pred &= 7;
  let rel: i32;
  if (isNaN(a, dbl) || isNaN(b, dbl)) {
    // LT, LE, NLT, NLE are signaling: IE on a QNaN too. The others only on an SNaN.
    const signaling = (pred & 3) == 1 || (pred & 3) == 2;
    if (signaling || isSNaN(a, dbl) || isSNaN(b, dbl)) raisePre(MXCSR_IE);
    rel = REL_UN;
  } else {
    const ca = conditionInput(a, dbl);
    rel = compareOrdered(ca, conditionInput(b, dbl), dbl);
  }
  switch (pred) {
    case 0: return rel == REL_EQ;
    case 1: return rel == REL_LT;
    case 2: return rel == REL_LT || rel == REL_EQ;
    case 3: return rel == REL_UN;
    case 4: return rel != REL_EQ;
    case 5: return rel != REL_LT;
    case 6: return rel == REL_GT || rel == REL_UN;
    default: return rel != REL_UN;
  }
}

/** CMPPS/CMPSS/CMPPD/CMPSD xmm1, xmm2/m, imm8: each lane becomes all ones (true) or zero. */
export function fpCmp(shape: i32, dst: usize, src: usize, pred: i32, mxcsr: i32): i32 {
  begin(mxcsr);
  const dbl = shapeDouble(shape);
  if ((shape & 1) == 0 && packedCmpFast(dbl, dst, src, pred)) return 0;
  const n = shapeLanes(shape);
  const es: usize = dbl ? 8 : 4;
  const save0 = load<u64>(dst), save1 = load<u64>(dst, 8);
  for (let i = 0; i < n; i++) {
    const o = <usize>i * es;
    const t = compareLane(ldf(dst + o, dbl), ldf(src + o, dbl), dbl, pred);
    stf(dst + o, t ? 0xffffffffffffffff : 0, dbl);
  }
  return commit(dst, save0, save1);
}

/** COMISS/COMISD (`signalQNaN`) and UCOMISS/UCOMISD on lane 0 of `a` and `b`. Returns the raised
 *  flags, and unless the instruction faults, the EFLAGS result in bits COMI_SHIFT+: unordered
 *  ZF,PF,CF = 111, greater 000, less 001, equal 100 (OF, SF, AF are cleared). COMI raises IE on any
 *  NaN, UCOMI only on an SNaN; both raise DE on denormals. */
export function fpComi(a: usize, b: usize, dbl: bool, signalQNaN: bool, mxcsr: i32): i32 {
  begin(mxcsr);
  const x = ldf(a, dbl), y = ldf(b, dbl);
  let efl: i32;
  if (isNaN(x, dbl) || isNaN(y, dbl)) {
    if (signalQNaN || isSNaN(x, dbl) || isSNaN(y, dbl)) raisePre(MXCSR_IE);
    efl = EFL_ZF | EFL_PF | EFL_CF;
  } else {
    const cx = conditionInput(x, dbl);
    const rel = compareOrdered(cx, conditionInput(y, dbl), dbl);
    efl = rel == REL_LT ? EFL_CF : rel == REL_EQ ? EFL_ZF : 0;
  }
  const f = finish();
  return simdFault(f, mxcsr) ? f : f | (efl << COMI_SHIFT);
}

// --- reciprocal approximations -----------------------------------------------------------------
// RCPPS/RCPSS/RSQRTPS/RSQRTSS: the SDM (Vol. 2B) and the APM (Vol. 4) only bound the relative error
// (|err| <= 1.5 * 2^-12); the table is the implementation's. Two models, each bit for bit on all
// 2^32 inputs: Intel (family 6; tables measured by test/simd/rcptable.c, rcp-table.ts) and AMD
// (family 19h; test/native/rcp-approx.c, rcp-table-amd.ts, which indexes one more fraction bit for
// RCP and two more for RSQRT). Both vendors agree on the rest: no exception is ever raised, MXCSR
// is not consulted, denormal inputs act as zeros (result infinity of the same sign), a result below
// the normal range is flushed to a zero, NaNs are quieted, 1/inf = 0, rsqrt(+inf) = +0, and rsqrt of
// a negative nonzero value (including -inf) is the QNaN indefinite.

/** The result of RCPSS for input `x` given the table entry (fraction bits 22..11) of its fraction. */
@inline function rcpFrom(x: u32, table: usize, bits: u32): u32 {
  const e = (x >> 23) & 0xff, s = x & 0x80000000, m = x & 0x7fffff;
  if (e == 0) return s | 0x7f800000;
  if (e == 255) return m != 0 ? x | 0x400000 : s;
  const oe = 253 - <i32>e;
  if (oe <= 0) return s;
  return s | (<u32>oe << 23) | (<u32>load<u16>(table + ((m >> (23 - bits)) << 1)) << 11);
}

/** The result of RSQRTSS; the table is indexed by (exponent is odd) << bits | the top `bits` fraction bits. */
@inline function rsqrtFrom(x: u32, table: usize, bits: u32): u32 {
  const e = (x >> 23) & 0xff, s = x & 0x80000000, m = x & 0x7fffff;
  if (e == 0) return s | 0x7f800000;
  if (e == 255) return m != 0 ? x | 0x400000 : (s != 0 ? 0xffc00000 : 0);
  if (s != 0) return 0xffc00000;
  const oe = (380 - <i32>e) >> 1;
  return (<u32>oe << 23) | (<u32>load<u16>(table + ((((e & 1) << bits) | (m >> (23 - bits))) << 1)) << 11);
}

/** RCPSS on a binary32 bit pattern, AMD family 19h. */
export function rcpApproxAmd(x: u32): u32 { return rcpFrom(x, RCP_TABLE_AMD, RCP_BITS_AMD); }
/** RSQRTSS on a binary32 bit pattern, AMD family 19h. */
export function rsqrtApproxAmd(x: u32): u32 { return rsqrtFrom(x, RSQRT_TABLE_AMD, RSQRT_BITS_AMD); }

/** RCPSS on a binary32 bit pattern, Intel family 6. */
export function rcpApprox(x: u32): u32 { return rcpFrom(x, RCP_TABLE, 11); }

/** RSQRTSS on a binary32 bit pattern, Intel family 6. */
export function rsqrtApprox(x: u32): u32 { return rsqrtFrom(x, RSQRT_TABLE, 10); }

/** RCPPS (shape PS) / RCPSS (SS): dst = approx(1/src), by the AMD table when `amd`. No flags. */
export function fpRcp(shape: i32, dst: usize, src: usize, amd: bool = false): void {
  const n = shapeLanes(shape);
  for (let i = 0; i < n; i++) {
    const o = <usize>i << 2;
    const x = load<u32>(src + o);
    store<u32>(dst + o, amd ? rcpApproxAmd(x) : rcpApprox(x));
  }
}

/** RSQRTPS / RSQRTSS: dst = approx(1/sqrt(src)), by the AMD table when `amd`. No flags. */
export function fpRsqrt(shape: i32, dst: usize, src: usize, amd: bool = false): void {
  const n = shapeLanes(shape);
  for (let i = 0; i < n; i++) {
    const o = <usize>i << 2;
    const x = load<u32>(src + o);
    store<u32>(dst + o, amd ? rsqrtApproxAmd(x) : rsqrtApprox(x));
  }
}
