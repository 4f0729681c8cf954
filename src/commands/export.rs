//! `effbench export RESULTS --format github-action-benchmark`: results for other tools.

use anyhow::{bail, Result};
use effbench_dashboards::github_action_benchmark::{entries, tool_name, Entry};
use effbench_harness::result::{load_results, write_atomic};
use effbench_harness::{Better, MetricId};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// benchmark-action/github-action-benchmark, tools customSmallerIsBetter and
    /// customBiggerIsBetter.
    GithubActionBenchmark,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Direction {
    /// Lower-is-better metrics (tool customSmallerIsBetter).
    Smaller,
    /// Higher-is-better metrics (tool customBiggerIsBetter).
    Bigger,
}

/// Export results in another tool's format.
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
effbench export results/quickstart --format github-action-benchmark --out bench/\n      \
(writes bench/customSmallerIsBetter.json and bench/customBiggerIsBetter.json)\n  \
effbench export results/quickstart --format github-action-benchmark --direction smaller > smaller.json\n\n\
github-action-benchmark takes one direction per file, so the two are written separately.")]
pub struct Args {
    /// A result file, an invocation directory or a suite's results directory.
    pub results: PathBuf,
    #[arg(long, value_enum)]
    pub format: Format,
    /// Only one direction, printed on stdout (or written to --out as a file).
    #[arg(long, value_enum)]
    pub direction: Option<Direction>,
    /// Only these metrics (repeat); default all.
    #[arg(long, value_name = "METRIC", value_parser = |s: &str| MetricId::parse(s))]
    pub metric: Vec<MetricId>,
    /// Output: a directory for both files, or a file with --direction.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

fn json(e: &[Entry]) -> Result<String> {
    Ok(serde_json::to_string_pretty(e)? + "\n")
}

pub fn run(args: Args) -> Result<ExitCode> {
    let Format::GithubActionBenchmark = args.format;
    if args.direction.is_none() && args.out.is_none() {
        bail!(
            "github-action-benchmark takes one direction per file: give --out DIR (both files) \
             or --direction smaller|bigger"
        );
    }
    let results = load_results(&args.results)?;
    let dir = |d: Direction| match d {
        Direction::Smaller => Better::Lower,
        Direction::Bigger => Better::Higher,
    };
    match (args.direction, &args.out) {
        (Some(d), None) => print!("{}", json(&entries(&results, &args.metric, dir(d)))?),
        (Some(d), Some(file)) => {
            let e = entries(&results, &args.metric, dir(d));
            write_atomic(file, json(&e)?.as_bytes())?;
            eprintln!("{} entries -> {}", e.len(), file.display());
        }
        (None, Some(out)) => {
            for better in [Better::Lower, Better::Higher] {
                let e = entries(&results, &args.metric, better);
                let file = out.join(format!("{}.json", tool_name(better)));
                write_atomic(&file, json(&e)?.as_bytes())?;
                eprintln!("{} entries -> {}", e.len(), file.display());
            }
        }
        (None, None) => unreachable!("checked above"),
    }
    Ok(ExitCode::SUCCESS)
}
