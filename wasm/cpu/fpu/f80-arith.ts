// x87 basic arithmetic on 80-bit values: FADD/FSUB/FMUL/FDIV/FSQRT (rounded to PC and RC),
// FPREM/FPREM1, FRNDINT, FSCALE, FXTRACT, FCOM/FUCOM/FTST and FXAM (SDM Vol. 2 for each).
// Conventions (see float80.ts): pointers to 10-byte register-format values; dst may alias an
// operand; the return value holds the exception flags raised plus condition codes in status-word
// positions. With an unmasked IE, ZE or DE the destination is left unchanged.
import {
  FE_IE, FE_DE, FE_ZE, FE_PE, FE_UE, SW_C0, SW_C1, SW_C2, SW_C3,
  C_ZERO, C_NORMAL, C_DENORMAL, C_INF, C_QNAN, C_SNAN, C_UNSUPPORTED, EXP_BIAS, INT_BIT, RC_DOWN,
  sigAt, seAt, store80, rcOf, precOf, classify, isNaNClass, unpack, uSig, uExp, mul64, wHi, wLo,
  shr128jam, udiv128, wRem, roundInc, roundPack, roundOperand, invalid, propagateNaN1, checkNaN2,
  storeInf, storeZero, storeCanonical,
} from './f80-base';

/** Masked denormal-operand exception: DE is raised and the operation continues; unmasked: the
 *  caller returns without writing. Returns DE or 0. */
@inline function denormalFlag(ca: i32, cb: i32): u32 {
  return ca == C_DENORMAL || cb == C_DENORMAL ? FE_DE : 0;
}

// ---- FADD / FSUB --------------------------------------------------------------------------------

/** dst = a + b (FADD). */
export function f80Add(dst: usize, a: usize, b: usize, cw: u32): u32 {
  return addSub(dst, a, b, cw, 0);
}

/** dst = a − b (FSUB; FSUBR is f80Sub(dst, b, a)). */
export function f80Sub(dst: usize, a: usize, b: usize, cw: u32): u32 {
  return addSub(dst, a, b, cw, 0x8000);
}

function addSub(dst: usize, a: usize, b: usize, cw: u32, negB: u32): u32 {
  const aSig = sigAt(a), bSig = sigAt(b);
  const aSE = seAt(a), bSE0 = seAt(b);
  const ca = classify(aSE, aSig), cb = classify(bSE0, bSig);
  const bSE = bSE0 ^ negB;
  let flags: u32 = 0;
  if (ca != C_NORMAL || cb != C_NORMAL) {
    if (ca >= C_INF || cb >= C_INF) {
      const r = checkNaN2(dst, aSE, aSig, ca, bSE0, bSig, cb, cw);
      if (r >= 0) return <u32>r;
      if (ca == C_INF && cb == C_INF && ((aSE ^ bSE) & 0x8000) != 0) return invalid(dst, cw);
      flags = denormalFlag(ca, cb);
      if ((flags & ~cw) != 0) return flags;
      storeInf(dst, (ca == C_INF ? aSE : bSE) & 0x8000);
      return flags;
    }
    flags = denormalFlag(ca, cb);
    if ((flags & ~cw) != 0) return flags;
    if (ca == C_ZERO) {
      if (cb == C_ZERO) {
        // (+0) + (−0) = +0, or −0 when rounding down; equal signs keep the sign (SDM Vol. 1, 4.8.3.2).
        let s = aSE & bSE & 0x8000;
        if (((aSE ^ bSE) & 0x8000) != 0 && rcOf(cw) == RC_DOWN) s = 0x8000;
        storeZero(dst, s);
        return flags;
      }
      return flags | roundOperand(dst, bSE, bSig, precOf(cw), cw);
    }
    if (cb == C_ZERO) return flags | roundOperand(dst, aSE, aSig, precOf(cw), cw);
  }
  unpack(aSE, aSig);
  let ea = uExp, ma = uSig;
  unpack(bSE, bSig);
  let eb = uExp, mb = uSig;
  let sa = aSE & 0x8000, sb = bSE & 0x8000;
  if (eb > ea || (eb == ea && mb > ma)) {
    let t = ea; ea = eb; eb = t;
    let m = ma; ma = mb; mb = m;
    let s = sa; sa = sb; sb = s;
  }
  const d = ea - eb;
  let bh: u64, bl: u64;
  if (d == 0) { bh = mb; bl = 0; }
  else if (d < 64) { bh = mb >> <u64>d; bl = mb << <u64>(64 - d); }
  else { shr128jam(mb, 0, d); bh = wHi; bl = wLo; }
  let hi: u64, lo: u64;
  if (sa == sb) {
    lo = bl;
    hi = ma + bh;
    if (hi < ma) {
      lo = (lo >> 1) | (hi << 63) | (lo & 1);
      hi = (hi >> 1) | INT_BIT;
      ea++;
    }
  } else {
    lo = 0 - bl;
    hi = ma - bh - (bl != 0 ? 1 : 0);
    if (hi == 0 && lo == 0) {
      storeZero(dst, rcOf(cw) == RC_DOWN ? 0x8000 : 0);
      return flags;
    }
    if (hi == 0) { hi = lo; lo = 0; ea -= 64; }
    const lz = <i32>clz(hi);
    if (lz != 0) {
      hi = (hi << lz) | (lo >> (64 - lz));
      lo <<= lz;
      ea -= lz;
    }
  }
  return flags | roundPack(dst, sa, ea, hi, lo, precOf(cw), cw);
}

// ---- FMUL ---------------------------------------------------------------------------------------

/** dst = a × b (FMUL). */
export function f80Mul(dst: usize, a: usize, b: usize, cw: u32): u32 {
  const aSig = sigAt(a), bSig = sigAt(b);
  const aSE = seAt(a), bSE = seAt(b);
  const ca = classify(aSE, aSig), cb = classify(bSE, bSig);
  const sign = (aSE ^ bSE) & 0x8000;
  let flags: u32 = 0;
  if (ca != C_NORMAL || cb != C_NORMAL) {
    const r = checkNaN2(dst, aSE, aSig, ca, bSE, bSig, cb, cw);
    if (r >= 0) return <u32>r;
    if ((ca == C_INF && cb == C_ZERO) || (ca == C_ZERO && cb == C_INF)) return invalid(dst, cw);
    flags = denormalFlag(ca, cb);
    if ((flags & ~cw) != 0) return flags;
    if (ca == C_INF || cb == C_INF) { storeInf(dst, sign); return flags; }
    if (ca == C_ZERO || cb == C_ZERO) { storeZero(dst, sign); return flags; }
  }
  unpack(aSE, aSig);
  const ea = uExp, ma = uSig;
  unpack(bSE, bSig);
  let exp = ea + uExp - EXP_BIAS + 1;
  mul64(ma, uSig);
  let hi = wHi, lo = wLo;
  if ((hi & INT_BIT) == 0) {
    hi = (hi << 1) | (lo >> 63);
    lo <<= 1;
    exp--;
  }
  return flags | roundPack(dst, sign, exp, hi, lo, precOf(cw), cw);
}

// ---- FDIV ---------------------------------------------------------------------------------------

/** dst = a / b (FDIV; FDIVR is f80Div(dst, b, a)). */
export function f80Div(dst: usize, a: usize, b: usize, cw: u32): u32 {
  const aSig = sigAt(a), bSig = sigAt(b);
  const aSE = seAt(a), bSE = seAt(b);
  const ca = classify(aSE, aSig), cb = classify(bSE, bSig);
  const sign = (aSE ^ bSE) & 0x8000;
  let flags: u32 = 0;
  if (ca != C_NORMAL || cb != C_NORMAL) {
    const r = checkNaN2(dst, aSE, aSig, ca, bSE, bSig, cb, cw);
    if (r >= 0) return <u32>r;
    if ((ca == C_INF && cb == C_INF) || (ca == C_ZERO && cb == C_ZERO)) return invalid(dst, cw);
    if (cb == C_ZERO && ca != C_INF) {
      // Division of a finite non-zero value by zero: ZE (a denormal dividend raises no DE).
      if ((cw & FE_ZE) != 0) storeInf(dst, sign);
      return FE_ZE;
    }
    flags = denormalFlag(ca, cb);
    if ((flags & ~cw) != 0) return flags;
    if (ca == C_INF || cb == C_ZERO) { storeInf(dst, sign); return flags; }
    if (cb == C_INF || ca == C_ZERO) { storeZero(dst, sign); return flags; }
  }
  unpack(aSE, aSig);
  const ea = uExp, ma = uSig;
  unpack(bSE, bSig);
  const eb = uExp, mb = uSig;
  let exp = ea - eb + EXP_BIAS;
  let q: u64;
  if (ma >= mb) {
    q = udiv128(ma >> 1, ma << 63, mb);
  } else {
    q = udiv128(ma, 0, mb);
    exp--;
  }
  // Rounding bits from the remainder r < mb: compare r with mb/2 (as r against mb − r).
  const r = wRem;
  let lo: u64 = 0;
  if (r != 0) {
    const rest = mb - r;
    lo = r > rest ? 0x8000000000000001 : r == rest ? 0x8000000000000000 : 1;
  }
  return flags | roundPack(dst, sign, exp, q, lo, precOf(cw), cw);
}

// ---- FSQRT --------------------------------------------------------------------------------------

let sqRoot: u64 = 0;
let sqRemHi: u64 = 0;
let sqRemLo: u64 = 0;

/** sqRoot = floor(sqrt(mh:ml)) for 2^126 <= mh:ml < 2^128, with the remainder in sqRemHi:sqRemLo.
 *  A double-precision estimate, one Newton correction, then an exact fix-up. */
function isqrt128(mh: u64, ml: u64): void {
  const f = <f64>mh * 18446744073709551616.0 + <f64>ml;
  const s = Math.sqrt(f);
  let r: u64 = s >= 18446744073709549568.0 ? 0xfffffffffffff800 : <u64>s;
  for (let iter = 0; iter < 1; iter++) {
    mul64(r, r);
    const dl = ml - wLo;
    const dh = mh - wHi - (ml < wLo ? 1 : 0);
    const d = <f64><i64>dh * 18446744073709551616.0 + <f64>dl;
    const c = Math.round(d / (2.0 * <f64>r));
    if (c == 0) break;
    if (c > 0) {
      const nr = r + <u64>c;
      r = nr < r ? 0xffffffffffffffff : nr;
    } else {
      const dc = <u64>(-c);
      r = r - dc < 0x8000000000000000 || dc > r ? 0x8000000000000000 : r - dc;
    }
  }
  // Exact fix-up: r*r <= M < (r+1)^2.
  for (;;) {
    mul64(r, r);
    let rl = ml - wLo;
    let rh = mh - wHi - (ml < wLo ? 1 : 0);
    if (<i64>rh < 0) { r--; continue; }
    // (r+1)^2 <= M  <=>  M - r^2 >= 2r + 1
    const tl = (r << 1) | 1, th = r >> 63;
    if (r != 0xffffffffffffffff && (rh > th || (rh == th && rl >= tl))) { r++; continue; }
    sqRoot = r;
    sqRemHi = rh;
    sqRemLo = rl;
    return;
  }
}

/** dst = sqrt(a) (FSQRT). */
export function f80Sqrt(dst: usize, a: usize, cw: u32): u32 {
  const sig = sigAt(a), se = seAt(a);
  const c = classify(se, sig);
  const sign = se & 0x8000;
  let flags: u32 = 0;
  if (c != C_NORMAL) {
    if (c == C_UNSUPPORTED) return invalid(dst, cw);
    if (isNaNClass(c)) return propagateNaN1(dst, se, sig, c, cw);
    if (c == C_ZERO) { storeZero(dst, sign); return 0; }
    if (sign != 0) return invalid(dst, cw);
    if (c == C_INF) { storeInf(dst, 0); return 0; }
    flags = FE_DE;
    if ((cw & FE_DE) == 0) return flags;
  } else if (sign != 0) {
    return invalid(dst, cw);
  }
  unpack(se, sig);
  const e = uExp - EXP_BIAS;
  if ((e & 1) != 0) isqrt128(uSig, 0);
  else isqrt128(uSig >> 1, uSig << 63);
  const r = sqRoot;
  let lo: u64 = 0;
  if ((sqRemHi | sqRemLo) != 0) {
    // sqrt(M) > r + 1/2  <=>  M - r^2 > r (never exactly half).
    lo = sqRemHi != 0 || sqRemLo > r ? 0x8000000000000001 : 1;
  }
  return flags | roundPack(dst, 0, (e >> 1) + EXP_BIAS, r, lo, precOf(cw), cw);
}

// ---- FPREM / FPREM1 -----------------------------------------------------------------------------

/**
 * Partial remainder (FPREM, ieee = false: quotient truncated; FPREM1, ieee = true: quotient
 * rounded to nearest-even). dst = a − q·b, exactly.
 *
 * Returns the exception flags plus, in status-word positions, C2 = 1 when the reduction is
 * incomplete (exponent difference D >= 64: the x87 then reduces by b·2^(D−N) with
 * N = 32 + (D mod 32), measured on hardware, and clears C0/C1/C3), otherwise C2 = 0 and the three
 * low quotient bits as C0 = q2, C3 = q1, C1 = q0.
 */
export function f80Rem(dst: usize, a: usize, b: usize, cw: u32, ieee: bool): u32 {
  const aSig = sigAt(a), bSig = sigAt(b);
  const aSE = seAt(a), bSE = seAt(b);
  const ca = classify(aSE, aSig), cb = classify(bSE, bSig);
  let sign = aSE & 0x8000;
  let flags: u32 = 0;
  if (ca != C_NORMAL || cb != C_NORMAL) {
    const r = checkNaN2(dst, aSE, aSig, ca, bSE, bSig, cb, cw);
    if (r >= 0) return <u32>r;
    if (ca == C_INF || cb == C_ZERO) return invalid(dst, cw);
    flags = denormalFlag(ca, cb);
    if ((flags & ~cw) != 0) return flags;
    if (ca == C_ZERO) { storeZero(dst, sign); return flags; }
    if (cb == C_INF) { storeCanonical(dst, aSE, aSig); return flags; }
  }
  unpack(aSE, aSig);
  const ea = uExp, ma = uSig;
  unpack(bSE, bSig);
  const eb = uExp, mb = uSig;
  const d = ea - eb;
  let r: u64, re: i32, q: u64 = 0;
  let cc: u32 = 0;
  if (d >= 64) {
    const n = 32 + (d & 31);
    // r = (ma · 2^n) mod mb, at the exponent of b · 2^(d − n).
    const r0 = ma >= mb ? ma - mb : ma;
    udiv128(r0 >> <u64>(64 - n), r0 << <u64>n, mb);
    r = wRem;
    re = eb + d - n;
    cc = SW_C2;
  } else {
    if (d < 0) {
      r = ma;
      re = ea;
      if (ieee && d == -1 && ma > mb) {
        // |a| > |b|/2: q = 1, r = |b| − |a| (in units of a: 2·mb − ma).
        r = mb - (ma - mb);
        sign ^= 0x8000;
        q = 1;
      }
    } else {
      let r0 = ma;
      let qh: u64 = 0;
      if (r0 >= mb) { r0 -= mb; qh = 1; }
      if (d == 0) {
        q = qh;
        r = r0;
      } else {
        q = udiv128(r0 >> <u64>(64 - d), r0 << <u64>d, mb) | (qh << <u64>d);
        r = wRem;
      }
      re = eb;
      if (ieee) {
        const half = mb >> 1;
        if (r > half || (r == half && (mb & 1) == 0 && (q & 1) != 0)) {
          r = mb - r;
          sign ^= 0x8000;
          q++;
        }
      }
    }
    cc = ((q & 4) != 0 ? SW_C0 : 0) | ((q & 2) != 0 ? SW_C3 : 0) | ((q & 1) != 0 ? SW_C1 : 0);
  }
  if (r == 0) {
    storeZero(dst, aSE & 0x8000);
    return flags | cc;
  }
  const lz = <i32>clz(r);
  return flags | cc | roundPack(dst, sign, re - lz, r << <u64>lz, 0, 64, cw);
}

// ---- FRNDINT ------------------------------------------------------------------------------------

/** dst = a rounded to an integer per RC (FRNDINT; PC is ignored). */
export function f80RoundToInt(dst: usize, a: usize, cw: u32): u32 {
  const sig = sigAt(a), se = seAt(a);
  const c = classify(se, sig);
  const sign = se & 0x8000;
  let flags: u32 = 0;
  if (c != C_NORMAL) {
    if (c == C_UNSUPPORTED) return invalid(dst, cw);
    if (isNaNClass(c)) return propagateNaN1(dst, se, sig, c, cw);
    if (c == C_ZERO || c == C_INF) { store80(dst, se, sig); return 0; }
    flags = FE_DE;
    if ((cw & FE_DE) == 0) return flags;
  }
  unpack(se, sig);
  const e = uExp - EXP_BIAS;
  const m = uSig;
  if (e >= 63) { store80(dst, sign | <u32>uExp, m); return flags; }
  let ip: u64, rbit: bool, sticky: bool;
  if (e < 0) {
    ip = 0;
    rbit = e == -1;
    sticky = e == -1 ? (m << 1) != 0 : true;
  } else {
    const sh = <u64>(63 - e);
    ip = m >> sh;
    const frac = m << (64 - sh);
    rbit = (frac >> 63) != 0;
    sticky = (frac << 1) != 0;
  }
  if (!rbit && !sticky) { store80(dst, sign | <u32>uExp, m); return flags; }
  flags |= FE_PE;
  if (roundInc(rcOf(cw), sign, (ip & 1) != 0, rbit, sticky)) { ip++; flags |= SW_C1; }
  if (ip == 0) { storeZero(dst, sign); return flags; }
  const lz = <i32>clz(ip);
  store80(dst, sign | <u32>(EXP_BIAS + 63 - lz), ip << <u64>lz);
  return flags;
}

// ---- FSCALE -------------------------------------------------------------------------------------

/** dst = a × 2^trunc(b) (FSCALE). The result is exact unless it overflows or underflows. */
export function f80Scale(dst: usize, a: usize, b: usize, cw: u32): u32 {
  const aSig = sigAt(a), bSig = sigAt(b);
  const aSE = seAt(a), bSE = seAt(b);
  const ca = classify(aSE, aSig), cb = classify(bSE, bSig);
  const sign = aSE & 0x8000;
  let flags: u32 = 0;
  if (ca != C_NORMAL || cb != C_NORMAL) {
    const r = checkNaN2(dst, aSE, aSig, ca, bSE, bSig, cb, cw);
    if (r >= 0) return <u32>r;
    if (cb == C_INF) {
      const neg = (bSE & 0x8000) != 0;
      // 0 · 2^+∞ and ∞ · 2^−∞ are invalid; otherwise x · 2^+∞ = ∞, x · 2^−∞ = 0.
      if ((ca == C_ZERO && !neg) || (ca == C_INF && neg)) return invalid(dst, cw);
      flags = denormalFlag(ca, cb);
      if ((flags & ~cw) != 0) return flags;
      if (ca == C_ZERO || neg) storeZero(dst, sign);
      else storeInf(dst, sign);
      return flags;
    }
    flags = denormalFlag(ca, cb);
    if ((flags & ~cw) != 0) return flags;
    if (ca == C_ZERO || ca == C_INF) { store80(dst, aSE, aSig); return flags; }
    if (cb == C_ZERO) { storeCanonical(dst, aSE, aSig); return flags; }
  }
  // n = trunc(b), clamped far outside the representable range.
  let n: i32 = 0;
  if (cb != C_ZERO) {
    unpack(bSE, bSig);
    const e = uExp - EXP_BIAS;
    if (e >= 0) {
      const mag = e >= 20 ? 0x100000 : <i32>(uSig >> <u64>(63 - e));
      n = (bSE & 0x8000) != 0 ? -mag : mag;
    }
  }
  unpack(aSE, aSig);
  return flags | roundPack(dst, sign, uExp + n, uSig, 0, 64, cw);
}

// ---- FXTRACT ------------------------------------------------------------------------------------

/** Splits a into its significand (dstSig: same sign, exponent 0) and unbiased exponent (dstExp,
 *  as a value) (FXTRACT: ST(0) = significand, ST(1) = exponent). Zero → ZE, exponent −∞;
 *  ±∞ → ±∞ and +∞. With an unmasked exception nothing is written (and FXTRACT pushes nothing). */
export function f80Xtract(dstSig: usize, dstExp: usize, a: usize, cw: u32): u32 {
  const sig = sigAt(a), se = seAt(a);
  const c = classify(se, sig);
  const sign = se & 0x8000;
  let flags: u32 = 0;
  if (c != C_NORMAL) {
    if (c == C_UNSUPPORTED) {
      if ((cw & FE_IE) == 0) return FE_IE;
      invalid(dstExp, cw);
      return invalid(dstSig, cw);
    }
    if (isNaNClass(c)) {
      if (c == C_SNAN && (cw & FE_IE) == 0) return FE_IE;
      propagateNaN1(dstExp, se, sig, c, cw);
      return propagateNaN1(dstSig, se, sig, c, cw);
    }
    if (c == C_ZERO) {
      if ((cw & FE_ZE) == 0) return FE_ZE;
      storeInf(dstExp, 0x8000);
      storeZero(dstSig, sign);
      return FE_ZE;
    }
    if (c == C_INF) {
      storeInf(dstExp, 0);
      storeInf(dstSig, sign);
      return 0;
    }
    flags = FE_DE;
    if ((cw & FE_DE) == 0) return flags;
  }
  unpack(se, sig);
  const m = uSig;
  const e = uExp - EXP_BIAS;
  storeIntValue(dstExp, e);
  store80(dstSig, sign | <u32>EXP_BIAS, m);
  return flags;
}

/** Stores a small integer exactly. */
export function storeIntValue(dst: usize, v: i32): void {
  if (v == 0) { storeZero(dst, 0); return; }
  const s: u32 = v < 0 ? 0x8000 : 0;
  const mag = <u64>(v < 0 ? -<i64>v : <i64>v);
  const lz = <i32>clz(mag);
  store80(dst, s | <u32>(EXP_BIAS + 63 - lz), mag << <u64>lz);
}

// ---- comparisons and classification -------------------------------------------------------------

/** f80Compare relation codes (bits 0-1) and flags. */
export const CMP_LESS: i32 = 0;
export const CMP_EQUAL: i32 = 1;
export const CMP_GREATER: i32 = 2;
export const CMP_UNORDERED: i32 = 3;
/** An operand is an SNaN or an unsupported encoding: IE for every compare (FCOM and FUCOM). */
export const CMP_SIGNALING: i32 = 4;
/** An operand is a QNaN (and none signals): IE only for the ordered compares FCOM/FCOMI/FICOM/FTST. */
export const CMP_QNAN: i32 = 8;
/** An operand is a denormal and the comparison is ordered: DE. */
export const CMP_DENORMAL: i32 = 16;

/**
 * Compares a with b (FCOM/FUCOM/FCOMI/FUCOMI/FTST/FICOM semantics). Returns the relation in
 * bits 0-1 (CMP_LESS a < b, CMP_EQUAL, CMP_GREATER a > b, CMP_UNORDERED) ORed with
 * CMP_SIGNALING / CMP_QNAN / CMP_DENORMAL; `f80CompareStatus` turns it into status-word bits.
 * +0 equals −0; denormals and pseudo-denormals compare by value.
 */
export function f80Compare(a: usize, b: usize): i32 {
  const aSig = sigAt(a), bSig = sigAt(b);
  const aSE = seAt(a), bSE = seAt(b);
  const ca = classify(aSE, aSig), cb = classify(bSE, bSig);
  if (ca == C_UNSUPPORTED || cb == C_UNSUPPORTED || ca == C_SNAN || cb == C_SNAN) {
    return CMP_UNORDERED | CMP_SIGNALING;
  }
  if (ca == C_QNAN || cb == C_QNAN) return CMP_UNORDERED | CMP_QNAN;
  const den = ca == C_DENORMAL || cb == C_DENORMAL ? CMP_DENORMAL : 0;
  if (ca == C_ZERO && cb == C_ZERO) return CMP_EQUAL | den;
  const sa = (aSE & 0x8000) != 0, sb = (bSE & 0x8000) != 0;
  if (ca == C_ZERO) return (sb ? CMP_GREATER : CMP_LESS) | den;
  if (cb == C_ZERO) return (sa ? CMP_LESS : CMP_GREATER) | den;
  if (sa != sb) return (sa ? CMP_LESS : CMP_GREATER) | den;
  // Same sign: compare magnitudes (infinities have the largest exponent).
  unpack(aSE, aSig);
  const ea = uExp, ma = uSig;
  unpack(bSE, bSig);
  let rel: i32;
  if (ea == uExp && ma == uSig) rel = CMP_EQUAL;
  else {
    const aBigger = ea > uExp || (ea == uExp && ma > uSig);
    rel = aBigger != sa ? CMP_GREATER : CMP_LESS;
  }
  return rel | den;
}

/** Status-word bits of a compare: C3/C2/C0 = 000 a > b, 001 a < b, 100 equal, 111 unordered
 *  (C1 = 0), plus IE/DE. `ordered` selects FCOM/FCOMI/FTST/FICOM (IE on QNaN) over FUCOM. */
export function f80CompareStatus(code: i32, ordered: bool): u32 {
  let sw: u32;
  switch (code & 3) {
    case CMP_LESS: sw = SW_C0; break;
    case CMP_EQUAL: sw = SW_C3; break;
    case CMP_GREATER: sw = 0; break;
    default: sw = SW_C3 | SW_C2 | SW_C0; break;
  }
  if ((code & CMP_SIGNALING) != 0 || ((code & CMP_QNAN) != 0 && ordered)) sw |= FE_IE;
  if ((code & CMP_DENORMAL) != 0) sw |= FE_DE;
  return sw;
}

/** FXAM: C3/C2/C0 class code and C1 = sign, in status-word positions (empty registers are the
 *  caller's business: C3/C2/C0 = 101). Unsupported 000, NaN 001, normal 010, ∞ 011, zero 100,
 *  denormal (and pseudo-denormal) 110. */
export function f80Examine(a: usize): u32 {
  const sig = sigAt(a), se = seAt(a);
  const sw: u32 = (se & 0x8000) != 0 ? SW_C1 : 0;
  switch (classify(se, sig)) {
    case C_UNSUPPORTED: return sw;
    case C_QNAN:
    case C_SNAN: return sw | SW_C0;
    case C_NORMAL: return sw | SW_C2;
    case C_INF: return sw | SW_C2 | SW_C0;
    case C_ZERO: return sw | SW_C3;
    default: return sw | SW_C3 | SW_C2;
  }
}
