//! CSV (RFC 4180) for spreadsheets and scripts: full-precision numbers, units in the headers,
//! and with a baseline one `... speed-up (x)` column after each numeric column.

use super::Exporter;
use crate::columns::Cell;
use crate::report::Report;

pub struct CsvExporter;

/// One CSV field (the one CSV escaping rule: [`effbench_harness::escape::csv`]).
pub fn field(s: &str) -> String {
    effbench_harness::escape::csv(s)
}

impl Exporter for CsvExporter {
    fn serialize(&self, report: &Report) -> anyhow::Result<Vec<u8>> {
        let with_speedup = report.baseline.is_some();
        let mut header = Vec::new();
        for c in &report.columns {
            header.push(field(&c.header()));
            if with_speedup && c.better().is_some() {
                header.push(field(&format!("{} speed-up (x)", c.key())));
            }
        }
        let mut out = header.join(",") + "\r\n";
        for row in &report.rows {
            let mut f = Vec::new();
            for (k, c) in report.columns.iter().enumerate() {
                f.push(match &row.cells[k] {
                    Cell::Number(v, _) => number(*v),
                    Cell::Text(t) => field(t),
                    Cell::Empty => String::new(),
                });
                if with_speedup && c.better().is_some() {
                    f.push(row.speedup[k].map(number).unwrap_or_default());
                }
            }
            out.push_str(&f.join(","));
            out.push_str("\r\n");
        }
        Ok(out.into_bytes())
    }
}

/// Shortest text that reads back as the same f64.
fn number(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        String::new()
    }
}
