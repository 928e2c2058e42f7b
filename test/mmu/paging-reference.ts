// A reference model of x86 guest paging (gva -> gpa), written from the manuals and kept apart from
// hvlab's walker (wasm/mmu/paging.ts) so that the two can be compared. It follows Intel SDM Vol. 3A,
// chapter 4: 4.3 (32-bit paging), 4.4 (PAE paging), 4.5 (4-level paging), 4.6 (access rights), 4.7
// (page-fault exceptions), 4.8 (accessed and dirty flags). Where AMD (APM Vol. 2, ch. 5) differs, Intel
// is followed (AMD also reserves bit 8 of PML4Es and PDPTEs that reference tables; the tests leave it clear).
// It favours plain statements of the rules over speed. hvlab's CPU is taken to have MAXPHYADDR = 40
// and 1 GiB pages (CPUID 80000008h, 80000001h:EDX[26]), and PSE-36; protection keys, PCIDs, PAT/caching,
// global pages and 5-level paging play no part in permissions and are left out.

export type PagingAccess = 'read' | 'write' | 'fetch';

/** The control state paging reads. */
export interface PagingRegs {
  cr0: bigint;
  cr3: bigint;
  cr4: bigint;
  efer: bigint;
  rflagsAC: boolean;
}

/** Reads one paging-structure entry of `size` bytes at guest-physical `gpa`. */
export type EntryReader = (gpa: bigint, size: 4 | 8) => bigint;

/** One paging-structure entry as the walk read it. */
export interface WalkedEntry {
  level: LevelName;
  gpa: bigint;
  size: 4 | 8;
  value: bigint;
  /** The entry has an accessed flag (every entry but a PAE PDPTE). */
  hasAccessedFlag: boolean;
}

/** A write the processor makes to a paging-structure entry (setting A and D, SDM 4.8). */
export interface EntryUpdate {
  gpa: bigint;
  size: 4 | 8;
  value: bigint;
}

export interface Translation {
  ok: true;
  gpa: bigint;
  pageSize: number;
  /** Entries whose accessed/dirty flags the access sets, with their new values (only entries that change). */
  setBits: EntryUpdate[];
  walked: WalkedEntry[];
}

export interface WalkFault {
  ok: false;
  /** VEC_PF, or VEC_GP (error 0) for a PAE PDPTE with reserved bits, which no walk can use: see loadPaePdptes. */
  vector: number;
  error: number;
  /** Why, in words: "not present at PDE", "reserved bit 40 at PTE", "user access to a supervisor page"... */
  reason: string;
  walked: WalkedEntry[];
}

export type WalkResult = Translation | WalkFault;

export type PagingModeName = 'none' | '32-bit' | 'PAE' | '4-level';
export type LevelName = 'PML4E' | 'PDPTE' | 'PDE' | 'PTE';

export const VEC_GP = 13;
export const VEC_PF = 14;

/** Page-fault error code bits (SDM 4.7, Figure 4-12). */
export const PFEC = { P: 1 << 0, W: 1 << 1, U: 1 << 2, RSVD: 1 << 3, ID: 1 << 4 } as const;

/** Control-register and EFER bits paging depends on (SDM Vol. 3A 2.5, 2.2.1). */
export const CR0_WP = 1n << 16n;
export const CR0_PG = 1n << 31n;
export const CR4_PSE = 1n << 4n;
export const CR4_PAE = 1n << 5n;
export const CR4_SMEP = 1n << 20n;
export const CR4_SMAP = 1n << 21n;
export const EFER_LME = 1n << 8n;
export const EFER_LMA = 1n << 10n;
export const EFER_NXE = 1n << 11n;

/** Paging-structure entry flags (SDM 4.3, 4.4.2, 4.5.4). */
export const PTE_P = 1n << 0n;
export const PTE_RW = 1n << 1n;
export const PTE_US = 1n << 2n;
export const PTE_A = 1n << 5n;
export const PTE_D = 1n << 6n;
export const PTE_PS = 1n << 7n;
export const PTE_XD = 1n << 63n;

/** hvlab's physical-address width (CPUID 80000008h:EAX[7:0]). */
export const MAXPHYADDR = 40;

const KIB = 1024;
const MIB = 1024 * KIB;
const GIB = 1024 * MIB;

/** Bits hi..lo (inclusive) set. */
export function bitRange(hi: number, lo: number): bigint {
  return ((1n << BigInt(hi - lo + 1)) - 1n) << BigInt(lo);
}

function has(value: bigint, bit: bigint): boolean {
  return (value & bit) !== 0n;
}

/** SDM 4.1.1, Table 4-1: which paging mode CR0.PG, CR4.PAE and IA32_EFER.LMA select. */
export function pagingMode(regs: PagingRegs): PagingModeName {
  if (!has(regs.cr0, CR0_PG)) return 'none';
  if (!has(regs.cr4, CR4_PAE)) return '32-bit';
  return has(regs.efer, EFER_LMA) ? '4-level' : 'PAE';
}

/** What a walk needs to know about the control registers. */
interface WalkContext {
  nxe: boolean; // IA32_EFER.NXE (meaningless for 32-bit paging, whose entries have no XD bit)
  pse: boolean; // CR4.PSE (4 MiB pages; 32-bit paging only)
}

/** One level of a paging-structure hierarchy. */
interface Level {
  name: LevelName;
  /** Linear-address bits [indexShift + indexBits - 1 : indexShift] select the entry. */
  indexShift: bigint;
  indexMask: bigint;
  entryBytes: 4 | 8;
  /** PAE PDPTEs have no R/W, U/S, A or XD flags (SDM 4.4.1, Table 4-8): those bits are reserved there. */
  controlsRights: boolean;
  /** The entry's XD flag (bit 63) exists (PAE PDE/PTE, every 4-level entry). */
  hasXD: boolean;
  /** Bytes mapped when this entry maps a page, or 0 when it references the next table. */
  pageSize(entry: bigint, ctx: WalkContext): number;
  /** Reserved bits of a present entry; any of them set means no translation (#PF with RSVD). */
  reserved(entry: bigint, ctx: WalkContext): bigint;
  /** Physical address of the next table, or of the page when `pageSize` > 0. */
  frame(entry: bigint, pageSize: number): bigint;
}

function level(name: LevelName, indexShift: number, indexBits: number, entryBytes: 4 | 8,
  rest: Pick<Level, 'controlsRights' | 'hasXD' | 'pageSize' | 'reserved' | 'frame'>): Level {
  return { name, indexShift: BigInt(indexShift), indexMask: (1n << BigInt(indexBits)) - 1n, entryBytes, ...rest };
}

// Physical-address bits of 64-bit entries: M-1:12, or M-1:21 and M-1:30 for 2 MiB and 1 GiB pages.
const PHYS_MASK = { [4 * KIB]: bitRange(MAXPHYADDR - 1, 12), [2 * MIB]: bitRange(MAXPHYADDR - 1, 21), [GIB]: bitRange(MAXPHYADDR - 1, 30) };
const frame64 = (entry: bigint, pageSize: number): bigint => entry & PHYS_MASK[pageSize || 4 * KIB];

/** XD is reserved when IA32_EFER.NXE = 0 (SDM 4.4.2, 4.5.4: "If IA32_EFER.NXE = 0 and the P flag ... is 1, the XD flag (bit 63) is reserved"). */
const xdReserved = (ctx: WalkContext): bigint => (ctx.nxe ? 0n : PTE_XD);

/** Low bits of large-page entries between the PAT bit (12) and the address: 20:13 (2 MiB), 29:13 (1 GiB). */
const RESERVED_2M = bitRange(20, 13);
const RESERVED_1G = bitRange(29, 13);

// ---- 32-bit paging (SDM 4.3, Tables 4-4..4-6) ----
// PDE: if CR4.PSE = 1 and PS = 1 it maps a 4 MiB page: physical bits 31:22 from PDE bits 31:22 and, with
// PSE-36, bits 39:32 from PDE bits 20:13 (M = 40, so all eight are address bits); bits 21:(M-19) = bit 21
// are reserved. Otherwise (PS = 0, or CR4.PSE = 0 and PS is ignored) it references a page table at bits
// 31:12 and has no reserved bits. PTEs have no reserved bits.
const RESERVED_4M = bitRange(21, MAXPHYADDR - 19);
const isLarge32 = (e: bigint, ctx: WalkContext) => ctx.pse && has(e, PTE_PS);
const PDE32 = level('PDE', 22, 10, 4, {
  controlsRights: true, hasXD: false,
  pageSize: (e, ctx) => (isLarge32(e, ctx) ? 4 * MIB : 0),
  reserved: (e, ctx) => (isLarge32(e, ctx) ? RESERVED_4M : 0n),
  frame: (e, size) => (size > 0 ? (e & bitRange(31, 22)) | (((e >> 13n) & 0xffn) << 32n) : e & bitRange(31, 12)),
});
const PTE32 = level('PTE', 12, 10, 4, {
  controlsRights: true, hasXD: false,
  pageSize: () => 4 * KIB,
  reserved: () => 0n,
  frame: (e) => e & bitRange(31, 12),
});

// ---- PAE paging (SDM 4.4, Tables 4-8..4-11) ----
// PDPTE: bits 2:1, 8:5 and 63:M reserved; no R/W, U/S, A or XD. PDE/PTE: bits 62:M reserved (PAE entries
// have no ignored high bits, unlike 4-level ones), XD reserved if NXE = 0, and for a 2 MiB page (PS = 1)
// bits 20:13. CR4.PSE is ignored: PS alone decides.
const RESERVED_PAE_PDPTE = bitRange(2, 1) | bitRange(8, 5) | bitRange(63, MAXPHYADDR);
const RESERVED_PAE_HIGH = bitRange(62, MAXPHYADDR);
const PDPTE_PAE = level('PDPTE', 30, 2, 8, {
  controlsRights: false, hasXD: false,
  pageSize: () => 0,
  reserved: () => RESERVED_PAE_PDPTE,
  frame: frame64,
});
const PDE_PAE = level('PDE', 21, 9, 8, {
  controlsRights: true, hasXD: true,
  pageSize: (e) => (has(e, PTE_PS) ? 2 * MIB : 0),
  reserved: (e, ctx) => RESERVED_PAE_HIGH | xdReserved(ctx) | (has(e, PTE_PS) ? RESERVED_2M : 0n),
  frame: frame64,
});
const PTE_PAE = level('PTE', 12, 9, 8, {
  controlsRights: true, hasXD: true,
  pageSize: () => 4 * KIB,
  reserved: (_e, ctx) => RESERVED_PAE_HIGH | xdReserved(ctx),
  frame: frame64,
});

// ---- 4-level paging (SDM 4.5, Tables 4-14..4-20) ----
// Every level: bits 51:M reserved (62:52 are ignored without protection keys), XD reserved if NXE = 0.
// PML4E: PS (bit 7) reserved. PDPTE with PS = 1 maps a 1 GiB page, bits 29:13 reserved. PDE with PS = 1
// maps a 2 MiB page, bits 20:13 reserved. (Bit 12 of a large-page entry is PAT.)
const RESERVED_4LEVEL_HIGH = bitRange(51, MAXPHYADDR);
const PML4E = level('PML4E', 39, 9, 8, {
  controlsRights: true, hasXD: true,
  pageSize: () => 0,
  reserved: (_e, ctx) => RESERVED_4LEVEL_HIGH | xdReserved(ctx) | PTE_PS,
  frame: frame64,
});
const PDPTE_4LEVEL = level('PDPTE', 30, 9, 8, {
  controlsRights: true, hasXD: true,
  pageSize: (e) => (has(e, PTE_PS) ? GIB : 0),
  reserved: (e, ctx) => RESERVED_4LEVEL_HIGH | xdReserved(ctx) | (has(e, PTE_PS) ? RESERVED_1G : 0n),
  frame: frame64,
});
const PDE_4LEVEL = level('PDE', 21, 9, 8, {
  controlsRights: true, hasXD: true,
  pageSize: (e) => (has(e, PTE_PS) ? 2 * MIB : 0),
  reserved: (e, ctx) => RESERVED_4LEVEL_HIGH | xdReserved(ctx) | (has(e, PTE_PS) ? RESERVED_2M : 0n),
  frame: frame64,
});
const PTE_4LEVEL = level('PTE', 12, 9, 8, {
  controlsRights: true, hasXD: true,
  pageSize: () => 4 * KIB,
  reserved: (_e, ctx) => RESERVED_4LEVEL_HIGH | xdReserved(ctx),
  frame: frame64,
});

interface ModeFormat {
  levels: Level[];
  /** Physical address of the first table, from CR3 (Tables 4-3, 4-7, 4-12). */
  root(cr3: bigint): bigint;
}

const MODES: Record<Exclude<PagingModeName, 'none'>, ModeFormat> = {
  '32-bit': { levels: [PDE32, PTE32], root: (cr3) => cr3 & bitRange(31, 12) },
  // PAE: CR3 bits 31:5 locate the 32-byte page-directory-pointer table.
  'PAE': { levels: [PDPTE_PAE, PDE_PAE, PTE_PAE], root: (cr3) => cr3 & bitRange(31, 5) },
  '4-level': { levels: [PML4E, PDPTE_4LEVEL, PDE_4LEVEL, PTE_4LEVEL], root: (cr3) => cr3 & PHYS_MASK[4 * KIB] },
};

/** The combined rights of the entries controlling a translation (SDM 4.6). */
export interface Rights {
  /** R/W = 1 in every entry that has the flag. */
  writable: boolean;
  /** U/S = 1 in every entry that has the flag: a user-mode address; otherwise a supervisor-mode address. */
  userAddress: boolean;
  /** XD = 1 in some entry, with IA32_EFER.NXE = 1 (PAE and 4-level paging only). */
  executeDisable: boolean;
}

/**
 * The table walk alone (SDM 4.3-4.5): where it ends, and the rights of the entries it used. It depends on
 * the paging mode, CR3, CR4.PSE and EFER.NXE (which makes XD reserved or not), never on the access.
 */
export type TableWalk =
  | { ok: true; mode: PagingModeName; gpa: bigint; pageSize: number; rights: Rights; walked: WalkedEntry[] }
  | { ok: false; mode: PagingModeName; vector: number; faultBits: number; reason: string; walked: WalkedEntry[] };

/**
 * Walk the paging structures for `gva`. The walk stops at the first entry that is not present, then at
 * the first that sets a reserved bit; reserved bits are not checked in a non-present entry, so a RSVD
 * fault always has P = 1 (4.7). A fault at an upper level therefore comes before anything below it.
 * The linear address is taken to be canonical (a non-canonical one faults before paging, with #GP).
 *
 * PAE paging walks from the four PDPTE registers, which MOV to CR3 (and the CR0/CR4 writes that enter PAE
 * paging) load from the 32-byte table at CR3 (SDM 4.4.1). This model reads them from that table, so it
 * describes the state right after such a load. A PDPTE that is present with a reserved bit set never
 * reaches a register: the load raises #GP(0) instead ("failures to load the PDPTE registers ... cause
 * #GP(0) and not #PF", 4.7), which the model reports as vector 13, error 0 (see loadPaePdptes).
 */
export function walkTables(mem: EntryReader, regs: PagingRegs, gva: bigint): TableWalk {
  const modeName = pagingMode(regs);
  const walked: WalkedEntry[] = [];
  const rights: Rights = { writable: true, userAddress: true, executeDisable: false };
  if (modeName === 'none') return { ok: true, mode: modeName, gpa: gva & 0xffffffffn, pageSize: 4 * KIB, rights, walked };
  const mode = MODES[modeName];
  const ctx: WalkContext = { nxe: has(regs.efer, EFER_NXE), pse: has(regs.cr4, CR4_PSE) };
  let table = mode.root(regs.cr3);
  for (const lv of mode.levels) {
    const gpa = table + ((gva >> lv.indexShift) & lv.indexMask) * BigInt(lv.entryBytes);
    const entry = mem(gpa, lv.entryBytes);
    walked.push({ level: lv.name, gpa, size: lv.entryBytes, value: entry, hasAccessedFlag: lv.controlsRights });
    if (!has(entry, PTE_P)) return { ok: false, mode: modeName, vector: VEC_PF, faultBits: 0, reason: `not present at ${lv.name}`, walked };
    const reservedSet = entry & lv.reserved(entry, ctx);
    if (reservedSet !== 0n) {
      const reason = `reserved bit ${lowestBit(reservedSet)} at ${lv.name}`;
      if (lv === PDPTE_PAE) return { ok: false, mode: modeName, vector: VEC_GP, faultBits: 0, reason: `${reason}: the PDPTE load raises #GP(0)`, walked };
      return { ok: false, mode: modeName, vector: VEC_PF, faultBits: PFEC.P | PFEC.RSVD, reason, walked };
    }
    if (lv.controlsRights) {
      rights.writable &&= has(entry, PTE_RW);
      rights.userAddress &&= has(entry, PTE_US);
    }
    if (lv.hasXD && ctx.nxe && has(entry, PTE_XD)) rights.executeDisable = true;
    const pageSize = lv.pageSize(entry, ctx);
    if (pageSize > 0) {
      return { ok: true, mode: modeName, gpa: lv.frame(entry, pageSize) | (gva & BigInt(pageSize - 1)), pageSize, rights, walked };
    }
    table = lv.frame(entry, 0);
  }
  throw new Error('paging-reference: the last level of every mode maps a page');
}

/**
 * Whether the access is allowed (SDM 4.6.1). A supervisor-mode access is one at CPL < 3 or an implicit
 * supervisor-mode access (to the GDT, IDT, TSS... at any CPL). Implicit accesses are data accesses.
 */
export function accessAllowed(rights: Rights, access: PagingAccess, supervisor: boolean, implicitSupervisor: boolean,
  regs: PagingRegs): { allowed: true } | { allowed: false; why: string } {
  const deny = (why: string) => ({ allowed: false as const, why });
  const smep = has(regs.cr4, CR4_SMEP);
  const smap = has(regs.cr4, CR4_SMAP);
  const wp = has(regs.cr0, CR0_WP);
  if (!supervisor) {
    // User-mode accesses: only user-mode addresses; writes need R/W = 1 everywhere; fetches need XD = 0.
    if (!rights.userAddress) return deny('user access to a supervisor-mode address');
    if (access === 'write' && !rights.writable) return deny('user write to a read-only page');
    if (access === 'fetch' && rights.executeDisable) return deny('fetch from an execute-disable page');
    return { allowed: true };
  }
  if (access === 'fetch') {
    // SMEP: no supervisor fetch from a user-mode address, whatever XD says; otherwise XD decides.
    if (rights.userAddress && smep) return deny('SMEP: supervisor fetch from a user-mode address');
    if (rights.executeDisable) return deny('fetch from an execute-disable page');
    return { allowed: true };
  }
  // SMAP blocks supervisor data accesses to user-mode addresses unless EFLAGS.AC = 1 and the access is
  // explicit; an implicit supervisor-mode access ignores AC ("If EFLAGS.AC = 0 or the access is implicit,
  // data may not be read/written"). It applies whatever CR0.WP and R/W say.
  if (rights.userAddress && smap && (implicitSupervisor || !regs.rflagsAC)) {
    return deny(`SMAP: supervisor ${access} of a user-mode address (${implicitSupervisor ? 'implicit' : 'AC = 0'})`);
  }
  // CR0.WP = 1: supervisor writes need R/W = 1 in every entry; CR0.WP = 0: any address is writable.
  if (access === 'write' && wp && !rights.writable) return deny('supervisor write to a read-only page with CR0.WP = 1');
  return { allowed: true };
}

/**
 * Finish an access on a table walk: the access rights (4.6), the error code of a #PF (4.7), and the
 * accessed/dirty flag writes of a successful access (4.8). `regs` must be those the walk used.
 */
export function completeAccess(walk: TableWalk, regs: PagingRegs, access: PagingAccess, cpl: number,
  implicitSupervisor = false): WalkResult {
  const supervisor = cpl < 3 || implicitSupervisor;
  const write = access === 'write';
  // W/R and U/S describe the access (an implicit supervisor-mode access at CPL 3 is a supervisor access,
  // U/S = 0); I/D is set for fetches only when CR4.SMEP = 1 or (PAE/4-level paging with EFER.NXE = 1).
  const idApplies = has(regs.cr4, CR4_SMEP) || (walk.mode !== '32-bit' && has(regs.efer, EFER_NXE));
  const accessBits = (write ? PFEC.W : 0) | (supervisor ? 0 : PFEC.U) | (access === 'fetch' && idApplies ? PFEC.ID : 0);
  if (!walk.ok && walk.vector === VEC_GP) return { ok: false, vector: VEC_GP, error: 0, reason: walk.reason, walked: walk.walked };
  if (!walk.ok) return { ok: false, vector: VEC_PF, error: walk.faultBits | accessBits, reason: walk.reason, walked: walk.walked };
  if (walk.mode === 'none') return { ok: true, gpa: walk.gpa, pageSize: walk.pageSize, setBits: [], walked: walk.walked };
  const verdict = accessAllowed(walk.rights, access, supervisor, implicitSupervisor, regs);
  if (!verdict.allowed) return { ok: false, vector: VEC_PF, error: PFEC.P | accessBits, reason: verdict.why, walked: walk.walked };
  return { ok: true, gpa: walk.gpa, pageSize: walk.pageSize, setBits: accessedDirtyUpdates(walk.walked, write), walked: walk.walked };
}

/**
 * SDM 4.8: the processor sets A in every paging-structure entry it uses for the translation (PAE PDPTEs
 * have no A flag: bit 5 is reserved there) and, on a write, D in the entry that maps the page. Flags
 * already set are left alone, so only changed entries are listed.
 */
function accessedDirtyUpdates(walked: WalkedEntry[], write: boolean): EntryUpdate[] {
  const updates: EntryUpdate[] = [];
  walked.forEach((w, i) => {
    let value = w.value;
    if (w.hasAccessedFlag) value |= PTE_A;
    if (write && i === walked.length - 1) value |= PTE_D;
    if (value !== w.value) updates.push({ gpa: w.gpa, size: w.size, value });
  });
  return updates;
}

/**
 * What loading the PAE PDPTE registers from the table at CR3 does (SDM 4.4.1): the four entries, or #GP(0)
 * if one of them is present (P = 1) with a reserved bit (2:1, 8:5, 63:M) set. A non-present entry is
 * loaded whatever its other bits hold (some processors check those too, says a footnote of 4.4.1, so the
 * tests leave them clear).
 */
export function loadPaePdptes(mem: EntryReader, cr3: bigint): { ok: true; pdptes: bigint[] } | { ok: false; vector: number; error: number; reason: string } {
  const table = MODES.PAE.root(cr3);
  const pdptes = [0n, 1n, 2n, 3n].map((i) => mem(table + 8n * i, 8));
  for (const [i, e] of pdptes.entries()) {
    const reservedSet = e & RESERVED_PAE_PDPTE;
    if (has(e, PTE_P) && reservedSet !== 0n) return { ok: false, vector: VEC_GP, error: 0, reason: `PDPTE${i} sets reserved bit ${lowestBit(reservedSet)}` };
  }
  return { ok: true, pdptes };
}

/**
 * Translate `gva` for one access, as the processor does on a TLB miss: the physical address and the
 * accessed/dirty flag writes the access makes, or the #PF it raises with its error code.
 */
export function referenceTranslate(mem: EntryReader, regs: PagingRegs, gva: bigint, access: PagingAccess, cpl: number,
  implicitSupervisor = false): WalkResult {
  return completeAccess(walkTables(mem, regs, gva), regs, access, cpl, implicitSupervisor);
}

function lowestBit(v: bigint): number {
  let n = 0;
  while (((v >> BigInt(n)) & 1n) === 0n) n++;
  return n;
}
