//! Writes N synthetic result files (clearly labelled `synthetic`, never measurements) for
//! measuring `effbench report` and `effbench site` on big result sets:
//!
//! ```text
//! cargo run --release -p effbench-dashboards --example synth_results -- 10000 /tmp/r10k
//! time target/release/effbench site /tmp/r10k --out /tmp/site10k
//! ```

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        eprintln!("usage: synth_results N DIR");
        std::process::exit(2);
    }
    let n: usize = args[1].parse().unwrap_or_else(|_| {
        eprintln!("N must be a number, got '{}'", args[1]);
        std::process::exit(2)
    });
    let dir = std::path::PathBuf::from(&args[2]);
    let results = effbench_dashboards::fixtures::synthetic_results("bench", n, 1);
    for r in &results {
        let path = dir.join(format!("{}.json", r.id));
        if let Err(e) = effbench_harness::result::write_json(&path, r) {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
    let bytes: u64 = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    println!(
        "{n} results, {:.1} MB, in {}",
        bytes as f64 / 1e6,
        dir.display()
    );
}
