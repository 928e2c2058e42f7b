// x87 FPU instructions (D8-DF, FWAIT) and FXSAVE/FXRSTOR: operand decoding, the register stack,
// tags, the status/control words, exceptions (#MF, FWAIT) and the CR0.EM/TS/MP rules; the 80-bit
// arithmetic is the library in wasm/cpu/fpu/. Forms: wasm/cpu/isa-table-fpu.ts (family x87).
import { raiseUD } from '../fault';

/** Set when the current opcode has no handler here yet (the run loop counts it as unimplemented). */
export let x87Unimplemented: bool = false;
export function clearX87Unimplemented(): void { x87Unimplemented = false; }

/** D8-DF. */
export function x87Dispatch(): void {
  x87Unimplemented = true;
  raiseUD();
}

/** 9B FWAIT/WAIT: #MF if an unmasked x87 exception is pending, #NM if CR0.MP and CR0.TS. */
export function x87Wait(): void {
  x87Unimplemented = true;
  raiseUD();
}

/** 0F AE /0 FXSAVE and /1 FXRSTOR (64-bit forms with REX.W), called from ops/sse.ts's 0F AE group. */
export function fxsave(): void { x87Unimplemented = true; raiseUD(); }
export function fxrstor(): void { x87Unimplemented = true; raiseUD(); }
