// `hvlab walk`: build a guest address space and show one cold translation step by step — which
// table (guest or host dimension), level, gpa, hpa, entry, and whether the reference hit the
// data-cache model — ending with the count: 4 for a native 4 KiB walk, 24 for 2D 4K/4K, and
// (n+1)(m+1)-1 in general for n guest and m host levels.
import * as abi from '../../wasm/abi.ts';
import { PageWalkLab, WORKING_SET_GVA } from '../mmu/pagewalk-lab.ts';
import type { MmuMode } from '../machine/host.ts';
import type { PageSize } from '../hv/mm/nested-page-table.ts';

export interface WalkOptions { mmu: MmuMode; guestPage: PageSize; hostPage: PageSize; gva?: bigint; cacheBytes?: number; cacheWays?: number }

const TABLE_NAMES = ['', 'PT', 'PD', 'PDPT', 'PML4', 'PML5'];
const LEVELS: Record<PageSize, number> = { '4k': 4, '2m': 3, '1g': 2 };
/** The page a leaf at this level maps (4-level paging: a PT entry maps 4 KiB, a PD entry 2 MiB...). */
const LEAF_PAGE: Record<number, PageSize> = { 1: '4k', 2: '2m', 3: '1g' };

export interface WalkStep {
  /** A page-table reference (guest, host or shadow table), or an event of the shadow MMU. */
  dim: 'guest' | 'host' | 'shadow' | 'event';
  level: number;
  /** The table read, or the event: fault, shadow page, spte, write-protect. */
  table: string;
  gpa: string;
  hpa: string;
  entry: string;
  cache: 'hit' | 'miss' | null;
  /** One sentence in KVM's terms (--explain). */
  explain: string;
}

export interface WalkResult {
  mmu: MmuMode; guest_page: PageSize; host_page: PageSize | null;
  gva: string; gpa: string; hpa: string;
  /** References of the translating walk (under shadow: the last shadow walk, the one that hit). */
  refs: number; expected: number; steps: WalkStep[];
  /** Guest levels walked (n) and host levels per guest-physical address (m) in the translating walk. */
  guest_levels: number; host_levels: number;
  cache: { bytes: number; ways: number; line: number };
  /** Sentences that explain the count and the addresses (printed after the table). */
  notes: string[];
}

const hex = (v: bigint) => `0x${v.toString(16)}`;
const TRACE_EVENTS: Record<number, string> = {
  [abi.TRACE_SHADOW_FAULT]: 'fault', [abi.TRACE_SP_ALLOC]: 'shadow page', [abi.TRACE_SPTE_SET]: 'spte set',
  [abi.TRACE_WRITE_PROTECT]: 'write-protect',
};

function roleText(role: number): string {
  const acc = `${role & abi.SP_ROLE_ACC_U ? 'u' : 's'}${role & abi.SP_ROLE_ACC_W ? 'w' : 'r'}${role & abi.SP_ROLE_ACC_NX ? '' : 'x'}`;
  return `level=${role & abi.SP_ROLE_LEVEL} direct=${role & abi.SP_ROLE_DIRECT ? 1 : 0} access=${acc} cr0_wp=${role & abi.SP_ROLE_CR0_WP ? 1 : 0} efer_nx=${role & abi.SP_ROLE_EFER_NX ? 1 : 0}`;
}

/** One sentence per step, in KVM's terms. */
function explainStep(dim: number, level: number, gpa: bigint, hpa: bigint, entry: bigint, faulting: boolean): string {
  const present = (entry & 1n) !== 0n;
  const leaf = level === 1 || (entry & 0x80n) !== 0n;
  switch (dim) {
    case abi.DIM_GUEST:
      return faulting
        ? `FNAME(walk_addr), KVM's software walk of the guest's tables, reads the level-${level} gpte (${TABLE_NAMES[level]}) at gpa ${hex(gpa)} and sets its accessed bit.`
        : `The hardware reads the guest's level-${level} entry (${TABLE_NAMES[level]}) at gpa ${hex(gpa)}.`;
    case abi.DIM_HOST:
      return `The hardware translates gpa ${hex(gpa)} through the host's nested (EPT) table: level ${level}.`;
    case abi.DIM_SHADOW:
      if (!present) return `The hardware walks the shadow table (gva -> hpa) from the root for this CR3: the level-${level} spte is not present, so the access page-faults and exits to KVM.`;
      if (!leaf) return `The hardware reads the level-${level} spte: a link to the next shadow page (hpa ${hex(entry & 0x000ffffffffff000n)}).`;
      return `The level-${level} spte is the leaf: it maps the gva straight to hpa ${hex(entry & 0x000ffffffffff000n)}, with the rights of the whole guest walk${entry & 2n ? '' : ' (read-only until the guest writes: dirty-bit emulation)'}.`;
    case abi.TRACE_SHADOW_FAULT:
      return `KVM's page-fault handler, FNAME(page_fault), takes the exit for gva ${hex(gpa)} and walks the guest's tables in software to find what the guest meant.`;
    case abi.TRACE_SP_ALLOC:
      return Number(entry) & abi.SP_ROLE_DIRECT
        ? `kvm_mmu_get_page creates a direct shadow page (${roleText(Number(entry))}) for the guest large page at gfn ${hex(gpa >> 12n)}, which the host does not back with one 2 MiB run, so it is split.`
        : `kvm_mmu_get_page creates a shadow page for the guest table at gfn ${hex(gpa >> 12n)} (role ${roleText(Number(entry))}) in frame ${hex(hpa)}.`;
    case abi.TRACE_WRITE_PROTECT:
      return `account_shadowed: gfn ${hex(gpa >> 12n)} is now a shadowed guest page table, so rmap_write_protect makes its ${entry} writable spte(s) read-only; a guest write to it will trap and be emulated.`;
    case abi.TRACE_SPTE_SET:
      return leaf
        ? `mmu_set_spte installs the level-${level} leaf spte at hpa ${hex(hpa)}: gva -> hpa ${hex(entry & 0x000ffffffffff000n)}${entry & 2n ? ', writable (the gpte is dirty)' : ', read-only (the gpte is clean, or the page is a guest page table)'}.`
        : `FNAME(fetch) links the level-${level} spte at hpa ${hex(hpa)} to the shadow page below (link_shadow_page).`;
    default:
      return '';
  }
}

export function walk(o: WalkOptions): WalkResult {
  const ws = 0x10000;
  const lab = new PageWalkLab({ mmu: o.mmu, guestPage: o.guestPage, hostPage: o.hostPage, workingSet: ws });
  const gva = o.gva ?? WORKING_SET_GVA + 0x1234n;
  const cacheBytes = o.cacheBytes ?? 256 << 10, cacheWays = o.cacheWays ?? 4;
  lab.host.configureCacheModel(cacheBytes, cacheWays);
  lab.host.core.traceWalks(1);
  const r = lab.vcpu.probeWalk(gva, 'read', 0);
  lab.host.core.traceWalks(0);
  if (!r.ok) {
    throw new Error(r.vector === 14
      ? `gva ${hex(gva)} is not mapped (page fault, error code 0x${r.error.toString(16)}); the working set is ${hex(WORKING_SET_GVA)}-${hex(WORKING_SET_GVA + BigInt(ws) - 1n)}`
      : `the walk of ${hex(gva)} ended with vector ${r.vector} (qualification 0x${r.error.toString(16)})`);
  }
  let faulting = false;
  const steps: WalkStep[] = lab.host.walkTrace().map((s) => {
    if (s.dim === abi.TRACE_SHADOW_FAULT) faulting = true;
    if (s.dim === abi.DIM_SHADOW && faulting) faulting = false; // the access retried
    const event = TRACE_EVENTS[s.dim];
    return {
      dim: event ? 'event' : s.dim === abi.DIM_HOST ? 'host' : s.dim === abi.DIM_SHADOW ? 'shadow' : 'guest',
      level: s.level,
      table: event ?? (s.dim === abi.DIM_HOST ? 'EPT ' : s.dim === abi.DIM_SHADOW ? 'shadow ' : '') + TABLE_NAMES[s.level],
      gpa: hex(s.gpa), hpa: hex(s.hpa), entry: `0x${s.entry.toString(16).padStart(16, '0')}`,
      cache: s.cacheMiss === null ? null : s.cacheMiss ? 'miss' : 'hit',
      explain: explainStep(s.dim, s.level, s.gpa, s.hpa, s.entry, faulting),
    };
  });
  const n = LEVELS[o.guestPage], m = o.mmu === 'ept' ? LEVELS[o.hostPage] : 0;
  let refs = steps.length, expected = (n + 1) * (m + 1) - 1;
  // Under direct there is no host dimension: guest-physical addresses are offsets into the host's
  // memory, so the hpa is the gpa (the core's probe reports the linear address there).
  const hpa = o.mmu === 'direct' ? r.gpa : r.hpa;
  const guestSteps = steps.filter((s) => s.dim === 'guest');
  const guestLevels = guestSteps.length;
  const hostLevels = o.mmu === 'ept' ? steps.filter((s) => s.dim === 'host').length / (guestLevels + 1) : 0;
  const notes: string[] = [];
  if (o.mmu === 'shadow') {
    // The references of the shadow walk that hit, after the handler built it: one dimension, with a
    // 2 MiB spte only when the guest page is large and the host backs it with a 2 MiB run.
    const lastEvent = steps.map((s) => s.dim).lastIndexOf('event');
    refs = steps.slice(lastEvent + 1).filter((s) => s.dim === 'shadow').length;
    expected = o.guestPage !== '4k' && o.hostPage !== '4k' ? 3 : 4;
    notes.push(`Under shadow paging the hardware walks one table, KVM's shadow table (gva -> hpa), so a walk costs at most 4 references; the price is paid in exits: the first access faulted to the hypervisor, which walked the guest's ${guestLevels} levels in software and built the shadow entries (the steps before the last walk).`);
  } else if (o.mmu === 'ept') {
    notes.push(`${refs} = ${guestLevels} guest entries + (${guestLevels} + 1) x ${hostLevels} EPT entries: each guest table and, last, the data itself sit at a guest-physical address the hardware must first translate with its own ${hostLevels}-level EPT walk; (n+1)(m+1)-1 with n = ${guestLevels} guest and m = ${hostLevels} host levels.`);
  } else {
    notes.push(`${refs} references in one dimension, the guest's own tables: under --mmu direct there is no host dimension (guest-physical addresses are offsets into the host's memory, so hpa = gpa).`);
  }
  const leafPage = guestSteps.length ? LEAF_PAGE[guestSteps[guestSteps.length - 1].level] : o.guestPage;
  if (leafPage && leafPage !== o.guestPage) {
    const nowExpected = o.mmu === 'shadow' ? expected : (guestLevels + 1) * (m + 1) - 1;
    notes.push(`The guest maps ${hex(gva)} with a ${leafPage} page, not the ${o.guestPage} pages of the working set (${hex(WORKING_SET_GVA)}-${hex(WORKING_SET_GVA + BigInt(ws) - 1n)}; the lab maps its program in the low 2 MiB with one large page), so the guest walk ends after ${guestLevels} levels instead of ${n}${o.mmu === 'shadow' ? '' : `: ${nowExpected} references, not ${expected}`}.`);
    if (o.mmu !== 'shadow') expected = nowExpected;
  }
  if (o.mmu !== 'direct' && r.gpa === r.hpa) {
    notes.push('gpa = hpa here because this one-guest host backs guest RAM with host frames at the same addresses (the leaf EPT entry holds the same frame); the EPT tables themselves live in host frames above guest RAM (their hpa column), and with many guests (hvlab host) the two differ.');
  }
  return {
    mmu: o.mmu, guest_page: o.guestPage, host_page: o.mmu === 'direct' ? null : o.hostPage,
    gva: hex(gva), gpa: hex(r.gpa), hpa: hex(hpa),
    refs, expected, steps, guest_levels: guestLevels, host_levels: hostLevels,
    cache: { bytes: cacheBytes, ways: cacheWays, line: 64 },
    notes,
  };
}

export function formatWalk(w: WalkResult, explain = false): string {
  const lines = [`cold walk of gva ${w.gva} (${w.mmu}${w.mmu !== 'direct' ? `, guest ${w.guest_page} pages on host ${w.host_page} pages` : `, guest ${w.guest_page} pages`})`];
  lines.push('  #  dimension  table          gpa                 hpa of entry        entry               cache');
  w.steps.forEach((s, i) => {
    const what = s.dim.padEnd(9);
    lines.push(`${String(i + 1).padStart(3)}  ${what}  ${s.table.padEnd(13)}  ${s.gpa.padEnd(18)}  ${s.hpa.padEnd(18)}  ${s.entry}  ${s.cache ?? '-'}`);
    if (explain && s.explain) lines.push(`       ${s.explain}`);
  });
  lines.push(`gva ${w.gva} -> gpa ${w.gpa} -> hpa ${w.hpa}`);
  if (w.mmu === 'shadow') {
    lines.push(`${w.refs} shadow-table references in the walk that translated (expected ${w.expected}: one dimension); the steps before it built the shadow table; cache model ${w.cache.bytes >> 10} KiB, ${w.cache.ways}-way, ${w.cache.line}-byte lines, cold`);
  } else {
    lines.push(`${w.refs} references (expected (n+1)(m+1)-1 = ${w.expected}); cache model ${w.cache.bytes >> 10} KiB, ${w.cache.ways}-way, ${w.cache.line}-byte lines, cold`);
  }
  for (const note of w.notes) lines.push(note);
  return lines.join('\n');
}
