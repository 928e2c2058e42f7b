// Memory-mapped I/O: devices claim guest-physical ranges outside RAM (the local APIC at FEE00000h, the
// IOAPIC at FEC00000h, pc-testdev's scratch page at FF000000h, PCI BARs). The core hands accesses to
// unbacked guest-physical addresses to the VMM, which routes them here. Offsets passed to a device
// are relative to the start of the range it claimed. Reads of unclaimed addresses return all ones
// (an undriven bus), writes to them are dropped; both are counted.

export interface MmioDevice {
  readonly name: string;
  /** Read `size` (1, 2, 4 or 8) bytes at `offset`; 8-byte reads return a bigint. */
  read(offset: number, size: number): number | bigint;
  write(offset: number, size: number, value: number | bigint): void;
}

interface Region { base: number; size: number; device: MmioDevice }

export class MmioBus {
  private readonly regions: Region[] = [];
  unclaimedReads = 0;
  unclaimedWrites = 0;

  register(base: number, size: number, device: MmioDevice): void {
    for (const r of this.regions) {
      if (base < r.base + r.size && r.base < base + size) {
        throw new Error(`MMIO range 0x${base.toString(16)}+0x${size.toString(16)} of ${device.name} overlaps ${r.device.name}`);
      }
    }
    this.regions.push({ base, size, device });
  }

  /** Remove a device's range (a PCI BAR the guest stopped decoding). */
  unregister(device: MmioDevice): void {
    const i = this.regions.findIndex((x) => x.device === device);
    if (i >= 0) this.regions.splice(i, 1);
  }

  /** Move a device's range (a PCI BAR reprogrammed by the guest). */
  relocate(device: MmioDevice, base: number): void {
    const r = this.regions.find((x) => x.device === device);
    if (r) r.base = base;
  }

  find(addr: number): Region | undefined {
    for (const r of this.regions) if (addr >= r.base && addr < r.base + r.size) return r;
    return undefined;
  }

  read(addr: number, size: number): number | bigint {
    const r = this.find(addr);
    if (r) return r.device.read(addr - r.base, size);
    this.unclaimedReads++;
    return size === 8 ? 0xffffffffffffffffn : size === 4 ? 0xffffffff : (1 << (8 * size)) - 1;
  }

  write(addr: number, size: number, value: number | bigint): void {
    const r = this.find(addr);
    if (r) r.device.write(addr - r.base, size, value);
    else this.unclaimedWrites++;
  }
}
