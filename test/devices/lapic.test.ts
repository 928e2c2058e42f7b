// Local APIC: driven through its xAPIC page and x2APIC MSRs as Linux drives it (Intel SDM Vol. 3A ch. 11).
import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../emu/machine/clock.ts';
import { ApicBus, DeliveryMode, Shorthand, type EoiListener } from '../../emu/devices/apic-bus.ts';
import { LocalApic } from '../../emu/devices/lapic.ts';

// Register offsets and bits, written out from the SDM rather than imported.
const ID = 0x20, VERSION = 0x30, TPR = 0x80, PPR = 0xa0, EOI = 0xb0, LDR = 0xd0, DFR = 0xe0, SVR = 0xf0;
const ISR0 = 0x100, TMR0 = 0x180, IRR0 = 0x200, ESR = 0x280, ICR_LOW = 0x300, ICR_HIGH = 0x310;
const LVT_TIMER = 0x320, LVT_LINT0 = 0x350, LVT_LINT1 = 0x360, LVT_ERROR = 0x370;
const TIMER_INITIAL = 0x380, TIMER_CURRENT = 0x390, TIMER_DIVIDE = 0x3e0;
const MASKED = 0x10000, PERIODIC = 1 << 17, TSC_DEADLINE = 2 << 17;
const APIC_ENABLE = 0x100;
const BASE_EN = 0x800n, BASE_EXTD = 0x400n, BASE_BSP = 0x100n, BASE = 0xfee00000n;

function setup(count = 1) {
  const clock = new VirtualClock();
  const bus = new ApicBus();
  const apics = Array.from({ length: count }, (_, id) => new LocalApic(id, clock, bus));
  return { clock, bus, apics, apic: apics[0] };
}
const rd = (a: LocalApic, reg: number) => a.read(reg, 4) as number;
const wr = (a: LocalApic, reg: number, v: number) => a.write(reg, 4, v);
const enable = (a: LocalApic) => wr(a, SVR, APIC_ENABLE | 0xff);
/** Fixed self-IPI through the ICR: vector, fixed, edge, shorthand "self". */
const selfIpi = (a: LocalApic, vector: number) => wr(a, ICR_LOW, (1 << 18) | (1 << 14) | vector);
/** Bit for `vector` in the 256-bit register at base (ISR/TMR/IRR): register base + 10h * (vector / 32). */
const vectorBit = (a: LocalApic, base: number, vector: number) => ((rd(a, base + 0x10 * (vector >> 5)) >>> (vector & 31)) & 1) === 1;

describe('local APIC registers after reset (SDM 11.4.7.1)', () => {
  it('reports ID, version 50014h, SVR FFh, DFR all ones, masked LVTs and APIC_BASE FEE00900h on the BSP', () => {
    const { apics } = setup(2);
    expect(rd(apics[1], ID)).toBe(0x01000000);
    expect(rd(apics[0], VERSION)).toBe(0x00050014);
    expect(rd(apics[0], SVR)).toBe(0xff);
    expect(rd(apics[0], DFR)).toBe(0xffffffff);
    for (const lvt of [LVT_TIMER, 0x330, 0x340, LVT_LINT0, LVT_LINT1, LVT_ERROR]) expect(rd(apics[0], lvt)).toBe(0x00010000);
    expect(apics[0].apicBase).toBe(BASE | BASE_EN | BASE_BSP);
    expect(apics[1].apicBase).toBe(BASE | BASE_EN);
  });

  it('keeps read-only registers and reserved bits as the SDM says', () => {
    const { apic } = setup();
    wr(apic, VERSION, 0x12345678);
    expect(rd(apic, VERSION)).toBe(0x00050014);
    wr(apic, DFR, 0x0); // only bits 31:28 (the model) are writable
    expect(rd(apic, DFR)).toBe(0x0fffffff);
    wr(apic, LDR, 0xffffffff); // logical ID in 31:24
    expect(rd(apic, LDR)).toBe(0xff000000);
    wr(apic, TPR, 0x1ff);
    expect(rd(apic, TPR)).toBe(0xff);
    wr(apic, TIMER_CURRENT, 1234);
    expect(rd(apic, TIMER_CURRENT)).toBe(0);
  });
});

describe('interrupt acceptance, priority and EOI (SDM 11.8)', () => {
  it('delivers the higher priority class first and holds a lower class while a higher one is in service', () => {
    const { apic } = setup();
    enable(apic);
    selfIpi(apic, 0x31);
    selfIpi(apic, 0x52);
    expect(vectorBit(apic, IRR0, 0x31)).toBe(true);
    expect(vectorBit(apic, IRR0, 0x52)).toBe(true);
    expect(apic.pendingVector()).toBe(0x52);
    expect(apic.acknowledge()).toBe(0x52);
    expect(vectorBit(apic, ISR0, 0x52)).toBe(true);
    expect(vectorBit(apic, IRR0, 0x52)).toBe(false);
    expect(rd(apic, PPR)).toBe(0x50); // the in-service class
    expect(apic.pendingVector()).toBe(-1); // class 3 does not beat class 5
    wr(apic, EOI, 0);
    expect(vectorBit(apic, ISR0, 0x52)).toBe(false);
    expect(rd(apic, PPR)).toBe(0);
    expect(apic.pendingVector()).toBe(0x31);
    expect(apic.acknowledge()).toBe(0x31);
  });

  it('nests a higher class over a lower one in service, and EOI retires the highest in-service vector first', () => {
    const { apic } = setup();
    enable(apic);
    selfIpi(apic, 0x41);
    expect(apic.acknowledge()).toBe(0x41);
    selfIpi(apic, 0x42); // same class as the one in service: held
    expect(apic.pendingVector()).toBe(-1);
    selfIpi(apic, 0x90);
    expect(apic.acknowledge()).toBe(0x90);
    wr(apic, EOI, 0);
    expect(vectorBit(apic, ISR0, 0x90)).toBe(false);
    expect(vectorBit(apic, ISR0, 0x41)).toBe(true);
    expect(apic.pendingVector()).toBe(-1);
    wr(apic, EOI, 0);
    expect(apic.pendingVector()).toBe(0x42);
  });

  it('masks interrupt classes at or below the TPR class; CR8 is TPR[7:4]', () => {
    const { apic } = setup();
    enable(apic);
    wr(apic, TPR, 0x45);
    selfIpi(apic, 0x4f);
    expect(apic.pendingVector()).toBe(-1);
    expect(rd(apic, PPR)).toBe(0x45);
    selfIpi(apic, 0x50);
    expect(apic.pendingVector()).toBe(0x50);
    expect(apic.getTpr()).toBe(4);
    apic.setTpr(5);
    expect(rd(apic, TPR)).toBe(0x50);
    expect(apic.pendingVector()).toBe(-1);
    apic.setTpr(0);
    expect(apic.pendingVector()).toBe(0x50);
  });

  it('returns the spurious vector when the CPU acknowledges with nothing deliverable (SDM 11.9)', () => {
    const { apic } = setup();
    wr(apic, SVR, APIC_ENABLE | 0xef);
    expect(apic.acknowledge()).toBe(0xef);
    expect(rd(apic, ISR0 + 0x70)).toBe(0);
  });

  it('sets TMR for level-triggered vectors and broadcasts their EOI to the IOAPICs, not edge ones', () => {
    const { apic, bus } = setup();
    const eois: number[] = [];
    const listener: EoiListener = { onEoiBroadcast: (v) => eois.push(v) };
    bus.addEoiListener(listener);
    enable(apic);
    const message = { deliveryMode: DeliveryMode.Fixed, logical: false, destination: 0, wide: false, shorthand: Shorthand.None, assert: true };
    bus.deliver({ ...message, vector: 0x61, levelTriggered: true });
    expect(vectorBit(apic, TMR0, 0x61)).toBe(true);
    apic.acknowledge();
    wr(apic, EOI, 0);
    expect(eois).toEqual([0x61]);
    bus.deliver({ ...message, vector: 0x62, levelTriggered: false });
    expect(vectorBit(apic, TMR0, 0x62)).toBe(false);
    apic.acknowledge();
    wr(apic, EOI, 0);
    expect(eois).toEqual([0x61]);
  });

  it('suppresses the EOI broadcast with SVR bit 12 only when the version register advertises it', () => {
    const plain = setup();
    wr(plain.apic, SVR, 0x11ff);
    expect(rd(plain.apic, SVR)).toBe(0x1ff); // bit 12 reserved without version bit 24

    const clock = new VirtualClock(), bus = new ApicBus();
    const apic = new LocalApic(0, clock, bus, { eoiBroadcastSuppression: true });
    const eois: number[] = [];
    bus.addEoiListener({ onEoiBroadcast: (v) => eois.push(v) });
    expect(rd(apic, VERSION)).toBe(0x01050014);
    wr(apic, SVR, 0x11ff);
    bus.deliver({ vector: 0x70, deliveryMode: DeliveryMode.Fixed, logical: false, destination: 0, wide: false,
      shorthand: Shorthand.None, levelTriggered: true, assert: true });
    apic.acknowledge();
    wr(apic, EOI, 0);
    expect(eois).toEqual([]);
    expect(vectorBit(apic, ISR0, 0x70)).toBe(false);
  });
});

describe('software disable (SDM 11.4.7.2)', () => {
  it('masks every LVT entry and keeps them masked after re-enabling until software unmasks them', () => {
    const { apic } = setup();
    enable(apic);
    wr(apic, LVT_TIMER, 0x40);
    wr(apic, LVT_ERROR, 0xfe);
    expect(rd(apic, LVT_TIMER)).toBe(0x40);
    wr(apic, SVR, 0xff); // software disable
    expect(rd(apic, LVT_TIMER)).toBe(0x40 | MASKED);
    expect(rd(apic, LVT_ERROR)).toBe(0xfe | MASKED);
    wr(apic, LVT_TIMER, 0x41); // cannot unmask while disabled
    expect(rd(apic, LVT_TIMER)).toBe(0x41 | MASKED);
    enable(apic);
    expect(rd(apic, LVT_TIMER)).toBe(0x41 | MASKED);
    wr(apic, LVT_TIMER, 0x41);
    expect(rd(apic, LVT_TIMER)).toBe(0x41);
  });
});

describe('APIC timer (SDM 11.5.4)', () => {
  it('one-shot: initial count 1000 divided by 16 expires after 16000 ns, counting down meanwhile', () => {
    const { apic, clock } = setup();
    enable(apic);
    wr(apic, TIMER_DIVIDE, 0x3); // divide by 16
    wr(apic, LVT_TIMER, 0x40);
    wr(apic, TIMER_INITIAL, 1000);
    expect(rd(apic, TIMER_CURRENT)).toBe(1000);
    clock.advanceTo(8000);
    expect(rd(apic, TIMER_CURRENT)).toBe(500);
    clock.advanceTo(15999);
    expect(rd(apic, TIMER_CURRENT)).toBe(1);
    expect(apic.pendingVector()).toBe(-1);
    clock.advanceTo(16000);
    expect(apic.pendingVector()).toBe(0x40);
    expect(rd(apic, TIMER_CURRENT)).toBe(0);
    apic.acknowledge();
    wr(apic, EOI, 0);
    clock.advanceTo(100_000);
    expect(apic.pendingVector()).toBe(-1); // one-shot: no second interrupt
    expect(clock.nextDeadline()).toBe(Infinity);
  });

  it('periodic: reloads the initial count and interrupts every period', () => {
    const { apic, clock } = setup();
    enable(apic);
    wr(apic, TIMER_DIVIDE, 0xb); // divide by 1
    wr(apic, LVT_TIMER, PERIODIC | 0x41);
    wr(apic, TIMER_INITIAL, 100);
    clock.advanceTo(100);
    expect(apic.acknowledge()).toBe(0x41);
    wr(apic, EOI, 0);
    expect(rd(apic, TIMER_CURRENT)).toBe(100);
    clock.advanceTo(150);
    expect(rd(apic, TIMER_CURRENT)).toBe(50);
    expect(apic.pendingVector()).toBe(-1);
    clock.advanceTo(200);
    expect(apic.pendingVector()).toBe(0x41);
    wr(apic, TIMER_INITIAL, 0); // writing zero stops the timer
    apic.acknowledge();
    wr(apic, EOI, 0);
    clock.advanceTo(1000);
    expect(apic.pendingVector()).toBe(-1);
  });

  it('a masked timer still counts but raises nothing', () => {
    const { apic, clock } = setup();
    enable(apic);
    wr(apic, TIMER_DIVIDE, 0xb);
    wr(apic, LVT_TIMER, MASKED | 0x40);
    wr(apic, TIMER_INITIAL, 10);
    clock.advanceTo(5);
    expect(rd(apic, TIMER_CURRENT)).toBe(5);
    clock.advanceTo(20);
    expect(apic.pendingVector()).toBe(-1);
  });

  it('TSC-deadline: fires when the TSC (virtual ns) reaches IA32_TSC_DEADLINE, then reads zero', () => {
    const { apic, clock } = setup();
    enable(apic);
    apic.writeTscDeadline(5000n); // one-shot mode: ignored
    expect(apic.readTscDeadline()).toBe(0n);
    wr(apic, LVT_TIMER, TSC_DEADLINE | 0x42);
    wr(apic, TIMER_INITIAL, 10); // ignored in TSC-deadline mode
    expect(rd(apic, TIMER_INITIAL)).toBe(0);
    expect(apic.writeMsr(0x6e0, 5000n)).toBe(true);
    expect(apic.readMsr(0x6e0)).toBe(5000n);
    clock.advanceTo(4999);
    expect(apic.pendingVector()).toBe(-1);
    clock.advanceTo(5000);
    expect(apic.pendingVector()).toBe(0x42);
    expect(apic.readTscDeadline()).toBe(0n);
  });

  it('TSC-deadline: zero disarms, a deadline in the past fires at once, leaving the mode disarms', () => {
    const { apic, clock } = setup();
    enable(apic);
    wr(apic, LVT_TIMER, TSC_DEADLINE | 0x43);
    apic.writeTscDeadline(3000n);
    apic.writeTscDeadline(0n);
    clock.advanceTo(4000);
    expect(apic.pendingVector()).toBe(-1);
    apic.writeTscDeadline(3500n);
    expect(apic.pendingVector()).toBe(0x43);
    apic.acknowledge();
    wr(apic, EOI, 0);
    apic.writeTscDeadline(9000n);
    wr(apic, LVT_TIMER, 0x43); // back to one-shot
    clock.advanceTo(10_000);
    expect(apic.pendingVector()).toBe(-1);
  });
});

describe('errors (SDM 11.5.3)', () => {
  it('logs illegal vectors in ESR with write-then-read semantics and raises the error LVT once per ESR write', () => {
    const { apic } = setup();
    enable(apic);
    wr(apic, LVT_ERROR, 0xfe);
    selfIpi(apic, 0x05); // sending an illegal vector
    expect(rd(apic, ESR)).toBe(0); // nothing latched before an ESR write
    wr(apic, ESR, 0);
    expect(rd(apic, ESR)).toBe(0x20); // send illegal vector
    expect(apic.pendingVector()).toBe(0xfe);
    apic.acknowledge();
    wr(apic, EOI, 0);
    wr(apic, ESR, 0);
    expect(rd(apic, ESR)).toBe(0);
    // An LVT entry with an illegal vector: received illegal vector.
    wr(apic, LVT_LINT1, 0x03);
    apic.setLint(1, true);
    wr(apic, ESR, 0);
    expect(rd(apic, ESR)).toBe(0x40);
    // Reserved register address.
    apic.read(0x40, 4);
    wr(apic, ESR, 0);
    expect(rd(apic, ESR)).toBe(0x80);
  });
});

describe('IPIs between APICs (SDM 11.6)', () => {
  it('addresses physical IDs, flat and cluster logical destinations, and the shorthands', () => {
    const { apics } = setup(3);
    apics.forEach(enable);
    wr(apics[0], ICR_HIGH, 2 << 24);
    wr(apics[0], ICR_LOW, 0x4000 | 0x50); // fixed, physical
    expect(apics.map((a) => a.pendingVector())).toEqual([-1, -1, 0x50]);
    expect(rd(apics[0], ICR_LOW) & 0x1000).toBe(0); // delivery status idle
    apics[2].acknowledge(); wr(apics[2], EOI, 0);

    // Flat model: LDR bitmaps 01h, 02h, 04h; destination 06h reaches APICs 1 and 2.
    apics.forEach((a, i) => wr(a, LDR, (1 << i) << 24));
    wr(apics[0], ICR_HIGH, 0x06 << 24);
    wr(apics[0], ICR_LOW, 0x4000 | 0x800 | 0x51);
    expect(apics.map((a) => a.pendingVector())).toEqual([-1, 0x51, 0x51]);
    apics.forEach((a) => { if (a.pendingVector() >= 0) { a.acknowledge(); wr(a, EOI, 0); } });

    // Cluster model: cluster 1 member bits 1 and 2 for APICs 1 and 2, cluster 2 member 1 for APIC 0.
    apics.forEach((a) => wr(a, DFR, 0x0fffffff));
    wr(apics[0], LDR, 0x21 << 24); wr(apics[1], LDR, 0x11 << 24); wr(apics[2], LDR, 0x12 << 24);
    wr(apics[0], ICR_HIGH, 0x13 << 24);
    wr(apics[0], ICR_LOW, 0x4000 | 0x800 | 0x52);
    expect(apics.map((a) => a.pendingVector())).toEqual([-1, 0x52, 0x52]);
    apics.forEach((a) => { if (a.pendingVector() >= 0) { a.acknowledge(); wr(a, EOI, 0); } });

    wr(apics[1], ICR_LOW, (3 << 18) | 0x4000 | 0x53); // all excluding self
    expect(apics.map((a) => a.pendingVector())).toEqual([0x53, -1, 0x53]);
    wr(apics[1], ICR_LOW, (2 << 18) | 0x4000 | 0x54); // all including self
    expect(apics[1].pendingVector()).toBe(0x54);
  });

  it('gives a lowest-priority message to the APIC with the lowest arbitration priority', () => {
    const { apics } = setup(2);
    apics.forEach(enable);
    wr(apics[0], TPR, 0x20);
    wr(apics[1], TPR, 0x10);
    wr(apics[0], ICR_HIGH, 0xff << 24); // broadcast
    wr(apics[0], ICR_LOW, 0x4000 | (DeliveryMode.LowestPriority << 8) | 0x60);
    expect(apics.map((a) => a.pendingVector())).toEqual([-1, 0x60]);
  });

  it('runs the INIT / SIPI / SIPI start-up sequence, ignoring INIT de-assert and the second SIPI', () => {
    const { apics } = setup(2);
    const events: string[] = [];
    apics[1].onInit = () => events.push('init');
    apics[1].onSipi = (v) => events.push(`sipi ${v.toString(16)}`);
    apics[1].onNmi = () => events.push('nmi');
    enable(apics[0]);
    wr(apics[0], ICR_HIGH, 1 << 24);
    wr(apics[0], ICR_LOW, 0xc500); // INIT, level triggered, assert
    wr(apics[0], ICR_LOW, 0x8500); // INIT level de-assert
    wr(apics[0], ICR_LOW, 0x0600 | 0x9a); // SIPI, vector 9Ah
    wr(apics[0], ICR_LOW, 0x0600 | 0x9a);
    wr(apics[0], ICR_LOW, 0x4400); // NMI
    expect(events).toEqual(['init', 'sipi 9a', 'nmi']);
  });
});

describe('LINT0 / LINT1', () => {
  it('virtual wire mode passes the 8259 INTR through as ExtINT and LINT1 as NMI', () => {
    const { apic } = setup();
    let nmis = 0;
    apic.onNmi = () => nmis++;
    apic.setLint(0, true);
    expect(apic.extIntPending).toBe(false); // LINT0 masked after reset
    apic.enterVirtualWireMode();
    expect(rd(apic, LVT_LINT0)).toBe(0x700);
    expect(rd(apic, LVT_LINT1)).toBe(0x400);
    expect(apic.extIntPending).toBe(true);
    expect(apic.pendingVector()).toBe(-1);
    apic.setLint(0, false);
    expect(apic.extIntPending).toBe(false);
    apic.setLint(1, true);
    apic.setLint(1, true);
    expect(nmis).toBe(1);
  });

  it('with the APIC hardware-disabled LINT0 is the INTR pin', () => {
    const { apic } = setup();
    expect(apic.writeApicBase(BASE | BASE_BSP)).toBe(true);
    apic.setLint(0, true);
    expect(apic.extIntPending).toBe(true);
    expect(rd(apic, VERSION)).toBe(0xffffffff); // the page is not decoded
  });
});

describe('IA32_APIC_BASE and x2APIC (SDM 11.12)', () => {
  it('switches to x2APIC mode and reaches the registers through MSRs 800h-8FFh', () => {
    const clock = new VirtualClock(), bus = new ApicBus();
    const apic = new LocalApic(0x23, clock, bus, { bsp: true });
    expect(apic.readMsr(0x808)).toBeNull(); // x2APIC MSRs #GP in xAPIC mode
    expect(apic.writeMsr(0x1b, BASE | BASE_BSP | BASE_EN | BASE_EXTD)).toBe(true);
    expect(apic.readMsr(0x1b)).toBe(BASE | BASE_BSP | BASE_EN | BASE_EXTD);
    expect(apic.read(VERSION, 4)).toBe(0xffffffff); // MMIO interface off
    expect(apic.readMsr(0x802)).toBe(0x23n);
    expect(apic.readMsr(0x803)).toBe(0x50014n);
    expect(apic.readMsr(0x80d)).toBe(0x00020008n); // cluster 2, member bit 3
    expect(apic.writeMsr(0x80f, 0x1ffn)).toBe(true);
    expect(apic.writeMsr(0x808, 0x30n)).toBe(true);
    expect(apic.readMsr(0x808)).toBe(0x30n);
    expect(apic.getTpr()).toBe(3);

    expect(apic.writeMsr(0x83f, 0x61n)).toBe(true); // SELF IPI
    expect(apic.pendingVector()).toBe(0x61);
    const icr = (0x23n << 32n) | 0x4062n; // fixed, physical, destination = own x2APIC ID
    expect(apic.writeMsr(0x830, icr)).toBe(true);
    expect(apic.readMsr(0x830)).toBe(icr);
    expect(apic.acknowledge()).toBe(0x62);
    expect(apic.writeMsr(0x80b, 1n)).toBe(false); // EOI must be written with 0
    expect(apic.writeMsr(0x80b, 0n)).toBe(true);
    expect(apic.acknowledge()).toBe(0x61);
  });

  it('raises #GP for absent, read-only and write-only x2APIC registers and reserved upper bits', () => {
    const { apic } = setup();
    expect(apic.writeMsr(0x1b, BASE | BASE_BSP | BASE_EN | BASE_EXTD)).toBe(true);
    expect(apic.readMsr(0x80e)).toBeNull(); // DFR does not exist
    expect(apic.readMsr(0x809)).toBeNull(); // nor APR
    expect(apic.readMsr(0x831)).toBeNull(); // nor ICR high
    expect(apic.readMsr(0x80b)).toBeNull(); // EOI is write-only
    expect(apic.readMsr(0x83f)).toBeNull(); // SELF IPI is write-only
    expect(apic.writeMsr(0x802, 5n)).toBe(false); // ID is read-only
    expect(apic.writeMsr(0x80d, 1n)).toBe(false); // LDR is read-only
    expect(apic.writeMsr(0x808, 1n << 32n)).toBe(false);
    expect(apic.writeMsr(0x828, 1n)).toBe(false); // ESR takes only zero
    expect(apic.readMsr(0x804)).toBeNull(); // reserved
  });

  it('accepts only the legal mode transitions (SDM 11.12.5)', () => {
    const { apic } = setup();
    const xapic = BASE | BASE_BSP | BASE_EN, x2apic = xapic | BASE_EXTD, disabled = BASE | BASE_BSP;
    expect(apic.writeApicBase(BASE | BASE_BSP | BASE_EXTD)).toBe(false); // EXTD without EN: invalid
    expect(apic.writeApicBase(xapic | 0x200n)).toBe(false); // reserved bit 9
    expect(apic.writeApicBase(xapic | (1n << 36n))).toBe(false); // above MAXPHYADDR
    expect(apic.writeApicBase(x2apic)).toBe(true);
    expect(apic.writeApicBase(xapic)).toBe(false); // x2APIC → xAPIC directly
    expect(apic.apicBase).toBe(x2apic);
    expect(apic.writeApicBase(disabled)).toBe(true);
    expect(apic.writeApicBase(x2apic)).toBe(false); // disabled → x2APIC directly
    expect(apic.writeApicBase(xapic)).toBe(true);
    expect(apic.apicBase).toBe(xapic);
  });

  it('disabling resets the APIC to its power-up state and reports a moved base', () => {
    const { apic } = setup();
    const moves: number[] = [];
    apic.onBaseChange = (b) => moves.push(b);
    enable(apic);
    wr(apic, ID, 0x07000000);
    wr(apic, TPR, 0x20);
    apic.writeApicBase(BASE | BASE_BSP);
    apic.writeApicBase(0xfed00000n | BASE_BSP | BASE_EN);
    expect(moves).toEqual([0xfed00000]);
    expect(rd(apic, SVR)).toBe(0xff);
    expect(rd(apic, TPR)).toBe(0);
    expect(rd(apic, ID)).toBe(0);
  });
});
