// The BIOS memory map (ACPI 6.5, chapter 15 "System Address Map Interfaces": INT 15h E820h) that a
// PC firmware reports and that the Linux boot protocol hands to the kernel in boot_params.e820_table.
// buildE820 produces the map SeaBIOS gives a QEMU "pc" guest: conventional memory up to the EBDA,
// the EBDA and the BIOS area (where the RSDP lives) reserved, RAM from 1 MiB to the end of RAM, and
// the BIOS ROM below 4 GiB reserved; ranges the caller reserves (ACPI tables, ...) are carved out.

/** Address range types (ACPI 6.5, Table 15.312). */
export const E820_RAM = 1;
export const E820_RESERVED = 2;
export const E820_ACPI = 3; // ACPI reclaimable: the tables, usable once the OS has read them
export const E820_NVS = 4; // ACPI NVS: must be preserved across sleep

export type E820Type = typeof E820_RAM | typeof E820_RESERVED | typeof E820_ACPI | typeof E820_NVS;

export interface E820Entry { addr: number; size: number; type: E820Type }

/** Conventional memory ends where the 1 KiB Extended BIOS Data Area begins (QEMU/SeaBIOS: 639 KiB). */
export const EBDA_START = 0x9fc00;
export const LOW_MEMORY_END = 0xa0000;
/** The BIOS area 0xF0000-0xFFFFF: the BIOS code and the ACPI RSDP (ACPI 6.5, 5.2.5.1). */
export const BIOS_AREA_START = 0xf0000;
export const HIGH_MEMORY_START = 0x100000;
/** The firmware ROM mapped below 4 GiB: SeaBIOS reserves its 256 KiB there. QEMU's other reserved
 *  range, 0xFEFFC000 + 16 KiB, holds KVM's real-mode TSS and identity-map page; hvlab has neither,
 *  and like QEMU we leave the APIC pages (0xFEC00000, 0xFEE00000) out of the map. */
export const BIOS_ROM_START = 0xfffc0000;
export const FOUR_GIB = 0x1_0000_0000;

/**
 * The PC memory map for `ramBytes` of RAM, with `reserved` ranges painted over it (a reserved range
 * wins over RAM; of two overlapping reserved ranges the later one wins). Sorted, non-overlapping,
 * with adjacent ranges of one type merged.
 */
export function buildE820(ramBytes: number, reserved: readonly E820Entry[] = []): E820Entry[] {
  const base: E820Entry[] = [
    { addr: 0, size: Math.min(ramBytes, EBDA_START), type: E820_RAM },
    { addr: EBDA_START, size: LOW_MEMORY_END - EBDA_START, type: E820_RESERVED },
    { addr: BIOS_AREA_START, size: HIGH_MEMORY_START - BIOS_AREA_START, type: E820_RESERVED },
    { addr: HIGH_MEMORY_START, size: ramBytes - HIGH_MEMORY_START, type: E820_RAM },
    { addr: BIOS_ROM_START, size: FOUR_GIB - BIOS_ROM_START, type: E820_RESERVED },
  ];
  for (const r of reserved) {
    if (!(r.size > 0) || r.addr < 0) throw new RangeError(`e820: bad range at 0x${r.addr.toString(16)} (size ${r.size})`);
  }
  return normalizeE820([...base.filter((e) => e.size > 0), ...reserved]);
}

/**
 * Resolve overlaps (later entries win) and merge neighbours of the same type: the map is cut at every
 * range boundary, each piece takes the type of the last range covering it, and equal neighbours join.
 */
export function normalizeE820(ranges: readonly E820Entry[]): E820Entry[] {
  const cuts = [...new Set(ranges.flatMap((r) => [r.addr, r.addr + r.size]))].sort((a, b) => a - b);
  const out: E820Entry[] = [];
  for (let i = 0; i + 1 < cuts.length; i++) {
    const start = cuts[i], end = cuts[i + 1];
    let owner: E820Entry | undefined;
    for (const r of ranges) if (r.addr <= start && end <= r.addr + r.size) owner = r;
    if (!owner) continue;
    const last = out[out.length - 1];
    if (last && last.type === owner.type && last.addr + last.size === start) last.size += end - start;
    else out.push({ addr: start, size: end - start, type: owner.type });
  }
  return out;
}

/** Whether [addr, addr + size) lies inside one RAM entry of a normalized map. */
export function isRam(map: readonly E820Entry[], addr: number, size: number): boolean {
  return map.some((e) => e.type === E820_RAM && e.addr <= addr && addr + size <= e.addr + e.size);
}
