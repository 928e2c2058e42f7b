// One host, many guests (emu/machine/host.ts, emu/hv/mm/frame-pool.ts, wasm/vm.ts): VMs on one
// frame pool with RAM allocated on first touch through each VM's gpa -> hpa map. Bare-metal programs
// (flat 64-bit mode, paging off) show isolation: a guest never reads another guest's bytes, a device
// never reaches outside its guest, a guest that outgrows the pool is stopped while the others
// finish; after every test the host's invariants hold.
import { afterEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import * as abi from '../../wasm/abi.ts';
import { Host, type Vcpu, type Vm, type MmuMode } from '../../emu/machine/host.ts';
import { WasmDma } from '../../emu/devices/virtio/wasm-dma.ts';
import { FramePool } from '../../emu/hv/mm/frame-pool.ts';

const MiB = 1 << 20;
const MARKER = 0x5eed_f00d_c0ffee42n;
const CODE = 0x1000;
const hosts: Host[] = [];
afterEach(() => { for (const h of hosts.splice(0)) expect(h.checkInvariants()).toEqual([]); });

function newHost(poolBytes: number): Host { const h = new Host({ poolBytes }); hosts.push(h); return h; }

const imm64 = (v: bigint) => { const b: number[] = []; for (let i = 0n; i < 8n; i++) b.push(Number((v >> (8n * i)) & 0xffn)); return b; };
/** mov rdi, start; mov rcx, qwords; mov rax, MARKER; rep stosq; hlt */
const writer = (start: number, qwords: number) => [0x48, 0xbf, ...imm64(BigInt(start)), 0x48, 0xb9, ...imm64(BigInt(qwords)),
  0x48, 0xb8, ...imm64(MARKER), 0xf3, 0x48, 0xab, 0xf4];
/** Count the qwords of [0, bytes) equal to MARKER into RDX (the marker is built with NOT, so the
 *  program's own bytes never hold it): xor edx,edx; xor esi,esi; mov rcx, n; mov rbx, ~MARKER;
 *  not rbx; l: lodsq; cmp rax, rbx; jne +3; inc rdx; loop l; hlt */
const reader = (bytes: number) => [0x31, 0xd2, 0x31, 0xf6, 0x48, 0xb9, ...imm64(BigInt(bytes / 8)), 0x48, 0xbb, ...imm64(~MARKER & 0xffffffffffffffffn),
  0x48, 0xf7, 0xd3, 0x48, 0xad, 0x48, 0x39, 0xd8, 0x75, 0x03, 0x48, 0xff, 0xc2, 0xe2, 0xf4, 0xf4];

function guest(host: Host, mmu: MmuMode, ramBytes: number, code: number[]): { vm: Vm; v: Vcpu } {
  const vm = host.createVm({ ramBytes, vcpus: 1, mmu, demand: true });
  const v = vm.vcpu(0);
  v.reset(); // flat 64-bit mode, paging off: linear = guest-physical
  vm.memory.write(CODE, code);
  v.rip = BigInt(CODE);
  return { vm, v };
}

/** Run until HLT, resolving first touches as the VMM does; 'out-of-memory' when the pool ran dry. */
function step(g: { vm: Vm; v: Vcpu }, budget: number): 'hlt' | 'running' | 'out-of-memory' {
  for (let spent = 0; spent < budget;) {
    const before = g.v.counter(abi.CNT_INSTRUCTIONS);
    const r = g.v.run(budget - spent);
    spent += Number(g.v.counter(abi.CNT_INSTRUCTIONS) - before);
    if (r === abi.EXIT_HLT) return 'hlt';
    if (r === abi.EXIT_EPT_VIOLATION) {
      const e = g.v.exit();
      const m = g.vm.handleEptViolation(e.address);
      if (m === 'out-of-memory') return 'out-of-memory';
      expect(m).toBe('mapped');
      continue;
    }
    expect(r, `exit ${r}`).toBe(abi.EXIT_BUDGET);
  }
  return 'running';
}
/** Run the guests in turns; one that runs out of host memory is destroyed (its frames go back), as
 *  the VMM does, and the others go on. */
function runAll(...gs: Array<{ vm: Vm; v: Vcpu }>): string[] {
  const state = gs.map(() => 'running');
  while (state.includes('running')) {
    gs.forEach((g, i) => {
      if (state[i] !== 'running') return;
      state[i] = step(g, 200_000);
      if (state[i] === 'out-of-memory') g.vm.destroy();
    });
  }
  return state;
}
const hash = (vm: Vm) => createHash('sha256').update(vm.memory.read(0, vm.ramBytes)).digest('hex');

describe('the frame pool', () => {
  const pool = () => {
    const buf = new ArrayBuffer(abi.HOST_POOL_BASE + 8 * MiB + 0x10000);
    return new FramePool(new DataView(buf), 8 * MiB, abi.HOST_POOL_BASE + 8 * MiB);
  };
  it('hands out a guest 2 MiB region in place inside one reserved 2 MiB block', () => {
    const p = pool();
    const f = [0x200, 0x3ff, 0x201].map((gfn) => p.allocGuestFrame(0, gfn));
    expect(f.map((x) => x % 512)).toEqual([0, 511, 1]);
    expect(new Set(f.map((x) => Math.floor(x / 512))).size).toBe(1);
    expect(p.stats().freeBlocks).toBe(3);
    expect(p.charged4k(0)).toBe(3); // reserved frames are not charged
    expect(p.checkInvariants()).toEqual([]);
  });
  it('host tables take loose frames before breaking a free 2 MiB block; a full pool says so', () => {
    const p = pool();
    p.allocGuestFrame(0, 0);
    const t = p.allocTableFrame(0);
    expect(p.state(t)).toBe(abi.FRAME_NESTED_TABLE);
    expect(p.stats().freeBlocks).toBe(2); // the first table frame opens a block ...
    const t2 = p.allocTableFrame(0);
    expect(Math.floor(t2 / 512)).toBe(Math.floor(t / 512)); // ... which the next ones fill
    expect(p.stats().freeBlocks).toBe(2);
    let n = 0;
    while (p.allocGuestFrame(1, 4096 + n * 512) >= 0) n++; // one frame per region: every block gets reserved, then stolen
    expect(p.stats().freeBytes).toBe(0);
    expect(p.allocGuestFrame(2, 0)).toBe(-1);
    expect(p.checkInvariants()).toEqual([]);
    p.releaseOwner(1);
    expect(p.charged4k(1)).toBe(0);
    expect(p.checkInvariants()).toEqual([]);
  });
});

describe.each(['ept', 'shadow'] as const)('two guests on one host (--mmu %s)', (mmu) => {
  it('a guest reading every gpa it has never finds the marker another guest filled its RAM with', () => {
    const host = newHost(64 * MiB);
    const a = guest(host, mmu, 16 * MiB, writer(0x10000, (16 * MiB - 0x10000) / 8));
    const b = guest(host, mmu, 16 * MiB, reader(16 * MiB));
    expect(runAll(a, b)).toEqual(['hlt', 'hlt']); // (interleaved: the VMs switch every 200 000 instructions)
    expect(b.v.reg(2)).toBe(0n);
    // The reader can find it: run on A's memory it counts every qword A wrote.
    a.vm.memory.write(CODE, reader(16 * MiB));
    a.v.rip = BigInt(CODE);
    expect(runAll(a)).toEqual(['hlt']);
    expect(a.v.reg(2)).toBe(BigInt((16 * MiB - 0x10000) / 8));
    // RAM came on first touch: A's writes and B's reads, one frame per 4 KiB gfn.
    expect(a.vm.rssBytes).toBe(16 * MiB);
    expect(a.vm.eptViolations).toBeGreaterThanOrEqual((16 * MiB - 0x10000) / 4096);
  });

  it('a guest that outgrows the pool is stopped; the other one finishes; its frames come back', () => {
    const host = newHost(12 * MiB);
    const big = guest(host, mmu, 32 * MiB, writer(0x10000, (32 * MiB - 0x10000) / 8));
    const small = guest(host, mmu, 16 * MiB, writer(0x10000, MiB / 8));
    const message = () => big.vm.outOfMemoryMessage();
    let held = '';
    const state = runAll({ vm: big.vm, v: big.v }, small).map((s, i) => { if (i === 0 && s === 'out-of-memory') held = message(); return s; });
    expect(state).toEqual(['out-of-memory', 'hlt']);
    expect(big.vm.outOfMemory).toBe(true);
    expect(held).toMatch(/^guest vm0: out of host memory \(pool 12 MiB, vm0 holds \d+ MiB\)$/);
    expect(big.vm.destroyed).toBe(true);
    // The small guest wrote its megabyte (it got the frames the big one gave back).
    const mem = small.vm.memory.read(0x10000, MiB);
    const dv = new DataView(mem.buffer);
    expect(dv.getBigUint64(0, true)).toBe(MARKER);
    expect(dv.getBigUint64(MiB - 8, true)).toBe(MARKER);
    expect(small.vm.rssBytes).toBeGreaterThanOrEqual(MiB);
  });
});

describe('device DMA stays inside its guest', () => {
  it('descriptors at gpas outside a guest\'s RAM are device errors; the other guest\'s memory is unchanged', () => {
    const host = newHost(64 * MiB);
    const a = guest(host, 'ept', 16 * MiB, writer(0x10000, MiB / 8));
    expect(runAll(a)).toEqual(['hlt']);
    const before = hash(a.vm);
    const b = host.createVm({ ramBytes: 16 * MiB, vcpus: 1, mmu: 'ept', demand: true });
    const dma = new WasmDma(b);
    // A chain of B's: one buffer inside, one past B's RAM (where A's frames might lie in host memory).
    const table = new DataView(new ArrayBuffer(32));
    table.setBigUint64(0, 0x8000n, true); table.setUint32(8, 512, true); table.setUint16(12, 1 | 2, true); table.setUint16(14, 1, true);
    table.setBigUint64(16, BigInt(16 * MiB + 0x1000), true); table.setUint32(24, 4096, true); table.setUint16(28, 2, true);
    b.memory.write(0x4000, new Uint8Array(table.buffer));
    const chain = dma.walkChain(0x4000, 2, 0, false);
    expect(chain.fault).toBe('buffer outside guest memory');
    expect(chain.writable.map((s) => s.gpa)).toEqual([0x8000]);
    dma.staging(4096).fill(0xaa);
    expect(() => dma.scatter(0, 1, 0, 512)).not.toThrow();
    // A descriptor table that itself lies past B's RAM.
    expect(dma.walkChain(16 * MiB - 8, 2, 0, false).fault).not.toBeNull();
    expect(hash(a.vm)).toBe(before);
    expect(Array.from(b.memory.read(0x8000, 4))).toEqual([0xaa, 0xaa, 0xaa, 0xaa]);
    // A device write into an untouched gfn gave B a frame of its own (demand paging through the core).
    expect(b.memory.frameOf(8)).toBeGreaterThanOrEqual(0);
    expect(host.pool.owner(b.memory.frameOf(8))).toBe(b.index);
  });
});

describe('EPT accessed and dirty flags (SDM Vol. 3C, 28.3.5) on a demand-paged guest', () => {
  it('reads set A, writes set D (also through a translation cached by a read), and harvesting clears them', () => {
    const host = newHost(32 * MiB);
    // Read the qword at 0x20000, then write the one at 0x30000, then read and write 0x40000.
    const code = [0x48, 0x8b, 0x04, 0x25, 0x00, 0x00, 0x02, 0x00, // mov rax, [0x20000]
      0x48, 0x89, 0x04, 0x25, 0x00, 0x00, 0x03, 0x00, // mov [0x30000], rax
      0x48, 0x8b, 0x04, 0x25, 0x00, 0x00, 0x04, 0x00, // mov rax, [0x40000]
      0x48, 0x89, 0x04, 0x25, 0x08, 0x00, 0x04, 0x00, // mov [0x40008], rax
      0xf4];
    const g = guest(host, 'ept', 16 * MiB, code);
    const ept = g.vm.ept!;
    expect(g.v.reg64(abi.ST_EPTP) & BigInt(abi.EPTP_AD)).toBe(BigInt(abi.EPTP_AD));
    expect(runAll(g)).toEqual(['hlt']);
    expect(ept.accessedDirty(0x20000)).toEqual({ accessed: true, dirty: false });
    expect(ept.accessedDirty(0x30000)).toEqual({ accessed: true, dirty: true });
    expect(ept.accessedDirty(0x40000)).toEqual({ accessed: true, dirty: true });
    expect(ept.accessedDirty(0x50000)).toBeNull(); // never touched: no frame at all
    // Harvest: clear A, INVEPT; running the code again sets it again (and D stays as it was).
    ept.clearAccessedDirty(0, 16 * MiB);
    g.vm.commitNestedMappings();
    expect(ept.accessedDirty(0x20000)).toEqual({ accessed: false, dirty: false });
    expect(ept.accessedDirty(0x30000)).toEqual({ accessed: false, dirty: true });
    g.v.rip = BigInt(CODE);
    expect(runAll(g)).toEqual(['hlt']);
    expect(ept.accessedDirty(0x20000)).toEqual({ accessed: true, dirty: false });
  });
});
