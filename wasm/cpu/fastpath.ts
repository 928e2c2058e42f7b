// Specialized handlers for the most frequent instruction forms (register/immediate ALU ops, moves,
// loads and stores, LEA, branches, PUSH/POP, INC/DEC, shifts by an immediate). `classify` picks one
// when an instruction is decoded and stores its id and resolved operands in the decoded entry, so
// the run loop dispatches straight to a few loads and stores. Semantics are not duplicated: the
// handlers call the same compute functions as the generic ones (aluCompute, shiftCompute, cond, ...),
// and the differential tests run every form through whichever path the decoder picks.
import { ACC_READ, ACC_WRITE, ATTR_MODRM, LF_INC, LF_DEC } from '../abi';
import { gprPtr, getReg64, setReg64, setRip, sizeMask, rip } from './state';
import { cond, lazyKeepCF } from './flags';
import {
  E_HANDLER, E_OPIDX, E_PREFIXES, E_REX, E_OSIZE, E_SEG, E_MODRM, E_REG, E_RM, E_FLAGS, E_IMM,
  E_ATTR, E_AUX, E_DST, E_SRC, EF_MEM, P_LOCK, P_66, P_REP, P_REPNE, effectiveOffset, segBase,
} from './decode';
import { aluCompute, ALU_CMP, ALU_AND } from './ops/alu';
import { shiftCompute } from './ops/shift';
import { push, branchTargetOk, call, retNear } from './ops/flow';
import { translate } from '../mmu/translate';
import { mode64 } from './state';

export const H_GENERIC: i32 = 0;
export const H_NOP: i32 = 1;
export const H_ALU_RR: i32 = 2; // +1 for 64-bit: op E_AUX, E_DST op= E_SRC
export const H_ALU_RI: i32 = 4; // E_DST op= imm
export const H_ALU_MR: i32 = 6; // [mem] op= E_SRC
export const H_ALU_RM: i32 = 8; // E_DST op= [mem]
export const H_MOV_RR: i32 = 10;
export const H_MOV_RI: i32 = 12;
export const H_LOAD: i32 = 14; // E_DST = [mem]
export const H_STORE: i32 = 16; // [mem] = E_SRC
export const H_LEA: i32 = 18;
export const H_INCDEC: i32 = 20; // E_AUX 0 = INC, 1 = DEC
export const H_SHIFT_RI: i32 = 22; // E_AUX = group 2 kind, count in E_IMM (masked, non-zero)
export const H_TEST_RR: i32 = 24;
export const H_JCC: i32 = 26; // E_AUX = condition
export const H_JMP: i32 = 27;
export const H_CALL: i32 = 28;
export const H_RET: i32 = 29;
export const H_PUSH: i32 = 30; // 64-bit push of E_SRC
export const H_POP: i32 = 31; // 64-bit pop into E_DST
export const H_TEST_AL_IMM: i32 = 32;

/** Choose a specialized handler for the decoded entry `e` (H_GENERIC if none applies). */
export function classify(e: usize): void {
  const idx = <i32>load<u16>(e + E_OPIDX);
  const pfx = <i32>load<u8>(e + E_PREFIXES);
  const rex = <i32>load<u8>(e + E_REX);
  const os = <i32>load<u8>(e + E_OSIZE);
  const hasModrm = (load<u8>(e + E_ATTR) & ATTR_MODRM) != 0;
  const isMem = hasModrm && (load<u8>(e + E_FLAGS) & EF_MEM) != 0;
  const reg = <i32>load<u8>(e + E_REG);
  const rm = <i32>load<u8>(e + E_RM);
  const ext = (<i32>load<u8>(e + E_MODRM) >> 3) & 7;
  const wide = os == 8 ? 1 : 0; // handler ids come in pairs: +0 for 32-bit, +1 for 64-bit
  const sized = os >= 4;
  let h = H_GENERIC;
  // The fast handlers implement 64-bit mode semantics (stack width, RIP arithmetic).
  if ((pfx & P_LOCK) != 0 || !mode64) { store<u16>(e + E_HANDLER, <u16>h); return; }
  if (idx < 0x40 && (idx & 7) == 1 && sized) { // op Ev, Gv
    h = (isMem ? H_ALU_MR : H_ALU_RR) + wide;
    setOperands(e, (idx >> 3) & 7, rm, reg);
  } else if (idx < 0x40 && (idx & 7) == 3 && sized) { // op Gv, Ev
    h = (isMem ? H_ALU_RM : H_ALU_RR) + wide;
    setOperands(e, (idx >> 3) & 7, reg, rm);
  } else if (idx < 0x40 && (idx & 7) == 5 && sized) { // op rAX, Iz
    h = H_ALU_RI + wide;
    setOperands(e, (idx >> 3) & 7, 0, 0);
  } else if ((idx == 0x81 || idx == 0x83) && !isMem && sized) {
    h = H_ALU_RI + wide;
    setOperands(e, ext, rm, 0);
  } else if (idx == 0x85 && !isMem && sized) {
    h = H_TEST_RR + wide;
    setOperands(e, ALU_AND, rm, reg);
  } else if ((idx == 0x89 || idx == 0x8b) && sized) {
    const toReg = idx == 0x8b;
    h = (isMem ? (toReg ? H_LOAD : H_STORE) : H_MOV_RR) + wide;
    setOperands(e, 0, toReg ? reg : rm, toReg ? rm : reg);
  } else if (idx >= 0xb8 && idx <= 0xbf && sized) {
    h = H_MOV_RI + wide;
    setOperands(e, 0, (idx & 7) | ((rex & 1) << 3), 0);
  } else if (idx == 0xc7 && !isMem && ext == 0 && sized) {
    h = H_MOV_RI + wide;
    setOperands(e, 0, rm, 0);
  } else if (idx == 0x8d && isMem && sized) {
    h = H_LEA + wide;
    setOperands(e, 0, reg, 0);
  } else if (idx == 0xff && !isMem && ext < 2 && sized) {
    h = H_INCDEC + wide;
    setOperands(e, ext, rm, 0);
  } else if ((idx == 0xc1 || idx == 0xd1) && !isMem && sized) {
    const count = (idx == 0xd1 ? 1 : <i32>load<u64>(e + E_IMM)) & (os == 8 ? 0x3f : 0x1f);
    if (count != 0) {
      h = H_SHIFT_RI + wide;
      setOperands(e, ext, rm, 0);
      store<u64>(e + E_IMM, <u64>count);
    }
  } else if ((idx >= 0x70 && idx <= 0x7f) || (idx >= 0x180 && idx <= 0x18f)) {
    h = H_JCC;
    setOperands(e, idx & 15, 0, 0);
  } else if (idx == 0xeb || idx == 0xe9) {
    h = H_JMP;
  } else if (idx == 0xe8) {
    h = H_CALL;
  } else if (idx == 0xc3) {
    h = H_RET;
  } else if (idx >= 0x50 && idx <= 0x57 && (pfx & P_66) == 0) {
    h = H_PUSH;
    setOperands(e, 0, 0, (idx & 7) | ((rex & 1) << 3));
  } else if (idx >= 0x58 && idx <= 0x5f && (pfx & P_66) == 0) {
    h = H_POP;
    setOperands(e, 0, (idx & 7) | ((rex & 1) << 3), 0);
  } else if (idx == 0xa8) {
    h = H_TEST_AL_IMM;
  } else if (idx == 0x90 && (rex & 1) == 0 && (pfx & P_REP) == 0) {
    h = H_NOP; // (PAUSE, F3 90, is generic: pause-loop exiting watches it)
  }
  // REP/REPNE on these forms is ignored by the hardware; other prefixes are folded into the entry.
  if ((pfx & (P_REP | P_REPNE)) != 0 && h != H_NOP) h = H_GENERIC;
  store<u16>(e + E_HANDLER, <u16>h);
}

@inline function setOperands(e: usize, aux: i32, dst: i32, src: i32): void {
  store<u8>(e + E_AUX, <u8>aux);
  store<u8>(e + E_DST, <u8>dst);
  store<u8>(e + E_SRC, <u8>src);
}

/** Linear address of entry `e`'s memory operand. */
@inline function linear(e: usize, next: u64): u64 {
  return effectiveOffset(e, next) + segBase(<i32>load<u8>(e + E_SEG));
}

@inline function rd(r: i32, size: i32): u64 {
  return size == 8 ? load<u64>(gprPtr(r)) : <u64>load<u32>(gprPtr(r));
}
/** Register write: 32-bit results zero-extend (SDM Vol. 1, 3.4.1.1). */
@inline function wr(r: i32, size: i32, v: u64): void {
  store<u64>(gprPtr(r), size == 8 ? v : v & 0xffffffff);
}
@inline function ldm(p: usize, size: i32): u64 { return size == 8 ? load<u64>(p) : <u64>load<u32>(p); }
@inline function stm(p: usize, size: i32, v: u64): void {
  if (size == 8) store<u64>(p, v); else store<u32>(p, <u32>v);
}

@inline function aluRR(e: usize, size: i32): void {
  const op = <i32>load<u8>(e + E_AUX);
  const dst = <i32>load<u8>(e + E_DST);
  const r = aluCompute(op, size, rd(dst, size), rd(<i32>load<u8>(e + E_SRC), size));
  if (op != ALU_CMP) wr(dst, size, r);
}
@inline function aluRI(e: usize, size: i32): void {
  const op = <i32>load<u8>(e + E_AUX);
  const dst = <i32>load<u8>(e + E_DST);
  const r = aluCompute(op, size, rd(dst, size), load<u64>(e + E_IMM));
  if (op != ALU_CMP) wr(dst, size, r);
}
@inline function aluMR(e: usize, size: i32, next: u64): void {
  const op = <i32>load<u8>(e + E_AUX);
  const p = translate(linear(e, next), size, op == ALU_CMP ? ACC_READ : ACC_WRITE);
  if (p == 0) return;
  const r = aluCompute(op, size, ldm(p, size), rd(<i32>load<u8>(e + E_SRC), size));
  if (op != ALU_CMP) stm(p, size, r);
}
@inline function aluRM(e: usize, size: i32, next: u64): void {
  const op = <i32>load<u8>(e + E_AUX);
  const p = translate(linear(e, next), size, ACC_READ);
  if (p == 0) return;
  const dst = <i32>load<u8>(e + E_DST);
  const r = aluCompute(op, size, rd(dst, size), ldm(p, size));
  if (op != ALU_CMP) wr(dst, size, r);
}
@inline function testRR(e: usize, size: i32): void {
  aluCompute(ALU_AND, size, rd(<i32>load<u8>(e + E_DST), size), rd(<i32>load<u8>(e + E_SRC), size));
}
@inline function loadOp(e: usize, size: i32, next: u64): void {
  const p = translate(linear(e, next), size, ACC_READ);
  if (p != 0) wr(<i32>load<u8>(e + E_DST), size, ldm(p, size));
}
@inline function storeOp(e: usize, size: i32, next: u64): void {
  const p = translate(linear(e, next), size, ACC_WRITE);
  if (p != 0) stm(p, size, rd(<i32>load<u8>(e + E_SRC), size));
}
@inline function incDec(e: usize, size: i32): void {
  const dst = <i32>load<u8>(e + E_DST);
  const v = rd(dst, size);
  const dec = load<u8>(e + E_AUX) != 0;
  const r = (dec ? v - 1 : v + 1) & sizeMask(size);
  lazyKeepCF(dec ? LF_DEC : LF_INC, size, r, v);
  wr(dst, size, r);
}
@inline function shiftRI(e: usize, size: i32): void {
  const dst = <i32>load<u8>(e + E_DST);
  wr(dst, size, shiftCompute(<i32>load<u8>(e + E_AUX), size, rd(dst, size), <i32>load<u64>(e + E_IMM)));
}

/** Execute entry `e` with its specialized handler `h`; returns the next RIP (`next`, or a branch
 *  target). The global `rip` is not maintained here: the run loop keeps RIP in a local. */
@inline export function executeFast(e: usize, h: i32, next: u64): u64 {
  // V8 lowers the switch below to a binary search, so the most frequent forms (64-bit register ALU
  // ops and moves, conditional jumps) are tested first.
  if (h == H_ALU_RR + 1) { aluRR(e, 8); return next; }
  if (h == H_MOV_RR + 1) { wr(<i32>load<u8>(e + E_DST), 8, rd(<i32>load<u8>(e + E_SRC), 8)); return next; }
  if (h == H_JCC) {
    if (cond(<i32>load<u8>(e + E_AUX))) {
      const t = next + load<u64>(e + E_IMM);
      if (branchTargetOk(t)) return t;
    }
    return next;
  }
  switch (h) {
    case H_NOP: break;
    case H_ALU_RR: aluRR(e, 4); break;
    case H_ALU_RI: aluRI(e, 4); break;
    case H_ALU_RI + 1: aluRI(e, 8); break;
    case H_ALU_MR: aluMR(e, 4, next); break;
    case H_ALU_MR + 1: aluMR(e, 8, next); break;
    case H_ALU_RM: aluRM(e, 4, next); break;
    case H_ALU_RM + 1: aluRM(e, 8, next); break;
    case H_MOV_RR: wr(<i32>load<u8>(e + E_DST), 4, rd(<i32>load<u8>(e + E_SRC), 4)); break;
    case H_MOV_RI: wr(<i32>load<u8>(e + E_DST), 4, load<u64>(e + E_IMM)); break;
    case H_MOV_RI + 1: wr(<i32>load<u8>(e + E_DST), 8, load<u64>(e + E_IMM)); break;
    case H_LOAD: loadOp(e, 4, next); break;
    case H_LOAD + 1: loadOp(e, 8, next); break;
    case H_STORE: storeOp(e, 4, next); break;
    case H_STORE + 1: storeOp(e, 8, next); break;
    case H_LEA: wr(<i32>load<u8>(e + E_DST), 4, effectiveOffset(e, next)); break;
    case H_LEA + 1: wr(<i32>load<u8>(e + E_DST), 8, effectiveOffset(e, next)); break;
    case H_INCDEC: incDec(e, 4); break;
    case H_INCDEC + 1: incDec(e, 8); break;
    case H_SHIFT_RI: shiftRI(e, 4); break;
    case H_SHIFT_RI + 1: shiftRI(e, 8); break;
    case H_TEST_RR: testRR(e, 4); break;
    case H_TEST_RR + 1: testRR(e, 8); break;
    case H_JMP: {
      const t = next + load<u64>(e + E_IMM);
      if (branchTargetOk(t)) return t;
      break;
    }
    // CALL and RET share flow.ts's code, which sets the global RIP when it succeeds.
    case H_CALL: call(next + load<u64>(e + E_IMM), next); return rip;
    case H_RET: retNear(0); return rip;
    case H_PUSH: push(getReg64(<i32>load<u8>(e + E_SRC)), 8); break;
    case H_POP: {
      const p = translate(getReg64(4), 8, ACC_READ);
      if (p == 0) break;
      setReg64(4, getReg64(4) + 8);
      setReg64(<i32>load<u8>(e + E_DST), load<u64>(p));
      break;
    }
    default: // H_TEST_AL_IMM
      aluCompute(ALU_AND, 1, <u64>load<u8>(gprPtr(0)), load<u64>(e + E_IMM));
      break;
  }
  return next;
}
