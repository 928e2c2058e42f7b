// PCI bus 0 through configuration mechanism #1 (PCI Local Bus Spec 3.0, 3.2.2.3.2 and chapter 6),
// the 440FX host bridge and the PIIX3 ISA bridge, and a test function with BARs and capabilities.
import { describe, expect, it } from 'vitest';
import { PortBus } from '../../emu/devices/port-bus.ts';
import { PciBus, PciHostBridge } from '../../emu/devices/pci/host-bridge.ts';
import { PciFunction } from '../../emu/devices/pci/device.ts';
import { I440fxHostBridge, Piix3IsaBridge, intxToPirq } from '../../emu/devices/pci/chipset.ts';

function machine() {
  const ports = new PortBus();
  const bus = new PciBus();
  const piix3 = new Piix3IsaBridge();
  bus.addFunction(0, 0, new I440fxHostBridge());
  bus.addFunction(1, 0, piix3);
  new PciHostBridge(bus).attach(ports);
  return { ports, bus, piix3 };
}
/** CONFIG_ADDRESS for bus 0: enable | device << 11 | function << 8 | register. */
const address = (dev: number, fn: number, reg: number) => (0x80000000 | (dev << 11) | (fn << 8) | (reg & 0xfc)) >>> 0;
function cfgRead(ports: PortBus, dev: number, fn: number, reg: number, size = 4): number {
  ports.write(0xcf8, 4, address(dev, fn, reg));
  return ports.read(0xcfc + (reg & 3), size);
}
function cfgWrite(ports: PortBus, dev: number, fn: number, reg: number, size: number, value: number): void {
  ports.write(0xcf8, 4, address(dev, fn, reg));
  ports.write(0xcfc + (reg & 3), size, value);
}

/** A device with a 4 KiB memory BAR, a 32-byte I/O BAR and a 1 MiB prefetchable 64-bit BAR. */
class TestFunction extends PciFunction {
  constructor() {
    super('test', { vendorId: 0x1af4, deviceId: 0x1041, classCode: 0x020000, revision: 1, subsystemVendorId: 0x1af4, subsystemId: 0x0001, interruptPin: 1 });
    this.defineBar(0, { kind: 'mem32', size: 4096 });
    this.defineBar(1, { kind: 'io', size: 32 });
    this.defineBar(2, { kind: 'mem64', size: 1 << 20, prefetchable: true });
  }
}

describe('configuration mechanism #1', () => {
  it('enumerates bus 0 and finds the 440FX (8086:1237) and the PIIX3 (8086:7000)', () => {
    const { ports } = machine();
    ports.write(0xcf8, 4, 0x80000000);
    expect(ports.read(0xcf8, 4)).toBe(0x80000000); // Linux's pci_check_type1 probe
    const found: string[] = [];
    for (let dev = 0; dev < 32; dev++) {
      const id = cfgRead(ports, dev, 0, 0x00);
      if (id !== 0xffffffff) found.push(`${dev}:${id.toString(16)}`);
    }
    expect(found).toEqual(['0:12378086', '1:70008086']);
    expect(cfgRead(ports, 0, 0, 0x08)).toBe(0x06000002); // host bridge class, revision 2
    expect(cfgRead(ports, 1, 0, 0x08) >>> 8).toBe(0x060100); // ISA bridge
    expect(cfgRead(ports, 1, 0, 0x0c) >>> 16 & 0xff).toBe(0); // header type 0, single function
  });

  it('returns all ones for absent functions, other buses, and with the enable bit clear', () => {
    const { ports } = machine();
    expect(cfgRead(ports, 5, 0, 0x00)).toBe(0xffffffff);
    expect(cfgRead(ports, 0, 3, 0x00)).toBe(0xffffffff);
    expect(cfgRead(ports, 5, 0, 0x02, 2)).toBe(0xffff);
    expect(cfgRead(ports, 5, 0, 0x03, 1)).toBe(0xff);
    ports.write(0xcf8, 4, 0x80010000); // bus 1
    expect(ports.read(0xcfc, 4)).toBe(0xffffffff);
    ports.write(0xcf8, 4, 0x00000000); // enable clear: no configuration cycle
    expect(ports.read(0xcfc, 4)).toBe(0xffffffff);
  });

  it('reaches registers with byte and word accesses at CFCh-CFFh', () => {
    const { ports } = machine();
    expect(cfgRead(ports, 0, 0, 0x02, 2)).toBe(0x1237);
    expect(cfgRead(ports, 0, 0, 0x01, 1)).toBe(0x80);
    expect(cfgRead(ports, 1, 0, 0x00, 2)).toBe(0x8086);
    cfgWrite(ports, 0, 0, 0x3c, 1, 0x0b); // interrupt line
    expect(cfgRead(ports, 0, 0, 0x3c, 1)).toBe(0x0b);
  });

  it('ignores byte accesses to CF8h (they are not CONFIG_ADDRESS)', () => {
    const { ports } = machine();
    ports.write(0xcf8, 4, address(1, 0, 0));
    ports.write(0xcf8, 1, 0);
    expect(ports.read(0xcf8, 4)).toBe(address(1, 0, 0));
  });
});

describe('PciFunction configuration header', () => {
  it('ignores writes to read-only registers and bits; status error bits are write-one-to-clear', () => {
    const { ports, bus } = machine();
    const f = new TestFunction();
    f.initRegister(0x06, 2, 0x2000, 0, 0xf900); // received master abort latched
    bus.addFunction(3, 0, f);
    cfgWrite(ports, 3, 0, 0x00, 4, 0xffffffff);
    expect(cfgRead(ports, 3, 0, 0x00)).toBe(0x10411af4);
    cfgWrite(ports, 3, 0, 0x08, 4, 0);
    expect(cfgRead(ports, 3, 0, 0x08)).toBe(0x02000001);
    cfgWrite(ports, 3, 0, 0x04, 2, 0xffff); // command: only implemented bits stick
    expect(cfgRead(ports, 3, 0, 0x04, 2)).toBe(0x0547);
    cfgWrite(ports, 3, 0, 0x06, 2, 0x0000);
    expect(cfgRead(ports, 3, 0, 0x06, 2)).toBe(0x2000);
    cfgWrite(ports, 3, 0, 0x06, 2, 0x2000);
    expect(cfgRead(ports, 3, 0, 0x06, 2)).toBe(0x0000);
    cfgWrite(ports, 3, 0, 0x3c, 2, 0xffff); // line writable, pin read-only
    expect(cfgRead(ports, 3, 0, 0x3c, 2)).toBe(0x01ff);
    expect(cfgRead(ports, 3, 0, 0x2c)).toBe(0x00011af4);
  });

  it('sizes BARs: write all ones, read back the size mask and the type bits', () => {
    const { ports, bus } = machine();
    bus.addFunction(3, 0, new TestFunction());
    for (let bar = 0; bar < 6; bar++) cfgWrite(ports, 3, 0, 0x10 + 4 * bar, 4, 0xffffffff);
    expect(cfgRead(ports, 3, 0, 0x10)).toBe(0xfffff000); // 4 KiB, 32-bit memory
    expect(cfgRead(ports, 3, 0, 0x14)).toBe(0xffffffe1); // 32 bytes of I/O
    expect(cfgRead(ports, 3, 0, 0x18)).toBe(0xfff0000c); // 1 MiB, 64-bit, prefetchable
    expect(cfgRead(ports, 3, 0, 0x1c)).toBe(0xffffffff); // upper half
    expect(cfgRead(ports, 3, 0, 0x20)).toBe(0); // unimplemented
    expect(cfgRead(ports, 3, 0, 0x24)).toBe(0);
  });

  it('reports BAR mappings when the address or the decode enables change', () => {
    const { ports, bus } = machine();
    const f = new TestFunction();
    const events: string[] = [];
    f.onBarChange = (i, a) => events.push(`${i}:${a === null ? 'off' : a.toString(16)}`);
    bus.addFunction(3, 0, f);
    cfgWrite(ports, 3, 0, 0x10, 4, 0xfebf1000);
    cfgWrite(ports, 3, 0, 0x14, 4, 0xc040);
    cfgWrite(ports, 3, 0, 0x18, 4, 0x00000000);
    cfgWrite(ports, 3, 0, 0x1c, 4, 0x00000008);
    expect(events).toEqual([]); // decoding still off
    cfgWrite(ports, 3, 0, 0x04, 2, 0x0003);
    expect(events).toEqual(['0:febf1000', '1:c040', '2:800000000']);
    cfgWrite(ports, 3, 0, 0x10, 4, 0xfebf2000);
    expect(events.at(-1)).toBe('0:febf2000');
    cfgWrite(ports, 3, 0, 0x04, 2, 0x0001); // memory decode off
    expect(events.slice(-2)).toEqual(['0:off', '2:off']);
    expect(f.barAddress(0)).toBe(0xfebf2000);
  });

  it('builds a capability list that software walks from 34h', () => {
    const { ports, bus } = machine();
    const f = new TestFunction();
    const vendor = f.addCapability(0x09, 16);
    f.initRegister(vendor + 2, 1, 16); // cap_len of a virtio vendor capability
    const msix = f.addCapability(0x11, 12);
    bus.addFunction(3, 0, f);
    expect(cfgRead(ports, 3, 0, 0x06, 2) & 0x10).toBe(0x10); // capabilities list bit
    const walk: Array<[number, number]> = [];
    for (let p = cfgRead(ports, 3, 0, 0x34, 1); p !== 0; p = cfgRead(ports, 3, 0, p + 1, 1)) walk.push([p, cfgRead(ports, 3, 0, p, 1)]);
    expect(walk).toEqual([[0x40, 0x09], [0x50, 0x11]]);
    expect([vendor, msix]).toEqual([0x40, 0x50]);
    expect(cfgRead(ports, 3, 0, 0x42, 1)).toBe(16);
  });

  it('shows INTx in the status register and drives the line unless Interrupt Disable is set', () => {
    const f = new TestFunction();
    const levels: boolean[] = [];
    f.irq = { set: (l) => levels.push(l) };
    f.setIntx(true);
    expect(f.status & 0x08).toBe(0x08);
    f.configWrite(0x04, 2, 0x0400);
    f.setIntx(false);
    expect(f.status & 0x08).toBe(0);
    expect(levels).toEqual([true, false, false]);
  });

  it('sets the multi-function bit of function 0 when a device gains a second function', () => {
    const { ports, bus } = machine();
    bus.addFunction(1, 1, new TestFunction());
    expect(cfgRead(ports, 1, 0, 0x0e, 1)).toBe(0x80);
    expect(cfgRead(ports, 1, 1, 0x00)).toBe(0x10411af4);
    expect(() => bus.addFunction(1, 1, new TestFunction())).toThrow();
  });
});

describe('PIIX3 PIRQ routing', () => {
  it('starts with routing disabled and steers PIRQs to the ISA IRQ written to 60h-63h', () => {
    const { ports, piix3 } = machine();
    expect(cfgRead(ports, 1, 0, 0x60)).toBe(0x80808080);
    expect([0, 1, 2, 3].map((p) => piix3.pirqRoute(p))).toEqual([-1, -1, -1, -1]);
    cfgWrite(ports, 1, 0, 0x60, 4, 0x0b0a0b0a);
    expect([0, 1, 2, 3].map((p) => piix3.pirqRoute(p))).toEqual([10, 11, 10, 11]);
    cfgWrite(ports, 1, 0, 0x61, 1, 0x7d); // reserved bits 6:4 read as zero; IRQ 13 is not routable
    expect(cfgRead(ports, 1, 0, 0x61, 1)).toBe(0x0d);
    expect(piix3.pirqRoute(1)).toBe(-1);
    cfgWrite(ports, 1, 0, 0x62, 1, 0x85); // bit 7 disables routing
    expect(piix3.pirqRoute(2)).toBe(-1);
  });

  it('rotates INTx pins across slots onto PIRQs', () => {
    expect(intxToPirq(1, 1)).toBe(0); // PIIX3 slot 1 INTA → PIRQA
    expect(intxToPirq(2, 1)).toBe(1);
    expect(intxToPirq(3, 2)).toBe(3);
    expect(intxToPirq(4, 1)).toBe(3);
    expect(intxToPirq(5, 1)).toBe(0);
  });
});
