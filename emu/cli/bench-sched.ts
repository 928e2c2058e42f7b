// `hvlab bench sched`: registered on the `bench` command by main.ts. The bench itself (bench/sched.ts)
// is imported when the command runs, so the other commands do not pay for loading it.
import { InvalidArgumentError, type Command } from 'commander';

function positiveNumber(v: string): number {
  const n = Number(v);
  if (!(Number.isFinite(n) && n > 0)) throw new InvalidArgumentError(`not a positive number: ${v}`);
  return n;
}

function positiveInt(v: string): number {
  const n = Number(v);
  if (!(Number.isInteger(n) && n > 0)) throw new InvalidArgumentError(`not a positive integer: ${v}`);
  return n;
}

/** `setStatus` receives the command's exit status (1 when a run failed; unsupported configs are not
 *  failures: they wait for `hvlab host` to gain the option). */
export function registerBenchSched(bench: Command, setStatus: (status: number) => void = () => {}): void {
  bench.command('sched')
    .description('lock-holder preemption: 2-vCPU guests running spinlock, mutex, fork and pipe workloads at 1:1, 2:1 and 4:1 overcommit of 2 host CPUs, per scheduler policy (--sched rr|fair|gang), PV spinlocks (--pv) and pause-loop exiting (--ple); aggregate ops/s and the ratio to the same config at 1:1')
    .option('--quick', 'fewer configs (rr, rr+pv+ple, gang+pv+ple), 1:1 and 4:1 only, 0.1 s per mode')
    .option('--json', 'print the result as one JSON object')
    .option('--seconds <s>', 'guest seconds per workload mode (default 0.25; --quick 0.1)', positiveNumber)
    .option('--configs <list>', 'comma-separated configs: a policy (rr, fair, gang) with +pv and/or +ple, e.g. rr,rr+ple,gang+pv+ple')
    .option('--overcommit <list>', 'vCPU:host-CPU ratios, comma-separated (1 is always run: it is the reference)')
    .option('--moonshot', 'the issue\'s moonshot: three 4-vCPU guests on 4 host CPUs (3:1, and 1:1 as reference) for rr, gang, and the full PV set with PLE on rr, fair and gang')
    .option('--host-cpus <n>', 'simulated host CPUs (default 2)', positiveInt)
    .option('--vcpus <n>', 'vCPUs per guest, 1-4 (default 2)', positiveInt)
    .option('--round-us <us>', 'the hosts\' longest scheduling round in µs (hvlab host --round-us; default 50 for SMP guests)', positiveNumber)
    .option('--rounds <n>', 'alternating rounds per run (medians are reported)', positiveInt, 1)
    .option('--out <file>', 'write the JSON result there', 'bench-sched.json')
    .option('--svg <file>', 'write the plot (throughput ratio over overcommit) there', 'bench-sched.svg')
    .action(async (o, cmd: Command) => {
      const { benchSched, formatSchedTable, schedSummary, parseConfig, DEFAULT_CONFIGS, QUICK_CONFIGS, DEFAULT_OVERCOMMIT, QUICK_OVERCOMMIT, MOONSHOT } = await import('../../bench/sched.ts');
      const configs = o.configs ? String(o.configs).split(',').map((s) => s.trim()).filter(Boolean) : o.moonshot ? MOONSHOT.configs : o.quick ? QUICK_CONFIGS : DEFAULT_CONFIGS;
      try { configs.forEach(parseConfig); } catch (e) { cmd.error(`error: --configs: ${(e as Error).message}`); }
      const overcommit = o.overcommit ? String(o.overcommit).split(',').map(Number) : o.moonshot ? MOONSHOT.overcommit : o.quick ? QUICK_OVERCOMMIT : DEFAULT_OVERCOMMIT;
      if (overcommit.some((k) => !(Number.isInteger(k) && k >= 1))) cmd.error(`error: --overcommit must list whole ratios (got ${o.overcommit})`);
      const { withBenchMeta } = await import('../../bench/meta.ts');
      let r;
      try {
        r = await benchSched({ seconds: o.seconds ?? (o.quick ? 0.1 : 0.25), configs, overcommit, rounds: o.rounds, json: o.out, svg: o.svg, progress: true,
          hostCpus: o.hostCpus ?? (o.moonshot ? MOONSHOT.hostCpus : undefined), vcpusPerGuest: o.vcpus ?? (o.moonshot ? MOONSHOT.vcpusPerGuest : undefined),
          roundUs: o.roundUs });
      } catch (e) {
        console.error(`hvlab bench sched: ${(e as Error).message}`);
        setStatus(2);
        return;
      }
      if (r.runs.some((x) => x.status === 'failed')) setStatus(1);
      if (o.json) { console.log(JSON.stringify(withBenchMeta(r))); return; }
      for (const line of formatSchedTable(r)) console.log(line);
      console.log(`${r.vcpus_per_guest}-vCPU guests on ${r.host_cpus} host CPUs, ${r.seconds_per_mode} guest s per mode; ops/s: summed over guests, each on its own clock; ratio: over the same config at 1:1 (1.00 = nothing lost to overcommit); spin/op: failed spin trylocks per lock acquisition`);
      for (const l of schedSummary(r).lines) console.log(l);
      for (const n of r.notes) console.log(`note: ${n}`);
      console.log(`JSON: ${o.out}; plot: ${o.svg}`);
    });
}
