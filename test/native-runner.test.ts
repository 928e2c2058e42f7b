// The native oracle itself must be right before it can judge the emulator: these cases are
// hand-assembled and their expected results computed here, independently of the runner.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureNativeRunner, runNativeBatch, runNativeBench } from '../emu/difftest/native.ts';
import { CODE_ADDR, CODE_OFFSET, DATA_ADDR, DATA_SIZE, fillPattern, type CaseInput } from '../emu/difftest/types.ts';

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
