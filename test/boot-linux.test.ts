// The Linux/x86 boot protocol loader (emu/boot/linux.ts) and the E820 map (emu/boot/e820.ts), checked
// against Documentation/arch/x86/boot.rst and zero-page.rst: offsets and values below are the
// protocol's, written out here rather than imported from the loader.
import { describe, it, expect } from 'vitest';
import { accessSync, constants, existsSync, readdirSync, readFileSync } from 'node:fs';
import * as abi from '../wasm/abi.ts';
import { Machine } from '../emu/machine/machine.ts';
import { parseBzImage, bootLinux } from '../emu/boot/linux.ts';
import { buildE820, type E820Entry } from '../emu/boot/e820.ts';
import { BootError } from '../emu/boot/multiboot.ts';

const MiB = 1 << 20;
const PREF_ADDRESS = 0x1000000;
const INIT_SIZE = 8 * MiB;
const CMDLINE = 'console=ttyS0 root=/dev/vda rw';
const VERSION_STRING = '6.1.0-hvlab (test@hvlab) #1 SMP';

// startup_32 at offset 0 of the protected-mode kernel: report the first command-line byte.
const STARTUP_32 = [
  0x8b, 0x96, 0x28, 0x02, 0x00, 0x00, // mov edx, [esi + 0x228]   (cmd_line_ptr)
  0x8a, 0x02, //                         mov al, [edx]
  0xe6, 0xf4, //                         out 0xf4, al              (isa-debug-exit)
  0xf4, //                               hlt
];
// startup_64 at offset 0x200: AL = 0x41 only when REX.W works (64-bit mode), plus that byte.
const STARTUP_64 = [
  0x48, 0xb8, 0, 0, 0, 0, 0x41, 0, 0, 0, // mov rax, 0x41_0000_0000
  0x48, 0xc1, 0xe8, 0x20, //               shr rax, 32
  0x8b, 0x96, 0x28, 0x02, 0x00, 0x00, //   mov edx, [rsi + 0x228]
  0x02, 0x02, //                           add al, [rdx]
  0xe6, 0xf4, //                           out 0xf4, al
  0xf4, //                                 hlt
];

interface ImageOptions {
  version?: number;
  xloadflags?: number;
  setupSects?: number;
  relocatable?: boolean;
  cmdlineSize?: number;
  initrdAddrMax?: number;
  bootFlag?: number;
  magic?: string;
}

function payload(): Uint8Array {
  const p = new Uint8Array(64 * 1024);
  for (let i = 0; i < p.length; i++) p[i] = (i * 7 + 3) & 0xff;
  p.set(STARTUP_32, 0);
  p.set(STARTUP_64, 0x200);
  return p;
}

/** A bzImage as arch/x86/boot/tools/build.c lays one out: setup sectors, then syssize * 16 bytes. */
function makeBzImage(o: ImageOptions = {}): Uint8Array {
  const sects = o.setupSects ?? 4;
  const setupBytes = ((sects || 4) + 1) * 512;
  const pm = payload();
  const file = new Uint8Array(setupBytes + pm.length);
  const dv = new DataView(file.buffer);
  file.fill(0x5a, 0x26c, setupBytes); // "setup code" after the header: must not reach boot_params
  file[0x1ef] = 0xff; // the sentinel (bootparam.h): a loader that copies it is too generous
  file[0x1f1] = sects;
  dv.setUint32(0x1f4, pm.length / 16, true); // syssize
  dv.setUint16(0x1fa, 0xffff, true); // vid_mode
  dv.setUint16(0x1fe, o.bootFlag ?? 0xaa55, true);
  file[0x200] = 0xeb; file[0x201] = 0x6a; // jmp to 0x26c: the header ends there (protocol 2.15)
  file.set(new TextEncoder().encode(o.magic ?? 'HdrS'), 0x202);
  dv.setUint16(0x206, o.version ?? 0x020f, true);
  dv.setUint16(0x20e, 0x200, true); // kernel_version: string at file offset 0x400
  file.set(new TextEncoder().encode(VERSION_STRING + '\0'), 0x400);
  file[0x211] = 0x01; // LOADED_HIGH
  dv.setUint32(0x214, 0x100000, true); // code32_start
  dv.setUint32(0x22c, o.initrdAddrMax ?? 0x7fffffff, true);
  dv.setUint32(0x230, 0x200000, true); // kernel_alignment
  file[0x234] = o.relocatable === false ? 0 : 1;
  file[0x235] = 21; // min_alignment
  dv.setUint16(0x236, o.xloadflags ?? 0x3, true); // XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G
  dv.setUint32(0x238, o.cmdlineSize ?? 0x7ff, true);
  dv.setUint32(0x248, 0x3a5, true); // payload_offset
  dv.setUint32(0x24c, 0x1234, true); // payload_length
  dv.setBigUint64(0x258, BigInt(PREF_ADDRESS), true);
  dv.setUint32(0x260, INIT_SIZE, true);
  dv.setUint32(0x264, 0x190, true); // handover_offset (ignored)
  file.set(pm, setupBytes);
  return file;
}

const machine = (ramBytes = 64 * MiB) => new Machine({ ramBytes });
const initrdBytes = () => Uint8Array.from({ length: 100 * 1024 }, (_, i) => (i * 13 + 1) & 0xff);

function guestView(m: Machine): DataView {
  const ram = m.host.ram();
  return new DataView(ram.buffer, ram.byteOffset, ram.byteLength);
}

function cString(m: Machine, addr: number): string {
  const ram = m.host.ram();
  return new TextDecoder().decode(ram.subarray(addr, ram.indexOf(0, addr)));
}

/** IA-32e 4-level walk (SDM Vol. 3A, 4.5): PML4 -> PDPT (1 GiB PS) -> PD (2 MiB PS) -> PT. */
function translate(m: Machine, cr3: bigint, linear: number): number {
  const dv = guestView(m);
  let table = Number(cr3 & 0xffffffffff000n);
  for (const shift of [39, 30, 21, 12]) {
    const e = dv.getBigUint64(table + (Math.floor(linear / 2 ** shift) % 512) * 8, true);
    if (!(e & 1n)) throw new Error(`not present at level shift ${shift} for 0x${linear.toString(16)}`);
    const frame = Number(e & 0xffffffffff000n);
    if (shift === 12 || (shift !== 39 && e & 0x80n)) return frame - (frame % 2 ** shift) + (linear % 2 ** shift);
    table = frame;
  }
  throw new Error('unreachable');
}

const QEMU_MAP_64M: E820Entry[] = [
  { addr: 0, size: 0x9fc00, type: 1 },
  { addr: 0x9fc00, size: 0x400, type: 2 },
  { addr: 0xf0000, size: 0x10000, type: 2 },
  { addr: 0x100000, size: 63 * MiB, type: 1 },
  { addr: 0xfffc0000, size: 0x40000, type: 2 },
];

describe('buildE820', () => {
  it('gives the PC map SeaBIOS reports under QEMU', () => {
    expect(buildE820(64 * MiB)).toEqual(QEMU_MAP_64M);
  });

  it('carves reserved ranges out of RAM, splitting it, and merges neighbours of one type', () => {
    const map = buildE820(64 * MiB, [
      { addr: 32 * MiB, size: MiB, type: 4 },
      { addr: 63 * MiB, size: 0x80000, type: 3 },
      { addr: 63 * MiB + 0x80000, size: 0x80000, type: 3 },
    ]);
    expect(map.slice(3, 7)).toEqual([
      { addr: 0x100000, size: 31 * MiB, type: 1 },
      { addr: 32 * MiB, size: MiB, type: 4 },
      { addr: 33 * MiB, size: 30 * MiB, type: 1 },
      { addr: 63 * MiB, size: MiB, type: 3 },
    ]);
    for (let i = 1; i < map.length; i++) expect(map[i].addr).toBeGreaterThanOrEqual(map[i - 1].addr + map[i - 1].size);
  });

  it('has no high RAM entry when RAM ends below 1 MiB', () => {
    expect(buildE820(0x80000)[0]).toEqual({ addr: 0, size: 0x80000, type: 1 });
    expect(buildE820(0x80000).filter((e) => e.type === 1)).toHaveLength(1);
  });
});

describe('parseBzImage', () => {
  it('reads the setup header and splits the real-mode and protected-mode parts', () => {
    const img = parseBzImage(makeBzImage());
    expect(img.header).toMatchObject({
      setupSects: 4, version: 0x020f, loadflags: 1, code32Start: 0x100000, initrdAddrMax: 0x7fffffff,
      kernelAlignment: 0x200000, relocatableKernel: true, minAlignment: 21, xloadflags: 3, cmdlineSize: 0x7ff,
      payloadOffset: 0x3a5, payloadLength: 0x1234, prefAddress: PREF_ADDRESS, initSize: INIT_SIZE, end: 0x26c,
    });
    expect(img.setup.length).toBe(5 * 512);
    expect(img.kernel).toEqual(payload());
    expect(img.versionString).toBe(VERSION_STRING);
  });

  it('treats setup_sects = 0 as 4', () => {
    const img = parseBzImage(makeBzImage({ setupSects: 0 }));
    expect(img.header.setupSects).toBe(4);
    expect(img.kernel).toEqual(payload());
  });

  it('refuses files that are not bzImages, with a message naming the problem', () => {
    const good = makeBzImage();
    expect(() => parseBzImage(good.subarray(0, 100))).toThrow(/too short/);
    expect(() => parseBzImage(good.subarray(0, good.length - 16))).toThrow(/truncated/);
    expect(() => parseBzImage(good.subarray(0, 1024))).toThrow(/truncated.*setup code needs 2560/);
    expect(() => parseBzImage(makeBzImage({ magic: 'HdrX' }))).toThrow(/HdrS/);
    expect(() => parseBzImage(makeBzImage({ version: 0x0200 }))).toThrow(/protocol 2\.00 is too old/);
    expect(() => parseBzImage(makeBzImage({ version: 0x020b }))).toThrow(/2\.11 is too old/);
    expect(() => parseBzImage(makeBzImage({ bootFlag: 0x1234 }))).toThrow(/boot_flag/);
    expect(() => parseBzImage(makeBzImage({ magic: 'HdrX' }))).toThrow(BootError);
  });
});

describe('bootLinux: 64-bit boot protocol', () => {
  const boot = () => {
    const m = machine();
    const image = makeBzImage();
    const initrd = initrdBytes();
    const r = bootLinux(m, image, { cmdline: CMDLINE, initrd, ramBytes: 64 * MiB, e820: buildE820(64 * MiB), acpiRsdp: 0xf5a40 });
    return { m, image, initrd, r, zp: new DataView(m.host.ram().buffer, m.host.ram().byteOffset + r.bootParams, 4096) };
  };

  it('loads the protected-mode kernel at pref_address', () => {
    const { m, r } = boot();
    expect(r.mode).toBe('64-bit');
    expect(r.loadAddress).toBe(PREF_ADDRESS);
    expect(m.host.ram().subarray(PREF_ADDRESS, PREF_ADDRESS + 64 * 1024)).toEqual(payload());
  });

  it('builds boot_params: loader fields, command line, initrd, E820, RSDP, no video', () => {
    const { m, zp, initrd } = boot();
    expect(zp.getUint8(0x210)).toBe(0xff); // type_of_loader: undefined
    expect(zp.getUint8(0x211) & 0x81).toBe(0x81); // LOADED_HIGH kept, CAN_USE_HEAP set
    expect(zp.getUint16(0x224, true)).toBe(0xfe00); // heap_end_ptr
    expect(zp.getUint32(0x214, true)).toBe(PREF_ADDRESS); // code32_start = where we loaded it
    const cmdPtr = zp.getUint32(0x228, true) + zp.getUint32(0x0c8, true) * 2 ** 32;
    expect(cmdPtr).toBeLessThan(0xa0000);
    expect(cString(m, cmdPtr)).toBe(CMDLINE);

    const rdAddr = zp.getUint32(0x218, true), rdSize = zp.getUint32(0x21c, true);
    expect(zp.getUint32(0x0c0, true)).toBe(0); // ext_ramdisk_image
    expect(zp.getUint32(0x0c4, true)).toBe(0); // ext_ramdisk_size
    expect(rdSize).toBe(initrd.length);
    expect(rdAddr % 4096).toBe(0);
    expect(rdAddr + rdSize).toBeLessThanOrEqual(64 * MiB);
    expect(rdAddr).toBeGreaterThanOrEqual(PREF_ADDRESS + INIT_SIZE);
    expect(rdAddr).toBe((64 * MiB - initrd.length) & ~0xfff); // as high as it fits
    expect(m.host.ram().subarray(rdAddr, rdAddr + rdSize)).toEqual(initrd);

    expect(zp.getUint8(0x1e8)).toBe(QEMU_MAP_64M.length);
    QEMU_MAP_64M.forEach((e, i) => {
      const at = 0x2d0 + 20 * i;
      expect([Number(zp.getBigUint64(at, true)), Number(zp.getBigUint64(at + 8, true)), zp.getUint32(at + 16, true)])
        .toEqual([e.addr, e.size, e.type]);
    });
    expect(zp.getBigUint64(0x070, true)).toBe(0xf5a40n); // acpi_rsdp_addr
    expect(zp.getUint32(0x1e0, true)).toBe(63 * 1024); // alt_mem_k
    for (const off of [0x07, 0x0e, 0x0f]) expect(zp.getUint8(off)).toBe(0); // video cols, lines, isVGA
  });

  it('copies the setup header from 0x1F1 to its end, and nothing around it', () => {
    const { zp, image } = boot();
    const loaderWritten = new Set([0x1fa, 0x1fb, 0x210, 0x211, 0x214, 0x215, 0x216, 0x217,
      0x218, 0x219, 0x21a, 0x21b, 0x21c, 0x21d, 0x21e, 0x21f, 0x224, 0x225, 0x228, 0x229, 0x22a, 0x22b]);
    for (let off = 0x1f1; off < 0x26c; off++) {
      if (!loaderWritten.has(off)) expect([off, zp.getUint8(off)]).toEqual([off, image[off]]);
    }
    expect(zp.getUint32(0x202, true)).toBe(0x53726448);
    expect(zp.getUint16(0x206, true)).toBe(0x020f);
    expect(zp.getUint8(0x1ef)).toBe(0); // sentinel: not copied
    for (let off = 0x26c; off < 0x290; off++) expect(zp.getUint8(off)).toBe(0);
  });

  it('enters 64-bit mode at startup_64 with RSI = boot_params, __BOOT_CS/__BOOT_DS and paging on', () => {
    const { m, r } = boot();
    const v = m.vcpu;
    expect(v.rip).toBe(BigInt(PREF_ADDRESS + 0x200));
    expect(v.reg(6)).toBe(BigInt(r.bootParams));
    const cs = v.segment(abi.SEG_CS);
    expect(cs.selector).toBe(0x10);
    expect(cs.attr & 0x6000).toBe(0x2000); // L = 1, D = 0: 64-bit code
    for (const s of [abi.SEG_DS, abi.SEG_ES, abi.SEG_SS]) expect(v.segment(s).selector).toBe(0x18);
    expect(v.reg64(abi.ST_EFER) & 0x500n).toBe(0x500n); // LME | LMA
    expect(v.cr0 & 0x80000001n).toBe(0x80000001n); // PG | PE
    expect(v.reg64(abi.ST_CR4) & 0x20n).toBe(0x20n); // PAE
    expect(v.rflags & 0x200n).toBe(0n); // IF = 0
    // The GDT the kernel may reload from: flat 64-bit code at 0x10, flat data at 0x18 (SDM 3.4.5).
    const gdt = Number(v.reg64(abi.ST_GDTR_BASE));
    expect(Number(v.reg64(abi.ST_GDTR_LIMIT) & 0xffffn)).toBeGreaterThanOrEqual(0x1f);
    expect(guestView(m).getBigUint64(gdt + 0x10, true)).toBe(0x00af9b000000ffffn);
    expect(guestView(m).getBigUint64(gdt + 0x18, true)).toBe(0x00cf93000000ffffn);
  });

  it('identity-maps the kernel, boot_params, the command line and the initrd', () => {
    const { m, r, zp } = boot();
    const cr3 = m.vcpu.reg64(abi.ST_CR3);
    const rd = zp.getUint32(0x218, true), rdEnd = rd + zp.getUint32(0x21c, true) - 1;
    for (const a of [PREF_ADDRESS + 0x200, PREF_ADDRESS + INIT_SIZE - 1, r.bootParams, r.bootParams + 0xfff,
      zp.getUint32(0x228, true), rd, rdEnd]) {
      expect(translate(m, cr3, a)).toBe(a);
    }
  });

  it('runs startup_64 in 64-bit mode: it reads the command line through RSI', () => {
    const { m } = boot();
    const run = m.run(100);
    expect(run.reason).toBe('debug-exit');
    expect(run.status).toBe((((0x41 + CMDLINE.charCodeAt(0)) & 0xff) << 1) | 1);
  });

  it('takes a Vcpu as well as a Machine', () => {
    const m = machine();
    const r = bootLinux(m.vcpu, makeBzImage(), { cmdline: 'x' });
    expect(m.vcpu.rip).toBe(BigInt(r.entry));
    expect(r.initrd).toBeNull();
  });
});

describe('bootLinux: 32-bit boot protocol and load addresses', () => {
  it('uses the 32-bit entry when XLF_KERNEL_64 is clear: protected mode, paging off, ESI = boot_params', () => {
    const m = machine();
    const r = bootLinux(m, makeBzImage({ xloadflags: 0 }), { cmdline: CMDLINE });
    const v = m.vcpu;
    expect(r.mode).toBe('32-bit');
    expect(v.rip).toBe(BigInt(PREF_ADDRESS)); // code32_start = the load address
    expect(guestView(m).getUint32(r.bootParams + 0x214, true)).toBe(PREF_ADDRESS);
    expect(v.reg(6)).toBe(BigInt(r.bootParams));
    for (const reg of [3, 5, 7]) expect(v.reg(reg)).toBe(0n); // EBX, EBP, EDI
    const cs = v.segment(abi.SEG_CS);
    expect([cs.selector, cs.attr & 0x6000]).toEqual([0x10, 0x4000]); // D = 1, L = 0
    expect(v.segment(abi.SEG_SS).selector).toBe(0x18);
    expect(v.cr0 & 0x80000001n).toBe(0x1n);
    expect(v.reg64(abi.ST_EFER) & 0x500n).toBe(0n);
    expect(guestView(m).getBigUint64(Number(v.reg64(abi.ST_GDTR_BASE)) + 0x10, true)).toBe(0x00cf9b000000ffffn);
    const run = m.run(100);
    expect(run.reason).toBe('debug-exit');
    expect(run.status).toBe((CMDLINE.charCodeAt(0) << 1) | 1);
  });

  it('can be asked for the 32-bit entry of a 64-bit kernel, and refuses the 64-bit one of a 32-bit kernel', () => {
    const m = machine();
    expect(bootLinux(m, makeBzImage(), { entry: '32-bit' }).mode).toBe('32-bit');
    expect(() => bootLinux(machine(), makeBzImage({ xloadflags: 0 }), { entry: '64-bit' })).toThrow(/XLF_KERNEL_64/);
  });

  it('loads a non-relocatable kernel at 0x100000 and keeps the initrd clear of pref_address + init_size', () => {
    const m = machine();
    const r = bootLinux(m, makeBzImage({ relocatable: false }), { initrd: initrdBytes() });
    expect(r.loadAddress).toBe(0x100000);
    expect(m.vcpu.rip).toBe(0x100200n);
    expect(m.host.ram().subarray(0x100000, 0x100000 + 64 * 1024)).toEqual(payload());
    expect(r.initrd!.addr).toBeGreaterThanOrEqual(PREF_ADDRESS + INIT_SIZE);
  });

  it('keeps the initrd at or below initrd_addr_max, below the kernel when it must', () => {
    // initrd_addr_max = 24 MiB - 1: the space between the kernel's end (24 MiB) and it is empty.
    const r = bootLinux(machine(), makeBzImage({ initrdAddrMax: 0x017fffff }), { initrd: initrdBytes() });
    const { addr, size } = r.initrd!;
    expect(addr + size).toBeLessThanOrEqual(PREF_ADDRESS);
    expect(addr).toBe((PREF_ADDRESS - size) & ~0xfff);
  });

  it('keeps the initrd out of reserved ranges of the memory map', () => {
    const e820 = buildE820(64 * MiB, [{ addr: 63 * MiB, size: MiB, type: 3 }]);
    const r = bootLinux(machine(), makeBzImage(), { initrd: initrdBytes(), e820 });
    expect(r.initrd!.addr + r.initrd!.size).toBeLessThanOrEqual(63 * MiB);
  });
});

describe('bootLinux: errors', () => {
  it('refuses a command line longer than cmdline_size', () => {
    const image = makeBzImage({ cmdlineSize: 16 });
    expect(() => bootLinux(machine(), image, { cmdline: 'x'.repeat(17) })).toThrow(/17 bytes.*at most 16 \(cmdline_size\)/);
    expect(() => bootLinux(machine(), image, { cmdline: 'x'.repeat(16) })).not.toThrow();
    expect(() => bootLinux(machine(), makeBzImage(), { cmdline: 'y'.repeat(2048) })).toThrow(BootError);
  });

  it('refuses a guest too small for the kernel or the initrd', () => {
    expect(() => bootLinux(machine(16 * MiB), makeBzImage())).toThrow(/kernel needs RAM/);
    expect(() => bootLinux(machine(32 * MiB), makeBzImage(), { initrd: new Uint8Array(24 * MiB) })).toThrow(/initrd/);
  });

  it('refuses a truncated file and a file that is not a kernel', () => {
    const image = makeBzImage();
    expect(() => bootLinux(machine(), image.subarray(0, image.length - 1))).toThrow(/truncated/);
    expect(() => bootLinux(machine(), new Uint8Array(4096))).toThrow(/HdrS/);
  });
});

// Real kernels, when present: the one guest-images/build.sh makes and the host's Debian kernel.
const realKernels = [
  new URL('../guest-images/bzImage', import.meta.url).pathname,
  ...(existsSync('/boot') ? readdirSync('/boot').filter((f) => f.startsWith('vmlinuz-')).map((f) => `/boot/${f}`) : []),
].filter((path) => {
  try { accessSync(path, constants.R_OK); return true; } catch { return false; }
});

describe.skipIf(realKernels.length === 0)('real kernels', () => {
  it.each(realKernels)('%s has a 64-bit bzImage header hvlab accepts', (path) => {
    const img = parseBzImage(new Uint8Array(readFileSync(path)));
    expect(img.header.version).toBeGreaterThanOrEqual(0x020c);
    expect(img.header.xloadflags & 1).toBe(1); // XLF_KERNEL_64
    expect(img.header.loadflags & 1).toBe(1); // LOADED_HIGH
    // (The bundled kernel is built without RELOCATABLE/KASLR, so runs repeat; distribution kernels are relocatable.)
    expect(img.header.prefAddress).toBe(0x1000000); // LOAD_PHYSICAL_ADDR of x86-64
    expect(img.header.kernelAlignment).toBe(0x200000);
    expect(img.header.initSize).toBeGreaterThan(img.kernel.length);
    expect(img.versionString).toMatch(/^\d+\.\d+/);
  });
});
