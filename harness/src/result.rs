//! `RunResult` (schema v1), the suite manifest, atomic writes and loading results back.
//!
//! Layout on disk: `<out>/<run-id>.json` per run and `<out>/manifest.json` per suite
//! invocation; the default `<out>` is `results/<suite>/<UTC timestamp>/`.

use crate::backend::ModelInfo;
use crate::env::Environment;
use crate::matrix::RunSpec;
use crate::metric::{Metric, MetricId};
use crate::warnings::Warning;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

pub const SCHEMA_VERSION: u32 = 1;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    Ok,
    Failed,
    Interrupted,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Status {
    pub state: RunState,
    /// Why it failed or was interrupted (one line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The suite a run came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SuiteInfo {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// SHA-256 of the suite file's bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Axes whose values vary within the suite (what distinguishes its runs).
    #[serde(default)]
    pub varying_axes: Vec<String>,
    /// The suite's `[analysis]` settings: the analysis stage redoes `analysis.json` from the
    /// results alone (after a merge, in reports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<crate::analysis::config::AnalysisConfig>,
}

/// A time series recorded during a run (loss curve, RSS, power ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Series {
    pub name: String,
    pub x_unit: String,
    pub y_unit: String,
    pub source: String,
    /// Sampling period when sampled on a timer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_ms: Option<f64>,
    pub points: Vec<[f64; 2]>,
}

/// How statistics were computed, so they can be recomputed from the samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatsMethod {
    pub percentile: String,
    pub stdev: String,
    pub ci: String,
    pub bootstrap_seed: u64,
}

impl StatsMethod {
    pub fn current(seed: u64) -> StatsMethod {
        StatsMethod {
            percentile: "linear interpolation between closest ranks (Hyndman-Fan type 7)".into(),
            stdev: "sample (n-1)".into(),
            ci: "percentile bootstrap, 95 %, per-metric seed = bootstrap_seed xor FNV-1a(name)"
                .into(),
            bootstrap_seed: seed,
        }
    }
}

/// Everything about one run. Self-describing: config, environment and raw samples included.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunResult {
    pub schema_version: u32,
    pub id: String,
    pub suite: SuiteInfo,
    /// The fully resolved run configuration.
    pub config: RunSpec,
    pub status: Status,
    /// RFC 3339 UTC.
    pub started_at: String,
    pub finished_at: String,
    /// Measured iterations and the measured window's wall time.
    pub iterations: u64,
    pub measured_s: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelInfo>,
    pub metrics: Vec<Metric>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub series: Vec<Series>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Warning>,
    pub stats_method: StatsMethod,
    pub env: Environment,
    /// Notes from the backend and the harness (fallbacks used, worker stderr tail ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log: Vec<String>,
}

impl RunResult {
    pub fn metric(&self, id: MetricId) -> Option<&Metric> {
        self.metrics.iter().find(|m| m.name == id)
    }
    /// `axis=value` label over the suite's varying axes.
    pub fn label(&self) -> String {
        let l = self.config.label(&self.suite.varying_axes);
        if l.is_empty() {
            self.id.clone()
        } else {
            l
        }
    }
}

/// One entry of a manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ManifestEntry {
    pub id: String,
    pub label: String,
    pub state: RunState,
    pub file: String,
}

/// What one `effbench run` invocation produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub schema_version: u32,
    pub suite: SuiteInfo,
    pub effbench_version: String,
    pub command: Vec<String>,
    pub started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// Run ids planned by this invocation, in order.
    pub planned: Vec<String>,
    pub runs: Vec<ManifestEntry>,
    /// Set by `run --shard I/N`: which shard this is and the whole suite's plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<crate::cluster::ShardInfo>,
    /// The batch scheduler, job and node this invocation ran under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<crate::cluster::SchedulerInfo>,
    /// Set by `merge`: the directories the runs came from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_from: Vec<crate::cluster::MergedSource>,
    /// Planned runs that were not run because their `[sweep]` ended earlier, with why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<SkippedRun>,
}

/// A planned run left out on purpose (a scaling sweep ended before it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SkippedRun {
    pub id: String,
    pub label: String,
    pub reason: String,
}

pub const MANIFEST_FILE: &str = "manifest.json";

/// Writes `bytes` to `path` atomically: a temp file in the same directory, fsync, rename.
/// A reader sees the old file or the new one, never a torn one. I/O errors keep their
/// `std::io::Error` as the cause, so a full disk is told apart from bad input.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    replace_file(path, bytes, true)
}

/// Like [`write_atomic`] without the fsync: atomic for readers (a web server serving a site
/// while it is rebuilt sees whole pages), for files that are rebuilt from others.
pub fn write_replace(path: &Path, bytes: &[u8]) -> Result<()> {
    replace_file(path, bytes, false)
}

/// A temp file next to `path`, created exclusively (`O_CREAT | O_EXCL`: a planted file or
/// symlink of the same name is never followed nor reused; another name is tried).
fn create_temp(dir: &Path, name: &str) -> std::io::Result<(PathBuf, std::fs::File)> {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut last = None;
    for _ in 0..16 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = dir.join(format!(".{name}.{}-{n}-{nanos}.tmp", std::process::id()));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
        {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no temp file name left")))
}

fn replace_file(path: &Path, bytes: &[u8], durable: bool) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create directory '{}'", dir.display()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let mut tmp = None;
    let mut write = || -> std::io::Result<()> {
        let (t, mut f) = create_temp(dir, &name)?;
        tmp = Some(t.clone());
        f.write_all(bytes)?;
        if durable {
            f.sync_all()?;
        }
        drop(f);
        std::fs::rename(&t, path)?;
        if durable {
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    };
    write().map_err(|e| {
        if let Some(t) = &tmp {
            let _ = std::fs::remove_file(t);
        }
        anyhow::Error::new(e).context(format!("cannot write '{}'", path.display()))
    })
}

/// Serializes as pretty JSON and writes atomically, with every secret effbench read from the
/// environment scrubbed ([`crate::secrets::redact`]; a worker may echo its token on stderr).
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    let mut text = crate::secrets::redact(&text).into_bytes();
    text.push(b'\n');
    write_atomic(path, &text)
}

/// Reads one result file.
pub fn read_result(path: &Path) -> Result<RunResult> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read result '{}'", path.display()))?;
    let probe: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("'{}' is not JSON", path.display()))?;
    match probe.get("schema_version").and_then(|v| v.as_u64()) {
        Some(v) if v == SCHEMA_VERSION as u64 => {}
        Some(v) => bail!(
            "'{}' has schema_version {v}; this effbench reads version {SCHEMA_VERSION}",
            path.display()
        ),
        None => bail!(
            "'{}' is not an effbench result (no schema_version)",
            path.display()
        ),
    }
    serde_json::from_value(probe)
        .with_context(|| format!("'{}' does not match the result schema", path.display()))
}

pub fn read_manifest(path: &Path) -> Result<Manifest> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read manifest '{}'", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("'{}' is not a valid manifest", path.display()))
}

/// The result files `path` stands for ([`crate::loader`]'s rules, newest invocation).
pub fn result_files(path: &Path) -> Result<Vec<PathBuf>> {
    Ok(crate::loader::candidates(path, crate::loader::Scope::Newest)?.files)
}

/// Loads every result under `path` ([`crate::loader`]'s rules, newest invocation).
pub fn load_results(path: &Path) -> Result<Vec<RunResult>> {
    Ok(crate::loader::load(&[path.to_path_buf()], crate::loader::Scope::Newest)?.results)
}

#[cfg(test)]
#[path = "result_tests.rs"]
mod tests;
