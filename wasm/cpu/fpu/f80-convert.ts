// Conversions between the 80-bit register format and memory formats: single/double precision
// (FLD/FST m32/m64), integers (FILD, FIST/FISTP, FISTTP), packed BCD (FBLD, FBSTP), and the
// constants FLD1/FLDL2T/FLDL2E/FLDPI/FLDLG2/FLDLN2/FLDZ. SDM Vol. 1, 4.2, 4.7, 4.8.3, 8.3.8;
// Vol. 2 for each instruction.
import {
  FE_IE, FE_DE, FE_OE, FE_UE, FE_PE, SW_C1, C_ZERO, C_DENORMAL, C_INF, C_QNAN, C_SNAN,
  C_UNSUPPORTED, EXP_BIAS, INT_BIT, QUIET_BIT, RC_NEAREST, RC_UP, RC_DOWN, RC_ZERO,
  sigAt, seAt, store80, rcOf, classify, unpack, uSig, uExp, shr128jam, wHi, wLo, roundInc,
  roundSig, rHi, rInexact, rInc, rCarry, storeZero,
} from './f80-base';

// ---- loads: FLD m32 / m64 -----------------------------------------------------------------------

/**
 * dst = the single-precision value with bit pattern `bits` (FLD m32). Exact. SNaN → IE and
 * quieted (unmasked IE: dst not written); denormal → DE, and the value is still delivered (the
 * x87 loads it even with DE unmasked).
 */
export function f80FromF32Bits(dst: usize, bits: u32, cw: u32 = 0x37f): u32 {
  return fromIEEE(dst, <u64>bits, 23, 8, cw);
}

/** dst = the double-precision value with bit pattern hi:lo (FLD m64); as f80FromF32Bits. */
export function f80FromF64Bits(dst: usize, lo: u32, hi: u32, cw: u32 = 0x37f): u32 {
  return fromIEEE(dst, (<u64>hi << 32) | <u64>lo, 52, 11, cw);
}

/** FLD m32 from memory at src. */
export function f80LoadF32(dst: usize, src: usize, cw: u32 = 0x37f): u32 {
  return fromIEEE(dst, <u64>load<u32>(src), 23, 8, cw);
}

/** FLD m64 from memory at src. */
export function f80LoadF64(dst: usize, src: usize, cw: u32 = 0x37f): u32 {
  return fromIEEE(dst, load<u64>(src), 52, 11, cw);
}

function fromIEEE(dst: usize, bits: u64, fracBits: i32, expBits: i32, cw: u32): u32 {
  const fb = <u64>fracBits;
  const expMax = (1 << expBits) - 1;
  const bias = (1 << (expBits - 1)) - 1;
  const sign: u32 = ((bits >> (fb + <u64>expBits)) & 1) != 0 ? 0x8000 : 0;
  const e = <i32>((bits >> fb) & <u64>expMax);
  const frac = bits & ((<u64>1 << fb) - 1);
  if (e == expMax) {
    if (frac == 0) { store80(dst, sign | 0x7fff, INT_BIT); return 0; }
    const sig = INT_BIT | (frac << (63 - fb));
    if ((sig & QUIET_BIT) == 0) {
      if ((cw & FE_IE) == 0) return FE_IE;
      store80(dst, sign | 0x7fff, sig | QUIET_BIT);
      return FE_IE;
    }
    store80(dst, sign | 0x7fff, sig);
    return 0;
  }
  if (e == 0) {
    if (frac == 0) { storeZero(dst, sign); return 0; }
    const lz = <i32>clz(frac);
    // frac × 2^(1 − bias − fracBits), normalized.
    store80(dst, sign | <u32>(EXP_BIAS + 63 - lz + 1 - bias - fracBits), frac << <u64>lz);
    return FE_DE;
  }
  store80(dst, sign | <u32>(e - bias + EXP_BIAS), INT_BIT | (frac << (63 - fb)));
  return 0;
}

// ---- stores: FST m32 / m64 ----------------------------------------------------------------------

/** Set on the internal result of toIEEE when nothing must be stored (unmasked exception). */
const NO_STORE: u32 = 0x10000;
let ieeeBits: u64 = 0;

/**
 * Converts src to single precision per RC (PC is ignored) and stores the 4 bytes at out (FST m32).
 * Flags: IE for SNaN (quieted) and unsupported encodings (stores the indefinite), OE/UE/PE and C1.
 * Masked overflow stores ∞ or the largest finite value per RC; masked underflow a denormal or zero
 * (UE only if also inexact). Nothing is stored on an unmasked IE, OE or UE (OE/UE are then raised
 * alone, without PE). A denormal source raises no DE.
 */
export function f80ToF32Bits(src: usize, cw: u32, out: usize): u32 {
  const f = toIEEE(seAt(src), sigAt(src), cw, 23, 8);
  if ((f & NO_STORE) == 0) store<u32>(out, <u32>ieeeBits);
  return f & ~NO_STORE;
}

/** As f80ToF32Bits, to double precision (8 bytes at out; FST m64). */
export function f80ToF64Bits(src: usize, cw: u32, out: usize): u32 {
  const f = toIEEE(seAt(src), sigAt(src), cw, 52, 11);
  if ((f & NO_STORE) == 0) store<u64>(out, ieeeBits);
  return f & ~NO_STORE;
}

function toIEEE(se: u32, sig: u64, cw: u32, fracBits: i32, expBits: i32): u32 {
  const fb = <u64>fracBits;
  const signBit: u64 = (se & 0x8000) != 0 ? <u64>1 << (fb + <u64>expBits) : 0;
  const expAll: u64 = ((<u64>1 << <u64>expBits) - 1) << fb;
  const fracMask: u64 = (<u64>1 << fb) - 1;
  const c = classify(se, sig);
  switch (c) {
    case C_ZERO: ieeeBits = signBit; return 0;
    case C_INF: ieeeBits = signBit | expAll; return 0;
    case C_QNAN:
    case C_SNAN: {
      if (c == C_SNAN && (cw & FE_IE) == 0) return FE_IE | NO_STORE;
      ieeeBits = signBit | expAll | (((sig | QUIET_BIT) >> (63 - fb)) & fracMask);
      return c == C_SNAN ? FE_IE : 0;
    }
    case C_UNSUPPORTED: {
      if ((cw & FE_IE) == 0) return FE_IE | NO_STORE;
      ieeeBits = (<u64>1 << (fb + <u64>expBits)) | expAll | (<u64>1 << (fb - 1));
      return FE_IE;
    }
    default: break;
  }
  const rc = rcOf(cw);
  const sign = se & 0x8000;
  unpack(se, sig);
  const e = uExp - EXP_BIAS;
  const m = uSig;
  const bias = (1 << (expBits - 1)) - 1;
  const emin = 1 - bias;
  const shift = <u64>(63 - fracBits);
  const mask: u64 = (<u64>1 << shift) - 1;
  if (e >= emin) {
    roundSig(sign, m, 0, mask, rc);
    const e2 = rCarry ? e + 1 : e;
    if (e2 > bias) {
      if ((cw & FE_OE) == 0) return FE_OE | NO_STORE;
      const toInf = rc == RC_NEAREST || (rc == RC_UP && sign == 0) || (rc == RC_DOWN && sign != 0);
      if (toInf) { ieeeBits = signBit | expAll; return FE_OE | FE_PE | SW_C1; }
      ieeeBits = signBit | (expAll - (<u64>1 << fb)) | fracMask;
      return FE_OE | FE_PE;
    }
    ieeeBits = signBit | (<u64>(e2 + bias) << fb) | ((rHi >> shift) & fracMask);
    return (rInexact ? FE_PE : 0) | (rInc ? SW_C1 : 0);
  }
  // Below the normal range: tiny unless rounding at the normal position reaches 2^emin.
  let tiny = true;
  if (e == emin - 1) {
    roundSig(sign, m, 0, mask, rc);
    if (rCarry) tiny = false;
  }
  if (tiny && (cw & FE_UE) == 0) return FE_UE | NO_STORE;
  shr128jam(m, 0, emin - e);
  roundSig(sign, wHi, wLo, mask, rc);
  ieeeBits = signBit | (rHi >> shift);
  if (!rInexact) return 0;
  return FE_PE | (tiny ? FE_UE : 0) | (rInc ? SW_C1 : 0);
}

// ---- integers: FILD / FIST / FISTP / FISTTP -----------------------------------------------------

/** dst = v, exactly (FILD m16/m32/m64 after sign extension). */
export function f80FromInt(dst: usize, v: i64): u32 {
  if (v == 0) { storeZero(dst, 0); return 0; }
  const sign: u32 = v < 0 ? 0x8000 : 0;
  const mag: u64 = v < 0 ? <u64>(0 - v) : <u64>v;
  const lz = <i32>clz(mag);
  store80(dst, sign | <u32>(EXP_BIAS + 63 - lz), mag << <u64>lz);
  return 0;
}

/** FILD m16/m32/m64 from memory at src (size 2, 4 or 8). */
export function f80LoadInt(dst: usize, src: usize, size: i32): u32 {
  let v: i64;
  if (size == 2) v = <i64>load<i16>(src);
  else if (size == 4) v = <i64>load<i32>(src);
  else v = load<i64>(src);
  return f80FromInt(dst, v);
}

/** Integer part of the last `roundToInteger`, and whether it fits. */
let intMag: u64 = 0;

/**
 * Rounds a finite non-zero value to an integer magnitude (intMag) with rounding control rc.
 * Returns PE|C1 as raised, or IE when the magnitude reaches 2^64.
 */
function roundToInteger(se: u32, sig: u64, rc: u32): u32 {
  const sign = se & 0x8000;
  unpack(se, sig);
  const e = uExp - EXP_BIAS;
  const m = uSig;
  if (e >= 64) return FE_IE;
  let ip: u64, rbit: bool, sticky: bool;
  if (e == 63) { intMag = m; return 0; }
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
  if (!rbit && !sticky) { intMag = ip; return 0; }
  let f = FE_PE;
  if (roundInc(rc, sign, (ip & 1) != 0, rbit, sticky)) { ip++; f |= SW_C1; }
  intMag = ip;
  return f;
}

/**
 * Converts src to a signed integer of `size` bytes (2, 4, 8) and stores it at out: FIST/FISTP
 * round per RC; with `truncate` (FISTTP) toward zero. NaN, ∞, unsupported encodings and
 * out-of-range results raise IE and store the integer indefinite (the most negative value) when
 * IE is masked; nothing is stored when it is unmasked. Inexact → PE (C1 = rounded up). A denormal
 * source raises no DE.
 */
export function f80ToInt(src: usize, cw: u32, out: usize, size: i32, truncate: bool): u32 {
  const sig = sigAt(src), se = seAt(src);
  const c = classify(se, sig);
  let v: u64 = 0;
  let flags: u32 = 0;
  if (c == C_ZERO) {
    v = 0;
  } else if (c == C_INF || c == C_QNAN || c == C_SNAN || c == C_UNSUPPORTED) {
    flags = FE_IE;
  } else {
    flags = roundToInteger(se, sig, truncate ? RC_ZERO : rcOf(cw));
    if (flags != FE_IE) {
      const neg = (se & 0x8000) != 0;
      const limit: u64 = <u64>1 << <u64>(size * 8 - 1);
      if (intMag > limit || (intMag == limit && !neg)) flags = FE_IE;
      else v = neg ? 0 - intMag : intMag;
    }
  }
  if (flags == FE_IE) {
    if ((cw & FE_IE) == 0) return FE_IE;
    v = <u64>1 << <u64>(size * 8 - 1);
  }
  if (size == 2) store<u16>(out, <u16>v);
  else if (size == 4) store<u32>(out, <u32>v);
  else store<u64>(out, v);
  return flags;
}

// ---- packed BCD: FBLD / FBSTP -------------------------------------------------------------------

/**
 * dst = the 18-digit packed BCD integer at src (FBLD): bytes 0-8 hold two digits each (low
 * nibble = lower digit), bit 7 of byte 9 is the sign. Exact. Nibbles A-F are not valid digits;
 * like the hardware they are taken at face value (digit × 10^k).
 */
export function f80LoadBCD(dst: usize, src: usize): u32 {
  let v: u64 = 0;
  for (let i = 8; i >= 0; i--) {
    const byte = <u64>load<u8>(src + <usize>i);
    v = v * 100 + (byte >> 4) * 10 + (byte & 15);
  }
  const sign: u32 = (load<u8>(src, 9) & 0x80) != 0 ? 0x8000 : 0;
  if (v == 0) { storeZero(dst, sign); return 0; }
  const lz = <i32>clz(v);
  store80(dst, sign | <u32>(EXP_BIAS + 63 - lz), v << <u64>lz);
  return 0;
}

/**
 * Rounds src to an integer per RC and stores it as 18-digit packed BCD at out (FBSTP). −0 and
 * negative values that round to 0 store sign byte 0x80. NaN, ∞, unsupported encodings and
 * |result| > 10^18 − 1 raise IE and store the BCD indefinite (bytes 7-9 = C0 FF FF, others 0)
 * when masked; nothing is stored when unmasked. Inexact → PE (C1 = rounded up).
 */
export function f80StoreBCD(src: usize, cw: u32, out: usize): u32 {
  const sig = sigAt(src), se = seAt(src);
  const c = classify(se, sig);
  let flags: u32 = 0;
  let v: u64 = 0;
  if (c == C_INF || c == C_QNAN || c == C_SNAN || c == C_UNSUPPORTED) {
    flags = FE_IE;
  } else if (c != C_ZERO) {
    flags = roundToInteger(se, sig, rcOf(cw));
    v = intMag;
    if (flags == FE_IE || v > 999999999999999999) flags = FE_IE;
  }
  if (flags == FE_IE) {
    if ((cw & FE_IE) == 0) return FE_IE;
    store<u64>(out, 0xc000000000000000);
    store<u16>(out, 0xffff, 8);
    return FE_IE;
  }
  for (let i = 0; i < 9; i++) {
    const two = v % 100;
    v /= 100;
    store<u8>(out + <usize>i, <u8>(((two / 10) << 4) | (two % 10)));
  }
  store<u8>(out, (se & 0x8000) != 0 ? 0x80 : 0, 9);
  return flags;
}

// ---- constants ------------------------------------------------------------------------------------

/** f80LoadConst selectors, in the order of the opcodes D9 E8..EE. */
export const K_ONE: i32 = 0;
export const K_L2T: i32 = 1;
export const K_L2E: i32 = 2;
export const K_PI: i32 = 3;
export const K_LG2: i32 = 4;
export const K_LN2: i32 = 5;
export const K_ZERO: i32 = 6;

/**
 * Loads a constant (FLD1, FLDL2T, FLDL2E, FLDPI, FLDLG2, FLDLN2, FLDZ), rounded to 64 bits per RC
 * from its exact value (SDM Vol. 1, 8.3.8: the x87 holds them with 66 bits; the results agree for
 * every RC). No exception is raised. Returns 0.
 */
export function f80LoadConst(dst: usize, k: i32, cw: u32): u32 {
  let sig: u64, rest: u64, exp: u32;
  switch (k) {
    case K_ONE: store80(dst, 0x3fff, INT_BIT); return 0;
    case K_L2T: sig = 0xd49a784bcd1b8afe; rest = 0x492bf6ff4dafdb4c; exp = 0x4000; break;
    case K_L2E: sig = 0xb8aa3b295c17f0bb; rest = 0xbe87fed0691d3e88; exp = 0x3fff; break;
    case K_PI: sig = 0xc90fdaa22168c234; rest = 0xc4c6628b80dc1cd1; exp = 0x4000; break;
    case K_LG2: sig = 0x9a209a84fbcff798; rest = 0x8f8959ac0b7c9178; exp = 0x3ffd; break;
    case K_LN2: sig = 0xb17217f7d1cf79ab; rest = 0xc9e3b39803f2f6af; exp = 0x3ffe; break;
    default: storeZero(dst, 0); return 0;
  }
  if (roundInc(rcOf(cw), 0, (sig & 1) != 0, (rest >> 63) != 0, (rest << 1) != 0)) sig++;
  store80(dst, exp, sig);
  return 0;
}
