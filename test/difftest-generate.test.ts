// The differential tester's encoder and case generator (emu/difftest/encode.ts, generate.ts):
// objdump agrees with the encoder on every form; generation is deterministic and covers every form
// key; memory operands, stack slots and string ranges stay in the data region; branches land on INT3.
// Addresses are recomputed here from the instruction bytes by an independent little decoder.

import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { forms, type Form } from '../wasm/cpu/isa-table.ts';
import { fpuForms } from '../wasm/cpu/isa-table-fpu.ts';
import { CODE_ADDR, CODE_OFFSET, CODE_SIZE, DATA_ADDR, DATA_SIZE, GS_BASE, fillPattern, defaultFpuImage } from '../emu/difftest/types.ts';
import { encode, formatInstruction, hexBytes, CC_NAMES, AH, type Operands } from '../emu/difftest/encode.ts';
import {
  generateCases, generateCase, allFormKeys, formVariants, flagsMaskFor, fswMaskFor, type GeneratedCase,
} from '../emu/difftest/generate.ts';
import { differences, fpuDifferences } from '../emu/difftest/compare.ts';

const hasObjdump = spawnSync('objdump', ['--version']).status === 0;
const INSN = BigInt(CODE_ADDR + CODE_OFFSET);
const DLO = BigInt(DATA_ADDR), DHI = BigInt(DATA_ADDR + DATA_SIZE);
const FAR = 1n << 40n; // addresses at or above this fault on both sides (never mapped / non-canonical)

// ---------------------------------------------------------------- objdump

interface Dis { len: number; text: string }

/** Disassemble each code at its own 32-byte slot (INT3 padding), so one misdecode cannot shift the rest. */
function objdump(codes: Uint8Array[]): Dis[] {
  const SLOT = 32;
  const buf = new Uint8Array(codes.length * SLOT).fill(0xcc);
  codes.forEach((c, i) => buf.set(c, i * SLOT));
  const dir = mkdtempSync(join(tmpdir(), 'hvlab-objdump-'));
  try {
    const file = join(dir, 'code.bin');
    writeFileSync(file, buf);
    const r = spawnSync('objdump', ['-D', '-b', 'binary', '-m', 'i386:x86-64', '-M', 'intel', '--insn-width=16', file],
      { encoding: 'utf8', maxBuffer: 1 << 28 });
    if (r.status !== 0) throw new Error(r.stderr);
    const byAddr = new Map<number, Dis>();
    for (const line of r.stdout.split('\n')) {
      const m = /^\s*([0-9a-f]+):\t([0-9a-f ]+?)\s*\t(.*)$/.exec(line);
      if (m) byAddr.set(parseInt(m[1], 16), { len: m[2].trim().split(/\s+/).length, text: m[3].trim() });
    }
    return codes.map((_, i) => byAddr.get(i * SLOT) ?? { len: 0, text: '<none>' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const PREFIX_WORD = /^(lock|rep|repz|repnz|repe|repne|data16|data32|addr32|rex(\.[wrxb]+)?|cs|ds|es|ss|fs|gs|notrack|bnd)$/i;

function splitDis(text: string): { mn: string; operands: string } {
  const toks = text.split(/\s+/);
  let i = 0;
  while (i < toks.length - 1 && PREFIX_WORD.test(toks[i])) i++;
  return { mn: toks[i].toLowerCase(), operands: toks.slice(i + 1).join(' ').toLowerCase().replace(/\s*#.*$/, '') };
}

/** Mnemonics objdump may print for a form at an operand size (before suffix stripping). */
function expectedMnemonics(form: Form, size: number, addr32: boolean): string[] {
  const cc = CC_NAMES[form.op & 15];
  switch (form.mn) {
    case 'jcc': return [`j${cc}`];
    case 'setcc': return [`set${cc}`];
    case 'cmovcc': return [`cmov${cc}`];
    case 'cbw': return [size === 2 ? 'cbw' : size === 4 ? 'cwde' : 'cdqe', size === 2 ? 'cbtw' : size === 4 ? 'cwtl' : 'cltq'];
    case 'cwd': return [size === 2 ? 'cwd' : size === 4 ? 'cdq' : 'cqo', size === 2 ? 'cwtd' : size === 4 ? 'cltd' : 'cqto'];
    case 'cmpxchg8b': return [size === 8 ? 'cmpxchg16b' : 'cmpxchg8b'];
    case 'sal': return ['sal', 'shl'];
    case 'mov': return ['mov', 'movabs'];
    case 'jrcxz': return [addr32 ? 'jecxz' : 'jrcxz'];
    case 'xlat': return ['xlat', 'xlatb'];
    case 'fence': return ['lfence', 'mfence', 'sfence'];
    case 'hint_nop': return ['nop', 'prefetchnta', 'prefetcht0', 'prefetcht1', 'prefetcht2', 'bndldx', 'bndstx', 'bndmov', 'bndcl', 'bndcu', 'bndcn', 'bndmk'];
    case 'movs': case 'cmps': case 'stos': case 'lods': case 'scas': {
      const s = ({ 1: 'b', 2: 'w', 4: 'd', 8: 'q' } as Record<number, string>)[size];
      return [form.mn, form.mn + s];
    }
    default: return [form.mn];
  }
}

function mnemonicOk(got: string, expected: string[]): boolean {
  if (expected.includes(got)) return true;
  return /[wlq]$/.test(got) && expected.includes(got.slice(0, -1));
}

const REG_WORDS = new Set([
  ...Array.from({ length: 16 }, (_, i) => `xmm${i}`), ...Array.from({ length: 8 }, (_, i) => `mm${i}`),
  ...Array.from({ length: 8 }, (_, i) => `st${i}`), 'st',
  ...'rax rcx rdx rbx rsp rbp rsi rdi r8 r9 r10 r11 r12 r13 r14 r15'.split(' '),
  ...'eax ecx edx ebx esp ebp esi edi r8d r9d r10d r11d r12d r13d r14d r15d'.split(' '),
  ...'ax cx dx bx sp bp si di r8w r9w r10w r11w r12w r13w r14w r15w'.split(' '),
  ...'al cl dl bl spl bpl sil dil r8b r9b r10b r11b r12b r13b r14b r15b ah ch dh bh'.split(' '),
  'rip', 'eip',
]);

function regsIn(s: string): string[] {
  const t = s.toLowerCase().replace(/st\((\d)\)/g, 'st$1'); // x87: st(1) -> st1 (st alone is ST(0))
  return [...new Set((t.match(/[a-z0-9]+/g) ?? []).filter((w) => REG_WORDS.has(w)))].sort();
}

/** The memory expression inside brackets, normalised (objdump: ds:0x10 -> [0x10], +0x0 dropped, eiz). */
function memExpr(s: string): string | undefined {
  let t = s.toLowerCase().replace(/\s*#.*$/, '');
  t = t.replace(/\b([c-gs]s):(0x[0-9a-f]+)/g, '$1:[$2]');
  const m = /\[([^\]]+)\]/.exec(t);
  if (!m) return undefined;
  let e = m[1].replace(/[re]iz\*1\+?/, '').replace(/\+0x0$/, '');
  e = e.replace(/\+0x(f{8}[0-9a-f]{8})$/, (_, h) => `-0x${(BigInt.asUintN(64, -BigInt('0x' + h))).toString(16)}`);
  return e;
}

// ---------------------------------------------------------------- independent decoder / address model

interface Decoded {
  len: number;
  addr32: boolean;
  seg?: number;
  op66: boolean;
  rep?: number;
  lock: boolean;
  rex: number;
  map: number;
  op: number;
  mod?: number;
  reg?: number; // with REX.R
  rm?: number; // register number (mod 3, with REX.B)
  mem?: { base?: number | 'rip'; index?: number; scale: number; disp: bigint };
  zreg?: number;
}

function decode(code: Uint8Array, form: Form): Decoded {
  let i = 0;
  const d: Decoded = { len: code.length, addr32: false, op66: false, lock: false, rex: 0, map: 0, op: 0 };
  for (;;) {
    const b = code[i];
    if (b === 0x66) d.op66 = true;
    else if (b === 0x67) d.addr32 = true;
    else if (b === 0xf0) d.lock = true;
    else if (b === 0xf2 || b === 0xf3) d.rep = b;
    else if ([0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65].includes(b)) d.seg = b;
    else break;
    i++;
  }
  if ((code[i] & 0xf0) === 0x40) d.rex = code[i++];
  if (code[i] === 0x0f) {
    i++;
    if (code[i] === 0x38) { d.map = 2; i++; } else if (code[i] === 0x3a) { d.map = 3; i++; } else d.map = 1;
  }
  d.op = code[i++];
  const R = (d.rex >> 2) & 1, X = (d.rex >> 1) & 1, B = d.rex & 1;
  d.zreg = (d.op & 7) | (B << 3);
  if (form.modrm) {
    const modrm = code[i++];
    const mod = modrm >> 6, rm = modrm & 7;
    d.mod = mod;
    d.reg = ((modrm >> 3) & 7) | (R << 3);
    if (mod === 3) d.rm = rm | (B << 3);
    else {
      const sx = (n: number): bigint => {
        let v = 0n;
        for (let k = n - 1; k >= 0; k--) v = (v << 8n) | BigInt(code[i + k]);
        i += n;
        return BigInt.asIntN(n * 8, v);
      };
      if (rm === 4) {
        const sib = code[i++];
        const idx = ((sib >> 3) & 7) | (X << 3);
        const sbase = sib & 7;
        const mem: Decoded['mem'] = { scale: 1 << (sib >> 6), disp: 0n };
        if (idx !== 4) mem.index = idx;
        if (sbase === 5 && mod === 0) mem.disp = sx(4);
        else mem.base = sbase | (B << 3);
        if (mod === 1) mem.disp = sx(1);
        if (mod === 2) mem.disp = sx(4);
        d.mem = mem;
      } else if (rm === 5 && mod === 0) {
        d.mem = { base: 'rip', scale: 1, disp: sx(4) };
      } else {
        d.mem = { base: rm | (B << 3), scale: 1, disp: mod === 1 ? sx(1) : mod === 2 ? sx(4) : 0n };
      }
    }
  }
  return d;
}

function caseSize(c: GeneratedCase): number { return Number(c.formKey.split(':')[2]) / 8; }

/** Linear address of the ModRM memory operand. `baseAdjust`: value added to an RSP base (POP Ev). */
function modrmLinear(c: GeneratedCase, d: Decoded, baseAdjust = 0n): bigint {
  const m = d.mem!;
  const next = INSN + BigInt(c.code.length);
  let ea = m.disp;
  if (m.base === 'rip') ea += next;
  else if (m.base !== undefined) ea += c.regs[m.base] + (m.base === 4 ? baseAdjust : 0n);
  if (m.index !== undefined) ea += c.regs[m.index] * BigInt(m.scale);
  ea = d.addr32 ? BigInt.asUintN(32, ea) : BigInt.asUintN(64, ea);
  if (d.seg === 0x65) ea = BigInt.asUintN(64, ea + BigInt(GS_BASE));
  return ea;
}

interface Access { what: string; addr: bigint; size: number }

/** Every memory access the instruction may make (upper bounds for REP strings). */
function accesses(c: GeneratedCase): Access[] {
  const f = c.form;
  const d = decode(c.code, f);
  const size = caseSize(c);
  const out: Access[] = [];
  const rsp = c.regs[4], rbp = c.regs[5];
  const mn = f.mn;
  const rmTok = f.ops.find((t) => t[0] === 'E' || t[0] === 'M');
  if (d.mem && mn !== 'lea') {
    const adj = mn === 'pop' ? BigInt(size) : 0n;
    const ea = modrmLinear(c, d, adj);
    let acc = rmTok === 'Eb' ? 1 : rmTok === 'Ew' ? 2 : rmTok === 'Ed' ? 4 : rmTok === 'Eq' ? 8 : rmTok === 'Mdq' ? 2 * size : size;
    if (mn === 'call' || mn === 'jmp') acc = 8;
    if (f.fam === 'bit' && f.map === 1 && f.op !== 0xba && f.ops[1] === 'Gv') {
      const bits = size * 8;
      const off = BigInt.asIntN(bits, c.regs[d.reg!]);
      const q = off >= 0n ? off / BigInt(bits) : -((-off + BigInt(bits) - 1n) / BigInt(bits));
      out.push({ what: 'bit-string chunk', addr: BigInt.asUintN(64, ea + q * BigInt(size)), size });
    } else out.push({ what: 'modrm operand', addr: ea, size: acc });
  }
  const addr = (v: bigint) => (d.addr32 ? BigInt.asUintN(32, v) : v);
  const gs = (v: bigint) => (d.seg === 0x65 ? v + BigInt(GS_BASE) : v);
  const push = (n: number) => out.push({ what: 'stack push', addr: rsp - BigInt(n), size: n });
  const pop = (n: number) => out.push({ what: 'stack pop', addr: rsp, size: n });
  switch (mn) {
    case 'push': push(size); break;
    case 'pop': pop(size); break;
    case 'pushf': push(size); break;
    case 'popf': pop(size); break;
    case 'call': push(8); break;
    case 'ret': pop(8); break;
    case 'leave': out.push({ what: 'leave pop', addr: rbp, size }); break;
    case 'enter': {
      const level = c.code[c.code.length - 1] & 31;
      push(size * (level + 1));
      if (level > 1) out.push({ what: 'enter frame copy', addr: rbp - BigInt(size * (level - 1)), size: size * (level - 1) });
      break;
    }
    case 'xlat':
      out.push({ what: 'xlat', addr: gs(addr(c.regs[3] + (c.regs[0] & 0xffn))), size: 1 });
      break;
    default: break;
  }
  if (f.imm === 'moffs') {
    const n = d.addr32 ? 4 : 8;
    let a = 0n;
    for (let k = n - 1; k >= 0; k--) a = (a << 8n) | BigInt(c.code[c.code.length - n + k]);
    out.push({ what: 'moffs', addr: gs(a), size });
  }
  if (f.fam === 'string') {
    const count = d.rep ? (d.addr32 ? c.regs[1] & 0xffffffffn : c.regs[1]) : 1n;
    if (count > 0n) {
      expect(count).toBeLessThanOrEqual(64n);
      const span = Number(count) * size;
      const df = (c.rflags & 0x400n) !== 0n;
      const range = (start: bigint) => (df ? start - BigInt(span - size) : start);
      if (mn === 'movs' || mn === 'cmps' || mn === 'lods') out.push({ what: 'string source', addr: gs(range(addr(c.regs[6]))), size: span });
      if (mn !== 'lods') out.push({ what: 'string destination', addr: range(addr(c.regs[7])), size: span });
    }
  }
  return out;
}

function inData(a: Access): boolean {
  return a.addr >= DLO && a.addr + BigInt(a.size) <= DHI;
}

function faultsOnBothSides(addr: bigint): boolean {
  const top = addr >> 47n;
  const canonical = top === 0n || top === (1n << 17n) - 1n;
  return !canonical || addr >= FAR;
}

/** Little-endian qword of the initial data pattern at addr (bytes past the region read as 0). */
function patternQword(seed: number, addr: bigint): bigint {
  const p = new Uint8Array(DATA_SIZE);
  fillPattern(seed, p);
  const off = Number(addr - DLO);
  let v = 0n;
  for (let k = 7; k >= 0; k--) v = (v << 8n) | BigInt(p[off + k] ?? 0);
  return v;
}

// ---------------------------------------------------------------- tests

const KEYS = allFormKeys();
const CASES = generateCases({ seed: 0x5eed, count: KEYS.length * 4 });

describe('difftest encoder', () => {
  it('encodes ModRM/SIB corner cases', () => {
    const add = forms.find((f) => f.mn === 'add' && f.op === 0x01)!;
    const add8 = forms.find((f) => f.mn === 'add' && f.op === 0x00)!;
    const hex = (o: Operands, f: Form = add) => hexBytes(encode(f, o));
    expect(hex({ size: 8, reg: 0, rm: 3 })).toBe('48 01 c3');
    expect(hex({ size: 8, reg: 0, rm: { base: 4 } })).toBe('48 01 04 24'); // RSP base needs a SIB
    expect(hex({ size: 8, reg: 0, rm: { base: 12 } })).toBe('49 01 04 24'); // R12 too
    expect(hex({ size: 8, reg: 0, rm: { base: 5 } })).toBe('48 01 45 00'); // RBP base: disp8 0
    expect(hex({ size: 8, reg: 0, rm: { base: 13 } })).toBe('49 01 45 00'); // R13 too
    expect(hex({ size: 4, reg: 0, rm: { disp: 0x300000 } })).toBe('01 04 25 00 00 30 00'); // no base: SIB disp32
    expect(hex({ size: 4, reg: 0, rm: { base: 'rip', disp: -16 } })).toBe('01 05 f0 ff ff ff');
    expect(hex({ size: 2, reg: 9, rm: { base: 1, index: 12, scale: 8, disp: 0x10, seg: 'gs', addr32: true } }))
      .toBe('65 66 67 46 01 4c e1 10'); // seg, 66, 67, REX.RX, opcode
    expect(hex({ reg: AH, rm: AH }, add8)).toBe('00 e4'); // add ah, ah
    expect(() => encode(add8, { reg: AH, rm: 4 })).toThrow(); // AH with SPL
    expect(hex({ reg: 4, rm: 4 }, add8)).toBe('40 00 e4'); // add spl, spl
    expect(() => encode(add8, { reg: AH, rm: 8 })).toThrow(); // AH with REX
    expect(() => encode(add, { size: 8, rm: { base: 0, index: 4 } })).toThrow(); // RSP index
    const movImm = forms.find((f) => f.mn === 'mov' && f.op === 0xb8 + 1)!;
    expect(hex({ size: 8, zreg: 9, imm: -1n }, movImm)).toBe('49 b9 ff ff ff ff ff ff ff ff');
    expect(hex({ size: 2, zreg: 1, imm: 0x1234 }, movImm)).toBe('66 b9 34 12');
    const moffs = forms.find((f) => f.mn === 'mov' && f.op === 0xa1)!;
    expect(hex({ size: 4, imm: 0x300000, addr32: true }, moffs)).toBe('67 a1 00 00 30 00');
    const enter = forms.find((f) => f.mn === 'enter')!;
    expect(hex({ size: 8, imm: 0x20, imm2: 3 }, enter)).toBe('c8 20 00 03');
    const tz = forms.find((f) => f.mn === 'tzcnt')!;
    expect(hex({ size: 2, reg: 8, rm: 1 }, tz)).toBe('66 f3 44 0f bc c1');
    const cx16 = forms.find((f) => f.mn === 'cmpxchg8b')!;
    expect(hex({ size: 8, rm: { base: 0 }, lock: true }, cx16)).toBe('f0 48 0f c7 08');
  });

  it.skipIf(!hasObjdump)('agrees with objdump on every form (length, mnemonic, registers, address)', () => {
    // Generated instances of every diff form, plus hand-made instances of the noDiff forms.
    const items: { form: Form; size: number; code: Uint8Array; desc: string; ops?: Operands }[] = [];
    for (const c of CASES.slice(0, KEYS.length * 2)) items.push({ form: c.form, size: caseSize(c), code: c.code, desc: c.description });
    // System forms are left out: many do not exist in 64-bit mode or change meaning with ModRM
    // (0F 01); the bare-metal guests of test/guests/ check them.
    for (const form of forms.filter((f) => f.noDiff && f.fam !== 'system')) {
      const hasRm = form.ops.some((t) => t[0] === 'E');
      const memOnly = form.ops.some((t) => t[0] === 'M');
      const variants: Operands[] = hasRm
        ? [{ size: 4, rm: 3 }, { size: 8, rm: 9 }, { size: 2, rm: { base: 13, index: 2, scale: 4, disp: 0x40 } }]
        : memOnly ? [{ rm: { base: 0 } }, { rm: { base: 13, index: 2, scale: 4, disp: 0x40 } }]
          : [{ imm: 0x80 }];
      for (const ops of variants) {
        const code = encode(form, ops);
        items.push({ form, size: ops.size ?? 0, code, desc: `${formatInstruction(form, ops)} (${hexBytes(code)})`, ops });
      }
    }
    expect(items.length).toBeGreaterThan(300);
    const dis = objdump(items.map((x) => x.code));
    const problems: string[] = [];
    items.forEach((x, i) => {
      const o = dis[i];
      const d = decode(x.code, x.form);
      const { mn, operands } = splitDis(o.text);
      const where = `${x.desc} -> objdump: ${o.text}`;
      if (o.len !== x.code.length) { problems.push(`length ${o.len} != ${x.code.length}: ${where}`); return; }
      if (!mnemonicOk(mn, expectedMnemonics(x.form, x.size, d.addr32))) { problems.push(`mnemonic: ${where}`); return; }
      if (x.form.noDiff) return;
      // Registers named in the operands (xlat: objdump omits AL; ret/loop/jcc have none).
      const toks = x.desc.replace(/ \([0-9a-f ]+\)$/, '').split(' ');
      let j = 0;
      while (['lock', 'rep', 'repe', 'repne', 'addr32'].includes(toks[j])) j++;
      const mine = toks.slice(j + 1).join(' ');
      const mineOps = mine;
      if (x.form.mn !== 'xlat') {
        const a = regsIn(operands), b = regsIn(mineOps);
        if (a.join() !== b.join()) problems.push(`registers ${a} vs ${b}: ${where}`);
      }
      if (d.mem && x.form.modrm) {
        const a = memExpr(operands), b = memExpr(mine);
        if (a !== b) problems.push(`address ${a} vs ${b}: ${where}`);
      }
    });
    if (process.env.DUMP_OBJDUMP) items.forEach((x, i) => console.log(x.desc, '|', dis[i].text, '|', memExpr(splitDis(dis[i].text).operands)));
    expect(problems.slice(0, 20)).toEqual([]);
  });
});

describe('difftest case generator', () => {
  it('has enough form keys, all distinct and well-formed', () => {
    expect(KEYS.length).toBeGreaterThanOrEqual(400);
    expect(new Set(KEYS).size).toBe(KEYS.length);
    for (const k of KEYS) expect(k).toMatch(/^[0-3]:[0-9a-f]{2}\/[-0-7]:(0|8|16|32|64):(reg|mem|none)(:[0-9a-f]{2})?$/);
    // noDiff forms are excluded; BSWAP has no 16-bit key; MOVBE/LEA/CMPXCHG8B are memory-only.
    expect(KEYS.some((k) => k.startsWith('1:c8/-:16'))).toBe(false);
    expect(KEYS.filter((k) => k.startsWith('2:f0/')).every((k) => k.endsWith(':mem'))).toBe(true);
    expect(KEYS).toContain('1:bc/-:32:reg:f3');
    expect(KEYS).toContain('0:90/-:0:none:f3');
    expect(KEYS.some((k) => k.startsWith('0:cc/'))).toBe(false);
  });

  it('is deterministic', () => {
    const a = generateCases({ seed: 1234, count: 300 });
    const b = generateCases({ seed: 1234, count: 300 });
    const c = generateCases({ seed: 1235, count: 300 });
    const strip = (x: GeneratedCase) => ({ ...x, form: x.form.mn, code: hexBytes(x.code) });
    expect(a.map(strip)).toEqual(b.map(strip));
    expect(a.map(strip)).not.toEqual(c.map(strip));
    // A single case can be regenerated alone.
    expect(strip(generateCase(1234, 177))).toEqual(strip(a[177]));
  });

  it('covers every form key with count = number of keys', () => {
    const cases = generateCases({ seed: 99, count: KEYS.length });
    expect(new Set(cases.map((c) => c.formKey))).toEqual(new Set(KEYS));
    const strings = generateCases({ seed: 7, count: allFormKeys(['string', 'xlat']).length, only: ['string', 'xlat'] });
    expect(new Set(strings.map((c) => c.formKey))).toEqual(new Set(allFormKeys(['string', 'xlat'])));
    expect(strings.every((c) => c.form.fam === 'string' || c.form.mn === 'xlat')).toBe(true);
    expect(allFormKeys(['0:01/-:64:mem', 'ud2'])).toEqual(['0:01/-:64:mem', '1:0b/-:0:none']);
  });

  it('produces well-formed cases', () => {
    const problems: string[] = [];
    const check = (ok: boolean, what: string, c: GeneratedCase) => { if (!ok) problems.push(`${what}: ${c.description}`); };
    for (const c of CASES) {
      check(c.code.length > 0 && c.code.length <= 15, 'length', c);
      check(c.regs.length === 16 && c.regs.every((r) => r >= 0n && r < 1n << 64n), 'registers', c);
      check((c.rflags & ~0xcd5n) === 0n, 'rflags bits', c);
      if (c.rflags & 0x400n) check(c.form.fam === 'string' || ['cld', 'std', 'pushf'].includes(c.form.mn), 'DF', c);
      check(c.dataSeed > 0 && c.dataSeed <= 0xffffffff, 'dataSeed', c);
      check(!c.form.noDiff, 'noDiff form', c);
      check(c.description.includes(hexBytes(c.code)), 'description bytes', c);
      const d = decode(c.code, c.form);
      if (c.form.mn === 'bswap') check(!d.op66, 'BSWAP with 66h', c);
      if (c.form.mn === 'movbe') check(d.mem !== undefined, 'MOVBE register form', c);
      if (d.lock) check(!!c.form.lock, 'LOCK on a non-lockable form', c);
      if (d.rep !== undefined && c.form.prefix === undefined) {
        check(c.form.rep !== undefined, 'REP on a non-string form', c);
        if (c.form.rep === 'rep') check(d.rep === 0xf3, 'REPNE on a rep-only form', c);
      }
      if (c.form.fam === 'branch') {
        check(!d.op66, '66h on a near branch', c); // Intel ignores it, AMD truncates RIP
        if (!['loop', 'loope', 'loopne', 'jrcxz'].includes(c.form.mn)) check(!d.addr32 || d.mem !== undefined, '67h on a branch', c);
      }
    }
    expect(problems.slice(0, 20)).toEqual([]);
    // LOCK: mostly memory destinations, a few deliberate #UD on registers.
    const locked = CASES.filter((c) => decode(c.code, c.form).lock);
    expect(locked.filter((c) => c.formKey.endsWith(':mem')).length).toBeGreaterThan(20);
    expect(locked.filter((c) => c.formKey.endsWith(':reg')).length).toBeLessThan(locked.length / 4);
  });

  it('keeps every memory access inside the data region', () => {
    const bad: string[] = [];
    let far = 0, checked = 0;
    for (const c of CASES) {
      const d = decode(c.code, c.form);
      const locked = d.lock || (c.form.mn === 'xchg' && d.mem !== undefined);
      for (const a of accesses(c)) {
        checked++;
        // A split lock (a locked access across a cache line) stalls or faults natively.
        if (locked && inData(a) && (a.addr % 64n) + BigInt(a.size) > 64n) bad.push(`split lock: ${c.description}`);
        if (inData(a)) continue;
        if (faultsOnBothSides(a.addr)) { far++; continue; }
        bad.push(`${a.what} at 0x${a.addr.toString(16)}+${a.size}: ${c.description}`);
      }
    }
    expect(bad.slice(0, 20)).toEqual([]);
    expect(checked).toBeGreaterThan(2000);
    expect(far).toBeLessThan(checked / 20); // deliberate faults are rare
  });

  it('uses every addressing shape', () => {
    const seen = new Set<string>();
    for (const c of CASES) {
      const d = decode(c.code, c.form);
      if (!d.mem) continue;
      const m = d.mem;
      if (m.base === 'rip') seen.add('rip');
      else if (m.base === undefined) seen.add(m.index === undefined ? 'abs' : 'index-only');
      else {
        if ((m.base & 7) === 4) seen.add('rsp/r12 base');
        if ((m.base & 7) === 5 && d.mod === 1 && m.disp === 0n) seen.add('rbp/r13 base disp8 0');
        if (m.index !== undefined) seen.add(m.index >= 8 ? 'extended index' : 'index');
        if (d.mod === 2) seen.add('disp32');
      }
      if (d.addr32) seen.add('addr32');
      if (d.seg === 0x65) seen.add('gs');
    }
    expect([...seen].sort()).toEqual(['abs', 'addr32', 'disp32', 'extended index', 'gs', 'index', 'index-only', 'rbp/r13 base disp8 0', 'rip', 'rsp/r12 base'].sort());
  });

  it('lands branch targets on the INT3 fill, outside the instruction', () => {
    const bad: string[] = [];
    let rel = 0, ind = 0, faulting = 0;
    for (const c of CASES) {
      const f = c.form;
      const len = BigInt(c.code.length);
      const onInt3 = (t: bigint) => t >= BigInt(CODE_ADDR) && t < BigInt(CODE_ADDR + CODE_SIZE) && !(t >= INSN && t < INSN + len);
      if (f.ops[0] === 'Jb' || f.ops[0] === 'Jz') {
        const n = f.ops[0] === 'Jb' ? 1 : 4;
        let disp = 0n;
        for (let k = n - 1; k >= 0; k--) disp = (disp << 8n) | BigInt(c.code[c.code.length - n + k]);
        const t = INSN + len + BigInt.asIntN(n * 8, disp);
        rel++;
        if (!onInt3(t)) bad.push(`target 0x${t.toString(16)}: ${c.description}`);
      } else if ((f.mn === 'call' || f.mn === 'jmp') && f.ops[0] === 'Eq') {
        const d = decode(c.code, f);
        if (d.mem) {
          const q = patternQword(c.dataSeed, modrmLinear(c, d));
          faulting++;
          if (!faultsOnBothSides(q)) bad.push(`memory target 0x${q.toString(16)}: ${c.description}`);
        } else {
          ind++;
          if (!onInt3(c.regs[d.rm!])) bad.push(`register target 0x${c.regs[d.rm!].toString(16)}: ${c.description}`);
        }
      } else if (f.mn === 'ret') {
        const q = patternQword(c.dataSeed, c.regs[4]);
        faulting++;
        if (!faultsOnBothSides(q)) bad.push(`return address 0x${q.toString(16)}: ${c.description}`);
      }
    }
    expect(bad.slice(0, 20)).toEqual([]);
    expect(rel).toBeGreaterThan(100);
    expect(ind).toBeGreaterThan(4);
  });

  it('covers all 16 conditions, LOOP/JRCXZ counts and stack forms sensibly', () => {
    const cases = generateCases({ seed: 3, count: 2000, only: ['branch', 'stack'] });
    const jcc = new Set(cases.filter((c) => c.form.mn === 'jcc').map((c) => c.form.op & 15));
    expect(jcc.size).toBe(16);
    const loops = cases.filter((c) => c.form.mn.startsWith('loop') || c.form.mn === 'jrcxz');
    expect(loops.some((c) => c.regs[1] === 0n)).toBe(true);
    expect(loops.some((c) => c.regs[1] === 1n)).toBe(true);
    for (const c of cases.filter((x) => x.form.mn === 'popf')) {
      const v = patternQword(c.dataSeed, c.regs[4]) & (caseSize(c) === 2 ? 0xffffn : (1n << 64n) - 1n);
      expect(v & 0x44100n).toBe(0n); // TF, NT, AC
    }
    for (const c of cases.filter((x) => x.form.fam === 'stack' && x.form.mn !== 'leave')) {
      expect(c.regs[4] >= DLO + 0x100n && c.regs[4] < DHI - 0x100n).toBe(true);
    }
  });

  it('generates divisions that mostly do not fault, and some that do', () => {
    const cases = generateCases({ seed: 11, count: 1500, only: ['div', 'idiv'] });
    let ok = 0, de = 0;
    for (const c of cases) {
      const size = caseSize(c);
      const bits = BigInt(size * 8);
      const d = decode(c.code, c.form);
      let divisor: bigint;
      if (d.mem) {
        const a = modrmLinear(c, d);
        if (!inData({ what: '', addr: a, size })) continue;
        divisor = BigInt.asUintN(size * 8, patternQword(c.dataSeed, a));
      } else if (size === 1 && !(d.rex) && d.rm! >= 4 && d.rm! < 8) divisor = (c.regs[d.rm! - 4] >> 8n) & 0xffn;
      else divisor = BigInt.asUintN(size * 8, c.regs[d.rm!]);
      const dividend = size === 1 ? c.regs[0] & 0xffffn
        : (BigInt.asUintN(size * 8, c.regs[2]) << bits) | BigInt.asUintN(size * 8, c.regs[0]);
      let faults: boolean;
      if (divisor === 0n) faults = true;
      else if (c.form.mn === 'div') faults = dividend / divisor >= 1n << bits;
      else {
        const q = BigInt.asIntN(size * 16, dividend) / BigInt.asIntN(size * 8, divisor);
        faults = q < -(1n << (bits - 1n)) || q >= 1n << (bits - 1n);
      }
      if (faults) de++; else ok++;
    }
    expect(ok).toBeGreaterThan(de * 3);
    expect(de).toBeGreaterThan(20);
  });

  it('generates CMPXCHG8B/16B with equal and unequal comparands, 16B mostly aligned', () => {
    const cases = generateCases({ seed: 5, count: 400, only: ['cmpxchg8b'] });
    let eq = 0, ne = 0, aligned = 0, misaligned = 0;
    for (const c of cases) {
      const d = decode(c.code, c.form);
      const a = modrmLinear(c, d);
      const half = caseSize(c);
      if (!inData({ what: '', addr: a, size: half * 2 })) continue;
      const mask = half === 8 ? (1n << 64n) - 1n : 0xffffffffn;
      const lo = patternQword(c.dataSeed, a) & mask;
      const hi = half === 8 ? patternQword(c.dataSeed, a + 8n) : (patternQword(c.dataSeed, a) >> 32n);
      if ((c.regs[0] & mask) === lo && (c.regs[2] & mask) === hi) eq++; else ne++;
      if (half === 8) { if (a % 16n === 0n) aligned++; else misaligned++; }
    }
    expect(eq).toBeGreaterThan(50);
    expect(ne).toBeGreaterThan(50);
    expect(misaligned).toBeGreaterThan(0);
    expect(aligned).toBeGreaterThan(misaligned * 4);
  });

  it('masks count-dependent undefined flags', () => {
    const byName = (mn: string, op: number) => forms.find((f) => f.mn === mn && f.op === op)!;
    const shl = byName('shl', 0xd3), rcl = byName('rcl', 0xd3), shld = byName('shld', 0xa5), sar = byName('sar', 0xd2);
    const shl8 = byName('shl', 0xd2);
    expect(flagsMaskFor(shl, 4, 0)).toBe(0xcd5n);
    expect(flagsMaskFor(shl, 4, 32)).toBe(0xcd5n); // masked to 0
    expect(flagsMaskFor(shl, 4, 1)).toBe(0xcd5n & ~0x10n);
    expect(flagsMaskFor(shl, 4, 3)).toBe(0xcd5n & ~0x810n);
    expect(flagsMaskFor(shl, 8, 33)).toBe(0xcd5n & ~0x810n);
    expect(flagsMaskFor(shl8, 1, 9)).toBe(0xcd5n & ~0x811n); // SHL count >= width: CF undefined
    expect(flagsMaskFor(sar, 1, 9)).toBe(0xcd5n & ~0x810n);
    expect(flagsMaskFor(rcl, 4, 1)).toBe(0xcd5n);
    expect(flagsMaskFor(rcl, 2, 17)).toBe(0xcd5n & ~0x800n);
    expect(flagsMaskFor(shld, 2, 0)).toBe(0xcd5n);
    expect(flagsMaskFor(shld, 2, 16)).toBe(0xcd5n & ~0x810n);
    const div = forms.find((f) => f.mn === 'div')!;
    expect(flagsMaskFor(div, 4)).toBe(0x400n);
    // Generated SHLD/SHRD never use a 16-bit count above 16.
    for (const c of generateCases({ seed: 8, count: 600, only: ['shld', 'shrd'] })) {
      if (caseSize(c) !== 2) continue;
      const count = c.form.imm === 'b' ? c.code[c.code.length - 1] : Number(c.regs[1] & 0xffn);
      expect(count & 0x1f).toBeLessThanOrEqual(16);
    }
  });

  it('lists form variants matching the table', () => {
    const vs = formVariants();
    expect(vs.length).toBe(KEYS.length);
    const diffForms = forms.filter((f) => !f.noDiff);
    expect(new Set(vs.map((v) => v.form)).size).toBe(diffForms.length);
  });
});

// ---------------------------------------------------------------- x87 / MMX / SSE forms

const FPU_FAMS = ['sse', 'sse-int', 'mmx', 'x87'];
const FPU_KEYS = allFormKeys(FPU_FAMS);
const FPU_CASES = generateCases({ seed: 0xf00d, count: FPU_KEYS.length * 3, only: FPU_FAMS });
const CMP_PRED = ['eq', 'lt', 'le', 'unord', 'neq', 'nlt', 'nle', 'ord'];

/** Bytes of an FPU form's memory operand, from the token (independent of encode.ts). */
function fpuMemBytes(form: Form, size: number): number {
  const t = form.ops.find((o) => /^(W|Q|M|E|RdMw)/.test(o))!;
  const table: Record<string, number> = {
    Wx: 16, Wu: 16, Mo: 16, Wq: 8, Qq: 8, Mq: 8, Wd: 4, Qd: 4, Md: 4, Mw: 2, RdMw: 2, Mt: 10, Mx: 512,
    Ey: size, My: size, Me: size === 2 ? 14 : 28, Ms: size === 2 ? 94 : 108,
  };
  return table[t];
}
const ALIGNED16 = (f: Form) => f.ops.some((t) => t === 'Wx' || t === 'Mo' || t === 'Mx');

function u16(img: Uint8Array, off: number): number { return img[off] | (img[off + 1] << 8); }
function u32(img: Uint8Array, off: number): number { return (u16(img, off) | (u16(img, off + 2) << 16)) >>> 0; }

describe('difftest FPU forms (wasm/cpu/isa-table-fpu.ts)', () => {
  it('has distinct, well-formed keys per family, apart from the integer table', () => {
    expect(new Set(FPU_KEYS).size).toBe(FPU_KEYS.length);
    for (const k of FPU_KEYS) expect(k).toMatch(/^[0-3]:[0-9a-f]{2}\/([-0-7]|[0-7]\.[0-7]):(0|16|32|64):(reg|mem|none)(:(66|f2|f3))?$/);
    const intKeys = new Set(KEYS);
    expect(FPU_KEYS.filter((k) => intKeys.has(k))).toEqual([]);
    const per = Object.fromEntries(FPU_FAMS.map((f) => [f, allFormKeys([f]).length]));
    expect(per.sse).toBeGreaterThan(150);
    expect(per['sse-int']).toBeGreaterThan(120);
    expect(per.mmx).toBeGreaterThan(100);
    expect(per.x87).toBeGreaterThan(120);
    expect(allFormKeys(['x87'])).toContain('0:d9/5.0:0:none'); // FLD1 = D9 E8
    expect(allFormKeys(['x87'])).toContain('0:dd/4:16:mem'); // FRSTOR, 16-bit format
    expect(allFormKeys(['sse'])).toContain('1:58/-:0:mem:f3'); // ADDSS xmm, m32
    expect(allFormKeys(['movd'])).toEqual(expect.arrayContaining(['1:6e/-:32:reg', '1:6e/-:64:mem:66']));
    // Without `only`, the generator keeps to the integer table.
    expect(CASES.every((c) => !c.fpu && !fpuForms.includes(c.form))).toBe(true);
    expect(formVariants().every((v) => !fpuForms.includes(v.form))).toBe(true);
    expect(allFormKeys(['sse']).every((k) => FPU_KEYS.includes(k))).toBe(true);
  });

  it('encodes the new operand kinds', () => {
    const by = (mn: string, pred: (f: Form) => boolean = () => true) => fpuForms.find((f) => f.mn === mn && pred(f))!;
    const hx = (f: Form, o: Operands) => hexBytes(encode(f, o));
    expect(hx(by('addss'), { reg: 9, rm: { base: 0 } })).toBe('f3 44 0f 58 08'); // mandatory prefix before REX
    expect(hx(by('addpd'), { reg: 1, rm: 10 })).toBe('66 41 0f 58 ca');
    expect(hx(by('fld1'), {})).toBe('d9 e8');
    expect(hx(by('fadd', (f) => f.op === 0xd8 && f.ops[1] === 'STi'), { rm: 3 })).toBe('d8 c3');
    expect(hx(by('fsub', (f) => f.op === 0xdc && f.ops[0] === 'STi'), { rm: 2 })).toBe('dc ea');
    expect(hx(by('fnstsw', (f) => f.ops[0] === 'AX'), {})).toBe('df e0');
    expect(hx(by('paddb', (f) => f.fam === 'mmx'), { reg: 1, rm: 2 })).toBe('0f fc ca');
    expect(hx(by('paddb', (f) => f.fam === 'mmx'), { reg: 1, rm: 2, rex: 0x45 })).toBe('45 0f fc ca'); // ignored REX.R/B
    expect(hx(by('movd', (f) => f.prefix === 0x66 && f.op === 0x6e), { size: 8, reg: 0, rm: 0 })).toBe('66 48 0f 6e c0');
    expect(hx(by('fnstenv'), { size: 2, rm: { base: 0 } })).toBe('66 d9 30');
    expect(hx(by('fxsave'), { size: 8, rm: { base: 0 } })).toBe('48 0f ae 00');
    expect(hx(by('pinsrw', (f) => f.prefix === 0x66), { reg: 1, rm: 9, imm: 3 })).toBe('66 41 0f c4 c9 03');
    expect(hx(by('psrldq'), { rm: 9, imm: 4 })).toBe('66 41 0f 73 d9 04');
    expect(() => encode(by('movhlps'), { reg: 0, rm: { base: 0 } })).toThrow(); // U: register only
    expect(() => encode(by('movlps', (f) => f.op === 0x12), { reg: 0, rm: 1 })).toThrow(); // Mq: memory only
    expect(() => encode(by('paddb', (f) => f.fam === 'mmx'), { reg: 8, rm: 0 })).toThrow(); // MM0-7
    expect(formatInstruction(by('fadd', (f) => f.op === 0xd8 && f.ops[1] === 'STi'), { rm: 3 })).toBe('fadd st, st(3)');
    expect(formatInstruction(by('cvttss2si'), { size: 8, reg: 2, rm: 11 })).toBe('cvttss2si rdx, xmm11');
  });

  it('covers every FPU form key and is deterministic', () => {
    expect(new Set(FPU_CASES.map((c) => c.formKey))).toEqual(new Set(FPU_KEYS));
    const strip = (x: GeneratedCase) => ({ ...x, form: x.form.mn, code: hexBytes(x.code), fpu: hexBytes(x.fpu!) });
    expect(strip(generateCase(0xf00d, 321, FPU_FAMS))).toEqual(strip(FPU_CASES[321]));
  });

  it.skipIf(!hasObjdump)('agrees with objdump on every FPU form (length, mnemonic, registers, address)', () => {
    const items = FPU_CASES.slice(0, FPU_KEYS.length * 2);
    const dis = objdump(items.map((c) => c.code));
    const problems: string[] = [];
    items.forEach((c, i) => {
      const o = dis[i];
      const { mn, operands } = splitDis(o.text);
      const where = `${c.description} -> objdump: ${o.text}`;
      if (o.len !== c.code.length) { problems.push(`length ${o.len} != ${c.code.length}: ${where}`); return; }
      const size = caseSize(c);
      const f = c.form;
      let expected = [f.mn];
      if (f.mn === 'movd' && size === 8) expected = ['movq'];
      if ((f.mn === 'fxsave' || f.mn === 'fxrstor') && size === 8) expected = [`${f.mn}64`];
      if (/^cmp(ps|pd|ss|sd)$/.test(f.mn)) expected = [`cmp${CMP_PRED[c.code[c.code.length - 1]]}${f.mn.slice(3)}`];
      if (!mnemonicOk(mn, expected)) { problems.push(`mnemonic: ${where}`); return; }
      const mine = c.description.replace(/ \([0-9a-f ]+\)$/, '').split(' ').filter((t, k) => k > 0 || t !== 'lock').slice(1).join(' ');
      const a = regsIn(operands), b = regsIn(mine);
      if (a.join() !== b.join()) problems.push(`registers ${a} vs ${b}: ${where}`);
      const d = decode(c.code, f);
      if (d.mem && f.modrm) {
        const x = memExpr(operands), y = memExpr(mine);
        if (x !== y) problems.push(`address ${x} vs ${y}: ${where}`);
      }
    });
    expect(problems.slice(0, 20)).toEqual([]);
  });

  it('produces well-formed FXSAVE images', () => {
    const problems: string[] = [];
    const seen = { rc: new Set<number>(), pc: new Set<number>(), top: new Set<number>(), valid: new Set<number>() };
    let daz = 0, ftz = 0, unmaskedSimd = 0, pending = 0, x87 = 0;
    for (const c of FPU_CASES) {
      const img = c.fpu!;
      if (!img || img.length !== 512) { problems.push(`image: ${c.description}`); continue; }
      const fcw = u16(img, 0), fsw = u16(img, 2), ftw = img[4], mxcsr = u32(img, 24);
      if (mxcsr >>> 16) problems.push(`MXCSR reserved bits ${mxcsr.toString(16)}: ${c.description}`);
      if (((fcw >> 8) & 3) === 1) problems.push(`reserved PC: ${c.description}`);
      const es = (fsw & ~fcw & 0x3f) !== 0;
      if (es !== ((fsw & 0x80) !== 0) || es !== ((fsw & 0x8000) !== 0)) problems.push(`FSW ES/B: ${c.description}`);
      if (c.form.fam === 'sse') {
        seen.rc.add((mxcsr >> 13) & 3);
        if (mxcsr & 0x40) daz++;
        if (mxcsr & 0x8000) ftz++;
        if ((mxcsr & 0x1f80) !== 0x1f80) unmaskedSimd++;
      }
      if (c.form.fam === 'x87') {
        x87++;
        seen.pc.add((fcw >> 8) & 3);
        seen.rc.add(4 + ((fcw >> 10) & 3));
        seen.top.add((fsw >> 11) & 7);
        let n = 0;
        for (let b = 0; b < 8; b++) n += (ftw >> b) & 1;
        seen.valid.add(n);
        if (es) pending++;
      }
      if (c.fswMask !== fswMaskFor(c.form)) problems.push(`fswMask: ${c.description}`);
    }
    expect(problems.slice(0, 20)).toEqual([]);
    expect([...seen.rc].sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7]); // MXCSR.RC and FCW.RC
    expect([...seen.pc].sort()).toEqual([0, 2, 3]);
    expect(seen.top.size).toBe(8);
    expect(seen.valid.has(0) && seen.valid.has(8) && seen.valid.has(2)).toBe(true);
    expect(daz).toBeGreaterThan(10);
    expect(ftz).toBeGreaterThan(10);
    expect(unmaskedSimd).toBeGreaterThan(10);
    expect(pending).toBeGreaterThan(0);
    expect(pending).toBeLessThan(x87 / 10);
    // Float edge values reach the XMM registers of SSE cases.
    const lanes = new Set<number>();
    for (const c of FPU_CASES.filter((x) => x.form.fam === 'sse')) {
      for (let k = 0; k < 64; k++) lanes.add(u32(c.fpu!, 0xa0 + 4 * k));
    }
    for (const v of [0x80000000, 0x00000001, 0x7f800000, 0xff800000, 0x7fc00000, 0x7f800001, 0x7f7fffff, 0x4f000000]) {
      expect(lanes.has(v)).toBe(true);
    }
  });

  it('keeps FPU memory operands inside the data region, aligned where legacy SSE requires it', () => {
    const bad: string[] = [];
    let aligned = 0, misaligned = 0, checked = 0;
    for (const c of FPU_CASES) {
      const d = decode(c.code, c.form);
      const size = caseSize(c);
      if (c.form.mn === 'maskmovq' || c.form.mn === 'maskmovdqu') {
        let a = d.addr32 ? c.regs[7] & 0xffffffffn : c.regs[7];
        if (d.seg === 0x65) a += BigInt(GS_BASE);
        if (!inData({ what: '', addr: a, size: c.form.mn === 'maskmovq' ? 8 : 16 })) bad.push(`[rdi] 0x${a.toString(16)}: ${c.description}`);
        continue;
      }
      if (!d.mem || !c.form.modrm) continue;
      const a = modrmLinear(c, d);
      checked++;
      const acc = { what: 'fpu operand', addr: a, size: fpuMemBytes(c.form, size) };
      if (!inData(acc) && !faultsOnBothSides(a)) bad.push(`0x${a.toString(16)}+${acc.size}: ${c.description}`);
      if (ALIGNED16(c.form) && inData(acc)) { if (a % 16n === 0n) aligned++; else misaligned++; }
      // x87 state stores: the pointer fields are exempt from the data comparison.
      if (inData(acc) && !d.lock && ['fnstenv', 'fnsave', 'fxsave'].includes(c.form.mn)) {
        const off = Number(a - DLO);
        const want = c.form.mn === 'fxsave' ? [[off + 6, off + 24], [off + 28, off + 32]]
          : size === 2 ? [[off + 6, off + 14]] : [[off + 12, off + 28]];
        if (JSON.stringify(c.dataIgnore) !== JSON.stringify(want)) bad.push(`dataIgnore ${JSON.stringify(c.dataIgnore)}: ${c.description}`);
      } else if (c.dataIgnore) bad.push(`unexpected dataIgnore: ${c.description}`);
    }
    expect(bad.slice(0, 20)).toEqual([]);
    expect(checked).toBeGreaterThan(500);
    expect(misaligned).toBeGreaterThan(0); // deliberate #GP
    expect(aligned).toBeGreaterThan(misaligned * 5);
  });

  it('gives LDMXCSR, FXRSTOR and FBLD mostly valid memory contents', () => {
    const cases = generateCases({ seed: 77, count: 240, only: ['ldmxcsr', 'fxrstor', 'fbld'] });
    const tally: Record<string, [number, number]> = { ldmxcsr: [0, 0], fxrstor: [0, 0], fbld: [0, 0] };
    for (const c of cases) {
      const d = decode(c.code, c.form);
      const a = modrmLinear(c, d);
      const n = fpuMemBytes(c.form, caseSize(c));
      if (!inData({ what: '', addr: a, size: n }) || (ALIGNED16(c.form) && a % 16n !== 0n)) continue;
      const p = new Uint8Array(DATA_SIZE);
      fillPattern(c.dataSeed, p);
      const off = Number(a - DLO);
      let ok: boolean;
      if (c.form.mn === 'ldmxcsr') ok = (p[off + 2] | p[off + 3]) === 0;
      else if (c.form.mn === 'fxrstor') ok = (p[off + 26] | p[off + 27]) === 0;
      else ok = Array.from(p.subarray(off, off + 9)).every((b) => (b & 15) < 10 && b >> 4 < 10);
      tally[c.form.mn][ok ? 0 : 1]++;
    }
    for (const [mn, [ok, not]] of Object.entries(tally)) {
      expect(ok, mn).toBeGreaterThan(not * 2);
      expect(ok + not, mn).toBeGreaterThan(20);
    }
  });

  it('declares undefined x87 condition codes', () => {
    const by = (mn: string, tok?: string) => fpuForms.find((f) => f.mn === mn && (!tok || f.ops.includes(tok)))!;
    expect(fswMaskFor(by('fadd', 'STi'))).toBe(0xffff & ~0x4500); // C0 C2 C3 undefined, C1 defined
    expect(fswMaskFor(by('fcom', 'Md'))).toBe(0xffff);
    expect(fswMaskFor(by('fsin'))).toBe(0xffff & ~0x4100); // C2 = out of range
    expect(fswMaskFor(by('fnstcw'))).toBe(0xffff & ~0x4700);
    expect(fswMaskFor(by('fprem'))).toBe(0xffff);
    expect(fswMaskFor(by('addps'))).toBe(0xffff);
    // The RFLAGS part of `undef` is unchanged: COMISS and FCOMI define ZF PF CF and clear OF SF AF.
    expect(flagsMaskFor(by('comiss'), 0)).toBe(0xcd5n);
    expect(flagsMaskFor(by('fcomi'), 0)).toBe(0xcd5n);
    expect(flagsMaskFor(by('fadd', 'Md'), 0)).toBe(0xcd5n);
  });
});

describe('difftest FPU comparison', () => {
  const base = () => {
    const img = defaultFpuImage();
    const v = new DataView(img.buffer);
    v.setUint16(2, (6 << 11) | 0x4000, true); // TOP = 6, C3
    img[4] = 0xc0; // R6 R7 valid: ST0 and ST1
    return { img, v };
  };

  it('compares XMM, MXCSR, control/status/tag words and valid ST(i), not the pointers', () => {
    const n = base(), e = base();
    expect(fpuDifferences(n.img, e.img, 0xffff)).toEqual([]);
    // FOP/FIP/FDP, MXCSR_MASK and the tail differ by design.
    e.v.setUint16(6, 0x1234, true); e.v.setBigUint64(8, 0x200800n, true); e.v.setBigUint64(16, 0x300000n, true);
    e.v.setUint32(28, 0xffbf, true); e.img[500] = 7;
    // Empty ST2 (physical R0) differs: not compared.
    e.img[0x20 + 2 * 16] = 0x55;
    expect(fpuDifferences(n.img, e.img, 0xffff)).toEqual([]);
    e.img[0xa0 + 3 * 16 + 15] = 0x80; // xmm3 sign of the top lane
    e.v.setUint32(24, 0x1f84, true); // mxcsr ZE
    e.v.setBigUint64(0x30, 0x8000000000000000n, true); e.v.setUint16(0x38, 0x3fff, true); // st1 = 1.0
    e.v.setUint16(2, (6 << 11) | 0x0200, true); // C3 -> C1
    const d = fpuDifferences(n.img, e.img, 0xbaff);
    expect(d).toEqual([
      'fsw (mask 0xbaff): native 0x3000, hvlab 0x3200',
      'mxcsr: native 0x1f80, hvlab 0x1f84',
      'st1: native 0x00000000000000000000 (0), hvlab 0x3fff8000000000000000 (1.0000000000000000)',
      'xmm3: native 0x00000000000000000000000000000000, hvlab 0x80000000000000000000000000000000',
    ]);
    // C3 alone is masked out when the form leaves it undefined.
    const m = base();
    m.v.setUint16(2, 6 << 11, true);
    expect(fpuDifferences(n.img, m.img, 0xbaff)).toEqual([]);
    expect(fpuDifferences(n.img, m.img, 0xffff)).toEqual(['fsw: native 0x7000, hvlab 0x3000']);
  });

  it('applies the FSW mask and the data-ignore ranges of a generated case', () => {
    const c = generateCases({ seed: 3, count: 40, only: ['fnstenv'] }).find((x) => x.dataIgnore && x.formKey.includes(':32:'))!;
    const [lo] = c.dataIgnore![0];
    const r = { outcome: 'trap' as const, regs: c.regs, rip: 0n, rflags: 0n, dataDiff: [[lo - 12, 1], [lo, 2]] as [number, number][], fpu: c.fpu };
    const other = { ...r, dataDiff: [[lo - 12, 1], [lo, 3], [lo + 4, 9]] as [number, number][] };
    expect(differences(c, r, other)).toEqual([]); // FIP/FCS bytes differ: ignored
    const worse = { ...r, dataDiff: [[lo - 12, 5]] as [number, number][] };
    expect(differences(c, r, worse)).toEqual([`data: native [${lo - 12}=1], hvlab [${lo - 12}=5]`]);
    const noImage = { ...r, fpu: undefined };
    expect(differences(c, r, noImage)).toEqual(['fpu image: native present, hvlab missing']);
  });
});
