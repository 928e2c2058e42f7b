// KVM's paravirtual interface (emu/machine/kvm-pv.ts) and the two exits it rides on in the core:
// VMCALL/VMMCALL (EXIT_HYPERCALL) and pause-loop exiting (EXIT_PAUSE_LOOP).
import { describe, expect, it } from 'vitest';
import * as abi from '../../wasm/abi.ts';
import { Host, type Vcpu } from '../../emu/machine/host.ts';
import {
  KvmParavirt, pvConfig, withKvmLeaves, MSR_KVM_STEAL_TIME, KVM_HC_KICK_CPU, KVM_HC_SEND_IPI, KVM_HC_SCHED_YIELD,
  KVM_VCPU_FLUSH_TLB, KVM_VCPU_PREEMPTED, STEAL_TIME, type PvBoard, type PvConfig,
} from '../../emu/machine/kvm-pv.ts';
import { defaultCpuid } from '../../emu/cpu/cpuid.ts';

/** A board of `n` vCPUs whose APIC IDs are `ids`, with 64 KiB of RAM, recording what it is asked. */
function fakeBoard(ids: number[]) {
  const ram = new Uint8Array(0x10000);
  const log: string[] = [];
  const board: PvBoard & { cpl: number[] } = {
    vcpuCount: ids.length, ramBytes: ram.length, cpl: ids.map(() => 0),
    vcpuOfApicId: (id) => ids.indexOf(id),
    atCpl0: (i) => board.cpl[i] === 0,
    unhalt: (i) => log.push(`unhalt ${i}`),
    deliverIpi: (i, vector, mode) => { log.push(`ipi ${i} vector 0x${vector.toString(16)} mode ${mode}`); return true; },
    yieldTo: (from, to) => log.push(`yield ${from}->${to}`),
    flushTlb: (i) => log.push(`flush ${i}`),
    readGuest: (gpa, n) => ram.slice(gpa, gpa + n),
    writeGuest: (gpa, bytes) => ram.set(bytes, gpa),
  };
  return { board, ram, log };
}

const call = (pv: KvmParavirt, i: number, nr: number, a0 = 0n, a1 = 0n, a2 = 0n, a3 = 0n) => pv.hypercall(i, { nr: BigInt(nr), a0, a1, a2, a3 });
const ENOSYS = -1000n;

describe('KVM paravirtual interface', () => {
  it('CPUID: the hypervisor bit, "KVMKVMKVM" and the feature bits offered, no MWAIT', () => {
    const leaves = withKvmLeaves(defaultCpuid(), pvConfig('on'));
    const leaf1 = leaves.find((e) => e.leaf === 1)!;
    expect(leaf1.ecx >>> 31).toBe(1);
    expect(leaf1.ecx & (1 << 3)).toBe(0); // MWAIT off, or the guest turns PV TLB flush off
    const sig = leaves.find((e) => e.leaf === 0x40000000)!;
    const text = Buffer.alloc(12);
    text.writeUInt32LE(sig.ebx, 0); text.writeUInt32LE(sig.ecx, 4); text.writeUInt32LE(sig.edx, 8);
    expect(text.toString('latin1')).toBe('KVMKVMKVM\0\0\0');
    expect(sig.eax).toBe(0x40000001);
    const features = leaves.find((e) => e.leaf === 0x40000001)!;
    for (const bit of [1, 5, 7, 9, 11, 13]) expect((features.eax >>> bit) & 1, `bit ${bit}`).toBe(1);
    expect(features.eax & ~((1 << 1) | (1 << 5) | (1 << 7) | (1 << 9) | (1 << 11) | (1 << 13))).toBe(0);
    expect(features.edx).toBe(0);
    expect(withKvmLeaves(defaultCpuid(), pvConfig('realtime')).find((e) => e.leaf === 0x40000001)!.edx).toBe(1);
    expect(withKvmLeaves(defaultCpuid(), pvConfig('off'))).toEqual(defaultCpuid());
    expect(() => pvConfig({ features: ['PV_FROB' as never] })).toThrow(/unknown KVM paravirtual feature/);
  });

  it('hypercalls: kick, 128-bit IPI bitmaps, directed yield, -KVM_EPERM from user mode, -KVM_ENOSYS otherwise', () => {
    // APIC IDs 1, 128, 0: the order of Linux's c15e0ae42c8e PV IPI bug.
    const { board, log } = fakeBoard([1, 128, 0]);
    const pv = new KvmParavirt(pvConfig('on')!, board);
    expect(call(pv, 0, KVM_HC_KICK_CPU, 0n, 128n)).toBe(0n);
    // Destinations 0 and 1 from min 0 (low bitmap bits 0, 1), 128 from min 0 is out of a 128-bit window.
    expect(call(pv, 0, KVM_HC_SEND_IPI, 0b11n, 0n, 0n, 0xfdn)).toBe(2n);
    // From min 64: bit 64 of the window (a1 bit 0) is APIC ID 128.
    expect(call(pv, 0, KVM_HC_SEND_IPI, 0n, 1n, 64n, 0x4fdn)).toBe(1n);
    expect(call(pv, 2, KVM_HC_SCHED_YIELD, 1n)).toBe(0n);
    expect(log).toEqual(['unhalt 1', 'ipi 2 vector 0xfd mode 0', 'ipi 0 vector 0xfd mode 0', 'ipi 1 vector 0xfd mode 4', 'yield 2->0']);
    board.cpl[0] = 3;
    expect(call(pv, 0, KVM_HC_KICK_CPU, 0n, 1n)).toBe(-1n);
    expect(call(pv, 1, 9)).toBe(ENOSYS); // KVM_HC_CLOCK_PAIRING: not offered
    expect(pv.counts).toMatchObject({ hypercalls: 6, kicks: 1, ipis: 3, yields: 1 });
    // A feature left out answers -KVM_ENOSYS, as with KVM_CAP_ENFORCE_PV_FEATURE_CPUID.
    const bare = new KvmParavirt(pvConfig({ features: ['STEAL_TIME'] })!, fakeBoard([0, 1]).board);
    for (const nr of [KVM_HC_KICK_CPU, KVM_HC_SEND_IPI, KVM_HC_SCHED_YIELD]) expect(call(bare, 0, nr, 1n, 1n)).toBe(ENOSYS);
  });

  it('steal time: an even version, steal since registration, the preempted byte, and PV TLB flush', () => {
    const { board, ram, log } = fakeBoard([0, 1]);
    const cfg: PvConfig = pvConfig('on')!;
    const pv = new KvmParavirt(cfg, board);
    const view = new DataView(ram.buffer);
    expect(pv.msrWrite(1, MSR_KVM_STEAL_TIME, 0x1002n, 0)).toBe(false); // reserved bit 1
    expect(pv.msrWrite(1, MSR_KVM_STEAL_TIME, 0x10001n, 0)).toBe(false); // the record would leave RAM
    expect(pv.msrWrite(1, MSR_KVM_STEAL_TIME, 0x1001n, 5000)).toBe(true);
    expect(pv.msrRead(1, MSR_KVM_STEAL_TIME)).toBe(0x1001n);
    pv.enterVcpu(1, 12_345);
    expect(view.getBigUint64(0x1000 + STEAL_TIME.STEAL, true)).toBe(7345n);
    expect(view.getUint32(0x1000 + STEAL_TIME.VERSION, true) % 2).toBe(0);
    pv.preemptVcpu(1);
    expect(ram[0x1000 + STEAL_TIME.PREEMPTED]).toBe(KVM_VCPU_PREEMPTED);
    // The guest's kvm_flush_tlb_multi: cmpxchg PREEMPTED -> PREEMPTED | FLUSH_TLB instead of an IPI.
    ram[0x1000 + STEAL_TIME.PREEMPTED] |= KVM_VCPU_FLUSH_TLB;
    const v0 = view.getUint32(0x1000 + STEAL_TIME.VERSION, true);
    pv.enterVcpu(1, 20_000);
    expect(log).toEqual(['flush 1']);
    expect(ram[0x1000 + STEAL_TIME.PREEMPTED]).toBe(0);
    expect(view.getUint32(0x1000 + STEAL_TIME.VERSION, true)).toBe(v0 + 2);
    expect(view.getBigUint64(0x1000 + STEAL_TIME.STEAL, true)).toBe(15000n);
    pv.enterVcpu(0, 99); // vCPU 0 never registered: nothing written
    expect(pv.counts.stealUpdates).toBe(3);
    // Without STEAL_TIME the MSR does not exist.
    const bare = new KvmParavirt(pvConfig({ features: ['PV_UNHALT'] })!, board);
    expect(bare.msrWrite(0, MSR_KVM_STEAL_TIME, 0x1001n, 0)).toBe(false);
    expect(bare.msrRead(0, MSR_KVM_STEAL_TIME)).toBe(null);
  });
});

/** A vCPU in 32-bit protected mode at CPL 0, paging off, running `code` at 0x1000. */
function protectedModeVcpu(code: number[]): Vcpu {
  const host = new Host({ ramBytes: 1 << 20 });
  const v = host.vcpu(0);
  v.resetArchitectural();
  host.writeGuest(0x1000, code);
  v.cr0 = 0x11n;
  const flat = { base: 0n, limit: 0xffffffff, selector: 0x10, attr: 0xc093 };
  for (const s of [abi.SEG_DS, abi.SEG_ES, abi.SEG_SS]) v.setSegment(s, flat);
  v.setSegment(abi.SEG_CS, { base: 0n, limit: 0xffffffff, selector: 0x08, attr: 0xc09b });
  v.rip = 0x1000n;
  return v;
}

describe('the hypercall and pause-loop exits', () => {
  it('VMCALL and VMMCALL exit after the instruction, with the registers for the host', () => {
    const v = protectedModeVcpu([0xb8, 5, 0, 0, 0, 0x0f, 0x01, 0xc1, 0x0f, 0x01, 0xd9, 0xf4]); // mov eax, 5 | vmcall | vmmcall | hlt
    expect(v.run(100)).toBe(abi.EXIT_HYPERCALL);
    expect(v.rip).toBe(0x1008n);
    expect(v.reg(0)).toBe(5n);
    v.setReg(0, 0n);
    expect(v.run(100)).toBe(abi.EXIT_HYPERCALL);
    expect(v.rip).toBe(0x100bn);
    expect(v.run(100)).toBe(abi.EXIT_HLT);
  });

  it('a PAUSE loop longer than the window exits; PAUSEs further apart than the gap, or PLE off, do not', () => {
    // l: pause | jmp l  (2 instructions per PAUSE)
    const spin = [0xf3, 0x90, 0xeb, 0xfc];
    const v = protectedModeVcpu(spin);
    v.configurePauseLoopExiting(128, 4096);
    expect(v.run(100_000)).toBe(abi.EXIT_PAUSE_LOOP);
    const spun = Number(v.counter(abi.CNT_INSTRUCTIONS));
    expect(spun).toBeGreaterThan(4096);
    expect(spun).toBeLessThan(4096 + 8);
    // PAUSEs 300 instructions apart (a 298-instruction NOP run between them) never form a loop.
    const sparse = protectedModeVcpu([0xf3, 0x90, ...new Array(298).fill(0x90), 0xe9, ...le32(-(2 + 298 + 5))]);
    sparse.configurePauseLoopExiting(128, 4096);
    expect(sparse.run(100_000)).toBe(abi.EXIT_BUDGET);
    const off = protectedModeVcpu(spin);
    expect(off.run(100_000)).toBe(abi.EXIT_BUDGET);
  });
});

function le32(v: number): number[] { return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff]; }
