// A guest address space for page-walk experiments (`hvlab walk`, `hvlab bench pagewalk`): a 64-bit
// guest whose working set of `workingSet` bytes at gva WORKING_SET_GVA is mapped with guest pages of
// one size, on a host backing guest RAM with pages of one size (or --mmu direct), and a tiny program
// that random-reads it. The tables are what a guest kernel would have built; the vCPU starts in
// 64-bit mode at the program.
import * as abi from '../../wasm/abi.ts';
import { Host, type MmuMode, type Vcpu } from '../machine/host.ts';
import { GuestPageTables, PTE_RW, PTE_US } from './guest-page-tables.ts';
import { PAGE_BYTES, type PageSize } from '../hv/mm/nested-page-table.ts';

/** Run a lab guest until it halts; returns the instructions it ran. Any other exit is an error. */
export function runToHlt(v: Vcpu, guest: string): number {
  let total = 0;
  for (;;) {
    const before = v.counter(abi.CNT_INSTRUCTIONS);
    const r = v.run(1_000_000);
    total += Number(v.counter(abi.CNT_INSTRUCTIONS) - before);
    if (r === abi.EXIT_HLT) return total;
    if (r !== abi.EXIT_BUDGET) throw new Error(`hvlab: ${guest} stopped with exit ${r} at 0x${v.exit().rip.toString(16)}`);
  }
}

export const WORKING_SET_GVA = 0x7f0000000000n; // a user-space address, aligned for every page size
const CODE_GPA = 0x1000;
const TABLES_GPA = 0x200000; // guest page tables: [2 MiB, 8 MiB)
const TABLES_END = 0x800000;
/** The working set's gpa: 1 GiB-aligned for every page size, apart from the low memory, so the
 *  tables that map it (in both dimensions) are its own and can be counted. */
export const WORKING_SET_GPA = 0x40000000;

// The random-read loop (nasm listing): rdi = working-set base, rsi = offset mask, rcx = loads,
// r8 = xorshift64 state. Each iteration: r8 ^= r8 << 13; r8 ^= r8 >> 7; r8 ^= r8 << 17;
// edx = [rdi + (r8 & rsi)]. Ends with HLT.
const RANDOM_READ_LOOP = [
  0x4c, 0x89, 0xc0, //       .loop: mov rax, r8
  0x48, 0xc1, 0xe0, 0x0d, //        shl rax, 13
  0x49, 0x31, 0xc0, //              xor r8, rax
  0x4c, 0x89, 0xc0, //              mov rax, r8
  0x48, 0xc1, 0xe8, 0x07, //        shr rax, 7
  0x49, 0x31, 0xc0, //              xor r8, rax
  0x4c, 0x89, 0xc0, //              mov rax, r8
  0x48, 0xc1, 0xe0, 0x11, //        shl rax, 17
  0x49, 0x31, 0xc0, //              xor r8, rax
  0x4c, 0x89, 0xc0, //              mov rax, r8
  0x48, 0x21, 0xf0, //              and rax, rsi
  0x8b, 0x14, 0x07, //              mov edx, [rdi + rax]
  0x48, 0xff, 0xc9, //              dec rcx
  0x75, 0xd4, //                    jnz .loop
  0xf4, //                          hlt
];

// The touch loop: one read per page, so that a shadow MMU has built every spte before a measurement
// (nasm listing): rdi = start, rsi = stride, rcx = pages.
const TOUCH_GPA = 0x1800;
const TOUCH_LOOP = [
  0x8b, 0x17, //                    .loop: mov edx, [rdi]
  0x48, 0x01, 0xf7, //                     add rdi, rsi
  0x48, 0xff, 0xc9, //                     dec rcx
  0x75, 0xf6, //                           jnz .loop
  0xf4, //                                 hlt
];

export interface LabOptions {
  mmu: MmuMode;
  guestPage: PageSize;
  hostPage: PageSize;
  /** Bytes of the working set (a power of two, at least one guest page). */
  workingSet: number;
}

export class PageWalkLab {
  readonly host: Host;
  readonly vcpu: Vcpu;
  readonly tables: GuestPageTables;
  /** Guest page-table bytes that map the working set, and the bytes mapped. */
  readonly guestTableBytes: number;
  readonly mappedBytes: number;

  constructor(readonly opts: LabOptions) {
    const ws = opts.workingSet;
    const pageBytes = PAGE_BYTES[opts.guestPage];
    if (ws & (ws - 1) || ws < 0x10000) throw new Error('hvlab: the working set must be a power of two of at least 64 KiB');
    const mapped = Math.max(ws, pageBytes);
    const wsGpa = WORKING_SET_GPA;
    const hostAlign = PAGE_BYTES[opts.hostPage];
    const ram = Math.ceil((wsGpa + mapped) / hostAlign) * hostAlign;
    this.host = new Host({ ramBytes: ram, mmu: opts.mmu, hostPageSize: opts.hostPage });
    this.vcpu = this.host.vcpu(0);
    const v = this.vcpu;
    v.resetArchitectural();
    this.tables = new GuestPageTables(this.host, TABLES_GPA, TABLES_END);
    this.tables.map(0n, 0, 0x200000, '2m', PTE_RW); // the program, identity-mapped
    this.tables.map(WORKING_SET_GVA, wsGpa, mapped, opts.guestPage, PTE_RW | PTE_US);
    this.guestTableBytes = this.tables.tableBytesWithin(WORKING_SET_GVA, mapped);
    this.mappedBytes = mapped;
    this.host.writeGuest(CODE_GPA, RANDOM_READ_LOOP);
    this.host.writeGuest(TOUCH_GPA, TOUCH_LOOP);
    v.cr0 = 0x80000011n;
    v.setReg64(abi.ST_CR4, 0x20n);
    v.setReg64(abi.ST_EFER, 0x500n);
    v.setReg64(abi.ST_CR3, BigInt(this.tables.root));
    v.setSegment(abi.SEG_CS, { base: 0n, limit: 0xffffffff, selector: 0x08, attr: 0xa09b });
    v.setSegment(abi.SEG_SS, { base: 0n, limit: 0xffffffff, selector: 0x10, attr: 0xc093 });
  }

  /** Random-read `loads` words of the first `bytes` of the working set; returns the instructions run. */
  randomReads(loads: number, bytes = this.opts.workingSet, seed = 0x9e3779b97f4a7c15n): number {
    const v = this.vcpu;
    v.rip = BigInt(CODE_GPA);
    v.setReg(7, WORKING_SET_GVA);
    v.setReg(6, BigInt(bytes - 1) & ~3n);
    v.setReg(1, BigInt(loads));
    v.setReg(8, seed);
    return this.runToHlt();
  }

  /** Read one word of every guest page of the working set (a shadow MMU then holds every spte). */
  touchAll(): number {
    const v = this.vcpu;
    const step = PAGE_BYTES[this.opts.guestPage];
    v.rip = BigInt(TOUCH_GPA);
    v.setReg(7, WORKING_SET_GVA);
    v.setReg(6, BigInt(Math.min(step, 0x1000)));
    v.setReg(1, BigInt(this.mappedBytes / Math.min(step, 0x1000)));
    return this.runToHlt();
  }

  private runToHlt(): number { return runToHlt(this.vcpu, 'the page-walk guest'); }

  /** Bytes of page tables per GiB of guest memory mapped, in each dimension (the shadow tables
   *  under --mmu shadow: as many as the guest has touched). */
  tableBytesPerGiB(): { guest: number; host: number; shadow: number } {
    const perGiB = 2 ** 30 / this.mappedBytes;
    const host = this.host.ept ? this.host.ept.tableBytesWithin(WORKING_SET_GPA, this.mappedBytes) : 0;
    const shadow = this.host.gpaMap ? shadowTableBytesWithin(this.host, WORKING_SET_GVA, this.mappedBytes) : 0;
    return { guest: this.guestTableBytes * perGiB, host: host * perGiB, shadow: shadow * perGiB };
  }
}

/** Bytes of the shadow page directories and page tables (levels 2 and 1) that map [gva, gva + bytes)
 *  in vCPU 0's current shadow table (sptes are x86-64 paging entries). */
export function shadowTableBytesWithin(host: Host, gva: bigint, bytes: number): number {
  const root = host.core.shadowRootHpa(0);
  if (root < 0) return 0;
  const start = Number(gva);
  const dv = host.view;
  const count = (table: number, level: number, base: number): number => {
    let n = 0;
    const childSpan = 2 ** (12 + 9 * (level - 1));
    for (let i = 0; i < 512; i++) {
      const e = dv.getBigUint64(abi.HOST_POOL_BASE + table + i * 8, true);
      if (!(e & 1n) || level === 1 || (e & 0x80n)) continue;
      const from = base + i * childSpan;
      if (from + childSpan <= start || from >= start + bytes) continue;
      n += (level - 1 <= 2 ? 1 : 0) + count(Number(e & 0x000ffffffffff000n), level - 1, from);
    }
    return n;
  };
  return count(root, 4, 0) * 0x1000;
}
