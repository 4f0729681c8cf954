//! Decode-loop overhead of the `candle` backend's session against a bare candle loop on the
//! same model (the seeded default weights, f32, batch 1, 32 prompt + 32 generated tokens): the
//! session adds per-token timestamps, interrupt polling and trace bookkeeping, which should
//! cost well under 1 % of tokens/s.
//!
//! ```sh
//! cargo bench -p effbench-backends --bench decode
//! ```

use candle_core::{DType, Device, Tensor};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use effbench_backends::candle_infer::{synthetic_prompts, CandleBackend};
use effbench_backends::llama::{argmax_rows, Logits};
use effbench_backends::loader;
use effbench_harness::axes::AxisValue;
use effbench_harness::backend::IterationCtx;
use effbench_harness::suite::Scenario;
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

fn decode(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let dir = effbench_backends::default_model::ensure_seeded_model_in(tmp.path())
        .expect("seeded default model");
    let sp = spec(&dir.display().to_string());

    let mut group = c.benchmark_group("decode_default_f32_b1_p32_g32");
    group.throughput(Throughput::Elements(GEN as u64));

    // The bare loop: the same model, prompts and greedy decode, nothing else.
    let loaded = loader::load_hf(
        &dir,
        DType::F32,
        &loader::candle_device(sp.device().unwrap()).unwrap(),
    )
    .expect("load");
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
    group.bench_function("bare_candle_loop", |b| {
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

    let mut session = CandleBackend.load(&sp).expect("session");
    let ctx = IterationCtx {
        index: 0,
        warmup: false,
    };
    group.bench_function("backend_session_iteration", |b| {
        b.iter(|| session.iteration(ctx).unwrap())
    });
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
