// Opens a disk image by path: the format comes from the caller or from the qcow2 magic, and
// qcow2 backing files are opened (read-only) relative to the directory of the image naming them.
import { closeSync, existsSync, openSync, realpathSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { type BlockImage, ImageError, readAt } from './block-image.ts';
import { Qcow2Image } from './qcow2.ts';
import { RawImage } from './raw.ts';

export type ImageFormat = 'raw' | 'qcow2';

export interface OpenImageOptions {
  /** Skips detection (a raw image whose first bytes happen to be the qcow2 magic stays raw). */
  format?: ImageFormat;
  readOnly?: boolean;
  /** Opens the image's direct backing file for writing (for Qcow2Image.commit). */
  backingWritable?: boolean;
  /** Opens only this image, not its backing file (read-only; unallocated clusters then read as zeros). */
  noBacking?: boolean;
}

const QCOW2_MAGIC = [0x51, 0x46, 0x49, 0xfb];

export function detectFormat(path: string): ImageFormat {
  let fd: number;
  try { fd = openSync(path, 'r'); } catch (e) { throw new ImageError(path, `cannot open image: ${(e as Error).message}`); }
  try {
    const magic = new Uint8Array(4);
    readAt(fd, magic, 0);
    return magic.every((byte, i) => byte === QCOW2_MAGIC[i]) ? 'qcow2' : 'raw';
  } finally { closeSync(fd); }
}

export function openImage(path: string, options: OpenImageOptions = {}): BlockImage {
  if (options.noBacking) {
    if (!existsSync(path)) throw new ImageError(path, 'image file does not exist');
    const format = options.format ?? detectFormat(path);
    return format === 'raw' ? RawImage.open(path, { readOnly: true }) : Qcow2Image.open(path, { readOnly: true, ignoreBacking: true });
  }
  return openInChain(path, options.format, options.readOnly ?? false, options.backingWritable ?? false, []);
}

/** Where a backing file named `name` in the header of `imagePath` is: relative names are relative to the
 *  image's directory (as QEMU's path_combine; the result stays relative when `imagePath` is). */
export function backingPath(imagePath: string, name: string): string {
  return isAbsolute(name) ? name : join(dirname(imagePath), name);
}

function openInChain(path: string, format: ImageFormat | undefined, readOnly: boolean, backingWritable: boolean, chain: string[]): BlockImage {
  if (!existsSync(path)) {
    throw chain.length === 0 ? new ImageError(path, 'image file does not exist')
      : new ImageError(chain[chain.length - 1], `backing file '${path}' does not exist`);
  }
  const real = realpathSync(path);
  if (chain.includes(real)) throw new ImageError(chain[0], `backing file loop: ${[...chain, real].join(' -> ')}`);
  const actualFormat = format ?? detectFormat(path);
  if (actualFormat === 'raw') return RawImage.open(path, { readOnly });
  return Qcow2Image.open(path, {
    readOnly,
    openBacking: (name, backingFormat) => {
      if (backingFormat !== null && backingFormat !== 'raw' && backingFormat !== 'qcow2')
        throw new ImageError(path, `unsupported backing file format '${backingFormat}' (backing file '${name}')`);
      return openInChain(backingPath(path, name), backingFormat ?? undefined, !backingWritable, false, [...chain, real]);
    },
  });
}
