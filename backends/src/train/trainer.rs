//! The training loop's state and its three operations: one optimizer step, a held-out
//! evaluation, and saving/restoring a checkpoint. Master weights are f32 `Var`s in a
//! `candle_nn::VarMap`, initialised from the same seeded generator as the `seeded` model (so a
//! width-128, depth-4 run with seed 42 starts from exactly the `seeded` weights). Each step
//! builds the [`Llama`] from those variables (cast to bf16 for bf16 runs: mixed precision with
//! f32 master weights and optimizer state), so training runs the very model code inference
//! runs.

use super::checkpoint::{self, Loaded, TargetHit, TrainerState, STATE_FORMAT};
use super::config::TrainConfig;
use super::data::{heldout, Batch, TrainData};
use super::optim::{AdamW, AdamWParams};
use crate::default_model::seeded_tensors;
use crate::llama::{Llama, LlamaConfig, Logits};
use crate::preset::SeededWeights;
use anyhow::{anyhow, bail, Result};
use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

/// Mean next-token cross-entropy of `model` on `batch` and the token count.
fn batch_loss(model: &Llama, batch: &Batch, vocab: usize) -> Result<(Tensor, usize)> {
    let (rows, t) = batch.inputs.dims2()?;
    let logits = model.forward(&batch.inputs, None, Logits::All)?;
    let logits = logits.reshape((rows * t, vocab))?;
    let loss = candle_nn::loss::cross_entropy(&logits, &batch.targets.flatten_all()?)?;
    Ok((loss, rows * t))
}

/// While one exists, candle's matmuls (the `gemm` crate) run on the calling thread only: the
/// data-parallel workers are the threads. Counted, so overlapping training steps in one
/// process (tests) restore the threshold only when the last one ends.
struct SingleThreadedMatmuls;

/// (active guards, the threshold to restore).
static SINGLE_THREADED: Mutex<(usize, usize)> = Mutex::new((0, 0));

impl SingleThreadedMatmuls {
    fn enter() -> SingleThreadedMatmuls {
        let mut g = SINGLE_THREADED.lock().unwrap_or_else(|e| e.into_inner());
        if g.0 == 0 {
            g.1 = gemm_common::gemm::get_threading_threshold();
            gemm_common::gemm::set_threading_threshold(usize::MAX);
        }
        g.0 += 1;
        SingleThreadedMatmuls
    }
}

impl Drop for SingleThreadedMatmuls {
    fn drop(&mut self) {
        let mut g = SINGLE_THREADED.lock().unwrap_or_else(|e| e.into_inner());
        g.0 -= 1;
        if g.0 == 0 {
            gemm_common::gemm::set_threading_threshold(g.1);
        }
    }
}

/// A training run in progress.
pub struct Trainer {
    /// The run's resolved settings.
    pub cfg: TrainConfig,
    /// The architecture being trained.
    pub model_cfg: LlamaConfig,
    /// Where weights and batches live.
    pub device: Device,
    /// Master weights (f32), by HF name.
    pub varmap: VarMap,
    /// The same variables, sorted by name (the order of the optimizer and checkpoints).
    vars: Vec<(String, Var)>,
    opt: AdamW,
    data: TrainData,
    heldout: Batch,
    /// Step, curves, target hit: what a checkpoint saves besides tensors.
    pub state: TrainerState,
}

/// Training diverged: a non-finite loss or gradient norm at `step` (1-based). The weights
/// were not updated by that step.
#[derive(Debug, Clone, PartialEq)]
pub struct Diverged {
    /// The step (1-based) whose loss or gradient was not finite.
    pub step: u64,
    /// What was not finite, with its value.
    pub what: String,
}

impl std::fmt::Display for Diverged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at step {}", self.what, self.step)
    }
}

impl std::error::Error for Diverged {}

/// One step's outcome.
#[derive(Debug, Clone, Copy)]
pub struct StepDone {
    /// Training loss of the step's batch (nats/token).
    pub loss: f64,
    /// Wall time of the step (forward, backward, clipping, update), seconds.
    pub seconds: f64,
}

impl Trainer {
    /// Fresh weights from `seed` (the `seeded` model's generator) and zero optimizer state.
    pub fn new(
        cfg: TrainConfig,
        run_id: &str,
        params: serde_json::Value,
        seed: u64,
        device: &Device,
    ) -> Result<Trainer> {
        let model_cfg = cfg.model();
        model_cfg.check()?;
        let varmap = VarMap::new();
        let mut vars = Vec::new();
        {
            let mut data = varmap
                .data()
                .lock()
                .map_err(|_| anyhow!("VarMap lock poisoned"))?;
            match &cfg.preset {
                // A preset: the tensors the model code asks for, drawn on the host in f32
                // and moved to the device one at a time (its seed, not the run's).
                Some(p) => {
                    let seeded = SeededWeights::recording(p.seed);
                    let vb = VarBuilder::from_backend(
                        Box::new(seeded.clone()),
                        candle_core::DType::F32,
                        device.clone(),
                    );
                    drop(Llama::from_varbuilder(&model_cfg, vb)?);
                    for (name, t) in seeded.take() {
                        let var = Var::from_tensor(&t)?;
                        data.insert(name.clone(), var.clone());
                        vars.push((name, var));
                    }
                }
                None => {
                    for t in seeded_tensors(&model_cfg, seed) {
                        let var = Var::from_tensor(&Tensor::from_vec(t.data, t.shape, device)?)?;
                        data.insert(t.name.clone(), var.clone());
                        vars.push((t.name, var));
                    }
                }
            }
        }
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let opt = AdamW::new(
            &vars,
            AdamWParams {
                beta1: cfg.beta1,
                beta2: cfg.beta2,
                eps: cfg.eps,
                weight_decay: cfg.weight_decay,
                grad_clip: cfg.grad_clip,
            },
        )?;
        let data = TrainData::new(seed, cfg.batch, cfg.seq_len);
        let heldout = heldout(data.corpus(), cfg.eval_tokens, cfg.seq_len, device)?;
        Ok(Trainer {
            state: TrainerState {
                format: STATE_FORMAT.into(),
                run_id: run_id.into(),
                step: 0,
                train_time_s: 0.0,
                optimizer_updates: 0,
                losses: Vec::new(),
                evals: Vec::new(),
                target: None,
                params,
            },
            cfg,
            model_cfg,
            device: device.clone(),
            varmap,
            vars,
            opt,
            data,
            heldout,
        })
    }

    /// Continues from a checkpoint of the same configuration.
    pub fn restore(&mut self, loaded: Loaded) -> Result<()> {
        if loaded.state.params != self.state.params {
            bail!(
                "the checkpoint was written by a run with other settings ({}), not this one ({})",
                loaded.state.params,
                self.state.params
            );
        }
        for (name, var) in &self.vars {
            let t = loaded
                .weights
                .get(name)
                .ok_or_else(|| anyhow!("checkpoint weights lack '{name}'"))?;
            if t.shape() != var.shape() {
                bail!(
                    "checkpoint weight '{name}' has shape {:?}, the model {:?}",
                    t.dims(),
                    var.dims()
                );
            }
            var.set(&t.to_device(&self.device)?)?;
        }
        self.opt
            .load_state(&loaded.optimizer, loaded.state.optimizer_updates)?;
        self.state = loaded.state;
        Ok(())
    }

    /// The model over the current weights: tracked for training, detached for evaluation.
    pub fn model(&self, train: bool) -> Result<Llama> {
        let tensors: HashMap<String, Tensor> = self
            .vars
            .iter()
            .map(|(n, v)| {
                let t = v.as_tensor();
                (n.clone(), if train { t.clone() } else { t.detach() })
            })
            .collect();
        let vb = VarBuilder::from_tensors(tensors, self.cfg.dtype, &self.device);
        Ok(Llama::from_varbuilder(&self.model_cfg, vb)?)
    }

    /// Mean next-token cross-entropy of `model` on `batch` and the token count.
    fn loss(&self, model: &Llama, batch: &Batch) -> Result<(Tensor, usize)> {
        batch_loss(model, batch, self.model_cfg.vocab_size)
    }

    /// One optimizer step on the next batch. A non-finite loss or gradient norm is a
    /// [`Diverged`] error; the weights are then not updated.
    ///
    /// With more than one micro-batch ([`TrainConfig::micro_batches`]) each runs forward and
    /// backward (on the CPU on its own thread with single-threaded matmuls, on a GPU one
    /// after the other), and the gradients of the row-weighted losses are summed in
    /// micro-batch order, so the step is deterministic for a given split. A small model's
    /// matmuls and candle's shared element-wise pool scale poorly over threads; whole
    /// micro-batches on separate threads keep every core busy.
    pub fn step(&mut self) -> Result<StepDone> {
        let n = self.state.step;
        let batch = self.data.batch(n, &self.device)?;
        let shards = self.cfg.micro_batches(self.device.is_cpu());
        let start = Instant::now();
        let model = self.model(true)?;
        let (value, grads) = if shards.len() == 1 {
            let (loss, _) = self.loss(&model, &batch)?;
            let value = loss.to_scalar::<f32>()? as f64;
            (
                value,
                if value.is_finite() {
                    Some(loss.backward()?)
                } else {
                    None
                },
            )
        } else {
            self.parallel_grads(&model, &batch, &shards)?
        };
        let grads = match grads {
            Some(g) => g,
            None => {
                return Err(Diverged {
                    step: n + 1,
                    what: format!("the training loss is {value}"),
                }
                .into())
            }
        };
        let lr = self.cfg.lr_at(n);
        let info = self.opt.step(&grads, lr)?;
        if let Some(norm) = info.non_finite_norm {
            return Err(Diverged {
                step: n + 1,
                what: format!("the gradient norm is {norm}"),
            }
            .into());
        }
        let seconds = start.elapsed().as_secs_f64();
        self.state.step = n + 1;
        self.state.optimizer_updates = self.opt.updates();
        self.state.train_time_s += seconds;
        self.state
            .losses
            .push([self.state.step as f64, value, self.state.train_time_s]);
        Ok(StepDone {
            loss: value,
            seconds,
        })
    }

    /// Loss and summed gradients of `batch` split into `shards`: one thread each on the CPU,
    /// one after the other on a GPU. The gradients are `None` when the loss is not finite.
    fn parallel_grads(
        &self,
        model: &Llama,
        batch: &Batch,
        shards: &[(usize, usize)],
    ) -> Result<(f64, Option<GradStore>)> {
        let vocab = self.model_cfg.vocab_size;
        let total = batch.inputs.dim(0)? as f64;
        let micro = |&(first, rows): &(usize, usize)| -> Result<(f64, GradStore)> {
            let micro = Batch {
                inputs: batch.inputs.narrow(0, first, rows)?,
                targets: batch.targets.narrow(0, first, rows)?,
            };
            let (loss, _) = batch_loss(model, &micro, vocab)?;
            // Every row holds seq_len tokens: the batch mean is the row-weighted mean of the
            // micro-batch means.
            let weighted = loss.affine(rows as f64 / total, 0.0)?;
            let value = weighted.to_scalar::<f32>()? as f64;
            Ok((value, weighted.backward()?))
        };
        let parts: Vec<Result<(f64, GradStore)>> = if !self.device.is_cpu() {
            // On a GPU the micro-batches run one after the other on this thread (gradient
            // accumulation): candle's CUDA device is not driven from several threads at once
            // (two threads sharing one hung in the first step on an H100).
            shards.iter().map(micro).collect()
        } else {
            let _single = SingleThreadedMatmuls::enter();
            std::thread::scope(|scope| {
                let workers: Vec<_> = shards
                    .iter()
                    .map(|shard| scope.spawn(|| micro(shard)))
                    .collect();
                workers
                    .into_iter()
                    .map(|w| {
                        w.join().unwrap_or_else(|_| {
                            Err(anyhow!("a data-parallel training thread panicked"))
                        })
                    })
                    .collect()
            })
        };
        let mut value = 0.0;
        let mut stores = Vec::with_capacity(parts.len());
        for part in parts {
            let (v, g) = part?;
            value += v;
            stores.push(g);
        }
        if !value.is_finite() {
            return Ok((value, None));
        }
        let mut stores = stores.into_iter();
        let mut sum = stores.next().ok_or_else(|| anyhow!("no micro-batches"))?;
        for store in stores {
            for (_, var) in &self.vars {
                let t = var.as_tensor();
                if let Some(g) = store.get(t) {
                    let acc = match sum.get(t) {
                        Some(a) => (a + g)?,
                        None => g.clone(),
                    };
                    sum.insert(t, acc);
                }
            }
        }
        Ok((value, Some(sum)))
    }

    /// Held-out loss (nats/token) of the current weights; recorded, and checked against the
    /// target. A non-finite loss is a [`Diverged`] error (and is not recorded).
    pub fn evaluate(&mut self) -> Result<f64> {
        let model = self.model(false)?;
        let rows = self.heldout.inputs.dim(0)?;
        let (mut total, mut count) = (0.0f64, 0usize);
        for start in (0..rows).step_by(self.cfg.batch.max(1)) {
            let n = self.cfg.batch.min(rows - start);
            let chunk = Batch {
                inputs: self.heldout.inputs.narrow(0, start, n)?,
                targets: self.heldout.targets.narrow(0, start, n)?,
            };
            let (loss, tokens) = self.loss(&model, &chunk)?;
            total += loss.to_scalar::<f32>()? as f64 * tokens as f64;
            count += tokens;
        }
        let loss = total / count as f64;
        if !loss.is_finite() {
            return Err(Diverged {
                step: self.state.step,
                what: format!("the held-out loss is {loss}"),
            }
            .into());
        }
        let s = &mut self.state;
        s.evals.push([s.step as f64, loss, s.train_time_s]);
        if s.target.is_none() && loss <= self.cfg.target_loss {
            s.target = Some(TargetHit {
                step: s.step,
                time_s: s.train_time_s,
                loss,
            });
        }
        Ok(loss)
    }

    /// Parameters `(total, non-embedding)` as [`Llama::param_counts`] counts them.
    pub fn param_counts(&self) -> (u64, u64) {
        let total: usize = self.vars.iter().map(|(_, v)| v.elem_count()).sum();
        let c = &self.model_cfg;
        let heads = if c.tie_word_embeddings { 1 } else { 2 };
        let embedding = c.vocab_size * c.hidden_size * heads;
        (total as u64, (total - embedding) as u64)
    }

    /// Step of the last evaluation, if any.
    pub fn last_eval_step(&self) -> Option<u64> {
        self.state.evals.last().map(|e| e[0] as u64)
    }

    /// Writes the checkpoint into `dir`.
    pub fn save(&self, dir: &Path, provenance: serde_json::Value) -> Result<()> {
        checkpoint::save(
            dir,
            &self.model_cfg,
            &self.vars,
            &self.opt.state_tensors(),
            &self.state,
            provenance,
        )
    }
}
