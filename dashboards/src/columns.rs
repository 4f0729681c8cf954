//! What a row of a report shows. A [`Column`] pulls one number (or text) out of a result;
//! every renderer (terminal, markdown, CSV, JSON, the site) uses the same columns, so they
//! agree. Columns have a short key (`ttft:p99`, `batch`, `hardware`) that `--columns` and
//! `--sort` accept and that JSON output uses.

use effbench_harness::env::Environment;
use effbench_harness::{Better, MetricId, RunResult};

/// Which number of a metric a column shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stat {
    /// The metric's headline value (mean, or aggregate for throughput).
    Value,
    Min,
    P50,
    P90,
    P95,
    P99,
    Max,
    /// Coefficient of variation in % (unit `%`, lower is better).
    Cv,
}

impl Stat {
    const ALL: [(Stat, &'static str); 8] = [
        (Stat::Value, "value"),
        (Stat::Min, "min"),
        (Stat::P50, "p50"),
        (Stat::P90, "p90"),
        (Stat::P95, "p95"),
        (Stat::P99, "p99"),
        (Stat::Max, "max"),
        (Stat::Cv, "cv"),
    ];

    pub fn name(self) -> &'static str {
        Stat::ALL.iter().find(|(s, _)| *s == self).unwrap().1
    }

    fn parse(s: &str) -> Option<Stat> {
        match s {
            "mean" => Some(Stat::Value),
            _ => Stat::ALL.iter().find(|(_, n)| *n == s).map(|(s, _)| *s),
        }
    }
}

/// One column of a report.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    /// The run's label (its varying axes) or id; a group's key in grouped reports.
    Run,
    Id,
    Suite,
    Status,
    /// CPU model / GPUs the run measured on.
    Hardware,
    Host,
    /// When the run started (UTC, minutes).
    Date,
    Backend,
    /// Model name as loaded.
    Model,
    /// A resolved axis value (`batch`, `dtype` ...).
    Axis(String),
    Metric(MetricId, Stat),
    /// Like `Metric`, but empty when the value is an estimate (e.g. `estimate-tdp` energy):
    /// the "measured" columns of leaderboards. `Metric` is the opt-in that shows estimates.
    Measured(MetricId, Stat),
    /// Where a metric's value comes from (`rapl`, `nvml-energy-counter`, `estimate-tdp` ...).
    Source(MetricId),
    ModelParams,
    ModelBytes,
    /// Number of runs behind a row (1 per run; the group size in grouped reports).
    Runs,
}

/// A cell: a number in a unit, or text.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Number(f64, &'static str),
    Text(String),
    Empty,
}

impl Cell {
    pub fn number(&self) -> Option<f64> {
        match self {
            Cell::Number(v, _) => Some(*v),
            _ => None,
        }
    }
}

const SIMPLE: [(&str, Column); 11] = [
    ("run", Column::Run),
    ("id", Column::Id),
    ("suite", Column::Suite),
    ("status", Column::Status),
    ("hardware", Column::Hardware),
    ("host", Column::Host),
    ("date", Column::Date),
    ("backend", Column::Backend),
    ("model", Column::Model),
    ("params", Column::ModelParams),
    ("model_size", Column::ModelBytes),
];

impl Column {
    /// Parses a column key: `run`, `hardware`, `date`, `params`, `model_size`, an axis name
    /// (`batch`) or `axis:NAME`, a metric `ttft` (headline value) or `ttft:p99`
    /// (`value|mean|min|p50|p90|p95|p99|max|cv`).
    pub fn parse(spec: &str) -> Result<Column, String> {
        let spec = spec.trim();
        if let Some((_, c)) = SIMPLE.iter().find(|(k, _)| *k == spec) {
            return Ok(c.clone());
        }
        if spec == "runs" {
            return Ok(Column::Runs);
        }
        if let Some(axis) = spec.strip_prefix("axis:") {
            return Ok(Column::Axis(axis.to_string()));
        }
        if let Some(m) = spec.strip_prefix("source:") {
            return MetricId::parse(m).map(Column::Source);
        }
        if let Some(rest) = spec.strip_prefix("measured:") {
            return match Column::parse(rest)? {
                Column::Metric(id, s) => Ok(Column::Measured(id, s)),
                _ => Err(format!("column '{spec}': 'measured:' takes a metric")),
            };
        }
        let (name, stat) = match spec.split_once(':') {
            Some((n, s)) => (n, Some(s)),
            None => (spec, None),
        };
        if let Some(id) = MetricId::from_name(name) {
            let stat = match stat {
                None => Stat::Value,
                Some(s) => Stat::parse(s).ok_or_else(|| {
                    format!(
                        "column '{spec}': unknown statistic '{s}' (known: value, mean, min, p50, p90, p95, p99, max, cv)"
                    )
                })?,
            };
            return Ok(Column::Metric(id, stat));
        }
        if stat.is_none() && effbench_harness::axes::axis(spec).is_some() {
            return Ok(Column::Axis(spec.to_string()));
        }
        Err(format!(
            "unknown column '{spec}'; use a metric ({}) optionally with :p50/:p99/..., an axis name, or one of: {}",
            MetricId::known_names(),
            SIMPLE.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
        ))
    }

    /// Parses a comma-separated list of keys.
    pub fn parse_list(list: &str) -> Result<Vec<Column>, String> {
        list.split(',')
            .filter(|s| !s.trim().is_empty())
            .map(Column::parse)
            .collect()
    }

    /// The key [`Column::parse`] reads back.
    pub fn key(&self) -> String {
        if let Some((k, _)) = SIMPLE.iter().find(|(_, c)| c == self) {
            return k.to_string();
        }
        match self {
            Column::Runs => "runs".into(),
            Column::Axis(a) => a.clone(),
            Column::Metric(m, Stat::Value) => m.name().to_string(),
            Column::Metric(m, s) => format!("{}:{}", m.name(), s.name()),
            Column::Measured(m, s) => format!("measured:{}", Column::Metric(*m, *s).key()),
            Column::Source(m) => format!("source:{}", m.name()),
            _ => unreachable!("simple columns are in SIMPLE"),
        }
    }

    /// Header for renderers that format numbers for people (terminal, markdown): as
    /// [`Column::header`], without the unit where every cell names its own (bytes as
    /// `412 MiB`, counts as `135M`), so a header never claims a unit its cells are not in.
    pub fn display_header(&self) -> String {
        match self.unit() {
            Some(u @ ("bytes" | "count")) => {
                let h = self.header();
                h.strip_suffix(&format!(" ({u})")).unwrap_or(&h).to_string()
            }
            _ => self.header(),
        }
    }

    /// Header text with the unit of the numbers: `ttft p99 (ms)` (CSV and JSON carry raw
    /// numbers in that unit).
    pub fn header(&self) -> String {
        match self {
            Column::Metric(m, s) => {
                let stat = match s {
                    Stat::Value => String::new(),
                    s => format!(" {}", s.name()),
                };
                format!("{}{stat} ({})", m.name(), self.unit().unwrap_or(""))
            }
            Column::Measured(m, s) => format!("measured {}", Column::Metric(*m, *s).header()),
            Column::Source(m) => format!("{} source", m.name()),
            Column::ModelParams => "params".into(),
            Column::ModelBytes => "model size (bytes)".into(),
            Column::Run => "run".into(),
            c => c.key(),
        }
    }

    pub fn unit(&self) -> Option<&'static str> {
        match self {
            Column::Metric(_, Stat::Cv) | Column::Measured(_, Stat::Cv) => Some("%"),
            Column::Metric(m, _) | Column::Measured(m, _) => Some(m.unit()),
            Column::ModelParams | Column::Runs => Some("count"),
            Column::ModelBytes => Some("bytes"),
            _ => None,
        }
    }

    /// Direction of improvement, for numeric columns that have one.
    pub fn better(&self) -> Option<Better> {
        match self {
            Column::Metric(_, Stat::Cv) | Column::Measured(_, Stat::Cv) => Some(Better::Lower),
            Column::Metric(m, _) | Column::Measured(m, _) => Some(m.better()),
            Column::ModelParams | Column::ModelBytes => Some(Better::Lower),
            _ => None,
        }
    }

    pub fn is_numeric(&self) -> bool {
        self.unit().is_some()
    }

    pub fn cell(&self, r: &RunResult) -> Cell {
        let text = |s: String| Cell::Text(s);
        match self {
            Column::Run => text(r.label()),
            Column::Id => text(r.id.clone()),
            Column::Suite => text(r.suite.name.clone()),
            Column::Status => text(format!("{:?}", r.status.state).to_lowercase()),
            Column::Hardware => text(hardware(&r.env)),
            Column::Host => text(r.env.hostname.clone()),
            Column::Date => text(date(&r.started_at)),
            Column::Backend => text(r.config.backend.clone()),
            Column::Model => r
                .model
                .as_ref()
                .map_or(Cell::Empty, |m| text(m.name.clone())),
            Column::Axis(a) => r
                .config
                .param(a)
                .map_or(Cell::Empty, |v| text(v.to_string())),
            Column::Runs => Cell::Number(1.0, "count"),
            Column::Measured(id, stat) => match r.metric(*id) {
                Some(m) if m.is_estimate() => Cell::Empty,
                _ => Column::Metric(*id, *stat).cell(r),
            },
            Column::Source(id) => r
                .metric(*id)
                .map_or(Cell::Empty, |m| text(m.source.clone())),
            Column::Metric(id, stat) => {
                let Some(m) = r.metric(*id) else {
                    return not_reached(r, *id);
                };
                let v = match (stat, &m.stats) {
                    (Stat::Value, _) => Some(m.value),
                    (Stat::Min, Some(s)) => Some(s.min),
                    (Stat::P50, Some(s)) => Some(s.p50),
                    (Stat::P90, Some(s)) => Some(s.p90),
                    (Stat::P95, Some(s)) => Some(s.p95),
                    (Stat::P99, Some(s)) => Some(s.p99),
                    (Stat::Max, Some(s)) => Some(s.max),
                    (Stat::Cv, Some(s)) => Some(s.cv_pct),
                    _ => None,
                };
                match v {
                    Some(v) if v.is_finite() => Cell::Number(v, self.unit().unwrap_or("")),
                    _ => Cell::Empty,
                }
            }
            Column::ModelParams => r.model.as_ref().map_or(Cell::Empty, |m| {
                Cell::Number(m.params_total as f64, "count")
            }),
            // A model trained in the run was not loaded from a file: no size to show.
            Column::ModelBytes => r
                .model
                .as_ref()
                .filter(|m| m.file_bytes > 0)
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

/// The hardware a run measured on, short: `2 x NVIDIA H100 80GB HBM3 / AMD EPYC (32 threads)`
/// or `AMD EPYC (2 threads)`.
pub fn hardware(env: &Environment) -> String {
    let cpu = if env.cpu_model.is_empty() {
        format!("{} CPU ({} threads)", env.arch, env.cpu_threads)
    } else {
        format!("{} ({} threads)", env.cpu_model, env.cpu_threads)
    };
    match env.gpus.first() {
        Some(g) => format!("{} x {} / {cpu}", env.gpus.len(), g.name),
        None => cpu,
    }
}

/// `2026-11-26 13:17` from an RFC 3339 UTC timestamp (the input when it does not parse).
pub fn date(rfc3339: &str) -> String {
    let b = rfc3339.as_bytes();
    if b.len() >= 16 && b[10] == b'T' {
        format!("{} {}", &rfc3339[..10], &rfc3339[11..16])
    } else {
        rfc3339.to_string()
    }
}

/// A training run that finished without reaching its target loss shows `not reached` for
/// the time- and steps-to-target columns (a valid outcome, not missing data).
fn not_reached(r: &RunResult, id: MetricId) -> Cell {
    let target_metric = matches!(id, MetricId::TimeToTargetLoss | MetricId::StepsToTargetLoss);
    if target_metric && r.metric(MetricId::HeldoutLoss).is_some() {
        Cell::Text("not reached".into())
    } else {
        Cell::Empty
    }
}

/// Default columns: the ones with data in at least one result, in a sensible order. The
/// hardware is always shown; the suite and date when results span several. Other metrics
/// are one `--columns` away (the site shows every metric).
pub fn default_columns(results: &[RunResult]) -> Vec<Column> {
    use MetricId::*;
    if results
        .iter()
        .any(|r| r.metric(RequestsCompleted).is_some())
    {
        return serving_columns(results);
    }
    let distinct = |f: &dyn Fn(&RunResult) -> String| {
        let mut v: Vec<String> = results.iter().map(f).collect();
        v.sort();
        v.dedup();
        v.len()
    };
    let mut wanted = Vec::new();
    if distinct(&|r| r.suite.name.clone()) > 1 {
        wanted.push(Column::Suite);
    }
    wanted.extend([
        Column::Run,
        Column::Status,
        Column::Metric(Ttft, Stat::P50),
        Column::Metric(Ttft, Stat::P99),
        Column::Metric(Tpot, Stat::Value),
        Column::Metric(Itl, Stat::P99),
        Column::Metric(OutputThroughput, Stat::Value),
        Column::Metric(TrainThroughput, Stat::Value),
        Column::Metric(TimeToTargetLoss, Stat::Value),
        Column::Metric(HeldoutPerplexity, Stat::Value),
        Column::Metric(PerplexityFloor, Stat::Value),
        Column::Metric(TrainFlops, Stat::Value),
        Column::Metric(Mfu, Stat::Value),
        Column::Metric(PeakRss, Stat::Value),
        Column::Metric(GpuMemoryPeak, Stat::Value),
        Column::Metric(Energy, Stat::Value),
        Column::Source(Energy),
        Column::Metric(EnergyPerOutputToken, Stat::Value),
        Column::Metric(Carbon, Stat::Value),
        Column::Metric(CostPer1mOutputTokens, Stat::Value),
        Column::ModelParams,
        Column::ModelBytes,
        Column::Hardware,
    ]);
    if distinct(&|r| r.started_at.get(..10).unwrap_or("").to_string()) > 1 {
        wanted.push(Column::Date);
    }
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

/// Compression, quality, fidelity and speed-up columns (suites with `[analysis]`): the ones
/// with data in at least one result, after the run column.
pub fn compression_columns(results: &[RunResult]) -> Vec<Column> {
    use MetricId::*;
    let wanted = [
        ModelBytes,
        CompressionRatio,
        BitsPerParam,
        WeightsRemaining,
        Perplexity,
        Top1Agreement,
        KlDivergence,
        SpeedupTpot,
        SpeedupOutputThroughput,
    ];
    let cols: Vec<Column> = wanted
        .into_iter()
        .map(|m| Column::Metric(m, Stat::Value))
        .filter(|c| results.iter().any(|r| c.cell(r) != Cell::Empty))
        .collect();
    if cols
        .iter()
        .all(|c| *c == Column::Metric(ModelBytes, Stat::Value))
    {
        return Vec::new(); // model size alone is already in the runs table
    }
    std::iter::once(Column::Run).chain(cols).collect()
}

#[cfg(test)]
#[path = "columns_tests.rs"]
mod tests;
