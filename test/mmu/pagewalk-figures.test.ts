// The talk's two page-walk penalty tables, reproduced by counting a running guest (bench/pagewalk.ts):
// data-cache misses per random access 2 (native 4K); shadow 2, 2, 1 (guest 4K on any host pages,
// 2M on 4K, 2M/2M); 2D 3, 2, 2, 1 (4K/4K, 4K/2M, 2M/4K, 2M/2M); and the page-table footprints
// (about 2 MiB per GiB with 4 KiB pages, 4 MiB with EPT or with shadow tables, 4 KiB per GiB with
// 2 MiB pages, doubled for EPT and shadow).
import { describe, it, expect } from 'vitest';
import { benchPagewalk, benchChurn } from '../../bench/pagewalk.ts';

describe('hvlab bench pagewalk (counting)', () => {
  it('reproduces the 2D memory-access penalties and footprints from the counters', () => {
    const r = benchPagewalk({ loads: 60_000 });
    const row = (mode: string, g: string, h: string | null) => r.rows.find((x) => x.mode === mode && x.guest_page === g && x.host_page === h)!;
    const expected: Array<[string, string, string | null, number, number, number]> = [
      // mode, guest, host, misses per access, references per walk, page-table bytes per GiB
      ['native', '4k', null, 2, 4, 2 << 20],
      ['native', '2m', null, 1, 3, 4 << 10],
      ['shadow', '4k', '4k', 2, 4, 4 << 20],
      ['shadow', '4k', '2m', 2, 4, 4 << 20],
      ['shadow', '2m', '4k', 2, 4, (2 << 20) + (4 << 10)], // guest 4 KiB, shadow 2 MiB: the 2 MiB pages are split
      ['shadow', '2m', '2m', 1, 3, 8 << 10],
      ['ept', '4k', '4k', 3, 24, 4 << 20],
      ['ept', '4k', '2m', 2, 19, 2 << 20],
      ['ept', '2m', '4k', 2, 19, 2 << 20],
      ['ept', '2m', '2m', 1, 15, 8 << 10],
    ];
    for (const [mode, g, h, misses, refs, bytes] of expected) {
      const x = row(mode, g, h);
      expect(Math.abs(x.misses_per_access - misses), `${mode} ${g}/${h} misses ${x.misses_per_access}`).toBeLessThanOrEqual(0.25);
      expect(Math.round(x.refs_per_walk), `${mode} ${g}/${h} refs per walk`).toBe(refs);
      expect(x.pt_bytes_per_gib / bytes, `${mode} ${g}/${h} footprint`).toBeGreaterThan(0.95);
      expect(x.pt_bytes_per_gib / bytes, `${mode} ${g}/${h} footprint`).toBeLessThan(1.05);
    }
    expect(r.cache).toEqual({ bytes: 256 << 10, ways: 4, line: 64 });
    // Shadow paging pays its exits before the measurement (one page fault per page touched, plus the
    // program's page), none in the steady state; no other mode exits at all.
    for (const x of r.rows) expect(x.exits).toEqual({ page_fault: 0, pt_write: 0, cr3: 0, invlpg: 0 });
    expect(row('shadow', '4k', '4k').build_exits!.page_fault).toBe((1 << 30) / 4096 + 1);
    expect(row('shadow', '2m', '2m').build_exits!.page_fault).toBe(512 + 1);
    expect(row('ept', '4k', '4k').build_exits).toBeUndefined();
  });

  it('the page-table churn guest: shadow paging exits by cause and loses on the estimate, 2D paging pays in references', () => {
    const r = benchChurn({ iterations: 200, pages: 16 });
    const row = (mode: string, h: string | null) => r.rows.find((x) => x.mode === mode && x.host_page === h)!;
    const sh = row('shadow', '2m'), ept = row('ept', '4k'), native = row('native', null);
    expect(sh.exits.cr3).toBe(400); // two CR3 loads per address space
    expect(sh.exits.page_fault).toBeGreaterThanOrEqual(200 * 16); // at least every user page once
    expect(sh.exits.pt_write).toBeGreaterThan(200);
    for (const x of [ept, native, row('ept', '2m')]) expect(x.exits).toEqual({ page_fault: 0, pt_write: 0, cr3: 0, invlpg: 0 });
    expect(ept.pt_refs).toBeGreaterThan(native.pt_refs * 4); // two dimensions per TLB miss
    expect(sh.est.total_cycles).toBeGreaterThan(10 * ept.est.total_cycles);
    expect(sh.instructions).toBe(native.instructions);
  });
});
