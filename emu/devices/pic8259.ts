// The PC's pair of Intel 8259A programmable interrupt controllers (Intel 8259A datasheet, order no.
// 231468) plus the edge/level control registers (ELCR) of the PIIX/ICH south bridges (Intel 82371AB
// PIIX4 datasheet 4.1.13 "ELCR1/ELCR2"). The master takes ISA IRQ 0-7 and the slave IRQ 8-15; the
// slave's INT output drives the master's IR2 (the cascade), so IRQ 2 itself is not available to
// devices (the AT moved that ISA pin to IRQ 9).
//
// Inputs are levels (`IrqSink.setIrq`). In edge mode a low-to-high transition sets the IRR bit; the
// datasheet ("Edge triggered mode", p. 13) requires the line to stay high until the first INTA, and a
// request that disappears before then is lost: the IRR bit clears with the line and the INTA cycle
// answers with the "default IR7" spurious vector. Devices therefore hold their line until serviced;
// a zero-length pulse (raise then lower at once) never reaches the CPU through this PIC.
import type { PortBus, PortDevice } from './port-bus.ts';
import type { IrqSink } from './irq.ts';

export const PIC_MASTER_PORT = 0x20; // command (ICW1, OCW2, OCW3 / IRR, ISR, poll) at +0, data (ICW2-4, OCW1 / IMR) at +1
export const PIC_SLAVE_PORT = 0xa0;
export const PIC_ELCR_PORT = 0x4d0; // ELCR1 (IRQ 0-7) at 0x4D0, ELCR2 (IRQ 8-15) at 0x4D1
export const PIC_CASCADE_IRQ = 2;
/** ELCR bits that exist: IRQ 0, 1, 2 (timer, keyboard, cascade) and IRQ 8, 13 (RTC, FPU error) are
 *  always edge triggered on PIIX/ICH; their ELCR bits are reserved and read 0. */
const ELCR_WRITABLE = [0xf8, 0xde] as const;

const ICW1_IC4 = 0x01, ICW1_SNGL = 0x02, ICW1_LTIM = 0x08, ICW1_SELECT = 0x10;
const OCW3_SELECT = 0x08, OCW3_RIS = 0x01, OCW3_RR = 0x02, OCW3_POLL = 0x04, OCW3_SMM = 0x20, OCW3_ESMM = 0x40;
const ICW4_AEOI = 0x02, ICW4_SFNM = 0x10;
const NO_IRQ = -1;
const SPURIOUS_IR = 7;

/** OCW2 bits 7-5 (R, SL, EOI): datasheet Figure 14. */
const enum Ocw2 {
  RotateInAeoiClear = 0b000,
  NonSpecificEoi = 0b001,
  Nop = 0b010,
  SpecificEoi = 0b011,
  RotateInAeoiSet = 0b100,
  RotateOnNonSpecificEoi = 0b101,
  SetPriority = 0b110,
  RotateOnSpecificEoi = 0b111,
}

/** Where the chip is in its initialization sequence: which ICW the next data-port write is. */
const enum InitStep { Done, Icw2, Icw3, Icw4 }

/** One 8259A. */
class Pic8259 {
  irr = 0;
  isr = 0;
  imr = 0;
  elcr = 0;
  vectorBase = 0;
  /** The levels currently on IR0-7 (the edge detector compares against them). */
  private lines = 0;
  /** The IR with the highest priority; rotation moves it (datasheet "Automatic Rotation"). */
  private highestPriorityIr = 0;
  private initStep = InitStep.Done;
  private icw4Expected = false;
  private single = false;
  private levelTriggeredAll = false; // ICW1.LTIM
  private autoEoi = false;
  private rotateInAutoEoi = false;
  private specialFullyNested = false;
  private specialMask = false;
  private readIsr = false;
  private pollPending = false;

  constructor(readonly isMaster: boolean, private readonly elcrWritable: number) {}

  private levelTriggered(bit: number): boolean { return this.levelTriggeredAll || (this.elcr & bit) !== 0; }

  /** A change of the level on input `ir`. */
  setInput(ir: number, level: boolean): void {
    const bit = 1 << ir;
    if (level) {
      // Level mode: the request follows the line. Edge mode: only a rising edge sets IRR.
      if (this.levelTriggered(bit) || !(this.lines & bit)) this.irr |= bit;
      this.lines |= bit;
    } else {
      this.lines &= ~bit;
      this.irr &= ~bit; // the request vanished (before INTA, or level released)
    }
  }

  /** Re-evaluate IRR after a trigger-mode change: a level-triggered input that is high requests. */
  private resampleLevels(): void {
    for (let ir = 0; ir < 8; ir++) {
      const bit = 1 << ir;
      if (this.levelTriggered(bit) && (this.lines & bit)) this.irr |= bit;
    }
  }

  /** The IR of the highest-priority bit of `mask` (rotation applied), or NO_IRQ. */
  private highestOf(mask: number): number {
    for (let i = 0; i < 8; i++) {
      const ir = (this.highestPriorityIr + i) & 7;
      if (mask & (1 << ir)) return ir;
    }
    return NO_IRQ;
  }

  /** Priority rank of `ir`: 0 is the highest. */
  private rank(ir: number): number { return (ir - this.highestPriorityIr) & 7; }

  /** The request the chip would present on INT: the highest unmasked IRR bit that outranks every
   *  in-service level (datasheet "Priority Resolver"), or NO_IRQ. */
  pendingIrq(): number {
    const request = this.highestOf(this.irr & ~this.imr);
    if (request === NO_IRQ) return NO_IRQ;
    let inService = this.isr;
    // Special mask mode: a masked level does not block the others, including lower ones.
    if (this.specialMask) inService &= ~this.imr;
    // Special fully nested mode: a slave in service does not block further requests from the slave,
    // which resolves their priority among themselves.
    if (this.specialFullyNested && this.isMaster && request === PIC_CASCADE_IRQ) inService &= ~(1 << PIC_CASCADE_IRQ);
    const current = this.highestOf(inService);
    return current === NO_IRQ || this.rank(request) < this.rank(current) ? request : NO_IRQ;
  }

  /** The chip's side of an INTA cycle for request `ir`: ISR set (unless automatic EOI), IRR cleared
   *  for an edge (a level request stays while the line is high). */
  acknowledge(ir: number): void {
    const bit = 1 << ir;
    if (!this.levelTriggered(bit)) this.irr &= ~bit;
    if (!this.autoEoi) this.isr |= bit;
    else if (this.rotateInAutoEoi) this.highestPriorityIr = (ir + 1) & 7;
  }

  readCommand(): number {
    if (this.pollPending) return this.poll();
    return this.readIsr ? this.isr : this.irr;
  }

  readData(): number {
    if (this.pollPending) return this.poll();
    return this.imr;
  }

  /** Poll command (OCW3.P): the read acts as an INTA and returns 80h | IR, or 0 if nothing is
   *  pending (datasheet "The Poll Command"). */
  private poll(): number {
    this.pollPending = false;
    const ir = this.pendingIrq();
    if (ir === NO_IRQ) return 0;
    this.acknowledge(ir);
    return 0x80 | ir;
  }

  writeCommand(value: number): void {
    if (value & ICW1_SELECT) this.icw1(value);
    else if (value & OCW3_SELECT) this.ocw3(value);
    else this.ocw2(value);
  }

  writeData(value: number): void {
    switch (this.initStep) {
      case InitStep.Icw2:
        this.vectorBase = value & 0xf8; // T7-T3 in 8086 mode; the chip supplies the low 3 bits
        this.initStep = this.single ? this.afterIcw3() : InitStep.Icw3;
        return;
      case InitStep.Icw3: // cascade wiring (master: slaves on IR2; slave: ID 2) is fixed on the PC
        this.initStep = this.afterIcw3();
        return;
      case InitStep.Icw4:
        this.autoEoi = (value & ICW4_AEOI) !== 0;
        this.specialFullyNested = (value & ICW4_SFNM) !== 0;
        this.initStep = InitStep.Done;
        return;
      default:
        this.imr = value; // OCW1
    }
  }

  private afterIcw3(): InitStep { return this.icw4Expected ? InitStep.Icw4 : InitStep.Done; }

  /** ICW1 starts initialization (datasheet "Initialization Command Words"): edge sense reset (a high
   *  input needs a new rising edge), IMR cleared, IR7 lowest priority, special mask mode cleared,
   *  status read set to IRR, and without IC4 every ICW4 function cleared. */
  private icw1(value: number): void {
    this.icw4Expected = (value & ICW1_IC4) !== 0;
    this.single = (value & ICW1_SNGL) !== 0;
    this.levelTriggeredAll = (value & ICW1_LTIM) !== 0;
    this.imr = 0;
    this.isr = 0;
    this.irr = 0;
    this.resampleLevels();
    this.highestPriorityIr = 0;
    this.specialMask = false;
    this.readIsr = false;
    this.pollPending = false;
    this.autoEoi = false;
    this.rotateInAutoEoi = false;
    this.specialFullyNested = false;
    this.initStep = InitStep.Icw2;
  }

  private ocw2(value: number): void {
    const level = value & 7;
    switch ((value >> 5) as Ocw2) {
      case Ocw2.NonSpecificEoi: this.endOfInterrupt(this.highestOf(this.isr), false); return;
      case Ocw2.RotateOnNonSpecificEoi: this.endOfInterrupt(this.highestOf(this.isr), true); return;
      case Ocw2.SpecificEoi: this.endOfInterrupt(level, false); return;
      case Ocw2.RotateOnSpecificEoi: this.endOfInterrupt(level, true); return;
      case Ocw2.SetPriority: this.highestPriorityIr = (level + 1) & 7; return; // `level` becomes the lowest
      case Ocw2.RotateInAeoiSet: this.rotateInAutoEoi = true; return;
      case Ocw2.RotateInAeoiClear: this.rotateInAutoEoi = false; return;
      case Ocw2.Nop: return;
    }
  }

  private endOfInterrupt(ir: number, rotate: boolean): void {
    if (ir === NO_IRQ) return;
    this.isr &= ~(1 << ir);
    if (rotate) this.highestPriorityIr = (ir + 1) & 7;
  }

  private ocw3(value: number): void {
    if (value & OCW3_ESMM) this.specialMask = (value & OCW3_SMM) !== 0;
    if (value & OCW3_RR) this.readIsr = (value & OCW3_RIS) !== 0;
    if (value & OCW3_POLL) this.pollPending = true;
  }

  writeElcr(value: number): void {
    this.elcr = value & this.elcrWritable;
    this.resampleLevels();
  }
}

/** The master/slave pair as the PC wires it, with the CPU-side INTA interface. */
export class Pic8259Pair implements PortDevice, IrqSink {
  readonly name = 'pic8259';
  private readonly master = new Pic8259(true, ELCR_WRITABLE[0]);
  private readonly slave = new Pic8259(false, ELCR_WRITABLE[1]);
  private output = false;
  /** Called when the master's INT output changes: the machine forwards it to the CPU's INTR (or
   *  the local APIC's LINT0 in ExtINT mode). */
  onOutputChange?: (level: boolean) => void;

  register(bus: PortBus): void {
    bus.register(PIC_MASTER_PORT, 2, this);
    bus.register(PIC_SLAVE_PORT, 2, this);
    bus.register(PIC_ELCR_PORT, 2, this);
  }

  /** ISA IRQ `line` (0-15) changed level. IRQ 2 is the internal cascade and cannot be driven. */
  setIrq(line: number, level: boolean): void {
    if (line === PIC_CASCADE_IRQ || line < 0 || line > 15) return;
    if (line < 8) this.master.setInput(line, level);
    else this.slave.setInput(line - 8, level);
    this.update();
  }

  /** The master's INT output. */
  get interruptPending(): boolean { return this.master.pendingIrq() !== NO_IRQ; }

  /** The INTA cycle: returns the vector the PICs put on the bus. A request from the slave sets the
   *  master's ISR bit 2 and the slave's own bit; a request that vanished answers with IR7 of the chip
   *  concerned (vector base + 7) and sets no ISR bit on that chip. */
  acknowledge(): number {
    let vector: number;
    const ir = this.master.pendingIrq();
    if (ir === NO_IRQ) {
      vector = this.master.vectorBase + SPURIOUS_IR;
    } else {
      this.master.acknowledge(ir);
      if (ir === PIC_CASCADE_IRQ) {
        const slaveIr = this.slave.pendingIrq();
        if (slaveIr !== NO_IRQ) this.slave.acknowledge(slaveIr);
        vector = this.slave.vectorBase + (slaveIr === NO_IRQ ? SPURIOUS_IR : slaveIr);
      } else {
        vector = this.master.vectorBase + ir;
      }
    }
    this.update();
    return vector;
  }

  read(port: number): number {
    let value: number;
    switch (port) {
      case PIC_MASTER_PORT: value = this.master.readCommand(); break;
      case PIC_MASTER_PORT + 1: value = this.master.readData(); break;
      case PIC_SLAVE_PORT: value = this.slave.readCommand(); break;
      case PIC_SLAVE_PORT + 1: value = this.slave.readData(); break;
      case PIC_ELCR_PORT: return this.master.elcr;
      case PIC_ELCR_PORT + 1: return this.slave.elcr;
      default: return 0xff;
    }
    this.update(); // a poll read acknowledges
    return value;
  }

  write(port: number, _size: number, value: number): void {
    value &= 0xff;
    switch (port) {
      case PIC_MASTER_PORT: this.master.writeCommand(value); break;
      case PIC_MASTER_PORT + 1: this.master.writeData(value); break;
      case PIC_SLAVE_PORT: this.slave.writeCommand(value); break;
      case PIC_SLAVE_PORT + 1: this.slave.writeData(value); break;
      case PIC_ELCR_PORT: this.master.writeElcr(value); break;
      case PIC_ELCR_PORT + 1: this.slave.writeElcr(value); break;
      default: return;
    }
    this.update();
  }

  /** Propagate the slave's INT to the master's IR2, then the master's INT to the CPU. */
  private update(): void {
    this.master.setInput(PIC_CASCADE_IRQ, this.slave.pendingIrq() !== NO_IRQ);
    const level = this.interruptPending;
    if (level === this.output) return;
    this.output = level;
    this.onOutputChange?.(level);
  }
}
