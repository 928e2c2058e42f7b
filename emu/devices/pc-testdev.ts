// QEMU's "pc-testdev" (hw/misc/pc-testdev.c), which kvm-unit-tests and other x86 test kernels use
// to check the machine from inside:
//   E0h-E3h     a 32-bit register: writes of any size at any offset store bytes (E0h + n is byte n),
//               reads return them;
//   E4h-E7h     flush page: a 32-bit write names a guest-physical page whose cached translations
//               the host must drop (QEMU remaps it so KVM refaults); reads return 0;
//   E8h-EBh     the same 32-bit register as E0h, reached one byte per access (QEMU splits wider
//               accesses into bytes, which lands on the same bytes);
//   2000h-2017h one byte port per ISA/GSI interrupt line 0-23: a write drives the line to
//               (value != 0); reads return 0;
//   FF000000h   64 KiB of scratch memory (MMIO, any access size, little endian).
import type { PortBus, PortDevice } from './port-bus.ts';
import type { MmioBus, MmioDevice } from './mmio-bus.ts';
import type { IrqSink } from './irq.ts';

export const TESTDEV_REGISTER_PORT = 0xe0;
export const TESTDEV_FLUSH_PAGE_PORT = 0xe4;
export const TESTDEV_REGISTER_BYTE_PORT = 0xe8;
export const TESTDEV_PORTS_LENGTH = 12; // E0h-EBh
export const TESTDEV_IRQ_PORT = 0x2000;
export const TESTDEV_IRQ_LINES = 24;
export const TESTDEV_IOMEM_BASE = 0xff000000;
export const TESTDEV_IOMEM_SIZE = 0x10000;

export interface PcTestdevOptions {
  /** The interrupt inputs the IRQ ports drive (QEMU wires them to the ISA bus: PIC and IOAPIC). */
  irqs?: IrqSink;
  /** A flush-page write: the guest-physical address with its low 12 bits cleared. */
  onFlushPage?: (gpa: number) => void;
}

export class PcTestdev implements PortDevice {
  readonly name = 'pc-testdev';
  private readonly register32 = new Uint8Array(4);
  /** The scratch page, an MmioDevice of its own (offsets relative to TESTDEV_IOMEM_BASE). */
  readonly iomem: MmioDevice;

  constructor(private readonly options: PcTestdevOptions = {}) {
    this.iomem = new ScratchMemory(TESTDEV_IOMEM_SIZE, 'pc-testdev-iomem');
  }

  register(ports: PortBus, mmio: MmioBus): void {
    ports.register(TESTDEV_REGISTER_PORT, TESTDEV_PORTS_LENGTH, this);
    ports.register(TESTDEV_IRQ_PORT, TESTDEV_IRQ_LINES, this);
    mmio.register(TESTDEV_IOMEM_BASE, TESTDEV_IOMEM_SIZE, this.iomem);
  }

  read(port: number, size: number): number {
    if (isRegisterPort(port)) {
      let value = 0;
      for (let i = 0; i < size && (port & 3) + i < 4; i++) value |= this.register32[(port & 3) + i] << (8 * i);
      return value >>> 0;
    }
    return 0; // flush-page and IRQ ports read 0
  }

  write(port: number, size: number, value: number): void {
    if (isRegisterPort(port)) {
      // Bytes that would fall past the register's end are dropped (QEMU masks them off the same way).
      for (let i = 0; i < size && (port & 3) + i < 4; i++) this.register32[(port & 3) + i] = (value >>> (8 * i)) & 0xff;
    } else if (port === TESTDEV_FLUSH_PAGE_PORT && size === 4) {
      this.options.onFlushPage?.((value & ~0xfff) >>> 0);
    } else if (port >= TESTDEV_IRQ_PORT && port < TESTDEV_IRQ_PORT + TESTDEV_IRQ_LINES && size === 1) {
      this.options.irqs?.setIrq(port - TESTDEV_IRQ_PORT, (value & 0xff) !== 0);
    }
  }
}

function isRegisterPort(port: number): boolean {
  return (port >= TESTDEV_REGISTER_PORT && port < TESTDEV_REGISTER_PORT + 4) ||
    (port >= TESTDEV_REGISTER_BYTE_PORT && port < TESTDEV_REGISTER_BYTE_PORT + 4);
}

/** Plain memory behind the MMIO bus: reads return what was written, little endian, any size. */
class ScratchMemory implements MmioDevice {
  private readonly bytes: Uint8Array;

  constructor(size: number, readonly name: string) { this.bytes = new Uint8Array(size); }

  read(offset: number, size: number): number | bigint {
    let value = 0n;
    for (let i = size - 1; i >= 0; i--) value = (value << 8n) | BigInt(this.bytes[offset + i] ?? 0xff);
    return size === 8 ? value : Number(value);
  }

  write(offset: number, size: number, value: number | bigint): void {
    let v = BigInt.asUintN(64, BigInt(value));
    for (let i = 0; i < size && offset + i < this.bytes.length; i++, v >>= 8n) this.bytes[offset + i] = Number(v & 0xffn);
  }
}
