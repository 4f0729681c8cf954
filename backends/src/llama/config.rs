//! Llama hyper-parameters: one [`LlamaConfig`] read from an HF `config.json` or from the
//! `llama.*` keys of GGUF metadata, checked once so the model code can trust it.

use anyhow::{anyhow, bail, Context, Result};
use candle_core::quantized::gguf_file;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Where the two halves of each rotary pair sit inside a head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RopeLayout {
    /// Hugging Face layout: pair `(j, j + head_dim/2)` (`rotate_half`). HF checkpoints.
    HalfSplit,
    /// llama.cpp layout: pair `(2j, 2j + 1)`. GGUF files, whose q/k rows llama.cpp permuted
    /// on conversion (see [`crate::llama::permute_qk_to_interleaved`]).
    Interleaved,
}

/// Architecture of a llama-family causal LM (field names as in HF `config.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlamaConfig {
    /// Width of the residual stream (embedding size).
    pub hidden_size: usize,
    /// Width of the gated MLP.
    pub intermediate_size: usize,
    /// Decoder blocks.
    pub num_hidden_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Grouped-query attention: key/value heads (defaults to `num_attention_heads`).
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    /// Per-head size; defaults to `hidden_size / num_attention_heads`.
    #[serde(default)]
    pub head_dim: Option<usize>,
    /// Tokens in the embedding table / output head.
    pub vocab_size: usize,
    /// RMSNorm epsilon (default 1e-6).
    #[serde(default = "default_eps")]
    pub rms_norm_eps: f64,
    /// Rotary base frequency (default 10000).
    #[serde(default = "default_theta")]
    pub rope_theta: f64,
    /// Longest sequence (prompt + generated tokens) the model supports.
    #[serde(default = "default_context")]
    pub max_position_embeddings: usize,
    /// The output head reuses the token embedding (SmolLM2 does).
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// Beginning-of-sequence token (first of a list in HF configs).
    #[serde(default, deserialize_with = "one_or_first")]
    pub bos_token_id: Option<u32>,
    /// End-of-sequence token (first of a list in HF configs).
    #[serde(default, deserialize_with = "one_or_first")]
    pub eos_token_id: Option<u32>,
    /// Only `silu` is supported; kept to reject other activations clearly.
    #[serde(default)]
    pub hidden_act: Option<String>,
    /// `llama` (or absent), `mistral` (the same layers) or `qwen2` (adds q/k/v biases).
    #[serde(default)]
    pub model_type: Option<String>,
    /// Absent/null, or `{"rope_type": "llama3", factor, low_freq_factor, high_freq_factor,
    /// original_max_position_embeddings}` (Llama 3.1/3.2), or `{"rope_type": "linear",
    /// factor}`; other kinds are rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_scaling: Option<serde_json::Value>,
}

/// Architectures (`model_type`) the llama code runs: the same decoder, Qwen2 with q/k/v biases.
pub const MODEL_TYPES: &[&str] = &["llama", "mistral", "qwen2"];

/// A rotary scaling rule from `rope_scaling`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RopeScaling {
    /// Llama 3.1's rule: long wavelengths divided by `factor`, short ones kept, a smooth
    /// blend between `original / low_freq_factor` and `original / high_freq_factor`.
    Llama3 {
        /// Divisor of the long wavelengths.
        factor: f64,
        /// Wavelengths above `original / low_freq_factor` are divided by `factor`.
        low_freq_factor: f64,
        /// Wavelengths below `original / high_freq_factor` are kept.
        high_freq_factor: f64,
        /// The context the model was first trained for.
        original_max_position_embeddings: f64,
    },
    /// Every frequency divided by `factor` (position interpolation).
    Linear {
        /// The divisor.
        factor: f64,
    },
}

fn default_eps() -> f64 {
    1e-6
}
fn default_theta() -> f64 {
    10_000.0
}
fn default_context() -> usize {
    2048
}

/// HF writes `eos_token_id` as an integer or a list; the first entry is the one we need.
fn one_or_first<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(u32),
        Many(Vec<u32>),
    }
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => None,
        Some(OneOrMany::One(x)) => Some(x),
        Some(OneOrMany::Many(v)) => v.first().copied(),
    })
}

impl LlamaConfig {
    /// Key/value heads (GQA), resolved.
    pub fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    /// The architecture name (`llama` when absent).
    pub fn arch(&self) -> &str {
        self.model_type.as_deref().unwrap_or("llama")
    }

    /// Qwen2 adds biases to the q, k and v projections (and nowhere else).
    pub fn qkv_bias(&self) -> bool {
        self.arch() == "qwen2"
    }

    /// The rotary scaling rule, `None` without one (or `rope_type: "default"`).
    pub fn rope_scaling_rule(&self) -> Result<Option<RopeScaling>> {
        let Some(v) = self.rope_scaling.as_ref().filter(|v| !v.is_null()) else {
            return Ok(None);
        };
        let kind = v
            .get("rope_type")
            .or_else(|| v.get("type"))
            .and_then(|t| t.as_str())
            .unwrap_or("");
        let num = |key: &str| -> Result<f64> {
            match v.get(key).and_then(|x| x.as_f64()) {
                Some(x) if x.is_finite() && x > 0.0 => Ok(x),
                _ => bail!("rope_scaling.{key} must be a number > 0 (found {v})"),
            }
        };
        Ok(match kind {
            "default" => None,
            "llama3" => {
                let (low, high) = (num("low_freq_factor")?, num("high_freq_factor")?);
                if high <= low {
                    bail!(
                        "rope_scaling: high_freq_factor {high} must exceed low_freq_factor {low}"
                    );
                }
                Some(RopeScaling::Llama3 {
                    factor: num("factor")?,
                    low_freq_factor: low,
                    high_freq_factor: high,
                    original_max_position_embeddings: num("original_max_position_embeddings")?,
                })
            }
            "linear" => Some(RopeScaling::Linear {
                factor: num("factor")?,
            }),
            other => bail!(
                "rope_scaling type '{other}' is not supported (llama3, linear, or none; found {v})"
            ),
        })
    }

    /// Rotary inverse frequencies `theta^(-2i/d)` for `i < d/2`, after the scaling rule
    /// (the same arithmetic as transformers' `_compute_llama3_parameters`).
    pub fn rope_inv_freq(&self) -> Result<Vec<f32>> {
        let d = self.head_size();
        let base: Vec<f64> = (0..d / 2)
            .map(|i| 1.0 / self.rope_theta.powf(2.0 * i as f64 / d as f64))
            .collect();
        let scaled: Vec<f64> = match self.rope_scaling_rule()? {
            None => base,
            Some(RopeScaling::Linear { factor }) => base.iter().map(|f| f / factor).collect(),
            Some(RopeScaling::Llama3 {
                factor,
                low_freq_factor: low,
                high_freq_factor: high,
                original_max_position_embeddings: old,
            }) => {
                let (low_wavelen, high_wavelen) = (old / low, old / high);
                base.iter()
                    .map(|&f| {
                        let wavelen = 2.0 * std::f64::consts::PI / f;
                        if wavelen < high_wavelen {
                            f
                        } else if wavelen > low_wavelen {
                            f / factor
                        } else {
                            let smooth = (old / wavelen - low) / (high - low);
                            (1.0 - smooth) * f / factor + smooth * f
                        }
                    })
                    .collect()
            }
        };
        Ok(scaled.into_iter().map(|f| f as f32).collect())
    }

    /// Size of one attention head, resolved.
    pub fn head_size(&self) -> usize {
        self.head_dim
            .unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }

    /// Reads and checks an HF `config.json`.
    pub fn from_hf_file(path: &Path) -> Result<LlamaConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read model config '{}'", path.display()))?;
        Self::from_hf_json(&text).with_context(|| format!("model config '{}'", path.display()))
    }

    /// Parses and checks HF `config.json` text.
    pub fn from_hf_json(text: &str) -> Result<LlamaConfig> {
        let cfg: LlamaConfig =
            serde_json::from_str(text).context("not a valid llama config.json")?;
        cfg.check()?;
        Ok(cfg)
    }

    /// Reads the `llama.*` metadata of a GGUF file.
    pub fn from_gguf(ct: &gguf_file::Content) -> Result<LlamaConfig> {
        let arch = meta_str(ct, "general.architecture")?;
        if arch != "llama" {
            bail!("GGUF architecture '{arch}' is not supported (only 'llama')");
        }
        let u = |key: &str| -> Result<usize> {
            let v = ct
                .metadata
                .get(key)
                .ok_or_else(|| anyhow!("GGUF metadata lacks '{key}'"))?;
            let x = match v {
                gguf_file::Value::U64(x) => *x,
                gguf_file::Value::I64(x) => u64::try_from(*x).unwrap_or(0),
                other => other
                    .to_u32()
                    .map(u64::from)
                    .map_err(|e| anyhow!("GGUF metadata '{key}': {e}"))?,
            };
            usize::try_from(x).map_err(|_| anyhow!("GGUF metadata '{key}' = {x} is too large"))
        };
        let f = |key: &str, default: f64| -> Result<f64> {
            match ct.metadata.get(key) {
                None => Ok(default),
                Some(v) => v
                    .to_f32()
                    .map(f64::from)
                    .map_err(|e| anyhow!("GGUF metadata '{key}': {e}")),
            }
        };
        let id = |key: &str| ct.metadata.get(key).and_then(|v| v.to_u32().ok());
        let heads = u("llama.attention.head_count")?;
        let hidden = u("llama.embedding_length")?;
        let vocab = match u("llama.vocab_size") {
            Ok(v) => v,
            Err(_) => ct
                .metadata
                .get("tokenizer.ggml.tokens")
                .and_then(|t| t.to_vec().ok())
                .map(|t| t.len())
                .ok_or_else(|| anyhow!("GGUF metadata lacks 'llama.vocab_size' and tokens"))?,
        };
        let head_dim = u("llama.rope.dimension_count").ok();
        let cfg = LlamaConfig {
            hidden_size: hidden,
            intermediate_size: u("llama.feed_forward_length")?,
            num_hidden_layers: u("llama.block_count")?,
            num_attention_heads: heads,
            num_key_value_heads: Some(u("llama.attention.head_count_kv").unwrap_or(heads)),
            head_dim,
            vocab_size: vocab,
            rms_norm_eps: f("llama.attention.layer_norm_rms_epsilon", 1e-5)?,
            rope_theta: f("llama.rope.freq_base", 10_000.0)?,
            max_position_embeddings: u("llama.context_length").unwrap_or(default_context()),
            tie_word_embeddings: !ct.tensor_infos.contains_key("output.weight"),
            bos_token_id: id("tokenizer.ggml.bos_token_id"),
            eos_token_id: id("tokenizer.ggml.eos_token_id"),
            hidden_act: None,
            model_type: Some("llama".into()),
            rope_scaling: None,
        };
        cfg.check()?;
        Ok(cfg)
    }

    /// Rejects configurations the model code cannot run, naming the field.
    pub fn check(&self) -> Result<()> {
        if let Some(t) = &self.model_type {
            if !MODEL_TYPES.contains(&t.as_str()) {
                bail!(
                    "model_type '{t}' is not supported (only {})",
                    MODEL_TYPES.join(", ")
                );
            }
        }
        if let Some(act) = &self.hidden_act {
            if act != "silu" {
                bail!("hidden_act '{act}' is not supported (only 'silu')");
            }
        }
        self.rope_scaling_rule()?;
        for (name, v) in [
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("num_key_value_heads", self.kv_heads()),
            ("vocab_size", self.vocab_size),
            ("max_position_embeddings", self.max_position_embeddings),
        ] {
            if v == 0 {
                bail!("{name} must be > 0");
            }
        }
        if self.vocab_size > u32::MAX as usize {
            bail!("vocab_size {} does not fit token ids", self.vocab_size);
        }
        // Upper bounds before any product of them is formed or allocated: a crafted config
        // (a context of 10^12 tokens, a width of 2^40) is refused, not an abort.
        for (name, v, max) in [
            ("hidden_size", self.hidden_size, 1 << 16),
            ("intermediate_size", self.intermediate_size, 1 << 18),
            ("num_hidden_layers", self.num_hidden_layers, 1 << 10),
            ("num_attention_heads", self.num_attention_heads, 1 << 10),
            ("num_key_value_heads", self.kv_heads(), 1 << 10),
            ("head_dim", self.head_size(), 1 << 12),
            ("vocab_size", self.vocab_size, 1 << 24),
            (
                "max_position_embeddings",
                self.max_position_embeddings,
                1 << 22,
            ),
        ] {
            effbench_harness::limits::check_int(name, v as i128, 1, max)
                .map_err(anyhow::Error::msg)?;
        }
        let rope = self.max_position_embeddings as u64 * self.head_size() as u64;
        if rope > 1 << 28 {
            bail!(
                "max_position_embeddings {} x head size {} = {rope} rotary-table values, more \
                 than the maximum {}",
                self.max_position_embeddings,
                self.head_size(),
                1u64 << 28
            );
        }
        let (h, kv, d) = (self.num_attention_heads, self.kv_heads(), self.head_size());
        if h % kv != 0 {
            bail!("num_attention_heads {h} is not a multiple of num_key_value_heads {kv}");
        }
        if d == 0 || d % 2 != 0 {
            bail!("head size {d} must be even and > 0");
        }
        if self.head_dim.is_none() && h * d != self.hidden_size {
            bail!(
                "hidden_size {} is not a multiple of num_attention_heads {h}",
                self.hidden_size
            );
        }
        if !(self.rms_norm_eps.is_finite() && self.rms_norm_eps >= 0.0) {
            bail!(
                "rms_norm_eps {} is not a finite number >= 0",
                self.rms_norm_eps
            );
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 0.0) {
            bail!("rope_theta {} is not a finite number > 0", self.rope_theta);
        }
        Ok(())
    }

    /// HF `config.json` text for this configuration (pretty, stable key order).
    pub fn to_hf_json(&self) -> Result<String> {
        let mut v = serde_json::to_value(self)?;
        if let serde_json::Value::Object(m) = &mut v {
            let class = match self.arch() {
                "qwen2" => "Qwen2ForCausalLM",
                "mistral" => "MistralForCausalLM",
                _ => "LlamaForCausalLM",
            };
            m.insert("model_type".into(), self.arch().into());
            m.insert("architectures".into(), serde_json::json!([class]));
            m.insert("hidden_act".into(), "silu".into());
            m.insert(
                "num_key_value_heads".into(),
                serde_json::json!(self.kv_heads()),
            );
            m.remove("head_dim");
        }
        Ok(serde_json::to_string_pretty(&v)? + "\n")
    }
}

fn meta_str<'a>(ct: &'a gguf_file::Content, key: &str) -> Result<&'a str> {
    ct.metadata
        .get(key)
        .ok_or_else(|| anyhow!("GGUF metadata lacks '{key}'"))?
        .to_string()
        .map(String::as_str)
        .map_err(|e| anyhow!("GGUF metadata '{key}': {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama3_rope_scaling_matches_the_published_rule() {
        // Llama 3.2 1B: theta 500000, head 64, factor 32, low 1, high 4, original 8192.
        let text = SMOL
            .replace("\"rope_scaling\":null", r#""rope_scaling":{"factor":32.0,"high_freq_factor":4.0,"low_freq_factor":1.0,"original_max_position_embeddings":8192,"rope_type":"llama3"}"#)
            .replace("\"rope_theta\":100000", "\"rope_theta\":500000");
        let c = LlamaConfig::from_hf_json(&text).unwrap();
        let f = c.rope_inv_freq().unwrap();
        assert_eq!(f.len(), 32);
        // i = 0: wavelength 2*pi < 8192/4, kept.
        assert_eq!(f[0], 1.0);
        // i = 31: theta^(-62/64) = 3.0e-6, wavelength 2.1e6 > 8192: divided by 32.
        let base31 = 500_000f64.powf(-62.0 / 64.0);
        assert!((f[31] as f64 / (base31 / 32.0) - 1.0).abs() < 1e-6);
        // i = 12: base 500000^(-24/64) = 7.30e-3, wavelength 860 < 8192 / 4: kept.
        let base12 = 500_000f64.powf(-24.0 / 64.0);
        assert!((f[12] as f64 / base12 - 1.0).abs() < 1e-6);
        // i = 16: base 500000^(-0.5) = 1.414e-3, wavelength 4442.9 in (2048, 8192):
        // smooth = (8192 / 4442.9 - 1) / 3 = 0.28128; (1 - s) * f / 32 + s * f.
        let b = 500_000f64.powf(-0.5);
        let s = (8192.0 / (2.0 * std::f64::consts::PI / b) - 1.0) / 3.0;
        let want = (1.0 - s) * b / 32.0 + s * b;
        assert!(
            (f[16] as f64 / want - 1.0).abs() < 1e-6,
            "{} vs {want}",
            f[16]
        );
        // Without scaling: plain powers.
        let plain = LlamaConfig::from_hf_json(SMOL)
            .unwrap()
            .rope_inv_freq()
            .unwrap();
        assert!((plain[1] as f64 / 100_000f64.powf(-2.0 / 64.0) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn qwen2_has_qkv_bias_and_keeps_its_type_in_json() {
        let q = SMOL.replace("\"model_type\":\"llama\"", "\"model_type\":\"qwen2\"");
        let c = LlamaConfig::from_hf_json(&q).unwrap();
        assert!(c.qkv_bias());
        let json = c.to_hf_json().unwrap();
        assert!(
            json.contains("Qwen2ForCausalLM") && json.contains("\"qwen2\""),
            "{json}"
        );
        assert!(LlamaConfig::from_hf_json(&json).unwrap().qkv_bias());
        assert!(!LlamaConfig::from_hf_json(SMOL).unwrap().qkv_bias());
    }

    const SMOL: &str = r#"{"architectures":["LlamaForCausalLM"],"bos_token_id":1,
      "eos_token_id":[2, 3],"hidden_act":"silu","hidden_size":576,"intermediate_size":1536,
      "max_position_embeddings":8192,"model_type":"llama","num_attention_heads":9,
      "num_hidden_layers":30,"num_key_value_heads":3,"rms_norm_eps":1e-05,
      "rope_scaling":null,"rope_theta":100000,"tie_word_embeddings":true,"vocab_size":49152}"#;

    #[test]
    fn reads_hf_config() {
        let c = LlamaConfig::from_hf_json(SMOL).unwrap();
        assert_eq!((c.kv_heads(), c.head_size()), (3, 64));
        assert_eq!(c.eos_token_id, Some(2));
        assert!(c.tie_word_embeddings);
        assert_eq!(c.rope_theta, 100_000.0);
        let again = LlamaConfig::from_hf_json(&c.to_hf_json().unwrap()).unwrap();
        assert_eq!(again.hidden_size, 576);
    }

    #[test]
    fn rejects_bad_configs_naming_the_field() {
        let bad = SMOL.replace("\"num_key_value_heads\":3", "\"num_key_value_heads\":4");
        let e = LlamaConfig::from_hf_json(&bad).unwrap_err().to_string();
        assert!(e.contains("num_key_value_heads"), "{e}");
        let bad = SMOL.replace("\"hidden_act\":\"silu\"", "\"hidden_act\":\"gelu\"");
        assert!(format!("{:#}", LlamaConfig::from_hf_json(&bad).unwrap_err()).contains("gelu"));
        let bad = SMOL.replace("\"rope_scaling\":null", "\"rope_scaling\":{\"type\":\"x\"}");
        assert!(LlamaConfig::from_hf_json(&bad).is_err());
        let bad = SMOL.replace("\"model_type\":\"llama\"", "\"model_type\":\"gpt2\"");
        let e = LlamaConfig::from_hf_json(&bad).unwrap_err().to_string();
        assert!(e.contains("gpt2") && e.contains("qwen2"), "{e}");
        let bad = SMOL.replace("\"vocab_size\":49152", "\"vocab_size\":0");
        assert!(LlamaConfig::from_hf_json(&bad).is_err());
        assert!(LlamaConfig::from_hf_json("{").is_err());
    }
}
