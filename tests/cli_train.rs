//! Training through the real CLI: schema-valid results with the training metrics, `show`
//! columns, Ctrl-C saving a checkpoint that `--resume` continues, bad training settings, and
//! the quickstart's trained default model (trained once, then reused).

mod common;
use common::*;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A small training suite: width 64, depth 2, 8 x 32 tokens per step.
fn train_suite(name: &str, matrix: &str, measure: &str, options: &str) -> String {
    format!(
        "name = \"{name}\"\nscenario = \"training\"\nbackend = \"candle-train\"\nseed = 3\n\
         [matrix]\nwidth = 64\ndepth = 2\nbatch = 8\nseq_len = 32\nwarmup_steps = 2\n\
         eval_every = 10\n{matrix}\n[measure]\nmax_duration_s = 600.0\n{measure}\n\
         [options]\neval_tokens = 512\n{options}\n"
    )
}

fn json(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn only_result(dir: &std::path::Path) -> serde_json::Value {
    let m = json(&dir.join("manifest.json"));
    let file = m["runs"][0]["file"].as_str().unwrap().to_string();
    json(&dir.join(file))
}

#[test]
fn training_run_reports_metrics_and_show_prints_them() {
    let w = Work::new();
    w.write(
        "t.toml",
        &train_suite("t", "steps = 20\ntarget_loss = 6.0", "", ""),
    );
    let o = w.run(&["run", "t.toml", "--out", "out"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("train") && err.contains("tok/s") && err.contains("MFU"),
        "{err}"
    );
    let r = only_result(&w.path().join("out"));
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/harness/schema/run-result.v1.schema.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(&r).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(r["status"]["state"], "ok");
    assert!(r["env"]["peak_flops"]["flops_per_s"].as_f64().unwrap() > 0.0);
    let names: Vec<&str> = r["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    for want in [
        "train_throughput",
        "step_time",
        "heldout_loss",
        "heldout_perplexity",
        "perplexity_floor",
        "time_to_target_loss",
        "train_flops",
        "mfu",
        "peak_rss",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    // the checkpoint is an HF model directory
    let ckpt = w
        .path()
        .join("results/models/train")
        .join(r["id"].as_str().unwrap());
    for f in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "trainer/state.json",
    ] {
        assert!(ckpt.join(f).is_file(), "{f}");
    }
    // the default summary fits 120 columns; the training columns are asked for by name
    let o = w.run(&[
        "show",
        "out",
        "--columns",
        "run,train_throughput,time_to_target_loss,heldout_perplexity,perplexity_floor,train_flops,mfu",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    for header in [
        "train_throughput (tok/s)",
        "time_to_target_loss (s)",
        "heldout_perplexity (ppl)",
        "perplexity_floor (ppl)",
        "train_flops (FLOP)",
        "mfu (%)",
    ] {
        assert!(out.contains(header), "missing column {header}:\n{out}");
    }
    assert!(!out.contains("not reached"), "{out}");
    assert!(out.contains("matmul peak (MFU denominator):"), "{out}");
}

/// Waits until a periodic training checkpoint is on disk under `train`, then sends SIGINT to
/// `child` only (as a terminal signals its foreground process group, not our children).
fn sigint_after_first_checkpoint(child: &std::process::Child, train: &std::path::Path) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while !std::fs::read_dir(train)
        .map(|mut d| d.any(|e| e.unwrap().path().join("trainer/state.json").is_file()))
        .unwrap_or(false)
    {
        assert!(Instant::now() < deadline, "no checkpoint was written");
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Starts a long training run, sends SIGINT once the first periodic checkpoint is on disk,
/// and returns the interrupted result and the training directory.
fn interrupt_after_first_checkpoint(w: &Work, suite: &str) -> (serde_json::Value, PathBuf) {
    w.write("t.toml", suite);
    let child = w
        .cmd(&["run", "t.toml", "--out", "out"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let train = w.path().join("results/models/train");
    sigint_after_first_checkpoint(&child, &train);
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = only_result(&w.path().join("out"));
    assert_eq!(r["status"]["state"], "interrupted");
    // Whether Ctrl-C lands right after a periodic checkpoint or between two of them, the log
    // says where the checkpoint is and how to continue.
    let log = r["log"].to_string();
    assert!(
        log.contains("checkpoint saved at step") && log.contains("--resume"),
        "{log}"
    );
    (r, train)
}

#[test]
fn ctrl_c_right_after_a_periodic_checkpoint_still_names_it() {
    let w = Work::new();
    let suite = train_suite("every", "steps = 100000", "", "checkpoint_every = 1");
    let (r, train) = interrupt_after_first_checkpoint(&w, &suite);
    let state = json(
        &train
            .join(r["id"].as_str().unwrap())
            .join("trainer/state.json"),
    );
    let step = state["step"].as_u64().unwrap();
    assert!(
        r["log"]
            .to_string()
            .contains(&format!("checkpoint saved at step {step} ")),
        "{}",
        r["log"]
    );
}

#[test]
fn ctrl_c_saves_a_checkpoint_and_resume_continues_from_it() {
    let w = Work::new();
    let long = train_suite("long", "steps = 100000", "", "checkpoint_every = 3");
    let (r, train) = interrupt_after_first_checkpoint(&w, &long);
    let state = json(
        &train
            .join(r["id"].as_str().unwrap())
            .join("trainer/state.json"),
    );
    let saved = state["step"].as_u64().unwrap();
    assert!(saved >= 3, "{state}");

    // Same suite (same run id), capped to 3 more measured steps: it resumes where it stopped.
    w.write(
        "t.toml",
        &long.replace(
            "max_duration_s = 600.0",
            "max_duration_s = 600.0\nmin_iters = 1\nmax_iters = 3",
        ),
    );
    let o = w.run(&["run", "t.toml", "--out", "out2", "--resume"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r2 = only_result(&w.path().join("out2"));
    assert_eq!(r2["id"], r["id"]);
    assert_eq!(r2["config"]["resume"], true);
    let log = r2["log"].to_string();
    assert!(
        log.contains(&format!("resumed from the checkpoint at step {saved}")),
        "{log}"
    );
    let state = json(
        &train
            .join(r["id"].as_str().unwrap())
            .join("trainer/state.json"),
    );
    assert_eq!(
        state["step"].as_u64().unwrap(),
        saved + 4,
        "1 warm-up + 3 measured steps"
    );
}

#[test]
fn bad_training_settings_are_clean_errors() {
    let w = Work::new();
    w.write("a.toml", &train_suite("a", "steps = 5\nlr = 0.0", "", ""));
    let line = assert_clean_error(&w.run(&["validate", "a.toml"]), 2);
    assert!(line.contains("axis 'lr'") && line.contains("> 0"), "{line}");
    w.write(
        "b.toml",
        &train_suite("b", "steps = 5\nseq_len = 512", "", "").replace("seq_len = 32\n", ""),
    );
    let line = assert_clean_error(&w.run(&["run", "b.toml"]), 2);
    assert!(
        line.contains("seq_len = 512 exceeds the model context of 256"),
        "{line}"
    );
    w.write(
        "c.toml",
        &train_suite("c", "steps = 5\ndtype = \"f16\"", "", ""),
    );
    let line = assert_clean_error(&w.run(&["validate", "c.toml"]), 2);
    assert!(line.contains("f16"), "{line}");
    w.write(
        "d.toml",
        &train_suite("d", "steps = 5", "", "learning_rate = 1"),
    );
    let line = assert_clean_error(&w.run(&["validate", "d.toml"]), 2);
    assert!(line.contains("unknown option 'learning_rate'"), "{line}");
    // a target below the entropy floor is a warning, not an error
    w.write(
        "e.toml",
        &train_suite("e", "steps = 5\ntarget_loss = 0.5", "", ""),
    );
    let o = w.run(&["validate", "e.toml"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("unreachable"), "{}", stderr(&o));
    assert!(!w.path().join("results").exists(), "nothing ran");
}

/// The quickstart path: with no trained default, `run` on a `model = "default"` suite first
/// trains it, then benchmarks it; the next invocation reuses it. The real quickstart trains
/// with the built-in suites/train-tiny.toml (minutes here); this test gives `run` a short
/// suite of the same architecture through EFFBENCH_DEFAULT_TRAIN_SUITE to stay fast.
#[test]
fn default_model_is_trained_once_then_reused() {
    let w = Work::new();
    let suite =
        tiny_suite("q", "prompt_len = 8\ngen_len = 4", QUICK).replace("\"seeded\"", "\"default\"");
    w.write("q.toml", &suite);
    w.write(
        "short-train.toml",
        "name = \"short-train\"\nscenario = \"training\"\nbackend = \"candle-train\"\n\
         seed = 42\n[matrix]\nbatch = 8\nseq_len = 64\nsteps = 40\nlr = 4e-3\n\
         warmup_steps = 5\neval_every = 20\n[options]\neval_tokens = 2048\n",
    );
    let train = w.path().join("short-train.toml");
    let run = |out: &str| {
        let mut c = w.cmd(&["run", "q.toml", "--out", out]);
        c.env("EFFBENCH_DEFAULT_TRAIN_SUITE", &train);
        c.output().unwrap()
    };
    let o = run("out");
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("training it first with") && err.contains("short-train.toml"),
        "{err}"
    );
    let config = json(&w.path().join("results/models/default/config.json"));
    assert_eq!(config["effbench"]["weights"], "trained");
    assert_eq!(config["effbench"]["default_from"]["suite"], "short-train");
    let trained_ppl = config["effbench"]["default_from"]["heldout_perplexity"]
        .as_f64()
        .unwrap();
    assert!(
        trained_ppl < 256.0,
        "the trained default is well below uniform (512): {trained_ppl}"
    );
    // the training run's own results are stored like any other suite's
    assert!(w.path().join("results/short-train").is_dir());
    let r = only_result(&w.path().join("out"));
    assert_eq!(r["status"]["state"], "ok");
    assert_eq!(r["model"]["name"], "default");
    assert_eq!(r["model"]["details"]["weights"], "trained");

    let o = run("out2");
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("reusing the trained model"), "{err}");
    assert!(!err.contains("training it first"), "{err}");
    // the built-in suite the real quickstart trains with is a valid training suite
    let builtin = concat!(env!("CARGO_MANIFEST_DIR"), "/suites/train-tiny.toml");
    let o = w.run(&["validate", builtin]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // an unreadable override is a clean bad-input error naming the variable
    std::fs::remove_dir_all(w.path().join("results/models/default")).unwrap();
    let mut c = w.cmd(&["run", "q.toml", "--out", "out3"]);
    c.env("EFFBENCH_DEFAULT_TRAIN_SUITE", w.path().join("nope.toml"));
    let line = assert_clean_error(&c.output().unwrap(), 2);
    assert!(line.contains("EFFBENCH_DEFAULT_TRAIN_SUITE"), "{line}");
}

/// Ctrl-C while `run` trains the default model (in a child process, in its own process
/// group): the child gets it once, saves a checkpoint and stops; `run` exits 130 without
/// benchmarking and says that `--resume` continues the training.
#[test]
fn ctrl_c_while_training_the_default_saves_it_and_exits_130() {
    let w = Work::new();
    let suite =
        tiny_suite("q", "prompt_len = 8\ngen_len = 4", QUICK).replace("\"seeded\"", "\"default\"");
    w.write("q.toml", &suite);
    w.write(
        "long-train.toml",
        &train_suite("long-train", "steps = 100000", "", "checkpoint_every = 3"),
    );
    let child = w
        .cmd(&["run", "q.toml", "--out", "out"])
        .env(
            "EFFBENCH_DEFAULT_TRAIN_SUITE",
            w.path().join("long-train.toml"),
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Only `run` is signalled; it passes the Ctrl-C on to the training process.
    sigint_after_first_checkpoint(&child, &w.path().join("results/models/train"));
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(
        err.contains("default model: training interrupted") && err.contains("--resume"),
        "{err}"
    );
    assert!(!w.path().join("out").exists(), "nothing was benchmarked");
    assert!(!w.path().join("results/models/default").exists());
}
