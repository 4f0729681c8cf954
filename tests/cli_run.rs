//! End-to-end runs through the real CLI on the seeded default weights: results on disk,
//! valid against the committed JSON Schema, shown as a table; Ctrl-C keeps completed work.

mod common;
use common::*;
use std::time::Duration;

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
        "peak_rss",
    ] {
        assert!(out.contains(header), "missing column {header}:\n{out}");
    }
    // the summary fits 120 columns; a column it leaves out is named with its key
    let hint = out
        .lines()
        .find(|l| l.starts_with("more columns:"))
        .unwrap_or("");
    for (header, key) in [("params", "params"), ("model size", "model_size")] {
        assert!(
            out.contains(header) || hint.contains(key),
            "missing {header}:\n{out}"
        );
    }
    let o = w.run(&["show", "out", "--columns", "run,params,model_size,peak_rss"]);
    assert!(
        stdout(&o).contains("params") && stdout(&o).contains("model size"),
        "{}",
        stdout(&o)
    );
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
    // three runs of at least 3 s each
    let measure = "warmup_iters = 0\nmin_iters = 1\nmin_duration_s = 3.0\nmax_duration_s = 60.0\nmax_iters = 1000000";
    w.write(
        "s.toml",
        &tiny_suite("long", "prompt_len = 8\ngen_len = [2, 3, 4]", measure),
    );
    let mut child = w
        .cmd(&["run", "s.toml", "--out", "out"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Without a terminal, effbench prints "[i/n] label" as each run starts: interrupt once
    // the second run has started (so run 1 is complete and run 2 is in progress).
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut seen = String::new();
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.starts_with("[2/3]") {
                let _ = tx.send(());
            }
            seen.push_str(&line);
            seen.push('\n');
        }
        seen
    });
    rx.recv_timeout(Duration::from_secs(120))
        .expect("the second run never started");
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let err = reader.join().unwrap();
    assert_eq!(out.status.code(), Some(130), "{err}");
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(w.path().join("out/manifest.json")).unwrap())
            .unwrap();
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
