// `hvlab walk`: build a guest address space and show one cold translation step by step — which
// table (guest or host dimension), level, gpa, hpa, entry, and whether the reference hit the
// data-cache model — ending with the count: 4 for a native 4 KiB walk, 24 for 2D 4K/4K, and
// (n+1)(m+1)-1 in general for n guest and m host levels.
import * as abi from '../../wasm/abi.ts';
import { PageWalkLab, WORKING_SET_GVA } from '../mmu/pagewalk-lab.ts';
import type { MmuMode } from '../machine/host.ts';
import type { PageSize } from '../hv/mm/nested-page-table.ts';

export interface WalkOptions { mmu: MmuMode; guestPage: PageSize; hostPage: PageSize; gva?: bigint; cacheBytes?: number; cacheWays?: number }

const TABLE_NAMES = ['', 'PT', 'PD', 'PDPT', 'PML4', 'PML5'];
const LEVELS: Record<PageSize, number> = { '4k': 4, '2m': 3, '1g': 2 };

export interface WalkStep {
  dim: 'guest' | 'host';
  level: number;
  table: string;
  gpa: string;
  hpa: string;
  entry: string;
  cache: 'hit' | 'miss' | null;
}

export interface WalkResult {
  mmu: MmuMode; guest_page: PageSize; host_page: PageSize | null;
  gva: string; gpa: string; hpa: string;
  refs: number; expected: number; steps: WalkStep[];
  cache: { bytes: number; ways: number; line: number };
}

const hex = (v: bigint) => `0x${v.toString(16)}`;

export function walk(o: WalkOptions): WalkResult {
  const ws = 0x10000;
  const lab = new PageWalkLab({ mmu: o.mmu, guestPage: o.guestPage, hostPage: o.hostPage, workingSet: ws });
  const gva = o.gva ?? WORKING_SET_GVA + 0x1234n;
  const cacheBytes = o.cacheBytes ?? 256 << 10, cacheWays = o.cacheWays ?? 4;
  lab.host.configureCacheModel(cacheBytes, cacheWays);
  lab.host.core.traceWalks(1);
  const r = lab.vcpu.probeWalk(gva, 'read', 0);
  lab.host.core.traceWalks(0);
  if (!r.ok) {
    throw new Error(r.vector === 14
      ? `gva ${hex(gva)} is not mapped (page fault, error code 0x${r.error.toString(16)}); the working set is ${hex(WORKING_SET_GVA)}-${hex(WORKING_SET_GVA + BigInt(ws) - 1n)}`
      : `the walk of ${hex(gva)} ended with vector ${r.vector} (qualification 0x${r.error.toString(16)})`);
  }
  const steps: WalkStep[] = lab.host.walkTrace().map((s) => ({
    dim: s.dim === abi.DIM_HOST ? 'host' : 'guest',
    level: s.level,
    table: (s.dim === abi.DIM_HOST ? 'EPT ' : '') + TABLE_NAMES[s.level],
    gpa: hex(s.gpa), hpa: hex(s.hpa), entry: `0x${s.entry.toString(16).padStart(16, '0')}`,
    cache: s.cacheMiss === null ? null : s.cacheMiss ? 'miss' : 'hit',
  }));
  const n = LEVELS[o.guestPage], m = o.mmu === 'ept' ? LEVELS[o.hostPage] : 0;
  return {
    mmu: o.mmu, guest_page: o.guestPage, host_page: o.mmu === 'ept' ? o.hostPage : null,
    gva: hex(gva), gpa: hex(r.gpa), hpa: hex(r.hpa),
    refs: steps.length, expected: (n + 1) * (m + 1) - 1, steps,
    cache: { bytes: cacheBytes, ways: cacheWays, line: 64 },
  };
}

export function formatWalk(w: WalkResult): string {
  const lines = [`cold walk of gva ${w.gva} (${w.mmu}${w.mmu === 'ept' ? `, guest ${w.guest_page} pages on host ${w.host_page} pages` : `, guest ${w.guest_page} pages`})`];
  lines.push('  #  dimension  table      gpa                 hpa of entry        entry               cache');
  w.steps.forEach((s, i) => {
    const what = s.dim === 'host' ? `  host   ` : `guest    `;
    lines.push(`${String(i + 1).padStart(3)}  ${what}  ${s.table.padEnd(9)}  ${s.gpa.padEnd(18)}  ${s.hpa.padEnd(18)}  ${s.entry}  ${s.cache ?? '-'}`);
  });
  lines.push(`gva ${w.gva} -> gpa ${w.gpa} -> hpa ${w.hpa}`);
  lines.push(`${w.refs} references (expected (n+1)(m+1)-1 = ${w.expected}); cache model ${w.cache.bytes >> 10} KiB, ${w.cache.ways}-way, ${w.cache.line}-byte lines, cold`);
  return lines.join('\n');
}
