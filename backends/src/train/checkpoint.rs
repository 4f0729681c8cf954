//! Training checkpoints: a Hugging Face model directory that the inference backend loads
//! unchanged (`config.json`, `model.safetensors` with f32 weights, `tokenizer.json`), plus
//! `trainer/` with what resuming needs (`state.json`: step, training time, loss curve,
//! evaluations; `optimizer.safetensors`: the AdamW moments). A run's checkpoint lives in
//! `<models_dir>/train/<run-id>/` and is replaced atomically, so a crash or Ctrl-C leaves the
//! previous complete checkpoint or the new one, never a mix.

use crate::corpus::Corpus;
use crate::default_model::{
    config_json_with, models_dir, publish_dir, safetensors_bytes, NamedTensor, GENERATOR,
};
use crate::llama::LlamaConfig;
use anyhow::{anyhow, bail, Context, Result};
use candle_core::{DType, Device, Tensor, Var};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Version tag of [`TrainerState`].
pub const STATE_FORMAT: &str = "effbench trainer state v1";

/// Where run `id` keeps its checkpoint.
pub fn checkpoint_dir(run_id: &str) -> PathBuf {
    models_dir().join("train").join(run_id)
}

/// When the held-out loss first reached the target.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TargetHit {
    /// Step of the evaluation that reached it.
    pub step: u64,
    /// Training time (s) at that step.
    pub time_s: f64,
    /// Held-out loss of that evaluation (nats/token).
    pub loss: f64,
}

/// Everything besides tensors that a resumed run needs to continue exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    /// Always [`STATE_FORMAT`].
    pub format: String,
    /// The run whose checkpoint this is (resume refuses another run's).
    pub run_id: String,
    /// Steps done.
    pub step: u64,
    /// Total training step time (s) so far, over every process that trained this run.
    pub train_time_s: f64,
    /// AdamW updates applied (equals `step`).
    pub optimizer_updates: u64,
    /// `[step, training loss, training time s]` per step.
    pub losses: Vec<[f64; 3]>,
    /// `[step, held-out loss, training time s]` per evaluation.
    pub evals: Vec<[f64; 3]>,
    /// When the held-out loss first reached `target_loss`, if it did.
    pub target: Option<TargetHit>,
    /// The run's resolved axis values, to refuse a checkpoint of another configuration.
    pub params: serde_json::Value,
}

/// A checkpoint read back.
pub struct Loaded {
    /// Model weights by HF name (f32).
    pub weights: HashMap<String, Tensor>,
    /// AdamW moments by name (`<var>.m`, `<var>.v`).
    pub optimizer: HashMap<String, Tensor>,
    /// Step, curves and the rest of the loop's state.
    pub state: TrainerState,
}

fn f32_tensor(name: &str, t: &Tensor) -> Result<NamedTensor> {
    Ok(NamedTensor {
        name: name.to_string(),
        shape: t.dims().to_vec(),
        data: t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?,
    })
}

/// Writes a complete checkpoint into `dir` (replacing the previous one atomically).
/// `provenance` becomes `config.json`'s `effbench.training` section.
pub fn save(
    dir: &Path,
    config: &LlamaConfig,
    vars: &[(String, Var)],
    optimizer: &[(String, Tensor)],
    state: &TrainerState,
    provenance: serde_json::Value,
) -> Result<()> {
    let mut weights = vars
        .iter()
        .map(|(n, v)| f32_tensor(n, v.as_tensor()))
        .collect::<Result<Vec<_>>>()?;
    weights.sort_by(|a, b| a.name.cmp(&b.name));
    let mut moments = optimizer
        .iter()
        .map(|(n, t)| f32_tensor(n, t))
        .collect::<Result<Vec<_>>>()?;
    moments.sort_by(|a, b| a.name.cmp(&b.name));
    let section = serde_json::json!({
        "weights": "trained",
        "generator": GENERATOR,
        "training": provenance,
    });
    let files = vec![
        (
            "config.json",
            config_json_with(config, section)?.into_bytes(),
        ),
        ("model.safetensors", safetensors_bytes(&weights)?),
        (
            "tokenizer.json",
            Corpus::standard().tokenizer_json().into_bytes(),
        ),
        (
            "trainer/state.json",
            (serde_json::to_string_pretty(state)? + "\n").into_bytes(),
        ),
        (
            "trainer/optimizer.safetensors",
            safetensors_bytes(&moments)?,
        ),
    ];
    publish_dir(dir, &files, true)
        .with_context(|| format!("cannot write checkpoint '{}'", dir.display()))
}

/// True when `dir` holds a checkpoint a run can resume from.
pub fn exists(dir: &Path) -> bool {
    dir.join("trainer/state.json").is_file()
}

/// Reads a checkpoint written by [`save`]; errors name the file.
pub fn load(dir: &Path, device: &Device) -> Result<Loaded> {
    let state_path = dir.join("trainer/state.json");
    let text = std::fs::read_to_string(&state_path)
        .with_context(|| format!("cannot read '{}'", state_path.display()))?;
    let state: TrainerState = serde_json::from_str(&text)
        .with_context(|| format!("'{}' is not a trainer state", state_path.display()))?;
    if state.format != STATE_FORMAT {
        bail!(
            "'{}' has format '{}'; this effbench reads '{STATE_FORMAT}'",
            state_path.display(),
            state.format
        );
    }
    let read = |name: &str| {
        let p = dir.join(name);
        candle_core::safetensors::load(&p, device)
            .map_err(|e| anyhow!("cannot read checkpoint tensors '{}': {e}", p.display()))
    };
    Ok(Loaded {
        weights: read("model.safetensors")?,
        optimizer: read("trainer/optimizer.safetensors")?,
        state,
    })
}
