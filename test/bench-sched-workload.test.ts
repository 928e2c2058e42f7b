// The guest side of `hvlab bench sched`: guest-images/bench/build.sh builds the bench initramfs, and
// its /bin/locks runs in the bundled guest on 2 vCPUs and prints the one line the bench parses. One
// short boot (the mutex mode for 0.2 guest seconds): the bench's own runs are too long for the suite.
import { describe, it, expect } from 'vitest';
import { existsSync, statSync } from 'node:fs';
import { boot, BUNDLED_INITRD } from '../emu/cli/boot.ts';
import { buildBenchInitramfs, parseLocksLines, guestScript, parseProcStatSteal } from '../bench/sched.ts';
import { needGcc } from './need-gcc.ts';

describe('bench sched workload (guest-images/bench/locks.c)', () => {
  it('builds the bench initramfs, and locks runs in a 2-vCPU guest with ops > 0', async (ctx) => {
    needGcc(ctx);
    const initrd = buildBenchInitramfs();
    expect(existsSync('build/bench-initramfs/bin/locks')).toBe(true);
    // The bundled archive comes first, unchanged, with the locks archive after it.
    expect(statSync(initrd).size).toBeGreaterThan(statSync(BUNDLED_INITRD).size);

    let out = '', err = '';
    const status = await boot({ memory: 128, smp: 2, initrd, script: 'locks mutex 2 0.2; poweroff -f', timeout: 120 },
      { out: (b) => { out += Buffer.from(b).toString('latin1'); }, err: (s) => { err += s; } });
    expect(err).toBe('');
    expect(status).toBe(0);
    const lines = parseLocksLines(out);
    expect(lines, out.slice(-2000)).toHaveLength(1);
    const [l] = lines;
    expect(l.mode).toBe('mutex');
    expect(l.threads).toBe(2);
    expect(l.ops).toBeGreaterThan(0);
    // Both pinned threads (one per vCPU) got the lock.
    expect(l.per_thread).toHaveLength(2);
    expect(l.per_thread.every((n) => n > 0)).toBe(true);
    expect(l.per_thread[0] + l.per_thread[1]).toBe(l.ops);
    // Its clock is the guest's: 0.2 s of it, measured from the start barrier to the stop flag.
    expect(l.seconds).toBeGreaterThanOrEqual(0.2);
    expect(l.seconds).toBeLessThan(0.3);
    // (seconds is printed to the millisecond, so the quotient of the printed figures is within 1%.)
    expect(Math.abs(l.ops_per_s - l.ops / l.seconds) / l.ops_per_s).toBeLessThan(0.01);
  }, 120_000);

  it('the bench script runs every mode on one thread per vCPU, dumps /proc/stat and powers off', () => {
    expect(guestScript(0.5)).toBe('locks spin 2 0.5; locks mutex 2 0.5; locks fork 2 0.5; locks pipe 2 0.5; cat /proc/stat; poweroff -f');
    expect(guestScript(0.1, 4)).toMatch(/^locks spin 4 0\.1; /);
  });

  it('reads the steal column of /proc/stat (the last dump, USER_HZ ticks as ns)', () => {
    const dump = (a: number, b: number) => `cpu  1 2 3 4 5 6 7 ${a + b} 0 0\ncpu0 1 2 3 4 5 6 7 ${a} 0 0\ncpu1 1 2 3 4 5 6 7 ${b} 0 0\nintr 5\n`;
    expect(parseProcStatSteal(`~ # cat /proc/stat\r\n${dump(1, 2)}${dump(30, 12)}`)).toBe(42 * 10_000_000);
    expect(parseProcStatSteal('no dump here')).toBeNull();
  });
});
