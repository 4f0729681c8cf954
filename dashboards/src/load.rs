//! Loading results for reports and the site from many places at once: result files and
//! directories (searched recursively, every invocation of every suite), from any machine and
//! date. Files are parsed in parallel; JSON files that are not effbench results (model
//! configs, tokenizers, manifests, a generated site) are skipped, but a file that claims to
//! be a result and does not parse is an error naming it.

use anyhow::{bail, Context, Result};
use effbench_harness::result::{read_result, MANIFEST_FILE};
use effbench_harness::RunResult;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// A generated site carries this file; loaders never descend into it.
pub const SITE_MARKER: &str = ".effbench-site";

/// What [`load`] found.
#[derive(Debug, Default)]
pub struct Loaded {
    pub results: Vec<RunResult>,
    /// JSON files that were not effbench results.
    pub skipped: usize,
    /// Results found twice (same run, start time and host), kept once.
    pub duplicates: usize,
}

/// Loads every result under `paths`. A path named explicitly must be a result file or a
/// directory; nothing found at all is an error.
pub fn load(paths: &[PathBuf]) -> Result<Loaded> {
    let mut files = Vec::new();
    let mut named = HashSet::new();
    for p in paths {
        if !p.exists() {
            bail!("'{}' does not exist", p.display());
        }
        if p.is_file() {
            named.insert(p.clone());
            files.push(p.clone());
        } else {
            walk(p, &mut files)?;
        }
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
        let list: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        bail!("no effbench results found under {}", list.join(", "));
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    if dir.join(SITE_MARKER).exists() {
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list '{}'", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().map(|n| n.to_string_lossy().to_string());
        let name = name.unwrap_or_default();
        if name.starts_with('.') {
            continue;
        }
        if p.is_dir() {
            walk(&p, out)?;
        } else if name.ends_with(".json")
            && name != MANIFEST_FILE
            && name != effbench_harness::analysis::suite::ANALYSIS_FILE
        {
            out.push(p);
        }
    }
    Ok(())
}

/// Parses files on every core; `None` for JSON that is not an effbench result.
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
    let looks_like_result = memfind(&bytes, b"\"schema_version\"");
    if !looks_like_result && !named.contains(path) {
        return Ok(None);
    }
    match serde_json::from_slice::<RunResult>(&bytes) {
        Ok(r) => Ok(Some(r)),
        // the harness reader explains what is wrong (schema version, field) by file name
        Err(_) => read_result(path).map(Some),
    }
}

fn memfind(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// A machine's identity for "same hardware" questions: host and hardware.
pub fn machine_key(r: &RunResult) -> String {
    format!("{}|{}", r.env.hostname, crate::columns::hardware(&r.env))
}

/// Keeps the newest result per (suite, run id, machine); returns the kept results and, for
/// each, the older results of the same run on the same machine (newest first).
pub fn latest(results: Vec<RunResult>) -> (Vec<RunResult>, Vec<Vec<RunResult>>) {
    let mut groups: HashMap<(String, String, String), Vec<RunResult>> = HashMap::new();
    let mut order = Vec::new();
    for r in results {
        let key = (r.suite.name.clone(), r.id.clone(), machine_key(&r));
        let g = groups.entry(key.clone()).or_default();
        if g.is_empty() {
            order.push(key);
        }
        g.push(r);
    }
    let mut kept = Vec::with_capacity(order.len());
    let mut older = Vec::with_capacity(order.len());
    for key in order {
        let mut g = groups.remove(&key).unwrap_or_default();
        g.sort_by(|a, b| b.started_at.cmp(&a.started_at));
        let newest = g.remove(0);
        kept.push(newest);
        older.push(g);
    }
    (kept, older)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::synthetic_results;

    #[test]
    fn loads_directories_skips_foreign_json_and_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let rs = synthetic_results("load", 3, 1);
        for (i, r) in rs.iter().enumerate() {
            let p = dir.path().join(format!("inv{i}/{}.json", r.id));
            effbench_harness::result::write_json(&p, r).unwrap();
        }
        // the same result again elsewhere, a model config, a manifest-like file
        effbench_harness::result::write_json(&dir.path().join("copy/x.json"), &rs[0]).unwrap();
        std::fs::write(dir.path().join("config.json"), "{\"hidden_size\": 3}").unwrap();
        std::fs::create_dir_all(dir.path().join("site")).unwrap();
        std::fs::write(dir.path().join("site").join(SITE_MARKER), "").unwrap();
        effbench_harness::result::write_json(&dir.path().join("site/data.json"), &rs[1]).unwrap();
        let l = load(&[dir.path().to_path_buf()]).unwrap();
        assert_eq!(l.results.len(), 3);
        assert_eq!(l.duplicates, 1);
        assert_eq!(l.skipped, 1);
    }

    #[test]
    fn broken_result_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.json");
        std::fs::write(&p, "{\"schema_version\": 1, \"env\": {}, \"id\": 3}").unwrap();
        let e = load(&[dir.path().to_path_buf()]).unwrap_err().to_string();
        assert!(e.contains("r.json"), "{e}");
        let e = load(&[dir.path().join("nope")]).unwrap_err().to_string();
        assert!(e.contains("does not exist"), "{e}");
        let empty = tempfile::tempdir().unwrap();
        let e = load(&[empty.path().to_path_buf()]).unwrap_err().to_string();
        assert!(e.contains("no effbench results"), "{e}");
    }

    #[test]
    fn latest_keeps_newest_per_run_and_machine() {
        let mut rs = synthetic_results("latest", 2, 1);
        let mut old = rs[0].clone();
        old.started_at = "2020-01-01T00:00:00Z".into();
        rs.push(old);
        let (kept, older) = latest(rs);
        assert_eq!(kept.len(), 2);
        assert_eq!(older[0].len(), 1);
        assert_eq!(older[0][0].started_at, "2020-01-01T00:00:00Z");
    }
}
