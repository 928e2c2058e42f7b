// The ABI constants are defined once (wasm/abi.ts) and compiled into both languages; this proves the
// compiled module and the TypeScript side agree, and that the layout does not overlap itself.
import { describe, it, expect } from 'vitest';
import * as abi from '../wasm/abi.ts';
import { Host } from '../emu/machine/host.ts';

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
    expect(abi.CPUID_TABLE_BASE + abi.CPUID_MAX_ENTRIES * abi.CPUID_ENTRY_SIZE).toBeLessThanOrEqual(abi.STATIC_DATA_BASE);
    expect(abi.ST_FETCH_BUF + 16).toBeLessThanOrEqual(abi.ST_COUNTERS);
    expect(abi.ST_FXSAVE % 16).toBe(0);
    expect(abi.ST_FXSAVE).toBeGreaterThanOrEqual(abi.ST_UD_BY_OPCODE + abi.OPC_COUNT * 4);
    expect(abi.ST_FXSAVE + abi.FXSAVE_SIZE).toBeLessThanOrEqual(abi.VCPU_STRIDE);
    expect(abi.FX_XMM0 + 16 * 16).toBeLessThanOrEqual(abi.FXSAVE_SIZE);
    expect(abi.DECODED_CACHE_BASE + (abi.DECODED_CACHE_ENTRIES + 1) * abi.DECODED_ENTRY_SIZE).toBeLessThanOrEqual(abi.CODE_PAGE_MAP_BASE);
    expect(abi.CODE_PAGE_MAP_BASE + abi.CODE_PAGE_MAP_SIZE).toBeLessThanOrEqual(abi.HOST_POOL_BASE);
    expect(abi.ST_VM_VCPU + 4).toBeLessThanOrEqual(abi.ST_COUNTERS);
    expect(abi.VM_SHADOW_CONTEXT + abi.VM_SHADOW_CONTEXT_SIZE).toBeLessThanOrEqual(abi.VM_STRIDE);
    expect(abi.FRAME_RMAP_NEXT + 4).toBeLessThanOrEqual(abi.FRAME_ENTRY_SIZE);
  });

  it('the host memory map: no two regions overlap, all below the frame pool', () => {
    const regions: Array<[string, number, number]> = [
      ['open bus', abi.OPEN_BUS_BASE, 64], ['bounce', abi.BOUNCE_BASE, abi.BOUNCE_SLOTS * 64],
      ['mmio stage', abi.MMIO_STAGE_BASE, abi.MMIO_STAGE_SLOTS * 32], ['msr data', abi.MSR_DATA, 8],
      ['zero page', abi.ZERO_PAGE_BASE, 0x1000], ['cpuid', abi.CPUID_COUNT_ADDR, abi.CPUID_TABLE_BASE - abi.CPUID_COUNT_ADDR + abi.CPUID_MAX_ENTRIES * abi.CPUID_ENTRY_SIZE],
      ['vm blocks', abi.VM_AREA_BASE, abi.MAX_VMS * abi.VM_STRIDE], ['host area', abi.HOST_AREA_BASE, 0x14],
      ['decoded cache', abi.DECODED_CACHE_BASE, (abi.DECODED_CACHE_ENTRIES + 1) * abi.DECODED_ENTRY_SIZE],
      ['code page map', abi.CODE_PAGE_MAP_BASE, abi.CODE_PAGE_MAP_SIZE], ['mmu trace', abi.MMU_TRACE_BASE, abi.MMU_TRACE_MAX * 32],
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
