// `hvlab difftest`: the same generated cases on this machine's CPU and in hvlab's core, compared
// register by register, flag by flag (minus the flags the manual leaves undefined), and byte by byte
// over the data region.
import { REG_NAMES, type CaseInput, type CaseResult } from './types.ts';
import { generateCases, type GeneratedCase } from './generate.ts';
import { runNativeBatch, ensureNativeRunner } from './native.ts';
import { EmulatedRunner } from './emulated.ts';

export interface Mismatch {
  testCase: GeneratedCase;
  native: CaseResult;
  emulated: CaseResult;
  differences: string[];
}

const hex = (v: bigint) => '0x' + v.toString(16);

/** The differences between two outcomes of a case, as readable lines (empty when they agree). */
export function differences(c: GeneratedCase, n: CaseResult, e: CaseResult): string[] {
  const out: string[] = [];
  if (n.outcome !== e.outcome) out.push(`outcome: native ${n.outcome}, hvlab ${e.outcome}`);
  if (n.rip !== e.rip) out.push(`rip: native ${hex(n.rip)}, hvlab ${hex(e.rip)}`);
  for (let i = 0; i < 16; i++) {
    if (n.regs[i] !== e.regs[i]) out.push(`${REG_NAMES[i]}: native ${hex(n.regs[i])}, hvlab ${hex(e.regs[i])}`);
  }
  const mask = c.flagsMask;
  if ((n.rflags & mask) !== (e.rflags & mask)) {
    out.push(`rflags (mask ${hex(mask)}): native ${hex(n.rflags & mask)}, hvlab ${hex(e.rflags & mask)}`);
  }
  const nd = n.dataDiff.map(([o, v]) => `${o}=${v}`).join(' ');
  const ed = e.dataDiff.map(([o, v]) => `${o}=${v}`).join(' ');
  if (nd !== ed) out.push(`data: native [${nd}], hvlab [${ed}]`);
  return out;
}

export function describeInputs(c: CaseInput): string {
  const regs = c.regs.map((r, i) => `${REG_NAMES[i]}=${hex(r)}`).join(' ');
  return `${regs} rflags=${hex(c.rflags)} dataSeed=${c.dataSeed}`;
}

export interface DifftestSummary {
  passed: number;
  failed: number;
  forms: number;
  mismatches: Mismatch[];
  nativeSeconds: number;
  emulatedSeconds: number;
}

export async function difftest(opts: { seed: number; count: number; only?: string[]; keepMismatches?: number }): Promise<DifftestSummary> {
  ensureNativeRunner();
  const cases = generateCases({ seed: opts.seed, count: opts.count, only: opts.only });
  let t = performance.now();
  const native = await runNativeBatch(cases);
  const nativeSeconds = (performance.now() - t) / 1000;
  const runner = new EmulatedRunner();
  t = performance.now();
  const emulated = cases.map((c) => runner.run(c));
  const emulatedSeconds = (performance.now() - t) / 1000;
  const forms = new Set<string>();
  const mismatches: Mismatch[] = [];
  let failed = 0;
  cases.forEach((c, i) => {
    forms.add(c.formKey);
    const d = differences(c, native[i], emulated[i]);
    if (d.length) {
      failed++;
      if (mismatches.length < (opts.keepMismatches ?? 50)) {
        mismatches.push({ testCase: c, native: native[i], emulated: emulated[i], differences: d });
      }
    }
  });
  return { passed: cases.length - failed, failed, forms: forms.size, mismatches, nativeSeconds, emulatedSeconds };
}

export function formatMismatch(m: Mismatch): string {
  const bytes = Array.from(m.testCase.code, (b) => b.toString(16).padStart(2, '0')).join(' ');
  return [
    `FAIL ${m.testCase.description}`,
    `  bytes: ${bytes}  form: ${m.testCase.formKey}`,
    `  inputs: ${describeInputs(m.testCase)}`,
    ...m.differences.map((d) => `  ${d}`),
  ].join('\n');
}
