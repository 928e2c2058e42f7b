// The one guest-memory API of the core for accesses that are not the CPU's own (device DMA, the exit
// record): gpa -> hpa of the running VM (memory-map.ts) without faults, and a host pointer to the
// page holding a gpa. Under demand paging a write to a gfn the VM has never touched asks the host
// to map a frame first (env.guestFrameFault, KVM's gfn_to_pfn faulting the page in); a read of one
// sees zeros. Everything here takes guest-chosen addresses: a gpa outside the VM's RAM has no host
// address, so a device can never reach another VM's frames or the host's.
import { HOST_POOL_BASE, ZERO_PAGE_BASE, EPT_LARGE, EPT_W, EPT_ACCESSED, EPT_DIRTY } from '../abi';
import { ramSize, directHpa, hostMapRoot, mappedMemory, demandPaging, currentVm, hostPoolSize } from './memory-map';
import { hostGuestFrameFault } from '../host-imports';

const ADDR_MASK: u64 = 0x000ffffffffff000;

/** The host map's translation of `gpa` (software walk, not counted), -1 when absent or, for a
 *  write, not writable. */
export function hostMapLookup(gpa: u64, write: bool): u64 {
  let table = hostMapRoot;
  let shift: u64 = 39;
  const pool = hostPoolSize();
  for (let level = 4; level >= 1; level--) {
    const at = table + (((gpa >> shift) & 511) << 3);
    if (at + 8 > pool) return <u64>-1;
    const e = load<u64>(<usize>HOST_POOL_BASE + <usize>at);
    if ((e & 7) == 0) return <u64>-1;
    if (level == 1 || ((e & EPT_LARGE) != 0 && level <= 3)) {
      if (write && (e & EPT_W) == 0) return <u64>-1;
      // A device write dirties the page as a vCPU's would (KVM's mark_page_dirty): the host's
      // reclaim must not drop it as clean. (Ignored bits when the table has no A/D flags.)
      if (write && (e & (EPT_ACCESSED | EPT_DIRTY)) != (EPT_ACCESSED | EPT_DIRTY)) store<u64>(<usize>HOST_POOL_BASE + <usize>at, e | EPT_ACCESSED | EPT_DIRTY);
      const mask: u64 = (<u64>1 << shift) - 1;
      const frame = e & ADDR_MASK & ~mask;
      if (frame + mask + 1 > pool) return <u64>-1;
      return frame | (gpa & mask);
    }
    table = e & ADDR_MASK;
    shift -= 9;
  }
  return <u64>-1;
}

/** hpa of guest RAM at `gpa` for the running VM, or -1 (outside RAM, or not mapped). */
export function gpaToHpa(gpa: u64, write: bool): u64 {
  if (gpa >= ramSize) return <u64>-1;
  if (!mappedMemory) return directHpa + gpa;
  return hostMapLookup(gpa, write);
}

/** Host address of `gpa` inside its 4 KiB page, for a device access of the rest of that page (or
 *  less): 0 when the gpa is outside RAM or the host has no frame for it. */
export function guestPagePtr(gpa: u64, write: bool): usize {
  let hpa = gpaToHpa(gpa, write);
  if (hpa == <u64>-1) {
    if (gpa >= ramSize || !mappedMemory) return 0;
    const r = hostGuestFrameFault(currentVm, <i32>(gpa >> 12), <i32>(gpa >> 44), write ? 1 : 0);
    if (r == 0) return 0;
    if (r == 2 && !write && demandPaging) return <usize>ZERO_PAGE_BASE + <usize>(gpa & 0xfff);
    hpa = gpaToHpa(gpa, write);
    if (hpa == <u64>-1) return 0;
  }
  return <usize>HOST_POOL_BASE + <usize>hpa;
}

/** Copy `n` bytes between host memory at `host` and guest memory at `gpa`, page by page through
 *  the VM's map (`toGuest` maps untouched frames); false when a page has no host frame (nothing is
 *  promised about the bytes copied before it). */
function copyGuest(host: usize, gpa: u64, n: u64, toGuest: bool): bool {
  let done: u64 = 0;
  while (done < n) {
    const at = gpa + done;
    const chunk = min(<u64>0x1000 - (at & 0xfff), n - done);
    const p = guestPagePtr(at, toGuest);
    if (p == 0) return false;
    if (toGuest) memory.copy(p, host + <usize>done, <usize>chunk);
    else memory.copy(host + <usize>done, p, <usize>chunk);
    done += chunk;
  }
  return true;
}

export function copyFromGuest(dst: usize, gpa: u64, n: u64): bool { return copyGuest(dst, gpa, n, false); }
export function copyToGuest(gpa: u64, src: usize, n: u64): bool { return copyGuest(src, gpa, n, true); }
