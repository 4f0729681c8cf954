//! AVX2 kernel (with FMA and F16C: x86-64-v3): each tile is handled as two halves of 8 rows
//! (the low and high 32 bytes of every 64-byte line). `pmaddubsw` multiplies unsigned codes
//! with signed activation codes into i16 pairs and `pmaddwd` widens them to the rows' i32
//! lanes; Q8_0's signed codes use the sign trick (`|w|` times `x` with `w`'s sign), so no sum
//! can saturate the i16 pairs (at most 2 x 128 x 127).

use super::act::XBlock;
use super::format::Format;
use super::pack::ROWS;
use std::arch::x86_64::*;

/// See [`super::scalar::group`]; needs AVX2, FMA and F16C.
///
/// # Safety
/// The CPU must support avx2, fma and f16c; `tiles` holds whole tiles of `fmt` and every
/// `xs[t]` at least as many blocks.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn group<const T: usize>(
    fmt: Format,
    tiles: &[u8],
    xs: [&[XBlock]; T],
) -> [[f32; ROWS]; T] {
    match fmt {
        Format::Q4_0 => group_f::<T, 4, 8, false, false, true>(fmt, tiles, xs),
        Format::Q4_1 => group_f::<T, 4, 0, true, false, true>(fmt, tiles, xs),
        Format::Q5_0 => group_f::<T, 5, 16, false, false, true>(fmt, tiles, xs),
        Format::Q8_0 => group_f::<T, 8, 0, false, false, true>(fmt, tiles, xs),
        Format::Q4K => group_f::<T, 4, 0, true, false, false>(fmt, tiles, xs),
        Format::Q6K => group_f::<T, 6, 32, false, true, false>(fmt, tiles, xs),
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn group_f<
    const T: usize,
    const BITS: u32,
    const OFF: i32,
    const MIN: bool,
    const H: bool,
    const F16: bool,
>(
    fmt: Format,
    tiles: &[u8],
    xs: [&[XBlock]; T],
) -> [[f32; ROWS]; T] {
    let l = fmt.layout();
    let nb = tiles.len() / l.bytes;
    for x in &xs {
        assert!(x.len() >= nb, "activation row shorter than the weight row");
    }
    let ones = _mm256_set1_epi16(1);
    let mut out = [[0f32; ROWS]; T];
    for half in 0..2 {
        let mut acc = [_mm256_setzero_ps(); T];
        for b in 0..nb {
            // SAFETY: b < nb, so the tile is inside `tiles`.
            let p = tiles.as_ptr().add(b * l.bytes);
            let w = codes::<BITS>(p.add(32 * half));
            let d0 = scales::<F16>(p.add(l.d), half);
            let d1 = if H {
                scales::<false>(p.add(l.d2), half)
            } else {
                d0
            };
            let m = if MIN {
                scales::<F16>(p.add(l.m), half)
            } else {
                _mm256_setzero_ps()
            };
            for t in 0..T {
                // SAFETY: b < nb <= xs[t].len() (asserted above).
                let x = xs[t].get_unchecked(b);
                let xp = x.qs.as_ptr() as *const i32;
                let mut i = [_mm256_setzero_si256(); 2];
                for pair in 0..4 {
                    let mut s = _mm256_setzero_si256();
                    for c in [2 * pair, 2 * pair + 1] {
                        let xv = _mm256_set1_epi32(xp.add(c).read_unaligned());
                        let prod = if BITS == 8 {
                            _mm256_maddubs_epi16(
                                _mm256_sign_epi8(w[c], w[c]),
                                _mm256_sign_epi8(xv, w[c]),
                            )
                        } else {
                            _mm256_maddubs_epi16(w[c], xv)
                        };
                        s = if BITS == 8 {
                            // Widen each product pair alone (two could overflow i16).
                            _mm256_add_epi32(s, _mm256_madd_epi16(prod, ones))
                        } else {
                            // 2 x 2 x 63 x 127 < 2^15: two chunks share one i16 sum.
                            _mm256_add_epi16(s, prod)
                        };
                    }
                    let s = if BITS == 8 {
                        s
                    } else {
                        _mm256_madd_epi16(s, ones)
                    };
                    i[pair / 2] = _mm256_add_epi32(i[pair / 2], s);
                }
                let f = if H {
                    let i0 = _mm256_sub_epi32(i[0], _mm256_set1_epi32(OFF * x.s_lo));
                    let i1 = _mm256_sub_epi32(i[1], _mm256_set1_epi32(OFF * x.s_hi()));
                    _mm256_fmadd_ps(
                        _mm256_cvtepi32_ps(i1),
                        d1,
                        _mm256_mul_ps(_mm256_cvtepi32_ps(i0), d0),
                    )
                } else {
                    let i = _mm256_sub_epi32(
                        _mm256_add_epi32(i[0], i[1]),
                        _mm256_set1_epi32(OFF * x.s),
                    );
                    _mm256_mul_ps(_mm256_cvtepi32_ps(i), d0)
                };
                acc[t] = _mm256_fmadd_ps(f, _mm256_set1_ps(x.d), acc[t]);
                if MIN {
                    acc[t] = _mm256_fmadd_ps(m, _mm256_set1_ps(x.ds), acc[t]);
                }
            }
        }
        for t in 0..T {
            _mm256_storeu_ps(out[t].as_mut_ptr().add(8 * half), acc[t]);
        }
    }
    out
}

/// 8 scales of half `half` of the 16 at `p`: f16 bits or f32.
#[target_feature(enable = "avx2,f16c")]
#[inline]
unsafe fn scales<const F16: bool>(p: *const u8, half: usize) -> __m256 {
    if F16 {
        _mm256_cvtph_ps(_mm_loadu_si128(p.add(16 * half) as *const __m128i))
    } else {
        _mm256_loadu_ps((p as *const f32).add(8 * half))
    }
}

#[target_feature(enable = "avx2")]
#[inline]
unsafe fn line(p: *const u8, i: usize) -> __m256i {
    _mm256_loadu_si256(p.add(64 * i) as *const __m256i)
}

/// The 8 code vectors of one half tile (`p` already offset by the half): unsigned codes, or
/// Q8_0's signed codes as stored.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn codes<const BITS: u32>(p: *const u8) -> [__m256i; 8] {
    let mut w = [_mm256_setzero_si256(); 8];
    if BITS == 8 {
        for (c, w) in w.iter_mut().enumerate() {
            *w = line(p, c);
        }
        return w;
    }
    let low = _mm256_set1_epi8(15);
    for j in 0..4 {
        let v = line(p, j);
        w[j] = _mm256_and_si256(v, low);
        w[j + 4] = _mm256_and_si256(_mm256_srli_epi16::<4>(v), low);
    }
    if BITS == 5 {
        let h = line(p, 4);
        let sixteen = _mm256_set1_epi8(16);
        for (c, w) in w.iter_mut().enumerate() {
            let bit = _mm256_set1_epi8((1u8 << c) as i8);
            let set = _mm256_cmpeq_epi8(_mm256_and_si256(h, bit), bit);
            *w = _mm256_or_si256(*w, _mm256_and_si256(set, sixteen));
        }
    }
    if BITS == 6 {
        let m = _mm256_set1_epi8(0x30);
        for (half, h) in [line(p, 4), line(p, 5)].into_iter().enumerate() {
            let hs = [
                _mm256_slli_epi16::<4>(h),
                _mm256_slli_epi16::<2>(h),
                h,
                _mm256_srli_epi16::<2>(h),
            ];
            for (c, hs) in hs.into_iter().enumerate() {
                let i = 4 * half + c;
                w[i] = _mm256_or_si256(w[i], _mm256_and_si256(hs, m));
            }
        }
    }
    w
}
