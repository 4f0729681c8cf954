//! The model a run uses: where it runs ([`Device`]), how the suite named it ([`ModelSpec`]),
//! its on-disk format, and the facts about it stored in every result ([`ModelInfo`]).

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Where computation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Device {
    Cpu,
    Cuda(usize),
}

impl Device {
    /// Parses `cpu`, `cuda` (= `cuda:0`) or `cuda:N`.
    pub fn parse(s: &str) -> Result<Device> {
        match s {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda(0)),
            _ => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(i)) => Ok(Device::Cuda(i)),
                _ => bail!("device '{s}' is not 'cpu', 'cuda' or 'cuda:N'"),
            },
        }
    }
    /// Device kind as listed in capabilities: `cpu` or `cuda`.
    pub fn kind(self) -> &'static str {
        match self {
            Device::Cpu => "cpu",
            Device::Cuda(_) => "cuda",
        }
    }
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

/// On-disk model formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ModelFormat {
    /// Hugging Face directory: config.json, *.safetensors, tokenizer.json.
    Hf,
    /// A single GGUF file (quantized weights, tokenizer in the metadata).
    Gguf,
    /// No local weights: the model lives behind a server or in a worker process.
    Remote,
    /// A published architecture with seeded random weights made at load time
    /// (`preset:<name>`; no file).
    Preset,
}

/// Model references that name a built-in model instead of a path: `default` (the default
/// model after training with suites/train-tiny.toml, which `effbench run` does first when it
/// is missing) and `seeded` (the same architecture with its seeded, untrained weights;
/// created instantly, for tests and quick checks). Both live under the models directory.
pub const BUILTIN_MODELS: &[&str] = &["default", "seeded"];

/// Prefix of a model reference naming an architecture preset (`preset:llama-3.2-1b`,
/// optionally shrunk: `preset:llama-3.2-1b?layers=2`): the published architecture with seeded
/// random weights, no file. The backends know the presets.
pub const PRESET_PREFIX: &str = "preset:";

/// The model a run uses, as the suite named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSpec {
    /// As written in the suite: `default`, `seeded` or a path.
    pub reference: String,
}

impl ModelSpec {
    /// The trained default model.
    pub fn is_default(&self) -> bool {
        self.reference == "default"
    }
    /// The seeded (untrained) default weights.
    pub fn is_seeded(&self) -> bool {
        self.reference == "seeded"
    }
    /// A built-in reference ([`BUILTIN_MODELS`]), not a path.
    pub fn is_builtin(&self) -> bool {
        BUILTIN_MODELS.contains(&self.reference.as_str())
    }
    /// What follows `preset:` in a preset reference (name and `?options`).
    pub fn preset(&self) -> Option<&str> {
        self.reference.strip_prefix(PRESET_PREFIX)
    }
    /// The path, for references that are paths (not built-ins, not presets).
    pub fn path(&self) -> Option<PathBuf> {
        (!self.is_builtin() && self.preset().is_none()).then(|| PathBuf::from(&self.reference))
    }
    /// Format from the reference: `preset:` → preset, `.gguf` file → GGUF, directory or
    /// built-in → HF.
    pub fn format(&self) -> ModelFormat {
        if self.preset().is_some() {
            return ModelFormat::Preset;
        }
        match self.path() {
            Some(p)
                if p.extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("gguf")) =>
            {
                ModelFormat::Gguf
            }
            _ => ModelFormat::Hf,
        }
    }
}

/// Facts about a loaded model, stored in every result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelInfo {
    pub name: String,
    /// `hf` or `gguf` (or `remote`).
    pub format: String,
    /// Architecture, e.g. `llama`.
    pub arch: String,
    /// Weight dtype as stored/loaded: `f32`, `bf16`, `q4_1`, `mixed` ...
    pub dtype: String,
    pub params_total: u64,
    /// Parameters outside the token embedding and the output head.
    pub params_non_embedding: u64,
    /// Bytes of the weight files on disk.
    pub file_bytes: u64,
    /// Bytes of the weights as held in memory after loading (in the run's dtype).
    pub loaded_bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// SHA-256 of the weight file(s), so results name exactly which weights ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Architecture details (layers, hidden size, vocabulary, context ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<String, serde_json::Value>,
    /// The model's work per token as the backend runs it (bytes read, FLOPs), from which
    /// the runner derives the roofline metrics (MBU, prefill MFU).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roofline: Option<crate::roofline::ModelWork>,
}
