//! Greedy decode speed of a GGUF model through our llama code, as docs/performance.md reports it:
//! prompt "The capital of France is", `N` generated tokens (default 128, EOS ignored),
//! several runs, decode tokens/s excluding prefill, and the process peak RSS.
//!
//! ```sh
//! RAYON_NUM_THREADS=2 cargo run --release -p effbench-backends --example decode_speed -- \
//!     path/to/SmolLM2-135M-Instruct.Q4_1.gguf [tokens] [runs] [--candle-qmatmul]
//! ```
//!
//! `--candle-qmatmul` swaps effbench's quantized kernels for candle's own `QMatMul` (the
//! baseline; `EFFBENCH_QMATMUL=candle` does the same for `effbench run`).

use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use effbench_backends::llama::{argmax_rows, Logits, QuantKernels};
use effbench_backends::{loader, tokenizer};
use std::time::Instant;

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() -> Result<()> {
    let mut args: Vec<String> = std::env::args().collect();
    let baseline = args.iter().any(|a| a == "--candle-qmatmul");
    args.retain(|a| a != "--candle-qmatmul");
    let path = args
        .get(1)
        .context("usage: decode_speed FILE.gguf [tokens] [runs]")?;
    let tokens: usize = args.get(2).map_or(Ok(128), |s| s.parse())?;
    let runs: usize = args.get(3).map_or(Ok(5), |s| s.parse())?;
    loader::pin_cpu_threads();
    let t = Instant::now();
    let kernels = if baseline {
        QuantKernels::Candle
    } else {
        QuantKernels::Effbench
    };
    let loaded = loader::load_gguf_with(path.as_ref(), &Device::Cpu, kernels)?;
    let (ct, _) = loader::read_gguf_header(path.as_ref())?;
    println!(
        "loaded {} ({}) in {:.2} s; threads {}; matmul: {}",
        loaded.info.name,
        loaded.info.dtype,
        t.elapsed().as_secs_f64(),
        candle_core::utils::get_num_threads(),
        loaded.info.details["matmul_kernels"]["kernels"]
    );
    let tok = tokenizer::tokenizer_from_gguf(&ct)?;
    let prompt = tok
        .encode("The capital of France is", false)
        .map_err(anyhow::Error::msg)?;
    let model = &loaded.model;
    let mut cache = model.new_cache(prompt.len() + tokens);
    let mut rates = Vec::new();
    for run in 0..=runs {
        cache.reset();
        let mut input = Tensor::new(prompt.get_ids(), &Device::Cpu)?.unsqueeze(0)?;
        let mut out = Vec::with_capacity(tokens);
        let t0 = Instant::now();
        let mut t_first = t0;
        for step in 0..tokens {
            let logits = model.forward(&input, Some(&mut cache), Logits::Last)?;
            let next = argmax_rows(&logits)?[0];
            if step == 0 {
                t_first = Instant::now();
            }
            out.push(next);
            input = Tensor::new(&[[next]], &Device::Cpu)?;
        }
        let decode_s = t_first.elapsed().as_secs_f64();
        let rate = (tokens - 1) as f64 / decode_s;
        let prefill_ms = (t_first - t0).as_secs_f64() * 1e3;
        if run == 0 {
            let text = tok
                .decode(&out[..16.min(out.len())], true)
                .unwrap_or_default();
            println!("warm-up run: prefill {prefill_ms:.1} ms, {rate:.1} tok/s, text {text:?}");
        } else {
            println!("run {run}: prefill {prefill_ms:.1} ms, decode {rate:.1} tok/s");
            rates.push(rate);
        }
    }
    rates.sort_by(f64::total_cmp);
    let median = rates.get(rates.len() / 2).copied().unwrap_or(f64::NAN);
    println!(
        "decode tok/s median {median:.1} (min {:.1}, max {:.1}); peak RSS {:.0} MB",
        rates.first().unwrap_or(&f64::NAN),
        rates.last().unwrap_or(&f64::NAN),
        peak_rss_mb()
    );
    Ok(())
}
