//! Embedding through a worker (scenario `embedding`): each iteration is one `embed` request
//! carrying the same `[CLS] ... [SEP]` sequences the `candle-encoder` backend embeds (built
//! by effbench from the model directory's tokenizer.json and config.json). Batch latency is
//! the worker's own `embed_ns`; the harness adds its round-trip overhead.

use super::local_vocab;
use super::session::Connection;
use crate::encoder::embedding::synthetic_sequences;
use anyhow::{anyhow, bail, Result};
use effbench_harness::backend::{Extras, IterationCtx, Sample, Session, Work};
use effbench_harness::env::{PeakBandwidth, PeakFlops};
use effbench_harness::protocol::{decode, EmbedReply, Fault, Op, WorkerError};
use effbench_harness::{MetricId, ModelInfo, RunSpec};
use serde_json::{json, Map, Value};

/// An embedding run through a worker.
pub struct EmbedSession {
    conn: Connection,
    inputs: Vec<Vec<u32>>,
}

/// Checks an `embed` reply: one finite vector per sequence, all of one width.
pub fn check_embed(r: &EmbedReply, batch: usize) -> Result<(), String> {
    if r.embeddings.len() != batch {
        return Err(format!(
            "embeddings has {} vectors, the request had {batch} sequences",
            r.embeddings.len()
        ));
    }
    let dim = r.embeddings.first().map_or(0, Vec::len);
    if dim == 0 || r.embeddings.iter().any(|v| v.len() != dim) {
        return Err("embeddings are empty or of different widths".into());
    }
    if r.embeddings.iter().flatten().any(|v| !v.is_finite()) {
        return Err("embeddings hold non-finite values".into());
    }
    Ok(())
}

impl EmbedSession {
    /// Starts the worker, loads the encoder and builds the sequences.
    pub fn start(spec: &RunSpec) -> Result<EmbedSession> {
        let conn = Connection::start(spec, Map::new())?;
        let dir = conn
            .model
            .local
            .clone()
            .ok_or_else(|| anyhow!("scenario embedding needs a local HF model directory"))?;
        let tok_path = dir.join("tokenizer.json");
        let tok = tokenizers::Tokenizer::from_file(&tok_path)
            .map_err(|e| anyhow!("cannot load tokenizer '{}': {e}", tok_path.display()))?;
        let (vocab, special) =
            local_vocab(&dir).unwrap_or((conn.load.vocab_size, conn.load.special_ids.clone()));
        let inputs = synthetic_sequences(
            &tok,
            vocab,
            &special,
            spec.seed,
            spec.usize_param("batch")?,
            spec.usize_param("seq_len")?,
        )?;
        Ok(EmbedSession { conn, inputs })
    }
}

impl Session for EmbedSession {
    fn model_info(&self) -> &ModelInfo {
        &self.conn.info
    }

    fn peak_flops(&self) -> Option<PeakFlops> {
        self.conn.peak_flops()
    }

    fn peak_bandwidth(&self) -> Option<PeakBandwidth> {
        self.conn.peak_bandwidth()
    }

    fn iteration(&mut self, ctx: IterationCtx) -> Result<Sample> {
        let Value::Object(body) = json!({"inputs": {"input_ids": self.inputs}}) else {
            bail!("request is not an object")
        };
        let reply = self.conn.call(Op::Embed, body, ctx)?;
        let rtt = reply.round_trip;
        let batch = self.inputs.len();
        let r: EmbedReply = match decode(reply.body, Op::Embed).and_then(|r: EmbedReply| {
            check_embed(&r, batch)
                .map(|_| r)
                .map_err(|m| WorkerError::new(Fault::BadReply, Op::Embed, m))
        }) {
            Ok(r) => r,
            Err(e) => return Err(self.conn.abort(e)),
        };
        self.conn.record(ctx, rtt, r.op_ns, r.memory.as_ref());
        let len = self.inputs[0].len() as u64;
        Ok(Sample {
            values: vec![(MetricId::BatchLatency, r.embed_ns as f64 / 1e6)],
            work: Work {
                input_tokens: batch as u64 * len,
                output_tokens: 0,
                requests: batch as u64,
            },
            ..Default::default()
        })
    }

    fn finish(&mut self) -> Result<Extras> {
        Ok(self.conn.finish())
    }

    fn timestamp_source(&self) -> String {
        self.conn.clock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(v: Vec<Vec<f32>>) -> EmbedReply {
        EmbedReply {
            embeddings: v,
            embed_ns: 1,
            op_ns: None,
            memory: None,
        }
    }

    #[test]
    fn replies_are_checked() {
        assert!(check_embed(&reply(vec![vec![1.0, 0.0]; 2]), 2).is_ok());
        assert!(check_embed(&reply(vec![vec![1.0]]), 2)
            .unwrap_err()
            .contains("1 vectors"));
        let e = check_embed(&reply(vec![vec![1.0], vec![1.0, 2.0]]), 2).unwrap_err();
        assert!(e.contains("different widths"), "{e}");
        let e = check_embed(&reply(vec![vec![f32::NAN]]), 1).unwrap_err();
        assert!(e.contains("non-finite"), "{e}");
    }
}
