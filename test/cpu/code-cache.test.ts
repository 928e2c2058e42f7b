// The decoded-instruction cache (wasm/cpu/code-cache.ts): entries are found by linear address and
// valid for the host frame they were decoded from. A write to that frame through any linear alias,
// by the host or by another VM's reuse of the frame kills them; a change of linear mappings (MOV
// CR3, INVLPG, another vCPU) only makes them revalidate, so nothing is decoded again.
import { describe, expect, it } from 'vitest';
import * as abi from '../../wasm/abi.ts';
import { Host, type MmuMode, type Vcpu } from '../../emu/machine/host.ts';
import { GuestPageTables } from '../../emu/mmu/guest-page-tables.ts';

const CODE_GVA = 0x7f0000000000n; // where the program runs
const ALIAS_GVA = 0x200000n; // a second mapping of the same frame (fits a disp32)
const CODE_GPA = 0x400000;
const OTHER_GPA = 0x401000;
const RAX = 0;

const le32 = (v: number) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];

/** A 64-bit guest with paging: CODE_GVA and ALIAS_GVA both map CODE_GPA. */
function longModeGuest(mmu: MmuMode) {
  const host = new Host({ ramBytes: 16 << 20, mmu });
  const v = host.vcpu(0);
  v.resetArchitectural();
  const pt = new GuestPageTables(host, 0x100000, 0x200000);
  pt.map(CODE_GVA, CODE_GPA, 0x2000);
  pt.map(ALIAS_GVA, CODE_GPA, 0x1000);
  v.cr0 = 0x80000011n;
  v.setReg64(abi.ST_CR4, 0x20n);
  v.setReg64(abi.ST_EFER, 0x500n);
  v.setReg64(abi.ST_CR3, BigInt(pt.root));
  const flat = { base: 0n, limit: 0xffffffff, selector: 0x10, attr: 0xc093 };
  for (const s of [abi.SEG_DS, abi.SEG_ES, abi.SEG_SS]) v.setSegment(s, flat);
  v.setSegment(abi.SEG_CS, { base: 0n, limit: 0xffffffff, selector: 0x08, attr: 0xa09b });
  v.setReg(4, CODE_GVA + 0x1ff0n); // a stack in the second page
  return { host, v, pt };
}

function runToHlt(v: Vcpu, budget = 200_000): void {
  const r = v.run(budget);
  expect(r, `exit ${r} at rip 0x${v.rip.toString(16)}`).toBe(abi.EXIT_HLT);
}

const MODES: MmuMode[] = ['direct', 'ept', 'shadow'];

describe('the decoded-instruction cache', () => {
  for (const mmu of MODES) {
    it(`sees a write to its code through another linear alias of the frame (--mmu ${mmu})`, () => {
      const { host, v } = longModeGuest(mmu);
      // top: mov al, 0x11 | cmp al, 0x22 | je done | mov byte [ALIAS+1], 0x22 | jmp top | done: hlt
      // The store goes through ALIAS_GVA: a cache that watched linear pages would run the old
      // MOV AL forever.
      const code = [0xb0, 0x11, 0x3c, 0x22, 0x74, 0x0a, 0xc6, 0x04, 0x25, ...le32(Number(ALIAS_GVA) + 1), 0x22, 0xeb, 0xf0, 0xf4];
      host.writeGuest(CODE_GPA, code);
      v.rip = CODE_GVA;
      runToHlt(v);
      expect(v.reg(RAX) & 0xffn).toBe(0x22n);
    });
  }

  it('re-decodes nothing across 1000 MOV CR3 (the entries revalidate against their frames)', () => {
    const { host, v } = longModeGuest('ept');
    // mov ecx, 1000 | l: mov rax, cr3 | mov cr3, rax | dec ecx | jnz l | hlt
    host.writeGuest(CODE_GPA, [0xb9, ...le32(1000), 0x0f, 0x20, 0xd8, 0x0f, 0x22, 0xd8, 0xff, 0xc9, 0x75, 0xf6, 0xf4]);
    v.rip = CODE_GVA;
    runToHlt(v);
    expect(v.reg(1)).toBe(0n);
    const decoded = v.counter(abi.CNT_DECODED);
    expect(decoded).toBeGreaterThanOrEqual(6n);
    expect(decoded).toBeLessThan(20n); // a cache flushed by MOV CR3 decodes ~4000
  });

  it('runs the new code after the guest remaps the page and invalidates it (INVLPG)', () => {
    const { host, v, pt } = longModeGuest('ept');
    host.writeGuest(CODE_GPA, [0xb8, ...le32(1), 0xf4]); // mov eax, 1 | hlt
    host.writeGuest(OTHER_GPA, [0xb8, ...le32(2), 0xf4]); // mov eax, 2 | hlt
    // The second page holds the remapping code: invlpg [CODE_GVA] | jmp CODE_GVA (rel32)
    const remapAt = CODE_GPA + 0x1000;
    v.rip = CODE_GVA;
    runToHlt(v);
    expect(v.reg(RAX)).toBe(1n);
    pt.map(CODE_GVA, OTHER_GPA, 0x1000); // (the guest's own table edit, no flush yet)
    pt.map(CODE_GVA + 0x1000n, remapAt, 0x1000);
    host.writeGuest(remapAt + 0x100, [0x48, 0xb8, ...le32(Number(CODE_GVA & 0xffffffffn)), ...le32(Number(CODE_GVA >> 32n)), // mov rax, CODE_GVA
      0x0f, 0x01, 0x38, // invlpg [rax]
      0xff, 0xe0]); // jmp rax
    v.rip = CODE_GVA + 0x1100n;
    runToHlt(v);
    expect(v.reg(RAX)).toBe(2n);
  });

  it('runs what the host wrote over decoded code (a loader, a device)', () => {
    const { host, v } = longModeGuest('shadow');
    host.writeGuest(CODE_GPA, [0xb8, ...le32(1), 0xf4]);
    v.rip = CODE_GVA;
    runToHlt(v);
    host.writeGuest(CODE_GPA, [0xb8, ...le32(7), 0xf4]);
    v.rip = CODE_GVA;
    runToHlt(v);
    expect(v.reg(RAX)).toBe(7n);
  });

  it('keeps two VMs apart that run different code at the same address, in turns', () => {
    const host = new Host({ poolBytes: 32 << 20 });
    const guests = [1, 2].map((n) => {
      const vm = host.createVm({ ramBytes: 4 << 20, vcpus: 1, mmu: 'ept', demand: true });
      const v = vm.vcpu(0);
      v.reset(); // flat 64-bit, paging off
      // mov ebx, 100 | l: mov eax, n | dec ebx | jnz l | hlt
      vm.memory.write(0x1000, [0xbb, ...le32(100), 0xb8, ...le32(n), 0xff, 0xcb, 0x75, 0xf7, 0xf4]);
      v.rip = 0x1000n;
      return { vm, v, n };
    });
    for (let round = 0; round < 3; round++) {
      for (const g of guests) {
        g.v.rip = 0x1000n;
        for (;;) {
          const r = g.v.run(50);
          if (r === abi.EXIT_HLT) break;
          if (r === abi.EXIT_EPT_VIOLATION) { expect(g.vm.handleEptViolation(g.v.exit().address)).toBe('mapped'); continue; }
          expect(r).toBe(abi.EXIT_BUDGET);
        }
        expect(g.v.reg(RAX)).toBe(BigInt(g.n));
      }
    }
    expect(host.checkInvariants()).toEqual([]);
  });
});
