// x87 operation families (SDM Vol. 2 per instruction; Vol. 1, 8.5 for the masked responses): one
// implementation each, parameterised by operand source, destination register and pop count, called
// by the dispatcher in ops/x87.ts. The arithmetic itself is the library in wasm/cpu/fpu/.
//
// Order of checks: a memory source is translated first (its fault wins), then the stack (empty
// operands = underflow, a full ST(7) on a push = overflow), then the operation. With an unmasked
// IE/DE/ZE the destination and the stack stay as they were (compares still set their condition
// codes, measured). Memory destinations are translated only once a value is known to be stored:
// an unmasked IE/OE/UE store neither writes nor faults on Intel (measured); on AMD it faults on a
// bad destination (CPUB_X87_STORE_FAULT_FIRST).
import { ACC_READ, ACC_WRITE, FLAGS_ARITH, FLAG_ZF, FLAG_PF, FLAG_CF, CPUB_X87_STORE_FAULT_FIRST } from '../../abi';
import { modelHas } from '../model';
import { ea } from '../decode';
import { translate } from '../../mmu/translate';
import { setArithFlags, cond } from '../flags';
import {
  FE_IE, FE_DE, FE_ZE, FE_OE, FE_UE, SW_C0, SW_C1, SW_C2, SW_C3,
  f80Add, f80Sub, f80Mul, f80Div, f80Sqrt, f80Rem, f80RoundToInt, f80Scale, f80Xtract,
  f80Compare, f80CompareStatus, f80Examine, CMP_UNORDERED, CMP_DENORMAL,
  f80LoadF32, f80LoadF64, f80ToF32Bits, f80ToF64Bits, f80LoadInt, f80ToInt, f80LoadBCD, f80StoreBCD,
  f80LoadConst, f80F2xm1, f80Yl2x, f80Yl2xp1, f80Ptan, f80Patan, f80Sin, f80Cos,
} from '../fpu/float80';
import {
  FSW_CC, FSW_SF, STACK_FAULT, getFcw, stPtr, isEmpty, setValid, setEmpty, push, pop, copy80, storeIndefinite,
  report, blocks, ieMasked, underflow, overflow, tmp, getTop, setTop,
} from './x87-state';

// ---- memory operand formats ----------------------------------------------------------------------

export const MF_F32: i32 = 0;
export const MF_F64: i32 = 1;
export const MF_F80: i32 = 2;
export const MF_I16: i32 = 3;
export const MF_I32: i32 = 4;
export const MF_I64: i32 = 5;
export const MF_BCD: i32 = 6;

@inline function mfSize(fmt: i32): i32 {
  switch (fmt) {
    case MF_F32: case MF_I32: return 4;
    case MF_F64: case MF_I64: return 8;
    case MF_I16: return 2;
    default: return 10;
  }
}

/** Widens the binary32/binary64 at p into register format at dst, exactly, keeping an SNaN
 *  signaling (the operation then applies the NaN rules of SDM Vol. 1, Table 4-7 to it). Returns
 *  true for a denormal (the operation raises DE for it). */
function widen(dst: usize, p: usize, is64: bool): bool {
  const bits: u64 = is64 ? load<u64>(p) : <u64>load<u32>(p);
  const fb: u64 = is64 ? 52 : 23;
  const expAll: u64 = is64 ? 0x7ff : 0xff;
  const frac = bits & ((<u64>1 << fb) - 1);
  if (((bits >> fb) & expAll) == expAll && frac != 0) {
    const sign: u16 = ((bits >> (is64 ? 63 : 31)) & 1) != 0 ? 0x8000 : 0;
    store<u64>(dst, 0x8000000000000000 | (frac << (63 - fb)));
    store<u16>(dst, sign | 0x7fff, 8);
    return false;
  }
  const f = is64 ? f80LoadF64(dst, p, 0x37f) : f80LoadF32(dst, p, 0x37f);
  return (f & FE_DE) != 0;
}

/** A NaN or an unsupported encoding (an operand that suppresses DE). */
function nanOrUnsupported(p: usize): bool {
  const e = <u32>load<u16>(p, 8) & 0x7fff;
  const sig = load<u64>(p);
  if (e == 0) return false;
  if ((sig >> 63) == 0) return true;
  return e == 0x7fff && (sig << 1) != 0;
}

/** Loads the arithmetic / compare source operand (m32fp, m64fp, m32int, m16int) into dst. Returns
 *  -1 on a memory fault, 1 for a denormal, else 0. */
function sourceOperand(dst: usize, fmt: i32): i32 {
  const p = translate(ea, mfSize(fmt), ACC_READ);
  if (p == 0) return -1;
  switch (fmt) {
    case MF_F32: return widen(dst, p, false) ? 1 : 0;
    case MF_F64: return widen(dst, p, true) ? 1 : 0;
    default: f80LoadInt(dst, p, mfSize(fmt)); return 0;
  }
}

// ---- FADD FMUL FSUB FSUBR FDIV FDIVR -------------------------------------------------------------------

/** Arithmetic kinds, numbered as ModRM.reg of D8: 0 add, 1 mul, 4 sub, 5 subr, 6 div, 7 divr. */
function compute(kind: i32, dst: usize, a: usize, b: usize, cw: u32): u32 {
  switch (kind) {
    case 0: return f80Add(dst, a, b, cw);
    case 1: return f80Mul(dst, a, b, cw);
    case 4: return f80Sub(dst, a, b, cw);
    case 5: return f80Sub(dst, b, a, cw);
    case 6: return f80Div(dst, a, b, cw);
    default: return f80Div(dst, b, a, cw);
  }
}

/** ST(d) = ST(d) kind src, then pop if `doPop`. `src` points at the other operand; `srcDenormal`
 *  marks a single/double denormal (widened to a normal value): DE unless IE or ZE take precedence or
 *  ST(d) is a NaN. */
function arith(kind: i32, d: i32, src: usize, srcDenormal: bool, doPop: bool): void {
  const dst = stPtr(d);
  const res = tmp(1);
  let f = compute(kind, res, dst, src, getFcw());
  // A denormal m32/m64 operand: DE (unless IE or ZE take precedence or ST(d) is a NaN); unmasked,
  // the operation stops there and raises DE alone.
  if (srcDenormal && (f & (FE_IE | FE_ZE)) == 0 && !nanOrUnsupported(dst)) {
    f = (getFcw() & FE_DE) == 0 ? FE_DE : f | FE_DE;
  }
  if (!blocks(f)) {
    copy80(dst, res);
    if (doPop) pop();
  }
  report(f, SW_C1);
}

/** D8 / DC / DA / DE with a memory operand: ST(0) = ST(0) kind m32fp / m64fp / m32int / m16int. */
export function arithMem(kind: i32, fmt: i32): void {
  const src = tmp(0);
  const den = sourceOperand(src, fmt);
  if (den < 0) return;
  if (isEmpty(0)) { underflow(0, false, 0); return; }
  arith(kind, 0, src, den > 0, false);
}

/** Register forms: ST(d) = ST(d) kind ST(s) (D8: d = 0; DC/DE: s = 0), pop for DE. */
export function arithReg(kind: i32, d: i32, s: i32, doPop: bool): void {
  if (isEmpty(d) || isEmpty(s)) { underflow(d, doPop, 0); return; }
  arith(kind, d, stPtr(s), false, doPop);
}

// ---- compares ----------------------------------------------------------------------------------------------

/** Compare variants. */
export const CMP_ORDERED: i32 = 1; // FCOM FICOM FTST FCOMI: a QNaN operand raises IE
export const CMP_EFLAGS: i32 = 2; // FCOMI FUCOMI (and P): ZF PF CF instead of C3 C2 C0

/** Compares ST(0) with b (null b = empty operand: stack underflow, unordered), then pops `pops`
 *  times. As measured, the condition codes (or ZF PF CF) are set even when the compare raises an
 *  unmasked exception (IE, DE, stack underflow); the pops then do not happen. FCOMI & co. leave
 *  C1 unchanged unless the stack underflows; the others clear it. */
function compareWith(b: usize, bDenormal: bool, variant: i32, pops: i32): void {
  const eflags = (variant & CMP_EFLAGS) != 0;
  let sw: u32;
  if (b == 0 || isEmpty(0)) {
    sw = STACK_FAULT | SW_C3 | SW_C2 | SW_C0;
  } else {
    let code = f80Compare(stPtr(0), b);
    if (bDenormal && (code & 3) != CMP_UNORDERED) code |= CMP_DENORMAL;
    sw = f80CompareStatus(code, (variant & CMP_ORDERED) != 0);
  }
  const c1Mask = !eflags || (sw & FSW_SF) != 0 ? SW_C1 : 0;
  if (eflags) {
    let fl: u64 = 0;
    if ((sw & SW_C3) != 0) fl |= FLAG_ZF;
    if ((sw & SW_C2) != 0) fl |= FLAG_PF;
    if ((sw & SW_C0) != 0) fl |= FLAG_CF;
    setArithFlags(FLAGS_ARITH, fl);
    report(sw & ~(SW_C0 | SW_C2 | SW_C3), c1Mask);
  } else {
    report(sw, FSW_CC);
  }
  if (!blocks(sw)) for (let k = 0; k < pops; k++) pop();
}

/** FCOM/FCOMP m32fp/m64fp, FICOM/FICOMP m32int/m16int. */
export function compareMem(fmt: i32, pops: i32): void {
  const src = tmp(0);
  const den = sourceOperand(src, fmt);
  if (den < 0) return;
  compareWith(src, den > 0, CMP_ORDERED, pops);
}

/** FCOM/FUCOM/FCOMI/FUCOMI ST(i) (and the popping forms, FCOMPP/FUCOMPP with i = 1). */
export function compareReg(i: i32, variant: i32, pops: i32): void {
  compareWith(isEmpty(i) ? 0 : stPtr(i), false, variant, pops);
}

/** FTST: ST(0) against +0.0. */
export function ftst(): void {
  const z = tmp(0);
  store<u64>(z, 0);
  store<u16>(z, 0, 8);
  compareWith(z, false, CMP_ORDERED, 0);
}

/** FXAM: class of ST(0) in C3 C2 C0 (empty 101), C1 = its sign bit; no exception. */
export function fxam(): void {
  const p = stPtr(0);
  let sw: u32;
  if (isEmpty(0)) sw = SW_C3 | SW_C0 | ((load<u16>(p, 8) & 0x8000) != 0 ? SW_C1 : 0);
  else sw = f80Examine(p);
  report(sw, FSW_CC);
}

// ---- loads (push) ---------------------------------------------------------------------------------------

/** FLD m32fp/m64fp/m80fp, FILD m16/m32/m64, FBLD m80bcd. */
export function loadMem(fmt: i32): void {
  const p = translate(ea, mfSize(fmt), ACC_READ);
  if (p == 0) return;
  if (!isEmpty(7)) { overflow(); return; }
  const cw = getFcw();
  const v = tmp(0);
  let f: u32 = 0;
  switch (fmt) {
    case MF_F32: f = f80LoadF32(v, p, cw); break;
    case MF_F64: f = f80LoadF64(v, p, cw); break;
    case MF_F80: copy80(v, p); break;
    case MF_BCD: f = f80LoadBCD(v, p); break;
    default: f = f80LoadInt(v, p, mfSize(fmt)); break;
  }
  // Single/double denormals are loaded even with DE unmasked; an unmasked IE (SNaN) pushes nothing.
  if ((f & ~cw & FE_IE) == 0) {
    push();
    copy80(stPtr(0), v);
  }
  report(f, SW_C1);
}

/** FLD ST(i). An empty ST(i) is reported as underflow even when the stack is also full (measured). */
export function loadReg(i: i32): void {
  const v = tmp(0);
  if (isEmpty(i)) {
    report(STACK_FAULT, SW_C1);
    if (!ieMasked()) return;
    storeIndefinite(v);
  } else {
    if (!isEmpty(7)) { overflow(); return; }
    copy80(v, stPtr(i));
    report(0, SW_C1);
  }
  push();
  copy80(stPtr(0), v);
}

/** FLD1 FLDL2T FLDL2E FLDPI FLDLG2 FLDLN2 FLDZ (k = ModRM.rm). */
export function loadConst(k: i32): void {
  if (!isEmpty(7)) { overflow(); return; }
  push();
  f80LoadConst(stPtr(0), k, getFcw());
  report(0, SW_C1);
}

// ---- stores -------------------------------------------------------------------------------------------------

/** Integer stores: FIST/FISTP round per RC, FISTTP truncates. */
export const ST_ROUND: i32 = 0;
export const ST_TRUNC: i32 = 1;

/** FST/FSTP m32fp/m64fp/m80fp, FIST/FISTP/FISTTP m16/m32/m64, FBSTP m80bcd. An empty ST(0) is an
 *  underflow whose masked response stores the indefinite of the format. An unmasked IE/OE/UE
 *  stores nothing and does not pop; the destination is then not even accessed (measured: no #PF),
 *  so the conversion runs first, into a scratch buffer. */
export function storeMem(fmt: i32, doPop: bool, trunc: bool): void {
  const size = mfSize(fmt);
  const cw = getFcw();
  let src = stPtr(0);
  const empty = isEmpty(0);
  let f: u32 = 0;
  if (empty) {
    f = STACK_FAULT;
    src = tmp(0);
    storeIndefinite(src);
  }
  const out = tmp(2);
  let g: u32 = 0;
  switch (fmt) {
    case MF_F32: g = f80ToF32Bits(src, cw, out); break;
    case MF_F64: g = f80ToF64Bits(src, cw, out); break;
    case MF_F80: copy80(out, src); break;
    case MF_BCD: g = f80StoreBCD(src, cw, out); break;
    default: g = f80ToInt(src, cw, out, size, trunc); break;
  }
  if (!empty) f = g;
  if ((f & ~cw & (FE_IE | FE_OE | FE_UE)) == 0) {
    const p = translate(ea, size, ACC_WRITE);
    if (p == 0) return;
    memory.copy(p, out, <usize>size);
    if (doPop) pop();
  } else if (modelHas(CPUB_X87_STORE_FAULT_FIRST) && translate(ea, size, ACC_WRITE) == 0) {
    // AMD: the destination is checked even though nothing will be stored, and its fault (#GP,
    // #PF) wins over the unmasked exception: the FPU state stays as it was (observed on AMD
    // family 19h; the APM does not order the two).
    return;
  }
  report(f, SW_C1);
}

/** FST/FSTP ST(i): a copy of the 80 bits. */
export function storeReg(i: i32, doPop: bool): void {
  if (isEmpty(0)) { underflow(i, doPop, 0); return; }
  copy80(stPtr(i), stPtr(0));
  setValid(i);
  report(0, SW_C1);
  if (doPop) pop();
}

/** FSTP1 (D9 D8+i, the undocumented alias of FSTP ST(i)): with ST(0) empty it only clears C1 and
 *  pops, with no stack fault and ST(i) untouched (measured). */
export function storeReg1(i: i32): void {
  if (isEmpty(0)) { report(0, SW_C1); pop(); return; }
  storeReg(i, true);
}

// ---- register moves --------------------------------------------------------------------------------------

/** FXCH ST(i): empty registers are an underflow; masked, they become the indefinite first. */
export function fxch(i: i32): void {
  if (isEmpty(0) || isEmpty(i)) {
    report(STACK_FAULT, SW_C1);
    if (!ieMasked()) return;
    if (isEmpty(0)) { storeIndefinite(stPtr(0)); setValid(0); }
    if (isEmpty(i)) { storeIndefinite(stPtr(i)); setValid(i); }
  } else {
    report(0, SW_C1);
  }
  const a = stPtr(0), b = stPtr(i), t = tmp(0);
  copy80(t, a);
  copy80(a, b);
  copy80(b, t);
}

/** FCMOVcc ST(0), ST(i): cc is the Jcc condition number (B 2, E 4, BE 6, U 10; odd = negated). */
export function fcmov(cc: i32, i: i32): void {
  if (isEmpty(0) || isEmpty(i)) { underflow(0, false, 0); return; }
  if (cond(cc)) copy80(stPtr(0), stPtr(i)); // C1 unchanged (measured)
}

/** FCHS (negate) / FABS (clear the sign): no exception besides stack underflow. */
export function signOp(abs: bool): void {
  if (isEmpty(0)) { underflow(0, false, 0); return; }
  const p = stPtr(0);
  const se = load<u16>(p, 8);
  store<u16>(p, abs ? se & 0x7fff : se ^ 0x8000, 8);
  report(0, SW_C1);
}

/** FINCSTP / FDECSTP: TOP ± 1, tags unchanged, C1 = 0. */
export function stepTop(delta: i32): void {
  setTop(getTop() + delta);
  report(0, SW_C1);
}

/** FFREE ST(i) (and the FFREEP alias, which then pops). */
export function ffree(i: i32, doPop: bool): void {
  setEmpty(i);
  if (doPop) pop();
}

// ---- one- and two-operand functions of the stack top --------------------------------------------------

export const U_SQRT: i32 = 0;
export const U_RNDINT: i32 = 1;
export const U_F2XM1: i32 = 2;
export const U_SIN: i32 = 3;
export const U_COS: i32 = 4;

/** ST(0) = f(ST(0)): FSQRT FRNDINT F2XM1 FSIN FCOS. FSIN/FCOS: C2 = 1 (nothing written) when
 *  |ST(0)| >= 2^63. */
export function unary(kind: i32): void {
  const trig = kind == U_SIN || kind == U_COS;
  const ccMask = trig ? SW_C1 | SW_C2 : SW_C1;
  if (isEmpty(0)) { underflow(0, false, ccMask); return; }
  const a = stPtr(0), r = tmp(1), cw = getFcw();
  let f: u32;
  switch (kind) {
    case U_SQRT: f = f80Sqrt(r, a, cw); break;
    case U_RNDINT: f = f80RoundToInt(r, a, cw); break;
    case U_F2XM1: f = f80F2xm1(r, a, cw); break;
    case U_SIN: f = f80Sin(r, a, cw); break;
    default: f = f80Cos(r, a, cw); break;
  }
  if (!blocks(f) && (f & SW_C2) == 0) copy80(a, r);
  report(f, ccMask);
}

export const B_PREM: i32 = 0;
export const B_PREM1: i32 = 1;
export const B_SCALE: i32 = 2;

/** ST(0) = f(ST(0), ST(1)): FPREM FPREM1 (C0 C1 C2 C3 = quotient bits / incomplete) and FSCALE. */
export function binaryTop(kind: i32): void {
  const ccMask = kind == B_SCALE ? SW_C1 : FSW_CC;
  if (isEmpty(0) || isEmpty(1)) { underflow(0, false, kind == B_SCALE ? 0 : SW_C2); return; }
  const a = stPtr(0), b = stPtr(1), r = tmp(1), cw = getFcw();
  const f = kind == B_SCALE ? f80Scale(r, a, b, cw) : f80Rem(r, a, b, cw, kind == B_PREM1);
  const done = !blocks(f);
  if (done) copy80(a, r);
  // FPREM/FPREM1 without a remainder (NaN or invalid operands, unmasked DE): C0 and C3 unchanged.
  const noRem = !done || (f & FE_IE) != 0 || nanOrUnsupported(a) || nanOrUnsupported(b);
  report(f, noRem && kind != B_SCALE ? SW_C1 | SW_C2 : ccMask);
}

export const P_PATAN: i32 = 0;
export const P_YL2X: i32 = 1;
export const P_YL2XP1: i32 = 2;

/** ST(1) = f(ST(0), ST(1)), then pop: FPATAN FYL2X FYL2XP1. */
export function binaryPop(kind: i32): void {
  if (isEmpty(0) || isEmpty(1)) { underflow(1, true, 0); return; }
  const x = stPtr(0), y = stPtr(1), r = tmp(1), cw = getFcw();
  let f: u32;
  switch (kind) {
    case P_PATAN: f = f80Patan(r, y, x, cw); break;
    case P_YL2X: f = f80Yl2x(r, x, y, cw); break;
    default: f = f80Yl2xp1(r, x, y, cw); break;
  }
  if (!blocks(f)) {
    copy80(y, r);
    pop();
  }
  report(f, SW_C1);
}

export const X_PTAN: i32 = 0;
export const X_SINCOS: i32 = 1;
export const X_XTRACT: i32 = 2;

/** ST(0) = first result, then push the second: FPTAN (tan, 1.0), FSINCOS (sin, cos), FXTRACT
 *  (exponent, significand). ST(0) empty → underflow, ST(7) valid → overflow; the masked response
 *  leaves the indefinite in both. FPTAN/FSINCOS: C2 = 1 (nothing written) when |ST(0)| >= 2^63. */
export function pushTwo(kind: i32): void {
  const ccMask = kind == X_XTRACT ? SW_C1 : SW_C1 | SW_C2;
  const empty = isEmpty(0);
  if (empty || !isEmpty(7)) {
    report(empty ? STACK_FAULT : STACK_FAULT | SW_C1, ccMask);
    if (!ieMasked()) return;
    storeIndefinite(stPtr(0));
    setValid(0);
    push();
    storeIndefinite(stPtr(0));
    return;
  }
  const a = stPtr(0), first = tmp(1), second = tmp(2), cw = getFcw();
  let f: u32;
  switch (kind) {
    case X_PTAN: f = f80Ptan(first, second, a, cw); break;
    case X_SINCOS: {
      // C1 reports the rounding of the cosine, the value pushed last (measured; f80SinCos ORs
      // both results' C1), so sine and cosine are computed separately.
      f = f80Sin(first, a, cw);
      const g = f80Cos(second, a, cw);
      f = ((f | g) & ~SW_C1) | (g & SW_C1);
      break;
    }
    default: f = f80Xtract(second, first, a, cw); break;
  }
  if (!blocks(f) && (f & SW_C2) == 0) {
    copy80(a, first);
    push();
    copy80(stPtr(0), second);
  }
  report(f, ccMask);
}
