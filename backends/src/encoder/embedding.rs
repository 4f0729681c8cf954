//! Scenario `embedding`: every iteration embeds one batch of `batch` sequences of exactly
//! `seq_len` tokens (`[CLS]`, seeded ordinary token ids, `[SEP]`; no padding) and waits for
//! the pooled f32 vectors. Reported: batch latency per iteration; embeddings/s and tokens/s
//! by the runner; FLOPs per embedding, achieved FLOP/s and MFU (against the matmul probe of
//! the run's dtype and device, measured after the window) in `finish`.

use super::model::{forward_flops, Encoder};
use crate::candle_infer::synthetic_prompts;
use anyhow::{bail, Result};
use effbench_harness::backend::{Extras, IterationCtx, Sample, Work};
use effbench_harness::env::PeakFlops;
use effbench_harness::runner::WALL_CLOCK;
use effbench_harness::{Metric, MetricId, ModelInfo, RunSpec, Session};
use std::time::Instant;
use tokenizers::Tokenizer;

/// Sequences of `len` tokens: `[CLS]`, `len - 2` seeded ordinary ids (of `0..vocab`
/// without `special`), `[SEP]` (ids from `tokenizer`). The `process` backend sends the same.
pub fn synthetic_sequences(
    tokenizer: &Tokenizer,
    vocab: usize,
    special: &[u32],
    seed: u64,
    batch: usize,
    len: usize,
) -> Result<Vec<Vec<u32>>> {
    if len < 2 {
        bail!("seq_len {len}: an encoder input needs at least [CLS] and [SEP]");
    }
    let id = |t: &str| {
        tokenizer
            .token_to_id(t)
            .ok_or_else(|| anyhow::anyhow!("the tokenizer has no {t} token"))
    };
    let (cls, sep) = (id("[CLS]")?, id("[SEP]")?);
    let body = synthetic_prompts(seed, batch * (len - 2), vocab, special)?;
    Ok((0..batch)
        .map(|b| {
            let mut s = Vec::with_capacity(len);
            s.push(cls);
            s.extend_from_slice(&body[b * (len - 2)..(b + 1) * (len - 2)]);
            s.push(sep);
            s
        })
        .collect())
}

/// An embedding run.
pub struct EmbeddingSession {
    enc: Encoder,
    inputs: Vec<Vec<u32>>,
    /// Wall time of each measured batch, seconds.
    batch_s: Vec<f64>,
    device_label: String,
    peak: Option<PeakFlops>,
}

impl EmbeddingSession {
    /// A session embedding the run's synthetic batch with `enc`.
    pub fn new(enc: Encoder, spec: &RunSpec) -> Result<EmbeddingSession> {
        let batch = spec.usize_param("batch")?;
        let len = spec.usize_param("seq_len")?;
        let inputs = synthetic_sequences(
            &enc.tokenizer,
            enc.config.vocab_size,
            &enc.special_ids,
            spec.seed,
            batch,
            len,
        )?;
        Ok(EmbeddingSession {
            enc,
            inputs,
            batch_s: Vec::new(),
            device_label: spec.device()?.to_string(),
            peak: None,
        })
    }

    fn flops_per_embedding(&self) -> f64 {
        forward_flops(&self.enc.config, self.inputs[0].len())
    }
}

impl Session for EmbeddingSession {
    fn model_info(&self) -> &ModelInfo {
        &self.enc.info
    }

    fn iteration(&mut self, ctx: IterationCtx) -> Result<Sample> {
        let t = Instant::now();
        let out = self.enc.embed_ids(&self.inputs)?;
        let dt = t.elapsed().as_secs_f64();
        debug_assert_eq!(out.len(), self.inputs.len());
        if !ctx.warmup {
            self.batch_s.push(dt);
        }
        let (b, len) = (self.inputs.len() as u64, self.inputs[0].len() as u64);
        Ok(Sample {
            values: vec![(MetricId::BatchLatency, dt * 1e3)],
            work: Work {
                input_tokens: b * len,
                output_tokens: 0,
                requests: b,
            },
            ..Default::default()
        })
    }

    fn finish(&mut self) -> Result<Extras> {
        let fpe = self.flops_per_embedding();
        let src = "analytic: 2 N T + 4 L H T^2 per sequence (docs/encoders.md)";
        let mut metrics = vec![Metric::scalar(MetricId::FlopsPerEmbedding, fpe, src)];
        let total_s: f64 = self.batch_s.iter().sum();
        let mut notes = Vec::new();
        if total_s > 0.0 {
            let done = (self.batch_s.len() * self.inputs.len()) as f64;
            let achieved = fpe * done / total_s;
            let asrc = "flops_per_embedding x embeddings of the measured batches / their wall time";
            metrics.push(Metric::scalar(MetricId::AchievedFlops, achieved, asrc));
            match crate::train::flops::peak_flops(
                &self.enc.device,
                self.enc.dtype,
                &self.device_label,
            ) {
                Ok(p) => {
                    metrics.push(Metric::scalar(
                        MetricId::Mfu,
                        100.0 * achieved / p.flops_per_s,
                        format!("achieved_flops / env.peak_flops ({})", p.method),
                    ));
                    self.peak = Some(p);
                }
                Err(e) => notes.push(format!("mfu: the matmul probe failed ({e}); not reported")),
            }
        }
        if let Some(w) = self.enc.weights_remaining {
            metrics.push(Metric::scalar(
                MetricId::WeightsRemaining,
                w,
                "non-zero weights after pruning / params_total",
            ));
        }
        notes.push(format!(
            "embedding: {} sequence(s) of {} tokens per batch ([CLS], seeded ordinary ids, [SEP]); pooling {} ({}); timed with {WALL_CLOCK}",
            self.inputs.len(),
            self.inputs[0].len(),
            self.enc.pooling.describe(),
            self.enc.pooling.source
        ));
        Ok(Extras {
            metrics,
            series: Vec::new(),
            notes,
        })
    }

    fn peak_flops(&self) -> Option<PeakFlops> {
        self.peak.clone()
    }
}
