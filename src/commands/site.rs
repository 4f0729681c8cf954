//! `effbench site RESULTS... --out DIR`: the static leaderboard website. `run` calls
//! [`after_run`] so the quickstart leaves a browsable site in results/site/.

use anyhow::{anyhow, Result};
use effbench_dashboards::columns::Column;
use effbench_dashboards::{load, site};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// Where `run` writes the site, over every result under `results/`.
pub const DEFAULT_SITE: &str = "results/site";
pub const RESULTS_ROOT: &str = "results";

/// Build the static website: leaderboards per suite, plots, Dynascore, a page per run, data.json.
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  effbench site results\n  \
effbench site results/quickstart other-machine/results --out public\n  \
effbench site results --plot ttft:p99,output_throughput --page-size 50\n\n\
Open DIR/index.html in a browser (works from file://, no server, no network).")]
pub struct Args {
    /// Result files or directories (searched recursively).
    #[arg(required = true)]
    pub results: Vec<PathBuf>,
    /// Output directory (an earlier site there is replaced; any other non-empty directory is refused).
    #[arg(long, default_value = DEFAULT_SITE)]
    pub out: PathBuf,
    /// One row per result instead of the newest result per run and machine.
    #[arg(long)]
    pub all_runs: bool,
    /// Rows per leaderboard page.
    #[arg(long, default_value_t = 100)]
    pub page_size: usize,
    /// Extra scatter plot X,Y (column keys, e.g. ttft:p99,output_throughput); repeatable.
    #[arg(long, value_name = "X,Y")]
    pub plot: Vec<String>,
    /// Suites whose row data exceed this many bytes load it on demand from a separate file.
    #[arg(long, default_value_t = 1_000_000, value_name = "BYTES")]
    pub inline_limit: usize,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let mut opts = site::Options::new(&args.out);
    opts.all_runs = args.all_runs;
    opts.page_size = args.page_size.max(1);
    opts.inline_limit = args.inline_limit;
    for p in &args.plot {
        let (x, y) = p
            .split_once(',')
            .ok_or_else(|| anyhow!("--plot '{p}': expected X,Y (two column keys)"))?;
        let parse = |c: &str| Column::parse(c).map_err(|e| anyhow!("--plot '{p}': {e}"));
        opts.plots.push((parse(x)?, parse(y)?));
    }
    let t = Instant::now();
    let s = build(&args.results, &opts)?;
    eprintln!(
        "{} suite(s), {} run(s), {} files ({:.1} MB; largest leaderboard page {:.0} kB) in {:.2} s",
        s.suites,
        s.runs,
        s.files,
        s.total_bytes as f64 / 1e6,
        s.largest_leaderboard_bytes as f64 / 1e3,
        t.elapsed().as_secs_f64()
    );
    println!("site: {}", s.index.display());
    Ok(ExitCode::SUCCESS)
}

fn build(paths: &[PathBuf], opts: &site::Options) -> Result<site::Summary> {
    let loaded = load::load(paths)?;
    if loaded.duplicates > 0 {
        eprintln!(
            "note: {} duplicate result file(s) counted once",
            loaded.duplicates
        );
    }
    site::build(loaded.results, opts)
}

/// After `run`: rebuild results/site over everything under results/ (plus `out_dir` when it
/// lies elsewhere) and print where it is. A problem is reported but never fails the run.
pub fn after_run(out_dir: &Path) {
    let root = PathBuf::from(RESULTS_ROOT);
    let mut paths = Vec::new();
    if root.is_dir() {
        paths.push(root.clone());
    }
    let inside = match (out_dir.canonicalize(), root.canonicalize()) {
        (Ok(o), Ok(r)) => o.starts_with(r),
        _ => false,
    };
    if !inside {
        paths.push(out_dir.to_path_buf());
    }
    match build(&paths, &site::Options::new(DEFAULT_SITE)) {
        Ok(s) => eprintln!("site: {}", s.index.display()),
        Err(e) => eprintln!(
            "warning: site not updated: {}",
            effbench_harness::runner::error_line(&e)
        ),
    }
}
