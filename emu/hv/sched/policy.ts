// The contract between the scheduler core (scheduler.ts) and its policies (rr.ts, fair.ts). The core
// owns time (rounds, stops, deadlines), the groups' caps and guarantees, accounting and directed
// yield; a policy only decides the order: which runnable vCPUs take the host CPUs next round, and
// until when that decision stands (its next decision point).
import type { SchedNode } from './groups.ts';

export type PolicyName = 'rr' | 'fair' | 'gang';

/** A vCPU as the scheduler sees it (a KVM vCPU thread): ids are in guest, then vCPU, order. */
export interface VcpuEntity {
  readonly id: number;
  readonly guest: number;
  /** The vCPU's index in its guest. */
  readonly index: number;
  /** Its guest's node: the runqueue the vCPU task sits on. */
  readonly node: SchedNode;
}

/** What a policy may read of the scheduler. */
export interface SchedView {
  readonly hostCpus: number;
  /** The host ns a decision stands while others wait (rr's quantum, fair's turn). */
  readonly quantumNs: number;
  readonly nowNs: number;
  readonly vcpus: readonly VcpuEntity[];
  /** vCPU ids of each guest, by vCPU index. */
  readonly guestVcpus: readonly (readonly number[])[];
  readonly root: SchedNode;
  readonly nodes: readonly SchedNode[];
  isActive(guest: number): boolean;
  /** Runnable at the start of the current round (its guest still running). */
  isRunnable(id: number): boolean;
  /** Host ns vCPU `id` has run or halted (VMware's progress of a vCPU: a halted vCPU makes
   *  progress, a vCPU waiting for a host CPU does not). */
  progressNs(id: number): number;
}

/** One round's placement while it is being built. */
export interface Assignment {
  /** vCPU ids holding a host CPU this round, in the order they were placed. */
  readonly placed: readonly number[];
  /** Host CPUs still free. */
  readonly free: number;
  /** May run this round: runnable, its guest running, not throttled by a cap, not co-stopped. */
  isCandidate(id: number): boolean;
  isPlaced(id: number): boolean;
  /** A candidate is left without a host CPU. */
  waiting(): boolean;
}

export interface Policy {
  readonly name: PolicyName;
  /** Whether the rest of a yielder's round may go to another vCPU (strict co-scheduling keeps a
   *  gang's host CPUs to the gang). */
  readonly handsOff: boolean;
  /** False: the vCPU may not run this round though runnable (relaxed co-scheduling's co-stop). */
  eligible?(id: number): boolean;
  /** A round's placement starts (drop what no longer holds, e.g. an expired quantum). */
  begin(a: Assignment): void;
  /** The next unit to place among `cands` (free candidates): one vCPU, or a whole guest under strict
   *  co-scheduling (its halted vCPUs too: they hold their host CPUs idle). Null: place nothing more.
   *  The core places the unit if it fits (host CPUs, caps) and otherwise asks again without it. */
  choose(cands: readonly number[], a: Assignment): readonly number[] | null;
  /** The placement is final: returns the latest host ns the round may end (Infinity: any). */
  end(a: Assignment): number;
  /** The first of `cands` in this policy's order (who gets a yielder's host CPU); null: nobody. */
  next(cands: readonly number[]): number | null;
  /** At most this many ns for vCPU `id` in the round being placed (relaxed co-scheduling's skew). */
  limit?(id: number, a: Assignment): number;
  /** vCPU `id` held a host CPU for `ns` (run, or held idle by its gang). */
  charge(id: number, ns: number): void;
  /** vCPU `id` became a candidate after not being one: woken from halt, unthrottled, co-started
   *  (or before its first round). */
  woke(id: number): void;
  /** The decision that placed vCPU `id` no longer stands (the reservation it ran on is used up): it
   *  keeps its host CPU only if the policy's order would give it again. */
  expire(id: number): void;
  /** vCPU `id` yielded its host CPU (a pause-loop exit or KVM_HC_SCHED_YIELD). */
  yielded(id: number): void;
  /** After yielded(from): the rest of its round went to `to`, which also inherits the rest of the
   *  yielder's turn (CFS's yield_to makes the target the next buddy; KVM's kvm_vcpu_on_spin wants
   *  the likely lock holder to run long enough to release the lock, not for a moment). */
  handOver?(from: number, to: number): void;
  /** The guest's run ended: it is never scheduled again. */
  ended(guest: number): void;
}
