// Register file, availability rules and operand access of the MMX/SSE/SSE2 instructions (ops/sse.ts).
//
// The x87/MMX/SSE state lives at cpu + ST_FXSAVE in the FXSAVE image layout (wasm/abi.ts), except
// that the eight ST slots hold the x87 registers in physical order (slot i = R_i), so MM_i is simply
// the low 64 bits of slot i (SDM Vol. 1, 9.5: MMX registers alias the x87 significands).
import {
  ST_FXSAVE, FX_FSW, FX_FTW, FX_MXCSR, FX_ST0, FX_XMM0, ST_CR0, ST_CR4, CR0_EM, CR0_TS,
  VEC_NM, VEC_MF, VEC_XM, VEC_UD, VEC_SS, VEC_GP, ACC_READ, ACC_WRITE, SEG_SS,
} from '../../abi';
import { cpu, flatHarness, mode64 } from '../state';
import { raise, raiseUD, raiseGP0 } from '../fault';
import { isMem, ea, eaOffset, seg, rmField, segmentAllows } from '../decode';
import { translate } from '../../mmu/translate';
import { simdFault, MXCSR_FLAGS } from '../simd/mxcsr';

export const CR4_OSFXSR: u64 = 0x200;
export const CR4_OSXMMEXCPT: u64 = 0x400;

/** FSW: TOP (bits 11-13) and ES, the "exception summary" that makes the next waiting x87/MMX
 *  instruction take #MF. */
const FSW_TOP: u16 = 0x3800;
const FSW_ES: u16 = 0x80;

// Availability classes (bit set): AV_SSE needs CR4.OSFXSR; AV_MMX works on MM registers (a pending
// x87 exception -> #MF).
export const AV_SSE: i32 = 1;
export const AV_MMX: i32 = 2;
/** SSE/SSE2 instructions with an MM operand: CVTPI2PS, CVTPS2PI, ..., MOVQ2DQ, MOVDQ2Q. */
export const AV_MIXED: i32 = AV_SSE | AV_MMX;

// @ts-ignore: decorator
@inline export function xmmPtr(r: i32): usize { return cpu + ST_FXSAVE + FX_XMM0 + (<usize>r << 4); }
/** MM_r (REX.R / REX.B are ignored for MM registers). */
// @ts-ignore: decorator
@inline export function mmPtr(r: i32): usize { return cpu + ST_FXSAVE + FX_ST0 + (<usize>(r & 7) << 4); }
// @ts-ignore: decorator
@inline export function getMxcsr(): i32 { return load<i32>(cpu + ST_FXSAVE + FX_MXCSR); }
// @ts-ignore: decorator
@inline export function setMxcsr(v: i32): void { store<i32>(cpu + ST_FXSAVE + FX_MXCSR, v); }

/** The CR0/CR4 rules (SDM Vol. 3A, 2.5, and the exception-condition tables for legacy SIMD and
 *  MMX instructions): CR0.EM = 1 -> #UD; (SSE/SSE2) CR4.OSFXSR = 0 -> #UD; CR0.TS = 1 -> #NM; then,
 *  with MM operands, a pending unmasked x87 exception (FSW.ES) -> #MF (also with CR0.NE = 0, where
 *  a PC would signal FERR#/IRQ 13 instead: not modelled). The flat test harness runs as if
 *  OSFXSR = 1 and EM = TS = 0. */
export function available(kind: i32): bool {
  if (!flatHarness) {
    const cr0 = load<u64>(cpu + ST_CR0);
    if ((cr0 & CR0_EM) != 0 || ((kind & AV_SSE) != 0 && (load<u64>(cpu + ST_CR4) & CR4_OSFXSR) == 0)) {
      raiseUD();
      return false;
    }
    if ((cr0 & CR0_TS) != 0) { raise(VEC_NM, 0, false); return false; }
  }
  if ((kind & AV_MMX) != 0 && (load<u16>(cpu + ST_FXSAVE + FX_FSW) & FSW_ES) != 0) {
    raise(VEC_MF, 0, false);
    return false;
  }
  return true;
}

// The x87 -> MMX transition (SDM Vol. 1, 9.5.1 and 9.6.2): TOP = 0 and every tag valid. Measured on this
// machine's CPU (difftest), it happens once the memory operand is known good: a load that faults
// leaves TOP and the tags alone, while #XM (CVTPS2PI & co.) keeps the transition; a store to
// memory (MOVD/MOVQ/MOVNTQ m, mm) that faults has already cleared TOP (not the tags).

/** The transition: call it after the instruction's memory faults are known, before #XM. */
export function mmxEnter(): void {
  const fx = cpu + ST_FXSAVE;
  store<u16>(fx + FX_FSW, load<u16>(fx + FX_FSW) & ~FSW_TOP);
  store<u8>(fx + FX_FTW, 0xff);
}

/** A store of an MM register to memory clears TOP before its access is checked. */
export function mmxStoreStart(): void {
  const fx = cpu + ST_FXSAVE;
  store<u16>(fx + FX_FSW, load<u16>(fx + FX_FSW) & ~FSW_TOP);
}

/** A write to MM_r also sets the sign/exponent field of R_r to all ones (SDM Vol. 1, 9.5.1). */
// @ts-ignore: decorator
@inline export function mmWritten(r: i32): void {
  store<u16>(mmPtr(r) + 8, 0xffff);
}

/** EMMS: every x87 register empty, and (as this machine's CPU does) TOP = 0. */
export function mmxLeave(): void {
  const fx = cpu + ST_FXSAVE;
  store<u16>(fx + FX_FSW, load<u16>(fx + FX_FSW) & ~FSW_TOP);
  store<u8>(fx + FX_FTW, 0);
}

/** OR the exception flags an operation raised into MXCSR; if one is unmasked, raise #XM (or #UD with
 *  CR4.OSXMMEXCPT = 0) and return false: the operation left its destination unchanged. */
export function fpDone(flags: i32): bool {
  const mx = getMxcsr();
  setMxcsr(mx | (flags & MXCSR_FLAGS));
  if (!simdFault(flags, mx)) return true;
  const xm = flatHarness || (load<u64>(cpu + ST_CR4) & CR4_OSXMMEXCPT) != 0;
  raise(xm ? VEC_XM : VEC_UD, 0, false);
  return false;
}

/** Outside 64-bit mode, [offset, offset + size) must lie within segment `sg` (SDM Vol. 3A, 5.3):
 *  otherwise #SS(0) for SS, #GP(0) for the others. The decoder leaves this check to the instruction
 *  for the MMX/SSE opcodes, whose operand sizes are not the operand-size attribute. */
export function segmentOk(sg: i32, offset: u64, size: i32): bool {
  if (mode64 || segmentAllows(sg, offset, <u64>size)) return true;
  raise(sg == SEG_SS ? VEC_SS : VEC_GP, 0, true);
  return false;
}

/** Host pointer of the memory operand, `size` bytes, for `access`; a legacy SSE operand that must be
 *  16-byte aligned (`align`) and is not raises #GP(0). 0 with the fault raised. */
export function memOperand(size: i32, access: i32, align: bool): usize {
  if (align && (ea & 15) != 0) { raiseGP0(); return 0; }
  if (!segmentOk(seg, eaOffset, size)) return 0;
  return translate(ea, size, access);
}

/** The r/m operand as a source: the XMM (or, with `mm`, MM) register, or `size` bytes of memory. */
export function rmSrc(size: i32, align: bool, mm: bool): usize {
  if (isMem) return memOperand(size, ACC_READ, align);
  return mm ? mmPtr(rmField) : xmmPtr(rmField);
}

/** The r/m operand as a destination (register, or memory translated for writing). */
export function rmDst(size: i32, align: bool, mm: bool): usize {
  if (isMem) return memOperand(size, ACC_WRITE, align);
  return mm ? mmPtr(rmField) : xmmPtr(rmField);
}
