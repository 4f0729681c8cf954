//! The training [`Session`]: one harness iteration is one optimizer step. Evaluations and
//! checkpoint writes inside an iteration are reported as overhead (not step time). After the
//! last step it reports throughput, loss, perplexity against the floor, time-to-target,
//! FLOPs and MFU; when stopped early (Ctrl-C, an error) it saves a checkpoint to resume from,
//! unless training diverged, in which case the last good checkpoint is kept.

use super::checkpoint::TargetHit;
use super::config::entropy_floor;
use super::flops::{matmul_params, peak_flops, train_flops_per_step};
use super::trainer::{Diverged, Trainer};
use anyhow::Result;
use effbench_harness::backend::{Extras, IterationCtx, Sample};
use effbench_harness::env::PeakFlops;
use effbench_harness::records::Series;
use effbench_harness::runner::WALL_CLOCK;
use effbench_harness::{Metric, MetricId, ModelInfo, Session};
use std::path::PathBuf;
use std::time::Instant;

/// Source label of analytic FLOP counts.
pub const ANALYTIC: &str = "analytic: (6 N + 12 L H Q T) per token, docs/training.md#flops-and-mfu";

/// A training run loaded for the harness runner.
pub struct TrainSession {
    /// The weights, optimizer and loop state.
    pub trainer: Trainer,
    /// Facts about the model being trained (written into the result).
    pub info: ModelInfo,
    /// Where this run's checkpoint goes.
    pub checkpoint_dir: PathBuf,
    /// Device name for the probe (`cpu`, `cuda:0`).
    pub device_label: String,
    /// The run's seed (data order, initial weights, bootstrap).
    pub seed: u64,
    /// Provenance written into each checkpoint's config.json.
    pub provenance: serde_json::Value,
    /// Notes gathered while loading (resume, warnings).
    pub notes: Vec<String>,
    /// Step times (s) of the measured (non-warm-up) steps of this process.
    pub measured: Vec<f64>,
    /// Step of the newest checkpoint on disk written by this run.
    pub saved_step: Option<u64>,
    /// The last step ended cleanly (nothing half-applied).
    pub clean: bool,
    /// A non-finite loss or gradient ended the run.
    pub diverged: bool,
    /// The matmul-probe peak measured after training (MFU's denominator).
    pub peak: Option<PeakFlops>,
}

impl TrainSession {
    fn finished(&self) -> bool {
        let t = &self.trainer;
        t.state.step >= t.cfg.steps || (t.cfg.stop_at_target && t.state.target.is_some())
    }

    /// Runs `f` on the trainer; a [`Diverged`] error marks the run and names the checkpoint
    /// that is kept.
    fn guard<T>(&mut self, f: impl FnOnce(&mut Trainer) -> Result<T>) -> Result<T> {
        f(&mut self.trainer).map_err(|e| match e.downcast_ref::<Diverged>() {
            Some(d) => {
                self.diverged = true;
                anyhow::anyhow!("training diverged: {d}; {}", self.checkpoint_text())
            }
            None => e,
        })
    }

    /// Writes a checkpoint of the current state (which the caller evaluated).
    fn save(&mut self) -> Result<()> {
        if !self.trainer.cfg.save_checkpoint {
            return Ok(());
        }
        self.trainer
            .save(&self.checkpoint_dir, self.provenance.clone())?;
        self.saved_step = Some(self.trainer.state.step);
        Ok(())
    }

    fn checkpoint_text(&self) -> String {
        match self.saved_step {
            Some(s) => format!(
                "the last good checkpoint (step {s}) is kept in '{}'",
                self.checkpoint_dir.display()
            ),
            None => "no checkpoint was written before it (see [options] checkpoint_every)".into(),
        }
    }

    fn series(&self) -> Vec<Series> {
        let s = &self.trainer.state;
        let make = |name: &str, y_unit: &str, source: &str, pts: Vec<[f64; 2]>| Series {
            name: name.into(),
            x_unit: "step".into(),
            y_unit: y_unit.into(),
            source: source.into(),
            period_ms: None,
            points: pts,
        };
        let heldout = format!("held-out split, {} tokens", self.trainer.cfg.eval_tokens);
        vec![
            make(
                "train_loss",
                "nats/token",
                "training batches",
                s.losses.iter().map(|l| [l[0], l[1]]).collect(),
            ),
            make(
                "train_time",
                "s",
                WALL_CLOCK,
                s.losses.iter().map(|l| [l[0], l[2]]).collect(),
            ),
            make(
                "heldout_loss",
                "nats/token",
                &heldout,
                s.evals.iter().map(|e| [e[0], e[1]]).collect(),
            ),
        ]
    }

    fn metrics(&mut self, final_loss: f64) -> Vec<Metric> {
        let t = &self.trainer;
        let (cfg, s) = (&t.cfg, &t.state);
        let fps = train_flops_per_step(&t.model_cfg, cfg.batch, cfg.seq_len);
        let tokens = cfg.tokens_per_step() as f64;
        let seed = self.seed;
        let heldout = format!("held-out split, {} tokens", cfg.eval_tokens);
        let floor = entropy_floor();
        let floor_src = "entropy rate of the synthetic Markov source (exact)";
        let mut out = vec![
            Metric::scalar(MetricId::TrainTime, s.train_time_s, WALL_CLOCK),
            Metric::scalar(MetricId::HeldoutLoss, final_loss, heldout.as_str()),
            Metric::scalar(
                MetricId::HeldoutPerplexity,
                final_loss.exp(),
                heldout.as_str(),
            ),
            Metric::scalar(MetricId::EntropyFloor, floor, floor_src),
            Metric::scalar(MetricId::PerplexityFloor, floor.exp(), floor_src),
            Metric::scalar(MetricId::TrainFlops, fps * s.step as f64, ANALYTIC),
        ];
        let tail = s.losses.len().div_ceil(10);
        if tail > 0 {
            let last = &s.losses[s.losses.len() - tail..];
            let mean = last.iter().map(|l| l[1]).sum::<f64>() / tail as f64;
            out.push(Metric::scalar(
                MetricId::TrainLoss,
                mean,
                "training batches",
            ));
        }
        if let Some(TargetHit { step, time_s, .. }) = s.target {
            out.push(Metric::scalar(
                MetricId::TimeToTargetLoss,
                time_s,
                WALL_CLOCK,
            ));
            out.push(Metric::scalar(
                MetricId::StepsToTargetLoss,
                step as f64,
                "training loop",
            ));
        }
        let window: f64 = self.measured.iter().sum();
        if window > 0.0 {
            let n = self.measured.len() as f64;
            let rate = |per_step: f64| -> (f64, Vec<f64>) {
                (
                    per_step * n / window,
                    self.measured.iter().map(|dt| per_step / dt).collect(),
                )
            };
            let (v, xs) = rate(tokens);
            out.push(Metric::aggregate(
                MetricId::TrainThroughput,
                v,
                xs,
                WALL_CLOCK,
                seed,
            ));
            let (v, xs) = rate(cfg.batch as f64);
            out.push(Metric::aggregate(
                MetricId::TrainSampleThroughput,
                v,
                xs,
                WALL_CLOCK,
                seed,
            ));
            let (v, xs) = rate(fps);
            out.push(Metric::aggregate(
                MetricId::AchievedFlops,
                v,
                xs.clone(),
                ANALYTIC,
                seed,
            ));
            if let Some(p) = &self.peak {
                let pct = |x: f64| 100.0 * x / p.flops_per_s;
                let src = "analytic FLOPs / matmul-probe peak (env.peak_flops)";
                out.push(Metric::aggregate(
                    MetricId::Mfu,
                    pct(v),
                    xs.iter().map(|x| pct(*x)).collect(),
                    src,
                    seed,
                ));
            }
        }
        out
    }

    fn notes(&self) -> Vec<String> {
        let t = &self.trainer;
        let c = &t.model_cfg;
        let mut notes = self.notes.clone();
        let cpu = t.device.is_cpu();
        let shards = t.cfg.micro_batches(cpu);
        let sizes = shards
            .iter()
            .map(|s| s.1.to_string())
            .collect::<Vec<_>>()
            .join("/");
        notes.push(if shards.len() > 1 && cpu {
            format!(
                "data parallel: {} micro-batches of {sizes} sequences per step, one thread each \
                 (single-threaded matmuls inside; candle element-wise threads {}), gradients \
                 summed in micro-batch order",
                shards.len(),
                std::env::var(crate::loader::CANDLE_THREADS_ENV)
                    .unwrap_or_else(|_| "unset (all cores)".into())
            )
        } else if shards.len() > 1 {
            format!(
                "gradient accumulation: {} micro-batches of {sizes} sequences per step, one after \
                 the other on the GPU, gradients summed in micro-batch order",
                shards.len()
            )
        } else if cpu {
            format!(
                "no data parallelism: the whole batch per step, matmuls on {} thread(s)",
                candle_core::utils::get_num_threads()
            )
        } else {
            "no data parallelism: the whole batch per step on the GPU".to_string()
        });
        notes.push(format!(
            "FLOPs per step {:.4e} = (6 x N {} + 12 x L {} x H {} x Q {} x T {}) x {} tokens",
            train_flops_per_step(c, t.cfg.batch, t.cfg.seq_len),
            matmul_params(c),
            c.num_hidden_layers,
            c.num_attention_heads,
            c.head_size(),
            t.cfg.seq_len,
            t.cfg.tokens_per_step()
        ));
        notes.push(match t.state.target {
            Some(h) => format!(
                "target_loss {} reached at step {} after {:.2} s of training (held-out loss {:.4})",
                t.cfg.target_loss, h.step, h.time_s, h.loss
            ),
            None => format!(
                "target_loss {} not reached in {} steps (best held-out loss {:.4})",
                t.cfg.target_loss,
                t.state.step,
                t.state
                    .evals
                    .iter()
                    .map(|e| e[1])
                    .fold(f64::INFINITY, f64::min)
            ),
        });
        if self.measured.is_empty() {
            notes.push("no step was measured (all were warm-up): no throughput or MFU".into());
        }
        notes
    }
}

impl Session for TrainSession {
    fn model_info(&self) -> &ModelInfo {
        &self.info
    }

    fn iteration(&mut self, ctx: IterationCtx) -> Result<Sample> {
        let mut sample = Sample::default();
        if self.finished() {
            sample.done = true;
            return Ok(sample);
        }
        let mut overhead = 0.0;
        if self.trainer.state.evals.is_empty() {
            let t = Instant::now();
            self.guard(|tr| tr.evaluate())?; // the untrained loss, the curve's first point
            overhead += t.elapsed().as_secs_f64();
        }
        self.clean = false;
        let step = self.guard(|tr| tr.step())?;
        self.clean = true;
        if !ctx.warmup {
            self.measured.push(step.seconds);
        }
        let t = Instant::now();
        let (n, cfg) = (self.trainer.state.step, &self.trainer.cfg);
        let checkpoint = cfg.checkpoint_every > 0 && n % cfg.checkpoint_every == 0;
        // Checkpoint steps are evaluated too, so a saved checkpoint always has a finite loss.
        if n % cfg.eval_every == 0 || n >= cfg.steps || checkpoint {
            self.guard(|tr| tr.evaluate())?;
        }
        if checkpoint && !self.finished() {
            self.save()?;
        }
        overhead += t.elapsed().as_secs_f64();
        sample.values.push((MetricId::StepTime, step.seconds * 1e3));
        // Tokens processed by the step: the work behind energy_per_training_token.
        sample.work.input_tokens = self.trainer.cfg.tokens_per_step();
        sample.done = self.finished();
        sample.overhead_s = overhead;
        Ok(sample)
    }

    fn finish(&mut self) -> Result<Extras> {
        let step = self.trainer.state.step;
        if self.trainer.last_eval_step() != Some(step) {
            self.guard(|tr| tr.evaluate())?;
        }
        let final_loss = self.trainer.state.evals.last().map_or(f64::NAN, |e| e[1]);
        if self.saved_step != Some(step) {
            self.save()?;
        }
        let mut notes = self.notes();
        match peak_flops(
            &self.trainer.device,
            self.trainer.cfg.dtype,
            &self.device_label,
        ) {
            Ok(p) => self.peak = Some(p),
            Err(e) => notes.push(format!("no matmul probe, so no MFU: {e:#}")),
        }
        notes.push(if self.trainer.cfg.save_checkpoint {
            format!(
                "checkpoint at step {step} (HF format; the candle backend loads it): {}",
                self.checkpoint_dir.display()
            )
        } else {
            "no checkpoint written ([options] save_checkpoint = false, the default for presets)"
                .into()
        });
        Ok(Extras {
            metrics: self.metrics(final_loss),
            series: self.series(),
            notes,
        })
    }

    fn stopped(&mut self) -> Result<Extras> {
        let mut notes = self.notes.clone();
        let step = self.trainer.state.step;
        if !self.trainer.cfg.save_checkpoint {
            notes.push(format!(
                "stopped at step {step}; no checkpoint ([options] save_checkpoint = false)"
            ));
        } else if self.diverged {
            notes.push(format!("training diverged; {}", self.checkpoint_text()));
        } else if !self.clean {
            notes.push(format!("stopped inside a step; {}", self.checkpoint_text()));
        } else if step > 0 {
            let evaluated = self.trainer.last_eval_step() == Some(step);
            if self.saved_step != Some(step)
                && !evaluated
                && self.guard(|tr| tr.evaluate()).is_err()
            {
                notes.push(format!("the weights diverged; {}", self.checkpoint_text()));
            } else {
                // Stopped right after a periodic checkpoint: it already holds this step.
                if self.saved_step != Some(step) {
                    self.save()?;
                }
                notes.push(format!(
                    "checkpoint saved at step {step} in '{}'; `effbench run --resume` continues \
                     from it",
                    self.checkpoint_dir.display()
                ));
            }
        }
        Ok(Extras {
            series: self.series(),
            notes,
            ..Default::default()
        })
    }

    fn peak_flops(&self) -> Option<PeakFlops> {
        self.peak.clone()
    }
}
