// `hvlab boot` as a first-time user runs it: input piped in reaches the guest, the guest's clock
// starts at the host's date (or a fixed one, for repeatable runs), and its idle time keeps pace
// with the wall clock when paced (and runs ahead of it when not).
import { describe, expect, it } from 'vitest';
import { runCli } from './run-cli.ts';

/** The guest's `U <uptime> <idle>` lines, with the host time each arrived. */
function uptimeWatcher() {
  const seen: Array<{ uptime: number; hostMs: number }> = [];
  let pending = '';
  return {
    seen,
    onStdout: (chunk: string) => {
      pending += chunk;
      const parts = pending.split('\n');
      pending = parts.pop()!;
      for (const line of parts) {
        const m = /^U (\d+\.\d\d) \d+\.\d\d\r?$/.exec(line);
        if (m) seen.push({ uptime: Number(m[1]), hostMs: performance.now() });
      }
    },
  };
}

describe('hvlab boot with piped standard input', () => {
  it('types the pipe into the guest once its serial driver listens, and ends at poweroff', async () => {
    const r = await runCli(['boot'], { input: 'echo hi-from-the-pipe\npoweroff -f\n', timeoutMs: 240_000 });
    expect(r.signal, `the guest never powered off; last output:\n${r.stdout.slice(-800)}`).toBeNull();
    expect(r.status).toBe(0);
    // The shell's output line, not only its echo of the command.
    expect(r.stdout).toMatch(/^hi-from-the-pipe\r?$/m);
  });
});

describe('the guest clock', () => {
  it('starts at the host\'s date and time by default', async () => {
    const before = Date.now() / 1000;
    const r = await runCli(['boot', '--script', 'date +%s; poweroff -f', '--timeout', '240']);
    expect(r.status).toBe(0);
    const guest = Number(/^(\d{9,})\r?$/m.exec(r.stdout)?.[1]);
    expect(guest).toBeGreaterThanOrEqual(Math.floor(before));
    expect(guest).toBeLessThan(Date.now() / 1000 + 5);
  });

  it('--rtc DATE starts it at a fixed date, and two such runs print the same', async () => {
    const args = ['boot', '--rtc', '2030-05-01T12:00:00', '--script', 'date -u; poweroff -f', '--timeout', '240'];
    const [a, b] = await Promise.all([runCli(args), runCli(args)]);
    const date = (out: string) => /^.*2030\r?$/m.exec(out)?.[0];
    expect(date(a.stdout)).toMatch(/^Wed May {2}1 12:00:0\d UTC 2030/);
    expect(date(b.stdout)).toBe(date(a.stdout));
  });
});

describe('guest RAM above 2 GiB (it used to overflow 32-bit arithmetic into a negative size)', () => {
  it('-m 3808, the most a one-guest host holds: the guest sees it all', async () => {
    const r = await runCli(['boot', '-m', '3808', '--script', 'free -m; poweroff -f', '--timeout', '300']);
    expect(r.status).toBe(0);
    const totalMiB = Number(/^Mem:\s+(\d+)/m.exec(r.stdout)?.[1]);
    expect(totalMiB).toBeGreaterThan(3600);
  });
});

describe('idle guest time against wall time', () => {
  const SLEEP_S = 6;
  // Shell builtins only: no process starts between the two readings, so the guest is idle for
  // all of the interval but a few thousand instructions (read -t times out: nothing more is typed).
  const script = `read a < /proc/uptime; echo "U $a"; read -t ${SLEEP_S} x; read b < /proc/uptime; echo "U $b"; poweroff -f`;

  /** Boot with `pace`, and the guest's and the wall's seconds between the two uptime readings. */
  async function idleInterval(pace: '--pace' | '--no-pace') {
    const w = uptimeWatcher();
    const r = await runCli(['boot', pace, '--script', script, '--timeout', '240'], { onStdout: w.onStdout });
    expect(r.status).toBe(0);
    expect(w.seen).toHaveLength(2);
    const guestS = w.seen[1].uptime - w.seen[0].uptime, wallS = (w.seen[1].hostMs - w.seen[0].hostMs) / 1000;
    expect(guestS).toBeGreaterThanOrEqual(SLEEP_S);
    return { guestS, wallS };
  }

  it('--pace: an idle guest\'s time keeps pace with wall time within 5%', async () => {
    const { guestS, wallS } = await idleInterval('--pace');
    expect(Math.abs(wallS / guestS - 1), `guest ${guestS} s against wall ${wallS.toFixed(2)} s`).toBeLessThan(0.05);
  });

  it('--no-pace: an idle guest runs ahead of wall time (it used to run 2.5 times slower)', async () => {
    const { guestS, wallS } = await idleInterval('--no-pace');
    expect(wallS).toBeLessThan(guestS);
  });
});
