// Instruction decoding for 64-bit mode: legacy prefixes, REX, the one-byte / 0F / 0F38 / 0F3A maps,
// ModRM/SIB, displacements, RIP-relative addressing and immediates (SDM Vol. 2, chapter 2).
//
// An instruction is decoded once into a 64-byte entry of the decoded-instruction cache (code-cache.ts:
// found by linear address, valid for the host frame it came from, like the predecoded icaches of
// Bochs and QEMU's physically keyed translation blocks in spirit). The entry keeps the addressing
// recipe, not the address, so it stays valid while registers change.
// `classify` (fastpath.ts) picks a specialized handler for common forms; everything else runs through
// the generic handlers, which read the decoded fields from the module globals set by `unpack`.
import {
  ATTR_MODRM, ATTR_IMM_SHIFT, ATTR_IMM_MASK, IMM_NONE, IMM_B, IMM_W, IMM_Z, IMM_V, IMM_WB, IMM_MOFFS,
  IMM_D, OPC_MAP_0F, OPC_MAP_0F38, OPC_MAP_0F3A, ACC_FETCH, ST_FETCH_BUF, SEG_BASE, SEG_ES, SEG_CS,
  ATTR_MEMSIZE_SHIFT, MEMSIZE_OTHER, MEMSIZE_BYTE, MEMSIZE_WORD, SEG_ATTR, SEG_LIMIT, SEG_ATTR_P,
  SEG_ATTR_DB, VEC_SS, VEC_GP,
  SEG_SS, SEG_DS, SEG_FS, SEG_GS, HOST_POOL_BASE,
} from '../abi';
import { DECODE_ATTRS } from './decode-tables.generated';
import { cpu, rip, getReg64, mode64, realMode, defaultOperandSize, defaultAddressSize, csBase, modeKey, segField } from './state';
import { raiseGP0, raise, faultVector } from './fault';
import { translate } from '../mmu/translate';
import { E_TAG, E_EPOCH, SCRATCH_ENTRY, cacheSlot, recordDecoded, stillValid } from './code-cache';

// Prefix bits
export const P_66: i32 = 1;
export const P_67: i32 = 2;
export const P_LOCK: i32 = 4;
export const P_REP: i32 = 8; // F3
export const P_REPNE: i32 = 16; // F2


// ---- Decoded entry layout (byte offsets) ----
// 0..11: E_TAG and E_EPOCH, 56..63: E_PHYS and E_CODE_GEN (code-cache.ts)
export const E_HANDLER: usize = 12; // u16: H_* of fastpath.ts (0 = generic)
export const E_OPIDX: usize = 14; // u16
export const E_LEN: usize = 16; // u8
export const E_PREFIXES: usize = 17; // u8
export const E_REX: usize = 18; // u8
export const E_OSIZE: usize = 19; // u8
export const E_SEG: usize = 20; // u8: segment of the memory operand (override or default), SEG_*
export const E_MODRM: usize = 21; // u8
export const E_REG: usize = 22; // u8: ModRM.reg with REX.R
export const E_RM: usize = 23; // u8: ModRM.rm with REX.B (register operand)
export const E_BASE: usize = 24; // u8: base register, EA_NONE or EA_RIP
export const E_INDEX: usize = 25; // u8: index register or EA_NONE
export const E_SCALE: usize = 26; // u8: index shift
export const E_FLAGS: usize = 27; // u8: EF_*
export const E_DISP: usize = 28; // i32
export const E_IMM: usize = 32; // u64
export const E_IMM2: usize = 40; // u16: ENTER's level, or the selector of a far pointer
export const E_LASTREP: usize = 42; // u8
export const E_ATTR: usize = 43; // u8
export const E_AUX: usize = 44; // u8: handler-specific (ALU op, condition, shift kind)
export const E_DST: usize = 45; // u8: handler-specific register
export const E_SRC: usize = 46; // u8: handler-specific register
export const E_ASIZE: usize = 47; // u8: address size 2, 4 or 8
export const E_AMASK: usize = 48; // u64: the address-size mask applied to effective addresses

export const EA_NONE: i32 = 16;
export const EA_RIP: i32 = 17;
export const EF_MEM: i32 = 1;

// ---- Decoded fields of the current instruction (generic handlers read these) ----
export let instrStart: u64 = 0;
export let nextRip: u64 = 0;
export let prefixes: i32 = 0;
/** The last of F2/F3 seen (it selects a mandatory-prefix form), or 0. */
export let lastRep: i32 = 0;
export let rex: i32 = 0;
/** Segment of the memory operand: the override, or DS (SS for rSP/rBP-based addresses). */
export let seg: i32 = SEG_DS;
/** Address size in bytes: 2, 4 or 8. */
export let asize: i32 = 8;
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
/** Bytes of the window that could be fetched; beyond it, the fetch faults. */
let fetchAvail: i32 = 0;
let fetchedDirect: bool = false;
/** Host address of the instruction's first byte (0 when its fetch faulted). */
let fetchHost: usize = 0;

/** Set up the fetch window at CS:RIP. Within one page the 15-byte window is read in place; an
 *  instruction that may cross into the next page starts with the bytes of this page in
 *  ST_FETCH_BUF, and the next page is translated only if decoding reaches it (so its #PF, with the
 *  right address, is raised only when the instruction really extends there). */
function fetchSetup(): void {
  const lin = csBase + rip;
  const inPage = <i32>(0x1000 - (lin & 0xfff));
  const buf = cpu + ST_FETCH_BUF;
  const p = translate(lin, 1, ACC_FETCH);
  fetchHost = p;
  if (p == 0) { emptyFetchWindow(); return; }
  if (inPage >= 15) {
    fp = p;
    fetchAvail = 15;
    fetchedDirect = true;
    crossing = false;
  } else {
    memory.copy(buf, p, <usize>inPage);
    fp = buf;
    fetchAvail = inPage;
    fetchedDirect = false;
    crossing = true;
    crossLinear = lin + <u64>inPage;
  }
  fpStart = fp;
}
let crossing: bool = false;
let crossLinear: u64 = 0;

/** No byte could be fetched (the fetch faulted). */
function emptyFetchWindow(): void {
  const buf = cpu + ST_FETCH_BUF;
  fp = buf; fpStart = buf; fetchAvail = 0; fetchedDirect = false; crossing = false;
}

/** The window ran out: fetch the next page's bytes (#PF if it is not mapped), or #GP past 15 bytes
 *  (SDM Vol. 2, 2.3.11). Returns true if more bytes became available. */
function fetchMore(): bool {
  const off = <i32>(fp - fpStart);
  if (off >= 15) { raiseGP0(); return false; }
  if (!crossing || faultVector >= 0) return false;
  crossing = false;
  const q = translate(crossLinear, 1, ACC_FETCH);
  if (q == 0) return false;
  memory.copy(fpStart + <usize>fetchAvail, q, <usize>(15 - fetchAvail));
  fetchAvail = 15;
  return true;
}

@inline function fetch8(): u32 {
  if (fp >= fpStart + <usize>fetchAvail && !fetchMore()) { fp++; return 0; }
  const b = <u32>load<u8>(fp);
  fp++;
  return b;
}

function fetch16(): u32 { const lo = fetch8(); return lo | (fetch8() << 8); }
function fetch32(): u32 { const lo = fetch16(); return lo | (fetch16() << 16); }
function fetch64(): u64 { const lo = <u64>fetch32(); return lo | (<u64>fetch32() << 32); }

/** Bytes consumed by the last decode (for exit reports). */
export function fetchedLength(): i32 { return <i32>(fp - fpStart); }

/** Slot `e` missed the run loop's check for the instruction at CS:RIP (linear `lin`): does it still
 *  hold this instruction for the frame now mapped there (code-cache.ts)? REVALIDATED (stamped, use
 *  it), MUST_DECODE, or FETCH_FAULTED (the fault is raised, nothing was fetched). */
export function revalidate(e: usize, lin: u64): i32 {
  if (load<u64>(e + E_TAG) != lin || load<u32>(e + E_EPOCH) == 0) return MUST_DECODE;
  const p = translate(lin, 1, ACC_FETCH);
  if (p == 0) { emptyFetchWindow(); return FETCH_FAULTED; }
  return stillValid(e, p) ? REVALIDATED : MUST_DECODE;
}
export const REVALIDATED: i32 = 1;
export const MUST_DECODE: i32 = 0;
export const FETCH_FAULTED: i32 = -1;

/** Decode the instruction at `rip` into its cache slot (or the scratch entry) and return the entry,
 *  or 0 if fetching faulted. */
export function decodeAt(): usize {
  fetchSetup();
  const cacheable = fetchedDirect && fetchHost >= <usize>HOST_POOL_BASE;
  const lin = csBase + rip;
  const e = cacheable ? cacheSlot(lin) : SCRATCH_ENTRY;
  let pfx = 0, rep = 0, rx = 0, sg = -1;
  let b = fetch8();
  // Legacy prefixes in any order; REX exists only in 64-bit mode and counts only immediately before
  // the opcode (SDM Vol. 2, 2.2.1: a REX followed by a legacy prefix is ignored).
  while (true) {
    if ((b & 0xf0) == 0x40 && mode64) { rx = <i32>b; b = fetch8(); continue; }
    if (b == 0x66) pfx |= P_66;
    else if (b == 0x67) pfx |= P_67;
    else if (b == 0xf0) pfx |= P_LOCK;
    else if (b == 0xf3) { pfx |= P_REP; rep = 0xf3; }
    else if (b == 0xf2) { pfx |= P_REPNE; rep = 0xf2; }
    else if (b == 0x26) sg = SEG_ES;
    else if (b == 0x2e) sg = SEG_CS;
    else if (b == 0x36) sg = SEG_SS;
    else if (b == 0x3e) sg = SEG_DS;
    else if (b == 0x64) sg = SEG_FS;
    else if (b == 0x65) sg = SEG_GS;
    else break;
    rx = 0;
    b = fetch8();
  }
  let idx = <i32>b;
  if (b == 0x0f) {
    const b2 = fetch8();
    if (b2 == 0x38) idx = OPC_MAP_0F38 + <i32>fetch8();
    else if (b2 == 0x3a) idx = OPC_MAP_0F3A + <i32>fetch8();
    else idx = OPC_MAP_0F + <i32>b2;
  }
  const at = <i32>load<u8>(DECODE_ATTRS + <usize>idx);
  // Operand and address sizes: 66h/67h toggle the code segment's defaults; in 64-bit mode REX.W
  // selects 64-bit operands and 67h selects 32-bit addresses (SDM Vol. 1, 3.6 and 3.6.1).
  let os: i32, as: i32;
  if (mode64) {
    os = (rx & 8) != 0 ? 8 : (pfx & P_66) != 0 ? 2 : 4;
    as = (pfx & P_67) != 0 ? 4 : 8;
  } else {
    os = (pfx & P_66) != 0 ? 6 - defaultOperandSize : defaultOperandSize;
    as = (pfx & P_67) != 0 ? 6 - defaultAddressSize : defaultAddressSize;
  }
  store<u16>(e + E_OPIDX, <u16>idx);
  store<u8>(e + E_PREFIXES, <u8>pfx);
  store<u8>(e + E_LASTREP, <u8>rep);
  store<u8>(e + E_REX, <u8>rx);
  store<u8>(e + E_SEG, <u8>(sg >= 0 ? sg : SEG_DS));
  store<u8>(e + E_OSIZE, <u8>os);
  store<u8>(e + E_ASIZE, <u8>as);
  store<u64>(e + E_AMASK, as == 8 ? <u64>-1 : as == 4 ? <u64>0xffffffff : <u64>0xffff);
  store<u8>(e + E_ATTR, <u8>at);

  let reg3 = 0;
  if (at & ATTR_MODRM) reg3 = as == 2 ? decodeModrm16(e, sg) : decodeModrm(e, rx, sg);
  else store<u8>(e + E_FLAGS, 0);

  let immKind = (at >> ATTR_IMM_SHIFT) & ATTR_IMM_MASK;
  // Group 3: only TEST (/0, /1) carries an immediate (SDM Vol. 2, Table A-6).
  if ((idx == 0xf6 || idx == 0xf7) && reg3 < 2) immKind = idx == 0xf6 ? IMM_B : IMM_Z;
  // Near-branch displacements are 32 bits whatever 66h says only in 64-bit mode; elsewhere they
  // follow the operand size (rel16 / rel32).
  if (immKind == IMM_D && !mode64) immKind = IMM_Z;
  let iv: u64 = 0, iv2: u64 = 0;
  switch (immKind) {
    case IMM_NONE: break;
    case IMM_B: iv = <u64><i64><i8>fetch8(); break;
    case IMM_W: iv = <u64>fetch16(); break;
    case IMM_Z: iv = os == 2 ? <u64><i64><i16>fetch16() : <u64><i64><i32>fetch32(); break;
    case IMM_V: iv = os == 8 ? fetch64() : os == 4 ? <u64>fetch32() : <u64>fetch16(); break;
    case IMM_WB: iv = <u64>fetch16(); iv2 = <u64>fetch8(); break;
    case IMM_MOFFS: iv = as == 8 ? fetch64() : as == 4 ? <u64>fetch32() : <u64>fetch16(); break;
    default: iv = <u64><i64><i32>fetch32(); break; // IMM_D
  }
  // 9A/EA (CALL/JMP ptr16:16/32, legacy modes only): offset then selector.
  if ((idx == 0x9a || idx == 0xea) && !mode64) {
    iv = os == 2 ? <u64>fetch16() : <u64>fetch32();
    iv2 = <u64>fetch16();
  }
  store<u64>(e + E_IMM, iv);
  store<u16>(e + E_IMM2, <u16>iv2);
  const len = <i32>(fp - fpStart);
  store<u8>(e + E_LEN, <u8>len);
  if (faultVector >= 0) {
    store<u32>(e + E_EPOCH, 0); // the slot's previous contents were overwritten
    return 0;
  }
  if (cacheable) {
    recordDecoded(e, lin, fetchHost); // (all its bytes lie in that one frame)
  } else {
    store<u32>(e + E_EPOCH, 0);
  }
  return e;
}

/** ModRM and SIB with 64-bit addressing (SDM Vol. 2, Tables 2-2/2-3 with REX): records the
 *  addressing recipe in the entry. Returns ModRM.reg (the opcode extension). */
function decodeModrm(e: usize, rx: i32, sg: i32): i32 {
  const m = <i32>fetch8();
  const md = m >> 6;
  const rm = m & 7;
  store<u8>(e + E_MODRM, <u8>m);
  store<u8>(e + E_REG, <u8>(((m >> 3) & 7) | ((rx & 4) << 1)));
  store<u8>(e + E_RM, <u8>(rm | ((rx & 1) << 3)));
  if (md == 3) {
    store<u8>(e + E_FLAGS, 0);
    return (m >> 3) & 7;
  }
  let base = EA_NONE, index = EA_NONE, scale = 0;
  let disp: i32 = 0;
  if (rm == 4) {
    const sib = <i32>fetch8();
    const ix = ((sib >> 3) & 7) | ((rx & 2) << 2);
    if (ix != 4) { index = ix; scale = sib >> 6; }
    if ((sib & 7) == 5 && md == 0) disp = <i32>fetch32();
    else base = (sib & 7) | ((rx & 1) << 3);
  } else if (rm == 5 && md == 0) {
    base = mode64 ? EA_RIP : EA_NONE; // RIP-relative only in 64-bit mode; else disp32 absolute
    disp = <i32>fetch32();
  } else {
    base = rm | ((rx & 1) << 3);
  }
  if (md == 1) disp = <i32><i8>fetch8();
  else if (md == 2) disp = <i32>fetch32();
  storeRecipe(e, base, index, scale, disp, sg, base == 4 || base == 5);
  return (m >> 3) & 7;
}

/** Record a memory operand's addressing recipe; the default segment is SS for rSP/rBP bases. */
function storeRecipe(e: usize, base: i32, index: i32, scale: i32, disp: i32, sg: i32, stackBased: bool): void {
  store<u8>(e + E_BASE, <u8>base);
  store<u8>(e + E_INDEX, <u8>index);
  store<u8>(e + E_SCALE, <u8>scale);
  store<i32>(e + E_DISP, disp);
  store<u8>(e + E_FLAGS, <u8>EF_MEM);
  if (sg < 0 && stackBased) store<u8>(e + E_SEG, <u8>SEG_SS);
}

/** ModRM with 16-bit addressing (SDM Vol. 2, Table 2-1): BX/BP + SI/DI, disp8/disp16. */
function decodeModrm16(e: usize, sg: i32): i32 {
  const m = <i32>fetch8();
  const md = m >> 6;
  const rm = m & 7;
  store<u8>(e + E_MODRM, <u8>m);
  store<u8>(e + E_REG, <u8>((m >> 3) & 7));
  store<u8>(e + E_RM, <u8>rm);
  if (md == 3) {
    store<u8>(e + E_FLAGS, 0);
    return (m >> 3) & 7;
  }
  // rm: 0 BX+SI, 1 BX+DI, 2 BP+SI, 3 BP+DI, 4 SI, 5 DI, 6 BP (disp16 alone when mod = 00), 7 BX.
  const RBX = 3, RBP = 5, RSI = 6, RDI = 7;
  let base = EA_NONE, index = EA_NONE;
  let disp: i32 = 0;
  if (rm < 4) { base = rm < 2 ? RBX : RBP; index = (rm & 1) != 0 ? RDI : RSI; }
  else if (rm == 4) base = RSI;
  else if (rm == 5) base = RDI;
  else if (rm == 6) { if (md != 0) base = RBP; }
  else base = RBX;
  if (md == 0 && rm == 6) disp = <i32><i16>fetch16();
  else if (md == 1) disp = <i32><i8>fetch8();
  else if (md == 2) disp = <i32><i16>fetch16();
  storeRecipe(e, base, index, 0, disp, sg, base == RBP);
  return (m >> 3) & 7;
}

/** Base of segment `sg`; in 64-bit mode only FS and GS have one (SDM Vol. 3A, 3.2.4). */
@inline export function segBase(sg: i32): u64 {
  if (mode64 && sg < SEG_FS) return 0;
  return load<u64>(segField(sg, SEG_BASE));
}

/** Base of the current instruction's memory-operand segment. */
@inline export function segmentBase(): u64 { return segBase(seg); }

/** Effective address offset of entry `e`'s memory operand with the current registers. */
@inline export function effectiveOffset(e: usize, next: u64): u64 {
  let a = <u64><i64>load<i32>(e + E_DISP);
  const base = <i32>load<u8>(e + E_BASE);
  if (base < 16) a += getReg64(base);
  else if (base == EA_RIP) a += next;
  const index = <i32>load<u8>(e + E_INDEX);
  if (index < 16) a += getReg64(index) << <u64>load<u8>(e + E_SCALE);
  return a & load<u64>(e + E_AMASK);
}

/** Outside 64-bit mode the memory operand must lie within its segment (SDM Vol. 3A, 5.3): #SS(0)
 *  for the stack segment, #GP(0) otherwise, also for a segment register holding a null selector.
 *  Expand-down data segments accept the offsets above their limit. */
function checkOperandLimit(): void {
  const cls = (attr >> ATTR_MEMSIZE_SHIFT) & 3;
  if (cls == MEMSIZE_OTHER) return;
  const size: u64 = cls == MEMSIZE_BYTE ? 1 : cls == MEMSIZE_WORD ? 2 : <u64>osize;
  if (!segmentAllows(seg, eaOffset, size)) raise(seg == SEG_SS ? VEC_SS : VEC_GP, 0, true);
}

/** The linear address of `offset` in segment `sg` for an operand of `size` bytes that is not a
 *  ModRM operand (string instructions' rSI/rDI, MOV moffs), or -1 with #SS(0)/#GP(0) raised when it
 *  lies outside the segment (SDM Vol. 3A, 5.3; no limits in 64-bit mode). */
export function segmentedAddress(sg: i32, offset: u64, size: i32): u64 {
  if (!mode64 && !segmentAllows(sg, offset, <u64>size)) { raise(sg == SEG_SS ? VEC_SS : VEC_GP, 0, true); return <u64>-1; }
  return offset + segBase(sg);
}

/** [offset, offset + size) lies within segment `sg` (present, and inside its limit). */
export function segmentAllows(sg: i32, offset: u64, size: u64): bool {
  const a = <u32>load<u16>(segField(sg, SEG_ATTR));
  if ((a & SEG_ATTR_P) == 0 && !realMode) return false;
  const limit = <u64>load<u32>(segField(sg, SEG_LIMIT));
  const last = offset + size - 1;
  if ((a & 0x1c) == 0x14) { // expand-down data
    const upper: u64 = (a & SEG_ATTR_DB) != 0 ? 0xffffffff : 0xffff;
    return offset > limit && last <= upper;
  }
  return last <= limit && last >= offset;
}

/** Load entry `e` into the decoded-field globals for the generic handlers. */
export function unpack(e: usize, start: u64): void {
  instrStart = start;
  nextRip = start + <u64>load<u8>(e + E_LEN);
  opIdx = <i32>load<u16>(e + E_OPIDX);
  attr = <i32>load<u8>(e + E_ATTR);
  prefixes = <i32>load<u8>(e + E_PREFIXES);
  lastRep = <i32>load<u8>(e + E_LASTREP);
  rex = <i32>load<u8>(e + E_REX);
  seg = <i32>load<u8>(e + E_SEG);
  osize = <i32>load<u8>(e + E_OSIZE);
  asize = <i32>load<u8>(e + E_ASIZE);
  imm = load<u64>(e + E_IMM);
  imm2 = <u64>load<u16>(e + E_IMM2);
  if (attr & ATTR_MODRM) {
    modrm = <i32>load<u8>(e + E_MODRM);
    mod = modrm >> 6;
    ext = (modrm >> 3) & 7;
    regField = <i32>load<u8>(e + E_REG);
    rmField = <i32>load<u8>(e + E_RM);
    isMem = (load<u8>(e + E_FLAGS) & EF_MEM) != 0;
    if (isMem) {
      eaOffset = effectiveOffset(e, nextRip);
      ea = eaOffset + segmentBase();
      eaBaseIsRsp = load<u8>(e + E_BASE) == 4;
      if (!mode64) checkOperandLimit();
    }
  } else {
    isMem = false;
  }
}
