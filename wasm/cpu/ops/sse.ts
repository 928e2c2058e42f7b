// MMX, SSE and SSE2 instructions (0F-map opcodes with the 66/F2/F3 mandatory prefixes): operand
// decoding, the CR0/CR4 availability rules (#UD/#NM), #MF/#XM, the x87 -> MMX transition and the
// register file (ops/sse-state.ts); the lane arithmetic is the library in wasm/cpu/simd/.
// Forms: wasm/cpu/isa-table-fpu.ts (families sse, sse-int, mmx).
//
// One dense switch over the opcode; the mandatory prefix (SDM Vol. 2, 2.1.2 and Table A-3: F2/F3
// take precedence over 66) selects the instruction inside a family. A family is one function
// parameterised by the operand width (w = 8: MMX register / m64, w = 16: XMM / m128) and, for
// floating point, the shape (PS/PD/SS/SD). Every family checks validity (#UD), availability
// (#UD/#NM/#MF), then all memory faults (#GP alignment, segment limits, #PF) before any state
// changes, except those this machine's CPU makes too: the x87 -> MMX transition's TOP reset by a
// faulting MMX store (sse-state.ts) and the MXCSR flags of an #XM.
import { ACC_READ, ACC_WRITE, FLAGS_ARITH, CPUB_APPROX_AMD } from '../../abi';
import { modelHas } from '../model';
import {
  opIdx, lastRep, prefixes, P_66, rex, ext, regField, rmField, isMem, imm, asize, seg, segBase,
} from '../decode';
import { gprPtr, getReg64, setReg64 } from '../state';
import { raiseUD, raiseGP0 } from '../fault';
import { setArithFlags } from '../flags';
import { translate } from '../../mmu/translate';
import {
  PS, SS, PD, SD, COMI_SHIFT, MXCSR_WRITABLE,
  padd, psub, padds, psubs, pmullw, pmulhw, pmuludq, pmaddwd, pavg, pminmaxub, pminmaxsw, psadbw,
  plogic, LOGIC_AND, LOGIC_ANDN, LOGIC_OR, LOGIC_XOR, pcmpeq, pcmpgt,
  pshiftReg, pshiftImm, pbyteShift, SHIFT_LL, SHIFT_RL, SHIFT_RA,
  pack, PACK_SSWB, PACK_SSDW, PACK_USWB, punpckl, punpckh,
  pshufd, pshufw, pshufhw, pshuflw, shufps, shufpd, pextrw, pinsrw, pmovmskb, movmskps, movmskpd,
  maskmovMask,
  fpArith, FP_ADD, FP_SUB, FP_MUL, FP_DIV, FP_MIN, FP_MAX, FP_SQRT, fpCmp, fpComi, fpRcp, fpRsqrt,
  cvtpi2ps, cvtps2pi, cvtpi2pd, cvtpd2pi, cvtsi2ss, cvtsi2sd, cvtss2si, cvtsd2si, cvtss2sd, cvtsd2ss,
  cvtps2pd, cvtpd2ps, cvtdq2ps, cvtps2dq, cvtdq2pd, cvtpd2dq,
} from '../simd/index';
import {
  AV_SSE, AV_MMX, AV_MIXED, available, xmmPtr, mmPtr, getMxcsr, setMxcsr, mmxEnter, mmxStoreStart, mmWritten,
  mmxLeave, fpDone, memOperand, segmentOk, rmSrc, rmDst,
} from './sse-state';
import { fxsave, fxrstor , xsave, xrstor } from './x87';

/** Set when the current opcode has no handler here yet (the run loop counts it as unimplemented).
 *  Every MMX/SSE/SSE2 form is implemented, so it stays false. */
export let sseUnimplemented: bool = false;
export function clearSseUnimplemented(): void { sseUnimplemented = false; }

// The mandatory prefix, as an index: none, 66, F3, F2.
const PF_NONE: i32 = 0;
const PF_66: i32 = 1;
const PF_F3: i32 = 2;
const PF_F2: i32 = 3;

// @ts-ignore: decorator
@inline function mandatoryPrefix(): i32 {
  if (lastRep == 0xf3) return PF_F3;
  if (lastRep == 0xf2) return PF_F2;
  return (prefixes & P_66) != 0 ? PF_66 : PF_NONE;
}

/** Width of a form that exists as MMX (no prefix) and SSE2 (66): 8, 16, or 0 for #UD. */
// @ts-ignore: decorator
@inline function mmxOrXmm(p: i32): i32 { return p == PF_NONE ? 8 : p == PF_66 ? 16 : 0; }

/** Floating-point shape selected by the prefix: none PS, 66 PD, F3 SS, F2 SD. */
// @ts-ignore: decorator
@inline function shapeOf(p: i32): i32 { return p == PF_NONE ? PS : p == PF_66 ? PD : p == PF_F3 ? SS : SD; }

/** Operand size of Ey/Gy (MOVD/MOVQ, CVTSI2SS, CVTSS2SI, MOVNTI): REX.W selects 64 bits. */
// @ts-ignore: decorator
@inline function gprSize(): i32 { return (rex & 8) != 0 ? 8 : 4; }

// @ts-ignore: decorator
@inline function imm8(): i32 { return <i32>imm & 0xff; }

/** Store `v` zero-extended to the `w` bytes at `p` (MOVD/MOVQ into MM or XMM). */
// @ts-ignore: decorator
@inline function putZx(p: usize, v: u64, w: i32): void {
  store<u64>(p, v);
  if (w == 16) store<u64>(p, 0, 8);
}

/** Every 0F-map MMX/SSE/SSE2 opcode is routed here by execute.ts. */
export function sseDispatch(): void {
  const p = mandatoryPrefix();
  switch (opIdx) {
    // ---- moves
    case 0x110: case 0x111: // MOVUPS MOVUPD / MOVSS MOVSD
      if (p <= PF_66) moveFull(opIdx == 0x111, false);
      else moveScalar(opIdx == 0x111, p == PF_F3 ? 4 : 8);
      break;
    case 0x112: case 0x113: case 0x116: case 0x117: moveHalf(p); break; // MOVLPS MOVHLPS MOVHPS MOVLHPS, PD
    case 0x128: case 0x129: // MOVAPS MOVAPD
      if (p <= PF_66) moveFull(opIdx == 0x129, true); else raiseUD();
      break;
    case 0x12b: // MOVNTPS MOVNTPD
      if (p <= PF_66 && isMem) moveFull(true, true); else raiseUD();
      break;
    case 0x16f: case 0x17f: // MOVQ mm / MOVDQA / MOVDQU
      if (p == PF_NONE) moveMmx(opIdx == 0x17f);
      else if (p == PF_F2) raiseUD();
      else moveFull(opIdx == 0x17f, p == PF_66);
      break;
    case 0x1e7: // MOVNTQ / MOVNTDQ
      if (!isMem || p > PF_66) raiseUD();
      else if (p == PF_NONE) moveMmx(true);
      else moveFull(true, true);
      break;
    case 0x16e: moveGpr(true, mmxOrXmm(p)); break; // MOVD/MOVQ mm|xmm, r/m
    case 0x17e: // MOVD/MOVQ r/m, mm|xmm; F3: MOVQ xmm, xmm/m64
      if (p == PF_F3) moveQword(p);
      else moveGpr(false, mmxOrXmm(p));
      break;
    case 0x1d6: moveQword(p); break; // MOVQ xmm/m64, xmm; MOVQ2DQ; MOVDQ2Q
    case 0x1c3: movnti(p); break;
    case 0x1f7: maskmov(mmxOrXmm(p)); break; // MASKMOVQ / MASKMOVDQU

    // ---- floating point
    case 0x151: case 0x158: case 0x159: case 0x15c: case 0x15d: case 0x15e: case 0x15f: case 0x1c2:
      fpOp(p); break;
    case 0x152: case 0x153: // RSQRTPS/SS, RCPPS/SS
      if (p == PF_NONE || p == PF_F3) fpOp(p); else raiseUD();
      break;
    case 0x12e: case 0x12f: comi(p); break; // UCOMISS/UCOMISD, COMISS/COMISD
    case 0x12a: case 0x12c: case 0x12d: case 0x15a: case 0x15b: case 0x1e6: convertOp(p); break;

    // ---- packed operations dst op= src (integer, logic, unpack, shuffle)
    case 0x160: case 0x161: case 0x162: case 0x163: case 0x164: case 0x165: case 0x166: case 0x167:
    case 0x168: case 0x169: case 0x16a: case 0x16b: case 0x174: case 0x175: case 0x176:
    case 0x1d1: case 0x1d2: case 0x1d3: case 0x1d4: case 0x1d5:
    case 0x1d8: case 0x1d9: case 0x1da: case 0x1db: case 0x1dc: case 0x1dd: case 0x1de: case 0x1df:
    case 0x1e0: case 0x1e1: case 0x1e2: case 0x1e3: case 0x1e4: case 0x1e5:
    case 0x1e8: case 0x1e9: case 0x1ea: case 0x1eb: case 0x1ec: case 0x1ed: case 0x1ee: case 0x1ef:
    case 0x1f1: case 0x1f2: case 0x1f3: case 0x1f4: case 0x1f5: case 0x1f6:
    case 0x1f8: case 0x1f9: case 0x1fa: case 0x1fb: case 0x1fc: case 0x1fd: case 0x1fe:
      packedOp(mmxOrXmm(p), p); break;
    case 0x16c: case 0x16d: packedOp(p == PF_66 ? 16 : 0, p); break; // PUNPCKLQDQ, PUNPCKHQDQ
    case 0x114: case 0x115: case 0x154: case 0x155: case 0x156: case 0x157: case 0x1c6:
      packedOp(p <= PF_66 ? 16 : 0, p); break; // UNPCK*, AND/ANDN/OR/XOR PS/PD, SHUFPS/PD
    case 0x170: packedOp(p == PF_NONE ? 8 : 16, p); break; // PSHUFW / PSHUFD PSHUFHW PSHUFLW
    case 0x171: case 0x172: case 0x173: shiftImm(mmxOrXmm(p)); break;
    case 0x1c4: insertWord(mmxOrXmm(p)); break; // PINSRW
    case 0x150: toGpr(p <= PF_66 ? 16 : 0, p); break; // MOVMSKPS/PD
    case 0x1c5: case 0x1d7: toGpr(mmxOrXmm(p), p); break; // PEXTRW, PMOVMSKB

    // ---- state
    case 0x177: // EMMS
      if (p != PF_NONE) raiseUD();
      else if (available(AV_MMX)) mmxLeave();
      break;
    case 0x1ae: group15(p); break;
    default: raiseUD(); break;
  }
}

// ==================================================================== moves

/** MOVUPS/MOVUPD/MOVDQU (unaligned), MOVAPS/MOVAPD/MOVDQA, MOVNTPS/MOVNTPD/MOVNTDQ (`align`):
 *  the whole 16 bytes, to the r/m operand when `toRm`. */
function moveFull(toRm: bool, align: bool): void {
  if (!available(AV_SSE)) return;
  const reg = xmmPtr(regField);
  if (toRm) {
    const d = rmDst(16, align, false);
    if (d != 0) v128.store(d, v128.load(reg));
  } else {
    const s = rmSrc(16, align, false);
    if (s != 0) v128.store(reg, v128.load(s));
  }
}

/** MOVSS / MOVSD (n = 4 / 8): register to register moves the low element only; a load from memory
 *  zeroes the rest of the register; a store writes n bytes. */
function moveScalar(toRm: bool, n: i32): void {
  if (!available(AV_SSE)) return;
  const reg = xmmPtr(regField);
  let d: usize, s: usize;
  if (toRm) { d = rmDst(n, false, false); s = reg; }
  else { s = rmSrc(n, false, false); d = reg; }
  if (d == 0 || s == 0) return;
  const v = n == 4 ? <u64>load<u32>(s) : load<u64>(s);
  if (!toRm && isMem) v128.store(d, i64x2.splat(0));
  if (n == 4) store<u32>(d, <u32>v); else store<u64>(d, v);
}

/** 0F 12/13/16/17: MOVLPS/MOVLPD and MOVHPS/MOVHPD move a quadword between memory and the low/high
 *  half of an XMM register; the register forms of 0F 12/16 without prefix are MOVHLPS (low = source
 *  high) and MOVLHPS (high = source low). (F3/F2 are SSE3's MOVSLDUP/MOVSHDUP/MOVDDUP: #UD here.) */
function moveHalf(p: i32): void {
  const half: usize = opIdx >= 0x116 ? 8 : 0;
  const toMem = (opIdx & 1) != 0;
  if (p > PF_66 || (!isMem && (toMem || p == PF_66))) { raiseUD(); return; }
  if (!available(AV_SSE)) return;
  const reg = xmmPtr(regField) + half;
  if (!isMem) {
    store<u64>(reg, load<u64>(xmmPtr(rmField) + (8 - half)));
    return;
  }
  const m = memOperand(8, toMem ? ACC_WRITE : ACC_READ, false);
  if (m == 0) return;
  if (toMem) store<u64>(m, load<u64>(reg)); else store<u64>(reg, load<u64>(m));
}

/** MOVQ mm, mm/m64 (0F 6F) and MOVQ mm/m64, mm (0F 7F, and MOVNTQ 0F E7). */
function moveMmx(toRm: bool): void {
  if (!available(AV_MMX)) return;
  const reg = mmPtr(regField);
  if (toRm) {
    if (isMem) mmxStoreStart();
    const d = rmDst(8, false, true);
    if (d == 0) return;
    mmxEnter();
    store<u64>(d, load<u64>(reg));
    if (!isMem) mmWritten(rmField);
  } else {
    const s = rmSrc(8, false, true);
    if (s == 0) return;
    mmxEnter();
    store<u64>(reg, load<u64>(s));
    mmWritten(regField);
  }
}

/** MOVD/MOVQ between a general register or memory (4 bytes, 8 with REX.W) and MM (w = 8) or XMM
 *  (w = 16): into the vector register zero-extended (`toVec`), or its low bytes out, zero-extended
 *  into a 64-bit register. */
function moveGpr(toVec: bool, w: i32): void {
  if (w == 0) { raiseUD(); return; }
  const mm = w == 8;
  if (!available(mm ? AV_MMX : AV_SSE)) return;
  const n = gprSize();
  const vec = mm ? mmPtr(regField) : xmmPtr(regField);
  if (toVec) {
    let v: u64;
    if (isMem) {
      const s = memOperand(n, ACC_READ, false);
      if (s == 0) return;
      v = n == 8 ? load<u64>(s) : <u64>load<u32>(s);
    } else {
      v = n == 8 ? getReg64(rmField) : getReg64(rmField) & 0xffffffff;
    }
    if (mm) mmxEnter();
    putZx(vec, v, w);
    if (mm) mmWritten(regField);
  } else {
    const v = n == 8 ? load<u64>(vec) : <u64>load<u32>(vec);
    if (mm && isMem) mmxStoreStart();
    if (isMem) {
      const d = memOperand(n, ACC_WRITE, false);
      if (d == 0) return;
      if (mm) mmxEnter();
      if (n == 8) store<u64>(d, v); else store<u32>(d, <u32>v);
    } else {
      if (mm) mmxEnter();
      setReg64(rmField, v);
    }
  }
}

/** The quadword moves: F3 0F 7E MOVQ xmm, xmm/m64 and 66 0F D6 MOVQ xmm/m64, xmm (a register
 *  destination's high quadword is zeroed), F3 0F D6 MOVQ2DQ xmm, mm and F2 0F D6 MOVDQ2Q mm, xmm. */
function moveQword(p: i32): void {
  const d6 = opIdx == 0x1d6;
  if (d6 && (p == PF_NONE || (p >= PF_F3 && isMem))) { raiseUD(); return; }
  if (!available(d6 && p >= PF_F3 ? AV_MIXED : AV_SSE)) return;
  if (!d6) { // F3 0F 7E
    const s = rmSrc(8, false, false);
    if (s != 0) putZx(xmmPtr(regField), load<u64>(s), 16);
    return;
  }
  if (p == PF_66) {
    const d = rmDst(8, false, false);
    if (d == 0) return;
    const v = load<u64>(xmmPtr(regField));
    if (isMem) store<u64>(d, v); else putZx(d, v, 16);
  } else if (p == PF_F3) {
    mmxEnter();
    putZx(xmmPtr(regField), load<u64>(mmPtr(rmField)), 16);
  } else {
    mmxEnter();
    store<u64>(mmPtr(regField), load<u64>(xmmPtr(rmField)));
    mmWritten(regField);
  }
}

/** MOVNTI m32/m64, r32/r64: a plain store of a general register (no x87/SSE state involved). */
function movnti(p: i32): void {
  if (p != PF_NONE || !isMem) { raiseUD(); return; }
  const n = gprSize();
  const d = memOperand(n, ACC_WRITE, false);
  if (d == 0) return;
  const v = getReg64(regField);
  if (n == 8) store<u64>(d, v); else store<u32>(d, <u32>v);
}

/** MASKMOVQ mm1, mm2 / MASKMOVDQU xmm1, xmm2: byte i of the first register goes to DS:[rDI + i]
 *  (segment override allowed, address size by 67h) when bit 7 of byte i of the second is set.
 *  Unselected bytes are not accessed; every selected byte is checked for faults before any is
 *  written. */
function maskmov(w: i32): void {
  if (w == 0 || isMem) { raiseUD(); return; }
  const mm = w == 8;
  if (!available(mm ? AV_MMX : AV_SSE)) return;
  const data = mm ? mmPtr(regField) : xmmPtr(regField);
  const bits = maskmovMask(mm ? mmPtr(rmField) : xmmPtr(rmField), w);
  const amask: u64 = asize == 8 ? <u64>-1 : asize == 4 ? 0xffffffff : 0xffff;
  const rdi = getReg64(7);
  const base = segBase(seg);
  if (mm) mmxStoreStart(); // as the other MMX stores do (not measured: the tester keeps MASKMOVQ in range)
  for (let pass = 0; pass < 2; pass++) {
    for (let i = 0; i < w; i++) {
      if (((bits >> i) & 1) == 0) continue;
      const off = (rdi + <u64>i) & amask;
      if (pass == 0 && !segmentOk(seg, off, 1)) return;
      const h = translate(base + off, 1, ACC_WRITE);
      if (h == 0) return;
      if (pass == 1) store<u8>(h, load<u8>(data + <usize>i));
    }
    if (pass == 0 && mm) mmxEnter();
  }
}

// ==================================================================== floating point

/** The source of a floating-point operation of `shape`: m32/m64 for scalars (no alignment rule),
 *  an aligned m128 for packed shapes, or the r/m XMM register. */
function fpSource(shape: i32): usize {
  if ((shape & 1) != 0) return rmSrc((shape & 2) != 0 ? 8 : 4, false, false);
  return rmSrc(16, true, false);
}

/** ADD/SUB/MUL/DIV/MIN/MAX/SQRT and CMP (imm8 predicate) in the four shapes, RCP/RSQRT (PS/SS). */
function fpOp(p: i32): void {
  if (!available(AV_SSE)) return;
  const shape = shapeOf(p);
  const src = fpSource(shape);
  if (src == 0) return;
  const dst = xmmPtr(regField);
  const mx = getMxcsr();
  let flags = 0;
  switch (opIdx) {
    case 0x151: flags = fpArith(FP_SQRT, shape, dst, src, mx); break;
    case 0x158: flags = fpArith(FP_ADD, shape, dst, src, mx); break;
    case 0x159: flags = fpArith(FP_MUL, shape, dst, src, mx); break;
    case 0x15c: flags = fpArith(FP_SUB, shape, dst, src, mx); break;
    case 0x15d: flags = fpArith(FP_MIN, shape, dst, src, mx); break;
    case 0x15e: flags = fpArith(FP_DIV, shape, dst, src, mx); break;
    case 0x15f: flags = fpArith(FP_MAX, shape, dst, src, mx); break;
    case 0x1c2: flags = fpCmp(shape, dst, src, imm8() & 7, mx); break;
    // No exceptions, MXCSR not consulted; the approximation table is the model's.
    case 0x152: fpRsqrt(shape, dst, src, modelHas(CPUB_APPROX_AMD)); return;
    default: fpRcp(shape, dst, src, modelHas(CPUB_APPROX_AMD)); return; // 0x153
  }
  fpDone(flags);
}

/** COMISS/COMISD (0F 2F) and UCOMISS/UCOMISD (0F 2E): ZF PF CF from the compare, OF SF AF = 0. */
function comi(p: i32): void {
  if (p > PF_66) { raiseUD(); return; }
  if (!available(AV_SSE)) return;
  const dbl = p == PF_66;
  const src = rmSrc(dbl ? 8 : 4, false, false);
  if (src == 0) return;
  const r = fpComi(xmmPtr(regField), src, dbl, opIdx == 0x12f, getMxcsr());
  if (fpDone(r)) setArithFlags(<u64>FLAGS_ARITH, <u64>(r >>> COMI_SHIFT));
}

// Register files of a conversion's operands.
const K_XMM: i32 = 0;
const K_MM: i32 = 1;
const K_GPR: i32 = 2;

/** The CVT* family: 0F 2A (from MM or a GPR), 0F 2C/2D (to MM or a GPR, 2C truncating), 0F 5A
 *  (single <-> double), 0F 5B and 0F E6 (doubleword integers <-> packed floats). */
function convertOp(p: i32): void {
  const op = opIdx;
  const gsize = gprSize();
  let dstK = K_XMM, srcK = K_XMM;
  let size = 16; // a memory source: 16 = aligned m128, otherwise m32/m64 with no alignment rule
  switch (op) {
    case 0x12a:
      if (p <= PF_66) { srcK = K_MM; size = 8; } else { srcK = K_GPR; size = gsize; }
      break;
    case 0x12c: case 0x12d:
      if (p <= PF_66) { dstK = K_MM; size = p == PF_NONE ? 8 : 16; } else { dstK = K_GPR; size = p == PF_F3 ? 4 : 8; }
      break;
    case 0x15a: size = p == PF_66 ? 16 : p == PF_F3 ? 4 : 8; break;
    case 0x15b: if (p == PF_F2) { raiseUD(); return; } break;
    default: // 0x1e6
      if (p == PF_NONE) { raiseUD(); return; }
      if (p == PF_F3) size = 8;
      break;
  }
  // CVTPI2PS/CVTPI2PD make the x87 -> MMX transition only with an MM source, not from memory.
  if (!available(dstK == K_MM || (srcK == K_MM && !isMem) ? AV_MIXED : AV_SSE)) return;
  let src: usize;
  if (isMem) src = memOperand(size, ACC_READ, size == 16);
  else src = srcK == K_MM ? mmPtr(rmField) : srcK == K_GPR ? gprPtr(rmField) : xmmPtr(rmField);
  if (src == 0) return;
  if (dstK == K_MM || (srcK == K_MM && !isMem)) mmxEnter(); // kept if #XM follows
  const dst = dstK == K_MM ? mmPtr(regField) : dstK == K_GPR ? gprPtr(regField) : xmmPtr(regField);
  const mx = getMxcsr();
  const trunc = op == 0x12c;
  const is64 = gsize == 8;
  let f = 0;
  switch (op) {
    case 0x12a:
      if (p == PF_NONE) f = cvtpi2ps(dst, src, mx);
      else if (p == PF_66) f = cvtpi2pd(dst, src, mx);
      else if (p == PF_F3) f = cvtsi2ss(dst, src, is64, mx);
      else f = cvtsi2sd(dst, src, is64, mx);
      break;
    case 0x12c: case 0x12d:
      if (p == PF_NONE) f = cvtps2pi(dst, src, trunc, mx);
      else if (p == PF_66) f = cvtpd2pi(dst, src, trunc, mx);
      else if (p == PF_F3) f = cvtss2si(dst, src, is64, trunc, mx);
      else f = cvtsd2si(dst, src, is64, trunc, mx);
      break;
    case 0x15a:
      if (p == PF_NONE) f = cvtps2pd(dst, src, mx);
      else if (p == PF_66) f = cvtpd2ps(dst, src, mx);
      else if (p == PF_F3) f = cvtss2sd(dst, src, mx);
      else f = cvtsd2ss(dst, src, mx);
      break;
    case 0x15b:
      if (p == PF_NONE) f = cvtdq2ps(dst, src, mx);
      else f = cvtps2dq(dst, src, p == PF_F3, mx); // 66 CVTPS2DQ, F3 CVTTPS2DQ
      break;
    default: // 0x1e6: 66 CVTTPD2DQ, F2 CVTPD2DQ, F3 CVTDQ2PD
      if (p == PF_F3) f = cvtdq2pd(dst, src, mx);
      else f = cvtpd2dq(dst, src, p == PF_66, mx);
      break;
  }
  if (!fpDone(f)) return;
  if (dstK == K_GPR && !is64) store<u32>(dst + 4, 0); // a 32-bit result zero-extends
  if (dstK == K_MM) mmWritten(regField);
}

// ==================================================================== packed dst op= src

/** The two-operand packed operations: MMX (w = 8: MM register, m64 source; PUNPCKL* read m32) and
 *  XMM (w = 16: aligned m128 source), with w = 0 meaning #UD. */
function packedOp(w: i32, p: i32): void {
  if (w == 0) { raiseUD(); return; }
  const mm = w == 8;
  if (!available(mm ? AV_MMX : AV_SSE)) return;
  const op = opIdx;
  const src = rmSrc(mm && op >= 0x160 && op <= 0x162 ? 4 : w, !mm, mm);
  if (src == 0) return;
  if (mm) mmxEnter();
  const dst = mm ? mmPtr(regField) : xmmPtr(regField);
  packedKernel(op, dst, src, w, p);
  if (mm) mmWritten(regField);
}

function packedKernel(op: i32, d: usize, s: usize, w: i32, p: i32): void {
  switch (op) {
    case 0x114: punpckl(d, s, 16, p == PF_NONE ? 4 : 8); break; // UNPCKLPS/PD
    case 0x115: punpckh(d, s, 16, p == PF_NONE ? 4 : 8); break; // UNPCKHPS/PD
    case 0x154: case 0x155: case 0x156: case 0x157: plogic(d, s, 16, op - 0x154); break; // AND ANDN OR XOR
    case 0x1c6: if (p == PF_NONE) shufps(d, s, imm8()); else shufpd(d, s, imm8()); break;
    case 0x170:
      if (p == PF_NONE) pshufw(d, s, imm8());
      else if (p == PF_66) pshufd(d, s, imm8());
      else if (p == PF_F3) pshufhw(d, s, imm8());
      else pshuflw(d, s, imm8());
      break;
    case 0x160: case 0x161: case 0x162: punpckl(d, s, w, 1 << (op - 0x160)); break;
    case 0x168: case 0x169: case 0x16a: punpckh(d, s, w, 1 << (op - 0x168)); break;
    case 0x16c: punpckl(d, s, 16, 8); break;
    case 0x16d: punpckh(d, s, 16, 8); break;
    case 0x163: pack(d, s, w, PACK_SSWB); break;
    case 0x167: pack(d, s, w, PACK_USWB); break;
    case 0x16b: pack(d, s, w, PACK_SSDW); break;
    case 0x164: case 0x165: case 0x166: pcmpgt(d, s, w, 1 << (op - 0x164)); break;
    case 0x174: case 0x175: case 0x176: pcmpeq(d, s, w, 1 << (op - 0x174)); break;
    case 0x1d1: case 0x1d2: case 0x1d3: pshiftReg(d, s, w, 1 << (op - 0x1d0), SHIFT_RL); break;
    case 0x1e1: case 0x1e2: pshiftReg(d, s, w, 1 << (op - 0x1e0), SHIFT_RA); break;
    case 0x1f1: case 0x1f2: case 0x1f3: pshiftReg(d, s, w, 1 << (op - 0x1f0), SHIFT_LL); break;
    case 0x1d4: padd(d, s, w, 8); break;
    case 0x1fc: case 0x1fd: case 0x1fe: padd(d, s, w, 1 << (op - 0x1fc)); break;
    case 0x1f8: case 0x1f9: case 0x1fa: case 0x1fb: psub(d, s, w, 1 << (op - 0x1f8)); break;
    case 0x1d8: case 0x1d9: psubs(d, s, w, op - 0x1d7, true); break; // PSUBUSB/W
    case 0x1dc: case 0x1dd: padds(d, s, w, op - 0x1db, true); break; // PADDUSB/W
    case 0x1e8: case 0x1e9: psubs(d, s, w, op - 0x1e7, false); break; // PSUBSB/W
    case 0x1ec: case 0x1ed: padds(d, s, w, op - 0x1eb, false); break; // PADDSB/W
    case 0x1d5: pmullw(d, s, w); break;
    case 0x1e4: pmulhw(d, s, w, true); break;
    case 0x1e5: pmulhw(d, s, w, false); break;
    case 0x1f4: pmuludq(d, s, w); break;
    case 0x1f5: pmaddwd(d, s, w); break;
    case 0x1f6: psadbw(d, s, w); break;
    case 0x1e0: pavg(d, s, w, 1); break;
    case 0x1e3: pavg(d, s, w, 2); break;
    case 0x1da: pminmaxub(d, s, w, false); break;
    case 0x1de: pminmaxub(d, s, w, true); break;
    case 0x1ea: pminmaxsw(d, s, w, false); break;
    case 0x1ee: pminmaxsw(d, s, w, true); break;
    case 0x1db: plogic(d, s, w, LOGIC_AND); break;
    case 0x1df: plogic(d, s, w, LOGIC_ANDN); break;
    case 0x1eb: plogic(d, s, w, LOGIC_OR); break;
    default: plogic(d, s, w, LOGIC_XOR); break; // 0x1ef
  }
}

/** Groups 12-14 (0F 71/72/73, register operand only): PSRL/PSRA/PSLL W/D/Q by imm8, and for XMM
 *  PSRLDQ (/3) / PSLLDQ (/7). */
function shiftImm(w: i32): void {
  const op = opIdx;
  let kind = -1;
  if (ext == 2) kind = SHIFT_RL;
  else if (ext == 6) kind = SHIFT_LL;
  else if (ext == 4 && op != 0x173) kind = SHIFT_RA;
  else if ((ext == 3 || ext == 7) && op == 0x173 && w == 16) kind = 3; // byte shift
  if (w == 0 || isMem || kind < 0) { raiseUD(); return; }
  const mm = w == 8;
  if (!available(mm ? AV_MMX : AV_SSE)) return;
  if (mm) mmxEnter();
  const dst = mm ? mmPtr(rmField) : xmmPtr(rmField);
  if (kind == 3) pbyteShift(dst, imm8(), ext == 7);
  else pshiftImm(dst, imm8(), w, 1 << (op - 0x170), kind);
  if (mm) mmWritten(rmField);
}

/** PINSRW mm|xmm, r32/m16, imm8. */
function insertWord(w: i32): void {
  if (w == 0) { raiseUD(); return; }
  const mm = w == 8;
  if (!available(mm ? AV_MMX : AV_SSE)) return;
  let v: i32;
  if (isMem) {
    const s = memOperand(2, ACC_READ, false);
    if (s == 0) return;
    v = <i32>load<u16>(s);
  } else {
    v = <i32>getReg64(rmField);
  }
  if (mm) mmxEnter();
  pinsrw(mm ? mmPtr(regField) : xmmPtr(regField), v, w, imm8());
  if (mm) mmWritten(regField);
}

/** Register-only extractions into a general register, zero-extended to 64 bits: MOVMSKPS/PD,
 *  PEXTRW, PMOVMSKB. */
function toGpr(w: i32, p: i32): void {
  if (w == 0 || isMem) { raiseUD(); return; }
  const mm = w == 8;
  if (!available(mm ? AV_MMX : AV_SSE)) return;
  if (mm) mmxEnter();
  const src = mm ? mmPtr(rmField) : xmmPtr(rmField);
  let v: i32;
  if (opIdx == 0x150) v = p == PF_NONE ? movmskps(src) : movmskpd(src);
  else if (opIdx == 0x1c5) v = pextrw(src, w, imm8());
  else v = pmovmskb(src, w);
  setReg64(regField, <u64><u32>v);
}

// ==================================================================== 0F AE memory forms

/** Group 15 with a memory operand: /0 FXSAVE, /1 FXRSTOR (ops/x87.ts), /2 LDMXCSR, /3 STMXCSR,
 *  /7 CLFLUSH (nothing to flush: only the access is checked). The register forms /5-/7 (fences) are
 *  handled by execute.ts; the rest (XSAVE*, RDFSBASE & co., CLWB, CLFLUSHOPT) are not supported:
 *  their CPUID bits are clear, so they are #UD. A 66 prefix on /0-/3 is ignored. */
function group15(p: i32): void {
  if (!isMem || p > PF_66) { raiseUD(); return; }
  switch (ext) {
    case 0: fxsave(); break;
    case 1: fxrstor(); break;
    case 2: case 3: mxcsrOp(ext == 2); break;
    case 4: if (p == PF_NONE) xsave(); else raiseUD(); break;
    case 5: if (p == PF_NONE) xrstor(); else raiseUD(); break;
    case 7:
      if (p == PF_NONE) memOperand(1, ACC_READ, false);
      else raiseUD();
      break;
    default: raiseUD(); break;
  }
}

/** LDMXCSR m32 (#GP(0) if a reserved bit is set) / STMXCSR m32. */
function mxcsrOp(ld: bool): void {
  if (!available(AV_SSE)) return;
  const m = memOperand(4, ld ? ACC_READ : ACC_WRITE, false);
  if (m == 0) return;
  if (!ld) { store<i32>(m, getMxcsr()); return; }
  const v = load<i32>(m);
  if ((v & ~MXCSR_WRITABLE) != 0) { raiseGP0(); return; }
  setMxcsr(v);
}
