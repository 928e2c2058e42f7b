// Shadow paging (--mmu shadow, wasm/mmu/shadow.ts), checked against the same guests under --mmu
// direct and ept and by counting: the sequence that builds a shadow walk, write protection of the
// guest's tables with emulated writes, A/D emulation, large pages split or not, cached roots on
// CR3 loads, write flooding, the whole MMU zapped when its pool runs out.
import { describe, it, expect } from 'vitest';
import * as abi from '../../wasm/abi.ts';
import { Host, MMU_MODES, type MmuMode } from '../../emu/machine/host.ts';
import { GuestPageTables, PTE_RW, PTE_US } from '../../emu/mmu/guest-page-tables.ts';
import { ChurnLab } from '../../emu/mmu/churn-lab.ts';
import { walk } from '../../emu/cli/walk.ts';
import { WasmDma } from '../../emu/devices/virtio/wasm-dma.ts';

const USER_GVA = 0x8000000000n;
const PAGE_A = 0x400000, PAGE_B = 0x500000;

/** The entry mapping `gva` at `level` (gpa), read from the guest's tables in host memory. */
function entryGpa(host: Host, root: number, gva: bigint, level: number): number {
  let table = root;
  for (let l = 4; ; l--) {
    const at = table + Number((gva >> BigInt(12 + 9 * (l - 1))) & 511n) * 8;
    if (l === level) return at;
    table = Number(host.view.getBigUint64(abi.HOST_POOL_BASE + at, true) & 0x000ffffffffff000n);
  }
}
const readU64 = (host: Host, gpa: number) => host.view.getBigUint64(abi.HOST_POOL_BASE + gpa, true);

/** A kernel with RAM identity-mapped by 2 MiB pages and one user page at USER_GVA -> PAGE_A. */
function kernel(mmu: MmuMode, opts: { shadowPages?: number } = {}) {
  const host = new Host({ ramBytes: 64 << 20, mmu, hostPageSize: '2m', shadowPages: opts.shadowPages });
  const v = host.vcpu(0);
  v.resetArchitectural();
  const pt = new GuestPageTables(host, 0x100000, 0x200000);
  pt.map(0n, 0, 64 << 20, '2m', PTE_RW);
  pt.map(USER_GVA, PAGE_A, 0x1000, '4k', PTE_RW | PTE_US);
  host.writeGuest(PAGE_A, [0x11, 0x11, 0x11, 0x11]);
  host.writeGuest(PAGE_B, [0x22, 0x22, 0x22, 0x22]);
  v.cr0 = 0x80010011n; // PG, WP, ET, PE
  v.setReg64(abi.ST_CR4, 0x20n);
  v.setReg64(abi.ST_EFER, 0x500n);
  v.setReg64(abi.ST_CR3, BigInt(pt.root));
  v.setSegment(abi.SEG_CS, { base: 0n, limit: 0xffffffff, selector: 0x08, attr: 0xa09b });
  v.setSegment(abi.SEG_SS, { base: 0n, limit: 0xffffffff, selector: 0x10, attr: 0xc093 });
  return { host, v, pt };
}

// nasm (bits 64): r8 = gva of the user page, r9 = gpa (identity-mapped) of its PTE, r10 = a new PTE.
const EDIT_PTE = [
  0x49, 0x8b, 0x00, //       mov rax, [r8]       ; read through the old mapping
  0x49, 0x89, 0x40, 0x08, // mov [r8 + 8], rax   ; write through it (sets D)
  0x4d, 0x89, 0x11, //       mov [r9], r10       ; the guest edits its page table
  0x41, 0x0f, 0x01, 0x38, // invlpg [r8]
  0x49, 0x8b, 0x18, //       mov rbx, [r8]       ; read through the new mapping
  0xf4, //                   hlt
];

/** A kernel that has read its user page once (so shadow paging has built the walk); returns the PTE's gpa. */
function userPageRead(mmu: MmuMode) {
  const { host, v, pt } = kernel(mmu);
  const pte = entryGpa(host, pt.root, USER_GVA, 1);
  host.writeGuest(0x1000, [0x49, 0x8b, 0x00, 0xf4]); // mov rax, [r8]; hlt
  v.rip = 0x1000n; v.setReg(8, USER_GVA);
  expect(v.run(100)).toBe(abi.EXIT_HLT);
  expect(v.reg(0) & 0xffffffffn).toBe(0x11111111n);
  return { host, v, pte };
}

/** After the PTE was rewritten behind the MMU's back (and the TLB flushed), the read sees PAGE_B. */
function expectRemapped(host: Host, v: ReturnType<Host['vcpu']>, mmu: MmuMode): void {
  host.core.flushTlb(0); // (and the guest's invalidation)
  v.rip = 0x1000n;
  expect(v.run(100)).toBe(abi.EXIT_HLT);
  expect(v.reg(0) & 0xffffffffn, mmu).toBe(0x22222222n);
}

function runEditPte(mmu: MmuMode) {
  const { host, v, pt } = kernel(mmu);
  host.writeGuest(0x1000, EDIT_PTE);
  const pte = entryGpa(host, pt.root, USER_GVA, 1);
  const before = readU64(host, pte);
  v.rip = 0x1000n;
  v.setReg(8, USER_GVA);
  v.setReg(9, BigInt(pte));
  v.setReg(10, BigInt(PAGE_B) | 7n);
  v.resetMmuCounters();
  expect(v.run(100)).toBe(abi.EXIT_HLT);
  return { v, host, before, pte, old: v.reg(0) & 0xffffffffn, now: v.reg(3) & 0xffffffffn };
}

describe('shadow paging', () => {
  it('hvlab walk --mmu shadow shows the fault, the gpte reads, the shadow pages, the write-protects, the spte and the walk that then hits', () => {
    const w = walk({ mmu: 'shadow', guestPage: '4k', hostPage: '4k' });
    const kinds = w.steps.map((s) => (s.dim === 'event' ? s.table : `${s.dim}${s.level}`));
    expect(kinds).toEqual([
      'shadow page', 'write-protect', 'shadow4', 'fault', 'guest4', 'guest3', 'guest2', 'guest1',
      'shadow page', 'write-protect', 'spte set', 'shadow page', 'write-protect', 'spte set',
      'shadow page', 'write-protect', 'spte set', 'spte set', 'shadow4', 'shadow3', 'shadow2', 'shadow1',
    ]);
    expect(w.refs).toBe(4);
    expect(w.expected).toBe(4);
    expect(w.hpa).toBe(w.gpa); // the host backs guest RAM at the same offsets
    expect(w.steps.every((s) => s.explain.length > 20)).toBe(true);
    const leaf = w.steps[17];
    expect(BigInt(leaf.entry) & 2n).toBe(0n); // read-only: the gpte is not dirty yet
    // Guest 2 MiB pages on host 2 MiB runs: a 2 MiB spte, three references; on 4 KiB host pages, a
    // direct shadow page splits it.
    const big = walk({ mmu: 'shadow', guestPage: '2m', hostPage: '2m' });
    expect(big.refs).toBe(3);
    expect(big.steps.some((s) => s.explain.includes('direct shadow page'))).toBe(false);
    const split = walk({ mmu: 'shadow', guestPage: '2m', hostPage: '4k' });
    expect(split.refs).toBe(4);
    expect(split.steps.filter((s) => s.explain.includes('direct shadow page'))).toHaveLength(1);
  });

  it('traps and emulates a guest write to its page table, so the new mapping is seen after INVLPG, as in every mode', () => {
    const results = MMU_MODES.map((m) => runEditPte(m));
    for (const r of results) {
      expect(r.old).toBe(0x11111111n);
      expect(r.now).toBe(0x22222222n);
      // The read through the new mapping set its accessed bit (emulated under shadow paging).
      expect(readU64(r.host, r.pte)).toBe(BigInt(PAGE_B) | 7n | 0x20n);
      expect(r.before & 0x60n).toBe(0n);
    }
    const s = results[MMU_MODES.indexOf('shadow')];
    const c = (slot: number) => s.v.mmuCounter(slot);
    expect(c(abi.MC_EXIT_PT_WRITE)).toBe(1n);
    expect(c(abi.MC_EXIT_INVLPG)).toBe(1n);
    // Faults: the code page, the read (read-only spte), the write (D emulation), the new mapping.
    expect(c(abi.MC_EXIT_SHADOW_PF)).toBe(4n);
    expect(c(abi.MC_SHADOW_GUEST_PF)).toBe(0n);
    for (const m of ['direct', 'ept'] as const) expect(results[MMU_MODES.indexOf(m)].v.mmuCounter(abi.MC_EXIT_PT_WRITE)).toBe(0n);
  });

  it('the churn guest leaves the same memory in every mode; only shadow paging exits, by cause', () => {
    const out = MMU_MODES.map((mmu) => {
      const l = new ChurnLab({ mmu });
      l.run(50, 8);
      return { mmu, r: l.result(8), c: (slot: number) => Number(l.vcpu.mmuCounter(slot)) };
    });
    for (const o of out) {
      expect(o.r.words).toEqual(Array(8).fill(1n));
      expect(o.r.tablesClear).toBe(true);
    }
    const sh = out.find((o) => o.mmu === 'shadow')!.c;
    expect(sh(abi.MC_EXIT_CR3)).toBe(100); // two CR3 loads per address space
    expect(sh(abi.MC_EXIT_PT_WRITE)).toBeGreaterThan(50);
    expect(sh(abi.MC_EXIT_SHADOW_PF)).toBeGreaterThan(50 * 8);
    expect(sh(abi.MC_SHADOW_FLOODED)).toBeGreaterThan(0); // cleared page tables get unshadowed
    expect(sh(abi.MC_SHADOW_ROOT_HIT)).toBeGreaterThan(0); // the base address space's root is cached
    for (const o of out.filter((x) => x.mmu !== 'shadow')) {
      expect(o.c(abi.MC_EXIT_CR3) + o.c(abi.MC_EXIT_PT_WRITE) + o.c(abi.MC_EXIT_SHADOW_PF)).toBe(0);
    }
  });

  it('zaps everything when the pool of shadow pages runs out, and the guest does not notice', () => {
    // Four shadow pages: one path (root, PDPT, PD, PT); the code's path needs two more.
    const { host, v, pt } = kernel('shadow', { shadowPages: 4 });
    expect(host.shadowRegion!.frames).toBe(4);
    host.writeGuest(0x1000, EDIT_PTE);
    const pte = entryGpa(host, pt.root, USER_GVA, 1);
    v.rip = 0x1000n; v.setReg(8, USER_GVA); v.setReg(9, BigInt(pte)); v.setReg(10, BigInt(PAGE_B) | 7n);
    expect(v.run(100)).toBe(abi.EXIT_HLT);
    expect(v.reg(0) & 0xffffffffn).toBe(0x11111111n);
    expect(v.reg(3) & 0xffffffffn).toBe(0x22222222n);
    expect(v.mmuCounter(abi.MC_SHADOW_ZAP_ALL)).toBeGreaterThan(0n);
  });

  it('emulates accessed and dirty bits: a read leaves the gpte clean and the spte read-only, the first write faults and sets D', () => {
    for (const mmu of MMU_MODES) {
      const { host, v, pt } = kernel(mmu);
      const pte = entryGpa(host, pt.root, USER_GVA, 1);
      host.writeGuest(0x1000, [0x49, 0x8b, 0x00, 0xf4, 0x49, 0x89, 0x00, 0xf4]); // mov rax, [r8]; hlt; mov [r8], rax; hlt
      v.rip = 0x1000n; v.setReg(8, USER_GVA);
      expect(v.run(100)).toBe(abi.EXIT_HLT);
      expect(readU64(host, pte) & 0x60n).toBe(0x20n); // A, not D
      const faults = v.mmuCounter(abi.MC_EXIT_SHADOW_PF);
      v.rip = 0x1004n;
      expect(v.run(100)).toBe(abi.EXIT_HLT);
      expect(readU64(host, pte) & 0x60n).toBe(0x60n);
      // Under shadow paging the write found a read-only spte: one more exit, which set D.
      expect(v.mmuCounter(abi.MC_EXIT_SHADOW_PF) - faults).toBe(mmu === 'shadow' ? 1n : 0n);
    }
  });

  it('drops the shadow of a guest page table that the host itself rewrites (no trap saw it)', () => {
    for (const mmu of MMU_MODES) {
      const { host, v, pte } = userPageRead(mmu);
      const e = new DataView(new ArrayBuffer(8));
      e.setBigUint64(0, BigInt(PAGE_B) | 7n, true);
      host.writeGuest(pte, new Uint8Array(e.buffer)); // as a device's DMA would
      expectRemapped(host, v, mmu);
    }
  });

  it('drops the shadow of a guest page table that a virtio device overwrites through the WebAssembly data path', () => {
    for (const mmu of MMU_MODES) {
      const { host, v, pte } = userPageRead(mmu);
      // One device-writable descriptor over the PTE: a disk read landing on a live page table.
      const table = 0x3000;
      const d = new DataView(new ArrayBuffer(16));
      d.setBigUint64(0, BigInt(pte), true); d.setUint32(8, 8, true); d.setUint16(12, 2, true);
      host.writeGuest(table, new Uint8Array(d.buffer));
      const dma = new WasmDma(host);
      expect(dma.walkChain(table, 1, 0, false).fault).toBeNull();
      new DataView(dma.staging(8).buffer, dma.staging(8).byteOffset, 8).setBigUint64(0, BigInt(PAGE_B) | 7n, true);
      dma.scatter(0, 1, 0, 8);
      expect(readU64(host, pte)).toBe(BigInt(PAGE_B) | 7n);
      expectRemapped(host, v, mmu);
    }
  });

  it('32-bit guest paging: quadrants of the 1024-entry tables, a trapped 4-byte PTE write, as in every mode', () => {
    const PD = 0x100000, PT = 0x101000, GVA = 0xc0300000; // PD index 768 (quadrant 3), PT index 768 (half 1)
    const out = MMU_MODES.map((mmu) => {
      const host = new Host({ ramBytes: 64 << 20, mmu, hostPageSize: '2m' });
      const v = host.vcpu(0);
      v.resetArchitectural();
      const w32 = (gpa: number, val: number) => host.view.setUint32(abi.HOST_POOL_BASE + gpa, val >>> 0, true);
      w32(PD, 0x83); // a 4 MiB page at 0: the code and the tables
      w32(PD + 768 * 4, PT | 7);
      w32(PT + 768 * 4, PAGE_A | 7);
      host.writeGuest(PAGE_A, [0x11, 0x11, 0x11, 0x11]);
      host.writeGuest(PAGE_B, [0x22, 0x22, 0x22, 0x22]);
      // mov eax, [ebx]; mov [ebx+8], eax; mov [esi], edi; invlpg [ebx]; mov ecx, [ebx]; hlt
      host.writeGuest(0x1000, [0x8b, 0x03, 0x89, 0x43, 0x08, 0x89, 0x3e, 0x0f, 0x01, 0x3b, 0x8b, 0x0b, 0xf4]);
      v.cr0 = 0x80010011n;
      v.setReg64(abi.ST_CR4, 0x10n); // PSE
      v.setReg64(abi.ST_CR3, BigInt(PD));
      v.setSegment(abi.SEG_CS, { base: 0n, limit: 0xffffffff, selector: 0x08, attr: 0xc09b });
      for (const sg of [abi.SEG_DS, abi.SEG_ES, abi.SEG_SS]) v.setSegment(sg, { base: 0n, limit: 0xffffffff, selector: 0x10, attr: 0xc093 });
      v.rip = 0x1000n; v.setReg(3, BigInt(GVA)); v.setReg(6, BigInt(PT + 768 * 4)); v.setReg(7, BigInt(PAGE_B | 7));
      v.resetMmuCounters();
      expect(v.run(100)).toBe(abi.EXIT_HLT);
      return { mmu, old: v.reg(0) & 0xffffffffn, now: v.reg(1) & 0xffffffffn, pte: host.view.getUint32(abi.HOST_POOL_BASE + PT + 768 * 4, true), v };
    });
    for (const o of out) {
      expect(o.old, o.mmu).toBe(0x11111111n);
      expect(o.now, o.mmu).toBe(0x22222222n);
      expect(o.pte, o.mmu).toBe(PAGE_B | 7 | 0x20);
    }
    const sh = out.find((o) => o.mmu === 'shadow')!.v;
    expect(sh.mmuCounter(abi.MC_EXIT_PT_WRITE)).toBe(1n);
    expect(sh.mmuCounter(abi.MC_SHADOW_SP_ALLOC)).toBeGreaterThanOrEqual(4n); // two upper levels, the PD quarter, the PT half
  });

  it('PAE guest paging: the shadow follows the PDPTE registers, reloaded by MOV CR3 and not by writes to the PDPT', () => {
    // The tables live in the second 2 MiB page, so the code's 2 MiB spte stays and nothing refaults
    // by chance after the CR3 load: only the PDPTE reload can send the walk to the new directory.
    const PDPT = 0x200000, PD1 = 0x201000, PD2 = 0x202000, PT1 = 0x203000, PT2 = 0x204000, GVA = 0x400000;
    const out = MMU_MODES.map((mmu) => {
      const host = new Host({ ramBytes: 64 << 20, mmu, hostPageSize: '2m' });
      const v = host.vcpu(0);
      v.resetArchitectural();
      const w64 = (gpa: number, val: number) => host.view.setBigUint64(abi.HOST_POOL_BASE + gpa, BigInt(val), true);
      w64(PDPT, PD1 | 1);
      for (const [pd, pt, page] of [[PD1, PT1, PAGE_A], [PD2, PT2, PAGE_B]]) {
        w64(pd, 0x83); // a 2 MiB page at 0: the code
        w64(pd + 8, 0x200083); // and one at 2 MiB: the tables
        w64(pd + 2 * 8, pt | 7);
        w64(pt, page | 7);
      }
      host.writeGuest(PAGE_A, [0x11, 0x11, 0x11, 0x11]);
      host.writeGuest(PAGE_B, [0x22, 0x22, 0x22, 0x22]);
      // mov eax, [ebx]; mov [esi], edi (PDPTE 0 -> PD2 in memory); invlpg [ebx]; mov ecx, [ebx];
      // mov edx, cr3; mov cr3, edx; mov ebp, [ebx]; hlt
      host.writeGuest(0x1000, [0x8b, 0x03, 0x89, 0x3e, 0x0f, 0x01, 0x3b, 0x8b, 0x0b, 0x0f, 0x20, 0xda, 0x0f, 0x22, 0xda, 0x8b, 0x2b, 0xf4]);
      v.setReg64(abi.ST_CR4, 0x20n); // PAE
      v.setReg64(abi.ST_CR3, BigInt(PDPT));
      v.setReg64(abi.ST_PDPTE, BigInt(PD1 | 1));
      v.cr0 = 0x80010011n;
      v.setSegment(abi.SEG_CS, { base: 0n, limit: 0xffffffff, selector: 0x08, attr: 0xc09b });
      for (const sg of [abi.SEG_DS, abi.SEG_ES, abi.SEG_SS]) v.setSegment(sg, { base: 0n, limit: 0xffffffff, selector: 0x10, attr: 0xc093 });
      v.rip = 0x1000n; v.setReg(3, BigInt(GVA)); v.setReg(6, BigInt(PDPT)); v.setReg(7, BigInt(PD2 | 1));
      expect(v.run(100)).toBe(abi.EXIT_HLT);
      const r = (i: number) => v.reg(i) & 0xffffffffn;
      return { mmu, first: r(0), afterInvlpg: r(1), afterCr3: r(5) };
    });
    for (const o of out) expect(o, o.mmu).toEqual({ mmu: o.mmu, first: 0x11111111n, afterInvlpg: 0x11111111n, afterCr3: 0x22222222n });
  });

  it('a guest page table pointing outside RAM reads the open bus, and never reaches host memory', () => {
    for (const mmu of MMU_MODES) {
      const { host, v, pt } = kernel(mmu);
      const pte = entryGpa(host, pt.root, USER_GVA, 1);
      host.view.setBigUint64(abi.HOST_POOL_BASE + pte, 0xff000000n | 7n, true); // 4 GiB - 16 MiB: nothing there
      host.writeGuest(0x1000, [0x49, 0x8b, 0x00, 0xf4]); // mov rax, [r8]; hlt
      v.rip = 0x1000n; v.setReg(8, USER_GVA);
      expect(v.run(100)).toBe(abi.EXIT_HLT);
      expect(v.reg(0)).toBe(0xffffffffffffffffn);
    }
  });
});
