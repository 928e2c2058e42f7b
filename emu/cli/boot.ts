// `hvlab boot`: start a guest. With no options it boots the bundled Linux guest (guest-images/) to a
// shell on the terminal. --kernel takes a Linux bzImage or a multiboot v1 kernel, --bios a raw
// firmware image started from the reset vector. The serial console is the terminal (raw mode;
// Ctrl-A X quits, as in QEMU). --script types commands at the shell prompt and ends when the guest
// powers off (exit status 0) or the timeout passes (non-zero, with the last lines of output).
import type { PvOption } from '../machine/kvm-pv.ts';
import { readFileSync, existsSync } from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Machine, type RunResult } from '../machine/machine.ts';
import type { Host, MmuMode } from '../machine/host.ts';
import { GuestConsole, SHELL_PROMPT } from './guest-console.ts';
import { bootMultiboot, BootError } from '../boot/multiboot.ts';
import { bootPcLinux, isBzImage } from '../boot/pc-linux.ts';
import { attachDrive, driveStatsReport, parseDrive } from '../machine/drives.ts';
import { ImageError } from '../hv/storage/block-image.ts';

export interface BootOptions {
  bios?: string;
  kernel?: string;
  initrd?: string;
  append?: string;
  memory: number; // MiB
  mmu?: MmuMode;
  /** vCPUs (1-4). */
  smp?: number;
  /** Disks: `file=F[,format=raw|qcow2][,readonly=on]`, each a virtio-blk device. */
  drives?: string[];
  /** Print the run's accounting at exit (instructions, virtual and host time, per-drive I/O). */
  stats?: boolean;
  maxInstructions?: number;
  /** Commands typed at the first shell prompt (a newline is added). */
  script?: string;
  /** Seconds of wall time before a scripted run gives up. */
  timeout?: number;
  /** Interactive: the terminal is the console (stdin in raw mode). */
  interactive?: boolean;
  /** Wall-clock pacing: never let virtual time run ahead of wall time (a guest's `sleep 5` then
   *  takes five seconds). The run stays deterministic in what the guest computes; only its speed
   *  against the wall clock changes. Default: on when interactive. */
  pace?: boolean;
  /** Build the guest on this host (one of many guests, its RAM allocated on first touch). */
  host?: Host;
  /** The guest's name (messages of a many-guest host). */
  name?: string;
  /** KVM's paravirtual interface: on (default), off, realtime (emu/machine/kvm-pv.ts). */
  pv?: PvOption;
  /** Pause-loop exiting (default on). */
  ple?: boolean;
}

const GUEST_DIR = fileURLToPath(new URL('../../guest-images/', import.meta.url));
export const BUNDLED_KERNEL = `${GUEST_DIR}bzImage`;
export const BUNDLED_INITRD = `${GUEST_DIR}initramfs.cpio.gz`;
export const DEFAULT_CMDLINE = 'console=ttyS0';
export { SHELL_PROMPT };

export function readGuestFile(path: string, what: string): Uint8Array {
  if (!existsSync(path)) throw new BootError(`${what} ${path} does not exist`);
  return new Uint8Array(readFileSync(path));
}

/** Instructions per slice of the run loop: between slices, input reaches the guest and timers of
 *  the host (the timeout) run. */
const SLICE_INSTRUCTIONS = 2_000_000;

export interface BootIo {
  out(bytes: Uint8Array): void;
  err(s: string): void;
}

const defaultIo: BootIo = {
  out: (b) => { process.stdout.write(b); },
  err: (s) => { process.stderr.write(s); },
};

/** Build the machine and load what the options name. */
export function prepare(opts: BootOptions, serialOut: (b: number) => void): Machine {
  const firmware = opts.bios ? readGuestFile(opts.bios, 'firmware') : undefined;
  if (opts.smp !== undefined && !(opts.smp >= 1 && opts.smp <= 4)) throw new BootError(`--smp must be 1 to 4 (got ${opts.smp})`);
  const machine = new Machine({ ramBytes: opts.memory << 20, serialOut, firmware, mmu: opts.mmu, smp: opts.smp,
    host: opts.host, demand: opts.host !== undefined, name: opts.name, pv: opts.pv, ple: opts.ple });
  try {
    machine.drives = (opts.drives ?? []).map((spec, i) => attachDrive(machine, parseDrive(spec), i));
  } catch (e) {
    throw new BootError(e instanceof ImageError || e instanceof Error ? e.message : String(e));
  }
  if (opts.bios && !opts.kernel) return machine; // from the reset vector, as a PC does
  const kernelPath = opts.kernel ?? BUNDLED_KERNEL;
  const kernel = readGuestFile(kernelPath, 'kernel');
  if (isBzImage(kernel)) {
    const initrdPath = opts.initrd ?? (opts.kernel ? undefined : BUNDLED_INITRD);
    const initrd = initrdPath ? readGuestFile(initrdPath, 'initrd') : undefined;
    bootPcLinux(machine, kernel, { cmdline: opts.append ?? DEFAULT_CMDLINE, initrd });
  } else {
    const modules = (opts.initrd ? opts.initrd.split(',') : []).filter(Boolean)
      .map((p) => ({ data: readGuestFile(p, 'module'), name: basename(p) }));
    bootMultiboot(machine, kernel, opts.append ?? '', modules);
  }
  return machine;
}

function exitStatus(r: RunResult, io: BootIo, tail: string): number {
  if (r.reason === 'debug-exit') return r.status ?? 0;
  if (r.reason === 'poweroff') return 0;
  if (r.reason === 'stopped') return 0;
  io.err(`hvlab boot: ${r.message}\n`);
  if (tail) io.err(`last output:\n${tail}\n`);
  return r.reason === 'instruction-limit' ? 124 : 1;
}

/** Boot and run; resolves to the process exit status. */
export async function boot(opts: BootOptions, io: BootIo = defaultIo): Promise<number> {
  let machine: Machine;
  const console = new GuestConsole((b) => io.out(b), opts.script);
  const pendingInput = console.pendingInput;
  try {
    machine = prepare(opts, console.onByte);
  } catch (e) {
    if (e instanceof BootError) { io.err(`hvlab boot: ${e.message}\n`); return 2; }
    throw e;
  }
  const tail = () => console.tail();

  let quit = false;
  let restoreTerminal = () => {};
  if (opts.interactive && process.stdin.isTTY) {
    // Raw mode: every key goes to the guest; Ctrl-A X quits (QEMU's escape).
    process.stdin.setRawMode(true);
    process.stdin.resume();
    let escape = false;
    const onData = (chunk: Buffer) => {
      for (const c of chunk) {
        if (escape) { escape = false; if (c === 0x78 || c === 0x58) { quit = true; continue; } if (c !== 0x01) pendingInput.push(0x01); }
        else if (c === 0x01) { escape = true; continue; }
        pendingInput.push(c);
      }
    };
    process.stdin.on('data', onData);
    restoreTerminal = () => { process.stdin.off('data', onData); process.stdin.setRawMode(false); process.stdin.pause(); };
  }

  const deadline = opts.timeout !== undefined ? Date.now() + opts.timeout * 1000 : Infinity;
  const pace = opts.pace ?? !!opts.interactive;
  const wallStart = process.hrtime.bigint();
  const virtualStart = machine.virtualNs;
  let left = opts.maxInstructions ?? Infinity;
  try {
    for (;;) {
      console.feed(machine);
      const r = machine.run(Math.min(SLICE_INSTRUCTIONS, left));
      left -= Number(r.instructions);
      if (r.reason !== 'idle' && r.reason !== 'instruction-limit') return exitStatus(r, io, opts.script !== undefined ? tail() : '');
      const ahead = (machine.virtualNs - virtualStart) - Number(process.hrtime.bigint() - wallStart);
      if (pace && ahead > 0) {
        await new Promise((resolve) => setTimeout(resolve, Math.min(50, Math.ceil(ahead / 1e6))));
      } else if (r.reason === 'idle') {
        // The guest waits for an interrupt (input, a far timer): yield a little to the terminal.
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      if (left <= 0) return exitStatus({ ...r, message: `stopped after ${opts.maxInstructions} instructions` }, io, tail());
      if (quit) { io.err('\nhvlab: quit (Ctrl-A X)\n'); return 0; }
      if (Date.now() > deadline) {
        io.err(`\nhvlab boot: timed out after ${opts.timeout} s (${machine.instructions} instructions, RIP 0x${machine.vcpu.rip.toString(16)})\nlast output:\n${tail()}\n`);
        return 124;
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
  } finally {
    restoreTerminal();
    // Whatever the guest did not flush still reaches the images (then they are closed).
    for (const d of machine.drives) { if (!d.image.readOnly) d.image.flush(); d.image.close(); }
    if (opts.stats) {
      const hostSeconds = Number(process.hrtime.bigint() - wallStart) / 1e9;
      io.err(`\nhvlab stats: ${machine.instructions} instructions, virtual time ${(machine.virtualNs / 1e9).toFixed(3)} s, host time ${hostSeconds.toFixed(3)} s\n`
        + driveStatsReport(machine.drives));
    }
  }
}
