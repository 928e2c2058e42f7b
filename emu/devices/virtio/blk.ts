// virtio-blk, the block device model (OASIS virtio 1.2, section 5.2). One request queue. Each request
// is a descriptor chain: a device-readable header (le32 type, le32 reserved, le64 sector), data
// (device-readable for writes, device-writable for reads), and a final device-writable status byte
// (5.2.6). Sectors are 512 bytes whatever blk_size says. Requests run to completion when the driver
// notifies; every available chain is taken each time, so the driver may keep many in flight.
import type { VirtioDevice, VirtioTransport } from './pci-transport.ts';
import { GuestByteStream, VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC } from './virtqueue.ts';
import type { Chain, GuestBuffer } from './virtqueue.ts';

export const VIRTIO_ID_BLOCK = 2;
export const SECTOR_SIZE = 512;

// Feature bits (5.2.3).
export const VIRTIO_BLK_F_SIZE_MAX = 1;
export const VIRTIO_BLK_F_SEG_MAX = 2;
export const VIRTIO_BLK_F_RO = 5;
export const VIRTIO_BLK_F_BLK_SIZE = 6;
export const VIRTIO_BLK_F_FLUSH = 9;
export const VIRTIO_BLK_F_DISCARD = 13;
export const VIRTIO_BLK_F_WRITE_ZEROES = 14;

// Request types and status values (5.2.6).
export const VIRTIO_BLK_T_IN = 0;
export const VIRTIO_BLK_T_OUT = 1;
export const VIRTIO_BLK_T_FLUSH = 4;
export const VIRTIO_BLK_T_GET_ID = 8;
export const VIRTIO_BLK_T_DISCARD = 11;
export const VIRTIO_BLK_T_WRITE_ZEROES = 13;
export const VIRTIO_BLK_S_OK = 0;
export const VIRTIO_BLK_S_IOERR = 1;
export const VIRTIO_BLK_S_UNSUPP = 2;

export const VIRTIO_BLK_ID_BYTES = 20;
const REQUEST_HEADER_SIZE = 16;
/** struct virtio_blk_discard_write_zeroes: le64 sector, le32 num_sectors, le32 flags (bit 0 unmap). */
const SEGMENT_SIZE = 16;
const SEGMENT_FLAG_UNMAP = 1;

/** struct virtio_blk_config field offsets (5.2.4), those this device fills. */
export const BLK_CONFIG = {
  capacity: 0, sizeMax: 8, segMax: 12, blkSize: 20, numQueues: 34,
  maxDiscardSectors: 36, maxDiscardSeg: 40, discardSectorAlignment: 44,
  maxWriteZeroesSectors: 48, maxWriteZeroesSeg: 52, writeZeroesMayUnmap: 56,
} as const;
const BLK_CONFIG_SIZE = 72; // through the secure-erase fields (zeroes: VIRTIO_BLK_F_SECURE_ERASE is not offered)

/** The disk image behind the device. Offsets and lengths are in bytes. */
export interface BlockBackend {
  readonly size: number;
  readonly readOnly: boolean;
  read(offset: number, length: number): Uint8Array;
  /** Read straight into `dst` (the data path's staging memory), sparing a copy. */
  readInto?(offset: number, dst: Uint8Array): void;
  write(offset: number, data: Uint8Array): void;
  writeZeroes(offset: number, length: number): void;
  discard(offset: number, length: number): void;
  flush(): void;
}

export interface VirtioBlkOptions {
  /** Up to 20 bytes returned by VIRTIO_BLK_T_GET_ID (Linux shows it as /sys/block/vda/serial). */
  serial?: string;
  queueSize?: number;
  /** Segments per discard / write-zeroes request (max_discard_seg, max_write_zeroes_seg). */
  maxDiscardSegments?: number;
  /** Sectors per discard / write-zeroes segment (QEMU's default is 0x3fffff). */
  maxDiscardSectors?: number;
}

export type BlkRequestKind = 'read' | 'write' | 'flush' | 'getId' | 'discard' | 'writeZeroes' | 'unsupported';
export interface BlkRequestStats { operations: number; bytes: number; errors: number }
/** Host service time of requests: bucket i counts requests that took [2^(i-1), 2^i) µs (bucket 0: < 1 µs). */
export const LATENCY_BUCKETS = 24;

const KIND_BY_TYPE: Record<number, BlkRequestKind> = {
  [VIRTIO_BLK_T_IN]: 'read', [VIRTIO_BLK_T_OUT]: 'write', [VIRTIO_BLK_T_FLUSH]: 'flush',
  [VIRTIO_BLK_T_GET_ID]: 'getId', [VIRTIO_BLK_T_DISCARD]: 'discard', [VIRTIO_BLK_T_WRITE_ZEROES]: 'writeZeroes',
};

/** A parsed request: its chain split into header, data streams and the status byte. */
interface Request {
  type: number;
  sector: bigint;
  /** Device-readable bytes after the header (write data, discard segments). */
  out: GuestByteStream;
  outOffset: number;
  /** Device-writable bytes before the status byte (read data, the id string). */
  in: GuestByteStream;
}

/** Outcome of one request: its status and how many data bytes it wrote into the chain. */
interface Completion { status: number; written: number; bytes: number }

const bit = (n: number) => 1n << BigInt(n);
/** A DataView of exactly these bytes (staging views are windows on a larger memory). */
const viewOf = (bytes: Uint8Array) => new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
const fail = (status: number): Completion => ({ status, written: 0, bytes: 0 });

export class VirtioBlk implements VirtioDevice {
  readonly name = 'virtio-blk';
  readonly deviceType = VIRTIO_ID_BLOCK;
  readonly deviceFeatures: bigint;
  readonly queueMaxSizes: readonly number[];
  readonly config = new Uint8Array(BLK_CONFIG_SIZE);
  readonly stats = {} as Record<BlkRequestKind, BlkRequestStats>;
  readonly latencyHistogram = new Array<number>(LATENCY_BUCKETS).fill(0);
  private transport: VirtioTransport | null = null;
  private readonly serial: Uint8Array;
  private readonly maxSegments: number;
  private readonly maxSegmentSectors: number;
  /** Requests whose chain was well formed but whose layout was not a block request. */
  private malformedRequests = 0;

  constructor(readonly backend: BlockBackend, options: VirtioBlkOptions = {}) {
    const queueSize = options.queueSize ?? 256;
    this.queueMaxSizes = [queueSize];
    this.maxSegments = options.maxDiscardSegments ?? 16;
    this.maxSegmentSectors = options.maxDiscardSectors ?? 0x3fffff;
    this.serial = new Uint8Array(VIRTIO_BLK_ID_BYTES);
    this.serial.set(new TextEncoder().encode(options.serial ?? '').subarray(0, VIRTIO_BLK_ID_BYTES));
    this.deviceFeatures = bit(VIRTIO_BLK_F_SEG_MAX) | bit(VIRTIO_BLK_F_BLK_SIZE) | bit(VIRTIO_BLK_F_FLUSH)
      | bit(VIRTIO_BLK_F_DISCARD) | bit(VIRTIO_BLK_F_WRITE_ZEROES) | (backend.readOnly ? bit(VIRTIO_BLK_F_RO) : 0n)
      | bit(VIRTIO_F_INDIRECT_DESC) | bit(VIRTIO_F_EVENT_IDX);
    const view = new DataView(this.config.buffer);
    view.setBigUint64(BLK_CONFIG.capacity, BigInt(Math.floor(backend.size / SECTOR_SIZE)), true);
    view.setUint32(BLK_CONFIG.segMax, queueSize - 2, true); // header and status take two descriptors (QEMU)
    view.setUint32(BLK_CONFIG.blkSize, SECTOR_SIZE, true);
    view.setUint16(BLK_CONFIG.numQueues, 1, true);
    view.setUint32(BLK_CONFIG.maxDiscardSectors, this.maxSegmentSectors, true);
    view.setUint32(BLK_CONFIG.maxDiscardSeg, this.maxSegments, true);
    view.setUint32(BLK_CONFIG.discardSectorAlignment, 1, true);
    view.setUint32(BLK_CONFIG.maxWriteZeroesSectors, this.maxSegmentSectors, true);
    view.setUint32(BLK_CONFIG.maxWriteZeroesSeg, this.maxSegments, true);
    view.setUint8(BLK_CONFIG.writeZeroesMayUnmap, 1);
    this.resetStats();
  }

  get capacitySectors(): number { return Math.floor(this.backend.size / SECTOR_SIZE); }

  /** Malformed rings and chains (counted by the queues) plus malformed requests. */
  get malformedCount(): number {
    return this.malformedRequests + (this.transport?.malformedChainCount ?? 0);
  }

  resetStats(): void {
    for (const kind of [...Object.values(KIND_BY_TYPE), 'unsupported'] as BlkRequestKind[]) {
      this.stats[kind] = { operations: 0, bytes: 0, errors: 0 };
    }
    this.latencyHistogram.fill(0);
  }

  attach(transport: VirtioTransport): void { this.transport = transport; }

  reset(): void { /* all queue state lives in the transport's virtqueues, dropped with them */ }

  queueNotify(index: number): void {
    const queue = this.transport?.queue(index);
    if (!queue) return;
    for (let chain = queue.pop(); chain; chain = queue.pop()) queue.push(chain.head, this.complete(chain));
    this.transport!.notifyQueue(index);
  }

  /** Run one chain and write its status; returns the used length (bytes written into the chain). */
  private complete(chain: Chain): number {
    const status = chain.lastWritable;
    if (!status) { // 5.2.6.1: the status byte is the chain's last, device-writable byte; none: drop the request
      if (!chain.fault) this.malformedRequests++;
      return 0;
    }
    const memory = this.transport!.memory;
    const started = performance.now();
    let result: Completion;
    if (chain.fault) result = fail(VIRTIO_BLK_S_IOERR);
    else {
      const request = this.parse(chain);
      if (!request) { this.malformedRequests++; result = fail(VIRTIO_BLK_S_IOERR); }
      else {
        const kind = KIND_BY_TYPE[request.type] ?? 'unsupported';
        result = this.executeOnBackend(request);
        const stats = this.stats[kind];
        stats.operations++;
        stats.bytes += result.bytes;
        if (result.status !== VIRTIO_BLK_S_OK) stats.errors++;
      }
    }
    memory.write(status.gpa + status.len - 1, new Uint8Array([result.status]));
    const micros = (performance.now() - started) * 1000;
    this.latencyHistogram[Math.min(LATENCY_BUCKETS - 1, micros < 1 ? 0 : Math.floor(Math.log2(micros)) + 1)]++;
    return result.written + 1;
  }

  /** Split a well-formed chain into a request, or null if it cannot be one (header missing). */
  private parse(chain: Chain): Request | null {
    const dma = this.transport!.memory;
    const total = (buffers: GuestBuffer[]) => buffers.reduce((n, b) => n + b.len, 0);
    const readable = chain.readable.length;
    const out = new GuestByteStream(dma, 0, readable, total(chain.readable));
    // The status byte ends the last writable buffer (5.2.6): the data stream stops one byte short.
    const inStream = new GuestByteStream(dma, readable, chain.writable.length, total(chain.writable) - 1);
    if (out.length < REQUEST_HEADER_SIZE) return null;
    const header = viewOf(out.read(0, REQUEST_HEADER_SIZE));
    return { type: header.getUint32(0, true), sector: header.getBigUint64(8, true), out, outOffset: REQUEST_HEADER_SIZE, in: inStream };
  }

  /** A backend that fails (a host I/O error) fails the request with IOERR, as QEMU reports EIO. */
  private executeOnBackend(r: Request): Completion {
    try { return this.execute(r); } catch { return fail(VIRTIO_BLK_S_IOERR); }
  }

  private execute(r: Request): Completion {
    const outLength = r.out.length - r.outOffset;
    switch (r.type) {
      case VIRTIO_BLK_T_IN: {
        const offset = this.byteRange(r.sector, r.in.length);
        if (offset === null || outLength !== 0) return fail(VIRTIO_BLK_S_IOERR);
        const dma = this.transport!.memory;
        // Image → staging (the backend reads straight into it when it can) → guest, a piece at a time.
        for (let done = 0; done < r.in.length;) {
          const n = Math.min(dma.stagingCapacity, r.in.length - done);
          const staging = dma.staging(n);
          if (this.backend.readInto) this.backend.readInto(offset + done, staging);
          else staging.set(this.backend.read(offset + done, n));
          r.in.writeFromStaging(done, n);
          done += n;
        }
        return { status: VIRTIO_BLK_S_OK, written: r.in.length, bytes: r.in.length };
      }
      case VIRTIO_BLK_T_OUT: {
        const offset = this.byteRange(r.sector, outLength);
        if (offset === null || r.in.length !== 0 || this.backend.readOnly) return fail(VIRTIO_BLK_S_IOERR);
        const capacity = this.transport!.memory.stagingCapacity;
        for (let done = 0; done < outLength;) {
          const n = Math.min(capacity, outLength - done);
          this.backend.write(offset + done, r.out.read(r.outOffset + done, n));
          done += n;
        }
        return { status: VIRTIO_BLK_S_OK, written: 0, bytes: outLength };
      }
      case VIRTIO_BLK_T_FLUSH:
        this.backend.flush();
        return { status: VIRTIO_BLK_S_OK, written: 0, bytes: 0 };
      case VIRTIO_BLK_T_GET_ID: {
        const n = Math.min(VIRTIO_BLK_ID_BYTES, r.in.length); // 5.2.6: 20 bytes, NUL padded
        r.in.write(0, this.serial.subarray(0, n));
        return { status: VIRTIO_BLK_S_OK, written: n, bytes: n };
      }
      case VIRTIO_BLK_T_DISCARD:
      case VIRTIO_BLK_T_WRITE_ZEROES:
        return this.discardOrWriteZeroes(r, outLength);
      default:
        return fail(VIRTIO_BLK_S_UNSUPP);
    }
  }

  /** 5.2.6.2: a list of segments; all are checked before any is applied. */
  private discardOrWriteZeroes(r: Request, length: number): Completion {
    const discard = r.type === VIRTIO_BLK_T_DISCARD;
    const count = length / SEGMENT_SIZE;
    if (!Number.isInteger(count) || count < 1 || count > this.maxSegments || this.backend.readOnly) return fail(VIRTIO_BLK_S_IOERR);
    const segments: Array<{ offset: number; length: number }> = [];
    for (let i = 0; i < count; i++) {
      const s = viewOf(r.out.read(r.outOffset + i * SEGMENT_SIZE, SEGMENT_SIZE));
      const sectors = s.getUint32(8, true), flags = s.getUint32(12, true);
      // The device MUST answer UNSUPP for unmap on discard and for unknown flags on write zeroes.
      if (discard ? flags !== 0 : (flags & ~SEGMENT_FLAG_UNMAP) !== 0) return fail(VIRTIO_BLK_S_UNSUPP);
      const offset = sectors > this.maxSegmentSectors ? null : this.byteRange(s.getBigUint64(0, true), sectors * SECTOR_SIZE);
      if (offset === null) return fail(VIRTIO_BLK_S_IOERR);
      segments.push({ offset, length: sectors * SECTOR_SIZE });
    }
    let bytes = 0;
    for (const s of segments) {
      if (discard) this.backend.discard(s.offset, s.length);
      else this.backend.writeZeroes(s.offset, s.length);
      bytes += s.length;
    }
    return { status: VIRTIO_BLK_S_OK, written: 0, bytes };
  }

  /** The byte offset of `length` bytes at `sector`, or null when they are not whole sectors inside the disk. */
  private byteRange(sector: bigint, length: number): number | null {
    if (length % SECTOR_SIZE !== 0 || sector > BigInt(this.capacitySectors)) return null;
    const offset = Number(sector) * SECTOR_SIZE;
    return offset + length <= this.capacitySectors * SECTOR_SIZE ? offset : null;
  }
}
