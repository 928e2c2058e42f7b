// `hvlab host` with the bundled Linux guest: several guests boot on one frame pool with RAM
// allocated on first touch, under --mmu ept and shadow and with SMP guests sharing host CPUs; a guest
// that outgrows the pool is stopped with one clear line while the others finish; --config is
// validated with clear errors.
import { describe, expect, it } from 'vitest';
import { runHost, parseHostConfig, HostConfigError, type HostRunOptions } from '../../emu/cli/host.ts';
import { buildBenchInitramfs } from '../../bench/sched.ts';
import { needGcc } from '../need-gcc.ts';

const MiB = 1 << 20;

async function host(opts: Omit<HostRunOptions, 'json' | 'status'>) {
  let out = '', err = '';
  const r = await runHost({ ...opts, status: false }, { out: (s) => { out += s; }, err: (s) => { err += s; }, isTty: false });
  return { ...r, out, err };
}
const copies = (n: number, memory: number, smp: number, script: string) =>
  Array.from({ length: n }, (_, i) => ({ name: `g${i}`, memory, smp, script }));

describe('hvlab host: many bundled guests on one host', () => {
  it.each([
    ['ept', 2, 1, undefined],
    ['shadow', 2, 1, undefined],
    ['ept', 2, 2, 2],
  ] as const)('--mmu %s, %i guests with %i vCPUs each (host CPUs: %s)', async (mmu, n, smp, hostCpus) => {
    const r = await host({ guests: copies(n, 256, smp, 'uname -r; poweroff -f'), hostMemory: 512, hostCpus, mmu, timeout: 300 });
    expect(r.err).toBe('');
    expect(r.status).toBe(0);
    const rep = r.report!;
    expect(rep.host.invariant_violations).toEqual([]);
    expect(rep.host.peak_used_bytes).toBeLessThanOrEqual(512 * MiB);
    expect(rep.host.used_bytes).toBe(0); // every guest ended and gave its frames back
    for (const g of rep.guests) {
      expect(r.out).toMatch(new RegExp(`^${g.name}\\| 6\\.1\\.\\d+`, 'm'));
      expect(g.exit).toBe(0);
      expect(g.rss_bytes).toBeGreaterThan(8 * MiB);
      expect(g.rss_bytes).toBeLessThan(128 * MiB); // RAM on first touch: well under the guest's 256 MiB
      expect(g.ept_violations).toBeGreaterThan(1000);
      expect(g.vcpus.length).toBe(smp);
    }
    // Identical guests on a deterministic host: the same instruction count.
    expect(new Set(rep.guests.map((g) => g.instructions)).size).toBe(1);
  }, 300_000);

  it('a guest touching more than the pool holds is stopped with one line; the other finishes', async (ctx) => {
    needGcc(ctx);
    const initrd = buildBenchInitramfs();
    const r = await host({
      guests: [
        // 96 MiB written with data (no zero pages the host could drop, no swap): more than the pool
        // has left.
        { name: 'hog', memory: 256, smp: 1, initrd, script: 'memtouch 96 1; poweroff -f' },
        { name: 'ok', memory: 256, smp: 1, script: 'uname -r; poweroff -f' },
      ],
      hostMemory: 112, mmu: 'ept', timeout: 300,
    });
    const [hog, ok] = r.report!.guests;
    expect(hog.reason).toBe('out-of-memory');
    expect(r.out).toMatch(/^hvlab host: guest hog: out of host memory \(pool 112 MiB, hog holds \d+ MiB\)$/m);
    expect(ok.exit).toBe(0);
    expect(r.out).toMatch(/^ok\| 6\.1\.\d+/m);
    expect(r.report!.host.invariant_violations).toEqual([]);
    expect(r.status).toBe(1);
  }, 300_000);
});

describe('hvlab host --config', () => {
  const parse = (o: unknown) => parseHostConfig(JSON.stringify(o), 'guests.json', { memory: 128, smp: 1 });
  it('takes named guests with defaults and the host section', () => {
    const c = parse({ host: { memory: 256, cpus: 2, mmu: 'shadow' }, guests: [{ name: 'web', memory: 64 }, { smp: 2, script: 'ls' }] });
    expect(c.host).toEqual({ memory: 256, cpus: 2, mmu: 'shadow' });
    expect(c.guests.map((g) => [g.name, g.memory, g.smp, g.script])).toEqual([['web', 64, 1, undefined], ['g1', 128, 2, 'ls']]);
  });
  it.each([
    [{ guests: [] }, /guests: must be a non-empty array/],
    [{ guests: [{ name: 'a' }, { name: 'a' }] }, /guests\[1\]\.name: "a" is used twice/],
    [{ guests: [{ memry: 5 }] }, /guests\[0\]: unknown key "memry"/],
    [{ guests: [{ smp: 9 }] }, /guests\[0\]\.smp: must be an integer from 1 to 4/],
    [{ host: { mmu: 'direct' }, guests: [{}] }, /host\.mmu: must be "ept" or "shadow"/],
  ])('refuses %j', (o, re) => {
    expect(() => parse(o)).toThrow(HostConfigError);
    expect(() => parse(o)).toThrow(re);
  });
  it('refuses what is not JSON', () => {
    expect(() => parseHostConfig('{', 'x.json', { memory: 1, smp: 1 })).toThrow(/^x\.json: not JSON/);
  });
});

describe('hvlab host on the command line', () => {
  it('a bad --config is one line on stderr and exit status 2', async () => {
    const { execFileSync } = await import('node:child_process');
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const file = join(mkdtempSync(join(tmpdir(), 'hvlab-host-')), 'bad.json');
    writeFileSync(file, JSON.stringify({ guests: [{ name: 'a', smp: 7 }] }));
    let status = 0, stderr = '';
    try {
      execFileSync(process.execPath, [new URL('../../bin/hvlab.mjs', import.meta.url).pathname, 'host', '--config', file], { stdio: 'pipe' });
    } catch (e) { status = (e as { status: number }).status; stderr = String((e as { stderr: Buffer }).stderr); }
    expect(status).toBe(2);
    expect(stderr.trim()).toBe(`hvlab host: ${file}: guests[0].smp: must be an integer from 1 to 4 (got 7)`);
  }, 60_000);
});
