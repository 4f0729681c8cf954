//! Architecture presets: `model = "preset:<name>"` runs the published architecture of a
//! popular open model with seeded random weights made at load time, so real-scale speed,
//! memory and energy can be measured without downloading weights (optimum-benchmark's
//! `no_weights` idea). Quality cannot be: results say `weights: random (preset)`.
//!
//! Each preset is the architecture part of the model's published `config.json`, copied into
//! [`PRESETS`] with the file it came from, and its parameter total as the Hub reports it for
//! the model's safetensors (tested against the count of our model code).
//!
//! A reference may shrink a preset for tests: `preset:llama-3.2-1b?layers=2&context=4096`
//! ([`OPTIONS`]); the whole reference is the `model` axis value, so it is in the run's spec.
//! [`weights`] makes the weights ([`SeededWeights`]); [`load`] builds a preset for a run,
//! dense in the run's dtype or quantized like a GGUF file.

pub mod load;
pub mod weights;

pub use load::WEIGHTS_LABEL;
pub use weights::{seeded_tensor, SeededWeights, PRESET_WEIGHTS_SEED};

use crate::llama::LlamaConfig;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;

/// One published architecture.
#[derive(Debug, Clone, Copy)]
pub struct Preset {
    /// The name after `preset:`.
    pub name: &'static str,
    /// Where the numbers come from (the model's `config.json` on the Hugging Face Hub).
    pub source: &'static str,
    /// Total parameters the Hub reports for the model's safetensors.
    pub published_params: u64,
    /// The architecture keys of that `config.json`, unchanged.
    pub config_json: &'static str,
}

/// The presets. Values copied from each `source` (checked against public copies of the same
/// files); token ids are the base (not instruct) models'.
pub const PRESETS: &[Preset] = &[
    Preset {
        name: "smollm2-135m",
        source: "https://huggingface.co/HuggingFaceTB/SmolLM2-135M/blob/main/config.json",
        published_params: 134_515_008,
        config_json: r#"{"model_type": "llama", "hidden_size": 576, "intermediate_size": 1536,
            "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3,
            "vocab_size": 49152, "max_position_embeddings": 8192, "rms_norm_eps": 1e-05,
            "rope_theta": 100000, "rope_scaling": null, "tie_word_embeddings": true,
            "hidden_act": "silu", "bos_token_id": 0, "eos_token_id": 0}"#,
    },
    Preset {
        name: "smollm2-1.7b",
        source: "https://huggingface.co/HuggingFaceTB/SmolLM2-1.7B/blob/main/config.json",
        published_params: 1_711_376_384,
        config_json: r#"{"model_type": "llama", "hidden_size": 2048, "intermediate_size": 8192,
            "num_hidden_layers": 24, "num_attention_heads": 32, "num_key_value_heads": 32,
            "vocab_size": 49152, "max_position_embeddings": 8192, "rms_norm_eps": 1e-05,
            "rope_theta": 130000, "rope_scaling": null, "tie_word_embeddings": true,
            "hidden_act": "silu", "bos_token_id": 0, "eos_token_id": 0}"#,
    },
    Preset {
        name: "llama-3.2-1b",
        source: "https://huggingface.co/meta-llama/Llama-3.2-1B/blob/main/config.json",
        published_params: 1_235_814_400,
        config_json: r#"{"model_type": "llama", "hidden_size": 2048, "intermediate_size": 8192,
            "num_hidden_layers": 16, "num_attention_heads": 32, "num_key_value_heads": 8,
            "head_dim": 64, "vocab_size": 128256, "max_position_embeddings": 131072,
            "rms_norm_eps": 1e-05, "rope_theta": 500000.0,
            "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                             "original_max_position_embeddings": 8192, "rope_type": "llama3"},
            "tie_word_embeddings": true, "hidden_act": "silu",
            "bos_token_id": 128000, "eos_token_id": 128001}"#,
    },
    Preset {
        name: "llama-3.2-3b",
        source: "https://huggingface.co/meta-llama/Llama-3.2-3B/blob/main/config.json",
        published_params: 3_212_749_824,
        config_json: r#"{"model_type": "llama", "hidden_size": 3072, "intermediate_size": 8192,
            "num_hidden_layers": 28, "num_attention_heads": 24, "num_key_value_heads": 8,
            "head_dim": 128, "vocab_size": 128256, "max_position_embeddings": 131072,
            "rms_norm_eps": 1e-05, "rope_theta": 500000.0,
            "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                             "original_max_position_embeddings": 8192, "rope_type": "llama3"},
            "tie_word_embeddings": true, "hidden_act": "silu",
            "bos_token_id": 128000, "eos_token_id": 128001}"#,
    },
    Preset {
        name: "llama-3.1-8b",
        source: "https://huggingface.co/meta-llama/Llama-3.1-8B/blob/main/config.json",
        published_params: 8_030_261_248,
        config_json: r#"{"model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336,
            "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
            "vocab_size": 128256, "max_position_embeddings": 131072, "rms_norm_eps": 1e-05,
            "rope_theta": 500000.0,
            "rope_scaling": {"factor": 8.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                             "original_max_position_embeddings": 8192, "rope_type": "llama3"},
            "tie_word_embeddings": false, "hidden_act": "silu",
            "bos_token_id": 128000, "eos_token_id": 128001}"#,
    },
    Preset {
        name: "qwen2.5-0.5b",
        source: "https://huggingface.co/Qwen/Qwen2.5-0.5B/blob/main/config.json",
        published_params: 494_032_768,
        config_json: r#"{"model_type": "qwen2", "hidden_size": 896, "intermediate_size": 4864,
            "num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2,
            "vocab_size": 151936, "max_position_embeddings": 32768, "rms_norm_eps": 1e-06,
            "rope_theta": 1000000.0, "tie_word_embeddings": true, "hidden_act": "silu",
            "bos_token_id": 151643, "eos_token_id": 151643}"#,
    },
    Preset {
        name: "qwen2.5-1.5b",
        source: "https://huggingface.co/Qwen/Qwen2.5-1.5B/blob/main/config.json",
        published_params: 1_543_714_304,
        config_json: r#"{"model_type": "qwen2", "hidden_size": 1536, "intermediate_size": 8960,
            "num_hidden_layers": 28, "num_attention_heads": 12, "num_key_value_heads": 2,
            "vocab_size": 151936, "max_position_embeddings": 131072, "rms_norm_eps": 1e-06,
            "rope_theta": 1000000.0, "tie_word_embeddings": true, "hidden_act": "silu",
            "bos_token_id": 151643, "eos_token_id": 151643}"#,
    },
    Preset {
        name: "qwen2.5-7b",
        source: "https://huggingface.co/Qwen/Qwen2.5-7B/blob/main/config.json",
        published_params: 7_615_616_512,
        config_json: r#"{"model_type": "qwen2", "hidden_size": 3584, "intermediate_size": 18944,
            "num_hidden_layers": 28, "num_attention_heads": 28, "num_key_value_heads": 4,
            "vocab_size": 152064, "max_position_embeddings": 131072, "rms_norm_eps": 1e-06,
            "rope_theta": 1000000.0, "tie_word_embeddings": false, "hidden_act": "silu",
            "bos_token_id": 151643, "eos_token_id": 151643}"#,
    },
    Preset {
        name: "mistral-7b",
        source: "https://huggingface.co/mistralai/Mistral-7B-v0.3/blob/main/config.json",
        published_params: 7_248_023_552,
        config_json: r#"{"model_type": "mistral", "hidden_size": 4096, "intermediate_size": 14336,
            "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
            "vocab_size": 32768, "max_position_embeddings": 32768, "rms_norm_eps": 1e-05,
            "rope_theta": 1000000.0, "sliding_window": null, "tie_word_embeddings": false,
            "hidden_act": "silu", "bos_token_id": 1, "eos_token_id": 2}"#,
    },
];

/// Options a preset reference may take after `?` (`&`-separated `key=value`).
pub const OPTIONS: &[(&str, &str)] = &[
    (
        "layers",
        "decoder blocks, 1 to the preset's own number (shrinks the model for tests)",
    ),
    (
        "context",
        "longest sequence, 1 to the preset's own (smaller rotary tables)",
    ),
    ("seed", "seed of the random weights (default 42)"),
];

/// A preset reference, resolved: which preset, its options and the configuration to build.
#[derive(Debug, Clone, PartialEq)]
pub struct PresetSpec {
    /// The preset.
    pub preset: &'static str,
    /// Options given after `?`, by name.
    pub options: BTreeMap<String, u64>,
    /// The architecture with the options applied.
    pub config: LlamaConfig,
    /// Seed of the weights.
    pub seed: u64,
}

impl Preset {
    /// The published configuration (checked).
    pub fn config(&self) -> Result<LlamaConfig> {
        LlamaConfig::from_hf_json(self.config_json)
            .with_context(|| format!("preset '{}' (from {})", self.name, self.source))
    }
}

/// Names of the presets, for error messages.
pub fn names() -> String {
    PRESETS
        .iter()
        .map(|p| p.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The preset called `name`.
pub fn find(name: &str) -> Result<&'static Preset> {
    match PRESETS.iter().find(|p| p.name == name) {
        Some(p) => Ok(p),
        None => bail!("unknown preset '{name}'; known presets: {}", names()),
    }
}

/// Parses what follows `preset:` (`llama-3.2-1b` or `llama-3.2-1b?layers=2&seed=7`).
pub fn parse(text: &str) -> Result<PresetSpec> {
    let (name, query) = match text.split_once('?') {
        Some((n, q)) => (n, Some(q)),
        None => (text, None),
    };
    let preset = find(name)?;
    let mut config = preset.config()?;
    let mut options = BTreeMap::new();
    for pair in query.into_iter().flat_map(|q| q.split('&')) {
        let known = || {
            OPTIONS
                .iter()
                .map(|(k, _)| *k)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let Some((key, value)) = pair.split_once('=') else {
            bail!(
                "preset option '{pair}' is not key=value (options: {})",
                known()
            );
        };
        if !OPTIONS.iter().any(|(k, _)| *k == key) {
            bail!("unknown preset option '{key}'; known options: {}", known());
        }
        let v: u64 = value
            .parse()
            .with_context(|| format!("preset option {key}={value}: not a whole number"))?;
        if options.insert(key.to_string(), v).is_some() {
            bail!("preset option '{key}' is given twice");
        }
    }
    let within = |key: &str, most: usize| -> Result<Option<usize>> {
        match options.get(key) {
            None => Ok(None),
            Some(&v) if v >= 1 && v <= most as u64 => Ok(Some(v as usize)),
            Some(v) => bail!("preset option {key}={v}: must be between 1 and {most} for '{name}'"),
        }
    };
    if let Some(l) = within("layers", config.num_hidden_layers)? {
        config.num_hidden_layers = l;
    }
    if let Some(c) = within("context", config.max_position_embeddings)? {
        config.max_position_embeddings = c;
    }
    config.check()?;
    Ok(PresetSpec {
        preset: preset.name,
        seed: options.get("seed").copied().unwrap_or(PRESET_WEIGHTS_SEED),
        options,
        config,
    })
}

impl PresetSpec {
    /// The preset this spec shrinks.
    pub fn base(&self) -> &'static Preset {
        // Only specs made by `parse` exist, and it found the name.
        PRESETS
            .iter()
            .find(|p| p.name == self.preset)
            .unwrap_or(&PRESETS[0])
    }

    /// HF `config.json` of the (possibly shrunk) architecture, with effbench's provenance,
    /// for workers that build the model themselves (`transformers` `from_config`).
    pub fn hf_config(&self) -> Result<serde_json::Value> {
        let mut v: serde_json::Value = serde_json::from_str(&self.config.to_hf_json()?)?;
        if let Some(m) = v.as_object_mut() {
            m.insert(
                "effbench".into(),
                serde_json::json!({"weights": "random (preset)", "preset": self.preset,
                                   "source": self.base().source, "options": self.options}),
            );
            if let Some(h) = self.config.head_dim {
                m.insert("head_dim".into(), h.into());
            }
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests;
