// The CPUID table of a CPU model (SDM Vol. 2A, CPUID; APM Vol. 3, appendix E). It advertises only
// what hvlab implements: a test (test/cpu-exits.test.ts) checks that every advertised feature bit
// names something the core executes. The models (vendor, family/model/stepping, behaviour) are in
// models.ts. The host writes a table into linear memory, one per VM from CPUID_TABLE_BASE, with the
// behaviour bits of its vendor at CPU_MODEL_ADDR; the core's CPUID reads the running VM's.
import * as abi from '../../wasm/abi.ts';
import { defaultCpuModel, modelOfVendor, versionSignature, type CpuModel } from './models.ts';

export interface CpuidEntry {
  leaf: number;
  /** Subleaf, or 0xffffffff for "any" (leaves that ignore ECX). */
  subleaf: number;
  eax: number; ebx: number; ecx: number; edx: number;
}

/** Feature bits hvlab implements today, by register of the leaf that reports them. */
export const FEATURES = {
  // PSE/PSE-36/PGE/PAT: the walker's 4 MiB pages, global TLB entries and the PAT MSR (wasm/mmu).
  leaf1Edx: { FPU: 0, PSE: 3, TSC: 4, MSR: 5, PAE: 6, CX8: 8, SEP: 11, PGE: 13, CMOV: 15, PAT: 16, PSE36: 17, MMX: 23, FXSR: 24, SSE: 25, SSE2: 26 },
  leaf1Ecx: { CX16: 13, PCID: 17, MOVBE: 22, POPCNT: 23, XSAVE: 26 },
  // ERMS and FSRM are performance hints only (SDM Vol. 1, 7.3.9.3 "Fast-String Operation"): our REP
  // MOVSB/STOSB run by page-sized stretches, so Linux's memcpy/memset/copy_user should use them.
  leaf7Ebx: { SMEP: 7, ERMS: 9, INVPCID: 10, SMAP: 20 },
  leaf7Edx: { FSRM: 4 },
  ext1Edx: { SYSCALL: 11, NX: 20, PDPE1GB: 26, LM: 29 },
  ext1Ecx: { LAHF_LM: 0, ABM: 5 /* LZCNT */ },
} as const;

function bits(set: Record<string, number>): number {
  return Object.values(set).reduce((acc, b) => (acc | (1 << b)) >>> 0, 0);
}

/** Four-character-per-register ASCII, as CPUID returns vendor and brand strings. */
function ascii4(s: string): number {
  let v = 0;
  for (let i = 0; i < 4; i++) v |= (s.charCodeAt(i) || 0) << (8 * i);
  return v >>> 0;
}

/** Leaf 1 EDX bits that AMD CPUs also report in CPUID 8000_0001h EDX (APM Vol. 3, E.4.2: "same as
 *  CPUID Fn0000_0001_EDX" for FPU..PSE36, MMX and FXSR); Intel reports 0 there (SDM Vol. 2A). */
const AMD_EXT1_MIRRORED = 0x0183f3ff;

/** The CPUID entries of `model` (default: defaultCpuModel(), the host's vendor). */
export function defaultCpuid(model: CpuModel = defaultCpuModel()): CpuidEntry[] {
  const vendor = model.vendor; // 12 characters in EBX, EDX, ECX
  const amd = vendor === 'AuthenticAMD';
  const any = 0xffffffff;
  const brand = 'hvlab x86-64 interpreter'.padEnd(48, '\0');
  const brandLeaves: CpuidEntry[] = [0, 1, 2].map((k) => {
    const part = brand.slice(k * 16, k * 16 + 16);
    return { leaf: 0x80000002 + k, subleaf: any, eax: ascii4(part.slice(0, 4)), ebx: ascii4(part.slice(4, 8)),
      ecx: ascii4(part.slice(8, 12)), edx: ascii4(part.slice(12, 16)) };
  });
  const vendorRegs = { ebx: ascii4(vendor.slice(0, 4)), edx: ascii4(vendor.slice(4, 8)), ecx: ascii4(vendor.slice(8, 12)) };
  const leaf1Edx = bits(FEATURES.leaf1Edx);
  return [
    { leaf: 0, subleaf: any, eax: 0xd, ...vendorRegs },
    { leaf: 1, subleaf: any, eax: versionSignature(model.family, model.model, model.stepping), ebx: 0, ecx: bits(FEATURES.leaf1Ecx), edx: leaf1Edx },
    // XSAVE: the x87 and SSE components, 576-byte area (legacy 512 + header 64); no XSAVEOPT/XSAVEC.
    // CPUID.1:ECX.OSXSAVE is computed from CR4 by the core.
    { leaf: 7, subleaf: 0, eax: 0, ebx: bits(FEATURES.leaf7Ebx), ecx: 0, edx: bits(FEATURES.leaf7Edx) },
    { leaf: 0xd, subleaf: 0, eax: 3, ebx: 576, ecx: 576, edx: 0 },
    { leaf: 0xd, subleaf: 1, eax: 0, ebx: 0, ecx: 0, edx: 0 },
    // AMD repeats the vendor string in 8000_0000h EBX/EDX/ECX (APM Vol. 3, E.4.1); Intel reserves them.
    { leaf: 0x80000000, subleaf: any, eax: 0x80000008, ...(amd ? vendorRegs : { ebx: 0, ecx: 0, edx: 0 }) },
    // Address sizes: 40 physical bits (wasm/mmu/paging.ts MAX_PHYS_BITS), 48 linear.
    { leaf: 0x80000008, subleaf: any, eax: 0x3028, ebx: 0, ecx: 0, edx: 0 },
    { leaf: 0x80000001, subleaf: any, eax: amd ? versionSignature(model.family, model.model, model.stepping) : 0, ebx: 0,
      ecx: bits(FEATURES.ext1Ecx), edx: (bits(FEATURES.ext1Edx) | (amd ? leaf1Edx & AMD_EXT1_MIRRORED : 0)) >>> 0 },
    ...brandLeaves,
  ];
}

/** The vendor string of a CPUID table's leaf 0 (EBX, EDX, ECX), '' without one. */
export function vendorOfCpuid(entries: readonly CpuidEntry[]): string {
  const l0 = entries.find((e) => e.leaf === 0);
  if (!l0) return '';
  const str = (v: number) => String.fromCharCode(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24);
  return str(l0.ebx) + str(l0.edx) + str(l0.ecx);
}

/** The CPUB_* behaviour bits for a CPUID table: those of its vendor's model; another vendor string
 *  (e.g. 'hvlabhvlabhv') behaves as the Intel model (0). */
export function behaviourOfCpuid(entries: readonly CpuidEntry[]): number {
  return modelOfVendor(vendorOfCpuid(entries))?.behaviour ?? 0;
}

/** Write VM `vm`'s CPUID table (each guest has its own: its CPU model and paravirtual leaves) and the
 *  behaviour bits of the table's vendor. */
export function writeCpuidTable(view: DataView, vm: number, entries: CpuidEntry[]): void {
  if (entries.length > abi.CPUID_MAX_ENTRIES) throw new Error(`hvlab: at most ${abi.CPUID_MAX_ENTRIES} CPUID entries`);
  const table = abi.CPUID_TABLE_BASE + vm * abi.CPUID_TABLE_STRIDE;
  entries.forEach((e, i) => {
    const at = table + i * abi.CPUID_ENTRY_SIZE;
    [e.leaf, e.subleaf, e.eax, e.ebx, e.ecx, e.edx].forEach((v, k) => view.setUint32(at + k * 4, v >>> 0, true));
  });
  view.setUint32(abi.CPUID_COUNT_ADDR + vm * 4, entries.length, true);
  // The behaviour follows the vendor the guest reads (models.ts).
  view.setUint32(abi.CPU_MODEL_ADDR + vm * 4, behaviourOfCpuid(entries), true);
}
