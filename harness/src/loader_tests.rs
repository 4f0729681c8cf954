use super::*;
use crate::fixtures::result;
use crate::metric::MetricId;
use crate::records::{Manifest, ManifestEntry, RunState, SCHEMA_VERSION};
use crate::result::write_json;

fn run(batch: i64) -> RunResult {
    result("load", batch, "c0", &[(MetricId::Ttft, vec![1.0])])
}

/// An invocation directory holding `rs` and a manifest listing them.
fn invocation(dir: &Path, rs: &[RunResult]) {
    for r in rs {
        write_json(&dir.join(format!("{}.json", r.id)), r).unwrap();
    }
    let m = Manifest {
        schema_version: SCHEMA_VERSION,
        suite: rs[0].suite.clone(),
        effbench_version: "0".into(),
        command: vec![],
        started_at: String::new(),
        finished_at: None,
        planned: rs.iter().map(|r| r.id.clone()).collect(),
        runs: rs
            .iter()
            .map(|r| ManifestEntry {
                id: r.id.clone(),
                label: String::new(),
                state: RunState::Ok,
                file: format!("{}.json", r.id),
            })
            .collect(),
        shard: None,
        scheduler: None,
        merged_from: Vec::new(),
        skipped: Vec::new(),
    };
    write_json(&dir.join(MANIFEST_FILE), &m).unwrap();
}

fn ids(l: &Loaded) -> Vec<i64> {
    let mut v: Vec<i64> = l
        .results
        .iter()
        .map(|r| r.config.params["batch"].as_i64().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn newest_invocation_or_every_one() {
    let root = tempfile::tempdir().unwrap();
    invocation(&root.path().join("2026-01-01T00-00-00Z"), &[run(1), run(2)]);
    invocation(&root.path().join("2026-02-01T00-00-00Z"), &[run(3)]);
    let p = vec![root.path().to_path_buf()];
    assert_eq!(ids(&load(&p, Scope::Newest).unwrap()), [3]);
    assert_eq!(ids(&load(&p, Scope::Every).unwrap()), [1, 2, 3]);
    let one = vec![root.path().join("2026-01-01T00-00-00Z")];
    assert_eq!(ids(&load(&one, Scope::Newest).unwrap()), [1, 2]);
    let e = load(&[root.path().join("nope")], Scope::Newest).unwrap_err();
    assert!(e.to_string().contains("does not exist"), "{e}");
}

#[test]
fn a_manifest_says_what_an_invocation_holds() {
    let dir = tempfile::tempdir().unwrap();
    invocation(dir.path(), &[run(1)]);
    // a stray result beside the manifest, not listed in it, and the analysis file
    write_json(&dir.path().join("stray.json"), &run(9)).unwrap();
    std::fs::write(dir.path().join(ANALYSIS_FILE), "{\"schema_version\": 1}").unwrap();
    for scope in [Scope::Newest, Scope::Every] {
        let l = load(&[dir.path().to_path_buf()], scope).unwrap();
        assert_eq!(ids(&l), [1], "{scope:?}");
    }
}

#[test]
fn skips_foreign_json_sites_and_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let rs = [run(1), run(2), run(3)];
    for (i, r) in rs.iter().enumerate() {
        write_json(&dir.path().join(format!("inv{i}/{}.json", r.id)), r).unwrap();
    }
    // the same result again elsewhere, a model config, a generated site, a hidden file
    write_json(&dir.path().join("copy/x.json"), &rs[0]).unwrap();
    std::fs::write(dir.path().join("config.json"), "{\"hidden_size\": 3}").unwrap();
    std::fs::create_dir_all(dir.path().join("site")).unwrap();
    std::fs::write(dir.path().join("site").join(SITE_MARKER), "").unwrap();
    write_json(&dir.path().join("site/data.json"), &rs[1]).unwrap();
    write_json(&dir.path().join(".old/r.json"), &rs[1]).unwrap();
    for scope in [Scope::Newest, Scope::Every] {
        let l = load(&[dir.path().to_path_buf()], scope).unwrap();
        assert_eq!(ids(&l), [1, 2, 3], "{scope:?}");
        assert_eq!((l.duplicates, l.skipped), (1, 1), "{scope:?}");
    }
}

#[test]
fn a_broken_or_named_non_result_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("r.json");
    std::fs::write(&p, "{\"schema_version\": 1, \"env\": {}, \"id\": 3}").unwrap();
    let e = load(&[dir.path().to_path_buf()], Scope::Every).unwrap_err();
    assert!(e.to_string().contains("r.json"), "{e}");
    let q = dir.path().join("config.json");
    std::fs::write(&q, "{\"hidden_size\": 3}").unwrap();
    let e = load(&[q], Scope::Newest).unwrap_err().to_string();
    assert!(
        e.contains("config.json") && e.contains("not an effbench result"),
        "{e}"
    );
    // JSON of another tool is skipped, but a file that is not JSON is an error in any scope
    let broken = tempfile::tempdir().unwrap();
    std::fs::write(broken.path().join("y.json"), "[1, 2").unwrap();
    for scope in [Scope::Newest, Scope::Every] {
        let e = load(&[broken.path().to_path_buf()], scope)
            .unwrap_err()
            .to_string();
        assert!(e.contains("y.json") && e.contains("is not JSON"), "{e}");
    }
    let empty = tempfile::tempdir().unwrap();
    let e = load(&[empty.path().to_path_buf()], Scope::Every).unwrap_err();
    assert!(e.to_string().contains("no effbench results"), "{e}");
}
