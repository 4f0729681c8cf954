//! The site's view of one suite: its rows (one per run and machine, newest result), the
//! numeric columns (every metric the results carry, with units from the metric table), the
//! Dynascore set-up and default ranking, the Pareto front and the scatter plots.
//!
//! Dynascore: the metrics every successful run has, set up by the harness's one default policy
//! ([`default_setup`]: performance 4, throughput, latency and memory 1, the rest 0 with a
//! slider to raise it; budgets as offsets), the same set-up `analysis.json` uses. The Pareto
//! front marked in the table is the front over the metrics with a non-zero default weight.
//!
//! Leaderboards compare measurements only: a value whose source is an estimate (e.g.
//! `estimate-tdp` energy and what derives from it) is left out of the table, the plots and
//! the Dynascore; the page names the metrics concerned and run pages still show them, marked.

use super::svg::{self, AxisSpec, Point};
use crate::columns::{hardware, Column, Stat};
use effbench_harness::analysis::dynascore::{default_setup, dynascore, DynaMetric};
use effbench_harness::analysis::pareto;
use effbench_harness::records::RunState;
use effbench_harness::{Better, MetricId, RunResult};

pub struct Entry<'a> {
    pub r: &'a RunResult,
    /// File name stem of the run page.
    pub key: String,
    /// Older results of the same run on the same machine, newest first.
    pub older: &'a [RunResult],
    /// Index into the suite's machines.
    pub machine: usize,
    /// One value per numeric column.
    pub values: Vec<Option<f64>>,
    pub front: bool,
    pub score: Option<f64>,
    pub rank: Option<usize>,
}

pub struct DynaCol {
    /// Index into the numeric columns.
    pub col: usize,
    pub name: String,
    pub better: Better,
    pub weight: f64,
    pub offset: f64,
    /// False when every run has the same value (its slider is disabled).
    pub varies: bool,
}

pub struct Dyna {
    pub metrics: Vec<DynaCol>,
    /// Entries that take part (successful runs), by index.
    pub rows: Vec<usize>,
    pub amrs: Vec<f64>,
}

pub struct Plot {
    pub caption: String,
    pub svg: String,
}

pub struct SuiteModel<'a> {
    pub name: String,
    pub slug: String,
    pub description: String,
    pub scenario: String,
    pub entries: Vec<Entry<'a>>,
    pub columns: Vec<Column>,
    /// Axes whose values differ between the suite's runs.
    pub axes: Vec<String>,
    pub machines: Vec<String>,
    pub dyna: Option<Dyna>,
    /// Why there is no Dynascore panel.
    pub dyna_note: Option<String>,
    /// Numeric columns the front is computed over.
    pub objectives: Vec<usize>,
    pub plots: Vec<Plot>,
    pub latest: String,
    /// Metrics with estimated values left out of the leaderboard (some or all runs).
    pub estimates_left_out: Vec<String>,
}

/// Builds a suite's model. `runs` are (result, older results, page key).
pub fn suite<'a>(
    slug: String,
    runs: Vec<(&'a RunResult, &'a [RunResult], String)>,
    extra_plots: &[(Column, Column)],
) -> SuiteModel<'a> {
    let newest = runs
        .iter()
        .max_by(|a, b| a.0.started_at.cmp(&b.0.started_at))
        .map(|r| r.0)
        .expect("a suite has runs");
    let columns = numeric_columns(runs.iter().map(|r| r.0));
    let estimates_left_out: Vec<String> = MetricId::ALL
        .iter()
        .filter(|id| {
            runs.iter()
                .any(|r| r.0.metric(**id).is_some_and(|m| m.is_estimate()))
        })
        .map(|id| id.name().to_string())
        .collect();
    let mut machines: Vec<String> = Vec::new();
    let mut axes: Vec<String> = Vec::new();
    for (r, _, _) in &runs {
        let h = hardware(&r.env);
        if !machines.contains(&h) {
            machines.push(h);
        }
    }
    let specs: Vec<&effbench_harness::RunSpec> = runs.iter().map(|r| &r.0.config).collect();
    for a in effbench_harness::matrix::varying_axes(specs) {
        axes.push(a);
    }
    let mut entries: Vec<Entry> = runs
        .into_iter()
        .map(|(r, older, key)| Entry {
            r,
            key,
            older,
            machine: machines
                .iter()
                .position(|m| *m == hardware(&r.env))
                .unwrap_or(0),
            values: columns
                .iter()
                .map(|c| match c.is_estimate(r) {
                    true => None,
                    false => c.cell(r).number(),
                })
                .collect(),
            front: false,
            score: None,
            rank: None,
        })
        .collect();
    crate::report::sort_natural(&mut entries, |e| e.r);
    let (dyna, dyna_note) = dynascore_setup(&columns, &mut entries);
    let objectives = match &dyna {
        Some(d) => d
            .metrics
            .iter()
            .filter(|m| m.weight > 0.0)
            .map(|m| m.col)
            .collect(),
        None => Vec::new(),
    };
    mark_front(&columns, &objectives, &mut entries);
    // best first by Dynascore; runs without a score keep their natural order after them
    entries.sort_by_key(|e| e.rank.unwrap_or(usize::MAX));
    let plots = plots(&columns, &entries, dyna.as_ref(), extra_plots);
    SuiteModel {
        name: newest.suite.name.clone(),
        slug,
        description: newest.suite.description.clone(),
        scenario: newest.config.scenario.name().to_string(),
        entries,
        columns,
        axes,
        machines,
        dyna,
        dyna_note,
        objectives,
        plots,
        latest: crate::columns::date(&newest.started_at),
        estimates_left_out,
    }
}

/// Every metric the runs carry as a measurement (table order), its p99 too for sampled
/// millisecond metrics, then parameters and model size.
fn numeric_columns<'a>(runs: impl Iterator<Item = &'a RunResult> + Clone) -> Vec<Column> {
    let mut cols = Vec::new();
    for &id in MetricId::ALL {
        let ms: Vec<_> = runs
            .clone()
            .filter_map(|r| r.metric(id))
            .filter(|m| !m.is_estimate())
            .collect();
        if ms.is_empty() {
            continue;
        }
        cols.push(Column::Metric(id, Stat::Value));
        if id.unit() == "ms" && ms.iter().any(|m| m.stats.is_some()) {
            cols.push(Column::Metric(id, Stat::P99));
        }
    }
    for c in [Column::ModelParams, Column::ModelBytes] {
        if runs.clone().any(|r| c.cell(r).number().is_some()) {
            cols.push(c);
        }
    }
    cols
}

fn dynascore_setup(columns: &[Column], entries: &mut [Entry]) -> (Option<Dyna>, Option<String>) {
    let rows: Vec<usize> = (0..entries.len())
        .filter(|&i| entries[i].r.status.state == RunState::Ok)
        .collect();
    if rows.len() < 2 {
        return (
            None,
            Some("Dynascore needs at least 2 successful runs".into()),
        );
    }
    // metrics every successful run has (headline values)
    let shared: Vec<usize> = (0..columns.len())
        .filter(|&c| matches!(columns[c], Column::Metric(_, Stat::Value)))
        .filter(|&c| rows.iter().all(|&i| entries[i].values[c].is_some()))
        .collect();
    let id = |c: usize| match columns[c] {
        Column::Metric(id, _) => id,
        _ => unreachable!("shared columns are metrics"),
    };
    let candidates: Vec<(MetricId, Vec<f64>)> = shared
        .iter()
        .map(|&c| {
            let vals = rows.iter().filter_map(|&i| entries[i].values[c]).collect();
            (id(c), vals)
        })
        .collect();
    let Some(setup) = default_setup(&candidates) else {
        return (
            None,
            Some("no higher-is-better metric shared by every run to serve as performance".into()),
        );
    };
    let metrics: Vec<DynaCol> = setup
        .into_iter()
        .map(|(k, m)| {
            let vals = &candidates[k].1;
            DynaCol {
                col: shared[k],
                name: m.name,
                better: m.better,
                weight: m.weight,
                offset: m.offset,
                varies: vals.iter().any(|v| *v != vals[0]),
            }
        })
        .collect();
    let table: Vec<Vec<f64>> = rows
        .iter()
        .map(|&i| {
            metrics
                .iter()
                .map(|m| entries[i].values[m.col].unwrap_or(f64::NAN))
                .collect()
        })
        .collect();
    match dynascore(&dyna_metrics(&metrics), &table) {
        Ok(res) => {
            for row in &res.rows {
                let e = &mut entries[rows[row.index]];
                e.score = Some(row.dynascore);
                e.rank = Some(row.rank);
            }
            (
                Some(Dyna {
                    metrics,
                    rows,
                    amrs: res.amrs,
                }),
                None,
            )
        }
        Err(e) => (None, Some(format!("no Dynascore: {e}"))),
    }
}

/// The harness's input for these columns (what the page's JavaScript re-implements).
pub fn dyna_metrics(cols: &[DynaCol]) -> Vec<DynaMetric> {
    cols.iter()
        .map(|m| DynaMetric {
            name: m.name.clone(),
            better: m.better,
            weight: m.weight,
            offset: m.offset,
        })
        .collect()
}

fn senses(columns: &[Column], cols: &[usize]) -> Vec<Better> {
    cols.iter()
        .map(|&c| columns[c].better().unwrap_or(Better::Higher))
        .collect()
}

fn mark_front(columns: &[Column], objectives: &[usize], entries: &mut [Entry]) {
    if objectives.is_empty() {
        return;
    }
    let idx: Vec<usize> = (0..entries.len())
        .filter(|&i| entries[i].r.status.state == RunState::Ok)
        .filter(|&i| objectives.iter().all(|&c| entries[i].values[c].is_some()))
        .collect();
    let pts: Vec<Vec<f64>> = idx
        .iter()
        .map(|&i| {
            objectives
                .iter()
                .map(|&c| entries[i].values[c].unwrap_or(f64::NAN))
                .collect()
        })
        .collect();
    if let Ok(front) = pareto::front(&pts, &senses(columns, objectives)) {
        for k in front {
            entries[idx[k]].front = true;
        }
    }
}

/// Performance against each lower-is-better metric (at most 5), plus requested pairs.
fn plots(
    columns: &[Column],
    entries: &[Entry],
    dyna: Option<&Dyna>,
    extra: &[(Column, Column)],
) -> Vec<Plot> {
    let y = dyna.map(|d| d.metrics[0].col).or_else(|| {
        (0..columns.len()).find(|&c| {
            matches!(columns[c], Column::Metric(_, Stat::Value))
                && columns[c].better() == Some(Better::Higher)
        })
    });
    let mut pairs: Vec<(usize, usize)> = extra
        .iter()
        .filter_map(|(x, y)| {
            Some((
                columns.iter().position(|c| c == x)?,
                columns.iter().position(|c| c == y)?,
            ))
        })
        .collect();
    if let Some(y) = y {
        // the Dynascore objectives first, then the other lower-is-better metrics
        let objectives: Vec<usize> = dyna
            .map(|d| {
                d.metrics
                    .iter()
                    .filter(|m| m.weight > 0.0)
                    .map(|m| m.col)
                    .collect()
            })
            .unwrap_or_default();
        let mut xs: Vec<usize> = (0..columns.len())
            .filter(|&c| {
                matches!(
                    columns[c],
                    Column::Metric(_, Stat::Value) | Column::ModelBytes
                ) && columns[c].better() == Some(Better::Lower)
                    && entries.iter().filter(|e| e.values[c].is_some()).count() >= 2
            })
            .collect();
        xs.sort_by_key(|c| !objectives.contains(c));
        pairs.extend(xs.into_iter().take(5).map(|x| (x, y)));
    }
    pairs.dedup();
    pairs
        .into_iter()
        .filter_map(|(x, y)| scatter(columns, entries, x, y))
        .collect()
}

pub(super) fn scatter(columns: &[Column], entries: &[Entry], x: usize, y: usize) -> Option<Plot> {
    let used: Vec<&Entry> = entries
        .iter()
        .filter(|e| {
            e.r.status.state == RunState::Ok && e.values[x].is_some() && e.values[y].is_some()
        })
        .collect();
    if used.len() < 2 {
        return None;
    }
    let pts: Vec<Vec<f64>> = used
        .iter()
        .map(|e| vec![e.values[x].unwrap(), e.values[y].unwrap()])
        .collect();
    let front = pareto::front(&pts, &senses(columns, &[x, y])).ok()?;
    let (cx, cy) = (&columns[x], &columns[y]);
    let unit = |c: &Column| c.unit().unwrap_or("");
    let points: Vec<Point> = (0..used.len())
        .map(|i| Point {
            x: pts[i][0],
            y: pts[i][1],
            front: front.binary_search(&i).is_ok(),
        })
        .collect();
    let describe = |i: usize| {
        let e = used[i];
        let title = format!(
            "{} | {}: {} {} | {}: {} {}",
            e.r.label(),
            cx.key(),
            crate::format::value(pts[i][0], unit(cx)),
            unit(cx),
            cy.key(),
            crate::format::value(pts[i][1], unit(cy)),
            unit(cy)
        );
        (title, format!("../runs/{}.html", e.key))
    };
    let dir = |c: &Column| match c.better() {
        Some(Better::Lower) => " · lower is better",
        _ => " · higher is better",
    };
    let (tx, ty) = (
        format!("{}{}", cx.header(), dir(cx)),
        format!("{}{}", cy.header(), dir(cy)),
    );
    let caption = format!("{} vs {}", cy.header(), cx.header());
    let svg = svg::scatter(
        &points,
        &describe,
        &AxisSpec {
            title: &tx,
            unit: unit(cx),
            allow_log: true,
        },
        &AxisSpec {
            title: &ty,
            unit: unit(cy),
            allow_log: true,
        },
        &caption,
    );
    Some(Plot { caption, svg })
}
