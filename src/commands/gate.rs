//! `effbench gate --baseline DIR --current DIR`: compare and fail (exit 1) on a regression.

use super::compare::{build, render, sides, Format, Settings};
use anyhow::{Context, Result};
use effbench_harness::gate::evaluate;
use effbench_harness::result::write_atomic;
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit code of a failed gate.
pub const EXIT_REGRESSION: u8 = 1;

/// CI performance gate: exit 1 on a regression, 0 otherwise, 2 on bad input.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  effbench gate --baseline results/base --current results/pr\n  \
effbench gate --baseline results/base --current results/pr --config gate.toml \\\n      \
--markdown-out gate.md --json-out gate.json\n  \
effbench gate --ab results/quickstart/ab/2026-01-02T10-00-00Z     (A = baseline, B = current)\n\n\
Exit codes: 0 passed, 1 regression (or a failed run, see gate.toml), 2 bad input or error."
)]
pub struct Args {
    /// Baseline results (e.g. the PR's base branch).
    #[arg(long, required_unless_present = "ab", requires = "current")]
    pub baseline: Option<PathBuf>,
    /// Current results (e.g. the PR's head).
    #[arg(long, required_unless_present = "ab")]
    pub current: Option<PathBuf>,
    /// An A/B directory from `run --ab`: A is the baseline, B the current build.
    #[arg(long, conflicts_with_all = ["baseline", "current"])]
    pub ab: Option<PathBuf>,
    #[command(flatten)]
    pub settings: Settings,
    /// What to print on stdout.
    #[arg(long, value_enum, default_value = "markdown")]
    pub format: Format,
    /// Also write the markdown summary here (for a PR comment).
    #[arg(long, value_name = "FILE")]
    pub markdown_out: Option<PathBuf>,
    /// Also write the JSON report here.
    #[arg(long, value_name = "FILE")]
    pub json_out: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let cfg = args.settings.resolve()?;
    let sides = match &args.ab {
        Some(dir) => sides(dir, None, ["baseline", "current"])?,
        None => sides(
            args.baseline.as_deref().expect("clap requires it"),
            args.current.as_deref(),
            ["baseline", "current"],
        )?,
    };
    let mut c = build(&sides, &cfg)?;
    let outcome = evaluate(&c, &cfg);
    let passed = outcome.passed;
    c.gate = Some(outcome);
    if let Some(p) = &args.markdown_out {
        write_atomic(p, render(&c, Format::Markdown, "effbench gate")?.as_bytes())
            .with_context(|| "--markdown-out")?;
    }
    if let Some(p) = &args.json_out {
        write_atomic(p, render(&c, Format::Json, "effbench gate")?.as_bytes())
            .with_context(|| "--json-out")?;
    }
    print!("{}", render(&c, args.format, "effbench gate")?);
    if passed {
        eprintln!("gate passed");
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "gate failed ({} reason(s) in the report)",
            c.gate.as_ref().map_or(0, |g| g.failures.len())
        );
        Ok(ExitCode::from(EXIT_REGRESSION))
    }
}
