// Places the schema of wasm/gen/layout.ts (regions of host memory, struct fields) and renders
// wasm/abi.ts from it plus the hand-written constants of wasm/gen/abi-constants.ts (copied verbatim).
// renderAbi() has no side effects: generate.ts writes its result, test/abi.test.ts compares it with
// the committed file. Any overlap, a region above HOST_POOL_BASE or a struct larger than its stride
// is an error (LayoutError), so the layout cannot be committed broken.
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { schema as defaultSchema, SCALAR_SIZE, type Schema, type Struct, type Field, type Alias, type Param, type FieldClass, type Scalar } from './layout.ts';

export class LayoutError extends Error {
  constructor(message: string) { super(`abi layout: ${message}`); this.name = 'LayoutError'; }
}

export interface PlacedField {
  name: string; // full emitted name (prefix + name)
  offset: number; // from the struct's start
  size: number;
  align: number;
  type: Scalar | string; // scalar, or the name of a nested struct
  count: number; // 1 for a scalar
  class: FieldClass;
  alias: boolean; // a second name inside another field: no storage of its own
  src: Field | Alias;
}
export interface PlacedStruct { struct: Struct; size: number; align: number; stride: number | undefined; fields: PlacedField[] }
export interface PlacedRegion { label: string; base: number; size: number; end: number; src: Schema['regions'][number] }
export interface Placed { regions: PlacedRegion[]; structs: Map<Struct, PlacedStruct> }

const hex = (v: number) => '0x' + v.toString(16);
const isAlias = (f: Field | Alias): f is Alias => 'alias' in f;
const alignUp = (v: number, a: number) => Math.ceil(v / a) * a;
const pow2 = (v: number) => v > 0 && (v & (v - 1)) === 0;

/** Places one struct's fields: declaration order, each aligned (natural or explicit) or pinned. */
export function placeStruct(s: Struct, cache = new Map<Struct, PlacedStruct>()): PlacedStruct {
  const done = cache.get(s);
  if (done) return done;
  const fields: PlacedField[] = [];
  let cursor = 0, maxAlign = 1, last: PlacedField | undefined;
  for (const f of s.fields) {
    if (isAlias(f)) {
      const of = fields.find((p) => p.src === s.fields.find((g) => !isAlias(g) && g.name === f.of));
      if (!of) throw new LayoutError(`${s.name}: alias ${s.prefix}${f.alias} refers to ${f.of}, not an earlier field`);
      if (f.plus < 0 || f.plus >= of.size) throw new LayoutError(`${s.name}: alias ${s.prefix}${f.alias} lies outside ${of.name}`);
      fields.push({ name: s.prefix + f.alias, offset: of.offset + f.plus, size: 0, align: 1, type: of.type, count: 0,
        class: of.class, alias: true, src: f });
      continue;
    }
    let elemSize: number, natural: number, typeName: string;
    if (typeof f.type === 'string') {
      elemSize = SCALAR_SIZE[f.type]; natural = elemSize; typeName = f.type;
    } else {
      const inner = placeStruct(f.type, cache);
      elemSize = inner.stride ?? inner.size; natural = inner.align; typeName = f.type.name;
    }
    const count = f.count ?? 1;
    const align = f.align ?? natural;
    if (!pow2(align)) throw new LayoutError(`${s.name}: ${s.prefix}${f.name}: alignment ${align} is not a power of two`);
    let offset = alignUp(cursor, align);
    if (f.at !== undefined) {
      if (f.at < cursor) {
        throw new LayoutError(`${s.name}: ${s.prefix}${f.name} pinned at ${hex(f.at)} overlaps ${last!.name} ` +
          `[${hex(last!.offset)}, ${hex(last!.offset + last!.size)})`);
      }
      if (f.at % align !== 0) throw new LayoutError(`${s.name}: ${s.prefix}${f.name} pinned at ${hex(f.at)} is not ${align}-byte aligned`);
      offset = f.at;
    }
    const p: PlacedField = { name: s.prefix + f.name, offset, size: elemSize * count, align, type: typeName, count,
      class: f.class, alias: false, src: f };
    fields.push(p);
    last = p;
    cursor = offset + p.size;
    maxAlign = Math.max(maxAlign, align);
  }
  const size = cursor;
  const stride = s.stride?.value;
  if (stride !== undefined && size > stride) {
    throw new LayoutError(`${s.name}: fields end at ${hex(size)}, beyond its stride ${s.stride!.name} = ${hex(stride)} (${last!.name})`);
  }
  const placed = { struct: s, size, align: maxAlign, stride, fields };
  cache.set(s, placed);
  return placed;
}

/** Places the regions (address order, aligned or pinned) and every struct; throws LayoutError. */
export function place(schema: Schema = defaultSchema): Placed {
  const structs = new Map<Struct, PlacedStruct>();
  const regions: PlacedRegion[] = [];
  let cursor = 0;
  for (const r of schema.regions) {
    if (!pow2(r.align)) throw new LayoutError(`region ${r.label}: alignment ${r.align} is not a power of two`);
    let base = alignUp(cursor, r.align);
    if (r.at !== undefined) {
      if (r.at < cursor) {
        const prev = regions[regions.length - 1];
        throw new LayoutError(`region ${r.label} pinned at ${hex(r.at)} overlaps ${prev.label} [${hex(prev.base)}, ${hex(prev.end)})`);
      }
      if (r.at % r.align !== 0) throw new LayoutError(`region ${r.label} pinned at ${hex(r.at)} is not ${hex(r.align)}-aligned`);
      base = r.at;
    }
    if (r.struct) {
      const ps = placeStruct(r.struct, structs);
      if (r.absolute && ps.size > r.size) {
        throw new LayoutError(`region ${r.label}: its ${r.struct.name} needs ${hex(ps.size)} bytes, the region has ${hex(r.size)}`);
      }
    }
    const end = base + r.size;
    if (end > schema.hostPoolBase) {
      throw new LayoutError(`region ${r.label} [${hex(base)}, ${hex(end)}) ends above HOST_POOL_BASE = ${hex(schema.hostPoolBase)}`);
    }
    regions.push({ label: r.label, base, size: r.size, end, src: r });
    cursor = end;
  }
  for (const { struct } of schema.structs) placeStruct(struct, structs);
  return { regions, structs };
}

// ---- Rendering ----

const DIGEST = '// Digest of the text below this header: ';
const digest = (body: string) => createHash('sha256').update(body).digest('hex').slice(0, 16);
const header = (body: string) =>
  '// GENERATED by wasm/gen/generate.ts (`npm run gen`) from the layout schema wasm/gen/layout.ts and the\n' +
  '// constants of wasm/gen/abi-constants.ts. Do not edit: change those and regenerate.\n' +
  `${DIGEST}${digest(body)}\n` +
  '//\n';

/** Whether a wasm/abi.ts text is as the generator wrote it (its recorded digest matches its text):
 *  false after a hand edit. */
export function abiIntact(text: string): boolean {
  const lines = text.split('\n');
  const d = lines[2] ?? '';
  if (!d.startsWith(DIGEST)) return false;
  const body = lines.slice(4).join('\n');
  return header(body) === lines.slice(0, 4).join('\n') + '\n';
}

const constantsPath = fileURLToPath(new URL('./abi-constants.ts', import.meta.url));

function comment(lines: string[] | undefined, out: string[]): void {
  for (const l of lines ?? []) out.push(l === '' ? '' : l.startsWith('/**') || l.startsWith(' *') ? l : `// ${l}`);
}

/** Renders wasm/abi.ts (the whole text) from a schema and the hand-written constants. */
export function renderAbi(schema: Schema = defaultSchema, constants = readFileSync(constantsPath, 'utf8')): string {
  const placed = place(schema);
  const out: string[] = [];
  const emitted = new Map<string, number>();
  const line = (name: string, value: number, fmt: 'hex' | 'dec' | 'hex3', doc?: string) => {
    const prev = emitted.get(name);
    if (prev !== undefined) {
      if (prev !== value) throw new LayoutError(`${name} emitted twice with different values (${prev}, ${value})`);
      return;
    }
    emitted.set(name, value);
    const v = fmt === 'dec' ? String(value) : fmt === 'hex3' ? '0x' + value.toString(16).padStart(3, '0') : hex(value);
    out.push(`export const ${name} = ${v};${doc ? ` // ${doc}` : ''}`);
  };
  const param = (p: Param) => { comment(p.lead, out); line(p.name, p.value, p.hex ? 'hex' : 'dec', p.doc); };
  const fields = (ps: PlacedStruct, base: number, fmt: 'hex' | 'dec' | 'hex3') => {
    for (const f of ps.fields) { comment(f.src.lead, out); line(f.name, base + f.offset, fmt, f.src.doc); }
    for (const p of ps.struct.params ?? []) param(p);
  };

  out.push('// hvlab ABI: the one definition of the vCPU state layout, exit reasons, lazy-flag operations,',
    '// counter slots and host memory map. This file is plain `export const NAME = integer;` so that it',
    '// compiles unchanged as AssemblyScript (wasm/) and as TypeScript (emu/); both sides import it, and',
    '// test/abi.test.ts checks that the values the compiled module reports match the TypeScript view.',
    '// Keep it that way: no types, no expressions that the two languages could evaluate differently.',
    '// Offsets are placed by the generator (declaration order, natural alignment, or pinned), which',
    '// fails on any overlap; every struct field there has a class (arch, host, transient).',
    '');
  for (const r of placed.regions) {
    const src = r.src;
    comment(src.lead, out);
    if (src.base) line(src.base, r.base, 'hex', src.doc);
    for (const p of src.params ?? []) param(p);
    if (src.struct) {
      const ps = placed.structs.get(src.struct)!;
      if (src.struct.stride) param(src.struct.stride);
      fields(ps, src.absolute ? r.base : 0, 'hex');
    }
  }
  line('HOST_POOL_BASE', schema.hostPoolBase, 'hex', '32 MiB: the host frame pool starts here (hpa 0)');
  for (const { struct, lead } of schema.structs) {
    out.push('');
    comment(lead, out);
    const ps = placed.structs.get(struct)!;
    if (struct.stride) param(struct.stride);
    fields(ps, 0, struct.prefix === 'ST_' ? 'hex3' : 'dec');
  }
  out.push('');
  const body = out.join('\n') + '\n' + constants;
  const text = header(body) + body;
  // The whole file must stay `export const NAME = integer;` lines and comments, each name once.
  const names = new Set<string>();
  let inDoc = false;
  for (const l of text.split('\n')) {
    if (inDoc) { if (l.includes('*/')) inDoc = false; continue; }
    if (l.trim() === '' || l.startsWith('//')) continue;
    if (l.startsWith('/**')) { inDoc = !l.includes('*/'); continue; }
    const m = /^export const ([A-Z][A-Z0-9_]*) = (0x[0-9a-f]+|-?[0-9]+);( \/\/ .*)?$/.exec(l);
    if (!m) throw new LayoutError(`not a plain constant line: ${l}`);
    if (names.has(m[1])) throw new LayoutError(`${m[1]} is defined twice (schema and abi-constants.ts?)`);
    names.add(m[1]);
  }
  return text;
}
