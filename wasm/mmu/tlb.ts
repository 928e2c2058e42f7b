// Per-vCPU TLBs: separate 4 KiB, 2 MiB and 1 GiB arrays and an optional second level holding 4 KiB
// and 2 MiB entries (like Intel's STLB), each set-associative with LRU replacement and a geometry
// the host chooses (a large default for running guests fast, realistic presets for benchmarks).
// Entries are tagged by PCID and by guest (ST_VPID, KVM's VPID role) and cache a complete
// translation gva -> hpa, at the smaller of the guest and host page sizes (a guest 2 MiB page on
// host 4 KiB frames is splintered into 4 KiB entries, SDM Vol. 3C, 28.4.2). The architectural rules
// hold in every geometry: MOV CR3 drops non-global entries of the PCID, INVLPG one page, INVPCID its
// four types, and CR0/CR4 changes everything (SDM Vol. 3A, 4.10.4).
//
// Entry (TLB_ENTRY_SIZE = 32 bytes): u64 virtual page number (gva >> page shift), u32 key
// (KEY_VALID | KEY_GLOBAL | vpid << 12 | pcid), u32 allow (bit n: access kind n = ACC_* + 3 for
// user accesses is allowed without a walk; bits 8-9: page-size class), u64 hpa of the page, u32 LRU stamp.
import {
  TLB_BASE, TLB_AREA_SIZE, TLB_ENTRY_SIZE, TLB_MAX_ENTRIES, TLB_ARRAYS, TLB_L2, PS_4K, PS_2M, PS_1G, ST_VPID,
  ST_CR3, ST_CR4, MAX_VCPUS, MC_TLB_HIT, MC_TLB_MISS, MC_TLB_FLUSHES, MC_TLB_INVLPG, MC_TLB_FILL,
} from '../abi';
import { cpu } from '../cpu/state';
import { vcpuFirst, vcpuCount } from '../mem/memory-map';
import { mmuCount } from './accounting';
import { flushPdeCache, setWalkTag } from './paging';

const KEY_VALID: u32 = 0x80000000;
const KEY_GLOBAL: u32 = 0x40000000;
const KEY_PCID: u32 = 0xfff;

// Geometry, shared by all vCPUs: sets (a power of two) and ways per array, and each array's offset
// in a vCPU's TLB area. Index = PS_4K, PS_2M, PS_1G, TLB_L2.
const sets = new StaticArray<u32>(TLB_ARRAYS);
const ways = new StaticArray<u32>(TLB_ARRAYS);
const offsets = new StaticArray<u32>(TLB_ARRAYS);
const SHIFTS: StaticArray<u32> = [12, 21, 30, 12];

// ---- The micro-TLB: the last 4 KiB page translated for each access kind ----
// A model-free shortcut in front of the TLB arrays (like QEMU's softmmu fast path): it only ever
// holds a translation that the TLB just returned, and it is emptied whenever any TLB entry could
// change (every flush, a new tag, a vCPU switch, a geometry change). Off in the realistic presets,
// where every lookup must reach the modelled arrays and be counted.
export const microPage = new StaticArray<u64>(6);
export const microHost = new StaticArray<usize>(6);
export let microTlbOn: bool = true;
export function setMicroTlb(on: bool): void { microTlbOn = on; microFlush(); }
export function microFlush(): void { for (let i = 0; i < 6; i++) unchecked(microPage[i] = <u64>-1); }

/** The running vCPU's TLB area and tag. */
let area: usize = TLB_BASE;
let curKey: u32 = KEY_VALID;
let stamp: u32 = 0;

/** Set the geometry (sets 0 disables an array; the L2 may be off). Flushes every vCPU's TLBs. */
export function configureTlb(array: i32, nSets: u32, nWays: u32): bool {
  if (array < 0 || array >= TLB_ARRAYS) return false;
  if (nSets != 0 && ((nSets & (nSets - 1)) != 0 || nWays == 0)) return false;
  const old = unchecked(sets[array]) * unchecked(ways[array]);
  unchecked(sets[array] = nSets);
  unchecked(ways[array] = nSets == 0 ? 0 : nWays);
  let total: u32 = 0;
  for (let i = 0; i < TLB_ARRAYS; i++) { unchecked(offsets[i] = total * TLB_ENTRY_SIZE); total += unchecked(sets[i]) * unchecked(ways[i]); }
  if (total > <u32>TLB_MAX_ENTRIES) {
    unchecked(sets[array] = old == 0 ? 0 : 1); unchecked(ways[array] = old);
    return false;
  }
  // Only the entries of the new geometry: untouched host memory stays unbacked for idle vCPU slots.
  for (let v = 0; v < MAX_VCPUS; v++) memory.fill(<usize>TLB_BASE + <usize>v * <usize>TLB_AREA_SIZE, 0, <usize>total * TLB_ENTRY_SIZE);
  microFlush();
  return true;
}

/** Select the running vCPU's area and recompute its tag (run() entry, MOV CR3/CR4, VPID changes). */
export function selectTlb(vcpu: i32): void {
  area = <usize>TLB_BASE + <usize>vcpu * <usize>TLB_AREA_SIZE;
  vcpuTagBits = (<u32>vcpu & 3) << 28;
  refreshTlbKey();
}
export function refreshTlbKey(): void {
  const pcid = (load<u64>(cpu + ST_CR4) & 0x20000) != 0 ? <u32>load<u64>(cpu + ST_CR3) & KEY_PCID : 0;
  curKey = KEY_VALID | ((load<u32>(cpu + ST_VPID) & 0xffff) << 12) | pcid;
  setWalkTag(curKey | vcpuTagBits); // the PDE cache is shared by the vCPUs: tag it with the vCPU (bits 28-29)
  microFlush();
}
let vcpuTagBits: u32 = 0;

@inline function keyMatches(k: u32): bool {
  return k == curKey || ((k & KEY_GLOBAL) != 0 && ((k ^ curKey) & ~(KEY_GLOBAL | KEY_PCID)) == 0);
}

/** Look `lin` up in one array for access kind `kind` (ACC_* + 3 for user); the host pointer offset
 *  (hpa of the byte) or -1. */
@inline function probe(array: i32, lin: u64, kind: u32): u64 {
  const n = unchecked(ways[array]);
  if (n == 0) return <u64>-1;
  const shift = unchecked(SHIFTS[array]);
  const vpn = lin >> <u64>shift;
  let e = area + <usize>unchecked(offsets[array]) + <usize>((<u32>vpn & (unchecked(sets[array]) - 1)) * n) * TLB_ENTRY_SIZE;
  for (let w: u32 = 0; w < n; w++, e += TLB_ENTRY_SIZE) {
    if (load<u64>(e) != vpn || !keyMatches(load<u32>(e, 8))) continue;
    const allow = load<u32>(e, 12);
    if (array == TLB_L2 && (allow >> 8) != PS_4K) continue;
    if (((allow >> kind) & 1) == 0) return <u64>-1; // present but needs the walk (fault, A/D, SMAP)
    if (n > 1) store<u32>(e, ++stamp, 24);
    mmuCount(MC_TLB_HIT + array);
    return load<u64>(e, 16) + (lin & ((<u64>1 << <u64>shift) - 1));
  }
  return <u64>-1;
}

/** The hpa of `lin` from the L1 arrays, or -1 on a miss. */
@inline export function tlbLookup(lin: u64, kind: u32): u64 {
  let h = probe(PS_4K, lin, kind);
  if (h != <u64>-1) return h;
  h = probe(PS_2M, lin, kind);
  if (h != <u64>-1) return h;
  return probe(PS_1G, lin, kind);
}

/** Second-level lookup (4 KiB then 2 MiB entries), refilling the L1 on a hit. */
export function tlbLookupL2(lin: u64, kind: u32): u64 {
  const n = unchecked(ways[TLB_L2]);
  if (n == 0) return <u64>-1;
  for (let cls = PS_4K; cls <= PS_2M; cls++) {
    const shift: u64 = cls == PS_4K ? 12 : 21;
    const vpn = lin >> shift;
    let e = area + <usize>unchecked(offsets[TLB_L2]) + <usize>((<u32>vpn & (unchecked(sets[TLB_L2]) - 1)) * n) * TLB_ENTRY_SIZE;
    for (let w: u32 = 0; w < n; w++, e += TLB_ENTRY_SIZE) {
      const allow = load<u32>(e, 12);
      if (load<u64>(e) != vpn || (allow >> 8) != <u32>cls || !keyMatches(load<u32>(e, 8))) continue;
      if (((allow >> kind) & 1) == 0) return <u64>-1;
      store<u32>(e, ++stamp, 24);
      mmuCount(MC_TLB_HIT + TLB_L2);
      const hpa = load<u64>(e, 16);
      insertInto(cls, vpn, load<u32>(e, 8), allow, hpa);
      return hpa + (lin & ((<u64>1 << shift) - 1));
    }
  }
  return <u64>-1;
}

function insertInto(array: i32, vpn: u64, key: u32, allow: u32, hpa: u64): void {
  const n = unchecked(ways[array]);
  if (n == 0) return;
  const base = area + <usize>unchecked(offsets[array]) + <usize>((<u32>vpn & (unchecked(sets[array]) - 1)) * n) * TLB_ENTRY_SIZE;
  let victim = base;
  let oldest: u32 = 0xffffffff;
  for (let w: u32 = 0; w < n; w++) {
    const e = base + <usize>w * TLB_ENTRY_SIZE;
    const k = load<u32>(e, 8);
    // The same page already cached (e.g. with fewer rights before a write set D): replace it.
    if ((k & KEY_VALID) == 0 || (load<u64>(e) == vpn && (k & ~KEY_GLOBAL) == (key & ~KEY_GLOBAL)
        && (array != TLB_L2 || (load<u32>(e, 12) >> 8) == (allow >> 8)))) { victim = e; break; }
    const s = load<u32>(e, 24);
    if (s < oldest) { oldest = s; victim = e; }
  }
  store<u64>(victim, vpn);
  store<u32>(victim, key, 8);
  store<u32>(victim, allow, 12);
  store<u64>(victim, hpa, 16);
  store<u32>(victim, ++stamp, 24);
}

/** Cache a translation: page-size class `cls`, hpa of the page's first byte, allowed access kinds. */
export function tlbInsert(lin: u64, cls: i32, hpaPage: u64, allow: u32, global: bool): void {
  const shift: u64 = cls == PS_4K ? 12 : cls == PS_2M ? 21 : 30;
  const vpn = lin >> shift;
  const key = curKey | (global ? KEY_GLOBAL : 0);
  mmuCount(MC_TLB_FILL + cls);
  insertInto(cls, vpn, key, (allow & 0x3f) | (<u32>cls << 8), hpaPage);
  if (cls != PS_1G) insertInto(TLB_L2, vpn, key, (allow & 0x3f) | (<u32>cls << 8), hpaPage);
}

export function countTlbMiss(): void { mmuCount(MC_TLB_MISS); }

// ---- Invalidation (SDM Vol. 3A, 4.10.4) ----
export const FLUSH_ALL: i32 = 0; // every entry of this guest, global ones included
export const FLUSH_NONGLOBAL: i32 = 1; // every non-global entry of this guest
export const FLUSH_PCID: i32 = 2; // non-global entries of one PCID

/** Invalidate entries of the running vCPU's guest (VPID): `mode` FLUSH_*, `pcid` for FLUSH_PCID. */
export function tlbFlush(mode: i32, pcid: u32): void {
  mmuCount(MC_TLB_FLUSHES);
  flushPdeCache();
  microFlush();
  const vpidBits = curKey & 0x0ffff000;
  const end = area + <usize>totalEntries() * TLB_ENTRY_SIZE;
  for (let e = area; e < end; e += TLB_ENTRY_SIZE) {
    const k = load<u32>(e, 8);
    if ((k & KEY_VALID) == 0 || (k & 0x0ffff000) != vpidBits) continue;
    if (mode != FLUSH_ALL && (k & KEY_GLOBAL) != 0) continue;
    if (mode == FLUSH_PCID && (k & KEY_PCID) != pcid) continue;
    store<u32>(e, 0, 8);
  }
}

/** INVLPG (and INVPCID type 0 with `pcid`, `keepGlobal`): drop every entry that maps `lin`. */
export function tlbFlushPage(lin: u64, pcid: u32, anyPcid: bool, keepGlobal: bool): void {
  mmuCount(MC_TLB_INVLPG);
  flushPdeCache();
  microFlush();
  const vpidBits = curKey & 0x0ffff000;
  for (let a = 0; a < TLB_ARRAYS; a++) {
    const n = unchecked(ways[a]);
    if (n == 0) continue;
    for (let cls = PS_4K; cls <= PS_1G; cls++) {
      if (a != TLB_L2 && a != cls) continue;
      if (a == TLB_L2 && cls == PS_1G) continue;
      const vpn = lin >> <u64>(cls == PS_4K ? 12 : cls == PS_2M ? 21 : 30);
      let e = area + <usize>unchecked(offsets[a]) + <usize>((<u32>vpn & (unchecked(sets[a]) - 1)) * n) * TLB_ENTRY_SIZE;
      for (let w: u32 = 0; w < n; w++, e += TLB_ENTRY_SIZE) {
        const k = load<u32>(e, 8);
        if ((k & KEY_VALID) == 0 || load<u64>(e) != vpn || (k & 0x0ffff000) != vpidBits) continue;
        if (a == TLB_L2 && (load<u32>(e, 12) >> 8) != <u32>cls) continue;
        const global = (k & KEY_GLOBAL) != 0;
        if (global ? keepGlobal : (!anyPcid && (k & KEY_PCID) != pcid)) continue;
        store<u32>(e, 0, 8);
      }
    }
  }
}

/** Every vCPU, every guest: the host changed a nested (EPT) mapping (INVEPT, all contexts). */
/** Every entry of the running VM's vCPUs (INVEPT: the host changed the VM's gpa -> hpa map). */
export function tlbFlushEverything(): void {
  flushPdeCache();
  microFlush();
  memory.fill(<usize>TLB_BASE + <usize>vcpuFirst * <usize>TLB_AREA_SIZE, 0, <usize>TLB_AREA_SIZE * <usize>vcpuCount);
}

/** Every vCPU of the running VM, every entry (the configured arrays only, so cheaper than
 *  tlbFlushEverything's fill of the whole area): the shadow MMU dropped its reverse map. */
export function tlbInvalidateAllVcpus(): void {
  flushPdeCache();
  microFlush();
  const total = <usize>totalEntries();
  for (let v = vcpuFirst; v < vcpuFirst + vcpuCount; v++) {
    const base = <usize>TLB_BASE + <usize>v * <usize>TLB_AREA_SIZE;
    const end = base + total * TLB_ENTRY_SIZE;
    for (let e = base; e < end; e += TLB_ENTRY_SIZE) store<u32>(e, 0, 8);
  }
}

/** Every vCPU: drop the entries that map host frame `hpaPage` (4 KiB aligned), in any page size.
 *  The shadow MMU calls it when that frame becomes a guest page table it write-protects, so no
 *  writable translation of it stays cached (KVM flushes remote TLBs after write-protecting). */
export function tlbFlushHostFrame(hpaPage: u64): void {
  microFlush();
  const total = <usize>totalEntries();
  for (let v = vcpuFirst; v < vcpuFirst + vcpuCount; v++) { // (a VM's frames are its own)
    const base = <usize>TLB_BASE + <usize>v * <usize>TLB_AREA_SIZE;
    const end = base + total * TLB_ENTRY_SIZE;
    for (let e = base; e < end; e += TLB_ENTRY_SIZE) {
      if ((load<u32>(e, 8) & KEY_VALID) == 0) continue;
      const cls = load<u32>(e, 12) >> 8;
      const size: u64 = cls == <u32>PS_4K ? 0x1000 : cls == <u32>PS_2M ? 0x200000 : 0x40000000;
      const page = load<u64>(e, 16);
      if (hpaPage >= page && hpaPage < page + size) store<u32>(e, 0, 8);
    }
  }
}

function totalEntries(): u32 {
  let t: u32 = 0;
  for (let i = 0; i < TLB_ARRAYS; i++) t += unchecked(sets[i]) * unchecked(ways[i]);
  return t;
}

/** The default geometry: large and fast for running guests (2-way 4 KiB array of 8192 entries). */
export function defaultTlbGeometry(): void {
  configureTlb(PS_4K, 4096, 2);
  configureTlb(PS_2M, 512, 2);
  configureTlb(PS_1G, 16, 2);
  configureTlb(TLB_L2, 0, 0);
}
