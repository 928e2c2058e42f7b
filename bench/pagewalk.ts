// `hvlab bench pagewalk`: a guest random-reads a working set far larger than the TLB's reach and the
// modeled cache, under native paging and 2D (EPT) translation with guest 4K/2M x host 4K/2M pages.
// Per row it reports what the counters measured in the running guest: page-table references per
// walk, the TLB miss rate, data-cache misses per access (the talk's "2DP memory access penalties":
// 3, 2, 2, 1 for 4K/4K, 4K/2M, 2M/4K, 2M/2M; native 4K: 2) and page-table bytes per GiB.
// `--timing` instead measures the wall-clock cost of a random load over 512 MiB minus the same loop
// over 64 KiB, per row, with the cache model off and the default TLB.
import * as abi from '../wasm/abi.ts';
import { PageWalkLab } from '../emu/mmu/pagewalk-lab.ts';
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
  extra_ns_per_access?: number;
}

export interface PagewalkResult {
  cache: { bytes: number; ways: number; line: number } | null;
  tlb: { preset: string; l1_4k: string; l1_2m: string; l1_1g: string; l2: string; nested_tlb: boolean; pde_cache: boolean };
  working_set_bytes: number;
  loads: number;
  rows: PagewalkRow[];
}

const ROWS: Array<{ mode: 'native' | 'ept'; guest: PageSize; host: PageSize | null }> = [
  { mode: 'native', guest: '4k', host: null },
  { mode: 'native', guest: '2m', host: null },
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
  onRow?: (r: PagewalkRow) => void;
}

function totalRefs(c: (slot: number) => number): number {
  let refs = 0;
  for (let dim = 0; dim < 3; dim++) for (let level = 1; level <= 5; level++) refs += c(abi.MC_REFS + dim * 8 + level);
  return refs;
}

function lab(mode: 'native' | 'ept', guest: PageSize, host: PageSize | null, workingSet: number): PageWalkLab {
  const mmu: MmuMode = mode === 'ept' ? 'ept' : 'direct';
  return new PageWalkLab({ mmu, guestPage: guest, hostPage: host ?? '2m', workingSet });
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
  const rows: PagewalkRow[] = [];
  for (const r of ROWS) {
    const l = lab(r.mode, r.guest, r.host, ws);
    l.host.configureTlb(TLB_PRESETS[tlbName]);
    l.host.configureCacheModel(cacheBytes, cacheWays);
    const v = l.vcpu;
    const c = (slot: number) => Number(v.mmuCounter(slot));
    // Warm-up from a cold TLB and cache: its walks count towards references per walk (with 2 MiB
    // pages on both sides the working set fits the second-level TLB, so only cold misses walk).
    v.resetMmuCounters();
    l.randomReads(loads, ws, 0x2545f4914f6cdd1dn);
    let refs = totalRefs(c), walks = c(abi.MC_WALKS);
    // The measurement: steady-state cache and TLB contents.
    v.resetMmuCounters();
    l.randomReads(loads, ws);
    refs += totalRefs(c); walks += c(abi.MC_WALKS);
    const accesses = c(abi.MC_DATA_ACCESSES);
    const pt = l.tableBytesPerGiB();
    const row: PagewalkRow = {
      mode: r.mode, guest_page: r.guest, host_page: r.host,
      refs_per_walk: walks ? refs / walks : 0,
      tlb_miss_rate: accesses ? c(abi.MC_TLB_MISS) / accesses : 0,
      misses_per_access: accesses ? (c(abi.MC_DATA_MISSES) + c(abi.MC_PT_MISSES)) / accesses : 0,
      pt_bytes_per_gib: pt.guest + pt.host,
    };
    rows.push(row);
    o.onRow?.(row);
  }
  return { cache: { bytes: cacheBytes, ways: cacheWays, line: 64 }, tlb: describeTlb(tlbName), working_set_bytes: ws, loads, rows };
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
  const rows: PagewalkRow[] = [];
  for (const r of ROWS) {
    const l = lab(r.mode, r.guest, r.host, big);
    l.host.configureTlb(TLB_PRESETS.default);
    l.randomReads(2 * loads, big); // warm up: tier-up, touched host memory, a populated TLB
    const v = l.vcpu;
    const extra = extraNsPerLoad(l, small, big, loads, o.rounds ?? 5);
    v.resetMmuCounters();
    l.randomReads(loads, big); // one more pass over the large set, counted
    const c = (slot: number) => Number(v.mmuCounter(slot));
    const refs = totalRefs(c);
    const misses = c(abi.MC_TLB_MISS);
    const pt = l.tableBytesPerGiB();
    const row: PagewalkRow = {
      mode: r.mode, guest_page: r.guest, host_page: r.host,
      refs_per_walk: misses ? refs / misses : 0,
      tlb_miss_rate: misses / loads,
      misses_per_access: 0,
      pt_bytes_per_gib: pt.guest + pt.host,
      extra_ns_per_access: extra,
    };
    rows.push(row);
    o.onRow?.(row);
  }
  return { cache: null, tlb: describeTlb('default'), working_set_bytes: big, loads, rows };
}
