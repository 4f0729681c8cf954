//! Budget tracks (EfficientQA style): a track names budgets on any metrics ("model_bytes <=
//! 500MB", "query_latency:p99 <= 50") and an objective ("max ndcg_at_10": best quality
//! within budget; "min model_bytes" with a budget "ndcg_at_10 >= 0.3": smallest model
//! reaching a quality). [`rank`] ranks the runs that meet every budget by the objective and
//! says for every other run which budget it breaks. Suites declare tracks in `[[tracks]]`
//! (carried in every result's config); `report --tracks FILE` adds more. Pure functions.

use crate::metric::Better;
use crate::records::tracks::{show, Condition, Objective, TrackConfig};
use crate::records::{RunResult, RunState};
use serde::{Deserialize, Serialize};

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
            reasons.extend(conds.iter().filter_map(|c| r.breaks(c)));
        }
        let value = r.measure_value(&objective.measure);
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
