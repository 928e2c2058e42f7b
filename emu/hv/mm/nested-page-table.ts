// The host dimension's page table (gpa -> hpa) in the EPT format (Intel SDM Vol. 3C, 28.3.2), owned
// and edited by the host: map, unmap and protect ranges with 4 KiB, 2 MiB or 1 GiB leaves. Its
// tables live in host frames of the WebAssembly instance, where the core's 2D walk (wasm/mmu/ept.ts)
// reads them. Edits are rare host operations, so they are TypeScript; the walks are in WebAssembly.
// After editing, call `host.core.invept()` (the host does it in `commit`) so no vCPU keeps a stale
// translation (KVM's INVEPT).
import * as abi from '../../../wasm/abi.ts';

export type PageSize = '4k' | '2m' | '1g';
export const PAGE_BYTES: Record<PageSize, number> = { '4k': 0x1000, '2m': 0x200000, '1g': 0x40000000 };
const LEAF_LEVEL: Record<PageSize, number> = { '4k': 1, '2m': 2, '1g': 3 };
const RWX = abi.EPT_R | abi.EPT_W | abi.EPT_X;
const ADDR_MASK = 0x000ffffffffff000n;

/** Where a nested table gets its pages: zeroed 4 KiB host frames (hpa), charged to the VM that owns
 *  the table (emu/hv/mm/frame-pool.ts); `allocate` throws OutOfHostMemory when the pool is full. */
export interface TableFrameSource {
  allocate(): number;
  release(hpa: number): void;
}

export interface NestedTranslation { hpa: number; pageSize: PageSize; rights: number }

export class NestedPageTable {
  readonly root: number;
  private tables = 1;

  constructor(private readonly view: DataView, private readonly frames: TableFrameSource) {
    this.root = frames.allocate();
  }

  /** EPTP bit 6: the hardware walk keeps accessed and dirty flags in this table's entries. */
  accessDirty = false;

  /** The value of ST_EPTP that selects this table. */
  get eptp(): bigint { return BigInt(this.root) | BigInt(abi.EPTP_ENABLE) | (this.accessDirty ? BigInt(abi.EPTP_AD) : 0n); }

  /** The accessed and dirty flags of the leaf that maps `gpa` (null when unmapped). */
  accessedDirty(gpa: number): { accessed: boolean; dirty: boolean } | null {
    const at = this.leafAt(gpa);
    if (!at) return null;
    const e = this.entry(at.table, at.index);
    return { accessed: (e & BigInt(abi.EPT_ACCESSED)) !== 0n, dirty: (e & BigInt(abi.EPT_DIRTY)) !== 0n };
  }

  /** Clear the accessed (and with `dirty`, the dirty) flags of the leaves mapping [gpa, gpa + bytes);
   *  the caller then invalidates (INVEPT) so cached translations set them again on the next use. */
  clearAccessedDirty(gpa: number, bytes: number, dirty = false): void {
    const mask = BigInt(abi.EPT_ACCESSED) | (dirty ? BigInt(abi.EPT_DIRTY) : 0n);
    for (let off = 0; off < bytes; off += 0x1000) {
      const at = this.leafAt(gpa + off);
      if (!at) continue;
      const e = this.entry(at.table, at.index);
      if (e & mask) this.setEntry(at.table, at.index, e & ~mask);
    }
  }

  /** Where the present leaf mapping `gpa` is (any size), without changing the table. */
  private leafAt(gpa: number): { table: number; index: number } | null {
    let table = this.root;
    for (let level = 4; level >= 1; level--) {
      const index = NestedPageTable.index(gpa, level);
      const e = this.entry(table, index);
      if ((e & 7n) === 0n) return null;
      if (level === 1 || (level <= 3 && (e & BigInt(abi.EPT_LARGE)))) return { table, index };
      table = Number(e & ADDR_MASK);
    }
    return null;
  }

  /** Bytes of host memory taken by this table's pages. */
  get tableBytes(): number { return this.tables * 0x1000; }

  private entry(table: number, index: number): bigint {
    return this.view.getBigUint64(abi.HOST_POOL_BASE + table + index * 8, true);
  }
  private setEntry(table: number, index: number, v: bigint): void {
    this.view.setBigUint64(abi.HOST_POOL_BASE + table + index * 8, v, true);
  }
  private static index(gpa: number, level: number): number {
    return Math.floor(gpa / 2 ** (12 + 9 * (level - 1))) % 512;
  }

  /** Map [gpa, gpa + bytes) to [hpa, ...) with leaves of `size` and `rights` (EPT_R|W|X). A larger
   *  leaf in the way is split into smaller ones first, as KVM does when it must. */
  map(gpa: number, hpa: number, bytes: number, size: PageSize = '4k', rights = RWX): void {
    const step = PAGE_BYTES[size];
    if (gpa % step || hpa % step || bytes % step) {
      throw new Error(`hvlab: EPT map of 0x${gpa.toString(16)} -> 0x${hpa.toString(16)} (+0x${bytes.toString(16)}) is not ${size}-aligned`);
    }
    if ((rights & (abi.EPT_W | abi.EPT_R)) === abi.EPT_W) throw new Error('hvlab: an EPT entry cannot be writable without being readable');
    for (let off = 0; off < bytes; off += step) this.setLeaf(gpa + off, LEAF_LEVEL[size], BigInt(hpa + off), rights);
  }

  /** Remove the mappings of [gpa, gpa + bytes) at 4 KiB granularity (large leaves are split). */
  unmap(gpa: number, bytes: number): void {
    for (let off = 0; off < bytes; off += 0x1000) {
      const t = this.leafTable(gpa + off, 1, false);
      if (t) this.setEntry(t.table, NestedPageTable.index(gpa + off, t.level), 0n);
    }
  }

  /** Change the rights of mapped pages in [gpa, gpa + bytes) (splitting large leaves). */
  protect(gpa: number, bytes: number, rights: number): void {
    for (let off = 0; off < bytes; off += 0x1000) {
      const t = this.leafTable(gpa + off, 1, false);
      if (!t) continue;
      const i = NestedPageTable.index(gpa + off, t.level);
      const e = this.entry(t.table, i);
      if (e & BigInt(RWX)) this.setEntry(t.table, i, (e & ~BigInt(RWX)) | BigInt(rights));
    }
  }

  /** Bytes of the page directories and page tables (levels 2 and 1) that map [gpa, gpa + bytes):
   *  the part of the footprint that grows with memory (the PML4 and PDPTs are a fixed cost). */
  tableBytesWithin(gpa: number, bytes: number): number {
    const count = (table: number, level: number, base: number): number => {
      let n = 0;
      const childSpan = 2 ** (12 + 9 * (level - 1));
      for (let i = 0; i < 512; i++) {
        const e = this.entry(table, i);
        if ((e & 7n) === 0n || level === 1 || (e & BigInt(abi.EPT_LARGE))) continue;
        const start = base + i * childSpan;
        if (start + childSpan <= gpa || start >= gpa + bytes) continue;
        n += (level - 1 <= 2 ? 1 : 0) + count(Number(e & ADDR_MASK), level - 1, start);
      }
      return n;
    };
    return count(this.root, 4, 0) * 0x1000;
  }

  /** The host's own view of a gpa (the same walk as the core's, without accounting). */
  translate(gpa: number): NestedTranslation | null {
    let table = this.root;
    let rights = RWX;
    for (let level = 4; level >= 1; level--) {
      const e = this.entry(table, NestedPageTable.index(gpa, level));
      rights &= Number(e & 7n);
      if ((e & 7n) === 0n) return null;
      if (level === 1 || (level <= 3 && (e & BigInt(abi.EPT_LARGE)))) {
        const bytes = 2 ** (12 + 9 * (level - 1));
        const frame = Number(e & ADDR_MASK) - (Number(e & ADDR_MASK) % bytes);
        return { hpa: frame + (gpa % bytes), pageSize: level === 1 ? '4k' : level === 2 ? '2m' : '1g', rights };
      }
      table = Number(e & ADDR_MASK);
    }
    return null;
  }

  private setLeaf(gpa: number, level: number, hpa: bigint, rights: number): void {
    const t = this.leafTable(gpa, level, true)!;
    const i = NestedPageTable.index(gpa, level);
    const old = this.entry(t.table, i);
    if (level > 1 && (old & 7n) && !(old & BigInt(abi.EPT_LARGE))) this.freeTable(Number(old & ADDR_MASK), level - 1);
    const large = level > 1 ? BigInt(abi.EPT_LARGE) : 0n;
    this.setEntry(t.table, i, hpa | large | BigInt(abi.EPT_MEMTYPE_WB) | BigInt(rights));
  }

  /** The table holding the entry for gpa at `level` (creating or splitting on the way when
   *  `create`); for lookups, stops early at a large leaf (then `level` says where it is). */
  private leafTable(gpa: number, level: number, create: boolean): { table: number; level: number } | null {
    let table = this.root;
    for (let l = 4; l > level; l--) {
      const i = NestedPageTable.index(gpa, l);
      let e = this.entry(table, i);
      if ((e & 7n) === 0n) {
        if (!create) return null;
        const next = this.frames.allocate();
        this.tables++;
        e = BigInt(next) | BigInt(RWX);
        this.setEntry(table, i, e);
      } else if (e & BigInt(abi.EPT_LARGE)) {
        if (!create && level === 1) {
          this.split(table, i, l); // unmap/protect at 4 KiB granularity inside a large page
          e = this.entry(table, i);
        } else if (!create) {
          return { table, level: l };
        } else {
          this.split(table, i, l);
          e = this.entry(table, i);
        }
      }
      table = Number(e & ADDR_MASK);
    }
    return { table, level };
  }

  /** Replace the large leaf at table[i] (level l) with a table of 512 leaves one level down. */
  private split(table: number, i: number, l: number): void {
    const e = this.entry(table, i);
    const next = this.frames.allocate();
    this.tables++;
    const childBytes = 2 ** (12 + 9 * (l - 2));
    const base = e & ADDR_MASK;
    const low = e & 0x7fn & ~BigInt(abi.EPT_LARGE); // rights and memory type
    for (let k = 0; k < 512; k++) {
      this.setEntry(next, k, (base + BigInt(k * childBytes)) | low | (l - 1 > 1 ? BigInt(abi.EPT_LARGE) : 0n));
    }
    this.setEntry(table, i, BigInt(next) | BigInt(RWX));
  }

  private freeTable(table: number, level: number): void {
    if (level > 1) {
      for (let k = 0; k < 512; k++) {
        const e = this.entry(table, k);
        if ((e & 7n) && !(e & BigInt(abi.EPT_LARGE))) this.freeTable(Number(e & ADDR_MASK), level - 1);
      }
    }
    this.frames.release(table);
    this.tables--;
  }
}
