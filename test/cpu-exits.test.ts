// Exits, #UD accounting and CPUID: the parts of the core the native oracle cannot see.
import { describe, it, expect } from 'vitest';
import * as abi from '../wasm/abi.ts';
import { Host, opcodeName } from '../emu/machine/host.ts';
import { defaultCpuid, FEATURES } from '../emu/cpu/cpuid.ts';
import { forms } from '../wasm/cpu/isa-table.ts';
import { fpuForms } from '../wasm/cpu/isa-table-fpu.ts';

function boot(code: number[]) {
  const host = new Host({ ramBytes: 1 << 20 });
  const v = host.vcpu(0);
  v.reset();
  host.writeGuest(0x1000, code);
  v.rip = 0x1000n;
  v.setReg(4, 0x8000n);
  return { host, v };
}

describe('unimplemented and invalid opcodes', () => {
  it('an unimplemented opcode raises #UD at its address and is counted by opcode', () => {
    const { v } = boot([0x90, 0xf2, 0x0f, 0x38, 0xf1, 0xc1]); // nop; crc32 eax, ecx (not implemented)
    expect(v.run(10)).toBe(abi.EXIT_EXCEPTION);
    const e = v.exit();
    expect(e.vector).toBe(abi.VEC_UD);
    expect(e.rip).toBe(0x1001n);
    expect(v.rip).toBe(0x1001n);
    expect(Array.from(e.bytes)).toEqual([0xf2, 0x0f, 0x38, 0xf1, 0xc1]);
    expect(v.counter(abi.CNT_UNIMPLEMENTED)).toBe(1n);
    expect(v.unimplementedOpcodes().get(0x2f1)).toBe(1);
    expect(opcodeName(0x2f1)).toBe('0F 38 F1');
  });

  it('an opcode that does not exist in 64-bit mode is #UD but not "unimplemented"', () => {
    const { v } = boot([0x06]); // push es
    expect(v.run(10)).toBe(abi.EXIT_EXCEPTION);
    expect(v.exit().vector).toBe(abi.VEC_UD);
    expect(v.counter(abi.CNT_UNIMPLEMENTED)).toBe(0n);
  });

  it('UD2 is #UD; LOCK on a register destination is #UD', () => {
    expect(boot([0x0f, 0x0b]).v.run(5)).toBe(abi.EXIT_EXCEPTION);
    const { v } = boot([0xf0, 0x48, 0x01, 0xd8]);
    expect(v.run(5)).toBe(abi.EXIT_EXCEPTION);
    expect(v.exit().vector).toBe(abi.VEC_UD);
  });

  it('an instruction longer than 15 bytes is #GP(0)', () => {
    const { v } = boot([...new Array(15).fill(0x66), 0x90]);
    expect(v.run(5)).toBe(abi.EXIT_EXCEPTION);
    expect(v.exit().vector).toBe(abi.VEC_GP);
  });

  it('a fetch beyond guest RAM is #PF with the fetch bit and the address', () => {
    const { v } = boot([]);
    v.rip = BigInt((1 << 20) - 1);
    v.host.writeGuest((1 << 20) - 1, [0x48]); // REX.W, then RAM ends
    expect(v.run(5)).toBe(abi.EXIT_EXCEPTION);
    const e = v.exit();
    expect(e.vector).toBe(abi.VEC_PF);
    expect(e.errorCode & 0x10).toBe(0x10);
    expect(e.address).toBe(BigInt(1 << 20));
  });

  it('every opcode of the instruction table reaches a handler (none is silently unimplemented)', () => {
    const { host, v } = boot([]);
    for (const f of forms) {
      v.reset();
      const bytes = [f.prefix ?? [], f.map === 1 ? [0x0f] : f.map === 2 ? [0x0f, 0x38] : f.map === 3 ? [0x0f, 0x3a] : [], f.op,
        // Register operands, except system forms, which are mostly memory forms ([rax], rax = 0).
        f.modrm ? [(f.fam === 'system' ? 0x00 : 0xc0) | ((f.ext ?? 0) << 3)] : [], new Array(10).fill(0)].flat();
      host.fillGuest(0x1000, 0x100, 0xcc);
      host.writeGuest(0x1000, bytes);
      v.rip = 0x1000n;
      v.setReg(4, 0x8000n);
      v.run(1);
      expect(v.counter(abi.CNT_UNIMPLEMENTED), `${f.mn} ${bytes.map((b) => b.toString(16)).join(' ')}`).toBe(0n);
    }
  });
});

describe('CPUID and RDTSC', () => {
  it('returns the configured table, and zeros for an absent leaf', () => {
    const { v } = boot([0x0f, 0xa2, 0xf4]);
    v.setReg(0, 1n);
    v.run(5);
    const leaf1 = defaultCpuid().find((e) => e.leaf === 1)!;
    expect(Number(v.reg(2))).toBe(leaf1.edx);
    expect(Number(v.reg(1))).toBe(leaf1.ecx);
    const absent = boot([0x0f, 0xa2, 0xf4]).v;
    absent.setReg(0, 0x12345n);
    absent.setReg(3, 77n);
    absent.run(5);
    expect(absent.reg(3)).toBe(0n);
  });

  it('advertises exactly the features the core implements', () => {
    const leaf1 = defaultCpuid().find((e) => e.leaf === 1)!;
    // x87, FXSR, MMX, SSE and SSE2 are proven against this CPU by test/difftest-x87.test.ts and
    // test/difftest-sse.test.ts; SSE3 and later are not advertised.
    expect(leaf1.ecx & 1).toBe(0);
    const implemented = new Set([...forms, ...fpuForms].map((f) => f.mn));
    const needs: Record<string, string> = { CX8: 'cmpxchg8b', CMOV: 'cmovcc', TSC: 'rdtsc', CX16: 'cmpxchg8b', MOVBE: 'movbe', POPCNT: 'popcnt', ABM: 'lzcnt', LAHF_LM: 'lahf', LM: 'mov', SYSCALL: 'syscall', MSR: 'rdmsr', PAE: 'mov_to_cr', MMX: 'emms', SSE: 'movaps', SSE2: 'movdqa', FPU: 'fld', FXSR: 'fxsave', XSAVE: 'xsave', SEP: 'sysenter',
      // Paging features live in the MMU (wasm/mmu), proven by test/mmu/paging-exhaustive.test.ts and
      // test/mmu/two-dimensional.test.ts; their instruction is INVLPG/INVPCID.
      PSE: 'invlpg', PSE36: 'invlpg', PGE: 'invlpg', PAT: 'wrmsr', NX: 'invlpg', PDPE1GB: 'invlpg', SMEP: 'invlpg', SMAP: 'invlpg',
      PCID: 'invpcid', INVPCID: 'invpcid',
      // Fast-string hints: REP MOVSB/STOSB (difftested in test/difftest.test.ts).
      ERMS: 'movs', FSRM: 'movs' };
    for (const group of Object.values(FEATURES)) for (const name of Object.keys(group)) {
      expect(implemented.has(needs[name]), name).toBe(true);
    }
  });

  it('RDTSC counts retired instructions (virtual time), so runs repeat exactly', () => {
    const { v } = boot([0x90, 0x90, 0x90, 0x0f, 0x31, 0xf4]);
    v.run(10);
    expect(v.reg(0)).toBe(3n);
    expect(v.reg(2)).toBe(0n);
  });
});
