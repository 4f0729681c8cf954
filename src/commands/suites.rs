//! Where a suite named on the command line is found. As given when that path exists; else,
//! for a bare name (`quickstart`, `quickstart.toml`) or `suites/NAME.toml` that is not here,
//! in `$EFFBENCH_SUITES`, then in the `suites/` of the source tree effbench was built from
//! (`cargo install --path .` builds from the checkout, which keeps them). So an installed
//! binary runs the shipped suites from any directory, and a container image sets
//! `EFFBENCH_SUITES` to where it copied them.

use std::path::{Path, PathBuf};

/// The environment variable naming a directory of suite files.
pub const ENV: &str = "EFFBENCH_SUITES";

/// Directories searched for a suite that is not found as given, in order.
pub fn dirs() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(d) = std::env::var_os(ENV).filter(|d| !d.is_empty()) {
        out.push(PathBuf::from(d));
    }
    out.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("suites"));
    out
}

/// The suite file `arg` names (a clap value parser: never fails; a path that is found nowhere
/// comes back unchanged, so reading it gives the usual one-line error naming it).
pub fn find(arg: &str) -> Result<PathBuf, String> {
    let given = PathBuf::from(arg);
    if given.exists() {
        return Ok(given);
    }
    let bare = match given.parent() {
        None => true,
        Some(p) => p.as_os_str().is_empty() || p == Path::new("suites"),
    };
    let Some(name) = given.file_name().map(|n| n.to_string_lossy().to_string()) else {
        return Ok(given);
    };
    if !bare || name.is_empty() {
        return Ok(given);
    }
    let file = if name.ends_with(".toml") {
        name
    } else {
        format!("{name}.toml")
    };
    Ok(dirs()
        .into_iter()
        .map(|d| d.join(&file))
        .find(|p| p.is_file())
        .unwrap_or(given))
}

/// The directory `list suites` shows: `dir` when given or present, else the first of
/// [`dirs`] that exists.
pub fn list_dir(dir: Option<&Path>) -> PathBuf {
    match dir {
        Some(d) => d.to_path_buf(),
        None if Path::new("suites").is_dir() => PathBuf::from("suites"),
        None => dirs()
            .into_iter()
            .find(|d| d.is_dir())
            .unwrap_or_else(|| PathBuf::from("suites")),
    }
}
