//! `effbench report RESULTS...`: one comparative table over any number of result files and
//! directories (suites, machines, dates), as a terminal table, markdown, CSV or JSON.

use anyhow::{anyhow, Result};
use effbench_dashboards::columns::Column;
use effbench_dashboards::export::{exporter, Format};
use effbench_dashboards::{load, report, tracks};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Compare results across runs, suites, machines and dates.
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  effbench report results\n  \
effbench report results/quickstart --format markdown --sort output_throughput\n  \
effbench report results/quickstart --group-by dtype --baseline f32\n  \
effbench report results/quickstart --baseline dtype=f32 --columns run,ttft:p50,tpot,output_throughput\n  \
effbench report results/a results/b/run.json --format csv > all.csv\n  \
effbench report results/retrieval --tracks tracks.toml   (budget tracks: rankings, who is out and why)\n\n\
Columns: a metric (ttft, output_throughput ...) with an optional statistic (ttft:p99; value, \
min, p50, p90, p95, p99, max, cv), an axis (batch, dtype ...), or run, id, suite, status, \
hardware, host, date, backend, model, params, model_size, runs.")]
pub struct Args {
    /// Result files or directories (searched recursively: every invocation, every suite).
    #[arg(required = true)]
    pub results: Vec<PathBuf>,
    /// Output format: table, markdown, csv or json.
    #[arg(long, default_value = "table")]
    pub format: String,
    /// One row per value of these axes or fields (comma-separated: dtype,batch; suite, hardware, host, model, backend).
    #[arg(long, value_name = "AXIS")]
    pub group_by: Option<String>,
    /// Sort best first by this column (a metric's direction decides; text ascending).
    #[arg(long, value_name = "COLUMN")]
    pub sort: Option<String>,
    /// Reverse the order.
    #[arg(long)]
    pub reverse: bool,
    /// Speed-up of every row against this variant: axis=value pairs (matched per row on the other axes), a run id, or a group's value.
    #[arg(long, value_name = "VARIANT")]
    pub baseline: Option<String>,
    /// Comma-separated columns [default: depends on the data].
    #[arg(long, value_name = "COLUMNS")]
    pub columns: Option<String>,
    /// Only the newest result of each run on each machine.
    #[arg(long)]
    pub latest: bool,
    /// Budget tracks ([[tracks]] in a TOML file) to rank every loaded run by, besides the
    /// tracks the results' suites declare (shown with the table and markdown formats).
    #[arg(long, value_name = "FILE")]
    pub tracks: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let format = Format::parse(&args.format).ok_or_else(|| {
        anyhow!(
            "--format '{}': unknown format (known: {})",
            args.format,
            Format::NAMES.join(", ")
        )
    })?;
    let opts = report::Options {
        columns: args
            .columns
            .as_deref()
            .map(Column::parse_list)
            .transpose()
            .map_err(|e| anyhow!("--columns: {e}"))?,
        group_by: args
            .group_by
            .as_deref()
            .map(|g| {
                g.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
        sort: args
            .sort
            .as_deref()
            .map(Column::parse)
            .transpose()
            .map_err(|e| anyhow!("--sort: {e}"))?,
        reverse: args.reverse,
        baseline: args.baseline.clone(),
    };
    let loaded = load::load(&args.results)?;
    let mut results = loaded.results;
    if args.latest {
        results = load::latest(results).0;
    }
    let rep = report::build(&results, &opts).map_err(|e| anyhow!(e))?;
    let mut bytes = exporter(format).serialize(&rep)?;
    let extra = match &args.tracks {
        Some(f) => effbench_harness::analysis::tracks::read_file(f)?,
        None => Vec::new(),
    };
    let ranked = tracks::rankings(&results, &extra).map_err(|e| anyhow!(e))?;
    match format {
        Format::Table => bytes.extend(tracks::text(&ranked).into_bytes()),
        Format::Markdown => bytes.extend(tracks::markdown(&ranked).into_bytes()),
        _ if !ranked.is_empty() => {
            eprintln!("note: budget tracks are shown with --format table or markdown")
        }
        _ => {}
    }
    std::io::stdout().write_all(&bytes)?;
    if loaded.duplicates > 0 {
        eprintln!(
            "note: {} duplicate result file(s) counted once",
            loaded.duplicates
        );
    }
    Ok(ExitCode::SUCCESS)
}
