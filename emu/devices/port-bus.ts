// The I/O port space of a PC: devices claim port ranges; the VMM routes each EXIT_IO to the owner.
// Reads of unclaimed ports return all ones (an undriven ISA bus), writes to them are dropped; both
// are counted so a run can report what the guest probed.

export interface PortDevice {
  readonly name: string;
  read(port: number, size: number): number;
  write(port: number, size: number, value: number): void;
}

export class PortBus {
  private readonly owners = new Map<number, PortDevice>();
  readonly unclaimedReads = new Map<number, number>();
  readonly unclaimedWrites = new Map<number, number>();

  register(first: number, count: number, device: PortDevice): void {
    for (let p = first; p < first + count; p++) {
      const prev = this.owners.get(p);
      if (prev) throw new Error(`port 0x${p.toString(16)} claimed by both ${prev.name} and ${device.name}`);
      this.owners.set(p, device);
    }
  }

  read(port: number, size: number): number {
    const d = this.owners.get(port);
    if (d) return d.read(port, size) >>> 0;
    this.unclaimedReads.set(port, (this.unclaimedReads.get(port) ?? 0) + 1);
    return size === 4 ? 0xffffffff : (1 << (8 * size)) - 1;
  }

  write(port: number, size: number, value: number): void {
    const d = this.owners.get(port);
    if (d) d.write(port, size, value);
    else this.unclaimedWrites.set(port, (this.unclaimedWrites.get(port) ?? 0) + 1);
  }
}
