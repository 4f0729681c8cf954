//! `effbench status DIR...`: which shards of a cluster job finished, from their manifests.

use anyhow::Result;
use effbench_dashboards::terminal::Table;
use effbench_harness::cluster::status;
use std::path::PathBuf;
use std::process::ExitCode;

/// Summarise a sharded run: per shard, finished or not, runs done, node and job.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  effbench status results/quickstart/2026-11-26T12-00-00Z     (a directory written by `effbench slurm`)\n  \
effbench status results/q/shard-0 results/q/shard-1\n\n\
Exit code 0 when every shard finished with every run ok, 1 otherwise \
(e.g. `until effbench status DIR >/dev/null; do sleep 60; done`)."
)]
pub struct Args {
    /// A job directory written by `effbench slurm` (it has plan.json), shard output
    /// directories, or a directory holding them.
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Print the status as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let st = status::status(&args.dirs)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&st)?);
    } else {
        let finished = st
            .shards
            .iter()
            .filter(|s| s.state == status::ShardState::Finished)
            .count();
        let done: usize = st.shards.iter().map(|s| s.done).sum();
        let planned: usize = st.shards.iter().map(|s| s.planned).sum();
        println!(
            "suite {}: {finished} of {} shard(s) finished, {done} of {planned} run(s) done",
            st.suite,
            st.shards.len()
        );
        let table = Table {
            headers: [
                "shard",
                "state",
                "runs",
                "failed",
                "where",
                "finished at",
                "dir",
            ]
            .iter()
            .map(|h| h.to_string())
            .collect(),
            rows: st
                .shards
                .iter()
                .map(|s| {
                    vec![
                        (s.shard.map_or("-".into(), |i| i.to_string()), true),
                        (s.state.name().to_string(), false),
                        (format!("{}/{}", s.done, s.planned), true),
                        (s.failed.to_string(), true),
                        (
                            s.scheduler.as_ref().map_or("-".into(), |x| x.summary()),
                            false,
                        ),
                        (s.finished_at.clone().unwrap_or_else(|| "-".into()), false),
                        (s.dir.clone(), false),
                    ]
                })
                .collect(),
        };
        print!("\n{}", table.render());
        if st
            .shards
            .iter()
            .any(|s| s.state == status::ShardState::Running)
        {
            println!("\n'running' = no finish time yet: still running, or stopped without saving (ask the scheduler)");
        }
        match &st.merged {
            Some(m) => println!("\nmerged: {} of {} run(s) in {}", m.runs, m.planned, m.dir),
            None => println!("\nnot merged yet"),
        }
    }
    Ok(if st.all_finished() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::EXIT_RUN_FAILED)
    })
}
