//! The suite-level analysis of one invocation (`analysis.json` beside the manifest):
//! speed-ups of every run against its baseline run (also stored in each result as
//! `speedup_*` metrics), Pareto fronts with hypervolume, and Dynascore. Runs only when the
//! suite has an `[analysis]` section; reads nothing but the results, so a report can redo it.

use super::config::{selects, AnalysisConfig, ParetoConfig};
use super::dynascore::{dynascore, DynaMetric};
use super::pareto::{front, hypervolume};
use super::table::{from_results, ObjectiveSpec};
use crate::axes::AxisValue;
use crate::metric::{Better, Metric, MetricId};
use crate::result::{RunResult, RunState, SCHEMA_VERSION};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// File name of the suite-level analysis in an invocation directory.
pub const ANALYSIS_FILE: &str = "analysis.json";

/// `analysis.json`: what a report needs beyond the per-run results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SuiteAnalysis {
    pub schema_version: u32,
    pub suite: String,
    /// RFC 3339 UTC.
    pub generated_at: String,
    /// Axis values selecting the reference variant (fidelity, compression ratio).
    pub reference: BTreeMap<String, AxisValue>,
    /// Axis values selecting the baseline of speed-ups.
    pub baseline: BTreeMap<String, AxisValue>,
    pub runs: Vec<AnalysisRun>,
    pub pareto: Vec<FrontReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dynascore: Option<DynascoreReport>,
    /// Why something was left out (missing metrics, no baseline run ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// One run as the analysis sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnalysisRun {
    pub id: String,
    pub label: String,
    pub is_reference: bool,
    pub is_baseline: bool,
    /// Id of the run its `speedup_*` metrics are relative to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speedup_baseline: Option<String>,
}

/// A metric with the direction used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Objective {
    pub metric: MetricId,
    pub better: Better,
}

/// One Pareto front over the ok runs that have every objective.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FrontReport {
    pub objectives: Vec<Objective>,
    /// Ids of the runs on the front, in result order.
    pub front: Vec<String>,
    /// Ids of the runs compared (on the front or not).
    pub considered: Vec<String>,
    /// Hypervolume (2 or 3 objectives) and the reference point it is measured from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hypervolume: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_point: Option<Vec<f64>>,
    /// `suite` or how the default was derived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_point_source: Option<String>,
}

/// Dynascore over the ok runs that have every metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DynascoreReport {
    /// Performance first.
    pub metrics: Vec<DynaMetricReport>,
    /// Best first.
    pub scores: Vec<DynaScore>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DynaMetricReport {
    pub metric: MetricId,
    pub better: Better,
    /// Weight as given and after normalisation to sum 1.
    pub weight: f64,
    pub weight_normalized: f64,
    pub offset: f64,
    pub amrs: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DynaScore {
    pub id: String,
    pub label: String,
    pub dynascore: f64,
    pub rank: usize,
}

type Selector = BTreeMap<String, AxisValue>;

/// The baseline run of `r`: ok, matching the selector, and equal to `r` on every other axis.
fn baseline_of<'a>(r: &RunResult, sel: &Selector, all: &'a [RunResult]) -> Option<&'a RunResult> {
    all.iter().find(|b| {
        b.status.state == RunState::Ok
            && selects(sel, &b.config.params)
            && r.config.params.iter().all(|(k, v)| {
                sel.contains_key(k) || b.config.params.get(k).is_some_and(|bv| bv.matches(v))
            })
    })
}

/// Replaces `r`'s speed-up metrics by ratios against `b`.
fn add_speedups(r: &mut RunResult, b: &RunResult) {
    r.metrics
        .retain(|m| !MetricId::ALL.iter().any(|s| s.speedup() == Some(m.name)));
    let source = format!("derived: vs baseline run {} ({})", b.id, b.label());
    let mut new = Vec::new();
    for m in &r.metrics {
        let (Some(id), Some(base)) = (m.name.speedup(), b.metric(m.name)) else {
            continue;
        };
        let ratio = match m.better {
            Better::Lower => base.value / m.value,
            Better::Higher => m.value / base.value,
        };
        if ratio.is_finite() && ratio > 0.0 {
            new.push(Metric::scalar(id, ratio, source.clone()));
        }
    }
    r.metrics.extend(new);
    r.metrics
        .sort_by_key(|m| MetricId::ALL.iter().position(|x| *x == m.name));
}

/// Analyses an invocation's results; adds `speedup_*` metrics to them.
pub fn analyze(
    suite: &str,
    cfg: &AnalysisConfig,
    backend_axes: &[&str],
    results: &mut [RunResult],
) -> SuiteAnalysis {
    let reference = cfg.reference_selector(backend_axes);
    let baseline = cfg.baseline_selector(backend_axes);
    let mut notes = Vec::new();
    let mut runs = Vec::new();
    for i in 0..results.len() {
        let r = &results[i];
        let b = (r.status.state == RunState::Ok)
            .then(|| baseline_of(r, &baseline, results))
            .flatten()
            .cloned();
        if b.is_none() && r.status.state == RunState::Ok {
            notes.push(format!(
                "{}: no ok baseline run with {} and the same other axes; no speed-ups",
                r.label(),
                selector_text(&baseline)
            ));
        }
        runs.push(AnalysisRun {
            id: r.id.clone(),
            label: r.label(),
            is_reference: selects(&reference, &r.config.params),
            is_baseline: selects(&baseline, &r.config.params),
            speedup_baseline: b.as_ref().map(|b| b.id.clone()),
        });
        if let Some(b) = b {
            add_speedups(&mut results[i], &b);
        }
    }
    let pareto = fronts(cfg, results, &mut notes);
    let dynascore = dyna(cfg, results, &mut notes);
    let mut seen = std::collections::HashSet::new();
    notes.retain(|n| seen.insert(n.clone()));
    SuiteAnalysis {
        schema_version: SCHEMA_VERSION,
        suite: suite.to_string(),
        generated_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        reference,
        baseline,
        runs,
        pareto,
        dynascore,
        notes,
    }
}

fn selector_text(sel: &Selector) -> String {
    sel.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn present(results: &[RunResult], m: MetricId) -> bool {
    results
        .iter()
        .any(|r| r.status.state == RunState::Ok && r.metric(m).is_some())
}

/// The configured fronts, or the defaults whose metrics exist.
fn front_configs(cfg: &AnalysisConfig, results: &[RunResult]) -> Vec<ParetoConfig> {
    if !cfg.pareto.is_empty() {
        return cfg.pareto.clone();
    }
    use MetricId::*;
    let defaults: [&[MetricId]; 4] = [
        &[Perplexity, Tpot],
        &[Perplexity, OutputThroughput],
        &[Perplexity, ModelBytes],
        &[Perplexity, OutputThroughput, ModelBytes],
    ];
    defaults
        .iter()
        .filter(|ms| ms.iter().all(|m| present(results, *m)))
        .map(|ms| ParetoConfig {
            metrics: ms.iter().map(|m| m.name().to_string()).collect(),
            reference_point: None,
        })
        .collect()
}

fn fronts(
    cfg: &AnalysisConfig,
    results: &[RunResult],
    notes: &mut Vec<String>,
) -> Vec<FrontReport> {
    let mut out = Vec::new();
    for pc in front_configs(cfg, results) {
        let objectives: Vec<Objective> = pc
            .metrics
            .iter()
            .filter_map(|s| ObjectiveSpec::parse_metric(s, false).ok())
            .map(|(metric, o)| Objective {
                metric,
                better: o.better.unwrap_or(metric.better()),
            })
            .collect();
        let ids: Vec<MetricId> = objectives.iter().map(|o| o.metric).collect();
        let names = pc.metrics.join(" vs ");
        let rt = from_results(results, &ids);
        notes.extend(
            rt.skipped
                .iter()
                .map(|s| format!("pareto {names}: left out {s}")),
        );
        let (table, considered) = (rt.table, rt.ids);
        if table.rows.is_empty() {
            notes.push(format!("pareto {names}: no run has all of these metrics"));
            continue;
        }
        let senses: Vec<Better> = objectives.iter().map(|o| o.better).collect();
        let on = match front(&table.rows, &senses) {
            Ok(f) => f,
            Err(e) => {
                notes.push(format!("pareto {names}: {e}"));
                continue;
            }
        };
        let mut report = FrontReport {
            objectives,
            front: on.iter().map(|&i| considered[i].clone()).collect(),
            considered,
            hypervolume: None,
            reference_point: None,
            reference_point_source: None,
        };
        if (2..=3).contains(&senses.len()) {
            let (point, source) = match &pc.reference_point {
                Some(p) => (p.clone(), "suite".to_string()),
                None => (
                    default_reference_point(&table.rows, &senses),
                    "default: each objective's worst value, moved 10 % of its range further \
                     (10 % of the value when all are equal), not below 0 for non-negative values"
                        .to_string(),
                ),
            };
            match hypervolume(&table.rows, &senses, &point) {
                Ok(hv) => {
                    report.hypervolume = Some(hv);
                    report.reference_point = Some(point);
                    report.reference_point_source = Some(source);
                }
                Err(e) => notes.push(format!("pareto {names}: hypervolume: {e}")),
            }
        }
        out.push(report);
    }
    out
}

/// Worst value per objective, pushed 10 % of the range (or of the value) further out, but not
/// below 0 for an objective whose values are all >= 0.
pub fn default_reference_point(rows: &[Vec<f64>], senses: &[Better]) -> Vec<f64> {
    senses
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let col = rows.iter().map(|r| r[k]);
            let (lo, hi) = col.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(v), b.max(v))
            });
            let worst = match s {
                Better::Higher => lo,
                Better::Lower => hi,
            };
            let margin = if hi > lo {
                0.1 * (hi - lo)
            } else {
                0.1 * worst.abs().max(1e-12)
            };
            let p = worst - s.sign() * margin;
            // Non-negative metrics (throughput, sizes) never get a negative reference.
            if lo >= 0.0 {
                p.max(0.0)
            } else {
                p
            }
        })
        .collect()
}

/// `(metric, sense, weight, offset)` of the Dynascore, performance first.
fn dyna_specs(
    cfg: &AnalysisConfig,
    results: &[RunResult],
) -> Option<Vec<(MetricId, Better, f64, f64)>> {
    let spec = |s: &str, perf: bool| {
        ObjectiveSpec::parse_metric(s, perf).ok().map(|(id, o)| {
            (
                id,
                o.better.unwrap_or(id.better()),
                o.weight.unwrap_or(if perf { 4.0 } else { 1.0 }),
                o.offset.unwrap_or(0.0),
            )
        })
    };
    match &cfg.dynascore {
        Some(d) => std::iter::once(spec(&d.perf, true))
            .chain(d.metrics.iter().map(|m| spec(m, false)))
            .collect(),
        None => {
            use MetricId::*;
            if !present(results, Perplexity) {
                return None;
            }
            let mut v = vec![(Perplexity, Better::Lower, 4.0, 0.0)];
            for m in [OutputThroughput, ModelBytes] {
                if present(results, m) {
                    v.push((m, m.better(), 1.0, 0.0));
                }
            }
            (v.len() > 1).then_some(v)
        }
    }
}

fn dyna(
    cfg: &AnalysisConfig,
    results: &[RunResult],
    notes: &mut Vec<String>,
) -> Option<DynascoreReport> {
    let mut specs = dyna_specs(cfg, results)?;
    loop {
        let ids: Vec<MetricId> = specs.iter().map(|s| s.0).collect();
        let rt = from_results(results, &ids);
        notes.extend(
            rt.skipped
                .iter()
                .map(|s| format!("dynascore: left out {s}")),
        );
        let table = rt.table;
        let metrics: Vec<DynaMetric> = specs
            .iter()
            .map(|(id, better, weight, offset)| DynaMetric {
                name: id.name().to_string(),
                better: *better,
                weight: *weight,
                offset: *offset,
            })
            .collect();
        match dynascore(&metrics, &table.rows) {
            Ok(r) => {
                let run_ids = rt.ids;
                return Some(DynascoreReport {
                    metrics: specs
                        .iter()
                        .zip(&r.amrs)
                        .zip(&r.weights)
                        .map(
                            |(((metric, better, weight, offset), amrs), wn)| DynaMetricReport {
                                metric: *metric,
                                better: *better,
                                weight: *weight,
                                weight_normalized: *wn,
                                offset: *offset,
                                amrs: *amrs,
                            },
                        )
                        .collect(),
                    scores: r
                        .rows
                        .iter()
                        .map(|row| DynaScore {
                            id: run_ids[row.index].clone(),
                            label: table.names[row.index].clone(),
                            dynascore: row.dynascore,
                            rank: row.rank,
                        })
                        .collect(),
                });
            }
            // A default metric that does not vary is dropped; a configured one is reported.
            Err(super::dynascore::DynaError::ZeroVariance(name)) if cfg.dynascore.is_none() => {
                notes.push(format!(
                    "dynascore: '{name}' does not vary between runs; left out"
                ));
                specs.retain(|s| s.0.name() != name);
                if specs.len() < 2 {
                    return None;
                }
            }
            Err(e) => {
                notes.push(format!("dynascore: {e}"));
                return None;
            }
        }
    }
}

#[cfg(test)]
#[path = "suite_tests.rs"]
mod tests;
