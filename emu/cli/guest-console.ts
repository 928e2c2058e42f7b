// A guest's serial console as the command line drives it: bytes out to a sink, the last lines kept
// for error messages, and an optional script typed at the first shell prompt (the bundled guest's
// PS1). `hvlab boot` has one; `hvlab host` one per guest.
import type { Machine } from '../machine/machine.ts';

/** The bundled guest's shell prompt (guest-images/init sets PS1). */
export const SHELL_PROMPT = '~ # ';

export class GuestConsole {
  private output = '';
  private readonly decoder = new TextDecoder();
  /** Bytes waiting for room in the UART's receive FIFO. */
  readonly pendingInput: number[] = [];
  private typed: boolean;

  constructor(private readonly sink: (bytes: Uint8Array) => void, private readonly script?: string) {
    this.typed = script === undefined;
  }

  /** A byte the guest wrote to its console. */
  onByte = (b: number): void => {
    this.sink(Uint8Array.of(b));
    this.output += this.decoder.decode(Uint8Array.of(b), { stream: true });
    if (this.output.length > 16384) this.output = this.output.slice(-8192);
    // The prompt may be followed by a terminal query (busybox ash sends ESC [6n): look for it anywhere.
    if (!this.typed && this.output.includes(SHELL_PROMPT)) {
      this.typed = true;
      for (const c of new TextEncoder().encode(`${this.script}\n`)) this.pendingInput.push(c);
    }
  };

  /** Hand waiting input to the guest's UART, as far as its FIFO has room. */
  feed(m: Machine): void {
    if (this.pendingInput.length && m.com1.rxSpace > 0) m.com1.receive(this.pendingInput.splice(0, m.com1.rxSpace));
  }

  /** The last lines the guest printed. */
  tail(lines = 15): string { return this.output.split('\n').slice(-lines).join('\n'); }
}
