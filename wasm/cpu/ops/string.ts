// String instructions MOVS, CMPS, STOS, LODS, SCAS with REP/REPE/REPNE (SDM Vol. 2B, REP/REPE/REPNE;
// Vol. 1, 7.3.9). The source segment (DS) can be overridden, the destination (ES) cannot. A REP
// loop runs in chunks: when a chunk ends with the count non-zero, RIP stays on the instruction so
// it restarts where it stopped, exactly as an interrupted REP does on hardware.
import { ACC_READ, ACC_WRITE, FLAG_DF, HOST_POOL_BASE, CPUB_REP_ZERO_COUNT_NO_WRITE } from '../../abi';
import { modelHas } from '../model';
import { hostPoolSize } from '../../mem/memory-map';
import { loadSized, storeSized, getReg64, setRip, rflags, mode64 } from '../state';
import { opIdx, osize, asize, prefixes, lastRep, P_REP, P_REPNE, segmentBase, segBase, instrStart, seg, segmentedAddress, segmentAllows } from '../decode';
import { SEG_ES } from '../../abi';
import { getReg, setReg } from '../operands';
import { aluCompute, ALU_CMP } from './alu';
import { getZF } from '../flags';
import { translate, dataBreakpointsOn } from '../../mmu/translate';

const RCX = 1, RSI = 6, RDI = 7;
/** Iterations per chunk before the loop yields to the run loop. */
const REP_CHUNK: i32 = 4096;


@inline function addrMask(): u64 { return asize == 8 ? <u64>-1 : asize == 4 ? 0xffffffff : 0xffff; }

function advance(r: i32, delta: u64): void {
  setReg(r, asize, (getReg64(r) + delta) & addrMask());
}
/** Destination operand address ES:rDI (ES cannot be overridden), checked against ES's limit. */
@inline function destination(m: u64, size: i32): u64 { return segmentedAddress(SEG_ES, getReg64(RDI) & m, size); }
/** Source operand address seg:rSI (DS unless overridden), checked against the segment's limit. */
@inline function source(m: u64, size: i32): u64 { return segmentedAddress(seg, getReg64(RSI) & m, size); }
/** Host pointer of a checked operand address (0 if the limit check or the translation faulted). */
@inline function operand(lin: u64, size: i32, access: i32): usize { return lin == <u64>-1 ? 0 : translate(lin, size, access); }

/** One iteration; returns false if it faulted. */
function iterate(kind: i32, size: i32, step: u64): bool {
  const m = addrMask();
  switch (kind) {
    case 0: { // MOVS: [rDI] = [rSI]
      const s = operand(source(m, size), size, ACC_READ);
      if (s == 0) return false;
      const d = operand(destination(m, size), size, ACC_WRITE);
      if (d == 0) return false;
      storeSized(d, size, loadSized(s, size));
      advance(RSI, step); advance(RDI, step);
      return true;
    }
    case 1: { // CMPS: compare [rSI] with [rDI]
      const s = operand(source(m, size), size, ACC_READ);
      if (s == 0) return false;
      const d = operand(destination(m, size), size, ACC_READ);
      if (d == 0) return false;
      aluCompute(ALU_CMP, size, loadSized(s, size), loadSized(d, size));
      advance(RSI, step); advance(RDI, step);
      return true;
    }
    case 2: { // STOS
      const d = operand(destination(m, size), size, ACC_WRITE);
      if (d == 0) return false;
      storeSized(d, size, getReg(0, size));
      advance(RDI, step);
      return true;
    }
    case 3: { // LODS
      const s = operand(source(m, size), size, ACC_READ);
      if (s == 0) return false;
      setReg(0, size, loadSized(s, size));
      advance(RSI, step);
      return true;
    }
    default: { // SCAS: compare the accumulator with [rDI]
      const d = operand(destination(m, size), size, ACC_READ);
      if (d == 0) return false;
      aluCompute(ALU_CMP, size, getReg(0, size), loadSized(d, size));
      advance(RDI, step);
      return true;
    }
  }
}

/** REP MOVS/STOS forward, as many elements as stay within one page of each operand (and within
 *  guest RAM), at once: the same result as element by element (overlapping forward copies that
 *  would replicate a pattern are left to the element loop). Returns the elements done, 0 if this
 *  stretch needs the element loop, -1 on a fault. */
function bulkForward(kind: i32, size: i32, m: u64, room: i32): i32 {
  const dOff = getReg64(RDI) & m, sOff = getReg64(RSI) & m;
  const dBase = segBase(SEG_ES);
  let count = <u64>room;
  const left = getReg64(RCX) & m;
  if (left < count) count = left;
  const dLin = dOff + dBase;
  let fit = (0x1000 - (dLin & 0xfff)) / <u64>size;
  if (kind == 0) {
    const sFit = (0x1000 - ((sOff + segBase(seg)) & 0xfff)) / <u64>size;
    if (sFit < fit) fit = sFit;
  }
  if (fit < count) count = fit;
  if (count < 2) return 0;
  const bytes = <i32>count * size;
  if (dOff + <u64>bytes - 1 > m || sOff + <u64>bytes - 1 > m) return 0; // the offsets would wrap
  // Outside the segment limits: the element loop faults at the right element.
  if (!mode64 && (!segmentAllows(SEG_ES, dOff, <u64>bytes) || (kind == 0 && !segmentAllows(seg, sOff, <u64>bytes)))) return 0;
  const dLinChecked = dLin;
  // Host addresses in the frame pool are guest RAM (or ROM); anything else is a staging slot.
  const ramStart = <usize>HOST_POOL_BASE, ramEnd = <usize>HOST_POOL_BASE + <usize>hostPoolSize();
  if (kind == 0) {
    const sp = translate(sOff + segBase(seg), bytes, ACC_READ);
    if (sp == 0) return -1;
    const dp = translate(dLinChecked, bytes, ACC_WRITE);
    if (dp == 0) return -1;
    if (dp < ramStart || dp + <usize>bytes > ramEnd || sp < ramStart || sp + <usize>bytes > ramEnd) return 0;
    if (dp > sp && dp < sp + <usize>bytes) return 0; // forward overlap: the element loop replicates
    memory.copy(dp, sp, <usize>bytes);
    setReg(RSI, asize, (getReg64(RSI) + <u64>bytes) & m);
  } else {
    const dp = translate(dLinChecked, bytes, ACC_WRITE);
    if (dp == 0) return -1;
    if (dp < ramStart || dp + <usize>bytes > ramEnd) return 0;
    const v = getReg(0, size);
    if (size == 1) memory.fill(dp, <u8>v, <usize>bytes);
    else for (let i = 0; i < bytes; i += size) storeSized(dp + <usize>i, size, v);
  }
  setReg(RDI, asize, (getReg64(RDI) + <u64>bytes) & m);
  setReg(RCX, asize, (getReg64(RCX) - count) & m);
  return <i32>count;
}

/** A4-AF (except A8/A9). */
export function stringOp(): void {
  const size = (opIdx & 1) != 0 ? osize : 1;
  const kind = opIdx < 0xa6 ? 0 : opIdx < 0xaa ? 1 : opIdx < 0xac ? 2 : opIdx < 0xae ? 3 : 4;
  const step: u64 = (rflags & FLAG_DF) != 0 ? 0 - <u64>size : <u64>size;
  if ((prefixes & (P_REP | P_REPNE)) == 0) { iterate(kind, size, step); return; }
  const m = addrMask();
  // For MOVS/STOS/LODS F2 acts as REP too; for CMPS/SCAS F3 = REPE and F2 = REPNE (the last wins).
  const repne = (prefixes & P_REPNE) != 0 && ((prefixes & P_REP) == 0 || lastRep == 0xf2);
  const compares = kind == 1 || kind == 4;
  let n = 0;
  // Intel: with 67h the count register ECX is written back zero-extended even when no iteration
  // runs, and so are the pointers of MOVS and STOS (the fast-string operations), not those of
  // LODS/CMPS/SCAS (observed on Intel). AMD (CPUB_REP_ZERO_COUNT_NO_WRITE): with ECX = 0 no
  // iteration runs and no register is written, upper halves included (observed on AMD family 19h).
  // With ECX != 0 the iterations write ECX/ESI/EDI as 32-bit registers on both.
  if (asize == 4 && !((getReg64(RCX) & m) == 0 && modelHas(CPUB_REP_ZERO_COUNT_NO_WRITE))) {
    setReg(RCX, 4, getReg64(RCX) & m);
    if (kind == 0) setReg(RSI, 4, getReg64(RSI) & m);
    if (kind == 0 || kind == 2) setReg(RDI, 4, getReg64(RDI) & m);
  }
  while ((getReg64(RCX) & m) != 0) {
    if (n >= REP_CHUNK) { setRip(instrStart); break; }
    if ((kind == 0 || kind == 2) && (rflags & FLAG_DF) == 0 && !dataBreakpointsOn) {
      const done = bulkForward(kind, size, m, REP_CHUNK - n);
      if (done < 0) return; // faulted
      if (done > 0) { n += done; continue; }
    }
    if (!iterate(kind, size, step)) return;
    n++;
    setReg(RCX, asize, (getReg64(RCX) - 1) & m);
    if (compares && (repne ? getZF() : !getZF())) break;
  }
}
