// Table rows of `hvlab bench pagewalk`.
import type { PagewalkRow } from '../../bench/pagewalk.ts';

export function formatPagewalkHeader(timing: boolean): string {
  return `mode    guest  host  refs/walk  TLB miss rate  ${timing ? 'extra ns/load' : 'cache misses/access'}  page tables per GiB`;
}

function bytes(n: number): string {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(2)} MiB` : `${(n / 1024).toFixed(1)} KiB`;
}

export function formatPagewalkRow(r: PagewalkRow): string {
  const last = r.extra_ns_per_access !== undefined ? r.extra_ns_per_access.toFixed(1).padStart(13) : r.misses_per_access.toFixed(2).padStart(19);
  return `${r.mode.padEnd(6)}  ${r.guest_page.padEnd(5)}  ${(r.host_page ?? '-').padEnd(4)}  ${r.refs_per_walk.toFixed(2).padStart(9)}  `
    + `${r.tlb_miss_rate.toFixed(3).padStart(13)}  ${last}  ${bytes(r.pt_bytes_per_gib)}`;
}
