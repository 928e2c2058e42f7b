// Split virtqueues (OASIS virtio 1.2, section 2.7 "Split Virtqueues"): a descriptor table (16-byte
// entries: le64 addr, le32 len, le16 flags, le16 next), the driver area or available ring (le16 flags,
// le16 idx, le16 ring[size], le16 used_event) and the device area or used ring (le16 flags, le16 idx,
// { le32 id, le32 len } ring[size], le16 avail_event). Indices are free-running 16-bit counters; a
// ring slot is idx % size (size is a power of two, 2.7.10.1).
//
// Everything here is guest input. The data path — walking descriptor chains, bounds checks, copying
// between guest memory and the image cache — is behind `GuestDma`: WebAssembly in the machine
// (wasm/blk, through wasm-dma.ts), TypeScript in reference-dma.ts (the model the WebAssembly path
// is tested against, and the baseline of `hvlab bench blk`). Nothing here throws for guest input,
// and each malformed event is counted in `malformedCount`.
import * as abi from '../../../wasm/abi.ts';

export const VIRTQ_DESC_F_NEXT = 1;
export const VIRTQ_DESC_F_WRITE = 2;
export const VIRTQ_DESC_F_INDIRECT = 4;
/** Driver → device, in the available ring's flags: do not interrupt me (ignored with EVENT_IDX, 2.7.7). */
export const VIRTQ_AVAIL_F_NO_INTERRUPT = 1;

// Reserved feature bits (section 6).
export const VIRTIO_F_INDIRECT_DESC = 28;
export const VIRTIO_F_EVENT_IDX = 29;
export const VIRTIO_F_VERSION_1 = 32;

export const VIRTQ_DESC_SIZE = 16;
const USED_ELEM_SIZE = 8;

/** Guest-physical memory as the device sees it, for the rings' small fields. Callers bounds-check
 *  against `size` first. */
export interface GuestMemory {
  readonly size: number;
  read(gpa: number, length: number): Uint8Array;
  write(gpa: number, data: Uint8Array): void;
}

/** The block I/O data path over guest memory. A walk leaves the chain's buffers in the engine as
 *  numbered segments (readable ones first, then writable ones, as in `Chain`); copies name a range
 *  of segments and move bytes between it and the staging buffer (the image cache). */
export interface GuestDma extends GuestMemory {
  /** Walk the descriptor chain starting at `head` in the table at `tableGpa` of `tableSize` entries
   *  (2.7.5, 2.7.5.3). The table itself must already be known to lie in guest memory. */
  walkChain(tableGpa: number, tableSize: number, head: number, indirectAllowed: boolean): Chain;
  /** Bytes of staging memory; larger transfers are made in pieces. */
  readonly stagingCapacity: number;
  /** Staging bytes [0, length): where a backend reads an image into. Valid until the next call. */
  staging(length: number): Uint8Array;
  /** Copy `length` bytes of segments [first, first + count) of the last walk, from `offset` bytes
   *  into their stream, to staging [0, length); returns that staging view. */
  gather(first: number, count: number, offset: number, length: number): Uint8Array;
  /** Copy staging [0, length) into the stream of segments [first, first + count) at `offset`. */
  scatter(first: number, count: number, offset: number, length: number): void;
}

export function inGuestMemory(memory: GuestMemory, gpa: number, length: number): boolean {
  return Number.isSafeInteger(gpa) && Number.isSafeInteger(length) && gpa >= 0 && length >= 0 && gpa + length <= memory.size;
}

/** One guest buffer, already checked to lie inside guest memory. */
export interface GuestBuffer { gpa: number; len: number }

/** Chain faults by their wasm/abi.ts code (BLK_FAULT_*). */
export const CHAIN_FAULTS = [
  null,
  'descriptor index out of range',
  'chain loops or is longer than its table',
  'buffer outside guest memory',
  'device-readable buffer after a device-writable one',
  'indirect descriptor not negotiated',
  'indirect descriptor not alone at the head of the chain',
  'nested indirect descriptor',
  'indirect table length not a nonzero multiple of 16',
  'indirect table outside guest memory',
  `chain longer than ${abi.BLK_MAX_CHAIN} descriptors`,
] as const;
export type ChainFault = NonNullable<(typeof CHAIN_FAULTS)[number]>;

export interface Chain {
  /** Head descriptor index: the id to return in the used ring. */
  head: number;
  /** Segments 0 .. readable.length - 1 of the walk. */
  readable: GuestBuffer[];
  /** Segments readable.length .. readable.length + writable.length - 1. */
  writable: GuestBuffer[];
  /** The first problem found, or null for a well-formed chain. */
  fault: ChainFault | null;
  /** The chain's last descriptor when the walk reached it and it is device-writable, in guest
   *  memory and at least one byte long: where a device may still report an error status. */
  lastWritable: GuestBuffer | null;
}

/** A range of the last walk's segments seen as one byte stream (a request's scatter-gather list),
 *  `length` bytes long (at most the segments' total). */
export class GuestByteStream {
  constructor(private readonly dma: GuestDma, private readonly first: number, private readonly count: number, readonly length: number) {}

  /** Bytes [offset, offset + length) into staging; the range must lie inside the stream. */
  read(offset: number, length: number): Uint8Array {
    this.check(offset, length);
    return this.dma.gather(this.first, this.count, offset, length);
  }

  /** Staging [0, length) to bytes [offset, offset + length) of the stream. */
  writeFromStaging(offset: number, length: number): void {
    this.check(offset, length);
    this.dma.scatter(this.first, this.count, offset, length);
  }

  /** `data` to bytes [offset, ...) of the stream (through staging). */
  write(offset: number, data: Uint8Array): void {
    this.dma.staging(data.length).set(data);
    this.writeFromStaging(offset, data.length);
  }

  private check(offset: number, length: number): void {
    if (offset < 0 || offset + length > this.length || length > this.dma.stagingCapacity) throw new RangeError('GuestByteStream access beyond its buffers or staging');
  }
}

export interface VirtqueueLayout {
  size: number;
  /** queue_desc, queue_driver, queue_device (4.1.4.3). */
  descGpa: number;
  driverGpa: number;
  deviceGpa: number;
}

export class Virtqueue {
  /** Next available-ring index to consume, and next used-ring index to fill (both 16-bit). */
  lastAvailIdx = 0;
  usedIdx = 0;
  /** usedIdx when the driver was last interrupted (or found not to need it). */
  private signalledUsedIdx = 0;
  malformedCount = 0;
  /** Set when the rings themselves are unusable (outside guest memory, avail idx jumped too far):
   *  nothing more is processed until the device is reset (QEMU's virtio_error does the same). */
  broken = false;

  constructor(private readonly memory: GuestDma, readonly layout: VirtqueueLayout,
    private readonly features: { eventIdx: boolean; indirect: boolean }) {
    const { size, descGpa, driverGpa, deviceGpa } = layout;
    const ringsInside = size > 0 && (size & (size - 1)) === 0
      && inGuestMemory(memory, descGpa, VIRTQ_DESC_SIZE * size)
      && inGuestMemory(memory, driverGpa, 6 + 2 * size)
      && inGuestMemory(memory, deviceGpa, 6 + USED_ELEM_SIZE * size);
    if (!ringsInside) this.markBroken();
  }

  /** Take the next available chain, or null when there is none (or the queue is broken). Heads
   *  outside the descriptor table are consumed and counted, never returned. */
  pop(): Chain | null {
    const { size, descGpa, driverGpa } = this.layout;
    while (!this.broken) {
      const availIdx = this.readU16(driverGpa + 2);
      const pending = (availIdx - this.lastAvailIdx) & 0xffff;
      if (pending === 0) return null;
      if (pending > size) { this.markBroken(); return null; } // 2.7.6: the driver never gets more than size ahead
      const head = this.readU16(driverGpa + 4 + 2 * (this.lastAvailIdx % size));
      this.lastAvailIdx = (this.lastAvailIdx + 1) & 0xffff;
      // 2.7.10: with EVENT_IDX the device asks to be notified once the driver passes avail_event.
      if (this.features.eventIdx) this.writeU16(this.layout.deviceGpa + 4 + USED_ELEM_SIZE * size, this.lastAvailIdx);
      if (head >= size) { this.malformedCount++; continue; }
      const chain = this.memory.walkChain(descGpa, size, head, this.features.indirect);
      if (chain.fault) this.malformedCount++;
      return chain;
    }
    return null;
  }

  /** Return chain `head` to the driver with `writtenLength` bytes written into it (2.7.8). */
  push(head: number, writtenLength: number): void {
    if (this.broken) return;
    const { size, deviceGpa } = this.layout;
    const elem = new DataView(new ArrayBuffer(USED_ELEM_SIZE));
    elem.setUint32(0, head, true);
    elem.setUint32(4, writtenLength, true);
    this.memory.write(deviceGpa + 4 + USED_ELEM_SIZE * (this.usedIdx % size), new Uint8Array(elem.buffer));
    this.usedIdx = (this.usedIdx + 1) & 0xffff;
    this.writeU16(deviceGpa + 2, this.usedIdx);
  }

  /** Whether the driver wants an interrupt for the buffers used since the last call (2.7.7, 2.7.10):
   *  with EVENT_IDX, when the used index stepped past used_event (Linux's vring_need_event);
   *  without, unless the driver set VIRTQ_AVAIL_F_NO_INTERRUPT. */
  shouldNotify(): boolean {
    if (this.broken) return false;
    const oldUsed = this.signalledUsedIdx, newUsed = this.usedIdx;
    this.signalledUsedIdx = newUsed;
    if (this.features.eventIdx) {
      const usedEvent = this.readU16(this.layout.driverGpa + 4 + 2 * this.layout.size);
      return ((newUsed - usedEvent - 1) & 0xffff) < ((newUsed - oldUsed) & 0xffff);
    }
    if (newUsed === oldUsed) return false;
    return (this.readU16(this.layout.driverGpa) & VIRTQ_AVAIL_F_NO_INTERRUPT) === 0;
  }

  private markBroken(): void {
    if (!this.broken) this.malformedCount++;
    this.broken = true;
  }

  // Ring fields: the ring areas were checked against guest memory in the constructor.
  private readU16(gpa: number): number {
    const b = this.memory.read(gpa, 2);
    return b[0] | (b[1] << 8);
  }

  private writeU16(gpa: number, value: number): void {
    this.memory.write(gpa, new Uint8Array([value & 0xff, (value >> 8) & 0xff]));
  }
}
