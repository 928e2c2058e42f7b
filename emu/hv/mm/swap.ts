// Host swap: a real file of 4 KiB slots that guest pages go to when the host reclaims their frames,
// and a device model that says what moving them costs in virtual time (so a guest sees what
// swapping costs, as it would on a host whose swap is a disk: latency per request plus transfer
// time at the device's bandwidth). Writes are batched: the reclaimer queues pages and `flush`
// writes runs of adjacent slots with one positioned write each, as Linux's swap writeback clusters
// pages (mm/swapfile.c allocates slots in clusters so writeback is sequential).
//
// Every slot belongs to one owner (a VM index) while allocated: the ledger of swap space.
import { closeSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';

export const SLOT_BYTES = 0x1000;

/** The swap device's cost: a fixed latency per request and a transfer rate (an NVMe-class default:
 *  about 80 µs to read a random 4 KiB page, 1 GB/s streaming). */
export interface SwapCostModel {
  latencyNs: number;
  bytesPerSecond: number;
}
export const DEFAULT_SWAP_COST: SwapCostModel = { latencyNs: 80_000, bytesPerSecond: 1e9 };

export interface SwapOptions {
  path: string;
  bytes: number;
  cost?: SwapCostModel;
}

export interface SwapStats {
  path: string;
  size_bytes: number;
  used_bytes: number;
  written_bytes: number;
  read_bytes: number;
  write_requests: number;
  read_requests: number;
}

/** cgroup v2 io.stat's fields for one device. */
export interface IoStat { rbytes: number; wbytes: number; rios: number; wios: number }
const noIo = (): IoStat => ({ rbytes: 0, wbytes: 0, rios: 0, wios: 0 });

export class SwapFile {
  readonly path: string;
  readonly slots: number;
  readonly cost: SwapCostModel;
  private fd: number;
  /** Owner of each slot + 1 (0: free). */
  private readonly owner: Uint16Array;
  private readonly ownerSlots = new Map<number, number>();
  private used = 0;
  /** Next slot to try: allocation goes forward so that one reclaim pass fills adjacent slots. */
  private cursor = 0;
  private readonly pending: Array<{ slot: number; data: Uint8Array }> = [];
  /** The swap I/O the host did on each owner's behalf (io.stat of its container, device "swap"). */
  private readonly ioByOwner = new Map<number, IoStat>();
  writtenBytes = 0;
  readBytes = 0;
  writeRequests = 0;
  readRequests = 0;

  constructor(opts: SwapOptions) {
    if (!(Number.isInteger(opts.bytes) && opts.bytes >= SLOT_BYTES)) throw new Error(`hvlab: a swap file needs at least 4 KiB (got ${opts.bytes} bytes)`);
    this.path = opts.path;
    this.slots = Math.floor(opts.bytes / SLOT_BYTES);
    if (this.slots > 0xffff_ffff) throw new Error('hvlab: a swap file holds at most 2^32 slots');
    this.cost = opts.cost ?? DEFAULT_SWAP_COST;
    this.owner = new Uint16Array(this.slots);
    try {
      this.fd = openSync(opts.path, 'w+');
      ftruncateSync(this.fd, this.slots * SLOT_BYTES);
    } catch (e) {
      throw new Error(`hvlab: cannot use ${opts.path} as swap: ${(e as Error).message}`);
    }
  }

  get freeSlots(): number { return this.slots - this.used; }
  slotsOf(owner: number): number { return this.ownerSlots.get(owner) ?? 0; }

  /** A free slot for `owner`, or -1 when the file is full. */
  allocate(owner: number): number {
    if (this.used === this.slots) return -1;
    for (let i = 0; i < this.slots; i++) {
      const s = (this.cursor + i) % this.slots;
      if (this.owner[s] !== 0) continue;
      this.owner[s] = owner + 1;
      this.used++;
      this.ownerSlots.set(owner, this.slotsOf(owner) + 1);
      this.cursor = s + 1;
      return s;
    }
    return -1;
  }

  /** The slot's copy is no longer needed (the page was written again, or its VM ended). */
  release(slot: number): void {
    const o = this.owner[slot];
    if (o === 0) throw new Error(`hvlab: swap slot ${slot} released twice`);
    this.owner[slot] = 0;
    this.used--;
    this.ownerSlots.set(o - 1, this.slotsOf(o - 1) - 1);
    // (a page queued for this slot and not yet written is dropped with it)
    const i = this.pending.findIndex((p) => p.slot === slot);
    if (i >= 0) this.pending.splice(i, 1);
  }

  /** Queue a page for `slot` (copied now: its frame is about to be reused). */
  queueWrite(slot: number, page: Uint8Array): void {
    this.pending.push({ slot, data: page.slice(0, SLOT_BYTES) });
  }

  /** The swap I/O done for `owner` so far. */
  ioOf(owner: number): IoStat { return { ...(this.ioByOwner.get(owner) ?? noIo()) }; }
  private io(owner: number): IoStat {
    let s = this.ioByOwner.get(owner);
    if (!s) { s = noIo(); this.ioByOwner.set(owner, s); }
    return s;
  }

  /** Write every queued page, adjacent slots of one owner in one request (so each request is
   *  charged to exactly one container); returns the requests made. */
  flush(): number {
    if (!this.pending.length) return 0;
    this.pending.sort((a, b) => a.slot - b.slot);
    let requests = 0;
    for (let i = 0; i < this.pending.length;) {
      const owner = this.owner[this.pending[i].slot];
      let j = i + 1;
      while (j < this.pending.length && this.pending[j].slot === this.pending[j - 1].slot + 1 && this.owner[this.pending[j].slot] === owner) j++;
      const buf = Buffer.allocUnsafe((j - i) * SLOT_BYTES);
      for (let k = i; k < j; k++) buf.set(this.pending[k].data, (k - i) * SLOT_BYTES);
      writeSync(this.fd, buf, 0, buf.length, this.pending[i].slot * SLOT_BYTES);
      this.writtenBytes += buf.length;
      const io = this.io(owner - 1);
      io.wbytes += buf.length; io.wios++;
      requests++;
      i = j;
    }
    this.writeRequests += requests;
    this.pending.length = 0;
    return requests;
  }

  /** Read `slot` into `into` (4 KiB); a page still queued comes from the queue. Returns the
   *  virtual ns the read costs the faulting vCPU. */
  read(slot: number, into: Uint8Array): number {
    const queued = this.pending.find((p) => p.slot === slot);
    if (queued) { into.set(queued.data); return 0; } // (still in the host's page cache: a minor fault)
    const n = readSync(this.fd, into, 0, SLOT_BYTES, slot * SLOT_BYTES);
    if (n !== SLOT_BYTES) throw new Error(`hvlab: short read of swap slot ${slot} in ${this.path}`);
    this.readBytes += SLOT_BYTES;
    this.readRequests++;
    const io = this.io(this.owner[slot] - 1);
    io.rbytes += SLOT_BYTES; io.rios++;
    return this.requestNs(SLOT_BYTES);
  }

  /** What a request of `bytes` costs on the modelled device. */
  requestNs(bytes: number): number { return this.cost.latencyNs + (bytes / this.cost.bytesPerSecond) * 1e9; }

  stats(): SwapStats {
    return {
      path: this.path, size_bytes: this.slots * SLOT_BYTES, used_bytes: this.used * SLOT_BYTES,
      written_bytes: this.writtenBytes, read_bytes: this.readBytes, write_requests: this.writeRequests, read_requests: this.readRequests,
    };
  }

  /** Every slot of `owner` goes back (its VM ended). */
  releaseOwner(owner: number): void {
    for (let s = 0; s < this.slots; s++) if (this.owner[s] === owner + 1) this.release(s);
  }

  close(): void {
    if (this.fd < 0) return;
    closeSync(this.fd);
    this.fd = -1;
  }
}

/** `--swap FILE[,size=MiB]`: the file and its size (default 1 GiB). */
export function parseSwapSpec(spec: string): { path: string; bytes: number } {
  const [path, ...opts] = spec.split(',');
  if (!path) throw new Error('--swap needs a file name: --swap FILE[,size=MiB]');
  let mib = 1024;
  for (const o of opts) {
    const m = /^size=(\d+)$/.exec(o);
    if (!m || Number(m[1]) < 1) throw new Error(`--swap: unknown or bad option "${o}" (expected size=MiB)`);
    mib = Number(m[1]);
  }
  return { path, bytes: mib * 2 ** 20 };
}
