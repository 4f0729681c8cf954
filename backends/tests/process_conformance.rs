//! Protocol v1 conformance of the shipped workers, driven directly through
//! `effbench_harness::worker`: the pure-Python reference worker always; the PyTorch worker
//! when `torch` and `transformers` import (CI does not install them: PyPI's Linux torch
//! pulls several GB of CUDA libraries; set EFFBENCH_REQUIRE_TORCH=1 to make the test fail
//! instead of skip). Both must give the same greedy tokens as the candle backend in f32 on
//! the same prompts, and their training losses must fall.

mod common;

use candle_core::{DType, Device, Tensor};
use effbench_backends::candle_infer::synthetic_prompts;
use effbench_backends::llama::{argmax_rows, Logits};
use effbench_backends::process::infer::check_run;
use effbench_backends::process::{local_vocab, CorpusBatches};
use effbench_harness::protocol::{decode, Fault, LoadReply, Op, RunReply, TrainReply};
use effbench_harness::worker::{Worker, WorkerCommand};
use serde_json::{json, Map, Value};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const T: Duration = Duration::from_secs(300);

fn worker_path(name: &str) -> String {
    format!("{}/workers/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn python_imports(modules: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn require_python() -> bool {
    if python_imports("json") {
        return true;
    }
    assert!(
        std::env::var_os("EFFBENCH_REQUIRE_EXTERNAL").is_none(),
        "python3 is required for the worker tests"
    );
    eprintln!("skipped: python3 not found");
    false
}

fn spawn(script: &str) -> Worker {
    Worker::spawn(&WorkerCommand {
        argv: vec!["python3".into(), worker_path(script)],
        max_line_bytes: 1 << 26,
        ..Default::default()
    })
    .unwrap()
}

/// Greedy tokens of the candle backend in f32 for `prompts`.
fn candle_greedy(dir: &Path, prompts: &[Vec<u32>], gen_len: usize) -> Vec<Vec<u32>> {
    let loaded = effbench_backends::loader::load_hf(dir, DType::F32, &Device::Cpu).unwrap();
    let (b, p) = (prompts.len(), prompts[0].len());
    let mut cache = loaded.model.new_cache(p + gen_len);
    let flat: Vec<u32> = prompts.concat();
    let mut input = Tensor::from_vec(flat, (b, p), &Device::Cpu).unwrap();
    let mut out = vec![Vec::new(); b];
    for _ in 0..gen_len {
        let logits = loaded
            .model
            .forward(&input, Some(&mut cache), Logits::Last)
            .unwrap();
        let next = argmax_rows(&logits).unwrap();
        for (s, &t) in out.iter_mut().zip(&next) {
            s.push(t);
        }
        input = Tensor::from_vec(next, (b, 1), &Device::Cpu).unwrap();
    }
    out
}

fn describe(w: &mut Worker) -> Value {
    let r = w
        .call(Op::Describe, &obj(json!({"protocol": [1]})), T)
        .unwrap();
    let d = Value::Object(r.body);
    assert_eq!(d["protocol"], 1);
    for s in ["inference", "training"] {
        assert!(
            d["scenarios"].as_array().unwrap().contains(&json!(s)),
            "{d}"
        );
    }
    assert!(
        d["devices"].as_array().unwrap().contains(&json!("cpu")),
        "{d}"
    );
    assert!(d["clock"].as_str().is_some(), "{d}");
    d
}

fn load_body(dir: &Path, scenario: &str, dtype: &str, lr: f64) -> Map<String, Value> {
    obj(json!({
        "scenario": scenario, "model": {"reference": "default", "path": dir, "format": "hf"},
        "device": "cpu", "dtype": dtype, "seed": 7, "params": {}, "options": {},
        "train": {"optimizer": "adamw", "lr": lr, "weight_decay": 0.0, "betas": [0.9, 0.999],
                  "eps": 1e-8, "batch": 2, "seq_len": 16},
    }))
}

/// describe → load → run (tokens equal candle's) → errors keep the worker alive → shutdown.
fn inference_conformance(script: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = common::default_model(tmp.path());
    let mut w = spawn(script);
    let pid = w.pid();
    describe(&mut w);
    let r = w
        .call(Op::Load, &load_body(&dir, "inference", "f32", 0.0), T)
        .unwrap();
    let load: LoadReply = decode(r.body, Op::Load).unwrap();
    let (vocab, special) = local_vocab(&dir).unwrap();
    assert_eq!(load.vocab_size, vocab);
    assert_eq!(
        load.model.params_total, 803_968,
        "same parameter count as candle"
    );

    let (batch, prompt_len, gen_len) = (2, 6, 5);
    let ids = synthetic_prompts(7, batch * prompt_len, vocab, &special).unwrap();
    let prompts: Vec<Vec<u32>> = ids.chunks(prompt_len).map(<[u32]>::to_vec).collect();
    let body = obj(
        json!({"inputs": {"prompt_ids": prompts, "gen_len": gen_len},
                          "phase": "measure", "reset_peak_memory": true}),
    );
    let r = w.call(Op::Run, &body, T).unwrap();
    let rtt = r.round_trip.as_nanos() as u64;
    let run: RunReply = decode(r.body, Op::Run).unwrap();
    check_run(&run, batch, gen_len).unwrap();
    assert!(run.emissions[0].t_ns > 0);
    let op_ns = run.op_ns.expect("op_ns");
    assert!(
        op_ns >= run.emissions.last().unwrap().t_ns && op_ns <= rtt,
        "{op_ns} {rtt}"
    );
    assert_eq!(
        run.outputs.token_ids,
        candle_greedy(&dir, &prompts, gen_len),
        "{script} and candle disagree on greedy tokens"
    );

    // structured errors; the worker keeps serving
    let e = w.call(Op::Train, &Map::new(), T).unwrap_err();
    assert_eq!(
        (e.fault, e.kind.as_deref()),
        (Fault::Reported, Some("bad_request")),
        "{e}"
    );
    let r = w.call(Op::Describe, &obj(json!({"protocol": [1]})), T);
    assert!(r.is_ok(), "worker must survive a reported error");
    let how = w.shutdown(Duration::from_secs(20)).unwrap();
    assert_eq!(how, "exited normally");
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "worker not reaped"
    );

    // a version the worker does not speak
    let mut w = spawn(script);
    let e = w
        .call(Op::Describe, &obj(json!({"protocol": [99]})), T)
        .unwrap_err();
    assert_eq!(e.kind.as_deref(), Some("unsupported_version"), "{e}");
}

/// Training steps over corpus batches: finite losses that fall, positive step times.
fn training_conformance(script: &str, dtype: &str, lr: f64, steps: usize) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = common::default_model(tmp.path());
    let mut w = spawn(script);
    describe(&mut w);
    w.call(Op::Load, &load_body(&dir, "training", dtype, lr), T)
        .unwrap();
    let mut batches = CorpusBatches::new(2, 16, steps as u64);
    let mut losses = Vec::new();
    for i in 0..steps {
        let body = obj(json!({"inputs": {"batches": [batches.next_batch()]},
                              "phase": "measure", "reset_peak_memory": i == 0}));
        let r = w.call(Op::Train, &body, T).unwrap();
        let t: TrainReply = decode(r.body, Op::Train).unwrap();
        assert_eq!(t.steps.len(), 1);
        assert!(t.steps[0].step_ns > 0 && t.steps[0].loss.is_finite());
        losses.push(t.steps[0].loss);
    }
    let first = losses[0];
    let last = losses[steps - 3..].iter().sum::<f64>() / 3.0;
    assert!(
        last < first - 0.1,
        "{script}: loss should fall over {steps} steps: {losses:?}"
    );
    w.shutdown(Duration::from_secs(20)).unwrap();
}

#[test]
fn reference_worker_conforms() {
    if !require_python() {
        return;
    }
    inference_conformance("reference_worker.py");
    training_conformance("reference_worker.py", "f32", 0.1, 12);
}

#[test]
fn torch_worker_conforms_when_torch_is_installed() {
    if !require_python() {
        return;
    }
    if !python_imports("torch, transformers") {
        assert!(
            std::env::var_os("EFFBENCH_REQUIRE_TORCH").is_none(),
            "EFFBENCH_REQUIRE_TORCH is set but python3 cannot import torch and transformers"
        );
        eprintln!(
            "skipped: python3 cannot import torch and transformers (CI does not install them; \
             scripts/gpu-check-backends.sh runs this worker on a GPU machine)"
        );
        return;
    }
    inference_conformance("torch_worker.py");
    training_conformance("torch_worker.py", "f32", 0.01, 12);
    training_conformance("torch_worker.py", "bf16", 0.01, 12);
}
