// The host frame pool: the host's "physical RAM", 4 KiB frames from HOST_POOL_BASE, and the frame
// table that describes each of them (wasm/abi.ts FRAME_*: state, owner VM, gfn, reference count,
// reverse-map link). Mechanism and policy meet here: the table lives in the core's memory, where the
// core (and a later dedup or swap pass) can read it; which frame a VM gets is decided here.
//
// Allocation keeps 2 MiB-aligned free runs available for large pages, as FreeBSD's superpage
// reservations do: the first touch of a guest 2 MiB region reserves a whole free 2 MiB block for
// it, and the region's frames are handed out in place (gfn & 511 = frame & 511), so a fully
// populated region can later be mapped by one 2 MiB leaf without moving anything. Host tables take
// loose frames first. When no free block is left, loose free frames and finally the unused frames
// of other reservations are taken (the reservation is broken, not the guest).
import * as abi from '../../../wasm/abi.ts';

export const FRAME_BYTES = 0x1000;
const BLOCK_FRAMES = 512;

export type FrameState = 'free' | 'guest' | 'nested-table' | 'shadow' | 'rom' | 'reserved';
export const FRAME_STATE_NAME: Record<number, FrameState> = {
  [abi.FRAME_FREE]: 'free', [abi.FRAME_GUEST]: 'guest', [abi.FRAME_NESTED_TABLE]: 'nested-table',
  [abi.FRAME_SHADOW]: 'shadow', [abi.FRAME_ROM]: 'rom', [abi.FRAME_RESERVED]: 'reserved',
};

/** The host has no frame left for what was asked. */
export class OutOfHostMemory extends Error {}

export interface PoolStats {
  poolBytes: number;
  usedBytes: number;
  freeBytes: number;
  /** Free frames held in reservations (counted in freeBytes: any VM may still take them). */
  reservedBytes: number;
  freeBlocks: number;
  byState: Record<FrameState, number>;
}

export class FramePool {
  readonly frames: number;
  readonly blocks: number;
  /** Frames of each owner by state (index owner + 1). */
  private readonly charged = new Map<number, Int32Array>();
  private readonly stateCount = new Int32Array(abi.FRAME_STATE_NAMES);
  /** Reservations: key owner * 2^32 + guest 2 MiB region -> pool block. */
  private readonly reservations = new Map<number, number>();
  /** Frames free in each block (FREE or RESERVED). */
  private readonly blockFree: Int32Array;
  /** Frames that have held data since the pool was made: only they need zeroing when handed out
   *  again (the core's fresh memory is zero, and touching it would make the host back it). */
  private readonly used: Uint8Array;
  private looseCursor = 0;
  private stealCursor = 0;

  /** `view` must cover the core's memory; the table goes at linear address `tableAt`. The core
   *  hears of every frame handed out again (`rewritten`): decoded code from it must go. */
  constructor(private readonly view: DataView, readonly poolBytes: number, readonly tableAt: number,
    private readonly rewritten: (frame: number) => void = () => {}) {
    if (poolBytes % (BLOCK_FRAMES * FRAME_BYTES) !== 0) throw new Error(`hvlab: the host pool must be a multiple of 2 MiB (got ${poolBytes})`);
    this.frames = poolBytes / FRAME_BYTES;
    this.blocks = this.frames / BLOCK_FRAMES;
    this.blockFree = new Int32Array(this.blocks).fill(BLOCK_FRAMES);
    this.used = new Uint8Array(this.frames);
    new Uint8Array(view.buffer, tableAt, this.frames * abi.FRAME_ENTRY_SIZE).fill(0);
    this.stateCount[abi.FRAME_FREE] = this.frames;
    view.setBigUint64(abi.HOST_POOL_BYTES, BigInt(poolBytes), true);
    view.setBigUint64(abi.HOST_FRAME_TABLE, BigInt(tableAt), true);
    view.setUint32(abi.HOST_FRAME_COUNT, this.frames, true);
  }

  private at(frame: number): number { return this.tableAt + frame * abi.FRAME_ENTRY_SIZE; }
  state(frame: number): number { return this.view.getUint8(this.at(frame) + abi.FRAME_STATE); }
  owner(frame: number): number { return this.view.getUint16(this.at(frame) + abi.FRAME_OWNER, true) - 1; }
  gfn(frame: number): number { return this.view.getUint32(this.at(frame) + abi.FRAME_GFN, true); }
  refcount(frame: number): number { return this.view.getUint32(this.at(frame) + abi.FRAME_REFCOUNT, true); }

  private set(frame: number, state: number, owner: number, gfn: number, refcount: number): void {
    const old = this.state(frame), oldOwner = this.owner(frame);
    const e = this.at(frame);
    this.view.setUint8(e + abi.FRAME_STATE, state);
    this.view.setUint16(e + abi.FRAME_OWNER, state === abi.FRAME_FREE ? 0 : owner + 1, true);
    this.view.setUint32(e + abi.FRAME_GFN, gfn >>> 0, true);
    this.view.setUint32(e + abi.FRAME_REFCOUNT, refcount, true);
    this.view.setUint32(e + abi.FRAME_RMAP_NEXT, 0, true);
    this.stateCount[old]--; this.stateCount[state]++;
    if (old !== abi.FRAME_FREE) this.chargeOf(oldOwner)[old]--;
    if (state !== abi.FRAME_FREE) this.chargeOf(owner)[state]++;
    const wasFree = old === abi.FRAME_FREE || old === abi.FRAME_RESERVED;
    const isFree = state === abi.FRAME_FREE || state === abi.FRAME_RESERVED;
    if (wasFree !== isFree) this.blockFree[Math.floor(frame / BLOCK_FRAMES)] += isFree ? 1 : -1;
  }

  private chargeOf(owner: number): Int32Array {
    let c = this.charged.get(owner);
    if (!c) { c = new Int32Array(abi.FRAME_STATE_NAMES); this.charged.set(owner, c); }
    return c;
  }

  private zero(frame: number, count = 1): void {
    for (let f = frame; f < frame + count; f++) {
      if (this.used[f]) {
        new Uint8Array(this.view.buffer, abi.HOST_POOL_BASE + f * FRAME_BYTES, FRAME_BYTES).fill(0);
        this.rewritten(f);
      }
      this.used[f] = 1;
    }
  }

  /** A free block (all 512 frames FREE), or -1. */
  private freeBlock(): number {
    for (let b = 0; b < this.blocks; b++) {
      if (this.blockFree[b] === BLOCK_FRAMES && this.state(b * BLOCK_FRAMES) === abi.FRAME_FREE
        && this.blockWhollyFree(b)) return b;
    }
    return -1;
  }
  private blockWhollyFree(b: number): boolean {
    for (let f = b * BLOCK_FRAMES; f < (b + 1) * BLOCK_FRAMES; f++) if (this.state(f) !== abi.FRAME_FREE) return false;
    return true;
  }

  /** A FREE frame outside wholly free blocks when there is one (keeps 2 MiB runs whole), else any
   *  FREE frame, else an unused frame of a reservation (breaking it); -1 when the pool is full. */
  private looseFrame(): number {
    for (let pass = 0; pass < 2; pass++) {
      for (let i = 0; i < this.frames; i++) {
        const f = (this.looseCursor + i) % this.frames;
        if (this.state(f) !== abi.FRAME_FREE) continue;
        const b = Math.floor(f / BLOCK_FRAMES);
        if (pass === 0 && this.blockFree[b] === BLOCK_FRAMES) { i += BLOCK_FRAMES - 1 - (f % BLOCK_FRAMES); continue; }
        this.looseCursor = f;
        return f;
      }
    }
    for (let i = 0; i < this.frames; i++) {
      const f = (this.stealCursor + i) % this.frames;
      if (this.state(f) === abi.FRAME_RESERVED) { this.stealCursor = f; return f; }
    }
    return -1;
  }

  /** A zeroed frame for guest RAM of `owner` at `gfn`; -1 when the pool is exhausted. */
  allocGuestFrame(owner: number, gfn: number): number {
    const key = owner * 2 ** 32 + Math.floor(gfn / BLOCK_FRAMES);
    let block = this.reservations.get(key);
    let frame = -1;
    if (block !== undefined) {
      const f = block * BLOCK_FRAMES + (gfn % BLOCK_FRAMES);
      if (this.state(f) === abi.FRAME_RESERVED && this.owner(f) === owner) frame = f;
    } else if ((block = this.freeBlock()) >= 0) {
      this.reservations.set(key, block);
      for (let f = block * BLOCK_FRAMES; f < (block + 1) * BLOCK_FRAMES; f++) this.set(f, abi.FRAME_RESERVED, owner, 0, 0);
      frame = block * BLOCK_FRAMES + (gfn % BLOCK_FRAMES);
    }
    if (frame < 0) frame = this.looseFrame();
    if (frame < 0) return -1;
    this.set(frame, abi.FRAME_GUEST, owner, gfn, 1);
    this.zero(frame);
    return frame;
  }

  /** A zeroed frame for a host table of `owner` (its nested page table); -1 when exhausted. */
  allocTableFrame(owner: number): number {
    const frame = this.looseFrame();
    if (frame < 0) return -1;
    this.set(frame, abi.FRAME_NESTED_TABLE, owner, 0, 1);
    this.zero(frame);
    return frame;
  }

  /** `count` contiguous zeroed frames in `state` for `owner`, the first aligned to `align` frames
   *  (first fit); throws OutOfHostMemory when no such run is free. gfn of guest frames: first + i. */
  allocContiguous(owner: number, count: number, state: number, align = 1, firstGfn = 0): number {
    for (let start = 0; start + count <= this.frames; start += align) {
      let ok = true;
      for (let f = start; f < start + count; f++) {
        if (this.state(f) !== abi.FRAME_FREE) { ok = false; start = Math.ceil((f + 1) / align) * align - align; break; }
      }
      if (!ok) continue;
      // FREE -> state for the whole run at once (the table entries, then the counters).
      const dv = this.view;
      for (let i = 0; i < count; i++) {
        const e = this.at(start + i);
        dv.setUint8(e + abi.FRAME_STATE, state);
        dv.setUint16(e + abi.FRAME_OWNER, owner + 1, true);
        dv.setUint32(e + abi.FRAME_GFN, state === abi.FRAME_GUEST ? firstGfn + i : 0, true);
        dv.setUint32(e + abi.FRAME_REFCOUNT, 1, true);
      }
      this.stateCount[abi.FRAME_FREE] -= count; this.stateCount[state] += count;
      this.chargeOf(owner)[state] += count;
      for (let b = Math.floor(start / BLOCK_FRAMES); b <= Math.floor((start + count - 1) / BLOCK_FRAMES); b++) {
        const lo = Math.max(start, b * BLOCK_FRAMES), hi = Math.min(start + count, (b + 1) * BLOCK_FRAMES);
        this.blockFree[b] -= hi - lo;
      }
      this.zero(start, count);
      return start;
    }
    throw new OutOfHostMemory(`no ${count * 4} KiB contiguous run free in the host pool`);
  }

  /** Give frame back (its reservation, if any, keeps it for its region). */
  free(frame: number): void { this.set(frame, abi.FRAME_FREE, 0, 0, 0); }

  /** Every frame `owner` holds or has reserved goes back to the pool (a VM ended). */
  releaseOwner(owner: number): void {
    for (let f = 0; f < this.frames; f++) {
      if (this.state(f) !== abi.FRAME_FREE && this.owner(f) === owner) this.set(f, abi.FRAME_FREE, 0, 0, 0);
    }
    for (const k of [...this.reservations.keys()]) if (Math.floor(k / 2 ** 32) === owner) this.reservations.delete(k);
  }

  /** Frames `owner` holds in `state` (reserved-but-unused frames are not charged as used). */
  held(owner: number, state: number): number { return this.charged.get(owner)?.[state] ?? 0; }
  /** Frames charged to `owner`: everything but its unused reserved frames. */
  charged4k(owner: number): number {
    const c = this.charged.get(owner);
    if (!c) return 0;
    let n = 0;
    for (let s = 0; s < c.length; s++) if (s !== abi.FRAME_RESERVED && s !== abi.FRAME_FREE) n += c[s];
    return n;
  }

  /** Frames any VM may still take (free, and reserved but unused). */
  get freeFrames(): number { return this.stateCount[abi.FRAME_FREE] + this.stateCount[abi.FRAME_RESERVED]; }

  stats(): PoolStats {
    const byState = {} as Record<FrameState, number>;
    for (let s = 0; s < abi.FRAME_STATE_NAMES; s++) byState[FRAME_STATE_NAME[s]] = this.stateCount[s] * FRAME_BYTES;
    const free = this.stateCount[abi.FRAME_FREE] + this.stateCount[abi.FRAME_RESERVED];
    let freeBlocks = 0;
    for (let b = 0; b < this.blocks; b++) if (this.blockFree[b] === BLOCK_FRAMES && this.blockWhollyFree(b)) freeBlocks++;
    return { poolBytes: this.poolBytes, usedBytes: (this.frames - free) * FRAME_BYTES, freeBytes: free * FRAME_BYTES,
      reservedBytes: this.stateCount[abi.FRAME_RESERVED] * FRAME_BYTES, freeBlocks, byState };
  }

  /** Recount the table: the counters agree with it and free + used = pool. Returns the problems. */
  checkInvariants(): string[] {
    const problems: string[] = [];
    const count = new Int32Array(abi.FRAME_STATE_NAMES);
    const perOwner = new Map<number, Int32Array>();
    for (let f = 0; f < this.frames; f++) {
      const s = this.state(f);
      if (s >= abi.FRAME_STATE_NAMES) { problems.push(`frame ${f}: state ${s} is not a frame state`); continue; }
      count[s]++;
      if (s === abi.FRAME_FREE) { if (this.owner(f) !== -1) problems.push(`frame ${f}: free but owned by ${this.owner(f)}`); continue; }
      let c = perOwner.get(this.owner(f));
      if (!c) { c = new Int32Array(abi.FRAME_STATE_NAMES); perOwner.set(this.owner(f), c); }
      c[s]++;
    }
    for (let s = 0; s < count.length; s++) {
      if (count[s] !== this.stateCount[s]) problems.push(`${FRAME_STATE_NAME[s]} frames: table ${count[s]}, counter ${this.stateCount[s]}`);
    }
    let total = 0;
    for (const n of count) total += n;
    if (total !== this.frames) problems.push(`free + used = ${total} frames, the pool has ${this.frames}`);
    for (const [owner, c] of this.charged) {
      const t = perOwner.get(owner);
      for (let s = 1; s < c.length; s++) if (c[s] !== (t?.[s] ?? 0)) problems.push(`owner ${owner} ${FRAME_STATE_NAME[s]}: table ${t?.[s] ?? 0}, counter ${c[s]}`);
    }
    return problems;
  }
}
