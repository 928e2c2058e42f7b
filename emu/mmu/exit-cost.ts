// The cost model that turns counted events into an estimated time, so shadow paging and the 2D walk
// can be compared on both sides of their trade: shadow paging pays exits to the hypervisor (page
// faults, page-table writes, CR3 loads, INVLPG) and walks one dimension; 2D paging has none of
// those exits but walks two dimensions on every TLB miss. The core counts (wasm/mmu/shadow.ts, the
// MC_* counters); the cycles are assumptions, configurable, and printed next to the counts.
import * as abi from '../../wasm/abi.ts';

export interface ExitCounts { page_fault: number; pt_write: number; cr3: number; invlpg: number }

export interface CostModel {
  /** Cycles of one exit to the hypervisor and back, with its handling (by cause). */
  exitCycles: ExitCounts;
  /** Cycles of a memory reference that misses the data cache (the walk's and the data's). */
  missCycles: number;
  /** Cycles of a page-table reference that hits the cache. */
  hitCycles: number;
}

/** Defaults of the order measured on the talk's hardware generation (a VM exit round trip of about
 *  a thousand cycles on Nehalem-era cores, plus KVM's handling; a DRAM access of about 200 cycles). */
export const DEFAULT_COST: CostModel = {
  exitCycles: { page_fault: 3000, pt_write: 3500, cr3: 1500, invlpg: 1500 },
  missCycles: 200,
  hitCycles: 4,
};

/** A cost model with one exit cost for every cause (the `--exit-cycles` option). */
export function costWithExitCycles(cycles: number, base: CostModel = DEFAULT_COST): CostModel {
  return { ...base, exitCycles: { page_fault: cycles, pt_write: cycles, cr3: cycles, invlpg: cycles } };
}

export function exitCounts(counter: (slot: number) => number): ExitCounts {
  return {
    page_fault: counter(abi.MC_EXIT_SHADOW_PF), pt_write: counter(abi.MC_EXIT_PT_WRITE),
    cr3: counter(abi.MC_EXIT_CR3), invlpg: counter(abi.MC_EXIT_INVLPG),
  };
}

/** Page-table references of every dimension and level. */
export function pageTableRefs(counter: (slot: number) => number): number {
  let refs = 0;
  for (let dim = 0; dim < 3; dim++) for (let level = 1; level <= 5; level++) refs += counter(abi.MC_REFS + dim * 8 + level);
  return refs;
}

export interface CostEstimate { exit_cycles: number; walk_cycles: number; total_cycles: number }

/** Estimated cycles of the exits and of the page-table references (misses at missCycles, the rest at
 *  hitCycles; with the cache model off every reference is taken as a hit). */
export function estimateCycles(exits: ExitCounts, refs: number, ptMisses: number, m: CostModel = DEFAULT_COST): CostEstimate {
  const exit = exits.page_fault * m.exitCycles.page_fault + exits.pt_write * m.exitCycles.pt_write
    + exits.cr3 * m.exitCycles.cr3 + exits.invlpg * m.exitCycles.invlpg;
  const walk = ptMisses * m.missCycles + (refs - ptMisses) * m.hitCycles;
  return { exit_cycles: exit, walk_cycles: walk, total_cycles: exit + walk };
}
