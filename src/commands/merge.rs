//! `effbench merge DIR... --out DIR`: shard outputs joined into one result set.

use super::EXIT_RUN_FAILED;
use anyhow::Result;
use effbench_harness::cluster::merge::{self, MergeOptions};
use std::path::PathBuf;
use std::process::ExitCode;

/// Combine shard output directories into one result set with a manifest.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  effbench merge results/q/shard-0 results/q/shard-1 --out results/q/merged\n  \
effbench merge results/q/job-dir --out results/q/merged     (every subdirectory with a manifest)\n\n\
Exit codes: 0 merged; 1 planned runs are missing (nothing written without --allow-partial) or some \
merged runs failed; 2 bad input: different suites (without --force), conflicting runs, unreadable files."
)]
pub struct Args {
    /// Shard output directories (or directories holding them).
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Where the merged results and manifest go (new, empty, or an earlier merge's output).
    #[arg(long)]
    pub out: PathBuf,
    /// Merge results of different suites (or differently planned shards) anyway.
    #[arg(long)]
    pub force: bool,
    /// Write the merged set even when planned runs are missing (they are listed).
    #[arg(long)]
    pub allow_partial: bool,
    /// Print the merge report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let opts = MergeOptions {
        force: args.force,
        allow_partial: args.allow_partial,
        command: std::env::args().collect(),
    };
    let report = merge::merge(&args.dirs, &args.out, &opts)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    for n in &report.notes {
        eprintln!("note: {n}");
    }
    for d in &report.duplicates {
        eprintln!("duplicate: {d}");
    }
    for m in &report.missing {
        let shard = m.shard.map_or(String::new(), |s| format!(", shard {s}"));
        let label = if m.label.is_empty() {
            String::new()
        } else {
            format!(" {}", m.label)
        };
        eprintln!("missing: {}{label} ({}{shard})", m.id, m.why);
    }
    if !report.written {
        eprintln!(
            "{} of {} planned run(s) missing: nothing written to '{}' (merge what is there with --allow-partial)",
            report.missing.len(),
            report.planned,
            report.out_dir.display()
        );
        return Ok(ExitCode::from(EXIT_RUN_FAILED));
    }
    eprintln!(
        "merged {} run(s) from {} director{} into '{}'{}",
        report.merged,
        report.sources.len(),
        if report.sources.len() == 1 {
            "y"
        } else {
            "ies"
        },
        report.out_dir.display(),
        if report.missing.is_empty() {
            String::new()
        } else {
            format!(" ({} planned run(s) missing)", report.missing.len())
        }
    );
    if report.analysis {
        eprintln!(
            "analysis: {}",
            report
                .out_dir
                .join(effbench_harness::analysis::suite::ANALYSIS_FILE)
                .display()
        );
    }
    if !report.failed.is_empty() {
        eprintln!(
            "{} merged run(s) failed: {}",
            report.failed.len(),
            report.failed.join(", ")
        );
        return Ok(ExitCode::from(EXIT_RUN_FAILED));
    }
    Ok(ExitCode::SUCCESS)
}
