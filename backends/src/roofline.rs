//! The two roofs of a device and a llama model's work under them.
//!
//! - [`peak_bandwidth`]: memory read bandwidth, measured. On the CPU every thread of the
//!   matmul pool sums its share of a buffer larger than the caches (1 GiB, or 4x the
//!   last-level cache when that is larger) and the best of several passes counts; on a CUDA
//!   device a large on-device copy (read + write bytes). Memoised per device.
//! - [`model_work`]: what one token costs a [`Llama`] as loaded: weight bytes read per decode
//!   step, KV-cache bytes per position, forward FLOPs — the inputs of MBU and prefill MFU
//!   (harness/records/src/roofline.rs).

use crate::llama::Llama;
use anyhow::Result;
use candle_core::{DType, Device};
use effbench_harness::env::PeakBandwidth;
use effbench_harness::roofline::ModelWork;
use std::collections::HashMap;
use std::sync::{Barrier, Mutex};
use std::time::Instant;

/// What one token costs `model` (weights as held in memory, KV cache in `kv_dtype`).
pub fn model_work(model: &Llama, kv_dtype: DType) -> ModelWork {
    let c = &model.config;
    let mut weight_bytes = model.lm_head.bytes() as u64;
    let mut block_macs = 0u64;
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
            let (n, k) = l.dims();
            block_macs += (n * k) as u64;
            weight_bytes += l.bytes() as u64;
        }
    }
    let (n, k) = model.lm_head.dims();
    let layers = c.num_hidden_layers as f64;
    ModelWork {
        weight_bytes_per_step: weight_bytes,
        kv_bytes_per_position: (2
            * c.num_hidden_layers
            * c.kv_heads()
            * c.head_size()
            * kv_dtype.size_in_bytes()) as u64,
        block_flops_per_token: 2.0 * block_macs as f64,
        head_flops_per_token: 2.0 * (n * k) as f64,
        // q·k over the position and p·v: 2 x 2 FLOPs per head dimension per query head.
        attention_flops_per_position: 4.0
            * layers
            * c.num_attention_heads as f64
            * c.head_size() as f64,
    }
}

/// Bytes of the last-level cache (sysfs), 0 when unknown.
fn last_level_cache_bytes() -> u64 {
    let mut best = 0;
    for i in 0..8 {
        let p = format!("/sys/devices/system/cpu/cpu0/cache/index{i}/size");
        let Ok(text) = std::fs::read_to_string(p) else {
            break;
        };
        let t = text.trim();
        let (num, mult) = match t.strip_suffix('K') {
            Some(n) => (n, 1 << 10),
            None => match t.strip_suffix('M') {
                Some(n) => (n, 1 << 20),
                None => (t, 1),
            },
        };
        best = best.max(num.parse::<u64>().unwrap_or(0) * mult);
    }
    best
}

/// CPU read bandwidth with `threads` threads over `bytes` bytes: best of >= 5 passes and
/// >= 0.3 s.
pub fn cpu_bandwidth(threads: usize, bytes: usize) -> PeakBandwidth {
    let threads = threads.max(1);
    let words = (bytes / 8).max(threads * 8);
    let mut buf = vec![0u64; words];
    // Touch every page (and give the reads something to add).
    for (i, w) in buf.iter_mut().enumerate().step_by(512) {
        *w = i as u64;
    }
    let per = words.div_ceil(threads);
    let parts: Vec<&[u64]> = buf.chunks(per).collect();
    let _ = timed_pass(&parts);
    let (mut best, mut passes, t) = (f64::INFINITY, 0, Instant::now());
    while passes < 5 || (t.elapsed().as_secs_f64() < 0.3 && passes < 50) {
        best = best.min(timed_pass(&parts));
        passes += 1;
    }
    PeakBandwidth {
        device: "cpu".into(),
        bytes_per_s: (words * 8) as f64 / best,
        threads,
        method: format!(
            "best of {passes} streaming reads (u64 sums) of a {} MiB buffer split over {threads} \
             thread(s) started together; 1 warm-up pass",
            (words * 8) >> 20
        ),
    }
}

/// One streaming read of `parts`, one thread each, all released together: seconds from the
/// first thread's start to the last thread's end. Each thread reads the clock itself, so the
/// span does not depend on when the spawning thread runs (with as many readers as cores, it
/// may well be descheduled while they read: timing from it once made the probe report
/// several times the real bandwidth).
fn timed_pass(parts: &[&[u64]]) -> f64 {
    let start = Barrier::new(parts.len());
    let spans: Vec<(Instant, Instant)> = std::thread::scope(|s| {
        let handles: Vec<_> = parts
            .iter()
            .map(|part| {
                let start = &start;
                s.spawn(move || {
                    start.wait();
                    let t0 = Instant::now();
                    let mut acc = [0u64; 8];
                    for chunk in part.chunks_exact(8) {
                        for (a, v) in acc.iter_mut().zip(chunk) {
                            *a = a.wrapping_add(*v);
                        }
                    }
                    std::hint::black_box(acc);
                    (t0, Instant::now())
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    match (
        spans.iter().map(|s| s.0).min(),
        spans.iter().map(|s| s.1).max(),
    ) {
        (Some(first), Some(last)) if spans.len() == parts.len() => {
            last.duration_since(first).as_secs_f64()
        }
        _ => f64::INFINITY,
    }
}

/// Measures (once per process and device) the memory bandwidth of `device`; `label` names
/// it in the result (`cpu`, `cuda:0`). CPU threads: candle's matmul thread count.
pub fn peak_bandwidth(device: &Device, label: &str) -> Result<PeakBandwidth> {
    static CACHE: Mutex<Option<HashMap<String, PeakBandwidth>>> = Mutex::new(None);
    if let Some(p) = CACHE
        .lock()
        .ok()
        .and_then(|c| c.as_ref().and_then(|m| m.get(label).cloned()))
    {
        return Ok(p);
    }
    let p = if device.is_cpu() {
        let bytes = (1u64 << 30).max(4 * last_level_cache_bytes());
        cpu_bandwidth(candle_core::utils::get_num_threads(), bytes as usize)
    } else {
        gpu_bandwidth(device, label)?
    };
    if let Ok(mut c) = CACHE.lock() {
        c.get_or_insert_with(HashMap::new)
            .insert(label.to_string(), p.clone());
    }
    Ok(p)
}

/// Device memory bandwidth: a 1 GiB f32 buffer copied on the device (each copy reads and
/// writes every byte), best of >= 5 copies and >= 0.3 s.
fn gpu_bandwidth(device: &Device, label: &str) -> Result<PeakBandwidth> {
    let n = (1usize << 30) / 4;
    let src = candle_core::Tensor::ones(n, DType::F32, device)?;
    let _ = src.copy()?;
    device.synchronize()?;
    let (mut best, mut reps, t) = (f64::INFINITY, 0, Instant::now());
    while reps < 5 || (t.elapsed().as_secs_f64() < 0.3 && reps < 50) {
        let t0 = Instant::now();
        let dst = src.copy()?;
        device.synchronize()?;
        best = best.min(t0.elapsed().as_secs_f64());
        drop(dst);
        reps += 1;
    }
    Ok(PeakBandwidth {
        device: label.to_string(),
        bytes_per_s: 2.0 * (n * 4) as f64 / best,
        threads: 0,
        method: format!(
            "best of {reps} on-device copies of a 1024 MiB buffer (read + write bytes), candle \
             CUDA kernels"
        ),
    })
}
