//! `effbench show RUN_OR_DIR`: a terminal table of stored results.

use anyhow::{anyhow, Context, Result};
use effbench_dashboards::format::sig3;
use effbench_dashboards::terminal::Table;
use effbench_harness::analysis::suite::{lend_speedups, SuiteAnalysis, ANALYSIS_FILE};
use effbench_harness::RunResult;
use std::path::PathBuf;
use std::process::ExitCode;

/// Show stored results: one row per run, or every metric's statistics for a single run.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  effbench show results/quickstart          (newest invocation)\n  \
effbench show results/quickstart/2026-11-26T12-00-00Z\n  \
effbench show results/quickstart/2026-11-26T12-00-00Z/0123456789abcdef.json\n  \
effbench show results/quickstart --columns run,ttft:p99,peak_rss,energy,source:energy"
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
    /// Columns of the table, comma-separated keys as `report --columns` takes them (default:
    /// the scenario's most telling columns that fit in 120 characters).
    #[arg(long, value_name = "KEYS")]
    pub columns: Option<String>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let mut results = effbench_harness::loader::load_results(&args.path)?;
    // The analysis stage over this result set (speed-ups lent to the results in memory).
    let computed = lend_speedups(&mut results);
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
    use effbench_dashboards::{columns, terminal};
    match (&args.columns, args.measured_only) {
        (None, false) => print!(
            "{}",
            terminal::summary_table(&results, &args.path.display().to_string(), false)
        ),
        (keys, _) => {
            let mut cols = match keys {
                Some(k) => columns::Column::parse_list(k).map_err(|e| anyhow!("--columns: {e}"))?,
                None => columns::default_columns(&results),
            };
            if args.measured_only {
                cols = columns::measured_only(cols);
            }
            if keys.is_none() {
                cols = terminal::fit_columns(&results, cols, terminal::SUMMARY_WIDTH).0;
            }
            print!("{}", terminal::table_with_legend(&results, &cols));
        }
    }
    let compression = effbench_dashboards::terminal::compression_table(&results);
    if !compression.is_empty() {
        print!("\ncompression, quality and speed-up\n{compression}");
    }
    match analysis_of(&args.path)? {
        Some(a) => print!("{}", analysis_tables(&a, &results, ANALYSIS_FILE)),
        None => {
            for s in &computed {
                print!("{}", analysis_tables(&s.analysis, &results, "computed now"));
            }
        }
    }
    if !(args.detail || results.len() == 1) {
        print!("{}", terminal::warnings_summary(&results));
    }
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

/// The `analysis.json` of the invocation the path resolves to, if there is one.
fn analysis_of(path: &std::path::Path) -> Result<Option<SuiteAnalysis>> {
    let files = effbench_harness::loader::result_files(path)?;
    let Some(dir) = files.first().and_then(|f| f.parent()) else {
        return Ok(None);
    };
    let file = dir.join(ANALYSIS_FILE);
    if !file.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read '{}'", file.display()))?;
    serde_json::from_str(&text)
        .map(Some)
        .with_context(|| format!("'{}' is not a valid analysis file", file.display()))
}

/// Pareto membership and Dynascore per run.
fn analysis_tables(a: &SuiteAnalysis, results: &[RunResult], from: &str) -> String {
    let mut headers = vec!["run".to_string()];
    for f in &a.pareto {
        let names: Vec<&str> = f.objectives.iter().map(|o| o.metric.name()).collect();
        headers.push(format!("front {}", names.join("/")));
    }
    let dyna = a.dynascore.as_ref();
    if dyna.is_some() {
        headers.extend(["dynascore".to_string(), "rank".to_string()]);
    }
    let mut rows = Vec::new();
    for r in results {
        let mut row = vec![(r.label(), false)];
        for f in &a.pareto {
            let mark = if f.front.contains(&r.id) {
                "yes"
            } else if f.considered.contains(&r.id) {
                "no"
            } else {
                "-"
            };
            row.push((mark.to_string(), false));
        }
        if let Some(d) = dyna {
            match d.scores.iter().find(|s| s.id == r.id) {
                Some(s) => row.extend([(sig3(s.dynascore), true), (s.rank.to_string(), true)]),
                None => row.extend([("-".to_string(), true), ("-".to_string(), true)]),
            }
        }
        rows.push(row);
    }
    let mut out = format!("\nPareto fronts and Dynascore ({from})\n");
    out += &Table { headers, rows }.render();
    for f in &a.pareto {
        if let (Some(hv), Some(p)) = (f.hypervolume, &f.reference_point) {
            let names: Vec<&str> = f.objectives.iter().map(|o| o.metric.name()).collect();
            let p: Vec<String> = p.iter().map(|v| sig3(*v)).collect();
            out += &format!(
                "hypervolume {}: {} (reference point {})\n",
                names.join("/"),
                sig3(hv),
                p.join(", ")
            );
        }
    }
    if let Some(d) = dyna {
        let w: Vec<String> = d
            .metrics
            .iter()
            .map(|m| format!("{} {} (AMRS {})", m.metric, sig3(m.weight), sig3(m.amrs)))
            .collect();
        out += &format!("dynascore weights: {}\n", w.join(", "));
    }
    for n in &a.notes {
        out += &format!("note: {n}\n");
    }
    out
}
