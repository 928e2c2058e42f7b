// Host crash (power loss) consistency of qcow2 writes: killing a process cannot reorder its writes (the
// page cache keeps them), but a host crash can persist any subset of the writes issued since the last
// fsync. This test records every write and fsync hvlab issues during a workload, then builds the images
// a power loss at random moments could leave: everything before the last fsync, and for each 512-byte
// sector written since then, some prefix of those writes (sectors are the disk's atomic unit), and
// zeros or garbage where the file grew but nothing was persisted. Each such image must pass `qemu-img check`
// (leaked clusters at most) and hold every flushed write.
import { afterAll, describe, expect, it, vi } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openImage } from '../../emu/hv/storage/open.ts';
import { createQcow2 } from '../../emu/hv/storage/qcow2.ts';
import { type Op, applyOp, bytesMatchingNoState, operations, runOp, writeRandomBase, xorshift } from './crash-workload.ts';

type JournalEntry = { sync: false; position: number; bytes: Uint8Array } | { sync: true };
const journal = vi.hoisted(() => ({ recording: false, entries: [] as ({ sync: false; position: number; bytes: Uint8Array } | { sync: true })[] }));

vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  const writeSync = ((fd: number, buffer: Uint8Array, offset: number, length: number, position: number) => {
    const written = fs.writeSync(fd, buffer, offset, length, position);
    if (journal.recording) journal.entries.push({ sync: false, position, bytes: buffer.slice(offset, offset + written) });
    return written;
  }) as typeof fs.writeSync;
  const fsyncSync = (fd: number) => {
    fs.fsyncSync(fd);
    if (journal.recording) journal.entries.push({ sync: true });
  };
  return { ...fs, default: { ...fs, writeSync, fsyncSync }, writeSync, fsyncSync };
});

const dir = mkdtempSync(join(tmpdir(), 'hvlab-powerloss-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const DISK = 1 << 20;
const SECTOR = 512;
const OPERATIONS = 150;
const ANYWHERE_CUTS = 20;

/** The file a power loss at journal position `cut` can leave, persisting pending sectors as `rng` picks. */
function crashedFile(initial: Uint8Array, entries: JournalEntry[], cut: number, rng: () => number): Uint8Array {
  let lastSync = -1;
  for (let i = 0; i < cut; i++) if (entries[i].sync) lastSync = i;
  const chunks: { position: number; bytes: Uint8Array }[] = [];
  let end = initial.length;
  const put = (position: number, bytes: Uint8Array) => { chunks.push({ position, bytes }); end = Math.max(end, position + bytes.length); };
  for (let i = 0; i < lastSync; i++) { const e = entries[i]; if (!e.sync) put(e.position, e.bytes); }
  // Writes since the last fsync, split into sectors; each sector keeps a random prefix of its writes.
  const pending = new Map<number, { position: number; bytes: Uint8Array }[]>();
  for (let i = lastSync + 1; i < cut; i++) {
    const e = entries[i];
    if (e.sync) continue;
    for (let at = e.position; at < e.position + e.bytes.length;) {
      const sector = Math.floor(at / SECTOR), stop = Math.min((sector + 1) * SECTOR, e.position + e.bytes.length);
      if (!pending.has(sector)) pending.set(sector, []);
      pending.get(sector)!.push({ position: at, bytes: e.bytes.subarray(at - e.position, stop - e.position) });
      at = stop;
    }
  }
  for (const writes of pending.values()) for (const w of writes.slice(0, rng() % (writes.length + 1))) put(w.position, w.bytes);
  // Where the file grew, what was not persisted reads as zeros (holes) or as garbage (as a crash can
  // leave allocated but unwritten blocks, e.g. ext4 data=writeback): either way no pointer may reach
  // the disk before what it points at.
  const file = new Uint8Array(end).fill(rng() % 2 ? 0xff : 0);
  file.set(initial);
  for (const c of chunks) file.set(c.bytes, c.position);
  return file;
}

describe('a host crash during a write workload', () => {
  it('leaves images qemu-img check accepts, holding every flushed write (sector-granular reordering since the last fsync)', () => {
    const base = join(dir, 'base.raw');
    const baseBytes = writeRandomBase(base, DISK, 7);

    const clusterBits = 9, clusterSize = 2 ** clusterBits;
    const overlay = join(dir, 'overlay.qcow2');
    createQcow2(overlay, DISK, { backingFile: 'base.raw', backingFormat: 'raw', clusterBits });
    const initial = new Uint8Array(readFileSync(overlay));

    // The workload, recording the journal position where each operation starts and each flush returns.
    const ops: Op[] = [], opStart: number[] = [], flushDone: { at: number; ops: number }[] = [];
    const image = openImage(overlay);
    journal.entries = [];
    journal.recording = true;
    for (const op of operations(99, DISK)) {
      opStart.push(journal.entries.length);
      ops.push(op);
      runOp(image, op);
      if (op.flush) { image.flush(); flushDone.push({ at: journal.entries.length, ops: ops.length }); }
      if (ops.length >= OPERATIONS) break;
    }
    journal.recording = false;
    image.close();
    const entries = journal.entries;
    expect(entries.some((e) => e.sync)).toBe(true);

    /** The disk after the first k operations, for k from `from` to `to`. */
    const states = (from: number, to: number): Uint8Array[] => {
      const disk = baseBytes.slice(), result: Uint8Array[] = [];
      for (let k = 0; k <= to; k++) {
        if (k >= from) result.push(disk.slice());
        if (k < to) applyOp(disk, ops[k], clusterSize);
      }
      return result;
    };

    const rng = xorshift(424242);
    const crashed = join(dir, 'crashed.qcow2'), flat = join(dir, 'flat.raw');
    const statuses = new Map<number | null, number>();
    // A power loss just before each fsync (where the most writes are pending: a metadata level written
    // back since the previous fsync, or data and refcounts), and at some moments anywhere.
    const cuts = entries.flatMap((e, i) => (e.sync ? [i] : []));
    for (let i = 0; i < ANYWHERE_CUTS; i++) cuts.push(rng() % (entries.length + 1));
    for (const [trial, cut] of cuts.entries()) {
      writeFileSync(crashed, crashedFile(initial, entries, cut, rng));
      const where = `trial ${trial}, power lost after ${cut} of ${entries.length} writes/fsyncs`;
      const check = spawnSync('qemu-img', ['check', '--output', 'json', crashed], { encoding: 'utf8' });
      statuses.set(check.status, (statuses.get(check.status) ?? 0) + 1);
      expect([0, 3], `${where}: ${check.stdout}${check.stderr}`).toContain(check.status);

      const flushed = flushDone.filter((f) => f.at <= cut).reduce((n, f) => Math.max(n, f.ops), 0);
      const started = opStart.filter((at) => at < cut).length;
      const candidates = states(flushed, started);
      const disk = openImage(crashed, { readOnly: true });
      const actual = disk.read(0, DISK);
      disk.close();
      if (trial % 4 === 0) { // (qemu-img convert costs a process; a quarter of the images are enough to compare readers)
        execFileSync('qemu-img', ['convert', '-O', 'raw', crashed, flat]);
        expect(Buffer.from(readFileSync(flat)).equals(Buffer.from(actual)), `${where}: hvlab and qemu-img read different bytes`).toBe(true);
      }
      expect(bytesMatchingNoState(actual, candidates), `${where}: ${flushed} operations flushed; bytes holding no state since then`).toEqual([]);
    }
    // The crashed images are writable again: a copy of the last one takes more writes and stays consistent.
    copyFileSync(crashed, join(dir, 'reopened.qcow2'));
    const again = openImage(join(dir, 'reopened.qcow2'));
    for (const op of operations(5, DISK)) { runOp(again, op); if (op.flush) break; }
    again.close();
    expect([0, 3]).toContain(spawnSync('qemu-img', ['check', join(dir, 'reopened.qcow2')]).status);
    console.log(`${entries.length} writes/fsyncs recorded; qemu-img check exit statuses over ${cuts.length} crash images: ${[...statuses].map(([s, n]) => `${s}: ${n}`).join(', ')}`);
  });
});
