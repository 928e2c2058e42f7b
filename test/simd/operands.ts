// Operand generation for the SIMD differential test: batches of 64-byte records
//   u32 op, u32 mxcsr, u32 imm, u32 0, A[16], B[16], C[16]
// that test/simd/sseref.c (real instructions) and the generated wasm entry both execute.
import type { OpDef } from './ops.ts';

export const REC_IN = 64;
export const REC_OUT = 32;

/** Deterministic xorshift128+-style generator on 32-bit halves (reproducible failures). */
export class Rng {
  private s0: number;
  private s1: number;
  constructor(seed: number) { this.s0 = (seed ^ 0x9e3779b9) >>> 0 || 1; this.s1 = (seed * 0x85ebca6b) >>> 0 || 2; }
  u32(): number {
    let x = this.s0; const y = this.s1;
    this.s0 = y; x ^= x << 23; x ^= x >>> 17; x ^= y ^ (y >>> 26); this.s1 = x >>> 0;
    return (this.s0 + this.s1) >>> 0;
  }
  below(n: number): number { return Math.floor((this.u32() / 4294967296) * n); }
  pick<T>(a: readonly T[]): T { return a[this.below(a.length)]; }
  chance(p: number): boolean { return this.u32() / 4294967296 < p; }
}

export class Batch {
  buf: Uint32Array;
  n = 0;
  /** Scratch operands A (words 0-3), B (4-7), C (8-11) of the record being built. */
  readonly w = new Uint32Array(12);
  constructor(private cap: number) { this.buf = new Uint32Array(cap * (REC_IN / 4)); }
  commit(op: number, mxcsr: number, imm: number): void {
    if (this.n == this.cap) {
      this.cap *= 2;
      const nb = new Uint32Array(this.cap * (REC_IN / 4));
      nb.set(this.buf);
      this.buf = nb;
    }
    const o = this.n * (REC_IN / 4);
    this.buf[o] = op; this.buf[o + 1] = mxcsr >>> 0; this.buf[o + 2] = imm; this.buf[o + 3] = 0;
    this.buf.set(this.w, o + 4);
    this.n++;
  }
  bytes(): Uint8Array { return new Uint8Array(this.buf.buffer, 0, this.n * REC_IN); }
}

// --- MXCSR modes ---------------------------------------------------------------------------------

/** All 16 combinations of RC x DAZ x FTZ, every exception masked, flags clear. */
export const MODES_MASKED: number[] = [];
for (let rc = 0; rc < 4; rc++) for (const daz of [0, 0x40]) for (const ftz of [0, 0x8000]) MODES_MASKED.push(0x1f80 | (rc << 13) | daz | ftz);
/** A random mode: any RC/DAZ/FTZ, each exception mask independently random. */
export function randomMode(rng: Rng): number {
  return (rng.below(4) << 13) | (rng.chance(0.5) ? 0x40 : 0) | (rng.chance(0.5) ? 0x8000 : 0) | (rng.below(64) << 7);
}

// --- integer operands ----------------------------------------------------------------------------

const INT_EDGES: Record<number, number[]> = {
  1: [0, 1, 0x7f, 0x80, 0xff, 0xfe, 0x81, 0x7e, 0x40, 0xc0],
  2: [0, 1, 0x7fff, 0x8000, 0xffff, 0xfffe, 0x8001, 0x7ffe, 0x7f, 0x80, 0xff, 0x100, 0xff80, 0xff7f, 0xff00, 0x4000],
  4: [0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 0xfffffffe, 0x80000001, 0x7fff, 0x8000, 0xffff, 0x10000,
      0xffff8000, 0xffff7fff, 0xffff0000, 0x00007fff, 0x00008000],
};

/** Fill words [off, off+4) with integer lanes of esz bytes (edge values and random bits). */
function fillInt(rng: Rng, w: Uint32Array, off: number, esz: number): void {
  for (let i = 0; i < 4; i++) w[off + i] = rng.u32();
  if (rng.chance(0.3)) return;
  const e = esz == 8 ? 4 : esz;
  const edges = INT_EDGES[e];
  const bytes = new Uint8Array(w.buffer, w.byteOffset + off * 4, 16);
  for (let lane = 0; lane < 16 / e; lane++) {
    if (!rng.chance(0.5)) continue;
    const v = rng.pick(edges);
    for (let k = 0; k < e; k++) bytes[lane * e + k] = (v >>> (8 * k)) & 0xff;
  }
}

export function genInt(rng: Rng, b: Batch, op: number, def: OpDef, count: number): void {
  const gen = def.gen as { kind: 'int' | 'shift'; esz: number; w: number };
  const imms = def.imms ?? [0];
  const shiftCounts = [0, 1, 2, gen.esz * 8 - 2, gen.esz * 8 - 1, gen.esz * 8, gen.esz * 8 + 1, 15, 16, 31, 32, 33, 63, 64, 65, 127, 255, 256];
  for (const imm of imms) {
    for (let k = 0; k < count; k++) {
      fillInt(rng, b.w, 0, gen.esz);
      fillInt(rng, b.w, 4, gen.esz);
      fillInt(rng, b.w, 8, 1);
      if (rng.chance(0.25)) for (let i = 0; i < 4; i++) if (rng.chance(0.5)) b.w[4 + i] = b.w[i]; // equal lanes
      if (gen.kind == 'shift') {
        const r = rng.below(10);
        b.w[4] = r < 7 ? rng.pick(shiftCounts) : r < 8 ? rng.u32() : 0;
        b.w[5] = r == 9 ? rng.pick([1, 0x80000000, 0xffffffff]) : r == 8 ? rng.u32() : 0;
      }
      b.commit(op, randomMode(rng), imm); // MXCSR must not matter
    }
  }
}

// --- floating-point values -------------------------------------------------------------------------

/** A value's little-endian 32-bit words: [bits] for binary32, [lo, hi] for binary64. */
type Val = number[];

function h64(s: string): Val {
  const v = BigInt(s);
  return [Number(v & 0xffffffffn), Number(v >> 32n)];
}

export const F32_EDGES: Val[] = [
  0x00000000, 0x80000000, 0x00000001, 0x80000001, 0x00000002, 0x007fffff, 0x807fffff, 0x00400000, 0x00400001,
  0x80200000, 0x0000ffff, 0x00800000, 0x80800000, 0x00800001, 0x00ffffff, 0x3f800000, 0xbf800000, 0x3f800001,
  0x3fffffff, 0x40000000, 0xc0000000, 0x3fc00000, 0x3f000000, 0xbf000000, 0x40200000, 0xbfc00000, 0x3eaaaaab,
  0x40490fdb, 0x7f7fffff, 0xff7fffff, 0x7f000000, 0x7effffff, 0x7f7ffffe, 0x7f800000, 0xff800000, 0x7fc00000,
  0xffc00000, 0x7fc12345, 0xffe00001, 0x7f800001, 0xff800001, 0x7fa00000, 0x7fbfffff, 0x4f000000, 0xcf000000,
  0x4effffff, 0xcf000001, 0x5f000000, 0xdf000000, 0x5effffff, 0xdf000001, 0x4b000000, 0x4b000001, 0x3effffff,
  0x3f000001, 0x1f800000, 0x5f800000, 0x0c000000, 0x73000000, 0x20000000,
].map((x) => [x >>> 0]);

export const F64_EDGES: Val[] = [
  '0x0', '0x8000000000000000', '0x1', '0x8000000000000001', '0x2', '0x000fffffffffffff', '0x800fffffffffffff',
  '0x0008000000000000', '0x0008000000000001', '0x0010000000000000', '0x8010000000000000', '0x0010000000000001',
  '0x001fffffffffffff', '0x3ff0000000000000', '0xbff0000000000000', '0x3ff0000000000001', '0x3fffffffffffffff',
  '0x4000000000000000', '0xc000000000000000', '0x3ff8000000000000', '0x3fe0000000000000', '0xbfe0000000000000',
  '0x4004000000000000', '0xbff8000000000000', '0x3fd5555555555555', '0x400921fb54442d18', '0x7fefffffffffffff',
  '0xffefffffffffffff', '0x7fe0000000000000', '0x7fdfffffffffffff', '0x7ff0000000000000', '0xfff0000000000000',
  '0x7ff8000000000000', '0xfff8000000000000', '0x7ff8000000012345', '0xfffc000000000001', '0x7ff0000000000001',
  '0xfff0000000000001', '0x7ff4000000000000', '0x7ff7ffffffffffff', '0x41e0000000000000', '0xc1e0000000000000',
  '0x41dfffffffc00000', '0x41dfffffffe00000', '0xc1e0000000200000', '0xc1e0000000100000', '0x43e0000000000000',
  '0xc3e0000000000000', '0x43dfffffffffffff', '0xc3e0000000000001', '0x4330000000000001', '0x47efffffe0000000',
  '0x47efffffefffffff', '0x47effffff0000000', '0x47f0000000000000', '0x3810000000000000', '0x380fffffe0000000',
  '0x380ffffff0000000', '0x36a0000000000000', '0x3690000000000000', '0x3690000000000001', '0x36a8000000000000',
  '0x2000000000000000', '0x5ff0000000000000',
].map(h64);

const f64buf = new Float64Array(1);
const u32of64 = new Uint32Array(f64buf.buffer);
const f32buf = new Float32Array(1);
const u32of32 = new Uint32Array(f32buf.buffer);

function valToNum(v: Val): number {
  if (v.length == 1) { u32of32[0] = v[0]; return f32buf[0]; }
  u32of64[0] = v[0]; u32of64[1] = v[1]; return f64buf[0];
}
/** The nearest value of the format (NaN-free inputs only). */
function numToVal(x: number, dbl: boolean): Val {
  if (!dbl) { f32buf[0] = x; return [u32of32[0]]; }
  f64buf[0] = x; return [u32of64[0], u32of64[1]];
}
/** The value `k` encodings away (bit pattern + k, same sign). */
function step(v: Val, k: number): Val {
  if (v.length == 1) return [(v[0] + k) >>> 0];
  const lo = v[0] + k;
  const carry = lo > 0xffffffff ? 1 : lo < 0 ? -1 : 0;
  return [lo >>> 0, (v[1] + carry) >>> 0];
}

/** A random value of a mixture of classes: raw bits, moderate normals, extreme exponents,
 *  denormals, special values. */
export function randomFloat(rng: Rng, dbl: boolean): Val {
  const r = rng.below(16);
  const sign = rng.chance(0.5) ? 0x80000000 : 0;
  if (!dbl) {
    const m = rng.u32() & 0x7fffff;
    if (r < 4) return [rng.u32()];
    if (r < 10) return [(sign | ((117 + rng.below(21)) << 23) | m) >>> 0];
    if (r < 12) return [(sign | (rng.pick([1, 2, 3, 24, 25, 26, 100, 150, 200, 230, 231, 252, 253, 254]) << 23) | m) >>> 0];
    if (r < 14) return [(sign | (m >>> rng.below(23))) >>> 0];
    if (r < 15) return [(sign | 0x7f800000 | (rng.chance(0.3) ? 0 : m | (rng.chance(0.5) ? 0x400000 : 1))) >>> 0];
    return rng.pick(F32_EDGES);
  }
  const lo = rng.u32(), mh = rng.u32() & 0xfffff;
  if (r < 4) return [rng.u32(), rng.u32()];
  if (r < 10) return [lo, (sign | ((1013 + rng.below(21)) << 20) | mh) >>> 0];
  if (r < 12) return [lo, (sign | (rng.pick([1, 2, 3, 53, 54, 55, 800, 897, 896, 895, 1150, 1151, 1152, 1153, 2044, 2045, 2046]) << 20) | mh) >>> 0];
  if (r < 14) { const s = rng.below(52); return s >= 32 ? [(mh >>> (s - 32)) >>> 0, sign] : [((lo >>> s) | (mh << (32 - s))) >>> 0, (sign | (mh >>> s)) >>> 0]; }
  if (r < 15) return [rng.chance(0.3) ? 0 : lo | 1, (sign | 0x7ff00000 | (rng.chance(0.5) ? 0x80000 : 0) | (mh & 0x7ffff)) >>> 0];
  return rng.pick(F64_EDGES);
}

/** Pairs whose exact result lies near a rounding-critical point of the operation: the smallest
 *  normal (tininess before/after rounding, FTZ), the denormal range, the overflow threshold,
 *  halfway cases and cancellation. */
export function targetedPairs(rng: Rng, dbl: boolean, op: string, count: number): [Val, Val][] {
  const p = dbl ? 53 : 24;
  const emin = dbl ? -1022 : -126;
  const emax = dbl ? 1024 : 128;
  const targets = [
    2 ** emin * (1 - 2 ** -(p + 1)), 2 ** emin * (1 - 2 ** -p), 2 ** emin * (1 - 3 * 2 ** -(p + 2)), 2 ** emin,
    2 ** emin * (1 + 2 ** -p), 2 ** (emin - 1) * 1.5, 2 ** (emin - p), 2 ** (emin - p) * 0.75, 2 ** (emin - p) * 0.5,
    2 ** (emin - p) * 1.5, 2 ** (emin - 10) * 1.3, 2 ** emax * (1 - 2 ** -(p + 1)), 2 ** emax * (1 - 2 ** -p),
    2 ** emax * (1 - 2 ** -(p + 2)), 1 + 2 ** -p, 1 - 2 ** -(p + 1), 3,
  ];
  const out: [Val, Val][] = [];
  for (let i = 0; i < count; i++) {
    const t0 = rng.pick(targets) * (rng.chance(0.5) ? -1 : 1);
    // a random operand with a moderate exponent (the other one then carries the extreme one)
    const e = rng.below(40) - 20;
    const a = numToVal((1 + rng.u32() / 4294967296) * 2 ** e * (rng.chance(0.5) ? -1 : 1), dbl);
    const an = valToNum(a);
    if (!isFinite(t0) || t0 == 0) continue;
    let b: number;
    switch (op) {
      case 'add': b = t0 - an; break;
      case 'sub': b = an - t0; break;
      case 'mul': b = t0 / an; break;
      case 'div': b = an / t0; break;
      default: b = t0; break;
    }
    if (!isFinite(b) || b == 0) continue;
    const bv = numToVal(b, dbl);
    if (op == 'add' || op == 'sub') {
      // also cancellation: b close to -a (add) or a (sub)
      const c = numToVal(op == 'add' ? -an : an, dbl);
      out.push([a, step(c, rng.below(5) - 2)]);
    }
    out.push([a, step(bv, rng.below(5) - 2)]);
  }
  return out;
}

/** Values near the integer conversion boundaries and rounding ties. */
export function conversionValues(rng: Rng, dbl: boolean, count: number): Val[] {
  const out: Val[] = [];
  const pts = [2 ** 31, -(2 ** 31), 2 ** 63, -(2 ** 63), 2 ** 31 - 1, -(2 ** 31) - 1, 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 1, 2 ** 23, 2 ** 52, 2 ** 24 + 1, 2 ** 53 + 1];
  for (let i = 0; i < count; i++) {
    const x = rng.pick(pts);
    const v = numToVal(x, dbl);
    out.push(step(v, rng.below(7) - 3));
    out.push(numToVal((rng.below(2000) - 1000) + rng.pick([0.5, 0.25, 0.75, 0]), dbl));
  }
  return out;
}

export function randomInt(rng: Rng, is64: boolean): Val {
  const r = rng.below(6);
  const edges32 = [0, 1, 0xffffffff, 0x7fffffff, 0x80000000, 0x80000001, 0x7fffff80, 0x7fffffc0, 0x00ffffff, 0x01000001, 0x01000003, 0xff000001];
  if (!is64) {
    if (r == 0) return [rng.pick(edges32)];
    if (r == 1) return [(rng.u32() >>> rng.below(32)) >>> 0];
    if (r == 2) return [(-(rng.u32() >>> rng.below(32))) >>> 0];
    return [rng.u32()];
  }
  const edges64 = ['0x0', '0x1', '0xffffffffffffffff', '0x7fffffffffffffff', '0x8000000000000000', '0x8000000000000001',
    '0x0020000000000001', '0x0020000000000003', '0x7ffffffffffffe00', '0x7ffffffffffffc00', '0xfffffffffffffe00',
    '0x0000000001000001', '0x00000000ffffffff', '0xffffffff00000001'].map(h64);
  if (r == 0) return rng.pick(edges64);
  if (r == 1) { const s = rng.below(64); const v = (BigInt(rng.u32()) << 32n | BigInt(rng.u32())) >> BigInt(s); return [Number(v & 0xffffffffn), Number(v >> 32n)]; }
  if (r == 2) { const s = rng.below(64); const v = (-((BigInt(rng.u32()) << 32n | BigInt(rng.u32())) >> BigInt(s))) & 0xffffffffffffffffn; return [Number(v & 0xffffffffn), Number(v >> 32n)]; }
  return [rng.u32(), rng.u32()];
}

// --- filling records -------------------------------------------------------------------------------

function putLane(w: Uint32Array, off: number, lane: number, v: Val): void {
  if (v.length == 1) w[off + lane] = v[0];
  else { w[off + lane * 2] = v[0]; w[off + lane * 2 + 1] = v[1]; }
}

function randomize(rng: Rng, w: Uint32Array): void { for (let i = 0; i < 12; i++) w[i] = rng.u32(); }

/** Emit records for a float op from a stream of (a, b) pairs, `lanes` pairs per record, each group
 *  under each of `modes` (or a random mode when modes is null). */
export function emitPairs(rng: Rng, b: Batch, op: number, imm: number, lanes: number, pairs: [Val, Val][], modes: number[] | null): void {
  for (let i = 0; i < pairs.length; i += lanes) {
    const group = pairs.slice(i, i + lanes);
    const ms = modes ?? [randomMode(rng)];
    for (const m of ms) {
      randomize(rng, b.w);
      group.forEach(([x, y], lane) => { putLane(b.w, 0, lane, x); putLane(b.w, 4, lane, y); });
      b.commit(op, m, imm);
    }
  }
}

/** Emit records whose B lanes come from `vals` (A random: kept lanes / unary ops). */
export function emitSingles(rng: Rng, b: Batch, op: number, imm: number, lanes: number, vals: Val[], modes: number[] | null): void {
  for (let i = 0; i < vals.length; i += lanes) {
    const group = vals.slice(i, i + lanes);
    const ms = modes ?? [randomMode(rng)];
    for (const m of ms) {
      randomize(rng, b.w);
      group.forEach((x, lane) => putLane(b.w, 4, lane, x));
      b.commit(op, m, imm);
    }
  }
}

export function crossPairs(vals: Val[]): [Val, Val][] {
  const out: [Val, Val][] = [];
  for (const x of vals) for (const y of vals) out.push([x, y]);
  return out;
}

export function shuffled<T>(rng: Rng, a: T[]): T[] {
  const r = a.slice();
  for (let i = r.length - 1; i > 0; i--) { const j = rng.below(i + 1); const t = r[i]; r[i] = r[j]; r[j] = t; }
  return r;
}
