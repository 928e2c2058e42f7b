// x87 environment and state images: FNSTENV/FLDENV (14/28 bytes), FNSAVE/FRSTOR (94/108 bytes),
// FXSAVE/FXRSTOR (512 bytes, FXSAVE64 with REX.W), FNINIT, and the full tag word.
// SDM Vol. 1, 8.1.7 (tag word), 8.1.10 with Figures 8-9 to 8-12 (environment layouts: protected mode
// (also 64-bit mode) and real mode, 32- and 16-bit), 10.5.1 and Table 10-2 (FXSAVE image).
//
// The images hold ST(0)..ST(7) in stack order; the state holds R_0..R_7 (physical order), so the
// stores read ST(i) = R_((TOP + i) & 7) and the loads place image slot i at R_((new TOP + i) & 7).
import {
  ACC_READ, ACC_WRITE, FX_FOP, FX_FIP, FX_FDP, FX_MXCSR, FX_MXCSR_MASK, FX_ST0, FX_XMM0,
} from '../../abi';
import { realMode, mode64 } from '../state';
import { ea, osize } from '../decode';
import { raiseGP0 } from '../fault';
import {
  fxBase, getFcw, setFcw, getFsw, setFsw, getFtw, setFtw, getTop, physPtr, normalizeFcw,
  recomputeSummary, clearPointers, getFcs, getFds, setFcs, setFds, FSW_ES, FSW_B, region, rgLoad8,
  rgLoad16, rgLoad32, rgLoad64, rgStore8, rgStore16, rgStore32, rgStore64, rgCopyOut, rgCopyIn,
} from './x87-state';

// ---- tag word ------------------------------------------------------------------------------------------

/** The full tag word (2 bits per physical register: 00 valid, 01 zero, 10 special = NaN, infinity,
 *  denormal or unsupported, 11 empty) from the abridged tags and the register contents. */
export function fullTagWord(): u32 {
  const ftw = getFtw();
  let tw: u32 = 0;
  for (let j = 0; j < 8; j++) {
    let t: u32 = 3;
    if (((ftw >> <u32>j) & 1) != 0) {
      const p = physPtr(j);
      const e = <u32>load<u16>(p, 8) & 0x7fff;
      const sig = load<u64>(p);
      if (e == 0) t = sig == 0 ? 1 : 2;
      else if (e == 0x7fff || (sig >> 63) == 0) t = 2;
      else t = 0;
    }
    tw |= t << (<u32>j << 1);
  }
  return tw;
}

/** Abridged tags from a full tag word: valid unless 11. */
function abridged(tw: u32): u32 {
  let ftw: u32 = 0;
  for (let j = 0; j < 8; j++) if (((tw >> (<u32>j << 1)) & 3) != 3) ftw |= <u32>1 << <u32>j;
  return ftw;
}

// ---- FNINIT ----------------------------------------------------------------------------------------------

/** FNINIT: FCW 037Fh, FSW 0 (TOP 0), every register empty, FOP/FIP/FDP 0. Contents are kept. */
export function fninit(): void {
  setFcw(0x37f);
  setFsw(0);
  setFtw(0);
  clearPointers();
}

/** FCW from memory (FLDCW, FLDENV, FRSTOR, FXRSTOR): normalised, and ES/B follow the new masks. */
export function loadControlWord(v: u32): void {
  setFcw(normalizeFcw(v));
  recomputeSummary();
}

// ---- environments ----------------------------------------------------------------------------------------

@inline function envSize(): i32 { return osize == 2 ? 14 : 28; }

/** Writes the environment at region offset 0 (osize 2: 16-bit format; 4/8: 32-bit format). The
 *  32-bit formats fill the reserved upper halves with ones. */
function storeEnv(): void {
  const f = fxBase();
  const fcw = getFcw(), fsw = getFsw(), tw = fullTagWord();
  const fop = <u32>load<u16>(f + FX_FOP) & 0x7ff;
  const fip = <u32>load<u64>(f + FX_FIP), fdp = <u32>load<u64>(f + FX_FDP);
  const fcs = getFcs(), fds = getFds();
  if (osize != 2) {
    rgStore32(0, 0xffff0000 | fcw);
    rgStore32(4, 0xffff0000 | fsw);
    rgStore32(8, 0xffff0000 | tw);
    if (realMode) {
      rgStore32(12, 0xffff0000 | (fip & 0xffff));
      rgStore32(16, ((fip & 0xffff0000) >> 4) | fop);
      rgStore32(20, 0xffff0000 | (fdp & 0xffff));
      rgStore32(24, (fdp & 0xffff0000) >> 4);
    } else {
      rgStore32(12, fip);
      rgStore32(16, fcs | (fop << 16));
      rgStore32(20, fdp);
      rgStore32(24, 0xffff0000 | fds);
    }
  } else {
    rgStore16(0, fcw);
    rgStore16(2, fsw);
    rgStore16(4, tw);
    if (realMode) {
      rgStore16(6, fip);
      rgStore16(8, ((fip & 0xf0000) >> 4) | fop);
      rgStore16(10, fdp);
      rgStore16(12, (fdp & 0xf0000) >> 4);
    } else {
      rgStore16(6, fip);
      rgStore16(8, fcs);
      rgStore16(10, fdp);
      rgStore16(12, fds);
    }
  }
}

/** Loads the environment at region offset 0. */
function loadEnv(): void {
  const f = fxBase();
  let fcw: u32, fsw: u32, tw: u32, fip: u32, fdp: u32, fop: u32 = 0, fcs: u32 = 0, fds: u32 = 0;
  if (osize != 2) {
    fcw = rgLoad16(0);
    fsw = rgLoad16(4);
    tw = rgLoad16(8);
    if (realMode) {
      const w16 = rgLoad32(16), w24 = rgLoad32(24);
      fip = (rgLoad16(12)) | (((w16 >> 12) & 0xffff) << 16);
      fop = w16 & 0x7ff;
      fdp = (rgLoad16(20)) | (((w24 >> 12) & 0xffff) << 16);
    } else {
      fip = rgLoad32(12);
      fcs = rgLoad16(16);
      fop = rgLoad16(18) & 0x7ff;
      fdp = rgLoad32(20);
      fds = rgLoad16(24);
    }
  } else {
    fcw = rgLoad16(0);
    fsw = rgLoad16(2);
    tw = rgLoad16(4);
    if (realMode) {
      const w8 = rgLoad16(8);
      fip = rgLoad16(6) | ((w8 >> 12) << 16);
      fop = w8 & 0x7ff;
      fdp = rgLoad16(10) | ((rgLoad16(12) >> 12) << 16);
    } else {
      fip = rgLoad16(6);
      fcs = rgLoad16(8);
      fdp = rgLoad16(10);
      fds = rgLoad16(12);
    }
  }
  setFsw(fsw);
  setFtw(abridged(tw));
  loadControlWord(fcw);
  store<u16>(f + FX_FOP, <u16>fop);
  store<u64>(f + FX_FIP, <u64>fip);
  store<u64>(f + FX_FDP, <u64>fdp);
  setFcs(fcs);
  setFds(fds);
}

/** FNSTENV: store the environment, then mask every exception (which also clears ES and B). */
export function fnstenv(): void {
  if (!region(ea, envSize(), ACC_WRITE)) return;
  storeEnv();
  setFcw(getFcw() | 0x3f);
  setFsw(getFsw() & ~(FSW_ES | FSW_B));
}

/** FLDENV. */
export function fldenv(): void {
  if (!region(ea, envSize(), ACC_READ)) return;
  loadEnv();
}

/** FNSAVE: environment, ST(0)..ST(7) (10 bytes each), then FNINIT. */
export function fnsave(): void {
  const n = envSize();
  if (!region(ea, n + 80, ACC_WRITE)) return;
  storeEnv();
  const top = getTop();
  for (let i = 0; i < 8; i++) rgCopyOut(n + i * 10, physPtr(top + i), 10);
  fninit();
}

/** FRSTOR: environment, then the registers in stack order of the loaded TOP. */
export function frstor(): void {
  const n = envSize();
  if (!region(ea, n + 80, ACC_READ)) return;
  loadEnv();
  const top = getTop();
  for (let i = 0; i < 8; i++) rgCopyIn(physPtr(top + i), n + i * 10, 10);
}

// ---- FXSAVE / FXRSTOR ------------------------------------------------------------------------------------

/** Image bytes written: through XMM15 in 64-bit mode, XMM7 elsewhere; 416..511 are left alone. */
@inline function xmmCount(): i32 { return mode64 ? 16 : 8; }

/** The x87 part of the legacy save area (XSAVE component 0): FCW..FDP and the registers. */
function storeX87Legacy(): void {
  const f = fxBase();
  rgStore16(0, getFcw());
  rgStore16(2, getFsw());
  rgStore8(4, getFtw());
  rgStore8(5, 0);
  rgStore16(6, <u32>load<u16>(f + FX_FOP) & 0x7ff);
  if (osize == 8) {
    rgStore64(8, load<u64>(f + FX_FIP));
    rgStore64(16, load<u64>(f + FX_FDP));
  } else {
    rgStore32(8, <u32>load<u64>(f + FX_FIP));
    rgStore32(12, getFcs());
    rgStore32(16, <u32>load<u64>(f + FX_FDP));
    rgStore32(20, getFds());
  }
  const top = getTop();
  for (let i = 0; i < 8; i++) {
    const at = <i32>FX_ST0 + i * 16;
    rgCopyOut(at, physPtr(top + i), 10);
    rgStore16(at + 10, 0);
    rgStore32(at + 12, 0);
  }
}

/** The SSE part (XSAVE component 1): MXCSR, MXCSR_MASK and the XMM registers. */
function storeSseLegacy(): void {
  const f = fxBase();
  rgStore32(24, load<u32>(f + FX_MXCSR));
  rgStore32(28, mxcsrMask());
  rgCopyOut(<i32>FX_XMM0, f + FX_XMM0, xmmCount() * 16);
}

/** FXSAVE / FXSAVE64 (REX.W: 64-bit FIP and FDP). The caller checked #NM and the operand. */
export function fxsaveImage(): void {
  if ((ea & 15) != 0) { raiseGP0(); return; }
  if (!region(ea, 512, ACC_WRITE)) return;
  storeX87Legacy();
  storeSseLegacy();
}

/** XSAVE (standard format) of the components in `rfbm` (x87 = bit 0, SSE = bit 1): the legacy area
 *  for each, then XSTATE_BV of the header (SDM Vol. 1, 13.7). Components are reported in use. */
export function xsaveImage(rfbm: u64): void {
  if ((ea & 63) != 0) { raiseGP0(); return; }
  if (!region(ea, 576, ACC_WRITE)) return;
  if (rfbm & 1) storeX87Legacy();
  if (rfbm & 2) storeSseLegacy();
  rgStore64(512, (rgLoad64(512) & ~rfbm) | (rfbm & 3));
}

/** XRSTOR (standard format): components in `rfbm` whose XSTATE_BV bit is set come from memory, the
 *  others get their initial state; MXCSR is loaded whenever SSE is requested (SDM Vol. 1, 13.8). */
export function xrstorImage(rfbm: u64, xcr0: u64): void {
  if ((ea & 63) != 0) { raiseGP0(); return; }
  if (!region(ea, 576, ACC_READ)) return;
  const xstateBv = rgLoad64(512);
  // Bytes 520-535 of the header must be zero (no compacted form), XSTATE_BV within XCR0.
  if (rgLoad64(520) != 0 || rgLoad64(528) != 0 || (xstateBv & ~xcr0) != 0) { raiseGP0(); return; }
  const mxcsr = rgLoad32(24);
  if ((rfbm & 2) != 0 && (mxcsr & ~mxcsrMask()) != 0) { raiseGP0(); return; }
  const f = fxBase();
  if (rfbm & 1) {
    if (xstateBv & 1) loadX87Legacy();
    else initX87State();
  }
  if (rfbm & 2) {
    store<u32>(f + FX_MXCSR, mxcsr);
    if (xstateBv & 2) rgCopyIn(f + FX_XMM0, <i32>FX_XMM0, xmmCount() * 16);
    else memory.fill(f + FX_XMM0, 0, <usize>(xmmCount() * 16));
  }
}

/** The x87 initial configuration (XRSTOR of an init component; FNINIT plus zeroed registers). */
function initX87State(): void {
  const f = fxBase();
  loadControlWord(0x037f);
  setFsw(0);
  setFtw(0);
  store<u16>(f + FX_FOP, 0);
  store<u64>(f + FX_FIP, 0);
  store<u64>(f + FX_FDP, 0);
  setFcs(0);
  setFds(0);
  for (let i = 0; i < 8; i++) memory.fill(physPtr(i), 0, 10);
}

/** MXCSR bits the core supports (FXSAVE's MXCSR_MASK; 0 in the state means the default FFBFh). */
function mxcsrMask(): u32 {
  const m = load<u32>(fxBase() + FX_MXCSR_MASK);
  return m != 0 ? m : 0xffbf;
}

/** The x87 part of a legacy save area back into the state: FCW normalised, ES/B recomputed. */
function loadX87Legacy(): void {
  const f = fxBase();
  setFsw(rgLoad16(2));
  setFtw(rgLoad8(4));
  loadControlWord(rgLoad16(0));
  store<u16>(f + FX_FOP, <u16>(rgLoad16(6) & 0x7ff));
  if (osize == 8) {
    store<u64>(f + FX_FIP, rgLoad64(8));
    store<u64>(f + FX_FDP, rgLoad64(16));
  } else {
    store<u64>(f + FX_FIP, <u64>rgLoad32(8));
    setFcs(rgLoad16(12));
    store<u64>(f + FX_FDP, <u64>rgLoad32(16));
    setFds(rgLoad16(20));
  }
  const top = getTop();
  for (let i = 0; i < 8; i++) {
    const p = physPtr(top + i);
    rgCopyIn(p, <i32>FX_ST0 + i * 16, 10);
    store<u16>(p, 0, 10);
    store<u32>(p, 0, 12);
  }
}

/** FXRSTOR / FXRSTOR64: #GP(0) if the image's MXCSR sets an unsupported bit; FCW normalised, ES/B
 *  recomputed. */
export function fxrstorImage(): void {
  if ((ea & 15) != 0) { raiseGP0(); return; }
  if (!region(ea, 512, ACC_READ)) return;
  const mxcsr = rgLoad32(24);
  if ((mxcsr & ~mxcsrMask()) != 0) { raiseGP0(); return; }
  loadX87Legacy();
  store<u32>(fxBase() + FX_MXCSR, mxcsr);
  rgCopyIn(fxBase() + FX_XMM0, <i32>FX_XMM0, xmmCount() * 16);
}
