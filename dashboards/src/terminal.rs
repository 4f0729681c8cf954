//! Aligned plain-text tables for the terminal: text left-aligned, numbers right-aligned.

use crate::columns::{Cell, Column};
use crate::format;
use effbench_harness::RunResult;

/// A table of already formatted cells.
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<(String, bool)>>, // (text, right-aligned)
}

impl Table {
    pub fn from_results(results: &[RunResult], columns: &[Column]) -> Table {
        let headers = columns.iter().map(Column::header).collect();
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

/// One row per run with the default columns; estimates are marked `~` and explained.
pub fn runs_table(results: &[RunResult]) -> String {
    let cols = crate::columns::default_columns(results);
    table_with_legend(results, &cols)
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
