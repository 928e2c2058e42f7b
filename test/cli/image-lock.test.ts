// Image locking with QEMU's rules and wording: a second writable user of an image is refused, and
// so is a reader of an image someone writes; readers share. Within one process (the registry), across
// processes (the lock records), and through `hvlab boot --drive`.
import { afterEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lockImage, ImageLockError, type ImageLock } from '../../emu/hv/storage/image-lock.ts';
import { createQcow2 } from '../../emu/hv/storage/qcow2.ts';
import { REPO_ROOT, lines, runCli } from './run-cli.ts';

const WRITE_REFUSED = (f: string) => `Failed to get "write" lock. Is another process using the image [${f}]?`;
const READ_REFUSED = (f: string) => `Failed to get shared "write" lock. Is another process using the image [${f}]?`;

const held: ImageLock[] = [];
const dirs: string[] = [];
afterEach(() => {
  for (const l of held.splice(0)) l.release();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function image(name = 'disk.qcow2'): string {
  const dir = mkdtempSync(join(tmpdir(), 'hvlab-lock-'));
  dirs.push(dir);
  const file = join(dir, name);
  createQcow2(file, 16 << 20);
  return file;
}
const lock = (file: string, mode: 'read' | 'write') => { const l = lockImage(file, mode); held.push(l); return l; };

describe('lockImage (one process)', () => {
  it('refuses a second writer, and a reader of a written image, in QEMU\'s words', () => {
    const f = image();
    lock(f, 'write');
    expect(() => lockImage(f, 'write')).toThrow(new ImageLockError(f, 'write'));
    expect(() => lockImage(f, 'write')).toThrow(WRITE_REFUSED(f));
    expect(() => lockImage(f, 'read')).toThrow(READ_REFUSED(f));
  });

  it('lets readers share, refuses a writer among them, and frees the image on release', () => {
    const f = image();
    const a = lock(f, 'read');
    const b = lock(f, 'read');
    expect(() => lockImage(f, 'write')).toThrow(WRITE_REFUSED(f));
    a.release(); b.release();
    lock(f, 'write').release();
  });

  it('knows the same image under another name', () => {
    const f = image();
    lock(f, 'write');
    const other = join(f, '..', '.', 'disk.qcow2');
    expect(() => lockImage(other, 'write')).toThrow(WRITE_REFUSED(other));
  });

  it('ignores and removes the record of a process that no longer runs (killed with SIGKILL)', () => {
    const f = image();
    const stale = `${f}.hvlab-lock.2147483646`;
    writeFileSync(stale, 'write');
    lock(f, 'write');
    expect(existsSync(stale)).toBe(false);
  });
});

/** A process that holds `file` locked in `mode` until it is killed; resolves once it holds it. */
function holder(file: string, mode: 'read' | 'write') {
  const code = `import('${join(REPO_ROOT, 'emu/hv/storage/image-lock.ts')}').then((m) => { m.lockImage(${JSON.stringify(file)}, '${mode}'); console.log('locked'); setInterval(() => {}, 1000); });`;
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', code], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (c: Buffer) => { if (c.toString().includes('locked')) resolve(); });
    child.on('exit', (s) => reject(new Error(`the lock holder exited (${s})`)));
  });
  return { child, ready };
}

describe('image locks across processes', () => {
  it('a writer in another process: a second writer and a reader are refused; after a SIGKILL the image is free', async () => {
    const f = image();
    const h = holder(f, 'write');
    try {
      await h.ready;
      expect(() => lockImage(f, 'write')).toThrow(WRITE_REFUSED(f));
      expect(() => lockImage(f, 'read')).toThrow(READ_REFUSED(f));
    } finally {
      h.child.kill('SIGKILL');
      await new Promise((resolve) => h.child.once('close', resolve));
    }
    lock(f, 'write');
  });

  it('hvlab boot refuses a drive another process writes, in one line, before booting', async () => {
    const f = image();
    const h = holder(f, 'write');
    try {
      await h.ready;
      const r = await runCli(['boot', '--drive', `file=${f}`], { timeoutMs: 60_000 });
      expect(r.status).not.toBe(0);
      expect(lines(r.stderr)).toEqual([`hvlab boot: ${WRITE_REFUSED(f)}`]);
      const ro = await runCli(['boot', '--drive', `file=${f},readonly=on`], { timeoutMs: 60_000 });
      expect(lines(ro.stderr)).toEqual([`hvlab boot: ${READ_REFUSED(f)}`]);
    } finally {
      h.child.kill('SIGKILL');
      await new Promise((resolve) => h.child.once('close', resolve));
    }
  });
});

describe('hvlab img commit', () => {
  it('refuses to write into a backing file a running guest holds', async () => {
    const overlay = image('overlay.qcow2'), base = join(overlay, '..', 'base.raw');
    writeFileSync(base, Buffer.alloc(1 << 20));
    rmSync(overlay);
    expect((await runCli(['img', 'create', '-f', 'qcow2', '-b', 'base.raw', '-F', 'raw', overlay])).status).toBe(0);
    const h = holder(base, 'read');
    try {
      await h.ready;
      const r = await runCli(['img', 'commit', overlay]);
      expect(r.status).not.toBe(0);
      expect(lines(r.stderr)).toEqual([`hvlab img commit: ${WRITE_REFUSED(base)}`]);
    } finally {
      h.child.kill('SIGKILL');
      await new Promise((resolve) => h.child.once('close', resolve));
    }
    expect((await runCli(['img', 'commit', overlay])).stdout).toMatch(/Image committed/);
  });
});

describe('hvlab boot --drive, the same image twice', () => {
  it('refuses the second writable attach with QEMU\'s wording, and leaves no lock record behind', async () => {
    const f = image();
    const r = await runCli(['boot', '--drive', `file=${f}`, '--drive', `file=${f}`], { timeoutMs: 60_000 });
    expect(r.status).not.toBe(0);
    expect(lines(r.stderr)).toEqual([`hvlab boot: ${WRITE_REFUSED(f)}`]);
    expect(readdirSync(join(f, '..')).filter((n) => n.includes('.hvlab-lock.'))).toEqual([]);
  });

  it('lets two read-only attaches share it (the guest boots; the run stops at an instruction limit)', async () => {
    const f = image();
    const r = await runCli(['boot', '--drive', `file=${f},readonly=on`, '--drive', `file=${f},readonly=on`, '--max-instructions', '1000000'], { timeoutMs: 60_000 });
    expect(r.stderr).not.toMatch(/lock/);
    expect(r.stderr).toMatch(/stopped after 1000000 instructions/);
  });
});

