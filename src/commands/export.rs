//! `effbench export RESULTS --format github-action-benchmark|vllm`: results for other tools.

use anyhow::{bail, Context, Result};
use effbench_dashboards::github_action_benchmark::{entries, tool_name, Entry};
use effbench_harness::loader::load_results;
use effbench_harness::result::write_atomic;
use effbench_harness::{Better, MetricId};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// benchmark-action/github-action-benchmark, tools customSmallerIsBetter and
    /// customBiggerIsBetter.
    GithubActionBenchmark,
    /// `vllm bench serve`'s result JSON, one file per serving run (from its per-request
    /// records when they were kept).
    Vllm,
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
effbench export results/quickstart --format github-action-benchmark --direction smaller > smaller.json\n  \
effbench export results/loadgen/run1 --format vllm --out vllm/ --save-detailed\n\n\
github-action-benchmark takes one direction per file, so the two are written separately.\n\
vllm writes <out>/<run id>.json per serving run (stdout when there is one run and no --out).")]
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
    /// vllm: statistics of these metrics (ttft,tpot,itl,e2el) [default: ttft,tpot,itl].
    #[arg(long)]
    pub percentile_metrics: Option<String>,
    /// vllm: these percentiles, e.g. 50,90,99 [default: 99].
    #[arg(long)]
    pub metric_percentiles: Option<String>,
    /// vllm: per-request lists (ttfts, itls, input_lens ...) from the run's records.
    #[arg(long)]
    pub save_detailed: bool,
}

/// vLLM result options from the shared flags.
pub fn vllm_options(
    percentile_metrics: Option<&str>,
    metric_percentiles: Option<&str>,
    detailed: bool,
) -> Result<effbench_dashboards::vllm::Options> {
    use effbench_dashboards::vllm;
    let mut o = vllm::Options {
        detailed,
        ..Default::default()
    };
    if let Some(m) = percentile_metrics {
        o.percentile_metrics = vllm::parse_metrics(m).map_err(anyhow::Error::msg)?;
    }
    if let Some(p) = metric_percentiles {
        o.percentiles = vllm::parse_percentiles(p).map_err(anyhow::Error::msg)?;
    }
    Ok(o)
}

/// The vLLM result of each serving run under `path`: `(run id, JSON)`.
pub fn vllm_results(
    path: &std::path::Path,
    o: &effbench_dashboards::vllm::Options,
) -> Result<Vec<(String, serde_json::Value)>> {
    use effbench_harness::serving::lines;
    let mut out = Vec::new();
    for file in effbench_harness::loader::result_files(path)? {
        let r = effbench_harness::result::read_result(&file)?;
        if r.config.serving.is_none() {
            continue;
        }
        let rec_path = lines::path_for(&file);
        let records = if rec_path.is_file() {
            Some(lines::read(&rec_path)?)
        } else {
            None
        };
        if o.detailed && records.is_none() {
            bail!(
                "--save-detailed needs the run's per-request records '{}' (not kept for run {})",
                rec_path.display(),
                r.id
            );
        }
        out.push((
            r.id.clone(),
            effbench_dashboards::vllm::result(&r, records.as_deref(), o),
        ));
    }
    if out.is_empty() {
        bail!("no serving runs under '{}'", path.display());
    }
    Ok(out)
}

fn run_vllm(args: &Args) -> Result<ExitCode> {
    let o = vllm_options(
        args.percentile_metrics.as_deref(),
        args.metric_percentiles.as_deref(),
        args.save_detailed,
    )?;
    let runs = vllm_results(&args.results, &o)?;
    match &args.out {
        None if runs.len() == 1 => println!("{}", serde_json::to_string_pretty(&runs[0].1)?),
        None => bail!(
            "{} serving runs: give --out DIR (one <run id>.json each)",
            runs.len()
        ),
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create '{}'", dir.display()))?;
            for (id, v) in &runs {
                let file = dir.join(format!("{id}.json"));
                write_atomic(&file, (serde_json::to_string_pretty(v)? + "\n").as_bytes())?;
                eprintln!("vllm result -> {}", file.display());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn json(e: &[Entry]) -> Result<String> {
    Ok(serde_json::to_string_pretty(e)? + "\n")
}

pub fn run(args: Args) -> Result<ExitCode> {
    if args.format == Format::Vllm {
        return run_vllm(&args);
    }
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
