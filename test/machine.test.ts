// The PC's run loop: a guest that meets an instruction hvlab does not implement ends the run with
// a message naming the address and the bytes (the guest still gets its #UD); virtual time and HLT.
import { describe, it, expect } from 'vitest';
import * as abi from '../wasm/abi.ts';
import { Machine } from '../emu/machine/machine.ts';

function flat32(m: Machine, code: number[]): void {
  const v = m.vcpu;
  m.host.writeGuest(0x1000, code);
  v.cr0 = 0x11n;
  const data = { base: 0n, limit: 0xffffffff, selector: 0x10, attr: 0xc093 };
  for (const s of [abi.SEG_DS, abi.SEG_ES, abi.SEG_SS]) v.setSegment(s, data);
  v.setSegment(abi.SEG_CS, { base: 0n, limit: 0xffffffff, selector: 0x08, attr: 0xc09b });
  v.rip = 0x1000n;
}

describe('the PC run loop', () => {
  it('ends the run at an unimplemented instruction, naming its address and bytes', () => {
    const m = new Machine({ ramBytes: 16 << 20 });
    flat32(m, [0x90, 0xf2, 0x0f, 0x38, 0xf0, 0xc1, 0xf4]); // nop; crc32 eax, cl (not implemented); hlt
    const r = m.run(1000);
    expect(r.reason).toBe('unimplemented');
    expect(r.message).toContain('at 0x1001');
    expect(r.message).toContain('bytes f2 0f 38 f0 c1 f4');
    expect(r.message).toContain('0F 38 F0');
  });

  it('a halted vCPU with nothing to wake it ends the run; HLT with IF = 1 skips virtual time to the next timer', () => {
    const m = new Machine({ ramBytes: 16 << 20 });
    flat32(m, [0xf4]); // hlt with IF = 0
    expect(m.run(1_000_000).reason).toBe('halted');
    const m2 = new Machine({ ramBytes: 16 << 20 });
    flat32(m2, [0xfb, 0xf4, 0xeb, 0xfd]); // sti; hlt; jmp back to hlt
    const r = m2.run(50_000_000); // the PIT runs (its IRQ 0 reaches no CPU): 50 ms of virtual time pass idle
    expect(r.reason).toBe('idle');
    expect(Number(r.instructions)).toBeLessThan(10);
    expect(m2.clock.now()).toBeGreaterThanOrEqual(50_000_000);
  });
});
