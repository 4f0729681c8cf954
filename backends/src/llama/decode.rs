//! Fused decode: one new token per sequence through a model whose every matrix runs on the
//! repacked CPU kernels ([`super::qmm`]), computed on plain `f32` buffers.
//!
//! A decode step of a small model is mostly not matrix work: SmolLM2-135M has 30 layers, and
//! the tensor path runs some twenty candle operations per layer (norms, reshapes, rope,
//! attention, SiLU, residual adds), each allocating its output and some dispatching to the
//! thread pool. Those cost about as much as the weights' products. Here the same
//! arithmetic runs as loops over the row buffers, the matrix products write into reused
//! buffers, and keys and values go straight into the layer's [`KvCache`] buffer, which
//! attention then reads in place.
//!
//! Numerically it is the tensor path: the same activation quantization and kernels for
//! every product, norms, rope, softmax and SiLU in f32 with the same formulas (sums may be
//! added in another order). `llama/tests.rs` checks both paths against each other and
//! [`DECODE_ENV`]`=tensors` turns this path off for A/B runs.

use super::config::RopeLayout;
use super::layers::{Embedding, KvCache, Linear, RmsNorm};
use super::model::{Cache, Llama};
use super::qmm::{act, matmul_into, matmul_swiglu, QMatrix, SharedOut};
use candle_core::{DType, Device, Result, Storage, Tensor};

/// Environment variable choosing the decode path: `fused` (default where the model allows
/// it) or `tensors` (always the candle tensor path, for A/B comparisons).
pub const DECODE_ENV: &str = "EFFBENCH_DECODE";

/// Whose key/value cache each row of a fused step continues.
pub(crate) enum Rows<'a, 'b> {
    /// Row `r` is batch row `r` of one batched cache (all rows at the same position).
    Batch(&'a mut Cache),
    /// Row `r` continues its own single-sequence cache.
    Each(&'a mut [&'b mut Cache]),
}

impl Rows<'_, '_> {
    fn count(&self, ids: usize) -> usize {
        match self {
            Rows::Batch(_) => ids,
            Rows::Each(c) => c.len(),
        }
    }

    /// Position of the new token of row `r`.
    fn position(&self, r: usize) -> usize {
        match self {
            Rows::Batch(c) => c.len(),
            Rows::Each(c) => c[r].len(),
        }
    }
}

/// The matrices of one block, all repacked.
struct BlockMats<'a> {
    q: &'a QMatrix,
    k: &'a QMatrix,
    v: &'a QMatrix,
    o: &'a QMatrix,
    gate: &'a QMatrix,
    up: &'a QMatrix,
    down: &'a QMatrix,
}

fn packed(l: &Linear) -> Option<&QMatrix> {
    match l {
        Linear::Packed(q) => Some(q),
        _ => None,
    }
}

/// Whether a [`DECODE_ENV`] value asks for the fused path: unset or empty and `fused` do,
/// `tensors` does not; anything else is an error naming the variable. The loaders call
/// [`check_decode_env`], so a misspelt value stops a run before it measures.
fn parse_decode(v: Option<&str>) -> Result<bool> {
    match v.map(str::trim).unwrap_or("") {
        "" | "fused" => Ok(true),
        "tensors" => Ok(false),
        other => candle_core::bail!("{DECODE_ENV}='{other}' is not one of fused, tensors"),
    }
}

/// Checks [`DECODE_ENV`] (see [`parse_decode`]).
pub fn check_decode_env() -> Result<()> {
    parse_decode(std::env::var(DECODE_ENV).ok().as_deref()).map(|_| ())
}

/// True unless [`DECODE_ENV`] asks for the tensor path (read once per process).
fn fused_enabled() -> bool {
    use std::sync::OnceLock;
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| parse_decode(std::env::var(DECODE_ENV).ok().as_deref()).unwrap_or(true))
}

impl Llama {
    /// Whether decode steps take the fused path: f32 activations on the CPU, every matrix
    /// (output head included) repacked, and not turned off by [`DECODE_ENV`].
    pub fn fused_decode(&self) -> bool {
        fused_enabled() && self.block_mats().is_some()
    }

    /// Which path decode steps take, as results record it (`model.details.matmul_kernels`).
    pub fn decode_path(&self) -> &'static str {
        match (fused_enabled(), self.block_mats().is_some()) {
            (true, true) => "fused",
            (false, _) => "tensors (EFFBENCH_DECODE=tensors)",
            (true, false) => "tensors (not every matrix is repacked for the CPU kernels)",
        }
    }

    fn block_mats(&self) -> Option<Vec<BlockMats<'_>>> {
        if self.dtype != DType::F32 || !matches!(self.device, Device::Cpu) {
            return None;
        }
        packed(&self.lm_head)?;
        if matches!(self.embed, Embedding::Quantized(_)) {
            return None;
        }
        self.blocks
            .iter()
            .map(|b| {
                Some(BlockMats {
                    q: packed(&b.attn.q)?,
                    k: packed(&b.attn.k)?,
                    v: packed(&b.attn.v)?,
                    o: packed(&b.attn.o)?,
                    gate: packed(&b.mlp.gate)?,
                    up: packed(&b.mlp.up)?,
                    down: packed(&b.mlp.down)?,
                })
            })
            .collect()
    }

    /// One new token per row: `ids[r]` continues row `r` of `rows`, whose caches receive its
    /// keys and values. Returns the f32 logits `(n, vocab)` of the rows where `want[r]`
    /// (all rows when `want` is `None`), in row order.
    pub(crate) fn decode_fused(
        &self,
        ids: &[u32],
        mut rows: Rows,
        want: Option<&[bool]>,
    ) -> Result<Tensor> {
        let Some(mats) = self.block_mats() else {
            candle_core::bail!("the fused decode needs every matrix repacked, f32, on the CPU");
        };
        let m = ids.len();
        if m == 0 || rows.count(m) != m {
            candle_core::bail!("fused decode: {m} ids for {} rows", rows.count(m));
        }
        let c = &self.config;
        let (h, nh, nkv, d) = (
            c.hidden_size,
            c.num_attention_heads,
            c.kv_heads(),
            c.head_size(),
        );
        let (qn, kn) = (nh * d, nkv * d);
        let ff = c.intermediate_size;
        let positions: Vec<usize> = (0..m).map(|r| rows.position(r)).collect();
        if let Some(&p) = positions.iter().max() {
            if p >= self.rope.positions() {
                candle_core::bail!(
                    "position {} is beyond the model context {}",
                    p + 1,
                    self.rope.positions()
                );
            }
        }
        let mut x = vec![0f32; m * h];
        self.embed_rows(ids, &mut x)?;
        let mut hn = vec![0f32; m * h];
        let (mut q, mut k, mut v) = (vec![0f32; m * qn], vec![0f32; m * kn], vec![0f32; m * kn]);
        let mut att = vec![0f32; m * qn];
        let mut proj = vec![0f32; m * h];
        let mut g = vec![0f32; m * ff];
        let mut xq = Vec::new();
        let scale = 1.0 / (d as f32).sqrt();
        for (layer, (block, w)) in self.blocks.iter().zip(&mats).enumerate() {
            rms_norm_rows(&block.attn_norm, &x, &mut hn)?;
            act::quantize_rows(&hn, &mut xq);
            matmul_into(&[w.q, w.k, w.v], &xq, m, &mut [&mut q, &mut k, &mut v]);
            if let Some(b) = &block.attn.bias {
                add_rows(&b.q, &mut q)?;
                add_rows(&b.k, &mut k)?;
                add_rows(&b.v, &mut v)?;
            }
            self.rope_rows(&mut q, nh, &positions)?;
            self.rope_rows(&mut k, nkv, &positions)?;
            q.iter_mut().for_each(|e| *e *= scale);
            append_kv(&mut rows, layer, &k, &v, (nkv, d))?;
            attend(&rows, layer, &q, &mut att, (nh, nkv, d))?;
            act::quantize_rows(&att, &mut xq);
            matmul_into(&[w.o], &xq, m, &mut [&mut proj]);
            add_into(&mut x, &proj);
            rms_norm_rows(&block.mlp_norm, &x, &mut hn)?;
            act::quantize_rows(&hn, &mut xq);
            matmul_swiglu(w.gate, w.up, &xq, m, &mut g);
            act::quantize_rows(&g, &mut xq);
            matmul_into(&[w.down], &xq, m, &mut [&mut proj]);
            add_into(&mut x, &proj);
        }
        // The output head only for the rows whose logits are wanted.
        let keep: Vec<usize> = (0..m).filter(|&r| want.is_none_or(|w| w[r])).collect();
        let Some(lm) = packed(&self.lm_head) else {
            candle_core::bail!("the fused decode needs a repacked output head");
        };
        let vocab = lm.dims().0;
        let mut kept = Vec::with_capacity(keep.len() * h);
        for &r in &keep {
            kept.extend_from_slice(&x[r * h..(r + 1) * h]);
        }
        let mut normed = vec![0f32; kept.len()];
        rms_norm_rows(&self.norm, &kept, &mut normed)?;
        act::quantize_rows(&normed, &mut xq);
        let mut logits = vec![0f32; keep.len() * vocab];
        if !keep.is_empty() {
            matmul_into(&[lm], &xq, keep.len(), &mut [&mut logits]);
        }
        Tensor::from_vec(logits, (keep.len(), vocab), &self.device)
    }

    /// The embedding rows of `ids` into `out` (`ids.len() x hidden`).
    fn embed_rows(&self, ids: &[u32], out: &mut [f32]) -> Result<()> {
        let h = self.config.hidden_size;
        for (&id, row) in ids.iter().zip(out.chunks_exact_mut(h)) {
            match &self.embed {
                Embedding::Packed(q) => {
                    if id as usize >= q.dims().0 {
                        candle_core::bail!(
                            "token id {id} is outside the vocabulary of {}",
                            q.dims().0
                        );
                    }
                    q.row(id as usize, row);
                }
                Embedding::Dense(w) => {
                    let vocab = w.dim(0)?;
                    if id as usize >= vocab {
                        candle_core::bail!("token id {id} is outside the vocabulary of {vocab}");
                    }
                    with_f32(w, |all| {
                        row.copy_from_slice(&all[id as usize * h..(id as usize + 1) * h])
                    })?;
                }
                Embedding::Quantized(_) => {
                    candle_core::bail!("the fused decode needs a repacked or dense embedding")
                }
            }
        }
        Ok(())
    }

    /// Rotates every head of every row (`heads` heads of `head_dim` per row) for its position.
    fn rope_rows(&self, x: &mut [f32], heads: usize, positions: &[usize]) -> Result<()> {
        let (cos, sin) = self.rope.tables();
        let half = self.config.head_size() / 2;
        let layout = self.rope.layout;
        with_f32(cos, |cos| {
            with_f32(sin, |sin| {
                for (row, &p) in x.chunks_exact_mut(heads * 2 * half).zip(positions) {
                    let (cos, sin) = (&cos[p * half..][..half], &sin[p * half..][..half]);
                    for head in row.chunks_exact_mut(2 * half) {
                        rope_head(head, cos, sin, layout);
                    }
                }
            })
        })?
    }
}

/// Rotary embedding of one head in place, as candle's `rope` (half-split) and `rope_i`
/// (interleaved) compute it.
fn rope_head(x: &mut [f32], cos: &[f32], sin: &[f32], layout: RopeLayout) {
    let half = cos.len();
    match layout {
        RopeLayout::HalfSplit => {
            let (a, b) = x.split_at_mut(half);
            for i in 0..half {
                let (x1, x2) = (a[i], b[i]);
                a[i] = x1 * cos[i] - x2 * sin[i];
                b[i] = x1 * sin[i] + x2 * cos[i];
            }
        }
        RopeLayout::Interleaved => {
            for (i, pair) in x.chunks_exact_mut(2).enumerate() {
                let (x1, x2) = (pair[0], pair[1]);
                pair[0] = x1 * cos[i] - x2 * sin[i];
                pair[1] = x1 * sin[i] + x2 * cos[i];
            }
        }
    }
}

/// `f` over the contiguous f32 data of a CPU tensor.
fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let (storage, layout) = t.storage_and_layout();
    Ok(f(f32_data(&storage, layout)?))
}

/// The f32 values a contiguous CPU tensor's `layout` covers in `storage`.
fn f32_data<'a>(storage: &'a Storage, layout: &candle_core::Layout) -> Result<&'a [f32]> {
    let Storage::Cpu(cpu) = storage else {
        candle_core::bail!("the fused decode reads CPU tensors only");
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("the fused decode reads contiguous tensors only");
    };
    Ok(&cpu.as_slice::<f32>()?[start..end])
}

/// RMS norm of each `hidden`-wide row of `x` into `out` (candle's formula: `x / sqrt(mean(x²)
/// + eps) * w`).
fn rms_norm_rows(norm: &RmsNorm, x: &[f32], out: &mut [f32]) -> Result<()> {
    let eps = norm.eps as f32;
    with_f32(&norm.weight, |w| {
        for (row, out) in x.chunks_exact(w.len()).zip(out.chunks_exact_mut(w.len())) {
            let sum2: f32 = row.iter().map(|v| v * v).sum();
            let m = (sum2 / w.len() as f32 + eps).sqrt();
            for ((o, &v), &a) in out.iter_mut().zip(row).zip(w) {
                *o = v / m * a;
            }
        }
    })
}

/// Adds a bias vector to every row.
fn add_rows(bias: &Tensor, x: &mut [f32]) -> Result<()> {
    with_f32(bias, |b| {
        for row in x.chunks_exact_mut(b.len()) {
            add_into(row, b);
        }
    })
}

fn add_into(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

/// Appends each row's keys and values (`(kv_heads, head_dim)` per row) to its cache.
fn append_kv(
    rows: &mut Rows,
    layer: usize,
    k: &[f32],
    v: &[f32],
    (nkv, d): (usize, usize),
) -> Result<()> {
    let per = nkv * d;
    let put = |cache: &mut KvCache, k: &[f32], v: &[f32], b: usize| -> Result<()> {
        let k = Tensor::from_slice(k, (b, nkv, 1, d), &Device::Cpu)?;
        let v = Tensor::from_slice(v, (b, nkv, 1, d), &Device::Cpu)?;
        cache.push(&k, &v)
    };
    match rows {
        Rows::Batch(cache) => put(cache.layer_mut(layer), k, v, k.len() / per),
        Rows::Each(caches) => {
            for (r, cache) in caches.iter_mut().enumerate() {
                let span = r * per..(r + 1) * per;
                put(cache.layer_mut(layer), &k[span.clone()], &v[span], 1)?;
            }
            Ok(())
        }
    }
}

/// Attention of each row's (scaled, rotated) queries over its cache, keys and values just
/// appended included, into `out` (`(heads, head_dim)` per row). Query head `j` reads
/// key/value head `j / (heads / kv_heads)` (GQA). Heads are shared out over candle's thread
/// pool when there is enough work.
fn attend(
    rows: &Rows,
    layer: usize,
    q: &[f32],
    out: &mut [f32],
    (nh, nkv, d): (usize, usize, usize),
) -> Result<()> {
    let rep = nh / nkv;
    let m = q.len() / (nh * d);
    // Per row: the read guards of its key and value buffers, its batch index, length and
    // capacity.
    let mut held = Vec::with_capacity(m);
    for r in 0..m {
        let (cache, b) = match rows {
            Rows::Batch(c) => (c.layer(layer), r),
            Rows::Each(cs) => (cs[r].layer(layer), 0),
        };
        let len = cache.len();
        let Some((kt, vt)) = cache.buffers() else {
            candle_core::bail!("fused decode: layer {layer} has an empty cache after append");
        };
        let (batch, heads, cap, dd) = kt.dims4()?;
        if heads != nkv || dd != d || b >= batch || len > cap || vt.dims() != kt.dims() {
            candle_core::bail!(
                "fused decode: cache of layer {layer} is {:?}, expected (>{b}, {nkv}, >={len}, {d})",
                kt.dims()
            );
        }
        held.push((
            kt.storage_and_layout(),
            vt.storage_and_layout(),
            b,
            len,
            cap,
        ));
    }
    let mut views = Vec::with_capacity(m);
    for ((ks, kl), (vs, vl), b, len, cap) in &held {
        views.push((f32_data(ks, kl)?, f32_data(vs, vl)?, *b, *len, *cap));
    }
    let dst = SharedOut(out.as_mut_ptr());
    let work = |items: std::ops::Range<usize>| {
        let mut scores = Vec::new();
        for item in items {
            let (r, j) = (item / nh, item % nh);
            let (kall, vall, b, len, cap) = views[r];
            let base = (b * nkv + j / rep) * cap * d;
            let at = (r * nh + j) * d;
            // SAFETY: each (row, head) item writes its own `d` values of `out`, which outlives
            // the parallel region; no other reference to `out` is used meanwhile.
            let o = unsafe { std::slice::from_raw_parts_mut(dst.at(at), d) };
            let (keys, vals) = (&kall[base..base + len * d], &vall[base..base + len * d]);
            attend_head(&q[at..at + d], keys, vals, o, &mut scores);
        }
    };
    let flops: usize = views.iter().map(|v| v.3).sum::<usize>() * nh * d * 4;
    if !cfg!(test) && flops < PARALLEL_FLOPS {
        work(0..m * nh);
    } else {
        candle_core::utils::barrier_pool().execute_chunked(m * nh, work);
    }
    Ok(())
}

/// Attention work below which the heads run on the calling thread (the pool's wake-up costs
/// more). Tests always split, so the tiny test models exercise the parallel path.
const PARALLEL_FLOPS: usize = 1 << 15;

/// Softmax attention of one query over `keys.len() / d` cached positions.
fn attend_head(q: &[f32], keys: &[f32], vals: &[f32], out: &mut [f32], scores: &mut Vec<f32>) {
    let d = q.len();
    scores.clear();
    scores.extend(keys.chunks_exact(d).map(|k| dot(q, k)));
    let max = scores.iter().fold(f32::NEG_INFINITY, |a, &s| a.max(s));
    let mut sum = 0f32;
    for s in scores.iter_mut() {
        *s = (*s - max).exp();
        sum += *s;
    }
    out.fill(0.0);
    for (&p, v) in scores.iter().zip(vals.chunks_exact(d)) {
        let p = p / sum;
        for (o, &x) in out.iter_mut().zip(v) {
            *o = p.mul_add(x, *o);
        }
    }
}

/// Dot product in eight independent lanes (vectorizes without reassociation flags).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] = x[i].mul_add(y[i], acc[i]);
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    #[test]
    fn decode_env_values() {
        use super::parse_decode;
        assert!(parse_decode(None).unwrap());
        assert!(parse_decode(Some(" fused ")).unwrap());
        assert!(!parse_decode(Some("tensors")).unwrap());
        let err = parse_decode(Some("tensor")).unwrap_err().to_string();
        assert!(
            err.contains("EFFBENCH_DECODE='tensor' is not one of fused, tensors"),
            "{err}"
        );
    }
}
