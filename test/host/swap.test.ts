// Host swap and reclaim (emu/hv/mm/swap.ts, reclaim.ts) on VMs whose RAM the host itself writes:
// under pressure the clock takes frames back; zero pages are dropped and never reach the swap file,
// a page whose swap copy is current is dropped without a second write, everything reads back as it
// was written, a memory.max holds, and the ledger of frames and swap slots reconciles.
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Host } from '../../emu/machine/host.ts';
import { SLOT_BYTES, parseSwapSpec } from '../../emu/hv/mm/swap.ts';
import { ContainerOutOfMemory } from '../../emu/hv/mm/reclaim.ts';

const MiB = 1 << 20, PAGE = 4096;
const dirs: string[] = [];
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });

function swapHost(poolMiB: number, swapMiB = 64) {
  const dir = mkdtempSync(join(tmpdir(), 'hvlab-swap-'));
  dirs.push(dir);
  const path = join(dir, 'swap');
  const host = new Host({ poolBytes: poolMiB * MiB, swap: { path, bytes: swapMiB * MiB }, watermarks: { low: 64, high: 128 } });
  return { host, path };
}

/** Page `i`'s bytes: distinct for every page and VM (never zero), or zeros for every `zeroEvery`th. */
function pageOf(vm: number, i: number, zeroEvery = 0): Uint8Array {
  const p = new Uint8Array(PAGE);
  if (zeroEvery && i % zeroEvery === 0) return p;
  const v = new DataView(p.buffer);
  for (let w = 0; w < PAGE / 4; w++) v.setUint32(w * 4, (Math.imul(i + 1, 0x9e3779b1) ^ Math.imul(w + 1, 0x85ebca6b) ^ (vm << 28)) | 1, true);
  return p;
}

describe('host swap and reclaim', () => {
  it('a VM larger than the pool reads back what it wrote; zero pages never reach the swap file', () => {
    const { host, path } = swapHost(4);
    const vm = host.createVm({ ramBytes: 16 * MiB, vcpus: 1, mmu: 'ept', demand: true });
    const pages = 12 * MiB / PAGE;
    for (let i = 0; i < pages; i++) vm.memory.write(i * PAGE, pageOf(0, i, 4));
    const c = vm.memory.counters;
    expect(host.reclaimer!.stats.reclaimed).toBeGreaterThan(pages / 2);
    expect(c.zero_dropped).toBeGreaterThan(0);
    // Only non-zero pages were written: every slot the file holds is someone's data, not zeros.
    const swap = host.swap!;
    expect(swap.writtenBytes / SLOT_BYTES).toBe(c.pswpout);
    const file = readFileSync(path);
    let zeroSlotsWritten = 0;
    for (let s = 0; s < swap.writtenBytes / SLOT_BYTES && s * SLOT_BYTES < file.length; s++) {
      if (file.subarray(s * SLOT_BYTES, (s + 1) * SLOT_BYTES).every((b) => b === 0)) zeroSlotsWritten++;
    }
    expect(zeroSlotsWritten).toBe(0);
    expect(c.pswpout).toBeLessThanOrEqual(pages - pages / 4);
    expect(host.checkInvariants()).toEqual([]);
    for (let i = 0; i < pages; i++) expect(Buffer.from(vm.memory.read(i * PAGE, PAGE)).equals(pageOf(0, i, 4)), `page ${i}`).toBe(true);
    expect(c.pgmajfault).toBeGreaterThan(0);
    expect(host.checkInvariants()).toEqual([]);
  });

  it('a clean page is never written twice; a page written again is', () => {
    const { host } = swapHost(4);
    const vm = host.createVm({ ramBytes: 16 * MiB, vcpus: 1, mmu: 'ept', demand: true });
    const pages = 8 * MiB / PAGE;
    for (let i = 0; i < pages; i++) vm.memory.write(i * PAGE, pageOf(0, i));
    for (let i = 0; i < pages; i++) vm.memory.read(i * PAGE, 8); // every page read back once: the resident ones are clean copies
    const swap = host.swap!, c = vm.memory.counters;
    const written = swap.writtenBytes;
    const cleanBefore = c.clean_dropped;
    // Reading everything again swaps clean pages out and in; none of them is written again.
    for (let i = 0; i < pages; i++) vm.memory.read(i * PAGE, 8);
    expect(c.clean_dropped).toBeGreaterThan(cleanBefore);
    expect(swap.writtenBytes).toBe(written);
    // A host write makes the copy stale: that page is written when it goes again.
    vm.memory.write(0, pageOf(0, 12345));
    host.reclaimer!.reclaim(host.pool.frames, vm.index);
    expect(swap.writtenBytes).toBe(written + SLOT_BYTES);
    expect(Buffer.from(vm.memory.read(0, PAGE)).equals(pageOf(0, 12345))).toBe(true);
    expect(host.checkInvariants()).toEqual([]);
  });

  it('memory.max bounds the frames charged to a VM; the others keep theirs', () => {
    const { host } = swapHost(16);
    const small = host.createVm({ ramBytes: 16 * MiB, vcpus: 1, mmu: 'ept', demand: true, memoryMax: 2 * MiB, name: 'small' });
    const other = host.createVm({ ramBytes: 16 * MiB, vcpus: 1, mmu: 'ept', demand: true, name: 'other' });
    for (let i = 0; i < 256; i++) other.memory.write(i * PAGE, pageOf(1, i));
    let peak = 0;
    for (let i = 0; i < 2048; i++) {
      small.memory.write(i * PAGE, pageOf(0, i));
      peak = Math.max(peak, small.chargedBytes);
    }
    expect(peak).toBeLessThanOrEqual(2 * MiB);
    expect(other.memory.counters.pswpout).toBe(0); // reclaim under a container's max takes from it alone
    for (let i = 0; i < 2048; i += 7) expect(Buffer.from(small.memory.read(i * PAGE, PAGE)).equals(pageOf(0, i))).toBe(true);
    for (let i = 0; i < 256; i++) expect(Buffer.from(other.memory.read(i * PAGE, PAGE)).equals(pageOf(1, i))).toBe(true);
    expect(host.checkInvariants()).toEqual([]);
    // io.stat: the swap I/O is charged to the VM whose pages moved, and the sums are the device's.
    const swap = host.swap!, a = swap.ioOf(small.index), b = swap.ioOf(other.index);
    expect(a.wbytes).toBe(small.memory.counters.pswpout * PAGE);
    expect(b).toEqual({ rbytes: 0, wbytes: 0, rios: 0, wios: 0 });
    expect({ rbytes: a.rbytes + b.rbytes, wbytes: a.wbytes + b.wbytes, rios: a.rios + b.rios, wios: a.wios + b.wios })
      .toEqual({ rbytes: swap.readBytes, wbytes: swap.writtenBytes, rios: swap.readRequests, wios: swap.writeRequests });
    // A VM that ends gives its slots back.
    small.destroy();
    expect(host.swap!.slotsOf(small.index)).toBe(0);
    expect(host.checkInvariants()).toEqual([]);
  });

  it('memory.low protects a VM from the host\'s reclaim while others have frames to give', () => {
    const { host } = swapHost(8);
    const kept = host.createVm({ ramBytes: 16 * MiB, vcpus: 1, mmu: 'ept', demand: true, memoryLow: 4 * MiB, name: 'kept' });
    const greedy = host.createVm({ ramBytes: 32 * MiB, vcpus: 1, mmu: 'ept', demand: true, name: 'greedy' });
    for (let i = 0; i < 512; i++) kept.memory.write(i * PAGE, pageOf(0, i)); // 2 MiB: under its low
    for (let i = 0; i < 4096; i++) greedy.memory.write(i * PAGE, pageOf(1, i)); // 16 MiB into an 8 MiB pool
    expect(kept.memory.counters.pswpout).toBe(0);
    expect(greedy.memory.counters.pswpout).toBeGreaterThan(0);
    expect(host.checkInvariants()).toEqual([]);
  });

  it('memory.max is hard (nothing reclaimable: out of memory), memory.high soft, swap.max bounds the slots', () => {
    const noSwap = new Host({ poolBytes: 16 * MiB, watermarks: { low: 64, high: 128 } });
    const hard = noSwap.createVm({ ramBytes: 8 * MiB, vcpus: 1, mmu: 'ept', demand: true, memoryMax: MiB, name: 'hard' });
    let i = 0;
    expect(() => { for (; i < 512; i++) hard.memory.write(i * PAGE, pageOf(0, i)); }).toThrow(ContainerOutOfMemory);
    expect(hard.chargedBytes).toBeLessThanOrEqual(MiB);
    expect(i).toBeGreaterThan(200);
    // Zero pages can always go: a container of zeros never runs out.
    const zeros = noSwap.createVm({ ramBytes: 8 * MiB, vcpus: 1, mmu: 'ept', demand: true, memoryMax: MiB, name: 'zeros' });
    for (let k = 0; k < 1024; k++) zeros.memory.write(k * PAGE, new Uint8Array(PAGE));
    expect(zeros.memory.counters.zero_dropped).toBeGreaterThan(700);
    const soft = noSwap.createVm({ ramBytes: 8 * MiB, vcpus: 1, mmu: 'ept', demand: true, memoryHigh: MiB, name: 'soft' });
    for (let k = 0; k < 512; k++) soft.memory.write(k * PAGE, pageOf(2, k));
    expect(soft.chargedBytes).toBeGreaterThan(MiB); // above high, not stopped
    expect(noSwap.checkInvariants()).toEqual([]);

    const { host } = swapHost(32);
    const capped = host.createVm({ ramBytes: 16 * MiB, vcpus: 1, mmu: 'ept', demand: true, memoryMax: MiB, swapMax: MiB, name: 'capped' });
    expect(() => { for (let k = 0; k < 1024; k++) capped.memory.write(k * PAGE, pageOf(3, k)); }).toThrow(ContainerOutOfMemory);
    expect(host.swap!.slotsOf(capped.index)).toBeLessThanOrEqual(256);
    const high = host.createVm({ ramBytes: 16 * MiB, vcpus: 1, mmu: 'ept', demand: true, memoryHigh: MiB, name: 'high' });
    let peak = 0;
    for (let k = 0; k < 1024; k++) { high.memory.write(k * PAGE, pageOf(4, k)); peak = Math.max(peak, high.chargedBytes); }
    expect(peak).toBeLessThanOrEqual(MiB); // with swap, high holds like max
    for (let k = 0; k < 1024; k += 5) expect(Buffer.from(high.memory.read(k * PAGE, PAGE)).equals(pageOf(4, k))).toBe(true);
    expect(host.checkInvariants()).toEqual([]);
  });

  it('parses --swap FILE[,size=MiB] and refuses bad specs', () => {
    expect(parseSwapSpec('/tmp/s')).toEqual({ path: '/tmp/s', bytes: 1024 * MiB });
    expect(parseSwapSpec('/tmp/s,size=64')).toEqual({ path: '/tmp/s', bytes: 64 * MiB });
    expect(() => parseSwapSpec(',size=64')).toThrow('needs a file name');
    expect(() => parseSwapSpec('/tmp/s,frob=1')).toThrow('unknown or bad option "frob=1"');
    expect(() => new Host({ poolBytes: 4 * MiB, swap: { path: '/nonexistent-dir/x', bytes: MiB } })).toThrow(/cannot use \/nonexistent-dir\/x as swap/);
  });
});
