//! Scale-out through the real CLI: `run --shard`, `plan`, `merge` (missing, duplicate and
//! conflicting runs, other suites) and `status`, on the embedded default model.

mod common;
use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

const MATRIX: &str = "dtype = [\"f32\", \"bf16\"]\nbatch = [1, 2]\nprompt_len = 8\ngen_len = 2";
const FAST: &str = "warmup_iters = 0\nmin_iters = 2\nmin_duration_s = 0.0\nmax_duration_s = 2.0";

fn json_file(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn ids(manifest: &Value) -> BTreeSet<String> {
    manifest["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

fn ok(o: &std::process::Output) {
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(o));
}

/// Runs the 4-run suite locally and as three shards into `j/shard-<i>`.
fn sharded(w: &Work) {
    w.write("s.toml", &tiny_suite("tiny", MATRIX, FAST));
    ok(&w.run(&["run", "s.toml", "--out", "local"]));
    for i in 0..3 {
        let shard = format!("{i}/3");
        let out = format!("j/shard-{i}");
        ok(&w.run(&["run", "s.toml", "--shard", &shard, "--out", &out]));
    }
}

#[test]
fn shards_merge_into_exactly_the_local_run() {
    let w = Work::new();
    sharded(&w);
    let o = w.run(&["plan", "s.toml", "--shards", "3", "--json"]);
    ok(&o);
    let plan: Value = serde_json::from_slice(&o.stdout).unwrap();
    let runs = plan["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4);
    assert_eq!(plan["shard_estimated_s"].as_array().unwrap().len(), 3);
    let text = stdout(&w.run(&["plan", "s.toml", "--shards", "3"]));
    assert!(text.contains("4 run(s) in 3 shard(s)"), "{text}");

    // Each shard ran what the plan gave it, labelled over the whole suite's axes.
    for i in 0..3 {
        let m = json_file(&w.path().join(format!("j/shard-{i}/manifest.json")));
        let planned: BTreeSet<String> = runs
            .iter()
            .filter(|r| r["shard"] == i)
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(ids(&m), planned, "shard {i}");
        assert_eq!(m["shard"]["index"], i);
        assert_eq!(m["shard"]["plan"].as_array().unwrap().len(), 4);
    }
    let o = w.run(&["merge", "j", "--out", "j/merged"]);
    ok(&o);
    assert!(
        stderr(&o).contains("merged 4 run(s) from 3 directories"),
        "{}",
        stderr(&o)
    );
    let local = json_file(&w.path().join("local/manifest.json"));
    let merged = json_file(&w.path().join("j/merged/manifest.json"));
    assert_eq!(merged["planned"], local["planned"], "same runs, same order");
    assert_eq!(ids(&merged), ids(&local));
    assert_eq!(merged["merged_from"].as_array().unwrap().len(), 3);
    for r in merged["runs"].as_array().unwrap() {
        assert_eq!(r["state"], "ok");
        let file = r["file"].as_str().unwrap();
        let got = std::fs::read(w.path().join("j/merged").join(file)).unwrap();
        let found = (0..3).any(|i| {
            std::fs::read(w.path().join(format!("j/shard-{i}/{file}"))).ok() == Some(got.clone())
        });
        assert!(found, "{file} is a byte copy of a shard result");
        let res: Value = serde_json::from_slice(&got).unwrap();
        let local_res = json_file(&w.path().join("local").join(file));
        assert_eq!(
            res["suite"], local_res["suite"],
            "suite facts as one machine"
        );
        assert_eq!(res["config"], local_res["config"]);
    }
    // `show` reads the merged set; `status` sees every shard finished and the merge.
    ok(&w.run(&["show", "j/merged"]));
    let o = w.run(&["status", "j"]);
    ok(&o);
    let s = stdout(&o);
    assert!(
        s.contains("3 of 3 shard(s) finished, 4 of 4 run(s) done"),
        "{s}"
    );
    assert!(s.contains("merged: 4 of 4 run(s)"), "{s}");
    // Merging again into the earlier merge's output replaces it.
    ok(&w.run(&[
        "merge",
        "j/shard-0",
        "j/shard-1",
        "j/shard-2",
        "--out",
        "j/merged",
    ]));
}

#[test]
fn merge_names_missing_duplicate_and_conflicting_runs() {
    let w = Work::new();
    sharded(&w);
    // Partial: shard 2 missing -> its runs listed, nothing written, exit 1.
    let o = w.run(&["merge", "j/shard-0", "j/shard-1", "--out", "partial"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    let m2 = json_file(&w.path().join("j/shard-2/manifest.json"));
    for id in ids(&m2) {
        assert!(err.contains(&format!("missing: {id}")), "{err}");
    }
    assert!(
        err.contains("shard 2") && err.contains("--allow-partial"),
        "{err}"
    );
    assert!(!w.path().join("partial").exists());
    let o = w.run(&[
        "merge",
        "j/shard-0",
        "j/shard-1",
        "--out",
        "partial",
        "--allow-partial",
    ]);
    ok(&o);
    let pm = json_file(&w.path().join("partial/manifest.json"));
    assert_eq!(pm["planned"].as_array().unwrap().len(), 4);
    assert_eq!(ids(&pm).len(), 4 - ids(&m2).len());
    // status of an incomplete set: shard 2 not started, exit 1.
    let o = w.run(&["status", "j/shard-0", "j/shard-1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("not started"), "{}", stdout(&o));

    // Duplicate: shard 0 copied elsewhere -> reported, one kept; meter settings (partly
    // machine-dependent) may differ without making it a conflict.
    copy_dir(&w.path().join("j/shard-0"), &w.path().join("dup"));
    let dm = json_file(&w.path().join("dup/manifest.json"));
    let dfile = w
        .path()
        .join("dup")
        .join(dm["runs"][0]["file"].as_str().unwrap());
    let mut d = json_file(&dfile);
    d["config"]["meters"]["grid_intensity"] = 123.0.into();
    std::fs::write(&dfile, d.to_string()).unwrap();
    let o = w.run(&[
        "merge",
        "j/shard-0",
        "j/shard-1",
        "j/shard-2",
        "dup",
        "--out",
        "m1",
    ]);
    ok(&o);
    let err = stderr(&o);
    assert!(
        err.contains("duplicate: ") && err.contains("same config"),
        "{err}"
    );
    assert!(err.contains("shard 0 appears 2 times"), "{err}");
    assert!(err.contains("meter settings differ"), "{err}");
    assert_eq!(ids(&json_file(&w.path().join("m1/manifest.json"))).len(), 4);

    // Conflict: same id, different measurement settings (or schema) -> refused, exit 2.
    copy_dir(&w.path().join("j/shard-0"), &w.path().join("conf"));
    let m0 = json_file(&w.path().join("conf/manifest.json"));
    let victim = m0["runs"][0]["file"].as_str().unwrap().to_string();
    let vid = m0["runs"][0]["id"].as_str().unwrap().to_string();
    let mut r = json_file(&w.path().join("conf").join(&victim));
    r["config"]["measure"]["min_iters"] = 7.into();
    std::fs::write(w.path().join("conf").join(&victim), r.to_string()).unwrap();
    let o = w.run(&["merge", "j", "conf", "--out", "m2"]);
    let line = assert_clean_error(&o, 2);
    assert!(
        line.contains("1 conflicting run(s)") && line.contains(&vid),
        "{line}"
    );
    assert!(line.contains("config.measure.min_iters 2 vs 7"), "{line}");
    r["config"]["measure"]["min_iters"] = 2.into();
    r["schema_version"] = 2.into();
    std::fs::write(w.path().join("conf").join(&victim), r.to_string()).unwrap();
    let line = assert_clean_error(&w.run(&["merge", "j", "conf", "--out", "m2"]), 2);
    assert!(line.contains("schema_version 1 vs 2"), "{line}");
    assert!(!w.path().join("m2").exists());

    // Different suite -> refused unless --force.
    w.write(
        "other.toml",
        &tiny_suite("other", "prompt_len = 8\ngen_len = 3", FAST),
    );
    ok(&w.run(&["run", "other.toml", "--out", "other"]));
    let line = assert_clean_error(&w.run(&["merge", "j", "other", "--out", "m3"]), 2);
    assert!(
        line.contains("different suites") && line.contains("--force"),
        "{line}"
    );
    let o = w.run(&["merge", "j", "other", "--out", "m3", "--force"]);
    ok(&o);
    assert!(
        stderr(&o).contains("merged because of --force"),
        "{}",
        stderr(&o)
    );
    assert_eq!(ids(&json_file(&w.path().join("m3/manifest.json"))).len(), 5);

    // Shards of another split of the same suite -> refused unless --force.
    ok(&w.run(&["run", "s.toml", "--shard", "0/2", "--out", "two/shard-0"]));
    let line = assert_clean_error(&w.run(&["merge", "j", "two", "--out", "m4"]), 2);
    assert!(line.contains("planned differently"), "{line}");

    // Inputs that are not shard outputs.
    let line = assert_clean_error(&w.run(&["merge", "nowhere", "--out", "m5"]), 2);
    assert!(line.contains("'nowhere' does not exist"), "{line}");
    std::fs::create_dir_all(w.path().join("empty")).unwrap();
    let line = assert_clean_error(&w.run(&["merge", "empty", "--out", "m5"]), 2);
    assert!(line.contains("no manifest.json"), "{line}");
    let line = assert_clean_error(&w.run(&["merge", "j/shard-0", "--out", "local"]), 2);
    assert!(line.contains("not empty"), "{line}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
    }
}

#[test]
fn bad_shards_are_one_line_errors() {
    let w = Work::new();
    w.write("s.toml", &tiny_suite("tiny", MATRIX, FAST));
    for (arg, want) in [
        ("3/3", "index must be below the shard count (0..=2)"),
        ("0/0", "shard count must be at least 1"),
        ("a/3", "index 'a' is not a whole number"),
        ("1/b", "shard count 'b' is not a whole number"),
        ("2", "not of the form I/N"),
        ("-1/3", "not a whole number"),
    ] {
        let line = assert_clean_error(&w.run(&["run", "s.toml", "--shard", arg]), 2);
        assert!(line.contains(want), "{arg}: {line}");
    }
    let line = assert_clean_error(&w.run(&["plan", "s.toml", "--shards", "0"]), 2);
    assert!(line.contains("at least 1"), "{line}");
    assert!(!w.path().join("results").exists(), "nothing ran");
    // More shards than runs: the extra shard is empty but still leaves a manifest.
    let o = w.run(&["run", "s.toml", "--shard", "5/6", "--out", "e"]);
    ok(&o);
    let m = json_file(&w.path().join("e/manifest.json"));
    assert_eq!(m["runs"].as_array().unwrap().len(), 0);
    assert!(m["finished_at"].is_string());
}
