//! Re-quantizes a llama GGUF into another type mix with effbench's quantizer
//! ([`effbench_backends::compress::requant`]), e.g. the Q8_0 and Q4_K_M-style files of
//! scripts/vs-llamacpp.sh:
//!
//! ```sh
//! cargo run --release -p effbench-backends --example requantize -- SRC.gguf DST.gguf q4_k_m
//! ```

use anyhow::{Context, Result};
use effbench_backends::compress::requant::{requantize_gguf, Mix};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: requantize SRC.gguf DST.gguf q8_0|q4_k_m";
    let src = args.get(1).context(usage)?;
    let dst = args.get(2).context(usage)?;
    let mix = Mix::parse(args.get(3).context(usage)?)?;
    let counts = requantize_gguf(src.as_ref(), dst.as_ref(), mix)?;
    let text: Vec<String> = counts.iter().map(|(t, n)| format!("{n} x {t}")).collect();
    println!("wrote {dst}: matrices {}", text.join(", "));
    Ok(())
}
