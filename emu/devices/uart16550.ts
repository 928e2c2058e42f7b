// 16550A UART (the PC's COM ports; National Semiconductor PC16550D datasheet). Registers at base+0..7:
// RBR/THR (DLL with DLAB), IER (DLM with DLAB), IIR/FCR, LCR, MCR, LSR, MSR, SCR. Transmission is
// instantaneous (THR empty is always set), received bytes wait in a 16-byte FIFO. Interrupt lines
// come with the interrupt controllers (the Linux-boot issue); `interruptPending` already tells
// whether the chip would assert its line.
import type { PortDevice } from './port-bus.ts';
import type { IrqLine } from './irq.ts';

const LSR_DR = 0x01, LSR_THRE = 0x20, LSR_TEMT = 0x40;
const IER_RDA = 0x01, IER_THRE = 0x02;
const LCR_DLAB = 0x80;
const MCR_LOOP = 0x10;

export class Uart16550 implements PortDevice {
  readonly name: string;
  private ier = 0; private lcr = 0x03; private mcr = 0; private scr = 0; private fcr = 0;
  private dll = 0x01; private dlm = 0;
  private readonly rx: number[] = [];
  /** THR-empty interrupt condition: set by writing THR or enabling the interrupt, cleared by reading IIR. */
  private thrEmptyPending = false;

  constructor(readonly base: number, private readonly output: (byte: number) => void, name = 'uart',
    /** The interrupt line (IRQ 4 for COM1), driven while an enabled condition is pending; the
     *  16550's OUT2 (MCR bit 3) gates it onto the ISA bus on a PC. */
    private readonly irq?: IrqLine) {
    this.name = name;
  }

  /** Bytes typed by the user (or a script) for the guest; false if the FIFO is full. */
  receive(bytes: ArrayLike<number>): boolean {
    let all = true;
    for (let i = 0; i < bytes.length; i++) { if (this.rx.length < 16) this.rx.push(bytes[i] & 0xff); else all = false; }
    this.updateIrq();
    return all;
  }

  /** Room left in the receive FIFO. */
  get rxSpace(): number { return 16 - this.rx.length; }

  private updateIrq(): void { this.irq?.set(this.interruptPending && (this.mcr & 0x08) !== 0); }

  get interruptPending(): boolean {
    return ((this.ier & IER_RDA) !== 0 && this.rx.length > 0) || ((this.ier & IER_THRE) !== 0 && this.thrEmptyPending);
  }

  read(port: number): number {
    const v = this.readRegister(port);
    this.updateIrq();
    return v;
  }

  private readRegister(port: number): number {
    switch (port - this.base) {
      case 0:
        if (this.lcr & LCR_DLAB) return this.dll;
        return this.rx.length ? this.rx.shift()! : 0;
      case 1: return this.lcr & LCR_DLAB ? this.dlm : this.ier;
      case 2: { // IIR: FIFOs enabled bits, then the highest-priority pending source
        const fifo = this.fcr & 1 ? 0xc0 : 0;
        if ((this.ier & IER_RDA) && this.rx.length) return fifo | 0x04;
        if ((this.ier & IER_THRE) && this.thrEmptyPending) { this.thrEmptyPending = false; return fifo | 0x02; }
        return fifo | 0x01;
      }
      case 3: return this.lcr;
      case 4: return this.mcr;
      case 5: return LSR_THRE | LSR_TEMT | (this.rx.length ? LSR_DR : 0);
      case 6: // MSR: in loopback the modem inputs follow MCR; otherwise report CTS, DSR, DCD
        if (this.mcr & MCR_LOOP) return ((this.mcr & 0x0c) << 4) | ((this.mcr & 0x01) << 5) | ((this.mcr & 0x02) << 3);
        return 0xb0;
      default: return this.scr;
    }
  }

  write(port: number, _size: number, value: number): void {
    this.writeRegister(port, value & 0xff);
    this.updateIrq();
  }

  private writeRegister(port: number, value: number): void {
    switch (port - this.base) {
      case 0:
        if (this.lcr & LCR_DLAB) { this.dll = value; return; }
        if (this.mcr & MCR_LOOP) this.receive([value]);
        else this.output(value);
        this.thrEmptyPending = true;
        return;
      case 1:
        if (this.lcr & LCR_DLAB) { this.dlm = value; return; }
        if ((value & IER_THRE) && !(this.ier & IER_THRE)) this.thrEmptyPending = true;
        this.ier = value & 0x0f;
        return;
      case 2:
        this.fcr = value & 0xc9;
        if (value & 0x02) this.rx.length = 0; // clear receive FIFO
        return;
      case 3: this.lcr = value; return;
      case 4: this.mcr = value & 0x1f; return;
      case 7: this.scr = value; return;
      default: return; // LSR and MSR are read-only
    }
  }
}
