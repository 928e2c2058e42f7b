// Bare-metal test kernels (nasm, test/guests/) booted with `hvlab boot`'s code path: each prints its
// checks on COM1 and reports through isa-debug-exit. When QEMU is installed the same images run
// under QEMU TCG too, and the serial output and exit status must be identical.
import { describe, it, expect, beforeAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildGuests } from './guests/build.ts';
import { boot } from '../emu/cli/boot.ts';
import { readFileSync } from 'node:fs';
import { Machine } from '../emu/machine/machine.ts';
import { bootMultiboot } from '../emu/boot/multiboot.ts';
import type { MmuMode } from '../emu/machine/host.ts';

let images: Map<string, string>;
beforeAll(() => { images = buildGuests(); });

const isFirmware = (image: string) => image.endsWith('bios.bin');

async function runHvlab(image: string, extra: { append?: string; mmu?: MmuMode } = {}) {
  const chunks: number[] = [];
  let errors = '';
  const where = isFirmware(image) ? { bios: image } : { kernel: image };
  const status = await boot({ ...where, memory: 32, maxInstructions: 50_000_000, ...extra },
    { out: (b) => chunks.push(...b), err: (s) => { errors += s; } });
  return { status, output: Buffer.from(chunks).toString('latin1'), errors };
}

const qemu = spawnSync('qemu-system-x86_64', ['--version']).status === 0;

function runQemu(image: string) {
  // -cpu max: the kernels probe XSAVE, which QEMU's default CPU model does not offer.
  const r = spawnSync('qemu-system-x86_64', ['-cpu', 'max', isFirmware(image) ? '-bios' : '-kernel', image, '-m', '32', '-nodefaults', '-display', 'none',
    '-serial', 'stdio', '-device', 'isa-debug-exit,iobase=0xf4,iosize=0x04', '-no-reboot'], { timeout: 60_000 });
  return { status: r.status, output: r.stdout.toString('latin1') };
}

describe('bare-metal test kernels', () => {
  it('hello: multiboot entry, COM1 output, isa-debug-exit status', async () => {
    const r = await runHvlab(images.get('hello')!);
    expect(r.output).toBe('hello from hvlab\n');
    expect(r.status).toBe(33);
  });

  it('exceptions: #DE/#BP/#UD/#GP frames and INT 0x80 from ring 3 through the TSS', async () => {
    const r = await runHvlab(images.get('exceptions')!);
    expect(r.errors).toBe('');
    expect(r.output.split('\n').filter((l) => l.startsWith('ok')).length).toBe(5);
    expect(r.output).toContain('all exception checks passed');
    expect(r.status).toBe(33);
  });

  it('longmode: PAE paging, IA-32e entry, #PF/#GP frames, IST, ring 3 -> 0, SYSCALL, and back down', async () => {
    const r = await runHvlab(images.get('longmode')!);
    expect(r.errors).toBe('');
    expect(r.output.split('\n').filter((l) => l.startsWith('ok')).length).toBe(9);
    expect(r.output).toContain('all long-mode checks passed');
    expect(r.status).toBe(33);
  });

  it('realmode: down to real mode and back, 16-bit forms, IVT interrupts and faults, far CALL/RETF', async () => {
    const r = await runHvlab(images.get('realmode')!);
    expect(r.errors).toBe('');
    expect(r.output.split('\n').filter((l) => l.startsWith('ok')).length).toBe(7);
    expect(r.output).toContain('all real-mode checks passed');
    expect(r.status).toBe(33);
  });

  it('debug: TF single-step traps, instruction and data breakpoints, debug registers, LAR/LSL/VERR/VERW', async () => {
    const r = await runHvlab(images.get('debug')!);
    expect(r.errors).toBe('');
    expect(r.output.split('\n').filter((l) => l.startsWith('ok')).length).toBe(5);
    expect(r.output).toContain('all debug checks passed');
    expect(r.status).toBe(33);
  });

  it('gates: JMP FAR through a call gate, CALL FAR from ring 3 with parameter copy, RETF imm to ring 3', async () => {
    const r = await runHvlab(images.get('gates')!);
    expect(r.errors).toBe('');
    expect(r.output).toContain('all call-gate checks passed');
    expect(r.status).toBe(33);
  });

  it('bios: execution starts at the reset vector FFFFFFF0h of a --bios image', async () => {
    const r = await runHvlab(images.get('bios')!);
    expect(r.output).toBe('bios: reset vector reached, running in real mode\nbios: 32-bit protected mode\n');
    expect(r.status).toBe(33);
  });

  it('limits: data segment limits, expand-down segments, #SS for the stack segment, string and moffs operands (SDM Vol. 3A 5.3)', async () => {
    const r = await runHvlab(images.get('limits')!);
    expect(r.errors).toBe('');
    expect(r.output.split('\n').filter((l) => l.startsWith('ok')).length).toBe(5);
    expect(r.output).toContain('all segment-limit checks passed');
    expect(r.status).toBe(33);
  });

  it('xsave: OSXSAVE in CPUID, XSETBV/XGETBV, XSAVE/XRSTOR of x87 and SSE, init on a clear XSTATE_BV bit', async () => {
    const r = await runHvlab(images.get('xsave')!);
    expect(r.errors).toBe('');
    expect(r.output).toContain('all XSAVE checks passed');
    expect(r.status).toBe(33);
  });

  it('every kernel prints the same and exits with the same status under --mmu ept and shadow as under direct', async () => {
    for (const [name, image] of images) {
      if (name === 'irq') continue; // (driven by the test below, not by `hvlab boot`)
      const direct = await runHvlab(image);
      for (const mmu of ['ept', 'shadow'] as const) {
        const r = await runHvlab(image, { mmu });
        expect(r.output, `${name} --mmu ${mmu}`).toBe(direct.output);
        expect(r.status, `${name} --mmu ${mmu}`).toBe(direct.status);
        expect(r.errors, `${name} --mmu ${mmu}`).toBe(direct.errors);
      }
    }
  });

  it('irq: injected external interrupts wait for IF, respect the STI shadow and wake HLT', async () => {
    const chunks: number[] = [];
    const m = new Machine({ ramBytes: 32 << 20, serialOut: (b) => chunks.push(b) });
    bootMultiboot(m, new Uint8Array(readFileSync(images.get('irq')!)));
    let r = m.run(10_000_000);
    expect(r.reason).toBe('halted');
    m.vcpu.injectInterrupt(0x40);
    r = m.run(10_000_000);
    // Halted with IF = 1: it waits for an interrupt (the PIT runs, but its line is not routed yet).
    expect(r.reason).toBe('idle');
    expect(m.vcpu.interruptsDelivered).toBe(1);
    m.vcpu.injectInterrupt(0x41);
    r = m.run(10_000_000);
    const output = Buffer.from(chunks).toString('latin1');
    expect(output).toBe('ok 1 an interrupt injected while IF = 0 waits\nok 2 STI shadow: the next instruction ran before the interrupt\nok 3 HLT with IF = 1 resumed after the handler\n');
    expect(r.reason).toBe('debug-exit');
    expect(r.status).toBe(33);
  });

  it.skipIf(!qemu)('QEMU TCG gives the same output and status for every kernel', async () => {
    for (const [name, image] of images) {
      if (name === 'irq') continue; // needs the host to inject interrupts directly
      // QEMU TCG does not enforce data-segment limits; the SDM (Vol. 3A, 5.3) requires #GP/#SS.
      if (name === 'limits') continue;
      const ours = await runHvlab(image);
      const theirs = runQemu(image);
      expect(ours.output, name).toBe(theirs.output);
      expect(ours.status, name).toBe(theirs.status);
    }
  });
});

describe('hvlab boot rejects bad kernels with a clear error', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hvlab-boot-'));
  it('a file without a multiboot header', async () => {
    const f = join(dir, 'junk.bin');
    writeFileSync(f, Buffer.alloc(4096, 0x90));
    const r = await runHvlab(f);
    expect(r.status).toBe(2);
    expect(r.errors).toContain('no multiboot header');
  });
  it('a header with a bad checksum', async () => {
    const f = join(dir, 'badsum.bin');
    const b = Buffer.alloc(64);
    b.writeUInt32LE(0x1badb002, 0); b.writeUInt32LE(0x10000, 4); b.writeUInt32LE(0, 8);
    writeFileSync(f, b);
    const r = await runHvlab(f);
    expect(r.status).toBe(2);
    expect(r.errors).toContain('bad checksum');
  });
  it('load addresses outside guest RAM', async () => {
    const f = join(dir, 'far.bin');
    const b = Buffer.alloc(64);
    const flags = 0x10000;
    b.writeUInt32LE(0x1badb002, 0); b.writeUInt32LE(flags, 4); b.writeUInt32LE((-(0x1badb002 + flags)) >>> 0, 8);
    b.writeUInt32LE(0x40000000, 12); b.writeUInt32LE(0x40000000, 16); b.writeUInt32LE(0, 20); b.writeUInt32LE(0, 24); b.writeUInt32LE(0x40000020, 28);
    writeFileSync(f, b);
    const r = await runHvlab(f);
    expect(r.status).toBe(2);
    expect(r.errors).toContain('outside guest RAM');
  });
  it('a missing file', async () => {
    const r = await runHvlab(join(dir, 'nope.bin'));
    expect(r.status).toBe(2);
    expect(r.errors).toContain('does not exist');
  });
});
