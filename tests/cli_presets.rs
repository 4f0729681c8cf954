//! Architecture presets through the real CLI: a shrunk preset runs end to end on the candle
//! backend (f32, bf16 and Q8_0) and trains on candle-train, results say `weights: random
//! (preset)`; unknown presets and options are one-line errors listing the known ones; a run
//! that cannot fit in memory is refused with the numbers instead of aborting.

mod common;
use common::*;

fn read_runs(w: &Work, out: &str) -> Vec<serde_json::Value> {
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(w.path().join(out).join("manifest.json")).unwrap(),
    )
    .unwrap();
    manifest["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let f = w.path().join(out).join(r["file"].as_str().unwrap());
            serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap()
        })
        .collect()
}

/// smollm2-135m with 2 of its 30 blocks: 2 x 3,540,096 + 576 + 49,152 x 576 parameters.
const SMOL2_PARAMS: u64 = 2 * 3_540_096 + 576 + 49_152 * 576;

#[test]
fn a_shrunk_preset_runs_in_f32_bf16_and_q8_0_with_random_weights_recorded() {
    let w = Work::new();
    w.write(
        "s.toml",
        "name = \"p\"\nscenario = \"inference\"\nbackend = \"candle\"\n\
         model = \"preset:smollm2-135m?layers=2\"\n\
         [matrix]\ndtype = [\"f32\", \"bf16\"]\nquant = [\"none\", \"q8_0\"]\nprompt_len = 8\ngen_len = 4\n\
         exclude = [{ dtype = \"bf16\", quant = \"q8_0\" }]\n\
         [measure]\nwarmup_iters = 1\nmin_iters = 2\nmin_duration_s = 0.0\nmax_duration_s = 5.0\n",
    );
    let o = w.run(&["run", "s.toml", "--out", "out"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let runs = read_runs(&w, "out");
    assert_eq!(runs.len(), 3);
    for r in &runs {
        assert_eq!(r["status"]["state"], "ok", "{r}");
        let m = &r["model"];
        assert_eq!(m["name"], "preset:smollm2-135m?layers=2");
        assert_eq!(m["format"], "preset");
        assert_eq!(m["details"]["weights"], "random (preset)");
        assert_eq!(m["details"]["layers"], 2);
        assert!(m["details"]["preset_source"]
            .as_str()
            .unwrap()
            .contains("SmolLM2-135M"));
        assert_eq!(m["params_total"], SMOL2_PARAMS);
        assert!(m["details"]["memory_estimate"]["weights"].as_u64().unwrap() > 0);
        // The reference, options included, is in the run's spec.
        assert_eq!(
            r["config"]["params"]["model"],
            "preset:smollm2-135m?layers=2"
        );
        let bytes = m["loaded_bytes"].as_u64().unwrap();
        match (
            m["dtype"].as_str().unwrap(),
            r["config"]["params"]["quant"].as_str(),
        ) {
            ("f32", _) => assert_eq!(bytes, 4 * SMOL2_PARAMS),
            ("bf16", _) => assert_eq!(bytes, 2 * SMOL2_PARAMS),
            ("q8_0", Some("q8_0")) => {
                assert!(bytes < 2 * SMOL2_PARAMS && bytes > SMOL2_PARAMS);
                // Like a real GGUF: which kernel ran each matrix, and any that fell back.
                let k = &m["details"]["matmul_kernels"];
                let counts: u64 = k["kernels"]
                    .as_object()
                    .unwrap()
                    .values()
                    .map(|v| v.as_u64().unwrap())
                    .sum();
                assert_eq!(counts, 2 * 7 + 1, "{k}");
                assert!(k["fallback"].as_array().unwrap().is_empty(), "{k}");
                // Every matrix repacked: decode steps take the fused path.
                assert_eq!(k["decode"], "fused", "{k}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn a_preset_trains_on_candle_train() {
    let w = Work::new();
    w.write(
        "t.toml",
        "name = \"t\"\nscenario = \"training\"\nbackend = \"candle-train\"\n\
         [matrix]\nmodel = \"preset:smollm2-135m?layers=1\"\nbatch = 2\nseq_len = 16\nsteps = 3\n\
         warmup_steps = 1\neval_every = 3\n\
         [options]\neval_tokens = 32\n\
         [measure]\nwarmup_iters = 1\nmin_iters = 1\nmin_duration_s = 0.0\nmax_iters = 100\n",
    );
    let o = w.run(&["run", "t.toml", "--out", "out"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let runs = read_runs(&w, "out");
    let r = &runs[0];
    assert_eq!(r["status"]["state"], "ok", "{r}");
    assert_eq!(r["model"]["name"], "preset:smollm2-135m?layers=1");
    assert_eq!(r["model"]["format"], "preset");
    assert_eq!(
        r["model"]["params_total"],
        3_540_096 + 576 + 49_152 * 576u64
    );
    let log = r.to_string();
    assert!(log.contains("no checkpoint written"), "{log}");
    assert!(!w.path().join("results/models/train").exists());
}

#[test]
fn unknown_presets_and_options_are_one_line_errors_listing_the_known_ones() {
    let w = Work::new();
    for (model, want) in [
        ("preset:llama-9b", "unknown preset 'llama-9b'"),
        (
            "preset:llama-3.2-1b?depth=2",
            "unknown preset option 'depth'",
        ),
        ("preset:llama-3.2-1b?layers=99", "between 1 and 16"),
    ] {
        w.write(
            "s.toml",
            &format!(
                "name = \"e\"\nscenario = \"inference\"\nbackend = \"candle\"\nmodel = \"{model}\"\n\
                 [matrix]\nprompt_len = 8\ngen_len = 2\n[measure]\n{QUICK}\n"
            ),
        );
        let o = w.run(&["run", "s.toml", "--out", "out", "--dry-run"]);
        let line = assert_clean_error(&o, 2);
        assert!(line.contains(want), "{line}");
        assert!(
            line.contains("llama-3.2-1b") || line.contains("layers"),
            "{line}"
        );
    }
}

#[test]
fn a_run_that_cannot_fit_is_refused_with_the_numbers() {
    let w = Work::new();
    // 1024 sequences of 8000 tokens (under the validate-time cap of 2^24 tokens per
    // iteration): a KV cache of 2 x 30 x 1024 x 3 x 64 x 8000 x 4 bytes (about 350 GiB) on a
    // machine with far less.
    w.write(
        "s.toml",
        "name = \"big\"\nscenario = \"inference\"\nbackend = \"candle\"\n\
         model = \"preset:smollm2-135m\"\n\
         [matrix]\nbatch = 1024\nprompt_len = 4000\ngen_len = 4000\n\
         [measure]\nwarmup_iters = 0\nmin_iters = 1\nmin_duration_s = 0.0\n",
    );
    let o = w.run(&["run", "s.toml", "--out", "out"]);
    let err = stderr(&o);
    assert!(
        !err.contains("panicked") && o.status.code().is_some(),
        "{err}"
    );
    let runs = read_runs(&w, "out");
    let r = &runs[0];
    assert_eq!(r["status"]["state"], "failed", "{r}");
    let reason = r["status"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("needs about") && reason.contains("KV cache") && reason.contains("free"),
        "{reason}"
    );
}

/// qwen2.5-0.5b with 2 of its 24 blocks: per block q (896 x 896 + 896), k and v (128 x 896 +
/// 128 each), o (896 x 896), gate/up/down (3 x 896 x 4864) and two norms; the final norm; the
/// tied 151,936 x 896 embedding (24 blocks give the published 494,032,768).
const QWEN2_PARAMS: u64 = 2 * 14_912_384 + 896 + 151_936 * 896;

fn python_imports(modules: &str) -> bool {
    std::process::Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn the_torch_worker_builds_presets_with_eager_and_sdpa_when_torch_is_installed() {
    if !python_imports("torch, transformers") {
        assert!(
            std::env::var_os("EFFBENCH_REQUIRE_TORCH").is_none(),
            "EFFBENCH_REQUIRE_TORCH is set but python3 cannot import torch and transformers"
        );
        eprintln!(
            "skipped: python3 cannot import torch and transformers (CI does not install them; \
             scripts/gpu-check-real.sh runs presets through this worker on a GPU machine)"
        );
        return;
    }
    let w = Work::new();
    let worker = format!(
        "{}/backends/workers/torch_worker.py",
        env!("CARGO_MANIFEST_DIR")
    );
    w.write(
        "t.toml",
        &format!(
            "name = \"tp\"\nscenario = \"inference\"\nbackend = \"process\"\n\
             model = \"preset:qwen2.5-0.5b?layers=2\"\n\
             [matrix]\nattn = [\"eager\", \"sdpa\"]\nbatch = 2\nprompt_len = 8\ngen_len = 4\n\
             [measure]\n{QUICK}\n[options]\ncmd = [\"python3\", \"{worker}\"]\n"
        ),
    );
    let o = w.run(&["run", "t.toml", "--out", "out"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let runs = read_runs(&w, "out");
    assert_eq!(runs.len(), 2);
    for r in &runs {
        assert_eq!(r["status"]["state"], "ok", "{r}");
        let m = &r["model"];
        assert_eq!(m["name"], "preset:qwen2.5-0.5b?layers=2");
        assert_eq!(m["format"], "preset");
        assert_eq!(m["arch"], "qwen2");
        assert_eq!(m["details"]["weights"], "random (preset)");
        // transformers built the architecture effbench counts (q/k/v biases included).
        assert_eq!(m["params_total"], QWEN2_PARAMS);
        assert_eq!(
            m["details"]["attn_implementation"], r["config"]["params"]["attn"],
            "{m}"
        );
        assert!(m["details"]["memory_estimate"]["weights"].as_u64().unwrap() > 0);
        // The worker measures its device's roofs at load and reports the model's work per
        // token, so its runs get MBU and prefill MFU like candle's.
        let env = &r["env"];
        assert!(
            env["peak_bandwidth"]["bytes_per_s"].as_f64().unwrap() > 0.0,
            "{env}"
        );
        assert!(env["peak_flops"]["method"]
            .as_str()
            .unwrap()
            .contains("torch.mm"));
        assert!(
            m["roofline"]["weight_bytes_per_step"].as_u64().unwrap() > 0,
            "{m}"
        );
        let names: Vec<&str> = r["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|x| x["name"].as_str())
            .collect();
        for want in ["mbu", "prefill_mfu"] {
            assert!(names.contains(&want), "{want} missing from {names:?}");
        }
    }
}

/// The shipped preset suites are valid: the quickstart with its preset run; cpu-real
/// (with the real SmolLM2 GGUF linked where it looks, else its preset runs); the CUDA suites
/// with the device set to the CPU (the CPU build has no cuda:0), which also checks that
/// candle-train accepts a suite shared with the PyTorch worker's options.
#[test]
fn the_shipped_preset_suites_validate() {
    let repo = env!("CARGO_MANIFEST_DIR");
    let w = Work::new();
    let dry = |suite: &str, filters: &[&str]| {
        let mut args = vec!["run", suite, "--dry-run"];
        for f in filters {
            args.extend(["--filter", f]);
        }
        let o = w.run(&args);
        assert_eq!(o.status.code(), Some(0), "{suite}: {}", stderr(&o));
        stdout(&o)
    };
    let quick = format!("{repo}/suites/quickstart.toml");
    let out = dry(&quick, &[]);
    assert!(out.contains("13 run(s)"), "{out}");
    assert_eq!(out.matches("preset:smollm2-135m").count(), 1, "{out}");

    let cpu = std::fs::read_to_string(format!("{repo}/suites/cpu-real.toml")).unwrap();
    w.write("cpu-real.toml", &cpu);
    match std::env::var_os("EFFBENCH_SMOLLM2_GGUF").filter(|p| std::path::Path::new(p).is_file()) {
        Some(gguf) => {
            std::fs::create_dir_all(w.path().join("models")).unwrap();
            std::os::unix::fs::symlink(
                gguf,
                w.path().join("models/SmolLM2-135M-Instruct.Q4_1.gguf"),
            )
            .unwrap();
            let o = w.run(&["validate", "cpu-real.toml"]);
            assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
            assert!(stdout(&o).contains("6 run"), "{}", stdout(&o));
        }
        None => {
            eprintln!("cpu-real: EFFBENCH_SMOLLM2_GGUF not set; checking its preset runs only");
            let out = dry(
                "cpu-real.toml",
                &["model=preset:smollm2-135m", "model=preset:qwen2.5-0.5b"],
            );
            assert!(out.contains("5 run(s)"), "{out}");
        }
    }
    for (suite, runs) in [("cuda-real", 36), ("cuda-train-real", 4)] {
        let text = std::fs::read_to_string(format!("{repo}/suites/{suite}.toml")).unwrap();
        assert!(text.contains("device = \"cuda:0\""));
        w.write(
            "c.toml",
            &text.replace("device = \"cuda:0\"", "device = \"cpu\""),
        );
        let out = dry("c.toml", &[]);
        assert!(out.contains(&format!("{runs} run(s)")), "{suite}: {out}");
    }
}
