//! The GGUF block formats the fast kernels read, and their decoding into one intermediate
//! form: per row and per 32 values, unsigned integer codes `q` with `w = d_h (q - offset) + m`
//! (`d_h` one scale per 16-value half, `m` an additive minimum). Every supported format maps
//! onto this form exactly (k-quant sub-block scales are products of an f16 and a 6- or 8-bit
//! integer, which f32 holds without rounding), so the kernels need one arithmetic for all.
//!
//! Layouts follow ggml (`ggml-common.h`): Q4_0 `{d, qs[16]}`, Q4_1 `{d, m, qs[16]}`, Q5_0
//! `{d, qh[4], qs[16]}`, Q8_0 `{d, qs[32]}`, Q4_K `{d, dmin, scales[12], qs[128]}` per 256,
//! Q6_K `{ql[128], qh[64], scales[16], d}` per 256.

use candle_core::quantized::GgmlDType;
use half::f16;

/// A weight format with a fast kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// 4-bit codes, one f16 scale per 32 values, offset 8.
    Q4_0,
    /// 4-bit codes, f16 scale and minimum per 32 values.
    Q4_1,
    /// 5-bit codes, one f16 scale per 32 values, offset 16 (Q4_K_M's fallback).
    Q5_0,
    /// Signed 8-bit codes, one f16 scale per 32 values.
    Q8_0,
    /// k-quant: 4-bit codes in 256-value super-blocks, 6-bit sub-block scales and minimums.
    Q4K,
    /// k-quant: 6-bit codes in 256-value super-blocks, 8-bit scales per 16 values.
    Q6K,
}

/// One 32-value block of one row in the intermediate form.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UBlock {
    /// Codes: 0..16 (4-bit), 0..32 (5-bit), 0..64 (6-bit) or the i8 bits of Q8_0.
    pub q: [u8; 32],
    /// Scale of values 0..16 and 16..32.
    pub d: [f32; 2],
    /// Added to every value (Q4_1 minimum, minus the Q4_K sub-block minimum).
    pub m: f32,
    /// Raw f16 bits of `d` for formats that store f16 scales (kept bit-exact).
    pub d16: u16,
    /// Raw f16 bits of `m` (Q4_1).
    pub m16: u16,
}

impl Format {
    /// Every format, in a fixed order (tests, reports).
    pub const ALL: [Format; 6] = [
        Format::Q4_0,
        Format::Q4_1,
        Format::Q5_0,
        Format::Q8_0,
        Format::Q4K,
        Format::Q6K,
    ];

    /// The format of a ggml type, `None` where no fast kernel exists.
    pub fn from_ggml(t: GgmlDType) -> Option<Format> {
        Some(match t {
            GgmlDType::Q4_0 => Format::Q4_0,
            GgmlDType::Q4_1 => Format::Q4_1,
            GgmlDType::Q5_0 => Format::Q5_0,
            GgmlDType::Q8_0 => Format::Q8_0,
            GgmlDType::Q4K => Format::Q4K,
            GgmlDType::Q6K => Format::Q6K,
            _ => return None,
        })
    }

    /// The ggml type.
    pub fn ggml(self) -> GgmlDType {
        match self {
            Format::Q4_0 => GgmlDType::Q4_0,
            Format::Q4_1 => GgmlDType::Q4_1,
            Format::Q5_0 => GgmlDType::Q5_0,
            Format::Q8_0 => GgmlDType::Q8_0,
            Format::Q4K => GgmlDType::Q4K,
            Format::Q6K => GgmlDType::Q6K,
        }
    }

    /// Lower-case ggml name (`q4_1`, `q4k` ...), as the `quant` axis spells it.
    pub fn name(self) -> &'static str {
        match self {
            Format::Q4_0 => "q4_0",
            Format::Q4_1 => "q4_1",
            Format::Q5_0 => "q5_0",
            Format::Q8_0 => "q8_0",
            Format::Q4K => "q4k",
            Format::Q6K => "q6k",
        }
    }

    /// Values per GGUF block (a row's length must be a multiple).
    pub const fn block_values(self) -> usize {
        match self {
            Format::Q4K | Format::Q6K => 256,
            _ => 32,
        }
    }

    /// Bytes per GGUF block.
    pub const fn block_bytes(self) -> usize {
        match self {
            Format::Q4_0 => 18,
            Format::Q4_1 => 20,
            Format::Q5_0 => 22,
            Format::Q8_0 => 34,
            Format::Q4K => 144,
            Format::Q6K => 210,
        }
    }

    /// Bits per code in the intermediate form.
    pub const fn bits(self) -> u32 {
        match self {
            Format::Q4_0 | Format::Q4_1 | Format::Q4K => 4,
            Format::Q5_0 => 5,
            Format::Q6K => 6,
            Format::Q8_0 => 8,
        }
    }

    /// Subtracted from the unsigned codes (0 for Q8_0, whose codes are signed).
    pub const fn offset(self) -> i32 {
        match self {
            Format::Q4_0 => 8,
            Format::Q5_0 => 16,
            Format::Q6K => 32,
            _ => 0,
        }
    }

    /// True when blocks carry an additive minimum.
    pub const fn has_min(self) -> bool {
        matches!(self, Format::Q4_1 | Format::Q4K)
    }

    /// True when the two 16-value halves of a block have their own scales.
    pub const fn halves(self) -> bool {
        matches!(self, Format::Q6K)
    }

    /// True when scales (and minimums) are stored as the file's f16 bits; k-quant scales
    /// are f32 products.
    pub const fn f16_scales(self) -> bool {
        matches!(
            self,
            Format::Q4_0 | Format::Q4_1 | Format::Q5_0 | Format::Q8_0
        )
    }

    /// Decodes the blocks of one row (`data` holds exactly that row) into 32-value blocks.
    pub fn decode_row(self, data: &[u8], out: &mut Vec<UBlock>) {
        for b in data.chunks_exact(self.block_bytes()) {
            match self {
                Format::Q4_0 | Format::Q4_1 | Format::Q5_0 | Format::Q8_0 => {
                    out.push(self.decode_small(b))
                }
                Format::Q4K => decode_q4k(b, out),
                Format::Q6K => decode_q6k(b, out),
            }
        }
    }

    fn decode_small(self, b: &[u8]) -> UBlock {
        let h = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        let d16 = h(0);
        let d = f16::from_bits(d16).to_f32();
        let mut u = UBlock {
            q: [0; 32],
            d: [d, d],
            m: 0.0,
            d16,
            m16: 0,
        };
        match self {
            Format::Q4_0 | Format::Q4_1 => {
                let qs = if self == Format::Q4_1 {
                    u.m16 = h(2);
                    u.m = f16::from_bits(u.m16).to_f32();
                    &b[4..20]
                } else {
                    &b[2..18]
                };
                for (j, &q) in qs.iter().enumerate().take(16) {
                    u.q[j] = q & 15;
                    u.q[j + 16] = q >> 4;
                }
            }
            Format::Q5_0 => {
                let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
                let qs = &b[6..22];
                for (j, &q) in qs.iter().enumerate() {
                    u.q[j] = (q & 15) | ((((qh >> j) & 1) as u8) << 4);
                    u.q[j + 16] = (q >> 4) | ((((qh >> (j + 16)) & 1) as u8) << 4);
                }
            }
            _ => u.q.copy_from_slice(&b[2..34]),
        }
        u
    }

    /// The value of code `q` in block `u`, element `i` (the dequantized weight).
    pub fn value(self, u: &UBlock, i: usize) -> f32 {
        let q = if self == Format::Q8_0 {
            u.q[i] as i8 as i32
        } else {
            u.q[i] as i32 - self.offset()
        };
        u.d[i / 16] * q as f32 + u.m
    }
}

/// ggml's 6-bit scale and minimum of sub-block `j` (0..8) of a Q4_K/Q5_K super-block.
fn scale_min_k4(j: usize, s: &[u8]) -> (u8, u8) {
    if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        (
            (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4),
            (s[j + 4] >> 4) | ((s[j] >> 6) << 4),
        )
    }
}

fn decode_q4k(b: &[u8], out: &mut Vec<UBlock>) {
    let d = f16::from_le_bytes([b[0], b[1]]).to_f32();
    let dmin = f16::from_le_bytes([b[2], b[3]]).to_f32();
    let scales = &b[4..16];
    let qs = &b[16..144];
    for j in 0..8 {
        let (sc, m) = scale_min_k4(j, scales);
        // Sub-block j: low nibbles (even j) or high nibbles (odd j) of 32 bytes.
        let bytes = &qs[(j / 2) * 32..(j / 2) * 32 + 32];
        let mut q = [0u8; 32];
        for (q, &x) in q.iter_mut().zip(bytes) {
            *q = if j % 2 == 0 { x & 15 } else { x >> 4 };
        }
        let ds = d * sc as f32;
        out.push(UBlock {
            q,
            d: [ds, ds],
            m: -(dmin * m as f32),
            d16: 0,
            m16: 0,
        });
    }
}

fn decode_q6k(b: &[u8], out: &mut Vec<UBlock>) {
    let (ql, qh, sc) = (&b[0..128], &b[128..192], &b[192..208]);
    let d = f16::from_le_bytes([b[208], b[209]]).to_f32();
    let mut vals = [0u8; 256];
    for n in 0..2 {
        let (ql, qh, y) = (&ql[64 * n..], &qh[32 * n..], &mut vals[128 * n..]);
        for l in 0..32 {
            y[l] = (ql[l] & 15) | ((qh[l] & 3) << 4);
            y[l + 32] = (ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4);
            y[l + 64] = (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4);
            y[l + 96] = (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4);
        }
    }
    for j in 0..8 {
        let mut q = [0u8; 32];
        q.copy_from_slice(&vals[32 * j..32 * j + 32]);
        // Scales per 16 values: sub-blocks 2j and 2j + 1.
        let s = |i: usize| d * (sc[i] as i8) as f32;
        out.push(UBlock {
            q,
            d: [s(2 * j), s(2 * j + 1)],
            m: 0.0,
            d16: 0,
            m16: 0,
        });
    }
}
