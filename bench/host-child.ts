// One `hvlab host --config FILE --json --console-dir DIR` child process, as a bench runs it (the same
// path a user takes; one WebAssembly host per run): the config written to a scratch folder, each
// guest's console read back (while it runs, for progress, and at the end), the JSON report parsed.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HostReport } from '../emu/cli/host.ts';

export const HVLAB = fileURLToPath(new URL('../bin/hvlab.mjs', import.meta.url));

export interface HostChildResult {
  code: number;
  /** The last line of stdout as a report, or null (the host refused its command line, or died). */
  report: HostReport | null;
  stdout: string;
  stderr: string;
  /** Each guest's console text, in config order. */
  consoles: string[];
  wallSeconds: number;
}

/** Run a host of `config` (the --config JSON; `guests[].name` names the consoles) with extra `args`.
 *  `dir` (a scratch folder, removed afterwards) is passed to `prepare` first, for files the config
 *  names (a swap file). `onPoll` hears the consoles once a second. */
export async function runHostChild(config: { guests: Array<{ name: string }> } & Record<string, unknown>, args: string[], opts: {
  timeoutSeconds: number;
  prepare?: (dir: string) => void;
  onPoll?: (consoles: string[]) => void;
}): Promise<HostChildResult> {
  const dir = mkdtempSync(join(tmpdir(), 'hvlab-bench-host-'));
  try {
    opts.prepare?.(dir);
    const consoles = join(dir, 'consoles');
    const names = config.guests.map((g) => g.name);
    writeFileSync(join(dir, 'host.json'), JSON.stringify(config, null, 2));
    const read = () => names.map((n) => {
      const f = join(consoles, `${n}.log`);
      return existsSync(f) ? readFileSync(f, 'latin1') : '';
    });
    const t0 = process.hrtime.bigint();
    const child = spawn(process.execPath, [HVLAB, 'host', '--config', join(dir, 'host.json'), '--json', '--console-dir', consoles, '--timeout', String(Math.ceil(opts.timeoutSeconds)), ...args],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const poll = opts.onPoll ? setInterval(() => opts.onPoll!(read()), 1000) : null;
    const code = await new Promise<number>((resolve) => { child.on('close', (n) => resolve(n ?? 1)); child.on('error', () => resolve(1)); });
    if (poll) clearInterval(poll);
    const wallSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
    let report: HostReport | null = null;
    try { report = JSON.parse(stdout.trim().split('\n').pop() ?? '') as HostReport; } catch { /* the caller says why */ }
    const texts = read();
    opts.onPoll?.(texts);
    return { code, report, stdout, stderr, consoles: texts, wallSeconds };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
