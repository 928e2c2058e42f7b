// The one translation function: every guest memory access (data, stack, instruction fetch) asks it
// for a host address. --mmu direct with paging off: linear = guest-physical = offset into guest RAM.
// Otherwise the TLBs (tlb.ts) answer, and a miss walks: the guest tables (paging.ts, gva -> gpa),
// then, under --mmu ept, the host's nested table (ept.ts, gpa -> hpa); the result is cached at the
// smaller of the two page sizes. With the data-cache model on, every access is also counted there.
import {
  HOST_POOL_BASE, ACC_WRITE, OPEN_BUS_BASE,
  BOUNCE_BASE, BOUNCE_SLOTS, PS_4K, PS_2M, PS_1G, ST_CR0, ST_CR4, CR0_WP, MMIO_STAGE_BASE, MMIO_STAGE_SLOTS,
  VCPU_AREA_BASE, VCPU_STRIDE, ACC_FETCH, ST_DR7, ST_DR0, MC_MICRO_TLB_HIT,
} from '../abi';
import { hostMmioRead, hostMmioWrite } from '../host-imports';
import { checkCodeWrite, codeFrameWritten } from '../cpu/code-cache';
import { gpaToHpa } from '../mem/guest-memory';
import { raiseGP0, raisePF, isCanonical, requestStop } from '../cpu/fault';
import { pagingOn, flatHarness, mode64, cpl, cpu } from '../cpu/state';
import {
  walk, implicitSupervisor, walkPageShift, walkRights, RIGHT_W, RIGHT_U, RIGHT_NX, RIGHT_DIRTY,
  RIGHT_GLOBAL, CR4_SMEP, CR4_SMAP,
} from './paging';
import { eptOn, eptTranslate, eptPageShift, eptRights, hostMapTranslate } from './ept';
import { ramSize, romSize, romHpa, directHpa, directPtr, hostMapRoot, mappedMemory } from '../mem/memory-map';
import { tlbLookup, tlbLookupL2, tlbInsert, countTlbMiss, microPage, microHost, microTlbOn } from './tlb';
import { cacheModelOn, dataAccess, mmuCount } from './accounting';
import {
  shadowActive, shadowWalk, shadowFault, shadowPageShift, shadowRights, shadowFaultHpa, shadowFaultGpa,
  ptWritesPending, shadowSyncWrites, shadowHostWrote, SF_FAULT, SF_UNBACKED, SF_EMULATE,
} from './shadow';

/** Guest RAM (or ROM) [gpa, gpa + bytes) was written behind the vCPUs' backs (the host loading code,
 *  a device's DMA): no write was trapped, so the decoded code of those frames goes, and under --mmu
 *  shadow the shadow pages of those gfns (a write into a live guest page table must not leave stale
 *  sptes). */
export function guestRamWritten(gpa: u64, bytes: u64): void {
  if (bytes == 0) return;
  for (let page = gpa & ~(<u64>0xfff); page < gpa + bytes; page += 0x1000) {
    let hpa = gpaToHpa(page, false);
    if (hpa == <u64>-1 && romSize != 0 && page >= FOUR_GIB - romSize && page < FOUR_GIB) hpa = romHpa + (page - (FOUR_GIB - romSize));
    if (hpa != <u64>-1) codeFrameWritten(<u32>(hpa >> 12));
  }
  shadowHostWrote(gpa, bytes);
}

/** Host address of [lin, lin + size) for `access`, or 0 with a fault raised. An access that
 *  straddles two pages mapped to discontiguous frames is staged in a bounce slot and, for writes,
 *  copied back by the run loop when the instruction completes (flushBounces). */
@inline export function translate(lin: u64, size: i32, access: i32): usize {
  const end = lin + <u64>size;
  if (dataBreakpointsOn && access != ACC_FETCH) checkDataBreakpoints(lin, size, access);
  if (pagingOn || mappedMemory) {
    const p = translateMapped(lin, size, access);
    // Self-modifying code, by host frame (a split write checks its two frames in translateMapped).
    if (access == ACC_WRITE && p != 0) checkCodeWrite(p, size);
    return p;
  }
  if (end <= ramSize && end >= lin) {
    if (cacheModelOn) dataAccess(directHpa + lin);
    if (access == ACC_WRITE) checkCodeWrite(directPtr + <usize>lin, size);
    return directPtr + <usize>lin;
  }
  if (!flatHarness) return unbacked(lin, size, access);
  memoryFault(lin, size, access);
  return 0;
}

// ---- Data breakpoints (SDM Vol. 3B, 18.2.4 and 18.3.1.2): DRn enabled in DR7 with R/Wn = 01
// (writes) or 11 (reads and writes), LENn = 1, 2, 8 or 4 bytes (00, 01, 10, 11), the address aligned
// down to the length. A hit is a trap: DR6.Bn is set and #DB raised after the instruction completes
// (the run loop does it); for a REP string instruction, after the whole instruction. ----
export let dataBreakpointsOn: bool = false;
/** DR6.Bn bits of the breakpoints hit by the current instruction. */
export let dataBreakpointHits: u32 = 0;
export function clearDataBreakpointHits(): void { dataBreakpointHits = 0; }

/** Recompute after DR7 changes and on entry to run(). */
export function refreshDataBreakpoints(): void {
  const dr7 = load<u32>(cpu + ST_DR7);
  let on = false;
  for (let i: u32 = 0; i < 4; i++) {
    if (((dr7 >> (i * 2)) & 3) != 0 && ((dr7 >> (16 + i * 4)) & 1) != 0) on = true; // R/W = 01 or 11
  }
  dataBreakpointsOn = on;
}

function checkDataBreakpoints(lin: u64, size: i32, access: i32): void {
  const dr7 = load<u32>(cpu + ST_DR7);
  for (let i: u32 = 0; i < 4; i++) {
    if (((dr7 >> (i * 2)) & 3) == 0) continue;
    const rw = (dr7 >> (16 + i * 4)) & 3;
    if (rw != 1 && rw != 3) continue;
    if (rw == 1 && access != ACC_WRITE) continue;
    const lenCode = (dr7 >> (18 + i * 4)) & 3;
    const len: u64 = lenCode == 0 ? 1 : lenCode == 1 ? 2 : lenCode == 2 ? 8 : 4;
    const addr = load<u64>(cpu + ST_DR0 + <usize>i * 8) & ~(len - 1);
    if (lin < addr + len && addr < lin + <u64>size) {
      dataBreakpointHits |= <u32>1 << i;
      requestStop();
    }
  }
}

/** Addresses nothing decodes read as all ones and drop writes (an undriven bus). */
function openBus(access: i32): usize {
  memory.fill(OPEN_BUS_BASE, 0xff, 64);
  return OPEN_BUS_BASE;
}

/** Firmware ROM: `romSize` bytes ending at 4 GiB (the reset vector at FFFFFFF0h is its last 16
 *  bytes), held in the pool from romHpa (memory-map.ts). Writes to it are dropped. */
const FOUR_GIB: u64 = 0x100000000;

function unbacked(phys: u64, size: i32, access: i32): usize {
  if (romSize != 0 && phys >= FOUR_GIB - romSize && phys + <u64>size <= FOUR_GIB) {
    if (access != ACC_WRITE) return <usize>HOST_POOL_BASE + <usize>romHpa + <usize>(phys - (FOUR_GIB - romSize));
    return openBus(access); // writes to ROM are dropped
  }
  if (size > 16 || mmioUsed == MMIO_STAGE_SLOTS) return openBus(access);
  return deviceMemory(phys, size, access);
}

// ---- Device memory (MMIO): handed to the host (host-imports.ts) ----
// A read asks the host at once; a write is staged and given to the host when the instruction
// completes without a fault (like split accesses), so a faulting instruction writes nothing.
// Slot: 16 bytes of data, u64 gpa, u32 size, u32 1 = write pending.
let mmioUsed: i32 = 0;

function deviceMemory(gpa: u64, size: i32, access: i32): usize {
  const slot: usize = <usize>MMIO_STAGE_BASE + <usize>mmioUsed * 32;
  mmioUsed++;
  const vcpu = <i32>((cpu - <usize>VCPU_AREA_BASE) / <usize>VCPU_STRIDE);
  if (access == ACC_WRITE) memory.fill(slot, 0, 16);
  else hostMmioRead(vcpu, <i32>gpa, <i32>(gpa >> 32), size, <i32>slot);
  store<u64>(slot + 16, gpa);
  store<u32>(slot + 24, <u32>size);
  store<u32>(slot + 28, access == ACC_WRITE ? 1 : 0);
  bouncePending = true; // the run loop finishes staged accesses after the instruction
  requestStop();
  return slot;
}

let bounceUsed: i32 = 0;
export let bouncePending: bool = false;

function translateMapped(lin: u64, size: i32, access: i32): usize {
  const offset = <i32>(lin & 0xfff);
  if (offset + size <= 0x1000) return translatePage(lin, size, access);
  const n1 = 0x1000 - offset;
  const first = translatePage(lin, n1, access);
  if (first == 0) return 0;
  const second = translatePage(lin + <u64>n1, size - n1, access);
  if (second == 0) return 0;
  if (second == first + <usize>n1) return first; // contiguous in host memory
  // Discontiguous: stage the bytes in a bounce slot.
  if (bounceUsed == BOUNCE_SLOTS) { raiseGP0(); return 0; } // cannot happen: at most 2 per instruction
  if (access == ACC_WRITE) { checkCodeWrite(first, n1); checkCodeWrite(second, size - n1); }
  const slot: usize = <usize>BOUNCE_BASE + <usize>bounceUsed * 64;
  bounceUsed++;
  memory.copy(slot, first, <usize>n1);
  memory.copy(slot + <usize>n1, second, <usize>(size - n1));
  store<u64>(slot + 16, access == ACC_WRITE ? <u64>first : 0);
  store<u64>(slot + 24, <u64>second);
  store<u32>(slot + 32, <u32>n1);
  store<u32>(slot + 36, <u32>size);
  bouncePending = true; // the run loop releases the slots (and writes back) after the instruction
  requestStop();
  return slot;
}

/** Host address of [lin, lin + size) within one 4 KiB page: a TLB hit, or a walk that fills it. */
@inline function translatePage(lin: u64, size: i32, access: i32): usize {
  const kind = <u32>access + (cpl == 3 && !implicitSupervisor ? 3 : 0);
  if (unchecked(microPage[kind]) == (lin >> 12)) {
    mmuCount(MC_MICRO_TLB_HIT);
    return unchecked(microHost[kind]) + <usize>(lin & 0xfff);
  }
  const hpa = tlbLookup(lin, kind);
  if (hpa != <u64>-1) {
    if (cacheModelOn) dataAccess(hpa);
    remember(kind, lin, hpa);
    return <usize>HOST_POOL_BASE + <usize>hpa;
  }
  return tlbMiss(lin, size, access, kind);
}

/** Keep a translation the TLB just gave in the micro-TLB (not while the cache model counts accesses). */
@inline function remember(kind: u32, lin: u64, hpa: u64): void {
  if (microTlbOn && !cacheModelOn) {
    unchecked(microPage[kind] = lin >> 12);
    unchecked(microHost[kind] = <usize>HOST_POOL_BASE + <usize>(hpa & ~(<u64>0xfff)));
  }
}

/** What the entry filled last allows (the micro-TLB keeps only what a TLB hit would give). */
let allowedKindsLast: u32 = 0;

/** The TLB missed: the second level, else the walk of both dimensions and a fill. */
function tlbMiss(lin: u64, size: i32, access: i32, kind: u32): usize {
  let hpa = tlbLookupL2(lin, kind);
  if (hpa == <u64>-1) {
    countTlbMiss();
    if (pagingOn && mode64 && (!isCanonical(lin) || !isCanonical(lin + <u64>size - 1))) { raiseGP0(); return 0; }
    if (pagingOn && shadowActive()) return shadowMiss(lin, size, access, kind);
    let gpa: u64 = lin, guestShift: i32 = 30, rights: u32 = RIGHT_W | RIGHT_U | RIGHT_DIRTY;
    if (pagingOn) {
      gpa = walk(lin, access);
      if (gpa == <u64>-1) return 0;
      guestShift = walkPageShift; rights = walkRights;
    }
    if (gpa + <u64>size > ramSize) return unbacked(gpa, size, access); // ROM, MMIO: never cached
    let hostShift: i32 = 30, hostRights: u32 = 7;
    if (eptOn) {
      hpa = eptTranslate(gpa, access, true, lin, true);
      if (hpa == <u64>-1) return 0;
      hostShift = eptPageShift; hostRights = eptRights;
    } else if (mappedMemory) {
      // --mmu shadow with the guest's paging off: the host map alone (KVM's nonpaging shadow mode,
      // gva = gpa); a gfn the host has not backed yet is a violation exit like under EPT.
      hpa = hostMapTranslate(hostMapRoot, gpa, access);
      if (hpa == <u64>-1) return 0;
      hostShift = eptPageShift; hostRights = eptRights;
    } else hpa = directHpa + gpa;
    let shift = guestShift < hostShift ? guestShift : hostShift;
    if (shift == 22) shift = 21; // a 32-bit 4 MiB page is cached as 2 MiB halves
    // Under --mmu direct the cached page must lie inside guest RAM (a guest 1 GiB page over 64 MiB).
    while (!mappedMemory && shift > 12 && ((gpa >> <u64>shift) + 1) << <u64>shift > ramSize) shift = shift == 30 ? 21 : 12;
    if (mappedMemory || ((gpa >> 12) + 1) << 12 <= ramSize) {
      const cls = shift == 12 ? PS_4K : shift == 21 ? PS_2M : PS_1G;
      const mask: u64 = (<u64>1 << <u64>shift) - 1;
      allowedKindsLast = allowedKinds(rights, hostRights);
      tlbInsert(lin, cls, (hpa & ~mask), allowedKindsLast, (rights & RIGHT_GLOBAL) != 0);
    } else allowedKindsLast = 0;
  } else allowedKindsLast = 0; // (an L2 hit: the next access will take the L1 path and be remembered)
  if (cacheModelOn) dataAccess(hpa);
  if (((allowedKindsLast >> kind) & 1) != 0) remember(kind, lin, hpa);
  return <usize>HOST_POOL_BASE + <usize>hpa;
}

/** --mmu shadow: the hardware walks the shadow table (gva -> hpa, one dimension); when it finds no
 *  usable spte, the hypervisor's page-fault handler (shadow.ts) builds it, reflects a guest #PF, or
 *  emulates the access (a write to a guest page table is done here and synced after the
 *  instruction), and the access retries through the shadow walk as the guest would. */
function shadowMiss(lin: u64, size: i32, access: i32, kind: u32): usize {
  let hpa = shadowWalk(lin, access);
  if (hpa == <u64>-1) {
    const r = shadowFault(lin, size, access);
    if (r == SF_FAULT) return 0;
    if (r == SF_UNBACKED) return unbacked(shadowFaultGpa, size, access); // ROM, MMIO: never cached
    if (r == SF_EMULATE || (hpa = shadowWalk(lin, access)) == <u64>-1) {
      if (ptWritesPending) bouncePending = true; // the run loop calls flushBounces after the instruction
      allowedKindsLast = 0;
      hpa = shadowFaultHpa;
      if (cacheModelOn) dataAccess(hpa);
      return <usize>HOST_POOL_BASE + <usize>hpa;
    }
  }
  const shift = shadowPageShift;
  const mask: u64 = (<u64>1 << <u64>shift) - 1;
  allowedKindsLast = allowedKinds(shadowRights, 7);
  tlbInsert(lin, shift == 12 ? PS_4K : PS_2M, hpa & ~mask, allowedKindsLast, (shadowRights & RIGHT_GLOBAL) != 0);
  if (cacheModelOn) dataAccess(hpa);
  if (((allowedKindsLast >> kind) & 1) != 0) remember(kind, lin, hpa);
  return <usize>HOST_POOL_BASE + <usize>hpa;
}

/** Access kinds (bit ACC_* for supervisor, ACC_* + 3 for user) a cached entry may serve without a
 *  walk, under the CR0.WP/CR4.SMEP/SMAP in force (changing them flushes the TLB). Writes need the
 *  dirty bit already set; SMAP-protected supervisor data accesses always walk (RFLAGS.AC decides). */
function allowedKinds(rights: u32, eptRightsBits: u32): u32 {
  const cr4 = load<u64>(cpu + ST_CR4);
  const wp = (load<u64>(cpu + ST_CR0) & CR0_WP) != 0;
  const w = (rights & RIGHT_W) != 0, u = (rights & RIGHT_U) != 0, nx = (rights & RIGHT_NX) != 0;
  const dirty = (rights & RIGHT_DIRTY) != 0;
  const smapBlocks = u && (cr4 & CR4_SMAP) != 0;
  let a: u32 = 0;
  if (!smapBlocks) { a |= 1; if (dirty && (w || !wp)) a |= 2; }
  if (!nx && !(u && (cr4 & CR4_SMEP) != 0)) a |= 4;
  if (u) { a |= 8; if (w && dirty) a |= 16; if (!nx) a |= 32; }
  if ((eptRightsBits & 1) == 0) a &= ~(<u32>(1 | 8));
  if ((eptRightsBits & 2) == 0) a &= ~(<u32>(2 | 16));
  if ((eptRightsBits & 4) == 0) a &= ~(<u32>(4 | 32));
  return a;
}

/** Copy staged split writes back to their two pages and hand staged device writes to the host
 *  (when the instruction completed without a fault), then free the slots. */
export function flushBounces(commit: bool): void {
  // Emulated writes to shadowed guest page tables: synced whether or not the instruction completed,
  // since a faulting instruction may already have written some of its bytes.
  if (ptWritesPending) shadowSyncWrites();
  if (commit) {
    const vcpu = <i32>((cpu - <usize>VCPU_AREA_BASE) / <usize>VCPU_STRIDE);
    for (let i = 0; i < mmioUsed; i++) {
      const slot: usize = <usize>MMIO_STAGE_BASE + <usize>i * 32;
      if (load<u32>(slot + 28) == 0) continue;
      const gpa = load<u64>(slot + 16);
      hostMmioWrite(vcpu, <i32>gpa, <i32>(gpa >> 32), <i32>load<u32>(slot + 24), <i32>slot);
    }
  }
  mmioUsed = 0;
  for (let i = 0; i < bounceUsed; i++) {
    const slot: usize = <usize>BOUNCE_BASE + <usize>i * 64;
    const first = <usize>load<u64>(slot + 16);
    if (!commit || first == 0) continue;
    const n1 = <usize>load<u32>(slot + 32), size = <usize>load<u32>(slot + 36);
    memory.copy(first, slot, n1);
    memory.copy(<usize>load<u64>(slot + 24), slot + n1, size - n1);
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
  if (access == 1) error |= 2;
  if (access == 2) error |= 0x10;
  raisePF(lin < ramSize ? ramSize : lin, error);
}
