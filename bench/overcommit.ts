// `hvlab bench overcommit`: guests whose memory adds up to more than the host has. Three bundled
// guests of 96 MiB each run memtouch (guest-images/bench/memtouch.c: fill a 48 MiB buffer and read
// it back, twice, a quarter of its pages zero, every word checked) on one host whose pool holds
// all of them (the reference), 1/1.5 and 1/2 of their memory (1.5x and 2x overcommit, through host
// swap), with naive reclaim at 2x (every reclaimed page written, as a swapper that knows nothing of
// page contents), and at 2x with guest g0 protected by memory.low (container priority).
//
// Per guest: memtouch's throughput (MiB/s of its own clock), its ratio to the reference run in the
// same bench run, major faults, bytes swapped out and in, zero and clean pages dropped; per run the
// swap bytes written, against the naive run's. Every checksum the guests compute must be right
// (ok=1), or the run fails.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createLogUpdate } from 'log-update';
import { withBenchMeta } from './meta.ts';
import { runHostChild } from './host-child.ts';
import { BENCH_INITRD, buildBenchInitramfs } from './sched.ts';
import type { HostReport } from '../emu/cli/host.ts';

export const GUESTS = 3;
export const GUEST_MIB = 96;
export const WORK_MIB = 48;
const PASSES = 2;
const ZERO_PERCENT = 25;

export interface OvercommitCase {
  name: string;
  /** Guest memory over pool (1: everything fits). */
  overcommit: number;
  reclaim: 'smart' | 'naive';
  /** memory.low of g0 in MiB (0: none). */
  protectMiB: number;
}

export const CASES: OvercommitCase[] = [
  { name: 'reference', overcommit: 1, reclaim: 'smart', protectMiB: 0 },
  { name: '1.5x', overcommit: 1.5, reclaim: 'smart', protectMiB: 0 },
  { name: '2x', overcommit: 2, reclaim: 'smart', protectMiB: 0 },
  { name: '2x naive', overcommit: 2, reclaim: 'naive', protectMiB: 0 },
  { name: '2x g0 protected', overcommit: 2, reclaim: 'smart', protectMiB: 80 },
];

export interface GuestFigures {
  name: string;
  ok: boolean;
  mib_per_s: number;
  /** Over the same guest in the reference run. */
  ratio: number | null;
  pgmajfault: number;
  swap_out_bytes: number;
  swap_in_bytes: number;
  zero_dropped: number;
  clean_dropped: number;
  peak_rss_bytes: number;
}

export interface OvercommitRun {
  case: OvercommitCase;
  pool_bytes: number;
  status: 'ok' | 'failed';
  message: string | null;
  wall_seconds: number;
  virtual_seconds: number;
  swap_written_bytes: number;
  swap_read_bytes: number;
  guests: GuestFigures[];
}

export interface OvercommitResult {
  guests: number;
  guest_memory_bytes: number;
  workload: string;
  runs: OvercommitRun[];
  /** Swap bytes written at 2x over the naive run's (the talk's "don't swap out zeroed pages"). */
  written_vs_naive: number | null;
  /** At 2x with g0 protected: g0's throughput ratio and the others' mean ratio (vs the reference). */
  priority: { protected_ratio: number; others_ratio: number } | null;
}

const MEMTOUCH = /^memtouch mib=(\d+) passes=(\d+) zero_percent=(\d+) ok=(\d) bad_words=(\d+) checksum=(0x[0-9a-f]+) seconds=([\d.]+) mib_per_s=([\d.]+)/m;

/** The pool of a case: the guests' memory over the overcommit, in whole 2 MiB blocks. */
export function poolMiB(c: OvercommitCase): number {
  const total = GUESTS * GUEST_MIB;
  return c.overcommit === 1 ? total + 64 : Math.floor(total / c.overcommit / 2) * 2;
}

async function runCase(c: OvercommitCase, onPoll: (done: number) => void): Promise<OvercommitRun> {
  const names = Array.from({ length: GUESTS }, (_, i) => `g${i}`);
  const script = `memtouch ${WORK_MIB} ${PASSES} ${ZERO_PERCENT}; poweroff -f`;
  const config = {
    host: { memory: poolMiB(c), mmu: 'ept', reclaim: c.reclaim, swap: '' },
    guests: names.map((name, i) => ({ name, initrd: BENCH_INITRD, memory: GUEST_MIB, smp: 1, script, ...(i === 0 && c.protectMiB ? { memoryLow: c.protectMiB } : {}) })),
  };
  const base: OvercommitRun = { case: c, pool_bytes: poolMiB(c) * 2 ** 20, status: 'failed', message: null, wall_seconds: 0, virtual_seconds: 0, swap_written_bytes: 0, swap_read_bytes: 0, guests: [] };
  const run = await runHostChild(config, [], {
    timeoutSeconds: 1800,
    prepare: (dir) => { config.host.swap = `${join(dir, 'swap')},size=${GUESTS * GUEST_MIB}`; },
    onPoll: (texts) => onPoll(texts.filter((t) => MEMTOUCH.test(t)).length),
  });
  base.wall_seconds = run.wallSeconds;
  const r: HostReport | null = run.report;
  if (!r) return { ...base, message: `hvlab host exited with ${run.code} and no report: ${(run.stderr || run.stdout).trim().split('\n').slice(-3).join(' / ')}` };
  base.virtual_seconds = r.host.virtual_seconds;
  base.swap_written_bytes = r.host.swap?.written_bytes ?? 0;
  base.swap_read_bytes = r.host.swap?.read_bytes ?? 0;
  const problems: string[] = [...r.host.invariant_violations];
  r.guests.forEach((g, i) => {
    const m = MEMTOUCH.exec(run.consoles[i]);
    if (g.exit !== 0) problems.push(`${g.name}: ${g.reason} (${g.message.split('\n')[0]})`);
    if (!m) { problems.push(`${g.name}: no memtouch line`); return; }
    if (m[4] !== '1') problems.push(`${g.name}: memtouch read back ${m[5]} wrong words`);
    const st = g.memory.stat;
    base.guests.push({
      name: g.name, ok: m[4] === '1', mib_per_s: Number(m[8]), ratio: null, pgmajfault: st.pgmajfault,
      swap_out_bytes: st.pswpout * 4096, swap_in_bytes: st.pswpin * 4096, zero_dropped: st.zero_dropped, clean_dropped: st.clean_dropped,
      peak_rss_bytes: g.peak_rss_bytes,
    });
  });
  return { ...base, status: problems.length ? 'failed' : 'ok', message: problems.length ? problems.join('; ') : null };
}

export async function benchOvercommit(opts: { json?: string | null; svg?: string | null; progress?: boolean; cases?: string[] } = {}): Promise<OvercommitResult> {
  buildBenchInitramfs();
  const cases = opts.cases ? CASES.filter((c) => c.name === 'reference' || opts.cases!.includes(c.name)) : CASES;
  const live = opts.progress && process.stderr.isTTY && (process.stderr.rows ?? 0) > 0 ? createLogUpdate(process.stderr) : null;
  const t0 = Date.now();
  const show = (line: string, final = false) => {
    const text = `bench overcommit ${line}  (${((Date.now() - t0) / 1000).toFixed(0)} s)`;
    if (live) live(text); else if (opts.progress && final) process.stderr.write(`${text}\n`);
  };
  const runs: OvercommitRun[] = [];
  for (const [k, c] of cases.entries()) {
    const label = `[${k + 1}/${cases.length}] ${c.name} (pool ${poolMiB(c)} MiB for ${GUESTS} x ${GUEST_MIB} MiB)`;
    show(label, true);
    const run = await runCase(c, (done) => show(`${label}: ${done}/${GUESTS} guests done`));
    runs.push(run);
    show(`${label}: ${run.status}${run.message ? ` (${run.message})` : ` in ${run.wall_seconds.toFixed(0)} s`}`, true);
  }
  live?.done();
  const ref = runs.find((r) => r.case.name === 'reference' && r.status === 'ok');
  for (const r of runs) for (const g of r.guests) {
    const base = ref?.guests.find((x) => x.name === g.name);
    if (base && base.mib_per_s > 0) g.ratio = g.mib_per_s / base.mib_per_s;
  }
  const at = (name: string) => runs.find((r) => r.case.name === name && r.status === 'ok');
  const smart = at('2x'), naive = at('2x naive'), prot = at('2x g0 protected');
  const result: OvercommitResult = {
    guests: GUESTS, guest_memory_bytes: GUEST_MIB * 2 ** 20, workload: `memtouch ${WORK_MIB} MiB x ${PASSES} passes, ${ZERO_PERCENT}% zero pages`,
    runs,
    written_vs_naive: smart && naive && naive.swap_written_bytes > 0 ? smart.swap_written_bytes / naive.swap_written_bytes : null,
    priority: prot && prot.guests.every((g) => g.ratio !== null) ? {
      protected_ratio: prot.guests[0].ratio!,
      others_ratio: prot.guests.slice(1).reduce((s, g) => s + g.ratio!, 0) / (prot.guests.length - 1),
    } : null,
  };
  const write = (file: string, text: string) => { mkdirSync(dirname(file), { recursive: true }); writeFileSync(file, text); };
  if (opts.json) write(opts.json, `${JSON.stringify(withBenchMeta(result), null, 2)}\n`);
  if (opts.svg) write(opts.svg, overcommitSvg(result));
  return result;
}

export function formatOvercommit(r: OvercommitResult): string[] {
  const head = ['case', 'pool MiB', 'guest', 'MiB/s', 'ratio', 'majflt', 'swap out MiB', 'swap in MiB', 'zero pages', 'clean pages'];
  const rows: string[][] = [];
  for (const run of r.runs) {
    if (run.status !== 'ok') { rows.push([run.case.name, String(run.pool_bytes >> 20), `failed: ${run.message}`]); continue; }
    for (const g of run.guests) {
      rows.push([run.case.name, String(run.pool_bytes >> 20), g.name, g.mib_per_s.toFixed(1), g.ratio?.toFixed(2) ?? '-', String(g.pgmajfault),
        (g.swap_out_bytes / 2 ** 20).toFixed(1), (g.swap_in_bytes / 2 ** 20).toFixed(1), String(g.zero_dropped), String(g.clean_dropped)]);
    }
  }
  const w = head.map((h, i) => Math.max(h.length, ...rows.filter((x) => x.length === head.length).map((x) => x[i].length)));
  const fmt = (x: string[]) => x.length === head.length ? x.map((v, i) => (i < 3 ? v.padEnd(w[i]) : v.padStart(w[i]))).join('  ') : `${x[0].padEnd(w[0])}  ${x.slice(1).join('  ')}`;
  const out = [fmt(head), ...rows.map(fmt)];
  for (const run of r.runs) if (run.status === 'ok') out.push(`${run.case.name}: swap written ${(run.swap_written_bytes / 2 ** 20).toFixed(1)} MiB, read ${(run.swap_read_bytes / 2 ** 20).toFixed(1)} MiB`);
  if (r.written_vs_naive !== null) out.push(`swap bytes written at 2x: ${(r.written_vs_naive * 100).toFixed(1)}% of what naive reclaim writes`);
  if (r.priority) out.push(`memory.low: the protected guest keeps ${(r.priority.protected_ratio * 100).toFixed(0)}% of its reference throughput, the others ${(r.priority.others_ratio * 100).toFixed(0)}%`);
  return out;
}

/** Throughput ratio per guest and case (bars), hand-written SVG as the other benches draw. */
export function overcommitSvg(r: OvercommitResult): string {
  const runs = r.runs.filter((x) => x.status === 'ok');
  const W = 640, H = 300, L = 50, B = 60, T = 30, barW = 16;
  const groupW = (W - L - 20) / Math.max(1, runs.length);
  const yMax = Math.max(1.1, ...runs.flatMap((x) => x.guests.map((g) => g.ratio ?? 0)));
  const py = (v: number) => H - B - (v / yMax) * (H - B - T);
  const colors = ['#c0392b', '#2c3e50', '#27ae60'];
  const bars = runs.map((run, k) => run.guests.map((g, i) => {
    const x = L + k * groupW + groupW / 2 - (run.guests.length * barW) / 2 + i * barW;
    const v = g.ratio ?? 0;
    return `<rect x="${x.toFixed(1)}" y="${py(v).toFixed(1)}" width="${barW - 2}" height="${(H - B - py(v)).toFixed(1)}" fill="${colors[i % colors.length]}"/>`;
  }).join('') + `<text x="${(L + k * groupW + groupW / 2).toFixed(1)}" y="${H - B + 16}" font-size="11" text-anchor="middle">${run.case.name}</text>`).join('');
  const grid = [0, 0.25, 0.5, 0.75, 1].filter((v) => v <= yMax).map((v) => `<line x1="${L}" y1="${py(v).toFixed(1)}" x2="${W - 20}" y2="${py(v).toFixed(1)}" stroke="${v === 1 ? '#999' : '#eee'}"/><text x="${L - 6}" y="${(py(v) + 4).toFixed(1)}" font-size="10" text-anchor="end">${v.toFixed(2)}</text>`).join('');
  const legend = (runs[0]?.guests ?? []).map((g, i) => `<rect x="${L + i * 70}" y="${H - 24}" width="10" height="10" fill="${colors[i % colors.length]}"/><text x="${L + i * 70 + 14}" y="${H - 15}" font-size="11">${g.name}</text>`).join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="${W / 2}" y="16" font-size="13" text-anchor="middle">memtouch throughput over the reference run (${r.guests} x ${r.guest_memory_bytes >> 20} MiB guests)</text>
${grid}${bars}${legend}
</svg>
`;
}
