// `hvlab difftest`: the same generated cases on this machine's CPU and in hvlab's core, compared
// register by register, flag by flag (minus the flags the manual leaves undefined), and byte by byte
// over the data region.
//
// Cases with an FPU image (x87/MMX/SSE forms) also compare the resulting FXSAVE images field by
// field: XMM0-15 (all 128 bits), MXCSR (all 32 bits), FCW, FSW (minus the condition codes the form
// declares undefined: GeneratedCase.fswMask), the abridged FTW, and the 80 bits of each ST(i) that
// is valid on either side. ST(i) is FXSAVE slot i (stack order, SDM Vol. 1 Table 10-2): its tag is
// FTW bit (TOP + i) & 7, since the tag word is indexed by physical register. Not compared: FOP,
// FIP, FDP (and FCS/FDS), which differ by design (hvlab need not track the host's last x87
// instruction and operand pointers), MXCSR_MASK (a host property), the reserved bytes of the ST
// slots and of the image tail (416..511, where the kernel keeps its own signal-frame data).
import * as abi from '../../wasm/abi.ts';
import { REG_NAMES, type CaseInput, type CaseResult } from './types.ts';
import { generateCases, type GeneratedCase } from './generate.ts';
import { runNativeBatch, ensureNativeRunner } from './native.ts';
import { EmulatedRunner } from './emulated.ts';
import { hostVendor, vendorName, type HostVendor } from './host-vendor.ts';
import { defaultCpuModel, resolveCpuModel, type CpuModel } from '../cpu/models.ts';
import { DIFFTEST_DIVERGENCES, appliesOnHost, type DifftestEnv, type VendorDivergence } from './vendor-divergences.ts';

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
  const ignore = c.dataIgnore ?? [];
  const kept = ([o]: [number, number]) => !ignore.some(([a, b]) => o >= a && o < b);
  const nd = n.dataDiff.filter(kept).map(([o, v]) => `${o}=${v}`).join(' ');
  const ed = e.dataDiff.filter(kept).map(([o, v]) => `${o}=${v}`).join(' ');
  if (nd !== ed) out.push(`data: native [${nd}], hvlab [${ed}]`);
  if (c.fpu) {
    if (!n.fpu || !e.fpu) out.push(`fpu image: native ${n.fpu ? 'present' : 'missing'}, hvlab ${e.fpu ? 'present' : 'missing'}`);
    else {
      // The x87 transcendentals are required to be within one ulp of the host (issue: "The system
      // CPU"): their results may differ by one unit in the last place, and C1 (round-up) with them.
      const tolerant = TRANSCENDENTALS.has(c.form.mn);
      out.push(...fpuDifferences(n.fpu, e.fpu, (c.fswMask ?? 0xffff) & (tolerant ? ~FSW_C1 : 0xffff), tolerant));
    }
  }
  return out;
}

// ---- FXSAVE images

const FSW_C1 = 0x200;
/** x87 instructions whose results are compared within one ulp rather than bit for bit. */
export const TRANSCENDENTALS = new Set(['f2xm1', 'fyl2x', 'fyl2xp1', 'fptan', 'fpatan', 'fsin', 'fcos', 'fsincos']);

/** Two 80-bit values of the same sign at most one unit in the last place apart (denormals and
 *  normals are ordered by exponent, then significand without its explicit integer bit). */
export function withinOneUlp(a: bigint, b: bigint): boolean {
  if (a === b) return true;
  if ((a >> 79n) !== (b >> 79n)) return false;
  const ord = (v: bigint) => {
    const exp = (v >> 64n) & 0x7fffn;
    if (exp === 0x7fffn) return -1n; // infinities and NaNs must match exactly
    return exp * (1n << 63n) + (v & 0x7fffffffffffffffn);
  };
  const oa = ord(a), ob = ord(b);
  if (oa < 0n || ob < 0n) return false;
  const d = oa > ob ? oa - ob : ob - oa;
  return d <= 1n;
}

const hexN = (v: bigint, digits: number) => '0x' + v.toString(16).padStart(digits, '0');

/** Little-endian unsigned integer of `n` bytes at `off`. */
function le(img: Uint8Array, off: number, n: number): bigint {
  let v = 0n;
  for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(img[off + i]);
  return v;
}

/** An 80-bit extended value as text: 1.5, -inf, qnan, snan, denormal, unnormal... (approximate). */
export function describeX87(v: bigint): string {
  const sign = (v >> 79n) & 1n ? '-' : '';
  const exp = Number((v >> 64n) & 0x7fffn);
  const mant = v & 0xffffffffffffffffn;
  const int = mant >> 63n;
  if (exp === 0x7fff) {
    if (!int) return 'unsupported';
    const frac = mant & 0x7fffffffffffffffn;
    if (frac === 0n) return `${sign}inf`;
    return `${sign}${frac >> 62n ? 'qnan' : 'snan'}`;
  }
  if (exp === 0 && mant === 0n) return `${sign}0`;
  if (exp !== 0 && !int) return 'unnormal';
  const x = Number(mant) * 2 ** (Math.max(exp, 1) - 16383 - 63);
  return `${sign}${x.toPrecision(17)}${exp === 0 ? ' (denormal)' : ''}`;
}

/** Readable differences between two FXSAVE images (see the header for what is compared). */
export function fpuDifferences(n: Uint8Array, e: Uint8Array, fswMask: number, oneUlp = false): string[] {
  const out: string[] = [];
  const u16 = (img: Uint8Array, off: number) => img[off] | (img[off + 1] << 8);
  const fcwN = u16(n, abi.FX_FCW), fcwE = u16(e, abi.FX_FCW);
  if (fcwN !== fcwE) out.push(`fcw: native ${hexN(BigInt(fcwN), 4)}, hvlab ${hexN(BigInt(fcwE), 4)}`);
  const fswN = u16(n, abi.FX_FSW), fswE = u16(e, abi.FX_FSW);
  if ((fswN & fswMask) !== (fswE & fswMask)) {
    const m = fswMask === 0xffff ? '' : ` (mask ${hexN(BigInt(fswMask), 4)})`;
    out.push(`fsw${m}: native ${hexN(BigInt(fswN & fswMask), 4)}, hvlab ${hexN(BigInt(fswE & fswMask), 4)}`);
  }
  const ftwN = n[abi.FX_FTW], ftwE = e[abi.FX_FTW];
  if (ftwN !== ftwE) out.push(`ftw: native ${hexN(BigInt(ftwN), 2)}, hvlab ${hexN(BigInt(ftwE), 2)}`);
  const mxN = le(n, abi.FX_MXCSR, 4), mxE = le(e, abi.FX_MXCSR, 4);
  if (mxN !== mxE) out.push(`mxcsr: native ${hexN(mxN, 4)}, hvlab ${hexN(mxE, 4)}`);
  const topN = (fswN >> 11) & 7, topE = (fswE >> 11) & 7;
  for (let i = 0; i < 8; i++) {
    const validN = (ftwN >> ((topN + i) & 7)) & 1, validE = (ftwE >> ((topE + i) & 7)) & 1;
    if (!validN && !validE) continue;
    const a = le(n, abi.FX_ST0 + 16 * i, 10), b = le(e, abi.FX_ST0 + 16 * i, 10);
    if (validN !== validE || (a !== b && !(oneUlp && withinOneUlp(a, b)))) {
      const show = (v: bigint, valid: number) => (valid ? `${hexN(v, 20)} (${describeX87(v)})` : `empty`);
      out.push(`st${i}: native ${show(a, validN)}, hvlab ${show(b, validE)}`);
    }
  }
  for (let i = 0; i < 16; i++) {
    const a = le(n, abi.FX_XMM0 + 16 * i, 16), b = le(e, abi.FX_XMM0 + 16 * i, 16);
    if (a !== b) out.push(`xmm${i}: native ${hexN(a, 32)}, hvlab ${hexN(b, 32)}`);
  }
  return out;
}

/** The registers of an FPU image worth printing: control words, valid ST(i), non-zero XMM. */
export function describeFpu(img: Uint8Array): string {
  const u16 = (off: number) => img[off] | (img[off + 1] << 8);
  const fsw = u16(abi.FX_FSW), ftw = img[abi.FX_FTW], top = (fsw >> 11) & 7;
  const parts = [`fcw=${hex(BigInt(u16(abi.FX_FCW)))}`, `fsw=${hex(BigInt(fsw))}`, `ftw=${hex(BigInt(ftw))}`,
    `mxcsr=${hex(le(img, abi.FX_MXCSR, 4))}`];
  for (let i = 0; i < 8; i++) {
    const v = le(img, abi.FX_ST0 + 16 * i, 10);
    if ((ftw >> ((top + i) & 7)) & 1) parts.push(`st${i}=${hexN(v, 20)}(${describeX87(v)})`);
    else if (v !== 0n) parts.push(`[st${i}]=${hexN(v, 20)}`); // empty, but MMX reads it
  }
  for (let i = 0; i < 16; i++) {
    const v = le(img, abi.FX_XMM0 + 16 * i, 16);
    if (v !== 0n) parts.push(`xmm${i}=${hexN(v, 32)}`);
  }
  return parts.join(' ');
}

export function describeInputs(c: CaseInput): string {
  const regs = c.regs.map((r, i) => `${REG_NAMES[i]}=${hex(r)}`).join(' ');
  const fpu = c.fpu ? `\n  fpu: ${describeFpu(c.fpu)}` : '';
  return `${regs} rflags=${hex(c.rflags)} dataSeed=${c.dataSeed}${fpu}`;
}

/**
 * The known vendor divergence (emu/difftest/vendor-divergences.ts) a mismatching case shows, or
 * null: only for an entry that applies to this host and the vendor of the model under test
 * (`model`), and only when the host's result, rewritten into the Intel form by that entry, agrees
 * with hvlab's in every compared field.
 */
export function vendorDivergenceOf(c: GeneratedCase, n: CaseResult, e: CaseResult, env: DifftestEnv,
  vendor: HostVendor = hostVendor(), model: HostVendor = 'GenuineIntel'): VendorDivergence | null {
  for (const d of DIFFTEST_DIVERGENCES) {
    if (!appliesOnHost(d.divergence, vendor, model)) continue;
    const intel = d.intelEquivalent(c, n, e, env);
    if (intel && differences(c, intel, e).length === 0) return d.divergence;
  }
  return null;
}

export interface DifftestSummary {
  passed: number;
  /** Mismatches that are not a known vendor divergence. */
  failed: number;
  /** Mismatches that are a known divergence of this host's vendor from the model under test (the
   *  behaviour no model implements, or all of them with `cpu` set to the other vendor): not
   *  compared bit for bit on this host (always 0 on an Intel host testing the Intel model). */
  vendorSpecific: number;
  /** vendorSpecific by divergence name. */
  vendorSpecificBy: Record<string, number>;
  hostVendor: HostVendor;
  /** The CPU model the cases ran on in hvlab. */
  model: CpuModel;
  forms: number;
  mismatches: Mismatch[];
  nativeSeconds: number;
  emulatedSeconds: number;
}

/**
 * Run `count` generated cases on this machine's CPU and in hvlab. `cpu`: the CPU model hvlab runs
 * them on (`intel`, `amd`); by default the process's default model, which is the host's vendor
 * (emu/cpu/models.ts defaultCpuModel), so every behaviour the models implement is compared bit for
 * bit against this CPU.
 */
export async function difftest(opts: { seed: number; count: number; only?: string[]; keepMismatches?: number; cpu?: string }): Promise<DifftestSummary> {
  const model = opts.cpu ? resolveCpuModel(opts.cpu) : defaultCpuModel();
  ensureNativeRunner();
  const cases = generateCases({ seed: opts.seed, count: opts.count, only: opts.only });
  let t = performance.now();
  const native = await runNativeBatch(cases);
  const nativeSeconds = (performance.now() - t) / 1000;
  const runner = new EmulatedRunner(model);
  t = performance.now();
  const emulated = cases.map((c) => runner.run(c));
  const emulatedSeconds = (performance.now() - t) / 1000;
  const forms = new Set<string>();
  const mismatches: Mismatch[] = [];
  const vendor = hostVendor();
  const env: DifftestEnv = { emulate: (x) => runner.run(x) };
  let failed = 0, vendorSpecific = 0;
  const vendorSpecificBy: Record<string, number> = {};
  cases.forEach((c, i) => {
    forms.add(c.formKey);
    const d = differences(c, native[i], emulated[i]);
    if (d.length) {
      const v = vendorDivergenceOf(c, native[i], emulated[i], env, vendor, model.vendor);
      if (v) {
        vendorSpecific++;
        vendorSpecificBy[v.name] = (vendorSpecificBy[v.name] ?? 0) + 1;
        return;
      }
      failed++;
      if (mismatches.length < (opts.keepMismatches ?? 50)) {
        mismatches.push({ testCase: c, native: native[i], emulated: emulated[i], differences: d });
      }
    }
  });
  return {
    passed: cases.length - failed - vendorSpecific, failed, vendorSpecific, vendorSpecificBy, hostVendor: vendor, model,
    forms: forms.size, mismatches, nativeSeconds, emulatedSeconds,
  };
}

/** The summary lines of a run: the CPU model tested and the host's vendor, the vendor-specific
 *  cases when there are any ("vendor-specific: N (not compared on this AMD host)" and their
 *  divergences), and "N passed, N failed" last. */
export function formatSummary(r: DifftestSummary): string[] {
  const out: string[] = [`cpu model: ${r.model.name} (${r.model.description}); host: ${vendorName(r.hostVendor)}`];
  if (r.vendorSpecific) {
    const by = Object.entries(r.vendorSpecificBy).map(([k, v]) => `${k} ${v}`).join(', ');
    out.push(`vendor-specific: ${r.vendorSpecific} (not compared on this ${vendorName(r.hostVendor)} host): ${by}`);
  }
  out.push(`${r.passed} passed, ${r.failed} failed`);
  return out;
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
