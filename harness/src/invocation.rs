//! One `effbench run`: every spec of a suite in order, each result written atomically as
//! soon as it is done, and a manifest kept current after every run, so a crash or Ctrl-C
//! never loses completed work.

use crate::analysis;
use crate::backend::Registry;
use crate::interrupt;
use crate::matrix::varying_axes;
use crate::meters::{self, derived::IdleBaseline, idle};
use crate::progress::TerminalProgress;
use crate::records::RunSpec;
use crate::records::ShardInfo;
use crate::records::Suite;
use crate::records::{
    Manifest, ManifestEntry, RunResult, RunState, SkippedRun, SuiteInfo, SCHEMA_VERSION,
};
use crate::result::{write_json, MANIFEST_FILE};
use crate::runner;
use crate::sweep::SweepState;
use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Settings of one invocation.
pub struct Options {
    /// Output directory; default `results/<suite>/<UTC timestamp>/`.
    pub out: Option<PathBuf>,
    /// The command line, recorded in the manifest.
    pub command: Vec<String>,
    /// Cargo features of the binary, recorded in the environment.
    pub features: Vec<&'static str>,
    /// Set by `--shard I/N`: this shard and the whole suite's varying axes, so labels and
    /// suite facts are those of the unsharded suite and merged shards equal one machine's run.
    pub shard: Option<ShardContext>,
}

/// What a shard needs to know about the whole suite.
pub struct ShardContext {
    pub info: ShardInfo,
    pub suite_varying_axes: Vec<String>,
}

/// What the invocation produced.
pub struct Outcome {
    pub out_dir: PathBuf,
    pub results: Vec<RunResult>,
    /// The suite-level analysis (`analysis.json`), when the suite has `[analysis]`.
    pub analysis: Option<analysis::suite::SuiteAnalysis>,
    pub interrupted: bool,
}

impl Outcome {
    pub fn failed(&self) -> usize {
        self.results
            .iter()
            .filter(|r| r.status.state == RunState::Failed)
            .count()
    }
}

/// Suite facts stored in each result.
pub fn suite_info(suite: &Suite, specs: &[RunSpec]) -> SuiteInfo {
    let sha256 = suite
        .path
        .as_ref()
        .and_then(|p| std::fs::read(p).ok())
        .map(|b| hex(&Sha256::digest(&b)));
    SuiteInfo {
        name: suite.name.clone(),
        description: suite.description.clone(),
        file: suite.path.as_ref().map(|p| p.display().to_string()),
        sha256,
        varying_axes: varying_axes(specs),
        analysis: suite.analysis.clone(),
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh directory `results/<suite>/<timestamp>[-N]`.
pub fn default_out_dir(root: &Path, suite: &str) -> PathBuf {
    let stamp = chrono::Utc::now().format("%Y-%m-%dT%H-%M-%SZ").to_string();
    let base = root.join(suite).join(&stamp);
    let mut dir = base.clone();
    let mut n = 2;
    while dir.exists() {
        dir = root.join(suite).join(format!("{stamp}-{n}"));
        n += 1;
    }
    dir
}

/// Idle baselines (with their log lines) measured before the suite, one per set of metered
/// devices, when the runs ask for one (`idle_baseline_s` > 0).
fn idle_baselines(specs: &[RunSpec]) -> BTreeMap<String, (IdleBaseline, Vec<String>)> {
    let mut out = BTreeMap::new();
    for spec in specs {
        if spec.meters.idle_baseline_s <= 0.0 || interrupt::requested() {
            continue;
        }
        let device = meters::device_of(spec);
        let key = idle::key(&spec.meters, &device);
        if let std::collections::btree_map::Entry::Vacant(slot) = out.entry(key) {
            eprintln!(
                "effbench: idle baseline: {:.1} s with nothing running{}",
                spec.meters.idle_baseline_s,
                if slot.key().is_empty() {
                    String::new()
                } else {
                    format!(" ({})", slot.key())
                }
            );
            slot.insert(idle::measure(&spec.meters, &device));
        }
    }
    out
}

/// Runs `specs` (already expanded and validated) and writes everything under the out dir.
/// `on_result` sees each result right after it is on disk.
pub fn run_suite(
    suite: &Suite,
    specs: &[RunSpec],
    registry: &Registry,
    opts: &Options,
    on_result: &mut dyn FnMut(&RunResult, &TerminalProgress),
) -> Result<Outcome> {
    let out_dir = opts
        .out
        .clone()
        .unwrap_or_else(|| default_out_dir(Path::new("results"), &suite.name));
    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("cannot create output directory '{}'", out_dir.display()))?;
    let mut info = suite_info(suite, specs);
    if let Some(shard) = &opts.shard {
        info.varying_axes = shard.suite_varying_axes.clone();
    }
    let env = crate::probe::environment(&opts.features);
    let mut manifest = Manifest {
        schema_version: SCHEMA_VERSION,
        suite: info.clone(),
        effbench_version: env.effbench_version.clone(),
        command: crate::secrets::redact_command(&opts.command),
        started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        finished_at: None,
        planned: specs.iter().map(|s| s.id.clone()).collect(),
        runs: Vec::new(),
        shard: opts.shard.as_ref().map(|s| s.info.clone()),
        scheduler: env.scheduler.clone(),
        merged_from: Vec::new(),
        skipped: Vec::new(),
    };
    let manifest_path = out_dir.join(MANIFEST_FILE);
    write_json(&manifest_path, &manifest)?;

    let baselines = idle_baselines(specs);
    let progress = TerminalProgress::new(specs.len() as u64);
    let mut results = Vec::new();
    // A scaling sweep runs in increasing order of its axis and may end early.
    let ordered;
    let specs = match &suite.sweep {
        Some(cfg) => {
            ordered = crate::sweep::order(cfg, specs);
            &ordered[..]
        }
        None => specs,
    };
    let mut sweep = SweepState::default();
    for (i, spec) in specs.iter().enumerate() {
        if interrupt::requested() {
            break;
        }
        let label = spec.label(&info.varying_axes);
        if let Some(why) = suite
            .sweep
            .as_ref()
            .and_then(|c| sweep.skip_reason(c, spec))
        {
            eprintln!("effbench: skipped {label}: {why}");
            manifest.skipped.push(SkippedRun {
                id: spec.id.clone(),
                label,
                reason: why,
            });
            write_json(&manifest_path, &manifest)?;
            continue;
        }
        progress.start_run(i + 1, specs.len(), &label);
        let backend = registry.get(&spec.backend).map_err(anyhow::Error::msg)?;
        let idle = baselines.get(&idle::key(&spec.meters, &meters::device_of(spec)));
        // Sessions may stream files beside the result (a load test's per-request records).
        let mut spec = spec.clone();
        spec.out_dir = Some(out_dir.clone());
        let spec = &spec;
        // One run, or a server search: one full run (fresh meters) per step.
        let run = |step: &RunSpec| {
            runner::run_spec_with(
                step,
                backend,
                &info,
                &env,
                &progress,
                meters::for_run(step),
                idle.map(|b| &b.0),
            )
        };
        let mut result = match spec.serving.as_ref().and_then(|s| s.search.as_ref()) {
            Some(search) => crate::serving::search::run(spec, search, run),
            None => run(spec),
        };
        if let Some((_, notes)) = idle {
            result.log.extend(notes.iter().cloned());
        }
        if let Some(w) = suite.sweep.as_ref().and_then(|c| sweep.observe(c, &result)) {
            result.log.push(format!("sweep: {}", w.message));
            result.warnings.push(w);
        }
        let file = format!("{}.json", result.id);
        write_json(&out_dir.join(&file), &result)?;
        manifest.runs.push(ManifestEntry {
            id: result.id.clone(),
            label,
            state: result.status.state,
            file,
        });
        write_json(&manifest_path, &manifest)?;
        progress.finish_run();
        on_result(&result, &progress);
        results.push(result);
    }
    progress.finish();
    // The analysis stage over the finished result set; a shard has only part of the suite,
    // so `effbench merge` analyses the whole set instead.
    let analysis = match &suite.analysis {
        Some(cfg) if !results.is_empty() && opts.shard.is_none() => {
            let a = analysis::suite::analyze(&suite.name, cfg, &results);
            write_json(&out_dir.join(analysis::suite::ANALYSIS_FILE), &a)?;
            Some(a)
        }
        _ => None,
    };
    manifest.finished_at =
        Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    write_json(&manifest_path, &manifest)?;
    Ok(Outcome {
        out_dir,
        results,
        analysis,
        interrupted: interrupt::requested(),
    })
}
