//! Decode-loop overhead of the `candle` backend's session against a bare loop on the same
//! model (run before and after the session), batch 1, 32 prompt + 32 generated tokens: the session adds per-token timestamps,
//! interrupt polling and trace bookkeeping, which should cost well under 1 % of tokens/s.
//! Two models: the seeded default weights (f32) and, when `EFFBENCH_SMOLLM2_GGUF` names the
//! file, the real SmolLM2-135M-Instruct Q4_1 GGUF (effbench's quantized kernels).
//!
//! ```sh
//! EFFBENCH_SMOLLM2_GGUF=path/to/SmolLM2-135M-Instruct.Q4_1.gguf \
//!     cargo bench -p effbench-backends --bench decode
//! ```

use candle_core::{DType, Device, Tensor};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use effbench_backends::candle_infer::{synthetic_prompts, CandleBackend};
use effbench_backends::llama::{argmax_rows, Logits};
use effbench_backends::loader;
use effbench_harness::axes::AxisValue;
use effbench_harness::backend::IterationCtx;
use effbench_harness::records::Scenario;
use effbench_harness::{Backend, RunSpec};
use std::collections::BTreeMap;

const PROMPT: usize = 32;
const GEN: usize = 32;
const SEED: u64 = 42;

fn spec(model: &str) -> RunSpec {
    let params: BTreeMap<String, AxisValue> = [
        ("model", AxisValue::Str(model.into())),
        ("device", AxisValue::Str("cpu".into())),
        ("dtype", AxisValue::Str("f32".into())),
        ("batch", AxisValue::Int(1)),
        ("prompt_len", AxisValue::Int(PROMPT as i64)),
        ("gen_len", AxisValue::Int(GEN as i64)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    RunSpec {
        id: "bench".into(),
        ..RunSpec::new("bench", Scenario::Inference, "candle", params, SEED)
    }
}

/// Bare loop and session iteration on the model `sp` names, in one criterion group.
fn compare(c: &mut Criterion, group: &str, sp: &RunSpec, loaded: loader::LoadedModel) {
    let mut group = c.benchmark_group(group);
    group.throughput(Throughput::Elements(GEN as u64));
    // The bare loop: the same model, prompts and greedy decode, nothing else.
    let ids = synthetic_prompts(
        SEED,
        PROMPT,
        loaded.model.config.vocab_size,
        &loaded.special_ids,
    )
    .expect("prompts");
    let prompt = Tensor::from_vec(ids, (1, PROMPT), &Device::Cpu).expect("prompt tensor");
    let model = loaded.model;
    let mut cache = model.new_cache(PROMPT + GEN);
    let mut bare = |name: &str, group: &mut criterion::BenchmarkGroup<_>| {
        group.bench_function(name, |b| {
            b.iter(|| {
                cache.reset();
                let mut input = prompt.clone();
                for _ in 0..GEN {
                    let logits = model
                        .forward(&input, Some(&mut cache), Logits::Last)
                        .unwrap();
                    let next = argmax_rows(&logits).unwrap();
                    input = Tensor::from_vec(next, (1, 1), &Device::Cpu).unwrap();
                }
            })
        });
    };
    // Both models stay loaded, and the bare loop runs before and after the session: a gap
    // between the two bare runs is the machine's drift (or the second model's placement in
    // memory), not the session's overhead.
    let mut session = CandleBackend.load(sp).expect("session");
    bare("bare_candle_loop", &mut group);
    let ctx = IterationCtx {
        index: 0,
        warmup: false,
    };
    group.bench_function("backend_session_iteration", |b| {
        b.iter(|| session.iteration(ctx).unwrap())
    });
    bare("bare_candle_loop_again", &mut group);
    group.finish();
}

fn decode(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let dir = effbench_backends::default_model::ensure_seeded_model_in(tmp.path())
        .expect("seeded default model");
    let sp = spec(&dir.display().to_string());
    let device = loader::candle_device(sp.device().unwrap()).unwrap();
    let loaded = loader::load_hf(&dir, DType::F32, &device).expect("load");
    compare(c, "decode_default_f32_b1_p32_g32", &sp, loaded);

    match std::env::var_os("EFFBENCH_SMOLLM2_GGUF").filter(|p| !p.is_empty()) {
        Some(path) => {
            let path = std::path::PathBuf::from(path);
            let loaded = loader::load_gguf(&path, &device).expect("load SmolLM2");
            compare(
                c,
                "decode_smollm2_q4_1_b1_p32_g32",
                &spec(&path.display().to_string()),
                loaded,
            );
        }
        None => eprintln!("SmolLM2 group skipped: EFFBENCH_SMOLLM2_GGUF is not set"),
    }
}

criterion_group!(benches, decode);
criterion_main!(benches);
