// Every bench JSON says which hvlab and which host produced it ({version, host: {cpu, vendor, node}}),
// so results can be compared later; bench pagewalk holds its memory under 1 GB and reports its
// progress on a terminal.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { REPO_ROOT, runCli } from './run-cli.ts';
import { formatPagewalkProgress, ProgressLine } from '../../emu/cli/pagewalk-format.ts';

const { version } = JSON.parse(readFileSync(`${REPO_ROOT}package.json`, 'utf8')) as { version: string };

function expectMeta(json: Record<string, unknown>): void {
  expect(json.version).toBe(version);
  const host = json.host as { cpu: string; vendor: string; node: string };
  expect(host.cpu).toMatch(/\S/);
  expect(['GenuineIntel', 'AuthenticAMD', 'other']).toContain(host.vendor);
  expect(host.node).toBe(process.version);
}

describe('bench JSON meta fields', () => {
  it.concurrent.each([
    [['bench', 'mips', '--json', '--no-native', '--iterations', '100000', '--rounds', '1']],
    [['bench', 'pagewalk', '--churn', '--iterations', '20', '--json']],
  ])('hvlab %j', async (args) => {
    const r = await runCli(args, { timeoutMs: 120_000 });
    expect(r.status).toBe(0);
    expectMeta(JSON.parse(r.stdout));
  });

  it('bench pagewalk over 1 GiB: meta fields, and a peak resident memory under 1 GB', async () => {
    const r = await runCli(['bench', 'pagewalk', '--json', '--loads', '5000'], { timeoutMs: 300_000 });
    expect(r.status).toBe(0);
    const json = JSON.parse(r.stdout) as { working_set_bytes: number; peak_rss_bytes: number; rows: unknown[] };
    expectMeta(json);
    expect(json.working_set_bytes).toBe(2 ** 30);
    expect(json.rows).toHaveLength(10);
    expect(json.peak_rss_bytes).toBeGreaterThan(0);
    expect(json.peak_rss_bytes).toBeLessThan(1e9);
  });
});

describe('bench pagewalk progress', () => {
  it('names the row, its phase, the time and the memory', () => {
    expect(formatPagewalkProgress({ row: 3, rows: 10, mode: 'shadow', guest_page: '4k', host_page: '2m', phase: 'building shadow tables' }, 12.4, 180 * 2 ** 20))
      .toBe('[3/10] shadow guest 4k host 2m: building shadow tables; 12 s, 180 MiB resident');
  });

  it('rewrites one terminal line and clears it before the table goes on', () => {
    let written = '';
    const stream = { columns: 100, write: (s: string) => { written += s; return true; } } as unknown as NodeJS.WriteStream;
    const line = new ProgressLine(stream);
    line.show('[1/10] native guest 4k: warm-up');
    line.show('[1/10] native guest 4k: measuring');
    line.clear();
    line.clear();
    expect(written).toBe('\r\x1b[K[1/10] native guest 4k: warm-up\r\x1b[K[1/10] native guest 4k: measuring\r\x1b[K');
  });
});
