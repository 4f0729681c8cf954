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
    /// Only `llama` (or absent) is accepted.
    #[serde(default)]
    pub model_type: Option<String>,
    /// Must be absent/null: scaled rope variants are not implemented.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_scaling: Option<serde_json::Value>,
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
            if t != "llama" {
                bail!("model_type '{t}' is not supported (only 'llama')");
            }
        }
        if let Some(act) = &self.hidden_act {
            if act != "silu" {
                bail!("hidden_act '{act}' is not supported (only 'silu')");
            }
        }
        if self.rope_scaling.as_ref().is_some_and(|v| !v.is_null()) {
            bail!(
                "rope_scaling is not supported (found {:?})",
                self.rope_scaling
            );
        }
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
            m.insert("model_type".into(), "llama".into());
            m.insert(
                "architectures".into(),
                serde_json::json!(["LlamaForCausalLM"]),
            );
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
        let bad = SMOL.replace("\"vocab_size\":49152", "\"vocab_size\":0");
        assert!(LlamaConfig::from_hf_json(&bad).is_err());
        assert!(LlamaConfig::from_hf_json("{").is_err());
    }
}
