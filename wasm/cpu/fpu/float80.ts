// Software x87 double extended precision arithmetic: the library the x87 instruction layer calls.
// Intel SDM Vol. 1, chapters 4 and 8; Vol. 2 for each instruction. Checked bit-exactly against this
// machine's x87 by test/fpu-float80.test.ts (reference program test/fpu/x87ref.c).
//
// Conventions
//  * Values live in linear memory in the register format: 10 bytes at a pointer, u64 significand
//    with the explicit integer bit 63 at +0, u16 sign (bit 15) | biased exponent (bias 16383) at +8.
//    A destination may alias a source.
//  * `cw` is the x87 control word: exception masks in bits 0-5, PC in bits 8-9 (00 = 24-bit,
//    10 = 53-bit, 11 = 64-bit significand; 01 is treated as 64), RC in bits 10-11 (00 nearest-even,
//    01 down, 10 up, 11 toward zero). PC only affects FADD/FSUB/FMUL/FDIV/FSQRT (SDM 8.1.5.2).
//  * Every function returns the status-word bits it produces: exception flags IE 0x1, DE 0x2,
//    ZE 0x4, OE 0x8, UE 0x10, PE 0x20 (raised whether masked or not: the caller ORs them into the
//    status word and raises #MF/ES for the unmasked ones), C1 0x200 = "rounded up" (magnitude
//    increased) for inexact results, and for some operations C0 0x100 / C2 0x400 / C3 0x4000 as
//    documented there. Bits not mentioned are 0 (in particular C1 = 0 for exact results).
//  * Unmasked exceptions follow the hardware: unmasked IE, ZE or DE → the destination is not
//    written (register destination left unchanged, no push/pop by the caller); unmasked OE/UE on a
//    register result → the result is delivered with its exponent wrapped by ∓0x6000; stores to
//    memory (f80ToF32Bits, f80ToF64Bits, f80ToInt, f80StoreBCD) write nothing on an unmasked IE, OE
//    or UE. Exception: loads from single/double precision deliver denormals even with DE unmasked.
//  * Special operands (SDM Vol. 1, 4.8.3, 8.2.2): unsupported encodings (unnormals, pseudo-NaNs,
//    pseudo-infinities) → IE and the real indefinite QNaN (sign 1, exponent 0x7fff, significand
//    0xC000000000000000), taking precedence over NaN propagation; pseudo-denormals are accepted
//    as denormals (DE). NaN results follow Table 4-7: SNaN quieted with IE, SNaN+QNaN → the QNaN,
//    two NaNs of the same kind → larger significand (equal: the positive one). A QNaN operand
//    suppresses DE; invalid-operation and divide-by-zero take precedence over DE.
//  * Rounding happens once, to PC and RC, including gradual underflow; tininess is detected after
//    rounding (measured), masked underflow raises UE only for inexact results.
//
// API summary (all pointers usize; see each function's comment):
//   arithmetic   f80Add(dst,a,b,cw) f80Sub(dst,a,b,cw) f80Mul(dst,a,b,cw) f80Div(dst,a,b,cw)
//                f80Sqrt(dst,a,cw) f80Rem(dst,a,b,cw,ieee) f80RoundToInt(dst,a,cw)
//                f80Scale(dst,a,b,cw) f80Xtract(dstSig,dstExp,a,cw)
//   compare      f80Compare(a,b): code, f80CompareStatus(code, ordered): sw bits, f80Examine(a)
//   conversions  f80FromF32Bits(dst,bits,cw) f80FromF64Bits(dst,lo,hi,cw) f80LoadF32/F64(dst,src,cw)
//                f80ToF32Bits(src,cw,out) f80ToF64Bits(src,cw,out) f80FromInt(dst,v: i64)
//                f80LoadInt(dst,src,size) f80ToInt(src,cw,out,size,truncate)
//                f80LoadBCD(dst,src) f80StoreBCD(src,cw,out) f80LoadConst(dst,k,cw)
//   transcend.   f80F2xm1(dst,a,cw) f80Yl2x(dst,x,y,cw) f80Yl2xp1(dst,x,y,cw) f80Ptan(dst,dstPush,a,cw)
//                f80Patan(dst,y,x,cw) f80Sin(dst,a,cw) f80Cos(dst,a,cw) f80SinCos(dstSin,dstCos,a,cw)
//
// Condition codes returned besides C1:
//   f80Rem       C2 = 1: incomplete (exponent difference >= 64; reduced by N = 32 + (D mod 32) bits,
//                C0/C1/C3 = 0); C2 = 0: complete, C0 = q2, C3 = q1, C1 = q0 (low quotient bits).
//   f80Compare   returns a code, not status bits: bits 0-1 = CMP_LESS 0 / CMP_EQUAL 1 / CMP_GREATER 2
//                / CMP_UNORDERED 3, | CMP_SIGNALING 4 (SNaN or unsupported: IE for FCOM and FUCOM)
//                | CMP_QNAN 8 (IE for FCOM/FTST/FICOM/FCOMI only) | CMP_DENORMAL 16 (DE).
//                f80CompareStatus(code, ordered) → C3/C2/C0 (000 >, 001 <, 100 =, 111 unordered) | IE | DE;
//                FCOMI/FUCOMI map C3→ZF, C2→PF, C0→CF.
//   f80Examine   C3/C2/C0 class and C1 = sign (FXAM).
//   f80Sin, f80Cos, f80SinCos, f80Ptan: C2 = 1 when |a| >= 2^63 (nothing written, no push).
//   Transcendentals raise PE for every computed result (as the x87 does); their C1 is informative only.
export {
  FE_IE, FE_DE, FE_ZE, FE_OE, FE_UE, FE_PE, SW_C0, SW_C1, SW_C2, SW_C3, CW_DEFAULT,
  C_ZERO, C_NORMAL, C_DENORMAL, C_INF, C_QNAN, C_SNAN, C_UNSUPPORTED, classify,
  INDEFINITE_SE, INDEFINITE_SIG,
} from './f80-base';
export {
  f80Add, f80Sub, f80Mul, f80Div, f80Sqrt, f80Rem, f80RoundToInt, f80Scale, f80Xtract,
  f80Compare, f80CompareStatus, f80Examine, storeIntValue,
  CMP_LESS, CMP_EQUAL, CMP_GREATER, CMP_UNORDERED, CMP_SIGNALING, CMP_QNAN, CMP_DENORMAL,
} from './f80-arith';
export {
  f80FromF32Bits, f80FromF64Bits, f80LoadF32, f80LoadF64, f80ToF32Bits, f80ToF64Bits,
  f80FromInt, f80LoadInt, f80ToInt, f80LoadBCD, f80StoreBCD, f80LoadConst,
  K_ONE, K_L2T, K_L2E, K_PI, K_LG2, K_LN2, K_ZERO,
} from './f80-convert';
export {
  f80F2xm1, f80Yl2x, f80Yl2xp1, f80Ptan, f80Patan, f80Sin, f80Cos, f80SinCos,
} from './f80-trans';
