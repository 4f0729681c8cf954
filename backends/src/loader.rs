//! Loading llama models for any backend: resolving `model = "default"`/`"seeded"` or a path,
//! reading an HF directory (config.json + *.safetensors, any dtype) or a GGUF file, building a
//! `preset:` ([`crate::preset`]), and describing what was loaded in a [`ModelInfo`] (params,
//! bytes, sha256, architecture). [`model_config`] reads just the architecture (for the
//! memory estimate). Every error names the file it concerns.

use crate::default_model;
use crate::llama::{gguf_weight_dtype, kernel_report, Llama, LlamaConfig, QuantKernels};
use anyhow::{anyhow, bail, Context, Result};
use candle_core::quantized::gguf_file;
use candle_core::{DType, Device};
use effbench_harness::records::ModelFormat;
use effbench_harness::{ModelInfo, ModelSpec};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// A model ready to run, with the facts a result records.
pub struct LoadedModel {
    /// The model.
    pub model: Llama,
    /// What a result records about it.
    pub info: ModelInfo,
    /// Token ids that are not ordinary text (bos/eos/pad, control tokens ...).
    pub special_ids: Vec<u32>,
}

/// Parses a dtype axis value (`f32`, `f16`, `bf16`).
pub fn parse_dtype(s: &str) -> Result<DType> {
    match s {
        "f32" => Ok(DType::F32),
        "f16" => Ok(DType::F16),
        "bf16" => Ok(DType::BF16),
        other => bail!("dtype '{other}' is not one of f32, f16, bf16"),
    }
}

/// The candle device for a harness device.
pub fn candle_device(device: effbench_harness::Device) -> Result<Device> {
    match device {
        effbench_harness::Device::Cpu => {
            pin_cpu_threads();
            Ok(Device::Cpu)
        }
        #[cfg(feature = "cuda")]
        effbench_harness::Device::Cuda(i) => {
            Device::new_cuda(i).with_context(|| format!("cannot open CUDA device {i}"))
        }
        #[cfg(not(feature = "cuda"))]
        effbench_harness::Device::Cuda(i) => {
            bail!("device cuda:{i} needs effbench built with --features cuda")
        }
    }
}

/// candle 0.11 asks for its CPU thread count on every dense matmul, and unless
/// `RAYON_NUM_THREADS` is set that means re-reading `/proc/cpuinfo` (several % of decode time
/// for small models). Sets the variable once, to the value candle would compute anyway, so the
/// thread count is unchanged. Runs at most once per process, before any worker we start.
pub fn pin_cpu_threads() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("RAYON_NUM_THREADS").is_none() {
            let n = candle_core::utils::get_num_threads();
            std::env::set_var("RAYON_NUM_THREADS", n.to_string());
        }
    });
}

/// candle's element-wise thread count (its pool is created once per process).
pub const CANDLE_THREADS_ENV: &str = "CANDLE_NUM_THREADS";

/// Sets up a training process's CPU threads, before any candle work: candle's element-wise
/// thread pool gets no extra workers (`CANDLE_NUM_THREADS=1`), because data-parallel training
/// runs one micro-batch per CPU thread and those threads would otherwise queue for the one
/// shared pool and its workers would spin on the cores they need. The matmul thread count
/// (`RAYON_NUM_THREADS`, which the MFU probe uses) is untouched. A value the user set wins.
/// The pool lives as long as the process, so `effbench run` calls this only for training
/// suites and trains the default model in a child process.
pub fn pin_training_threads() {
    if std::env::var_os(CANDLE_THREADS_ENV).is_none() {
        // Called at the start of `run`, before any thread that reads the environment exists.
        std::env::set_var(CANDLE_THREADS_ENV, "1");
    }
}

/// The path a model reference means: `seeded` is created on first use; `default` must have
/// been trained (`effbench run` trains it first, with suites/train-tiny.toml).
pub fn resolve(spec: &ModelSpec) -> Result<PathBuf> {
    if spec.preset().is_some() {
        bail!(
            "model '{}' is a preset: it has no files (its weights are made when it is loaded)",
            spec.reference
        );
    }
    if spec.is_seeded() {
        return default_model::ensure_seeded_model();
    }
    if spec.is_default() {
        let dir = default_model::default_model_dir();
        if !dir.join("config.json").is_file() {
            bail!(
                "the trained default model is not in '{}' yet: `effbench run` trains it first \
                 (suites/train-tiny.toml); use model = \"seeded\" for the untrained weights",
                dir.display()
            );
        }
        return Ok(dir);
    }
    match spec.path() {
        Some(p) if p.exists() => Ok(p),
        Some(p) => bail!("model path '{}' does not exist", p.display()),
        None => bail!("model reference '{}' names no model", spec.reference),
    }
}

/// Context length of the model a reference names, read cheaply (config or GGUF header).
/// `default` that does not exist yet has the built-in configuration.
pub fn context_length(spec: &ModelSpec) -> Result<usize> {
    Ok(model_config(spec)?.max_position_embeddings)
}

/// The architecture of the model a reference names, without loading weights: a preset's
/// configuration, a config.json or a GGUF header. Built-ins (trained or not yet created)
/// have the default architecture.
pub fn model_config(spec: &ModelSpec) -> Result<LlamaConfig> {
    if let Some(p) = spec.preset() {
        return Ok(crate::preset::parse(p)?.config);
    }
    let path = match spec.path() {
        Some(p) => p,
        None => return Ok(default_model::default_config()),
    };
    if !path.exists() {
        bail!("model path '{}' does not exist", path.display());
    }
    match spec.format() {
        ModelFormat::Gguf => LlamaConfig::from_gguf(&read_gguf_header(&path)?.0)
            .with_context(|| format!("GGUF file '{}'", path.display())),
        _ => LlamaConfig::from_hf_file(&path.join("config.json")),
    }
}

/// Bytes of a GGUF file's tensors as stored (what loading it holds in memory, before
/// repacking).
pub fn gguf_tensor_bytes(path: &Path) -> Result<u64> {
    let (ct, _) = read_gguf_header(path)?;
    Ok(ct
        .tensor_infos
        .values()
        .map(|t| {
            let blocks = t.shape.elem_count() / t.ggml_dtype.block_size();
            (blocks * t.ggml_dtype.type_size()) as u64
        })
        .sum())
}

/// Loads an HF model directory with weights converted to `dtype`.
pub fn load_hf(dir: &Path, dtype: DType, device: &Device) -> Result<LoadedModel> {
    let config = LlamaConfig::from_hf_file(&dir.join("config.json"))?;
    let files = safetensors_files(dir)?;
    for f in &files {
        // Header check per file, so a corrupt one is named.
        // SAFETY: the file is only read; effbench does not modify model files while loaded.
        unsafe { candle_core::safetensors::MmapedSafetensors::new(f) }
            .with_context(|| format!("cannot read safetensors file '{}'", f.display()))?;
    }
    // SAFETY: as above.
    let vb = unsafe { candle_nn::VarBuilder::from_mmaped_safetensors(&files, dtype, device) }
        .with_context(|| format!("cannot map weights in '{}'", dir.display()))?;
    let model = Llama::from_varbuilder(&config, vb)
        .with_context(|| format!("loading weights from '{}'", dir.display()))?;
    let arch = config.arch().to_string();
    let raw: serde_json::Value = std::fs::read_to_string(dir.join("config.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let mut details = arch_details(&config);
    if let Some(w) = raw.pointer("/effbench/weights") {
        details.insert("weights".into(), w.clone());
    }
    details.insert("rope_layout".into(), json!("half-split"));
    let mut special_ids = hf_special_ids(dir);
    special_ids.extend(config.bos_token_id.into_iter().chain(config.eos_token_id));
    special_ids.sort_unstable();
    special_ids.dedup();
    let (params_total, params_non_embedding) = model.param_counts();
    let info = ModelInfo {
        name: display_name(dir),
        format: "hf".into(),
        arch,
        dtype: dtype_name(dtype).into(),
        params_total,
        params_non_embedding,
        file_bytes: total_size(&files)?,
        loaded_bytes: model.weight_bytes(),
        path: Some(dir.display().to_string()),
        sha256: Some(sha256_files(&files)?),
        details,
        roofline: None,
    };
    Ok(LoadedModel {
        model,
        info,
        special_ids,
    })
}

/// Loads a GGUF file (weights stay quantized; activations f32) with the matmul kernels
/// `EFFBENCH_QMATMUL` selects (effbench's by default).
pub fn load_gguf(path: &Path, device: &Device) -> Result<LoadedModel> {
    crate::llama::check_decode_env()?;
    load_gguf_with(path, device, QuantKernels::from_env()?)
}

/// [`load_gguf`] with the quantized matrices on the given kernels; the result's details
/// record which kernel ran each kind of matrix and which tensors fell back to candle.
pub fn load_gguf_with(path: &Path, device: &Device, kernels: QuantKernels) -> Result<LoadedModel> {
    let (ct, mut file) = read_gguf_header(path)?;
    let model = Llama::from_gguf_with(&ct, &mut file, device, kernels)
        .with_context(|| format!("GGUF file '{}'", path.display()))?;
    let mut details = arch_details(&model.config);
    details.insert("matmul_kernels".into(), kernel_report(&model, kernels));
    details.insert("rope_layout".into(), json!("interleaved"));
    details.insert("compute_dtype".into(), json!("f32"));
    for key in ["general.name", "tokenizer.ggml.model", "tokenizer.ggml.pre"] {
        if let Some(v) = ct.metadata.get(key).and_then(|v| v.to_string().ok()) {
            details.insert(key.into(), json!(v));
        }
    }
    let (params_total, params_non_embedding) = model.param_counts();
    let info = ModelInfo {
        name: display_name(path),
        format: "gguf".into(),
        arch: "llama".into(),
        dtype: gguf_weight_dtype(&ct),
        params_total,
        params_non_embedding,
        file_bytes: total_size(&[path.to_path_buf()])?,
        loaded_bytes: model.weight_bytes(),
        path: Some(path.display().to_string()),
        sha256: Some(sha256_files(&[path.to_path_buf()])?),
        details,
        roofline: None,
    };
    Ok(LoadedModel {
        model,
        info,
        special_ids: crate::tokenizer::special_token_ids(&ct),
    })
}

/// Opens a GGUF file and reads its metadata and tensor directory.
pub fn read_gguf_header(path: &Path) -> Result<(gguf_file::Content, std::fs::File)> {
    let mut file = std::fs::File::open(path)
        .with_context(|| format!("cannot open GGUF file '{}'", path.display()))?;
    let bad = || format!("'{}' is not a valid GGUF file", path.display());
    // Our own bounded walk first: candle panics on some crafted headers (alignment 0).
    crate::llama::check_gguf_metadata(std::io::BufReader::new(&mut file)).with_context(bad)?;
    use std::io::Seek;
    file.seek(std::io::SeekFrom::Start(0)).with_context(bad)?;
    let ct = gguf_file::Content::read(&mut file).with_context(bad)?;
    let size = file.metadata().with_context(bad)?.len();
    crate::llama::check_gguf_tensors(&ct, size).with_context(bad)?;
    Ok((ct, file))
}

/// `model.safetensors`, or every `*.safetensors` in the directory (sorted by name).
pub fn safetensors_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list model directory '{}'", dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!(
            "model directory '{}' has no *.safetensors file",
            dir.display()
        );
    }
    Ok(files)
}

/// Special ids from `tokenizer.json`'s added tokens (none when absent or unreadable).
pub fn hf_special_ids(dir: &Path) -> Vec<u32> {
    let Ok(text) = std::fs::read_to_string(dir.join("tokenizer.json")) else {
        return Vec::new();
    };
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    v.get("added_tokens")
        .and_then(|a| a.as_array())
        .map(|a| {
            a.iter()
                .filter(|t| t.get("special").and_then(|s| s.as_bool()) == Some(true))
                .filter_map(|t| t.get("id").and_then(|i| i.as_u64()))
                .filter_map(|i| u32::try_from(i).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Architecture facts recorded in [`ModelInfo::details`].
pub fn arch_details(c: &LlamaConfig) -> BTreeMap<String, serde_json::Value> {
    BTreeMap::from([
        ("layers".into(), json!(c.num_hidden_layers)),
        ("hidden_size".into(), json!(c.hidden_size)),
        ("intermediate_size".into(), json!(c.intermediate_size)),
        ("attention_heads".into(), json!(c.num_attention_heads)),
        ("kv_heads".into(), json!(c.kv_heads())),
        ("head_dim".into(), json!(c.head_size())),
        ("vocab_size".into(), json!(c.vocab_size)),
        ("context".into(), json!(c.max_position_embeddings)),
        ("rope_theta".into(), json!(c.rope_theta)),
        ("tied_embeddings".into(), json!(c.tie_word_embeddings)),
    ])
}

/// Short name of a model path for tables (`default` for the embedded model).
pub fn display_name(path: &Path) -> String {
    if path == default_model::default_model_dir() {
        return "default".into();
    }
    if path == default_model::seeded_model_dir() {
        return "seeded".into();
    }
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into(),
    )
}

/// `f32`, `f16`, `bf16` (as on the dtype axis) for a candle dtype.
pub fn dtype_name(d: DType) -> &'static str {
    match d {
        DType::F32 => "f32",
        DType::F16 => "f16",
        DType::BF16 => "bf16",
        _ => "other",
    }
}

fn total_size(files: &[PathBuf]) -> Result<u64> {
    files.iter().try_fold(0u64, |acc, f| {
        let len = std::fs::metadata(f)
            .with_context(|| format!("cannot stat '{}'", f.display()))?
            .len();
        Ok(acc + len)
    })
}

/// SHA-256 over the bytes of the files, in the given order.
pub fn sha256_files(files: &[PathBuf]) -> Result<String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    for f in files {
        let mut file =
            std::fs::File::open(f).with_context(|| format!("cannot open '{}'", f.display()))?;
        loop {
            let n = file
                .read(&mut buf)
                .with_context(|| format!("cannot read '{}'", f.display()))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Loads what a model reference names, in `dtype` for HF weights and presets.
pub fn load(spec: &ModelSpec, dtype: DType, device: &Device) -> Result<LoadedModel> {
    if let Some(p) = spec.preset() {
        let preset = crate::preset::parse(p)?;
        return crate::preset::load::load_dense(&spec.reference, &preset, dtype, device);
    }
    let path = resolve(spec)?;
    let mut loaded = match spec.format() {
        ModelFormat::Gguf => load_gguf(&path, device)?,
        ModelFormat::Hf => load_hf(&path, dtype, device)?,
        ModelFormat::Remote | ModelFormat::Preset => {
            return Err(anyhow!("remote models are not loaded in-process"))
        }
    };
    if spec.is_builtin() {
        loaded.info.name = spec.reference.clone();
    }
    Ok(loaded)
}
