//! Budget tracks (EfficientQA style): a track names budgets on any metrics ("model_bytes <=
//! 500MB", "query_latency:p99 <= 50") and an objective ("max ndcg_at_10": best quality
//! within budget; "min model_bytes" with a budget "ndcg_at_10 >= 0.3": smallest model
//! reaching a quality). [`rank`] ranks the runs that meet every budget by the objective and
//! says for every other run which budget it breaks. Suites declare tracks in `[[tracks]]`
//! (carried in every result's config); `report --tracks FILE` adds more. Pure functions.

use crate::metric::{Better, MetricId};
use crate::records::TrackConfig;
use crate::records::{RunResult, RunState};
use serde::{Deserialize, Serialize};

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
    fn name(self) -> &'static str {
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
    /// The number of a run, or why there is none.
    pub fn read(&self, r: &RunResult) -> Result<f64, String> {
        let m = r
            .metric(self.metric)
            .ok_or_else(|| format!("no {} value", self.metric))?;
        if m.is_estimate() {
            return Err(format!(
                "{} is an estimate ({}), not a measurement",
                self.metric, m.source
            ));
        }
        if self.stat == Stat::Value {
            return Ok(m.value);
        }
        let s = m
            .stats
            .as_ref()
            .ok_or_else(|| format!("{} has no samples for {}", self.metric, self.stat.name()))?;
        Ok(match self.stat {
            Stat::Value => m.value,
            Stat::Mean => s.mean,
            Stat::Min => s.min,
            Stat::P50 => s.p50,
            Stat::P90 => s.p90,
            Stat::P95 => s.p95,
            Stat::P99 => s.p99,
            Stat::Max => s.max,
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

    /// `None` when the run meets it, else the reason it does not.
    pub fn breaks(&self, r: &RunResult) -> Option<String> {
        let v = match self.measure.read(r) {
            Ok(v) => v,
            Err(why) => return Some(why),
        };
        let ok = match self.op {
            "<=" => v <= self.bound,
            "<" => v < self.bound,
            ">=" => v >= self.bound,
            _ => v > self.bound,
        };
        let unit = self.measure.metric.unit();
        (!ok).then(|| {
            format!(
                "{} {} {}, budget {} {}",
                self.measure,
                show(v, unit),
                unit,
                self.op,
                show(self.bound, unit)
            )
        })
    }
}

/// A number for messages: 4 significant digits, plain integers kept whole.
fn show(v: f64, _unit: &str) -> String {
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

/// A run inside the budgets.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ranked {
    pub id: String,
    pub label: String,
    /// The objective's value.
    pub value: f64,
    /// 1 + runs with a strictly better value.
    pub rank: usize,
}

/// A run outside a budget, with every reason.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutOfBudget {
    pub id: String,
    pub label: String,
    pub reasons: Vec<String>,
}

/// A track's outcome over a set of runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrackRanking {
    pub name: String,
    pub description: String,
    /// `max ndcg_at_10`, as normalised.
    pub objective: String,
    pub unit: String,
    pub budgets: Vec<String>,
    /// Best first.
    pub ranked: Vec<Ranked>,
    pub out: Vec<OutOfBudget>,
}

/// Ranks `runs` in `track`. `label` names a run in the output.
pub fn rank(
    track: &TrackConfig,
    runs: &[&RunResult],
    label: &dyn Fn(&RunResult) -> String,
) -> Result<TrackRanking, String> {
    let objective = Objective::parse(&track.objective)?;
    let conds: Vec<Condition> = track
        .budgets
        .iter()
        .map(|b| Condition::parse(b))
        .collect::<Result<_, _>>()?;
    let mut inside: Vec<(f64, &RunResult)> = Vec::new();
    let mut out = Vec::new();
    for r in runs {
        let mut reasons = Vec::new();
        if r.status.state != RunState::Ok {
            reasons.push(format!(
                "run {}{}",
                format!("{:?}", r.status.state).to_lowercase(),
                r.status
                    .reason
                    .as_deref()
                    .map(|w| format!(": {w}"))
                    .unwrap_or_default()
            ));
        } else {
            reasons.extend(conds.iter().filter_map(|c| c.breaks(r)));
        }
        let value = objective.measure.read(r);
        if reasons.is_empty() {
            match value {
                Ok(v) if v.is_finite() => inside.push((v, *r)),
                Ok(_) => reasons.push(format!("{} is not a finite number", objective.measure)),
                Err(why) => reasons.push(why),
            }
        }
        if !reasons.is_empty() {
            out.push(OutOfBudget {
                id: r.id.clone(),
                label: label(r),
                reasons,
            });
        }
    }
    let key = |v: f64| objective.better.sign() * v;
    inside.sort_by(|a, b| {
        key(b.0)
            .total_cmp(&key(a.0))
            .then_with(|| label(a.1).cmp(&label(b.1)))
    });
    let ranked = inside
        .iter()
        .map(|(v, r)| Ranked {
            id: r.id.clone(),
            label: label(r),
            value: *v,
            rank: 1 + inside.iter().filter(|(w, _)| key(*w) > key(*v)).count(),
        })
        .collect();
    Ok(TrackRanking {
        name: track.name.clone(),
        description: track.description.clone(),
        objective: format!(
            "{} {}",
            match objective.better {
                Better::Higher => "max",
                Better::Lower => "min",
            },
            objective.measure
        ),
        unit: objective.measure.metric.unit().to_string(),
        budgets: conds
            .iter()
            .map(|c| format!("{} {} {}", c.measure, c.op, show(c.bound, "")))
            .collect(),
        ranked,
        out,
    })
}

/// `[[tracks]]` of a TOML file (`report --tracks FILE`; the same shape as in a suite),
/// checked. Errors name the file, and the line and column where TOML can tell.
pub fn read_file(path: &std::path::Path) -> anyhow::Result<Vec<TrackConfig>> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        tracks: Vec<TrackConfig>,
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read tracks file '{}': {e}", path.display()))?;
    let f: File = toml::from_str(&text).map_err(|e| {
        let msg = e.message().trim().replace('\n', " ");
        match e.span() {
            Some(s) => {
                let (line, col) = crate::records::line_col(&text, s.start);
                anyhow::anyhow!("{}:{line}:{col}: {msg}", path.display())
            }
            None => anyhow::anyhow!("{}: {msg}", path.display()),
        }
    })?;
    for (i, t) in f.tracks.iter().enumerate() {
        t.check()
            .map_err(|e| anyhow::anyhow!("{}: [[tracks]] #{}: {e}", path.display(), i + 1))?;
    }
    Ok(f.tracks)
}

/// The tracks results carry (their suites' `[[tracks]]`), each once by name, in order.
pub fn tracks_of(results: &[RunResult]) -> Vec<TrackConfig> {
    let mut out: Vec<TrackConfig> = Vec::new();
    for r in results {
        for t in &r.config.tracks {
            if !out.iter().any(|o| o.name == t.name) {
                out.push(t.clone());
            }
        }
    }
    out
}

#[cfg(test)]
#[path = "tracks_tests.rs"]
mod tests;
