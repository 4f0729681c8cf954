//! Mixed batches for continuous batching in `effbench serve`: one forward pass feeds several
//! independent sequences, each at its own position, each with any number of new tokens — a
//! chunk of a prompt being prefilled, or the one token of a sequence being decoded. The
//! weight-bound work (embeddings, q/k/v, output and MLP projections) runs once over every
//! token of the step, `(tokens, hidden)`; rope, the causal mask and attention run per
//! sequence against its own KV [`Cache`] (no padding); the output head runs only for the
//! rows whose logits are wanted. Numerically the same as [`Llama::forward`] one sequence at a
//! time (tested in `llama/tests.rs`).

use super::decode::Rows;
use super::layers::Linear;
use super::model::{Cache, Llama};
use candle_core::{DType, Result, Tensor};

/// One sequence's part of a mixed step.
pub struct Segment<'a> {
    /// Its new tokens (a prompt chunk, or one generated token).
    pub ids: &'a [u32],
    /// Its cache; the tokens continue it and are appended to it.
    pub cache: &'a mut Cache,
    /// Whether the caller needs the logits after the last of these tokens (false for a
    /// prompt chunk that is not the prompt's last: the output head is skipped for it).
    pub logits: bool,
}

impl Llama {
    /// Feeds `ids[i]` to the sequence of `caches[i]` (appending to it) and returns the next
    /// token logits `(n, vocab)` in f32.
    pub fn decode_step(&self, ids: &[u32], caches: &mut [&mut Cache]) -> Result<Tensor> {
        if ids.is_empty() || ids.len() != caches.len() {
            candle_core::bail!("decode_step: {} ids for {} caches", ids.len(), caches.len());
        }
        let mut segs: Vec<Segment> = caches
            .iter_mut()
            .zip(ids)
            .map(|(c, id)| Segment {
                ids: std::slice::from_ref(id),
                cache: c,
                logits: true,
            })
            .collect();
        self.forward_segments(&mut segs)
    }

    /// Runs every segment's tokens in one pass and returns f32 logits `(k, vocab)` for the
    /// last token of each of the `k` segments with `logits: true`, in order (an empty
    /// `(0, vocab)` tensor when none wants them).
    pub fn forward_segments(&self, segs: &mut [Segment]) -> Result<Tensor> {
        if segs.is_empty() || segs.iter().any(|s| s.ids.is_empty()) {
            candle_core::bail!("forward_segments needs at least one token per segment");
        }
        if segs.iter().all(|s| s.ids.len() == 1) && self.fused_decode() {
            let ids: Vec<u32> = segs.iter().map(|s| s.ids[0]).collect();
            let want: Vec<bool> = segs.iter().map(|s| s.logits).collect();
            let mut caches: Vec<&mut Cache> = segs.iter_mut().map(|s| &mut *s.cache).collect();
            return self.decode_fused(&ids, Rows::Each(&mut caches), Some(&want));
        }
        self.segments_tensors(segs)
    }

    /// [`Llama::forward_segments`] on candle tensors only (never the fused decode).
    pub(crate) fn segments_tensors(&self, segs: &mut [Segment]) -> Result<Tensor> {
        let c = &self.config;
        let (nh, nkv, d) = (c.num_attention_heads, c.kv_heads(), c.head_size());
        let scale = 1.0 / (d as f64).sqrt();
        let ids: Vec<u32> = segs.iter().flat_map(|s| s.ids.iter().copied()).collect();
        let total = ids.len();
        // (start row, length, offset in its sequence)
        let mut layout = Vec::with_capacity(segs.len());
        let mut start = 0;
        for s in segs.iter() {
            let (t, offset) = (s.ids.len(), s.cache.len());
            layout.push((start, t, offset));
            start += t;
        }
        let input = Tensor::from_vec(ids, (1, total), &self.device)?;
        let mut x = self
            .embed
            .forward(&input)?
            .to_dtype(self.dtype)?
            .squeeze(0)?;
        for (layer, block) in self.blocks.iter().enumerate() {
            let h = block.attn_norm.forward(&x)?;
            let a = &block.attn;
            let [q, k, v] = a.qkv(&h)?;
            let mut ys = Vec::with_capacity(segs.len());
            for (seg, &(start, t, offset)) in segs.iter_mut().zip(&layout) {
                // (t, heads * d) rows of this segment → (1, heads, t, d)
                let heads = |y: &Tensor, n: usize| -> Result<Tensor> {
                    y.narrow(0, start, t)?
                        .reshape((1, t, n, d))?
                        .transpose(1, 2)?
                        .contiguous()
                };
                let qi = (self.rope.apply(&heads(&q, nh)?, offset)? * scale)?;
                let ki = self.rope.apply(&heads(&k, nkv)?, offset)?;
                let vi = heads(&v, nkv)?;
                let (kc, vc) = seg.cache.layer_mut(layer).append(&ki, &vi)?;
                let y = self
                    .attend(a, &qi, &kc, &vc, offset)?
                    .reshape((t, nh * d))?;
                ys.push(y);
            }
            let y = if ys.len() == 1 {
                ys.swap_remove(0)
            } else {
                Tensor::cat(&ys, 0)?
            };
            x = (x + a.o.forward(&y)?)?;
            let h = block.mlp_norm.forward(&x)?;
            let m = &block.mlp;
            let [g, u]: [Tensor; 2] = Linear::forward_shared(&[&m.gate, &m.up], &h)?
                .try_into()
                .map_err(|_| candle_core::Error::Msg("gate/up projection count".into()))?;
            x = (x + m.down.forward(&(g.silu()? * u)?)?)?;
        }
        let rows: Vec<u32> = segs
            .iter()
            .zip(&layout)
            .filter(|(s, _)| s.logits)
            .map(|(_, (start, t, _))| (start + t - 1) as u32)
            .collect();
        if rows.is_empty() {
            return Tensor::zeros((0, c.vocab_size), DType::F32, &self.device);
        }
        let last = if rows.len() == total {
            x
        } else {
            let n = rows.len();
            x.index_select(&Tensor::from_vec(rows, n, &self.device)?, 0)?
        };
        let logits = self.lm_head.forward(&self.norm.forward(&last)?)?;
        logits.to_dtype(DType::F32)
    }
}
