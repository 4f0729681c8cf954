//! `effbench gate --baseline DIR --current DIR`: compare and fail (exit 1) on a regression;
//! `--history FILE` judges against earlier baseline runs; `--calibrate` measures this
//! machine's noise between invocations (an A/A run) and writes it as a gate file.

use super::compare::{build, render, sides, Format, HistoryInput, Settings};
use anyhow::{bail, Context, Result};
use effbench_harness::ab::{self, Side};
use effbench_harness::calibration::{self, calibrate};
use effbench_harness::loader::load_results;
use effbench_harness::result::write_atomic;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Exit code of a failed gate.
pub const EXIT_REGRESSION: u8 = 1;

/// CI performance gate: exit 1 on a regression, 0 otherwise, 2 on bad input.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  effbench gate --baseline results/base --current results/pr\n  \
effbench gate --baseline results/base --current results/pr --config gate.toml \\\n      \
--markdown-out gate.md --json-out gate.json\n  \
effbench gate --ab results/quickstart/ab/2026-01-02T10-00-00Z     (A = baseline, B = current)\n  \
effbench gate --current results/pr --history results/history.jsonl   (against the last baseline runs)\n  \
effbench gate --calibrate suites/quickstart.toml --write gate-calibrated.toml -- --filter batch=1\n\n\
Exit codes: 0 passed, 1 regression (or a failed run, see gate.toml), 2 bad input or error."
)]
pub struct Args {
    /// Baseline results (e.g. the PR's base branch).
    #[arg(long, requires = "current")]
    pub baseline: Option<PathBuf>,
    /// Current results (e.g. the PR's head).
    #[arg(long, required_unless_present_any = ["ab", "calibrate"])]
    pub current: Option<PathBuf>,
    /// An A/B directory from `run --ab`: A is the baseline, B the current build.
    #[arg(long, conflicts_with_all = ["baseline", "current", "history"])]
    pub ab: Option<PathBuf>,
    /// Judge the current results against earlier baseline runs of the same spec on the same
    /// machine in this history file (the last `history_last`, when at least `history_min`).
    #[arg(long, value_name = "FILE")]
    pub history: Option<PathBuf>,
    /// Only history entries with this tag (e.g. main).
    #[arg(long, value_name = "TAG", requires = "history")]
    pub history_tag: Option<String>,
    /// Measure this machine's noise between invocations: an A/A `run --ab` of this suite with
    /// this effbench on both sides (or an existing A/A directory), written to --write.
    #[arg(long, value_name = "SUITE|AB_DIR", conflicts_with_all = ["ab", "current", "baseline"])]
    pub calibrate: Option<PathBuf>,
    /// Where --calibrate writes the gate file.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "gate-calibrated.toml",
        requires = "calibrate"
    )]
    pub write: PathBuf,
    /// ABBA blocks of the --calibrate run.
    #[arg(long, default_value_t = 4, requires = "calibrate")]
    pub blocks: usize,
    /// Arguments for the --calibrate run (after --), e.g. -- --filter batch=1.
    #[arg(last = true, value_name = "RUN ARGS")]
    pub run_args: Vec<String>,
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
    if let Some(target) = &args.calibrate {
        return run_calibration(&args, target);
    }
    if args.baseline.is_none() && args.ab.is_none() && args.history.is_none() {
        bail!("give --baseline DIR --current DIR, --ab DIR, or --current DIR --history FILE");
    }
    let cfg = args.settings.resolve()?;
    let history = args
        .history
        .as_deref()
        .map(|p| HistoryInput::load(p, args.history_tag.as_deref()))
        .transpose()?;
    let sides = match (&args.ab, &args.baseline) {
        (Some(dir), _) => sides(dir, None, ["baseline", "current"])?,
        (None, Some(b)) => sides(b, args.current.as_deref(), ["baseline", "current"])?,
        (None, None) => [
            (PathBuf::new(), "history"),
            (args.current.clone().expect("clap requires it"), "current"),
        ],
    };
    let mut c = build(&sides, &cfg, args.ab.as_deref(), history.as_ref())?;
    let outcome = c.gate_outcome(&cfg);
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

/// `gate --calibrate SUITE|AB_DIR`: runs the A/A (unless given one) and writes the spreads.
fn run_calibration(args: &Args, target: &Path) -> Result<ExitCode> {
    let dir = if ab::sides(target).is_some() {
        target.to_path_buf()
    } else {
        if !target.is_file() {
            bail!(
                "--calibrate '{}' is neither a suite file nor an A/B directory",
                target.display()
            );
        }
        let me = std::env::current_exe().context("cannot find this effbench executable")?;
        let out = effbench_harness::invocation::default_out_dir(Path::new("results"), "calibrate");
        eprintln!(
            "effbench: calibrating with an A/A run of {} ({} ABBA blocks, this build on both sides) into {}",
            target.display(),
            args.blocks,
            out.display()
        );
        let status = std::process::Command::new(&me)
            .arg("run")
            .arg("--ab")
            .arg(&me)
            .arg(&me)
            .arg(target)
            .arg("--ab-blocks")
            .arg(args.blocks.to_string())
            .arg("--out")
            .arg(&out)
            .args(&args.run_args)
            .status()
            .with_context(|| format!("cannot start '{}'", me.display()))?;
        if status.code() != Some(0) {
            bail!(
                "the A/A run for --calibrate failed ({status}); its results are in {}",
                out.display()
            );
        }
        out
    };
    let (a, b) = (load_results(&dir.join("a"))?, load_results(&dir.join("b"))?);
    let rec = ab::read_record(&dir)?;
    if rec.a.sha256 != rec.b.sha256 || !rec.b_args.is_empty() {
        eprintln!(
            "warning: {} is not an A/A run (different builds or test knobs on B); the spread \
             includes their difference's variation",
            dir.display()
        );
    }
    let (ba, bb) = (
        ab::side_blocks(&dir, Side::A)?,
        ab::side_blocks(&dir, Side::B)?,
    );
    let spreads = calibrate(
        &calibration::Side::new(&a, &ba),
        &calibration::Side::new(&b, &bb),
    );
    if spreads.is_empty() {
        bail!(
            "{}: no metric varied between invocations (too few slots?); nothing to write",
            dir.display()
        );
    }
    // Blocks that ran (adaptive A/B runs add blocks beyond rec.blocks).
    let ran = rec
        .slots
        .iter()
        .filter_map(|s| s.block)
        .max()
        .map_or(rec.blocks, |b| b + 1);
    let header = calibration::header(&dir.display().to_string(), ran, &a, &b);
    let text = calibration::to_toml(&spreads, &header);
    write_atomic(&args.write, text.as_bytes())
        .with_context(|| format!("cannot write '{}'", args.write.display()))?;
    print!("{text}");
    eprintln!("calibrated gate file: {}", args.write.display());
    Ok(ExitCode::SUCCESS)
}
