// System and legacy-mode instructions: HLT, CLI/STI, IN/OUT (port I/O exits), MOV to/from control
// registers, descriptor-table loads and stores, RDMSR/WRMSR, far JMP/CALL/RET, INT n/INTO/IRET,
// segment-register moves, PUSHA/POPA, INC/DEC 40-4F, the BCD adjusts, BOUND and ARPL.
// SDM Vol. 2 for each instruction; Vol. 3A chapters 2-6 for the system state they touch.
import {
  ST_IO_PORT, ST_IO_SIZE, ST_IO_DIR, ST_IO_DATA, ST_IO_PENDING_IN, IO_IN, IO_OUT, ST_CR0, ST_CR2, ST_CR3,
  ST_CR4, ST_CR8, ST_EFER, ST_GDTR_BASE, ST_GDTR_LIMIT, ST_IDTR_BASE, ST_IDTR_LIMIT, ACC_READ, ACC_WRITE,
  FLAG_IF, FLAG_IOPL, FLAG_OF, FLAG_CF, FLAG_AF, FLAG_ZF, FLAG_SF, FLAG_PF, CR0_PE, CR0_PG, CR0_TS, CR0_ET,
  EFER_LME, EFER_LMA, EFER_SCE, EFER_NXE, SEG_CS, SEG_SS, SEG_ES, SEG_DS, SEG_FS, SEG_GS, SEG_LDTR,
  SEG_TR, SEG_SELECTOR, SEG_BASE, VEC_GP, VEC_BR, VEC_OF, VEC_UD, LF_INC, LF_DEC, ST_TSC_OFFSET,
  SEG_ATTR_P, SEG_ATTR_S, ST_DR0, ST_DR6, ST_DR7, ST_XCR0,
} from '../../abi';
import {
  cpu, realMode, mode64, cpl, getReg64, setReg64, setRip, updateMode, segField, sizeMask, sext, loadSized,
  storeSized, flatHarness, stackWidth,
} from '../state';
import { getFlags, setFlags, getCF, getAF, setArithFlags, szpFlags, lazyKeepCF } from '../flags';
import { raise, raiseGP0, raiseUD, raiseTrap, requestStop, faultVector, isCanonical } from '../fault';
import {
  opIdx, osize, asize, ext, imm, imm2, isMem, ea, eaOffset, mod, modrm, rmField, regField, nextRip, seg,
} from '../decode';
import { refreshCacheKey, linearMappingsChanged, linearPageChanged } from '../code-cache';
import { getReg, setReg, rmPtr, putRM, getG, setG } from '../operands';
import { translate, refreshDataBreakpoints } from '../../mmu/translate';
import { hostMsrRead, hostMsrWrite } from '../../host-imports';
import { MSR_DATA, VCPU_AREA_BASE, VCPU_STRIDE, FLAG_AC, ST_PLE_WINDOW, ST_PLE_GAP, ST_PLE_LAST, ST_PLE_LOOP_START, CPUB_AMD_MSRS } from '../../abi';
import { modelHas } from '../model';
import { cr0Written, cr3Written, cr4Written, eferWritten, invlpg, invpcid } from '../../mmu/control';
import { push, jumpTo } from './flow';
import {
  readDescriptor, descAttr, descBase, descLimit, checkCodeTarget, loadCodeSegment, loadDataSegment,
  setSegment, isLongCode, attrDpl, mode64Lma, descRaw, descHigh, readTssStack, tssStackPointer,
  tssStackSelector, nullDataSegmentsBelow,
} from '../system/segments';
import { deliverException, iret, stackWrite, loadStackForCpl, loadStackSelector } from '../system/interrupts';

export const STOP_NONE: i32 = 0;
export const STOP_HLT: i32 = 1;
export const STOP_IO: i32 = 2;
export const STOP_HYPERCALL: i32 = 3;
export const STOP_PAUSE_LOOP: i32 = 4;
/** Why the current instruction asked the run loop to stop (read by execute.ts). */
export let stopReason: i32 = STOP_NONE;
export function clearStop(): void { stopReason = STOP_NONE; }

@inline function iopl(): i32 { return <i32>((getFlags() & FLAG_IOPL) >> 12); }
/** Privileged instructions need CPL 0 (#GP(0) otherwise; SDM Vol. 3A, 5.9). */
@inline function requireCpl0(): bool {
  if (cpl == 0 && !flatHarness) return true;
  raiseGP0();
  return false;
}

// ---- HLT, CLI, STI ----
export function hlt(): void {
  if (!flatHarness && cpl != 0) { raiseGP0(); return; }
  stopReason = STOP_HLT;
  requestStop();
}

/** CLI/STI need CPL <= IOPL in protected mode (virtual-interrupt extensions are not implemented). */
export function cliSti(): void {
  if (!realMode && cpl > iopl()) { raiseGP0(); return; }
  const f = getFlags();
  setFlags(opIdx == 0xfa ? f & ~(<u64>FLAG_IF) : f | FLAG_IF);
  // STI's one-instruction interrupt shadow is applied by the run loop (interruptShadow).
  if (opIdx == 0xfb && (f & FLAG_IF) == 0) interruptShadow = true;
}
/** Set by STI and MOV/POP SS: external interrupts wait one instruction (SDM Vol. 3A, 6.8.3). */
export let interruptShadow: bool = false;
export function clearInterruptShadow(): void { interruptShadow = false; }
export function setInterruptShadow(): void { interruptShadow = true; }

// ---- Port I/O: an exit to the host, like KVM_EXIT_IO ----
/** IN/OUT with CPL > IOPL need the TSS I/O permission bitmap (SDM Vol. 1, 18.5.2). */
function ioAllowed(port: u32, size: i32): bool {
  if (realMode || (cpl <= iopl() && !flatHarness)) return true;
  if (flatHarness) { raiseGP0(); return false; }
  const trBase = load<u64>(segField(SEG_TR, SEG_BASE));
  const trLimit = <u64>load<u32>(segField(SEG_TR, 8));
  if (trLimit < 0x67) { raiseGP0(); return false; }
  const pb = translate(trBase + 0x66, 2, ACC_READ);
  if (pb == 0) return false;
  const mapOff = <u64>load<u16>(pb) + <u64>(port >> 3);
  if (mapOff + 1 > trLimit) { raiseGP0(); return false; }
  const pm = translate(trBase + mapOff, 2, ACC_READ);
  if (pm == 0) return false;
  const bits = <u32>load<u16>(pm) >> (port & 7);
  if ((bits & ((1 << size) - 1)) != 0) { raiseGP0(); return false; }
  return true;
}

export function portIo(): void {
  const size = (opIdx & 1) == 0 ? 1 : osize == 2 ? 2 : 4;
  const port = opIdx >= 0xec ? <u32>getReg64(2) & 0xffff : <u32>imm & 0xff;
  if (!ioAllowed(port, size)) return;
  const isIn = opIdx == 0xe4 || opIdx == 0xe5 || opIdx == 0xec || opIdx == 0xed;
  store<u32>(cpu + ST_IO_PORT, port);
  store<u32>(cpu + ST_IO_SIZE, size);
  store<u32>(cpu + ST_IO_DIR, isIn ? IO_IN : IO_OUT);
  if (isIn) {
    store<u32>(cpu + ST_IO_DATA, 0xffffffff);
    store<u32>(cpu + ST_IO_PENDING_IN, 1);
  } else {
    store<u32>(cpu + ST_IO_DATA, <u32>getReg(0, size));
  }
  stopReason = STOP_IO;
  requestStop();
}

/** Called at run() entry: an IN that exited gets the host's data (SDM: IN loads AL/AX/EAX). */
export function completePendingIn(): void {
  if (load<u32>(cpu + ST_IO_PENDING_IN) == 0) return;
  store<u32>(cpu + ST_IO_PENDING_IN, 0);
  setReg(0, <i32>load<u32>(cpu + ST_IO_SIZE), <u64>load<u32>(cpu + ST_IO_DATA));
}

// ---- Control registers (SDM Vol. 3A, 2.5; Vol. 2B, MOV—Move to/from Control Registers) ----
const CR0_RESERVED: u64 = 0xffffffff1ffaffc0;
const CR4_KNOWN: u64 = 0x3f07ff; // VME..OSXMMEXCPT, UMIP, FSGSBASE, PCIDE, OSXSAVE, SMEP, SMAP

export function movCr(): void {
  if (!requireCpl0()) return;
  const cr = regField;
  const toCr = opIdx == 0x122;
  const r = rmField; // the register operand (mod is ignored: always a register)
  if (!toCr) {
    let v: u64;
    switch (cr) {
      case 0: v = load<u64>(cpu + ST_CR0); break;
      case 2: v = load<u64>(cpu + ST_CR2); break;
      case 3: v = load<u64>(cpu + ST_CR3); break;
      case 4: v = load<u64>(cpu + ST_CR4); break;
      case 8: v = load<u64>(cpu + ST_CR8); break;
      default: raiseUD(); return;
    }
    if (mode64) setReg64(r, v); else setReg(r, 4, v);
    return;
  }
  const v = mode64 ? getReg64(r) : getReg64(r) & 0xffffffff;
  switch (cr) {
    case 0: writeCr0(v); break;
    case 2: store<u64>(cpu + ST_CR2, v); break;
    case 3: {
      // With CR4.PCIDE, bit 63 asks to keep the PCID's TLB entries and is not stored (SDM Vol. 3A, 4.10.4.1).
      const pcide = (load<u64>(cpu + ST_CR4) & 0x20000) != 0;
      const cr3 = pcide ? v & 0x7fffffffffffffff : v;
      if ((cr3 & 0x000fffffffffffff & ~((<u64>1 << 40) - 1)) != 0 && mode64) { raiseGP0(); return; } // above MAXPHYADDR
      const old = load<u64>(cpu + ST_CR3);
      store<u64>(cpu + ST_CR3, cr3);
      if (!cr3Written(pcide && (v >> 63) != 0)) { store<u64>(cpu + ST_CR3, old); cr3Written(true); return; }
      linearMappingsChanged();
      break;
    }
    case 4: {
      const old = load<u64>(cpu + ST_CR4);
      if ((v & ~CR4_KNOWN) != 0 || (mode64Lma() && (v & 0x20) == 0)) { raiseGP0(); return; }
      // PCIDE can be set only in IA-32e mode with CR3[11:0] = 0 (SDM Vol. 2B, MOV CR4).
      if ((v & ~old & 0x20000) != 0 && (!mode64Lma() || (load<u64>(cpu + ST_CR3) & 0xfff) != 0)) { raiseGP0(); return; }
      store<u64>(cpu + ST_CR4, v);
      if (!cr4Written(old)) { store<u64>(cpu + ST_CR4, old); cr4Written(v); return; }
      linearMappingsChanged();
      break;
    }
    case 8:
      if ((v & ~(<u64>15)) != 0) { raiseGP0(); return; }
      store<u64>(cpu + ST_CR8, v);
      break;
    default: raiseUD(); return;
  }
}

/** CR0 write with its #GP rules and the IA-32e activation (SDM Vol. 3A, 9.8.5). */
export function writeCr0(v: u64): void {
  if ((v & CR0_RESERVED) != 0 || ((v & CR0_PG) != 0 && (v & CR0_PE) == 0) || ((v & 0x60000000) == 0x20000000)) {
    raiseGP0(); return; // reserved bits, PG without PE, NW without CD
  }
  const old = load<u64>(cpu + ST_CR0);
  const oldEfer = load<u64>(cpu + ST_EFER);
  let efer = oldEfer;
  if ((v & CR0_PG) != 0 && (old & CR0_PG) == 0 && (efer & EFER_LME) != 0) {
    if ((load<u64>(cpu + ST_CR4) & 0x20) == 0) { raiseGP0(); return; } // IA-32e needs CR4.PAE
    efer |= EFER_LMA;
  } else if ((v & CR0_PG) == 0 && (old & CR0_PG) != 0) {
    if (mode64) { raiseGP0(); return; } // paging cannot be turned off in 64-bit mode
    efer &= ~(<u64>EFER_LMA);
  }
  store<u64>(cpu + ST_EFER, efer);
  store<u64>(cpu + ST_CR0, v | CR0_ET);
  if (!cr0Written(old)) { // a PAE PDPTE with reserved bits: #GP, nothing changes
    store<u64>(cpu + ST_CR0, old);
    store<u64>(cpu + ST_EFER, oldEfer);
    return;
  }
  updateMode();
  refreshCacheKey();
}

/** 0F 21 / 0F 23: MOV from/to DR0-DR7 (SDM Vol. 3B, 18.2). DR4/DR5 alias DR6/DR7 unless CR4.DE;
 *  breakpoints are stored but not yet matched against accesses (single-step via TF works). */
export function movDr(): void {
  if (!requireCpl0()) return;
  let dr = regField;
  if (dr == 4 || dr == 5) {
    if ((load<u64>(cpu + ST_CR4) & 0x8) != 0) { raiseUD(); return; }
    dr += 2;
  }
  if (dr > 7) { raiseUD(); return; }
  const r = rmField;
  if (opIdx == 0x121) {
    let v: u64;
    if (dr < 4) v = load<u64>(cpu + ST_DR0 + <usize>dr * 8);
    else if (dr == 6) v = <u64>load<u32>(cpu + ST_DR6) | 0xffff0ff0;
    else v = <u64>load<u32>(cpu + ST_DR7) | 0x400;
    if (mode64) setReg64(r, v); else setReg(r, 4, v);
    return;
  }
  const v = mode64 ? getReg64(r) : getReg64(r) & 0xffffffff;
  if (dr < 4) { store<u64>(cpu + ST_DR0 + <usize>dr * 8, v); return; }
  if ((v >> 32) != 0) { raiseGP0(); return; } // DR6/DR7 upper halves are reserved (#GP)
  if (dr == 6) store<u32>(cpu + ST_DR6, <u32>v);
  else { store<u32>(cpu + ST_DR7, <u32>v); refreshDataBreakpoints(); }
}

/** 0F 00 /4 VERR, /5 VERW: ZF = the segment is readable/writable at CPL and RPL (SDM Vol. 2B). */
function verify(write: bool): void {
  const p = rmPtr(2, ACC_READ);
  if (p == 0) return;
  const sel = <u32>load<u16>(p);
  let ok = false;
  if ((sel & 0xfffc) != 0 && readDescriptorQuiet(sel)) {
    const a = descAttr;
    const code = (a & 0x18) == 0x18, conforming = (a & 0x1c) == 0x1c;
    const visible = conforming || (attrDpl(a) >= cpl && attrDpl(a) >= <i32>(sel & 3));
    if ((a & SEG_ATTR_S) != 0 && visible) ok = write ? !code && (a & 2) != 0 : !code || (a & 2) != 0;
  }
  setArithFlags(FLAG_ZF, ok ? FLAG_ZF : 0);
}

/** 0F 02 LAR, 0F 03 LSL: access rights or limit of a descriptor the CPL may see (ZF = valid). */
export function larLsl(): void {
  if (realMode) { raiseUD(); return; }
  const p = rmPtr(2, ACC_READ);
  if (p == 0) return;
  const sel = <u32>load<u16>(p);
  let ok = false;
  if ((sel & 0xfffc) != 0 && readDescriptorQuiet(sel)) {
    const a = descAttr;
    const conforming = (a & 0x1c) == 0x1c;
    const type = a & 0x1f;
    // System types allowed: TSS, LDT (and call gates for LAR, not modelled here).
    const system = (a & SEG_ATTR_S) == 0;
    const allowedSystem = type == 1 || type == 2 || type == 3 || type == 9 || type == 11;
    const visible = conforming || (attrDpl(a) >= cpl && attrDpl(a) >= <i32>(sel & 3));
    ok = visible && (!system || allowedSystem);
    if (ok) {
      if (opIdx == 0x102) {
        // The access-rights dword: bits 8-23 of the descriptor's high dword, masked (0x00F0FF00).
        setG(osize, (<u64>(a & 0xff) << 8) | (<u64>((a >> 12) & 0xf) << 20));
      } else {
        setG(osize, <u64>descLimit & sizeMask(osize));
      }
    }
  }
  setArithFlags(FLAG_ZF, ok ? FLAG_ZF : 0);
}

/** Read a descriptor for LAR/LSL/VERR/VERW: a selector outside the table gives ZF = 0, no fault. */
function readDescriptorQuiet(sel: u32): bool {
  const index = <u64>(sel & 0xfff8);
  const limit = (sel & 4) != 0 ? <u64>load<u32>(segField(SEG_LDTR, 8)) : <u64>load<u32>(cpu + ST_GDTR_LIMIT);
  if (index + 7 > limit) return false;
  return readDescriptor(sel, VEC_GP);
}

/** 0F 06 CLTS; 0F 01 /4 SMSW; 0F 01 /6 LMSW. */
export function clts(): void {
  if (!requireCpl0()) return;
  store<u64>(cpu + ST_CR0, load<u64>(cpu + ST_CR0) & ~(<u64>CR0_TS));
}

/** 0F 08 INVD, 0F 09 WBINVD: privileged (SDM Vol. 2A INVD/WBINVD, "#GP(0) If the current privilege
 *  level is not 0"); hvlab has no caches to invalidate or write back. */
export function invdWbinvd(): void {
  requireCpl0();
}

// ---- Descriptor tables: 0F 00 and 0F 01 groups ----
export function group6(): void { // 0F 00: SLDT STR LLDT LTR VERR VERW
  if (realMode) { raiseUD(); return; }
  switch (ext) {
    case 0: storeSelector(SEG_LDTR); break;
    case 1: storeSelector(SEG_TR); break;
    case 2: loadSystemSegment(SEG_LDTR); break;
    case 3: loadSystemSegment(SEG_TR); break;
    case 4: verify(false); break;
    case 5: verify(true); break;
    default: raiseUD(); break;
  }
}

function storeSelector(s: i32): void {
  const v = <u64>load<u16>(segField(s, SEG_SELECTOR));
  if (isMem) { const p = rmPtr(2, ACC_WRITE); if (p != 0) store<u16>(p, <u16>v); }
  else setReg(rmField, osize, v);
}

/** LLDT/LTR: load LDTR or TR from the GDT (SDM Vol. 2A, LLDT/LTR). */
function loadSystemSegment(s: i32): void {
  if (!requireCpl0()) return;
  const p = rmPtr(2, ACC_READ);
  if (p == 0) return;
  const sel = <u32>load<u16>(p);
  if ((sel & 0xfffc) == 0) {
    if (s == SEG_TR) { raiseGP0(); return; }
    setSegment(s, sel, 0, 0, 0);
    return;
  }
  if ((sel & 4) != 0) { raise(VEC_GP, sel & 0xfffc, true); return; }
  if (!readDescriptor(sel, VEC_GP)) return;
  const type = descAttr & 0x1f;
  const ok = s == SEG_LDTR ? type == 0x02 : (type == 0x09 || type == 0x01);
  if (!ok) { raise(VEC_GP, sel & 0xfffc, true); return; }
  if ((descAttr & SEG_ATTR_P) == 0) { raise(11, sel & 0xfffc, true); return; }
  if (s == SEG_TR) {
    // Mark the TSS busy in the GDT (type 9 -> 11).
    const d = translate(load<u64>(cpu + ST_GDTR_BASE) + <u64>(sel & 0xfff8) + 5, 1, ACC_WRITE);
    if (d == 0) return;
    store<u8>(d, load<u8>(d) | 2);
    setSegment(s, sel, descBase, descLimit, descAttr | 2);
  } else {
    setSegment(s, sel, descBase, descLimit, descAttr);
  }
}

export function group7(): void { // 0F 01: SGDT SIDT LGDT LIDT SMSW LMSW INVLPG, and register forms
  if (mod == 3) {
    const m = <i32>(modrm & 0xff);
    if (m == 0xf8) swapgs();
    else if (m == 0xf9) rdtscp();
    else if (m == 0xd0) xgetbv();
    else if (m == 0xd1) xsetbv();
    else if (m == 0xca || m == 0xcb) clacStac(m == 0xcb);
    else if (m == 0xc1 || m == 0xd9) hypercall();
    else unimplementedSystem(); // MONITOR/MWAIT, XGETBV/XSETBV, ...: not yet
    return;
  }
  switch (ext) {
    case 0: storeTable(ST_GDTR_BASE, ST_GDTR_LIMIT); break;
    case 1: storeTable(ST_IDTR_BASE, ST_IDTR_LIMIT); break;
    case 2: loadTable(ST_GDTR_BASE, ST_GDTR_LIMIT); break;
    case 3: loadTable(ST_IDTR_BASE, ST_IDTR_LIMIT); break;
    case 4: { // SMSW
      const v = load<u64>(cpu + ST_CR0);
      if (isMem) { const p = rmPtr(2, ACC_WRITE); if (p != 0) store<u16>(p, <u16>v); }
      else setReg(rmField, osize, v & sizeMask(osize));
      break;
    }
    case 6: { // LMSW: PE can be set, not cleared; MP EM TS are loaded
      if (!requireCpl0()) return;
      const p = rmPtr(2, ACC_READ);
      if (p == 0) return;
      const v = <u64>load<u16>(p);
      const cr0 = load<u64>(cpu + ST_CR0);
      writeCr0((cr0 & ~(<u64>0xe)) | (v & 0xf) | (cr0 & CR0_PE));
      break;
    }
    case 7: // INVLPG; decoded instructions found by that linear page are revalidated
      if (requireCpl0()) { invlpg(ea); linearPageChanged(ea); }
      break;
    default: raiseUD(); break;
  }
}

/** 0F 01 C1 VMCALL (Intel) and 0F 01 D9 VMMCALL (AMD): in a guest, an exit to the hypervisor at
 *  any CPL (SDM Vol. 3C, 25.1.3; AMD APM Vol. 3, VMMCALL). Both are accepted whatever the CPU model,
 *  as KVM does after patching the other one. The instruction completes (RIP past it) and the host
 *  handles the call (the KVM hypercall ABI: number in RAX, result in RAX). */
function hypercall(): void {
  stopReason = STOP_HYPERCALL;
  requestStop();
}

/** F3 90 PAUSE. With pause-loop exiting on (ST_PLE_WINDOW != 0), at CPL 0: a PAUSE more than PLE_GAP
 *  after the previous one starts a loop; one more than PLE_WINDOW after its loop's first exits to the
 *  host (SDM Vol. 3C, 26.1.3 "PAUSE-Loop Exiting"; time here is instructions retired). */
export function pause(now: u64): void {
  const window = load<u32>(cpu + ST_PLE_WINDOW);
  if (window == 0 || cpl != 0 || flatHarness) return;
  const last = load<u64>(cpu + ST_PLE_LAST);
  store<u64>(cpu + ST_PLE_LAST, now);
  if (last == 0 || now - last > <u64>load<u32>(cpu + ST_PLE_GAP)) { store<u64>(cpu + ST_PLE_LOOP_START, now); return; }
  if (now - load<u64>(cpu + ST_PLE_LOOP_START) <= <u64>window) return;
  store<u64>(cpu + ST_PLE_LAST, 0); // the next PAUSE starts a new loop
  stopReason = STOP_PAUSE_LOOP;
  requestStop();
}

/** 0F 01 CA / CB: CLAC / STAC clear or set RFLAGS.AC, which lets the kernel reach user pages under
 *  SMAP (SDM Vol. 2A, CLAC; #UD outside CPL 0). */
function clacStac(set: bool): void {
  if (realMode || cpl != 0) { raiseUD(); return; }
  const f = getFlags();
  setFlags(set ? f | FLAG_AC : f & ~(<u64>FLAG_AC));
}

/** 66 0F 38 82: INVPCID r, m128 (SDM Vol. 2A, INVPCID): the type in the register, the descriptor
 *  (PCID in bits 11:0, bits 63:12 reserved, then a linear address) in memory. */
export function invpcidInstr(): void {
  if (!isMem) { raiseUD(); return; }
  if (!requireCpl0()) return;
  const type = mode64 ? getReg64(regField) : getReg64(regField) & 0xffffffff;
  if (type > 3) { raiseGP0(); return; }
  const p = translate(ea, 16, ACC_READ);
  if (p == 0) return;
  const desc = load<u64>(p), lin = load<u64>(p + 8);
  const pcid = <u32>desc & 0xfff;
  const pcide = (load<u64>(cpu + ST_CR4) & 0x20000) != 0;
  if ((desc >> 12) != 0 || (type == 0 && !isCanonical(lin)) || (type <= 1 && !pcide && pcid != 0)) { raiseGP0(); return; }
  invpcid(<u32>type, pcid, lin);
  if (type == 0) linearPageChanged(lin); else linearMappingsChanged();
}

/** The pseudo-descriptor: limit (16 bits) then base (24/32 bits outside 64-bit mode, 64 in it). */
function loadTable(baseAt: usize, limitAt: usize): void {
  if (!requireCpl0()) return;
  const size = mode64 ? 10 : 6;
  const p = translate(ea, size, ACC_READ);
  if (p == 0) return;
  const limit = <u32>load<u16>(p);
  let base: u64 = mode64 ? load<u64>(p + 2) : <u64>load<u32>(p + 2);
  if (!mode64 && osize == 2) base &= 0xffffff;
  if (mode64 && !isCanonical(base)) { raiseGP0(); return; }
  store<u64>(cpu + baseAt, base);
  store<u32>(cpu + limitAt, limit);
}
function storeTable(baseAt: usize, limitAt: usize): void {
  const size = mode64 ? 10 : 6;
  const p = translate(ea, size, ACC_WRITE);
  if (p == 0) return;
  store<u16>(p, <u16>load<u32>(cpu + limitAt));
  if (mode64) store<u64>(p + 2, load<u64>(cpu + baseAt));
  else store<u32>(p + 2, <u32>load<u64>(cpu + baseAt));
}

// ---- MSRs (SDM Vol. 4) ----
const MSR_TSC: u32 = 0x10;
const MSR_APIC_BASE: u32 = 0x1b;
const MSR_MISC_ENABLE: u32 = 0x1a0;
const MSR_PAT: u32 = 0x277;
const MSR_EFER: u32 = 0xc0000080;
const MSR_FS_BASE: u32 = 0xc0000100;
const MSR_GS_BASE: u32 = 0xc0000101;
/** AMD's NB_CFG (APM / BKDG "MSRC001_001F Northbridge Configuration"), which Linux's amd_bus.c
 *  reads and writes on every AMD CPU: in a VM it reads as 0 and ignores writes, as KVM
 *  (kvm_get_msr_common, MSR_AMD64_NB_CFG). Only in the AMD model (CPUB_AMD_MSRS). */
const MSR_AMD64_NB_CFG: u32 = 0xc001001f;

/** MSRs kept in a small table in the vCPU state (the rest of hvlab's MSRs come with their features). */
const MSR_TABLE: usize = 0x1600;
function msrSlot(msr: u32): usize {
  switch (msr) {
    case 0x174: return 0; // SYSENTER_CS
    case 0x175: return 1; // SYSENTER_ESP
    case 0x176: return 2; // SYSENTER_EIP
    case 0xc0000081: return 3; // STAR
    case 0xc0000082: return 4; // LSTAR
    case 0xc0000083: return 5; // CSTAR
    case 0xc0000084: return 6; // SFMASK
    case 0xc0000102: return 7; // KERNEL_GS_BASE
    case 0xc0000103: return 8; // TSC_AUX
    case MSR_APIC_BASE: return 9;
    case MSR_PAT: return 10;
    case MSR_MISC_ENABLE: return 11;
    case 0xfe: return 12; // MTRRCAP
    case 0x2ff: return 13; // MTRR_DEF_TYPE
    default:
      if (msr >= 0x200 && msr < 0x210) return 14 + <usize>(msr - 0x200); // variable MTRRs
      if (msr == 0x250 || msr == 0x258 || msr == 0x259 || (msr >= 0x268 && msr <= 0x26f)) return 30 + <usize>(msr & 0x1f); // fixed MTRRs
      return <usize>-1;
  }
}

/** MSRs of host devices (the local APIC: IA32_APIC_BASE, TSC_DEADLINE, the x2APIC range). */
/** MSRs the VMM models: the local APIC's (IA32_APIC_BASE, TSC_DEADLINE, x2APIC) and KVM's
 *  paravirtual ones (0x4b564d00-0x4b564dff; emu/machine/kvm-pv.ts). */
function hostOwnedMsr(msr: u32): bool {
  return msr == 0x1b || msr == 0x6e0 || (msr >= 0x800 && msr <= 0x8ff) || (msr >> 8) == 0x4b564d;
}
function vcpuIndex(): i32 { return <i32>((cpu - <usize>VCPU_AREA_BASE) / <usize>VCPU_STRIDE); }

export function rdmsr(): void {
  if (!requireCpl0()) return;
  const msr = <u32>getReg64(1);
  let v: u64;
  const host = hostOwnedMsr(msr) ? hostMsrRead(vcpuIndex(), <i32>msr) : -1;
  if (host == 0) { raiseGP0(); return; }
  if (host == 1) v = load<u64>(MSR_DATA);
  else if (msr == MSR_EFER) v = load<u64>(cpu + ST_EFER);
  else if (msr == MSR_FS_BASE) v = load<u64>(segField(SEG_FS, SEG_BASE));
  else if (msr == MSR_GS_BASE) v = load<u64>(segField(SEG_GS, SEG_BASE));
  else if (msr == MSR_TSC) v = load<u64>(cpu + ST_TSC_OFFSET); // the run loop adds instructions retired
  else if (msr == MSR_AMD64_NB_CFG && modelHas(CPUB_AMD_MSRS)) v = 0;
  else {
    const slot = msrSlot(msr);
    if (slot == <usize>-1) { raiseGP0(); return; }
    v = load<u64>(cpu + MSR_TABLE + slot * 8);
  }
  setReg64(0, v & 0xffffffff);
  setReg64(2, v >> 32);
}

export function wrmsr(): void {
  if (!requireCpl0()) return;
  const msr = <u32>getReg64(1);
  const v = (getReg64(0) & 0xffffffff) | (getReg64(2) << 32);
  if (hostOwnedMsr(msr)) {
    store<u64>(MSR_DATA, v);
    const host = hostMsrWrite(vcpuIndex(), <i32>msr);
    if (host == 0) { raiseGP0(); return; }
    if (host == 1) return;
  }
  if (msr == MSR_EFER) {
    // SCE, LME, NXE writable; LMA is read-only; LME cannot change while paging is on.
    const old = load<u64>(cpu + ST_EFER);
    if ((v & ~(<u64>(EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE))) != 0) { raiseGP0(); return; }
    if ((load<u64>(cpu + ST_CR0) & CR0_PG) != 0 && ((v ^ old) & EFER_LME) != 0) { raiseGP0(); return; }
    store<u64>(cpu + ST_EFER, (v & ~(<u64>EFER_LMA)) | (old & EFER_LMA));
    eferWritten(old);
    return;
  }
  if (msr == MSR_FS_BASE || msr == MSR_GS_BASE) {
    if (!isCanonical(v)) { raiseGP0(); return; }
    store<u64>(segField(msr == MSR_FS_BASE ? SEG_FS : SEG_GS, SEG_BASE), v);
    return;
  }
  if (msr == MSR_AMD64_NB_CFG && modelHas(CPUB_AMD_MSRS)) return; // ignored
  const slot = msrSlot(msr);
  if (slot == <usize>-1) { raiseGP0(); return; }
  store<u64>(cpu + MSR_TABLE + slot * 8, v);
}

// ---- Far transfers ----
/** Far JMP/CALL to selector:offset, directly to a code segment (call gates: not yet). */
function farTransfer(selector: u32, offset: u64, isCall: bool): void {
  if (realMode) {
    if (isCall) {
      if (!push(<u64>load<u16>(segField(SEG_CS, SEG_SELECTOR)), osize)) return;
      if (!push(nextRip, osize)) return;
    }
    loadCodeSegment(selector, 0);
    setRip(offset & sizeMask(osize));
    refreshCacheKey();
    return;
  }
  if ((selector & 0xfffc) == 0) { raiseGP0(); return; }
  if (!readDescriptor(selector, VEC_GP)) return;
  const level = checkCodeTarget(selector);
  if (level == -2) {
    const type = descAttr & 0x1f;
    if (type == 0x0c || type == 0x04) { callGate(selector, isCall); return; }
    unimplementedSystem(); // task gates and TSS targets: hardware task switching is not implemented
    return;
  }
  if (level < 0) return;
  if (isCall) {
    const size = osize;
    if (!push(<u64>load<u16>(segField(SEG_CS, SEG_SELECTOR)), size)) return;
    if (!push(nextRip, size)) return;
  }
  const target = mode64Lma() && isLongCode(descAttr) ? offset : offset & sizeMask(osize == 8 ? 4 : osize);
  loadCodeSegment(selector, cpl);
  setRip(target);
  refreshCacheKey();
}

/** Far JMP/CALL through a call gate (SDM Vol. 3A, 5.8.3-5.8.6): 16- and 32-bit gates, and 64-bit
 *  gates in IA-32e mode. A CALL to a more privileged non-conforming segment switches to the TSS stack
 *  of the new level and copies the gate's parameter count (32/16-bit gates only). */
function callGate(gateSelector: u32, isCall: bool): void {
  const gateAttr = descAttr;
  const gateDpl = attrDpl(gateAttr);
  const rpl = <i32>(gateSelector & 3);
  if (gateDpl < cpl || gateDpl < rpl) { raise(VEC_GP, gateSelector & 0xfffc, true); return; }
  if ((gateAttr & SEG_ATTR_P) == 0) { raise(11, gateSelector & 0xfffc, true); return; }
  const long = mode64Lma();
  if (long && (gateAttr & 0x1f) != 0x0c) { raise(VEC_GP, gateSelector & 0xfffc, true); return; }
  // Gate fields from the raw descriptor: selector in bits 16-31, offset 0-15 and 48-63 (+ high dword).
  const raw = descRaw;
  const gateBits: i32 = long ? 8 : (gateAttr & 0x8) != 0 ? 4 : 2;
  const target = <u32>((raw >> 16) & 0xffff);
  let offset = (raw & 0xffff) | (gateBits == 2 ? 0 : (raw >> 32) & 0xffff0000);
  if (long) offset |= (descHigh & 0xffffffff) << 32;
  const params = <i32>((raw >> 32) & 0x1f);
  if ((target & 0xfffc) == 0) { raiseGP0(); return; }
  if (!readDescriptor(target, VEC_GP)) return;
  const a = descAttr;
  const dpl = attrDpl(a);
  const conforming = (a & 0x4) != 0;
  if ((a & 0x18) != 0x18 || dpl > cpl || (!isCall && !conforming && dpl != cpl)) { raise(VEC_GP, target & 0xfffc, true); return; }
  if ((a & SEG_ATTR_P) == 0) { raise(11, target & 0xfffc, true); return; }
  if (long && !isLongCode(a)) { raise(VEC_GP, target & 0xfffc, true); return; }
  const codeBase = descBase, codeLimit = descLimit, codeAttr = descAttr;
  const oldCs = <u64>load<u16>(segField(SEG_CS, SEG_SELECTOR));
  if (isCall && !conforming && dpl < cpl) {
    // More privileged: new stack from the TSS, then old SS:ESP, the parameters, CS:EIP.
    const oldSs = <u64>load<u16>(segField(SEG_SS, SEG_SELECTOR));
    const oldSsBase = load<u64>(segField(SEG_SS, SEG_BASE));
    const oldMask = stackMask();
    const oldSp = getReg64(4) & oldMask;
    if (!readTssStack(dpl, 0)) return;
    const newSp = tssStackPointer;
    if (long) setSegment(SEG_SS, <u32>dpl, 0, 0, 0); // NULL SS with RPL = new CPL
    else if (!loadStackForCpl(tssStackSelector, dpl)) return;
    let sp = newSp;
    const ssBase = long ? 0 : load<u64>(segField(SEG_SS, SEG_BASE));
    const w = gateBits;
    sp -= <u64>w; if (!stackWrite(ssBase, sp, w, oldSs)) return;
    sp -= <u64>w; if (!stackWrite(ssBase, sp, w, oldSp)) return;
    for (let i = long ? -1 : params - 1; i >= 0; i--) {
      const q = translate(oldSsBase + ((oldSp + <u64>(i * w)) & oldMask), w, ACC_READ);
      if (q == 0) return;
      sp -= <u64>w; if (!stackWrite(ssBase, sp, w, loadSized(q, w))) return;
    }
    sp -= <u64>w; if (!stackWrite(ssBase, sp, w, oldCs)) return;
    sp -= <u64>w; if (!stackWrite(ssBase, sp, w, nextRip)) return;
    setReg64(4, long ? sp : sp & 0xffffffff);
    setSegment(SEG_CS, (target & 0xfffc) | <u32>dpl, codeBase, codeLimit, codeAttr | 1);
  } else {
    if (isCall) {
      if (!push(oldCs, gateBits)) return;
      if (!push(nextRip, gateBits)) return;
    }
    setSegment(SEG_CS, (target & 0xfffc) | <u32>cpl, codeBase, codeLimit, codeAttr | 1);
  }
  setRip(gateBits == 2 ? offset & 0xffff : offset);
  refreshCacheKey();
}

/** EA / 9A: JMP/CALL ptr16:16/32 (not in 64-bit mode). */
export function farDirect(): void {
  if (mode64) { raiseUD(); return; }
  // The immediate is offset (2 or 4 bytes) then selector: the decoder read it as one IMM_D/IMM_W
  // value (imm) plus the selector in imm2 for these opcodes (see decode IMM_FAR).
  farTransfer(<u32>imm2, imm, opIdx == 0x9a);
}

/** FF /3 CALL m16:16/32/64, FF /5 JMP m16:16/32/64. */
export function farIndirect(): void {
  if (!isMem) { raiseUD(); return; }
  const size = osize;
  const p = translate(ea, size + 2, ACC_READ);
  if (p == 0) return;
  const offset = loadSized(p, size);
  const selector = <u32>load<u16>(p + size);
  farTransfer(selector, offset, ext == 3);
}

/** CB / CA: RETF [imm16] (same privilege; returns to an outer level: not yet). */
export function retFar(): void {
  const size = osize;
  const rsp = getReg64(4);
  const ssBase = load<u64>(segField(SEG_SS, SEG_BASE));
  const spMask = stackMask();
  const sp = rsp & spMask;
  const p = translate(ssBase + sp, size * 2, ACC_READ);
  if (p == 0) return;
  const offset = loadSized(p, size);
  const selector = <u32>loadSized(p + size, size) & 0xffff;
  const release = <u64>(size * 2) + (opIdx == 0xca ? imm : 0);
  if (!realMode) {
    if ((selector & 0xfffc) == 0) { raiseGP0(); return; }
    if (!readDescriptor(selector, VEC_GP)) return;
    const rpl = <i32>(selector & 3);
    const a = descAttr;
    const conforming = (a & 0x4) != 0;
    if ((a & 0x18) != 0x18 || rpl < cpl || (conforming ? attrDpl(a) > rpl : attrDpl(a) != rpl)) {
      raise(VEC_GP, selector & 0xfffc, true); return;
    }
    if ((a & SEG_ATTR_P) == 0) { raise(11, selector & 0xfffc, true); return; }
    if (rpl > cpl) { retFarOuter(selector, offset, release, size, ssBase, sp); return; }
  }
  loadCodeSegment(selector, realMode ? 0 : cpl);
  setReg64(4, (rsp & ~spMask) | ((sp + release) & spMask));
  setRip(offset);
  refreshCacheKey();
}

/** RETF to an outer privilege level: also pops SS:ESP (after the imm16 parameter bytes), checks and
 *  loads SS, and nulls data segment registers the new level may not use (SDM Vol. 2B, RET). */
function retFarOuter(selector: u32, offset: u64, release: u64, size: i32, ssBase: u64, sp: u64): void {
  const rpl = <i32>(selector & 3);
  const codeBase = descBase, codeLimit = descLimit, codeAttr = descAttr;
  const q = translate(ssBase + sp + release, size * 2, ACC_READ);
  if (q == 0) return;
  const newSp = loadSized(q, size);
  const newSs = <u32>loadSized(q + size, size) & 0xffff;
  const long = mode64Lma() && size == 8;
  if (!(long && (newSs & 0xfffc) == 0) && !loadStackSelector(newSs, rpl)) return;
  if ((newSs & 0xfffc) == 0) setSegment(SEG_SS, newSs, 0, 0, 0);
  setSegment(SEG_CS, selector, codeBase, codeLimit, codeAttr | 1);
  const param = opIdx == 0xca ? imm : 0;
  const big = (load<u16>(segField(SEG_SS, 14)) & 0x4000) != 0 || long;
  const spNew = newSp + param;
  if (big) setReg64(4, size == 8 ? spNew : spNew & 0xffffffff);
  else setReg(4, 2, spNew);
  nullDataSegmentsBelow(rpl);
  setRip(offset);
  refreshCacheKey();
}


/** SP, ESP or RSP: the stack width of the mode (state.updateMode). */
@inline function stackMask(): u64 { return sizeMask(stackWidth); }

// ---- Software interrupts ----
/** CD INT n, CE INTO (not in 64-bit mode), CC INT3, F1 INT1: delivered by the run loop as traps. */
export function intN(): void {
  if (opIdx == 0xce) {
    if (mode64) { raiseUD(); return; }
    if ((getFlags() & FLAG_OF) == 0) return;
    raiseTrap(VEC_OF);
    return;
  }
  raiseTrap(<i32>(imm & 0xff));
}

/** CF IRET/IRETD/IRETQ. */
export function iretOp(): void { iret(osize); refreshCacheKey(); }

// ---- Segment registers ----
/** 8C MOV r/m16, Sreg; 8E MOV Sreg, r/m16. */
export function movSreg(): void {
  const s = ext;
  if (s > 5) { raiseUD(); return; }
  if (opIdx == 0x8c) {
    const v = <u64>load<u16>(segField(s, SEG_SELECTOR));
    if (isMem) { const p = rmPtr(2, ACC_WRITE); if (p != 0) store<u16>(p, <u16>v); }
    else setReg(rmField, osize == 2 ? 2 : 4, v);
    return;
  }
  if (s == SEG_CS) { raiseUD(); return; }
  const p = rmPtr(2, ACC_READ);
  if (p == 0) return;
  if (loadDataSegment(s, <u32>load<u16>(p)) && s == SEG_SS) interruptShadow = true;
}

/** 06/07/0E/16/17/1E/1F, 0F A0/A1/A8/A9: PUSH/POP segment registers. */
export function pushPopSreg(): void {
  let s: i32;
  let isPop: bool;
  if (opIdx < 0x100) { s = (opIdx >> 3) & 3; isPop = (opIdx & 1) != 0; if (mode64) { raiseUD(); return; } }
  else { s = opIdx >= 0x1a8 ? SEG_GS : SEG_FS; isPop = (opIdx & 1) != 0; }
  const size = mode64 ? ((osize == 2) ? 2 : 8) : osize;
  if (!isPop) { push(<u64>load<u16>(segField(s, SEG_SELECTOR)), size); return; }
  if (s == SEG_CS) { raiseUD(); return; }
  const sp = getReg64(4) & stackMask();
  const p = translate(load<u64>(segField(SEG_SS, SEG_BASE)) + sp, 2, ACC_READ);
  if (p == 0) return;
  if (!loadDataSegment(s, <u32>load<u16>(p))) return;
  setReg64(4, (getReg64(4) & ~stackMask()) | ((sp + <u64>size) & stackMask()));
  if (s == SEG_SS) interruptShadow = true;
}

/** C4 LES, C5 LDS (not in 64-bit mode), 0F B2 LSS, 0F B4 LFS, 0F B5 LGS: load a far pointer. */
export function loadFarPointer(): void {
  if (!isMem) { raiseUD(); return; }
  let s: i32;
  if (opIdx == 0xc4) s = SEG_ES; else if (opIdx == 0xc5) s = SEG_DS;
  else if (opIdx == 0x1b2) s = SEG_SS; else if (opIdx == 0x1b4) s = SEG_FS; else s = SEG_GS;
  if (opIdx < 0x100 && mode64) { raiseUD(); return; }
  const size = osize;
  const p = translate(ea, size + 2, ACC_READ);
  if (p == 0) return;
  const offset = loadSized(p, size);
  if (!loadDataSegment(s, <u32>load<u16>(p + size))) return;
  setG(size, offset);
}

// ---- Legacy-mode integer instructions ----
/** 40-47 INC r16/32, 48-4F DEC r16/32 (REX prefixes in 64-bit mode). */
export function incDecReg(): void {
  const r = opIdx & 7;
  const size = osize;
  const v = getReg(r, size);
  const dec = opIdx >= 0x48;
  const res = (dec ? v - 1 : v + 1) & sizeMask(size);
  lazyKeepCF(dec ? LF_DEC : LF_INC, size, res, v);
  setReg(r, size, res);
}

/** 60 PUSHA/PUSHAD, 61 POPA/POPAD (not in 64-bit mode). */
export function pushaPopa(): void {
  if (mode64) { raiseUD(); return; }
  const size = osize;
  if (opIdx == 0x60) {
    const sp0 = getReg(4, size);
    for (let r = 0; r < 8; r++) if (!push(r == 4 ? sp0 : getReg(r, size), size)) return;
    return;
  }
  const ssBase = load<u64>(segField(SEG_SS, SEG_BASE));
  const m = stackMask();
  const sp = getReg64(4) & m;
  const p = translate(ssBase + sp, size * 8, ACC_READ);
  if (p == 0) return;
  for (let r = 7; r >= 0; r--) {
    if (r != 4) setReg(r, size, loadSized(p + <usize>((7 - r) * size), size));
  }
  setReg64(4, (getReg64(4) & ~m) | ((sp + <u64>(size * 8)) & m));
}

/** 27 DAA, 2F DAS, 37 AAA, 3F AAS, D4 AAM, D5 AAD (SDM Vol. 2A: the pseudo-code, flags included). */
export function bcdAdjust(): void {
  if (mode64) { raiseUD(); return; }
  let al = getReg64(0) & 0xff;
  const cf = getCF(), af = getAF();
  switch (opIdx) {
    case 0x27: case 0x2f: { // DAA / DAS
      // DAA's second step sets CF from the original AL and CF alone ("ELSE CF <- 0"); DAS keeps
      // the borrow of the first step.
      const sub = opIdx == 0x2f;
      const oldAl = al;
      let newCf = false, newAf = false;
      if ((al & 0xf) > 9 || af) {
        al = sub ? (al - 6) & 0xff : (al + 6) & 0xff;
        newCf = cf || (sub ? oldAl < 6 : oldAl + 6 > 0xff);
        newAf = true;
      }
      if (oldAl > 0x99 || cf) { al = sub ? (al - 0x60) & 0xff : (al + 0x60) & 0xff; newCf = true; }
      else if (!sub) newCf = false;
      setReg(0, 1, al);
      setArithFlags(FLAG_CF | FLAG_AF | FLAG_SF | FLAG_ZF | FLAG_PF | FLAG_OF,
        (newCf ? FLAG_CF : 0) | (newAf ? FLAG_AF : 0) | szpFlags(al, 1));
      break;
    }
    case 0x37: case 0x3f: { // AAA: AX += 106h; AAS: AX -= 6, AH -= 1; then AL &= 0Fh
      const sub = opIdx == 0x3f;
      let ax = getReg64(0) & 0xffff;
      const adjust = (al & 0xf) > 9 || af;
      if (adjust) ax = sub ? ((((ax - 6) & 0xffff) - 0x100) & 0xffff) : (ax + 0x106) & 0xffff;
      ax = (ax & 0xff00) | (ax & 0x0f);
      setReg(0, 2, ax);
      setArithFlags(FLAG_CF | FLAG_AF | FLAG_SF | FLAG_ZF | FLAG_PF | FLAG_OF,
        (adjust ? FLAG_CF | FLAG_AF : 0) | szpFlags(ax & 0xff, 1));
      break;
    }
    case 0xd4: { // AAM imm8: #DE on 0
      const base = imm & 0xff;
      if (base == 0) { raise(0, 0, false); return; }
      const ah = al / base, nal = al % base;
      setReg(0, 2, (ah << 8) | nal);
      setArithFlags(FLAG_CF | FLAG_AF | FLAG_SF | FLAG_ZF | FLAG_PF | FLAG_OF, szpFlags(nal, 1));
      break;
    }
    default: { // D5 AAD imm8
      const ah = (getReg64(0) >> 8) & 0xff;
      const nal = (al + ah * (imm & 0xff)) & 0xff;
      setReg(0, 2, nal);
      setArithFlags(FLAG_CF | FLAG_AF | FLAG_SF | FLAG_ZF | FLAG_PF | FLAG_OF, szpFlags(nal, 1));
      break;
    }
  }
}

/** 62 BOUND r, m16&16/m32&32: #BR when the index is outside the bounds. */
export function bound(): void {
  if (mode64 || !isMem) { raiseUD(); return; }
  const size = osize;
  const p = translate(ea, size * 2, ACC_READ);
  if (p == 0) return;
  const idx = <i64>sext(getG(size), size);
  const lo = <i64>sext(loadSized(p, size), size), hi = <i64>sext(loadSized(p + size, size), size);
  if (idx < lo || idx > hi) raise(VEC_BR, 0, false);
}

/** 63 ARPL r/m16, r16 (protected mode only; MOVSXD in 64-bit mode). */
export function arpl(): void {
  if (realMode) { raiseUD(); return; }
  const p = rmPtr(2, ACC_WRITE);
  if (p == 0) return;
  const dst = <u64>load<u16>(p);
  const src = getG(2);
  if ((dst & 3) < (src & 3)) {
    putRM(p, 2, (dst & ~(<u64>3)) | (src & 3));
    setArithFlags(FLAG_ZF, FLAG_ZF);
  } else setArithFlags(FLAG_ZF, 0);
}

// ---- Fast system calls (SDM Vol. 2B SYSCALL/SYSRET, SYSENTER/SYSEXIT; Vol. 3A 5.8.7-5.8.8) ----
const MSR_SLOT_SYSENTER_CS: usize = 0, MSR_SLOT_SYSENTER_ESP: usize = 1, MSR_SLOT_SYSENTER_EIP: usize = 2;
const MSR_SLOT_STAR: usize = 3, MSR_SLOT_LSTAR: usize = 4, MSR_SLOT_CSTAR: usize = 5, MSR_SLOT_SFMASK: usize = 6;
const MSR_SLOT_KERNEL_GS: usize = 7, MSR_SLOT_TSC_AUX: usize = 8;
@inline function msr(slot: usize): u64 { return load<u64>(cpu + MSR_TABLE + slot * 8); }

/** Flat code/stack segments that SYSCALL/SYSRET/SYSENTER/SYSEXIT load without reading the GDT. */
function flatCode(selector: u32, dpl: u32, long: bool): void {
  setSegment(SEG_CS, selector, 0, 0xffffffff, (long ? 0xa09b : 0xc09b) | (dpl << 5)); // G, L or D, P, code
}
function flatStack(selector: u32, dpl: u32): void {
  setSegment(SEG_SS, selector, 0, 0xffffffff, 0xc093 | (dpl << 5));
}

/** 0F 05 SYSCALL (IA-32e mode, EFER.SCE): RCX = RIP, R11 = RFLAGS, CS/SS from STAR[47:32]. */
export function syscall(): void {
  if (!mode64Lma() || (load<u64>(cpu + ST_EFER) & EFER_SCE) == 0 || !mode64) { raiseUD(); return; }
  const star = msr(MSR_SLOT_STAR);
  const sel = <u32>((star >> 32) & 0xfffc);
  setReg64(1, nextRip);
  const flags = getFlags();
  setReg64(11, flags);
  setFlags(flags & ~msr(MSR_SLOT_SFMASK) & ~(<u64>0x10000)); // RF cleared
  flatCode(sel, 0, true);
  flatStack(sel + 8, 0);
  setRip(msr(MSR_SLOT_LSTAR));
  refreshCacheKey();
}

/** 0F 07 SYSRET: back to CPL 3 with RIP = RCX, RFLAGS = R11 (64-bit with REX.W). */
export function sysret(): void {
  if (!mode64Lma() || (load<u64>(cpu + ST_EFER) & EFER_SCE) == 0) { raiseUD(); return; }
  if (cpl != 0 || !mode64) { raiseGP0(); return; }
  const star = msr(MSR_SLOT_STAR);
  const base = <u32>((star >> 48) & 0xffff);
  const to64 = osize == 8;
  const rcx = getReg64(1);
  if (to64 && !isCanonical(rcx)) { raiseGP0(); return; } // Intel: #GP at CPL 0
  setFlags((getReg64(11) & 0x3c7fd7) | 2);
  if (to64) flatCode((base + 16) | 3, 3, true);
  else flatCode(base | 3, 3, false);
  // SS: selector (STAR[63:48] + 8) | 3; the hidden part is a flat writable data segment.
  flatStack((base + 8) | 3, 3);
  setRip(to64 ? rcx : rcx & 0xffffffff);
  refreshCacheKey();
}

/** 0F 01 F8 SWAPGS (64-bit mode, CPL 0): exchange GS.base and IA32_KERNEL_GS_BASE. */
function swapgs(): void {
  if (!mode64) { raiseUD(); return; }
  if (!requireCpl0()) return;
  const p = segField(SEG_GS, SEG_BASE);
  const k = msr(MSR_SLOT_KERNEL_GS);
  store<u64>(cpu + MSR_TABLE + MSR_SLOT_KERNEL_GS * 8, load<u64>(p));
  store<u64>(p, k);
}

/** 0F 01 F9 RDTSCP: RDTSC plus ECX = IA32_TSC_AUX. */
function rdtscp(): void {
  rdtscFromSystem();
  setReg64(1, msr(MSR_SLOT_TSC_AUX) & 0xffffffff);
}
export let rdtscRequest: bool = false;
function rdtscFromSystem(): void { rdtscRequest = true; }
export function clearRdtscRequest(): void { rdtscRequest = false; }

/** 0F 34 SYSENTER / 0F 35 SYSEXIT (protected mode; in IA-32e mode the 64-bit forms). */
export function sysenter(): void {
  if (realMode) { raiseGP0(); return; }
  const cs = <u32>msr(MSR_SLOT_SYSENTER_CS) & 0xfffc;
  if (cs == 0) { raiseGP0(); return; }
  setFlags(getFlags() & ~(<u64>(FLAG_IF | 0x20000 | 0x10000))); // IF, VM, RF
  const long = mode64Lma();
  flatCode(cs, 0, long);
  flatStack(cs + 8, 0);
  setReg64(4, long ? msr(MSR_SLOT_SYSENTER_ESP) : msr(MSR_SLOT_SYSENTER_ESP) & 0xffffffff);
  setRip(long ? msr(MSR_SLOT_SYSENTER_EIP) : msr(MSR_SLOT_SYSENTER_EIP) & 0xffffffff);
  refreshCacheKey();
}
export function sysexit(): void {
  if (realMode || cpl != 0) { raiseGP0(); return; }
  const cs = <u32>msr(MSR_SLOT_SYSENTER_CS) & 0xfffc;
  if (cs == 0) { raiseGP0(); return; }
  const to64 = osize == 8;
  if (to64) { flatCode((cs + 32) | 3, 3, true); flatStack((cs + 40) | 3, 3); }
  else { flatCode((cs + 16) | 3, 3, false); flatStack((cs + 24) | 3, 3); }
  setReg64(4, to64 ? getReg64(1) : getReg64(1) & 0xffffffff);
  setRip(to64 ? getReg64(2) : getReg64(2) & 0xffffffff);
  refreshCacheKey();
}

// ---- XCR0 (SDM Vol. 2B, XGETBV/XSETBV; Vol. 1, 13.3): only the x87 and SSE components exist. ----
/** 0F 01 D0 XGETBV: EDX:EAX = XCR0 (ECX = 0; other XCRs are #GP). */
function xgetbv(): void {
  if ((load<u64>(cpu + ST_CR4) & 0x40000) == 0) { raiseUD(); return; }
  if (<u32>getReg64(1) != 0) { raiseGP0(); return; }
  const v = load<u64>(cpu + ST_XCR0);
  setReg64(0, v & 0xffffffff);
  setReg64(2, v >> 32);
}
/** 0F 01 D1 XSETBV: CPL 0; XCR0 must keep bit 0 (x87) and may only add bit 1 (SSE). */
function xsetbv(): void {
  if ((load<u64>(cpu + ST_CR4) & 0x40000) == 0) { raiseUD(); return; }
  if (!requireCpl0()) return;
  const v = (getReg64(2) << 32) | (getReg64(0) & 0xffffffff);
  if (<u32>getReg64(1) != 0 || (v & 1) == 0 || (v & ~(<u64>3)) != 0) { raiseGP0(); return; }
  store<u64>(cpu + ST_XCR0, v);
}

/** System instructions hvlab does not implement yet: #UD, counted like any unimplemented opcode. */
export let unimplementedHit: bool = false;
function unimplementedSystem(): void { unimplementedHit = true; }
export function clearUnimplementedHit(): void { unimplementedHit = false; }
