//! What a row of a report shows. A [`Column`] pulls one number (or text) out of a result;
//! every renderer (terminal, markdown, CSV ...) uses the same columns, so they agree.

use effbench_harness::{MetricId, RunResult};

/// Which number of a metric a column shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stat {
    /// The metric's headline value (mean, or aggregate for throughput).
    Value,
    P50,
    P90,
    P99,
}

impl Stat {
    fn suffix(self) -> &'static str {
        match self {
            Stat::Value => "",
            Stat::P50 => " p50",
            Stat::P90 => " p90",
            Stat::P99 => " p99",
        }
    }
}

/// One column of a report.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    /// The run's label (its varying axes) or id.
    Run,
    Status,
    Metric(MetricId, Stat),
    ModelParams,
    ModelBytes,
}

/// A cell: a number in a unit, or text.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Number(f64, &'static str),
    Text(String),
    Empty,
}

impl Column {
    pub fn header(&self) -> String {
        match self {
            Column::Run => "run".into(),
            Column::Status => "status".into(),
            Column::Metric(m, s) => format!("{}{} ({})", m.name(), s.suffix(), m.unit()),
            Column::ModelParams => "params".into(),
            Column::ModelBytes => "model size".into(),
        }
    }

    pub fn cell(&self, r: &RunResult) -> Cell {
        match self {
            Column::Run => Cell::Text(r.label()),
            Column::Status => Cell::Text(format!("{:?}", r.status.state).to_lowercase()),
            Column::Metric(id, stat) => {
                let Some(m) = r.metric(*id) else {
                    return Cell::Empty;
                };
                let v = match (stat, &m.stats) {
                    (Stat::Value, _) => Some(m.value),
                    (Stat::P50, Some(s)) => Some(s.p50),
                    (Stat::P90, Some(s)) => Some(s.p90),
                    (Stat::P99, Some(s)) => Some(s.p99),
                    _ => None,
                };
                v.map_or(Cell::Empty, |v| Cell::Number(v, id.unit()))
            }
            Column::ModelParams => r.model.as_ref().map_or(Cell::Empty, |m| {
                Cell::Number(m.params_total as f64, "count")
            }),
            Column::ModelBytes => r
                .model
                .as_ref()
                .map_or(Cell::Empty, |m| Cell::Number(m.file_bytes as f64, "bytes")),
        }
    }
}

/// Default columns: the ones with data in at least one result, in a sensible order.
pub fn default_columns(results: &[RunResult]) -> Vec<Column> {
    use MetricId::*;
    let wanted = [
        Column::Run,
        Column::Status,
        Column::Metric(Ttft, Stat::P50),
        Column::Metric(Ttft, Stat::P99),
        Column::Metric(Tpot, Stat::Value),
        Column::Metric(Itl, Stat::P99),
        Column::Metric(OutputThroughput, Stat::Value),
        Column::Metric(PeakRss, Stat::Value),
        Column::ModelParams,
        Column::ModelBytes,
    ];
    wanted
        .into_iter()
        .filter(|c| results.iter().any(|r| c.cell(r) != Cell::Empty))
        .collect()
}
