//! Merge inputs from elsewhere are data, never paths: crafted ids and manifests cannot make
//! merge write, read or delete outside the directories it was given (issue 14, class 2), and
//! non-ASCII text anywhere in them does not panic it (class 4).

use super::*;
use crate::fixtures;
use crate::records::{Manifest, ManifestEntry, RunState, SuiteInfo, SCHEMA_VERSION};
use crate::result::write_json;

fn manifest(runs: Vec<ManifestEntry>, merged_from: Vec<MergedSource>) -> Manifest {
    Manifest {
        schema_version: SCHEMA_VERSION,
        suite: SuiteInfo {
            name: "s".into(),
            description: String::new(),
            file: None,
            sha256: Some(format!("a{}", "é".repeat(20))),
            varying_axes: vec!["batch".into()],
            analysis: None,
        },
        effbench_version: "x".into(),
        command: vec![],
        started_at: "2026-01-01T00:00:00Z".into(),
        finished_at: None,
        planned: runs.iter().map(|r| r.id.clone()).collect(),
        runs,
        shard: None,
        scheduler: None,
        merged_from,
        skipped: Vec::new(),
    }
}

fn entry(id: &str, file: &str) -> ManifestEntry {
    ManifestEntry {
        id: id.into(),
        label: "batch=1 ünïcode".into(),
        state: RunState::Ok,
        file: file.into(),
    }
}

fn opts() -> MergeOptions {
    MergeOptions {
        force: true,
        allow_partial: true,
        command: vec![],
    }
}

/// A shard directory holding one result whose id is `id`.
fn shard_with_id(dir: &Path, id: &str) {
    let mut r = fixtures::result("s", 1, "c", &[]);
    r.id = id.into();
    write_json(&dir.join("r.json"), &r).unwrap();
    write_json(
        &dir.join(MANIFEST_FILE),
        &manifest(vec![entry(id, "r.json")], vec![]),
    )
    .unwrap();
}

#[test]
fn a_crafted_run_id_cannot_write_outside_out() {
    let t = tempfile::tempdir().unwrap();
    let shard = t.path().join("in/shard-0");
    std::fs::create_dir_all(&shard).unwrap();
    shard_with_id(&shard, "../../escaped");
    let out = t.path().join("in/out");
    let e = merge(&[shard], &out, &opts()).unwrap_err().to_string();
    assert!(e.contains("run id") && e.contains("../../escaped"), "{e}");
    assert!(!t.path().join("escaped.json").exists());
    assert!(!out.exists(), "nothing written");
}

#[test]
fn a_crafted_old_manifest_in_out_cannot_delete_outside_it() {
    let t = tempfile::tempdir().unwrap();
    let shard = t.path().join("shard-0");
    std::fs::create_dir_all(&shard).unwrap();
    shard_with_id(&shard, "abc");
    let victim = t.path().join("victim.json");
    std::fs::write(&victim, "keep me").unwrap();
    let out = t.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let planted = manifest(
        vec![entry("x", "../victim.json")],
        vec![MergedSource {
            dir: "d".into(),
            shard: None,
            runs: 1,
        }],
    );
    write_json(&out.join(MANIFEST_FILE), &planted).unwrap();
    let e = merge(&[shard], &out, &opts()).unwrap_err().to_string();
    assert!(e.contains("refusing to delete"), "{e}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
}

#[test]
fn a_manifest_naming_files_outside_its_directory_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let shard = t.path().join("shard-0");
    std::fs::create_dir_all(&shard).unwrap();
    shard_with_id(&shard, "abc");
    write_json(
        &shard.join(MANIFEST_FILE),
        &manifest(vec![entry("abc", "../../etc/passwd")], vec![]),
    )
    .unwrap();
    let e = merge(&[shard], &t.path().join("out"), &opts())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("../../etc/passwd") && e.contains("file of run"),
        "{e}"
    );
}

#[test]
fn non_ascii_everywhere_merges_without_panic() {
    let t = tempfile::tempdir().unwrap();
    let (a, b) = (t.path().join("shard-0"), t.path().join("shard-1"));
    for d in [&a, &b] {
        std::fs::create_dir_all(d).unwrap();
    }
    shard_with_id(&a, "abc");
    // The same id with a config that differs in a long non-ASCII value: the conflict message
    // clips it without cutting a character.
    let mut r = fixtures::result("s", 1, "c", &[]);
    r.id = "abc".into();
    r.config
        .params
        .insert("model".into(), "模型".repeat(40).as_str().into());
    write_json(&b.join("r.json"), &r).unwrap();
    let mut m = manifest(vec![entry("abc", "r.json")], vec![]);
    m.suite.sha256 = Some(format!("b{}", "ü".repeat(20)));
    write_json(&b.join(MANIFEST_FILE), &m).unwrap();
    let e = merge(&[a, b], &t.path().join("out"), &opts())
        .unwrap_err()
        .to_string();
    assert!(e.contains("conflicting") && e.contains('…'), "{e}");
}
