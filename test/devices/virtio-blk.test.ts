// virtio-blk over the modern virtio PCI transport (OASIS virtio 1.2: 2.7 split virtqueues, 4.1 PCI,
// 5.2 block device), driven the way Linux's virtio_pci_modern.c and virtio_blk.c drive it: find the
// capabilities by walking the PCI capability list, reset, ACKNOWLEDGE|DRIVER, negotiate features,
// FEATURES_OK, set up queue 0, DRIVER_OK, then place requests in the rings and notify.
import { beforeAll, describe, expect, it } from 'vitest';
import { MmioBus } from '../../emu/devices/mmio-bus.ts';
import { VirtioPciFunction } from '../../emu/devices/virtio/pci-transport.ts';
import { VirtioBlk } from '../../emu/devices/virtio/blk.ts';
import type { BlockBackend } from '../../emu/devices/virtio/blk.ts';
import type { GuestDma } from '../../emu/devices/virtio/virtqueue.ts';
import { ReferenceDma } from '../../emu/devices/virtio/reference-dma.ts';
import { WasmDma } from '../../emu/devices/virtio/wasm-dma.ts';
import { Host } from '../../emu/machine/host.ts';

// ---- Test doubles --------------------------------------------------------------------------------

/** The data path under test: the TypeScript reference or the WebAssembly core (wasm/blk). */
type DataPath = 'reference' | 'wasm';
let dataPath: DataPath = 'reference';

/** 1 MiB of guest RAM that fails the test on any access outside it. The data path (chain walks and
 *  copies) is the engine under test; the rings' fields go through the checked read/write. */
class FakeMemory implements GuestDma {
  readonly bytes: Uint8Array;
  outOfRange = 0;
  private readonly engine: GuestDma;
  constructor(readonly size: number) {
    if (dataPath === 'wasm') {
      const host = new Host({ ramBytes: size });
      this.bytes = host.ram();
      this.engine = new WasmDma(host);
    } else {
      this.bytes = new Uint8Array(size);
      this.engine = new ReferenceDma({ size, read: (gpa, length) => this.read(gpa, length), write: (gpa, data) => this.write(gpa, data) });
    }
  }
  private check(gpa: number, length: number): void {
    if (!(gpa >= 0 && length >= 0 && gpa + length <= this.size)) {
      this.outOfRange++;
      throw new Error(`guest memory access outside RAM: ${gpa}+${length}`);
    }
  }
  read(gpa: number, length: number): Uint8Array { this.check(gpa, length); return this.bytes.slice(gpa, gpa + length); }
  write(gpa: number, data: Uint8Array): void { this.check(gpa, data.length); this.bytes.set(data, gpa); }
  get view(): DataView { return new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength); }
  get stagingCapacity(): number { return this.engine.stagingCapacity; }
  walkChain(tableGpa: number, tableSize: number, head: number, indirect: boolean) { return this.engine.walkChain(tableGpa, tableSize, head, indirect); }
  staging(length: number): Uint8Array { return this.engine.staging(length); }
  gather(first: number, count: number, offset: number, length: number): Uint8Array { return this.engine.gather(first, count, offset, length); }
  scatter(first: number, count: number, offset: number, length: number): void { this.engine.scatter(first, count, offset, length); }
}

class MemoryDisk implements BlockBackend {
  readonly data: Uint8Array;
  flushes = 0;
  readonly discards: Array<[number, number]> = [];
  constructor(readonly size: number, readonly readOnly = false) {
    this.data = new Uint8Array(size);
    for (let i = 0; i < size; i++) this.data[i] = (i * 7 + (i >> 9)) & 0xff;
  }
  read(offset: number, length: number): Uint8Array { return this.data.slice(offset, offset + length); }
  write(offset: number, data: Uint8Array): void { this.data.set(data, offset); }
  writeZeroes(offset: number, length: number): void { this.data.fill(0, offset, offset + length); }
  discard(offset: number, length: number): void { this.discards.push([offset, length]); }
  flush(): void { this.flushes++; }
}

// Spec constants, written out here rather than imported so the tests check the implementation.
const STATUS = { ACKNOWLEDGE: 1, DRIVER: 2, DRIVER_OK: 4, FEATURES_OK: 8 };
const F = { SEG_MAX: 2, RO: 5, BLK_SIZE: 6, FLUSH: 9, DISCARD: 13, WRITE_ZEROES: 14, INDIRECT_DESC: 28, EVENT_IDX: 29, VERSION_1: 32 };
const DESC_F = { NEXT: 1, WRITE: 2, INDIRECT: 4 };
const T = { IN: 0, OUT: 1, FLUSH: 4, GET_ID: 8, DISCARD: 11, WRITE_ZEROES: 13 };
const S = { OK: 0, IOERR: 1, UNSUPP: 2 };
// struct virtio_pci_common_cfg offsets (4.1.4.3).
const CC = { dfselect: 0, df: 4, gfselect: 8, gf: 12, numQueues: 18, status: 20, generation: 21, qselect: 22,
  qsize: 24, qenable: 28, qnotifyOff: 30, qdesc: 32, qdriver: 40, qdevice: 48 };

const MEM_SIZE = 0x100000;
const DISK_SIZE = 64 * 1024; // 128 sectors
const QUEUE_SIZE = 16;
const DESC = 0x10000, AVAIL = 0x11000, USED = 0x12000;
const BAR_ADDRESS = 0xfe000000;
const bit = (n: number) => 1n << BigInt(n);

interface DriverBuffer { addr: number; len: number; write?: boolean }
interface VirtioCap { cfgType: number; bar: number; offset: number; length: number; at: number }

/** A driver doing what Linux does, over configuration space and the BAR mapped on an MMIO bus. */
class Driver {
  readonly memory = new FakeMemory(MEM_SIZE);
  readonly mmio = new MmioBus();
  readonly line = { level: false, set(level: boolean) { this.level = level; } };
  readonly pci: VirtioPciFunction;
  readonly blk: VirtioBlk;
  caps: VirtioCap[] = [];
  notifyMultiplier = 0;
  notifyOff = 0;
  availIdx = 0;
  nextDesc = 0;

  constructor(readonly disk = new MemoryDisk(DISK_SIZE), serial = 'hvlab-disk-0') {
    this.blk = new VirtioBlk(disk, { serial, queueSize: 256 });
    this.pci = new VirtioPciFunction('virtio-blk', this.blk, this.memory);
    this.pci.irq = this.line;
    let mapped = false;
    this.pci.onBarChange = (_index, address) => {
      if (address === null) return;
      if (mapped) this.mmio.relocate(this.pci, address);
      else this.mmio.register(address, 0x4000, this.pci);
      mapped = true;
    };
  }

  cfg(offset: number, size = 4): number { return this.pci.configRead(offset, size); }
  cfgWrite(offset: number, size: number, value: number): void { this.pci.configWrite(offset, size, value); }

  /** Firmware/Linux PCI core: size and place BAR4/5, enable memory decoding and bus mastering. */
  assignBar(): void {
    this.cfgWrite(0x20, 4, BAR_ADDRESS);
    this.cfgWrite(0x24, 4, 0);
    this.cfgWrite(0x04, 2, 0x0006);
  }

  /** virtio_pci_find_capability: walk the list from 34h, keep vendor-specific (09h) capabilities. */
  findCapabilities(): void {
    this.caps = [];
    for (let at = this.cfg(0x34, 1) & 0xfc, guard = 0; at !== 0 && guard < 48; at = this.cfg(at + 1, 1) & 0xfc, guard++) {
      if (this.cfg(at, 1) !== 0x09) continue;
      const cap = { cfgType: this.cfg(at + 3, 1), bar: this.cfg(at + 4, 1), offset: this.cfg(at + 8), length: this.cfg(at + 12), at };
      this.caps.push(cap);
      if (cap.cfgType === 2) this.notifyMultiplier = this.cfg(at + 16);
    }
  }

  cap(cfgType: number): VirtioCap { return this.caps.find((c) => c.cfgType === cfgType)!; }
  common(offset: number, size: number): number { return Number(this.mmio.read(BAR_ADDRESS + this.cap(1).offset + offset, size)); }
  commonWrite(offset: number, size: number, value: number): void { this.mmio.write(BAR_ADDRESS + this.cap(1).offset + offset, size, value); }
  device(offset: number, size: number): number { return Number(this.mmio.read(BAR_ADDRESS + this.cap(4).offset + offset, size)); }
  readIsr(): number { return Number(this.mmio.read(BAR_ADDRESS + this.cap(3).offset, 1)); }

  deviceFeatures(): bigint {
    this.commonWrite(CC.dfselect, 4, 0);
    const low = this.common(CC.df, 4);
    this.commonWrite(CC.dfselect, 4, 1);
    return (BigInt(this.common(CC.df, 4)) << 32n) | BigInt(low);
  }

  /** virtio_dev_probe + vp_modern_find_vqs + virtio_device_ready. Returns the negotiated features. */
  init(wanted: bigint): bigint {
    this.assignBar();
    this.findCapabilities();
    this.commonWrite(CC.status, 1, 0); // reset
    expect(this.common(CC.status, 1)).toBe(0);
    this.commonWrite(CC.status, 1, STATUS.ACKNOWLEDGE);
    this.commonWrite(CC.status, 1, STATUS.ACKNOWLEDGE | STATUS.DRIVER);
    const features = this.deviceFeatures() & wanted;
    this.commonWrite(CC.gfselect, 4, 0);
    this.commonWrite(CC.gf, 4, Number(features & 0xffffffffn));
    this.commonWrite(CC.gfselect, 4, 1);
    this.commonWrite(CC.gf, 4, Number(features >> 32n));
    this.commonWrite(CC.status, 1, STATUS.ACKNOWLEDGE | STATUS.DRIVER | STATUS.FEATURES_OK);
    expect(this.common(CC.status, 1) & STATUS.FEATURES_OK).toBe(STATUS.FEATURES_OK);
    this.commonWrite(CC.qselect, 2, 0);
    expect(this.common(CC.qsize, 2)).toBe(256);
    this.commonWrite(CC.qsize, 2, QUEUE_SIZE);
    // vp_iowrite64_twopart: low then high dword.
    for (const [field, gpa] of [[CC.qdesc, DESC], [CC.qdriver, AVAIL], [CC.qdevice, USED]]) {
      this.commonWrite(field, 4, gpa);
      this.commonWrite(field + 4, 4, 0);
    }
    this.notifyOff = this.common(CC.qnotifyOff, 2);
    this.commonWrite(CC.qenable, 2, 1);
    this.commonWrite(CC.status, 1, STATUS.ACKNOWLEDGE | STATUS.DRIVER | STATUS.FEATURES_OK | STATUS.DRIVER_OK);
    return features;
  }

  // ---- Rings ----
  u16(gpa: number): number { return this.memory.bytes[gpa] | (this.memory.bytes[gpa + 1] << 8); }
  u32(gpa: number): number { return this.memory.view.getUint32(gpa, true); }
  setU16(gpa: number, v: number): void { this.memory.view.setUint16(gpa, v, true); }

  writeDesc(table: number, index: number, addr: number, len: number, flags: number, next = 0): void {
    const v = new DataView(this.memory.bytes.buffer, this.memory.bytes.byteOffset + table + 16 * index, 16);
    v.setBigUint64(0, BigInt(addr), true);
    v.setUint32(8, len, true);
    v.setUint16(12, flags, true);
    v.setUint16(14, next, true);
  }

  /** Put a chain of direct descriptors in the table; returns its head. */
  chain(buffers: DriverBuffer[]): number {
    const head = this.nextDesc;
    buffers.forEach((b, i) => {
      const last = i === buffers.length - 1;
      this.writeDesc(DESC, (head + i) % QUEUE_SIZE, b.addr, b.len, (b.write ? DESC_F.WRITE : 0) | (last ? 0 : DESC_F.NEXT), (head + i + 1) % QUEUE_SIZE);
    });
    this.nextDesc = (head + buffers.length) % QUEUE_SIZE;
    return head;
  }

  /** One descriptor pointing at an indirect table holding the buffers. */
  indirectChain(table: number, buffers: DriverBuffer[]): number {
    buffers.forEach((b, i) => this.writeDesc(table, i, b.addr, b.len, (b.write ? DESC_F.WRITE : 0) | (i < buffers.length - 1 ? DESC_F.NEXT : 0), i + 1));
    const head = this.nextDesc;
    this.writeDesc(DESC, head, table, 16 * buffers.length, DESC_F.INDIRECT);
    this.nextDesc = (head + 1) % QUEUE_SIZE;
    return head;
  }

  publish(head: number): void {
    this.setU16(AVAIL + 4 + 2 * (this.availIdx % QUEUE_SIZE), head);
    this.availIdx = (this.availIdx + 1) & 0xffff;
    this.setU16(AVAIL + 2, this.availIdx);
  }

  kick(): void { this.mmio.write(BAR_ADDRESS + this.cap(2).offset + this.notifyOff * this.notifyMultiplier, 2, 0); }

  usedIdx(): number { return this.u16(USED + 2); }
  used(i: number): { id: number; len: number } { return { id: this.u32(USED + 4 + 8 * i), len: this.u32(USED + 8 + 8 * i) }; }

  /** A request header (struct virtio_blk_outhdr) at `gpa`. */
  header(gpa: number, type: number, sector: number): { addr: number; len: number } {
    const v = new DataView(this.memory.bytes.buffer, this.memory.bytes.byteOffset + gpa, 16);
    v.setUint32(0, type, true);
    v.setUint32(4, 0, true);
    v.setBigUint64(8, BigInt(sector), true);
    return { addr: gpa, len: 16 };
  }

  /** Header, data, status: the layout virtblk_add_req builds. Status byte preset to 0xff. */
  request(type: number, sector: number, data: DriverBuffer | null, slot: number) {
    const base = 0x20000 + slot * 0x100;
    const status = { addr: base + 0x80, len: 1, write: true };
    this.memory.bytes[status.addr] = 0xff;
    const buffers: DriverBuffer[] = [this.header(base, type, sector), ...(data ? [data] : []), status];
    return { buffers, status: status.addr };
  }
}

const FULL = bit(F.SEG_MAX) | bit(F.BLK_SIZE) | bit(F.FLUSH) | bit(F.DISCARD) | bit(F.WRITE_ZEROES) | bit(F.VERSION_1) | bit(F.INDIRECT_DESC);
const sector = (disk: MemoryDisk, n: number, count = 1) => disk.data.slice(n * 512, (n + count) * 512);

// ---- PCI identity and capabilities -------------------------------------------------------------

const suites: Array<() => void> = [];

suites.push(() => describe('virtio-pci identity (virtio 1.2, 4.1.2 and 4.1.4)', () => {
  it('is a modern virtio-blk function: 1AF4:1042, revision 1, storage class, one 16 KiB 64-bit BAR4', () => {
    const d = new Driver();
    expect(d.cfg(0x00)).toBe(0x10421af4);
    expect(d.cfg(0x08)).toBe(0x01000001); // class 01h/00h/00h, revision 1
    expect(d.cfg(0x2c)).toBe(0x11001af4);
    expect(d.cfg(0x3d, 1)).toBe(1); // INTA#
    expect(d.cfg(0x06, 2) & 0x10).toBe(0x10); // capability list present
    d.cfgWrite(0x20, 4, 0xffffffff);
    d.cfgWrite(0x24, 4, 0xffffffff);
    expect(d.cfg(0x20)).toBe(0xffffc00c); // 16 KiB, 64-bit, prefetchable
    expect(d.cfg(0x24)).toBe(0xffffffff);
    for (const bar of [0x10, 0x14, 0x18, 0x1c]) expect(d.cfg(bar)).toBe(0);
  });

  it('describes common, ISR, device, notify and PCI-config structures with vendor capabilities', () => {
    const d = new Driver();
    d.findCapabilities();
    expect(d.caps.map((c) => c.cfgType).sort()).toEqual([1, 2, 3, 4, 5]);
    for (const t of [1, 2, 3, 4]) expect(d.cap(t).bar).toBe(4);
    expect(d.cap(1).length).toBeGreaterThanOrEqual(56); // sizeof(struct virtio_pci_common_cfg)
    expect(d.cap(2).length).toBeGreaterThanOrEqual(2);
    expect(d.cfg(d.cap(2).at + 2, 1)).toBe(20); // struct virtio_pci_notify_cap
    expect(d.cfg(d.cap(5).at + 2, 1)).toBe(20); // struct virtio_pci_cfg_cap
    expect(d.notifyMultiplier % 2).toBe(0); // 4.1.4.4: an even multiplier (or 0)
    const regions = [1, 2, 3, 4].map((t) => d.cap(t)).sort((a, b) => a.offset - b.offset);
    for (let i = 1; i < regions.length; i++) expect(regions[i].offset).toBeGreaterThanOrEqual(regions[i - 1].offset + regions[i - 1].length);
    expect(regions[3].offset + regions[3].length).toBeLessThanOrEqual(0x4000);
  });

  it('maps the BAR where the guest programs it and reaches it through the PCI config access window', () => {
    const d = new Driver();
    d.assignBar();
    d.findCapabilities();
    expect(d.mmio.find(BAR_ADDRESS)?.device).toBe(d.pci);
    const window = d.cap(5).at;
    d.cfgWrite(window + 4, 1, 4); // cap.bar
    d.cfgWrite(window + 8, 4, d.cap(4).offset); // capacity, low dword
    d.cfgWrite(window + 12, 4, 4); // cap.length
    expect(d.cfg(window + 16)).toBe(DISK_SIZE / 512);
    d.cfgWrite(window + 8, 4, d.cap(1).offset + CC.qselect);
    d.cfgWrite(window + 12, 4, 2);
    d.cfgWrite(window + 16, 2, 7);
    expect(d.common(CC.qselect, 2)).toBe(7);
    expect(d.common(CC.qsize, 2)).toBe(0); // no queue 7
  });
}));

// ---- Initialization -------------------------------------------------------------------------------

suites.push(() => describe('device initialization (virtio 1.2, 3.1 and 4.1.4.3)', () => {
  it('offers VERSION_1 and the block features, and the configuration Linux reads', () => {
    const d = new Driver();
    d.assignBar();
    d.findCapabilities();
    const features = d.deviceFeatures();
    for (const f of [F.VERSION_1, F.SEG_MAX, F.BLK_SIZE, F.FLUSH, F.DISCARD, F.WRITE_ZEROES, F.EVENT_IDX, F.INDIRECT_DESC]) {
      expect(features & bit(f), `feature ${f}`).toBe(bit(f));
    }
    expect(features & bit(F.RO)).toBe(0n);
    expect(d.common(CC.numQueues, 2)).toBe(1);
    expect(d.device(0, 4)).toBe(128); // capacity in 512-byte sectors
    expect(d.device(4, 4)).toBe(0);
    expect(Number(d.mmio.read(BAR_ADDRESS + d.cap(4).offset, 8))).toBe(128);
    expect(d.device(12, 4)).toBe(254); // seg_max
    expect(d.device(20, 4)).toBe(512); // blk_size
    expect(d.device(36, 4)).toBeGreaterThan(0); // max_discard_sectors
    expect(d.device(40, 4)).toBeGreaterThan(0); // max_discard_seg
    expect(d.device(44, 4)).toBe(1); // discard_sector_alignment
    expect(d.device(48, 4)).toBeGreaterThan(0); // max_write_zeroes_sectors
    expect(d.device(52, 4)).toBeGreaterThan(0); // max_write_zeroes_seg
    expect(d.device(56, 1)).toBe(1); // write_zeroes_may_unmap
  });

  it('offers RO for a read-only disk', () => {
    const d = new Driver(new MemoryDisk(DISK_SIZE, true));
    d.assignBar();
    d.findCapabilities();
    expect(d.deviceFeatures() & bit(F.RO)).toBe(bit(F.RO));
  });

  it('refuses FEATURES_OK without VERSION_1 or with features it did not offer', () => {
    const d = new Driver();
    d.assignBar();
    d.findCapabilities();
    d.commonWrite(CC.status, 1, STATUS.ACKNOWLEDGE | STATUS.DRIVER);
    d.commonWrite(CC.gfselect, 4, 0);
    d.commonWrite(CC.gf, 4, 1 << F.FLUSH);
    d.commonWrite(CC.status, 1, STATUS.ACKNOWLEDGE | STATUS.DRIVER | STATUS.FEATURES_OK);
    expect(d.common(CC.status, 1)).toBe(STATUS.ACKNOWLEDGE | STATUS.DRIVER);
    d.commonWrite(CC.gfselect, 4, 1);
    d.commonWrite(CC.gf, 4, 1 | (1 << 10)); // VERSION_1 plus an unoffered bit 42
    d.commonWrite(CC.status, 1, STATUS.ACKNOWLEDGE | STATUS.DRIVER | STATUS.FEATURES_OK);
    expect(d.common(CC.status, 1) & STATUS.FEATURES_OK).toBe(0);
    d.commonWrite(CC.gf, 4, 1);
    d.commonWrite(CC.status, 1, STATUS.ACKNOWLEDGE | STATUS.DRIVER | STATUS.FEATURES_OK);
    expect(d.common(CC.status, 1) & STATUS.FEATURES_OK).toBe(STATUS.FEATURES_OK);
  });

  it('completes the Linux sequence and a status write of 0 resets queues and features', () => {
    const d = new Driver();
    const negotiated = d.init(FULL);
    expect(negotiated).toBe(FULL);
    expect(d.common(CC.status, 1)).toBe(0x0f);
    expect(d.common(CC.qenable, 2)).toBe(1);
    expect(d.common(CC.qsize, 2)).toBe(QUEUE_SIZE);
    expect(d.common(CC.qdesc, 4)).toBe(DESC);
    expect(Number(d.mmio.read(BAR_ADDRESS + d.cap(1).offset + CC.qdriver, 8))).toBe(AVAIL);
    d.commonWrite(CC.status, 1, 0);
    expect(d.common(CC.status, 1)).toBe(0);
    expect(d.common(CC.qenable, 2)).toBe(0);
    expect(d.common(CC.qsize, 2)).toBe(256);
    expect(d.common(CC.qdesc, 4)).toBe(0);
    d.commonWrite(CC.gfselect, 4, 1);
    expect(d.common(CC.gf, 4)).toBe(0);
  });
}));

// ---- Requests ---------------------------------------------------------------------------------------

suites.push(() => describe('block requests (virtio 1.2, 5.2.6)', () => {
  it('reads sectors into guest memory, returns the used length, raises INTx and the ISR clears on read', () => {
    const d = new Driver();
    d.init(FULL);
    const r = d.request(T.IN, 3, { addr: 0x30000, len: 1024, write: true }, 0);
    d.publish(d.chain(r.buffers));
    expect(d.line.level).toBe(false);
    d.kick();
    expect(d.usedIdx()).toBe(1);
    expect(d.used(0)).toEqual({ id: 0, len: 1025 });
    expect(d.memory.bytes[r.status]).toBe(S.OK);
    expect(d.memory.bytes.slice(0x30000, 0x30400)).toEqual(sector(d.disk, 3, 2));
    expect(d.line.level).toBe(true);
    expect(d.cfg(0x06, 2) & 0x08).toBe(0x08); // PCI status: interrupt pending
    expect(d.readIsr()).toBe(1); // queue interrupt
    expect(d.line.level).toBe(false);
    expect(d.readIsr()).toBe(0);
    expect(d.blk.stats.read).toEqual({ operations: 1, bytes: 1024, errors: 0 });
  });

  it('writes guest data to the disk', () => {
    const d = new Driver();
    d.init(FULL);
    d.memory.bytes.fill(0xa5, 0x30000, 0x30200);
    const r = d.request(T.OUT, 5, { addr: 0x30000, len: 512 }, 0);
    d.publish(d.chain(r.buffers));
    d.kick();
    expect(d.used(0)).toEqual({ id: 0, len: 1 });
    expect(d.memory.bytes[r.status]).toBe(S.OK);
    expect(sector(d.disk, 5).every((b) => b === 0xa5)).toBe(true);
    expect(d.disk.data[6 * 512]).toBe((6 * 512 * 7 + 6) & 0xff); // the next sector is untouched
    expect(d.blk.stats.write).toEqual({ operations: 1, bytes: 512, errors: 0 });
  });

  it('follows indirect descriptor tables and does not assume the framing of header and data', () => {
    const d = new Driver();
    d.init(FULL);
    // Header split over two readable buffers, data over two writable buffers, status alone.
    d.header(0x20000, T.IN, 1);
    const head = d.indirectChain(0x40000, [
      { addr: 0x20000, len: 10 }, { addr: 0x2000a, len: 6 },
      { addr: 0x30000, len: 100, write: true }, { addr: 0x31000, len: 412, write: true },
      { addr: 0x20080, len: 1, write: true },
    ]);
    d.publish(head);
    d.kick();
    expect(d.used(0)).toEqual({ id: head, len: 513 });
    expect(d.memory.bytes[0x20080]).toBe(S.OK);
    const expected = sector(d.disk, 1);
    expect(d.memory.bytes.slice(0x30000, 0x30064)).toEqual(expected.slice(0, 100));
    expect(d.memory.bytes.slice(0x31000, 0x3119c)).toEqual(expected.slice(100));
  });

  it('completes every available request on one notify, in order', () => {
    const d = new Driver();
    d.init(FULL);
    const heads: number[] = [];
    for (let i = 0; i < 3; i++) {
      const r = d.request(T.IN, 10 + i, { addr: 0x30000 + 0x200 * i, len: 512, write: true }, i);
      heads.push(d.chain(r.buffers));
      d.publish(heads[i]);
    }
    d.kick();
    expect(d.usedIdx()).toBe(3);
    expect([0, 1, 2].map((i) => d.used(i).id)).toEqual(heads);
    expect(d.memory.bytes.slice(0x30400, 0x30600)).toEqual(sector(d.disk, 12));
    expect(d.blk.stats.read.operations).toBe(3);
  });

  it('flushes, returns the 20-byte NUL-padded serial, discards and writes zeroes', () => {
    const d = new Driver();
    d.init(FULL);
    const flush = d.request(T.FLUSH, 0, null, 0);
    d.publish(d.chain(flush.buffers));
    const id = d.request(T.GET_ID, 0, { addr: 0x30000, len: 20, write: true }, 1);
    d.memory.bytes.fill(0xee, 0x30000, 0x30014);
    d.publish(d.chain(id.buffers));
    // Two write-zeroes segments (sector 8 x2, sector 20 x1 with unmap) and one discard segment.
    const segs = new DataView(d.memory.bytes.buffer, d.memory.bytes.byteOffset + 0x32000, 48);
    segs.setBigUint64(0, 8n, true); segs.setUint32(8, 2, true); segs.setUint32(12, 0, true);
    segs.setBigUint64(16, 20n, true); segs.setUint32(24, 1, true); segs.setUint32(28, 1, true);
    segs.setBigUint64(32, 40n, true); segs.setUint32(40, 4, true); segs.setUint32(44, 0, true);
    const wz = d.request(T.WRITE_ZEROES, 0, { addr: 0x32000, len: 32 }, 2);
    d.publish(d.chain(wz.buffers));
    const discard = d.request(T.DISCARD, 0, { addr: 0x32020, len: 16 }, 3);
    d.publish(d.chain(discard.buffers));
    const unmap = d.request(T.DISCARD, 0, { addr: 0x32010, len: 16 }, 4); // 5.2.6.2: unmap is not a discard flag
    d.publish(d.chain(unmap.buffers));
    d.kick();
    expect(d.usedIdx()).toBe(5);
    expect([flush, id, wz, discard, unmap].map((r) => d.memory.bytes[r.status])).toEqual([S.OK, S.OK, S.OK, S.OK, S.UNSUPP]);
    expect(d.disk.flushes).toBe(1);
    expect(new TextDecoder().decode(d.memory.bytes.slice(0x30000, 0x3000c))).toBe('hvlab-disk-0');
    expect([...d.memory.bytes.slice(0x3000c, 0x30014)]).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect(d.used(1).len).toBe(21);
    expect(sector(d.disk, 8, 2).every((b) => b === 0)).toBe(true);
    expect(sector(d.disk, 20).every((b) => b === 0)).toBe(true);
    expect(d.disk.data[10 * 512]).not.toBe(0);
    expect(d.disk.discards).toEqual([[40 * 512, 4 * 512]]);
    expect(d.blk.stats.writeZeroes).toEqual({ operations: 1, bytes: 1536, errors: 0 });
  });

  it('answers UNSUPP for unknown types, IOERR beyond the disk and for writes to a read-only disk', () => {
    const d = new Driver(new MemoryDisk(DISK_SIZE, true));
    d.init(FULL | bit(F.RO));
    const unknown = d.request(99, 0, null, 0);
    const beyond = d.request(T.IN, 127, { addr: 0x30000, len: 1024, write: true }, 1);
    const write = d.request(T.OUT, 0, { addr: 0x30000, len: 512 }, 2);
    const segs = new DataView(d.memory.bytes.buffer, d.memory.bytes.byteOffset + 0x32000, 16);
    segs.setBigUint64(0, 0n, true); segs.setUint32(8, 1, true); segs.setUint32(12, 0, true);
    const zeroes = d.request(T.WRITE_ZEROES, 0, { addr: 0x32000, len: 16 }, 3);
    const before = d.disk.data.slice();
    for (const r of [unknown, beyond, write, zeroes]) d.publish(d.chain(r.buffers));
    d.kick();
    expect([unknown, beyond, write, zeroes].map((r) => d.memory.bytes[r.status])).toEqual([S.UNSUPP, S.IOERR, S.IOERR, S.IOERR]);
    expect(d.disk.data).toEqual(before);
    expect(d.blk.stats.unsupported.operations).toBe(1);
    expect(d.blk.stats.write.errors).toBe(1);
    expect(d.blk.malformedCount).toBe(0);
  });

  it('turns a backend failure into IOERR', () => {
    const d = new Driver();
    d.init(FULL);
    d.disk.flush = () => { throw new Error('host disk gone'); };
    const r = d.request(T.FLUSH, 0, null, 0);
    d.publish(d.chain(r.buffers));
    expect(() => d.kick()).not.toThrow();
    expect(d.memory.bytes[r.status]).toBe(S.IOERR);
    expect(d.blk.stats.flush).toEqual({ operations: 1, bytes: 0, errors: 1 });
  });

  it('ignores notifications while bus mastering is off', () => {
    const d = new Driver();
    d.init(FULL);
    d.cfgWrite(0x04, 2, 0x0002);
    const r = d.request(T.FLUSH, 0, null, 0);
    d.publish(d.chain(r.buffers));
    d.kick();
    expect(d.usedIdx()).toBe(0);
    d.cfgWrite(0x04, 2, 0x0006);
    d.kick();
    expect(d.usedIdx()).toBe(1);
  });
}));

// ---- Notification suppression -------------------------------------------------------------------

suites.push(() => describe('interrupt suppression (virtio 1.2, 2.7.7 and 2.7.10)', () => {
  const flushOnce = (d: Driver, slot: number) => { d.publish(d.chain(d.request(T.FLUSH, 0, null, slot).buffers)); };

  it('without EVENT_IDX honours VIRTQ_AVAIL_F_NO_INTERRUPT', () => {
    const d = new Driver();
    d.init(FULL);
    d.setU16(AVAIL, 1);
    flushOnce(d, 0);
    d.kick();
    expect(d.usedIdx()).toBe(1);
    expect(d.line.level).toBe(false);
    d.setU16(AVAIL, 0);
    flushOnce(d, 1);
    d.kick();
    expect(d.line.level).toBe(true);
  });

  it('with EVENT_IDX interrupts only when the used index passes used_event and publishes avail_event', () => {
    const d = new Driver();
    expect(d.init(FULL | bit(F.EVENT_IDX)) & bit(F.EVENT_IDX)).toBe(bit(F.EVENT_IDX));
    const usedEvent = AVAIL + 4 + 2 * QUEUE_SIZE, availEvent = USED + 4 + 8 * QUEUE_SIZE;
    d.setU16(AVAIL, 1); // NO_INTERRUPT is ignored once EVENT_IDX is negotiated
    d.setU16(usedEvent, 0);
    flushOnce(d, 0);
    d.kick(); // used 0 -> 1 passes used_event 0
    expect(d.line.level).toBe(true);
    expect(d.u16(availEvent)).toBe(1);
    d.readIsr();
    d.setU16(usedEvent, 3);
    flushOnce(d, 1);
    d.kick(); // used 1 -> 2: event 3 not reached
    expect(d.line.level).toBe(false);
    flushOnce(d, 2);
    flushOnce(d, 3);
    d.kick(); // used 2 -> 4 crosses 3
    expect(d.usedIdx()).toBe(4);
    expect(d.u16(availEvent)).toBe(4);
    expect(d.line.level).toBe(true);
    expect(d.readIsr()).toBe(1);
  });
}));

// ---- Malformed guest input ------------------------------------------------------------------------

suites.push(() => describe('malformed chains are answered or dropped, counted, and never escape guest memory', () => {
  function setup(): Driver {
    const d = new Driver();
    d.init(FULL);
    return d;
  }

  it('a data buffer beyond guest memory: IOERR in the status byte', () => {
    const d = setup();
    const r = d.request(T.IN, 0, { addr: MEM_SIZE - 256, len: 512, write: true }, 0);
    d.publish(d.chain(r.buffers));
    expect(() => d.kick()).not.toThrow();
    expect(d.memory.bytes[r.status]).toBe(S.IOERR);
    expect(d.used(0)).toEqual({ id: 0, len: 1 });
    expect(d.blk.malformedCount).toBe(1);
    expect(d.memory.outOfRange).toBe(0);
    expect(d.memory.bytes.slice(MEM_SIZE - 256).every((b) => b === 0)).toBe(true);
  });

  it('an address past 2^53 and a length that wraps are outside memory too', () => {
    const d = setup();
    const r = d.request(T.OUT, 0, { addr: 0, len: 512 }, 0);
    const head = d.chain(r.buffers);
    d.writeDesc(DESC, head + 1, 0x30000, 0xffffffff, DESC_F.NEXT, head + 2);
    d.publish(head);
    const r2 = d.request(T.OUT, 0, { addr: 0, len: 512 }, 1);
    const head2 = d.chain(r2.buffers);
    d.memory.view.setBigUint64(DESC + 16 * (head2 + 1), 0xfffffffffffff000n, true);
    d.publish(head2);
    expect(() => d.kick()).not.toThrow();
    expect([d.memory.bytes[r.status], d.memory.bytes[r2.status]]).toEqual([S.IOERR, S.IOERR]);
    expect(d.blk.malformedCount).toBe(2);
    expect(d.memory.outOfRange).toBe(0);
  });

  it('a descriptor loop: dropped with used length 0', () => {
    const d = setup();
    d.header(0x20000, T.IN, 0);
    d.writeDesc(DESC, 0, 0x20000, 16, DESC_F.NEXT, 1);
    d.writeDesc(DESC, 1, 0x30000, 512, DESC_F.NEXT | DESC_F.WRITE, 0);
    d.publish(0);
    expect(() => d.kick()).not.toThrow();
    expect(d.usedIdx()).toBe(1);
    expect(d.used(0)).toEqual({ id: 0, len: 0 });
    expect(d.blk.malformedCount).toBe(1);
    expect(d.blk.stats.read.operations).toBe(0);
  });

  it('an indirect table whose length is not a multiple of 16, and a nested indirect descriptor', () => {
    const d = setup();
    const r = d.request(T.IN, 0, { addr: 0x30000, len: 512, write: true }, 0);
    const bad = d.indirectChain(0x40000, r.buffers);
    d.writeDesc(DESC, bad, 0x40000, 24, DESC_F.INDIRECT);
    d.publish(bad);
    const nested = d.indirectChain(0x41000, [{ addr: 0x40000, len: 48 }]);
    d.writeDesc(0x41000, 0, 0x40000, 48, DESC_F.INDIRECT);
    d.publish(nested);
    expect(() => d.kick()).not.toThrow();
    expect(d.usedIdx()).toBe(2);
    expect([d.used(0).len, d.used(1).len]).toEqual([0, 0]);
    expect(d.memory.bytes[r.status]).toBe(0xff); // never written
    expect(d.blk.malformedCount).toBe(2);
  });

  it('indirect descriptors are refused when VIRTIO_F_INDIRECT_DESC was not negotiated', () => {
    const d = new Driver();
    d.init(FULL & ~bit(F.INDIRECT_DESC));
    const r = d.request(T.IN, 0, { addr: 0x30000, len: 512, write: true }, 0);
    d.publish(d.indirectChain(0x40000, r.buffers));
    d.kick();
    expect(d.used(0).len).toBe(0);
    expect(d.blk.malformedCount).toBe(1);
  });

  it('a missing status byte (last descriptor device-readable) and a header in a writable buffer', () => {
    const d = setup();
    d.header(0x20000, T.FLUSH, 0);
    d.publish(d.chain([{ addr: 0x20000, len: 16 }]));
    const wrongWay = d.request(T.IN, 0, null, 1);
    wrongWay.buffers[0].write = true; // header where a device-readable buffer is needed
    d.publish(d.chain(wrongWay.buffers));
    d.kick();
    expect(d.usedIdx()).toBe(2);
    expect(d.used(0).len).toBe(0);
    expect(d.disk.flushes).toBe(0);
    expect(d.memory.bytes[wrongWay.status]).toBe(S.IOERR);
    expect(d.blk.malformedCount).toBe(2);
  });

  it('a readable buffer after a writable one, and a head index outside the table', () => {
    const d = setup();
    const r = d.request(T.OUT, 0, { addr: 0x30000, len: 512 }, 0);
    const head = d.chain([r.buffers[0], { addr: 0x31000, len: 4, write: true }, r.buffers[1], r.buffers[2]]);
    d.publish(head);
    d.publish(QUEUE_SIZE + 3);
    const before = d.disk.data.slice();
    d.kick();
    expect(d.usedIdx()).toBe(1); // the bad head is consumed without a used entry
    expect(d.memory.bytes[r.status]).toBe(S.IOERR);
    expect(d.disk.data).toEqual(before);
    expect(d.blk.malformedCount).toBe(2);
  });

  it('rings outside guest memory and an available index too far ahead stop the queue, quietly', () => {
    const d = new Driver();
    d.assignBar();
    d.findCapabilities();
    const features = d.deviceFeatures() & FULL;
    d.commonWrite(CC.status, 1, 3);
    d.commonWrite(CC.gfselect, 4, 1);
    d.commonWrite(CC.gf, 4, Number(features >> 32n));
    d.commonWrite(CC.status, 1, 0xb);
    d.commonWrite(CC.qsize, 2, QUEUE_SIZE);
    d.commonWrite(CC.qdesc, 4, MEM_SIZE - 64);
    d.commonWrite(CC.qdriver, 4, AVAIL);
    d.commonWrite(CC.qdevice, 4, USED);
    d.commonWrite(CC.qenable, 2, 1);
    d.commonWrite(CC.status, 1, 0xf);
    d.publish(0);
    expect(() => d.kick()).not.toThrow();
    expect(d.usedIdx()).toBe(0);
    expect(d.blk.malformedCount).toBe(1);
    expect(d.memory.outOfRange).toBe(0);

    const e = setup();
    e.setU16(AVAIL + 2, QUEUE_SIZE + 1);
    expect(() => e.kick()).not.toThrow();
    expect(e.usedIdx()).toBe(0);
    expect(e.blk.malformedCount).toBe(1);
    // 2.1.2: DEVICE_NEEDS_RESET, announced by a configuration change interrupt; a reset recovers.
    expect(e.common(CC.status, 1)).toBe(0x4f);
    expect(e.readIsr()).toBe(2);
    e.availIdx = 0;
    e.nextDesc = 0;
    e.setU16(AVAIL + 2, 0);
    e.init(FULL);
    e.publish(e.chain(e.request(T.FLUSH, 0, null, 0).buffers));
    e.kick();
    expect(e.usedIdx()).toBe(1);
    expect(e.blk.malformedCount).toBe(1); // still counted after the reset
  });
}));

for (const path of ['reference', 'wasm'] as const) {
  describe(`${path} data path`, () => {
    beforeAll(() => { dataPath = path; });
    for (const suite of suites) suite();
  });
}
