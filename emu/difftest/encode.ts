// x86-64 encoder for the forms of wasm/cpu/isa-table.ts and wasm/cpu/isa-table-fpu.ts: turns a form
// plus a concrete choice of operands into instruction bytes, and formats the same choice as a
// readable (Intel-syntax) line.
// Used by the differential tester's case generator (emu/difftest/generate.ts); validated against
// objdump by test/difftest-generate.test.ts.
//
// Prefix order emitted: [extra legacy] [F0 lock] [segment] [66] [67] [F2/F3 rep] [mandatory F2/F3]
// [REX] [0F [38|3A]] opcode [ModRM [SIB] [disp]] [immediates].

import type { Form } from '../../wasm/cpu/isa-table.ts';

/** High-byte registers for byte operands (Eb/Gb/Zb): encoded as 4..7 and only valid without REX.
 *  Byte register numbers 4..7 mean SPL/BPL/SIL/DIL (a REX prefix is emitted for them). */
export const AH = 16, CH = 17, DH = 18, BH = 19;

export type Seg = 'es' | 'cs' | 'ss' | 'ds' | 'fs' | 'gs';
export const SEG_PREFIX: Record<Seg, number> = { es: 0x26, cs: 0x2e, ss: 0x36, ds: 0x3e, fs: 0x64, gs: 0x65 };

/** A ModRM memory operand. The effective address is base + index*scale + disp (mod 2^64, or mod 2^32
 *  with addr32), plus the segment base for fs/gs. */
export interface MemRef {
  /** 0..15, 'rip' (RIP-relative: mod=00 rm=101, disp32 from the end of the instruction), or absent
   *  (SIB with no base: disp32 absolute, or index*scale + disp32). */
  base?: number | 'rip';
  /** 0..15 except 4 (RSP cannot be an index; R12 can). */
  index?: number;
  scale?: 1 | 2 | 4 | 8;
  /** Signed displacement, -2^31..2^32-1 (the low 32 bits are encoded). */
  disp?: number;
  /** Force a displacement width (0 is invalid for an RBP/R13 base, 8 needs a value in -128..127). */
  dispSize?: 0 | 8 | 32;
  seg?: Seg;
  /** 0x67: 32-bit address computation. */
  addr32?: boolean;
}

/** A concrete instance of a form. */
export interface Operands {
  /** Operand size in bytes: 'b' forms 1; 'v' forms 2/4/8 (66h / none / REX.W); 'd64' 2/8; 'f64' 8.
   *  For Mdq (CMPXCHG8B/16B): 4 = 8B, 8 = 16B (REX.W). Default: 1 for 'b', 4 for 'v', 8 for d64/f64. */
  size?: 1 | 2 | 4 | 8;
  /** ModRM.reg operand (Gb/Gv/Gy/Gd 0..15, AH..BH for Gb; V: XMM 0..15; P: MM 0..7). Ignored for
   *  forms with an opcode extension. */
  reg?: number;
  /** ModRM r/m operand: a register (GPR 0..15, AH..BH for Eb; XMM 0..15 for W/U; MM 0..7 for Q/N;
   *  i of ST(i) for STi) or a memory reference. Default register 0. Ignored for '#N' forms. */
  rm?: number | MemRef;
  /** Zb/Zv register (0..15, AH..BH for Zb): its low 3 bits must equal the opcode's. Default: op & 7. */
  zreg?: number;
  /** First immediate: Ib/Iw/Iz/Iv value, Jb/Jz displacement, moffs absolute address. */
  imm?: number | bigint;
  /** Second immediate (ENTER's Ib nesting level). */
  imm2?: number;
  /** Segment override for instructions without a ModRM memory operand (moffs, strings, XLAT). */
  seg?: Seg;
  /** 0x67 for instructions without a ModRM memory operand (moffs, strings, XLAT, LOOP, JRCXZ). */
  addr32?: boolean;
  /** REP/REPE (0xf3) or REPNE (0xf2). */
  rep?: 0xf3 | 0xf2;
  lock?: boolean;
  /** Extra REX bits (0x40..0x4f) OR'ed in; its presence forces a REX prefix (redundant REX). */
  rex?: number;
  /** Extra legacy prefix bytes emitted first (e.g. a redundant 0x3e or a 66h on a byte form). */
  legacy?: number[];
}

/** Operand token classes. E/M/W/U/Q/N/STi/rmfix live in ModRM.rm, G/V/P in ModRM.reg (see the
 *  token lists in the headers of wasm/cpu/isa-table.ts and isa-table-fpu.ts). */
export type TokenClass = 'E' | 'M' | 'G' | 'Z' | 'I' | 'J' | 'O' | 'X' | 'Y' | 'fixed'
  | 'V' | 'W' | 'U' | 'P' | 'Q' | 'N' | 'STi' | 'rmfix';

export function tokenClass(t: string): TokenClass {
  const c = t[0];
  if (t === 'AL' || t === 'rAX' || t === 'CL' || t === 'DX' || t === '1' || t === 'AX' || t === 'ST') return 'fixed';
  if (t === 'STi') return 'STi';
  if (t === 'RdMw') return 'E';
  if (/^#[0-7]$/.test(t)) return 'rmfix';
  if (c === 'E' || c === 'M' || c === 'G' || c === 'Z' || c === 'I' || c === 'J' || c === 'O' || c === 'X' || c === 'Y') return c;
  if (t === 'V' || t === 'U' || t === 'P' || t === 'N' || ((c === 'W' || c === 'Q') && t.length === 2)) return c as TokenClass;
  throw new Error(`unknown operand token ${t}`);
}

const RM_CLASSES = new Set<TokenClass>(['E', 'M', 'W', 'U', 'Q', 'N', 'STi', 'rmfix']);
const REG_CLASSES = new Set<TokenClass>(['G', 'V', 'P']);

/** The r/m operand token (Eb/Ev/.../M/Mq/Mdq, W*, U, Q*, N, STi, #N) of a form, if any. */
export function rmToken(form: Form): string | undefined {
  return form.ops.find((t) => RM_CLASSES.has(tokenClass(t)));
}
/** The GPR ModRM.reg token (Gb/Gv/Gy/Gd), if any. */
export function gToken(form: Form): string | undefined {
  return form.ops.find((t) => t[0] === 'G');
}
/** The ModRM.reg operand token of any register kind (G*, V = XMM, P = MM), if any. */
export function regToken(form: Form): string | undefined {
  return form.ops.find((t) => REG_CLASSES.has(tokenClass(t)));
}
/** r/m tokens that only take a register (mod = 3). */
export function isRegOnlyRm(t: string | undefined): boolean {
  return t !== undefined && ['U', 'N', 'STi', 'rmfix'].includes(tokenClass(t));
}
/** r/m register kind of a token: GPR, XMM (0..15) or MM/ST (0..7). */
export function rmRegKind(t: string): 'gpr' | 'xmm' | 'mm' | 'st' | 'none' {
  switch (tokenClass(t)) {
    case 'E': return 'gpr';
    case 'W': case 'U': return 'xmm';
    case 'Q': case 'N': return 'mm';
    case 'STi': return 'st';
    default: return 'none';
  }
}
export function zToken(form: Form): string | undefined {
  return form.ops.find((t) => t[0] === 'Z');
}

export function defaultSize(form: Form): 1 | 2 | 4 | 8 {
  switch (form.osize) {
    case 'b': return 1;
    case 'w': return 2;
    case 'd64': case 'f64': return 8;
    default: return 4;
  }
}

/** Bytes of the r/m operand as accessed in memory (for Eb/Ew/Ed/Eq fixed, else the operand size). */
export function rmAccessSize(form: Form, size: number): number {
  const t = rmToken(form);
  switch (t) {
    case 'Eb': return 1;
    case 'Ew': case 'Mw': case 'RdMw': return 2;
    case 'Ed': case 'Md': case 'Wd': case 'Qd': return 4;
    case 'Eq': case 'Mq': case 'Wq': case 'Qq': return 8;
    case 'Mdq': return size === 8 ? 16 : 8;
    case 'Mt': return 10;
    case 'Wx': case 'Wu': case 'Mo': return 16;
    case 'Me': return size === 2 ? 14 : 28;
    case 'Ms': return size === 2 ? 94 : 108;
    case 'Mx': return 512;
    default: return size;
  }
}

/** Memory operands that legacy SSE requires to be 16-byte aligned (#GP otherwise). */
export function rmNeedsAlign16(form: Form): boolean {
  const t = rmToken(form);
  return t === 'Wx' || t === 'Mo' || t === 'Mx';
}

function le(out: number[], value: number | bigint, n: number): void {
  let v = BigInt.asUintN(n * 8, BigInt(value));
  for (let i = 0; i < n; i++) { out.push(Number(v & 0xffn)); v >>= 8n; }
}

const SCALE_BITS: Record<number, number> = { 1: 0, 2: 1, 4: 2, 8: 3 };

export function fitsInt8(v: number): boolean { return v >= -128 && v <= 127; }

export function encode(form: Form, ops: Operands = {}): Uint8Array {
  const size = ops.size ?? defaultSize(form);
  let op66 = false;
  let W = 0, R = 0, X = 0, B = 0;
  switch (form.osize) {
    case 'b': if (size !== 1) throw new Error(`${form.mn}: byte form with size ${size}`); break;
    case 'v':
      if (size === 1) throw new Error(`${form.mn}: size 1 for a v form`);
      op66 = size === 2; W = size === 8 ? 1 : 0;
      break;
    case 'd64':
      if (size !== 2 && size !== 8) throw new Error(`${form.mn}: d64 form with size ${size}`);
      op66 = size === 2;
      break;
    case 'f64': if (size !== 8) throw new Error(`${form.mn}: f64 form with size ${size}`); break;
    default: break;
  }

  let needRex = ops.rex !== undefined;
  let noRex = false;
  const reg8 = (r: number, isByte: boolean): number => {
    if (!Number.isInteger(r) || r < 0 || r > (isByte ? 19 : 15)) throw new Error(`${form.mn}: bad register ${r}`);
    if (!isByte) return r;
    if (r >= 16) { noRex = true; return r - 12; }
    if (r >= 4 && r <= 7) needRex = true;
    return r;
  };

  const rmTok = rmToken(form);
  const gTok = regToken(form);
  const zTok = zToken(form);
  const gCls = gTok ? tokenClass(gTok) : undefined;
  const rmCls = rmTok ? tokenClass(rmTok) : undefined;
  let seg: Seg | undefined = ops.seg;
  let addr32 = !!ops.addr32;
  const tail: number[] = [];

  if (form.modrm) {
    let regField: number;
    if (form.ext !== undefined) regField = form.ext;
    else if (gCls === 'P') {
      const r = ops.reg ?? 0;
      if (!Number.isInteger(r) || r < 0 || r > 7) throw new Error(`${form.mn}: bad MM register ${r}`);
      regField = r; // REX.R is ignored for MM registers
    } else {
      const r = reg8(ops.reg ?? 0, gTok === 'Gb');
      regField = r & 7; R = r >> 3;
    }
    const rm = rmCls === 'rmfix' ? Number(rmTok!.slice(1)) : ops.rm ?? 0;
    let mod: number, rmField: number;
    let sib: number | undefined;
    let dispBytes = 0, disp = 0;
    if (typeof rm === 'number') {
      if (rmTok && rmTok[0] === 'M') throw new Error(`${form.mn}: register operand for a memory-only form`);
      if (rmCls === 'Q' || rmCls === 'N' || rmCls === 'STi' || rmCls === 'rmfix') {
        if (!Number.isInteger(rm) || rm < 0 || rm > 7) throw new Error(`${form.mn}: bad MM/ST register ${rm}`);
        mod = 3; rmField = rm; // REX.B is ignored for MM and ST registers
      } else {
        const r = reg8(rm, rmTok === 'Eb');
        mod = 3; rmField = r & 7; B = r >> 3;
      }
    } else {
      if (isRegOnlyRm(rmTok)) throw new Error(`${form.mn}: memory operand for a register-only form`);
      if (rm.seg) seg = rm.seg;
      if (rm.addr32) addr32 = true;
      disp = rm.disp ?? 0;
      if (!Number.isInteger(disp) || disp < -0x80000000 || disp > 0xffffffff) throw new Error(`${form.mn}: bad displacement ${disp}`);
      const index = rm.index;
      const scale = rm.scale ?? 1;
      if (SCALE_BITS[scale] === undefined) throw new Error(`${form.mn}: bad scale ${scale}`);
      if (index !== undefined && (index === 4 || index < 0 || index > 15 || !Number.isInteger(index))) {
        throw new Error(`${form.mn}: bad index register ${index}`);
      }
      if (rm.base === 'rip') {
        if (index !== undefined) throw new Error(`${form.mn}: RIP-relative with an index`);
        if (rm.dispSize !== undefined && rm.dispSize !== 32) throw new Error(`${form.mn}: RIP-relative needs disp32`);
        mod = 0; rmField = 5; dispBytes = 4;
      } else if (rm.base === undefined) {
        if (rm.dispSize !== undefined && rm.dispSize !== 32) throw new Error(`${form.mn}: no-base addressing needs disp32`);
        mod = 0; rmField = 4; dispBytes = 4;
        const ix = index ?? 4;
        X = ix >> 3;
        sib = (SCALE_BITS[index === undefined ? 1 : scale] << 6) | ((ix & 7) << 3) | 5;
      } else {
        const base = rm.base;
        if (!Number.isInteger(base) || base < 0 || base > 15) throw new Error(`${form.mn}: bad base register ${base}`);
        B = base >> 3;
        let ds = rm.dispSize ?? (disp === 0 && (base & 7) !== 5 ? 0 : fitsInt8(disp) ? 8 : 32);
        if (ds === 0 && disp !== 0) throw new Error(`${form.mn}: dispSize 0 with a displacement`);
        if (ds === 0 && (base & 7) === 5) throw new Error(`${form.mn}: RBP/R13 base needs a displacement`);
        if (ds === 8 && !fitsInt8(disp)) throw new Error(`${form.mn}: disp8 out of range: ${disp}`);
        mod = ds === 0 ? 0 : ds === 8 ? 1 : 2;
        dispBytes = ds / 8;
        if (index !== undefined || (base & 7) === 4) {
          rmField = 4;
          const ix = index ?? 4;
          X = ix >> 3;
          sib = (SCALE_BITS[index === undefined ? 1 : scale] << 6) | ((ix & 7) << 3) | (base & 7);
        } else rmField = base & 7;
      }
    }
    tail.push((mod << 6) | (regField << 3) | rmField);
    if (sib !== undefined) tail.push(sib);
    if (dispBytes) le(tail, disp, dispBytes);
  }

  if (zTok) {
    const r = reg8(ops.zreg ?? (form.op & 7), zTok === 'Zb');
    if ((r & 7) !== (form.op & 7)) throw new Error(`${form.mn}: register ${r} does not match opcode ${form.op.toString(16)}`);
    B = r >> 3;
  }

  // Immediates
  const imm = ops.imm ?? 0;
  switch (form.imm) {
    case 'none': break;
    case 'b': le(tail, imm, 1); break;
    case 'w': le(tail, imm, 2); break;
    case 'z': le(tail, imm, size === 2 ? 2 : 4); break;
    case 'v': le(tail, imm, size); break;
    case 'wb': le(tail, imm, 2); le(tail, ops.imm2 ?? 0, 1); break;
    case 'moffs': le(tail, imm, addr32 ? 4 : 8); break;
    case 'd': le(tail, imm, 4); break;
  }

  const out: number[] = [];
  if (ops.legacy) out.push(...ops.legacy);
  if (ops.lock) out.push(0xf0);
  if (seg) out.push(SEG_PREFIX[seg]);
  if (op66) out.push(0x66);
  if (addr32) out.push(0x67);
  if (ops.rep) out.push(ops.rep);
  if (form.prefix !== undefined) out.push(form.prefix);
  const rex = 0x40 | (W << 3) | (R << 2) | (X << 1) | B | ((ops.rex ?? 0) & 0xf);
  if (rex !== 0x40 || needRex) {
    if (noRex) throw new Error(`${form.mn}: AH/CH/DH/BH cannot be encoded with a REX prefix`);
    out.push(rex);
  }
  if (form.map === 1) out.push(0x0f);
  else if (form.map === 2) out.push(0x0f, 0x38);
  else if (form.map === 3) out.push(0x0f, 0x3a);
  out.push(form.op);
  out.push(...tail);
  if (out.length > 15) throw new Error(`${form.mn}: instruction longer than 15 bytes`);
  return Uint8Array.from(out);
}

// ---- Formatting (for case descriptions) ----

const R64 = ['rax', 'rcx', 'rdx', 'rbx', 'rsp', 'rbp', 'rsi', 'rdi', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15'];
const R32 = ['eax', 'ecx', 'edx', 'ebx', 'esp', 'ebp', 'esi', 'edi', 'r8d', 'r9d', 'r10d', 'r11d', 'r12d', 'r13d', 'r14d', 'r15d'];
const R16 = ['ax', 'cx', 'dx', 'bx', 'sp', 'bp', 'si', 'di', 'r8w', 'r9w', 'r10w', 'r11w', 'r12w', 'r13w', 'r14w', 'r15w'];
const R8 = ['al', 'cl', 'dl', 'bl', 'spl', 'bpl', 'sil', 'dil', 'r8b', 'r9b', 'r10b', 'r11b', 'r12b', 'r13b', 'r14b', 'r15b',
  'ah', 'ch', 'dh', 'bh'];

/** Register name for a register number (AH..BH = 16..19 for bytes) and a size in bytes. */
export function regName(r: number, size: number): string {
  switch (size) {
    case 1: return R8[r];
    case 2: return R16[r];
    case 4: return R32[r];
    default: return R64[r];
  }
}

export const CC_NAMES = ['o', 'no', 'b', 'ae', 'e', 'ne', 'be', 'a', 's', 'ns', 'p', 'np', 'l', 'ge', 'le', 'g'];

const PTR: Record<number, string> = { 1: 'byte', 2: 'word', 4: 'dword', 8: 'qword', 10: 'tbyte', 16: 'oword' };

function hex(v: number | bigint): string {
  const b = BigInt(v);
  return b < 0n ? `-0x${(-b).toString(16)}` : `0x${b.toString(16)}`;
}

/** Intel-syntax address expression, e.g. `gs:[rbx+rcx*4+0x10]`. */
export function formatMem(m: MemRef, accessSize?: number): string {
  const regs = m.addr32 ? R32 : R64;
  const parts: string[] = [];
  if (m.base === 'rip') parts.push(m.addr32 ? 'eip' : 'rip');
  else if (m.base !== undefined) parts.push(regs[m.base]);
  if (m.index !== undefined) parts.push(`${regs[m.index]}*${m.scale ?? 1}`);
  let s = parts.join('+');
  const d = m.disp ?? 0;
  const sd = m.base === undefined && m.index === undefined ? d : d > 0x7fffffff ? d - 0x100000000 : d;
  if (sd !== 0 || !s) s += s ? (sd < 0 ? `-${hex(-sd)}` : `+${hex(sd)}`) : hex(d >>> 0);
  const ptr = accessSize !== undefined && PTR[accessSize] ? `${PTR[accessSize]} ` : '';
  return `${ptr}${m.seg ? `${m.seg}:` : ''}[${s}]`;
}

/** Mnemonic of a form at an operand size (cc substituted, CBW/CWDE/CDQE, string suffixes...). */
export function mnemonic(form: Form, size: number, ops: Operands = {}): string {
  const cc = CC_NAMES[form.op & 15];
  const sfx = ({ 1: 'b', 2: 'w', 4: 'd', 8: 'q' } as Record<number, string>)[size];
  switch (form.mn) {
    case 'jcc': return `j${cc}`;
    case 'setcc': return `set${cc}`;
    case 'cmovcc': return `cmov${cc}`;
    case 'cbw': return size === 2 ? 'cbw' : size === 4 ? 'cwde' : 'cdqe';
    case 'cwd': return size === 2 ? 'cwd' : size === 4 ? 'cdq' : 'cqo';
    case 'cmpxchg8b': return size === 8 ? 'cmpxchg16b' : 'cmpxchg8b';
    case 'jrcxz': return ops.addr32 ? 'jecxz' : 'jrcxz';
    case 'pushf': case 'popf': return size === 2 ? `${form.mn}w` : `${form.mn}q`;
    case 'movd': return size === 8 ? 'movq' : 'movd';
    case 'fxsave': case 'fxrstor': return size === 8 ? `${form.mn}64` : form.mn;
    case 'fnstenv': case 'fldenv': case 'fnsave': case 'frstor': return size === 2 ? `${form.mn}w` : form.mn;
    case 'movs': case 'cmps': case 'stos': case 'lods': case 'scas': return form.mn + sfx;
    default: return form.mn;
  }
}

/** A one-line Intel-syntax rendering of an instance. `next` = address of the following instruction
 *  (to print branch targets as absolute addresses); without it they print as `$+disp`. */
export function formatInstruction(form: Form, ops: Operands = {}, next?: bigint): string {
  const size = ops.size ?? defaultSize(form);
  const pre: string[] = [];
  if (ops.lock) pre.push('lock');
  if (ops.rep) {
    const cc = form.rep === 'repcc';
    pre.push(ops.rep === 0xf3 ? (cc ? 'repe' : 'rep') : 'repne');
  }
  const mn = mnemonic(form, size, ops);
  const rmAcc = rmAccessSize(form, size);
  const opnds: string[] = [];
  const strSeg = ops.seg ? `${ops.seg}:` : '';
  const aregs = ops.addr32 ? R32 : R64;
  for (const t of form.ops) {
    switch (tokenClass(t)) {
      case 'E': case 'M': case 'W': case 'U': case 'Q': case 'N': case 'STi': {
        const rm = ops.rm ?? 0;
        if (typeof rm === 'number') {
          const kind = rmRegKind(t);
          if (kind === 'xmm') opnds.push(`xmm${rm}`);
          else if (kind === 'mm') opnds.push(`mm${rm}`);
          else if (kind === 'st') opnds.push(`st(${rm})`);
          else {
            const sz = t === 'Eb' ? 1 : t === 'Ew' ? 2 : t === 'Ed' || t === 'RdMw' ? 4 : t === 'Eq' ? 8 : size;
            opnds.push(regName(rm, sz));
          }
        } else opnds.push(formatMem(rm, form.mn === 'lea' || form.mn === 'nop' ? undefined : rmAcc));
        break;
      }
      case 'rmfix': break;
      case 'V': opnds.push(`xmm${ops.reg ?? 0}`); break;
      case 'P': opnds.push(`mm${ops.reg ?? 0}`); break;
      case 'G': opnds.push(regName(ops.reg ?? 0, t === 'Gb' ? 1 : t === 'Gd' ? 4 : size)); break;
      case 'Z': opnds.push(regName(ops.zreg ?? (form.op & 7), t === 'Zb' ? 1 : size)); break;
      case 'I': {
        const v = BigInt(t === 'Ib' && form.imm === 'wb' ? ops.imm2 ?? 0 : ops.imm ?? 0);
        const bits = t === 'Ib' ? 8 : t === 'Iw' ? 16 : t === 'Iz' ? Math.min(size, 4) * 8 : size * 8;
        opnds.push(hex(BigInt.asUintN(bits, v)));
        break;
      }
      case 'J': {
        const d = Number(ops.imm ?? 0);
        opnds.push(next !== undefined ? hex(next + BigInt(d)) : `$${d < 0 ? '-' : '+'}${hex(Math.abs(d))}`);
        break;
      }
      case 'O': opnds.push(`${PTR[size]} ${strSeg}[${hex(BigInt.asUintN(ops.addr32 ? 32 : 64, BigInt(ops.imm ?? 0)))}]`); break;
      case 'X': opnds.push(`${PTR[size]} ${strSeg}[${aregs[6]}]`); break;
      case 'Y': opnds.push(`${PTR[size]} es:[${aregs[7]}]`); break;
      case 'fixed':
        opnds.push(t === 'AL' ? 'al' : t === 'rAX' ? regName(0, size) : t === 'CL' ? 'cl' : t === 'DX' ? 'dx'
          : t === 'AX' ? 'ax' : t === 'ST' ? 'st' : '1');
        break;
    }
  }
  if (form.mn === 'xlat') opnds.push(`byte ${strSeg}[${aregs[3]}+al]`);
  if ((form.mn === 'loop' || form.mn === 'loope' || form.mn === 'loopne') && ops.addr32) pre.push('addr32');
  return [...pre, mn].join(' ') + (opnds.length ? ` ${opnds.join(', ')}` : '');
}

export function hexBytes(code: Uint8Array): string {
  return Array.from(code, (b) => b.toString(16).padStart(2, '0')).join(' ');
}
