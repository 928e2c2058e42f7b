// x87 register stack, tags, status/control words, exception reporting, CR0 availability rules and
// multi-page memory regions, shared by ops/x87.ts, ops/x87-ops.ts and ops/x87-env.ts.
//
// State (wasm/abi.ts): cpu + ST_FXSAVE in the FXSAVE layout, except that the eight 16-byte ST slots
// are in PHYSICAL order (slot j = R_j) and ST(i) = R_((TOP + i) & 7); the abridged tag byte has bit j
// set when R_j is valid. Push/pop change only TOP and the tags.
//
// The FXSAVE area's bytes 416..511 are never written by FXSAVE nor loaded by FXRSTOR (SDM Vol. 1,
// Table 10-2: reserved/available); the x87 layer keeps its per-vCPU scratch values there: three
// 80-bit temporaries and the FCS/FDS selectors of the last non-control instruction (the 64-bit
// image has no room for them; FNSTENV/FNSAVE and the 32-bit FXSAVE format store them).
import {
  ST_FXSAVE, FX_FCW, FX_FSW, FX_FTW, FX_FOP, FX_FIP, FX_FDP, FX_ST0, ST_CR0, CR0_EM, CR0_TS, CR0_NE,
  VEC_NM, VEC_MF, SEG_CS, SEG_SELECTOR,
} from '../../abi';
import { cpu, flatHarness, realMode, segField, csBase } from '../state';
import { raise } from '../fault';
import { opIdx, modrm, isMem, instrStart, eaOffset, ea, seg } from '../decode';
import { translate } from '../../mmu/translate';
import { FE_IE, FE_DE, FE_ZE, SW_C1, INDEFINITE_SE, INDEFINITE_SIG } from '../fpu/float80';

// ---- FSW / FCW bits --------------------------------------------------------------------------------

export const FSW_EXC: u32 = 0x3f; // IE DE ZE OE UE PE
export const FSW_SF: u32 = 0x40;
export const FSW_ES: u32 = 0x80;
export const FSW_B: u32 = 0x8000;
export const FSW_TOP: u32 = 0x3800;
/** C0 C1 C2 C3. */
export const FSW_CC: u32 = 0x4700;
/** Stack fault: IE with SF (C1 = 1 for overflow, 0 for underflow). */
export const STACK_FAULT: u32 = FE_IE | FSW_SF;

/** FCW as the hardware keeps it: bit 6 reads as 1, bits 7 and 13-15 as 0. */
@inline export function normalizeFcw(v: u32): u32 { return (v & 0x1f3f) | 0x40; }

// ---- scratch (per vCPU, in the FXSAVE area's unused tail) -------------------------------------------

const FX_TMP: usize = 416; // three 16-byte slots
const FX_FCS: usize = 464; // u16
const FX_FDS: usize = 466; // u16

@inline export function fxBase(): usize { return cpu + ST_FXSAVE; }
/** Scratch 80-bit temporary k (0..2). */
@inline export function tmp(k: i32): usize { return cpu + ST_FXSAVE + FX_TMP + (<usize>k << 4); }

// ---- words -----------------------------------------------------------------------------------------

@inline export function getFcw(): u32 { return <u32>load<u16>(cpu + ST_FXSAVE + FX_FCW); }
@inline export function setFcw(v: u32): void { store<u16>(cpu + ST_FXSAVE + FX_FCW, <u16>v); }
@inline export function getFsw(): u32 { return <u32>load<u16>(cpu + ST_FXSAVE + FX_FSW); }
@inline export function setFsw(v: u32): void { store<u16>(cpu + ST_FXSAVE + FX_FSW, <u16>v); }
@inline export function getFtw(): u32 { return <u32>load<u8>(cpu + ST_FXSAVE + FX_FTW); }
@inline export function setFtw(v: u32): void { store<u8>(cpu + ST_FXSAVE + FX_FTW, <u8>v); }
@inline export function getTop(): i32 { return <i32>(getFsw() >> 11) & 7; }
@inline export function setTop(t: i32): void { setFsw((getFsw() & ~FSW_TOP) | (<u32>(t & 7) << 11)); }

/** ES and B follow the exception flags and masks (FLDCW, FLDENV, FRSTOR, FXRSTOR). */
export function recomputeSummary(): void {
  const sw = getFsw() & ~(FSW_ES | FSW_B);
  setFsw((sw & ~getFcw() & FSW_EXC) != 0 ? sw | FSW_ES | FSW_B : sw);
}

// ---- the register stack ------------------------------------------------------------------------------

/** Pointer to physical register R_j. */
@inline export function physPtr(j: i32): usize { return cpu + ST_FXSAVE + FX_ST0 + (<usize>(j & 7) << 4); }
/** Physical register number of ST(i). */
@inline export function physOf(i: i32): i32 { return (getTop() + i) & 7; }
/** Pointer to ST(i). */
@inline export function stPtr(i: i32): usize { return physPtr(physOf(i)); }
/** ST(i) is empty (ST(7) empty = there is room to push). */
@inline export function isEmpty(i: i32): bool { return ((getFtw() >> <u32>physOf(i)) & 1) == 0; }
@inline export function setValid(i: i32): void { setFtw(getFtw() | (<u32>1 << <u32>physOf(i))); }
@inline export function setEmpty(i: i32): void { setFtw(getFtw() & ~(<u32>1 << <u32>physOf(i))); }

/** TOP - 1, ST(0) tagged valid (the caller writes it). */
export function push(): void {
  setTop(getTop() - 1);
  setValid(0);
}

/** ST(0) tagged empty, TOP + 1. */
export function pop(): void {
  setEmpty(0);
  setTop(getTop() + 1);
}

@inline export function copy80(dst: usize, src: usize): void {
  store<u64>(dst, load<u64>(src));
  store<u16>(dst, load<u16>(src, 8), 8);
}

@inline export function storeIndefinite(dst: usize): void {
  store<u64>(dst, INDEFINITE_SIG);
  store<u16>(dst, <u16>INDEFINITE_SE, 8);
}

// ---- exceptions ------------------------------------------------------------------------------------------

/**
 * Folds an operation's result bits into FSW: the exception flags (IE DE ZE OE UE PE, and SF) are
 * sticky; the condition codes selected by `ccMask` are replaced by those in `bits`; an unmasked
 * exception sets ES and B (the next waiting instruction then takes #MF).
 */
export function report(bits: u32, ccMask: u32): void {
  let sw = getFsw();
  sw = (sw & ~ccMask) | (bits & ccMask) | (bits & (FSW_EXC | FSW_SF));
  if ((bits & ~getFcw() & FSW_EXC) != 0) sw |= FSW_ES | FSW_B;
  setFsw(sw);
}

/** An unmasked IE, DE or ZE: the register destination keeps its value and nothing is pushed or
 *  popped (SDM Vol. 1, 8.5.1-8.5.3; OE/UE/PE deliver a result). */
@inline export function blocks(bits: u32): bool {
  return (bits & ~getFcw() & (FE_IE | FE_DE | FE_ZE)) != 0;
}

@inline export function ieMasked(): bool { return (getFcw() & FE_IE) != 0; }

/** Stack underflow with ST(dst) as the destination: IE SF, C1 = 0 (and C2 = 0 when ccMask says
 *  so); masked → ST(dst) = the real indefinite, then the pop if `doPop`; unmasked → no change. */
export function underflow(dst: i32, doPop: bool, ccMask: u32): void {
  report(STACK_FAULT, ccMask | SW_C1);
  if (!ieMasked()) return;
  storeIndefinite(stPtr(dst));
  setValid(dst);
  if (doPop) pop();
}

/** Stack overflow on a push: IE SF, C1 = 1; masked → push the real indefinite. */
export function overflow(): void {
  report(STACK_FAULT | SW_C1, SW_C1);
  if (!ieMasked()) return;
  push();
  storeIndefinite(stPtr(0));
}

// ---- availability: CR0.EM/TS/MP/NE, pending exceptions (SDM Vol. 3A, 2.5; Vol. 1, 8.6-8.7) ---------

/** CR0.EM or CR0.TS → #NM (x87 and FXSAVE/FXRSTOR). The flat harness runs with EM = TS = 0. */
export function checkNM(): bool {
  if (flatHarness) return true;
  if ((load<u64>(cpu + ST_CR0) & (CR0_EM | CR0_TS)) != 0) {
    raise(VEC_NM, 0, false);
    return false;
  }
  return true;
}

/** A pending unmasked exception (FSW.ES) → #MF before a waiting instruction executes. With CR0.NE
 *  = 0 (MS-DOS-compatible reporting through FERR#/IGNNE#, which hvlab's platform does not wire) the
 *  exception is not reported and the instruction proceeds, as with IGNNE# asserted. The flat
 *  harness counts as NE = 1. */
export function checkMF(): bool {
  if ((getFsw() & FSW_ES) == 0) return true;
  if (!flatHarness && (load<u64>(cpu + ST_CR0) & CR0_NE) == 0) return true;
  raise(VEC_MF, 0, false);
  return false;
}

// ---- last instruction / operand pointers (SDM Vol. 1, 8.1.8-8.1.9) ------------------------------------

/** Record FOP, FIP (FCS) and, for a memory operand, FDP (FDS) of a non-control instruction. Real
 *  mode keeps linear addresses (the real-mode FNSTENV/FNSAVE formats store 20/32-bit linear ones). */
export function notePointers(): void {
  const f = fxBase();
  store<u16>(f + FX_FOP, <u16>(((opIdx & 7) << 8) | modrm));
  store<u64>(f + FX_FIP, realMode ? csBase + instrStart : instrStart);
  store<u16>(f + FX_FCS, load<u16>(segField(SEG_CS, SEG_SELECTOR)));
  if (isMem) {
    store<u64>(f + FX_FDP, realMode ? ea : eaOffset);
    store<u16>(f + FX_FDS, load<u16>(segField(seg, SEG_SELECTOR)));
  }
}

/** FOP, FIP, FDP, FCS, FDS = 0 (FNINIT). */
export function clearPointers(): void {
  const f = fxBase();
  store<u16>(f + FX_FOP, 0);
  store<u64>(f + FX_FIP, 0);
  store<u64>(f + FX_FDP, 0);
  store<u32>(f + FX_FCS, 0); // FCS and FDS
}

@inline export function getFcs(): u32 { return <u32>load<u16>(cpu + ST_FXSAVE + FX_FCS); }
@inline export function getFds(): u32 { return <u32>load<u16>(cpu + ST_FXSAVE + FX_FDS); }
@inline export function setFcs(v: u32): void { store<u16>(cpu + ST_FXSAVE + FX_FCS, <u16>v); }
@inline export function setFds(v: u32): void { store<u16>(cpu + ST_FXSAVE + FX_FDS, <u16>v); }

// ---- memory regions larger than a bounce slot (environments, FNSAVE, FXSAVE) -------------------------

// A region is [lin, lin + size) as at most two host pieces split at the page boundary, each translated
// on its own (translate's bounce slots hold 16 bytes). Both pieces are translated before anything is
// read or written, so a fault leaves the state unchanged.
let rgP1: usize = 0;
let rgN1: i32 = 0;
let rgP2: usize = 0;

/** Translates the region for `access`; false with the fault raised. */
export function region(lin: u64, size: i32, access: i32): bool {
  let n1 = <i32>(0x1000 - (<u32>lin & 0xfff));
  if (n1 > size) n1 = size;
  const p1 = translate(lin, n1, access);
  if (p1 == 0) return false;
  let p2: usize = 0;
  if (n1 < size) {
    p2 = translate(lin + <u64>n1, size - n1, access);
    if (p2 == 0) return false;
  }
  rgP1 = p1;
  rgN1 = n1;
  rgP2 = p2;
  return true;
}

@inline function rgAt(off: i32): usize { return off < rgN1 ? rgP1 + <usize>off : rgP2 + <usize>(off - rgN1); }

export function rgLoad8(off: i32): u32 { return <u32>load<u8>(rgAt(off)); }
export function rgLoad16(off: i32): u32 { return rgLoad8(off) | (rgLoad8(off + 1) << 8); }
export function rgLoad32(off: i32): u32 { return rgLoad16(off) | (rgLoad16(off + 2) << 16); }
export function rgLoad64(off: i32): u64 { return <u64>rgLoad32(off) | (<u64>rgLoad32(off + 4) << 32); }
export function rgStore8(off: i32, v: u32): void { store<u8>(rgAt(off), <u8>v); }
export function rgStore16(off: i32, v: u32): void { rgStore8(off, v); rgStore8(off + 1, v >> 8); }
export function rgStore32(off: i32, v: u32): void { rgStore16(off, v); rgStore16(off + 2, v >> 16); }
export function rgStore64(off: i32, v: u64): void { rgStore32(off, <u32>v); rgStore32(off + 4, <u32>(v >> 32)); }

/** Copy n bytes from host memory at src into the region at off. */
export function rgCopyOut(off: i32, src: usize, n: i32): void {
  if (off + n <= rgN1) { memory.copy(rgP1 + <usize>off, src, <usize>n); return; }
  if (off >= rgN1) { memory.copy(rgP2 + <usize>(off - rgN1), src, <usize>n); return; }
  for (let k = 0; k < n; k++) rgStore8(off + k, <u32>load<u8>(src + <usize>k));
}

/** Copy n bytes of the region at off to host memory at dst. */
export function rgCopyIn(dst: usize, off: i32, n: i32): void {
  if (off + n <= rgN1) { memory.copy(dst, rgP1 + <usize>off, <usize>n); return; }
  if (off >= rgN1) { memory.copy(dst, rgP2 + <usize>(off - rgN1), <usize>n); return; }
  for (let k = 0; k < n; k++) store<u8>(dst + <usize>k, <u8>rgLoad8(off + k));
}
