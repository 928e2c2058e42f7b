// QEMU's pc-testdev (hw/misc/pc-testdev.c) as kvm-unit-tests use it: the 32-bit register at E0h
// (and its byte-wide view at E8h), the flush-page port, the IRQ line ports at 2000h and the
// scratch MMIO page at FF000000h.
import { describe, it, expect, beforeEach } from 'vitest';
import { PortBus } from '../../emu/devices/port-bus.ts';
import { MmioBus } from '../../emu/devices/mmio-bus.ts';
import { PcTestdev } from '../../emu/devices/pc-testdev.ts';

let ports: PortBus;
let mmio: MmioBus;
let irqs: Array<[number, boolean]>;
let flushed: number[];

beforeEach(() => {
  ports = new PortBus();
  mmio = new MmioBus();
  irqs = [];
  flushed = [];
  const dev = new PcTestdev({ irqs: { setIrq: (line, level) => irqs.push([line, level]) }, onFlushPage: (gpa) => flushed.push(gpa) });
  dev.register(ports, mmio);
});

describe('pc-testdev', () => {
  it('reads back the 32-bit register at E0h, at every size and offset', () => {
    ports.write(0xe0, 4, 0x12345678);
    expect(ports.read(0xe0, 4)).toBe(0x12345678);
    expect([0xe0, 0xe1, 0xe2, 0xe3].map((p) => ports.read(p, 1))).toEqual([0x78, 0x56, 0x34, 0x12]);
    expect(ports.read(0xe2, 2)).toBe(0x1234);
    ports.write(0xe2, 2, 0xabcd);
    ports.write(0xe1, 1, 0x99);
    expect(ports.read(0xe0, 4)).toBe(0xabcd9978);
  });

  it('shows the same register byte by byte at E8h-EBh', () => {
    ports.write(0xe0, 4, 0xdeadbeef);
    expect([0xe8, 0xe9, 0xea, 0xeb].map((p) => ports.read(p, 1))).toEqual([0xef, 0xbe, 0xad, 0xde]);
    ports.write(0xe8, 4, 0x01020304);
    expect(ports.read(0xe0, 4)).toBe(0x01020304);
    ports.write(0xeb, 1, 0xff);
    expect(ports.read(0xe8, 4)).toBe(0xff020304);
  });

  it('drives ISA/GSI line N with a byte written to port 2000h + N', () => {
    ports.write(0x2005, 1, 1);
    ports.write(0x2005, 1, 0);
    ports.write(0x2017, 1, 0x80);
    expect(irqs).toEqual([[5, true], [5, false], [23, true]]);
    expect(ports.read(0x2005, 1)).toBe(0);
    expect(ports.read(0x2018, 1)).toBe(0xff); // past line 23: not the testdev's
  });

  it('passes a flush-page write on as a page address', () => {
    ports.write(0xe4, 4, 0x12345678);
    expect(flushed).toEqual([0x12345000]);
    expect(ports.read(0xe4, 4)).toBe(0);
  });

  it('keeps what is written to the scratch page at FF000000h, little endian, at any size', () => {
    mmio.write(0xff000000, 8, 0x1122334455667788n);
    expect(mmio.read(0xff000000, 8)).toBe(0x1122334455667788n);
    expect(mmio.read(0xff000000, 4)).toBe(0x55667788);
    expect(mmio.read(0xff000004, 4)).toBe(0x11223344);
    expect(mmio.read(0xff000003, 2)).toBe(0x4455);
    mmio.write(0xff000001, 1, 0xaa);
    expect(mmio.read(0xff000000, 2)).toBe(0xaa88);
    mmio.write(0xff00fffc, 4, 0xcafef00d);
    expect(mmio.read(0xff00fffc, 4)).toBe(0xcafef00d);
    expect(mmio.read(0xff010000, 1)).toBe(0xff); // past the 64 KiB page
  });
});
