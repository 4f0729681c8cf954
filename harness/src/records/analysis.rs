//! The suite's `[analysis]` section ([`AnalysisConfig`]) and what it gives each run
//! ([`RunAnalysis`]); checks and reference selection are in `crate::analysis::config`.

use crate::axes::AxisValue;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Default evaluation length in tokens.
pub const DEFAULT_EVAL_TOKENS: usize = 4096;

/// Default evaluation window (tokens per independent sequence), capped by the model context.
pub const DEFAULT_EVAL_WINDOW: usize = 128;

/// `[analysis]` of a suite file (also recorded in every result's `suite.analysis`, so the
/// analysis can be redone from the results alone).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AnalysisConfig {
    /// Axis values selecting the reference variant (fidelity, compression ratio).
    /// Default: `{ quant = "none", sparsity = 0 }` (those of the axes the backend has).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<BTreeMap<String, AxisValue>>,
    /// Axis values selecting the baseline of speed-ups. Default: the reference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BTreeMap<String, AxisValue>>,
    /// Measure perplexity and fidelity after each run's measured window.
    pub quality: bool,
    /// UTF-8 text file for perplexity and fidelity (relative to the current directory).
    /// Default: the synthetic language's held-out split (default model only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eval_text: Option<String>,
    /// Tokens of evaluation text used (the first ones).
    pub eval_tokens: usize,
    /// Tokens per evaluation window (independent sequences); capped by the model context.
    pub eval_window: usize,
    /// Pareto fronts to report; empty = quality vs latency, throughput and size when present.
    pub pareto: Vec<ParetoConfig>,
    /// Dynascore settings; absent = the default set-up
    /// (`crate::analysis::dynascore::default_setup`: Dynaboard's 4:1:1 over the metrics measured).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dynascore: Option<DynascoreConfig>,
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        AnalysisConfig {
            reference: None,
            baseline: None,
            quality: true,
            eval_text: None,
            eval_tokens: DEFAULT_EVAL_TOKENS,
            eval_window: DEFAULT_EVAL_WINDOW,
            pareto: Vec::new(),
            dynascore: None,
        }
    }
}

/// One `[[analysis.pareto]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ParetoConfig {
    /// Metric names, each optionally `name:higher|lower` (default: the metric's own sense).
    pub metrics: Vec<String>,
    /// Hypervolume reference point, one value per metric (2 or 3 metrics). Default: the
    /// worst value of each metric pushed out by 10 % of its range.
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference_point: Option<Vec<f64>>,
}

/// `[analysis.dynascore]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DynascoreConfig {
    /// Performance metric `name[:sense][:weight]` (default weight 4).
    pub perf: String,
    /// Other metrics `name[:sense][:weight[:offset]]` (default weight 1, offset 0).
    #[serde(default)]
    pub metrics: Vec<String>,
}

/// What a run needs to know of the suite's analysis (stored in its [`crate::RunSpec`], not
/// part of its id: measuring quality does not change what the speed metrics measure).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunAnalysis {
    /// Axis values of this run's reference model: the run's own, with the suite's reference
    /// selector applied.
    pub reference: BTreeMap<String, AxisValue>,
    /// This run is the reference variant itself.
    pub is_reference: bool,
    /// Perplexity and fidelity settings; absent = not measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval: Option<EvalSpec>,
}

/// Which text perplexity and fidelity are computed on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EvalSpec {
    /// A UTF-8 file; absent = the synthetic held-out split (default model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    pub tokens: usize,
    pub window: usize,
}
