// `hvlab bench blk`: block I/O as the guest sees it and the data path alone.
// - Inside the bundled guest: busybox `dd` with O_DIRECT on /dev/vda — sequential write and read of
//   SEQ_MIB MiB in 1 MiB blocks, then RANDOM_OPS random 4 KiB writes and reads (one dd process each,
//   so these figures include process start-up, in QEMU's run as in ours) — on a raw and a qcow2 image,
//   timed on the host's clock between markers the guest prints. When qemu-system-x86_64 is
//   installed, QEMU TCG runs the same kernel, initramfs, script and image format in the same run.
// - The data path alone: copying a 256 KiB request of 64 scattered 4 KiB guest buffers into the
//   staging buffer and back, by the WebAssembly core (wasm/blk) and by the plain TypeScript reference
//   (emu/devices/virtio/reference-dma.ts), with the `benchmark` package.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Benchmark from 'benchmark';
import { boot, BUNDLED_INITRD, BUNDLED_KERNEL, DEFAULT_CMDLINE, SHELL_PROMPT } from '../emu/cli/boot.ts';
import { Host } from '../emu/machine/host.ts';
import { WasmDma } from '../emu/devices/virtio/wasm-dma.ts';
import { ReferenceDma } from '../emu/devices/virtio/reference-dma.ts';
import type { GuestDma } from '../emu/devices/virtio/virtqueue.ts';
import { createQcow2 } from '../emu/hv/storage/qcow2.ts';

const SEQ_MIB = 32;
const RANDOM_OPS = 64;
const DISK_MIB = 64;
const PHASES = ['seq-write', 'seq-read', 'rand-write', 'rand-read'] as const;
type Phase = (typeof PHASES)[number];

/** The guest script: each phase starts with a marker line `@@<phase>` printed by printf (so the typed
 *  command's echo never matches), the last with `@@end`. Random offsets: a multiplicative hash of i. */
function guestScript(): string {
  const mark = (name: string) => `printf '@@%s\\n' ${name}`;
  const loop = (dd: string) => `i=0; while [ $i -lt ${RANDOM_OPS} ]; do ${dd}; i=$((i+1)); done`;
  const blocks = DISK_MIB * 256;
  const at = `$(( (i * 40503 + 17) % ${blocks} ))`;
  return [
    mark('seq-write'), `dd if=/dev/zero of=/dev/vda bs=1M count=${SEQ_MIB} oflag=direct 2>/dev/null`,
    mark('seq-read'), `dd if=/dev/vda of=/dev/null bs=1M count=${SEQ_MIB} iflag=direct 2>/dev/null`,
    mark('rand-write'), loop(`dd if=/dev/zero of=/dev/vda bs=4k count=1 seek=${at} oflag=direct conv=notrunc 2>/dev/null`),
    mark('rand-read'), loop(`dd if=/dev/vda of=/dev/null bs=4k count=1 skip=${at} iflag=direct 2>/dev/null`),
    mark('end'), 'poweroff -f',
  ].join('; ');
}

const PHASE_BYTES: Record<Phase, number> = {
  'seq-write': SEQ_MIB << 20, 'seq-read': SEQ_MIB << 20, 'rand-write': RANDOM_OPS * 4096, 'rand-read': RANDOM_OPS * 4096,
};

/** Watches console output for the markers and stamps each with the host clock. */
class MarkerClock {
  private text = '';
  readonly at = new Map<string, bigint>();
  feed(chunk: string): void {
    this.text = (this.text + chunk).slice(-4096);
    for (const m of this.text.matchAll(/@@([a-z-]+)\r?\n/g)) if (!this.at.has(m[1])) this.at.set(m[1], process.hrtime.bigint());
  }
  get done(): boolean { return this.at.has('end'); }
  figures(): PhaseFigures {
    const out = {} as PhaseFigures;
    const names = [...PHASES, 'end'];
    PHASES.forEach((p, i) => {
      const t0 = this.at.get(p), t1 = this.at.get(names[i + 1]);
      if (t0 === undefined || t1 === undefined) throw new Error(`bench blk: the guest never printed the ${p} markers`);
      const seconds = Number(t1 - t0) / 1e9;
      out[p] = { seconds, mib_per_s: PHASE_BYTES[p] / 2 ** 20 / seconds, ops_per_s: p.startsWith('rand') ? RANDOM_OPS / seconds : null };
    });
    return out;
  }
}

export type PhaseFigures = Record<Phase, { seconds: number; mib_per_s: number; ops_per_s: number | null }>;
export interface BlkBenchRow { format: 'raw' | 'qcow2'; hvlab: PhaseFigures; qemu: PhaseFigures | null; ratio: Record<Phase, number> | null }
export interface BlkBenchResult {
  guest: BlkBenchRow[];
  datapath: { request_bytes: number; wasm_gb_per_s: number; typescript_gb_per_s: number; ratio: number };
}

async function hvlabRun(image: string, format: 'raw' | 'qcow2'): Promise<PhaseFigures> {
  const clock = new MarkerClock();
  let tail = '';
  const status = await boot({ memory: 256, drives: [`file=${image},format=${format}`], script: guestScript(), timeout: 1800 }, {
    out: (b) => { const s = Buffer.from(b).toString('latin1'); clock.feed(s); tail = (tail + s).slice(-2000); },
    err: (s) => { tail += s; },
  });
  if (status !== 0 || !clock.done) throw new Error(`bench blk: the hvlab guest run failed (status ${status}):\n${tail}`);
  return clock.figures();
}

function qemuInstalled(): boolean { return spawnSync('qemu-system-x86_64', ['--version']).status === 0; }

function qemuRun(image: string, format: 'raw' | 'qcow2', timeoutSeconds = 1800): Promise<PhaseFigures> {
  return new Promise((resolve, reject) => {
    const q = spawn('qemu-system-x86_64', ['-accel', 'tcg', '-m', '256', '-nographic', '-no-reboot', '-nodefaults',
      '-serial', 'stdio', '-kernel', BUNDLED_KERNEL, '-initrd', BUNDLED_INITRD, '-append', DEFAULT_CMDLINE,
      '-drive', `file=${image},format=${format},if=virtio,cache=writeback`]);
    const clock = new MarkerClock();
    let text = '', typed = false;
    const timer = setTimeout(() => { q.kill('SIGKILL'); reject(new Error('bench blk: QEMU did not finish the script')); }, timeoutSeconds * 1000);
    q.stdout.on('data', (d: Buffer) => {
      const s = d.toString('latin1');
      clock.feed(s);
      text = (text + s).slice(-4096);
      if (!typed && text.includes(SHELL_PROMPT)) { typed = true; q.stdin.write(`${guestScript()}\n`); }
      if (clock.done) { clearTimeout(timer); q.kill('SIGKILL'); resolve(clock.figures()); }
    });
    q.on('error', (e) => { clearTimeout(timer); reject(e); });
    q.on('exit', () => { clearTimeout(timer); if (!clock.done) reject(new Error(`bench blk: QEMU exited early:\n${text}`)); });
  });
}

/** Bytes per second of one engine gathering and scattering a 64-buffer request. */
function measureDataPath(engine: GuestDma, tableGpa: number, bufferCount: number, requestBytes: number): Promise<number> {
  return new Promise((resolve) => {
    const chain = engine.walkChain(tableGpa, bufferCount, 0, false);
    if (chain.fault || chain.writable.length !== bufferCount) throw new Error(`bench blk: the benchmark chain is malformed (${chain.fault})`);
    const bench = new Benchmark('copy', () => {
      engine.gather(0, bufferCount, 0, requestBytes);
      engine.scatter(0, bufferCount, 0, requestBytes);
    }, { minSamples: 20, maxTime: 2 });
    bench.on('complete', () => resolve(bench.hz * 2 * requestBytes)); // a gather and a scatter per iteration
    bench.run();
  });
}

export async function benchDataPath(): Promise<BlkBenchResult['datapath']> {
  const BUFFERS = 64, BUFFER = 4096, TABLE = 0x1000, DATA = 0x100000, RAM = 16 << 20;
  const host = new Host({ ramBytes: RAM });
  const ram = host.ram();
  // One chain of 64 device-writable 4 KiB buffers, every other page (scattered like a page cache).
  const view = new DataView(ram.buffer, ram.byteOffset + TABLE, 16 * BUFFERS);
  for (let i = 0; i < BUFFERS; i++) {
    view.setBigUint64(16 * i, BigInt(DATA + 2 * i * BUFFER), true);
    view.setUint32(16 * i + 8, BUFFER, true);
    view.setUint16(16 * i + 12, 2 | (i < BUFFERS - 1 ? 1 : 0), true);
    view.setUint16(16 * i + 14, i + 1, true);
  }
  for (let i = 0; i < ram.length; i += 4096) ram[i] = i >> 12;
  const requestBytes = BUFFERS * BUFFER;
  const wasm = await measureDataPath(new WasmDma(host), TABLE, BUFFERS, requestBytes);
  // The reference over the same bytes through a plain GuestMemory, as a TypeScript device would do.
  const plain = new ReferenceDma({ size: RAM, read: (gpa, n) => ram.slice(gpa, gpa + n), write: (gpa, data) => ram.set(data, gpa) });
  const ts = await measureDataPath(plain, TABLE, BUFFERS, requestBytes);
  return { request_bytes: requestBytes, wasm_gb_per_s: wasm / 1e9, typescript_gb_per_s: ts / 1e9, ratio: wasm / ts };
}

export async function benchBlk(opts: { qemu?: boolean; formats?: Array<'raw' | 'qcow2'> } = {}): Promise<BlkBenchResult> {
  const dir = mkdtempSync(join(tmpdir(), 'hvlab-bench-blk-'));
  const withQemu = opts.qemu !== false && qemuInstalled();
  const guest: BlkBenchRow[] = [];
  try {
    for (const format of opts.formats ?? ['raw', 'qcow2'] as const) {
      const fresh = (name: string) => {
        const file = join(dir, `${name}.${format}`);
        if (format === 'qcow2') createQcow2(file, DISK_MIB << 20);
        else { writeFileSync(file, Buffer.alloc(0)); truncateSync(file, DISK_MIB << 20); } // sparse
        return file;
      };
      const hvlab = await hvlabRun(fresh('hvlab'), format);
      const qemu = withQemu ? await qemuRun(fresh('qemu'), format) : null;
      const ratio = qemu ? Object.fromEntries(PHASES.map((p) => [p, hvlab[p].seconds / qemu[p].seconds])) as Record<Phase, number> : null;
      guest.push({ format, hvlab, qemu, ratio });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { guest, datapath: await benchDataPath() };
}

export { PHASES as BLK_PHASES };
