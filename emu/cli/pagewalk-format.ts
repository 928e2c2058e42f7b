// Table rows of `hvlab bench pagewalk`.
import type { PagewalkRow, ChurnRow, PagewalkProgress } from '../../bench/pagewalk.ts';
import type { ExitCounts } from '../mmu/exit-cost.ts';

export function formatPagewalkHeader(timing: boolean): string {
  return `mode    guest  host  refs/walk  TLB miss rate  ${timing ? 'extra ns/load' : 'cache misses/access'}  page tables per GiB             exits  est. cycles/access`;
}

function bytes(n: number): string {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(2)} MiB` : `${(n / 1024).toFixed(1)} KiB`;
}

const exitTotal = (e: ExitCounts) => e.page_fault + e.pt_write + e.cr3 + e.invlpg;

export function formatPagewalkRow(r: PagewalkRow): string {
  const last = r.extra_ns_per_access !== undefined ? r.extra_ns_per_access.toFixed(1).padStart(13) : r.misses_per_access.toFixed(2).padStart(19);
  const tables = r.mode === 'shadow' ? `${bytes(r.pt_bytes_per_gib)} (shadow ${bytes(r.pt_bytes_per_gib_by_table.shadow)})` : bytes(r.pt_bytes_per_gib);
  return `${r.mode.padEnd(6)}  ${r.guest_page.padEnd(5)}  ${(r.host_page ?? '-').padEnd(4)}  ${r.refs_per_walk.toFixed(2).padStart(9)}  `
    + `${r.tlb_miss_rate.toFixed(3).padStart(13)}  ${last}  ${tables.padEnd(30)}  ${String(exitTotal(r.exits)).padStart(5)}  ${r.est_cycles_per_access.toFixed(0).padStart(18)}`
    + (r.build_exits ? `  (building the shadow tables first: ${exitTotal(r.build_exits)} exits)` : '');
}

export function formatChurnHeader(): string {
  return 'mode    host  page faults  pt writes  CR3 loads  INVLPG  TLB misses  pt refs    est. exit cycles  est. walk cycles  est. cycles/iteration';
}

export function formatChurnRow(r: ChurnRow): string {
  const n = (v: number, w: number) => String(v).padStart(w);
  return `${r.mode.padEnd(6)}  ${(r.host_page ?? '-').padEnd(4)}  ${n(r.exits.page_fault, 11)}  ${n(r.exits.pt_write, 9)}  ${n(r.exits.cr3, 9)}  ${n(r.exits.invlpg, 6)}  `
    + `${n(r.tlb_misses, 10)}  ${n(r.pt_refs, 9)}  ${n(r.est.exit_cycles, 16)}  ${n(r.est.walk_cycles, 16)}  ${r.est_cycles_per_iteration.toFixed(0).padStart(21)}`;
}

/** `[3/10] shadow guest 4k host 2m: building shadow tables; 12 s, 180 MiB resident`. */
export function formatPagewalkProgress(p: PagewalkProgress, elapsedSeconds: number, rssBytes: number): string {
  return `[${p.row}/${p.rows}] ${p.mode} guest ${p.guest_page}${p.host_page ? ` host ${p.host_page}` : ''}: ${p.phase}; `
    + `${elapsedSeconds.toFixed(0)} s, ${(rssBytes / 2 ** 20).toFixed(0)} MiB resident`;
}

/** A status line on a terminal, rewritten in place and cleared before anything else is printed. */
export class ProgressLine {
  private shown = false;
  constructor(private readonly stream: NodeJS.WriteStream) {}
  show(text: string): void { this.stream.write(`\r\x1b[K${text.slice(0, Math.max(20, (this.stream.columns || 80) - 1))}`); this.shown = true; }
  clear(): void { if (this.shown) { this.stream.write('\r\x1b[K'); this.shown = false; } }
}
