// Builds 4-level IA-32e guest page tables (gva -> gpa) in guest RAM from the host side: what a
// guest kernel would have written, for `hvlab walk`, the MMU tests and benchmarks that need an
// address space without booting one (Intel SDM Vol. 3A, 4.5).
import type { Host } from '../machine/host.ts';
import type { GuestMemory } from '../machine/guest-memory.ts';
import type { PageSize } from '../hv/mm/nested-page-table.ts';

export const PTE_P = 0x1n, PTE_RW = 0x2n, PTE_US = 0x4n, PTE_PS = 0x80n, PTE_G = 0x100n;
export const PTE_XD = 0x8000000000000000n;
const LEAF_LEVEL: Record<PageSize, number> = { '4k': 1, '2m': 2, '1g': 3 };
const BYTES: Record<PageSize, number> = { '4k': 0x1000, '2m': 0x200000, '1g': 0x40000000 };

export class GuestPageTables {
  /** gpa of the PML4 (the guest's CR3). */
  readonly root: number;
  private nextFrame: number;
  private readonly memory: GuestMemory;
  private readonly tableBase: number;

  /** Tables are taken from guest-physical frames [tableBase, tableEnd) of the host's one guest. */
  constructor(host: Host, tableBase: number, private readonly tableEnd: number) {
    this.memory = host.vm0.memory;
    this.tableBase = tableBase;
    this.nextFrame = tableBase;
    this.root = this.allocate();
  }

  /** Bytes of guest memory the tables take. */
  get tableBytes(): number { return this.nextFrame - this.root; }

  private allocate(): number {
    if (this.nextFrame + 0x1000 > this.tableEnd) throw new Error('hvlab: no guest frame left for page tables');
    const gpa = this.nextFrame;
    this.nextFrame += 0x1000;
    this.memory.fill(gpa, 0x1000, 0);
    return gpa;
  }

  private entryAddr(table: number, gva: bigint, level: number): number {
    return table + Number((gva >> BigInt(12 + 9 * (level - 1))) & 511n) * 8;
  }
  private read(gpa: number): bigint { return this.memory.readU64(gpa); }
  private write(gpa: number, v: bigint): void { this.memory.writeU64Untracked(gpa, v); }

  /** Bytes of the page directories and page tables (levels 2 and 1) that map [gva, gva + bytes):
   *  the part of the footprint that grows with memory (the PML4 and PDPTs are a fixed cost). */
  tableBytesWithin(gva: bigint, bytes: number): number {
    const end = gva + BigInt(bytes);
    const count = (table: number, level: number, base: bigint): number => {
      let n = 0;
      const span = 1n << BigInt(12 + 9 * (level - 1));
      for (let i = 0; i < 512; i++) {
        const e = this.read(table + i * 8);
        if (!(e & PTE_P) || level === 1 || (e & PTE_PS)) continue;
        const start = base + BigInt(i) * span;
        if (start + span <= gva || start >= end) continue;
        n += (level - 1 <= 2 ? 1 : 0) + count(Number(e & 0x000ffffffffff000n), level - 1, start);
      }
      return n;
    };
    return count(this.root, 4, 0n) * 0x1000;
  }

  /** Map [gva, gva + bytes) to [gpa, ...) with `size` pages; `flags` go on every level (P added). */
  map(gva: bigint, gpa: number, bytes: number, size: PageSize = '4k', flags = PTE_RW | PTE_US): void {
    const step = BYTES[size];
    for (let off = 0; off < bytes; off += step) {
      let table = this.root;
      const va = gva + BigInt(off);
      for (let level = 4; level > LEAF_LEVEL[size]; level--) {
        const at = this.entryAddr(table, va, level);
        let e = this.read(at);
        if (!(e & PTE_P)) { e = BigInt(this.allocate()) | PTE_P | (flags & (PTE_RW | PTE_US)); this.write(at, e); }
        table = Number(e & 0x000ffffffffff000n);
      }
      const leaf = BigInt(gpa + off) | PTE_P | flags | (size === '4k' ? 0n : PTE_PS);
      this.write(this.entryAddr(table, va, LEAF_LEVEL[size]), leaf);
    }
    // Entries were written behind the vCPUs' backs: decoded code and, under --mmu shadow, the shadow
    // pages of the tables written go (the one untrapped-write entry of the core).
    this.memory.written(this.tableBase, this.nextFrame - this.tableBase);
  }
}
