// Stack and control flow: PUSH/POP (all forms), PUSHF/POPF, ENTER/LEAVE, Jcc, JMP, CALL, RET,
// LOOP/LOOPE/LOOPNE/JRCXZ. In 64-bit mode near branches and stack operations default to 64 bits;
// 66h makes stack operations 16-bit and is ignored by near branches on Intel (SDM Vol. 1, 6.2-6.3;
// Vol. 2, "Operand size in 64-bit mode").
import { ACC_READ, ACC_WRITE, FLAG_RF, FLAG_VM, CPUB_CALL_TARGET_FIRST } from '../../abi';
import { modelHas } from '../model';
import { loadSized, storeSized, getReg64, setReg64, setRip, sizeMask, stackWidth, mode64 } from '../state';
import { getFlags, setFlags, cond, getZF } from '../flags';
import { opIdx, osize, asize, imm, imm2, isMem, ea, eaOffset, eaBaseIsRsp, rex, nextRip, prefixes, P_66, ext, segmentBase, segBase } from '../decode';
import { SEG_SS, VEC_SS } from '../../abi';
import { segmentAllows } from '../decode';
import { rmPtr, getReg, setReg, putRM } from '../operands';
import { translate } from '../../mmu/translate';
import { isCanonical, raiseGP0, raise } from '../fault';

const RSP = 4;
const RBP = 5;

/** Near branch: a non-canonical target faults on the branch itself (#GP(0), SDM Vol. 2A, JMP/CALL/RET
 *  "64-Bit Mode Exceptions"), so nothing has changed yet when it is raised. */
@inline export function branchTargetOk(target: u64): bool {
  if (isCanonical(target)) return true;
  raiseGP0();
  return false;
}

/** A near-branch target wraps to the operand size outside 64-bit mode (IP or EIP). */
@inline function nearTarget(t: u64): u64 { return mode64 ? t : osize == 2 ? t & 0xffff : t & 0xffffffff; }

/** Jump to a near target (relative or absolute), with the checks of the mode. */
export function jumpTo(target: u64): void {
  const t = nearTarget(target);
  if (branchTargetOk(t)) setRip(t);
}

/** Operand size of stack operations: 64-bit mode defaults to 8 (66h: 2), other modes use osize. */
@inline function stackSize(): i32 { return mode64 ? ((prefixes & P_66) != 0 ? 2 : 8) : osize; }

/** The stack pointer moved by `delta`, wrapped to the stack width (SP, ESP or RSP: SS.B, 64-bit mode). */
@inline function stackPointer(delta: u64): u64 {
  const sp = getReg64(RSP) + delta;
  return stackWidth == 8 ? sp : stackWidth == 4 ? sp & 0xffffffff : sp & 0xffff;
}
@inline function setStackPointer(sp: u64): void {
  if (stackWidth == 8) setReg64(RSP, sp);
  else setReg(RSP, stackWidth, sp);
}
/** Host pointer of `size` bytes at SS:sp. */
@inline function stackSlot(sp: u64, size: i32, access: i32): usize {
  // Outside 64-bit mode the slot must lie within SS's limit: #SS(0) (SDM Vol. 3A, 5.3).
  if (!mode64 && !segmentAllows(SEG_SS, sp, <u64>size)) { raise(VEC_SS, 0, true); return 0; }
  return translate(sp + segBase(SEG_SS), size, access);
}

/** Push `size` bytes; returns false (with the fault raised) if the stack is not writable. */
export function push(v: u64, size: i32): bool {
  const sp = stackPointer(0 - <u64>size);
  const p = stackSlot(sp, size, ACC_WRITE);
  if (p == 0) return false;
  storeSized(p, size, v);
  setStackPointer(sp);
  return true;
}

/** Read the top of stack without popping; `ok` tells whether it faulted. */
let popOk: bool = true;
function peek(size: i32, offset: u64): u64 {
  const p = stackSlot(stackPointer(offset), size, ACC_READ);
  popOk = p != 0;
  return p == 0 ? 0 : loadSized(p, size);
}
/** Release `bytes` of stack. */
@inline function popBytes(bytes: u64): void { setStackPointer(stackPointer(bytes)); }

/** 50+r PUSH r (PUSH RSP pushes the value before the decrement). */
export function pushReg(): void {
  const size = stackSize();
  push(getReg((opIdx & 7) | ((rex & 1) << 3), size), size);
}
/** 58+r POP r (POP RSP loads RSP with the popped value). */
export function popReg(): void {
  const size = stackSize();
  const v = peek(size, 0);
  if (!popOk) return;
  popBytes(<u64>size);
  setReg((opIdx & 7) | ((rex & 1) << 3), size, v);
}
/** 68/6A: PUSH imm (sign-extended to the stack width). */
export function pushImm(): void {
  const size = stackSize();
  push(imm & sizeMask(size), size);
}
/** FF /6: PUSH r/m. */
export function pushE(): void {
  const size = stackSize();
  const p = rmPtr(size, ACC_READ);
  if (p == 0) return;
  push(loadSized(p, size), size);
}
/** 8F /0: POP r/m. An RSP-based address is computed after the increment (SDM Vol. 2B, POP). */
export function popE(): void {
  const size = stackSize();
  const v = peek(size, 0);
  if (!popOk) return;
  if (isMem) {
    // An RSP base is read after the increment: recompute the offset (wrapping under 67h).
    let target = ea;
    if (eaBaseIsRsp) {
      let off = eaOffset + <u64>size;
      if (asize == 4) off &= 0xffffffff;
      else if (asize == 2) off &= 0xffff;
      target = off + segmentBase();
    }
    const p = translate(target, size, ACC_WRITE);
    if (p == 0) return;
    storeSized(p, size, v);
    popBytes(<u64>size);
  } else {
    popBytes(<u64>size);
    putRM(rmPtr(size, ACC_WRITE), size, v);
  }
}

/** 9C: PUSHF (RF and VM read as 0 in the image). */
export function pushf(): void {
  const size = stackSize();
  push(getFlags() & ~(<u64>(FLAG_RF | FLAG_VM)) & sizeMask(size), size);
}

/** Bits POPF may change at CPL 3 with IOPL 0 (IF, IOPL, VM, VIF, VIP are kept; SDM Vol. 2B, POPF). */
const POPF_USER_MASK: u64 = 0x244dd5;

/** 9D: POPF. */
export function popf(): void {
  const size = stackSize();
  const v = peek(size, 0);
  if (!popOk) return;
  popBytes(<u64>size);
  const mask = POPF_USER_MASK & sizeMask(size);
  setFlags((getFlags() & ~mask) | (v & mask));
}

/** C8: ENTER imm16, imm8 (SDM Vol. 2A, ENTER, 64-bit operation). A fault part-way leaves RSP as it was. */
export function enter(): void {
  const size = stackSize();
  const level = <i32>(imm2 & 31);
  const rsp0 = getReg64(RSP);
  if (!push(getReg(RBP, size), size)) return;
  const frameTemp = stackPointer(0);
  if (level > 0) {
    let rbp = getReg64(RBP);
    for (let i = 1; i < level; i++) {
      rbp -= <u64>size;
      const p = stackSlot(stackWidth == 8 ? rbp : rbp & sizeMask(stackWidth), size, ACC_READ);
      if (p == 0 || !push(loadSized(p, size), size)) { setReg64(RSP, rsp0); return; }
    }
    if (!push(frameTemp, size)) { setReg64(RSP, rsp0); return; }
  }
  setReg(RBP, size, frameTemp);
  setStackPointer(stackPointer(0 - imm));
}

/** C9: LEAVE: RSP = RBP, then pop RBP. */
export function leave(): void {
  const size = stackSize();
  const bp = stackWidth == 8 ? getReg64(RBP) : getReg64(RBP) & sizeMask(stackWidth);
  const p = stackSlot(bp, size, ACC_READ);
  if (p == 0) return;
  setStackPointer(bp);
  popBytes(<u64>size);
  setReg(RBP, size, loadSized(p, size));
}

/** 70-7F, 0F 80-8F: Jcc. */
export function jcc(): void {
  if (cond(opIdx & 15)) jumpTo(nextRip + imm);
}
/** EB/E9: JMP rel. */
export function jmpRel(): void { jumpTo(nextRip + imm); }
/** CALL near. Intel: the return address is written before the target is checked, so a
 *  non-canonical target leaves it in memory below RSP while RSP and RIP are unchanged (observed on
 *  Intel). AMD (CPUB_CALL_TARGET_FIRST; APM Vol. 3, CALL (Near): the target's canonical check comes
 *  before the push): #GP(0) with nothing written. */
export function call(targetRaw: u64, returnAddress: u64): void {
  const target = nearTarget(targetRaw);
  if (!isCanonical(target) && modelHas(CPUB_CALL_TARGET_FIRST)) { raiseGP0(); return; }
  const size = mode64 ? 8 : osize;
  const sp = stackPointer(0 - <u64>size);
  const p = stackSlot(sp, size, ACC_WRITE);
  if (p == 0) return;
  storeSized(p, size, returnAddress);
  if (!branchTargetOk(target)) return;
  setStackPointer(sp);
  setRip(target);
}

/** E8: CALL rel32. */
export function callRel(): void { call(nextRip + imm, nextRip); }
/** FF /2 CALL r/m64, FF /4 JMP r/m64. */
export function branchIndirect(): void {
  const size = mode64 ? 8 : osize;
  const p = rmPtr(size, ACC_READ);
  if (p == 0) return;
  const target = loadSized(p, size);
  if (ext == 2) call(target, nextRip);
  else jumpTo(target);
}
/** Near return, releasing `release` more bytes of stack. */
export function retNear(release: u64): void {
  const size = mode64 ? 8 : osize;
  const target = nearTarget(peek(size, 0));
  if (!popOk || !branchTargetOk(target)) return;
  popBytes(<u64>size + release);
  setRip(target);
}

/** C3/C2: RET [imm16]. */
export function ret(): void { retNear(opIdx == 0xc2 ? imm : 0); }

/** E0-E3: LOOPNE, LOOPE, LOOP, JRCXZ (count register is ECX under 67h). */
export function loop(): void {
  // The count register is CX, ECX or RCX by address size.
  const m = sizeMask(asize);
  let count = getReg64(1) & m;
  if (opIdx == 0xe3) {
    if (count == 0) jumpTo(nextRip + imm);
    return;
  }
  count = (count - 1) & m;
  setReg(1, asize, count);
  let taken = count != 0;
  if (opIdx == 0xe0) taken = taken && !getZF();
  else if (opIdx == 0xe1) taken = taken && getZF();
  if (taken) jumpTo(nextRip + imm);
}
