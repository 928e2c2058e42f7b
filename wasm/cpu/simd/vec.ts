// Width-generic v128 access for MMX (8-byte) and XMM (16-byte) operands. Internal to simd/.

/** The operand as a v128; an MMX operand (w = 8) fills the low 8 bytes, the rest is zero. */
// @ts-ignore: decorator
@inline export function ldw(p: usize, w: i32): v128 {
  return w == 16 ? v128.load(p) : v128.load64_zero(p);
}

/** Store the low `w` bytes of `v`. */
// @ts-ignore: decorator
@inline export function stw(p: usize, v: v128, w: i32): void {
  if (w == 16) v128.store(p, v);
  else v128.store64_lane(p, v, 0);
}
