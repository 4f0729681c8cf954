//! AVX-512 kernel (F + BW + VNNI): one `vpdpbusd` multiplies 4 codes of each of the 16 rows
//! with 4 broadcast activation codes and adds them to the rows' i32 lanes. Codes are unsigned
//! (Q8_0's signed codes are flipped to `q + 128` on load and the offset corrects it), so the
//! per-block offset term `-offset * Σx` is the accumulator's start value. Each weight tile is
//! unpacked once and used for `T` activation rows (the prefill GEMM's register blocking).

use super::act::XBlock;
use super::format::Format;
use super::pack::ROWS;
use std::arch::x86_64::*;

/// See [`super::scalar::group`]; needs AVX-512 F/BW/VNNI.
///
/// # Safety
/// The CPU must support avx512f, avx512bw and avx512vnni; `tiles` holds whole tiles of `fmt`
/// and every `xs[t]` at least as many blocks.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
pub unsafe fn group<const T: usize>(
    fmt: Format,
    tiles: &[u8],
    xs: [&[XBlock]; T],
) -> [[f32; ROWS]; T] {
    match fmt {
        Format::Q4_0 => group_f::<T, 4, 8, false, false, true>(fmt, tiles, xs),
        Format::Q4_1 => group_f::<T, 4, 0, true, false, true>(fmt, tiles, xs),
        Format::Q5_0 => group_f::<T, 5, 16, false, false, true>(fmt, tiles, xs),
        Format::Q8_0 => group_f::<T, 8, 128, false, false, true>(fmt, tiles, xs),
        Format::Q4K => group_f::<T, 4, 0, true, false, false>(fmt, tiles, xs),
        Format::Q6K => group_f::<T, 6, 32, false, true, false>(fmt, tiles, xs),
    }
}

/// The kernel for one format, its properties as constants (`OFF`: the code offset as this
/// kernel sees the codes; `H`: per-half scales; `F16`: f16 scales).
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
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
    let mut acc = [_mm512_setzero_ps(); T];
    for b in 0..nb {
        // SAFETY: b < nb, so the tile is inside `tiles`.
        let p = tiles.as_ptr().add(b * l.bytes);
        let w = codes::<BITS>(p);
        let d0 = scales::<F16>(p.add(l.d));
        let d1 = if H {
            _mm512_loadu_ps(p.add(l.d2) as *const f32)
        } else {
            d0
        };
        let m = if MIN {
            scales::<F16>(p.add(l.m))
        } else {
            _mm512_setzero_ps()
        };
        for t in 0..T {
            // SAFETY: b < nb <= xs[t].len() (asserted above).
            let x = xs[t].get_unchecked(b);
            let xp = x.qs.as_ptr() as *const i32;
            let (mut i0, mut i1) = if H {
                (
                    _mm512_set1_epi32(-OFF * x.s_lo),
                    _mm512_set1_epi32(-OFF * x.s_hi()),
                )
            } else {
                (_mm512_set1_epi32(-OFF * x.s), _mm512_setzero_si512())
            };
            for c in 0..4 {
                i0 = _mm512_dpbusd_epi32(i0, w[c], _mm512_set1_epi32(xp.add(c).read_unaligned()));
                i1 = _mm512_dpbusd_epi32(
                    i1,
                    w[c + 4],
                    _mm512_set1_epi32(xp.add(c + 4).read_unaligned()),
                );
            }
            let f = if H {
                _mm512_fmadd_ps(
                    _mm512_cvtepi32_ps(i1),
                    d1,
                    _mm512_mul_ps(_mm512_cvtepi32_ps(i0), d0),
                )
            } else {
                _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(i0, i1)), d0)
            };
            acc[t] = _mm512_fmadd_ps(f, _mm512_set1_ps(x.d), acc[t]);
            if MIN {
                acc[t] = _mm512_fmadd_ps(m, _mm512_set1_ps(x.ds), acc[t]);
            }
        }
    }
    let mut out = [[0f32; ROWS]; T];
    for t in 0..T {
        _mm512_storeu_ps(out[t].as_mut_ptr(), acc[t]);
    }
    out
}

/// 16 scales at `p`: f16 bits or f32.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn scales<const F16: bool>(p: *const u8) -> __m512 {
    if F16 {
        _mm512_cvtph_ps(_mm256_loadu_si256(p as *const __m256i))
    } else {
        _mm512_loadu_ps(p as *const f32)
    }
}

#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn line(p: *const u8, i: usize) -> __m512i {
    _mm512_loadu_si512(p.add(64 * i) as *const __m512i)
}

/// The 8 code vectors of a tile (chunk `c` = values `4c..4c+4` of each row), as unsigned bytes.
#[target_feature(enable = "avx512f,avx512bw")]
#[inline]
unsafe fn codes<const BITS: u32>(p: *const u8) -> [__m512i; 8] {
    let mut w = [_mm512_setzero_si512(); 8];
    if BITS == 8 {
        let flip = _mm512_set1_epi8(-128);
        for (c, w) in w.iter_mut().enumerate() {
            *w = _mm512_xor_si512(line(p, c), flip);
        }
        return w;
    }
    let low = _mm512_set1_epi8(15);
    for j in 0..4 {
        let v = line(p, j);
        w[j] = _mm512_and_si512(v, low);
        w[j + 4] = _mm512_and_si512(_mm512_srli_epi16::<4>(v), low);
    }
    if BITS == 5 {
        let h = line(p, 4);
        let sixteen = _mm512_set1_epi8(16);
        for (c, w) in w.iter_mut().enumerate() {
            let k = _mm512_test_epi8_mask(h, _mm512_set1_epi8((1u8 << c) as i8));
            *w = _mm512_mask_add_epi8(*w, k, *w, sixteen);
        }
    }
    if BITS == 6 {
        let m = _mm512_set1_epi8(0x30);
        for (half, h) in [line(p, 4), line(p, 5)].into_iter().enumerate() {
            // Bits 2c'..2c'+2 of each byte moved to bits 4..6 (16-bit shifts never carry a
            // bit into position 4..6 of the neighbouring byte).
            let hs = [
                _mm512_slli_epi16::<4>(h),
                _mm512_slli_epi16::<2>(h),
                h,
                _mm512_srli_epi16::<2>(h),
            ];
            for (c, hs) in hs.into_iter().enumerate() {
                let i = 4 * half + c;
                w[i] = _mm512_or_si512(w[i], _mm512_and_si512(hs, m));
            }
        }
    }
    w
}
