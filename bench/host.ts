// `hvlab bench host`: one host, many guests, against QEMU TCG running the same guests as separate
// processes in the same run. For 1, 2, 4 and 8 bundled guests (256 MiB each), hvlab boots them all
// on one host (`hvlab host`, RAM on first touch) and each powers off at its shell prompt; QEMU boots
// as many processes in parallel, each typed `poweroff -f` at its prompt. Reported: total wall time,
// total resident memory (the hvlab process; the sum of the QEMU processes), and the figure hosts are
// sized by — host memory per idle guest (for hvlab the frames charged to it at its prompt, and the
// process's growth per guest). Medians over --rounds alternating rounds.
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { writeFileSync } from 'node:fs';
import { BUNDLED_KERNEL, BUNDLED_INITRD, DEFAULT_CMDLINE, SHELL_PROMPT } from '../emu/cli/boot.ts';
import type { HostReport } from '../emu/cli/host.ts';

const HVLAB = fileURLToPath(new URL('../bin/hvlab.mjs', import.meta.url));
const GUEST_MIB = 256;

export interface HostBenchRow {
  guests: number;
  hvlab_seconds: number;
  /** Peak resident memory of the hvlab process (one host). */
  hvlab_rss_bytes: number;
  /** Host frames charged to each guest at power-off (its prompt), averaged. */
  hvlab_charged_bytes_per_guest: number;
  qemu_seconds: number | null;
  /** Sum of the QEMU processes' peak resident memory. */
  qemu_rss_bytes: number | null;
  time_ratio: number | null;
  rss_ratio: number | null;
}

export interface HostBenchResult {
  guest_memory_bytes: number;
  mmu: string;
  rounds: number;
  cpu: string;
  rows: HostBenchRow[];
  /** The slope of total RSS over guests (least squares): host memory per added idle guest. */
  hvlab_bytes_per_idle_guest: number;
  qemu_bytes_per_idle_guest: number | null;
}

const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor((s.length - 1) / 2)]; };

/** Peak RSS of a child in bytes, from GNU time's %M (KiB) on its last stderr line. */
function timed(cmd: string, args: string[]): { child: ReturnType<typeof spawn>; rss: Promise<number> } {
  const child = spawn('/usr/bin/time', ['-f', '%M', cmd, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const rss = new Promise<number>((resolve, reject) => {
    child.on('close', () => {
      const kib = Number(err.trim().split('\n').pop());
      if (Number.isFinite(kib)) resolve(kib * 1024); else reject(new Error(`no RSS from /usr/bin/time: ${err.slice(-300)}`));
    });
    child.on('error', reject);
  });
  return { child, rss };
}

async function hvlabRound(guests: number, mmu: string): Promise<{ seconds: number; rss: number; charged: number }> {
  const t0 = process.hrtime.bigint();
  const { child, rss } = timed(process.execPath, [HVLAB, 'host', '--guests', String(guests), '-m', String(GUEST_MIB),
    '--host-memory', String(Math.max(512, guests * 160)), '--mmu', mmu, '--script', 'poweroff -f', '--json', '--timeout', '900']);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  const bytes = await rss;
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const line = out.trim().split('\n').pop() ?? '';
  let r: HostReport;
  try { r = JSON.parse(line) as HostReport; } catch { throw new Error(`hvlab bench host: no report from hvlab host (${out.slice(-300)})`); }
  if (r.guests.some((g) => g.exit !== 0)) throw new Error(`hvlab bench host: a guest failed: ${r.guests.map((g) => g.message).join('; ')}`);
  return { seconds, rss: bytes, charged: r.guests.reduce((n, g) => n + g.charged_bytes, 0) / guests };
}

function qemuAvailable(): boolean { return spawnSync('qemu-system-x86_64', ['--version']).status === 0 && spawnSync('/usr/bin/time', ['-f', '%M', 'true']).status === 0; }

/** One QEMU process per guest, all at once; each powers off at its prompt. */
async function qemuRound(guests: number): Promise<{ seconds: number; rss: number }> {
  const t0 = process.hrtime.bigint();
  const runs = Array.from({ length: guests }, () => {
    const { child, rss } = timed('qemu-system-x86_64', ['-accel', 'tcg', '-m', String(GUEST_MIB), '-nographic', '-no-reboot', '-nodefaults',
      '-serial', 'stdio', '-kernel', BUNDLED_KERNEL, '-initrd', BUNDLED_INITRD, '-append', DEFAULT_CMDLINE]);
    let text = '', typed = false;
    child.stdout!.on('data', (d: Buffer) => {
      text = (text + d.toString('latin1')).slice(-256);
      if (!typed && text.includes(SHELL_PROMPT)) { typed = true; child.stdin!.write('poweroff -f\n'); }
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 600_000);
    return rss.finally(() => clearTimeout(timer));
  });
  const sizes = await Promise.all(runs);
  return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, rss: sizes.reduce((a, b) => a + b, 0) };
}

function slope(xs: number[], ys: number[]): number {
  const n = xs.length, mx = xs.reduce((a, b) => a + b, 0) / n, my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0, den = 0;
  for (let i = 0; i < n; i++) { num += (xs[i] - mx) * (ys[i] - my); den += (xs[i] - mx) ** 2; }
  return den ? num / den : 0;
}

export async function benchHost(opts: { counts?: number[]; rounds?: number; qemu?: boolean; mmu?: string; svg?: string; onRow?: (r: HostBenchRow) => void } = {}): Promise<HostBenchResult> {
  const counts = opts.counts ?? [1, 2, 4, 8];
  const rounds = opts.rounds ?? 1;
  const mmu = opts.mmu ?? 'ept';
  const qemu = opts.qemu !== false && qemuAvailable();
  const rows: HostBenchRow[] = [];
  for (const n of counts) {
    const h: Array<{ seconds: number; rss: number; charged: number }> = [], q: Array<{ seconds: number; rss: number }> = [];
    for (let r = 0; r < rounds; r++) {
      // Alternate which goes first, so drift on a shared machine hits both alike.
      if (r % 2 === 0) { h.push(await hvlabRound(n, mmu)); if (qemu) q.push(await qemuRound(n)); }
      else { if (qemu) q.push(await qemuRound(n)); h.push(await hvlabRound(n, mmu)); }
    }
    const row: HostBenchRow = {
      guests: n, hvlab_seconds: median(h.map((x) => x.seconds)), hvlab_rss_bytes: median(h.map((x) => x.rss)),
      hvlab_charged_bytes_per_guest: median(h.map((x) => x.charged)),
      qemu_seconds: qemu ? median(q.map((x) => x.seconds)) : null, qemu_rss_bytes: qemu ? median(q.map((x) => x.rss)) : null,
      time_ratio: null, rss_ratio: null,
    };
    row.time_ratio = row.qemu_seconds ? row.hvlab_seconds / row.qemu_seconds : null;
    row.rss_ratio = row.qemu_rss_bytes ? row.hvlab_rss_bytes / row.qemu_rss_bytes : null;
    rows.push(row);
    opts.onRow?.(row);
  }
  const cpu = (spawnSync('sh', ['-c', "lscpu | sed -n 's/^Model name: *//p'"]).stdout?.toString().trim()) || 'unknown';
  const result: HostBenchResult = {
    guest_memory_bytes: GUEST_MIB << 20, mmu, rounds, cpu, rows,
    hvlab_bytes_per_idle_guest: rows.length > 1 ? slope(rows.map((r) => r.guests), rows.map((r) => r.hvlab_rss_bytes)) : rows[0].hvlab_charged_bytes_per_guest,
    qemu_bytes_per_idle_guest: qemu && rows.length > 1 ? slope(rows.map((r) => r.guests), rows.map((r) => r.qemu_rss_bytes!)) : null,
  };
  if (opts.svg) writeFileSync(opts.svg, hostSvg(result));
  return result;
}

/** Total resident memory over guests, hvlab against QEMU: a small line plot. */
export function hostSvg(r: HostBenchResult): string {
  const W = 520, H = 320, L = 70, B = 40, T = 30, R = 20;
  const xs = r.rows.map((x) => x.guests);
  const ys = r.rows.flatMap((x) => [x.hvlab_rss_bytes, x.qemu_rss_bytes ?? 0]).map((b) => b / 2 ** 20);
  const xMax = Math.max(...xs), yMax = Math.max(...ys) * 1.1 || 1;
  const px = (g: number) => L + (g / xMax) * (W - L - R), py = (m: number) => H - B - (m / yMax) * (H - B - T);
  const line = (pick: (row: HostBenchRow) => number | null, color: string, label: string, at: number) => {
    const pts = r.rows.filter((row) => pick(row) !== null).map((row) => `${px(row.guests).toFixed(1)},${py(pick(row)! / 2 ** 20).toFixed(1)}`);
    return pts.length ? `<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.join(' ')}"/>`
      + pts.map((p) => `<circle cx="${p.split(',')[0]}" cy="${p.split(',')[1]}" r="3" fill="${color}"/>`).join('')
      + `<text x="${L + 10}" y="${T + at}" fill="${color}" font-size="12">${label}</text>` : '';
  };
  const ticks = xs.map((g) => `<text x="${px(g)}" y="${H - B + 16}" font-size="11" text-anchor="middle">${g}</text>`).join('');
  const yTicks = [0, 0.25, 0.5, 0.75, 1].map((f) => `<text x="${L - 6}" y="${py(f * yMax) + 4}" font-size="11" text-anchor="end">${Math.round(f * yMax)}</text>`).join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="${W / 2}" y="18" font-size="13" text-anchor="middle">Resident memory of N idle ${r.guest_memory_bytes >> 20} MiB guests (${r.cpu})</text>
<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="black"/><line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="black"/>
${ticks}${yTicks}
<text x="${W / 2}" y="${H - 6}" font-size="12" text-anchor="middle">guests</text>
<text x="16" y="${H / 2}" font-size="12" transform="rotate(-90 16 ${H / 2})" text-anchor="middle">MiB resident</text>
${line((x) => x.hvlab_rss_bytes, '#c0392b', 'hvlab: one host process (--mmu ' + r.mmu + ')', 0)}
${line((x) => x.qemu_rss_bytes, '#2c3e50', 'QEMU TCG: one process per guest', 16)}
</svg>
`;
}
