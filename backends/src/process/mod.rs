//! The `process` backend: a model served by an external worker process speaking protocol v1
//! ([`effbench_harness::protocol`]), e.g. the PyTorch reference worker
//! (`backends/workers/torch_worker.py`). The suite names the command in `[options]`:
//!
//! ```toml
//! [options]
//! cmd = ["python3", "backends/workers/torch_worker.py"]   # {axis} placeholders allowed
//! env = { OMP_NUM_THREADS = "2" }                          # optional; no secrets here
//! env_from = { HF_TOKEN = "HF_TOKEN" }                     # optional: values by name
//! timeouts = { load = 900, run = 120 }                      # optional, seconds per op
//! max_line_bytes = 67108864                                 # optional
//! worker = { attn_implementation = "sdpa" }                 # optional, passed to `load`
//! lr = 1e-3                                                 # training only
//! weight_decay = 0.0                                        # training only
//! ```
//!
//! One worker per run: started at load, shut down after the run, killed and reaped on any
//! failure. Inference prompts are the same seeded synthetic prompts as the `candle` backend
//! (same model and seed → same token ids); training batches are windows of effbench's
//! synthetic corpus. [`options`] parses the table, [`session`] holds the worker, [`infer`]
//! and [`train`] are the two sessions.

pub mod embed;
pub mod infer;
pub mod options;
pub mod session;
pub mod train;

use crate::candle_infer::synthetic_prompts;
use crate::corpus::Corpus;
use crate::loader;
use anyhow::{bail, Result};
use effbench_harness::axes::AxisValue;
use effbench_harness::records::ModelFormat;
use effbench_harness::{Backend, Capabilities, RunSpec, Scenario, Session};
use options::ProcessOptions;
use std::path::{Path, PathBuf};

/// The external-process backend.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcessBackend;

const INFERENCE_AXES: &[&str] = &[
    "model",
    "device",
    "dtype",
    "attn",
    "batch",
    "prompt_len",
    "gen_len",
];
const TRAINING_AXES: &[&str] = &[
    "model", "device", "dtype", "attn", "batch", "seq_len", "steps",
];
const EMBEDDING_AXES: &[&str] = &["model", "device", "dtype", "batch", "seq_len"];

impl Backend for ProcessBackend {
    /// The worker's stderr tail and the protocol step that failed, when the error came from
    /// the worker.
    fn error_details(&self, error: &anyhow::Error) -> Vec<String> {
        effbench_harness::protocol::WorkerError::log_lines_of(error)
    }

    fn describe(&self) -> Capabilities {
        Capabilities {
            name: "process",
            description: "an external worker process speaking effbench protocol v1 \
                          (e.g. backends/workers/torch_worker.py); cmd in [options]",
            scenarios: vec![Scenario::Inference, Scenario::Training, Scenario::Embedding],
            dtypes: vec!["f32", "f16", "bf16"],
            // The worker decides what it can use; `describe` tells at run time.
            devices: vec!["cpu", "cuda"],
            formats: vec![ModelFormat::Hf, ModelFormat::Gguf, ModelFormat::Preset],
            axes: crate::inference_axes()
                .into_iter()
                .chain([
                    ("seq_len", AxisValue::Int(64)),
                    ("steps", AxisValue::Int(20)),
                    // The worker's attention implementation (`auto`: its own setting).
                    ("attn", AxisValue::from("auto")),
                ])
                .collect(),
        }
    }

    fn scenario_axes(&self, scenario: Scenario) -> Vec<(&'static str, AxisValue)> {
        let keep = match scenario {
            Scenario::Training => TRAINING_AXES,
            Scenario::Embedding => EMBEDDING_AXES,
            _ => INFERENCE_AXES,
        };
        self.describe()
            .axes
            .into_iter()
            .filter(|(a, _)| keep.contains(a))
            .collect()
    }

    fn validate(&self, spec: &RunSpec) -> std::result::Result<(), String> {
        let opts = ProcessOptions::parse(&spec.options)?;
        opts.argv(spec, "<model>")?;
        if let Some(p) = spec.model().preset() {
            crate::preset::parse(p).map_err(|e| format!("{e:#}"))?;
        }
        if spec.scenario == Scenario::Training {
            let steps = spec.usize_param("steps").map_err(|e| e.to_string())? as u64;
            let m = &spec.measure;
            if steps <= m.warmup_iters {
                return Err(format!(
                    "steps = {steps} leaves no measured step: [measure] warmup_iters = {} \
                     count among the steps",
                    m.warmup_iters
                ));
            }
            if steps - m.warmup_iters > m.max_iters {
                return Err(format!(
                    "steps = {steps} minus warmup_iters = {} is more than [measure] max_iters = {}",
                    m.warmup_iters, m.max_iters
                ));
            }
        }
        Ok(())
    }

    fn load(&self, spec: &RunSpec) -> Result<Box<dyn Session>> {
        self.validate(spec).map_err(anyhow::Error::msg)?;
        match spec.scenario {
            Scenario::Training => Ok(Box::new(train::TrainSession::start(spec)?)),
            Scenario::Inference => Ok(Box::new(infer::InferSession::start(spec)?)),
            Scenario::Embedding => Ok(Box::new(embed::EmbedSession::start(spec)?)),
            other => bail!("backend 'process' does not run scenario '{other}'"),
        }
    }
}

/// What the harness knows about the model it passes to the worker.
#[derive(Debug, Clone)]
pub struct ResolvedModel {
    /// As the suite wrote it.
    pub reference: String,
    /// Absolute path when it names something on disk; else the reference as written (the
    /// worker decides what it means).
    pub path: String,
    /// The resolved local file or directory, when there is one.
    pub local: Option<PathBuf>,
    /// Format from the reference (`.gguf` file or HF directory).
    pub format: ModelFormat,
}

/// Resolves the built-ins (`seeded` created on first use, the trained `default`) and local
/// paths to absolute paths; a preset stays a reference (the worker builds it from its
/// configuration, sent in `load`).
pub fn resolve_model(spec: &RunSpec) -> Result<ResolvedModel> {
    let m = spec.model();
    let local = match m.path() {
        None if m.preset().is_some() => None,
        None => Some(crate::loader::resolve(&m)?),
        Some(p) if p.exists() => Some(p),
        Some(_) => None,
    };
    let local = local.map(|p| std::fs::canonicalize(&p).unwrap_or(p));
    Ok(ResolvedModel {
        path: local
            .as_ref()
            .map_or_else(|| m.reference.clone(), |p| p.display().to_string()),
        reference: m.reference.clone(),
        local,
        format: m.format(),
    })
}

/// The memory check before the worker starts ([`crate::memory::check`]), for models whose
/// architecture effbench can read (presets, local HF directories and GGUF files); `None`
/// for others (the worker's business).
pub fn check_memory(
    spec: &RunSpec,
    model: &ResolvedModel,
) -> Result<Option<crate::memory::Estimate>> {
    use crate::memory::{self, Plan, Work};
    if model.local.is_none() && model.format != ModelFormat::Preset {
        return Ok(None);
    }
    // The estimate models llama-family decoders; an encoder (BERT, MiniLM) is not one, and
    // reading its config as one refused every embedding run through a worker.
    if spec.scenario == Scenario::Embedding {
        return Ok(None);
    }
    let m = spec.model();
    let config = loader::model_config(&m)?;
    let dtype = spec.str_param("dtype").unwrap_or("f32");
    let (weights, act_bytes, load_transient) = memory::weights_of(&m, &config, dtype, "none")?;
    let batch = spec.usize_param("batch")? as u64;
    let (work, what) = match spec.scenario {
        Scenario::Training => {
            let seq = spec.usize_param("seq_len")? as u64;
            (
                Work::Training { batch, seq },
                format!(
                    "training '{}' ({dtype}) in a worker, batch {batch} x {seq} tokens",
                    m.reference
                ),
            )
        }
        _ => {
            let (prompt, gen) = (
                spec.usize_param("prompt_len")? as u64,
                spec.usize_param("gen_len")? as u64,
            );
            (
                Work::Inference { batch, prompt, gen },
                format!(
                    "model '{}' ({dtype}) in a worker, batch {batch}, {prompt} + {gen} tokens",
                    m.reference
                ),
            )
        }
    };
    let plan = Plan {
        config: &config,
        weights,
        act_bytes,
        work,
        load_transient,
    };
    Ok(Some(memory::check(&what, &plan, spec.device()?)?))
}

/// Vocabulary size and special token ids read by effbench itself from a local HF directory
/// (the same rule as the `candle` backend, so both build the same prompts).
pub fn local_vocab(dir: &Path) -> Option<(usize, Vec<u32>)> {
    let text = std::fs::read_to_string(dir.join("config.json")).ok()?;
    let cfg: serde_json::Value = serde_json::from_str(&text).ok()?;
    let vocab = cfg.get("vocab_size")?.as_u64()? as usize;
    let mut special = loader::hf_special_ids(dir);
    for key in ["bos_token_id", "eos_token_id", "pad_token_id"] {
        match cfg.get(key) {
            Some(serde_json::Value::Number(n)) => special.extend(n.as_u64().map(|i| i as u32)),
            Some(serde_json::Value::Array(a)) => {
                special.extend(a.iter().filter_map(|v| v.as_u64()).map(|i| i as u32))
            }
            _ => {}
        }
    }
    special.sort_unstable();
    special.dedup();
    Some((vocab, special))
}

/// The prompts of an inference run: `batch` rows of `prompt_len` ids.
pub fn prompts(spec: &RunSpec, vocab: usize, special: &[u32]) -> Result<Vec<Vec<u32>>> {
    let batch = spec.usize_param("batch")?;
    let len = spec.usize_param("prompt_len")?;
    let ids = synthetic_prompts(spec.seed, batch * len, vocab, special)?;
    Ok(ids.chunks(len).map(<[u32]>::to_vec).collect())
}

/// Training batches over effbench's synthetic corpus: step `k` uses `batch` consecutive
/// windows of `seq_len + 1` tokens (inputs and shifted targets) of the training stream.
pub struct CorpusBatches {
    pool: Vec<u32>,
    batch: usize,
    window: usize,
    next: usize,
}

/// Tokens kept in memory for batches; the stream wraps around after that.
const POOL_MAX: usize = 1 << 22;

impl CorpusBatches {
    /// Batches for `steps_needed` steps of `batch` windows of `seq_len + 1` tokens (the
    /// stream wraps around past 4 Mi tokens).
    pub fn new(batch: usize, seq_len: usize, steps_needed: u64) -> CorpusBatches {
        let window = seq_len + 1;
        let want = (steps_needed as usize)
            .saturating_mul(batch)
            .saturating_mul(window)
            .clamp(window, POOL_MAX.max(window));
        CorpusBatches {
            pool: Corpus::standard().train_tokens(want),
            batch,
            window,
            next: 0,
        }
    }

    /// Vocabulary the batches draw from.
    pub fn vocab_size() -> usize {
        Corpus::standard().vocab_size()
    }

    /// The next step's `batch` windows.
    pub fn next_batch(&mut self) -> Vec<Vec<u32>> {
        let windows = self.pool.len() / self.window;
        (0..self.batch)
            .map(|_| {
                let i = self.next % windows;
                self.next += 1;
                self.pool[i * self.window..(i + 1) * self.window].to_vec()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
