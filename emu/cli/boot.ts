// `hvlab boot`: start a guest. With no options it boots the bundled Linux guest (guest-images/) to a
// shell on the terminal. --kernel takes a Linux bzImage or a multiboot v1 kernel, --bios a raw
// firmware image started from the reset vector. The serial console is the terminal (raw mode;
// Ctrl-A X quits, as in QEMU). --script types commands at the shell prompt and ends when the guest
// powers off (exit status 0) or the timeout passes (non-zero, with the last lines of output).
import type { PvOption } from '../machine/kvm-pv.ts';
import { readFileSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Machine, type RunResult } from '../machine/machine.ts';
import { MAX_POOL_BYTES, type Host, type MmuMode } from '../machine/host.ts';
import { GuestConsole, SHELL_PROMPT } from './guest-console.ts';
import { bootMultiboot, BootError } from '../boot/multiboot.ts';
import { bootPcLinux, isBzImage } from '../boot/pc-linux.ts';
import { attachDrive, driveStatsReport, parseDrive } from '../machine/drives.ts';
import { lockImage, type ImageLock } from '../hv/storage/image-lock.ts';
import { CMOS_CENTURY, RTC_DATA_PORT, RTC_INDEX_PORT, RtcReg } from '../devices/cmos-rtc.ts';

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
  /** The guest's wall-clock time at boot (the RTC). Default: the RTC's fixed start date, so runs
   *  repeat; the command line passes the host's clock unless `--rtc` names a date. */
  rtcStart?: Date;
}

/** The most guest RAM a one-guest host holds: guest RAM and the host's own structures share one
 *  32-bit WebAssembly memory (4 GiB), and guest RAM sits below the PCI hole (none above 4 GiB). */
export const MAX_GUEST_RAM_MIB = Math.floor(MAX_POOL_BYTES / 2 ** 20);

const GUEST_DIR = fileURLToPath(new URL('../../guest-images/', import.meta.url));
export const BUNDLED_KERNEL = `${GUEST_DIR}bzImage`;
export const BUNDLED_INITRD = `${GUEST_DIR}initramfs.cpio.gz`;
export const DEFAULT_CMDLINE = 'console=ttyS0';
export { SHELL_PROMPT };

export function readGuestFile(path: string, what: string): Uint8Array {
  const st = statSync(path, { throwIfNoEntry: false });
  if (!st) throw new BootError(`${what} ${path} does not exist`);
  if (!st.isFile()) throw new BootError(`${what} ${path} is ${st.isDirectory() ? 'a directory' : 'not a regular file'}`);
  try {
    return new Uint8Array(readFileSync(path));
  } catch (e) {
    throw new BootError(`${what} ${path}: ${(e as Error).message}`);
  }
}

/** Set the guest's RTC to `date` (UTC) the way a firmware setup utility does, through ports 70h/71h:
 *  stop the updates (SET), write the BCD date and time and the century byte, restart them. The RTC
 *  stays a device of virtual time, so the guest's clock then runs at the guest's pace. */
export function setGuestClock(machine: Machine, date: Date): void {
  const bcd = (n: number) => ((Math.floor(n / 10) % 10) << 4) | (n % 10);
  const write = (reg: number, value: number) => { machine.rtc.write(RTC_INDEX_PORT, 1, reg); machine.rtc.write(RTC_DATA_PORT, 1, value); };
  const read = (reg: number) => { machine.rtc.write(RTC_INDEX_PORT, 1, reg); return machine.rtc.read(RTC_DATA_PORT); };
  const SET = 0x80, DM_BINARY = 0x04, HOUR_24 = 0x02; // register B (MC146818A datasheet)
  const b = (read(RtcReg.B) & ~DM_BINARY) | HOUR_24; // BCD, 24-hour: what PC firmware leaves
  write(RtcReg.B, b | SET);
  const fields: Array<[number, number]> = [
    [CMOS_CENTURY, Math.floor(date.getUTCFullYear() / 100)], [RtcReg.Year, date.getUTCFullYear() % 100],
    [RtcReg.Month, date.getUTCMonth() + 1], [RtcReg.DayOfMonth, date.getUTCDate()],
    [RtcReg.Hours, date.getUTCHours()], [RtcReg.Minutes, date.getUTCMinutes()], [RtcReg.Seconds, date.getUTCSeconds()],
  ];
  for (const [reg, value] of fields) write(reg, bcd(value));
  write(RtcReg.DayOfWeek, date.getUTCDay() + 1);
  write(RtcReg.B, b);
}

/** The image locks a machine's drives hold (released when `boot` closes the images). */
const driveLocks = new WeakMap<Machine, ImageLock[]>();

/** Lock the image and its backing chain (QEMU's rules: a writer excludes everyone), then attach. */
function attachLockedDrives(machine: Machine, specs: readonly string[]): void {
  const locks: ImageLock[] = [];
  driveLocks.set(machine, locks);
  machine.drives = [];
  specs.forEach((spec, i) => {
    const option = parseDrive(spec);
    const st = statSync(option.file, { throwIfNoEntry: false });
    if (st && !st.isFile() && !st.isBlockDevice()) throw new BootError(`--drive file=${option.file}: ${st.isDirectory() ? 'a directory' : 'not a regular file'}, not a disk image`);
    locks.push(lockImage(option.file, option.readOnly ? 'read' : 'write'));
    const drive = attachDrive(machine, option, i);
    machine.drives.push(drive);
    for (let b = drive.image.backing; b; b = b.backing) locks.push(lockImage(b.path, b.readOnly ? 'read' : 'write'));
  });
}

/** Close a machine's images (flushing what the guest did not) and give their locks back. */
export function closeDrives(machine: Machine): void {
  for (const d of machine.drives) { if (!d.image.readOnly) d.image.flush(); d.image.close(); }
  for (const l of driveLocks.get(machine) ?? []) l.release();
  driveLocks.delete(machine);
}

/** Instructions per slice of the run loop: between slices, input reaches the guest and timers of
 *  the host (the timeout) run. */
const SLICE_INSTRUCTIONS = 2_000_000;

/** With pacing, how far virtual time may lag wall time before the lag is forgiven. */
const PACE_MAX_BEHIND_NS = 20_000_000;

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
  if (!(Number.isInteger(opts.memory) && opts.memory >= 1 && opts.memory <= MAX_GUEST_RAM_MIB)) {
    throw new BootError(`-m ${opts.memory}: guest RAM must be 1 to ${MAX_GUEST_RAM_MIB} MiB (it lies below 4 GiB, in one 32-bit WebAssembly memory with the host's own structures; there is no RAM above 4 GiB yet)`);
  }
  const machine = new Machine({ ramBytes: opts.memory * 2 ** 20, serialOut, firmware, mmu: opts.mmu, smp: opts.smp,
    host: opts.host, demand: opts.host !== undefined, name: opts.name, pv: opts.pv, ple: opts.ple });
  if (opts.rtcStart) setGuestClock(machine, opts.rtcStart);
  try {
    attachLockedDrives(machine, opts.drives ?? []);
  } catch (e) {
    closeDrives(machine);
    // Lock refusals, image errors and --drive parse errors carry their own one-line wording (QEMU's).
    throw e instanceof BootError ? e : new BootError(e instanceof Error ? e.message : String(e));
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
  if (opts.interactive) {
    // Every byte goes to the guest; Ctrl-A X quits (QEMU's escape).
    let escape = false;
    const onData = (chunk: Buffer) => {
      for (const c of chunk) {
        if (escape) { escape = false; if (c === 0x78 || c === 0x58) { quit = true; continue; } if (c !== 0x01) pendingInput.push(0x01); }
        else if (c === 0x01) { escape = true; continue; }
        pendingInput.push(c);
      }
    };
    const stdin = process.stdin;
    if (stdin.isTTY) {
      stdin.setRawMode(true);
      restoreTerminal = () => { stdin.off('data', onData); stdin.setRawMode(false); stdin.pause(); };
    } else {
      // A pipe or a file: its bytes are all there before the guest boots, and Linux's 8250 driver
      // empties the FIFO when it starts, so they wait until the guest listens.
      console.holdInputUntilGuestListens = true;
      restoreTerminal = () => { stdin.off('data', onData); stdin.destroy(); };
    }
    stdin.on('data', onData);
    stdin.resume();
  }

  const deadline = opts.timeout !== undefined ? Date.now() + opts.timeout * 1000 : Infinity;
  const pace = opts.pace ?? !!opts.interactive;
  const wallStart = process.hrtime.bigint();
  // Pacing compares virtual and wall time elapsed since these anchors; the wall anchor moves when
  // the guest falls behind by more than PACE_MAX_BEHIND_NS (see below).
  let paceWallStart = wallStart;
  const virtualStart = machine.virtualNs;
  let left = opts.maxInstructions ?? Infinity;
  try {
    for (;;) {
      console.feed(machine);
      const r = machine.run(Math.min(SLICE_INSTRUCTIONS, left));
      left -= Number(r.instructions);
      if (r.reason !== 'idle' && r.reason !== 'instruction-limit') return exitStatus(r, io, opts.script !== undefined ? tail() : '');
      if (pace) {
        const now = process.hrtime.bigint();
        const ahead = (machine.virtualNs - virtualStart) - Number(now - paceWallStart);
        // A guest that computed more slowly than real time (booting, at tens of MIPS against a
        // 1 GHz virtual CPU) does not make the time up later: an idle guest would otherwise race
        // through its timers until its clock caught up, and `sleep 5` after boot would be instant.
        if (-ahead > PACE_MAX_BEHIND_NS) paceWallStart += BigInt(-ahead - PACE_MAX_BEHIND_NS);
        if (ahead > 0) await new Promise((resolve) => setTimeout(resolve, Math.min(50, Math.ceil(ahead / 1e6))));
      }
      // Otherwise run on at once, idle or not: an idle slice only moves virtual time to the next
      // timer, and waiting on the wall clock there made an unpaced guest's time run slow.
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
    closeDrives(machine);
    if (opts.stats) {
      const hostSeconds = Number(process.hrtime.bigint() - wallStart) / 1e9;
      io.err(`\nhvlab stats: ${machine.instructions} instructions, virtual time ${(machine.virtualNs / 1e9).toFixed(3)} s, host time ${hostSeconds.toFixed(3)} s\n`
        + driveStatsReport(machine.drives));
    }
  }
}
