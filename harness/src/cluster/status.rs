//! `effbench status`: which shards of a cluster job finished, read from their manifests
//! (and the job's `plan.json`, which knows the shards that never started).

use super::{ClusterPlan, MERGED_DIR};
use crate::env::SchedulerInfo;
use crate::records::{Manifest, RunState};
use crate::result::{read_manifest, MANIFEST_FILE};
use anyhow::{bail, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where a shard is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ShardState {
    /// No manifest yet.
    NotStarted,
    /// A manifest without a finish time: running, or killed before it could finish.
    Running,
    /// Finished, every run ok.
    Finished,
    /// Finished, some runs failed.
    Failed,
    /// Finished (e.g. Ctrl-C / SIGTERM) before every planned run was done.
    Incomplete,
}

impl ShardState {
    pub fn name(self) -> &'static str {
        match self {
            ShardState::NotStarted => "not started",
            ShardState::Running => "running",
            ShardState::Finished => "finished",
            ShardState::Failed => "failed",
            ShardState::Incomplete => "incomplete",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ShardStatus {
    pub shard: Option<usize>,
    pub dir: String,
    pub state: ShardState,
    pub planned: usize,
    pub done: usize,
    pub ok: usize,
    pub failed: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<SchedulerInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClusterStatus {
    pub suite: String,
    pub shards: Vec<ShardStatus>,
    /// The merged directory's run count, when a merge has been written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merged: Option<MergedStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MergedStatus {
    pub dir: String,
    pub runs: usize,
    pub planned: usize,
}

impl ClusterStatus {
    /// Every shard finished with every run ok.
    pub fn all_finished(&self) -> bool {
        !self.shards.is_empty() && self.shards.iter().all(|s| s.state == ShardState::Finished)
    }
}

fn shard_status(dir: &Path, index: Option<usize>, planned_hint: usize) -> Result<ShardStatus> {
    let mpath = dir.join(MANIFEST_FILE);
    if !mpath.is_file() {
        return Ok(ShardStatus {
            shard: index,
            dir: dir.display().to_string(),
            state: ShardState::NotStarted,
            planned: planned_hint,
            done: 0,
            ok: 0,
            failed: 0,
            scheduler: None,
            started_at: None,
            finished_at: None,
        });
    }
    let m: Manifest = read_manifest(&mpath)?;
    let count = |s: RunState| m.runs.iter().filter(|r| r.state == s).count();
    let (ok, failed) = (count(RunState::Ok), count(RunState::Failed));
    let state = if m.finished_at.is_none() {
        ShardState::Running
    } else if ok + failed < m.planned.len() {
        ShardState::Incomplete
    } else if failed > 0 {
        ShardState::Failed
    } else {
        ShardState::Finished
    };
    Ok(ShardStatus {
        shard: m.shard.as_ref().map(|s| s.index).or(index),
        dir: dir.display().to_string(),
        state,
        planned: m.planned.len(),
        done: ok + failed,
        ok,
        failed,
        scheduler: m.scheduler.clone(),
        started_at: Some(m.started_at.clone()),
        finished_at: m.finished_at.clone(),
    })
}

/// Status of a cluster job directory (with `plan.json`) or of shard directories.
pub fn status(inputs: &[PathBuf]) -> Result<ClusterStatus> {
    if inputs.len() == 1 {
        if let Some(plan) = ClusterPlan::read(&inputs[0])? {
            return from_plan(&inputs[0], &plan);
        }
    }
    let mut dirs = Vec::new();
    for input in inputs {
        if !input.is_dir() {
            bail!("'{}' is not a directory", input.display());
        }
        if input.join(MANIFEST_FILE).is_file() {
            dirs.push(input.clone());
        } else {
            let mut subs: Vec<PathBuf> = std::fs::read_dir(input)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.join(MANIFEST_FILE).is_file())
                .collect();
            subs.sort();
            if subs.is_empty() {
                bail!(
                    "'{}' has no {MANIFEST_FILE}, no {} and no shard directories",
                    input.display(),
                    super::PLAN_FILE
                );
            }
            dirs.extend(subs);
        }
    }
    let mut shards = Vec::new();
    let mut suite = String::new();
    let mut count = 0;
    let mut merged = None;
    for d in &dirs {
        let m = read_manifest(&d.join(MANIFEST_FILE))?;
        suite = m.suite.name.clone();
        if !m.merged_from.is_empty() {
            merged = Some(MergedStatus {
                dir: d.display().to_string(),
                runs: m.runs.len(),
                planned: m.planned.len(),
            });
            continue;
        }
        if let Some(s) = &m.shard {
            count = count.max(s.count);
        }
        shards.push(shard_status(d, None, 0)?);
    }
    // Shards known from the plan in any manifest but with no directory given.
    let present: Vec<usize> = shards.iter().filter_map(|s| s.shard).collect();
    if count > 0 {
        let plan = dirs
            .iter()
            .filter_map(|d| read_manifest(&d.join(MANIFEST_FILE)).ok()?.shard)
            .next();
        let mut per_shard: BTreeMap<usize, usize> = BTreeMap::new();
        if let Some(p) = &plan {
            for r in &p.plan {
                *per_shard.entry(r.shard).or_default() += 1;
            }
        }
        for i in (0..count).filter(|i| !present.contains(i)) {
            shards.push(ShardStatus {
                shard: Some(i),
                dir: "-".into(),
                state: ShardState::NotStarted,
                planned: per_shard.get(&i).copied().unwrap_or(0),
                done: 0,
                ok: 0,
                failed: 0,
                scheduler: None,
                started_at: None,
                finished_at: None,
            });
        }
    }
    shards.sort_by_key(|s| s.shard.unwrap_or(usize::MAX));
    Ok(ClusterStatus {
        suite,
        shards,
        merged,
    })
}

fn from_plan(root: &Path, plan: &ClusterPlan) -> Result<ClusterStatus> {
    let mut shards = Vec::new();
    let mut per_shard: std::collections::HashMap<usize, usize> = Default::default();
    for r in &plan.runs {
        *per_shard.entry(r.shard).or_default() += 1;
    }
    let what = format!(
        "'{}': shard directory",
        root.join(super::PLAN_FILE).display()
    );
    for (i, d) in plan.shard_dirs.iter().enumerate() {
        let planned = per_shard.get(&i).copied().unwrap_or(0);
        let dir = crate::names::join(root, &what, d).map_err(anyhow::Error::msg)?;
        shards.push(shard_status(&dir, Some(i), planned)?);
    }
    let merged_dir = if plan.merged_dir.is_empty() {
        MERGED_DIR
    } else {
        &plan.merged_dir
    };
    let mdir = crate::names::join(root, &what.replace("shard", "merged"), merged_dir)
        .map_err(anyhow::Error::msg)?;
    let merged = if mdir.join(MANIFEST_FILE).is_file() {
        let m = read_manifest(&mdir.join(MANIFEST_FILE))?;
        Some(MergedStatus {
            dir: mdir.display().to_string(),
            runs: m.runs.len(),
            planned: m.planned.len(),
        })
    } else {
        None
    };
    Ok(ClusterStatus {
        suite: plan.suite.clone(),
        shards,
        merged,
    })
}
