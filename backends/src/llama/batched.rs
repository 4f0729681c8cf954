//! One decode step for several independent sequences at different positions (continuous
//! batching in `effbench serve`): the weight-bound work — embeddings, q/k/v, output and MLP
//! projections, the output head — runs once for the whole batch `(n, 1, hidden)`, while rope
//! and attention run per sequence against its own KV [`Cache`] (each sequence has its own
//! length, so there is no padding). Numerically the same as [`Llama::forward`] one sequence
//! at a time (tested in `llama/tests.rs`).

use super::layers::{softmax_last, Linear};
use super::model::{Cache, Llama};
use candle_core::{DType, Result, Tensor};

impl Llama {
    /// Feeds `ids[i]` to the sequence of `caches[i]` (appending to it) and returns the next
    /// token logits `(n, vocab)` in f32.
    pub fn decode_step(&self, ids: &[u32], caches: &mut [&mut Cache]) -> Result<Tensor> {
        let n = ids.len();
        if n == 0 || n != caches.len() {
            candle_core::bail!("decode_step: {n} ids for {} caches", caches.len());
        }
        let c = &self.config;
        let (nh, nkv, d) = (c.num_attention_heads, c.kv_heads(), c.head_size());
        let rep = nh / nkv;
        let scale = 1.0 / (d as f64).sqrt();
        let offsets: Vec<usize> = caches.iter().map(|c| c.len()).collect();
        let input = Tensor::from_vec(ids.to_vec(), (n, 1), &self.device)?;
        let mut x = self.embed.forward(&input)?.to_dtype(self.dtype)?;
        for (layer, block) in self.blocks.iter().enumerate() {
            let h = block.attn_norm.forward(&x)?;
            let a = &block.attn;
            let [q, k, v] = a.qkv(&h)?;
            let mut ys = Vec::with_capacity(n);
            for (i, cache) in caches.iter_mut().enumerate() {
                let head = |t: &Tensor, heads: usize| -> Result<Tensor> {
                    t.narrow(0, i, 1)?.reshape((1, heads, 1, d))
                };
                let qi = (self.rope.apply(&head(&q, nh)?, offsets[i])? * scale)?;
                let ki = self.rope.apply(&head(&k, nkv)?, offsets[i])?;
                let vi = head(&v, nkv)?;
                let (kc, vc) = cache.layer_mut(layer).append(&ki, &vi)?;
                // GQA: the `rep` query heads of one kv head side by side, (1, nkv, rep, d).
                let qi = qi.reshape((1, nkv, rep, d))?;
                let p = softmax_last(&qi.matmul(&kc.t()?)?, self.dtype)?;
                ys.push(p.matmul(&vc)?.reshape((1, 1, nh * d))?);
            }
            let y = Tensor::cat(&ys, 0)?;
            x = (x + a.o.forward(&y)?)?;
            let h = block.mlp_norm.forward(&x)?;
            let m = &block.mlp;
            let [g, u]: [Tensor; 2] = Linear::forward_shared(&[&m.gate, &m.up], &h)?
                .try_into()
                .map_err(|_| candle_core::Error::Msg("gate/up projection count".into()))?;
            x = (x + m.down.forward(&(g.silu()? * u)?)?)?;
        }
        let logits = self.lm_head.forward(&self.norm.forward(&x)?)?;
        logits.to_dtype(DType::F32)?.squeeze(1)
    }
}
