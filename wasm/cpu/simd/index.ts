// The MMX / SSE / SSE2 operation library: pure functions over operands in linear memory, called by
// the 0F-map decoder. Conventions (pointers, widths, MXCSR in, flags out, faults): mxcsr.ts.
export * from './mxcsr';
export * from './integer';
export * from './shuffle';
export * from './float';
export * from './convert';
export { defaultNaN } from './softfloat';
