//! Activations quantized per 32-value block to 8 bits, as ggml quantizes them for its integer
//! dot products (`q8_0`/`q8_1`: one f32 scale per block, codes in -127..=127), with the code
//! sums the kernels need for offsets and minimums. One implementation for every instruction
//! set, so all kernels see the same codes.

/// Values per activation block (and per weight block of the intermediate form).
pub const QK: usize = 32;

/// One activation block: `x_i ≈ d * qs[i]`.
#[derive(Debug, Clone, Copy, PartialEq)]
#[repr(C, align(16))]
pub struct XBlock {
    /// Codes.
    pub qs: [i8; QK],
    /// Scale.
    pub d: f32,
    /// `d * s` (the term a weight minimum multiplies).
    pub ds: f32,
    /// Sum of all 32 codes.
    pub s: i32,
    /// Sum of the first 16 codes.
    pub s_lo: i32,
}

impl XBlock {
    /// Sum of the last 16 codes.
    pub fn s_hi(&self) -> i32 {
        self.s - self.s_lo
    }
}

/// Quantizes one block of 32 values (amax / 127 scale, round half to even).
pub fn quantize_block(x: &[f32]) -> XBlock {
    debug_assert_eq!(x.len(), QK);
    let amax = x.iter().fold(0f32, |a, v| a.max(v.abs()));
    let d = amax / 127.0;
    let id = if d > 0.0 { 1.0 / d } else { 0.0 };
    let mut qs = [0i8; QK];
    for (q, &v) in qs.iter_mut().zip(x) {
        // |v * id| <= 127 up to rounding; the clamp keeps NaN-free inputs in range.
        *q = (v * id).round_ties_even().clamp(-127.0, 127.0) as i8;
    }
    let s_lo: i32 = qs[..16].iter().map(|&q| q as i32).sum();
    let s = s_lo + qs[16..].iter().map(|&q| q as i32).sum::<i32>();
    XBlock {
        qs,
        d,
        ds: d * s as f32,
        s,
        s_lo,
    }
}

/// Quantizes rows of `k` values (`x.len()` a multiple of `k`, `k` a multiple of 32) into
/// `x.len() / 32` blocks, row after row.
pub fn quantize_rows(x: &[f32], out: &mut Vec<XBlock>) {
    out.clear();
    out.extend(x.chunks_exact(QK).map(quantize_block));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_worked_block() {
        let mut x = [0f32; 32];
        x[0] = 127.0; // scale 1
        x[1] = -63.5; // ties to even -> -64
        x[17] = 1.0;
        let b = quantize_block(&x);
        assert_eq!(b.d, 1.0);
        assert_eq!((b.qs[0], b.qs[1], b.qs[17]), (127, -64, 1));
        assert_eq!((b.s, b.s_lo, b.s_hi()), (64, 63, 1));
        assert_eq!(b.ds, b.d * 64.0);
        let z = quantize_block(&[0.0; 32]);
        assert_eq!((z.d, z.s, z.qs), (0.0, 0, [0; 32]));
    }
}
