//! Aligned plain-text tables for the terminal: text left-aligned, numbers right-aligned.

use crate::columns::{Cell, Column};
use crate::format;
use effbench_harness::{MetricId, RunResult};

/// A table of already formatted cells.
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<(String, bool)>>, // (text, right-aligned)
}

impl Table {
    pub fn from_results(results: &[RunResult], columns: &[Column]) -> Table {
        let headers = columns.iter().map(Column::display_header).collect();
        let rows = results
            .iter()
            .map(|r| {
                columns
                    .iter()
                    .map(|c| match c.cell(r) {
                        Cell::Number(v, unit) if c.is_estimate(r) => {
                            (format!("~{}", format::value(v, unit)), true)
                        }
                        Cell::Number(v, unit) => (format::value(v, unit), true),
                        Cell::Text(t) => (t, false),
                        Cell::Empty => ("-".into(), true),
                    })
                    .collect()
            })
            .collect();
        Table { headers, rows }
    }

    /// Characters of the widest rendered line.
    pub fn width(&self) -> usize {
        self.render()
            .lines()
            .map(|l| l.chars().count())
            .max()
            .unwrap_or(0)
    }

    pub fn render(&self) -> String {
        let n = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, (t, _)) in row.iter().enumerate().take(n) {
                widths[i] = widths[i].max(t.chars().count());
            }
        }
        let mut out = String::new();
        let line = |cells: Vec<(String, bool)>, out: &mut String| {
            let parts: Vec<String> = cells
                .iter()
                .zip(&widths)
                .map(|((t, right), w)| {
                    if *right {
                        format!("{t:>w$}")
                    } else {
                        format!("{t:<w$}")
                    }
                })
                .collect();
            out.push_str(parts.join("  ").trim_end());
            out.push('\n');
        };
        line(
            self.headers.iter().map(|h| (h.clone(), false)).collect(),
            &mut out,
        );
        line(
            widths.iter().map(|w| ("-".repeat(*w), false)).collect(),
            &mut out,
        );
        for row in &self.rows {
            line(row.clone(), &mut out);
        }
        out
    }
}

/// Footnote for tables with estimated cells.
pub const ESTIMATE_LEGEND: &str =
    "~ estimate (estimate-tdp: TDP share x CPU time), not a measurement; `effbench meters` says why";

/// Width the summary table of `run` and `show` fits in.
pub const SUMMARY_WIDTH: usize = 120;

/// One row per run with the default columns; estimates are marked `~` and explained.
pub fn runs_table(results: &[RunResult]) -> String {
    let cols = crate::columns::default_columns(results);
    table_with_legend(results, &cols)
}

/// The summary of `run` and `show`: the scenario's default columns that fit in `width`
/// characters, most telling first (what `summary_columns` leaves out is named in the returned
/// list, for a hint at `--columns` and `show --detail`).
pub fn summary_columns(results: &[RunResult], width: usize) -> (Vec<Column>, Vec<Column>) {
    fit_columns(results, crate::columns::default_columns(results), width)
}

/// The columns of `wanted` that fit in `width` characters, dropping the least telling first;
/// returns them and the dropped ones.
pub fn fit_columns(
    results: &[RunResult],
    wanted: Vec<Column>,
    width: usize,
) -> (Vec<Column>, Vec<Column>) {
    use crate::columns::Stat;
    use effbench_harness::records::RunState;
    let machines = {
        let mut m: Vec<String> = results.iter().map(|r| r.env.machine_key()).collect();
        m.sort();
        m.dedup();
        m.len()
    };
    let all_ok = results.iter().all(|r| r.status.state == RunState::Ok);
    let mut cols: Vec<Column> = (wanted.into_iter())
        // one machine: said above the table; all ok: nothing to say
        .filter(|c| !(*c == Column::Hardware && machines == 1))
        .filter(|c| !(*c == Column::Status && all_ok))
        .collect();
    let all = cols.clone();
    let priority = |c: &Column| -> u8 {
        use MetricId::*;
        let c = &match c {
            Column::Measured(m, s) => Column::Metric(*m, *s),
            c => c.clone(),
        };
        match c {
            Column::Run | Column::Suite | Column::Status => 0,
            Column::Metric(m, Stat::Value | Stat::P50) if HEADLINE.contains(m) => 1,
            Column::Metric(Ttft | E2eLatency, Stat::P99) => 2,
            Column::Metric(PeakRss | EnergyPerOutputToken | Mfu | SloAttainment, _) => 2,
            Column::Metric(..) => 3,
            Column::Hardware => 4,
            _ => 5,
        }
    };
    let mut dropped = Vec::new();
    while Table::from_results(results, &cols).width() > width {
        // the least telling column, the rightmost of equals
        let Some(k) = (0..cols.len())
            .filter(|&k| priority(&cols[k]) > 0)
            .max_by_key(|&k| (priority(&cols[k]), k))
        else {
            break;
        };
        dropped.push(cols.remove(k));
    }
    // a narrow column dropped early may fit beside the wide ones that went after it
    let order = |c: &Column| all.iter().position(|x| x == c).unwrap_or(usize::MAX);
    let mut kept = Vec::new();
    for c in dropped.into_iter().rev() {
        let mut trial = cols.clone();
        let at = trial
            .iter()
            .position(|x| order(x) > order(&c))
            .unwrap_or(trial.len());
        trial.insert(at, c.clone());
        if Table::from_results(results, &trial).width() <= width {
            cols = trial;
        } else {
            kept.push(c);
        }
    }
    (cols, kept)
}

/// Metrics a scenario's summary shows before any other.
const HEADLINE: [MetricId; 9] = [
    MetricId::Ttft,
    MetricId::Tpot,
    MetricId::OutputThroughput,
    MetricId::TrainThroughput,
    MetricId::TimeToTargetLoss,
    MetricId::HeldoutPerplexity,
    MetricId::RequestThroughput,
    MetricId::Goodput,
    MetricId::RequestsFailed,
];

/// [`summary_columns`] rendered: the machine (when `machine` and the table has no hardware
/// column), the table, the legend and which columns `effbench show PATH --columns ...` (or
/// `--detail`) adds.
pub fn summary_table(results: &[RunResult], path: &str, machine: bool) -> String {
    let (cols, dropped) = summary_columns(results, SUMMARY_WIDTH);
    let mut out = String::new();
    if let (true, false, Some(r)) = (machine, cols.contains(&Column::Hardware), results.first()) {
        out.push_str(&format!("machine: {}\n", r.env.summary()));
    }
    out.push_str(&table_with_legend(results, &cols));
    if !dropped.is_empty() {
        let keys: Vec<String> = dropped.iter().map(Column::key).collect();
        out.push_str(&format!(
            "more columns: effbench show {path} --columns run,{} (every metric: --detail)\n",
            keys.join(",")
        ));
    }
    out
}

/// The measurement-quality warnings of a suite's runs, each kind once with the runs it
/// applies to (its message when every run saw the same, else the first run's as an example)
/// and what helps. Empty when no run has a warning.
pub fn warnings_summary(results: &[RunResult]) -> String {
    use effbench_harness::warnings::WarningKind;
    let mut kinds: Vec<WarningKind> = Vec::new();
    for w in results.iter().flat_map(|r| &r.warnings) {
        if !kinds.contains(&w.kind) {
            kinds.push(w.kind);
        }
    }
    let mut out = String::new();
    for kind in kinds {
        let hits: Vec<(&RunResult, &effbench_harness::warnings::Warning)> = results
            .iter()
            .filter_map(|r| r.warnings.iter().find(|w| w.kind == kind).map(|w| (r, w)))
            .collect();
        let name = serde_json::to_value(kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| format!("{kind:?}"));
        let runs = if hits.len() == results.len() && results.len() > 1 {
            format!("all {} runs", results.len())
        } else if results.len() == 1 {
            String::new()
        } else {
            const SHOWN: usize = 4;
            let mut labels: Vec<String> = hits.iter().take(SHOWN).map(|(r, _)| r.label()).collect();
            if hits.len() > SHOWN {
                labels.push(format!("{} more", hits.len() - SHOWN));
            }
            format!(
                "{} of {} runs: {}",
                hits.len(),
                results.len(),
                labels.join("; ")
            )
        };
        let same = hits.iter().all(|(_, w)| w.message == hits[0].1.message);
        let (first, example) = (hits[0].1, if same { "" } else { "e.g. " });
        let runs = if runs.is_empty() {
            String::new()
        } else {
            format!(" ({runs})")
        };
        out.push_str(&format!(
            "warning: {name}{runs}: {example}{} {}\n",
            first.message, first.hint
        ));
    }
    out
}

/// A table of `columns`, plus the legend when a cell shows an estimate.
pub fn table_with_legend(results: &[RunResult], columns: &[Column]) -> String {
    let mut out = Table::from_results(results, columns).render();
    if results
        .iter()
        .any(|r| columns.iter().any(|c| c.is_estimate(r)))
    {
        out.push_str(ESTIMATE_LEGEND);
        out.push('\n');
    }
    out
}

/// One row per run with the compression/quality/speed-up columns; empty when no result has
/// any of them.
pub fn compression_table(results: &[RunResult]) -> String {
    let cols = crate::columns::compression_columns(results);
    if cols.is_empty() {
        return String::new();
    }
    Table::from_results(results, &cols).render()
}

/// Every metric of one run with its statistics.
pub fn run_detail(r: &RunResult) -> String {
    let headers = [
        "metric",
        "unit",
        "value",
        "n",
        "mean",
        "cv %",
        "p50",
        "p90",
        "p99",
        "max",
        "95% CI of mean",
        "source",
    ];
    let mut t = Table {
        headers: headers.iter().map(|h| h.to_string()).collect(),
        rows: Vec::new(),
    };
    for m in &r.metrics {
        let f = |v: f64| (format::value(v, &m.unit), true);
        let mut row = vec![
            (m.name.name().to_string(), false),
            (m.unit.clone(), false),
            f(m.value),
        ];
        match &m.stats {
            Some(s) => row.extend([
                (s.count.to_string(), true),
                f(s.mean),
                (format::sig3(s.cv_pct), true),
                f(s.p50),
                f(s.p90),
                f(s.p99),
                f(s.max),
                (
                    format!(
                        "[{}, {}]",
                        format::value(s.ci95_mean[0], &m.unit),
                        format::value(s.ci95_mean[1], &m.unit)
                    ),
                    true,
                ),
            ]),
            None => row.extend(std::iter::repeat_n(("".to_string(), true), 8)),
        }
        row.push((m.source.clone(), false));
        t.rows.push(row);
    }
    t.render()
}

#[cfg(test)]
#[path = "terminal_tests.rs"]
mod tests;
