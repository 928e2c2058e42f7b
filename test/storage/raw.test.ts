// Raw images: the file's bytes are the disk's bytes (checked against files QEMU's tools write and read).
import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImageError } from '../../emu/hv/storage/block-image.ts';
import { RawImage } from '../../emu/hv/storage/raw.ts';
import { openImage } from '../../emu/hv/storage/open.ts';

const dir = mkdtempSync(join(tmpdir(), 'hvlab-raw-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const path = (name: string) => join(dir, name);
const KiB = 1024, MiB = 1024 * KiB;

describe('RawImage', () => {
  it('reads what qemu-io wrote into a sparse file; holes read as zeros', () => {
    const image = path('disk.raw');
    execFileSync('qemu-img', ['create', '-f', 'raw', image, '2M']);
    execFileSync('qemu-io', ['-f', 'raw', '-c', 'write -P 0xab 1536 4k', image]);
    const disk = openImage(image, { readOnly: true });
    expect(disk.format).toBe('raw');
    expect(disk.size).toBe(2 * MiB);
    expect(disk.backing).toBeNull();
    const bytes = disk.read(1024, 8 * KiB);
    expect(bytes.subarray(0, 512).every((b) => b === 0)).toBe(true);
    expect(bytes.subarray(512, 512 + 4 * KiB).every((b) => b === 0xab)).toBe(true);
    expect(bytes.subarray(512 + 4 * KiB).every((b) => b === 0)).toBe(true);
    disk.close();
  });

  it('writes, writeZeroes and discard land in the file at the same offsets', () => {
    const image = path('rw.raw');
    writeFileSync(image, new Uint8Array(MiB).fill(0x33));
    const disk = RawImage.open(image);
    disk.write(4096, new Uint8Array(1024).fill(0x44));
    disk.writeZeroes(8192, 512);
    disk.discard(MiB - 1024, 1024);
    disk.flush();
    disk.close();
    const file = readFileSync(image);
    expect(file.length).toBe(MiB);
    expect(file[4095]).toBe(0x33);
    expect(file.subarray(4096, 5120).every((b) => b === 0x44)).toBe(true);
    expect(file[5120]).toBe(0x33);
    expect(file.subarray(8192, 8704).every((b) => b === 0)).toBe(true);
    expect(file[8704]).toBe(0x33);
    expect(file.subarray(MiB - 1024).every((b) => b === 0)).toBe(true);
    // QEMU reads the same bytes back.
    const out = execFileSync('qemu-io', ['-f', 'raw', '-c', 'read -P 0x44 4096 1024', image], { encoding: 'utf8' });
    expect(out).not.toMatch(/Pattern verification failed/);
  });

  it('rounds a file size up to whole sectors, the tail reading as zeros', () => {
    const image = path('odd.raw');
    writeFileSync(image, new Uint8Array(1000).fill(7));
    const disk = RawImage.open(image, { readOnly: true });
    expect(disk.size).toBe(1024);
    const bytes = disk.read(512, 512);
    expect(bytes.subarray(0, 488).every((b) => b === 7)).toBe(true);
    expect(bytes.subarray(488).every((b) => b === 0)).toBe(true);
    disk.close();
  });

  it('a raw image qemu-img converted from qcow2 holds the same bytes', () => {
    const qcow2 = path('src.qcow2'), raw = path('converted.raw');
    execFileSync('qemu-img', ['create', '-f', 'qcow2', qcow2, '1M']);
    execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x5c 64k 64k', qcow2]);
    execFileSync('qemu-img', ['convert', '-O', 'raw', qcow2, raw]);
    expect(statSync(raw).size).toBe(MiB);
    const disk = openImage(raw);
    expect(disk.format).toBe('raw');
    expect(disk.read(64 * KiB, 64 * KiB).every((b) => b === 0x5c)).toBe(true);
    expect(disk.read(0, 64 * KiB).every((b) => b === 0)).toBe(true);
    disk.close();
  });

  it('refuses misaligned, out-of-range and read-only requests, and missing files', () => {
    const image = path('checks.raw');
    writeFileSync(image, new Uint8Array(4096));
    const disk = RawImage.open(image, { readOnly: true });
    expect(() => disk.read(100, 512)).toThrow(/multiples of 512/);
    expect(() => disk.read(0, 513)).toThrow(/multiples of 512/);
    expect(() => disk.read(4096, 512)).toThrow(/beyond the image size 4096/);
    expect(() => disk.write(0, new Uint8Array(512))).toThrow(ImageError);
    expect(() => disk.writeZeroes(0, 512)).toThrow(/read-only/);
    disk.close();
    expect(() => openImage(path('nope.raw'))).toThrow(/nope\.raw.*does not exist/);
    // An explicit format wins over detection: a qcow2 file opened as raw shows its header bytes.
    const qcow2 = path('as-raw.qcow2');
    execFileSync('qemu-img', ['create', '-f', 'qcow2', qcow2, '1M']);
    const asRaw = openImage(qcow2, { format: 'raw', readOnly: true });
    expect(Array.from(asRaw.read(0, 512).subarray(0, 4))).toEqual([0x51, 0x46, 0x49, 0xfb]);
    asRaw.close();
  });
});
