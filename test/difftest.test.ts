// The differential oracle in the test suite: generated cases for every form of the instruction
// table, run on this machine's CPU and in hvlab, must agree exactly (minus undefined flags).
import { describe, it, expect } from 'vitest';
import { difftest, formatMismatch } from '../emu/difftest/compare.ts';
import { allFormKeys } from '../emu/difftest/generate.ts';

describe('hvlab difftest against this machine\'s CPU', () => {
  it('every form, several times, with a fixed seed', async () => {
    const count = allFormKeys().length * 8;
    const r = await difftest({ seed: 20261126, count, keepMismatches: 10 });
    const report = r.mismatches.map(formatMismatch).join('\n');
    expect(r.forms).toBe(allFormKeys().length);
    expect(r.forms).toBeGreaterThanOrEqual(400);
    expect(r.failed, report).toBe(0);
    expect(r.passed).toBe(count);
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
