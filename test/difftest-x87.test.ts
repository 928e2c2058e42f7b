// The x87 layer (wasm/cpu/ops/x87*.ts) against this machine's x87: generated cases for every x87
// form of wasm/cpu/isa-table-fpu.ts (emu/difftest), and the parts the flat 64-bit harness cannot
// show: #NM from CR0.EM/TS/MP, #MF from a pending unmasked exception, and the real-mode
// environment formats, in an architectural-mode (real mode) vCPU.
import { describe, it, expect } from 'vitest';
import * as abi from '../wasm/abi.ts';
import { difftest, formatMismatch, formatSummary, withinOneUlp, TRANSCENDENTALS } from '../emu/difftest/compare.ts';
import { hostDiffersFromModel } from '../emu/difftest/host-vendor.ts';
import { allFormKeys, formVariants } from '../emu/difftest/generate.ts';
import { Host, type Vcpu } from '../emu/machine/host.ts';

// ---- the differential run ----------------------------------------------------------------------------

/** Cases per x87 form key. */
const PER_FORM = 48;

describe('x87 difftest against this machine\'s CPU', () => {
  it(`every x87 form, ${PER_FORM} times each, with a fixed seed`, async () => {
    const keys = allFormKeys(['x87']);
    const count = keys.length * PER_FORM;
    const r = await difftest({ seed: 20260501, count, only: ['x87'], keepMismatches: 10 });
    expect(r.forms).toBe(keys.length);
    expect(r.forms).toBeGreaterThanOrEqual(140);
    // Exact, except the eight transcendentals, compared within one ulp (emu/difftest/compare.ts).
    expect(r.failed, r.mismatches.map(formatMismatch).join('\n')).toBe(0);
    // Known x87 divergences of another vendor (emu/difftest/vendor-divergences.ts), counted apart.
    if (r.vendorSpecific) console.log(formatSummary(r).join('\n'));
    if (!hostDiffersFromModel()) expect(r.vendorSpecific).toBe(0);
    expect(r.passed + r.vendorSpecific).toBe(count);
  });

  it('the one-ulp tolerance of the transcendentals is exactly one ulp', () => {
    const v = (sign: bigint, exp: bigint, mant: bigint) => (sign << 79n) | (exp << 64n) | mant;
    const one = v(0n, 16383n, 1n << 63n);
    expect(withinOneUlp(one, one + 1n)).toBe(true);
    expect(withinOneUlp(one, one + 2n)).toBe(false);
    // Across an exponent change: the largest significand below 1.0 and 1.0 are neighbours.
    expect(withinOneUlp(v(0n, 16382n, (1n << 64n) - 1n), one)).toBe(true);
    expect(withinOneUlp(one, v(1n, 16383n, 1n << 63n))).toBe(false);
    expect(TRANSCENDENTALS.has('fadd')).toBe(false);
    expect(formVariants(['x87']).filter((fv) => TRANSCENDENTALS.has(fv.form.mn)).length).toBe(TRANSCENDENTALS.size);
  });
});

// ---- architectural mode: #NM and #MF ----------------------------------------------------------------

const CODE = 0x1000;
const HANDLERS = 0x2000; // vector n: a HLT at HANDLERS + 16 n
const STACK = 0x8000;

/** A real-mode vCPU (CS = DS = SS = 0) with `code` at 0:1000h and every IVT vector < 32 pointing
 *  at a HLT of its own. */
function realMode(code: number[], cr0Bits = 0n, cr0Clear = 0n): { host: Host; v: Vcpu } {
  const host = new Host({ ramBytes: 1 << 20 });
  const v = host.vcpu(0);
  v.resetArchitectural();
  v.setSegment(abi.SEG_CS, { base: 0n, limit: 0xffff, selector: 0, attr: 0x9b });
  v.cr0 = (v.cr0 | cr0Bits) & ~cr0Clear;
  const ivt: number[] = [];
  for (let n = 0; n < 32; n++) {
    const off = HANDLERS + 16 * n;
    ivt.push(off & 0xff, off >> 8, 0, 0);
    host.writeGuest(off, [0xf4]);
  }
  host.writeGuest(0, ivt);
  host.writeGuest(CODE, [...code, 0xf4]);
  v.rip = BigInt(CODE);
  v.setReg(4, BigInt(STACK));
  return { host, v };
}

/** Runs to the HLT; returns the vector whose handler halted (or -1 for the HLT after the code) and
 *  the IP the exception pushed. */
function runToHlt(host: Host, v: Vcpu): { vector: number; pushedIp: number } {
  expect(v.run(1000)).toBe(abi.EXIT_HLT);
  const at = Number(v.rip) - 1;
  if (at < HANDLERS) return { vector: -1, pushedIp: -1 };
  const sp = Number(v.reg(4) & 0xffffn);
  return { vector: (at - HANDLERS) / 16, pushedIp: host.ram()[sp] | (host.ram()[sp + 1] << 8) };
}

const FX = (v: Vcpu) => v.base + abi.ST_FXSAVE;
const fsw = (v: Vcpu) => v.host.view.getUint16(FX(v) + abi.FX_FSW, true);
const fcw = (v: Vcpu) => v.host.view.getUint16(FX(v) + abi.FX_FCW, true);
const ftw = (v: Vcpu) => v.host.bytes[FX(v) + abi.FX_FTW];
/** ST(i) as [sign|exponent, significand]. */
function st(v: Vcpu, i: number): [number, bigint] {
  const slot = FX(v) + abi.FX_ST0 + 16 * (((fsw(v) >> 11) + i) & 7);
  return [v.host.view.getUint16(slot + 8, true), v.host.view.getBigUint64(slot, true)];
}
const ONE: [number, bigint] = [0x3fff, 1n << 63n];

const FLD1 = [0xd9, 0xe8];
const FWAIT = [0x9b];
const FXSAVE_500 = [0x0f, 0xae, 0x06, 0x00, 0x05]; // fxsave [0x500]
const CR0_EM = BigInt(abi.CR0_EM), CR0_TS = BigInt(abi.CR0_TS), CR0_MP = BigInt(abi.CR0_MP), CR0_NE = BigInt(abi.CR0_NE);

describe('x87 availability: #NM (CR0.EM, CR0.TS, CR0.MP)', () => {
  it('runs x87 instructions with EM = TS = 0', () => {
    const { host, v } = realMode([...FLD1, ...FWAIT]);
    expect(runToHlt(host, v).vector).toBe(-1);
    expect(st(v, 0)).toEqual(ONE);
  });

  it('CR0.EM = 1 or CR0.TS = 1: an x87 instruction raises #NM at its own address, before it executes', () => {
    for (const bits of [CR0_EM, CR0_TS, CR0_EM | CR0_TS | CR0_MP]) {
      const { host, v } = realMode([0x90, ...FLD1], bits);
      expect(runToHlt(host, v)).toEqual({ vector: abi.VEC_NM, pushedIp: CODE + 1 });
      expect(ftw(v)).toBe(0);
    }
  });

  it('FXSAVE/FXRSTOR: #NM with CR0.EM or CR0.TS', () => {
    for (const bits of [CR0_EM, CR0_TS]) {
      const { host, v } = realMode(FXSAVE_500, bits);
      expect(runToHlt(host, v)).toEqual({ vector: abi.VEC_NM, pushedIp: CODE });
    }
    const { host, v } = realMode(FXSAVE_500);
    expect(runToHlt(host, v).vector).toBe(-1);
    expect(host.ram()[0x500] | (host.ram()[0x501] << 8)).toBe(0x037f);
  });

  it('FWAIT: #NM only with CR0.MP = 1 and CR0.TS = 1; CR0.EM does not apply', () => {
    const cases: [bigint, number][] = [
      [CR0_TS, -1], [CR0_MP, -1], [CR0_EM, -1], [CR0_EM | CR0_MP, -1], [CR0_MP | CR0_TS, abi.VEC_NM],
    ];
    for (const [bits, vector] of cases) {
      const { host, v } = realMode(FWAIT, bits);
      const r = runToHlt(host, v);
      expect(r.vector, `CR0 bits ${bits}`).toBe(vector);
      if (vector >= 0) expect(r.pushedIp).toBe(CODE);
    }
  });
});

describe('x87 exceptions: #MF on the next waiting instruction', () => {
  // fninit; fldcw [0x500] (037Bh: ZE unmasked); fldz; fld1; fdiv st(0), st(1) (1/0: unmasked ZE);
  // fnstsw ax (no-wait); then the instruction under test at 100Eh.
  const prologue = [0xdb, 0xe3, 0xd9, 0x2e, 0x00, 0x05, 0xd9, 0xee, 0xd9, 0xe8, 0xd8, 0xf1, 0xdf, 0xe0];
  const AT = CODE + prologue.length;
  function setup(tail: number[], cr0Bits = CR0_NE) {
    const r = realMode([...prologue, ...tail], cr0Bits);
    r.host.writeGuest(0x500, [0x7b, 0x03]);
    return r;
  }

  it('an unmasked exception sets ES and B, leaves the destination, and FWAIT then raises #MF', () => {
    const { host, v } = setup(FWAIT);
    expect(runToHlt(host, v)).toEqual({ vector: abi.VEC_MF, pushedIp: AT });
    const ax = Number(v.reg(0) & 0xffffn);
    expect(ax & 0x80).toBe(0x80); // ES
    expect(ax & 0x8000).toBe(0x8000); // B
    expect(ax & 0x3f).toBe(0x04); // ZE only
    expect(st(v, 0)).toEqual(ONE); // 1 / 0 unmasked: ST(0) unchanged
    expect(fsw(v) & 0x80).toBe(0x80); // still pending: the handler must clear it
  });

  it('a waiting x87 instruction raises #MF before executing; no-wait ones do not', () => {
    let { host, v } = setup(FLD1);
    expect(runToHlt(host, v)).toEqual({ vector: abi.VEC_MF, pushedIp: AT });
    expect((fsw(v) >> 11) & 7).toBe(6); // the FLD1 did not push
    // FNSTCW [0x510], FNSTENV [0x520], FNSAVE [0x560], then FNINIT: none of them waits.
    ({ host, v } = setup([0xd9, 0x3e, 0x10, 0x05, 0xd9, 0x36, 0x20, 0x05, 0xdd, 0x36, 0x60, 0x05, 0xdb, 0xe3, ...FWAIT]));
    expect(runToHlt(host, v).vector).toBe(-1);
    expect(host.ram()[0x510] | (host.ram()[0x511] << 8)).toBe(0x037b);
    expect(fsw(v)).toBe(0);
  });

  it('FNCLEX clears the pending exception; FLDCW waits (#MF) like the other control loads', () => {
    let { host, v } = setup([0xdb, 0xe2, ...FWAIT, ...FLD1]);
    expect(runToHlt(host, v).vector).toBe(-1);
    expect(fsw(v) & 0x80bf).toBe(0);
    ({ host, v } = setup([0xd9, 0x2e, 0x02, 0x05]));
    expect(runToHlt(host, v)).toEqual({ vector: abi.VEC_MF, pushedIp: AT });
  });

  it('FLDCW unmasking an exception flag that is already set makes it pending (ES, B)', () => {
    // fninit; fldz; fld1; fdiv st(0), st(1) (masked ZE: ST(0) = +inf); fldcw [0x500] (037Bh); fwait
    const { host, v } = realMode([0xdb, 0xe3, 0xd9, 0xee, 0xd9, 0xe8, 0xd8, 0xf1, 0xd9, 0x2e, 0x00, 0x05, ...FWAIT], CR0_NE);
    host.writeGuest(0x500, [0x7b, 0x03]);
    expect(runToHlt(host, v)).toEqual({ vector: abi.VEC_MF, pushedIp: CODE + 12 });
    expect(fsw(v) & 0x80ff).toBe(0x8084);
    expect(st(v, 0)).toEqual([0x7fff, 1n << 63n]);
  });

  it('with CR0.NE = 0 the pending exception is not reported (no FERR#/IRQ 13 wiring): FWAIT proceeds', () => {
    const { host, v } = setup(FWAIT, 0n);
    expect(runToHlt(host, v).vector).toBe(-1);
    expect(fsw(v) & 0x80).toBe(0x80);
  });
});

describe('x87 state images in real mode', () => {
  it('FNSTENV (16-bit, real-mode format): linear FIP/FDP, FOP, full tag word; then all masked', () => {
    // fninit; fld1 at 1002h; fld dword [0x600] at 1004h (D9 06 00 06); fnstenv [0x700]
    const { host, v } = realMode([0xdb, 0xe3, ...FLD1, 0xd9, 0x06, 0x00, 0x06, 0xd9, 0x36, 0x00, 0x07]);
    host.writeGuest(0x600, [0, 0, 0, 0]); // +0.0
    expect(runToHlt(host, v).vector).toBe(-1);
    const w = (a: number) => host.ram()[a] | (host.ram()[a + 1] << 8);
    expect(w(0x700)).toBe(0x037f); // FCW before the masking
    expect(w(0x702)).toBe(0x3000); // TOP = 6
    expect(w(0x704)).toBe(0x1fff); // R7 = 1.0 valid (00), R6 = +0 zero (01), others empty
    expect(w(0x706)).toBe(0x1004); // FIP[15:0]: the FLD m32
    expect(w(0x708)).toBe(0x0106); // FOP = D9 06 & 7FFh, FIP[19:16] = 0
    expect(w(0x70a)).toBe(0x0600); // FDP[15:0]
    expect(w(0x70c)).toBe(0);
    expect(fcw(v)).toBe(0x037f);
  });

  it('FNSAVE then FRSTOR (32-bit real-mode format) restore the stack; FNSAVE reinitialises', () => {
    // fninit; fld1; fldpi; o32 fnsave [0x800]; then check; o32 frstor [0x800]
    const save = [0xdb, 0xe3, ...FLD1, 0xd9, 0xeb, 0x66, 0xdd, 0x36, 0x00, 0x08];
    let { host, v } = realMode(save);
    expect(runToHlt(host, v).vector).toBe(-1);
    expect([fcw(v), fsw(v), ftw(v)]).toEqual([0x037f, 0, 0]);
    const d = (a: number) => (host.ram()[a] | (host.ram()[a + 1] << 8) | (host.ram()[a + 2] << 16) | (host.ram()[a + 3] << 24)) >>> 0;
    expect(d(0x800)).toBe(0xffff037f);
    expect(d(0x804)).toBe(0xffff3000);
    expect(d(0x808)).toBe(0xffff0fff); // R7 = 1 and R6 = pi valid, the rest empty
    expect(host.ram()[0x800 + 28 + 9]).toBe(0x40); // ST(0) = pi: exponent 4000h
    ({ host, v } = realMode([...save, 0x66, 0xdd, 0x26, 0x00, 0x08]));
    expect(runToHlt(host, v).vector).toBe(-1);
    expect((fsw(v) >> 11) & 7).toBe(6);
    expect(ftw(v)).toBe(0xc0);
    expect(st(v, 1)).toEqual(ONE);
    expect(st(v, 0)).toEqual([0x4000, 0xc90fdaa22168c235n]);
  });
});
