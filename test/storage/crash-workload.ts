// A deterministic write workload on a disk image, shared by the crash tests: the operations follow from
// a seed, so a test that knows how many of them were flushed can recompute what the disk must hold.
// Run as a program (node --import tsx crash-workload.ts IMAGE SEED), it applies the
// operations through the storage layer until it is killed, printing "flushed N" after each completed
// flush of the first N operations.
import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import type { BlockImage } from '../../emu/hv/storage/block-image.ts';
import { openImage } from '../../emu/hv/storage/open.ts';

export interface Op {
  kind: 'write' | 'zero' | 'discard';
  offset: number;
  length: number;
  data?: Uint8Array;
  /** The workload flushes after this operation. */
  flush: boolean;
}

export function xorshift(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => { state ^= state << 13; state >>>= 0; state ^= state >>> 17; state ^= state << 5; state >>>= 0; return state; };
}

/** Endless operations on a disk of `size` bytes: mostly writes of 1..64 sectors at random sectors, some
 *  writeZeroes and discards (which free clusters), a flush after about one operation in four. */
/** A raw base image of `size` pseudo-random bytes (seeded) at `path`; returns its contents. */
export function writeRandomBase(path: string, size: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(size), view = new DataView(bytes.buffer), fill = xorshift(seed);
  for (let i = 0; i < size; i += 4) view.setUint32(i, fill());
  writeFileSync(path, bytes);
  return bytes;
}

export function* operations(seed: number, size: number): Generator<Op> {
  const next = xorshift(seed);
  const sectors = size / 512;
  for (;;) {
    const offset = (next() % sectors) * 512;
    const length = Math.min(size - offset, (1 + (next() % 64)) * 512);
    const choice = next() % 20;
    const kind = choice < 14 ? 'write' : choice < 17 ? 'zero' : 'discard';
    const data = kind === 'write' ? new Uint8Array(length) : undefined;
    if (data) for (let i = 0; i < length; i += 4) new DataView(data.buffer).setUint32(i, next());
    yield { kind, offset, length, data, flush: next() % 4 === 0 };
  }
}

/** What the guest sees after `op` (a discard zeroes the whole clusters in its range: a v3 overlay marks
 *  them zero over its backing file; partial clusters keep their data). */
export function applyOp(model: Uint8Array, op: Op, clusterSize: number): void {
  if (op.kind === 'write') model.set(op.data!, op.offset);
  else if (op.kind === 'zero') model.fill(0, op.offset, op.offset + op.length);
  else {
    const first = Math.ceil(op.offset / clusterSize) * clusterSize, end = Math.floor((op.offset + op.length) / clusterSize) * clusterSize;
    if (end > first) model.fill(0, first, end);
  }
}

/** Up to 10 byte offsets where `actual` holds none of the states in `candidates` (the disk after each of
 *  the operations that may have happened; candidates[0] is what every flushed operation left). */
export function bytesMatchingNoState(actual: Uint8Array, candidates: Uint8Array[]): number[] {
  const bad: number[] = [];
  const CHUNK = 4096;
  for (let start = 0; start < actual.length && bad.length < 10; start += CHUNK) {
    const end = Math.min(actual.length, start + CHUNK);
    if (Buffer.from(actual.buffer, actual.byteOffset + start, end - start).equals(Buffer.from(candidates[0].buffer, candidates[0].byteOffset + start, end - start))) continue;
    for (let i = start; i < end && bad.length < 10; i++) if (!candidates.some((c) => c[i] === actual[i])) bad.push(i);
  }
  return bad;
}

export function runOp(image: BlockImage, op: Op): void {
  if (op.kind === 'write') image.write(op.offset, op.data!);
  else if (op.kind === 'zero') image.writeZeroes(op.offset, op.length);
  else image.discard(op.offset, op.length);
}

function main(): void {
  const [path, seedText] = process.argv.slice(2);
  const image = openImage(path);
  let done = 0;
  for (const op of operations(Number(seedText), image.size)) {
    runOp(image, op);
    done++;
    if (op.flush) {
      image.flush();
      process.stdout.write(`flushed ${done}\n`); // synchronous for pipes on Linux
    }
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main();
