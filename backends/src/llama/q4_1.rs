//! A faster CPU matmul for Q4_1 GGUF weights. candle 0.11 has only a generic (scalar,
//! auto-vectorised) Q4_1 dot product on x86, which dominated SmolLM2 decode time; this
//! module repacks the blocks once at load time (scales as f32) and multiplies with an AVX2
//! kernel (`maddubs` on 4-bit × 8-bit, as llama.cpp does), falling back to scalar code on
//! CPUs without AVX2/FMA. Activations are quantized per 32-value block to 8 bits (llama.cpp's
//! Q8_1 scheme), so results match llama.cpp's arithmetic up to float rounding.

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Device, Result, Tensor};

const QK: usize = 32;

/// One Q4_1 block with its scale `d` and minimum `m` as f32: `w_i = d * q_i + m`.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
struct Block {
    d: f32,
    m: f32,
    /// Element `j` is `qs[j] & 15`, element `j + 16` is `qs[j] >> 4`.
    qs: [u8; 16],
}

/// An activation block: `x_i ≈ d * q_i`, `s = d * Σ q_i`.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(32))]
struct XBlock {
    qs: [i8; 32],
    d: f32,
    s: f32,
}

/// Rows interleaved per group, so one pass streams memory sequentially while computing
/// `GROUP` independent dot products that share each activation load.
const GROUP: usize = 4;

/// A Q4_1 weight matrix `(n, k)` ready for [`Q41Matrix::forward`].
#[derive(Debug)]
pub struct Q41Matrix {
    n: usize,
    k: usize,
    /// Groups of `GROUP` rows (the last padded with zero blocks); within a group, block `b`
    /// of row `j` is at `group_start + b * GROUP + j`.
    blocks: Vec<Block>,
}

impl Q41Matrix {
    /// Repacks a CPU Q4_1 tensor `(n, k)`; `None` for other dtypes/devices/shapes.
    pub fn from_qtensor(q: &QTensor) -> Result<Option<Q41Matrix>> {
        if q.dtype() != GgmlDType::Q4_1 || !q.device().is_cpu() {
            return Ok(None);
        }
        let Ok((n, k)) = q.shape().dims2() else {
            return Ok(None);
        };
        if k % QK != 0 {
            return Ok(None);
        }
        let data = q.data()?;
        let count = n * k / QK;
        if data.len() != count * 20 {
            candle_core::bail!(
                "Q4_1 tensor has {} bytes, expected {}",
                data.len(),
                count * 20
            );
        }
        // Scales and minimums are f16: convert them all at once through candle.
        let mut halves = Vec::with_capacity(count * 4);
        for b in data.chunks_exact(20) {
            halves.extend_from_slice(&b[..4]);
        }
        let dm = Tensor::from_raw_buffer(&halves, DType::F16, &[count * 2], &Device::Cpu)?
            .to_dtype(DType::F32)?
            .to_vec1::<f32>()?;
        let rows: Vec<Block> = data
            .chunks_exact(20)
            .zip(dm.chunks_exact(2))
            .map(|(b, dm)| {
                let mut qs = [0u8; 16];
                qs.copy_from_slice(&b[4..20]);
                Block {
                    d: dm[0],
                    m: dm[1],
                    qs,
                }
            })
            .collect();
        let nb = k / QK;
        let zero = Block {
            d: 0.0,
            m: 0.0,
            qs: [0; 16],
        };
        let mut blocks = Vec::with_capacity(n.div_ceil(GROUP) * GROUP * nb);
        for g in 0..n.div_ceil(GROUP) {
            for b in 0..nb {
                for j in 0..GROUP {
                    let r = g * GROUP + j;
                    blocks.push(if r < n { rows[r * nb + b] } else { zero });
                }
            }
        }
        Ok(Some(Q41Matrix { n, k, blocks }))
    }

    /// `(n, k)`.
    pub fn dims(&self) -> (usize, usize) {
        (self.n, self.k)
    }

    /// Bytes held (24 per 32 weights).
    pub fn bytes(&self) -> usize {
        self.blocks.len() * std::mem::size_of::<Block>()
    }

    /// `x (..., k)` f32 → `x W^T (..., n)` f32.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut out = Q41Matrix::forward_many(&[self], x)?;
        out.pop()
            .ok_or_else(|| candle_core::Error::Msg("q4_1 matmul produced no output".into()))
    }

    /// Several matrices applied to the same input (q/k/v, gate/up): the input is quantized
    /// once and all products run in one parallel region. All must have the same `k`.
    pub fn forward_many(mats: &[&Q41Matrix], x: &Tensor) -> Result<Vec<Tensor>> {
        let dims = x.dims().to_vec();
        let Some((&k, lead)) = dims.split_last() else {
            candle_core::bail!("q4_1 matmul needs at least one dimension");
        };
        if let Some(bad) = mats.iter().find(|w| w.k != k) {
            candle_core::bail!("q4_1 matmul: input has {k} columns, weight has {}", bad.k);
        }
        let m: usize = lead.iter().product();
        let xs = x.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        let nb = k / QK;
        let xq: Vec<XBlock> = xs.chunks_exact(QK).map(quantize_block).collect();
        let mut outs: Vec<Vec<f32>> = mats.iter().map(|w| vec![0f32; m * w.n]).collect();
        let dsts: Vec<SharedOut> = outs.iter_mut().map(|o| SharedOut(o.as_mut_ptr())).collect();
        // Work items are row groups numbered across all matrices.
        let mut first_group = Vec::with_capacity(mats.len() + 1);
        first_group.push(0);
        for w in mats {
            first_group.push(first_group.last().copied().unwrap_or(0) + w.n.div_ceil(GROUP));
        }
        let total = first_group.last().copied().unwrap_or(0);
        let avx2 = has_avx2();
        let work = |groups: std::ops::Range<usize>| {
            for global in groups {
                let which = first_group.partition_point(|&f| f <= global) - 1;
                let (w, dst, g) = (mats[which], dsts[which], global - first_group[which]);
                let blocks = &w.blocks[g * GROUP * nb..(g + 1) * GROUP * nb];
                for i in 0..m {
                    let v = dot_group(blocks, &xq[i * nb..(i + 1) * nb], avx2);
                    for (j, v) in v.into_iter().enumerate() {
                        let r = g * GROUP + j;
                        if r < w.n {
                            // SAFETY: each (matrix, i, r) is written by exactly one work item
                            // (groups are partitioned between threads); `outs` outlives the call.
                            unsafe { dst.write(i * w.n + r, v) };
                        }
                    }
                }
            }
        };
        let macs: usize = mats.iter().map(|w| m * w.n * nb).sum();
        if macs < 4096 {
            work(0..total);
        } else {
            candle_core::utils::barrier_pool().execute_chunked(total, work);
        }
        outs.into_iter()
            .zip(mats)
            .map(|(o, w)| {
                let mut out_dims = lead.to_vec();
                out_dims.push(w.n);
                Tensor::from_vec(o, out_dims, x.device())
            })
            .collect()
    }
}

/// Output pointer shared by the worker threads, each writing disjoint elements.
#[derive(Clone, Copy)]
struct SharedOut(*mut f32);
// SAFETY: only used for writes to disjoint indices while the buffer is alive.
unsafe impl Sync for SharedOut {}
unsafe impl Send for SharedOut {}
impl SharedOut {
    unsafe fn write(self, i: usize, v: f32) {
        *self.0.add(i) = v;
    }
}

fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::sync::OnceLock;
        static AVX2: OnceLock<bool> = OnceLock::new();
        *AVX2.get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Dot products of one row group (`GROUP * nb` interleaved blocks) with one activation row.
#[inline]
fn dot_group(w: &[Block], x: &[XBlock], avx2: bool) -> [f32; GROUP] {
    #[cfg(target_arch = "x86_64")]
    {
        if avx2 {
            // SAFETY: AVX2 and FMA were detected at run time.
            return unsafe { dot_group_avx2(w, x) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = avx2;
    dot_group_scalar(w, x)
}

fn quantize_block(x: &[f32]) -> XBlock {
    let amax = x.iter().fold(0f32, |a, v| a.max(v.abs()));
    let d = amax / 127.0;
    let id = if d > 0.0 { 1.0 / d } else { 0.0 };
    let mut qs = [0i8; 32];
    let mut sum = 0i32;
    for (q, &v) in qs.iter_mut().zip(x) {
        *q = (v * id).round() as i8;
        sum += *q as i32;
    }
    XBlock {
        qs,
        d,
        s: d * sum as f32,
    }
}

fn dot_group_scalar(w: &[Block], x: &[XBlock]) -> [f32; GROUP] {
    let mut acc = [0f32; GROUP];
    for (wb, x) in w.chunks_exact(GROUP).zip(x) {
        for (acc, w) in acc.iter_mut().zip(wb) {
            let mut sumi = 0i32;
            for j in 0..16 {
                sumi += (w.qs[j] & 15) as i32 * x.qs[j] as i32;
                sumi += (w.qs[j] >> 4) as i32 * x.qs[j + 16] as i32;
            }
            *acc += sumi as f32 * w.d * x.d + w.m * x.s;
        }
    }
    acc
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_group_avx2(w: &[Block], x: &[XBlock]) -> [f32; GROUP] {
    use std::arch::x86_64::*;
    // Makes the unchecked block reads below in bounds.
    assert!(w.len() >= x.len() * GROUP);
    let low = _mm_set1_epi8(15);
    let ones = _mm256_set1_epi16(1);
    let mut acc = [_mm256_setzero_ps(); GROUP];
    let mut mins = [0f32; GROUP];
    for (b, xb) in x.iter().enumerate() {
        let q8 = _mm256_load_si256(xb.qs.as_ptr() as *const __m256i);
        for j in 0..GROUP {
            // SAFETY: b * GROUP + j < x.len() * GROUP <= w.len() (asserted above).
            let wb = w.get_unchecked(b * GROUP + j);
            let bytes = _mm_loadu_si128(wb.qs.as_ptr() as *const __m128i);
            let lo = _mm_and_si128(bytes, low);
            let hi = _mm_and_si128(_mm_srli_epi16(bytes, 4), low);
            let q4 = _mm256_set_m128i(hi, lo);
            let p = _mm256_madd_epi16(_mm256_maddubs_epi16(q4, q8), ones);
            let scale = _mm256_set1_ps(wb.d * xb.d);
            acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), scale, acc[j]);
            mins[j] += wb.m * xb.s;
        }
    }
    let mut out = [0f32; GROUP];
    for j in 0..GROUP {
        let a = acc[j];
        let s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        out[j] = _mm_cvtss_f32(s) + mins[j];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::QMatMul;
    use candle_core::Module;

    #[test]
    fn matches_candle_q4_1_and_dense() {
        let dev = Device::Cpu;
        let w: Vec<f32> = (0..96 * 64)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 40.0)
            .collect();
        let w = Tensor::from_vec(w, (96, 64), &dev).unwrap();
        let q = QTensor::quantize(&w, GgmlDType::Q4_1).unwrap();
        let ours = Q41Matrix::from_qtensor(&q).unwrap().unwrap();
        assert_eq!(ours.dims(), (96, 64));
        let x: Vec<f32> = (0..3 * 64)
            .map(|i| ((i * 13 % 29) as f32 - 14.0) / 7.0)
            .collect();
        let x = Tensor::from_vec(x, (1, 3, 64), &dev).unwrap();
        let got = ours.forward(&x).unwrap();
        let theirs = QMatMul::from_qtensor(q).unwrap().forward(&x).unwrap();
        let dense = x.broadcast_matmul(&w.t().unwrap()).unwrap();
        let diff = |a: &Tensor, b: &Tensor| {
            let d = (a - b).unwrap().abs().unwrap().max_all().unwrap();
            d.to_scalar::<f32>().unwrap()
        };
        assert_eq!(got.dims(), &[1, 3, 96]);
        assert!(
            diff(&got, &theirs) < 1e-3,
            "vs candle {}",
            diff(&got, &theirs)
        );
        // 4-bit weights: close to the dense product relative to its size
        let scale = dense
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(
            diff(&got, &dense) < 0.1 * scale,
            "vs dense {}",
            diff(&got, &dense)
        );
        // scalar and SIMD agree
        let xq: Vec<XBlock> = x
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .chunks_exact(32)
            .map(quantize_block)
            .collect();
        let w = &ours.blocks[..2 * GROUP];
        let a = dot_group_scalar(w, &xq[..2]);
        let b = dot_group(w, &xq[..2], has_avx2());
        let d = a
            .iter()
            .zip(&b)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(d < 1e-4, "{a:?} vs {b:?}");
    }

    #[test]
    fn ragged_row_counts_are_padded() {
        // (candle's reference Q4_1 kernel needs an even number of blocks per row)
        let w: Vec<f32> = (0..7 * 64).map(|i| (i % 11) as f32 - 5.0).collect();
        let w = Tensor::from_vec(w, (7, 64), &Device::Cpu).unwrap();
        let q = QTensor::quantize(&w, GgmlDType::Q4_1).unwrap();
        let ours = Q41Matrix::from_qtensor(&q).unwrap().unwrap();
        let x = Tensor::ones((2, 64), DType::F32, &Device::Cpu).unwrap();
        let got = ours.forward(&x).unwrap();
        let want = QMatMul::from_qtensor(q).unwrap().forward(&x).unwrap();
        assert_eq!(got.dims(), &[2, 7]);
        // candle keeps activation scales and sums in f16 (we keep f32): compare relatively
        let scale = want
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let d = (got - want).unwrap().abs().unwrap().max_all().unwrap();
        let d = d.to_scalar::<f32>().unwrap();
        assert!(d < 5e-3 * scale, "diff {d} scale {scale}");
    }

    #[test]
    fn forward_many_equals_separate_products() {
        let dev = Device::Cpu;
        let mk = |n: usize, seed: usize| {
            let w: Vec<f32> = (0..n * 64)
                .map(|i| ((i * seed) % 17) as f32 - 8.0)
                .collect();
            let w = Tensor::from_vec(w, (n, 64), &dev).unwrap();
            let q = QTensor::quantize(&w, GgmlDType::Q4_1).unwrap();
            Q41Matrix::from_qtensor(&q).unwrap().unwrap()
        };
        let (a, b, c) = (mk(40, 3), mk(9, 5), mk(128, 7));
        let x = Tensor::from_vec(
            (0..3 * 64).map(|i| (i % 5) as f32).collect::<Vec<_>>(),
            (3, 64),
            &dev,
        )
        .unwrap();
        let many = Q41Matrix::forward_many(&[&a, &b, &c], &x).unwrap();
        for (got, w) in many.iter().zip([&a, &b, &c]) {
            let want = w.forward(&x).unwrap();
            assert_eq!(got.dims(), want.dims());
            let d = (got - want).unwrap().abs().unwrap().max_all().unwrap();
            assert_eq!(d.to_scalar::<f32>().unwrap(), 0.0);
        }
        assert!(
            Q41Matrix::forward_many(&[&a], &Tensor::zeros((1, 32), DType::F32, &dev).unwrap())
                .is_err()
        );
    }

    #[test]
    fn other_dtypes_are_left_to_candle() {
        let w = Tensor::zeros((32, 32), DType::F32, &Device::Cpu).unwrap();
        let q = QTensor::quantize(&w, GgmlDType::Q8_0).unwrap();
        assert!(Q41Matrix::from_qtensor(&q).unwrap().is_none());
    }
}
