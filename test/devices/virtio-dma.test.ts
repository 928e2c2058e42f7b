// The WebAssembly block data path (wasm/blk/virtqueue.ts) against the TypeScript reference
// (emu/devices/virtio/reference-dma.ts) on random descriptor tables: well-formed chains, loops,
// indirect tables (nested, misplaced, mis-sized), buffers straddling or beyond the end of guest RAM,
// addresses past 2^53. Both must find the same buffers, the same first fault and the same status
// buffer, and copy the same bytes; neither may touch memory outside the guest.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Host } from '../../emu/machine/host.ts';
import { WasmDma } from '../../emu/devices/virtio/wasm-dma.ts';
import { ReferenceDma } from '../../emu/devices/virtio/reference-dma.ts';
import * as abi from '../../wasm/abi.ts';

const RAM = 0x100000;
const TABLE = 0x10000, INDIRECT = 0x20000, TABLE_SIZE = 16;
const host = new Host({ ramBytes: RAM });
const ram = host.ram();
const wasm = new WasmDma(host);
const reference = new ReferenceDma({
  size: RAM,
  read: (gpa, length) => { if (gpa < 0 || gpa + length > RAM) throw new Error(`reference read outside RAM ${gpa}`); return ram.slice(gpa, gpa + length); },
  write: (gpa, data) => { if (gpa < 0 || gpa + data.length > RAM) throw new Error(`reference write outside RAM ${gpa}`); ram.set(data, gpa); },
});

const address = fc.oneof(
  fc.integer({ min: 0x30000, max: RAM - 1 }), // inside
  fc.integer({ min: RAM - 64, max: RAM + 64 }), // straddling the end
  fc.constantFrom(2 ** 53, 2 ** 64 - 4096, 2 ** 32 + 0x30000), // far outside
);
const descriptor = fc.record({
  addr: address,
  len: fc.oneof(fc.integer({ min: 0, max: 600 }), fc.constantFrom(16, 32, 48, 0xffffffff)),
  flags: fc.integer({ min: 0, max: 7 }),
  next: fc.integer({ min: 0, max: TABLE_SIZE + 1 }),
});

function writeTable(at: number, descriptors: Array<{ addr: number; len: number; flags: number; next: number }>, indirectAt: number): void {
  const v = new DataView(ram.buffer, ram.byteOffset + at, 16 * descriptors.length);
  descriptors.forEach((d, i) => {
    // An indirect descriptor usually points at the indirect table area so the walk goes on there.
    const addr = d.flags & 4 && d.addr % 3 !== 0 ? indirectAt : d.addr;
    v.setBigUint64(16 * i, BigInt(addr) & 0xffffffffffffffffn, true);
    v.setUint32(16 * i + 8, d.len, true);
    v.setUint16(16 * i + 12, d.flags, true);
    v.setUint16(16 * i + 14, d.next, true);
  });
}

describe('the WebAssembly data path agrees with the TypeScript reference', () => {
  it('on random descriptor tables: same buffers, fault, status buffer and copied bytes', () => {
    fc.assert(fc.property(
      fc.array(descriptor, { minLength: TABLE_SIZE, maxLength: TABLE_SIZE }),
      fc.array(descriptor, { minLength: 1, maxLength: 8 }),
      fc.integer({ min: 0, max: TABLE_SIZE + 1 }), fc.boolean(), fc.integer({ min: 0, max: 2 ** 31 }),
      (table, indirect, head, indirectAllowed, seed) => {
        writeTable(TABLE, table, INDIRECT);
        writeTable(INDIRECT, indirect, INDIRECT);
        const expected = reference.walkChain(TABLE, TABLE_SIZE, head, indirectAllowed);
        const actual = wasm.walkChain(TABLE, TABLE_SIZE, head, indirectAllowed);
        expect(actual).toEqual(expected);
        // Gather a random window of the writable stream from both engines.
        const total = actual.writable.reduce((n, b) => n + b.len, 0);
        const offset = total ? seed % total : 0, length = Math.min(total - offset, (seed >>> 7) % 4096);
        const first = actual.readable.length, count = actual.writable.length;
        const want = reference.gather(first, count, offset, length).slice();
        expect(wasm.gather(first, count, offset, length)).toEqual(want);
      }), { numRuns: 3000, seed: 20261126 });
  });

  it('scatters into exactly the chain buffers, and a chain longer than BLK_MAX_CHAIN is a fault', () => {
    // A chain of 8 writable 100-byte buffers spread over RAM; scatter 700 bytes from offset 50.
    const descriptors = Array.from({ length: 8 }, (_, i) => ({ addr: 0x40000 + i * 0x1000, len: 100, flags: 2 | (i < 7 ? 1 : 0), next: i + 1 }));
    writeTable(TABLE, descriptors, INDIRECT);
    ram.fill(0, 0x40000, 0x48000);
    const chain = wasm.walkChain(TABLE, TABLE_SIZE, 0, true);
    expect(chain.fault).toBeNull();
    wasm.staging(700).set(Uint8Array.from({ length: 700 }, (_, i) => (i % 251) + 1));
    wasm.scatter(0, 8, 50, 700);
    const written = descriptors.map((d) => ram.slice(d.addr, d.addr + 100));
    const stream = Uint8Array.from(written.flatMap((b) => [...b]));
    expect(stream.slice(0, 50).every((b) => b === 0)).toBe(true);
    expect(stream.slice(50, 750)).toEqual(Uint8Array.from({ length: 700 }, (_, i) => (i % 251) + 1));
    expect(stream.slice(750).every((b) => b === 0)).toBe(true);
    expect(ram[0x40000 + 100]).toBe(0); // the bytes between the buffers are untouched

    // An indirect table of BLK_MAX_CHAIN + 1 chained descriptors.
    const n = abi.BLK_MAX_CHAIN + 1, at = 0x50000;
    writeTable(at, Array.from({ length: n }, (_, i) => ({ addr: 0x40000, len: 1, flags: 2 | (i < n - 1 ? 1 : 0), next: i + 1 })), at);
    writeTable(TABLE, [{ addr: at, len: 16 * n, flags: 4, next: 0 }], at);
    const long = wasm.walkChain(TABLE, TABLE_SIZE, 0, true);
    expect(long.fault).toBe(`chain longer than ${abi.BLK_MAX_CHAIN} descriptors`);
    expect(long).toEqual(reference.walkChain(TABLE, TABLE_SIZE, 0, true));
  });
});
