// The `hvlab` command line (commander). Each subcommand lives in its own module; this file only
// wires them up. Every mistake on the command line ends in one line on stderr and a nonzero status:
// commander reports bad options itself (exitOverride turns its process.exit into a CommanderError
// that main() turns into the status), option values are checked by argument parsers that throw
// InvalidArgumentError, and what can only be checked in an action is reported with `cmd.error`.
import { readFileSync } from 'node:fs';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { CPU_MODEL_NAMES, CPU_OPTION_HELP, applyCpuOption } from '../cpu/models.ts';
import { registerBenchSched } from './bench-sched.ts';
import { registerBenchOvercommit } from './bench-overcommit.ts';

const PACKAGE = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

/** An argument parser for whole numbers in [min, max], with what the number counts in the message. */
function intIn(min: number, max = Number.MAX_SAFE_INTEGER, what = 'a whole number'): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(max === Number.MAX_SAFE_INTEGER ? `expected ${what} >= ${min}` : `expected ${what} from ${min} to ${max}`);
    }
    return n;
  };
}

const intArg = intIn(0);
const positiveInt = intIn(1);

function powerOfTwo(v: string): number {
  const n = positiveInt(v);
  if ((n & (n - 1)) !== 0) throw new InvalidArgumentError('expected a power of two');
  return n;
}

/** A comma-separated list of whole numbers in [min, max]. */
function intList(min: number, max: number): (v: string) => number[] {
  const one = intIn(min, max);
  return (v: string) => v.split(',').map((s) => one(s.trim()));
}

/** An option whose value is one of `values` (commander names the allowed choices in its error). */
function choice(flags: string, description: string, values: readonly string[], fallback?: string): Option {
  const o = new Option(flags, description).choices(values);
  return fallback === undefined ? o : o.default(fallback);
}

const MMU_MODES = ['direct', 'ept', 'shadow'] as const;
const PAGE_SIZES = ['4k', '2m', '1g'] as const;
const ON_OFF = ['on', 'off'] as const;

/** A guest virtual address for `hvlab walk`: hexadecimal (0x...) or decimal, canonical for 4-level
 *  paging (bits 63-47 all equal), since a non-canonical address is a #GP before any walk. */
function canonicalAddress(v: string): bigint {
  let a: bigint;
  try { a = BigInt(v.trim()); } catch { throw new InvalidArgumentError('expected an address, e.g. 0x7f0000001234'); }
  if (a < 0n || a >= 1n << 64n) throw new InvalidArgumentError('expected a 64-bit address');
  const upper = a >> 47n;
  if (upper !== 0n && upper !== (1n << 17n) - 1n) {
    throw new InvalidArgumentError(`0x${a.toString(16)} is not canonical: bits 63-47 must all equal bit 47 (0-0x7fffffffffff or 0xffff800000000000 and up); the CPU raises #GP without walking`);
  }
  return a;
}

/** `--rtc`: `utc` (the host's clock, read when the guest boots) or a fixed start, as QEMU's
 *  `-rtc base=`; a date-time without a zone is UTC, so the same option gives the same run anywhere. */
function rtcBase(v: string): 'utc' | Date {
  const text = v.replace(/^base=/, '').trim();
  if (text === 'utc') return 'utc';
  const zoned = /(Z|[+-]\d\d:?\d\d)$/i.test(text) ? text : `${text}Z`;
  const d = /^\d{4}-\d\d-\d\d/.test(text) ? new Date(text.length === 10 ? `${text}T00:00:00Z` : zoned) : new Date(NaN);
  if (Number.isNaN(d.getTime())) throw new InvalidArgumentError('expected utc or a date-time such as 2026-01-01T00:00:00');
  return d;
}

/** The native oracle (test/native/runner.c, built with gcc) or, without it, a one-line error
 *  saying what to install: it is the only part of hvlab that needs a C compiler. */
async function requireNativeRunner(cmd: Command, alternative: string): Promise<void> {
  const { ensureNativeRunner } = await import('../difftest/native.ts');
  try { ensureNativeRunner(); } catch (e) { cmd.error(`error: ${(e as Error).message}${alternative}`); }
}

/** A bench result as one JSON line, with hvlab's version and the host it ran on (bench/meta.ts). */
async function printBenchJson(result: object): Promise<void> {
  const { withBenchMeta } = await import('../../bench/meta.ts');
  console.log(JSON.stringify(withBenchMeta(result)));
}

function printTable(rows: [string, string][]): void {
  const w = Math.max(...rows.map(([k]) => k.length));
  for (const [k, v] of rows) console.log(`${k.padEnd(w)}  ${v}`);
}

export async function main(argv: string[]): Promise<number> {
  let status = 0;
  const program = new Command();
  // Set before any subcommand is added: commander copies these settings into each one.
  program.name('hvlab').description('x86-64 PC emulator and hypervisor lab')
    .version(PACKAGE.version, '-V, --version', 'print the version')
    .exitOverride()
    .showHelpAfterError(false)
    // Commander puts its "(Did you mean --memory?)" on a line of its own: keep every error one line.
    .configureOutput({ outputError: (message, write) => write(`${message.trimEnd().replace(/\s*\n\s*/g, ' ')}\n`) });

  const bench = program.command('bench').description('benchmarks (each prints a ratio against a reference measured in the same run)');
  bench.command('mips')
    .description('CPU-bound integer loop: emulated MIPS and the ratio to this machine\'s CPU running the same bytes')
    .option('--json', 'print one JSON object')
    .option('--iterations <n>', 'loop iterations in the emulator, per round', positiveInt, 6_000_000)
    .option('--native-iterations <n>', 'loop iterations natively, per round', positiveInt, 100_000_000)
    .option('--rounds <n>', 'alternating native/emulated rounds (medians are reported)', positiveInt, 5)
    .option('--no-native', 'skip the native reference')
    .action(async (o, cmd: Command) => {
      if (o.native) await requireNativeRunner(cmd, ' (or run with --no-native)');
      const { benchMips } = await import('../../bench/mips.ts');
      const r = await benchMips({ iterations: o.iterations, nativeIterations: o.nativeIterations, native: o.native, rounds: o.rounds });
      if (o.json) { await printBenchJson(r); return; }
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
      if (o.json) { await printBenchJson(r); return; }
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
    .option('--guests <list>', 'guest counts from 1 to 16, comma-separated', intList(1, 16), [1, 2, 4, 8])
    .option('--rounds <n>', 'alternating hvlab/QEMU rounds per count (medians are reported)', positiveInt, 1)
    .addOption(choice('--mmu <mode>', 'ept or shadow', ['ept', 'shadow'], 'ept'))
    .option('--svg <file>', 'also write the memory plot (SVG) there', 'bench-host.svg')
    .action(async (o) => {
      const counts: number[] = o.guests;
      const { benchHost } = await import('../../bench/host.ts');
      const MiB = 2 ** 20;
      const fmt = (b: number | null) => (b === null ? '-' : `${(b / MiB).toFixed(0)} MiB`);
      if (!o.json) console.log('guests  hvlab s  QEMU s  time ratio  hvlab RSS  QEMU RSS  RSS ratio  charged/guest');
      const r = await benchHost({ counts, rounds: o.rounds, qemu: o.qemu, mmu: o.mmu, svg: o.svg, onRow: o.json ? undefined : (x) => console.log(
        `${String(x.guests).padStart(6)}  ${x.hvlab_seconds.toFixed(1).padStart(7)}  ${x.qemu_seconds === null ? '      -' : x.qemu_seconds.toFixed(1).padStart(6)}  ${x.time_ratio === null ? '         -' : x.time_ratio.toFixed(2).padStart(10)}  ${fmt(x.hvlab_rss_bytes).padStart(9)}  ${fmt(x.qemu_rss_bytes).padStart(8)}  ${x.rss_ratio === null ? '        -' : x.rss_ratio.toFixed(2).padStart(9)}  ${fmt(x.hvlab_charged_bytes_per_guest).padStart(13)}`) });
      if (o.json) { await printBenchJson(r); return; }
      console.log(`host memory per idle guest (slope of total RSS): hvlab ${fmt(r.hvlab_bytes_per_idle_guest)}, QEMU TCG ${fmt(r.qemu_bytes_per_idle_guest)}; ${r.cpu}; plot: ${o.svg}`);
    });

  bench.command('blk')
    .description('block I/O: busybox dd in the guest on raw and qcow2 (against QEMU TCG on the same image format), and the WebAssembly data path against plain TypeScript')
    .option('--json', 'print one JSON object')
    .option('--no-qemu', 'skip the QEMU reference')
    .addOption(choice('--format <fmt>', 'only this image format (raw or qcow2)', ['raw', 'qcow2']))
    .action(async (o) => {
      const { benchBlk, BLK_PHASES } = await import('../../bench/blk.ts');
      const r = await benchBlk({ qemu: o.qemu, formats: o.format ? [o.format] : undefined });
      if (o.json) { await printBenchJson(r); return; }
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
    .option('--iterations <n>', 'address spaces created and torn down (--churn)', positiveInt)
    .option('--exit-cycles <n>', 'cycles per exit to the hypervisor in the estimate (default by cause: page fault 3000, page-table write 3500, CR3 1500, INVLPG 1500)', intArg)
    .option('--timing', 'measure the extra ns of a load over 512 MiB against 64 KiB instead (cache model off, default TLB)')
    .option('--rounds <n>', 'alternating small/large rounds of --timing; the median is reported', positiveInt)
    .option('--working-set <MiB>', 'working set in MiB (a power of two)', powerOfTwo)
    .option('--loads <n>', 'random loads per measurement', positiveInt)
    .option('--cache <KiB>', 'data-cache model size in KiB (a power of two)', powerOfTwo, 256)
    .option('--cache-ways <n>', 'data-cache model associativity', positiveInt, 4)
    .addOption(choice('--tlb <preset>', 'TLB geometry preset: skylake or default', ['skylake', 'default'], 'skylake'))
    .action(async (o) => {
      const { benchPagewalk, benchChurn } = await import('../../bench/pagewalk.ts');
      const { formatPagewalkRow, formatPagewalkHeader, formatChurnHeader, formatChurnRow, formatPagewalkProgress, ProgressLine } = await import('./pagewalk-format.ts');
      const { costWithExitCycles, DEFAULT_COST } = await import('../mmu/exit-cost.ts');
      const cost = o.exitCycles === undefined ? DEFAULT_COST : costWithExitCycles(o.exitCycles);
      let header = false;
      if (o.churn) {
        const r = benchChurn({ iterations: o.iterations, cost, cacheBytes: o.cache << 10, cacheWays: o.cacheWays,
          onRow: o.json ? undefined : (row) => { if (!header) { console.log(formatChurnHeader()); header = true; } console.log(formatChurnRow(row)); } });
        if (o.json) { await printBenchJson(r); return; }
        console.log(`${r.iterations} address spaces of ${r.pages} pages created, used and torn down; cost model: exits ${JSON.stringify(r.cost_model.exitCycles)} cycles, cache miss ${r.cost_model.missCycles}, hit ${r.cost_model.hitCycles}`);
        return;
      }
      // The bench runs for a minute or more: a terminal sees which row it is at (on stderr).
      const started = Date.now();
      const status = process.stderr.isTTY ? new ProgressLine(process.stderr) : null;
      const r = benchPagewalk({
        timing: o.timing, rounds: o.rounds, workingSet: o.workingSet ? o.workingSet * 2 ** 20 : undefined, loads: o.loads,
        cacheBytes: o.cache << 10, cacheWays: o.cacheWays, tlb: o.tlb, cost,
        onProgress: status ? (p) => status.show(formatPagewalkProgress(p, (Date.now() - started) / 1000, process.memoryUsage.rss())) : undefined,
        onRow: o.json ? undefined : (row) => { status?.clear(); if (!header) { console.log(formatPagewalkHeader(!!o.timing)); header = true; } console.log(formatPagewalkRow(row)); },
      });
      status?.clear();
      if (o.json) { await printBenchJson(r); return; }
      console.log(`working set ${r.working_set_bytes >> 20} MiB, ${r.loads} random 4-byte loads per measurement`);
      console.log(`TLB (${r.tlb.preset}): 4K ${r.tlb.l1_4k}; 2M ${r.tlb.l1_2m}; 1G ${r.tlb.l1_1g}; L2 ${r.tlb.l2}; nested TLB ${r.tlb.nested_tlb ? 'on' : 'off'}; PDE cache ${r.tlb.pde_cache ? 'on' : 'off'}`);
      console.log(r.cache ? `data cache model: ${r.cache.bytes >> 10} KiB, ${r.cache.ways}-way, ${r.cache.line}-byte lines, LRU` : 'data cache model: off');
      console.log(`peak resident memory ${(r.peak_rss_bytes / 2 ** 20).toFixed(0)} MiB; ${((Date.now() - started) / 1000).toFixed(0)} s`);
    });

  registerBenchSched(bench, (n) => { status = n; });
  registerBenchOvercommit(bench, (n) => { status = n; });

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
    .addOption(choice('--mmu <mode>', 'direct (no host dimension: gpa = hpa), ept or shadow', MMU_MODES, 'ept'))
    .addOption(choice('--guest-page <size>', 'the guest\'s page size', PAGE_SIZES, '4k'))
    .addOption(choice('--host-page <size>', 'the host\'s page size (ept, shadow)', PAGE_SIZES, '4k'))
    .option('--gva <addr>', 'guest virtual address, canonical (default: inside the mapped working set at 0x7f0000000000)', canonicalAddress)
    .option('--explain', 'one sentence per step, in KVM\'s terms')
    .option('--json', 'print one JSON object')
    .action(async (o) => {
      const { walk, formatWalk } = await import('./walk.ts');
      try {
        const w = walk({ mmu: o.mmu, guestPage: o.guestPage, hostPage: o.hostPage, gva: o.gva });
        console.log(o.json ? JSON.stringify(w) : formatWalk(w, !!o.explain));
      } catch (e) {
        console.error(`hvlab walk: ${(e as Error).message}`);
        status = 2;
      }
    });

  program.command('difftest')
    .description('run generated instruction cases on this machine\'s CPU and in hvlab, and compare')
    .option('--seed <n>', 'generator seed', intArg, 1)
    .option('--count <n>', 'number of cases', positiveInt, 10_000)
    .option('--only <families>', 'comma-separated families or mnemonics (e.g. alu,shift,bt)')
    .option('--show <n>', 'failures to print in full', intArg, 20)
    .addOption(choice('--cpu <model>', CPU_OPTION_HELP, CPU_MODEL_NAMES))
    .action(async (o, cmd: Command) => {
      const only = o.only ? String(o.only).split(',').map((s: string) => s.trim()).filter(Boolean) : undefined;
      const { formVariants } = await import('../difftest/generate.ts');
      const unknown = (only ?? []).filter((name) => formVariants([name]).length === 0);
      if (unknown.length) {
        // The families of both instruction tables (a filter searches the x87/MMX/SSE table too).
        const [{ forms }, { fpuForms }] = await Promise.all([import('../../wasm/cpu/isa-table.ts'), import('../../wasm/cpu/isa-table-fpu.ts')]);
        const families = [...new Set([...forms, ...fpuForms].map((f) => f.fam))];
        cmd.error(`error: --only: no instruction family, mnemonic or form is called ${unknown.join(', ')} (families: ${families.join(' ')})`);
      }
      await requireNativeRunner(cmd, '');
      const { difftest, formatMismatch, formatSummary } = await import('../difftest/compare.ts');
      const r = await difftest({ seed: o.seed, count: o.count, only, keepMismatches: o.show, cpu: o.cpu });
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
    .option('-m, --memory <MiB>', 'guest RAM in MiB', intIn(1, Number.MAX_SAFE_INTEGER, 'a whole number of MiB'), 256)
    .addOption(choice('--mmu <mode>', 'direct (gpa = host offset), ept (two-dimensional walk through a nested page table) or shadow (shadow page tables)', MMU_MODES, 'direct'))
    .option('--smp <n>', 'virtual CPUs (1-4)', intIn(1, 4), 1)
    .option('--drive <spec>', 'a virtio-blk disk: file=F[,format=raw|qcow2][,readonly=on] (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--stats', 'at exit, print instructions, virtual and host time and per-drive I/O accounting (on stderr)')
    .option('--bios <file>', 'raw firmware image: its end is mapped at 4 GiB (reset vector) and its last 128 KiB at 0xE0000')
    .option('--script <commands>', 'type these commands at the shell prompt; end when the guest powers off')
    .option('--timeout <seconds>', 'give up after this many seconds (exit status 124)', positiveInt)
    .option('--pace', 'keep virtual time from running ahead of wall time (default when interactive)')
    .option('--no-pace', 'run as fast as possible even when interactive')
    .option('--max-instructions <n>', 'stop after this many instructions', positiveInt)
    .addOption(choice('--pv <mode>', 'KVM paravirtual interface: on (PV spinlocks, steal time, PV TLB flush, PV IPI, sched yield), off (no hypervisor CPUID leaves), realtime (on, with KVM_HINTS_REALTIME)', ['on', 'off', 'realtime'], 'on'))
    .addOption(choice('--ple <on|off>', 'pause-loop exiting (KVM\'s VMX defaults: gap 128, window 4096)', ON_OFF, 'on'))
    .option('--rtc <base>', 'the guest\'s clock at boot: utc (the host\'s date and time) or a fixed UTC date-time such as 2026-01-01T00:00:00 (repeatable runs)', rtcBase, 'utc')
    .addOption(choice('--cpu <model>', CPU_OPTION_HELP, CPU_MODEL_NAMES))
    .action(async (o) => {
      applyCpuOption(o.cpu);
      const { boot } = await import('./boot.ts');
      status = await boot({
        bios: o.bios, kernel: o.kernel, initrd: o.initrd, append: o.append, memory: o.memory, mmu: o.mmu, smp: o.smp, drives: o.drive, stats: o.stats,
        maxInstructions: o.maxInstructions, script: o.script, timeout: o.timeout ?? (o.script !== undefined ? 600 : undefined),
        interactive: o.script === undefined, pace: o.pace, pv: o.pv, ple: o.ple === 'on',
        rtcStart: o.rtc === 'utc' ? new Date() : o.rtc,
      });
    });

  program.command('host')
    .description('one host, many guests: N copies of the bundled guest (or --config FILE) on one frame pool, RAM allocated on first touch, vCPUs sharing the host CPUs')
    .option('--guests <n>', 'copies of the bundled guest', intIn(1, 16), 1)
    .option('-m, --memory <MiB>', 'guest RAM in MiB, per guest', intIn(1, Number.MAX_SAFE_INTEGER, 'a whole number of MiB'), 256)
    .option('--smp <n>', 'virtual CPUs per guest (1-4)', intIn(1, 4), 1)
    .option('--host-memory <MiB>', 'the host frame pool in MiB (a multiple of 2)', positiveInt, 1024)
    .option('--host-cpus <n>', 'simulated host CPUs the vCPUs share (default: one per vCPU)', positiveInt)
    .addOption(choice('--mmu <mode>', 'ept (two-dimensional walk) or shadow (shadow page tables)', ['ept', 'shadow'], 'ept'))
    .option('--config <file>', 'JSON: {"host": {"memory", "cpus", "mmu", "swap", "reclaim"}, "sched": {"policy", "coSkewMs", "quantumMs", "roundUs"}, "groups": [{"name", "weight", "cap", "guarantee", "parent"}], "guests": [{"name", "kernel", "initrd", "append", "memory", "smp", "drives", "script", "weight", "cap", "guarantee", "group", "memoryMax", "memoryHigh", "memoryLow", "swapMax"}]}')
    .option('--sched <policy>', 'vCPU scheduler: rr (round-robin, 3 ms quanta), fair (weighted fair share over the group tree, as CFS) or gang (a guest\'s vCPUs run together)', 'rr')
    .option('--co-skew <ms>', 'gang only: relaxed co-scheduling, a vCPU may run this many ms ahead of its slowest sibling (0: strict)')
    .option('--round-us <us>', 'the longest scheduling round in µs (default 50 with SMP guests, else 1000): a guest\'s vCPUs see each other\'s writes within a round')
    .option('--weight <n>', 'each guest\'s weight (cgroup v2 cpu.weight, 1-10000; default 100)')
    .option('--cap <percent>', 'each guest\'s cap, in percent of one host CPU (cpu.max with a 100 ms period)')
    .option('--guarantee <percent>', 'host CPU time reserved for each guest, in percent of one host CPU')
    .option('--pv <on|off>', 'KVM\'s paravirtual interface in every guest (PV spinlocks, steal time, PV TLB flush, PV IPI, sched yield)', 'on')
    .option('--ple <on|off>', 'pause-loop exiting in every guest (a spinning vCPU yields its host CPU)', 'on')
    .option('--swap <file[,size=MiB]>', 'host swap to FILE (default 1024 MiB): reclaim writes pages there, never zero pages, never a clean page twice')
    .option('--memory-max <MiB>', 'each guest\'s memory container: at most this many MiB of host frames (cgroup v2 memory.max; reclaim from the guest itself)', positiveInt)
    .option('--memory-high <MiB>', 'each guest\'s memory.high: above it the guest reclaims from itself before each new frame, but is never stopped', positiveInt)
    .option('--memory-low <MiB>', 'each guest\'s protected memory (cgroup v2 memory.low): the host reclaims from others first', positiveInt)
    .option('--swap-max <MiB>', 'each guest\'s swap.max: at most this much of it in swap', intArg)
    .option('--script <commands>', 'type these commands at each guest\'s shell prompt')
    .option('--timeout <seconds>', 'give up on guests still running after this many seconds (their exit status 124)', positiveInt)
    .option('--console-dir <dir>', 'write each guest\'s console to DIR/NAME.log instead of the terminal')
    .option('--json', 'print the host and every guest as one JSON object at the end')
    .addOption(choice('--cpu <model>', CPU_OPTION_HELP, CPU_MODEL_NAMES))
    .action(async (o, cmd: Command) => {
      applyCpuOption(o.cpu);
      const { runHost, hostGuests, parseSchedFlags, HostConfigError } = await import('./host.ts');
      let cfg, flags;
      try {
        flags = parseSchedFlags({ sched: o.sched, coSkew: o.coSkew, round: o.roundUs, weight: o.weight, cap: o.cap, guarantee: o.guarantee, pv: o.pv, ple: o.ple });
        cfg = hostGuests({ guests: o.guests, memory: o.memory, smp: o.smp, script: o.script, config: o.config, weight: flags.weight, cap: flags.cap, guarantee: flags.guarantee,
          memoryMax: o.memoryMax, memoryHigh: o.memoryHigh, memoryLow: o.memoryLow, swapMax: o.swapMax });
      } catch (e) {
        if (e instanceof HostConfigError || (e as NodeJS.ErrnoException).code === 'ENOENT') { console.error(`hvlab host: ${(e as Error).message}`); status = 2; return; }
        throw e;
      }
      const mmu = cfg.host.mmu ?? o.mmu;
      if (mmu !== 'ept' && mmu !== 'shadow') cmd.error(`error: the host's mmu must be ept or shadow (got ${mmu}): a host of many guests maps each through its own gpa -> hpa table`);
      for (const g of cfg.guests) if (!(g.smp >= 1 && g.smp <= 4)) cmd.error(`error: guest ${g.name}: smp must be 1 to 4 (got ${g.smp})`);
      const r = await runHost({
        guests: cfg.guests, hostMemory: cfg.host.memory ?? o.hostMemory, hostCpus: cfg.host.cpus ?? o.hostCpus, mmu,
        timeout: o.timeout ?? (o.script !== undefined || o.config ? 600 : undefined), json: o.json, consoleDir: o.consoleDir,
        sched: { ...flags.sched, ...cfg.sched }, groups: cfg.groups, pv: flags.pv, ple: flags.ple, swap: o.swap ?? cfg.host.swap, reclaim: cfg.host.reclaim,
      });
      status = r.status;
    });

  try {
    await program.parseAsync(argv);
  } catch (e) {
    // Commander has printed its message (or the help, or the version) already.
    if (e instanceof CommanderError) return e.exitCode;
    throw e;
  }
  return status;
}
