// The block data path in plain TypeScript over any GuestMemory: the reference model the WebAssembly
// data path (wasm/blk/virtqueue.ts) is compared with (test/devices/virtio-dma.test.ts), the memory
// of the device unit tests, and the baseline of `hvlab bench blk`. Same rules, same fault order.
import * as abi from '../../../wasm/abi.ts';
import { BLOCK_STAGING_BYTES } from '../../machine/host.ts';
import { CHAIN_FAULTS, inGuestMemory, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE, VIRTQ_DESC_SIZE } from './virtqueue.ts';
import type { Chain, GuestBuffer, GuestDma, GuestMemory } from './virtqueue.ts';

export class ReferenceDma implements GuestDma {
  readonly size: number;
  private segments: GuestBuffer[] = [];
  private readonly stagingBytes: Uint8Array;

  constructor(private readonly memory: GuestMemory, readonly stagingCapacity = BLOCK_STAGING_BYTES) {
    this.size = memory.size;
    this.stagingBytes = new Uint8Array(stagingCapacity);
  }

  read(gpa: number, length: number): Uint8Array { return this.memory.read(gpa, length); }
  write(gpa: number, data: Uint8Array): void { this.memory.write(gpa, data); }

  walkChain(tableGpa: number, tableSize: number, head: number, indirectAllowed: boolean): Chain {
    const chain: Chain = { head, readable: [], writable: [], fault: null, lastWritable: null };
    const fail = (code: number) => { chain.fault ??= CHAIN_FAULTS[code]; };
    let table = tableGpa, entries = tableSize, index = head, visited = 0, indirect = false;
    for (;;) {
      if (index >= entries) { fail(abi.BLK_FAULT_INDEX); break; }
      if (++visited > entries) { fail(abi.BLK_FAULT_LOOP); break; }
      if (visited > abi.BLK_MAX_CHAIN) { fail(abi.BLK_FAULT_TOO_LONG); break; }
      const d = new DataView(this.memory.read(table + index * VIRTQ_DESC_SIZE, VIRTQ_DESC_SIZE).slice().buffer);
      const gpa = d.getUint32(0, true) + d.getUint32(4, true) * 2 ** 32;
      const len = d.getUint32(8, true), flags = d.getUint16(12, true), next = d.getUint16(14, true);
      if (flags & VIRTQ_DESC_F_INDIRECT) {
        if (indirect) { fail(abi.BLK_FAULT_INDIRECT_NESTED); break; }
        if (!indirectAllowed) { fail(abi.BLK_FAULT_INDIRECT_NOT_NEGOTIATED); break; }
        if (visited !== 1 || (flags & VIRTQ_DESC_F_NEXT)) { fail(abi.BLK_FAULT_INDIRECT_NOT_ALONE); break; }
        if (len === 0 || len % VIRTQ_DESC_SIZE !== 0) { fail(abi.BLK_FAULT_INDIRECT_LENGTH); break; }
        if (!inGuestMemory(this.memory, gpa, len)) { fail(abi.BLK_FAULT_INDIRECT_OUTSIDE); break; }
        table = gpa; entries = len / VIRTQ_DESC_SIZE; index = 0; visited = 0; indirect = true;
        continue;
      }
      const writable = (flags & VIRTQ_DESC_F_WRITE) !== 0;
      const buffer = { gpa, len };
      const inside = inGuestMemory(this.memory, gpa, len);
      let kept = false;
      if (!inside) fail(abi.BLK_FAULT_OUTSIDE);
      else if (!writable && chain.writable.length) fail(abi.BLK_FAULT_ORDER);
      else { (writable ? chain.writable : chain.readable).push(buffer); kept = true; }
      if (!(flags & VIRTQ_DESC_F_NEXT)) {
        chain.lastWritable = kept && writable && len > 0 ? buffer : null;
        break;
      }
      index = next;
    }
    this.segments = [...chain.readable, ...chain.writable];
    return chain;
  }

  staging(length: number): Uint8Array { return this.stagingBytes.subarray(0, length); }

  gather(first: number, count: number, offset: number, length: number): Uint8Array {
    this.forEachPiece(first, count, offset, length, (gpa, at, n) => this.stagingBytes.set(this.memory.read(gpa, n), at));
    return this.staging(length);
  }

  scatter(first: number, count: number, offset: number, length: number): void {
    this.forEachPiece(first, count, offset, length, (gpa, at, n) => this.memory.write(gpa, this.stagingBytes.subarray(at, at + n)));
  }

  private forEachPiece(first: number, count: number, offset: number, length: number, piece: (gpa: number, at: number, n: number) => void): void {
    let skip = offset, done = 0;
    for (const b of this.segments.slice(first, first + count)) {
      if (done === length) break;
      if (skip >= b.len) { skip -= b.len; continue; }
      const n = Math.min(b.len - skip, length - done);
      piece(b.gpa + skip, done, n);
      done += n; skip = 0;
    }
  }
}
