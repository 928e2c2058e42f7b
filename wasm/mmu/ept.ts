// The host dimension (gpa -> hpa): a nested page table in the EPT format (SDM Vol. 3C, 28.3.2) that
// the host owns and edits (emu/hv/mm/ept.ts), living in host frames. Four levels, 4 KiB leaves in
// the PT, 2 MiB leaves in the PD and 1 GiB leaves in the PDPT (bit 7), R/W/X permissions ANDed
// across the levels. A missing or forbidding entry is an EPT violation: the access is abandoned,
// the instruction will restart, and run() exits to the host with the gpa and an exit qualification.
import {
  ST_EPTP, EPTP_ENABLE, EPTP_AD, EPT_ACCESSED, EPT_DIRTY, HOST_POOL_BASE, ACC_WRITE, ACC_FETCH, EPT_LARGE, DIM_HOST, EPTQ_READ, EPTQ_WRITE,
  EPTQ_FETCH, EPTQ_GVA_VALID, EPTQ_FINAL, ST_EXIT_ADDR, ST_EXIT_GVA, ST_EXIT_ERROR_CODE, MC_EPT_VIOLATIONS,
  MC_NESTED_TLB_HIT, ACC_READ,
} from '../abi';
import { cpu } from '../cpu/state';
import { raiseEptViolation } from '../cpu/fault';
import { pageTableRef, mmuCount } from './accounting';
import { hostPoolSize } from '../mem/memory-map';

/** --mmu ept for the running vCPU (ST_EPTP has EPTP_ENABLE), and the hpa of its EPT PML4. */
export let eptOn: bool = false;
let eptRoot: u64 = 0;

export function selectEpt(): void {
  const eptp = load<u64>(cpu + ST_EPTP);
  eptOn = (eptp & EPTP_ENABLE) != 0;
  eptAd = (eptp & EPTP_AD) != 0;
  eptRoot = eptp & ~(<u64>0xfff);
}
/** EPTP bit 6: the walk keeps accessed and dirty flags in the EPT entries (what the host's reclaim
 *  harvests: clear them, INVEPT, look again later). */
let eptAd: bool = false;

/** Results of the last successful eptTranslate: the host page size (12, 21 or 30) and the R/W/X
 *  rights of the whole walk. */
export let eptPageShift: i32 = 12;
export let eptRights: u32 = 7;

const ADDR_MASK: u64 = 0x000ffffffffff000;

/** Host-physical address of guest-physical `gpa` for `access`, or -1 with an EPT violation raised.
 *  `final` says whether this is the access's own gpa or a guest page-table reference (`gva` is the
 *  linear address being translated; `gvaValid` false for accesses with none, e.g. PDPTE loads). */
export function eptTranslate(gpa: u64, access: i32, final: bool, gva: u64, gvaValid: bool): u64 {
  if (!final && nestedTlbOn) return nestedTlbTranslate(gpa, gva, gvaValid);
  return eptWalk(gpa, access, final, gva, gvaValid);
}

// ---- The nested TLB: gpa -> hpa of guest page-table pages (an option, as on hardware) ----
// Hardware keeps translations of the guest's paging-structure gpas, so a 2D walk does not repeat
// the host walk for every guest level (AMD calls it the nested TLB). Direct-mapped, tagged by gfn
// and by EPT root, filled only by successful reads, dropped by INVEPT.
const NESTED_TLB_ENTRIES: i32 = 256;
const nestedGfn = new StaticArray<u64>(NESTED_TLB_ENTRIES);
const nestedRoot = new StaticArray<u64>(NESTED_TLB_ENTRIES);
const nestedHpa = new StaticArray<u64>(NESTED_TLB_ENTRIES);
export let nestedTlbOn: bool = false;
export function setNestedTlb(on: bool): void { nestedTlbOn = on; flushNestedTlb(); }
export function flushNestedTlb(): void {
  for (let i = 0; i < NESTED_TLB_ENTRIES; i++) unchecked(nestedGfn[i] = <u64>-1);
}

function nestedTlbTranslate(gpa: u64, gva: u64, gvaValid: bool): u64 {
  const gfn = gpa >> 12;
  const i = <i32>gfn & (NESTED_TLB_ENTRIES - 1);
  if (unchecked(nestedGfn[i]) == gfn && unchecked(nestedRoot[i]) == eptRoot) {
    mmuCount(MC_NESTED_TLB_HIT);
    return unchecked(nestedHpa[i]) | (gpa & 0xfff);
  }
  const hpa = eptWalk(gpa, ACC_READ, false, gva, gvaValid);
  if (hpa != <u64>-1) {
    unchecked(nestedGfn[i] = gfn); unchecked(nestedRoot[i] = eptRoot); unchecked(nestedHpa[i] = hpa & ~(<u64>0xfff));
  }
  return hpa;
}

/** The host's gpa -> hpa map walked in software by the shadow MMU (shadow.ts): the same table
 *  format and the same violation exit, but no hardware walk, so its references are not counted
 *  (KVM's gfn_to_pfn looks the memslots and the host's own tables up in software). */
export function hostMapTranslate(root: u64, gpa: u64, access: i32): u64 {
  const saved = eptRoot;
  eptRoot = root;
  softwareWalk = true;
  const hpa = eptWalk(gpa, access, true, 0, false);
  softwareWalk = false;
  eptRoot = saved;
  return hpa;
}
let softwareWalk: bool = false;

function eptWalk(gpa: u64, access: i32, final: bool, gva: u64, gvaValid: bool): u64 {
  const need: u32 = access == ACC_WRITE ? 2 : access == ACC_FETCH ? 4 : 1;
  let table = eptRoot;
  let rights: u32 = 7;
  let shift: i32 = 39;
  const pool = hostPoolSize(); // no entry may point outside the pool (a host bug must not leak memory)
  for (let level = 4; level >= 1; level--) {
    const at = table + (((gpa >> <u64>shift) & 511) << 3);
    const e = at + 8 <= pool ? load<u64>(<usize>HOST_POOL_BASE + <usize>at) : 0;
    if (!softwareWalk) pageTableRef(DIM_HOST, level, gpa, at, e);
    rights &= <u32>e & 7;
    if ((<u32>e & 7) == 0) return violation(gpa, need, rights, final, gva, gvaValid);
    const leaf = level == 1 || ((e & EPT_LARGE) != 0 && level <= 3);
    if (!leaf) {
      if (eptAd && !softwareWalk && (e & EPT_ACCESSED) == 0) store<u64>(<usize>HOST_POOL_BASE + <usize>at, e | EPT_ACCESSED);
      table = e & ADDR_MASK; shift -= 9; continue;
    }
    if ((rights & need) == 0) return violation(gpa, need, rights, final, gva, gvaValid);
    const pageMask: u64 = (<u64>1 << <u64>shift) - 1;
    const frame = e & ADDR_MASK & ~pageMask;
    if (frame + pageMask + 1 > pool) return violation(gpa, need, 0, final, gva, gvaValid);
    eptPageShift = shift;
    eptRights = rights;
    if (eptAd && !softwareWalk) {
      // SDM Vol. 3C, 28.3.5: A on every entry used, D on the leaf of a write. A translation cached
      // before the page is dirty must not serve a write: the write walks again and sets D.
      const flags = EPT_ACCESSED | (need == 2 ? EPT_DIRTY : 0);
      if ((e & flags) != flags) store<u64>(<usize>HOST_POOL_BASE + <usize>at, e | flags);
      if (((e | flags) & EPT_DIRTY) == 0) eptRights &= ~(<u32>2);
    }
    return frame | (gpa & pageMask);
  }
  return <u64>-1;
}

function violation(gpa: u64, need: u32, rights: u32, final: bool, gva: u64, gvaValid: bool): u64 {
  // Exit qualification (SDM Vol. 3C, Table 28-7): the access (bits 0-2), what the entries allowed
  // (bits 3-5), whether a linear address is known (bit 7) and whether it was the final access (bit 8).
  let q: u32 = (need == 2 ? EPTQ_WRITE : need == 4 ? EPTQ_FETCH : EPTQ_READ) | (rights << 3);
  if (gvaValid) q |= EPTQ_GVA_VALID | (final ? EPTQ_FINAL : 0);
  store<u64>(cpu + ST_EXIT_ADDR, gpa);
  store<u64>(cpu + ST_EXIT_GVA, gva);
  store<u32>(cpu + ST_EXIT_ERROR_CODE, q);
  mmuCount(MC_EPT_VIOLATIONS);
  raiseEptViolation();
  return <u64>-1;
}
