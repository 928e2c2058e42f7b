// Walk accounting (ARCHITECTURE.md, section 2): every page-table reference of every mode — guest
// tables, the host's nested (EPT) table, shadow tables — goes through `pageTableRef`, which counts
// it by dimension and level, feeds it to the data-cache model when that is on, and appends it to the
// walk trace when `hvlab walk` armed one. The guest's own data accesses go through the same cache
// model (`dataAccess`), so "references per walk" and "cache misses per access" are measured on one
// path for native, shadow and 2D translation.
import {
  MMU_TRACE_BASE, MMU_TRACE_MAX, MMU_TRACE_COUNT, MMU_COUNTERS_BASE, MMU_COUNTER_SLOTS, CACHE_MODEL_BASE,
  CACHE_MODEL_MAX_LINES, MC_REFS, MC_DATA_ACCESSES, MC_DATA_MISSES, MC_PT_MISSES,
} from '../abi';

/** Counters of the running vCPU (set by selectMmuCounters on every run() entry). */
export let mmuCounters: usize = MMU_COUNTERS_BASE;
export function selectMmuCounters(vcpu: i32): void {
  mmuCounters = <usize>MMU_COUNTERS_BASE + <usize>vcpu * <usize>MMU_COUNTER_SLOTS * 8;
}
@inline export function mmuCount(slot: i32, n: u64 = 1): void {
  const p = mmuCounters + (<usize>slot << 3);
  store<u64>(p, load<u64>(p) + n);
}

// ---- Data-cache model: set-associative, LRU, 64-byte lines, keyed by host-physical address ----
/** True while the model is on (it costs a lookup per access, so it is off unless benchmarking). */
export let cacheModelOn: bool = false;
let cacheSets: u32 = 0;
let cacheWays: u32 = 0;
let cacheClock: u32 = 0;

/** Configure the model: `sizeBytes` / 64 lines in `ways`-way sets (sets a power of two); 0 turns it off. */
export function configureCacheModel(sizeBytes: u32, ways: u32): bool {
  if (sizeBytes == 0) { cacheModelOn = false; refreshObserved(); return true; }
  const lines = sizeBytes >> 6;
  if (ways == 0 || lines % ways != 0 || lines > <u32>CACHE_MODEL_MAX_LINES) return false;
  const sets = lines / ways;
  if ((sets & (sets - 1)) != 0) return false;
  cacheSets = sets; cacheWays = ways; cacheClock = 0;
  memory.fill(CACHE_MODEL_BASE, 0, <usize>lines * 8);
  cacheModelOn = true;
  refreshObserved();
  return true;
}

/** Look up (and fill) the line holding host-physical `hpa`; true on a miss. Tags store line+1 so
 *  that a zeroed model is empty. */
function cacheLookup(hpa: u64): bool {
  const line = <u32>(hpa >> 6) + 1;
  const set = (line - 1) & (cacheSets - 1);
  const base = <usize>CACHE_MODEL_BASE + <usize>(set * cacheWays) * 8;
  const now = ++cacheClock;
  let victim = base;
  let oldest: u32 = 0xffffffff;
  for (let w: u32 = 0; w < cacheWays; w++) {
    const p = base + <usize>w * 8;
    if (load<u32>(p) == line) { store<u32>(p + 4, now); return false; }
    const stamp = load<u32>(p + 4);
    if (stamp < oldest) { oldest = stamp; victim = p; }
  }
  store<u32>(victim, line);
  store<u32>(victim + 4, now);
  return true;
}

/** A guest data access to host-physical `hpa` (counted only while the cache model is on). */
export function dataAccess(hpa: u64): void {
  mmuCount(MC_DATA_ACCESSES);
  if (cacheLookup(hpa)) mmuCount(MC_DATA_MISSES);
}

// ---- Walk trace: what `hvlab walk` prints ----
let traceOn: bool = false;
export function armTrace(on: bool): void { traceOn = on; if (on) store<u32>(MMU_TRACE_COUNT, 0); refreshObserved(); }

/** One page-table reference: dimension (DIM_*), level (1 = the leaf table), the guest-physical
 *  address of the entry (the gpa for guest and shadow tables; for the host table, the gpa being
 *  translated), the host-physical address of the entry, and the entry read. */
@inline export function pageTableRef(dim: i32, level: i32, gpa: u64, hpa: u64, entry: u64): void {
  mmuCount(MC_REFS + dim * 8 + level);
  if (refObserved) observeRef(dim, level, gpa, hpa, entry);
}

/** The cache model or the trace wants to see page-table references (kept apart from the count so
 *  the walk's hot path stays a counter increment). */
let refObserved: bool = false;
function refreshObserved(): void { refObserved = cacheModelOn || traceOn; }

function observeRef(dim: i32, level: i32, gpa: u64, hpa: u64, entry: u64): void {
  let miss = false;
  if (cacheModelOn) { miss = cacheLookup(hpa); if (miss) mmuCount(MC_PT_MISSES); }
  if (traceOn) traceRecord(dim, level, cacheModelOn ? (miss ? 1 : 0) : 2, gpa, hpa, entry);
}

/** An event of the shadow MMU (TRACE_* in abi.ts) for the walk trace; nothing is counted. */
export function traceEvent(kind: i32, level: i32, gpa: u64, hpa: u64, entry: u64): void {
  if (traceOn) traceRecord(kind, level, 2, gpa, hpa, entry);
}

function traceRecord(dim: i32, level: i32, cache: i32, gpa: u64, hpa: u64, entry: u64): void {
  const n = load<u32>(MMU_TRACE_COUNT);
  if (n >= <u32>MMU_TRACE_MAX) return;
  // Record: u8 dim, u8 level, u8 cache miss (0/1, 2 = model off), u8 pad, u32 pad, u64 gpa, u64 hpa, u64 entry.
  const r = <usize>MMU_TRACE_BASE + <usize>n * 32;
  store<u8>(r, <u8>dim); store<u8>(r + 1, <u8>level); store<u8>(r + 2, <u8>cache);
  store<u64>(r + 8, gpa); store<u64>(r + 16, hpa); store<u64>(r + 24, entry);
  store<u32>(MMU_TRACE_COUNT, n + 1);
}
