// Node side of the native oracle (test/native/runner.c): builds the runner on demand, streams
// case records to it and decodes its results. The binary protocol is documented in runner.c and
// mirrored by the offsets below; everything is little-endian.
//
// Input record (IN_RECORD_SIZE = 176 bytes, + 512 when flags bit 0 is set):
//   +0 u8 codeLen  +1 code[15]  +16 u64 regs[16]  +144 u64 rflags  +152 u32 dataSeed
//   +156 u32 flags  +160 u64 0  +168 8 bytes padding  [+176 512-byte FXSAVE64 image]
//   flags bit 0 (IN_FLAG_FPU): the case carries CaseInput.fpu; the runner FXRSTORs it (otherwise
//   the default image: FCW 0x037F, FSW 0, FTW 0, MXCSR 0x1F80, registers 0) and returns the image
//   captured at the signal. Integer-only cases keep the 176-byte record and the short result.
// Output record (OUT_HEADER_SIZE = 152 bytes + [512] + 4 * nDiff):
//   +0 u16 outcome (index into OUTCOMES)  +2 u16 flags (bit 0: FXSAVE image follows the header)
//   +4 u32 nDiff  +8 u64 regs[16]  +136 u64 rip  +144 u64 rflags
//   +152 [512-byte FXSAVE image]  then nDiff x u32 (offset << 8 | byte)

import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { FXSAVE_BYTES, type CaseInput, type CaseResult, type Outcome } from './types.ts';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const RUNNER_SOURCE = fileURLToPath(new URL('../../test/native/runner.c', import.meta.url));
const BUILD_SCRIPT = fileURLToPath(new URL('../../test/native/build.sh', import.meta.url));

/** Input record: u8 codeLen, code[15], u64 regs[16], u64 rflags, u32 seed, u32 flags, u64 0, 8 pad. */
export const IN_RECORD_SIZE = 176;
/** Input flags bit 0: a 512-byte FXSAVE image follows the record (and is returned). */
export const IN_FLAG_FPU = 1;
/** Output record header: u16 outcome, u16 flags, u32 nDiff, u64 regs[16], u64 rip, u64 rflags. */
export const OUT_HEADER_SIZE = 152;
/** Output flags bit 0: a 512-byte FXSAVE image follows the header. */
export const OUT_FLAG_FPU = 1;

/** Outcome codes of the output record, indexed by code. */
const OUTCOMES: readonly Outcome[] = ['trap', 'DE', 'UD', 'SEGV', 'BUS', 'timeout', 'other', 'MF', 'XM'];

/** Absolute path of build/native/runner in this checkout. */
export function nativeRunnerPath(): string {
  return fileURLToPath(new URL('../../build/native/runner', import.meta.url));
}

/** Builds the runner when it is missing or older than runner.c; returns its path. */
export function ensureNativeRunner(): string {
  const bin = nativeRunnerPath();
  if (existsSync(bin) && statSync(bin).mtimeMs >= statSync(RUNNER_SOURCE).mtimeMs) return bin;
  // Check for gcc ourselves: a missing compiler deserves a clearer message than a build log.
  const gcc = spawnSync('gcc', ['--version'], { stdio: 'ignore' });
  if (gcc.error || gcc.status !== 0) {
    throw new Error('The native difftest runner needs gcc (not found on PATH); install gcc, ' +
      'then run `npm run native`.');
  }
  const build = spawnSync('bash', [BUILD_SCRIPT], { cwd: REPO_ROOT, encoding: 'utf8' });
  if (build.error || build.status !== 0) {
    throw new Error(`test/native/build.sh failed (status ${build.status}):\n${build.stderr ?? build.error}`);
  }
  return bin;
}

/** Bytes of a case's input record: 176, or 688 with an FPU image. */
export function inRecordSize(c: CaseInput): number {
  return IN_RECORD_SIZE + (c.fpu ? FXSAVE_BYTES : 0);
}

/** Encodes cases into consecutive input records (176 bytes, 688 with an FPU image). */
export function encodeCases(cases: readonly CaseInput[]): Buffer {
  // Records are 8-byte multiples with the u64 fields 8-aligned, so a BigUint64Array view can
  // store them directly (several times faster than Buffer.writeBigUInt64LE for 100k cases).
  let total = 0;
  for (const c of cases) total += inRecordSize(c);
  const ab = new ArrayBuffer(total); // zeroed: reserved fields, padding
  const u8 = new Uint8Array(ab);
  const u64 = new BigUint64Array(ab);
  const view = new DataView(ab);
  let off = 0;
  for (const c of cases) {
    encodeCase(c, u8, u64, view, off);
    off += inRecordSize(c);
  }
  return Buffer.from(ab);
}

function encodeCase(c: CaseInput, u8: Uint8Array, u64: BigUint64Array, view: DataView, off: number): void {
  if (c.code.length > 15) throw new Error(`case code is ${c.code.length} bytes (max 15)`);
  if (c.regs.length !== 16) throw new Error(`case has ${c.regs.length} registers (need 16)`);
  u8[off] = c.code.length;
  u8.set(c.code, off + 1);
  const q = off / 8;
  // BigInt.asUintN accepts negative values too, so callers may pass signed quantities.
  for (let j = 0; j < 16; j++) u64[q + 2 + j] = BigInt.asUintN(64, c.regs[j]);
  u64[q + 18] = BigInt.asUintN(64, c.rflags);
  view.setUint32(off + 152, c.dataSeed >>> 0, true);
  if (c.fpu) {
    if (c.fpu.length !== FXSAVE_BYTES) throw new Error(`case FPU image is ${c.fpu.length} bytes (need ${FXSAVE_BYTES})`);
    view.setUint32(off + 156, IN_FLAG_FPU, true);
    u8.set(c.fpu, off + IN_RECORD_SIZE);
  }
}

/**
 * Incremental decoder of the result stream: records have a variable length (the data diff),
 * so a record may straddle pipe chunks.
 */
class ResultDecoder {
  readonly results: CaseResult[] = [];
  private pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): void {
    const buf = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    let off = 0;
    while (buf.length - off >= OUT_HEADER_SIZE) {
      const flags = buf.readUInt16LE(off + 2);
      const nDiff = buf.readUInt32LE(off + 4);
      const fpuBytes = flags & OUT_FLAG_FPU ? FXSAVE_BYTES : 0;
      const size = OUT_HEADER_SIZE + fpuBytes + 4 * nDiff;
      if (buf.length - off < size) break;
      this.results.push(decodeResult(buf, off, nDiff, fpuBytes));
      off += size;
    }
    this.pending = buf.subarray(off);
  }

  /** Bytes of an incomplete trailing record (non-zero only if the runner died mid-write). */
  get leftover(): number {
    return this.pending.length;
  }
}

// Output records have variable length, so their u64 fields are not 8-aligned in the stream:
// copy each header's 144 register bytes into an aligned scratch array and read it as u64s.
const scratch = new BigUint64Array(18);
const scratchBytes = new Uint8Array(scratch.buffer);

function decodeResult(buf: Buffer, off: number, nDiff: number, fpuBytes: number): CaseResult {
  const code = buf.readUInt16LE(off);
  const outcome = OUTCOMES[code];
  if (outcome === undefined) throw new Error(`native runner: unknown outcome code ${code}`);
  scratchBytes.set(buf.subarray(off + 8, off + OUT_HEADER_SIZE));
  const regs: bigint[] = [];
  for (let j = 0; j < 16; j++) regs.push(scratch[j]);
  const dataDiff: [number, number][] = [];
  const entries = off + OUT_HEADER_SIZE + fpuBytes;
  for (let k = 0; k < nDiff; k++) {
    const e = buf.readUInt32LE(entries + 4 * k);
    dataDiff.push([e >>> 8, e & 0xff]);
  }
  const r: CaseResult = { outcome, regs, rip: scratch[16], rflags: scratch[17], dataDiff };
  if (fpuBytes) r.fpu = new Uint8Array(buf.subarray(off + OUT_HEADER_SIZE, entries)); // a copy
  return r;
}

/** Writes data in chunks, waiting for 'drain' whenever the pipe buffer is full. */
async function writeAll(child: ChildProcessWithoutNullStreams, data: Buffer): Promise<void> {
  const CHUNK = 1 << 20;
  for (let off = 0; off < data.length; off += CHUNK) {
    if (child.stdin.destroyed) return; // the runner died; the exit handler reports why
    const ok = child.stdin.write(data.subarray(off, off + CHUNK));
    if (!ok) {
      await new Promise<void>((resolve) => {
        const done = () => { child.stdin.off('drain', done); child.stdin.off('close', done); resolve(); };
        child.stdin.once('drain', done);
        child.stdin.once('close', done);
      });
    }
  }
  child.stdin.end();
}

/** Runs the cases on this machine's CPU; results come back in input order. */
export async function runNativeBatch(cases: readonly CaseInput[]): Promise<CaseResult[]> {
  const bin = ensureNativeRunner();
  if (cases.length === 0) return [];
  const input = encodeCases(cases);
  const child = spawn(bin, [], { stdio: ['pipe', 'pipe', 'pipe'] });
  const decoder = new ResultDecoder();
  let stderr = '';
  let decodeError: unknown;
  child.stdout.on('data', (chunk: Buffer) => {
    try { decoder.push(chunk); } catch (e) { decodeError ??= e; }
  });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (s: string) => { stderr += s; });
  // An EPIPE on stdin just means the runner exited early; the exit status tells the story.
  child.stdin.on('error', () => {});

  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  exited.catch(() => {}); // awaited below; this only stops an early spawn error being "unhandled"
  await writeAll(child, input);
  const { code, signal } = await exited;

  if (decodeError) throw decodeError;
  if (code !== 0 || decoder.results.length !== cases.length || decoder.leftover !== 0) {
    throw new Error(`native runner failed (exit ${code ?? signal}); ${decoder.results.length}/` +
      `${cases.length} results${stderr ? `:\n${stderr}` : ''}`);
  }
  decoder.results.forEach((r, i) => {
    if (!!r.fpu !== !!cases[i].fpu) throw new Error(`native runner: result ${i} has the wrong FPU-image flag`);
  });
  return decoder.results;
}

export interface NativeBenchResult {
  outcome: string;
  seconds: number;
  rax: bigint;
  rbx: bigint;
  rcx: bigint;
  rdx: bigint;
  rip: bigint;
}

/** Runs a flat code image at CODE_ADDR natively (`runner bench FILE`) until its first signal. */
export function runNativeBench(codeFile: string): NativeBenchResult {
  const bin = ensureNativeRunner();
  const run = spawnSync(bin, ['bench', codeFile], { encoding: 'utf8' });
  if (run.error || run.status !== 0) {
    throw new Error(`native runner bench failed (status ${run.status ?? run.signal}):\n${run.stderr ?? run.error}`);
  }
  const j = JSON.parse(run.stdout) as Record<string, string | number>;
  return {
    outcome: String(j.outcome),
    seconds: Number(j.seconds),
    rax: BigInt(j.rax),
    rbx: BigInt(j.rbx),
    rcx: BigInt(j.rcx),
    rdx: BigInt(j.rdx),
    rip: BigInt(j.rip),
  };
}
