// The differential oracle in the test suite: generated cases for every form of the instruction
// table, run on this machine's CPU and in hvlab, must agree exactly (minus undefined flags).
import { describe, it, expect } from 'vitest';
import { difftest, formatMismatch, formatSummary } from '../emu/difftest/compare.ts';
import { allFormKeys } from '../emu/difftest/generate.ts';
import { hostDiffersFromModel } from '../emu/difftest/host-vendor.ts';

describe('hvlab difftest against this machine\'s CPU', () => {
  it('every form, several times, with a fixed seed', async () => {
    const count = allFormKeys().length * 8;
    const r = await difftest({ seed: 20261126, count, keepMismatches: 10 });
    const report = r.mismatches.map(formatMismatch).join('\n');
    expect(r.forms).toBe(allFormKeys().length);
    expect(r.forms).toBeGreaterThanOrEqual(400);
    expect(r.failed, report).toBe(0);
    // Known divergences of another vendor's CPU (emu/difftest/vendor-divergences.ts) are counted
    // apart; on an Intel host there are none and every case must pass.
    if (r.vendorSpecific) console.log(formatSummary(r).join('\n'));
    if (!hostDiffersFromModel()) expect(r.vendorSpecific).toBe(0);
    expect(r.passed + r.vendorSpecific).toBe(count);
  });

  it('vendor divergences apply only on a host of another vendor, and only to the case they describe', async () => {
    const { DIVERGENCES, DIFFTEST_DIVERGENCES, activeDivergences, appliesOnHost } = await import('../emu/difftest/vendor-divergences.ts');
    const { parseVendor } = await import('../emu/difftest/host-vendor.ts');
    expect(parseVendor('processor\t: 0\nvendor_id\t: AuthenticAMD\n')).toBe('AuthenticAMD');
    expect(parseVendor('vendor_id : GenuineIntel')).toBe('GenuineIntel');
    expect(parseVendor('')).toBe('other');
    expect(activeDivergences('GenuineIntel')).toEqual([]);
    for (const d of Object.values(DIVERGENCES)) expect(appliesOnHost(d, 'GenuineIntel')).toBe(false);
    expect(activeDivergences('AuthenticAMD').length).toBe(Object.keys(DIVERGENCES).length);
    // A plain corrupted result is not explained by any entry.
    const { generateCases } = await import('../emu/difftest/generate.ts');
    const { runNativeBatch } = await import('../emu/difftest/native.ts');
    const { EmulatedRunner } = await import('../emu/difftest/emulated.ts');
    const { vendorDivergenceOf } = await import('../emu/difftest/compare.ts');
    const runner = new EmulatedRunner();
    for (const mn of ['call', 'stos', 'add']) {
      const [c] = generateCases({ seed: 3, count: 1, only: [mn] });
      const [native] = await runNativeBatch([c]);
      const emulated = runner.run(c);
      emulated.regs[3] ^= 1n;
      expect(vendorDivergenceOf(c, native, emulated, { emulate: (x) => runner.run(x) }, 'AuthenticAMD')).toBe(null);
    }
    expect(DIFFTEST_DIVERGENCES.length).toBe(6);
  });

  it('would catch a wrong result: a corrupted emulator outcome is reported', async () => {
    const { generateCases } = await import('../emu/difftest/generate.ts');
    const { differences } = await import('../emu/difftest/compare.ts');
    const { runNativeBatch } = await import('../emu/difftest/native.ts');
    const { EmulatedRunner } = await import('../emu/difftest/emulated.ts');
    const [c] = generateCases({ seed: 7, count: 1, only: ['add'] });
    const [native] = await runNativeBatch([c]);
    const emulated = new EmulatedRunner().run(c);
    expect(differences(c, native, emulated)).toEqual([]);
    emulated.regs[3] ^= 1n;
    expect(differences(c, native, emulated).length).toBe(1);
  });
});
