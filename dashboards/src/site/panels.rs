//! Suite-page panels beyond the leaderboard: budget tracks (the suite's `[[tracks]]`, ranked
//! by `effbench_harness::analysis::tracks`), the ELUE-style encoder view (quality against
//! parameters and FLOPs per embedding, with the Pareto fronts of both pairs) and scaling
//! curves (latency, memory and throughput against a swept length axis, one line per
//! configuration, and where a `[sweep]` ended and why).

use super::model::{scatter, Plot, SuiteModel};
use super::svg::{self, AxisSpec, Series};
use crate::columns::{Column, Stat};
use crate::format;
use effbench_harness::analysis::pareto;
use effbench_harness::analysis::tracks::{rank, tracks_of};
use effbench_harness::records::RunState;
use effbench_harness::warnings::WarningKind;
use effbench_harness::{Better, MetricId, RunResult};
use serde::Serialize;

#[derive(Serialize)]
pub struct TrackRow {
    pub rank: usize,
    pub key: String,
    pub label: String,
    pub value: String,
}

#[derive(Serialize)]
pub struct TrackOut {
    pub key: String,
    pub label: String,
    pub reasons: String,
}

#[derive(Serialize)]
pub struct TrackPanel {
    pub name: String,
    pub description: String,
    pub objective: String,
    pub unit: String,
    pub budgets: String,
    pub rows: Vec<TrackRow>,
    pub out: Vec<TrackOut>,
}

#[derive(Serialize)]
pub struct ElueRow {
    pub key: String,
    pub label: String,
    pub model: String,
    pub quality: String,
    pub params: String,
    pub flops: String,
    pub front_params: bool,
    pub front_flops: bool,
}

#[derive(Serialize)]
pub struct EluePanel {
    pub quality: String,
    pub rows: Vec<ElueRow>,
    pub plots: Vec<(String, String)>,
}

#[derive(Serialize)]
pub struct ScalingPanel {
    pub axis: String,
    pub plots: Vec<(String, String)>,
    /// Where a sweep ended, one line each.
    pub stops: Vec<String>,
}

#[derive(Serialize)]
pub struct Panels {
    pub tracks: Vec<TrackPanel>,
    pub elue: Option<EluePanel>,
    pub scaling: Option<ScalingPanel>,
}

pub fn panels(s: &SuiteModel) -> Panels {
    Panels {
        tracks: tracks(s),
        elue: elue(s),
        scaling: scaling(s),
    }
}

fn key_of(s: &SuiteModel, id: &str) -> String {
    s.entries
        .iter()
        .find(|e| e.r.id == id)
        .map_or_else(String::new, |e| e.key.clone())
}

fn tracks(s: &SuiteModel) -> Vec<TrackPanel> {
    let runs: Vec<&RunResult> = s.entries.iter().map(|e| e.r).collect();
    let owned: Vec<RunResult> = runs.iter().map(|r| (*r).clone()).collect();
    tracks_of(&owned)
        .iter()
        .filter_map(|t| rank(t, &runs, &|r: &RunResult| r.label()).ok())
        .map(|r| TrackPanel {
            rows: r
                .ranked
                .iter()
                .map(|x| TrackRow {
                    rank: x.rank,
                    key: key_of(s, &x.id),
                    label: x.label.clone(),
                    value: format!("{} {}", format::value(x.value, &r.unit), r.unit),
                })
                .collect(),
            out: r
                .out
                .iter()
                .map(|o| TrackOut {
                    key: key_of(s, &o.id),
                    label: o.label.clone(),
                    reasons: o.reasons.join("; "),
                })
                .collect(),
            budgets: if r.budgets.is_empty() {
                "none".into()
            } else {
                r.budgets.join(", ")
            },
            name: r.name,
            description: r.description,
            objective: r.objective,
            unit: r.unit,
        })
        .collect()
}

fn col(s: &SuiteModel, id: MetricId) -> Option<usize> {
    s.columns
        .iter()
        .position(|c| *c == Column::Metric(id, Stat::Value))
}

/// Quality (first of nDCG@10, recall@10, overlap@10 the runs have) against parameters and
/// FLOPs per embedding, for suites whose runs report both.
fn elue(s: &SuiteModel) -> Option<EluePanel> {
    let flops = col(s, MetricId::FlopsPerEmbedding)?;
    let params = col(s, MetricId::ParamsTotal)?;
    let (qid, quality) = [
        MetricId::NdcgAt10,
        MetricId::RecallAt10,
        MetricId::OverlapAt10,
    ]
    .into_iter()
    .find_map(|id| col(s, id).map(|c| (id, c)))?;
    let used: Vec<usize> = (0..s.entries.len())
        .filter(|&i| {
            let e = &s.entries[i];
            e.r.status.state == RunState::Ok
                && [flops, params, quality]
                    .iter()
                    .all(|&c| e.values[c].is_some())
        })
        .collect();
    if used.len() < 2 {
        return None;
    }
    let front = |x: usize| -> Vec<usize> {
        let pts: Vec<Vec<f64>> = used
            .iter()
            .map(|&i| {
                vec![
                    s.entries[i].values[quality].unwrap(),
                    s.entries[i].values[x].unwrap(),
                ]
            })
            .collect();
        pareto::front(&pts, &[Better::Higher, Better::Lower])
            .unwrap_or_default()
            .into_iter()
            .map(|k| used[k])
            .collect()
    };
    let (fp, ff) = (front(params), front(flops));
    let mut order = used.clone();
    order.sort_by(|&a, &b| {
        let v = |i: usize| s.entries[i].values[quality].unwrap_or(f64::NAN);
        v(b).total_cmp(&v(a))
    });
    let num = |i: usize, c: usize| {
        let u = s.columns[c].unit().unwrap_or("");
        s.entries[i].values[c].map_or("-".into(), |v| format::value(v, u))
    };
    let plots = [params, flops]
        .iter()
        .filter_map(|&x| scatter(&s.columns, &s.entries, x, quality))
        .map(|p: Plot| (p.caption, p.svg))
        .collect();
    Some(EluePanel {
        quality: qid.name().to_string(),
        rows: order
            .iter()
            .map(|&i| ElueRow {
                key: s.entries[i].key.clone(),
                label: s.entries[i].r.label(),
                model: s.entries[i]
                    .r
                    .model
                    .as_ref()
                    .map(|m| m.name.clone())
                    .unwrap_or_default(),
                quality: num(i, quality),
                params: num(i, params),
                flops: num(i, flops),
                front_params: fp.contains(&i),
                front_flops: ff.contains(&i),
            })
            .collect(),
        plots,
    })
}

/// Axes a scaling sweep varies.
const LENGTH_AXES: [&str; 2] = ["prompt_len", "seq_len"];
/// Metrics drawn against the length axis, when the runs have them.
const CURVES: [MetricId; 8] = [
    MetricId::Ttft,
    MetricId::E2eLatency,
    MetricId::BatchLatency,
    MetricId::PeakRss,
    MetricId::PrefillThroughput,
    MetricId::TotalThroughput,
    MetricId::EmbeddingThroughput,
    MetricId::OutputThroughput,
];

fn scaling(s: &SuiteModel) -> Option<ScalingPanel> {
    let axis: &str = LENGTH_AXES
        .iter()
        .copied()
        .find(|a| s.axes.iter().any(|x| x.as_str() == *a))?;
    let others: Vec<&String> = s.axes.iter().filter(|a| a.as_str() != axis).collect();
    let ok: Vec<usize> = (0..s.entries.len())
        .filter(|&i| s.entries[i].r.status.state == RunState::Ok)
        .collect();
    let x_of = |i: usize| s.entries[i].r.config.param(axis).and_then(|v| v.as_f64());
    let group_of = |i: usize| {
        let l = s.entries[i]
            .r
            .config
            .label(&others.iter().map(|a| a.to_string()).collect::<Vec<_>>());
        if l.is_empty() {
            "all runs".to_string()
        } else {
            l
        }
    };
    let mut plots = Vec::new();
    for id in CURVES {
        let Some(c) = col(s, id) else { continue };
        let mut series: Vec<Series> = Vec::new();
        for &i in &ok {
            let (Some(x), Some(y)) = (x_of(i), s.entries[i].values[c]) else {
                continue;
            };
            let g = group_of(i);
            match series.iter_mut().find(|se| se.name == g) {
                Some(se) => se.points.push([x, y]),
                None => series.push(Series {
                    name: g,
                    points: vec![[x, y]],
                }),
            }
        }
        // a curve needs three lengths; two are a comparison the leaderboard already shows
        if !series.iter().any(|se| se.points.len() >= 3) {
            continue;
        }
        let caption = format!("{} vs {axis}", id.name());
        let ya = format!("{} ({})", id.name(), id.unit());
        let svg = svg::lines(
            &series,
            &AxisSpec {
                title: axis,
                unit: "count",
                allow_log: true,
            },
            &AxisSpec {
                title: &ya,
                unit: id.unit(),
                allow_log: true,
            },
            &caption,
        );
        plots.push((caption, svg));
    }
    let stops: Vec<String> = s
        .entries
        .iter()
        .flat_map(|e| {
            e.r.warnings
                .iter()
                .filter(|w| w.kind == WarningKind::SweepStopped)
        })
        .map(|w| w.message.clone())
        .collect();
    (!plots.is_empty() || !stops.is_empty()).then(|| ScalingPanel {
        axis: axis.to_string(),
        plots,
        stops,
    })
}
