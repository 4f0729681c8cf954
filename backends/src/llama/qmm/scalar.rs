//! The portable kernel: plain Rust over the tile layout, the reference the SIMD kernels are
//! tested against. Its float operations are the SIMD kernels' in the same order (integer dot
//! products per block, then `f = i * d`, `acc = f * dx + acc` fused, `acc = m * dx s + acc`
//! fused), so every instruction set gives bit-identical results.

use super::act::XBlock;
use super::format::Format;
use super::pack::{read_tile, ROWS};

/// Dot products of the 16 rows of one group (`tiles`: its blocks in order) with `T`
/// activation rows: `out[t][r]`.
pub fn group<const T: usize>(fmt: Format, tiles: &[u8], xs: [&[XBlock]; T]) -> [[f32; ROWS]; T] {
    let l = fmt.layout();
    let mut acc = [[0f32; ROWS]; T];
    for (b, tile) in tiles.chunks_exact(l.bytes).enumerate() {
        for r in 0..ROWS {
            let u = read_tile(fmt, tile, r);
            let code = |i: usize| -> i32 {
                if fmt.bits() == 8 {
                    u.q[i] as i8 as i32
                } else {
                    u.q[i] as i32
                }
            };
            for (acc, x) in acc.iter_mut().zip(&xs) {
                let x = &x[b];
                let dot = |range: std::ops::Range<usize>| -> i32 {
                    range.map(|i| code(i) * x.qs[i] as i32).sum()
                };
                let off = fmt.offset();
                let f = if fmt.halves() {
                    let i0 = dot(0..16) - off * x.s_lo;
                    let i1 = dot(16..32) - off * x.s_hi();
                    (i1 as f32).mul_add(u.d[1], i0 as f32 * u.d[0])
                } else {
                    (dot(0..32) - off * x.s) as f32 * u.d[0]
                };
                acc[r] = f.mul_add(x.d, acc[r]);
                if fmt.has_min() {
                    acc[r] = u.m.mul_add(x.ds, acc[r]);
                }
            }
        }
    }
    acc
}
