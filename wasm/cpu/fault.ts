// Exceptions raised by the instruction being executed. AssemblyScript has no exceptions, so a fault
// is a status: the first raise() of an instruction records the vector, handlers stop at the next
// check, and the run loop delivers it (SDM Vol. 3A, 6.5: faults report the faulting instruction's
// address, traps the next one).
import { VEC_UD, VEC_GP, VEC_PF, VEC_DE } from '../abi';

export let faultVector: i32 = -1;
export let faultError: u32 = 0;
export let faultHasError: bool = false;
export let faultAddr: u64 = 0;
/** A trap (INT n, INT3) reports the address after the instruction. */
export let faultIsTrap: bool = false;
/** Set when the run loop must look at something after the current instruction. */
export let pending: bool = false;

export function raise(vector: i32, error: u32, hasError: bool): void {
  if (faultVector >= 0) return; // the first fault of an instruction wins
  faultVector = vector;
  faultError = error;
  faultHasError = hasError;
  faultIsTrap = false;
  pending = true;
}

export function raiseTrap(vector: i32): void {
  raise(vector, 0, false);
  faultIsTrap = true;
}

export function raiseUD(): void { raise(VEC_UD, 0, false); }
export function raiseGP0(): void { raise(VEC_GP, 0, true); }
export function raiseDE(): void { raise(VEC_DE, 0, false); }
export function raisePF(addr: u64, error: u32): void {
  if (faultVector < 0) faultAddr = addr;
  raise(VEC_PF, error, true);
}

/** Not an exception: the pseudo-vector of an EPT violation. The instruction is abandoned and
 *  restarts after the host has resolved the violation (run() exits with EXIT_EPT_VIOLATION). */
export const EPT_VIOLATION_VECTOR: i32 = 256;
export function raiseEptViolation(): void { raise(EPT_VIOLATION_VECTOR, 0, false); }

export function clearFault(): void {
  faultVector = -1;
  faultIsTrap = false;
  pending = false;
}

export function requestStop(): void { pending = true; }

/** Canonical 48-bit address: bits 63..47 all equal (SDM Vol. 1, 3.3.7.1). */
@inline export function isCanonical(a: u64): bool {
  return <u64>(<i64>(a << 16) >> 16) == a;
}
