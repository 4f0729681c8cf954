//! One `[[tracks]]` entry of a suite (budgets and an objective) and the parsed budget
//! conditions and objective (`METRIC[:STAT] OP NUMBER[UNIT]`, also used by `[sweep]`).
//! Ranking results by tracks is `effbench_harness::analysis::tracks`.

use crate::metric::{Better, MetricId};
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
/// Which number of a metric a condition reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stat {
    Value,
    Mean,
    Min,
    P50,
    P90,
    P95,
    P99,
    Max,
}

impl Stat {
    const NAMES: [(&'static str, Stat); 8] = [
        ("value", Stat::Value),
        ("mean", Stat::Mean),
        ("min", Stat::Min),
        ("p50", Stat::P50),
        ("p90", Stat::P90),
        ("p95", Stat::P95),
        ("p99", Stat::P99),
        ("max", Stat::Max),
    ];
    fn parse(s: &str) -> Result<Stat, String> {
        Stat::NAMES
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, st)| *st)
            .ok_or_else(|| {
                format!("unknown statistic '{s}' (value, mean, min, p50, p90, p95, p99, max)")
            })
    }
    pub fn name(self) -> &'static str {
        Stat::NAMES
            .iter()
            .find(|(_, s)| *s == self)
            .map_or("value", |(n, _)| n)
    }
}

/// A metric and statistic, e.g. `query_latency:p99`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measure {
    pub metric: MetricId,
    pub stat: Stat,
}

impl Measure {
    pub fn parse(s: &str) -> Result<Measure, String> {
        let (m, st) = s.trim().split_once(':').unwrap_or((s.trim(), "value"));
        Ok(Measure {
            metric: MetricId::parse(m.trim())?,
            stat: Stat::parse(st.trim())?,
        })
    }
}

impl std::fmt::Display for Measure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.stat {
            Stat::Value => write!(f, "{}", self.metric),
            s => write!(f, "{}:{}", self.metric, s.name()),
        }
    }
}

/// One budget: `measure OP bound`.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub measure: Measure,
    /// `<=`, `<`, `>=`, `>`.
    pub op: &'static str,
    pub bound: f64,
}

impl Condition {
    /// Parses `METRIC[:STAT] OP NUMBER[UNIT]`.
    pub fn parse(s: &str) -> Result<Condition, String> {
        let ops = ["<=", ">=", "<", ">"];
        let (pos, op) = ops
            .iter()
            .filter_map(|op| s.find(op).map(|p| (p, *op)))
            .min_by_key(|(p, op)| (*p, std::cmp::Reverse(op.len())))
            .ok_or_else(|| {
                format!("budget '{s}': expected METRIC OP NUMBER, e.g. \"model_bytes <= 500MB\"")
            })?;
        let measure = Measure::parse(&s[..pos]).map_err(|e| format!("budget '{s}': {e}"))?;
        let rhs = s[pos + op.len()..].trim();
        let bound = match rhs.parse::<f64>() {
            Ok(v) => v,
            Err(_) if measure.metric.unit() == "bytes" => {
                crate::retrieval::parse_bytes(rhs).map_err(|e| format!("budget '{s}': {e}"))? as f64
            }
            Err(_) => {
                return Err(format!(
                    "budget '{s}': '{rhs}' is not a number (in {}, the unit of {})",
                    measure.metric.unit(),
                    measure.metric
                ))
            }
        };
        if !bound.is_finite() {
            return Err(format!("budget '{s}': the bound must be a finite number"));
        }
        Ok(Condition { measure, op, bound })
    }
}

/// A number for messages: 4 significant digits, plain integers kept whole.
pub fn show(v: f64, _unit: &str) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        let digits = (3 - v.abs().log10().floor() as i32).clamp(0, 12) as usize;
        format!("{v:.digits$}")
    }
}

/// The objective: which measure and which direction is better.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Objective {
    pub measure: Measure,
    pub better: Better,
}

impl Objective {
    pub fn parse(s: &str) -> Result<Objective, String> {
        let t = s.trim();
        let (better, rest) = match t.split_once(char::is_whitespace) {
            Some(("max" | "maximize", r)) => (Some(Better::Higher), r),
            Some(("min" | "minimize", r)) => (Some(Better::Lower), r),
            _ => (None, t),
        };
        let measure = Measure::parse(rest).map_err(|e| format!("objective '{s}': {e}"))?;
        Ok(Objective {
            better: better.unwrap_or(measure.metric.better()),
            measure,
        })
    }
}

impl TrackConfig {
    /// Checks the name, every budget and the objective.
    pub fn check(&self) -> Result<(), String> {
        if self.name.trim().is_empty() {
            return Err("name must not be empty".into());
        }
        Objective::parse(&self.objective)?;
        for b in &self.budgets {
            Condition::parse(b)?;
        }
        Ok(())
    }
}
