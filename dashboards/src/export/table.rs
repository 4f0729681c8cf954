//! Aligned plain text for the terminal.

use super::{display, footer, Exporter};
use crate::report::Report;
use crate::terminal::Table;

pub struct TableExporter;

impl Exporter for TableExporter {
    fn serialize(&self, report: &Report) -> anyhow::Result<Vec<u8>> {
        let table = Table {
            headers: report.columns.iter().map(|c| c.display_header()).collect(),
            rows: report
                .rows
                .iter()
                .map(|r| {
                    r.cells
                        .iter()
                        .zip(&r.speedup)
                        .zip(&r.estimated)
                        .zip(&report.columns)
                        .map(|(((c, s), e), col)| (display(c, *s, *e), col.is_numeric()))
                        .collect()
                })
                .collect(),
        };
        let mut out = table.render();
        for line in footer(report) {
            out.push_str(&line);
            out.push('\n');
        }
        Ok(out.into_bytes())
    }
}
