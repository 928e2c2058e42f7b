// The CPU vendor of the machine the native oracles run on (test/native/runner.c, test/fpu/x87ref.c,
// test/simd/sseref.c). `hvlab difftest` tests the CPU model of that vendor (emu/cpu/models.ts), so
// the behaviour the models implement is compared bit for bit on Intel and AMD hosts alike. What no
// model implements yet (the x87 corner cases of emu/difftest/vendor-divergences.ts: hvlab's x87
// follows Intel's in both models) is counted separately on an AMD host, and so is every divergence
// when the model tested is not the host's vendor (`--cpu`).
import { hostVendor, parseVendor, type HostVendor } from '../cpu/models.ts';

export { hostVendor, parseVendor, type HostVendor };

/** The vendor whose behaviour hvlab's x87 (in every model) and its Intel model follow. */
export const MODELLED_VENDOR: HostVendor = 'GenuineIntel';

/** A short name for reports: "Intel", "AMD", "other". */
export function vendorName(v: HostVendor): string {
  return v === 'GenuineIntel' ? 'Intel' : v === 'AuthenticAMD' ? 'AMD' : 'other-vendor';
}

/** True when the host is not the vendor hvlab's x87 follows: the x87 divergences apply. */
export function hostDiffersFromModel(v: HostVendor = hostVendor()): boolean {
  return v !== MODELLED_VENDOR;
}
