// Shadow paging (--mmu shadow), following KVM's shadow MMU (arch/x86/kvm/mmu/mmu.c, paging_tmpl.h)
// and its names. The hypervisor keeps shadow page tables that map gva -> hpa directly, so on a TLB
// miss the hardware walks one dimension (DIM_SHADOW) instead of two. They are built lazily:
//
// - A miss in the shadow table is a page fault that exits to the hypervisor (here: handled inside
//   the core, as KVM handles it in the kernel, and counted by cause). The handler walks the guest's
//   own tables in software (paging.ts walk, KVM's FNAME(walk_addr), which also sets the guest's
//   A/D bits), reflects a guest #PF, or looks the gpa up in the host's gpa -> hpa map (ept.ts
//   hostMapTranslate) and installs the sptes (FNAME(fetch)), creating shadow pages (sp) on the way.
// - A shadow page has a role (level, direct, access, cr0_wp, efer_nx, the guest's paging mode, and
//   for 32-bit guest paging the quadrant: which quarter of a 1024-entry page directory, or half of a
//   page table, it shadows), a gfn (the guest table it shadows, or for a direct sp the first gfn of
//   the guest large page region it maps), parent pointers (the sptes that link to it) and a root
//   count. The shadow table is 4-level for every guest: a 32-bit or PAE guest's gva space (4 GiB)
//   hangs from two per-vCPU upper pages, the second following the PAE PDPTE registers. Shadow pages live in a hash by gfn, so one guest table reached from many
//   places (the kernel half of every address space) has one shadow page with many parents.
// - Every guest table that has an (indirect) shadow page is write-protected: its gfn counts as
//   shadowed, the writable sptes that map it are found through the reverse map (rmap, per host
//   frame) and made read-only, and no spte for it is ever installed writable. A guest write to it is
//   then a page fault whose handler emulates the write (the access goes to guest memory and the run
//   loop calls shadowSyncWrites after the instruction, KVM's kvm_mmu_pte_write), which zaps the
//   sptes shadowing the changed gptes. KVM's write-flooding heuristic unshadows a page written
//   repeatedly without being used for a fault in between, or written misaligned.
// - There are no unsync shadow pages (KVM lets level-1 pages go out of sync until INVLPG or a CR3
//   load); every shadow page is kept in sync through write protection, which is the simpler correct
//   design, so INVLPG needs nothing from the shadow MMU beyond the TLB flush and CR3 loads only
//   switch roots: a root per (CR3 gfn, role) is kept in the vCPU's cache of previous roots.
// - Accessed and dirty bits are emulated: a leaf spte is writable only when the guest pte is dirty,
//   so the first write faults and the handler's walk sets D. A guest 2 MiB (or 1 GiB) page becomes a
//   2 MiB spte only when the host backs it with a 2 MiB run and none of its gfns is a shadowed page
//   table (KVM's disallow_lpage count); otherwise it is split into 4 KiB sptes in a direct shadow page.
// - When the pool of shadow pages is full, or the host changes its gpa -> hpa map, everything is
//   zapped (KVM would zap the oldest pages, or use MMU notifiers: zapping all is the simple design).
//
// sptes are ordinary x86-64 paging entries (P, RW, US, A, D, PS, G, XD), so the shadow walk is the
// guest walk's format. Non-leaf sptes allow everything; a leaf carries the rights of the whole
// guest walk, which is why role.access tells apart shadow pages reached with different rights.
import {
  HOST_POOL_BASE, ST_CR0, ST_CR3, ST_CR4, ST_EFER, ST_SHADOW, ST_SHADOW_ROOT, ST_SHADOW_PREV, SHADOW_PREV_ROOTS,
  SHADOW_ENABLE, CR0_WP, EFER_NXE, EFER_LMA, ACC_WRITE, ACC_FETCH, VEC_PF, DIM_SHADOW, FLAG_AC,
  VCPU_AREA_BASE, VCPU_STRIDE, MC_EXIT_SHADOW_PF, MC_EXIT_PT_WRITE, MC_EXIT_CR3, MC_EXIT_INVLPG,
  MC_SHADOW_GUEST_PF, MC_SHADOW_SP_ALLOC, MC_SHADOW_SP_ZAP, MC_SHADOW_FLOODED, MC_SHADOW_ZAP_ALL,
  MC_SHADOW_WRPROT, MC_SHADOW_ROOT_HIT, MC_SHADOW_SPTE_SET, MC_WALKS, TRACE_SHADOW_FAULT, TRACE_SP_ALLOC,
  TRACE_SPTE_SET, TRACE_WRITE_PROTECT, SP_ROLE_LEVEL, SP_ROLE_DIRECT, SP_ROLE_ACC_W, SP_ROLE_ACC_U,
  SP_ROLE_ACC_NX, SP_ROLE_CR0_WP, SP_ROLE_EFER_NX, SP_ROLE_VALID, SP_ROLE_QUADRANT_SHIFT, SP_ROLE_GPTE32,
  SP_ROLE_PAE, SP_ROLE_LEGACY_TOP, SP_ROLE_VCPU_SHIFT, ST_PDPTE, ST_VM_VCPU,
} from '../abi';
import { vcpuFirst, vcpuCount } from '../mem/memory-map';
import { cpu, cpl, rflags, pagingOn } from '../cpu/state';
import { faultVector, requestStop } from '../cpu/fault';
import {
  walk, walkPageShift, walkRights, gwTable, gwEntry, setShadowWalker, implicitSupervisor,
  RIGHT_W, RIGHT_U, RIGHT_NX, RIGHT_DIRTY, RIGHT_GLOBAL, CR4_SMEP, CR4_SMAP, CR4_PAE,
} from './paging';
import { hostMapTranslate, eptPageShift } from './ept';
import { pageTableRef, mmuCount, traceEvent } from './accounting';
import { tlbFlushHostFrame, tlbInvalidateAllVcpus } from './tlb';

const SPTE_P: u64 = 0x1, SPTE_RW: u64 = 0x2, SPTE_US: u64 = 0x4, SPTE_A: u64 = 0x20, SPTE_D: u64 = 0x40;
const SPTE_PS: u64 = 0x80, SPTE_G: u64 = 0x100, SPTE_XD: u64 = 0x8000000000000000;
const ADDR: u64 = 0x000ffffffffff000;

const ROLE_LEVEL: u32 = SP_ROLE_LEVEL, ROLE_DIRECT: u32 = SP_ROLE_DIRECT;
const ROLE_ACC_W: u32 = SP_ROLE_ACC_W, ROLE_ACC_U: u32 = SP_ROLE_ACC_U, ROLE_ACC_NX: u32 = SP_ROLE_ACC_NX;
const ROLE_CR0_WP: u32 = SP_ROLE_CR0_WP, ROLE_EFER_NX: u32 = SP_ROLE_EFER_NX;
const ROLE_VALID: u32 = <u32>SP_ROLE_VALID;
const ROLE_FREE: u32 = 0x40000000; // (metadata only: the page is on the free list)
const ROLE_GPTE32: u32 = SP_ROLE_GPTE32, ROLE_PAE: u32 = SP_ROLE_PAE, ROLE_LEGACY_TOP: u32 = SP_ROLE_LEGACY_TOP;
const ROLE_QUADRANT: u32 = <u32>3 << SP_ROLE_QUADRANT_SHIFT;

/** Writes to a shadowed page without a fault through it in between before it is unshadowed
 *  (KVM's detect_write_flooding). */
const FLOOD_LIMIT: u32 = 3;

// ---- The shadow MMU's memory: one region of the host pool, laid out by layout() ----
// frames (4 KiB each) | sp metadata (SP_META bytes each) | parent-pointer nodes | rmap nodes |
// hash heads | rmap heads per host frame | rmap heads per host 2 MiB run | shadowed count per gfn (u16)
// | disallow_lpage count per guest 2 MiB region. Node lists use index 0 as the end.
const SP_META: usize = 32; // u64 gfn, u32 role, u32 parents, u32 rootCount, u32 hashNext, u32 flood, u32 freeNext
const PARENTS_PER_SP: u32 = 4;
const RMAP_PER_SP: u32 = 64;

export let shadowConfigured: bool = false;
let regionHpa: u64 = 0;
let nFrames: u32 = 0;
let framesHpa: u64 = 0;
let metaAt: usize = 0, hashAt: usize = 0;
let rmap4kAt: usize = 0, rmap2mAt: usize = 0, shadowedAt: usize = 0, disallowAt: usize = 0;
let hashMask: u32 = 0, poolPages: u32 = 0, ramPages: u32 = 0;
let freeSp: u32 = 0, nextSp: u32 = 0; // free list head: index + 1

function layout(base: u64, frames: u32, poolBytes: u64, ramBytes: u64): u64 {
  nFrames = frames;
  unchecked(nodeCount[POOL_PARENT] = frames * PARENTS_PER_SP + 1);
  unchecked(nodeCount[POOL_RMAP] = frames * RMAP_PER_SP + 1);
  let h: u32 = 1;
  while (h < frames) h <<= 1;
  hashMask = h - 1;
  poolPages = <u32>(poolBytes >> 12);
  ramPages = <u32>(ramBytes >> 12);
  framesHpa = base;
  let at: u64 = base + (<u64>frames << 12);
  const m = <u64>HOST_POOL_BASE;
  metaAt = <usize>(m + at); at += <u64>frames * SP_META;
  for (let pool = 0; pool < NODE_POOLS; pool++) {
    unchecked(nodeBase[pool] = <usize>(m + at)); at += <u64>unchecked(nodeCount[pool]) * 8;
  }
  hashAt = <usize>(m + at); at += <u64>h * 4;
  rmap4kAt = <usize>(m + at); at += <u64>poolPages * 4;
  rmap2mAt = <usize>(m + at); at += (<u64>(poolPages >> 9) + 1) * 4;
  shadowedAt = <usize>(m + at); at += (<u64>ramPages * 2 + 3) & ~(<u64>3);
  disallowAt = <usize>(m + at); at += (<u64>(ramPages >> 9) + 1) * 4;
  return at - base;
}

/** Bytes of host memory the shadow MMU needs for `frames` shadow pages, a host pool of `poolBytes`
 *  and `ramBytes` of guest RAM (the host reserves them, then calls configureShadow). */
export function shadowRegionBytes(frames: u32, poolBytes: u64, ramBytes: u64): u64 {
  return layout(0, frames, poolBytes, ramBytes) ;
}

/** Take the region at `base` (4 KiB aligned, after the host pool) with `frames` shadow pages. */
export function configureShadow(base: u64, frames: u32, poolBytes: u64, ramBytes: u64): void {
  const bytes = layout(base, frames, poolBytes, ramBytes);
  regionHpa = base;
  memory.fill(metaAt, 0, <usize>(bytes - (<u64>frames << 12)));
  shadowConfigured = true;
  resetPools();
}

// ---- One shadow MMU per VM (KVM keeps it in struct kvm): while another VM runs, this VM's state
// waits in its control block (VM_SHADOW_CONTEXT); its pages and bookkeeping stay in its region. ----
// Context: u64 region base, u64 pool bytes, u64 RAM bytes, u32 frames, u32 configured, u32 freeSp,
// u32 nextSp, then per node pool u32 next-unused and u32 free-list head.

/** Keep the running VM's shadow MMU state at `at` (pending page-table writes are synced first). */
export function shadowSaveContext(at: usize): void {
  if (ptWritesPending) shadowSyncWrites();
  store<u64>(at, regionHpa); store<u64>(at, <u64>poolPages << 12, 8); store<u64>(at, <u64>ramPages << 12, 16);
  store<u32>(at, nFrames, 24); store<u32>(at, shadowConfigured ? 1 : 0, 28);
  store<u32>(at, freeSp, 32); store<u32>(at, nextSp, 36);
  for (let pool = 0; pool < NODE_POOLS; pool++) {
    store<u32>(at + 40 + <usize>pool * 8, unchecked(nodeNext[pool]));
    store<u32>(at + 44 + <usize>pool * 8, unchecked(nodeFree[pool]));
  }
}

/** Take up the shadow MMU state kept at `at` (a VM that never configured one has none). */
export function shadowLoadContext(at: usize): void {
  shadowConfigured = load<u32>(at, 28) != 0;
  shadowOn = false;
  if (!shadowConfigured) return;
  regionHpa = load<u64>(at);
  layout(regionHpa, load<u32>(at, 24), load<u64>(at, 8), load<u64>(at, 16));
  freeSp = load<u32>(at, 32); nextSp = load<u32>(at, 36);
  for (let pool = 0; pool < NODE_POOLS; pool++) {
    unchecked(nodeNext[pool] = load<u32>(at + 40 + <usize>pool * 8));
    unchecked(nodeFree[pool] = load<u32>(at + 44 + <usize>pool * 8));
  }
}

function resetPools(): void {
  const frames = nFrames;
  memory.fill(metaAt, 0, <usize>frames * SP_META);
  memory.fill(hashAt, 0, <usize>(hashMask + 1) * 4);
  memory.fill(rmap4kAt, 0, <usize>poolPages * 4 + <usize>((poolPages >> 9) + 1) * 4);
  memory.fill(shadowedAt, 0, <usize>disallowAt - shadowedAt + <usize>((ramPages >> 9) + 1) * 4);
  freeSp = 0; nextSp = 0;
  for (let pool = 0; pool < NODE_POOLS; pool++) { unchecked(nodeFree[pool] = 0); unchecked(nodeNext[pool] = 1); }
  for (let v = vcpuFirst; v < vcpuFirst + vcpuCount; v++) { // (the VM's vCPUs: roots are per VM)
    const c = <usize>VCPU_AREA_BASE + <usize>v * <usize>VCPU_STRIDE;
    store<u32>(c + ST_SHADOW_ROOT, 0);
    memory.fill(c + ST_SHADOW_PREV, 0, <usize>SHADOW_PREV_ROOTS * 16);
  }
}

// ---- The running vCPU ----
/** --mmu shadow for the running vCPU, and the hpa of the host's gpa -> hpa map. */
export let shadowOn: bool = false;
let hostMapRoot: u64 = 0;
export function selectShadow(): void {
  // A page-table write made outside an instruction (an event delivery's push just before an exit)
  // is synced before anything else runs.
  if (ptWritesPending) shadowSyncWrites();
  const s = load<u64>(cpu + ST_SHADOW);
  shadowOn = shadowConfigured && (s & SHADOW_ENABLE) != 0;
  hostMapRoot = s & ~(<u64>0xfff);
  setShadowWalker(shadowOn);
}

/** The shadow MMU translates (for the running vCPU, when its paging is on). */
@inline export function shadowActive(): bool { return shadowOn; }

/** The guest's paging mode as role bits: 0 for 4-level paging, GPTE32 for 32-bit paging, PAE.
 *  The shadow table is always 4-level; for a 32-bit or PAE guest (gva < 4 GiB) its two upper levels
 *  are LEGACY_TOP pages of the vCPU, as KVM's pae_root and pml4_root, and its level-2 pages shadow
 *  the guest's page directories: a quarter of a 32-bit one (quadrant), or what a PDPTE points to. */
@inline function modeBits(): u32 {
  if ((load<u64>(cpu + ST_EFER) & EFER_LMA) != 0) return 0;
  return (load<u64>(cpu + ST_CR4) & CR4_PAE) != 0 ? ROLE_PAE : ROLE_GPTE32;
}
@inline function vcpuBits(): u32 { return (load<u32>(cpu + ST_VM_VCPU) & 3) << SP_ROLE_VCPU_SHIFT; }

// ---- Shadow pages ----
@inline function meta(sp: u32): usize { return metaAt + <usize>sp * SP_META; }
@inline function spGfn(sp: u32): u64 { return load<u64>(meta(sp)); }
@inline function spRole(sp: u32): u32 { return load<u32>(meta(sp), 8); }
@inline function spFrame(sp: u32): u64 { return framesHpa + (<u64>sp << 12); }
/** Linear address of slot `slot` of shadow page `sp`. */
@inline function sptePtr(sp: u32, slot: u32): usize { return <usize>HOST_POOL_BASE + <usize>spFrame(sp) + <usize>slot * 8; }
/** A reference to an spte: sp << 9 | slot. */
@inline function refPtr(ref: u32): usize { return sptePtr(ref >> 9, ref & 511); }
/** The shadow page a non-leaf spte points to. */
@inline function childOf(e: u64): u32 { return <u32>(((e & ADDR) - framesHpa) >> 12); }
@inline function hashHead(gfn: u64): usize { return hashAt + <usize>((<u32>gfn ^ <u32>(gfn >> 20)) & hashMask) * 4; }

function findSp(gfn: u64, role: u32): i32 {
  let i = load<u32>(hashHead(gfn));
  while (i != 0) {
    const sp = i - 1;
    if (spGfn(sp) == gfn && spRole(sp) == role) return <i32>sp;
    i = load<u32>(meta(sp), 20);
  }
  return -1;
}

/** The shadow page for (gfn, role), created when missing (-1 when the pool is full). A new indirect
 *  page makes its gfn a shadowed page table (KVM's account_shadowed + write protection). */
function getSp(gfn: u64, role: u32): i32 {
  const found = findSp(gfn, role);
  if (found >= 0) return found;
  let sp: u32;
  if (freeSp != 0) { sp = freeSp - 1; freeSp = load<u32>(meta(sp), 28); }
  else if (nextSp < nFrames) sp = nextSp++;
  else return -1;
  const m = meta(sp);
  store<u64>(m, gfn); store<u32>(m, role, 8); store<u32>(m, 0, 12); store<u32>(m, 0, 16);
  store<u32>(m, 0, 24); store<u32>(m, 0, 28);
  const head = hashHead(gfn);
  store<u32>(m, load<u32>(head), 20);
  store<u32>(head, sp + 1);
  memory.fill(<usize>HOST_POOL_BASE + <usize>spFrame(sp), 0, 4096);
  mmuCount(MC_SHADOW_SP_ALLOC);
  traceEvent(TRACE_SP_ALLOC, <i32>(role & ROLE_LEVEL), gfn << 12, spFrame(sp), <u64>role);
  if ((role & ROLE_DIRECT) == 0) accountShadowed(gfn);
  return <i32>sp;
}

/** Zap shadow page `sp`: drop its sptes (children that lose their last parent go too), unlink it
 *  from its parents, stop write-protecting its gfn and free it (KVM's kvm_mmu_zap_page). A root
 *  that a vCPU still holds is only made invalid (KVM's role.invalid) and freed when released. */
function zapSp(sp: u32): void {
  const m = meta(sp);
  const role = load<u32>(m, 8);
  if ((role & ROLE_VALID) == 0) { freeIfUnused(sp); return; }
  store<u32>(m, role & ~ROLE_VALID, 8); // (a zap in progress is not found again through a child)
  const level = role & ROLE_LEVEL;
  for (let slot: u32 = 0; slot < 512; slot++) {
    const p = sptePtr(sp, slot);
    const e = load<u64>(p);
    if ((e & SPTE_P) == 0) continue;
    store<u64>(p, 0);
    dropSpte(sp, slot, e, level);
  }
  for (let ref = listTake(POOL_PARENT, m + 12); ref >= 0; ref = listTake(POOL_PARENT, m + 12)) store<u64>(refPtr(<u32>ref), 0);
  // Out of the hash chain.
  const gfn = load<u64>(m);
  let at = hashHead(gfn);
  let i = load<u32>(at);
  while (i != 0 && i != sp + 1) { at = meta(i - 1) + 20; i = load<u32>(at); }
  if (i != 0) store<u32>(at, load<u32>(m, 20));
  if ((role & ROLE_DIRECT) == 0) unaccountShadowed(gfn);
  store<u64>(m, <u64>-1); // no gfn: an invalid root left in a vCPU's cache matches nothing
  mmuCount(MC_SHADOW_SP_ZAP);
  freeIfUnused(sp);
}

/** Put a zapped page on the free list once no vCPU holds it as a root. */
function freeIfUnused(sp: u32): void {
  const m = meta(sp);
  if (load<u32>(m, 16) != 0 || (load<u32>(m, 8) & ROLE_FREE) != 0) return;
  store<u32>(m, ROLE_FREE, 8);
  store<u32>(m, freeSp, 28); freeSp = sp + 1;
}

/** The spte at (sp, slot), value `e`, was just cleared: undo what it held (rmap entry of a
 *  writable leaf, parent pointer of a link, and the child itself when that was its last link). */
function dropSpte(sp: u32, slot: u32, e: u64, level: u32): void {
  const ref = (sp << 9) | slot;
  if (level == 1 || (e & SPTE_PS) != 0) {
    if ((e & SPTE_RW) != 0) rmapRemove((e & ADDR) >> 12, ref, level > 1);
    return;
  }
  const child = childOf(e);
  if (child >= nFrames) return;
  parentRemove(child, ref);
  const cm = meta(child);
  if (load<u32>(cm, 12) == 0 && load<u32>(cm, 16) == 0) zapSp(child);
}

@inline function clearSpte(sp: u32, slot: u32): void {
  const p = sptePtr(sp, slot);
  const e = load<u64>(p);
  if ((e & SPTE_P) == 0) return;
  store<u64>(p, 0);
  dropSpte(sp, slot, e, spRole(sp) & ROLE_LEVEL);
}

// ---- Lists of sptes: parent pointers (KVM's parent_ptes) and the reverse map ----
// Two pools of list nodes { u32 ref, u32 next } (ref = sp << 9 | slot; node 0 ends a list), each with
// a free list. A list head is a u32 holding its first node.
const POOL_PARENT = 0, POOL_RMAP = 1, NODE_POOLS = 2;
const nodeBase = new StaticArray<usize>(NODE_POOLS);
const nodeCount = new StaticArray<u32>(NODE_POOLS);
const nodeNext = new StaticArray<u32>(NODE_POOLS); // never-used nodes start here
const nodeFree = new StaticArray<u32>(NODE_POOLS); // free list head

@inline function nodeAt(pool: i32, n: u32): usize { return unchecked(nodeBase[pool]) + <usize>n * 8; }

function releaseNode(pool: i32, n: u32): void {
  store<u32>(nodeAt(pool, n), unchecked(nodeFree[pool]), 4);
  unchecked(nodeFree[pool] = n);
}

/** Put `ref` at the front of the list at `head`; false when the pool is exhausted. */
function listPush(pool: i32, head: usize, ref: u32): bool {
  let n = unchecked(nodeFree[pool]);
  if (n != 0) unchecked(nodeFree[pool] = load<u32>(nodeAt(pool, n), 4));
  else if (unchecked(nodeNext[pool]) < unchecked(nodeCount[pool])) n = unchecked(nodeNext[pool]++);
  else return false;
  const node = nodeAt(pool, n);
  store<u32>(node, ref); store<u32>(node, load<u32>(head), 4);
  store<u32>(head, n);
  return true;
}

/** Remove `ref` from the list at `head` (if it is there). */
function listRemove(pool: i32, head: usize, ref: u32): void {
  let at = head;
  for (let n = load<u32>(at); n != 0; n = load<u32>(at)) {
    const node = nodeAt(pool, n);
    if (load<u32>(node) == ref) { store<u32>(at, load<u32>(node, 4)); releaseNode(pool, n); return; }
    at = node + 4;
  }
}

/** Remove the first ref of the list at `head` and return it, or -1 when the list is empty. */
function listTake(pool: i32, head: usize): i64 {
  const n = load<u32>(head);
  if (n == 0) return -1;
  const node = nodeAt(pool, n);
  store<u32>(head, load<u32>(node, 4));
  releaseNode(pool, n);
  return <i64>load<u32>(node);
}

/** First ref of the list at `head` (left in it), or -1. */
function listFirst(pool: i32, head: usize): i64 {
  const n = load<u32>(head);
  return n == 0 ? -1 : <i64>load<u32>(nodeAt(pool, n));
}

function parentAdd(child: u32, ref: u32): bool { return listPush(POOL_PARENT, meta(child) + 12, ref); }
function parentRemove(child: u32, ref: u32): void { listRemove(POOL_PARENT, meta(child) + 12, ref); }

// Reverse map of writable leaf sptes, per host frame (4 KiB sptes) or 2 MiB run.
@inline function rmapHead(hfn: u64, large: bool): usize {
  return large ? rmap2mAt + <usize>(hfn >> 9) * 4 : rmap4kAt + <usize>hfn * 4;
}

function rmapAdd(hfn: u64, ref: u32, large: bool): bool {
  return hfn < <u64>poolPages && listPush(POOL_RMAP, rmapHead(hfn, large), ref);
}

function rmapRemove(hfn: u64, ref: u32, large: bool): void {
  if (hfn < <u64>poolPages) listRemove(POOL_RMAP, rmapHead(hfn, large), ref);
}

// ---- Shadowed gfns: write protection and the large-page restriction ----
@inline function shadowedCount(gfn: u64): u32 { return gfn < <u64>ramPages ? <u32>load<u16>(shadowedAt + <usize>gfn * 2) : 0; }
@inline function lpageDisallowed(gfn: u64): bool { return gfn >= <u64>ramPages || load<u32>(disallowAt + <usize>(gfn >> 9) * 4) != 0; }

function accountShadowed(gfn: u64): void {
  if (gfn >= <u64>ramPages) return;
  const p = shadowedAt + <usize>gfn * 2;
  const c = load<u16>(p);
  store<u16>(p, c + 1);
  if (c != 0) return;
  const d = disallowAt + <usize>(gfn >> 9) * 4;
  store<u32>(d, load<u32>(d) + 1);
  writeProtect(gfn);
}

function unaccountShadowed(gfn: u64): void {
  if (gfn >= <u64>ramPages) return;
  const p = shadowedAt + <usize>gfn * 2;
  const c = load<u16>(p);
  if (c == 0) return;
  store<u16>(p, c - 1);
  if (c != 1) return;
  const d = disallowAt + <usize>(gfn >> 9) * 4;
  store<u32>(d, load<u32>(d) - 1);
}

/** gfn just became a shadowed page table: every writable spte that maps it loses RW (4 KiB ones
 *  stay as read-only mappings, 2 MiB ones are zapped since their run is no longer allowed), and
 *  every cached translation of its frame goes (KVM's rmap_write_protect and TLB flush). */
function writeProtect(gfn: u64): void {
  const hpa = hostMapTranslate(hostMapRoot, gfn << 12, 0);
  if (hpa == <u64>-1) return;
  const hfn = hpa >> 12;
  let changed: u64 = 0;
  if (hfn < <u64>poolPages) {
    const head4k = rmapHead(hfn, false);
    for (let ref = listTake(POOL_RMAP, head4k); ref >= 0; ref = listTake(POOL_RMAP, head4k)) {
      const p = refPtr(<u32>ref);
      store<u64>(p, load<u64>(p) & ~(SPTE_RW | SPTE_D));
      changed++;
    }
    const head2m = rmapHead(hfn, true);
    for (let ref = listFirst(POOL_RMAP, head2m); ref >= 0; ref = listFirst(POOL_RMAP, head2m)) {
      clearSpte(<u32>ref >> 9, <u32>ref & 511); // removes the node
      changed++;
    }
  }
  mmuCount(MC_SHADOW_WRPROT, changed);
  traceEvent(TRACE_WRITE_PROTECT, 0, gfn << 12, hpa & ~(<u64>0xfff), changed);
  tlbFlushHostFrame(hpa & ~(<u64>0xfff));
}

// ---- Roots ----
function currentRole(level: u32): u32 {
  let r: u32 = ROLE_VALID | level;
  if ((load<u64>(cpu + ST_CR0) & CR0_WP) != 0) r |= ROLE_CR0_WP;
  if ((load<u64>(cpu + ST_EFER) & EFER_NXE) != 0) r |= ROLE_EFER_NX;
  return r | modeBits();
}

/** The root shadow page for the current CR3 and paging state (KVM's kvm_mmu_load with the cached
 *  previous roots of kvm_mmu_new_pgd); -1 if CR3 is outside RAM (the walk will fault) or the
 *  pool is full. */
function ensureRoot(): i32 {
  const cr3 = load<u64>(cpu + ST_CR3);
  const mode = modeBits();
  let gfn: u64, role = currentRole(4) | ROLE_ACC_W | ROLE_ACC_U;
  if (mode == 0) gfn = (cr3 & ADDR & 0xffffffffff) >> 12;
  else {
    // A 32-bit or PAE guest: the root is the vCPU's, keyed by CR3 (a PAE CR3 is 32-byte aligned).
    gfn = mode == ROLE_PAE ? (cr3 & 0xffffffe0) >> 5 : (cr3 & 0xfffff000) >> 12;
    role |= ROLE_DIRECT | ROLE_LEGACY_TOP | vcpuBits();
  }
  let cur = load<u32>(cpu + ST_SHADOW_ROOT);
  if (cur != 0 && spGfn(cur - 1) == gfn && spRole(cur - 1) == role) return <i32>(cur - 1);
  if (mode == 0 && gfn >= <u64>ramPages) return -1;
  if (cur != 0 && (spRole(cur - 1) & ROLE_VALID) == 0) { releaseRoot(cur - 1); cur = 0; } // zapped while held
  // Look among the previous roots; the current one takes the place of the one chosen.
  let chosen: u32 = 0;
  let slot = 0;
  for (; slot < SHADOW_PREV_ROOTS; slot++) {
    const p = cpu + ST_SHADOW_PREV + <usize>slot * 16;
    const r = load<u32>(p, 8);
    if (r != 0 && spGfn(r - 1) == gfn && spRole(r - 1) == role) { chosen = r; break; }
  }
  if (chosen != 0) {
    mmuCount(MC_SHADOW_ROOT_HIT);
  } else {
    const sp = getSp(gfn, role);
    if (sp < 0) return -1;
    chosen = <u32>sp + 1;
    store<u32>(meta(<u32>sp), load<u32>(meta(<u32>sp), 16) + 1, 16);
    slot = SHADOW_PREV_ROOTS - 1; // the oldest is evicted
    const old = load<u32>(cpu + ST_SHADOW_PREV + <usize>slot * 16, 8);
    if (old != 0) releaseRoot(old - 1);
    store<u32>(cpu + ST_SHADOW_PREV + <usize>slot * 16, 0, 8);
  }
  // Shift the cache down to `slot` and put the previous current root first (most recent).
  for (let i = slot; i > 0; i--) {
    const to = cpu + ST_SHADOW_PREV + <usize>i * 16, from = to - 16;
    store<u64>(to, load<u64>(from)); store<u32>(to, load<u32>(from, 8), 8);
  }
  store<u64>(cpu + ST_SHADOW_PREV, 0); store<u32>(cpu + ST_SHADOW_PREV, cur, 8);
  if (cur == 0) {
    // No previous current root: close the gap at slot 0.
    for (let i = 0; i < SHADOW_PREV_ROOTS - 1; i++) {
      const to = cpu + ST_SHADOW_PREV + <usize>i * 16, from = to + 16;
      store<u64>(to, load<u64>(from)); store<u32>(to, load<u32>(from, 8), 8);
    }
    store<u32>(cpu + ST_SHADOW_PREV + <usize>(SHADOW_PREV_ROOTS - 1) * 16, 0, 8);
  }
  store<u32>(cpu + ST_SHADOW_ROOT, chosen);
  return <i32>(chosen - 1);
}

function releaseRoot(sp: u32): void {
  const m = meta(sp);
  const c = load<u32>(m, 16);
  if (c == 0) return;
  store<u32>(m, c - 1, 16);
  if (c == 1 && load<u32>(m, 12) == 0) zapSp(sp); // (an invalid root is just freed)
}

/** Drop every shadow page (pool exhausted, host map changed, or asked by the host). */
export function shadowZapAll(): void {
  if (!shadowConfigured) return;
  resetPools();
  mmuCount(MC_SHADOW_ZAP_ALL);
  tlbInvalidateAllVcpus(); // no writable translation may survive its rmap entry
}

// ---- The hardware walk of the shadow table ----
export let shadowPageShift: i32 = 12;
export let shadowRights: u32 = 0;

/** hpa of `lin` for `access` from the current shadow table, or -1 when the walk finds no spte or
 *  one that does not allow the access (then the hypervisor's page-fault handler decides). */
export function shadowWalk(lin: u64, access: i32): u64 {
  const r = ensureRoot(); // CR3 or the paging mode may have changed since the last walk
  if (r < 0) return <u64>-1;
  let table = spFrame(<u32>r);
  let shift: u64 = 39;
  for (let level = 4; level >= 1; level--) {
    const at = table + ((lin >> shift) & 511) * 8;
    const e = load<u64>(<usize>HOST_POOL_BASE + <usize>at);
    pageTableRef(DIM_SHADOW, level, lin, at, e);
    if ((e & SPTE_P) == 0) return <u64>-1;
    if (level > 1 && (e & SPTE_PS) == 0) { table = e & ADDR; shift -= 9; continue; }
    // The leaf holds the rights of the whole guest walk: the guest walk's checks (SDM Vol. 3A,
    // 4.6.1), except that a write always needs RW (a read-only spte may hide a guest-writable page
    // whose D bit is clear or which is a guest page table: the fault handler sorts that out).
    const user = cpl == 3 && !implicitSupervisor;
    const fetch = access == ACC_FETCH;
    const u = (e & SPTE_US) != 0, w = (e & SPTE_RW) != 0, nx = (e & SPTE_XD) != 0;
    if (user && !u) return <u64>-1;
    if (access == ACC_WRITE && !w) return <u64>-1;
    if (fetch && nx) return <u64>-1;
    if (!user && u) {
      const cr4 = load<u64>(cpu + ST_CR4);
      if (fetch && (cr4 & CR4_SMEP) != 0) return <u64>-1;
      if (!fetch && (cr4 & CR4_SMAP) != 0 && (implicitSupervisor || cpl == 3 || (rflags & FLAG_AC) == 0)) return <u64>-1;
    }
    shadowPageShift = <i32>shift;
    shadowRights = (w ? RIGHT_W | RIGHT_DIRTY : 0) | (u ? RIGHT_U : 0) | (nx ? RIGHT_NX : 0) | ((e & SPTE_G) != 0 ? RIGHT_GLOBAL : 0);
    mmuCount(MC_WALKS);
    const mask: u64 = (<u64>1 << shift) - 1;
    return ((e & ADDR) & ~mask) | (lin & mask);
  }
  return <u64>-1;
}

// ---- The page-fault handler ----
export const SF_FAULT: i32 = 0; // a fault was raised (guest #PF, or a host-map violation exit)
export const SF_INSTALLED: i32 = 1; // sptes installed: the access retries through the shadow walk
export const SF_EMULATE: i32 = 2; // use shadowFaultHpa for this access only (page-table write, CR0.WP = 0)
export const SF_UNBACKED: i32 = 3; // the gpa (shadowFaultGpa) is outside RAM: device memory or ROM
export let shadowFaultHpa: u64 = 0;
export let shadowFaultGpa: u64 = 0;

/** The hypervisor's page-fault handler (KVM's FNAME(page_fault)). */
export function shadowFault(lin: u64, size: i32, access: i32): i32 {
  traceEvent(TRACE_SHADOW_FAULT, 0, lin, 0, <u64>access);
  const gpa = walk(lin, access);
  if (gpa == <u64>-1) {
    mmuCount(MC_EXIT_SHADOW_PF);
    if (faultVector == VEC_PF) mmuCount(MC_SHADOW_GUEST_PF);
    return SF_FAULT;
  }
  shadowFaultGpa = gpa;
  if (gpa + <u64>size > (<u64>ramPages << 12)) { mmuCount(MC_EXIT_SHADOW_PF); return SF_UNBACKED; }
  const guestShift = walkPageShift, rights = walkRights;
  const hpa = hostMapTranslate(hostMapRoot, gpa, access);
  if (hpa == <u64>-1) { mmuCount(MC_EXIT_SHADOW_PF); return SF_FAULT; }
  const hostShift = eptPageShift;
  let ok = fetch(lin, gpa, hpa, guestShift, hostShift, rights);
  if (!ok) { shadowZapAll(); ok = fetch(lin, gpa, hpa, guestShift, hostShift, rights); }
  shadowFaultHpa = hpa;
  const write = access == ACC_WRITE;
  if (write && shadowedCount(gpa >> 12) != 0) {
    mmuCount(MC_EXIT_PT_WRITE);
    if (!notePtWrite(gpa, size)) return SF_FAULT;
    return SF_EMULATE;
  }
  mmuCount(MC_EXIT_SHADOW_PF);
  if (!ok || (write && (rights & RIGHT_W) == 0)) return SF_EMULATE; // supervisor write with CR0.WP = 0
  return SF_INSTALLED;
}

/** Install the sptes for the walk just made (KVM's FNAME(fetch)); false when the pool ran out. */
function fetch(lin: u64, gpa: u64, hpa: u64, guestShift: i32, hostShift: i32, rights: u32): bool {
  const rootIdx = ensureRoot();
  if (rootIdx < 0) return false;
  let sp = <u32>rootIdx;
  const gl: u32 = guestShift >= 30 ? 3 : guestShift >= 21 ? 2 : 1; // the guest's leaf level
  const gfn = gpa >> 12;
  // A 2 MiB spte: a guest page of at least 2 MiB, a host run of 2 MiB, no shadowed gfn inside.
  const tl: u32 = gl >= 2 && hostShift >= 21 && !lpageDisallowed(gfn) ? 2 : 1;
  let accW = true, accU = true, accNx = false;
  const mode = modeBits();
  for (let level: u32 = 4; level > tl; level--) {
    const shift = <u64>(12 + 9 * (level - 1));
    const slot = <u32>(lin >> shift) & 511;
    // The child's identity: the guest table at level-1, or a direct page inside a guest large page.
    // (A 32-bit or PAE guest has gptes at levels 2 and 1 only; a PDPTE has no rights.)
    if (level >= gl && (mode == 0 || level <= 2)) {
      const g = unchecked(gwEntry[level]);
      accW = accW && (g & SPTE_RW) != 0; accU = accU && (g & SPTE_US) != 0; accNx = accNx || (g & SPTE_XD) != 0;
    }
    let childGfn: u64, role: u32;
    if (mode != 0 && level == 4) {
      // The vCPU's level-3 page above the guest's page directories.
      childGfn = spGfn(sp);
      role = (spRole(sp) & ~ROLE_LEVEL) | 3;
    } else if (level - 1 >= gl) {
      childGfn = unchecked(gwTable[level - 1]) >> 12;
      role = currentRole(level - 1) | (accW ? ROLE_ACC_W : 0) | (accU ? ROLE_ACC_U : 0) | (accNx ? ROLE_ACC_NX : 0);
      // A 32-bit guest table has 1024 entries: a level-2 page shadows the quarter of the page
      // directory for this GiB, a level-1 page the half of the page table for this 2 MiB.
      if (mode == ROLE_GPTE32) role |= <u32>(level - 1 == 2 ? (lin >> 30) & 3 : (lin >> 21) & 1) << SP_ROLE_QUADRANT_SHIFT;
    } else {
      const span = <u64>9 * <u64>(level - 1); // gfns per child, log2
      childGfn = (gfn >> span) << span;
      role = currentRole(level - 1) | ROLE_DIRECT | ((rights & RIGHT_W) != 0 ? ROLE_ACC_W : 0)
        | ((rights & RIGHT_U) != 0 ? ROLE_ACC_U : 0) | ((rights & RIGHT_NX) != 0 ? ROLE_ACC_NX : 0);
    }
    const p = sptePtr(sp, slot);
    const e = load<u64>(p);
    if ((e & SPTE_P) != 0 && (e & SPTE_PS) == 0) {
      const c = childOf(e);
      if (c < nFrames && spGfn(c) == childGfn && spRole(c) == role) {
        store<u32>(meta(c), 0, 24); // used by a fault: not flooded (clear_sp_write_flooding_count)
        sp = c;
        continue;
      }
    }
    const child = getSp(childGfn, role);
    if (child < 0) return false;
    clearSpte(sp, slot); // a large leaf in the way, or a link to a page of another role
    if (!parentAdd(<u32>child, (sp << 9) | slot)) return false;
    const link = spFrame(<u32>child) | SPTE_P | SPTE_RW | SPTE_US | SPTE_A;
    store<u64>(p, link);
    mmuCount(MC_SHADOW_SPTE_SET);
    traceEvent(TRACE_SPTE_SET, <i32>level, gpa, spFrame(sp) + <u64>slot * 8, link);
    store<u32>(meta(<u32>child), 0, 24);
    sp = <u32>child;
  }
  // The leaf. Writable only when the guest allows the write, the guest pte is dirty (A/D
  // emulation) and the page is not a shadowed guest page table.
  const shift = <u64>(12 + 9 * (tl - 1));
  const slot = <u32>(lin >> shift) & 511;
  const mask: u64 = (<u64>1 << shift) - 1;
  const frame = hpa & ~mask;
  const writable = (rights & RIGHT_W) != 0 && (rights & RIGHT_DIRTY) != 0 && (tl == 2 || shadowedCount(gfn) == 0)
    && (frame >> 12) < <u64>poolPages; // (the rmap covers the host pool, which holds all of RAM)
  let spte = frame | SPTE_P | SPTE_A;
  if (writable) spte |= SPTE_RW | SPTE_D;
  if ((rights & RIGHT_U) != 0) spte |= SPTE_US;
  if ((rights & RIGHT_NX) != 0) spte |= SPTE_XD;
  if ((rights & RIGHT_GLOBAL) != 0) spte |= SPTE_G;
  if (tl == 2) spte |= SPTE_PS;
  clearSpte(sp, slot);
  if (writable && !rmapAdd(frame >> 12, (sp << 9) | slot, tl == 2)) return false;
  store<u64>(sptePtr(sp, slot), spte);
  mmuCount(MC_SHADOW_SPTE_SET);
  traceEvent(TRACE_SPTE_SET, <i32>tl, gpa, spFrame(sp) + <u64>slot * 8, spte);
  return true;
}

// ---- Emulated writes to shadowed guest page tables (KVM's kvm_mmu_pte_write) ----
// The write itself goes to guest memory through the pointer translate() returns; the gptes it
// covers were saved first, and after the instruction the run loop calls shadowSyncWrites, which
// zaps the sptes of the gptes that changed (or the whole shadow page, when flooded or misaligned).
const PENDING_MAX: i32 = 4;
const pendingGpa = new StaticArray<u64>(PENDING_MAX);
const pendingSize = new StaticArray<i32>(PENDING_MAX);
const pendingOld = new StaticArray<u64>(PENDING_MAX * 2);
let pendingCount: i32 = 0;
export let ptWritesPending: bool = false;

function notePtWrite(gpa: u64, size: i32): bool {
  if (pendingCount == PENDING_MAX) { shadowZapAll(); return true; } // (cannot happen: at most 2 per instruction)
  const i = pendingCount++;
  unchecked(pendingGpa[i] = gpa);
  unchecked(pendingSize[i] = size);
  const first = gpa & ~(<u64>7);
  for (let k = 0; k < 2; k++) {
    const at = first + <u64>k * 8;
    unchecked(pendingOld[i * 2 + k] = (at >> 12) == (gpa >> 12) ? load<u64>(<usize>HOST_POOL_BASE + <usize>hostGpaPtr(at)) : 0);
  }
  ptWritesPending = true;
  requestStop();
  return true;
}

/** hpa of a gpa inside RAM through the host map (identity when unmapped: never, for RAM). */
function hostGpaPtr(gpa: u64): u64 {
  const hpa = hostMapTranslate(hostMapRoot, gpa, 0);
  return hpa == <u64>-1 ? 0 : hpa;
}

const MAX_SPS_PER_GFN: i32 = 16;
const spsOfGfn = new StaticArray<u32>(MAX_SPS_PER_GFN);

export function shadowSyncWrites(): void {
  for (let i = 0; i < pendingCount; i++) syncWrite(unchecked(pendingGpa[i]), unchecked(pendingSize[i]), i);
  pendingCount = 0;
  ptWritesPending = false;
}

function syncWrite(gpa: u64, size: i32, rec: i32): void {
  const gfn = gpa >> 12;
  const offset = <u32>(gpa & 0xfff);
  let n = 0;
  let i = load<u32>(hashHead(gfn));
  while (i != 0 && n < MAX_SPS_PER_GFN) {
    const sp = i - 1;
    if (spGfn(sp) == gfn && (spRole(sp) & ROLE_DIRECT) == 0) unchecked(spsOfGfn[n++] = sp);
    i = load<u32>(meta(sp), 20);
  }
  const base = hostGpaPtr(gfn << 12);
  for (let k = 0; k < n; k++) {
    const sp = unchecked(spsOfGfn[k]);
    const m = meta(sp);
    const role = load<u32>(m, 8);
    if ((role & ROLE_VALID) == 0 || load<u64>(m) != gfn) continue; // zapped by an earlier one
    // Misaligned: the write crosses a gpte, unless it is a single byte (Linux's clear_bit uses ANDB).
    const es: u32 = (role & ROLE_GPTE32) != 0 ? 4 : 8;
    const misaligned = (offset & (es - 1)) + <u32>size > es && size != 1;
    const flood = load<u32>(m, 24) + 1;
    store<u32>(m, flood, 24);
    if (flood >= FLOOD_LIMIT || misaligned) {
      zapSp(sp); // no longer used as a page table, it seems: unshadow it (a held root becomes invalid)
      mmuCount(MC_SHADOW_FLOODED);
      continue;
    }
    const first = offset / es, last = (offset + <u32>size - 1) / es;
    for (let idx = first; idx <= last && idx < 4096 / es; idx++) {
      if (es == 8) {
        const now = load<u64>(<usize>HOST_POOL_BASE + <usize>base + <usize>idx * 8);
        const j = <i32>(idx - first);
        if (j < 2 && now == unchecked(pendingOld[rec * 2 + j])) continue; // unchanged
        clearSpte(sp, idx);
        continue;
      }
      // 32-bit gptes: entry idx of the guest table is in this page's quadrant or not; a page
      // directory entry (4 MiB) is two level-2 slots.
      const q = (role & ROLE_QUADRANT) >> SP_ROLE_QUADRANT_SHIFT;
      if ((role & ROLE_LEVEL) == 2) {
        if ((idx >> 8) != q) continue;
        clearSpte(sp, (idx & 255) * 2); clearSpte(sp, (idx & 255) * 2 + 1);
      } else {
        if ((idx >> 9) != q) continue;
        clearSpte(sp, idx & 511);
      }
    }
  }
}

/** The host wrote guest memory behind the vCPUs' backs (loading images, fw_cfg DMA): those writes
 *  were not trapped, so the shadow pages of every shadowed gfn written are zapped. (KVM leaves this
 *  to the guest, which never hands live page tables to a device; zapping keeps the shadow right.) */
export function shadowHostWrote(gpa: u64, bytes: u64): void {
  if (!shadowConfigured || bytes == 0) return;
  const last = (gpa + bytes - 1) >> 12;
  for (let gfn = gpa >> 12; gfn <= last && gfn < <u64>ramPages; gfn++) {
    while (shadowedCount(gfn) != 0) {
      const sp = findShadowOf(gfn);
      if (sp < 0) break;
      zapSp(<u32>sp);
    }
  }
}

/** Some valid indirect shadow page of gfn, or -1. */
function findShadowOf(gfn: u64): i32 {
  let i = load<u32>(hashHead(gfn));
  while (i != 0) {
    const sp = i - 1;
    if (spGfn(sp) == gfn && (spRole(sp) & (ROLE_DIRECT | ROLE_VALID)) == ROLE_VALID) return <i32>sp;
    i = load<u32>(meta(sp), 20);
  }
  return -1;
}

// ---- Exits counted for the control-register and invalidation paths (control.ts) ----
export function shadowCr3Exit(): void { if (shadowOn && pagingOn) mmuCount(MC_EXIT_CR3); }
export function shadowInvlpgExit(): void { if (shadowOn && pagingOn) mmuCount(MC_EXIT_INVLPG); }

/** The PAE PDPTE registers were (re)loaded (SDM Vol. 3A, 4.4.1): the links of the vCPU's level-3
 *  shadow page follow the registers, not the guest's memory, so those that changed go (KVM reloads
 *  its pae_root on every CR3 load). */
export function shadowPdptesLoaded(): void {
  if (!shadowOn || modeBits() != ROLE_PAE) return;
  const r = ensureRoot();
  if (r < 0) return;
  const e = load<u64>(sptePtr(<u32>r, 0));
  if ((e & SPTE_P) == 0) return;
  const l3 = childOf(e);
  for (let q: u32 = 0; q < 4; q++) {
    const link = load<u64>(sptePtr(l3, q));
    if ((link & SPTE_P) == 0) continue;
    const pdpte = load<u64>(cpu + ST_PDPTE + <usize>q * 8);
    if ((pdpte & SPTE_P) != 0 && spGfn(childOf(link)) == (pdpte & ADDR & 0xffffffffff) >> 12) continue;
    clearSpte(l3, q);
  }
}

/** hpa of the running vCPU's root shadow page, or -1 (for the host's footprint count). */
export function shadowRootHpa(): u64 {
  if (!shadowActive() || !pagingOn) return <u64>-1;
  const r = ensureRoot();
  return r < 0 ? <u64>-1 : spFrame(<u32>r);
}
