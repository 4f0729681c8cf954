//! End-to-end runs through the real CLI on the embedded default model: results on disk,
//! valid against the committed JSON Schema, shown as a table; Ctrl-C keeps completed work.

mod common;
use common::*;
use std::time::{Duration, Instant};

fn schema_validator() -> jsonschema::Validator {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/harness/schema/run-result.v1.schema.json"
    ))
    .unwrap();
    jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).unwrap()
}

#[test]
fn run_writes_valid_results_and_show_prints_them() {
    let w = Work::new();
    w.write(
        "s.toml",
        &tiny_suite(
            "tiny",
            "dtype = [\"f32\", \"bf16\"]\nprompt_len = 8\ngen_len = 4",
            QUICK,
        ),
    );
    let o = w.run(&["run", "s.toml", "--out", "out", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let printed: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(printed.len(), 2);
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(w.path().join("out/manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["runs"].as_array().unwrap().len(), 2);
    let validator = schema_validator();
    for run in manifest["runs"].as_array().unwrap() {
        let text =
            std::fs::read_to_string(w.path().join("out").join(run["file"].as_str().unwrap()))
                .unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&json)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(json["status"]["state"], "ok");
        assert!(json["env"]["cpu_threads"].as_u64().unwrap() >= 1);
        assert!(json["config"]["params"]["gen_len"] == 4);
        assert!(json["model"]["params_total"].as_u64().unwrap() > 0);
    }
    let o = w.run(&["show", "out"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    for header in [
        "ttft p50 (ms)",
        "ttft p99 (ms)",
        "tpot (ms)",
        "output_throughput (tok/s)",
        "peak_rss (bytes)",
        "params",
        "model size",
    ] {
        assert!(out.contains(header), "missing column {header}:\n{out}");
    }
    assert!(
        out.contains("dtype=f32") && out.contains("dtype=bf16"),
        "{out}"
    );
}

#[test]
fn dry_run_and_filter_run_nothing_extra() {
    let w = Work::new();
    w.write(
        "s.toml",
        &tiny_suite("tiny", "batch = [1, 2]\nprompt_len = 8\ngen_len = 2", QUICK),
    );
    let o = w.run(&["run", "s.toml", "--dry-run"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("2 run(s), nothing executed"));
    assert!(!w.path().join("results").exists());
    let o = w.run(&["run", "s.toml", "--filter", "batch=2", "--out", "out"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let manifest = std::fs::read_to_string(w.path().join("out/manifest.json")).unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&manifest).unwrap()["runs"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn ctrl_c_keeps_completed_runs_and_marks_the_current_one() {
    let w = Work::new();
    // three runs of at least 3 s each; the interrupt is sent as soon as the first is on disk
    let measure = "warmup_iters = 0\nmin_iters = 1\nmin_duration_s = 3.0\nmax_duration_s = 60.0\nmax_iters = 1000000";
    w.write(
        "s.toml",
        &tiny_suite("long", "prompt_len = 8\ngen_len = [2, 3, 4]", measure),
    );
    let child = w
        .cmd(&["run", "s.toml", "--out", "out"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let manifest = || -> serde_json::Value {
        std::fs::read_to_string(w.path().join("out/manifest.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(serde_json::Value::Null)
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while manifest()["runs"].as_array().is_none_or(|r| r.is_empty()) {
        assert!(Instant::now() < deadline, "the first run never finished");
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    let m = manifest();
    let runs = m["runs"].as_array().unwrap();
    assert_eq!(
        runs.len(),
        2,
        "the completed run and the interrupted one: {m}"
    );
    assert_eq!(runs[0]["state"], "ok");
    assert_eq!(runs[1]["state"], "interrupted");
    assert_eq!(m["planned"].as_array().unwrap().len(), 3);
    let r: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(w.path().join("out").join(runs[1]["file"].as_str().unwrap()))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(r["status"]["state"], "interrupted");
    assert!(
        r["status"]["reason"].as_str().unwrap().contains("Ctrl-C"),
        "{r}"
    );
    assert!(err.contains("interrupted: 2 of 3 runs saved"), "{err}");
}
