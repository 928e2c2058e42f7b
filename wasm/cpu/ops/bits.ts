// BT/BTS/BTR/BTC, BSF/BSR, TZCNT/LZCNT, POPCNT, BSWAP, SETcc, CMOVcc (SDM Vol. 2).
import { ACC_READ, ACC_WRITE, FLAG_CF, FLAG_ZF, FLAG_OF, FLAG_SF, FLAG_PF, FLAG_AF } from '../../abi';
import { loadSized, storeSized, getReg64, setReg64 } from '../state';
import { setArithFlags, cond } from '../flags';
import { opIdx, osize, ext, imm, isMem, ea, lastRep, rex } from '../decode';
import { rmPtr, putRM, getG, setG, setReg } from '../operands';
import { translate } from '../../mmu/translate';

const ALL_ARITH: u64 = FLAG_CF | FLAG_PF | FLAG_AF | FLAG_ZF | FLAG_SF | FLAG_OF;

/** 0F A3/AB/B3/BB (bit offset in a register) and 0F BA /4-7 (imm8). With a register offset and a
 *  memory operand the offset is signed and selects any bit relative to the operand's address
 *  (SDM Vol. 2A, BT: "Bit(BitBase, BitOffset)"). */
export function bitTest(): void {
  const size = osize;
  const bits = size << 3;
  let op: i32; // 0 BT, 1 BTS, 2 BTR, 3 BTC
  let offset: u64;
  if (opIdx == 0x1ba) { op = ext - 4; offset = imm & <u64>(bits - 1); }
  else {
    op = opIdx == 0x1a3 ? 0 : opIdx == 0x1ab ? 1 : opIdx == 0x1b3 ? 2 : 3;
    offset = getG(size);
  }
  let p: usize;
  const access = op == 0 ? ACC_READ : ACC_WRITE;
  let bit: i32;
  if (isMem && opIdx != 0x1ba) {
    const signedOffset = <i64>(size == 8 ? offset : size == 4 ? <u64><i64><i32>offset : <u64><i64><i16>offset);
    const unitShift = size == 8 ? 6 : size == 4 ? 5 : 4;
    const unit = signedOffset >> unitShift; // arithmetic: negative offsets address lower memory
    p = translate(ea + <u64>(unit * size), size, access);
    bit = <i32>(signedOffset & (bits - 1));
  } else {
    p = rmPtr(size, access);
    bit = <i32>(offset & <u64>(bits - 1));
  }
  if (p == 0) return;
  const v = loadSized(p, size);
  const mask = <u64>1 << <u64>bit;
  setArithFlags(FLAG_CF, (v & mask) != 0 ? FLAG_CF : 0);
  if (op == 0) return;
  const r = op == 1 ? v | mask : op == 2 ? v & ~mask : v ^ mask;
  if (isMem) storeSized(p, size, r); else putRM(p, size, r);
}

/** 0F BC/BD: BSF/BSR, or TZCNT/LZCNT with F3. */
export function bitScan(): void {
  const size = osize;
  const p = rmPtr(size, ACC_READ);
  if (p == 0) return;
  const src = loadSized(p, size);
  const bits = size << 3;
  const forward = opIdx == 0x1bc;
  if (lastRep == 0xf3) {
    let n: i32;
    if (forward) n = src == 0 ? bits : <i32>ctz<u64>(src);
    else n = src == 0 ? bits : <i32>clz<u64>(src) - (64 - bits);
    setArithFlags(ALL_ARITH, (src == 0 ? FLAG_CF : 0) | (n == 0 ? FLAG_ZF : 0));
    setG(size, <u64>n);
    return;
  }
  if (src == 0) {
    // The destination is left unchanged (what Intel and AMD processors do; the manual says undefined).
    setArithFlags(ALL_ARITH, FLAG_ZF);
    return;
  }
  const n = forward ? <i32>ctz<u64>(src) : 63 - <i32>clz<u64>(src);
  setArithFlags(ALL_ARITH, 0);
  setG(size, <u64>n);
}

/** F3 0F B8: POPCNT (all flags cleared, ZF = source was zero). */
export function popcntG(): void {
  const size = osize;
  const p = rmPtr(size, ACC_READ);
  if (p == 0) return;
  const src = loadSized(p, size);
  setArithFlags(ALL_ARITH, src == 0 ? FLAG_ZF : 0);
  setG(size, popcnt<u64>(src));
}

/** 0F C8+r: BSWAP (the 16-bit form is undefined; it clears the register's low word like Intel's). */
export function bswapR(): void {
  const r = (opIdx & 7) | ((rex & 1) << 3);
  if (osize == 8) setReg64(r, bswap<u64>(getReg64(r)));
  else if (osize == 4) setReg(r, 4, <u64>bswap<u32>(<u32>getReg64(r)));
  else setReg(r, 2, 0);
}

/** 0F 90-9F: SETcc Eb. */
export function setcc(): void {
  const p = rmPtr(1, ACC_WRITE);
  if (p == 0) return;
  store<u8>(p, cond(opIdx & 15) ? 1 : 0);
}

/** 0F 40-4F: CMOVcc Gv, Ev. The source is read (and may fault) whatever the condition; a 32-bit
 *  destination is zero-extended even when the condition is false (SDM Vol. 2A, CMOVcc). */
export function cmovcc(): void {
  const size = osize;
  const p = rmPtr(size, ACC_READ);
  if (p == 0) return;
  const v = loadSized(p, size);
  if (cond(opIdx & 15)) setG(size, v);
  else if (size == 4) setG(4, getG(4));
}
