//! Scale-out: a suite fanned out over a cluster and merged back into exactly what one
//! machine would have produced.
//!
//! - [`shard`]: the cost estimate and the deterministic, cost-balanced shard assignment
//!   (`run --shard I/N`, `plan --shards N`).
//! - [`merge`]: shard outputs combined into one result set with a manifest; missing,
//!   duplicate and conflicting runs detected and named.
//! - [`status`]: which shards finished, from their manifests.
//! - [`slurm`] and [`k8s`]: job-array sbatch scripts and Indexed Job manifests (with their
//!   dependent merge jobs); [`yaml`] writes the manifests.
//! - Which scheduler, job and node a process runs under is probed by
//!   [`crate::probe::scheduler`] and recorded in results and shard manifests.

pub mod k8s;
pub mod merge;
mod merge_input;
pub mod shard;
pub mod slurm;
pub mod status;
pub mod yaml;

pub use shard::ShardSel;

use crate::records::PlannedRun;
use crate::records::RunSpec;
use crate::result::write_json;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// `plan.json`, written by `effbench slurm` and `effbench k8s` into the job's directory so
/// `status` knows every shard, including those that never started.
pub const PLAN_FILE: &str = "plan.json";

/// A cluster job's plan: the suite, the shard count and every run's shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterPlan {
    pub suite: String,
    pub suite_file: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suite_sha256: Option<String>,
    /// `slurm` or `kubernetes`.
    pub scheduler: String,
    pub shards: usize,
    pub cost_model: String,
    /// Estimated seconds per shard.
    pub shard_estimated_s: Vec<f64>,
    pub runs: Vec<PlannedRun>,
    /// Shard output directories, relative to the plan's directory, by shard index.
    pub shard_dirs: Vec<String>,
    /// Merged output directory, relative to the plan's directory.
    pub merged_dir: String,
    pub created_at: String,
}

impl ClusterPlan {
    pub fn write(&self, dir: &Path) -> Result<()> {
        write_json(&dir.join(PLAN_FILE), self)
    }
    pub fn read(dir: &Path) -> Result<Option<ClusterPlan>> {
        let p = dir.join(PLAN_FILE);
        if !p.is_file() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&p)
            .map_err(|e| anyhow::anyhow!("cannot read '{}': {e}", p.display()))?;
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| anyhow::anyhow!("'{}' is not an effbench cluster plan: {e}", p.display()))
    }
}

/// Shard `i` writes into `<job dir>/shard-<i>`.
pub const SHARD_DIR_PREFIX: &str = "shard-";

/// Directory name of shard `i`.
pub fn shard_dir_name(i: usize) -> String {
    format!("{SHARD_DIR_PREFIX}{i}")
}

/// `--shards N` for a suite of `runs` runs: at least 1 and at most `runs` (Slurm and k8s).
fn check_shard_count(shards: usize, runs: usize) -> anyhow::Result<()> {
    if shards == 0 {
        anyhow::bail!("--shards must be at least 1");
    }
    if shards > runs {
        anyhow::bail!(
            "--shards {shards} is more than the suite's {runs} run(s); use --shards {runs} or fewer"
        );
    }
    Ok(())
}

/// A count option that, when given, must be at least 1; `leave_out` says what leaving it out
/// means, if anything.
fn check_count(flag: &str, value: Option<u64>, leave_out: &str) -> anyhow::Result<()> {
    if value == Some(0) {
        anyhow::bail!("{flag} must be at least 1{leave_out}");
    }
    Ok(())
}

/// Name of the merged directory inside a cluster job's directory.
pub const MERGED_DIR: &str = "merged";

/// The plan of a whole suite split into `count` shards.
pub fn cluster_plan(
    suite: &crate::records::Suite,
    specs: &[RunSpec],
    count: usize,
    scheduler: &str,
    registry: &crate::backend::Registry,
) -> ClusterPlan {
    let info = crate::invocation::suite_info(suite, specs);
    let runs = shard::plan(
        specs,
        &shard::costs(specs, registry),
        count,
        &info.varying_axes,
    );
    ClusterPlan {
        suite: suite.name.clone(),
        suite_file: info.file.clone().unwrap_or_default(),
        suite_sha256: info.sha256.clone(),
        scheduler: scheduler.into(),
        shards: count,
        cost_model: shard::COST_MODEL.into(),
        shard_estimated_s: shard::shard_loads(&runs, count),
        runs,
        shard_dirs: (0..count).map(shard_dir_name).collect(),
        merged_dir: MERGED_DIR.into(),
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    }
}

#[cfg(test)]
mod count_tests {
    use super::*;

    #[test]
    fn count_options_name_the_flag_and_the_limit() {
        assert!(check_shard_count(1, 1).is_ok() && check_shard_count(4, 9).is_ok());
        assert_eq!(
            check_shard_count(0, 3).unwrap_err().to_string(),
            "--shards must be at least 1"
        );
        assert_eq!(
            check_shard_count(5, 4).unwrap_err().to_string(),
            "--shards 5 is more than the suite's 4 run(s); use --shards 4 or fewer"
        );
        assert!(
            check_count("--gpus", None, "").is_ok() && check_count("--gpus", Some(2), "").is_ok()
        );
        assert_eq!(
            check_count("--gpus", Some(0), " (leave it out for CPU-only pods)")
                .unwrap_err()
                .to_string(),
            "--gpus must be at least 1 (leave it out for CPU-only pods)"
        );
    }
}
