//! The `candle` backend end to end on the default model: loading in every dtype, generation
//! traces, batches, the GGUF path, the runner, and every bad-input case.

mod common;

use candle_core::quantized::{gguf_file, GgmlDType};
use candle_core::{DType, Device, Tensor};
use common::{default_model, i, s, spec};
use effbench_backends::candle_infer::{synthetic_prompts, CandleBackend, GGUF_DTYPE_REASON};
use effbench_backends::llama::{write_gguf, Logits};
use effbench_backends::loader;
use effbench_harness::backend::IterationCtx;
use effbench_harness::Backend;
use std::path::{Path, PathBuf};

const CTX: IterationCtx = IterationCtx {
    index: 0,
    warmup: false,
};

fn path_str(p: &Path) -> String {
    p.display().to_string()
}

fn err_of<T>(r: anyhow::Result<T>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => format!("{e:#}"),
    }
}

/// Writes the default model as a GGUF of `qtype` next to it.
fn default_gguf(dir: &Path, qtype: GgmlDType) -> PathBuf {
    let tensors =
        candle_core::safetensors::load(dir.join("model.safetensors"), &Device::Cpu).unwrap();
    let config =
        effbench_backends::llama::LlamaConfig::from_hf_file(&dir.join("config.json")).unwrap();
    let path = dir
        .parent()
        .unwrap()
        .join(format!("default-{qtype:?}.gguf"));
    let mut f = std::fs::File::create(&path).unwrap();
    write_gguf(&mut f, &config, &tensors, qtype, &[]).unwrap();
    path
}

#[test]
fn generates_gen_len_tokens_in_every_dtype() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = default_model(tmp.path());
    for dtype in ["f32", "f16", "bf16"] {
        let sp = spec(&[
            ("model", s(&path_str(&dir))),
            ("dtype", s(dtype)),
            ("prompt_len", i(8)),
            ("gen_len", i(5)),
        ]);
        CandleBackend.validate(&sp).unwrap();
        let mut session = CandleBackend.load(&sp).unwrap();
        let info = session.model_info().clone();
        assert_eq!((info.format.as_str(), info.dtype.as_str()), ("hf", dtype));
        assert_eq!(info.details["weights"], "seeded");
        assert_eq!(info.details["layers"], 4);
        let bytes = if dtype == "f32" { 4 } else { 2 };
        assert_eq!(info.loaded_bytes, info.params_total * bytes);
        assert!(info.params_non_embedding < info.params_total);
        assert_eq!(info.sha256.as_ref().unwrap().len(), 64);
        let sample = session.iteration(CTX).unwrap();
        let trace = sample.generation.unwrap();
        assert_eq!((trace.batch, trace.prompt_tokens), (1, 8));
        assert_eq!(trace.output_tokens(), 5);
        let times: Vec<u64> = trace.emissions.iter().map(|e| e.t_ns).collect();
        assert!(
            times[0] > 0 && times.windows(2).all(|w| w[0] <= w[1]),
            "{times:?}"
        );
        assert_eq!(
            (
                sample.work.input_tokens,
                sample.work.output_tokens,
                sample.work.requests
            ),
            (8, 5, 1)
        );
    }
}

#[test]
fn batch_of_four_and_fixed_prompts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = default_model(tmp.path());
    let sp = spec(&[
        ("model", s(&path_str(&dir))),
        ("batch", i(4)),
        ("prompt_len", i(6)),
        ("gen_len", i(3)),
    ]);
    let mut session = CandleBackend.load(&sp).unwrap();
    let a = session.iteration(CTX).unwrap();
    let b = session.iteration(CTX).unwrap();
    assert_eq!(a.work.output_tokens, 12);
    assert_eq!(a.work.input_tokens, 24);
    assert_eq!(a.generation.unwrap().emissions.len(), 3);
    assert_eq!(b.generation.unwrap().batch, 4);
}

#[test]
fn synthetic_prompts_are_seeded_and_avoid_special_tokens() {
    let a = synthetic_prompts(3, 500, 16, &[0, 1, 2, 3]).unwrap();
    assert_eq!(a, synthetic_prompts(3, 500, 16, &[3, 2, 1, 0]).unwrap());
    assert_ne!(a, synthetic_prompts(4, 500, 16, &[0, 1, 2, 3]).unwrap());
    assert!(a.iter().all(|&t| (4..16).contains(&t)));
    assert!(synthetic_prompts(3, 5, 2, &[0, 1]).is_err());
}

#[test]
fn gguf_path_matches_dense_and_runs_in_the_backend() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = default_model(tmp.path());
    let f32_gguf = default_gguf(&dir, GgmlDType::F32);
    let dense = loader::load_hf(&dir, DType::F32, &Device::Cpu).unwrap();
    let quant = loader::load_gguf(&f32_gguf, &Device::Cpu).unwrap();
    let ids = Tensor::new(&[[5u32, 100, 200, 300, 7, 8, 9, 511]], &Device::Cpu).unwrap();
    let a = dense.model.forward(&ids, None, Logits::All).unwrap();
    let b = quant.model.forward(&ids, None, Logits::All).unwrap();
    let diff = (a - b).unwrap().abs().unwrap().max_all().unwrap();
    assert!(diff.to_scalar::<f32>().unwrap() < 1e-4);
    assert_eq!(dense.info.params_total, quant.info.params_total);

    let q8 = default_gguf(&dir, GgmlDType::Q8_0);
    let sp = spec(&[("model", s(&path_str(&q8))), ("gen_len", i(4))]);
    CandleBackend.validate(&sp).unwrap();
    let mut session = CandleBackend.load(&sp).unwrap();
    let info = session.model_info().clone();
    assert_eq!(
        (info.format.as_str(), info.dtype.as_str()),
        ("gguf", "q8_0")
    );
    assert!(info.file_bytes < dense.info.file_bytes / 3);
    let sample = session.iteration(CTX).unwrap();
    assert_eq!(sample.generation.unwrap().output_tokens(), 4);
}

#[test]
fn runs_under_the_harness_runner() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = default_model(tmp.path());
    let sp = spec(&[("model", s(&path_str(&dir))), ("gen_len", i(4))]);
    // Through serde so fields added later with defaults need no change here.
    let suite: effbench_harness::records::SuiteInfo =
        serde_json::from_value(serde_json::json!({"name": "test"})).unwrap();
    let env = effbench_harness::probe::environment(&[]);
    let result = effbench_harness::runner::run_spec(
        &sp,
        &CandleBackend,
        &suite,
        &env,
        &effbench_harness::progress::NoProgress,
    );
    assert_eq!(
        result.status.state,
        effbench_harness::records::RunState::Ok,
        "{:?}",
        result.status.reason
    );
    assert_eq!(result.iterations, 2);
    let names: Vec<String> = result
        .metrics
        .iter()
        .map(|m| format!("{:?}", m.name))
        .collect();
    for want in ["Ttft", "Tpot", "OutputThroughput"] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from {names:?}"
        );
    }
}

#[test]
fn bad_inputs_are_rejected_with_the_path() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = default_model(tmp.path());

    // missing path: validate and load both name it
    let missing = tmp.path().join("nope");
    let sp = spec(&[("model", s(&path_str(&missing)))]);
    let e = CandleBackend.validate(&sp).unwrap_err();
    assert!(
        e.contains(&path_str(&missing)) && e.contains("does not exist"),
        "{e}"
    );
    assert!(err_of(CandleBackend.load(&sp)).contains(&path_str(&missing)));

    // GGUF with a compute dtype
    let gguf = default_gguf(&dir, GgmlDType::Q8_0);
    for dtype in ["bf16", "f16"] {
        let sp = spec(&[("model", s(&path_str(&gguf))), ("dtype", s(dtype))]);
        let e = CandleBackend.validate(&sp).unwrap_err();
        assert!(e.contains(GGUF_DTYPE_REASON), "{e}");
    }

    // prompt + generation longer than the context (256)
    let sp = spec(&[
        ("model", s(&path_str(&dir))),
        ("prompt_len", i(200)),
        ("gen_len", i(100)),
    ]);
    let e = CandleBackend.validate(&sp).unwrap_err();
    assert!(e.contains("256") && e.contains("exceeds"), "{e}");

    // corrupt and truncated safetensors
    let bad = tmp.path().join("bad-hf");
    std::fs::create_dir(&bad).unwrap();
    std::fs::copy(dir.join("config.json"), bad.join("config.json")).unwrap();
    let weights = bad.join("model.safetensors");
    for bytes in [
        b"this is not a safetensors file".to_vec(),
        std::fs::read(dir.join("model.safetensors")).unwrap()[..5000].to_vec(),
    ] {
        std::fs::write(&weights, bytes).unwrap();
        let sp = spec(&[("model", s(&path_str(&bad)))]);
        let e = err_of(CandleBackend.load(&sp));
        assert!(e.contains(&path_str(&weights)), "{e}");
    }
    std::fs::remove_file(&weights).unwrap();
    let e = err_of(CandleBackend.load(&spec(&[("model", s(&path_str(&bad)))])));
    assert!(e.contains("no *.safetensors"), "{e}");

    // corrupt config.json
    std::fs::write(bad.join("config.json"), "{\"hidden_size\": ").unwrap();
    let sp = spec(&[("model", s(&path_str(&bad)))]);
    let e = CandleBackend.validate(&sp).unwrap_err();
    assert!(e.contains(&path_str(&bad.join("config.json"))), "{e}");

    // corrupt and truncated GGUF
    let good = std::fs::read(&gguf).unwrap();
    let corrupt = tmp.path().join("corrupt.gguf");
    for bytes in [
        b"GGUF garbage garbage garbage".to_vec(),
        good[..good.len() / 2].to_vec(),
    ] {
        std::fs::write(&corrupt, bytes).unwrap();
        let sp = spec(&[("model", s(&path_str(&corrupt)))]);
        let e = err_of(CandleBackend.load(&sp));
        assert!(e.contains(&path_str(&corrupt)), "{e}");
    }

    // a GGUF that is not llama
    let other = tmp.path().join("other.gguf");
    let arch = gguf_file::Value::String("mamba".into());
    let mut f = std::fs::File::create(&other).unwrap();
    gguf_file::write(&mut f, &[("general.architecture", &arch)], &[]).unwrap();
    let e = err_of(CandleBackend.load(&spec(&[("model", s(&path_str(&other)))])));
    assert!(e.contains("mamba") && e.contains(&path_str(&other)), "{e}");
}

#[test]
fn registry_lists_candle_with_defaults() {
    let r = effbench_backends::registry();
    assert!(r.names().contains(&"candle"), "{:?}", r.names());
    assert!(r.names().contains(&"candle-train"), "{:?}", r.names());
    let caps = r.get("candle").unwrap().describe();
    assert!(caps.devices.contains(&"cpu"));
    let axes: Vec<&str> = caps.axes.iter().map(|(a, _)| *a).collect();
    assert_eq!(
        axes,
        [
            "model",
            "device",
            "dtype",
            "batch",
            "prompt_len",
            "gen_len",
            "quant",
            "sparsity",
            "prune"
        ]
    );
}
