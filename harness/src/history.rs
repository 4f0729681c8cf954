//! Benchmark history: an append-only JSON-lines file (one [`Entry`] per run and metric,
//! default `results/history.jsonl`) and the trends the site plots from it, with change
//! points ([`crate::analysis::changepoint`]).
//!
//! For the site: `read(path)` then `trends(&entries, &ChangePointConfig::default())` gives one
//! [`Trend`] per (suite, run id, metric, machine): its points in time order and the change
//! points and segments found in their values; `effbench history trends --format json` prints
//! the same as a [`Trends`] document (JSON Schemas `history-entry.v1` and `trends.v1` in
//! `harness/schema/`). Machines are part of the key because timings from different machines
//! are not one series. Results measured with `--inject-delay`/`--inject-slowdown` are never
//! appended. [`baselines`] picks a new result's earlier runs for `gate --history`.

use crate::analysis::changepoint::{detect, segments, ChangePoint, ChangePointConfig, Segment};
use crate::metric::{Better, MetricId};
use crate::records::{RunResult, RunState};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;

pub const DEFAULT_FILE: &str = "results/history.jsonl";

/// One line of the history file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Entry {
    /// Line format version (1).
    pub v: u32,
    /// When the line was appended (RFC 3339 UTC).
    pub recorded_at: String,
    /// When the run started; orders the points of a trend.
    pub started_at: String,
    pub suite: String,
    pub run_id: String,
    /// `axis=value` over the suite's varying axes.
    pub label: String,
    pub metric: MetricId,
    pub unit: String,
    pub better: Better,
    /// The metric's headline value (mean of the samples, or the aggregate).
    pub value: f64,
    /// Samples behind `value` (0 for a single value).
    pub n: usize,
    /// The decile at the better end of the samples (`gate`'s default invocation summary,
    /// `analysis::invocations::fast_decile`); absent with fewer than 10 samples and in
    /// entries appended by effbench versions before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fast: Option<f64>,
    /// 95 % CI of the mean, when there are samples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci95: Option<[f64; 2]>,
    pub git_commit: String,
    pub git_dirty: bool,
    /// CPU model and thread count (plus GPU names).
    pub machine: String,
    /// Free text from `--tag` (branch, PR number, CI run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

/// The machine key of a result.
pub fn machine(r: &RunResult) -> String {
    let mut m = format!("{} ({} threads)", r.env.cpu_model, r.env.cpu_threads);
    for g in &r.env.gpus {
        m.push_str(&format!(" + {}", g.name));
    }
    m
}

/// Entries for every metric of every ok result; results with an injected delay or slowdown
/// are skipped
/// (returned second, by id).
pub fn entries_from(results: &[RunResult], tag: Option<&str>) -> (Vec<Entry>, Vec<String>) {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    for r in results.iter().filter(|r| r.status.state == RunState::Ok) {
        if r.config.measure.is_injected() {
            skipped.push(r.id.clone());
            continue;
        }
        for m in &r.metrics {
            out.push(Entry {
                v: 1,
                recorded_at: now.clone(),
                started_at: r.started_at.clone(),
                suite: r.suite.name.clone(),
                run_id: r.id.clone(),
                label: r.label(),
                metric: m.name,
                unit: m.unit.clone(),
                better: m.better,
                value: m.value,
                n: m.stats.as_ref().map_or(0, |s| s.count),
                fast: crate::analysis::invocations::fast_decile(&m.samples, m.better),
                ci95: m.stats.as_ref().map(|s| s.ci95_mean),
                git_commit: r.env.git_commit.clone(),
                git_dirty: r.env.git_dirty,
                machine: machine(r),
                tag: tag.map(str::to_string),
            });
        }
    }
    (out, skipped)
}

/// Reads a history file. A malformed line is an error naming `file:line`, except a torn last
/// line (no newline at the end: an append cut short), which is skipped and reported.
pub fn read(path: &Path) -> Result<(Vec<Entry>, Option<String>)> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), None)),
        Err(e) => bail!("cannot read history '{}': {e}", path.display()),
    };
    let mut out = Vec::new();
    let mut torn = None;
    let lines: Vec<&str> = text.split('\n').collect();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Entry>(line) {
            Ok(e) => out.push(e),
            Err(_) if i == lines.len() - 1 => {
                torn = Some(format!(
                    "{}:{}: incomplete last line (an interrupted append) ignored",
                    path.display(),
                    i + 1
                ));
            }
            Err(e) => bail!("{}:{}: not a history entry: {e}", path.display(), i + 1),
        }
    }
    Ok((out, torn))
}

/// The history's baselines for a new result `like`: entries of the same suite, run id and
/// machine, not from a run in `seen` (the results being compared, which may have been appended
/// already), of the `last` most recent runs (by start time). Returns the number of runs and
/// their entries (every metric).
pub fn baselines<'e>(
    entries: &'e [Entry],
    like: &RunResult,
    seen: &[&RunResult],
    last: usize,
) -> (usize, Vec<&'e Entry>) {
    let m = machine(like);
    let mut matching: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.suite == like.suite.name && e.run_id == like.id && e.machine == m)
        .filter(|e| {
            !seen
                .iter()
                .any(|r| r.id == e.run_id && r.started_at == e.started_at)
        })
        .collect();
    let mut starts: Vec<&str> = matching.iter().map(|e| e.started_at.as_str()).collect();
    starts.sort_unstable();
    starts.dedup();
    let keep: Vec<&str> = starts[starts.len().saturating_sub(last)..].to_vec();
    matching.retain(|e| keep.contains(&e.started_at.as_str()));
    (keep.len(), matching)
}

fn key(e: &Entry) -> (String, String, MetricId) {
    (e.run_id.clone(), e.started_at.clone(), e.metric)
}

/// Appends the entries not already in the file (same run id, start time and metric) in one
/// write; returns how many were appended. An incomplete last line (an append cut short) is
/// cut off first, so it can never merge with a new line.
pub fn append(path: &Path, entries: &[Entry]) -> Result<usize> {
    let (existing, torn) = read(path)?;
    if torn.is_some() {
        let text = std::fs::read(path)?;
        let keep = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .with_context(|| format!("cannot open history '{}'", path.display()))?;
        f.set_len(keep as u64)
            .with_context(|| format!("cannot repair history '{}'", path.display()))?;
    }
    let seen: std::collections::HashSet<_> = existing.iter().map(key).collect();
    let mut text = String::new();
    let mut n = 0;
    for e in entries.iter().filter(|e| !seen.contains(&key(e))) {
        text.push_str(&serde_json::to_string(e)?);
        text.push('\n');
        n += 1;
    }
    if n == 0 {
        return Ok(0);
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create directory '{}'", dir.display()))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open history '{}'", path.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|_| f.sync_all())
        .with_context(|| format!("cannot append to history '{}'", path.display()))?;
    Ok(n)
}

/// One point of a trend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Point {
    pub started_at: String,
    pub git_commit: String,
    pub git_dirty: bool,
    pub value: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci95: Option<[f64; 2]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

/// A change point with what the reader needs next to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TrendChange {
    #[serde(flatten)]
    pub change: ChangePoint,
    /// `regression` or `improvement` by the metric's `better`.
    pub kind: String,
    /// The first point at the new level.
    pub started_at: String,
    pub git_commit: String,
}

/// One metric of one run configuration on one machine, over time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Trend {
    pub suite: String,
    pub run_id: String,
    pub label: String,
    pub metric: MetricId,
    pub unit: String,
    pub better: Better,
    pub machine: String,
    pub points: Vec<Point>,
    pub change_points: Vec<TrendChange>,
    pub segments: Vec<Segment>,
}

/// `effbench history trends --format json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Trends {
    /// Always `effbench-trends`.
    pub kind: String,
    pub version: u32,
    pub config: ChangePointConfig,
    pub trends: Vec<Trend>,
}

/// Groups entries into trends (first-seen order; points by start time) and finds their
/// change points.
pub fn trends(entries: &[Entry], cfg: &ChangePointConfig) -> Vec<Trend> {
    let mut out: Vec<Trend> = Vec::new();
    for e in entries {
        let pos = out.iter().position(|t| {
            t.run_id == e.run_id
                && t.metric == e.metric
                && t.machine == e.machine
                && t.suite == e.suite
        });
        let t = match pos {
            Some(p) => &mut out[p],
            None => {
                out.push(Trend {
                    suite: e.suite.clone(),
                    run_id: e.run_id.clone(),
                    label: e.label.clone(),
                    metric: e.metric,
                    unit: e.unit.clone(),
                    better: e.better,
                    machine: e.machine.clone(),
                    points: Vec::new(),
                    change_points: Vec::new(),
                    segments: Vec::new(),
                });
                out.last_mut().expect("just pushed")
            }
        };
        t.label = e.label.clone();
        t.points.push(Point {
            started_at: e.started_at.clone(),
            git_commit: e.git_commit.clone(),
            git_dirty: e.git_dirty,
            value: e.value,
            ci95: e.ci95,
            tag: e.tag.clone(),
        });
    }
    for t in &mut out {
        t.points.sort_by(|a, b| a.started_at.cmp(&b.started_at));
        let values: Vec<f64> = t.points.iter().map(|p| p.value).collect();
        let cps = detect(&values, cfg);
        t.segments = segments(&values, &cps);
        t.change_points = cps
            .into_iter()
            .map(|c| {
                let worse = (c.after_mean - c.before_mean) * t.better.sign() < 0.0;
                let p = &t.points[c.index];
                TrendChange {
                    kind: if worse { "regression" } else { "improvement" }.into(),
                    started_at: p.started_at.clone(),
                    git_commit: p.git_commit.clone(),
                    change: c,
                }
            })
            .collect();
    }
    out
}

#[cfg(test)]
#[path = "history_tests.rs"]
mod tests;
