// The host's vCPU scheduler: the vCPUs of every guest share `hostCpus` simulated host CPUs in
// rounds of host virtual time (1 ns per instruction). A round lasts until the next timer event of
// any guest, a slice, the policy's next decision point, a cap or reservation running out, or a
// period boundary; in it, each host CPU runs one vCPU for the round's length, and at its end every
// guest's clock moves on, so a vCPU that waits for a host CPU sees time pass, as on a real
// overcommitted host. Everything is a function of the configuration: the same host repeats exactly.
//
// This is the one core: the policy (rr.ts, fair.ts: rr, fair, gang) only orders; the core enforces
// the groups' caps (cgroup v2 cpu.max, exactly like CFS bandwidth control: a runtime pool refilled
// every period, the group throttled when it is empty, rounds cut short so no group overruns what is
// left) and guarantees (a per-period reservation served before everything else while the group is
// runnable), runs directed yields (KVM's kvm_vcpu_on_spin / yield_to) and keeps the accounting:
// per vCPU running, steal (runnable without a host CPU: KVM's steal time) and halted ns; per group
// cgroup v2's cpu.stat (usage, nr_periods, nr_throttled, throttled time).
import { buildGroupTree, type GroupSpec, type SchedNode } from './groups.ts';
import type { Assignment, Policy, PolicyName, SchedView, VcpuEntity } from './policy.ts';
import { RoundRobinPolicy } from './rr.ts';
import { FairPolicy, GangPolicy } from './fair.ts';

export type { PolicyName } from './policy.ts';
export type { GroupSpec, CpuMax } from './groups.ts';

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
   *  a result when the guest's run must end. `offsetNs` (> 0 only for the rest of a yielder's
   *  round): the slice starts that many ns into the round. */
  runSlice(i: number, budget: number, offsetNs?: number): R | null;
  /** Whether something inside a slice asked the round to stop early for this guest. */
  stopPending(): boolean;
  /** Host time moved to `ns`: the guest's clock follows (timers fire). */
  advance(ns: number): void;
  // ---- Optional: paravirtual scheduling and directed yield (a guest without them still works).
  /** Called just before runSlice(i): the vCPU's steal so far (host ns runnable without a host
   *  CPU), for the guest's steal-time record (KVM's record_steal_time). */
  enterVcpu?(i: number, stealNs: number): void;
  /** vCPU `i` lost its host CPU while still runnable (KVM's preempted flag, kvm_steal_time_set_preempted). */
  preemptVcpu?(i: number): void;
  /** After runSlice(i): null if the vCPU did not yield; else the vCPU index it prefers to yield to
   *  (-1: any) after a pause-loop exit or KVM_HC_SCHED_YIELD. */
  takeYield?(i: number): number | null;
  /** After runSlice(i): the host ns it ran (<= budget; less when it halted or yielded). Without it
   *  the scheduler takes the whole budget, and a yielder has no rest of the round to give. */
  ranNs?(i: number): number;
  /** After runSlice(i): the host ns at which vCPU `i`, blocked in the host (a major fault waiting
   *  for the swap device), can go on; null when it is not blocked. A wake inside the round resumes
   *  it on the host CPU it kept, for the rest of its budget (the wait counts as halted). */
  resumeAt?(i: number): number | null;
}

/** The vCPUs of a round run one after another, each for the round's length (the same order every
 *  run: deterministic), so a vCPU sees what a sibling wrote in the same round only if the sibling
 *  ran first: a lock or an IPI handed between vCPUs waits up to a round. Guests of one vCPU get long
 *  rounds (fewer returns from WebAssembly); SMP guests 50 µs, where booting the bundled guest on
 *  2 vCPUs costs about 5% more wall time than at 1 ms for the same instructions, and the locks
 *  bench's fork/exit and pipe ping-pong run 3x and 12x faster (AMD EPYC family 25,
 *  2 shared cores; `hvlab host --round-us`). */
export const ROUND_NS_UP = 1_000_000;
export const ROUND_NS_SMP = 50_000;

export interface SchedulerOptions {
  /** Host CPUs the vCPUs share (default: one per vCPU, so no vCPU ever waits). */
  hostCpus?: number;
  /** Host ns a decision stands while others wait: rr's quantum, fair's and gang's turn (3 ms). */
  quantumNs?: number;
  /** The longest round, in instructions (= host ns). Default ROUND_NS_UP, or ROUND_NS_SMP when a
   *  guest has several vCPUs. */
  sliceInstructions?: number;
  /** The group tree under the root (guests listed nowhere get a group of their own). */
  groups?: ReadonlyArray<GroupSpec | number>;
  /** Guest names for the default groups and messages (default guest0, guest1, ...). */
  guestNames?: readonly string[];
  /** Hears every round as it ends (tests, tracing). */
  onRound?: (round: RoundTrace) => void;
}

export interface CreateSchedulerOptions extends SchedulerOptions {
  policy?: PolicyName;
  /** gang only: 0 (default) strict co-scheduling; > 0 relaxed, each vCPU's progress may lead its
   *  slowest runnable sibling by at most this. */
  coSkewNs?: number;
}

export interface RoundTrace {
  startNs: number;
  lengthNs: number;
  /** vCPUs that could have run at the round's start (runnable, not throttled, not co-stopped). */
  candidates: number;
  /** Host CPU occupancy: placed vCPUs (idle: held by a gang while halted) and yielders' rests. */
  slots: Array<{ guest: number; vcpu: number; offsetNs: number; ranNs: number; idle: boolean }>;
}

export interface VcpuStats {
  running_ns: number;
  /** Runnable without a host CPU (co-stop included). */
  steal_ns: number;
  halted_ns: number;
  /** Of steal: held back by relaxed co-scheduling (ESX's co-stop). */
  costop_ns: number;
  /** Times it lost its host CPU while runnable. */
  preemptions: number;
  yields: number;
  /** Yields whose rest of the round went to the vCPU asked for. */
  directed_yields: number;
}

export interface GroupStats {
  name: string;
  parent: string | null;
  weight: number;
  cap: { quota_ns: number; period_ns: number } | null;
  /** Host CPUs reserved. */
  guarantee: number | null;
  guests: number[];
  /** Host CPU ns its vCPUs held (cgroup v2 cpu.stat usage). */
  usage_ns: number;
  /** usage over host time: host CPUs' worth (0.5 = half of one host CPU). */
  cpu_share: number;
  throttled_ns: number;
  nr_periods: number;
  nr_throttled: number;
}

export interface SchedStats {
  policy: PolicyName;
  host_cpus: number;
  quantum_ns: number;
  co_skew_ns: number;
  /** Host ns scheduled so far. */
  elapsed_ns: number;
  yields: number;
  directed_yields: number;
  guests: Array<{ vcpus: VcpuStats[] }>;
  groups: GroupStats[];
}

class RoundAssignment implements Assignment {
  readonly placed: number[] = [];
  free: number;
  private readonly isIn: Uint8Array;
  /** Placed vCPUs under each node. */
  readonly under: Int32Array;
  constructor(private readonly cands: Uint8Array, hostCpus: number, nodeCount: number, private readonly vcpus: readonly VcpuEntity[]) {
    this.free = hostCpus;
    this.isIn = new Uint8Array(cands.length);
    this.under = new Int32Array(nodeCount);
  }
  isCandidate(id: number): boolean { return this.cands[id] === 1; }
  isPlaced(id: number): boolean { return this.isIn[id] === 1; }
  waiting(): boolean {
    for (let id = 0; id < this.cands.length; id++) if (this.cands[id] && !this.isIn[id]) return true;
    return false;
  }
  place(id: number): void {
    this.placed.push(id);
    this.isIn[id] = 1;
    this.free--;
    for (const n of this.vcpus[id].node.path) this.under[n.id]++;
  }
}

export class HostScheduler<R> implements SchedView {
  readonly hostCpus: number;
  readonly quantumNs: number;
  readonly policy: Policy;
  /** Host virtual time in ns (1 ns per instruction). */
  nowNs = 0;
  readonly vcpus: VcpuEntity[] = [];
  readonly guestVcpus: number[][];
  readonly root: SchedNode;
  readonly nodes: readonly SchedNode[];
  private readonly slice: number;
  private readonly guestNames: readonly string[];
  private readonly onRound?: (round: RoundTrace) => void;
  private readonly active: boolean[];
  /** Nodes with a cap or a guarantee (their periods cut rounds). */
  private readonly budgeted: SchedNode[];
  private readonly guaranteed: SchedNode[];
  // Per vCPU: this round's state and the totals.
  private readonly runnable: Uint8Array;
  private readonly wasCandidate: Uint8Array;
  private readonly costopped: Uint8Array;
  /** Ran in the last round and still runnable at its end: a round without it preempts it. */
  private readonly onCpu: Uint8Array;
  private readonly preempted: Uint8Array;
  private readonly running: Float64Array;
  private readonly steal: Float64Array;
  private readonly halted: Float64Array;
  private readonly costop: Float64Array;
  private readonly preemptions: Float64Array;
  private readonly yieldCount: Float64Array;
  private readonly directedCount: Float64Array;
  // Per node: cgroup v2 cpu.max / cpu.stat and the reservation.
  private readonly usage: Float64Array;
  private readonly quotaLeft: Float64Array;
  private readonly reserveLeft: Float64Array;
  private readonly periodEnd: Float64Array;
  private readonly throttledNs: Float64Array;
  private readonly nrPeriods: Float64Array;
  private readonly nrThrottled: Float64Array;
  private readonly throttledInPeriod: Uint8Array;
  private elapsedNs = 0;

  constructor(readonly guests: readonly SchedGuest<R>[], makePolicy: (view: SchedView) => Policy, opts: SchedulerOptions = {}) {
    const total = guests.reduce((n, g) => n + g.vcpuCount, 0);
    this.hostCpus = opts.hostCpus ?? total;
    if (!(Number.isInteger(this.hostCpus) && this.hostCpus >= 1)) throw new Error(`hvlab: --host-cpus must be at least 1 (got ${opts.hostCpus})`);
    this.quantumNs = opts.quantumNs ?? 3_000_000;
    if (!(Number.isInteger(this.quantumNs) && this.quantumNs >= 1)) throw new Error(`sched: the quantum must be a positive whole number of ns (got ${opts.quantumNs})`);
    this.slice = opts.sliceInstructions ?? (guests.some((g) => g.vcpuCount > 1) ? ROUND_NS_SMP : ROUND_NS_UP);
    if (!(Number.isInteger(this.slice) && this.slice >= 1)) throw new Error(`sched: the round must be a positive whole number of ns (got ${opts.sliceInstructions})`);
    this.onRound = opts.onRound;
    this.guestNames = guests.map((_, g) => opts.guestNames?.[g] ?? `guest${g}`);
    const tree = buildGroupTree(opts.groups, this.guestNames, this.hostCpus);
    this.root = tree.root;
    this.nodes = tree.nodes;
    this.guestVcpus = guests.map((g, gi) => Array.from({ length: g.vcpuCount }, (_, i) => {
      const id = this.vcpus.length;
      this.vcpus.push({ id, guest: gi, index: i, node: tree.guestNodes[gi] });
      return id;
    }));
    this.active = guests.map(() => true);
    this.budgeted = this.nodes.filter((n) => n.cap || n.guarantee);
    this.guaranteed = this.nodes.filter((n) => n.guarantee);
    const nv = this.vcpus.length, nn = this.nodes.length;
    this.runnable = new Uint8Array(nv); this.wasCandidate = new Uint8Array(nv); this.costopped = new Uint8Array(nv);
    this.onCpu = new Uint8Array(nv); this.preempted = new Uint8Array(nv);
    this.running = new Float64Array(nv); this.steal = new Float64Array(nv); this.halted = new Float64Array(nv); this.costop = new Float64Array(nv);
    this.preemptions = new Float64Array(nv); this.yieldCount = new Float64Array(nv); this.directedCount = new Float64Array(nv);
    this.usage = new Float64Array(nn); this.quotaLeft = new Float64Array(nn); this.reserveLeft = new Float64Array(nn);
    this.periodEnd = new Float64Array(nn).fill(-Infinity); this.throttledNs = new Float64Array(nn);
    this.nrPeriods = new Float64Array(nn); this.nrThrottled = new Float64Array(nn); this.throttledInPeriod = new Uint8Array(nn);
    this.policy = makePolicy(this);
  }

  // ---- SchedView
  isActive(guest: number): boolean { return this.active[guest]; }
  isRunnable(id: number): boolean { return this.runnable[id] === 1; }
  progressNs(id: number): number { return this.running[id] + this.halted[id]; }

  /** Run until `maxNs` of host time have passed or every guest has ended; `onEnd` hears each guest
   *  that ends (it is then never scheduled again). Returns the host ns that passed. */
  run(maxNs: number, onEnd: (guest: number, result: R) => void): number {
    const start = this.nowNs;
    const finish = (g: number, r: R) => { this.active[g] = false; this.policy.ended(g); onEnd(g, r); };
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
      this.observe();
      this.refillPeriods();
      const a = this.assign();
      const until = this.policy.end(a);
      const length = Math.max(1, Math.min(this.slice, maxNs - used, untilEvent, until - this.nowNs, this.budgetLimit(a)));
      this.runRound(a, length, finish);
      this.nowNs += length;
      this.elapsedNs += length;
      for (let g = 0; g < this.guests.length; g++) if (this.active[g]) this.guests[g].advance(this.nowNs);
    }
  }

  /** Who is runnable at this round's start. */
  private observe(): void {
    for (const v of this.vcpus) this.runnable[v.id] = this.active[v.guest] && this.guests[v.guest].isRunnable(v.index) ? 1 : 0;
  }

  /** cgroup v2 periods: at each boundary a capped group's runtime pool is refilled to its quota and
   *  a guaranteed group's reservation to guarantee x period (nothing carries over). */
  private refillPeriods(): void {
    for (const n of this.budgeted) {
      if (this.nowNs < this.periodEnd[n.id]) continue;
      this.periodEnd[n.id] = (Math.floor(this.nowNs / n.periodNs) + 1) * n.periodNs;
      if (n.cap) this.quotaLeft[n.id] = n.cap.quotaNs;
      if (n.guarantee) this.reserveLeft[n.id] = n.guarantee * n.periodNs;
      this.nrPeriods[n.id]++;
      this.throttledInPeriod[n.id] = 0;
    }
  }

  /** Whether every capped node on the path has `k` more ns of quota than the host CPUs already
   *  taken under it this round (so the round can last at least 1 ns without overrunning). */
  private capRoom(path: readonly SchedNode[], a: RoundAssignment, k: number): boolean {
    for (const n of path) if (n.cap && this.quotaLeft[n.id] < a.under[n.id] + k) return false;
    return true;
  }

  /** Place the round: first, vCPUs of groups with reservation left (a guarantee is served before
   *  anyone else, even greedy neighbours with more weight); then everyone, in the policy's order. */
  private assign(): RoundAssignment {
    const cands = new Uint8Array(this.vcpus.length);
    for (const v of this.vcpus) {
      this.costopped[v.id] = 0;
      // A group whose pool is empty is throttled (CFS's throttle_cfs_rq) until the next refill.
      if (!this.runnable[v.id] || v.node.path.some((n) => n.cap && this.quotaLeft[n.id] < 1)) continue;
      if (this.policy.eligible && !this.policy.eligible(v.id)) { this.costopped[v.id] = 1; continue; }
      cands[v.id] = 1;
    }
    // A vCPU that could not run and now can (woken from halt, or its group unthrottled: CFS
    // dequeues a throttled group as if it slept and enqueues it with ENQUEUE_WAKEUP) is placed by
    // the policy, so it brings no credit from the time it could not run.
    for (const v of this.vcpus) {
      if (cands[v.id] && !this.wasCandidate[v.id]) this.policy.woke(v.id);
      this.wasCandidate[v.id] = cands[v.id];
    }
    const a = new RoundAssignment(cands, this.hostCpus, this.nodes.length, this.vcpus);
    this.policy.begin(a);
    if (this.guaranteed.length) {
      this.fill(a, (id) => this.vcpus[id].node.path.some((n) => n.guarantee !== null && this.reserveLeft[n.id] >= a.under[n.id] + 1));
    }
    this.fill(a, () => true);
    return a;
  }

  private fill(a: RoundAssignment, filter: (id: number) => boolean): void {
    const excluded = new Uint8Array(this.vcpus.length);
    while (a.free > 0) {
      const cands: number[] = [];
      for (const v of this.vcpus) {
        if (a.isCandidate(v.id) && !a.isPlaced(v.id) && !excluded[v.id] && filter(v.id) && this.capRoom(v.node.path, a, 1)) cands.push(v.id);
      }
      if (!cands.length) return;
      const unit = this.policy.choose(cands, a);
      if (!unit || !unit.some((id) => cands.includes(id))) return;
      if (this.fits(unit, a)) for (const id of unit) a.place(id);
      else for (const id of unit) excluded[id] = 1;
    }
  }

  /** A unit fits: host CPUs for all of it, none placed yet, and quota for all of it. */
  private fits(unit: readonly number[], a: RoundAssignment): boolean {
    if (unit.length > a.free || unit.some((id) => a.isPlaced(id))) return false;
    const need = new Map<SchedNode, number>();
    for (const id of unit) for (const n of this.vcpus[id].node.path) if (n.cap) need.set(n, (need.get(n) ?? 0) + 1);
    for (const [n, k] of need) if (this.quotaLeft[n.id] < a.under[n.id] + k) return false;
    return true;
  }

  /** The longest the round may last for the groups: no capped group overruns its quota, a
   *  reservation ends exactly when it is used up, a period boundary ends the round; and the
   *  policy's own per-vCPU limits (co-scheduling skew). */
  private budgetLimit(a: RoundAssignment): number {
    let lim = Infinity;
    for (const n of this.budgeted) {
      lim = Math.min(lim, this.periodEnd[n.id] - this.nowNs);
      const k = a.under[n.id];
      if (!k) continue;
      if (n.cap) lim = Math.min(lim, Math.floor(this.quotaLeft[n.id] / k));
      if (n.guarantee && this.reserveLeft[n.id] >= 1) lim = Math.min(lim, Math.max(1, Math.floor(this.reserveLeft[n.id] / k)));
    }
    if (this.policy.limit) for (const id of a.placed) if (a.isCandidate(id)) lim = Math.min(lim, this.policy.limit(id, a));
    return Math.floor(lim);
  }

  /** Run the placed vCPUs (in guest and vCPU order: the same order every run), then give the rest
   *  of each yielder's round away; then account the round. */
  private runRound(a: RoundAssignment, length: number, finish: (g: number, r: R) => void): void {
    const n = this.vcpus.length;
    const ran = new Float64Array(n);
    const blockedNs = new Float64Array(n);
    const offset = new Float64Array(n).fill(length);
    const didRun = new Uint8Array(n);
    const yieldedAway = new Uint8Array(n);
    const activeAtStart = this.active.slice();
    // Host CPU time taken under each node this round (what a capped group may still use of a rest).
    const taken = new Float64Array(this.nodes.length);
    const held = a.placed.filter((id) => !a.isCandidate(id)); // a gang's halted vCPUs: idle, held
    for (const id of held) for (const nd of this.vcpus[id].node.path) taken[nd.id] += length;
    const slots: RoundTrace['slots'] = this.onRound ? held.map((id) => ({ guest: this.vcpus[id].guest, vcpu: this.vcpus[id].index, offsetNs: 0, ranNs: 0, idle: true })) : [];

    // A vCPU that ran last round, is still runnable and has no host CPU now was preempted.
    for (const v of this.vcpus) {
      if (this.onCpu[v.id] && this.runnable[v.id] && !a.isPlaced(v.id)) this.preempt(v, true);
    }

    const skip = new Set<number>();
    const yields: Array<{ id: number; target: number; at: number }> = [];
    const runOne = (id: number, budget: number, at: number) => {
      const v = this.vcpus[id], g = this.guests[v.guest];
      g.enterVcpu?.(v.index, this.steal[id] + (this.runnable[id] ? at : 0));
      this.preempted[id] = 0;
      let pos = at, left = budget, total = 0, waited = 0;
      let end: R | null = null;
      for (;;) {
        end = g.runSlice(v.index, left, pos);
        const r = end !== null || !g.ranNs ? left : Math.max(0, Math.min(left, g.ranNs(v.index)));
        if (this.onRound) slots.push({ guest: v.guest, vcpu: v.index, offsetNs: pos, ranNs: r, idle: false });
        total += r; pos += r; left -= r;
        if (end !== null || g.stopPending() || !g.resumeAt) break;
        // Blocked in the host (a swap-in): it keeps its host CPU and goes on when the wait ends
        // inside the round (a wait past it ends at a deadline of the guest's clock).
        const wake = g.resumeAt(v.index);
        if (wake === null) break;
        const gap = Math.ceil(wake - this.nowNs) - pos;
        if (gap < 0 || gap >= left) break;
        waited += gap; pos += gap; left -= gap;
      }
      ran[id] = total; offset[id] = at; blockedNs[id] = waited; didRun[id] = 1;
      for (const nd of v.node.path) taken[nd.id] += total;
      if (end !== null) { finish(v.guest, end); return; }
      if (g.stopPending()) skip.add(v.guest);
      const y = g.takeYield?.(v.index) ?? null;
      if (y !== null) yields.push({ id, target: y, at: pos });
    };
    const order = a.placed.filter((id) => a.isCandidate(id)).sort((x, y) => x - y);
    for (const id of order) {
      const g = this.vcpus[id].guest;
      if (skip.has(g) || !this.active[g]) continue;
      runOne(id, length, 0);
    }

    // Directed yield: the yielder gives up its host CPU for the rest of the round. The rest goes to
    // the vCPU it named if that one can run and has not run this round; else to a preempted runnable
    // sibling (KVM's kvm_vcpu_on_spin prefers vCPUs that were preempted: likely lock holders); else
    // to whoever waits, in the policy's order. The policy also puts the yielder behind the others.
    for (let k = 0; k < yields.length; k++) {
      const { id, target, at } = yields[k];
      const v = this.vcpus[id], g = this.guests[v.guest];
      this.yieldCount[id]++;
      this.policy.yielded(id);
      const rest = length - at;
      if (rest <= 0 || !this.active[v.guest]) continue;
      if (g.isRunnable(v.index)) { this.preempt(v, false); yieldedAway[id] = 1; }
      if (!this.policy.handsOff) continue;
      const room = (c: number) => {
        let r = rest;
        for (const nd of this.vcpus[c].node.path) if (nd.cap) r = Math.min(r, this.quotaLeft[nd.id] - taken[nd.id]);
        return this.policy.limit ? Math.min(r, this.policy.limit(c, a)) : r;
      };
      const free = (c: number) => {
        const w = this.vcpus[c];
        return !didRun[c] && !a.isPlaced(c) && this.active[w.guest] && !skip.has(w.guest) && this.guests[w.guest].isRunnable(w.index)
          && (!this.policy.eligible || this.policy.eligible(c)) && room(c) >= 1;
      };
      let to: number | null = null;
      const siblings = this.guestVcpus[v.guest];
      if (target >= 0 && target < siblings.length && free(siblings[target])) {
        to = siblings[target];
        this.directedCount[id]++;
      }
      if (to === null) {
        const preempted = siblings.filter((c) => this.preempted[c] && free(c));
        if (preempted.length) to = this.policy.next(preempted);
      }
      if (to === null) {
        const waiting = this.vcpus.filter((w) => free(w.id)).map((w) => w.id);
        if (waiting.length) to = this.policy.next(waiting);
      }
      if (to === null) continue;
      if (!a.isCandidate(to)) { this.policy.woke(to); this.wasCandidate[to] = 1; }
      runOne(to, Math.floor(room(to)), at);
      this.policy.handOver?.(id, to);
    }

    this.account(a, length, { ran, blockedNs, offset, didRun, yieldedAway, activeAtStart, held });
    if (this.onRound) {
      let candidates = 0;
      for (const v of this.vcpus) if (a.isCandidate(v.id)) candidates++;
      this.onRound({ startNs: this.nowNs, lengthNs: length, candidates, slots });
    }
  }

  /** vCPU `v` is off its host CPU while runnable: the guest hears it (KVM's preempted flag), and it
   *  counts as preempted for directed yield; `counted`: involuntarily (not its own yield). */
  private preempt(v: VcpuEntity, counted: boolean): void {
    this.guests[v.guest].preemptVcpu?.(v.index);
    this.preempted[v.id] = 1;
    if (counted) this.preemptions[v.id]++;
    this.onCpu[v.id] = 0;
  }

  /** Split the round of every vCPU into running, steal and halted; charge the groups. Before its
   *  piece of the round (all of it, if it did not run) a vCPU was as it was at the round's start;
   *  after its piece, as it is now. */
  private account(a: RoundAssignment, length: number, r: {
    ran: Float64Array; blockedNs: Float64Array; offset: Float64Array; didRun: Uint8Array; yieldedAway: Uint8Array; activeAtStart: boolean[]; held: number[];
  }): void {
    // Throttled time (cgroup v2 throttled_usec): the round a capped group with a runnable vCPU
    // under it started with its pool empty.
    for (const n of this.budgeted) {
      if (!n.cap || this.quotaLeft[n.id] >= 1) continue;
      if (!this.vcpus.some((v) => this.runnable[v.id] && v.node.path.includes(n))) continue;
      this.throttledNs[n.id] += length;
      if (!this.throttledInPeriod[n.id]) { this.throttledInPeriod[n.id] = 1; this.nrThrottled[n.id]++; }
    }
    const reserved = this.guaranteed.filter((n) => this.reserveLeft[n.id] >= 1);
    const heldIdle = new Set(r.held);
    for (const v of this.vcpus) {
      if (!r.activeAtStart[v.guest]) continue;
      const id = v.id;
      const before = r.offset[id], ran = r.ran[id], after = length - before - ran - r.blockedNs[id];
      this.halted[id] += r.blockedNs[id];
      if (this.runnable[id]) {
        this.steal[id] += before;
        if (this.costopped[id]) this.costop[id] += before;
      } else this.halted[id] += before;
      this.running[id] += ran;
      const nowRunnable = this.active[v.guest] && this.guests[v.guest].isRunnable(v.index);
      if (after > 0) { if (nowRunnable) this.steal[id] += after; else this.halted[id] += after; }
      this.onCpu[id] = r.didRun[id] && nowRunnable && !r.yieldedAway[id] ? 1 : 0;
      const charge = ran + (heldIdle.has(id) ? length : 0);
      if (charge > 0) this.charge(v, charge);
    }
    // A reservation used up: the turns it granted end with it (else a guaranteed group would keep
    // its host CPUs past its reservation on the strength of it).
    for (const n of reserved) {
      if (this.reserveLeft[n.id] >= 1) continue;
      for (const id of a.placed) if (this.vcpus[id].node.path.includes(n)) this.policy.expire(id);
    }
  }

  private charge(v: VcpuEntity, ns: number): void {
    this.usage[this.root.id] += ns;
    for (const n of v.node.path) {
      this.usage[n.id] += ns;
      if (n.cap) this.quotaLeft[n.id] -= ns;
      if (n.guarantee) this.reserveLeft[n.id] = Math.max(0, this.reserveLeft[n.id] - ns);
    }
    this.policy.charge(v.id, ns);
  }

  /** The accounting as plain JSON-able objects. */
  stats(): SchedStats {
    const vcpu = (id: number): VcpuStats => ({
      running_ns: this.running[id], steal_ns: this.steal[id], halted_ns: this.halted[id], costop_ns: this.costop[id],
      preemptions: this.preemptions[id], yields: this.yieldCount[id], directed_yields: this.directedCount[id],
    });
    const guestsUnder = (n: SchedNode): number[] => (n.kind === 'guest' ? [n.guest] : n.children.flatMap(guestsUnder));
    return {
      policy: this.policy.name, host_cpus: this.hostCpus, quantum_ns: this.quantumNs,
      co_skew_ns: this.policy instanceof GangPolicy ? this.policy.coSkewNs : 0,
      elapsed_ns: this.elapsedNs,
      yields: this.yieldCount.reduce((s, x) => s + x, 0), directed_yields: this.directedCount.reduce((s, x) => s + x, 0),
      guests: this.guestVcpus.map((ids) => ({ vcpus: ids.map(vcpu) })),
      groups: this.nodes.filter((n) => n.kind === 'group').map((n) => ({
        name: n.name, parent: n.parent && n.parent.kind !== 'root' ? n.parent.name : null, weight: n.weight,
        cap: n.cap ? { quota_ns: n.cap.quotaNs, period_ns: n.cap.periodNs } : null, guarantee: n.guarantee,
        guests: guestsUnder(n), usage_ns: this.usage[n.id], cpu_share: this.elapsedNs ? this.usage[n.id] / this.elapsedNs : 0,
        throttled_ns: this.throttledNs[n.id], nr_periods: this.nrPeriods[n.id], nr_throttled: this.nrThrottled[n.id],
      })),
    };
  }
}

/** The scheduler for a policy: 'rr' (default), 'fair', or 'gang' (strict, or relaxed with coSkewNs). */
export function createScheduler<R>(guests: readonly SchedGuest<R>[], opts: CreateSchedulerOptions = {}): HostScheduler<R> {
  const policy = opts.policy ?? 'rr';
  if (opts.coSkewNs !== undefined && opts.coSkewNs !== 0 && policy !== 'gang') throw new Error(`sched: a co-scheduling skew is for the gang policy only (the policy is ${policy})`);
  const names = guests.map((_, g) => opts.guestNames?.[g] ?? `guest${g}`);
  switch (policy) {
    case 'rr': return new HostScheduler(guests, (v) => new RoundRobinPolicy(v), opts);
    case 'fair': return new HostScheduler(guests, (v) => new FairPolicy(v), opts);
    case 'gang': return new HostScheduler(guests, (v) => new GangPolicy(v, opts.coSkewNs ?? 0, names), opts);
    default: throw new Error(`sched: unknown policy ${JSON.stringify(policy)} (expected rr, fair or gang)`);
  }
}
