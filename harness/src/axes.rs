//! Matrix axes: the value type and the one table of axis names, kinds and meanings.
//!
//! A backend says which axes it uses (and their defaults) in its capabilities; this table
//! says what each axis means and what values are legal, so suites get the same checks
//! whichever backend runs them.

use serde::{Deserialize, Serialize};
use std::fmt;

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
        help: "\"default\" (trained), \"seeded\" (untrained) or a path to an HF directory or a .gguf file",
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

/// True when `value` is the axis's "do nothing" setting (`quant = "none"`, `sparsity = 0`,
/// the default pruning method). Run ids leave such values out, so adding these axes to a
/// backend kept the ids of suites that do not use them.
pub fn is_neutral(axis: &str, value: &AxisValue) -> bool {
    match axis {
        "quant" => value.as_str() == Some("none"),
        "sparsity" => value.as_f64() == Some(0.0),
        "prune" => value.as_str() == Some(PRUNE_METHODS[0]),
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

impl AxisDef {
    /// Checks one value against the axis kind; the error says what is expected.
    pub fn check(&self, v: &AxisValue) -> Result<(), String> {
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
