// What every bench JSON carries besides its figures, so results from different days and machines
// can be compared: hvlab's version and the host it ran on (CPU model, vendor, Node.js version).
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { hostVendor } from '../emu/difftest/host-vendor.ts';

export interface BenchMeta {
  /** hvlab's version (package.json). */
  version: string;
  host: {
    /** The CPU model as the OS names it, e.g. "AMD EPYC 7B13". */
    cpu: string;
    /** CPUID leaf 0's vendor string: GenuineIntel, AuthenticAMD or other. */
    vendor: string;
    /** The Node.js version (V8 is hvlab's WebAssembly engine). */
    node: string;
  };
}

const PACKAGE_VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export function benchMeta(): BenchMeta {
  return { version: PACKAGE_VERSION, host: { cpu: cpus()[0]?.model.trim() || 'unknown', vendor: hostVendor(), node: process.version } };
}

/** A bench result with the meta fields first (a result's own fields win, none is called so today). */
export function withBenchMeta<T extends object>(result: T): BenchMeta & T {
  return { ...benchMeta(), ...result };
}
