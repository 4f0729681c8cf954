//! Training FLOPs (analytic) and the device's peak FLOP/s (measured), the two halves of MFU.
//!
//! **Analytic FLOPs** (docs/training.md#flops-and-mfu, as PaLM's MFU, Chowdhery et al. 2022, app. B): per
//! trained token `6 N + 12 L H Q T`, where `N` counts the weights that take part in a
//! matmul for each token (attention q/k/v/o and MLP gate/up/down of every block, plus the
//! output head, vocab x hidden, tied or not; the embedding lookup is a gather and norms are
//! elementwise, so neither counts), `L` blocks, `H` query heads of size `Q`, `T = seq_len`.
//! `6 N` = 2 FLOPs per multiply-add x (forward + 2 x backward); `12 L H Q T` is the same for
//! the two attention matmuls (scores q·k and the weighted sum of v) over all `T` positions,
//! as the model computes them (the causal mask does not skip work).
//!
//! **Peak** ([`peak_flops`]): the best FLOP/s of square matmuls in the run's dtype on the
//! run's device, several sizes and repetitions, with the same kernels and thread count as
//! training; memoised per device and dtype for the process.

use crate::llama::LlamaConfig;
use anyhow::Result;
use candle_core::{DType, Device, Tensor};
use effbench_harness::env::PeakFlops;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Weights multiplied with every token: all linear layers of the blocks plus the output head.
pub fn matmul_params(c: &LlamaConfig) -> u64 {
    let (h, d, ff) = (
        c.hidden_size as u64,
        c.head_size() as u64,
        c.intermediate_size as u64,
    );
    let (nh, nkv) = (c.num_attention_heads as u64, c.kv_heads() as u64);
    let attention = h * nh * d * 2 + h * nkv * d * 2;
    let mlp = 3 * h * ff;
    (attention + mlp) * c.num_hidden_layers as u64 + c.vocab_size as u64 * h
}

/// Training FLOPs per token: `6 N + 12 L H Q T`.
pub fn train_flops_per_token(c: &LlamaConfig, seq_len: usize) -> f64 {
    let n = matmul_params(c) as f64;
    let attention = 12.0
        * c.num_hidden_layers as f64
        * c.num_attention_heads as f64
        * c.head_size() as f64
        * seq_len as f64;
    6.0 * n + attention
}

/// Training FLOPs of one step of `batch` sequences of `seq_len` tokens.
pub fn train_flops_per_step(c: &LlamaConfig, batch: usize, seq_len: usize) -> f64 {
    train_flops_per_token(c, seq_len) * (batch * seq_len) as f64
}

fn dtype_name(d: DType) -> &'static str {
    crate::loader::dtype_name(d)
}

/// Best FLOP/s of `n x n` matmuls: one warm-up, then at least `min_reps` repetitions and
/// `min_s` seconds (at most 50 repetitions).
fn probe_size(device: &Device, dtype: DType, n: usize, min_reps: usize, min_s: f64) -> Result<f64> {
    // Values well inside every dtype's range; their magnitude does not change the speed.
    let a = (Tensor::ones((n, n), DType::F32, device)? * 0.01)?.to_dtype(dtype)?;
    let b = (Tensor::ones((n, n), DType::F32, device)? * 0.02)?.to_dtype(dtype)?;
    let _ = a.matmul(&b)?;
    device.synchronize()?;
    let (mut best, mut reps, start) = (f64::INFINITY, 0, Instant::now());
    while reps < 50 && (reps < min_reps || start.elapsed().as_secs_f64() < min_s) {
        let t = Instant::now();
        let c = a.matmul(&b)?;
        device.synchronize()?;
        best = best.min(t.elapsed().as_secs_f64());
        drop(c);
        reps += 1;
    }
    Ok(2.0 * (n as f64).powi(3) / best)
}

/// Measures (once per process, device and dtype) the peak matmul FLOP/s; `label` names the
/// device in the result (`cpu`, `cuda:0`).
pub fn peak_flops(device: &Device, dtype: DType, label: &str) -> Result<PeakFlops> {
    static CACHE: Mutex<Option<HashMap<(String, String), PeakFlops>>> = Mutex::new(None);
    let key = (label.to_string(), dtype_name(dtype).to_string());
    if let Some(p) = CACHE
        .lock()
        .ok()
        .and_then(|c| c.as_ref().and_then(|m| m.get(&key).cloned()))
    {
        return Ok(p);
    }
    let (sizes, threads): (&[usize], usize) = if device.is_cpu() {
        (&[256, 512, 1024], candle_core::utils::get_num_threads())
    } else {
        (&[2048, 4096, 8192], 0)
    };
    let mut best = 0.0f64;
    for &n in sizes {
        best = best.max(probe_size(device, dtype, n, 5, 0.3)?);
    }
    let sizes_text: Vec<String> = sizes.iter().map(|n| n.to_string()).collect();
    let p = PeakFlops {
        device: label.to_string(),
        dtype: key.1.clone(),
        flops_per_s: best,
        threads,
        method: format!(
            "best of square {} matmuls (n = {}; 1 warm-up, then >= 5 repetitions and >= 0.3 s \
             per size), candle {} on {label}, 2 n^3 FLOPs each",
            key.1,
            sizes_text.join(", "),
            if device.is_cpu() {
                format!("CPU kernels with {threads} thread(s)")
            } else {
                "CUDA kernels".to_string()
            }
        ),
    };
    if let Ok(mut c) = CACHE.lock() {
        c.get_or_insert_with(HashMap::new).insert(key, p.clone());
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 2-layer model counted by hand, matmul by matmul, against the formula.
    #[test]
    fn formula_equals_a_hand_count_for_two_layers() {
        let mut c = crate::default_model::default_config();
        c.hidden_size = 64;
        c.num_hidden_layers = 2;
        c.num_attention_heads = 2; // head size 32
        c.num_key_value_heads = Some(1);
        c.intermediate_size = 176;
        c.vocab_size = 512;
        let (batch, t) = (2usize, 16usize);
        // Forward multiply-adds per token, layer by layer:
        //   q 64x64 = 4096, k 64x32 = 2048, v 64x32 = 2048, o 64x64 = 4096,
        //   gate, up, down 3 x 64x176 = 33792  -> 46080 per layer, 92160 for 2 layers;
        //   output head 512x64 = 32768        -> N = 124928
        //   attention per layer per token: scores 2 heads x 32 x T=16 = 1024,
        //   weighted values 1024              -> 2048 per layer, 4096 for 2 layers
        // forward FLOPs per token = 2 x (124928 + 4096) = 258048; training = 3 x that.
        assert_eq!(matmul_params(&c), 124_928);
        let hand_per_token = 3.0 * 2.0 * (124_928.0 + 4_096.0);
        assert_eq!(hand_per_token, 774_144.0);
        assert_eq!(train_flops_per_token(&c, t), hand_per_token);
        assert_eq!(
            train_flops_per_step(&c, batch, t),
            hand_per_token * (batch * t) as f64
        );
        // The same count from the model's own weight shapes (every Linear it multiplies by).
        let vb = candle_nn::VarBuilder::zeros(DType::F32, &Device::Cpu);
        let model = crate::llama::Llama::from_varbuilder(&c, vb).unwrap();
        let mut from_shapes = model.lm_head.dims().0 * model.lm_head.dims().1;
        for b in &model.blocks {
            for l in [
                &b.attn.q,
                &b.attn.k,
                &b.attn.v,
                &b.attn.o,
                &b.mlp.gate,
                &b.mlp.up,
                &b.mlp.down,
            ] {
                from_shapes += l.dims().0 * l.dims().1;
            }
        }
        assert_eq!(from_shapes as u64, matmul_params(&c));
    }

    #[test]
    fn probe_measures_a_positive_peak_once() {
        let p = peak_flops(&Device::Cpu, DType::F32, "cpu").unwrap();
        assert!(p.flops_per_s > 1e8 && p.flops_per_s.is_finite(), "{p:?}");
        assert!(p.method.contains("1024") && p.threads >= 1);
        let again = peak_flops(&Device::Cpu, DType::F32, "cpu").unwrap();
        assert_eq!(p, again, "memoised");
    }
}
