// Harness for the float80 library tests: builds the AssemblyScript test module and the x87
// reference program, generates case records, runs them on both sides and compares the results.
// Record layouts are documented in test/fpu/x87ref.c; wasm/cpu/fpu/test-entry.ts mirrors them.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { appliesOnHost, x87IntelEquivalent, type VendorDivergence, type X87Case, type X87Op } from '../../emu/difftest/vendor-divergences.ts';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const OUT_DIR = join(ROOT, 'build', 'fpu');
export const REF_BIN = join(OUT_DIR, 'x87ref');
export const WASM_FILE = join(OUT_DIR, 'float80.wasm');

export const OP = {
  ADD: 1, SUB: 2, MUL: 3, DIV: 4, SQRT: 5, PREM: 6, PREM1: 7, RNDINT: 8, SCALE: 9, XTRACT: 10,
  COM: 11, UCOM: 12, LD32: 13, LD64: 14, ST32: 15, ST64: 16, ILD16: 17, ILD32: 18, ILD64: 19,
  IST16: 20, IST32: 21, IST64: 22, ISTT16: 23, ISTT32: 24, ISTT64: 25, BLD: 26, BSTP: 27,
  F2XM1: 28, YL2X: 29, YL2XP1: 30, PTAN: 31, PATAN: 32, SIN: 33, COS: 34, SINCOS: 35, LDPI: 36,
  LDL2E: 37, LDL2T: 38, LDLG2: 39, LDLN2: 40, XAM: 41, TST: 42, LD80: 43, ST80: 44,
} as const;
export type OpName = keyof typeof OP;
export const OP_NAME: Record<number, string> = Object.fromEntries(Object.entries(OP).map(([k, v]) => [v, k]));

export const REC = 32;

/** Builds build/fpu/x87ref (gcc) and build/fpu/float80.wasm (asc, programmatic API). */
export async function buildAll(): Promise<void> {
  mkdirSync(OUT_DIR, { recursive: true });
  execFileSync('gcc', ['-O2', '-Wall', '-o', REF_BIN, join(ROOT, 'test', 'fpu', 'x87ref.c')], { stdio: 'inherit' });
  const asc = (await import('assemblyscript/asc')).default;
  let errText = '';
  const { error } = await asc.main(['--config', join(ROOT, 'test', 'fpu', 'asconfig.json'), '--target', 'release'], {
    stdout: { write: (s: string | Uint8Array) => { errText += String(s); return true; } },
    stderr: { write: (s: string | Uint8Array) => { errText += String(s); return true; } },
  } as never);
  if (error) throw new Error(`asc failed: ${error.message}\n${errText}`);
}

export interface Wasm {
  mem: WebAssembly.Memory;
  runBatch(inp: number, out: number, n: number): void;
  bench(op: number, a: number, b: number, dst: number, n: number, reps: number, cw: number): number;
}

export async function loadWasm(): Promise<Wasm> {
  const mem = new WebAssembly.Memory({ initial: 64, maximum: 65536 });
  const mod = await WebAssembly.compile(readFileSync(WASM_FILE));
  const inst = await WebAssembly.instantiate(mod, { env: { memory: mem } });
  const ex = inst.exports as unknown as Omit<Wasm, 'mem'>;
  return { mem, runBatch: ex.runBatch, bench: ex.bench };
}

// ---- case records ---------------------------------------------------------------------------------

/** An 80-bit value as (significand hi 32, lo 32, sign|exponent). */
export interface F80 { hi: number; lo: number; se: number }

export class Cases {
  buf: Uint8Array;
  view: DataView;
  n = 0;
  constructor(cap = 1 << 16) {
    this.buf = new Uint8Array(cap * REC);
    this.view = new DataView(this.buf.buffer);
  }
  private grow(): void {
    const nb = new Uint8Array(this.buf.length * 2);
    nb.set(this.buf);
    this.buf = nb;
    this.view = new DataView(nb.buffer);
  }
  /** Adds a case; a and b are 80-bit values or raw bytes (loads from memory read a's bytes). */
  add(op: number, cw: number, a: F80 | Uint8Array, b?: F80 | Uint8Array): void {
    if ((this.n + 1) * REC > this.buf.length) this.grow();
    const o = this.n * REC;
    this.view.setUint16(o, op, true);
    this.view.setUint16(o + 2, cw, true);
    this.put(o + 4, a);
    if (b) this.put(o + 14, b);
    this.n++;
  }
  private put(o: number, v: F80 | Uint8Array): void {
    if (v instanceof Uint8Array) { this.buf.set(v.subarray(0, 10), o); return; }
    this.view.setUint32(o, v.lo >>> 0, true);
    this.view.setUint32(o + 4, v.hi >>> 0, true);
    this.view.setUint16(o + 8, v.se, true);
  }
  bytes(): Uint8Array { return this.buf.subarray(0, this.n * REC); }
}

export function runRef(input: Uint8Array): Uint8Array {
  const r = spawnSync(REF_BIN, [], { input, maxBuffer: input.length + (1 << 20) });
  if (r.status !== 0) throw new Error(`x87ref failed: ${r.status} ${String(r.stderr)}`);
  const out = new Uint8Array(r.stdout.buffer, r.stdout.byteOffset, r.stdout.length);
  if (out.length !== input.length) throw new Error(`x87ref returned ${out.length} bytes for ${input.length}`);
  return out;
}

const IN_PTR = 1 << 20;
const CHUNK = 1 << 16;

export function runWasm(w: Wasm, input: Uint8Array): Uint8Array {
  const out = new Uint8Array(input.length);
  const need = IN_PTR + 2 * CHUNK * REC + 4096;
  const have = w.mem.buffer.byteLength;
  if (have < need) w.mem.grow(Math.ceil((need - have) / 65536));
  const outPtr = IN_PTR + CHUNK * REC;
  for (let i = 0; i < input.length; i += CHUNK * REC) {
    const part = input.subarray(i, Math.min(input.length, i + CHUNK * REC));
    new Uint8Array(w.mem.buffer).set(part, IN_PTR);
    w.runBatch(IN_PTR, outPtr, part.length / REC);
    out.set(new Uint8Array(w.mem.buffer, outPtr, part.length), i);
  }
  return out;
}

// ---- comparison -----------------------------------------------------------------------------------

/** Status-word bits compared: exceptions, ES, C0-C3, TOP, B (SF is never raised by the tests). */
export const SW_MASK = 0x3f | 0x80 | 0x4700 | 0x3800 | 0x8000;

export function f80At(buf: Uint8Array, off: number): F80 {
  const v = new DataView(buf.buffer, buf.byteOffset);
  return { lo: v.getUint32(off, true), hi: v.getUint32(off + 4, true), se: v.getUint16(off + 8, true) };
}

export function fmt80(v: F80): string {
  return `${v.se.toString(16).padStart(4, '0')}:${(v.hi >>> 0).toString(16).padStart(8, '0')}${(v.lo >>> 0).toString(16).padStart(8, '0')}`;
}

function hexBytes(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

export function describeCase(input: Uint8Array, ref: Uint8Array, got: Uint8Array, i: number): string {
  const o = i * REC;
  const v = new DataView(input.buffer, input.byteOffset);
  const op = v.getUint16(o, true), cw = v.getUint16(o + 2, true);
  const r = new DataView(ref.buffer, ref.byteOffset), g = new DataView(got.buffer, got.byteOffset);
  const side = (b: Uint8Array, dv: DataView): string =>
    `st0=${fmt80(f80At(b, o))} st1=${fmt80(f80At(b, o + 10))} mem=${hexBytes(b.subarray(o + 20, o + 30))} sw=${dv.getUint16(o + 30, true).toString(16)}`;
  return `${OP_NAME[op] ?? op} cw=${cw.toString(16)} a=${fmt80(f80At(input, o + 4))} b=${fmt80(f80At(input, o + 14))}\n  x87:  ${side(ref, r)}\n  wasm: ${side(got, g)}`;
}

function eq10(a: Uint8Array, b: Uint8Array, o: number): boolean {
  for (let k = 0; k < 10; k++) if (a[o + k] !== b[o + k]) return false;
  return true;
}

/** Bit-exact comparison of record i: status word (masked), ST(0)/ST(1) up to the stack depth,
 *  and the memory operand. */
export function sameExact(ref: Uint8Array, got: Uint8Array, i: number): boolean {
  const o = i * REC;
  const swR = ref[o + 30] | (ref[o + 31] << 8), swG = got[o + 30] | (got[o + 31] << 8);
  if ((swR & SW_MASK) !== (swG & SW_MASK)) return false;
  const depth = (8 - ((swR >> 11) & 7)) & 7;
  if (depth >= 1 && !eq10(ref, got, o)) return false;
  if (depth >= 2 && !eq10(ref, got, o + 10)) return false;
  return eq10(ref, got, o + 20);
}

const TWO63 = 1n << 63n;

/** Position of a finite value on the line of 64-bit-precision values (ordinal), or null. */
function ordinal(v: F80): bigint | null {
  const e = v.se & 0x7fff;
  const sig = (BigInt(v.hi >>> 0) << 32n) | BigInt(v.lo >>> 0);
  if (e === 0x7fff) return null;
  if (e === 0) return v.se & 0x8000 ? -sig : sig;
  if (sig < TWO63) return null;
  const ord = BigInt(e - 1) * TWO63 + sig;
  return v.se & 0x8000 ? -ord : ord;
}

/** Distance in units in the last place (64-bit precision); 0 for identical bits, Infinity when not
 *  comparable (NaN/∞ mismatch). */
export function ulpDiff(a: F80, b: F80): number {
  if (a.se === b.se && a.hi === b.hi && a.lo === b.lo) return 0;
  const x = ordinal(a), y = ordinal(b);
  if (x === null || y === null) return Infinity;
  const d = x > y ? x - y : y - x;
  return d > 1000000n ? Infinity : Number(d);
}

// ---- operand generation ---------------------------------------------------------------------------

/** Deterministic xorshift128 generator of 32-bit values. */
export class Rng {
  private s0: number; private s1: number; private s2: number; private s3: number;
  constructor(seed: number) {
    this.s0 = seed | 0 || 1; this.s1 = 0x9e3779b9; this.s2 = 0x85ebca6b; this.s3 = 0xc2b2ae35;
    for (let i = 0; i < 16; i++) this.u32();
  }
  u32(): number {
    let t = this.s3;
    const s = this.s0;
    this.s3 = this.s2; this.s2 = this.s1; this.s1 = s;
    t ^= t << 11; t ^= t >>> 8;
    this.s0 = (t ^ s ^ (s >>> 19)) >>> 0;
    return this.s0;
  }
  int(n: number): number { return Math.floor((this.u32() / 4294967296) * n); }
  range(lo: number, hi: number): number { return lo + this.int(hi - lo + 1); }
  pick<T>(xs: readonly T[]): T { return xs[this.int(xs.length)]; }
  bool(): boolean { return (this.u32() & 1) === 1; }
}

export function mk(se: number, hi: number, lo: number): F80 { return { se: se & 0xffff, hi: hi >>> 0, lo: lo >>> 0 }; }
export const neg = (v: F80): F80 => ({ ...v, se: v.se ^ 0x8000 });

/** Hand-picked special and boundary operands (both signs). */
export function specialOperands(): F80[] {
  const pos: F80[] = [
    mk(0, 0, 0), // zero
    mk(0, 0, 1), mk(0, 0x7fffffff, 0xffffffff), mk(0, 0x00000123, 0x456789ab), mk(0, 0x40000000, 0), // denormals
    mk(0, 0x80000000, 0), mk(0, 0x80000000, 1), mk(0, 0xc0000000, 0x12345), // pseudo-denormals
    mk(1, 0x80000000, 0), mk(1, 0xffffffff, 0xffffffff), mk(2, 0x80000000, 1), // smallest normals
    mk(0x7ffe, 0xffffffff, 0xffffffff), mk(0x7ffe, 0x80000000, 0), mk(0x7ffd, 0xc0000000, 0), // largest
    mk(0x7fff, 0x80000000, 0), // infinity
    mk(0x7fff, 0xc0000000, 0), mk(0x7fff, 0xc0000000, 1), mk(0x7fff, 0xffffffff, 0xffffffff), // QNaNs
    mk(0x7fff, 0x80000000, 1), mk(0x7fff, 0xbfffffff, 0xffffffff), mk(0x7fff, 0x80000001, 0), // SNaNs
    mk(0x3fff, 0x00000000, 0x1234), mk(0x7fff, 0x40000000, 0), mk(0x7fff, 0, 0), mk(0x7fff, 0, 5), // unsupported
    mk(0x4000, 0x7fffffff, 0xffffffff),
    mk(0x3fff, 0x80000000, 0), mk(0x4000, 0x80000000, 0), mk(0x3ffe, 0x80000000, 0), mk(0x3fff, 0xc0000000, 0), // 1 2 .5 1.5
    mk(0x3fff, 0xffffffff, 0xffffffff), mk(0x3ffe, 0xffffffff, 0xffffffff), mk(0x3fff, 0x80000000, 1),
    mk(0x3fff, 0x80000000, 0x400), mk(0x3fff, 0x80000000, 0x800), mk(0x3fff, 0x80000100, 0), // 53/24-bit ties
    mk(0x3fff, 0xffffff80, 0), mk(0x3fff, 0xffffffff, 0xfffff800), mk(0x4000, 0xc90fdaa2, 0x2168c235), // pi
    mk(0x403e, 0x80000000, 0), mk(0x403d, 0xffffffff, 0xffffffff), mk(0x401d, 0xffffffff, 0), mk(0x400d, 0xffff0000, 0),
    mk(0x3fbf, 0x80000000, 0), mk(0x3fc0, 0xffffffff, 0xffffffff), mk(0x0040, 0x80000000, 0), mk(0x7fbe, 0x80000000, 0),
    mk(0x1fff, 0x80000000, 0), mk(0x5fff, 0xabcdef01, 0x23456789), mk(0x3c00, 0x80000000, 0), mk(0x43ff, 0xffffffff, 0xffffffff),
  ];
  return pos.concat(pos.map(neg));
}

/** A random operand from a mix of shapes: random bits, normal numbers over the full or central
 *  exponent range, sparse significands (exact and tie cases), all-ones runs, specials. */
export function randomOperand(r: Rng, specials: F80[]): F80 {
  const s = r.bool() ? 0x8000 : 0;
  switch (r.int(10)) {
    case 0: return mk(r.u32() & 0xffff, r.u32(), r.u32()); // random bits (any class)
    case 1: return mk(s | r.range(1, 0x7ffe), r.u32() | 0x80000000, r.u32()); // full range
    case 2: case 3: return mk(s | r.range(0x3f00, 0x40ff), r.u32() | 0x80000000, r.u32()); // central
    case 4: { // sparse significand
      let hi = 0x80000000, lo = 0;
      for (let k = r.int(4); k > 0; k--) {
        const bit = r.int(63);
        if (bit >= 32) hi |= 1 << (bit - 32); else lo |= 1 << bit;
      }
      return mk(s | r.range(0x3ff0, 0x4010), hi, lo);
    }
    case 5: { // runs of ones/zeros around the 24/53/64-bit rounding positions
      const pos = r.pick([40, 11, 0]);
      const hiBits = r.u32() | 0x80000000;
      let lo = r.u32();
      let hi = hiBits;
      const kind = r.int(4);
      // set/clear the bits below pos
      for (let bit = 0; bit < pos; bit++) {
        const v = kind === 0 ? 0 : kind === 1 ? 1 : bit === pos - 1 ? 1 : kind === 2 ? 0 : 1;
        if (bit >= 32) hi = v ? hi | (1 << (bit - 32)) : hi & ~(1 << (bit - 32));
        else lo = v ? lo | (1 << bit) : lo & ~(1 << bit);
      }
      return mk(s | r.range(0x3ffc, 0x4003), hi, lo);
    }
    case 6: return mk(s | r.range(1, 80), r.u32() | 0x80000000, r.u32()); // near the denormal range
    case 7: return mk(s | r.range(0x7f80, 0x7ffe), r.u32() | 0x80000000, r.u32()); // near overflow
    case 8: return mk(s, r.u32() >>> r.int(32), r.u32()); // denormal
    default: return r.pick(specials);
  }
}

/** Every PC (24, reserved, 53, 64 bits) × RC combination, all exceptions masked. */
export function allMaskedCws(): number[] {
  const out: number[] = [];
  for (let pc = 0; pc < 4; pc++) for (let rc = 0; rc < 4; rc++) out.push(0x7f | (pc << 8) | (rc << 10));
  return out;
}

/** Control words with some exceptions unmasked. */
export function unmaskedCws(r: Rng, n: number): number[] {
  const out: number[] = [0x40 | 0x300, 0x40 | 0x300 | 0x20];
  while (out.length < n) out.push(0x40 | (r.u32() & 0x3f) | (r.pick([0, 2, 3]) << 8) | (r.int(4) << 10));
  return out;
}

/** Random value of a given sign class within an unbiased exponent range. */
export function inRange(r: Rng, lo: number, hi: number, sign?: number): F80 {
  const s = sign ?? (r.bool() ? 0x8000 : 0);
  return mk(s | (0x3fff + r.range(lo, hi)), r.u32() | 0x80000000, r.u32());
}

/** The x87's π/2 approximation is D × 2^-67 with D = 0xC90FDAA22168C234C: values within a few ulps
 *  of k·D·2^-67 (|x| < 2^63), where the reduced argument of FSIN etc. is tiny. */
export function nearPiMultiple(r: Rng): F80 {
  const D = 0xC90FDAA22168C234Cn;
  const kb = r.range(1, 62);
  let k = ((BigInt(r.u32()) << 32n) | BigInt(r.u32())) & ((1n << BigInt(kb)) - 1n);
  if (k === 0n) k = 1n;
  const n = k * D;
  const len = n.toString(2).length;
  let sig = len > 64 ? (n + (1n << BigInt(len - 65))) >> BigInt(len - 64) : n << BigInt(64 - len);
  let e = len - 68;
  if (sig >> 64n) { sig >>= 1n; e++; }
  sig += BigInt(r.range(-3, 3));
  if (e > 62) e = 62;
  return mk((r.bool() ? 0x8000 : 0) | (0x3fff + e), Number(sig >> 32n), Number(sig & 0xffffffffn));
}

/** 1 ± up to 20 ulps. */
export function nearOne(r: Rng): F80 {
  const d = r.range(-20, 20);
  return d >= 0 ? mk(0x3fff, 0x80000000, d) : mk(0x3ffe, 0xffffffff, (0x100000000 + d) >>> 0);
}

/** Denormals and values just above the denormal range. */
export function tiny(r: Rng): F80 {
  const s = r.bool() ? 0x8000 : 0;
  return r.bool() ? mk(s, r.u32() >>> r.int(32), r.u32()) : mk(s | r.range(1, 0x3f00), r.u32() | 0x80000000, r.u32());
}

/** Bytes of a single/double-precision pattern (random fields, specials, boundaries). */
export function ieeeBytes(r: Rng, double: boolean): Uint8Array {
  const b = new Uint8Array(10);
  const v = new DataView(b.buffer);
  const sign = r.bool() ? 1 : 0;
  const expBits = double ? 11 : 8;
  const emax = (1 << expBits) - 1;
  const kind = r.int(6);
  const e = kind === 0 ? 0 : kind === 1 ? emax : kind === 2 ? r.pick([1, 2, emax - 1]) : r.int(emax + 1);
  let hi = r.u32(), lo = r.u32();
  if (r.int(4) === 0) { hi = r.pick([0, 1, 0xffffffff, 0x80000000, 0x40000000]); lo = r.pick([0, 1, 0xffffffff]); }
  if (double) {
    v.setUint32(0, lo, true);
    v.setUint32(4, ((sign << 31) | (e << 20) | (hi & 0xfffff)) >>> 0, true);
  } else {
    v.setUint32(0, ((sign << 31) | (e << 23) | (hi & 0x7fffff)) >>> 0, true);
  }
  return b;
}

/** Bytes of a 16/32/64-bit integer, biased toward extremes. */
export function intBytes(r: Rng, size: number): Uint8Array {
  const b = new Uint8Array(10);
  for (let i = 0; i < size; i++) b[i] = r.int(256);
  const k = r.int(6);
  if (k === 0) { b.fill(0, 0, size); if (r.bool()) b[0] = r.int(3); }
  if (k === 1) { b.fill(0xff, 0, size); b[size - 1] = r.bool() ? 0x7f : 0xff; }
  if (k === 2) { b.fill(0, 0, size); b[size - 1] = 0x80; b[0] = r.int(2); }
  return b;
}

/** Packed BCD bytes: mostly valid digits, sometimes invalid nibbles or odd sign bytes. */
export function bcdBytes(r: Rng): Uint8Array {
  const b = new Uint8Array(10);
  const digits = r.range(0, 18);
  for (let i = 0; i < 9; i++) {
    const lo = 2 * i < digits ? r.int(10) : 0, hi = 2 * i + 1 < digits ? r.int(10) : 0;
    b[i] = lo | (hi << 4);
  }
  if (r.int(8) === 0) b[r.int(9)] = r.int(256);
  b[9] = r.pick([0, 0x80, 0x80, 0x7f, 0xff, r.int(256)]);
  return b;
}

/** Values around integer and BCD conversion limits: ±2^15, 2^31, 2^63, 10^18, halves. */
export function intBoundary(r: Rng): F80 {
  const s = r.bool() ? 0x8000 : 0;
  const e = r.pick([-2, -1, 0, 1, 14, 15, 30, 31, 59, 62, 63, r.range(-3, 64)]);
  const base = r.pick([0x80000000, 0xffffffff, 0xde0b6b3a, 0xc0000000, r.u32() | 0x80000000]);
  const lo = r.pick([0, 0x80000000, 0xffffffff, 0x763ffff0, 0x76400000, r.u32()]);
  return mk(s | (0x3fff + e), base, lo + r.range(-2, 2));
}

// ---- known vendor divergences (emu/difftest/vendor-divergences.ts) -------------------------------

const X87_OP_OF: Record<number, X87Op> = {
  [OP.PREM]: 'fprem', [OP.PREM1]: 'fprem1', [OP.SCALE]: 'fscale', [OP.SIN]: 'fsin', [OP.SINCOS]: 'fsincos', [OP.PATAN]: 'fpatan',
};

function big80(buf: Uint8Array, off: number): bigint {
  let v = 0n;
  for (let k = 9; k >= 0; k--) v = (v << 8n) | BigInt(buf[off + k]);
  return v;
}

/**
 * For a record that differs, on a host whose vendor is not the modelled (Intel) one: when the x87's
 * result is exactly that vendor's documented form of the library's (Intel) result, the divergence
 * and the x87's record rewritten into the Intel form (a 32-byte copy; compare it with the library's
 * record as usual, at index 0). Otherwise (and always on an Intel host) null.
 */
export function vendorRewrite(input: Uint8Array, ref: Uint8Array, got: Uint8Array, i: number): { divergence: VendorDivergence; ref: Uint8Array } | null {
  const o = i * REC;
  const iv = new DataView(input.buffer, input.byteOffset);
  const op = X87_OP_OF[iv.getUint16(o, true)];
  if (!op) return null;
  const k: X87Case = { op, fcw: iv.getUint16(o + 2, true), st0: big80(input, o + 4), st1: big80(input, o + 14) };
  const side = (b: Uint8Array) => ({ st: [big80(b, o), big80(b, o + 10)] as [bigint, bigint], fsw: b[o + 30] | (b[o + 31] << 8) });
  const r = x87IntelEquivalent(k, side(ref), side(got));
  if (!r || !appliesOnHost(r.divergence)) return null;
  const rec = ref.slice(o, o + REC);
  for (let j = 0; j < 2; j++) for (let b = 0; b < 10; b++) rec[10 * j + b] = Number((r.outcome.st[j] >> BigInt(8 * b)) & 0xffn);
  rec[30] = r.outcome.fsw & 0xff;
  rec[31] = r.outcome.fsw >> 8;
  return { divergence: r.divergence, ref: rec };
}
