// The host's round-robin scheduler under its first name: the scheduler core (scheduler.ts) with the
// rr policy (rr.ts). A vCPU keeps its host CPU for a quantum, then goes to the back of the queue if
// another runnable vCPU waits. Other policies: createScheduler in scheduler.ts.
import { HostScheduler, type SchedGuest, type SchedulerOptions } from './scheduler.ts';
import { RoundRobinPolicy } from './rr.ts';

export type { SchedGuest } from './scheduler.ts';
export type RoundRobinOptions = SchedulerOptions;

export class RoundRobinScheduler<R> extends HostScheduler<R> {
  constructor(guests: readonly SchedGuest<R>[], opts: RoundRobinOptions = {}) {
    super(guests, (view) => new RoundRobinPolicy(view), opts);
  }
}
