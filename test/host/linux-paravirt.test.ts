// The bundled Linux guest sees KVM's paravirtual interface (emu/machine/kvm-pv.ts) and turns on what
// it offers, by its own words in dmesg (arch/x86/kernel/kvm.c): PV spinlocks, PV IPIs, PV remote TLB
// flush, PV sched yield, steal time; the three lock regimes follow from CPUID alone.
import { describe, expect, it } from 'vitest';
import { boot } from '../../emu/cli/boot.ts';
import type { PvOption } from '../../emu/machine/kvm-pv.ts';

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
});
