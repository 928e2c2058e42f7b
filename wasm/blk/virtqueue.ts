// The block I/O data path: descriptor chains of split virtqueues (OASIS virtio 1.2, 2.7.5 "The
// Virtqueue Descriptor Table", 2.7.5.3 "Indirect Descriptors") walked and bounds-checked here, and
// the bytes moved between guest RAM and host staging memory (the image cache) here. Everything
// read from guest memory is guest input: every address is checked against guest RAM before it is
// used, so a malformed chain can only end in a fault code, never in an access outside the guest.
// The VMM (emu/devices/virtio/) keeps the rings' indices and the request semantics.
import {
  BLK_DESC_SCRATCH, BLK_SEG_LIST_BASE, BLK_SEG_SIZE, BLK_SEG_WRITABLE, BLK_MAX_CHAIN, BLK_WALK_RESULT,
  BLK_FAULT_NONE, BLK_FAULT_INDEX, BLK_FAULT_LOOP, BLK_FAULT_OUTSIDE, BLK_FAULT_ORDER,
  BLK_FAULT_INDIRECT_NOT_NEGOTIATED, BLK_FAULT_INDIRECT_NOT_ALONE, BLK_FAULT_INDIRECT_NESTED,
  BLK_FAULT_INDIRECT_LENGTH, BLK_FAULT_INDIRECT_OUTSIDE, BLK_FAULT_TOO_LONG,
} from '../abi';
import { guestRamWritten } from '../mmu/translate';
import { ramSize } from '../mem/memory-map';
import { copyFromGuest, copyToGuest } from '../mem/guest-memory';

const DESC_SIZE: u64 = 16;
const DESC_F_NEXT: u32 = 1;
const DESC_F_WRITE: u32 = 2;
const DESC_F_INDIRECT: u32 = 4;

/** [gpa, gpa + len) lies in guest RAM (written without overflow: gpa and len are guest values). */
@inline function inGuest(gpa: u64, len: u64): bool { return gpa <= ramSize && len <= ramSize - gpa; }

let fault: i32 = BLK_FAULT_NONE;
@inline function fail(code: i32): void { if (fault == BLK_FAULT_NONE) fault = code; }

/** Walk the chain from descriptor `head` of the table at `tableGpa` (`tableSize` entries, already
 *  known to lie in guest RAM). Writes the usable buffers to BLK_SEG_LIST_BASE and the outcome to
 *  BLK_WALK_RESULT; returns the number of buffers. Structural faults (bad index, loop, indirect
 *  misuse) stop the walk; a buffer outside guest RAM or a readable buffer after a writable one is
 *  left out and the walk goes on, so the last descriptor can still carry a status (5.2.6). */
export function walkChain(tableGpa: u64, tableSize: u32, head: u32, indirectAllowed: bool): i32 {
  fault = BLK_FAULT_NONE;
  let statusSegment: i32 = -1, readable: i32 = 0, writable: i32 = 0;
  let table = tableGpa, entries = <u64>tableSize, index = <u64>head, visited: u64 = 0, inIndirect = false;
  while (true) {
    if (index >= entries) { fail(BLK_FAULT_INDEX); break; }
    if (++visited > entries) { fail(BLK_FAULT_LOOP); break; }
    if (visited > <u64>BLK_MAX_CHAIN) { fail(BLK_FAULT_TOO_LONG); break; }
    const d = <usize>BLK_DESC_SCRATCH;
    if (!copyFromGuest(d, table + index * DESC_SIZE, DESC_SIZE)) { fail(BLK_FAULT_OUTSIDE); break; }
    const gpa = load<u64>(d), len = load<u32>(d, 8), flags = <u32>load<u16>(d, 12), next = <u64>load<u16>(d, 14);
    if (flags & DESC_F_INDIRECT) {
      // 2.7.5.3.1: INDIRECT only if negotiated, never with NEXT, never inside an indirect table.
      if (inIndirect) { fail(BLK_FAULT_INDIRECT_NESTED); break; }
      if (!indirectAllowed) { fail(BLK_FAULT_INDIRECT_NOT_NEGOTIATED); break; }
      if (visited != 1 || (flags & DESC_F_NEXT)) { fail(BLK_FAULT_INDIRECT_NOT_ALONE); break; }
      if (len == 0 || <u64>len % DESC_SIZE != 0) { fail(BLK_FAULT_INDIRECT_LENGTH); break; }
      if (!inGuest(gpa, <u64>len)) { fail(BLK_FAULT_INDIRECT_OUTSIDE); break; }
      table = gpa; entries = <u64>len / DESC_SIZE; index = 0; visited = 0; inIndirect = true;
      continue;
    }
    const isWritable = (flags & DESC_F_WRITE) != 0;
    const inside = inGuest(gpa, <u64>len);
    let kept = false;
    if (!inside) fail(BLK_FAULT_OUTSIDE);
    // 2.7.4.2: the driver places device-writable elements after all device-readable ones.
    else if (!isWritable && writable > 0) fail(BLK_FAULT_ORDER);
    else kept = true;
    if (kept) {
      const s = <usize>BLK_SEG_LIST_BASE + <usize>(readable + writable) * <usize>BLK_SEG_SIZE;
      store<u64>(s, gpa); store<u32>(s, len, 8); store<u32>(s, isWritable ? BLK_SEG_WRITABLE : 0, 12);
      if (isWritable) writable++; else readable++;
    }
    if (!(flags & DESC_F_NEXT)) {
      if (kept && isWritable && len > 0) statusSegment = readable + writable - 1;
      break;
    }
    index = next;
  }
  store<i32>(BLK_WALK_RESULT, fault);
  store<i32>(BLK_WALK_RESULT, statusSegment, 4);
  store<i32>(BLK_WALK_RESULT, readable, 8);
  store<i32>(BLK_WALK_RESULT, writable, 12);
  return readable + writable;
}

/** Copy `length` bytes between host memory at `staging` and the byte stream formed by segments
 *  [first, first + count) of the last walk, starting `offset` bytes into the stream; `toGuest`
 *  scatters staging into the guest, else gathers the guest into staging. The segments were checked
 *  by walkChain; they are checked again, so a stale or forged list can never reach outside the
 *  guest. Returns the bytes copied (less than `length` when the stream is shorter). */
export function copySegments(first: i32, count: i32, offset: u64, staging: usize, length: u64, toGuest: bool): u64 {
  let skip = offset, done: u64 = 0;
  for (let i = first; i < first + count && done < length; i++) {
    if (i < 0 || i >= BLK_MAX_CHAIN) break;
    const s = <usize>BLK_SEG_LIST_BASE + <usize>i * <usize>BLK_SEG_SIZE;
    const gpa = load<u64>(s), len = <u64>load<u32>(s, 8);
    if (!inGuest(gpa, len)) break;
    if (skip >= len) { skip -= len; continue; }
    const n = min(len - skip, length - done);
    // Page by page through the VM's map: a frame the host cannot provide (out of memory) ends the
    // copy short, which the device reports as an I/O error.
    if (toGuest) {
      const ok = copyToGuest(gpa + skip, staging + <usize>done, n);
      guestRamWritten(gpa + skip, n);
      if (!ok) break;
    } else if (!copyFromGuest(staging + <usize>done, gpa + skip, n)) break;
    done += n; skip = 0;
  }
  return done;
}
