// `hvlab bench pagewalk`: a guest random-reads a working set far larger than the TLB's reach and the
// modeled cache, under native paging, shadow paging and 2D (EPT) translation with guest 4K/2M x host
// 4K/2M pages. Per row it reports what the counters measured in the running guest: page-table
// references per walk, the TLB miss rate, data-cache misses per access (the talk's "shadow memory
// access penalties": 2 for guest 4K on any host pages, 2 for 2M on 4K, 1 for 2M/2M; and "2DP memory
// access penalties": 3, 2, 2, 1 for 4K/4K, 4K/2M, 2M/4K, 2M/2M; native 4K: 2), page-table bytes per
// GiB (guest, host and shadow tables), the hypervisor exits and an estimated cost per access.
// The shadow rows first let the guest touch every page once, so the shadow tables are built (those
// exits are reported as `build_exits`) and the measurement sees the steady state.
// `--timing` instead measures the wall-clock cost of a random load over 512 MiB minus the same loop
// over 64 KiB, per row, with the cache model off and the default TLB.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import * as abi from '../wasm/abi.ts';
import { PageWalkLab } from '../emu/mmu/pagewalk-lab.ts';
import { ChurnLab } from '../emu/mmu/churn-lab.ts';
import { exitCounts, pageTableRefs, estimateCycles, DEFAULT_COST, type CostModel, type CostEstimate, type ExitCounts } from '../emu/mmu/exit-cost.ts';
import { TLB_PRESETS, type MmuMode } from '../emu/machine/host.ts';
import type { PageSize } from '../emu/hv/mm/nested-page-table.ts';

export interface PagewalkRow {
  mode: 'native' | 'ept' | 'shadow';
  guest_page: PageSize;
  host_page: PageSize | null;
  refs_per_walk: number;
  tlb_miss_rate: number;
  misses_per_access: number;
  pt_bytes_per_gib: number;
  /** The footprint by kind: the guest's tables, the host's nested table (ept), the shadow tables. */
  pt_bytes_per_gib_by_table: { guest: number; host: number; shadow: number };
  /** Exits to the hypervisor during the measurement (shadow paging only has any). */
  exits: ExitCounts;
  /** Exits that built the shadow tables before the measurement (the guest's first touch of each page). */
  build_exits?: ExitCounts;
  /** Estimated cycles per access of the exits and page-table references (emu/mmu/exit-cost.ts). */
  est_cycles_per_access: number;
  extra_ns_per_access?: number;
}

export interface PagewalkResult {
  cache: { bytes: number; ways: number; line: number } | null;
  tlb: { preset: string; l1_4k: string; l1_2m: string; l1_1g: string; l2: string; nested_tlb: boolean; pde_cache: boolean };
  working_set_bytes: number;
  loads: number;
  cost_model: CostModel;
  rows: PagewalkRow[];
  /** The process's peak resident memory at the end (each row's lab is freed before the next). */
  peak_rss_bytes: number;
}

type Mode = PagewalkRow['mode'];
const ROWS: Array<{ mode: Mode; guest: PageSize; host: PageSize | null }> = [
  { mode: 'native', guest: '4k', host: null },
  { mode: 'native', guest: '2m', host: null },
  { mode: 'shadow', guest: '4k', host: '4k' },
  { mode: 'shadow', guest: '4k', host: '2m' },
  { mode: 'shadow', guest: '2m', host: '4k' },
  { mode: 'shadow', guest: '2m', host: '2m' },
  { mode: 'ept', guest: '4k', host: '4k' },
  { mode: 'ept', guest: '4k', host: '2m' },
  { mode: 'ept', guest: '2m', host: '4k' },
  { mode: 'ept', guest: '2m', host: '2m' },
];

export interface PagewalkOptions {
  timing?: boolean;
  workingSet?: number;
  loads?: number;
  cacheBytes?: number;
  cacheWays?: number;
  tlb?: string;
  /** Alternating small/large rounds of --timing (the median is reported). */
  rounds?: number;
  /** Cycles per exit and per reference for the estimate (default DEFAULT_COST). */
  cost?: CostModel;
  onRow?: (r: PagewalkRow) => void;
  /** Called as each row starts a phase (the bench runs for a minute or more: a terminal shows it). */
  onProgress?: (p: PagewalkProgress) => void;
}

/** Where a run of the bench is: row `row` (1-based) of `rows`, and what that row is doing. */
export interface PagewalkProgress {
  row: number; rows: number;
  mode: Mode; guest_page: PageSize; host_page: PageSize | null;
  phase: 'building shadow tables' | 'warm-up' | 'measuring';
}

const totalRefs = pageTableRefs;

function progressOf(o: PagewalkOptions, index: number, r: RowSpec): (phase: PagewalkProgress['phase']) => void {
  return (phase) => o.onProgress?.({ row: index + 1, rows: ROWS.length, mode: r.mode, guest_page: r.guest, host_page: r.host, phase });
}

/** A lab's host is a WebAssembly memory of the working set's size and more (over 1 GiB): collect
 *  it before the next row allocates its own, or the rows' memories pile up until V8 next decides to
 *  collect (the bench peaked above 2 GB). */
const collectGarbage: () => void = (() => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as (() => void) | undefined;
  return gc ?? (() => {});
})();

type RowSpec = (typeof ROWS)[number];

export function peakRssBytes(): number { return process.resourceUsage().maxRSS * 1024; }

/** Measure each row in a lab of its own, one lab alive at a time: the lab is created as the
 *  argument of `measure`, so nothing refers to it once `measure` returns. */
function eachRow(o: PagewalkOptions, workingSet: number, measure: (l: PageWalkLab, r: RowSpec, progress: (phase: PagewalkProgress['phase']) => void) => PagewalkRow): PagewalkRow[] {
  const rows: PagewalkRow[] = [];
  for (const [i, r] of ROWS.entries()) {
    const row = measure(lab(r.mode, r.guest, r.host, workingSet), r, progressOf(o, i, r));
    collectGarbage();
    rows.push(row);
    o.onRow?.(row);
  }
  return rows;
}

function lab(mode: Mode, guest: PageSize, host: PageSize | null, workingSet: number): PageWalkLab {
  const mmu: MmuMode = mode === 'native' ? 'direct' : mode;
  const l = new PageWalkLab({ mmu, guestPage: guest, hostPage: host ?? '2m', workingSet });
  return l;
}

/** Under shadow paging the guest first touches every page (the shadow tables get built); returns
 *  the exits that took. */
function buildShadow(l: PageWalkLab): ExitCounts | undefined {
  if (l.opts.mmu !== 'shadow') return undefined;
  l.vcpu.resetMmuCounters();
  l.touchAll();
  const exits = exitCounts((slot) => Number(l.vcpu.mmuCounter(slot)));
  l.host.core.flushTlb(l.vcpu.index); // the measurement starts from a cold TLB, as in the other rows
  return exits;
}

function describeTlb(name: string) {
  const g = TLB_PRESETS[name];
  const f = ([s, w]: [number, number]) => (s === 0 ? 'off' : `${s * w} entries, ${w}-way`);
  return { preset: name, l1_4k: f(g.l1_4k), l1_2m: f(g.l1_2m), l1_1g: f(g.l1_1g), l2: f(g.l2) + (g.l2[0] ? ' (4 KiB and 2 MiB)' : ''),
    nested_tlb: g.nestedTlb, pde_cache: g.pdeCache };
}

export function benchPagewalk(o: PagewalkOptions = {}): PagewalkResult {
  if (o.timing) return timing(o);
  const ws = o.workingSet ?? 1 << 30;
  const loads = o.loads ?? 300_000;
  const cacheBytes = o.cacheBytes ?? 256 << 10, cacheWays = o.cacheWays ?? 4;
  const tlbName = o.tlb ?? 'skylake';
  const cost = o.cost ?? DEFAULT_COST;
  const rows = eachRow(o, ws, (l, r, progress) => {
    l.host.configureTlb(TLB_PRESETS[tlbName]);
    if (r.mode === 'shadow') progress('building shadow tables');
    const build = buildShadow(l);
    l.host.configureCacheModel(cacheBytes, cacheWays);
    const v = l.vcpu;
    const c = (slot: number) => Number(v.mmuCounter(slot));
    // Warm-up from a cold TLB and cache: its walks count towards references per walk (with 2 MiB
    // pages on both sides the working set fits the second-level TLB, so only cold misses walk).
    v.resetMmuCounters();
    progress('warm-up');
    l.randomReads(loads, ws, 0x2545f4914f6cdd1dn);
    let refs = totalRefs(c), walks = c(abi.MC_WALKS);
    // The measurement: steady-state cache and TLB contents.
    progress('measuring');
    v.resetMmuCounters();
    l.randomReads(loads, ws);
    refs += totalRefs(c); walks += c(abi.MC_WALKS);
    const accesses = c(abi.MC_DATA_ACCESSES);
    const pt = l.tableBytesPerGiB();
    const exits = exitCounts(c);
    const est = estimateCycles(exits, totalRefs(c), c(abi.MC_PT_MISSES), cost);
    const row: PagewalkRow = {
      mode: r.mode, guest_page: r.guest, host_page: r.host,
      refs_per_walk: walks ? refs / walks : 0,
      tlb_miss_rate: accesses ? c(abi.MC_TLB_MISS) / accesses : 0,
      misses_per_access: accesses ? (c(abi.MC_DATA_MISSES) + c(abi.MC_PT_MISSES)) / accesses : 0,
      pt_bytes_per_gib: pt.guest + pt.host + pt.shadow,
      pt_bytes_per_gib_by_table: pt,
      exits, ...(build ? { build_exits: build } : {}),
      est_cycles_per_access: accesses ? (est.total_cycles + c(abi.MC_DATA_MISSES) * cost.missCycles) / accesses : 0,
    };
    return row;
  });
  return { cache: { bytes: cacheBytes, ways: cacheWays, line: 64 }, tlb: describeTlb(tlbName), working_set_bytes: ws, loads, cost_model: cost, rows, peak_rss_bytes: peakRssBytes() };
}

/** Process CPU time in ns (the machine may be shared: wall time would count other jobs). */
function cpuNs(): number { const u = process.cpuUsage(); return (u.user + u.system) * 1000; }

/** Extra ns of a load over `big` bytes against `small` bytes: rounds alternate the two loops and the
 *  median of the per-round differences is reported (notes/assemblyscript-probe.md: medians of
 *  CPU time, since other jobs share the machine). */
function extraNsPerLoad(l: PageWalkLab, small: number, big: number, loads: number, rounds: number): number {
  const diffs: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const seed = 0x9e3779b97f4a7c15n + BigInt(i);
    let t0 = cpuNs();
    l.randomReads(loads, small, seed);
    const smallNs = (cpuNs() - t0) / loads;
    t0 = cpuNs();
    l.randomReads(loads, big, seed);
    diffs.push((cpuNs() - t0) / loads - smallNs);
  }
  diffs.sort((a, b) => a - b);
  return diffs[diffs.length >> 1];
}

function timing(o: PagewalkOptions): PagewalkResult {
  const big = o.workingSet ?? 512 << 20, small = 64 << 10;
  const loads = o.loads ?? 1_000_000;
  const rows = eachRow(o, big, (l, r, progress) => {
    l.host.configureTlb(TLB_PRESETS.default);
    if (r.mode === 'shadow') progress('building shadow tables');
    const build = buildShadow(l);
    progress('warm-up');
    l.randomReads(2 * loads, big); // warm up: tier-up, touched host memory, a populated TLB
    progress('measuring');
    const v = l.vcpu;
    const extra = extraNsPerLoad(l, small, big, loads, o.rounds ?? 5);
    v.resetMmuCounters();
    l.randomReads(loads, big); // one more pass over the large set, counted
    const c = (slot: number) => Number(v.mmuCounter(slot));
    const refs = totalRefs(c);
    const misses = c(abi.MC_TLB_MISS);
    const pt = l.tableBytesPerGiB();
    const exits = exitCounts(c);
    const row: PagewalkRow = {
      mode: r.mode, guest_page: r.guest, host_page: r.host,
      refs_per_walk: misses ? refs / misses : 0,
      tlb_miss_rate: misses / loads,
      misses_per_access: 0,
      pt_bytes_per_gib: pt.guest + pt.host + pt.shadow,
      pt_bytes_per_gib_by_table: pt,
      exits, ...(build ? { build_exits: build } : {}),
      est_cycles_per_access: estimateCycles(exits, refs, 0, o.cost ?? DEFAULT_COST).total_cycles / loads,
      extra_ns_per_access: extra,
    };
    return row;
  });
  return { cache: null, tlb: describeTlb('default'), working_set_bytes: big, loads, cost_model: o.cost ?? DEFAULT_COST, rows, peak_rss_bytes: peakRssBytes() };
}

// ---- The page-table churn workload (emu/mmu/churn-lab.ts): where shadow paging loses ----

export interface ChurnRow {
  mode: 'native' | 'ept' | 'shadow';
  host_page: PageSize | null;
  iterations: number;
  pages: number;
  instructions: number;
  exits: ExitCounts;
  tlb_misses: number;
  pt_refs: number;
  pt_misses: number;
  /** What the shadow MMU did: shadow pages created and zapped, of those unshadowed by write flooding. */
  shadow_pages_created: number;
  shadow_pages_zapped: number;
  shadow_pages_flooded: number;
  est: CostEstimate;
  est_cycles_per_iteration: number;
}

export interface ChurnResult { iterations: number; pages: number; cost_model: CostModel; rows: ChurnRow[] }

const CHURN_ROWS: Array<{ mode: ChurnRow['mode']; host: PageSize | null }> = [
  { mode: 'native', host: null }, { mode: 'shadow', host: '2m' }, { mode: 'ept', host: '4k' }, { mode: 'ept', host: '2m' },
];

/** Run the churn guest under each MMU mode with the cache model on; exits and page-table references
 *  become estimated cycles through the cost model. */
export function benchChurn(o: { iterations?: number; pages?: number; cost?: CostModel; cacheBytes?: number; cacheWays?: number; onRow?: (r: ChurnRow) => void } = {}): ChurnResult {
  const iterations = o.iterations ?? 2000, pages = o.pages ?? 16;
  const cost = o.cost ?? DEFAULT_COST;
  const rows: ChurnRow[] = [];
  for (const r of CHURN_ROWS) {
    const l = new ChurnLab({ mmu: r.mode === 'native' ? 'direct' : r.mode, hostPage: r.host ?? '2m' });
    l.host.configureTlb(TLB_PRESETS.skylake);
    l.host.configureCacheModel(o.cacheBytes ?? 256 << 10, o.cacheWays ?? 4);
    const v = l.vcpu;
    v.resetMmuCounters();
    const instructions = l.run(iterations, pages);
    const c = (slot: number) => Number(v.mmuCounter(slot));
    const exits = exitCounts(c);
    const refs = totalRefs(c), ptMisses = c(abi.MC_PT_MISSES);
    const est = estimateCycles(exits, refs, ptMisses, cost);
    const row: ChurnRow = {
      mode: r.mode, host_page: r.host, iterations, pages, instructions, exits,
      tlb_misses: c(abi.MC_TLB_MISS), pt_refs: refs, pt_misses: ptMisses,
      shadow_pages_created: c(abi.MC_SHADOW_SP_ALLOC), shadow_pages_zapped: c(abi.MC_SHADOW_SP_ZAP),
      shadow_pages_flooded: c(abi.MC_SHADOW_FLOODED),
      est, est_cycles_per_iteration: est.total_cycles / iterations,
    };
    rows.push(row);
    o.onRow?.(row);
  }
  return { iterations, pages, cost_model: cost, rows };
}
