// `hvlab boot`: start a guest. Today: a multiboot v1 kernel (--kernel) with the serial console on
// the terminal and isa-debug-exit's status as the exit status. The bundled Linux guest comes with
// the Linux-boot issue.
import { readFileSync, existsSync } from 'node:fs';
import { basename } from 'node:path';
import { Machine, type RunResult } from '../machine/machine.ts';
import { bootMultiboot, BootError } from '../boot/multiboot.ts';

export interface BootOptions {
  bios?: string;
  kernel?: string;
  initrd?: string;
  append?: string;
  memory: number; // MiB
  maxInstructions?: number;
}

export function readGuestFile(path: string, what: string): Uint8Array {
  if (!existsSync(path)) throw new BootError(`${what} ${path} does not exist`);
  return new Uint8Array(readFileSync(path));
}

function finish(r: RunResult, err: (s: string) => void): number {
  if (r.reason === 'debug-exit') return r.status ?? 0;
  err(`hvlab boot: ${r.message}\n`);
  return r.reason === 'instruction-limit' ? 124 : 1;
}

/** Boot and run; returns the process exit status. */
export function boot(
  opts: BootOptions,
  out: (bytes: Uint8Array) => void = (b) => { process.stdout.write(b); },
  err: (s: string) => void = (s) => { process.stderr.write(s); },
): number {
  if (!opts.kernel && !opts.bios) {
    err('hvlab boot: the bundled Linux guest is not available yet; give a multiboot kernel with --kernel FILE or firmware with --bios FILE\n');
    return 2;
  }
  try {
    const firmware = opts.bios ? readGuestFile(opts.bios, 'firmware') : undefined;
    const machine = new Machine({ ramBytes: opts.memory << 20, serialOut: (b) => out(Uint8Array.of(b)), firmware });
    if (!opts.kernel) {
      // Start from the reset vector, as a PC does (the Machine is in its architectural reset state).
      return finish(machine.run(opts.maxInstructions), err);
    }
    const kernel = readGuestFile(opts.kernel, 'kernel');
    const modules = (opts.initrd ? opts.initrd.split(',') : []).filter(Boolean)
      .map((p) => ({ data: readGuestFile(p, 'module'), name: basename(p) }));
    bootMultiboot(machine, kernel, opts.append ?? '', modules);
    return finish(machine.run(opts.maxInstructions), err);
  } catch (e) {
    if (e instanceof BootError) { err(`hvlab boot: ${e.message}\n`); return 2; }
    throw e;
  }
}
