// MXCSR layout and the exception bookkeeping shared by every SSE/SSE2 floating-point operation.
// SDM Vol. 1, 10.2.3 (MXCSR Control and Status Register) and 11.5 (SSE/SSE2 SIMD Floating-Point
// Exceptions).
//
// Conventions of the whole simd/ library:
//  * Operands live in linear memory, little-endian lanes: XMM operands are 16 bytes, MMX 8.
//    `dst` is the first source and the destination (legacy two-operand SSE form), `src` the second.
//  * Floating-point operations take the MXCSR value and return the exception flags they raised, as
//    MXCSR bits 0-5 (IE DE ZE OE UE PE). The caller ORs them into MXCSR.
//  * If a raised flag is unmasked (`simdFault(flags, mxcsr)`), the destination has NOT been written
//    and the caller must deliver #XM (CR4.OSXMMEXCPT = 1) or #UD (OSXMMEXCPT = 0). The flags are then
//    those the processor sets before the fault (SDM Vol. 1, 11.5.2.2): when a pre-computation
//    exception (IE, DE, ZE) is unmasked, no post-computation flag (OE, UE, PE) is reported.

export const MXCSR_IE: i32 = 0x01; // invalid operation
export const MXCSR_DE: i32 = 0x02; // denormal operand
export const MXCSR_ZE: i32 = 0x04; // divide by zero
export const MXCSR_OE: i32 = 0x08; // overflow
export const MXCSR_UE: i32 = 0x10; // underflow
export const MXCSR_PE: i32 = 0x20; // precision (inexact)
export const MXCSR_FLAGS: i32 = 0x3f;
export const MXCSR_DAZ: i32 = 0x40; // denormals are zeros (inputs)
export const MXCSR_MASK_SHIFT: i32 = 7; // IM DM ZM OM UM PM at bits 7-12
export const MXCSR_RC_SHIFT: i32 = 13; // rounding control, bits 13-14
export const MXCSR_FTZ: i32 = 0x8000; // flush to zero (results, when underflow is masked)
export const MXCSR_DEFAULT: i32 = 0x1f80; // power-up value: all masked, round to nearest
/** Bits MXCSR may hold on a processor with DAZ; LDMXCSR/FXRSTOR #GP on any other bit. */
export const MXCSR_WRITABLE: i32 = 0xffff;

export const RC_NEAREST: i32 = 0;
export const RC_DOWN: i32 = 1; // toward -infinity
export const RC_UP: i32 = 2; // toward +infinity
export const RC_ZERO: i32 = 3; // truncate

/** Pre-computation exceptions (SDM Vol. 1, 11.5.1): detected on the inputs, before any result. */
export const PRE_FLAGS: i32 = MXCSR_IE | MXCSR_DE | MXCSR_ZE;

/** Shapes of a floating-point operation: bit 0 = scalar (only lane 0), bit 1 = double. */
export const PS: i32 = 0;
export const SS: i32 = 1;
export const PD: i32 = 2;
export const SD: i32 = 3;

/** EFLAGS bits produced by COMISS/UCOMISS/COMISD/UCOMISD, returned in bits 16+ of their result. */
export const COMI_SHIFT: i32 = 16;
export const EFL_CF: i32 = 0x01;
export const EFL_PF: i32 = 0x04;
export const EFL_ZF: i32 = 0x40;

/** True when `flags` (as returned by an operation) contain an exception unmasked in `mxcsr`:
 *  the instruction faults (#XM, or #UD when CR4.OSXMMEXCPT = 0) and its destination is unchanged. */
// @ts-ignore: decorator
@inline export function simdFault(flags: i32, mxcsr: i32): bool {
  return (flags & ~(mxcsr >> MXCSR_MASK_SHIFT) & MXCSR_FLAGS) != 0;
}

// --- per-instruction exception accumulators -------------------------------------------------
// Lanes are evaluated one after the other; each records into these two globals. `finish` turns
// them into the instruction's outcome per SDM Vol. 1, 11.5.2.2.

/** IE, DE, ZE raised so far by the current instruction. */
export let preFlags: i32 = 0;
/** OE, UE, PE raised so far by the current instruction. */
export let postFlags: i32 = 0;
/** The MXCSR the current instruction runs under. */
export let curMxcsr: i32 = MXCSR_DEFAULT;

// @ts-ignore: decorator
@inline export function begin(mxcsr: i32): void {
  preFlags = 0;
  postFlags = 0;
  curMxcsr = mxcsr;
}

// @ts-ignore: decorator
@inline export function raisePre(f: i32): void { preFlags |= f; }
// @ts-ignore: decorator
@inline export function raisePost(f: i32): void { postFlags |= f; }

/** Flags to report for the instruction. If a pre-computation exception is unmasked the processor
 *  stops before computing results, so no post-computation flag appears. */
export function finish(): i32 {
  const unmasked = ~(curMxcsr >> MXCSR_MASK_SHIFT) & MXCSR_FLAGS;
  if ((preFlags & unmasked) != 0) return preFlags;
  return preFlags | postFlags;
}

// @ts-ignore: decorator
@inline export function rcOf(mxcsr: i32): i32 { return (mxcsr >> MXCSR_RC_SHIFT) & 3; }
// @ts-ignore: decorator
@inline export function dazOn(): bool { return (curMxcsr & MXCSR_DAZ) != 0; }
// @ts-ignore: decorator
@inline export function masked(flag: i32): bool { return ((curMxcsr >> MXCSR_MASK_SHIFT) & flag) != 0; }
