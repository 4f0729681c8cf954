//! The `candle-train` backend (scenario `training`): trains our llama from seeded weights on
//! the synthetic Markov language with known entropy, and measures what training costs and
//! reaches — training tokens/s and samples/s, step time, held-out loss and perplexity against
//! the floor `exp(H)`, time- and steps-to-target-loss, analytic FLOPs and MFU against a
//! measured matmul peak.
//!
//! - [`config`]: the run's settings from axes (`batch`, `seq_len`, `width`, `depth`, `steps`,
//!   `lr`, `warmup_steps`, `target_loss`, `eval_every`, `dtype`, `device`) and `[options]`.
//! - [`data`]: seekable training batches and the fixed held-out split.
//! - [`optim`]: AdamW with decoupled decay, global-norm clipping, checkpointable state.
//! - [`trainer`]: weights in a `VarMap`, one step, evaluation, save/restore.
//! - [`checkpoint`]: HF-format checkpoints (+ `trainer/` for resuming).
//! - [`flops`]: the FLOPs formula and the peak probe.
//! - [`session`]: the harness [`Session`] (one iteration = one step).

pub mod checkpoint;
pub mod config;
pub mod data;
pub mod flops;
pub mod optim;
pub mod session;
pub mod trainer;

use crate::loader;
use anyhow::Result;
use config::{default_target_loss, entropy_floor, TrainConfig};
use effbench_harness::axes::AxisValue;
use effbench_harness::records::ModelFormat;
use effbench_harness::{Backend, Capabilities, ModelInfo, RunSpec, Scenario, Session};
use serde_json::json;
use session::TrainSession;

/// The training backend.
#[derive(Debug, Default, Clone)]
pub struct TrainBackend {
    /// Where run checkpoints go (`<root>/<run-id>/`); default `<models_dir>/train`.
    pub checkpoint_root: Option<std::path::PathBuf>,
}

impl TrainBackend {
    /// The checkpoint directory of run `id`.
    pub fn checkpoint_dir(&self, id: &str) -> std::path::PathBuf {
        match &self.checkpoint_root {
            Some(root) => root.join(id),
            None => checkpoint::checkpoint_dir(id),
        }
    }
}

/// Registry name.
pub const NAME: &str = "candle-train";

/// The memory check before the weights are made ([`crate::memory::check`]).
fn check_memory(spec: &RunSpec, cfg: &TrainConfig) -> Result<crate::memory::Estimate> {
    let model = cfg.model();
    let act = cfg.dtype.size_in_bytes() as u64;
    let plan = crate::memory::Plan {
        config: &model,
        weights: crate::memory::Weights::Dense {
            bytes_per_param: act,
        },
        act_bytes: act,
        work: crate::memory::Work::Training {
            batch: cfg.batch as u64,
            seq: cfg.seq_len as u64,
        },
        load_transient: 0,
    };
    let what = format!(
        "training '{}' ({}), batch {} x {} tokens",
        spec.model().reference,
        loader::dtype_name(cfg.dtype),
        cfg.batch,
        cfg.seq_len
    );
    crate::memory::check(&what, &plan, spec.device()?)
}

impl Backend for TrainBackend {
    fn describe(&self) -> Capabilities {
        let mut devices = vec!["cpu"];
        if cfg!(feature = "cuda") {
            devices.push("cuda");
        }
        Capabilities {
            name: NAME,
            description: "trains our llama from seeded weights on the synthetic language with \
                          candle (AdamW, warm-up + cosine, clipping); HF checkpoints",
            scenarios: vec![Scenario::Training],
            dtypes: vec!["f32", "bf16"],
            devices,
            formats: vec![ModelFormat::Hf, ModelFormat::Preset],
            axes: vec![
                // `custom`: the width x depth llama; or `preset:<name>` (width, depth unused).
                (
                    "model",
                    AxisValue::from(effbench_harness::axes::CUSTOM_MODEL),
                ),
                ("device", AxisValue::from("cpu")),
                ("dtype", AxisValue::from("f32")),
                ("batch", AxisValue::Int(16)),
                ("seq_len", AxisValue::Int(128)),
                ("width", AxisValue::Int(128)),
                ("depth", AxisValue::Int(4)),
                ("steps", AxisValue::Int(200)),
                ("lr", AxisValue::Float(3e-3)),
                ("warmup_steps", AxisValue::Int(20)),
                ("target_loss", AxisValue::Float(default_target_loss())),
                ("eval_every", AxisValue::Int(25)),
            ],
        }
    }

    fn validate(&self, spec: &RunSpec) -> std::result::Result<(), String> {
        TrainConfig::from_spec(spec).map(|_| ())
    }

    fn warnings(&self, spec: &RunSpec) -> Vec<String> {
        let Ok(c) = TrainConfig::from_spec(spec) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let floor = entropy_floor();
        if c.target_loss < floor {
            out.push(format!(
                "target_loss {} is below the entropy floor {floor:.4} nats/token of the source: \
                 it is unreachable, time_to_target_loss will be `not reached`",
                c.target_loss
            ));
        }
        let warmup = spec.measure.warmup_iters;
        if c.steps <= warmup {
            out.push(format!(
                "all {} steps are [measure] warm-up iterations ({warmup}): no step is measured",
                c.steps
            ));
        } else if spec.measure.max_iters < c.steps - warmup {
            out.push(format!(
                "[measure] max_iters = {} stops training before steps = {}",
                spec.measure.max_iters, c.steps
            ));
        }
        out
    }

    fn load(&self, spec: &RunSpec) -> Result<Box<dyn Session>> {
        let cfg = TrainConfig::from_spec(spec).map_err(anyhow::Error::msg)?;
        let estimate = check_memory(spec, &cfg)?;
        let device_label = spec.device()?.to_string();
        let device = loader::candle_device(spec.device()?)?;
        let params = serde_json::to_value(&spec.params)?;
        let mut trainer = trainer::Trainer::new(cfg.clone(), &spec.id, params, spec.seed, &device)?;
        let checkpoint_dir = self.checkpoint_dir(&spec.id);
        let mut notes = self.warnings(spec);
        let mut init = json!(format!("seeded (seed {})", spec.seed));
        if spec.resume {
            if checkpoint::exists(&checkpoint_dir) {
                let loaded = checkpoint::load(&checkpoint_dir, &device)?;
                if loaded.state.run_id != spec.id {
                    anyhow::bail!(
                        "checkpoint '{}' belongs to run {}, not {}",
                        checkpoint_dir.display(),
                        loaded.state.run_id,
                        spec.id
                    );
                }
                trainer.restore(loaded)?;
                let step = trainer.state.step;
                init = json!(format!("checkpoint at step {step}"));
                notes.push(format!(
                    "resumed from the checkpoint at step {step} in '{}'",
                    checkpoint_dir.display()
                ));
            } else {
                notes.push(format!(
                    "--resume: no checkpoint in '{}', training from step 0",
                    checkpoint_dir.display()
                ));
            }
        }
        let saved_step = spec.resume.then_some(trainer.state.step).filter(|s| *s > 0);
        let mc = &trainer.model_cfg;
        let (params_total, params_non_embedding) = trainer.param_counts();
        let mut details = loader::arch_details(mc);
        details.insert("weights".into(), json!("training"));
        details.insert("init".into(), init);
        details.insert("device".into(), json!(device_label));
        details.insert("memory_estimate".into(), serde_json::to_value(estimate)?);
        let (name, format) = match &cfg.preset {
            Some(p) => {
                details.insert("preset".into(), json!(p.preset));
                details.insert("preset_source".into(), json!(p.base().source));
                details.insert(
                    "init".into(),
                    json!(format!(
                        "{} (seed {})",
                        crate::preset::WEIGHTS_LABEL,
                        p.seed
                    )),
                );
                (spec.model().reference, "preset")
            }
            None => (format!("llama-w{}-d{}", cfg.width, cfg.depth), "hf"),
        };
        let info = ModelInfo {
            name,
            format: format.into(),
            arch: mc.arch().into(),
            dtype: loader::dtype_name(cfg.dtype).into(),
            params_total,
            params_non_embedding,
            file_bytes: 0,
            loaded_bytes: params_total * 4,
            path: Some(checkpoint_dir.display().to_string()),
            sha256: None,
            details,
            roofline: None,
        };
        let provenance = json!({
            "run_id": spec.id,
            "suite": spec.suite,
            "seed": spec.seed,
            "params": spec.params,
        });
        Ok(Box::new(TrainSession {
            trainer,
            info,
            checkpoint_dir,
            device_label,
            seed: spec.seed,
            provenance,
            notes,
            measured: Vec::new(),
            saved_step,
            clean: true,
            diverged: false,
            peak: None,
        }))
    }
}
