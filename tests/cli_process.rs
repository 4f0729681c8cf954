//! The `process` backend through the real CLI: a suite of injected worker faults (each run
//! fails with its own clear reason and the worker's stderr, runs before and after are
//! untouched, no worker process outlives effbench), the pure-Python reference worker end to
//! end for inference and training, and the shipped suites.

mod common;
use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

fn python3() -> bool {
    let ok = Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("EFFBENCH_REQUIRE_EXTERNAL").is_none(),
            "python3 is required for the process backend tests"
        );
        eprintln!("skipped: python3 not found");
    }
    ok
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// Results of an invocation by the label's model value, in manifest order.
fn results(out: &Path) -> Vec<(String, Value)> {
    let manifest = read_json(&out.join("manifest.json"));
    manifest["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let res = read_json(&out.join(r["file"].as_str().unwrap()));
            let model = res["config"]["params"]["model"]
                .as_str()
                .unwrap()
                .to_string();
            (model, res)
        })
        .collect()
}

fn metric<'a>(r: &'a Value, name: &str) -> Option<&'a Value> {
    r["metrics"].as_array()?.iter().find(|m| m["name"] == name)
}

/// State letter from /proc/PID/stat; None when the process is gone.
fn state(pid: &str) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')').next()?.trim().chars().next()
}

#[test]
fn every_injected_fault_fails_its_run_only_and_no_worker_survives() {
    if !python3() {
        return;
    }
    let w = Work::new();
    let pids = w.path().join("pids");
    std::fs::create_dir(&pids).unwrap();
    let worker = format!("{REPO}/tests/workers/fault_worker.py");
    let models = [
        "ok:first",
        "crash-load",
        "error-load",
        "wrong-version",
        "crash-run",
        "hang-run",
        "garbage-run",
        "huge-line",
        "grandchild-hang",
        "slow-shutdown",
        "bad-probe",
        "bad-roofline",
        "ok:last",
    ];
    let list: Vec<String> = models.iter().map(|m| format!("\"{m}\"")).collect();
    w.write(
        "faults.toml",
        &format!(
            "name = \"faults\"\nscenario = \"inference\"\nbackend = \"process\"\n\
             [matrix]\nmodel = [{}]\nprompt_len = 4\ngen_len = 3\n\
             [measure]\nwarmup_iters = 1\nmin_iters = 3\nmin_duration_s = 0.0\nmax_duration_s = 20.0\n\
             [options]\ncmd = [\"python3\", \"{worker}\", \"{{model}}\"]\nmax_line_bytes = 1048576\n\
             env = {{ FAULT_PID_DIR = \"{}\" }}\ntimeouts = {{ run = 2, shutdown = 1 }}\n",
            list.join(", "),
            pids.display()
        ),
    );
    let o = w.run(&["run", "faults.toml", "--out", "out"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "some runs fail: {err}");
    assert!(!err.contains("panicked"), "{err}");

    let res = results(&w.path().join("out"));
    let names: Vec<&str> = res.iter().map(|(m, _)| m.as_str()).collect();
    assert_eq!(names, models, "every run has a result, in order");
    let expect = [
        (
            "crash-load",
            "exited with status 3 before replying during `load`",
        ),
        (
            "error-load",
            "worker error during `load` (unsupported): dtype f32 is not supported here",
        ),
        (
            "wrong-version",
            "worker speaks protocol version 2, effbench speaks 1 during `describe`",
        ),
        (
            "crash-run",
            "exited with status 3 before replying during `run`",
        ),
        (
            "hang-run",
            "did not answer within 2 s (timeouts.run in [options]) during `run`",
        ),
        ("garbage-run", "worker wrote a line that is not JSON"),
        (
            "huge-line",
            "worker wrote a reply line of more than 1048576 bytes",
        ),
        ("grandchild-hang", "did not answer within 2 s"),
        (
            "bad-probe",
            "peak_bandwidth.bytes_per_s = -1 is not a rate in (0, 1e15]",
        ),
        (
            "bad-roofline",
            "model.roofline.block_flops_per_token = -1 is not a count in [0, 1e18]",
        ),
    ];
    for (model, r) in &res {
        let state = r["status"]["state"].as_str().unwrap();
        let reason = r["status"]["reason"].as_str().unwrap_or("");
        let log: Vec<&str> = r["log"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        match expect.iter().find(|(m, _)| m == model) {
            Some((_, want)) => {
                assert_eq!(state, "failed", "{model}: {reason}");
                assert!(reason.contains(want), "{model}: {reason}");
                assert!(!reason.contains('\n'), "{model}: one line: {reason}");
                assert!(
                    log.iter()
                        .any(|l| l.starts_with("worker stderr: fault worker starting")),
                    "{model}: stderr tail in the log: {log:?}"
                );
            }
            None => {
                assert_eq!(state, "ok", "{model}: {reason}");
                assert_eq!(r["iterations"], 3);
                let ttft = metric(r, "ttft").unwrap();
                assert_eq!(ttft["source"], "worker clock (time.perf_counter_ns)");
                assert!(metric(r, "ipc_overhead").is_some(), "{model}");
                assert!(
                    metric(r, "worker_peak_rss").unwrap()["value"]
                        .as_f64()
                        .unwrap()
                        > 0.0
                );
                let mem = metric(r, "peak_device_memory_allocated")
                    .unwrap_or_else(|| panic!("{model}: {r}"));
                assert_eq!(
                    (mem["value"].as_f64(), mem["source"].as_str()),
                    (Some(4000.0), Some("fault worker"))
                );
                // The worker's probes land in the environment and its roofline in the
                // model, so MBU is derived as for the candle backend.
                if !model.starts_with("ok") {
                    continue;
                }
                let env = &r["env"];
                assert_eq!(env["peak_bandwidth"]["bytes_per_s"], 1e9, "{model}: {env}");
                assert!(env["peak_flops"]["method"]
                    .as_str()
                    .unwrap()
                    .contains("fault worker"));
                assert_eq!(r["model"]["roofline"]["weight_bytes_per_step"], 1_000_000);
                assert!(metric(r, "mbu").is_some(), "{model}: {r}");
            }
        }
    }
    let by = |m: &str| &res.iter().find(|(n, _)| n == m).unwrap().1;
    // mid-run crash: the iteration measured before it is kept
    assert_eq!(by("crash-run")["iterations"], 1);
    assert!(by("crash-run")["status"]["reason"]
        .as_str()
        .unwrap()
        .ends_with("RuntimeError: injected crash in run"));
    assert!(by("hang-run")["status"]["reason"]
        .as_str()
        .unwrap()
        .contains("about to hang"));
    let slow_log = by("slow-shutdown")["log"].to_string();
    assert!(slow_log.contains("worker shutdown failed"), "{slow_log}");

    // no worker (or grandchild) is still running after effbench exits
    let recorded: Vec<String> = std::fs::read_dir(&pids)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert!(recorded.len() >= models.len(), "{recorded:?}");
    for pid in &recorded {
        let s = state(pid);
        assert!(
            matches!(s, None | Some('Z')),
            "worker {pid} survived effbench: state {s:?}"
        );
    }
}

#[test]
fn reference_worker_runs_inference_and_training_end_to_end() {
    if !python3() {
        return;
    }
    let w = Work::new();
    let worker = format!("{REPO}/backends/workers/reference_worker.py");
    w.write(
        "infer.toml",
        &format!(
            "name = \"ref\"\nscenario = \"inference\"\nmodel = \"seeded\"\n\
             [matrix]\nbackend = [\"candle\", \"process\"]\nprompt_len = 4\ngen_len = 4\n\
             [measure]\nwarmup_iters = 1\nmin_iters = 2\nmin_duration_s = 0.0\nmax_duration_s = 60.0\n\
             [options]\ncmd = [\"python3\", \"{worker}\"]\n"
        ),
    );
    let o = w.run(&["run", "infer.toml", "--out", "inf"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let res = results(&w.path().join("inf"));
    assert_eq!(res.len(), 2);
    let candle = &res
        .iter()
        .find(|(_, r)| r["config"]["backend"] == "candle")
        .unwrap()
        .1;
    let process = &res
        .iter()
        .find(|(_, r)| r["config"]["backend"] == "process")
        .unwrap()
        .1;
    // same weights, seen by effbench itself
    assert_eq!(candle["model"]["sha256"], process["model"]["sha256"]);
    assert_eq!(
        candle["model"]["params_total"],
        process["model"]["params_total"]
    );
    assert_eq!(process["model"]["name"], "seeded");
    assert_eq!(process["model"]["details"]["worker"], "reference-python 1");
    assert!(metric(process, "ttft").unwrap()["value"].as_f64().unwrap() > 0.0);
    assert!(metric(process, "tpot").unwrap()["value"].as_f64().unwrap() > 0.0);
    assert!(metric(process, "output_throughput").is_some());
    let show = w.run(&["show", "inf"]);
    assert_eq!(show.status.code(), Some(0), "{}", stderr(&show));
    assert!(stdout(&show).contains("process"), "{}", stdout(&show));

    w.write(
        "train.toml",
        &format!(
            "name = \"ref-train\"\nscenario = \"training\"\nbackend = \"process\"\nmodel = \"seeded\"\n\
             [matrix]\nbatch = 2\nseq_len = 16\nsteps = 7\n\
             [measure]\nwarmup_iters = 1\nmin_iters = 1\nmin_duration_s = 0.0\nmax_duration_s = 60.0\n\
             [options]\ncmd = [\"python3\", \"{worker}\"]\nlr = 0.05\n"
        ),
    );
    let o = w.run(&["run", "train.toml", "--out", "tr"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let (_, r) = &results(&w.path().join("tr"))[0];
    assert_eq!(r["iterations"], 6, "`steps` = 7 minus one warm-up step");
    assert!(
        r["config"]["params"].get("gen_len").is_none(),
        "no inference axes on training runs"
    );
    let loss = metric(r, "train_loss").unwrap();
    assert_eq!(loss["samples"].as_array().unwrap().len(), 6);
    assert!(metric(r, "step_time").unwrap()["value"].as_f64().unwrap() > 0.0);
    assert!(metric(r, "train_throughput").is_some());
    let curve = r["series"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "train_loss")
        .unwrap();
    assert_eq!(curve["points"].as_array().unwrap().len(), 6);
    assert_eq!(r["model"]["arch"], "bigram");
}

#[test]
fn shipped_process_suites_validate() {
    for suite in [
        "process-reference.toml",
        "cuda-inference.toml",
        "cuda-training.toml",
        "cuda-real.toml",
        "cuda-train-real.toml",
    ] {
        let o = Command::new(bin())
            .args(["validate", &format!("suites/{suite}")])
            .current_dir(REPO)
            .output()
            .unwrap();
        let out = stdout(&o);
        let err = stderr(&o);
        // candle (or candle-train) on cuda:0
        let cuda_candle = suite != "cuda-training.toml" && suite != "process-reference.toml";
        if cuda_candle && !cfg!(feature = "cuda") {
            // candle needs the cuda build; the filter keeps what this build can run
            assert!(err.contains("build with --features cuda"), "{err}");
            let o = Command::new(bin())
                .args([
                    "run",
                    &format!("suites/{suite}"),
                    "--dry-run",
                    "--filter",
                    "backend=process",
                ])
                .current_dir(REPO)
                .output()
                .unwrap();
            assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
            continue;
        }
        assert_eq!(o.status.code(), Some(0), "{suite}: {err}");
        assert!(out.contains(": ok"), "{out}");
    }
}

#[test]
fn process_suite_errors_name_the_option() {
    let w = Work::new();
    let suite = |opts: &str| {
        format!(
            "name = \"p\"\nscenario = \"inference\"\nbackend = \"process\"\nmodel = \"seeded\"\n[matrix]\ngen_len = 2\n[options]\n{opts}\n"
        )
    };
    for (opts, want) in [
        ("", "needs options.cmd"),
        (
            "cmd = \"python3 w.py\"",
            "options.cmd must be a non-empty list",
        ),
        ("cmd = [\"w\", \"{dtyp}\"]", "unknown placeholder {dtyp}"),
        (
            "cmd = [\"w\"]\ntimeouts = { runn = 3 }",
            "options.timeouts.runn: unknown op",
        ),
        (
            "cmd = [\"w\"]\nthreads = 3",
            "options.threads is not a setting of backend 'process'",
        ),
    ] {
        w.write("p.toml", &suite(opts));
        let line = assert_clean_error(&w.run(&["validate", "p.toml"]), 2);
        assert!(line.contains(want), "{opts}: {line}");
    }
    // a worker that cannot start: the run fails with the command named, exit 1
    w.write("p.toml", &suite("cmd = [\"/nonexistent/worker\"]"));
    let o = w.run(&["run", "p.toml", "--out", "o"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let (_, r) = &results(&w.path().join("o"))[0];
    assert!(r["status"]["reason"]
        .as_str()
        .unwrap()
        .contains("cannot start worker `/nonexistent/worker`"));
}

#[test]
fn ctrl_c_stops_a_busy_worker_and_saves_the_run_as_interrupted() {
    if !python3() {
        return;
    }
    let w = Work::new();
    let pids = w.path().join("pids");
    std::fs::create_dir(&pids).unwrap();
    let worker = format!("{REPO}/tests/workers/fault_worker.py");
    w.write(
        "hang.toml",
        &format!(
            "name = \"hang\"\nscenario = \"inference\"\nbackend = \"process\"\n\
             [matrix]\nmodel = [\"hang-run\", \"ok\"]\ngen_len = 2\n\
             [measure]\nwarmup_iters = 1\nmin_iters = 3\nmin_duration_s = 0.0\n\
             [options]\ncmd = [\"python3\", \"{worker}\", \"{{model}}\"]\n\
             env = {{ FAULT_PID_DIR = \"{}\" }}\ntimeouts = {{ run = 600 }}\n",
            pids.display()
        ),
    );
    let child = w
        .cmd(&["run", "hang.toml", "--out", "out"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // wait until the worker exists, then give it time to take the hanging request
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::fs::read_dir(&pids).unwrap().count() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the worker never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let t = std::time::Instant::now();
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert!(
        t.elapsed().as_secs() < 10,
        "effbench stops the worker at once"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    let res = results(&w.path().join("out"));
    assert_eq!(res.len(), 1, "the second run never started");
    assert_eq!(res[0].1["status"]["state"], "interrupted");
    for e in std::fs::read_dir(&pids).unwrap() {
        let pid = e.unwrap().file_name().to_string_lossy().to_string();
        assert!(
            matches!(state(&pid), None | Some('Z')),
            "worker {pid} survived"
        );
    }
}

/// The PyTorch worker embeds with the real MiniLM (scenario `embedding`) on the CPU where
/// torch and transformers import (CI does not install them; `EFFBENCH_REQUIRE_TORCH=1` makes
/// it mandatory), beside candle's encoder on the same inputs.
#[test]
fn the_torch_worker_embeds_minilm_when_torch_is_installed() {
    let torch = Command::new("python3")
        .args(["-c", "import torch, transformers"])
        .output()
        .is_ok_and(|o| o.status.success());
    let minilm = std::env::var_os("EFFBENCH_MINILM_DIR").filter(|d| Path::new(d).is_dir());
    let (true, Some(minilm)) = (torch, minilm) else {
        assert!(
            std::env::var_os("EFFBENCH_REQUIRE_TORCH").is_none(),
            "EFFBENCH_REQUIRE_TORCH is set but torch/transformers or EFFBENCH_MINILM_DIR is missing"
        );
        eprintln!("skipped: needs torch and transformers importable and EFFBENCH_MINILM_DIR");
        return;
    };
    let w = Work::new();
    w.write(
        "emb.toml",
        &format!(
            "name = \"emb\"\nscenario = \"embedding\"\nmodel = {:?}\nseed = 42\n\
             [matrix]\nbackend = [\"candle-encoder\", \"process\"]\ndtype = \"f32\"\nbatch = 4\n\
             seq_len = 32\n\
             [measure]\nwarmup_iters = 1\nmin_iters = 3\nmin_duration_s = 0.0\n\
             [options]\ncmd = [\"python3\", \"{REPO}/backends/workers/torch_worker.py\"]\n",
            minilm.to_string_lossy()
        ),
    );
    let o = w.run(&["run", "emb.toml", "--out", "out"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let res = results(&w.path().join("out"));
    assert_eq!(res.len(), 2);
    for (_, r) in &res {
        assert_eq!(r["status"]["state"], "ok", "{r}");
        let v = metric(r, "embedding_throughput").unwrap()["value"]
            .as_f64()
            .unwrap();
        assert!(v > 0.0, "{r}");
    }
}
