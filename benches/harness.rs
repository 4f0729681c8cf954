//! Benchmarks of the harness's own hot paths (`cargo bench`; measured numbers go to docs/performance.md):
//! statistics and bootstrap, the compare verdict and its tests, Pareto fronts (1,000,000 2-D
//! points), Dynascore (10,000 rows), matrix expansion, result (de)serialization, comparison of
//! result sets and change-point detection. Inputs are synthetic and seeded, so runs compare.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use effbench_harness::analysis::changepoint::{detect, ChangePointConfig};
use effbench_harness::analysis::dynascore::{dynascore, DynaMetric};
use effbench_harness::analysis::pareto::{front, hypervolume};
use effbench_harness::analysis::verdict::{compare_samples, Rule};
use effbench_harness::comparison::{compare, Input};
use effbench_harness::fixtures;
use effbench_harness::gate::GateConfig;
use effbench_harness::hypothesis::{mann_whitney_u, welch_t_test};
use effbench_harness::stats::{bootstrap_ci95, Stats};
use effbench_harness::{matrix, Better, MetricId, RunResult, Suite};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::hint::black_box;
use std::time::Duration;

/// Log-normal-ish latency samples around `mean` (ms), seeded.
fn latencies(n: usize, mean: f64, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| mean * (0.9 + 0.2 * rng.random::<f64>()).powi(3))
        .collect()
}

fn points(n: usize, d: usize, seed: u64) -> Vec<Vec<f64>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| (0..d).map(|_| rng.random::<f64>()).collect())
        .collect()
}

fn stats(c: &mut Criterion) {
    let mut g = c.benchmark_group("stats");
    g.sample_size(10);
    for n in [1_000usize, 100_000] {
        let xs = latencies(n, 10.0, 1);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("from_samples", n), &xs, |b, xs| {
            b.iter(|| Stats::from_samples(black_box(xs), 42))
        });
    }
    let xs = latencies(1_000, 10.0, 2);
    g.bench_function("bootstrap_ci95/1000x10000", |b| {
        b.iter(|| bootstrap_ci95(black_box(&xs), 10_000, 42))
    });
    g.finish();
}

fn hypothesis(c: &mut Criterion) {
    let mut g = c.benchmark_group("hypothesis");
    let (x, y) = (latencies(10_000, 10.0, 3), latencies(10_000, 10.2, 4));
    g.bench_function("welch/10000+10000", |b| {
        b.iter(|| welch_t_test(black_box(&x), black_box(&y)))
    });
    g.bench_function("mann_whitney_normal/10000+10000", |b| {
        b.iter(|| mann_whitney_u(black_box(&x), black_box(&y)))
    });
    let (sx, sy) = (latencies(30, 10.0, 5), latencies(30, 10.5, 6));
    g.bench_function("mann_whitney_exact/30+30", |b| {
        b.iter(|| mann_whitney_u(black_box(&sx), black_box(&sy)))
    });
    let (cx, cy) = (latencies(1_000, 10.0, 7), latencies(1_000, 10.3, 8));
    g.sample_size(20);
    g.bench_function("compare_samples/1000+1000", |b| {
        b.iter(|| {
            compare_samples(
                black_box(&cx),
                black_box(&cy),
                Better::Lower,
                &Rule::default(),
            )
        })
    });
    g.finish();
}

fn pareto(c: &mut Criterion) {
    let mut g = c.benchmark_group("pareto");
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    let p2 = points(1_000_000, 2, 9);
    let senses2 = [Better::Higher, Better::Lower];
    g.throughput(Throughput::Elements(p2.len() as u64));
    g.bench_function("front_2d/1000000", |b| {
        b.iter(|| front(black_box(&p2), &senses2))
    });
    let p3 = points(100_000, 3, 10);
    let senses3 = [Better::Higher, Better::Lower, Better::Lower];
    g.throughput(Throughput::Elements(p3.len() as u64));
    g.bench_function("front_3d/100000", |b| {
        b.iter(|| front(black_box(&p3), &senses3))
    });
    let p = points(10_000, 2, 11);
    g.throughput(Throughput::Elements(p.len() as u64));
    g.bench_function("hypervolume_2d/10000", |b| {
        b.iter(|| hypervolume(black_box(&p), &senses2, &[0.0, 1.0]))
    });
    g.finish();
}

fn dyna(c: &mut Criterion) {
    let metrics = vec![
        DynaMetric {
            name: "accuracy".into(),
            better: Better::Higher,
            weight: 4.0,
            offset: 0.0,
        },
        DynaMetric {
            name: "throughput".into(),
            better: Better::Higher,
            weight: 1.0,
            offset: 0.0,
        },
        DynaMetric {
            name: "memory".into(),
            better: Better::Lower,
            weight: 1.0,
            offset: 16.0,
        },
        DynaMetric {
            name: "robustness".into(),
            better: Better::Higher,
            weight: 1.0,
            offset: 0.0,
        },
    ];
    let rows: Vec<Vec<f64>> = points(10_000, 4, 12)
        .into_iter()
        .map(|p| vec![p[0], 100.0 * p[1], 16.0 * p[2], p[3]])
        .collect();
    c.bench_function("dynascore/10000x4", |b| {
        b.iter(|| dynascore(&metrics, black_box(&rows)))
    });
}

fn expansion(c: &mut Criterion) {
    let registry = effbench_backends::registry();
    let suite = Suite::parse(
        "name = \"big\"\nscenario = \"inference\"\nbackend = \"candle\"\nmodel = \"default\"\n\
         [matrix]\ndtype = [\"f32\", \"f16\", \"bf16\"]\nbatch = [1, 2, 4, 8, 16, 32, 64, 128]\n\
         prompt_len = [8, 16, 32, 64, 128]\ngen_len = [8, 32, 64, 128]\n\
         exclude = [{ dtype = \"bf16\", batch = 128 }]\n",
        "big.toml",
    )
    .unwrap();
    let n = matrix::expand(&suite, &registry).unwrap().len();
    c.bench_function(&format!("matrix_expand/{n}_specs"), |b| {
        b.iter(|| matrix::expand(black_box(&suite), &registry).unwrap())
    });
}

/// A result like a real quickstart run: 8 sampled metrics of 1,000 samples (ITL 10,000).
fn big_result(batch: i64, scale: f64) -> RunResult {
    let sampled: Vec<(MetricId, Vec<f64>)> = [
        MetricId::Ttft,
        MetricId::Tpot,
        MetricId::Itl,
        MetricId::E2eLatency,
        MetricId::OutputThroughput,
        MetricId::TotalThroughput,
        MetricId::PrefillThroughput,
        MetricId::RequestThroughput,
    ]
    .iter()
    .enumerate()
    .map(|(i, m)| {
        let n = if *m == MetricId::Itl { 10_000 } else { 1_000 };
        (*m, latencies(n, 10.0 * scale, 100 + i as u64))
    })
    .collect();
    fixtures::result("bench", batch, "0123456789abcdef", &sampled)
}

fn results(c: &mut Criterion) {
    let mut g = c.benchmark_group("result");
    let r = big_result(1, 1.0);
    let text = serde_json::to_string_pretty(&r).unwrap();
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.bench_function("serialize_json", |b| {
        b.iter(|| serde_json::to_string_pretty(black_box(&r)).unwrap())
    });
    g.bench_function("deserialize_json", |b| {
        b.iter(|| serde_json::from_str::<RunResult>(black_box(&text)).unwrap())
    });
    g.finish();

    let mut g = c.benchmark_group("compare");
    g.sample_size(10);
    let base: Vec<RunResult> = (0..6).map(|i| big_result(1 << i, 1.0)).collect();
    let new: Vec<RunResult> = (0..6).map(|i| big_result(1 << i, 1.03)).collect();
    let cfg = GateConfig::default();
    g.bench_function("result_sets/6_runs_x_8_metrics", |b| {
        b.iter(|| {
            compare(
                &Input {
                    name: "base",
                    path: "base",
                    results: &base,
                },
                &Input {
                    name: "new",
                    path: "new",
                    results: &new,
                },
                &cfg,
            )
            .unwrap()
        })
    });
    g.finish();

    let series: Vec<f64> = (0..1_000)
        .map(|i| if i < 600 { 100.0 } else { 110.0 } + (i * 37 % 11) as f64 / 10.0)
        .collect();
    c.bench_function("changepoint/1000_points", |b| {
        b.iter(|| detect(black_box(&series), &ChangePointConfig::default()))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = stats, hypothesis, pareto, dyna, expansion, results
}
criterion_main!(benches);
