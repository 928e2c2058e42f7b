// Stack and control flow: PUSH/POP (all forms), PUSHF/POPF, ENTER/LEAVE, Jcc, JMP, CALL, RET,
// LOOP/LOOPE/LOOPNE/JRCXZ. In 64-bit mode near branches and stack operations default to 64 bits;
// 66h makes stack operations 16-bit and is ignored by near branches on Intel (SDM Vol. 1, 6.2-6.3;
// Vol. 2, "Operand size in 64-bit mode").
import { ACC_READ, ACC_WRITE, FLAG_RF, FLAG_VM } from '../../abi';
import { loadSized, storeSized, getReg64, setReg64, setRip, sizeMask } from '../state';
import { getFlags, setFlags, cond, getZF } from '../flags';
import { opIdx, osize, imm, imm2, isMem, ea, eaOffset, eaBaseIsRsp, rex, nextRip, prefixes, P_66, P_67, ext, segmentBase } from '../decode';
import { rmPtr, getReg, setReg, putRM } from '../operands';
import { translate } from '../../mmu/translate';
import { isCanonical, raiseGP0 } from '../fault';

const RSP = 4;
const RBP = 5;

/** Near branch: a non-canonical target faults on the branch itself (#GP(0), SDM Vol. 2A, JMP/CALL/RET
 *  "64-Bit Mode Exceptions"), so nothing has changed yet when it is raised. */
@inline export function branchTargetOk(target: u64): bool {
  if (isCanonical(target)) return true;
  raiseGP0();
  return false;
}

@inline function stackSize(): i32 { return (prefixes & P_66) != 0 ? 2 : 8; }

/** Push `size` bytes; returns false (with the fault raised) if the stack is not writable. */
export function push(v: u64, size: i32): bool {
  const sp = getReg64(RSP) - <u64>size;
  const p = translate(sp, size, ACC_WRITE);
  if (p == 0) return false;
  storeSized(p, size, v);
  setReg64(RSP, sp);
  return true;
}

/** Read the top of stack without popping; `ok` tells whether it faulted. */
let popOk: bool = true;
function peek(size: i32, offset: u64): u64 {
  const p = translate(getReg64(RSP) + offset, size, ACC_READ);
  popOk = p != 0;
  return p == 0 ? 0 : loadSized(p, size);
}

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
  setReg64(RSP, getReg64(RSP) + <u64>size);
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
      if (prefixes & P_67) off &= 0xffffffff;
      target = off + segmentBase();
    }
    const p = translate(target, size, ACC_WRITE);
    if (p == 0) return;
    storeSized(p, size, v);
    setReg64(RSP, getReg64(RSP) + <u64>size);
  } else {
    setReg64(RSP, getReg64(RSP) + <u64>size);
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
  setReg64(RSP, getReg64(RSP) + <u64>size);
  const mask = POPF_USER_MASK & sizeMask(size);
  setFlags((getFlags() & ~mask) | (v & mask));
}

/** C8: ENTER imm16, imm8 (SDM Vol. 2A, ENTER, 64-bit operation). A fault part-way leaves RSP as it was. */
export function enter(): void {
  const size = stackSize();
  const level = <i32>(imm2 & 31);
  const rsp0 = getReg64(RSP);
  if (!push(getReg(RBP, size), size)) return;
  const frameTemp = getReg64(RSP);
  if (level > 0) {
    let rbp = getReg64(RBP);
    for (let i = 1; i < level; i++) {
      rbp -= <u64>size;
      const p = translate(rbp, size, ACC_READ);
      if (p == 0 || !push(loadSized(p, size), size)) { setReg64(RSP, rsp0); return; }
    }
    if (!push(frameTemp, size)) { setReg64(RSP, rsp0); return; }
  }
  setReg(RBP, size, frameTemp);
  setReg64(RSP, getReg64(RSP) - imm);
}

/** C9: LEAVE: RSP = RBP, then pop RBP. */
export function leave(): void {
  const size = stackSize();
  const rbp = getReg64(RBP);
  const p = translate(rbp, size, ACC_READ);
  if (p == 0) return;
  setReg64(RSP, rbp + <u64>size);
  setReg(RBP, size, loadSized(p, size));
}

/** 70-7F, 0F 80-8F: Jcc. */
export function jcc(): void {
  if (cond(opIdx & 15) && branchTargetOk(nextRip + imm)) setRip(nextRip + imm);
}
/** EB/E9: JMP rel. */
export function jmpRel(): void { if (branchTargetOk(nextRip + imm)) setRip(nextRip + imm); }
/** CALL: the return address is written before the target is checked, so a non-canonical target
 *  leaves it in memory below RSP while RSP and RIP are unchanged (observed on Intel). */
export function call(target: u64, returnAddress: u64): void {
  const sp = getReg64(RSP) - 8;
  const p = translate(sp, 8, ACC_WRITE);
  if (p == 0) return;
  store<u64>(p, returnAddress);
  if (!branchTargetOk(target)) return;
  setReg64(RSP, sp);
  setRip(target);
}

/** E8: CALL rel32. */
export function callRel(): void { call(nextRip + imm, nextRip); }
/** FF /2 CALL r/m64, FF /4 JMP r/m64. */
export function branchIndirect(): void {
  const p = rmPtr(8, ACC_READ);
  if (p == 0) return;
  const target = loadSized(p, 8);
  if (ext == 2) call(target, nextRip);
  else if (branchTargetOk(target)) setRip(target);
}
/** Near return, releasing `release` more bytes of stack. */
export function retNear(release: u64): void {
  const target = peek(8, 0);
  if (!popOk || !branchTargetOk(target)) return;
  setReg64(RSP, getReg64(RSP) + 8 + release);
  setRip(target);
}

/** C3/C2: RET [imm16]. */
export function ret(): void { retNear(opIdx == 0xc2 ? imm : 0); }

/** E0-E3: LOOPNE, LOOPE, LOOP, JRCXZ (count register is ECX under 67h). */
export function loop(): void {
  const a32 = (prefixes & P_67) != 0;
  let count = getReg64(1);
  if (a32) count &= 0xffffffff;
  if (opIdx == 0xe3) {
    if (count == 0 && branchTargetOk(nextRip + imm)) setRip(nextRip + imm);
    return;
  }
  count = (count - 1) & (a32 ? 0xffffffff : <u64>-1);
  if (a32) setReg(1, 4, count); else setReg64(1, count);
  let taken = count != 0;
  if (opIdx == 0xe0) taken = taken && !getZF();
  else if (opIdx == 0xe1) taken = taken && getZF();
  if (taken && branchTargetOk(nextRip + imm)) setRip(nextRip + imm);
}
