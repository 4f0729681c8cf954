//! Memory a run needs, estimated before anything is loaded, and the refusal when it does not
//! fit: every model-loading path (candle inference, candle training, `effbench serve` (the
//! model and one short request: requests size their own KV caches), the process backend's
//! workers) calls [`check`] with a [`Plan`] of its model and workload, for
//! presets, HF directories and GGUF files alike, so `batch = 1e9` or a config with a
//! 10^12-token context is a one-line error with the numbers instead of an out-of-memory
//! abort.
//!
//! The estimate is arithmetic on the configuration, labelled as such wherever it is shown:
//! weights as loaded, the KV cache the run allocates (`2 x layers x batch x kv_heads x
//! head_dim x (prompt + generated)` values), rotary tables, and the largest transient of one
//! forward pass (prefill: hidden states, q/k/v, the attention scores, which our attention
//! materialises in f32, the MLP, the logits) or, for training, the activations kept for the
//! backward pass plus f32 master weights, gradients and AdamW's two moments. It is compared
//! with what the device can give now: `MemAvailable` of /proc/meminfo on the CPU, NVML's free
//! memory on a GPU. `EFFBENCH_MEMORY_CHECK=off` skips the refusal (the estimate is still
//! computed and recorded).

use crate::llama::LlamaConfig;
use anyhow::{bail, Result};
use candle_core::quantized::GgmlDType;
use effbench_harness::records::ModelFormat;
use effbench_harness::{Device, ModelSpec};
use serde::Serialize;

/// Environment variable that turns the refusal off (`off`).
pub const CHECK_ENV: &str = "EFFBENCH_MEMORY_CHECK";

/// What a run will hold in memory, in bytes (saturating: absurd inputs give huge numbers,
/// never an overflow).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Estimate {
    /// Weights as loaded (plus, for training, master weights, gradients and optimizer state).
    pub weights: u64,
    /// Keys and values of every layer for the whole sequence.
    pub kv_cache: u64,
    /// The largest transient of a forward pass (training: activations kept for backward).
    pub activations: u64,
    /// Rotary tables and load-time transients (e.g. the f32 copy a quantized preset is made from).
    pub other: u64,
}

impl Estimate {
    /// Everything together.
    pub fn total(&self) -> u64 {
        self.weights
            .saturating_add(self.kv_cache)
            .saturating_add(self.activations)
            .saturating_add(self.other)
    }

    /// `12.3 GiB (weights 10.0 GiB + KV cache 1.2 GiB + activations 1.0 GiB + other 0.1 GiB)`.
    pub fn describe(&self) -> String {
        format!(
            "{} (weights {} + KV cache {} + activations {} + other {})",
            gib(self.total()),
            gib(self.weights),
            gib(self.kv_cache),
            gib(self.activations),
            gib(self.other)
        )
    }
}

/// Bytes as GiB with one decimal (`1.5e+03 GiB` style for absurd sizes).
pub fn gib(bytes: u64) -> String {
    let g = bytes as f64 / (1u64 << 30) as f64;
    if g >= 1e6 {
        format!("{g:.3e} GiB")
    } else {
        format!("{g:.1} GiB")
    }
}

/// How the weights are held.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Weights {
    /// Every parameter in a dense dtype.
    Dense {
        /// Bytes of one parameter.
        bytes_per_param: u64,
    },
    /// As stored (a GGUF file's tensors, a quantized preset), activations f32.
    Stored {
        /// Bytes of all weights.
        bytes: u64,
    },
}

/// A model and the work a run gives it.
#[derive(Debug, Clone)]
pub struct Plan<'a> {
    /// The architecture.
    pub config: &'a LlamaConfig,
    /// The weights.
    pub weights: Weights,
    /// Bytes of one activation value (2 for f16/bf16, 4 for f32 and quantized weights).
    pub act_bytes: u64,
    /// The work.
    pub work: Work,
    /// Bytes that exist only while loading (a quantized preset's f32 source).
    pub load_transient: u64,
}

/// The work a run does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Work {
    /// Sequences of a prompt, then generated tokens.
    Inference {
        /// Sequences together.
        batch: u64,
        /// Prompt tokens per sequence.
        prompt: u64,
        /// Generated tokens per sequence.
        gen: u64,
    },
    /// Optimizer steps (f32 master weights, AdamW).
    Training {
        /// Sequences per step.
        batch: u64,
        /// Tokens per sequence.
        seq: u64,
    },
}

fn mul(xs: &[u64]) -> u64 {
    xs.iter().fold(1u64, |a, &x| a.saturating_mul(x))
}

fn sum(xs: &[u64]) -> u64 {
    xs.iter().fold(0u64, |a, &x| a.saturating_add(x))
}

/// Parameter count of a configuration (the model code's formula), saturating.
pub fn params(c: &LlamaConfig) -> u64 {
    let u = |x: usize| x as u64;
    let (h, d, ff) = (u(c.hidden_size), u(c.head_size()), u(c.intermediate_size));
    let (nh, nkv) = (u(c.num_attention_heads), u(c.kv_heads()));
    let bias = if c.qkv_bias() {
        sum(&[mul(&[nh, d]), mul(&[2, nkv, d])])
    } else {
        0
    };
    let block = sum(&[
        mul(&[2, h, nh, d]),
        mul(&[2, h, nkv, d]),
        mul(&[3, h, ff]),
        mul(&[2, h]),
        bias,
    ]);
    let embed = mul(&[
        u(c.vocab_size),
        h,
        if c.tie_word_embeddings { 1 } else { 2 },
    ]);
    sum(&[mul(&[block, u(c.num_hidden_layers)]), h, embed])
}

/// The estimate for a plan.
pub fn estimate(p: &Plan) -> Estimate {
    let c = p.config;
    let u = |x: usize| x as u64;
    let (h, d, ff, vocab) = (
        u(c.hidden_size),
        u(c.head_size()),
        u(c.intermediate_size),
        u(c.vocab_size),
    );
    let (nh, nkv, layers) = (
        u(c.num_attention_heads),
        u(c.kv_heads()),
        u(c.num_hidden_layers),
    );
    let a = p.act_bytes;
    let n_params = params(c);
    let weights = match p.weights {
        Weights::Dense { bytes_per_param } => mul(&[n_params, bytes_per_param]),
        Weights::Stored { bytes } => bytes,
    };
    // Rotary cos and sin for every position: made in f32, kept in the activation dtype.
    let rope = mul(&[u(c.max_position_embeddings), d, 4 + a]);
    let other = sum(&[rope, p.load_transient]);
    // One layer's transients for `rows` tokens attending over `keys` positions, with the
    // attention scores in the activation dtype, in f32 (mask, softmax) and back.
    let layer = |batch: u64, rows: u64, keys: u64| -> u64 {
        let tokens = mul(&[batch, rows]);
        sum(&[
            mul(&[
                tokens,
                sum(&[
                    mul(&[6, h]),
                    mul(&[2, sum(&[nh, mul(&[2, nkv])]), d]),
                    mul(&[3, ff]),
                ]),
                a,
            ]),
            mul(&[batch, nh, rows, keys, sum(&[mul(&[2, a]), 8])]),
        ])
    };
    match p.work {
        Work::Inference { batch, prompt, gen } => {
            let len = sum(&[prompt, gen]);
            Estimate {
                weights,
                kv_cache: mul(&[2, layers, batch, nkv, d, len, a]),
                activations: sum(&[
                    layer(batch, prompt, prompt),
                    mul(&[batch, vocab, sum(&[a, 4])]),
                ]),
                other,
            }
        }
        Work::Training { batch, seq } => {
            // f32 master weights, gradients and AdamW's two moments, plus the compute-dtype copy.
            let state = mul(&[n_params, 16]);
            let copy = if a < 4 { mul(&[n_params, a]) } else { 0 };
            // Every layer's transients are kept for backward; the logits in f32 three times
            // (logits, log-softmax, gradient).
            let kept = sum(&[
                mul(&[layer(batch, seq, seq), layers]),
                mul(&[batch, seq, vocab, sum(&[a, 12])]),
            ]);
            Estimate {
                weights: sum(&[state, copy]),
                kv_cache: 0,
                activations: kept,
                other,
            }
        }
    }
}

/// How the model a reference names will be held when loaded with `dtype` (`f32`, `f16`,
/// `bf16`) and `quant` (a `quant` axis value): `(weights, activation bytes, load transient)`.
pub fn weights_of(
    spec: &ModelSpec,
    config: &LlamaConfig,
    dtype: &str,
    quant: &str,
) -> Result<(Weights, u64, u64)> {
    if spec.format() == ModelFormat::Gguf {
        let path = spec.path().unwrap_or_default();
        return Ok((
            Weights::Stored {
                bytes: crate::loader::gguf_tensor_bytes(&path)?,
            },
            4,
            0,
        ));
    }
    let n = params(config);
    if let Some(q) = crate::compress::quantize::ggml_type(quant)? {
        let stored = quantized_bytes(n, q);
        // The f32 weights the quantized ones are made from (a preset's, or a variant's base).
        return Ok((
            Weights::Stored { bytes: stored },
            4,
            n.saturating_mul(4).saturating_add(stored),
        ));
    }
    let bytes = crate::loader::parse_dtype(dtype)?.size_in_bytes() as u64;
    Ok((
        Weights::Dense {
            bytes_per_param: bytes,
        },
        bytes,
        0,
    ))
}

/// Bytes of `n` weights stored as `q` (whole blocks).
pub fn quantized_bytes(n: u64, q: GgmlDType) -> u64 {
    let (bs, ts) = (q.block_size() as u64, q.type_size() as u64);
    n.div_ceil(bs).saturating_mul(ts)
}

/// What the device can give a model now, in bytes, and where the figure comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Available {
    /// Bytes free for the run.
    pub bytes: u64,
    /// `MemAvailable (/proc/meminfo)` or `NVML free memory of cuda:0 (of 80.0 GiB)`.
    pub source: String,
}

/// Free memory of `device` now; `None` when it cannot be read (then nothing is refused).
pub fn available(device: Device) -> Option<Available> {
    match device {
        Device::Cpu => {
            let text = std::fs::read_to_string("/proc/meminfo").ok()?;
            let bytes = effbench_harness::meters::memory::status_bytes(&text, "MemAvailable")?;
            Some(Available {
                bytes,
                source: "MemAvailable in /proc/meminfo".into(),
            })
        }
        Device::Cuda(_) => {
            let name = device.to_string();
            let (free, total) = effbench_harness::meters::nvml::device_memory(&name).ok()?;
            Some(Available {
                bytes: free,
                source: format!("NVML free memory of {name} (of {})", gib(total)),
            })
        }
    }
}

/// Refuses a run whose estimate exceeds what `device` has free (see the module docs);
/// returns the estimate otherwise. `what` names the model and work in the error.
pub fn check(what: &str, plan: &Plan, device: Device) -> Result<Estimate> {
    let e = estimate(plan);
    if std::env::var(CHECK_ENV).is_ok_and(|v| v == "off") {
        return Ok(e);
    }
    if let Some(avail) = available(device) {
        refuse_if_short(what, &e, &avail, device)?;
    }
    Ok(e)
}

/// The refusal itself, separated for tests.
pub fn refuse_if_short(what: &str, e: &Estimate, avail: &Available, device: Device) -> Result<()> {
    if e.total() > avail.bytes {
        bail!(
            "{what} needs about {} of memory on {device}, but only {} is free ({}): refused \
             before loading; use a smaller batch, shorter sequences, a smaller dtype or a shrunk \
             preset (?layers=N), or set {CHECK_ENV}=off to try anyway",
            e.describe(),
            gib(avail.bytes),
            avail.source
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests;
