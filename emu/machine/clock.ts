// Virtual time. hvlab is deterministic by default: time follows the count of retired instructions,
// so the same inputs give the same run, byte for byte (ARCHITECTURE.md, section 3). Devices schedule
// callbacks at virtual-time deadlines; the machine's run loop executes instructions up to the next
// deadline, then calls `advanceTo`. HLT skips straight to the next deadline.
// Time is a number of virtual nanoseconds (a double holds 2^53 ns ≈ 104 days exactly).

/** Virtual nanoseconds per retired instruction: 1 makes the virtual CPU a 1 GHz, 1-IPC machine. */
export const DEFAULT_NS_PER_INSTRUCTION = 1;

export interface TimerHandle { readonly id: number }

interface Pending { id: number; at: number; seq: number; fire: (now: number) => void }

export class VirtualClock {
  private nowNs = 0;
  private seq = 0;
  private nextId = 1;
  /** Kept sorted by (at, seq): few timers exist at once, so a sorted array beats a heap here. */
  private readonly pending: Pending[] = [];

  constructor(readonly nsPerInstruction = DEFAULT_NS_PER_INSTRUCTION) {}

  /** Current virtual time in ns. */
  now(): number { return this.nowNs; }

  /** Call `fire(now)` once virtual time reaches `atNs` (at once on the next advance if it is past). */
  schedule(atNs: number, fire: (now: number) => void): TimerHandle {
    const p: Pending = { id: this.nextId++, at: atNs, seq: this.seq++, fire };
    let i = this.pending.length;
    while (i > 0 && (this.pending[i - 1].at > p.at)) i--;
    this.pending.splice(i, 0, p);
    return { id: p.id };
  }

  /** Forget a scheduled callback (no effect if it already fired or was cancelled). */
  cancel(handle: TimerHandle | null | undefined): void {
    if (!handle) return;
    const i = this.pending.findIndex((p) => p.id === handle.id);
    if (i >= 0) this.pending.splice(i, 1);
  }

  /** The earliest deadline, or Infinity when nothing is scheduled. */
  nextDeadline(): number { return this.pending.length ? this.pending[0].at : Infinity; }

  /** Move time forward to `ns` (never backward), firing every callback due by then in order.
   *  A callback may schedule more; those that fall due by `ns` fire in the same call. */
  advanceTo(ns: number): void {
    if (ns > this.nowNs) this.nowNs = ns;
    while (this.pending.length && this.pending[0].at <= this.nowNs) {
      const p = this.pending.shift()!;
      p.fire(this.nowNs);
    }
  }

  /** Advance by a number of retired instructions. */
  advanceInstructions(count: number): void { this.advanceTo(this.nowNs + count * this.nsPerInstruction); }
}
