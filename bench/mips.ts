// `hvlab bench mips`: a CPU-bound integer loop (xorshift64, a read-modify-write of a 32 KiB table,
// a data-dependent branch) run in the emulator and natively on this machine, in the same process
// run, as the same machine-code bytes. The loop counts its own taken branches so that both sides know
// the exact number of instructions executed, and both must end with the same checksums.
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as abi from '../wasm/abi.ts';
import { Host } from '../emu/machine/host.ts';
import { CODE_ADDR, DATA_ADDR } from '../emu/difftest/types.ts';

/** Instructions before the loop and after it (prologue 5 + epilogue mov + int3). */
const PROLOGUE_INSTRUCTIONS = 5;
const EPILOGUE_INSTRUCTIONS = 2;
const LOOP_INSTRUCTIONS = 16;
const BRANCH_INSTRUCTIONS = 2;

function le(v: bigint, bytes: number): number[] {
  return Array.from({ length: bytes }, (_, i) => Number((v >> BigInt(8 * i)) & 0xffn));
}

/** The loop as x86-64 machine code, one instruction per line. */
export function mipsLoop(iterations: number, seed = 0x2545f4914f6cdd1dn): Uint8Array {
  const body = [
    [0x48, 0x89, 0xc2], //             loop: mov rdx, rax
    [0x48, 0xc1, 0xe2, 0x0d], //       shl rdx, 13
    [0x48, 0x31, 0xd0], //             xor rax, rdx
    [0x48, 0x89, 0xc2], //             mov rdx, rax
    [0x48, 0xc1, 0xea, 0x07], //       shr rdx, 7
    [0x48, 0x31, 0xd0], //             xor rax, rdx
    [0x48, 0x89, 0xc2], //             mov rdx, rax
    [0x48, 0xc1, 0xe2, 0x11], //       shl rdx, 17
    [0x48, 0x31, 0xd0], //             xor rax, rdx
    [0x89, 0xc2], //                   mov edx, eax
    [0x81, 0xe2, 0xff, 0x0f, 0, 0], // and edx, 0xfff
    [0x48, 0x01, 0x04, 0xd6], //       add [rsi+rdx*8], rax
    [0xa8, 0x01], //                   test al, 1
    [0x74, 0x06], //                   jz skip
    [0x48, 0x01, 0xd3], //             add rbx, rdx
    [0x49, 0xff, 0xc0], //             inc r8
    [0x48, 0xff, 0xc9], //             skip: dec rcx
  ];
  const loopBytes = body.flat().length + 2;
  const code = [
    [0x48, 0xb8, ...le(seed, 8)], //                       mov rax, seed
    [0xb9, ...le(BigInt(iterations), 4)], //                mov ecx, iterations
    [0xbe, ...le(BigInt(DATA_ADDR), 4)], //                 mov esi, DATA_ADDR
    [0x31, 0xdb], //                                        xor ebx, ebx
    [0x45, 0x31, 0xc0], //                                  xor r8d, r8d
    ...body,
    [0x75, (256 - loopBytes) & 0xff], //                    jnz loop
    [0x4c, 0x89, 0xc2], //                                  mov rdx, r8
    [0xcc], //                                              int3
  ];
  return new Uint8Array(code.flat());
}

/** Exact instruction count of a run, from its iteration count and taken-branch count (RDX). */
export function instructionCount(iterations: number, branches: bigint): bigint {
  return BigInt(PROLOGUE_INSTRUCTIONS + EPILOGUE_INSTRUCTIONS) + BigInt(iterations) * BigInt(LOOP_INSTRUCTIONS)
    + branches * BigInt(BRANCH_INSTRUCTIONS);
}

export interface MipsResult {
  instructions: number;
  seconds: number;
  mips: number;
  rax: bigint;
  rbx: bigint;
}

/** Run the loop in the emulator, returning to the host every `slice` instructions as the VMM does. */
export function runEmulated(iterations: number, slice = 1_000_000): MipsResult {
  const host = new Host({ ramBytes: 4 << 20 });
  const vcpu = host.vcpu(0);
  vcpu.reset();
  host.writeGuest(CODE_ADDR, mipsLoop(iterations));
  vcpu.rip = BigInt(CODE_ADDR);
  vcpu.setReg(4, BigInt(DATA_ADDR + (1 << 20)));
  const t0 = process.hrtime.bigint();
  let reason = abi.EXIT_BUDGET;
  while (reason === abi.EXIT_BUDGET) reason = vcpu.run(slice);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const exit = vcpu.exit();
  if (reason !== abi.EXIT_EXCEPTION || exit.vector !== abi.VEC_BP) {
    throw new Error(`bench mips: the emulated loop ended with ${exit.name} vector ${exit.vector} at 0x${exit.rip.toString(16)}`);
  }
  const retired = vcpu.counter(abi.CNT_INSTRUCTIONS);
  const expected = instructionCount(iterations, vcpu.reg(2));
  if (retired !== expected) throw new Error(`bench mips: retired ${retired} instructions, the loop implies ${expected}`);
  return { instructions: Number(retired), seconds, mips: Number(retired) / seconds / 1e6, rax: vcpu.reg(0), rbx: vcpu.reg(3) };
}

/** Run the same bytes on this machine's CPU through the native runner. */
export async function runNative(iterations: number): Promise<MipsResult> {
  const { ensureNativeRunner, runNativeBench } = await import('../emu/difftest/native.ts');
  ensureNativeRunner();
  const dir = mkdtempSync(join(tmpdir(), 'hvlab-mips-'));
  const file = join(dir, 'loop.bin');
  writeFileSync(file, mipsLoop(iterations));
  const r = runNativeBench(file);
  if (r.outcome !== 'trap') throw new Error(`bench mips: the native loop ended with ${r.outcome}`);
  const instructions = Number(instructionCount(iterations, r.rdx));
  return { instructions, seconds: r.seconds, mips: instructions / r.seconds / 1e6, rax: r.rax, rbx: r.rbx };
}

export interface MipsReport {
  mips: number;
  native_mips: number | null;
  ratio: number | null;
  instructions: number;
  seconds: number;
  rounds: number;
  checksums_match: boolean | null;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Rounds alternate native and emulated runs, and the figures are medians over the rounds: on a
 *  shared machine whose speed drifts, a ratio taken within each round is the fair one. */
export async function benchMips(opts: { iterations: number; nativeIterations: number; native: boolean; rounds?: number }): Promise<MipsReport> {
  runEmulated(200_000); // warm-up: lets V8 tier the module up to TurboFan before timing
  const rounds = Math.max(1, opts.rounds ?? 3);
  const emus: MipsResult[] = [];
  const natives: MipsResult[] = [];
  const ratios: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const native = opts.native ? await runNative(opts.nativeIterations) : null;
    const emu = runEmulated(opts.iterations);
    emus.push(emu);
    if (native) { natives.push(native); ratios.push(emu.mips / native.mips); }
  }
  let checksums: boolean | null = null;
  if (opts.native) {
    // The same iteration count natively must leave the same checksums as the emulated run.
    const check = opts.nativeIterations === opts.iterations ? natives[0] : await runNative(opts.iterations);
    checksums = check.rax === emus[0].rax && check.rbx === emus[0].rbx;
  }
  return {
    mips: median(emus.map((e) => e.mips)),
    native_mips: natives.length ? median(natives.map((n) => n.mips)) : null,
    ratio: ratios.length ? median(ratios) : null,
    instructions: emus[0].instructions,
    seconds: median(emus.map((e) => e.seconds)),
    rounds,
    checksums_match: checksums,
  };
}
