// ADD OR ADC SBB AND SUB XOR CMP, TEST, INC DEC NEG NOT (SDM Vol. 2, the instruction pages).
import { LF_ADD, LF_ADC, LF_SUB, LF_SBB, LF_LOGIC, LF_INC, LF_DEC, ACC_READ, ACC_WRITE } from '../../abi';
import { sizeMask, loadSized, setLazyLogic } from '../state';
import { lazy, lazyWithCarry, lazyKeepCF, getCF } from '../flags';
import { opIdx, osize, ext, imm } from '../decode';
import { rmPtr, putRM, getG, setG, getReg, setReg } from '../operands';

export const ALU_ADD = 0;
export const ALU_OR = 1;
export const ALU_ADC = 2;
export const ALU_SBB = 3;
export const ALU_AND = 4;
export const ALU_SUB = 5;
export const ALU_XOR = 6;
export const ALU_CMP = 7;

/** dst OP src at `size` bytes; records the lazy flags and returns the masked result. */
export function aluCompute(op: i32, size: i32, dst: u64, src: u64): u64 {
  const m = sizeMask(size);
  src &= m;
  let r: u64;
  switch (op) {
    case ALU_ADD: r = (dst + src) & m; lazy(LF_ADD, size, r, dst, src); break;
    case ALU_OR: r = dst | src; setLazyLogic(size, r); break;
    case ALU_ADC: {
      const c = getCF();
      r = (dst + src + (c ? 1 : 0)) & m;
      lazyWithCarry(LF_ADC, size, r, dst, src, c);
      break;
    }
    case ALU_SBB: {
      const c = getCF();
      r = (dst - src - (c ? 1 : 0)) & m;
      lazyWithCarry(LF_SBB, size, r, dst, src, c);
      break;
    }
    case ALU_AND: r = dst & src; setLazyLogic(size, r); break;
    case ALU_XOR: r = dst ^ src; setLazyLogic(size, r); break;
    default: r = (dst - src) & m; lazy(LF_SUB, size, r, dst, src); break; // SUB, CMP
  }
  return r;
}

@inline function byteOrOsize(): i32 { return (opIdx & 1) != 0 ? osize : 1; }

/** 00-39 /r with E destination: op Eb,Gb / Ev,Gv. */
export function aluEG(): void {
  const op = (opIdx >> 3) & 7;
  const size = byteOrOsize();
  const p = rmPtr(size, op == ALU_CMP ? ACC_READ : ACC_WRITE);
  if (p == 0) return;
  const r = aluCompute(op, size, loadSized(p, size), getG(size));
  if (op != ALU_CMP) putRM(p, size, r);
}

/** 02-3B /r with G destination: op Gb,Eb / Gv,Ev. */
export function aluGE(): void {
  const op = (opIdx >> 3) & 7;
  const size = byteOrOsize();
  const p = rmPtr(size, ACC_READ);
  if (p == 0) return;
  const r = aluCompute(op, size, getG(size), loadSized(p, size));
  if (op != ALU_CMP) setG(size, r);
}

/** 04-3D: op AL,Ib / rAX,Iz. */
export function aluAccImm(): void {
  const op = (opIdx >> 3) & 7;
  const size = byteOrOsize();
  const r = aluCompute(op, size, getReg(0, size), imm);
  if (op != ALU_CMP) setReg(0, size, r);
}

/** 80/81/83 group 1: op E,imm. */
export function aluGroup1(): void {
  const size = opIdx == 0x81 || opIdx == 0x83 ? osize : 1; // 82 = 80 outside 64-bit mode
  const p = rmPtr(size, ext == ALU_CMP ? ACC_READ : ACC_WRITE);
  if (p == 0) return;
  const r = aluCompute(ext, size, loadSized(p, size), imm);
  if (ext != ALU_CMP) putRM(p, size, r);
}

/** 84/85 TEST E,G; A8/A9 TEST acc,imm; F6/F7 /0-1 TEST E,imm. */
export function testEG(): void {
  const size = byteOrOsize();
  const p = rmPtr(size, ACC_READ);
  if (p == 0) return;
  aluCompute(ALU_AND, size, loadSized(p, size), getG(size));
}
export function testAccImm(): void {
  const size = byteOrOsize();
  aluCompute(ALU_AND, size, getReg(0, size), imm);
}
export function testEImm(): void {
  const size = byteOrOsize();
  const p = rmPtr(size, ACC_READ);
  if (p == 0) return;
  aluCompute(ALU_AND, size, loadSized(p, size), imm);
}

/** F6/F7 /2 NOT (no flags), /3 NEG (flags as 0 - x). */
export function notE(): void {
  const size = byteOrOsize();
  const p = rmPtr(size, ACC_WRITE);
  if (p == 0) return;
  putRM(p, size, ~loadSized(p, size) & sizeMask(size));
}
export function negE(): void {
  const size = byteOrOsize();
  const p = rmPtr(size, ACC_WRITE);
  if (p == 0) return;
  putRM(p, size, aluCompute(ALU_SUB, size, 0, loadSized(p, size)));
}

/** FE/FF /0 INC, /1 DEC: CF is preserved. */
export function incDecE(): void {
  const size = opIdx == 0xfe ? 1 : osize;
  const p = rmPtr(size, ACC_WRITE);
  if (p == 0) return;
  const v = loadSized(p, size);
  const m = sizeMask(size);
  if (ext == 0) {
    const r = (v + 1) & m;
    lazyKeepCF(LF_INC, size, r, v);
    putRM(p, size, r);
  } else {
    const r = (v - 1) & m;
    lazyKeepCF(LF_DEC, size, r, v);
    putRM(p, size, r);
  }
}
