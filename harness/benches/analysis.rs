//! Analysis hot paths (issue 6): the 2-D Pareto front of 1,000,000 points and the Dynascore
//! of 10,000 rows. `cargo bench -p effbench-harness --bench analysis`; numbers are in docs/compression.md (Analysis speed).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use effbench_harness::analysis::dynascore::{dynascore, DynaMetric};
use effbench_harness::analysis::pareto::{front, hypervolume};
use effbench_harness::Better;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Quality (higher) vs latency (lower) points: latency grows with quality plus noise, so the
/// front is a realistic few hundred points, not all or none.
fn points(n: usize, seed: u64) -> Vec<Vec<f64>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let q: f64 = rng.random();
            vec![q, 10.0 + 50.0 * q * q + 20.0 * rng.random::<f64>()]
        })
        .collect()
}

fn pareto_2d(c: &mut Criterion) {
    let pts = points(1_000_000, 1);
    let senses = [Better::Higher, Better::Lower];
    let n = front(&pts, &senses).unwrap().len();
    eprintln!("2-D front of 1,000,000 points has {n} points");
    let mut g = c.benchmark_group("pareto");
    g.sample_size(10);
    g.bench_function("front_2d_1M", |b| b.iter(|| front(&pts, &senses).unwrap()));
    g.bench_function("hypervolume_2d_1M", |b| {
        b.iter(|| hypervolume(&pts, &senses, &[0.0, 100.0]).unwrap())
    });
    g.finish();
}

fn dynascore_10k(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let rows: Vec<Vec<f64>> = (0..10_000)
        .map(|_| {
            vec![
                rng.random_range(50.0..90.0),   // accuracy
                rng.random_range(10.0..1000.0), // throughput
                rng.random_range(1.0..16.0),    // memory GB
                rng.random_range(0.5..1.0),     // fairness
                rng.random_range(0.5..1.0),     // robustness
            ]
        })
        .collect();
    let m = |name: &str, better, weight, offset| DynaMetric {
        name: name.into(),
        better,
        weight,
        offset,
    };
    let metrics = [
        m("accuracy", Better::Higher, 4.0, 0.0),
        m("throughput", Better::Higher, 1.0, 0.0),
        m("memory", Better::Lower, 1.0, 16.0),
        m("fairness", Better::Higher, 1.0, 0.0),
        m("robustness", Better::Higher, 1.0, 0.0),
    ];
    let mut g = c.benchmark_group("dynascore");
    g.sample_size(20);
    g.bench_function("rows_10k_metrics_5", |b| {
        b.iter_batched(
            || rows.clone(),
            |r| dynascore(&metrics, &r).unwrap(),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, pareto_2d, dynascore_10k);
criterion_main!(benches);
