// KVM's paravirtual interface, host side, as a stock Linux 6.1 guest speaks it
// (Linux Documentation/virt/kvm/x86/{cpuid,msr,hypercalls}.rst, include/uapi/linux/kvm_para.h,
// arch/x86/include/uapi/asm/kvm_para.h; the guest side is arch/x86/kernel/kvm.c):
// - CPUID 0x40000000 "KVMKVMKVM\0\0\0" and 0x40000001 with the feature bits hvlab implements, behind
//   CPUID.1:ECX[31] (hypervisor present), without which the guest never looks;
// - the hypercalls KVM_HC_KICK_CPU (PV spinlocks: wake a vCPU that halted waiting for a lock, even
//   with interrupts off), KVM_HC_SEND_IPI (up to 128 destinations in one exit) and
//   KVM_HC_SCHED_YIELD (give the host CPU to a preempted vCPU the caller waits for);
// - MSR_KVM_STEAL_TIME: the per-vCPU record where the host publishes steal time (runnable, but no
//   host CPU) and the `preempted` byte, which the guest reads in vcpu_is_preempted() and sets
//   FLUSH_TLB in instead of sending a TLB-shootdown IPI to a preempted vCPU (PV TLB flush).
// MWAIT is never advertised (the guest would turn PV TLB flush and sched-yield off).
import type { CpuidEntry } from '../cpu/cpuid.ts';

export const KVM_CPUID_SIGNATURE = 0x40000000;
export const KVM_CPUID_FEATURES = 0x40000001;
/** CPUID.1:ECX bit 31: a hypervisor is present. */
export const CPUID_HYPERVISOR = 31;

/** CPUID 0x40000001 EAX bits (kvm_para.h) that hvlab implements. */
export const KVM_FEATURE = {
  NOP_IO_DELAY: 1, // the guest skips its port-0x80 delays
  STEAL_TIME: 5,
  PV_UNHALT: 7,
  PV_TLB_FLUSH: 9,
  PV_SEND_IPI: 11,
  PV_SCHED_YIELD: 13,
} as const;
export type KvmFeature = keyof typeof KVM_FEATURE;
export const ALL_KVM_FEATURES = Object.keys(KVM_FEATURE) as KvmFeature[];
/** CPUID 0x40000001 EDX bit 0: the vCPUs have dedicated host CPUs (the guest then uses native
 *  qspinlocks and turns PV TLB flush and sched-yield off). */
export const KVM_HINTS_REALTIME = 0;

export const MSR_KVM_STEAL_TIME = 0x4b564d03;
const KVM_MSR_ENABLED = 1n;
/** struct kvm_steal_time (64 bytes, 64-byte aligned): u64 steal, u32 version, u32 flags, u8 preempted. */
export const STEAL_TIME = { STEAL: 0, VERSION: 8, FLAGS: 12, PREEMPTED: 16, SIZE: 64 } as const;
export const KVM_VCPU_PREEMPTED = 1;
export const KVM_VCPU_FLUSH_TLB = 2;

export const KVM_HC_KICK_CPU = 5;
export const KVM_HC_SEND_IPI = 10;
export const KVM_HC_SCHED_YIELD = 11;
const KVM_ENOSYS = 1000n;
const KVM_EPERM = 1n;

export interface PvConfig {
  features: KvmFeature[];
  /** KVM_HINTS_REALTIME in CPUID 0x40000001 EDX. */
  realtime: boolean;
}

/** `--pv`: true/'on' (every feature), false/'off' (no hypervisor leaves at all), 'realtime' (every
 *  feature and the REALTIME hint), or an explicit list. */
export type PvOption = boolean | 'on' | 'off' | 'realtime' | Partial<PvConfig>;

export function pvConfig(opt: PvOption | undefined): PvConfig | null {
  if (opt === undefined || opt === true || opt === 'on') return { features: [...ALL_KVM_FEATURES], realtime: false };
  if (opt === false || opt === 'off') return null;
  if (opt === 'realtime') return { features: [...ALL_KVM_FEATURES], realtime: true };
  for (const f of opt.features ?? []) if (!(f in KVM_FEATURE)) throw new Error(`hvlab: unknown KVM paravirtual feature ${f} (known: ${ALL_KVM_FEATURES.join(', ')})`);
  return { features: [...(opt.features ?? ALL_KVM_FEATURES)], realtime: opt.realtime ?? false };
}

const ascii4 = (s: string) => [0, 1, 2, 3].reduce((v, i) => v | (s.charCodeAt(i) << (8 * i)), 0) >>> 0;

/** `entries` with the hypervisor bit and KVM's leaves (or unchanged when `cfg` is null). */
export function withKvmLeaves(entries: CpuidEntry[], cfg: PvConfig | null): CpuidEntry[] {
  if (!cfg) return entries;
  const any = 0xffffffff;
  const eax = cfg.features.reduce((v, f) => v | (1 << KVM_FEATURE[f]), 0) >>> 0;
  return [
    ...entries.map((e) => (e.leaf === 1 ? { ...e, ecx: (e.ecx | (1 << CPUID_HYPERVISOR)) >>> 0 } : e)),
    // EAX: the largest KVM leaf; "KVMKVMKVM\0\0\0" in EBX, ECX, EDX.
    { leaf: KVM_CPUID_SIGNATURE, subleaf: any, eax: KVM_CPUID_FEATURES, ebx: ascii4('KVMK'), ecx: ascii4('VMKV'), edx: ascii4('M\0\0\0') },
    { leaf: KVM_CPUID_FEATURES, subleaf: any, eax, ebx: 0, ecx: 0, edx: cfg.realtime ? 1 << KVM_HINTS_REALTIME : 0 },
  ];
}

/** What the interface needs of the board. */
export interface PvBoard {
  readonly vcpuCount: number;
  /** The vCPU whose local APIC has this ID, or -1. */
  vcpuOfApicId(apicId: number): number;
  /** The vCPU is at CPL 0 (hypercalls from user mode get -KVM_EPERM). */
  atCpl0(i: number): boolean;
  /** Wake vCPU `i` if it halted, even with interrupts off; if it has not halted yet, its next HLT
   *  returns at once (KVM's pv_unhalted). */
  unhalt(i: number): void;
  /** Deliver `vector` with ICR delivery mode `mode` to vCPU `i`'s local APIC; false if refused. */
  deliverIpi(i: number, vector: number, mode: number, level: boolean): boolean;
  /** vCPU `from` asks to give its host CPU to vCPU `to` (KVM's kvm_vcpu_yield_to). */
  yieldTo(from: number, to: number): void;
  /** Flush vCPU `i`'s TLB before it runs again. */
  flushTlb(i: number): void;
  readGuest(gpa: number, length: number): Uint8Array;
  writeGuest(gpa: number, bytes: Uint8Array): void;
  readonly ramBytes: number;
}

/** The hypercall registers (64-bit mode: RAX number, RBX, RCX, RDX, RSI the arguments). */
export interface HypercallRegs { nr: bigint; a0: bigint; a1: bigint; a2: bigint; a3: bigint }

export interface PvCounts { hypercalls: number; kicks: number; ipis: number; yields: number; tlbFlushes: number; stealUpdates: number }

export class KvmParavirt {
  readonly counts: PvCounts = { hypercalls: 0, kicks: 0, ipis: 0, yields: 0, tlbFlushes: 0, stealUpdates: 0 };
  private readonly has: Set<KvmFeature>;
  /** Per vCPU: gpa of its steal-time record (-1: not registered), the steal published so far. */
  private readonly stealGpa: number[];
  private readonly stealMsr: bigint[];
  private readonly stealAtEnable: number[];

  constructor(readonly config: PvConfig, private readonly board: PvBoard) {
    this.has = new Set(config.features);
    this.stealGpa = new Array(board.vcpuCount).fill(-1);
    this.stealMsr = new Array(board.vcpuCount).fill(0n);
    this.stealAtEnable = new Array(board.vcpuCount).fill(0);
  }

  static isKvmMsr(index: number): boolean { return index === MSR_KVM_STEAL_TIME; }

  /** RDMSR of a KVM MSR: its value, or null (#GP) when its feature is not offered. */
  msrRead(i: number, index: number): bigint | null {
    if (index === MSR_KVM_STEAL_TIME && this.has.has('STEAL_TIME')) return this.stealMsr[i];
    return null;
  }

  /** WRMSR of a KVM MSR; false = #GP (feature not offered, reserved bits set, record outside RAM). */
  msrWrite(i: number, index: number, value: bigint, stealNs: number): boolean {
    if (index !== MSR_KVM_STEAL_TIME || !this.has.has('STEAL_TIME')) return false;
    if ((value & 0x3en) !== 0n) return false; // bits 5:1 reserved (msr.rst)
    const gpa = Number(value & ~0x3fn);
    if ((value & KVM_MSR_ENABLED) !== 0n && gpa + STEAL_TIME.SIZE > this.board.ramBytes) return false;
    this.stealMsr[i] = value;
    this.stealGpa[i] = (value & KVM_MSR_ENABLED) !== 0n ? gpa : -1;
    // Steal counts from the registration on (the guest reads deltas of it).
    this.stealAtEnable[i] = stealNs;
    if (this.stealGpa[i] >= 0) this.publishSteal(i, stealNs);
    return true;
  }

  /** The host's steal count of vCPU `i` when its record was registered (the record counts from
   *  there), or null while it has none. */
  stealBaseNs(i: number): number | null { return this.stealGpa[i] >= 0 ? this.stealAtEnable[i] : null; }

  /** vCPU `i` is about to run, having waited `stealNs` host ns in total while runnable: publish it
   *  and take up a TLB flush requested while it was preempted (KVM's record_steal_time). */
  enterVcpu(i: number, stealNs: number): void {
    if (this.stealGpa[i] < 0) return;
    this.publishSteal(i, stealNs);
  }

  /** vCPU `i` lost its host CPU while runnable (KVM's kvm_steal_time_set_preempted). */
  preemptVcpu(i: number): void {
    const gpa = this.stealGpa[i];
    if (gpa < 0) return;
    this.board.writeGuest(gpa + STEAL_TIME.PREEMPTED, Uint8Array.of(KVM_VCPU_PREEMPTED));
  }

  private publishSteal(i: number, stealNs: number): void {
    const gpa = this.stealGpa[i];
    const rec = new DataView(this.board.readGuest(gpa, 24).slice().buffer);
    // The seqcount: odd while the host updates (the guest retries), as record_steal_time does.
    const version = (rec.getUint32(STEAL_TIME.VERSION, true) + 1) | 1;
    rec.setUint32(STEAL_TIME.VERSION, version >>> 0, true);
    this.board.writeGuest(gpa + STEAL_TIME.VERSION, new Uint8Array(rec.buffer, STEAL_TIME.VERSION, 4));
    rec.setBigUint64(STEAL_TIME.STEAL, BigInt(Math.round(stealNs - this.stealAtEnable[i])), true);
    const preempted = rec.getUint8(STEAL_TIME.PREEMPTED);
    rec.setUint8(STEAL_TIME.PREEMPTED, 0);
    rec.setUint32(STEAL_TIME.VERSION, (version + 1) >>> 0, true);
    this.board.writeGuest(gpa, new Uint8Array(rec.buffer, 0, 24));
    this.counts.stealUpdates++;
    if ((preempted & KVM_VCPU_FLUSH_TLB) !== 0) { this.board.flushTlb(i); this.counts.tlbFlushes++; }
  }

  /** VMCALL/VMMCALL from vCPU `i`: the value for RAX. */
  hypercall(i: number, r: HypercallRegs): bigint {
    this.counts.hypercalls++;
    if (!this.board.atCpl0(i)) return -KVM_EPERM;
    switch (Number(r.nr)) {
      case KVM_HC_KICK_CPU: {
        if (!this.has.has('PV_UNHALT')) break;
        const target = this.board.vcpuOfApicId(Number(r.a1 & 0xffffffffn));
        if (target >= 0) { this.board.unhalt(target); this.counts.kicks++; }
        return 0n;
      }
      case KVM_HC_SEND_IPI: return this.has.has('PV_SEND_IPI') ? this.sendIpi(r) : -KVM_ENOSYS;
      case KVM_HC_SCHED_YIELD: {
        if (!this.has.has('PV_SCHED_YIELD')) break;
        const target = this.board.vcpuOfApicId(Number(r.a0 & 0xffffffffn));
        if (target >= 0 && target !== i) { this.board.yieldTo(i, target); this.counts.yields++; }
        return 0n;
      }
      default: break;
    }
    return -KVM_ENOSYS;
  }

  /** KVM_HC_SEND_IPI: a0/a1 a 128-bit bitmap of APIC IDs from a2, a3 the ICR (vector, delivery
   *  mode, level); returns the number of vCPUs the IPI reached (kvm_pv_send_ipi). */
  private sendIpi(r: HypercallRegs): bigint {
    const icr = Number(r.a3 & 0xffffffffn);
    const vector = icr & 0xff, mode = (icr >> 8) & 7, level = (icr & (1 << 14)) !== 0;
    const min = Number(r.a2 & 0xffffffffn);
    let delivered = 0;
    [r.a0, r.a1].forEach((bitmap, half) => {
      for (let bit = 0; bit < 64; bit++) {
        if (((bitmap >> BigInt(bit)) & 1n) === 0n) continue;
        const target = this.board.vcpuOfApicId(min + half * 64 + bit);
        if (target >= 0 && this.board.deliverIpi(target, vector, mode, level)) delivered++;
      }
    });
    this.counts.ipis += delivered;
    return BigInt(delivered);
  }
}
