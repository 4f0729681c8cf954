//! The metric reference (docs/metric-reference.md): every metric of the metric table
//! (`effbench_harness::metric`) with its unit, direction and definition, as markdown or as
//! aligned text. `effbench list metrics` prints it; tests/docs_reference.rs fails when the
//! committed file differs from what this writes.

use crate::export::{markdown_code, markdown_escape};
use effbench_harness::MetricId;

/// The path of the generated reference, relative to the repository root.
pub const FILE: &str = "docs/metric-reference.md";

/// The command that regenerates [`FILE`].
pub const REGENERATE: &str = "effbench list metrics --format markdown > docs/metric-reference.md";

/// docs/metric-reference.md: a title, where it comes from, and one table row per metric in
/// table order.
pub fn markdown() -> String {
    let mut out = String::from("# Metric reference\n\n");
    out.push_str(&format!(
        "<!-- Generated from the metric table (harness/records/src/metric.rs) by `{REGENERATE}`;\n\
         tests/docs_reference.rs fails when this file and the table disagree. Do not edit. -->\n\n"
    ));
    out.push_str(&format!(
        "Every metric effbench records ({} in all), in the order reports use. Units are those of \
         the stored numbers; `better` says which direction is an improvement. How the latency, \
         energy and training metrics are measured: [metrics.md](metrics.md); compression, \
         quality and speed-up metrics: [compression.md](compression.md).\n\n",
        MetricId::ALL.len()
    ));
    out.push_str("| metric | unit | better | definition |\n|---|---|---|---|\n");
    for m in MetricId::ALL {
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            markdown_code(m.name()),
            markdown_escape(m.unit()),
            better(*m),
            markdown_escape(m.description())
        ));
    }
    out
}

/// One line per metric: name, unit, direction, definition.
pub fn text() -> String {
    let w = MetricId::ALL
        .iter()
        .map(|m| m.name().len())
        .max()
        .unwrap_or(0);
    let u = MetricId::ALL
        .iter()
        .map(|m| m.unit().len())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for m in MetricId::ALL {
        out.push_str(&format!(
            "{:<w$}  {:<u$}  {:<6}  {}\n",
            m.name(),
            m.unit(),
            better(*m),
            m.description()
        ));
    }
    out
}

fn better(m: MetricId) -> &'static str {
    match m.better() {
        effbench_harness::metric::Better::Lower => "lower",
        effbench_harness::metric::Better::Higher => "higher",
    }
}
