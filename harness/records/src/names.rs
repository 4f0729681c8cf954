//! Names that come from a file (a suite's `name`, run ids and result file names in results
//! and manifests, shard directories in a plan) become paths only through this module: every
//! component is checked by [`check`] — letters, digits, `-`, `_` and `.`, not starting with
//! `.` (so never `.` or `..`), at most [`MAX_NAME_BYTES`] bytes — and only then joined under
//! the directory it belongs in ([`join`]). Nothing read from a file can name a place outside
//! the directory effbench writes, reads or deletes in.

use std::path::{Path, PathBuf};

/// Longest name component (well under every filesystem's 255).
pub const MAX_NAME_BYTES: usize = 128;

/// Checks one name component; `what` names it in the error (e.g. `suite name`, `run id in
/// 'x/manifest.json'`).
pub fn check<'a>(what: &str, name: &'a str) -> Result<&'a str, String> {
    match problem(name) {
        None => Ok(name),
        Some(why) => Err(format!(
            "{what} {} {why} (it names a file or directory)",
            crate::escape::quoted(name)
        )),
    }
}

fn problem(name: &str) -> Option<&'static str> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if name.is_empty() {
        Some("is empty")
    } else if name.len() > MAX_NAME_BYTES {
        Some("is longer than 128 bytes")
    } else if name.starts_with('.') {
        Some("starts with '.'")
    } else if !name.chars().all(allowed) {
        Some("may contain only letters, digits, '-', '_' and '.'")
    } else {
        None
    }
}

/// `dir/rel`, where `rel` is one or more `/`-separated components each passing [`check`] (an
/// A/B side's manifest names `07/<id>.json`). The result is always inside `dir`.
pub fn join(dir: &Path, what: &str, rel: &str) -> Result<PathBuf, String> {
    let mut p = dir.to_path_buf();
    for part in rel.split('/') {
        if let Some(why) = problem(part) {
            return Err(format!(
                "{what} {} is not a plain path inside its directory (a part of it {why})",
                crate::escape::quoted(rel)
            ));
        }
        p.push(part);
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_are_refused() {
        for ok in ["quickstart", "a.b-c_d", "0123abcd.json", "v1.2"] {
            assert_eq!(check("n", ok), Ok(ok));
        }
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "../x",
            "a/b",
            "a\\b",
            "/abs",
            "a b",
            "é",
            "a\0b",
            "a\nb",
            &"x".repeat(129),
        ] {
            let e = check("suite name", bad).unwrap_err();
            assert!(e.starts_with("suite name "), "{e}");
            assert!(!e.contains('\n'), "one line: {e}");
        }
    }

    #[test]
    fn joined_paths_stay_inside() {
        let d = Path::new("/out");
        assert_eq!(
            join(d, "f", "07/ab.json").unwrap(),
            Path::new("/out/07/ab.json")
        );
        for bad in ["../../x", "a/../../b", "/etc/passwd", "a//b", "a/", "./a"] {
            assert!(join(d, "file", bad).is_err(), "{bad}");
        }
    }
}
