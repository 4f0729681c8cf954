//! `effbench site` over 10 000 results (the goal: under 2 s on the 2-core dev machine,
//! leaderboard page under 2 MB): loading the result files in parallel, and building the whole
//! site (leaderboard, plots, Dynascore, 10 000 run pages, data.json) from memory.
//! Run: `cargo bench -p effbench-dashboards --bench site`.

use criterion::{criterion_group, criterion_main, Criterion};
use effbench_dashboards::fixtures::synthetic_results;
use effbench_dashboards::{load, site};
use std::time::Duration;

const N: usize = 10_000;

fn bench(c: &mut Criterion) {
    let results = synthetic_results("bench", N, 1);
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("results");
    std::fs::create_dir_all(&files).unwrap();
    for r in &results {
        std::fs::write(
            files.join(format!("{}.json", r.id)),
            serde_json::to_vec_pretty(r).unwrap(),
        )
        .unwrap();
    }
    let out = dir.path().join("site");
    let mut g = c.benchmark_group("site");
    g.sample_size(10).measurement_time(Duration::from_secs(30));
    g.bench_function("load 10k result files", |b| {
        b.iter(|| {
            load::load(std::slice::from_ref(&files))
                .unwrap()
                .results
                .len()
        })
    });
    g.bench_function("build site from 10k results", |b| {
        b.iter_batched(
            || results.clone(),
            |rs| site::build(rs, &site::Options::new(&out)).unwrap(),
            criterion::BatchSize::LargeInput,
        )
    });
    g.finish();
    let s = site::build(results, &site::Options::new(&out)).unwrap();
    println!(
        "10k results: {} files, {:.1} MB in all, largest leaderboard page {:.0} kB",
        s.files,
        s.total_bytes as f64 / 1e6,
        s.largest_leaderboard_bytes as f64 / 1e3
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
