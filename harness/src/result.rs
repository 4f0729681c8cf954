//! `RunResult` (schema v1), the suite manifest, atomic writes and loading results back.
//!
//! Layout on disk: `<out>/<run-id>.json` per run and `<out>/manifest.json` per suite
//! invocation; the default `<out>` is `results/<suite>/<UTC timestamp>/`.

use crate::records::{Manifest, RunResult, SCHEMA_VERSION};
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

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

#[cfg(test)]
#[path = "result_tests.rs"]
mod tests;
