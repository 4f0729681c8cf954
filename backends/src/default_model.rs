//! The built-in models (design: `model = "default"` / `"seeded"`), both a small llama in HF
//! format under the models directory (`results/models/` or `$EFFBENCH_MODELS_DIR`):
//!
//! - `seeded/`: created deterministically when absent — `config.json`, seeded
//!   `model.safetensors`, and the word-level `tokenizer.json` of the synthetic language in
//!   [`crate::corpus`]. Untrained; for tests and quick checks.
//! - `default/`: the same architecture trained by suites/train-tiny.toml (`effbench run`
//!   trains it first when absent, see [`trained_default`]); [`publish_trained_default`] puts
//!   a training checkpoint there, marked `"weights": "trained"` in `config.json`'s `effbench`
//!   section with where it came from.
//!
//! Files are written into a temporary directory that is renamed into place, so concurrent
//! processes never see a half-written model.

use crate::corpus::{Corpus, BOS_ID, EOS_ID};
use crate::llama::{LlamaConfig, INIT_STD};
use anyhow::{anyhow, Context, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};

/// Environment variable naming the models directory (the default model is `<dir>/default`).
pub const MODELS_DIR_ENV: &str = "EFFBENCH_MODELS_DIR";
/// Models directory when the variable is unset, relative to the current directory.
pub const MODELS_DIR: &str = "results/models";
/// Seed of the default model's weights.
pub const DEFAULT_WEIGHTS_SEED: u64 = 42;
/// Version of the generator, recorded in `config.json` (bump when the bytes change).
pub const GENERATOR: &str = "effbench default model v1";

/// Architecture of the default model: ~0.8 M parameters, context 256.
pub fn default_config() -> LlamaConfig {
    LlamaConfig {
        hidden_size: 128,
        intermediate_size: 352,
        num_hidden_layers: 4,
        num_attention_heads: 4,
        num_key_value_heads: Some(2),
        head_dim: None,
        vocab_size: Corpus::standard().vocab_size(),
        rms_norm_eps: 1e-5,
        rope_theta: 10_000.0,
        max_position_embeddings: 256,
        tie_word_embeddings: true,
        bos_token_id: Some(BOS_ID),
        eos_token_id: Some(EOS_ID),
        hidden_act: Some("silu".into()),
        model_type: Some("llama".into()),
        rope_scaling: None,
    }
}

/// The models directory: `$EFFBENCH_MODELS_DIR` or `results/models`.
pub fn models_dir() -> PathBuf {
    std::env::var_os(MODELS_DIR_ENV)
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from(MODELS_DIR), PathBuf::from)
}

/// Where the trained default model lives: `<models_dir>/default`.
pub fn default_model_dir() -> PathBuf {
    models_dir().join("default")
}

/// Where the seeded (untrained) default weights live: `<models_dir>/seeded`.
pub fn seeded_model_dir() -> PathBuf {
    models_dir().join("seeded")
}

/// The seeded model's directory, created first if absent.
pub fn ensure_seeded_model() -> Result<PathBuf> {
    ensure_seeded_model_in(&models_dir())
}

/// `<models_dir>/seeded`, created deterministically if it has no `config.json`.
/// An existing directory is left as it is.
pub fn ensure_seeded_model_in(models_dir: &Path) -> Result<PathBuf> {
    let dir = models_dir.join("seeded");
    if dir.join("config.json").is_file() {
        return Ok(dir);
    }
    let files = default_model_files()?;
    publish_dir(&dir, &files, false)?;
    Ok(dir)
}

/// The `effbench` section of `<models_dir>/default/config.json` when it holds trained
/// weights (`"weights": "trained"`), else `None` (absent, unreadable, or seeded weights).
pub fn trained_default(models_dir: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(models_dir.join("default").join("config.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let section = v.get("effbench")?;
    (section.get("weights")? == "trained" && models_dir.join("default/model.safetensors").is_file())
        .then(|| section.clone())
}

/// Makes the training checkpoint in `checkpoint` the default model: copies its
/// `config.json` (with `provenance` added to the `effbench` section as `"default_from"`),
/// `model.safetensors` and `tokenizer.json` into `<models_dir>/default`, replacing what was
/// there atomically.
pub fn publish_trained_default(
    models_dir: &Path,
    checkpoint: &Path,
    provenance: serde_json::Value,
) -> Result<PathBuf> {
    let read = |name: &str| {
        std::fs::read(checkpoint.join(name))
            .with_context(|| format!("cannot read '{}'", checkpoint.join(name).display()))
    };
    let mut config: serde_json::Value = serde_json::from_slice(&read("config.json")?)
        .with_context(|| format!("'{}' is not JSON", checkpoint.join("config.json").display()))?;
    if let Some(section) = config.get_mut("effbench").and_then(|v| v.as_object_mut()) {
        section.insert("default_from".into(), provenance);
    }
    let files = vec![
        (
            "config.json",
            (serde_json::to_string_pretty(&config)? + "\n").into_bytes(),
        ),
        ("model.safetensors", read("model.safetensors")?),
        ("tokenizer.json", read("tokenizer.json")?),
    ];
    let dir = models_dir.join("default");
    publish_dir(&dir, &files, true)?;
    Ok(dir)
}

/// The three files of the seeded model, byte-identical on every call.
pub fn default_model_files() -> Result<Vec<(&'static str, Vec<u8>)>> {
    let config = default_config();
    let tensors = seeded_tensors(&config, DEFAULT_WEIGHTS_SEED);
    Ok(vec![
        ("config.json", config_json(&config, "seeded")?.into_bytes()),
        ("model.safetensors", safetensors_bytes(&tensors)?),
        (
            "tokenizer.json",
            Corpus::standard().tokenizer_json().into_bytes(),
        ),
    ])
}

/// HF `config.json` text with an `effbench` section recording where the weights came from
/// (`"seeded"` or `"trained"`).
pub fn config_json(config: &LlamaConfig, weights: &str) -> Result<String> {
    config_json_with(
        config,
        serde_json::json!({"weights": weights, "generator": GENERATOR,
            "weights_seed": DEFAULT_WEIGHTS_SEED}),
    )
}

/// HF `config.json` text with `effbench` set to `section` (ignored by other HF readers).
pub fn config_json_with(config: &LlamaConfig, section: serde_json::Value) -> Result<String> {
    let mut v: serde_json::Value = serde_json::from_str(&config.to_hf_json()?)?;
    if let serde_json::Value::Object(m) = &mut v {
        m.insert("effbench".into(), section);
    }
    Ok(serde_json::to_string_pretty(&v)? + "\n")
}

/// A seeded f32 tensor with HF name and shape.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedTensor {
    /// HF tensor name, e.g. `model.layers.0.mlp.up_proj.weight`.
    pub name: String,
    /// Row-major shape.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f32>,
}

/// Seeded initial weights for `config` (HF names, sorted): N(0, 0.02) matrices (ChaCha8
/// stream, Box-Muller), output projections scaled by 1/sqrt(2 * layers), norms at 1.
pub fn seeded_tensors(config: &LlamaConfig, seed: u64) -> Vec<NamedTensor> {
    let c = config;
    let (h, d, ff) = (c.hidden_size, c.head_size(), c.intermediate_size);
    let (nh, nkv) = (c.num_attention_heads, c.kv_heads());
    let out_std = INIT_STD / (2.0 * c.num_hidden_layers as f64).sqrt();
    let mut specs: Vec<(String, Vec<usize>, Option<f64>)> = vec![
        (
            "model.embed_tokens.weight".into(),
            vec![c.vocab_size, h],
            Some(INIT_STD),
        ),
        ("model.norm.weight".into(), vec![h], None),
    ];
    if !c.tie_word_embeddings {
        specs.push((
            "lm_head.weight".into(),
            vec![c.vocab_size, h],
            Some(INIT_STD),
        ));
    }
    for i in 0..c.num_hidden_layers {
        let p = |s: &str| format!("model.layers.{i}.{s}.weight");
        specs.extend([
            (p("input_layernorm"), vec![h], None),
            (p("post_attention_layernorm"), vec![h], None),
            (p("self_attn.q_proj"), vec![nh * d, h], Some(INIT_STD)),
            (p("self_attn.k_proj"), vec![nkv * d, h], Some(INIT_STD)),
            (p("self_attn.v_proj"), vec![nkv * d, h], Some(INIT_STD)),
            (p("self_attn.o_proj"), vec![h, nh * d], Some(out_std)),
            (p("mlp.gate_proj"), vec![ff, h], Some(INIT_STD)),
            (p("mlp.up_proj"), vec![ff, h], Some(INIT_STD)),
            (p("mlp.down_proj"), vec![h, ff], Some(out_std)),
        ]);
    }
    specs.sort_by(|a, b| a.0.cmp(&b.0));
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    specs
        .into_iter()
        .map(|(name, shape, std)| {
            let n: usize = shape.iter().product();
            let data = match std {
                None => vec![1.0; n],
                Some(std) => (0..n).map(|_| (normal(&mut rng) * std) as f32).collect(),
            };
            NamedTensor { name, shape, data }
        })
        .collect()
}

/// One standard normal draw (Box-Muller; platform-independent).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// `model.safetensors` bytes (F32, deterministic header).
pub fn safetensors_bytes(tensors: &[NamedTensor]) -> Result<Vec<u8>> {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|t| t.data.iter().flat_map(|x| x.to_le_bytes()).collect())
        .collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|(t, b)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, t.shape.clone(), b)
                .map(|v| (t.name.clone(), v))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("building safetensors views: {e}"))?;
    let meta = std::collections::HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::tensor::serialize(views, Some(meta))
        .map_err(|e| anyhow!("serializing safetensors: {e}"))
}

/// Writes `files` (names relative to `dir`, subdirectories allowed) into a fresh temporary
/// directory beside `dir`, then renames it to `dir`.
/// If `dir` already exists: with `replace` it is swapped out (old copy removed), without it
/// the existing directory wins (another process created it first) and ours is discarded.
pub fn publish_dir(dir: &Path, files: &[(&str, Vec<u8>)], replace: bool) -> Result<()> {
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)
        .with_context(|| format!("cannot create models directory '{}'", parent.display()))?;
    let name = dir
        .file_name()
        .ok_or_else(|| anyhow!("'{}' has no directory name", dir.display()))?
        .to_string_lossy();
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let unique = format!(
        "{}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    );
    let tmp = parent.join(format!(".{name}.tmp-{unique}"));
    let result = (|| -> Result<()> {
        std::fs::create_dir(&tmp).with_context(|| format!("cannot create '{}'", tmp.display()))?;
        for (file, bytes) in files {
            let p = tmp.join(file);
            if let Some(sub) = p.parent().filter(|d| *d != tmp.as_path()) {
                std::fs::create_dir_all(sub)
                    .with_context(|| format!("cannot create '{}'", sub.display()))?;
            }
            // Durable before it is published: each file and the directory reach the disk
            // before the rename makes them the model (a crash leaves the old one or the new).
            let write = || -> std::io::Result<()> {
                use std::io::Write;
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&p)?;
                f.write_all(bytes)?;
                f.sync_all()
            };
            write().with_context(|| format!("cannot write '{}'", p.display()))?;
        }
        sync_dir(&tmp);
        if replace && dir.exists() {
            let old = parent.join(format!(".{name}.old-{unique}"));
            std::fs::rename(dir, &old)
                .with_context(|| format!("cannot move '{}' aside", dir.display()))?;
            std::fs::rename(&tmp, dir)
                .with_context(|| format!("cannot move new model into '{}'", dir.display()))?;
            sync_dir(parent);
            let _ = std::fs::remove_dir_all(&old);
            return Ok(());
        }
        match std::fs::rename(&tmp, dir) {
            Ok(()) => {
                sync_dir(parent);
                Ok(())
            }
            // Someone else published first: theirs is identical (or newer), keep it.
            Err(_) if dir.join("config.json").is_file() => Ok(()),
            Err(e) => Err(e).with_context(|| format!("cannot create '{}'", dir.display())),
        }
    })();
    if tmp.exists() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

/// fsync of a directory (its entries reach the disk); best effort.
fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creation_is_deterministic_fast_and_idempotent() {
        let t = std::time::Instant::now();
        let a = default_model_files().unwrap();
        assert!(t.elapsed().as_secs_f64() < 1.0, "{:?}", t.elapsed());
        let b = default_model_files().unwrap();
        assert_eq!(a, b);
        let tmp = tempfile::tempdir().unwrap();
        let dir = ensure_seeded_model_in(tmp.path()).unwrap();
        for (name, bytes) in &a {
            assert_eq!(&std::fs::read(dir.join(name)).unwrap(), bytes, "{name}");
        }
        // a second call keeps the existing files
        std::fs::write(dir.join("marker"), b"x").unwrap();
        ensure_seeded_model_in(tmp.path()).unwrap();
        assert!(dir.join("marker").exists());
        // nothing temporary is left behind
        let entries: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
        assert_eq!(entries.len(), 1);
    }

    #[test]
    fn concurrent_creation_yields_one_complete_model() {
        let tmp = tempfile::tempdir().unwrap();
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let p = tmp.path().to_path_buf();
                std::thread::spawn(move || ensure_seeded_model_in(&p).unwrap())
            })
            .collect();
        for h in handles {
            let dir = h.join().unwrap();
            assert!(dir.join("model.safetensors").is_file());
        }
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
    }

    #[test]
    fn seeded_weights_have_the_intended_statistics() {
        let cfg = default_config();
        let ts = seeded_tensors(&cfg, 7);
        let emb = ts
            .iter()
            .find(|t| t.name == "model.embed_tokens.weight")
            .unwrap();
        let n = emb.data.len() as f64;
        let mean = emb.data.iter().map(|&x| x as f64).sum::<f64>() / n;
        let var = emb
            .data
            .iter()
            .map(|&x| (x as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        assert!(mean.abs() < 1e-3 && (var.sqrt() - INIT_STD).abs() < 1e-3);
        let norm = ts.iter().find(|t| t.name == "model.norm.weight").unwrap();
        assert!(norm.data.iter().all(|&x| x == 1.0));
        assert_ne!(seeded_tensors(&cfg, 8)[0].data, emb.data);
    }
}
