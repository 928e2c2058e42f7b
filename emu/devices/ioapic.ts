// Intel 82093AA I/O APIC (datasheet 290566, sections 3.0-3.2): 24 interrupt input pins (GSI 0-23),
// each with a 64-bit redirection table entry that turns an edge or a level on the pin into an
// interrupt message on the APIC bus. The register file is indirect: the guest writes a register index
// to IOREGSEL (offset 00h) and reads or writes the register through IOWIN (offset 10h).
//
// Pin levels. `setIrq(gsi, level)` takes the electrical level of the pin; the entry's polarity bit
// says which level means "asserted" (active low inverts it, datasheet 3.2.4 bit 13). ISA interrupts
// are active high, so ISA devices' lines drive pins 0-15 directly. Pins the firmware tables declare
// active low (PCI INTx through the PIIX3 PIRQs on GSI 16-19) must idle high: the machine drives
// them high at reset and low while a device requests service.
import type { MmioDevice } from './mmio-bus.ts';
import type { IrqSink } from './irq.ts';
import { type ApicBus, DeliveryMode, type EoiListener, Shorthand } from './apic-bus.ts';

export const IOAPIC_DEFAULT_BASE = 0xfec00000;
export const IOAPIC_MMIO_SIZE = 0x20;
export const IOAPIC_PINS = 24;

const IOREGSEL = 0x00;
const IOWIN = 0x10;
const REG_ID = 0x00, REG_VERSION = 0x01, REG_ARBITRATION = 0x02, REG_REDIRECTION = 0x10;
/** IOAPICVER: maximum redirection entry 17h (24 pins) in bits 23:16, version 11h in bits 7:0. */
const VERSION = ((IOAPIC_PINS - 1) << 16) | 0x11;

// Redirection entry, low dword (datasheet 3.2.4): vector 7:0, delivery mode 10:8, destination mode 11,
// delivery status 12 (RO), polarity 13, remote IRR 14 (RO), trigger mode 15, mask 16. High dword:
// destination 63:56.
const LOW_WRITABLE = 0x0001afff;
const HIGH_WRITABLE = 0xff000000;
const DEST_LOGICAL = 1 << 11;
const ACTIVE_LOW = 1 << 13;
const REMOTE_IRR = 1 << 14;
const TRIGGER_LEVEL = 1 << 15;
const MASKED = 1 << 16;

export class IoApic implements MmioDevice, IrqSink, EoiListener {
  readonly name = 'ioapic';
  private select = 0;
  private id: number;
  private arbitrationId: number;
  private readonly low = new Uint32Array(IOAPIC_PINS).fill(MASKED);
  private readonly high = new Uint32Array(IOAPIC_PINS);
  /** Electrical level of each input pin. */
  private readonly pinLevel = new Array<boolean>(IOAPIC_PINS).fill(false);

  constructor(private readonly bus: ApicBus, id = 0) {
    this.id = id & 0xf;
    this.arbitrationId = this.id;
    bus.addEoiListener(this);
  }

  // ---- MMIO: IOREGSEL and IOWIN ----------------------------------------------------------------

  read(offset: number, size: number): number | bigint {
    const base = offset & ~3;
    const dword = base === IOREGSEL ? this.select : base === IOWIN ? this.readRegister(this.select) : 0;
    const value = dword >>> (8 * (offset & 3));
    if (size === 8) return BigInt(value >>> 0);
    return size === 4 ? value >>> 0 : value & ((1 << (8 * size)) - 1);
  }

  write(offset: number, size: number, value: number | bigint): void {
    const v = Number(BigInt.asUintN(32, BigInt(value)));
    if (offset === IOREGSEL) this.select = v & 0xff; // byte or dword writes of the index
    else if (offset === IOWIN && size === 4) this.writeRegister(this.select, v); // IOWIN is dword-only
  }

  private readRegister(index: number): number {
    switch (index) {
      case REG_ID: return this.id << 24;
      case REG_VERSION: return VERSION;
      case REG_ARBITRATION: return this.arbitrationId << 24;
    }
    const pin = (index - REG_REDIRECTION) >> 1;
    if (index < REG_REDIRECTION || pin >= IOAPIC_PINS) return 0;
    return index & 1 ? this.high[pin] : this.low[pin];
  }

  private writeRegister(index: number, v: number): void {
    if (index === REG_ID) {
      // The arbitration ID is loaded from the ID when the ID is written (datasheet 3.2.3).
      this.id = (v >>> 24) & 0xf;
      this.arbitrationId = this.id;
      return;
    }
    const pin = (index - REG_REDIRECTION) >> 1;
    if (index < REG_REDIRECTION || pin >= IOAPIC_PINS) return; // version, arbitration: read-only
    if (index & 1) { this.high[pin] = v & HIGH_WRITABLE; return; }
    let entry = (v & LOW_WRITABLE) | (this.low[pin] & REMOTE_IRR);
    if (!this.isLevel(entry)) entry &= ~REMOTE_IRR; // Remote IRR is only meaningful for level entries
    this.low[pin] = entry >>> 0;
    this.serviceLevel(pin); // unmasking an asserted level pin delivers it
  }

  // ---- Pins -------------------------------------------------------------------------------------

  setIrq(gsi: number, level: boolean): void {
    if (gsi < 0 || gsi >= IOAPIC_PINS || this.pinLevel[gsi] === level) return;
    this.pinLevel[gsi] = level;
    if (this.isLevel(this.low[gsi])) this.serviceLevel(gsi);
    else if (this.asserted(gsi) && !(this.low[gsi] & MASKED)) this.send(gsi); // edge: the transition to asserted
  }

  /** A local APIC EOIed `vector`: clear Remote IRR of the level entries using it, re-sending any still asserted. */
  onEoiBroadcast(vector: number): void {
    for (let pin = 0; pin < IOAPIC_PINS; pin++) {
      const e = this.low[pin];
      if (!(e & REMOTE_IRR) || (e & 0xff) !== vector) continue;
      this.low[pin] = e & ~REMOTE_IRR;
      this.serviceLevel(pin);
    }
  }

  private asserted(pin: number): boolean {
    return this.pinLevel[pin] !== ((this.low[pin] & ACTIVE_LOW) !== 0);
  }

  /** Level entries deliver while the pin is asserted, unmasked, and no earlier message awaits its EOI. */
  private serviceLevel(pin: number): void {
    const e = this.low[pin];
    if (!this.isLevel(e) || (e & (MASKED | REMOTE_IRR)) || !this.asserted(pin)) return;
    if (this.send(pin) > 0) this.low[pin] |= REMOTE_IRR;
  }

  /** SMI, NMI, INIT and ExtINT are edge-triggered whatever the trigger bit says (datasheet 3.2.4). */
  private isLevel(entry: number): boolean {
    const mode = (entry >>> 8) & 7;
    return (entry & TRIGGER_LEVEL) !== 0 && (mode === DeliveryMode.Fixed || mode === DeliveryMode.LowestPriority);
  }

  private send(pin: number): number {
    const e = this.low[pin];
    const mode = ((e >>> 8) & 7) as DeliveryMode;
    if (mode === DeliveryMode.Reserved || mode === DeliveryMode.StartUp) return 0; // reserved delivery modes
    return this.bus.deliver({
      vector: e & 0xff, deliveryMode: mode, logical: (e & DEST_LOGICAL) !== 0, destination: this.high[pin] >>> 24,
      wide: false, shorthand: Shorthand.None, levelTriggered: this.isLevel(e), assert: true,
    });
  }
}
