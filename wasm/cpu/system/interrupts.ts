// Interrupt and exception delivery through the IVT (real mode) or the IDT (protected and IA-32e
// mode), and IRET (SDM Vol. 3A, chapter 6: 6.12 for protected mode, 6.14 for IA-32e mode; 20.1.4
// for real mode). Double faults follow Table 6-5; a fault while delivering #DF is a triple fault.
import {
  ST_IDTR_BASE, ST_IDTR_LIMIT, SEG_CS, SEG_SS, SEG_BASE, SEG_SELECTOR, SEG_ATTR, SEG_ATTR_P, VEC_GP,
  VEC_NP, VEC_DF, VEC_TS, VEC_SS, ACC_READ, ACC_WRITE, FLAG_IF, FLAG_TF, FLAG_NT, FLAG_RF, FLAG_VM,
  FLAG_AC, FLAG_IOPL, FLAG_VIF, FLAG_VIP,
} from '../../abi';
import { cpu, rip, setRip, segField, realMode, cpl, getReg64, setReg64, storeSized, loadSized, sizeMask } from '../state';
import { getFlags, setFlags } from '../flags';
import { raise, faultVector, faultError, clearFault, isCanonical, EPT_VIOLATION_VECTOR } from '../fault';
import {
  readDescriptor, descAttr, descBase, descLimit, attrDpl, isCodeAttr, isLongCode, loadCodeSegment,
  setSegment, readTssStack, tssStackPointer, tssStackSelector, mode64Lma, nullDataSegmentsBelow,
} from './segments';
import { translate } from '../../mmu/translate';
import { setImplicitSupervisor } from '../../mmu/paging';

const RSP = 4;

/** Write `size` bytes at linear SS base + sp (used while the stack is being switched). */
export function stackWrite(ssBase: u64, sp: u64, size: i32, v: u64): bool {
  const p = translate(ssBase + sp, size, ACC_WRITE);
  if (p == 0) return false;
  storeSized(p, size, v);
  return true;
}
function stackRead(ssBase: u64, sp: u64, size: i32): u64 {
  const p = translate(ssBase + sp, size, ACC_READ);
  return p == 0 ? 0 : loadSized(p, size);
}

/** Error code for a fault on an IDT entry: index << 3 | IDT(2) | EXT(1) (SDM Vol. 3A, 6.13). */
@inline function idtError(vector: i32, external: bool): u32 { return (<u32>vector << 3) | 2 | (external ? 1 : 0); }

/** Deliver interrupt/exception `vector`. `soft` = INT n/INT3/INTO (gate DPL is checked);
 *  `returnRip` is pushed. Returns false if delivery itself faulted (the new fault is raised). */
export function deliver(vector: i32, error: u32, hasError: bool, soft: bool, external: bool, returnRip: u64): bool {
  if (realMode) return deliverReal(vector, returnRip);
  if (mode64Lma()) return deliverLong(vector, error, hasError, soft, external, returnRip);
  return deliverProtected(vector, error, hasError, soft, external, returnRip);
}

function deliverReal(vector: i32, returnRip: u64): bool {
  const base = load<u64>(cpu + ST_IDTR_BASE);
  const limit = <u64>load<u32>(cpu + ST_IDTR_LIMIT);
  if (<u64>vector * 4 + 3 > limit) { raise(VEC_GP, 0, true); return false; }
  const p = translate(base + <u64>vector * 4, 4, ACC_READ);
  if (p == 0) return false;
  const offset = <u64>load<u16>(p);
  const selector = <u32>load<u16>(p + 2);
  const ssBase = load<u64>(segField(SEG_SS, SEG_BASE));
  const sp = getReg64(RSP) & 0xffff;
  const flags = getFlags();
  if (!stackWrite(ssBase, (sp - 2) & 0xffff, 2, flags)) return false;
  if (!stackWrite(ssBase, (sp - 4) & 0xffff, 2, <u64>load<u16>(segField(SEG_CS, SEG_SELECTOR)))) return false;
  if (!stackWrite(ssBase, (sp - 6) & 0xffff, 2, returnRip & 0xffff)) return false;
  setReg64(RSP, (getReg64(RSP) & ~(<u64>0xffff)) | ((sp - 6) & 0xffff));
  setFlags(flags & ~(<u64>(FLAG_IF | FLAG_TF | FLAG_AC | FLAG_RF)));
  loadCodeSegment(selector, 0);
  setRip(offset);
  return true;
}

/** Read gate `vector` and the code segment it names; shared by 32-bit and 64-bit delivery. */
let gateLow: u64 = 0;
let gateHigh: u64 = 0;
function readGate(vector: i32, entrySize: i32, soft: bool, external: bool): bool {
  const base = load<u64>(cpu + ST_IDTR_BASE);
  const limit = <u64>load<u32>(cpu + ST_IDTR_LIMIT);
  const at = <u64>vector * <u64>entrySize;
  if (at + <u64>entrySize - 1 > limit) { raise(VEC_GP, idtError(vector, external), true); return false; }
  const p = translate(base + at, entrySize, ACC_READ);
  if (p == 0) return false;
  gateLow = load<u64>(p);
  gateHigh = entrySize == 16 ? load<u64>(p + 8) : 0;
  const type = <u32>((gateLow >> 40) & 0xf);
  const dpl = <i32>((gateLow >> 45) & 3);
  const valid = entrySize == 16 ? (type == 0xe || type == 0xf) : (type == 0x6 || type == 0x7 || type == 0xe || type == 0xf);
  if (!valid) { raise(VEC_GP, idtError(vector, external), true); return false; }
  if (soft && dpl < cpl) { raise(VEC_GP, idtError(vector, external), true); return false; }
  if ((gateLow & (<u64>1 << 47)) == 0) { raise(VEC_NP, idtError(vector, external), true); return false; }
  const selector = <u32>((gateLow >> 16) & 0xffff);
  if ((selector & 0xfffc) == 0) { raise(VEC_GP, external ? 1 : 0, true); return false; }
  if (!readDescriptor(selector, VEC_GP)) return false;
  if (!isCodeAttr(descAttr) || attrDpl(descAttr) > cpl) { raise(VEC_GP, (selector & 0xfffc) | (external ? 1 : 0), true); return false; }
  if ((descAttr & SEG_ATTR_P) == 0) { raise(VEC_NP, (selector & 0xfffc) | (external ? 1 : 0), true); return false; }
  return true;
}

function deliverProtected(vector: i32, error: u32, hasError: bool, soft: bool, external: bool, returnRip: u64): bool {
  if (!readGate(vector, 8, soft, external)) return false;
  const type = <u32>((gateLow >> 40) & 0xf);
  const size = (type & 0x8) != 0 ? 4 : 2;
  const selector = <u32>((gateLow >> 16) & 0xffff);
  const offset = (gateLow & 0xffff) | ((gateLow >> 32) & 0xffff0000);
  const conforming = (descAttr & 0x4) != 0;
  const newCpl = conforming ? cpl : attrDpl(descAttr);
  const codeBase = descBase, codeLimit = descLimit, codeAttr = descAttr;
  const oldSs = <u64>load<u16>(segField(SEG_SS, SEG_SELECTOR));
  const oldSp = getReg64(RSP);
  const flags = getFlags();
  let ssBase = load<u64>(segField(SEG_SS, SEG_BASE));
  let sp: u64 = (load<u16>(segField(SEG_SS, SEG_ATTR)) & 0x4000) != 0 ? oldSp & 0xffffffff : oldSp & 0xffff;
  const oldCs = <u64>load<u16>(segField(SEG_CS, SEG_SELECTOR));
  if (newCpl < cpl) {
    // Inner privilege: switch to the TSS stack for newCpl, then save the old SS:ESP on it.
    if (!readTssStack(newCpl, 0)) return false;
    if (!loadStackForCpl(tssStackSelector, newCpl)) return false;
    ssBase = load<u64>(segField(SEG_SS, SEG_BASE));
    sp = tssStackPointer;
    sp -= <u64>size; if (!stackWrite(ssBase, sp, size, oldSs)) return false;
    sp -= <u64>size; if (!stackWrite(ssBase, sp, size, oldSp)) return false;
  }
  sp -= <u64>size; if (!stackWrite(ssBase, sp, size, flags)) return false;
  sp -= <u64>size; if (!stackWrite(ssBase, sp, size, oldCs)) return false;
  sp -= <u64>size; if (!stackWrite(ssBase, sp, size, returnRip)) return false;
  if (hasError) { sp -= <u64>size; if (!stackWrite(ssBase, sp, size, <u64>error)) return false; }
  setStackAfterPush(sp);
  let nf = flags & ~(<u64>(FLAG_TF | FLAG_NT | FLAG_RF | FLAG_VM));
  if ((type & 1) == 0) nf &= ~(<u64>FLAG_IF); // interrupt gate
  setFlags(nf);
  setSegment(SEG_CS, (selector & 0xfffc) | <u32>newCpl, codeBase, codeLimit, codeAttr | 1);
  setRip(size == 2 ? offset & 0xffff : offset);
  return true;
}

/** SS for an inner privilege level from the TSS (SDM Vol. 3A, 6.12.1: #TS on a bad selector). */
export function loadStackForCpl(selector: u32, newCpl: i32): bool {
  if ((selector & 0xfffc) == 0 || <i32>(selector & 3) != newCpl) { raise(VEC_TS, selector & 0xfffc, true); return false; }
  if (!readDescriptor(selector, VEC_TS)) return false;
  const a = descAttr;
  if (attrDpl(a) != newCpl || (a & 0x18) != 0x10 || (a & 0x2) == 0) { raise(VEC_TS, selector & 0xfffc, true); return false; }
  if ((a & SEG_ATTR_P) == 0) { raise(VEC_SS, selector & 0xfffc, true); return false; }
  setSegment(SEG_SS, selector, descBase, descLimit, descAttr | 1);
  return true;
}

@inline function setStackAfterPush(sp: u64): void {
  const big = (load<u16>(segField(SEG_SS, SEG_ATTR)) & 0x4000) != 0;
  if (big) setReg64(RSP, sp & 0xffffffff);
  else setReg64(RSP, (getReg64(RSP) & ~(<u64>0xffff)) | (sp & 0xffff));
}

function deliverLong(vector: i32, error: u32, hasError: bool, soft: bool, external: bool, returnRip: u64): bool {
  if (!readGate(vector, 16, soft, external)) return false;
  const selector = <u32>((gateLow >> 16) & 0xffff);
  const offset = (gateLow & 0xffff) | ((gateLow >> 32) & 0xffff0000) | ((gateHigh & 0xffffffff) << 32);
  const ist = <i32>((gateLow >> 32) & 7);
  if (!isLongCode(descAttr)) { raise(VEC_GP, (selector & 0xfffc) | (external ? 1 : 0), true); return false; }
  if (!isCanonical(offset)) { raise(VEC_GP, external ? 1 : 0, true); return false; }
  const conforming = (descAttr & 0x4) != 0;
  const newCpl = conforming ? cpl : attrDpl(descAttr);
  const codeBase = descBase, codeLimit = descLimit, codeAttr = descAttr;
  const oldSs = <u64>load<u16>(segField(SEG_SS, SEG_SELECTOR));
  const oldSp = getReg64(RSP);
  const oldCs = <u64>load<u16>(segField(SEG_CS, SEG_SELECTOR));
  const flags = getFlags();
  let sp = oldSp;
  if (newCpl < cpl || ist != 0) {
    if (!readTssStack(newCpl, ist)) return false;
    sp = tssStackPointer;
  }
  sp &= ~(<u64>15); // the frame is 16-byte aligned (SDM Vol. 3A, 6.14.2)
  const frame: i32 = hasError ? 6 : 5;
  const top = sp - <u64>(frame * 8);
  if (translate(top, frame * 8, ACC_WRITE) == 0) return false;
  stackWrite(0, sp - 8, 8, oldSs);
  stackWrite(0, sp - 16, 8, oldSp);
  stackWrite(0, sp - 24, 8, flags);
  stackWrite(0, sp - 32, 8, oldCs);
  stackWrite(0, sp - 40, 8, returnRip);
  if (hasError) stackWrite(0, sp - 48, 8, <u64>error);
  if (newCpl < cpl) setSegment(SEG_SS, <u32>newCpl, 0, 0, 0); // NULL SS with RPL = new CPL
  setReg64(RSP, top);
  let nf = flags & ~(<u64>(FLAG_TF | FLAG_NT | FLAG_RF | FLAG_VM));
  if (((gateLow >> 40) & 1) == 0) nf &= ~(<u64>FLAG_IF);
  setFlags(nf);
  setSegment(SEG_CS, (selector & 0xfffc) | <u32>newCpl, codeBase, codeLimit, codeAttr | 1);
  setRip(offset);
  return true;
}

/** Exception classes for double-fault detection (SDM Vol. 3A, Table 6-4). */
function exceptionClass(v: i32): i32 {
  if (v == 14) return 2; // page fault
  if (v == 0 || (v >= 10 && v <= 13)) return 1; // contributory
  if (v == VEC_DF) return 3;
  return 0; // benign
}

/** Deliver a fault/trap raised by an instruction, applying the double- and triple-fault rules.
 *  Returns false on a triple fault (shutdown). */
export function deliverException(vector: i32, error: u32, hasError: bool, soft: bool, returnRip: u64): bool {
  let v = vector, err = error, hasErr = hasError, isSoft = soft;
  for (let attempt = 0; attempt < 3; attempt++) {
    // The IDT, the TSS and the handler's stack are accessed as supervisor (SDM Vol. 3A, 4.6).
    setImplicitSupervisor(true);
    const ok = deliver(v, err, hasErr, isSoft, !isSoft, returnRip);
    setImplicitSupervisor(false);
    if (ok) return true;
    // Delivery faulted: combine the first exception with the second one. An EPT violation is not
    // an exception: it goes to the host with the fault left pending (the caller restarts the event).
    const second = faultVector;
    if (second == EPT_VIOLATION_VECTOR) return false;
    const secondErr = faultError;
    clearFault();
    const first = exceptionClass(v), next = exceptionClass(second);
    if (first == 3) return false; // fault while delivering #DF: triple fault
    if ((first == 1 && next == 1) || (first == 2 && next != 0)) {
      v = VEC_DF; err = 0; hasErr = true; isSoft = false;
    } else {
      v = second; err = secondErr; hasErr = second == 8 || (second >= 10 && second <= 14) || second == 17;
      isSoft = false;
    }
  }
  return false;
}

/** IRET/IRETD/IRETQ (SDM Vol. 2A, IRET): same-privilege and outer-privilege returns; nested-task
 *  and virtual-8086 returns are not implemented (#GP is raised and counted by the caller). */
export function iret(size: i32): void {
  const ssBase = load<u64>(segField(SEG_SS, SEG_BASE));
  const rsp = getReg64(RSP);
  const width = mode64Lma() && size == 8 ? 8 : size;
  const spMask: u64 = realMode ? 0xffff : (load<u16>(segField(SEG_SS, SEG_ATTR)) & 0x4000) != 0 || mode64Lma() ? <u64>-1 : 0xffff;
  const sp = rsp & spMask;
  const newIp = stackRead(ssBase, sp, width);
  const newCs = <u32>stackRead(ssBase, sp + <u64>width, width) & 0xffff;
  const newFlags = stackRead(ssBase, sp + <u64>(2 * width), width);
  if (faultVector >= 0) return;
  if (realMode) {
    loadCodeSegment(newCs, 0);
    setReg64(RSP, (rsp & ~spMask) | ((sp + <u64>(3 * width)) & spMask));
    writeFlags(newFlags, width, 0);
    setRip(width == 2 ? newIp & 0xffff : newIp);
    return;
  }
  const flagsNow = getFlags();
  if ((flagsNow & FLAG_NT) != 0 && !mode64Lma()) { raise(VEC_GP, 0, true); return; } // task return
  if (!readDescriptor(newCs, VEC_GP)) return;
  const rpl = <i32>(newCs & 3);
  const a = descAttr;
  if (!isCodeAttr(a) || rpl < cpl || ((a & 0x4) != 0 ? attrDpl(a) > rpl : attrDpl(a) != rpl)) {
    raise(VEC_GP, newCs & 0xfffc, true); return;
  }
  if ((a & SEG_ATTR_P) == 0) { raise(VEC_NP, newCs & 0xfffc, true); return; }
  const codeBase = descBase, codeLimit = descLimit, codeAttr = descAttr;
  const oldCpl = cpl;
  if (rpl > cpl || (mode64Lma() && width == 8)) {
    // Outer privilege (or IRETQ, which always pops SS:RSP): pop the stack too.
    const newSp = stackRead(ssBase, sp + <u64>(3 * width), width);
    const newSs = <u32>stackRead(ssBase, sp + <u64>(4 * width), width) & 0xffff;
    if (faultVector >= 0) return;
    setSegment(SEG_CS, newCs, codeBase, codeLimit, codeAttr | 1);
    if (!(mode64Lma() && (newSs & 0xfffc) == 0 && rpl < 3) && !loadStackSelector(newSs, rpl)) return;
    if ((newSs & 0xfffc) == 0) setSegment(SEG_SS, newSs, 0, 0, 0);
    setReg64(RSP, width == 2 ? (newSp & 0xffff) | (getReg64(RSP) & ~(<u64>0xffff)) : newSp & sizeMask(width));
    if (rpl > oldCpl) nullDataSegmentsBelow(rpl);
  } else {
    setSegment(SEG_CS, newCs, codeBase, codeLimit, codeAttr | 1);
    setReg64(RSP, (rsp & ~spMask) | ((sp + <u64>(3 * width)) & spMask));
  }
  writeFlags(newFlags, width, oldCpl);
  setRip(width == 2 ? newIp & 0xffff : width == 4 ? newIp & 0xffffffff : newIp);
}

/** Load SS:ESP on a return to an outer level (SDM Vol. 2A, IRET "RETURN-TO-OUTER-PRIVILEGE-LEVEL"). */
export function loadStackSelector(selector: u32, rpl: i32): bool {
  if ((selector & 0xfffc) == 0 || <i32>(selector & 3) != rpl) { raise(VEC_GP, selector & 0xfffc, true); return false; }
  if (!readDescriptor(selector, VEC_GP)) return false;
  const a = descAttr;
  if (attrDpl(a) != rpl || (a & 0x18) != 0x10 || (a & 0x2) == 0) { raise(VEC_GP, selector & 0xfffc, true); return false; }
  if ((a & SEG_ATTR_P) == 0) { raise(VEC_SS, selector & 0xfffc, true); return false; }
  setSegment(SEG_SS, selector, descBase, descLimit, descAttr | 1);
  return true;
}

/** Flags restored by IRET/POPF: IOPL only at CPL 0, IF only when CPL <= IOPL; VM, VIF, VIP kept. */
export function writeFlags(v: u64, width: i32, atCpl: i32): void {
  const now = getFlags();
  let mask: u64 = 0x3f7fd5 & ~(<u64>(FLAG_VM | FLAG_VIF | FLAG_VIP)); // every writable flag
  const iopl = <i32>((now & FLAG_IOPL) >> 12);
  if (!realMode && atCpl > 0) mask &= ~(<u64>FLAG_IOPL);
  if (!realMode && atCpl > iopl) mask &= ~(<u64>FLAG_IF);
  if (width == 2) mask &= 0xffff;
  setFlags((now & ~mask) | (v & mask));
}
