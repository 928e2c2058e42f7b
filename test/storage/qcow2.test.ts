// qcow2 images checked against QEMU's own tools: qemu-img/qemu-io write images hvlab reads, and
// images hvlab writes must pass `qemu-img check` and convert to the bytes hvlab's model predicts.
import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImageError } from '../../emu/hv/storage/block-image.ts';
import { Qcow2Image, createQcow2 } from '../../emu/hv/storage/qcow2.ts';
import { openImage } from '../../emu/hv/storage/open.ts';

const dir = mkdtempSync(join(tmpdir(), 'hvlab-qcow2-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const path = (name: string) => join(dir, name);
const KiB = 1024, MiB = 1024 * KiB;

function qemuImg(...args: string[]): string { return execFileSync('qemu-img', args, { encoding: 'utf8' }); }
function qemuIo(image: string, format: string, command: string): void { execFileSync('qemu-io', ['-f', format, '-c', command, image]); }
function check(image: string): { status: number | null; output: string } {
  const result = spawnSync('qemu-img', ['check', image], { encoding: 'utf8' });
  return { status: result.status, output: result.stdout + result.stderr };
}
function flattened(image: string): Uint8Array {
  const out = path(`flat-${Math.random().toString(36).slice(2)}.raw`);
  qemuImg('convert', '-O', 'raw', image, out);
  const bytes = new Uint8Array(readFileSync(out));
  rmSync(out);
  return bytes;
}
function random(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => { state ^= state << 13; state >>>= 0; state ^= state >>> 17; state ^= state << 5; state >>>= 0; return state; };
}
function randomBytes(next: () => number, length: number): Uint8Array {
  return Uint8Array.from({ length }, () => next() & 0xff);
}
function expectErrorMatching(fn: () => unknown, pattern: RegExp): void {
  let caught: unknown;
  try { fn(); } catch (e) { caught = e; }
  expect(caught).toBeInstanceOf(ImageError);
  expect((caught as Error).message).toMatch(pattern);
}

/** Applies random writes / writeZeroes / discards to `image` and to a byte model of the disk. */
function exercise(image: Qcow2Image, model: Uint8Array, seed: number, operations: number): void {
  const next = random(seed);
  const sectors = image.size / 512, cluster = image.clusterSize;
  for (let op = 0; op < operations; op++) {
    const offset = (next() % sectors) * 512;
    const length = Math.min(image.size - offset, (1 + (next() % ((3 * cluster) / 512))) * 512);
    const choice = next() % 10;
    if (choice < 6) {
      const data = randomBytes(next, length);
      image.write(offset, data);
      model.set(data, offset);
    } else if (choice < 8) {
      image.writeZeroes(offset, length);
      model.fill(0, offset, offset + length);
    } else {
      image.discard(offset, length); // whole clusters read as zeros afterwards, partial ones are kept
      const first = Math.ceil(offset / cluster) * cluster, end = Math.floor((offset + length) / cluster) * cluster;
      if (end > first) model.fill(0, first, end);
    }
  }
}

describe('reading images written by QEMU', () => {
  it('reads data qemu-io wrote, zeros elsewhere', () => {
    const image = path('qemu-written.qcow2');
    qemuImg('create', '-f', 'qcow2', image, '4M');
    qemuIo(image, 'qcow2', 'write -P 0xab 0 64k');
    qemuIo(image, 'qcow2', 'write -P 0xcd 1049088 4k'); // 1 MiB + 512: straddles nothing, unaligned to the cluster
    qemuIo(image, 'qcow2', 'write -z 0 4k');            // zero the first 4 KiB (partial cluster: written as data)
    const disk = openImage(image, { readOnly: true });
    expect(disk.format).toBe('qcow2');
    expect(disk.size).toBe(4 * MiB);
    const head = disk.read(0, 128 * KiB);
    expect(head.subarray(0, 4 * KiB).every((b) => b === 0)).toBe(true);
    expect(head.subarray(4 * KiB, 64 * KiB).every((b) => b === 0xab)).toBe(true);
    expect(head.subarray(64 * KiB).every((b) => b === 0)).toBe(true);
    const mid = disk.read(MiB, 8 * KiB);
    expect(mid.subarray(0, 512).every((b) => b === 0)).toBe(true);
    expect(mid.subarray(512, 512 + 4 * KiB).every((b) => b === 0xcd)).toBe(true);
    expect(mid[512 + 4 * KiB]).toBe(0);
    disk.close();
  });

  it('reads zero-flag clusters as zeros over a backing file', () => {
    const base = path('zero-base.raw');
    writeFileSync(base, new Uint8Array(MiB).fill(0x5a));
    const overlay = path('zero-overlay.qcow2');
    qemuImg('create', '-f', 'qcow2', '-b', 'zero-base.raw', '-F', 'raw', overlay, '1M');
    qemuIo(overlay, 'qcow2', 'write -z 64k 64k'); // a whole cluster: QEMU sets the v3 zero flag
    qemuIo(overlay, 'qcow2', 'write -P 0x11 512 512');
    const disk = openImage(overlay);
    expect(disk.backing?.format).toBe('raw');
    const bytes = disk.read(0, 192 * KiB);
    expect(bytes[0]).toBe(0x5a);
    expect(bytes.subarray(512, 1024).every((b) => b === 0x11)).toBe(true);
    expect(bytes.subarray(1024, 64 * KiB).every((b) => b === 0x5a)).toBe(true);
    expect(bytes.subarray(64 * KiB, 128 * KiB).every((b) => b === 0)).toBe(true);
    expect(bytes.subarray(128 * KiB).every((b) => b === 0x5a)).toBe(true);
    disk.close();
  });

  it('reads compressed clusters (qemu-img convert -c) and writes over them', () => {
    const source = path('compressible.raw');
    const content = new Uint8Array(2 * MiB);
    for (let i = 0; i < content.length; i++) content[i] = (i >> 9) % 7 === 0 ? 0 : (i * 31 + (i >> 12)) & 0x3f;
    writeFileSync(source, content);
    const compressed = path('compressed.qcow2');
    qemuImg('convert', '-c', '-O', 'qcow2', '-o', 'cluster_size=4096', source, compressed);
    const disk = openImage(compressed) as Qcow2Image;
    expect(Buffer.from(disk.read(0, content.length)).equals(Buffer.from(content))).toBe(true);
    // A partial write decompresses, rewrites and frees the compressed cluster's references.
    const patch = new Uint8Array(1024).fill(0xee);
    disk.write(8 * KiB + 512, patch);
    content.set(patch, 8 * KiB + 512);
    disk.discard(16 * KiB, 8 * KiB);
    content.fill(0, 16 * KiB, 24 * KiB);
    disk.close();
    expect(check(compressed).status).toBe(0);
    expect(Buffer.from(flattened(compressed)).equals(Buffer.from(content))).toBe(true);
  });

  it('reads a version 2 (compat=0.10) image and writes it consistently', () => {
    const image = path('v2.qcow2');
    qemuImg('create', '-f', 'qcow2', '-o', 'compat=0.10,cluster_size=4096', image, '2M');
    qemuIo(image, 'qcow2', 'write -P 0x42 8k 12k');
    const disk = Qcow2Image.open(image);
    expect(disk.header.version).toBe(2);
    const model = new Uint8Array(2 * MiB);
    model.fill(0x42, 8 * KiB, 20 * KiB);
    expect(Buffer.from(disk.read(0, model.length)).equals(Buffer.from(model))).toBe(true);
    exercise(disk, model, 7, 200);
    disk.close();
    expect(check(image).status).toBe(0);
    expect(Buffer.from(flattened(image)).equals(Buffer.from(model))).toBe(true);
  });
});

describe('images written by hvlab pass qemu-img check', () => {
  it('createQcow2 produces an image qemu-img accepts', () => {
    const image = path('created.qcow2');
    createQcow2(image, 3 * MiB + 512, { clusterBits: 12 });
    const info = JSON.parse(qemuImg('info', '--output=json', image));
    expect(info.format).toBe('qcow2');
    expect(info['virtual-size']).toBe(3 * MiB + 512);
    expect(info['cluster-size']).toBe(4096);
    expect(info['format-specific'].data.compat).toBe('1.1');
    expect(check(image).status).toBe(0);
  });

  it('random writes, zeroes and discards match qemu-img convert', () => {
    for (const clusterBits of [9, 12, 16]) {
      const image = path(`random-${clusterBits}.qcow2`);
      createQcow2(image, 3 * MiB, { clusterBits });
      const disk = Qcow2Image.open(image);
      const model = new Uint8Array(disk.size);
      exercise(disk, model, clusterBits, 300);
      expect(Buffer.from(disk.read(0, disk.size)).equals(Buffer.from(model))).toBe(true);
      disk.flush();
      disk.close();
      const result = check(image);
      expect(result.output).not.toMatch(/ERROR|Leaked/);
      expect(result.status).toBe(0);
      expect(Buffer.from(flattened(image)).equals(Buffer.from(model))).toBe(true);
    }
  });

  it('grows the refcount table when the file outgrows it (512-byte clusters)', () => {
    // One 512-byte refcount table cluster lists 64 blocks of 256 refcounts: 8 MiB of file.
    const image = path('grow.qcow2');
    createQcow2(image, 10 * MiB, { clusterBits: 9 });
    const disk = Qcow2Image.open(image);
    const firstTable = disk.header.refcountTableOffset;
    const model = new Uint8Array(disk.size);
    const next = random(99);
    for (let offset = 0; offset < disk.size; offset += 64 * KiB) {
      const data = randomBytes(next, 64 * KiB);
      disk.write(offset, data);
      model.set(data, offset);
    }
    expect(disk.header.refcountTableOffset).not.toBe(firstTable);
    expect(disk.header.refcountTableClusters).toBeGreaterThan(1);
    disk.close();
    expect(check(image).status).toBe(0);
    expect(Buffer.from(flattened(image)).equals(Buffer.from(model))).toBe(true);
  });

  it('writes over a raw backing file (copy-on-write of partial clusters)', () => {
    const base = path('cow-base.raw');
    const next = random(5);
    const baseContent = randomBytes(next, 2 * MiB);
    writeFileSync(base, baseContent);
    for (const creator of ['hvlab', 'qemu-img']) {
      const overlay = path(`cow-${creator}.qcow2`);
      if (creator === 'hvlab') createQcow2(overlay, 2 * MiB, { backingFile: 'cow-base.raw', backingFormat: 'raw', clusterBits: 12 });
      else qemuImg('create', '-f', 'qcow2', '-b', 'cow-base.raw', '-F', 'raw', '-o', 'cluster_size=4096', overlay, '2M');
      const disk = openImage(overlay) as Qcow2Image;
      const model = baseContent.slice();
      disk.write(4096 + 512, new Uint8Array(512).fill(1)); // partial: the rest of the cluster comes from base
      model.fill(1, 4096 + 512, 4096 + 1024);
      exercise(disk, model, 11, 300);
      expect(Buffer.from(disk.read(0, disk.size)).equals(Buffer.from(model))).toBe(true);
      disk.close();
      expect(check(overlay).status).toBe(0);
      expect(Buffer.from(flattened(overlay)).equals(Buffer.from(model))).toBe(true);
      expect(Buffer.from(readFileSync(base)).equals(Buffer.from(baseContent))).toBe(true); // backing untouched
    }
  });

  it('commit writes the overlay into its qcow2 backing image, as qemu-img commit does', () => {
    const base = path('commit-base.qcow2');
    createQcow2(base, 2 * MiB, { clusterBits: 12 });
    const baseDisk = Qcow2Image.open(base);
    baseDisk.write(0, new Uint8Array(64 * KiB).fill(0x77));
    baseDisk.close();
    const overlay = path('commit-overlay.qcow2');
    createQcow2(overlay, 2 * MiB, { backingFile: 'commit-base.qcow2', backingFormat: 'qcow2', clusterBits: 12 });
    const disk = openImage(overlay, { backingWritable: true }) as Qcow2Image;
    const model = new Uint8Array(2 * MiB).fill(0x77, 0, 64 * KiB);
    exercise(disk, model, 3, 150);
    // The same overlay committed by qemu-img is the reference (flushed first: metadata is written back on flush).
    disk.flush();
    const baseCopy = path('commit-base-copy.qcow2'), overlayCopy = path('commit-overlay-copy.qcow2');
    writeFileSync(baseCopy, readFileSync(base));
    writeFileSync(overlayCopy, readFileSync(overlay));
    qemuImg('rebase', '-u', '-b', 'commit-base-copy.qcow2', '-F', 'qcow2', overlayCopy);
    qemuImg('commit', '-d', overlayCopy);
    disk.commit();
    disk.close();
    expect(check(base).status).toBe(0);
    const committed = flattened(base);
    expect(Buffer.from(committed).equals(Buffer.from(model))).toBe(true);
    expect(Buffer.from(committed).equals(Buffer.from(flattened(baseCopy)))).toBe(true);
  });
});

describe('bad images raise ImageError', () => {
  function patchedImage(name: string, patch: (view: DataView) => void): string {
    const image = path(name);
    qemuImg('create', '-f', 'qcow2', image, '1M');
    const bytes = new Uint8Array(readFileSync(image));
    patch(new DataView(bytes.buffer));
    writeFileSync(image, bytes);
    return image;
  }

  it('bad magic', () => {
    const image = patchedImage('magic.qcow2', (v) => v.setUint32(0, 0x514649fa));
    expectErrorMatching(() => Qcow2Image.open(image), /bad magic/);
    expectErrorMatching(() => openImage(image, { format: 'qcow2' }), /bad magic/);
  });

  it('unsupported version, refcount order, encryption and incompatible features', () => {
    expectErrorMatching(() => Qcow2Image.open(patchedImage('v4.qcow2', (v) => v.setUint32(4, 4))), /version 4/);
    expectErrorMatching(() => Qcow2Image.open(patchedImage('order.qcow2', (v) => v.setUint32(96, 5))), /refcount_order 5/);
    expectErrorMatching(() => Qcow2Image.open(patchedImage('crypt.qcow2', (v) => v.setUint32(32, 1))), /encrypt/);
    // Bit 4 is "extended L2 entries"; qemu-img's feature name table names it.
    expectErrorMatching(() => Qcow2Image.open(patchedImage('extl2.qcow2', (v) => v.setBigUint64(72, 1n << 4n))), /extended L2/);
    expectErrorMatching(() => Qcow2Image.open(patchedImage('bit40.qcow2', (v) => v.setBigUint64(72, 1n << 40n))), /bit 40/);
  });

  it('a corrupt or dirty image opens read-only but not for writing', () => {
    const corrupt = patchedImage('corrupt.qcow2', (v) => v.setBigUint64(72, 2n));
    expectErrorMatching(() => Qcow2Image.open(corrupt), /corrupt/);
    Qcow2Image.open(corrupt, { readOnly: true }).close();
    const dirty = patchedImage('dirty.qcow2', (v) => v.setBigUint64(72, 1n));
    expectErrorMatching(() => Qcow2Image.open(dirty), /dirty/);
  });

  it('truncated files', () => {
    const image = path('truncated.qcow2');
    qemuImg('create', '-f', 'qcow2', image, '1M');
    truncateSync(image, 40);
    expectErrorMatching(() => Qcow2Image.open(image), /truncated/);
    const short = path('short.qcow2');
    qemuImg('create', '-f', 'qcow2', short, '1M');
    truncateSync(short, 65536 * 2); // header and refcount table survive, the refcount block and L1 table do not
    expectErrorMatching(() => Qcow2Image.open(short), /truncated/);
  });

  it('missing backing file and backing loops', () => {
    const overlay = path('orphan.qcow2');
    qemuImg('create', '-f', 'qcow2', '-b', 'gone.raw', '-F', 'raw', '-u', overlay, '1M');
    expectErrorMatching(() => openImage(overlay), /gone\.raw/);
    const a = path('loop-a.qcow2'), b = path('loop-b.qcow2');
    qemuImg('create', '-f', 'qcow2', a, '1M');
    qemuImg('create', '-f', 'qcow2', '-b', 'loop-a.qcow2', '-F', 'qcow2', b, '1M');
    qemuImg('rebase', '-u', '-b', 'loop-b.qcow2', '-F', 'qcow2', a);
    expectErrorMatching(() => openImage(b), /loop/);
  });

  it('misaligned requests and writes to read-only images are refused', () => {
    const image = path('align.qcow2');
    createQcow2(image, MiB);
    const disk = Qcow2Image.open(image, { readOnly: true });
    expect(() => disk.read(1, 512)).toThrow(/multiples of 512/);
    expect(() => disk.read(0, 100)).toThrow(/multiples of 512/);
    expect(() => disk.read(MiB, 512)).toThrow(/beyond/);
    expectErrorMatching(() => disk.write(0, new Uint8Array(512)), /read-only/);
    disk.close();
  });

  it('a corrupt L2 pointer past the end of the file is reported as truncated', () => {
    const image = path('l2-past-eof.qcow2');
    qemuImg('create', '-f', 'qcow2', image, '1M');
    qemuIo(image, 'qcow2', 'write -P 1 0 4k');
    const info = JSON.parse(qemuImg('info', '--output=json', image));
    expect(info['cluster-size']).toBe(65536);
    const bytes = new Uint8Array(readFileSync(image));
    const view = new DataView(bytes.buffer);
    const l1Offset = Number(view.getBigUint64(40));
    const fd = openSync(image, 'r+');
    const entry = new DataView(new ArrayBuffer(8));
    entry.setBigUint64(0, (1n << 63n) | BigInt(1000 * 65536));
    writeSync(fd, new Uint8Array(entry.buffer), 0, 8, l1Offset);
    closeSync(fd);
    const disk = Qcow2Image.open(image, { readOnly: true });
    expectErrorMatching(() => disk.read(0, 512), /truncated.*L2 table/);
    disk.close();
  });
});
