// The bundled Linux guest sees KVM's paravirtual interface (emu/machine/kvm-pv.ts) and turns on what
// it offers, by its own words in dmesg (arch/x86/kernel/kvm.c): PV spinlocks, PV IPIs, PV remote TLB
// flush, PV sched yield, steal time; the three lock regimes follow from CPUID alone.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { boot } from '../../emu/cli/boot.ts';
import { runHost } from '../../emu/cli/host.ts';
import type { PvOption } from '../../emu/machine/kvm-pv.ts';
import { parseProcStatSteal } from '../../bench/sched.ts';

async function dmesg(pv: PvOption, smp = 2) {
  let out = '', err = '';
  const status = await boot({ memory: 128, smp, pv, script: 'dmesg | grep -E "kvm|KVM|MSR|spinlock"; poweroff -f', timeout: 300 },
    { out: (b) => { out += Buffer.from(b).toString('latin1'); }, err: (s) => { err += s; } });
  expect(err).toBe('');
  expect(status).toBe(0);
  return out;
}

describe('the bundled guest and KVM\'s paravirtual interface', () => {
  it('--pv on: PV qspinlocks, PV IPIs, PV TLB flush, PV sched yield; the steal-time MSR is accepted', async () => {
    const out = await dmesg('on');
    expect(out).toContain('Hypervisor detected: KVM');
    for (const line of ['kvm-guest: PV spinlocks enabled', 'kvm-guest: setup PV IPIs', 'kvm-guest: KVM setup pv remote TLB flush', 'kvm-guest: setup PV sched yield']) {
      expect(out).toContain(line);
    }
    expect(out).not.toContain('unchecked MSR access');
  }, 300_000);

  it('the lock regime follows CPUID: the REALTIME hint gives native qspinlocks, no PV_UNHALT no PV spinlocks', async () => {
    const realtime = await dmesg('realtime');
    expect(realtime).toContain('kvm-guest: PV spinlocks disabled with KVM_HINTS_REALTIME hints');
    expect(realtime).not.toContain('pv remote TLB flush'); // (it needs no REALTIME hint)
    const noUnhalt = await dmesg({ features: ['STEAL_TIME', 'PV_SEND_IPI'] });
    expect(noUnhalt).toContain('kvm-guest: PV spinlocks disabled, no host support');
    expect(noUnhalt).toContain('kvm-guest: setup PV IPIs');
    expect(noUnhalt).not.toContain('setup PV sched yield');
    const off = await dmesg('off');
    expect(off).not.toContain('Hypervisor detected');
  }, 600_000);

  it('steal time: what the guest reports in /proc/stat is the time the host held its vCPUs off a host CPU', async () => {
    // Two busy vCPUs on one host CPU: each is runnable without it about half the time.
    const dir = mkdtempSync(join(tmpdir(), 'hvlab-steal-'));
    try {
      // The loops stop before the dump, so no steal accrues between the dump and the power-off.
      const script = '(while :; do :; done) & (while :; do :; done) & sleep 0.4; kill %1 %2; sleep 0.1; cat /proc/stat; poweroff -f';
      let err = '';
      const r = await runHost({ guests: [{ name: 'g', memory: 128, smp: 2, script }], hostMemory: 256, hostCpus: 1, mmu: 'ept', timeout: 300, consoleDir: dir, status: false },
        { out: () => {}, err: (s) => { err += s; }, isTty: false });
      expect(err).toBe('');
      expect(r.status).toBe(0);
      const g = r.report!.guests[0];
      const guestNs = parseProcStatSteal(readFileSync(join(dir, 'g.log'), 'latin1'))!;
      // The record counts from its registration on; the host counted from the guest's start.
      const hostNs = g.vcpus.reduce((sum, v, i) => sum + v.steal_ns - g.steal_base_ns![i], 0);
      expect(hostNs).toBeGreaterThan(0.3e9);
      // /proc/stat counts whole USER_HZ ticks (10 ms) per CPU, truncated, and a CPU's steal since
      // its last tick before it went idle is not in it yet: at most two ticks per vCPU.
      expect(Math.abs(guestNs - hostNs), `guest ${guestNs} ns, host ${hostNs} ns`).toBeLessThanOrEqual(2 * 10e6 * g.vcpus.length);
      // The exits that carried it: halts, PV IPIs (hypercalls) and the steal records' updates.
      expect(g.exits.halt).toBeGreaterThan(0);
      expect(g.exits.hypercall).toBeGreaterThan(0);
      expect(g.exits.pv_ipi).toBeGreaterThan(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 300_000);
});
