// Operand access shared by all handlers. Registers and guest memory both live in linear memory, so
// an operand is a host pointer: a register's slot (AH-BH are byte 1 of RAX-RBX) or the translated
// memory address. Writes of 32-bit results to registers zero-extend to 64 bits (SDM Vol. 1, 3.4.1.1).
import { ACC_READ, ACC_WRITE } from '../abi';
import { gprPtr, loadSized, storeSized } from './state';
import { rex, isMem, ea, rmField, regField } from './decode';
import { translate } from '../mmu/translate';

/** Pointer to register r viewed with operand size `size` (byte registers honour the REX rule). */
@inline export function regPtr(r: i32, size: i32): usize {
  if (size == 1 && rex == 0 && r >= 4 && r < 8) return gprPtr(r - 4) + 1;
  return gprPtr(r);
}

@inline export function getReg(r: i32, size: i32): u64 { return loadSized(regPtr(r, size), size); }

/** Write a register: 32-bit writes clear bits 63..32, 8/16-bit writes keep them. */
@inline export function setReg(r: i32, size: i32, v: u64): void {
  if (size == 4) store<u64>(gprPtr(r), v & 0xffffffff);
  else storeSized(regPtr(r, size), size, v);
}

/** Pointer to the r/m operand for `access`; 0 with a fault raised if memory is not accessible. */
@inline export function rmPtr(size: i32, access: i32): usize {
  return isMem ? translate(ea, size, access) : regPtr(rmField, size);
}

/** Read the r/m operand (0 on fault: callers check the fault before committing anything). */
@inline export function getRM(size: i32): u64 {
  const p = rmPtr(size, ACC_READ);
  return p == 0 ? 0 : loadSized(p, size);
}

/** Write the r/m operand at a pointer obtained from rmPtr. */
@inline export function putRM(p: usize, size: i32, v: u64): void {
  if (!isMem && size == 4) store<u64>(p, v & 0xffffffff);
  else storeSized(p, size, v);
}

/** Write the r/m operand (translating for write). Returns false on fault. */
export function setRM(size: i32, v: u64): bool {
  const p = rmPtr(size, ACC_WRITE);
  if (p == 0) return false;
  putRM(p, size, v);
  return true;
}

@inline export function getG(size: i32): u64 { return getReg(regField, size); }
@inline export function setG(size: i32, v: u64): void { setReg(regField, size, v); }
