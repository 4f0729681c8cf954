//! Matrix axes: the value type and the one table of axis names, kinds and meanings.
//!
//! A backend says which axes it uses (and their defaults) in its capabilities; this table
//! says what each axis means and what values are legal, so suites get the same checks
//! whichever backend runs them.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Slowest request rate accepted (one request every ~3 hours), req/s: below it the gaps
/// between arrivals stop being durations a run can wait for.
pub const MIN_REQUEST_RATE: f64 = 1e-4;
/// Fastest finite request rate accepted, req/s (`inf` sends everything at once).
pub const MAX_REQUEST_RATE: f64 = 1e6;

/// One value of an axis: TOML string, integer, float or boolean.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum AxisValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

impl AxisValue {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            AxisValue::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            AxisValue::Int(i) => Some(*i),
            _ => None,
        }
    }
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            AxisValue::Int(i) => Some(*i as f64),
            AxisValue::Float(f) => Some(*f),
            _ => None,
        }
    }
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            AxisValue::Bool(b) => Some(*b),
            _ => None,
        }
    }
    /// Loose equality used by include/exclude/filter: 1 matches 1.0, "1" matches 1.
    pub fn matches(&self, other: &AxisValue) -> bool {
        match (self.as_f64(), other.as_f64()) {
            (Some(a), Some(b)) => a == b,
            _ => self.to_string() == other.to_string(),
        }
    }
    /// Parses a CLI value (`--filter batch=4`): int, then float, then bool, else string.
    pub fn parse_cli(s: &str) -> AxisValue {
        if let Ok(i) = s.parse::<i64>() {
            AxisValue::Int(i)
        } else if let Ok(f) = s.parse::<f64>() {
            AxisValue::Float(f)
        } else if let Ok(b) = s.parse::<bool>() {
            AxisValue::Bool(b)
        } else {
            AxisValue::Str(s.to_string())
        }
    }
}

impl fmt::Display for AxisValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AxisValue::Bool(b) => write!(f, "{b}"),
            AxisValue::Int(i) => write!(f, "{i}"),
            AxisValue::Float(x) => write!(f, "{x}"),
            AxisValue::Str(s) => f.write_str(s),
        }
    }
}

impl From<&str> for AxisValue {
    fn from(s: &str) -> Self {
        AxisValue::Str(s.to_string())
    }
}
impl From<i64> for AxisValue {
    fn from(i: i64) -> Self {
        AxisValue::Int(i)
    }
}
impl From<f64> for AxisValue {
    fn from(x: f64) -> Self {
        AxisValue::Float(x)
    }
}

/// What values an axis accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AxisKind {
    /// Integer >= 1.
    PositiveInt,
    /// Integer >= 0.
    NonNegInt,
    /// Number > 0.
    PositiveNumber,
    /// Number in [0, 1].
    Fraction,
    /// Any string (the backend checks the meaning).
    Text,
    /// One of a fixed set of strings.
    OneOf(&'static [&'static str]),
    /// Number > 0, or the string "inf".
    RateOrInf,
}

/// An axis known to effbench.
#[derive(Debug, Clone, Copy)]
pub struct AxisDef {
    pub name: &'static str,
    pub kind: AxisKind,
    pub help: &'static str,
}

/// Data types a backend may compute in (names as in PyTorch/candle).
pub const DTYPES: &[&str] = &["f32", "f16", "bf16"];

/// Weight quantizations of the `quant` axis (GGUF/ggml type names; `none` = weights as
/// stored). `q4k`, `q5k`, `q6k`, `q2k`, `q3k` are the k-quants (256-value super-blocks).
pub const QUANT_TYPES: &[&str] = &[
    "none", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q2k", "q3k", "q4k", "q5k", "q6k",
];

/// Attention implementations of the `attn` axis (the PyTorch worker's `attn_implementation`;
/// `auto` = the worker's own setting, `[options.worker] attn_implementation`, else sdpa).
pub const ATTN_IMPLEMENTATIONS: &[&str] = &["auto", "eager", "sdpa", "flash_attention_2"];

/// Pruning methods of the `prune` axis.
pub const PRUNE_METHODS: &[&str] = &["magnitude-layer", "magnitude-global", "2:4"];

/// Index types of the `index` axis (retrieval): exact f32 dot products, int8 scalar
/// quantization (per-dimension ranges from the corpus), binary (sign bits, Hamming distance).
pub const INDEX_TYPES: &[&str] = &["exact", "int8", "binary"];

/// Every axis a suite may use. Backends pick the ones they understand.
pub const AXES: &[AxisDef] = &[
    AxisDef {
        name: "backend",
        kind: AxisKind::Text,
        help: "backend name (`effbench list backends`); overrides the suite's `backend`, so one suite can compare backends",
    },
    AxisDef {
        name: "model",
        kind: AxisKind::Text,
        help: "\"default\" (trained), \"seeded\" (untrained), \"preset:<name>\" (a published architecture with seeded random weights, e.g. preset:llama-3.2-1b, shrunk with ?layers=N) or a path to an HF directory or a .gguf file",
    },
    AxisDef {
        name: "device",
        kind: AxisKind::Text,
        help: "\"cpu\" or \"cuda:N\"",
    },
    AxisDef {
        name: "dtype",
        kind: AxisKind::OneOf(DTYPES),
        help: "compute/weight dtype for unquantized weights",
    },
    AxisDef {
        name: "attn",
        kind: AxisKind::OneOf(ATTN_IMPLEMENTATIONS),
        help: "process (PyTorch worker): attention implementation, eager or sdpa (auto = the worker's setting); recorded as attn_implementation",
    },
    AxisDef {
        name: "threads",
        kind: AxisKind::NonNegInt,
        help: "CPU threads for compute (0 = all cores)",
    },
    AxisDef {
        name: "batch",
        kind: AxisKind::PositiveInt,
        help: "sequences per request (fixed-batch / multi-stream)",
    },
    AxisDef {
        name: "prompt_len",
        kind: AxisKind::PositiveInt,
        help: "prompt tokens per sequence",
    },
    AxisDef {
        name: "gen_len",
        kind: AxisKind::PositiveInt,
        help: "output tokens generated per sequence (greedy, no early stop); serving: max_tokens",
    },
    AxisDef {
        name: "request_rate",
        kind: AxisKind::RateOrInf,
        help: "serving: requests per second of the arrival schedule, or \"inf\" (all at once)",
    },
    AxisDef {
        name: "max_concurrency",
        kind: AxisKind::NonNegInt,
        help: "serving: most requests in flight at once (0 = unlimited)",
    },
    AxisDef {
        name: "burstiness",
        kind: AxisKind::PositiveNumber,
        help: "serving: Gamma shape of inter-arrival times (1 = Poisson, < 1 burstier)",
    },
    // --- training ---
    AxisDef {
        name: "seq_len",
        kind: AxisKind::PositiveInt,
        help: "training and embedding: tokens per sequence (at most the model context)",
    },
    AxisDef {
        name: "width",
        kind: AxisKind::PositiveInt,
        help: "training: model width (hidden size, a multiple of 32; heads of 32)",
    },
    AxisDef {
        name: "depth",
        kind: AxisKind::PositiveInt,
        help: "training: model depth (decoder blocks)",
    },
    AxisDef {
        name: "steps",
        kind: AxisKind::PositiveInt,
        help: "training: optimizer steps in all (warm-up iterations included)",
    },
    AxisDef {
        name: "lr",
        kind: AxisKind::PositiveNumber,
        help: "training: peak learning rate (AdamW), reached after warmup_steps",
    },
    AxisDef {
        name: "warmup_steps",
        kind: AxisKind::NonNegInt,
        help: "training: steps of linear learning-rate warm-up before the cosine decay",
    },
    AxisDef {
        name: "target_loss",
        kind: AxisKind::PositiveNumber,
        help: "training: held-out loss (nats/token) whose first crossing gives time-to-target-loss",
    },
    AxisDef {
        name: "eval_every",
        kind: AxisKind::PositiveInt,
        help: "training: evaluate the held-out loss every this many steps (and at the end)",
    },
    AxisDef {
        name: "quant",
        kind: AxisKind::OneOf(QUANT_TYPES),
        help: "quantize an HF checkpoint to this GGUF type (cached under results/models/variants/); none = as stored",
    },
    AxisDef {
        name: "sparsity",
        kind: AxisKind::Fraction,
        help: "fraction of the linear-layer weights pruned to zero before quantization (0 = none)",
    },
    AxisDef {
        name: "prune",
        kind: AxisKind::OneOf(PRUNE_METHODS),
        help: "pruning method: magnitude-layer (smallest |w| per matrix), magnitude-global (one threshold over all matrices), 2:4 (2 of every 4 consecutive weights; sparsity 0.5)",
    },
    AxisDef {
        name: "index",
        kind: AxisKind::OneOf(INDEX_TYPES),
        help: "retrieval: how corpus embeddings are indexed and searched: exact (f32), int8 (scalar-quantized) or binary (sign bits, Hamming distance)",
    },
];

/// The training backend's `model` default: the `width` x `depth` llama of the default family.
pub const CUSTOM_MODEL: &str = "custom";

/// True when `value` is the axis's "do nothing" setting (`quant = "none"`, `sparsity = 0`,
/// the default pruning method, `attn = "auto"`, the training backend's `model = "custom"`).
/// Run ids leave such values out, so adding these axes to a backend kept the ids of suites
/// that do not use them.
pub fn is_neutral(axis: &str, value: &AxisValue) -> bool {
    match axis {
        "quant" => value.as_str() == Some("none"),
        "sparsity" => value.as_f64() == Some(0.0),
        "prune" => value.as_str() == Some(PRUNE_METHODS[0]),
        "attn" => value.as_str() == Some("auto"),
        // The training backend's own width x depth model (the only backend with this default).
        "model" => value.as_str() == Some(CUSTOM_MODEL),
        _ => false,
    }
}

/// Looks up an axis by name.
pub fn axis(name: &str) -> Option<&'static AxisDef> {
    AXES.iter().find(|a| a.name == name)
}

/// Names of all axes, for error messages.
pub fn known_axes() -> String {
    AXES.iter().map(|a| a.name).collect::<Vec<_>>().join(", ")
}

/// Longest text value of an axis (a model path, a device), bytes.
pub const MAX_TEXT_BYTES: usize = 4096;

/// The allowed range `(min, max)` of a numeric axis: the kind's lower bound, and an upper
/// bound past which a value is a typo or cannot run on any machine (docs/reliability.md).
pub fn range(name: &str, kind: AxisKind) -> (f64, f64) {
    let min = match kind {
        AxisKind::PositiveInt => 1.0,
        AxisKind::NonNegInt | AxisKind::Fraction => 0.0,
        _ => 0.0,
    };
    let (min, max) = match name {
        "batch" => (min, 65_536.0),
        "prompt_len" | "gen_len" | "seq_len" => (min, (1u64 << 20) as f64),
        "threads" | "depth" => (min, 4096.0),
        "width" => (min, 65_536.0),
        "max_concurrency" => (min, 1_000_000.0),
        "lr" => (min, 100.0),
        "target_loss" => (min, 10_000.0),
        "burstiness" => (1e-3, 1e3),
        "request_rate" => (MIN_REQUEST_RATE, MAX_REQUEST_RATE),
        _ => (min, 1e9),
    };
    match kind {
        AxisKind::Fraction => (0.0, 1.0),
        _ => (min, max),
    }
}

impl AxisDef {
    /// Checks one value against the axis kind and [`range`]; the error says what is expected.
    pub fn check(&self, v: &AxisValue) -> Result<(), String> {
        self.check_kind(v)?;
        if let Some(s) = v.as_str() {
            if s.len() > MAX_TEXT_BYTES {
                return Err(format!(
                    "axis '{}' = {}: longer than {MAX_TEXT_BYTES} bytes",
                    self.name,
                    crate::escape::quoted(s)
                ));
            }
        }
        if let Some(x) = v.as_f64() {
            let (lo, hi) = range(self.name, self.kind);
            let unit = if self.name == "request_rate" {
                " req/s"
            } else {
                ""
            };
            crate::limits::check_f64(&format!("axis '{}'", self.name), x, lo, hi, unit)?;
        }
        Ok(())
    }

    fn check_kind(&self, v: &AxisValue) -> Result<(), String> {
        let bad = |want: &str| Err(format!("axis '{}' = {v}: expected {want}", self.name));
        match self.kind {
            AxisKind::PositiveInt => match v.as_i64() {
                Some(i) if i >= 1 => Ok(()),
                _ => bad("an integer >= 1"),
            },
            AxisKind::NonNegInt => match v.as_i64() {
                Some(i) if i >= 0 => Ok(()),
                _ => bad("an integer >= 0"),
            },
            AxisKind::PositiveNumber => match v.as_f64() {
                Some(x) if x > 0.0 && x.is_finite() => Ok(()),
                _ => bad("a number > 0"),
            },
            AxisKind::Fraction => match v.as_f64() {
                Some(x) if (0.0..=1.0).contains(&x) => Ok(()),
                _ => bad("a number between 0 and 1"),
            },
            AxisKind::Text => match v.as_str() {
                Some(_) => Ok(()),
                None => bad("a string"),
            },
            AxisKind::OneOf(choices) => match v.as_str() {
                Some(s) if choices.contains(&s) => Ok(()),
                _ => bad(&format!("one of {}", choices.join(", "))),
            },
            AxisKind::RateOrInf => match (v.as_f64(), v.as_str()) {
                (Some(x), _) if x > 0.0 && x.is_finite() => Ok(()),
                (_, Some("inf")) => Ok(()),
                (Some(x), _) if x == f64::INFINITY => bad("\"inf\" as a quoted string"),
                _ => bad("a number > 0 or \"inf\""),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_names_are_unique() {
        let mut names: Vec<_> = AXES.iter().map(|a| a.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), AXES.len());
    }

    #[test]
    fn kinds_are_checked() {
        let batch = axis("batch").unwrap();
        assert!(batch.check(&AxisValue::Int(4)).is_ok());
        assert!(batch
            .check(&AxisValue::Int(0))
            .unwrap_err()
            .contains(">= 1"));
        assert!(batch.check(&"four".into()).is_err());
        let dtype = axis("dtype").unwrap();
        assert!(dtype.check(&"bf16".into()).is_ok());
        assert!(dtype
            .check(&"fp8".into())
            .unwrap_err()
            .contains("f32, f16, bf16"));
    }

    #[test]
    fn numbers_have_an_upper_bound() {
        let batch = axis("batch").unwrap();
        assert_eq!(
            batch.check(&AxisValue::Int(1_000_000_000)).unwrap_err(),
            "axis 'batch' = 1000000000 is out of range: allowed 1 to 65536"
        );
        let rate = axis("request_rate").unwrap();
        assert!(rate
            .check(&AxisValue::Float(1e-30))
            .unwrap_err()
            .contains("allowed 0.0001 to 1000000 req/s"));
        assert!(rate.check(&AxisValue::Float(1e300)).is_err());
        let model = axis("model").unwrap();
        assert!(model.check(&"m".repeat(5000).as_str().into()).is_err());
        for a in AXES {
            let (lo, hi) = range(a.name, a.kind);
            assert!(lo <= hi && hi.is_finite(), "{}", a.name);
        }
    }

    #[test]
    fn request_rate_is_a_number_or_inf() {
        let rate = axis("request_rate").unwrap();
        assert!(rate.check(&AxisValue::Float(2.5)).is_ok());
        assert!(rate.check(&"inf".into()).is_ok());
        assert!(rate
            .check(&AxisValue::Int(0))
            .unwrap_err()
            .contains("\"inf\""));
        assert!(rate.check(&"fast".into()).is_err());
    }

    #[test]
    fn loose_matching_and_cli_parsing() {
        assert!(AxisValue::Int(1).matches(&AxisValue::Float(1.0)));
        assert!(AxisValue::parse_cli("4").matches(&AxisValue::Int(4)));
        assert!(AxisValue::parse_cli("bf16").matches(&"bf16".into()));
        assert!(!AxisValue::parse_cli("f16").matches(&"bf16".into()));
    }
}
