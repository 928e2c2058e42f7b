// `hvlab bench overcommit`: registered on the `bench` command by main.ts; bench/overcommit.ts is
// imported when the command runs.
import type { Command } from 'commander';

export function registerBenchOvercommit(bench: Command, setStatus: (status: number) => void = () => {}): void {
  bench.command('overcommit')
    .description('memory overcommit: three 96 MiB guests running memtouch (48 MiB, checked) on pools that hold all of them, 1/1.5 and 1/2 of them (host swap), naive reclaim at 2x, and memory.low protecting one guest; per guest throughput against the reference, major faults, swap bytes, zero and clean pages dropped')
    .option('--json', 'print the result as one JSON object')
    .option('--cases <list>', 'comma-separated cases besides the reference: 1.5x, 2x, "2x naive", "2x g0 protected"')
    .option('--out <file>', 'write the JSON result there', 'bench-overcommit.json')
    .option('--svg <file>', 'write the plot (throughput ratio per guest and case) there', 'bench-overcommit.svg')
    .action(async (o) => {
      const { benchOvercommit, formatOvercommit, CASES } = await import('../../bench/overcommit.ts');
      const cases = o.cases ? String(o.cases).split(',').map((s) => s.trim()).filter(Boolean) : undefined;
      const unknown = cases?.filter((c) => !CASES.some((k) => k.name === c));
      if (unknown?.length) { console.error(`hvlab bench overcommit: unknown case ${unknown.map((c) => JSON.stringify(c)).join(', ')} (expected ${CASES.map((c) => c.name).join(', ')})`); setStatus(2); return; }
      const { withBenchMeta } = await import('../../bench/meta.ts');
      let r;
      try { r = await benchOvercommit({ json: o.out, svg: o.svg, progress: true, cases }); } catch (e) {
        console.error(`hvlab bench overcommit: ${(e as Error).message}`);
        setStatus(2);
        return;
      }
      if (r.runs.some((x) => x.status !== 'ok')) setStatus(1);
      if (o.json) { console.log(JSON.stringify(withBenchMeta(r))); return; }
      for (const line of formatOvercommit(r)) console.log(line);
      console.log(`${r.workload}; MiB/s on each guest's own clock (written plus read); ratio over the same guest in the reference run`);
      console.log(`JSON: ${o.out}; plot: ${o.svg}`);
    });
}
