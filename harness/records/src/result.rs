//! What a run leaves behind: [`RunResult`] (schema v1, one JSON file per run) and the
//! invocation's [`Manifest`]. Writing them atomically
//! and finding and reading them back is `effbench_harness::result` and `::loader`'s job.

use crate::env::{Environment, SchedulerInfo};
use crate::metric::{Metric, MetricId};
use crate::tracks::{show, Condition, Measure, Stat};
use crate::warnings::Warning;
use crate::{AnalysisConfig, ModelInfo, RunSpec};
use serde::{Deserialize, Serialize};

pub const SCHEMA_VERSION: u32 = 1;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    Ok,
    Failed,
    Interrupted,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Status {
    pub state: RunState,
    /// Why it failed or was interrupted (one line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The suite a run came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SuiteInfo {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// SHA-256 of the suite file's bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Axes whose values vary within the suite (what distinguishes its runs).
    #[serde(default)]
    pub varying_axes: Vec<String>,
    /// The suite's `[analysis]` settings: the analysis stage redoes `analysis.json` from the
    /// results alone (after a merge, in reports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<AnalysisConfig>,
}

/// A time series recorded during a run (loss curve, RSS, power ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Series {
    pub name: String,
    pub x_unit: String,
    pub y_unit: String,
    pub source: String,
    /// Sampling period when sampled on a timer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_ms: Option<f64>,
    pub points: Vec<[f64; 2]>,
}

/// How statistics were computed, so they can be recomputed from the samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatsMethod {
    pub percentile: String,
    pub stdev: String,
    pub ci: String,
    pub bootstrap_seed: u64,
}

impl StatsMethod {
    pub fn current(seed: u64) -> StatsMethod {
        StatsMethod {
            percentile: "linear interpolation between closest ranks (Hyndman-Fan type 7)".into(),
            stdev: "sample (n-1)".into(),
            ci: "percentile bootstrap, 95 %, per-metric seed = bootstrap_seed xor FNV-1a(name)"
                .into(),
            bootstrap_seed: seed,
        }
    }
}

/// Everything about one run. Self-describing: config, environment and raw samples included.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunResult {
    pub schema_version: u32,
    pub id: String,
    pub suite: SuiteInfo,
    /// The fully resolved run configuration.
    pub config: RunSpec,
    pub status: Status,
    /// RFC 3339 UTC.
    pub started_at: String,
    pub finished_at: String,
    /// Measured iterations and the measured window's wall time.
    pub iterations: u64,
    pub measured_s: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelInfo>,
    pub metrics: Vec<Metric>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub series: Vec<Series>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Warning>,
    pub stats_method: StatsMethod,
    pub env: Environment,
    /// Notes from the backend and the harness (fallbacks used, worker stderr tail ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log: Vec<String>,
}

impl RunResult {
    pub fn metric(&self, id: MetricId) -> Option<&Metric> {
        self.metrics.iter().find(|m| m.name == id)
    }
    /// `axis=value` label over the suite's varying axes.
    pub fn label(&self) -> String {
        let l = self.config.label(&self.suite.varying_axes);
        if l.is_empty() {
            self.id.clone()
        } else {
            l
        }
    }
    /// The number a budget or objective reads from this run (`METRIC[:STAT]`), or why there is
    /// none (no such metric, an estimate, no samples).
    pub fn measure_value(&self, m: &Measure) -> Result<f64, String> {
        let v = self
            .metric(m.metric)
            .ok_or_else(|| format!("no {} value", m.metric))?;
        if v.is_estimate() {
            return Err(format!(
                "{} is an estimate ({}), not a measurement",
                m.metric, v.source
            ));
        }
        if m.stat == Stat::Value {
            return Ok(v.value);
        }
        let s = v
            .stats
            .as_ref()
            .ok_or_else(|| format!("{} has no samples for {}", m.metric, m.stat.name()))?;
        Ok(match m.stat {
            Stat::Value => v.value,
            Stat::Mean => s.mean,
            Stat::Min => s.min,
            Stat::P50 => s.p50,
            Stat::P90 => s.p90,
            Stat::P95 => s.p95,
            Stat::P99 => s.p99,
            Stat::Max => s.max,
        })
    }
    /// `None` when this run meets the budget `c`, else the reason it does not.
    pub fn breaks(&self, c: &Condition) -> Option<String> {
        let v = match self.measure_value(&c.measure) {
            Ok(v) => v,
            Err(why) => return Some(why),
        };
        let ok = match c.op {
            "<=" => v <= c.bound,
            "<" => v < c.bound,
            ">=" => v >= c.bound,
            _ => v > c.bound,
        };
        let unit = c.measure.metric.unit();
        (!ok).then(|| {
            format!(
                "{} {} {}, budget {} {}",
                c.measure,
                show(v, unit),
                unit,
                c.op,
                show(c.bound, unit)
            )
        })
    }
}

/// One entry of a manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ManifestEntry {
    pub id: String,
    pub label: String,
    pub state: RunState,
    pub file: String,
}

/// What one `effbench run` invocation produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub schema_version: u32,
    pub suite: SuiteInfo,
    pub effbench_version: String,
    pub command: Vec<String>,
    pub started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// Run ids planned by this invocation, in order.
    pub planned: Vec<String>,
    pub runs: Vec<ManifestEntry>,
    /// Set by `run --shard I/N`: which shard this is and the whole suite's plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardInfo>,
    /// The batch scheduler, job and node this invocation ran under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<SchedulerInfo>,
    /// Set by `merge`: the directories the runs came from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_from: Vec<MergedSource>,
    /// Planned runs that were not run because their `[sweep]` ended earlier, with why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<SkippedRun>,
}

/// A planned run left out on purpose (a scaling sweep ended before it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SkippedRun {
    pub id: String,
    pub label: String,
    pub reason: String,
}

/// Recorded in a shard's manifest: which shard, and the whole suite's plan, so `merge` and
/// `status` know every run that should exist even when a shard never started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShardInfo {
    pub index: usize,
    pub count: usize,
    pub cost_model: String,
    /// Every run of the (filtered) suite, in suite order, with its shard.
    pub plan: Vec<PlannedRun>,
}

/// One input of a merge, recorded in the merged manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MergedSource {
    pub dir: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<usize>,
    /// Result files found there.
    pub runs: usize,
}

/// One run of a sharded plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlannedRun {
    pub id: String,
    /// `axis=value` over the suite's varying axes.
    pub label: String,
    pub shard: usize,
    /// Estimated seconds (cost model `effbench_harness::cluster::shard::COST_MODEL`).
    pub estimated_s: f64,
}
