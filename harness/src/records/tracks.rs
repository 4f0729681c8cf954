//! One `[[tracks]]` entry of a suite (budgets and an objective); parsing and ranking are in
//! `crate::analysis::tracks`.

use serde::{Deserialize, Serialize};

/// One `[[tracks]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrackConfig {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Conditions a run must meet to enter: `METRIC[:STAT] OP NUMBER[UNIT]`, OP one of
    /// `<=`, `<`, `>=`, `>`; STAT one of value (default), mean, min, p50, p90, p95, p99, max;
    /// byte metrics take kB/MB/GB/KiB/MiB/GiB units.
    #[serde(default)]
    pub budgets: Vec<String>,
    /// `max METRIC[:STAT]`, `min METRIC[:STAT]`, or a metric alone (its own direction).
    pub objective: String,
}
