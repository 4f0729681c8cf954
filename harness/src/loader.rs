//! Finding and reading stored results: the one set of rules every command that reads results
//! uses (`show`, `compare`, `gate`, `history`, `export`, `report`, `site`, `pareto`,
//! `dynascore`).
//!
//! What a path means:
//! - a **file** must be a result (anything else is an error naming it);
//! - an **A/B directory** (`ab.json`) means both sides' runs;
//! - a directory with a **manifest** means the runs the manifest lists (and, with
//!   [`Scope::Every`], whatever lies in its subdirectories);
//! - a **directory of invocations** (subdirectories with manifests) means the newest one with
//!   [`Scope::Newest`] (`show results/quickstart`) and every one with [`Scope::Every`];
//! - any other directory is searched recursively. Hidden entries, generated sites
//!   ([`SITE_MARKER`]), manifests, `ab.json` and `analysis.json` are passed over; JSON that
//!   does not claim to be a result (no `schema_version`: model configs, tokenizers) is skipped
//!   and counted; a file that claims to be a result but does not parse is an error naming it.
//!
//! The same result found twice (same run id, start time and host) is kept once.

use crate::ab::{self, AB_FILE};
use crate::analysis::suite::ANALYSIS_FILE;
use crate::records::RunResult;
use crate::result::{read_manifest, read_result, MANIFEST_FILE};
use anyhow::{bail, Context, Result};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// A generated site carries this file; the loader never descends into it.
pub const SITE_MARKER: &str = ".effbench-site";

/// What a directory of invocation directories stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Its newest invocation (by directory name, a UTC timestamp): one result set.
    Newest,
    /// Every invocation in it, at any depth.
    Every,
}

/// What [`load`] found.
#[derive(Debug, Default)]
pub struct Loaded {
    pub results: Vec<RunResult>,
    /// JSON files that were not effbench results.
    pub skipped: usize,
    /// Results found twice (same run, start time and host), kept once.
    pub duplicates: usize,
}

/// Loads every result `paths` stand for (see the module doc); nothing found is an error.
pub fn load(paths: &[PathBuf], scope: Scope) -> Result<Loaded> {
    let mut files = Vec::new();
    let mut named = HashSet::new();
    for p in paths {
        let found = candidates(p, scope)?;
        named.extend(found.named);
        files.extend(found.files);
    }
    let parsed = parse_parallel(&files, &named)?;
    let mut out = Loaded::default();
    let mut seen = HashSet::new();
    for r in parsed {
        match r {
            None => out.skipped += 1,
            Some(r) => {
                if seen.insert((r.id.clone(), r.started_at.clone(), r.env.hostname.clone())) {
                    out.results.push(r);
                } else {
                    out.duplicates += 1;
                }
            }
        }
    }
    if out.results.is_empty() {
        let list: Vec<String> = paths.iter().map(|p| format!("'{}'", p.display())).collect();
        bail!("no effbench results found under {}", list.join(", "));
    }
    Ok(out)
}

/// Files to read for `path`: `named` ones must be results (a manifest lists them, or the user
/// named them); the others may be any JSON.
#[derive(Debug, Default)]
pub struct Candidates {
    pub files: Vec<PathBuf>,
    pub named: Vec<PathBuf>,
}

/// The files `path` stands for, without reading them (manifests are read).
pub fn candidates(path: &Path, scope: Scope) -> Result<Candidates> {
    if !path.exists() {
        bail!("'{}' does not exist", path.display());
    }
    let mut c = Candidates::default();
    if path.is_file() {
        c.files.push(path.to_path_buf());
        c.named.push(path.to_path_buf());
        return Ok(c);
    }
    if scope == Scope::Newest {
        if let Some((a, b)) = ab::sides(path) {
            for side in [a, b] {
                let s = candidates(&side, scope)?;
                c.files.extend(s.files);
                c.named.extend(s.named);
            }
            return Ok(c);
        }
        if !path.join(MANIFEST_FILE).is_file() {
            let mut invocations: Vec<PathBuf> = list(path)?
                .into_iter()
                .filter(|p| p.join(MANIFEST_FILE).is_file())
                .collect();
            invocations.sort();
            if let Some(newest) = invocations.last() {
                return candidates(newest, scope);
            }
        }
    }
    walk(path, scope, true, &mut c)?;
    Ok(c)
}

fn list(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list '{}'", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    Ok(entries)
}

fn walk(dir: &Path, scope: Scope, top: bool, c: &mut Candidates) -> Result<()> {
    if dir.join(SITE_MARKER).exists() {
        return Ok(());
    }
    let manifest = dir.join(MANIFEST_FILE);
    let has_manifest = manifest.is_file();
    if has_manifest {
        let m = read_manifest(&manifest)?;
        for r in &m.runs {
            let what = format!("file of run {} in '{}':", r.id, manifest.display());
            let f = crate::names::join(dir, &what, &r.file).map_err(anyhow::Error::msg)?;
            if f.is_file() {
                c.named.push(f.clone());
                c.files.push(f);
            }
        }
        // In Newest scope an invocation is one result set; its subdirectories are not part of it.
        if scope == Scope::Newest && top {
            return Ok(());
        }
    }
    for p in list(dir)? {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        if name.starts_with('.') {
            continue;
        }
        if p.is_dir() {
            walk(&p, scope, false, c)?;
        } else if !has_manifest
            && name.ends_with(".json")
            && ![MANIFEST_FILE, AB_FILE, ANALYSIS_FILE].contains(&name.as_str())
        {
            c.files.push(p);
        }
    }
    Ok(())
}

/// Parses files on up to 16 threads; `None` for JSON that is not an effbench result.
fn parse_parallel(files: &[PathBuf], named: &HashSet<PathBuf>) -> Result<Vec<Option<RunResult>>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(16);
    let chunk = files.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|part| s.spawn(move || part.iter().map(|f| parse_one(f, named)).collect()))
            .collect();
        let mut out = Vec::with_capacity(files.len());
        for h in handles {
            let part: Result<Vec<Option<RunResult>>> = h
                .join()
                .unwrap_or_else(|_| bail!("a result loader thread panicked"));
            out.extend(part?);
        }
        Ok(out)
    })
}

fn parse_one(path: &Path, named: &HashSet<PathBuf>) -> Result<Option<RunResult>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read '{}'", path.display()))?;
    // results start with it, so this stops after a few bytes for the common case
    let claims_to_be_a_result = memfind(&bytes, b"\"schema_version\"");
    if !claims_to_be_a_result && !named.contains(path) {
        // JSON of another tool is skipped; a file that is not JSON at all is an error (a
        // truncated or corrupted result must not vanish from a comparison)
        if serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_err() {
            return read_result(path).map(Some);
        }
        return Ok(None);
    }
    match serde_json::from_slice::<RunResult>(&bytes) {
        Ok(r) => Ok(Some(r)),
        // the one-file reader explains what is wrong (schema version, field) by file name
        Err(_) => read_result(path).map(Some),
    }
}

fn memfind(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The result files `path` stands for (this module's rules, newest invocation).
pub fn result_files(path: &Path) -> Result<Vec<PathBuf>> {
    Ok(candidates(path, Scope::Newest)?.files)
}

/// Loads every result under `path` (this module's rules, newest invocation).
pub fn load_results(path: &Path) -> Result<Vec<RunResult>> {
    Ok(load(&[path.to_path_buf()], Scope::Newest)?.results)
}

#[cfg(test)]
#[path = "loader_tests.rs"]
mod tests;
