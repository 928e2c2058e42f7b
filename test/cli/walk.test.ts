// `hvlab walk` explains what it shows: the count's terms, why a walk is shorter than the page size
// asked for, why gpa = hpa on a one-guest host, and that --mmu direct has no host dimension.
import { describe, expect, it } from 'vitest';
import { walk, formatWalk } from '../../emu/cli/walk.ts';

describe('hvlab walk explanations', () => {
  it('--mmu direct: one dimension, hpa = gpa (not the virtual address)', () => {
    const w = walk({ mmu: 'direct', guestPage: '4k', hostPage: '4k' });
    expect(w.refs).toBe(4);
    expect(w.hpa).toBe(w.gpa);
    expect(w.hpa).not.toBe(w.gva);
    expect(formatWalk(w)).toMatch(/no host dimension/);
  });

  it('--mmu ept: 24 references, spelled out as n guest entries and (n+1) EPT walks of m levels', () => {
    const w = walk({ mmu: 'ept', guestPage: '4k', hostPage: '4k' });
    expect([w.refs, w.expected, w.guest_levels, w.host_levels]).toEqual([24, 24, 4, 4]);
    expect(formatWalk(w)).toContain('24 = 4 guest entries + (4 + 1) x 4 EPT entries');
    expect(formatWalk(w)).toMatch(/gpa = hpa here because this one-guest host/);
  });

  it('a gva outside the working set mapped by a large page: 19 references, and the reason', () => {
    const w = walk({ mmu: 'ept', guestPage: '4k', hostPage: '4k', gva: 0x1234n });
    expect([w.refs, w.expected, w.guest_levels]).toEqual([19, 19, 3]);
    const text = formatWalk(w);
    expect(text).toContain('The guest maps 0x1234 with a 2m page, not the 4k pages of the working set');
    expect(text).toContain('19 references, not 24');
  });

  it('--mmu shadow: one dimension after the exits that built it', () => {
    const w = walk({ mmu: 'shadow', guestPage: '4k', hostPage: '4k' });
    expect(w.refs).toBe(4);
    expect(formatWalk(w)).toMatch(/KVM's shadow table \(gva -> hpa\)/);
  });
});
