//! `effbench history append|trends`: the append-only benchmark history and its trends.

use anyhow::Result;
use effbench_harness::analysis::changepoint::ChangePointConfig;
use effbench_harness::history::{self, Trends, DEFAULT_FILE};
use effbench_harness::loader::load_results;
use effbench_harness::MetricId;
use std::path::PathBuf;
use std::process::ExitCode;

/// Keep a benchmark history (JSON lines) and find change points in it.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  effbench history append results/quickstart --tag main\n  \
effbench history trends\n  effbench history trends --metric ttft --format json > trends.json"
)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(clap::Subcommand)]
pub enum Action {
    /// Append the ok runs of a result set (one line per run and metric); runs already in the
    /// file are not added twice, runs with an injected delay never.
    Append {
        /// A result file, an invocation directory or a suite's results directory.
        results: PathBuf,
        #[arg(long, default_value = DEFAULT_FILE)]
        file: PathBuf,
        /// Free text stored with each line (branch, PR, CI run id).
        #[arg(long)]
        tag: Option<String>,
    },
    /// One trend per run configuration, metric and machine, with change points.
    Trends {
        #[arg(long, default_value = DEFAULT_FILE)]
        file: PathBuf,
        /// Only these metrics (repeat).
        #[arg(long, value_name = "METRIC", value_parser = |s: &str| MetricId::parse(s))]
        metric: Vec<MetricId>,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        /// Significance level of a change point (Bonferroni-corrected over the splits).
        #[arg(long, default_value_t = 0.01)]
        alpha: f64,
        /// Fewest points on each side of a change point.
        #[arg(long, default_value_t = 3)]
        min_segment: usize,
        /// Smallest shift reported, in % of the level before.
        #[arg(long, default_value_t = 2.0)]
        min_change_pct: f64,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

pub fn run(args: Args) -> Result<ExitCode> {
    match args.action {
        Action::Append { results, file, tag } => {
            let rs = load_results(&results)?;
            let (entries, skipped) = history::entries_from(&rs, tag.as_deref());
            for id in &skipped {
                eprintln!("skipped run {id}: measured with --inject-delay (a test knob)");
            }
            let n = history::append(&file, &entries)?;
            eprintln!(
                "{n} line(s) appended to {} ({} already there)",
                file.display(),
                entries.len() - n
            );
        }
        Action::Trends {
            file,
            metric,
            format,
            alpha,
            min_segment,
            min_change_pct,
        } => {
            if !(alpha > 0.0 && alpha < 1.0)
                || min_segment < 2
                || !min_change_pct.is_finite()
                || min_change_pct < 0.0
            {
                anyhow::bail!(
                    "--alpha must lie in (0, 1), --min-segment be at least 2, --min-change-pct >= 0"
                );
            }
            let (mut entries, torn) = history::read(&file)?;
            if let Some(t) = torn {
                eprintln!("warning: {t}");
            }
            if entries.is_empty() {
                anyhow::bail!(
                    "no history in '{}'; add runs with `effbench history append RESULTS`",
                    file.display()
                );
            }
            if !metric.is_empty() {
                entries.retain(|e| metric.contains(&e.metric));
            }
            let config = ChangePointConfig {
                alpha,
                min_segment,
                min_change_pct,
            };
            let trends = history::trends(&entries, &config);
            match format {
                Format::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&Trends {
                        kind: "effbench-trends".into(),
                        version: 1,
                        config,
                        trends,
                    })?
                ),
                Format::Table => print!("{}", table(&trends)),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn table(trends: &[history::Trend]) -> String {
    use effbench_dashboards::format::value;
    let mut t = effbench_dashboards::terminal::Table {
        headers: [
            "suite",
            "run",
            "metric",
            "points",
            "latest",
            "change points",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        rows: Vec::new(),
    };
    for tr in trends {
        let latest = tr.points.last().map_or(f64::NAN, |p| p.value);
        let cps: Vec<String> = tr
            .change_points
            .iter()
            .map(|c| {
                let commit: String = c.git_commit.chars().take(8).collect();
                format!("{} {:+.1} % at {commit}", c.kind, c.change.change_pct)
            })
            .collect();
        t.rows.push(vec![
            (tr.suite.clone(), false),
            (tr.label.clone(), false),
            (format!("{} ({})", tr.metric, tr.unit), false),
            (tr.points.len().to_string(), true),
            (value(latest, &tr.unit), true),
            (
                if cps.is_empty() {
                    "-".into()
                } else {
                    cps.join("; ")
                },
                false,
            ),
        ]);
    }
    t.render()
}
