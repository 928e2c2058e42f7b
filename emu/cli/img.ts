// `hvlab img`: disk image utilities in qemu-img's words (create, info, commit), over emu/hv/storage.
// Each command returns the exit status; every failure is one line on stderr (no stack trace), as
// `qemu-img` reports them.
import { closeSync, ftruncateSync, openSync, realpathSync, statSync, truncateSync } from 'node:fs';
import { type BlockImage, ImageError } from '../hv/storage/block-image.ts';
import { type ImageFormat, backingPath, detectFormat, openImage } from '../hv/storage/open.ts';
import { Qcow2Image, createQcow2 } from '../hv/storage/qcow2.ts';
import { lockImage } from '../hv/storage/image-lock.ts';

const FORMATS: readonly ImageFormat[] = ['raw', 'qcow2'];
const DEFAULT_CLUSTER_SIZE = 65536;

/** A user error: reported as one line, like an ImageError. */
class UsageError extends Error {}

function run(command: string, body: () => void): number {
  try {
    body();
    return 0;
  } catch (e) {
    // Every failure, expected or not, is one line: the message, never the stack.
    const message = e instanceof Error ? e.message : String(e);
    console.error(`hvlab img ${command}: ${message}`);
    return 1;
  }
}

function imageFormat(value: string | undefined, what: string): ImageFormat | undefined {
  if (value === undefined) return undefined;
  if (!(FORMATS as readonly string[]).includes(value)) throw new UsageError(`unknown ${what} '${value}' (raw or qcow2)`);
  return value as ImageFormat;
}

const SIZE_SUFFIXES = 'bkmgtpe';

/** A size as qemu-img takes it (qemu_strtosz): bytes, or with a k/M/G/T/P/E suffix (powers of 1024),
 *  where a decimal fraction is allowed (1.5G). The result must fit a JavaScript safe integer. */
export function parseSize(text: string): number {
  const m = /^(\d+)(?:\.(\d+))?([bkmgtpe])?$/i.exec(text.trim());
  const invalid = () => new UsageError(`invalid size '${text}' (bytes, or a number with a k, M, G, T, P or E suffix)`);
  if (!m) throw invalid();
  const unit = 1024 ** SIZE_SUFFIXES.indexOf((m[3] ?? 'b').toLowerCase());
  if (m[2] !== undefined && unit === 1) throw invalid(); // qemu_strtosz: a fraction needs a unit
  const size = Number(m[1]) * unit + Math.floor(Number(`0.${m[2] ?? '0'}`) * unit);
  if (!Number.isSafeInteger(size)) throw new UsageError(`size '${text}' is too large (at most ${Number.MAX_SAFE_INTEGER} bytes)`);
  return size;
}

/** `-o key=value,...`: the qemu-img creation options hvlab implements (cluster_size for qcow2). */
function creationOptions(text: string | undefined, format: ImageFormat): { clusterBits?: number } {
  const result: { clusterBits?: number } = {};
  for (const item of (text ?? '').split(',').filter(Boolean)) {
    const eq = item.indexOf('=');
    const key = eq < 0 ? item : item.slice(0, eq), value = eq < 0 ? '' : item.slice(eq + 1);
    if (key === 'cluster_size' && format === 'qcow2') {
      const size = parseSize(value);
      const bits = Math.log2(size);
      if (!Number.isInteger(bits) || bits < 9 || bits > 21) throw new UsageError(`cluster_size ${value} must be a power of two between 512 and 2M`);
      result.clusterBits = bits;
    } else throw new UsageError(`unsupported option '${key}' for format '${format}'`);
  }
  return result;
}

export interface CreateOptions { format?: string; backing?: string; backingFormat?: string; options?: string }

export function imgCreate(file: string, sizeText: string | undefined, o: CreateOptions): number {
  return run('create', () => {
    const format = imageFormat(o.format, 'format') ?? 'raw';
    const backingFormat = imageFormat(o.backingFormat, 'backing format');
    const { clusterBits } = creationOptions(o.options, format);
    let size = sizeText === undefined ? undefined : parseSize(sizeText);
    if (o.backing !== undefined) {
      if (format === 'raw') throw new UsageError(`${file}: backing file not supported for file format 'raw'`);
      // qemu-img >= 6.1 refuses to guess: probing a raw backing file is unsafe.
      if (backingFormat === undefined) throw new UsageError(`${file}: backing file specified without backing format (-F raw|qcow2)`);
      // The name is stored as given and resolved against the new image's directory (as QEMU opens it).
      let base: BlockImage;
      try { base = openImage(backingPath(file, o.backing), { format: backingFormat, readOnly: true }); } catch (e) {
        throw new ImageError(file, `could not open backing file: ${(e as Error).message}`);
      }
      try { size ??= base.size; } finally { base.close(); }
    } else if (backingFormat !== undefined) throw new UsageError('-F needs a backing file (-b)');
    if (size === undefined) throw new UsageError(`${file}: image creation needs a size parameter`);

    if (format === 'raw') {
      const fd = openSync(file, 'w'); // like QEMU's raw driver: the file is cleared, then sized (sparse)
      try { ftruncateSync(fd, size); } finally { closeSync(fd); }
      console.log(`Formatting '${file}', fmt=raw size=${size}`);
      return;
    }
    createQcow2(file, size, { backingFile: o.backing, backingFormat, clusterBits });
    const backingText = o.backing === undefined ? '' : ` backing_file=${o.backing} backing_fmt=${backingFormat}`;
    console.log(`Formatting '${file}', fmt=qcow2 cluster_size=${2 ** (clusterBits ?? 16)} extended_l2=off compression_type=zlib size=${size}${backingText} lazy_refcounts=off refcount_bits=16`);
  });
}

/** One image as `qemu-img info --output json` describes it (same field names). */
export interface ImageInfo {
  'virtual-size': number;
  filename: string;
  'cluster-size'?: number;
  format: ImageFormat;
  'actual-size': number;
  'format-specific'?: { type: 'qcow2'; data: Record<string, string | number | boolean> };
  'full-backing-filename'?: string;
  'backing-filename'?: string;
  'backing-filename-format'?: string;
  'dirty-flag': boolean;
}

export function imageInfo(file: string, format?: ImageFormat): ImageInfo {
  const image = openImage(file, { format, noBacking: true });
  try {
    const info: ImageInfo = { 'virtual-size': image.size, filename: file, format: image.format, 'actual-size': statSync(file).blocks * 512, 'dirty-flag': false };
    if (image instanceof Qcow2Image) {
      const h = image.header;
      info['cluster-size'] = image.clusterSize;
      // Spec "Header": version 2 is compat 0.10, version 3 compat 1.1; incompatible bit 0 is the dirty
      // bit, bit 1 the corrupt bit; compatible bit 0 is lazy refcounts.
      const data: Record<string, string | number | boolean> = { compat: h.version === 2 ? '0.10' : '1.1', 'compression-type': 'zlib' };
      if (h.version >= 3) data['lazy-refcounts'] = (h.compatibleFeatures & 1n) !== 0n;
      data['refcount-bits'] = 2 ** h.refcountOrder;
      if (h.version >= 3) Object.assign(data, { corrupt: (h.incompatibleFeatures & 2n) !== 0n, 'extended-l2': false });
      info['format-specific'] = { type: 'qcow2', data };
      if (h.backingFile !== null) {
        info['full-backing-filename'] = backingPath(file, h.backingFile);
        info['backing-filename'] = h.backingFile;
        if (h.backingFormat !== null) info['backing-filename-format'] = h.backingFormat;
      }
      info['dirty-flag'] = (h.incompatibleFeatures & 1n) !== 0n;
    }
    return info;
  } finally { image.close(); }
}

/** The image and, with `chain`, every backing file under it (an error for a missing one or a loop). */
export function imageInfoChain(file: string, format: ImageFormat | undefined, chain: boolean): ImageInfo[] {
  const infos = [imageInfo(file, format)];
  const seen = [realpathSync(file)];
  for (let top = infos[0]; chain && top['full-backing-filename'] !== undefined;) {
    const next = top['full-backing-filename'];
    let real: string;
    try { real = realpathSync(next); } catch { throw new ImageError(top.filename, `could not open backing file '${next}': no such file`); }
    if (seen.includes(real)) throw new ImageError(file, `backing file loop: ${[...seen, real].join(' -> ')}`);
    seen.push(real);
    top = imageInfo(next, imageFormat(top['backing-filename-format'], 'backing format') ?? detectFormat(next));
    infos.push(top);
  }
  return infos;
}

/** QEMU's size_to_str: three significant digits in the binary unit that keeps the number below 1000. */
export function humanSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
  let i = 0;
  while (i < units.length - 1 && bytes * 1.024 >= 1024 ** (i + 1)) i++;
  return `${Number((bytes / 1024 ** i).toPrecision(3))} ${units[i]}`;
}

/** The human-readable `qemu-img info` text of one image. */
export function formatInfo(info: ImageInfo): string {
  const lines = [
    `image: ${info.filename}`,
    `file format: ${info.format}`,
    `virtual size: ${humanSize(info['virtual-size'])} (${info['virtual-size']} bytes)`,
    `disk size: ${humanSize(info['actual-size'])}`,
  ];
  if (info['cluster-size'] !== undefined) lines.push(`cluster_size: ${info['cluster-size']}`);
  if (info['backing-filename'] !== undefined) {
    const full = info['full-backing-filename'];
    lines.push(`backing file: ${info['backing-filename']}${full !== info['backing-filename'] ? ` (actual path: ${full})` : ''}`);
    if (info['backing-filename-format'] !== undefined) lines.push(`backing file format: ${info['backing-filename-format']}`);
  }
  if (info['dirty-flag']) lines.push('cleanly shut down: no');
  if (info['format-specific']) {
    lines.push('Format specific information:');
    for (const [key, value] of Object.entries(info['format-specific'].data)) lines.push(`    ${key.replace(/-/g, ' ')}: ${value}`);
  }
  return lines.join('\n');
}

export interface InfoOptions { format?: string; backingChain?: boolean; output?: string }

export function imgInfo(file: string, o: InfoOptions): number {
  return run('info', () => {
    const output = o.output ?? 'human';
    if (output !== 'human' && output !== 'json') throw new UsageError(`--output must be human or json (got ${output})`);
    const infos = imageInfoChain(file, imageFormat(o.format, 'format'), o.backingChain ?? false);
    if (output === 'json') console.log(JSON.stringify(o.backingChain ? infos : infos[0], null, 4));
    else console.log(infos.map(formatInfo).join('\n\n'));
  });
}

export interface CommitOptions { format?: string; keep?: boolean }

/** Writes the overlay's allocated clusters into its backing file, then (unless `keep`, qemu-img's -d)
 *  empties the overlay. As qemu-img does, a raw backing file smaller than the overlay is grown first. */
export function imgCommit(file: string, o: CommitOptions): number {
  return run('commit', () => {
    const format = imageFormat(o.format, 'format');
    const top = imageInfo(file, format);
    const basePath = top['full-backing-filename'];
    if (basePath === undefined) throw new ImageError(file, 'image does not have a backing file');
    const baseInfo = imageInfo(basePath, imageFormat(top['backing-filename-format'], 'backing format') ?? detectFormat(basePath));
    if (baseInfo['virtual-size'] < top['virtual-size']) {
      if (baseInfo.format !== 'raw') throw new ImageError(basePath, `backing file (${baseInfo['virtual-size']} bytes) is smaller than the image (${top['virtual-size']} bytes); growing a qcow2 backing file is not supported`);
      truncateSync(basePath, top['virtual-size']);
    }
    // A running guest may hold either image: writing under it would corrupt what it caches (QEMU
    // refuses the same way; the message is its wording).
    const locks = [lockImage(file, o.keep ? 'read' : 'write')];
    let image: BlockImage | null = null;
    try {
      locks.push(lockImage(basePath, 'write'));
      image = openImage(file, { format, readOnly: o.keep ?? false, backingWritable: true });
      if (!(image instanceof Qcow2Image)) throw new ImageError(file, 'image does not have a backing file');
      image.commit(); // ends with a flush of the backing file: the data is durable there before the overlay is emptied
      if (!o.keep) image.makeEmpty();
    } finally {
      image?.close();
      for (const l of locks) l.release();
    }
    console.log('Image committed.');
  });
}
