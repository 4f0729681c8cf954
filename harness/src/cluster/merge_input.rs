//! Reading merge inputs: shard directories (or directories holding them), their manifests
//! and result files, the output directory check, and the helpers of conflict messages.

use crate::records::{Manifest, RunState};
use crate::result::{read_manifest, MANIFEST_FILE};
use anyhow::{anyhow, bail, Context, Result};
use std::path::{Path, PathBuf};

pub(super) struct Source {
    pub(super) dir: PathBuf,
    pub(super) manifest: Manifest,
    pub(super) results: Vec<Found>,
}

pub(super) struct Found {
    pub(super) id: String,
    pub(super) file: PathBuf,
    pub(super) bytes: Vec<u8>,
    pub(super) value: serde_json::Value,
    pub(super) state: Option<RunState>,
}

/// Directories holding a `manifest.json`: the input itself, or else its subdirectories.
pub(super) fn resolve_inputs(inputs: &[PathBuf], out: &Path) -> Result<Vec<PathBuf>> {
    let out_abs = std::fs::canonicalize(out).ok();
    let mut dirs = Vec::new();
    for input in inputs {
        if !input.exists() {
            bail!("'{}' does not exist", input.display());
        }
        if !input.is_dir() {
            bail!(
                "'{}' is not a directory (merge takes shard output directories)",
                input.display()
            );
        }
        if input.join(MANIFEST_FILE).is_file() {
            dirs.push(input.clone());
            continue;
        }
        let mut subs: Vec<PathBuf> = std::fs::read_dir(input)
            .with_context(|| format!("cannot list '{}'", input.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join(MANIFEST_FILE).is_file())
            .filter(|p| out_abs.is_none() || std::fs::canonicalize(p).ok() != out_abs)
            .collect();
        if subs.is_empty() {
            bail!(
                "'{}' has no {MANIFEST_FILE}, nor any subdirectory with one (not an effbench output directory)",
                input.display()
            );
        }
        subs.sort();
        dirs.extend(subs);
    }
    for d in &dirs {
        if out_abs.is_some() && std::fs::canonicalize(d).ok() == out_abs {
            bail!(
                "--out '{}' is also an input; merge into a new directory",
                out.display()
            );
        }
    }
    let mut seen = Vec::new();
    for d in &dirs {
        let c = std::fs::canonicalize(d).unwrap_or_else(|_| d.clone());
        if seen.contains(&c) {
            bail!("'{}' is given twice", d.display());
        }
        seen.push(c);
    }
    Ok(dirs)
}

pub(super) fn load_source(dir: &Path) -> Result<Source> {
    let mpath = dir.join(MANIFEST_FILE);
    let manifest = read_manifest(&mpath)?;
    let mut files: Vec<PathBuf> = Vec::new();
    for r in &manifest.runs {
        let what = format!("'{}': file of run", mpath.display());
        files.push(crate::names::join(dir, &what, &r.file).map_err(anyhow::Error::msg)?);
    }
    for e in std::fs::read_dir(dir).with_context(|| format!("cannot list '{}'", dir.display()))? {
        let p = e?.path();
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        if p.is_file()
            && name.ends_with(".json")
            && name != MANIFEST_FILE
            && !name.starts_with('.')
            && !files.contains(&p)
        {
            files.push(p);
        }
    }
    let mut results = Vec::new();
    for file in files {
        if !file.is_file() {
            continue; // listed in the manifest but gone: reported as missing
        }
        let bytes =
            std::fs::read(&file).with_context(|| format!("cannot read '{}'", file.display()))?;
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .with_context(|| format!("'{}' is not JSON", file.display()))?;
        let id = value
            .get("id")
            .and_then(|v| v.as_str())
            .filter(|_| value.get("schema_version").is_some())
            .ok_or_else(|| {
                anyhow!(
                    "'{}' is not an effbench result (no id or schema_version)",
                    file.display()
                )
            })?
            .to_string();
        // The id names the merged file: it must be a plain name (never `../x`).
        crate::names::check(&format!("'{}': run id", file.display()), &id)
            .map_err(anyhow::Error::msg)?;
        let state = value
            .pointer("/status/state")
            .and_then(|s| serde_json::from_value::<RunState>(s.clone()).ok());
        results.push(Found {
            id,
            file,
            bytes,
            value,
            state,
        });
    }
    Ok(Source {
        dir: dir.to_path_buf(),
        manifest,
        results,
    })
}

pub(super) fn state_rank(s: Option<RunState>) -> u8 {
    match s {
        Some(RunState::Ok) => 0,
        Some(RunState::Failed) => 1,
        Some(RunState::Interrupted) => 2,
        None => 3,
    }
}

pub(super) fn short(sha: &Option<String>) -> String {
    sha.as_deref().map_or("no file hash".into(), |s| {
        format!(
            "sha256 {}",
            crate::escape::clip(s, 12).trim_end_matches('…')
        )
    })
}

/// Where two JSON values first differ, as `path: a vs b` (for conflict messages).
pub(super) fn first_difference(
    path: &str,
    a: &serde_json::Value,
    b: &serde_json::Value,
) -> Option<String> {
    use serde_json::Value;
    if a == b {
        return None;
    }
    if let (Value::Object(x), Value::Object(y)) = (a, b) {
        let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
        keys.sort();
        keys.dedup();
        for k in keys {
            let (va, vb) = (
                x.get(k).unwrap_or(&Value::Null),
                y.get(k).unwrap_or(&Value::Null),
            );
            if let Some(d) = first_difference(&format!("{path}.{k}"), va, vb) {
                return Some(d);
            }
        }
    }
    let show = |v: &Value| crate::escape::clip(&v.to_string(), 40).into_owned();
    Some(format!("{path} {} vs {}", show(a), show(b)))
}

/// `out` must be new, empty, or an earlier merge's output (returned: its files are replaced).
pub(super) fn check_out(out: &Path) -> Result<Option<Manifest>> {
    if !out.exists() {
        return Ok(None);
    }
    let mut entries =
        std::fs::read_dir(out).with_context(|| format!("cannot list '{}'", out.display()))?;
    if entries.next().is_none() {
        return Ok(None);
    }
    let old = out.join(MANIFEST_FILE);
    match old.is_file().then(|| read_manifest(&old).ok()).flatten() {
        Some(m) if !m.merged_from.is_empty() => {
            // Its files are deleted before the new merge is written: each must be a plain
            // name inside `out`, whatever the old manifest says.
            for r in &m.runs {
                let what = format!("'{}' names a run file", old.display());
                crate::names::join(out, &what, &r.file)
                    .map_err(|e| anyhow!("{e}; refusing to delete anything: choose a new --out"))?;
            }
            Ok(Some(m))
        }
        _ => bail!(
            "--out '{}' is not empty and is not an earlier merge's output; choose a new directory",
            out.display()
        ),
    }
}
