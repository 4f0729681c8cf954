//! Suite files (`suites/*.toml`): parsing with precise errors and the measurement settings.
//!
//! A suite names a scenario, a backend, a model and a `[matrix]` of axes; `effbench_harness::matrix`
//! expands it into runs (and reads suite files: `matrix::load_suite`). Unknown keys are errors that name the key and the allowed ones.

use crate::axes;
use crate::axes::AxisValue;
use crate::tracks::Condition;
use crate::{AnalysisConfig, MetersConfig, ServingConfig, TrackConfig};
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// What kind of work a suite measures (MLPerf LoadGen vocabulary, design.md §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// In-process generation: single-stream (batch 1) or fixed batch.
    Inference,
    /// Training steps: throughput, time-to-target-loss.
    Training,
    /// Requests against a server at a rate or concurrency.
    Serving,
    /// Encoder forward passes: a batch of sequences in, one pooled embedding per sequence out.
    Embedding,
    /// Encode a corpus, index it, then serve queries against the index (quality and speed).
    Retrieval,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Inference => "inference",
            Scenario::Training => "training",
            Scenario::Serving => "serving",
            Scenario::Embedding => "embedding",
            Scenario::Retrieval => "retrieval",
        }
    }
}

impl std::fmt::Display for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Most measured iterations of a run (every sample is kept: 8 bytes each per metric).
pub const MAX_ITERS: u64 = 10_000_000;
/// Most warm-up iterations.
pub const MAX_WARMUP_ITERS: u64 = 1_000_000;

/// How long and how often to measure (design.md §2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct MeasureConfig {
    /// Unmeasured iterations before the measured window.
    pub warmup_iters: u64,
    /// Keep warming up until this many seconds have passed (after `warmup_iters`).
    pub warmup_s: f64,
    /// Measure at least this many iterations ...
    pub min_iters: u64,
    /// ... and for at least this many seconds (both must hold).
    pub min_duration_s: f64,
    /// Never more than this many iterations ...
    pub max_iters: u64,
    /// ... or seconds (checked between iterations).
    pub max_duration_s: f64,
    /// Adaptive stop: once the minimums hold, stop as soon as the 95 % CI half-width of the
    /// mean of the primary metric is below this fraction of the mean (e.g. 0.02). 0 = off.
    pub target_rel_ci: f64,
    /// Test knob (`run --inject-delay`): sleep this many ms inside every measured iteration,
    /// to check that compare/gate catch a slowdown. Recorded in every result, never hidden.
    pub inject_delay_ms: f64,
    /// Test knob (`run --inject-slowdown`): busy-wait after every measured iteration for this
    /// % of its own time, inside the timed window, so the iteration takes that much longer.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub inject_slowdown_pct: f64,
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

impl Default for MeasureConfig {
    fn default() -> Self {
        MeasureConfig {
            warmup_iters: 1,
            warmup_s: 0.0,
            min_iters: 5,
            min_duration_s: 1.0,
            max_iters: 1000,
            max_duration_s: 30.0,
            target_rel_ci: 0.0,
            inject_delay_ms: 0.0,
            inject_slowdown_pct: 0.0,
        }
    }
}

impl MeasureConfig {
    /// Whether a test knob (injected delay or slowdown) deliberately slowed the iterations.
    pub fn is_injected(&self) -> bool {
        self.inject_delay_ms > 0.0 || self.inject_slowdown_pct > 0.0
    }

    /// These settings without the test knobs (what must match between compared runs).
    pub fn without_test_knobs(&self) -> MeasureConfig {
        MeasureConfig {
            inject_delay_ms: 0.0,
            inject_slowdown_pct: 0.0,
            ..self.clone()
        }
    }

    /// Checks ranges; errors name the `[measure]` field.
    pub fn check(&self) -> std::result::Result<(), String> {
        let non_neg = [
            ("warmup_s", self.warmup_s),
            ("min_duration_s", self.min_duration_s),
            ("max_duration_s", self.max_duration_s),
            ("target_rel_ci", self.target_rel_ci),
            ("inject_delay_ms", self.inject_delay_ms),
            ("inject_slowdown_pct", self.inject_slowdown_pct),
        ];
        for (name, v) in non_neg {
            if !v.is_finite() || v < 0.0 {
                return Err(format!(
                    "[measure] {name} = {v} must be a finite number >= 0"
                ));
            }
        }
        if self.min_iters == 0 {
            return Err("[measure] min_iters must be at least 1".into());
        }
        // Upper bounds: every sample is kept in memory and every duration becomes a timer.
        for (name, v) in [
            ("warmup_s", self.warmup_s),
            ("min_duration_s", self.min_duration_s),
            ("max_duration_s", self.max_duration_s),
        ] {
            crate::limits::check_f64(
                &format!("[measure] {name}"),
                v,
                0.0,
                crate::limits::MAX_SECONDS,
                " s",
            )?;
        }
        for (name, v, max) in [
            ("warmup_iters", self.warmup_iters, MAX_WARMUP_ITERS),
            ("min_iters", self.min_iters, MAX_ITERS),
            ("max_iters", self.max_iters, MAX_ITERS),
        ] {
            crate::limits::check_int(&format!("[measure] {name}"), v.into(), 0, max.into())?;
        }
        if self.max_iters < self.min_iters {
            return Err(format!(
                "[measure] max_iters ({}) is smaller than min_iters ({})",
                self.max_iters, self.min_iters
            ));
        }
        if self.max_duration_s < self.min_duration_s {
            return Err(format!(
                "[measure] max_duration_s ({}) is smaller than min_duration_s ({})",
                self.max_duration_s, self.min_duration_s
            ));
        }
        if self.inject_delay_ms > 60_000.0 {
            return Err(format!(
                "[measure] inject_delay_ms = {} is more than a minute per iteration",
                self.inject_delay_ms
            ));
        }
        if self.inject_slowdown_pct > 1000.0 {
            return Err(format!(
                "[measure] inject_slowdown_pct = {} is more than 1000 %",
                self.inject_slowdown_pct
            ));
        }
        if self.target_rel_ci >= 1.0 {
            return Err(format!(
                "[measure] target_rel_ci = {} is a fraction (0.02 = 2 %), not a percentage",
                self.target_rel_ci
            ));
        }
        Ok(())
    }
}

/// The `[matrix]` table: axes (each a value or a list of values) plus `include`/`exclude`
/// rules as in GitHub Actions matrices (exclude is applied first, then include).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MatrixConfig {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<BTreeMap<String, AxisValue>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<BTreeMap<String, AxisValue>>,
    #[serde(flatten)]
    pub axes: BTreeMap<String, OneOrMany>,
}

/// An axis written as a single value or as a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(AxisValue),
    Many(Vec<AxisValue>),
}

impl OneOrMany {
    pub fn values(&self) -> Vec<AxisValue> {
        match self {
            OneOrMany::One(v) => vec![v.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// A parsed suite file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Suite {
    /// Short identifier, used for the results directory.
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub scenario: Scenario,
    /// Backend name from the registry (`effbench list` shows them). May be omitted when
    /// [matrix] has a `backend` axis (one suite comparing backends).
    #[serde(default)]
    pub backend: String,
    /// `"default"` (the embedded model) or a path to an HF directory or a `.gguf` file,
    /// relative to the current directory. A `model` axis in `[matrix]` overrides it.
    #[serde(default)]
    pub model: Option<String>,
    /// Base seed for prompts, bootstrap resampling and anything random.
    #[serde(default = "default_seed")]
    pub seed: u64,
    #[serde(default)]
    pub matrix: MatrixConfig,
    #[serde(default)]
    pub measure: MeasureConfig,
    /// `[meters]`: energy, power and memory meters, carbon and cost settings.
    #[serde(default)]
    pub meters: MetersConfig,
    /// `[serving]`: the server and workload of a `serving` suite.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serving: Option<ServingConfig>,
    /// `[retrieval]`: the dataset and index settings of a `retrieval` suite.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retrieval: Option<crate::retrieval::RetrievalConfig>,
    /// `[[tracks]]`: budget tracks (budgets on metrics and an objective) whose rankings
    /// `report` and the site show (`analysis::tracks`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tracks: Vec<TrackConfig>,
    /// `[sweep]`: run the matrix in increasing order of one axis and end a sweep early when
    /// a run breaks a time or memory budget (`effbench_harness::sweep`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<SweepConfig>,
    /// Reference/baseline variants, quality evaluation, Pareto fronts and Dynascore
    /// (`[analysis]`, see [`crate::AnalysisConfig`]). Absent = no quality metrics, no analysis.json.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<AnalysisConfig>,
    /// Backend-specific settings (e.g. a worker command line), passed through unchanged.
    #[serde(default, skip_serializing_if = "toml::Table::is_empty")]
    pub options: toml::Table,
    /// Where the suite was read from (not part of the file).
    #[serde(skip)]
    pub path: Option<PathBuf>,
}

fn default_seed() -> u64 {
    42
}

impl Suite {
    /// Parses suite text; `origin` names the file in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Suite> {
        let suite: Suite = toml::from_str(text).map_err(|e| {
            let msg = e.message().trim().replace('\n', " ");
            match e.span() {
                Some(span) => {
                    let (line, col) = line_col(text, span.start);
                    anyhow::anyhow!("{origin}:{line}:{col}: {msg}")
                }
                None => anyhow::anyhow!("{origin}: {msg}"),
            }
        })?;
        if suite.name.trim().is_empty() {
            bail!("{origin}: `name` must not be empty");
        }
        crate::names::check("name =", &suite.name).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
        suite
            .measure
            .check()
            .map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
        suite
            .meters
            .check(&|f| format!("[meters] {f} ="))
            .map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
        match (&suite.serving, suite.scenario) {
            (Some(serving), Scenario::Serving) => {
                serving
                    .check()
                    .map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
                if serving.search.is_some() && suite.matrix.axes.contains_key("request_rate") {
                    bail!(
                        "{origin}: [serving.search] chooses request_rate itself; remove request_rate from [matrix]"
                    );
                }
            }
            (Some(_), other) => {
                bail!("{origin}: [serving] applies to scenario = \"serving\", not \"{other}\"")
            }
            (None, Scenario::Serving) => bail!(
                "{origin}: scenario = \"serving\" needs a [serving] table with at least base_url"
            ),
            (None, _) => {}
        }
        if let Some(a) = &suite.analysis {
            a.check().map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
        }
        match (&suite.retrieval, suite.scenario) {
            (Some(r), Scenario::Retrieval) => {
                r.check().map_err(|e| anyhow::anyhow!("{origin}: {e}"))?
            }
            (Some(_), other) => {
                bail!("{origin}: [retrieval] applies to scenario = \"retrieval\", not \"{other}\"")
            }
            (None, Scenario::Retrieval) => bail!(
                "{origin}: scenario = \"retrieval\" needs a [retrieval] table with at least \
                 dataset = \"DIR\" (BEIR layout)"
            ),
            (None, _) => {}
        }
        for (i, t) in suite.tracks.iter().enumerate() {
            t.check()
                .map_err(|e| anyhow::anyhow!("{origin}: [[tracks]] #{}: {e}", i + 1))?;
        }
        if let Some(s) = &suite.sweep {
            s.check().map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
        }
        Ok(suite)
    }

    /// File name for messages.
    pub fn origin(&self) -> String {
        self.path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| format!("suite '{}'", self.name))
    }
}

/// 1-based line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    // Never inside a character, whatever the offset.
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.len(), |i| before.len() - i - 1)
        + 1;
    (line, col)
}

/// `[sweep]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepConfig {
    /// The numeric axis swept in increasing order.
    pub axis: String,
    /// Budgets every run must meet for the sweep to go on (`METRIC[:STAT] OP NUMBER`, as
    /// in `[[tracks]]`). A failed run always ends its sweep.
    #[serde(default)]
    pub budgets: Vec<String>,
}

impl SweepConfig {
    /// Checks the axis and every budget.
    pub fn check(&self) -> Result<(), String> {
        if axes::axis(&self.axis).is_none() {
            return Err(format!(
                "[sweep] axis '{}' is not an axis; known axes: {}",
                self.axis,
                axes::known_axes()
            ));
        }
        for b in &self.budgets {
            Condition::parse(b).map_err(|e| format!("[sweep] {e}"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = r#"
name = "t"
scenario = "inference"
backend = "candle"
model = "default"
[matrix]
dtype = ["f32", "bf16"]
batch = 1
exclude = [{ dtype = "bf16" }]
[measure]
min_iters = 3
"#;

    #[test]
    fn parses_a_suite() {
        let s = Suite::parse(OK, "t.toml").unwrap();
        assert_eq!(s.scenario, Scenario::Inference);
        assert_eq!(s.matrix.axes.len(), 2);
        assert_eq!(s.matrix.exclude.len(), 1);
        assert_eq!(s.measure.min_iters, 3);
        assert_eq!(s.measure.warmup_iters, 1, "defaults fill the rest");
        assert_eq!(s.seed, 42);
    }

    #[test]
    fn malformed_toml_has_line_and_column() {
        let err = Suite::parse("name = \"t\"\nscenario = = 3\n", "bad.toml").unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("bad.toml:2:"), "{msg}");
        assert!(!msg.contains('\n'), "one line: {msg}");
    }

    #[test]
    fn unknown_key_is_named_with_the_allowed_ones() {
        let text = OK.replace("seed", "sed").replace("model = ", "modle = ");
        let msg = Suite::parse(&text, "u.toml").unwrap_err().to_string();
        assert!(msg.contains("unknown field `modle`"), "{msg}");
        assert!(
            msg.contains("`model`") && msg.contains("`backend`"),
            "{msg}"
        );
        assert!(msg.starts_with("u.toml:5:1:"), "{msg}");
    }

    #[test]
    fn unknown_measure_key_and_bad_ranges() {
        let text = OK.replace("min_iters = 3", "min_iter = 3");
        let msg = Suite::parse(&text, "m.toml").unwrap_err().to_string();
        assert!(msg.contains("unknown field `min_iter`"), "{msg}");
        let text = OK.replace("min_iters = 3", "min_iters = 3\nmax_iters = 2");
        let msg = Suite::parse(&text, "m.toml").unwrap_err().to_string();
        assert!(
            msg.contains("max_iters (2) is smaller than min_iters (3)"),
            "{msg}"
        );
    }

    #[test]
    fn meters_section_is_checked() {
        let text = format!("{OK}[meters]\npue = 1.2\ngpus = \"all\"\nprice_per_hour = 2.5\n");
        let s = Suite::parse(&text, "m.toml").unwrap();
        assert_eq!(s.meters.pue, Some(1.2));
        assert_eq!(s.meters.price_per_hour, Some(2.5));
        let msg = Suite::parse(&format!("{OK}[meters]\npue = 0.9\n"), "m.toml")
            .unwrap_err()
            .to_string();
        assert_eq!(
            msg,
            "m.toml: [meters] pue = 0.9 must be >= 1 (facility energy / IT energy)"
        );
        let msg = Suite::parse(&format!("{OK}[meters]\ngrid = 3\n"), "m.toml")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("unknown field `grid`") && msg.contains("grid_intensity"),
            "{msg}"
        );
    }

    #[test]
    fn serving_table_is_checked() {
        let serving = r#"
name = "s"
scenario = "serving"
backend = "openai-http"
model = "default"
[matrix]
request_rate = [1, "inf"]
[serving]
base_url = "http://127.0.0.1:8000"
num_prompts = 10
[serving.slo]
ttft_ms = 200
"#;
        let s = Suite::parse(serving, "s.toml").unwrap();
        let c = s.serving.unwrap();
        assert_eq!((c.num_prompts, c.slo.ttft_ms), (10, Some(200.0)));
        let msg = Suite::parse(&serving.replace("num_prompts", "prompts"), "s.toml")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("unknown field `prompts`") && msg.contains("num_prompts"),
            "{msg}"
        );
        let msg = Suite::parse(&serving.replace("ttft_ms = 200", "ttft_ms = -1"), "s.toml")
            .unwrap_err()
            .to_string();
        assert_eq!(
            msg,
            "s.toml: [serving.slo] ttft_ms = -1 must be a number > 0"
        );
        let msg = Suite::parse(
            &format!("{serving}[serving.search]\nlow = 1\nhigh = 8\n"),
            "s.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(msg.contains("remove request_rate from [matrix]"), "{msg}");
        let msg = Suite::parse(
            &format!("{OK}[serving]\nbase_url = \"http://x\"\n"),
            "s.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(msg.contains("applies to scenario = \"serving\""), "{msg}");
        let msg = Suite::parse(&OK.replace("\"inference\"", "\"serving\""), "s.toml")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("needs a [serving] table"), "{msg}");
    }

    #[test]
    fn wrong_scenario_is_explained() {
        let text = OK.replace("\"inference\"", "\"infer\"");
        let msg = Suite::parse(&text, "s.toml").unwrap_err().to_string();
        assert!(msg.contains("infer") && msg.contains("inference"), "{msg}");
    }

    #[test]
    fn retrieval_tracks_and_sweep_tables_are_checked() {
        let r = r#"
name = "r"
scenario = "retrieval"
backend = "candle-encoder"
[retrieval]
dataset = "d"
[[tracks]]
name = "small"
budgets = ["index_bytes <= 20kB"]
objective = "max ndcg_at_10"
[sweep]
axis = "index"
"#;
        let s = Suite::parse(r, "r.toml").unwrap();
        assert_eq!(s.retrieval.unwrap().top_k, 10);
        assert_eq!(s.tracks[0].name, "small");
        let msg = Suite::parse(&r.replace("[retrieval]\ndataset = \"d\"\n", ""), "r.toml")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("needs a [retrieval] table"), "{msg}");
        let msg = Suite::parse(&r.replace("\"retrieval\"", "\"embedding\""), "r.toml")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("[retrieval] applies to scenario = \"retrieval\""),
            "{msg}"
        );
        let msg = Suite::parse(&r.replace("20kB", "lots"), "r.toml")
            .unwrap_err()
            .to_string();
        assert!(
            msg.starts_with("r.toml: [[tracks]] #1: budget 'index_bytes <= lots'"),
            "{msg}"
        );
        let msg = Suite::parse(
            &r.replace("axis = \"index\"", "axis = \"length\""),
            "r.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(msg.contains("[sweep] axis 'length'"), "{msg}");
    }

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
    }
}
