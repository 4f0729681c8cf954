//! Shared helpers for the CLI tests: run the real `effbench` binary in a temp directory.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_effbench"))
}

/// A temp working directory; built-in models are created inside it on first use.
pub struct Work {
    pub dir: tempfile::TempDir,
}

impl Work {
    pub fn new() -> Work {
        Work {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.args(args).current_dir(self.path());
        c
    }
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// A small inference suite on the seeded (untrained) default weights, which need no training.
pub fn tiny_suite(name: &str, matrix: &str, measure: &str) -> String {
    format!(
        "name = \"{name}\"\nscenario = \"inference\"\nbackend = \"candle\"\nmodel = \"seeded\"\n\
         [matrix]\n{matrix}\n[measure]\n{measure}\n"
    )
}

pub const QUICK: &str =
    "warmup_iters = 1\nmin_iters = 3\nmin_duration_s = 0.0\nmax_duration_s = 5.0";

/// Asserts a failure exit with a one-line cause on stderr and no panic.
pub fn assert_clean_error(o: &Output, code: i32) -> String {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "stderr: {err}");
    assert!(!err.contains("panicked"), "panic on user input: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one-line error expected, got: {err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    lines[0].to_string()
}

/// `loadgen` with a command line as vLLM's documentation writes `vllm bench serve` (random
/// dataset, a rate, goodput, percentiles, save-result and save-detailed into
/// `vllm-results/bench.json`), against `127.0.0.1:port` serving `model`.
pub fn vllm_bench_serve_args(
    port: &str,
    model: &str,
    input_len: usize,
    output_len: usize,
    prompts: usize,
    rate: usize,
) -> Vec<String> {
    let (i, o, n, r) = (
        input_len.to_string(),
        output_len.to_string(),
        prompts.to_string(),
        rate.to_string(),
    );
    [
        "loadgen",
        "--backend",
        "vllm",
        "--host",
        "127.0.0.1",
        "--port",
        port,
        "--model",
        model,
        "--endpoint",
        "/v1/completions",
        "--dataset-name",
        "random",
        "--random-input-len",
        &i,
        "--random-output-len",
        &o,
        "--num-prompts",
        &n,
        "--request-rate",
        &r,
        "--goodput",
        "ttft:60000",
        "tpot:60000",
        "--percentile-metrics",
        "ttft,tpot,itl,e2el",
        "--metric-percentiles",
        "50,99",
        "--ignore-eos",
        "--save-result",
        "--save-detailed",
        "--result-dir",
        "vllm-results",
        "--result-filename",
        "bench.json",
    ]
    .into_iter()
    .map(String::from)
    .collect()
}
