// Case generator of the differential tester: deterministic from a seed, it walks every form of the
// instruction table (wasm/cpu/isa-table.ts) that the user-mode oracle covers, at every operand size
// and r/m kind ("form key"), and picks operands, register values, flags and data-region seeds so that
// the instruction runs identically natively (test/native/runner.c) and in hvlab's core:
//   - memory operands land inside the data region [DATA_ADDR, DATA_ADDR + DATA_SIZE) (a few are
//     deliberately non-canonical or far above 4 GiB so that both sides fault);
//   - branch targets land on the INT3 fill of the code page, outside the instruction;
//   - values the manual leaves undefined are avoided, or their flags masked (`flagsMask`).
// Register and immediate values favour edge cases (0, 1, -1, sign boundaries, shift counts).
//
// The x87/MMX/SSE forms of wasm/cpu/isa-table-fpu.ts are generated only when `only` asks for them
// (families sse, sse-int, mmx, x87, their mnemonics or form keys): their cases carry an FXSAVE
// image (CaseInput.fpu) with float edge values (signed zeros, denormals, infinities, QNaN/SNaN
// with payloads, extreme normals, values next to integer rounding boundaries) and random bits in
// the XMM/MM/ST registers, MXCSR with every rounding mode, DAZ/FTZ and random exception masks,
// x87 stacks of 0..8 valid registers at any TOP, control words with every RC and the PC values
// 00/10/11 (01 is reserved), and now and then a pending unmasked x87 exception (-> #MF).

import { forms, type Form } from '../../wasm/cpu/isa-table.ts';
import { fpuForms, FSW_UNDEF_SHIFT, FSW_CC } from '../../wasm/cpu/isa-table-fpu.ts';
import * as abi from '../../wasm/abi.ts';
import {
  CODE_ADDR, CODE_OFFSET, CODE_SIZE, DATA_ADDR, DATA_SIZE, FXSAVE_BYTES, GS_BASE, fillPattern, type CaseInput,
} from './types.ts';
import {
  encode, formatInstruction, hexBytes, rmToken, gToken, zToken, regToken, rmAccessSize, rmNeedsAlign16,
  tokenClass, type MemRef, type Operands, type Seg,
} from './encode.ts';

export type GeneratedCase = CaseInput & {
  form: Form;
  formKey: string;
  description: string;
  /** RFLAGS bits to compare: CF PF AF ZF SF OF DF minus what the manual leaves undefined here. */
  flagsMask: bigint;
  /** FPU cases: the FSW bits to compare (all but the condition codes the manual leaves undefined). */
  fswMask?: number;
  /** Data-region byte ranges [start, end) not compared: fields an FPU state store writes that
   *  differ by design (FOP/FIP/FDP/FCS/FDS of FNSTENV/FNSAVE/FXSAVE, FXSAVE's MXCSR_MASK). */
  dataIgnore?: [number, number][];
};

export type RmKind = 'reg' | 'mem' | 'none';

/** One distinct (form, operand size, r/m kind): the unit of coverage. */
export interface FormVariant {
  form: Form;
  /** Operand size in bits (0 for forms without a data operand). For CMPXCHG8B/16B: 32 = 8B, 64 = 16B. */
  bits: number;
  kind: RmKind;
  key: string;
}

/** Address of the instruction under test. */
export const INSN_ADDR = BigInt(CODE_ADDR + CODE_OFFSET);
/** CF PF AF ZF SF OF DF: the RFLAGS bits the oracle compares. */
export const FLAGS_COMPARED = 0xcd5n;

const CF = 0x1n, PF = 0x4n, AF = 0x10n, ZF = 0x40n, SF = 0x80n, OF = 0x800n, DF = 0x400n;
const TF = 0x100n, NT = 0x4000n, AC = 0x40000n;
const ARITH = [CF, PF, AF, ZF, SF, OF];
const M64 = (1n << 64n) - 1n;
const DATA_LO = BigInt(DATA_ADDR);

// ---------------------------------------------------------------- form keys

function hex2(n: number): string { return n.toString(16).padStart(2, '0'); }

/** Operand sizes (bytes) a form is generated at. */
export function formSizes(form: Form): number[] {
  if (form.mn === 'bswap') return [4, 8]; // 16-bit BSWAP is undefined
  if (form.mn === 'cmpxchg8b') return [4, 8]; // 8B / 16B (66h is not a valid size here)
  if (form.ops.some((t) => t === 'Me' || t === 'Ms')) return [2, 4]; // x87 env: 16- / 32-bit format
  if (form.ops.some((t) => /^[EGM]y$/.test(t) || t === 'Mx')) return [4, 8]; // by REX.W only
  switch (form.osize) {
    case 'b': return [1];
    case 'v': return [2, 4, 8];
    case 'd64': return [2, 8];
    case 'f64': return [8]; // 66h on near branches differs between Intel and AMD: not generated
    case 'w': return [2];
    default: return [0];
  }
}

export function formKinds(form: Form): RmKind[] {
  const t = rmToken(form);
  if (!form.modrm || !t) return ['none'];
  if (t[0] === 'M') return ['mem'];
  const c = tokenClass(t);
  if (c === 'rmfix') return ['none'];
  if (c === 'U' || c === 'N' || c === 'STi') return ['reg'];
  return ['reg', 'mem'];
}

/** `map:op/ext:bits:kind[:prefix]`; forms with a fixed ModRM.rm ('#N', e.g. FLD1 = D9 E8) write
 *  the extension as `ext.rm` (`0:d9/5.0:0:none`). */
export function formKey(form: Form, bits: number, kind: RmKind): string {
  const t = rmToken(form);
  const ext = t && t[0] === '#' ? `${form.ext}.${t.slice(1)}` : `${form.ext ?? '-'}`;
  const base = `${form.map}:${hex2(form.op)}/${ext}:${bits}:${kind}`;
  return form.prefix !== undefined ? `${base}:${hex2(form.prefix)}` : base;
}

function matchesOnly(form: Form, only?: string[]): boolean {
  if (!only || only.length === 0) return true;
  return only.some((o) => {
    const s = o.toLowerCase();
    return s === form.fam || s === form.mn;
  });
}

/** Every variant the generator produces (forms without `noDiff`), filtered by `only`: family names
 *  (Form.fam), mnemonics (Form.mn) or exact form keys. Without `only`: the integer table
 *  (wasm/cpu/isa-table.ts) alone; with it, that table and the x87/MMX/SSE one (isa-table-fpu.ts). */
export function formVariants(only?: string[]): FormVariant[] {
  const out: FormVariant[] = [];
  const seen = new Set<string>();
  const table = only && only.length ? [...forms, ...fpuForms] : forms;
  for (const form of table) {
    if (form.noDiff) continue;
    const all = matchesOnly(form, only);
    for (const size of formSizes(form)) {
      for (const kind of formKinds(form)) {
        const key = formKey(form, size * 8, kind);
        if (!all && !only!.includes(key)) continue;
        if (seen.has(key)) throw new Error(`duplicate form key ${key} (${form.mn})`);
        seen.add(key);
        out.push({ form, bits: size * 8, kind, key });
      }
    }
  }
  return out;
}

export function allFormKeys(only?: string[]): string[] {
  return formVariants(only).map((v) => v.key);
}

// ---------------------------------------------------------------- PRNG (xoshiro128**, splitmix32 seeding)

export class Rng {
  private a: number; private b: number; private c: number; private d: number;

  constructor(seed: number, stream = 0) {
    let s = (seed >>> 0) ^ Math.imul(Math.floor(seed / 0x100000000) >>> 0, 0x27d4eb2f);
    s = (s ^ Math.imul((stream >>> 0) + 1, 0x85ebca6b)) >>> 0;
    const sm = (): number => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = sm(); this.b = sm(); this.c = sm(); this.d = sm();
    if ((this.a | this.b | this.c | this.d) === 0) this.a = 1;
    for (let i = 0; i < 4; i++) this.u32();
  }

  u32(): number {
    const r = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a; this.d ^= this.b; this.b ^= this.c; this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return r;
  }
  /** Uniform float in [0, 1). */
  next(): number { return this.u32() / 0x100000000; }
  /** Integer in [0, n). */
  below(n: number): number { return Math.floor(this.next() * n); }
  /** Integer in [lo, hi] (inclusive). */
  range(lo: number, hi: number): number { return lo + this.below(hi - lo + 1); }
  chance(p: number): boolean { return this.next() < p; }
  pick<T>(a: readonly T[]): T { return a[this.below(a.length)]; }
  u64(): bigint { return (BigInt(this.u32()) << 32n) | BigInt(this.u32()); }
  /** Uniform-ish bigint in [0, n) for 0 < n <= 2^64. */
  belowBig(n: bigint): bigint { return this.u64() % n; }
  bits(n: number): bigint { return BigInt.asUintN(n, this.u64()); }
}

function rotl(x: number, k: number): number { return ((x << k) | (x >>> (32 - k))) >>> 0; }

// ---------------------------------------------------------------- values

const EDGE64: bigint[] = [
  0n, 1n, 2n, 0x7fn, 0x80n, 0xffn, 0x100n, 0x7fffn, 0x8000n, 0xffffn, 0x10000n,
  0x7fffffffn, 0x80000000n, 0xffffffffn, 0x100000000n, 0x7fffffffffffffffn, 0x8000000000000000n,
  M64, M64 - 1n, 0xffffffff80000000n, 0xffffffffffff8000n, 0xffffffffffffff80n, 0x8000000000000001n,
  0x5555555555555555n, 0xaaaaaaaaaaaaaaaan, 0x0123456789abcdefn,
];

/** Edge values at a width: 0, 1, 2, max/2 (0x7f..), min (0x80..), min+1, max (0xff..), max-1. */
function edgeAt(rng: Rng, bits: number): bigint {
  let edges = EDGES_AT.get(bits);
  if (!edges) {
    const max = (1n << BigInt(bits)) - 1n;
    const half = max >> 1n;
    edges = [0n, 1n, 2n, half, half + 1n, half + 2n, max, max - 1n, half - 1n];
    EDGES_AT.set(bits, edges);
  }
  return rng.pick(edges);
}
const EDGES_AT = new Map<number, bigint[]>();

/** A register value: edge values (at 64 bits, or at 8/16/32 bits with random upper bits), small
 *  values, or random. */
export function randValue(rng: Rng): bigint {
  const r = rng.next();
  if (r < 0.28) return rng.pick(EDGE64);
  if (r < 0.46) {
    const w = rng.pick([8, 16, 32]);
    const e = edgeAt(rng, w);
    const upper = rng.chance(0.5) ? rng.u64() & ~((1n << BigInt(w)) - 1n) : 0n;
    return upper | e;
  }
  if (r < 0.56) {
    const s = BigInt(rng.range(-64, 64));
    return BigInt.asUintN(64, s);
  }
  return rng.u64();
}

/** An immediate of `bits` bits (unsigned encoding). */
function immValue(rng: Rng, bits: number): bigint {
  const r = rng.next();
  if (r < 0.45) return edgeAt(rng, bits);
  if (r < 0.6) return BigInt.asUintN(bits, BigInt(rng.range(-16, 16)));
  return rng.bits(bits);
}

const SHIFT_COUNTS = [0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 255];

function shiftCount(rng: Rng): number {
  return rng.chance(0.7) ? rng.pick(SHIFT_COUNTS) : rng.below(256);
}

// ---------------------------------------------------------------- data-region pattern

const patternCache = new Map<number, Uint8Array>();

/** The initial data-region bytes of a seed (same as types.ts fillPattern). */
export function patternOf(seed: number): Uint8Array {
  let p = patternCache.get(seed);
  if (!p) {
    p = new Uint8Array(DATA_SIZE);
    fillPattern(seed, p);
    if (patternCache.size > 32) patternCache.clear();
    patternCache.set(seed, p);
  }
  return p;
}

/** Little-endian value of n bytes at a linear address inside the data region. */
export function readData(seed: number, linear: bigint, n: number): bigint {
  const off = Number(linear - DATA_LO);
  if (off < 0 || off + n > DATA_SIZE) throw new Error(`readData outside the region: ${linear.toString(16)}`);
  const p = patternOf(seed);
  let v = 0n;
  for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(p[off + i]);
  return v;
}

// ---------------------------------------------------------------- flags

/** Flags compared for an instance; `count` = the (unmasked) shift/rotate count for count-dependent forms. */
export function flagsMaskFor(form: Form, size: number, count?: number): bigint {
  const u = form.undef;
  let undef = 0n;
  if (typeof u === 'number') undef = BigInt(u);
  else if (u === 'shift' || u === 'rotate' || u === 'shiftd') {
    const masked = (count ?? 0) & (size === 8 ? 0x3f : 0x1f);
    if (masked !== 0) {
      if (masked !== 1) undef |= OF;
      if (u !== 'rotate') undef |= AF;
      // SHL/SHR (and SAL, /6): CF is undefined when the count is >= the operand width (8/16-bit only).
      if (u === 'shift' && form.ext !== undefined && form.ext >= 4 && form.ext <= 6 && masked >= size * 8) undef |= CF;
      if (u === 'shiftd' && masked > size * 8) undef |= CF | OF | SF | ZF | AF | PF; // not generated
    }
  }
  return FLAGS_COMPARED & ~undef;
}

// ---------------------------------------------------------------- case context

class Retry extends Error {}

interface Ctx {
  rng: Rng;
  v: FormVariant;
  form: Form;
  size: number; // bytes; 0 for forms without a data operand
  regs: bigint[];
  pinned: Set<number>;
  rflags: bigint;
  dataSeed: number;
  ops: Operands;
  /** Byte forms using AH..BH: no REX anywhere, so every register of the encoding is < 8. */
  hiMode: boolean;
  /** RIP-relative memory: effective address (before the segment base) the disp must produce. */
  ripTarget?: bigint;
  /** Relative branch: the displacement is chosen once the length is known. */
  rel?: 8 | 32;
  /** Shift/rotate count (unmasked) for the flags mask. */
  count?: number;
  /** Linear address of the ModRM memory operand, when it is accessed (and known to be in range). */
  memLinear?: bigint;
  /** FPU forms: the x87/MMX/SSE state the case starts from. */
  fpu?: FpuState;
}

function newCtx(v: FormVariant, rng: Rng): Ctx {
  const regs = Array.from({ length: 16 }, () => randValue(rng));
  let rflags = 0n;
  for (const f of ARITH) if (rng.chance(0.5)) rflags |= f;
  return {
    rng, v, form: v.form, size: v.bits / 8, regs, pinned: new Set(), rflags,
    dataSeed: (rng.u32() >>> 0) || 1, ops: {}, hiMode: false,
  };
}

function setReg(ctx: Ctx, r: number, value: bigint, pin = true): void {
  ctx.regs[r] = BigInt.asUintN(64, value);
  if (pin) ctx.pinned.add(r);
}

/** Write the low `bits` bits of a register, keeping (random) upper bits. */
function setLow(ctx: Ctx, r: number, bits: number, value: bigint, pin = true): void {
  if (bits >= 64) return setReg(ctx, r, value, pin);
  const mask = (1n << BigInt(bits)) - 1n;
  setReg(ctx, r, (ctx.regs[r] & ~mask) | (BigInt.asUintN(bits, value)), pin);
}

/** Value of a register operand (register number, AH..BH = 16..19 for bytes) at `size` bytes. */
function regValue(ctx: Ctx, r: number, size: number): bigint {
  if (r >= 16) return (ctx.regs[r - 16] >> 8n) & 0xffn;
  return BigInt.asUintN(size * 8, ctx.regs[r]);
}

function regLimit(ctx: Ctx): number { return ctx.hiMode ? 8 : 16; }

/** Registers that no constraint has claimed (candidates for address registers). */
function freeRegs(ctx: Ctx, exclude: number[] = []): number[] {
  const out: number[] = [];
  for (let r = 0; r < regLimit(ctx); r++) if (!ctx.pinned.has(r) && !exclude.includes(r)) out.push(r);
  return out;
}

/** Pick a register operand. Byte operands in hiMode come from AL..BL and AH..BH. */
function pickReg(ctx: Ctx, byte: boolean, free = false): number {
  const { rng } = ctx;
  let cands: number[];
  if (byte && ctx.hiMode) cands = [0, 1, 2, 3, 16, 17, 18, 19];
  else cands = Array.from({ length: regLimit(ctx) }, (_, i) => i);
  if (free) cands = cands.filter((r) => !ctx.pinned.has(r >= 16 ? r - 16 : r));
  if (!cands.length) throw new Retry();
  return rng.pick(cands);
}

function stackRsp(ctx: Ctx): bigint {
  const { rng } = ctx;
  let off = 0x1000 + (rng.range(-0xe0, 0xe0) * 8);
  if (rng.chance(0.1)) off += rng.range(1, 7);
  const rsp = DATA_LO + BigInt(off);
  setReg(ctx, 4, rsp);
  return rsp;
}

// ---------------------------------------------------------------- memory operands

interface MemOpts {
  /** Bytes accessed from the effective address. */
  room: number;
  /** Linear offset alignment (offset % align === alignRem). */
  align?: number;
  alignRem?: number;
  /** Allowed range of the region offset (default the whole region). */
  offRange?: [number, number];
  /** A pinned base register with a known value (RSP in stack forms: its effective value). */
  knownBase?: { reg: number; value: bigint };
  noGs?: boolean;
  noAddr32?: boolean;
  /** LEA: the address is never accessed; often randomise it. */
  wild?: boolean;
  /** Allow a deliberately faulting address (non-canonical / far) now and then. */
  allowFault?: boolean;
  /** A locked access: it must not straddle a 64-byte cache line. A split lock is host-dependent
   *  natively (with split-lock detection the kernel stalls the task: the runner times out). */
  noSplit?: boolean;
}

const CACHE_LINE = 64;

function splits(off: number, room: number): boolean { return (off % CACHE_LINE) + room > CACHE_LINE; }

function pickOffset(rng: Rng, o: MemOpts): number {
  const lo = o.offRange?.[0] ?? 0;
  const hi = (o.offRange?.[1] ?? DATA_SIZE) - o.room;
  if (hi < lo) throw new Retry();
  for (let t = 0; t < 100; t++) {
    const r = rng.next();
    let off = r < 0.08 ? lo : r < 0.16 ? hi : rng.range(lo, hi);
    if (o.align) {
      const rem = o.alignRem ?? 0;
      off = off - (((off - rem) % o.align) + o.align) % o.align;
      if (off < lo) off += o.align;
      if (off > hi) continue;
    }
    if (o.noSplit && splits(off, o.room)) continue;
    return off;
  }
  throw new Retry();
}

function dispChoice(rng: Rng): { disp: number; dispSize?: 0 | 8 | 32 } {
  const r = rng.next();
  if (r < 0.25) return { disp: 0 };
  if (r < 0.6) return { disp: rng.range(-128, 127) };
  if (r < 0.7) return { disp: rng.range(-128, 127), dispSize: 32 };
  if (r < 0.85) return { disp: rng.range(-0x1000, 0x1000) };
  return { disp: rng.u32() | 0 };
}

function indexValue(rng: Rng, addr32: boolean): bigint {
  const r = rng.next();
  if (r < 0.35) return BigInt.asUintN(64, BigInt(rng.range(-64, 64)));
  if (r < 0.55) return BigInt.asUintN(64, BigInt(rng.range(-0x10000, 0x10000)));
  return addr32 ? rng.u64() : rng.chance(0.5) ? rng.u64() : randValue(rng);
}

/** Random upper 32 bits for a register used in 32-bit address computation (ignored there). */
function upper32(rng: Rng): bigint { return rng.chance(0.5) ? BigInt(rng.u32()) << 32n : 0n; }

type Shape = 'base' | 'base+index' | 'same' | 'index' | 'abs' | 'rip' | 'known';

function chooseMem(ctx: Ctx, o: MemOpts): MemRef {
  const { rng } = ctx;
  if (o.allowFault && rng.chance(0.015)) return chooseFaultMem(ctx);
  for (let attempt = 0; attempt < 60; attempt++) {
    const addr32 = !o.noAddr32 && rng.chance(0.1);
    const gs = !o.noGs && rng.chance(0.12);
    const seg: Seg | undefined = gs ? 'gs' : rng.chance(0.03) ? rng.pick(['ds', 'es', 'ss', 'cs'] as const) : undefined;
    const off = pickOffset(rng, o);
    const eff = gs ? BigInt(off) : DATA_LO + BigInt(off); // what base+index*scale+disp must produce
    const mod = addr32 ? 1n << 32n : 1n << 64n;
    const wrap = (x: bigint) => ((x % mod) + mod) % mod;
    const free = freeRegs(ctx);
    const freeIdx = free.filter((r) => r !== 4);
    const shapes: [Shape, number][] = [
      ['base', 30], ['base+index', 30], ['same', 5], ['index', 8], ['abs', 5], ['rip', 14],
    ];
    if (o.knownBase) shapes.push(['known', 25]);
    let total = 0;
    for (const [, w] of shapes) total += w;
    let pickW = rng.next() * total;
    let shape: Shape = 'base';
    for (const [s, w] of shapes) { if ((pickW -= w) < 0) { shape = s; break; } }

    const mem: MemRef = {};
    if (seg) mem.seg = seg;
    if (addr32) mem.addr32 = true;
    const vals = new Map<number, bigint>();
    let actual = eff; // the address the chosen registers produce ('same' may round)
    const scale = rng.pick([1, 2, 4, 8] as const);
    switch (shape) {
      case 'base': {
        if (!free.length) continue;
        const b = rng.pick(free);
        const d = dispChoice(rng);
        mem.base = b; mem.disp = d.disp; if (d.dispSize !== undefined) mem.dispSize = d.dispSize;
        vals.set(b, wrap(eff - BigInt(d.disp)));
        break;
      }
      case 'base+index': {
        if (free.length < 2 || !freeIdx.length) continue;
        const x = rng.pick(freeIdx);
        const b = rng.pick(free.filter((r) => r !== x));
        const d = dispChoice(rng);
        const xv = indexValue(rng, addr32);
        mem.base = b; mem.index = x; mem.scale = scale; mem.disp = d.disp;
        if (d.dispSize !== undefined) mem.dispSize = d.dispSize;
        vals.set(x, xv);
        vals.set(b, wrap(eff - xv * BigInt(scale) - BigInt(d.disp)));
        break;
      }
      case 'same': {
        if (!freeIdx.length) continue;
        const r = rng.pick(freeIdx);
        const d = rng.range(-128, Math.min(127, Number(eff)));
        const k = BigInt(scale + 1);
        const v = (eff - BigInt(d)) / k; // eff - d >= 0
        const got = v * k + BigInt(d);
        const gotOff = Number(got - (gs ? 0n : DATA_LO));
        if (gotOff < (o.offRange?.[0] ?? 0) || gotOff + o.room > (o.offRange?.[1] ?? DATA_SIZE)) continue;
        if (o.align && (gotOff - (o.alignRem ?? 0)) % o.align !== 0) continue;
        if (o.noSplit && splits(gotOff, o.room)) continue;
        mem.base = r; mem.index = r; mem.scale = scale; mem.disp = d;
        vals.set(r, v);
        actual = got;
        break;
      }
      case 'index': {
        if (!freeIdx.length) continue;
        const x = rng.pick(freeIdx);
        const xv = addr32 ? rng.u64() : BigInt.asUintN(64, BigInt(rng.range(-0x100000, 0x100000)));
        const d = addr32 ? wrap(eff - xv * BigInt(scale)) : eff - BigInt.asIntN(64, xv) * BigInt(scale);
        const dn = Number(BigInt.asIntN(32, d));
        if (!addr32 && BigInt(dn) !== d) continue;
        mem.index = x; mem.scale = scale; mem.disp = dn;
        vals.set(x, xv);
        break;
      }
      case 'abs':
        mem.disp = Number(eff);
        break;
      case 'rip':
        mem.base = 'rip'; mem.disp = 0;
        ctx.ripTarget = eff;
        break;
      case 'known': {
        const kb = o.knownBase!;
        if (ctx.hiMode && kb.reg >= 8) continue;
        mem.base = kb.reg;
        let rest = eff - (addr32 ? BigInt.asUintN(32, kb.value) : kb.value);
        if (freeIdx.length && rng.chance(0.4)) {
          const x = rng.pick(freeIdx);
          const xv = BigInt(rng.range(-64, 64));
          mem.index = x; mem.scale = scale;
          vals.set(x, BigInt.asUintN(64, xv));
          rest -= xv * BigInt(scale);
        }
        mem.disp = Number(rest);
        mem.dispSize = rng.chance(0.5) || !(rest >= -128n && rest <= 127n) ? 32 : undefined;
        break;
      }
    }
    if (shape !== 'rip') ctx.ripTarget = undefined;
    for (const [r, v] of vals) {
      let val = v;
      if (addr32) val = BigInt.asUintN(32, v) | upper32(rng);
      if (o.wild && rng.chance(0.5)) val = randValue(rng);
      setReg(ctx, r, val);
    }
    if (o.wild && rng.chance(0.3) && mem.base !== 'rip') {
      const d = dispChoice(rng);
      mem.disp = d.disp; mem.dispSize = d.dispSize;
      if (mem.base !== undefined && (mem.base & 7) === 5 && mem.dispSize === 0) mem.dispSize = undefined;
    }
    if (!o.wild) ctx.memLinear = gs ? BigInt(GS_BASE) + actual : actual;
    return mem;
  }
  throw new Retry();
}

/** A memory operand that faults on both sides: non-canonical, or canonical but far above anything the
 *  native runner maps (and above the emulator's 4 MiB). Bases other than RSP/RBP (no #SS). */
function chooseFaultMem(ctx: Ctx): MemRef {
  const { rng } = ctx;
  const free = freeRegs(ctx, [4, 5, 12, 13]);
  if (!free.length) throw new Retry();
  const b = rng.pick(free);
  const target = rng.pick([0x7fff0000000n, 0x8000000000000000n, 0x0000800000000000n, 0xffff7fff00000000n])
    + BigInt(rng.below(0x1000));
  const d = rng.range(-128, 127);
  setReg(ctx, b, target - BigInt(d));
  ctx.ripTarget = undefined;
  ctx.memLinear = undefined;
  return { base: b, disp: d };
}

// ---------------------------------------------------------------- generic ModRM forms

interface GenericOpts {
  memOpts?: Partial<MemOpts>;
  /** Pick the G / r/m register among unclaimed registers (and claim it). */
  freeG?: boolean;
  freeRm?: boolean;
  noLock?: boolean;
}

function isByteTok(t: string | undefined): boolean { return !!t && t.endsWith('b') && t !== 'Mdq'; }

function decideHiMode(ctx: Ctx): void {
  const f = ctx.form;
  const anyByte = [rmToken(f), gToken(f), zToken(f)].some(isByteTok);
  const needsRexW = f.osize === 'v' && ctx.size === 8;
  ctx.hiMode = anyByte && !needsRexW && ctx.rng.chance(0.25);
}

function generic(ctx: Ctx, g: GenericOpts = {}): void {
  const { rng, form, ops, v } = ctx;
  if (form.osize !== 'none') ops.size = ctx.size as 1 | 2 | 4 | 8;
  const gt = gToken(form), rt = rmToken(form), zt = zToken(form);
  if (gt) {
    ops.reg = pickReg(ctx, gt === 'Gb', g.freeG);
    if (g.freeG) ctx.pinned.add(ops.reg >= 16 ? ops.reg - 16 : ops.reg);
  }
  if (zt) {
    const lo = form.op & 7;
    if (ctx.hiMode) ops.zreg = zt === 'Zb' && lo >= 4 ? 16 + lo - 4 : lo;
    else ops.zreg = lo + (rng.chance(0.4) ? 8 : 0);
  }
  let lock = false;
  if (form.lock && !g.noLock) {
    if (v.kind === 'mem') lock = rng.chance(0.3);
    else if (v.kind === 'reg') lock = rng.chance(0.03); // #UD on both sides
  }
  if (form.modrm && rt) {
    if (v.kind === 'reg') {
      ops.rm = pickReg(ctx, rt === 'Eb', g.freeRm);
      if (g.freeRm) ctx.pinned.add(ops.rm >= 16 ? ops.rm - 16 : ops.rm);
    } else {
      const locked = lock || form.mn === 'xchg'; // XCHG with memory is implicitly locked
      ops.rm = chooseMem(ctx, { room: rmAccessSize(form, ctx.size), allowFault: true, noSplit: locked, ...g.memOpts });
    }
  }
  // Immediates (callers override where the value matters).
  switch (form.imm) {
    case 'b': ops.imm = immValue(rng, 8); break;
    case 'w': ops.imm = immValue(rng, 16); break;
    case 'z': ops.imm = immValue(rng, ctx.size === 2 ? 16 : 32); break;
    case 'v': ops.imm = immValue(rng, ctx.size * 8); break;
    default: break;
  }
  if (lock) ops.lock = true;
  redundantPrefixes(ctx);
}

function redundantPrefixes(ctx: Ctx): void {
  const { rng, form, ops } = ctx;
  if (form.map === 0 && form.op === 0x90) return; // NOP / PAUSE: REX.B would make XCHG r8, rax
  if (!ctx.hiMode && rng.chance(0.06)) {
    const wOk = form.osize === 'b' || form.osize === 'f64' || form.osize === 'none' || (form.osize === 'd64' && ctx.size === 8);
    ops.rex = wOk && rng.chance(0.5) ? 0x48 : 0x40;
  }
  if (form.osize === 'b' && rng.chance(0.03)) ops.legacy = [0x66]; // ignored on byte operations
}

// ---------------------------------------------------------------- special forms

function genShift(ctx: Ctx): void {
  const { rng, form } = ctx;
  const usesCl = form.ops.includes('CL');
  const shiftd = form.undef === 'shiftd';
  const pickCount = (): number => {
    for (;;) {
      const c = shiftCount(rng);
      if (shiftd && ctx.size === 2 && (c & 0x1f) > 16) continue; // result undefined
      return c;
    }
  };
  let count: number;
  if (usesCl) {
    count = pickCount();
    setLow(ctx, 1, 8, BigInt(count));
  } else if (form.ops.includes('1')) count = 1;
  else count = 0;
  generic(ctx);
  if (form.imm === 'b') { count = pickCount(); ctx.ops.imm = count; }
  ctx.count = count;
}

function genDiv(ctx: Ctx): void {
  const { rng, form, v } = ctx;
  const size = ctx.size, n = BigInt(size * 8);
  const signed = form.mn === 'idiv';
  ctx.pinned.add(0);
  if (size > 1) ctx.pinned.add(2);
  generic(ctx);
  const rm = ctx.ops.rm!;
  let d: bigint;
  if (typeof rm === 'number') {
    const overlaps = size === 1 ? rm === 0 || rm === 16 : rm === 0 || rm === 2;
    if (overlaps) return; // dividend and divisor share a register: leave it to chance
    const r = rng.next();
    d = r < 0.1 ? 0n : r < 0.35 ? edgeAt(rng, size * 8) : r < 0.55 ? BigInt(rng.range(1, 300)) : rng.bits(size * 8);
    d = BigInt.asUintN(size * 8, d); // the divisor register holds only `size` bytes
    if (rm >= 16) setReg(ctx, rm - 16, (ctx.regs[rm - 16] & ~0xff00n) | (d << 8n));
    else setLow(ctx, rm, size * 8, d);
  } else {
    if (ctx.memLinear === undefined) return; // faulting address
    d = readData(ctx.dataSeed, ctx.memLinear, size);
  }
  const ds = signed ? BigInt.asIntN(size * 8, d) : d;
  let dividend: bigint;
  const r = rng.next();
  if (d === 0n) dividend = rng.bits(size * 16);
  else if (r < 0.12) {
    // #DE: the quotient does not fit
    if (!signed) dividend = ((d + rng.belowBig((1n << n) - d)) << n) | rng.bits(size * 8);
    else {
      const lim = 1n << (n - 1n);
      const q = rng.pick([lim, -lim - 1n, lim + BigInt(rng.range(0, 100))]);
      dividend = q * ds;
      if (ds === 1n || ds === -1n) dividend = ds === -1n ? -lim : lim; // lim / 1 or -lim / -1 overflow
    }
  } else if (!signed) {
    const q = rng.chance(0.25) ? edgeAt(rng, size * 8) : rng.bits(size * 8);
    dividend = q * d + rng.belowBig(d);
  } else {
    const lim = 1n << (n - 1n);
    const q = rng.chance(0.25) ? BigInt.asIntN(size * 8, edgeAt(rng, size * 8)) : BigInt.asIntN(size * 8, rng.bits(size * 8));
    const abs = ds < 0n ? -ds : ds;
    const m = rng.belowBig(abs);
    const p = q * ds;
    dividend = p > 0n ? p + m : p < 0n ? p - m : rng.chance(0.5) ? m : -m;
    if (q < -lim || q >= lim) throw new Error('idiv quotient out of range');
  }
  const u = BigInt.asUintN(size * 16, dividend);
  if (size === 1) setLow(ctx, 0, 16, u);
  else {
    setLow(ctx, 0, size * 8, u & ((1n << n) - 1n));
    setLow(ctx, 2, size * 8, u >> n);
  }
}

function genCmpxchg(ctx: Ctx): void {
  const { rng } = ctx;
  ctx.pinned.add(0);
  generic(ctx);
  if (!rng.chance(0.5)) return;
  const rm = ctx.ops.rm!;
  let dest: bigint;
  if (typeof rm === 'number') dest = regValue(ctx, rm, ctx.size);
  else if (ctx.memLinear !== undefined) dest = readData(ctx.dataSeed, ctx.memLinear, ctx.size);
  else return;
  setLow(ctx, 0, ctx.size * 8, dest);
}

function genCmpxchg8b(ctx: Ctx): void {
  const { rng } = ctx;
  const half = ctx.size; // 4: CMPXCHG8B, 8: CMPXCHG16B
  ctx.pinned.add(0); ctx.pinned.add(2);
  const misalign = half === 8 && rng.chance(0.1); // #GP on both sides
  const align = half === 8 ? 16 : undefined;
  const alignRem = misalign ? rng.pick([1, 4, 8, 12, 15]) : 0;
  generic(ctx, { memOpts: { align, alignRem } });
  if (ctx.memLinear === undefined || !rng.chance(0.5)) return;
  setLow(ctx, 0, half * 8, readData(ctx.dataSeed, ctx.memLinear, half));
  setLow(ctx, 2, half * 8, readData(ctx.dataSeed, ctx.memLinear + BigInt(half), half));
}

function genBtMem(ctx: Ctx): void {
  const { rng } = ctx;
  const size = ctx.size, bits = size * 8;
  const margin = 8;
  generic(ctx, { freeG: true, memOpts: { offRange: [margin, DATA_SIZE - margin] } });
  const g = ctx.ops.reg!;
  if (ctx.memLinear === undefined) return; // faulting address: any offset
  const ea = ctx.memLinear;
  // The bit string chunk accessed: ea + size * floor(offset / bits); keep it (with a margin) inside.
  const lo = DATA_LO + BigInt(margin), hi = DATA_LO + BigInt(DATA_SIZE - margin - size);
  let kmin = Number((lo - ea) / BigInt(size)) + 1, kmax = Number((hi - ea) / BigInt(size)) - 1;
  if (size === 2) { kmin = Math.max(kmin, -2048); kmax = Math.min(kmax, 2047); }
  const pickK = (): number => {
    const r = rng.next();
    const k = r < 0.35 ? 0 : r < 0.5 ? rng.pick([-1, 1]) : r < 0.6 ? rng.pick([kmin, kmax]) : rng.range(kmin, kmax);
    return k < kmin || k > kmax ? 0 : k;
  };
  let k = pickK();
  // A locked chunk must not straddle a cache line (the operand at EA itself does not: noSplit).
  const chunkSplits = (kk: number) => splits(Number(ea - DATA_LO) + kk * size, size);
  for (let t = 0; ctx.ops.lock && chunkSplits(k) && t < 50; t++) k = pickK();
  if (ctx.ops.lock && chunkSplits(k)) k = 0;
  const offset = BigInt(k) * BigInt(bits) + BigInt(rng.below(bits));
  setLow(ctx, g, bits, offset);
}

function genLea(ctx: Ctx): void {
  generic(ctx, { memOpts: { wild: true, allowFault: false } });
  ctx.memLinear = undefined;
}

function genBitScan(ctx: Ctx): void {
  generic(ctx);
  const rm = ctx.ops.rm!;
  if (typeof rm === 'number' && ctx.rng.chance(0.15)) setLow(ctx, rm, ctx.size * 8, 0n, false);
}

function genXlat(ctx: Ctx): void {
  const { rng, ops } = ctx;
  ops.size = 1;
  const addr32 = rng.chance(0.12);
  const gs = rng.chance(0.12);
  const off = rng.chance(0.1) ? rng.pick([0, DATA_SIZE - 256]) : rng.range(0, DATA_SIZE - 256);
  let rbx = gs ? BigInt(off) : DATA_LO + BigInt(off);
  if (addr32) { rbx |= upper32(rng); ops.addr32 = true; }
  if (gs) ops.seg = 'gs';
  else if (rng.chance(0.05)) ops.seg = 'ds';
  setReg(ctx, 3, rbx);
  redundantPrefixes(ctx);
}

function genMoffs(ctx: Ctx): void {
  const { rng, ops } = ctx;
  ops.size = ctx.size as 1 | 2 | 4 | 8;
  if (rng.chance(0.02)) { ops.imm = 0x8000000000000000n + BigInt(rng.below(0x1000)); return; } // #GP both sides
  const addr32 = rng.chance(0.15);
  const gs = rng.chance(0.15);
  const off = pickOffset(rng, { room: ctx.size });
  ops.imm = gs ? BigInt(off) : DATA_LO + BigInt(off);
  if (addr32) ops.addr32 = true;
  if (gs) ops.seg = 'gs';
  redundantPrefixes(ctx);
}

function genString(ctx: Ctx): void {
  const { rng, form, ops } = ctx;
  const size = ctx.size;
  ops.size = size as 1 | 2 | 4 | 8;
  const mn = form.mn;
  const usesSi = mn === 'movs' || mn === 'cmps' || mn === 'lods';
  const usesDi = mn !== 'lods';
  const r = rng.next();
  if (form.rep === 'rep') ops.rep = r < 0.5 ? 0xf3 : undefined;
  else ops.rep = r < 0.3 ? 0xf3 : r < 0.6 ? 0xf2 : undefined;
  if (!ops.rep) delete ops.rep;
  const addr32 = rng.chance(0.12);
  if (addr32) ops.addr32 = true;
  const df = rng.chance(0.3);
  if (df) ctx.rflags |= DF;
  const cr = rng.next();
  const n = !ops.rep ? 1 : cr < 0.12 ? 0 : cr < 0.24 ? 1 : cr < 0.32 ? 2 : rng.range(3, 40);
  const span = Math.max(n, 1) * size;
  const pickOff = (): number => (df ? rng.range(span - size, DATA_SIZE - size) : rng.range(0, DATA_SIZE - span));
  const inRange = (o: number): boolean => (df ? o >= span - size && o <= DATA_SIZE - size : o >= 0 && o <= DATA_SIZE - span);
  const gsSrc = usesSi && rng.chance(0.12);
  const offS = pickOff();
  let offD = pickOff();
  if (mn === 'cmps' && rng.chance(0.3)) offD = offS; // equal strings: REPE runs to the end
  if (mn === 'movs' && rng.chance(0.2)) {
    const o = offS + rng.range(-2, 2) * size; // overlapping copy
    if (inRange(o)) offD = o;
  }
  if (gsSrc) ops.seg = 'gs';
  const hi = (): bigint => (addr32 ? upper32(rng) : 0n);
  if (usesSi) setReg(ctx, 6, (gsSrc ? BigInt(offS) : DATA_LO + BigInt(offS)) | hi());
  if (usesDi) setReg(ctx, 7, (DATA_LO + BigInt(offD)) | hi());
  if (ops.rep) setReg(ctx, 1, BigInt(n) | hi());
  if (mn === 'scas' || mn === 'cmps') {
    // Make some comparisons succeed: scas against an element of the string.
    if (mn === 'scas' && rng.chance(0.5)) {
      const k = ops.rep === 0xf2 ? rng.range(0, Math.max(n - 1, 0)) : 0;
      const at = DATA_LO + BigInt(offD + (df ? -k : k) * size);
      setLow(ctx, 0, size * 8, readData(ctx.dataSeed, at, size));
    }
  }
  redundantPrefixes(ctx);
}

/** Branch targets: an address in the code page outside [INSN_ADDR, INSN_ADDR + 16). */
function codeTarget(rng: Rng): bigint {
  const r = rng.next();
  let off: number;
  if (r < 0.5) off = CODE_OFFSET + (rng.chance(0.5) ? -rng.range(1, 0x40) : rng.range(16, 0x50));
  else {
    do off = rng.below(CODE_SIZE); while (off >= CODE_OFFSET && off < CODE_OFFSET + 16);
  }
  return BigInt(CODE_ADDR + off);
}

function relDisp(rng: Rng, rel: 8 | 32, len: number): number {
  const negMin = rel === 8 ? -128 : -0x7f0;
  const negMax = -(len + 1);
  const posMax = rel === 8 ? 127 : 0x7f0;
  const r = rng.next();
  if (r < 0.2) return 0;
  if (r < 0.3) return negMax;
  if (r < 0.36) return negMin;
  if (r < 0.42) return posMax;
  if (r < 0.6) return rng.chance(0.5) ? rng.range(negMax - 16, negMax) : rng.range(0, 16);
  return rng.chance(0.5) ? rng.range(negMin, negMax) : rng.range(0, posMax);
}

const RCX_COUNTS = [0n, 1n, 2n, 3n, 0xffffffffn, 0x100000000n, 0x100000001n, M64];

function genBranch(ctx: Ctx): void {
  const { rng, form, ops } = ctx;
  ops.size = 8;
  const mn = form.mn;
  if (form.ops[0] === 'Jb' || form.ops[0] === 'Jz') {
    ctx.rel = form.ops[0] === 'Jb' ? 8 : 32;
    if (mn === 'call') stackRsp(ctx);
    if (mn === 'loop' || mn === 'loope' || mn === 'loopne' || mn === 'jrcxz') {
      const addr32 = rng.chance(0.15);
      if (addr32) ops.addr32 = true;
      let rcx = rng.chance(0.6) ? rng.pick(RCX_COUNTS) : rng.chance(0.5) ? BigInt(rng.range(0, 20)) : rng.u64();
      if (addr32 && rng.chance(0.5)) rcx = BigInt.asUintN(32, rcx) | upper32(rng);
      setReg(ctx, 1, rcx);
    }
    redundantPrefixes(ctx);
    return;
  }
  if (mn === 'ret') {
    // The return address comes from the data pattern: never a code address, so these fault (#GP on a
    // non-canonical address, #PF on a far canonical one) on both sides.
    stackRsp(ctx);
    if (form.imm === 'w') ops.imm = rng.chance(0.5) ? rng.pick([0, 8, 0x10, 0xffff, 0x8000]) : rng.below(0x10000);
    redundantPrefixes(ctx);
    return;
  }
  // CALL/JMP Eq
  if (mn === 'call') stackRsp(ctx);
  if (ctx.v.kind === 'reg') {
    generic(ctx, { freeRm: true });
    setReg(ctx, ctx.ops.rm as number, codeTarget(rng));
  } else {
    // The target qword comes from the data pattern: faults on both sides (see RET).
    generic(ctx, { memOpts: { knownBase: ctx.pinned.has(4) ? { reg: 4, value: ctx.regs[4] } : undefined } });
  }
}

function genStack(ctx: Ctx): void {
  const { rng, form, ops } = ctx;
  const size = ctx.size;
  const mn = form.mn;
  ops.size = size as 2 | 8;
  if (mn === 'leave') {
    let off = rng.range(0, (DATA_SIZE - 8) / 8) * 8;
    if (rng.chance(0.15)) off = rng.range(0, DATA_SIZE - 8);
    setReg(ctx, 5, DATA_LO + BigInt(off));
    redundantPrefixes(ctx);
    return;
  }
  const rsp = stackRsp(ctx);
  switch (mn) {
    case 'enter': {
      let rbpOff = rng.range(0x200 / 8, (DATA_SIZE - 0x10) / 8) * 8;
      if (rng.chance(0.1)) rbpOff += rng.range(1, 7);
      setReg(ctx, 5, DATA_LO + BigInt(rbpOff));
      ops.imm = rng.chance(0.5) ? rng.pick([0, 1, 8, 0x10, 0x100, 0x7ff]) : rng.range(0, 0x7ff);
      ops.imm2 = rng.chance(0.6) ? rng.pick([0, 1, 2, 3, 4, 31, 32, 33, 255]) : rng.below(256);
      redundantPrefixes(ctx);
      return;
    }
    case 'popf': {
      // The popped image must not set TF, NT or AC natively: pick a stack slot that does not.
      const bad = size === 8 ? TF | NT | AC : TF | NT;
      for (let t = 0; t < 100; t++) {
        const v = readData(ctx.dataSeed, ctx.regs[4], size);
        if ((v & bad) === 0n) { redundantPrefixes(ctx); return; }
        stackRsp(ctx);
      }
      throw new Retry();
    }
    case 'pushf':
      if (rng.chance(0.3)) ctx.rflags |= DF;
      redundantPrefixes(ctx);
      return;
    case 'push': case 'pop':
      if (form.modrm) {
        // POP Ev with an RSP base computes the address after the increment.
        const value = mn === 'pop' ? rsp + BigInt(size) : rsp;
        generic(ctx, { memOpts: { knownBase: { reg: 4, value } } });
      } else generic(ctx);
      if (form.imm === 'b') ops.imm = immValue(rng, 8);
      return;
  }
  generic(ctx);
}

// ---------------------------------------------------------------- x87 / MMX / SSE forms

const FPU_FORMS = new Set<Form>(fpuForms);

/** The x87/MMX/SSE state of a case, serialised by fpuImage into the FXSAVE64 layout. */
export interface FpuState {
  fcw: number;
  fsw: number;
  /** Abridged tag word: bit j = physical register Rj valid. */
  ftw: number;
  mxcsr: number;
  /** ST(0)..ST(7) in stack order (= the FXSAVE slots), 80-bit values. MMi is physical Ri, i.e.
   *  st[(i - TOP) & 7]. */
  st: bigint[];
  /** XMM0..XMM15, 128-bit values. */
  xmm: bigint[];
}

/** FSW bits compared for a form: all but the condition codes it declares undefined. */
export function fswMaskFor(form: Form): number {
  const u = typeof form.undef === 'number' ? form.undef : 0;
  return 0xffff & ~((u >>> FSW_UNDEF_SHIFT) & FSW_CC);
}

export function fpuImage(s: FpuState): Uint8Array {
  const img = new Uint8Array(FXSAVE_BYTES);
  const v = new DataView(img.buffer);
  v.setUint16(abi.FX_FCW, s.fcw, true);
  v.setUint16(abi.FX_FSW, s.fsw, true);
  v.setUint8(abi.FX_FTW, s.ftw);
  v.setUint32(abi.FX_MXCSR, s.mxcsr, true);
  for (let i = 0; i < 8; i++) {
    v.setBigUint64(abi.FX_ST0 + 16 * i, s.st[i] & M64, true);
    v.setUint16(abi.FX_ST0 + 16 * i + 8, Number((s.st[i] >> 64n) & 0xffffn), true);
  }
  for (let i = 0; i < 16; i++) {
    v.setBigUint64(abi.FX_XMM0 + 16 * i, s.xmm[i] & M64, true);
    v.setBigUint64(abi.FX_XMM0 + 16 * i + 8, (s.xmm[i] >> 64n) & M64, true);
  }
  return img;
}

function defaultFpuState(): FpuState {
  return { fcw: 0x037f, fsw: 0, ftw: 0, mxcsr: 0x1f80, st: Array(8).fill(0n), xmm: Array(16).fill(0n) };
}

// ---- floating-point values

const f32buf = new DataView(new ArrayBuffer(8));
function f32bits(x: number): number { f32buf.setFloat32(0, x, true); return f32buf.getUint32(0, true); }
function f64bits(x: number): bigint { f32buf.setFloat64(0, x, true); return f32buf.getBigUint64(0, true); }

const F32_EDGE: number[] = [
  0x00000000, 0x80000000, 0x00000001, 0x80000001, 0x007fffff, 0x807fffff, 0x00400000, // zeros, denormals
  0x00800000, 0x80800000, 0x7f7fffff, 0xff7fffff, 0x00800001, // min/max normals
  0x7f800000, 0xff800000, // infinities
  0x7fc00000, 0xffc00000, 0x7fc12345, 0xffffffff, 0x7f800001, 0xff800001, 0x7fa00000, 0x7fbfffff, // NaNs
  0x3f800000, 0xbf800000, 0x3fc00000, 0x3f000000, 0xbf000000, 0x40200000, 0xc0200000, 0x40600000, // 1 -1 1.5 0.5 2.5 3.5
  0x3effffff, 0x3f7fffff, 0x3f800001, 0x4b800000, 0x4b800001, 0x4b000000, 0x4affffff, // rounding boundaries
  0x4effffff, 0x4f000000, 0xcf000000, 0xcf000001, 0x5effffff, 0x5f000000, 0xdf000000, 0xdf000001, // 2^31, 2^63
  0x4f800000, 0x5f800000, 0x46fffe00, 0x47000000, 0xc7000000, 0xc7000100, // 2^32, 2^64, 2^15
  0x33800000, 0x0c000000, 0x7e800000, 0x01000000, 0x7effffff,
];

const F64_EDGE: bigint[] = [
  0n, 0x8000000000000000n, 1n, 0x8000000000000001n, 0x000fffffffffffffn, 0x0008000000000000n, // zeros, denormals
  0x0010000000000000n, 0x8010000000000000n, 0x7fefffffffffffffn, 0xffefffffffffffffn, // min/max normals
  0x7ff0000000000000n, 0xfff0000000000000n, // infinities
  0x7ff8000000000000n, 0xfff8000000000000n, 0x7ff800000000abcdn, 0xffffffffffffffffn,
  0x7ff0000000000001n, 0xfff0000000000001n, 0x7ff4000000000000n, 0x7ff7ffffffffffffn, // NaNs
  f64bits(1), f64bits(-1), f64bits(0.5), f64bits(-0.5), f64bits(1.5), f64bits(2.5), f64bits(-2.5), f64bits(3.5),
  f64bits(2147483647), f64bits(2147483647.5), f64bits(2147483648), f64bits(-2147483648), f64bits(-2147483648.5),
  f64bits(-2147483649), f64bits(4294967296), f64bits(2 ** 63), f64bits(-(2 ** 63)), 0x43dfffffffffffffn,
  0xc3e0000000000001n, f64bits(2 ** 64), f64bits(2 ** 52), f64bits(2 ** 52 + 1), f64bits(2 ** 53), f64bits(0.49999999999999994),
  f64bits(32767.5), f64bits(-32768.5), f64bits(Math.PI), f64bits(1e-310), f64bits(1e308), f64bits(3.4028235677973366e38),
  f64bits(1.1754942106924411e-38), f64bits(1.401298464324817e-45), f64bits(7.006492321624085e-46),
];

function f32Value(rng: Rng): number {
  const r = rng.next();
  if (r < 0.35) return rng.pick(F32_EDGE);
  if (r < 0.7) {
    // Normal, exponent near 1 so that arithmetic stays meaningful; mantissas often short.
    let mant = rng.u32() & 0x7fffff;
    if (rng.chance(0.4)) mant &= ~((1 << rng.below(23)) - 1) & 0x7fffff;
    const exp = rng.chance(0.8) ? rng.range(127 - 24, 127 + 24) : rng.range(1, 254);
    return ((rng.chance(0.5) ? 0x80000000 : 0) | (exp << 23) | mant) >>> 0;
  }
  if (r < 0.82) {
    // Near an integer: k + {0, .5, .25, .75, +-1 ulp}
    const k = rng.chance(0.5) ? rng.range(-300, 300) : rng.range(-0x7fffffff, 0x7fffffff);
    const x = Math.fround(k + rng.pick([0, 0.5, -0.5, 0.25, 0.75]));
    const b = f32bits(x);
    return rng.chance(0.3) ? (b + rng.pick([1, -1])) >>> 0 : b;
  }
  return rng.u32();
}

function f64Value(rng: Rng): bigint {
  const r = rng.next();
  if (r < 0.35) return rng.pick(F64_EDGE);
  if (r < 0.7) {
    let mant = rng.bits(52);
    if (rng.chance(0.4)) mant &= ~((1n << BigInt(rng.below(52))) - 1n) & ((1n << 52n) - 1n);
    const exp = rng.chance(0.8) ? rng.range(1023 - 60, 1023 + 60) : rng.range(1, 2046);
    return (rng.chance(0.5) ? 1n << 63n : 0n) | (BigInt(exp) << 52n) | mant;
  }
  if (r < 0.82) {
    const k = rng.chance(0.5) ? rng.range(-300, 300) : rng.chance(0.5) ? rng.range(-0x7fffffff, 0x7fffffff)
      : Number(BigInt.asIntN(64, rng.u64()));
    const b = f64bits(k + rng.pick([0, 0.5, -0.5, 0.25, 0.75]));
    return rng.chance(0.3) ? BigInt.asUintN(64, b + rng.pick([1n, -1n])) : b;
  }
  return rng.u64();
}

/** An 80-bit extended-precision value from its fields. */
export function x80(sign: number | bigint, exp: number, mant: bigint): bigint {
  return (BigInt(sign) << 79n) | (BigInt(exp & 0x7fff) << 64n) | BigInt.asUintN(64, mant);
}

const BIT63 = 1n << 63n;

/** The exact 80-bit value of a binary64. */
export function f64To80(bits: bigint): bigint {
  const sign = Number(bits >> 63n);
  const e = Number((bits >> 52n) & 0x7ffn);
  const m = bits & ((1n << 52n) - 1n);
  if (e === 0x7ff) return x80(sign, 0x7fff, BIT63 | (m << 11n));
  if (e === 0) {
    if (m === 0n) return x80(sign, 0, 0n);
    let mm = m, ee = 1 - 1023 + 16383;
    while (!(mm & (1n << 52n))) { mm <<= 1n; ee--; }
    return x80(sign, ee, mm << 11n);
  }
  return x80(sign, e - 1023 + 16383, BIT63 | (m << 11n));
}

/** The exact 80-bit value of an integer |n| < 2^64. */
export function intTo80(n: bigint): bigint {
  if (n === 0n) return 0n;
  const sign = n < 0n ? 1 : 0;
  const a = n < 0n ? -n : n;
  const len = a.toString(2).length;
  return x80(sign, 16383 + len - 1, a << BigInt(64 - len));
}

const X87_EDGE: bigint[] = [
  x80(0, 0, 0n), x80(1, 0, 0n), // zeros
  x80(0, 0x3fff, BIT63), x80(1, 0x3fff, BIT63), x80(0, 0x4000, BIT63), x80(0, 0x3ffe, BIT63), // 1 -1 2 0.5
  x80(0, 0x3fff, 0xc000000000000000n), x80(1, 0x4000, 0xa000000000000000n), x80(0, 0x3ffd, 0xffffffffffffffffn),
  x80(0, 0x7fff, BIT63), x80(1, 0x7fff, BIT63), // infinities
  x80(0, 0x7fff, 0xc000000000000000n), x80(1, 0x7fff, 0xc000000000000000n), x80(0, 0x7fff, 0xc000000000001234n),
  x80(0, 0x7fff, BIT63 | 1n), x80(1, 0x7fff, 0xa000000000000000n), x80(0, 0x7fff, 0xffffffffffffffffn), // NaNs
  x80(0, 0, 1n), x80(1, 0, 0x7fffffffffffffffn), x80(0, 0, 0x4000000000000000n), // denormals
  x80(0, 1, BIT63), x80(1, 1, BIT63), x80(0, 0x7ffe, 0xffffffffffffffffn), x80(1, 0x7ffe, 0xffffffffffffffffn),
  x80(0, 0x4000, 0xc90fdaa22168c235n), x80(0, 0x3fff, 0xc90fdaa22168c235n), x80(1, 0x4001, 0xc90fdaa22168c235n), // pi pi/2 -2pi
  x80(0, 0x403e, BIT63), x80(0, 0x403d, 0xffffffffffffffffn), x80(1, 0x403e, BIT63), // 2^63 (trig range)
  x80(0, 0x3fff, BIT63 | 1n), x80(0, 0x3ffe, 0xffffffffffffffffn), // 1 +- ulp
  ...[2n ** 15n - 1n, 2n ** 15n, -(2n ** 15n), -(2n ** 15n) - 1n, 2n ** 31n - 1n, 2n ** 31n, -(2n ** 31n), -(2n ** 31n) - 1n,
    2n ** 63n - 1n, 2n ** 63n, -(2n ** 63n), 2n ** 64n - 1n, 10n ** 18n - 1n, 10n ** 18n, -(10n ** 18n - 1n), 3n, 100n]
    .map(intTo80),
  ...[2147483647.5, -2147483648.5, 32767.5, -32768.5, 0.5, -0.5, 2.5, -3.5, 1e-300, 1e300]
    .map((x) => f64To80(f64bits(x))),
];
/** Unsupported encodings (#IA on use): pseudo-infinity, pseudo-NaN, unnormal, pseudo-denormal. */
const X87_UNSUPPORTED: bigint[] = [
  x80(0, 0x7fff, 0n), x80(0, 0x7fff, 0x4000000000000000n), x80(0, 0x3fff, 0x4000000000000000n),
  x80(1, 0x1234, 0x0000000000000001n), x80(0, 0, BIT63),
];

function x87Value(rng: Rng): bigint {
  const r = rng.next();
  if (r < 0.33) return rng.pick(X87_EDGE);
  if (r < 0.36) return rng.pick(X87_UNSUPPORTED);
  if (r < 0.66) {
    const mant = BIT63 | (rng.chance(0.4) ? rng.bits(63) & ~((1n << BigInt(rng.below(63))) - 1n) : rng.bits(63));
    return x80(rng.chance(0.5) ? 1 : 0, rng.range(0x3fff - 66, 0x3fff + 66), mant);
  }
  if (r < 0.78) {
    const w = rng.pick([8, 16, 32, 63, 64]);
    const n = rng.bits(w);
    return intTo80(rng.chance(0.5) ? -n : n);
  }
  if (r < 0.9) return f64To80(f64Value(rng));
  return x80(rng.chance(0.5) ? 1 : 0, rng.range(0, 0x7fff), rng.chance(0.9) ? BIT63 | rng.bits(63) : rng.bits(64));
}

/** `n` bits of integer data: lanes of 8/16/32/64 bits holding edge or random values. */
function intBits(rng: Rng, n: number): bigint {
  if (rng.chance(0.05)) return 0n;
  const w = rng.pick([8, 16, 32, 64]);
  let v = 0n;
  for (let at = 0; at < n; at += w) {
    const lane = rng.chance(0.5) ? edgeAt(rng, w) : rng.bits(w);
    v |= lane << BigInt(at);
  }
  return v;
}

type LaneKind = 'f32' | 'f64' | 'int';

/** The element type a form reads from its XMM/MM sources. */
function laneKind(form: Form): LaneKind {
  const mn = form.mn;
  if (/^cvtt?(ps|ss)2/.test(mn)) return 'f32';
  if (/^cvtt?(pd|sd)2/.test(mn)) return 'f64';
  if (/^cvt/.test(mn)) return 'int';
  if (/(ps|ss)$/.test(mn)) return 'f32';
  if (/(pd|sd)$/.test(mn)) return 'f64';
  return 'int';
}

function vecValue(rng: Rng, kind: LaneKind, bits: number): bigint {
  const r = rng.next();
  const k: LaneKind = r < 0.75 ? kind : rng.pick(['f32', 'f64', 'int'] as const);
  let v = 0n;
  if (k === 'f32') for (let at = 0; at < bits; at += 32) v |= BigInt(f32Value(rng)) << BigInt(at);
  else if (k === 'f64') for (let at = 0; at < bits; at += 64) v |= f64Value(rng) << BigInt(at);
  else v = intBits(rng, bits);
  return v;
}

const mask128 = (1n << 128n) - 1n;

// ---- control and status words

function randomMxcsr(rng: Rng): number {
  let m = rng.below(4) << 13; // RC
  if (rng.chance(0.25)) m |= 0x40; // DAZ
  if (rng.chance(0.25)) m |= 0x8000; // FTZ
  // Exception masks: mostly all masked; otherwise each unmasked with probability 1/2.
  if (rng.chance(0.75)) m |= 0x1f80;
  else for (let b = 7; b <= 12; b++) if (rng.chance(0.5)) m |= 1 << b;
  if (rng.chance(0.25)) m |= rng.below(64); // sticky flags
  return m;
}

const PCS = [3, 3, 2, 0]; // precision control 11 (extended), 10 (double), 00 (single); 01 is reserved

/** A random x87 state: control word, 0..8 valid registers from TOP, sticky and (rarely) pending
 *  exceptions. */
function randomX87(rng: Rng, s: FpuState, valueOf: () => bigint): void {
  const masks = rng.chance(0.75) ? 0x3f : rng.below(64);
  s.fcw = masks | 0x40 | (rng.pick(PCS) << 8) | (rng.below(4) << 10);
  const top = rng.below(8);
  const r = rng.next();
  const k = r < 0.05 ? 0 : r < 0.15 ? 1 : r < 0.4 ? 2 : r < 0.8 ? rng.range(3, 7) : 8;
  let ftw = 0;
  if (rng.chance(0.1)) ftw = rng.below(256);
  else for (let i = 0; i < k; i++) ftw |= 1 << ((top + i) & 7);
  s.ftw = ftw;
  for (let i = 0; i < 8; i++) {
    const valid = (ftw >> ((top + i) & 7)) & 1;
    s.st[i] = valid ? valueOf() : rng.chance(0.5) ? x87Value(rng) : 0n;
  }
  let flags = 0;
  if (rng.chance(0.3)) flags = rng.below(64) & masks; // sticky, masked: nothing pending
  if (flags & 1 && rng.chance(0.5)) flags |= 0x40; // stack fault
  if (rng.chance(0.04)) {
    // A pending unmasked exception: the next waiting x87/MMX instruction raises #MF.
    if ((s.fcw & 0x3f) === 0x3f) s.fcw &= ~(1 << rng.below(6));
    const unmasked = ~s.fcw & 0x3f;
    const bits = [0, 1, 2, 3, 4, 5].filter((b) => unmasked & (1 << b));
    flags |= 1 << rng.pick(bits);
  }
  s.fsw = fswWith(flags, top, rng.below(16), s.fcw);
}

/** FSW from exception flags, TOP and the condition codes (bits C0 C1 C2 C3 of `cc`): ES and B
 *  are set exactly when an unmasked exception flag is set, as the hardware keeps them. */
function fswWith(flags: number, top: number, cc: number, fcw: number): number {
  const es = flags & ~fcw & 0x3f ? 0x8080 : 0;
  const c = (cc & 1 ? 0x100 : 0) | (cc & 2 ? 0x200 : 0) | (cc & 4 ? 0x400 : 0) | (cc & 8 ? 0x4000 : 0);
  return (flags & 0x7f) | es | c | (top << 11);
}

/** MMX-style state: registers hold 64-bit integers (any exponent field), TOP mostly 0. */
function randomMmx(rng: Rng, s: FpuState): void {
  const top = rng.chance(0.7) ? 0 : rng.below(8);
  s.ftw = rng.pick([0, 0xff, rng.below(256)]);
  for (let i = 0; i < 8; i++) {
    const exp = rng.chance(0.5) ? 0xffffn : rng.bits(16);
    s.st[i] = (exp << 64n) | intBits(rng, 64);
  }
  let flags = 0;
  if (rng.chance(0.03)) { s.fcw = 0x037f & ~(1 << rng.below(6)); flags = ~s.fcw & 0x3f; } // pending -> #MF
  s.fsw = fswWith(flags, top, rng.below(16), s.fcw);
}

function mmSlot(s: FpuState, mm: number): number { return (mm - ((s.fsw >> 11) & 7)) & 7; }

// ---- memory with required contents (seed search)

/** A data seed and region offset (multiple of `align`, `room` bytes) whose pattern satisfies
 *  `ok`: lets LDMXCSR/FXRSTOR load a valid MXCSR, FBLD valid BCD digits, FLDCW a defined PC. */
function findPattern(rng: Rng, room: number, align: number, ok: (p: Uint8Array, off: number) => boolean): { seed: number; off: number } | undefined {
  const p = new Uint8Array(DATA_SIZE);
  for (let t = 0; t < 4000; t++) {
    const seed = (rng.u32() >>> 0) || 1;
    fillPattern(seed, p);
    const found: number[] = [];
    for (let off = 0; off + room <= DATA_SIZE; off += align) if (ok(p, off)) found.push(off);
    if (found.length) return { seed, off: rng.pick(found) };
  }
  return undefined;
}

const pcDefined = (p: Uint8Array, at: number) => (p[at + 1] & 3) !== 1; // FCW.PC != 01
const mxcsrValid = (p: Uint8Array, at: number) => (p[at + 2] | p[at + 3]) === 0; // host MXCSR_MASK 0xFFFF
function bcdValid(p: Uint8Array, off: number): boolean {
  for (let i = 0; i < 9; i++) if ((p[off + i] & 0xf) > 9 || p[off + i] >> 4 > 9) return false;
  return true;
}

/** Content constraint of a form's memory source, if any. */
function memContent(form: Form): { align: number; ok: (p: Uint8Array, off: number) => boolean; chance: number } | undefined {
  switch (form.mn) {
    case 'ldmxcsr': return { align: 1, ok: mxcsrValid, chance: 0.85 };
    case 'fxrstor': return { align: 16, ok: (p, o) => mxcsrValid(p, o + 24) && pcDefined(p, o), chance: 0.85 };
    case 'fbld': return { align: 1, ok: bcdValid, chance: 0.85 };
    case 'fldcw': case 'fldenv': case 'frstor': return { align: 1, ok: pcDefined, chance: 1 };
    default: return undefined;
  }
}

// ---- the generator

const SHIFT_IMMS = [0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 255];

function fpuImm(ctx: Ctx): number {
  const { rng, form } = ctx;
  if (/^cmp(ps|pd|ss|sd)$/.test(form.mn)) return rng.below(8); // imm8[7:3] is reserved
  if (form.ext !== undefined && form.map === 1 && form.op >= 0x71 && form.op <= 0x73) {
    return rng.chance(0.7) ? rng.pick(SHIFT_IMMS) : rng.below(256);
  }
  return rng.chance(0.25) ? rng.pick([0, 0xff, 0x1b, 0xe4, 0x4e, 0xb1, 1, 2, 3]) : rng.below(256);
}

/** Register-number choice for an operand token class. */
function fpuRegFor(rng: Rng, cls: string): number {
  return cls === 'P' || cls === 'Q' || cls === 'N' || cls === 'STi' ? rng.below(8) : rng.below(16);
}

function genFpu(ctx: Ctx): void {
  const { rng, form, v, ops } = ctx;
  const mn = form.mn;
  if (form.osize === 'v') ops.size = ctx.size as 2 | 4 | 8;
  const s = defaultFpuState();
  ctx.fpu = s;
  const kind = laneKind(form);
  const fam = form.fam;
  const usesMm = fam === 'mmx' || form.ops.some((t) => t === 'P' || t === 'N' || t[0] === 'Q');

  // MXCSR and XMM registers: always random for SSE, sometimes for the others (which must keep them).
  if (fam === 'sse' || fam === 'sse-int' || rng.chance(0.15)) s.mxcsr = randomMxcsr(rng);
  const xmmRandom = fam === 'sse' || fam === 'sse-int' || mn === 'fxsave' || rng.chance(0.3);
  for (let i = 0; i < 16; i++) s.xmm[i] = xmmRandom && rng.chance(0.95) ? vecValue(rng, kind, 128) : 0n;
  // x87 / MMX state.
  if (fam === 'x87') randomX87(rng, s, () => x87Value(rng));
  else if (usesMm) randomMmx(rng, s);
  else if (rng.chance(0.1)) randomX87(rng, s, () => x87Value(rng));

  // Implicit DS:[RDI] destination of MASKMOVQ / MASKMOVDQU.
  if (mn === 'maskmovq' || mn === 'maskmovdqu') {
    const room = mn === 'maskmovq' ? 8 : 16;
    const off = pickOffset(rng, { room });
    const addr32 = rng.chance(0.12);
    const gs = rng.chance(0.12);
    let rdi = gs ? BigInt(off) : DATA_LO + BigInt(off);
    if (addr32) { rdi |= upper32(rng); ops.addr32 = true; }
    if (gs) ops.seg = 'gs';
    setReg(ctx, 7, rdi);
  }

  const rt = regToken(form);
  if (rt && form.ext === undefined) ops.reg = fpuRegFor(rng, tokenClass(rt));
  const mt = rmToken(form);
  if (form.modrm && mt && tokenClass(mt) !== 'rmfix') {
    if (v.kind === 'reg') ops.rm = fpuRegFor(rng, tokenClass(mt));
    else ops.rm = fpuMem(ctx);
  }
  if (form.imm === 'b') ops.imm = fpuImm(ctx);
  fpuValueTweaks(ctx, s);
  fpuPrefixes(ctx);
}

function fpuMem(ctx: Ctx): MemRef {
  const { rng, form } = ctx;
  const room = rmAccessSize(form, ctx.size || 4);
  const align16 = rmNeedsAlign16(form);
  const misalign = align16 && rng.chance(0.08); // #GP on both sides
  const o: MemOpts = { room, allowFault: true };
  if (align16) { o.align = 16; o.alignRem = misalign ? rng.pick([1, 2, 4, 8, 12, 15]) : 0; }
  const content = memContent(form);
  if (content && !misalign && rng.chance(content.chance)) {
    const found = findPattern(rng, room, content.align, content.ok);
    if (found) {
      ctx.dataSeed = found.seed;
      o.offRange = [found.off, found.off + room];
      o.allowFault = false;
    }
  }
  return chooseMem(ctx, o);
}

const SHIFT_BY_REG = /^ps(ll|rl|ra)[wdq]$/;

/** Operand values that make the instruction interesting beyond random data. */
function fpuValueTweaks(ctx: Ctx, s: FpuState): void {
  const { rng, form, ops } = ctx;
  const mn = form.mn;
  const rt = regToken(form), mt = rmToken(form);
  const rmReg = typeof ops.rm === 'number' ? ops.rm : undefined;
  const rmCls = mt ? tokenClass(mt) : undefined;
  const regCls = rt ? tokenClass(rt) : undefined;
  const count = (): bigint => {
    const c = BigInt(rng.chance(0.7) ? rng.pick(SHIFT_IMMS) : rng.below(256));
    return rng.chance(0.15) ? c | (rng.bits(64) << 8n) : c; // huge counts
  };
  // Shifts by a register count: the count is the low 64 bits of the source.
  if (SHIFT_BY_REG.test(mn) && form.ext === undefined && rmReg !== undefined && rng.chance(0.8)) {
    if (rmCls === 'W') s.xmm[rmReg] = (s.xmm[rmReg] & ~M64) | count();
    else if (rmCls === 'Q') {
      const slot = mmSlot(s, rmReg);
      s.st[slot] = (s.st[slot] & ~M64) | count();
    }
  }
  // Binary SSE/MMX operations: sometimes equal or related operands (x - x, x == x, ...).
  if (rmReg !== undefined && ops.reg !== undefined && rng.chance(0.15)) {
    if (rmCls === 'W' && regCls === 'V') s.xmm[rmReg] = s.xmm[ops.reg];
    if (rmCls === 'Q' && regCls === 'P') s.st[mmSlot(s, rmReg)] = s.st[mmSlot(s, ops.reg)];
  }
  if (form.fam !== 'x87') return;
  // x87: values in each function's interesting domain, and related ST(i)/ST(0).
  const st = s.st;
  const f64 = (x: number) => f64To80(f64bits(x));
  const r = rng.next();
  switch (mn) {
    case 'fscale': if (r < 0.7) st[1] = intTo80(BigInt(rng.range(-80, 80))); else if (r < 0.8) st[1] = f64(rng.range(-20000, 20000) + 0.5); break;
    case 'f2xm1': if (r < 0.7) st[0] = f64((rng.next() * 2 - 1) * (rng.chance(0.2) ? 1e-10 : 1)); break;
    case 'fyl2x': if (r < 0.7) st[0] &= ~(1n << 79n); break;
    case 'fyl2xp1': if (r < 0.7) st[0] = f64((rng.next() - 0.5) * 0.58); break;
    case 'fsin': case 'fcos': case 'fsincos': case 'fptan':
      if (r < 0.5) st[0] = f64((rng.next() * 2 - 1) * rng.pick([1, 4, 100, 1e6]));
      else if (r < 0.6) st[0] = x80(rng.below(2), 0x403e + rng.range(-1, 2), BIT63 | rng.bits(63)); // ~2^63: out of range?
      break;
    case 'fpatan': case 'fprem': case 'fprem1':
      if (r < 0.25) {
        // A large exponent difference: FPREM stops early (C2 = 1).
        const e0 = rng.range(0x3fff, 0x3fff + 200);
        st[0] = x80(rng.below(2), e0, BIT63 | rng.bits(63));
        st[1] = x80(rng.below(2), e0 - rng.range(60, 120), BIT63 | rng.bits(63));
      }
      break;
    case 'frndint': if (r < 0.5) st[0] = f64(rng.range(-1000, 1000) + rng.pick([0.5, 0.25, 0.75, -0.5])); break;
    case 'fist': case 'fistp': case 'fisttp': case 'fbstp':
      if (r < 0.5) {
        const b = rng.pick([15, 31, 63]);
        const base = rng.chance(0.5) ? 2 ** b : -(2 ** b);
        st[0] = f64(base + rng.pick([-1.5, -1, -0.5, 0, 0.5, 1, 1.5]));
      } else if (r < 0.6 && mn === 'fbstp') st[0] = intTo80(BigInt(rng.pick([-1, 1])) * (10n ** 18n - BigInt(rng.range(0, 2))));
      break;
    default:
      // Compares and arithmetic with ST(i): sometimes equal (or negated) operands.
      if (rmReg !== undefined && rmCls === 'STi' && r < 0.15) st[rmReg] = rng.chance(0.7) ? st[0] : st[0] ^ (1n << 79n);
  }
}

const NO_REX_W = new Set(['Gd', 'RdMw', 'Me', 'Ms', 'Mx']);

/** Redundant / ignored prefixes and deliberate #UD (LOCK). */
function fpuPrefixes(ctx: Ctx): void {
  const { rng, form, ops } = ctx;
  if (form.modrm && rng.chance(0.015)) { ops.lock = true; return; } // #UD on both sides
  if (!rng.chance(0.06)) return;
  let rex = 0x40;
  const wIgnored = form.osize !== 'v' && !form.ops.some((t) => NO_REX_W.has(t));
  if (wIgnored && rng.chance(0.4)) rex |= 8;
  const rt = regToken(form), mt = rmToken(form);
  // REX.R / REX.B are ignored for MM and ST(i) registers; REX.X without a SIB index.
  if (rt && tokenClass(rt) === 'P' && rng.chance(0.5)) rex |= 4;
  const rmCls = mt ? tokenClass(mt) : undefined;
  const rmIsReg = typeof ops.rm === 'number' || rmCls === 'rmfix';
  if (rmIsReg && (rmCls === 'Q' || rmCls === 'N' || rmCls === 'STi' || rmCls === 'rmfix') && rng.chance(0.5)) rex |= 1;
  if (rmIsReg && rng.chance(0.3)) rex |= 2;
  ops.rex = rex;
}

/** Data-region ranges the comparison skips: the instruction/operand pointers of x87 state stores
 *  (the emulator need not match the host's last-instruction pointers) and FXSAVE's MXCSR_MASK (a
 *  property of the host CPU). */
function fpuDataIgnore(ctx: Ctx): [number, number][] {
  if (ctx.memLinear === undefined || ctx.ops.lock) return [];
  const off = Number(ctx.memLinear - DATA_LO);
  switch (ctx.form.mn) {
    case 'fnstenv': case 'fnsave':
      return ctx.size === 2 ? [[off + 6, off + 14]] : [[off + 12, off + 28]];
    case 'fxsave':
      return [[off + abi.FX_FOP, off + abi.FX_MXCSR], [off + abi.FX_MXCSR_MASK, off + abi.FX_ST0]];
    default:
      return [];
  }
}

// ---------------------------------------------------------------- driver

function buildOnce(v: FormVariant, rng: Rng): GeneratedCase {
  const ctx = newCtx(v, rng);
  const { form } = ctx;
  const mn = form.mn;
  if (FPU_FORMS.has(form)) genFpu(ctx);
  else if (form.fam === 'string') genString(ctx);
  else if (mn === 'xlat') genXlat(ctx);
  else if (form.imm === 'moffs') genMoffs(ctx);
  else if (form.fam === 'branch') genBranch(ctx);
  else if (form.fam === 'stack') genStack(ctx);
  else {
    decideHiMode(ctx);
    if (form.undef === 'shift' || form.undef === 'rotate' || form.undef === 'shiftd') genShift(ctx);
    else if (mn === 'div' || mn === 'idiv') genDiv(ctx);
    else if (mn === 'cmpxchg') genCmpxchg(ctx);
    else if (mn === 'cmpxchg8b') genCmpxchg8b(ctx);
    else if (form.fam === 'bit' && form.map === 1 && form.op !== 0xba && gToken(form) && v.kind === 'mem' && mn.startsWith('bt')) genBtMem(ctx);
    else if (mn === 'bsf' || mn === 'bsr' || mn === 'tzcnt' || mn === 'lzcnt' || mn === 'popcnt') genBitScan(ctx);
    else if (mn === 'lea') genLea(ctx);
    else {
      if (mn === 'cld' || mn === 'std') { if (ctx.rng.chance(0.5)) ctx.rflags |= DF; }
      generic(ctx);
    }
  }
  const ops = ctx.ops;
  let code = encode(form, ops);
  if (ctx.ripTarget !== undefined && typeof ops.rm === 'object' && ops.rm.base === 'rip') {
    const next = INSN_ADDR + BigInt(code.length);
    ops.rm.disp = Number(BigInt.asIntN(32, ctx.ripTarget - next));
    code = encode(form, ops);
  }
  if (ctx.rel) {
    ops.imm = relDisp(ctx.rng, ctx.rel, code.length);
    code = encode(form, ops);
  }
  const next = INSN_ADDR + BigInt(code.length);
  const c: GeneratedCase = {
    code,
    regs: ctx.regs.map((r) => BigInt.asUintN(64, r)),
    rflags: ctx.rflags,
    dataSeed: ctx.dataSeed,
    form,
    formKey: v.key,
    description: `${formatInstruction(form, ops, next)} (${hexBytes(code)})`,
    flagsMask: flagsMaskFor(form, ctx.size, ctx.count),
  };
  if (ctx.fpu) {
    c.fpu = fpuImage(ctx.fpu);
    c.fswMask = fswMaskFor(form);
    const ignore = fpuDataIgnore(ctx);
    if (ignore.length) c.dataIgnore = ignore;
  }
  return c;
}

function buildCase(v: FormVariant, rng: Rng): GeneratedCase {
  for (let attempt = 0; ; attempt++) {
    try {
      return buildOnce(v, rng);
    } catch (e) {
      if (!(e instanceof Retry) || attempt > 500) throw e;
    }
  }
}

function keyOrder(n: number, seed: number): number[] {
  const rng = new Rng(seed, 0xffffffff);
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.below(i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

export interface GenerateOptions {
  seed: number;
  count: number;
  /** Family names (Form.fam), mnemonics (Form.mn) or exact form keys. */
  only?: string[];
}

/** Cases cycle through every form key (in a seed-dependent order), so `count >= allFormKeys(only).length`
 *  covers every key; operands and values are then random. Case i depends only on (seed, i, only). */
export function generateCases(opts: GenerateOptions): GeneratedCase[] {
  const variants = formVariants(opts.only);
  if (!variants.length) throw new Error(`no forms match ${JSON.stringify(opts.only)}`);
  const order = keyOrder(variants.length, opts.seed);
  const out: GeneratedCase[] = [];
  for (let i = 0; i < opts.count; i++) {
    out.push(buildCase(variants[order[i % variants.length]], new Rng(opts.seed, i)));
  }
  return out;
}

/** Case `index` of generateCases({ seed, only, count > index }), alone (to reproduce a failure). */
export function generateCase(seed: number, index: number, only?: string[]): GeneratedCase {
  const variants = formVariants(only);
  if (!variants.length) throw new Error(`no forms match ${JSON.stringify(only)}`);
  const order = keyOrder(variants.length, seed);
  return buildCase(variants[order[index % variants.length]], new Rng(seed, index));
}
