// Raw disk image: the file's bytes are the disk's bytes. A file whose length is not a multiple of
// 512 is rounded up (the tail reads as zeros), as QEMU's block layer does.
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { type BlockImage, ImageError, SECTOR_SIZE, checkRange, fileSize, readAt, roundUp } from './block-image.ts';

const ZERO_CHUNK = 1 << 20;

export class RawImage implements BlockImage {
  readonly format = 'raw' as const;
  readonly backing = null;
  private fd: number;

  private constructor(readonly path: string, fd: number, readonly size: number, readonly readOnly: boolean) { this.fd = fd; }

  static open(path: string, options: { readOnly?: boolean } = {}): RawImage {
    const readOnly = options.readOnly ?? false;
    let fd: number;
    try { fd = openSync(path, readOnly ? 'r' : 'r+'); } catch (e) {
      throw new ImageError(path, `cannot open raw image: ${(e as Error).message}`);
    }
    return new RawImage(path, fd, roundUp(fileSize(fd), SECTOR_SIZE), readOnly);
  }

  read(offset: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    this.readInto(offset, out);
    return out;
  }

  readInto(offset: number, out: Uint8Array): void {
    checkRange('read', offset, out.length, this.size);
    readAt(this.fd, out, offset);
  }

  write(offset: number, data: Uint8Array): void {
    this.checkWritable('write');
    checkRange('write', offset, data.length, this.size);
    let done = 0;
    while (done < data.length) done += writeSync(this.fd, data, done, data.length - done, offset + done);
  }

  writeZeroes(offset: number, length: number): void {
    this.checkWritable('writeZeroes');
    checkRange('writeZeroes', offset, length, this.size);
    const zeros = new Uint8Array(Math.min(length, ZERO_CHUNK));
    for (let pos = offset; pos < offset + length; pos += zeros.length)
      this.write(pos, zeros.subarray(0, Math.min(zeros.length, offset + length - pos)));
  }

  /** Node offers no hole punching (fallocate), so discarded ranges are overwritten with zeros. */
  discard(offset: number, length: number): void { this.writeZeroes(offset, length); }

  flush(): void { if (!this.readOnly) fsyncSync(this.fd); }

  close(): void {
    if (this.fd < 0) return;
    closeSync(this.fd);
    this.fd = -1;
  }

  private checkWritable(op: string): void {
    if (this.readOnly) throw new ImageError(this.path, `${op}: image is open read-only`);
  }
}
