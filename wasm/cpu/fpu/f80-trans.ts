// x87 transcendental instructions: F2XM1, FYL2X, FYL2XP1, FPTAN, FPATAN, FSIN, FCOS, FSINCOS
// (SDM Vol. 2 for each; Vol. 1, 8.3.10 for accuracy and the 66-bit π of the argument reduction).
//
// Results are computed in 128-bit arithmetic (a software float "X" with a 128-bit significand and
// fixed-point Q1.127 series) and rounded once to 64 bits per RC (PC does not apply). Like the x87,
// every computed non-zero finite result raises PE (even when it happens to be exact); C1 then
// reports rounding up, which may differ from the hardware's internal rounding (the hardware results
// are within 1 ulp of the exact value, and these are within 1 ulp of the hardware's).
//
// FSIN/FCOS/FSINCOS/FPTAN reduce the argument exactly modulo π/2 as approximated by the x87's
// 66-bit constant 0xC90FDAA22168C234C × 2^-66, so that large arguments give the same values as the
// hardware (which differ from the true sine etc. near multiples of π). |x| >= 2^63 is out of range:
// C2 is set and nothing is written.
import {
  FE_DE, FE_ZE, FE_UE, FE_PE, SW_C2, C_ZERO, C_NORMAL, C_DENORMAL, C_INF, C_UNSUPPORTED, EXP_BIAS,
  INT_BIT, sigAt, seAt, store80, classify, isNaNClass, unpack, uSig, uExp, mul64, mulHi64, wHi,
  wLo, roundPack, invalid, propagateNaN1, checkNaN2, storeInf, storeZero,
} from './f80-base';
import {
  INV_FACT, RECIP_ODD, ATAN_J16, PI_HI, PI_LO, PI_EXP, PI_2_HI, PI_2_LO, PI_2_EXP, PI_4_HI, PI_4_LO,
  PI_4_EXP, PI3_4_HI, PI3_4_LO, PI3_4_EXP, LN2_HI, LN2_LO, LN2_EXP, LOG2E_HI, LOG2E_LO, LOG2E_EXP,
  SQRT2_HI, SQRT2_LO,
} from './f80-tables';

// ---- 128-bit products ----------------------------------------------------------------------------

// p3:p2:p1 = the top 192 bits of the 256-bit product (ah:al) × (bh:bl) (low word approximated).
let p3: u64 = 0;
let p2: u64 = 0;
let p1: u64 = 0;

function mul128(ah: u64, al: u64, bh: u64, bl: u64): void {
  mul64(ah, bh);
  let hi = wHi, mid = wLo;
  mul64(ah, bl);
  const m1h = wHi, m1l = wLo;
  mul64(al, bh);
  const m2h = wHi, m2l = wLo;
  const llh = mulHi64(al, bl);
  let lo = m1l + m2l;
  let c: u64 = lo < m1l ? 1 : 0;
  lo += llh;
  c += lo < llh ? 1 : 0;
  let t = mid + m1h;
  let c3: u64 = t < mid ? 1 : 0;
  t += m2h;
  c3 += t < m2h ? 1 : 0;
  t += c;
  c3 += t < c ? 1 : 0;
  p3 = hi + c3;
  p2 = t;
  p1 = lo;
}

// ---- X: software float with a 128-bit significand ------------------------------------------------
// value = (xh:xl) × 2^(xe − 127), xh bit 63 set; zero has xh = xl = 0. xs is 0 or 0x8000.

let xs: u32 = 0;
let xe: i32 = 0;
let xh: u64 = 0;
let xl: u64 = 0;

@inline function setX(s: u32, e: i32, h: u64, l: u64): void { xs = s; xe = e; xh = h; xl = l; }

/** Normalizes s × (h:l) × 2^(e − 127) into X. */
function xNorm(s: u32, e: i32, h: u64, l: u64): void {
  if (h == 0) {
    if (l == 0) { setX(s, 0, 0, 0); return; }
    h = l;
    l = 0;
    e -= 64;
  }
  const lz = <i32>clz(h);
  if (lz != 0) {
    h = (h << <u64>lz) | (l >> <u64>(64 - lz));
    l <<= <u64>lz;
    e -= lz;
  }
  setX(s, e, h, l);
}

@inline function xFromInt(k: i32): void {
  xNorm(k < 0 ? 0x8000 : 0, 127, 0, <u64>(k < 0 ? -k : k));
}

function xMul(as: u32, ae: i32, ah: u64, al: u64, bs: u32, be: i32, bh: u64, bl: u64): void {
  const s = as ^ bs;
  if (ah == 0 || bh == 0) { setX(s, 0, 0, 0); return; }
  mul128(ah, al, bh, bl);
  if ((p3 & INT_BIT) != 0) setX(s, ae + be + 1, p3, p2);
  else setX(s, ae + be, (p3 << 1) | (p2 >> 63), (p2 << 1) | (p1 >> 63));
}

function xAdd(as: u32, ae: i32, ah: u64, al: u64, bs: u32, be: i32, bh: u64, bl: u64): void {
  if (bh == 0) { setX(as, ae, ah, al); return; }
  if (ah == 0) { setX(bs, be, bh, bl); return; }
  if (be > ae || (be == ae && (bh > ah || (bh == ah && bl > al)))) {
    const ts = as; as = bs; bs = ts;
    const te = ae; ae = be; be = te;
    let t = ah; ah = bh; bh = t;
    t = al; al = bl; bl = t;
  }
  const d = ae - be;
  if (d >= 192) { setX(as, ae, ah, al); return; }
  // b >> d into three words b2:b1:b0 (truncated).
  let b2 = bh, b1 = bl, b0: u64 = 0;
  if (d >= 128) {
    b0 = b2 >> <u64>(d - 128);
    b1 = 0;
    b2 = 0;
  } else if (d >= 64) {
    const k = d - 64;
    if (k == 0) { b0 = b1; b1 = b2; }
    else { b0 = (b1 >> <u64>k) | (b2 << <u64>(64 - k)); b1 = b2 >> <u64>k; }
    b2 = 0;
  } else if (d > 0) {
    b0 = b1 << <u64>(64 - d);
    b1 = (b1 >> <u64>d) | (b2 << <u64>(64 - d));
    b2 >>= <u64>d;
  }
  if (as == bs) {
    const r1 = al + b1;
    const c1: u64 = r1 < al ? 1 : 0;
    let r2 = ah + b2;
    let carry = r2 < ah;
    const r2c = r2 + c1;
    carry = carry || r2c < r2;
    r2 = r2c;
    if (carry) setX(as, ae + 1, (r2 >> 1) | INT_BIT, (r1 >> 1) | (r2 << 63));
    else setX(as, ae, r2, r1);
    return;
  }
  const r0 = 0 - b0;
  const br0: u64 = b0 != 0 ? 1 : 0;
  const r1 = al - b1 - br0;
  const br1: u64 = al < b1 || (al == b1 && br0 != 0) ? 1 : 0;
  let h = ah - b2 - br1, l = r1, g = r0;
  let e = ae;
  if (h == 0 && l == 0 && g == 0) { setX(0, 0, 0, 0); return; }
  while (h == 0) { h = l; l = g; g = 0; e -= 64; }
  const lz = <i32>clz(h);
  if (lz != 0) {
    h = (h << <u64>lz) | (l >> <u64>(64 - lz));
    l = (l << <u64>lz) | (g >> <u64>(64 - lz));
    e -= lz;
  }
  setX(as, e, h, l);
}

/** X = a / b (b non-zero): restoring division, 128 quotient bits, truncated. */
function xDiv(as: u32, ae: i32, ah: u64, al: u64, bs: u32, be: i32, bh: u64, bl: u64): void {
  const s = as ^ bs;
  if (ah == 0) { setX(s, 0, 0, 0); return; }
  let e = ae - be;
  let rh = ah, rl = al;
  let carry = false;
  if (rh < bh || (rh == bh && rl < bl)) {
    e--;
    carry = (rh >> 63) != 0;
    rh = (rh << 1) | (rl >> 63);
    rl <<= 1;
  }
  let qh: u64 = 0, ql: u64 = 0;
  for (let i = 0; i < 128; i++) {
    qh = (qh << 1) | (ql >> 63);
    ql <<= 1;
    if (carry || rh > bh || (rh == bh && rl >= bl)) {
      const nl = rl - bl;
      rh = rh - bh - (rl < bl ? 1 : 0);
      rl = nl;
      ql |= 1;
    }
    carry = (rh >> 63) != 0;
    rh = (rh << 1) | (rl >> 63);
    rl <<= 1;
  }
  setX(s, e, qh, ql);
}

// ---- Q1.127 fixed point: value = (h:l) / 2^127 in [0, 2) ------------------------------------------

let fh: u64 = 0;
let fl: u64 = 0;

/** fh:fl = a × b (Q1.127, truncated); the product must be below 2. */
function fMul(ah: u64, al: u64, bh: u64, bl: u64): void {
  mul128(ah, al, bh, bl);
  fh = (p3 << 1) | (p2 >> 63);
  fl = (p2 << 1) | (p1 >> 63);
}

/** fh:fl = |X| in Q1.127 (|X| < 2), truncated. */
function fixedFromX(e: i32, h: u64, l: u64): void {
  const k = -e;
  if (k <= 0) { fh = h; fl = l; return; }
  if (k >= 128) { fh = 0; fl = 0; return; }
  if (k >= 64) { fl = h >> <u64>(k - 64); fh = 0; return; }
  fl = (l >> <u64>k) | (h << <u64>(64 - k));
  fh = h >> <u64>k;
}

/** X = s × (h:l) in Q1.127. */
@inline function xFromFixed(s: u32, h: u64, l: u64): void { xNorm(s, 0, h, l); }

/**
 * Horner evaluation of Σ_{k=0..n} (±t)^k c_k in Q1.127, c_k = table[first + step·k] (hi, lo pairs),
 * alternating signs when `alt`. Every partial sum must stay in [0, 2). Result in fh:fl.
 */
function horner(th: u64, tl: u64, table: usize, first: i32, step: i32, n: i32, alt: bool): void {
  let p = table + (<usize>(first + step * n) << 4);
  let ah = load<u64>(p), al = load<u64>(p, 8);
  for (let k = n - 1; k >= 0; k--) {
    fMul(th, tl, ah, al);
    p = table + (<usize>(first + step * k) << 4);
    const ch = load<u64>(p), cl = load<u64>(p, 8);
    if (alt) {
      al = cl - fl;
      ah = ch - fh - (cl < fl ? 1 : 0);
    } else {
      al = cl + fl;
      ah = ch + fh + (al < cl ? 1 : 0);
    }
  }
  fh = ah;
  fl = al;
}

/** Rounds X to dst (64-bit precision, RC from cw). A computed result always counts as inexact:
 *  PE, and UE for a denormal result (as the x87 reports). */
function roundX(dst: usize, cw: u32): u32 {
  if (xh == 0) { storeZero(dst, xs); return FE_PE; }
  let f = roundPack(dst, xs, xe + EXP_BIAS, xh, xl, 64, cw) | FE_PE;
  if ((cw & FE_UE) != 0 && (seAt(dst) & 0x7fff) == 0 && sigAt(dst) != 0) f |= FE_UE;
  return f;
}

/** Rounds a 128-bit constant with a sign to dst. */
function roundConst(dst: usize, s: u32, e: i32, h: u64, l: u64, cw: u32): u32 {
  return roundPack(dst, s, e + EXP_BIAS, h, l, 64, cw) | FE_PE;
}

// ---- sine and cosine of a reduced argument ---------------------------------------------------------

let sinS: u32 = 0, sinE: i32 = 0, sinH: u64 = 0, sinL: u64 = 0;
let cosS: u32 = 0, cosE: i32 = 0, cosH: u64 = 0, cosL: u64 = 0;

/** sin and cos of r = X (|r| <= π/4 + ε) by Taylor series in t = r² (Q1.127). */
function sinCos(rs: u32, re: i32, rh: u64, rl: u64): void {
  xMul(0, re, rh, rl, 0, re, rh, rl);
  fixedFromX(xe, xh, xl);
  const th = fh, tl = fl;
  // sin r = r × Σ (−t)^k / (2k+1)!; a factor of exactly 1 (t below 2^-127) is nudged below 1
  // so that directed rounding sees sin r < r.
  horner(th, tl, INV_FACT, 1, 2, 16, true);
  let sh = fh, sl = fl;
  if (sh == INT_BIT && sl == 0) { sh = 0x7fffffffffffffff; sl = 0xffffffffffffffff; }
  xFromFixed(0, sh, sl);
  xMul(rs, re, rh, rl, 0, xe, xh, xl);
  sinS = xs; sinE = xe; sinH = xh; sinL = xl;
  // cos r = Σ (−t)^k / (2k)!
  horner(th, tl, INV_FACT, 0, 2, 17, true);
  let ch = fh, cl = fl;
  if (ch == INT_BIT && cl == 0 && rh != 0) { ch = 0x7fffffffffffffff; cl = 0xffffffffffffffff; }
  xFromFixed(0, ch, cl);
  cosS = xs; cosE = xe; cosH = xh; cosL = xl;
}

/** Quadrant (k mod 4) of the last reduction; the reduced argument is left in X. */
let redQ: i32 = 0;

// π/2 as the x87 knows it: D × 2^-67 with D = 0xC90FDAA22168C234C (66 significant bits).
const DH: u64 = 0xc;
const DL: u64 = 0x90fdaa22168c234c;
const HALF_DH: u64 = 0x6;
const HALF_DL: u64 = 0x487ed5110b4611a6;

/** Reduces |x| = m × 2^(e − 63) (e < 63) to r in [−π/4, π/4] with x = k·(π/2) + r, exactly. */
function reduce(e: i32, m: u64): void {
  if (e < -1 || (e == -1 && m < 0xc90fdaa22168c234)) {
    setX(0, e, m, 0);
    redQ = 0;
    return;
  }
  // R = (m × 2^(e+4)) mod D by doubling; q counts the quotient's low bits.
  let rh: u64 = 0, rl = m;
  let q: u32 = 0;
  for (let i = 0; i < e + 4; i++) {
    rh = (rh << 1) | (rl >> 63);
    rl <<= 1;
    q <<= 1;
    if (rh > DH || (rh == DH && rl >= DL)) {
      rh = rh - DH - (rl < DL ? 1 : 0);
      rl -= DL;
      q |= 1;
    }
  }
  let s: u32 = 0;
  if (rh > HALF_DH || (rh == HALF_DH && rl > HALF_DL)) {
    // r = R − D (negative), k + 1.
    const nl = DL - rl;
    rh = DH - rh - (DL < rl ? 1 : 0);
    rl = nl;
    q++;
    s = 0x8000;
  }
  redQ = <i32>(q & 3);
  xNorm(s, 60, rh, rl);
}

const T_SIN = 0, T_COS = 1, T_SINCOS = 2, T_TAN = 3;

/** FSIN/FCOS/FSINCOS/FPTAN. dst1 gets sin, cos or tan; dst2 cos (FSINCOS) or the value FPTAN
 *  pushes (1.0, or the NaN result). */
function trig(dst1: usize, dst2: usize, a: usize, cw: u32, mode: i32): u32 {
  const sig = sigAt(a), se = seAt(a);
  const c = classify(se, sig);
  const sign = se & 0x8000;
  const two = mode == T_SINCOS || mode == T_TAN;
  let flags: u32 = 0;
  if (c != C_NORMAL) {
    if (c == C_UNSUPPORTED || c == C_INF) {
      const f = invalid(dst1, cw);
      if (two) invalid(dst2, cw);
      return f;
    }
    if (isNaNClass(c)) {
      const f = propagateNaN1(dst1, se, sig, c, cw);
      if (two) propagateNaN1(dst2, se, sig, c, cw);
      return f;
    }
    if (c == C_ZERO) {
      if (mode == T_COS) store80(dst1, 0x3fff, INT_BIT);
      else storeZero(dst1, sign);
      if (two) store80(dst2, 0x3fff, INT_BIT);
      return 0;
    }
    flags = FE_DE;
    if ((cw & FE_DE) == 0) return flags;
  }
  unpack(se, sig);
  const e = uExp - EXP_BIAS;
  if (e >= 63) return flags | SW_C2;
  if (e < -68) {
    // |x| < 2^-68: the x87 returns sin x = tan x = x and cos x = 1 without rounding (PE set).
    if (mode != T_COS) {
      setX(sign, e, uSig, 0);
      flags |= roundX(dst1, cw);
    }
    if (mode == T_COS) store80(dst1, 0x3fff, INT_BIT);
    if (mode == T_SINCOS) store80(dst2, 0x3fff, INT_BIT);
    if (mode == T_TAN) store80(dst2, 0x3fff, INT_BIT);
    return flags | FE_PE;
  }
  reduce(e, uSig);
  const q = redQ;
  sinCos(xs, xe, xh, xl);
  if (mode == T_TAN) {
    if ((q & 1) == 0) xDiv(sinS, sinE, sinH, sinL, cosS, cosE, cosH, cosL);
    else xDiv(cosS ^ 0x8000, cosE, cosH, cosL, sinS, sinE, sinH, sinL);
    xs ^= sign;
    flags |= roundX(dst1, cw);
    store80(dst2, 0x3fff, INT_BIT);
    return flags;
  }
  if (mode != T_COS) {
    // sin x = sin r, cos r, −sin r, −cos r for q = 0..3; odd in x.
    if ((q & 1) == 0) setX(sinS, sinE, sinH, sinL);
    else setX(cosS, cosE, cosH, cosL);
    if ((q & 2) != 0) xs ^= 0x8000;
    xs ^= sign;
    flags |= roundX(dst1, cw);
  }
  if (mode != T_SIN) {
    // cos x = cos r, −sin r, −cos r, sin r; even in x.
    if ((q & 1) == 0) setX(cosS, cosE, cosH, cosL);
    else setX(sinS ^ 0x8000, sinE, sinH, sinL);
    if ((q & 2) != 0) xs ^= 0x8000;
    flags |= roundX(mode == T_COS ? dst1 : dst2, cw);
  }
  return flags;
}

/** dst = sin(a) (FSIN). Returns C2 (nothing written) when |a| >= 2^63. */
export function f80Sin(dst: usize, a: usize, cw: u32): u32 { return trig(dst, dst, a, cw, T_SIN); }

/** dst = cos(a) (FCOS). Returns C2 (nothing written) when |a| >= 2^63. */
export function f80Cos(dst: usize, a: usize, cw: u32): u32 { return trig(dst, dst, a, cw, T_COS); }

/** dstSin = sin(a), dstCos = cos(a) (FSINCOS: ST(1) = sin, ST(0) = cos after the push). Returns C2
 *  (nothing written) when |a| >= 2^63. NaN and invalid results go to both. */
export function f80SinCos(dstSin: usize, dstCos: usize, a: usize, cw: u32): u32 {
  return trig(dstSin, dstCos, a, cw, T_SINCOS);
}

/** dst = tan(a), dstPush = the value FPTAN pushes: 1.0, or the NaN result (invalid operand or NaN).
 *  Returns C2 (nothing written) when |a| >= 2^63. */
export function f80Ptan(dst: usize, dstPush: usize, a: usize, cw: u32): u32 {
  return trig(dst, dstPush, a, cw, T_TAN);
}

// ---- arctangent --------------------------------------------------------------------------------------

/** atan(z) for z = X in [0, 1]; result in X. */
function atanPos(): void {
  if (xe < -5) {
    // z < 1/32: atan z = z × Σ (−z²)^k / (2k+1).
    const zs = xs, ze = xe, zh = xh, zl = xl;
    xMul(0, ze, zh, zl, 0, ze, zh, zl);
    fixedFromX(xe, xh, xl);
    horner(fh, fl, RECIP_ODD, 0, 1, 13, true);
    xFromFixed(0, fh, fl);
    xMul(zs, ze, zh, zl, 0, xe, xh, xl);
    return;
  }
  // atan z = atan(c) + atan(u), c = j/16 nearest to z, u = (z − c) / (1 + z·c), |u| <= 1/32.
  fixedFromX(xe, xh, xl);
  const zh = fh, zl = fl;
  const j = (zh + (<u64>1 << 58)) >> 59;
  const ch = j << 59;
  // numerator z − c (signed), denominator 1 + z·c
  let ns: u32 = 0, nh: u64, nl: u64;
  if (zh >= ch) { nh = zh - ch; nl = zl; }
  else { nl = 0 - zl; nh = ch - zh - (zl != 0 ? 1 : 0); ns = 0x8000; }
  fMul(zh, zl, ch, 0);
  xFromFixed(0, fh, fl);
  xAdd(0, 0, INT_BIT, 0, 0, xe, xh, xl);
  const de = xe, dh = xh, dl = xl;
  xFromFixed(ns, nh, nl);
  xDiv(xs, xe, xh, xl, 0, de, dh, dl);
  const us = xs, ue = xe, uh = xh, ul = xl;
  xMul(0, ue, uh, ul, 0, ue, uh, ul);
  fixedFromX(xe, xh, xl);
  horner(fh, fl, RECIP_ODD, 0, 1, 13, true);
  xFromFixed(0, fh, fl);
  xMul(us, ue, uh, ul, 0, xe, xh, xl);
  fixedFromX(xe, xh, xl);
  const p = ATAN_J16 + (<usize>j << 4);
  const th = load<u64>(p), tl = load<u64>(p, 8);
  let rh: u64, rl: u64;
  if (xs == 0) { rl = tl + fl; rh = th + fh + (rl < tl ? 1 : 0); }
  else { rl = tl - fl; rh = th - fh - (tl < fl ? 1 : 0); }
  xFromFixed(0, rh, rl);
}

/** dst = arctan(y / x) with the quadrant of (x, y) (FPATAN: ST(1) = arctan(ST(1)/ST(0)), then pop).
 *  Zeros and infinities follow the SDM table (IEEE atan2); no invalid-operation cases besides
 *  NaN/unsupported operands. */
export function f80Patan(dst: usize, y: usize, x: usize, cw: u32): u32 {
  const ySig = sigAt(y), xSig = sigAt(x);
  const ySE = seAt(y), xSE = seAt(x);
  const cy = classify(ySE, ySig), cx = classify(xSE, xSig);
  const sy = ySE & 0x8000;
  const xneg = (xSE & 0x8000) != 0;
  let flags: u32 = 0;
  if (cy != C_NORMAL || cx != C_NORMAL) {
    const r = checkNaN2(dst, ySE, ySig, cy, xSE, xSig, cx, cw);
    if (r >= 0) return <u32>r;
    flags = cy == C_DENORMAL || cx == C_DENORMAL ? FE_DE : 0;
    if ((flags & ~cw) != 0) return flags;
    if (cy == C_ZERO) {
      if (!xneg) { storeZero(dst, sy); return flags; }
      return flags | roundConst(dst, sy, PI_EXP, PI_HI, PI_LO, cw);
    }
    if (cy == C_INF) {
      if (cx == C_INF) {
        if (xneg) return flags | roundConst(dst, sy, PI3_4_EXP, PI3_4_HI, PI3_4_LO, cw);
        return flags | roundConst(dst, sy, PI_4_EXP, PI_4_HI, PI_4_LO, cw);
      }
      return flags | roundConst(dst, sy, PI_2_EXP, PI_2_HI, PI_2_LO, cw);
    }
    if (cx == C_INF) {
      if (!xneg) { storeZero(dst, sy); return flags; }
      return flags | roundConst(dst, sy, PI_EXP, PI_HI, PI_LO, cw);
    }
    if (cx == C_ZERO) return flags | roundConst(dst, sy, PI_2_EXP, PI_2_HI, PI_2_LO, cw);
  }
  unpack(ySE, ySig);
  const ey = uExp - EXP_BIAS, my = uSig;
  unpack(xSE, xSig);
  const ex = uExp - EXP_BIAS, mx = uSig;
  const swap = ey > ex || (ey == ex && my > mx);
  if (swap) xDiv(0, ex, mx, 0, 0, ey, my, 0);
  else xDiv(0, ey, my, 0, 0, ex, mx, 0);
  atanPos();
  if (swap) xAdd(0, PI_2_EXP, PI_2_HI, PI_2_LO, xs ^ 0x8000, xe, xh, xl);
  if (xneg) xAdd(0, PI_EXP, PI_HI, PI_LO, xs ^ 0x8000, xe, xh, xl);
  xs ^= sy;
  return flags | roundX(dst, cw);
}

// ---- logarithms ----------------------------------------------------------------------------------------

/** X = 2·s·Σ s^(2k)/(2k+1) × log2(e) = log2((1+s)/(1−s)) for s = X, |s| <= 0.18. */
function log2Atanh(): void {
  const ss = xs, se = xe, sh = xh, sl = xl;
  xMul(0, se, sh, sl, 0, se, sh, sl);
  fixedFromX(xe, xh, xl);
  horner(fh, fl, RECIP_ODD, 0, 1, 26, false);
  xFromFixed(0, fh, fl);
  xMul(ss, se + 1, sh, sl, 0, xe, xh, xl);
  xMul(xs, xe, xh, xl, 0, LOG2E_EXP, LOG2E_HI, LOG2E_LO);
}

/** X = log2 of the positive X value. */
function log2X(): void {
  let k = xe;
  let fe = 0;
  const h = xh, l = xl;
  if (h > SQRT2_HI || (h == SQRT2_HI && l > SQRT2_LO)) { k++; fe = -1; }
  // s = (f − 1) / (f + 1) for f = (h:l) × 2^(fe − 127) in [√2/2, √2].
  xAdd(0, fe, h, l, 0, 0, INT_BIT, 0);
  const de = xe, dh = xh, dl = xl;
  xAdd(0, fe, h, l, 0x8000, 0, INT_BIT, 0);
  xDiv(xs, xe, xh, xl, 0, de, dh, dl);
  log2Atanh();
  const ls = xs, le = xe, lh = xh, ll = xl;
  xFromInt(k);
  xAdd(xs, xe, xh, xl, ls, le, lh, ll);
}

/** dst = y × log2(x) (FYL2X: ST(1) = ST(1) × log2(ST(0)), then pop). x < 0 → IE; x = ±0 → ZE
 *  (∓∞ by the sign of y), or IE if y is also ±0; 0 × ∞ combinations → IE. */
export function f80Yl2x(dst: usize, x: usize, y: usize, cw: u32): u32 {
  const xSig = sigAt(x), ySig = sigAt(y);
  const xSE = seAt(x), ySE = seAt(y);
  const cx = classify(xSE, xSig), cy = classify(ySE, ySig);
  const sy = ySE & 0x8000;
  let flags: u32 = 0;
  const r = checkNaN2(dst, xSE, xSig, cx, ySE, ySig, cy, cw);
  if (r >= 0) return <u32>r;
  if (cx != C_ZERO && (xSE & 0x8000) != 0) return invalid(dst, cw);
  if (cx == C_ZERO) {
    if (cy == C_ZERO) return invalid(dst, cw);
    if (cy == C_INF) { storeInf(dst, sy ^ 0x8000); return 0; }
    if ((cw & FE_ZE) != 0) storeInf(dst, sy ^ 0x8000);
    return FE_ZE;
  }
  if (cx == C_INF) {
    if (cy == C_ZERO) return invalid(dst, cw);
    flags = cy == C_DENORMAL ? FE_DE : 0;
    if ((flags & ~cw) != 0) return flags;
    storeInf(dst, sy);
    return flags;
  }
  const isOne = xSE == 0x3fff && xSig == INT_BIT;
  if (isOne && cy == C_INF) return invalid(dst, cw);
  flags = cx == C_DENORMAL || cy == C_DENORMAL ? FE_DE : 0;
  if ((flags & ~cw) != 0) return flags;
  unpack(xSE, xSig);
  const below1: u32 = uExp < EXP_BIAS ? 0x8000 : 0;
  if (isOne) { storeZero(dst, sy); return flags; }
  if (cy == C_ZERO) { storeZero(dst, sy ^ below1); return flags; }
  if (cy == C_INF) { storeInf(dst, sy ^ below1); return flags; }
  setX(0, uExp - EXP_BIAS, uSig, 0);
  log2X();
  const ls = xs, le = xe, lh = xh, ll = xl;
  unpack(ySE, ySig);
  xMul(sy, uExp - EXP_BIAS, uSig, 0, ls, le, lh, ll);
  return flags | roundX(dst, cw);
}

/** dst = y × log2(1 + x) (FYL2XP1, defined for |x| < 1 − √2/2; computed for any x > −1; for
 *  finite x <= −1 the x87 returns x with PE, and so does this). Signed zeros and infinities as in
 *  the SDM table; 0 × ∞ → IE. */
export function f80Yl2xp1(dst: usize, x: usize, y: usize, cw: u32): u32 {
  const xSig = sigAt(x), ySig = sigAt(y);
  const xSE = seAt(x), ySE = seAt(y);
  const cx = classify(xSE, xSig), cy = classify(ySE, ySig);
  const sx = xSE & 0x8000, sy = ySE & 0x8000;
  let flags: u32 = 0;
  const r = checkNaN2(dst, xSE, xSig, cx, ySE, ySig, cy, cw);
  if (r >= 0) return <u32>r;
  if (cx == C_INF) {
    if (sx != 0 || cy == C_ZERO) return invalid(dst, cw);
    flags = cy == C_DENORMAL ? FE_DE : 0;
    if ((flags & ~cw) != 0) return flags;
    storeInf(dst, sy);
    return flags;
  }
  if (cx == C_ZERO) {
    if (cy == C_INF) return invalid(dst, cw);
    flags = cy == C_DENORMAL ? FE_DE : 0;
    if ((flags & ~cw) != 0) return flags;
    storeZero(dst, sx ^ sy);
    return flags;
  }
  flags = cx == C_DENORMAL || cy == C_DENORMAL ? FE_DE : 0;
  if ((flags & ~cw) != 0) return flags;
  if (cy == C_ZERO) { storeZero(dst, sx ^ sy); return flags; }
  if (cy == C_INF) { storeInf(dst, sx ^ sy); return flags; }
  unpack(xSE, xSig);
  const ex = uExp - EXP_BIAS, mx = uSig;
  // 1 + x in [√2/2, √2] ⟺ x in [−0.2929, 0.4142]: log2(1+x) = 2·atanh(x / (2 + x)) / ln 2.
  const small = ex < -2 || (ex == -2 && mx <= (sx == 0 ? <u64>0xd413cccfe7799211 : <u64>0x95f619980c4336f7));
  if (small) {
    xAdd(sx, ex, mx, 0, 0, 1, INT_BIT, 0);
    xDiv(sx, ex, mx, 0, xs, xe, xh, xl);
    log2Atanh();
  } else {
    xAdd(sx, ex, mx, 0, 0, 0, INT_BIT, 0);
    if (xs != 0 || xh == 0) {
      // x <= −1: the x87 returns x itself (with PE).
      store80(dst, xSE, xSig);
      return flags | FE_PE;
    }
    log2X();
  }
  const ls = xs, le = xe, lh = xh, ll = xl;
  unpack(ySE, ySig);
  xMul(sy, uExp - EXP_BIAS, uSig, 0, ls, le, lh, ll);
  return flags | roundX(dst, cw);
}

// ---- 2^x − 1 ----------------------------------------------------------------------------------------

/** dst = 2^a − 1 (F2XM1), for −1 <= a <= 1. −∞ → −1, +∞ → +∞, ±0 → ±0. Outside [−1, 1] the x87
 *  leaves the operand unchanged and raises PE; so does this. */
export function f80F2xm1(dst: usize, a: usize, cw: u32): u32 {
  const sig = sigAt(a), se = seAt(a);
  const c = classify(se, sig);
  const sign = se & 0x8000;
  let flags: u32 = 0;
  if (c != C_NORMAL) {
    if (c == C_UNSUPPORTED) return invalid(dst, cw);
    if (isNaNClass(c)) return propagateNaN1(dst, se, sig, c, cw);
    if (c == C_ZERO) { storeZero(dst, sign); return 0; }
    if (c == C_INF) {
      if (sign != 0) store80(dst, 0xbfff, INT_BIT);
      else storeInf(dst, 0);
      return 0;
    }
    flags = FE_DE;
    if ((cw & FE_DE) == 0) return flags;
  }
  unpack(se, sig);
  const e = uExp - EXP_BIAS;
  if (e > 0 || (e == 0 && uSig != INT_BIT)) { store80(dst, se, sig); return flags | FE_PE; }
  // w = a·ln 2; 2^a − 1 = e^w − 1 = w × Σ w^k / (k+1)!
  xMul(sign, e, uSig, 0, 0, LN2_EXP, LN2_HI, LN2_LO);
  const ws = xs, we = xe, wh = xh, wl = xl;
  fixedFromX(we, wh, wl);
  horner(fh, fl, INV_FACT, 1, 1, 31, ws != 0);
  xFromFixed(0, fh, fl);
  xMul(ws, we, wh, wl, 0, xe, xh, xl);
  return flags | roundX(dst, cw);
}
