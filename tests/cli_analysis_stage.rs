//! The analysis stage through the real CLI: `analysis.json` after `run` (also with a
//! `backend` axis), after `merge` of shards (over the whole suite, never per shard), and
//! computed by `report`/`show` when absent; result files are never rewritten. Also
//! `run --dry-run --json`.

mod common;
use common::*;
use serde_json::Value;
use std::path::Path;

const FAST: &str = "warmup_iters = 0\nmin_iters = 2\nmin_duration_s = 0.0\nmax_duration_s = 2.0";

/// dtype x batch on the seeded default weights, speed-ups against dtype = f32.
fn suite(matrix_extra: &str) -> String {
    format!(
        "name = \"stage\"\nscenario = \"inference\"\nmodel = \"seeded\"\n{matrix_extra}\
         [matrix]\ndtype = [\"f32\", \"bf16\"]\nbatch = [1, 2]\nprompt_len = 8\ngen_len = 2\n\
         [measure]\n{FAST}\n[analysis]\nquality = false\nbaseline = {{ dtype = \"f32\" }}\n"
    )
}

fn json_file(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn ok(o: &std::process::Output) {
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(o));
}

/// Run id -> its `speedup_tpot` in an analysis file.
fn speedups(analysis: &Value) -> Vec<(String, Option<f64>)> {
    analysis["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let tpot = r["speedups"].as_array().and_then(|ms| {
                ms.iter()
                    .find(|m| m["name"] == "speedup_tpot")
                    .and_then(|m| m["value"].as_f64())
            });
            (r["id"].as_str().unwrap().to_string(), tpot)
        })
        .collect()
}

/// Every result file of an invocation, as written.
fn result_files(dir: &Path) -> Vec<(String, Value)> {
    let m = json_file(&dir.join("manifest.json"));
    m["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let f = r["file"].as_str().unwrap();
            (f.to_string(), json_file(&dir.join(f)))
        })
        .collect()
}

fn has_speedup_metric(r: &Value) -> bool {
    r["metrics"].as_array().unwrap().iter().any(|m| {
        m["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("speedup_"))
    })
}

#[test]
fn a_backend_axis_suite_gets_its_analysis_and_result_files_stay_as_measured() {
    let w = Work::new();
    // `backend` given as an axis: the suite has no single backend (this failed with
    // "unknown backend ''" after every run had finished, and wrote no analysis.json)
    w.write(
        "s.toml",
        &suite("").replace("[matrix]\n", "[matrix]\nbackend = [\"candle\"]\n"),
    );
    let o = w.run(&["run", "s.toml", "--out", "out", "--no-site"]);
    ok(&o);
    let a = json_file(&w.path().join("out/analysis.json"));
    let sp = speedups(&a);
    assert_eq!(sp.len(), 4);
    assert!(sp.iter().all(|(_, s)| s.is_some_and(|x| x > 0.0)), "{sp:?}");
    assert_eq!(a["baseline"]["dtype"], "f32");
    // the analysis never rewrites a result: no speed-ups in the files
    for (f, r) in result_files(&w.path().join("out")) {
        assert!(!has_speedup_metric(&r), "{f} was rewritten with speed-ups");
        assert_eq!(r["suite"]["analysis"]["baseline"]["dtype"], "f32", "{f}");
    }
    // show and report lend the speed-ups to the results they display
    let o = w.run(&["show", "out"]);
    ok(&o);
    assert!(stdout(&o).contains("speedup_tpot"), "{}", stdout(&o));
    let o = w.run(&[
        "report",
        "out",
        "--format",
        "json",
        "--columns",
        "run,speedup_tpot",
    ]);
    ok(&o);
    let rep: Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = rep["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    assert!(
        rows.iter().all(|r| r["speedup_tpot"].as_f64().is_some()),
        "{rows:?}"
    );
}

#[test]
fn shards_leave_the_analysis_to_merge_which_analyses_the_whole_suite() {
    let w = Work::new();
    w.write("s.toml", &suite("backend = \"candle\"\n"));
    for i in 0..2 {
        let o = w.run(&[
            "run",
            "s.toml",
            "--shard",
            &format!("{i}/2"),
            "--out",
            &format!("j/shard-{i}"),
        ]);
        ok(&o);
        assert!(
            stderr(&o).contains("analysis: after `effbench merge`"),
            "{}",
            stderr(&o)
        );
        // a shard holds part of the suite: speed-ups over it would use the wrong baselines
        assert!(!w.path().join(format!("j/shard-{i}/analysis.json")).exists());
    }
    let o = w.run(&["merge", "j", "--out", "merged"]);
    ok(&o);
    assert!(stderr(&o).contains("analysis: "), "{}", stderr(&o));
    let a = json_file(&w.path().join("merged/analysis.json"));
    let sp = speedups(&a);
    assert_eq!(
        sp.len(),
        4,
        "every run of the suite, whichever shard ran it"
    );
    assert!(sp.iter().all(|(_, s)| s.is_some()), "{sp:?}");
    // the baselines are the f32 runs of the same batch, wherever they ran
    let m = json_file(&w.path().join("merged/manifest.json"));
    assert_eq!(m["runs"].as_array().unwrap().len(), 4);
    for r in a["runs"].as_array().unwrap() {
        let base = r["speedup_baseline"].as_str().unwrap();
        let b = a["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["id"] == base)
            .unwrap();
        assert_eq!(b["is_baseline"], true);
    }

    // without analysis.json (copied by hand, say), report computes the same speed-ups
    std::fs::remove_file(w.path().join("merged/analysis.json")).unwrap();
    let o = w.run(&[
        "report",
        "merged",
        "--format",
        "json",
        "--columns",
        "id,speedup_tpot",
    ]);
    ok(&o);
    let rep: Value = serde_json::from_slice(&o.stdout).unwrap();
    for row in rep["rows"].as_array().unwrap() {
        let id = row["id"].as_str().unwrap();
        let want = sp.iter().find(|(i, _)| i == id).unwrap().1.unwrap();
        let got = row["speedup_tpot"].as_f64().unwrap();
        assert!((got - want).abs() <= 1e-12 * want, "{id}: {got} vs {want}");
    }
}

#[test]
fn dry_run_json_is_json() {
    let w = Work::new();
    w.write("s.toml", &suite("backend = \"candle\"\n"));
    let o = w.run(&["run", "s.toml", "--dry-run", "--json"]);
    ok(&o);
    let v: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("--dry-run --json printed no JSON ({e}): {}", stdout(&o)));
    let runs = v.as_array().unwrap();
    assert_eq!(runs.len(), 4);
    assert!(runs[0]["id"].is_string() && runs[0]["label"].is_string());
    assert_eq!(runs[0]["config"]["backend"], "candle");
    assert!(!w.path().join("results").exists(), "nothing ran");
}
