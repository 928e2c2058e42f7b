// The exported surface of hvlab's "kvm.ko": what the TypeScript VMM calls. Only i32/f64 cross the
// boundary (notes/assemblyscript-probe.md: i64 becomes BigInt and costs 13-28 ns); 64-bit state is
// read and written through linear memory at the offsets of wasm/abi.ts.
import * as abi from './abi';
import { run as runLoop } from './cpu/execute';
import { guestRamWritten } from './mmu/translate';
import { currentVm } from './mem/memory-map';
import { selectVm, selectVmOfCpu, reloadVm } from './vm';
import { setCpu, loadState, saveState, cpu, overrideCpl } from './cpu/state';
import { clearFault, faultVector, faultError } from './cpu/fault';
import { selectEpt, eptOn, eptTranslate, eptPageShift, setNestedTlb, flushNestedTlb } from './mmu/ept';
import { configureTlb as mmuConfigureTlb, selectTlb, tlbFlush, tlbFlushEverything, FLUSH_ALL, defaultTlbGeometry, setMicroTlb } from './mmu/tlb';
import { configureCacheModel as mmuConfigureCache, armTrace, selectMmuCounters } from './mmu/accounting';
import { walk, walkPageShift, setImplicitSupervisor, setPdeCache, flushPdeCache } from './mmu/paging';
import {
  configureShadow as mmuConfigureShadow, shadowRegionBytes as mmuShadowRegionBytes, shadowZapAll, selectShadow,
  shadowActive, shadowWalk, shadowFault, shadowFaultHpa, shadowFaultGpa, shadowPageShift, shadowRootHpa as mmuShadowRootHpa,
  ptWritesPending, shadowSyncWrites, SF_INSTALLED, SF_EMULATE,
} from './mmu/shadow';
import { getFlags, setFlags } from './cpu/flags';
import { linearMappingsChanged, framesRewritten } from './cpu/code-cache';
import { walkChain as blkWalk, copySegments as blkCopySegments } from './blk/virtqueue';

/** Execute vCPU `vcpu` until an exit or `budget` instructions (like KVM_RUN). Returns EXIT_*. */
export function run(vcpu: i32, budget: i32): i32 { return runLoop(vcpu, budget); }

/** The MMU's defaults for running guests: the large TLB geometry, the nested TLB and the PDE cache
 *  (the host may choose others: configureTlb, configureNestedTlb, configurePdeCache). */
export function mmuDefaults(): void { defaultTlbGeometry(); setNestedTlb(true); setPdeCache(true); }

/** The host wrote VM `vm`'s control block (its memory map): take it up if that VM is loaded. */
export function vmConfigured(vm: i32): void { reloadVm(vm); }

/** Run `f` with VM `vm` selected, then give the previous VM back (host calls made from inside a
 *  device access of the running VM leave it as it was). */
@inline function withVm(vm: i32): i32 { const prev = currentVm; selectVm(vm); return prev; }
@inline function restoreVm(prev: i32): void { if (prev >= 0) selectVm(prev); }

/** A checksum over the ABI constants as this module was compiled with them; the TypeScript side
 *  computes the same from its own import (test/abi.test.ts), proving the two agree. */
export function abiChecksum(): i32 {
  let h: i32 = 17;
  h = h * 31 + abi.VCPU_AREA_BASE; h = h * 31 + abi.VCPU_STRIDE; h = h * 31 + abi.ST_RIP;
  h = h * 31 + abi.ST_RFLAGS; h = h * 31 + abi.ST_LAZY_OP; h = h * 31 + abi.ST_EXIT_REASON;
  h = h * 31 + abi.ST_EXIT_VECTOR; h = h * 31 + abi.ST_EXIT_RIP; h = h * 31 + abi.ST_COUNTERS;
  h = h * 31 + abi.ST_UD_BY_OPCODE; h = h * 31 + abi.HOST_POOL_BASE; h = h * 31 + abi.VM_AREA_BASE; h = h * 31 + abi.ST_VM; h = h * 31 + abi.CPUID_TABLE_BASE;
  h = h * 31 + abi.CPUID_COUNT_ADDR; h = h * 31 + abi.EXIT_HLT; h = h * 31 + abi.EXIT_EXCEPTION;
  h = h * 31 + abi.ST_FS_BASE; h = h * 31 + abi.ST_GS_BASE; h = h * 31 + abi.ST_TSC_OFFSET;
  return h;
}

/** RFLAGS of a vCPU, with the lazily held arithmetic flags materialized (RFLAGS fits in 32 bits). */
export function readRflags(vcpu: i32): i32 {
  setCpu(vcpu);
  loadState();
  return <i32>getFlags();
}

/** Replace RFLAGS of a vCPU (bit 1 reads as 1). */
export function writeRflags(vcpu: i32, value: i32): void {
  setCpu(vcpu);
  loadState();
  setFlags(<u64><u32>value);
  saveState();
}

// ---- The MMU: geometry, accounting, probes (wasm/mmu) ----

/** TLB geometry of array PS_4K/PS_2M/PS_1G/TLB_L2: `sets` (power of two, 0 = off) x `ways`. */
export function configureTlb(array: i32, sets: i32, ways: i32): i32 { return mmuConfigureTlb(array, <u32>sets, <u32>ways) ? 1 : 0; }

/** The data-cache model: `bytes` of 64-byte lines in `ways`-way sets; 0 turns it off. */
export function configureCacheModel(bytes: i32, ways: i32): i32 { return mmuConfigureCache(<u32>bytes, <u32>ways) ? 1 : 0; }

/** Record every page-table reference of the next walks (MMU_TRACE_*). */
export function traceWalks(on: i32): void { armTrace(on != 0); }

/** INVEPT (all contexts): the host changed nested mappings; every vCPU's TLB entries go. Under
 *  --mmu shadow the same call tells the shadow MMU that the gpa -> hpa map changed: every shadow
 *  page goes (KVM's MMU notifiers would zap only the affected sptes). */
export function invept(vm: i32): void {
  const prev = withVm(vm);
  shadowZapAll(); tlbFlushEverything(); flushNestedTlb(); linearMappingsChanged();
  restoreVm(prev);
}

// ---- Shadow paging (wasm/mmu/shadow.ts) ----

/** Bytes of host memory the shadow MMU needs for `frames` shadow pages, a host pool of `poolBytes`
 *  (the rmap covers it) and `ramBytes` of guest RAM. */
export function shadowRegionBytes(frames: i32, poolBytes: f64, ramBytes: f64): f64 {
  return <f64>mmuShadowRegionBytes(<u32>frames, <u64>poolBytes, <u64>ramBytes);
}

/** Give the shadow MMU its region of host memory at hpa `base` (4 KiB aligned, outside the pool). */
export function configureShadow(vm: i32, base: f64, frames: i32, poolBytes: f64, ramBytes: f64): void {
  const prev = withVm(vm);
  mmuConfigureShadow(<u64>base, <u32>frames, <u64>poolBytes, <u64>ramBytes);
  restoreVm(prev);
}

/** The host wrote guest memory [gpa, gpa + bytes) itself: decoded instructions and the shadow pages
 *  of those gfns go (translate.ts guestRamWritten). */
export function hostWroteGuest(vm: i32, gpa: f64, bytes: f64): void {
  const prev = withVm(vm);
  guestRamWritten(<u64>gpa, <u64>bytes);
  restoreVm(prev);
}

/** The host rewrote host frames [first, first + count) (the frame pool handing a frame out again):
 *  decoded instructions from them go. */
export function hostRewroteFrames(first: i32, count: i32): void { framesRewritten(<u32>first, <u32>count); }

/** Drop every shadow page of VM `vm` (they are rebuilt on demand). */
export function zapShadow(vm: i32): void { const prev = withVm(vm); shadowZapAll(); restoreVm(prev); }

/** hpa of vCPU `vcpu`'s root shadow page for its current CR3, or -1 (not shadowing). */
export function shadowRootHpa(vcpu: i32): f64 {
  setCpu(vcpu); selectVmOfCpu(); selectMmuCounters(vcpu); selectShadow();
  const r = mmuShadowRootHpa();
  return r == <u64>-1 ? -1 : <f64>r;
}

/** The nested TLB (gpa -> hpa of guest page-table pages) on or off. */
export function configureNestedTlb(on: i32): void { setNestedTlb(on != 0); }

/** The micro-TLB (the last page of each access kind, uncounted by the TLB model) on or off. */
export function configureMicroTlb(on: i32): void { setMicroTlb(on != 0); }

/** The PDE cache (a paging-structure cache of 4-level walks) on or off. */
export function configurePdeCache(on: i32): void { setPdeCache(on != 0); }

/** Flush one vCPU's TLB entries (all of its guest's, global ones included). */
export function flushTlb(vcpu: i32): void {
  setCpu(vcpu); selectMmuCounters(vcpu); selectTlb(vcpu); tlbFlush(FLUSH_ALL, 0);
  linearMappingsChanged(); // (decoded code is revalidated against the new mappings)
}

/** One cold translation of gva (lo, hi halves) for `access` at privilege `cpl` on vCPU `vcpu`'s
 *  current paging state, bypassing the TLB: the guest walk and, under EPT, the final gpa's host walk.
 *  Returns 0 with PROBE_GPA/PROBE_HPA/PROBE_PAGE_SHIFT set, or the vector of the fault (14 = #PF with
 *  PROBE_ERROR the error code; 256 = EPT violation with PROBE_ERROR the qualification). Sets A/D bits
 *  as the hardware walk does. */
export function probeWalk(vcpu: i32, gvaLo: i32, gvaHi: i32, access: i32, cplValue: i32, implicit: i32): i32 {
  setCpu(vcpu);
  selectVmOfCpu();
  selectMmuCounters(vcpu);
  selectEpt();
  loadState();
  overrideCpl(cplValue);
  clearFault();
  flushNestedTlb(); flushPdeCache(); // a probe is a cold walk
  setImplicitSupervisor(implicit != 0);
  const gva = (<u64><u32>gvaLo) | (<u64><u32>gvaHi << 32);
  let gpa = gva;
  let shift: i32 = 0;
  const paging = (load<u64>(cpu + abi.ST_CR0) & abi.CR0_PG) != 0;
  let hpa = gpa, hostShift: i32 = 0;
  selectShadow();
  if (paging && shadowActive()) {
    shadowZapAll(); // a probe is a cold walk: the shadow table is built from the guest's tables now
    // The shadow walk; when it misses, the hypervisor's fault handler builds the sptes (its guest
    // walk gives the gpa) and the walk is made again, as the guest's access would retry.
    hpa = shadowWalk(gva, access);
    if (hpa == <u64>-1) {
      const r = shadowFault(gva, 1, access);
      gpa = shadowFaultGpa;
      if (r == SF_INSTALLED) hpa = shadowWalk(gva, access);
      else if (r == SF_EMULATE) hpa = shadowFaultHpa;
      if (ptWritesPending) shadowSyncWrites();
    } else {
      gpa = walk(gva, access); // (the spte does not say which gpa it came from: ask the guest tables)
    }
    shift = walkPageShift; hostShift = shadowPageShift;
  } else {
    if (paging) { gpa = walk(gva, access); shift = walkPageShift; }
    if (faultVector < 0 && eptOn) { hpa = eptTranslate(gpa, access, true, gva, true); hostShift = eptPageShift; }
  }
  setImplicitSupervisor(false);
  const vector = faultVector;
  if (vector >= 0) {
    store<u32>(abi.PROBE_ERROR, vector == abi.VEC_PF ? faultError : load<u32>(cpu + abi.ST_EXIT_ERROR_CODE));
    clearFault();
    return vector;
  }
  store<u64>(abi.PROBE_GPA, gpa);
  store<u64>(abi.PROBE_HPA, hpa);
  store<u32>(abi.PROBE_PAGE_SHIFT, <u32>shift);
  store<u32>(abi.PROBE_HOST_PAGE_SHIFT, <u32>hostShift);
  return 0;
}

// ---- The block I/O data path (wasm/blk) ----

/** Walk one virtqueue descriptor chain into the segment list (BLK_SEG_LIST_BASE, BLK_WALK_RESULT). */
export function blkWalkChain(vm: i32, tableGpa: f64, tableSize: i32, head: i32, indirectAllowed: i32): i32 {
  const prev = withVm(vm);
  const n = blkWalk(<u64>tableGpa, <u32>tableSize, <u32>head, indirectAllowed != 0);
  restoreVm(prev);
  return n;
}

/** Copy between host staging memory and segments [first, first + count) of the last walk. */
export function blkCopy(vm: i32, first: i32, count: i32, offset: f64, staging: f64, length: f64, toGuest: i32): f64 {
  const prev = withVm(vm);
  const n = blkCopySegments(first, count, <u64>offset, <usize>staging, <u64>length, toGuest != 0);
  restoreVm(prev);
  return <f64>n;
}
