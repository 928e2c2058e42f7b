// The x87 extended-precision library (wasm/cpu/fpu) against this machine's x87.
//
// Every case runs twice: on the real FPU (test/fpu/x87ref.c: FNINIT, FLDCW, the instruction,
// FNSAVE) and through the library (wasm/cpu/fpu/test-entry.ts models each instruction's stack
// effect on top of the library calls). Arithmetic, comparisons, conversions and constants must
// agree bit for bit: ST(0)/ST(1) up to the stack depth, the memory operand, and the status word's
// exception flags, ES/B, C0-C3 (C1 = rounded up) and TOP. Transcendentals must agree in IE/DE/ZE/OE,
// C2 and the stack depth, and be within 1 ulp (64-bit precision); their UE/PE/C1 may differ.
//
// Operands: hand-picked specials (signed zeros, denormals, pseudo-denormals, smallest/largest
// normals, infinities, QNaNs, SNaNs, the indefinite, unnormals, pseudo-NaNs/infinities, rounding
// ties at 24/53/64 bits) crossed with each other, plus seeded random ones (random bit patterns,
// full-range and central normals, sparse significands for exact and tie cases, runs of ones at the
// rounding positions, near underflow and overflow). Control words: every PC × RC combination with
// all exceptions masked, plus control words with exceptions unmasked.
import { beforeAll, describe, expect, it } from 'vitest';
import {
  buildAll, loadWasm, runRef, runWasm, sameExact, describeCase, f80At, ulpDiff, Cases, Rng, OP, REC,
  SW_MASK, specialOperands, randomOperand, allMaskedCws, unmaskedCws, inRange, nearPiMultiple,
  nearOne, tiny, ieeeBytes, intBytes, bcdBytes, intBoundary, mk, vendorRewrite, type F80, type Wasm,
} from './fpu/harness.ts';
import { hostVendor, hostDiffersFromModel, vendorName } from '../emu/difftest/host-vendor.ts';

let w: Wasm;
const specials = specialOperands();
const summary: string[] = [];
const totals = { exact: 0, ulp: 0 };

// The reference executes x87 instructions natively: x86-64 hosts only (like test/native).
const onX64 = process.arch === 'x64';

beforeAll(async () => {
  if (!onX64) return;
  await buildAll();
  w = await loadWasm();
}, 120_000);

const MASKED = allMaskedCws();
const UNMASKED = unmaskedCws(new Rng(77), 8);
const CWS = [...MASKED, ...UNMASKED];

/** `vendor`: records that differ only by a known divergence of this host's vendor from the
 *  modelled Intel x87 (emu/difftest/vendor-divergences.ts): the host's result is exactly that
 *  vendor's documented form of the library's, and otherwise agrees. Always 0 on an Intel host. */
interface Outcome { n: number; bad: number; vendor: number; examples: string[] }

/** Vendor-specific records of a check, for the summary line. */
function vendorNote(o: Outcome): string {
  return o.vendor ? `, ${o.vendor} vendor-specific (not compared on this ${vendorName(hostVendor())} host)` : '';
}

function compareExact(c: Cases): Outcome {
  const inp = c.bytes();
  const ref = runRef(inp);
  const got = runWasm(w, inp);
  const out: Outcome = { n: c.n, bad: 0, vendor: 0, examples: [] };
  for (let i = 0; i < c.n; i++) {
    if (sameExact(ref, got, i)) continue;
    const v = vendorRewrite(inp, ref, got, i);
    if (v && sameExact(v.ref, got.subarray(i * REC, (i + 1) * REC), 0)) { out.vendor++; continue; }
    if (out.bad < 5) out.examples.push(describeCase(inp, ref, got, i));
    out.bad++;
  }
  return out;
}

function expectExact(name: string, c: Cases): void {
  const o = compareExact(c);
  totals.exact += o.n;
  summary.push(`${name}: ${o.n - o.bad - o.vendor}/${o.n} bit-exact${vendorNote(o)}`);
  expect(o.bad, `${name}: ${o.bad} of ${o.n} differ, e.g.\n${o.examples.join('\n')}`).toBe(0);
  if (!hostDiffersFromModel()) expect(o.vendor).toBe(0);
}

/** Binary-operation cases: specials × specials and random pairs (some with close exponents). */
function binaryCases(op: number, nRandom: number, seed: number): Cases {
  const c = new Cases();
  const r = new Rng(seed);
  for (const cw of CWS) {
    const unmasked = (cw & 0x3f) !== 0x3f;
    if (!unmasked) for (const a of specials) for (const b of specials) c.add(op, cw, a, b);
    const n = unmasked ? nRandom * 2 : nRandom;
    for (let i = 0; i < n; i++) {
      const a = randomOperand(r, specials);
      let b = randomOperand(r, specials);
      if (r.int(3) === 0 && (a.se & 0x7fff) !== 0x7fff) {
        const e = Math.max(1, Math.min(0x7ffe, (a.se & 0x7fff) + r.range(-70, 70)));
        b = mk((r.bool() ? 0x8000 : 0) | e, r.u32() | 0x80000000, r.int(4) ? r.u32() : a.lo);
      }
      c.add(op, cw, a, b);
    }
  }
  return c;
}

function unaryCases(op: number, nRandom: number, seed: number, extra?: (r: Rng) => F80 | Uint8Array): Cases {
  const c = new Cases();
  const r = new Rng(seed);
  for (const cw of CWS) {
    for (const a of specials) c.add(op, cw, a);
    for (let i = 0; i < nRandom; i++) c.add(op, cw, extra && r.bool() ? extra(r) : randomOperand(r, specials));
  }
  return c;
}

describe.skipIf(!onX64)('float80 vs x87: arithmetic, bit-exact', () => {
  it('FADD', () => expectExact('FADD', binaryCases(OP.ADD, 6000, 1)));
  it('FSUB', () => expectExact('FSUB', binaryCases(OP.SUB, 6000, 2)));
  it('FMUL', () => expectExact('FMUL', binaryCases(OP.MUL, 6000, 3)));
  it('FDIV', () => expectExact('FDIV', binaryCases(OP.DIV, 6000, 4)));
  it('FSQRT', () => expectExact('FSQRT', unaryCases(OP.SQRT, 6000, 5, (r) => {
    // exact squares and their neighbours
    const m = BigInt(r.u32() | 0x80000000);
    const sq = m * m + BigInt(r.range(-1, 1));
    return mk(0x3fff + r.range(-200, 200), Number(sq >> 32n), Number(sq & 0xffffffffn));
  })));
  it('FPREM', () => expectExact('FPREM', binaryCases(OP.PREM, 3000, 6)));
  it('FPREM1', () => expectExact('FPREM1', binaryCases(OP.PREM1, 3000, 7)));
  it('FRNDINT', () => expectExact('FRNDINT', unaryCases(OP.RNDINT, 4000, 8, intBoundary)));
  it('FSCALE', () => expectExact('FSCALE', binaryCases(OP.SCALE, 3000, 9)));
  it('FXTRACT', () => expectExact('FXTRACT', unaryCases(OP.XTRACT, 2000, 10, tiny)));
});

describe.skipIf(!onX64)('float80 vs x87: comparisons and classification, bit-exact', () => {
  it('FCOM', () => expectExact('FCOM', binaryCases(OP.COM, 1500, 11)));
  it('FUCOM', () => expectExact('FUCOM', binaryCases(OP.UCOM, 1500, 12)));
  it('FTST', () => expectExact('FTST', unaryCases(OP.TST, 500, 13)));
  it('FXAM', () => expectExact('FXAM', unaryCases(OP.XAM, 500, 14)));
});

describe.skipIf(!onX64)('float80 vs x87: conversions and constants, bit-exact', () => {
  const loads: [string, number, (r: Rng) => Uint8Array][] = [
    ['FLD m32', OP.LD32, (r) => ieeeBytes(r, false)],
    ['FLD m64', OP.LD64, (r) => ieeeBytes(r, true)],
    ['FILD m16', OP.ILD16, (r) => intBytes(r, 2)],
    ['FILD m32', OP.ILD32, (r) => intBytes(r, 4)],
    ['FILD m64', OP.ILD64, (r) => intBytes(r, 8)],
    ['FBLD', OP.BLD, bcdBytes],
  ];
  for (const [name, op, gen] of loads) {
    it(name, () => {
      const c = new Cases();
      const r = new Rng(op);
      for (const cw of CWS) for (let i = 0; i < 1500; i++) c.add(op, cw, gen(r));
      expectExact(name, c);
    });
  }
  const stores: [string, number, (r: Rng) => F80][] = [
    ['FST m32', OP.ST32, (r) => r.bool() ? inRange(r, -160, -120) : inRange(r, 120, 130)],
    ['FST m64', OP.ST64, (r) => r.bool() ? inRange(r, -1090, -1015) : inRange(r, 1015, 1026)],
    ['FIST m16', OP.IST16, intBoundary],
    ['FIST m32', OP.IST32, intBoundary],
    ['FISTP m64', OP.IST64, intBoundary],
    ['FISTTP m16', OP.ISTT16, intBoundary],
    ['FISTTP m32', OP.ISTT32, intBoundary],
    ['FISTTP m64', OP.ISTT64, intBoundary],
    ['FBSTP', OP.BSTP, intBoundary],
  ];
  for (const [name, op, gen] of stores) it(name, () => expectExact(name, unaryCases(op, 1500, op, gen)));
  it('FLDPI FLDL2E FLDL2T FLDLG2 FLDLN2', () => {
    const c = new Cases();
    for (const op of [OP.LDPI, OP.LDL2E, OP.LDL2T, OP.LDLG2, OP.LDLN2]) for (const cw of CWS) c.add(op, cw, mk(0, 0, 0));
    expectExact('constants', c);
  });
});

// ---- transcendentals --------------------------------------------------------------------------------

const EXACT_SW = 0x1 | 0x2 | 0x4 | 0x8 | 0x400 | 0x3800 | 0x80 | 0x8000; // IE DE ZE OE, C2, TOP, ES, B

interface UlpOutcome extends Outcome { worst: number; oneUlp: number }

function compareUlp(c: Cases): UlpOutcome {
  const inp = c.bytes();
  const ref = runRef(inp);
  const got = runWasm(w, inp);
  const out: UlpOutcome = { n: c.n, bad: 0, vendor: 0, examples: [], worst: 0, oneUlp: 0 };
  /** The ulp distance of record i of `r` (at `ro`) to the library's, or -1 when the flags differ. */
  const distance = (r: Uint8Array, ro: number, o: number): number => {
    const swR = r[ro + 30] | (r[ro + 31] << 8), swG = got[o + 30] | (got[o + 31] << 8);
    const depth = (8 - ((swR >> 11) & 7)) & 7;
    let u = 0;
    for (let k = 0; k < depth && k < 2; k++) u = Math.max(u, ulpDiff(f80At(r, ro + 10 * k), f80At(got, o + 10 * k)));
    return (swR & EXACT_SW) !== (swG & EXACT_SW) ? -1 : u;
  };
  for (let i = 0; i < c.n; i++) {
    const o = i * REC;
    let u = distance(ref, o, o);
    if (u > 1 || u < 0) {
      const v = vendorRewrite(inp, ref, got, i);
      const uv = v ? distance(v.ref, 0, o) : -1;
      if (uv >= 0 && uv <= 1) { out.vendor++; continue; }
      if (out.bad < 5) out.examples.push(`ulp=${u < 0 ? 'flags' : u} ${describeCase(inp, ref, got, i)}`);
      out.bad++;
      continue;
    }
    if (u !== Infinity) out.worst = Math.max(out.worst, u);
    if (u === 1) out.oneUlp++;
  }
  return out;
}

function expectUlp(name: string, c: Cases): void {
  const o = compareUlp(c);
  totals.ulp += o.n;
  summary.push(`${name}: ${o.n - o.bad - o.vendor}/${o.n} within 1 ulp (worst ${o.worst} ulp, ${o.n - o.oneUlp - o.bad - o.vendor} bit-identical values)${vendorNote(o)}`);
  expect(o.bad, `${name}: ${o.bad} of ${o.n} off by more than 1 ulp or with different flags, e.g.\n${o.examples.join('\n')}`).toBe(0);
  if (!hostDiffersFromModel()) expect(o.vendor).toBe(0);
}

function transCases(op: number, seed: number, n: number, gen: (r: Rng) => [F80, F80?]): Cases {
  const c = new Cases();
  const r = new Rng(seed);
  for (const cw of CWS) {
    for (const a of specials) c.add(op, cw, a, r.pick(specials));
    for (let i = 0; i < n; i++) {
      const [a, b] = gen(r);
      c.add(op, cw, a, b ?? randomOperand(r, specials));
    }
  }
  return c;
}

describe.skipIf(!onX64)('float80 vs x87: transcendentals, within 1 ulp', () => {
  const trig = (r: Rng): [F80] => [r.int(3) === 0 ? nearPiMultiple(r) : r.int(4) ? inRange(r, -75, 62) : randomOperand(r, specials)];
  it('FSIN', () => expectUlp('FSIN', transCases(OP.SIN, 21, 2000, trig)));
  it('FCOS', () => expectUlp('FCOS', transCases(OP.COS, 22, 2000, trig)));
  it('FSINCOS', () => expectUlp('FSINCOS', transCases(OP.SINCOS, 23, 2000, trig)));
  it('FPTAN', () => expectUlp('FPTAN', transCases(OP.PTAN, 24, 2000, trig)));
  it('F2XM1', () => expectUlp('F2XM1', transCases(OP.F2XM1, 25, 2000, (r) => [
    r.int(4) === 0 ? tiny(r) : r.int(3) === 0 ? mk((r.bool() ? 0x8000 : 0) | 0x3ffe, 0xffffffff, r.u32()) : r.int(5) ? inRange(r, -80, -1) : randomOperand(r, specials),
  ])));
  it('FYL2X', () => expectUlp('FYL2X', transCases(OP.YL2X, 26, 2000, (r) => [
    r.int(4) === 0 ? nearOne(r) : r.int(5) === 0 ? tiny(r) : r.int(5) ? inRange(r, -300, 300, 0) : randomOperand(r, specials),
    r.int(6) === 0 ? inRange(r, 16000, 16383) : r.int(4) ? inRange(r, -60, 60) : randomOperand(r, specials),
  ])));
  it('FYL2XP1', () => expectUlp('FYL2XP1', transCases(OP.YL2XP1, 27, 2000, (r) => [
    r.int(4) === 0 ? tiny(r) : r.int(5) ? inRange(r, -90, -3) : randomOperand(r, specials),
    r.int(6) === 0 ? inRange(r, 16000, 16383) : r.int(4) ? inRange(r, -60, 60) : randomOperand(r, specials),
  ])));
  it('FPATAN', () => expectUlp('FPATAN', transCases(OP.PATAN, 28, 2000, (r) => {
    const a = inRange(r, -100, 100);
    switch (r.int(5)) {
      case 0: return [a, { ...a, se: (a.se & 0x8000) | r.range(1, 0x7ffe) }]; // extreme ratios
      case 1: return [a, { ...a, lo: (a.lo + r.range(-2, 2)) >>> 0, se: a.se ^ (r.bool() ? 0x8000 : 0) }]; // |y| ≈ |x|
      case 2: return [tiny(r), a];
      case 3: return [randomOperand(r, specials), randomOperand(r, specials)];
      default: return [a, inRange(r, -100, 100)];
    }
  })));
});

describe.skipIf(!onX64)('float80: harness self-checks and speed', () => {
  it('the comparison detects a one-bit difference in value, flags and C1', () => {
    const c = new Cases();
    c.add(OP.DIV, 0x37f, mk(0x3fff, 0x80000000, 0), mk(0x4000, 0xc0000000, 0));
    const inp = c.bytes();
    const ref = runRef(inp), got = runWasm(w, inp);
    expect(sameExact(ref, got, 0)).toBe(true);
    expect(got[0]).toBe(0xab); // 1/3 rounded up: significand 0xAAAAAAAAAAAAAAAB
    for (const [off, bit] of [[0, 1], [9, 0x80], [30, 0x20], [31, 0x02]] as const) {
      const bad = got.slice();
      bad[off] ^= bit;
      expect(sameExact(ref, bad, 0), `byte ${off} bit ${bit}`).toBe(false);
    }
    expect(SW_MASK & 0x0200).toBe(0x0200);
  });

  it('speed of f80Add / f80Mul / f80Div / f80Sqrt (ns per call, random operands, median of 5 CPU-time runs)', () => {
    const r = new Rng(7);
    const n = 1024, A = 1 << 21, B = A + n * 16, D = B + n * 16;
    if (w.mem.buffer.byteLength < D + n * 16) w.mem.grow(Math.ceil((D + n * 16 - w.mem.buffer.byteLength) / 65536));
    const dv = new DataView(w.mem.buffer);
    for (let i = 0; i < n; i++) {
      for (const base of [A, B]) {
        dv.setUint32(base + i * 16, r.u32(), true);
        dv.setUint32(base + i * 16 + 4, r.u32() | 0x80000000, true);
        // a > 0 (so FSQRT computes), b of random sign (so FADD also subtracts)
        dv.setUint16(base + i * 16 + 8, (base === B && r.bool() ? 0x8000 : 0) | r.range(0x3f00, 0x40ff), true);
      }
    }
    const perOp = (op: number, reps: number): number => {
      w.bench(op, A, B, D, n, 20, 0x37f);
      const t: number[] = [];
      for (let k = 0; k < 5; k++) {
        const c0 = process.cpuUsage();
        w.bench(op, A, B, D, n, reps, 0x37f);
        const c = process.cpuUsage(c0);
        t.push(((c.user + c.system) * 1000) / (n * reps));
      }
      return t.sort((x, y) => x - y)[2];
    };
    const loop = perOp(0, 2000);
    const res = { add: perOp(OP.ADD, 1000), mul: perOp(OP.MUL, 1000), div: perOp(OP.DIV, 1000), sqrt: perOp(OP.SQRT, 500) };
    const line = Object.entries(res).map(([k, v]) => `${k} ${(v - loop).toFixed(1)}`).join(', ');
    summary.push(`speed (ns/op, loop overhead ${loop.toFixed(1)} ns subtracted): ${line}`);
    expect(res.add).toBeGreaterThan(0);
  });

  it('summary', () => {
    summary.push(`total: ${totals.exact} bit-exact cases, ${totals.ulp} transcendental cases`);
    console.log(`float80 vs x87 summary\n  ${summary.join('\n  ')}`);
    expect(summary.length).toBeGreaterThan(30);
  });
});
