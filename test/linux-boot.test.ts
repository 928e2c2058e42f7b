// The bundled Linux guest boots to its shell, runs a script typed at the prompt and powers off, with
// the direct MMU, the two-dimensional (EPT) walk and shadow paging: what the README's main command
// does. A process-heavy script runs under all three MMU modes with the same output, and the MMU
// counters show what each mode paid for it.
import { describe, it, expect } from 'vitest';
import { mkdtempSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { boot, prepare, BUNDLED_INITRD, SHELL_PROMPT } from '../emu/cli/boot.ts';
import * as abi from '../wasm/abi.ts';
import { MMU_MODES, type MmuMode } from '../emu/machine/host.ts';
import { exitCounts } from '../emu/mmu/exit-cost.ts';

/** A stock Debian kernel for cloud VMs, fetched by test/fetch-stock-kernel.sh (.ci/run does it). */
const STOCK_KERNEL = 'build/stock-kernel/vmlinuz';

async function bootScript(mmu: MmuMode, script: string, smp = 1) {
  let out = '';
  let err = '';
  const status = await boot({ memory: 256, mmu, script, timeout: 600, smp },
    { out: (b) => { out += Buffer.from(b).toString('latin1'); }, err: (s) => { err += s; } });
  return { status, out, err };
}

describe('the bundled Linux guest', () => {
  for (const mmu of MMU_MODES) {
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

  it('runs a few hundred short processes with the same output under --mmu direct, ept and shadow; only shadow paging exits', () => {
    // 300 forks and execs of expr, then a pipeline of 100 more whose output is hashed.
    const script = 'i=0; while [ $i -lt 300 ]; do i=$(expr $i + 1); done; echo count $i; '
      + 'seq 1 100 | while read n; do expr $n \\* $n; done | md5sum; poweroff -f';
    const runs = MMU_MODES.map((mmu) => {
      let out = '';
      let typed = false;
      const input: number[] = [];
      const m = prepare({ memory: 256, mmu }, (b) => {
        out += String.fromCharCode(b);
        if (!typed && out.includes(SHELL_PROMPT)) { typed = true; input.push(...Buffer.from(`${script}\n`)); }
      });
      for (let slices = 0; slices < 2000; slices++) {
        if (input.length && m.com1.rxSpace > 0) m.com1.receive(input.splice(0, m.com1.rxSpace));
        const r = m.run(2_000_000);
        if (r.reason === 'idle' || r.reason === 'instruction-limit') continue;
        expect(r.reason, r.message).toBe('poweroff');
        break;
      }
      const v = m.host.vcpu(0);
      const c = (slot: number) => Number(v.mmuCounter(slot));
      return { mmu, out: out.slice(out.indexOf(SHELL_PROMPT)), instructions: v.counter(abi.CNT_INSTRUCTIONS), exits: exitCounts(c), c };
    });
    const [direct] = runs;
    expect(direct.out).toContain('count 300');
    expect(direct.out).toMatch(/[0-9a-f]{32} {2}-/);
    expect(direct.out).toContain('reboot: Power down');
    for (const r of runs) {
      expect(r.out, r.mmu).toBe(direct.out);
      expect(r.instructions, r.mmu).toBe(direct.instructions); // virtual time does not depend on the MMU mode
    }
    for (const r of runs.filter((x) => x.mmu !== 'shadow')) expect(r.exits).toEqual({ page_fault: 0, pt_write: 0, cr3: 0, invlpg: 0 });
    const sh = runs.find((x) => x.mmu === 'shadow')!;
    // Every process switches CR3 at least twice; its demand paging and teardown trap page-table writes.
    expect(sh.exits.cr3).toBeGreaterThan(2 * 400);
    expect(sh.exits.page_fault).toBeGreaterThan(sh.exits.cr3);
    expect(sh.exits.pt_write).toBeGreaterThan(400);
    expect(sh.exits.invlpg).toBeGreaterThan(0);
    expect(sh.c(abi.MC_SHADOW_GUEST_PF)).toBeGreaterThan(400); // the guest's own page faults, reflected
    expect(sh.c(abi.MC_SHADOW_FLOODED)).toBeGreaterThan(0);
    expect(sh.c(abi.MC_SHADOW_ROOT_HIT)).toBeGreaterThan(0);
    // The 2D walk pays instead in references: more per TLB miss than native.
    const refs = (r: typeof sh) => r.c(abi.MC_REFS + abi.DIM_HOST * 8 + 1) + r.c(abi.MC_REFS + abi.DIM_HOST * 8 + 2);
    expect(refs(runs.find((x) => x.mmu === 'ept')!)).toBeGreaterThan(0);
    expect(refs(direct)).toBe(0);
  }, 300_000);

  for (const mmu of ['ept', 'shadow'] as const) {
    it(`brings up two vCPUs through INIT/SIPI and runs on both (--smp 2 --mmu ${mmu})`, async () => {
      const r = await bootScript(mmu, 'grep -c processor /proc/cpuinfo; taskset 2 echo on-cpu1; poweroff -f', 2);
      expect(r.status).toBe(0);
      expect(r.out).toContain('smp: Brought up 1 node, 2 CPUs');
      expect(r.out).toMatch(/\n2\r?\n/);
      expect(r.out).toContain('on-cpu1');
    });
  }

  it('a stock distribution kernel boots with the same command line (console=ttyS0) and uses the PV interface', async (ctx) => {
    if (!existsSync(STOCK_KERNEL)) ctx.skip(`no stock kernel at ${STOCK_KERNEL}: run test/fetch-stock-kernel.sh (.ci/run does)`);
    let out = '';
    let err = '';
    const status = await boot({ memory: 256, kernel: STOCK_KERNEL, initrd: BUNDLED_INITRD, append: 'console=ttyS0', smp: 2, timeout: 900,
      script: 'dmesg | grep -E "Hypervisor detected|kvm-guest|MSR access"; uname -r; poweroff -f' },
      { out: (b) => { out += Buffer.from(b).toString('latin1'); }, err: (s) => { err += s; } });
    expect(err).toBe('');
    expect(status).toBe(0);
    const pkg = readFileSync('build/stock-kernel/PACKAGE', 'utf8').trim().replace(/^linux-image-/, '');
    expect(out).toContain(`hvlab guest ready: ${pkg}`);
    expect(out).toContain('reboot: Power down');
    // The distribution kernel takes up KVM's paravirtual interface too (emu/machine/kvm-pv.ts).
    expect(out).toContain('Hypervisor detected: KVM');
    for (const line of ['PV spinlocks enabled', 'setup PV IPIs', 'KVM setup pv remote TLB flush', 'setup PV sched yield']) expect(out).toContain(`kvm-guest: ${line}`);
    expect(out).not.toContain('unchecked MSR access');
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
