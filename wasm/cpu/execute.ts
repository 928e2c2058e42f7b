// The run loop (KVM_RUN's counterpart) and the opcode dispatch. Dispatch is one dense switch over
// the opcode index, which compiles to a single br_table (notes/assemblyscript-probe.md: 2.6-4.5x
// faster than a function table). Every opcode without a case raises #UD and is counted by opcode.
import {
  EXIT_NONE, EXIT_BUDGET, EXIT_HLT, EXIT_EXCEPTION, EXIT_IO, EXIT_HYPERCALL, EXIT_PAUSE_LOOP, EXIT_SHUTDOWN, EXIT_EPT_VIOLATION, EXIT_IRQ_WINDOW, ST_IRQ_WINDOW, ST_UNIMPLEMENTED_LIN, ATTR_INVALID64, ATTR_FORM, ST_EXIT_REASON,
  ST_EXIT_VECTOR, ST_EXIT_ERROR_CODE, ST_EXIT_HAS_ERROR, ST_EXIT_ADDR, ST_EXIT_OPCODE, ST_EXIT_RIP,
  ST_EXIT_BYTES, ST_EXIT_LENGTH, ST_COUNTERS, CNT_INSTRUCTIONS, CNT_EXITS, CNT_EXCEPTIONS,
  CNT_UNIMPLEMENTED, CNT_DECODED, ST_UD_BY_OPCODE, VEC_DB, ST_IRQ_VECTOR, ST_NMI_PENDING,
  ST_INTERRUPTED, FLAG_IF, FLAG_TF, FLAG_RF, ST_DR0, ST_DR6, ST_DR7, ST_INTERRUPT_SHADOW,
} from '../abi';
import { getFlags, setFlags } from './flags';

const VEC_NMI: i32 = 2;
import { cpu, rip, rflags, setCpu, setRip, loadState, saveState, csBase, mode64, flatHarness, pagingOn } from './state';
import {
  faultVector, faultError, faultHasError, faultAddr, faultIsTrap, pending, raiseUD, raiseTrap, clearFault,
  EPT_VIOLATION_VECTOR,
} from './fault';
import {
  decodeAt, revalidate, MUST_DECODE, FETCH_FAULTED, unpack, E_LEN, E_HANDLER,
  opIdx, attr, ext, isMem, mod, prefixes, P_LOCK, P_66, P_REP, rex, lastRep, instrStart, fetchedLength,
} from './decode';
import { classify, executeFast, H_GENERIC } from './fastpath';
import { bouncePending, flushBounces, dataBreakpointHits, clearDataBreakpointHits, refreshDataBreakpoints } from '../mmu/translate';
import { ramSize, directPtr, mappedMemory } from '../mem/memory-map';
import { selectVmOfCpu } from '../vm';
import { linearMappingsChanged, cacheSlot, cacheKey, refreshCacheKey, E_TAG, E_EPOCH } from './code-cache';
import { selectEpt } from '../mmu/ept';
import { selectShadow } from '../mmu/shadow';
import { selectTlb } from '../mmu/tlb';
import { selectMmuCounters } from '../mmu/accounting';
import { LOCK_EXT } from './decode-tables.generated';
import {
  aluEG, aluGE, aluAccImm, aluGroup1, testEG, testAccImm, testEImm, notE, negE, incDecE,
} from './ops/alu';
import { group2, shiftDouble } from './ops/shift';
import { imulGE, mulOneOperand, divOneOperand } from './ops/muldiv';
import { bitTest, bitScan, popcntG, bswapR, setcc, cmovcc } from './ops/bits';
import {
  movEG, movEImm, movGE, movMoffs, movRegImm, movExtend, movsxd, movbe, lea, xchgEG, xchgAccReg,
  xadd, cmpxchg, cmpxchg8b, cbw, cwd, xlat,
} from './ops/move';
import {
  pushReg, popReg, pushImm, pushE, popE, pushf, popf, enter, leave, jcc, jmpRel, callRel,
  branchIndirect, ret, loop,
} from './ops/flow';
import { stringOp } from './ops/string';
import { flagOp, lahf, sahf, rdtsc, cpuid, int3 } from './ops/misc';
import {
  hlt, cliSti, portIo, completePendingIn, movCr, clts, invdWbinvd, group6, group7, rdmsr, wrmsr, farDirect,
  farIndirect, retFar, intN, iretOp, movSreg, pushPopSreg, loadFarPointer, incDecReg, pushaPopa,
  bcdAdjust, bound, arpl, stopReason, clearStop, STOP_NONE, STOP_HLT, STOP_IO, STOP_HYPERCALL, STOP_PAUSE_LOOP, pause, unimplementedHit,
  clearUnimplementedHit, interruptShadow, clearInterruptShadow, setInterruptShadow, syscall, sysret, sysenter, sysexit,
  rdtscRequest, clearRdtscRequest, movDr, larLsl, invpcidInstr,
} from './ops/system';
import { deliverException } from './system/interrupts';
import { sseDispatch, sseUnimplemented, clearSseUnimplemented } from './ops/sse';
import { x87Dispatch, x87Wait, x87Unimplemented, clearX87Unimplemented } from './ops/x87';

export let exitReason: i32 = EXIT_NONE;
/** Instructions retired so far in the current run() call, published for RDTSC before generic handlers run. */
let retired: i32 = 0;

@inline function counterAdd(slot: i32, v: u64): void {
  const p = cpu + ST_COUNTERS + (<usize>slot << 3);
  store<u64>(p, load<u64>(p) + v);
}

/** An opcode hvlab does not implement: #UD in the guest, counted by opcode so a run can list it. */
function unimplemented(): void {
  const p = cpu + ST_UD_BY_OPCODE + (<usize>opIdx << 2);
  store<u32>(p, load<u32>(p) + 1);
  counterAdd(CNT_UNIMPLEMENTED, 1);
  store<u32>(cpu + ST_EXIT_OPCODE, opIdx);
  store<u64>(cpu + ST_UNIMPLEMENTED_LIN, csBase + instrStart);
  raiseUD();
}

/** Opcodes with no case: architecturally invalid ones are a plain #UD, the rest are unimplemented. */
function noHandler(): void {
  if ((attr & ATTR_INVALID64) != 0 && mode64) raiseUD();
  else unimplemented();
}

/** Opcodes that exist only outside 64-bit mode (SDM Vol. 2, Table A-2 "i64"). */
@inline function legacyOnly(): bool {
  if (!mode64) return true;
  raiseUD();
  return false;
}


function execute(): void {
  // LOCK is valid only on the listed read-modify-write forms with a memory destination (SDM Vol. 2A, LOCK).
  if ((prefixes & P_LOCK) != 0) {
    if (!isMem || (load<u8>(LOCK_EXT + <usize>opIdx) & (1 << ext)) == 0) { raiseUD(); return; }
  }
  switch (opIdx) {
    case 0x06: case 0x07: case 0x0e: case 0x16: case 0x17: case 0x1e: case 0x1f:
    case 0x1a0: case 0x1a1: case 0x1a8: case 0x1a9:
      pushPopSreg(); break;
    case 0x27: case 0x2f: case 0x37: case 0x3f: case 0xd4: case 0xd5: bcdAdjust(); break;
    case 0x40: case 0x41: case 0x42: case 0x43: case 0x44: case 0x45: case 0x46: case 0x47:
    case 0x48: case 0x49: case 0x4a: case 0x4b: case 0x4c: case 0x4d: case 0x4e: case 0x4f:
      incDecReg(); break; // only reachable outside 64-bit mode (REX prefixes there)
    case 0x60: case 0x61: pushaPopa(); break;
    case 0x62: bound(); break;
    case 0x82: if (legacyOnly()) aluGroup1(); break;
    case 0x8c: case 0x8e: movSreg(); break;
    case 0x9a: case 0xea: farDirect(); break;
    case 0xc4: case 0xc5: case 0x1b2: case 0x1b4: case 0x1b5: loadFarPointer(); break;
    case 0xca: case 0xcb: retFar(); break;
    case 0xce: intN(); break;
    case 0xcf: iretOp(); break;
    case 0xe4: case 0xe5: case 0xe6: case 0xe7: case 0xec: case 0xed: case 0xee: case 0xef:
      portIo(); break;
    case 0xf1: raiseTrap(VEC_DB); break; // INT1 (ICEBP)
    case 0xfa: case 0xfb: cliSti(); break;
    case 0x100: group6(); break;
    case 0x101:
      group7();
      if (rdtscRequest) { clearRdtscRequest(); rdtsc(<u64>retired); } // RDTSCP
      break;
    case 0x105: syscall(); break;
    case 0x107: sysret(); break;
    case 0x134: sysenter(); break;
    case 0x135: sysexit(); break;
    case 0x106: clts(); break;
    case 0x108: case 0x109: invdWbinvd(); break;
    case 0x120: case 0x122: movCr(); break;
    case 0x121: case 0x123: movDr(); break;
    case 0x102: case 0x103: larLsl(); break;
    case 0x130: wrmsr(); break;
    case 0x132: rdmsr(); break;
    case 0x00: case 0x01: case 0x08: case 0x09: case 0x10: case 0x11: case 0x18: case 0x19:
    case 0x20: case 0x21: case 0x28: case 0x29: case 0x30: case 0x31: case 0x38: case 0x39:
      aluEG(); break;
    case 0x02: case 0x03: case 0x0a: case 0x0b: case 0x12: case 0x13: case 0x1a: case 0x1b:
    case 0x22: case 0x23: case 0x2a: case 0x2b: case 0x32: case 0x33: case 0x3a: case 0x3b:
      aluGE(); break;
    case 0x04: case 0x05: case 0x0c: case 0x0d: case 0x14: case 0x15: case 0x1c: case 0x1d:
    case 0x24: case 0x25: case 0x2c: case 0x2d: case 0x34: case 0x35: case 0x3c: case 0x3d:
      aluAccImm(); break;
    case 0x50: case 0x51: case 0x52: case 0x53: case 0x54: case 0x55: case 0x56: case 0x57:
      pushReg(); break;
    case 0x58: case 0x59: case 0x5a: case 0x5b: case 0x5c: case 0x5d: case 0x5e: case 0x5f:
      popReg(); break;
    case 0x63: if (mode64) movsxd(); else arpl(); break;
    case 0x68: case 0x6a: pushImm(); break;
    case 0x69: case 0x6b: imulGE(); break;
    case 0x70: case 0x71: case 0x72: case 0x73: case 0x74: case 0x75: case 0x76: case 0x77:
    case 0x78: case 0x79: case 0x7a: case 0x7b: case 0x7c: case 0x7d: case 0x7e: case 0x7f:
      jcc(); break;
    case 0x80: case 0x81: case 0x83: aluGroup1(); break;
    case 0x84: case 0x85: testEG(); break;
    case 0x86: case 0x87: xchgEG(); break;
    case 0x88: case 0x89: movEG(); break;
    case 0x8a: case 0x8b: movGE(); break;
    case 0x8d: lea(); break;
    case 0x8f: if (ext == 0) popE(); else raiseUD(); break;
    case 0x90:
      // 90 is NOP, F3 90 PAUSE; with REX.B it is XCHG r8, rAX.
      if ((rex & 1) != 0) xchgAccReg();
      else if ((prefixes & P_REP) != 0) pause(load<u64>(cpu + ST_COUNTERS + CNT_INSTRUCTIONS * 8) + <u64>retired);
      break;
    case 0x91: case 0x92: case 0x93: case 0x94: case 0x95: case 0x96: case 0x97:
      xchgAccReg(); break;
    case 0x98: cbw(); break;
    case 0x99: cwd(); break;
    case 0x9c: pushf(); break;
    case 0x9d: popf(); break;
    case 0x9e: sahf(); break;
    case 0x9f: lahf(); break;
    case 0xa0: case 0xa1: case 0xa2: case 0xa3: movMoffs(); break;
    case 0xa4: case 0xa5: case 0xa6: case 0xa7: case 0xaa: case 0xab: case 0xac: case 0xad:
    case 0xae: case 0xaf:
      stringOp(); break;
    case 0xa8: case 0xa9: testAccImm(); break;
    case 0xb0: case 0xb1: case 0xb2: case 0xb3: case 0xb4: case 0xb5: case 0xb6: case 0xb7:
    case 0xb8: case 0xb9: case 0xba: case 0xbb: case 0xbc: case 0xbd: case 0xbe: case 0xbf:
      movRegImm(); break;
    case 0xc0: case 0xc1: case 0xd0: case 0xd1: case 0xd2: case 0xd3: group2(); break;
    case 0xc2: case 0xc3: ret(); break;
    case 0xc6: case 0xc7: if (ext == 0) movEImm(); else raiseUD(); break;
    case 0xc8: enter(); break;
    case 0xc9: leave(); break;
    case 0xcc: int3(); break;
    case 0xcd: intN(); break;
    case 0xd7: xlat(); break;
    case 0xe0: case 0xe1: case 0xe2: case 0xe3: loop(); break;
    case 0xe8: callRel(); break;
    case 0xe9: case 0xeb: jmpRel(); break;
    case 0xf4: hlt(); break;
    case 0xf5: case 0xf8: case 0xf9: case 0xfc: case 0xfd: flagOp(); break;
    case 0xf6: case 0xf7:
      switch (ext) {
        case 0: case 1: testEImm(); break;
        case 2: notE(); break;
        case 3: negE(); break;
        case 4: case 5: mulOneOperand(); break;
        default: divOneOperand(); break;
      }
      break;
    case 0xfe: if (ext < 2) incDecE(); else raiseUD(); break;
    case 0xff:
      if (ext < 2) incDecE();
      else if (ext == 2 || ext == 4) branchIndirect();
      else if (ext == 6) pushE();
      else if (ext == 7) raiseUD();
      else farIndirect();
      break;

    // ---- 0F map ----
    case 0x10b: raiseUD(); break; // UD2
    case 0x10d: case 0x118: case 0x119: case 0x11a: case 0x11b: case 0x11c: case 0x11d: case 0x11e: case 0x11f:
      break; // prefetches, hint NOPs and NOP r/m: decoded, no memory access
    case 0x131: rdtsc(<u64>retired); break;
    case 0x140: case 0x141: case 0x142: case 0x143: case 0x144: case 0x145: case 0x146: case 0x147:
    case 0x148: case 0x149: case 0x14a: case 0x14b: case 0x14c: case 0x14d: case 0x14e: case 0x14f:
      cmovcc(); break;
    case 0x180: case 0x181: case 0x182: case 0x183: case 0x184: case 0x185: case 0x186: case 0x187:
    case 0x188: case 0x189: case 0x18a: case 0x18b: case 0x18c: case 0x18d: case 0x18e: case 0x18f:
      jcc(); break;
    case 0x190: case 0x191: case 0x192: case 0x193: case 0x194: case 0x195: case 0x196: case 0x197:
    case 0x198: case 0x199: case 0x19a: case 0x19b: case 0x19c: case 0x19d: case 0x19e: case 0x19f:
      setcc(); break;
    case 0x1a2: cpuid(); break;
    case 0x1a3: case 0x1ab: case 0x1b3: case 0x1bb: bitTest(); break;
    case 0x1ba: if (ext >= 4) bitTest(); else raiseUD(); break;
    case 0x1a4: case 0x1a5: case 0x1ac: case 0x1ad: shiftDouble(); break;
    case 0x1ae:
      // LFENCE/MFENCE/SFENCE (register forms of /5 /6 /7): ordering is trivially satisfied here.
      if (mod == 3 && ext >= 5) break;
      sseDispatch(); break; // FXSAVE, FXRSTOR, LDMXCSR, STMXCSR (memory forms /0-/3)

    // ---- x87 and MMX/SSE/SSE2 (ops/x87.ts, ops/sse.ts) ----
    case 0xd8: case 0xd9: case 0xda: case 0xdb: case 0xdc: case 0xdd: case 0xde: case 0xdf:
      x87Dispatch(); break;
    case 0x9b: x87Wait(); break;
    case 0x110: case 0x111: case 0x112: case 0x113: case 0x114: case 0x115: case 0x116: case 0x117:
    case 0x128: case 0x129: case 0x12a: case 0x12b: case 0x12c: case 0x12d: case 0x12e: case 0x12f:
    case 0x150: case 0x151: case 0x152: case 0x153: case 0x154: case 0x155: case 0x156: case 0x157:
    case 0x158: case 0x159: case 0x15a: case 0x15b: case 0x15c: case 0x15d: case 0x15e: case 0x15f:
    case 0x160: case 0x161: case 0x162: case 0x163: case 0x164: case 0x165: case 0x166: case 0x167:
    case 0x168: case 0x169: case 0x16a: case 0x16b: case 0x16c: case 0x16d: case 0x16e: case 0x16f:
    case 0x170: case 0x171: case 0x172: case 0x173: case 0x174: case 0x175: case 0x176: case 0x177:
    case 0x17e: case 0x17f:
    case 0x1c2: case 0x1c3: case 0x1c4: case 0x1c5: case 0x1c6:
    case 0x1d1: case 0x1d2: case 0x1d3: case 0x1d4: case 0x1d5: case 0x1d6: case 0x1d7:
    case 0x1d8: case 0x1d9: case 0x1da: case 0x1db: case 0x1dc: case 0x1dd: case 0x1de: case 0x1df:
    case 0x1e0: case 0x1e1: case 0x1e2: case 0x1e3: case 0x1e4: case 0x1e5: case 0x1e6: case 0x1e7:
    case 0x1e8: case 0x1e9: case 0x1ea: case 0x1eb: case 0x1ec: case 0x1ed: case 0x1ee: case 0x1ef:
    case 0x1f1: case 0x1f2: case 0x1f3: case 0x1f4: case 0x1f5: case 0x1f6: case 0x1f7:
    case 0x1f8: case 0x1f9: case 0x1fa: case 0x1fb: case 0x1fc: case 0x1fd: case 0x1fe:
      sseDispatch(); break;
    case 0x1af: imulGE(); break;
    case 0x1b0: case 0x1b1: cmpxchg(); break;
    case 0x1b6: case 0x1b7: case 0x1be: case 0x1bf: movExtend(); break;
    case 0x1b8: if (lastRep == 0xf3) popcntG(); else raiseUD(); break;
    case 0x1bc: case 0x1bd: bitScan(); break;
    case 0x1c0: case 0x1c1: xadd(); break;
    case 0x1c7: if (ext == 1) cmpxchg8b(); else unimplemented(); break;
    case 0x1c8: case 0x1c9: case 0x1ca: case 0x1cb: case 0x1cc: case 0x1cd: case 0x1ce: case 0x1cf:
      bswapR(); break;

    // ---- 0F 38 map ----
    case 0x282: if ((prefixes & P_66) != 0) invpcidInstr(); else raiseUD(); break;
    case 0x2f0: case 0x2f1:
      if (lastRep == 0xf2) unimplemented(); // CRC32
      else movbe();
      break;

    default: noHandler(); break;
  }
}

/** Record an exception exit (flat mode has no IDT to deliver it through). */
function exceptionExit(): void {
  store<u32>(cpu + ST_EXIT_VECTOR, faultVector);
  store<u32>(cpu + ST_EXIT_ERROR_CODE, faultError);
  store<u32>(cpu + ST_EXIT_HAS_ERROR, faultHasError ? 1 : 0);
  store<u64>(cpu + ST_EXIT_ADDR, faultAddr);
  counterAdd(CNT_EXCEPTIONS, 1);
  exitReason = EXIT_EXCEPTION;
}

/** An EPT violation (ept.ts filled in the gpa, gva and qualification): the instruction has not
 *  happened and restarts when run() is called again. */
function eptViolationExit(): void {
  clearFault();
  exitReason = EXIT_EPT_VIOLATION;
}

/** Copy the bytes of the instruction at `start` (`length` of them, as far as guest RAM has them)
 *  into the exit record, when CS:RIP is a guest-physical address in one run of the pool (paging off
 *  under --mmu direct); otherwise the host reads them through the guest's translation itself. */
function reportInstruction(start: u64, length: i32): void {
  let n = 0;
  const lin = csBase + start;
  while (!pagingOn && !mappedMemory && n < length && lin + <u64>n < ramSize) {
    store<u8>(cpu + ST_EXIT_BYTES + <usize>n, load<u8>(directPtr + <usize>(lin + <u64>n)));
    n++;
  }
  store<u64>(cpu + ST_EXIT_RIP, start);
  store<u32>(cpu + ST_EXIT_LENGTH, <u32>n);
}

/** Set when an interrupt or NMI waits, or an interrupt shadow is in effect. */
let irqCheck: bool = false;
let windowOpen: bool = false;
function armInterruptCheck(): void {
  irqCheck = !flatHarness && (load<i32>(cpu + ST_IRQ_VECTOR) >= 0 || load<u32>(cpu + ST_NMI_PENDING) != 0
    || load<u32>(cpu + ST_IRQ_WINDOW) != 0
    || (rflags & FLAG_TF) != 0 || (load<u32>(cpu + ST_DR7) & 0xff) != 0); // TF is never held lazily
}

/** Instruction breakpoints (SDM Vol. 3B, 18.2.4 and 18.3.1.1): DRn enabled in DR7 with R/Wn = 00 and
 *  equal to the linear address of the next instruction, unless RFLAGS.RF suppresses them for this
 *  one instruction (RF is then cleared). Sets the DR6 Bn bits; true if one matched. Data
 *  breakpoints (R/Wn = 01, 11) are not matched yet. */
function instructionBreakpoint(lin: u64): bool {
  const dr7 = load<u32>(cpu + ST_DR7);
  const flags = getFlags();
  if ((flags & FLAG_RF) != 0) { setFlags(flags & ~(<u64>FLAG_RF)); return false; }
  let hit: u32 = 0;
  for (let i = 0; i < 4; i++) {
    if (((dr7 >> (i * 2)) & 3) == 0 || ((dr7 >> (16 + i * 4)) & 3) != 0) continue;
    if (load<u64>(cpu + ST_DR0 + <usize>i * 8) == lin) hit |= <u32>1 << i;
  }
  if (hit == 0) return false;
  store<u32>(cpu + ST_DR6, (load<u32>(cpu + ST_DR6) & ~(<u32>0xf)) | hit);
  return true;
}


/** At an instruction boundary: deliver a pending NMI, or an external interrupt when IF = 1 and
 *  no STI/MOV SS shadow covers this boundary. Returns false on a triple fault. */
function takeExternalInterrupt(): bool {
  if (interruptShadow) { clearInterruptShadow(); return true; }
  if (load<u32>(cpu + ST_IRQ_WINDOW) != 0 && (rflags & FLAG_IF) != 0 && load<i32>(cpu + ST_IRQ_VECTOR) < 0
      && load<u32>(cpu + ST_NMI_PENDING) == 0) {
    store<u32>(cpu + ST_IRQ_WINDOW, 0);
    windowOpen = true; // the host wants to inject now
    return true;
  }
  let vector = -1;
  if (load<u32>(cpu + ST_NMI_PENDING) != 0) {
    store<u32>(cpu + ST_NMI_PENDING, 0);
    vector = VEC_NMI;
  } else if ((rflags & FLAG_IF) != 0) {
    vector = load<i32>(cpu + ST_IRQ_VECTOR);
    store<i32>(cpu + ST_IRQ_VECTOR, -1);
  }
  if (vector < 0) return true; // IF = 0: the interrupt waits (the host sees it still pending)
  irqCheck = load<i32>(cpu + ST_IRQ_VECTOR) >= 0;
  const ok = deliverException(vector, 0, false, false, rip);
  refreshCacheKey();
  if (!ok && faultVector == EPT_VIOLATION_VECTOR) {
    // Not delivered: it stays pending until the host has resolved the EPT violation.
    if (vector == VEC_NMI) store<u32>(cpu + ST_NMI_PENDING, 1); else store<i32>(cpu + ST_IRQ_VECTOR, vector);
    irqCheck = true;
    return false;
  }
  store<u32>(cpu + ST_INTERRUPTED, load<u32>(cpu + ST_INTERRUPTED) + 1);
  return ok;
}

/** Run the vCPU until an exit or `budget` instructions; returns the EXIT_* reason. */
/** The vCPU that ran last: the decoded-instruction cache is found by linear address, and another
 *  vCPU (of this VM or another) may map other frames there (its entries are revalidated). */
let lastRunVcpu: i32 = -1;

export function run(vcpu: i32, budget: i32): i32 {
  setCpu(vcpu);
  selectVmOfCpu();
  if (vcpu != lastRunVcpu) { linearMappingsChanged(); lastRunVcpu = vcpu; }
  selectMmuCounters(vcpu);
  selectEpt();
  selectShadow();
  selectTlb(vcpu);
  loadState();
  refreshDataBreakpoints();
  refreshCacheKey();
  clearFault();
  clearStop();
  completePendingIn();
  if (load<u32>(cpu + ST_INTERRUPT_SHADOW) != 0) setInterruptShadow(); else clearInterruptShadow();
  armInterruptCheck();
  if (interruptShadow) irqCheck = true;
  exitReason = EXIT_NONE;
  // The loop keeps the instruction count and RIP in locals: the global `rip` is written only where
  // something outside the fast handlers reads it (decoding, generic handlers, faults, exits).
  let n: i32 = 0;
  let pc: u64 = rip;
  let start: u64 = pc;
  let length: i32 = 0;
  while (n < budget) {
    // External interrupts and NMIs are taken at instruction boundaries (SDM Vol. 3A, 6.8 and 6.9).
    // TF set when the instruction starts: it ends with a single-step #DB trap.
    let singleStep = false;
    if (irqCheck) {
      setRip(pc);
      if (!takeExternalInterrupt()) {
        if (faultVector == EPT_VIOLATION_VECTOR) eptViolationExit(); else exitReason = EXIT_SHUTDOWN;
        pc = rip;
        break;
      }
      pc = rip;
      if (windowOpen) { windowOpen = false; exitReason = EXIT_IRQ_WINDOW; break; }
      if ((load<u32>(cpu + ST_DR7) & 0xff) != 0 && instructionBreakpoint(csBase + pc)) {
        // A fault: #DB is delivered before the instruction, which then has not executed.
        counterAdd(CNT_EXCEPTIONS, 1);
        if (!deliverException(VEC_DB, 0, false, false, pc)) {
          if (faultVector == EPT_VIOLATION_VECTOR) { setRip(pc); eptViolationExit(); } else exitReason = EXIT_SHUTDOWN;
          pc = rip;
          break;
        }
        refreshCacheKey();
        pc = rip;
        n++; // an event delivery is a step of virtual time: a guest caught in a fault loop still ends the budget
        continue;
      }
      singleStep = (rflags & FLAG_TF) != 0;
      if (!singleStep) armInterruptCheck();
    }
    start = pc;
    const lin = csBase + start;
    let e = cacheSlot(lin);
    if (load<u64>(e + E_TAG) != lin || load<u32>(e + E_EPOCH) != cacheKey) {
      setRip(start);
      const found = revalidate(e, lin);
      if (found == MUST_DECODE) {
        counterAdd(CNT_DECODED, 1);
        e = decodeAt();
        if (e != 0) classify(e);
      } else if (found == FETCH_FAULTED) e = 0;
    }
    if (e == 0) {
      length = fetchedLength();
      setRip(start);
    } else {
      length = <i32>load<u8>(e + E_LEN);
      const next = start + <u64>length;
      const h = <i32>load<u16>(e + E_HANDLER);
      if (h != H_GENERIC) {
        pc = executeFast(e, h, next);
        // The common case: a specialized handler that neither faulted nor needs the run loop.
        if (!(pending | singleStep)) { n++; continue; }
        setRip(pc);
      } else {
        setRip(next);
        retired = n;
        unpack(e, start);
        execute();
        // STI, POPF, IRET, MOV SS may have opened the interrupt window or set a shadow.
        if (!flatHarness) armInterruptCheck();
        if (interruptShadow) irqCheck = true;
        if (unimplementedHit || sseUnimplemented || x87Unimplemented) {
          clearUnimplementedHit(); clearSseUnimplemented(); clearX87Unimplemented();
          clearFault(); // the stub's #UD is replaced by the counted one
          unimplemented();
        }
      }
    }
    // From here on the global `rip` is authoritative; `pc` takes it back before the next instruction.
    // Single-step (SDM Vol. 3B, 18.3.1.4): a trap after the instruction, DR6.BS set.
    // Single-step and data breakpoints: one #DB trap after the instruction, with BS and the Bn bits.
    if ((singleStep || dataBreakpointHits != 0) && faultVector < 0) {
      let dr6 = load<u32>(cpu + ST_DR6);
      if (dataBreakpointHits != 0) dr6 = (dr6 & ~(<u32>0xf)) | dataBreakpointHits;
      if (singleStep) dr6 |= 0x4000;
      store<u32>(cpu + ST_DR6, dr6);
      raiseTrap(VEC_DB);
    }
    clearDataBreakpointHits();
    if (pending) {
      if (bouncePending) flushBounces(faultVector < 0);
      if (faultVector >= 0) {
        const trap = faultIsTrap;
        if (trap) n++;
        else setRip(start);
        if (faultVector == EPT_VIOLATION_VECTOR) { eptViolationExit(); pc = rip; break; }
        if (flatHarness) { exceptionExit(); pc = rip; break; }
        // Deliver through the IVT/IDT and keep running; software interrupts check the gate's DPL.
        const vector = faultVector, error = faultError, hasError = faultHasError;
        clearFault();
        counterAdd(CNT_EXCEPTIONS, 1);
        if (!deliverException(vector, error, hasError, trap && vector != VEC_DB, rip)) {
          // The delivery itself met an EPT violation: the instruction restarts (and faults again)
          // once the host has resolved it, as KVM re-injects the event from IDT-vectoring info.
          if (faultVector == EPT_VIOLATION_VECTOR) { setRip(start); eptViolationExit(); pc = rip; break; }
          exitReason = EXIT_SHUTDOWN; // triple fault
          pc = rip;
          break;
        }
        refreshCacheKey();
        pc = rip;
        if (!trap) n++; // (a trap's instruction was already counted) the delivery is a step of virtual time
        continue;
      }
      n++;
      pc = rip;
      if (stopReason == STOP_NONE) { clearFault(); continue; } // only a split access to finish
      if (stopReason == STOP_HLT) exitReason = EXIT_HLT;
      else if (stopReason == STOP_IO) exitReason = EXIT_IO;
      else if (stopReason == STOP_HYPERCALL) exitReason = EXIT_HYPERCALL;
      else if (stopReason == STOP_PAUSE_LOOP) exitReason = EXIT_PAUSE_LOOP;
      clearStop();
      break;
    }
    pc = rip;
    n++;
  }
  setRip(pc);
  if (exitReason == EXIT_NONE) exitReason = EXIT_BUDGET;
  reportInstruction(start, length);
  store<u32>(cpu + ST_EXIT_REASON, exitReason);
  counterAdd(CNT_INSTRUCTIONS, <u64>n);
  counterAdd(CNT_EXITS, 1);
  store<u32>(cpu + ST_INTERRUPT_SHADOW, interruptShadow ? 1 : 0); // (it covers the first instruction of the next run)
  saveState();
  clearFault();
  return exitReason;
}

