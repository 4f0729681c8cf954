//! Synthetic results for tests, golden files and benchmarks of the renderers — never
//! measurements: every metric's `source` is `synthetic`, the suite is named `synthetic-*`,
//! and the log says so. The numbers follow a simple performance model (throughput grows with
//! batch, latency with prompt length, memory with both) so that leaderboards have real
//! trade-offs, Pareto fronts and Dynascore re-rankings to show.

use effbench_harness::axes::AxisValue;
use effbench_harness::env::{Environment, GpuInfo};
use effbench_harness::records::ModelInfo;
use effbench_harness::records::Scenario;
use effbench_harness::records::{RunState, Series, StatsMethod, Status, SuiteInfo};
use effbench_harness::stats::Stats;
use effbench_harness::{Metric, MetricId, RunResult, RunSpec};
use std::collections::BTreeMap;

pub const SOURCE: &str = "synthetic";

/// Deterministic xorshift, enough for fixture noise.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Multiplicative noise around 1 of relative size `rel`.
    fn noise(&mut self, rel: f64) -> f64 {
        1.0 + rel * (2.0 * self.next() - 1.0)
    }
}

/// Sample shapes (mean 1) and their statistics, computed once and scaled per run: the same
/// statistics `Stats::from_samples` gives for the scaled samples (every field is linear in a
/// positive scale).
struct Shape {
    samples: Vec<f64>,
    stats: Stats,
}

impl Shape {
    fn new(n: usize, spread: f64, seed: u64) -> Shape {
        let mut rng = Rng(seed | 1);
        let raw: Vec<f64> = (0..n)
            .map(|i| 1.0 + spread * (rng.next() - 0.5) + if i == 0 { spread } else { 0.0 })
            .collect();
        let m = raw.iter().sum::<f64>() / n as f64;
        let samples: Vec<f64> = raw.iter().map(|x| x / m).collect();
        let stats = Stats::from_samples(&samples, seed).expect("finite samples");
        Shape { samples, stats }
    }

    fn metric(&self, id: MetricId, mean: f64) -> Metric {
        let s = &self.stats;
        let k = mean;
        let stats = Stats {
            count: s.count,
            mean: s.mean * k,
            stdev: s.stdev * k,
            cv_pct: s.cv_pct,
            min: s.min * k,
            p50: s.p50 * k,
            p90: s.p90 * k,
            p95: s.p95 * k,
            p99: s.p99 * k,
            max: s.max * k,
            ci95_mean: [s.ci95_mean[0] * k, s.ci95_mean[1] * k],
            ci95_median: [s.ci95_median[0] * k, s.ci95_median[1] * k],
            bootstrap_resamples: s.bootstrap_resamples,
        };
        Metric {
            name: id,
            unit: id.unit().to_string(),
            better: id.better(),
            value: stats.mean,
            source: SOURCE.into(),
            stats: Some(stats),
            samples: self.samples.iter().map(|x| x * k).collect(),
            samples_total: None,
            sampling: None,
        }
    }
}

fn machine(b: bool) -> Environment {
    Environment {
        effbench_version: env!("CARGO_PKG_VERSION").into(),
        git_commit: "0000000000000000000000000000000000000000".into(),
        git_dirty: false,
        rustc_version: "rustc (synthetic)".into(),
        build_profile: "release".into(),
        target: "x86_64-unknown-linux-gnu".into(),
        features: if b { vec!["cuda".into()] } else { vec![] },
        hostname: if b { "synth-b" } else { "synth-a" }.into(),
        os: "Linux (synthetic)".into(),
        kernel: "6.0".into(),
        arch: "x86_64".into(),
        cpu_model: if b {
            "Synthetic CPU B"
        } else {
            "Synthetic CPU A"
        }
        .into(),
        cpu_cores_physical: if b { 16 } else { 2 },
        cpu_threads: if b { 32 } else { 2 },
        ram_bytes: if b { 256 << 30 } else { 24 << 30 },
        cpu_governor: None,
        gpus: if b {
            vec![GpuInfo {
                index: 0,
                name: "Synthetic GPU".into(),
                memory_bytes: 80 << 30,
                uuid: None,
            }]
        } else {
            vec![]
        },
        nvml: if b {
            "ok (synthetic)"
        } else {
            "unavailable: synthetic"
        }
        .into(),
        scheduler: None,
        peak_flops: None,
        peak_bandwidth: None,
    }
}

/// `n` results of suite `synthetic-<suite>`: models × dtype × batch × prompt length on two
/// machines and several dates, deterministic for a seed. Small `n` is cheap (statistics are
/// scaled, not recomputed), so 10 000 results take well under a second.
pub fn synthetic_results(suite: &str, n: usize, seed: u64) -> Vec<RunResult> {
    let shapes = [
        Shape::new(6, 0.2, 11),
        Shape::new(6, 0.1, 12),
        Shape::new(150, 0.6, 13),
    ];
    let dtypes = ["f32", "f16", "bf16"];
    let batches = [1i64, 4, 16];
    let prompts = [32i64, 128, 512];
    let per_model = dtypes.len() * batches.len() * prompts.len();
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let suite_name = format!("synthetic-{suite}");
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let model_ix = i / per_model;
        let dtype = dtypes[i % dtypes.len()];
        let batch = batches[(i / dtypes.len()) % batches.len()];
        let prompt = prompts[(i / (dtypes.len() * batches.len())) % prompts.len()];
        let gpu = (model_ix / 4) % 2 == 1;
        let model_name = format!("synthetic-model-{model_ix}");
        let mut params = BTreeMap::new();
        params.insert("model".to_string(), AxisValue::Str(model_name.clone()));
        params.insert("dtype".to_string(), AxisValue::Str(dtype.into()));
        params.insert("batch".to_string(), AxisValue::Int(batch));
        params.insert("prompt_len".to_string(), AxisValue::Int(prompt));
        params.insert("gen_len".to_string(), AxisValue::Int(32));
        params.insert(
            "device".to_string(),
            AxisValue::Str(if gpu { "cuda:0" } else { "cpu" }.into()),
        );
        let params_total = 1_000_000u64 * (1 + (model_ix as u64 % 7) * 3);
        let bytes_per = match dtype {
            "f32" => 4.0,
            _ => 2.0,
        };
        let speed = match dtype {
            "f32" => 1.0,
            "f16" => 1.35,
            _ => 1.2,
        } * if gpu { 6.0 } else { 1.0 }
            / (1.0 + (model_ix % 7) as f64 * 0.5);
        let b = batch as f64;
        let p = prompt as f64;
        let tpot = 2.0 / speed * (1.0 + 0.08 * b) * rng.noise(0.05);
        let ttft = (0.6 + 0.03 * p * b) / speed * rng.noise(0.05);
        let e2e = ttft + 31.0 * tpot;
        let thr = b * 32.0 / e2e * 1000.0;
        let rss = params_total as f64 * bytes_per * 1.3 + 4096.0 * b * (p + 32.0);
        let id = format!(
            "{:016x}",
            (i as u64 + 1).wrapping_mul(0x2545_F491_4F6C_DD1D)
        );
        let day = 1 + (i % 28);
        let started = format!("2026-02-{day:02}T{:02}:{:02}:00Z", i % 24, (i * 7) % 60);
        let metrics = vec![
            shapes[0].metric(MetricId::Ttft, ttft),
            shapes[1].metric(MetricId::Tpot, tpot),
            shapes[2].metric(MetricId::Itl, tpot),
            shapes[0].metric(MetricId::E2eLatency, e2e),
            shapes[1].metric(MetricId::OutputThroughput, thr),
            Metric::scalar(MetricId::LoadTime, 50.0 + params_total as f64 / 1e5, SOURCE),
            Metric::scalar(MetricId::PeakRss, rss.round(), SOURCE),
        ];
        let series = vec![Series {
            name: "rss".into(),
            x_unit: "s".into(),
            y_unit: "bytes".into(),
            source: SOURCE.into(),
            period_ms: Some(100.0),
            points: (0..20)
                .map(|t| [t as f64 * 0.1, rss * (0.6 + 0.4 * (t as f64 / 19.0))])
                .collect(),
        }];
        out.push(RunResult {
            schema_version: effbench_harness::records::SCHEMA_VERSION,
            id: id.clone(),
            suite: SuiteInfo {
                name: suite_name.clone(),
                description: "Synthetic results for tests and benchmarks (not measurements)".into(),
                file: None,
                sha256: None,
                varying_axes: vec![
                    "model".into(),
                    "dtype".into(),
                    "batch".into(),
                    "prompt_len".into(),
                ],
                analysis: None,
            },
            config: RunSpec {
                id,
                ..RunSpec::new(
                    suite_name.clone(),
                    Scenario::Inference,
                    "synthetic",
                    params,
                    seed,
                )
            },
            status: Status {
                state: RunState::Ok,
                reason: None,
            },
            started_at: started.clone(),
            finished_at: started,
            iterations: 6,
            measured_s: 6.0 * e2e / 1000.0,
            model: Some(ModelInfo {
                name: model_name,
                format: "hf".into(),
                arch: "llama".into(),
                dtype: dtype.into(),
                params_total,
                params_non_embedding: params_total * 9 / 10,
                file_bytes: params_total * 4,
                loaded_bytes: (params_total as f64 * bytes_per) as u64,
                path: None,
                sha256: None,
                details: BTreeMap::new(),
                roofline: None,
            }),
            metrics,
            series,
            warnings: vec![],
            stats_method: StatsMethod::current(seed),
            env: machine(gpu),
            log: vec!["synthetic result generated by effbench-dashboards fixtures".into()],
        });
    }
    out
}

/// Puts `payload` into every user-provided string a page shows: model names and axis values,
/// suite names and descriptions, hardware, host, status reason, warnings and log lines.
pub fn inject(results: &mut [RunResult], payload: &str) {
    for r in results.iter_mut() {
        r.suite.description = format!("{payload} description");
        r.suite.name = format!("{}{payload}", r.suite.name);
        r.config.suite = r.suite.name.clone();
        if let Some(m) = r.model.as_mut() {
            m.name = format!("{}{payload}", m.name);
            m.details
                .insert(format!("k{payload}"), serde_json::json!(payload));
        }
        if let Some(AxisValue::Str(s)) = r.config.params.get_mut("model") {
            s.push_str(payload);
        }
        r.env.cpu_model = format!("CPU {payload}");
        r.env.hostname = format!("host{payload}");
        r.log.push(payload.to_string());
        r.warnings.push(effbench_harness::warnings::Warning {
            kind: effbench_harness::warnings::WarningKind::Estimated,
            message: payload.to_string(),
            hint: payload.to_string(),
        });
        if let Some(s) = r.series.first_mut() {
            s.name = payload.to_string();
        }
    }
    if let Some(r) = results.last_mut() {
        r.status = Status {
            state: RunState::Failed,
            reason: Some(payload.to_string()),
        };
    }
}
