// The `hvlab` command line (commander). Each subcommand lives in its own module; this file only
// wires them up.
import { Command, InvalidArgumentError } from 'commander';
import { registerBenchSched } from './bench-sched.ts';

function intArg(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`not a non-negative integer: ${v}`);
  return n;
}

function printTable(rows: [string, string][]): void {
  const w = Math.max(...rows.map(([k]) => k.length));
  for (const [k, v] of rows) console.log(`${k.padEnd(w)}  ${v}`);
}

export async function main(argv: string[]): Promise<number> {
  let status = 0;
  const program = new Command();
  program.name('hvlab').description('x86-64 PC emulator and hypervisor lab').showHelpAfterError();

  const bench = program.command('bench').description('benchmarks (each prints a ratio against a reference measured in the same run)');
  bench.command('mips')
    .description('CPU-bound integer loop: emulated MIPS and the ratio to this machine\'s CPU running the same bytes')
    .option('--json', 'print one JSON object')
    .option('--iterations <n>', 'loop iterations in the emulator, per round', intArg, 6_000_000)
    .option('--native-iterations <n>', 'loop iterations natively, per round', intArg, 100_000_000)
    .option('--rounds <n>', 'alternating native/emulated rounds (medians are reported)', intArg, 5)
    .option('--no-native', 'skip the native reference')
    .action(async (o) => {
      const { benchMips } = await import('../../bench/mips.ts');
      const r = await benchMips({ iterations: o.iterations, nativeIterations: o.nativeIterations, native: o.native, rounds: o.rounds });
      if (o.json) { console.log(JSON.stringify(r)); return; }
      printTable([
        ['emulated', `${r.mips.toFixed(1)} MIPS (${r.instructions} instructions in ${r.seconds.toFixed(3)} s; median of ${r.rounds} rounds)`],
        ['native', r.native_mips === null ? 'skipped' : `${r.native_mips.toFixed(0)} MIPS`],
        ['ratio', r.ratio === null ? '-' : r.ratio.toFixed(4)],
        ['checksums', r.checksums_match === null ? '-' : r.checksums_match ? 'match' : 'DIFFER'],
      ]);
      if (r.checksums_match === false) status = 1;
    });

  bench.command('boot')
    .description('instructions and wall time from reset to the bundled guest\'s shell prompt, against QEMU TCG booting the same kernel')
    .option('--json', 'print one JSON object')
    .option('--no-qemu', 'skip the QEMU reference')
    .action(async (o) => {
      const { benchBoot } = await import('../../bench/boot.ts');
      const r = await benchBoot({ qemu: o.qemu });
      if (o.json) { console.log(JSON.stringify(r)); return; }
      printTable([
        ['hvlab', `${r.seconds.toFixed(2)} s to the shell prompt (${(r.instructions / 1e6).toFixed(0)} M instructions, ${(r.instructions / r.seconds / 1e6).toFixed(1)} MIPS)`],
        ['QEMU TCG', r.qemu_seconds === null ? (o.qemu ? 'not installed' : 'skipped') : `${r.qemu_seconds.toFixed(2)} s (same kernel and initramfs, with SeaBIOS)`],
        ['ratio', r.ratio === null ? '-' : `${r.ratio.toFixed(2)} (hvlab / QEMU; target <= 3)`],
      ]);
    });

  bench.command('host')
    .description('1, 2, 4 and 8 bundled guests on one host (hvlab host) against as many QEMU TCG processes in the same run: wall time, total resident memory, host memory per idle guest')
    .option('--json', 'print one JSON object')
    .option('--no-qemu', 'skip the QEMU reference')
    .option('--guests <list>', 'guest counts, comma-separated', '1,2,4,8')
    .option('--rounds <n>', 'alternating hvlab/QEMU rounds per count (medians are reported)', intArg, 1)
    .option('--mmu <mode>', 'ept or shadow', 'ept')
    .option('--svg <file>', 'also write the memory plot (SVG) there', 'bench-host.svg')
    .action(async (o) => {
      const counts = String(o.guests).split(',').map(Number);
      if (counts.some((n) => !(Number.isInteger(n) && n >= 1 && n <= 16))) throw new InvalidArgumentError(`--guests must list counts from 1 to 16 (got ${o.guests})`);
      const { benchHost } = await import('../../bench/host.ts');
      const MiB = 2 ** 20;
      const fmt = (b: number | null) => (b === null ? '-' : `${(b / MiB).toFixed(0)} MiB`);
      if (!o.json) console.log('guests  hvlab s  QEMU s  time ratio  hvlab RSS  QEMU RSS  RSS ratio  charged/guest');
      const r = await benchHost({ counts, rounds: o.rounds, qemu: o.qemu, mmu: o.mmu, svg: o.svg, onRow: o.json ? undefined : (x) => console.log(
        `${String(x.guests).padStart(6)}  ${x.hvlab_seconds.toFixed(1).padStart(7)}  ${x.qemu_seconds === null ? '      -' : x.qemu_seconds.toFixed(1).padStart(6)}  ${x.time_ratio === null ? '         -' : x.time_ratio.toFixed(2).padStart(10)}  ${fmt(x.hvlab_rss_bytes).padStart(9)}  ${fmt(x.qemu_rss_bytes).padStart(8)}  ${x.rss_ratio === null ? '        -' : x.rss_ratio.toFixed(2).padStart(9)}  ${fmt(x.hvlab_charged_bytes_per_guest).padStart(13)}`) });
      if (o.json) { console.log(JSON.stringify(r)); return; }
      console.log(`host memory per idle guest (slope of total RSS): hvlab ${fmt(r.hvlab_bytes_per_idle_guest)}, QEMU TCG ${fmt(r.qemu_bytes_per_idle_guest)}; ${r.cpu}; plot: ${o.svg}`);
    });

  bench.command('blk')
    .description('block I/O: busybox dd in the guest on raw and qcow2 (against QEMU TCG on the same image format), and the WebAssembly data path against plain TypeScript')
    .option('--json', 'print one JSON object')
    .option('--no-qemu', 'skip the QEMU reference')
    .option('--format <fmt>', 'only this image format (raw or qcow2)')
    .action(async (o) => {
      if (o.format !== undefined && o.format !== 'raw' && o.format !== 'qcow2') throw new InvalidArgumentError(`--format must be raw or qcow2 (got ${o.format})`);
      const { benchBlk, BLK_PHASES } = await import('../../bench/blk.ts');
      const r = await benchBlk({ qemu: o.qemu, formats: o.format ? [o.format] : undefined });
      if (o.json) { console.log(JSON.stringify(r)); return; }
      const figure = (f: { mib_per_s: number; ops_per_s: number | null }) => f.ops_per_s === null ? `${f.mib_per_s.toFixed(1)} MiB/s` : `${f.ops_per_s.toFixed(0)} IOPS`;
      const rows: [string, string][] = [];
      for (const g of r.guest) {
        for (const p of BLK_PHASES) {
          const q = g.qemu ? `QEMU TCG ${figure(g.qemu[p])}, ratio ${g.ratio![p].toFixed(2)} (hvlab time / QEMU time)` : 'QEMU: -';
          rows.push([`${g.format} ${p}`, `hvlab ${figure(g.hvlab[p])}; ${q}`]);
        }
      }
      const d = r.datapath;
      rows.push(['data path', `${d.request_bytes >> 10} KiB requests of 4 KiB buffers: WebAssembly ${d.wasm_gb_per_s.toFixed(1)} GB/s, TypeScript ${d.typescript_gb_per_s.toFixed(1)} GB/s, ratio ${d.ratio.toFixed(1)}`]);
      printTable(rows);
    });

  bench.command('pagewalk')
    .description('random reads over a large working set, native, shadow and 2D (EPT) with 4K/2M pages: references per walk, TLB miss rate, cache misses per access, page-table footprint, exits')
    .option('--json', 'print one JSON object')
    .option('--churn', 'instead, a guest that creates and tears down address spaces: exits and estimated cycles per MMU mode')
    .option('--iterations <n>', 'address spaces created and torn down (--churn)', intArg)
    .option('--exit-cycles <n>', 'cycles per exit to the hypervisor in the estimate (default by cause: page fault 3000, page-table write 3500, CR3 1500, INVLPG 1500)', intArg)
    .option('--timing', 'measure the extra ns of a load over 512 MiB against 64 KiB instead (cache model off, default TLB)')
    .option('--rounds <n>', 'alternating small/large rounds of --timing; the median is reported', intArg)
    .option('--working-set <MiB>', 'working set in MiB (a power of two)', intArg)
    .option('--loads <n>', 'random loads per measurement', intArg)
    .option('--cache <KiB>', 'data-cache model size in KiB', intArg, 256)
    .option('--cache-ways <n>', 'data-cache model associativity', intArg, 4)
    .option('--tlb <preset>', 'TLB geometry preset: skylake or default', 'skylake')
    .action(async (o) => {
      const { benchPagewalk, benchChurn } = await import('../../bench/pagewalk.ts');
      const { formatPagewalkRow, formatPagewalkHeader, formatChurnHeader, formatChurnRow } = await import('./pagewalk-format.ts');
      const { costWithExitCycles, DEFAULT_COST } = await import('../mmu/exit-cost.ts');
      const cost = o.exitCycles === undefined ? DEFAULT_COST : costWithExitCycles(o.exitCycles);
      let header = false;
      if (o.churn) {
        const r = benchChurn({ iterations: o.iterations, cost, cacheBytes: o.cache << 10, cacheWays: o.cacheWays,
          onRow: o.json ? undefined : (row) => { if (!header) { console.log(formatChurnHeader()); header = true; } console.log(formatChurnRow(row)); } });
        if (o.json) { console.log(JSON.stringify(r)); return; }
        console.log(`${r.iterations} address spaces of ${r.pages} pages created, used and torn down; cost model: exits ${JSON.stringify(r.cost_model.exitCycles)} cycles, cache miss ${r.cost_model.missCycles}, hit ${r.cost_model.hitCycles}`);
        return;
      }
      const r = benchPagewalk({
        timing: o.timing, rounds: o.rounds, workingSet: o.workingSet ? o.workingSet << 20 : undefined, loads: o.loads,
        cacheBytes: o.cache << 10, cacheWays: o.cacheWays, tlb: o.tlb, cost,
        onRow: o.json ? undefined : (row) => { if (!header) { console.log(formatPagewalkHeader(!!o.timing)); header = true; } console.log(formatPagewalkRow(row)); },
      });
      if (o.json) { console.log(JSON.stringify(r)); return; }
      console.log(`working set ${r.working_set_bytes >> 20} MiB, ${r.loads} random 4-byte loads per measurement`);
      console.log(`TLB (${r.tlb.preset}): 4K ${r.tlb.l1_4k}; 2M ${r.tlb.l1_2m}; 1G ${r.tlb.l1_1g}; L2 ${r.tlb.l2}; nested TLB ${r.tlb.nested_tlb ? 'on' : 'off'}; PDE cache ${r.tlb.pde_cache ? 'on' : 'off'}`);
      console.log(r.cache ? `data cache model: ${r.cache.bytes >> 10} KiB, ${r.cache.ways}-way, ${r.cache.line}-byte lines, LRU` : 'data cache model: off');
    });

  registerBenchSched(bench, (n) => { status = n; });

  const img = program.command('img').description('disk image utilities, as qemu-img: create, info, commit (raw and qcow2)');
  img.command('create')
    .description('create an image (SIZE: bytes or k/M/G/T suffixes; with -b it defaults to the backing file\'s size)')
    .argument('<file>').argument('[size]')
    .option('-f, --format <fmt>', 'raw or qcow2', 'raw')
    .option('-b, --backing <file>', 'backing file (qcow2; a relative name is relative to FILE\'s directory)')
    .option('-F, --backing-format <fmt>', 'format of the backing file: raw or qcow2')
    .option('-o, --options <opts>', 'creation options (cluster_size=SIZE for qcow2)')
    .action(async (file: string, size: string | undefined, o) => { status = (await import('./img.ts')).imgCreate(file, size, o); });
  img.command('info')
    .description('show an image\'s format, sizes, cluster size and backing file')
    .argument('<file>')
    .option('-f, --format <fmt>', 'raw or qcow2 (default: probed)')
    .option('--backing-chain', 'also show every backing file under the image')
    .option('--output <fmt>', 'human or json (qemu-img\'s field names)', 'human')
    .action(async (file: string, o) => { status = (await import('./img.ts')).imgInfo(file, o); });
  img.command('commit')
    .description('write the overlay\'s allocated clusters into its backing file, then empty the overlay')
    .argument('<file>')
    .option('-f, --format <fmt>', 'raw or qcow2 (default: probed)')
    .option('-d, --keep', 'do not empty the overlay after committing')
    .action(async (file: string, o) => { status = (await import('./img.ts')).imgCommit(file, o); });

  program.command('walk')
    .description('show one cold page walk step by step (guest and host dimensions) and count its references')
    .option('--mmu <mode>', 'direct, ept or shadow', 'ept')
    .option('--guest-page <size>', '4k, 2m or 1g', '4k')
    .option('--host-page <size>', '4k, 2m or 1g (ept, shadow)', '4k')
    .option('--gva <addr>', 'guest virtual address (default: inside the mapped working set at 0x7f0000000000)')
    .option('--explain', 'one sentence per step, in KVM\'s terms')
    .option('--json', 'print one JSON object')
    .action(async (o) => {
      const { walk, formatWalk } = await import('./walk.ts');
      const sizes = ['4k', '2m', '1g'];
      if (!['direct', 'ept', 'shadow'].includes(o.mmu)) throw new InvalidArgumentError(`--mmu must be direct, ept or shadow (got ${o.mmu})`);
      if (!sizes.includes(o.guestPage) || !sizes.includes(o.hostPage)) throw new InvalidArgumentError('page sizes are 4k, 2m or 1g');
      try {
        const w = walk({ mmu: o.mmu, guestPage: o.guestPage, hostPage: o.hostPage, gva: o.gva === undefined ? undefined : BigInt(o.gva) });
        console.log(o.json ? JSON.stringify(w) : formatWalk(w, !!o.explain));
      } catch (e) {
        console.error(`hvlab walk: ${(e as Error).message}`);
        status = 2;
      }
    });

  program.command('difftest')
    .description('run generated instruction cases on this machine\'s CPU and in hvlab, and compare')
    .option('--seed <n>', 'generator seed', intArg, 1)
    .option('--count <n>', 'number of cases', intArg, 10_000)
    .option('--only <families>', 'comma-separated families or mnemonics (e.g. alu,shift,bt)')
    .option('--show <n>', 'failures to print in full', intArg, 20)
    .action(async (o) => {
      const { difftest, formatMismatch, formatSummary } = await import('../difftest/compare.ts');
      const only = o.only ? String(o.only).split(',').map((s: string) => s.trim()).filter(Boolean) : undefined;
      const r = await difftest({ seed: o.seed, count: o.count, only, keepMismatches: o.show });
      for (const m of r.mismatches) console.log(formatMismatch(m));
      console.log(`native ${r.nativeSeconds.toFixed(2)} s, hvlab ${r.emulatedSeconds.toFixed(2)} s`);
      console.log(`forms: ${r.forms}`);
      for (const line of formatSummary(r)) console.log(line);
      if (r.failed) status = 1;
    });

  program.command('boot')
    .description('boot a guest (default: the bundled Linux guest to a shell); the serial console is the terminal, Ctrl-A X quits')
    .option('--kernel <file>', 'Linux bzImage, or a multiboot kernel (ELF32, or a flat image with the header address fields)')
    .option('--initrd <files>', 'initramfs for Linux; multiboot modules, comma-separated (as QEMU takes them)')
    .option('--append <cmdline>', 'kernel command line (Linux default: console=ttyS0)')
    .option('-m, --memory <MiB>', 'guest RAM in MiB', intArg, 256)
    .option('--mmu <mode>', 'direct (gpa = host offset), ept (two-dimensional walk through a nested page table) or shadow (shadow page tables)', 'direct')
    .option('--smp <n>', 'virtual CPUs (1-4)', intArg, 1)
    .option('--drive <spec>', 'a virtio-blk disk: file=F[,format=raw|qcow2][,readonly=on] (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--stats', 'at exit, print instructions, virtual and host time and per-drive I/O accounting (on stderr)')
    .option('--bios <file>', 'raw firmware image: its end is mapped at 4 GiB (reset vector) and its last 128 KiB at 0xE0000')
    .option('--script <commands>', 'type these commands at the shell prompt; end when the guest powers off')
    .option('--timeout <seconds>', 'give up after this many seconds (exit status 124)', intArg)
    .option('--pace', 'keep virtual time from running ahead of wall time (default when interactive)')
    .option('--no-pace', 'run as fast as possible even when interactive')
    .option('--max-instructions <n>', 'stop after this many instructions', intArg)
    .option('--pv <mode>', 'KVM paravirtual interface: on (PV spinlocks, steal time, PV TLB flush, PV IPI, sched yield), off (no hypervisor CPUID leaves), realtime (on, with KVM_HINTS_REALTIME)', 'on')
    .option('--ple <on|off>', 'pause-loop exiting (KVM\'s VMX defaults: gap 128, window 4096)', 'on')
    .action(async (o) => {
      if (!['direct', 'ept', 'shadow'].includes(o.mmu)) throw new InvalidArgumentError(`--mmu must be direct, ept or shadow (got ${o.mmu})`);
      if (!['on', 'off', 'realtime'].includes(o.pv)) throw new InvalidArgumentError(`--pv must be on, off or realtime (got ${o.pv})`);
      if (!['on', 'off'].includes(o.ple)) throw new InvalidArgumentError(`--ple must be on or off (got ${o.ple})`);
      const { boot } = await import('./boot.ts');
      status = await boot({
        bios: o.bios, kernel: o.kernel, initrd: o.initrd, append: o.append, memory: o.memory, mmu: o.mmu, smp: o.smp, drives: o.drive, stats: o.stats,
        maxInstructions: o.maxInstructions, script: o.script, timeout: o.timeout ?? (o.script !== undefined ? 600 : undefined),
        interactive: o.script === undefined, pace: o.pace, pv: o.pv, ple: o.ple === 'on',
      });
    });

  program.command('host')
    .description('one host, many guests: N copies of the bundled guest (or --config FILE) on one frame pool, RAM allocated on first touch, vCPUs sharing the host CPUs')
    .option('--guests <n>', 'copies of the bundled guest', intArg, 1)
    .option('-m, --memory <MiB>', 'guest RAM in MiB, per guest', intArg, 256)
    .option('--smp <n>', 'virtual CPUs per guest (1-4)', intArg, 1)
    .option('--host-memory <MiB>', 'the host frame pool in MiB (a multiple of 2)', intArg, 1024)
    .option('--host-cpus <n>', 'simulated host CPUs the vCPUs share (default: one per vCPU)', intArg)
    .option('--mmu <mode>', 'ept (two-dimensional walk) or shadow (shadow page tables)', 'ept')
    .option('--config <file>', 'JSON: {"host": {"memory", "cpus", "mmu"}, "sched": {"policy", "coSkewMs", "quantumMs", "roundUs"}, "groups": [{"name", "weight", "cap", "guarantee", "parent"}], "guests": [{"name", "kernel", "initrd", "append", "memory", "smp", "drives", "script", "weight", "cap", "guarantee", "group"}]}')
    .option('--sched <policy>', 'vCPU scheduler: rr (round-robin, 3 ms quanta), fair (weighted fair share over the group tree, as CFS) or gang (a guest\'s vCPUs run together)', 'rr')
    .option('--co-skew <ms>', 'gang only: relaxed co-scheduling, a vCPU may run this many ms ahead of its slowest sibling (0: strict)')
    .option('--round-us <us>', 'the longest scheduling round in µs (default 50 with SMP guests, else 1000): a guest\'s vCPUs see each other\'s writes within a round')
    .option('--weight <n>', 'each guest\'s weight (cgroup v2 cpu.weight, 1-10000; default 100)')
    .option('--cap <percent>', 'each guest\'s cap, in percent of one host CPU (cpu.max with a 100 ms period)')
    .option('--guarantee <percent>', 'host CPU time reserved for each guest, in percent of one host CPU')
    .option('--pv <on|off>', 'KVM\'s paravirtual interface in every guest (PV spinlocks, steal time, PV TLB flush, PV IPI, sched yield)', 'on')
    .option('--ple <on|off>', 'pause-loop exiting in every guest (a spinning vCPU yields its host CPU)', 'on')
    .option('--script <commands>', 'type these commands at each guest\'s shell prompt')
    .option('--timeout <seconds>', 'give up on guests still running after this many seconds (their exit status 124)', intArg)
    .option('--console-dir <dir>', 'write each guest\'s console to DIR/NAME.log instead of the terminal')
    .option('--json', 'print the host and every guest as one JSON object at the end')
    .action(async (o) => {
      const { runHost, hostGuests, parseSchedFlags, HostConfigError } = await import('./host.ts');
      let cfg, flags;
      try {
        flags = parseSchedFlags({ sched: o.sched, coSkew: o.coSkew, round: o.roundUs, weight: o.weight, cap: o.cap, guarantee: o.guarantee, pv: o.pv, ple: o.ple });
        cfg = hostGuests({ guests: o.guests, memory: o.memory, smp: o.smp, script: o.script, config: o.config, weight: flags.weight, cap: flags.cap, guarantee: flags.guarantee });
      } catch (e) {
        if (e instanceof HostConfigError || (e as NodeJS.ErrnoException).code === 'ENOENT') { console.error(`hvlab host: ${(e as Error).message}`); status = 2; return; }
        throw e;
      }
      const mmu = cfg.host.mmu ?? o.mmu;
      if (mmu !== 'ept' && mmu !== 'shadow') throw new InvalidArgumentError(`--mmu must be ept or shadow (got ${mmu}): a host of many guests maps each through its own gpa -> hpa table`);
      for (const g of cfg.guests) if (!(g.smp >= 1 && g.smp <= 4)) throw new InvalidArgumentError(`--smp must be 1 to 4 (got ${g.smp})`);
      const r = await runHost({
        guests: cfg.guests, hostMemory: cfg.host.memory ?? o.hostMemory, hostCpus: cfg.host.cpus ?? o.hostCpus, mmu,
        timeout: o.timeout ?? (o.script !== undefined || o.config ? 600 : undefined), json: o.json, consoleDir: o.consoleDir,
        sched: { ...flags.sched, ...cfg.sched }, groups: cfg.groups, pv: flags.pv, ple: flags.ple,
      });
      status = r.status;
    });

  await program.parseAsync(argv);
  return status;
}
