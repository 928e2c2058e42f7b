// Group 2 shifts and rotates, SHLD/SHRD (SDM Vol. 2B, SAL/SAR/SHL/SHR, RCL/RCR/ROL/ROR, SHLD, SHRD).
// Flags are computed eagerly: these instructions leave some flags unchanged and depend on the count.
import { ACC_WRITE, FLAG_CF, FLAG_OF, FLAG_AF, FLAG_PF, FLAG_ZF, FLAG_SF } from '../../abi';
import { sizeMask, signBit, sext, loadSized, getReg64 } from '../state';
import { getCF, setArithFlags, szpFlags, lazyShift } from '../flags';
import { opIdx, osize, ext, imm } from '../decode';
import { rmPtr, putRM, getG } from '../operands';

const SZP: u64 = FLAG_SF | FLAG_ZF | FLAG_PF;

/** The count operand of C0/C1 (imm8), D0/D1 (1) or D2/D3 (CL), masked as the manual says. */
function shiftCount(size: i32): i32 {
  let c: i32;
  if (opIdx == 0xc0 || opIdx == 0xc1) c = <i32>imm & 0xff;
  else if (opIdx == 0xd0 || opIdx == 0xd1) c = 1;
  else c = <i32>getReg64(1) & 0xff;
  return c & (size == 8 ? 0x3f : 0x1f);
}

export function group2(): void {
  const size = (opIdx & 1) != 0 ? osize : 1;
  const p = rmPtr(size, ACC_WRITE);
  if (p == 0) return;
  const count = shiftCount(size);
  const dst = loadSized(p, size);
  // A zero count changes no flags; a 32-bit register destination is still written (zero-extended).
  putRM(p, size, count == 0 ? dst : shiftCompute(ext, size, dst, count));
}

/** Group 2 operation `kind` (ModRM.reg: ROL ROR RCL RCR SHL SHR SAL SAR) of `dst` by a masked,
 *  non-zero `count`: sets the flags and returns the result. */
export function shiftCompute(kind: i32, size: i32, dst: u64, count: i32): u64 {
  const bits = size << 3;
  const m = sizeMask(size);
  const msb = signBit(size);
  let r: u64 = 0;
  let cf: u64 = 0;
  let ovf: u64 = 0;
  let mask: u64 = FLAG_CF | FLAG_OF;
  switch (kind) {
    case 0: { // ROL
      const n = count & (bits - 1);
      r = n == 0 ? dst : ((dst << <u64>n) | (dst >> <u64>(bits - n))) & m;
      cf = r & 1;
      ovf = ((r & msb) != 0 ? 1 : 0) ^ cf;
      break;
    }
    case 1: { // ROR
      const n = count & (bits - 1);
      r = n == 0 ? dst : ((dst >> <u64>n) | (dst << <u64>(bits - n))) & m;
      cf = (r & msb) != 0 ? 1 : 0;
      ovf = cf ^ ((r & (msb >> 1)) != 0 ? 1 : 0);
      break;
    }
    case 2: { // RCL: rotate through CF; 8/16-bit counts are taken mod 9/17
      let n = count;
      if (size == 1) n %= 9; else if (size == 2) n %= 17;
      let c: u64 = getCF() ? 1 : 0;
      r = dst;
      for (let i = 0; i < n; i++) {
        const out: u64 = (r & msb) != 0 ? 1 : 0;
        r = ((r << 1) | c) & m;
        c = out;
      }
      cf = c;
      ovf = ((r & msb) != 0 ? 1 : 0) ^ cf;
      break;
    }
    case 3: { // RCR: OF from the operand before rotating
      let n = count;
      if (size == 1) n %= 9; else if (size == 2) n %= 17;
      let c: u64 = getCF() ? 1 : 0;
      ovf = ((dst & msb) != 0 ? 1 : 0) ^ c;
      r = dst;
      for (let i = 0; i < n; i++) {
        const out: u64 = r & 1;
        r = (r >> 1) | (c << <u64>(bits - 1));
        c = out;
      }
      cf = c;
      break;
    }
    case 4:
    case 6: { // SHL/SAL: CF is the last bit shifted out
      const wide = dst << <u64>(count - 1);
      cf = count - 1 < 64 && count <= bits ? (wide >> <u64>(bits - 1)) & 1 : 0;
      r = count >= bits ? 0 : (dst << <u64>count) & m;
      ovf = ((r & msb) != 0 ? 1 : 0) ^ cf;
      mask = FLAG_CF | FLAG_OF | SZP | FLAG_AF;
      break;
    }
    case 5: { // SHR
      cf = count - 1 < bits ? (dst >> <u64>(count - 1)) & 1 : 0;
      r = count >= bits ? 0 : dst >> <u64>count;
      ovf = (dst & msb) != 0 ? 1 : 0;
      mask = FLAG_CF | FLAG_OF | SZP | FLAG_AF;
      break;
    }
    default: { // SAR
      const s = <i64>sext(dst, size);
      const n1 = count - 1 > 63 ? 63 : count - 1;
      cf = <u64>(s >> n1) & 1;
      r = <u64>(s >> (count > 63 ? 63 : count)) & m;
      ovf = 0;
      mask = FLAG_CF | FLAG_OF | SZP | FLAG_AF;
      break;
    }
  }
  if (mask & SZP) {
    // Shifts write all six arithmetic flags: record them lazily (AF reads as 0, as on this CPU).
    lazyShift(size, r, cf, ovf);
    return r;
  }
  setArithFlags(mask, (cf != 0 ? FLAG_CF : 0) | (ovf != 0 ? FLAG_OF : 0));
  return r;
}

/** 0F A4/A5 SHLD, 0F AC/AD SHRD: double-precision shifts. */
export function shiftDouble(): void {
  const size = osize;
  const p = rmPtr(size, ACC_WRITE);
  if (p == 0) return;
  const left = opIdx == 0x1a4 || opIdx == 0x1a5;
  const byImm = opIdx == 0x1a4 || opIdx == 0x1ac;
  const count = (byImm ? <i32>imm : <i32>getReg64(1)) & (size == 8 ? 0x3f : 0x1f);
  const dst = loadSized(p, size);
  if (count == 0) { putRM(p, size, dst); return; }
  const src = getG(size);
  const bits = size << 3;
  const m = sizeMask(size);
  const msb = signBit(size);
  let r: u64;
  let cf: u64;
  if (size == 8) {
    if (left) {
      r = (dst << <u64>count) | (src >> <u64>(64 - count));
      cf = (dst >> <u64>(64 - count)) & 1;
    } else {
      r = (dst >> <u64>count) | (src << <u64>(64 - count));
      cf = (dst >> <u64>(count - 1)) & 1;
    }
  } else if (left) {
    // dst:src as one 2*bits value; for 16-bit operands counts above 16 are undefined.
    const wide = (dst << <u64>bits) | src;
    r = ((wide << <u64>count) >> <u64>bits) & m;
    cf = count <= bits ? (dst >> <u64>(bits - count)) & 1 : (src >> <u64>(2 * bits - count)) & 1;
  } else {
    const wide = (src << <u64>bits) | dst;
    r = (wide >> <u64>count) & m;
    cf = (wide >> <u64>(count - 1)) & 1;
  }
  const ovf: u64 = ((r ^ dst) & msb) != 0 ? FLAG_OF : 0;
  setArithFlags(FLAG_CF | FLAG_OF | SZP | FLAG_AF, (cf != 0 ? FLAG_CF : 0) | ovf | szpFlags(r, size));
  putRM(p, size, r);
}
