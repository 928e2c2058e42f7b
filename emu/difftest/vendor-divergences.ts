// The known places where a CPU of one vendor legitimately differs from a hvlab CPU model of the
// other. One table for every oracle that runs on this machine's CPU: the differential tester
// (emu/difftest/compare.ts, `hvlab difftest`), the x87 library test (test/fpu-float80.test.ts) and
// the SSE library test (test/simd-ops.test.ts).
//
// Two kinds of entry. `modelled`: the AMD CPU model implements AMD's behaviour (emu/cpu/models.ts,
// CPUB_*), so the entry only applies when the model under test is Intel's and the host is AMD (the
// library tests, which exercise the Intel functions, and `hvlab difftest --cpu intel` there). Not
// modelled: hvlab follows Intel in every model (the x87 corner cases), so the entry applies on any
// AMD host.
//
// Each entry is scoped as narrowly as the evidence allows, and is not a skip: a case is only counted
// as vendor-specific when the host's result is exactly what the documented behaviour of that vendor
// gives for hvlab's (Intel) result — the difftest entries rewrite the host's outcome into the Intel
// form (`intelEquivalent`) and the rewritten outcome must then agree with hvlab in every compared
// field; the approximation instructions are checked against the architectural error bound instead.
// On an Intel host testing the Intel model every case is still compared bit for bit.
import * as abi from '../../wasm/abi.ts';
import { CODE_ADDR, CODE_OFFSET, DATA_ADDR, DATA_SIZE, fillPattern, type CaseInput, type CaseResult } from './types.ts';
import type { GeneratedCase } from './generate.ts';
import { hostVendor, hostDiffersFromModel, MODELLED_VENDOR, type HostVendor } from './host-vendor.ts';

export interface VendorDivergence {
  name: string;
  /** Host vendors that show it (hvlab follows the modelled vendor, Intel). */
  hosts: readonly HostVendor[];
  /** What differs, citing the manuals. */
  reason: string;
  /** The AMD CPU model implements the host's behaviour (see the header). */
  modelled: boolean;
}

const AMD: readonly HostVendor[] = ['AuthenticAMD'];

export const DIVERGENCES = {
  callNoncanonicalTarget: {
    name: 'call-indirect-noncanonical-target',
    hosts: AMD,
    modelled: true,
    reason: 'CALL near indirect (FF /2) to a non-canonical target: AMD raises #GP(0) before pushing the return ' +
      'address (APM Vol. 3 CALL: the target is checked first), Intel (and hvlab) have stored the return address ' +
      'at RSP-8 when the #GP is taken (RSP itself is unchanged on both).',
  },
  repAddr32CountZero: {
    name: 'rep-string-addr32-ecx-zero',
    hosts: AMD,
    modelled: true,
    reason: 'REP/REPE/REPNE string instruction with 67h (ECX/ESI/EDI) and ECX = 0: Intel writes ECX (and, for ' +
      'MOVS/STOS, ESI/EDI) although no iteration runs, zero-extending them to 64 bits (SDM Vol. 1 3.4.1.1); ' +
      'AMD leaves RCX, RSI and RDI untouched, upper halves included.',
  },
  rcpApproximation: {
    name: 'rcp-rsqrt-approximation',
    hosts: AMD,
    modelled: true,
    reason: 'RCPPS/RCPSS/RSQRTPS/RSQRTSS: the approximation tables are implementation-specific; SDM and APM only ' +
      'bound the relative error by 1.5 * 2^-12 (checked here for both results) and fix the special cases ' +
      '(which must still agree exactly).',
  },
  x87StoreFaultBeforeInvalid: {
    name: 'x87-store-fault-before-unmasked-invalid',
    hosts: AMD,
    modelled: true,
    reason: 'x87 store to a faulting address (#GP non-canonical, #PF) whose conversion raises an unmasked invalid-' +
      'operation, overflow or underflow exception: Intel stores nothing, so there is no memory access and no fault ' +
      '(SDM Vol. 1 8.5.1, 8.5.4, 8.5.5: the unmasked response leaves a memory destination unchanged), records the ' +
      'exception with ES/B and completes; AMD checks the address first and faults with the FPU state unchanged ' +
      '(the AMD model does the same: CPUB_X87_STORE_FAULT_FIRST).',
  },
  x87DenormalPassThrough: {
    name: 'x87-denormal-operand-returned-underflow',
    hosts: AMD,
    modelled: false,
    reason: 'FPREM/FPREM1 with ST(1) = inf and FSCALE with ST(1) = 0 return a denormal ST(0) unchanged: Intel ' +
      'signals only #D; AMD also signals underflow, and with UE unmasked delivers the value normalized with the ' +
      'exponent biased by +24576 (6000h) and sets UE/ES/B (SDM Vol. 1 8.5.4 unmasked underflow response).',
  },
  x87TinyTranscendental: {
    name: 'x87-transcendental-at-smallest-normal',
    hosts: AMD,
    modelled: false,
    reason: 'FSIN/FSINCOS/FPATAN whose result is just below 2^-16382 in magnitude, rounded toward zero: Intel ' +
      'delivers +-2^-16382 (a normal), AMD the next value down, a denormal, with #U (UE; unmasked: exponent biased ' +
      'by +24576 and ES/B). Both are within the 1-ulp accuracy the x87 transcendentals are compared to.',
  },
} as const satisfies Record<string, VendorDivergence>;

/** Whether a divergence is not compared bit for bit on this host (or on `vendor`) when the CPU
 *  model under test is of vendor `model` (default: Intel, the model the library tests exercise). */
export function appliesOnHost(d: VendorDivergence, vendor: HostVendor = hostVendor(), model: HostVendor = MODELLED_VENDOR): boolean {
  if (!d.hosts.includes(vendor)) return false;
  return d.modelled ? model !== vendor : hostDiffersFromModel(vendor);
}

/** The divergences that apply on this host for a model of vendor `model` (none on an Intel host
 *  testing the Intel model; on an AMD host testing the AMD model, the x87 entries). */
export function activeDivergences(vendor: HostVendor = hostVendor(), model: HostVendor = MODELLED_VENDOR): VendorDivergence[] {
  return Object.values(DIVERGENCES).filter((d) => appliesOnHost(d, vendor, model));
}

// ================================================================ RCP / RSQRT: the architectural bound

/** SDM/APM: |relative error| <= 1.5 * 2^-12 for RCPxx and RSQRTxx. */
export const RCP_REL_ERROR = 1.5 * 2 ** -12;
const F32_MIN_NORMAL = 2 ** -126;

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
function bitsToF32(b: number): number { u32[0] = b >>> 0; return f32[0]; }

/**
 * Whether `res` (bits) is an architecturally valid RCPSS (kind 'rcp') or RSQRTSS ('rsqrt') result
 * for the single-precision input `src` (bits), per the SDM: a zero or denormal input (treated as a
 * zero of the same sign) gives an infinity of that sign; +-inf gives +-0 for RCP, +0 for RSQRT
 * (-inf is invalid: the QNaN indefinite); an SNaN is quieted, a QNaN returned; RSQRT of a negative
 * non-zero gives the QNaN indefinite; a tiny RCP result is flushed to a zero of the input's sign.
 * Any other result must be a normal of the right sign within RCP_REL_ERROR of the exact value.
 */
export function approxResultValid(kind: 'rcp' | 'rsqrt', src: number, res: number): boolean {
  src >>>= 0; res >>>= 0;
  const sign = (src & 0x80000000) >>> 0, exp = (src >>> 23) & 0xff, frac = src & 0x7fffff;
  if (exp === 0xff && frac) return res === (src | 0x400000) >>> 0; // NaN: quieted or returned
  if (exp === 0) return res === (sign | 0x7f800000) >>> 0; // +-0 and denormals -> +-inf
  if (exp === 0xff) {
    if (kind === 'rcp') return res === sign; // 1/+-inf = +-0
    return res === (sign ? 0xffc00000 : 0);
  }
  if (kind === 'rsqrt' && sign) return res === 0xffc00000;
  const x = bitsToF32(src);
  const exact = kind === 'rcp' ? 1 / x : 1 / Math.sqrt(x);
  const rExp = (res >>> 23) & 0xff;
  if ((res & 0x80000000) >>> 0 !== sign) return false;
  // RCP of |x| >= 2^126 is tiny or at the normal boundary: flushed to zero (allowed where the exact
  // value is within the error bound of the tiny range).
  if (rExp === 0) return (res & 0x7fffff) === 0 && Math.abs(exact) < F32_MIN_NORMAL * (1 + RCP_REL_ERROR);
  if (rExp === 0xff) return false;
  return Math.abs(bitsToF32(res) - exact) <= RCP_REL_ERROR * Math.abs(exact);
}

/** `results` and `sources` lane by lane (32-bit words): each lane where the two results differ must
 *  be valid on both sides. Lanes that agree are not re-checked here. */
export function approxLanesExplained(kind: 'rcp' | 'rsqrt', src: number[], host: number[], model: number[]): boolean {
  return src.every((s, i) => host[i] === model[i] || (approxResultValid(kind, s, host[i]) && approxResultValid(kind, s, model[i])));
}

// ================================================================ x87: 80-bit results

export type X87Op = 'fprem' | 'fprem1' | 'fscale' | 'fsin' | 'fsincos' | 'fpatan';
/** An x87 operation's inputs: FCW and ST(0), ST(1) before it (80-bit values as bigints). */
export interface X87Case { op: X87Op; fcw: number; st0: bigint; st1: bigint }
/** ST(0), ST(1) and FSW after the operation. */
export interface X87Outcome { st: [bigint, bigint]; fsw: number }

const FSW_IE = 0x01, FSW_OE = 0x08, FSW_UE = 0x10, FSW_PE = 0x20, FSW_SF = 0x40, FSW_ES = 0x80, FSW_C1 = 0x200, FSW_B = 0x8000;
const FCW_UM = 0x10;
const SIGN80 = 1n << 79n;
const EXP80 = (v: bigint) => Number((v >> 64n) & 0x7fffn);
const MANT80 = (v: bigint) => v & 0xffffffffffffffffn;
const mk80 = (sign: bigint, exp: number, mant: bigint) => sign | (BigInt(exp) << 64n) | mant;
/** The unmasked-underflow bias of the exponent (SDM Vol. 1 8.5.4). */
const UNDERFLOW_BIAS = 0x6000;

function isDenormal(v: bigint): boolean { return EXP80(v) === 0 && MANT80(v) !== 0n && MANT80(v) >> 63n === 0n; }
function isInf(v: bigint): boolean { return EXP80(v) === 0x7fff && MANT80(v) === 1n << 63n; }
function isZero(v: bigint): boolean { return EXP80(v) === 0 && MANT80(v) === 0n; }

/** A denormal normalized, with the unmasked-underflow exponent bias. */
function biasedNormal(v: bigint): bigint {
  const m = MANT80(v);
  const shift = 64 - m.toString(2).length;
  return mk80(v & SIGN80, 1 - shift + UNDERFLOW_BIAS, m << BigInt(shift));
}

/** RC rounds toward zero for a result of this sign (chop, down for +, up for -). */
function roundsTowardZero(fcw: number, negative: boolean): boolean {
  const rc = (fcw >> 10) & 3;
  return rc === 3 || (rc === 1 && !negative) || (rc === 2 && negative);
}

/**
 * When the host's outcome of an x87 operation is exactly the other vendor's documented form of
 * hvlab's (Intel) outcome (DIVERGENCES.x87DenormalPassThrough / x87TinyTranscendental), the host's
 * outcome rewritten into the Intel form, to be compared with hvlab's by the caller's usual rules;
 * otherwise null. Does not look at the host vendor (see appliesOnHost).
 */
export function x87IntelEquivalent(k: X87Case, host: X87Outcome, model: X87Outcome): { divergence: VendorDivergence; outcome: X87Outcome } | null {
  const unmaskedUe = (k.fcw & FCW_UM) === 0;
  if (k.op === 'fprem' || k.op === 'fprem1' || k.op === 'fscale') {
    const passThrough = k.op === 'fscale' ? isZero(k.st1) : isInf(k.st1);
    if (!passThrough || !isDenormal(k.st0) || !unmaskedUe) return null;
    if (model.st[0] !== k.st0 || host.st[0] !== biasedNormal(k.st0)) return null;
    if (host.fsw !== (model.fsw | FSW_UE | FSW_ES | FSW_B)) return null;
    return { divergence: DIVERGENCES.x87DenormalPassThrough, outcome: { st: [model.st[0], host.st[1]], fsw: model.fsw } };
  }
  // fsin: ST(0); fsincos: ST(1) = sin (ST(0) = cos); fpatan: ST(0) after the pop.
  const r = k.op === 'fsincos' ? 1 : 0;
  const v = model.st[r], sign = v & SIGN80;
  if (v !== mk80(sign, 1, 1n << 63n) || !roundsTowardZero(k.fcw, sign !== 0n)) return null;
  const ones = (1n << 64n) - 1n;
  const want = unmaskedUe ? mk80(sign, UNDERFLOW_BIAS, ones) : mk80(sign, 0, ones >> 1n);
  const fswWant = model.fsw | FSW_UE | (unmaskedUe ? FSW_ES | FSW_B : 0);
  if (host.st[r] !== want || (host.fsw & ~FSW_C1) !== (fswWant & ~FSW_C1)) return null;
  const st: [bigint, bigint] = [host.st[0], host.st[1]];
  st[r] = v;
  return { divergence: DIVERGENCES.x87TinyTranscendental, outcome: { st, fsw: (model.fsw & ~FSW_C1) | (host.fsw & FSW_C1) } };
}

// ================================================================ the differential tester

/** What a difftest entry may ask of the emulator: run another case in hvlab. */
export interface DifftestEnv { emulate(c: CaseInput): CaseResult }

export interface DifftestDivergence {
  divergence: VendorDivergence;
  /** The host's result rewritten into the Intel form, when this case shows exactly this
   *  divergence; null otherwise. The caller then requires it to agree with hvlab's result. */
  intelEquivalent(c: GeneratedCase, native: CaseResult, emulated: CaseResult, env: DifftestEnv): CaseResult | null;
}

const INSN = BigInt(CODE_ADDR + CODE_OFFSET);
const LEGACY_PREFIXES = new Set([0x66, 0x67, 0xf0, 0xf2, 0xf3, 0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65]);

/** Legacy prefixes, REX (or 0) and the index of the first opcode byte. */
function splitPrefixes(code: Uint8Array): { prefixes: number[]; rex: number; at: number } {
  const prefixes: number[] = [];
  let i = 0, rex = 0;
  for (; i < code.length; i++) {
    const b = code[i];
    if (LEGACY_PREFIXES.has(b)) { prefixes.push(b); rex = 0; continue; }
    if ((b & 0xf0) === 0x40) { rex = b; continue; }
    break;
  }
  return { prefixes, rex, at: i };
}

const u16At = (img: Uint8Array, off: number) => img[off] | (img[off + 1] << 8);
function u32Lanes(img: Uint8Array, off: number): number[] {
  const v = new DataView(img.buffer, img.byteOffset, img.byteLength);
  return [0, 1, 2, 3].map((k) => v.getUint32(off + 4 * k, true));
}
function f80At(img: Uint8Array, off: number): bigint {
  let v = 0n;
  for (let i = 9; i >= 0; i--) v = (v << 8n) | BigInt(img[off + i]);
  return v;
}
function putF80(img: Uint8Array, off: number, v: bigint): void {
  for (let i = 0; i < 10; i++) img[off + i] = Number((v >> BigInt(8 * i)) & 0xffn);
}
function putU16(img: Uint8Array, off: number, v: number): void { img[off] = v & 0xff; img[off + 1] = (v >> 8) & 0xff; }

const callNoncanonical: DifftestDivergence = {
  divergence: DIVERGENCES.callNoncanonicalTarget,
  intelEquivalent(c, n, e) {
    if (c.form.mn !== 'call' || c.form.op !== 0xff || c.form.ext !== 2) return null;
    // Both fault at the CALL itself: the memory operand was readable (else neither pushes) and the
    // target is not a canonical address (a canonical one would fault at the target, after the call).
    if (n.outcome !== 'SEGV' || e.outcome !== 'SEGV' || n.rip !== INSN || e.rip !== INSN) return null;
    const slot = Number(c.regs[4] - 8n - BigInt(DATA_ADDR));
    if (!Number.isSafeInteger(slot) || slot < 0 || slot + 8 > DATA_SIZE) return null;
    if (n.dataDiff.some(([o]) => o >= slot && o < slot + 8)) return null;
    const pattern = new Uint8Array(DATA_SIZE);
    fillPattern(c.dataSeed, pattern);
    const ret = INSN + BigInt(c.code.length);
    const pushed: [number, number][] = [];
    for (let k = 0; k < 8; k++) {
      const b = Number((ret >> BigInt(8 * k)) & 0xffn);
      if (b !== pattern[slot + k]) pushed.push([slot + k, b]);
    }
    return { ...n, dataDiff: [...n.dataDiff, ...pushed].sort((a, b) => a[0] - b[0]) };
  },
};

const STRING_USES: Record<string, { si: boolean; di: boolean }> = {
  movs: { si: true, di: true }, cmps: { si: true, di: true }, lods: { si: true, di: false },
  stos: { si: false, di: true }, scas: { si: false, di: true },
};

const repAddr32CountZero: DifftestDivergence = {
  divergence: DIVERGENCES.repAddr32CountZero,
  intelEquivalent(c, n, e) {
    const uses = STRING_USES[c.form.mn];
    if (!uses) return null;
    const { prefixes } = splitPrefixes(c.code);
    if (!prefixes.includes(0x67) || !(prefixes.includes(0xf3) || prefixes.includes(0xf2))) return null;
    if ((c.regs[1] & 0xffffffffn) !== 0n) return null;
    const regs = n.regs.slice();
    const regsUsed = [1, ...(uses.si ? [6] : []), ...(uses.di ? [7] : [])];
    // Only undo the missing zero-extension: the host kept the input value where Intel (hvlab)
    // wrote its low half, zero-extended.
    for (const r of regsUsed) {
      const low = c.regs[r] & 0xffffffffn;
      if (n.regs[r] === c.regs[r] && e.regs[r] === low) regs[r] = low;
    }
    return { ...n, regs };
  },
};

const rcpApproximation: DifftestDivergence = {
  divergence: DIVERGENCES.rcpApproximation,
  intelEquivalent(c, n, e, env) {
    const kind = c.form.mn.startsWith('rcp') ? 'rcp' : c.form.mn.startsWith('rsqrt') ? 'rsqrt' : null;
    if (!kind || !n.fpu || !e.fpu || n.outcome !== 'trap' || e.outcome !== 'trap') return null;
    const { rex, at } = splitPrefixes(c.code);
    if (c.code[at] !== 0x0f || (c.code[at + 1] !== 0x52 && c.code[at + 1] !== 0x53)) return null;
    const dest = ((c.code[at + 2] >> 3) & 7) | (rex & 4 ? 8 : 0);
    const lanes = c.form.mn.endsWith('ss') ? 1 : 4;
    // The source operand, read by hvlab running MOVUPS / MOVSS (0F 10) with the same prefixes and
    // operand bytes: lane 0 (..3) of the destination is then the source lane 0 (..3).
    const load = c.code.slice();
    load[at + 1] = 0x10;
    const s = env.emulate({ ...c, code: load });
    if (s.outcome !== 'trap' || !s.fpu) return null;
    const off = abi.FX_XMM0 + 16 * dest;
    const src = u32Lanes(s.fpu, off).slice(0, lanes);
    const host = u32Lanes(n.fpu, off), model = u32Lanes(e.fpu, off);
    if (!approxLanesExplained(kind, src, host.slice(0, lanes), model.slice(0, lanes))) return null;
    const fpu = n.fpu.slice();
    fpu.set(e.fpu.subarray(off, off + 4 * lanes), off); // the explained lanes; the rest is compared
    return { ...n, fpu };
  },
};

const X87_STORES = new Set(['fst', 'fstp', 'fist', 'fistp', 'fisttp', 'fbstp']);

const x87StoreFault: DifftestDivergence = {
  divergence: DIVERGENCES.x87StoreFaultBeforeInvalid,
  intelEquivalent(c, n, e) {
    if (!X87_STORES.has(c.form.mn) || !c.fpu || !n.fpu || !e.fpu) return null;
    if (n.outcome !== 'SEGV' || n.rip !== INSN || e.outcome !== 'trap' || e.dataDiff.length) return null;
    const fcw = u16At(c.fpu, abi.FX_FCW), fswIn = u16At(c.fpu, abi.FX_FSW), fswE = u16At(e.fpu, abi.FX_FSW);
    if (u16At(n.fpu, abi.FX_FSW) !== fswIn) return null;
    // hvlab raised an unmasked exception that suppresses the store (IE, with SF for an empty ST(0);
    // OE; UE; with PE beside OE/UE) and nothing else.
    const raised = fswE & 0x7f & ~fswIn;
    if (!(raised & ~fcw & (FSW_IE | FSW_OE | FSW_UE)) || raised & ~(FSW_IE | FSW_SF | FSW_OE | FSW_UE | FSW_PE)) return null;
    if ((fswE & (FSW_ES | FSW_B)) !== (FSW_ES | FSW_B)) return null;
    const fpu = n.fpu.slice();
    putU16(fpu, abi.FX_FSW, fswE);
    if (e.rip !== INSN + BigInt(c.code.length) + 1n) return null; // completed, stopped at the INT3
    return { ...n, outcome: 'trap', rip: e.rip, fpu };
  },
};

const X87_OPS: Record<string, X87Op> = { fprem: 'fprem', fprem1: 'fprem1', fscale: 'fscale', fsin: 'fsin', fsincos: 'fsincos', fpatan: 'fpatan' };

/** The x87 entries on FXSAVE images (slots are in stack order: slot i = ST(i)). */
function x87Image(which: VendorDivergence): DifftestDivergence {
  return {
    divergence: which,
    intelEquivalent(c, n, e) {
      const op = X87_OPS[c.form.mn];
      if (!op || !c.fpu || !n.fpu || !e.fpu || n.outcome !== 'trap' || e.outcome !== 'trap') return null;
      const st = (img: Uint8Array): [bigint, bigint] => [f80At(img, abi.FX_ST0), f80At(img, abi.FX_ST0 + 16)];
      const k: X87Case = { op, fcw: u16At(c.fpu, abi.FX_FCW), st0: st(c.fpu)[0], st1: st(c.fpu)[1] };
      const r = x87IntelEquivalent(k, { st: st(n.fpu), fsw: u16At(n.fpu, abi.FX_FSW) }, { st: st(e.fpu), fsw: u16At(e.fpu, abi.FX_FSW) });
      if (!r || r.divergence !== which) return null;
      const fpu = n.fpu.slice();
      putF80(fpu, abi.FX_ST0, r.outcome.st[0]);
      putF80(fpu, abi.FX_ST0 + 16, r.outcome.st[1]);
      putU16(fpu, abi.FX_FSW, r.outcome.fsw);
      return { ...n, fpu };
    },
  };
}

/** Every difftest entry of the table. */
export const DIFFTEST_DIVERGENCES: readonly DifftestDivergence[] = [
  callNoncanonical, repAddr32CountZero, rcpApproximation, x87StoreFault,
  x87Image(DIVERGENCES.x87DenormalPassThrough), x87Image(DIVERGENCES.x87TinyTranscendental),
];
