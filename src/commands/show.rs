//! `effbench show RUN_OR_DIR`: a terminal table of stored results.

use anyhow::Result;
use effbench_harness::result;
use std::path::PathBuf;
use std::process::ExitCode;

/// Show stored results: one row per run, or every metric's statistics for a single run.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  effbench show results/quickstart          (newest invocation)\n  \
effbench show results/quickstart/2026-11-26T12-00-00Z\n  \
effbench show results/quickstart/2026-11-26T12-00-00Z/0123456789abcdef.json"
)]
pub struct Args {
    /// A result file, an invocation directory, or a suite's results directory.
    pub path: PathBuf,
    /// Print every metric's statistics for each run, not only the summary row.
    #[arg(long)]
    pub detail: bool,
    /// Leave estimated values (estimate-tdp energy and what derives from it) out of the table.
    #[arg(long)]
    pub measured_only: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let results = result::load_results(&args.path)?;
    let first = &results[0];
    println!("suite {}: {} run(s)", first.suite.name, results.len());
    println!("machine: {}", first.env.summary());
    if let Some(p) = &first.env.peak_flops {
        println!(
            "matmul peak (MFU denominator): {:.3e} FLOP/s, {} on {}, {} thread(s)",
            p.flops_per_s, p.dtype, p.device, p.threads
        );
    }
    if let Some(m) = &first.model {
        println!(
            "model: {} ({}, {}, {} weights)",
            m.name, m.arch, m.format, m.dtype
        );
    }
    println!();
    let mut columns = effbench_dashboards::columns::default_columns(&results);
    if args.measured_only {
        columns = effbench_dashboards::columns::measured_only(columns);
    }
    print!(
        "{}",
        effbench_dashboards::terminal::table_with_legend(&results, &columns)
    );
    if args.detail || results.len() == 1 {
        for r in &results {
            println!(
                "\n{}  [{}]  {} iterations in {:.2} s",
                r.label(),
                r.id,
                r.iterations,
                r.measured_s
            );
            print!("{}", effbench_dashboards::terminal::run_detail(r));
            for w in &r.warnings {
                println!("warning: {w}");
            }
            for line in &r.log {
                println!("log: {line}");
            }
            if let Some(reason) = &r.status.reason {
                println!("status: {:?}: {reason}", r.status.state);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
