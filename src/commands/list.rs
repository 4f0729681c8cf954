//! `effbench list [suites|backends|runs|metrics]`: what can be run, what has been run, and
//! every metric (`list metrics --format markdown` writes docs/metric-reference.md).

use anyhow::Result;
use effbench_harness::result::{read_manifest, MANIFEST_FILE};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum What {
    Suites,
    Backends,
    Runs,
    /// Every metric with its unit, direction and definition (not part of `all`).
    Metrics,
    All,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ListFormat {
    Text,
    Markdown,
}

/// List suites, backends and past runs.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  effbench list\n  effbench list backends\n  effbench list runs --results results\n  \
effbench list metrics --format markdown > docs/metric-reference.md"
)]
pub struct Args {
    /// What to list.
    #[arg(value_enum, default_value = "all")]
    pub what: What,
    /// Directory of suite files [default: ./suites, else $EFFBENCH_SUITES, else the shipped
    /// suites of the source tree effbench was built from].
    #[arg(long)]
    pub suites: Option<PathBuf>,
    /// Directory of results.
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
    /// Output format of `list metrics` (markdown is docs/metric-reference.md).
    #[arg(long, value_enum, default_value = "text")]
    pub format: ListFormat,
}

pub fn run(args: Args) -> Result<ExitCode> {
    use effbench_dashboards::metric_reference;
    if args.what == What::Metrics {
        print!(
            "{}",
            match args.format {
                ListFormat::Text => metric_reference::text(),
                ListFormat::Markdown => metric_reference::markdown(),
            }
        );
        return Ok(ExitCode::SUCCESS);
    }
    if matches!(args.what, What::Suites | What::All) {
        list_suites(&super::suites::list_dir(args.suites.as_deref()));
    }
    if matches!(args.what, What::Backends | What::All) {
        list_backends();
    }
    if matches!(args.what, What::Runs | What::All) {
        list_runs(&args.results);
    }
    Ok(ExitCode::SUCCESS)
}

fn list_suites(dir: &Path) {
    println!("suites ({}):", dir.display());
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "toml"));
    files.sort();
    if files.is_empty() {
        println!("  (none)");
    }
    for f in files {
        match effbench_harness::matrix::load_suite(&f) {
            Ok(s) => println!(
                "  {:<28} {:<10} {}",
                f.display(),
                s.scenario.name(),
                s.description
            ),
            Err(e) => println!("  {:<28} INVALID: {e}", f.display()),
        }
    }
    println!();
}

fn list_backends() {
    println!("backends:");
    for b in effbench_backends::registry().iter() {
        let c = b.describe();
        let scen: Vec<&str> = c.scenarios.iter().map(|s| s.name()).collect();
        let axes: Vec<&str> = c.axes.iter().map(|(a, _)| *a).collect();
        println!("  {:<12} {}", c.name, c.description);
        println!(
            "  {:<12} scenarios: {}; dtypes: {}; devices: {}; formats: {:?}; axes: {}",
            "",
            scen.join(", "),
            c.dtypes.join(", "),
            c.devices.join(", "),
            c.formats,
            axes.join(", ")
        );
    }
    println!();
}

fn list_runs(root: &Path) {
    println!("past runs ({}):", root.display());
    let mut found = 0;
    let mut suites: Vec<PathBuf> = std::fs::read_dir(root)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    suites.sort();
    for suite_dir in suites {
        let mut invocations: Vec<PathBuf> = std::fs::read_dir(&suite_dir)
            .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        invocations.retain(|p| p.join(MANIFEST_FILE).is_file());
        invocations.sort();
        found += list_ab(&suite_dir.join("ab"));
        for inv in invocations {
            if let Ok(m) = read_manifest(&inv.join(MANIFEST_FILE)) {
                let ok = m
                    .runs
                    .iter()
                    .filter(|r| r.state == effbench_harness::records::RunState::Ok)
                    .count();
                println!(
                    "  {:<48} {} {}/{} ok{}",
                    inv.display(),
                    m.suite.name,
                    ok,
                    m.planned.len(),
                    if m.finished_at.is_none() {
                        " (unfinished)"
                    } else {
                        ""
                    }
                );
                found += 1;
            }
        }
    }
    if found == 0 {
        println!("  (none)");
    }
}

/// A/B invocations under `results/<suite>/ab/` (from `run --ab`).
fn list_ab(dir: &Path) -> usize {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    dirs.sort();
    let mut n = 0;
    for d in dirs {
        if let Ok(rec) = effbench_harness::ab::read_record(&d) {
            let ok = rec.slots.iter().filter(|s| s.exit_code == Some(0)).count();
            println!(
                "  {:<48} {} A/B {}/{} slots ok (compare: effbench compare {})",
                d.display(),
                rec.suite.name,
                ok,
                rec.slots.len(),
                d.display()
            );
            n += 1;
        }
    }
    n
}
