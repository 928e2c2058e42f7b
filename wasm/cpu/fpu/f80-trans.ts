// placeholder
export function f80F2xm1(dst: usize, a: usize, cw: u32): u32 { return 0; }
export function f80Yl2x(dst: usize, x: usize, y: usize, cw: u32): u32 { return 0; }
export function f80Yl2xp1(dst: usize, x: usize, y: usize, cw: u32): u32 { return 0; }
export function f80Ptan(dst: usize, a: usize, cw: u32): u32 { return 0; }
export function f80Patan(dst: usize, y: usize, x: usize, cw: u32): u32 { return 0; }
export function f80Sin(dst: usize, a: usize, cw: u32): u32 { return 0; }
export function f80Cos(dst: usize, a: usize, cw: u32): u32 { return 0; }
export function f80SinCos(dstSin: usize, dstCos: usize, a: usize, cw: u32): u32 { return 0; }
