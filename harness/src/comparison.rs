//! Comparison of two result sets (`effbench compare` / `gate`): runs are matched by spec id
//! (which hashes what is measured, not the `[measure]` settings); every selected metric of
//! every matched run gets a [`SampleComparison`]. Several results with the same id on one side
//! (repeats, A/B slots, history entries) are the replicates: each contributes its headline
//! value and the invocations are compared ([`crate::analysis::invocations`], paired by ABBA
//! block where the [`Design`] knows them). With one invocation per side the raw samples are
//! compared with a wide band ([`compare_unreplicated`]). Runs present on one side only, and runs
//! that did not finish `ok`, are listed. The [`Comparison`] is the JSON that `compare --format
//! json` and `gate` print (schema `comparison.v1.schema.json`).

use crate::analysis::invocations::{self, compare_invocations, Invocation};
use crate::analysis::verdict::{
    compare_samples, compare_unreplicated, SampleComparison, Unit, Verdict,
};
use crate::gate::{GateConfig, GateOutcome};
use crate::history;
use crate::matrix::varying_axes;
use crate::metric::{Better, MetricId};
use crate::records::{RunResult, RunState};
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
    /// Injected slowdowns of every measured iteration (%) found in the results (test knob).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub injected_slowdown_pct: Vec<f64>,
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
    /// Results (invocations) per side: more than 1 for repeats and A/B slots.
    pub base_results: usize,
    pub new_results: usize,
    /// Earlier baseline runs from the history that joined the base side (`gate --history`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<HistoryRef>,
    pub metrics: Vec<MetricComparison>,
}

/// A history entry used as a baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HistoryRef {
    pub started_at: String,
    pub git_commit: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

impl HistoryRef {
    fn of(e: &history::Entry) -> HistoryRef {
        HistoryRef {
            started_at: e.started_at.clone(),
            git_commit: e.git_commit.chars().take(12).collect(),
            tag: e.tag.clone(),
        }
    }
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
        injected_slowdown_pct: distinct(
            rs.iter()
                .map(|r| r.config.measure.inject_slowdown_pct)
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

/// What is known about how the results were gathered, beyond the results themselves.
#[derive(Debug, Clone, Default)]
pub struct Design<'a> {
    /// ABBA block of each base / new result (aligned with [`Input::results`]), from `run --ab`.
    pub base_blocks: Option<Vec<usize>>,
    pub new_blocks: Option<Vec<usize>>,
    /// Earlier baseline results (`gate --history`), judged together with the base side.
    pub history: Option<&'a [history::Entry]>,
    /// Where the history came from (for notes).
    pub history_path: String,
}

/// Compares `new` against `base`. Errors when nothing at all can be matched.
pub fn compare(base: &Input, new: &Input, cfg: &GateConfig) -> Result<Comparison> {
    compare_with(base, new, cfg, &Design::default())
}

/// A run id's results on one side: (ok, not ok).
type Picked<'r> = (Vec<&'r RunResult>, Vec<&'r RunResult>);

fn pick<'r>(g: &Groups<'r>, id: &str) -> Picked<'r> {
    g.iter()
        .find(|(i, _, _)| i == id)
        .map_or((vec![], vec![]), |(_, ok, bad)| (ok.clone(), bad.clone()))
}

/// [`compare`] with what is known about the design: ABBA blocks make the comparison paired
/// by block; a history adds earlier baseline runs of the same spec and machine to the base.
pub fn compare_with(
    base: &Input,
    new: &Input,
    cfg: &GateConfig,
    design: &Design,
) -> Result<Comparison> {
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
    let blocked = design.base_blocks.is_some() || design.new_blocks.is_some();
    let history = design.history.filter(|_| !blocked);
    if design.history.is_some() && blocked {
        c.notes.push(
            "history not used: an A/B run holds its own baseline, paired block by block".into(),
        );
    }
    let mut acc = Acc::default();
    let mut measure_differs = false;
    // Base ids first, then ids only the new side has (judged against the history alone).
    let mut ids: Vec<&String> = bg.iter().map(|(i, _, _)| i).collect();
    ids.extend(
        ng.iter()
            .map(|(i, _, _)| i)
            .filter(|i| find(&bg, i).is_none()),
    );
    for id in ids {
        let ((b_ok, b_bad), (n_ok, n_bad)) = (pick(&bg, id), pick(&ng, id));
        let any = b_ok.iter().chain(&b_bad).chain(&n_ok).chain(&n_bad).next();
        let label = label_of(any.expect("an id has a result"));
        let rref = |side: &str, why: Option<String>| RunRef {
            id: id.clone(),
            label: label.clone(),
            side: side.to_string(),
            reason: why,
        };
        let in_base = !b_ok.is_empty() || !b_bad.is_empty();
        let in_new = !n_ok.is_empty() || !n_bad.is_empty();
        if !in_new {
            if !b_ok.is_empty() {
                c.missing.push(rref("", None));
            }
            continue;
        }
        let (hist_runs, hist) = match (history, n_ok.first()) {
            (Some(h), Some(r)) => {
                let seen: Vec<&RunResult> = base.results.iter().chain(new.results).collect();
                history::baselines(h, r, &seen, cfg.history_last)
            }
            _ => (0, Vec::new()),
        };
        let hist_ok = hist_runs > 0 && hist_runs >= cfg.history_min;
        if !in_base && !hist_ok {
            if !n_ok.is_empty() {
                c.extra.push(rref("", None));
            }
            continue;
        }
        if in_base && b_ok.is_empty() {
            c.not_ok.push(rref(base.name, Some(reason(b_bad[0]))));
            continue;
        }
        if n_ok.is_empty() {
            c.not_ok.push(rref(new.name, Some(reason(n_bad[0]))));
            continue;
        }
        if let Some(b0) = b_ok.first() {
            let strip = |r: &RunResult| r.config.measure.without_test_knobs();
            measure_differs |= strip(b0) != strip(n_ok[0]);
        }
        if history.is_some() && !hist_ok {
            acc.short_history.push(format!("{label} ({hist_runs})"));
        }
        let hist: Vec<&history::Entry> = if hist_ok { hist } else { Vec::new() };
        let blocks_of = |side_results: &[RunResult], blocks: &Option<Vec<usize>>, r: &RunResult| {
            let b = blocks.as_ref()?;
            let i = side_results.iter().position(|x| std::ptr::eq(x, r))?;
            b.get(i).copied()
        };
        // Each invocation with its headline value and its fast decile (if it has one).
        let side_inv =
            |rs: &[&RunResult], all: &[RunResult], blocks: &Option<Vec<usize>>, metric| {
                rs.iter()
                    .filter_map(|r| {
                        r.metric(metric).map(|mm| {
                            (
                                Invocation {
                                    value: mm.value,
                                    block: blocks_of(all, blocks, r),
                                    samples: mm.samples.len(),
                                },
                                invocations::fast_decile(&mm.samples, mm.better),
                            )
                        })
                    })
                    .collect::<Vec<_>>()
            };
        let explicit = !cfg.metrics.is_empty();
        let candidates: Vec<MetricId> = if explicit {
            cfg.metrics.clone()
        } else {
            MetricId::ALL
                .iter()
                .copied()
                .filter(|mm| b_ok.iter().chain(&n_ok).any(|r| r.metric(*mm).is_some()))
                .collect()
        };
        let mut metrics = Vec::new();
        let mut used: Vec<HistoryRef> = Vec::new();
        for metric in candidates {
            let mut bi = side_inv(&b_ok, base.results, &design.base_blocks, metric);
            let ni = side_inv(&n_ok, new.results, &design.new_blocks, metric);
            let hm: Vec<&&history::Entry> = hist.iter().filter(|e| e.metric == metric).collect();
            bi.extend(hm.iter().map(|e| {
                (
                    Invocation {
                        value: e.value,
                        block: None,
                        samples: e.n,
                    },
                    e.fast,
                )
            }));
            let (bi, ni, summary) = invocations::summarize(bi, ni, cfg.invocation_summary);
            let sampled =
                !bi.is_empty() && !ni.is_empty() && bi.iter().chain(&ni).all(|i| i.samples >= 2);
            if bi.is_empty() || ni.is_empty() {
                acc.add_one_sided(metric);
                continue;
            }
            let (xs, ys) = (pooled(&b_ok, metric), pooled(&n_ok, metric));
            let rule = cfg.rule(metric, id);
            let prior = cfg.spread(metric);
            let result = if invocations::replicated(&bi, &ni, prior) {
                compare_invocations(&bi, &ni, metric.better(), &rule, prior).map(|mut r| {
                    if summary == invocations::Summary::FastDecile {
                        let q = if metric.better() == Better::Higher {
                            "90th"
                        } else {
                            "10th"
                        };
                        r.method = format!(
                            "each invocation as the {q} percentile of its samples (fast-decile); {}",
                            r.method
                        );
                    }
                    if !hm.is_empty() {
                        r.method = format!(
                            "{} of the base from the history ({}); {}",
                            hm.len(),
                            design.history_path,
                            r.method
                        );
                    }
                    r
                })
            } else if xs.len() >= 2 && ys.len() >= 2 {
                acc.unreplicated = true;
                compare_unreplicated(&xs, &ys, metric.better(), &rule, cfg.unreplicated_band_pct)
            } else if explicit {
                compare_samples(&xs, &ys, metric.better(), &rule)
            } else {
                acc.add_single(metric);
                continue;
            }
            .map_err(|e| anyhow::anyhow!("run {label}, metric {metric}: {e}"))?;
            for e in &hm {
                if !used.iter().any(|u| u.started_at == e.started_at) {
                    used.push(HistoryRef::of(e));
                }
            }
            metrics.push(MetricComparison {
                metric,
                unit: metric.unit().to_string(),
                better: metric.better(),
                gated: cfg.gates_in(metric, sampled),
                result,
            });
        }
        used.sort_by(|a, b| a.started_at.cmp(&b.started_at));
        c.runs.push(RunComparison {
            id: id.clone(),
            label,
            base_results: b_ok.len(),
            new_results: n_ok.len(),
            history: used,
            metrics,
        });
    }
    if c.runs.is_empty() && c.not_ok.is_empty() {
        let ids = |g: &Groups| {
            let v: Vec<&str> = g.iter().take(4).map(|(i, _, _)| i.as_str()).collect();
            format!("{}{}", v.join(", "), if g.len() > 4 { ", ..." } else { "" })
        };
        if history.is_some() && base.results.is_empty() {
            bail!(
                "nothing to compare: the history {} holds fewer than {} earlier runs of any run of \
                 {} on this machine (history_min); append baseline runs with `effbench history append`",
                design.history_path,
                cfg.history_min,
                new.path
            );
        }
        bail!(
            "nothing to compare: no run of {} ({}) has the spec id of a run of {} ({}); \
             ids differ when the suite's backend, axes, seed or options differ",
            base.path,
            ids(&bg),
            new.path,
            ids(&ng)
        );
    }
    notes(&mut c, &acc, measure_differs, design);
    c.summary = summarize(&c.runs);
    Ok(c)
}

/// What the loop noticed, for the notes.
#[derive(Default)]
struct Acc {
    single_valued: Vec<MetricId>,
    one_sided: Vec<MetricId>,
    unreplicated: bool,
    short_history: Vec<String>,
}

impl Acc {
    fn add_single(&mut self, m: MetricId) {
        if !self.single_valued.contains(&m) {
            self.single_valued.push(m);
        }
    }
    fn add_one_sided(&mut self, m: MetricId) {
        if !self.one_sided.contains(&m) {
            self.one_sided.push(m);
        }
    }
}

fn names(ms: &[MetricId]) -> String {
    ms.iter().map(|m| m.name()).collect::<Vec<_>>().join(", ")
}

fn notes(c: &mut Comparison, acc: &Acc, measure: bool, design: &Design) {
    if c.base.machines != c.new.machines && !c.base.machines.is_empty() {
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
        if !side.injected_slowdown_pct.is_empty() {
            let d: Vec<String> = side
                .injected_slowdown_pct
                .iter()
                .map(|d| format!("{d} %"))
                .collect();
            c.notes.push(format!(
                "{}: results include an injected slowdown of {} of every measured iteration \
                 (--inject-slowdown, a test knob: a busy wait inside the timed iteration)",
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
    if acc.unreplicated {
        c.notes.push(format!(
            "one invocation per side: the noise between invocations (which on a shared machine \
             is several % from one process to the next) cannot be known, so only a change \
             beyond ±{} % (unreplicated_band_pct) can regress; for a real test use `run --ab`, \
             `gate --history` or a calibrated gate file (`gate --calibrate`)",
            c.settings.unreplicated_band_pct
        ));
    }
    if !acc.short_history.is_empty() {
        c.notes.push(format!(
            "history {} not used for {}: fewer than {} earlier runs on this machine (history_min)",
            design.history_path,
            acc.short_history.join(", "),
            c.settings.history_min
        ));
    }
    if !acc.single_valued.is_empty() {
        c.notes.push(format!(
            "not compared (one value per run and one run per side, no samples to test): {}; \
             repeat the runs (several results per side are the replicates) or use `run --ab`, \
             or name them with --metric",
            names(&acc.single_valued)
        ));
    }
    if !acc.one_sided.is_empty() {
        c.notes.push(format!(
            "not compared (absent on one side): {}",
            names(&acc.one_sided)
        ));
    }
    if let Some(line) = mde_line(c) {
        c.notes.push(line);
    }
}

/// The minimum detectable regression per gated metric (the largest over runs), one line.
fn mde_line(c: &Comparison) -> Option<String> {
    let mut per: Vec<(MetricId, f64)> = Vec::new();
    let mut unknown: Vec<MetricId> = Vec::new();
    for m in c.runs.iter().flat_map(|r| &r.metrics).filter(|m| m.gated) {
        match (m.result.unit, m.result.mde_pct) {
            (Unit::Invocation, Some(v)) => match per.iter_mut().find(|(x, _)| *x == m.metric) {
                Some((_, w)) => *w = w.max(v),
                None => per.push((m.metric, v)),
            },
            _ => {
                if !unknown.contains(&m.metric) {
                    unknown.push(m.metric);
                }
            }
        }
    }
    if per.is_empty() && unknown.is_empty() {
        return None;
    }
    let mut parts: Vec<String> = per.iter().map(|(m, v)| format!("{m} {v:.1} %")).collect();
    if !unknown.is_empty() {
        parts.push(format!(
            "{}: not known (one invocation per side)",
            names(&unknown)
        ));
    }
    Some(format!(
        "minimum detectable regression at alpha = {} with {:.0} % power (largest over runs): {}",
        c.settings.alpha,
        invocations::MDE_POWER * 100.0,
        parts.join(", ")
    ))
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

impl Comparison {
    /// Applies the gate's failure rules (`cfg`) to this comparison.
    pub fn gate_outcome(&self, cfg: &GateConfig) -> GateOutcome {
        let c = self;
        let mut failures = Vec::new();
        for run in &c.runs {
            for m in &run.metrics {
                if !m.gated {
                    continue;
                }
                let fail = match m.result.verdict {
                    Verdict::Regressed => true,
                    Verdict::Inconclusive => cfg.fail_on_inconclusive,
                    _ => false,
                };
                if fail {
                    failures.push(format!(
                        "{} {}: {} {:+.2} % ({})",
                        run.label, m.metric, m.result.verdict, m.result.change_pct, m.result.reason
                    ));
                }
            }
        }
        if cfg.fail_on_failed {
            for r in c.not_ok.iter().filter(|r| r.side == c.new.name) {
                failures.push(format!(
                    "{}: ok in {} but {} in {}",
                    r.label,
                    c.base.name,
                    r.reason.as_deref().unwrap_or("not ok"),
                    c.new.name
                ));
            }
        }
        if cfg.fail_on_missing {
            for r in &c.missing {
                failures.push(format!("{}: missing from {}", r.label, c.new.name));
            }
        }
        if c.runs.is_empty() && failures.is_empty() {
            failures.push("no run could be compared".into());
        }
        GateOutcome {
            passed: failures.is_empty(),
            failures,
        }
    }
}

#[cfg(test)]
#[path = "comparison_tests.rs"]
mod tests;
