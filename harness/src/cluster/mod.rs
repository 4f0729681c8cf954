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
//! - [`scheduler`]: which scheduler, job and node a process runs under (recorded in results).

pub mod k8s;
pub mod merge;
mod merge_input;
pub mod scheduler;
pub mod shard;
pub mod slurm;
pub mod status;
pub mod yaml;

pub use merge::MergedSource;
pub use scheduler::SchedulerInfo;
pub use shard::{PlannedRun, ShardInfo, ShardSel};

use crate::matrix::RunSpec;
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

/// Name of the merged directory inside a cluster job's directory.
pub const MERGED_DIR: &str = "merged";

/// The plan of a whole suite split into `count` shards.
pub fn cluster_plan(
    suite: &crate::suite::Suite,
    specs: &[RunSpec],
    count: usize,
    scheduler: &str,
) -> ClusterPlan {
    let info = crate::invocation::suite_info(suite, specs);
    let runs = shard::plan(specs, count, &info.varying_axes);
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
