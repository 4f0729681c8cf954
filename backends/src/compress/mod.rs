//! Compressed variants of an HF llama checkpoint, made on demand from a run's `quant`,
//! `sparsity` and `prune` axes and cached by content hash under
//! `<models dir>/variants/<base>-<recipe>-<hash>/`, where the hash covers the base weights'
//! SHA-256, the recipe and the generator version (so a retrained base gets new variants).
//!
//! A variant directory holds the weights (`model.gguf` when quantized, else a pruned
//! `model.safetensors`), the base's `config.json` and tokenizer files, and `variant.json`
//! (provenance, tensor types, pruning counts). It is written in a temporary directory and
//! renamed into place, so concurrent runs never see half a variant.
//!
//! - [`prune`]: magnitude (per layer, global) and 2:4 pruning;
//! - [`quantize`]: GGUF quantization with llama.cpp's block-size fallbacks;
//! - [`requant`]: a GGUF re-quantized to another type mix (Q8_0, llama.cpp's Q4_K_M rules),
//!   the speed fixtures of scripts/vs-llamacpp.sh;
//! - [`quality`]: perplexity and fidelity (top-1 agreement, KL) on held-out text;
//! - [`extras`]: the metrics a session adds after its window.

pub mod extras;
pub mod prune;
pub mod quality;
pub mod quantize;
pub mod requant;

use crate::default_model::{models_dir, publish_dir};
use crate::llama::{gguf_tensor_name, LlamaConfig};
use crate::loader::{self, LoadedModel};
use anyhow::{Context, Result};
use candle_core::quantized::gguf_file;
use candle_core::{DType, Device, Tensor};
use effbench_harness::axes::AxisValue;
use effbench_harness::records::ModelFormat;
use effbench_harness::ModelSpec;
use prune::PruneMethod;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// Version of the variant generator (part of the cache key; bump when the bytes change).
pub const GENERATOR: &str = "effbench variants v1";

/// How to derive a variant from its base model.
#[derive(Debug, Clone, PartialEq)]
pub struct Recipe {
    /// `quant` axis value (`none` = keep the dense weights).
    pub quant: String,
    /// Target share of pruned weights in the prunable matrices (0 = no pruning).
    pub sparsity: f64,
    /// How weights are chosen for pruning.
    pub prune: PruneMethod,
}

/// The model a run's axis values select: base model, compute dtype and recipe.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelChoice {
    /// Base model the variant is derived from.
    pub model: ModelSpec,
    /// Compute dtype of the run (`dtype` axis).
    pub dtype: String,
    /// How the variant is derived from the base model.
    pub recipe: Recipe,
}

impl ModelChoice {
    /// From axis values (absent axes at their neutral values).
    pub fn from_params(params: &BTreeMap<String, AxisValue>) -> ModelChoice {
        let s = |k: &str, d: &str| {
            params
                .get(k)
                .and_then(AxisValue::as_str)
                .unwrap_or(d)
                .to_string()
        };
        ModelChoice {
            model: ModelSpec {
                reference: params
                    .get("model")
                    .map_or_else(|| "default".into(), |v| v.to_string()),
            },
            dtype: s("dtype", "f32"),
            recipe: Recipe {
                quant: s("quant", "none"),
                sparsity: params
                    .get("sparsity")
                    .and_then(AxisValue::as_f64)
                    .unwrap_or(0.0),
                prune: PruneMethod::parse(&s("prune", "magnitude-layer"))
                    .unwrap_or(PruneMethod::MagnitudeLayer),
            },
        }
    }

    /// Checks the combination; the error is the one-line reason.
    pub fn check(&self) -> std::result::Result<(), String> {
        let r = &self.recipe;
        quantize::ggml_type(&r.quant).map_err(|e| e.to_string())?;
        if self.model.format() == ModelFormat::Gguf && !r.is_identity() {
            return Err(format!(
                "model '{}' is already quantized (GGUF): {} needs an HF checkpoint (config.json + \
                 *.safetensors) to start from, since re-quantizing or pruning GGUF weights would \
                 stack a second rounding on the first; use quant = \"none\" and sparsity = 0 for it",
                self.model.reference,
                r.describe()
            ));
        }
        if self.model.format() == ModelFormat::Preset && r.sparsity != 0.0 {
            return Err(format!(
                "model '{}' is a preset with random weights: pruning them measures nothing a \
                 real model would show; use sparsity = 0 (quant works on presets)",
                self.model.reference
            ));
        }
        if r.quant != "none" && self.dtype != "f32" {
            return Err(format!(
                "quant '{}' runs GGUF weights with f32 activations, so dtype '{}' does not apply \
                 (use dtype f32 or exclude the combination)",
                r.quant, self.dtype
            ));
        }
        if r.sparsity >= 1.0 {
            return Err("sparsity 1 would remove every weight; use a value below 1".into());
        }
        if r.prune == PruneMethod::SemiStructured24 && r.sparsity != 0.0 && r.sparsity != 0.5 {
            return Err(format!(
                "prune '2:4' removes exactly half the weights: sparsity must be 0.5 (or 0), not {}",
                r.sparsity
            ));
        }
        Ok(())
    }
}

impl Recipe {
    /// Nothing to do: the base model as stored.
    pub fn is_identity(&self) -> bool {
        self.quant == "none" && self.sparsity == 0.0
    }
    /// `q8_0, 50 % pruned (magnitude-layer)`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.quant != "none" {
            parts.push(format!("quant {}", self.quant));
        }
        if self.sparsity > 0.0 {
            parts.push(format!(
                "{} % pruned ({})",
                self.sparsity * 100.0,
                self.prune.name()
            ));
        }
        if parts.is_empty() {
            "as stored".into()
        } else {
            parts.join(", ")
        }
    }
    fn slug(&self) -> String {
        let mut s = self.quant.clone();
        if self.sparsity > 0.0 {
            s += &format!(
                "-sp{}-{}",
                self.sparsity,
                self.prune.name().replace(':', "of")
            );
        }
        s
    }
}

/// `variant.json`: what a variant is and how it was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantMeta {
    /// Generator version that made the variant (`GENERATOR`).
    pub generator: String,
    /// Display name of the base model.
    pub base: String,
    /// SHA-256 of the base weights.
    pub base_sha256: String,
    /// `quant` axis value.
    pub quant: String,
    /// `sparsity` axis value.
    pub sparsity: f64,
    /// `prune` axis value.
    pub prune: String,
    /// `model.gguf` or `model.safetensors`.
    pub weights_file: String,
    /// Stored tensors per type (quantized variants).
    #[serde(default)]
    pub tensor_types: BTreeMap<String, usize>,
    #[serde(default)]
    /// Matrices stored in another type than asked (k-quant row-size fallbacks), as `name: asked -> used`.
    pub fallbacks: Vec<String>,
    /// Parameters of the model (a tied head once).
    pub params_total: u64,
    /// Non-zero weights after pruning, before quantization.
    pub nonzero_weights: u64,
    /// Weights in the prunable matrices.
    pub prunable_weights: u64,
    /// Weights set to zero by pruning.
    pub pruned_weights: u64,
}

/// A variant on disk.
#[derive(Debug, Clone)]
pub struct Variant {
    /// Directory holding the weights and `variant.json`.
    pub dir: PathBuf,
    /// What the variant is and how it was made.
    pub meta: VariantMeta,
}

impl Variant {
    /// Path of the weight file.
    pub fn weights(&self) -> PathBuf {
        self.dir.join(&self.meta.weights_file)
    }
}

/// Reads the weights of an HF directory as f32 tensors by name.
pub fn read_dense(dir: &Path) -> Result<HashMap<String, Tensor>> {
    let mut out = HashMap::new();
    for f in loader::safetensors_files(dir)? {
        let ts = candle_core::safetensors::load(&f, &Device::Cpu)
            .with_context(|| format!("cannot read safetensors file '{}'", f.display()))?;
        for (k, v) in ts {
            out.insert(k, v.to_dtype(DType::F32)?);
        }
    }
    Ok(out)
}

/// `(non-zero, total)` over the weights the model uses (a tied head counted once).
pub fn count_weights(
    config: &LlamaConfig,
    tensors: &HashMap<String, Tensor>,
) -> Result<(u64, u64)> {
    let (mut nz, mut total) = (0u64, 0u64);
    for (name, t) in tensors {
        let used = gguf_tensor_name(name)
            .is_some_and(|g| !(config.tie_word_embeddings && g == "output.weight"));
        if used {
            let v: Vec<f32> = t.flatten_all()?.to_vec1()?;
            nz += prune::nonzero(&v);
            total += v.len() as u64;
        }
    }
    Ok((nz, total))
}

/// Where variants are cached: `<models dir>/variants`.
pub fn variants_dir() -> PathBuf {
    models_dir().join("variants")
}

/// The variant of `base` (an HF directory) that `recipe` describes, made if not cached.
pub fn materialize(base: &Path, recipe: &Recipe) -> Result<Variant> {
    materialize_in(&variants_dir(), base, recipe)
}

/// [`materialize`] with the cache in `root`.
pub fn materialize_in(root: &Path, base: &Path, recipe: &Recipe) -> Result<Variant> {
    let files = loader::safetensors_files(base)?;
    let base_sha256 = loader::sha256_files(&files)?;
    let key = serde_json::json!({
        "generator": GENERATOR, "base_sha256": base_sha256, "quant": recipe.quant,
        "sparsity": recipe.sparsity, "prune": recipe.prune.name(),
    });
    let hash: String = Sha256::digest(key.to_string().as_bytes())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    let name = format!("{}-{}-{hash}", loader::display_name(base), recipe.slug());
    let dir = root.join(name);
    let meta_path = dir.join("variant.json");
    if meta_path.is_file() {
        let text = std::fs::read_to_string(&meta_path)
            .with_context(|| format!("cannot read '{}'", meta_path.display()))?;
        if let Ok(meta) = serde_json::from_str::<VariantMeta>(&text) {
            return Ok(Variant { dir, meta });
        }
    }
    let config = LlamaConfig::from_hf_file(&base.join("config.json"))?;
    let mut tensors = read_dense(base)?;
    let report = if recipe.sparsity > 0.0 {
        prune::prune(&mut tensors, recipe.prune, recipe.sparsity)?
    } else {
        prune::PruneReport::default()
    };
    let (nonzero, params_total) = count_weights(&config, &tensors)?;
    let mut meta = VariantMeta {
        generator: GENERATOR.into(),
        base: base.display().to_string(),
        base_sha256,
        quant: recipe.quant.clone(),
        sparsity: recipe.sparsity,
        prune: recipe.prune.name().into(),
        weights_file: String::new(),
        tensor_types: BTreeMap::new(),
        fallbacks: Vec::new(),
        params_total,
        nonzero_weights: nonzero,
        prunable_weights: report.prunable,
        pruned_weights: report.zeroed,
    };
    let mut out: Vec<(&str, Vec<u8>)> = Vec::new();
    for f in [
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
    ] {
        if let Ok(bytes) = std::fs::read(base.join(f)) {
            out.push((f, bytes));
        }
    }
    match quantize::ggml_type(&recipe.quant)? {
        Some(qtype) => {
            let extra = gguf_metadata(&config, &meta);
            let mut bytes = std::io::Cursor::new(Vec::new());
            let q = quantize::write_quantized(&mut bytes, &config, &tensors, qtype, &extra)?;
            meta.tensor_types = q.types;
            meta.fallbacks = q.fallbacks;
            meta.weights_file = "model.gguf".into();
            out.push(("model.gguf", bytes.into_inner()));
        }
        None => {
            let mut named: Vec<(&String, &Tensor)> = tensors.iter().collect();
            named.sort_by(|a, b| a.0.cmp(b.0));
            let header = HashMap::from([("format".to_string(), "pt".to_string())]);
            let bytes = safetensors::tensor::serialize(named, Some(header))
                .map_err(|e| anyhow::anyhow!("serializing pruned weights: {e}"))?;
            meta.weights_file = "model.safetensors".into();
            out.push(("model.safetensors", bytes));
        }
    }
    out.push(("variant.json", serde_json::to_vec_pretty(&meta)?));
    publish_dir(&dir, &out, false)?;
    Ok(Variant { dir, meta })
}

/// GGUF metadata of a variant: name, special token ids and provenance.
fn gguf_metadata(config: &LlamaConfig, meta: &VariantMeta) -> Vec<(String, gguf_file::Value)> {
    use gguf_file::Value;
    let mut v = vec![
        (
            "general.name".into(),
            Value::String(format!("{} {}", meta.base, meta.quant)),
        ),
        ("effbench.generator".into(), Value::String(GENERATOR.into())),
        (
            "effbench.base_sha256".into(),
            Value::String(meta.base_sha256.clone()),
        ),
        ("effbench.sparsity".into(), Value::F32(meta.sparsity as f32)),
        ("effbench.prune".into(), Value::String(meta.prune.clone())),
    ];
    if let Some(b) = config.bos_token_id {
        v.push(("tokenizer.ggml.bos_token_id".into(), Value::U32(b)));
    }
    if let Some(e) = config.eos_token_id {
        v.push(("tokenizer.ggml.eos_token_id".into(), Value::U32(e)));
    }
    v
}

/// Loads the model `choice` selects (making its variant first if needed), with the variant's
/// provenance in `info.details["variant"]`.
pub fn load(choice: &ModelChoice, device: &Device) -> Result<(LoadedModel, Option<Variant>)> {
    choice.check().map_err(anyhow::Error::msg)?;
    let dtype = loader::parse_dtype(&choice.dtype)?;
    if choice.recipe.is_identity() {
        return Ok((loader::load(&choice.model, dtype, device)?, None));
    }
    if let (Some(p), Some(q)) = (
        choice.model.preset(),
        quantize::ggml_type(&choice.recipe.quant)?,
    ) {
        let spec = crate::preset::parse(p)?;
        let loaded =
            crate::preset::load::load_quantized(&choice.model.reference, &spec, q, device)?;
        return Ok((loaded, None));
    }
    let base = loader::resolve(&choice.model)?;
    let variant = materialize(&base, &choice.recipe).with_context(|| {
        format!(
            "making the {} variant of '{}'",
            choice.recipe.describe(),
            base.display()
        )
    })?;
    let mut loaded = if variant.meta.weights_file == "model.gguf" {
        let mut l = loader::load_gguf(&variant.weights(), device)?;
        let mut special = loader::hf_special_ids(&variant.dir);
        special.extend(
            l.model
                .config
                .bos_token_id
                .into_iter()
                .chain(l.model.config.eos_token_id),
        );
        special.extend(l.special_ids.iter().copied());
        special.sort_unstable();
        special.dedup();
        l.special_ids = special;
        l
    } else {
        loader::load_hf(&variant.dir, dtype, device)?
    };
    let base_name = if choice.model.is_default() {
        "default".to_string()
    } else {
        loader::display_name(&base)
    };
    loaded.info.name = format!("{base_name} [{}]", choice.recipe.describe());
    loaded
        .info
        .details
        .insert("variant".into(), serde_json::to_value(&variant.meta)?);
    Ok((loaded, Some(variant)))
}

/// Non-zero weights of the model a choice loads, from its variant or by counting the base.
pub fn weights_remaining(
    choice: &ModelChoice,
    variant: Option<&Variant>,
) -> Result<Option<(u64, u64)>> {
    if let Some(v) = variant {
        return Ok(Some((v.meta.nonzero_weights, v.meta.params_total)));
    }
    if choice.model.format() != ModelFormat::Hf {
        return Ok(None);
    }
    let dir = loader::resolve(&choice.model)?;
    let config = LlamaConfig::from_hf_file(&dir.join("config.json"))?;
    Ok(Some(count_weights(&config, &read_dense(&dir)?)?))
}

#[cfg(test)]
mod tests;
