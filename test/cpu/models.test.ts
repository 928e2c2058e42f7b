// CPU models (emu/cpu/models.ts): the CPUID table of each model as the core returns it, the behaviour
// bits that reach the core per VM, and each behaviour where Intel and AMD differ, run on both models
// in hvlab and, for the host's vendor, compared with this machine's CPU (test/native/runner.c).
import { describe, it, expect } from 'vitest';
import * as abi from '../../wasm/abi.ts';
import { Host } from '../../emu/machine/host.ts';
import { defaultCpuid, vendorOfCpuid, behaviourOfCpuid, type CpuidEntry } from '../../emu/cpu/cpuid.ts';
import {
  CPU_MODELS, resolveCpuModel, hostCpuModel, parseVendor, hostVendor, versionSignature, defaultCpuModel,
  setDefaultCpuModel, applyCpuOption, type CpuModel,
} from '../../emu/cpu/models.ts';
import { pcCpuid } from '../../emu/machine/machine.ts';
import { withKvmLeaves, pvConfig } from '../../emu/machine/kvm-pv.ts';
import { EmulatedRunner } from '../../emu/difftest/emulated.ts';
import { runNativeBatch } from '../../emu/difftest/native.ts';
import { differences } from '../../emu/difftest/compare.ts';
import { approxResultValid } from '../../emu/difftest/vendor-divergences.ts';
import type { GeneratedCase } from '../../emu/difftest/generate.ts';
import { CODE_ADDR, CODE_OFFSET, DATA_ADDR, DATA_SIZE, defaultFpuImage, fillPattern, type CaseInput, type CaseResult } from '../../emu/difftest/types.ts';

const MODELS: CpuModel[] = [CPU_MODELS.intel, CPU_MODELS.amd];
const native = hostCpuModel();
const hostIsModelled = hostVendor() !== 'other';

/** CPUID run by the core on a one-guest host with `entries`: [eax, ebx, ecx, edx]. */
function coreCpuid(entries: CpuidEntry[], leaf: number, sub = 0): number[] {
  const host = new Host({ ramBytes: 1 << 20, cpuid: entries });
  const v = host.vcpu(0);
  v.reset();
  host.writeGuest(0x1000, [0x0f, 0xa2, 0xf4]); // cpuid; hlt
  v.rip = 0x1000n;
  v.setReg(0, BigInt(leaf));
  v.setReg(1, BigInt(sub));
  v.run(5);
  return [0, 3, 1, 2].map((r) => Number(v.reg(r)));
}
const ascii = (...regs: number[]) => regs.map((v) => String.fromCharCode(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24)).join('');

describe('CPU model table', () => {
  it('each model\'s CPUID: vendor string, signature, AMD\'s extended leaves', () => {
    for (const m of MODELS) {
      const t = defaultCpuid(m);
      const [max, ebx, ecx, edx] = coreCpuid(t, 0);
      expect(max).toBe(0xd);
      expect(ascii(ebx, edx, ecx)).toBe(m.vendor);
      expect(vendorOfCpuid(t)).toBe(m.vendor);
      const [eax1] = coreCpuid(t, 1);
      const base = (eax1 >> 8) & 0xf;
      expect(base === 0xf ? base + ((eax1 >> 20) & 0xff) : base).toBe(m.family);
      expect(((eax1 >> 4) & 0xf) | (((eax1 >> 16) & 0xf) << 4)).toBe(m.model);
      expect(eax1 & 0xf).toBe(m.stepping);
      const ext0 = coreCpuid(t, 0x80000000);
      expect(ext0[0]).toBe(0x80000008);
      expect(ascii(ext0[1], ext0[3], ext0[2])).toBe(m.vendor === 'AuthenticAMD' ? m.vendor : '\0'.repeat(12));
      const ext1 = coreCpuid(t, 0x80000001);
      const leaf1Edx = coreCpuid(t, 1)[3];
      if (m.vendor === 'AuthenticAMD') {
        expect(ext1[0]).toBe(eax1);
        expect(ext1[3] & 0x0183f3ff).toBe(leaf1Edx & 0x0183f3ff); // APM Vol. 3, E.4.2
      } else {
        expect(ext1[0]).toBe(0);
        expect(ext1[3] & 0x0183f3ff).toBe(0);
      }
      expect(ext1[3] & (1 << 29)).not.toBe(0); // LM on both
    }
    expect(versionSignature(6, 0x55, 0)).toBe(0x00050650);
    expect(versionSignature(0x19, 0x01, 1)).toBe(0x00a00f11);
  });

  it('names, the host default and its fallback', () => {
    expect(resolveCpuModel('intel')).toBe(CPU_MODELS.intel);
    expect(resolveCpuModel('AMD')).toBe(CPU_MODELS.amd);
    expect(() => resolveCpuModel('via')).toThrow(/known: intel, amd/);
    expect(parseVendor('processor\t: 0\nvendor_id\t: AuthenticAMD\n')).toBe('AuthenticAMD');
    expect(parseVendor('vendor_id : GenuineIntel')).toBe('GenuineIntel');
    expect(parseVendor('vendor_id : CentaurHauls')).toBe('other');
    expect(hostCpuModel('AuthenticAMD')).toBe(CPU_MODELS.amd);
    expect(hostCpuModel('GenuineIntel')).toBe(CPU_MODELS.intel);
    expect(hostCpuModel('other')).toBe(CPU_MODELS.intel);
    expect(defaultCpuModel()).toBe(hostCpuModel());
    expect(vendorOfCpuid(defaultCpuid())).toBe(hostCpuModel().vendor);
    // --cpu (applyCpuOption) replaces the default for every table built afterwards, the PC's too.
    const other = hostCpuModel() === CPU_MODELS.amd ? CPU_MODELS.intel : CPU_MODELS.amd;
    try {
      expect(applyCpuOption(other.name)).toBe(other);
      expect(vendorOfCpuid(defaultCpuid())).toBe(other.vendor);
      expect(vendorOfCpuid(pcCpuid())).toBe(other.vendor);
      expect(behaviourOfCpuid(pcCpuid())).toBe(other.behaviour);
      expect(() => applyCpuOption('cyrix')).toThrow(/unknown CPU model/);
    } finally { setDefaultCpuModel(undefined); }
    expect(applyCpuOption(undefined)).toBe(hostCpuModel());
    expect(vendorOfCpuid(pcCpuid())).toBe(hostCpuModel().vendor);
  });

  it('behaviour bits reach the core per VM, from the vendor of the table written', () => {
    expect(behaviourOfCpuid(defaultCpuid(CPU_MODELS.intel))).toBe(0);
    expect(behaviourOfCpuid(defaultCpuid(CPU_MODELS.amd))).toBe(abi.CPUB_CALL_TARGET_FIRST | abi.CPUB_REP_ZERO_COUNT_NO_WRITE | abi.CPUB_APPROX_AMD | abi.CPUB_X87_STORE_FAULT_FIRST | abi.CPUB_AMD_MSRS);
    const odd = defaultCpuid(CPU_MODELS.intel).map((e) => (e.leaf === 0 ? { ...e, ebx: 0x62616c76, edx: 0x62616c76, ecx: 0x76686c76 } : e));
    expect(behaviourOfCpuid(odd)).toBe(0); // an unknown vendor behaves as Intel
    const host = new Host({ poolBytes: 64 << 20 });
    host.createVm({ ramBytes: 1 << 20, vcpus: 1, cpuid: defaultCpuid(CPU_MODELS.intel) });
    host.createVm({ ramBytes: 1 << 20, vcpus: 1, cpuid: defaultCpuid(CPU_MODELS.amd) });
    expect(host.view.getUint32(abi.CPU_MODEL_ADDR, true)).toBe(0);
    expect(host.view.getUint32(abi.CPU_MODEL_ADDR + 4, true)).toBe(CPU_MODELS.amd.behaviour);
  });

  it('KVM\'s leaves keep the model: vendor, signature, and no MONITOR/MWAIT', () => {
    for (const m of MODELS) {
      const t = withKvmLeaves(defaultCpuid(m), pvConfig('on'));
      expect(vendorOfCpuid(t)).toBe(m.vendor);
      expect(behaviourOfCpuid(t)).toBe(m.behaviour);
      const leaf1 = t.find((e) => e.leaf === 1)!;
      expect(leaf1.ecx & (1 << 3)).toBe(0); // CPUID.1:ECX.MONITOR
      expect(leaf1.ecx & (1 << 31)).not.toBe(0); // the hypervisor bit
      expect(t.some((e) => e.leaf === 0x40000000)).toBe(true);
    }
  });
});

// ---- Vendor behaviours

const INSN = BigInt(CODE_ADDR + CODE_OFFSET);
const SEED = 4242;
const pattern = new Uint8Array(DATA_SIZE);
fillPattern(SEED, pattern);
const patternU64 = (off: number) => new DataView(pattern.buffer).getBigUint64(off, true);
const canonical = (v: bigint) => { const top = v >> 47n; return top === 0n || top === 0x1ffffn; };

function regs(set: Record<number, bigint>): bigint[] {
  const r = Array.from({ length: 16 }, (_, i) => 0x1000n * BigInt(i + 1));
  r[4] = BigInt(DATA_ADDR + 0x1000); // RSP in the data region: a pushed return address shows
  for (const [k, v] of Object.entries(set)) r[Number(k)] = v;
  return r;
}
function kase(code: number[], set: Record<number, bigint>, fpu?: Uint8Array): GeneratedCase {
  const c: CaseInput = { code: Uint8Array.from(code), regs: regs(set), rflags: 0n, dataSeed: SEED, fpu };
  // differences() needs the generated-case fields it reads: the flags compared and the form.
  return { ...c, flagsMask: 0x8d5n, form: { mn: 'case' }, formKey: 'case', description: code.join(' ') } as unknown as GeneratedCase;
}

const runners = new Map<string, EmulatedRunner>();
function emulate(m: CpuModel, c: CaseInput): CaseResult {
  let r = runners.get(m.name);
  if (!r) runners.set(m.name, (r = new EmulatedRunner(m)));
  return r.run(c);
}

/** A data offset whose 8 pattern bytes are a non-canonical address (the CALL [mem] target). */
const slotOff = (() => {
  for (let o = 0; o < 0x800; o += 8) if (!canonical(patternU64(o))) return o;
  throw new Error('no non-canonical pattern word');
})();

const callCases = {
  'call qword [rbx], non-canonical target': kase([0xff, 0x13], { 3: BigInt(DATA_ADDR + slotOff) }),
  'call rax, non-canonical target': kase([0xff, 0xd0], { 0: 0x8000_0000_0000_0000n }),
  'call rax, canonical target (faults at the target)': kase([0xff, 0xd0], { 0: 0x7fff_ffff_f000n }),
};
const repCases = {
  '67 rep stosb, ECX = 0': kase([0x67, 0xf3, 0xaa], { 1: 0xdead_beef_0000_0000n, 7: 0x1234_5678_0030_0000n }),
  '67 repe cmpsb, ECX = 0': kase([0x67, 0xf3, 0xa6], { 1: 0xdead_beef_0000_0000n, 6: 0x4321_0000_0030_0100n, 7: 0x1234_5678_0030_0000n }),
  '67 rep movsq, ECX = 0': kase([0x67, 0xf3, 0x48, 0xa5], { 1: 0xffff_ffff_0000_0000n, 6: 0x1_0030_0100n, 7: 0x2_0030_0000n }),
  '67 rep stosb, ECX = 2 (both vendors write ECX/EDI)': kase([0x67, 0xf3, 0xaa], { 1: 0xffff_ffff_0000_0002n, 7: 0xabcd_0000_0030_0000n }),
};

/** The return address CALL stores at RSP - 8, as data-region bytes that differ from the pattern. */
function pushedBytes(c: CaseInput): [number, number][] {
  const slot = Number(c.regs[4]) - 8 - DATA_ADDR;
  const ret = INSN + BigInt(c.code.length);
  const out: [number, number][] = [];
  for (let k = 0; k < 8; k++) {
    const b = Number((ret >> BigInt(8 * k)) & 0xffn);
    if (b !== pattern[slot + k]) out.push([slot + k, b]);
  }
  return out;
}

describe('vendor behaviours in hvlab, on both models', () => {
  it('CALL near to a non-canonical target: Intel stores the return address, AMD faults first', () => {
    for (const m of MODELS) {
      for (const name of ['call qword [rbx], non-canonical target', 'call rax, non-canonical target'] as const) {
        const c = callCases[name];
        const r = emulate(m, c);
        expect(r.outcome, `${m.name}: ${name}`).toBe('SEGV');
        expect(r.rip).toBe(INSN);
        expect(r.regs[4]).toBe(c.regs[4]); // RSP unchanged on both
        expect(r.dataDiff, `${m.name}: ${name}`).toEqual(m.vendor === 'AuthenticAMD' ? [] : pushedBytes(c));
      }
      const ok = emulate(m, callCases['call rax, canonical target (faults at the target)']);
      expect(ok.rip).toBe(0x7fff_ffff_f000n); // the call completed: the fault is the fetch at the target
      expect(ok.regs[4]).toBe(BigInt(DATA_ADDR + 0x1000 - 8));
    }
  });

  it('REP string with 67h and ECX = 0: Intel zero-extends RCX (and MOVS/STOS pointers), AMD writes nothing', () => {
    for (const m of MODELS) {
      const amd = m.vendor === 'AuthenticAMD';
      const lo = (v: bigint) => v & 0xffff_ffffn;
      for (const [name, c] of Object.entries(repCases)) {
        const r = emulate(m, c);
        expect(r.outcome, name).toBe('trap');
        const count = lo(c.regs[1]);
        if (count !== 0n) {
          expect(r.regs[1], `${m.name}: ${name}`).toBe(0n);
          expect(r.regs[7], `${m.name}: ${name}`).toBe(lo(c.regs[7]) + count);
          continue;
        }
        const pointersToo = c.code.includes(0xaa) || c.code.includes(0xa5); // STOS, MOVS
        expect(r.regs[1], `${m.name}: ${name} rcx`).toBe(amd ? c.regs[1] : 0n);
        expect(r.regs[7], `${m.name}: ${name} rdi`).toBe(amd || !pointersToo ? c.regs[7] : lo(c.regs[7]));
        const movs = c.code.includes(0xa5);
        expect(r.regs[6], `${m.name}: ${name} rsi`).toBe(amd || !movs ? c.regs[6] : lo(c.regs[6]));
        expect(r.dataDiff).toEqual([]);
      }
    }
  });
});

// RCPPS xmm0, xmm1 / RSQRTPS xmm0, xmm1 over inputs that reach every table entry of both models
// (fraction bits 22..11, both exponent parities) and the special cases.
function approxInputs(): number[] {
  const xs: number[] = [];
  for (let i = 0; i < 4096; i++) {
    const frac = (i << 11) | ((i * 2654435761) & 0x7ff); // low bits must not matter
    xs.push((127 << 23) | frac, (128 << 23) | frac);
  }
  xs.push(0, 0x80000000, 1, 0x807fffff, 0x7f800000, 0xff800000, 0x7f800001, 0xffc00000, 0x7f7fffff, 0xfe800000,
    0x7e800000, 0x00800000, 0xbf800000, 0x3f800000, 0x40000000, 0x00ffffff);
  while (xs.length % 4) xs.push(0x3f800000);
  return xs.map((x) => x >>> 0);
}
function approxCases(op: 0x52 | 0x53): GeneratedCase[] {
  const xs = approxInputs();
  const out: GeneratedCase[] = [];
  for (let k = 0; k < xs.length; k += 4) {
    const img = defaultFpuImage();
    const v = new DataView(img.buffer);
    for (let l = 0; l < 4; l++) v.setUint32(abi.FX_XMM0 + 16 + 4 * l, xs[k + l], true);
    out.push(kase([0x0f, op, 0xc1], {}, img));
  }
  return out;
}
const lanesOf = (r: CaseResult) => [0, 1, 2, 3].map((l) => new DataView(r.fpu!.buffer, r.fpu!.byteOffset).getUint32(abi.FX_XMM0 + 4 * l, true));

describe('RCP/RSQRT tables by model', () => {
  it('both models are within the architectural bound, and their tables differ', () => {
    for (const [op, kind] of [[0x53, 'rcp'], [0x52, 'rsqrt']] as const) {
      const cases = approxCases(op);
      let differ = 0;
      for (const c of cases) {
        const src = [0, 1, 2, 3].map((l) => new DataView(c.fpu!.buffer).getUint32(abi.FX_XMM0 + 16 + 4 * l, true));
        const [a, b] = MODELS.map((m) => lanesOf(emulate(m, c)));
        for (let l = 0; l < 4; l++) {
          expect(approxResultValid(kind, src[l], a[l]), `intel ${kind} ${src[l].toString(16)}`).toBe(true);
          expect(approxResultValid(kind, src[l], b[l]), `amd ${kind} ${src[l].toString(16)}`).toBe(true);
          if (a[l] !== b[l]) differ++;
        }
      }
      expect(differ, kind).toBeGreaterThan(1000);
    }
  });
});

describe.runIf(hostIsModelled)(`the host's model (${native.name}) against this machine's CPU`, () => {
  it('CALL to a non-canonical target and REP with 67h: bit for bit', async () => {
    const cases = [...Object.values(callCases), ...Object.values(repCases)];
    const n = await runNativeBatch(cases);
    cases.forEach((c, i) => expect(differences(c, n[i], emulate(native, c)), c.description).toEqual([]));
    // And the other model does differ from this CPU on the vendor-specific cases.
    const other = MODELS.find((m) => m !== native)!;
    const differing = cases.filter((c, i) => differences(c, n[i], emulate(other, c)).length > 0).length;
    expect(differing).toBe(5); // the two non-canonical calls, the three ECX = 0 cases
  });

  it('RCPPS/RSQRTPS: every table entry and the special cases, bit for bit', async () => {
    const cases = [...approxCases(0x53), ...approxCases(0x52)];
    const n = await runNativeBatch(cases);
    let bad = 0;
    cases.forEach((c, i) => { if (differences(c, n[i], emulate(native, c)).length) bad++; });
    expect(bad).toBe(0);
  });
});

// FST m32fp from an ST(0) that overflows single precision, OE and IE unmasked, to a non-canonical
// address: Intel stores nothing and so takes no fault (OE/ES/B recorded); AMD faults first.
function x87StoreCase(): GeneratedCase {
  const img = defaultFpuImage();
  const v = new DataView(img.buffer);
  v.setUint16(abi.FX_FCW, 0x0376, true); // IM = OM = 0
  img[abi.FX_FTW] = 0x01; // R0 = ST(0) (TOP = 0) valid
  v.setBigUint64(abi.FX_ST0, 0x8000_0000_0000_0000n, true);
  v.setUint16(abi.FX_ST0 + 8, 16383 + 996, true); // 2^996
  return kase([0xd9, 0x13], { 3: 0x8000_0000_0000_0000n }, img); // fst dword [rbx]
}

describe('x87 store with an unmasked exception to a faulting address, on both models', () => {
  it('Intel completes without touching memory; AMD takes the #GP with the FPU state unchanged', () => {
    const c = x87StoreCase();
    for (const m of MODELS) {
      const r = emulate(m, c);
      const fsw = r.fpu![abi.FX_FSW] | (r.fpu![abi.FX_FSW + 1] << 8);
      if (m.vendor === 'AuthenticAMD') {
        expect(r.outcome).toBe('SEGV');
        expect(r.rip).toBe(INSN);
        expect(fsw).toBe(0);
      } else {
        expect(r.outcome).toBe('trap');
        expect(fsw & 0x88).toBe(0x88); // OE, ES
      }
    }
  });
});

describe('AMD MSRs by model', () => {
  /** RDMSR/WRMSR of `msr` in real mode (CPL 0) with an IVT of HLTs: the vector raised (-1: none)
   *  and EDX:EAX read. */
  function msrAccess(m: CpuModel, msr: number, write: boolean): { vector: number; value: bigint } {
    const host = new Host({ ramBytes: 1 << 20, cpuid: defaultCpuid(m) });
    const v = host.vcpu(0);
    v.resetArchitectural();
    v.setSegment(abi.SEG_CS, { base: 0n, limit: 0xffff, selector: 0, attr: 0x9b });
    const ivt: number[] = [];
    for (let n = 0; n < 32; n++) ivt.push((0x2000 + n) & 0xff, (0x2000 + n) >> 8, 0, 0);
    host.writeGuest(0, ivt);
    host.fillGuest(0x2000, 32, 0xf4);
    host.writeGuest(0x1000, [0x0f, write ? 0x30 : 0x32, 0x0f, 0x32, 0xf4]); // wrmsr/rdmsr; rdmsr; hlt
    v.rip = 0x1000n;
    v.setReg(4, 0x8000n);
    v.setReg(1, BigInt(msr));
    v.setReg(0, 0x1234n);
    v.setReg(2, 0x4000n);
    expect(v.run(20)).toBe(abi.EXIT_HLT);
    const at = Number(v.rip) - 1;
    return { vector: at >= 0x2000 && at < 0x2020 ? at - 0x2000 : -1, value: (v.reg(2) << 32n) | v.reg(0) };
  }
  it('NB_CFG (C001_001Fh): reads 0 and ignores writes on AMD, #GP on Intel', () => {
    expect(msrAccess(CPU_MODELS.amd, 0xc001001f, true)).toEqual({ vector: -1, value: 0n });
    expect(msrAccess(CPU_MODELS.amd, 0xc001001f, false)).toEqual({ vector: -1, value: 0n });
    expect(msrAccess(CPU_MODELS.intel, 0xc001001f, false).vector).toBe(abi.VEC_GP);
  });
});

describe.runIf(hostIsModelled)(`the host's model (${native.name}): x87 store fault order against this machine's CPU`, () => {
  it('bit for bit', async () => {
    const c = x87StoreCase();
    const [n] = await runNativeBatch([c]);
    expect(differences(c, n, emulate(native, c))).toEqual([]);
    const other = MODELS.find((m) => m !== native)!;
    expect(differences(c, n, emulate(other, c)).length).toBeGreaterThan(0);
  });
});

describe('INVD/WBINVD are privileged (SDM Vol. 2A: #GP(0) if CPL is not 0)', () => {
  /** `insn`, then OUT 80h, AL, in 32-bit protected mode at CPL `cpl` (IOPL 3, so the OUT is allowed
   *  at any CPL) with an empty IDT: a #GP cannot be delivered and ends in a triple fault. */
  function run(insn: number[], cpl: 0 | 3): number {
    const host = new Host({ ramBytes: 1 << 20 });
    const v = host.vcpu(0);
    v.resetArchitectural();
    v.cr0 = 0x60000011n; // PE
    const dpl = cpl << 5;
    v.setSegment(abi.SEG_CS, { base: 0n, limit: 0xfffff, selector: 0x08 | cpl, attr: 0xc09b | dpl });
    for (const s of [abi.SEG_DS, abi.SEG_ES, abi.SEG_SS]) v.setSegment(s, { base: 0n, limit: 0xfffff, selector: 0x10 | cpl, attr: 0xc093 | dpl });
    v.setDescriptorTable('idt', 0n, 0);
    v.rflags = 0x3002n; // IOPL 3
    host.writeGuest(0x1000, [...insn, 0xe6, 0x80]);
    v.rip = 0x1000n;
    v.setReg(4, 0x8000n);
    return v.run(20);
  }
  it('at CPL 3 they fault; at CPL 0 they complete', () => {
    for (const insn of [[0x0f, 0x08], [0x0f, 0x09]]) {
      expect(run(insn, 0)).toBe(abi.EXIT_IO);
      expect(run([0x90], 3)).toBe(abi.EXIT_IO); // the harness itself: CPL 3 reaches the OUT
      expect(run(insn, 3)).not.toBe(abi.EXIT_IO);
      expect(run(insn, 3)).toBe(abi.EXIT_SHUTDOWN);
    }
  });
});
