// QEMU's firmware configuration device, I/O-port flavour (QEMU docs/specs/fw_cfg.rst and
// hw/nvram/fw_cfg.c), so firmware and test kernels written for QEMU find the same interface:
//
//   0x510  selector  16-bit write (little-endian): selects an item and rewinds its offset to 0
//   0x511  data      8-bit reads of the selected item, auto-incrementing; 0 past its end.
//                    QEMU maps 0x510-0x511 as one region: a byte read at either port reads data,
//                    byte writes are ignored (data-port writes were removed in QEMU 2.4).
//   0x514  DMA       64-bit big-endian address of a FWCfgDmaAccess, written as two 32-bit halves,
//                    high (0x514) then low (0x518); writing the low half runs the transfer. Reads
//                    return the signature "QEMU CFG" in byte order.
//
// Items: numbered keys (bit 15 = architecture-specific, bit 14 = the obsolete write channel, ignored
// for lookup) and named files at keys 0x20+, listed in the file directory (key 0x19) sorted by name
// and numbered in that order, as QEMU does.
import type { PortBus, PortDevice } from './port-bus.ts';

/** Guest-physical memory as the DMA engine sees it. An address outside guest memory is reported
 *  by throwing (a RangeError, say); the device turns that into the DMA error bit. */
export interface GuestMemory {
  read(gpa: number, length: number): Uint8Array;
  write(gpa: number, bytes: Uint8Array): void;
}

export const FW_CFG_SELECTOR_PORT = 0x510;
export const FW_CFG_DATA_PORT = 0x511;
export const FW_CFG_DMA_PORT = 0x514;

/** Selector keys (QEMU include/standard-headers/linux/qemu_fw_cfg.h). */
export const FwCfgKey = {
  SIGNATURE: 0x00, ID: 0x01, UUID: 0x02, RAM_SIZE: 0x03, NOGRAPHIC: 0x04, NB_CPUS: 0x05,
  KERNEL_ADDR: 0x07, KERNEL_SIZE: 0x08, INITRD_ADDR: 0x0a, INITRD_SIZE: 0x0b, MAX_CPUS: 0x0f,
  KERNEL_DATA: 0x11, INITRD_DATA: 0x12, CMDLINE_ADDR: 0x13, CMDLINE_SIZE: 0x14, CMDLINE_DATA: 0x15,
  SETUP_ADDR: 0x16, SETUP_SIZE: 0x17, SETUP_DATA: 0x18, FILE_DIR: 0x19, FILE_FIRST: 0x20,
} as const;

/** FW_CFG_ID feature bits. */
export const FW_CFG_VERSION_TRADITIONAL = 1 << 0;
export const FW_CFG_VERSION_DMA = 1 << 1;

/** FWCfgDmaAccess.control bits. */
export const FW_CFG_DMA_CTL_ERROR = 1 << 0;
export const FW_CFG_DMA_CTL_READ = 1 << 1;
export const FW_CFG_DMA_CTL_SKIP = 1 << 2;
export const FW_CFG_DMA_CTL_SELECT = 1 << 3;
export const FW_CFG_DMA_CTL_WRITE = 1 << 4;

const DMA_SIGNATURE = new TextEncoder().encode('QEMU CFG');
const DMA_ACCESS_SIZE = 16;
/** Keys ignore the write-channel bit: entry = key & (ARCH_LOCAL | ENTRY_MASK). */
const ARCH_LOCAL = 0x8000;
const ENTRY_MASK = 0x3fff;
/** A file directory entry: size (BE32), select (BE16), reserved (16), name[56] NUL-terminated. */
const FILE_ENTRY_SIZE = 64;
const FILE_NAME_MAX = 55;
/** Zero-fill past an item's end in pieces of this size. */
const ZERO_CHUNK = 64 * 1024;

interface Item { data: Uint8Array; writable: boolean }
interface FileItem extends Item { name: string; nameBytes: Uint8Array }

export interface FwCfgMachine {
  /** CPUs at boot (FW_CFG_NB_CPUS). */
  cpus: number;
  /** FW_CFG_MAX_CPUS: on x86 the APIC ID limit; defaults to `cpus`. */
  maxCpus?: number;
  /** Guest RAM in bytes (FW_CFG_RAM_SIZE). */
  ramSize: number;
  /** Offer the DMA interface (default true, as QEMU's pc). */
  dma?: boolean;
}

/** What `qemu -kernel` puts in fw_cfg for a bzImage (QEMU hw/i386/x86-common.c x86_load_linux). */
export interface FwCfgLinuxBoot {
  /** Real-mode part (boot sector + setup) and its load address. */
  setup: Uint8Array; setupAddress: number;
  /** Protected-mode part and its load address. */
  kernel: Uint8Array; kernelAddress: number;
  cmdline: string; cmdlineAddress: number;
  initrd?: Uint8Array; initrdAddress?: number;
}

function u16le(value: number): Uint8Array { return Uint8Array.of(value & 0xff, (value >>> 8) & 0xff); }
function u32le(value: number): Uint8Array {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, value >>> 0, true);
  return bytes;
}
function u64le(value: number): Uint8Array {
  const bytes = new Uint8Array(8);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, value % 2 ** 32, true);
  view.setUint32(4, Math.floor(value / 2 ** 32), true);
  return bytes;
}
function bswap32(value: number): number {
  return (((value & 0xff) << 24) | ((value & 0xff00) << 8) | ((value >>> 8) & 0xff00) | (value >>> 24)) >>> 0;
}
function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

export class FwCfg implements PortDevice {
  readonly name = 'fw_cfg';
  private readonly items = new Map<number, Item>();
  /** Sorted by name; file i has key FILE_FIRST + i. */
  private readonly files: FileItem[] = [];
  private selected = FwCfgKey.SIGNATURE as number;
  private offset = 0;
  private dmaAddressHigh = 0;
  readonly dmaEnabled: boolean;

  constructor(private readonly memory: GuestMemory, machine: FwCfgMachine) {
    this.dmaEnabled = machine.dma ?? true;
    this.setItem(FwCfgKey.SIGNATURE, new TextEncoder().encode('QEMU'));
    this.setItem(FwCfgKey.ID, u32le(FW_CFG_VERSION_TRADITIONAL | (this.dmaEnabled ? FW_CFG_VERSION_DMA : 0)));
    this.setItem(FwCfgKey.UUID, new Uint8Array(16));
    this.setItem(FwCfgKey.NOGRAPHIC, u16le(1));
    this.setItem(FwCfgKey.NB_CPUS, u16le(machine.cpus));
    this.setItem(FwCfgKey.MAX_CPUS, u16le(machine.maxCpus ?? machine.cpus));
    this.setItem(FwCfgKey.RAM_SIZE, u64le(machine.ramSize));
    this.setItem(FwCfgKey.FILE_DIR, this.fileDirectory());
  }

  /** Claim 0x510-0x511 and, with DMA, 0x514-0x51b. */
  attach(bus: PortBus): void {
    bus.register(FW_CFG_SELECTOR_PORT, 2, this);
    if (this.dmaEnabled) bus.register(FW_CFG_DMA_PORT, 8, this);
  }

  /** Set (or replace) a numbered item. File keys (0x20 and up, not arch-specific) belong to addFile. */
  setItem(key: number, data: Uint8Array, writable = false): void {
    const entry = key & (ARCH_LOCAL | ENTRY_MASK);
    if (entry >= FwCfgKey.FILE_FIRST && entry < ARCH_LOCAL) throw new Error(`fw_cfg: key 0x${key.toString(16)} is a file slot: use addFile`);
    this.items.set(entry, { data, writable });
  }

  setU32(key: number, value: number): void { this.setItem(key, u32le(value)); }

  /** Add a named file (QEMU fw_cfg_add_file). Files are kept sorted by name, so adding one renumbers
   *  those after it; the guest finds keys through the directory. Returns the key it has now. */
  addFile(name: string, data: Uint8Array, options: { writable?: boolean } = {}): number {
    const nameBytes = new TextEncoder().encode(name);
    if (nameBytes.length === 0 || nameBytes.length > FILE_NAME_MAX) throw new Error(`fw_cfg: bad file name '${name}'`);
    if (this.files.some((f) => f.name === name)) throw new Error(`fw_cfg: duplicate file name '${name}'`);
    let index = this.files.length;
    while (index > 0 && compareBytes(nameBytes, this.files[index - 1].nameBytes) < 0) index--;
    this.files.splice(index, 0, { name, nameBytes, data, writable: options.writable ?? false });
    this.setItem(FwCfgKey.FILE_DIR, this.fileDirectory());
    return FwCfgKey.FILE_FIRST + index;
  }

  /** The key of a file, or undefined. */
  fileKey(name: string): number | undefined {
    const index = this.files.findIndex((f) => f.name === name);
    return index < 0 ? undefined : FwCfgKey.FILE_FIRST + index;
  }

  /** The items `qemu -kernel -initrd -append` provides, as 32-bit little-endian addresses and sizes
   *  plus the data; the command line is NUL-terminated and its size counts the NUL. */
  setLinuxBoot(boot: FwCfgLinuxBoot): void {
    this.setU32(FwCfgKey.SETUP_ADDR, boot.setupAddress);
    this.setU32(FwCfgKey.SETUP_SIZE, boot.setup.length);
    this.setItem(FwCfgKey.SETUP_DATA, boot.setup);
    this.setU32(FwCfgKey.KERNEL_ADDR, boot.kernelAddress);
    this.setU32(FwCfgKey.KERNEL_SIZE, boot.kernel.length);
    this.setItem(FwCfgKey.KERNEL_DATA, boot.kernel);
    const cmdline = new TextEncoder().encode(`${boot.cmdline}\0`);
    this.setU32(FwCfgKey.CMDLINE_ADDR, boot.cmdlineAddress);
    this.setU32(FwCfgKey.CMDLINE_SIZE, cmdline.length);
    this.setItem(FwCfgKey.CMDLINE_DATA, cmdline);
    if (boot.initrd) {
      this.setU32(FwCfgKey.INITRD_ADDR, boot.initrdAddress ?? 0);
      this.setU32(FwCfgKey.INITRD_SIZE, boot.initrd.length);
      this.setItem(FwCfgKey.INITRD_DATA, boot.initrd);
    }
  }

  /** Device reset: selects the signature (QEMU fw_cfg_reset). */
  reset(): void { this.select(FwCfgKey.SIGNATURE); this.dmaAddressHigh = 0; }

  read(port: number, size: number): number {
    if (port === FW_CFG_SELECTOR_PORT || port === FW_CFG_DATA_PORT) return size === 1 ? this.readDataByte() : 0;
    let value = 0;
    for (let i = 0; i < size; i++) {
      const at = port - FW_CFG_DMA_PORT + i;
      if (at < DMA_SIGNATURE.length) value |= DMA_SIGNATURE[at] << (8 * i);
    }
    return value >>> 0;
  }

  write(port: number, size: number, value: number): void {
    if (port === FW_CFG_SELECTOR_PORT && size === 2) { this.select(value & 0xffff); return; }
    if (size !== 4) return; // data-port writes are no-ops; the DMA register takes 32-bit halves only
    // The DMA register is big-endian: the CPU's little-endian outl delivers the half byte-swapped.
    if (port === FW_CFG_DMA_PORT) this.dmaAddressHigh = bswap32(value);
    else if (port === FW_CFG_DMA_PORT + 4) {
      const address = this.dmaAddressHigh * 2 ** 32 + bswap32(value);
      this.dmaAddressHigh = 0; // the register reads as 0 again after an operation
      this.dmaTransfer(address);
    }
  }

  private select(key: number): void {
    this.selected = key;
    this.offset = 0;
  }

  private current(): Item | undefined {
    const entry = this.selected & (ARCH_LOCAL | ENTRY_MASK);
    if (entry >= FwCfgKey.FILE_FIRST && entry < ARCH_LOCAL) return this.files[entry - FwCfgKey.FILE_FIRST];
    return this.items.get(entry);
  }

  private readDataByte(): number {
    const item = this.current();
    if (!item || this.offset >= item.data.length) return 0;
    return item.data[this.offset++];
  }

  /** FWCfgFiles: count (BE32) then one 64-byte entry per file. */
  private fileDirectory(): Uint8Array {
    const dir = new Uint8Array(4 + FILE_ENTRY_SIZE * this.files.length);
    const view = new DataView(dir.buffer);
    view.setUint32(0, this.files.length, false);
    this.files.forEach((file, i) => {
      const at = 4 + FILE_ENTRY_SIZE * i;
      view.setUint32(at, file.data.length, false);
      view.setUint16(at + 4, FwCfgKey.FILE_FIRST + i, false);
      dir.set(file.nameBytes, at + 8);
    });
    return dir;
  }

  /** One DMA operation (QEMU fw_cfg_dma_transfer): read the FWCfgDmaAccess, optionally select, then
   *  read / write / skip `length` bytes at the current offset, and store the resulting control word
   *  (0 = done, ERROR bit = failed). Reads past the item's end fill the guest buffer with zeros;
   *  writes must fit the item and the item must be writable. Guest-memory faults set ERROR. */
  private dmaTransfer(accessAddress: number): void {
    const access = this.guestRead(accessAddress, DMA_ACCESS_SIZE);
    if (!access) { this.storeControl(accessAddress, FW_CFG_DMA_CTL_ERROR); return; }
    const view = new DataView(access.buffer, access.byteOffset, DMA_ACCESS_SIZE);
    const control = view.getUint32(0, false);
    let length = view.getUint32(4, false);
    let address = view.getUint32(8, false) * 2 ** 32 + view.getUint32(12, false);

    if (control & FW_CFG_DMA_CTL_SELECT) this.select(control >>> 16);
    const reading = (control & FW_CFG_DMA_CTL_READ) !== 0;
    const writing = !reading && (control & FW_CFG_DMA_CTL_WRITE) !== 0;
    if (!reading && !writing && !(control & FW_CFG_DMA_CTL_SKIP)) length = 0;

    let error = false;
    const item = this.current();
    while (length > 0 && !error) {
      let chunk: number;
      if (!item || this.offset >= item.data.length) {
        chunk = length;
        if (reading) error = !this.guestZero(address, chunk);
        if (writing) error = true;
      } else {
        chunk = Math.min(length, item.data.length - this.offset);
        if (reading) error = !this.guestWrite(address, item.data.subarray(this.offset, this.offset + chunk));
        if (writing) {
          const incoming = item.writable && chunk === length ? this.guestRead(address, chunk) : null;
          if (incoming) item.data.set(incoming, this.offset);
          else error = true;
        }
        this.offset += chunk;
      }
      address += chunk;
      length -= chunk;
    }
    this.storeControl(accessAddress, error ? FW_CFG_DMA_CTL_ERROR : 0);
  }

  private storeControl(accessAddress: number, control: number): void {
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setUint32(0, control, false);
    this.guestWrite(accessAddress, bytes);
  }

  private guestRead(gpa: number, length: number): Uint8Array | null {
    try {
      const bytes = this.memory.read(gpa, length);
      return bytes.length === length ? bytes : null;
    } catch {
      return null;
    }
  }

  private guestWrite(gpa: number, bytes: Uint8Array): boolean {
    try {
      this.memory.write(gpa, bytes);
      return true;
    } catch {
      return false;
    }
  }

  private guestZero(gpa: number, length: number): boolean {
    for (let done = 0; done < length; done += ZERO_CHUNK) {
      if (!this.guestWrite(gpa + done, new Uint8Array(Math.min(ZERO_CHUNK, length - done)))) return false;
    }
    return true;
  }
}
