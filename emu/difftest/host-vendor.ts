// The CPU vendor of the machine the native oracles run on (test/native/runner.c, test/fpu/x87ref.c,
// test/simd/sseref.c), and the vendor hvlab models. hvlab's behaviour where the two vendors' manuals
// (Intel SDM, AMD APM) leave room or differ was checked bit for bit against an Intel host, so the
// oracles only compare bit for bit when the host is that vendor; on another host the known
// divergences of emu/difftest/vendor-divergences.ts are counted separately (and checked another
// way where possible) instead of being compared.
import { readFileSync } from 'node:fs';

/** CPUID leaf 0 vendor strings; 'other' for anything else (or when it cannot be read). */
export type HostVendor = 'GenuineIntel' | 'AuthenticAMD' | 'other';

/** The vendor whose CPUs hvlab's model follows where vendors differ. */
export const MODELLED_VENDOR: HostVendor = 'GenuineIntel';

/** A short name for reports: "Intel", "AMD", "other". */
export function vendorName(v: HostVendor): string {
  return v === 'GenuineIntel' ? 'Intel' : v === 'AuthenticAMD' ? 'AMD' : 'other-vendor';
}

/** The vendor in a /proc/cpuinfo text (its first `vendor_id` line). */
export function parseVendor(cpuinfo: string): HostVendor {
  const m = /^vendor_id\s*:\s*(\S+)/m.exec(cpuinfo);
  const v = m?.[1];
  return v === 'GenuineIntel' || v === 'AuthenticAMD' ? v : 'other';
}

let cached: HostVendor | undefined;

/**
 * This machine's CPU vendor (CPUID leaf 0, as Linux reports it in /proc/cpuinfo `vendor_id`).
 * HVLAB_HOST_VENDOR=GenuineIntel|AuthenticAMD|other overrides it (to exercise the other path).
 */
export function hostVendor(): HostVendor {
  if (cached) return cached;
  const env = process.env.HVLAB_HOST_VENDOR;
  if (env === 'GenuineIntel' || env === 'AuthenticAMD' || env === 'other') return (cached = env);
  let text = '';
  try { text = readFileSync('/proc/cpuinfo', 'utf8'); } catch { /* not Linux: 'other' */ }
  return (cached = parseVendor(text));
}

/** True when the host is not the modelled vendor: the vendor-divergence table applies. */
export function hostDiffersFromModel(v: HostVendor = hostVendor()): boolean {
  return v !== MODELLED_VENDOR;
}
