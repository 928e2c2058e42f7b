// CPU models: the vendor a guest sees (CPUID leaf 0), its family/model/stepping (leaf 1 EAX) and the
// behaviour the core follows where Intel's and AMD's CPUs differ. One table; cpuid.ts builds a
// model's CPUID entries from it, and writeCpuidTable hands the core the behaviour bits (CPUB_*,
// wasm/gen/abi-constants.ts) of the vendor in the table it writes, so behaviour always follows the
// vendor string the guest reads.
//
// Where the vendors differ (each verified on a host of that vendor with the native runner,
// test/cpu/models.test.ts):
//   CPUB_CALL_TARGET_FIRST   CALL near (E8, FF /2) to a non-canonical target. AMD raises #GP(0)
//                            with nothing written (observed on AMD family 19h; the APM's CALL (Near)
//                            checks the target before the push); an Intel CPU has stored the return
//                            address at RSP - 8 when the #GP is taken (observed; RSP and RIP are
//                            unchanged on both).
//   CPUB_REP_ZERO_COUNT_NO_WRITE  REP/REPE/REPNE string instruction with a 32-bit address size (67h)
//                            and ECX = 0: AMD writes no register, so the upper halves of RCX, RSI
//                            and RDI stay (observed on AMD family 19h: no iteration, no register
//                            update); Intel writes ECX back, and for MOVS/STOS ESI/EDI, as 32-bit
//                            registers, zero-extended to 64 bits (observed; SDM Vol. 1, 3.4.1.1 for
//                            the zero-extension of a 32-bit register write). Neither manual says
//                            which registers a zero-count REP writes.
//   CPUB_APPROX_AMD          RCPPS/RCPSS/RSQRTPS/RSQRTSS: the approximation tables are the
//                            implementation's (SDM and APM only bound the error by 1.5 * 2^-12);
//                            Intel: wasm/cpu/simd/rcp-table.ts (test/simd/rcptable.c, Intel family
//                            6), AMD: rcp-table-amd.ts (test/native/rcp-approx.c, AMD family 19h).
//   CPUB_X87_STORE_FAULT_FIRST  FST/FIST/FISTTP/FBSTP to memory whose conversion raises an unmasked
//                            IE, OE or UE (SDM Vol. 1, 8.5: nothing is stored): Intel then does not
//                            access the destination at all (no #GP/#PF, the exception is recorded
//                            and the instruction completes); AMD still takes the destination's
//                            fault, with the FPU state unchanged.
//   CPUB_AMD_MSRS            MSRs every AMD CPU has without a CPUID bit that software uses on the
//                            vendor alone: NB_CFG (C001_001Fh, Linux's amd_bus.c), read as 0 with
//                            writes ignored as under KVM. (The K7/K8 performance counters
//                            C001_0000h-0007h are not modelled yet.)
import { readFileSync } from 'node:fs';
import * as abi from '../../wasm/abi.ts';

export type CpuModelName = 'intel' | 'amd';
/** CPUID leaf 0 vendor strings of the modelled vendors. */
export type CpuVendor = 'GenuineIntel' | 'AuthenticAMD';

export interface CpuModel {
  name: CpuModelName;
  /** The 12-character vendor string of CPUID leaf 0 (EBX, EDX, ECX). */
  vendor: CpuVendor;
  /** Display family and model (SDM Vol. 2A CPUID, Figure 3-6: extended fields folded in). */
  family: number;
  model: number;
  stepping: number;
  /** CPUB_* bits: the behaviour the core follows where vendors differ. */
  behaviour: number;
  /** Shown in reports. */
  description: string;
}

export const CPU_MODELS: Readonly<Record<CpuModelName, CpuModel>> = {
  // Family 6 model 55h (Skylake-SP), the signature hvlab reported before its models existed; the
  // x87, RCP/RSQRT and string behaviour hvlab follows were measured bit for bit on an Intel host.
  intel: { name: 'intel', vendor: 'GenuineIntel', family: 6, model: 0x55, stepping: 0, behaviour: 0,
    description: 'Intel family 6 model 0x55' },
  // Family 19h model 01h stepping 1 (Zen 3, EPYC Milan), the host the AMD behaviour was measured on.
  amd: { name: 'amd', vendor: 'AuthenticAMD', family: 0x19, model: 0x01, stepping: 1,
    behaviour: abi.CPUB_CALL_TARGET_FIRST | abi.CPUB_REP_ZERO_COUNT_NO_WRITE | abi.CPUB_APPROX_AMD | abi.CPUB_X87_STORE_FAULT_FIRST |
      abi.CPUB_AMD_MSRS,
    description: 'AMD family 0x19 model 0x1' },
};

export const CPU_MODEL_NAMES = Object.keys(CPU_MODELS) as CpuModelName[];

/** CPUID.1:EAX for a display family/model/stepping (SDM Vol. 2A CPUID, "Version Information"):
 *  family > 15 is base family 0Fh plus the extended family; the model's high nibble is the extended
 *  model (used with family 6 and 0Fh and above). */
export function versionSignature(family: number, model: number, stepping: number): number {
  const base = family > 15 ? 15 : family;
  const extFamily = family > 15 ? family - 15 : 0;
  const extModel = base === 6 || base === 15 ? (model >> 4) & 0xf : 0;
  return ((extFamily << 20) | (extModel << 16) | (base << 8) | ((model & 0xf) << 4) | (stepping & 0xf)) >>> 0;
}

/** The model named `name` (`--cpu intel|amd`); throws with the known names otherwise. */
export function resolveCpuModel(name: string): CpuModel {
  const m = (CPU_MODELS as Record<string, CpuModel | undefined>)[name.trim().toLowerCase()];
  if (!m) throw new Error(`hvlab: unknown CPU model '${name}' (known: ${CPU_MODEL_NAMES.join(', ')})`);
  return m;
}

/** The model of a CPUID vendor string, or null for another vendor (e.g. 'hvlabhvlabhv'). */
export function modelOfVendor(vendor: string): CpuModel | null {
  return Object.values(CPU_MODELS).find((m) => m.vendor === vendor) ?? null;
}

// ---- The host's vendor

/** A host's CPUID vendor: one of the modelled vendors, or 'other' (or unreadable). */
export type HostVendor = CpuVendor | 'other';

/** The vendor in a /proc/cpuinfo text (its first `vendor_id` line). */
export function parseVendor(cpuinfo: string): HostVendor {
  const m = /^vendor_id\s*:\s*(\S+)/m.exec(cpuinfo);
  const v = m?.[1];
  return v === 'GenuineIntel' || v === 'AuthenticAMD' ? v : 'other';
}

let cachedHost: HostVendor | undefined;

/**
 * This machine's CPU vendor (CPUID leaf 0, as Linux reports it in /proc/cpuinfo `vendor_id`).
 * HVLAB_HOST_VENDOR=GenuineIntel|AuthenticAMD|other overrides it (to exercise the other path).
 */
export function hostVendor(): HostVendor {
  if (cachedHost) return cachedHost;
  const env = process.env.HVLAB_HOST_VENDOR;
  if (env === 'GenuineIntel' || env === 'AuthenticAMD' || env === 'other') return (cachedHost = env);
  let text = '';
  try { text = readFileSync('/proc/cpuinfo', 'utf8'); } catch { /* not Linux: 'other' */ }
  return (cachedHost = parseVendor(text));
}

/** The model of the host's vendor; Intel when the host is of another vendor (see defaultCpuModel). */
export function hostCpuModel(vendor: HostVendor = hostVendor()): CpuModel {
  return (vendor === 'other' ? null : modelOfVendor(vendor)) ?? CPU_MODELS.intel;
}

let defaultModel: CpuModel | undefined;

/**
 * The model a guest gets when none is asked for: the host's vendor, as KVM's `-cpu host`. Why:
 * every oracle hvlab is checked against runs on this machine's CPU (the difftest runner, the x87
 * and SSE references), so the model of the host's vendor is the one whose vendor-specific results
 * are compared bit for bit on the day; and a guest whose vendor matches the machine it runs on
 * sees the behaviour that vendor's software expects of it there. Fallback (a host neither Intel
 * nor AMD, or no /proc/cpuinfo): Intel, the model whose behaviour hvlab followed before it had
 * models. `setDefaultCpuModel` (the CLI's `--cpu`) replaces it for the process.
 */
export function defaultCpuModel(): CpuModel {
  return defaultModel ?? hostCpuModel();
}

/** Make `model` the default of this process (`--cpu`), or go back to the host's (undefined). */
export function setDefaultCpuModel(model: CpuModel | undefined): void {
  defaultModel = model;
}

/** Help text of the CLI's `--cpu <model>` option (boot, host, difftest). */
export const CPU_OPTION_HELP = `CPU model: ${CPU_MODEL_NAMES.join(' or ')} (CPUID vendor, family/model and the vendor's behaviour; default: this machine's vendor, else intel)`;

/** The CLI's `--cpu`: make the named model the process default (every guest's CPUID table then
 *  comes from it, through defaultCpuid()) and return it; without a name, the default stays the
 *  host's vendor. Throws on an unknown name. */
export function applyCpuOption(name: string | undefined): CpuModel {
  if (name === undefined) return defaultCpuModel();
  const m = resolveCpuModel(name);
  setDefaultCpuModel(m);
  return m;
}
