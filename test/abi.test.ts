// The ABI constants are defined once (wasm/abi.ts) and compiled into both languages; this proves the
// compiled module and the TypeScript side agree, and that the layout does not overlap itself.
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import * as abi from '../wasm/abi.ts';
import { Host } from '../emu/machine/host.ts';
import { renderAbi, abiIntact, place, LayoutError } from '../wasm/gen/abi-gen.ts';
import { schema, vcpuState, vmBlock, frameEntry, type Schema, type Struct } from '../wasm/gen/layout.ts';

function checksum(): number {
  const vals = [abi.VCPU_AREA_BASE, abi.VCPU_STRIDE, abi.ST_RIP, abi.ST_RFLAGS, abi.ST_LAZY_OP, abi.ST_EXIT_REASON,
    abi.ST_EXIT_VECTOR, abi.ST_EXIT_RIP, abi.ST_COUNTERS, abi.ST_UD_BY_OPCODE, abi.HOST_POOL_BASE, abi.CPUID_TABLE_BASE,
    abi.CPUID_COUNT_ADDR, abi.EXIT_HLT, abi.EXIT_EXCEPTION, abi.ST_FS_BASE, abi.ST_GS_BASE, abi.ST_TSC_OFFSET];
  vals.splice(11, 0, abi.VM_AREA_BASE, abi.ST_VM);
  let h = 17;
  for (const v of vals) h = (Math.imul(h, 31) + v) | 0;
  return h;
}

describe('ABI shared by AssemblyScript and TypeScript', () => {
  it('the compiled core reports the same constants', () => {
    const host = new Host({ ramBytes: 1 << 20 });
    expect(host.core.abiChecksum()).toBe(checksum());
  });

  it('vCPU state regions fit the stride and stay below static data', () => {
    expect(abi.ST_UD_BY_OPCODE + abi.OPC_COUNT * 4).toBeLessThanOrEqual(abi.VCPU_STRIDE);
    expect(abi.ST_COUNTERS + abi.CNT_SLOTS * 8).toBeLessThanOrEqual(abi.ST_UD_BY_OPCODE);
    expect(abi.CPUID_COUNT_ADDR + abi.MAX_VMS * 4).toBeLessThanOrEqual(abi.VM_AREA_BASE);
    expect(abi.ST_FETCH_BUF + 16).toBeLessThanOrEqual(abi.ST_COUNTERS);
    expect(abi.ST_FXSAVE % 16).toBe(0);
    expect(abi.ST_FXSAVE).toBeGreaterThanOrEqual(abi.ST_UD_BY_OPCODE + abi.OPC_COUNT * 4);
    expect(abi.ST_FXSAVE + abi.FXSAVE_SIZE).toBeLessThanOrEqual(abi.VCPU_STRIDE);
    expect(abi.FX_XMM0 + 16 * 16).toBeLessThanOrEqual(abi.FXSAVE_SIZE);
    expect(abi.DECODED_CACHE_BASE + (abi.DECODED_CACHE_ENTRIES + 1) * abi.DECODED_ENTRY_SIZE).toBeLessThanOrEqual(abi.CODE_FRAME_MAP_BASE);
    expect(abi.CODE_FRAME_MAP_BASE + abi.CODE_FRAME_MAP_SIZE).toBeLessThanOrEqual(abi.HOST_POOL_BASE);
    expect(abi.ST_VM_VCPU + 4).toBeLessThanOrEqual(abi.ST_COUNTERS);
    expect(abi.VM_SHADOW_CONTEXT + abi.VM_SHADOW_CONTEXT_SIZE).toBeLessThanOrEqual(abi.VM_STRIDE);
    expect(abi.FRAME_RMAP_NEXT + 4).toBeLessThanOrEqual(abi.FRAME_ENTRY_SIZE);
  });

  it('the host memory map: no two regions overlap, all below the frame pool', () => {
    const regions: Array<[string, number, number]> = [
      ['open bus', abi.OPEN_BUS_BASE, 64], ['bounce', abi.BOUNCE_BASE, abi.BOUNCE_SLOTS * 64],
      ['mmio stage', abi.MMIO_STAGE_BASE, abi.MMIO_STAGE_SLOTS * 32], ['msr data', abi.MSR_DATA, 8],
      ['zero page', abi.ZERO_PAGE_BASE, 0x1000], ['cpuid counts', abi.CPUID_COUNT_ADDR, abi.MAX_VMS * 4],
      ['cpuid tables', abi.CPUID_TABLE_BASE, abi.MAX_VMS * abi.CPUID_TABLE_STRIDE],
      ['vm blocks', abi.VM_AREA_BASE, abi.MAX_VMS * abi.VM_STRIDE], ['host area', abi.HOST_AREA_BASE, 0x14],
      ['decoded cache', abi.DECODED_CACHE_BASE, (abi.DECODED_CACHE_ENTRIES + 1) * abi.DECODED_ENTRY_SIZE],
      ['code frame map', abi.CODE_FRAME_MAP_BASE, abi.CODE_FRAME_MAP_SIZE], ['mmu trace', abi.MMU_TRACE_BASE, abi.MMU_TRACE_MAX * 32],
      ['mmu counters', abi.MMU_COUNTERS_BASE, abi.MAX_VCPUS * abi.MMU_COUNTER_SLOTS * 8],
      ['cache model', abi.CACHE_MODEL_BASE, abi.CACHE_MODEL_MAX_LINES * 8], ['tlbs', abi.TLB_BASE, abi.MAX_VCPUS * abi.TLB_AREA_SIZE],
      ['blk segments', abi.BLK_SEG_LIST_BASE, abi.BLK_MAX_CHAIN * abi.BLK_SEG_SIZE], ['blk result', abi.BLK_WALK_RESULT, 16],
      ['blk descriptor', abi.BLK_DESC_SCRATCH, 16], ['vcpus', abi.VCPU_AREA_BASE, abi.MAX_VCPUS * abi.VCPU_STRIDE],
    ];
    for (const [name, base, size] of regions) expect(base + size, name).toBeLessThanOrEqual(abi.HOST_POOL_BASE);
    for (let i = 0; i < regions.length; i++) {
      for (let j = i + 1; j < regions.length; j++) {
        const [a, ab, as] = regions[i], [b, bb, bs] = regions[j];
        expect(ab + as <= bb || bb + bs <= ab, `${a} overlaps ${b}`).toBe(true);
      }
    }
    // The host area lies apart from the VM blocks and the statics of asc (memoryBase).
    expect(abi.HOST_AREA_BASE + 0x14).toBeLessThanOrEqual(abi.STATIC_DATA_BASE);
  });

  it('registers written through the host are what the core computes with', () => {
    const host = new Host({ ramBytes: 1 << 20 });
    const v = host.vcpu(1);
    v.reset();
    host.writeGuest(0x1000, [0x48, 0x01, 0xd8, 0xf4]); // add rax, rbx; hlt
    v.rip = 0x1000n;
    v.setReg(0, 0xffffffffffffffffn);
    v.setReg(3, 2n);
    expect(v.run(10)).toBe(abi.EXIT_HLT);
    expect(v.reg(0)).toBe(1n);
    expect(v.rflags & 1n).toBe(1n); // carry out of bit 63
    expect(v.rip).toBe(0x1004n);
    expect(v.counter(abi.CNT_INSTRUCTIONS)).toBe(2n);
  });

});

describe('wasm/abi.ts is generated from the layout schema (wasm/gen/layout.ts)', () => {
  const abiValues = abi as unknown as Record<string, number>;

  it('re-running the generator in memory gives exactly the committed wasm/abi.ts', () => {
    const committed = readFileSync(new URL('../wasm/abi.ts', import.meta.url), 'utf8');
    expect(renderAbi()).toBe(committed);
    // The digest in its header catches a hand edit even where the generator has not run.
    expect(abiIntact(committed)).toBe(true);
    expect(abiIntact(committed.replace('export const ST_CR2 = 0x1a8;', 'export const ST_CR2 = 0x1b0;'))).toBe(false);
  });

  it('no two regions of the host memory overlap, and all lie below HOST_POOL_BASE', () => {
    const { regions } = place();
    expect(regions.length).toBe(schema.regions.length);
    for (const r of regions) {
      expect(r.size, r.label).toBeGreaterThan(0);
      expect(r.end, r.label).toBeLessThanOrEqual(abi.HOST_POOL_BASE);
      if (r.src.base) expect(abiValues[r.src.base], r.label).toBe(r.base);
    }
    for (let i = 0; i < regions.length; i++) {
      for (let j = i + 1; j < regions.length; j++) {
        const a = regions[i], b = regions[j];
        expect(a.end <= b.base || b.end <= a.base, `${a.label} overlaps ${b.label}`).toBe(true);
      }
    }
  });

  it('no two fields of a struct overlap, each fits its stride, and the emitted offsets are the placed ones', () => {
    const { structs } = place();
    expect([...structs.keys()]).toEqual(expect.arrayContaining([vcpuState, vmBlock, frameEntry]));
    for (const ps of structs.values()) {
      const storage = ps.fields.filter((f) => !f.alias);
      for (let i = 0; i < storage.length; i++) {
        const a = storage[i];
        expect(a.offset % a.align, `${a.name} aligned`).toBe(0);
        if (ps.stride !== undefined) expect(a.offset + a.size, `${a.name} within the stride`).toBeLessThanOrEqual(ps.stride);
        for (let j = i + 1; j < storage.length; j++) {
          const b = storage[j];
          expect(a.offset + a.size <= b.offset || b.offset + b.size <= a.offset, `${a.name} overlaps ${b.name}`).toBe(true);
        }
      }
      for (const f of ps.fields.filter((g) => g.alias)) {
        const inside = storage.some((s) => f.offset >= s.offset && f.offset < s.offset + s.size);
        expect(inside, `alias ${f.name} lies inside a field`).toBe(true);
      }
      const absolute = schema.regions.find((r) => r.struct === ps.struct && r.absolute);
      const base = absolute ? place().regions.find((r) => r.src === absolute)!.base : 0;
      for (const f of ps.fields) expect(abiValues[f.name], f.name).toBe(base + f.offset);
    }
    expect(structs.get(vcpuState)!.stride).toBe(abi.VCPU_STRIDE);
    expect(structs.get(vmBlock)!.stride).toBe(abi.VM_STRIDE);
    expect(structs.get(frameEntry)!.stride).toBe(abi.FRAME_ENTRY_SIZE);
    // The adjacencies code depends on.
    expect(abi.ST_FS_BASE).toBe(abi.ST_SEG + abi.SEG_FS * abi.SEG_SLOT + abi.SEG_BASE);
    expect(abi.ST_GS_BASE).toBe(abi.ST_SEG + abi.SEG_GS * abi.SEG_SLOT + abi.SEG_BASE);
    expect(abi.ST_FXSAVE % 16).toBe(0);
  });

  it('every arch field lies inside the vCPU stride, and the vCPU state holds the architectural registers', () => {
    const ps = place().structs.get(vcpuState)!;
    const arch = ps.fields.filter((f) => f.class === 'arch' && !f.alias);
    for (const f of arch) {
      expect(f.offset, f.name).toBeGreaterThanOrEqual(0);
      expect(f.offset + f.size, f.name).toBeLessThanOrEqual(abi.VCPU_STRIDE);
    }
    const names = arch.map((f) => f.name);
    for (const n of ['ST_GPR', 'ST_RIP', 'ST_RFLAGS', 'ST_SEG', 'ST_CR0', 'ST_CR3', 'ST_EFER', 'ST_FXSAVE']) expect(names).toContain(n);
    for (const n of ['ST_EXIT_REASON', 'ST_COUNTERS', 'ST_EPTP', 'ST_VM']) expect(names).not.toContain(n);
    // Every field of every struct has one of the three classes.
    for (const s of place().structs.values()) {
      for (const f of s.fields) expect(['arch', 'host', 'transient'], f.name).toContain(f.class);
    }
  });

  it('the generator refuses overlapping regions and fields, regions above the pool, structs beyond their stride', () => {
    const withRegions = (edit: (rs: Schema['regions']) => Schema['regions']): Schema =>
      ({ ...schema, regions: edit(schema.regions.map((r) => ({ ...r }))) });
    const withVcpu = (edit: (s: Struct) => void): Schema => {
      const s: Struct = { ...vcpuState, fields: vcpuState.fields.map((f) => ({ ...f })) };
      edit(s);
      return {
        ...schema,
        regions: schema.regions.map((r) => ({ ...r })),
        structs: schema.structs.map((e) => (e.struct === vcpuState ? { ...e, struct: s } : e)),
      };
    };
    // A region pinned inside the previous one.
    expect(() => place(withRegions((rs) => { rs[2].at = 0x1100; return rs; }))).toThrow(/MMIO staging pinned at 0x1100 overlaps bounce slots/);
    // A region that grows into the frame pool.
    expect(() => place(withRegions((rs) => { rs[rs.length - 1].size = 0x1000000; return rs; }))).toThrow(/vCPU states .* ends above HOST_POOL_BASE/);
    // A field pinned below the end of the previous one.
    expect(() => place(withVcpu((s) => { (s.fields.find((f) => 'name' in f && f.name === 'MODE') as { at?: number }).at = 0xb0; })))
      .toThrow(/ST_MODE pinned at 0xb0 overlaps ST_LAZY_AUX/);
    // A struct beyond its stride.
    expect(() => place(withVcpu((s) => { s.stride = { name: 'VCPU_STRIDE', value: 0x1000 }; }))).toThrow(/beyond its stride VCPU_STRIDE/);
    expect(() => place(withVcpu(() => {}))).not.toThrow();
    expect(new LayoutError('x').message).toBe('abi layout: x');
  });

  it('the compiled core\'s abiChecksum still matches the generated file', () => {
    const host = new Host({ ramBytes: 1 << 20 });
    expect(host.core.abiChecksum()).toBe(checksum());
  });
});
