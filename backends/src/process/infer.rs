//! Inference through a worker: each iteration is one `run` request (a batch of seeded
//! synthetic prompts, greedy decode of exactly `gen_len` tokens). TTFT/TPOT/ITL come from the
//! emission timestamps the worker took; the harness adds its round-trip overhead.

use super::session::Connection;
use super::{local_vocab, prompts};
use anyhow::{bail, Result};
use effbench_harness::backend::{
    Emission, Extras, GenerationTrace, IterationCtx, Sample, Session, Work,
};
use effbench_harness::env::{PeakBandwidth, PeakFlops};
use effbench_harness::protocol::{decode, Fault, Op, RunReply, WorkerError};
use effbench_harness::{ModelInfo, RunSpec};
use serde_json::{json, Map, Value};

/// An inference run through a worker (one `run` request per iteration).
pub struct InferSession {
    conn: Connection,
    prompts: Vec<Vec<u32>>,
    gen_len: usize,
}

impl InferSession {
    /// Starts the worker, loads the run's model and builds the prompts.
    pub fn start(spec: &RunSpec) -> Result<InferSession> {
        let conn = Connection::start(spec, Map::new())?;
        let vocab = conn.load.vocab_size;
        // Local HF directory: the same special-id rule as the candle backend, so both get
        // the same prompts; otherwise the worker's list.
        let special = match conn.model.local.as_deref().and_then(local_vocab) {
            Some((_, special)) => special,
            None => conn.load.special_ids.clone(),
        };
        let prompts = prompts(spec, vocab, &special)?;
        Ok(InferSession {
            conn,
            prompts,
            gen_len: spec.usize_param("gen_len")?,
        })
    }
}

/// Checks a `run` reply against the request: every sequence got `gen_len` tokens, the
/// emissions carry `gen_len` tokens in time order.
pub fn check_run(r: &RunReply, batch: usize, gen_len: usize) -> Result<(), String> {
    if r.outputs.token_ids.len() != batch {
        return Err(format!(
            "outputs.token_ids has {} sequences, the request had {batch}",
            r.outputs.token_ids.len()
        ));
    }
    if let Some(s) = r.outputs.token_ids.iter().find(|s| s.len() != gen_len) {
        return Err(format!(
            "a sequence has {} generated tokens, gen_len is {gen_len}",
            s.len()
        ));
    }
    let total: u64 = r.emissions.iter().map(|e| e.tokens as u64).sum();
    if total != gen_len as u64 {
        return Err(format!(
            "emissions carry {total} tokens, gen_len is {gen_len}"
        ));
    }
    if r.emissions.windows(2).any(|w| w[1].t_ns < w[0].t_ns) {
        return Err("emission timestamps go backwards".into());
    }
    Ok(())
}

impl Session for InferSession {
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
        let body = json!({"inputs": {"prompt_ids": self.prompts, "gen_len": self.gen_len}});
        let Value::Object(body) = body else {
            bail!("request is not an object")
        };
        let reply = self.conn.call(Op::Run, body, ctx)?;
        let rtt = reply.round_trip;
        let batch = self.prompts.len();
        let r: RunReply = match decode(reply.body, Op::Run).and_then(|r: RunReply| {
            check_run(&r, batch, self.gen_len)
                .and_then(|_| {
                    effbench_harness::plausible::check_worker_times(
                        r.emissions.iter().map(|e| e.t_ns),
                        r.op_ns,
                        rtt,
                    )
                })
                .map(|_| r)
                .map_err(|m| WorkerError::new(Fault::BadReply, Op::Run, m))
        }) {
            Ok(r) => r,
            Err(e) => return Err(self.conn.abort(e)),
        };
        self.conn.record(ctx, rtt, r.op_ns, r.memory.as_ref());
        let prompt_len = self.prompts.first().map_or(0, Vec::len);
        Ok(Sample {
            generation: Some(GenerationTrace {
                batch,
                prompt_tokens: prompt_len,
                emissions: r
                    .emissions
                    .iter()
                    .map(|e| Emission {
                        t_ns: e.t_ns,
                        tokens: e.tokens,
                    })
                    .collect(),
            }),
            values: Vec::new(),
            work: Work {
                input_tokens: (batch * prompt_len) as u64,
                output_tokens: (batch * self.gen_len) as u64,
                requests: 1,
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
