// MMX, SSE and SSE2 instructions (0F-map opcodes with the 66/F2/F3 mandatory prefixes): operand
// decoding, the CR0/CR4 availability rules (#UD/#NM) and the register file; the lane arithmetic is
// the library in wasm/cpu/simd/. Forms: wasm/cpu/isa-table-fpu.ts (families sse, sse-int, mmx).
import { raiseUD } from '../fault';

/** Set when the current opcode has no handler here yet (the run loop counts it as unimplemented). */
export let sseUnimplemented: bool = false;
export function clearSseUnimplemented(): void { sseUnimplemented = false; }

/** Every 0F-map MMX/SSE/SSE2 opcode is routed here by execute.ts. */
export function sseDispatch(): void {
  sseUnimplemented = true;
  raiseUD();
}
