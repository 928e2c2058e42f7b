// The block-device contract the virtual disks (virtio-blk, AHCI, ...) sit on: a synchronous image of
// `size` virtual bytes addressed in 512-byte sectors, backed by a host file (raw or qcow2) and
// optionally by a read-only backing image (a chain of overlays).
import { fstatSync, readSync } from 'node:fs';

export const SECTOR_SIZE = 512;

export interface BlockImage {
  /** The host file, as it was given when opening (backing files: joined to the overlay's directory). */
  readonly path: string;
  /** Virtual size in bytes (a multiple of 512). */
  readonly size: number;
  readonly format: 'raw' | 'qcow2';
  readonly readOnly: boolean;
  /** The image unallocated ranges read through to, or null. */
  readonly backing: BlockImage | null;
  read(offset: number, length: number): Uint8Array;
  /** Read `out.length` bytes at `offset` into `out` (the block data path's staging memory). */
  readInto(offset: number, out: Uint8Array): void;
  write(offset: number, data: Uint8Array): void;
  /** After this, the range reads as zeros. */
  writeZeroes(offset: number, length: number): void;
  /** Hint that the range is unused: whole clusters are deallocated and then read as zeros. */
  discard(offset: number, length: number): void;
  /** Makes every completed write durable (fsync). */
  flush(): void;
  /** Closes the image and its backing chain. */
  close(): void;
}

/** A corrupt, truncated or unsupported image, or a problem in its backing chain. */
export class ImageError extends Error {
  constructor(readonly path: string, message: string) {
    super(`${path}: ${message}`);
    this.name = 'ImageError';
  }
}

/** Throws unless [offset, offset+length) is sector aligned and inside an image of `size` bytes. */
export function checkRange(op: string, offset: number, length: number, size: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0)
    throw new RangeError(`${op}: invalid offset ${offset} / length ${length}`);
  if (offset % SECTOR_SIZE !== 0 || length % SECTOR_SIZE !== 0)
    throw new RangeError(`${op}: offset ${offset} and length ${length} must be multiples of ${SECTOR_SIZE}`);
  if (offset + length > size)
    throw new RangeError(`${op}: range ${offset}+${length} is beyond the image size ${size}`);
}

/** Reads `length` bytes at `position`; bytes past the end of the file read as zeros. Returns the count read from the file. */
export function readAt(fd: number, buffer: Uint8Array, position: number): number {
  let done = 0;
  while (done < buffer.length) {
    const n = readSync(fd, buffer, done, buffer.length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  buffer.fill(0, done);
  return done;
}

export function fileSize(fd: number): number { return fstatSync(fd).size; }

export function roundUp(value: number, multiple: number): number { return Math.ceil(value / multiple) * multiple; }
