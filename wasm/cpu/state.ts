// vCPU state access for the interpreter. The architectural state lives in linear memory at the
// vCPU's base (layout in wasm/abi.ts); while run() executes, RIP and the lazy-flag fields are kept
// in module globals (scalar globals are as cheap as locals) and written back on every exit.
import {
  VCPU_AREA_BASE, VCPU_STRIDE, ST_GPR, ST_RIP, ST_RFLAGS, ST_LAZY_OP, ST_LAZY_SIZE, ST_LAZY_RES,
  ST_LAZY_DST, ST_LAZY_SRC, ST_LAZY_AUX,
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

/** Copy the in-memory state into the globals (entry to run()). */
export function loadState(): void {
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
