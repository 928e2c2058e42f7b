// A VM's guest-physical memory as the VMM sees it (Firecracker's GuestMemoryMmap, KVM's memslots
// and gfn_to_pfn): every loader, device and tool reads and writes guest RAM through this object,
// never at a fixed host offset. Under --mmu direct RAM is one contiguous run of the pool; otherwise
// each gfn has a frame of its own (the p2m array here mirrors the nested table the core walks), and
// with demand paging a gfn gets its frame on first touch — an EPT violation (or a shadow page
// fault) of the guest, or a write by the host or a device.
import * as abi from '../../wasm/abi.ts';
import { NestedPageTable, type PageSize, PAGE_BYTES } from '../hv/mm/nested-page-table.ts';
import { FramePool, FRAME_BYTES, OutOfHostMemory } from '../hv/mm/frame-pool.ts';
import type { SwapFile } from '../hv/mm/swap.ts';

export interface GuestMemoryHost {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  readonly pool: FramePool;
  readonly core: { hostWroteGuest(vm: number, gpa: number, bytes: number): void; invept(vm: number): void };
  /** Host swap (emu/hv/mm/swap.ts) and its reclaimer, when the host has them. */
  readonly swap?: SwapFile | null;
  /** Make room before VM `vm` takes a frame (reclaim under its limit or the pool's watermark). */
  makeRoom?(vm: number): void;
}

/** cgroup v2 memory.stat-style counters of one VM's RAM (the names Linux uses where it has one). */
export interface GuestMemoryCounters {
  /** First touches and refaults that got a frame (minor and major). */
  pgfault: number;
  /** Faults that read the page back from swap. */
  pgmajfault: number;
  /** Pages written to swap, and read back. */
  pswpout: number;
  pswpin: number;
  /** Reclaimed pages found all zero: dropped, never written (they refault as zeros). */
  zero_dropped: number;
  /** Reclaimed pages whose swap copy was still current: dropped without a write. */
  clean_dropped: number;
  /** Virtual ns vCPUs of this VM waited for swap-ins. */
  swapin_wait_ns: number;
}

const RWX = abi.EPT_R | abi.EPT_W | abi.EPT_X;

/** Counters of a VM that has touched nothing. */
export function noMemoryCounters(): GuestMemoryCounters {
  return { pgfault: 0, pgmajfault: 0, pswpout: 0, pswpin: 0, zero_dropped: 0, clean_dropped: 0, swapin_wait_ns: 0 };
}

export class GuestMemory {
  /** gfn -> host frame, -1 when the gfn has none yet (mapped modes). */
  private readonly p2m: Int32Array | null;
  /** Frames faulted in on first touch (demand paging). */
  demandFaults = 0;
  /** gfn -> its swap slot, -1 when none. A gfn with a frame and a slot has a clean copy in swap
   *  (as long as its EPT dirty flag stays clear and the host does not write it). */
  private readonly swapSlot: Int32Array | null;
  readonly counters: GuestMemoryCounters = noMemoryCounters();
  /** The virtual ns the last fault() waited for the swap device (0: no swap-in). */
  lastFaultNs = 0;

  constructor(
    private readonly host: GuestMemoryHost,
    readonly vm: number,
    readonly ramBytes: number,
    /** The VM's gpa -> hpa map (ept and shadow), null under --mmu direct. */
    readonly map: NestedPageTable | null,
    /** --mmu direct, or an eagerly backed mapped VM: hpa of gpa 0 (RAM is one run); else -1. */
    readonly contiguousHpa: number,
    readonly demand: boolean,
  ) {
    this.p2m = map ? new Int32Array(Math.ceil(ramBytes / FRAME_BYTES)).fill(-1) : null;
    this.swapSlot = map && demand ? new Int32Array(Math.ceil(ramBytes / FRAME_BYTES)).fill(-1) : null;
  }

  /** Map RAM eagerly to the contiguous run at contiguousHpa with `size` leaves (4 KiB at the tail). */
  mapContiguous(size: PageSize): void {
    if (!this.map || !this.p2m) return;
    const step = PAGE_BYTES[size];
    const big = this.ramBytes - (this.ramBytes % step);
    this.map.map(0, this.contiguousHpa, big, size);
    if (big < this.ramBytes) this.map.map(big, this.contiguousHpa + big, this.ramBytes - big, '4k');
    for (let g = 0; g < this.p2m.length; g++) this.p2m[g] = this.contiguousHpa / FRAME_BYTES + g;
  }

  /** The host frame of `gfn`, or -1. */
  frameOf(gfn: number): number {
    if (gfn < 0 || gfn * FRAME_BYTES >= this.ramBytes) return -1;
    return this.p2m ? this.p2m[gfn] : this.contiguousHpa / FRAME_BYTES + gfn;
  }

  /** Give `gfn` a frame of its own now: zeroed on first touch (or after its zero page was
   *  dropped), read back from swap if it is there (lastFaultNs says what that cost). Throws
   *  OutOfHostMemory. */
  fault(gfn: number): number {
    this.lastFaultNs = 0;
    const have = this.frameOf(gfn);
    if (have >= 0) return have;
    if (!this.p2m || !this.map || gfn * FRAME_BYTES >= this.ramBytes) throw new RangeError(`gfn 0x${gfn.toString(16)} is not guest RAM`);
    this.host.makeRoom?.(this.vm);
    const frame = this.host.pool.allocGuestFrame(this.vm, gfn);
    if (frame < 0) throw new OutOfHostMemory('the host pool is exhausted');
    const slot = this.swapSlot ? this.swapSlot[gfn] : -1;
    if (slot >= 0) {
      // A major fault: the page comes back; its slot stays, a clean copy until the page is written.
      const at = abi.HOST_POOL_BASE + frame * FRAME_BYTES;
      this.lastFaultNs = this.host.swap!.read(slot, this.host.bytes.subarray(at, at + FRAME_BYTES));
      this.counters.pgmajfault++;
      this.counters.pswpin++;
      this.counters.swapin_wait_ns += this.lastFaultNs;
    }
    this.map.map(gfn * FRAME_BYTES, frame * FRAME_BYTES, FRAME_BYTES, '4k', RWX);
    this.p2m[gfn] = frame;
    this.demandFaults++;
    this.counters.pgfault++;
    return frame;
  }

  /** The swap slot holding a copy of `gfn`, or -1. */
  slotOf(gfn: number): number { return this.swapSlot ? this.swapSlot[gfn] : -1; }

  /** Reclaim: `gfn` loses its frame (the caller unmaps the nested table's view with INVEPT before
   *  the frame is reused, and frees it). `slot`: where its contents now are (-1: it was all zero, or
   *  is dropped). */
  evict(gfn: number, slot: number): number {
    if (!this.p2m || !this.map || !this.swapSlot) throw new Error(`hvlab: guest memory of VM ${this.vm} cannot be reclaimed`);
    const frame = this.p2m[gfn];
    this.map.unmap(gfn * FRAME_BYTES, FRAME_BYTES);
    this.p2m[gfn] = -1;
    const old = this.swapSlot[gfn];
    if (old >= 0 && old !== slot) this.host.swap!.release(old);
    this.swapSlot[gfn] = slot;
    return frame;
  }

  /** The page of `gfn` changes behind the nested table's dirty flag (a host or device write): its
   *  swap copy is stale. */
  private dirtied(gfn: number): void {
    const slot = this.swapSlot ? this.swapSlot[gfn] : -1;
    if (slot < 0) return;
    this.host.swap!.release(slot);
    this.swapSlot![gfn] = -1;
  }

  /** Swap slots this VM holds (the pages out plus the clean copies of pages in). */
  get swapSlots(): number {
    if (!this.swapSlot) return 0;
    let n = 0;
    for (const s of this.swapSlot) if (s >= 0) n++;
    return n;
  }

  /** Pages out in swap now (no frame, a slot). */
  get swappedPages(): number {
    if (!this.swapSlot || !this.p2m) return 0;
    let n = 0;
    for (let g = 0; g < this.swapSlot.length; g++) if (this.swapSlot[g] >= 0 && this.p2m[g] < 0) n++;
    return n;
  }

  /** Host address (into `bytes`) of `gpa`, valid to the end of its page; -1 for an untouched gfn
   *  when `write` is false (it reads as zeros). */
  private hostAddress(gpa: number, write: boolean): number {
    const gfn = Math.floor(gpa / FRAME_BYTES);
    let frame = this.frameOf(gfn);
    if (frame < 0) {
      if (!write && this.slotOf(gfn) < 0) return -1;
      frame = this.fault(gfn);
    }
    if (write) this.dirtied(gfn);
    return abi.HOST_POOL_BASE + frame * FRAME_BYTES + (gpa % FRAME_BYTES);
  }

  /** The core's device path (wasm/mem/guest-memory.ts) met `gfn` without a frame: 1 when it has
   *  one now, 2 when a read may see the zero page (never touched, or its zero page was dropped). */
  deviceFault(gfn: number, write: boolean): number {
    if (!write && this.frameOf(gfn) < 0 && this.slotOf(gfn) < 0) return 2;
    this.fault(gfn);
    return 1;
  }

  private check(gpa: number, length: number, what: string): void {
    if (!(Number.isInteger(gpa) && gpa >= 0 && length >= 0 && gpa + length <= this.ramBytes)) {
      throw new RangeError(`hvlab: guest ${what} [0x${gpa.toString(16)}, +${length}) is outside guest RAM (${this.ramBytes >> 20} MiB)`);
    }
  }

  /** Visit [gpa, gpa + length) page by page: f(hostAddress or -1, offset into the range, bytes). */
  private pages(gpa: number, length: number, write: boolean, f: (at: number, off: number, n: number) => void): void {
    for (let off = 0; off < length;) {
      const a = gpa + off;
      const n = Math.min(FRAME_BYTES - (a % FRAME_BYTES), length - off);
      f(this.hostAddress(a, write), off, n);
      off += n;
    }
  }

  /** A copy of guest RAM [gpa, gpa + length) (untouched pages read as zeros). */
  read(gpa: number, length: number): Uint8Array {
    this.check(gpa, length, 'read');
    const out = new Uint8Array(length);
    const bytes = this.host.bytes;
    this.pages(gpa, length, false, (at, off, n) => { if (at >= 0) out.set(bytes.subarray(at, at + n), off); });
    return out;
  }

  /** Copy bytes into guest RAM at `gpa` (frames are mapped on first touch); decoded instructions and
   *  shadow pages of what changed are dropped (the write is not trapped). */
  write(gpa: number, data: ArrayLike<number>): void {
    this.check(gpa, data.length, 'write');
    const bytes = this.host.bytes;
    const src = data instanceof Uint8Array ? data : Uint8Array.from(data);
    this.pages(gpa, src.length, true, (at, off, n) => bytes.set(src.subarray(off, off + n), at));
    this.host.core.hostWroteGuest(this.vm, gpa, src.length);
  }

  /** Fill guest RAM [gpa, gpa + length) with `value`. Zeros into untouched gfns allocate nothing. */
  fill(gpa: number, length: number, value: number): void {
    this.check(gpa, length, 'fill');
    const bytes = this.host.bytes;
    const skipUntouched = value === 0 && this.demand;
    this.pages(gpa, length, !skipUntouched, (at, _off, n) => { if (at >= 0) bytes.fill(value, at, at + n); });
    if (skipUntouched) for (let g = Math.floor(gpa / FRAME_BYTES); g * FRAME_BYTES < gpa + length; g++) this.dirtied(g);
    this.host.core.hostWroteGuest(this.vm, gpa, length);
  }

  /** The u64 at `gpa` (8-byte aligned; an untouched gfn reads 0). */
  readU64(gpa: number): bigint {
    this.check(gpa, 8, 'read');
    const at = this.hostAddress(gpa, false);
    return at < 0 ? 0n : this.host.view.getBigUint64(at, true);
  }

  /** Store the u64 at `gpa` (8-byte aligned) without telling the core: batch writes, then call
   *  written() over what changed (as a DMA engine would, once per transfer). */
  writeU64Untracked(gpa: number, v: bigint): void {
    this.check(gpa, 8, 'write');
    this.host.view.setBigUint64(this.hostAddress(gpa, true), v, true);
  }

  /** The host wrote [gpa, gpa + length) behind the vCPUs' backs: decoded instructions and shadow
   *  pages of those gfns go. */
  written(gpa: number, length: number): void { this.host.core.hostWroteGuest(this.vm, gpa, length); }

  /** Guest RAM as one host byte array (offset = gpa), when it is one run of the pool. */
  contiguous(): Uint8Array | null {
    if (this.contiguousHpa < 0) return null;
    const at = abi.HOST_POOL_BASE + this.contiguousHpa;
    return this.host.bytes.subarray(at, at + this.ramBytes);
  }

  /** gfns that have a frame. */
  get mappedFrames(): number {
    if (!this.p2m) return Math.ceil(this.ramBytes / FRAME_BYTES);
    let n = 0;
    for (const f of this.p2m) if (f >= 0) n++;
    return n;
  }

  /** Every mapped gfn's frame is a guest frame of this VM recorded at that gfn, and the nested
   *  table the core walks says the same. Returns the problems. */
  checkInvariants(): string[] {
    const problems: string[] = [];
    if (!this.p2m || !this.map) return problems;
    const pool = this.host.pool;
    const slots = new Set<number>();
    for (let gfn = 0; gfn < this.p2m.length; gfn++) {
      const slot = this.swapSlot ? this.swapSlot[gfn] : -1;
      if (slot >= 0) {
        if (slots.has(slot)) problems.push(`vm ${this.vm} gfn 0x${gfn.toString(16)}: swap slot ${slot} is also another gfn's`);
        slots.add(slot);
      }
      const f = this.p2m[gfn];
      const t = this.map.translate(gfn * FRAME_BYTES);
      if (f < 0) { if (t) problems.push(`vm ${this.vm} gfn 0x${gfn.toString(16)}: unmapped here, mapped in the nested table`); continue; }
      if (!t || t.hpa !== f * FRAME_BYTES) problems.push(`vm ${this.vm} gfn 0x${gfn.toString(16)}: the nested table disagrees`);
      if (pool.owner(f) !== this.vm) problems.push(`vm ${this.vm} gfn 0x${gfn.toString(16)}: frame ${f} belongs to ${pool.owner(f)}`);
      if (pool.state(f) !== abi.FRAME_GUEST) problems.push(`vm ${this.vm} gfn 0x${gfn.toString(16)}: frame ${f} is in state ${pool.state(f)}`);
      else if (this.contiguousHpa < 0 && pool.gfn(f) !== gfn) problems.push(`vm ${this.vm} gfn 0x${gfn.toString(16)}: frame ${f} records gfn 0x${pool.gfn(f).toString(16)}`);
    }
    return problems;
  }

  /** Host frames this memory maps (for cross-VM checks). */
  *frames(): Generator<[gfn: number, frame: number]> {
    const n = Math.ceil(this.ramBytes / FRAME_BYTES);
    for (let gfn = 0; gfn < n; gfn++) { const f = this.frameOf(gfn); if (f >= 0) yield [gfn, f]; }
  }
}
