// Scheduler groups: the vCPUs of a host form a tree, as tasks form the cgroup tree under CFS group
// scheduling. The root holds groups; a group holds groups and guests; a guest is itself a group of
// its vCPU tasks (the entity a VMM thread group is under KVM). Each group has cgroup v2's knobs:
// `cpu.weight` (1..10000, default 100), `cpu.max` (a quota of host CPU time per period, enforced like
// CFS bandwidth control) and a guarantee (a reserved share in host CPUs, like a vSphere CPU
// reservation: served first whenever the group is runnable, from a budget refilled every period).
// This module only builds and checks the tree; the scheduler core (scheduler.ts) keeps the run-time
// state, the policies (rr.ts, fair.ts) their order.

/** cgroup v2 `cpu.max`: at most `quotaNs` of host CPU time per `periodNs` (quota > period: more than
 *  one host CPU's worth). */
export interface CpuMax { quotaNs: number; periodNs: number }

/** One node of the configuration tree. `children`: groups, or guest indices (a guest's vCPUs). */
export interface GroupSpec {
  name: string;
  /** cgroup v2 cpu.weight, 1..10000 (default 100). */
  weight?: number;
  cap?: CpuMax;
  /** Reserved host CPUs (0.5: half of one host CPU), served with priority. */
  guarantee?: number;
  children?: ReadonlyArray<GroupSpec | number>;
}

export const DEFAULT_WEIGHT = 100;
/** cgroup v2's default cpu.max period (100 ms); guarantees without a cap use it too. */
export const DEFAULT_PERIOD_NS = 100_000_000;

export interface SchedNode {
  readonly id: number;
  readonly name: string;
  readonly kind: 'root' | 'group' | 'guest';
  readonly parent: SchedNode | null;
  /** cgroup v2 cpu.weight. */
  readonly weight: number;
  /** The CFS load weight of that cpu.weight: weight * 1024 / 100 (the kernel's
   *  sched_weight_from_cgroup), so the default group weighs as a nice-0 task. */
  readonly loadWeight: number;
  readonly cap: CpuMax | null;
  readonly guarantee: number | null;
  readonly children: SchedNode[];
  /** kind 'guest': the guest's index; else -1. */
  readonly guest: number;
  /** This node and its ancestors below the root, nearest first (the path charges walk). */
  readonly path: SchedNode[];
  /** The period of its cap and reservation (DEFAULT_PERIOD_NS without a cap). */
  readonly periodNs: number;
}

export interface GroupTree {
  readonly root: SchedNode;
  /** Every node in tree order (parents before children): ids index this array. */
  readonly nodes: readonly SchedNode[];
  /** Each guest's node (the runqueue of its vCPUs). */
  readonly guestNodes: readonly SchedNode[];
}

/** Build the tree: `spec` lists the root's children; a guest listed nowhere gets a group of its own
 *  under the root (named after it) with the default weight. Throws one sentence per problem. */
export function buildGroupTree(spec: ReadonlyArray<GroupSpec | number> | undefined, guestNames: readonly string[], hostCpus: number): GroupTree {
  const nodes: SchedNode[] = [];
  const guestNodes: SchedNode[] = new Array(guestNames.length);
  const names = new Set<string>();
  const make = (name: string, kind: SchedNode['kind'], parent: SchedNode | null, o: { weight?: number; cap?: CpuMax | null; guarantee?: number | null; guest?: number }): SchedNode => {
    const weight = o.weight ?? DEFAULT_WEIGHT;
    const n: SchedNode = {
      id: nodes.length, name, kind, parent, weight, loadWeight: (weight * 1024) / 100, cap: o.cap ?? null, guarantee: o.guarantee ?? null,
      children: [], guest: o.guest ?? -1, path: [], periodNs: o.cap?.periodNs ?? DEFAULT_PERIOD_NS,
    };
    for (let p: SchedNode | null = n; p && p.kind !== 'root'; p = p.parent) n.path.push(p);
    nodes.push(n);
    parent?.children.push(n);
    return n;
  };
  const root = make('root', 'root', null, {});
  const guestNode = (parent: SchedNode, g: number, where: string) => {
    if (!(Number.isInteger(g) && g >= 0 && g < guestNames.length)) throw new Error(`sched: ${where}: guest ${JSON.stringify(g)} does not exist (guests 0 to ${guestNames.length - 1})`);
    if (guestNodes[g]) throw new Error(`sched: ${where}: guest ${guestNames[g]} is in two groups`);
    guestNodes[g] = make(guestNames[g], 'guest', parent, { guest: g });
  };
  const group = (parent: SchedNode, s: GroupSpec) => {
    const where = `group ${JSON.stringify(s.name)}`;
    if (typeof s.name !== 'string' || s.name.length === 0) throw new Error(`sched: a group needs a name (got ${JSON.stringify(s.name)})`);
    if (names.has(s.name)) throw new Error(`sched: ${where} is defined twice`);
    names.add(s.name);
    if (s.weight !== undefined && !(Number.isInteger(s.weight) && s.weight >= 1 && s.weight <= 10000)) throw new Error(`sched: ${where}: weight must be an integer from 1 to 10000 (cgroup v2 cpu.weight; got ${s.weight})`);
    if (s.cap !== undefined) {
      const { quotaNs, periodNs } = s.cap;
      if (!(Number.isInteger(quotaNs) && quotaNs >= 1)) throw new Error(`sched: ${where}: cap quota must be a positive whole number of ns (got ${quotaNs})`);
      if (!(Number.isInteger(periodNs) && periodNs >= 1)) throw new Error(`sched: ${where}: cap period must be a positive whole number of ns (got ${periodNs})`);
    }
    if (s.guarantee !== undefined) {
      if (!(Number.isFinite(s.guarantee) && s.guarantee > 0)) throw new Error(`sched: ${where}: guarantee must be a positive number of host CPUs (got ${s.guarantee})`);
      if (s.cap && s.guarantee > s.cap.quotaNs / s.cap.periodNs) throw new Error(`sched: ${where}: guarantee of ${s.guarantee} host CPUs is more than its cap of ${s.cap.quotaNs / s.cap.periodNs}`);
    }
    const n = make(s.name, 'group', parent, { weight: s.weight, cap: s.cap, guarantee: s.guarantee });
    for (const c of s.children ?? []) if (typeof c === 'number') guestNode(n, c, where); else group(n, c);
  };
  for (const c of spec ?? []) if (typeof c === 'number') guestNode(root, c, 'root'); else group(root, c);
  // The default: every guest a group of its own under the root, with weight 100.
  for (let g = 0; g < guestNames.length; g++) {
    if (guestNodes[g]) continue;
    let name = guestNames[g];
    while (names.has(name)) name = `${name}'`;
    names.add(name);
    guestNode(make(name, 'group', root, {}), g, 'root');
  }
  // Admission control for guarantees (as for vSphere reservations): what the root hands out fits
  // the host, what a group hands its children fits the group.
  const reserved = (n: SchedNode): number => n.children.reduce((s, c) => s + (c.guarantee ?? reserved(c)), 0);
  const top = reserved(root);
  if (top > hostCpus + 1e-9) throw new Error(`sched: guarantees add up to ${+top.toFixed(6)} host CPUs, more than the host's ${hostCpus}`);
  for (const n of nodes) {
    if (n.guarantee === null) continue;
    const inner = reserved(n);
    if (inner > n.guarantee + 1e-9) throw new Error(`sched: group ${JSON.stringify(n.name)}: its children's guarantees add up to ${+inner.toFixed(6)} host CPUs, more than its own ${n.guarantee}`);
  }
  return { root, nodes, guestNodes };
}
