// QEMU fw_cfg (docs/specs/fw_cfg.rst): the port interface, the file directory and the DMA interface,
// driven the way guest code does it (outw/inb/outl), against a fake guest memory.
import { describe, expect, it } from 'vitest';
import { FwCfg, type GuestMemory } from '../../emu/devices/fw-cfg.ts';
import { PortBus } from '../../emu/devices/port-bus.ts';

const SELECTOR = 0x510, DATA = 0x511, DMA = 0x514;
const CTL_ERROR = 0x01, CTL_READ = 0x02, CTL_SKIP = 0x04, CTL_SELECT = 0x08, CTL_WRITE = 0x10;

/** Guest RAM at [0, 1 MiB) and [4 GiB, 4 GiB + 64 KiB); anything else is outside it and throws. */
class FakeMemory implements GuestMemory {
  readonly low = new Uint8Array(0x100000);
  readonly high = new Uint8Array(0x10000);
  private locate(gpa: number, length: number): { ram: Uint8Array; offset: number } {
    if (gpa >= 0 && gpa + length <= this.low.length) return { ram: this.low, offset: gpa };
    if (gpa >= 2 ** 32 && gpa + length <= 2 ** 32 + this.high.length) return { ram: this.high, offset: gpa - 2 ** 32 };
    throw new RangeError(`gpa 0x${gpa.toString(16)}+${length} outside guest RAM`);
  }
  read(gpa: number, length: number): Uint8Array {
    const { ram, offset } = this.locate(gpa, length);
    return ram.slice(offset, offset + length);
  }
  write(gpa: number, bytes: Uint8Array): void {
    const { ram, offset } = this.locate(gpa, bytes.length);
    ram.set(bytes, offset);
  }
  be32(gpa: number): number { return new DataView(this.read(gpa, 4).buffer).getUint32(0, false); }
}

function machine(options: { dma?: boolean } = {}) {
  const memory = new FakeMemory();
  const fwcfg = new FwCfg(memory, { cpus: 4, ramSize: 6 * 2 ** 30, dma: options.dma });
  const bus = new PortBus();
  fwcfg.attach(bus);
  const outw = (port: number, v: number) => bus.write(port, 2, v);
  const outl = (port: number, v: number) => bus.write(port, 4, v);
  const inb = (port: number) => bus.read(port, 1);
  const readItem = (key: number, length: number) => { outw(SELECTOR, key); return Array.from({ length }, () => inb(DATA)); };
  const bswap32 = (v: number) => (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0;
  /** Write a FWCfgDmaAccess (big-endian) at `at` and start it, as Linux's fw_cfg driver does:
   *  iowrite32be(high half, 0x514); iowrite32be(low half, 0x518). Returns the control word after. */
  const dma = (at: number, control: number, length: number, address: number) => {
    const access = new Uint8Array(16);
    const view = new DataView(access.buffer);
    view.setUint32(0, control, false);
    view.setUint32(4, length, false);
    view.setUint32(8, Math.floor(address / 2 ** 32), false);
    view.setUint32(12, address % 2 ** 32, false);
    memory.write(at, access);
    outl(DMA, bswap32(Math.floor(at / 2 ** 32)));
    outl(DMA + 4, bswap32(at % 2 ** 32));
    return memory.be32(at);
  };
  return { memory, fwcfg, bus, outw, inb, readItem, dma };
}

const text = (bytes: ArrayLike<number>) => String.fromCharCode(...Array.from(bytes));
const le = (bytes: number[]) => bytes.reduceRight((v, b) => v * 256 + b, 0);

describe('fw_cfg port interface', () => {
  it('signature "QEMU" through the selector and data ports, then zeros past the end', () => {
    const { readItem } = machine();
    expect(text(readItem(0x0000, 4))).toBe('QEMU');
    expect(readItem(0x0000, 6).slice(4)).toEqual([0, 0]);
  });

  it('selecting rewinds the offset; ID has the traditional and DMA bits', () => {
    const { readItem, inb } = machine();
    readItem(0x0000, 2);
    expect(text(readItem(0x0000, 4))).toBe('QEMU');
    expect(readItem(0x0001, 4)).toEqual([0x03, 0, 0, 0]);
    expect(inb(DATA)).toBe(0);
    expect(machine({ dma: false }).readItem(0x0001, 4)).toEqual([0x01, 0, 0, 0]);
  });

  it('machine items: CPU counts (16-bit LE) and RAM size (64-bit LE)', () => {
    const { readItem } = machine();
    expect(readItem(0x0005, 2)).toEqual([4, 0]);
    expect(readItem(0x000f, 2)).toEqual([4, 0]);
    expect(readItem(0x0003, 8)).toEqual([0, 0, 0, 0x80, 0x01, 0, 0, 0]); // 6 GiB = 0x1_8000_0000
  });

  it('unknown selectors read 0; the write-channel bit (14) selects the same item', () => {
    const { readItem } = machine();
    expect(readItem(0x0123, 4)).toEqual([0, 0, 0, 0]);
    expect(readItem(0x8123, 4)).toEqual([0, 0, 0, 0]);
    expect(text(readItem(0x4000, 4))).toBe('QEMU');
  });

  it('the DMA address register reads "QEMU CFG"', () => {
    const { bus } = machine();
    expect(text(Array.from({ length: 8 }, (_, i) => bus.read(DMA + i, 1)))).toBe('QEMU CFG');
    expect(bus.read(DMA, 4)).toBe(0x554d4551); // bytes 'Q' 'E' 'M' 'U' in port order
  });

  it('without DMA the DMA ports are not claimed', () => {
    const { bus } = machine({ dma: false });
    expect(bus.read(DMA, 1)).toBe(0xff);
  });

  it('Linux boot items as qemu -kernel provides them', () => {
    const { fwcfg, readItem } = machine();
    fwcfg.setLinuxBoot({
      setup: new Uint8Array(0x1000).fill(0x11), setupAddress: 0x10000,
      kernel: new Uint8Array(0x3000).fill(0x22), kernelAddress: 0x100000,
      cmdline: 'console=ttyS0', cmdlineAddress: 0x20000,
      initrd: new Uint8Array(0x500).fill(0x33), initrdAddress: 0x7f00000,
    });
    expect(le(readItem(0x16, 4))).toBe(0x10000); // SETUP_ADDR
    expect(le(readItem(0x17, 4))).toBe(0x1000); // SETUP_SIZE
    expect(readItem(0x18, 2)).toEqual([0x11, 0x11]);
    expect(le(readItem(0x07, 4))).toBe(0x100000); // KERNEL_ADDR
    expect(le(readItem(0x08, 4))).toBe(0x3000); // KERNEL_SIZE
    expect(readItem(0x11, 1)).toEqual([0x22]);
    expect(le(readItem(0x13, 4))).toBe(0x20000); // CMDLINE_ADDR
    expect(le(readItem(0x14, 4))).toBe(14); // CMDLINE_SIZE counts the NUL
    expect(readItem(0x15, 15)).toEqual([...Buffer.from('console=ttyS0'), 0, 0]);
    expect(le(readItem(0x0a, 4))).toBe(0x7f00000); // INITRD_ADDR
    expect(le(readItem(0x0b, 4))).toBe(0x500); // INITRD_SIZE
    expect(readItem(0x12, 1)).toEqual([0x33]);
  });
});

describe('fw_cfg files and DMA', () => {
  function withFiles() {
    const m = machine();
    m.fwcfg.addFile('etc/e820', new Uint8Array(40).fill(0xe8));
    m.fwcfg.addFile('bootorder', new TextEncoder().encode('/rom@genroms/linuxboot_dma.bin\0'));
    m.fwcfg.addFile('etc/acpi/rsdp', new Uint8Array(36).fill(0x5a));
    return m;
  }

  /** Parse FWCfgFiles: count (BE32), then {size BE32, select BE16, reserved, name[56]}. */
  function parseDirectory(bytes: Uint8Array) {
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    const count = view.getUint32(0, false);
    return Array.from({ length: count }, (_, i) => {
      const at = 4 + 64 * i;
      const name = text(bytes.subarray(at + 8, at + 64)).replace(/\0.*$/s, '');
      return { size: view.getUint32(at, false), select: view.getUint16(at + 4, false), name };
    });
  }

  it('DMA read of the file directory: big-endian, sorted by name, keys from 0x20 in that order', () => {
    const { memory, dma } = withFiles();
    expect(dma(0x1000, (0x19 << 16) | CTL_SELECT | CTL_READ, 4 + 3 * 64, 0x2000)).toBe(0);
    expect(parseDirectory(memory.read(0x2000, 4 + 3 * 64))).toEqual([
      { size: 31, select: 0x20, name: 'bootorder' },
      { size: 36, select: 0x21, name: 'etc/acpi/rsdp' },
      { size: 40, select: 0x22, name: 'etc/e820' },
    ]);
  });

  it('the directory reads the same through the data port', () => {
    const { readItem } = withFiles();
    const bytes = Uint8Array.from(readItem(0x19, 4 + 3 * 64));
    expect(parseDirectory(bytes).map((f) => f.name)).toEqual(['bootorder', 'etc/acpi/rsdp', 'etc/e820']);
  });

  it('DMA skip then read continues at the offset; reading past the end zero-fills', () => {
    const { memory, dma, fwcfg } = withFiles();
    expect(fwcfg.fileKey('etc/e820')).toBe(0x22);
    memory.low.fill(0xaa, 0x3000, 0x3100);
    expect(dma(0x1000, (0x22 << 16) | CTL_SELECT | CTL_SKIP, 36, 0)).toBe(0);
    expect(dma(0x1000, CTL_READ, 8, 0x3000)).toBe(0); // 4 bytes left in the file, then zeros
    expect([...memory.read(0x3000, 9)]).toEqual([0xe8, 0xe8, 0xe8, 0xe8, 0, 0, 0, 0, 0xaa]);
  });

  it('the FWCfgDmaAccess may live above 4 GiB (the high half is written first)', () => {
    const { memory, dma } = machine();
    expect(dma(2 ** 32 + 0x100, CTL_SELECT | CTL_READ, 4, 2 ** 32 + 0x200)).toBe(0); // key 0: signature
    expect(text(memory.read(2 ** 32 + 0x200, 4))).toBe('QEMU');
  });

  it('DMA to an address outside guest memory sets the error bit and does not throw', () => {
    const { dma } = machine();
    expect(dma(0x1000, CTL_SELECT | CTL_READ, 4, 0x4000_0000) & CTL_ERROR).toBe(CTL_ERROR);
    expect(dma(0x1000, CTL_SELECT | CTL_READ, 4, 0xffffe) & CTL_ERROR).toBe(CTL_ERROR); // straddles the end
  });

  it('a FWCfgDmaAccess outside guest memory is ignored without throwing', () => {
    const { bus } = machine();
    expect(() => { bus.write(DMA, 4, 0); bus.write(DMA + 4, 4, 0x00000080); }).not.toThrow(); // 0x80000000
  });

  it('DMA write: rejected for read-only items, stored in writable ones, never resizes', () => {
    const { fwcfg, memory, dma, readItem } = machine();
    memory.write(0x3000, Uint8Array.of(1, 2, 3, 4, 5));
    expect(dma(0x1000, CTL_SELECT | CTL_WRITE, 4, 0x3000) & CTL_ERROR).toBe(CTL_ERROR); // signature is read-only
    expect(text(readItem(0, 4))).toBe('QEMU');
    const key = fwcfg.addFile('opt/hvlab/scratch', new Uint8Array(4), { writable: true });
    expect(dma(0x1000, (key << 16) | CTL_SELECT | CTL_WRITE, 4, 0x3000)).toBe(0);
    expect(readItem(key, 4)).toEqual([1, 2, 3, 4]);
    expect(dma(0x1000, (key << 16) | CTL_SELECT | CTL_WRITE, 5, 0x3000) & CTL_ERROR).toBe(CTL_ERROR);
    expect(readItem(key, 4)).toEqual([1, 2, 3, 4]); // a truncated write is dropped
  });

  it('a control word with no operation completes with nothing transferred', () => {
    const { memory, dma } = machine();
    memory.low.fill(0xaa, 0x3000, 0x3004);
    expect(dma(0x1000, CTL_SELECT, 4, 0x3000)).toBe(0);
    expect([...memory.read(0x3000, 4)]).toEqual([0xaa, 0xaa, 0xaa, 0xaa]);
  });

  it('rejects duplicate and over-long file names', () => {
    const { fwcfg } = withFiles();
    expect(() => fwcfg.addFile('etc/e820', new Uint8Array(1))).toThrow();
    expect(() => fwcfg.addFile('x'.repeat(56), new Uint8Array(1))).toThrow();
  });
});
