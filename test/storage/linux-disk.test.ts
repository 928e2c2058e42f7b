// Issue 7's acceptance test: a qcow2 overlay made by qemu-img on a raw ext4 base; the bundled guest
// mounts it through virtio-blk, reads the base's file, writes new files, remounts and reads them back,
// and powers off. Then qemu-img (the oracle) finds the overlay consistent and holding what the guest
// wrote, and the base is byte-for-byte unchanged.
import { describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { boot } from '../../emu/cli/boot.ts';

const haveTools = ['qemu-img', 'mkfs.ext4', 'debugfs'].every((t) => spawnSync('sh', ['-c', `command -v ${t} || test -x /sbin/${t} || test -x /usr/sbin/${t}`]).status === 0);
const sbin = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0 ? tool : `/usr/sbin/${tool}`;
const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

/** A file's contents inside an ext4 image, read by e2fsprogs' debugfs (no mount needed). */
function ext4Cat(image: string, path: string): string {
  return execFileSync(sbin('debugfs'), ['-R', `cat ${path}`, image], { encoding: 'latin1', stdio: ['ignore', 'pipe', 'ignore'] });
}

describe.skipIf(!haveTools)('a disk for the bundled guest (virtio-blk, qcow2 overlay on a raw base)', () => {
  it('mounts ext4, reads the base, writes files that qemu-img then finds; qemu-img check passes; the base is unchanged', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hvlab-disk-'));
    const content = join(dir, 'content');
    mkdirSync(content);
    writeFileSync(join(content, 'base.txt'), 'written by mkfs on the host\n');
    const base = join(dir, 'base.raw'), overlay = join(dir, 'overlay.qcow2');
    writeFileSync(base, Buffer.alloc(0));
    execFileSync('truncate', ['-s', '32M', base]);
    execFileSync(sbin('mkfs.ext4'), ['-q', '-F', '-d', content, base]);
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', base, '-F', 'raw', overlay]);
    const baseHash = sha256(base);

    const script = [
      'mkdir -p /mnt', 'mount -t ext4 /dev/vda /mnt', 'cat /mnt/base.txt',
      'echo "written by the guest" > /mnt/guest.txt', 'seq 1 10000 > /mnt/numbers', 'md5sum /mnt/numbers',
      'umount /mnt', 'mount -t ext4 /dev/vda /mnt', 'cat /mnt/guest.txt', 'md5sum /mnt/numbers', 'umount /mnt',
      'poweroff -f',
    ].join('; ');
    let out = '', err = '';
    const status = await boot({ memory: 128, drives: [`file=${overlay},format=qcow2`], script, timeout: 600, stats: true },
      { out: (b) => { out += Buffer.from(b).toString('latin1'); }, err: (s) => { err += s; } });
    expect(status, out.slice(-2000)).toBe(0);
    expect(out).toContain('virtio_blk virtio0: [vda] 65536 512-byte logical blocks');
    expect(out).toContain('written by mkfs on the host');
    const sums = [...out.matchAll(/^([0-9a-f]{32})  \/mnt\/numbers/gm)].map((m) => m[1]);
    expect(sums).toHaveLength(2);
    expect(sums[1]).toBe(sums[0]);
    expect(out.match(/^written by the guest/gm)).toHaveLength(1); // the cat after the remount
    // --stats: the accounting saw reads, writes and flushes of the drive.
    expect(err).toMatch(/hvlab stats: \d+ instructions/);
    expect(err).toMatch(/drive 0 \(.*overlay\.qcow2, qcow2, vda\):/);
    for (const kind of ['read', 'write', 'flush']) expect(err).toMatch(new RegExp(`\\n  ${kind} +[1-9]\\d* ops`));

    // The oracle: qemu-img finds no errors, the overlay holds the guest's files, the base is untouched.
    const check = spawnSync('qemu-img', ['check', overlay], { encoding: 'utf8' });
    expect(check.status, check.stdout + check.stderr).toBe(0);
    expect(check.stdout).toContain('No errors were found on the image.');
    const flat = join(dir, 'flat.raw');
    execFileSync('qemu-img', ['convert', '-O', 'raw', overlay, flat]);
    expect(ext4Cat(flat, '/guest.txt')).toBe('written by the guest\n');
    const numbers = ext4Cat(flat, '/numbers');
    expect(numbers).toBe(Array.from({ length: 10000 }, (_, i) => `${i + 1}\n`).join(''));
    expect(createHash('md5').update(numbers, 'latin1').digest('hex')).toBe(sums[0]);
    expect(sha256(base)).toBe(baseHash);
    expect(ext4Cat(base, '/guest.txt')).toBe('');
  }, 300_000);

  it('a missing image, a corrupt one and a missing backing file are clear errors at startup (status 2)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hvlab-disk-'));
    const corrupt = join(dir, 'corrupt.qcow2');
    writeFileSync(corrupt, Buffer.concat([Buffer.from('QFI\xfb\x00\x00\x00\x03', 'latin1'), Buffer.alloc(504, 0xee)]));
    const orphan = join(dir, 'orphan.qcow2'), gone = join(dir, 'gone.raw');
    writeFileSync(gone, Buffer.alloc(1 << 20));
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', gone, '-F', 'raw', orphan]);
    rmSync(gone);
    for (const [spec, message] of [
      [`file=${join(dir, 'absent.raw')}`, /absent\.raw/],
      [`file=${corrupt}`, /corrupt\.qcow2: /],
      [`file=${orphan}`, /gone\.raw/],
      [`file=${corrupt},format=vmdk`, /format must be raw or qcow2/],
    ] as const) {
      let err = '';
      const status = await boot({ memory: 64, drives: [spec], script: 'poweroff -f' }, { out: () => {}, err: (s) => { err += s; } });
      expect(status, spec).toBe(2);
      expect(err, spec).toMatch(/^hvlab boot: /);
      expect(err, spec).toMatch(message);
      expect(err, spec).not.toMatch(/\n\s+at /); // no stack trace
    }
  });
});
