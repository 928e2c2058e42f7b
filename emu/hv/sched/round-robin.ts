// vCPU scheduling on the host: the vCPUs of every guest share `hostCpus` simulated host CPUs in
// rounds of host virtual time. A round lasts until the next timer event of any guest (or a slice,
// or a quantum end); in it, each host CPU runs one vCPU for the round's length. Guest clocks follow
// host time, so a vCPU that waits for a host CPU sees time pass, as on a real overcommitted host.
// Policy here is plain round-robin: a vCPU keeps its host CPU for a quantum, then goes to the back
// of the queue if another runnable vCPU waits (the scheduler issue adds fair share and gang
// scheduling). Everything is a function of the configuration, so the same host repeats exactly.

/** What the scheduler needs of a guest: the per-vCPU exit loop and the guest's clock. */
export interface SchedGuest<R> {
  readonly vcpuCount: number;
  /** A stop the guest asked for (power-off, reset, a user's stop): the guest's run ends with it. */
  pollStop(): R | null;
  /** Halted vCPUs with an interrupt to take become runnable. */
  wakeHalted(): void;
  isRunnable(i: number): boolean;
  /** Nothing can ever wake the guest (every vCPU halted, no timer or interrupts off): its result. */
  stuck(): R | null;
  /** The guest's next timer deadline in host ns (Infinity: none). */
  nextDeadline(): number;
  /** Run vCPU `i` for up to `budget` instructions of the round that started at the guest's time;
   *  a result when the guest's run must end. */
  runSlice(i: number, budget: number): R | null;
  /** Whether something inside a slice asked the round to stop early for this guest. */
  stopPending(): boolean;
  /** Host time moved to `ns`: the guest's clock follows (timers fire). */
  advance(ns: number): void;
}

export interface RoundRobinOptions {
  /** Host CPUs the vCPUs share (default: one per vCPU, so no vCPU ever waits). */
  hostCpus?: number;
  /** Host ns a vCPU keeps its host CPU while others wait (default 3 ms). */
  quantumNs?: number;
  /** Instructions per call into the core at most (default 1 M: returning lets V8 tier up). */
  sliceInstructions?: number;
}

interface Ref { guest: number; vcpu: number }

export class RoundRobinScheduler<R> {
  readonly hostCpus: number;
  private readonly quantumNs: number;
  private readonly slice: number;
  /** Host virtual time in ns (1 ns per instruction). */
  nowNs = 0;
  private readonly active: boolean[];
  /** The round-robin queue of every vCPU, in a fixed order that rotates. */
  private queue: Ref[] = [];
  /** Host CPU -> the vCPU on it and the end of its quantum. */
  private readonly slots: Array<{ ref: Ref; until: number } | null>;

  constructor(readonly guests: readonly SchedGuest<R>[], opts: RoundRobinOptions = {}) {
    const total = guests.reduce((n, g) => n + g.vcpuCount, 0);
    this.hostCpus = opts.hostCpus ?? total;
    if (!(Number.isInteger(this.hostCpus) && this.hostCpus >= 1)) throw new Error(`hvlab: --host-cpus must be at least 1 (got ${opts.hostCpus})`);
    this.quantumNs = opts.quantumNs ?? 3_000_000;
    this.slice = opts.sliceInstructions ?? 1_000_000;
    this.active = guests.map(() => true);
    guests.forEach((g, gi) => { for (let i = 0; i < g.vcpuCount; i++) this.queue.push({ guest: gi, vcpu: i }); });
    this.slots = new Array(this.hostCpus).fill(null);
  }

  /** Run until `maxNs` of host time have passed or every guest has ended; `onEnd` hears each guest
   *  that ends (it is then never scheduled again). Returns the host ns that passed. */
  run(maxNs: number, onEnd: (guest: number, result: R) => void): number {
    const start = this.nowNs;
    const finish = (g: number, r: R) => { this.active[g] = false; this.release(g); onEnd(g, r); };
    for (;;) {
      for (let g = 0; g < this.guests.length; g++) {
        if (!this.active[g]) continue;
        const stop = this.guests[g].pollStop();
        if (stop !== null) { finish(g, stop); continue; }
        this.guests[g].wakeHalted();
        const stuck = this.guests[g].stuck();
        if (stuck !== null) finish(g, stuck);
      }
      if (!this.active.some(Boolean)) return this.nowNs - start;
      const used = this.nowNs - start;
      if (used >= maxNs) return used;
      let deadline = Infinity;
      for (let g = 0; g < this.guests.length; g++) if (this.active[g]) deadline = Math.min(deadline, this.guests[g].nextDeadline());
      const untilEvent = Math.ceil(deadline - this.nowNs);
      const waiting = this.assign();
      let budget = Math.max(1, Math.min(this.slice, maxNs - used, untilEvent));
      if (waiting) for (const s of this.slots) if (s) budget = Math.max(1, Math.min(budget, s.until - this.nowNs));
      // The vCPUs on host CPUs this round, in guest and vCPU order (the same order every run).
      const running = this.slots.filter((s): s is { ref: Ref; until: number } => s !== null).map((s) => s.ref)
        .sort((a, b) => a.guest - b.guest || a.vcpu - b.vcpu);
      const skip = new Set<number>();
      for (const { guest, vcpu } of running) {
        if (skip.has(guest) || !this.active[guest]) continue;
        const end = this.guests[guest].runSlice(vcpu, budget);
        if (end !== null) { finish(guest, end); continue; }
        if (this.guests[guest].stopPending()) skip.add(guest);
      }
      this.nowNs += budget;
      for (let g = 0; g < this.guests.length; g++) if (this.active[g]) this.guests[g].advance(this.nowNs);
    }
  }

  /** Fill the host CPUs for the next round: a vCPU that is no longer runnable, or whose quantum is
   *  over while another waits, gives its host CPU up; free host CPUs take runnable vCPUs in queue
   *  order. Returns whether a runnable vCPU is left waiting. */
  private assign(): boolean {
    const runnable = (r: Ref) => this.active[r.guest] && this.guests[r.guest].isRunnable(r.vcpu);
    const on = (r: Ref) => this.slots.some((s) => s !== null && s.ref === r);
    let waiting = this.queue.some((r) => runnable(r) && !on(r));
    for (let c = 0; c < this.slots.length; c++) {
      const s = this.slots[c];
      if (s && (!runnable(s.ref) || (waiting && this.nowNs >= s.until))) {
        this.slots[c] = null;
        // To the back of the queue: the others go first.
        this.queue = this.queue.filter((r) => r !== s.ref);
        this.queue.push(s.ref);
      }
    }
    for (let c = 0; c < this.slots.length; c++) {
      if (this.slots[c]) continue;
      const next = this.queue.find((r) => runnable(r) && !on(r));
      if (!next) break;
      this.slots[c] = { ref: next, until: this.nowNs + this.quantumNs };
    }
    waiting = this.queue.some((r) => runnable(r) && !on(r));
    return waiting;
  }

  private release(g: number): void {
    for (let c = 0; c < this.slots.length; c++) if (this.slots[c]?.ref.guest === g) this.slots[c] = null;
  }
}
