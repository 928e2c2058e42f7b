// Guest paging (gva -> gpa): the page walks of SDM Vol. 3A chapter 4 — 32-bit (4 KiB and, with
// CR4.PSE, 4 MiB pages), PAE (4 KiB, 2 MiB) and 4-level IA-32e (4 KiB, 2 MiB, 1 GiB) — with the
// permission rules (R/W with CR0.WP, U/S, NX with EFER.NXE, SMEP, SMAP with RFLAGS.AC), reserved
// bits, the page-fault error code, CR2, and accessed/dirty bits set at every level.
// This walker has no TLB yet: every access walks. The MMU issue adds TLBs, the EPT dimension and
// the walk accounting on top of the same function.
import {
  ST_CR0, ST_CR3, ST_CR4, ST_EFER, ST_CR2, CR0_WP, EFER_NXE, ACC_WRITE, ACC_FETCH, GUEST_RAM_BASE,
  FLAG_AC, VEC_PF,
} from '../abi';
import { cpu, cpl, rflags } from '../cpu/state';
import { raise } from '../cpu/fault';

const PTE_P: u64 = 0x1;
const PTE_RW: u64 = 0x2;
const PTE_US: u64 = 0x4;
const PTE_A: u64 = 0x20;
const PTE_D: u64 = 0x40;
const PTE_PS: u64 = 0x80;
const PTE_XD: u64 = 0x8000000000000000;
const CR4_PSE: u64 = 0x10;
const CR4_PAE: u64 = 0x20;
const CR4_SMEP: u64 = 0x100000;
const CR4_SMAP: u64 = 0x200000;

const PF_P: u32 = 1, PF_W: u32 = 2, PF_U: u32 = 4, PF_RSVD: u32 = 8, PF_ID: u32 = 16;

/** Physical address width (CPUID 80000008h EAX[7:0] reports the same). */
export const MAX_PHYS_BITS: u32 = 40;
const PHYS_MASK: u64 = ((<u64>1 << MAX_PHYS_BITS) - 1) & ~(<u64>0xfff);

/** Guest-physical size of RAM; entries beyond it read as 0 (not present). */
let physLimit: u64 = 0;
export function setPhysLimit(v: u64): void { physLimit = v; }

/** Accesses made by the CPU itself on behalf of the kernel (descriptor tables, the TSS, interrupt
 *  stacks at CPL 0): supervisor accesses whatever the CPL (SDM Vol. 3A, 4.6). */
export let implicitSupervisor: bool = false;
export function setImplicitSupervisor(v: bool): void { implicitSupervisor = v; }

@inline function readEntry(addr: u64, wide: bool): u64 {
  if (addr + 8 > physLimit) return 0;
  const p = <usize>GUEST_RAM_BASE + <usize>addr;
  return wide ? load<u64>(p) : <u64>load<u32>(p);
}
@inline function writeEntry(addr: u64, wide: bool, v: u64): void {
  const p = <usize>GUEST_RAM_BASE + <usize>addr;
  if (wide) store<u64>(p, v); else store<u32>(p, <u32>v);
}

function pageFault(lin: u64, error: u32): u64 {
  store<u64>(cpu + ST_CR2, lin);
  raise(VEC_PF, error, true);
  return <u64>-1;
}

/** Translate linear `lin` to a guest-physical address for `access`, or return -1 with #PF raised. */
export function walk(lin: u64, access: i32): u64 {
  const cr4 = load<u64>(cpu + ST_CR4);
  const efer = load<u64>(cpu + ST_EFER);
  const nxe = (efer & EFER_NXE) != 0;
  const user = cpl == 3 && !implicitSupervisor;
  const write = access == ACC_WRITE;
  const fetch = access == ACC_FETCH;
  let error: u32 = (write ? PF_W : 0) | (user ? PF_U : 0) | (fetch && (nxe || (cr4 & CR4_SMEP) != 0) ? PF_ID : 0);
  const cr3 = load<u64>(cpu + ST_CR3);
  let wide: bool, levels: i32, table: u64;
  if ((efer & 0x400) != 0) { wide = true; levels = 4; table = cr3 & PHYS_MASK; }
  else if ((cr4 & CR4_PAE) != 0) {
    // PAE: the PDPTE selected by bits 31:30 (read here; hardware caches the four on MOV CR3).
    wide = true; levels = 2;
    const pdpte = readEntry((cr3 & 0xffffffe0) + ((lin >> 30) & 3) * 8, true);
    if ((pdpte & PTE_P) == 0) return pageFault(lin, error);
    if ((pdpte & (0x1e6 | ~PHYS_MASK & 0x7ffffffffffff000)) != 0) return pageFault(lin, error | PF_P | PF_RSVD);
    table = pdpte & PHYS_MASK;
  } else { wide = false; levels = 2; table = cr3 & 0xfffff000; }

  let rw = true, us = true, xd = false;
  let shift: u64 = wide ? 12 + 9 * <u64>(levels - 1) + (levels == 2 ? 9 : 0) : 22;
  if (wide && levels == 4) shift = 39;
  for (let level = levels; level >= 1; level--) {
    const indexBits: u64 = wide ? 9 : 10;
    const index = (lin >> shift) & ((<u64>1 << indexBits) - 1);
    const at = table + index * (wide ? 8 : 4);
    let e = readEntry(at, wide);
    if ((e & PTE_P) == 0) return pageFault(lin, error);
    // Reserved bits: physical-address bits above MAXPHYADDR, XD without NXE, PS where it is not allowed.
    const large = (e & PTE_PS) != 0 && level > 1;
    let reserved = wide && ((e & 0x7ff0000000000000 & ~PHYS_MASK) != 0 || (e & ~PHYS_MASK & 0x000ff00000000000 & ~(<u64>0xfff)) != 0);
    if (wide && !nxe && (e & PTE_XD) != 0) reserved = true;
    if (large && wide && level == 4) reserved = true; // no 512 GiB pages
    if (large && !wide && (cr4 & CR4_PSE) == 0) { /* PS ignored without PSE: a page table */ }
    if (reserved) return pageFault(lin, error | PF_P | PF_RSVD);
    rw = rw && (e & PTE_RW) != 0;
    us = us && (e & PTE_US) != 0;
    xd = xd || (wide && (e & PTE_XD) != 0);
    const leaf = level == 1 || (large && (wide || (cr4 & CR4_PSE) != 0));
    if (!leaf) {
      if ((e & PTE_A) == 0) writeEntry(at, wide, e | PTE_A);
      table = wide ? e & PHYS_MASK : e & 0xfffff000;
      shift -= indexBits;
      continue;
    }
    // Permission checks on the combined rights (SDM Vol. 3A, 4.6.1).
    const cr0 = load<u64>(cpu + ST_CR0);
    if (user && !us) return pageFault(lin, error | PF_P);
    if (write && !rw && (user || (cr0 & CR0_WP) != 0)) return pageFault(lin, error | PF_P);
    if (fetch && xd && nxe) return pageFault(lin, error | PF_P);
    if (!user && us) {
      if (fetch && (cr4 & CR4_SMEP) != 0) return pageFault(lin, error | PF_P);
      if (!fetch && (cr4 & CR4_SMAP) != 0 && (implicitSupervisor || cpl == 3 || (rflags & FLAG_AC) == 0)) {
        return pageFault(lin, error | PF_P);
      }
    }
    let nv = e | PTE_A;
    if (write) nv |= PTE_D;
    if (nv != e) writeEntry(at, wide, nv);
    let frame: u64;
    if (!wide && large) {
      // 4 MiB page: bits 31:22 from the PDE, bits 39:32 from PDE bits 20:13 (PSE-36).
      frame = (e & 0xffc00000) | ((e & 0x1fe000) << 19);
      return frame | (lin & 0x3fffff);
    }
    const pageMask: u64 = (<u64>1 << shift) - 1;
    frame = (wide ? e & PHYS_MASK : e & 0xfffff000) & ~pageMask;
    return frame | (lin & pageMask);
  }
  return pageFault(lin, error);
}
