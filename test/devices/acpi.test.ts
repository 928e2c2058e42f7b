// ACPI tables (ACPI 6.3 chapter 5.2) parsed back the way an OS does: scan the BIOS area for the RSDP,
// follow the XSDT, check every header and checksum, then read fields at the spec's offsets.
// And the PM register block (ACPI 4.8): PM timer, fixed events, SCI, soft-off.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { amlPkgLength, buildAcpiTables, PC_ISA_OVERRIDES, type AcpiConfig } from '../../emu/machine/acpi.ts';
import { ACPI_PM_BASE, AcpiPm, acpiPmBlocks, SLP_TYP_S5 } from '../../emu/devices/acpi-pm.ts';
import { VirtualClock } from '../../emu/machine/clock.ts';
import type { IrqLine } from '../../emu/devices/irq.ts';

function config(overrides: Partial<AcpiConfig> = {}): AcpiConfig {
  return {
    cpus: 2,
    ioApic: { id: 2, address: 0xfec00000, gsiBase: 0 },
    localApicAddress: 0xfee00000,
    isaOverrides: PC_ISA_OVERRIDES,
    pm: { ...acpiPmBlocks(0x600), sciIrq: 9, resetRegister: { port: 0xcf9, value: 0x06 } },
    hpet: false,
    tableBase: 0xe0000,
    rsdpAddress: 0xf0000,
    ...overrides,
  };
}

/** Guest-physical reads over the blobs the builder returned. */
function physicalMemory(blobs: Array<{ address: number; bytes: Uint8Array }>) {
  const byte = (address: number): number => {
    for (const b of blobs) if (address >= b.address && address < b.address + b.bytes.length) return b.bytes[address - b.address];
    return 0;
  };
  const read = (address: number, length: number) => Uint8Array.from({ length }, (_, i) => byte(address + i));
  const u8 = (a: number) => byte(a);
  const u16 = (a: number) => byte(a) | (byte(a + 1) << 8);
  const u32 = (a: number) => (u16(a) | (u16(a + 2) << 16)) >>> 0;
  const u64 = (a: number) => u32(a) + u32(a + 4) * 2 ** 32;
  const ascii = (a: number, n: number) => String.fromCharCode(...read(a, n));
  return { read, u8, u16, u32, u64, ascii };
}
type Memory = ReturnType<typeof physicalMemory>;

const sum8 = (bytes: Uint8Array) => bytes.reduce((s, b) => (s + b) & 0xff, 0);

/** ACPI 5.2.5.1: the RSDP is on a 16-byte boundary in 0xE0000-0xFFFFF, found by signature and checksum. */
function findRsdp(mem: Memory): number {
  for (let a = 0xe0000; a < 0x100000; a += 16) {
    if (mem.ascii(a, 8) === 'RSD PTR ' && sum8(mem.read(a, 20)) === 0) return a;
  }
  throw new Error('no RSDP');
}

interface Table { address: number; signature: string; length: number; revision: number }
function header(mem: Memory, address: number): Table {
  return { address, signature: mem.ascii(address, 4), length: mem.u32(address + 4), revision: mem.u8(address + 8) };
}

function walk(cfg: AcpiConfig) {
  const built = buildAcpiTables(cfg);
  const mem = physicalMemory(built.blobs);
  const rsdp = findRsdp(mem);
  const xsdt = header(mem, mem.u64(rsdp + 24));
  const rsdt = header(mem, mem.u32(rsdp + 16));
  const entries = Array.from({ length: (xsdt.length - 36) / 8 }, (_, i) => header(mem, mem.u64(xsdt.address + 36 + 8 * i)));
  const bySignature = (sig: string) => {
    const t = entries.find((e) => e.signature === sig);
    if (!t) throw new Error(`${sig} not in XSDT`);
    return t;
  };
  return { built, mem, rsdp, xsdt, rsdt, entries, bySignature };
}

describe('ACPI tables', () => {
  it('RSDP: revision 2, both checksums, RSDT and XSDT pointers', () => {
    const { mem, rsdp, xsdt, rsdt } = walk(config());
    expect(rsdp).toBe(0xf0000);
    expect(mem.ascii(rsdp + 9, 6)).toBe('HVLAB ');
    expect(mem.u8(rsdp + 15)).toBe(2);
    expect(mem.u32(rsdp + 20)).toBe(36);
    expect(sum8(mem.read(rsdp, 20))).toBe(0);
    expect(sum8(mem.read(rsdp, 36))).toBe(0);
    expect(xsdt.signature).toBe('XSDT');
    expect(rsdt.signature).toBe('RSDT');
  });

  it('every table has a valid header and checksum; RSDT and XSDT list the same tables', () => {
    const { mem, xsdt, rsdt, entries, bySignature } = walk(config());
    expect(entries.map((e) => e.signature).sort()).toEqual(['APIC', 'FACP']);
    const rsdtEntries = Array.from({ length: (rsdt.length - 36) / 4 }, (_, i) => mem.u32(rsdt.address + 36 + 4 * i));
    expect(rsdtEntries).toEqual(entries.map((e) => e.address));
    const fadt = bySignature('FACP');
    const dsdt = header(mem, mem.u32(fadt.address + 40));
    for (const t of [xsdt, rsdt, ...entries, dsdt]) {
      expect(sum8(mem.read(t.address, t.length)), t.signature).toBe(0);
      expect(mem.ascii(t.address + 10, 6), t.signature).toBe('HVLAB ');
      expect(mem.u32(t.address + 28), t.signature).not.toBe(0); // creator ID
    }
  });

  it('MADT: PCAT_COMPAT, one enabled local APIC per CPU, the I/O APIC, overrides and LINT1 NMI', () => {
    const { mem, bySignature } = walk(config({ cpus: 2 }));
    const madt = bySignature('APIC');
    expect(mem.u32(madt.address + 36)).toBe(0xfee00000);
    expect(mem.u32(madt.address + 40)).toBe(1);
    const entries: number[][] = [];
    for (let a = madt.address + 44; a < madt.address + madt.length; a += mem.u8(a + 1)) entries.push([...mem.read(a, mem.u8(a + 1))]);
    expect(entries).toEqual([
      [0, 8, 0, 0, 1, 0, 0, 0], // processor UID 0, APIC ID 0, enabled
      [0, 8, 1, 1, 1, 0, 0, 0],
      [1, 12, 2, 0, 0x00, 0x00, 0xc0, 0xfe, 0, 0, 0, 0], // I/O APIC ID 2 at 0xFEC00000, GSI base 0
      [2, 10, 0, 0, 2, 0, 0, 0, 0x05, 0], // ISA IRQ 0 -> GSI 2, active high (01), edge (01)
      [2, 10, 0, 9, 9, 0, 0, 0, 0x0d, 0], // ISA IRQ 9 -> GSI 9, active high (01), level (11)
      [4, 6, 0xff, 0, 0, 1], // all processors, LINT1
    ]);
  });

  it('MADT lists as many processors as configured', () => {
    const { mem, bySignature } = walk(config({ cpus: 8 }));
    const madt = bySignature('APIC');
    const ids: number[] = [];
    for (let a = madt.address + 44; a < madt.address + madt.length; a += mem.u8(a + 1)) if (mem.u8(a) === 0) ids.push(mem.u8(a + 3));
    expect(ids).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it('FADT: revision 6 (276 bytes), FACS and DSDT in 32- and 64-bit fields, PM blocks, reset register, flags', () => {
    const { mem, bySignature } = walk(config());
    const f = bySignature('FACP').address;
    expect(mem.u32(f + 4)).toBe(276);
    expect(mem.u8(f + 8)).toBe(6);
    const facs = mem.u32(f + 36), dsdt = mem.u32(f + 40);
    expect(mem.u64(f + 132)).toBe(facs); // X_FIRMWARE_CTRL
    expect(mem.u64(f + 140)).toBe(dsdt); // X_DSDT
    expect(mem.ascii(facs, 4)).toBe('FACS');
    expect(mem.u32(facs + 4)).toBe(64);
    expect(facs % 64).toBe(0);
    expect(mem.ascii(dsdt, 4)).toBe('DSDT');
    expect(mem.u16(f + 46)).toBe(9); // SCI_INT
    expect(mem.u32(f + 48)).toBe(0); // SMI_CMD: no ACPI mode switch
    expect(mem.u32(f + 56)).toBe(0x600); // PM1a_EVT_BLK
    expect(mem.u32(f + 64)).toBe(0x604); // PM1a_CNT_BLK
    expect(mem.u32(f + 76)).toBe(0x608); // PM_TMR_BLK
    expect([mem.u8(f + 88), mem.u8(f + 89), mem.u8(f + 91)]).toEqual([4, 2, 4]);
    // GAS: space 1 (system I/O), bit width, bit offset 0, then the 64-bit address.
    expect([...mem.read(f + 148, 3), mem.u64(f + 152)]).toEqual([1, 32, 0, 0x600]); // X_PM1a_EVT_BLK
    expect([...mem.read(f + 172, 3), mem.u64(f + 176)]).toEqual([1, 16, 0, 0x604]); // X_PM1a_CNT_BLK
    expect([...mem.read(f + 208, 3), mem.u64(f + 212)]).toEqual([1, 32, 0, 0x608]); // X_PM_TMR_BLK
    expect([...mem.read(f + 116, 4), mem.u64(f + 120)]).toEqual([1, 8, 0, 1, 0xcf9]); // RESET_REG, byte access
    expect(mem.u8(f + 128)).toBe(0x06); // RESET_VALUE
    const flags = mem.u32(f + 112);
    const bit = (n: number) => (flags >>> n) & 1;
    expect([bit(0), bit(2), bit(10)]).toEqual([1, 1, 1]); // WBINVD, PROC_C1, RESET_REG_SUP
    expect(bit(4)).toBe(0); // PWR_BUTTON 0: fixed-feature power button
    expect(bit(5)).toBe(1); // SLP_BUTTON 1: no fixed-feature sleep button
    expect(bit(8)).toBe(0); // TMR_VAL_EXT: 24-bit timer
    expect(bit(20)).toBe(0); // not HW_REDUCED_ACPI
    expect(mem.u16(f + 109) & 0b11).toBe(0b11); // IAPC_BOOT_ARCH: LEGACY_DEVICES, 8042
    expect(mem.u16(f + 96)).toBeGreaterThan(100); // no C2
    expect(mem.u16(f + 98)).toBeGreaterThan(1000); // no C3
  });

  it('DSDT holds Name(_S5_, Package(){5, 5, 0, 0}) encoded as AML', () => {
    const { mem, bySignature } = walk(config());
    const dsdtAddress = mem.u32(bySignature('FACP').address + 40);
    const dsdt = header(mem, dsdtAddress);
    const aml = [...mem.read(dsdtAddress + 36, dsdt.length - 36)];
    // NameOp '_S5_' PackageOp PkgLength(8) NumElements(4) BytePrefix 5, BytePrefix 5, Zero, Zero
    const s5 = [0x08, 0x5f, 0x53, 0x35, 0x5f, 0x12, 0x08, 0x04, 0x0a, 0x05, 0x0a, 0x05, 0x00, 0x00];
    const at = aml.findIndex((_, i) => s5.every((b, j) => aml[i + j] === b));
    expect(at).toBeGreaterThanOrEqual(0);
    expect(SLP_TYP_S5).toBe(aml[at + 9]); // the PM device powers off on the SLP_TYP the DSDT names
  });

  // ACPICA's disassembler (iasl, the tool OS vendors validate tables with) is the oracle for the AML.
  it.skipIf(spawnSync('iasl', ['-v']).error !== undefined)('DSDT: iasl disassembles \\_SB.PCI0 (PNP0A03) with its _CRS windows and a _PRT of 124 GSI routes', () => {
    const pci = { memoryWindow: { base: 0x10000000, limit: 0xfebfffff }, intxGsi: 11 };
    const { mem, bySignature } = walk(config({ pci }));
    const dsdtAddress = mem.u32(bySignature('FACP').address + 40);
    const dir = mkdtempSync(join(tmpdir(), 'hvlab-dsdt-'));
    writeFileSync(join(dir, 'dsdt.dat'), mem.read(dsdtAddress, header(mem, dsdtAddress).length));
    const r = spawnSync('iasl', ['-d', 'dsdt.dat'], { cwd: dir, encoding: 'utf8' });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const dsl = readFileSync(join(dir, 'dsdt.dsl'), 'utf8');
    expect(dsl).toContain('Device (PCI0)');
    expect(dsl).toContain('EisaId ("PNP0A03")');
    expect(dsl).toMatch(/WordBusNumber[\s\S]*?0x00FF,\s+\/\/ Range Maximum/);
    expect(dsl).toMatch(/DWordMemory[\s\S]*?0x10000000,\s+\/\/ Range Minimum\s+0xFEBFFFFF,\s+\/\/ Range Maximum/);
    const routes = [...dsl.matchAll(/Package \(0x04\)\s*\{\s*0x00([0-9A-F]{2})FFFF,\s*(Zero|One|0x02|0x03),\s*Zero,\s*0x0B\s*\}/g)];
    expect(routes).toHaveLength(31 * 4);
    expect(new Set(routes.map((m) => m[1])).size).toBe(31); // slots 1..31, each with pins A-D
  });

  it('AML PkgLength counts its own bytes and switches to the multi-byte form past 63 (ACPI 20.2.4)', () => {
    expect(amlPkgLength(6)).toEqual([7]);
    expect(amlPkgLength(62)).toEqual([63]);
    expect(amlPkgLength(63)).toEqual([0x41, 0x04]); // 63 + 2 = 65 = 0x41: lead 0x40 | 1, then 0x04
    expect(amlPkgLength(100)).toEqual([0x46, 0x06]); // 102 = 0x66
    expect(amlPkgLength(4093)).toEqual([0x4f, 0xff]); // 4095 = 0xFFF: the most one extra byte holds
    expect(amlPkgLength(5000)).toEqual([0x8b, 0x38, 0x01]); // 5003 = 0x138B, two extra bytes
    expect(amlPkgLength(5_000_000)).toEqual([0xc4, 0xb4, 0xc4, 0x04]); // 5000004 = 0x4C4B44, three
  });

  it('HPET table only when configured', () => {
    expect(walk(config()).entries.some((e) => e.signature === 'HPET')).toBe(false);
    const { mem, bySignature } = walk(config({ hpet: { address: 0xfed00000, eventTimerBlockId: 0x8086a201, minimumTick: 100 } }));
    const h = bySignature('HPET');
    expect(h.length).toBe(56);
    expect(mem.u32(h.address + 36)).toBe(0x8086a201);
    expect([...mem.read(h.address + 40, 3), mem.u64(h.address + 44)]).toEqual([0, 64, 0, 0xfed00000]);
    expect(mem.u16(h.address + 53)).toBe(100);
  });

  it('tables can live high in RAM; the caller gets the range to reserve', () => {
    const { built, bySignature } = walk(config({ tableBase: 0x7ff0000 }));
    expect(built.reclaimRange).toEqual({ address: 0x7ff0000, length: built.totalSize });
    for (const t of ['FACP', 'APIC']) {
      const { address, length } = bySignature(t);
      expect(address).toBeGreaterThanOrEqual(0x7ff0000);
      expect(address + length).toBeLessThanOrEqual(0x7ff0000 + built.totalSize);
    }
  });

  it('rejects a misplaced RSDP or FACS', () => {
    expect(() => buildAcpiTables(config({ rsdpAddress: 0xf0008 }))).toThrow(RangeError);
    expect(() => buildAcpiTables(config({ rsdpAddress: 0x9fc00 }))).toThrow(RangeError);
    expect(() => buildAcpiTables(config({ tableBase: 0xe0010 }))).toThrow(RangeError);
    expect(() => buildAcpiTables(config({ tableBase: 0xeffc0 }))).toThrow(RangeError); // overlaps the RSDP
  });
});

// ---- PM registers ---------------------------------------------------------------------------------

const PM1_STS = ACPI_PM_BASE, PM1_EN = ACPI_PM_BASE + 2, PM1_CNT = ACPI_PM_BASE + 4, PM_TMR = ACPI_PM_BASE + 8;

function pmDevice() {
  const clock = new VirtualClock();
  const sci = { level: false, set(level: boolean) { this.level = level; } } satisfies IrqLine & { level: boolean };
  let powerOffs = 0;
  const pm = new AcpiPm(clock, sci, () => { powerOffs++; });
  return { clock, sci, pm, powerOffs: () => powerOffs };
}

/** Reference: ticks = floor(ns × 3579545 / 10^9), in exact integer arithmetic. */
const refTicks = (ns: number) => Number((BigInt(ns) * 3579545n) / 1_000_000_000n);
/** First ns at which the reference reaches `ticks`. */
const refNsAt = (ticks: number) => Number((BigInt(ticks) * 1_000_000_000n + 3579544n) / 3579545n);

describe('ACPI PM timer', () => {
  it('counts 3579545 ticks per virtual second and wraps at 24 bits', () => {
    const { clock, pm } = pmDevice();
    expect(pm.read(PM_TMR, 4)).toBe(0);
    clock.advanceTo(1e9);
    expect(pm.read(PM_TMR, 4)).toBe(3579545);
    clock.advanceTo(5e9); // 17897725 ticks = 2^24 + 1120509
    expect(pm.read(PM_TMR, 4)).toBe(1120509);
    clock.advanceTo(86_400e9 + 123_456_789); // a day later: still exact
    expect(pm.read(PM_TMR, 4)).toBe(refTicks(86_400e9 + 123_456_789) % 2 ** 24);
  });

  it('stays exact where ns × 3579545 no longer fits a double', () => {
    // Times where Math.floor(ns * 3579545 / 1e9) is off by one (found by search against BigInt).
    for (const ns of [1_289_000_000_000, 32_065_400_155_327]) {
      const { clock, pm } = pmDevice();
      clock.advanceTo(ns);
      expect(pm.read(PM_TMR, 4)).toBe(refTicks(ns) % 2 ** 24);
    }
  });

  it('is exact and monotonic tick by tick', () => {
    const { clock, pm } = pmDevice();
    let ns = 1e12; // 1000 s, well past where ns × 3579545 overflows a double's integers
    let previous = pm.read(PM_TMR, 4);
    for (let i = 0; i < 2000; i++) {
      clock.advanceTo(ns);
      const value = pm.read(PM_TMR, 4);
      expect(value).toBe(refTicks(ns) % 2 ** 24);
      expect((value - previous + 2 ** 24) % 2 ** 24).toBeLessThan(2 ** 23); // never steps back
      previous = value;
      ns += 1 + ((i * 7919) % 613);
    }
  });

  it('sets TMR_STS when bit 23 toggles and raises the SCI when TMR_EN is set', () => {
    const { clock, sci, pm } = pmDevice();
    const toggle = refNsAt(2 ** 23);
    clock.advanceTo(toggle - 1);
    expect(pm.read(PM1_STS, 2) & 1).toBe(0);
    clock.advanceTo(toggle);
    expect(pm.read(PM1_STS, 2) & 1).toBe(1);
    pm.write(PM1_STS, 2, 1); // write 1 to clear
    expect(pm.read(PM1_STS, 2) & 1).toBe(0);
    pm.write(PM1_EN, 2, 1); // TMR_EN
    expect(sci.level).toBe(false);
    const next = refNsAt(2 ** 24); // bit 23 toggles back to 0 at the wrap
    expect(clock.nextDeadline()).toBe(next);
    clock.advanceTo(next);
    expect(sci.level).toBe(true);
    expect(pm.read(PM1_STS, 2) & 1).toBe(1);
    pm.write(PM1_STS, 2, 1);
    expect(sci.level).toBe(false);
  });
});

describe('ACPI PM1 event and control registers', () => {
  it('power button: PWRBTN_STS, SCI when PWRBTN_EN, write 1 to clear', () => {
    const { sci, pm } = pmDevice();
    pm.pressPowerButton();
    expect(pm.read(PM1_STS, 2) & 0x100).toBe(0x100);
    expect(sci.level).toBe(false);
    pm.write(PM1_EN, 2, 0x100);
    expect(pm.read(PM1_EN, 2)).toBe(0x100);
    expect(sci.level).toBe(true);
    pm.write(PM1_STS, 2, 0x0001); // clearing another bit leaves it
    expect(sci.level).toBe(true);
    pm.write(PM1_STS + 1, 1, 0x01); // byte write to the high half clears bit 8
    expect(pm.read(PM1_STS, 2) & 0x100).toBe(0);
    expect(sci.level).toBe(false);
  });

  it('GBL_EN sticks (ACPICA probes it), the event block reads as one 32-bit register', () => {
    const { pm } = pmDevice();
    pm.write(PM1_EN, 2, 0x0020);
    expect(pm.read(PM1_EN, 2)).toBe(0x0020);
    pm.pressPowerButton();
    expect(pm.read(PM1_STS, 4)).toBe(0x0020_0100);
  });

  it('SCI_EN always reads 1; SLP_EN reads 0; SLP_TYP reads back', () => {
    const { pm } = pmDevice();
    expect(pm.read(PM1_CNT, 2) & 1).toBe(1);
    pm.write(PM1_CNT, 2, 0);
    expect(pm.read(PM1_CNT, 2)).toBe(1);
    pm.write(PM1_CNT, 2, 3 << 10);
    expect(pm.read(PM1_CNT, 2)).toBe((3 << 10) | 1);
  });

  it('SLP_EN with the S5 SLP_TYP powers off; other types and SLP_TYP alone do not', () => {
    const { pm, powerOffs } = pmDevice();
    pm.write(PM1_CNT, 2, 5 << 10); // ACPICA writes SLP_TYP first...
    expect(powerOffs()).toBe(0);
    pm.write(PM1_CNT, 2, 1 << 13); // ...then SLP_EN with a different type: S0, ignored
    expect(powerOffs()).toBe(0);
    pm.write(PM1_CNT, 2, (5 << 10) | (1 << 13) | 1);
    expect(powerOffs()).toBe(1);
    pm.write(PM1_CNT + 1, 1, (5 << 2) | (1 << 5)); // byte write of the high half
    expect(powerOffs()).toBe(2);
  });
});
