//! Comparison of two result sets (`effbench compare` / `gate`): runs are matched by spec id
//! (which hashes what is measured, not the `[measure]` settings); several results with the
//! same id on one side (repeats, A/B slots) are pooled; every selected metric of every
//! matched run gets a [`SampleComparison`]. Runs present on one side only, and runs that did
//! not finish `ok`, are listed. The [`Comparison`] is the JSON that `compare --format json`
//! and `gate` print (schema `comparison.v1.schema.json`).

use crate::analysis::verdict::{compare_samples, SampleComparison, Verdict};
use crate::gate::{GateConfig, GateOutcome};
use crate::matrix::varying_axes;
use crate::metric::{Better, MetricId};
use crate::result::{RunResult, RunState};
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

pub const KIND: &str = "effbench-comparison";

/// Facts about one side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SideInfo {
    /// `base`/`new`, `baseline`/`current` or `A`/`B`.
    pub name: String,
    /// What the user pointed at.
    pub path: String,
    pub suites: Vec<String>,
    /// Result files read (all states).
    pub results: usize,
    /// Distinct git commits (`-dirty` appended when built with uncommitted changes).
    pub git_commits: Vec<String>,
    pub effbench_versions: Vec<String>,
    /// Distinct machines: CPU model and thread count.
    pub machines: Vec<String>,
    /// Injected delays per measured iteration (ms) found in the results (test knob).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub injected_delay_ms: Vec<f64>,
}

/// A run listed but not compared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunRef {
    pub id: String,
    pub label: String,
    /// For `not_ok`: the side whose run did not finish ok.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub side: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MetricComparison {
    pub metric: MetricId,
    pub unit: String,
    pub better: Better,
    /// Whether this metric can fail the gate.
    pub gated: bool,
    #[serde(flatten)]
    pub result: SampleComparison,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunComparison {
    pub id: String,
    pub label: String,
    /// Results pooled per side (more than 1 for repeats and A/B slots).
    pub base_results: usize,
    pub new_results: usize,
    pub metrics: Vec<MetricComparison>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Summary {
    pub runs_compared: usize,
    pub metrics_compared: usize,
    pub regressed: usize,
    pub improved: usize,
    pub unchanged: usize,
    pub inconclusive: usize,
}

/// The whole comparison (JSON for machines).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Comparison {
    /// Always `effbench-comparison`.
    pub kind: String,
    pub version: u32,
    pub base: SideInfo,
    pub new: SideInfo,
    pub settings: GateConfig,
    pub summary: Summary,
    pub runs: Vec<RunComparison>,
    /// In base (ok), absent from new.
    pub missing: Vec<RunRef>,
    /// In new (ok), absent from base.
    pub extra: Vec<RunRef>,
    /// Present on both sides but not `ok` on one of them.
    pub not_ok: Vec<RunRef>,
    /// Things a reader should know (different machines, injected delays, skipped metrics).
    pub notes: Vec<String>,
    /// Set by `gate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<GateOutcome>,
}

/// One side's results as given: its display name, the path, the results.
pub struct Input<'a> {
    pub name: &'a str,
    pub path: &'a str,
    pub results: &'a [RunResult],
}

fn distinct<T: PartialEq>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut out = Vec::new();
    for i in items {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

fn side_info(i: &Input) -> SideInfo {
    let rs = i.results;
    SideInfo {
        name: i.name.to_string(),
        path: i.path.to_string(),
        suites: distinct(rs.iter().map(|r| r.suite.name.clone())),
        results: rs.len(),
        git_commits: distinct(rs.iter().map(|r| {
            let c: String = r.env.git_commit.chars().take(12).collect();
            let c = if c.is_empty() { "unknown".into() } else { c };
            if r.env.git_dirty {
                format!("{c}-dirty")
            } else {
                c
            }
        })),
        effbench_versions: distinct(rs.iter().map(|r| r.env.effbench_version.clone())),
        machines: distinct(
            rs.iter()
                .map(|r| format!("{} ({} threads)", r.env.cpu_model, r.env.cpu_threads)),
        ),
        injected_delay_ms: distinct(
            rs.iter()
                .map(|r| r.config.measure.inject_delay_ms)
                .filter(|d| *d > 0.0),
        ),
    }
}

/// Results grouped by id in first-seen order: (ok results, not-ok results).
type Groups<'a> = Vec<(String, Vec<&'a RunResult>, Vec<&'a RunResult>)>;

fn group(results: &[RunResult]) -> Groups<'_> {
    let mut out: Groups = Vec::new();
    for r in results {
        let pos = match out.iter().position(|(id, _, _)| *id == r.id) {
            Some(p) => p,
            None => {
                out.push((r.id.clone(), Vec::new(), Vec::new()));
                out.len() - 1
            }
        };
        if r.status.state == RunState::Ok {
            out[pos].1.push(r);
        } else {
            out[pos].2.push(r);
        }
    }
    out
}

/// Samples of `metric` pooled over replicates: raw samples where kept, else one value each.
fn pooled(rs: &[&RunResult], metric: MetricId) -> Vec<f64> {
    let mut out = Vec::new();
    for r in rs {
        if let Some(m) = r.metric(metric) {
            if m.samples.is_empty() {
                out.push(m.value);
            } else {
                out.extend_from_slice(&m.samples);
            }
        }
    }
    out
}

fn reason(r: &RunResult) -> String {
    let state = match r.status.state {
        RunState::Ok => "ok",
        RunState::Failed => "failed",
        RunState::Interrupted => "interrupted",
    };
    match &r.status.reason {
        Some(why) => format!("{state}: {why}"),
        None => state.to_string(),
    }
}

/// Compares `new` against `base`. Errors when nothing at all can be matched.
pub fn compare(base: &Input, new: &Input, cfg: &GateConfig) -> Result<Comparison> {
    cfg.check().map_err(anyhow::Error::msg)?;
    let (bg, ng) = (group(base.results), group(new.results));
    let find = |g: &'_ Groups<'_>, id: &str| g.iter().position(|(i, _, _)| i == id);
    let mut c = Comparison {
        kind: KIND.into(),
        version: 1,
        base: side_info(base),
        new: side_info(new),
        settings: cfg.clone(),
        summary: Summary::default(),
        runs: Vec::new(),
        missing: Vec::new(),
        extra: Vec::new(),
        not_ok: Vec::new(),
        notes: Vec::new(),
        gate: None,
    };
    // Labels over the axes that vary across both sides: a child of `run --ab` ran one spec
    // and recorded no varying axes of its own.
    let axes = varying_axes(base.results.iter().chain(new.results).map(|r| &r.config));
    let label_of = |r: &RunResult| {
        let l = r.config.label(&axes);
        if l.is_empty() {
            r.label()
        } else {
            l
        }
    };
    let mut single_valued: Vec<MetricId> = Vec::new();
    let mut one_sided: Vec<MetricId> = Vec::new();
    let mut measure_differs = false;
    for (id, b_ok, b_bad) in &bg {
        let any = b_ok.first().or(b_bad.first()).expect("group is non-empty");
        let label = label_of(any);
        let rref = |side: &str, why: Option<String>| RunRef {
            id: id.clone(),
            label: label.clone(),
            side: side.to_string(),
            reason: why,
        };
        let Some(pos) = find(&ng, id) else {
            if !b_ok.is_empty() {
                c.missing.push(rref("", None));
            }
            continue;
        };
        let (_, n_ok, n_bad) = &ng[pos];
        if b_ok.is_empty() {
            c.not_ok.push(rref(base.name, Some(reason(b_bad[0]))));
            continue;
        }
        if n_ok.is_empty() {
            c.not_ok.push(rref(new.name, Some(reason(n_bad[0]))));
            continue;
        }
        let strip = |r: &RunResult| {
            let mut m = r.config.measure.clone();
            m.inject_delay_ms = 0.0;
            m
        };
        measure_differs |= strip(b_ok[0]) != strip(n_ok[0]);
        let explicit = !cfg.metrics.is_empty();
        let candidates: Vec<MetricId> = if explicit {
            cfg.metrics.clone()
        } else {
            MetricId::ALL
                .iter()
                .copied()
                .filter(|m| b_ok.iter().chain(n_ok).any(|r| r.metric(*m).is_some()))
                .collect()
        };
        let mut metrics = Vec::new();
        for m in candidates {
            let (xs, ys) = (pooled(b_ok, m), pooled(n_ok, m));
            if xs.is_empty() || ys.is_empty() {
                if !one_sided.contains(&m) {
                    one_sided.push(m);
                }
                continue;
            }
            if !explicit && (xs.len() < 2 || ys.len() < 2) {
                if !single_valued.contains(&m) {
                    single_valued.push(m);
                }
                continue;
            }
            let result = compare_samples(&xs, &ys, m.better(), &cfg.rule(m, id))
                .map_err(|e| anyhow::anyhow!("run {label}, metric {m}: {e}"))?;
            metrics.push(MetricComparison {
                metric: m,
                unit: m.unit().to_string(),
                better: m.better(),
                gated: cfg.gates(m),
                result,
            });
        }
        c.runs.push(RunComparison {
            id: id.clone(),
            label,
            base_results: b_ok.len(),
            new_results: n_ok.len(),
            metrics,
        });
    }
    for (id, n_ok, _) in &ng {
        if find(&bg, id).is_none() && !n_ok.is_empty() {
            c.extra.push(RunRef {
                id: id.clone(),
                label: label_of(n_ok[0]),
                side: String::new(),
                reason: None,
            });
        }
    }
    if c.runs.is_empty() && c.not_ok.is_empty() {
        let ids = |g: &Groups| {
            let v: Vec<&str> = g.iter().take(4).map(|(i, _, _)| i.as_str()).collect();
            format!("{}{}", v.join(", "), if g.len() > 4 { ", ..." } else { "" })
        };
        bail!(
            "nothing to compare: no run of {} ({}) has the spec id of a run of {} ({}); \
             ids differ when the suite's backend, axes, seed or options differ",
            base.path,
            ids(&bg),
            new.path,
            ids(&ng)
        );
    }
    notes(&mut c, &single_valued, &one_sided, measure_differs);
    c.summary = summarize(&c.runs);
    Ok(c)
}

fn names(ms: &[MetricId]) -> String {
    ms.iter().map(|m| m.name()).collect::<Vec<_>>().join(", ")
}

fn notes(c: &mut Comparison, single: &[MetricId], one_sided: &[MetricId], measure: bool) {
    if c.base.machines != c.new.machines {
        c.notes.push(format!(
            "different machines: {} on {} vs {} on {}; timings across machines are not comparable",
            c.base.name,
            c.base.machines.join(" + "),
            c.new.name,
            c.new.machines.join(" + ")
        ));
    }
    for side in [&c.base, &c.new] {
        if !side.injected_delay_ms.is_empty() {
            let d: Vec<String> = side
                .injected_delay_ms
                .iter()
                .map(|d| format!("{d} ms"))
                .collect();
            c.notes.push(format!(
                "{}: results include an injected delay of {} per measured iteration \
                 (--inject-delay, a test knob); their throughputs are deliberately slowed",
                side.name,
                d.join(", ")
            ));
        }
    }
    if measure {
        c.notes.push(
            "the [measure] settings differ between the sides (same spec ids); longer windows \
             change the sample counts, not what is measured"
                .into(),
        );
    }
    if !single.is_empty() {
        c.notes.push(format!(
            "not compared (one value per run, no samples to test): {}; repeat the runs \
             (several results per side are pooled) or use `run --ab`, or name them with --metric",
            names(single)
        ));
    }
    if !one_sided.is_empty() {
        c.notes.push(format!(
            "not compared (absent on one side): {}",
            names(one_sided)
        ));
    }
}

fn summarize(runs: &[RunComparison]) -> Summary {
    let mut s = Summary {
        runs_compared: runs.len(),
        ..Summary::default()
    };
    for m in runs.iter().flat_map(|r| &r.metrics) {
        s.metrics_compared += 1;
        match m.result.verdict {
            Verdict::Regressed => s.regressed += 1,
            Verdict::Improved => s.improved += 1,
            Verdict::Unchanged => s.unchanged += 1,
            Verdict::Inconclusive => s.inconclusive += 1,
        }
    }
    s
}

#[cfg(test)]
#[path = "comparison_tests.rs"]
mod tests;
