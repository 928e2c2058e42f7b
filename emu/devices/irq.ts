// Interrupt wiring between devices and interrupt controllers. A device holds an `IrqLine` and drives
// it: edge-triggered ISA devices pulse it (raise then lower), level-triggered ones (PCI INTx) hold it
// raised while they need service. The controller on the other end (8259 PIC, IOAPIC) decides what an
// edge or a level means, as real hardware does.

export interface IrqLine {
  /** Drive the line high (true) or low (false). Setting the level it already has does nothing. */
  set(level: boolean): void;
}

/** Something with numbered interrupt inputs: the PIC pair (IRQ 0-15), the IOAPIC (GSI 0-23). */
export interface IrqSink {
  setIrq(line: number, level: boolean): void;
}

/** An IrqLine that drives input `line` of each sink (the PC wires ISA IRQs to both the PICs and the
 *  IOAPIC; the guest decides which one it uses). Remembers the level so repeats are filtered. */
export class WiredIrq implements IrqLine {
  private level = false;
  /** `activeLow` sinks see the inverted level: a PCI INTx# pin is asserted low (PCI 2.3 section 2.2.6),
   *  and the IOAPIC input it reaches is programmed active low; the 8259 sees it through the
   *  chipset's inverting PIRQ router. Such sinks are driven to their idle (high) level at once. */
  constructor(private readonly sinks: Array<{ sink: IrqSink; line: number; activeLow?: boolean }>) {
    for (const s of sinks) if (s.activeLow) s.sink.setIrq(s.line, true);
  }
  set(level: boolean): void {
    if (level === this.level) return;
    this.level = level;
    for (const s of this.sinks) s.sink.setIrq(s.line, s.activeLow ? !level : level);
  }
  /** Raise then lower: an edge for ISA devices. */
  pulse(): void { this.set(true); this.set(false); }
  get high(): boolean { return this.level; }
}
