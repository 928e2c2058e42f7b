// Segment registers and descriptor tables (SDM Vol. 3A, chapters 3 and 5): loading a selector in
// real mode (base = selector << 4) and in protected/IA-32e mode (GDT/LDT lookup with the type,
// privilege and present checks), and the descriptor reads that far transfers and gates share.
import {
  ST_GDTR_BASE, ST_GDTR_LIMIT, SEG_LDTR, SEG_BASE, SEG_LIMIT, SEG_SELECTOR, SEG_ATTR, SEG_CS, SEG_SS,
  SEG_ATTR_S, SEG_ATTR_P, SEG_ATTR_DB, SEG_ATTR_L, VEC_GP, VEC_NP, VEC_SS, VEC_TS, ACC_READ, ACC_WRITE,
  ST_EFER, EFER_LMA, SEG_TR,
} from '../../abi';
import { cpu, segField, realMode, mode64, cpl, updateMode } from '../state';
import { raise } from '../fault';
import { translate } from '../../mmu/translate';
import { implicitSupervisor, setImplicitSupervisor } from '../../mmu/paging';

/** Descriptor fetched by readDescriptor: base, expanded limit, attributes (SEG_ATTR layout). */
export let descBase: u64 = 0;
export let descLimit: u32 = 0;
export let descAttr: u32 = 0;
/** High 8 bytes of a 16-byte system descriptor in IA-32e mode (upper base bits). */
export let descHigh: u64 = 0;
/** The low 8 bytes of the last descriptor read, as stored (gates keep their fields there). */
export let descRaw: u64 = 0;
/** Linear address of the last descriptor read (to set its accessed bit). */
let descAddr: u64 = 0;

@inline export function attrType(a: u32): u32 { return a & 0xf; }
@inline export function attrDpl(a: u32): i32 { return <i32>((a >> 5) & 3); }
@inline export function isCodeAttr(a: u32): bool { return (a & SEG_ATTR_S) != 0 && (a & 0x8) != 0; }

/** Read the descriptor of `selector` from the GDT or LDT. Returns false with #GP(selector) (or the
 *  given vector) raised when the selector is outside its table. */
export function readDescriptor(selector: u32, vector: i32): bool {
  const index = <u64>(selector & 0xfff8);
  let base: u64, limit: u64;
  if (selector & 4) {
    base = load<u64>(segField(SEG_LDTR, SEG_BASE));
    limit = <u64>load<u32>(segField(SEG_LDTR, SEG_LIMIT));
  } else {
    base = load<u64>(cpu + ST_GDTR_BASE);
    limit = <u64>load<u32>(cpu + ST_GDTR_LIMIT);
  }
  if (index + 7 > limit) { raise(vector, selector & 0xfffc, true); return false; }
  descAddr = base + index;
  const was = implicitSupervisor;
  setImplicitSupervisor(true); // descriptor tables are read as supervisor (SDM Vol. 3A, 4.6)
  const p = translate(descAddr, 8, ACC_READ);
  setImplicitSupervisor(was);
  if (p == 0) return false;
  const d = load<u64>(p);
  descRaw = d;
  descBase = ((d >> 16) & 0xffffff) | (((d >> 56) & 0xff) << 24);
  let lim = <u32>((d & 0xffff) | (((d >> 48) & 0xf) << 16));
  const attr = <u32>((d >> 40) & 0xff) | <u32>(((d >> 52) & 0xf) << 12);
  if (attr & 0x8000) lim = (lim << 12) | 0xfff; // G: 4 KiB granularity
  descLimit = lim;
  descAttr = attr;
  descHigh = 0;
  // System descriptors (LDT, TSS, gates) are 16 bytes in IA-32e mode (SDM Vol. 3A, 7.2.3).
  if ((attr & SEG_ATTR_S) == 0 && mode64) {
    const q = translate(descAddr + 8, 8, ACC_READ);
    if (q == 0) return false;
    descHigh = load<u64>(q);
    descBase |= (descHigh & 0xffffffff) << 32;
  }
  return true;
}

/** Set the accessed bit of the last descriptor read (SDM Vol. 3A, 3.4.5.1). */
export function markAccessed(): void {
  if ((descAttr & 1) != 0) return;
  const p = translate(descAddr + 5, 1, ACC_WRITE);
  if (p != 0) store<u8>(p, load<u8>(p) | 1);
  descAttr |= 1;
}

/** Install a descriptor into a segment register's hidden part. */
export function setSegment(seg: i32, selector: u32, base: u64, limit: u32, attr: u32): void {
  store<u64>(segField(seg, SEG_BASE), base);
  store<u32>(segField(seg, SEG_LIMIT), limit);
  store<u16>(segField(seg, SEG_SELECTOR), <u16>selector);
  store<u16>(segField(seg, SEG_ATTR), <u16>attr);
  if (seg == SEG_CS || seg == SEG_SS) updateMode();
}

/** Real-mode load: base = selector * 16; limit and attributes keep what the descriptor cache had
 *  (that is what "unreal mode" relies on), except that the segment is marked present. */
function loadReal(seg: i32, selector: u32): void {
  const attr = <u32>load<u16>(segField(seg, SEG_ATTR)) | SEG_ATTR_P | SEG_ATTR_S;
  setSegment(seg, selector, <u64>(selector << 4), load<u32>(segField(seg, SEG_LIMIT)), attr);
}

/** MOV/POP/LDS... to a data or stack segment register (SDM Vol. 2B, MOV "Protected Mode Exceptions"). */
export function loadDataSegment(seg: i32, selector: u32): bool {
  selector &= 0xffff;
  if (realMode) { loadReal(seg, selector); return true; }
  const rpl = <i32>(selector & 3);
  if ((selector & 0xfffc) == 0) {
    // A null selector: #GP for SS except in 64-bit mode at CPL < 3 (SDM Vol. 3A, 5.4.1.1).
    if (seg == SEG_SS && (!mode64 || cpl == 3 || rpl != cpl)) { raise(VEC_GP, 0, true); return false; }
    setSegment(seg, selector, 0, 0, 0);
    return true;
  }
  if (!readDescriptor(selector, VEC_GP)) return false;
  const a = descAttr;
  const dpl = attrDpl(a);
  if (seg == SEG_SS) {
    // Writable data segment with RPL = DPL = CPL.
    if (rpl != cpl || dpl != cpl || (a & SEG_ATTR_S) == 0 || (a & 0xa) != 0x2) {
      raise(VEC_GP, selector & 0xfffc, true); return false;
    }
    if ((a & SEG_ATTR_P) == 0) { raise(VEC_SS, selector & 0xfffc, true); return false; }
  } else {
    // Data or readable code; non-conforming needs max(CPL, RPL) <= DPL.
    const readable = (a & SEG_ATTR_S) != 0 && ((a & 0x8) == 0 || (a & 0x2) != 0);
    const conforming = (a & 0xc) == 0xc;
    if (!readable || (!conforming && (rpl > dpl || cpl > dpl))) {
      raise(VEC_GP, selector & 0xfffc, true); return false;
    }
    if ((a & SEG_ATTR_P) == 0) { raise(VEC_NP, selector & 0xfffc, true); return false; }
  }
  markAccessed();
  setSegment(seg, selector, descBase, descLimit, descAttr);
  return true;
}

/** On a return to an outer level (RETF, IRET), ES/DS/FS/GS holding data or non-conforming code
 *  segments more privileged than the new level are loaded with a null selector (SDM Vol. 2B, RET
 *  and Vol. 2A, IRET: "RETURN-TO-OUTER-PRIVILEGE-LEVEL"). */
export function nullDataSegmentsBelow(level: i32): void {
  for (let s = 0; s < 6; s++) {
    if (s == SEG_CS || s == SEG_SS) continue;
    const attr = <u32>load<u16>(segField(s, SEG_ATTR));
    const dataOrNonConforming = (attr & 0x18) == 0x10 || (attr & 0x1c) == 0x18;
    if ((attr & SEG_ATTR_P) != 0 && dataOrNonConforming && attrDpl(attr) < level) setSegment(s, 0, 0, 0, 0);
  }
}

/** Load CS for a far JMP/CALL/RET or an interrupt to a code segment already checked by the caller. */
export function loadCodeSegment(selector: u32, newCpl: i32): void {
  if (realMode) { loadReal(SEG_CS, selector); return; }
  markAccessed();
  setSegment(SEG_CS, (selector & 0xfffc) | <u32>newCpl, descBase, descLimit, descAttr);
}

/** Checks for a far JMP/CALL directly to a code segment (no gate): SDM Vol. 3A, 5.8.1. Returns the
 *  CPL the code runs at, or -1 with the fault raised. The descriptor must have been read. */
export function checkCodeTarget(selector: u32): i32 {
  const a = descAttr;
  if (!isCodeAttr(a)) return -2; // not a code segment: maybe a gate (caller decides)
  const dpl = attrDpl(a);
  const rpl = <i32>(selector & 3);
  const conforming = (a & 0x4) != 0;
  if (conforming ? dpl > cpl : (rpl > cpl || dpl != cpl)) { raise(VEC_GP, selector & 0xfffc, true); return -1; }
  if ((a & SEG_ATTR_P) == 0) { raise(VEC_NP, selector & 0xfffc, true); return -1; }
  return cpl;
}

/** True when the attributes describe a 64-bit code segment (L=1, D=0). */
@inline export function isLongCode(a: u32): bool { return (a & SEG_ATTR_L) != 0 && (a & SEG_ATTR_DB) == 0; }

/** Stack for privilege level `level` from the current TSS (32-bit TSS: ESPn/SSn at 4 + 8n;
 *  64-bit TSS: RSPn at 4 + 8n, ISTn at 0x24 + 8(n-1)); SDM Vol. 3A, 7.2.1 and 7.7. */
export let tssStackPointer: u64 = 0;
export let tssStackSelector: u32 = 0;
export function readTssStack(level: i32, ist: i32): bool {
  const base = load<u64>(segField(SEG_TR, SEG_BASE));
  const limit = <u64>load<u32>(segField(SEG_TR, SEG_LIMIT));
  if (mode64Lma()) {
    const off: u64 = ist != 0 ? 0x24 + <u64>(ist - 1) * 8 : 4 + <u64>level * 8;
    if (off + 7 > limit) { raise(VEC_TS, <u32>load<u16>(segField(SEG_TR, SEG_SELECTOR)) & 0xfffc, true); return false; }
    const p = translate(base + off, 8, ACC_READ);
    if (p == 0) return false;
    tssStackPointer = load<u64>(p);
    tssStackSelector = 0;
    return true;
  }
  const off: u64 = 4 + <u64>level * 8;
  if (off + 5 > limit) { raise(VEC_TS, <u32>load<u16>(segField(SEG_TR, SEG_SELECTOR)) & 0xfffc, true); return false; }
  const p = translate(base + off, 6, ACC_READ);
  if (p == 0) return false;
  tssStackPointer = <u64>load<u32>(p);
  tssStackSelector = <u32>load<u16>(p + 4);
  return true;
}

/** IA-32e mode active (64-bit or compatibility submode). */
@inline export function mode64Lma(): bool { return (load<u64>(cpu + ST_EFER) & EFER_LMA) != 0; }
