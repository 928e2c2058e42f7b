// Host memory reclaim: when the pool runs low (below the low watermark of free frames) or a guest
// reaches its container's memory.max, frames of guest RAM are taken back and their pages go to swap
// — or nowhere, when nothing needs saving:
//  - a page that is all zeros is dropped and refaults as zeros (the talk's "don't swap out zeroed
//    pages"; counted as zero_dropped);
//  - a page whose copy in swap is still current — swapped in, not written since (its EPT dirty flag
//    clear, no host or device write) — is dropped without a write (clean_dropped);
//  - anything else is written to a swap slot, batched (pswpout).
// Which pages: a clock (second chance) over the host's frames in frame order, one hand for the
// whole host as Linux's LRU is per node: a frame whose EPT accessed flag is set gets its flag
// cleared and is passed over; one found with the flag clear has not been used for a whole turn of
// the hand and goes. Cleared flags only come back after the VM's cached translations are dropped,
// so every pass ends with INVEPT for the VMs it touched (SDM Vol. 3C, 28.3.5 and 28.4.3.1) — the
// same INVEPT that makes the unmapped frames safe to hand to another VM.
//
// Containers (cgroup v2): memory.max bounds the host frames charged to a VM (guest RAM, nested
// tables, ROM); a VM at its max reclaims from itself before it takes another frame. memory.low
// protects: global reclaim passes over a VM at or under its low while any other VM has frames to
// give (as mem_cgroup_below_low: the protection only yields when nothing else can be reclaimed).
import * as abi from '../../../wasm/abi.ts';
import type { FramePool } from './frame-pool.ts';
import { FRAME_BYTES } from './frame-pool.ts';
import type { NestedPageTable } from './nested-page-table.ts';
import type { SwapFile } from './swap.ts';
import type { GuestMemory } from '../../machine/guest-memory.ts';

/** What the reclaimer needs of a VM. */
export interface ReclaimableVm {
  readonly index: number;
  readonly memory: GuestMemory;
  /** The nested table with A/D flags (null: the VM's frames cannot be reclaimed). */
  readonly reclaimMap: NestedPageTable | null;
  readonly limits: MemoryLimits;
  /** Host frames charged to it now. */
  chargedFrames(): number;
  /** INVEPT for the VM. */
  commitNestedMappings(): void;
  readonly destroyed: boolean;
}

/** cgroup v2 knobs of a VM's memory container, in bytes (Infinity / 0: none). */
export interface MemoryLimits {
  /** Hard: above it the VM reclaims from itself, and when nothing can go it is out of memory. */
  max: number;
  /** Soft: above it the VM reclaims from itself before each new frame, but is never stopped. */
  high: number;
  low: number;
  /** Swap slots the VM may hold (swap.max). */
  swapMax: number;
}

/** The VM is at its memory.max and nothing of it can be reclaimed. */
export class ContainerOutOfMemory extends Error {}

export interface ReclaimStats {
  /** Passes of the reclaimer, frames it freed, frames it looked at, INVEPTs it caused. */
  passes: number;
  reclaimed: number;
  scanned: number;
  invepts: number;
  low_watermark_frames: number;
  high_watermark_frames: number;
}

/** Frames reclaimed per pass at most (amortizes the INVEPT; Linux's SWAP_CLUSTER_MAX is 32 pages per
 *  batch with many batches per kswapd run). */
export const RECLAIM_BATCH = 256;

export class Reclaimer {
  private hand = 0;
  private words: Uint32Array;
  readonly stats: ReclaimStats;

  /** `naive`: every reclaimed page is written to swap, zero or clean alike (the baseline the
   *  overcommit bench compares against: a swapper that knows nothing of page contents). */
  constructor(private readonly pool: FramePool, private readonly bytes: () => Uint8Array, private readonly vms: () => readonly ReclaimableVm[],
    readonly swap: SwapFile | null, watermarks?: { low: number; high: number }, readonly naive = false) {
    const low = watermarks?.low ?? Math.max(64, Math.floor(pool.frames / 100));
    const high = watermarks?.high ?? Math.max(low + RECLAIM_BATCH / 2, low * 2);
    this.stats = { passes: 0, reclaimed: 0, scanned: 0, invepts: 0, low_watermark_frames: low, high_watermark_frames: high };
    this.words = new Uint32Array(bytes().buffer);
  }

  /** Before VM `vm` takes a frame: reclaim from it above its memory.high or at its memory.max
   *  (throws ContainerOutOfMemory when it is at its max and nothing of it can go), and from the host
   *  below the low watermark (up to the high one). */
  makeRoom(vm: number): void {
    const v = this.vms()[vm];
    if (v) {
      const limit = Math.min(v.limits.max, v.limits.high);
      if (limit !== Infinity && (v.chargedFrames() + 1) * FRAME_BYTES > limit) {
        const over = v.chargedFrames() + 1 - Math.floor(limit / FRAME_BYTES);
        this.reclaim(Math.min(RECLAIM_BATCH, Math.max(64, over)), vm);
        if ((v.chargedFrames() + 1) * FRAME_BYTES > v.limits.max) {
          throw new ContainerOutOfMemory(`memory.max ${Math.round(v.limits.max / 2 ** 20)} MiB reached and nothing of it can be reclaimed${this.swap ? '' : ' (no swap)'}`);
        }
      }
    }
    const free = this.pool.freeFrames;
    if (free < this.stats.low_watermark_frames) this.reclaim(Math.min(RECLAIM_BATCH, this.stats.high_watermark_frames - free));
  }

  /** Take up to `want` guest frames back (only `owner`'s when given); returns how many were freed. */
  reclaim(want: number, owner?: number): number {
    if (want <= 0) return 0;
    this.stats.passes++;
    const vms = this.vms();
    // Protected VMs are passed over in the first sweep, and only then taken from.
    let freed = this.sweep(want, vms, owner, true);
    if (freed < want && owner === undefined) freed += this.sweep(want - freed, vms, owner, false);
    return freed;
  }

  private protectedVm(v: ReclaimableVm): boolean { return v.limits.low > 0 && v.chargedFrames() * FRAME_BYTES <= v.limits.low; }

  /** Two turns of the hand at most (the first may only clear accessed flags). */
  private sweep(want: number, vms: readonly ReclaimableVm[], owner: number | undefined, honourLow: boolean): number {
    const pool = this.pool;
    const touched = new Set<ReclaimableVm>();
    const victims: Array<{ vm: ReclaimableVm; gfn: number; frame: number; dirty: boolean }> = [];
    const limit = pool.frames * 2;
    if (this.words.buffer !== this.bytes().buffer) this.words = new Uint32Array(this.bytes().buffer);
    for (let scanned = 0; scanned < limit && victims.length < want; scanned++) {
      const f = this.hand;
      this.hand = (this.hand + 1) % pool.frames;
      if (pool.state(f) !== abi.FRAME_GUEST) continue;
      const o = pool.owner(f);
      if (owner !== undefined && o !== owner) continue;
      const vm = vms[o];
      if (!vm || vm.destroyed || !vm.reclaimMap) continue;
      if (honourLow && owner === undefined && this.protectedVm(vm)) continue;
      this.stats.scanned++;
      const gfn = pool.gfn(f);
      const gpa = gfn * FRAME_BYTES;
      const ad = vm.reclaimMap.accessedDirty(gpa);
      if (!ad) continue;
      if (ad.accessed) {
        // Second chance: clear the flag (keep dirty), and look again next turn.
        vm.reclaimMap.clearAccessedDirty(gpa, FRAME_BYTES, false);
        touched.add(vm);
        continue;
      }
      victims.push({ vm, gfn, frame: f, dirty: ad.dirty });
    }
    const freedFrames: number[] = [];
    for (const v of victims) {
      const c = v.vm.memory.counters;
      const slot = v.vm.memory.slotOf(v.gfn);
      let keep: number;
      if (!this.naive && this.isZero(v.frame)) { keep = -1; c.zero_dropped++; } else if (!this.naive && slot >= 0 && !v.dirty) { keep = slot; c.clean_dropped++; } else {
        const mayTake = this.swap && (this.swap.slotsOf(v.vm.index) + 1) * FRAME_BYTES <= v.vm.limits.swapMax;
        keep = slot >= 0 ? slot : mayTake ? this.swap!.allocate(v.vm.index) : -1;
        if (keep < 0) continue; // no swap (or it is full): the page stays
        const at = abi.HOST_POOL_BASE + v.frame * FRAME_BYTES;
        this.swap!.queueWrite(keep, this.bytes().subarray(at, at + FRAME_BYTES));
        c.pswpout++;
      }
      v.vm.memory.evict(v.gfn, keep);
      touched.add(v.vm);
      freedFrames.push(v.frame);
    }
    this.swap?.flush();
    // No vCPU may keep a translation to a frame before it is handed out again.
    for (const vm of touched) { vm.commitNestedMappings(); this.stats.invepts++; }
    for (const f of freedFrames) pool.free(f);
    this.stats.reclaimed += freedFrames.length;
    return freedFrames.length;
  }

  private isZero(frame: number): boolean {
    const w = this.words, first = (abi.HOST_POOL_BASE + frame * FRAME_BYTES) >>> 2;
    for (let i = first; i < first + FRAME_BYTES / 4; i++) if (w[i] !== 0) return false;
    return true;
  }
}
