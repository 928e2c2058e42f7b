// Data movement: MOV (all forms), MOVZX/MOVSX/MOVSXD, MOVBE, LEA, XCHG, XADD, CMPXCHG,
// CMPXCHG8B/16B, CBW/CWDE/CDQE, CWD/CDQ/CQO, XLAT (SDM Vol. 2).
import { ACC_READ, ACC_WRITE, LF_ADD, FLAG_ZF } from '../../abi';
import { sizeMask, sext, loadSized, storeSized, getReg64, setReg64 } from '../state';
import { lazy, setArithFlags } from '../flags';
import { raiseGP0, raiseUD } from '../fault';
import {
  opIdx, osize, asize, imm, isMem, ea, eaOffset, rex, rmField, regField, segmentBase, seg, segmentedAddress,
} from '../decode';
import { rmPtr, putRM, getG, setG, getReg, setReg, regPtr } from '../operands';
import { aluCompute, ALU_CMP } from './alu';
import { translate } from '../../mmu/translate';

@inline function byteOrOsize(): i32 { return (opIdx & 1) != 0 ? osize : 1; }

/** 88/89: MOV E, G.  C6/C7 /0: MOV E, imm. */
export function movEG(): void {
  const size = byteOrOsize();
  const p = rmPtr(size, ACC_WRITE);
  if (p == 0) return;
  putRM(p, size, getG(size));
}
export function movEImm(): void {
  const size = opIdx == 0xc6 ? 1 : osize;
  const p = rmPtr(size, ACC_WRITE);
  if (p == 0) return;
  putRM(p, size, imm & sizeMask(size));
}

/** 8A/8B: MOV G, E. */
export function movGE(): void {
  const size = byteOrOsize();
  const p = rmPtr(size, ACC_READ);
  if (p == 0) return;
  setG(size, loadSized(p, size));
}

/** A0-A3: MOV AL/rAX <-> moffs. */
export function movMoffs(): void {
  const size = byteOrOsize();
  const lin = segmentedAddress(seg, imm, size);
  if (lin == <u64>-1) return;
  if (opIdx < 0xa2) {
    const p = translate(lin, size, ACC_READ);
    if (p == 0) return;
    setReg(0, size, loadSized(p, size));
  } else {
    const p = translate(lin, size, ACC_WRITE);
    if (p == 0) return;
    storeSized(p, size, getReg(0, size));
  }
}

/** B0-B7: MOV r8, imm8.  B8-BF: MOV r, imm16/32/64. */
export function movRegImm(): void {
  const r = (opIdx & 7) | ((rex & 1) << 3);
  if (opIdx < 0xb8) setReg(r, 1, imm);
  else setReg(r, osize, imm);
}

/** 0F B6/B7 MOVZX, 0F BE/BF MOVSX. */
export function movExtend(): void {
  const srcSize = (opIdx & 1) != 0 ? 2 : 1;
  const p = rmPtr(srcSize, ACC_READ);
  if (p == 0) return;
  const v = loadSized(p, srcSize);
  setG(osize, opIdx >= 0x1be ? sext(v, srcSize) & sizeMask(osize) : v);
}

/** 63: MOVSXD (REX.W: sign-extend a dword; otherwise a plain 32- or 16-bit move). */
export function movsxd(): void {
  const srcSize = osize == 8 ? 4 : osize;
  const p = rmPtr(srcSize, ACC_READ);
  if (p == 0) return;
  const v = loadSized(p, srcSize);
  setG(osize, osize == 8 ? sext(v, 4) : v);
}

/** 0F 38 F0/F1: MOVBE (memory operand only; the register form is #UD). */
export function movbe(): void {
  if (!isMem) { raiseUD(); return; }
  const size = osize;
  const load = opIdx == 0x2f0;
  const p = translate(ea, size, load ? ACC_READ : ACC_WRITE);
  if (p == 0) return;
  if (load) setG(size, byteSwap(loadSized(p, size), size));
  else storeSized(p, size, byteSwap(getG(size), size));
}
function byteSwap(v: u64, size: i32): u64 {
  if (size == 8) return bswap<u64>(v);
  if (size == 4) return <u64>bswap<u32>(<u32>v);
  return <u64>bswap<u16>(<u16>v);
}

/** 8D: LEA (the offset, without segment base; a register operand is #UD). */
export function lea(): void {
  if (!isMem) { raiseUD(); return; }
  setG(osize, eaOffset & sizeMask(osize));
}

/** 86/87: XCHG E, G (implicitly locked with memory).  90+r: XCHG rAX, r. */
export function xchgEG(): void {
  const size = byteOrOsize();
  const p = rmPtr(size, ACC_WRITE);
  if (p == 0) return;
  const a = loadSized(p, size);
  putRM(p, size, getG(size));
  setG(size, a);
}
export function xchgAccReg(): void {
  const r = (opIdx & 7) | ((rex & 1) << 3);
  const a = getReg(0, osize);
  setReg(0, osize, getReg(r, osize));
  setReg(r, osize, a);
}

/** 0F C0/C1: XADD E, G (TEMP = E + G; G = E; E = TEMP). */
export function xadd(): void {
  const size = opIdx == 0x1c0 ? 1 : osize;
  const p = rmPtr(size, ACC_WRITE);
  if (p == 0) return;
  const d = loadSized(p, size);
  const s = getG(size);
  const sum = (d + s) & sizeMask(size);
  lazy(LF_ADD, size, sum, d, s);
  setG(size, d);
  putRM(p, size, sum);
}

/** 0F B0/B1: CMPXCHG E, G: compare the accumulator with E (flags as CMP acc, E). */
export function cmpxchg(): void {
  const size = opIdx == 0x1b0 ? 1 : osize;
  const p = rmPtr(size, ACC_WRITE);
  if (p == 0) return;
  const d = loadSized(p, size);
  const acc = getReg(0, size);
  aluCompute(ALU_CMP, size, acc, d);
  if (acc == d) putRM(p, size, getG(size));
  else {
    // The destination is written back unchanged when it is memory (the locked cycle always writes).
    if (isMem) storeSized(p, size, d);
    setReg(0, size, d);
  }
}

/** 0F C7 /1: CMPXCHG8B m64, or CMPXCHG16B m128 with REX.W (needs 16-byte alignment). */
export function cmpxchg8b(): void {
  if (!isMem) { raiseUD(); return; }
  const wide = (rex & 8) != 0;
  if (wide && (ea & 15) != 0) { raiseGP0(); return; }
  const half = wide ? 8 : 4;
  const p = translate(ea, half * 2, ACC_WRITE);
  if (p == 0) return;
  const lo = loadSized(p, half), hi = loadSized(p + half, half);
  if (lo == getReg(0, half) && hi == getReg(2, half)) {
    storeSized(p, half, getReg(3, half));
    storeSized(p + half, half, getReg(1, half));
    setArithFlags(FLAG_ZF, FLAG_ZF);
  } else {
    storeSized(p, half, lo);
    storeSized(p + half, half, hi);
    setReg(0, half, lo);
    setReg(2, half, hi);
    setArithFlags(FLAG_ZF, 0);
  }
}

/** 98: CBW/CWDE/CDQE.  99: CWD/CDQ/CQO. */
export function cbw(): void {
  const half = osize >> 1;
  setReg(0, osize, sext(getReg(0, half), half) & sizeMask(osize));
}
export function cwd(): void {
  const negative = (getReg(0, osize) >> <u64>((osize << 3) - 1)) != 0;
  setReg(2, osize, negative ? sizeMask(osize) : 0);
}

/** D7: XLAT: AL = [rBX + AL]. */
export function xlat(): void {
  let off = getReg64(3) + (getReg64(0) & 0xff);
  if (asize == 4) off &= 0xffffffff;
  else if (asize == 2) off &= 0xffff;
  const lin = segmentedAddress(seg, off, 1);
  if (lin == <u64>-1) return;
  const p = translate(lin, 1, ACC_READ);
  if (p == 0) return;
  setReg(0, 1, <u64>load<u8>(p));
}
