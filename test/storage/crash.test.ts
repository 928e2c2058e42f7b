// Crash consistency (issue 7): a child process runs a write workload on a qcow2 overlay over a raw base
// and is SIGKILLed at a random moment. Afterwards `qemu-img check` may report leaked clusters (exit
// status 3) but no corruption, every write the child saw flushed reads back (through hvlab's storage
// layer and through qemu-img convert, which must agree byte for byte), and the base is unchanged. The
// next round continues on the crashed image, so reopening after a crash is exercised too.
import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openImage } from '../../emu/hv/storage/open.ts';
import { createQcow2 } from '../../emu/hv/storage/qcow2.ts';
import { type Op, applyOp, bytesMatchingNoState, operations, writeRandomBase, xorshift } from './crash-workload.ts';

const dir = mkdtempSync(join(tmpdir(), 'hvlab-crash-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const WORKLOAD = fileURLToPath(new URL('./crash-workload.ts', import.meta.url));
const DISK = 4 << 20;

const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** Runs the workload until it has reported `flushes` flushes, waits `delayMs` more, and SIGKILLs it. */
function runAndKill(image: string, seed: number, flushes: number, delayMs: number): Promise<{ lines: string[]; signal: string | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', WORKLOAD, image, String(seed)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', stderr = '', armed = false;
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (!armed && out.split('\n').length - 1 >= flushes) {
        armed = true;
        setTimeout(() => child.kill('SIGKILL'), delayMs);
      }
    });
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    child.on('error', reject);
    child.on('close', (_code, signal) => resolve({ lines: out.split('\n').filter(Boolean), signal, stderr }));
  });
}

/** The first `count` operations of the workload, and the ones up to the next flush (which may or may not have happened). */
function opsOf(seed: number, count: number): { flushed: Op[]; maybe: Op[] } {
  const flushed: Op[] = [], maybe: Op[] = [];
  for (const op of operations(seed, DISK)) {
    if (flushed.length < count) { flushed.push(op); continue; }
    maybe.push(op);
    if (op.flush) break;
  }
  return { flushed, maybe };
}

describe('a process killed during a write workload', () => {
  it('leaves an image qemu-img check accepts, holding every flushed write (8 seeded rounds)', async () => {
    const base = join(dir, 'base.raw');
    const baseBytes = writeRandomBase(base, DISK, 0xba5e);
    const baseHash = sha(baseBytes);

    const rng = xorshift(20261126);
    const outcomes: string[] = [];
    let killedMidFlushes = 0;
    // Two overlays: 512-byte clusters (much metadata per write, refcount blocks and table filling up)
    // and 4 KiB clusters; four rounds each, every round continuing on the image the last one crashed.
    for (const clusterBits of [9, 12]) {
      const overlay = join(dir, `overlay-${clusterBits}.qcow2`);
      createQcow2(overlay, DISK, { backingFile: 'base.raw', backingFormat: 'raw', clusterBits });
      let disk: Uint8Array = baseBytes.slice(); // what the guest saw at the last verified point
      for (let round = 0; round < 4; round++) {
        const seed = rng(), flushes = 1 + (rng() % 30), delayMs = rng() % 25;
        const run = await runAndKill(overlay, seed, flushes, delayMs);
        const where = `cluster_bits ${clusterBits}, round ${round}, seed ${seed}`;
        expect(run.stderr, where).toBe('');
        expect(run.signal, `${where}: the workload should still be running when killed`).toBe('SIGKILL');
        const counts = run.lines.map((line) => Number(/^flushed (\d+)$/.exec(line)?.[1]));
        expect(counts.every(Number.isInteger), `${where}: ${run.lines.join('|')}`).toBe(true);
        const flushedCount = counts.length ? counts[counts.length - 1] : 0;

        const check = spawnSync('qemu-img', ['check', '--output', 'json', overlay], { encoding: 'utf8' });
        const report = JSON.parse(check.stdout || '{}');
        outcomes.push(`${where}: ${flushedCount} ops flushed, qemu-img check exit ${check.status}, leaks ${report.leaks ?? 0}, corruptions ${report.corruptions ?? 0}`);
        // 0: clean; 3: leaked clusters only. 2 (corruption) and 1 (check failed) are failures.
        expect([0, 3], `${where}: ${check.stdout}${check.stderr}`).toContain(check.status);
        expect(report.corruptions ?? 0, where).toBe(0);
        expect(report['check-errors'] ?? 0, where).toBe(0);

        const { flushed, maybe } = opsOf(seed, flushedCount);
        const expected = disk.slice();
        for (const op of flushed) applyOp(expected, op, 2 ** clusterBits);
        // The operations after the last reported flush may have happened in part: each byte they touch
        // holds its state after some prefix of them.
        const candidates = [expected];
        for (const op of maybe) { const next = candidates[candidates.length - 1].slice(); applyOp(next, op, 2 ** clusterBits); candidates.push(next); }

        const image = openImage(overlay, { readOnly: true });
        const actual = image.read(0, DISK);
        image.close();
        const flat = join(dir, 'flat.raw');
        execFileSync('qemu-img', ['convert', '-O', 'raw', overlay, flat]);
        expect(sha(readFileSync(flat)), `${where}: qemu-img convert and hvlab read different bytes`).toBe(sha(actual));
        expect(bytesMatchingNoState(actual, candidates), `${where}: bytes that match no flushed state`).toEqual([]);
        expect(sha(readFileSync(base)), `${where}: the base changed`).toBe(baseHash);
        if (!Buffer.from(actual).equals(Buffer.from(expected))) killedMidFlushes++;
        disk = actual;
      }
    }
    console.log(outcomes.join('\n') + `\nrounds where unflushed writes were visible: ${killedMidFlushes}`);
  });

  it('reopening an image whose leaked clusters lie past the end of the file never hands them out twice', () => {
    // A crash after a refcount block reached the disk but before the clusters it counts were written
    // leaves refcounts beyond the end of the file. Appending at the end of the file would reuse them.
    const image = join(dir, 'leak-past-end.qcow2');
    createQcow2(image, 1 << 20, { clusterBits: 12 });
    const disk = openImage(image);
    disk.write(0, new Uint8Array(4096).fill(1));
    disk.close();
    const bytes = new Uint8Array(readFileSync(image));
    const view = new DataView(bytes.buffer);
    const refcountTable = Number(view.getBigUint64(48)), block = Number(view.getBigUint64(refcountTable));
    const leaked = bytes.length / 4096 + 2; // two clusters past the end of the file
    view.setUint16(block + leaked * 2, 1);
    writeFileSync(image, bytes);
    // qemu-img check only counts the clusters inside the file, so it does not see this leak yet.
    expect(spawnSync('qemu-img', ['check', image]).status).toBe(0);

    const again = openImage(image);
    for (let i = 1; i < 8; i++) again.write(i * 4096, new Uint8Array(4096).fill(i + 1));
    again.close();
    const check = spawnSync('qemu-img', ['check', '--output', 'json', image], { encoding: 'utf8' });
    // The file grew past the leaked cluster: now a leak, not a cluster shared by two owners.
    expect(check.status, check.stdout).toBe(3);
    expect(JSON.parse(check.stdout)).toMatchObject({ leaks: 1, 'check-errors': 0 });
    expect(JSON.parse(check.stdout).corruptions ?? 0).toBe(0);
  });
});
