// One WebAssembly instance is one host: its linear memory holds the vCPU states, the CPUID table and
// guest RAM (ARCHITECTURE.md, section 1). This module loads wasm/ ("kvm.ko") and gives the VMM typed
// access to a vCPU's registers and exit record through the offsets of wasm/abi.ts.
import { readFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as abi from '../../wasm/abi.ts';
import { defaultCpuid, writeCpuidTable, type CpuidEntry } from '../cpu/cpuid.ts';
import { HostFrameAllocator, NestedPageTable, type PageSize } from '../hv/mm/nested-page-table.ts';

export interface WasmCore {
  run(vcpu: number, budget: number): number;
  setFlatMemory(bytes: number): void;
  setFirmwareRom(bytes: number): void;
  abiChecksum(): number;
  setHostPool(bytes: number): void;
  configureTlb(array: number, sets: number, ways: number): number;
  configureCacheModel(bytes: number, ways: number): number;
  traceWalks(on: number): void;
  invept(): void;
  configureNestedTlb(on: number): void;
  configurePdeCache(on: number): void;
  configureMicroTlb(on: number): void;
  flushTlb(vcpu: number): void;
  probeWalk(vcpu: number, gvaLo: number, gvaHi: number, access: number, cpl: number, implicit: number): number;
  shadowRegionBytes(frames: number, poolBytes: number, ramBytes: number): number;
  configureShadow(base: number, frames: number, poolBytes: number, ramBytes: number): void;
  zapShadow(): void;
  hostWroteGuest(gpa: number, bytes: number): void;
  shadowRootHpa(vcpu: number): number;
  readRflags(vcpu: number): number;
  writeRflags(vcpu: number, value: number): void;
  invalidateDecoded(): void;
  blkWalkChain(tableGpa: number, tableSize: number, head: number, indirectAllowed: number): number;
  blkCopy(first: number, count: number, offset: number, staging: number, length: number, toGuest: number): number;
}

const WASM_PATH = fileURLToPath(new URL('../../build/wasm/hvlab.wasm', import.meta.url));
let compiled: WebAssembly.Module | undefined;

/** The compiled core, built by `npm ci` (prepare) or `npm run asbuild`. */
export function coreModule(): WebAssembly.Module {
  if (!compiled) {
    if (!existsSync(WASM_PATH)) {
      throw new Error(`hvlab: ${WASM_PATH} is missing; run \`npm run asbuild\` (npm ci does it).`);
    }
    compiled = new WebAssembly.Module(readFileSync(WASM_PATH));
  }
  return compiled;
}

export const EXIT_NAMES: Record<number, string> = {
  [abi.EXIT_NONE]: 'none', [abi.EXIT_BUDGET]: 'budget', [abi.EXIT_HLT]: 'hlt',
  [abi.EXIT_EXCEPTION]: 'exception', [abi.EXIT_SHUTDOWN]: 'shutdown', [abi.EXIT_IO]: 'io',
  [abi.EXIT_EPT_VIOLATION]: 'ept-violation', [abi.EXIT_IRQ_WINDOW]: 'irq-window',
};

/** How guest-physical memory reaches host memory: `direct` (gpa = host offset), `ept` (the
 *  two-dimensional walk through a host-owned nested page table) or `shadow` (shadow page tables
 *  gva -> hpa kept by the hypervisor, wasm/mmu/shadow.ts). */
export type MmuMode = 'direct' | 'ept' | 'shadow';
export const MMU_MODES: readonly MmuMode[] = ['direct', 'ept', 'shadow'];

/** TLB geometry: sets x ways for the 4 KiB, 2 MiB and 1 GiB arrays and the second level. */
export interface TlbGeometry {
  name: string; l1_4k: [number, number]; l1_2m: [number, number]; l1_1g: [number, number]; l2: [number, number];
  /** The nested TLB: 2D walks reuse gpa -> hpa translations of guest page-table pages. */
  nestedTlb: boolean;
  /** The PDE cache: 4-level walks that hit start at the page table (SDM 4.10.3). */
  pdeCache: boolean;
  /** The micro-TLB in front of the arrays (its hits bypass the model's counters). */
  microTlb: boolean;
}

/** The default (large, for running guests fast) and a realistic preset modelled on an Intel Skylake
 *  core (64-entry 4-way 4 KiB DTLB, 32-entry 4-way 2 MiB, 4-entry 1 GiB, 1536-entry 12-way STLB). */
export const TLB_PRESETS: Record<string, TlbGeometry> = {
  default: { name: 'default', l1_4k: [4096, 2], l1_2m: [512, 2], l1_1g: [16, 2], l2: [0, 0], nestedTlb: true, pdeCache: true, microTlb: true },
  skylake: { name: 'skylake', l1_4k: [16, 4], l1_2m: [8, 4], l1_1g: [1, 4], l2: [128, 12], nestedTlb: false, pdeCache: false, microTlb: false },
};

export type AccessKind = 'read' | 'write' | 'fetch';
const ACCESS: Record<AccessKind, number> = { read: abi.ACC_READ, write: abi.ACC_WRITE, fetch: abi.ACC_FETCH };

export type WalkProbe =
  | { ok: true; gpa: bigint; hpa: bigint; pageShift: number; hostPageShift: number }
  | { ok: false; vector: number; error: number };

/** What the machine's devices answer for device memory and device MSRs (the core's host calls). */
export interface HostDevices {
  mmioRead?(vcpu: number, gpa: number, size: number): number | bigint;
  mmioWrite?(vcpu: number, gpa: number, size: number, value: number | bigint): void;
  /** The MSR's value, null for #GP, undefined when no device owns it. */
  msrRead?(vcpu: number, index: number): bigint | null | undefined;
  /** true done, false for #GP, undefined when no device owns it. */
  msrWrite?(vcpu: number, index: number, value: bigint): boolean | undefined;
}

export interface HostOptions {
  /** Guest RAM in bytes (flat mode: linear = guest-physical = offset). */
  ramBytes: number;
  cpuid?: CpuidEntry[];
  /** Firmware image mapped so that it ends at 4 GiB (the reset vector is its last 16 bytes). */
  firmware?: Uint8Array;
  /** `direct` (default), `ept` or `shadow`. */
  mmu?: MmuMode;
  /** Leaf size of the host's mappings of guest RAM under `ept` and `shadow` (default 2m when RAM is
   *  2 MiB-aligned, as a host with transparent huge pages would back it). */
  hostPageSize?: PageSize;
  /** Shadow pages under `shadow` (default: one per 64 KiB of RAM, at least 512, at most 32768). */
  shadowPages?: number;
}

/** Size of the block I/O staging buffer: larger transfers are made in pieces. */
export const BLOCK_STAGING_BYTES = 4 << 20;

export class Host {
  readonly memory: WebAssembly.Memory;
  readonly core: WasmCore;
  readonly ramBytes: number;
  readonly mmu: MmuMode;
  /** The nested page table of this host's guest (under --mmu ept). */
  readonly ept: NestedPageTable | null = null;
  /** Under --mmu shadow: the host's gpa -> hpa map (the same EPT-format table, but walked by the
   *  shadow MMU in software, never by the hardware: KVM's memslots and host page tables). */
  readonly gpaMap: NestedPageTable | null = null;
  /** Under --mmu shadow: the shadow MMU's region of host memory (frames first). */
  readonly shadowRegion: { hpa: number; frames: number; bytes: number } | null = null;
  readonly frames: HostFrameAllocator;
  /** Host memory [blockStagingBase, + BLOCK_STAGING_BYTES): staging for block I/O (wasm-dma.ts). */
  readonly blockStagingBase: number;
  private u8!: Uint8Array;
  private dv!: DataView;

  constructor(opts: HostOptions) {
    const ram = opts.ramBytes;
    if (!(ram > 0) || ram % abi.WASM_PAGE !== 0 || abi.GUEST_RAM_BASE + ram > 0xffff0000) {
      throw new Error(`hvlab: guest RAM must be a positive multiple of 64 KiB below ~4 GiB (got ${ram})`);
    }
    this.ramBytes = ram;
    const rom = opts.firmware ? (opts.firmware.length + 0xffff) & ~0xffff : 0;
    if (opts.firmware && (opts.firmware.length === 0 || opts.firmware.length > 16 << 20)) {
      throw new Error(`hvlab: a firmware image must be between 1 byte and 16 MiB (got ${opts.firmware.length})`);
    }
    // Host frames for page tables (nested now, shadow later) follow RAM and ROM in the pool.
    const tableReserve = Math.ceil(ram / 256 / abi.WASM_PAGE) * abi.WASM_PAGE + 0x40000;
    const pages = (abi.GUEST_RAM_BASE + ram + rom + tableReserve) / abi.WASM_PAGE;
    this.memory = new WebAssembly.Memory({ initial: pages, maximum: 65536 });
    const instance = new WebAssembly.Instance(coreModule(), { env: {
      memory: this.memory,
      // A device that throws must not unwind through the core: the error is kept for the VMM, which
      // ends the run with it, and the access completes as on an undriven bus.
      mmioRead: (vcpu: number, lo: number, hi: number, size: number, dst: number) => this.guarded(() => this.mmioRead(vcpu, lo, hi, size, dst), undefined),
      mmioWrite: (vcpu: number, lo: number, hi: number, size: number, src: number) => this.guarded(() => this.mmioWrite(vcpu, lo, hi, size, src), undefined),
      msrRead: (vcpu: number, index: number) => this.guarded(() => this.msrRead(vcpu, index >>> 0), 0),
      msrWrite: (vcpu: number, index: number) => this.guarded(() => this.msrWrite(vcpu, index >>> 0), 0),
    } });
    this.core = instance.exports as unknown as WasmCore;
    this.mmu = opts.mmu ?? 'direct';
    const poolBytes = ram + rom + tableReserve;
    if (this.mmu === 'shadow') {
      // The shadow MMU's pages and bookkeeping follow the pool; their size comes from the core.
      const frames = opts.shadowPages ?? Math.min(32768, Math.max(512, Math.floor(ram / 0x10000)));
      const bytes = Math.ceil(this.core.shadowRegionBytes(frames, poolBytes, ram) / abi.WASM_PAGE) * abi.WASM_PAGE;
      if (abi.GUEST_RAM_BASE + poolBytes + bytes > 0xffff0000) throw new Error('hvlab: no room for the shadow MMU under 4 GiB');
      this.memory.grow(bytes / abi.WASM_PAGE);
      this.shadowRegion = { hpa: poolBytes, frames, bytes };
    }
    // Last, the block data path's staging buffer (the image cache of wasm/blk), shared by the disks:
    // devices run one request at a time.
    this.blockStagingBase = this.memory.buffer.byteLength;
    this.memory.grow(BLOCK_STAGING_BYTES / abi.WASM_PAGE);
    this.refreshViews();
    this.core.setFlatMemory(ram);
    this.core.setHostPool(poolBytes);
    this.frames = new HostFrameAllocator(this.dv, ram + rom, poolBytes);
    if (this.shadowRegion) this.core.configureShadow(this.shadowRegion.hpa, this.shadowRegion.frames, poolBytes, ram);
    if (this.mmu === 'ept' || this.mmu === 'shadow') {
      const ept = new NestedPageTable(this.dv, this.frames);
      const size = opts.hostPageSize ?? (ram % 0x200000 === 0 ? '2m' : '4k');
      // Guest RAM is backed eagerly and at the same offsets (gpa = hpa): every guest page-table
      // reference and data access still goes through the nested walk.
      ept.map(0, 0, ram - (ram % (size === '1g' ? 0x40000000 : size === '2m' ? 0x200000 : 0x1000)), size);
      const rest = ram % (size === '1g' ? 0x40000000 : size === '2m' ? 0x200000 : 0x1000);
      if (rest) ept.map(ram - rest, ram - rest, rest, '4k');
      if (this.mmu === 'ept') this.ept = ept; else this.gpaMap = ept;
    }
    if (opts.firmware) {
      // The image's last byte sits at 4 GiB - 1; a shorter image is padded at the front with 0xFF.
      const romBase = abi.GUEST_RAM_BASE + ram;
      this.u8.fill(0xff, romBase, romBase + rom);
      this.u8.set(opts.firmware, romBase + rom - opts.firmware.length);
      this.core.setFirmwareRom(rom);
      // Like a PC's shadowed BIOS, the last 128 KiB are also at 0xE0000-0xFFFFF in low memory.
      const low = opts.firmware.subarray(Math.max(0, opts.firmware.length - 0x20000));
      if (ram >= 0x100000) this.u8.set(low, abi.GUEST_RAM_BASE + 0x100000 - low.length);
    }
    writeCpuidTable(this.dv, opts.cpuid ?? defaultCpuid());
  }

  /** Device memory and device MSRs: the machine installs its handlers here (default: nothing there). */
  devices: HostDevices = {};
  /** The first error a device handler threw during a host call (the VMM reports it and stops). */
  deviceError: Error | null = null;

  private guarded<T>(f: () => T, fallback: T): T {
    try { return f(); } catch (e) {
      this.deviceError ??= e instanceof Error ? e : new Error(String(e));
      return fallback;
    }
  }

  private mmioRead(vcpu: number, lo: number, hi: number, size: number, dst: number): void {
    const gpa = (hi >>> 0) * 2 ** 32 + (lo >>> 0);
    const v = this.devices.mmioRead ? this.devices.mmioRead(vcpu, gpa, size) : size === 8 ? -1n : 0xffffffff;
    const big = BigInt.asUintN(64, typeof v === 'bigint' ? v : BigInt(v >>> 0));
    for (let i = 0; i < size; i++) this.u8[dst + i] = Number((big >> BigInt(8 * i)) & 0xffn);
  }
  private mmioWrite(vcpu: number, lo: number, hi: number, size: number, src: number): void {
    if (!this.devices.mmioWrite) return;
    const gpa = (hi >>> 0) * 2 ** 32 + (lo >>> 0);
    const value = size === 8 ? this.dv.getBigUint64(src, true)
      : size === 4 ? this.dv.getUint32(src, true) : size === 2 ? this.dv.getUint16(src, true) : this.u8[src];
    this.devices.mmioWrite(vcpu, gpa, size, value);
  }
  private msrRead(vcpu: number, index: number): number {
    const v = this.devices.msrRead?.(vcpu, index);
    if (v === undefined) return -1;
    if (v === null) return 0;
    this.dv.setBigUint64(abi.MSR_DATA, BigInt.asUintN(64, v), true);
    return 1;
  }
  private msrWrite(vcpu: number, index: number): number {
    const r = this.devices.msrWrite?.(vcpu, index, this.dv.getBigUint64(abi.MSR_DATA, true));
    return r === undefined ? -1 : r ? 1 : 0;
  }

  /** Typed views are detached when memory grows; the host never grows it after construction. */
  private refreshViews(): void {
    this.u8 = new Uint8Array(this.memory.buffer);
    this.dv = new DataView(this.memory.buffer);
  }

  get bytes(): Uint8Array { return this.u8; }
  get view(): DataView { return this.dv; }

  /** Guest RAM as a byte array (offset = guest-physical address), for reading. Writes must go
   *  through writeGuest/fillGuest so that decoded instructions of the changed bytes are dropped. */
  ram(): Uint8Array { return this.u8.subarray(abi.GUEST_RAM_BASE, abi.GUEST_RAM_BASE + this.ramBytes); }

  /** Copy bytes into guest RAM at guest-physical `addr`. */
  writeGuest(addr: number, data: ArrayLike<number>): void {
    if (!(addr >= 0 && addr + data.length <= this.ramBytes)) {
      throw new Error(`hvlab: guest write [0x${addr.toString(16)}, +${data.length}) is outside guest RAM`);
    }
    this.u8.set(data, abi.GUEST_RAM_BASE + addr);
    this.core.hostWroteGuest(addr, data.length); // untrapped: decoded code and shadow pages of those gfns go
  }

  /** Fill guest RAM [addr, addr + length) with `value`. */
  fillGuest(addr: number, length: number, value: number): void {
    if (!(addr >= 0 && addr + length <= this.ramBytes)) {
      throw new Error(`hvlab: guest fill [0x${addr.toString(16)}, +${length}) is outside guest RAM`);
    }
    this.u8.fill(value, abi.GUEST_RAM_BASE + addr, abi.GUEST_RAM_BASE + addr + length);
    this.core.hostWroteGuest(addr, length);
  }

  /** Choose the TLB geometry (every vCPU's TLBs are flushed). */
  configureTlb(g: TlbGeometry): void {
    const arrays: Array<[number, [number, number]]> = [
      [abi.PS_4K, g.l1_4k], [abi.PS_2M, g.l1_2m], [abi.PS_1G, g.l1_1g], [abi.TLB_L2, g.l2]];
    for (const [a, [sets, ways]] of arrays) {
      if (!this.core.configureTlb(a, sets, ways)) throw new Error(`hvlab: TLB geometry ${g.name} is not possible (array ${a}: ${sets} sets x ${ways} ways)`);
    }
    this.core.configureNestedTlb(g.nestedTlb ? 1 : 0);
    this.core.configurePdeCache(g.pdeCache ? 1 : 0);
    this.core.configureMicroTlb(g.microTlb ? 1 : 0);
  }

  /** The data-cache model (0 bytes turns it off). */
  configureCacheModel(bytes: number, ways: number): void {
    if (!this.core.configureCacheModel(bytes, ways)) throw new Error(`hvlab: a ${bytes}-byte ${ways}-way cache model is not possible`);
  }

  /** The host changed nested mappings: drop every cached translation (INVEPT). */
  commitNestedMappings(): void { this.core.invept(); }

  /** The page-table references recorded since tracing was armed: dimension, level, gpa, hpa, entry, cache miss. */
  walkTrace(): Array<{ dim: number; level: number; gpa: bigint; hpa: bigint; entry: bigint; cacheMiss: boolean | null }> {
    const n = this.dv.getUint32(abi.MMU_TRACE_COUNT, true);
    const out = [];
    for (let i = 0; i < n; i++) {
      const r = abi.MMU_TRACE_BASE + i * 32;
      const c = this.u8[r + 2];
      out.push({ dim: this.u8[r], level: this.u8[r + 1], gpa: this.dv.getBigUint64(r + 8, true),
        hpa: this.dv.getBigUint64(r + 16, true), entry: this.dv.getBigUint64(r + 24, true), cacheMiss: c === 2 ? null : c === 1 });
    }
    return out;
  }

  vcpu(index: number): Vcpu {
    if (!(index >= 0 && index < abi.MAX_VCPUS)) throw new Error(`hvlab: vCPU index ${index} out of range`);
    return new Vcpu(this, index);
  }
}

export interface Segment { base: bigint; limit: number; selector: number; attr: number }

export interface ExitInfo {
  reason: number;
  name: string;
  vector: number;
  errorCode: number;
  hasErrorCode: boolean;
  address: bigint;
  rip: bigint;
  bytes: Uint8Array;
  opcode: number;
}

export class Vcpu {
  readonly base: number;
  constructor(readonly host: Host, readonly index: number) {
    this.base = abi.VCPU_AREA_BASE + index * abi.VCPU_STRIDE;
  }

  private u64(off: number): bigint { return this.host.view.getBigUint64(this.base + off, true); }
  private setU64(off: number, v: bigint): void { this.host.view.setBigUint64(this.base + off, BigInt.asUintN(64, v), true); }
  private u32(off: number): number { return this.host.view.getUint32(this.base + off, true); }

  /** Zero the whole state (registers, lazy flags, exit record, counters); the x87 control word and
   *  MXCSR get their initialized values (FNINIT: 0x037F; MXCSR: 0x1F80, SDM Vol. 1, 8.1.5 and 10.2.3). */
  reset(): void {
    this.host.bytes.fill(0, this.base, this.base + abi.VCPU_STRIDE);
    this.rflags = 0x202n;
    const fx = this.base + abi.ST_FXSAVE;
    this.host.view.setUint16(fx + abi.FX_FCW, 0x037f, true);
    this.host.view.setUint32(fx + abi.FX_MXCSR, 0x1f80, true);
    this.host.view.setUint32(fx + abi.FX_MXCSR_MASK, 0xffff, true);
    this.host.view.setInt32(this.base + abi.ST_IRQ_VECTOR, -1, true);
    this.setU64(abi.ST_XCR0, 1n); // XCR0 resets to x87 only (SDM Vol. 1, 13.3)
    // The MMU configuration belongs to the host (the VMCS), not to the guest's architectural state.
    if (this.host.ept) this.setU64(abi.ST_EPTP, this.host.ept.eptp);
    if (this.host.gpaMap) {
      this.setU64(abi.ST_SHADOW, BigInt(this.host.gpaMap.root) | BigInt(abi.SHADOW_ENABLE));
      this.host.core.zapShadow(); // (the roots this vCPU held are forgotten with its state)
    }
    this.host.core.flushTlb(this.index);
  }

  /** One cold translation (no TLB) on the vCPU's current paging state, as at privilege `cpl`. */
  probeWalk(gva: bigint, access: AccessKind, cpl: number, implicitSupervisor = false): WalkProbe {
    const v = BigInt.asUintN(64, gva);
    const r = this.host.core.probeWalk(this.index, Number(v & 0xffffffffn) | 0, Number(v >> 32n) | 0, ACCESS[access], cpl, implicitSupervisor ? 1 : 0);
    const dv = this.host.view;
    if (r !== 0) return { ok: false, vector: r, error: dv.getUint32(abi.PROBE_ERROR, true) };
    return { ok: true, gpa: dv.getBigUint64(abi.PROBE_GPA, true), hpa: dv.getBigUint64(abi.PROBE_HPA, true),
      pageShift: dv.getUint32(abi.PROBE_PAGE_SHIFT, true), hostPageShift: dv.getUint32(abi.PROBE_HOST_PAGE_SHIFT, true) };
  }

  /** An MMU counter of this vCPU (MC_* in wasm/abi.ts). */
  mmuCounter(slot: number): bigint {
    return this.host.view.getBigUint64(abi.MMU_COUNTERS_BASE + (this.index * abi.MMU_COUNTER_SLOTS + slot) * 8, true);
  }
  resetMmuCounters(): void {
    const at = abi.MMU_COUNTERS_BASE + this.index * abi.MMU_COUNTER_SLOTS * 8;
    this.host.bytes.fill(0, at, at + abi.MMU_COUNTER_SLOTS * 8);
  }

  /** Raise the INTR line with `vector` (like KVM_INTERRUPT): delivered at the first instruction
   *  boundary with RFLAGS.IF = 1 outside an STI/MOV SS shadow. */
  injectInterrupt(vector: number): void {
    if (!(vector >= 0 && vector < 256)) throw new Error(`hvlab: interrupt vector ${vector} out of range`);
    this.host.view.setInt32(this.base + abi.ST_IRQ_VECTOR, vector, true);
  }
  /** The injected interrupt not yet taken (the guest has IF = 0), or -1. */
  get pendingInterrupt(): number { return this.host.view.getInt32(this.base + abi.ST_IRQ_VECTOR, true); }
  /** Ask for EXIT_IRQ_WINDOW as soon as the guest can take an interrupt (KVM's request_interrupt_window). */
  requestInterruptWindow(on = true): void { this.host.view.setUint32(this.base + abi.ST_IRQ_WINDOW, on ? 1 : 0, true); }
  /** RFLAGS.IF. */
  get interruptsEnabled(): boolean { return (this.host.core.readRflags(this.index) & 0x200) !== 0; }
  injectNmi(): void { this.host.view.setUint32(this.base + abi.ST_NMI_PENDING, 1, true); }
  get nmiPending(): boolean { return this.u32(abi.ST_NMI_PENDING) !== 0; }
  get interruptsDelivered(): number { return this.u32(abi.ST_INTERRUPTED); }

  reg(i: number): bigint { return this.u64(abi.ST_GPR + i * 8); }
  setReg(i: number, v: bigint): void { this.setU64(abi.ST_GPR + i * 8, v); }
  get rip(): bigint { return this.u64(abi.ST_RIP); }
  set rip(v: bigint) { this.setU64(abi.ST_RIP, v); }
  get rflags(): bigint { return BigInt(this.host.core.readRflags(this.index) >>> 0); }
  set rflags(v: bigint) { this.host.core.writeRflags(this.index, Number(v & 0xffffffffn)); }
  get fsBase(): bigint { return this.u64(abi.ST_FS_BASE); }
  set fsBase(v: bigint) { this.setU64(abi.ST_FS_BASE, v); }
  get gsBase(): bigint { return this.u64(abi.ST_GS_BASE); }
  set gsBase(v: bigint) { this.setU64(abi.ST_GS_BASE, v); }

  counter(slot: number): bigint { return this.u64(abi.ST_COUNTERS + slot * 8); }

  /** MODE_FLAT64 (the test harness: 64-bit, CPL 3, exceptions exit) or MODE_ARCH. */
  get mode(): number { return this.u32(abi.ST_MODE); }
  set mode(m: number) { this.host.view.setUint32(this.base + abi.ST_MODE, m, true); }

  segment(i: number): Segment {
    const at = abi.ST_SEG + i * abi.SEG_SLOT;
    return {
      base: this.u64(at + abi.SEG_BASE),
      limit: this.u32(at + abi.SEG_LIMIT),
      selector: this.host.view.getUint16(this.base + at + abi.SEG_SELECTOR, true),
      attr: this.host.view.getUint16(this.base + at + abi.SEG_ATTR, true),
    };
  }
  setSegment(i: number, s: Segment): void {
    const at = abi.ST_SEG + i * abi.SEG_SLOT;
    this.setU64(at + abi.SEG_BASE, s.base);
    this.host.view.setUint32(this.base + at + abi.SEG_LIMIT, s.limit >>> 0, true);
    this.host.view.setUint16(this.base + at + abi.SEG_SELECTOR, s.selector, true);
    this.host.view.setUint16(this.base + at + abi.SEG_ATTR, s.attr, true);
  }
  reg64(off: number): bigint { return this.u64(off); }
  setReg64(off: number, v: bigint): void { this.setU64(off, v); }
  get cr0(): bigint { return this.u64(abi.ST_CR0); }
  set cr0(v: bigint) { this.setU64(abi.ST_CR0, v); }
  setDescriptorTable(which: 'gdt' | 'idt', base: bigint, limit: number): void {
    this.setU64(which === 'gdt' ? abi.ST_GDTR_BASE : abi.ST_IDTR_BASE, base);
    this.host.view.setUint32(this.base + (which === 'gdt' ? abi.ST_GDTR_LIMIT : abi.ST_IDTR_LIMIT), limit, true);
  }

  /** Architectural reset (SDM Vol. 3A, 9.1.1, Table 9-1): real mode, CS = F000h with base
   *  FFFF0000h, IP = FFF0h, data segments 0 with 64 KiB limits, EDX = the processor signature. */
  resetArchitectural(signature = 0x00050650): void {
    this.reset();
    this.mode = abi.MODE_ARCH;
    this.cr0 = 0x60000010n;
    const data = { base: 0n, limit: 0xffff, selector: 0, attr: 0x93 };
    for (const s of [abi.SEG_ES, abi.SEG_SS, abi.SEG_DS, abi.SEG_FS, abi.SEG_GS]) this.setSegment(s, data);
    this.setSegment(abi.SEG_CS, { base: 0xffff0000n, limit: 0xffff, selector: 0xf000, attr: 0x9b });
    this.setSegment(abi.SEG_LDTR, { base: 0n, limit: 0xffff, selector: 0, attr: 0x82 });
    this.setSegment(abi.SEG_TR, { base: 0n, limit: 0xffff, selector: 0, attr: 0x8b });
    this.setDescriptorTable('gdt', 0n, 0xffff);
    this.setDescriptorTable('idt', 0n, 0xffff);
    this.rip = 0xfff0n;
    this.rflags = 0x2n;
    this.setReg(2, BigInt(signature));
  }

  /** The port I/O exit (EXIT_IO) the vCPU stopped on. */
  io(): { port: number; size: number; isIn: boolean; data: number } {
    return {
      port: this.u32(abi.ST_IO_PORT),
      size: this.u32(abi.ST_IO_SIZE),
      isIn: this.u32(abi.ST_IO_DIR) === abi.IO_IN,
      data: this.u32(abi.ST_IO_DATA),
    };
  }
  /** Answer an IN: the value is loaded into AL/AX/EAX when the vCPU runs again. */
  completeIn(value: number): void { this.host.view.setUint32(this.base + abi.ST_IO_DATA, value >>> 0, true); }

  /** #UD counts of opcodes hvlab does not implement, by opcode index (see OPC_* in abi.ts). */
  unimplementedOpcodes(): Map<number, number> {
    const out = new Map<number, number>();
    for (let i = 0; i < abi.OPC_COUNT; i++) {
      const n = this.u32(abi.ST_UD_BY_OPCODE + i * 4);
      if (n) out.set(i, n);
    }
    return out;
  }

  /** Execute until an exit or `budget` instructions. */
  run(budget: number): number { return this.host.core.run(this.index, budget); }

  exit(): ExitInfo {
    const reason = this.u32(abi.ST_EXIT_REASON);
    const len = this.u32(abi.ST_EXIT_LENGTH);
    const start = this.base + abi.ST_EXIT_BYTES;
    return {
      reason,
      name: EXIT_NAMES[reason] ?? `exit ${reason}`,
      vector: this.u32(abi.ST_EXIT_VECTOR),
      errorCode: this.u32(abi.ST_EXIT_ERROR_CODE),
      hasErrorCode: this.u32(abi.ST_EXIT_HAS_ERROR) !== 0,
      address: this.u64(abi.ST_EXIT_ADDR),
      rip: this.u64(abi.ST_EXIT_RIP),
      bytes: this.host.bytes.slice(start, start + len),
      opcode: this.u32(abi.ST_EXIT_OPCODE),
    };
  }
}

/** Opcode index (abi OPC_* space) as the bytes a reader recognises: "0F AF", "0F 38 F0", "C7". */
export function opcodeName(idx: number): string {
  const op = (idx & 0xff).toString(16).toUpperCase().padStart(2, '0');
  switch (idx >> 8) {
    case 0: return op;
    case 1: return `0F ${op}`;
    case 2: return `0F 38 ${op}`;
    default: return `0F 3A ${op}`;
  }
}
