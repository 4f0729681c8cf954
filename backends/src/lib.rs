#![warn(missing_docs)]
//! # effbench-backends
//!
//! Built-in backends of effbench and the model code they share.
//!
//! - [`registry`] lists the built-in backends; adding one is a new module plus one line there.
//! - [`candle_infer`]: the `candle` backend — in-process llama inference (HF directory in
//!   f32/f16/bf16, or GGUF) with per-token timestamps.
//! - [`encoder`]: the `candle-encoder` backend — BERT-family sentence encoders
//!   (candle-transformers' `BertModel`, sentence-transformers pooling) for the `embedding`
//!   and `retrieval` scenarios; [`retrieval`]: BEIR datasets, exact/int8/binary indexes,
//!   recall/nDCG/overlap.
//! - [`process`]: the `process` backend — an external worker process speaking protocol v1
//!   (`backends/workers/`: the PyTorch reference worker and a pure-Python reference worker).
//! - [`openai_http`]: the `openai-http` backend — a load generator for OpenAI-compatible
//!   servers (scenario `serving`): arrival schedules, SSE timing, goodput, server search.
//! - [`serve`]: `effbench serve` — an OpenAI-compatible HTTP server (axum) with a fair queue
//!   and continuous batching for any model the candle backend loads.
//! - [`llama`]: our own llama implementation ([`llama::Llama`], [`llama::LlamaConfig`]):
//!   dense (differentiable, from a `VarBuilder`) or quantized GGUF weights, all-position or
//!   last-position logits, resettable KV cache, GGUF export with the q/k permutation.
//! - [`compress`]: quantized and pruned variants made on demand from the `quant`, `sparsity`
//!   and `prune` axes (cached by content hash), and quality/fidelity evaluation.
//! - [`roofline`]: the measured roofs of a device (memory-bandwidth probe) and a llama
//!   model's bytes and FLOPs per token, for MBU and prefill MFU.
//! - [`loader`]: resolving and loading models from disk with their [`effbench_harness::ModelInfo`].
//! - [`preset`]: `model = "preset:<name>"`, published architectures (Llama 3.x, Qwen2.5,
//!   Mistral, SmolLM2) with seeded random weights made at load time in the run's dtype.
//! - [`memory`]: the memory a run needs (weights, KV cache, activations), estimated before
//!   loading and compared with free RAM or GPU memory, so an impossible run is refused.
//! - [`tokenizer`]: tokenizers rebuilt from GGUF metadata (SmolLM2's `smollm` pre-tokenizer
//!   included).
//! - [`train`]: the `candle-train` backend — trains the same llama on the synthetic language
//!   (AdamW, warm-up + cosine, clipping), HF checkpoints, resume, FLOPs/MFU, time-to-target.
//! - [`default_model`] and [`corpus`]: the built-in models (`seeded`: created deterministically
//!   under `results/models/seeded/`; `default`: the same trained by suites/train-tiny.toml) and
//!   the synthetic Markov language they speak, whose entropy rate is known exactly.

pub mod candle_infer;
pub mod compress;
pub mod corpus;
pub mod default_model;
pub mod encoder;
pub mod llama;
pub mod loader;
pub mod memory;
pub mod openai_http;
pub mod preset;
pub mod process;
pub mod retrieval;
pub mod roofline;
pub mod serve;
pub mod tokenizer;
pub mod train;

/// The axes every in-process and worker backend shares for inference, with their defaults
/// (model, device, dtype, batch, prompt and output length); backends append their own.
pub fn inference_axes() -> Vec<(&'static str, effbench_harness::axes::AxisValue)> {
    use effbench_harness::axes::AxisValue;
    vec![
        ("model", AxisValue::from("default")),
        ("device", AxisValue::from("cpu")),
        ("dtype", AxisValue::from("f32")),
        ("batch", AxisValue::Int(1)),
        ("prompt_len", AxisValue::Int(32)),
        ("gen_len", AxisValue::Int(32)),
    ]
}

/// The built-in backends.
pub fn registry() -> effbench_harness::Registry {
    let mut r = effbench_harness::Registry::new();
    r.register(Box::new(candle_infer::CandleBackend));
    r.register(Box::new(process::ProcessBackend));
    r.register(Box::new(openai_http::OpenAiHttp));
    r.register(Box::new(train::TrainBackend::default()));
    r.register(Box::new(encoder::EncoderBackend));
    r
}
