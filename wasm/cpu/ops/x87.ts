// x87 FPU instructions (D8-DF, FWAIT) and FXSAVE/FXRSTOR: operand decoding, the register stack,
// tags, the status/control words, exceptions (#MF, FWAIT) and the CR0.EM/TS/MP rules; the 80-bit
// arithmetic is the library in wasm/cpu/fpu/. Forms: wasm/cpu/isa-table-fpu.ts (family x87).
//
// Dispatch: LOCK → #UD; CR0.EM/TS → #NM; a pending unmasked exception (FSW.ES) → #MF unless the
// instruction is a no-wait one (FNINIT FNCLEX FNSTCW FNSTSW FNSTENV FNSAVE); then one dense switch
// over (opcode & 7) << 3 | ModRM.reg, separately for memory and register forms (SDM Vol. 2,
// Tables ), into the operation families of ops/x87-ops.ts and ops/x87-env.ts.
// Non-control instructions that complete record FOP/FIP/FDP.
//
// Register forms also decode the undocumented aliases this machine's CPU executes (checked against
// it with hand-made difftest cases): D9 D8+i FSTP1 (which, unlike FSTP, just pops an empty ST(0)),
// DC D0+i FCOM2, DC D8+i FCOMP3, DD C8+i FXCH4, DE D0+i FCOMP5, DF C0+i FFREEP, DF C8+i FXCH7,
// DF D0+i / D8+i FSTP8 / FSTP9, and the 8087/287 leftovers DB E0 FNENI, DB E1 FNDISI,
// DB E4 FNSETPM, which are no-ops. The reserved encodings are #UD, checked before #MF (measured).
import { P_LOCK, prefixes, opIdx, ext, modrm, isMem, ea } from '../decode';
import { cpu, flatHarness } from '../state';
import { raise, raiseUD, faultVector } from '../fault';
import { setReg } from '../operands';
import { translate } from '../../mmu/translate';
import { ACC_READ, ACC_WRITE, ST_CR0, CR0_MP, CR0_TS, VEC_NM } from '../../abi';
import {
  checkNM, checkMF, notePointers, getFsw, setFsw, getFcw, FSW_ES, FSW_B, FSW_SF, FSW_EXC,
} from './x87-state';
import {
  MF_F32, MF_F64, MF_F80, MF_I16, MF_I32, MF_I64, MF_BCD, arithMem, arithReg, compareMem, compareReg,
  CMP_ORDERED, CMP_EFLAGS, ftst, fxam, loadMem, loadReg, loadConst, storeMem, storeReg, fxch, fcmov,
  storeReg1, signOp, stepTop, ffree, unary, U_SQRT, U_RNDINT, U_F2XM1, U_SIN, U_COS, binaryTop, B_PREM,
  B_PREM1, B_SCALE, binaryPop, P_PATAN, P_YL2X, P_YL2XP1, pushTwo, X_PTAN, X_SINCOS, X_XTRACT,
} from './x87-ops';
import {
  fninit, loadControlWord, fnstenv, fldenv, fnsave, frstor, fxsaveImage, fxrstorImage, xsaveImage, xrstorImage,
} from './x87-env';
import { getReg64 } from '../state';
import { ST_CR4, ST_XCR0 } from '../../abi';

/** Set when the current opcode has no handler here (the run loop counts it as unimplemented).
 *  Every x87 form is implemented, so it stays false. */
export let x87Unimplemented: bool = false;
export function clearX87Unimplemented(): void { x87Unimplemented = false; }

/** No-wait forms (no #MF check) and control instructions (no FOP/FIP/FDP update). */
function noWait(): bool {
  if (isMem) return (opIdx == 0xd9 || opIdx == 0xdd) && ext >= 6;
  return (opIdx == 0xdb || opIdx == 0xdf) && ext == 4;
}
function control(): bool {
  if (isMem) return (opIdx == 0xd9 && ext >= 4) || (opIdx == 0xdd && (ext == 4 || ext >= 6));
  return (opIdx == 0xdb || opIdx == 0xdf) && ext == 4;
}

/** D8-DF. */
export function x87Dispatch(): void {
  if ((prefixes & P_LOCK) != 0) { raiseUD(); return; }
  if (!checkNM()) return;
  const k = ((opIdx & 7) << 3) | ext;
  const i = modrm & 7;
  if (!(isMem ? validMem(k) : validReg(k, i))) { raiseUD(); return; } // #UD before #MF (measured)
  if (!noWait() && !checkMF()) return;
  if (isMem) memForm(k);
  else regForm(k, i);
  if (faultVector < 0 && !control()) notePointers();
}

/** Reserved memory forms: D9 /1, DB /4, DB /6, DD /5. */
function validMem(k: i32): bool { return k != 0x09 && k != 0x1c && k != 0x1e && k != 0x2d; }

/** Reserved register forms (mod = 3). */
function validReg(k: i32, i: i32): bool {
  switch (k) {
    case 0x0a: return i == 0; // D9 D0 FNOP
    case 0x0c: return i < 2 || i == 4 || i == 5; // FCHS FABS FTST FXAM
    case 0x0d: return i != 7;
    case 0x14: case 0x16: case 0x17: case 0x1f: case 0x2e: case 0x2f: case 0x3f: return false;
    case 0x15: case 0x33: return i == 1; // FUCOMPP, FCOMPP
    case 0x1c: return i < 5; // FNENI FNDISI FNCLEX FNINIT FNSETPM
    case 0x3c: return i == 0; // FNSTSW AX
    default: return true;
  }
}

/** Memory forms, k = (opcode & 7) << 3 | ModRM.reg. */
function memForm(k: i32): void {
  switch (k) {
    // D8 m32fp, DA m32int, DC m64fp, DE m16int: FADD FMUL FCOM FCOMP FSUB FSUBR FDIV FDIVR.
    case 0x00: case 0x01: case 0x04: case 0x05: case 0x06: case 0x07: arithMem(k & 7, MF_F32); break;
    case 0x10: case 0x11: case 0x14: case 0x15: case 0x16: case 0x17: arithMem(k & 7, MF_I32); break;
    case 0x20: case 0x21: case 0x24: case 0x25: case 0x26: case 0x27: arithMem(k & 7, MF_F64); break;
    case 0x30: case 0x31: case 0x34: case 0x35: case 0x36: case 0x37: arithMem(k & 7, MF_I16); break;
    case 0x02: case 0x03: compareMem(MF_F32, k & 1); break;
    case 0x12: case 0x13: compareMem(MF_I32, k & 1); break;
    case 0x22: case 0x23: compareMem(MF_F64, k & 1); break;
    case 0x32: case 0x33: compareMem(MF_I16, k & 1); break;
    // D9: FLD FST FSTP m32fp, FLDENV, FLDCW, FNSTENV, FNSTCW.
    case 0x08: loadMem(MF_F32); break;
    case 0x0a: case 0x0b: storeMem(MF_F32, k == 0x0b, false); break;
    case 0x0c: fldenv(); break;
    case 0x0d: fldcw(); break;
    case 0x0e: fnstenv(); break;
    case 0x0f: storeWord(getFcw()); break;
    // DB: FILD FISTTP FIST FISTP m32int, FLD FSTP m80fp.
    case 0x18: loadMem(MF_I32); break;
    case 0x19: storeMem(MF_I32, true, true); break;
    case 0x1a: case 0x1b: storeMem(MF_I32, k == 0x1b, false); break;
    case 0x1d: loadMem(MF_F80); break;
    case 0x1f: storeMem(MF_F80, true, false); break;
    // DD: FLD FISTTP FST FSTP m64, FRSTOR, FNSAVE, FNSTSW m16.
    case 0x28: loadMem(MF_F64); break;
    case 0x29: storeMem(MF_I64, true, true); break;
    case 0x2a: case 0x2b: storeMem(MF_F64, k == 0x2b, false); break;
    case 0x2c: frstor(); break;
    case 0x2e: fnsave(); break;
    case 0x2f: storeWord(getFsw()); break;
    // DF: FILD FISTTP FIST FISTP m16int, FBLD, FILD m64int, FBSTP, FISTP m64int.
    case 0x38: loadMem(MF_I16); break;
    case 0x39: storeMem(MF_I16, true, true); break;
    case 0x3a: case 0x3b: storeMem(MF_I16, k == 0x3b, false); break;
    case 0x3c: loadMem(MF_BCD); break;
    case 0x3d: loadMem(MF_I64); break;
    case 0x3e: storeMem(MF_BCD, true, false); break;
    case 0x3f: storeMem(MF_I64, true, false); break;
    default: raiseUD(); break; // D9 /1, DB /4 /6, DD /5
  }
}

/** Register forms, k as for memForm, i = ModRM.rm (ST(i); REX.B does not apply). */
function regForm(k: i32, i: i32): void {
  switch (k) {
    // D8: ST(0) = ST(0) op ST(i); FCOM/FCOMP ST(i).
    case 0x00: case 0x01: case 0x04: case 0x05: case 0x06: case 0x07: arithReg(k & 7, 0, i, false); break;
    case 0x02: case 0x03: compareReg(i, CMP_ORDERED, k & 1); break;
    // D9.
    case 0x08: loadReg(i); break;
    case 0x09: fxch(i); break;
    case 0x0a: if (i != 0) raiseUD(); break; // FNOP
    case 0x0b: storeReg1(i); break; // FSTP1
    case 0x0c: groupD9E0(i); break;
    case 0x0d: if (i == 7) raiseUD(); else loadConst(i); break;
    case 0x0e: groupD9F0(i); break;
    case 0x0f: groupD9F8(i); break;
    // DA: FCMOVB FCMOVE FCMOVBE FCMOVU (Jcc conditions 2 4 6 10), FUCOMPP.
    case 0x10: case 0x11: case 0x12: case 0x13: fcmov(fcmovCond(k & 3), i); break;
    case 0x15: if (i == 1) compareReg(1, 0, 2); else raiseUD(); break;
    // DB: FCMOVNB FCMOVNE FCMOVNBE FCMOVNU, FNCLEX/FNINIT, FUCOMI, FCOMI.
    case 0x18: case 0x19: case 0x1a: case 0x1b: fcmov(fcmovCond(k & 3) | 1, i); break;
    case 0x1c:
      if (i == 2) fnclex();
      else if (i == 3) fninit();
      else if (i > 4) raiseUD(); // E0 FNENI, E1 FNDISI, E4 FNSETPM: no-ops
      break;
    case 0x1d: compareReg(i, CMP_EFLAGS, 0); break;
    case 0x1e: compareReg(i, CMP_EFLAGS | CMP_ORDERED, 0); break;
    // DC: ST(i) = ST(i) op ST(0), with /4-/7 meaning SUBR SUB DIVR DIV; FCOM2, FCOMP3.
    case 0x20: case 0x21: arithReg(k & 7, i, 0, false); break;
    case 0x24: case 0x25: case 0x26: case 0x27: arithReg((k & 7) ^ 1, i, 0, false); break;
    case 0x22: case 0x23: compareReg(i, CMP_ORDERED, k & 1); break;
    // DD: FFREE, FXCH4, FST, FSTP, FUCOM, FUCOMP.
    case 0x28: ffree(i, false); break;
    case 0x29: fxch(i); break;
    case 0x2a: case 0x2b: storeReg(i, k == 0x2b); break;
    case 0x2c: case 0x2d: compareReg(i, 0, k & 1); break;
    // DE: the popping forms; FCOMP5, FCOMPP.
    case 0x30: case 0x31: arithReg(k & 7, i, 0, true); break;
    case 0x34: case 0x35: case 0x36: case 0x37: arithReg((k & 7) ^ 1, i, 0, true); break;
    case 0x32: compareReg(i, CMP_ORDERED, 1); break;
    case 0x33: if (i == 1) compareReg(1, CMP_ORDERED, 2); else raiseUD(); break;
    // DF: FFREEP, FXCH7, FSTP8, FSTP9, FNSTSW AX, FUCOMIP, FCOMIP.
    case 0x38: ffree(i, true); break;
    case 0x39: fxch(i); break;
    case 0x3a: case 0x3b: storeReg(i, true); break;
    case 0x3c: if (i == 0) setReg(0, 2, <u64>getFsw()); else raiseUD(); break;
    case 0x3d: compareReg(i, CMP_EFLAGS, 1); break;
    case 0x3e: compareReg(i, CMP_EFLAGS | CMP_ORDERED, 1); break;
    default: raiseUD(); break; // DD /6 /7, DF /7 with mod = 3
  }
}

/** Jcc condition of FCMOVB/E/BE/U (DA /0-/3): B 2, E 4, BE 6, P 10. */
@inline function fcmovCond(n: i32): i32 { return n == 3 ? 10 : (n + 1) << 1; }

/** D9 E0-E7: FCHS FABS - - FTST FXAM - -. */
function groupD9E0(i: i32): void {
  switch (i) {
    case 0: signOp(false); break;
    case 1: signOp(true); break;
    case 4: ftst(); break;
    case 5: fxam(); break;
    default: raiseUD(); break;
  }
}

/** D9 F0-F7: F2XM1 FYL2X FPTAN FPATAN FXTRACT FPREM1 FDECSTP FINCSTP. */
function groupD9F0(i: i32): void {
  switch (i) {
    case 0: unary(U_F2XM1); break;
    case 1: binaryPop(P_YL2X); break;
    case 2: pushTwo(X_PTAN); break;
    case 3: binaryPop(P_PATAN); break;
    case 4: pushTwo(X_XTRACT); break;
    case 5: binaryTop(B_PREM1); break;
    case 6: stepTop(-1); break;
    default: stepTop(1); break;
  }
}

/** D9 F8-FF: FPREM FYL2XP1 FSQRT FSINCOS FRNDINT FSCALE FSIN FCOS. */
function groupD9F8(i: i32): void {
  switch (i) {
    case 0: binaryTop(B_PREM); break;
    case 1: binaryPop(P_YL2XP1); break;
    case 2: unary(U_SQRT); break;
    case 3: pushTwo(X_SINCOS); break;
    case 4: unary(U_RNDINT); break;
    case 5: binaryTop(B_SCALE); break;
    case 6: unary(U_SIN); break;
    default: unary(U_COS); break;
  }
}

/** FNSTCW / FNSTSW m16. */
function storeWord(v: u32): void {
  const p = translate(ea, 2, ACC_WRITE);
  if (p != 0) store<u16>(p, <u16>v);
}

/** FLDCW m16. */
function fldcw(): void {
  const p = translate(ea, 2, ACC_READ);
  if (p != 0) loadControlWord(<u32>load<u16>(p));
}

/** FNCLEX: the exception flags, SF, ES and B cleared. */
function fnclex(): void {
  setFsw(getFsw() & ~(FSW_EXC | FSW_SF | FSW_ES | FSW_B));
}

/** 9B FWAIT/WAIT: #NM if CR0.MP and CR0.TS, then #MF if an unmasked exception is pending. */
export function x87Wait(): void {
  if ((prefixes & P_LOCK) != 0) { raiseUD(); return; }
  if (!flatHarness && (load<u64>(cpu + ST_CR0) & (CR0_MP | CR0_TS)) == (CR0_MP | CR0_TS)) {
    raise(VEC_NM, 0, false);
    return;
  }
  checkMF();
}

/** 0F AE /0 FXSAVE and /1 FXRSTOR (64-bit forms with REX.W), called from ops/sse.ts's 0F AE group
 *  (memory operand, no F2/F3 prefix). They neither check nor raise pending x87 exceptions. */
export function fxsave(): void {
  if ((prefixes & P_LOCK) != 0) { raiseUD(); return; }
  if (!checkNM()) return;
  fxsaveImage();
}
export function fxrstor(): void {
  if ((prefixes & P_LOCK) != 0) { raiseUD(); return; }
  if (!checkNM()) return;
  fxrstorImage();
}

/** CR4.OSXSAVE (bit 18): XSAVE, XRSTOR, XGETBV and XSETBV are #UD without it. */
export function osxsave(): bool { return (load<u64>(cpu + ST_CR4) & 0x40000) != 0; }

/** XSAVE / XRSTOR availability (SDM Vol. 2, XSAVE "Protected Mode Exceptions"): #UD without
 *  CR4.OSXSAVE or with LOCK, #NM with CR0.TS. Returns the requested-feature bitmap, or -1. */
function xsaveRfbm(): i64 {
  if ((prefixes & P_LOCK) != 0 || !osxsave()) { raiseUD(); return -1; }
  if ((load<u64>(cpu + ST_CR0) & CR0_TS) != 0) { raise(VEC_NM, 0, false); return -1; }
  const mask = (getReg64(2) << 32) | (getReg64(0) & 0xffffffff);
  return <i64>(load<u64>(cpu + ST_XCR0) & mask);
}

/** 0F AE /4 XSAVE and /5 XRSTOR (memory forms, standard format; 64-bit forms with REX.W). */
export function xsave(): void {
  const rfbm = xsaveRfbm();
  if (rfbm >= 0) xsaveImage(<u64>rfbm);
}
export function xrstor(): void {
  const rfbm = xsaveRfbm();
  if (rfbm >= 0) xrstorImage(<u64>rfbm, load<u64>(cpu + ST_XCR0));
}
