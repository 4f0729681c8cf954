//! `effbench validate SUITE`: parse, expand and check a suite without running anything.

use anyhow::Result;
use std::path::PathBuf;
use std::process::ExitCode;

/// Check a suite: syntax, known keys and axes, and that every combination can run.
#[derive(clap::Args)]
#[command(after_help = "Example:\n  effbench validate suites/quickstart.toml")]
pub struct Args {
    /// Suite file (TOML), or the name of a shipped one (`quickstart`).
    #[arg(value_parser = super::suites::find)]
    pub suite: PathBuf,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let registry = effbench_backends::registry();
    let (_suite, specs) = super::plan(&args.suite, &registry, &[])?;
    let axes = effbench_harness::matrix::varying_axes(&specs);
    println!(
        "{}: ok, {} run(s) of backend '{}'",
        args.suite.display(),
        specs.len(),
        super::backends_of(&specs)
    );
    for s in &specs {
        println!("  {}  {}", s.id, s.label(&axes));
    }
    Ok(ExitCode::SUCCESS)
}
