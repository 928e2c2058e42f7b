// `hvlab host`: one host, many guests. One Host (one WebAssembly instance) with a frame pool of
// --host-memory MiB runs N copies of the bundled guest (or the guests of a --config file), each on
// a VM of its own with RAM allocated on first touch (EPT violations or shadow faults resolved by the
// host memory manager), their vCPUs sharing --host-cpus simulated host CPUs in host virtual time
// under the scheduler of --sched (rr, fair, gang: emu/hv/sched/), with each guest in a scheduler
// group (weight, cap, guarantee; groups of guests from --config). Each guest's console goes to the
// terminal with a `name| ` prefix (or to files); on a terminal a status block shows each guest's
// state, speed, CPU share, steal and host memory; --json reports the host, the scheduler and every
// guest at the end.
import { readFileSync, mkdirSync, createWriteStream, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import logUpdate from 'log-update';
import { Host, MAX_POOL_BYTES, type MmuMode, type Vm } from '../machine/host.ts';
import { noMemoryCounters, type GuestMemoryCounters } from '../machine/guest-memory.ts';
import { parseSwapSpec, type IoStat, type SwapStats } from '../hv/mm/swap.ts';
import type { ReclaimStats } from '../hv/mm/reclaim.ts';
import { Machine, pcCpuid, type GuestEnd } from '../machine/machine.ts';
import { createScheduler, type CreateSchedulerOptions, type CpuMax, type GroupSpec, type GroupStats, type PolicyName, type SchedGuest, type VcpuStats } from '../hv/sched/scheduler.ts';
import { OutOfHostMemory } from '../hv/mm/frame-pool.ts';
import { BootError } from '../boot/multiboot.ts';
import { prepare, closeDrives } from './boot.ts';
import { GuestConsole } from './guest-console.ts';

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
  /** Scheduler: the weight, cap and guarantee of the guest's own group, and the configured group
   *  that group sits in (default: under the root). */
  weight?: number;
  cap?: CpuMax;
  /** Host CPUs reserved. */
  guarantee?: number;
  group?: string;
  /** Its memory container: cgroup v2 memory.max, memory.high, memory.low and swap.max, in MiB. */
  memoryMax?: number;
  memoryHigh?: number;
  memoryLow?: number;
  swapMax?: number;
}

/** A scheduler group of a --config file (guests join it with "group"). */
export interface HostGroupConfig {
  name: string;
  weight?: number;
  cap?: CpuMax;
  guarantee?: number;
  /** The group it nests in (default: the root). */
  parent?: string;
}

export interface HostSchedConfig {
  policy?: PolicyName;
  /** gang only: relaxed co-scheduling's skew bound (0: strict). */
  coSkewNs?: number;
  quantumNs?: number;
  /** The longest round (host ns). The vCPUs of a round run one after another, each for the round's
   *  length, so what one writes the others see within a round: a lock handed between vCPUs waits
   *  up to a round. Default: the scheduler's (ROUND_NS_SMP when a guest has several vCPUs). */
  roundNs?: number;
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
  sched?: HostSchedConfig;
  groups?: HostGroupConfig[];
  /** KVM's paravirtual interface and pause-loop exiting for every guest (default on). */
  pv?: boolean;
  ple?: boolean;
  /** Host swap: `FILE[,size=MiB]`. */
  swap?: string;
  /** 'naive': reclaim writes every page (no zero or clean page skipped): the bench's baseline. */
  reclaim?: 'smart' | 'naive';
  /** The guests' clock at boot (default: the host's date). */
  rtcStart?: Date;
}

/** A vCPU's scheduler accounting in the report. */
export type VcpuReport = VcpuStats;

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
  /** Per vCPU: host ns running, runnable without a host CPU (steal), halted; yields. */
  vcpus: VcpuReport[];
  /** Exits by cause (all vCPUs), and what the guest asked of KVM's paravirtual interface. */
  exits: ExitReport;
  /** With the PV interface: per vCPU, the host's steal_ns when the guest registered its steal-time
   *  record (0 if it never did); what the guest can report is steal_ns minus this. */
  steal_base_ns: number[] | null;
  /** Its memory container (cgroup v2 names): memory.current/max/low, and memory.stat's counters. */
  memory: MemoryReport;
  /** cgroup v2 io.stat of its container: its virtio-blk drives (vda, vdb, ...) and the swap I/O the
   *  host did for it ("swap"), kept apart. */
  io: Record<string, IoStat>;
}

/** A guest's memory container knobs in MiB (config keys and CLI flags). */
export interface MemoryKnobs { memoryMax?: number; memoryHigh?: number; memoryLow?: number; swapMax?: number }

export interface MemoryReport {
  current_bytes: number; max_bytes: number | null; high_bytes: number | null; low_bytes: number; swap_max_bytes: number | null;
  /** Pages in swap now, and slots held (those plus clean copies of resident pages). */
  swapped_bytes: number; swap_slots_bytes: number;
  stat: GuestMemoryCounters;
}

/** io.stat per device of a guest: each drive's reads and writes (flushes, discards and write-zeroes
 *  move no data from the host's point of view and are not counted), and the host's swap I/O for it. */
function ioOf(m: Machine | null): Record<string, IoStat> {
  const io: Record<string, IoStat> = {};
  if (!m) return io;
  m.drives.forEach((d, i) => {
    const r = d.blk.stats.read, w = d.blk.stats.write;
    io[`vd${String.fromCharCode(97 + i)}`] = { rbytes: r.bytes, wbytes: w.bytes, rios: r.operations, wios: w.operations };
  });
  if (m.host.swap) io.swap = m.host.swap.ioOf(m.vm.index);
  return io;
}

function memoryOf(vm: Vm | null): MemoryReport {
  const m = vm?.memory;
  return {
    current_bytes: vm?.chargedBytes ?? 0, max_bytes: vm && vm.limits.max !== Infinity ? vm.limits.max : null,
    high_bytes: vm && vm.limits.high !== Infinity ? vm.limits.high : null, low_bytes: vm?.limits.low ?? 0,
    swap_max_bytes: vm && vm.limits.swapMax !== Infinity ? vm.limits.swapMax : null,
    swapped_bytes: (m?.swappedPages ?? 0) * 4096, swap_slots_bytes: (m?.swapSlots ?? 0) * 4096,
    stat: m ? { ...m.counters } : noMemoryCounters(),
  };
}

export interface ExitReport {
  halt: number; pause_loop: number; hypercall: number; io: number; ept_violation: number;
  /** KVM_HC_KICK_CPU, KVM_HC_SEND_IPI (IPIs delivered), KVM_HC_SCHED_YIELD; PV TLB flushes done on entry. */
  pv_kick: number; pv_ipi: number; pv_yield: number; pv_tlb_flush: number;
}

function exitsOf(m: Machine | null): ExitReport {
  const e = m?.exitCounts, pv = m?.pv?.counts;
  return {
    halt: e?.halt ?? 0, pause_loop: e?.pauseLoop ?? 0, hypercall: e?.hypercall ?? 0, io: e?.io ?? 0, ept_violation: e?.eptViolation ?? 0,
    pv_kick: pv?.kicks ?? 0, pv_ipi: pv?.ipis ?? 0, pv_yield: pv?.yields ?? 0, pv_tlb_flush: pv?.tlbFlushes ?? 0,
  };
}

export interface HostReport {
  host: {
    pool_bytes: number; used_bytes: number; free_bytes: number; peak_used_bytes: number;
    host_cpus: number; mmu: MmuMode; guests: number; wall_seconds: number; virtual_seconds: number;
    invariant_violations: string[];
    swap: SwapStats | null;
    reclaim: ReclaimStats | null;
  };
  sched: { policy: PolicyName; host_cpus: number; quantum_ns: number; co_skew_ns: number; groups: GroupStats[] };
  guests: GuestReport[];
}

export class HostConfigError extends Error {}

const NAME = /^[A-Za-z0-9_.-]{1,32}$/;

/** cgroup v2 cpu.max's default period: a cap in percent is a quota per 100 ms. */
const CAP_PERIOD_NS = 100_000_000;
const MS = 1_000_000;
/** Percentages of one host CPU go up to 64 host CPUs' worth. */
const MAX_PERCENT = 6400;

export interface ParsedHostConfig {
  guests: HostGuestConfig[];
  host: { memory?: number; cpus?: number; mmu?: MmuMode; swap?: string; reclaim?: 'smart' | 'naive' };
  sched?: HostSchedConfig;
  groups?: HostGroupConfig[];
}

/** Validate a --config file's JSON: `{ "host"?: { memory, cpus, mmu }, "sched"?: { policy, coSkewMs,
 *  quantumMs }, "groups"?: [ { name, weight?, cap?, guarantee?, parent? } ], "guests": [ { name,
 *  kernel?, initrd?, append?, memory?, smp?, drives?, script?, weight?, cap?, guarantee?, group? } ] }`;
 *  every problem is one clear sentence. `defaults` weight/cap/guarantee: the command line's. */
export function parseHostConfig(text: string, file: string, defaults: { memory: number; smp: number; script?: string; weight?: number; cap?: CpuMax; guarantee?: number } & MemoryKnobs): ParsedHostConfig {
  let raw: unknown;
  try { raw = JSON.parse(text); } catch (e) { throw new HostConfigError(`${file}: not JSON (${(e as Error).message})`); }
  const fail = (where: string, what: string): never => { throw new HostConfigError(`${file}: ${where}: ${what}`); };
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  const keys = (where: string, o: Record<string, unknown>, allowed: string[]) => {
    for (const k of Object.keys(o)) if (!allowed.includes(k)) fail(where, `unknown key "${k}" (expected ${allowed.map((a) => `"${a}"`).join(', ')})`);
  };
  if (!isObj(raw)) fail('top level', 'must be an object with "guests"');
  const top = raw as Record<string, unknown>;
  keys('top level', top, ['host', 'sched', 'groups', 'guests']);
  const posInt = (where: string, v: unknown, max: number): number => {
    if (!(typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= max)) fail(where, `must be an integer from 1 to ${max} (got ${JSON.stringify(v)})`);
    return v as number;
  };
  const num = (where: string, v: unknown, min: number, max: number, what = 'a number'): number => {
    if (!(typeof v === 'number' && Number.isFinite(v) && v >= min && v <= max)) fail(where, `must be ${what} from ${min} to ${max} (got ${JSON.stringify(v)})`);
    return v as number;
  };
  const str = (where: string, v: unknown): string => (typeof v === 'string' && v.length > 0 ? v : fail(where, `must be a non-empty string (got ${JSON.stringify(v)})`));
  const host: { memory?: number; cpus?: number; mmu?: MmuMode; swap?: string; reclaim?: 'smart' | 'naive' } = {};
  if (top.host !== undefined) {
    if (!isObj(top.host)) fail('host', 'must be an object');
    const h = top.host as Record<string, unknown>;
    for (const k of Object.keys(h)) {
      if (k === 'memory') host.memory = posInt('host.memory', h[k], Math.floor(MAX_POOL_BYTES / 2 ** 20));
      else if (k === 'cpus') host.cpus = posInt('host.cpus', h[k], 64);
      else if (k === 'mmu') host.mmu = h[k] === 'ept' || h[k] === 'shadow' ? h[k] as MmuMode : fail('host.mmu', `must be "ept" or "shadow" (got ${JSON.stringify(h[k])})`);
      else if (k === 'swap') {
        host.swap = str('host.swap', h[k]);
        try { parseSwapSpec(host.swap); } catch (e) { fail('host.swap', (e as Error).message.replace(/^--swap: /, '')); }
      } else if (k === 'reclaim') {
        host.reclaim = h[k] === 'smart' || h[k] === 'naive' ? h[k] as 'smart' | 'naive' : fail('host.reclaim', `must be "smart" or "naive" (got ${JSON.stringify(h[k])})`);
      } else fail('host', `unknown key "${k}" (expected "memory", "cpus", "mmu", "swap", "reclaim")`);
    }
  }
  let sched: HostSchedConfig | undefined;
  if (top.sched !== undefined) {
    if (!isObj(top.sched)) fail('sched', 'must be an object');
    const o = top.sched as Record<string, unknown>;
    keys('sched', o, ['policy', 'coSkewMs', 'quantumMs', 'roundUs']);
    sched = {};
    if (o.policy !== undefined) sched.policy = o.policy === 'rr' || o.policy === 'fair' || o.policy === 'gang' ? o.policy : fail('sched.policy', `must be "rr", "fair" or "gang" (got ${JSON.stringify(o.policy)})`);
    if (o.coSkewMs !== undefined) sched.coSkewNs = Math.round(num('sched.coSkewMs', o.coSkewMs, 0, 1000, 'a number of ms') * MS);
    if (o.quantumMs !== undefined) sched.quantumNs = Math.max(1, Math.round(num('sched.quantumMs', o.quantumMs, 0.001, 1000, 'a number of ms') * MS));
    if (o.roundUs !== undefined) sched.roundNs = Math.round(num('sched.roundUs', o.roundUs, 1, 100_000, 'a number of µs') * 1000);
  }
  const parseCap = (at: string, v: unknown): CpuMax => {
    if (typeof v === 'number') return { quotaNs: Math.round(num(at, v, 1, MAX_PERCENT, 'a percentage of one host CPU') * (CAP_PERIOD_NS / 100)), periodNs: CAP_PERIOD_NS };
    if (!isObj(v)) return fail(at, `must be a percentage of one host CPU or {"quotaMs", "periodMs"} (got ${JSON.stringify(v)})`);
    keys(at, v, ['quotaMs', 'periodMs']);
    // cgroup v2's limits: a period of 1 ms to 1 s, a quota of at least 1 ms.
    if (v.quotaMs === undefined || v.periodMs === undefined) fail(at, 'needs both "quotaMs" and "periodMs"');
    return { quotaNs: Math.round(num(`${at}.quotaMs`, v.quotaMs, 1, 64_000, 'a number of ms') * MS), periodNs: Math.round(num(`${at}.periodMs`, v.periodMs, 1, 1000, 'a number of ms') * MS) };
  };
  // Knobs shared by groups and guests: cgroup v2 cpu.weight, cpu.max (percent of one host CPU per
  // 100 ms, or an explicit quota and period), a guarantee in percent of one host CPU.
  const knobs = (at: string, o: Record<string, unknown>) => ({
    weight: o.weight === undefined ? undefined : posInt(`${at}.weight`, o.weight, 10000),
    cap: o.cap === undefined ? undefined : parseCap(`${at}.cap`, o.cap),
    guarantee: o.guarantee === undefined ? undefined : num(`${at}.guarantee`, o.guarantee, 0.01, MAX_PERCENT, 'a percentage of one host CPU') / 100,
  });
  let groups: HostGroupConfig[] | undefined;
  const groupNames = new Set<string>();
  if (top.groups !== undefined) {
    if (!Array.isArray(top.groups)) fail('groups', 'must be an array');
    groups = (top.groups as unknown[]).map((g, i): HostGroupConfig => {
      const at = `groups[${i}]`;
      if (!isObj(g)) fail(at, 'must be an object');
      const o = g as Record<string, unknown>;
      keys(at, o, ['name', 'weight', 'cap', 'guarantee', 'parent']);
      const name = str(`${at}.name`, o.name);
      if (!NAME.test(name)) fail(`${at}.name`, `"${name}" must be 1-32 letters, digits, '_', '.' or '-'`);
      if (groupNames.has(name)) fail(`${at}.name`, `"${name}" is used twice`);
      groupNames.add(name);
      return { name, ...knobs(at, o), parent: o.parent === undefined ? undefined : str(`${at}.parent`, o.parent) };
    });
    groups.forEach((g, i) => {
      if (g.parent === undefined) return;
      if (!groupNames.has(g.parent)) fail(`groups[${i}].parent`, `no group is named "${g.parent}"`);
      // Follow the parents: a group may not end up inside itself.
      const seen = new Set([g.name]);
      for (let p: string | undefined = g.parent; p !== undefined; p = groups!.find((x) => x.name === p)!.parent) {
        if (seen.has(p)) fail(`groups[${i}].parent`, `"${g.parent}" puts group "${g.name}" inside itself`);
        seen.add(p);
      }
    });
  }
  if (!Array.isArray(top.guests) || top.guests.length === 0) fail('guests', 'must be a non-empty array');
  const names = new Set<string>();
  const guests = (top.guests as unknown[]).map((g, i): HostGuestConfig => {
    const at = `guests[${i}]`;
    if (!isObj(g)) fail(at, 'must be an object');
    const o = g as Record<string, unknown>;
    keys(at, o, ['name', 'kernel', 'initrd', 'append', 'memory', 'smp', 'drives', 'script', 'weight', 'cap', 'guarantee', 'group', 'memoryMax', 'memoryHigh', 'memoryLow', 'swapMax']);
    const name = o.name === undefined ? `g${i}` : str(`${at}.name`, o.name);
    if (!NAME.test(name)) fail(`${at}.name`, `"${name}" must be 1-32 letters, digits, '_', '.' or '-'`);
    if (names.has(name)) fail(`${at}.name`, `"${name}" is used twice`);
    if (groupNames.has(name)) fail(`${at}.name`, `"${name}" is also a group's name (each guest is a scheduler group named after it)`);
    names.add(name);
    const drives = o.drives === undefined ? undefined
      : Array.isArray(o.drives) ? o.drives.map((d, j) => str(`${at}.drives[${j}]`, d)) : fail(`${at}.drives`, 'must be an array of strings');
    const k = knobs(at, o);
    const group = o.group === undefined ? undefined : str(`${at}.group`, o.group);
    if (group !== undefined && !groupNames.has(group)) fail(`${at}.group`, `no group is named "${group}"${groups ? '' : ' (groups are defined in the top-level "groups")'}`);
    return {
      name,
      kernel: o.kernel === undefined ? undefined : str(`${at}.kernel`, o.kernel),
      initrd: o.initrd === undefined ? undefined : str(`${at}.initrd`, o.initrd),
      append: o.append === undefined ? undefined : str(`${at}.append`, o.append),
      memory: o.memory === undefined ? defaults.memory : posInt(`${at}.memory`, o.memory, 3584),
      smp: o.smp === undefined ? defaults.smp : posInt(`${at}.smp`, o.smp, 4),
      drives,
      script: o.script === undefined ? defaults.script : typeof o.script === 'string' ? o.script : fail(`${at}.script`, 'must be a string'),
      weight: k.weight ?? defaults.weight, cap: k.cap ?? defaults.cap, guarantee: k.guarantee ?? defaults.guarantee, group,
      memoryMax: o.memoryMax === undefined ? defaults.memoryMax : posInt(`${at}.memoryMax`, o.memoryMax, 65536),
      memoryHigh: o.memoryHigh === undefined ? defaults.memoryHigh : posInt(`${at}.memoryHigh`, o.memoryHigh, 65536),
      memoryLow: o.memoryLow === undefined ? defaults.memoryLow : num(`${at}.memoryLow`, o.memoryLow, 0, 65536, 'a number of MiB'),
      swapMax: o.swapMax === undefined ? defaults.swapMax : num(`${at}.swapMax`, o.swapMax, 0, 65536, 'a number of MiB'),
    };
  });
  return { guests, host, sched, groups };
}

/** The scheduler's group tree of a host: the configured groups (nested by "parent"), each guest a
 *  group of its own named after it (its weight, cap, guarantee) inside its "group" or the root.
 *  `index` maps a guest to its index among the scheduled guests (undefined: not scheduled). */
export function schedGroups(guests: readonly HostGuestConfig[], groups: readonly HostGroupConfig[] = [], index: (i: number) => number | undefined = (i) => i): GroupSpec[] {
  const specs = new Map(groups.map((g) => [g.name, { name: g.name, weight: g.weight, cap: g.cap, guarantee: g.guarantee, children: [] as Array<GroupSpec | number> }]));
  const top: GroupSpec[] = [];
  for (const g of groups) (g.parent !== undefined ? specs.get(g.parent)!.children : top).push(specs.get(g.name)!);
  guests.forEach((g, i) => {
    const at = index(i);
    if (at === undefined) return;
    const own: GroupSpec = { name: g.name, weight: g.weight, cap: g.cap, guarantee: g.guarantee, children: [at] };
    if (g.group !== undefined) specs.get(g.group)!.children.push(own); else top.push(own);
  });
  return top;
}

/** The command line's scheduler options (strings as typed) -> checked values; one sentence per
 *  problem. */
export function parseSchedFlags(o: { sched?: string; coSkew?: string; round?: string; weight?: string | number; cap?: string; guarantee?: string; pv?: string; ple?: string }):
  { sched: HostSchedConfig; weight?: number; cap?: CpuMax; guarantee?: number; pv: boolean; ple: boolean } {
  const bad = (what: string): never => { throw new HostConfigError(what); };
  const number = (flag: string, v: string, min: number, max: number, what: string) => {
    const n = Number(v);
    if (!(v.trim() !== '' && Number.isFinite(n) && n >= min && n <= max)) bad(`${flag} must be ${what} from ${min} to ${max} (got ${v})`);
    return n;
  };
  const onOff = (flag: string, v: string | undefined) => (v === undefined || v === 'on' ? true : v === 'off' ? false : bad(`${flag} must be on or off (got ${v})`));
  const policy = o.sched ?? 'rr';
  if (policy !== 'rr' && policy !== 'fair' && policy !== 'gang') bad(`--sched must be rr, fair or gang (got ${policy})`);
  const sched: HostSchedConfig = { policy: policy as PolicyName };
  if (o.coSkew !== undefined) sched.coSkewNs = Math.round(number('--co-skew', o.coSkew, 0, 1000, 'a number of ms') * MS);
  if (o.round !== undefined) sched.roundNs = Math.round(number('--round-us', o.round, 1, 100_000, 'a number of µs') * 1000);
  const weight = o.weight === undefined ? undefined : number('--weight', String(o.weight), 1, 10000, 'an integer');
  if (weight !== undefined && !Number.isInteger(weight)) bad(`--weight must be an integer from 1 to 10000 (got ${o.weight})`);
  const cap = o.cap === undefined ? undefined : { quotaNs: Math.round(number('--cap', o.cap, 1, MAX_PERCENT, 'a percentage of one host CPU') * (CAP_PERIOD_NS / 100)), periodNs: CAP_PERIOD_NS };
  const guarantee = o.guarantee === undefined ? undefined : number('--guarantee', o.guarantee, 0.01, MAX_PERCENT, 'a percentage of one host CPU') / 100;
  return { sched, weight, cap, guarantee, pv: onOff('--pv', o.pv), ple: onOff('--ple', o.ple) };
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
  /** Percent of one host CPU its vCPUs ran, and percent of their time runnable without a host
   *  CPU, since the last status update. */
  cpu: number;
  steal: number;
  lastRunNs: number;
  lastStealNs: number;
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
  // The scheduler's options for the guests that run (`index`: a guest's place among them). Checked
  // first for every configured guest, so a bad group tree or policy stops the host before it loads.
  const schedOptions = (index: (i: number) => number | undefined, names: string[], hostCpus: number): CreateSchedulerOptions => ({
    policy: opts.sched?.policy ?? 'rr', coSkewNs: opts.sched?.coSkewNs, quantumNs: opts.sched?.quantumNs, hostCpus,
    sliceInstructions: opts.sched?.roundNs,
    groups: schedGroups(opts.guests, opts.groups, index), guestNames: names,
  });
  try {
    const stubs = opts.guests.map((g) => ({ vcpuCount: g.smp }) as unknown as SchedGuest<GuestEnd>);
    createScheduler(stubs, schedOptions((i) => i, opts.guests.map((g) => g.name), opts.hostCpus ?? Math.max(1, opts.guests.reduce((n, g) => n + g.smp, 0))));
  } catch (e) { io.err(`hvlab host: ${(e as Error).message}\n`); return { status: 2, report: null }; }
  const poolBytes = opts.hostMemory * 2 ** 20;
  let host: Host;
  try {
    host = new Host({ poolBytes, cpuid: pcCpuid(), swap: opts.swap ? parseSwapSpec(opts.swap) : undefined, naiveReclaim: opts.reclaim === 'naive' });
  } catch (e) { io.err(`hvlab host: ${(e as Error).message.replace(/^hvlab: /, '')}\n`); return { status: 2, report: null }; }
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
      virtual_seconds: m.virtualNs / 1e9, memory_bytes: vm.ramBytes, vcpus: [], // (the scheduler's accounting, at the end)
      exits: exitsOf(m), steal_base_ns: m.pv ? m.vcpus.map((_, i) => m.pv!.stealBaseNs(i) ?? 0) : null, memory: memoryOf(vm), io: ioOf(m),
    };
    if (end.reason === 'out-of-memory' || (end.reason !== 'poweroff' && end.reason !== 'debug-exit')) pending.push(`hvlab host: ${end.message}\n`);
    closeDrives(m);
    vm.destroy(); // its frames go back to the pool for the others
    g.file?.end();
  };

  // Every guest's clock starts at the host's date (the same instant for all: identical guests stay
  // identical), or at the fixed date a caller gives for repeatable runs.
  const rtcStart = opts.rtcStart ?? new Date();
  for (const cfg of opts.guests) {
    const g: Running = { cfg, machine: null, console: null, report: null, peakRss: 0, file: null, line: '', lastInstructions: 0, mips: 0, cpu: 0, steal: 0, lastRunNs: 0, lastStealNs: 0 };
    if (opts.consoleDir) g.file = createWriteStream(join(opts.consoleDir, `${cfg.name}.log`));
    g.console = new GuestConsole(sinkFor(g), cfg.script);
    try {
      g.machine = prepare({ kernel: cfg.kernel, initrd: cfg.initrd, append: cfg.append, memory: cfg.memory, smp: cfg.smp,
        drives: cfg.drives, mmu: opts.mmu, host, name: cfg.name, pv: opts.pv ?? true, ple: opts.ple ?? true, rtcStart }, g.console.onByte);
      const mib = (v: number | undefined) => (v === undefined ? undefined : v * 2 ** 20);
      g.machine.vm.setMemoryLimits({ max: mib(cfg.memoryMax), high: mib(cfg.memoryHigh), low: mib(cfg.memoryLow), swapMax: mib(cfg.swapMax) });
    } catch (e) {
      const why = e instanceof OutOfHostMemory ? `guest ${cfg.name}: out of host memory while loading (pool ${opts.hostMemory} MiB)`
        : e instanceof BootError || e instanceof Error ? `guest ${cfg.name}: ${(e as Error).message}` : String(e);
      io.err(`hvlab host: ${why}\n`);
      g.report = { name: cfg.name, exit: 2, reason: 'error', message: why, instructions: 0, rss_bytes: 0, charged_bytes: 0, nested_table_bytes: 0,
        peak_rss_bytes: 0, ept_violations: 0, demand_faults: 0, virtual_seconds: 0, memory_bytes: cfg.memory * 2 ** 20,
        vcpus: Array.from({ length: cfg.smp }, () => ({ running_ns: 0, steal_ns: 0, halted_ns: 0, costop_ns: 0, preemptions: 0, yields: 0, directed_yields: 0 })),
        exits: exitsOf(null), steal_base_ns: null, memory: memoryOf(null), io: {} };
      g.file?.end();
    }
    guests.push(g);
  }
  const live = guests.filter((g) => g.machine);
  const liveIndex = new Map(live.map((g, i) => [g, i]));
  const sched = createScheduler<GuestEnd>(live.map((g) => g.machine!), schedOptions((i) => liveIndex.get(guests[i]), live.map((g) => g.cfg.name),
    opts.hostCpus ?? Math.max(1, live.reduce((n, g) => n + g.cfg.smp, 0))));
  const deadline = opts.timeout !== undefined ? Date.now() + opts.timeout * 1000 : Infinity;
  let lastStatus = 0, lastWall = Date.now(), lastHostNs = 0;
  const render = () => {
    const rows = guests.map((g) => {
      const state = g.report ? `${g.report.reason} (exit ${g.report.exit})` : 'running';
      const held = g.machine ? (g.report ? g.report.rss_bytes : g.machine.vm.rssBytes) / 2 ** 20 : 0;
      const x = g.machine?.exitCounts;
      const exits = x ? `  exits hlt ${x.halt} ple ${x.pauseLoop} hc ${x.hypercall}` : '';
      const speed = g.report ? '' : `${g.mips.toFixed(1).padStart(6)} MIPS  cpu ${g.cpu.toFixed(0).padStart(3)}%  steal ${g.steal.toFixed(0).padStart(3)}%${exits}`;
      const mem = g.machine?.vm.memory;
      const swapped = mem && host.swap ? `  ${(mem.counters.pswpout * 4 / 1024).toFixed(1)} MiB out, ${(mem.counters.pswpin * 4 / 1024).toFixed(1)} in, ${mem.counters.zero_dropped} zero pages dropped` : '';
      return `${g.cfg.name.padEnd(8)} ${state.padEnd(22)} ${speed}  ${held.toFixed(1).padStart(7)} MiB held${swapped}`;
    });
    const st = host.pool.stats();
    rows.push(`host     pool ${opts.hostMemory} MiB: ${(st.usedBytes / 2 ** 20).toFixed(1)} MiB used, ${(st.freeBytes / 2 ** 20).toFixed(1)} MiB free; ${sched.hostCpus} host CPUs (${sched.policy.name}); host time ${(sched.nowNs / 1e9).toFixed(2)} s`);
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
        // CPU share (percent of one host CPU, as top shows it) and steal (percent of the vCPUs' time
        // spent runnable without a host CPU, as a guest's top shows %st) since the last update.
        const ss = sched.stats(), dHost = sched.nowNs - lastHostNs;
        live.forEach((g, i) => {
          const vs = ss.guests[i].vcpus;
          const run = vs.reduce((x, v) => x + v.running_ns, 0), steal = vs.reduce((x, v) => x + v.steal_ns, 0);
          g.cpu = dHost > 0 ? ((run - g.lastRunNs) / dHost) * 100 : 0;
          g.steal = dHost > 0 ? ((steal - g.lastStealNs) / (dHost * vs.length)) * 100 : 0;
          g.lastRunNs = run; g.lastStealNs = steal;
        });
        lastHostNs = sched.nowNs;
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
    for (const g of live) if (!g.report) closeDrives(g.machine!);
    host.close();
  }
  if (status) { logUpdate(render()); logUpdate.done(); }
  const st = host.pool.stats();
  const ss = sched.stats();
  live.forEach((g, i) => { g.report!.vcpus = ss.guests[i].vcpus; });
  const report: HostReport = {
    host: {
      pool_bytes: st.poolBytes, used_bytes: st.usedBytes, free_bytes: st.freeBytes, peak_used_bytes: peakUsed,
      host_cpus: sched.hostCpus, mmu: opts.mmu, guests: guests.length,
      wall_seconds: Number(process.hrtime.bigint() - wallStart) / 1e9, virtual_seconds: sched.nowNs / 1e9,
      invariant_violations: host.checkInvariants(),
      swap: host.swap?.stats() ?? null, reclaim: host.reclaimer ? { ...host.reclaimer.stats } : null,
    },
    sched: { policy: ss.policy, host_cpus: ss.host_cpus, quantum_ns: ss.quantum_ns, co_skew_ns: ss.co_skew_ns, groups: ss.groups },
    guests: guests.map((g) => g.report!),
  };
  // The consoles (each ended when its guest did) are complete on disk when the host returns: a
  // caller reads them next.
  await Promise.all(guests.map((g) => (g.file && !g.file.closed ? new Promise<void>((resolve) => g.file!.once('close', () => resolve())) : null)));
  if (opts.json) io.out(`${JSON.stringify(report)}\n`);
  const worst = Math.max(0, ...report.guests.map((g) => g.exit));
  return { status: report.host.invariant_violations.length ? 1 : worst, report };
}

/** `hvlab host` options -> the guests to run (weight, cap, guarantee: every guest's, and the
 *  defaults of a --config file's guests). */
export function hostGuests(o: { guests: number; memory: number; smp: number; script?: string; config?: string; weight?: number; cap?: CpuMax; guarantee?: number } & MemoryKnobs): ParsedHostConfig {
  const knobs = { weight: o.weight, cap: o.cap, guarantee: o.guarantee, memoryMax: o.memoryMax, memoryHigh: o.memoryHigh, memoryLow: o.memoryLow, swapMax: o.swapMax };
  if (o.config) return parseHostConfig(readFileSync(o.config, 'utf8'), o.config, { memory: o.memory, smp: o.smp, script: o.script, ...knobs });
  if (!(o.guests >= 1 && o.guests <= 16)) throw new HostConfigError(`--guests must be 1 to 16 (got ${o.guests})`);
  return { guests: Array.from({ length: o.guests }, (_, i) => ({ name: `g${i}`, memory: o.memory, smp: o.smp, script: o.script, ...knobs })), host: {} };
}
