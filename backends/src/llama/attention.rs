//! Causal GQA attention of new query rows over every key and value seen so far.
//!
//! - [`causal_attention`]: candle tensor operations, differentiable, any dtype and device; at
//!   inference in blocks of [`QUERY_BLOCK`] query rows, each against the keys it may see.
//! - [`pool_attention`]: inference in f32 on the CPU (prefill). Each (sequence, head, block of
//!   query rows) is one work item on candle's barrier pool, the pool the repacked products
//!   ([`super::qmm`]) run on, with two single-threaded `gemm` calls that read the queries,
//!   keys and values in place through their strides (the KV cache's buffer included) and
//!   write `(batch, t, heads * head_dim)`, the layout the output projection takes. The tensor
//!   version runs its matrix products, mask and softmax on rayon's threads, whose spinning
//!   competes with the barrier pool's on a machine with as many threads as cores.

use super::layers::softmax_last;
use super::qmm::{in_barrier_pool, SharedOut};
use candle_core::{DType, Device, Layout, Result, Storage, Tensor};

/// Query rows per block of attention at inference.
pub(crate) const QUERY_BLOCK: usize = 64;

/// Causal GQA attention: `q (b, heads, t, d)` (rotated and scaled) at positions
/// `offset..offset + t` over `k`, `v (b, kv_heads, offset + t, d)` (cached positions first),
/// returning `(b, heads, t, d)`. The `heads / kv_heads` query heads sharing one kv head are
/// stacked along the sequence axis, so keys and values are never copied. At inference the
/// queries go in blocks of [`QUERY_BLOCK`] rows, each against the keys it may see only: a
/// long prompt's scores, softmax and weighted sum skip the masked upper triangle (nearly half
/// the work at 512 tokens). With autograd it is one block, as it always was.
pub(crate) fn causal_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    offset: usize,
    dtype: DType,
) -> Result<Tensor> {
    let block = if q.track_op() || k.track_op() || v.track_op() {
        usize::MAX
    } else {
        QUERY_BLOCK
    };
    attention_in_blocks(q, k, v, offset, dtype, block)
}

/// [`causal_attention`] with `block` query rows per block.
pub(crate) fn attention_in_blocks(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    offset: usize,
    dtype: DType,
    block: usize,
) -> Result<Tensor> {
    let (b, nh, t, d) = q.dims4()?;
    let nkv = k.dim(1)?;
    let rep = nh / nkv;
    if k.dim(2)? != offset + t || block == 0 {
        candle_core::bail!(
            "attention: {} keys for {offset} cached + {t} new",
            k.dim(2)?
        );
    }
    let mut ys = Vec::with_capacity(t.div_ceil(block));
    let mut s = 0;
    while s < t {
        let tb = block.min(t - s);
        let seen = offset + s + tb;
        let qb = if tb == t {
            q.clone()
        } else {
            q.narrow(2, s, tb)?.contiguous()?
        };
        let qb = qb.reshape((b, nkv, rep * tb, d))?;
        let (kb, vb) = (k.narrow(2, 0, seen)?, v.narrow(2, 0, seen)?);
        let scores = qb.matmul(&kb.t()?)?;
        let scores = if tb > 1 {
            scores
                .to_dtype(DType::F32)?
                .reshape((b, nkv, rep, tb, seen))?
                .broadcast_add(&causal_mask(tb, offset + s, q.device())?)?
                .reshape((b, nkv, rep * tb, seen))?
        } else {
            scores
        };
        let p = softmax_last(&scores, dtype)?;
        ys.push(p.matmul(&vb)?.reshape((b, nh, tb, d))?);
        s += tb;
    }
    if ys.len() == 1 {
        Ok(ys.swap_remove(0))
    } else {
        Tensor::cat(&ys, 2)
    }
}

/// `(t, offset + t)` additive mask: 0 where query `i` may see key `j`, -inf after it.
pub(crate) fn causal_mask(t: usize, offset: usize, device: &Device) -> Result<Tensor> {
    let kv = offset + t;
    let data: Vec<f32> = (0..t)
        .flat_map(|i| {
            (0..kv).map(move |j| {
                if j > offset + i {
                    f32::NEG_INFINITY
                } else {
                    0.0
                }
            })
        })
        .collect();
    Tensor::from_vec(data, (t, kv), device)
}

/// A CPU f32 tensor's whole buffer with its start and strides (elements), for reading a view
/// (such as the first positions of a KV cache buffer) in place.
struct Strided<'a> {
    data: &'a [f32],
    start: usize,
    stride: [usize; 4],
}

impl<'a> Strided<'a> {
    fn new(storage: &'a Storage, layout: &Layout) -> Result<Strided<'a>> {
        let Storage::Cpu(cpu) = storage else {
            candle_core::bail!("pool attention reads CPU tensors only");
        };
        let stride: [usize; 4] = layout
            .stride()
            .try_into()
            .map_err(|_| candle_core::Error::Msg("pool attention takes 4-D tensors".into()))?;
        Ok(Strided {
            data: cpu.as_slice::<f32>()?,
            start: layout.start_offset(),
            stride,
        })
    }

    /// Checks that every element of `dims` lies inside the buffer (so the raw reads below stay
    /// in bounds).
    fn check(&self, dims: &[usize]) -> Result<()> {
        let last = dims
            .iter()
            .zip(self.stride)
            .try_fold(self.start, |at, (&n, s)| {
                n.checked_sub(1).map(|n| at + n * s)
            });
        match last {
            Some(last) if last < self.data.len() => Ok(()),
            Some(_) => candle_core::bail!("pool attention: view {dims:?} outside its buffer"),
            None => Ok(()), // an empty dimension reads nothing
        }
    }

    /// Pointer to element `(b, h, 0, 0)`.
    fn at(&self, b: usize, h: usize) -> *const f32 {
        self.data
            .as_ptr()
            .wrapping_add(self.start + b * self.stride[0] + h * self.stride[1])
    }
}

/// [`causal_attention`] at inference on the CPU in f32, on the barrier pool, returning
/// `(b, t, heads * head_dim)` (the heads already side by side for the output projection).
/// `None` where it does not apply: autograd, another dtype, another device.
pub(crate) fn pool_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    offset: usize,
) -> Result<Option<Tensor>> {
    let f32_cpu = |x: &Tensor| x.dtype() == DType::F32 && x.device().is_cpu() && !x.track_op();
    if !(f32_cpu(q) && f32_cpu(k) && f32_cpu(v)) {
        return Ok(None);
    }
    let (b, nh, t, d) = q.dims4()?;
    let (kb, nkv, seen_all, kd) = k.dims4()?;
    if kb != b || kd != d || v.dims() != k.dims() || nkv == 0 || nh % nkv != 0 {
        candle_core::bail!(
            "attention: queries {:?} do not fit keys {:?} and values {:?}",
            q.dims(),
            k.dims(),
            v.dims()
        );
    }
    if seen_all != offset + t {
        candle_core::bail!("attention: {seen_all} keys for {offset} cached + {t} new");
    }
    let rep = nh / nkv;
    let (qs, ql) = q.storage_and_layout();
    let (ks, kl) = k.storage_and_layout();
    let (vs, vl) = v.storage_and_layout();
    let (qv, kv, vv) = (
        Strided::new(&qs, ql)?,
        Strided::new(&ks, kl)?,
        Strided::new(&vs, vl)?,
    );
    qv.check(q.dims())?;
    kv.check(k.dims())?;
    vv.check(v.dims())?;
    let mut out = vec![0f32; b * t * nh * d];
    let dst = SharedOut(out.as_mut_ptr());
    let blocks = t.div_ceil(QUERY_BLOCK);
    let per_block = b * nh;
    let work = |items: std::ops::Range<usize>| {
        let mut scores: Vec<f32> = Vec::new();
        for item in items {
            // The last blocks (which see the most keys) first, so the pool's cursor ends on
            // small items.
            let blk = blocks - 1 - item / per_block;
            let (bi, h) = ((item % per_block) / nh, item % nh);
            let g = h / rep;
            let s = blk * QUERY_BLOCK;
            let tb = QUERY_BLOCK.min(t - s);
            let seen = offset + s + tb;
            scores.clear();
            scores.resize(tb * seen, 0.0);
            // SAFETY: every read lies inside the checked views (rows s..s + tb of q, keys and
            // values 0..seen <= offset + t); `scores` holds tb x seen values; the item writes
            // rows s..s + tb of head h of sequence bi of `out`, which no other item touches
            // and which outlives the parallel region.
            unsafe {
                // scores (tb, seen) = q rows (tb, d) x keys^T (d, seen)
                gemm_f32(
                    (tb, seen, d),
                    (scores.as_mut_ptr(), 1, seen),
                    (
                        qv.at(bi, h).wrapping_add(s * qv.stride[2]),
                        qv.stride[3],
                        qv.stride[2],
                    ),
                    (kv.at(bi, g), kv.stride[2], kv.stride[3]),
                );
            }
            for (i, row) in scores.chunks_exact_mut(seen).enumerate() {
                // Query s + i sees keys 0..=offset + s + i.
                let (visible, hidden) = row.split_at_mut(offset + s + i + 1);
                softmax_in_place(visible);
                hidden.fill(0.0);
            }
            // SAFETY: as above.
            unsafe {
                // out rows (tb, d) = probabilities (tb, seen) x values (seen, d)
                gemm_f32(
                    (tb, d, seen),
                    (dst.at(((bi * t + s) * nh + h) * d), 1, nh * d),
                    (scores.as_ptr(), 1, seen),
                    (vv.at(bi, g), vv.stride[3], vv.stride[2]),
                );
            }
        }
    };
    let items = blocks * per_block;
    // Multiply-adds of the scores and the weighted sum, over the keys each block sees.
    let macs: usize = (0..blocks)
        .map(|blk| {
            let s = blk * QUERY_BLOCK;
            let tb = QUERY_BLOCK.min(t - s);
            2 * tb * (offset + s + tb) * d
        })
        .sum::<usize>()
        * per_block;
    // Inside one of the pool's own workers `execute` would wait for itself; small work costs
    // less than waking the pool.
    if in_barrier_pool() || items <= 1 || (macs < 1 << 16 && !cfg!(test)) {
        work(0..items);
    } else {
        candle_core::utils::barrier_pool().execute_chunked(items, work);
    }
    Tensor::from_vec(out, (b, t, nh * d), q.device()).map(Some)
}

/// `dst (m, n) = lhs (m, k) x rhs (k, n)` in f32 on the calling thread; each operand is a
/// pointer with its column and row strides in elements.
///
/// # Safety
/// Every element the shapes and strides address must lie inside its buffer, and `dst`'s
/// elements must be written by no one else meanwhile.
unsafe fn gemm_f32(
    (m, n, k): (usize, usize, usize),
    dst: (*mut f32, usize, usize),
    lhs: (*const f32, usize, usize),
    rhs: (*const f32, usize, usize),
) {
    let s = |x: usize| x as isize;
    gemm::gemm(
        m,
        n,
        k,
        dst.0,
        s(dst.1),
        s(dst.2),
        false,
        lhs.0,
        s(lhs.1),
        s(lhs.2),
        rhs.0,
        s(rhs.1),
        s(rhs.2),
        0.0,
        1.0,
        false,
        false,
        false,
        gemm::Parallelism::None,
    )
}

/// Softmax of one row in place (candle's formula: `exp(x - max) / sum`).
fn softmax_in_place(row: &mut [f32]) {
    let max = row.iter().fold(f32::NEG_INFINITY, |a, &s| a.max(s));
    let mut sum = 0f32;
    for s in row.iter_mut() {
        *s = (*s - max).exp();
        sum += *s;
    }
    for s in row.iter_mut() {
        *s /= sum;
    }
}
