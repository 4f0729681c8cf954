//! The repacked weight layout the kernels read: rows in groups of [`ROWS`] and, per group and
//! 32-value block, one *tile* holding the codes of all 16 rows interleaved so that one 64-byte
//! vector carries 4 consecutive codes of each row (what `vpdpbusd`/`pmaddubsw` multiply with
//! 4 broadcast activation codes), followed by the high-bit planes and the 16 rows' scales.
//!
//! Tile layout (byte offsets; `r` row in the group, `e` 0..4, chunk `c` = values `4c..4c+4`):
//! - codes, 4/5/6-bit formats: 4 vectors `V_j` (j < 4), byte `4r + e` of `V_j` =
//!   `lo4(q[r][4j + e]) | lo4(q[r][4(j + 4) + e]) << 4`; 8-bit: 8 vectors, `V_c` byte `4r + e`
//!   = `q[r][4c + e]`;
//! - 5-bit: one vector, bit `c` of byte `4r + e` = bit 4 of `q[r][4c + e]`;
//! - 6-bit: two vectors (chunks 0..4 and 4..8), bits `2c'..2c'+2` of byte `4r + e` = bits 4..6
//!   of `q[r][4c + e]` (`c' = c mod 4`);
//! - scales of the 16 rows (f16 bits where the file has f16, else f32), then the second-half
//!   scales (Q6_K), then the minimums (Q4_1, Q4_K).
//!
//! Groups are stored one after the other, each as its blocks in order, so a thread working on
//! a group streams one contiguous range. Rows past `n` in the last group are zero.

use super::act::QK;
use super::format::{Format, UBlock};

/// Rows per group (one 512-bit vector of i32 lanes).
pub const ROWS: usize = 16;

/// A 64-byte line (the allocation unit, so tiles can be read with aligned vectors).
#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub struct Line(pub [u8; 64]);

/// Byte offsets inside a tile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TileLayout {
    /// Start of the high-bit plane(s).
    pub hi: usize,
    /// Start of the first scales.
    pub d: usize,
    /// Start of the second-half scales (equal to `d` when there are none).
    pub d2: usize,
    /// Start of the minimums.
    pub m: usize,
    /// Tile size.
    pub bytes: usize,
}

impl Format {
    /// Where things are in this format's tiles.
    pub const fn layout(self) -> TileLayout {
        let codes = if self.bits() == 8 { 512 } else { 256 };
        let hi_bytes = match self.bits() {
            5 => 64,
            6 => 128,
            _ => 0,
        };
        let scale = if self.f16_scales() { 2 } else { 4 } * ROWS;
        let d = codes + hi_bytes;
        let d2 = if self.halves() { d + scale } else { d };
        let m = d2 + scale;
        let bytes = m + if self.has_min() { scale } else { 0 };
        TileLayout {
            hi: codes,
            d,
            d2,
            m,
            bytes,
        }
    }
}

/// Writes the tile of 16 rows' blocks (`rows[r]`, missing rows zero) into `t`.
pub fn write_tile(fmt: Format, rows: &[Option<&UBlock>; ROWS], t: &mut [u8]) {
    let l = fmt.layout();
    debug_assert_eq!(t.len(), l.bytes);
    t.fill(0);
    for (r, u) in rows.iter().enumerate() {
        let Some(u) = u else { continue };
        for c in 0..8 {
            for e in 0..4 {
                let q = u.q[4 * c + e];
                let byte = 4 * r + e;
                match fmt.bits() {
                    8 => t[64 * c + byte] = q,
                    _ => {
                        t[64 * (c % 4) + byte] |= (q & 15) << (4 * (c / 4));
                        if fmt.bits() == 5 {
                            t[l.hi + byte] |= ((q >> 4) & 1) << c;
                        }
                        if fmt.bits() == 6 {
                            t[l.hi + 64 * (c / 4) + byte] |= ((q >> 4) & 3) << (2 * (c % 4));
                        }
                    }
                }
            }
        }
        if fmt.f16_scales() {
            put(t, l.d + 2 * r, &u.d16.to_le_bytes());
            if fmt.has_min() {
                put(t, l.m + 2 * r, &u.m16.to_le_bytes());
            }
        } else {
            put(t, l.d + 4 * r, &u.d[0].to_le_bytes());
            if fmt.halves() {
                put(t, l.d2 + 4 * r, &u.d[1].to_le_bytes());
            }
            if fmt.has_min() {
                put(t, l.m + 4 * r, &u.m.to_le_bytes());
            }
        }
    }
}

fn put(t: &mut [u8], at: usize, bytes: &[u8]) {
    t[at..at + bytes.len()].copy_from_slice(bytes);
}

/// Reads back row `r`'s block from a tile (dequantization of single rows: embedding lookups,
/// tests).
pub fn read_tile(fmt: Format, t: &[u8], r: usize) -> UBlock {
    let l = fmt.layout();
    let mut u = UBlock {
        q: [0; QK],
        d: [0.0; 2],
        m: 0.0,
        d16: 0,
        m16: 0,
    };
    for c in 0..8 {
        for e in 0..4 {
            let byte = 4 * r + e;
            u.q[4 * c + e] = match fmt.bits() {
                8 => t[64 * c + byte],
                bits => {
                    let mut q = (t[64 * (c % 4) + byte] >> (4 * (c / 4))) & 15;
                    if bits == 5 {
                        q |= ((t[l.hi + byte] >> c) & 1) << 4;
                    }
                    if bits == 6 {
                        q |= ((t[l.hi + 64 * (c / 4) + byte] >> (2 * (c % 4))) & 3) << 4;
                    }
                    q
                }
            };
        }
    }
    let f32_at = |at: usize| f32::from_le_bytes([t[at], t[at + 1], t[at + 2], t[at + 3]]);
    let u16_at = |at: usize| u16::from_le_bytes([t[at], t[at + 1]]);
    if fmt.f16_scales() {
        u.d16 = u16_at(l.d + 2 * r);
        let d = half::f16::from_bits(u.d16).to_f32();
        u.d = [d, d];
        if fmt.has_min() {
            u.m16 = u16_at(l.m + 2 * r);
            u.m = half::f16::from_bits(u.m16).to_f32();
        }
    } else {
        let d = f32_at(l.d + 4 * r);
        u.d = [
            d,
            if fmt.halves() {
                f32_at(l.d2 + 4 * r)
            } else {
                d
            },
        ];
        if fmt.has_min() {
            u.m = f32_at(l.m + 4 * r);
        }
    }
    u
}
