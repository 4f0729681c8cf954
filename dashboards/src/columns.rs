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
    /// Like `Metric`, but empty when the value is an estimate (e.g. `estimate-tdp` energy):
    /// the "measured" columns of leaderboards. `Metric` is the opt-in that shows estimates.
    Measured(MetricId, Stat),
    /// Where a metric's value comes from (`rapl`, `nvml-energy-counter`, `estimate-tdp` ...).
    Source(MetricId),
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
            Column::Measured(m, s) => {
                format!("measured {}{} ({})", m.name(), s.suffix(), m.unit())
            }
            Column::Source(m) => format!("{} source", m.name()),
            Column::ModelParams => "params".into(),
            Column::ModelBytes => "model size".into(),
        }
    }

    pub fn cell(&self, r: &RunResult) -> Cell {
        match self {
            Column::Run => Cell::Text(r.label()),
            Column::Status => Cell::Text(format!("{:?}", r.status.state).to_lowercase()),
            Column::Measured(id, stat) => match r.metric(*id) {
                Some(m) if m.is_estimate() => Cell::Empty,
                _ => Column::Metric(*id, *stat).cell(r),
            },
            Column::Source(id) => r
                .metric(*id)
                .map_or(Cell::Empty, |m| Cell::Text(m.source.clone())),
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

impl Column {
    /// Whether this column's cell for `r` shows an estimate rather than a measurement
    /// (renderers mark it).
    pub fn is_estimate(&self, r: &RunResult) -> bool {
        match self {
            Column::Metric(id, _) => r.metric(*id).is_some_and(|m| m.is_estimate()),
            _ => false,
        }
    }
}

/// The same columns with every metric column restricted to measured values.
pub fn measured_only(columns: Vec<Column>) -> Vec<Column> {
    columns
        .into_iter()
        .map(|c| match c {
            Column::Metric(id, s) => Column::Measured(id, s),
            other => other,
        })
        .collect()
}

/// Default columns: the ones with data in at least one result, in a sensible order.
pub fn default_columns(results: &[RunResult]) -> Vec<Column> {
    use MetricId::*;
    if results
        .iter()
        .any(|r| r.metric(RequestsCompleted).is_some())
    {
        return serving_columns(results);
    }
    let wanted = [
        Column::Run,
        Column::Status,
        Column::Metric(Ttft, Stat::P50),
        Column::Metric(Ttft, Stat::P99),
        Column::Metric(Tpot, Stat::Value),
        Column::Metric(Itl, Stat::P99),
        Column::Metric(OutputThroughput, Stat::Value),
        Column::Metric(PeakRss, Stat::Value),
        Column::Metric(GpuMemoryPeak, Stat::Value),
        Column::Metric(Energy, Stat::Value),
        Column::Source(Energy),
        Column::Metric(EnergyPerOutputToken, Stat::Value),
        Column::Metric(Carbon, Stat::Value),
        Column::Metric(CostPer1mOutputTokens, Stat::Value),
        Column::ModelParams,
        Column::ModelBytes,
    ];
    wanted
        .into_iter()
        .filter(|c| results.iter().any(|r| c.cell(r) != Cell::Empty))
        .collect()
}

/// The columns of load tests against a server (scenario `serving`): latency percentiles,
/// throughput, goodput and SLO attainment, failures, and whether the generator kept its
/// schedule.
pub fn serving_columns(results: &[RunResult]) -> Vec<Column> {
    use MetricId::*;
    let wanted = [
        Column::Run,
        Column::Status,
        Column::Metric(Ttft, Stat::P50),
        Column::Metric(Ttft, Stat::P99),
        Column::Metric(Tpot, Stat::P50),
        Column::Metric(Tpot, Stat::P99),
        Column::Metric(Itl, Stat::P50),
        Column::Metric(Itl, Stat::P99),
        Column::Metric(E2eLatency, Stat::P50),
        Column::Metric(E2eLatency, Stat::P99),
        Column::Metric(RequestThroughput, Stat::Value),
        Column::Metric(OutputThroughput, Stat::Value),
        Column::Metric(Goodput, Stat::Value),
        Column::Metric(SloAttainment, Stat::Value),
        Column::Metric(SloMaxRequestRate, Stat::Value),
        Column::Metric(RequestsFailed, Stat::Value),
        Column::Metric(PeakConcurrency, Stat::Value),
        Column::Metric(ArrivalLateness, Stat::P99),
    ];
    wanted
        .into_iter()
        .filter(|c| results.iter().any(|r| c.cell(r) != Cell::Empty))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use effbench_harness::Metric;

    fn result_with(metrics: Vec<Metric>) -> RunResult {
        let env = serde_json::json!({
            "effbench_version": "0", "git_commit": "", "git_dirty": false,
            "rustc_version": "", "build_profile": "", "target": "", "features": [],
            "hostname": "", "os": "", "kernel": "", "arch": "", "cpu_model": "",
            "cpu_cores_physical": 1, "cpu_threads": 1, "ram_bytes": 1, "gpus": [], "nvml": ""
        });
        let mut r: RunResult = serde_json::from_value(serde_json::json!({
            "schema_version": 1, "id": "x", "suite": {"name": "t"},
            "config": {"id": "x", "suite": "t", "scenario": "inference", "backend": "b",
                       "params": {}, "seed": 1, "measure": {}},
            "status": {"state": "ok"}, "started_at": "", "finished_at": "",
            "iterations": 1, "measured_s": 1.0, "metrics": [],
            "stats_method": {"percentile": "", "stdev": "", "ci": "", "bootstrap_seed": 1},
            "env": env
        }))
        .unwrap();
        r.metrics = metrics;
        r
    }

    #[test]
    fn estimates_are_marked_and_kept_out_of_measured_columns() {
        let est = result_with(vec![Metric::scalar(MetricId::Energy, 12.0, "estimate-tdp")]);
        let real = result_with(vec![Metric::scalar(MetricId::Energy, 30.0, "rapl")]);
        let metric = Column::Metric(MetricId::Energy, Stat::Value);
        assert_eq!(metric.cell(&est), Cell::Number(12.0, "J"));
        assert!(metric.is_estimate(&est) && !metric.is_estimate(&real));
        let measured = measured_only(vec![metric.clone()]).remove(0);
        assert_eq!(measured.header(), "measured energy (J)");
        assert_eq!(measured.cell(&est), Cell::Empty, "estimates only on opt-in");
        assert_eq!(measured.cell(&real), Cell::Number(30.0, "J"));
        assert_eq!(
            Column::Source(MetricId::Energy).cell(&est),
            Cell::Text("estimate-tdp".into())
        );
    }
}
