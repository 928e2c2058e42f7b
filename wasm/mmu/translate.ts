// The one translation function: every guest memory access (data, stack, instruction fetch) asks it
// for a host address. Today the vCPU runs in the flat 64-bit state (linear address = offset into the
// guest's RAM); the MMU issue replaces the body with the 1D/2D walks and TLBs behind the same calls.
import { GUEST_RAM_BASE, ACC_WRITE, ACC_FETCH, CODE_PAGE_MAP_BASE } from '../abi';
import { flushDecodedCache } from '../cpu/decode';
import { raiseGP0, raisePF, isCanonical } from '../cpu/fault';
import { loadSized, storeSized } from '../cpu/state';

/** Size of the guest RAM mapped at GUEST_RAM_BASE (set by the host). */
export let ramSize: u64 = 0;
export function setRamSize(size: u64): void { ramSize = size; }

/** Host address of [lin, lin + size) for `access`, or 0 with a fault raised. The range never
 *  crosses a discontinuity in the flat mode; the paged modes will split page-crossing accesses. */
@inline export function translate(lin: u64, size: i32, access: i32): usize {
  const end = lin + <u64>size;
  if (end <= ramSize && end >= lin) {
    // Self-modifying code: a write to a page holding decoded instructions invalidates them.
    if (access == ACC_WRITE && (load<u8>(<usize>CODE_PAGE_MAP_BASE + <usize>(lin >> 12))
        | load<u8>(<usize>CODE_PAGE_MAP_BASE + <usize>((end - 1) >> 12))) != 0) flushDecodedCache();
    return <usize>GUEST_RAM_BASE + <usize>lin;
  }
  memoryFault(lin, size, access);
  return 0;
}

/** #GP for a non-canonical address, otherwise #PF with the error code of a not-present user
 *  access (SDM Vol. 3A, 4.7): W for writes, I/D for fetches, U since flat-mode code is user code. */
function memoryFault(lin: u64, size: i32, access: i32): void {
  const last = lin + <u64>size - 1;
  if (!isCanonical(lin) || !isCanonical(last)) { raiseGP0(); return; }
  let error: u32 = 4;
  if (access == ACC_WRITE) error |= 2;
  if (access == ACC_FETCH) error |= 0x10;
  raisePF(lin < ramSize ? ramSize : lin, error);
}

export function readMem(lin: u64, size: i32, access: i32): u64 {
  const p = translate(lin, size, access);
  return p == 0 ? 0 : loadSized(p, size);
}

/** Returns false (with the fault raised) if the write could not be done. */
export function writeMem(lin: u64, size: i32, v: u64): bool {
  const p = translate(lin, size, ACC_WRITE);
  if (p == 0) return false;
  storeSized(p, size, v);
  return true;
}
