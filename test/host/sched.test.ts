// The host's round-robin scheduler (emu/hv/sched/round-robin.ts) on guests that only record what
// they were given: shares of host time, rotation by quantum, halted vCPUs giving their host CPU up,
// timer deadlines ending rounds, and the same sequence on every run.
import { describe, expect, it } from 'vitest';
import { RoundRobinScheduler, type SchedGuest } from '../../emu/hv/sched/round-robin.ts';
import { ROUND_NS_SMP, ROUND_NS_UP } from '../../emu/hv/sched/scheduler.ts';

class FakeGuest implements SchedGuest<string> {
  readonly log: Array<[number, number, number]> = [];
  now = 0;
  halted: boolean[];
  constructor(readonly vcpuCount: number, private deadline = Infinity, private haltAfter = Infinity) {
    this.halted = new Array(vcpuCount).fill(false);
  }
  ran = 0;
  pollStop() { return null; }
  wakeHalted() {}
  isRunnable(i: number) { return !this.halted[i]; }
  stuck() { return this.halted.every(Boolean) && this.deadline === Infinity ? 'halted' : null; }
  nextDeadline() { return this.deadline; }
  runSlice(i: number, budget: number) {
    this.log.push([this.now, i, budget]);
    this.ran += budget;
    if (this.ran >= this.haltAfter) this.halted[i] = true;
    return null;
  }
  stopPending() { return false; }
  advance(ns: number) { this.now = ns; if (ns >= this.deadline) this.deadline = Infinity; }
}

describe('round-robin over host CPUs', () => {
  it('three one-vCPU guests on one host CPU share its time equally, a quantum at a time', () => {
    const gs = [new FakeGuest(1), new FakeGuest(1), new FakeGuest(1)];
    const s = new RoundRobinScheduler(gs, { hostCpus: 1, quantumNs: 3_000_000 });
    expect(s.run(90_000_000, () => {})).toBe(90_000_000);
    expect(gs.map((g) => g.ran)).toEqual([30_000_000, 30_000_000, 30_000_000]);
    // Turns of one quantum each (in slices of at most 1 M), in queue order.
    const turns = gs.flatMap((g, k) => g.log.map(([t]) => [t, k])).sort((a, b) => a[0] - b[0]).map(([, k]) => k);
    expect(turns.slice(0, 9)).toEqual([0, 0, 0, 1, 1, 1, 2, 2, 2]);
  });

  it('with a host CPU per vCPU every vCPU runs every round, and a timer deadline ends the round', () => {
    const a = new FakeGuest(2, 1_500_000), b = new FakeGuest(1);
    const s = new RoundRobinScheduler([a, b], { sliceInstructions: 1_000_000 });
    expect(s.hostCpus).toBe(3);
    s.run(3_000_000, () => {});
    expect(a.log.map(([t, i, n]) => `${t}:${i}:${n}`)).toEqual(['0:0:1000000', '0:1:1000000', '1000000:0:500000', '1000000:1:500000', '1500000:0:1000000', '1500000:1:1000000', '2500000:0:500000', '2500000:1:500000']);
    expect(b.ran).toBe(3_000_000);
  });

  it('rounds are 1 ms with guests of one vCPU and ROUND_NS_SMP (50 µs) once a guest has several', () => {
    const up = [new FakeGuest(1), new FakeGuest(1)], smp = [new FakeGuest(1), new FakeGuest(2)];
    new RoundRobinScheduler(up, { hostCpus: 2 }).run(2_000_000, () => {});
    new RoundRobinScheduler(smp, { hostCpus: 3 }).run(200_000, () => {});
    expect(up[0].log.map(([, , n]) => n)).toEqual([ROUND_NS_UP, ROUND_NS_UP]);
    expect(ROUND_NS_SMP).toBe(50_000);
    expect(smp[1].log.map(([t, i, n]) => `${t}:${i}:${n}`)).toEqual(['0:0:50000', '0:1:50000', '50000:0:50000', '50000:1:50000', '100000:0:50000', '100000:1:50000', '150000:0:50000', '150000:1:50000']);
    expect(() => new RoundRobinScheduler(up, { sliceInstructions: 0 })).toThrow('the round must be a positive whole number of ns');
  });

  it('a halted vCPU gives its host CPU to one that waits; a guest that can never wake ends', () => {
    const sleeper = new FakeGuest(1, Infinity, 2_000_000), worker = new FakeGuest(1);
    const ended: Array<[number, string]> = [];
    const s = new RoundRobinScheduler([sleeper, worker], { hostCpus: 1 });
    s.run(10_000_000, (g, r) => ended.push([g, r]));
    expect(ended).toEqual([[0, 'halted']]);
    expect(sleeper.ran).toBe(2_000_000);
    expect(worker.ran).toBe(8_000_000);
  });

  it('the same configuration gives the same schedule', () => {
    const run = () => {
      const gs = [new FakeGuest(2, 700_000), new FakeGuest(1, 2_300_000), new FakeGuest(3)];
      new RoundRobinScheduler(gs, { hostCpus: 2, quantumNs: 1_700_000 }).run(20_000_000, () => {});
      return JSON.stringify(gs.map((g) => g.log));
    };
    expect(run()).toBe(run());
  });
});
