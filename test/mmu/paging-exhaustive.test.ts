// hvlab's guest page walker against the reference model of test/mmu/paging-reference.ts (written from
// Intel SDM Vol. 3A, 4.3-4.8 and AMD APM Vol. 2, ch. 5), exhaustively over the entry bits that decide a
// walk's outcome: at every level P, R/W, U/S, XD (where it exists), a reserved bit, and the PS variants
// of large pages; times the access (read, write, fetch), CPL 0/3, implicit supervisor accesses, CR0.WP,
// EFER.NXE, CR4.SMEP, CR4.SMAP, RFLAGS.AC and CR4.PSE (not for 4-level 4 KiB). Each probe starts cold: the
// entries are rewritten whenever a probe changed them. Mismatches are collected by class, not stopped at.
import { describe, it, expect, beforeAll } from 'vitest';
import { Host, type Vcpu, type WalkProbe } from '../../emu/machine/host.ts';
import * as abi from '../../wasm/abi.ts';
import {
  referenceTranslate, walkTables, completeAccess, loadPaePdptes, bitRange, PFEC, VEC_GP, VEC_PF,
  CR0_PG, CR0_WP, CR4_PAE, CR4_PSE, CR4_SMAP, CR4_SMEP, EFER_LMA, EFER_LME, EFER_NXE,
  PTE_A, PTE_D, PTE_P, PTE_PS, PTE_RW, PTE_US, PTE_XD,
  type LevelName, type PagingAccess, type PagingModeName, type PagingRegs, type TableWalk, type WalkResult,
} from './paging-reference.ts';

// ---------------------------------------------------------------------------------------------------
// Entry states: what one level's entry holds in a combination.

interface EntryState {
  label: string;
  /** Flag and reserved bits, OR'ed into the level's address field. */
  bits: bigint;
}

const bit = (n: number): bigint => 1n << BigInt(n);

/** P = 1 with every combination of R/W, U/S (and XD where the entry has it), plus `extra` (PS, say). */
function permissionStates(withXD: boolean, extra = 0n, tag = ''): EntryState[] {
  const states: EntryState[] = [];
  for (const xd of withXD ? [false, true] : [false]) {
    for (const us of [false, true]) {
      for (const rw of [false, true]) {
        states.push({
          label: `${tag}${rw ? 'W' : 'R'}${us ? 'U' : 'S'}${xd ? 'X' : ''}`,
          bits: PTE_P | (rw ? PTE_RW : 0n) | (us ? PTE_US : 0n) | (xd ? PTE_XD : 0n) | extra,
        });
      }
    }
  }
  return states;
}

/**
 * A level's states: not present (with every other bit that matters set, since a non-present entry's
 * other bits, reserved ones included, must be ignored: SDM 4.7), the permission states, and one state
 * per reserved bit (P = R/W = U/S = 1 plus that bit).
 */
function levelStates(o: { withXD: boolean; extra?: bigint; reserved: number[] }): EntryState[] {
  const extra = o.extra ?? 0n;
  const everything = PTE_RW | PTE_US | (o.withXD ? PTE_XD : 0n) | extra | bit(o.reserved[0] ?? 1);
  return [
    { label: 'np', bits: everything },
    ...permissionStates(o.withXD, extra),
    ...o.reserved.map((n) => ({ label: `rsv${n}`, bits: PTE_P | PTE_RW | PTE_US | extra | bit(n) })),
  ];
}

// ---------------------------------------------------------------------------------------------------
// Scenarios: one paging mode and page size, its tables in guest RAM, and the states of every level.

interface LevelSpec {
  name: LevelName;
  /** Guest-physical addresses holding this entry (32-bit paging keeps a copy of the PTE in a second
   *  page table, the one a PDE with PS ignored and bit 21 set points to). */
  copies: number[];
  size: 4 | 8;
  /** Address field: the next table's address, or the page frame. */
  address: bigint;
  states: EntryState[];
}

interface Scenario {
  name: string;
  mode: Exclude<PagingModeName, 'none'>;
  cr3: bigint;
  gva: bigint;
  levels: LevelSpec[];
  /** CR4.PSE values to try (it only matters to 32-bit paging; PAE and 4-level paging ignore it). */
  pse: boolean[];
}

const CR3_PWT_PCD = 0x18n; // CR3 bits 3 and 4: flags, not address bits in any mode

/** Address of the entry `gva` selects in a table whose index is linear-address bits [shift + indexBits - 1 : shift]. */
function entryAddress(table: number, gva: bigint, shift: number, indexBits: number, size: number): number {
  return table + Number((gva >> BigInt(shift)) & ((1n << BigInt(indexBits)) - 1n)) * size;
}

// 4-level: a kernel-half address (bit 47 = 1, sign-extended), distinct indices at every level.
const GVA_4LEVEL = BigInt.asUintN(64, BigInt.asIntN(48, (0x1a5n << 39n) | (0x0c3n << 30n) | (0x15en << 21n) | (0x0f7n << 12n) | 0xabcn));
const PML4 = 0x10000, PDPT = 0x11000, PD = 0x12000, PT = 0x13000;
// Page frames at the top of the 40-bit physical space (they need not be RAM: the walk only computes them).
const FRAME_4K = 0x87_6543_2000n, FRAME_2M = 0x87_6540_0000n, FRAME_1G = 0x87_4000_0000n;

function fourLevel(name: string, leaf: 'PTE' | 'PDE' | 'PDPTE', extraStates: Partial<Record<LevelName, EntryState[]>> = {}): Scenario {
  const at = (table: number, shift: number) => [entryAddress(table, GVA_4LEVEL, shift, 9, 8)];
  const nonLeaf = (rsv: number) => levelStates({ withXD: true, reserved: [rsv] });
  const largeLeaf = (rsv: number[]) => levelStates({ withXD: true, extra: PTE_PS, reserved: rsv });
  const levels: LevelSpec[] = [
    // PML4E: PS (bit 7) is reserved (SDM 4.5.4, Table 4-15).
    { name: 'PML4E', copies: at(PML4, 39), size: 8, address: BigInt(PDPT), states: nonLeaf(7) },
    leaf === 'PDPTE'
      // 1 GiB page: bits 29:13 reserved (both ends tried), and bit 40 (MAXPHYADDR).
      ? { name: 'PDPTE', copies: at(PDPT, 30), size: 8, address: FRAME_1G, states: largeLeaf([13, 29, 40]) }
      : { name: 'PDPTE', copies: at(PDPT, 30), size: 8, address: BigInt(PD), states: nonLeaf(51) },
  ];
  if (leaf !== 'PDPTE') {
    levels.push(leaf === 'PDE'
      // 2 MiB page: bits 20:13 reserved (both ends), and bit 51.
      ? { name: 'PDE', copies: at(PD, 21), size: 8, address: FRAME_2M, states: largeLeaf([13, 20, 51]) }
      : { name: 'PDE', copies: at(PD, 21), size: 8, address: BigInt(PT), states: nonLeaf(40) });
  }
  if (leaf === 'PTE') levels.push({ name: 'PTE', copies: at(PT, 12), size: 8, address: FRAME_4K, states: nonLeaf(45) });
  for (const l of levels) if (extraStates[l.name]) l.states = extraStates[l.name]!;
  // CR4.PSE is ignored by 4-level paging (4.5): toggled where that is cheap, not over the 10^4 tables of 4 KiB pages.
  return { name, mode: '4-level', cr3: BigInt(PML4) | CR3_PWT_PCD, gva: GVA_4LEVEL, levels, pse: leaf === 'PTE' ? [false] : [false, true] };
}

// PAE: the 32-byte page-directory-pointer table need not be page-aligned (CR3 bits 31:5).
const GVA_PAE = (2n << 30n) | (0x15en << 21n) | (0x0f7n << 12n) | 0xabcn;
const PAE_PDPT = 0x20020, PAE_PD = 0x21000, PAE_PT = 0x22000;

/** PAE PDPTE states: not present (other bits clear: 4.4.1 lets a processor check reserved bits of a
 *  non-present PDPTE), present, and each reserved bit: 2:1 (where R/W and U/S would be), 8:5 (A, D, PS, G
 *  positions), 63 (XD position, reserved even with NXE = 1) and 40 (SDM Table 4-8). */
const PAE_PDPTE_STATES: EntryState[] = [
  { label: 'np', bits: bit(9) },
  { label: 'p', bits: PTE_P },
  ...[1, 2, 5, 6, 7, 8, 63, 40].map((n) => ({ label: `rsv${n}`, bits: PTE_P | bit(n) })),
];

function pae(name: string, leaf: 'PTE' | 'PDE', extraStates: Partial<Record<LevelName, EntryState[]>> = {}): Scenario {
  const levels: LevelSpec[] = [
    { name: 'PDPTE', copies: [entryAddress(PAE_PDPT, GVA_PAE, 30, 2, 8)], size: 8, address: BigInt(PAE_PD), states: PAE_PDPTE_STATES },
    leaf === 'PDE'
      ? { name: 'PDE', copies: [entryAddress(PAE_PD, GVA_PAE, 21, 9, 8)], size: 8, address: FRAME_2M,
        states: levelStates({ withXD: true, extra: PTE_PS, reserved: [13, 20, 40, 58] }) }
      // PAE reserves bits 62:M of PDEs and PTEs (not only 51:M as 4-level paging does): bits 62 and 52.
      : { name: 'PDE', copies: [entryAddress(PAE_PD, GVA_PAE, 21, 9, 8)], size: 8, address: BigInt(PAE_PT),
        states: levelStates({ withXD: true, reserved: [62] }) },
  ];
  if (leaf === 'PTE') {
    levels.push({ name: 'PTE', copies: [entryAddress(PAE_PT, GVA_PAE, 12, 9, 8)], size: 8, address: FRAME_4K,
      states: levelStates({ withXD: true, reserved: [52] }) });
  }
  for (const l of levels) if (extraStates[l.name]) l.states = extraStates[l.name]!;
  return { name, mode: 'PAE', cr3: BigInt(PAE_PDPT) | CR3_PWT_PCD, gva: GVA_PAE, levels, pse: [false, true] };
}

// 32-bit: one PDE address serves as a page-table address (PS = 0, or CR4.PSE = 0) and as a 4 MiB frame
// (PS = 1 with CR4.PSE = 1): bits 31:22 = 0x003, and bits 20:13 = 0xA5 are PSE-36 address bits 39:32.
const GVA_32 = (0x2a5n << 22n) | (0x1c3n << 12n) | 0xabcn;
const PD32 = 0x30000;
const PT32 = 0x00c00000 | (0xa5 << 13); // 0xD4A000
const PT32_BIT21 = PT32 | (1 << 21); // where a PDE with bit 21 set points when PS is ignored
const FRAME_32_4K = 0x7654_3000n;

function thirtyTwoBit(name: string, extraStates: Partial<Record<LevelName, EntryState[]>> = {}): Scenario {
  const pde = entryAddress(PD32, GVA_32, 22, 10, 4);
  const pteIndex = (t: number) => entryAddress(t, GVA_32, 12, 10, 4);
  const levels: LevelSpec[] = [
    { name: 'PDE', copies: [pde], size: 4, address: BigInt(PT32), states: [
      { label: 'np', bits: PTE_RW | PTE_US | PTE_PS | bit(21) },
      ...permissionStates(false),
      ...permissionStates(false, PTE_PS, 'ps:'),
      // 4 MiB page with bit 21 set: reserved with PSE-36 and MAXPHYADDR = 40 (bits 21:(M-19)).
      { label: 'ps:rsv21', bits: PTE_P | PTE_RW | PTE_US | PTE_PS | bit(21) },
    ] },
    { name: 'PTE', copies: [pteIndex(PT32), pteIndex(PT32_BIT21)], size: 4, address: FRAME_32_4K, states: [
      { label: 'np', bits: PTE_RW | PTE_US },
      ...permissionStates(false),
    ] },
  ];
  for (const l of levels) if (extraStates[l.name]) l.states = extraStates[l.name]!;
  return { name, mode: '32-bit', cr3: BigInt(PD32) | CR3_PWT_PCD, gva: GVA_32, levels, pse: [false, true] };
}

// Bits every walker must ignore: AVL 11:9; bit 6 of an entry that references a table; bits 62:52 of
// 4-level entries (protection keys off); bit 8 of a 32-bit PDE that references a page table.
const AVL = bitRange(11, 9);
const ignoredState = (bits: bigint): EntryState[] => [{ label: `ign:${bits.toString(16)}`, bits: PTE_P | PTE_RW | PTE_US | bits }];

const SCENARIOS: Scenario[] = [
  thirtyTwoBit('32-bit paging, 4 KiB and 4 MiB (PSE-36) pages'),
  pae('PAE paging, 4 KiB pages', 'PTE'),
  pae('PAE paging, 2 MiB pages', 'PDE'),
  fourLevel('4-level paging, 4 KiB pages', 'PTE'),
  fourLevel('4-level paging, 2 MiB pages', 'PDE'),
  fourLevel('4-level paging, 1 GiB pages', 'PDPTE'),
  thirtyTwoBit('32-bit paging, ignored bits set', { PDE: ignoredState(AVL | PTE_D | bit(8)), PTE: ignoredState(AVL) }),
  pae('PAE paging, ignored bits set', 'PTE', {
    PDPTE: [{ label: 'ign:avl', bits: PTE_P | AVL }], PDE: ignoredState(AVL | PTE_D), PTE: ignoredState(AVL) }),
  fourLevel('4-level paging, ignored bits set', 'PTE', {
    PML4E: ignoredState(AVL | PTE_D | bitRange(62, 52)), PDPTE: ignoredState(AVL | PTE_D | bitRange(62, 52)),
    PDE: ignoredState(AVL | PTE_D | bitRange(62, 52)), PTE: ignoredState(AVL | bitRange(62, 52)) }),
];

// ---------------------------------------------------------------------------------------------------
// Register and access combinations.

interface Probe {
  regs: PagingRegs;
  /** The walk itself depends only on EFER.NXE and CR4.PSE among the registers that vary: probes that
   *  share them share one model walk per table combination. */
  walkKey: number;
  rflags: bigint;
  access: PagingAccess;
  cpl: number;
  implicitSupervisor: boolean;
}

const CR0_PE_ET = 0x11n;
const RFLAGS_AC = 1n << 18n;

function probesFor(s: Scenario): Probe[] {
  const out: Probe[] = [];
  const bools = [false, true];
  for (const access of ['read', 'write', 'fetch'] as const) {
    for (const cpl of [0, 3]) {
      // Implicit supervisor-mode accesses (GDT, IDT, TSS...) are data accesses, at any CPL.
      for (const implicitSupervisor of access === 'fetch' ? [false] : bools) {
        for (const wp of bools) for (const nxe of bools) for (const smep of bools) for (const smap of bools)
          for (const ac of bools) for (const pse of s.pse) {
            const regs: PagingRegs = {
              cr0: CR0_PE_ET | CR0_PG | (wp ? CR0_WP : 0n),
              cr3: s.cr3,
              cr4: (s.mode === '32-bit' ? 0n : CR4_PAE) | (pse ? CR4_PSE : 0n) | (smep ? CR4_SMEP : 0n) | (smap ? CR4_SMAP : 0n),
              efer: (s.mode === '4-level' ? EFER_LME | EFER_LMA : 0n) | (nxe ? EFER_NXE : 0n),
              rflagsAC: ac,
            };
            out.push({ regs, walkKey: (nxe ? 1 : 0) | (pse ? 2 : 0), rflags: 0x2n | (ac ? RFLAGS_AC : 0n), access, cpl, implicitSupervisor });
          }
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Guest memory: the page tables are written straight into guest RAM through a DataView (no instruction
// runs in this test, so the decoded-instruction cache that writeGuest invalidates plays no part), and
// mirrored in a Map the model reads, so that hvlab's A/D writes never feed the model.

/** One copy of one level's entry in guest RAM, with the value written for the current combination
 *  (also as two u32 halves, so that "did the probe change it?" costs no BigInt). */
interface Slot {
  level: number;
  gpa: number;
  size: 4 | 8;
  value: bigint;
  lo: number;
  hi: number;
}

class Tables {
  private readonly ram: DataView;
  readonly mirror = new Map<bigint, bigint>();
  constructor(host: Host) {
    this.ram = new DataView(host.memory.buffer, abi.HOST_POOL_BASE, host.ramBytes);
  }
  write(slot: Slot, value: bigint): void {
    slot.value = value;
    slot.lo = Number(value & 0xffffffffn);
    slot.hi = Number(value >> 32n);
    this.ram.setUint32(slot.gpa, slot.lo, true);
    if (slot.size === 8) this.ram.setUint32(slot.gpa + 4, slot.hi, true);
    this.mirror.set(BigInt(slot.gpa), value);
  }
  /** An entry outside the combinations (the PAE PDPTE that maps the loader program, say). */
  writeFixed(gpa: number, value: bigint): void {
    this.write({ level: -1, gpa, size: 8, value, lo: 0, hi: 0 }, value);
  }
  unchanged(slot: Slot): boolean {
    return this.ram.getUint32(slot.gpa, true) === slot.lo && (slot.size === 4 || this.ram.getUint32(slot.gpa + 4, true) === slot.hi);
  }
  read(slot: Slot): bigint {
    return slot.size === 8 ? this.ram.getBigUint64(slot.gpa, true) : BigInt(this.ram.getUint32(slot.gpa, true));
  }
  readonly modelReader = (gpa: bigint): bigint => this.mirror.get(gpa) ?? 0n;
}

// ---------------------------------------------------------------------------------------------------
// Comparison and reporting.

type HvResult = WalkProbe;

function errorBits(e: number): string {
  const names = Object.entries(PFEC).filter(([, b]) => e & b).map(([n]) => n);
  return `0x${e.toString(16)} [${names.join(' ') || '-'}]`;
}

function describeModel(r: WalkResult): string {
  return r.ok ? `ok gpa=0x${r.gpa.toString(16)} (${r.pageSize / 1024} KiB page)` : `#PF error=${errorBits(r.error)} (${r.reason})`;
}

function describeHv(r: HvResult): string {
  return r.ok ? `ok gpa=0x${r.gpa.toString(16)} (${(1 << r.pageShift) / 1024} KiB page)` : `vector ${r.vector} error=${errorBits(r.error)}`;
}

function describeRegs(p: Probe): string {
  const r = p.regs;
  const f = (name: string, on: boolean) => `${name}=${on ? 1 : 0}`;
  return [f('CR0.WP', (r.cr0 & CR0_WP) !== 0n), f('CR4.PSE', (r.cr4 & CR4_PSE) !== 0n), f('CR4.SMEP', (r.cr4 & CR4_SMEP) !== 0n),
    f('CR4.SMAP', (r.cr4 & CR4_SMAP) !== 0n), f('EFER.NXE', (r.efer & EFER_NXE) !== 0n), f('RFLAGS.AC', r.rflagsAC)].join(' ') +
    ` (cr0=0x${r.cr0.toString(16)} cr3=0x${r.cr3.toString(16)} cr4=0x${r.cr4.toString(16)} efer=0x${r.efer.toString(16)})`;
}

function describeAccess(p: Probe): string {
  return `${p.access} at CPL ${p.cpl}${p.implicitSupervisor ? ' (implicit supervisor)' : ''}`;
}

/** How the probe's outcome differs, in terms that group one walker bug's many instances together. */
function mismatchClass(s: Scenario, model: WalkResult, hv: HvResult, adDiffers: string): string | undefined {
  if (model.ok && hv.ok) {
    if (model.gpa !== hv.gpa) return `${s.name}: wrong gpa (${model.pageSize / 1024} KiB page)`;
    if (model.pageSize !== 2 ** hv.pageShift) return `${s.name}: wrong page size (${model.pageSize / 1024} KiB page)`;
    return adDiffers ? `${s.name}: A/D after a successful access: ${adDiffers}` : undefined;
  }
  if (model.ok && !hv.ok) return `${s.name}: hvlab faults (vector ${hv.vector}, ${errorBits(hv.error)}) where the SDM allows it`;
  if (!model.ok && hv.ok) return `${s.name}: hvlab allows an access the SDM faults: ${model.reason.replace(/\(.*\)/, '')}`;
  if (!model.ok && !hv.ok) {
    if (hv.vector !== VEC_PF) return `${s.name}: vector ${hv.vector} instead of #PF (${model.reason})`;
    if (hv.error !== model.error) {
      const diff = hv.error ^ model.error;
      const names = Object.entries(PFEC).filter(([, b]) => diff & b)
        .map(([n, b]) => `${n} ${hv.error & b ? 'set' : 'clear'} (SDM: ${model.error & b ? 1 : 0})`);
      return `${s.name}: error code ${names.join(', ')} for "${model.reason}"`;
    }
    return adDiffers ? `${s.name}: entries changed by a faulting access: ${adDiffers}` : undefined;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------------
// The exhaustive run of one scenario.

interface RunStats {
  tables: number;
  probes: number;
  /** PAE: MOV to CR3 executions that loaded the PDPTE registers, and probes left out because the load
   *  was refused (#GP), so that no walk could happen. */
  loads: number;
  unreachable: number;
  mismatches: number;
  classes: Map<string, { count: number; example: string }>;
  ms: number;
}

function* product(levels: LevelSpec[]): Generator<EntryState[]> {
  const idx = levels.map(() => 0);
  for (;;) {
    yield levels.map((l, i) => l.states[idx[i]]);
    let i = levels.length - 1;
    while (i >= 0 && ++idx[i] === levels[i].states.length) idx[i--] = 0;
    if (i < 0) return;
  }
}

/**
 * PAE paging walks from PDPTE registers that only MOV to CR3 (or entering PAE paging) loads (SDM 4.4.1),
 * so the PAE scenarios load them the architectural way: a two-instruction program, `mov cr3, eax; hlt`,
 * runs in 32-bit protected mode with PAE paging, and a #GP handler that halts at its own address tells
 * a refused load (#GP(0): a present PDPTE with a reserved bit) from a successful one. The program's page
 * is mapped by PDPTE 0 of both the current registers and every loaded table (a 2 MiB page at 0).
 */
const LOADER = { CODE: 0x1000, GP_HANDLER: 0x1100, IDT: 0x2000, GDT: 0x3000, STACK_TOP: 0x8000 } as const;

class PdpteLoader {
  static readonly BOOT_PD = 0x40000;

  constructor(private readonly host: Host, private readonly v: Vcpu) {
    const { CODE, GP_HANDLER, IDT, GDT } = LOADER;
    host.writeGuest(CODE, [0x0f, 0x22, 0xd8, 0xf4]); // mov cr3, eax; hlt
    host.writeGuest(GP_HANDLER, [0xf4]); // hlt
    const le = (x: bigint, n: number) => Array.from({ length: n }, (_, i) => Number((x >> BigInt(8 * i)) & 0xffn));
    // GDT: null, flat 32-bit code (selector 08h), flat data (10h).
    host.writeGuest(GDT, [...le(0n, 8), ...le(0x00cf9b000000ffffn, 8), ...le(0x00cf93000000ffffn, 8)]);
    // IDT vector 13: 32-bit interrupt gate, DPL 0, to 08h:GP_HANDLER.
    const gate = BigInt(GP_HANDLER & 0xffff) | (0x08n << 16n) | (0x8e00n << 32n) | (BigInt(GP_HANDLER >>> 16) << 48n);
    host.writeGuest(IDT + 13 * 8, le(gate, 8));
    host.writeGuest(PdpteLoader.BOOT_PD, le(0x83n, 8)); // PDE 0: a 2 MiB page at 0, P | R/W | PS
  }

  /** Execute MOV to CR3 with `cr3`; the vector and error code of the fault it raised, or ok. */
  load(cr3: bigint): { ok: true } | { ok: false; vector: number; error: number } {
    const { v } = this;
    const { CODE, GP_HANDLER, IDT, GDT, STACK_TOP } = LOADER;
    v.cr0 = CR0_PE_ET | CR0_PG;
    v.setReg64(abi.ST_CR4, CR4_PAE);
    v.setReg64(abi.ST_EFER, 0n);
    v.rflags = 0x2n;
    for (let i = 0; i < 4; i++) v.setReg64(abi.ST_PDPTE + 8 * i, i === 0 ? BigInt(PdpteLoader.BOOT_PD) | PTE_P : 0n);
    v.setSegment(abi.SEG_CS, { base: 0n, limit: 0xffffffff, selector: 0x08, attr: 0xc09b });
    for (const seg of [abi.SEG_SS, abi.SEG_DS, abi.SEG_ES]) v.setSegment(seg, { base: 0n, limit: 0xffffffff, selector: 0x10, attr: 0xc093 });
    v.setDescriptorTable('gdt', BigInt(GDT), 0x17);
    v.setDescriptorTable('idt', BigInt(IDT), 0x7ff);
    v.setReg(0, cr3);
    v.setReg(4, BigInt(STACK_TOP));
    v.rip = BigInt(CODE);
    const exit = v.run(16);
    if (exit === abi.EXIT_EXCEPTION) { const e = v.exit(); return { ok: false, vector: e.vector, error: e.errorCode }; }
    if (exit !== abi.EXIT_HLT) throw new Error(`PDPTE loader: exit ${exit} at 0x${v.rip.toString(16)}`);
    if (v.rip === BigInt(CODE + 4)) return { ok: true };
    if (v.rip === BigInt(GP_HANDLER + 1)) {
      // #GP pushed EFLAGS, CS, EIP and the error code on the (unchanged-privilege) stack.
      return { ok: false, vector: VEC_GP, error: new DataView(this.host.ram().buffer, this.host.ram().byteOffset).getUint32(STACK_TOP - 16, true) };
    }
    throw new Error(`PDPTE loader: halted at 0x${v.rip.toString(16)}`);
  }
}

/** Loads a probe's registers into the vCPU, writing only those that differ from the previous probe's. */
class RegisterLoader {
  private last: Probe | undefined;
  constructor(private readonly v: Vcpu) {}
  load(p: Probe): void {
    const was = this.last?.regs;
    if (was?.cr0 !== p.regs.cr0) this.v.cr0 = p.regs.cr0;
    if (was?.cr3 !== p.regs.cr3) this.v.setReg64(abi.ST_CR3, p.regs.cr3);
    if (was?.cr4 !== p.regs.cr4) this.v.setReg64(abi.ST_CR4, p.regs.cr4);
    if (was?.efer !== p.regs.efer) this.v.setReg64(abi.ST_EFER, p.regs.efer);
    if (this.last?.rflags !== p.rflags) this.v.rflags = p.rflags;
    this.last = p;
  }
  /** Something else changed the registers: write them all for the next probe. */
  forget(): void { this.last = undefined; }
}

/** What a probe did to the entries, where it differs from the SDM: `summary` names levels and flags
 *  only (it is part of the mismatch class), `detail` gives the values. Both '' when nothing differs. */
interface EntryChanges { summary: string; detail: string }

function flagNames(diff: bigint): string {
  const names = [[PTE_A, 'A'], [PTE_D, 'D']].filter(([b]) => diff & (b as bigint)).map(([, n]) => n);
  const other = diff & ~(PTE_A | PTE_D);
  return [...names, ...(other ? [`bits 0x${other.toString(16)}`] : [])].join('+');
}

/**
 * Accessed/dirty flags after a probe. After a successful access the entries must hold exactly what the
 * SDM says (4.8: A in every entry used, D in the leaf for a write). After a fault they are compared
 * loosely: whether A is set in entries used before the fault is not pinned down by the SDM (a processor
 * may set it in the upper levels it walked), so only A may change there; D never does (no write happened).
 */
function entryChanges(s: Scenario, tables: Tables, slots: Slot[], model: WalkResult, succeeded: boolean): EntryChanges {
  const summary: string[] = [];
  const detail: string[] = [];
  for (const slot of slots) {
    const name = s.levels[slot.level].name;
    const want = succeeded && model.ok ? model.setBits.find((u) => u.gpa === BigInt(slot.gpa))?.value ?? slot.value : slot.value;
    const now = tables.unchanged(slot) ? slot.value : tables.read(slot);
    const wrong = succeeded ? now ^ want : (now ^ slot.value) & ~PTE_A;
    if (wrong === 0n) continue;
    summary.push(succeeded ? `${name} ${flagNames(wrong)} ${now & wrong ? 'set' : 'clear'} (SDM: ${want & wrong ? 'set' : 'clear'})`
      : `${name} ${flagNames(wrong)} changed`);
    detail.push(`${name}@0x${slot.gpa.toString(16)} = 0x${now.toString(16)} (was 0x${slot.value.toString(16)}, SDM 0x${want.toString(16)})`);
  }
  return { summary: summary.join(', '), detail: detail.join('; ') };
}

function runScenario(host: Host, v: Vcpu, s: Scenario, pdpteLoader: PdpteLoader): RunStats {
  const started = performance.now();
  const tables = new Tables(host);
  const registers = new RegisterLoader(v);
  const probes = probesFor(s);
  const stats: RunStats = { tables: 0, probes: 0, loads: 0, unreachable: 0, mismatches: 0, classes: new Map(), ms: 0 };
  const record = (klass: string, detail: () => string) => {
    stats.mismatches++;
    const c = stats.classes.get(klass);
    if (c) c.count++;
    else stats.classes.set(klass, { count: 1, example: detail() });
  };
  const slots: Slot[] = s.levels.flatMap((l, level) => l.copies.map((gpa) => ({ level, gpa, size: l.size, value: -1n, lo: -1, hi: -1 })));
  const walks = new Map<number, TableWalk>();
  // PAE: PDPTE 0 maps the loader program; the probes' PDPTE registers come from executing MOV to CR3.
  if (s.mode === 'PAE') tables.writeFixed(Number(s.cr3 & ~0x1fn), BigInt(PdpteLoader.BOOT_PD) | PTE_P);
  let pdptesLoaded = true;

  for (const states of product(s.levels)) {
    stats.tables++;
    const entries = () => s.levels.map((l, i) => `${l.name}=${states[i].label}(0x${(l.address | states[i].bits).toString(16)})`).join(' ');
    let pdpteChanged = false;
    for (const slot of slots) {
      const value = s.levels[slot.level].address | states[slot.level].bits;
      if (slot.value !== value) { tables.write(slot, value); pdpteChanged ||= slot.level === 0; }
    }
    if (s.mode === 'PAE' && pdpteChanged) {
      stats.loads++;
      const want = loadPaePdptes(tables.modelReader, s.cr3);
      const got = pdpteLoader.load(s.cr3);
      registers.forget();
      pdptesLoaded = want.ok && got.ok;
      const describe = (r: typeof got) => (r.ok ? 'loaded' : `vector ${r.vector} error ${r.error}`);
      if (want.ok !== got.ok || (!want.ok && !got.ok && (want.vector !== got.vector || want.error !== got.error))) {
        record(`${s.name}: MOV to CR3 with PDPTE ${states[0].label}: hvlab ${describe(got)}, SDM ${want.ok ? 'loaded' : `#GP(0) (${want.reason})`}`,
          () => `[${s.name}] MOV to CR3 0x${s.cr3.toString(16)}, ${entries()}`);
      }
    }
    if (!pdptesLoaded) { // no walk can use a PDPTE that does not load (SDM 4.4.1)
      stats.unreachable += probes.length;
      continue;
    }
    walks.clear();
    for (const p of probes) {
      stats.probes++;
      registers.load(p);
      let walk = walks.get(p.walkKey);
      if (!walk) walks.set(p.walkKey, walk = walkTables(tables.modelReader, p.regs, s.gva));
      const model = completeAccess(walk, p.regs, p.access, p.cpl, p.implicitSupervisor);
      const hv = v.probeWalk(s.gva, p.access, p.cpl, p.implicitSupervisor);

      let changes: EntryChanges = { summary: '', detail: '' };
      if (model.ok || slots.some((slot) => !tables.unchanged(slot))) {
        changes = entryChanges(s, tables, slots, model, model.ok && hv.ok);
        for (const slot of slots) if (!tables.unchanged(slot)) tables.write(slot, slot.value); // the next probe starts cold
      }

      const klass = mismatchClass(s, model, hv, changes.summary);
      if (klass === undefined) continue;
      record(klass, () => `[${s.name}] gva=0x${s.gva.toString(16)} ${entries()}\n    regs: ${describeRegs(p)}\n` +
        `    access: ${describeAccess(p)}\n    SDM model: ${describeModel(model)}\n    hvlab:     ${describeHv(hv)}` +
        (changes.detail ? `\n    entries: ${changes.detail}` : ''));
    }
  }
  stats.ms = performance.now() - started;
  return stats;
}

function report(stats: RunStats): string {
  const lines = [`${stats.mismatches} of ${stats.probes} probes and ${stats.loads} PDPTE loads differ from the SDM model, in ${stats.classes.size} classes:`];
  for (const [klass, c] of stats.classes) lines.push(`  ${c.count} × ${klass}`);
  lines.push('Examples (the first of each class, at most 20):');
  [...stats.classes.values()].slice(0, 20).forEach((c) => lines.push(c.example));
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------------

describe('hvlab page walker, exhaustively against the SDM reference model', () => {
  let host: Host;
  let v: Vcpu;
  let pdpteLoader: PdpteLoader;
  beforeAll(() => {
    // HVLAB_TEST_MMU=shadow runs every probe through the shadow MMU instead (its walk, its fault
    // handler and A/D emulation against the same model, each probe from an empty shadow table):
    // several minutes, so not part of `npm test`.
    const mmu = process.env.HVLAB_TEST_MMU === 'shadow' ? 'shadow' : 'direct';
    host = new Host({ ramBytes: 16 << 20, mmu });
    v = host.vcpu(0);
    v.resetArchitectural();
    pdpteLoader = new PdpteLoader(host, v);
  });

  for (const s of SCENARIOS) {
    it(s.name, () => {
      const stats = runScenario(host, v, s, pdpteLoader);
      const perTable = probesFor(s).length;
      console.log(`${s.name}: ${stats.tables} table combinations × ${perTable} register/access combinations = ` +
        `${stats.probes} probes` + (s.mode === 'PAE' ? ` (+ ${stats.loads} MOV-to-CR3 PDPTE loads; ${stats.unreachable} ` +
        `probes left out behind a refused load)` : '') + ` in ${stats.ms.toFixed(0)} ms; ${stats.mismatches} mismatches`);
      expect(stats.mismatches, report(stats)).toBe(0);
    });
  }
});

// ---------------------------------------------------------------------------------------------------
// The model itself, on cases worked out by hand from the SDM (so that the model can be wrong too).

describe('the reference model, on hand-worked SDM cases', () => {
  const entries = new Map<bigint, bigint>();
  const mem = (gpa: bigint) => entries.get(gpa) ?? 0n;
  const regs = (o: Partial<PagingRegs>): PagingRegs => ({
    cr0: CR0_PE_ET | CR0_PG | CR0_WP, cr3: BigInt(PML4), cr4: CR4_PAE, efer: EFER_LME | EFER_LMA | EFER_NXE, rflagsAC: false, ...o,
  });
  const gva = 0x4020_1234n; // PML4 index 0, PDPT index 1, PD index 1, PT index 1
  const build4Level = (pte: bigint) => {
    entries.clear();
    entries.set(BigInt(PML4), BigInt(PDPT) | 0x7n);
    entries.set(BigInt(PDPT) + 8n, BigInt(PD) | 0x7n);
    entries.set(BigInt(PD) + 8n, BigInt(PT) | 0x7n);
    entries.set(BigInt(PT) + 8n, 0x5000n | pte);
  };

  it('user write to a read-only page: #PF P|W|U = 0x07; the same write from CPL 0 passes only with CR0.WP = 0', () => {
    build4Level(PTE_P | PTE_US);
    expect(referenceTranslate(mem, regs({}), gva, 'write', 3)).toMatchObject({ ok: false, error: 0x07 });
    expect(referenceTranslate(mem, regs({}), gva, 'write', 0)).toMatchObject({ ok: false, error: 0x03 });
    expect(referenceTranslate(mem, regs({ cr0: CR0_PE_ET | CR0_PG }), gva, 'write', 0)).toMatchObject({ ok: true, gpa: 0x5234n });
  });

  it('XD: a fetch with NXE = 1 faults P|I/D = 0x11; with NXE = 0 bit 63 is reserved: P|RSVD = 0x09 (no I/D)', () => {
    build4Level(PTE_P | PTE_RW | PTE_XD);
    expect(referenceTranslate(mem, regs({}), gva, 'fetch', 0)).toMatchObject({ ok: false, error: 0x11 });
    expect(referenceTranslate(mem, regs({ efer: EFER_LME | EFER_LMA }), gva, 'read', 0)).toMatchObject({ ok: false, error: 0x09 });
    expect(referenceTranslate(mem, regs({ efer: EFER_LME | EFER_LMA }), gva, 'fetch', 0)).toMatchObject({ ok: false, error: 0x09 });
  });

  it('SMAP: explicit supervisor read of a user page passes with AC = 1; an implicit one faults (U/S clear at CPL 3)', () => {
    build4Level(PTE_P | PTE_US);
    const smap = regs({ cr4: CR4_PAE | CR4_SMAP, rflagsAC: true });
    expect(referenceTranslate(mem, smap, gva, 'read', 0)).toMatchObject({ ok: true, gpa: 0x5234n });
    expect(referenceTranslate(mem, smap, gva, 'read', 3, true)).toMatchObject({ ok: false, error: 0x01 });
    expect(referenceTranslate(mem, smap, gva, 'write', 0, true)).toMatchObject({ ok: false, error: 0x03 });
  });

  it('SMEP: supervisor fetch from a user page faults P|I/D = 0x11 even with NXE = 0', () => {
    build4Level(PTE_P | PTE_US);
    expect(referenceTranslate(mem, regs({ cr4: CR4_PAE | CR4_SMEP, efer: EFER_LME | EFER_LMA }), gva, 'fetch', 0))
      .toMatchObject({ ok: false, error: 0x11 });
  });

  it('a not-present PTE with reserved bits set faults with P = 0 and no RSVD; I/D stays clear in 32-bit paging with NXE = 1', () => {
    build4Level(bit(45) | PTE_RW);
    expect(referenceTranslate(mem, regs({}), gva, 'write', 3)).toMatchObject({ ok: false, error: 0x06 });
    entries.clear();
    entries.set(0x30000n + 4n, 0x31000n | 0x7n); // PDE 1 -> page table at 0x31000; its PTE 0 not present
    const r32 = regs({ cr3: 0x30000n, cr4: 0n, efer: EFER_NXE });
    expect(referenceTranslate(mem, r32, 0x0040_0000n, 'fetch', 0)).toMatchObject({ ok: false, error: 0x00 });
  });

  it('PSE-36: a 4 MiB PDE takes physical bits 39:32 from its bits 20:13; bit 21 is reserved', () => {
    entries.clear();
    entries.set(0x30000n + 4n, 0x00c0_0000n | (0xa5n << 13n) | PTE_PS | 0x3n);
    const r = regs({ cr3: 0x30000n, cr4: CR4_PSE, efer: 0n });
    expect(referenceTranslate(mem, r, 0x0041_2345n, 'read', 0)).toMatchObject({ ok: true, gpa: 0xa5_00c1_2345n, pageSize: 4 << 20 });
    entries.set(0x30000n + 4n, 0x00e0_0000n | PTE_PS | 0x3n);
    expect(referenceTranslate(mem, r, 0x0041_2345n, 'read', 0)).toMatchObject({ ok: false, error: 0x09 });
  });

  it('PAE: PDPTE has no A flag; a write sets A in the PDE and A|D in the PTE; bits 2:1 of a PDPTE are reserved', () => {
    entries.clear();
    entries.set(0x20020n, 0x21000n | PTE_P);
    entries.set(0x21000n, 0x22000n | 0x7n);
    entries.set(0x22000n, 0x5000n | 0x7n);
    const r = regs({ cr3: 0x20020n, cr4: CR4_PAE, efer: 0n });
    expect(referenceTranslate(mem, r, 0x123n, 'write', 3)).toEqual(expect.objectContaining({
      ok: true, gpa: 0x5123n, setBits: [{ gpa: 0x21000n, size: 8, value: 0x22027n }, { gpa: 0x22000n, size: 8, value: 0x5067n }],
    }));
    entries.set(0x20020n, 0x21000n | PTE_P | PTE_RW); // cannot be loaded: MOV to CR3 raises #GP(0)
    expect(loadPaePdptes(mem, 0x20020n)).toMatchObject({ ok: false, vector: 13, error: 0 });
    expect(referenceTranslate(mem, r, 0x123n, 'read', 0)).toMatchObject({ ok: false, vector: 13, error: 0 });
    entries.set(0x20020n, 0x21000n | bit(1)); // not present: loads, and the walk faults with P = 0
    expect(loadPaePdptes(mem, 0x20020n)).toMatchObject({ ok: true });
    expect(referenceTranslate(mem, r, 0x123n, 'read', 0)).toMatchObject({ ok: false, vector: 14, error: 0x00 });
  });
});
