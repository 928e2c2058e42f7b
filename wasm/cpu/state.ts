// vCPU state access for the interpreter. The architectural state lives in linear memory at the
// vCPU's base (layout in wasm/abi.ts); while run() executes, RIP and the lazy-flag fields are kept
// in module globals (scalar globals are as cheap as locals) and written back on every exit.
import {
  VCPU_AREA_BASE, VCPU_STRIDE, ST_GPR, ST_RIP, ST_RFLAGS, ST_LAZY_OP, ST_LAZY_SIZE, ST_LAZY_RES,
  ST_LAZY_DST, ST_LAZY_SRC, ST_LAZY_AUX, ST_MODE, MODE_FLAT64, ST_CR0, ST_EFER, ST_SEG, SEG_SLOT,
  SEG_CS, SEG_SS, SEG_ATTR, SEG_BASE, SEG_SELECTOR, SEG_ATTR_L, SEG_ATTR_DB, CR0_PE, EFER_LMA, LF_LOGIC,
} from '../abi';

/** Base address of the running vCPU's state. */
export let cpu: usize = VCPU_AREA_BASE;
export let rip: u64 = 0;

// Lazy flags (see flags.ts): operation, operand size in bytes, result and operands, masked to size.
export let lazyOp: i32 = 0;
export let lazySize: i32 = 8;
export let lazyRes: u64 = 0;
export let lazyDst: u64 = 0;
export let lazySrc: u64 = 0;
export let lazyAux: u64 = 0;
/** RFLAGS bits not held lazily (all of them when lazyOp == LF_NONE). */
export let rflags: u64 = 2;

export function setCpu(vcpu: i32): void { cpu = <usize>VCPU_AREA_BASE + <usize>vcpu * <usize>VCPU_STRIDE; }
export function setRip(v: u64): void { rip = v; }
export function setRflagsRaw(v: u64): void { rflags = v; }
export function setLazy(op: i32, size: i32, res: u64, dst: u64, src: u64): void {
  lazyOp = op; lazySize = size; lazyRes = res; lazyDst = dst; lazySrc = src;
}
export function setLazyAux(v: u64): void { lazyAux = v; }
/** AND/OR/XOR/TEST: the flags depend on the result alone (CF = OF = 0), so the operands are not kept. */
@inline export function setLazyLogic(size: i32, res: u64): void { lazyOp = LF_LOGIC; lazySize = size; lazyRes = res; }

// ---- Execution mode, derived from CR0, EFER and CS/SS (SDM Vol. 3A, 2.2 and 5.2.1) ----
/** 64-bit submode of IA-32e mode (or the flat 64-bit test harness). */
export let mode64: bool = true;
/** The flat test harness: exceptions end run() instead of going through the IDT. */
export let flatHarness: bool = true;
/** CR0.PE = 0. */
export let realMode: bool = false;
/** CR0.PG = 1: linear addresses go through the guest page tables (mmu/paging.ts). */
export let pagingOn: bool = false;
/** Default operand size (2 or 4) and address size (2, 4 or 8) of the code segment. */
export let defaultOperandSize: i32 = 4;
export let defaultAddressSize: i32 = 8;
/** Stack pointer width: 8 in 64-bit mode, else 4 or 2 by SS.B. */
export let stackWidth: i32 = 8;
export let cpl: i32 = 3;
/** CS base (0 in 64-bit mode): instruction linear address = csBase + RIP. */
export let csBase: u64 = 0;
/** Distinguishes decodings of the same bytes in different modes (part of the decoded-cache key). */
export let modeKey: u32 = 3;

@inline export function segField(seg: i32, field: usize): usize { return cpu + ST_SEG + <usize>seg * SEG_SLOT + field; }

/** Recompute the mode globals; called on every run() entry and whenever CR0, EFER, CS or SS change. */
export function updateMode(): void {
  flatHarness = load<u32>(cpu + ST_MODE) == MODE_FLAT64;
  if (flatHarness) {
    mode64 = true; realMode = false; pagingOn = false; defaultOperandSize = 4; defaultAddressSize = 8; stackWidth = 8;
    cpl = 3; csBase = 0; modeKey = 3;
    return;
  }
  const cr0 = load<u64>(cpu + ST_CR0);
  const csAttr = <u32>load<u16>(segField(SEG_CS, SEG_ATTR));
  realMode = (cr0 & CR0_PE) == 0;
  pagingOn = (cr0 & 0x80000000) != 0;
  mode64 = !realMode && (load<u64>(cpu + ST_EFER) & EFER_LMA) != 0 && (csAttr & SEG_ATTR_L) != 0;
  if (mode64) {
    defaultOperandSize = 4; defaultAddressSize = 8; stackWidth = 8; csBase = 0; modeKey = 3;
  } else {
    const big = !realMode && (csAttr & SEG_ATTR_DB) != 0;
    defaultOperandSize = big ? 4 : 2;
    defaultAddressSize = big ? 4 : 2;
    modeKey = big ? 2 : 1;
    csBase = load<u64>(segField(SEG_CS, SEG_BASE));
    stackWidth = !realMode && (load<u16>(segField(SEG_SS, SEG_ATTR)) & SEG_ATTR_DB) != 0 ? 4 : 2;
  }
  // CPL is CS.RPL in protected mode (SDM Vol. 3A, 5.5), 0 in real mode.
  cpl = realMode ? 0 : <i32>(load<u16>(segField(SEG_CS, SEG_SELECTOR)) & 3);
}

/** Probes of the MMU (api.ts) walk as if at privilege level `v`. */
export function overrideCpl(v: i32): void { cpl = v; }

/** Copy the in-memory state into the globals (entry to run()). */
export function loadState(): void {
  updateMode();
  rip = load<u64>(cpu + ST_RIP);
  rflags = load<u64>(cpu + ST_RFLAGS);
  lazyOp = load<u32>(cpu + ST_LAZY_OP);
  lazySize = load<u32>(cpu + ST_LAZY_SIZE);
  lazyRes = load<u64>(cpu + ST_LAZY_RES);
  lazyDst = load<u64>(cpu + ST_LAZY_DST);
  lazySrc = load<u64>(cpu + ST_LAZY_SRC);
  lazyAux = load<u64>(cpu + ST_LAZY_AUX);
}

/** Write the globals back (every exit from run()). */
export function saveState(): void {
  store<u64>(cpu + ST_RIP, rip);
  store<u64>(cpu + ST_RFLAGS, rflags);
  store<u32>(cpu + ST_LAZY_OP, lazyOp);
  store<u32>(cpu + ST_LAZY_SIZE, lazySize);
  store<u64>(cpu + ST_LAZY_RES, lazyRes);
  store<u64>(cpu + ST_LAZY_DST, lazyDst);
  store<u64>(cpu + ST_LAZY_SRC, lazySrc);
  store<u64>(cpu + ST_LAZY_AUX, lazyAux);
}

// ---- General registers ----

@inline export function gprPtr(r: i32): usize { return cpu + ST_GPR + (<usize>r << 3); }
@inline export function getReg64(r: i32): u64 { return load<u64>(gprPtr(r)); }
@inline export function setReg64(r: i32, v: u64): void { store<u64>(gprPtr(r), v); }

/** Mask of an operand of `size` bytes. */
@inline export function sizeMask(size: i32): u64 {
  return size == 8 ? <u64>-1 : (<u64>1 << (<u64>size << 3)) - 1;
}
@inline export function signBit(size: i32): u64 { return <u64>1 << ((<u64>size << 3) - 1); }

/** Sign-extend the low `size` bytes of v to 64 bits. */
@inline export function sext(v: u64, size: i32): u64 {
  if (size == 1) return <u64><i64><i8>v;
  if (size == 2) return <u64><i64><i16>v;
  if (size == 4) return <u64><i64><i32>v;
  return v;
}

@inline export function loadSized(p: usize, size: i32): u64 {
  if (size == 1) return <u64>load<u8>(p);
  if (size == 2) return <u64>load<u16>(p);
  if (size == 4) return <u64>load<u32>(p);
  return load<u64>(p);
}

@inline export function storeSized(p: usize, size: i32, v: u64): void {
  if (size == 1) store<u8>(p, <u8>v);
  else if (size == 2) store<u16>(p, <u16>v);
  else if (size == 4) store<u32>(p, <u32>v);
  else store<u64>(p, v);
}
