//! `effbench compare BASE NEW`: per-run, per-metric comparison of two result sets.

use anyhow::{bail, Result};
use effbench_harness::analysis::verdict::TestChoice;
use effbench_harness::comparison::{self, Comparison, Design, Input};
use effbench_harness::gate::{parse_pct, GateConfig};
use effbench_harness::{ab, MetricId, RunResult};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Markdown,
    Json,
}

/// Settings shared by `compare` and `gate` (flags override the config file).
#[derive(clap::Args)]
pub struct Settings {
    /// Gate/compare settings file (TOML; see docs/gates.md).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Only these metrics (repeat); default: every metric with samples on both sides.
    #[arg(long, value_name = "METRIC", value_parser = parse_metric)]
    pub metric: Vec<MetricId>,
    /// Significance level [default: 0.01].
    #[arg(long)]
    pub alpha: Option<f64>,
    /// Noise band in % of the base mean, for every metric without its own [default: 2].
    #[arg(long, value_name = "PCT")]
    pub noise_band: Option<String>,
    /// Which test decides significance [default: both].
    #[arg(long, value_parser = ["welch", "mann-whitney", "both"])]
    pub test: Option<String>,
}

fn parse_metric(s: &str) -> Result<MetricId, String> {
    MetricId::parse(s)
}

impl Settings {
    pub fn resolve(&self) -> Result<GateConfig> {
        let mut cfg = match &self.config {
            Some(p) => GateConfig::load(p)?,
            None => GateConfig::default(),
        };
        if !self.metric.is_empty() {
            cfg.metrics = self.metric.clone();
        }
        if let Some(a) = self.alpha {
            cfg.alpha = a;
        }
        if let Some(b) = &self.noise_band {
            cfg.noise_band_pct = parse_pct(b).map_err(|e| anyhow::anyhow!("--noise-band {e}"))?;
        }
        if let Some(t) = &self.test {
            cfg.test = TestChoice::parse(t).map_err(anyhow::Error::msg)?;
        }
        cfg.check()
            .map_err(|e| anyhow::anyhow!("{}", e.replace("alpha =", "--alpha")))?;
        Ok(cfg)
    }
}

/// Compare two result sets run by run (matched by spec id) and metric by metric.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  effbench compare results/quickstart/2026-01-01T10-00-00Z results/quickstart/2026-01-02T10-00-00Z\n  \
effbench compare results/quickstart/ab/2026-01-02T10-00-00Z          (an A/B directory: A vs B)\n  \
effbench compare base/ new/ --metric ttft --metric output_throughput --format markdown\n  \
effbench compare base/ new/ --format json > comparison.json\n\n\
Verdicts: regressed/improved need p < alpha AND the whole CI of the change beyond the noise band;\n\
unchanged: the CI (or, when not significant, the estimate) lies inside the band; else inconclusive."
)]
pub struct Args {
    /// Baseline results: a result file, an invocation directory or a suite's results
    /// directory; or an A/B directory (from `run --ab`) to compare A with B.
    pub base: PathBuf,
    /// Results to compare with the baseline (omit for an A/B directory).
    pub new: Option<PathBuf>,
    #[command(flatten)]
    pub settings: Settings,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

/// The two sides' directories and display names.
pub fn sides(
    base: &Path,
    new: Option<&Path>,
    names: [&'static str; 2],
) -> Result<[(PathBuf, &'static str); 2]> {
    match (new, ab::sides(base)) {
        (Some(n), _) => Ok([(base.to_path_buf(), names[0]), (n.to_path_buf(), names[1])]),
        (None, Some((a, b))) => Ok([(a, "A"), (b, "B")]),
        (None, None) => bail!(
            "'{}' is not an A/B directory (no {}); give two result sets: BASE NEW",
            base.display(),
            ab::AB_FILE
        ),
    }
}

/// Earlier baseline runs for `gate --history`.
pub struct HistoryInput {
    pub path: PathBuf,
    pub entries: Vec<effbench_harness::history::Entry>,
}

impl HistoryInput {
    /// Reads the history file, keeping the entries with `tag` when one is given.
    pub fn load(path: &Path, tag: Option<&str>) -> Result<HistoryInput> {
        let (mut entries, torn) = effbench_harness::history::read(path)?;
        if let Some(t) = torn {
            eprintln!("warning: {t}");
        }
        if let Some(tag) = tag {
            entries.retain(|e| e.tag.as_deref() == Some(tag));
        }
        Ok(HistoryInput {
            path: path.to_path_buf(),
            entries,
        })
    }
}

/// Loads both sides and compares them; `ab_dir` (an A/B directory) pairs the slots by ABBA
/// block; `history` adds earlier baseline runs. An empty base path means no base results
/// (history only).
pub fn build(
    sides: &[(PathBuf, &str); 2],
    cfg: &GateConfig,
    ab_dir: Option<&Path>,
    history: Option<&HistoryInput>,
) -> Result<Comparison> {
    build_runs(sides, cfg, ab_dir, history, None)
}

/// [`build`] on the results whose run id is in `only` (all when `None`).
pub fn build_runs(
    sides: &[(PathBuf, &str); 2],
    cfg: &GateConfig,
    ab_dir: Option<&Path>,
    history: Option<&HistoryInput>,
    only: Option<&[&str]>,
) -> Result<Comparison> {
    // One side's results, with their ABBA blocks when they line up with them.
    let load = |path: &Path, side| -> Result<(Vec<RunResult>, Option<Vec<usize>>)> {
        let results = if path.as_os_str().is_empty() {
            Vec::new()
        } else {
            effbench_harness::loader::load_results(path)?
        };
        let blocks = match ab_dir {
            // A side whose files do not line up with its manifest is compared unpaired.
            Some(dir) => Some(ab::side_blocks(dir, side)?).filter(|b| b.len() == results.len()),
            None => None,
        };
        let keep = |r: &RunResult| only.is_none_or(|ids| ids.contains(&r.id.as_str()));
        Ok(match blocks {
            Some(b) => {
                let (r, b): (Vec<_>, Vec<_>) =
                    results.into_iter().zip(b).filter(|(r, _)| keep(r)).unzip();
                (r, Some(b))
            }
            None => (results.into_iter().filter(|r| keep(r)).collect(), None),
        })
    };
    let (base, base_blocks) = load(&sides[0].0, ab::Side::A)?;
    let (new, new_blocks) = load(&sides[1].0, ab::Side::B)?;
    let (bp, np) = (
        sides[0].0.display().to_string(),
        sides[1].0.display().to_string(),
    );
    let mut design = Design {
        base_blocks,
        new_blocks,
        ..Design::default()
    };
    if let Some(h) = history {
        design.history = Some(&h.entries);
        design.history_path = h.path.display().to_string();
    }
    comparison::compare_with(
        &Input {
            name: sides[0].1,
            path: &bp,
            results: &base,
        },
        &Input {
            name: sides[1].1,
            path: &np,
            results: &new,
        },
        cfg,
        &design,
    )
}

pub fn render(c: &Comparison, format: Format, title: &str) -> Result<String> {
    Ok(match format {
        Format::Table => effbench_dashboards::comparison::table(c),
        Format::Markdown => effbench_dashboards::comparison::markdown(c, title),
        Format::Json => serde_json::to_string_pretty(c)? + "\n",
    })
}

pub fn run(args: Args) -> Result<ExitCode> {
    let cfg = args.settings.resolve()?;
    let sides = sides(&args.base, args.new.as_deref(), ["base", "new"])?;
    let ab_dir = args.new.is_none().then_some(args.base.as_path());
    let c = build(&sides, &cfg, ab_dir, None)?;
    print!("{}", render(&c, args.format, "effbench compare")?);
    Ok(ExitCode::SUCCESS)
}
