// Booting Linux on the PC directly, as `qemu -kernel` does with its firmware: the ACPI tables and
// the e820 map built from the board's configuration, the local APIC in virtual-wire mode (what PC
// firmware leaves behind), then the Linux boot protocol (linux.ts).
import type { Machine } from '../machine/machine.ts';
import { buildAcpiTables } from '../machine/acpi.ts';
import { PC_ISA_OVERRIDES } from '../machine/acpi.ts';
import { buildE820, E820_ACPI } from './e820.ts';
import { bootLinux, type LinuxBootResult } from './linux.ts';

/** Where the ACPI tables go: in the 0xE0000 BIOS shadow area, with the RSDP at 0xF0000 where the
 *  OS's scan of 0xE0000-0xFFFFF finds it (ACPI 5.2.5.1). */
export const ACPI_TABLE_BASE = 0xe0000;
export const ACPI_RSDP_ADDRESS = 0xf0000;

export function bootPcLinux(m: Machine, kernel: Uint8Array, opts: { cmdline: string; initrd?: Uint8Array }): LinuxBootResult {
  const acpi = buildAcpiTables({ ...m.acpiConfig(ACPI_TABLE_BASE, ACPI_RSDP_ADDRESS), isaOverrides: PC_ISA_OVERRIDES });
  for (const blob of acpi.blobs) m.vm.writeGuest(blob.address, blob.bytes);
  const e820 = buildE820(m.vm.ramBytes, [{ addr: acpi.reclaimRange.address, size: acpi.reclaimRange.length, type: E820_ACPI }]);
  m.lapic.enterVirtualWireMode();
  return bootLinux(m, kernel, { cmdline: opts.cmdline, initrd: opts.initrd, e820, acpiRsdp: ACPI_RSDP_ADDRESS });
}

/** A bzImage has "HdrS" at 0x202 (Linux boot protocol). */
export function isBzImage(bytes: Uint8Array): boolean {
  return bytes.length > 0x206 && bytes[0x202] === 0x48 && bytes[0x203] === 0x64 && bytes[0x204] === 0x72 && bytes[0x205] === 0x53;
}
