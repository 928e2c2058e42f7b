// The exported surface of hvlab's "kvm.ko": what the TypeScript VMM calls. Only i32/f64 cross the
// boundary (notes/assemblyscript-probe.md: i64 becomes BigInt and costs 13-28 ns); 64-bit state is
// read and written through linear memory at the offsets of wasm/abi.ts.
import * as abi from './abi';
import { run as runLoop } from './cpu/execute';
import { setRamSize, setRomSize } from './mmu/translate';
import { setCpu, loadState, saveState } from './cpu/state';
import { getFlags, setFlags } from './cpu/flags';
import { flushDecodedCache } from './cpu/decode';

/** Execute vCPU `vcpu` until an exit or `budget` instructions (like KVM_RUN). Returns EXIT_*. */
export function run(vcpu: i32, budget: i32): i32 { return runLoop(vcpu, budget); }

/** Map `bytes` of guest RAM at GUEST_RAM_BASE, flat (linear = guest-physical = offset). */
export function setFlatMemory(bytes: f64): void { setRamSize(<u64>bytes); }

/** Map `bytes` of firmware ROM (stored in host memory right after guest RAM) ending at 4 GiB. */
export function setFirmwareRom(bytes: f64): void { setRomSize(<u64>bytes); }

/** A checksum over the ABI constants as this module was compiled with them; the TypeScript side
 *  computes the same from its own import (test/abi.test.ts), proving the two agree. */
export function abiChecksum(): i32 {
  let h: i32 = 17;
  h = h * 31 + abi.VCPU_AREA_BASE; h = h * 31 + abi.VCPU_STRIDE; h = h * 31 + abi.ST_RIP;
  h = h * 31 + abi.ST_RFLAGS; h = h * 31 + abi.ST_LAZY_OP; h = h * 31 + abi.ST_EXIT_REASON;
  h = h * 31 + abi.ST_EXIT_VECTOR; h = h * 31 + abi.ST_EXIT_RIP; h = h * 31 + abi.ST_COUNTERS;
  h = h * 31 + abi.ST_UD_BY_OPCODE; h = h * 31 + abi.GUEST_RAM_BASE; h = h * 31 + abi.CPUID_TABLE_BASE;
  h = h * 31 + abi.CPUID_COUNT_ADDR; h = h * 31 + abi.EXIT_HLT; h = h * 31 + abi.EXIT_EXCEPTION;
  h = h * 31 + abi.ST_FS_BASE; h = h * 31 + abi.ST_GS_BASE; h = h * 31 + abi.ST_TSC_OFFSET;
  return h;
}

/** RFLAGS of a vCPU, with the lazily held arithmetic flags materialized (RFLAGS fits in 32 bits). */
export function readRflags(vcpu: i32): i32 {
  setCpu(vcpu);
  loadState();
  return <i32>getFlags();
}

/** Replace RFLAGS of a vCPU (bit 1 reads as 1). */
export function writeRflags(vcpu: i32, value: i32): void {
  setCpu(vcpu);
  loadState();
  setFlags(<u64><u32>value);
  saveState();
}

/** The host wrote guest memory behind the vCPUs' backs (loading code, DMA): drop decoded instructions. */
export function invalidateDecoded(): void { flushDecodedCache(); }
