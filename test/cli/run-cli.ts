// Runs `hvlab` as a user does: a child process, with its own standard input, output and status.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const HVLAB = fileURLToPath(new URL('../../bin/hvlab.mjs', import.meta.url));
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface CliResult { status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

export interface CliOptions {
  /** Bytes on standard input (a pipe); without it standard input is /dev/null. */
  input?: string;
  /** Kill the child after this long (the result then has signal SIGKILL). */
  timeoutMs?: number;
  /** Called with each chunk of standard output as it arrives (for timing what the guest prints). */
  onStdout?: (chunk: string) => void;
}

export function runCli(args: readonly string[], o: CliOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [HVLAB, ...args], { cwd: REPO_ROOT, stdio: [o.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (c: string) => { stdout += c; o.onStdout?.(c); });
    child.stderr!.setEncoding('utf8').on('data', (c: string) => { stderr += c; });
    const timer = o.timeoutMs === undefined ? null : setTimeout(() => child.kill('SIGKILL'), o.timeoutMs);
    child.on('error', reject);
    child.on('close', (status, signal) => { if (timer) clearTimeout(timer); resolve({ status, signal, stdout, stderr }); });
    if (o.input !== undefined) child.stdin!.end(o.input);
  });
}

/** The lines of a stream's text (no empty last line). */
export const lines = (text: string): string[] => text.split('\n').filter((l, i, all) => l !== '' || i < all.length - 1);
