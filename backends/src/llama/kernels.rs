//! Which kernels run a GGUF model's quantized matrices — effbench's repacked CPU kernels
//! ([`super::qmm`]) or candle's `QMatMul` — and the report of what ran where that a result
//! records (`model.details.matmul_kernels`), naming every tensor that fell back to candle.

use super::layers::{Embedding, Linear};
use super::model::Llama;
use super::qmm::QMatrix;
use anyhow::{bail, Result};
use candle_core::quantized::{QMatMul, QTensor};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The environment variable that selects the kernels (`effbench` default, `candle` for A/B).
pub const QMATMUL_ENV: &str = "EFFBENCH_QMATMUL";

/// Kernels for quantized matrices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QuantKernels {
    /// effbench's kernels where the format has one (CPU), candle's `QMatMul` otherwise.
    #[default]
    Effbench,
    /// candle's `QMatMul` for every matrix (the A/B baseline).
    Candle,
}

impl QuantKernels {
    /// From `EFFBENCH_QMATMUL` (unset or empty: the default).
    pub fn from_env() -> Result<QuantKernels> {
        match std::env::var(QMATMUL_ENV).unwrap_or_default().trim() {
            "" | "effbench" => Ok(QuantKernels::Effbench),
            "candle" => Ok(QuantKernels::Candle),
            other => bail!("{QMATMUL_ENV}='{other}' is not one of effbench, candle"),
        }
    }

    /// `effbench` or `candle`.
    pub fn name(self) -> &'static str {
        match self {
            QuantKernels::Effbench => "effbench",
            QuantKernels::Candle => "candle",
        }
    }

    /// The linear layer for a quantized weight.
    pub fn linear(self, q: QTensor) -> Result<Linear> {
        if self == QuantKernels::Effbench {
            if let Some(m) = QMatrix::from_qtensor(&q)? {
                return Ok(Linear::Packed(Arc::new(m)));
            }
        }
        Ok(Linear::Quantized(QMatMul::from_qtensor(q)?))
    }

    /// The token embedding and, when `tied`, the output head sharing its weights.
    pub fn embedding(self, q: QTensor, tied: bool) -> Result<(Embedding, Option<Linear>)> {
        if self == QuantKernels::Effbench {
            if let Some(m) = QMatrix::from_qtensor(&q)? {
                let m = Arc::new(m);
                let head = tied.then(|| Linear::Packed(m.clone()));
                return Ok((Embedding::Packed(m), head));
            }
        }
        let q = Arc::new(q);
        let head = if tied {
            Some(Linear::Quantized(QMatMul::from_arc(q.clone())?))
        } else {
            None
        };
        Ok((Embedding::Quantized(q), head))
    }
}

/// `{"selected": "effbench", "kernels": {"effbench avx512vnni q4_1": 210, ...},
/// "fallback": ["blk.0.attn_q.weight (q5_1)", ...]}` for a loaded model.
pub fn kernel_report(model: &Llama, selected: QuantKernels) -> serde_json::Value {
    let mut kernels: BTreeMap<String, usize> = BTreeMap::new();
    let mut fallback = Vec::new();
    let mut note = |name: String, l: &Linear| {
        let kind = match l {
            Linear::Packed(q) => format!("effbench {} {}", q.isa().name(), q.format().name()),
            Linear::Quantized(QMatMul::QTensor(q)) => {
                let t = format!("{:?}", q.dtype()).to_lowercase();
                if selected == QuantKernels::Effbench {
                    fallback.push(format!("{name} ({t})"));
                }
                format!("candle {t}")
            }
            Linear::Quantized(_) => "candle dequantized".to_string(),
            Linear::Dense(_) => "candle dense".to_string(),
        };
        *kernels.entry(kind).or_default() += 1;
    };
    for (i, b) in model.blocks.iter().enumerate() {
        let parts = [
            ("attn_q", &b.attn.q),
            ("attn_k", &b.attn.k),
            ("attn_v", &b.attn.v),
            ("attn_output", &b.attn.o),
            ("ffn_gate", &b.mlp.gate),
            ("ffn_up", &b.mlp.up),
            ("ffn_down", &b.mlp.down),
        ];
        for (part, l) in parts {
            note(format!("blk.{i}.{part}.weight"), l);
        }
    }
    note("output.weight".into(), &model.lm_head);
    json!({
        "selected": selected.name(),
        "kernels": kernels,
        "fallback": fallback,
        "decode": model.decode_path(),
    })
}
