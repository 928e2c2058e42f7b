// Test and benchmark entry for the float80 library (built by test/fpu-float80.test.ts with
// test/fpu/asconfig.json; not part of the emulator core). `runBatch` executes the same 32-byte
// case records as test/fpu/x87ref.c and writes the same 32-byte result records, modelling each
// instruction's register-stack effect on top of the library calls, so that the two outputs can be
// compared byte for byte. Exports take and return only i32/f64.
import {
  FE_IE, FE_DE, FE_ZE, SW_C0, SW_C1, SW_C2, SW_C3,
  f80Add, f80Sub, f80Mul, f80Div, f80Sqrt, f80Rem, f80RoundToInt, f80Scale, f80Xtract,
  f80Compare, f80CompareStatus, f80Examine, f80FromF32Bits, f80FromF64Bits, f80ToF32Bits,
  f80ToF64Bits, f80LoadInt, f80ToInt, f80LoadBCD, f80StoreBCD, f80LoadConst,
  K_PI, K_L2E, K_L2T, K_LG2, K_LN2,
  f80F2xm1, f80Yl2x, f80Yl2xp1, f80Ptan, f80Patan, f80Sin, f80Cos, f80SinCos,
} from './float80';

// Operation codes shared with x87ref.c and the test.
const OP_ADD = 1, OP_SUB = 2, OP_MUL = 3, OP_DIV = 4, OP_SQRT = 5, OP_PREM = 6, OP_PREM1 = 7;
const OP_RNDINT = 8, OP_SCALE = 9, OP_XTRACT = 10, OP_COM = 11, OP_UCOM = 12, OP_LD32 = 13;
const OP_LD64 = 14, OP_ST32 = 15, OP_ST64 = 16, OP_ILD16 = 17, OP_ILD32 = 18, OP_ILD64 = 19;
const OP_IST16 = 20, OP_IST32 = 21, OP_IST64 = 22, OP_ISTT16 = 23, OP_ISTT32 = 24, OP_ISTT64 = 25;
const OP_BLD = 26, OP_BSTP = 27, OP_F2XM1 = 28, OP_YL2X = 29, OP_YL2XP1 = 30, OP_PTAN = 31;
const OP_PATAN = 32, OP_SIN = 33, OP_COS = 34, OP_SINCOS = 35, OP_LDPI = 36, OP_LDL2E = 37;
const OP_LDL2T = 38, OP_LDLG2 = 39, OP_LDLN2 = 40, OP_XAM = 41, OP_TST = 42, OP_LD80 = 43;
const OP_ST80 = 44;

const SW_CC: u32 = SW_C0 | SW_C1 | SW_C2 | SW_C3;
const zero80 = memory.data(16);

@inline function copy10(d: usize, s: usize): void {
  store<u64>(d, load<u64>(s));
  store<u16>(d, load<u16>(s, 8), 8);
}

/** Unmasked IE/ZE/DE: the instruction is suppressed (no write, no push or pop). */
@inline function suppressed(f: u32, cw: u32): bool {
  return (f & ~cw & (FE_IE | FE_ZE | FE_DE)) != 0;
}

function runOne(r: usize, o: usize): void {
  const op = <i32>load<u16>(r);
  const cw = <u32>load<u16>(r, 2);
  const a = r + 4, b = r + 14;
  const st0 = o, st1 = o + 10, mem = o + 20;
  memory.fill(o, 0, 20);
  memory.fill(mem, 0xa5, 10);
  let depth = 0;
  let f: u32 = 0;
  switch (op) {
    case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV: case OP_PREM: case OP_PREM1: case OP_SCALE: {
      copy10(st0, a); copy10(st1, b); depth = 2;
      if (op == OP_ADD) f = f80Add(st0, a, b, cw);
      else if (op == OP_SUB) f = f80Sub(st0, a, b, cw);
      else if (op == OP_MUL) f = f80Mul(st0, a, b, cw);
      else if (op == OP_DIV) f = f80Div(st0, a, b, cw);
      else if (op == OP_SCALE) f = f80Scale(st0, a, b, cw);
      else f = f80Rem(st0, a, b, cw, op == OP_PREM1);
      break;
    }
    case OP_SQRT: copy10(st0, a); depth = 1; f = f80Sqrt(st0, a, cw); break;
    case OP_RNDINT: copy10(st0, a); depth = 1; f = f80RoundToInt(st0, a, cw); break;
    case OP_XTRACT: {
      copy10(st0, a); depth = 1;
      f = f80Xtract(o + 64, o + 80, a, cw);
      if (!suppressed(f, cw)) { copy10(st0, o + 64); copy10(st1, o + 80); depth = 2; }
      break;
    }
    case OP_COM: case OP_UCOM: {
      copy10(st0, a); copy10(st1, b); depth = 2;
      f = f80CompareStatus(f80Compare(a, b), op == OP_COM);
      break;
    }
    case OP_TST: copy10(st0, a); depth = 1; f = f80CompareStatus(f80Compare(a, zero80), true); break;
    case OP_XAM: copy10(st0, a); depth = 1; f = f80Examine(a); break;
    case OP_LD32: case OP_LD64: {
      f = op == OP_LD32 ? f80FromF32Bits(st0, load<u32>(a), cw)
                        : f80FromF64Bits(st0, load<u32>(a), load<u32>(a, 4), cw);
      depth = (f & ~cw & FE_IE) != 0 ? 0 : 1;
      break;
    }
    case OP_LD80: copy10(st0, a); depth = 1; break;
    case OP_ST80: copy10(mem, a); depth = 0; break;
    case OP_ST32: copy10(st0, a); depth = 1; f = f80ToF32Bits(a, cw, mem); break;
    case OP_ST64: copy10(st0, a); depth = 1; f = f80ToF64Bits(a, cw, mem); break;
    case OP_ILD16: depth = 1; f = f80LoadInt(st0, a, 2); break;
    case OP_ILD32: depth = 1; f = f80LoadInt(st0, a, 4); break;
    case OP_ILD64: depth = 1; f = f80LoadInt(st0, a, 8); break;
    case OP_IST16: case OP_IST32: case OP_IST64: case OP_ISTT16: case OP_ISTT32: case OP_ISTT64: {
      copy10(st0, a); depth = 1;
      const k = op <= OP_IST64 ? op - OP_IST16 : op - OP_ISTT16;
      const size = k == 0 ? 2 : k == 1 ? 4 : 8;
      const pops = op != OP_IST16 && op != OP_IST32;
      f = f80ToInt(a, cw, mem, size, op >= OP_ISTT16);
      if (pops && !suppressed(f, cw)) depth = 0;
      break;
    }
    case OP_BLD: depth = 1; f = f80LoadBCD(st0, a); break;
    case OP_BSTP: {
      copy10(st0, a); depth = 1;
      f = f80StoreBCD(a, cw, mem);
      if (!suppressed(f, cw)) depth = 0;
      break;
    }
    case OP_LDPI: depth = 1; f = f80LoadConst(st0, K_PI, cw); break;
    case OP_LDL2E: depth = 1; f = f80LoadConst(st0, K_L2E, cw); break;
    case OP_LDL2T: depth = 1; f = f80LoadConst(st0, K_L2T, cw); break;
    case OP_LDLG2: depth = 1; f = f80LoadConst(st0, K_LG2, cw); break;
    case OP_LDLN2: depth = 1; f = f80LoadConst(st0, K_LN2, cw); break;
    case OP_F2XM1: copy10(st0, a); depth = 1; f = f80F2xm1(st0, a, cw); break;
    case OP_SIN: copy10(st0, a); depth = 1; f = f80Sin(st0, a, cw); break;
    case OP_COS: copy10(st0, a); depth = 1; f = f80Cos(st0, a, cw); break;
    case OP_YL2X: case OP_YL2XP1: case OP_PATAN: {
      // ST(0) = a, ST(1) = b; the result replaces ST(1) and the stack is popped.
      copy10(st0, a); copy10(st1, b); depth = 2;
      if (op == OP_YL2X) f = f80Yl2x(o + 64, a, b, cw);
      else if (op == OP_YL2XP1) f = f80Yl2xp1(o + 64, a, b, cw);
      else f = f80Patan(o + 64, b, a, cw);
      if (!suppressed(f, cw)) { copy10(st0, o + 64); memory.fill(st1, 0, 10); depth = 1; }
      break;
    }
    case OP_PTAN: {
      copy10(st0, a); depth = 1;
      f = f80Ptan(o + 64, o + 80, a, cw);
      if ((f & SW_C2) == 0 && !suppressed(f, cw)) { copy10(st1, o + 64); copy10(st0, o + 80); depth = 2; }
      break;
    }
    case OP_SINCOS: {
      copy10(st0, a); depth = 1;
      f = f80SinCos(o + 64, o + 80, a, cw);
      if ((f & SW_C2) == 0 && !suppressed(f, cw)) { copy10(st1, o + 64); copy10(st0, o + 80); depth = 2; }
      break;
    }
    default: break;
  }
  let sw = f & (0x3f | SW_CC);
  if ((f & ~cw & 0x3f) != 0) sw |= 0x8080; // ES and B
  sw |= (<u32>((8 - depth) & 7)) << 11;
  store<u16>(o, <u16>sw, 30);
  memory.fill(o + 64, 0, 32);
}

/** Runs n case records at inp (32 bytes each) into n result records at out (32 bytes each, plus
 *  32 bytes of scratch after the last one). */
export function runBatch(inp: usize, out: usize, n: i32): void {
  for (let i = 0; i < n; i++) runOne(inp + (<usize>i << 5), out + (<usize>i << 5));
}

/** Benchmark: `reps` passes over n operand pairs (10-byte values at a and b, 16-byte stride),
 *  applying op (OP_ADD, OP_MUL, OP_DIV, OP_SQRT, OP_SIN; 0 = an XOR, to measure the loop itself)
 *  into dst; returns a checksum. */
export function bench(op: i32, a: usize, b: usize, dst: usize, n: i32, reps: i32, cw: u32): i32 {
  let acc: u32 = 0;
  for (let r = 0; r < reps; r++) {
    for (let i = 0; i < n; i++) {
      const off = <usize>i << 4;
      let f: u32;
      switch (op) {
        case OP_ADD: f = f80Add(dst + off, a + off, b + off, cw); break;
        case OP_MUL: f = f80Mul(dst + off, a + off, b + off, cw); break;
        case OP_DIV: f = f80Div(dst + off, a + off, b + off, cw); break;
        case OP_SQRT: f = f80Sqrt(dst + off, a + off, cw); break;
        case OP_SIN: f = f80Sin(dst + off, a + off, cw); break;
        case 0: store<u64>(dst + off, load<u64>(a + off) ^ load<u64>(b + off)); f = 0; break;
        default: f = f80Sub(dst + off, a + off, b + off, cw); break;
      }
      acc += f + <u32>load<u32>(dst + off);
    }
  }
  return <i32>acc;
}
