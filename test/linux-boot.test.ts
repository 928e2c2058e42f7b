// The bundled Linux guest boots to its shell, runs a script typed at the prompt and powers off, with
// the direct MMU and with the two-dimensional (EPT) walk: what the README's main command does.
import { describe, it, expect } from 'vitest';
import { mkdtempSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { boot, BUNDLED_INITRD } from '../emu/cli/boot.ts';

/** A stock Debian kernel for cloud VMs, fetched by test/fetch-stock-kernel.sh (.ci/run does it). */
const STOCK_KERNEL = 'build/stock-kernel/vmlinuz';

async function bootScript(mmu: 'direct' | 'ept', script: string, smp = 1) {
  let out = '';
  let err = '';
  const status = await boot({ memory: 256, mmu, script, timeout: 600, smp },
    { out: (b) => { out += Buffer.from(b).toString('latin1'); }, err: (s) => { err += s; } });
  return { status, out, err };
}

describe('the bundled Linux guest', () => {
  for (const mmu of ['direct', 'ept'] as const) {
    it(`boots to a shell, runs a script and powers off (--mmu ${mmu})`, async () => {
      const r = await bootScript(mmu, 'uname -a; grep -c processor /proc/cpuinfo; echo $((6*7)); poweroff -f');
      expect(r.err).toBe('');
      expect(r.status).toBe(0);
      expect(r.out).toContain('hvlab guest ready: 6.1.192');
      expect(r.out).toMatch(/Linux \(none\) 6\.1\.192 .* x86_64 GNU\/Linux/);
      expect(r.out).toMatch(/\n1\r?\n/); // one processor
      expect(r.out).toMatch(/\n42\r?\n/);
      expect(r.out).toContain('reboot: Power down');
    });
  }

  it('brings up two vCPUs through INIT/SIPI and runs on both (--smp 2 --mmu ept)', async () => {
    const r = await bootScript('ept', 'grep -c processor /proc/cpuinfo; taskset 2 echo on-cpu1; poweroff -f', 2);
    expect(r.status).toBe(0);
    expect(r.out).toContain('smp: Brought up 1 node, 2 CPUs');
    expect(r.out).toMatch(/\n2\r?\n/);
    expect(r.out).toContain('on-cpu1');
  });

  it.skipIf(!existsSync(STOCK_KERNEL))('a stock distribution kernel boots with the same command line (console=ttyS0)', async () => {
    let out = '';
    let err = '';
    const status = await boot({ memory: 256, kernel: STOCK_KERNEL, initrd: BUNDLED_INITRD, append: 'console=ttyS0', script: 'uname -r; poweroff -f', timeout: 900 },
      { out: (b) => { out += Buffer.from(b).toString('latin1'); }, err: (s) => { err += s; } });
    expect(err).toBe('');
    expect(status).toBe(0);
    const pkg = readFileSync('build/stock-kernel/PACKAGE', 'utf8').trim().replace(/^linux-image-/, '');
    expect(out).toContain(`hvlab guest ready: ${pkg}`);
    expect(out).toContain('reboot: Power down');
  });

  it('a kernel that is not one ends with a clear error and status 2', async () => {
    let err = '';
    const junk = join(mkdtempSync(join(tmpdir(), 'hvlab-')), 'junk.bin');
    writeFileSync(junk, Buffer.alloc(4096, 0x5a));
    const status = await boot({ memory: 64, kernel: junk }, { out: () => {}, err: (s) => { err += s; } });
    expect(status).toBe(2);
    expect(err).toMatch(/hvlab boot: .*multiboot|bzImage/);
  });
});
