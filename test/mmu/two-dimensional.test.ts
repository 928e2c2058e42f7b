// The two-dimensional walk, the EPT-violation exit and the TLBs, checked by counting: every
// page-table reference goes through one accounting function, so the counts are what the walk did.
import { describe, it, expect } from 'vitest';
import * as abi from '../../wasm/abi.ts';
import { Host, TLB_PRESETS, type MmuMode } from '../../emu/machine/host.ts';
import { GuestPageTables } from '../../emu/mmu/guest-page-tables.ts';
import type { PageSize } from '../../emu/hv/mm/nested-page-table.ts';

const GVA = 0x7f1234567000n;

function longModeGuest(mmu: MmuMode, guestPage: PageSize, hostPage: PageSize, ram = 64 << 20) {
  const host = new Host({ ramBytes: ram, mmu, hostPageSize: hostPage });
  const v = host.vcpu(0);
  v.resetArchitectural();
  const pt = new GuestPageTables(host, 0x100000, 0x200000);
  const data = guestPage === '1g' ? 0 : 0x400000;
  pt.map(GVA & ~BigInt((guestPage === '4k' ? 0x1000 : guestPage === '2m' ? 0x200000 : 0x40000000) - 1), data,
    guestPage === '4k' ? 0x1000 : guestPage === '2m' ? 0x200000 : 0x40000000, guestPage);
  v.cr0 = 0x80000011n;
  v.setReg64(abi.ST_CR4, 0x20n);
  v.setReg64(abi.ST_EFER, 0x500n);
  v.setReg64(abi.ST_CR3, BigInt(pt.root));
  return { host, v, pt };
}

function coldWalkRefs(mmu: MmuMode, guestPage: PageSize, hostPage: PageSize): number {
  const { host, v } = longModeGuest(mmu, guestPage, hostPage, hostPage === '1g' ? 1 << 30 : 64 << 20);
  host.core.traceWalks(1);
  // A 1 GiB guest page maps gpa 0: keep the offset inside the 64 MiB of RAM.
  const r = v.probeWalk(guestPage === '1g' ? GVA & ~0x3fffffffn | 0x567000n : GVA, 'read', 0);
  expect(r.ok).toBe(true);
  return host.walkTrace().length;
}

describe('the two-dimensional walk', () => {
  it('counts (n+1)(m+1)-1 references: 4 native, 24 for 4K/4K, 19 with one 2 MiB side, 15 for 2M/2M', () => {
    expect(coldWalkRefs('direct', '4k', '4k')).toBe(4);
    expect(coldWalkRefs('direct', '2m', '4k')).toBe(3);
    expect(coldWalkRefs('ept', '4k', '4k')).toBe(24);
    expect(coldWalkRefs('ept', '4k', '2m')).toBe(19);
    expect(coldWalkRefs('ept', '2m', '4k')).toBe(19);
    expect(coldWalkRefs('ept', '2m', '2m')).toBe(15);
    expect(coldWalkRefs('ept', '1g', '2m')).toBe(11);
  });

  it('orders the references as the hardware does: each guest table gpa through the host table, then the entry', () => {
    const { host, v, pt } = longModeGuest('ept', '4k', '4k');
    host.core.traceWalks(1);
    const r = v.probeWalk(GVA + 0x10n, 'read', 0);
    expect(r.ok && r.gpa).toBe(0x400010n);
    const t = host.walkTrace();
    const dims = t.map((s) => `${s.dim}${s.level}`).join(' ');
    expect(dims).toBe('14 13 12 11 04 14 13 12 11 03 14 13 12 11 02 14 13 12 11 01 14 13 12 11');
    // The host walk translates the gpa of the guest entry about to be read, then the entry is read.
    expect(t[0].gpa).toBe(BigInt(pt.root) + ((GVA >> 39n) & 511n) * 8n);
    expect(t[4].gpa).toBe(t[0].gpa);
    expect(t[4].entry & 1n).toBe(1n);
    expect(t[23].gpa).toBe(0x400010n); // the final gpa
  });
});

describe('EPT violations', () => {
  it('exit with the gpa and a GPA-fault qualification, and the instruction restarts after the host maps the page', () => {
    const host = new Host({ ramBytes: 16 << 20, mmu: 'ept', hostPageSize: '4k' });
    const v = host.vcpu(0);
    v.resetArchitectural();
    // 32-bit protected mode, paging off: gva = gpa, only the host dimension translates.
    const code = [0xa1, 0x00, 0x50, 0x00, 0x00, 0xf4]; // mov eax, [0x5000]; hlt
    host.writeGuest(0x1000, code);
    host.writeGuest(0x5000, [0x78, 0x56, 0x34, 0x12]);
    v.cr0 = 0x11n;
    const flat = { base: 0n, limit: 0xffffffff, selector: 0x10, attr: 0xc093 };
    for (const s of [abi.SEG_DS, abi.SEG_ES, abi.SEG_SS]) v.setSegment(s, flat);
    v.setSegment(abi.SEG_CS, { base: 0n, limit: 0xffffffff, selector: 0x08, attr: 0xc09b });
    v.rip = 0x1000n;
    host.ept!.unmap(0x5000, 0x1000);
    host.commitNestedMappings();
    expect(v.run(100)).toBe(abi.EXIT_EPT_VIOLATION);
    const e = v.exit();
    expect(e.address).toBe(0x5000n);
    expect(e.errorCode & 0x1ff).toBe(abi.EPTQ_READ | abi.EPTQ_GVA_VALID | abi.EPTQ_FINAL);
    expect(v.rip).toBe(0x1000n); // not executed
    expect(v.mmuCounter(abi.MC_EPT_VIOLATIONS)).toBe(1n);
    host.ept!.map(0x5000, 0x5000, 0x1000, '4k');
    host.commitNestedMappings();
    expect(v.run(100)).toBe(abi.EXIT_HLT);
    expect(v.reg(0)).toBe(0x12345678n);
  });

  it('report a GPT fault when a guest page-table page is unmapped', () => {
    const { host, v, pt } = longModeGuest('ept', '4k', '4k');
    host.ept!.unmap(pt.root, 0x1000);
    host.commitNestedMappings();
    const r = v.probeWalk(GVA, 'write', 0);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.vector).toBe(256);
      expect(r.error & (abi.EPTQ_FINAL | abi.EPTQ_GVA_VALID | abi.EPTQ_READ)).toBe(abi.EPTQ_GVA_VALID | abi.EPTQ_READ);
    }
  });
});

describe('TLB', () => {
  it('a second access to a page hits; INVLPG and MOV CR3 drop the entry; global entries survive MOV CR3', () => {
    const host = new Host({ ramBytes: 64 << 20, mmu: 'ept', hostPageSize: '2m' });
    // The default arrays without the micro-TLB, whose hits bypass the counters this test reads.
    host.configureTlb({ ...TLB_PRESETS.default, microTlb: false });
    const v = host.vcpu(0);
    v.resetArchitectural();
    const pt = new GuestPageTables(host, 0x100000, 0x200000);
    pt.map(0n, 0, 0x200000, '2m'); // code, identity
    pt.map(GVA, 0x400000, 0x1000, '4k');
    pt.map(0x600000n, 0x600000, 0x1000, '4k', 0x2n | 0x100n); // a global page
    const code = [
      0x48, 0xbb, ...Array.from({ length: 8 }, (_, i) => Number((GVA >> BigInt(8 * i)) & 0xffn)), // mov rbx, GVA
      0x8b, 0x03, // mov eax, [rbx]
      0x8b, 0x43, 0x08, // mov eax, [rbx+8]
      0x8b, 0x0c, 0x25, 0x00, 0x00, 0x60, 0x00, // mov ecx, [0x600000]
      0x0f, 0x01, 0x3b, // invlpg [rbx]
      0x8b, 0x03, // mov eax, [rbx]
      0x0f, 0x20, 0xda, // mov rdx, cr3
      0x0f, 0x22, 0xda, // mov cr3, rdx
      0x8b, 0x03, // mov eax, [rbx]
      0x8b, 0x0c, 0x25, 0x00, 0x00, 0x60, 0x00, // mov ecx, [0x600000]
      0xf4,
    ];
    host.writeGuest(0x2000, code);
    v.cr0 = 0x80000011n;
    v.setReg64(abi.ST_CR4, 0xa0n); // PAE | PGE
    v.setReg64(abi.ST_EFER, 0x500n);
    v.setReg64(abi.ST_CR3, BigInt(pt.root));
    v.setSegment(abi.SEG_CS, { base: 0n, limit: 0xffffffff, selector: 0x08, attr: 0xa09b });
    v.setSegment(abi.SEG_SS, { base: 0n, limit: 0xffffffff, selector: 0x10, attr: 0xc093 });
    v.rip = 0x2000n;
    v.resetMmuCounters();
    expect(v.run(100)).toBe(abi.EXIT_HLT);
    // Data page: miss, hit, (INVLPG) miss, (MOV CR3) miss. Global page: miss, then a hit after
    // MOV CR3. The code's 2 MiB page: a miss, and another after MOV CR3 (it is not global; the
    // decoded instructions are dropped with the address space, so the code is fetched again).
    expect(v.mmuCounter(abi.MC_TLB_HIT + abi.PS_4K)).toBe(2n);
    expect(v.mmuCounter(abi.MC_TLB_MISS)).toBe(6n);
    expect(v.mmuCounter(abi.MC_TLB_INVLPG)).toBe(1n);
  });

  it('with CR4.PCIDE, MOV CR3 with bit 63 keeps the PCID\'s entries, without it drops them; INVPCID type 0 drops a page', () => {
    const host = new Host({ ramBytes: 64 << 20, mmu: 'ept', hostPageSize: '2m' });
    // The default arrays without the micro-TLB, whose hits bypass the counters this test reads.
    host.configureTlb({ ...TLB_PRESETS.default, microTlb: false });
    const v = host.vcpu(0);
    v.resetArchitectural();
    const pt = new GuestPageTables(host, 0x100000, 0x200000);
    pt.map(0n, 0, 0x200000, '2m');
    pt.map(GVA, 0x400000, 0x1000, '4k');
    // mov rbx, GVA; mov eax,[rbx] (miss); mov rdx,cr3; bts rdx,63; mov cr3,rdx; mov eax,[rbx] (hit);
    // btr rdx,63; mov cr3,rdx; mov eax,[rbx] (miss); xor ecx,ecx; invpcid rcx,[0x3000]; mov eax,[rbx] (miss); hlt
    host.writeGuest(0x2000, [0x48, 0xbb, 0x00, 0x70, 0x56, 0x34, 0x12, 0x7f, 0x00, 0x00, 0x8b, 0x03, 0x0f, 0x20, 0xda,
      0x48, 0x0f, 0xba, 0xea, 0x3f, 0x0f, 0x22, 0xda, 0x8b, 0x03, 0x48, 0x0f, 0xba, 0xf2, 0x3f, 0x0f, 0x22, 0xda, 0x8b, 0x03,
      0x31, 0xc9, 0x66, 0x48, 0x0f, 0x38, 0x82, 0x0c, 0x25, 0x00, 0x30, 0x00, 0x00, 0x8b, 0x03, 0xf4]);
    // INVPCID descriptor: PCID 1, linear address GVA.
    const desc = new DataView(new ArrayBuffer(16));
    desc.setBigUint64(0, 1n, true);
    desc.setBigUint64(8, GVA, true);
    host.writeGuest(0x3000, new Uint8Array(desc.buffer));
    v.cr0 = 0x80000011n;
    v.setReg64(abi.ST_CR4, 0x20020n); // PAE | PCIDE
    v.setReg64(abi.ST_EFER, 0x500n);
    v.setReg64(abi.ST_CR3, BigInt(pt.root) | 1n); // PCID 1
    v.setSegment(abi.SEG_CS, { base: 0n, limit: 0xffffffff, selector: 0x08, attr: 0xa09b });
    v.setSegment(abi.SEG_SS, { base: 0n, limit: 0xffffffff, selector: 0x10, attr: 0xc093 });
    v.rip = 0x2000n;
    v.resetMmuCounters();
    expect(v.run(100)).toBe(abi.EXIT_HLT);
    expect(v.mmuCounter(abi.MC_TLB_HIT + abi.PS_4K)).toBe(1n);
    expect(v.mmuCounter(abi.MC_TLB_FILL + abi.PS_4K)).toBe(3n);
    expect(v.mmuCounter(abi.MC_TLB_INVLPG)).toBe(1n);
    expect(v.reg64(abi.ST_CR3)).toBe(BigInt(pt.root) | 1n); // bit 63 is not stored
  });
});
