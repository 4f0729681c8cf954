//! Synthetic results for unit tests and benchmarks of the analysis code (compare, gate,
//! history, exports). Never used for measurements: every result built here says so in its
//! log and its environment (`hostname = "synthetic"`).

use crate::env::Environment;
use crate::metric::{Metric, MetricId};
use crate::records::RunSpec;
use crate::records::Scenario;
use crate::records::{RunResult, RunState, StatsMethod, Status, SuiteInfo, SCHEMA_VERSION};
use std::collections::BTreeMap;

/// A fixed environment (no probing of the machine).
pub fn environment(cpu: &str, commit: &str) -> Environment {
    Environment {
        effbench_version: env!("CARGO_PKG_VERSION").into(),
        git_commit: commit.into(),
        git_dirty: false,
        rustc_version: "synthetic".into(),
        build_profile: "synthetic".into(),
        target: "synthetic".into(),
        features: Vec::new(),
        hostname: "synthetic".into(),
        os: "synthetic".into(),
        kernel: "synthetic".into(),
        arch: "x86_64".into(),
        cpu_model: cpu.into(),
        cpu_cores_physical: 2,
        cpu_threads: 2,
        ram_bytes: 1 << 34,
        cpu_governor: None,
        gpus: Vec::new(),
        nvml: "synthetic".into(),
        scheduler: None,
        peak_flops: None,
        peak_bandwidth: None,
    }
}

/// An `ok` result of suite `suite` with `batch = <batch>` and the given sampled metrics
/// (scalar metrics when a sample list has one element).
pub fn result(
    suite: &str,
    batch: i64,
    commit: &str,
    metrics: &[(MetricId, Vec<f64>)],
) -> RunResult {
    let mut params = BTreeMap::new();
    params.insert("batch".to_string(), batch.into());
    params.insert("dtype".to_string(), "f32".into());
    let config = RunSpec::new(suite, Scenario::Inference, "candle", params, 42);
    let metrics = metrics
        .iter()
        .map(|(id, s)| {
            if s.len() == 1 {
                Metric::scalar(*id, s[0], "synthetic")
            } else {
                Metric::sampled(*id, s.clone(), "synthetic", 42)
            }
        })
        .collect();
    RunResult {
        schema_version: SCHEMA_VERSION,
        id: config.id.clone(),
        suite: SuiteInfo {
            name: suite.into(),
            description: String::new(),
            file: None,
            sha256: None,
            varying_axes: vec!["batch".into()],
            analysis: None,
        },
        config,
        status: Status {
            state: RunState::Ok,
            reason: None,
        },
        started_at: "2026-01-01T00:00:00.000Z".into(),
        finished_at: "2026-01-01T00:00:01.000Z".into(),
        iterations: 1,
        measured_s: 1.0,
        model: None,
        metrics,
        series: Vec::new(),
        warnings: Vec::new(),
        stats_method: StatsMethod::current(42),
        env: environment("Synthetic CPU", commit),
        log: vec!["synthetic result (fixtures.rs), not a measurement".into()],
    }
}

/// `n` samples around `mean` with a deterministic ±`spread_pct` % ripple (no RNG needed).
pub fn ripple(n: usize, mean: f64, spread_pct: f64) -> Vec<f64> {
    (0..n)
        .map(|i| {
            let phase = ((i * 7919) % 101) as f64 / 100.0 * 2.0 - 1.0;
            mean * (1.0 + spread_pct / 100.0 * phase)
        })
        .collect()
}
