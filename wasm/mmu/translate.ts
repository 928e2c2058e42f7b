// The one translation function: every guest memory access (data, stack, instruction fetch) asks it
// for a host address. Paging off: linear = guest-physical = offset into guest RAM. Paging on: the
// guest page walk (paging.ts). The MMU issue adds TLBs and the EPT dimension behind the same calls.
import {
  GUEST_RAM_BASE, ACC_WRITE, ACC_FETCH, CODE_PAGE_MAP_BASE, CODE_PAGE_MAP_SIZE, OPEN_BUS_BASE,
  BOUNCE_BASE, BOUNCE_SLOTS,
} from '../abi';
import { flushDecodedCache } from '../cpu/decode';
import { raiseGP0, raisePF, isCanonical, requestStop } from '../cpu/fault';
import { pagingOn, flatHarness, mode64 } from '../cpu/state';
import { walk, setPhysLimit } from './paging';

/** Size of the guest RAM mapped at GUEST_RAM_BASE (set by the host). */
export let ramSize: u64 = 0;
export function setRamSize(size: u64): void { ramSize = size; setPhysLimit(size); }

/** Host address of [lin, lin + size) for `access`, or 0 with a fault raised. With paging on, an
 *  access that straddles two pages mapped to discontiguous frames is staged in a bounce slot and,
 *  for writes, copied back by the run loop when the instruction completes (flushBounces). */
@inline export function translate(lin: u64, size: i32, access: i32): usize {
  const end = lin + <u64>size;
  // Self-modifying code: a write to a page holding decoded instructions invalidates them.
  if (access == ACC_WRITE && (load<u8>(<usize>CODE_PAGE_MAP_BASE + (<usize>(lin >> 12) & CODE_MAP_MASK))
      | load<u8>(<usize>CODE_PAGE_MAP_BASE + (<usize>((end - 1) >> 12) & CODE_MAP_MASK))) != 0) flushDecodedCache();
  if (pagingOn) return translatePaged(lin, size, access);
  if (end <= ramSize && end >= lin) return <usize>GUEST_RAM_BASE + <usize>lin;
  if (!flatHarness) return unbacked(lin, size, access);
  memoryFault(lin, size, access);
  return 0;
}

const CODE_MAP_MASK: usize = CODE_PAGE_MAP_SIZE - 1;

/** Unbacked physical addresses read as all ones and drop writes (an undriven bus). Device MMIO
 *  exits come with the machine issue. */
function openBus(access: i32): usize {
  memory.fill(OPEN_BUS_BASE, 0xff, 64);
  return OPEN_BUS_BASE;
}

/** Host pointer of guest-physical [phys, phys + size): RAM, the firmware ROM, or the open bus. */
@inline function physicalPtr(phys: u64, size: i32, access: i32): usize {
  if (phys + <u64>size <= ramSize) return <usize>GUEST_RAM_BASE + <usize>phys;
  return unbacked(phys, size, access);
}

/** Firmware ROM: `romSize` bytes ending at 4 GiB (the reset vector at FFFFFFF0h is its last 16
 *  bytes), held in host memory right after guest RAM. Writes to it are dropped. */
export let romSize: u64 = 0;
export function setRomSize(size: u64): void { romSize = size; }
const FOUR_GIB: u64 = 0x100000000;

function unbacked(phys: u64, size: i32, access: i32): usize {
  if (romSize != 0 && phys >= FOUR_GIB - romSize && phys + <u64>size <= FOUR_GIB && access != ACC_WRITE) {
    return <usize>GUEST_RAM_BASE + <usize>ramSize + <usize>(phys - (FOUR_GIB - romSize));
  }
  return openBus(access);
}

let bounceUsed: i32 = 0;
export let bouncePending: bool = false;

function translatePaged(lin: u64, size: i32, access: i32): usize {
  if (mode64 && (!isCanonical(lin) || !isCanonical(lin + <u64>size - 1))) { raiseGP0(); return 0; }
  const first = walk(lin, access);
  if (first == <u64>-1) return 0;
  const last = lin + <u64>size - 1;
  if ((lin >> 12) == (last >> 12)) return physicalPtr(first, size, access);
  const second = walk(last & ~(<u64>0xfff), access);
  if (second == <u64>-1) return 0;
  if (second == (first | 0xfff) + 1 && first + <u64>size <= ramSize && second + 0x1000 <= ramSize) {
    return <usize>GUEST_RAM_BASE + <usize>first; // physically contiguous
  }
  // Discontiguous: stage the bytes in a bounce slot.
  if (bounceUsed == BOUNCE_SLOTS) { raiseGP0(); return 0; } // cannot happen: at most 2 per instruction
  const slot: usize = <usize>BOUNCE_BASE + <usize>bounceUsed * 64;
  bounceUsed++;
  const n1 = <i32>(0x1000 - (lin & 0xfff));
  memory.copy(slot, physicalPtr(first, n1, access), <usize>n1);
  memory.copy(slot + <usize>n1, physicalPtr(second, size - n1, access), <usize>(size - n1));
  store<u64>(slot + 16, access == ACC_WRITE ? first : <u64>-1);
  store<u64>(slot + 24, second);
  store<u32>(slot + 32, <u32>n1);
  store<u32>(slot + 36, <u32>size);
  bouncePending = true; // the run loop releases the slots (and writes back) after the instruction
  requestStop();
  return slot;
}

/** Copy staged split writes back to their two frames (the instruction completed without a fault). */
export function flushBounces(commit: bool): void {
  for (let i = 0; i < bounceUsed; i++) {
    const slot: usize = <usize>BOUNCE_BASE + <usize>i * 64;
    const first = load<u64>(slot + 16);
    if (!commit || first == <u64>-1) continue;
    const n1 = <i32>load<u32>(slot + 32), size = <i32>load<u32>(slot + 36);
    const second = load<u64>(slot + 24);
    memory.copy(physicalPtr(first, n1, ACC_WRITE), slot, <usize>n1);
    memory.copy(physicalPtr(second, size - n1, ACC_WRITE), slot + <usize>n1, <usize>(size - n1));
  }
  bounceUsed = 0;
  bouncePending = false;
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

