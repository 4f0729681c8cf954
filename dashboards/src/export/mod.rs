//! Report exporters, one short file per format (as hyperfine's `src/export/`): each turns a
//! [`Report`] into bytes. Adding a format is one file here and one arm in [`exporter`].

mod csv;
mod json;
mod markdown;
mod table;

pub use markdown::{code as markdown_code, escape as markdown_escape};

use crate::columns::Cell;
use crate::format;
use crate::report::Report;

/// Renders a whole report in one format.
pub trait Exporter {
    fn serialize(&self, report: &Report) -> anyhow::Result<Vec<u8>>;
}

/// The formats `effbench report --format` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Markdown,
    Csv,
    Json,
}

impl Format {
    pub const NAMES: [&'static str; 4] = ["table", "markdown", "csv", "json"];

    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "table" => Some(Format::Table),
            "markdown" | "md" => Some(Format::Markdown),
            "csv" => Some(Format::Csv),
            "json" => Some(Format::Json),
            _ => None,
        }
    }
}

pub fn exporter(f: Format) -> Box<dyn Exporter> {
    match f {
        Format::Table => Box::new(table::TableExporter),
        Format::Markdown => Box::new(markdown::MarkdownExporter),
        Format::Csv => Box::new(csv::CsvExporter),
        Format::Json => Box::new(json::JsonExporter),
    }
}

/// A cell as people read it: `12.3`, `12.3 (1.52×)` with a speed-up, `~12.3` for an
/// estimate, `-` when empty.
pub(crate) fn display(cell: &Cell, speedup: Option<f64>, estimated: bool) -> String {
    let mut s = match cell {
        Cell::Number(v, unit) if estimated => format!("~{}", format::value(*v, unit)),
        Cell::Number(v, unit) => format::value(*v, unit),
        Cell::Text(t) => t.clone(),
        Cell::Empty => "-".into(),
    };
    if let Some(x) = speedup {
        s.push_str(&format!(" ({}×)", format::sig3(x)));
    }
    s
}

/// Lines under a table: machines, baseline, notes.
pub(crate) fn footer(report: &Report) -> Vec<String> {
    let mut out = Vec::new();
    for (i, m) in report.machines.iter().enumerate() {
        out.push(format!("machine {}: {m}", i + 1));
    }
    if let Some(b) = &report.baseline {
        out.push(format!(
            "speed-up (×) vs baseline {b}: > 1 is better (baseline ÷ value for lower-is-better, value ÷ baseline for higher-is-better)"
        ));
    }
    if !report.group_by.is_empty() {
        out.push(format!(
            "one row per {}; numbers are geometric means over the group's runs",
            report.group_by.join(" × ")
        ));
    }
    out.extend(report.notes.iter().cloned());
    out
}
