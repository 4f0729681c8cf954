//! Training through a worker: each iteration is one `train` request carrying one batch
//! (`batch` windows of `seq_len + 1` corpus tokens); the worker runs one AdamW step and
//! reports its step time (worker clock) and loss. `steps` counts every step, the warm-up
//! iterations (unmeasured) included; the loss curve of the measured steps is kept as a series.

use super::session::Connection;
use super::CorpusBatches;
use anyhow::{bail, Result};
use effbench_harness::backend::{Extras, IterationCtx, Sample, Session, Work};
use effbench_harness::env::{PeakBandwidth, PeakFlops};
use effbench_harness::protocol::{decode, Fault, Op, TrainReply, WorkerError};
use effbench_harness::records::Series;
use effbench_harness::{MetricId, ModelInfo, RunSpec};
use serde_json::{json, Value};

/// A training run through a worker (one AdamW step per iteration).
pub struct TrainSession {
    conn: Connection,
    batches: CorpusBatches,
    tokens_per_step: u64,
    steps: u64,
    /// Steps taken so far, warm-up included.
    taken: u64,
    /// (measured step, loss) for the loss curve.
    curve: Vec<[f64; 2]>,
}

impl TrainSession {
    /// Starts the worker and loads the run's model for training.
    pub fn start(spec: &RunSpec) -> Result<TrainSession> {
        let batch = spec.usize_param("batch")?;
        let seq_len = spec.usize_param("seq_len")?;
        let steps = spec.usize_param("steps")? as u64;
        let opts =
            super::options::ProcessOptions::parse(&spec.options).map_err(anyhow::Error::msg)?;
        let extra = json!({"train": {
            "optimizer": "adamw", "lr": opts.lr, "weight_decay": opts.weight_decay,
            "betas": [0.9, 0.999], "eps": 1e-8,
            "batch": batch, "seq_len": seq_len,
        }});
        let Value::Object(extra) = extra else {
            bail!("load body is not an object")
        };
        let conn = Connection::start(spec, extra)?;
        let corpus_vocab = CorpusBatches::vocab_size();
        if conn.load.vocab_size < corpus_vocab {
            bail!(
                "training batches come from effbench's synthetic corpus ({corpus_vocab} token ids); \
                 the model's vocabulary of {} is smaller",
                conn.load.vocab_size
            );
        }
        Ok(TrainSession {
            conn,
            batches: CorpusBatches::new(batch, seq_len, steps),
            tokens_per_step: (batch * seq_len) as u64,
            steps,
            taken: 0,
            curve: Vec::new(),
        })
    }
}

impl Session for TrainSession {
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
        let batch = self.batches.next_batch();
        let body = json!({"inputs": {"batches": [batch]}});
        let Value::Object(body): Value = body else {
            bail!("request is not an object")
        };
        let reply = self.conn.call(Op::Train, body, ctx)?;
        let rtt = reply.round_trip;
        let r: TrainReply = match decode(reply.body, Op::Train) {
            Ok(r) => r,
            Err(e) => return Err(self.conn.abort(e)),
        };
        let bad = |m: String| WorkerError::new(Fault::BadReply, Op::Train, m);
        let [step] = r.steps[..] else {
            let e = bad(format!("`steps` has {} entries for 1 batch", r.steps.len()));
            return Err(self.conn.abort(e));
        };
        if let Err(m) =
            effbench_harness::plausible::check_worker_times([step.step_ns], r.op_ns, rtt)
        {
            return Err(self.conn.abort(bad(m)));
        }
        if !step.loss.is_finite() || step.step_ns == 0 {
            let e = bad(format!(
                "step reports loss {} and step_ns {}",
                step.loss, step.step_ns
            ));
            return Err(self.conn.abort(e));
        }
        self.conn.record(ctx, rtt, r.op_ns, r.memory.as_ref());
        self.taken += 1;
        let step_s = step.step_ns as f64 / 1e9;
        if !ctx.warmup {
            self.curve.push([self.taken as f64, step.loss]);
        }
        Ok(Sample {
            values: vec![
                (MetricId::StepTime, step_s * 1e3),
                (
                    MetricId::TrainThroughput,
                    self.tokens_per_step as f64 / step_s,
                ),
                (MetricId::TrainLoss, step.loss),
            ],
            work: Work {
                input_tokens: self.tokens_per_step,
                output_tokens: 0,
                requests: 0,
            },
            done: self.taken >= self.steps,
            ..Default::default()
        })
    }

    fn finish(&mut self) -> Result<Extras> {
        let mut ex = self.conn.finish();
        if !self.curve.is_empty() {
            ex.series.push(Series {
                name: "train_loss".into(),
                x_unit: "step".into(),
                y_unit: "nats/token".into(),
                source: self.conn.clock(),
                period_ms: None,
                points: std::mem::take(&mut self.curve),
            });
        }
        ex.notes.push(format!(
            "training data: effbench synthetic corpus (train stream), {} tokens per step; \
             {} steps in all, the warm-up steps train too but are not measured",
            self.tokens_per_step, self.taken
        ));
        Ok(ex)
    }

    fn timestamp_source(&self) -> String {
        self.conn.clock()
    }
}
