//! The site's machine-readable `data.json` (every suite, run, metric with unit, direction,
//! source and statistics — no raw samples — plus Pareto membership and Dynascore) and the
//! small views the index and the suite header show.

use super::model::SuiteModel;
use super::views::{col_views, ColView};
use effbench_harness::stats::Stats;
use effbench_harness::{axes::AxisValue, Better};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Serialize)]
pub struct IndexRow {
    pub name: String,
    pub slug: String,
    pub description: String,
    pub scenario: String,
    pub runs: usize,
    pub machines: Vec<String>,
    pub metrics: usize,
    pub latest: String,
    pub front: usize,
}

pub fn index_rows(suites: &[SuiteModel]) -> Vec<IndexRow> {
    suites.iter().map(suite_header).collect()
}

pub fn suite_header(s: &SuiteModel) -> IndexRow {
    IndexRow {
        name: s.name.clone(),
        slug: s.slug.clone(),
        description: s.description.clone(),
        scenario: s.scenario.clone(),
        runs: s.entries.len(),
        machines: s.machines.clone(),
        metrics: s.columns.len(),
        latest: s.latest.clone(),
        front: s.entries.iter().filter(|e| e.front).count(),
    }
}

#[derive(Serialize)]
pub struct DynaView {
    pub metrics: Vec<DynaSlider>,
    pub objectives: Vec<String>,
}

#[derive(Serialize)]
pub struct DynaSlider {
    pub index: usize,
    pub name: String,
    pub unit: String,
    pub better: String,
    pub weight: f64,
    pub varies: bool,
    pub perf: bool,
    pub amrs: String,
}

pub fn dyna_view(s: &SuiteModel) -> Option<DynaView> {
    let d = s.dyna.as_ref()?;
    Some(DynaView {
        metrics: d
            .metrics
            .iter()
            .enumerate()
            .map(|(i, m)| DynaSlider {
                index: i,
                name: m.name.clone(),
                unit: s.columns[m.col].unit().unwrap_or("").to_string(),
                better: format!("{:?}", m.better).to_lowercase(),
                weight: m.weight,
                varies: m.varies,
                perf: i == 0,
                amrs: crate::format::sig3(d.amrs[i]),
            })
            .collect(),
        objectives: s.objectives.iter().map(|&c| s.columns[c].key()).collect(),
    })
}

#[derive(Serialize)]
pub struct MetricData<'a> {
    pub value: f64,
    pub unit: &'a str,
    pub better: Better,
    pub source: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<&'a Stats>,
}

#[derive(Serialize)]
pub struct RunData<'a> {
    pub key: &'a str,
    pub page: String,
    pub id: &'a str,
    pub label: String,
    pub params: &'a BTreeMap<String, AxisValue>,
    pub model: Option<&'a str>,
    pub hardware: String,
    pub host: &'a str,
    pub started_at: &'a str,
    pub finished_at: &'a str,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
    pub pareto_front: bool,
    pub dynascore: Option<f64>,
    pub rank: Option<usize>,
    pub metrics: BTreeMap<&'a str, MetricData<'a>>,
    /// Older results of the same run on the same machine that the leaderboard does not show.
    pub superseded: usize,
}

#[derive(Serialize)]
pub struct DynaData<'a> {
    /// Performance first; weights before normalisation.
    pub metrics: Vec<(&'a str, Better, f64, f64)>,
    pub amrs: &'a [f64],
    pub definition: &'static str,
}

#[derive(Serialize)]
pub struct SuiteData<'a> {
    pub name: &'a str,
    pub slug: &'a str,
    pub page: String,
    pub description: &'a str,
    pub scenario: &'a str,
    pub machines: &'a [String],
    pub columns: Vec<ColView>,
    pub pareto_objectives: Vec<String>,
    pub dynascore: Option<DynaData<'a>>,
    pub dynascore_note: Option<&'a str>,
    pub runs: Vec<RunData<'a>>,
}

#[derive(Serialize)]
pub struct SiteData<'a> {
    pub format: &'static str,
    pub generated_at: String,
    pub effbench_version: &'static str,
    pub suites: Vec<SuiteData<'a>>,
}

pub fn site_data<'a>(suites: &'a [SuiteModel]) -> SiteData<'a> {
    SiteData {
        format: "effbench-site-data/1",
        generated_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        effbench_version: env!("CARGO_PKG_VERSION"),
        suites: suites.iter().map(suite_data).collect(),
    }
}

fn suite_data<'a>(s: &'a SuiteModel) -> SuiteData<'a> {
    SuiteData {
        name: &s.name,
        slug: &s.slug,
        page: format!("suites/{}.html", s.slug),
        description: &s.description,
        scenario: &s.scenario,
        machines: &s.machines,
        columns: col_views(&s.columns),
        pareto_objectives: s.objectives.iter().map(|&c| s.columns[c].key()).collect(),
        dynascore: s.dyna.as_ref().map(|d| DynaData {
            metrics: d.metrics.iter().map(|m| (m.name.as_str(), m.better, m.weight, m.offset)).collect(),
            amrs: &d.amrs,
            definition: "metrics.html#dynascore (Dynaboard): u = dir*M + offset; AMRS from performance-sorted neighbours; score = sum w*u/|AMRS|, weights normalised",
        }),
        dynascore_note: s.dyna_note.as_deref(),
        runs: s
            .entries
            .iter()
            .map(|e| {
                let r = e.r;
                RunData {
                    key: &e.key,
                    page: format!("runs/{}.html", e.key),
                    id: &r.id,
                    label: r.label(),
                    params: &r.config.params,
                    model: r.model.as_ref().map(|m| m.name.as_str()),
                    hardware: crate::columns::hardware(&r.env),
                    host: &r.env.hostname,
                    started_at: &r.started_at,
                    finished_at: &r.finished_at,
                    status: format!("{:?}", r.status.state).to_lowercase(),
                    reason: r.status.reason.as_deref(),
                    pareto_front: e.front,
                    dynascore: e.score,
                    rank: e.rank,
                    metrics: r
                        .metrics
                        .iter()
                        .map(|m| {
                            (
                                m.name.name(),
                                MetricData {
                                    value: m.value,
                                    unit: &m.unit,
                                    better: m.better,
                                    source: &m.source,
                                    stats: m.stats.as_ref(),
                                },
                            )
                        })
                        .collect(),
                    superseded: e.older.len(),
                }
            })
            .collect(),
    }
}

/// One row of `metrics.html`: a metric of the metric table.
#[derive(Serialize)]
pub struct MetricRow {
    pub name: &'static str,
    pub unit: &'static str,
    pub better: Better,
    pub description: &'static str,
}

/// Every metric, in table order, for `metrics.html`.
pub fn metric_rows() -> Vec<MetricRow> {
    (effbench_harness::MetricId::ALL.iter())
        .map(|m| MetricRow {
            name: m.name(),
            unit: m.unit(),
            better: m.better(),
            description: m.description(),
        })
        .collect()
}
