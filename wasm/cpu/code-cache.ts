// The decoded-instruction cache: where decoded instructions live, what keeps them valid, and what
// invalidates them.
//
// An entry (64 bytes, layout in decode.ts) is found by the linear address of its instruction
// (direct-mapped by its low bits, DECODED_CACHE_ENTRIES slots) and is valid for the host frame it
// was decoded from, not for the linear address: it records the instruction's hpa (E_PHYS) and the
// generation of its frame (E_CODE_GEN). Two clocks decide whether the run loop may use it:
//  - the epoch (in `cacheKey`, with the mode): while it is unchanged, no linear mapping and no code
//    frame changed, so the tag check alone is enough. Anything that may change what a linear
//    address maps to — MOV CR3, CR4, INVLPG and INVPCID, INVEPT (the host remapped a gfn), running
//    another vCPU — only advances the epoch (`linearMappingsChanged`): nothing is thrown away.
//  - the frame's generation (CODE_FRAME_MAP, one byte per host frame: CODE_FRAME_DECODED | a 7-bit
//    generation): a write to a frame holding decoded code — by any vCPU, through any linear alias,
//    by a device's DMA, by the host reusing the frame — advances that frame's generation, so only
//    its entries die (x86 self-modifying code is detected by physical address, SDM Vol. 3A, 11.6).
// An entry whose epoch is stale is revalidated (decode.ts lookupDecoded): the instruction's linear
// address is translated again and, if it still lands on the same hpa of a frame of the same
// generation, the entry is stamped with the current epoch without decoding anything.
// When a frame's 7-bit generation wraps, every entry goes (an entry could otherwise survive 128
// rewrites of its frame and match again).
import { DECODED_CACHE_BASE, DECODED_CACHE_ENTRIES, DECODED_ENTRY_SIZE, CODE_FRAME_MAP_BASE, CODE_FRAME_MAP_SIZE, HOST_POOL_BASE } from '../abi';
import { modeKey } from './state';

// ---- The cache's part of a decoded entry (the decoder's fields are in decode.ts) ----
export const E_TAG: usize = 0; // u64: linear address of the instruction
export const E_EPOCH: usize = 8; // u32: cache key when stamped (epoch << 2 | mode key)
export const E_PHYS: usize = 56; // u32: hpa of the instruction's first byte
export const E_CODE_GEN: usize = 60; // u8: its frame's code-frame map byte when decoded

const CODE_FRAME_DECODED: u8 = 0x80;
const GENERATION_MASK: u8 = 0x7f;
const NO_TAG: u8 = 0xff; // a cleared slot's tag: all ones, the last byte of a page, never cached

/** Entry used for instructions that cannot be cached (they cross a page end, or lie outside the
 *  frame pool); it sits just past the cache. */
export const SCRATCH_ENTRY: usize = DECODED_CACHE_BASE + DECODED_CACHE_ENTRIES * DECODED_ENTRY_SIZE;

/** Entries stamped with another key are revalidated before use: the key is (epoch << 2) | mode. */
let cacheEpoch: u32 = 1;
export let cacheKey: u32 = 7;
/** Refresh the key after a mode change (state.updateMode). */
export function refreshCacheKey(): void { cacheKey = (cacheEpoch << 2) | modeKey; }

/** The cache slot for an instruction at linear address `lin`. */
@inline export function cacheSlot(lin: u64): usize {
  return <usize>DECODED_CACHE_BASE + (<usize>(<u32>lin & (DECODED_CACHE_ENTRIES - 1))) * <usize>DECODED_ENTRY_SIZE;
}

/** What linear addresses map to may have changed (CR3, INVLPG, INVEPT, another vCPU): entries are
 *  revalidated against their frames on next use, none is decoded again unless its frame changed. */
export function linearMappingsChanged(): void {
  cacheEpoch++;
  refreshCacheKey();
}

/** INVLPG / INVPCID of one address: linear page `lin >> 12` may map elsewhere now. Its entries lie
 *  in one run of 4096 slots; they (and those of pages equal modulo 2^16, which share the filter
 *  byte) get a stale epoch and are revalidated on next use. Pages never executed cost one load. */
export function linearPageChanged(lin: u64): void {
  const page = <u32>(lin >> 12) & 0xffff;
  if (unchecked(codeLinearPages[page]) == 0) return;
  unchecked(codeLinearPages[page] = 0);
  const first = cacheSlot(lin & ~(<u64>0xfff));
  for (let i: usize = 0; i < 4096; i++) {
    const e = first + i * <usize>DECODED_ENTRY_SIZE;
    if ((<u32>(load<u64>(e + E_TAG) >> 12) & 0xffff) == page) store<u32>(e + E_EPOCH, load<u32>(e + E_EPOCH) & 3);
  }
}
/** Linear pages (modulo 2^16) that may have entries: INVLPG of a page never executed is free. */
const codeLinearPages = new StaticArray<u8>(65536);

/** Drop every decoded entry (the decoded form itself may be stale: a generation wrapped). */
export function clearDecodedCache(): void {
  memory.fill(DECODED_CACHE_BASE, NO_TAG, <usize>DECODED_CACHE_ENTRIES * <usize>DECODED_ENTRY_SIZE);
  linearMappingsChanged();
}

@inline function frameByte(frame: u32): usize { return <usize>CODE_FRAME_MAP_BASE + <usize>(frame & (CODE_FRAME_MAP_SIZE - 1)); }

/** Entry `e` was decoded from host address `p` (inside the pool): record its frame, mark the frame
 *  as holding decoded code, and stamp the entry for linear address `lin`. */
export function recordDecoded(e: usize, lin: u64, p: usize): void {
  const hpa = <u32>(p - <usize>HOST_POOL_BASE);
  const at = frameByte(hpa >> 12);
  const mark = load<u8>(at) | CODE_FRAME_DECODED;
  store<u8>(at, mark);
  store<u32>(e + E_PHYS, hpa);
  store<u8>(e + E_CODE_GEN, mark);
  store<u64>(e + E_TAG, lin);
  store<u32>(e + E_EPOCH, cacheKey);
  unchecked(codeLinearPages[<u32>(lin >> 12) & 0xffff] = 1);
}

/** Entry `e` (tagged with the current linear address) still holds what host address `p` holds:
 *  decoded in this mode, from this hpa, and its frame not written since. Stamps it if so. */
export function stillValid(e: usize, p: usize): bool {
  if ((load<u32>(e + E_EPOCH) & 3) != modeKey) return false;
  if (p < <usize>HOST_POOL_BASE) return false;
  const hpa = <u32>(p - <usize>HOST_POOL_BASE);
  if (load<u32>(e + E_PHYS) != hpa || load<u8>(frameByte(hpa >> 12)) != load<u8>(e + E_CODE_GEN)) return false;
  store<u32>(e + E_EPOCH, cacheKey);
  return true;
}

/** Host frame `frame` is being written: if it holds decoded code, its entries die. */
export function codeFrameWritten(frame: u32): void {
  const at = frameByte(frame);
  const b = load<u8>(at);
  if ((b & CODE_FRAME_DECODED) == 0) return;
  const generation = (b + 1) & GENERATION_MASK;
  store<u8>(at, <u8>generation);
  if (generation == 0) clearDecodedCache();
  else linearMappingsChanged(); // the run loop's tag check alone would still hit those entries
}

/** A write to host memory [p, p + size) is about to happen (the CPU's own stores: translate.ts).
 *  An access spans at most two frames (translate splits at page ends; bulk string stores stop at
 *  one). Two loads in the common case; staging slots below the pool index some byte of the map,
 *  harmlessly, and are told apart only when that byte is marked. */
@inline export function checkCodeWrite(p: usize, size: i32): void {
  const first = <u32>(p - <usize>HOST_POOL_BASE) >> 12;
  const last = <u32>(p + <usize>size - 1 - <usize>HOST_POOL_BASE) >> 12;
  if (((load<u8>(frameByte(first)) | load<u8>(frameByte(last))) & CODE_FRAME_DECODED) != 0) codeWriteSlow(p, first, last);
}

function codeWriteSlow(p: usize, first: u32, last: u32): void {
  if (p < <usize>HOST_POOL_BASE) return; // staging slots, open bus: not guest memory
  codeFrameWritten(first);
  if (last != first) codeFrameWritten(last);
}

/** The host rewrote host frames [first, first + count) (reuse, zeroing, DMA, loaders). */
export function framesRewritten(first: u32, count: u32): void {
  for (let f = first; f < first + count; f++) codeFrameWritten(f);
}
