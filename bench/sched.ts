// `hvlab bench sched`: lock-holder preemption. Guests of 2 vCPUs share 2 host CPUs at 1:1, 2:1 and
// 4:1 overcommit (1, 2 and 4 guests on one `hvlab host`), every guest running the same lock workload
// (guest-images/bench/locks.c: a spinlock, a futex mutex, fork/wait and a pipe ping-pong, each on 2
// pinned threads for S guest seconds). Per host configuration — the vCPU scheduler policy
// (--sched rr|fair|gang), paravirtual spinlocks (--pv on|off) and pause-loop exiting (--ple on|off)
// — the reference is the same configuration's 1:1 run in the same bench run: at k:1 each guest gets
// 1/k of the CPU time, so aggregate ops/s across guests (each guest's ops per second of its own
// clock, which follows host time) stays at the 1:1 figure when nothing is wasted; a vCPU spinning on
// a lock whose holder is preempted is CPU time wasted, and the ratio shows how much.
//
// Every run is a child `hvlab host --config FILE --json --console-dir DIR` (the same path a user
// takes; one WebAssembly host per run). The guests' `locks ...` lines are read from their consoles.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createLogUpdate } from 'log-update';
import { withBenchMeta } from './meta.ts';
import { HVLAB, runHostChild } from './host-child.ts';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const BUILD_SCRIPT = join(REPO, 'guest-images/bench/build.sh');
export const BENCH_INITRD = join(REPO, 'build/bench-initramfs.cpio.gz');

export const MODES = ['spin', 'mutex', 'fork', 'pipe'] as const;
export type LockMode = (typeof MODES)[number];
export const POLICIES = ['rr', 'fair', 'gang'] as const;
export type SchedPolicy = (typeof POLICIES)[number];

/** The default shape: 2-vCPU guests on 2 simulated host CPUs (this machine's core count). */
export const HOST_CPUS = 2;
export const VCPUS_PER_GUEST = 2;
/** The issue's moonshot: three 4-vCPU guests on 4 host CPUs (3:1), against one guest at 1:1, for
 *  no remedy (rr), strict gang scheduling, and the full PV set with PLE on each policy. */
export const MOONSHOT = { hostCpus: 4, vcpusPerGuest: 4, overcommit: [1, 3], configs: ['rr', 'gang', 'rr+pv+ple', 'fair+pv+ple', 'gang+pv+ple'] };
/** Guest RAM per guest (MiB): the workload needs little; the pool is sized so memory never binds. */
const GUEST_MIB = 128;

export interface SchedConfig {
  /** `rr`, `gang+pv`, `fair+pv+ple`, ... */
  name: string;
  policy: SchedPolicy;
  pv: boolean;
  ple: boolean;
}

/** The full comparison: each remedy of lock-holder preemption alone on round-robin, the other two
 *  policies alone, and all of them together. */
export const DEFAULT_CONFIGS = ['rr', 'rr+ple', 'rr+pv', 'rr+pv+ple', 'fair', 'fair+pv+ple', 'gang', 'gang+pv+ple'];
export const QUICK_CONFIGS = ['rr', 'rr+pv+ple', 'gang+pv+ple'];

/** What a host does about an option it does not take (the Machine's defaults: round-robin, KVM PV
 *  interface on, pause-loop exiting on). A config that asks for exactly this can run on such a host. */
export const HOST_IMPLICIT = { policy: 'rr' as SchedPolicy, pv: true, ple: true };
export const DEFAULT_OVERCOMMIT = [1, 2, 4];
export const QUICK_OVERCOMMIT = [1, 4];

export function parseConfig(name: string): SchedConfig {
  const [policy, ...flags] = name.split('+');
  if (!(POLICIES as readonly string[]).includes(policy)) throw new Error(`config "${name}": the policy must be one of ${POLICIES.join(', ')}`);
  for (const f of flags) if (f !== 'pv' && f !== 'ple') throw new Error(`config "${name}": unknown part "${f}" (expected pv or ple)`);
  return { name, policy: policy as SchedPolicy, pv: flags.includes('pv'), ple: flags.includes('ple') };
}

/** One `locks ...` line of a guest. */
export interface LocksLine {
  mode: LockMode;
  threads: number;
  ops: number;
  seconds: number;
  ops_per_s: number;
  spin_iters: number;
  contended: number;
  per_thread: number[];
}

const LOCKS_LINE = /^locks mode=(\w+) threads=(\d+) ops=(\d+) seconds=([\d.]+) ops_per_s=([\d.]+) spin_iters=(\d+) contended=(\d+) per_thread=([\d,]*)\s*$/;

/** Every `locks` result line in a console's text (echoed commands and kernel messages are skipped). */
export function parseLocksLines(text: string): LocksLine[] {
  const lines: LocksLine[] = [];
  for (const raw of text.split('\n')) {
    const m = LOCKS_LINE.exec(raw.replace(/\r/g, ''));
    if (!m || !(MODES as readonly string[]).includes(m[1])) continue;
    lines.push({
      mode: m[1] as LockMode, threads: Number(m[2]), ops: Number(m[3]), seconds: Number(m[4]), ops_per_s: Number(m[5]),
      spin_iters: Number(m[6]), contended: Number(m[7]), per_thread: m[8] ? m[8].split(',').map(Number) : [],
    });
  }
  return lines;
}

/** A mode's figures summed over the guests of one run. */
export interface ModeResult {
  /** Sum over guests of each guest's ops per second of its own clock. */
  ops_per_s: number;
  ops: number;
  spin_iters: number;
  contended: number;
  /** Aggregate ops/s over the same config's 1:1 run (1.0 = no throughput lost to overcommit). */
  ratio: number | null;
  per_guest_ops_per_s: number[];
}

/** One guest's steal: what its kernel reports in /proc/stat (USER_HZ ticks, as ns) against what
 *  the host's scheduler counted while its vCPUs were runnable without a host CPU, from the
 *  registration of the steal-time record on. */
export interface StealCheck {
  guest: string;
  guest_ns: number;
  host_ns: number;
  /** |guest - host| / host. */
  rel_error: number;
}

export interface SchedRun {
  config: string;
  overcommit: number;
  guests: number;
  /** ok; failed (a guest did not finish its script); unsupported (hvlab host lacks an option). */
  status: 'ok' | 'failed' | 'unsupported';
  message: string | null;
  /** The scheduler options `hvlab host` was given (fewer than three: it lacked the others). */
  host_args: string[];
  wall_seconds: number;
  /** Host virtual seconds of the whole run (boots included). */
  virtual_seconds: number;
  modes: Partial<Record<LockMode, ModeResult>>;
  /** With --pv: each guest's reported steal against the host's (empty without the PV interface). */
  steal: StealCheck[];
  /** Exits by cause, summed over the guests. */
  exits: Record<string, number> | null;
}

export interface SchedBenchResult {
  seconds_per_mode: number;
  host_cpus: number;
  vcpus_per_guest: number;
  guest_memory_bytes: number;
  rounds: number;
  configs: SchedConfig[];
  overcommit: number[];
  /** Which of --sched, --pv, --ple `hvlab host --help` offered when the bench ran. */
  host_options: { sched: boolean; pv: boolean; ple: boolean };
  notes: string[];
  runs: SchedRun[];
  /** schedSummary's figures: the moonshot and steal checks at the highest overcommit. */
  summary?: ReturnType<typeof schedSummary>;
}

export interface SchedBenchOptions {
  seconds?: number;
  configs?: string[];
  overcommit?: number[];
  rounds?: number;
  hostCpus?: number;
  vcpusPerGuest?: number;
  /** The host's longest scheduling round in µs (`hvlab host --round-us`; default the host's). */
  roundUs?: number;
  json?: string | null;
  svg?: string | null;
  /** Progress on stderr (a live block on a terminal, plain lines otherwise). */
  progress?: boolean;
}

/** Build (or refresh) the bench initramfs; throws with build.sh's own one-line reason. */
export function buildBenchInitramfs(): string {
  const r = spawnSync('bash', [BUILD_SCRIPT], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error((r.stderr || r.stdout || `${BUILD_SCRIPT} failed`).trim().split('\n').pop()!);
  return BENCH_INITRD;
}

/** What `hvlab host` accepts today (the scheduler options are being added alongside this bench). */
export function probeHostOptions(): { sched: boolean; pv: boolean; ple: boolean } {
  const help = spawnSync(process.execPath, [HVLAB, 'host', '--help'], { encoding: 'utf8' }).stdout ?? '';
  return { sched: /--sched\b/.test(help), pv: /--pv\b/.test(help), ple: /--ple\b/.test(help) };
}

/** The host command-line options for a config, or why it cannot run on this `hvlab host`. Options
 *  the host has are always passed explicitly (its defaults may change); a missing option is only
 *  tolerated when the config asks for what the host does without it (HOST_IMPLICIT). */
export function hostArgs(c: SchedConfig, have: { sched: boolean; pv: boolean; ple: boolean }): { args: string[] } | { missing: string } {
  const args: string[] = [];
  const missing: string[] = [];
  if (have.sched) args.push('--sched', c.policy); else if (c.policy !== HOST_IMPLICIT.policy) missing.push('--sched');
  if (have.pv) args.push('--pv', c.pv ? 'on' : 'off'); else if (c.pv !== HOST_IMPLICIT.pv) missing.push('--pv');
  if (have.ple) args.push('--ple', c.ple ? 'on' : 'off'); else if (c.ple !== HOST_IMPLICIT.ple) missing.push('--ple');
  return missing.length ? { missing: `hvlab host has no ${missing.join(', ')} option yet` } : { args };
}

/** Every mode on one thread per vCPU, then the kernel's CPU times (the steal column), then off. */
export function guestScript(seconds: number, vcpus = VCPUS_PER_GUEST): string {
  return `${MODES.map((m) => `locks ${m} ${vcpus} ${seconds}`).join('; ')}; cat /proc/stat; poweroff -f`;
}

/** Linux's USER_HZ: /proc/stat counts in these ticks. */
const USER_HZ = 100;

/** The steal column summed over a guest's `cpuN` lines of /proc/stat, in ns (the last dump in the
 *  text); null when there is none. */
export function parseProcStatSteal(text: string): number | null {
  let total: number | null = null;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r/g, '');
    if (/^cpu /.test(line)) total = 0; // the summary line starts a dump
    const m = /^cpu\d+((?: \d+){8,})\s*$/.exec(line);
    if (m && total !== null) total += Number(m[1].trim().split(' ')[7]) * (1e9 / USER_HZ);
  }
  return total;
}

interface RunProgress { (guestModesDone: number[]): void }

interface Shape { hostCpus: number; vcpusPerGuest: number }

/** One `hvlab host` run: `guests` guests on the shape's host CPUs under `args`. */
async function runOnce(c: SchedConfig, guests: number, seconds: number, args: string[], shape: Shape, onProgress: RunProgress): Promise<SchedRun> {
  const names = Array.from({ length: guests }, (_, i) => `g${i}`);
  const config = {
    host: { memory: guests * GUEST_MIB + 64, cpus: shape.hostCpus, mmu: 'ept' },
    guests: names.map((name) => ({ name, initrd: BENCH_INITRD, memory: GUEST_MIB, smp: shape.vcpusPerGuest, script: guestScript(seconds, shape.vcpusPerGuest) })),
  };
  const base: SchedRun = { config: c.name, overcommit: (guests * shape.vcpusPerGuest) / shape.hostCpus, guests, status: 'failed', message: null, host_args: args, wall_seconds: 0, virtual_seconds: 0, modes: {}, steal: [], exits: null };
  // Wall-time limit of the child: the workload is seconds x 4 modes of host time per guest CPU
  // share, at a few tens of MIPS, plus a boot per guest; generous so only a hung guest hits it.
  const timeoutSeconds = 300 + guests * 120 + guests * MODES.length * seconds * 600;
  const run = await runHostChild(config, args, { timeoutSeconds, onPoll: (texts) => onProgress(texts.map((t) => parseLocksLines(t).length)) });
  base.wall_seconds = run.wallSeconds;
  const { report, consoles: texts } = run;
  if (!report) {
    // The host refused its command line (an option or value it does not have yet): the config is
    // unsupported, not a failed measurement.
    const refused = /error: (unknown option|option .* is invalid)|InvalidArgumentError|must be/i.test(run.stderr);
    return { ...base, status: refused ? 'unsupported' : 'failed', message: `hvlab host exited with ${run.code} and no report: ${(run.stderr || run.stdout).trim().split('\n').slice(-3).join(' / ')}` };
  }
  base.virtual_seconds = report.host.virtual_seconds;
  const perGuest = texts.map(parseLocksLines);
  const bad = report.guests.filter((g) => g.exit !== 0);
  const short = names.filter((_, i) => MODES.some((m) => !perGuest[i].some((l) => l.mode === m)));
  if (bad.length || short.length || report.host.invariant_violations.length) {
    const why = bad.map((g) => `${g.name}: ${g.reason} (${g.message.split('\n')[0]})`)
      .concat(short.map((n) => `${n}: not every mode printed a locks line`), report.host.invariant_violations.slice(0, 2));
    return { ...base, message: why.join('; ') };
  }
  for (const m of MODES) {
    const lines = perGuest.map((ls) => ls.find((l) => l.mode === m)!);
    base.modes[m] = {
      ops_per_s: lines.reduce((s, l) => s + l.ops_per_s, 0), ops: lines.reduce((s, l) => s + l.ops, 0),
      spin_iters: lines.reduce((s, l) => s + l.spin_iters, 0), contended: lines.reduce((s, l) => s + l.contended, 0),
      ratio: null, per_guest_ops_per_s: lines.map((l) => l.ops_per_s),
    };
  }
  base.exits = {};
  for (const g of report.guests) for (const [k, v] of Object.entries(g.exits ?? {})) base.exits[k] = (base.exits[k] ?? 0) + v;
  if (c.pv) {
    report.guests.forEach((g, i) => {
      const guestNs = parseProcStatSteal(texts[i]);
      if (guestNs === null || !g.steal_base_ns) return;
      const hostNs = g.vcpus.reduce((sum, v, j) => sum + v.steal_ns - (g.steal_base_ns![j] ?? 0), 0);
      base.steal.push({ guest: g.name, guest_ns: guestNs, host_ns: hostNs, rel_error: hostNs > 0 ? Math.abs(guestNs - hostNs) / hostNs : guestNs === 0 ? 0 : Infinity });
    });
  }
  return { ...base, status: 'ok' };
}

const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); const h = s.length >> 1; return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2; };

/** Per-mode medians over rounds (ops/s, and the other counters of the round with the median). */
function medianRun(runs: SchedRun[]): SchedRun {
  const ok = runs.filter((r) => r.status === 'ok');
  if (!ok.length) return runs[0];
  const out: SchedRun = { ...ok[0], wall_seconds: median(ok.map((r) => r.wall_seconds)), virtual_seconds: median(ok.map((r) => r.virtual_seconds)), modes: {} };
  for (const m of MODES) {
    const byRate = ok.map((r) => r.modes[m]!).sort((a, b) => a.ops_per_s - b.ops_per_s);
    out.modes[m] = { ...byRate[(byRate.length - 1) >> 1], ops_per_s: median(byRate.map((x) => x.ops_per_s)) };
  }
  return out;
}

export async function benchSched(opts: SchedBenchOptions = {}): Promise<SchedBenchResult> {
  const seconds = opts.seconds ?? 0.25;
  const configs = (opts.configs ?? DEFAULT_CONFIGS).map(parseConfig);
  // The reference of every ratio is the config's 1:1 run, so it is always measured.
  const overcommit = [...new Set([1, ...(opts.overcommit ?? DEFAULT_OVERCOMMIT)])].sort((a, b) => a - b);
  const shape: Shape = { hostCpus: opts.hostCpus ?? HOST_CPUS, vcpusPerGuest: opts.vcpusPerGuest ?? VCPUS_PER_GUEST };
  if (!(shape.vcpusPerGuest >= 1 && shape.vcpusPerGuest <= 4)) throw new Error(`guests have 1 to 4 vCPUs (got ${shape.vcpusPerGuest})`);
  const guestsAt = (k: number) => (k * shape.hostCpus) / shape.vcpusPerGuest;
  for (const k of overcommit) {
    const guests = guestsAt(k);
    if (!(Number.isInteger(guests) && guests >= 1 && guests <= 8)) throw new Error(`overcommit ${k}:1 needs a whole number of ${shape.vcpusPerGuest}-vCPU guests on ${shape.hostCpus} host CPUs (1 to 8 guests)`);
  }
  const rounds = opts.rounds ?? 1;
  buildBenchInitramfs();
  const have = probeHostOptions();
  const notes: string[] = [];
  const implicit = { sched: HOST_IMPLICIT.policy, pv: HOST_IMPLICIT.pv ? 'on' : 'off', ple: HOST_IMPLICIT.ple ? 'on' : 'off' };
  for (const [k, v] of Object.entries(have)) {
    if (!v) notes.push(`hvlab host has no --${k} option: configs with --${k} ${implicit[k as keyof typeof implicit]} (what a host without it does) ran without it; the others are unsupported`);
  }

  const progress = opts.progress ?? false;
  // (log-update sizes its block to the terminal: a terminal without rows gets plain lines instead.)
  const live = progress && process.stderr.isTTY && (process.stderr.rows ?? 0) > 0 ? createLogUpdate(process.stderr) : null;
  const benchStart = Date.now();
  const jobs = configs.flatMap((c) => overcommit.map((k) => ({ c, k, guests: guestsAt(k) })));
  const total = jobs.length * rounds;
  let done = 0;
  const show = (what: string, modesDone?: number[]) => {
    const elapsed = ((Date.now() - benchStart) / 1000).toFixed(0);
    const guests = modesDone ? `  ${modesDone.map((n, i) => `g${i} ${n}/${MODES.length}`).join('  ')}` : '';
    const line = `bench sched [${done}/${total}] ${what}${guests}  (${elapsed} s)`;
    if (live) live(line); else if (progress && !modesDone) process.stderr.write(`${line}\n`);
  };

  const samples = new Map<string, SchedRun[]>();
  for (let round = 0; round < rounds; round++) {
    // Alternate the order so drift of a shared machine's speed hits every config alike (the guests'
    // figures are in virtual time and repeat exactly; wall time is what drifts).
    const order = round % 2 === 0 ? jobs : [...jobs].reverse();
    for (const { c, k, guests } of order) {
      const key = `${c.name}@${k}`;
      const label = `${c.name} ${k}:1 (${guests} guest${guests > 1 ? 's' : ''})`;
      const a = hostArgs(c, have);
      let run: SchedRun;
      if ('missing' in a) {
        run = { config: c.name, overcommit: k, guests, status: 'unsupported', message: a.missing, host_args: [], wall_seconds: 0, virtual_seconds: 0, modes: {}, steal: [], exits: null };
      } else {
        show(label);
        const round = opts.roundUs !== undefined ? ['--round-us', String(opts.roundUs)] : [];
        run = await runOnce(c, guests, seconds, [...a.args, ...round], shape, (m) => show(label, m));
      }
      done++;
      samples.set(key, [...(samples.get(key) ?? []), run]);
      show(`${label}: ${run.status}${run.message ? ` (${run.message})` : ` in ${run.wall_seconds.toFixed(0)} s`}`);
    }
  }
  live?.done();

  const runs: SchedRun[] = [];
  for (const { c, k } of jobs) runs.push(medianRun(samples.get(`${c.name}@${k}`)!));
  for (const r of runs) {
    const ref = runs.find((x) => x.config === r.config && x.overcommit === 1);
    for (const m of MODES) {
      const mine = r.modes[m], base = ref?.modes[m];
      if (mine && base && base.ops_per_s > 0) mine.ratio = mine.ops_per_s / base.ops_per_s;
    }
  }
  const result: SchedBenchResult = {
    seconds_per_mode: seconds, host_cpus: shape.hostCpus, vcpus_per_guest: shape.vcpusPerGuest, guest_memory_bytes: GUEST_MIB << 20,
    rounds, configs, overcommit, host_options: have, notes, runs,
  };
  result.summary = schedSummary(result);
  const write = (file: string, text: string) => { mkdirSync(dirname(file), { recursive: true }); writeFileSync(file, text); };
  if (opts.json) write(opts.json, `${JSON.stringify(withBenchMeta(result), null, 2)}\n`);
  if (opts.svg) write(opts.svg, schedSvg(result));
  return result;
}

/** The table: one row per config and mode, one column group per overcommit ratio. */
export function formatSchedTable(r: SchedBenchResult): string[] {
  const ks = r.overcommit;
  const head = ['config', 'mode', ...ks.flatMap((k) => k === 1 ? ['1:1 ops/s'] : [`${k}:1 ops/s`, 'ratio']), ...ks.map((k) => `spin/op ${k}:1`)];
  const rows: string[][] = [];
  for (const c of r.configs) {
    const byK = ks.map((k) => r.runs.find((x) => x.config === c.name && x.overcommit === k)!);
    const broken = byK.find((x) => x.status !== 'ok');
    if (!byK.some((x) => x.status === 'ok')) { rows.push([c.name, '', `${broken!.status}: ${broken!.message}`]); continue; }
    for (const m of MODES) {
      const cells = byK.flatMap((x, i) => {
        const v = x.modes[m];
        const rate = v ? v.ops_per_s.toFixed(0) : x.status === 'ok' ? '-' : x.status;
        return ks[i] === 1 ? [rate] : [rate, v?.ratio != null ? v.ratio.toFixed(2) : '-'];
      });
      const spins = byK.map((x) => { const v = x.modes[m]; return v && v.spin_iters ? (v.spin_iters / Math.max(1, v.ops)).toFixed(1) : '-'; });
      rows.push([c.name, m, ...cells, ...spins]);
    }
    if (broken) rows.push([c.name, '', `${broken.overcommit}:1 ${broken.status}: ${broken.message}`]);
  }
  const widths = head.map((h, i) => Math.max(h.length, ...rows.filter((row) => row.length === head.length || i === 0).map((row) => row[i].length)));
  const fmt = (row: string[]) => row.length === head.length ? row.map((v, i) => (i < 2 ? v.padEnd(widths[i]) : v.padStart(widths[i]))).join('  ') : `${row[0].padEnd(widths[0])}  ${row.slice(2).join(' ')}`;
  return [fmt(head), ...rows.map(fmt)];
}

const geomean = (xs: number[]) => Math.exp(xs.reduce((a, x) => a + Math.log(x), 0) / xs.length);

/** At the highest overcommit: each PV config's aggregate ops/s against the no-remedy baseline
 *  (rr, PV and PLE off) and strict gang scheduling, per mode and as the geometric mean over modes;
 *  and the worst steal error of each PV config's guests. */
export function schedSummary(r: SchedBenchResult): { lines: string[]; moonshot: Array<{ config: string; vs_baseline: number; vs_gang: number | null; met: boolean }> } {
  const k = Math.max(...r.overcommit);
  const at = (name: string) => r.runs.find((x) => x.config === name && x.overcommit === k && x.status === 'ok');
  const lines: string[] = [];
  const moonshot: Array<{ config: string; vs_baseline: number; vs_gang: number | null; met: boolean }> = [];
  const baseline = at('rr'), gang = at('gang');
  for (const c of r.configs.filter((x) => x.pv)) {
    const run = at(c.name);
    if (!run) continue;
    const worst = run.steal.length ? Math.max(...run.steal.map((x) => x.rel_error)) : null;
    if (worst !== null) lines.push(`steal ${c.name} ${k}:1: guest /proc/stat vs host deschedule time, worst guest ${(worst * 100).toFixed(2)}% (${run.steal.map((x) => `${x.guest} ${(x.guest_ns / 1e6).toFixed(0)}/${(x.host_ns / 1e6).toFixed(0)} ms`).join(', ')})`);
    if (!baseline || !c.ple) continue;
    const per = (ref: SchedRun) => MODES.map((m) => (run.modes[m]?.ops_per_s ?? 0) / Math.max(1e-9, ref.modes[m]?.ops_per_s ?? 0));
    const vsBase = geomean(per(baseline)), vsGang = gang ? geomean(per(gang)) : null;
    const met = vsBase >= 2 && (vsGang === null || vsGang >= 1);
    moonshot.push({ config: c.name, vs_baseline: vsBase, vs_gang: vsGang, met });
    lines.push(`${c.name} at ${k}:1: ${vsBase.toFixed(2)}x the no-PV baseline (rr) [${per(baseline).map((x, i) => `${MODES[i]} ${x.toFixed(2)}`).join(', ')}]`
      + (vsGang !== null ? `, ${vsGang.toFixed(2)}x strict gang [${per(gang!).map((x, i) => `${MODES[i]} ${x.toFixed(2)}`).join(', ')}]` : '')
      + ` (geometric means over modes)${met ? ': the moonshot holds' : ''}`);
  }
  return { lines, moonshot };
}

const COLORS = ['#c0392b', '#2c3e50', '#27ae60', '#8e44ad', '#d35400', '#2980b9', '#7f8c8d', '#f1c40f'];

/** Throughput ratio over overcommit, one panel per mode, one line per config (hand-written SVG as
 *  bench/host.ts draws its plot). */
export function schedSvg(r: SchedBenchResult): string {
  const PW = 300, PH = 220, L = 50, B = 36, T = 28, R = 14, legendH = 20 + 16 * Math.ceil(r.configs.length / 3);
  const W = PW * 2, H = PH * 2 + legendH + 24;
  const ks = r.overcommit, kMax = Math.max(...ks);
  const panel = (mode: LockMode, ox: number, oy: number) => {
    // Each mode on its own scale: a blocking workload can gain from overcommit (idle host CPUs of
    // the 1:1 run get used) while spinning loses, and one scale would flatten the losses.
    const ratios = r.runs.map((x) => x.modes[mode]?.ratio ?? null).filter((v): v is number => v !== null);
    const yMax = Math.max(1.2, ...ratios) * 1.08;
    const step = [0.25, 0.5, 1, 2, 5, 10].find((st) => yMax / st <= 6) ?? 20;
    const px = (k: number) => ox + L + ((k - 1) / Math.max(1, kMax - 1)) * (PW - L - R);
    const py = (v: number) => oy + PH - B - (v / yMax) * (PH - B - T);
    const levels = Array.from({ length: Math.floor(yMax / step) + 1 }, (_, i) => i * step);
    if (!levels.includes(1)) levels.push(1);
    const grid = levels.map((v) =>
      `<line x1="${ox + L}" y1="${py(v).toFixed(1)}" x2="${ox + PW - R}" y2="${py(v).toFixed(1)}" stroke="${v === 1 ? '#999' : '#eee'}"${v === 1 ? ' stroke-dasharray="4 3"' : ''}/>`
      + `<text x="${ox + L - 6}" y="${(py(v) + 4).toFixed(1)}" font-size="10" text-anchor="end">${v.toFixed(2)}</text>`).join('');
    const ticks = ks.map((k) => `<text x="${px(k).toFixed(1)}" y="${oy + PH - B + 14}" font-size="10" text-anchor="middle">${k}:1</text>`).join('');
    const lines = r.configs.map((c, ci) => {
      const pts = ks.map((k) => ({ k, v: r.runs.find((x) => x.config === c.name && x.overcommit === k)?.modes[mode]?.ratio ?? null }))
        .filter((p): p is { k: number; v: number } => p.v !== null).map((p) => [px(p.k).toFixed(1), py(p.v).toFixed(1)]);
      const color = COLORS[ci % COLORS.length];
      return pts.length ? `<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.map((p) => p.join(',')).join(' ')}"/>`
        + pts.map(([x, y]) => `<circle cx="${x}" cy="${y}" r="3" fill="${color}"/>`).join('') : '';
    }).join('');
    return `<text x="${ox + PW / 2}" y="${oy + 16}" font-size="12" text-anchor="middle" font-weight="bold">${mode}</text>
<line x1="${ox + L}" y1="${oy + PH - B}" x2="${ox + PW - R}" y2="${oy + PH - B}" stroke="black"/><line x1="${ox + L}" y1="${oy + T}" x2="${ox + L}" y2="${oy + PH - B}" stroke="black"/>
${grid}${ticks}${lines}
<text x="${ox + PW / 2}" y="${oy + PH - 6}" font-size="10" text-anchor="middle">vCPUs : host CPUs</text>`;
  };
  const legend = r.configs.map((c, ci) => {
    const x = 20 + (ci % 3) * 190, y = PH * 2 + 40 + Math.floor(ci / 3) * 16;
    const color = COLORS[ci % COLORS.length];
    return `<line x1="${x}" y1="${y - 4}" x2="${x + 18}" y2="${y - 4}" stroke="${color}" stroke-width="2"/><text x="${x + 24}" y="${y}" font-size="11">${c.name}</text>`;
  }).join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="${W / 2}" y="16" font-size="13" text-anchor="middle">Aggregate ops/s over the 1:1 run (${r.vcpus_per_guest}-vCPU guests on ${r.host_cpus} host CPUs, ${r.seconds_per_mode} s per mode)</text>
<g transform="translate(0,20)">
${panel('spin', 0, 0)}${panel('mutex', PW, 0)}${panel('fork', 0, PH)}${panel('pipe', PW, PH)}
</g>
${legend}
</svg>
`;
}
