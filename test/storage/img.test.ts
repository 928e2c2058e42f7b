// `hvlab img` (create, info, commit) against qemu-img as the oracle: images hvlab creates pass
// `qemu-img check` and `qemu-img info` reads the same size and backing file; `hvlab img info --output
// json` prints what `qemu-img info --output json` prints; after `hvlab img commit` the base holds what
// the overlay showed (qemu-img compare) and the overlay is empty; errors are one line and exit 1.
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '../../emu/cli/main.ts';
import { humanSize, parseSize } from '../../emu/cli/img.ts';

const dir = mkdtempSync(join(tmpdir(), 'hvlab-img-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const path = (name: string) => join(dir, name);
const HVLAB = fileURLToPath(new URL('../../bin/hvlab.mjs', import.meta.url));

function qemuImg(...args: string[]): string { return execFileSync('qemu-img', args, { encoding: 'utf8' }); }
function qemuJson(...args: string[]): unknown { return JSON.parse(qemuImg(...args, '--output', 'json')); }
function status(...args: string[]): number | null { return spawnSync('qemu-img', args).status; }

// hvlab img runs in-process through the real command line (emu/cli/main.ts), its output captured.
let out: string[] = [], err: string[] = [];
beforeEach(() => {
  out = []; err = [];
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => { out.push(a.join(' ')); });
  vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => { err.push(a.join(' ')); });
});
afterEach(() => vi.restoreAllMocks());
async function hvlabImg(...args: string[]): Promise<number> { return main(['node', 'hvlab', 'img', ...args]); }

describe('hvlab img create', () => {
  it('creates qcow2 and raw images of the sizes qemu-img reads, with qemu-img\'s size suffixes', async () => {
    for (const [size, bytes] of [['64M', 64 << 20], ['1.5G', 1.5 * 2 ** 30], ['2T', 2 * 2 ** 40], ['1000', 1024], ['3k', 3072]] as const) {
      const image = path(`sized-${size}.qcow2`);
      expect(await hvlabImg('create', '-f', 'qcow2', image, size)).toBe(0);
      expect(status('check', image), size).toBe(0);
      expect(qemuJson('info', image)).toMatchObject({ format: 'qcow2', 'virtual-size': bytes, 'cluster-size': 65536 });
    }
    expect(await hvlabImg('create', '-f', 'raw', path('plain.raw'), '10M')).toBe(0);
    expect(statSync(path('plain.raw')).size).toBe(10 << 20);
    expect(qemuJson('info', '-f', 'raw', path('plain.raw'))).toMatchObject({ format: 'raw', 'virtual-size': 10 << 20 });
    expect(await hvlabImg('create', '-f', 'qcow2', '-o', 'cluster_size=4k', path('small-clusters.qcow2'), '1M')).toBe(0);
    expect(qemuJson('info', path('small-clusters.qcow2'))).toMatchObject({ 'cluster-size': 4096 });
    expect(status('check', path('small-clusters.qcow2'))).toBe(0);
    expect(out[0]).toMatch(/^Formatting '.*sized-64M\.qcow2', fmt=qcow2 cluster_size=65536 .*size=67108864/);
  });

  it('creates an overlay whose size defaults to the backing file\'s (raw and qcow2 bases, relative names)', async () => {
    qemuImg('create', '-q', '-f', 'raw', path('base.raw'), '3M');
    expect(await hvlabImg('create', '-f', 'qcow2', '-b', 'base.raw', '-F', 'raw', path('over-raw.qcow2'))).toBe(0);
    expect(status('check', path('over-raw.qcow2'))).toBe(0);
    expect(qemuJson('info', path('over-raw.qcow2'))).toMatchObject({
      'virtual-size': 3 << 20, 'backing-filename': 'base.raw', 'backing-filename-format': 'raw', 'full-backing-filename': path('base.raw'),
    });
    // A second level over the qcow2 overlay, with an explicit (larger) size.
    expect(await hvlabImg('create', '-f', 'qcow2', '-b', 'over-raw.qcow2', '-F', 'qcow2', path('over-qcow2.qcow2'), '5M')).toBe(0);
    expect(status('check', path('over-qcow2.qcow2'))).toBe(0);
    expect(qemuJson('info', path('over-qcow2.qcow2'))).toMatchObject({ 'virtual-size': 5 << 20, 'backing-filename': 'over-raw.qcow2', 'backing-filename-format': 'qcow2' });
    // qemu-img reads the chain hvlab made: the disk reads as the base (and zeros past its end).
    expect(status('compare', '-f', 'qcow2', '-F', 'raw', path('over-qcow2.qcow2'), path('base.raw'))).toBe(0);
    expect(status('compare', '-s', '-f', 'qcow2', '-F', 'raw', path('over-qcow2.qcow2'), path('base.raw'))).toBe(1); // strict: the sizes differ
  });
});

describe('hvlab img info', () => {
  function images(): string[] {
    qemuImg('create', '-q', '-f', 'raw', path('i-base.raw'), '2M');
    qemuImg('create', '-q', '-f', 'qcow2', '-b', 'i-base.raw', '-F', 'raw', path('i-mid.qcow2'));
    qemuImg('create', '-q', '-f', 'qcow2', '-o', 'cluster_size=4096', '-b', 'i-mid.qcow2', '-F', 'qcow2', path('i-top.qcow2'), '4M');
    execFileSync('qemu-io', ['-c', 'write -P 0x11 0 300k', path('i-top.qcow2')]);
    qemuImg('create', '-q', '-f', 'qcow2', '-o', 'compat=0.10', path('i-v2.qcow2'), '1G');
    qemuImg('create', '-q', '-f', 'qcow2', '-o', 'lazy_refcounts=on', path('i-lazy.qcow2'), '1M');
    return ['i-base.raw', 'i-mid.qcow2', 'i-top.qcow2', 'i-v2.qcow2', 'i-lazy.qcow2'].map(path);
  }

  it('--output json prints the fields qemu-img prints, with the same values', async () => {
    for (const image of images()) {
      expect(await hvlabImg('info', '--output', 'json', image)).toBe(0);
      expect(JSON.parse(out.pop()!), image).toEqual(qemuJson('info', image));
      expect(await hvlabImg('info', '--backing-chain', '--output', 'json', image)).toBe(0);
      expect(JSON.parse(out.pop()!), image).toEqual(qemuJson('info', '--backing-chain', image));
    }
  });

  it('the human-readable output is qemu-img\'s', async () => {
    for (const image of images()) {
      expect(await hvlabImg('info', '--backing-chain', image)).toBe(0);
      expect(out.pop(), image).toBe(qemuImg('info', '--backing-chain', image).trimEnd());
    }
  });

  it('reports the dirty bit (an image left open by a process using lazy refcounts)', async () => {
    const image = path('dirty.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', image, '1M');
    const bytes = readFileSync(image);
    bytes[79] |= 1; // incompatible_features bit 0 (spec: "Dirty bit")
    writeFileSync(image, bytes);
    expect(await hvlabImg('info', '--output', 'json', image)).toBe(0);
    const info = JSON.parse(out.pop()!);
    expect(info['dirty-flag']).toBe(true);
    expect(info).toEqual(qemuJson('info', image));
  });

  it('sizes are printed as QEMU\'s size_to_str does', () => {
    expect([0, 999, 1000, 1536, 200704, 2 ** 30, 1.5 * 2 ** 40].map(humanSize)).toEqual(['0 B', '999 B', '0.977 KiB', '1.5 KiB', '196 KiB', '1 GiB', '1.5 TiB']);
  });
});

describe('hvlab img commit', () => {
  /** A raw base with data, a qcow2 overlay written partly by qemu-io (data, zeroes, discards). */
  function chain(name: string, baseSize: string, overlaySize?: string): { base: string; overlay: string } {
    const base = path(`${name}-base.raw`), overlay = path(`${name}.qcow2`);
    qemuImg('create', '-q', '-f', 'raw', base, baseSize);
    execFileSync('qemu-io', ['-f', 'raw', '-c', 'write -P 0x5a 0 1M', base]);
    qemuImg('create', '-q', '-f', 'qcow2', '-o', 'cluster_size=4096', '-b', `${name}-base.raw`, '-F', 'raw', overlay, ...(overlaySize ? [overlaySize] : []));
    for (const command of ['write -P 0xa1 4k 12k', 'write -P 0xb2 700k 130k', 'write -z 64k 8k', 'write -P 0xc3 1020k 8k', 'discard 708k 8k'])
      execFileSync('qemu-io', ['-f', 'qcow2', '-c', command, overlay]);
    return { base, overlay };
  }

  it('writes the overlay into its base and empties the overlay, as qemu-img commit does', async () => {
    const { base, overlay } = chain('c1', '2M');
    const before = path('c1-before.raw');
    qemuImg('convert', '-O', 'raw', overlay, before);
    expect(status('compare', '-f', 'raw', '-F', 'raw', base, before)).toBe(1); // the commit has something to do
    // The same chain committed by qemu-img, for the image files themselves.
    copyFileSync(base, path('c1q-base.raw'));
    copyFileSync(overlay, path('c1q.qcow2'));
    qemuImg('rebase', '-u', '-f', 'qcow2', '-b', 'c1q-base.raw', '-F', 'raw', path('c1q.qcow2'));
    qemuImg('commit', '-q', path('c1q.qcow2'));

    expect(await hvlabImg('commit', overlay)).toBe(0);
    expect(out).toEqual(['Image committed.']);
    expect(status('compare', '-f', 'raw', '-F', 'raw', base, before)).toBe(0);
    expect(Buffer.compare(readFileSync(base), readFileSync(path('c1q-base.raw')))).toBe(0);
    expect(status('check', overlay)).toBe(0);
    // Emptied: nothing is allocated in the overlay (depth 0) any more, and it still reads as the base.
    const map = JSON.parse(qemuImg('map', '--output', 'json', overlay)) as { depth: number }[];
    expect(map.every((extent) => extent.depth > 0)).toBe(true);
    expect(status('compare', '-F', 'raw', overlay, before)).toBe(0);
  });

  it('-d keeps the overlay; a raw base smaller than the overlay is grown first', async () => {
    const { base, overlay } = chain('c2', '1M', '2M');
    const before = path('c2-before.raw');
    qemuImg('convert', '-O', 'raw', overlay, before);
    const overlayBytes = readFileSync(overlay);
    expect(await hvlabImg('commit', '-d', overlay)).toBe(0);
    expect(statSync(base).size).toBe(2 << 20);
    expect(status('compare', '-f', 'raw', '-F', 'raw', base, before)).toBe(0);
    expect(Buffer.compare(readFileSync(overlay), overlayBytes)).toBe(0);
  });
});

describe('errors are one line on stderr and exit status 1', () => {
  const cases: [string, string[], RegExp][] = [
    ['missing file', ['info', path('nope.qcow2')], /nope\.qcow2: image file does not exist/],
    ['corrupt image', ['info', path('corrupt.qcow2')], /unsupported qcow2 version 7/],
    ['missing backing file', ['commit', path('orphan.qcow2')], /backing file '.*gone\.raw' does not exist|gone\.raw: image file does not exist/],
    ['missing backing file (create)', ['create', '-f', 'qcow2', '-b', 'gone.raw', '-F', 'raw', path('x.qcow2')], /could not open backing file/],
    ['bad size', ['create', '-f', 'qcow2', path('x.qcow2'), '12Q'], /invalid size '12Q'/],
    ['no size', ['create', '-f', 'qcow2', path('x.qcow2')], /needs a size/],
    ['raw with a backing file', ['create', '-f', 'raw', '-b', 'base.raw', '-F', 'raw', path('x.raw')], /backing file not supported for file format 'raw'/],
    ['commit without a backing file', ['commit', path('plain.raw')], /does not have a backing file/],
  ];

  it.each(cases)('%s', async (_name, args, message) => {
    qemuImg('create', '-q', '-f', 'qcow2', path('corrupt.qcow2'), '1M');
    const bytes = readFileSync(path('corrupt.qcow2'));
    bytes[7] = 7; // version
    writeFileSync(path('corrupt.qcow2'), bytes);
    qemuImg('create', '-q', '-f', 'raw', path('gone.raw'), '1M');
    qemuImg('create', '-q', '-f', 'qcow2', '-b', 'gone.raw', '-F', 'raw', path('orphan.qcow2'));
    rmSync(path('gone.raw'));
    qemuImg('create', '-q', '-f', 'raw', path('plain.raw'), '1M');
    expect(await hvlabImg(...args)).toBe(1);
    expect(err).toHaveLength(1);
    expect(err[0]).toMatch(message);
    expect(err[0]).toMatch(/^hvlab img \w+: /);
    expect(err[0]).not.toMatch(/\n|    at /);
  });

  it('through bin/hvlab.mjs: exit status 1, a single line, no stack trace', () => {
    const run = spawnSync(process.execPath, [HVLAB, 'img', 'info', path('nope.qcow2')], { encoding: 'utf8' });
    expect(run.status).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr.trimEnd().split('\n')).toEqual([`hvlab img info: ${path('nope.qcow2')}: image file does not exist`]);
  });

  it('parseSize follows qemu_strtosz', () => {
    expect(['0', '512', '1k', '1K', '2M', '1.5G', '1T', '1b'].map(parseSize)).toEqual([0, 512, 1024, 1024, 2 << 20, 1.5 * 2 ** 30, 2 ** 40, 1]);
    for (const bad of ['', '-1', '1.5', 'k', '1x', '1 MiB', '99999999E']) expect(() => parseSize(bad), bad).toThrow();
  });
});
