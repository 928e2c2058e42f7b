// A guest's serial console as the command line drives it: bytes out to a sink, the last lines kept
// for error messages, and an optional script typed at the first shell prompt (the bundled guest's
// PS1). `hvlab boot` has one; `hvlab host` one per guest.
import type { Machine } from '../machine/machine.ts';

/** The bundled guest's shell prompt (guest-images/init sets PS1). */
export const SHELL_PROMPT = '~ # ';

/** Any shell's prompt as it is being printed: a short line ending in `# `, `$ ` or `> ` (root's,
 *  a user's, some shells' defaults), so --script also types into guests other than the bundled one. */
const PROMPT_AT_END = /(?:^|\n)[^\n]{0,80}[#$>] $/;

const UART_IER = 1, UART_LCR = 3, IER_RECEIVED_DATA = 0x01, LCR_DLAB = 0x80;

/** Whether the guest has the receive-data interrupt of COM1 enabled, read through the UART's
 *  registers (IER, LCR: reading them has no side effect). Linux enables it when the 8250 driver
 *  starts, after emptying the FIFO; its console output clears IER only for the moment it writes. */
function guestListens(m: Machine): boolean {
  const base = m.com1.base;
  if (m.com1.read(base + UART_LCR) & LCR_DLAB) return false; // IER's address holds the divisor now
  return (m.com1.read(base + UART_IER) & IER_RECEIVED_DATA) !== 0;
}

export class GuestConsole {
  private output = '';
  private readonly decoder = new TextDecoder();
  /** Bytes waiting for room in the UART's receive FIFO. */
  readonly pendingInput: number[] = [];
  private typed: boolean;
  /** Input waits until the guest listens: the UART's receive interrupt enabled (a driver running). */
  holdInputUntilGuestListens = false;

  constructor(private readonly sink: (bytes: Uint8Array) => void, private readonly script?: string) {
    this.typed = script === undefined;
  }

  /** A byte the guest wrote to its console. */
  onByte = (b: number): void => {
    this.sink(Uint8Array.of(b));
    this.output += this.decoder.decode(Uint8Array.of(b), { stream: true });
    if (this.output.length > 16384) this.output = this.output.slice(-8192);
    // The bundled guest's prompt may be followed by a terminal query (busybox ash sends ESC [6n):
    // look for it anywhere; another prompt only as it ends.
    if (!this.typed && (this.output.includes(SHELL_PROMPT) || PROMPT_AT_END.test(this.output.slice(-82)))) {
      this.typed = true;
      for (const c of new TextEncoder().encode(`${this.script}\n`)) this.pendingInput.push(c);
    }
  };

  /** Hand waiting input to the guest's UART, as far as its FIFO has room. */
  feed(m: Machine): void {
    if (!this.pendingInput.length || m.com1.rxSpace === 0) return;
    if (this.holdInputUntilGuestListens && !guestListens(m)) return;
    m.com1.receive(this.pendingInput.splice(0, m.com1.rxSpace));
  }

  /** The last lines the guest printed. */
  tail(lines = 15): string { return this.output.split('\n').slice(-lines).join('\n'); }
}
