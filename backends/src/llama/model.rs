//! The llama decoder itself: [`Llama`] (embedding, blocks of GQA attention + SiLU MLP,
//! final norm, output head) and its [`Cache`]. One forward pass serves prefill, cached
//! decode and all-position scoring; the same code runs dense (f32/f16/bf16, differentiable)
//! and quantized GGUF weights.

use super::attention::{causal_attention, pool_attention};
use super::config::{LlamaConfig, RopeLayout};
use super::decode::Rows;
use super::layers::{Embedding, KvCache, Linear, RmsNorm, Rope};
use candle_core::{DType, Device, Result, Tensor, D};
use candle_nn::{Init, VarBuilder};

/// Which positions [`Llama::forward`] returns logits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logits {
    /// Only the last position: `(batch, vocab)` (decode; skips the head for the rest).
    Last,
    /// Every position: `(batch, seq, vocab)` (perplexity, fidelity, training).
    All,
}

/// One decoder block's attention.
#[derive(Debug, Clone)]
pub struct Attention {
    /// Query projection `(heads * head_dim, hidden)` (HF or GGUF row order, see the rope layout).
    pub q: Linear,
    /// Key projection `(kv_heads * head_dim, hidden)`.
    pub k: Linear,
    /// Value projection `(kv_heads * head_dim, hidden)`.
    pub v: Linear,
    /// Output projection `(hidden, heads * head_dim)`.
    pub o: Linear,
    /// Biases of q, k and v (Qwen2); `None` for llama and mistral.
    pub bias: Option<QkvBias>,
}

/// Biases added after the q, k and v projections (Qwen2 has them; nothing else does).
#[derive(Debug, Clone)]
pub struct QkvBias {
    /// `(heads * head_dim,)`.
    pub q: Tensor,
    /// `(kv_heads * head_dim,)`.
    pub k: Tensor,
    /// `(kv_heads * head_dim,)`.
    pub v: Tensor,
}

impl Attention {
    /// The q, k and v projections of `x (..., hidden)`, biases added when there are some.
    pub fn qkv(&self, x: &Tensor) -> Result<[Tensor; 3]> {
        let [q, k, v]: [Tensor; 3] = Linear::forward_shared(&[&self.q, &self.k, &self.v], x)?
            .try_into()
            .map_err(|_| candle_core::Error::Msg("q/k/v projection count".into()))?;
        match &self.bias {
            None => Ok([q, k, v]),
            Some(b) => Ok([
                q.broadcast_add(&b.q)?,
                k.broadcast_add(&b.k)?,
                v.broadcast_add(&b.v)?,
            ]),
        }
    }

    /// Elements of the biases (0 without).
    fn bias_elems(&self) -> usize {
        self.bias.as_ref().map_or(0, |b| {
            b.q.elem_count() + b.k.elem_count() + b.v.elem_count()
        })
    }
}

/// One decoder block's gated MLP: `down(silu(gate(x)) * up(x))`.
#[derive(Debug, Clone)]
pub struct Mlp {
    /// `(intermediate, hidden)`, through SiLU.
    pub gate: Linear,
    /// `(intermediate, hidden)`.
    pub up: Linear,
    /// `(hidden, intermediate)`.
    pub down: Linear,
}

/// A pre-norm decoder block.
#[derive(Debug, Clone)]
pub struct Block {
    /// Norm before attention (`input_layernorm`).
    pub attn_norm: RmsNorm,
    /// Self-attention.
    pub attn: Attention,
    /// Norm before the MLP (`post_attention_layernorm`).
    pub mlp_norm: RmsNorm,
    /// Gated MLP.
    pub mlp: Mlp,
}

/// Per-layer key/value caches for incremental decoding of one batch.
#[derive(Debug, Clone)]
pub struct Cache {
    layers: Vec<KvCache>,
}

impl Cache {
    /// Positions already processed (the offset of the next token).
    pub fn len(&self) -> usize {
        self.layers.first().map_or(0, KvCache::len)
    }
    /// True before the first forward pass (or after a reset).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Starts over (a new batch of prompts).
    pub fn reset(&mut self) {
        self.layers.iter_mut().for_each(KvCache::reset);
    }
    /// The cache of one layer (for [`Llama::decode_step`]).
    pub(crate) fn layer_mut(&mut self, layer: usize) -> &mut KvCache {
        &mut self.layers[layer]
    }
    /// The cache of one layer, read-only (the fused decode's attention).
    pub(crate) fn layer(&self, layer: usize) -> &KvCache {
        &self.layers[layer]
    }
}

/// A llama-architecture causal language model.
#[derive(Debug, Clone)]
pub struct Llama {
    /// Hyper-parameters.
    pub config: LlamaConfig,
    /// Token embedding table.
    pub embed: Embedding,
    /// Decoder blocks.
    pub blocks: Vec<Block>,
    /// Final norm before the output head.
    pub norm: RmsNorm,
    /// Output head `(vocab, hidden)`; the embedding table itself when tied.
    pub lm_head: Linear,
    /// Rotary tables and layout (half-split for HF weights, interleaved for GGUF).
    pub rope: Rope,
    /// Activation dtype.
    pub dtype: DType,
    /// Where weights and activations live.
    pub device: Device,
}

/// Standard deviation of the seeded/training initialisation of weight matrices.
pub const INIT_STD: f64 = 0.02;

impl Llama {
    /// Builds the model from HF tensor names (`model.layers.N.self_attn.q_proj.weight` ...)
    /// with HF rope layout. With safetensors it loads weights (in `vb`'s dtype); with
    /// `VarBuilder::from_varmap` it creates trainable variables initialised N(0, 0.02)
    /// (output projections scaled by 1/sqrt(2 * layers)) and norms at 1; with
    /// [`crate::preset::SeededWeights`] it makes seeded random weights. Qwen2 configs also
    /// read `q_proj.bias`, `k_proj.bias` and `v_proj.bias`.
    pub fn from_varbuilder(config: &LlamaConfig, vb: VarBuilder) -> Result<Llama> {
        config.check().map_err(candle_core::Error::wrap)?;
        let c = config;
        let (h, d) = (c.hidden_size, c.head_size());
        let (nh, nkv) = (c.num_attention_heads, c.kv_heads());
        let normal = Init::Randn {
            mean: 0.0,
            stdev: INIT_STD,
        };
        let out_init = Init::Randn {
            mean: 0.0,
            stdev: INIT_STD / (2.0 * c.num_hidden_layers as f64).sqrt(),
        };
        let lin = |vb: &VarBuilder, name: &str, out: usize, inp: usize, init: Init| {
            vb.get_with_hints((out, inp), &format!("{name}.weight"), init)
                .map(Linear::Dense)
        };
        let norm = |vb: &VarBuilder, name: &str| -> Result<RmsNorm> {
            Ok(RmsNorm {
                weight: vb.get_with_hints(h, &format!("{name}.weight"), Init::Const(1.0))?,
                eps: c.rms_norm_eps,
            })
        };
        let bias = |vb: &VarBuilder, size: usize| -> Result<Option<QkvBias>> {
            if !c.qkv_bias() {
                return Ok(None);
            }
            Ok(Some(QkvBias {
                q: vb.get_with_hints(nh * d, "q_proj.bias", normal)?,
                k: vb.get_with_hints(size, "k_proj.bias", normal)?,
                v: vb.get_with_hints(size, "v_proj.bias", normal)?,
            }))
        };
        let m = vb.pp("model");
        let embed_w = m.get_with_hints((c.vocab_size, h), "embed_tokens.weight", normal)?;
        let mut blocks = Vec::with_capacity(c.num_hidden_layers);
        for i in 0..c.num_hidden_layers {
            let b = m.pp(format!("layers.{i}"));
            let a = b.pp("self_attn");
            let f = b.pp("mlp");
            blocks.push(Block {
                attn_norm: norm(&b, "input_layernorm")?,
                attn: Attention {
                    q: lin(&a, "q_proj", nh * d, h, normal)?,
                    k: lin(&a, "k_proj", nkv * d, h, normal)?,
                    v: lin(&a, "v_proj", nkv * d, h, normal)?,
                    o: lin(&a, "o_proj", h, nh * d, out_init)?,
                    bias: bias(&a, nkv * d)?,
                },
                mlp_norm: norm(&b, "post_attention_layernorm")?,
                mlp: Mlp {
                    gate: lin(&f, "gate_proj", c.intermediate_size, h, normal)?,
                    up: lin(&f, "up_proj", c.intermediate_size, h, normal)?,
                    down: lin(&f, "down_proj", h, c.intermediate_size, out_init)?,
                },
            });
        }
        let lm_head = if c.tie_word_embeddings {
            Linear::Dense(embed_w.clone())
        } else {
            lin(&vb, "lm_head", c.vocab_size, h, normal)?
        };
        let rope = Rope::from_inv_freq(
            c.rope_inv_freq().map_err(candle_core::Error::wrap)?,
            c.max_position_embeddings,
            RopeLayout::HalfSplit,
            vb.dtype(),
            vb.device(),
        )?;
        Ok(Llama {
            config: c.clone(),
            embed: Embedding::Dense(embed_w),
            blocks,
            norm: norm(&m, "norm")?,
            lm_head,
            rope,
            dtype: vb.dtype(),
            device: vb.device().clone(),
        })
    }

    /// An empty cache sized for `capacity` positions (it grows if exceeded).
    pub fn new_cache(&self, capacity: usize) -> Cache {
        Cache {
            layers: (0..self.blocks.len())
                .map(|_| KvCache::new(capacity))
                .collect(),
        }
    }

    /// Runs `ids (batch, seq)` (u32) through the model. With a cache, the tokens continue the
    /// cached sequence (positions `cache.len()..`) and are appended to it; without one they
    /// start at position 0 and nothing is kept (training/scoring). Returns f32 logits,
    /// `(batch, vocab)` for [`Logits::Last`] or `(batch, seq, vocab)` for [`Logits::All`].
    /// Single-token steps with a cache take the fused decode ([`Llama::fused_decode`]).
    pub fn forward(
        &self,
        ids: &Tensor,
        cache: Option<&mut Cache>,
        which: Logits,
    ) -> Result<Tensor> {
        let (_b, t) = ids.dims2()?;
        if t == 1 && self.fused_decode() {
            if let Some(cache) = cache {
                let ids = ids.flatten_all()?.to_vec1::<u32>()?;
                let logits = self.decode_fused(&ids, Rows::Batch(cache), None)?;
                return match which {
                    Logits::Last => Ok(logits),
                    Logits::All => logits.unsqueeze(1),
                };
            }
        }
        self.forward_tensors(ids, cache, which)
    }

    /// [`Llama::forward`] on candle tensors only, never the fused decode (A/B checks).
    pub fn forward_tensors(
        &self,
        ids: &Tensor,
        mut cache: Option<&mut Cache>,
        which: Logits,
    ) -> Result<Tensor> {
        let (_b, t) = ids.dims2()?;
        if t == 0 {
            candle_core::bail!("forward needs at least one token");
        }
        let offset = cache.as_ref().map_or(0, |c| c.len());
        let mut x = self.embed.forward(ids)?.to_dtype(self.dtype)?;
        for (i, block) in self.blocks.iter().enumerate() {
            let kv = cache.as_mut().map(|c| &mut c.layers[i]);
            x = self.block_forward(block, &x, offset, kv)?;
        }
        let x = match which {
            Logits::Last => x.narrow(1, t - 1, 1)?.contiguous()?,
            Logits::All => x,
        };
        let logits = self.lm_head.forward(&self.norm.forward(&x)?)?;
        let logits = logits.to_dtype(DType::F32)?;
        match which {
            Logits::Last => logits.squeeze(1),
            Logits::All => Ok(logits),
        }
    }

    fn block_forward(
        &self,
        block: &Block,
        x: &Tensor,
        offset: usize,
        cache: Option<&mut KvCache>,
    ) -> Result<Tensor> {
        let residual = x;
        let h = block.attn_norm.forward(x)?;
        let h = self.attention(&block.attn, &h, offset, cache)?;
        let x = (residual + h)?;
        let h = block.mlp_norm.forward(&x)?;
        let m = &block.mlp;
        let [g, u]: [Tensor; 2] = Linear::forward_shared(&[&m.gate, &m.up], &h)?
            .try_into()
            .map_err(|_| candle_core::Error::Msg("gate/up projection count".into()))?;
        let h = m.down.forward(&(g.silu()? * u)?)?;
        x + h
    }

    fn attention(
        &self,
        a: &Attention,
        x: &Tensor,
        offset: usize,
        cache: Option<&mut KvCache>,
    ) -> Result<Tensor> {
        let c = &self.config;
        let (b, t, _) = x.dims3()?;
        let (nh, nkv, d) = (c.num_attention_heads, c.kv_heads(), c.head_size());
        let heads = |y: Tensor, n: usize| -> Result<Tensor> {
            y.reshape((b, t, n, d))?.transpose(1, 2)?.contiguous()
        };
        let [q, k, v] = a.qkv(x)?;
        let (q, k, v) = (heads(q, nh)?, heads(k, nkv)?, heads(v, nkv)?);
        let q = (self.rope.apply(&q, offset)? * (1.0 / (d as f64).sqrt()))?;
        let k = self.rope.apply(&k, offset)?;
        let (k, v) = match cache {
            Some(cache) => cache.append(&k, &v)?,
            None => (k, v),
        };
        let y = self.attend(a, &q, &k, &v, offset)?;
        a.o.forward(&y)
    }

    /// Causal attention of `q (b, heads, t, d)` over `k`, `v` (cached positions first) as
    /// `(b, t, heads * d)`. With repacked products (which run on the barrier pool) a prompt's
    /// attention joins them there ([`pool_attention`]); one-token steps of such models take
    /// the fused decode before they get here. Otherwise candle's tensor operations.
    pub(crate) fn attend(
        &self,
        a: &Attention,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        offset: usize,
    ) -> Result<Tensor> {
        let (b, nh, t, d) = q.dims4()?;
        if t > 1 && matches!(a.o, Linear::Packed(_)) {
            if let Some(y) = pool_attention(q, k, v, offset)? {
                return Ok(y);
            }
        }
        causal_attention(q, k, v, offset, self.dtype)?
            .transpose(1, 2)?
            .reshape((b, t, nh * d))
    }

    /// Parameters: `(total, non-embedding)`; a tied head counts once, as embedding.
    pub fn param_counts(&self) -> (u64, u64) {
        let c = &self.config;
        let (h, d) = (c.hidden_size as u64, c.head_size() as u64);
        let (nh, nkv, ff) = (
            c.num_attention_heads as u64,
            c.kv_heads() as u64,
            c.intermediate_size as u64,
        );
        let bias = if c.qkv_bias() {
            nh * d + 2 * nkv * d
        } else {
            0
        };
        let per_block = h * nh * d * 2 + h * nkv * d * 2 + 3 * h * ff + 2 * h + bias;
        let non_embedding = per_block * c.num_hidden_layers as u64 + h;
        let embedding = c.vocab_size as u64 * h * if c.tie_word_embeddings { 1 } else { 2 };
        (non_embedding + embedding, non_embedding)
    }

    /// Bytes of the weights as held in memory.
    pub fn weight_bytes(&self) -> u64 {
        let norm = |n: &RmsNorm| n.weight.elem_count() * n.weight.dtype().size_in_bytes();
        let mut total = self.embed.bytes() + norm(&self.norm);
        if !self.config.tie_word_embeddings {
            total += self.lm_head.bytes();
        }
        for b in &self.blocks {
            total += norm(&b.attn_norm) + norm(&b.mlp_norm);
            total += b.attn.bias_elems() * self.dtype.size_in_bytes();
            let lins = [
                &b.attn.q,
                &b.attn.k,
                &b.attn.v,
                &b.attn.o,
                &b.mlp.gate,
                &b.mlp.up,
                &b.mlp.down,
            ];
            total += lins.iter().map(|l| l.bytes()).sum::<usize>();
        }
        total as u64
    }
}

/// Index of the largest logit per row of `(batch, vocab)` f32 logits (greedy decoding).
pub fn argmax_rows(logits: &Tensor) -> Result<Vec<u32>> {
    logits.argmax(D::Minus1)?.to_vec1::<u32>()
}
