// `hvlab host`: one host, many guests. One Host (one WebAssembly instance) with a frame pool of
// --host-memory MiB runs N copies of the bundled guest (or the guests of a --config file), each on
// a VM of its own with RAM allocated on first touch (EPT violations or shadow faults resolved by the
// host memory manager), their vCPUs sharing --host-cpus simulated host CPUs round-robin in host
// virtual time. Each guest's console goes to the terminal with a `name| ` prefix (or to files); on
// a terminal a status block shows each guest's state, speed and host memory; --json reports the host
// and every guest at the end.
import { readFileSync, mkdirSync, createWriteStream, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import logUpdate from 'log-update';
import { Host, MAX_POOL_BYTES, type MmuMode } from '../machine/host.ts';
import { Machine, pcCpuid, type GuestEnd } from '../machine/machine.ts';
import { RoundRobinScheduler } from '../hv/sched/round-robin.ts';
import { OutOfHostMemory } from '../hv/mm/frame-pool.ts';
import { BootError } from '../boot/multiboot.ts';
import { prepare } from './boot.ts';
import { GuestConsole } from './guest-console.ts';
import type { AttachedDrive } from '../machine/drives.ts';

export interface HostGuestConfig {
  name: string;
  kernel?: string;
  initrd?: string;
  append?: string;
  /** MiB of guest RAM. */
  memory: number;
  smp: number;
  drives?: string[];
  script?: string;
}

export interface HostRunOptions {
  guests: HostGuestConfig[];
  /** MiB of host memory (the frame pool). */
  hostMemory: number;
  hostCpus?: number;
  mmu: MmuMode;
  /** Wall seconds before the host gives up on guests still running. */
  timeout?: number;
  json?: boolean;
  consoleDir?: string;
  /** The live status block (default: when stderr is a terminal and not --json). */
  status?: boolean;
}

export interface GuestReport {
  name: string;
  exit: number;
  reason: string;
  message: string;
  instructions: number;
  /** Host frames of guest RAM charged to the guest x 4096, when it ended. */
  rss_bytes: number;
  /** Every host frame charged to it (RAM, nested tables, shadow region, ROM) x 4096. */
  charged_bytes: number;
  nested_table_bytes: number;
  peak_rss_bytes: number;
  ept_violations: number;
  demand_faults: number;
  virtual_seconds: number;
  memory_bytes: number;
  vcpus: number;
}

export interface HostReport {
  host: {
    pool_bytes: number; used_bytes: number; free_bytes: number; peak_used_bytes: number;
    host_cpus: number; mmu: MmuMode; guests: number; wall_seconds: number; virtual_seconds: number;
    invariant_violations: string[];
  };
  guests: GuestReport[];
}

export class HostConfigError extends Error {}

const NAME = /^[A-Za-z0-9_.-]{1,32}$/;

/** Validate a --config file's JSON: `{ "host"?: { memory, cpus, mmu }, "guests": [ { name, kernel?,
 *  initrd?, append?, memory?, smp?, drives?, script? } ] }`; every problem is one clear sentence. */
export function parseHostConfig(text: string, file: string, defaults: { memory: number; smp: number; script?: string }):
  { guests: HostGuestConfig[]; host: { memory?: number; cpus?: number; mmu?: MmuMode } } {
  let raw: unknown;
  try { raw = JSON.parse(text); } catch (e) { throw new HostConfigError(`${file}: not JSON (${(e as Error).message})`); }
  const fail = (where: string, what: string): never => { throw new HostConfigError(`${file}: ${where}: ${what}`); };
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isObj(raw)) fail('top level', 'must be an object with "guests"');
  const top = raw as Record<string, unknown>;
  for (const k of Object.keys(top)) if (k !== 'host' && k !== 'guests') fail('top level', `unknown key "${k}" (expected "host", "guests")`);
  const posInt = (where: string, v: unknown, max: number): number => {
    if (!(typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= max)) fail(where, `must be an integer from 1 to ${max} (got ${JSON.stringify(v)})`);
    return v as number;
  };
  const str = (where: string, v: unknown): string => (typeof v === 'string' && v.length > 0 ? v : fail(where, `must be a non-empty string (got ${JSON.stringify(v)})`));
  const host: { memory?: number; cpus?: number; mmu?: MmuMode } = {};
  if (top.host !== undefined) {
    if (!isObj(top.host)) fail('host', 'must be an object');
    const h = top.host as Record<string, unknown>;
    for (const k of Object.keys(h)) {
      if (k === 'memory') host.memory = posInt('host.memory', h[k], Math.floor(MAX_POOL_BYTES / 2 ** 20));
      else if (k === 'cpus') host.cpus = posInt('host.cpus', h[k], 64);
      else if (k === 'mmu') host.mmu = h[k] === 'ept' || h[k] === 'shadow' ? h[k] as MmuMode : fail('host.mmu', `must be "ept" or "shadow" (got ${JSON.stringify(h[k])})`);
      else fail('host', `unknown key "${k}" (expected "memory", "cpus", "mmu")`);
    }
  }
  if (!Array.isArray(top.guests) || top.guests.length === 0) fail('guests', 'must be a non-empty array');
  const names = new Set<string>();
  const guests = (top.guests as unknown[]).map((g, i): HostGuestConfig => {
    const at = `guests[${i}]`;
    if (!isObj(g)) fail(at, 'must be an object');
    const o = g as Record<string, unknown>;
    const allowed = ['name', 'kernel', 'initrd', 'append', 'memory', 'smp', 'drives', 'script'];
    for (const k of Object.keys(o)) if (!allowed.includes(k)) fail(at, `unknown key "${k}" (expected ${allowed.map((a) => `"${a}"`).join(', ')})`);
    const name = o.name === undefined ? `g${i}` : str(`${at}.name`, o.name);
    if (!NAME.test(name)) fail(`${at}.name`, `"${name}" must be 1-32 letters, digits, '_', '.' or '-'`);
    if (names.has(name)) fail(`${at}.name`, `"${name}" is used twice`);
    names.add(name);
    const drives = o.drives === undefined ? undefined
      : Array.isArray(o.drives) ? o.drives.map((d, j) => str(`${at}.drives[${j}]`, d)) : fail(`${at}.drives`, 'must be an array of strings');
    return {
      name,
      kernel: o.kernel === undefined ? undefined : str(`${at}.kernel`, o.kernel),
      initrd: o.initrd === undefined ? undefined : str(`${at}.initrd`, o.initrd),
      append: o.append === undefined ? undefined : str(`${at}.append`, o.append),
      memory: o.memory === undefined ? defaults.memory : posInt(`${at}.memory`, o.memory, 3584),
      smp: o.smp === undefined ? defaults.smp : posInt(`${at}.smp`, o.smp, 4),
      drives,
      script: o.script === undefined ? defaults.script : typeof o.script === 'string' ? o.script : fail(`${at}.script`, 'must be a string'),
    };
  });
  return { guests, host };
}

/** Exit status of a guest's run, as `hvlab boot` gives it. */
function exitOf(r: GuestEnd, status: number | null): number {
  if (r.reason === 'debug-exit') return status ?? 0;
  if (r.reason === 'poweroff' || r.reason === 'stopped') return 0;
  if (r.reason === 'timeout') return 124;
  return 1;
}

interface Running {
  cfg: HostGuestConfig;
  machine: Machine | null;
  console: GuestConsole | null;
  report: GuestReport | null;
  peakRss: number;
  file: WriteStream | null;
  line: string;
  lastInstructions: number;
  mips: number;
}

export interface HostIo {
  out(s: string): void;
  err(s: string): void;
  isTty: boolean;
}

// (log-update fits its block to the terminal's rows: a pseudo-terminal without a size gets no block.)
const defaultIo: HostIo = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s), isTty: !!process.stdout.isTTY && (process.stdout.rows ?? 0) > 0 };

/** Run the host; resolves to the process exit status and the report. */
export async function runHost(opts: HostRunOptions, io: HostIo = defaultIo): Promise<{ status: number; report: HostReport | null }> {
  const poolBytes = opts.hostMemory * 2 ** 20;
  let host: Host;
  try { host = new Host({ poolBytes, cpuid: pcCpuid() }); } catch (e) { io.err(`hvlab host: ${(e as Error).message}\n`); return { status: 2, report: null }; }
  if (opts.consoleDir) mkdirSync(opts.consoleDir, { recursive: true });
  const wallStart = process.hrtime.bigint();
  const status = opts.status ?? (io.isTty && !opts.json);
  const guests: Running[] = [];
  let peakUsed = 0;

  // Console lines: prefixed on the terminal, whole lines at a time (or to a file per guest).
  const pending: string[] = [];
  const sinkFor = (g: Running) => (bytes: Uint8Array) => {
    if (g.file) { g.file.write(bytes); return; }
    if (opts.json) return;
    for (const b of bytes) {
      if (b === 0x0a) { pending.push(`${g.cfg.name}| ${g.line}\n`); g.line = ''; } else if (b !== 0x0d) g.line += String.fromCharCode(b);
    }
  };
  const finish = (g: Running, end: GuestEnd) => {
    const m = g.machine!;
    const vm = m.vm;
    if (g.line) { pending.push(`${g.cfg.name}| ${g.line}\n`); g.line = ''; }
    g.report = {
      name: g.cfg.name, exit: exitOf(end, m.debugExit.status), reason: end.reason, message: end.message,
      instructions: Number(m.instructions), rss_bytes: vm.rssBytes, charged_bytes: vm.chargedBytes, nested_table_bytes: vm.tableBytes,
      peak_rss_bytes: Math.max(g.peakRss, vm.rssBytes), ept_violations: vm.eptViolations, demand_faults: vm.memory.demandFaults,
      virtual_seconds: m.virtualNs / 1e9, memory_bytes: vm.ramBytes, vcpus: m.vcpus.length,
    };
    if (end.reason === 'out-of-memory' || (end.reason !== 'poweroff' && end.reason !== 'debug-exit')) pending.push(`hvlab host: ${end.message}\n`);
    closeDrives(m.drives);
    vm.destroy(); // its frames go back to the pool for the others
    g.file?.end();
  };

  for (const cfg of opts.guests) {
    const g: Running = { cfg, machine: null, console: null, report: null, peakRss: 0, file: null, line: '', lastInstructions: 0, mips: 0 };
    if (opts.consoleDir) g.file = createWriteStream(join(opts.consoleDir, `${cfg.name}.log`));
    g.console = new GuestConsole(sinkFor(g), cfg.script);
    try {
      g.machine = prepare({ kernel: cfg.kernel, initrd: cfg.initrd, append: cfg.append, memory: cfg.memory, smp: cfg.smp,
        drives: cfg.drives, mmu: opts.mmu, host, name: cfg.name }, g.console.onByte);
    } catch (e) {
      const why = e instanceof OutOfHostMemory ? `guest ${cfg.name}: out of host memory while loading (pool ${opts.hostMemory} MiB)`
        : e instanceof BootError || e instanceof Error ? `guest ${cfg.name}: ${(e as Error).message}` : String(e);
      io.err(`hvlab host: ${why}\n`);
      g.report = { name: cfg.name, exit: 2, reason: 'error', message: why, instructions: 0, rss_bytes: 0, charged_bytes: 0, nested_table_bytes: 0,
        peak_rss_bytes: 0, ept_violations: 0, demand_faults: 0, virtual_seconds: 0, memory_bytes: cfg.memory << 20, vcpus: cfg.smp };
      g.file?.end();
    }
    guests.push(g);
  }
  const live = guests.filter((g) => g.machine);
  const sched = new RoundRobinScheduler<GuestEnd>(live.map((g) => g.machine!), { hostCpus: opts.hostCpus ?? Math.max(1, live.reduce((n, g) => n + g.cfg.smp, 0)) });
  const deadline = opts.timeout !== undefined ? Date.now() + opts.timeout * 1000 : Infinity;
  let lastStatus = 0, lastWall = Date.now();
  const render = () => {
    const rows = guests.map((g) => {
      const state = g.report ? `${g.report.reason} (exit ${g.report.exit})` : 'running';
      const held = g.machine ? (g.report ? g.report.rss_bytes : g.machine.vm.rssBytes) / 2 ** 20 : 0;
      return `${g.cfg.name.padEnd(8)} ${state.padEnd(22)} ${g.report ? '' : `${g.mips.toFixed(1).padStart(6)} MIPS`}  ${held.toFixed(1).padStart(7)} MiB held`;
    });
    const st = host.pool.stats();
    rows.push(`host     pool ${opts.hostMemory} MiB: ${(st.usedBytes / 2 ** 20).toFixed(1)} MiB used, ${(st.freeBytes / 2 ** 20).toFixed(1)} MiB free; ${sched.hostCpus} host CPUs; host time ${(sched.nowNs / 1e9).toFixed(2)} s`);
    return rows.join('\n');
  };
  const flush = () => {
    if (!pending.length) return;
    if (status) logUpdate.clear();
    io.out(pending.splice(0).join(''));
  };

  try {
    for (;;) {
      for (const g of live) if (!g.report) g.console!.feed(g.machine!);
      sched.run(2_000_000, (i, r) => finish(live[i], r));
      peakUsed = Math.max(peakUsed, host.pool.stats().usedBytes);
      for (const g of live) if (!g.report) g.peakRss = Math.max(g.peakRss, g.machine!.vm.rssBytes);
      flush();
      if (live.every((g) => g.report)) break;
      const now = Date.now();
      if (now - lastStatus > 250) {
        const dt = (now - lastWall) / 1000;
        for (const g of live) {
          if (g.report) continue;
          const n = Number(g.machine!.instructions);
          g.mips = dt > 0 ? (n - g.lastInstructions) / dt / 1e6 : 0;
          g.lastInstructions = n;
        }
        lastWall = now; lastStatus = now;
        if (status) logUpdate(render());
      }
      if (now > deadline) {
        for (const g of live) if (!g.report) finish(g, { reason: 'timeout', message: `guest ${g.cfg.name}: timed out after ${opts.timeout} s; last output:\n${g.console!.tail()}` });
        flush();
        break;
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
  } finally {
    for (const g of live) if (!g.report) closeDrives(g.machine!.drives);
  }
  if (status) { logUpdate(render()); logUpdate.done(); }
  const st = host.pool.stats();
  const report: HostReport = {
    host: {
      pool_bytes: st.poolBytes, used_bytes: st.usedBytes, free_bytes: st.freeBytes, peak_used_bytes: peakUsed,
      host_cpus: sched.hostCpus, mmu: opts.mmu, guests: guests.length,
      wall_seconds: Number(process.hrtime.bigint() - wallStart) / 1e9, virtual_seconds: sched.nowNs / 1e9,
      invariant_violations: host.checkInvariants(),
    },
    guests: guests.map((g) => g.report!),
  };
  if (opts.json) io.out(`${JSON.stringify(report)}\n`);
  const worst = Math.max(0, ...report.guests.map((g) => g.exit));
  return { status: report.host.invariant_violations.length ? 1 : worst, report };
}

function closeDrives(drives: AttachedDrive[]): void {
  for (const d of drives) { if (!d.image.readOnly) d.image.flush(); d.image.close(); }
  drives.length = 0;
}

/** `hvlab host` options -> the guests to run. */
export function hostGuests(o: { guests: number; memory: number; smp: number; script?: string; config?: string }): { guests: HostGuestConfig[]; host: { memory?: number; cpus?: number; mmu?: MmuMode } } {
  if (o.config) return parseHostConfig(readFileSync(o.config, 'utf8'), o.config, { memory: o.memory, smp: o.smp, script: o.script });
  if (!(o.guests >= 1 && o.guests <= 16)) throw new HostConfigError(`--guests must be 1 to 16 (got ${o.guests})`);
  return { guests: Array.from({ length: o.guests }, (_, i) => ({ name: `g${i}`, memory: o.memory, smp: o.smp, script: o.script })), host: {} };
}
