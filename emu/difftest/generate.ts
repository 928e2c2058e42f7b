// Case generator of the differential tester: deterministic from a seed, it walks every form of the
// instruction table (wasm/cpu/isa-table.ts) that the user-mode oracle covers, at every operand size
// and r/m kind ("form key"), and picks operands, register values, flags and data-region seeds so that
// the instruction runs identically natively (test/native/runner.c) and in hvlab's core:
//   - memory operands land inside the data region [DATA_ADDR, DATA_ADDR + DATA_SIZE) (a few are
//     deliberately non-canonical or far above 4 GiB so that both sides fault);
//   - branch targets land on the INT3 fill of the code page, outside the instruction;
//   - values the manual leaves undefined are avoided, or their flags masked (`flagsMask`).
// Register and immediate values favour edge cases (0, 1, -1, sign boundaries, shift counts).

import { forms, type Form } from '../../wasm/cpu/isa-table.ts';
import {
  CODE_ADDR, CODE_OFFSET, CODE_SIZE, DATA_ADDR, DATA_SIZE, GS_BASE, fillPattern, type CaseInput,
} from './types.ts';
import {
  encode, formatInstruction, hexBytes, rmToken, gToken, zToken, rmAccessSize,
  type MemRef, type Operands, type Seg,
} from './encode.ts';

export type GeneratedCase = CaseInput & {
  form: Form;
  formKey: string;
  description: string;
  /** RFLAGS bits to compare: CF PF AF ZF SF OF DF minus what the manual leaves undefined here. */
  flagsMask: bigint;
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
  return ['reg', 'mem'];
}

export function formKey(form: Form, bits: number, kind: RmKind): string {
  const base = `${form.map}:${hex2(form.op)}/${form.ext ?? '-'}:${bits}:${kind}`;
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
 *  (Form.fam), mnemonics (Form.mn) or exact form keys. */
export function formVariants(only?: string[]): FormVariant[] {
  const out: FormVariant[] = [];
  const seen = new Set<string>();
  for (const form of forms) {
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
  const max = (1n << BigInt(bits)) - 1n;
  const half = max >> 1n;
  return rng.pick([0n, 1n, 2n, half, half + 1n, half + 2n, max, max - 1n, half - 1n]);
}

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
    if (!o.wild) ctx.memLinear = gs ? BigInt(GS_BASE) + eff : eff;
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

// ---------------------------------------------------------------- driver

function buildOnce(v: FormVariant, rng: Rng): GeneratedCase {
  const ctx = newCtx(v, rng);
  const { form } = ctx;
  const mn = form.mn;
  if (form.fam === 'string') genString(ctx);
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
  return {
    code,
    regs: ctx.regs.map((r) => BigInt.asUintN(64, r)),
    rflags: ctx.rflags,
    dataSeed: ctx.dataSeed,
    form,
    formKey: v.key,
    description: `${formatInstruction(form, ops, next)} (${hexBytes(code)})`,
    flagsMask: flagsMaskFor(form, ctx.size, ctx.count),
  };
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
