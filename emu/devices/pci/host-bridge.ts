// PCI bus 0 and the host bridge's configuration access mechanism #1 (PCI Local Bus Specification 3.0,
// 3.2.2.3.2): CONFIG_ADDRESS at CF8h (enable bit 31, bus 23:16, device 15:11, function 10:8,
// register 7:2) and CONFIG_DATA at CFCh-CFFh, where byte, word and dword accesses reach register
// (CONFIG_ADDRESS & FCh) + (port - CFCh). Only dword accesses to CF8h are CONFIG_ADDRESS; byte and
// word accesses there pass through as ordinary I/O (nothing answers), and CF9h-CFBh stay free for the
// PIIX3 reset control register. There are no PCI-to-PCI bridges, so only bus 0 has devices; config
// reads of absent functions return all ones (a master abort), writes to them are dropped.
import type { PortBus, PortDevice } from '../port-bus.ts';
import type { PciFunction } from './device.ts';

export const PCI_CONFIG_ADDRESS_PORT = 0xcf8;
export const PCI_CONFIG_DATA_PORT = 0xcfc;
const CONFIG_ENABLE = 0x80000000;
/** Enable, bus, device, function, register; bits 30:24 and 1:0 are reserved and read as zero. */
const CONFIG_ADDRESS_WRITABLE = 0x80fffffc;

export const PCI_DEVICES_PER_BUS = 32;
export const PCI_FUNCTIONS_PER_DEVICE = 8;

function allOnes(size: number): number { return size >= 4 ? 0xffffffff : (1 << (8 * size)) - 1; }

export class PciBus {
  private readonly functions = new Map<number, PciFunction>();

  /** Place `f` at device `dev`, function `fn`. Function 0 of a device with several functions
   *  reports it through the header type's multi-function bit, without which software probes only function 0. */
  addFunction(dev: number, fn: number, f: PciFunction): void {
    if (dev < 0 || dev >= PCI_DEVICES_PER_BUS || fn < 0 || fn >= PCI_FUNCTIONS_PER_DEVICE) {
      throw new Error(`PCI ${dev}.${fn} is not a valid device/function`);
    }
    const key = dev * PCI_FUNCTIONS_PER_DEVICE + fn;
    if (this.functions.has(key)) throw new Error(`PCI 00:${hex2(dev)}.${fn} is taken by ${this.functions.get(key)!.name}`);
    this.functions.set(key, f);
    let others = false;
    for (let i = 1; i < PCI_FUNCTIONS_PER_DEVICE; i++) others ||= this.functions.has(dev * PCI_FUNCTIONS_PER_DEVICE + i);
    this.function(dev, 0)?.setMultiFunction(others);
  }

  function(dev: number, fn: number): PciFunction | undefined {
    return this.functions.get(dev * PCI_FUNCTIONS_PER_DEVICE + fn);
  }

  /** Every function with its address, in device/function order. */
  list(): Array<{ device: number; fn: number; function: PciFunction }> {
    return [...this.functions.entries()].sort(([a], [b]) => a - b)
      .map(([key, f]) => ({ device: key >> 3, fn: key & 7, function: f }));
  }

  configRead(dev: number, fn: number, offset: number, size: number): number {
    const f = this.function(dev, fn);
    return f ? f.configRead(offset, size) : allOnes(size);
  }

  configWrite(dev: number, fn: number, offset: number, size: number, value: number): void {
    this.function(dev, fn)?.configWrite(offset, size, value);
  }
}

export class PciHostBridge implements PortDevice {
  readonly name = 'pci-config';
  private address = 0;

  constructor(readonly bus: PciBus) {}

  /** Claim CF8h (CONFIG_ADDRESS) and CFCh-CFFh (CONFIG_DATA) on the port bus. */
  attach(ports: PortBus): void {
    ports.register(PCI_CONFIG_ADDRESS_PORT, 1, this);
    ports.register(PCI_CONFIG_DATA_PORT, 4, this);
  }

  read(port: number, size: number): number {
    if (port === PCI_CONFIG_ADDRESS_PORT) return size === 4 ? this.address : allOnes(size);
    const target = this.target(port);
    return target ? this.bus.configRead(target.dev, target.fn, target.register, size) : allOnes(size);
  }

  write(port: number, size: number, value: number): void {
    if (port === PCI_CONFIG_ADDRESS_PORT) {
      if (size === 4) this.address = (value & CONFIG_ADDRESS_WRITABLE) >>> 0;
      return;
    }
    const target = this.target(port);
    if (target) this.bus.configWrite(target.dev, target.fn, target.register, size, value);
  }

  /** The function and register a CONFIG_DATA access at `port` reaches, or null when no config cycle
   *  runs (enable bit clear) or it goes to a bus that does not exist. */
  private target(port: number): { dev: number; fn: number; register: number } | null {
    const a = this.address;
    if (!(a & CONFIG_ENABLE) || ((a >>> 16) & 0xff) !== 0) return null;
    return { dev: (a >>> 11) & 0x1f, fn: (a >>> 8) & 7, register: (a & 0xfc) + (port - PCI_CONFIG_DATA_PORT) };
  }
}

function hex2(n: number): string { return n.toString(16).padStart(2, '0'); }
