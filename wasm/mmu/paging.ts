// Guest paging (gva -> gpa): the page walks of SDM Vol. 3A chapter 4 — 32-bit (4 KiB and, with
// CR4.PSE, 4 MiB pages), PAE (4 KiB, 2 MiB; the four PDPTEs are registers loaded on MOV CR3, 4.4.1)
// and 4-level IA-32e (4 KiB, 2 MiB, 1 GiB) — with the permission rules (R/W with CR0.WP, U/S, NX
// with EFER.NXE, SMEP, SMAP with RFLAGS.AC), reserved bits, the page-fault error code, CR2, and
// accessed/dirty bits set at every level. Under --mmu ept every guest page-table reference is itself
// a gpa translated through the host's nested table (ept.ts): the two-dimensional walk. Every
// reference is counted by accounting.ts. The TLBs (tlb.ts) cache what this walk computes.
import {
  ST_CR0, ST_CR3, ST_CR4, ST_EFER, ST_CR2, ST_PDPTE, CR0_WP, EFER_NXE, ACC_WRITE, ACC_FETCH, ACC_READ,
  HOST_POOL_BASE, FLAG_AC, VEC_PF, DIM_GUEST, MC_WALKS, MC_WALK_FAULTS, MC_PDE_CACHE_HIT,
} from '../abi';
import { cpu, cpl, rflags } from '../cpu/state';
import { raise, raiseGP0 } from '../cpu/fault';
import { eptOn, eptTranslate, hostMapTranslate } from './ept';
import { ramSize, directHpa, hostMapRoot, mappedMemory } from '../mem/memory-map';
import { pageTableRef, mmuCount } from './accounting';

export const PTE_P: u64 = 0x1;
export const PTE_RW: u64 = 0x2;
export const PTE_US: u64 = 0x4;
const PTE_A: u64 = 0x20;
const PTE_D: u64 = 0x40;
const PTE_PS: u64 = 0x80;
const PTE_G: u64 = 0x100;
const PTE_XD: u64 = 0x8000000000000000;
export const CR4_PSE: u64 = 0x10;
export const CR4_PAE: u64 = 0x20;
export const CR4_PGE: u64 = 0x80;
export const CR4_PCIDE: u64 = 0x20000;
export const CR4_SMEP: u64 = 0x100000;
export const CR4_SMAP: u64 = 0x200000;

const PF_P: u32 = 1, PF_W: u32 = 2, PF_U: u32 = 4, PF_RSVD: u32 = 8, PF_ID: u32 = 16;

/** Physical address width (CPUID 80000008h EAX[7:0] reports the same). */
export const MAX_PHYS_BITS: u32 = 40;
const PHYS_MASK: u64 = ((<u64>1 << MAX_PHYS_BITS) - 1) & ~(<u64>0xfff);
/** Bits 51:MAXPHYADDR of an entry: reserved (SDM Vol. 3A, Tables 4-14 to 4-20). */
const RSVD_HIGH: u64 = 0x000fffffffffffff & ~((<u64>1 << MAX_PHYS_BITS) - 1);

/** Accesses made by the CPU itself on behalf of the kernel (descriptor tables, the TSS, interrupt
 *  stacks at CPL 0): supervisor accesses whatever the CPL (SDM Vol. 3A, 4.6). */
export let implicitSupervisor: bool = false;
export function setImplicitSupervisor(v: bool): void { implicitSupervisor = v; }

// ---- What the last successful walk found (the TLB fill reads these) ----
/** log2 of the guest page size: 12, 21, 22 (32-bit 4 MiB) or 30. */
export let walkPageShift: i32 = 12;
/** Rights ANDed over the levels: RIGHT_* bits. */
export let walkRights: u32 = 0;
export const RIGHT_W: u32 = 1, RIGHT_U: u32 = 2, RIGHT_NX: u32 = 4, RIGHT_DIRTY: u32 = 8, RIGHT_GLOBAL: u32 = 16;

/** Set when an EPT violation abandoned the walk. */
let aborted: bool = false;
/** Host-physical address of the entry read last (where A/D bits are written). */
let entryHpa: u64 = 0;

/** Read the guest table entry at guest-physical `gpa`, counting the reference (and, under EPT,
 *  the references of translating `gpa`). */
function readEntry(gpa: u64, wide: bool, level: i32, lin: u64, linValid: bool): u64 {
  if (gpa + 8 > ramSize) { entryHpa = <u64>-1; return 0; } // table entries beyond RAM read as 0 (not present)
  let hpa: u64;
  if (eptOn) hpa = eptTranslate(gpa, ACC_READ, false, lin, linValid);
  else if (mappedMemory) hpa = hostMapTranslate(hostMapRoot, gpa, ACC_READ); // (--mmu shadow: the host map in software)
  else hpa = directHpa + gpa;
  if (hpa == <u64>-1) { aborted = true; entryHpa = <u64>-1; return 0; }
  const p = <usize>HOST_POOL_BASE + <usize>hpa;
  const e = wide ? load<u64>(p) : <u64>load<u32>(p);
  pageTableRef(DIM_GUEST, level, gpa, hpa, e);
  entryHpa = hpa;
  return e;
}
@inline function writeEntry(wide: bool, v: u64): void {
  const p = <usize>HOST_POOL_BASE + <usize>entryHpa;
  if (wide) store<u64>(p, v); else store<u32>(p, <u32>v);
}

function pageFault(lin: u64, error: u32): u64 {
  store<u64>(cpu + ST_CR2, lin);
  raise(VEC_PF, error, true);
  mmuCount(MC_WALK_FAULTS);
  return <u64>-1;
}

/** PAE paging outside IA-32e mode: load the four PDPTEs from CR3 (SDM Vol. 3A, 4.4.1). Called on
 *  MOV CR3 and on CR0/CR4 writes that (re)enter PAE paging; false (and #GP raised) when a present
 *  PDPTE has reserved bits set. */
export function loadPdptes(): bool {
  const base = load<u64>(cpu + ST_CR3) & 0xffffffe0;
  for (let i = 0; i < 4; i++) {
    aborted = false;
    const e = readEntry(base + <u64>i * 8, true, 3, 0, false);
    if (aborted) return false;
    if ((e & PTE_P) != 0 && (e & (0x1e6 | RSVD_HIGH | PTE_XD)) != 0) { raiseGP0(); return false; }
    store<u64>(cpu + ST_PDPTE + <usize>i * 8, e);
  }
  return true;
}

// ---- The PDE cache, a paging-structure cache (SDM Vol. 3A, 4.10.3; an option, counted) ----
// For 4-level paging it maps bits 47:21 of a linear address (and the PCID/VPID tag) to the guest
// page table the PDE points to, with the rights of the upper levels, so a walk that hits reads the
// PTE alone. Entries are dropped with the TLB's (MOV CR3, INVLPG, INVPCID, CR0/CR4 changes): the SDM
// lets INVLPG drop every paging-structure-cache entry of the PCID, and this cache is small.
const PDE_CACHE_ENTRIES: i32 = 64;
const pdeTag = new StaticArray<u64>(PDE_CACHE_ENTRIES);
const pdeKey = new StaticArray<u32>(PDE_CACHE_ENTRIES);
const pdeTable = new StaticArray<u64>(PDE_CACHE_ENTRIES);
const pdeRights = new StaticArray<u32>(PDE_CACHE_ENTRIES);
export let pdeCacheOn: bool = false;
export function setPdeCache(on: bool): void { pdeCacheOn = on; flushPdeCache(); }
export function flushPdeCache(): void {
  for (let i = 0; i < PDE_CACHE_ENTRIES; i++) unchecked(pdeTag[i] = <u64>-1);
}
// ---- What the shadow MMU needs from the walk (shadow.ts, KVM's FNAME(walk_addr) guest_walker) ----
/** Per level (1-4) of the last walk: the gpa of the table read and the gpte found there. */
export const gwTable = new StaticArray<u64>(6);
export const gwEntry = new StaticArray<u64>(6);
/** Under --mmu shadow the walk is the hypervisor's software walk of a shadow page fault: it counts
 *  its references but is not a hardware walk (MC_WALKS), and it never uses the PDE cache, whose
 *  stale entries would otherwise be copied into sptes that outlive the guest's invalidation. */
let shadowWalker: bool = false;
export function setShadowWalker(on: bool): void { shadowWalker = on; }

/** The running vCPU's TLB tag (PCID and VPID), kept by tlb.ts. */
let walkTag: u32 = 0;
export function setWalkTag(tag: u32): void { walkTag = tag; }

/** Translate linear `lin` to a guest-physical address for `access`, or return -1 with #PF (or an
 *  EPT violation) raised. On success walkPageShift and walkRights describe the page. */
export function walk(lin: u64, access: i32): u64 {
  aborted = false;
  const cr4 = load<u64>(cpu + ST_CR4);
  const efer = load<u64>(cpu + ST_EFER);
  const nxe = (efer & EFER_NXE) != 0;
  const user = cpl == 3 && !implicitSupervisor;
  const write = access == ACC_WRITE;
  const fetch = access == ACC_FETCH;
  // I/D is reported for fetches when SMEP is on or execute-disable exists (PAE/4-level with NXE), SDM 4.7.
  const idBit = fetch && ((cr4 & CR4_SMEP) != 0 || (nxe && (cr4 & CR4_PAE) != 0));
  let error: u32 = (write ? PF_W : 0) | (user ? PF_U : 0) | (idBit ? PF_ID : 0);
  const cr3 = load<u64>(cpu + ST_CR3);
  let wide: bool, levels: i32, table: u64, shift: u64;
  if ((efer & 0x400) != 0) { wide = true; levels = 4; table = cr3 & PHYS_MASK; shift = 39; }
  else if ((cr4 & CR4_PAE) != 0) {
    // PAE: the PDPTE register selected by bits 31:30 (validated when it was loaded).
    wide = true; levels = 2; shift = 21;
    const pdpte = load<u64>(cpu + ST_PDPTE + <usize>((lin >> 30) & 3) * 8);
    if ((pdpte & PTE_P) == 0) return pageFault(lin, error);
    table = pdpte & PHYS_MASK;
  } else { wide = false; levels = 2; table = cr3 & 0xfffff000; shift = 22; }

  let rw = true, us = true, xd = false;
  let first = levels;
  const pdeSlot = <i32>(lin >> 21) & (PDE_CACHE_ENTRIES - 1);
  const pdeCache = pdeCacheOn && levels == 4 && !shadowWalker;
  if (pdeCache) {
    if (unchecked(pdeTag[pdeSlot]) == (lin >> 21) && unchecked(pdeKey[pdeSlot]) == walkTag) {
      const r = unchecked(pdeRights[pdeSlot]);
      table = unchecked(pdeTable[pdeSlot]);
      rw = (r & RIGHT_W) != 0; us = (r & RIGHT_U) != 0; xd = (r & RIGHT_NX) != 0;
      shift = 12;
      first = 1;
      mmuCount(MC_PDE_CACHE_HIT);
    }
  }
  for (let level = first; level >= 1; level--) {
    const indexBits: u64 = wide ? 9 : 10;
    const index = (lin >> shift) & ((<u64>1 << indexBits) - 1);
    const e = readEntry(table + index * (wide ? 8 : 4), wide, level, lin, true);
    if (aborted) return <u64>-1;
    unchecked(gwTable[level] = table); unchecked(gwEntry[level] = e);
    if ((e & PTE_P) == 0) return pageFault(lin, error);
    // Reserved bits: physical-address bits above MAXPHYADDR, XD without NXE, PS where it is not
    // allowed, and the low address bits of large-page entries that must be zero.
    const large = (e & PTE_PS) != 0 && level > 1 && (wide || (cr4 & CR4_PSE) != 0);
    let reserved = wide && ((e & RSVD_HIGH) != 0 || (!nxe && (e & PTE_XD) != 0));
    // PAE paging: bits 62:52 of PDEs and PTEs are reserved too (ignored only in 4-level paging, 4.4.2).
    if (wide && levels == 2 && (e & 0x7ff0000000000000) != 0) reserved = true;
    if (wide && level == 4 && (e & PTE_PS) != 0) reserved = true; // no 512 GiB pages
    if (large && wide && (e & (((<u64>1 << shift) - 1) & ~(<u64>0x1fff))) != 0) reserved = true; // bits (shift-1):13
    if (large && !wide && (e & 0x200000) != 0) reserved = true; // PSE-36: bit 21 is reserved with 40-bit MAXPHYADDR
    if (reserved) return pageFault(lin, error | PF_P | PF_RSVD);
    rw = rw && (e & PTE_RW) != 0;
    us = us && (e & PTE_US) != 0;
    xd = xd || (wide && (e & PTE_XD) != 0);
    if (level > 1 && !large) {
      if ((e & PTE_A) == 0) writeEntry(wide, e | PTE_A);
      table = wide ? e & PHYS_MASK : e & 0xfffff000;
      shift -= indexBits;
      if (level == 2 && pdeCache) {
        unchecked(pdeTag[pdeSlot] = lin >> 21); unchecked(pdeKey[pdeSlot] = walkTag); unchecked(pdeTable[pdeSlot] = table);
        unchecked(pdeRights[pdeSlot] = (rw ? RIGHT_W : 0) | (us ? RIGHT_U : 0) | (xd ? RIGHT_NX : 0));
      }
      continue;
    }
    // Permission checks on the combined rights (SDM Vol. 3A, 4.6.1).
    const cr0 = load<u64>(cpu + ST_CR0);
    if (user && !us) return pageFault(lin, error | PF_P);
    if (write && !rw && (user || (cr0 & CR0_WP) != 0)) return pageFault(lin, error | PF_P);
    if (fetch && xd && nxe) return pageFault(lin, error | PF_P);
    if (!user && us) {
      if (fetch && (cr4 & CR4_SMEP) != 0) return pageFault(lin, error | PF_P);
      if (!fetch && (cr4 & CR4_SMAP) != 0 && (implicitSupervisor || cpl == 3 || (rflags & FLAG_AC) == 0)) {
        return pageFault(lin, error | PF_P);
      }
    }
    let nv = e | PTE_A;
    if (write) nv |= PTE_D;
    if (nv != e) writeEntry(wide, nv);
    walkPageShift = <i32>shift;
    walkRights = (rw ? RIGHT_W : 0) | (us ? RIGHT_U : 0) | (xd && nxe ? RIGHT_NX : 0) | ((nv & PTE_D) != 0 ? RIGHT_DIRTY : 0)
      | ((e & PTE_G) != 0 && (cr4 & CR4_PGE) != 0 ? RIGHT_GLOBAL : 0);
    if (!shadowWalker) mmuCount(MC_WALKS);
    if (!wide && large) {
      // 4 MiB page: bits 31:22 from the PDE, bits 39:32 from PDE bits 20:13 (PSE-36).
      return (e & 0xffc00000) | ((e & 0x1fe000) << 19) | (lin & 0x3fffff);
    }
    const pageMask: u64 = (<u64>1 << shift) - 1;
    const frame = (wide ? e & PHYS_MASK : e & 0xfffff000) & ~pageMask;
    return frame | (lin & pageMask);
  }
  return pageFault(lin, error);
}
