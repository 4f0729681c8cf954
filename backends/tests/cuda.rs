//! GPU checks of the candle backend, built only with `--features cuda` (CI never builds
//! them): the default model on `cuda:0` in every dtype agrees with the CPU, cached decode
//! equals recomputation on the GPU, GGUF weights run on the GPU, and the backend session
//! generates on `cuda:0`.
//!
//! ```sh
//! cargo test -p effbench-backends --features cuda --test cuda -- --nocapture
//! ```
#![cfg(feature = "cuda")]

mod common;

use candle_core::quantized::GgmlDType;
use candle_core::{DType, Device, Tensor};
use common::{default_model, i, s, spec};
use effbench_backends::candle_infer::CandleBackend;
use effbench_backends::llama::{write_gguf, LlamaConfig, Logits};
use effbench_backends::loader;
use effbench_harness::backend::IterationCtx;
use effbench_harness::Backend;
use std::path::Path;

fn gpu() -> Device {
    Device::new_cuda(0).expect("cuda:0")
}

fn ids(dev: &Device) -> Tensor {
    let v: Vec<u32> = (0..2 * 12).map(|i| (i * 37 % 500 + 4) as u32).collect();
    Tensor::from_vec(v, (2, 12), dev).unwrap()
}

/// Max |a - b| relative to max |a|.
fn rel_diff(a: &Tensor, b: &Tensor) -> f32 {
    let a = a.to_device(&Device::Cpu).unwrap();
    let b = b.to_device(&Device::Cpu).unwrap();
    let d = (&a - &b).unwrap().abs().unwrap().max_all().unwrap();
    let s = a.abs().unwrap().max_all().unwrap();
    d.to_scalar::<f32>().unwrap() / s.to_scalar::<f32>().unwrap().max(1e-12)
}

fn gguf(dir: &Path, qtype: GgmlDType) -> std::path::PathBuf {
    let tensors =
        candle_core::safetensors::load(dir.join("model.safetensors"), &Device::Cpu).unwrap();
    let config = LlamaConfig::from_hf_file(&dir.join("config.json")).unwrap();
    let path = dir.parent().unwrap().join(format!("m-{qtype:?}.gguf"));
    write_gguf(
        &mut std::fs::File::create(&path).unwrap(),
        &config,
        &tensors,
        qtype,
        &[],
    )
    .unwrap();
    path
}

#[test]
fn hf_weights_on_gpu_match_cpu_in_every_dtype() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = default_model(tmp.path());
    let cpu = loader::load_hf(&dir, DType::F32, &Device::Cpu)
        .unwrap()
        .model;
    let want = cpu.forward(&ids(&Device::Cpu), None, Logits::All).unwrap();
    for (dtype, tol) in [(DType::F32, 1e-3), (DType::F16, 0.05), (DType::BF16, 0.1)] {
        let m = loader::load_hf(&dir, dtype, &gpu()).unwrap().model;
        let got = m.forward(&ids(&gpu()), None, Logits::All).unwrap();
        let d = rel_diff(&want, &got);
        eprintln!("{dtype:?} on cuda vs f32 cpu: relative diff {d}");
        assert!(d < tol, "{dtype:?}: {d}");
        // cached decode on the GPU equals recomputation on the GPU
        let mut cache = m.new_cache(16);
        let x = ids(&gpu());
        m.forward(&x.narrow(1, 0, 11).unwrap(), Some(&mut cache), Logits::Last)
            .unwrap();
        let step = m
            .forward(&x.narrow(1, 11, 1).unwrap(), Some(&mut cache), Logits::Last)
            .unwrap();
        let full = m.forward(&x, None, Logits::Last).unwrap();
        let d = rel_diff(&full, &step);
        assert!(d < tol, "{dtype:?} cached vs full: {d}");
    }
}

#[test]
fn gguf_weights_on_gpu_match_cpu() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = default_model(tmp.path());
    for qtype in [GgmlDType::F32, GgmlDType::Q8_0, GgmlDType::Q4_1] {
        let path = gguf(&dir, qtype);
        let cpu = loader::load_gguf(&path, &Device::Cpu).unwrap().model;
        let gpu_model = loader::load_gguf(&path, &gpu()).unwrap().model;
        let a = cpu.forward(&ids(&Device::Cpu), None, Logits::All).unwrap();
        let b = gpu_model.forward(&ids(&gpu()), None, Logits::All).unwrap();
        let d = rel_diff(&a, &b);
        eprintln!("{qtype:?} gguf cuda vs cpu: relative diff {d}");
        assert!(d < 0.05, "{qtype:?}: {d}");
    }
}

#[test]
fn backend_session_generates_on_gpu() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = default_model(tmp.path());
    for dtype in ["f32", "bf16"] {
        let sp = spec(&[
            ("model", s(&dir.display().to_string())),
            ("device", s("cuda:0")),
            ("dtype", s(dtype)),
            ("batch", i(4)),
            ("gen_len", i(8)),
        ]);
        CandleBackend.validate(&sp).unwrap();
        let mut session = CandleBackend.load(&sp).unwrap();
        assert_eq!(session.model_info().details["device"], "cuda:0");
        let ctx = IterationCtx {
            index: 0,
            warmup: false,
        };
        let t = session.iteration(ctx).unwrap().generation.unwrap();
        assert_eq!(t.output_tokens(), 8);
        assert!(t.emissions.windows(2).all(|w| w[0].t_ns <= w[1].t_ns));
        let t0 = std::time::Instant::now();
        for _ in 0..5 {
            session.iteration(ctx).unwrap();
        }
        eprintln!(
            "{dtype} cuda: {:.2} ms per request (batch 4, 32+8 tokens)",
            t0.elapsed().as_secs_f64() * 200.0
        );
    }
    let caps = CandleBackend.describe();
    assert!(caps.devices.contains(&"cuda"));
}
