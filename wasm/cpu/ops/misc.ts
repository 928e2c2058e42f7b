// Flag instructions, LAHF/SAHF, CPUID, RDTSC, NOP/PAUSE/fences, INT3/INT n, HLT.
import {
  FLAG_CF, FLAG_DF, FLAG_PF, FLAG_AF, FLAG_ZF, FLAG_SF, CPUID_TABLE_BASE, CPUID_ENTRY_SIZE,
  CPUID_COUNT_ADDR, CPUID_TABLE_STRIDE, ST_COUNTERS, CNT_INSTRUCTIONS, ST_TSC_OFFSET, VEC_BP, ST_CR4, ST_VM_VCPU,
} from '../../abi';
import { cpu, getReg64, setReg64, gprPtr } from '../state';
import { getFlags, setFlags, getCF, setArithFlags } from '../flags';
import { raiseTrap } from '../fault';
import { opIdx, imm } from '../decode';
import { setReg } from '../operands';
import { currentVm } from '../../mem/memory-map';

/** F5 CMC, F8 CLC, F9 STC, FC CLD, FD STD. */
export function flagOp(): void {
  switch (opIdx) {
    case 0xf5: setArithFlags(FLAG_CF, getCF() ? 0 : FLAG_CF); break;
    case 0xf8: setArithFlags(FLAG_CF, 0); break;
    case 0xf9: setArithFlags(FLAG_CF, FLAG_CF); break;
    case 0xfc: setFlags(getFlags() & ~(<u64>FLAG_DF)); break;
    default: setFlags(getFlags() | FLAG_DF); break;
  }
}

const SAHF_MASK: u64 = FLAG_SF | FLAG_ZF | FLAG_AF | FLAG_PF | FLAG_CF;

/** 9F LAHF: AH = SF:ZF:0:AF:0:PF:1:CF.  9E SAHF: the reverse. Always AH, even with a REX prefix. */
export function lahf(): void { store<u8>(gprPtr(0) + 1, <u8>((getFlags() & SAHF_MASK) | 2)); }
export function sahf(): void { setArithFlags(SAHF_MASK, <u64>load<u8>(gprPtr(0) + 1)); }

/** Instructions retired so far in this vCPU (the virtual clock). */
@inline export function instructionsRetired(): u64 {
  return load<u64>(cpu + ST_COUNTERS + CNT_INSTRUCTIONS * 8);
}

/** 0F 31: RDTSC: virtual time (instructions retired plus the TSC offset), SDM Vol. 3B, 18.17. */
export function rdtsc(extra: u64): void {
  const tsc = instructionsRetired() + extra + load<u64>(cpu + ST_TSC_OFFSET);
  setReg(0, 4, tsc & 0xffffffff);
  setReg(2, 4, tsc >> 32);
}

/** 0F A2: CPUID from the host-written table. An entry with subleaf 0xFFFFFFFF matches any subleaf;
 *  a leaf with no entry returns zeros. */
export function cpuid(): void {
  const leaf = <u32>getReg64(0);
  const sub = <u32>getReg64(1);
  const n = load<u32>(<usize>CPUID_COUNT_ADDR + <usize>currentVm * 4);
  const table = <usize>CPUID_TABLE_BASE + <usize>currentVm * <usize>CPUID_TABLE_STRIDE;
  let eax: u32 = 0, ebx: u32 = 0, ecx: u32 = 0, edx: u32 = 0;
  for (let i: u32 = 0; i < n; i++) {
    const e: usize = table + <usize>i * <usize>CPUID_ENTRY_SIZE;
    if (load<u32>(e) != leaf) continue;
    const s = load<u32>(e + 4);
    if (s != sub && s != 0xffffffff) continue;
    eax = load<u32>(e + 8); ebx = load<u32>(e + 12); ecx = load<u32>(e + 16); edx = load<u32>(e + 20);
    break;
  }
  // CPUID.1:ECX.OSXSAVE[bit 27] reflects CR4.OSXSAVE (SDM Vol. 2A, CPUID).
  if (leaf == 1) {
    ecx = (ecx & ~(<u32>1 << 27)) | ((load<u64>(cpu + ST_CR4) & 0x40000) != 0 ? <u32>1 << 27 : 0);
    // EBX[31:24]: the initial APIC ID, which is the vCPU's index (the table is shared by the vCPUs).
    ebx = (ebx & 0x00ffffff) | (load<u32>(cpu + ST_VM_VCPU) << 24); // the initial APIC ID: the vCPU's index in its VM
  }
  setReg64(0, eax); setReg64(3, ebx); setReg64(1, ecx); setReg64(2, edx);
}

/** CC INT3 and CD INT n: software interrupts are traps (RIP after the instruction). */
export function int3(): void { raiseTrap(VEC_BP); }
export function intN(): void { raiseTrap(<i32>(imm & 0xff)); }
