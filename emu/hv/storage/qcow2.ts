// QCOW2 (QEMU copy-on-write v2/v3) disk images, after QEMU docs/interop/qcow2.txt ("the spec").
// The guest disk is split in clusters of 2^cluster_bits bytes; a two-level table (L1 -> L2) maps
// each guest cluster to a host cluster, and every host cluster carries a 16-bit reference count
// (refcount_order 4) in refcount blocks listed by the refcount table. New clusters are appended at
// the end of the file (past any cluster with a refcount: freed clusters are not reused).
//
// Durability. Guest data goes straight to the file; metadata (refcount blocks and table, L2 tables,
// L1 table) is changed in memory and written back in dependency order by flush() (and when too many
// tables are dirty), with an fsync between the levels so that the page cache cannot reorder them on
// the way to the disk:
//   data + refcount blocks (increments only) -> fsync -> refcount table -> fsync -> header (when the
//   table moved) -> fsync -> L2 tables -> fsync -> L1 table -> fsync -> refcount decrements.
// So a cluster is never referenced from an L2/L1 entry before its refcount is on the disk (a crash
// leaves clusters whose refcount exceeds their references, i.e. leaks, which qemu-img check -r
// leaks repairs, never a referenced cluster with refcount 0), a copy-on-write cluster's data is on
// the disk before the entry that makes it visible (the parts the guest did not write hold data it
// may have flushed earlier), and a cluster is freed only once no entry on the disk points at it.
// This is what QEMU's qcow2 cache dependencies do (block/qcow2-cache.c, qcow2_cache_set_dependency:
// L2 tables depend on refcount blocks; refcount decreases depend on the L2 tables).
import { closeSync, fsyncSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { inflateRawSync } from 'node:zlib';
import { type BlockImage, ImageError, SECTOR_SIZE, checkRange, fileSize, readAt, roundUp } from './block-image.ts';

const QCOW2_MAGIC = 0x514649fb; // "QFI\xfb"
const V2_HEADER_LENGTH = 72;
const V3_MIN_HEADER_LENGTH = 104;
const V3_HEADER_LENGTH = 112; // with the compression_type byte and padding, as QEMU >= 5.1 writes it
const MAX_BACKING_NAME = 1023;
const SUPPORTED_REFCOUNT_ORDER = 4; // 16-bit refcounts

// Header field offsets (spec "Header").
const H = {
  magic: 0, version: 4, backingFileOffset: 8, backingFileSize: 16, clusterBits: 20, size: 24, cryptMethod: 32,
  l1Size: 36, l1TableOffset: 40, refcountTableOffset: 48, refcountTableClusters: 56, nbSnapshots: 60,
  snapshotsOffset: 64, incompatibleFeatures: 72, compatibleFeatures: 80, autoclearFeatures: 88, refcountOrder: 96,
  headerLength: 100, compressionType: 104,
} as const;

// Incompatible feature bits (spec "Header", bytes 72-79).
const INCOMPAT_DIRTY = 1n << 0n;
const INCOMPAT_CORRUPT = 1n << 1n;
const INCOMPATIBLE_NAMES: Record<number, string> = { 0: 'dirty bit', 1: 'corrupt bit', 2: 'external data file', 3: 'compression type', 4: 'extended L2 entries' };
const KNOWN_INCOMPATIBLE = INCOMPAT_DIRTY | INCOMPAT_CORRUPT;

// Header extension types (spec "Header extensions").
const EXT_END = 0x00000000;
const EXT_BACKING_FORMAT = 0xe2792aca;
const EXT_FEATURE_NAMES = 0x6803f857;
const EXT_ENCRYPTION = 0x0537be77;
const EXT_EXTERNAL_DATA = 0x44415441;

// L1/L2 entry bits (spec "Cluster mapping").
const OFLAG_COPIED = 1n << 63n;       // refcount is exactly 1: may be written in place
const OFLAG_COMPRESSED = 1n << 62n;
const OFLAG_ZERO = 1n;                // v3 standard cluster: reads as zeros
const OFFSET_MASK = 0x00fffffffffffe00n; // bits 9-55

const MAX_CACHED_TABLES = 64;
/** Dirty tables (L2 + refcount blocks) that trigger a write-back between flushes. */
const MAX_DIRTY_TABLES = 64;

export interface Qcow2Header {
  version: number; clusterBits: number; size: number; cryptMethod: number;
  l1Size: number; l1TableOffset: number; refcountTableOffset: number; refcountTableClusters: number;
  nbSnapshots: number; incompatibleFeatures: bigint; compatibleFeatures: bigint; autoclearFeatures: bigint;
  refcountOrder: number; headerLength: number; backingFile: string | null; backingFormat: string | null;
}

type ClusterKind =
  | { kind: 'unallocated' }
  | { kind: 'zero'; host: number }           // host is 0 unless preallocated
  | { kind: 'normal'; host: number; copied: boolean }
  | { kind: 'compressed'; host: number; sectors: number };

export interface Qcow2OpenOptions {
  readOnly?: boolean;
  /** Opens the backing file named in the header (name as stored, format from the header extension or null). */
  openBacking?: (name: string, format: string | null) => BlockImage;
  /** Opens the image without its backing file (read-only only: what `qemu-img info` shows of one image). */
  ignoreBacking?: boolean;
}

function u64(view: DataView, at: number): number {
  const value = view.getBigUint64(at);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError(`64-bit field at ${at} is too large`);
  return Number(value);
}

/** Reads and validates the header cluster. Exported for open.ts (backing file name) and tests. */
export function readQcow2Header(path: string, fd: number): Qcow2Header {
  const fileLength = fileSize(fd);
  const fail = (message: string): never => { throw new ImageError(path, message); };
  if (fileLength < V2_HEADER_LENGTH) fail(`truncated qcow2 image (${fileLength} bytes, the header needs ${V2_HEADER_LENGTH})`);
  const first = new Uint8Array(V3_HEADER_LENGTH);
  readAt(fd, first, 0);
  let view = new DataView(first.buffer);
  if (view.getUint32(H.magic) !== QCOW2_MAGIC) fail('bad magic: not a qcow2 image');
  const version = view.getUint32(H.version);
  if (version !== 2 && version !== 3) fail(`unsupported qcow2 version ${version}`);
  const clusterBits = view.getUint32(H.clusterBits);
  if (clusterBits < 9 || clusterBits > 21) fail(`invalid cluster_bits ${clusterBits} (must be 9..21)`);
  const clusterSize = 2 ** clusterBits;
  const headerCluster = new Uint8Array(clusterSize);
  readAt(fd, headerCluster, 0);
  view = new DataView(headerCluster.buffer);

  const header: Qcow2Header = {
    version, clusterBits, size: u64(view, H.size), cryptMethod: view.getUint32(H.cryptMethod),
    l1Size: view.getUint32(H.l1Size), l1TableOffset: u64(view, H.l1TableOffset),
    refcountTableOffset: u64(view, H.refcountTableOffset), refcountTableClusters: view.getUint32(H.refcountTableClusters),
    nbSnapshots: view.getUint32(H.nbSnapshots),
    incompatibleFeatures: 0n, compatibleFeatures: 0n, autoclearFeatures: 0n,
    refcountOrder: SUPPORTED_REFCOUNT_ORDER, headerLength: V2_HEADER_LENGTH, backingFile: null, backingFormat: null,
  };
  if (version === 3) {
    header.incompatibleFeatures = view.getBigUint64(H.incompatibleFeatures);
    header.compatibleFeatures = view.getBigUint64(H.compatibleFeatures);
    header.autoclearFeatures = view.getBigUint64(H.autoclearFeatures);
    header.refcountOrder = view.getUint32(H.refcountOrder);
    header.headerLength = view.getUint32(H.headerLength);
    if (header.headerLength < V3_MIN_HEADER_LENGTH || header.headerLength % 8 !== 0 || header.headerLength > clusterSize)
      fail(`invalid header_length ${header.headerLength}`);
    if (fileLength < header.headerLength) fail(`truncated qcow2 image (${fileLength} bytes, header_length ${header.headerLength})`);
  }
  if (header.cryptMethod !== 0) fail(`encrypted images are not supported (crypt_method ${header.cryptMethod})`);
  if (header.refcountOrder !== SUPPORTED_REFCOUNT_ORDER)
    fail(`unsupported refcount_order ${header.refcountOrder} (only 4, 16-bit refcounts, is supported)`);

  const featureNames = new Map<string, string>();
  const backingFileOffset = u64(view, H.backingFileOffset);
  const backingFileSize = view.getUint32(H.backingFileSize);
  const extensionsEnd = Math.min(clusterSize, fileLength, backingFileOffset > 0 ? backingFileOffset : clusterSize);
  // Header extensions: (type u32, length u32, data padded to 8 bytes), ended by type 0.
  for (let pos = header.headerLength; pos + 8 <= extensionsEnd;) {
    const type = view.getUint32(pos), length = view.getUint32(pos + 4);
    if (type === EXT_END) break;
    const data = headerCluster.subarray(pos + 8, pos + 8 + length);
    if (pos + 8 + length > extensionsEnd) fail(`header extension 0x${type.toString(16)} overruns the header cluster`);
    if (type === EXT_BACKING_FORMAT) header.backingFormat = new TextDecoder().decode(data);
    else if (type === EXT_FEATURE_NAMES) {
      for (let e = 0; e + 48 <= data.length; e += 48) {
        const name = new TextDecoder().decode(data.subarray(e + 2, e + 48)).replace(/\0.*$/s, '');
        featureNames.set(`${data[e]}:${data[e + 1]}`, name);
      }
    } else if (type === EXT_ENCRYPTION) fail('encrypted images are not supported (full disk encryption header)');
    else if (type === EXT_EXTERNAL_DATA) fail('external data files are not supported');
    pos += 8 + roundUp(length, 8);
  }

  const unknown = header.incompatibleFeatures & ~KNOWN_INCOMPATIBLE;
  if (unknown !== 0n) {
    const names: string[] = [];
    for (let bit = 0; bit < 64; bit++) if ((unknown >> BigInt(bit)) & 1n)
      names.push(featureNames.get(`0:${bit}`) ?? INCOMPATIBLE_NAMES[bit] ?? `bit ${bit}`);
    fail(`unsupported incompatible features: ${names.join(', ')}`);
  }

  if (backingFileOffset !== 0) {
    if (backingFileSize === 0 || backingFileSize > MAX_BACKING_NAME || backingFileOffset + backingFileSize > clusterSize)
      fail(`invalid backing file name (offset ${backingFileOffset}, size ${backingFileSize})`);
    if (backingFileOffset + backingFileSize > fileLength) fail('truncated qcow2 image (backing file name)');
    header.backingFile = new TextDecoder().decode(headerCluster.subarray(backingFileOffset, backingFileOffset + backingFileSize));
  }

  const l2Entries = clusterSize / 8;
  const neededL1 = Math.ceil(header.size / (clusterSize * l2Entries));
  if (header.l1Size < neededL1) fail(`L1 table too small (${header.l1Size} entries, size needs ${neededL1})`);
  if (header.l1TableOffset % clusterSize !== 0) fail(`L1 table offset ${header.l1TableOffset} is not cluster aligned`);
  if (header.l1TableOffset + header.l1Size * 8 > fileLength) fail('truncated qcow2 image (L1 table beyond end of file)');
  if (header.refcountTableOffset % clusterSize !== 0 || header.refcountTableOffset === 0)
    fail(`invalid refcount table offset ${header.refcountTableOffset}`);
  if (header.refcountTableClusters === 0) fail('refcount table has no clusters');
  if (header.refcountTableOffset + header.refcountTableClusters * clusterSize > fileLength)
    fail('truncated qcow2 image (refcount table beyond end of file)');
  header.size = roundUp(header.size, SECTOR_SIZE);
  return header;
}

/** A bounded map (insertion order eviction) for L2 tables and refcount blocks. Dirty tables (changed in
 *  memory, not yet written) are never evicted: the image writes them back first (writeBack). */
class TableCache {
  private readonly tables = new Map<number, Uint8Array>();
  private readonly dirty = new Set<number>();
  get(offset: number): Uint8Array | undefined { return this.tables.get(offset); }
  put(offset: number, table: Uint8Array, dirty = false): void {
    this.tables.set(offset, table);
    if (dirty) this.dirty.add(offset);
    if (this.tables.size <= MAX_CACHED_TABLES) return;
    for (const key of this.tables.keys()) if (!this.dirty.has(key)) { this.tables.delete(key); return; }
  }
  markDirty(offset: number): void { this.dirty.add(offset); }
  get dirtyCount(): number { return this.dirty.size; }
  /** Passes every dirty table to `write` (in offset order) and marks them clean. */
  writeDirty(write: (offset: number, table: Uint8Array) => void): void {
    for (const offset of [...this.dirty].sort((a, b) => a - b)) write(offset, this.tables.get(offset)!);
    this.dirty.clear();
  }
}

export class Qcow2Image implements BlockImage {
  readonly format = 'qcow2' as const;
  readonly size: number;
  readonly clusterSize: number;
  private fd: number;
  private readonly clusterBits: number;
  private readonly l2Entries: number;
  private readonly refcountsPerBlock: number;
  private readonly l1: bigint[];
  private refcountTable: number[];
  private refcountTableOffset: number;
  private fileEnd: number;
  private readonly l2Cache = new TableCache();
  private readonly refcountBlockCache = new TableCache();
  // Metadata changed in memory and not yet written (see "Durability" at the top).
  private readonly dirtyL1 = new Set<number>();
  private readonly dirtyRefcountTable = new Set<number>();
  private refcountTableMoved = false;
  /** Host clusters (offsets) whose refcount drops by one once the entries that pointed at them are on the disk. */
  private pendingFrees: number[] = [];
  /** Whether the file was written since the last fsync. */
  private unsynced = false;
  private lastInflated: { entry: bigint; data: Uint8Array } | null = null;

  private constructor(readonly path: string, fd: number, readonly header: Qcow2Header,
    readonly readOnly: boolean, readonly backing: BlockImage | null) {
    this.fd = fd;
    this.size = header.size;
    this.clusterBits = header.clusterBits;
    this.clusterSize = 2 ** header.clusterBits;
    this.l2Entries = this.clusterSize / 8;
    this.refcountsPerBlock = this.clusterSize / 2;
    const l1Bytes = this.readMetadata(header.l1TableOffset, header.l1Size * 8);
    const l1View = new DataView(l1Bytes.buffer);
    this.l1 = Array.from({ length: header.l1Size }, (_, i) => l1View.getBigUint64(i * 8));
    this.refcountTableOffset = header.refcountTableOffset;
    this.refcountTable = this.readOffsetTable(header.refcountTableOffset, header.refcountTableClusters);
    this.fileEnd = roundUp(fileSize(fd), this.clusterSize);
    if (!readOnly) this.fileEnd = Math.max(this.fileEnd, this.endOfReferencedClusters());
  }

  /** The end of the last cluster with a nonzero refcount. A crash can leave refcounts (leaks) for clusters
   *  past the end of the file; new clusters are appended after them so that none is handed out twice. */
  private endOfReferencedClusters(): number {
    for (let t = this.refcountTable.length - 1; t >= 0; t--) {
      if (this.refcountTable[t] === 0) continue;
      const view = new DataView(this.refcountBlock(this.refcountTable[t]).buffer);
      for (let i = this.refcountsPerBlock - 1; i >= 0; i--)
        if (view.getUint16(i * 2) !== 0) return (t * this.refcountsPerBlock + i + 1) * this.clusterSize;
    }
    return 0;
  }

  static open(path: string, options: Qcow2OpenOptions = {}): Qcow2Image {
    const readOnly = options.readOnly ?? false;
    let fd: number;
    try { fd = openSync(path, readOnly ? 'r' : 'r+'); } catch (e) {
      throw new ImageError(path, `cannot open qcow2 image: ${(e as Error).message}`);
    }
    let backing: BlockImage | null = null;
    try {
      const header = readQcow2Header(path, fd);
      if (!readOnly) Qcow2Image.checkWritable(path, header);
      if (options.ignoreBacking && !readOnly) throw new ImageError(path, 'an image opened without its backing file must be read-only');
      if (header.backingFile !== null && !options.ignoreBacking) {
        if (!options.openBacking) throw new ImageError(path, `has backing file '${header.backingFile}' but no way to open it was given`);
        backing = options.openBacking(header.backingFile, header.backingFormat);
      }
      const image = new Qcow2Image(path, fd, header, readOnly, backing);
      if (!readOnly && header.autoclearFeatures !== 0n) image.clearAutoclearFeatures();
      return image;
    } catch (e) {
      backing?.close();
      closeSync(fd);
      throw e;
    }
  }

  private static checkWritable(path: string, header: Qcow2Header): void {
    if (header.incompatibleFeatures & INCOMPAT_CORRUPT) throw new ImageError(path, 'image is marked corrupt; refusing to open it for writing');
    if (header.incompatibleFeatures & INCOMPAT_DIRTY)
      throw new ImageError(path, 'image is dirty (refcounts may be inconsistent); repair it with qemu-img check -r all before writing');
    if (header.nbSnapshots > 0) throw new ImageError(path, 'writing images with internal snapshots is not supported');
  }

  /** Spec: software that modifies an image must clear the autoclear bits it does not understand (all of them here). */
  private clearAutoclearFeatures(): void {
    this.writeAll(H.autoclearFeatures, new Uint8Array(8));
    this.header.autoclearFeatures = 0n;
  }

  // ---------------------------------------------------------------- BlockImage

  read(offset: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    this.readInto(offset, out);
    return out;
  }

  readInto(offset: number, out: Uint8Array): void {
    checkRange('read', offset, out.length, this.size);
    this.forEachClusterSegment(offset, out.length, (clusterStart, inCluster, pos, len) =>
      this.readSegment(this.entryOf(clusterStart), clusterStart, inCluster, out.subarray(pos, pos + len)));
  }

  write(offset: number, data: Uint8Array): void {
    this.checkOpenForWriting('write');
    checkRange('write', offset, data.length, this.size);
    this.forEachClusterSegment(offset, data.length, (clusterStart, inCluster, pos, len) =>
      this.writeCluster(clusterStart, inCluster, data.subarray(pos, pos + len)));
    this.limitDirtyTables();
  }

  writeZeroes(offset: number, length: number): void {
    this.checkOpenForWriting('writeZeroes');
    checkRange('writeZeroes', offset, length, this.size);
    this.forEachClusterSegment(offset, length, (clusterStart, inCluster, _pos, len) => {
      const whole = len === this.clusterSize || (inCluster === 0 && clusterStart + len === this.size);
      if (whole && this.header.version >= 3) this.replaceEntry(clusterStart, OFLAG_ZERO);
      else if (whole && !this.backing) this.replaceEntry(clusterStart, 0n);
      else if (!this.readsAsZeros(this.classify(this.entryOf(clusterStart))))
        this.writeCluster(clusterStart, inCluster, new Uint8Array(len));
    });
    this.limitDirtyTables();
  }

  /** Whole clusters in the range are deallocated and read as zeros afterwards (v3 marks them zero over a
   *  backing file, as QEMU does; v2 cannot, so the backing file shows through). Partial clusters are left as they are. */
  discard(offset: number, length: number): void {
    this.checkOpenForWriting('discard');
    checkRange('discard', offset, length, this.size);
    this.forEachClusterSegment(offset, length, (clusterStart, inCluster, _pos, len) => {
      const whole = len === this.clusterSize || (inCluster === 0 && clusterStart + len === this.size);
      if (whole) this.replaceEntry(clusterStart, this.backing && this.header.version >= 3 ? OFLAG_ZERO : 0n);
    });
    this.limitDirtyTables();
  }

  /** Writes the metadata back in dependency order and fsyncs: every write completed before the call
   *  survives a crash (of the process or of the host) after it returns. */
  flush(): void {
    if (this.readOnly || this.fd < 0) return;
    this.writeBack();
    this.sync();
  }

  /** Flushes (a writable image) and closes the image and its backing chain. */
  close(): void {
    if (this.fd < 0) return;
    try { this.flush(); } finally {
      closeSync(this.fd);
      this.fd = -1;
      this.backing?.close();
    }
  }

  /** Deallocates every cluster of the overlay, so that it reads through to its backing file again (what
   *  `qemu-img commit` does after committing, unless -d). L2 tables stay allocated (all entries 0). */
  makeEmpty(): void {
    this.checkOpenForWriting('makeEmpty');
    this.l1.forEach((l1Entry, l1Index) => {
      if ((l1Entry & OFFSET_MASK) === 0n) return;
      for (let i = 0; i < this.l2Entries; i++) {
        const clusterStart = (l1Index * this.l2Entries + i) * this.clusterSize;
        if (clusterStart >= this.size) break;
        if (this.entryOf(clusterStart) !== 0n) this.replaceEntry(clusterStart, 0n);
      }
    });
    this.flush();
  }

  /** Writes every cluster allocated in this overlay (data, compressed or zero) into `target` (by default the
   *  backing image, which must then be open for writing), as `qemu-img commit -d` does, and flushes it. */
  commit(target: BlockImage | null = this.backing): void {
    if (!target) throw new ImageError(this.path, 'commit: image has no backing file');
    if (target.readOnly) throw new ImageError(this.path, 'commit: the backing image is open read-only');
    const end = Math.min(this.size, target.size);
    for (let clusterStart = 0; clusterStart < end; clusterStart += this.clusterSize) {
      const entry = this.entryOf(clusterStart);
      const kind = this.classify(entry);
      if (kind.kind === 'unallocated') continue;
      const length = Math.min(this.clusterSize, end - clusterStart);
      if (kind.kind === 'zero') target.writeZeroes(clusterStart, length);
      else target.write(clusterStart, this.read(clusterStart, length));
    }
    target.flush();
  }

  // ---------------------------------------------------------------- cluster mapping

  private forEachClusterSegment(offset: number, length: number,
    visit: (clusterStart: number, inCluster: number, pos: number, len: number) => void): void {
    for (let pos = 0; pos < length;) {
      const guest = offset + pos;
      const inCluster = guest % this.clusterSize;
      const len = Math.min(this.clusterSize - inCluster, length - pos);
      visit(guest - inCluster, inCluster, pos, len);
      pos += len;
    }
  }

  private l1Index(clusterStart: number): number { return Math.floor(clusterStart / (this.clusterSize * this.l2Entries)); }
  private l2Index(clusterStart: number): number { return (clusterStart / this.clusterSize) % this.l2Entries; }

  /** The L2 entry for a guest cluster (0 when its L2 table is not allocated). */
  private entryOf(clusterStart: number): bigint {
    const l2Offset = Number(this.l1[this.l1Index(clusterStart)] & OFFSET_MASK);
    if (l2Offset === 0) return 0n;
    return new DataView(this.l2Table(l2Offset).buffer).getBigUint64(this.l2Index(clusterStart) * 8);
  }

  private classify(entry: bigint): ClusterKind {
    if (entry & OFLAG_COMPRESSED) {
      // Spec "Compressed Clusters Descriptor": x = 62 - (cluster_bits - 8); bits 0..x-1 host offset,
      // bits x..61 the number of additional 512-byte sectors.
      const x = BigInt(62 - (this.clusterBits - 8));
      const host = Number(entry & ((1n << x) - 1n));
      const sectors = Number((entry >> x) & ((1n << (62n - x)) - 1n)) + 1;
      return { kind: 'compressed', host, sectors };
    }
    const host = Number(entry & OFFSET_MASK);
    if (this.header.version >= 3 && (entry & OFLAG_ZERO)) return { kind: 'zero', host };
    if (host === 0) return { kind: 'unallocated' };
    return { kind: 'normal', host, copied: (entry & OFLAG_COPIED) !== 0n };
  }

  private readsAsZeros(kind: ClusterKind): boolean { return kind.kind === 'zero' || (kind.kind === 'unallocated' && !this.backing); }

  private readSegment(entry: bigint, clusterStart: number, inCluster: number, out: Uint8Array): void {
    const kind = this.classify(entry);
    switch (kind.kind) {
      case 'zero': out.fill(0); break;
      case 'normal': readAt(this.fd, out, kind.host + inCluster); break;
      case 'compressed': out.set(this.inflateCluster(entry, kind.host, kind.sectors).subarray(inCluster, inCluster + out.length)); break;
      case 'unallocated': this.readBacking(clusterStart + inCluster, out); break;
    }
  }

  private readBacking(guestOffset: number, out: Uint8Array): void {
    const available = this.backing ? Math.max(0, Math.min(out.length, this.backing.size - guestOffset)) : 0;
    if (available > 0) out.set(this.backing!.read(guestOffset, available));
    out.fill(0, available);
  }

  /** Spec: the compressed data starts at `host` and ends within the `sectors`-th 512-byte sector; raw deflate. */
  private inflateCluster(entry: bigint, host: number, sectors: number): Uint8Array {
    if (this.lastInflated?.entry === entry) return this.lastInflated.data;
    const length = Math.min(sectors * SECTOR_SIZE - (host % SECTOR_SIZE), fileSize(this.fd) - host);
    if (length <= 0) throw new ImageError(this.path, `truncated qcow2 image (compressed cluster at ${host} beyond end of file)`);
    const compressed = new Uint8Array(length);
    readAt(this.fd, compressed, host);
    let data: Uint8Array;
    try { data = inflateRawSync(compressed); } catch (e) {
      throw new ImageError(this.path, `corrupt compressed cluster at ${host}: ${(e as Error).message}`);
    }
    if (data.length < this.clusterSize) throw new ImageError(this.path, `corrupt compressed cluster at ${host}: inflates to ${data.length} bytes`);
    this.lastInflated = { entry, data: data.subarray(0, this.clusterSize) };
    return this.lastInflated.data;
  }

  // ---------------------------------------------------------------- writing

  private checkOpenForWriting(op: string): void {
    if (this.readOnly) throw new ImageError(this.path, `${op}: image is open read-only`);
    if (this.fd < 0) throw new ImageError(this.path, `${op}: image is closed`);
  }

  private writeCluster(clusterStart: number, inCluster: number, chunk: Uint8Array): void {
    const l2Offset = this.ensureL2Table(clusterStart);
    const entry = this.entryOf(clusterStart);
    const kind = this.classify(entry);
    if (kind.kind === 'normal' && kind.copied) { this.writeAll(kind.host + inCluster, chunk); return; }
    let cluster = chunk;
    if (chunk.length !== this.clusterSize) {
      // Copy-on-write: the rest of the cluster comes from what the guest currently sees there.
      cluster = new Uint8Array(this.clusterSize);
      const visible = Math.min(this.clusterSize, this.size - clusterStart);
      this.readSegment(entry, clusterStart, 0, cluster.subarray(0, visible));
      cluster.set(chunk, inCluster);
    }
    if (kind.kind === 'zero' && kind.host !== 0 && (entry & OFLAG_COPIED)) {
      // Preallocated zero cluster: fill it in place, then drop the zero flag.
      this.writeAll(kind.host, cluster);
      this.setL2Entry(l2Offset, clusterStart, BigInt(kind.host) | OFLAG_COPIED);
      return;
    }
    // Refcount (in memory) and data now; writeBack puts the refcount on the disk before the L2 entry,
    // and the old cluster's refcount drops only after the new entry is on the disk.
    const host = this.allocateCluster();
    this.writeAll(host, cluster);
    this.setL2Entry(l2Offset, clusterStart, BigInt(host) | OFLAG_COPIED);
    this.release(kind);
  }

  /** Points a guest cluster at `entry` (no host cluster: 0 or OFLAG_ZERO) and frees what it pointed at. */
  private replaceEntry(clusterStart: number, entry: bigint): void {
    const old = this.entryOf(clusterStart);
    if (old === entry) return;
    const l1Allocated = (this.l1[this.l1Index(clusterStart)] & OFFSET_MASK) !== 0n;
    if (!l1Allocated && (entry === 0n || !this.backing)) return; // already reads as zeros / unallocated
    const l2Offset = this.ensureL2Table(clusterStart);
    this.setL2Entry(l2Offset, clusterStart, entry);
    this.release(this.classify(old));
  }

  /** Queues the release of the host clusters an entry pointed at (applied by writeBack, after the new entry is on the disk). */
  private release(kind: ClusterKind): void {
    if (kind.kind === 'normal' || (kind.kind === 'zero' && kind.host !== 0)) this.pendingFrees.push(kind.host);
    if (kind.kind === 'compressed') {
      // Every host cluster the compressed data touches holds one reference (as QEMU frees them).
      const start = kind.host - (kind.host % SECTOR_SIZE);
      const first = start - (start % this.clusterSize), last = start + kind.sectors * SECTOR_SIZE - 1;
      for (let c = first; c <= last; c += this.clusterSize) this.pendingFrees.push(c);
    }
  }

  private ensureL2Table(clusterStart: number): number {
    const index = this.l1Index(clusterStart);
    const entry = this.l1[index];
    const offset = Number(entry & OFFSET_MASK);
    if (offset !== 0) {
      if (!(entry & OFLAG_COPIED)) throw new ImageError(this.path, `L2 table at ${offset} is shared (snapshots); writing it is not supported`);
      return offset;
    }
    const l2Offset = this.allocateCluster();
    this.l2Cache.put(l2Offset, new Uint8Array(this.clusterSize), true);
    this.l1[index] = BigInt(l2Offset) | OFLAG_COPIED;
    this.dirtyL1.add(index);
    return l2Offset;
  }

  private setL2Entry(l2Offset: number, clusterStart: number, entry: bigint): void {
    const index = this.l2Index(clusterStart);
    new DataView(this.l2Table(l2Offset).buffer).setBigUint64(index * 8, entry);
    this.l2Cache.markDirty(l2Offset);
    if (this.lastInflated) this.lastInflated = null;
  }

  // ---------------------------------------------------------------- refcounts

  /** Appends one cluster at the end of the file with refcount 1 (in memory); the caller fills all of it. */
  private allocateCluster(): number {
    const offset = this.fileEnd;
    this.fileEnd += this.clusterSize;
    this.updateRefcount(offset, +1);
    return offset;
  }

  private updateRefcount(hostOffset: number, delta: number): void {
    const cluster = Math.floor(hostOffset / this.clusterSize);
    const blockOffset = this.ensureRefcountBlock(Math.floor(cluster / this.refcountsPerBlock));
    const block = this.refcountBlock(blockOffset);
    const index = cluster % this.refcountsPerBlock;
    const view = new DataView(block.buffer);
    const value = view.getUint16(index * 2) + delta;
    if (value < 0 || value > 0xffff) throw new ImageError(this.path, `refcount of cluster at ${hostOffset} would become ${value} (corrupt image)`);
    view.setUint16(index * 2, value);
    this.refcountBlockCache.markDirty(blockOffset);
  }

  private ensureRefcountBlock(tableIndex: number): number {
    if (tableIndex >= this.refcountTable.length) this.growRefcountTable(tableIndex);
    const existing = this.refcountTable[tableIndex];
    if (existing !== 0) return existing;
    const blockOffset = this.fileEnd;
    this.fileEnd += this.clusterSize;
    const block = new Uint8Array(this.clusterSize);
    const selfCluster = blockOffset / this.clusterSize;
    const coversItself = Math.floor(selfCluster / this.refcountsPerBlock) === tableIndex;
    if (coversItself) new DataView(block.buffer).setUint16((selfCluster % this.refcountsPerBlock) * 2, 1);
    this.refcountBlockCache.put(blockOffset, block, true);
    if (!coversItself) this.updateRefcount(blockOffset, +1); // its refcount lives in another block
    this.refcountTable[tableIndex] = blockOffset;
    this.dirtyRefcountTable.add(tableIndex);
    return blockOffset;
  }

  /** Moves the refcount table to a larger one at the end of the file (in memory; writeBack puts the new
   *  table and the blocks covering it on the disk first, then switches the header, then frees the old table). */
  private growRefcountTable(neededIndex: number): void {
    const entriesPerCluster = this.clusterSize / 8;
    const bytesPerTableEntry = this.refcountsPerBlock * this.clusterSize;
    let clusters = Math.max(Math.ceil(this.refcountTable.length / entriesPerCluster) * 2, Math.ceil((neededIndex + 1) / entriesPerCluster));
    // Room for the table itself and the refcount blocks that cover it, so filling it never recurses.
    while (clusters * entriesPerCluster * bytesPerTableEntry < this.fileEnd + 3 * clusters * this.clusterSize) clusters *= 2;
    const oldOffset = this.refcountTableOffset, oldClusters = Math.ceil(this.refcountTable.length / entriesPerCluster);
    const table = new Array<number>(clusters * entriesPerCluster).fill(0);
    this.refcountTable.forEach((offset, i) => { table[i] = offset; });
    const newOffset = this.fileEnd;
    this.fileEnd += clusters * this.clusterSize;
    this.refcountTable = table;
    this.refcountTableOffset = newOffset;
    this.refcountTableMoved = true;
    for (let i = 0; i < clusters; i++) this.updateRefcount(newOffset + i * this.clusterSize, +1);
    this.header.refcountTableOffset = newOffset;
    this.header.refcountTableClusters = clusters;
    for (let i = 0; i < oldClusters; i++) this.pendingFrees.push(oldOffset + i * this.clusterSize);
  }

  // ---------------------------------------------------------------- write-back

  /** Bounds the dirty tables between flushes (they cannot be evicted from the caches). */
  private limitDirtyTables(): void {
    if (this.l2Cache.dirtyCount + this.refcountBlockCache.dirtyCount > MAX_DIRTY_TABLES) this.writeBack();
  }

  /** Writes the dirty metadata in dependency order (see "Durability" at the top), each level behind an
   *  fsync of what it depends on. A process killed in the middle leaves a prefix of these writes in the
   *  page cache, a host crash a prefix of the levels: either way, leaks at most. */
  private writeBack(): void {
    const writeTable = (offset: number, table: Uint8Array) => this.writeAll(offset, table);
    // 1. Refcount blocks. They hold increments only (decrements wait in pendingFrees), so writing
    //    them early can only make a refcount exceed its references.
    this.refcountBlockCache.writeDirty(writeTable);
    // 2. The refcount table entries pointing at new blocks; a moved table is written whole and the
    //    header switched to it once it is on the disk (spec: refcount_table_offset, _clusters).
    if (this.refcountTableMoved) {
      this.sync();
      const bytes = new Uint8Array(this.header.refcountTableClusters * this.clusterSize);
      const view = new DataView(bytes.buffer);
      this.refcountTable.forEach((offset, i) => view.setBigUint64(i * 8, BigInt(offset)));
      this.writeAll(this.refcountTableOffset, bytes);
      this.sync();
      const fields = new DataView(new ArrayBuffer(12));
      fields.setBigUint64(0, BigInt(this.refcountTableOffset));
      fields.setUint32(8, this.header.refcountTableClusters);
      this.writeAll(H.refcountTableOffset, new Uint8Array(fields.buffer));
      this.refcountTableMoved = false;
    } else if (this.dirtyRefcountTable.size > 0) {
      this.sync();
      for (const i of this.dirtyRefcountTable) this.writeU64(this.refcountTableOffset + i * 8, BigInt(this.refcountTable[i]));
    }
    this.dirtyRefcountTable.clear();
    // 3. L2 tables, once the refcounts of the clusters they point at and the data in them are durable.
    if (this.l2Cache.dirtyCount > 0) {
      this.sync();
      this.l2Cache.writeDirty(writeTable);
    }
    // 4. L1 entries, once the (new) L2 tables they point at are durable.
    if (this.dirtyL1.size > 0) {
      this.sync();
      for (const i of [...this.dirtyL1].sort((a, b) => a - b)) this.writeU64(this.header.l1TableOffset + i * 8, this.l1[i]);
      this.dirtyL1.clear();
    }
    // 5. Refcount decrements, once no entry on the disk points at the clusters any more. A crash
    //    before they reach the disk leaks those clusters.
    if (this.pendingFrees.length > 0) {
      this.sync();
      const frees = this.pendingFrees;
      this.pendingFrees = [];
      for (const offset of frees) this.updateRefcount(offset, -1);
      this.refcountBlockCache.writeDirty(writeTable);
    }
  }

  private sync(): void {
    if (!this.unsynced) return;
    fsyncSync(this.fd);
    this.unsynced = false;
  }

  // ---------------------------------------------------------------- metadata I/O

  private l2Table(offset: number): Uint8Array { return this.cachedTable(this.l2Cache, offset, 'L2 table'); }
  private refcountBlock(offset: number): Uint8Array { return this.cachedTable(this.refcountBlockCache, offset, 'refcount block'); }

  private cachedTable(cache: TableCache, offset: number, what: string): Uint8Array {
    let table = cache.get(offset);
    if (!table) {
      if (offset % this.clusterSize !== 0) throw new ImageError(this.path, `${what} offset ${offset} is not cluster aligned`);
      table = this.readMetadata(offset, this.clusterSize, what);
      cache.put(offset, table);
    }
    return table;
  }

  private readOffsetTable(offset: number, clusters: number): number[] {
    const bytes = this.readMetadata(offset, clusters * this.clusterSize, 'refcount table');
    const view = new DataView(bytes.buffer);
    return Array.from({ length: bytes.length / 8 }, (_, i) => Number(view.getBigUint64(i * 8) & OFFSET_MASK));
  }

  private readMetadata(offset: number, length: number, what = 'metadata'): Uint8Array {
    const bytes = new Uint8Array(length);
    if (readAt(this.fd, bytes, offset) < length) throw new ImageError(this.path, `truncated qcow2 image (${what} at ${offset} beyond end of file)`);
    return bytes;
  }

  private writeU64(offset: number, value: bigint): void {
    const bytes = new Uint8Array(8);
    new DataView(bytes.buffer).setBigUint64(0, value);
    this.writeAll(offset, bytes);
  }

  private writeAll(offset: number, bytes: Uint8Array): void {
    this.unsynced = true;
    for (let done = 0; done < bytes.length;) done += writeSync(this.fd, bytes, done, bytes.length - done, offset + done);
  }
}

export interface CreateQcow2Options {
  backingFile?: string;
  backingFormat?: 'raw' | 'qcow2';
  clusterBits?: number;
}

/** Creates an empty qcow2 v3 image: header cluster, refcount table, refcount blocks, L1 table (as `qemu-img create`). */
export function createQcow2(path: string, size: number, options: CreateQcow2Options = {}): void {
  const clusterBits = options.clusterBits ?? 16;
  if (!Number.isInteger(clusterBits) || clusterBits < 9 || clusterBits > 21) throw new RangeError(`clusterBits ${clusterBits} must be 9..21`);
  if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`invalid size ${size}`);
  size = roundUp(size, SECTOR_SIZE);
  const clusterSize = 2 ** clusterBits;
  const l1Size = Math.ceil(size / (clusterSize * (clusterSize / 8)));
  const l1Clusters = Math.max(1, Math.ceil((l1Size * 8) / clusterSize));
  const refcountsPerBlock = clusterSize / 2;
  let tableClusters = 1, blockClusters = 1;
  for (;;) { // the metadata clusters must all be covered by the refcount blocks, which the table lists
    const total = 1 + tableClusters + blockClusters + l1Clusters;
    const blocks = Math.ceil(total / refcountsPerBlock), table = Math.ceil((blocks * 8) / clusterSize);
    if (blocks === blockClusters && table === tableClusters) break;
    blockClusters = blocks; tableClusters = table;
  }
  const totalClusters = 1 + tableClusters + blockClusters + l1Clusters;
  const image = new Uint8Array(totalClusters * clusterSize);
  const view = new DataView(image.buffer);
  const tableOffset = clusterSize, blocksOffset = (1 + tableClusters) * clusterSize;
  const l1Offset = (1 + tableClusters + blockClusters) * clusterSize;

  view.setUint32(H.magic, QCOW2_MAGIC);
  view.setUint32(H.version, 3);
  view.setUint32(H.clusterBits, clusterBits);
  view.setBigUint64(H.size, BigInt(size));
  view.setUint32(H.l1Size, l1Size);
  view.setBigUint64(H.l1TableOffset, BigInt(l1Offset));
  view.setBigUint64(H.refcountTableOffset, BigInt(tableOffset));
  view.setUint32(H.refcountTableClusters, tableClusters);
  view.setUint32(H.refcountOrder, SUPPORTED_REFCOUNT_ORDER);
  view.setUint32(H.headerLength, V3_HEADER_LENGTH);
  let pos = V3_HEADER_LENGTH;
  const encoder = new TextEncoder();
  if (options.backingFile !== undefined) {
    const format = encoder.encode(options.backingFormat ?? 'raw');
    view.setUint32(pos, EXT_BACKING_FORMAT);
    view.setUint32(pos + 4, format.length);
    image.set(format, pos + 8);
    pos += 8 + roundUp(format.length, 8);
  }
  pos += 8; // end of extensions (type 0, length 0)
  if (options.backingFile !== undefined) {
    const name = encoder.encode(options.backingFile);
    if (name.length === 0 || name.length > MAX_BACKING_NAME || pos + name.length > clusterSize)
      throw new RangeError(`backing file name of ${name.length} bytes does not fit in the header`);
    image.set(name, pos);
    view.setBigUint64(H.backingFileOffset, BigInt(pos));
    view.setUint32(H.backingFileSize, name.length);
  }
  for (let b = 0; b < blockClusters; b++) view.setBigUint64(tableOffset + b * 8, BigInt(blocksOffset + b * clusterSize));
  for (let c = 0; c < totalClusters; c++) view.setUint16(blocksOffset + c * 2, 1);
  writeFileSync(path, image);
}
