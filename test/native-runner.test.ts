// The native oracle itself must be right before it can judge the emulator: these cases are
// hand-assembled and their expected results computed here, independently of the runner.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureNativeRunner, runNativeBatch, runNativeBench } from '../emu/difftest/native.ts';
import {
  CODE_ADDR, CODE_OFFSET, DATA_ADDR, DATA_SIZE, fillPattern, defaultFpuImage, type CaseInput,
} from '../emu/difftest/types.ts';
import { generateCases } from '../emu/difftest/generate.ts';
import { EmulatedRunner } from '../emu/difftest/emulated.ts';
import { differences } from '../emu/difftest/compare.ts';

const M64 = (1n << 64n) - 1n;
const ENTRY = BigInt(CODE_ADDR + CODE_OFFSET);
const CF = 1n, PF = 4n, AF = 0x10n, ZF = 0x40n, SF = 0x80n, DF = 0x400n, OF = 0x800n;
const STATUS = CF | PF | AF | ZF | SF | OF;
const RAX = 0, RCX = 1, RDX = 2, RBX = 3, RSP = 4, RDI = 7;

function hex(s: string): Uint8Array {
  return Uint8Array.from(s.split(' ').map((b) => parseInt(b, 16)));
}

/** A case with all registers zero except those given by encoding index. */
function mk(code: string, set: Record<number, bigint> = {}, rflags = 0n, dataSeed = 1): CaseInput {
  const regs = Array.from({ length: 16 }, (_, i) => set[i] ?? 0n);
  return { code: hex(code), regs, rflags, dataSeed };
}

/** Status flags of a 64-bit ADD, from the architectural definitions. */
function addFlags(a: bigint, b: bigint): bigint {
  const full = a + b;
  const r = full & M64;
  let f = 0n;
  if (full > M64) f |= CF;
  if (r === 0n) f |= ZF;
  if (r >> 63n) f |= SF;
  if ((a >> 63n) === (b >> 63n) && (r >> 63n) !== (a >> 63n)) f |= OF;
  if ((a ^ b ^ r) & 0x10n) f |= AF;
  let ones = 0;
  for (let v = Number(r & 0xffn); v; v >>= 1) ones += v & 1;
  if (ones % 2 === 0) f |= PF;
  return f;
}

function pattern(seed: number): Uint8Array {
  const p = new Uint8Array(DATA_SIZE);
  fillPattern(seed, p);
  return p;
}

/** Expected data diff of an 8-byte little-endian store of v at offset off. */
function storeDiff(seed: number, off: number, v: bigint): [number, number][] {
  const p = pattern(seed);
  const out: [number, number][] = [];
  for (let k = 0; k < 8; k++) {
    const byte = Number((v >> BigInt(8 * k)) & 0xffn);
    if (byte !== p[off + k]) out.push([off + k, byte]);
  }
  return out;
}

/** Deterministic 64-bit xorshift for varied inputs. */
function rng(seed: bigint): () => bigint {
  let x = seed;
  return () => {
    x ^= (x << 13n) & M64; x ^= x >> 7n; x ^= (x << 17n) & M64;
    return x;
  };
}

beforeAll(() => { ensureNativeRunner(); }, 120_000);

describe('native runner: single instructions', () => {
  it('add rax, rbx: result, flags and RIP after the INT3', async () => {
    const inputs: [bigint, bigint][] = [
      [0x7fffffffffffffffn, 1n], // signed overflow, AF, parity of 0x00
      [M64, 1n], // carry out, zero result
      [0x1234n, 0x4321n], // nothing special
      [0x8000000000000000n, 0x8000000000000000n], // carry and overflow, zero
    ];
    const res = await runNativeBatch(inputs.map(([a, b]) => mk('48 01 d8', { [RAX]: a, [RBX]: b })));
    res.forEach((r, i) => {
      const [a, b] = inputs[i];
      expect(r.outcome).toBe('trap');
      expect(r.regs[RAX]).toBe((a + b) & M64);
      expect(r.regs[RBX]).toBe(b);
      expect(r.rflags & STATUS).toBe(addFlags(a, b));
      expect(r.rflags & 0x202n).toBe(0x202n); // bit 1 and IF, added by the runner
      expect(r.rip).toBe(ENTRY + 3n + 1n);
      expect(r.dataDiff).toEqual([]);
    });
    // Sanity of the independent flag model itself.
    expect(addFlags(0x7fffffffffffffffn, 1n)).toBe(OF | SF | AF | PF);
  });

  it('loads every GPR and passes input flags through', async () => {
    const regs: Record<number, bigint> = {};
    for (let i = 0; i < 16; i++) regs[i] = 0x0101010101010101n * BigInt(i + 1) ^ 0x8000000000000000n;
    const [nop, std, cld] = await runNativeBatch([
      mk('90', regs, STATUS | DF),
      mk('fd', {}, 0n),
      mk('fc', {}, DF | CF),
    ]);
    expect(nop.outcome).toBe('trap');
    expect(nop.regs).toEqual(Array.from({ length: 16 }, (_, i) => regs[i]));
    expect(nop.rflags & (STATUS | DF)).toBe(STATUS | DF);
    expect(nop.rip).toBe(ENTRY + 2n);
    expect(std.rflags & (STATUS | DF)).toBe(DF);
    expect(cld.rflags & (STATUS | DF)).toBe(CF);
  });

  it('div rcx with rcx = 0 raises #DE at the instruction', async () => {
    const [r] = await runNativeBatch([mk('48 f7 f1', { [RAX]: 5n, [RDX]: 0n, [RCX]: 0n })]);
    expect(r.outcome).toBe('DE');
    expect(r.rip).toBe(ENTRY);
    expect(r.regs[RAX]).toBe(5n);
  });

  it('ud2 raises #UD at the instruction', async () => {
    const [r] = await runNativeBatch([mk('0f 0b')]);
    expect(r.outcome).toBe('UD');
    expect(r.rip).toBe(ENTRY);
  });

  it('a store to the data region appears in dataDiff', async () => {
    const v = 0x1122334455667788n;
    const seed = 0xdeadbeef;
    const [r] = await runNativeBatch([mk('48 89 03', { [RAX]: v, [RBX]: BigInt(DATA_ADDR + 8) }, 0n, seed)]);
    expect(r.outcome).toBe('trap');
    expect(r.dataDiff).toEqual(storeDiff(seed, 8, v));
    expect(r.dataDiff.length).toBe(8); // this pattern differs from v in every byte
  });

  it('a load from an unmapped low address is SEGV', async () => {
    const [r] = await runNativeBatch([mk('48 8b 03', { [RBX]: 0x10n, [RAX]: 7n })]);
    expect(r.outcome).toBe('SEGV');
    expect(r.rip).toBe(ENTRY);
    expect(r.regs[RAX]).toBe(7n);
  });

  it('gs: is based at the data region', async () => {
    const seed = 12345;
    const [r] = await runNativeBatch([mk('65 48 8b 03', { [RBX]: 16n }, 0n, seed)]);
    const p = pattern(seed);
    let want = 0n;
    for (let k = 7; k >= 0; k--) want = (want << 8n) | BigInt(p[16 + k]);
    expect(r.outcome).toBe('trap');
    expect(r.regs[RAX]).toBe(want);
    expect(r.rip).toBe(ENTRY + 4n + 1n);
  });

  it('an infinite loop ends with the watchdog', async () => {
    const [r] = await runNativeBatch([mk('eb fe')]);
    expect(r.outcome).toBe('timeout');
    expect(r.rip).toBe(ENTRY);
  });

  it('contains guest syscalls and segment reloads', async () => {
    const res = await runNativeBatch([
      mk('0f 05', { [RAX]: 60n, [RDI]: 3n }), // exit(3) must not reach the kernel
      mk('8e e8', {}), // mov gs, eax: the next case must still see GS at the data region
      mk('65 48 8b 03', { [RBX]: 0n }, 0n, 7),
      mk('8e e0', {}), // mov fs, eax: glibc's TLS base must be repaired before the handler's C code
      mk('f3 48 0f ae d0', { [RAX]: 0x1234n }), // wrfsbase rax (#UD where FSGSBASE is off)
      mk('f3 48 0f ae d8', { [RAX]: 0x1234n }), // wrgsbase rax
      mk('65 48 8b 03', { [RBX]: 8n }, 0n, 7),
    ]);
    expect(res[0].outcome).toBe('other');
    expect(res[0].rip).toBe(ENTRY + 2n);
    expect(res[1].outcome).toBe('trap');
    const p = pattern(7);
    let want = 0n;
    for (let k = 7; k >= 0; k--) want = (want << 8n) | BigInt(p[k]);
    expect(res[2].regs[RAX]).toBe(want);
    expect(res[3].outcome).toBe('trap');
    expect(['trap', 'UD']).toContain(res[4].outcome);
    expect(['trap', 'UD']).toContain(res[5].outcome);
    let want8 = 0n;
    for (let k = 7; k >= 0; k--) want8 = (want8 << 8n) | BigInt(p[8 + k]);
    expect(res[6].outcome).toBe('trap');
    expect(res[6].regs[RAX]).toBe(want8);
  });
});

describe('native runner: batches', () => {
  it('2000 mixed cases round-trip in order', async () => {
    const next = rng(0x9e3779b97f4a7c15n);
    const cases: CaseInput[] = [];
    for (let i = 0; i < 2000; i++) {
      const a = next(), b = next();
      switch (i % 4) {
        case 0: cases.push(mk('48 01 d8', { [RAX]: a, [RBX]: b, [RSP]: BigInt(i) }, 0n, i)); break;
        case 1: cases.push(mk('48 89 03', { [RAX]: a, [RBX]: BigInt(DATA_ADDR + ((i * 8) % DATA_SIZE)) }, 0n, i)); break;
        case 2: cases.push(mk('0f 0b', { [RDX]: BigInt(i) }, 0n, i)); break;
        default: cases.push(mk('48 8d 04 19', { [RCX]: a, [RBX]: b }, CF, i)); break; // lea rax, [rcx+rbx]
      }
    }
    const res = await runNativeBatch(cases);
    expect(res.length).toBe(cases.length);
    res.forEach((r, i) => {
      const c = cases[i];
      switch (i % 4) {
        case 0:
          expect(r.outcome).toBe('trap');
          expect(r.regs[RAX]).toBe((c.regs[RAX] + c.regs[RBX]) & M64);
          expect(r.regs[RSP]).toBe(BigInt(i));
          expect(r.rflags & STATUS).toBe(addFlags(c.regs[RAX], c.regs[RBX]));
          break;
        case 1:
          expect(r.outcome).toBe('trap');
          expect(r.dataDiff).toEqual(storeDiff(i, (i * 8) % DATA_SIZE, c.regs[RAX]));
          break;
        case 2:
          expect(r.outcome).toBe('UD');
          expect(r.regs[RDX]).toBe(BigInt(i));
          break;
        default:
          expect(r.outcome).toBe('trap');
          expect(r.regs[RAX]).toBe((c.regs[RCX] + c.regs[RBX]) & M64);
          expect(r.rflags & STATUS).toBe(CF); // lea leaves flags alone
          expect(r.rip).toBe(ENTRY + 4n + 1n);
      }
    });
  }, 60_000);
});

describe('native runner: bench mode', () => {
  it('runs a flat image at CODE_ADDR until its INT3', () => {
    // xor eax,eax; mov ecx,1000; L: add rax,rcx; loop L; push rbx; pop rbx; int3
    const code = hex('31 c0 b9 e8 03 00 00 48 01 c8 e2 fb 53 5b cc');
    const dir = mkdtempSync(join(tmpdir(), 'hvlab-native-'));
    try {
      const file = join(dir, 'sum.bin');
      writeFileSync(file, code);
      const r = runNativeBench(file);
      expect(r.outcome).toBe('trap');
      expect(r.rax).toBe(500500n); // 1 + 2 + ... + 1000
      expect(r.rcx).toBe(0n);
      expect(r.rip).toBe(BigInt(CODE_ADDR + code.length));
      expect(r.seconds).toBeGreaterThan(0);
      expect(r.seconds).toBeLessThan(5);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------- x87 / SSE state

/** FXSAVE64 image fields (SDM Vol. 1, Table 10-2), written independently of the generator. */
interface Fx {
  fcw?: number; fsw?: number; ftw?: number; mxcsr?: number;
  /** ST(i) in stack order: [exponent+sign (16 bits), mantissa (64 bits)]. */
  st?: Record<number, [number, bigint]>;
  /** XMM registers as four f32 lanes (lane 0 first) or raw 128-bit values. */
  xmm?: Record<number, number[] | bigint>;
}

function f32(x: number): number {
  const b = new DataView(new ArrayBuffer(4));
  b.setFloat32(0, x, true);
  return b.getUint32(0, true);
}

function image(fx: Fx): Uint8Array {
  const img = defaultFpuImage();
  const v = new DataView(img.buffer);
  if (fx.fcw !== undefined) v.setUint16(0, fx.fcw, true);
  if (fx.fsw !== undefined) v.setUint16(2, fx.fsw, true);
  if (fx.ftw !== undefined) v.setUint8(4, fx.ftw);
  if (fx.mxcsr !== undefined) v.setUint32(24, fx.mxcsr, true);
  for (const [i, [se, m]] of Object.entries(fx.st ?? {})) {
    v.setBigUint64(32 + 16 * Number(i), m, true);
    v.setUint16(40 + 16 * Number(i), se, true);
  }
  for (const [i, x] of Object.entries(fx.xmm ?? {})) {
    const at = 160 + 16 * Number(i);
    if (typeof x === 'bigint') { v.setBigUint64(at, x & M64, true); v.setBigUint64(at + 8, x >> 64n, true); }
    else x.forEach((lane, k) => v.setUint32(at + 4 * k, f32(lane), true));
  }
  return img;
}

const rd16 = (img: Uint8Array, off: number) => img[off] | (img[off + 1] << 8);
const rd32 = (img: Uint8Array, off: number) => (rd16(img, off) | (rd16(img, off + 2) << 16)) >>> 0;
const xmmLanes = (img: Uint8Array, i: number) => [0, 1, 2, 3].map((k) => rd32(img, 160 + 16 * i + 4 * k));
/** ST(i) as [sign+exponent, mantissa]. */
function st(img: Uint8Array, i: number): [number, bigint] {
  const v = new DataView(img.buffer, img.byteOffset);
  return [v.getUint16(40 + 16 * i, true), v.getBigUint64(32 + 16 * i, true)];
}
const ONE: [number, bigint] = [0x3fff, 0x8000000000000000n];
const TWO: [number, bigint] = [0x4000, 0x8000000000000000n];
const THREE: [number, bigint] = [0x4000, 0xc000000000000000n];
const ZERO: [number, bigint] = [0, 0n];
const MXCSR_DEFAULT = 0x1f80, PE = 0x20, ZE = 0x4;

function mkf(code: string, fx: Fx, set: Record<number, bigint> = {}, dataSeed = 1): CaseInput {
  return { ...mk(code, set, 0n, dataSeed), fpu: image(fx) };
}

describe('native runner: x87 and SSE state', () => {
  it('addps xmm0, xmm1: lanes rounded to binary32, PE only when inexact', async () => {
    const a = [1.5, -2, 1e30, 3], b = [2.25, 2, 1e30, 0.1];
    const exact = [1.5, -2, 0.5, 7], bx = [2.25, 2, 0.25, 1];
    const [r, q] = await runNativeBatch([mkf('0f 58 c1', { xmm: { 0: a, 1: b } }), mkf('0f 58 c1', { xmm: { 0: exact, 1: bx } })]);
    expect(r.outcome).toBe('trap');
    expect(r.rip).toBe(ENTRY + 3n + 1n);
    const want = a.map((x, k) => f32(Math.fround(Math.fround(x) + Math.fround(b[k]))));
    expect(xmmLanes(r.fpu!, 0)).toEqual(want);
    expect(xmmLanes(r.fpu!, 1)).toEqual(b.map(f32));
    const inexact = a.some((x, k) => Math.fround(x) + Math.fround(b[k]) !== Math.fround(Math.fround(x) + Math.fround(b[k])));
    expect(inexact).toBe(true); // 3 + 0.1 is
    expect(rd32(r.fpu!, 24)).toBe(MXCSR_DEFAULT | PE);
    expect(xmmLanes(q.fpu!, 0)).toEqual(exact.map((x, k) => f32(x + bx[k])));
    expect(rd32(q.fpu!, 24)).toBe(MXCSR_DEFAULT);
  });

  it('divss by zero: masked gives inf and ZE; unmasked raises #XM before the write', async () => {
    const xmm = { 0: [1, 5, 6, 7], 1: [0, 9, 9, 9] };
    const [masked, unmasked] = await runNativeBatch([
      mkf('f3 0f 5e c1', { xmm }),
      mkf('f3 0f 5e c1', { xmm, mxcsr: MXCSR_DEFAULT & ~0x200 }), // ZM clear
    ]);
    expect(masked.outcome).toBe('trap');
    expect(xmmLanes(masked.fpu!, 0)).toEqual([0x7f800000, f32(5), f32(6), f32(7)]);
    expect(rd32(masked.fpu!, 24)).toBe(MXCSR_DEFAULT | ZE);
    expect(unmasked.outcome).toBe('XM');
    expect(unmasked.rip).toBe(ENTRY);
    expect(xmmLanes(unmasked.fpu!, 0)).toEqual([1, 5, 6, 7].map(f32));
    expect(rd32(unmasked.fpu!, 24)).toBe((MXCSR_DEFAULT & ~0x200) | ZE);
  });

  it('x87 arithmetic on a prepared stack (TOP = 6: ST0 = R6, ST1 = R7)', async () => {
    const stack: Fx = { fsw: 6 << 11, ftw: 0xc0, st: { 0: ONE, 1: TWO } };
    const [fadd, faddp, fld1] = await runNativeBatch([
      mkf('d8 c1', stack), // fadd st0, st1
      mkf('de c1', stack), // faddp st1, st0
      mkf('d9 e8', {}), // fld1 on an empty stack
    ]);
    expect(fadd.outcome).toBe('trap');
    expect(st(fadd.fpu!, 0)).toEqual(THREE);
    expect(st(fadd.fpu!, 1)).toEqual(TWO);
    expect(rd16(fadd.fpu!, 2) & ~0x4500).toBe(6 << 11); // TOP 6, no exception, C1 = 0
    expect(fadd.fpu![4]).toBe(0xc0);
    expect(st(faddp.fpu!, 0)).toEqual(THREE); // was ST1
    expect((rd16(faddp.fpu!, 2) >> 11) & 7).toBe(7);
    expect(faddp.fpu![4]).toBe(0x80); // R6 freed
    expect(st(fld1.fpu!, 0)).toEqual(ONE);
    expect(rd16(fld1.fpu!, 2) & ~0x4500).toBe(7 << 11);
    expect(fld1.fpu![4]).toBe(0x80);
  });

  it('x87 exceptions: an unmasked one sets ES and waits; the next waiting instruction gets #MF', async () => {
    const fcw = 0x037f & ~0x4; // ZM clear
    const [fdiv, pendingWait, pendingFld, fnstsw] = await runNativeBatch([
      mkf('d8 f1', { fcw, fsw: 6 << 11, ftw: 0xc0, st: { 0: ONE, 1: ZERO } }), // fdiv st0, st1
      mkf('9b', { fcw: 0x037e, fsw: 0x8081 }), // fwait with IE pending (IM clear)
      mkf('d9 e8', { fcw: 0x037e, fsw: 0x8081 }), // fld1
      mkf('df e0', { fcw: 0x037e, fsw: 0x8081 }), // fnstsw ax: non-waiting
    ]);
    expect(fdiv.outcome).toBe('trap'); // the INT3 after it is not an x87 instruction
    expect(rd16(fdiv.fpu!, 2) & ~0x4700).toBe(0x8000 | (6 << 11) | 0x80 | ZE);
    expect(st(fdiv.fpu!, 0)).toEqual(ONE); // unmasked #Z leaves the destination alone
    for (const r of [pendingWait, pendingFld]) {
      expect(r.outcome).toBe('MF');
      expect(r.rip).toBe(ENTRY);
      expect(rd16(r.fpu!, 2)).toBe(0x8081);
    }
    expect(pendingFld.fpu![4]).toBe(0); // FLD1 did not run
    expect(fnstsw.outcome).toBe('trap');
    expect(fnstsw.regs[RAX] & 0xffffn).toBe(0x8081n);
  });

  it('round-trips an image; without one the default state is used and no image returned', async () => {
    const next = rng(0x1234567n);
    const xmm: Record<number, bigint> = {};
    for (let i = 0; i < 16; i++) xmm[i] = (next() << 64n) | next();
    const sts: Record<number, [number, bigint]> = {};
    for (let i = 0; i < 8; i++) sts[i] = [Number(next() & 0xffffn), next()];
    const fx: Fx = { fcw: 0x0e72, fsw: 0x3d00 | 0x21 | (3 << 11), ftw: 0x5a, mxcsr: 0xffc0 & ~0x1200 | 0x12, st: sts, xmm };
    const [nop, dflt, movq] = await runNativeBatch([
      mkf('90', fx),
      mkf('90', {}), // all-zero XMM after a case that left them non-zero
      mk('66 48 0f 7e c0', { [RAX]: 5n }), // movq rax, xmm0: no image, default XMM0 = 0
    ]);
    const img = image(fx);
    expect(nop.outcome).toBe('trap');
    expect(rd16(nop.fpu!, 0)).toBe(0x0e72);
    // IE is set and unmasked (FCW.IM = 0): FXRSTOR derives ES and B from the flags and masks.
    expect(rd16(nop.fpu!, 2)).toBe(0x3d21 | 0x8080);
    expect(nop.fpu![4]).toBe(0x5a);
    expect(rd32(nop.fpu!, 24)).toBe(rd32(img, 24));
    for (let i = 0; i < 8; i++) expect(st(nop.fpu!, i)).toEqual(sts[i]);
    expect(Array.from(nop.fpu!.subarray(160, 416))).toEqual(Array.from(img.subarray(160, 416)));
    expect(Array.from(dflt.fpu!.subarray(160, 416)).every((b) => b === 0)).toBe(true);
    expect(rd16(dflt.fpu!, 0)).toBe(0x037f);
    expect(rd32(dflt.fpu!, 24)).toBe(MXCSR_DEFAULT);
    expect(movq.outcome).toBe('trap');
    expect(movq.regs[RAX]).toBe(0n);
    expect(movq.fpu).toBeUndefined();
  });

  it('movaps needs 16-byte alignment (#GP -> SEGV), movups does not', async () => {
    const seed = 99;
    const p = pattern(seed);
    const [aligned, misaligned, unaligned] = await runNativeBatch([
      mkf('0f 28 03', {}, { [RBX]: BigInt(DATA_ADDR + 0x40) }, seed),
      mkf('0f 28 03', {}, { [RBX]: BigInt(DATA_ADDR + 0x48) }, seed),
      mkf('0f 10 03', {}, { [RBX]: BigInt(DATA_ADDR + 0x48) }, seed),
    ]);
    expect(aligned.outcome).toBe('trap');
    expect(Array.from(aligned.fpu!.subarray(160, 176))).toEqual(Array.from(p.subarray(0x40, 0x50)));
    expect(misaligned.outcome).toBe('SEGV');
    expect(misaligned.rip).toBe(ENTRY);
    expect(unaligned.outcome).toBe('trap');
    expect(Array.from(unaligned.fpu!.subarray(160, 176))).toEqual(Array.from(p.subarray(0x48, 0x58)));
  });

  it('mixes 176- and 688-byte records in one batch, in order', async () => {
    const cases: CaseInput[] = [];
    for (let i = 0; i < 600; i++) {
      if (i % 3 === 0) cases.push(mk('48 01 d8', { [RAX]: BigInt(i), [RBX]: 1n }));
      else cases.push(mkf('66 0f 7e c0', { xmm: { 0: BigInt(i) * 0x10001n } })); // movd eax, xmm0
    }
    const res = await runNativeBatch(cases);
    res.forEach((r, i) => {
      expect(r.outcome).toBe('trap');
      if (i % 3 === 0) { expect(r.regs[RAX]).toBe(BigInt(i) + 1n); expect(r.fpu).toBeUndefined(); }
      else { expect(r.regs[RAX]).toBe((BigInt(i) * 0x10001n) & 0xffffffffn); expect(r.fpu!.length).toBe(512); }
    });
  });

  it('generated FPU cases end in sensible outcomes', async () => {
    const cases = generateCases({ seed: 42, count: 4000, only: ['sse', 'sse-int', 'mmx', 'x87'] });
    const res = await runNativeBatch(cases);
    const bad: string[] = [];
    const count: Record<string, number> = {};
    res.forEach((r, i) => {
      const c = cases[i];
      count[r.outcome] = (count[r.outcome] ?? 0) + 1;
      let k = 0;
      while ([0x66, 0x67, 0xf2, 0xf3, 0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65, 0xf0].includes(c.code[k]) || (c.code[k] & 0xf0) === 0x40) k++;
      const locked = Array.from(c.code.subarray(0, k)).includes(0xf0);
      const img = c.fpu!;
      const pendingX87 = (rd16(img, 2) & 0x80) !== 0;
      const simdUnmasked = (rd32(img, 24) & 0x1f80) !== 0x1f80;
      const ok = r.outcome === 'trap' || (r.outcome === 'UD' && locked) || (r.outcome === 'MF' && pendingX87)
        || (r.outcome === 'XM' && simdUnmasked) || (r.outcome === 'SEGV' && c.formKey.includes(':mem'));
      if (!ok) bad.push(`${r.outcome}: ${c.description}`);
      if (r.outcome !== 'trap' && r.rip !== ENTRY) bad.push(`fault rip 0x${r.rip.toString(16)}: ${c.description}`);
    });
    expect(bad.slice(0, 20)).toEqual([]);
    expect(count.trap).toBeGreaterThan(cases.length * 0.85);
    for (const o of ['UD', 'MF', 'XM', 'SEGV']) expect(count[o], o).toBeGreaterThan(5);
  }, 60_000);

  it('carries generated FPU images unchanged through an instruction that ignores them, on both sides', async () => {
    // The generator's images are canonical (what FXRSTOR loads natively is what hvlab copies), and
    // both sides report them back in the same layout: NOP must compare equal everywhere.
    const cases = generateCases({ seed: 9, count: 300, only: ['sse', 'sse-int', 'mmx', 'x87'] })
      .map((c) => ({ ...c, code: hex('90'), fswMask: 0xffff, dataIgnore: undefined }));
    const native = await runNativeBatch(cases);
    const emu = new EmulatedRunner();
    const diffs = cases.flatMap((c, i) => differences(c, native[i], emu.run(c)).map((d) => `${i}: ${d}`));
    expect(diffs.slice(0, 10)).toEqual([]);
  });
});
