//! `effbench run SUITE`: expand, validate, run every combination, write results.

use super::{EXIT_INTERRUPTED, EXIT_RUN_FAILED};
use anyhow::Result;
use effbench_harness::cluster::{shard, ShardInfo, ShardSel};
use effbench_harness::invocation::{self, Options, ShardContext};
use effbench_harness::result::RunState;
use effbench_harness::RunResult;
use std::path::PathBuf;
use std::process::ExitCode;

/// Run a suite and write one result per run plus a manifest.
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  effbench run suites/quickstart.toml\n  \
effbench run suites/quickstart.toml --filter dtype=f32 --filter batch=1\n  \
effbench run suites/quickstart.toml --dry-run\n  \
effbench run suites/quickstart.toml --shard 0/4 --out results/q/shard-0\n  \
effbench run suites/quickstart.toml --out results/mine --json > summary.json\n  \
effbench run suites/quickstart.toml --grid-intensity 350 --pue 1.2 --price-per-hour 3.5")]
pub struct Args {
    /// Suite file (TOML).
    pub suite: PathBuf,
    /// Output directory [default: results/<suite>/<UTC timestamp>].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Only runs whose axis has this value (axis=value; repeat to narrow, same axis twice = either).
    #[arg(long, value_name = "AXIS=VALUE")]
    pub filter: Vec<String>,
    /// Print the expanded runs and exit without running.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the results as a JSON array on stdout (progress and tables go to stderr).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub meters: super::meters::MeterArgs,
    /// Run only shard I of N (from 0): a deterministic, cost-balanced subset of the runs
    /// (`effbench plan SUITE --shards N` shows the assignment; `effbench merge` joins shards).
    #[arg(long, value_name = "I/N", allow_hyphen_values = true)]
    pub shard: Option<String>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let shard = args.shard.as_deref().map(ShardSel::parse).transpose()?;
    let registry = effbench_backends::registry();
    let (suite, mut specs) = super::plan(&args.suite, &registry, &args.filter)?;
    let meter_settings = args.meters.resolve(&suite.meters)?;
    for s in &mut specs {
        s.meters = meter_settings.clone();
    }
    let axes = effbench_harness::matrix::varying_axes(&specs);
    let (specs, shard_ctx) = match shard {
        None => (specs, None),
        Some(sel) => {
            let ctx = ShardContext {
                info: ShardInfo {
                    index: sel.index,
                    count: sel.count,
                    cost_model: shard::COST_MODEL.into(),
                    plan: shard::plan(&specs, sel.count, &axes),
                },
                suite_varying_axes: axes.clone(),
            };
            let mine = shard::select(&specs, sel);
            eprintln!(
                "effbench: shard {sel}: {} of the suite's {} runs",
                mine.len(),
                specs.len()
            );
            (mine, Some(ctx))
        }
    };
    if args.dry_run {
        println!(
            "{}: {} run(s), nothing executed (--dry-run)",
            args.suite.display(),
            specs.len()
        );
        for s in &specs {
            println!("  {}  {}", s.id, s.label(&axes));
        }
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "effbench: suite '{}' ({} runs, backend {})",
        suite.name,
        specs.len(),
        super::backends_of(&specs)
    );
    let opts = Options {
        out: args.out.clone(),
        command: std::env::args().collect(),
        features: super::features(),
        shard: shard_ctx,
    };
    let outcome = invocation::run_suite(&suite, &specs, &registry, &opts, &mut |r, progress| {
        progress.println(&one_line(r));
        for w in &r.warnings {
            progress.println(&format!("    warning: {w}"));
        }
    })?;
    let table = effbench_dashboards::terminal::runs_table(&outcome.results);
    if args.json {
        eprint!("\n{table}");
        println!("{}", serde_json::to_string_pretty(&outcome.results)?);
    } else {
        print!("\n{table}");
    }
    eprintln!("results: {}", outcome.out_dir.display());
    if outcome.interrupted {
        eprintln!(
            "interrupted: {} of {} runs saved in {}",
            outcome.results.len(),
            specs.len(),
            outcome.out_dir.display()
        );
        return Ok(ExitCode::from(EXIT_INTERRUPTED));
    }
    if outcome.failed() > 0 {
        eprintln!("{} run(s) failed", outcome.failed());
        return Ok(ExitCode::from(EXIT_RUN_FAILED));
    }
    Ok(ExitCode::SUCCESS)
}

/// `  ok  dtype=f32 batch=1  ttft p50 12.3 ms, 456 tok/s` style progress line.
fn one_line(r: &RunResult) -> String {
    use effbench_dashboards::format::value;
    use effbench_harness::MetricId;
    let state = match r.status.state {
        RunState::Ok => "ok",
        RunState::Failed => "FAILED",
        RunState::Interrupted => "interrupted",
    };
    let mut parts = Vec::new();
    if let Some(s) = r.metric(MetricId::Ttft).and_then(|m| m.stats.as_ref()) {
        parts.push(format!("ttft p50 {} ms", value(s.p50, "ms")));
    }
    if let Some(m) = r.metric(MetricId::OutputThroughput) {
        parts.push(format!("{} tok/s", value(m.value, "tok/s")));
    }
    if let Some(reason) = &r.status.reason {
        parts.push(reason.clone());
    }
    format!("{state:>11}  {}  {}", r.label(), parts.join(", "))
}
