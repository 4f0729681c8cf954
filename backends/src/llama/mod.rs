//! Our own compact llama-architecture implementation, shared by inference, training and
//! compression work.
//!
//! - [`LlamaConfig`]: hyper-parameters from HF `config.json` or GGUF `llama.*` metadata.
//! - [`Llama`]: the model. Build it from a `candle_nn::VarBuilder`
//!   ([`Llama::from_varbuilder`]: safetensors for inference, `VarBuilder::from_varmap` for
//!   training — the dense path is differentiable) or from a GGUF file ([`Llama::from_gguf`]:
//!   quantized weights on effbench's repacked CPU kernels, [`qmm`], or candle's `QMatMul`,
//!   chosen by [`QuantKernels`]).
//! - [`Llama::forward`] returns logits for the last position ([`Logits::Last`], decode) or
//!   for all positions ([`Logits::All`], perplexity / fidelity / training), with or without a
//!   resettable KV [`Cache`] (any batch size); [`Llama::forward_segments`] feeds several
//!   sequences at different positions, each with its own number of new tokens (prompt chunks
//!   and decode tokens together), in one pass (continuous batching with chunked prefill).
//! - Rope is applied in HF half-split layout for HF weights and interleaved layout for GGUF
//!   weights; [`permute_qk_to_interleaved`] documents and implements the q/k row permutation
//!   that makes the two equivalent, and [`write_gguf`] exports HF tensors to GGUF with it.
//!
//! Supported: GQA (`num_key_value_heads`), RMSNorm, SiLU-gated MLP, tied or untied output
//! head, any `rope_theta` with Llama 3's or linear rope scaling, Qwen2's q/k/v biases
//! (`model_type` llama, mistral or qwen2); dtypes f32/f16/bf16 for dense weights (norms,
//! softmax and logits computed in f32). Not supported (rejected by [`LlamaConfig::check`]):
//! other rope scalings, activations other than SiLU, other model types. A `sliding_window`
//! in a config is not read (attention is always over the whole sequence: exact up to the
//! window's length).

mod attention;
mod batched;
mod config;
mod decode;
mod gguf;
mod gguf_header;
mod kernels;
mod layers;
mod model;
pub mod qmm;

pub use batched::Segment;
pub use config::{LlamaConfig, RopeLayout, RopeScaling, MODEL_TYPES};
pub use decode::{check_decode_env, DECODE_ENV};
pub use gguf::{
    gguf_tensor_name, gguf_weight_dtype, permute_qk_to_half_split, permute_qk_to_interleaved,
    write_gguf, write_gguf_with,
};
pub use gguf_header::{check_metadata as check_gguf_metadata, check_tensors as check_gguf_tensors};
pub use kernels::{kernel_report, QuantKernels, QMATMUL_ENV};
pub use layers::{softmax_last, Embedding, KvCache, Linear, RmsNorm, Rope};
pub use model::{argmax_rows, Attention, Block, Cache, Llama, Logits, Mlp, QkvBias, INIT_STD};
pub use qmm::QMatrix;

#[cfg(test)]
mod tests;
