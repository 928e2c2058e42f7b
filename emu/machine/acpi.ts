// ACPI tables for direct boot (ACPI 6.3, chapter 5.2 "ACPI System Description Tables"): what a
// PC's firmware leaves in memory so the OS finds its processors, interrupt controllers and the
// fixed power-management hardware. Linux reads the RSDP (found by scanning 0xE0000-0xFFFFF or from
// boot_params.acpi_rsdp_addr), follows the XSDT to the FADT and MADT, the FADT to the FACS and DSDT.
//
//   RSDP (at rsdpAddress) ──▶ XSDT ──▶ FACP (FADT) ──▶ FACS, DSDT
//                        └─▶ RSDT ─┘   APIC (MADT)
//                                      HPET (only with config.hpet)
//
// All tables but the RSDP form one blob at `tableBase` (FACS first: it must be 64-byte aligned).
// OEM ID "HVLAB ", creator "HVLB". The DSDT is hand-encoded AML (ACPI chapter 20) naming the
// sleep states the PM device decodes (emu/devices/acpi-pm.ts).
import { PM1_CNT_LEN, PM1_EVT_LEN, PM_TMR_LEN, SLP_TYP_S0, SLP_TYP_S5 } from '../devices/acpi-pm.ts';

export interface IsaInterruptOverride {
  /** ISA IRQ number (bus-relative source). */
  source: number;
  gsi: number;
  /** MPS INTI flags (ACPI Table 5-50): 'bus' = conforms to the bus (ISA: active high, edge). */
  polarity: 'bus' | 'high' | 'low';
  trigger: 'bus' | 'edge' | 'level';
}

/** QEMU's pc: the PIT's IRQ 0 arrives on IOAPIC pin 2; the SCI (IRQ 9) is level, active high. */
export const PC_ISA_OVERRIDES: readonly IsaInterruptOverride[] = [
  { source: 0, gsi: 2, polarity: 'high', trigger: 'edge' },
  { source: 9, gsi: 9, polarity: 'high', trigger: 'level' },
];

export interface HpetDescription {
  /** MMIO base of the HPET register block (0xFED00000 on the PC). */
  address: number;
  /** Bits 31:0 of the HPET's General Capabilities register (IA-PC HPET spec 1.0a, 3.2.4). */
  eventTimerBlockId: number;
  /** Main counter minimum clock tick in periodic mode. */
  minimumTick: number;
}

export interface AcpiConfig {
  /** Processors, with APIC IDs and ACPI processor UIDs 0..cpus-1. */
  cpus: number;
  ioApic: { id: number; address: number; gsiBase: number };
  localApicAddress: number;
  isaOverrides: readonly IsaInterruptOverride[];
  pm: {
    pm1aEventBlock: number;
    pm1aControlBlock: number;
    pmTimerBlock: number;
    sciIrq: number;
    resetRegister: { port: number; value: number };
  };
  hpet: false | HpetDescription;
  /** Guest-physical address of the table blob: 64-byte aligned, whole blob below 4 GiB. */
  tableBase: number;
  /** Guest-physical address of the RSDP: 16-byte aligned in 0xE0000-0xFFFFF (ACPI 5.2.5.1). */
  rsdpAddress: number;
  /** The board has a VGA controller (else IAPC_BOOT_ARCH says "VGA Not Present"). */
  vgaPresent?: boolean;
  /** The PCI root bridge to describe in the DSDT (absent: no PCI0 device). */
  pci?: PciHostBridgeDescription;
}

export interface GuestBlob { address: number; bytes: Uint8Array }

export interface AcpiTables {
  rsdp: GuestBlob;
  /** FACS, DSDT, FADT, MADT, [HPET], RSDT, XSDT, back to back from tableBase. */
  tables: GuestBlob;
  /** Both blobs, for a caller that just copies them into guest memory. */
  blobs: GuestBlob[];
  /** Where each table landed, by signature (FACS, DSDT, FACP, APIC, HPET, RSDT, XSDT). */
  addresses: Record<string, number>;
  /** Size of the table blob. */
  totalSize: number;
  /** Guest-physical range of the table blob, for an e820 ACPI (reclaimable) entry. The RSDP lies in
   *  the BIOS area, which the e820 map reserves anyway. */
  reclaimRange: { address: number; length: number };
}

const OEM_ID = 'HVLAB ';
const OEM_TABLE_ID = 'HVLABPC ';
const OEM_REVISION = 1;
const CREATOR_ID = 'HVLB';
const CREATOR_REVISION = 1;

const HEADER_LENGTH = 36;
const RSDP_LENGTH = 36;
const FACS_LENGTH = 64;
/** ACPI 6.3 FADT: major version 6, minor 3, 276 bytes (Table 5-34). */
const FADT_REVISION = 6;
const FADT_MINOR_VERSION = 3;
const FADT_LENGTH = 276;
const MADT_REVISION = 5;
const DSDT_REVISION = 2; // 2: AML integers are 64-bit

// ---- byte helpers -------------------------------------------------------------------------------

class ByteWriter {
  private readonly bytes: number[] = [];
  get length(): number { return this.bytes.length; }
  u8(v: number): this { this.bytes.push(v & 0xff); return this; }
  u16(v: number): this { return this.u8(v).u8(v >>> 8); }
  u32(v: number): this { return this.u16(v & 0xffff).u16(v >>> 16); }
  u64(v: number): this { return this.u32(v % 2 ** 32).u32(Math.floor(v / 2 ** 32)); }
  ascii(text: string, length: number): this {
    for (let i = 0; i < length; i++) this.u8(i < text.length ? text.charCodeAt(i) : 0x20);
    return this;
  }
  raw(data: ArrayLike<number>): this { for (let i = 0; i < data.length; i++) this.u8(data[i]); return this; }
  toBytes(): Uint8Array { return Uint8Array.from(this.bytes); }
}

/** The value that makes the bytes [start, end) sum to 0 mod 256 when stored in one of them (zero). */
function checksumOf(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let sum = 0;
  for (let i = start; i < end; i++) sum += bytes[i];
  return (256 - (sum & 0xff)) & 0xff;
}

/** A description table: the 36-byte header of ACPI 5.2.6 (Table 5-29) then `body`, checksummed. */
function describedTable(signature: string, revision: number, body: Uint8Array): Uint8Array {
  const w = new ByteWriter()
    .ascii(signature, 4).u32(HEADER_LENGTH + body.length).u8(revision).u8(0 /* checksum */)
    .ascii(OEM_ID, 6).ascii(OEM_TABLE_ID, 8).u32(OEM_REVISION).ascii(CREATOR_ID, 4).u32(CREATOR_REVISION)
    .raw(body);
  const table = w.toBytes();
  table[9] = checksumOf(table);
  return table;
}

/** Generic Address Structure (ACPI 5.2.3.2, Table 5-25). */
const ADDRESS_SPACE_SYSTEM_MEMORY = 0;
const ADDRESS_SPACE_SYSTEM_IO = 1;
const ACCESS_UNDEFINED = 0, ACCESS_BYTE = 1, ACCESS_WORD = 2, ACCESS_DWORD = 3;
interface Gas { space: number; bitWidth: number; accessSize: number; address: number }

function writeGas(view: DataView, offset: number, gas: Gas): void {
  view.setUint8(offset, gas.space);
  view.setUint8(offset + 1, gas.bitWidth);
  view.setUint8(offset + 2, 0); // register bit offset
  view.setUint8(offset + 3, gas.accessSize);
  setU64(view, offset + 4, gas.address);
}

function setU64(view: DataView, offset: number, value: number): void {
  view.setUint32(offset, value % 2 ** 32, true);
  view.setUint32(offset + 4, Math.floor(value / 2 ** 32), true);
}

// ---- RSDP, RSDT, XSDT ---------------------------------------------------------------------------

/** ACPI 5.2.5.3, Table 5-27: revision 2 RSDP, checksum over the first 20 bytes, extended checksum
 *  over all 36. */
function buildRsdp(rsdtAddress: number, xsdtAddress: number): Uint8Array {
  const rsdp = new ByteWriter()
    .ascii('RSD PTR ', 8).u8(0).ascii(OEM_ID, 6).u8(2).u32(rsdtAddress)
    .u32(RSDP_LENGTH).u64(xsdtAddress).u8(0).u8(0).u8(0).u8(0)
    .toBytes();
  rsdp[8] = checksumOf(rsdp, 0, 20);
  rsdp[32] = checksumOf(rsdp);
  return rsdp;
}

function buildRsdt(entries: number[]): Uint8Array {
  const w = new ByteWriter();
  for (const address of entries) w.u32(address);
  return describedTable('RSDT', 1, w.toBytes());
}

function buildXsdt(entries: number[]): Uint8Array {
  const w = new ByteWriter();
  for (const address of entries) w.u64(address);
  return describedTable('XSDT', 1, w.toBytes());
}

// ---- FACS ---------------------------------------------------------------------------------------

/** ACPI 5.2.10, Table 5-37: no checksum, version 2, no global-lock owner, no waking vector. */
function buildFacs(): Uint8Array {
  const w = new ByteWriter().ascii('FACS', 4).u32(FACS_LENGTH).u32(0 /* hardware signature */)
    .u32(0 /* firmware waking vector */).u32(0 /* global lock */).u32(0 /* flags */)
    .u64(0 /* X firmware waking vector */).u8(2 /* version */);
  while (w.length < FACS_LENGTH) w.u8(0);
  return w.toBytes();
}

// ---- DSDT: hand-encoded AML (ACPI 6.3 chapter 20) -----------------------------------------------

const AML_ZERO_OP = 0x00, AML_ONE_OP = 0x01, AML_NAME_OP = 0x08;
const AML_BYTE_PREFIX = 0x0a, AML_WORD_PREFIX = 0x0b, AML_DWORD_PREFIX = 0x0c, AML_PACKAGE_OP = 0x12;

/** ComputationalData for an integer (20.2.3): ZeroOp, OneOp or the smallest prefixed constant. */
function amlInteger(value: number): number[] {
  if (value === 0) return [AML_ZERO_OP];
  if (value === 1) return [AML_ONE_OP];
  if (value <= 0xff) return [AML_BYTE_PREFIX, value];
  if (value <= 0xffff) return [AML_WORD_PREFIX, value & 0xff, value >>> 8];
  return amlDword(value);
}

/** PkgLength (20.2.4) of a body of `contentLength` bytes: the encoded length counts itself. Lead
 *  byte bits 7:6 = number of following bytes; with none, bits 5:0 hold the length, else bits 3:0
 *  hold its low nibble and each following byte the next 8 bits. */
export function amlPkgLength(contentLength: number): number[] {
  if (contentLength + 1 <= 0x3f) return [contentLength + 1];
  for (let follow = 1; follow <= 3; follow++) {
    const total = contentLength + 1 + follow;
    if (total < 2 ** (4 + 8 * follow)) {
      const out = [(follow << 6) | (total & 0x0f)];
      for (let i = 0; i < follow; i++) out.push((total >>> (4 + 8 * i)) & 0xff);
      return out;
    }
  }
  throw new RangeError(`AML package too long: ${contentLength} bytes`);
}

/** DefPackage (20.2.5.4): PackageOp PkgLength NumElements PackageElementList. */
function amlPackage(values: number[]): number[] {
  const body = [values.length, ...values.flatMap(amlInteger)];
  return [AML_PACKAGE_OP, ...amlPkgLength(body.length), ...body];
}

/** DefName (20.2.5.1): NameOp NameString DataRefObject, with a one-segment NameString. */
function amlName(nameSeg: string, data: number[]): number[] {
  if (nameSeg.length !== 4) throw new Error(`AML NameSeg must be 4 characters: '${nameSeg}'`);
  return [AML_NAME_OP, ...Array.from(nameSeg, (c) => c.charCodeAt(0)), ...data];
}

/** \_Sx_ package (ACPI 7.4.2): SLP_TYPa, SLP_TYPb, reserved, reserved. There is no PM1b block, so
 *  SLP_TYPb repeats SLP_TYPa. */
function sleepState(name: string, slpTyp: number): number[] {
  return amlName(name, amlPackage([slpTyp, slpTyp, 0, 0]));
}

const AML_SCOPE_OP = 0x10, AML_BUFFER_OP = 0x11, AML_EXT_OP_PREFIX = 0x5b, AML_DEVICE_OP = 0x82;
const AML_ROOT_CHAR = 0x5c;

const nameSegBytes = (seg: string) => Array.from(seg, (c) => c.charCodeAt(0));

/** DefPackage whose elements are already-encoded data objects (nested packages). */
function amlPackageOf(elements: number[][]): number[] {
  const body = [elements.length, ...elements.flat()];
  return [AML_PACKAGE_OP, ...amlPkgLength(body.length), ...body];
}

/** DefBuffer (20.2.5.4): BufferOp PkgLength BufferSize ByteList. */
function amlBuffer(bytes: number[]): number[] {
  const body = [...amlInteger(bytes.length), ...bytes];
  return [AML_BUFFER_OP, ...amlPkgLength(body.length), ...body];
}

/** DefScope (20.2.5.1) of a root-relative one-segment path, e.g. \_SB_. */
function amlScope(rootSeg: string, body: number[]): number[] {
  const content = [AML_ROOT_CHAR, ...nameSegBytes(rootSeg), ...body];
  return [AML_SCOPE_OP, ...amlPkgLength(content.length), ...content];
}

/** DefDevice (20.2.5.2): ExtOpPrefix DeviceOp PkgLength NameString TermList. */
function amlDevice(nameSeg: string, body: number[]): number[] {
  const content = [...nameSegBytes(nameSeg), ...body];
  return [AML_EXT_OP_PREFIX, AML_DEVICE_OP, ...amlPkgLength(content.length), ...content];
}

/** A DWordConst, even for small values (addresses in _PRT are DWords by convention). */
function amlDword(value: number): number[] {
  return [AML_DWORD_PREFIX, value & 0xff, (value >>> 8) & 0xff, (value >>> 16) & 0xff, value >>> 24];
}

/** EISAID("PNP0A03") (ACPI 6.1.5): three 5-bit letters and four hex digits, stored big-endian. */
export function eisaId(id: string): number {
  const letters = ((id.charCodeAt(0) - 0x40) << 10) | ((id.charCodeAt(1) - 0x40) << 5) | (id.charCodeAt(2) - 0x40);
  const product = parseInt(id.slice(3), 16);
  return ((letters >>> 8) | ((letters & 0xff) << 8) | ((product >>> 8) << 16) | ((product & 0xff) << 24)) >>> 0;
}

// Resource descriptors for _CRS (ACPI 6.3 section 6.4).
const le16 = (v: number) => [v & 0xff, (v >>> 8) & 0xff];
const le32 = (v: number) => [...le16(v & 0xffff), ...le16(v >>> 16)];
const RESOURCE_MEMORY = 0, RESOURCE_IO = 1, RESOURCE_BUS = 2;
/** General flags: _MIF and _MAF (the window is fixed), a producer (6.4.3.5.1). */
const ADDRESS_FIXED = 0x0c;
/** 6.4.3.5.3 Word Address Space Descriptor: min, max, length (granularity and translation 0). */
function wordAddressSpace(type: number, typeFlags: number, min: number, max: number): number[] {
  return [0x88, 13, 0, type, ADDRESS_FIXED, typeFlags, ...le16(0), ...le16(min), ...le16(max), ...le16(0), ...le16(max - min + 1)];
}
/** 6.4.3.5.2 DWord Address Space Descriptor for memory. Type flags: read/write, non-cacheable. */
function dwordMemory(min: number, max: number): number[] {
  return [0x87, 23, 0, RESOURCE_MEMORY, ADDRESS_FIXED, 0x01, ...le32(0), ...le32(min), ...le32(max), ...le32(0), ...le32(max - min + 1)];
}
/** 6.4.2.5 I/O Port Descriptor with 16-bit decode. */
function ioPorts(base: number, length: number): number[] {
  return [0x47, 1, ...le16(base), ...le16(base), 1, length];
}
const END_TAG = [0x79, 0];

/** PCI configuration mechanism #1 (the CF8h/CFCh pair) and the windows the root bus forwards. */
export const PCI_CONFIG_PORTS = { base: 0xcf8, length: 8 };

export interface PciHostBridgeDescription {
  /** Memory window for BARs below 4 GiB (after RAM, before the IOAPIC at 0xFEC00000). */
  memoryWindow: { base: number; limit: number };
  /** Every device INTx pin is wired to this GSI, level triggered, active low (PCI 2.3 section 2.2.6). */
  intxGsi: number;
}

/** \_SB.PCI0, the PCI root bridge (PNP0A03): its resources (_CRS) and its interrupt routing (_PRT,
 *  ACPI 6.2.13) with Source = 0, so each entry names a GSI directly; Linux then programs the IOAPIC
 *  pin level/active-low as PCI wants. Without this device Linux's ACPI path never scans PCI. */
function pciRootBridge(bridge: PciHostBridgeDescription): number[] {
  const crs = [
    ...wordAddressSpace(RESOURCE_BUS, 0, 0, 0xff),
    ...ioPorts(PCI_CONFIG_PORTS.base, PCI_CONFIG_PORTS.length),
    ...wordAddressSpace(RESOURCE_IO, 3, 0, PCI_CONFIG_PORTS.base - 1),
    ...wordAddressSpace(RESOURCE_IO, 3, 0xd00, 0xffff),
    ...dwordMemory(0xa0000, 0xbffff), // legacy VGA window
    ...dwordMemory(bridge.memoryWindow.base, bridge.memoryWindow.limit),
    ...END_TAG,
  ];
  const routes: number[][] = [];
  for (let slot = 1; slot < 32; slot++) {
    for (let pin = 0; pin < 4; pin++) {
      routes.push(amlPackageOf([amlDword(((slot << 16) | 0xffff) >>> 0), amlInteger(pin), amlInteger(0), amlInteger(bridge.intxGsi)]));
    }
  }
  return amlScope('_SB_', amlDevice('PCI0', [
    ...amlName('_HID', amlDword(eisaId('PNP0A03'))),
    ...amlName('_UID', amlInteger(0)),
    ...amlName('_ADR', amlInteger(0)),
    ...amlName('_CRS', amlBuffer(crs)),
    ...amlName('_PRT', amlPackageOf(routes)),
  ]));
}

/** The DSDT's AML: the sleep states S0 (working) and S5 (soft off), and the PCI root bridge. */
export function dsdtAml(pci?: PciHostBridgeDescription): Uint8Array {
  return Uint8Array.from([...sleepState('_S0_', SLP_TYP_S0), ...sleepState('_S5_', SLP_TYP_S5), ...(pci ? pciRootBridge(pci) : [])]);
}

// ---- FADT ---------------------------------------------------------------------------------------

// Fixed feature flags (Table 5-35).
const FADT_WBINVD = 1 << 0;
const FADT_PROC_C1 = 1 << 2;
/** PWR_BUTTON = 0: the power button is a fixed feature (PWRBTN_STS/EN in PM1). */
const FADT_SLP_BUTTON = 1 << 5; // 1: no fixed-feature sleep button
const FADT_FIX_RTC = 1 << 6; // 1: RTC wake status is not in the fixed registers
const FADT_RESET_REG_SUP = 1 << 10;
// TMR_VAL_EXT (bit 8) stays clear: the PM timer is 24 bits.

// IA-PC boot architecture flags (Table 5-36).
const BOOT_ARCH_LEGACY_DEVICES = 1 << 0;
const BOOT_ARCH_8042 = 1 << 1;
const BOOT_ARCH_VGA_NOT_PRESENT = 1 << 2;

/** P_LVL2_LAT > 100 and P_LVL3_LAT > 1000 say C2 and C3 are not supported (Table 5-34). */
const C2_NOT_SUPPORTED = 101;
const C3_NOT_SUPPORTED = 1001;

/** FADT field offsets (ACPI 6.3 Table 5-34). Fields left zero: PREFERRED_PM_PROFILE (unspecified),
 *  PM1b/PM2/GPE blocks (absent), CENTURY (none), ARM_BOOT_ARCH, sleep control/status (not reduced
 *  hardware), hypervisor vendor identity. */
const FADT = {
  FIRMWARE_CTRL: 36, DSDT: 40, SCI_INT: 46, SMI_CMD: 48,
  PM1A_EVT_BLK: 56, PM1A_CNT_BLK: 64, PM_TMR_BLK: 76,
  PM1_EVT_LEN: 88, PM1_CNT_LEN: 89, PM_TMR_LEN: 91,
  P_LVL2_LAT: 96, P_LVL3_LAT: 98, IAPC_BOOT_ARCH: 109, FLAGS: 112,
  RESET_REG: 116, RESET_VALUE: 128, MINOR_VERSION: 131,
  X_FIRMWARE_CTRL: 132, X_DSDT: 140, X_PM1A_EVT_BLK: 148, X_PM1A_CNT_BLK: 172, X_PM_TMR_BLK: 208,
} as const;

function buildFadt(config: AcpiConfig, facsAddress: number, dsdtAddress: number): Uint8Array {
  const body = new Uint8Array(FADT_LENGTH - HEADER_LENGTH);
  const view = new DataView(body.buffer);
  /** The spec's offsets count from the start of the table, header included. */
  const at = (offset: number): number => offset - HEADER_LENGTH;
  const { pm } = config;
  view.setUint32(at(FADT.FIRMWARE_CTRL), facsAddress, true);
  view.setUint32(at(FADT.DSDT), dsdtAddress, true);
  view.setUint16(at(FADT.SCI_INT), pm.sciIrq, true);
  view.setUint32(at(FADT.SMI_CMD), 0, true); // no SMI command port: always in ACPI mode
  view.setUint32(at(FADT.PM1A_EVT_BLK), pm.pm1aEventBlock, true);
  view.setUint32(at(FADT.PM1A_CNT_BLK), pm.pm1aControlBlock, true);
  view.setUint32(at(FADT.PM_TMR_BLK), pm.pmTimerBlock, true);
  view.setUint8(at(FADT.PM1_EVT_LEN), PM1_EVT_LEN);
  view.setUint8(at(FADT.PM1_CNT_LEN), PM1_CNT_LEN);
  view.setUint8(at(FADT.PM_TMR_LEN), PM_TMR_LEN);
  view.setUint16(at(FADT.P_LVL2_LAT), C2_NOT_SUPPORTED, true);
  view.setUint16(at(FADT.P_LVL3_LAT), C3_NOT_SUPPORTED, true);
  view.setUint16(at(FADT.IAPC_BOOT_ARCH),
    BOOT_ARCH_LEGACY_DEVICES | BOOT_ARCH_8042 | (config.vgaPresent ? 0 : BOOT_ARCH_VGA_NOT_PRESENT), true);
  view.setUint32(at(FADT.FLAGS), FADT_WBINVD | FADT_PROC_C1 | FADT_SLP_BUTTON | FADT_FIX_RTC | FADT_RESET_REG_SUP, true);
  writeGas(view, at(FADT.RESET_REG),
    { space: ADDRESS_SPACE_SYSTEM_IO, bitWidth: 8, accessSize: ACCESS_BYTE, address: pm.resetRegister.port });
  view.setUint8(at(FADT.RESET_VALUE), pm.resetRegister.value);
  view.setUint8(at(FADT.MINOR_VERSION), FADT_MINOR_VERSION);
  setU64(view, at(FADT.X_FIRMWARE_CTRL), facsAddress);
  setU64(view, at(FADT.X_DSDT), dsdtAddress);
  // PM1_EVT is two 16-bit registers (status, enable): OSPM splits it, so the access size is left
  // undefined; PM1_CNT is one 16-bit register, PM_TMR one 32-bit register.
  writeGas(view, at(FADT.X_PM1A_EVT_BLK),
    { space: ADDRESS_SPACE_SYSTEM_IO, bitWidth: PM1_EVT_LEN * 8, accessSize: ACCESS_UNDEFINED, address: pm.pm1aEventBlock });
  writeGas(view, at(FADT.X_PM1A_CNT_BLK),
    { space: ADDRESS_SPACE_SYSTEM_IO, bitWidth: PM1_CNT_LEN * 8, accessSize: ACCESS_WORD, address: pm.pm1aControlBlock });
  writeGas(view, at(FADT.X_PM_TMR_BLK),
    { space: ADDRESS_SPACE_SYSTEM_IO, bitWidth: PM_TMR_LEN * 8, accessSize: ACCESS_DWORD, address: pm.pmTimerBlock });
  return describedTable('FACP', FADT_REVISION, body);
}

// ---- MADT ---------------------------------------------------------------------------------------

const MADT_PCAT_COMPAT = 1 << 0;
const MADT_LOCAL_APIC = 0, MADT_IO_APIC = 1, MADT_INTERRUPT_OVERRIDE = 2, MADT_LOCAL_APIC_NMI = 4;
const LOCAL_APIC_ENABLED = 1 << 0;
const ALL_PROCESSORS = 0xff;
const POLARITY_BITS = { bus: 0b00, high: 0b01, low: 0b11 } as const;
const TRIGGER_BITS = { bus: 0b00, edge: 0b01, level: 0b11 } as const;

/** MPS INTI flags (Table 5-50): polarity in bits 1:0, trigger mode in bits 3:2. */
function intiFlags(polarity: keyof typeof POLARITY_BITS, trigger: keyof typeof TRIGGER_BITS): number {
  return POLARITY_BITS[polarity] | (TRIGGER_BITS[trigger] << 2);
}

/** ACPI 5.2.12, Table 5-43, with the entries of 5.2.12.2 (local APIC), 5.2.12.3 (I/O APIC),
 *  5.2.12.5 (interrupt source override) and 5.2.12.7 (local APIC NMI: LINT1 of every CPU). */
function buildMadt(config: AcpiConfig): Uint8Array {
  const w = new ByteWriter().u32(config.localApicAddress).u32(MADT_PCAT_COMPAT);
  for (let cpu = 0; cpu < config.cpus; cpu++) {
    w.u8(MADT_LOCAL_APIC).u8(8).u8(cpu /* ACPI processor UID */).u8(cpu /* APIC ID */).u32(LOCAL_APIC_ENABLED);
  }
  const { ioApic } = config;
  w.u8(MADT_IO_APIC).u8(12).u8(ioApic.id).u8(0).u32(ioApic.address).u32(ioApic.gsiBase);
  for (const o of config.isaOverrides) {
    w.u8(MADT_INTERRUPT_OVERRIDE).u8(10).u8(0 /* ISA bus */).u8(o.source).u32(o.gsi).u16(intiFlags(o.polarity, o.trigger));
  }
  w.u8(MADT_LOCAL_APIC_NMI).u8(6).u8(ALL_PROCESSORS).u16(intiFlags('bus', 'bus')).u8(1 /* LINT1 */);
  return describedTable('APIC', MADT_REVISION, w.toBytes());
}

// ---- HPET (IA-PC HPET specification 1.0a, section 3.2.4) ----------------------------------------

function buildHpet(hpet: HpetDescription): Uint8Array {
  const body = new Uint8Array(56 - HEADER_LENGTH);
  const view = new DataView(body.buffer);
  view.setUint32(0, hpet.eventTimerBlockId, true);
  writeGas(view, 4, { space: ADDRESS_SPACE_SYSTEM_MEMORY, bitWidth: 64, accessSize: ACCESS_UNDEFINED, address: hpet.address });
  view.setUint8(16, 0); // HPET number
  view.setUint16(17, hpet.minimumTick, true);
  view.setUint8(19, 0); // no page protection
  return describedTable('HPET', 1, body);
}

// ---- layout -------------------------------------------------------------------------------------

function alignUp(value: number, alignment: number): number { return Math.ceil(value / alignment) * alignment; }

function validate(config: AcpiConfig): void {
  if (!Number.isInteger(config.cpus) || config.cpus < 1 || config.cpus > 255) {
    throw new RangeError(`ACPI: ${config.cpus} CPUs: xAPIC IDs allow 1..255`);
  }
  if (config.tableBase % 64 !== 0) throw new RangeError('ACPI: tableBase must be 64-byte aligned (the FACS is)');
  const rsdp = config.rsdpAddress;
  if (rsdp % 16 !== 0 || rsdp < 0xe0000 || rsdp + RSDP_LENGTH > 0x100000) {
    throw new RangeError(`ACPI: RSDP at 0x${rsdp.toString(16)} is not 16-byte aligned in 0xE0000-0xFFFFF`);
  }
}

/** Build every table for `config`. Throws on an impossible configuration. */
export function buildAcpiTables(config: AcpiConfig): AcpiTables {
  validate(config);
  const parts: Uint8Array[] = [];
  const addresses: Record<string, number> = {};
  let size = 0;
  const place = (signature: string, bytes: Uint8Array, alignment: number): number => {
    const offset = alignUp(size, alignment);
    if (offset > size) parts.push(new Uint8Array(offset - size));
    parts.push(bytes);
    size = offset + bytes.length;
    return (addresses[signature] = config.tableBase + offset);
  };

  const facs = place('FACS', buildFacs(), 64);
  const dsdt = place('DSDT', describedTable('DSDT', DSDT_REVISION, dsdtAml(config.pci)), 16);
  const listed = [place('FACP', buildFadt(config, facs, dsdt), 16), place('APIC', buildMadt(config), 16)];
  if (config.hpet) listed.push(place('HPET', buildHpet(config.hpet), 16));
  const rsdt = place('RSDT', buildRsdt(listed), 16);
  const xsdt = place('XSDT', buildXsdt(listed), 16);

  const end = config.tableBase + size;
  if (end > 2 ** 32) throw new RangeError('ACPI: tables must lie below 4 GiB (the RSDT holds 32-bit pointers)');
  if (config.rsdpAddress < end && config.rsdpAddress + RSDP_LENGTH > config.tableBase) {
    throw new RangeError('ACPI: the RSDP overlaps the tables');
  }

  const tableBytes = new Uint8Array(size);
  let offset = 0;
  for (const part of parts) { tableBytes.set(part, offset); offset += part.length; }
  const tables = { address: config.tableBase, bytes: tableBytes };
  const rsdp = { address: config.rsdpAddress, bytes: buildRsdp(rsdt, xsdt) };
  return {
    rsdp, tables, blobs: [tables, rsdp], addresses, totalSize: size,
    reclaimRange: { address: config.tableBase, length: size },
  };
}
