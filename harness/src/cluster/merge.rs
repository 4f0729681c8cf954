//! `effbench merge`: shard outputs combined into one result set, byte-for-byte copies of the
//! shard results plus a manifest, as if one machine had run the whole suite.
//!
//! Checks, each naming the runs and directories involved:
//! - **different suites** (name or file hash) or shards planned differently: refused unless
//!   `force`;
//! - **conflicting** runs: the same spec id with a different `config` or `schema_version` —
//!   always refused (one of them is not what the id says);
//! - **duplicate** runs: the same id with the same config in two places — one is kept (`ok`
//!   before `failed` before `interrupted`, then the lower shard) and the duplicate reported;
//! - **missing** runs: planned (by the shards' plan or a manifest) without a completed result.
//!   Nothing is written unless `allow_partial`.
//!
//! A suite with `[analysis]` gets its `analysis.json` computed here, over the merged set.

use super::merge_input::{
    check_out, first_difference, load_source, resolve_inputs, short, state_rank, Found, Source,
};
use crate::analysis::{self, suite::ANALYSIS_FILE};
use crate::records::canonical_json;
use crate::records::MergedSource;
use crate::records::{Manifest, ManifestEntry, RunResult, RunState, SCHEMA_VERSION};
use crate::result::{write_atomic, write_json, MANIFEST_FILE};
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub struct MergeOptions {
    /// Merge results of different suites (or differently planned shards) anyway.
    pub force: bool,
    /// Write the merged set even when planned runs are missing.
    pub allow_partial: bool,
    /// The command line, recorded in the merged manifest.
    pub command: Vec<String>,
}

/// A planned run without a completed result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Missing {
    pub id: String,
    pub label: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<usize>,
    /// `no result` or `interrupted`.
    pub why: String,
}

/// What a merge found and did.
#[derive(Debug, Clone, Serialize)]
pub struct MergeReport {
    pub out_dir: PathBuf,
    pub sources: Vec<MergedSource>,
    pub planned: usize,
    /// Runs in the merged set (written or, when not written, that would have been).
    pub merged: usize,
    pub failed: Vec<String>,
    pub duplicates: Vec<String>,
    pub missing: Vec<Missing>,
    /// Warnings that did not stop the merge (e.g. suites differed under `force`).
    pub notes: Vec<String>,
    pub written: bool,
    /// `analysis.json` was written (the suite has `[analysis]`).
    pub analysis: bool,
}

/// Merges shard directories into `out`. Bad input (different suites, conflicts, unreadable
/// files) is an error; missing runs are reported in the returned report.
pub fn merge(inputs: &[PathBuf], out: &Path, opts: &MergeOptions) -> Result<MergeReport> {
    if inputs.is_empty() {
        bail!("merge needs at least one directory");
    }
    let previous = check_out(out)?;
    let dirs = resolve_inputs(inputs, out)?;
    let mut sources: Vec<Source> = dirs.iter().map(|d| load_source(d)).collect::<Result<_>>()?;
    // Shards in index order, then the rest in the order given.
    sources.sort_by_key(|s| s.manifest.shard.as_ref().map_or(usize::MAX, |i| i.index));
    let notes = check_compatible(&sources, opts)?;
    let plan = Plan::of(&sources);
    let (chosen, duplicates) = choose(&sources, &plan)?;
    let parsed = parse_chosen(&chosen)?;
    let missing = plan.missing(&parsed);
    // Merged order: the plan's, then results nobody planned (sorted by id).
    let mut order: Vec<String> = plan
        .runs
        .iter()
        .map(|(id, _, _)| id.clone())
        .filter(|id| parsed.contains_key(id))
        .collect();
    order.extend(
        parsed
            .keys()
            .filter(|id| !plan.at.contains_key(*id))
            .cloned(),
    );
    let failed: Vec<String> = order
        .iter()
        .filter(|id| parsed[*id].status.state == RunState::Failed)
        .map(|id| format!("{id} ({})", parsed[id].label()))
        .collect();
    let merged_sources: Vec<MergedSource> = sources
        .iter()
        .map(|s| MergedSource {
            dir: s.dir.display().to_string(),
            shard: s.manifest.shard.as_ref().map(|i| i.index),
            runs: s.results.len(),
        })
        .collect();
    let mut report = MergeReport {
        out_dir: out.to_path_buf(),
        sources: merged_sources.clone(),
        planned: plan.runs.len(),
        merged: order.len(),
        failed,
        duplicates,
        missing,
        notes,
        written: false,
        analysis: false,
    };
    if !report.missing.is_empty() && !opts.allow_partial {
        return Ok(report);
    }
    if let Some(old) = previous {
        for r in &old.runs {
            // Checked by check_out: a plain name inside `out`.
            if let Ok(p) = crate::names::join(out, "run file", &r.file) {
                let _ = std::fs::remove_file(p);
            }
        }
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create '{}'", out.display()))?;
    let mut runs = Vec::new();
    for id in &order {
        let file = format!("{id}.json");
        write_atomic(&out.join(&file), &chosen[id].bytes)?;
        runs.push(ManifestEntry {
            id: id.clone(),
            label: parsed[id].label(),
            state: parsed[id].status.state,
            file,
        });
    }
    let m0 = &sources[0].manifest;
    let manifest = Manifest {
        schema_version: SCHEMA_VERSION,
        suite: m0.suite.clone(),
        effbench_version: env!("CARGO_PKG_VERSION").into(),
        command: crate::secrets::redact_command(&opts.command),
        started_at: sources
            .iter()
            .map(|s| s.manifest.started_at.clone())
            .min()
            .unwrap_or_default(),
        finished_at: sources
            .iter()
            .filter_map(|s| s.manifest.finished_at.clone())
            .max(),
        planned: plan.runs.iter().map(|(id, _, _)| id.clone()).collect(),
        runs,
        shard: None,
        scheduler: None,
        merged_from: merged_sources,
        skipped: Vec::new(),
    };
    write_json(&out.join(MANIFEST_FILE), &manifest)?;
    let merged: Vec<RunResult> = order.iter().map(|id| parsed[id].clone()).collect();
    report.analysis = write_analysis(out, &manifest.suite.name, &merged)?;
    report.written = true;
    Ok(report)
}

/// The inputs come from one suite and (shards) one plan, or `--force` says merge anyway;
/// returns the notes for what was forced or repeated.
fn check_compatible(sources: &[Source], opts: &MergeOptions) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    let first = &sources[0];
    for s in &sources[1..] {
        let (a, b) = (&first.manifest.suite, &s.manifest.suite);
        if a.name != b.name || a.sha256 != b.sha256 {
            let msg = format!(
                "the inputs come from different suites: '{}' is suite '{}' ({}), '{}' is suite '{}' ({})",
                first.dir.display(), a.name, short(&a.sha256), s.dir.display(), b.name, short(&b.sha256)
            );
            if !opts.force {
                bail!("{msg}; merge them anyway with --force");
            }
            notes.push(format!("{msg} (merged because of --force)"));
        }
    }
    let sharded: Vec<(&Source, &crate::records::ShardInfo)> = sources
        .iter()
        .filter_map(|s| s.manifest.shard.as_ref().map(|i| (s, i)))
        .collect();
    let ids = |p: &[crate::records::PlannedRun]| {
        p.iter()
            .map(|r| (r.id.clone(), r.shard))
            .collect::<Vec<_>>()
    };
    for (s, b) in sharded.iter().skip(1) {
        let (s0, a) = sharded[0];
        if a.count != b.count || ids(&a.plan) != ids(&b.plan) {
            let msg = format!(
                "the shards were planned differently: '{}' is shard {}/{} of {} runs, '{}' is shard {}/{} of {} runs (different --shard counts, --filter or effbench versions?)",
                s0.dir.display(), a.index, a.count, a.plan.len(), s.dir.display(), b.index, b.count, b.plan.len()
            );
            if !opts.force {
                bail!("{msg}; merge them anyway with --force");
            }
            notes.push(format!("{msg} (merged because of --force)"));
        }
    }
    let mut dup_shards: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for (s, i) in &sharded {
        dup_shards
            .entry(i.index)
            .or_default()
            .push(s.dir.display().to_string());
    }
    for (i, dirs) in dup_shards.iter().filter(|(_, d)| d.len() > 1) {
        notes.push(format!(
            "shard {i} appears {} times: {}",
            dirs.len(),
            dirs.join(", ")
        ));
    }
    Ok(notes)
}

/// The runs the inputs planned: the shards' whole-suite plan, then anything else planned by
/// a manifest, as (id, label, shard), with each id's position. (Linear in the inputs: a
/// crafted manifest may plan millions of ids.)
struct Plan {
    runs: Vec<(String, String, Option<usize>)>,
    at: std::collections::HashMap<String, usize>,
}

impl Plan {
    fn of(sources: &[Source]) -> Plan {
        let mut plan = Plan {
            runs: Vec::new(),
            at: Default::default(),
        };
        for s in sources {
            if let Some(info) = &s.manifest.shard {
                for r in &info.plan {
                    plan.push(&r.id, &r.label, Some(r.shard));
                }
            }
        }
        for s in sources {
            let labels: BTreeMap<&str, &str> = s
                .manifest
                .runs
                .iter()
                .map(|r| (r.id.as_str(), r.label.as_str()))
                .collect();
            for id in &s.manifest.planned {
                plan.push(id, labels.get(id.as_str()).copied().unwrap_or(""), None);
            }
        }
        plan
    }

    fn push(&mut self, id: &str, label: &str, shard: Option<usize>) {
        if !self.at.contains_key(id) {
            self.at.insert(id.to_string(), self.runs.len());
            self.runs.push((id.to_string(), label.to_string(), shard));
        }
    }

    /// The planned label of a run, else the result's own, else its id.
    fn label_of(&self, id: &str, f: &Found) -> String {
        self.at
            .get(id)
            .map(|&i| self.runs[i].1.clone())
            .filter(|l| !l.is_empty())
            .or_else(|| {
                serde_json::from_value::<RunResult>(f.value.clone())
                    .ok()
                    .map(|r| r.label())
            })
            .unwrap_or_else(|| id.to_string())
    }

    /// Planned runs without a usable result (none, or interrupted).
    fn missing(&self, parsed: &BTreeMap<String, RunResult>) -> Vec<Missing> {
        let mut missing = Vec::new();
        for (id, label, shard) in &self.runs {
            let why = match parsed.get(id).map(|r| r.status.state) {
                None => "no result",
                Some(RunState::Interrupted) => "interrupted",
                Some(_) => continue,
            };
            missing.push(Missing {
                id: id.clone(),
                label: label.clone(),
                shard: *shard,
                why: why.into(),
            });
        }
        missing
    }
}

/// One result per id: the best state, earliest input first; refuses ids whose copies differ
/// in config or schema, and describes the duplicates it dropped.
fn choose<'s>(
    sources: &'s [Source],
    plan: &Plan,
) -> Result<(BTreeMap<String, &'s Found>, Vec<String>)> {
    let mut by_id: BTreeMap<String, Vec<(usize, &Found)>> = BTreeMap::new();
    for (si, s) in sources.iter().enumerate() {
        for f in &s.results {
            by_id.entry(f.id.clone()).or_default().push((si, f));
        }
    }
    let mut conflicts = Vec::new();
    let mut duplicates = Vec::new();
    let mut chosen: BTreeMap<String, &Found> = BTreeMap::new();
    for (id, group) in &by_id {
        // Neither the suite name (differing suites are refused above unless --force) nor the
        // meter settings (partly machine-dependent, e.g. the CPU's TDP; not in the id) change
        // what a run measures.
        let pick = |f: &Found| {
            let mut config = f.value.get("config").cloned().unwrap_or_default();
            if let Some(c) = config.as_object_mut() {
                c.remove("suite");
                c.remove("meters");
            }
            serde_json::json!({"schema_version": f.value.get("schema_version"), "config": config})
        };
        let key = |f: &Found| canonical_json(&pick(f));
        let k0 = key(group[0].1);
        if let Some((_, other)) = group.iter().find(|(_, f)| key(f) != k0) {
            let a = group[0].1;
            let diff = first_difference("", &pick(a), &pick(other)).unwrap_or_default();
            conflicts.push(format!(
                "{id} ({}): {} in '{}' vs '{}'",
                plan.label_of(id, a),
                diff.trim_start_matches('.'),
                a.file.display(),
                other.file.display()
            ));
            continue;
        }
        let best = group
            .iter()
            .min_by_key(|(si, f)| (state_rank(f.state), *si))
            .map(|(_, f)| *f)
            .unwrap();
        if group.len() > 1 {
            duplicates.push(duplicate_note(id, group, best, plan));
        }
        chosen.insert(id.clone(), best);
    }
    if !conflicts.is_empty() {
        bail!(
            "{} conflicting run(s) (same spec id, different config or schema): {}",
            conflicts.len(),
            conflicts.join("; ")
        );
    }
    Ok((chosen, duplicates))
}

fn duplicate_note(id: &str, group: &[(usize, &Found)], best: &Found, plan: &Plan) -> String {
    let others: Vec<String> = group
        .iter()
        .filter(|(_, f)| !std::ptr::eq(*f, best))
        .map(|(_, f)| format!("'{}'", f.file.display()))
        .collect();
    let meters = |f: &Found| f.value.pointer("/config/meters").cloned();
    let meters_differ = group.iter().any(|(_, f)| meters(f) != meters(group[0].1));
    format!(
        "{id} ({}) found {} times with the same config{}: kept '{}' ({}), ignored {}",
        plan.label_of(id, best),
        group.len(),
        if meters_differ {
            " (meter settings differ: measured on different machines?)"
        } else {
            ""
        },
        best.file.display(),
        best.state
            .map_or("unknown state".into(), |s| format!("{s:?}").to_lowercase()),
        others.join(", ")
    )
}

/// Every kept result must be readable by this effbench.
fn parse_chosen(chosen: &BTreeMap<String, &Found>) -> Result<BTreeMap<String, RunResult>> {
    let mut parsed: BTreeMap<String, RunResult> = BTreeMap::new();
    for (id, f) in chosen {
        let v = f.value.get("schema_version").and_then(|v| v.as_u64());
        if v != Some(SCHEMA_VERSION as u64) {
            bail!(
                "'{}' has schema_version {}; this effbench merges version {SCHEMA_VERSION}",
                f.file.display(),
                v.map_or("?".into(), |v| v.to_string())
            );
        }
        let r: RunResult = serde_json::from_value(f.value.clone())
            .with_context(|| format!("'{}' does not match the result schema", f.file.display()))?;
        parsed.insert(id.clone(), r);
    }
    Ok(parsed)
}

/// The analysis stage over the whole merged set (shards do not analyse their part); a stale
/// file goes when the suite has no `[analysis]`. True when one was written.
fn write_analysis(out: &Path, suite: &str, merged: &[RunResult]) -> Result<bool> {
    let analysis_file = out.join(ANALYSIS_FILE);
    match merged.iter().find_map(|r| r.suite.analysis.as_ref()) {
        Some(cfg) => {
            let a = analysis::suite::analyze(suite, cfg, merged);
            write_json(&analysis_file, &a)?;
            Ok(true)
        }
        None => {
            let _ = std::fs::remove_file(&analysis_file);
            Ok(false)
        }
    }
}

#[cfg(test)]
#[path = "merge_tests.rs"]
mod tests;
