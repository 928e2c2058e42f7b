// Instruction decoding for 64-bit mode: legacy prefixes, REX, the one-byte / 0F / 0F38 / 0F3A maps,
// ModRM/SIB, displacements, RIP-relative addressing and immediates (SDM Vol. 2, chapter 2).
// The decoded fields are module globals read by the handlers; the per-opcode shape (ModRM present,
// immediate kind) comes from the attribute table generated from wasm/cpu/isa-table.ts.
import {
  ATTR_MODRM, ATTR_IMM_SHIFT, ATTR_IMM_MASK, IMM_NONE, IMM_B, IMM_W, IMM_Z, IMM_V, IMM_WB, IMM_MOFFS,
  IMM_D, OPC_MAP_0F, OPC_MAP_0F38, OPC_MAP_0F3A, ACC_FETCH, ST_FETCH_BUF, ST_FS_BASE, ST_GS_BASE,
} from '../abi';
import { DECODE_ATTRS } from './decode-tables.generated';
import { cpu, rip, getReg64 } from './state';
import { raiseGP0, faultVector } from './fault';
import { translate, ramSize } from '../mmu/translate';

// Prefix bits
export const P_66: i32 = 1;
export const P_67: i32 = 2;
export const P_LOCK: i32 = 4;
export const P_REP: i32 = 8; // F3
export const P_REPNE: i32 = 16; // F2

export const SEG_NONE: i32 = 0;
export const SEG_FS: i32 = 4;
export const SEG_GS: i32 = 5;

export let instrStart: u64 = 0;
export let nextRip: u64 = 0;
export let prefixes: i32 = 0;
/** The last of F2/F3 seen (it selects a mandatory-prefix form), or 0. */
export let lastRep: i32 = 0;
export let rex: i32 = 0;
export let seg: i32 = SEG_NONE;
export let opIdx: i32 = 0;
export let attr: i32 = 0;
/** Operand size in bytes: 2, 4 or 8 (byte forms use 1 explicitly). */
export let osize: i32 = 4;
export let modrm: i32 = 0;
export let mod: i32 = 0;
/** ModRM.reg without REX.R: the opcode extension of group instructions. */
export let ext: i32 = 0;
/** ModRM.reg with REX.R. */
export let regField: i32 = 0;
/** ModRM.rm with REX.B (register operand when !isMem). */
export let rmField: i32 = 0;
export let isMem: bool = false;
/** Effective address (offset, before the segment base; 32-bit wrapped under 67h). */
export let eaOffset: u64 = 0;
/** Linear address of the memory operand: eaOffset + FS/GS base. */
export let ea: u64 = 0;
/** The memory operand's base register is RSP (POP r/m computes it after the increment). */
export let eaBaseIsRsp: bool = false;
export let imm: u64 = 0;
export let imm2: u64 = 0;

// Fetch window: host pointer to the instruction bytes and its end.
let fp: usize = 0;
let fpStart: usize = 0;
let fpLimit: usize = 0;
/** Bytes of the window that could be fetched; beyond it, the fetch faults. */
let fetchAvail: i32 = 0;

/** Set up the fetch window at `rip`: straight from guest RAM when the 15 bytes are contiguous,
 *  else gathered byte by byte into ST_FETCH_BUF so a fault is raised only if decoding needs it. */
@inline function fetchSetup(): void {
  if (rip + 15 <= ramSize) {
    fp = translate(rip, 1, ACC_FETCH);
    fpLimit = fp + 15;
    fetchAvail = 15;
  } else {
    fetchSlow();
  }
  fpStart = fp;
}

function fetchSlow(): void {
  const buf = cpu + ST_FETCH_BUF;
  let n = 0;
  while (n < 15) {
    const a = rip + <u64>n;
    if (a >= ramSize) break;
    store<u8>(buf + n, load<u8>(translate(a, 1, ACC_FETCH)));
    n++;
  }
  fp = buf;
  fpLimit = buf + 15;
  fetchAvail = n;
}

/** Fetch failure: past the readable window (#PF) or past 15 bytes (#GP, SDM Vol. 2, 2.3.11). */
function fetchFault(): void {
  const off = <i32>(fp - fpStart);
  if (off < fetchAvail) return;
  if (off >= 15) raiseGP0();
  else translate(rip + <u64>off, 1, ACC_FETCH); // raises the #PF with the right address
}

@inline export function fetch8(): u32 {
  if (fp >= fpStart + <usize>fetchAvail) { fetchFault(); fp++; return 0; }
  const b = <u32>load<u8>(fp);
  fp++;
  return b;
}

function fetch16(): u32 { const lo = fetch8(); return lo | (fetch8() << 8); }
function fetch32(): u32 { const lo = fetch16(); return lo | (fetch16() << 16); }
function fetch64(): u64 { const lo = <u64>fetch32(); return lo | (<u64>fetch32() << 32); }

/** Bytes consumed so far (for exit reports). */
export function fetchedLength(): i32 { return <i32>(fp - fpStart); }
export function fetchedBytesPtr(): usize { return fpStart; }

/** Decode one instruction at `rip`. Returns false if fetching faulted. */
export function decode(): bool {
  instrStart = rip;
  fetchSetup();
  prefixes = 0;
  lastRep = 0;
  rex = 0;
  seg = SEG_NONE;
  eaBaseIsRsp = false;
  let b = fetch8();
  // Legacy prefixes in any order; a REX prefix counts only immediately before the opcode
  // (SDM Vol. 2, 2.2.1: a REX followed by a legacy prefix is ignored).
  while (true) {
    if (b >= 0x40 && b <= 0x4f) { rex = <i32>b; b = fetch8(); continue; }
    if (b == 0x66) prefixes |= P_66;
    else if (b == 0x67) prefixes |= P_67;
    else if (b == 0xf0) prefixes |= P_LOCK;
    else if (b == 0xf3) { prefixes |= P_REP; lastRep = 0xf3; }
    else if (b == 0xf2) { prefixes |= P_REPNE; lastRep = 0xf2; }
    else if (b == 0x64) seg = SEG_FS;
    else if (b == 0x65) seg = SEG_GS;
    else if (b == 0x26 || b == 0x2e || b == 0x36 || b == 0x3e) { /* null segment overrides in 64-bit mode */ }
    else break;
    rex = 0;
    b = fetch8();
  }
  let idx = <i32>b;
  if (b == 0x0f) {
    const b2 = fetch8();
    if (b2 == 0x38) idx = OPC_MAP_0F38 + <i32>fetch8();
    else if (b2 == 0x3a) idx = OPC_MAP_0F3A + <i32>fetch8();
    else idx = OPC_MAP_0F + <i32>b2;
  }
  opIdx = idx;
  attr = <i32>load<u8>(DECODE_ATTRS + <usize>idx);
  osize = (rex & 8) != 0 ? 8 : (prefixes & P_66) != 0 ? 2 : 4;

  let ripRelative = false;
  if (attr & ATTR_MODRM) ripRelative = decodeModrm();
  else isMem = false;

  let immKind = (attr >> ATTR_IMM_SHIFT) & ATTR_IMM_MASK;
  // Group 3: only TEST (/0, /1) carries an immediate (SDM Vol. 2, Table A-6).
  if ((idx == 0xf6 || idx == 0xf7) && ext < 2) immKind = idx == 0xf6 ? IMM_B : IMM_Z;
  if (immKind != IMM_NONE) decodeImmediate(immKind);

  nextRip = instrStart + <u64>(fp - fpStart);
  if (isMem) {
    let off = eaOffset;
    if (ripRelative) off += nextRip;
    if (prefixes & P_67) off &= 0xffffffff;
    eaOffset = off;
    ea = off + segmentBase();
  }
  return faultVector < 0;
}

/** FS/GS base of the current segment override (the others are 0 in 64-bit mode). */
@inline export function segmentBase(): u64 {
  if (seg == SEG_NONE) return 0;
  return load<u64>(cpu + (seg == SEG_FS ? ST_FS_BASE : ST_GS_BASE));
}

/** ModRM and SIB with 64-bit addressing (SDM Vol. 2, Tables 2-2/2-3 with REX). Returns true for a
 *  RIP-relative operand, whose displacement is relative to the next instruction. */
function decodeModrm(): bool {
  const m = <i32>fetch8();
  modrm = m;
  mod = m >> 6;
  ext = (m >> 3) & 7;
  regField = ext | ((rex & 4) << 1);
  const rm = m & 7;
  if (mod == 3) {
    rmField = rm | ((rex & 1) << 3);
    isMem = false;
    return false;
  }
  isMem = true;
  let addr: u64 = 0;
  let ripRelative = false;
  if (rm == 4) {
    const sib = <i32>fetch8();
    const index = ((sib >> 3) & 7) | ((rex & 2) << 2);
    if (index != 4) addr = getReg64(index) << <u64>(sib >> 6);
    const base = (sib & 7) | ((rex & 1) << 3);
    if ((sib & 7) == 5 && mod == 0) {
      addr += <u64><i64><i32>fetch32();
    } else {
      addr += getReg64(base);
      eaBaseIsRsp = base == 4;
    }
  } else if (rm == 5 && mod == 0) {
    ripRelative = true;
    addr = <u64><i64><i32>fetch32();
  } else {
    addr = getReg64(rm | ((rex & 1) << 3));
  }
  if (mod == 1) addr += <u64><i64><i8>fetch8();
  else if (mod == 2) addr += <u64><i64><i32>fetch32();
  eaOffset = addr;
  return ripRelative;
}

function decodeImmediate(kind: i32): void {
  switch (kind) {
    case IMM_B: imm = <u64><i64><i8>fetch8(); break;
    case IMM_W: imm = <u64>fetch16(); break;
    case IMM_Z: imm = osize == 2 ? <u64><i64><i16>fetch16() : <u64><i64><i32>fetch32(); break;
    case IMM_V:
      if (osize == 8) imm = fetch64();
      else if (osize == 4) imm = <u64>fetch32();
      else imm = <u64>fetch16();
      break;
    case IMM_WB: imm = <u64>fetch16(); imm2 = <u64>fetch8(); break;
    case IMM_MOFFS: imm = (prefixes & P_67) != 0 ? <u64>fetch32() : fetch64(); break;
    case IMM_D: imm = <u64><i64><i32>fetch32(); break;
    default: break;
  }
}
