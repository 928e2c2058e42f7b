// Round-robin (the host's first policy, kept exactly): a vCPU keeps its host CPU for a quantum, then
// goes to the back of the queue if another runnable vCPU waits; free host CPUs take runnable vCPUs in
// queue order. A vCPU that yields goes to the back at once (as SCHED_RR's sched_yield does).
import type { Assignment, Policy, SchedView } from './policy.ts';

export class RoundRobinPolicy implements Policy {
  readonly name = 'rr' as const;
  readonly handsOff = true;
  /** Every vCPU, in a fixed order that rotates. */
  private queue: number[];
  /** Host CPU -> the vCPU on it and the end of its quantum (the slot order fixes who goes to the
   *  back first when several quanta end at once). */
  private readonly slots: Array<{ id: number; until: number } | null>;

  constructor(private readonly view: SchedView) {
    this.queue = view.vcpus.map((v) => v.id);
    this.slots = new Array(view.hostCpus).fill(null);
  }

  begin(a: Assignment): void {
    const on = new Set(this.slots.filter((s) => s !== null).map((s) => s!.id));
    const waiting = this.view.vcpus.some((v) => a.isCandidate(v.id) && !on.has(v.id));
    for (let c = 0; c < this.slots.length; c++) {
      const s = this.slots[c];
      if (s && (!a.isCandidate(s.id) || (waiting && this.view.nowNs >= s.until))) {
        this.slots[c] = null;
        this.toBack(s.id);
      }
    }
  }

  choose(cands: readonly number[]): readonly number[] | null {
    // A vCPU keeps its host CPU through its quantum; then the queue decides.
    for (const s of this.slots) if (s && cands.includes(s.id)) return [s.id];
    const id = this.next(cands);
    return id === null ? null : [id];
  }

  end(a: Assignment): number {
    // One that lost its host CPU to a guarantee or a cap keeps its place in the queue.
    for (let c = 0; c < this.slots.length; c++) if (this.slots[c] && !a.isPlaced(this.slots[c]!.id)) this.slots[c] = null;
    for (const id of a.placed) {
      if (this.slots.some((s) => s?.id === id)) continue;
      const c = this.slots.indexOf(null);
      this.slots[c] = { id, until: this.view.nowNs + this.view.quantumNs };
    }
    if (!a.waiting()) return Infinity;
    return Math.min(...this.slots.map((s) => (s ? s.until : Infinity)));
  }

  next(cands: readonly number[]): number | null {
    const set = new Set(cands);
    return this.queue.find((id) => set.has(id)) ?? null;
  }

  charge(): void {}
  woke(): void {}

  expire(id: number): void {
    for (const s of this.slots) if (s?.id === id) s.until = Math.min(s.until, this.view.nowNs);
  }

  yielded(id: number): void {
    this.lastYield = null;
    for (let c = 0; c < this.slots.length; c++) {
      if (this.slots[c]?.id !== id) continue;
      this.lastYield = { id, until: this.slots[c]!.until };
      this.slots[c] = null;
    }
    this.toBack(id);
  }
  private lastYield: { id: number; until: number } | null = null;

  /** The target takes the yielder's host CPU until the yielder's quantum would have ended. */
  handOver(from: number, to: number): void {
    const y = this.lastYield;
    this.lastYield = null;
    if (!y || y.id !== from || this.slots.some((s) => s?.id === to)) return;
    const c = this.slots.indexOf(null);
    if (c >= 0) this.slots[c] = { id: to, until: y.until };
  }

  ended(guest: number): void {
    for (let c = 0; c < this.slots.length; c++) if (this.slots[c] && this.view.vcpus[this.slots[c]!.id].guest === guest) this.slots[c] = null;
  }

  private toBack(id: number): void {
    this.queue = this.queue.filter((x) => x !== id);
    this.queue.push(id);
  }
}
