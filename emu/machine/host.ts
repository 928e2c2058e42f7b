// One WebAssembly instance is one host: its linear memory holds the vCPU states, the CPUID table and
// the host frame pool that backs every guest's RAM (ARCHITECTURE.md, section 1). A Host runs any
// number of VMs (createVm); `new Host({ ramBytes })` is the one-guest host of the labs and tests.
// This module loads wasm/ ("kvm.ko") and gives the VMM typed access to a VM's memory and a vCPU's
// registers and exit record through the offsets of wasm/abi.ts.
import { readFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as abi from '../../wasm/abi.ts';
import { defaultCpuid, writeCpuidTable, type CpuidEntry } from '../cpu/cpuid.ts';
import { NestedPageTable, type PageSize } from '../hv/mm/nested-page-table.ts';
import { FramePool, FRAME_BYTES, OutOfHostMemory } from '../hv/mm/frame-pool.ts';
import { GuestMemory } from './guest-memory.ts';
import { SwapFile, type SwapOptions } from '../hv/mm/swap.ts';
import { Reclaimer, ContainerOutOfMemory, type MemoryLimits } from '../hv/mm/reclaim.ts';

export interface WasmCore {
  run(vcpu: number, budget: number): number;
  mmuDefaults(): void;
  vmConfigured(vm: number): void;
  abiChecksum(): number;
  configureTlb(array: number, sets: number, ways: number): number;
  configureCacheModel(bytes: number, ways: number): number;
  traceWalks(on: number): void;
  invept(vm: number): void;
  configureNestedTlb(on: number): void;
  configurePdeCache(on: number): void;
  configureMicroTlb(on: number): void;
  flushTlb(vcpu: number): void;
  probeWalk(vcpu: number, gvaLo: number, gvaHi: number, access: number, cpl: number, implicit: number): number;
  shadowRegionBytes(frames: number, poolBytes: number, ramBytes: number): number;
  configureShadow(vm: number, base: number, frames: number, poolBytes: number, ramBytes: number): void;
  zapShadow(vm: number): void;
  hostWroteGuest(vm: number, gpa: number, bytes: number): void;
  hostRewroteFrames(first: number, count: number): void;
  shadowRootHpa(vcpu: number): number;
  readRflags(vcpu: number): number;
  writeRflags(vcpu: number, value: number): void;
  blkWalkChain(vm: number, tableGpa: number, tableSize: number, head: number, indirectAllowed: number): number;
  blkCopy(vm: number, first: number, count: number, offset: number, staging: number, length: number, toGuest: number): number;
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
  [abi.EXIT_HYPERCALL]: 'hypercall', [abi.EXIT_PAUSE_LOOP]: 'pause-loop',
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

/** A one-guest host (`new Host({ ramBytes, ... })`): one VM (index 0) that owns every vCPU slot, its
 *  RAM backed eagerly at the start of the pool (gpa = hpa), as the labs and tests expect. */
export interface HostOptions {
  /** Guest RAM in bytes. */
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

/** A host of many guests: a frame pool of `poolBytes` and no VM until createVm. */
export interface HostPoolOptions {
  poolBytes: number;
  cpuid?: CpuidEntry[];
  /** Host swap (a file of 4 KiB slots); without it reclaim can still drop zero pages. */
  swap?: SwapOptions;
  /** Free-frame watermarks of reclaim (default: low 1% of the pool, at least 64 frames; high 2x). */
  watermarks?: { low: number; high: number };
  /** Reclaim that writes every page (the overcommit bench's baseline); default false. */
  naiveReclaim?: boolean;
}

export interface VmOptions {
  ramBytes: number;
  /** vCPU slots of the VM (consecutive host vCPU indices). */
  vcpus: number;
  mmu?: MmuMode;
  firmware?: Uint8Array;
  hostPageSize?: PageSize;
  shadowPages?: number;
  /** Guest RAM allocated on first touch (ept and shadow only); default false: backed eagerly. */
  demand?: boolean;
  name?: string;
  /** The guest's CPUID (its CPU model and paravirtual leaves); default: the host's. */
  cpuid?: CpuidEntry[];
  /** Its memory container (cgroup v2 memory.max, memory.high, memory.low, swap.max in bytes;
   *  default none). */
  memoryMax?: number;
  memoryHigh?: number;
  memoryLow?: number;
  swapMax?: number;
}

/** Size of the block I/O staging buffer: larger transfers are made in pieces. */
export const BLOCK_STAGING_BYTES = 4 << 20;
const TWO_MIB = 0x200000;
const roundUp = (n: number, to: number) => Math.ceil(n / to) * to;
/** The largest pool one instance can address (wasm32: 4 GiB of linear memory). */
export const MAX_POOL_BYTES = 0xf0000000 - abi.HOST_POOL_BASE;

/** A guest of the host (KVM's struct kvm): its memory, its vCPU slots, its device handlers. */
export class Vm {
  readonly memory: GuestMemory;
  /** The nested page table (under --mmu ept). */
  readonly ept: NestedPageTable | null = null;
  /** Under --mmu shadow: the host's gpa -> hpa map (the same EPT-format table, walked by the shadow
   *  MMU in software, never by the hardware: KVM's memslots and host page tables). */
  readonly gpaMap: NestedPageTable | null = null;
  /** Under --mmu shadow: the shadow MMU's region of the pool. */
  readonly shadowRegion: { hpa: number; frames: number; bytes: number } | null = null;
  /** Device memory and device MSRs of this guest (the board installs its handlers). */
  devices: HostDevices = {};
  /** EPT violations (and shadow host-map faults) this VM's vCPUs took. */
  eptViolations = 0;
  /** Set when the host could not give the VM a frame it needed (the VMM stops it). */
  outOfMemory = false;
  readonly name: string;
  /** Its memory container's limits (bytes). */
  readonly limits: MemoryLimits;
  /** The nested table reclaim reads A/D flags from: EPT with demand paging (shadow MMU VMs and
   *  eagerly backed VMs are never reclaimed). */
  readonly reclaimMap: NestedPageTable | null;

  constructor(readonly host: Host, readonly index: number, readonly mmu: MmuMode, readonly ramBytes: number,
    readonly vcpuFirst: number, readonly vcpuCount: number, opts: VmOptions) {
    this.name = opts.name ?? `vm${index}`;
    const pool = host.pool;
    const demand = !!opts.demand && mmu !== 'direct';
    const frames = (bytes: number) => Math.ceil(bytes / FRAME_BYTES);
    let contiguousHpa = -1;
    if (!demand) {
      // Eager backing: RAM as one run (2 MiB-aligned when it can use 2 MiB leaves).
      contiguousHpa = pool.allocContiguous(index, frames(ramBytes), abi.FRAME_GUEST, ramBytes % TWO_MIB === 0 ? 512 : 1, 0) * FRAME_BYTES;
    }
    let map: NestedPageTable | null = null;
    if (mmu !== 'direct') {
      map = new NestedPageTable(host.view, {
        allocate: () => {
          const f = pool.allocTableFrame(index);
          if (f < 0) throw new OutOfHostMemory('no host frame left for a nested page table');
          return f * FRAME_BYTES;
        },
        release: (hpa) => pool.free(hpa / FRAME_BYTES),
      });
      if (mmu === 'ept') this.ept = map; else this.gpaMap = map;
      // A host that reclaims needs to know what the guest uses: EPT A/D flags (SDM Vol. 3C, 28.3.5).
      map.accessDirty = mmu === 'ept' && demand;
    }
    this.memory = new GuestMemory(host, index, ramBytes, map, contiguousHpa, demand);
    this.reclaimMap = map && map.accessDirty ? map : null;
    this.limits = { max: Infinity, high: Infinity, low: 0, swapMax: Infinity };
    this.setMemoryLimits({ max: opts.memoryMax, high: opts.memoryHigh, low: opts.memoryLow, swapMax: opts.swapMax });
    if (map && !demand) this.memory.mapContiguous(opts.hostPageSize ?? (ramBytes % TWO_MIB === 0 ? '2m' : '4k'));
    let romBytes = 0, romHpa = 0;
    if (opts.firmware) {
      if (opts.firmware.length === 0 || opts.firmware.length > 16 << 20) {
        throw new Error(`hvlab: a firmware image must be between 1 byte and 16 MiB (got ${opts.firmware.length})`);
      }
      romBytes = roundUp(opts.firmware.length, abi.WASM_PAGE);
      romHpa = pool.allocContiguous(index, frames(romBytes), abi.FRAME_ROM) * FRAME_BYTES;
      // The image's last byte sits at 4 GiB - 1; a shorter image is padded at the front with 0xFF.
      const at = abi.HOST_POOL_BASE + romHpa;
      host.bytes.fill(0xff, at, at + romBytes);
      host.bytes.set(opts.firmware, at + romBytes - opts.firmware.length);
    }
    // The control block: what run() loads when it switches to this VM.
    const b = abi.VM_AREA_BASE + index * abi.VM_STRIDE;
    const dv = host.view;
    host.bytes.fill(0, b, b + abi.VM_STRIDE);
    dv.setBigUint64(b + abi.VM_RAM_SIZE, BigInt(ramBytes), true);
    dv.setBigUint64(b + abi.VM_ROM_SIZE, BigInt(romBytes), true);
    dv.setBigUint64(b + abi.VM_ROM_HPA, BigInt(romHpa), true);
    dv.setBigUint64(b + abi.VM_DIRECT_HPA, BigInt(Math.max(0, contiguousHpa)), true);
    dv.setBigUint64(b + abi.VM_HOST_MAP, BigInt(map ? map.root : 0), true);
    dv.setUint32(b + abi.VM_VCPU_FIRST, vcpuFirst, true);
    dv.setUint32(b + abi.VM_VCPU_COUNT, vcpuCount, true);
    dv.setUint32(b + abi.VM_FLAGS, (demand ? abi.VMF_DEMAND : 0) | (map ? abi.VMF_MAPPED : 0), true);
    host.core.vmConfigured(index);
    if (mmu === 'shadow') {
      const shadowFrames = opts.shadowPages ?? Math.min(32768, Math.max(512, Math.floor(ramBytes / 0x10000)));
      const bytes = roundUp(host.core.shadowRegionBytes(shadowFrames, pool.poolBytes, ramBytes), FRAME_BYTES);
      const hpa = pool.allocContiguous(index, frames(bytes), abi.FRAME_SHADOW) * FRAME_BYTES;
      this.shadowRegion = { hpa, frames: shadowFrames, bytes };
      host.core.configureShadow(index, hpa, shadowFrames, pool.poolBytes, ramBytes);
    }
    if (opts.firmware && ramBytes >= 0x100000) {
      // Like a PC's shadowed BIOS, the last 128 KiB are also at 0xE0000-0xFFFFF in low memory.
      const low = opts.firmware.subarray(Math.max(0, opts.firmware.length - 0x20000));
      this.memory.write(0x100000 - low.length, low);
    }
  }

  /** vCPU `i` of this VM (0 = the bootstrap processor). */
  vcpu(i: number): Vcpu {
    if (!(i >= 0 && i < this.vcpuCount)) throw new Error(`hvlab: ${this.name} has no vCPU ${i}`);
    return this.host.vcpu(this.vcpuFirst + i);
  }

  /** Host frames charged to this VM: guest RAM, nested tables, shadow region, ROM. */
  get chargedBytes(): number { return this.host.pool.charged4k(this.index) * FRAME_BYTES; }
  chargedFrames(): number { return this.host.pool.charged4k(this.index); }

  /** Set its container's memory.max / memory.high / memory.low / swap.max (bytes; undefined leaves
   *  one as it is). As with cgroup v2, they may change while the guest runs: a lower limit is
   *  enforced at the next fault. */
  setMemoryLimits(l: Partial<MemoryLimits>): void {
    for (const k of ['max', 'high'] as const) {
      if (l[k] !== undefined && !(l[k]! >= 16 * FRAME_BYTES)) throw new Error(`hvlab: ${this.name}: memory.${k} must be at least 64 KiB (got ${l[k]})`);
    }
    for (const [k, name] of [['low', 'memory.low'], ['swapMax', 'swap.max']] as const) {
      if (l[k] !== undefined && !(l[k]! >= 0)) throw new Error(`hvlab: ${this.name}: ${name} must be at least 0 (got ${l[k]})`);
    }
    for (const k of ['max', 'high', 'low', 'swapMax'] as const) if (l[k] !== undefined) this.limits[k] = l[k]!;
  }
  /** Of those, guest RAM frames (the guest's resident set). */
  get rssBytes(): number { return this.host.pool.held(this.index, abi.FRAME_GUEST) * FRAME_BYTES; }
  get tableBytes(): number { return this.host.pool.held(this.index, abi.FRAME_NESTED_TABLE) * FRAME_BYTES; }

  /** The host changed nested mappings of this VM: drop every cached translation (INVEPT). */
  commitNestedMappings(): void { this.host.core.invept(this.index); }

  /** An EPT violation (or shadow host-map fault) at `gpa`: a first touch gets a zeroed frame (the
   *  instruction restarts); anything else (a permission violation) is a host error for now. */
  handleEptViolation(gpa: bigint): 'mapped' | 'out-of-memory' | 'error' {
    this.eptViolations++;
    const gfn = Number(gpa >> 12n);
    if (gpa >= BigInt(this.ramBytes) || this.memory.frameOf(gfn) >= 0) return 'error';
    try { this.memory.fault(gfn); } catch (e) {
      if (e instanceof OutOfHostMemory || e instanceof ContainerOutOfMemory) { this.outOfMemory = true; this.oomReason = e.message; return 'out-of-memory'; }
      throw e;
    }
    return 'mapped';
  }

  /** Why the VM could not get a frame (the pool, or its container's memory.max). */
  oomReason = '';

  /** The sentence the VMM prints when this VM could not get a frame. */
  outOfMemoryMessage(): string {
    if (this.oomReason.startsWith('memory.max')) return `guest ${this.name}: out of memory in its container (${this.oomReason}; ${this.name} holds ${Math.round(this.chargedBytes / 2 ** 20)} MiB)`;
    return `guest ${this.name}: out of host memory (pool ${this.host.pool.poolBytes >> 20} MiB, ${this.name} holds ${Math.round(this.chargedBytes / 2 ** 20)} MiB)`;
  }

  /** Give every frame back to the pool (the VM ended). Its vCPU slots stay allocated. */
  destroy(): void { this.host.pool.releaseOwner(this.index); this.host.swap?.releaseOwner(this.index); this.destroyed = true; }
  destroyed = false;

  // ---- The one-guest conveniences (same names as on Host) ----
  writeGuest(addr: number, data: ArrayLike<number>): void { this.memory.write(addr, data); }
  fillGuest(addr: number, length: number, value: number): void { this.memory.fill(addr, length, value); }
}

export class Host {
  readonly memory: WebAssembly.Memory;
  readonly core: WasmCore;
  readonly pool: FramePool;
  readonly vms: Vm[] = [];
  /** Host swap, when configured. */
  readonly swap: SwapFile | null = null;
  /** Reclaim of guest frames (pool hosts; one-guest hosts back their guest eagerly). */
  readonly reclaimer: Reclaimer | null = null;
  /** The CPUID a VM gets unless it names its own. */
  readonly cpuid: CpuidEntry[];
  /** Host memory [blockStagingBase, + BLOCK_STAGING_BYTES): staging for block I/O (wasm-dma.ts). */
  readonly blockStagingBase: number;
  private nextVcpu = 0;
  private readonly vcpuVm: Int32Array = new Int32Array(abi.MAX_VCPUS).fill(-1);
  private u8!: Uint8Array;
  private dv!: DataView;

  constructor(opts: HostOptions | HostPoolOptions) {
    // The instance first (it tells the shadow MMU's size), then the memory grown to hold the pool.
    this.memory = new WebAssembly.Memory({ initial: abi.HOST_POOL_BASE / abi.WASM_PAGE, maximum: 65536 });
    const instance = new WebAssembly.Instance(coreModule(), { env: {
      memory: this.memory,
      // A device that throws must not unwind through the core: the error is kept for the VMM, which
      // ends the run with it, and the access completes as on an undriven bus.
      mmioRead: (vcpu: number, lo: number, hi: number, size: number, dst: number) => this.guarded(() => this.mmioRead(vcpu, lo, hi, size, dst), undefined),
      mmioWrite: (vcpu: number, lo: number, hi: number, size: number, src: number) => this.guarded(() => this.mmioWrite(vcpu, lo, hi, size, src), undefined),
      msrRead: (vcpu: number, index: number) => this.guarded(() => this.msrRead(vcpu, index >>> 0), 0),
      msrWrite: (vcpu: number, index: number) => this.guarded(() => this.msrWrite(vcpu, index >>> 0), 0),
      guestFrameFault: (vm: number, lo: number, hi: number, write: number) => this.guarded(() => this.guestFrameFault(vm, lo, hi, write !== 0), 0),
    } });
    this.core = instance.exports as unknown as WasmCore;
    const single = 'ramBytes' in opts ? opts : null;
    let poolBytes: number;
    if (single) {
      const ram = single.ramBytes;
      if (!(ram > 0) || ram % abi.WASM_PAGE !== 0 || ram > MAX_POOL_BYTES) {
        throw new Error(`hvlab: guest RAM must be a positive multiple of 64 KiB below ~4 GiB (got ${ram})`);
      }
      poolBytes = this.oneGuestPool(single);
    } else {
      poolBytes = (opts as HostPoolOptions).poolBytes;
      if (!(poolBytes >= TWO_MIB && poolBytes % TWO_MIB === 0 && poolBytes <= MAX_POOL_BYTES)) {
        throw new Error(`hvlab: host memory must be a multiple of 2 MiB between 2 MiB and ${Math.floor(MAX_POOL_BYTES / 2 ** 20)} MiB (got ${poolBytes})`);
      }
    }
    const frameTable = roundUp(poolBytes / FRAME_BYTES * abi.FRAME_ENTRY_SIZE, abi.WASM_PAGE);
    const total = abi.HOST_POOL_BASE + poolBytes + frameTable + BLOCK_STAGING_BYTES;
    if (total > 0xffff0000) throw new Error('hvlab: the host does not fit in 4 GiB of linear memory');
    this.memory.grow(total / abi.WASM_PAGE - this.memory.buffer.byteLength / abi.WASM_PAGE);
    this.refreshViews();
    this.blockStagingBase = abi.HOST_POOL_BASE + poolBytes + frameTable;
    this.pool = new FramePool(this.dv, poolBytes, abi.HOST_POOL_BASE + poolBytes, (f) => this.core.hostRewroteFrames(f, 1));
    this.core.mmuDefaults();
    this.cpuid = opts.cpuid ?? defaultCpuid();
    if (single) this.createVm({ ...single, vcpus: abi.MAX_VCPUS, demand: false });
    else {
      const o = opts as HostPoolOptions;
      if (o.swap) this.swap = new SwapFile(o.swap);
      this.reclaimer = new Reclaimer(this.pool, () => this.u8, () => this.vms, this.swap, o.watermarks, o.naiveReclaim ?? false);
    }
  }

  /** A VM is about to take a frame: reclaim first if it is at its memory.max or the pool is low. */
  makeRoom(vm: number): void { this.reclaimer?.makeRoom(vm); }

  /** Close the swap file (the host is done). */
  close(): void { this.swap?.close(); }

  /** The pool of a one-guest host: RAM, ROM, table frames and the shadow region, in 2 MiB. */
  private oneGuestPool(o: HostOptions): number {
    const ram = roundUp(o.ramBytes, TWO_MIB);
    const rom = o.firmware ? roundUp(o.firmware.length, abi.WASM_PAGE) : 0;
    const tables = roundUp(o.ramBytes / 256, abi.WASM_PAGE) + 0x40000;
    let pool = roundUp(ram + rom + tables, TWO_MIB);
    if ((o.mmu ?? 'direct') === 'shadow') {
      const frames = o.shadowPages ?? Math.min(32768, Math.max(512, Math.floor(o.ramBytes / 0x10000)));
      // The shadow region's reverse map covers the pool that holds it: grow until it fits.
      for (let i = 0; i < 4; i++) {
        const need = roundUp(ram + rom + tables + this.core.shadowRegionBytes(frames, pool, o.ramBytes) + FRAME_BYTES, TWO_MIB);
        if (need <= pool) break;
        pool = need;
      }
    }
    return pool;
  }

  /** A new guest with `vcpus` vCPU slots. Throws OutOfHostMemory when the pool cannot hold what
   *  must be there from the start (eager RAM, ROM, the shadow region). */
  createVm(opts: VmOptions): Vm {
    const index = this.vms.length;
    if (index >= abi.MAX_VMS) throw new Error(`hvlab: a host runs at most ${abi.MAX_VMS} guests`);
    if (!(Number.isInteger(opts.vcpus) && opts.vcpus >= 1 && this.nextVcpu + opts.vcpus <= abi.MAX_VCPUS)) {
      throw new Error(`hvlab: no room for ${opts.vcpus} more vCPUs (the host has ${abi.MAX_VCPUS} slots, ${this.nextVcpu} taken)`);
    }
    if (!(opts.ramBytes > 0 && opts.ramBytes % abi.WASM_PAGE === 0)) throw new Error(`hvlab: guest RAM must be a positive multiple of 64 KiB (got ${opts.ramBytes})`);
    const vm = new Vm(this, index, opts.mmu ?? 'direct', opts.ramBytes, this.nextVcpu, opts.vcpus, opts);
    writeCpuidTable(this.dv, index, opts.cpuid ?? this.cpuid);
    this.vcpuVm.fill(index, this.nextVcpu, this.nextVcpu + opts.vcpus);
    this.nextVcpu += opts.vcpus;
    this.vms.push(vm);
    return vm;
  }

  /** The VM of vCPU slot `index`. */
  vmOfVcpu(index: number): Vm {
    const vm = this.vcpuVm[index];
    if (vm === undefined || vm < 0) throw new Error(`hvlab: vCPU ${index} belongs to no VM`);
    return this.vms[vm];
  }

  /** The one guest of a one-guest host (Host({ ramBytes })): the conveniences below act on it. */
  get vm0(): Vm {
    if (this.vms.length !== 1) throw new Error('hvlab: this host runs several guests: name the VM (host.vms[i])');
    return this.vms[0];
  }
  get ramBytes(): number { return this.vm0.ramBytes; }
  get mmu(): MmuMode { return this.vm0.mmu; }
  get ept(): NestedPageTable | null { return this.vm0.ept; }
  get gpaMap(): NestedPageTable | null { return this.vm0.gpaMap; }
  get shadowRegion(): { hpa: number; frames: number; bytes: number } | null { return this.vm0.shadowRegion; }
  get devices(): HostDevices { return this.vm0.devices; }
  set devices(d: HostDevices) { this.vm0.devices = d; }

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
    const devices = this.vmOfVcpu(vcpu).devices;
    const v = devices.mmioRead ? devices.mmioRead(vcpu, gpa, size) : size === 8 ? -1n : 0xffffffff;
    const big = BigInt.asUintN(64, typeof v === 'bigint' ? v : BigInt(v >>> 0));
    for (let i = 0; i < size; i++) this.u8[dst + i] = Number((big >> BigInt(8 * i)) & 0xffn);
  }
  private mmioWrite(vcpu: number, lo: number, hi: number, size: number, src: number): void {
    const devices = this.vmOfVcpu(vcpu).devices;
    if (!devices.mmioWrite) return;
    const gpa = (hi >>> 0) * 2 ** 32 + (lo >>> 0);
    const value = size === 8 ? this.dv.getBigUint64(src, true)
      : size === 4 ? this.dv.getUint32(src, true) : size === 2 ? this.dv.getUint16(src, true) : this.u8[src];
    devices.mmioWrite(vcpu, gpa, size, value);
  }
  private msrRead(vcpu: number, index: number): number {
    const v = this.vmOfVcpu(vcpu).devices.msrRead?.(vcpu, index);
    if (v === undefined) return -1;
    if (v === null) return 0;
    this.dv.setBigUint64(abi.MSR_DATA, BigInt.asUintN(64, v), true);
    return 1;
  }
  private msrWrite(vcpu: number, index: number): number {
    const r = this.vmOfVcpu(vcpu).devices.msrWrite?.(vcpu, index, this.dv.getBigUint64(abi.MSR_DATA, true));
    return r === undefined ? -1 : r ? 1 : 0;
  }
  /** The core's device data path met a gfn without a frame (untouched, or reclaimed). */
  private guestFrameFault(vmIndex: number, lo: number, hi: number, write: boolean): number {
    const vm = this.vms[vmIndex];
    const gfn = (hi >>> 0) * 2 ** 32 + (lo >>> 0);
    if (!vm || gfn * FRAME_BYTES >= vm.ramBytes) return 0;
    try { return vm.memory.deviceFault(gfn, write); } catch (e) {
      if (e instanceof OutOfHostMemory || e instanceof ContainerOutOfMemory) { vm.outOfMemory = true; vm.oomReason = e.message; return 0; }
      throw e;
    }
  }

  /** Typed views are detached when memory grows; the host grows it only in its constructor. */
  private refreshViews(): void {
    this.u8 = new Uint8Array(this.memory.buffer);
    this.dv = new DataView(this.memory.buffer);
  }

  get bytes(): Uint8Array { return this.u8; }
  get view(): DataView { return this.dv; }

  /** The one guest's RAM as a byte array (offset = guest-physical address), for reading, when it is
   *  one run of the pool. Writes must go through writeGuest/fillGuest so that decoded instructions
   *  of the changed bytes are dropped. */
  ram(): Uint8Array {
    const r = this.vm0.memory.contiguous();
    if (!r) throw new Error('hvlab: this guest\'s RAM is not one run of host memory: use vm.memory.read');
    return r;
  }

  /** Copy bytes into the one guest's RAM at guest-physical `addr`. */
  writeGuest(addr: number, data: ArrayLike<number>): void { this.vm0.memory.write(addr, data); }

  /** Fill the one guest's RAM [addr, addr + length) with `value`. */
  fillGuest(addr: number, length: number, value: number): void { this.vm0.memory.fill(addr, length, value); }

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

  /** The one guest's nested mappings changed: drop every cached translation (INVEPT). */
  commitNestedMappings(): void { this.vm0.commitNestedMappings(); }

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

  /** The host's invariants: the frame table agrees with its counters and free + used = pool; every
   *  mapped gfn's frame is owned by that VM; no frame is mapped by two VMs (none is shared yet:
   *  sharing read-only is the dedup issue's). Returns the problems found (none: []). */
  checkInvariants(): string[] {
    const problems = this.pool.checkInvariants();
    const mappedBy = new Map<number, number>();
    for (const vm of this.vms) {
      if (vm.destroyed) continue;
      problems.push(...vm.memory.checkInvariants());
      for (const [, f] of vm.memory.frames()) {
        const other = mappedBy.get(f);
        if (other !== undefined && other !== vm.index) problems.push(`frame ${f} is mapped by vm ${other} and vm ${vm.index}`);
        mappedBy.set(f, vm.index);
      }
    }
    // The swap ledger: every slot in use belongs to exactly one gfn of the VM it is charged to.
    if (this.swap) {
      const live = this.vms.filter((vm) => !vm.destroyed);
      let referenced = 0;
      for (const vm of live) {
        const n = vm.memory.swapSlots;
        referenced += n;
        if (n !== this.swap.slotsOf(vm.index)) problems.push(`vm ${vm.index} references ${n} swap slots, the swap file charges it ${this.swap.slotsOf(vm.index)}`);
      }
      if (referenced !== this.swap.slots - this.swap.freeSlots) problems.push(`${this.swap.slots - this.swap.freeSlots} swap slots in use, ${referenced} referenced by guests`);
    }
    return problems;
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
  /** The VM this vCPU slot belongs to. */
  readonly vm: Vm;
  constructor(readonly host: Host, readonly index: number) {
    this.base = abi.VCPU_AREA_BASE + index * abi.VCPU_STRIDE;
    this.vm = host.vmOfVcpu(index);
  }

  private u64(off: number): bigint { return this.host.view.getBigUint64(this.base + off, true); }
  private setU64(off: number, v: bigint): void { this.host.view.setBigUint64(this.base + off, BigInt.asUintN(64, v), true); }
  private u32(off: number): number { return this.host.view.getUint32(this.base + off, true); }

  /** Zero the whole state (registers, lazy flags, exit record, counters); the x87 control word and
   *  MXCSR get their initialized values (FNINIT: 0x037F; MXCSR: 0x1F80, SDM Vol. 1, 8.1.5 and 10.2.3). */
  reset(): void {
    this.host.bytes.fill(0, this.base, this.base + abi.VCPU_STRIDE);
    // Which VM it runs in, its index there (the APIC ID), and a VPID of its own (KVM gives each vCPU
    // one), so no TLB or paging-structure-cache entry of another vCPU can ever match.
    this.host.view.setUint32(this.base + abi.ST_VM, this.vm.index, true);
    this.host.view.setUint32(this.base + abi.ST_VM_VCPU, this.index - this.vm.vcpuFirst, true);
    this.host.view.setUint32(this.base + abi.ST_VPID, this.index + 1, true);
    this.rflags = 0x202n;
    const fx = this.base + abi.ST_FXSAVE;
    this.host.view.setUint16(fx + abi.FX_FCW, 0x037f, true);
    this.host.view.setUint32(fx + abi.FX_MXCSR, 0x1f80, true);
    this.host.view.setUint32(fx + abi.FX_MXCSR_MASK, 0xffff, true);
    this.host.view.setInt32(this.base + abi.ST_IRQ_VECTOR, -1, true);
    this.setU64(abi.ST_XCR0, 1n); // XCR0 resets to x87 only (SDM Vol. 1, 13.3)
    // The MMU configuration belongs to the host (the VMCS), not to the guest's architectural state.
    if (this.vm.ept) this.setU64(abi.ST_EPTP, this.vm.ept.eptp);
    if (this.vm.gpaMap) {
      this.setU64(abi.ST_SHADOW, BigInt(this.vm.gpaMap.root) | BigInt(abi.SHADOW_ENABLE));
      this.host.core.zapShadow(this.vm.index); // (the roots this vCPU held are forgotten with its state)
    }
    this.host.core.flushTlb(this.index);
  }

  /** Pause-loop exiting (SDM Vol. 3C, 26.1.3): PAUSE loops at CPL 0 longer than `window`
   *  instructions (PAUSEs at most `gap` apart) exit with EXIT_PAUSE_LOOP; window 0 = off. */
  configurePauseLoopExiting(gap: number, window: number): void {
    this.host.view.setUint32(this.base + abi.ST_PLE_GAP, gap, true);
    this.host.view.setUint32(this.base + abi.ST_PLE_WINDOW, window, true);
  }

  /** Drop every TLB entry of this vCPU (a host-requested flush, e.g. PV TLB flush). */
  flushTlb(): void { this.host.core.flushTlb(this.index); }

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
