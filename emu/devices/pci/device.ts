// One PCI function (PCI Local Bus Specification 3.0, chapter 6 "Configuration Space"): a 256-byte
// type 0 configuration header with per-bit write masks (read-only bits ignore writes, RW1C status
// bits clear when written with one), base address registers that report their size the standard way
// (write all ones, read back the size mask, 6.2.5.1), a capability list builder (6.7), the interrupt
// pin/line registers and INTx with the Interrupt Disable / Interrupt Status bits (6.2.2, 6.2.3).
// Devices extend this class; the machine watches `onBarChange` and `onCommandChange` to map BARs on
// the port or MMIO bus and to follow bus mastering.
import type { IrqLine } from '../irq.ts';

// Type 0 header offsets (spec Figure 6-1).
export const PCI_VENDOR_ID = 0x00;
export const PCI_DEVICE_ID = 0x02;
export const PCI_COMMAND = 0x04;
export const PCI_STATUS = 0x06;
export const PCI_REVISION_ID = 0x08;
export const PCI_CLASS_CODE = 0x09;
export const PCI_CACHE_LINE_SIZE = 0x0c;
export const PCI_LATENCY_TIMER = 0x0d;
export const PCI_HEADER_TYPE = 0x0e;
export const PCI_BAR0 = 0x10;
export const PCI_SUBSYSTEM_VENDOR_ID = 0x2c;
export const PCI_SUBSYSTEM_ID = 0x2e;
export const PCI_CAPABILITY_POINTER = 0x34;
export const PCI_INTERRUPT_LINE = 0x3c;
export const PCI_INTERRUPT_PIN = 0x3d;
export const PCI_CONFIG_SIZE = 256;
export const PCI_BAR_COUNT = 6;

export const PCI_COMMAND_IO = 1 << 0;
export const PCI_COMMAND_MEMORY = 1 << 1;
export const PCI_COMMAND_BUS_MASTER = 1 << 2;
export const PCI_COMMAND_PARITY = 1 << 6;
export const PCI_COMMAND_SERR = 1 << 8;
export const PCI_COMMAND_INTX_DISABLE = 1 << 10;
export const PCI_STATUS_INTERRUPT = 1 << 3;
export const PCI_STATUS_CAPABILITIES = 1 << 4;
/** Master/target abort, parity and system error bits: write 1 to clear (spec 6.2.3). */
export const PCI_STATUS_WRITE_ONE_TO_CLEAR = 0xf900;
export const PCI_HEADER_MULTI_FUNCTION = 0x80;

/** Command bits a function implements: I/O and memory decode, bus master, parity/SERR response, INTx disable. */
const COMMAND_WRITABLE = PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_BUS_MASTER | PCI_COMMAND_PARITY
  | PCI_COMMAND_SERR | PCI_COMMAND_INTX_DISABLE;
const FIRST_CAPABILITY_OFFSET = 0x40;
/** Highest decodable address + 1 per BAR kind: 64 KiB of x86 I/O ports, 4 GiB, 2^52 (MAXPHYADDR limit). */
const BAR_LIMIT = { io: 0x10000, mem32: 2 ** 32, mem64: 2 ** 52 } as const;

export type BarKind = 'io' | 'mem32' | 'mem64';

export interface BarDefinition {
  kind: BarKind;
  /** Size in bytes: a power of two, at least 4 for I/O (at most 256) and 16 for memory. */
  size: number;
  prefetchable?: boolean;
}

export interface PciIdentity {
  vendorId: number;
  deviceId: number;
  /** Base class << 16 | subclass << 8 | programming interface. */
  classCode: number;
  revision?: number;
  subsystemVendorId?: number;
  subsystemId?: number;
  /** 0 = no interrupt, 1-4 = INTA#-INTD#. */
  interruptPin?: number;
}

export class PciFunction {
  readonly config = new Uint8Array(PCI_CONFIG_SIZE);
  private readonly writable = new Uint8Array(PCI_CONFIG_SIZE);
  private readonly writeOneToClear = new Uint8Array(PCI_CONFIG_SIZE);
  private readonly bars: Array<BarDefinition | null> = new Array(PCI_BAR_COUNT).fill(null);
  /** Where each BAR is decoded now (null: not decoded); index of a 64-bit BAR's upper half stays null. */
  private readonly mapped: Array<number | null> = new Array(PCI_BAR_COUNT).fill(null);
  private lastCapability = 0;
  private nextCapabilityOffset = FIRST_CAPABILITY_OFFSET;
  private intxRequested = false;

  /** A BAR started or stopped decoding, or moved: map it at `address`, or unmap it (null). */
  onBarChange: ((index: number, address: number | null, bar: BarDefinition) => void) | null = null;
  /** The guest changed the command register. */
  onCommandChange: ((command: number) => void) | null = null;
  /** The INTx# line, wired by the machine (through the PIIX3 PIRQ routing). */
  irq: IrqLine | null = null;

  constructor(readonly name: string, id: PciIdentity) {
    this.initRegister(PCI_VENDOR_ID, 2, id.vendorId);
    this.initRegister(PCI_DEVICE_ID, 2, id.deviceId);
    this.initRegister(PCI_COMMAND, 2, 0, COMMAND_WRITABLE);
    this.initRegister(PCI_STATUS, 2, 0, 0, PCI_STATUS_WRITE_ONE_TO_CLEAR);
    this.initRegister(PCI_REVISION_ID, 1, id.revision ?? 0);
    this.initRegister(PCI_CLASS_CODE, 3, id.classCode);
    this.initRegister(PCI_CACHE_LINE_SIZE, 1, 0, 0xff);
    this.initRegister(PCI_LATENCY_TIMER, 1, 0, 0xff);
    this.initRegister(PCI_SUBSYSTEM_VENDOR_ID, 2, id.subsystemVendorId ?? 0);
    this.initRegister(PCI_SUBSYSTEM_ID, 2, id.subsystemId ?? 0);
    this.initRegister(PCI_INTERRUPT_LINE, 1, 0, 0xff);
    this.initRegister(PCI_INTERRUPT_PIN, 1, id.interruptPin ?? 0);
  }

  /** Set a register's reset value and which of its bits the guest may write (or clear by writing one). */
  initRegister(offset: number, size: number, value: number, writableMask = 0, writeOneToClearMask = 0): void {
    for (let i = 0; i < size; i++) {
      this.config[offset + i] = (value >>> (8 * i)) & 0xff;
      this.writable[offset + i] = (writableMask >>> (8 * i)) & 0xff;
      this.writeOneToClear[offset + i] = (writeOneToClearMask >>> (8 * i)) & 0xff;
    }
  }

  get command(): number { return this.readConfig(PCI_COMMAND, 2); }
  get status(): number { return this.readConfig(PCI_STATUS, 2); }

  setMultiFunction(on: boolean): void {
    this.config[PCI_HEADER_TYPE] = (this.config[PCI_HEADER_TYPE] & ~PCI_HEADER_MULTI_FUNCTION) | (on ? PCI_HEADER_MULTI_FUNCTION : 0);
  }

  // ---- BARs (spec 6.2.5.1) ---------------------------------------------------------------------

  /** Declare BAR `index`. Its writable bits are the address bits above the size, so writing all ones
   *  and reading back yields ~(size - 1) plus the read-only type bits. A 64-bit BAR also takes index + 1. */
  defineBar(index: number, bar: BarDefinition): void {
    const wide = bar.kind === 'mem64';
    const minimum = bar.kind === 'io' ? 4 : 16;
    if (index < 0 || index + (wide ? 1 : 0) >= PCI_BAR_COUNT) throw new Error(`${this.name}: no room for BAR ${index}`);
    if (this.bars[index] || this.isUpperHalf(index) || (wide && this.bars[index + 1])) {
      throw new Error(`${this.name}: BAR ${index} already defined`);
    }
    if (bar.size < minimum || (bar.kind === 'io' && bar.size > 256) || !Number.isInteger(Math.log2(bar.size))) {
      throw new Error(`${this.name}: BAR ${index} size ${bar.size} is not a valid ${bar.kind} BAR size`);
    }
    this.bars[index] = bar;
    // Low bits: I/O space indicator (bit 0), or memory type (bits 2:1, 10b = 64-bit) and prefetchable (bit 3).
    const typeBits = bar.kind === 'io' ? 1 : (wide ? 4 : 0) | (bar.prefetchable ? 8 : 0);
    const addressMask = BigInt.asUintN(64, -BigInt(bar.size)); // ~(size - 1)
    this.initRegister(PCI_BAR0 + 4 * index, 4, typeBits, Number(addressMask & 0xffffffffn));
    if (wide) this.initRegister(PCI_BAR0 + 4 * (index + 1), 4, 0, Number(addressMask >> 32n));
  }

  bar(index: number): BarDefinition | null { return this.bars[index] ?? null; }

  /** The address programmed into BAR `index`, whether or not it is decoded. */
  barAddress(index: number): number {
    const bar = this.bars[index];
    if (!bar) return 0;
    const low = this.readConfig(PCI_BAR0 + 4 * index, 4);
    const base = bar.kind === 'io' ? low & ~3 : low & ~0xf;
    const high = bar.kind === 'mem64' ? this.readConfig(PCI_BAR0 + 4 * (index + 1), 4) : 0;
    return high * 2 ** 32 + (base >>> 0);
  }

  /** Where BAR `index` is decoded now: decoding enabled in the command register, a nonzero address,
   *  and the whole range inside the address space (QEMU's rule); otherwise null. */
  decodedAddress(index: number): number | null {
    const bar = this.bars[index];
    if (!bar) return null;
    const enable = bar.kind === 'io' ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY;
    const address = this.barAddress(index);
    if (!(this.command & enable) || address === 0 || address + bar.size > BAR_LIMIT[bar.kind]) return null;
    return address;
  }

  private isUpperHalf(index: number): boolean { return index > 0 && this.bars[index - 1]?.kind === 'mem64'; }

  // ---- Capabilities (spec 6.7) -------------------------------------------------------------------

  /** Append a capability of `length` bytes (its ID and next-pointer included) to the list and return
   *  its offset; the caller fills the body with `initRegister`. Capabilities are dword aligned from 40h. */
  addCapability(id: number, length: number): number {
    const offset = this.nextCapabilityOffset;
    if (length < 2 || offset + length > PCI_CONFIG_SIZE) throw new Error(`${this.name}: no room for a ${length}-byte capability`);
    this.initRegister(offset, 2, id & 0xff);
    if (this.lastCapability === 0) {
      this.config[PCI_CAPABILITY_POINTER] = offset;
      this.config[PCI_STATUS] |= PCI_STATUS_CAPABILITIES;
    } else {
      this.config[this.lastCapability + 1] = offset;
    }
    this.lastCapability = offset;
    this.nextCapabilityOffset = (offset + length + 3) & ~3;
    return offset;
  }

  // ---- INTx (spec 6.2.2 Interrupt Disable, 6.2.3 Interrupt Status) -----------------------------

  /** The device requests (or stops requesting) an interrupt. Status shows the request; the line is
   *  driven only while Interrupt Disable is clear. */
  setIntx(requested: boolean): void {
    this.intxRequested = requested;
    this.config[PCI_STATUS] = (this.config[PCI_STATUS] & ~PCI_STATUS_INTERRUPT) | (requested ? PCI_STATUS_INTERRUPT : 0);
    this.irq?.set(requested && !(this.command & PCI_COMMAND_INTX_DISABLE));
  }

  // ---- Configuration accesses ----------------------------------------------------------------------

  configRead(offset: number, size: number): number { return this.readConfig(offset, size); }

  configWrite(offset: number, size: number, value: number): void {
    const oldCommand = this.command;
    let touchedBars = false;
    for (let i = 0; i < size && offset + i < PCI_CONFIG_SIZE; i++) {
      const at = offset + i, b = (value >>> (8 * i)) & 0xff;
      const kept = this.config[at] & ~this.writable[at];
      this.config[at] = (kept | (b & this.writable[at])) & ~(b & this.writeOneToClear[at]);
      if (at >= PCI_BAR0 && at < PCI_BAR0 + 4 * PCI_BAR_COUNT) touchedBars = true;
    }
    const command = this.command;
    if (command !== oldCommand) {
      if ((command ^ oldCommand) & PCI_COMMAND_INTX_DISABLE) this.setIntx(this.intxRequested);
      this.onCommandChange?.(command);
    }
    if (touchedBars || command !== oldCommand) this.updateMappings();
  }

  private readConfig(offset: number, size: number): number {
    let v = 0;
    for (let i = 0; i < size; i++) v |= (offset + i < PCI_CONFIG_SIZE ? this.config[offset + i] : 0xff) << (8 * i);
    return v >>> 0;
  }

  /** Tell the machine about every BAR whose decoded address changed. */
  private updateMappings(): void {
    for (let i = 0; i < PCI_BAR_COUNT; i++) {
      const bar = this.bars[i];
      if (!bar) continue;
      const address = this.decodedAddress(i);
      if (address === this.mapped[i]) continue;
      this.mapped[i] = address;
      this.onBarChange?.(i, address, bar);
    }
  }
}
