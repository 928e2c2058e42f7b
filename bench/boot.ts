// `hvlab bench boot`: instructions and wall time from reset to the bundled guest's shell prompt, and
// QEMU TCG booting the same kernel and initramfs in the same run (when qemu-system-x86_64 is
// installed), with the ratio. QEMU's time includes its firmware (SeaBIOS); hvlab boots directly.
import { spawn, spawnSync } from 'node:child_process';
import { prepare, BUNDLED_KERNEL, BUNDLED_INITRD, DEFAULT_CMDLINE, SHELL_PROMPT } from '../emu/cli/boot.ts';

export interface BootBenchResult {
  instructions: number;
  seconds: number;
  /** Virtual seconds the guest saw (instructions at 1 ns each plus time skipped while halted). */
  qemu_seconds: number | null;
  ratio: number | null;
}

/** Boot hvlab to the shell prompt; returns instructions and wall seconds. */
export function hvlabToPrompt(memoryMiB = 256): { instructions: number; seconds: number } {
  let text = '';
  let seen = false;
  const t0 = process.hrtime.bigint();
  const m = prepare({ memory: memoryMiB }, (b) => {
    if (seen) return;
    text = (text + String.fromCharCode(b)).slice(-64);
    if (text.includes(SHELL_PROMPT)) { seen = true; m.stop(); }
  });
  for (let i = 0; i < 200 && !seen; i++) {
    const r = m.run(50_000_000);
    if (!seen && r.reason !== 'instruction-limit' && r.reason !== 'idle') throw new Error(`hvlab bench boot: the guest stopped before its prompt: ${r.message}`);
  }
  if (!seen) throw new Error('hvlab bench boot: no shell prompt after 10 G instructions');
  return { instructions: Number(m.instructions), seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
}

/** Boot QEMU TCG to the same prompt; null when QEMU is not installed. */
export function qemuToPrompt(memoryMiB = 256, timeoutSeconds = 300): Promise<number | null> {
  if (spawnSync('qemu-system-x86_64', ['--version']).status !== 0) return Promise.resolve(null);
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const q = spawn('qemu-system-x86_64', ['-accel', 'tcg', '-m', String(memoryMiB), '-nographic', '-no-reboot', '-nodefaults',
      '-serial', 'stdio', '-kernel', BUNDLED_KERNEL, '-initrd', BUNDLED_INITRD, '-append', DEFAULT_CMDLINE]);
    let text = '';
    const timer = setTimeout(() => { q.kill('SIGKILL'); reject(new Error('QEMU did not reach the prompt')); }, timeoutSeconds * 1000);
    q.stdout.on('data', (d: Buffer) => {
      text = (text + d.toString('latin1')).slice(-256);
      if (text.includes(SHELL_PROMPT)) {
        const s = Number(process.hrtime.bigint() - t0) / 1e9;
        clearTimeout(timer);
        q.kill('SIGKILL');
        resolve(s);
      }
    });
    q.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

export async function benchBoot(opts: { qemu?: boolean } = {}): Promise<BootBenchResult> {
  const ours = hvlabToPrompt();
  const qemu = opts.qemu === false ? null : await qemuToPrompt();
  return { instructions: ours.instructions, seconds: ours.seconds, qemu_seconds: qemu, ratio: qemu ? ours.seconds / qemu : null };
}
