// Disks of the PC: `--drive file=F[,format=raw|qcow2][,readonly=on]` becomes a virtio-blk PCI
// function (emu/devices/virtio/) over an image (emu/hv/storage/). Like PC firmware, the machine
// assigns the function's BAR and interrupt line before the guest runs: INTx goes to PCI_INTX_GSI
// (PIC and IOAPIC pin 11, as the DSDT's _PRT says), the BAR to the 0xFEB00000 window.
import { WiredIrq } from '../devices/irq.ts';
import { PCI_INTX_GSI } from '../devices/pci/chipset.ts';
import { LATENCY_BUCKETS, VirtioBlk, type BlkRequestKind } from '../devices/virtio/blk.ts';
import { VirtioPciFunction, VIRTIO_PCI_BAR_INDEX, VIRTIO_PCI_BAR_SIZE } from '../devices/virtio/pci-transport.ts';
import { WasmDma } from '../devices/virtio/wasm-dma.ts';
import { openImage } from '../hv/storage/open.ts';
import type { BlockImage } from '../hv/storage/block-image.ts';
import type { Machine } from './machine.ts';

export interface DriveOption { file: string; format?: 'raw' | 'qcow2'; readOnly?: boolean }

/** Parse QEMU-style `file=F,format=qcow2,readonly=on`. */
export function parseDrive(spec: string): DriveOption {
  const d: DriveOption = { file: '' };
  for (const part of spec.split(',')) {
    const eq = part.indexOf('=');
    const key = eq < 0 ? 'file' : part.slice(0, eq), value = eq < 0 ? part : part.slice(eq + 1);
    if (key === 'file') d.file = value;
    else if (key === 'format') {
      if (value !== 'raw' && value !== 'qcow2') throw new Error(`--drive: format must be raw or qcow2 (got ${value})`);
      d.format = value;
    } else if (key === 'readonly') d.readOnly = value === 'on' || value === 'true';
    else throw new Error(`--drive: unknown option ${key}`);
  }
  if (!d.file) throw new Error(`--drive needs file=PATH (got "${spec}")`);
  return d;
}

const BAR_WINDOW = 0xfeb00000;
const FIRST_SLOT = 3;

export interface AttachedDrive { option: DriveOption; image: BlockImage; blk: VirtioBlk; fn: VirtioPciFunction }

export function attachDrive(m: Machine, drive: DriveOption, index: number): AttachedDrive {
  const image = openImage(drive.file, { format: drive.format, readOnly: drive.readOnly });
  const memory = new WasmDma(m.vm);
  const blk = new VirtioBlk(image, { serial: `hvlab-disk${index}` });
  const fn = new VirtioPciFunction(`virtio-blk${index}`, blk, memory);
  fn.irq = new WiredIrq([{ sink: m.pic, line: PCI_INTX_GSI }, { sink: m.ioapic, line: PCI_INTX_GSI, activeLow: true }]);
  fn.onBarChange = (i, address) => {
    if (i !== VIRTIO_PCI_BAR_INDEX) return;
    m.mmio.unregister(fn);
    if (address !== null) m.mmio.register(address, VIRTIO_PCI_BAR_SIZE, fn);
  };
  m.pci.addFunction(FIRST_SLOT + index, 0, fn);
  // What firmware does: the BAR address, memory decoding and bus mastering, the interrupt line.
  const bar = BAR_WINDOW + index * VIRTIO_PCI_BAR_SIZE;
  fn.configWrite(0x10 + 4 * VIRTIO_PCI_BAR_INDEX, 4, bar);
  fn.configWrite(0x14 + 4 * VIRTIO_PCI_BAR_INDEX, 4, 0);
  fn.configWrite(0x3c, 1, PCI_INTX_GSI);
  fn.configWrite(0x04, 2, 0x0006);
  return { option: drive, image, blk, fn };
}

const KIND_LABELS: Record<BlkRequestKind, string> = {
  read: 'read', write: 'write', flush: 'flush', discard: 'discard', writeZeroes: 'write-zeroes', getId: 'get-id', unsupported: 'unsupported',
};

function formatBytes(n: number): string {
  return n >= 1 << 20 ? `${(n / 2 ** 20).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`;
}

/** Per-drive I/O accounting for `hvlab boot --stats`: operations, bytes and errors by request type,
 *  malformed requests, and a histogram of host service time per request (powers of two in µs). */
export function driveStatsReport(drives: readonly AttachedDrive[]): string {
  const lines: string[] = [];
  drives.forEach((d, i) => {
    lines.push(`drive ${i} (${d.option.file}, ${d.image.format}${d.image.readOnly ? ', read-only' : ''}, vd${String.fromCharCode(97 + i)}):`);
    for (const [kind, label] of Object.entries(KIND_LABELS) as Array<[BlkRequestKind, string]>) {
      const s = d.blk.stats[kind];
      if (s.operations) lines.push(`  ${label.padEnd(12)} ${String(s.operations).padStart(8)} ops ${formatBytes(s.bytes).padStart(11)}${s.errors ? `  ${s.errors} errors` : ''}`);
    }
    lines.push(`  malformed    ${String(d.blk.malformedCount).padStart(8)}`);
    const h = d.blk.latencyHistogram;
    const used = h.map((n, b) => [n, b] as const).filter(([n]) => n > 0);
    if (used.length) {
      lines.push('  host service time per request:');
      for (const [n, b] of used) {
        const range = b === 0 ? '< 1 µs' : b === LATENCY_BUCKETS - 1 ? `>= ${2 ** (b - 1)} µs` : `${2 ** (b - 1)}-${2 ** b} µs`;
        lines.push(`    ${range.padEnd(18)} ${String(n).padStart(8)}`);
      }
    }
  });
  return lines.join('\n') + '\n';
}
