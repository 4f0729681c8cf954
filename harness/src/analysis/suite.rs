//! The suite-level analysis of a result set (`analysis.json` beside the manifest): speed-ups
//! of every run against its baseline run, Pareto fronts with hypervolume, and Dynascore.
//!
//! A pure stage: [`analyze`] reads nothing but the results and the suite's `[analysis]`
//! settings (recorded in every result's `suite.analysis`) and writes nothing, so `run`,
//! `merge`, `report`, `show` and `site` all get the same answer for the same results, and it
//! never rewrites a result file. [`with_speedups`] lends the speed-ups to results in memory
//! (as `speedup_*` metrics) for tables that show them.

use super::dynascore::{default_setup, default_weight, dynascore, DynaMetric};
use super::pareto::{front, hypervolume};
use super::table::from_results;
use crate::axes::AxisValue;
use crate::metric::{Better, Metric, MetricId};
use crate::records::analysis::selects;
use crate::records::analysis::ObjectiveSpec;
use crate::records::{AnalysisConfig, ParetoConfig};
use crate::records::{RunResult, RunState, SCHEMA_VERSION};
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
    /// `speedup_*` metrics of this run against that baseline (> 1 = better).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub speedups: Vec<Metric>,
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

/// Speed-up of `variant` over `baseline` so that > 1 is better (design of the metric:
/// baseline ÷ variant for lower-is-better metrics, variant ÷ baseline for higher-is-better
/// ones); `None` unless both are finite and > 0. The one speed-up formula of effbench.
pub fn speedup(baseline: f64, variant: f64, better: Better) -> Option<f64> {
    if !(baseline > 0.0 && variant > 0.0 && baseline.is_finite() && variant.is_finite()) {
        return None;
    }
    Some(match better {
        Better::Lower => baseline / variant,
        Better::Higher => variant / baseline,
    })
}

/// `speedup_*` metrics of `r` against its baseline run `b`.
fn speedups(r: &RunResult, b: &RunResult) -> Vec<Metric> {
    let source = format!("derived: vs baseline run {} ({})", b.id, b.label());
    r.metrics
        .iter()
        .filter_map(|m| {
            let id = m.name.speedup()?;
            let ratio = speedup(b.metric(m.name)?.value, m.value, m.better)?;
            Some(Metric::scalar(id, ratio, source.clone()))
        })
        .collect()
}

/// Every axis the runs have a value for (the backends' axes, defaults included).
fn axes_of(results: &[RunResult]) -> Vec<&str> {
    let mut axes: Vec<&str> = results
        .iter()
        .flat_map(|r| r.config.params.keys().map(String::as_str))
        .collect();
    axes.sort_unstable();
    axes.dedup();
    axes
}

/// Analyses a result set (the runs of one suite on one machine) with the suite's settings.
pub fn analyze(suite: &str, cfg: &AnalysisConfig, results: &[RunResult]) -> SuiteAnalysis {
    let axes = axes_of(results);
    let reference = cfg.reference_selector(&axes);
    let baseline = cfg.baseline_selector(&axes);
    let mut notes = Vec::new();
    let mut runs = Vec::new();
    for r in results {
        let b = (r.status.state == RunState::Ok)
            .then(|| baseline_of(r, &baseline, results))
            .flatten();
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
            speedup_baseline: b.map(|b| b.id.clone()),
            speedups: b.map(|b| speedups(r, b)).unwrap_or_default(),
        });
    }
    // Fronts and scores may name speed-up metrics: they see the results with them.
    let mut with = results.to_vec();
    let lent = SuiteAnalysis {
        runs: runs.clone(),
        ..SuiteAnalysis::empty(suite)
    };
    with_speedups(&mut with, &lent);
    let pareto = fronts(cfg, &with, &mut notes);
    let dynascore = dyna(cfg, &with, &mut notes);
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

impl SuiteAnalysis {
    fn empty(suite: &str) -> SuiteAnalysis {
        SuiteAnalysis {
            schema_version: SCHEMA_VERSION,
            suite: suite.to_string(),
            generated_at: String::new(),
            reference: BTreeMap::new(),
            baseline: BTreeMap::new(),
            runs: Vec::new(),
            pareto: Vec::new(),
            dynascore: None,
            notes: Vec::new(),
        }
    }
}

/// Gives each result (matched by run id) the speed-ups `a` computed for it, replacing any it
/// had, in memory only; results the analysis does not know are left alone.
pub fn with_speedups(results: &mut [RunResult], a: &SuiteAnalysis) {
    for r in results.iter_mut() {
        let Some(run) = a.runs.iter().find(|x| x.id == r.id) else {
            continue;
        };
        r.metrics
            .retain(|m| !MetricId::ALL.iter().any(|s| s.speedup() == Some(m.name)));
        r.metrics.extend(run.speedups.iter().cloned());
        r.metrics
            .sort_by_key(|m| MetricId::ALL.iter().position(|x| *x == m.name));
    }
}

/// The analysis of one result set found among many results, and which of them it covers.
#[derive(Debug, Clone)]
pub struct SetAnalysis {
    pub analysis: SuiteAnalysis,
    /// Indices of the results analysed (the newest result of each run).
    pub members: Vec<usize>,
}

/// The analysis of every result set in `results` that comes from a suite with `[analysis]`:
/// one per suite and machine, over the newest result of each run, computed now. What
/// `report`, `show` and `site` use, so the analysis is there even when no `analysis.json` was
/// written (shards copied together by hand, an interrupted run, results of older versions).
pub fn analyze_sets(results: &[RunResult]) -> Vec<SetAnalysis> {
    let mut sets: Vec<((&str, String), Vec<usize>)> = Vec::new();
    for (i, r) in results.iter().enumerate() {
        if r.suite.analysis.is_none() {
            continue;
        }
        let key = (r.suite.name.as_str(), r.env.machine_key());
        let k = match sets.iter().position(|(k, _)| *k == key) {
            Some(k) => k,
            None => {
                sets.push((key, Vec::new()));
                sets.len() - 1
            }
        };
        let members = &mut sets[k].1;
        match members.iter_mut().find(|j| results[**j].id == r.id) {
            Some(j) if results[*j].started_at < r.started_at => *j = i,
            Some(_) => {}
            None => members.push(i),
        }
    }
    sets.into_iter()
        .filter_map(|((suite, _), members)| {
            let set: Vec<RunResult> = members.iter().map(|&i| results[i].clone()).collect();
            let cfg = set.iter().find_map(|r| r.suite.analysis.clone())?;
            Some(SetAnalysis {
                analysis: analyze(suite, &cfg, &set),
                members,
            })
        })
        .collect()
}

/// [`analyze_sets`], then each analysed result gets its speed-ups ([`with_speedups`]), in
/// memory only.
pub fn lend_speedups(results: &mut [RunResult]) -> Vec<SetAnalysis> {
    let sets = analyze_sets(results);
    for s in &sets {
        for &i in &s.members {
            with_speedups(std::slice::from_mut(&mut results[i]), &s.analysis);
        }
    }
    sets
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

/// `(metric, sense, weight, offset)` of the Dynascore, performance first: the suite's, or
/// the default set-up ([`default_setup`]) over the metrics every ok run measures, keeping
/// those with a weight.
fn dyna_specs(
    cfg: &AnalysisConfig,
    results: &[RunResult],
) -> Option<Vec<(MetricId, Better, f64, f64)>> {
    let spec = |s: &str, perf: bool| {
        ObjectiveSpec::parse_metric(s, perf).ok().map(|(id, o)| {
            (
                id,
                o.better.unwrap_or(id.better()),
                o.weight.unwrap_or(default_weight(perf)),
                o.offset.unwrap_or(0.0),
            )
        })
    };
    if let Some(d) = &cfg.dynascore {
        return std::iter::once(spec(&d.perf, true))
            .chain(d.metrics.iter().map(|m| spec(m, false)))
            .collect();
    }
    let ok: Vec<&RunResult> = results
        .iter()
        .filter(|r| r.status.state == RunState::Ok)
        .collect();
    let candidates: Vec<(MetricId, Vec<f64>)> = MetricId::ALL
        .iter()
        .filter_map(|&id| {
            let v: Option<Vec<f64>> = ok
                .iter()
                .map(|r| r.metric(id).filter(|m| !m.is_estimate()).map(|m| m.value))
                .collect();
            v.filter(|v| !v.is_empty()).map(|v| (id, v))
        })
        .collect();
    let setup = default_setup(&candidates)?;
    let v: Vec<_> = setup
        .into_iter()
        .filter(|(_, m)| m.weight > 0.0)
        .map(|(k, m)| (candidates[k].0, m.better, m.weight, m.offset))
        .collect();
    (v.len() > 1).then_some(v)
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
