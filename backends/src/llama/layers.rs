//! Building blocks of the llama model, each usable with dense weights (differentiable when
//! the weights are `Var`s) or quantized GGUF weights: [`Linear`], [`Embedding`], [`RmsNorm`],
//! rotary embeddings ([`Rope`]) and the resettable per-layer [`KvCache`].

use super::config::RopeLayout;
use super::qmm::QMatrix;
use candle_core::quantized::{QMatMul, QTensor};
use candle_core::{DType, Device, Module, Result, Tensor, D};
use std::sync::Arc;

/// A linear layer without bias: `y = x W^T`, `W` of shape `(out, in)`.
#[derive(Debug, Clone)]
pub enum Linear {
    /// Dense weight in the activation dtype (autograd flows through it).
    Dense(Tensor),
    /// Quantized GGUF weight (inference only; activations f32).
    Quantized(QMatMul),
    /// GGUF weight repacked for effbench's CPU kernels ([`super::qmm`]).
    Packed(Arc<QMatrix>),
}

impl Linear {
    /// `x (..., in)` → `(..., out)`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Linear::Dense(w) => {
                // One (rows, in) x (in, out) matmul over all leading dims: a single large GEMM,
                // and in training a weight gradient without a reduction over broadcast copies.
                let dims = x.dims();
                let (&k, lead) = dims
                    .split_last()
                    .ok_or_else(|| candle_core::Error::Msg("Linear on a scalar".into()))?;
                let rows: usize = lead.iter().product();
                let y = x.reshape((rows, k))?.matmul(&w.t()?)?;
                let mut out = lead.to_vec();
                out.push(w.dim(0)?);
                y.reshape(out)
            }
            Linear::Quantized(q) => q.forward(x),
            Linear::Packed(q) => q.forward(x),
        }
    }

    /// The same input through several layers (q/k/v, gate/up). Repacked weights share one
    /// input quantization and one parallel region; other kinds run one by one.
    pub fn forward_shared(layers: &[&Linear], x: &Tensor) -> Result<Vec<Tensor>> {
        let packed: Vec<&QMatrix> = layers
            .iter()
            .filter_map(|l| match l {
                Linear::Packed(q) => Some(q.as_ref()),
                _ => None,
            })
            .collect();
        if packed.len() == layers.len() && !x.track_op() {
            QMatrix::forward_many(&packed, x)
        } else {
            layers.iter().map(|l| l.forward(x)).collect()
        }
    }

    /// `(out, in)` of the weight.
    pub fn dims(&self) -> (usize, usize) {
        match self {
            Linear::Dense(w) => w.dims2().unwrap_or((0, 0)),
            Linear::Quantized(QMatMul::QTensor(q)) => q.shape().dims2().unwrap_or((0, 0)),
            Linear::Quantized(QMatMul::Tensor(w) | QMatMul::TensorF16(w)) => {
                w.dims2().unwrap_or((0, 0))
            }
            Linear::Packed(q) => q.dims(),
        }
    }

    /// Bytes the weight occupies in memory.
    pub fn bytes(&self) -> usize {
        match self {
            Linear::Dense(w) => w.elem_count() * w.dtype().size_in_bytes(),
            Linear::Quantized(QMatMul::QTensor(q)) => q.storage_size_in_bytes(),
            Linear::Quantized(QMatMul::Tensor(w) | QMatMul::TensorF16(w)) => {
                w.elem_count() * w.dtype().size_in_bytes()
            }
            Linear::Packed(q) => q.bytes(),
        }
    }
}

/// Token embedding table `(vocab, hidden)`.
#[derive(Debug, Clone)]
pub enum Embedding {
    /// A dense table in the activation dtype.
    Dense(Tensor),
    /// Rows are dequantized on lookup, so the table stays quantized in memory.
    Quantized(Arc<QTensor>),
    /// The same, from a repacked matrix (shared with a tied output head).
    Packed(Arc<QMatrix>),
}

impl Embedding {
    /// `ids (b, t)` u32 → `(b, t, hidden)`.
    pub fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        match self {
            Embedding::Dense(w) => {
                let (b, t) = ids.dims2()?;
                let hidden = w.dim(1)?;
                w.index_select(&ids.flatten_all()?, 0)?
                    .reshape((b, t, hidden))
            }
            Embedding::Quantized(q) => q.embedding(ids),
            Embedding::Packed(q) => {
                let (b, t) = ids.dims2()?;
                let (vocab, hidden) = q.dims();
                let device = ids.device().clone();
                let ids = ids.flatten_all()?.to_vec1::<u32>()?;
                let mut out = vec![0f32; ids.len() * hidden];
                for (&id, row) in ids.iter().zip(out.chunks_exact_mut(hidden)) {
                    if id as usize >= vocab {
                        candle_core::bail!("token id {id} is outside the vocabulary of {vocab}");
                    }
                    q.row(id as usize, row);
                }
                Tensor::from_vec(out, (b, t, hidden), &device)
            }
        }
    }

    /// Bytes the table occupies in memory.
    pub fn bytes(&self) -> usize {
        match self {
            Embedding::Dense(w) => w.elem_count() * w.dtype().size_in_bytes(),
            Embedding::Quantized(q) => q.storage_size_in_bytes(),
            Embedding::Packed(q) => q.bytes(),
        }
    }
}

/// Root-mean-square layer norm with a learned scale; computed in f32 whatever the dtype.
#[derive(Debug, Clone)]
pub struct RmsNorm {
    /// Per-channel scale `(hidden,)`.
    pub weight: Tensor,
    /// Added to the mean square before the square root.
    pub eps: f64,
}

impl RmsNorm {
    /// Normalizes over the last dimension.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if x.track_op() || self.weight.track_op() {
            // Differentiable composition (training).
            candle_nn::ops::rms_norm_slow(x, &self.weight, self.eps as f32)
        } else {
            // Fused kernel: accumulates the sum of squares in f32.
            candle_nn::ops::rms_norm(x, &self.weight, self.eps as f32)
        }
    }
}

/// Precomputed rotary tables `cos`, `sin` of shape `(positions, head_dim / 2)`.
#[derive(Debug, Clone)]
pub struct Rope {
    cos: Tensor,
    sin: Tensor,
    /// Which elements of a head are rotated together.
    pub layout: RopeLayout,
}

impl Rope {
    /// Tables for `positions` positions of a `head_dim`-wide head.
    pub fn new(
        head_dim: usize,
        theta: f64,
        positions: usize,
        layout: RopeLayout,
        dtype: DType,
        device: &Device,
    ) -> Result<Rope> {
        let inv_freq: Vec<f32> = (0..head_dim / 2)
            .map(|i| (1.0 / theta.powf(2.0 * i as f64 / head_dim as f64)) as f32)
            .collect();
        Rope::from_inv_freq(inv_freq, positions, layout, dtype, device)
    }

    /// Tables for `positions` positions from the inverse frequencies of one head's rotary
    /// pairs (`head_dim / 2` of them, scaling rules already applied:
    /// [`crate::llama::LlamaConfig::rope_inv_freq`]).
    pub fn from_inv_freq(
        inv_freq: Vec<f32>,
        positions: usize,
        layout: RopeLayout,
        dtype: DType,
        device: &Device,
    ) -> Result<Rope> {
        let half = inv_freq.len();
        let inv_freq = Tensor::from_vec(inv_freq, (1, half), device)?;
        let pos = Tensor::arange(0u32, positions as u32, device)?
            .to_dtype(DType::F32)?
            .reshape((positions, 1))?;
        let freqs = pos.broadcast_mul(&inv_freq)?;
        Ok(Rope {
            cos: freqs.cos()?.to_dtype(dtype)?,
            sin: freqs.sin()?.to_dtype(dtype)?,
            layout,
        })
    }

    /// The `(positions, head_dim / 2)` cosine and sine tables.
    pub(crate) fn tables(&self) -> (&Tensor, &Tensor) {
        (&self.cos, &self.sin)
    }

    /// Positions the tables cover.
    pub fn positions(&self) -> usize {
        self.cos.dim(0).unwrap_or(0)
    }

    /// Rotates `x (b, heads, t, head_dim)` (contiguous) for positions `offset..offset + t`.
    pub fn apply(&self, x: &Tensor, offset: usize) -> Result<Tensor> {
        let t = x.dim(2)?;
        if offset + t > self.positions() {
            candle_core::bail!(
                "position {} is beyond the model context {}",
                offset + t,
                self.positions()
            );
        }
        let cos = self.cos.narrow(0, offset, t)?;
        let sin = self.sin.narrow(0, offset, t)?;
        let slow = x.track_op();
        match (self.layout, slow) {
            (RopeLayout::HalfSplit, false) => candle_nn::rotary_emb::rope(x, &cos, &sin),
            (RopeLayout::HalfSplit, true) => candle_nn::rotary_emb::rope_slow(x, &cos, &sin),
            (RopeLayout::Interleaved, false) => candle_nn::rotary_emb::rope_i(x, &cos, &sin),
            (RopeLayout::Interleaved, true) => candle_nn::rotary_emb::rope_i_slow(x, &cos, &sin),
        }
    }
}

/// Keys and values of one layer, `(batch, kv_heads, len, head_dim)`, in a buffer allocated
/// for `capacity` positions on first use and grown if a sequence outruns it.
#[derive(Debug, Clone)]
pub struct KvCache {
    inner: candle_nn::kv_cache::KvCache,
}

impl KvCache {
    /// An empty cache; the buffer holds `capacity` positions when first used.
    pub fn new(capacity: usize) -> KvCache {
        KvCache {
            inner: candle_nn::kv_cache::KvCache::new(2, capacity.max(1)),
        }
    }

    /// Positions already cached.
    pub fn len(&self) -> usize {
        self.inner.k_cache().current_seq_len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets the cached positions (keeps nothing, the buffer is reallocated on next use).
    pub fn reset(&mut self) {
        self.inner.reset();
    }

    /// Appends `k`, `v` without making views (the fused decode reads [`KvCache::buffers`]).
    pub(crate) fn push(&mut self, k: &Tensor, v: &Tensor) -> Result<()> {
        self.inner.k_cache_mut().append(k)?;
        self.inner.v_cache_mut().append(v)
    }

    /// The whole key and value buffers, `(batch, kv_heads, capacity, head_dim)` each, of
    /// which the first [`KvCache::len`] positions are filled; `None` before the first append.
    pub(crate) fn buffers(&self) -> Option<(&Tensor, &Tensor)> {
        match (
            self.inner.k_cache().all_data(),
            self.inner.v_cache().all_data(),
        ) {
            (Some(k), Some(v)) => Some((k, v)),
            _ => None,
        }
    }

    /// Appends `k`, `v` and returns views of everything cached so far.
    pub fn append(&mut self, k: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
        self.inner.append(k, v)
    }
}

/// Softmax over the last dimension, in f32, returning `dtype`.
pub fn softmax_last(x: &Tensor, dtype: DType) -> Result<Tensor> {
    let x = x.to_dtype(DType::F32)?;
    let p = if x.track_op() {
        candle_nn::ops::softmax(&x, D::Minus1)?
    } else {
        candle_nn::ops::softmax_last_dim(&x)?
    };
    p.to_dtype(dtype)
}
