//! `effbench plan SUITE [--shards N]`: the runs of a suite and their shard assignment.

use anyhow::{bail, Result};
use effbench_dashboards::terminal::Table;
use effbench_harness::cluster::{self, shard};
use std::path::PathBuf;
use std::process::ExitCode;

/// Show how a suite splits into shards (what `run --shard I/N` runs on each).
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  effbench plan suites/quickstart.toml --shards 4\n  \
effbench plan suites/quickstart.toml --shards 4 --json | jq '.runs[] | select(.shard == 0)'\n\n\
Runs are balanced by an estimated cost (seconds, from the axes and [measure]; docs/cluster.md)."
)]
pub struct Args {
    /// Suite file (TOML), or the name of a shipped one (`quickstart`).
    #[arg(value_parser = super::suites::find)]
    pub suite: PathBuf,
    /// Number of shards.
    #[arg(long, default_value_t = 1)]
    pub shards: usize,
    /// Only runs whose axis has this value (as in `run`).
    #[arg(long, value_name = "AXIS=VALUE")]
    pub filter: Vec<String>,
    /// Print the plan as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    if args.shards == 0 {
        bail!("--shards must be at least 1");
    }
    shard::check_count("--shards", args.shards)?;
    let registry = effbench_backends::registry();
    let (suite, specs) = super::plan(&args.suite, &registry, &args.filter)?;
    let plan = cluster::cluster_plan(&suite, &specs, args.shards, "none", &registry);
    if args.json {
        let v = serde_json::json!({
            "suite": plan.suite,
            "suite_file": plan.suite_file,
            "suite_sha256": plan.suite_sha256,
            "shards": plan.shards,
            "cost_model": plan.cost_model,
            "shard_estimated_s": plan.shard_estimated_s,
            "runs": plan.runs,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    let loads = &plan.shard_estimated_s;
    let mean = loads.iter().sum::<f64>() / loads.len() as f64;
    let max = loads.iter().cloned().fold(0.0, f64::max);
    println!(
        "suite {}: {} run(s) in {} shard(s); estimated {:.1} s in all (cost model {}: seconds \
         estimated from the axes and [measure], longest first onto the least-loaded shard)",
        plan.suite,
        plan.runs.len(),
        plan.shards,
        loads.iter().sum::<f64>(),
        shard::COST_MODEL
    );
    let mut runs_of = vec![0usize; loads.len()];
    for r in &plan.runs {
        if let Some(n) = runs_of.get_mut(r.shard) {
            *n += 1;
        }
    }
    let per_shard = Table {
        headers: vec!["shard".into(), "runs".into(), "estimated (s)".into()],
        rows: loads
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let n = runs_of[i];
                vec![
                    (i.to_string(), true),
                    (n.to_string(), true),
                    (format!("{l:.1}"), true),
                ]
            })
            .collect(),
    };
    print!("\n{}", per_shard.render());
    if mean > 0.0 && plan.shards > 1 {
        println!("largest shard: {:.2}x the mean", max / mean);
    }
    let empty = plan.shards.saturating_sub(plan.runs.len());
    if empty > 0 {
        println!("note: {empty} shard(s) have no run (more shards than runs)");
    }
    let mut runs = plan.runs.clone();
    runs.sort_by_key(|r| r.shard);
    let table = Table {
        headers: vec![
            "shard".into(),
            "id".into(),
            "run".into(),
            "estimated (s)".into(),
        ],
        rows: runs
            .iter()
            .map(|r| {
                vec![
                    (r.shard.to_string(), true),
                    (r.id.clone(), false),
                    (r.label.clone(), false),
                    (format!("{:.2}", r.estimated_s), true),
                ]
            })
            .collect(),
    };
    print!("\n{}", table.render());
    Ok(ExitCode::SUCCESS)
}
