// Generates, run by `npm run gen` (part of `npm run asbuild`):
// - wasm/abi.ts from the layout schema wasm/gen/layout.ts and the hand-written constants of
//   wasm/gen/abi-constants.ts (wasm/gen/abi-gen.ts; it fails on overlaps and overflows);
// - wasm/cpu/decode-tables.generated.ts (AssemblyScript static data) from the instruction table
//   wasm/cpu/isa-table.ts, so the decoder and the differential tester read one definition.
import { writeFileSync, readFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as abi from './abi-constants.ts';
import { renderAbi, abiIntact, LayoutError } from './abi-gen.ts';
import type { Imm } from '../cpu/isa-table.ts';

// The instruction table imports wasm/abi.ts, so it is loaded only after wasm/abi.ts is written below.
type IsaTable = typeof import('../cpu/isa-table.ts');
type IsaTableFpu = typeof import('../cpu/isa-table-fpu.ts');

export function buildDecodeTables(isa: IsaTable, fpu: IsaTableFpu): { attrs: number[]; lockExt: number[] } {
  const { forms, invalidIn64, shapeOnly, opcodeIndex, IMM_CODES } = isa;
  const { fpuForms } = fpu;
  const attrs = new Array<number>(abi.OPC_COUNT).fill(0);
  const lockExt = new Array<number>(abi.OPC_COUNT).fill(0);
  const shape = new Map<number, { modrm: boolean; imm: Imm }>();
  const setShape = (idx: number, modrm: boolean, imm: Imm, what: string) => {
    const prev = shape.get(idx);
    // Group 3 (F6/F7) is the one opcode whose immediate depends on ModRM.reg; the decoder knows it.
    const group3 = idx === 0xf6 || idx === 0xf7;
    if (prev && (prev.modrm !== modrm || (prev.imm !== imm && !group3))) {
      throw new Error(`isa-table: conflicting decode shape for opcode index 0x${idx.toString(16)} (${what})`);
    }
    if (!prev) shape.set(idx, { modrm, imm: group3 ? 'none' : imm });
  };
  const memSize = new Map<number, number>();
  for (const form of forms) {
    const idx = opcodeIndex(form.map, form.op);
    setShape(idx, form.modrm, form.imm, form.mn);
    attrs[idx] |= abi.ATTR_FORM;
    // One memory-operand size class per opcode; group opcodes whose forms disagree, and operands
    // that are not plain data of the operand size (LEA, far pointers, bit strings...), are "other".
    const e = form.ops.find((o) => o.startsWith('E') || o.startsWith('M'));
    if (e !== undefined) {
      const cls = e === 'Eb' ? abi.MEMSIZE_BYTE : e === 'Ew' ? abi.MEMSIZE_WORD
        : (e === 'Ev' && form.fam !== 'bit') ? abi.MEMSIZE_OSIZE : abi.MEMSIZE_OTHER;
      const prev = memSize.get(idx);
      memSize.set(idx, prev === undefined || prev === cls ? cls : abi.MEMSIZE_OTHER);
    } else if (form.modrm) memSize.set(idx, abi.MEMSIZE_OTHER);
    if (form.lock) lockExt[idx] |= form.ext === undefined ? 0xff : 1 << form.ext;
  }
  for (const s of shapeOnly) setShape(opcodeIndex(s.map, s.op), s.modrm, s.imm, 'shape');
  // x87/MMX/SSE forms: their decode shape, so their handlers (ops/x87.ts, ops/sse.ts) see whole
  // instructions; mandatory prefixes select forms inside the handlers, not in the decoder.
  for (const form of fpuForms) {
    const idx = opcodeIndex(form.map, form.op);
    if (shape.has(idx) && shape.get(idx)!.modrm === form.modrm) continue;
    setShape(idx, form.modrm, form.imm, form.mn);
    attrs[idx] |= abi.ATTR_FORM;
  }
  for (const [idx, s] of shape) attrs[idx] |= (s.modrm ? abi.ATTR_MODRM : 0) | (IMM_CODES[s.imm] << abi.ATTR_IMM_SHIFT);
  for (const op of invalidIn64) attrs[op] |= abi.ATTR_INVALID64;
  for (let idx = 0; idx < abi.OPC_COUNT; idx++) {
    if (attrs[idx] & abi.ATTR_MODRM) attrs[idx] |= (memSize.get(idx) ?? abi.MEMSIZE_OTHER) << abi.ATTR_MEMSIZE_SHIFT;
  }
  return { attrs, lockExt };
}

function render(name: string, bytes: number[]): string {
  const rows: string[] = [];
  for (let i = 0; i < bytes.length; i += 16) {
    rows.push('  ' + bytes.slice(i, i + 16).map((b) => '0x' + b.toString(16).padStart(2, '0')).join(', ') + ',');
  }
  return `export const ${name}: usize = memory.data<u8>([\n${rows.join('\n')}\n]);\n`;
}

function writeIfChanged(target: string, text: string): void {
  if (!existsSync(target) || readFileSync(target, 'utf8') !== text) writeFileSync(target, text);
}

// Only when run as the script (test/abi.test.ts imports renderAbi from abi-gen.ts, not this).
let abiText: string;
try {
  abiText = renderAbi();
} catch (e) {
  if (!(e instanceof LayoutError)) throw e;
  console.error(e.message);
  process.exit(1);
}
const abiPath = fileURLToPath(new URL('../abi.ts', import.meta.url));
// Never overwrite a hand edit: it would be lost without a trace. The file records a digest of its text.
if (existsSync(abiPath)) {
  const current = readFileSync(abiPath, 'utf8');
  if (current !== abiText && !abiIntact(current)) {
    console.error('wasm/abi.ts was edited by hand (its text no longer matches the digest in its header). It is\n' +
      'generated: make the change in wasm/gen/layout.ts (layout) or wasm/gen/abi-constants.ts (other constants),\n' +
      'then restore the file (git checkout wasm/abi.ts) and run `npm run gen`.');
    process.exit(1);
  }
}
writeIfChanged(abiPath, abiText);

const { attrs, lockExt } = buildDecodeTables(await import('../cpu/isa-table.ts'), await import('../cpu/isa-table-fpu.ts'));
const out = `// GENERATED by wasm/gen/generate.ts from wasm/cpu/isa-table.ts. Do not edit.
// DECODE_ATTRS: per opcode index (OPC_* space of wasm/abi.ts) the ATTR_* byte.
// LOCK_EXT: per opcode index, a bitmask of the ModRM.reg extensions that accept LOCK (0xff = all).
${render('DECODE_ATTRS', attrs)}
${render('LOCK_EXT', lockExt)}`;
writeIfChanged(fileURLToPath(new URL('../cpu/decode-tables.generated.ts', import.meta.url)), out);
