//! How fast effbench's quantized kernels stream weights in a decode step (one activation row),
//! against the machine's read bandwidth measured the same way the roofline does.
//!
//! ```sh
//! RAYON_NUM_THREADS=2 cargo run --release -p effbench-backends --example qmm_speed -- [MiB] [rounds]
//! ```
//!
//! For each format: a seeded random matrix of the lm_head's width (576) and about `MiB`
//! (default 140, SmolLM2's Q8_0 weights) is multiplied by one activation row repeatedly on
//! candle's thread pool; prints GB/s of weights read (best of the round) and the streaming
//! probe's GB/s over a buffer of the same size, alternating, `rounds` times (default 3).

use effbench_backends::llama::qmm::{act, matmul_into, Format, QMatrix};
use effbench_backends::roofline::cpu_bandwidth;
use std::time::Instant;

/// Bytes of one GGUF block with a tame scale (f16 0.01) and minimum, random codes.
fn block(fmt: Format, seed: &mut u64) -> Vec<u8> {
    let mut next = || {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed as u8
    };
    let mut b: Vec<u8> = (0..fmt.block_bytes()).map(|_| next()).collect();
    let scale = 0x211Fu16.to_le_bytes(); // f16 0.01
    match fmt {
        Format::Q8_0 | Format::Q4_0 | Format::Q5_0 => b[..2].copy_from_slice(&scale),
        Format::Q4_1 | Format::Q4K => {
            b[..2].copy_from_slice(&scale);
            b[2..4].copy_from_slice(&scale);
        }
        Format::Q6K => {
            let n = b.len();
            b[n - 2..].copy_from_slice(&scale);
        }
    }
    b
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, name: &str, default: usize, max: usize| -> usize {
        match args.get(i).map(|s| s.parse::<usize>()) {
            None => default,
            Some(Ok(v)) if (1..=max).contains(&v) => v,
            _ => {
                eprintln!("qmm_speed: {name} must be a whole number from 1 to {max}");
                std::process::exit(2);
            }
        }
    };
    let mib = arg(1, "MiB", 140, 4096);
    let rounds = arg(2, "rounds", 3, 100);
    let threads = candle_core::utils::get_num_threads();
    let k = 576;
    println!(
        "qmm_speed: {threads} threads, k = {k}, ~{mib} MiB of weights per product, kernels {}",
        effbench_backends::llama::qmm::Isa::active().name()
    );
    for fmt in [Format::Q8_0, Format::Q4_1, Format::Q4_0] {
        let row_bytes = k / fmt.block_values() * fmt.block_bytes();
        let n = (mib << 20) / row_bytes / 16 * 16;
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let data: Vec<u8> = (0..n * k / fmt.block_values())
            .flat_map(|_| block(fmt, &mut seed))
            .collect();
        let w = QMatrix::from_bytes(fmt, n, k, &data).expect("valid blocks");
        drop(data);
        let x: Vec<f32> = (0..k)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0)
            .collect();
        let mut xq = Vec::new();
        act::quantize_rows(&x, &mut xq);
        let mut out = vec![0f32; n];
        for round in 1..=rounds {
            let (mut best, t) = (f64::INFINITY, Instant::now());
            let mut reps = 0;
            while reps < 5 || (t.elapsed().as_secs_f64() < 1.0 && reps < 200) {
                let t0 = Instant::now();
                matmul_into(&[&w], &xq, 1, &mut [&mut out]);
                best = best.min(t0.elapsed().as_secs_f64());
                reps += 1;
            }
            std::hint::black_box(&out);
            let kernel = w.bytes() as f64 / best / 1e9;
            let probe = cpu_bandwidth(threads, w.bytes()).bytes_per_s / 1e9;
            println!(
                "{:5} round {round}: kernel {kernel:6.1} GB/s ({:.2} ms per product of {:.0} MB, best of {reps}), probe {probe:6.1} GB/s: {:.0} %",
                fmt.name(),
                best * 1e3,
                w.bytes() as f64 / 1e6,
                100.0 * kernel / probe
            );
        }
    }
}
