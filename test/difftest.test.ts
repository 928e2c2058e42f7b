// The differential oracle in the test suite: generated cases for every form of the instruction
// table, run on this machine's CPU and in hvlab, must agree exactly (minus undefined flags).
import { describe, it, expect } from 'vitest';
import { difftest, formatMismatch, formatSummary } from '../emu/difftest/compare.ts';
import { allFormKeys } from '../emu/difftest/generate.ts';
import { hostDiffersFromModel, hostVendor } from '../emu/difftest/host-vendor.ts';
import { DIVERGENCES } from '../emu/difftest/vendor-divergences.ts';
import { hostCpuModel } from '../emu/cpu/models.ts';

describe('hvlab difftest against this machine\'s CPU', () => {
  it('every form, several times, with a fixed seed', async () => {
    const count = allFormKeys().length * 8;
    const r = await difftest({ seed: 20261126, count, keepMismatches: 10 });
    const report = r.mismatches.map(formatMismatch).join('\n');
    expect(r.forms).toBe(allFormKeys().length);
    expect(r.forms).toBeGreaterThanOrEqual(400);
    expect(r.failed, report).toBe(0);
    // The model of this host's vendor runs the cases: what the models implement is compared bit for
    // bit; only the divergences no model implements (the x87 ones, on an AMD host) are counted apart.
    expect(r.model).toBe(hostCpuModel());
    if (r.vendorSpecific) console.log(formatSummary(r).join('\n'));
    const modelled = Object.values(DIVERGENCES).filter((d) => d.modelled).map((d) => d.name);
    for (const name of modelled) expect(r.vendorSpecificBy[name] ?? 0, name).toBe(0);
    if (!hostDiffersFromModel()) expect(r.vendorSpecific).toBe(0);
    expect(r.passed + r.vendorSpecific).toBe(count);
  });

  it('tests the host vendor\'s model by default; the other vendor\'s model differs from this CPU', async () => {
    // CALL FF /2 (non-canonical targets) and the string instructions (67h, ECX = 0) are generated.
    const only = ['call', 'stos', 'cmps', 'movs'];
    const mine = await difftest({ seed: 5150, count: 4000, only, keepMismatches: 3 });
    expect(mine.model).toBe(hostCpuModel());
    expect(mine.failed, mine.mismatches.map(formatMismatch).join('\n')).toBe(0);
    expect(mine.vendorSpecific).toBe(0);
    if (hostVendor() === 'other') return;
    const other = hostVendor() === 'AuthenticAMD' ? 'intel' : 'amd';
    const theirs = await difftest({ seed: 5150, count: 4000, only, keepMismatches: 3, cpu: other });
    expect(theirs.model.name).toBe(other);
    expect(formatSummary(theirs)[0]).toMatch(new RegExp(`^cpu model: ${other} `));
    if (other === 'intel') {
      // On an AMD host the Intel model's results are explained by the divergence table (AMD's
      // documented form of the Intel result), and counted apart.
      expect(theirs.failed).toBe(0);
      expect(theirs.vendorSpecificBy['call-indirect-noncanonical-target']).toBeGreaterThan(0);
      expect(theirs.vendorSpecificBy['rep-string-addr32-ecx-zero']).toBeGreaterThan(0);
    } else {
      expect(theirs.failed).toBeGreaterThan(0); // the AMD model on an Intel host
    }
  });

  it('vendor divergences apply only on a host of another vendor, and only to the case they describe', async () => {
    const { DIFFTEST_DIVERGENCES, activeDivergences, appliesOnHost } = await import('../emu/difftest/vendor-divergences.ts');
    const { parseVendor } = await import('../emu/difftest/host-vendor.ts');
    expect(parseVendor('processor\t: 0\nvendor_id\t: AuthenticAMD\n')).toBe('AuthenticAMD');
    expect(parseVendor('vendor_id : GenuineIntel')).toBe('GenuineIntel');
    expect(parseVendor('')).toBe('other');
    expect(activeDivergences('GenuineIntel')).toEqual([]);
    for (const d of Object.values(DIVERGENCES)) expect(appliesOnHost(d, 'GenuineIntel')).toBe(false);
    // The Intel model (the default of the library tests) on an AMD host: every entry.
    expect(activeDivergences('AuthenticAMD').length).toBe(Object.keys(DIVERGENCES).length);
    // The AMD model on an AMD host: only what no model implements (the x87 entries).
    expect(activeDivergences('AuthenticAMD', 'AuthenticAMD').map((d) => d.name))
      .toEqual(Object.values(DIVERGENCES).filter((d) => !d.modelled).map((d) => d.name));
    expect(activeDivergences('AuthenticAMD', 'AuthenticAMD').length).toBe(2);
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
