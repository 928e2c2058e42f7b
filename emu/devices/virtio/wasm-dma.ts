// The block data path of the machine: chains walked and bytes copied by the WebAssembly core
// (wasm/blk/virtqueue.ts) over guest RAM, with a staging buffer (the image cache) in the core's own
// memory, so image reads land there directly and reach the guest in one bulk copy.
import * as abi from '../../../wasm/abi.ts';
import { BLOCK_STAGING_BYTES, Host, type Vm } from '../../machine/host.ts';
import { CHAIN_FAULTS } from './virtqueue.ts';
import type { Chain, GuestBuffer, GuestDma } from './virtqueue.ts';

export class WasmDma implements GuestDma {
  readonly size: number;
  private readonly stagingBase: number;
  readonly stagingCapacity = BLOCK_STAGING_BYTES;

  private readonly host: Host;
  private readonly vm: Vm;

  /** The data path of a VM (a one-guest Host stands for its VM). */
  constructor(target: Host | Vm) {
    this.vm = target instanceof Host ? target.vm0 : target;
    this.host = this.vm.host;
    this.size = this.vm.ramBytes;
    this.stagingBase = this.host.blockStagingBase;
  }

  read(gpa: number, length: number): Uint8Array { return this.vm.memory.read(gpa, length); }
  write(gpa: number, data: Uint8Array): void { this.vm.memory.write(gpa, data); }

  walkChain(tableGpa: number, tableSize: number, head: number, indirectAllowed: boolean): Chain {
    const count = this.host.core.blkWalkChain(this.vm.index, tableGpa, tableSize, head, indirectAllowed ? 1 : 0);
    const view = this.host.view;
    const fault = view.getInt32(abi.BLK_WALK_RESULT, true);
    const statusSegment = view.getInt32(abi.BLK_WALK_RESULT + 4, true);
    const readableCount = view.getInt32(abi.BLK_WALK_RESULT + 8, true);
    const segments: GuestBuffer[] = [];
    for (let i = 0; i < count; i++) {
      const at = abi.BLK_SEG_LIST_BASE + i * abi.BLK_SEG_SIZE;
      segments.push({ gpa: Number(view.getBigUint64(at, true)), len: view.getUint32(at + 8, true) });
    }
    return {
      head, readable: segments.slice(0, readableCount), writable: segments.slice(readableCount),
      fault: CHAIN_FAULTS[fault] ?? null, lastWritable: statusSegment >= 0 ? segments[statusSegment] : null,
    };
  }

  staging(length: number): Uint8Array { return this.host.bytes.subarray(this.stagingBase, this.stagingBase + length); }

  gather(first: number, count: number, offset: number, length: number): Uint8Array {
    this.host.core.blkCopy(this.vm.index, first, count, offset, this.stagingBase, length, 0);
    return this.staging(length);
  }

  scatter(first: number, count: number, offset: number, length: number): void {
    this.host.core.blkCopy(this.vm.index, first, count, offset, this.stagingBase, length, 1);
  }
}
