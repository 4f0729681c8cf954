//! Loading results for reports and the site from many places at once: every invocation of
//! every suite under the paths, from any machine and date, by the harness's one loader
//! ([`effbench_harness::loader`], [`Scope::Every`]). Results of suites with `[analysis]` get
//! their speed-ups from the analysis stage, computed over what is loaded (in memory only).

use anyhow::Result;
use effbench_harness::analysis::suite::lend_speedups;
use effbench_harness::loader::{self, Scope};
use effbench_harness::RunResult;
use std::collections::HashMap;
use std::path::PathBuf;

pub use effbench_harness::loader::{Loaded, SITE_MARKER};

/// Loads every result under `paths` (a path named explicitly must be a result file or a
/// directory; nothing found at all is an error) and lends them their speed-ups.
pub fn load(paths: &[PathBuf]) -> Result<Loaded> {
    let mut loaded = loader::load(paths, Scope::Every)?;
    lend_speedups(&mut loaded.results);
    Ok(loaded)
}

/// A machine's identity for "same hardware" questions: host and hardware.
pub fn machine_key(r: &RunResult) -> String {
    r.env.machine_key()
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
