// IOAPIC (Intel 82093AA datasheet): programmed through IOREGSEL/IOWIN, delivering to local APICs over the APIC bus.
import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../emu/machine/clock.ts';
import { ApicBus } from '../../emu/devices/apic-bus.ts';
import { LocalApic } from '../../emu/devices/lapic.ts';
import { IoApic } from '../../emu/devices/ioapic.ts';

const IOREGSEL = 0x00, IOWIN = 0x10;
const MASKED = 1 << 16, LEVEL = 1 << 15, REMOTE_IRR = 1 << 14, ACTIVE_LOW = 1 << 13, LOGICAL = 1 << 11;
const LAPIC_SVR = 0xf0, LAPIC_EOI = 0xb0, LAPIC_LDR = 0xd0;

function setup(cpus = 1) {
  const clock = new VirtualClock();
  const bus = new ApicBus();
  const apics = Array.from({ length: cpus }, (_, id) => new LocalApic(id, clock, bus));
  for (const a of apics) a.write(LAPIC_SVR, 4, 0x1ff); // software-enable, as Linux does before unmasking IOAPIC pins
  const ioapic = new IoApic(bus);
  return { apics, apic: apics[0], ioapic };
}
function readReg(io: IoApic, index: number): number {
  io.write(IOREGSEL, 4, index);
  return io.read(IOWIN, 4) as number;
}
function writeReg(io: IoApic, index: number, value: number): void {
  io.write(IOREGSEL, 4, index);
  io.write(IOWIN, 4, value);
}
/** Program redirection entry `pin`: low dword at 10h + 2·pin, destination in the high dword's bits 31:24. */
function route(io: IoApic, pin: number, low: number, destination = 0): void {
  writeReg(io, 0x11 + 2 * pin, destination << 24);
  writeReg(io, 0x10 + 2 * pin, low);
}
function serviceAndEoi(apic: LocalApic): number {
  const v = apic.acknowledge();
  apic.write(LAPIC_EOI, 4, 0);
  return v;
}

describe('IOAPIC registers', () => {
  it('reports version 170011h, a writable 4-bit ID copied into the arbitration register, masked entries', () => {
    const { ioapic } = setup();
    expect(readReg(ioapic, 0x01)).toBe(0x00170011);
    writeReg(ioapic, 0x00, 0xff000000);
    expect(readReg(ioapic, 0x00)).toBe(0x0f000000);
    expect(readReg(ioapic, 0x02)).toBe(0x0f000000);
    writeReg(ioapic, 0x01, 0);
    expect(readReg(ioapic, 0x01)).toBe(0x00170011);
    for (let pin = 0; pin < 24; pin++) expect(readReg(ioapic, 0x10 + 2 * pin)).toBe(MASKED);
    expect(readReg(ioapic, 0x10 + 2 * 24)).toBe(0); // beyond the 24 entries
    ioapic.write(IOREGSEL, 1, 0x13); // IOREGSEL takes byte writes and reads back
    expect(ioapic.read(IOREGSEL, 4)).toBe(0x13);
  });

  it('keeps delivery status and remote IRR read-only and the high dword to the destination field', () => {
    const { ioapic } = setup();
    writeReg(ioapic, 0x12, 0xffffffff);
    expect(readReg(ioapic, 0x12)).toBe(0x0001afff);
    writeReg(ioapic, 0x13, 0xffffffff);
    expect(readReg(ioapic, 0x13)).toBe(0xff000000);
  });
});

describe('IOAPIC delivery', () => {
  it('delivers an edge interrupt on the rising edge to the addressed local APIC', () => {
    const { apic, ioapic } = setup();
    route(ioapic, 4, 0x34); // fixed, physical, edge, active high, unmasked, destination APIC 0
    ioapic.setIrq(4, true);
    expect(apic.pendingVector()).toBe(0x34);
    expect(serviceAndEoi(apic)).toBe(0x34);
    ioapic.setIrq(4, true); // still high: no new edge
    expect(apic.pendingVector()).toBe(-1);
    ioapic.setIrq(4, false);
    ioapic.setIrq(4, true);
    expect(apic.pendingVector()).toBe(0x34);
  });

  it('does not deliver from masked entries, and an edge seen while masked is lost', () => {
    const { apic, ioapic } = setup();
    route(ioapic, 3, MASKED | 0x33);
    ioapic.setIrq(3, true);
    expect(apic.pendingVector()).toBe(-1);
    route(ioapic, 3, 0x33);
    expect(apic.pendingVector()).toBe(-1);
  });

  it('level: sets remote IRR, waits for the EOI broadcast, and re-sends while the line stays asserted', () => {
    const { apic, ioapic } = setup();
    route(ioapic, 10, LEVEL | 0x5a);
    ioapic.setIrq(10, true);
    expect(apic.pendingVector()).toBe(0x5a);
    expect(readReg(ioapic, 0x10 + 20) & REMOTE_IRR).toBe(REMOTE_IRR);
    expect(serviceAndEoi(apic)).toBe(0x5a); // the device still asserts its line
    expect(apic.pendingVector()).toBe(0x5a);
    expect(readReg(ioapic, 0x10 + 20) & REMOTE_IRR).toBe(REMOTE_IRR);
    ioapic.setIrq(10, false); // the handler quiets the device
    serviceAndEoi(apic);
    expect(readReg(ioapic, 0x10 + 20) & REMOTE_IRR).toBe(0);
    expect(apic.pendingVector()).toBe(-1);
  });

  it('level: an asserted pin is delivered when its entry is unmasked', () => {
    const { apic, ioapic } = setup();
    route(ioapic, 11, MASKED | LEVEL | 0x5b);
    ioapic.setIrq(11, true);
    expect(apic.pendingVector()).toBe(-1);
    route(ioapic, 11, LEVEL | 0x5b);
    expect(apic.pendingVector()).toBe(0x5b);
  });

  it('active low: a low pin is asserted, a high pin idle', () => {
    const { apic, ioapic } = setup();
    ioapic.setIrq(16, true); // PCI INTx idles high
    route(ioapic, 16, ACTIVE_LOW | LEVEL | 0x70);
    expect(apic.pendingVector()).toBe(-1);
    ioapic.setIrq(16, false);
    expect(apic.pendingVector()).toBe(0x70);
  });

  it('reaches other CPUs by physical and logical destination', () => {
    const { apics, ioapic } = setup(2);
    route(ioapic, 1, 0x31, 1);
    ioapic.setIrq(1, true);
    expect(apics.map((a) => a.pendingVector())).toEqual([-1, 0x31]);
    apics.forEach((a, i) => a.write(LAPIC_LDR, 4, (1 << i) << 24)); // flat model
    route(ioapic, 2, LOGICAL | 0x32, 0x03);
    ioapic.setIrq(2, true);
    expect(apics[0].pendingVector()).toBe(0x32);
    expect(apics[1].pendingVector()).toBe(0x32);
  });
});
