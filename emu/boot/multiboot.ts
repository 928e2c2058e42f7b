// Multiboot v1 (the Multiboot Specification 0.6.96): find the header in the first 8 KiB, load the
// kernel (ELF32 program headers, or the header's address fields when flag 16 is set), build the
// information structure (memory, command line, modules, memory map, boot loader name) and enter the
// kernel in 32-bit protected mode with EAX = 0x2BADB002 and EBX = the structure's address (3.2).
import * as abi from '../../wasm/abi.ts';
import type { Machine } from '../machine/machine.ts';

const HEADER_MAGIC = 0x1badb002;
const BOOTLOADER_MAGIC = 0x2badb002;
const FLAG_AOUT_KLUDGE = 1 << 16;

export interface MultibootModule { data: Uint8Array; name: string }

export class BootError extends Error {}

interface Header { offset: number; flags: number; headerAddr: number; loadAddr: number; loadEndAddr: number; bssEndAddr: number; entryAddr: number }

function findHeader(kernel: Uint8Array): Header {
  const dv = new DataView(kernel.buffer, kernel.byteOffset, kernel.byteLength);
  const end = Math.min(8192, kernel.length) - 12;
  for (let off = 0; off <= end; off += 4) {
    if (dv.getUint32(off, true) !== HEADER_MAGIC) continue;
    const flags = dv.getUint32(off + 4, true);
    if (((HEADER_MAGIC + flags + dv.getUint32(off + 8, true)) >>> 0) !== 0) {
      throw new BootError(`multiboot header at offset ${off}: bad checksum`);
    }
    const h: Header = { offset: off, flags, headerAddr: 0, loadAddr: 0, loadEndAddr: 0, bssEndAddr: 0, entryAddr: 0 };
    if (flags & FLAG_AOUT_KLUDGE) {
      if (off + 32 > kernel.length) throw new BootError('multiboot header truncated (address fields missing)');
      h.headerAddr = dv.getUint32(off + 12, true);
      h.loadAddr = dv.getUint32(off + 16, true);
      h.loadEndAddr = dv.getUint32(off + 20, true);
      h.bssEndAddr = dv.getUint32(off + 24, true);
      h.entryAddr = dv.getUint32(off + 28, true);
    }
    // Bits 0-15 other than 0 (page-align modules), 1 (memory info) and 2 (video mode) are
    // requirements we would have to honour; refuse kernels that ask for unknown ones.
    if (flags & 0xfff8) throw new BootError(`multiboot header requests unsupported features (flags 0x${flags.toString(16)})`);
    return h;
  }
  throw new BootError('not a multiboot kernel: no multiboot header in the first 8 KiB');
}

/** Copy [offset, offset + size) of the file to guest-physical `addr`, after checking both ranges. */
function place(m: Machine, kernel: Uint8Array, offset: number, size: number, addr: number, memSize: number): void {
  if (offset < 0 || offset + size > kernel.length) throw new BootError(`kernel file too short: needs bytes ${offset}..${offset + size}`);
  if (addr < 0x1000 || addr + memSize > m.vm.ramBytes) {
    throw new BootError(`kernel segment [0x${addr.toString(16)}, 0x${(addr + memSize).toString(16)}) is outside guest RAM (${m.vm.ramBytes >> 20} MiB)`);
  }
  m.vm.writeGuest(addr, kernel.subarray(offset, offset + size));
  if (memSize > size) m.vm.fillGuest(addr + size, memSize - size, 0);
}

/** Load an ELF32 i386 image; returns [entry, highest address loaded]. */
function loadElf(m: Machine, kernel: Uint8Array): [number, number] {
  const dv = new DataView(kernel.buffer, kernel.byteOffset, kernel.byteLength);
  if (kernel.length < 52 || dv.getUint32(0, false) !== 0x7f454c46) throw new BootError('multiboot kernel is neither ELF nor flagged with load addresses (flag 16)');
  if (kernel[4] !== 1) throw new BootError('multiboot v1 kernels must be ELF32 (this is ELF64: use the a.out kludge or a 32-bit ELF)');
  if (dv.getUint16(18, true) !== 3) throw new BootError('ELF kernel is not for i386');
  const phoff = dv.getUint32(28, true), phentsize = dv.getUint16(42, true), phnum = dv.getUint16(44, true);
  let top = 0, loaded = 0;
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    if (ph + 32 > kernel.length) throw new BootError('ELF program headers truncated');
    if (dv.getUint32(ph, true) !== 1) continue; // PT_LOAD
    const offset = dv.getUint32(ph + 4, true), paddr = dv.getUint32(ph + 12, true);
    const filesz = dv.getUint32(ph + 16, true), memsz = dv.getUint32(ph + 20, true);
    if (filesz > memsz) throw new BootError('ELF segment with filesz > memsz');
    place(m, kernel, offset, filesz, paddr, memsz);
    top = Math.max(top, paddr + memsz);
    loaded++;
  }
  if (!loaded) throw new BootError('ELF kernel has no loadable segments');
  return [dv.getUint32(24, true), top];
}

export interface MultibootResult { entry: number; infoAddress: number; kernelEnd: number }

export function bootMultiboot(m: Machine, kernel: Uint8Array, cmdline = '', modules: MultibootModule[] = []): MultibootResult {
  const h = findHeader(kernel);
  let entry: number, top: number;
  if (h.flags & FLAG_AOUT_KLUDGE) {
    const fileStart = h.offset - (h.headerAddr - h.loadAddr);
    if (fileStart < 0 || h.headerAddr < h.loadAddr) throw new BootError('multiboot address fields are inconsistent (header_addr < load_addr)');
    const size = (h.loadEndAddr ? h.loadEndAddr - h.loadAddr : kernel.length - fileStart);
    const memSize = h.bssEndAddr ? h.bssEndAddr - h.loadAddr : size;
    if (size < 0 || memSize < size) throw new BootError('multiboot address fields are inconsistent (load/bss end)');
    place(m, kernel, fileStart, size, h.loadAddr, memSize);
    entry = h.entryAddr;
    top = h.loadAddr + memSize;
  } else {
    [entry, top] = loadElf(m, kernel);
  }

  // Modules, command lines and the information structure go above the kernel, page aligned.
  const ram = m.vm.ramBytes;
  let next = (top + 0xfff) & ~0xfff;
  const alloc = (size: number, align = 4096): number => {
    const at = (next + align - 1) & ~(align - 1);
    if (at + size > ram) throw new BootError('guest RAM too small for the kernel, its modules and the boot information');
    next = at + size;
    return at;
  };
  const putString = (s: string): number => {
    const bytes = new TextEncoder().encode(s + '\0');
    const at = alloc(bytes.length, 1);
    m.vm.writeGuest(at, bytes);
    return at;
  };
  const modEntries = modules.map((mod) => {
    const start = alloc(mod.data.length);
    m.vm.writeGuest(start, mod.data);
    return { start, end: start + mod.data.length, name: putString(mod.name) };
  });
  const mods = alloc(16 * Math.max(1, modEntries.length), 4);
  const modView = new DataView(new ArrayBuffer(16 * Math.max(1, modEntries.length)));
  modEntries.forEach((e, i) => {
    modView.setUint32(i * 16, e.start, true); modView.setUint32(i * 16 + 4, e.end, true);
    modView.setUint32(i * 16 + 8, e.name, true);
  });
  m.vm.writeGuest(mods, new Uint8Array(modView.buffer));
  const cmd = putString(cmdline);
  const loader = putString('hvlab');
  // BIOS-style memory map: conventional memory, the EBDA/ROM hole, then RAM above 1 MiB.
  const map: [number, number, number][] = [[0, 0x9fc00, 1], [0x9fc00, 0x400, 2], [0xf0000, 0x10000, 2], [0x100000, ram - 0x100000, 1]];
  const mmapView = new DataView(new ArrayBuffer(24 * map.length));
  map.forEach(([base, len, type], i) => {
    mmapView.setUint32(i * 24, 20, true);
    mmapView.setBigUint64(i * 24 + 4, BigInt(base), true);
    mmapView.setBigUint64(i * 24 + 12, BigInt(len), true);
    mmapView.setUint32(i * 24 + 20, type, true);
  });
  const mmap = alloc(mmapView.byteLength, 4);
  m.vm.writeGuest(mmap, new Uint8Array(mmapView.buffer));

  const info = new DataView(new ArrayBuffer(88));
  info.setUint32(0, 0x1 | 0x4 | 0x8 | 0x40 | 0x200, true); // mem, cmdline, mods, mmap, loader name
  info.setUint32(4, 640, true);
  info.setUint32(8, (ram - 0x100000) >> 10, true);
  info.setUint32(16, cmd, true);
  info.setUint32(20, modEntries.length, true);
  info.setUint32(24, mods, true);
  info.setUint32(44, mmapView.byteLength, true);
  info.setUint32(48, mmap, true);
  info.setUint32(64, loader, true);
  const infoAddress = alloc(88, 4);
  m.vm.writeGuest(infoAddress, new Uint8Array(info.buffer));

  // Machine state of section 3.2: flat 32-bit code and data segments, paging off, IF = 0.
  const v = m.vcpu;
  v.resetArchitectural();
  v.cr0 = 0x11n; // PE | ET
  const code = { base: 0n, limit: 0xffffffff, selector: 0x08, attr: 0xc09b };
  const data = { base: 0n, limit: 0xffffffff, selector: 0x10, attr: 0xc093 };
  v.setSegment(abi.SEG_CS, code);
  for (const s of [abi.SEG_DS, abi.SEG_ES, abi.SEG_FS, abi.SEG_GS, abi.SEG_SS]) v.setSegment(s, data);
  v.setDescriptorTable('gdt', 0n, 0);
  v.setDescriptorTable('idt', 0n, 0);
  for (let r = 0; r < 16; r++) v.setReg(r, 0n);
  v.setReg(0, BigInt(BOOTLOADER_MAGIC));
  v.setReg(3, BigInt(infoAddress));
  v.rip = BigInt(entry >>> 0);
  v.rflags = 0x2n;
  return { entry, infoAddress, kernelEnd: top };
}
