//! The report model every export format renders: rows (one per run, or one per group with
//! `--group-by`), the chosen columns, sorting, and speed-up against a baseline variant.
//!
//! Grouped rows aggregate each numeric column with the geometric mean over the group's runs
//! (the usual summary across configurations, as SPEC and MLPerf use; the arithmetic mean
//! when a value is not positive, noted). Speed-up is the analysis stage's
//! [`speedup`]: baseline ÷ variant for lower-is-better columns, variant ÷ baseline for
//! higher-is-better ones, so > 1 is better.

use crate::columns::{self, Cell, Column};
use crate::load::machine_key;
use effbench_harness::axes::{AxisValue, AXES};
use effbench_harness::{Better, RunResult};
use std::cmp::Ordering;

/// What to show and how (the `report` command's flags).
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Columns; `None` picks sensible defaults for the data.
    pub columns: Option<Vec<Column>>,
    /// Group rows by these axes or fields (`suite`, `hardware`, `host`, `model`, `backend`).
    pub group_by: Vec<String>,
    /// Sort best first by this column (text columns: ascending).
    pub sort: Option<Column>,
    pub reverse: bool,
    /// Baseline variant: `axis=value ...`, a run id (prefix), or a group's value.
    pub baseline: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub cells: Vec<Cell>,
    /// Per column: speed-up against this row's baseline (> 1 = better than baseline).
    pub speedup: Vec<Option<f64>>,
    pub is_baseline: bool,
    /// Run ids behind the row.
    pub ids: Vec<String>,
    /// Per column: the value is (or, grouped, includes) an estimate such as `estimate-tdp`
    /// energy rather than a measurement; table and markdown mark it `~`.
    pub estimated: Vec<bool>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub columns: Vec<Column>,
    pub rows: Vec<Row>,
    pub group_by: Vec<String>,
    pub baseline: Option<String>,
    pub suites: Vec<String>,
    /// Every machine behind the rows (one-line descriptions).
    pub machines: Vec<String>,
    pub notes: Vec<String>,
}

/// A unit of rows before rendering: one run, or a group of runs.
struct Unit<'a> {
    label: String,
    runs: Vec<&'a RunResult>,
}

/// Builds a report; errors are one line and name the flag.
pub fn build(results: &[RunResult], opts: &Options) -> Result<Report, String> {
    let mut sorted: Vec<&RunResult> = results.iter().collect();
    sort_natural(&mut sorted, |r| r);
    let grouped = !opts.group_by.is_empty();
    let mut notes = Vec::new();
    let units: Vec<Unit> = if grouped {
        for key in &opts.group_by {
            if !results.iter().any(|r| group_value(r, key).is_some()) {
                return Err(format!(
                    "--group-by '{key}': no result has this axis or field (axes here: {}; fields: suite, hardware, host, model, backend, status)",
                    axes_in(results).join(", ")
                ));
            }
        }
        let mut units: Vec<Unit> = Vec::new();
        for r in &sorted {
            let label = opts
                .group_by
                .iter()
                .map(|k| format!("{k}={}", group_value(r, k).unwrap_or_else(|| "-".into())))
                .collect::<Vec<_>>()
                .join(" ");
            match units.iter_mut().find(|u| u.label == label) {
                Some(u) => u.runs.push(r),
                None => units.push(Unit {
                    label,
                    runs: vec![r],
                }),
            }
        }
        units
    } else {
        sorted
            .iter()
            .map(|r| Unit {
                label: r.label(),
                runs: vec![*r],
            })
            .collect()
    };
    let columns = match &opts.columns {
        Some(c) => c.clone(),
        None if grouped => {
            let mut c = vec![Column::Run, Column::Runs];
            c.extend(
                columns::default_columns(results)
                    .into_iter()
                    .filter(|c| c.is_numeric() || *c == Column::Hardware),
            );
            c
        }
        None => columns::default_columns(results),
    };
    let mut rows: Vec<Row> = units
        .iter()
        .map(|u| Row {
            cells: columns
                .iter()
                .map(|c| unit_cell(c, u, &mut notes))
                .collect(),
            speedup: vec![None; columns.len()],
            is_baseline: false,
            ids: u.runs.iter().map(|r| r.id.clone()).collect(),
            estimated: columns
                .iter()
                .map(|c| u.runs.iter().any(|r| c.is_estimate(r)))
                .collect(),
        })
        .collect();
    if rows.iter().any(|r| r.estimated.contains(&true)) {
        notes.push(crate::terminal::ESTIMATE_LEGEND.to_string());
    }
    if let Some(spec) = &opts.baseline {
        let base = if grouped {
            baseline_groups(spec, &units, &opts.group_by)?
        } else {
            baseline_runs(spec, &units)?
        };
        let missing = base.iter().filter(|b| b.is_none()).count();
        if missing > 0 {
            notes.push(format!(
                "{missing} row(s) have no matching baseline (same suite, machine and other axes)"
            ));
        }
        let before: Vec<Vec<Cell>> = rows.iter().map(|r| r.cells.clone()).collect();
        for (i, row) in rows.iter_mut().enumerate() {
            let Some(b) = base[i] else { continue };
            row.is_baseline = b == i;
            for (k, c) in columns.iter().enumerate() {
                if let (Some(better), Some(v), Some(bv)) =
                    (c.better(), row.cells[k].number(), before[b][k].number())
                {
                    row.speedup[k] = speedup(bv, v, better);
                }
            }
        }
    }
    if let Some(col) = &opts.sort {
        let k = match columns.iter().position(|c| c == col) {
            Some(k) => k,
            None => {
                // sorting by a column that is not shown: compute it alongside
                let keys: Vec<Cell> = units
                    .iter()
                    .map(|u| unit_cell(col, u, &mut notes))
                    .collect();
                let mut idx: Vec<usize> = (0..rows.len()).collect();
                idx.sort_by(|&a, &b| cmp_cells(&keys[a], &keys[b], col.better(), opts.reverse));
                rows = idx.into_iter().map(|i| rows[i].clone()).collect();
                usize::MAX
            }
        };
        if k != usize::MAX {
            rows.sort_by(|a, b| cmp_cells(&a.cells[k], &b.cells[k], col.better(), opts.reverse));
        }
    } else if opts.reverse {
        rows.reverse();
    }
    let mut suites: Vec<String> = results.iter().map(|r| r.suite.name.clone()).collect();
    suites.sort();
    suites.dedup();
    let mut machines: Vec<String> = Vec::new();
    for r in &sorted {
        let m = format!("{} [{}]", r.env.summary(), r.env.hostname);
        if !machines.contains(&m) {
            machines.push(m);
        }
    }
    notes.sort();
    notes.dedup();
    Ok(Report {
        columns,
        rows,
        group_by: opts.group_by.clone(),
        baseline: opts.baseline.clone(),
        suites,
        machines,
        notes,
    })
}

/// Speed-up of a variant over its baseline, > 1 = better: the harness's one formula.
pub use effbench_harness::analysis::suite::speedup;

fn unit_cell(c: &Column, u: &Unit, notes: &mut Vec<String>) -> Cell {
    if u.runs.len() == 1 && *c != Column::Run {
        return c.cell(u.runs[0]);
    }
    match c {
        Column::Run => Cell::Text(u.label.clone()),
        Column::Runs => Cell::Number(u.runs.len() as f64, "count"),
        c if c.is_numeric() => {
            let vals: Vec<(f64, &'static str)> = u
                .runs
                .iter()
                .filter_map(|r| match c.cell(r) {
                    Cell::Number(v, unit) => Some((v, unit)),
                    _ => None,
                })
                .collect();
            let Some(&(_, unit)) = vals.first() else {
                return Cell::Empty;
            };
            let n = vals.len() as f64;
            if vals.iter().all(|(v, _)| *v > 0.0) {
                Cell::Number(
                    (vals.iter().map(|(v, _)| v.ln()).sum::<f64>() / n).exp(),
                    unit,
                )
            } else {
                notes.push(format!(
                    "{}: a value is not positive, so its groups show the arithmetic mean instead of the geometric mean",
                    c.header()
                ));
                Cell::Number(vals.iter().map(|(v, _)| v).sum::<f64>() / n, unit)
            }
        }
        c => {
            let mut texts: Vec<String> = u
                .runs
                .iter()
                .filter_map(|r| match c.cell(r) {
                    Cell::Text(t) => Some(t),
                    _ => None,
                })
                .collect();
            texts.sort();
            texts.dedup();
            match texts.len() {
                0 => Cell::Empty,
                1 => Cell::Text(texts.remove(0)),
                n => Cell::Text(format!("({n} different)")),
            }
        }
    }
}

fn cmp_cells(a: &Cell, b: &Cell, better: Option<Better>, reverse: bool) -> Ordering {
    let flip = |o: Ordering| if reverse { o.reverse() } else { o };
    match (a, b) {
        (Cell::Empty, Cell::Empty) => Ordering::Equal,
        (Cell::Empty, _) => Ordering::Greater,
        (_, Cell::Empty) => Ordering::Less,
        (Cell::Number(x, _), Cell::Number(y, _)) => flip(match better {
            Some(Better::Higher) => y.total_cmp(x),
            _ => x.total_cmp(y),
        }),
        (Cell::Text(x), Cell::Text(y)) => flip(x.cmp(y)),
        (Cell::Number(..), _) => Ordering::Less,
        (_, Cell::Number(..)) => Ordering::Greater,
    }
}

/// The value of a group-by key for a run: a field or an axis.
pub fn group_value(r: &RunResult, key: &str) -> Option<String> {
    Some(match key {
        "suite" => r.suite.name.clone(),
        "hardware" => columns::hardware(&r.env),
        "host" => r.env.hostname.clone(),
        "model" if r.config.param("model").is_none() => r.model.as_ref()?.name.clone(),
        "backend" => r.config.backend.clone(),
        "status" => format!("{:?}", r.status.state).to_lowercase(),
        axis => r.config.param(axis)?.to_string(),
    })
}

fn axes_in(results: &[RunResult]) -> Vec<String> {
    let mut v: Vec<String> = results
        .iter()
        .flat_map(|r| r.config.params.keys().cloned())
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Parses `axis=value` pairs separated by spaces or commas.
fn pairs(spec: &str) -> Option<Vec<(String, AxisValue)>> {
    if !spec.contains('=') {
        return None;
    }
    spec.split([' ', ','])
        .filter(|s| !s.is_empty())
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.to_string(), AxisValue::parse_cli(v)))
        })
        .collect()
}

fn matches(r: &RunResult, pairs: &[(String, AxisValue)]) -> bool {
    pairs
        .iter()
        .all(|(k, v)| r.config.param(k).is_some_and(|x| x.matches(v)))
}

/// For each run row, the index of its baseline row.
fn baseline_runs(spec: &str, units: &[Unit]) -> Result<Vec<Option<usize>>, String> {
    let run = |i: usize| units[i].runs[0];
    let (cands, keys): (Vec<usize>, Vec<String>) = match pairs(spec) {
        Some(p) => (
            (0..units.len()).filter(|&i| matches(run(i), &p)).collect(),
            p.into_iter().map(|(k, _)| k).collect(),
        ),
        None => {
            let c: Vec<usize> = (0..units.len())
                .filter(|&i| spec.len() >= 4 && run(i).id.starts_with(spec))
                .collect();
            let mut ids: Vec<&str> = c.iter().map(|&i| run(i).id.as_str()).collect();
            ids.dedup();
            if ids.len() > 1 {
                return Err(format!(
                    "--baseline '{spec}' matches several run ids: {}",
                    ids.join(", ")
                ));
            }
            (c, Vec::new())
        }
    };
    if cands.is_empty() {
        return Err(format!(
            "--baseline '{spec}' matches no run (give axis=value pairs such as dtype=f32, or a run id)"
        ));
    }
    let newest = |v: Vec<usize>| {
        v.into_iter()
            .max_by(|&a, &b| run(a).started_at.cmp(&run(b).started_at))
    };
    Ok((0..units.len())
        .map(|i| {
            if cands.contains(&i) {
                return Some(i);
            }
            let r = run(i);
            let same_place =
                |c: &RunResult| c.suite.name == r.suite.name && machine_key(c) == machine_key(r);
            let same_other_axes = |c: &RunResult| {
                let others = |x: &RunResult| -> Vec<(String, String)> {
                    x.config
                        .params
                        .iter()
                        .filter(|(k, _)| !keys.contains(k))
                        .map(|(k, v)| (k.clone(), v.to_string()))
                        .collect()
                };
                others(c) == others(r)
            };
            let exact: Vec<usize> = cands
                .iter()
                .copied()
                .filter(|&c| same_place(run(c)) && same_other_axes(run(c)))
                .collect();
            newest(exact).or(if cands.len() == 1 {
                Some(cands[0])
            } else {
                None
            })
        })
        .collect())
}

/// For grouped rows: the one group the spec names (`dtype=f32`, or `f32` with one key).
fn baseline_groups(
    spec: &str,
    units: &[Unit],
    keys: &[String],
) -> Result<Vec<Option<usize>>, String> {
    let want = if spec.contains('=') || keys.len() != 1 {
        spec.replace(',', " ")
    } else {
        format!("{}={spec}", keys[0])
    };
    match units.iter().position(|u| u.label == want) {
        Some(b) => Ok(vec![Some(b); units.len()]),
        None => Err(format!(
            "--baseline '{spec}' names no group; groups: {}",
            units
                .iter()
                .map(|u| u.label.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Default order: suite, machine, then the axes in the axes table's order (numbers
/// numerically, text alphabetically), then start time. Keys are computed once per item.
pub(crate) fn sort_natural<T>(items: &mut Vec<T>, run: impl Fn(&T) -> &RunResult) {
    #[derive(PartialEq, PartialOrd)]
    enum V {
        Num(f64),
        Text(String),
    }
    let pos = |k: &str| AXES.iter().position(|x| x.name == k).unwrap_or(usize::MAX);
    let key = |r: &RunResult| {
        let mut params: Vec<(usize, String, V)> = r
            .config
            .params
            .iter()
            .map(|(k, v)| {
                let val = v.as_f64().map_or_else(|| V::Text(v.to_string()), V::Num);
                (pos(k), k.clone(), val)
            })
            .collect();
        params.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        (
            r.suite.name.clone(),
            machine_key(r),
            params,
            r.started_at.clone(),
        )
    };
    let mut keyed: Vec<(_, T)> = items.drain(..).map(|t| (key(run(&t)), t)).collect();
    keyed.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(Ordering::Equal));
    items.extend(keyed.into_iter().map(|(_, t)| t));
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;
