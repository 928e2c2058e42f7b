// The AT keyboard controller, an Intel 8042 running IBM's firmware (IBM PC AT Technical Reference,
// "Keyboard Controller"; the PS/2 extensions as documented for the 8242/VT82C42 and implemented by
// QEMU hw/input/pckbd.c). Port 60h is the data port, port 64h the status (read) and command (write)
// port. A keyboard is attached and answers its commands; no keys are ever pressed. The auxiliary
// (mouse) port has no device behind it.
//
// Besides the keyboard, the 8042's output port carries two system lines: bit 0 is the CPU reset
// (active low) and bit 1 gates address line A20.
import type { PortBus, PortDevice } from './port-bus.ts';
import type { IrqLine } from './irq.ts';

export const I8042_DATA_PORT = 0x60;
export const I8042_COMMAND_PORT = 0x64;

/** Status register bits. */
const STATUS_OUTPUT_FULL = 0x01;
const STATUS_SYSTEM_FLAG = 0x04;
const STATUS_LAST_WAS_COMMAND = 0x08;
const STATUS_NOT_INHIBITED = 0x10; // the keyboard lock switch is open
const STATUS_AUX_DATA = 0x20;
const STATUS_TIMEOUT = 0x40;

/** Command byte (controller RAM byte 0) bits. */
const CB_KEYBOARD_IRQ = 0x01;
const CB_AUX_IRQ = 0x02;
const CB_SYSTEM_FLAG = 0x04;
const CB_KEYBOARD_DISABLED = 0x10;
const CB_AUX_DISABLED = 0x20;
/** As a PC BIOS leaves it: translation on, aux disabled, system flag, keyboard interrupt on. */
const CB_DEFAULT = 0x40 | CB_AUX_DISABLED | CB_SYSTEM_FLAG | CB_KEYBOARD_IRQ;

/** Output port bits. */
const OUT_RESET_INACTIVE = 0x01;
const OUT_A20 = 0x02;
const OUT_KEYBOARD_FULL = 0x10;
const OUT_AUX_FULL = 0x20;

const ACK = 0xfa, RESEND = 0xfe, SELF_TEST_OK = 0x55, BAT_OK = 0xaa, ECHO = 0xee;
const MF2_ID = [0xab, 0x83];

/** Controller commands written to port 64h. */
const enum Cmd {
  ReadRam = 0x20, // 20h-3Fh: read controller RAM byte (20h: the command byte)
  WriteRam = 0x60, // 60h-7Fh: the next data byte goes to controller RAM
  DisableAux = 0xa7, EnableAux = 0xa8, TestAux = 0xa9, SelfTest = 0xaa, TestKeyboard = 0xab,
  DisableKeyboard = 0xad, EnableKeyboard = 0xae,
  ReadOutputPort = 0xd0, WriteOutputPort = 0xd1, WriteKeyboardBuffer = 0xd2, WriteAuxBuffer = 0xd3,
  WriteAux = 0xd4, DisableA20 = 0xdd, EnableA20 = 0xdf, ReadTestInputs = 0xe0,
  PulseOutputPort = 0xf0, // F0h-FFh: pulse output port bits 3-0 where the command's bit is 0
}

/** Keyboard commands written to port 60h (IBM PC AT Technical Reference, "Commands to the Keyboard"). */
const enum Kbd {
  SetLeds = 0xed, Echo = 0xee, ScanCodeSet = 0xf0, Identify = 0xf2, SetTypematic = 0xf3, Enable = 0xf4,
  Disable = 0xf5, SetDefault = 0xf6, Resend = 0xfe, Reset = 0xff,
}
/** Keyboard commands followed by a parameter byte (each byte is ACKed). */
const KBD_WITH_PARAMETER = new Set<number>([Kbd.SetLeds, Kbd.ScanCodeSet, Kbd.SetTypematic]);

interface OutputByte { value: number; aux: boolean }

export interface I8042Options {
  /** IRQ 1: a keyboard byte waits in the output buffer and command byte bit 0 is set. */
  irq1?: IrqLine;
  /** IRQ 12: an aux byte waits and command byte bit 1 is set. */
  irq12?: IrqLine;
  /** The CPU reset line was pulsed (command FEh) or driven low through the output port. */
  onReset?: () => void;
  /** The A20 gate changed (output port bit 1). */
  onA20Change?: (enabled: boolean) => void;
}

export class I8042 implements PortDevice {
  readonly name = 'i8042';
  /** Controller RAM: byte 0 is the command byte. */
  private readonly ram = new Uint8Array(32);
  private status = STATUS_NOT_INHIBITED;
  private outputPort = OUT_RESET_INACTIVE | OUT_A20;
  private readonly output: OutputByte[] = [];
  private lastRead = 0;
  /** A controller command waiting for its data byte on port 60h. */
  private pendingCommand: number | null = null;
  /** A keyboard command waiting for its parameter byte. */
  private pendingKeyboardCommand: number | null = null;
  private lastKeyboardReply = ACK;
  private scanCodeSet = 2;
  private scanning = true;

  constructor(private readonly options: I8042Options = {}) {
    this.ram[0] = CB_DEFAULT;
    this.status |= STATUS_SYSTEM_FLAG;
  }

  register(bus: PortBus): void {
    bus.register(I8042_DATA_PORT, 1, this);
    bus.register(I8042_COMMAND_PORT, 1, this);
  }

  get a20Enabled(): boolean { return (this.outputPort & OUT_A20) !== 0; }
  get keyboardScanning(): boolean { return this.scanning; }
  private get commandByte(): number { return this.ram[0]; }

  read(port: number): number {
    if (port === I8042_COMMAND_PORT) return this.statusRegister();
    const next = this.output.shift();
    if (next) this.lastRead = next.value;
    // The byte leaves the buffer: the IRQ line drops, and rises again if another byte follows.
    this.options.irq1?.set(false);
    this.options.irq12?.set(false);
    this.updateIrqs();
    return this.lastRead; // an empty buffer reads the last byte again
  }

  write(port: number, _size: number, value: number): void {
    value &= 0xff;
    this.status &= ~STATUS_TIMEOUT;
    if (port === I8042_COMMAND_PORT) {
      this.status |= STATUS_LAST_WAS_COMMAND;
      this.pendingCommand = null;
      this.controllerCommand(value);
    } else {
      this.status &= ~STATUS_LAST_WAS_COMMAND;
      if (this.pendingCommand !== null) {
        const command = this.pendingCommand;
        this.pendingCommand = null;
        this.controllerData(command, value);
      } else {
        // Sending a byte to the keyboard enables its interface (QEMU pckbd.c, as real 8042s do).
        this.ram[0] &= ~CB_KEYBOARD_DISABLED;
        this.keyboardByte(value);
      }
    }
    this.updateIrqs();
  }

  private statusRegister(): number {
    const head = this.output[0];
    return this.status | (head ? STATUS_OUTPUT_FULL : 0) | (head?.aux ? STATUS_AUX_DATA : 0);
  }

  private controllerCommand(command: number): void {
    if (command >= Cmd.ReadRam && command < Cmd.ReadRam + 0x20) { this.reply(this.ram[command - Cmd.ReadRam]); return; }
    if (command >= Cmd.WriteRam && command < Cmd.WriteRam + 0x20) { this.pendingCommand = command; return; }
    if (command >= Cmd.PulseOutputPort) {
      if (!(command & OUT_RESET_INACTIVE)) this.options.onReset?.();
      return;
    }
    switch (command) {
      case Cmd.DisableAux: this.ram[0] |= CB_AUX_DISABLED; return;
      case Cmd.EnableAux: this.ram[0] &= ~CB_AUX_DISABLED; return;
      case Cmd.TestAux: this.reply(0x00); return; // 00h: no clock or data line fault
      case Cmd.SelfTest: this.status |= STATUS_SYSTEM_FLAG; this.reply(SELF_TEST_OK); return;
      case Cmd.TestKeyboard: this.reply(0x00); return;
      case Cmd.DisableKeyboard: this.ram[0] |= CB_KEYBOARD_DISABLED; return;
      case Cmd.EnableKeyboard: this.ram[0] &= ~CB_KEYBOARD_DISABLED; return;
      case Cmd.ReadOutputPort: this.reply(this.outputPortValue()); return;
      case Cmd.WriteOutputPort: case Cmd.WriteKeyboardBuffer: case Cmd.WriteAuxBuffer: case Cmd.WriteAux:
        this.pendingCommand = command;
        return;
      case Cmd.DisableA20: this.setOutputPort(this.outputPort & ~OUT_A20); return;
      case Cmd.EnableA20: this.setOutputPort(this.outputPort | OUT_A20); return;
      case Cmd.ReadTestInputs: this.reply(0x00); return;
      default: return; // unknown commands are ignored
    }
  }

  private controllerData(command: number, value: number): void {
    if (command >= Cmd.WriteRam && command < Cmd.WriteRam + 0x20) {
      this.ram[command - Cmd.WriteRam] = value;
      // The system flag in the status register follows command byte bit 2.
      if (command === Cmd.WriteRam) this.status = (this.status & ~STATUS_SYSTEM_FLAG) | (value & CB_SYSTEM_FLAG);
      return;
    }
    switch (command) {
      case Cmd.WriteOutputPort: this.setOutputPort(value); return;
      case Cmd.WriteKeyboardBuffer: this.output.push({ value, aux: false }); return;
      case Cmd.WriteAuxBuffer: this.output.push({ value, aux: true }); return;
      case Cmd.WriteAux: this.status |= STATUS_TIMEOUT; return; // no mouse answers: transmit timeout
    }
  }

  /** Output port: bits 4 and 5 reflect the output buffer; bit 0 low holds the CPU in reset. */
  private outputPortValue(): number {
    const head = this.output[0];
    const full = head ? (head.aux ? OUT_AUX_FULL : OUT_KEYBOARD_FULL) : 0;
    return (this.outputPort & ~(OUT_KEYBOARD_FULL | OUT_AUX_FULL)) | full;
  }

  private setOutputPort(value: number): void {
    const a20Changed = ((value ^ this.outputPort) & OUT_A20) !== 0;
    this.outputPort = value | OUT_RESET_INACTIVE; // the reset line is released after the reset
    if (a20Changed) this.options.onA20Change?.(this.a20Enabled);
    if (!(value & OUT_RESET_INACTIVE)) this.options.onReset?.();
  }

  private keyboardByte(value: number): void {
    const pending = this.pendingKeyboardCommand;
    if (pending !== null) {
      this.pendingKeyboardCommand = null;
      if (pending === Kbd.ScanCodeSet) {
        if (value === 0) { this.keyboardReply(ACK, this.scanCodeSet); return; }
        if (value >= 1 && value <= 3) this.scanCodeSet = value;
      }
      this.keyboardReply(ACK);
      return;
    }
    if (KBD_WITH_PARAMETER.has(value)) { this.pendingKeyboardCommand = value; this.keyboardReply(ACK); return; }
    switch (value) {
      case Kbd.Echo: this.keyboardReply(ECHO); return;
      case Kbd.Identify: this.keyboardReply(ACK, ...MF2_ID); return;
      case Kbd.Enable: this.scanning = true; this.keyboardReply(ACK); return;
      case Kbd.Disable: this.restoreDefaults(false); this.keyboardReply(ACK); return;
      case Kbd.SetDefault: this.restoreDefaults(this.scanning); this.keyboardReply(ACK); return;
      case Kbd.Resend: this.output.push({ value: this.lastKeyboardReply, aux: false }); return;
      case Kbd.Reset: this.restoreDefaults(true); this.keyboardReply(ACK, BAT_OK); return; // ACK, then the BAT result
      default:
        // F7h-FDh (key type settings) are acknowledged; anything else asks for a resend.
        this.keyboardReply(value >= 0xf7 && value <= 0xfd ? ACK : RESEND);
    }
  }

  /** Power-on defaults (scan code set 2); Disable also stops scanning, Reset restarts it. */
  private restoreDefaults(scanning: boolean): void {
    this.scanCodeSet = 2;
    this.scanning = scanning;
  }

  private keyboardReply(...bytes: number[]): void {
    for (const value of bytes) this.output.push({ value, aux: false });
    this.lastKeyboardReply = bytes[bytes.length - 1];
  }

  /** A byte from the controller itself, in the keyboard's position of the buffer. */
  private reply(value: number): void { this.output.push({ value, aux: false }); }

  private updateIrqs(): void {
    const head = this.output[0];
    this.options.irq1?.set(!!head && !head.aux && (this.commandByte & CB_KEYBOARD_IRQ) !== 0);
    this.options.irq12?.set(!!head && head.aux && (this.commandByte & CB_AUX_IRQ) !== 0);
  }
}
