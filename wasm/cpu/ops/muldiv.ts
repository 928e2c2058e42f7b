// MUL, IMUL (one, two and three operands), DIV, IDIV (SDM Vol. 2A/2B). 64-bit operands need a
// 128-bit product and a 128/64 division, done here in 64-bit halves (wasm has no i128).
import { ACC_READ, FLAG_CF, FLAG_OF, FLAG_SF, FLAG_ZF, FLAG_PF, FLAG_AF } from '../../abi';
import { sizeMask, sext, loadSized, setReg64 } from '../state';
import { setArithFlags, szpFlags } from '../flags';
import { raiseDE } from '../fault';
import { opIdx, osize, ext, imm } from '../decode';
import { rmPtr, getReg, setReg, getG, setG } from '../operands';

const MUL_FLAGS: u64 = FLAG_CF | FLAG_OF | FLAG_SF | FLAG_ZF | FLAG_PF | FLAG_AF;

/** High 64 bits of the unsigned 128-bit product a*b. */
export function mulHighU(a: u64, b: u64): u64 {
  const a0 = a & 0xffffffff, a1 = a >> 32, b0 = b & 0xffffffff, b1 = b >> 32;
  const p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
  const mid = (p00 >> 32) + (p01 & 0xffffffff) + (p10 & 0xffffffff);
  return p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
}

/** High 64 bits of the signed 128-bit product. */
export function mulHighS(a: u64, b: u64): u64 {
  let h = mulHighU(a, b);
  if (<i64>a < 0) h -= b;
  if (<i64>b < 0) h -= a;
  return h;
}

/** Flags of a multiply: CF = OF = `overflow`; SF/ZF/PF from the low half (undefined by the manual). */
function mulFlags(overflow: bool, low: u64, size: i32): void {
  setArithFlags(MUL_FLAGS, (overflow ? FLAG_CF | FLAG_OF : 0) | szpFlags(low & sizeMask(size), size));
}

/** Signed product of two operands truncated to `size`, setting CF/OF when it does not fit. */
function imulTruncating(a: u64, b: u64, size: i32): u64 {
  const sa = sext(a, size), sb = sext(b, size);
  const lo = sa * sb;
  let overflow: bool;
  if (size == 8) overflow = mulHighS(sa, sb) != <u64>(<i64>lo >> 63);
  else overflow = sext(lo, size) != lo;
  mulFlags(overflow, lo, size);
  return lo & sizeMask(size);
}

/** 69 / 6B / 0F AF: IMUL Gv, Ev[, imm]. */
export function imulGE(): void {
  const size = osize;
  const p = rmPtr(size, ACC_READ);
  if (p == 0) return;
  const src = loadSized(p, size);
  const other = opIdx == 0x1af ? getG(size) : imm;
  setG(size, imulTruncating(src, other, size));
}

/** F6/F7 /4 MUL, /5 IMUL: rDX:rAX (or AX) = rAX * E. */
export function mulOneOperand(): void {
  const size = opIdx == 0xf6 ? 1 : osize;
  const p = rmPtr(size, ACC_READ);
  if (p == 0) return;
  const src = loadSized(p, size);
  const signed = ext == 5;
  const acc = getReg(0, size);
  if (size == 8) {
    const lo = acc * src;
    const hi = signed ? mulHighS(acc, src) : mulHighU(acc, src);
    setReg64(0, lo);
    setReg64(2, hi);
    mulFlags(signed ? hi != <u64>(<i64>lo >> 63) : hi != 0, lo, 8);
    return;
  }
  const bits = <u64>(size << 3);
  const full = signed ? sext(acc, size) * sext(src, size) : acc * src; // fits in 64 bits
  const lo = full & sizeMask(size);
  const hi = (full >> bits) & sizeMask(size);
  if (size == 1) setReg(0, 2, full & 0xffff);
  else { setReg(0, size, lo); setReg(2, size, hi); }
  const overflow = signed ? sext(lo, size) != full : hi != 0;
  mulFlags(overflow, lo, size);
}

/** Unsigned 128/64 division by shift and subtract; the caller guarantees hi < d (no overflow). */
function divU128(hi: u64, lo: u64, d: u64): u64 {
  let q: u64 = 0;
  let r = hi;
  for (let i = 63; i >= 0; i--) {
    const carry = r >> 63;
    r = (r << 1) | ((lo >> <u64>i) & 1);
    q <<= 1;
    if (carry != 0 || r >= d) { r -= d; q |= 1; }
  }
  divRemainder = r;
  return q;
}
let divRemainder: u64 = 0;

/** F6/F7 /6 DIV, /7 IDIV: #DE on a zero divisor or a quotient that does not fit. */
export function divOneOperand(): void {
  const size = opIdx == 0xf6 ? 1 : osize;
  const p = rmPtr(size, ACC_READ);
  if (p == 0) return;
  const divisor = loadSized(p, size);
  if (divisor == 0) { raiseDE(); return; }
  const signed = ext == 7;
  const m = sizeMask(size);
  const bits = <u64>(size << 3);
  let hi: u64, lo: u64;
  if (size == 1) { const ax = getReg(0, 2); hi = ax >> 8; lo = ax & 0xff; }
  else { hi = getReg(2, size); lo = getReg(0, size); }
  let q: u64, r: u64;
  if (!signed) {
    if (hi >= divisor) { raiseDE(); return; }
    if (size == 8) { q = hi == 0 ? lo / divisor : divU128(hi, lo, divisor); r = hi == 0 ? lo % divisor : divRemainder; }
    else { const n = (hi << bits) | lo; q = n / divisor; r = n % divisor; }
  } else {
    // Divide magnitudes, then fix the signs: quotient truncates toward zero, remainder has the
    // dividend's sign (SDM Vol. 2A, IDIV).
    let nHi: u64, nLo: u64;
    if (size == 8) { nHi = hi; nLo = lo; }
    else { const n = sext((hi << bits) | lo, size * 2); nHi = <u64>(<i64>n >> 63); nLo = n; }
    const negN = <i64>nHi < 0;
    if (negN) { nLo = ~nLo + 1; nHi = ~nHi + (nLo == 0 ? 1 : 0); }
    const sd = sext(divisor, size);
    const negD = <i64>sd < 0;
    const ad: u64 = negD ? 0 - sd : sd;
    if (nHi >= ad) { raiseDE(); return; }
    let uq: u64, ur: u64;
    if (nHi == 0) { uq = nLo / ad; ur = nLo % ad; } else { uq = divU128(nHi, nLo, ad); ur = divRemainder; }
    const negQ = negN != negD;
    // The quotient must fit the signed range of the operand size.
    const limit: u64 = negQ ? (<u64>1 << (bits - 1)) : (<u64>1 << (bits - 1)) - 1;
    if (uq > limit) { raiseDE(); return; }
    q = (negQ ? 0 - uq : uq) & m;
    r = (negN ? 0 - ur : ur) & m;
  }
  if (size == 1) setReg(0, 2, ((r & 0xff) << 8) | (q & 0xff));
  else { setReg(0, size, q); setReg(2, size, r); }
  // Flags are undefined after DIV/IDIV; they are left unchanged here.
}
