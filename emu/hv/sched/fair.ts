// Weighted fair share, after CFS with group scheduling: every schedulable entity (a vCPU task, a
// guest, a group) has a virtual runtime in its parent's runqueue that advances by runtime * 1024 /
// load weight; the next host CPU goes down the tree, at each level to the entity with the least
// vruntime. Picks already made for the round count as projected runtime, so that the P vCPUs of one
// round already follow the weights. A decision stands for a turn (the quantum, CFS's slice): a vCPU
// is not preempted before its turn ends, unless it stops being runnable; a free host CPU is always
// filled (work-conserving). A vCPU that wakes is placed near the least vruntime of its siblings
// (CFS's place_entity with GENTLE_FAIR_SLEEPERS: half a turn of credit at most), so sleeping hoards
// nothing. A yielder becomes the skip buddy of every level of its path for the next decision (CFS's
// yield_task_fair / set_skip_buddy).
//
// Gang scheduling is the same order with another unit. Strict co-scheduling places a guest only as
// a whole: all its vCPUs at once, halted ones holding their host CPUs idle, or none; guests go in
// fair order, smaller ones backfill host CPUs a larger one does not fit. Relaxed co-scheduling
// (VMware ESX's, "The CPU Scheduler in VMware vSphere 5.1"): vCPUs are placed one by one in fair
// order, but a vCPU whose progress leads its slowest runnable sibling by the skew bound is
// co-stopped until the sibling catches up, and a round never lets a lead pass the bound.
import type { SchedNode } from './groups.ts';
import type { Assignment, Policy, PolicyName, SchedView } from './policy.ts';

export class FairPolicy implements Policy {
  readonly name: PolicyName = 'fair';
  get handsOff(): boolean { return true; }
  /** vruntime of each vCPU task in its guest's runqueue (a nice-0 task: 1 ns per ns run). */
  protected readonly vr: Float64Array;
  /** vruntime of each node (guest or group entity) in its parent's runqueue. */
  protected readonly nodeVr: Float64Array;
  /** Each runqueue's min_vruntime: the least vruntime of its runnable entities, never going back
   *  (CFS's update_min_vruntime); what a waking entity is placed against. */
  protected readonly minVr: Float64Array;
  /** Whether a node had a candidate vCPU under it at the last decision (was on its runqueue). */
  protected readonly nodeRunnable: Uint8Array;
  /** The end of the current turn: decisions stand until then. */
  protected turnEnd = -Infinity;
  /** Units placed in the current turn (vCPU ids; guest indices under strict co-scheduling). */
  protected sticky = new Set<number>();
  /** Skip buddies for the next decision: vCPU ids and node ids. */
  private readonly skipVcpu = new Set<number>();
  private readonly skipNode = new Set<number>();

  constructor(protected readonly view: SchedView) {
    this.vr = new Float64Array(view.vcpus.length);
    this.nodeVr = new Float64Array(view.nodes.length);
    this.minVr = new Float64Array(view.nodes.length);
    this.nodeRunnable = new Uint8Array(view.nodes.length);
  }

  /** What one decision places together: a vCPU (key: its id). */
  protected unitKey(id: number): number { return id; }
  protected unitOf(key: number): readonly number[] { return [key]; }
  /** Whether a pick stops at a guest (the whole guest is the unit). */
  protected get wholeGuests(): boolean { return false; }

  begin(a: Assignment): void {
    const v = this.view;
    // The runqueues hold the candidates: a throttled group is off its parent's runqueue (CFS's
    // throttle_cfs_rq), as a sleeping one is.
    this.nodeRunnable.fill(0);
    for (const e of v.vcpus) if (a.isCandidate(e.id)) for (const n of e.node.path) this.nodeRunnable[n.id] = 1;
    this.nodeRunnable[v.root.id] = 1;
    for (const n of v.nodes) {
      let m = Infinity;
      if (n.kind === 'guest') { for (const id of v.guestVcpus[n.guest]) if (a.isCandidate(id)) m = Math.min(m, this.vr[id]); }
      else for (const c of n.children) if (this.nodeRunnable[c.id]) m = Math.min(m, this.nodeVr[c.id]);
      if (m !== Infinity) this.minVr[n.id] = Math.max(this.minVr[n.id], m);
    }
    if (v.nowNs >= this.turnEnd) {
      this.sticky.clear();
      this.turnEnd = v.nowNs + v.quantumNs;
    }
  }

  choose(cands: readonly number[], a: Assignment): readonly number[] | null {
    const inCands = new Set(cands);
    // A unit keeps its host CPUs through its turn.
    for (const key of [...this.sticky].sort((x, y) => x - y)) {
      const u = this.unitOf(key);
      if (u.some((id) => inCands.has(id)) && u.every((id) => !a.isPlaced(id))) return u;
    }
    const id = this.pick(inCands, a.placed);
    return id === null ? null : this.unitOf(this.unitKey(id));
  }

  end(a: Assignment): number {
    this.sticky = new Set(a.placed.map((id) => this.unitKey(id)));
    this.skipVcpu.clear();
    this.skipNode.clear();
    return a.waiting() ? this.turnEnd : Infinity;
  }

  next(cands: readonly number[]): number | null {
    return this.pick(new Set(cands), []);
  }

  charge(id: number, ns: number): void {
    this.vr[id] += ns; // a vCPU task is nice 0: load weight 1024
    for (const n of this.view.vcpus[id].node.path) this.nodeVr[n.id] += (ns * 1024) / n.loadWeight;
  }

  woke(id: number): void {
    const e = this.view.vcpus[id];
    const credit = this.view.quantumNs / 2;
    this.vr[id] = Math.max(this.vr[id], this.minVr[e.node.id] - credit);
    // A guest (or group) whose vCPUs all slept wakes in its parent's runqueue the same way.
    for (let n: SchedNode = e.node; n.parent && !this.nodeRunnable[n.id]; n = n.parent) {
      this.nodeVr[n.id] = Math.max(this.nodeVr[n.id], this.minVr[n.parent.id] - credit);
      this.nodeRunnable[n.id] = 1;
    }
  }

  expire(id: number): void {
    this.sticky.delete(this.unitKey(id));
  }

  yielded(id: number): void {
    this.sticky.delete(this.unitKey(id));
    this.skip(id);
  }

  /** The target keeps a host CPU through the rest of the turn, as the yielder would have. */
  handOver(_from: number, to: number): void { this.sticky.add(this.unitKey(to)); }

  protected skip(id: number): void {
    this.skipVcpu.add(id);
    for (const n of this.view.vcpus[id].node.path) this.skipNode.add(n.id);
  }

  ended(guest: number): void {
    for (const id of this.view.guestVcpus[guest]) this.sticky.delete(this.unitKey(id));
  }

  /** Down the tree to the candidate with the least vruntime, counting `placed` as each running the
   *  rest of the turn; a skip buddy only when nothing else is there. */
  protected pick(cands: ReadonlySet<number>, placed: readonly number[]): number | null {
    const v = this.view;
    if (cands.size === 0) return null;
    const ahead = Math.max(0, this.turnEnd - v.nowNs);
    const projVcpu = new Map<number, number>();
    const projNode = new Float64Array(v.nodes.length);
    for (const id of placed) {
      projVcpu.set(id, (projVcpu.get(id) ?? 0) + ahead);
      for (const n of v.vcpus[id].node.path) projNode[n.id] += (ahead * 1024) / n.loadWeight;
    }
    const under = new Uint8Array(v.nodes.length);
    for (const id of cands) for (const n of v.vcpus[id].node.path) under[n.id] = 1;
    let n = v.root;
    for (;;) {
      if (n.kind === 'guest') {
        const ids = v.guestVcpus[n.guest].filter((id) => cands.has(id));
        if (this.wholeGuests) return ids[0];
        return least(ids, (id) => this.vr[id] + (projVcpu.get(id) ?? 0), (id) => this.skipVcpu.has(id));
      }
      const next = least(n.children.filter((c) => under[c.id]), (c) => this.nodeVr[c.id] + projNode[c.id], (c) => this.skipNode.has(c.id));
      if (!next) return null;
      n = next;
    }
  }
}

/** The entry with the smallest key, the first of equals, skipped ones only if nothing else. */
function least<T>(xs: readonly T[], key: (x: T) => number, skipped: (x: T) => boolean): T {
  let best: T | undefined, bestKey = Infinity, bestSkip = true;
  for (const x of xs) {
    const k = key(x), s = skipped(x);
    if (best === undefined || (bestSkip && !s) || (s === bestSkip && k < bestKey)) { best = x; bestKey = k; bestSkip = s; }
  }
  return best as T;
}

export class GangPolicy extends FairPolicy {
  override readonly name: PolicyName = 'gang';
  private readonly strict: boolean;

  /** `coSkewNs` 0: strict co-scheduling; > 0: relaxed, with that skew bound. */
  constructor(view: SchedView, readonly coSkewNs: number, guestNames: readonly string[] = []) {
    super(view);
    if (!(Number.isFinite(coSkewNs) && coSkewNs >= 0)) throw new Error(`sched: the co-scheduling skew must be 0 (strict) or a positive number of ns (got ${coSkewNs})`);
    this.strict = coSkewNs === 0;
    if (this.strict) {
      view.guestVcpus.forEach((ids, g) => {
        if (ids.length > view.hostCpus) {
          throw new Error(`sched: gang scheduling: guest ${guestNames[g] ?? g} has ${ids.length} vCPUs but the host has ${view.hostCpus} host CPU${view.hostCpus === 1 ? '' : 's'}; strict co-scheduling runs all of a guest's vCPUs at once (give it at least ${ids.length} host CPUs, or allow a skew for relaxed co-scheduling)`);
        }
      });
    }
  }

  // A gang's host CPUs stay with the gang: giving a yielder's to another guest would run that guest
  // partially (and the yielder's siblings are all on host CPUs already).
  override get handsOff(): boolean { return !this.strict; }
  protected override get wholeGuests(): boolean { return this.strict; }
  protected override unitKey(id: number): number { return this.strict ? this.view.vcpus[id].guest : id; }
  protected override unitOf(key: number): readonly number[] { return this.strict ? this.view.guestVcpus[key] : [key]; }

  override yielded(id: number): void {
    // Under strict co-scheduling the gang keeps its turn: only the next decision skips it.
    if (this.strict) this.skip(id); else super.yielded(id);
  }

  /** Co-stop: a vCPU whose progress leads its slowest runnable sibling by the bound waits. */
  eligible(id: number): boolean {
    if (this.strict) return true;
    const m = this.slowestSibling(id, () => false);
    return m === Infinity || this.view.progressNs(id) - m < this.coSkewNs;
  }

  /** A round may not let vCPU `id` pass the bound over a runnable sibling left waiting (siblings
   *  on host CPUs progress with it). */
  limit(id: number, a: Assignment): number {
    if (this.strict) return Infinity;
    const m = this.slowestSibling(id, (s) => a.isPlaced(s));
    return m === Infinity ? Infinity : this.coSkewNs - (this.view.progressNs(id) - m);
  }

  private slowestSibling(id: number, except: (s: number) => boolean): number {
    const v = this.view;
    let m = Infinity;
    for (const s of v.guestVcpus[v.vcpus[id].guest]) if (s !== id && v.isRunnable(s) && !except(s)) m = Math.min(m, v.progressNs(s));
    return m;
  }
}
