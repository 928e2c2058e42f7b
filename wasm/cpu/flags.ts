// Lazy arithmetic flags. The common ALU operations record (operation, size, result, operands)
// and the six arithmetic flags are computed only when something reads them (Jcc, SETcc, PUSHF, ...).
// Formulas: Intel SDM Vol. 1, 3.4.3.1 and the per-instruction "Flags Affected" sections.
import {
  LF_NONE, LF_ADD, LF_ADC, LF_SUB, LF_SBB, LF_LOGIC, LF_INC, LF_DEC, LF_SHIFT,
  FLAG_CF, FLAG_PF, FLAG_AF, FLAG_ZF, FLAG_SF, FLAG_OF, FLAGS_ARITH,
} from '../abi';
import {
  lazyOp, lazySize, lazyRes, lazyDst, lazySrc, lazyAux, rflags, setRflagsRaw, setLazy, setLazyAux,
  signBit,
} from './state';

export function getCF(): bool {
  switch (lazyOp) {
    case LF_NONE: return (rflags & FLAG_CF) != 0;
    case LF_ADD: return lazyRes < lazyDst;
    case LF_ADC: return lazyAux != 0 ? lazyRes <= lazyDst : lazyRes < lazyDst;
    case LF_SUB: return lazyDst < lazySrc;
    case LF_SBB: return lazyAux != 0 ? lazyDst <= lazySrc : lazyDst < lazySrc;
    case LF_INC:
    case LF_DEC: return lazyAux != 0;
    case LF_SHIFT: return (lazyAux & 1) != 0;
    default: return false; // LF_LOGIC
  }
}

export function getZF(): bool {
  return lazyOp == LF_NONE ? (rflags & FLAG_ZF) != 0 : lazyRes == 0;
}

export function getSF(): bool {
  return lazyOp == LF_NONE ? (rflags & FLAG_SF) != 0 : (lazyRes & signBit(lazySize)) != 0;
}

/** PF: even parity of the result's low byte. */
export function getPF(): bool {
  if (lazyOp == LF_NONE) return (rflags & FLAG_PF) != 0;
  return (popcnt<u32>(<u32>lazyRes & 0xff) & 1) == 0;
}

export function getOF(): bool {
  const sign = signBit(lazySize);
  switch (lazyOp) {
    case LF_NONE: return (rflags & FLAG_OF) != 0;
    case LF_ADD:
    case LF_ADC: return ((lazyDst ^ lazyRes) & (lazySrc ^ lazyRes) & sign) != 0;
    case LF_SUB:
    case LF_SBB: return ((lazyDst ^ lazySrc) & (lazyDst ^ lazyRes) & sign) != 0;
    case LF_INC: return lazyRes == sign;
    case LF_DEC: return lazyDst == sign;
    case LF_SHIFT: return (lazyAux & 2) != 0;
    default: return false;
  }
}

export function getAF(): bool {
  switch (lazyOp) {
    case LF_NONE: return (rflags & FLAG_AF) != 0;
    case LF_INC: return (lazyRes & 0xf) == 0;
    case LF_DEC: return (lazyRes & 0xf) == 0xf;
    case LF_LOGIC:
    case LF_SHIFT: return false; // AF is undefined after shifts; this CPU leaves it clear
    default: return ((lazyDst ^ lazySrc ^ lazyRes) & 0x10) != 0;
  }
}

/** The full RFLAGS value. */
export function getFlags(): u64 {
  if (lazyOp == LF_NONE) return rflags;
  let f = rflags & ~(<u64>FLAGS_ARITH);
  if (getCF()) f |= FLAG_CF;
  if (getPF()) f |= FLAG_PF;
  if (getAF()) f |= FLAG_AF;
  if (lazyRes == 0) f |= FLAG_ZF;
  if (lazyRes & signBit(lazySize)) f |= FLAG_SF;
  if (getOF()) f |= FLAG_OF;
  return f;
}

/** Replace RFLAGS wholesale (bit 1 always reads as 1). */
export function setFlags(v: u64): void {
  setRflagsRaw(v | 2);
  setLazy(LF_NONE, lazySize, lazyRes, lazyDst, lazySrc);
}

/** Replace the arithmetic flags selected by `mask` with those of `bits`. */
export function setArithFlags(mask: u64, bits: u64): void {
  if ((mask & FLAGS_ARITH) == FLAGS_ARITH) {
    // Every arithmetic flag is replaced: nothing lazy needs materializing first.
    setRflagsRaw((rflags & ~mask) | (bits & mask));
    setLazy(LF_NONE, lazySize, lazyRes, lazyDst, lazySrc);
    return;
  }
  setFlags((getFlags() & ~mask) | (bits & mask));
}

/** Record a lazy operation; values are masked to the operand size by the caller. */
@inline export function lazy(op: i32, size: i32, res: u64, dst: u64, src: u64): void {
  setLazy(op, size, res, dst, src);
}

/** INC/DEC keep CF: capture it before recording the new lazy operation. */
export function lazyKeepCF(op: i32, size: i32, res: u64, dst: u64): void {
  // rflags always holds the non-arithmetic bits, so only CF needs saving.
  setLazyAux(getCF() ? 1 : 0);
  setLazy(op, size, res, dst, 1);
}

/** Record a shift whose CF and OF are already known (SDM Vol. 2B, SAL/SAR/SHL/SHR). */
@inline export function lazyShift(size: i32, res: u64, cf: u64, ovf: u64): void {
  setLazyAux(cf | (ovf << 1));
  setLazy(LF_SHIFT, size, res, 0, 0);
}

/** Record ADC/SBB with the carry-in. */
export function lazyWithCarry(op: i32, size: i32, res: u64, dst: u64, src: u64, cin: bool): void {
  setLazyAux(cin ? 1 : 0);
  setLazy(op, size, res, dst, src);
}

/** Condition codes 0-15 (Jcc/SETcc/CMOVcc low nibble), SDM Vol. 1, Appendix B. */
export function cond(cc: i32): bool {
  let r: bool;
  switch (cc >> 1) {
    case 0: r = getOF(); break;
    case 1: r = lazyOp == LF_SUB ? lazyDst < lazySrc : getCF(); break;
    case 2: r = getZF(); break;
    case 3: r = lazyOp == LF_SUB ? lazyDst <= lazySrc : (getCF() || getZF()); break;
    case 4: r = getSF(); break;
    case 5: r = getPF(); break;
    case 6: r = getSF() != getOF(); break;
    default: r = getZF() || (getSF() != getOF()); break;
  }
  return (cc & 1) != 0 ? !r : r;
}

/** The arithmetic flags of a result, for instructions that set SF/ZF/PF eagerly (shifts, MUL). */
export function szpFlags(res: u64, size: i32): u64 {
  let f: u64 = 0;
  if (res == 0) f |= FLAG_ZF;
  if (res & signBit(size)) f |= FLAG_SF;
  if ((popcnt<u32>(<u32>res & 0xff) & 1) == 0) f |= FLAG_PF;
  return f;
}
