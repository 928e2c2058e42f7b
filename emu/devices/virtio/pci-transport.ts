// Virtio over PCI, the modern (virtio 1.x, non-transitional) interface: OASIS virtio 1.2, section 4.1.
// PCI ids 1AF4:1040+type, revision 1 (4.1.2). One 64-bit memory BAR (BAR4, 16 KiB, QEMU's layout)
// holds four structures, each described by a vendor-specific capability (4.1.4, struct virtio_pci_cap:
// cap_vndr 09h, cap_next, cap_len, cfg_type, bar, id, padding[2], le32 offset, le32 length):
//   0000h common configuration (cfg_type 1), 1000h ISR status (3), 2000h device-specific (4),
//   3000h notifications (2, plus le32 notify_off_multiplier); and a PCI configuration access
//   capability (5) whose pci_cfg_data window reaches the BAR through configuration space (4.1.4.9).
// Interrupts are INTx only (no MSI-X capability): the ISR's bit 0 (queue) and bit 1 (configuration
// change) are set with the line, and reading the ISR returns and clears them and lowers the line (4.1.4.5).
import { PCI_COMMAND_BUS_MASTER, PciFunction } from '../pci/device.ts';
import type { MmioDevice } from '../mmio-bus.ts';
import { VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_VERSION_1, Virtqueue } from './virtqueue.ts';
import type { GuestDma } from './virtqueue.ts';

export const VIRTIO_PCI_VENDOR_ID = 0x1af4;
export const VIRTIO_PCI_DEVICE_ID_BASE = 0x1040;
/** QEMU's subsystem id for modern virtio functions (PCI_SUBDEVICE_ID_QEMU). */
export const VIRTIO_PCI_SUBSYSTEM_ID = 0x1100;
export const VIRTIO_PCI_BAR_INDEX = 4;
export const VIRTIO_PCI_BAR_SIZE = 0x4000;
export const PCI_CAP_ID_VENDOR = 0x09;

export const VIRTIO_PCI_CAP_COMMON_CFG = 1;
export const VIRTIO_PCI_CAP_NOTIFY_CFG = 2;
export const VIRTIO_PCI_CAP_ISR_CFG = 3;
export const VIRTIO_PCI_CAP_DEVICE_CFG = 4;
export const VIRTIO_PCI_CAP_PCI_CFG = 5;

/** Region offsets inside the BAR. */
export const VIRTIO_PCI_COMMON_OFFSET = 0x0000;
export const VIRTIO_PCI_ISR_OFFSET = 0x1000;
export const VIRTIO_PCI_DEVICE_OFFSET = 0x2000;
export const VIRTIO_PCI_NOTIFY_OFFSET = 0x3000;
const REGION_SIZE = 0x1000;
export const VIRTIO_PCI_NOTIFY_OFF_MULTIPLIER = 4;

// Device status bits (2.1).
export const VIRTIO_STATUS_ACKNOWLEDGE = 1;
export const VIRTIO_STATUS_DRIVER = 2;
export const VIRTIO_STATUS_DRIVER_OK = 4;
export const VIRTIO_STATUS_FEATURES_OK = 8;
export const VIRTIO_STATUS_NEEDS_RESET = 0x40;
export const VIRTIO_STATUS_FAILED = 0x80;

export const VIRTIO_ISR_QUEUE = 1;
export const VIRTIO_ISR_CONFIG = 2;
/** Returned by msix_config / queue_msix_vector: no MSI-X, so no vector is ever mapped (4.1.4.3.2). */
export const VIRTIO_MSI_NO_VECTOR = 0xffff;

/** struct virtio_pci_common_cfg (4.1.4.3); queue_notify_data and queue_reset are virtio 1.2 additions. */
export const COMMON = {
  deviceFeatureSelect: 0, deviceFeature: 4, driverFeatureSelect: 8, driverFeature: 12,
  msixConfig: 16, numQueues: 18, deviceStatus: 20, configGeneration: 21,
  queueSelect: 22, queueSize: 24, queueMsixVector: 26, queueEnable: 28, queueNotifyOff: 30,
  queueDesc: 32, queueDriver: 40, queueDevice: 48, queueNotifyData: 56, queueReset: 58,
} as const;
const COMMON_SIZE = 60;
/** Field widths by offset, for splitting an access into the fields it touches. */
const COMMON_FIELDS: ReadonlyArray<readonly [offset: number, size: number]> = [
  [0, 4], [4, 4], [8, 4], [12, 4], [16, 2], [18, 2], [20, 1], [21, 1], [22, 2], [24, 2], [26, 2],
  [28, 2], [30, 2], [32, 8], [40, 8], [48, 8], [56, 2], [58, 2],
];

/** What the transport offers a device model. */
export interface VirtioTransport {
  readonly memory: GuestDma;
  /** Feature bits the driver accepted (valid once FEATURES_OK is set). */
  readonly negotiatedFeatures: bigint;
  /** Queue `index` when the driver enabled it and set DRIVER_OK, else null. */
  queue(index: number): Virtqueue | null;
  /** The device used buffers of queue `index`: interrupt the driver if it asked for it. */
  notifyQueue(index: number): void;
  /** The device-specific configuration changed (2.4.2: config_generation moves on). */
  notifyConfigChange(): void;
  /** Malformed ring events and descriptor chains seen by all queues since the function was created. */
  readonly malformedChainCount: number;
}

/** A device type behind the transport (virtio-blk, ...). */
export interface VirtioDevice {
  readonly name: string;
  /** Device type (section 5): 2 for block. */
  readonly deviceType: number;
  /** Offered feature bits; the transport adds VIRTIO_F_VERSION_1. */
  readonly deviceFeatures: bigint;
  /** Maximum size of each virtqueue (a power of two). */
  readonly queueMaxSizes: readonly number[];
  /** The device-specific configuration structure, little endian. */
  readonly config: Uint8Array;
  attach(transport: VirtioTransport): void;
  /** The driver notified queue `index` (available buffers). */
  queueNotify(index: number): void;
  /** Device reset (2.4): drop all queue state. */
  reset(): void;
}

interface QueueRegisters { size: number; enabled: boolean; desc: bigint; driver: bigint; device: bigint; ring: Virtqueue | null }

export class VirtioPciFunction extends PciFunction implements MmioDevice, VirtioTransport {
  private deviceFeatureSelect = 0;
  private driverFeatureSelect = 0;
  private driverFeatures = 0n;
  private deviceStatus = 0;
  private configGeneration = 0;
  private queueSelect = 0;
  private queues: QueueRegisters[] = [];
  private isr = 0;
  /** Malformed events counted by queues that a reset has since dropped. */
  private retiredMalformed = 0;
  /** Offset of the PCI configuration access capability in configuration space. */
  private readonly pciCfgCap: number;
  readonly offeredFeatures: bigint;

  constructor(name: string, readonly device: VirtioDevice, readonly memory: GuestDma) {
    super(name, {
      vendorId: VIRTIO_PCI_VENDOR_ID, deviceId: VIRTIO_PCI_DEVICE_ID_BASE + device.deviceType,
      classCode: classCodeFor(device.deviceType), revision: 1,
      subsystemVendorId: VIRTIO_PCI_VENDOR_ID, subsystemId: VIRTIO_PCI_SUBSYSTEM_ID, interruptPin: 1,
    });
    this.offeredFeatures = device.deviceFeatures | (1n << BigInt(VIRTIO_F_VERSION_1));
    this.defineBar(VIRTIO_PCI_BAR_INDEX, { kind: 'mem64', size: VIRTIO_PCI_BAR_SIZE, prefetchable: true });
    this.addVirtioCapability(VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_PCI_COMMON_OFFSET, REGION_SIZE);
    this.addVirtioCapability(VIRTIO_PCI_CAP_ISR_CFG, VIRTIO_PCI_ISR_OFFSET, REGION_SIZE);
    this.addVirtioCapability(VIRTIO_PCI_CAP_DEVICE_CFG, VIRTIO_PCI_DEVICE_OFFSET, REGION_SIZE);
    const notify = this.addVirtioCapability(VIRTIO_PCI_CAP_NOTIFY_CFG, VIRTIO_PCI_NOTIFY_OFFSET, REGION_SIZE, 4);
    this.initRegister(notify + 16, 4, VIRTIO_PCI_NOTIFY_OFF_MULTIPLIER);
    // struct virtio_pci_cfg_cap: the driver writes bar, offset and length, then accesses pci_cfg_data.
    this.pciCfgCap = this.addVirtioCapability(VIRTIO_PCI_CAP_PCI_CFG, 0, 0, 4);
    this.initRegister(this.pciCfgCap + 4, 1, 0, 0xff);
    this.initRegister(this.pciCfgCap + 8, 4, 0, 0xffffffff);
    this.initRegister(this.pciCfgCap + 12, 4, 0, 0xffffffff);
    this.initRegister(this.pciCfgCap + 16, 4, 0, 0xffffffff);
    this.resetTransport();
    device.attach(this);
  }

  private addVirtioCapability(cfgType: number, offset: number, length: number, extra = 0): number {
    const at = this.addCapability(PCI_CAP_ID_VENDOR, 16 + extra);
    this.initRegister(at + 2, 1, 16 + extra); // cap_len
    this.initRegister(at + 3, 1, cfgType);
    this.initRegister(at + 4, 1, cfgType === VIRTIO_PCI_CAP_PCI_CFG ? 0 : VIRTIO_PCI_BAR_INDEX);
    this.initRegister(at + 8, 4, offset);
    this.initRegister(at + 12, 4, length);
    return at;
  }

  // ---- VirtioTransport ---------------------------------------------------------------------

  get negotiatedFeatures(): bigint { return this.driverFeatures; }

  get malformedChainCount(): number {
    return this.retiredMalformed + this.queues.reduce((n, q) => n + (q.ring?.malformedCount ?? 0), 0);
  }

  queue(index: number): Virtqueue | null {
    if (!(this.deviceStatus & VIRTIO_STATUS_DRIVER_OK) || (this.deviceStatus & VIRTIO_STATUS_NEEDS_RESET)) return null;
    return this.queues[index]?.ring ?? null;
  }

  notifyQueue(index: number): void {
    if (this.queue(index)?.shouldNotify()) this.raiseIsr(VIRTIO_ISR_QUEUE);
  }

  notifyConfigChange(): void {
    this.configGeneration = (this.configGeneration + 1) & 0xff;
    if (this.deviceStatus & VIRTIO_STATUS_DRIVER_OK) this.raiseIsr(VIRTIO_ISR_CONFIG);
  }

  private raiseIsr(bits: number): void {
    this.isr |= bits;
    this.setIntx(true);
  }

  // ---- The BAR (MmioDevice: offsets relative to the BAR's base) ------------------------------

  read(offset: number, size: number): number | bigint {
    const bytes = this.readBar(offset, size);
    return size === 8 ? littleEndianBig(bytes) : Number(littleEndianBig(bytes));
  }

  write(offset: number, size: number, value: number | bigint): void {
    const bytes = new Uint8Array(size);
    const v = BigInt.asUintN(64, BigInt(value));
    for (let i = 0; i < size; i++) bytes[i] = Number((v >> BigInt(8 * i)) & 0xffn);
    this.writeBar(offset, bytes);
  }

  private readBar(offset: number, size: number): Uint8Array {
    const region = offset & ~(REGION_SIZE - 1), at = offset - region;
    switch (region) {
      case VIRTIO_PCI_COMMON_OFFSET: return slice(this.commonSnapshot(), at, size);
      case VIRTIO_PCI_DEVICE_OFFSET: return slice(this.device.config, at, size);
      case VIRTIO_PCI_ISR_OFFSET: {
        const isr = this.isr; // 4.1.4.5.1: reading clears the ISR and deasserts the interrupt
        this.isr = 0;
        this.setIntx(false);
        return slice(new Uint8Array([isr]), at, size);
      }
      default: return new Uint8Array(size); // notify region reads as zero
    }
  }

  private writeBar(offset: number, bytes: Uint8Array): void {
    const region = offset & ~(REGION_SIZE - 1), at = offset - region;
    if (region === VIRTIO_PCI_COMMON_OFFSET) this.writeCommon(at, bytes);
    else if (region === VIRTIO_PCI_NOTIFY_OFFSET) this.notify(Math.floor(at / VIRTIO_PCI_NOTIFY_OFF_MULTIPLIER));
    // The device-specific and ISR regions have nothing writable here (blk offers no CONFIG_WCE).
  }

  private notify(index: number): void {
    // A device without bus mastering cannot reach guest memory (PCI 6.2.2).
    if (!(this.command & PCI_COMMAND_BUS_MASTER) || !this.queue(index)) return;
    this.device.queueNotify(index);
    if (this.queue(index)?.broken) this.needsReset();
  }

  /** 2.1.2: a queue the driver broke needs a reset; with DRIVER_OK set the device says so with a
   *  configuration change notification. */
  private needsReset(): void {
    this.deviceStatus |= VIRTIO_STATUS_NEEDS_RESET;
    this.raiseIsr(VIRTIO_ISR_CONFIG);
  }

  // ---- Common configuration (4.1.4.3) ------------------------------------------------------

  private selectedQueue(): QueueRegisters | undefined { return this.queues[this.queueSelect]; }

  private commonSnapshot(): Uint8Array {
    const view = new DataView(new ArrayBuffer(COMMON_SIZE));
    const q = this.selectedQueue();
    const featureWord = this.deviceFeatureSelect < 2 ? Number((this.offeredFeatures >> BigInt(32 * this.deviceFeatureSelect)) & 0xffffffffn) : 0;
    const driverWord = this.driverFeatureSelect < 2 ? Number((this.driverFeatures >> BigInt(32 * this.driverFeatureSelect)) & 0xffffffffn) : 0;
    view.setUint32(COMMON.deviceFeatureSelect, this.deviceFeatureSelect, true);
    view.setUint32(COMMON.deviceFeature, featureWord, true);
    view.setUint32(COMMON.driverFeatureSelect, this.driverFeatureSelect, true);
    view.setUint32(COMMON.driverFeature, driverWord, true);
    view.setUint16(COMMON.msixConfig, VIRTIO_MSI_NO_VECTOR, true);
    view.setUint16(COMMON.numQueues, this.queues.length, true);
    view.setUint8(COMMON.deviceStatus, this.deviceStatus);
    view.setUint8(COMMON.configGeneration, this.configGeneration);
    view.setUint16(COMMON.queueSelect, this.queueSelect, true);
    // 4.1.4.3.2: queue_size reads 0 for a queue that does not exist.
    view.setUint16(COMMON.queueSize, q?.size ?? 0, true);
    view.setUint16(COMMON.queueMsixVector, VIRTIO_MSI_NO_VECTOR, true);
    view.setUint16(COMMON.queueEnable, q?.enabled ? 1 : 0, true);
    view.setUint16(COMMON.queueNotifyOff, q ? this.queueSelect : 0, true);
    view.setBigUint64(COMMON.queueDesc, q?.desc ?? 0n, true);
    view.setBigUint64(COMMON.queueDriver, q?.driver ?? 0n, true);
    view.setBigUint64(COMMON.queueDevice, q?.device ?? 0n, true);
    view.setUint16(COMMON.queueNotifyData, q ? this.queueSelect : 0, true);
    return new Uint8Array(view.buffer);
  }

  /** Merge the written bytes into the current register values, then apply each field they touch. */
  private writeCommon(at: number, bytes: Uint8Array): void {
    const merged = this.commonSnapshot();
    for (let i = 0; i < bytes.length && at + i < COMMON_SIZE; i++) merged[at + i] = bytes[i];
    const view = new DataView(merged.buffer);
    for (const [offset, size] of COMMON_FIELDS) {
      if (offset + size <= at || offset >= at + bytes.length) continue;
      const value = size === 8 ? view.getBigUint64(offset, true) : size === 4 ? view.getUint32(offset, true)
        : size === 2 ? view.getUint16(offset, true) : view.getUint8(offset);
      this.writeCommonField(offset, value);
    }
  }

  private writeCommonField(offset: number, value: number | bigint): void {
    const q = this.selectedQueue();
    const queueWritable = q && !q.enabled; // 4.1.4.3.1: queue registers are fixed once enabled
    switch (offset) {
      case COMMON.deviceFeatureSelect: this.deviceFeatureSelect = Number(value); break;
      case COMMON.driverFeatureSelect: this.driverFeatureSelect = Number(value); break;
      case COMMON.driverFeature: this.writeDriverFeatureWord(Number(value)); break;
      case COMMON.deviceStatus: this.writeStatus(Number(value)); break;
      case COMMON.queueSelect: this.queueSelect = Number(value); break;
      case COMMON.queueSize: {
        const size = Number(value); // split rings need a power of two no larger than the maximum (2.7)
        if (queueWritable && size > 0 && (size & (size - 1)) === 0 && size <= this.device.queueMaxSizes[this.queueSelect]) q.size = size;
        break;
      }
      case COMMON.queueEnable: if (queueWritable && Number(value) === 1) this.enableQueue(q); break;
      case COMMON.queueDesc: if (queueWritable) q.desc = BigInt(value); break;
      case COMMON.queueDriver: if (queueWritable) q.driver = BigInt(value); break;
      case COMMON.queueDevice: if (queueWritable) q.device = BigInt(value); break;
      default: break; // read-only fields, MSI-X vectors (no MSI-X), queue_reset (not offered)
    }
  }

  private writeDriverFeatureWord(word: number): void {
    // Features are fixed once FEATURES_OK is set (3.1.1); only words 0 and 1 exist.
    if ((this.deviceStatus & VIRTIO_STATUS_FEATURES_OK) || this.driverFeatureSelect > 1) return;
    const shift = BigInt(32 * this.driverFeatureSelect);
    this.driverFeatures = (this.driverFeatures & ~(0xffffffffn << shift)) | (BigInt(word >>> 0) << shift);
  }

  /** 2.1.2 and 3.1.1: writing 0 resets the device; FEATURES_OK sticks only when the driver's
   *  features are a subset of the offered ones and include VIRTIO_F_VERSION_1 (6.1). */
  private writeStatus(value: number): void {
    if (value === 0) { this.resetTransport(); return; }
    let status = value & 0xff;
    const settingFeaturesOk = (status & VIRTIO_STATUS_FEATURES_OK) && !(this.deviceStatus & VIRTIO_STATUS_FEATURES_OK);
    if (settingFeaturesOk && !this.featuresAcceptable()) status &= ~VIRTIO_STATUS_FEATURES_OK;
    if ((status & VIRTIO_STATUS_DRIVER_OK) && !(status & VIRTIO_STATUS_FEATURES_OK)) status &= ~VIRTIO_STATUS_DRIVER_OK;
    this.deviceStatus = status | (this.deviceStatus & VIRTIO_STATUS_NEEDS_RESET);
  }

  private featuresAcceptable(): boolean {
    const version1 = 1n << BigInt(VIRTIO_F_VERSION_1);
    return (this.driverFeatures & ~this.offeredFeatures) === 0n && (this.driverFeatures & version1) !== 0n;
  }

  private enableQueue(q: QueueRegisters): void {
    const has = (bit: number) => (this.driverFeatures & (1n << BigInt(bit))) !== 0n;
    q.enabled = true;
    q.ring = new Virtqueue(this.memory, {
      size: q.size, descGpa: toAddress(q.desc), driverGpa: toAddress(q.driver), deviceGpa: toAddress(q.device),
    }, { eventIdx: has(VIRTIO_F_EVENT_IDX), indirect: has(VIRTIO_F_INDIRECT_DESC) });
  }

  private resetTransport(): void {
    this.deviceFeatureSelect = 0;
    this.driverFeatureSelect = 0;
    this.driverFeatures = 0n;
    this.deviceStatus = 0;
    this.queueSelect = 0;
    this.retiredMalformed = this.malformedChainCount;
    this.queues = this.device.queueMaxSizes.map((size) => ({ size, enabled: false, desc: 0n, driver: 0n, device: 0n, ring: null }));
    this.isr = 0;
    this.setIntx(false);
    this.device.reset();
  }

  // ---- Configuration space: the PCI configuration access capability (4.1.4.9) ----------------

  override configRead(offset: number, size: number): number {
    if (this.touchesPciCfgData(offset, size)) this.loadPciCfgData();
    return super.configRead(offset, size);
  }

  override configWrite(offset: number, size: number, value: number): void {
    super.configWrite(offset, size, value);
    if (!this.touchesPciCfgData(offset, size)) return;
    const window = this.pciCfgWindow();
    if (window) this.writeBar(window.offset, this.config.slice(this.pciCfgCap + 16, this.pciCfgCap + 16 + window.length));
  }

  private touchesPciCfgData(offset: number, size: number): boolean {
    const data = this.pciCfgCap + 16;
    return offset < data + 4 && offset + size > data;
  }

  /** cap.bar, cap.offset and cap.length as the driver set them, if they name a valid access:
   *  BAR4, a length of 1, 2 or 4, offset aligned to it and inside the BAR (4.1.4.9.1). */
  private pciCfgWindow(): { offset: number; length: number } | null {
    const bar = this.config[this.pciCfgCap + 4];
    const offset = super.configRead(this.pciCfgCap + 8, 4), length = super.configRead(this.pciCfgCap + 12, 4);
    if (bar !== VIRTIO_PCI_BAR_INDEX || ![1, 2, 4].includes(length) || offset % length !== 0 || offset + length > VIRTIO_PCI_BAR_SIZE) return null;
    return { offset, length };
  }

  private loadPciCfgData(): void {
    const window = this.pciCfgWindow();
    if (window) this.config.set(this.readBar(window.offset, window.length), this.pciCfgCap + 16);
  }
}

/** Class code by device type, as QEMU reports them: network (1) Ethernet controller, block (2) SCSI
 *  storage controller, console (3) other communication controller; everything else "other" (FF00h). */
function classCodeFor(deviceType: number): number {
  const byType: Record<number, number> = { 1: 0x020000, 2: 0x010000, 3: 0x078000 };
  return byType[deviceType] ?? 0x00ff00;
}

/** A guest-written 64-bit address as a number (values past 2^53 cannot lie in guest memory). */
function toAddress(value: bigint): number {
  return value > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(value);
}

function slice(bytes: Uint8Array, at: number, size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = at + i < bytes.length ? bytes[at + i] : 0;
  return out;
}

function littleEndianBig(bytes: Uint8Array): bigint {
  let v = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]);
  return v;
}
