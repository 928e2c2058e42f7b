// Split virtqueues (OASIS virtio 1.2, section 2.7 "Split Virtqueues"): a descriptor table (16-byte
// entries: le64 addr, le32 len, le16 flags, le16 next), the driver area or available ring (le16 flags,
// le16 idx, le16 ring[size], le16 used_event) and the device area or used ring (le16 flags, le16 idx,
// { le32 id, le32 len } ring[size], le16 avail_event). Indices are free-running 16-bit counters; a
// ring slot is idx % size (size is a power of two, 2.7.10.1).
//
// Everything here is guest input. Every address is checked against guest memory before use
// (GuestMemory is the only way to reach it), nothing throws for guest input, and each malformed
// event is counted in `malformedCount`. The chain walk is one function (`walkChain`) so it can move
// to WebAssembly (wasm/blk/) unchanged in shape.

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

/** Guest-physical memory as the device sees it (DMA). Callers bounds-check against `size` first. */
export interface GuestMemory {
  readonly size: number;
  read(gpa: number, length: number): Uint8Array;
  write(gpa: number, data: Uint8Array): void;
}

export function inGuestMemory(memory: GuestMemory, gpa: number, length: number): boolean {
  return Number.isSafeInteger(gpa) && Number.isSafeInteger(length) && gpa >= 0 && length >= 0 && gpa + length <= memory.size;
}

/** One guest buffer, already checked to lie inside guest memory. */
export interface GuestBuffer { gpa: number; len: number }

export type ChainFault =
  | 'descriptor index out of range'
  | 'chain loops or is longer than its table'
  | 'buffer outside guest memory'
  | 'device-readable buffer after a device-writable one'
  | 'indirect descriptor not negotiated'
  | 'indirect descriptor not alone at the head of the chain'
  | 'nested indirect descriptor'
  | 'indirect table length not a nonzero multiple of 16'
  | 'indirect table outside guest memory';

export interface Chain {
  /** Head descriptor index: the id to return in the used ring. */
  head: number;
  readable: GuestBuffer[];
  writable: GuestBuffer[];
  /** The first problem found, or null for a well-formed chain. */
  fault: ChainFault | null;
  /** The chain's last descriptor when the walk reached it and it is device-writable, in guest
   *  memory and at least one byte long: where a device may still report an error status. */
  lastWritable: GuestBuffer | null;
}

/** Walk the descriptor chain starting at `head` in the table at `tableGpa` of `tableSize` entries
 *  (2.7.5 "The Virtqueue Descriptor Table", 2.7.5.3 "Indirect Descriptors"). The table itself must
 *  already be known to lie in guest memory. Structural faults stop the walk; a buffer outside guest
 *  memory or out of order is left out and the walk goes on, so the last descriptor can still carry a status. */
export function walkChain(memory: GuestMemory, tableGpa: number, tableSize: number, head: number, indirectAllowed: boolean): Chain {
  const chain: Chain = { head, readable: [], writable: [], fault: null, lastWritable: null };
  const fail = (fault: ChainFault) => { chain.fault ??= fault; };
  const stop = (fault: ChainFault) => { fail(fault); return chain; };
  let table = tableGpa, entries = tableSize, index = head, visited = 0, indirect = false;
  for (;;) {
    if (index >= entries) return stop('descriptor index out of range');
    if (++visited > entries) return stop('chain loops or is longer than its table');
    const d = new DataView(memory.read(table + index * VIRTQ_DESC_SIZE, VIRTQ_DESC_SIZE).slice().buffer);
    const gpa = d.getUint32(0, true) + d.getUint32(4, true) * 2 ** 32;
    const len = d.getUint32(8, true), flags = d.getUint16(12, true), next = d.getUint16(14, true);
    if (flags & VIRTQ_DESC_F_INDIRECT) {
      // 2.7.5.3.1: INDIRECT only if negotiated, never with NEXT, never inside an indirect table.
      if (indirect) return stop('nested indirect descriptor');
      if (!indirectAllowed) return stop('indirect descriptor not negotiated');
      if (visited !== 1 || (flags & VIRTQ_DESC_F_NEXT)) return stop('indirect descriptor not alone at the head of the chain');
      if (len === 0 || len % VIRTQ_DESC_SIZE !== 0) return stop('indirect table length not a nonzero multiple of 16');
      if (!inGuestMemory(memory, gpa, len)) return stop('indirect table outside guest memory');
      table = gpa; entries = len / VIRTQ_DESC_SIZE; index = 0; visited = 0; indirect = true;
      continue;
    }
    const writable = (flags & VIRTQ_DESC_F_WRITE) !== 0;
    const buffer = { gpa, len };
    const inside = inGuestMemory(memory, gpa, len);
    if (!inside) fail('buffer outside guest memory');
    else if (writable) chain.writable.push(buffer);
    // 2.7.4.2: the driver places device-writable elements after all device-readable ones.
    else if (chain.writable.length) fail('device-readable buffer after a device-writable one');
    else chain.readable.push(buffer);
    if (!(flags & VIRTQ_DESC_F_NEXT)) {
      chain.lastWritable = inside && writable && len > 0 ? buffer : null;
      return chain;
    }
    index = next;
  }
}

/** A list of guest buffers seen as one byte stream (a request's scatter-gather list). */
export class GuestByteStream {
  readonly length: number;
  constructor(private readonly memory: GuestMemory, private readonly buffers: readonly GuestBuffer[]) {
    this.length = buffers.reduce((n, b) => n + b.len, 0);
  }

  /** Bytes [offset, offset + length) of the stream; the range must lie inside it. */
  read(offset: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    this.forEachPiece(offset, length, (gpa, at, n) => out.set(this.memory.read(gpa, n), at));
    return out;
  }

  write(offset: number, data: Uint8Array): void {
    this.forEachPiece(offset, data.length, (gpa, at, n) => this.memory.write(gpa, data.subarray(at, at + n)));
  }

  private forEachPiece(offset: number, length: number, piece: (gpa: number, at: number, n: number) => void): void {
    if (offset < 0 || offset + length > this.length) throw new RangeError('GuestByteStream access beyond its buffers');
    let skip = offset, done = 0;
    for (const b of this.buffers) {
      if (done === length) break;
      if (skip >= b.len) { skip -= b.len; continue; }
      const n = Math.min(b.len - skip, length - done);
      piece(b.gpa + skip, done, n);
      done += n; skip = 0;
    }
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

  constructor(private readonly memory: GuestMemory, readonly layout: VirtqueueLayout,
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
      const chain = walkChain(this.memory, descGpa, size, head, this.features.indirect);
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
