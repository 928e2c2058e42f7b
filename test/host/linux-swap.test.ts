// The bundled Linux guest under a memory container: memory.max 24 MiB, a workload touching 24 MiB
// twice (guest-images/bench/memtouch.c: every word checked). It finishes through host swap with
// every word right, its frames never above the limit; zero pages are dropped, not written.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runHost } from '../../emu/cli/host.ts';
import { buildBenchInitramfs } from '../../bench/sched.ts';
import { needGcc } from '../need-gcc.ts';

const MiB = 1 << 20;

describe('a Linux guest under memory.max, through host swap', () => {
  it('memory.max 24 MiB, 24 MiB touched twice: every word right, never above the limit', async (ctx) => {
    needGcc(ctx);
    const initrd = buildBenchInitramfs();
    const dir = mkdtempSync(join(tmpdir(), 'hvlab-linux-swap-'));
    try {
      let err = '';
      const r = await runHost({
        guests: [{ name: 'g', initrd, memory: 128, smp: 1, memoryMax: 24, script: 'memtouch 24 2 25; poweroff -f' }],
        hostMemory: 256, mmu: 'ept', timeout: 300, consoleDir: dir, status: false, swap: `${join(dir, 'swap')},size=128`,
      }, { out: () => {}, err: (s) => { err += s; }, isTty: false });
      const log = readFileSync(join(dir, 'g.log'), 'latin1');
      expect(err, log.slice(-1500)).toBe('');
      expect(r.status).toBe(0);
      expect(log).toMatch(/memtouch mib=24 passes=2 zero_percent=25 ok=1 bad_words=0 /);
      const g = r.report!.guests[0];
      expect(g.peak_rss_bytes).toBeLessThanOrEqual(24 * MiB);
      expect(g.memory.max_bytes).toBe(24 * MiB);
      const st = g.memory.stat;
      expect(st.pswpout).toBeGreaterThan(1000); // the workload does not fit beside the guest the limit went out
      expect(st.pgmajfault).toBeGreaterThan(1000);
      expect(st.zero_dropped).toBeGreaterThan(1000); // a quarter of the buffer is zero pages
      expect(st.swapin_wait_ns).toBeGreaterThan(0);
      // A swap-in blocks the vCPU for the device's latency, not for the rest of a scheduling round:
      // its halted time is the swap wait plus what the guest idled (boot, the shell).
      expect(g.vcpus[0].halted_ns).toBeGreaterThanOrEqual(st.swapin_wait_ns);
      expect(g.vcpus[0].halted_ns).toBeLessThan(st.swapin_wait_ns * 1.5 + 0.5e9);
      const swap = r.report!.host.swap!;
      expect(swap.written_bytes).toBe(st.pswpout * 4096);
      expect(swap.read_bytes).toBeLessThanOrEqual(st.pswpin * 4096);
      // io.stat: the host's swap I/O for the guest, which is all of the device's.
      expect(g.io.swap).toEqual({ rbytes: swap.read_bytes, wbytes: swap.written_bytes, rios: swap.read_requests, wios: swap.write_requests });
      expect(r.report!.host.invariant_violations).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 300_000);
});
