// What writes to the paging control registers and the invalidation instructions do to the TLBs and
// the PAE PDPTE registers (SDM Vol. 3A, 4.4.1 and 4.10.4). The instruction handlers (ops/system.ts)
// check their own #GP rules, store the register and call these.
import { ST_CR0, ST_CR3, ST_CR4, ST_EFER, CR0_PG, CR0_WP, CR0_PE, EFER_LMA, EFER_NXE } from '../abi';
import { cpu } from '../cpu/state';
import { loadPdptes, CR4_PAE, CR4_PSE, CR4_PGE, CR4_PCIDE, CR4_SMEP, CR4_SMAP } from './paging';
import { tlbFlush, tlbFlushPage, refreshTlbKey, FLUSH_ALL, FLUSH_NONGLOBAL, FLUSH_PCID } from './tlb';
import { shadowCr3Exit, shadowInvlpgExit, shadowPdptesLoaded } from './shadow';

/** Load the PDPTE registers; under --mmu shadow, the shadow links that follow them are updated. */
function reloadPdptes(): bool {
  if (!loadPdptes()) return false;
  shadowPdptesLoaded();
  return true;
}

/** PAE paging outside IA-32e mode is in effect (the PDPTEs are registers then). */
function paePaging(): bool {
  return (load<u64>(cpu + ST_CR0) & CR0_PG) != 0 && (load<u64>(cpu + ST_CR4) & CR4_PAE) != 0
    && (load<u64>(cpu + ST_EFER) & EFER_LMA) == 0;
}

/** MOV to CR3 (already stored, bit 63 cleared). With CR4.PCIDE, bit 63 of the source (`noFlush`)
 *  keeps the new PCID's entries; otherwise the non-global entries of the PCID go. False if a PDPTE
 *  load faulted (#GP raised). */
export function cr3Written(noFlush: bool): bool {
  const pcide = (load<u64>(cpu + ST_CR4) & CR4_PCIDE) != 0;
  // Under --mmu shadow a CR3 load exits; the shadow walk then switches to the cached root of the
  // new CR3 (or builds one) on its next miss, which the TLB flush below guarantees.
  shadowCr3Exit();
  refreshTlbKey();
  if (!pcide) tlbFlush(FLUSH_NONGLOBAL, 0);
  else if (!noFlush) tlbFlush(FLUSH_PCID, <u32>load<u64>(cpu + ST_CR3) & 0xfff);
  return paePaging() ? reloadPdptes() : true;
}

/** CR4 changed from `old`: paging-mode and protection bits flush everything (4.10.4.1). */
export function cr4Written(old: u64): bool {
  const v = load<u64>(cpu + ST_CR4);
  const changed = v ^ old;
  if ((changed & (CR4_PAE | CR4_PSE | CR4_PGE | CR4_SMEP | CR4_SMAP)) != 0 || ((old & ~v) & CR4_PCIDE) != 0) {
    tlbFlush(FLUSH_ALL, 0);
  }
  refreshTlbKey();
  if ((changed & (CR4_PAE | CR4_PSE | CR4_PGE | CR4_SMEP)) != 0 && paePaging()) return reloadPdptes();
  return true;
}

/** CR0 changed from `old`: PG, WP or PE changes flush everything; entering PAE paging loads PDPTEs. */
export function cr0Written(old: u64): bool {
  const v = load<u64>(cpu + ST_CR0);
  if (((v ^ old) & (CR0_PG | CR0_WP | CR0_PE)) != 0) tlbFlush(FLUSH_ALL, 0);
  if ((v & CR0_PG) != 0 && (old & CR0_PG) == 0 && paePaging()) return reloadPdptes();
  return true;
}

/** EFER changed from `old`: NXE changes what cached entries allow. */
export function eferWritten(old: u64): void {
  if (((load<u64>(cpu + ST_EFER) ^ old) & EFER_NXE) != 0) tlbFlush(FLUSH_ALL, 0);
}

/** INVLPG: the page's entries for the current PCID, and global ones (4.10.4.1). */
export function invlpg(lin: u64): void {
  // Under --mmu shadow INVLPG exits; shadow pages are never out of sync (shadow.ts), so the TLB
  // flush is all it needs (KVM's invlpg handler re-syncs only unsync pages).
  shadowInvlpgExit();
  const pcid = (load<u64>(cpu + ST_CR4) & CR4_PCIDE) != 0 ? <u32>load<u64>(cpu + ST_CR3) & 0xfff : 0;
  tlbFlushPage(lin, pcid, false, false);
}

/** INVPCID types 0-3 (SDM Vol. 2A, INVPCID): individual address, single context, all contexts
 *  including globals, all contexts except globals. The caller checked the #GP conditions. */
export function invpcid(type: u32, pcid: u32, lin: u64): void {
  shadowInvlpgExit();
  if (type == 0) tlbFlushPage(lin, pcid, false, true);
  else if (type == 1) tlbFlush(FLUSH_PCID, pcid);
  else if (type == 2) tlbFlush(FLUSH_ALL, 0);
  else tlbFlush(FLUSH_NONGLOBAL, 0);
}
