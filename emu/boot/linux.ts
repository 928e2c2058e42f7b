// Direct Linux boot, as `qemu -kernel` or Firecracker do it: parse a bzImage's setup header, load the
// protected-mode kernel, build boot_params (the "zero page") with the command line, initrd and E820
// map, and start the vCPU at the kernel's 64-bit entry point (or its 32-bit one for kernels without
// XLF_KERNEL_64). References: Linux Documentation/arch/x86/boot.rst ("The Linux/x86 Boot Protocol",
// cited as boot.rst), Documentation/arch/x86/zero-page.rst and arch/x86/include/uapi/asm/bootparam.h.
import * as abi from '../../wasm/abi.ts';
import type { Machine } from '../machine/machine.ts';
import type { Vcpu } from '../machine/host.ts';
import { BootError } from './multiboot.ts';
import { buildE820, normalizeE820, isRam, E820_RAM, EBDA_START, HIGH_MEMORY_START, type E820Entry } from './e820.ts';

/** Setup header fields (boot.rst, "The Real-Mode Kernel Header"). The offsets are the same in the
 *  kernel file and in boot_params, which holds the header at 0x1F1 (struct boot_params.hdr). */
export const HDR = {
  SETUP_SECTS: 0x1f1, SYSSIZE: 0x1f4, VID_MODE: 0x1fa, BOOT_FLAG: 0x1fe, JUMP: 0x200, HEADER: 0x202,
  VERSION: 0x206, KERNEL_VERSION: 0x20e, TYPE_OF_LOADER: 0x210, LOADFLAGS: 0x211, CODE32_START: 0x214,
  RAMDISK_IMAGE: 0x218, RAMDISK_SIZE: 0x21c, HEAP_END_PTR: 0x224, CMD_LINE_PTR: 0x228,
  INITRD_ADDR_MAX: 0x22c, KERNEL_ALIGNMENT: 0x230, RELOCATABLE_KERNEL: 0x234, MIN_ALIGNMENT: 0x235,
  XLOADFLAGS: 0x236, CMDLINE_SIZE: 0x238, PAYLOAD_OFFSET: 0x248, PAYLOAD_LENGTH: 0x24c,
  PREF_ADDRESS: 0x258, INIT_SIZE: 0x260, HANDOVER_OFFSET: 0x264, KERNEL_INFO_OFFSET: 0x268,
} as const;

/** boot_params fields outside the setup header (zero-page.rst, bootparam.h). */
export const ZERO_PAGE = {
  SIZE: 0x1000,
  ORIG_VIDEO_COLS: 0x007, ORIG_VIDEO_LINES: 0x00e, ORIG_VIDEO_IS_VGA: 0x00f, // screen_info at 0x000
  ACPI_RSDP_ADDR: 0x070, EXT_RAMDISK_IMAGE: 0x0c0, EXT_RAMDISK_SIZE: 0x0c4, EXT_CMD_LINE_PTR: 0x0c8,
  ALT_MEM_K: 0x1e0, E820_ENTRIES: 0x1e8, SENTINEL: 0x1ef, E820_TABLE: 0x2d0,
  E820_ENTRY_SIZE: 20, E820_MAX_ENTRIES: 128,
} as const;

const HDRS_MAGIC = 0x53726448; // "HdrS"
const BOOT_FLAG_MAGIC = 0xaa55;
/** 2.12 added xloadflags and the 64-bit entry; older kernels (before Linux 3.8) are refused. */
export const MIN_PROTOCOL = 0x020c;
const PROTOCOL_ACPI_RSDP = 0x020e; // boot_params.acpi_rsdp_addr: Linux 5.0 (protocol 2.14)
/** A 2.12 header reaches handover_offset (0x264-0x267), the last field we read from it. */
const MIN_HEADER_END = 0x268;

export const LOADED_HIGH = 0x01;
export const CAN_USE_HEAP = 0x80;
export const XLF_KERNEL_64 = 0x01;
export const XLF_CAN_BE_LOADED_ABOVE_4G = 0x02;

/** type_of_loader: "0xFF = undefined" (boot.rst, type_of_loader): hvlab has no assigned ID. */
const LOADER_UNDEFINED = 0xff;
/** vid_mode "normal" (boot.rst, "Special Command Line Options": vga=normal means 0xFFFF). */
const VID_MODE_NORMAL = 0xffff;
/** The bzImage protected-mode code is loaded at 0x100000 (boot.rst, "Loading The Rest of The Kernel"). */
const BZIMAGE_LOAD_ADDRESS = 0x100000;

/** Guest-physical layout of what the loader builds in low memory (Firecracker's choices). All of it
 *  is RAM in the E820 map: the kernel copies boot_params and the command line and builds its own
 *  GDT and page tables before it uses that memory. */
export const LINUX_LAYOUT = {
  GDT: 0x500,
  BOOT_PARAMS: 0x7000,
  STACK_TOP: 0x8ff0,
  PAGE_TABLES: 0x9000, // PML4, PDPT, then four page directories: 0x9000-0xEFFF
  CMDLINE: 0x20000,
} as const;
/** heap_end_ptr as QEMU computes it: command line address - real-mode base (0x10000) - 0x200. The
 *  32/64-bit entry points do not run the real-mode setup code, but the field is obligatory. */
const HEAP_END_PTR = LINUX_LAYOUT.CMDLINE - 0x10000 - 0x200;

/** Boot GDT selectors (boot.rst, "32-bit Boot Protocol" and "64-bit Boot Protocol"). */
export const BOOT_CS = 0x10;
export const BOOT_DS = 0x18;
/** Flat 4 GiB segments as (flags nibble << 12) | access byte (abi.ts SEG_ATTR_* layout). */
const CODE64_ATTR = abi.SEG_ATTR_G | abi.SEG_ATTR_L | 0x9b; // P, S, execute/read, accessed; L = 1
const CODE32_ATTR = abi.SEG_ATTR_G | abi.SEG_ATTR_DB | 0x9b;
const DATA_ATTR = abi.SEG_ATTR_G | abi.SEG_ATTR_DB | 0x93; // P, S, read/write, accessed

const PTE_P = 0x1, PTE_RW = 0x2, PTE_PS = 0x80;
const CR4_PAE = 0x20;
const IDENTITY_MAP_GIB = 4; // 2 MiB pages covering 0-4 GiB: RAM, the APICs and the firmware ROM
const RSP = 4, RSI = 6;

export interface SetupHeader {
  setupSects: number;
  syssize: number;
  version: number;
  loadflags: number;
  code32Start: number;
  initrdAddrMax: number;
  kernelAlignment: number;
  relocatableKernel: boolean;
  minAlignment: number;
  xloadflags: number;
  cmdlineSize: number;
  payloadOffset: number;
  payloadLength: number;
  prefAddress: number;
  initSize: number;
  /** The end of the header in the file: 0x202 + the jump instruction's offset byte at 0x201. */
  end: number;
}

export interface BzImage {
  header: SetupHeader;
  /** The real-mode part: boot sector and setup code, (setup_sects + 1) * 512 bytes. */
  setup: Uint8Array;
  /** The protected-mode kernel, loaded at the load address. */
  kernel: Uint8Array;
  /** The kernel_version string ("6.1.0 (builder@host) #1 ..."), when the header points to one. */
  versionString: string | null;
}

const hex = (n: number) => `0x${n.toString(16)}`;
const protocolName = (v: number) => `${v >> 8}.${(v & 0xff).toString().padStart(2, '0')}`;

/** Validate a bzImage's setup header and split the file into its real-mode and protected-mode parts. */
export function parseBzImage(file: Uint8Array): BzImage {
  if (file.length < HDR.VERSION + 2) {
    throw new BootError(`not a Linux bzImage: the file is ${file.length} bytes, too short to hold a setup header`);
  }
  const dv = new DataView(file.buffer, file.byteOffset, file.byteLength);
  if (dv.getUint32(HDR.HEADER, true) !== HDRS_MAGIC) {
    throw new BootError('not a Linux bzImage: no "HdrS" signature at offset 0x202');
  }
  const version = dv.getUint16(HDR.VERSION, true);
  if (version < MIN_PROTOCOL) {
    throw new BootError(`Linux boot protocol ${protocolName(version)} is too old: hvlab needs ${protocolName(MIN_PROTOCOL)} or later (Linux 3.8+)`);
  }
  const bootFlag = dv.getUint16(HDR.BOOT_FLAG, true);
  if (bootFlag !== BOOT_FLAG_MAGIC) throw new BootError(`not a Linux bzImage: boot_flag at 0x1fe is ${hex(bootFlag)}, not 0xaa55`);
  // "0xEB followed by a signed offset relative to byte 0x202": the header ends where the jump lands.
  const end = HDR.HEADER + ((file[HDR.JUMP + 1] << 24) >> 24);
  if (file[HDR.JUMP] !== 0xeb || end < MIN_HEADER_END) {
    throw new BootError(`bad setup header: the jump at 0x200 ends it at ${hex(end)}, before the protocol 2.12 fields (${hex(MIN_HEADER_END)})`);
  }
  const setupSects = file[HDR.SETUP_SECTS] || 4; // "if this field is 0, the real value is 4"
  const setupBytes = (setupSects + 1) * 512;
  if (file.length < Math.max(setupBytes, end)) {
    throw new BootError(`truncated bzImage: the setup code needs ${setupBytes} bytes, the file has ${file.length}`);
  }
  const loadflags = file[HDR.LOADFLAGS];
  if (!(loadflags & LOADED_HIGH)) throw new BootError('zImage kernels (loadflags.LOADED_HIGH clear) are not supported: build a bzImage');
  const syssize = dv.getUint32(HDR.SYSSIZE, true);
  const kernelBytes = syssize ? syssize * 16 : file.length - setupBytes;
  if (kernelBytes === 0 || setupBytes + kernelBytes > file.length) {
    throw new BootError(`truncated bzImage: the protected-mode kernel needs ${kernelBytes} bytes (syssize ${hex(syssize)}), the file has ${file.length - setupBytes} after the setup code`);
  }
  const header: SetupHeader = {
    setupSects, syssize, version, loadflags, end,
    code32Start: dv.getUint32(HDR.CODE32_START, true),
    initrdAddrMax: dv.getUint32(HDR.INITRD_ADDR_MAX, true),
    kernelAlignment: dv.getUint32(HDR.KERNEL_ALIGNMENT, true),
    relocatableKernel: file[HDR.RELOCATABLE_KERNEL] !== 0,
    minAlignment: file[HDR.MIN_ALIGNMENT],
    xloadflags: dv.getUint16(HDR.XLOADFLAGS, true),
    cmdlineSize: dv.getUint32(HDR.CMDLINE_SIZE, true),
    payloadOffset: dv.getUint32(HDR.PAYLOAD_OFFSET, true),
    payloadLength: dv.getUint32(HDR.PAYLOAD_LENGTH, true),
    prefAddress: Number(dv.getBigUint64(HDR.PREF_ADDRESS, true)),
    initSize: dv.getUint32(HDR.INIT_SIZE, true),
  };
  const setup = file.subarray(0, setupBytes);
  return { header, setup, kernel: file.subarray(setupBytes, setupBytes + kernelBytes), versionString: readVersionString(dv, setup) };
}

/** kernel_version: "a pointer to a NUL-terminated human-readable kernel version number string, less 0x200". */
function readVersionString(dv: DataView, setup: Uint8Array): string | null {
  const pointer = dv.getUint16(HDR.KERNEL_VERSION, true);
  if (!pointer || pointer + 0x200 >= setup.length) return null;
  const from = pointer + 0x200;
  const nul = setup.indexOf(0, from);
  return new TextDecoder('latin1').decode(setup.subarray(from, nul < 0 ? setup.length : nul));
}

export interface LinuxBootOptions {
  cmdline?: string;
  initrd?: Uint8Array;
  /** Guest RAM the kernel may use (default: all of the host's RAM). */
  ramBytes?: number;
  /** The memory map for boot_params (default: buildE820(ramBytes)). */
  e820?: E820Entry[];
  /** Guest-physical address of the ACPI RSDP (boot_params.acpi_rsdp_addr). */
  acpiRsdp?: number;
  /** Which entry point to use: the 64-bit one when the kernel has it (default), or the 32-bit one. */
  entry?: 'auto' | '64-bit' | '32-bit';
}

export interface LinuxBootResult {
  image: BzImage;
  mode: '64-bit' | '32-bit';
  loadAddress: number;
  entry: number;
  bootParams: number;
  cmdline: number;
  initrd: { addr: number; size: number } | null;
  /** CR3 (the PML4) for the 64-bit entry, null for the 32-bit one. */
  pageTables: number | null;
  e820: E820Entry[];
}

interface Range { start: number; end: number }
const overlaps = (a: Range, b: Range) => a.start < b.end && b.start < a.end;

/** Load `kernelFile` into the guest and set the vCPU up at the kernel's entry point. */
export function bootLinux(target: Machine | Vcpu, kernelFile: Uint8Array, opts: LinuxBootOptions = {}): LinuxBootResult {
  const vcpu = 'vcpu' in target ? target.vcpu : target;
  const host = vcpu.vm; // the guest's memory (loads go through its gpa -> hpa map)
  const image = parseBzImage(kernelFile);
  const h = image.header;
  const ram = opts.ramBytes ?? host.ramBytes;
  if (ram > host.ramBytes) throw new BootError(`ramBytes (${ram}) is more than the guest has (${host.ramBytes})`);
  const e820 = normalizeE820(opts.e820 ?? buildE820(ram));
  if (e820.length > ZERO_PAGE.E820_MAX_ENTRIES) throw new BootError(`the memory map has ${e820.length} entries; boot_params holds ${ZERO_PAGE.E820_MAX_ENTRIES}`);

  const has64 = (h.xloadflags & XLF_KERNEL_64) !== 0;
  if (opts.entry === '64-bit' && !has64) throw new BootError('this kernel has no 64-bit entry point (xloadflags.XLF_KERNEL_64 clear)');
  const mode = opts.entry === '32-bit' || !has64 ? '32-bit' : '64-bit';

  const loadAddress = h.relocatableKernel && h.prefAddress ? h.prefAddress : BZIMAGE_LOAD_ADDRESS;
  const kernel = kernelRegion(h, loadAddress, image.kernel.length);
  if (kernel.end > ram || !isRam(e820, kernel.start, kernel.end - kernel.start)) {
    throw new BootError(`the kernel needs RAM at [${hex(kernel.start)}, ${hex(kernel.end)}) (init_size ${hex(h.initSize)}), which the guest's ${ram >> 20} MiB memory map does not provide`);
  }

  const cmdline = new TextEncoder().encode(opts.cmdline ?? '');
  if (cmdline.length > h.cmdlineSize) {
    throw new BootError(`the command line is ${cmdline.length} bytes; this kernel accepts at most ${h.cmdlineSize} (cmdline_size)`);
  }
  // boot.rst: the command line lies "anywhere between the end of the setup heap and 0xA0000".
  const lowEnd = LINUX_LAYOUT.CMDLINE + cmdline.length + 1;
  if (lowEnd > EBDA_START || !isRam(e820, 0, lowEnd)) {
    throw new BootError(`the boot structures need RAM at [0, ${hex(lowEnd)}), which the memory map does not provide`);
  }

  const initrd = opts.initrd?.length
    ? { addr: placeInitrd(opts.initrd.length, h, ram, e820, kernel), size: opts.initrd.length }
    : null;

  host.writeGuest(loadAddress, image.kernel);
  if (initrd) host.writeGuest(initrd.addr, opts.initrd!);
  host.writeGuest(LINUX_LAYOUT.CMDLINE, [...cmdline, 0]);
  const bootParams = buildBootParams(kernelFile, image, {
    loadAddress, cmdline: LINUX_LAYOUT.CMDLINE, initrd, e820, ram, acpiRsdp: opts.acpiRsdp,
  });
  host.writeGuest(LINUX_LAYOUT.BOOT_PARAMS, bootParams);
  host.writeGuest(LINUX_LAYOUT.GDT, buildGdt(mode === '64-bit' ? CODE64_ATTR : CODE32_ATTR));
  let pageTables: number | null = null;
  if (mode === '64-bit') {
    pageTables = LINUX_LAYOUT.PAGE_TABLES;
    host.writeGuest(pageTables, buildIdentityMap(pageTables));
  }
  // 64-bit: "the start address of loaded 64-bit kernel plus 0x200"; 32-bit: the start address.
  const entry = mode === '64-bit' ? loadAddress + 0x200 : loadAddress;
  enterKernel(vcpu, mode, entry);
  return { image, mode, loadAddress, entry, bootParams: LINUX_LAYOUT.BOOT_PARAMS, cmdline: LINUX_LAYOUT.CMDLINE, initrd, pageTables, e820 };
}

/** Everything the kernel occupies before it reads the memory map: the loaded image and init_size
 *  bytes from the runtime start (boot.rst, init_size: align_up(load address, kernel_alignment) for a
 *  relocatable kernel, pref_address for one that moves itself there). */
function kernelRegion(h: SetupHeader, loadAddress: number, imageBytes: number): Range {
  const align = h.kernelAlignment || 1;
  const runtimeStart = h.relocatableKernel ? Math.ceil(loadAddress / align) * align : (h.prefAddress || loadAddress);
  return {
    start: Math.min(loadAddress, runtimeStart),
    end: Math.max(loadAddress + imageBytes, runtimeStart + h.initSize),
  };
}

/**
 * The initrd goes as high as it can (as QEMU and GRUB place it): page-aligned, inside one RAM range
 * of the map, at or below initrd_addr_max ("the address of the highest safe byte", boot.rst), below
 * the end of RAM, above the first megabyte and clear of the kernel's init_size region.
 */
function placeInitrd(size: number, h: SetupHeader, ram: number, e820: E820Entry[], kernel: Range): number {
  const ceiling = Math.min(ram, h.initrdAddrMax + 1);
  const ranges = e820.filter((e) => e.type === E820_RAM).sort((a, b) => b.addr - a.addr);
  for (const r of ranges) {
    const floor = Math.max(r.addr, HIGH_MEMORY_START);
    let top = Math.min(r.addr + r.size, ceiling);
    while (top - size >= floor) {
      const start = Math.floor((top - size) / 4096) * 4096;
      if (start < floor) break;
      if (!overlaps({ start, end: start + size }, kernel)) return start;
      top = kernel.start; // try again below the kernel
    }
  }
  throw new BootError(`no room for the ${size}-byte initrd in RAM below ${hex(ceiling)} (initrd_addr_max ${hex(h.initrdAddrMax)}) outside the kernel's [${hex(kernel.start)}, ${hex(kernel.end)})`);
}

interface BootParamsInput {
  loadAddress: number;
  cmdline: number;
  initrd: { addr: number; size: number } | null;
  e820: E820Entry[];
  ram: number;
  acpiRsdp?: number;
}

/** struct boot_params: zeroed, the setup header copied from the file at 0x1F1 up to its end (boot.rst,
 *  "64-bit Boot Protocol"), then the loader's fields. screen_info stays zero: no video console
 *  (orig_video_isVGA = 0, orig_video_lines = orig_video_cols = 0). */
function buildBootParams(file: Uint8Array, image: BzImage, p: BootParamsInput): Uint8Array {
  const zp = new Uint8Array(ZERO_PAGE.SIZE);
  const dv = new DataView(zp.buffer);
  zp.set(file.subarray(HDR.SETUP_SECTS, image.header.end), HDR.SETUP_SECTS);
  const low32 = (v: number) => v >>> 0;
  const high32 = (v: number) => Math.floor(v / 0x1_0000_0000);

  zp[HDR.SETUP_SECTS] = image.header.setupSects;
  dv.setUint16(HDR.VID_MODE, VID_MODE_NORMAL, true);
  zp[HDR.TYPE_OF_LOADER] = LOADER_UNDEFINED;
  zp[HDR.LOADFLAGS] = image.header.loadflags | CAN_USE_HEAP;
  dv.setUint16(HDR.HEAP_END_PTR, HEAP_END_PTR, true);
  // "A bootloader which ... loads a relocatable kernel at a nonstandard address will have to modify
  // this field to point to the load address" (code32_start).
  dv.setUint32(HDR.CODE32_START, p.loadAddress, true);
  dv.setUint32(HDR.CMD_LINE_PTR, low32(p.cmdline), true);
  dv.setUint32(ZERO_PAGE.EXT_CMD_LINE_PTR, high32(p.cmdline), true);
  if (p.initrd) {
    dv.setUint32(HDR.RAMDISK_IMAGE, low32(p.initrd.addr), true);
    dv.setUint32(HDR.RAMDISK_SIZE, low32(p.initrd.size), true);
    dv.setUint32(ZERO_PAGE.EXT_RAMDISK_IMAGE, high32(p.initrd.addr), true);
    dv.setUint32(ZERO_PAGE.EXT_RAMDISK_SIZE, high32(p.initrd.size), true);
  }
  if (p.acpiRsdp !== undefined && image.header.version >= PROTOCOL_ACPI_RSDP) {
    dv.setBigUint64(ZERO_PAGE.ACPI_RSDP_ADDR, BigInt(p.acpiRsdp), true);
  }
  // alt_mem_k: KiB of memory above 1 MiB, the fallback when the E820 map is unusable (zero-page.rst).
  dv.setUint32(ZERO_PAGE.ALT_MEM_K, Math.max(0, p.ram - HIGH_MEMORY_START) >>> 10, true);
  zp[ZERO_PAGE.E820_ENTRIES] = p.e820.length;
  p.e820.forEach((e, i) => {
    const at = ZERO_PAGE.E820_TABLE + i * ZERO_PAGE.E820_ENTRY_SIZE; // struct boot_e820_entry (packed)
    dv.setBigUint64(at, BigInt(e.addr), true);
    dv.setBigUint64(at + 8, BigInt(e.size), true);
    dv.setUint32(at + 16, e.type, true);
  });
  return zp;
}

/** GDT: null, unused, __BOOT_CS (0x10) and __BOOT_DS (0x18), both flat 4 GiB (boot.rst). */
function buildGdt(codeAttr: number): Uint8Array {
  const gdt = new DataView(new ArrayBuffer(BOOT_DS + 8));
  const put = (selector: number, attr: number) => {
    // Base 0, limit 0xFFFFF (4 GiB with G); high dword: access byte 15:8, limit 19:16, flags 23:20.
    gdt.setUint32(selector, 0x0000ffff, true);
    gdt.setUint32(selector + 4, ((attr & 0xff) << 8) | 0xf0000 | (((attr >> 12) & 0xf) << 20), true);
  };
  put(BOOT_CS, codeAttr);
  put(BOOT_DS, DATA_ATTR);
  return new Uint8Array(gdt.buffer);
}

/** 4-level identity map of the first IDENTITY_MAP_GIB GiB with 2 MiB pages (SDM Vol. 3A, 4.5):
 *  one PML4, one PDPT and a page directory per GiB, contiguous from `root`. */
function buildIdentityMap(root: number): Uint8Array {
  const tables = new DataView(new ArrayBuffer((2 + IDENTITY_MAP_GIB) * 4096));
  const entry = (table: number, index: number, value: number) => tables.setUint32(table * 4096 + index * 8, value >>> 0, true);
  entry(0, 0, (root + 4096) | PTE_P | PTE_RW);
  for (let gib = 0; gib < IDENTITY_MAP_GIB; gib++) {
    entry(1, gib, (root + (2 + gib) * 4096) | PTE_P | PTE_RW);
    for (let i = 0; i < 512; i++) entry(2 + gib, i, gib * 0x4000_0000 + i * 0x20_0000 + (PTE_P | PTE_RW | PTE_PS));
  }
  return new Uint8Array(tables.buffer);
}

/** The machine state of boot.rst's "32-bit Boot Protocol" / "64-bit Boot Protocol": flat __BOOT_CS
 *  and __BOOT_DS, interrupts off, RSI = boot_params, EBP = EDI = EBX = 0; 64-bit mode with paging
 *  (CR0.PG, CR4.PAE, EFER.LME|LMA, CR3 = the identity map) or 32-bit protected mode, paging off. */
function enterKernel(v: Vcpu, mode: '64-bit' | '32-bit', entry: number): void {
  v.resetArchitectural();
  const flat = (selector: number, attr: number) => ({ base: 0n, limit: 0xffffffff, selector, attr });
  v.setSegment(abi.SEG_CS, flat(BOOT_CS, mode === '64-bit' ? CODE64_ATTR : CODE32_ATTR));
  for (const s of [abi.SEG_DS, abi.SEG_ES, abi.SEG_SS, abi.SEG_FS, abi.SEG_GS]) v.setSegment(s, flat(BOOT_DS, DATA_ATTR));
  v.setDescriptorTable('gdt', BigInt(LINUX_LAYOUT.GDT), BOOT_DS + 7);
  v.setDescriptorTable('idt', 0n, 0);
  for (let r = 0; r < 16; r++) v.setReg(r, 0n);
  v.setReg(RSI, BigInt(LINUX_LAYOUT.BOOT_PARAMS));
  v.setReg(RSP, BigInt(LINUX_LAYOUT.STACK_TOP));
  if (mode === '64-bit') {
    // Vcpu has no CR3/CR4/EFER accessors: write the state fields through the generic one.
    v.setReg64(abi.ST_CR3, BigInt(LINUX_LAYOUT.PAGE_TABLES));
    v.setReg64(abi.ST_CR4, BigInt(CR4_PAE));
    v.setReg64(abi.ST_EFER, BigInt(abi.EFER_LME | abi.EFER_LMA));
    v.cr0 = BigInt((abi.CR0_PG | abi.CR0_ET | abi.CR0_PE) >>> 0);
  } else {
    v.cr0 = BigInt(abi.CR0_ET | abi.CR0_PE);
  }
  v.rip = BigInt(entry);
  v.rflags = 0x2n; // IF = 0
}
