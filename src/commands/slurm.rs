//! `effbench slurm SUITE --shards N`: sbatch scripts for a job array plus a dependent merge
//! job; `--submit` hands them to sbatch.

use anyhow::{bail, Context, Result};
use effbench_harness::cluster::{self, slurm};
use effbench_harness::invocation::default_out_dir;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Write (and optionally submit) a Slurm job array that runs a suite in N shards, plus a merge job.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  effbench slurm suites/quickstart.toml --shards 8 --partition gpu --gpus-per-task 1 --time 2:00:00 --max-parallel 4\n  \
effbench slurm suites/quickstart.toml --shards 4 --submit\n\n\
The job directory (default results/<suite>/<timestamp>) must be on a filesystem the compute nodes share. \
It gets shards.sbatch, merge.sbatch, submit.sh, plan.json, logs/, shard-<i>/ and, after the merge, merged/."
)]
pub struct Args {
    /// Suite file (TOML), or the name of a shipped one (`quickstart`).
    #[arg(value_parser = super::suites::find)]
    pub suite: PathBuf,
    /// Number of shards (array tasks).
    #[arg(long)]
    pub shards: usize,
    /// Slurm partition.
    #[arg(long)]
    pub partition: Option<String>,
    /// GPUs per array task.
    #[arg(long)]
    pub gpus_per_task: Option<u32>,
    /// CPUs per array task.
    #[arg(long)]
    pub cpus_per_task: Option<u32>,
    /// Memory per node (sbatch --mem, e.g. 16G).
    #[arg(long)]
    pub mem: Option<String>,
    /// Time limit per task (minutes, HH:MM:SS, D-HH:MM ...).
    #[arg(long)]
    pub time: Option<String>,
    /// Array tasks running at once (the %K of --array=0-(N-1)%K); default all.
    #[arg(long)]
    pub max_parallel: Option<usize>,
    /// Account to charge.
    #[arg(long)]
    pub account: Option<String>,
    /// Any other sbatch option for both jobs, e.g. --sbatch-option=--qos=high (repeatable).
    #[arg(long, value_name = "OPTION", allow_hyphen_values = true)]
    pub sbatch_option: Vec<String>,
    /// Only runs whose axis has this value (as in `run`).
    #[arg(long, value_name = "AXIS=VALUE")]
    pub filter: Vec<String>,
    /// Job directory [default: results/<suite>/<UTC timestamp>].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// effbench binary the jobs run [default: this one].
    #[arg(long)]
    pub effbench: Option<PathBuf>,
    /// Submit with sbatch and print the job ids.
    #[arg(long)]
    pub submit: bool,
}

fn absolute(p: &Path) -> Result<PathBuf> {
    std::path::absolute(p).with_context(|| format!("cannot resolve '{}'", p.display()))
}

pub fn run(args: Args) -> Result<ExitCode> {
    if args.shards == 0 {
        bail!("--shards must be at least 1");
    }
    effbench_harness::cluster::shard::check_count("--shards", args.shards)?;
    let registry = effbench_backends::registry();
    let (suite, specs) = super::plan(&args.suite, &registry, &args.filter)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| default_out_dir(Path::new("results"), &suite.name));
    let effbench = match &args.effbench {
        Some(p) => absolute(p)?,
        None => std::env::current_exe().context("cannot find this effbench binary")?,
    };
    let opts = slurm::SlurmOptions {
        shards: args.shards,
        partition: args.partition.clone(),
        gpus_per_task: args.gpus_per_task,
        cpus_per_task: args.cpus_per_task,
        mem: args.mem.clone(),
        time: args.time.clone(),
        max_parallel: args.max_parallel,
        account: args.account.clone(),
        extra: args.sbatch_option.clone(),
        effbench,
        suite: absolute(&args.suite)?,
        out: absolute(&out)?,
        workdir: absolute(Path::new("."))?,
        filters: args.filter.clone(),
        job_name: format!("effbench-{}", suite.name),
    };
    slurm::check_token("suite name", &suite.name)?;
    let scripts = slurm::scripts(&opts, specs.len())?;
    if out.join(cluster::PLAN_FILE).exists() || out.join("manifest.json").exists() {
        bail!(
            "'{}' already holds a job or results; choose a new --out",
            out.display()
        );
    }
    std::fs::create_dir_all(out.join("logs"))
        .with_context(|| format!("cannot create '{}'", out.display()))?;
    let plan = cluster::cluster_plan(&suite, &specs, args.shards, "slurm", &registry);
    plan.write(&out)?;
    write_script(&out.join(slurm::SHARDS_SCRIPT), &scripts.shards)?;
    write_script(&out.join(slurm::MERGE_SCRIPT), &scripts.merge)?;
    write_script(&out.join(slurm::SUBMIT_SCRIPT), &scripts.submit)?;
    let k = args.max_parallel.unwrap_or(args.shards).min(args.shards);
    let summary = || {
        eprintln!(
            "effbench: suite '{}' ({} runs) as a Slurm array of {} shards (at most {k} at once), \
             estimated {:.0} s for the largest shard",
            suite.name,
            specs.len(),
            args.shards,
            plan.shard_estimated_s.iter().cloned().fold(0.0, f64::max)
        );
        eprintln!(
            "wrote {}/{{{}, {}, {}, {}}}",
            out.display(),
            slurm::SHARDS_SCRIPT,
            slurm::MERGE_SCRIPT,
            slurm::SUBMIT_SCRIPT,
            cluster::PLAN_FILE
        );
    };
    if !args.submit {
        summary();
        println!(
            "submit with: sh {}   (or rerun with --submit)",
            out.join(slurm::SUBMIT_SCRIPT).display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let (array, merge) = slurm::submit(&out)?;
    summary();
    println!("{array}");
    eprintln!(
        "submitted array job {array} ({} tasks) and merge job {merge} (afterok:{array}); \
         watch with: effbench status {}; merged results will be in {}",
        args.shards,
        out.display(),
        out.join(cluster::MERGED_DIR).display()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn write_script(path: &Path, text: &str) -> Result<()> {
    effbench_harness::result::write_atomic(path, text.as_bytes())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("cannot make '{}' executable", path.display()))?;
    }
    Ok(())
}
