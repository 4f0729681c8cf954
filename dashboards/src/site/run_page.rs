//! The page of one run: status, every metric's statistics, latency (and any sampled metric)
//! histogram and CDF, time series (energy, power, memory ... whatever `series` holds), the
//! model, the full resolved configuration, the environment fingerprint, warnings, the log,
//! and earlier results of the same run on the same machine.

use super::model::{Entry, SuiteModel};
use super::svg::{self, AxisSpec};
use crate::format;
use effbench_harness::{MetricId, RunResult};
use serde::Serialize;

#[derive(Serialize)]
pub struct MetricRow {
    pub name: String,
    pub desc: String,
    pub unit: String,
    pub better: String,
    pub value: String,
    pub n: String,
    pub mean: String,
    pub stdev: String,
    pub cv: String,
    pub min: String,
    pub p50: String,
    pub p90: String,
    pub p95: String,
    pub p99: String,
    pub max: String,
    pub ci_mean: String,
    pub ci_median: String,
    pub source: String,
}

#[derive(Serialize)]
pub struct Chart {
    pub title: String,
    pub note: String,
    /// Rendered SVG (its text already escaped).
    pub svgs: Vec<String>,
}

#[derive(Serialize)]
pub struct History {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

#[derive(Serialize)]
pub struct RunView {
    pub title: String,
    pub suite: String,
    pub suite_slug: String,
    pub id: String,
    pub status: String,
    pub reason: String,
    pub started: String,
    pub finished: String,
    pub iterations: u64,
    pub measured_s: String,
    pub hardware: String,
    pub rank: String,
    pub front: bool,
    pub params: Vec<(String, String)>,
    pub metrics: Vec<MetricRow>,
    pub charts: Vec<Chart>,
    /// Where the run sits under the device's measured roofs (inference runs with probes).
    pub roofline: Option<Chart>,
    pub series: Vec<Chart>,
    pub warnings: Vec<(String, String, String)>,
    pub model: Vec<(String, String)>,
    pub config_json: String,
    pub suite_info: Vec<(String, String)>,
    pub stats_method: Vec<(String, String)>,
    pub env: Vec<(String, String)>,
    pub history: Option<History>,
    pub log: Vec<String>,
}

fn kv(pairs: &[(&str, String)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn metric_rows(r: &RunResult) -> Vec<MetricRow> {
    r.metrics
        .iter()
        .map(|m| {
            let f = |v: f64| format::value(v, &m.unit);
            let s = m.stats.as_ref();
            let g = |pick: fn(&effbench_harness::stats::Stats) -> f64| {
                s.map_or(String::new(), |s| f(pick(s)))
            };
            MetricRow {
                name: m.name.name().to_string(),
                desc: m.name.description().to_string(),
                unit: m.unit.clone(),
                better: format!("{:?}", m.better).to_lowercase(),
                value: f(m.value),
                n: match (s, m.samples_total) {
                    (Some(s), Some(t)) => format!("{} (of {t})", s.count),
                    (Some(s), None) => s.count.to_string(),
                    _ => String::new(),
                },
                mean: g(|s| s.mean),
                stdev: g(|s| s.stdev),
                cv: s.map_or(String::new(), |s| format::sig3(s.cv_pct)),
                min: g(|s| s.min),
                p50: g(|s| s.p50),
                p90: g(|s| s.p90),
                p95: g(|s| s.p95),
                p99: g(|s| s.p99),
                max: g(|s| s.max),
                ci_mean: s.map_or(String::new(), |s| {
                    format!("[{}, {}]", f(s.ci95_mean[0]), f(s.ci95_mean[1]))
                }),
                ci_median: s.map_or(String::new(), |s| {
                    format!("[{}, {}]", f(s.ci95_median[0]), f(s.ci95_median[1]))
                }),
                source: m.source.clone(),
            }
        })
        .collect()
}

fn env_rows(r: &RunResult) -> Vec<(String, String)> {
    let e = &r.env;
    let mut v = kv(&[
        ("hardware", crate::columns::hardware(e)),
        ("cpu", e.cpu_model.clone()),
        (
            "cores / threads",
            format!("{} / {}", e.cpu_cores_physical, e.cpu_threads),
        ),
        ("ram", format::bytes(e.ram_bytes as f64)),
        (
            "cpu governor",
            e.cpu_governor.clone().unwrap_or_else(|| "unknown".into()),
        ),
        ("os", e.os.clone()),
        ("kernel", e.kernel.clone()),
        ("arch / target", format!("{} / {}", e.arch, e.target)),
        ("host", e.hostname.clone()),
        ("nvml", e.nvml.clone()),
        (
            "effbench",
            format!("{} ({} build)", e.effbench_version, e.build_profile),
        ),
        (
            "git commit",
            format!(
                "{}{}",
                e.git_commit,
                if e.git_dirty {
                    " (with uncommitted changes)"
                } else {
                    ""
                }
            ),
        ),
        ("rustc", e.rustc_version.clone()),
        ("features", e.features.join(", ")),
    ]);
    if let Some(p) = &e.peak_flops {
        v.push((
            "matmul probe".into(),
            format!(
                "{} FLOP/s on {} ({}): {}",
                format::sig3(p.flops_per_s),
                p.device,
                p.dtype,
                p.method
            ),
        ));
    }
    if let Some(p) = &e.peak_bandwidth {
        v.push((
            "bandwidth probe".into(),
            format!(
                "{} GB/s on {}: {}",
                format::sig3(p.bytes_per_s / 1e9),
                p.device,
                p.method
            ),
        ));
    }
    for g in &e.gpus {
        v.push((
            format!("gpu {}", g.index),
            format!(
                "{} ({}){}",
                g.name,
                format::bytes(g.memory_bytes as f64),
                g.uuid.as_ref().map_or(String::new(), |u| format!(" {u}"))
            ),
        ));
    }
    v
}

fn model_rows(r: &RunResult) -> Vec<(String, String)> {
    let Some(m) = &r.model else { return Vec::new() };
    let mut v = kv(&[
        ("name", m.name.clone()),
        (
            "format / arch / dtype",
            format!("{} / {} / {}", m.format, m.arch, m.dtype),
        ),
        (
            "parameters",
            format!(
                "{} ({} non-embedding)",
                m.params_total, m.params_non_embedding
            ),
        ),
        (
            "bytes on disk",
            format!("{} ({})", m.file_bytes, format::bytes(m.file_bytes as f64)),
        ),
        (
            "bytes loaded",
            format!(
                "{} ({})",
                m.loaded_bytes,
                format::bytes(m.loaded_bytes as f64)
            ),
        ),
        ("path", m.path.clone().unwrap_or_default()),
        ("sha256", m.sha256.clone().unwrap_or_default()),
    ]);
    for (k, val) in &m.details {
        v.push((k.clone(), val.to_string()));
    }
    v
}

/// Sampled metrics in these units get a histogram and a CDF (latencies and durations; the
/// statistics table covers the rest).
const TIME_UNITS: [&str; 5] = ["ns", "us", "µs", "ms", "s"];

fn charts(r: &RunResult) -> Vec<Chart> {
    r.metrics
        .iter()
        .filter(|m| m.samples.len() >= 2 && TIME_UNITS.contains(&m.unit.as_str()))
        .map(|m| {
            let title = format!("{} ({})", m.name.name(), m.unit);
            Chart {
                note: match m.samples_total {
                    Some(t) => format!("{} of {t} samples stored", m.samples.len()),
                    None => format!("{} samples", m.samples.len()),
                },
                svgs: vec![svg::distribution(&m.samples, &title, &m.unit)],
                title,
            }
        })
        .collect()
}

fn roofline_chart(r: &RunResult) -> Option<Chart> {
    let svg = super::roofline::chart(r)?;
    let mut note = Vec::new();
    for (id, label) in [
        (MetricId::Mbu, "MBU"),
        (MetricId::PrefillMfu, "prefill MFU"),
    ] {
        if let Some(m) = r.metric(id) {
            note.push(format!("{label} {} %", format::sig3(m.value)));
        }
    }
    note.push("roofs measured by the probes in the environment below".into());
    Some(Chart {
        title: "roofline".into(),
        note: note.join(", "),
        svgs: vec![svg],
    })
}

fn series(r: &RunResult) -> Vec<Chart> {
    r.series
        .iter()
        .map(|s| {
            let tx = if TIME_UNITS.contains(&s.x_unit.as_str()) {
                format!("time ({})", s.x_unit)
            } else {
                s.x_unit.clone()
            };
            let ty = format!("{} ({})", s.name, s.y_unit);
            Chart {
                note: format!(
                    "source: {}{}",
                    s.source,
                    s.period_ms.map_or(String::new(), |p| format!(
                        ", sampled every {} ms",
                        format::sig3(p)
                    ))
                ),
                svgs: vec![svg::line(
                    &s.points,
                    &AxisSpec {
                        title: &tx,
                        unit: &s.x_unit,
                        allow_log: false,
                    },
                    &AxisSpec {
                        title: &ty,
                        unit: &s.y_unit,
                        allow_log: false,
                    },
                    &ty,
                )],
                title: ty,
            }
        })
        .collect()
}

fn history(e: &Entry, m: &SuiteModel) -> Option<History> {
    if e.older.is_empty() {
        return None;
    }
    let cols: Vec<&crate::columns::Column> = m.columns.iter().take(8).collect();
    let mut headers = vec!["date".to_string(), "status".to_string()];
    headers.extend(cols.iter().map(|c| c.header()));
    let row = |r: &RunResult| {
        let mut v = vec![
            crate::columns::date(&r.started_at),
            format!("{:?}", r.status.state).to_lowercase(),
        ];
        v.extend(
            cols.iter()
                .map(|c| crate::export::display(&c.cell(r), None, c.is_estimate(r))),
        );
        v
    };
    let mut rows = vec![row(e.r)];
    rows.extend(e.older.iter().map(row));
    Some(History { headers, rows })
}

pub fn view(e: &Entry, m: &SuiteModel) -> RunView {
    let r = e.r;
    RunView {
        title: r.label(),
        suite: r.suite.name.clone(),
        suite_slug: m.slug.clone(),
        id: r.id.clone(),
        status: format!("{:?}", r.status.state).to_lowercase(),
        reason: r.status.reason.clone().unwrap_or_default(),
        started: r.started_at.clone(),
        finished: r.finished_at.clone(),
        iterations: r.iterations,
        measured_s: format::sig3(r.measured_s),
        hardware: crate::columns::hardware(&r.env),
        rank: e.rank.map_or(String::new(), |k| k.to_string()),
        front: e.front,
        params: r
            .config
            .params
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect(),
        metrics: metric_rows(r),
        charts: charts(r),
        roofline: roofline_chart(r),
        series: series(r),
        warnings: r
            .warnings
            .iter()
            .map(|w| (format!("{:?}", w.kind), w.message.clone(), w.hint.clone()))
            .collect(),
        model: model_rows(r),
        config_json: serde_json::to_string_pretty(&r.config).unwrap_or_default(),
        suite_info: kv(&[
            ("name", r.suite.name.clone()),
            ("description", r.suite.description.clone()),
            ("file", r.suite.file.clone().unwrap_or_default()),
            ("sha256", r.suite.sha256.clone().unwrap_or_default()),
            ("varying axes", r.suite.varying_axes.join(", ")),
        ]),
        stats_method: kv(&[
            ("percentiles", r.stats_method.percentile.clone()),
            ("standard deviation", r.stats_method.stdev.clone()),
            ("confidence intervals", r.stats_method.ci.clone()),
            ("bootstrap seed", r.stats_method.bootstrap_seed.to_string()),
        ]),
        env: env_rows(r),
        history: history(e, m),
        log: r.log.clone(),
    }
}
