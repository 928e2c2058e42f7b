// The 440FX PCIset as QEMU's `pc` machine presents it: the 82441FX PCI and memory controller (host
// bridge, 00:00.0, 8086:1237) and the 82371SB PIIX3 PCI-to-ISA bridge (00:01.0, 8086:7000). Linux
// only identifies them; the PIIX3's PIRQ route control registers tell where PCI INTx lines reach
// the 8259s.
//
// Intended interrupt routing (what the machine wires and the firmware tables must describe):
//   PCI device d, pin INTx (1 = INTA#) → PIRQ (d + x - 2) & 3, the usual rotation (`intxToPirq`,
//   QEMU's pci_slot_get_pirq for the PIIX);
//   PIRQ n → IOAPIC GSI 16 + n, always, level-triggered active low (so that pin idles high);
//   PIRQ n → the ISA IRQ in PIRQRC[n] (`pirqRoute`) on the 8259s only, for guests in PIC mode,
//   level-triggered (ELCR) active high; not also onto that ISA IRQ's IOAPIC pin, so an APIC-mode
//   guest sees each PCI interrupt once.
import { PCI_STATUS, PCI_STATUS_WRITE_ONE_TO_CLEAR, PciFunction } from './device.ts';

export const INTEL_VENDOR_ID = 0x8086;
export const I440FX_DEVICE_ID = 0x1237;
export const PIIX3_ISA_DEVICE_ID = 0x7000;
/** Board wiring: every PCI INTx pin reaches this ISA IRQ / GSI (the DSDT's _PRT says so). */
export const PCI_INTX_GSI = 11;
/** The BAR window below 4 GiB ends under the IOAPIC (0xFEC00000), as on QEMU's pc. */
export const PCI_MMIO_WINDOW_END = 0xfebfffff;
const CLASS_HOST_BRIDGE = 0x060000;
const CLASS_ISA_BRIDGE = 0x060100;
/** Fast back-to-back capable, medium DEVSEL timing (82441FX and PIIX3 PCISTS default 0280h). */
const STATUS_FAST_B2B_DEVSEL_MEDIUM = 0x0280;

/** PIRQRC[A:D] at 60h-63h (PIIX3 datasheet 2.2.13): bit 7 disables routing, bits 3:0 name the IRQ. */
export const PIIX3_PIRQRC = 0x60;
const PIRQRC_ROUTING_DISABLED = 0x80;
const PIRQRC_WRITABLE = 0x8f;
/** IRQs a PIRQ can be steered to; 0-2, 8 and 13 are reserved encodings. */
const PIRQ_ROUTABLE_IRQS = new Set([3, 4, 5, 6, 7, 9, 10, 11, 12, 14, 15]);

export class I440fxHostBridge extends PciFunction {
  constructor() {
    super('i440fx', { vendorId: INTEL_VENDOR_ID, deviceId: I440FX_DEVICE_ID, classCode: CLASS_HOST_BRIDGE, revision: 0x02 });
    this.initRegister(PCI_STATUS, 2, STATUS_FAST_B2B_DEVSEL_MEDIUM, 0, PCI_STATUS_WRITE_ONE_TO_CLEAR);
  }
}

export class Piix3IsaBridge extends PciFunction {
  constructor() {
    super('piix3', { vendorId: INTEL_VENDOR_ID, deviceId: PIIX3_ISA_DEVICE_ID, classCode: CLASS_ISA_BRIDGE });
    this.initRegister(PCI_STATUS, 2, STATUS_FAST_B2B_DEVSEL_MEDIUM, 0, PCI_STATUS_WRITE_ONE_TO_CLEAR);
    for (let pirq = 0; pirq < 4; pirq++) this.initRegister(PIIX3_PIRQRC + pirq, 1, PIRQRC_ROUTING_DISABLED, PIRQRC_WRITABLE);
  }

  /** The ISA IRQ that PIRQ `pirq` (0 = PIRQA#) is steered to, or -1 when routing is disabled or the encoding reserved. */
  pirqRoute(pirq: number): number {
    const v = this.config[PIIX3_PIRQRC + (pirq & 3)];
    if (v & PIRQRC_ROUTING_DISABLED) return -1;
    const irq = v & 0xf;
    return PIRQ_ROUTABLE_IRQS.has(irq) ? irq : -1;
  }
}

/** The PIRQ (0-3) that INTx pin `interruptPin` (1 = INTA#) of device `device` on bus 0 drives. */
export function intxToPirq(device: number, interruptPin: number): number {
  return (device + interruptPin - 2) & 3;
}
