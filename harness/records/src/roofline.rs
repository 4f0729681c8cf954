//! The roofline of an inference run: where decode and prefill sit under the device's two
//! measured roofs, memory bandwidth (env.peak_bandwidth, a streaming-read probe) and matmul
//! throughput (env.peak_flops, the probe behind MFU).
//!
//! A backend that knows its model's per-token work reports it as [`ModelWork`] in the model
//! info; the runner then derives, from the measured TTFT and TPOT:
//! - `decode_bandwidth` = bytes one decode step must read / TPOT, where the bytes are the
//!   weights multiplied per token (once per step, whatever the batch) plus the KV cache of
//!   every sequence, averaged over the generated positions: `W + b · kv · (P + G / 2)`;
//! - `mbu` = decode_bandwidth / peak bandwidth;
//! - `prefill_achieved_flops` = forward FLOPs of the prompts / TTFT, with the FLOPs counted
//!   as for training MFU (docs/training.md): `b · (P · (F + A · P) + H)`, `F` the block
//!   matmuls per token, `A` attention per token and attended position (all `P × P`
//!   positions, as training MFU counts them, although inference skips most of the masked
//!   half), `H` the output head once per sequence (only the last position's logits
//!   are computed);
//! - `prefill_mfu` = prefill_achieved_flops / peak FLOP/s.

use crate::metric::{Metric, MetricId};
use serde::{Deserialize, Serialize};

/// The highest matmul throughput measured on a device in one dtype: the denominator of MFU.
/// Measured, never taken from a spec sheet, so MFU is relative to what this device and
/// software stack can actually do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PeakFlops {
    /// `cpu` or `cuda:N`.
    pub device: String,
    /// `f32`, `bf16` ...
    pub dtype: String,
    /// Best FLOP/s seen (2 n^3 FLOPs per n x n matmul).
    pub flops_per_s: f64,
    /// Threads the CPU kernels used (0 on a GPU).
    pub threads: usize,
    /// How it was measured: sizes, repetitions, library.
    pub method: String,
}

/// The highest memory read bandwidth measured on a device: the denominator of MBU. Measured
/// (a streaming read of a buffer larger than the caches), never taken from a spec sheet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PeakBandwidth {
    /// `cpu` or `cuda:N`.
    pub device: String,
    /// Best bytes per second seen.
    pub bytes_per_s: f64,
    /// Threads that read (0 on a GPU).
    pub threads: usize,
    /// How it was measured: buffer size, passes, threads.
    pub method: String,
}

/// A model's work per token, as its backend runs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelWork {
    /// Bytes of the weights one decode step reads: every matrix multiplied per token (the
    /// output head included), as held in memory. An embedding lookup reads one row and is
    /// not counted.
    pub weight_bytes_per_step: u64,
    /// Bytes of keys and values one cached position holds, over all layers.
    pub kv_bytes_per_position: u64,
    /// Forward FLOPs per token of the blocks' matrices (2 per multiply-add).
    pub block_flops_per_token: f64,
    /// Forward FLOPs of the output head for one position.
    pub head_flops_per_token: f64,
    /// Attention FLOPs per token and attended position (scores and weighted values).
    pub attention_flops_per_position: f64,
}

/// The shape of the generation a run measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shape {
    pub batch: usize,
    pub prompt_len: usize,
    pub gen_len: usize,
}

impl ModelWork {
    /// Bytes one decode step reads, averaged over the generated positions.
    pub fn decode_bytes_per_step(&self, s: Shape) -> f64 {
        let positions = s.prompt_len as f64 + s.gen_len as f64 / 2.0;
        self.weight_bytes_per_step as f64
            + s.batch as f64 * self.kv_bytes_per_position as f64 * positions
    }

    /// Forward FLOPs of one prefill of the whole batch.
    pub fn prefill_flops(&self, s: Shape) -> f64 {
        let p = s.prompt_len as f64;
        s.batch as f64
            * (p * (self.block_flops_per_token + self.attention_flops_per_position * p)
                + self.head_flops_per_token)
    }
}

const SOURCE_BW: &str = "analytic bytes per decode step / TPOT";
const SOURCE_FLOPS: &str = "analytic prefill FLOPs / TTFT";

/// The roofline metrics of a run from its TTFT and TPOT means (ms); a roof that was not
/// measured leaves its utilisation out.
pub fn derive(
    work: &ModelWork,
    shape: Shape,
    ttft_ms: Option<f64>,
    tpot_ms: Option<f64>,
    bandwidth: Option<&PeakBandwidth>,
    flops: Option<&PeakFlops>,
) -> Vec<Metric> {
    let mut out = Vec::new();
    if let Some(tpot) = tpot_ms.filter(|t| *t > 0.0 && shape.gen_len > 1) {
        let bw = work.decode_bytes_per_step(shape) / (tpot / 1e3);
        out.push(Metric::scalar(
            MetricId::DecodeBandwidth,
            bw / 1e9,
            SOURCE_BW,
        ));
        if let Some(p) = bandwidth.filter(|p| p.bytes_per_s > 0.0) {
            out.push(Metric::scalar(
                MetricId::Mbu,
                100.0 * bw / p.bytes_per_s,
                format!("{SOURCE_BW} / streaming-read probe (env.peak_bandwidth)"),
            ));
        }
    }
    if let Some(ttft) = ttft_ms.filter(|t| *t > 0.0) {
        let achieved = work.prefill_flops(shape) / (ttft / 1e3);
        out.push(Metric::scalar(
            MetricId::PrefillAchievedFlops,
            achieved,
            SOURCE_FLOPS,
        ));
        if let Some(p) = flops.filter(|p| p.flops_per_s > 0.0) {
            out.push(Metric::scalar(
                MetricId::PrefillMfu,
                100.0 * achieved / p.flops_per_s,
                format!("{SOURCE_FLOPS} / matmul probe (env.peak_flops)"),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn work() -> ModelWork {
        ModelWork {
            weight_bytes_per_step: 1_000_000,
            kv_bytes_per_position: 1_000,
            block_flops_per_token: 2e6,
            head_flops_per_token: 5e5,
            attention_flops_per_position: 100.0,
        }
    }

    #[test]
    fn hand_worked_decode_and_prefill() {
        let s = Shape {
            batch: 2,
            prompt_len: 10,
            gen_len: 20,
        };
        // 1e6 + 2 x 1000 x (10 + 10) = 1.04e6 bytes per step
        assert_eq!(work().decode_bytes_per_step(s), 1_040_000.0);
        // 2 x (10 x (2e6 + 100 x 10) + 5e5) = 2 x 20_510_000
        assert_eq!(work().prefill_flops(s), 41_020_000.0);
        let bw = PeakBandwidth {
            device: "cpu".into(),
            bytes_per_s: 2.08e9,
            threads: 2,
            method: "test".into(),
        };
        let fl = PeakFlops {
            device: "cpu".into(),
            dtype: "f32".into(),
            flops_per_s: 4.102e9,
            threads: 2,
            method: "test".into(),
        };
        // TPOT 1 ms -> 1.04 GB/s = 50 % of 2.08 GB/s; TTFT 100 ms -> 410.2 MFLOP/s = 10 %
        let m = derive(&work(), s, Some(100.0), Some(1.0), Some(&bw), Some(&fl));
        let get = |id| m.iter().find(|x| x.name == id).unwrap().value;
        assert!((get(MetricId::DecodeBandwidth) - 1.04).abs() < 1e-12);
        assert!((get(MetricId::Mbu) - 50.0).abs() < 1e-9);
        assert!((get(MetricId::PrefillAchievedFlops) - 4.102e8).abs() < 1e-3);
        assert!((get(MetricId::PrefillMfu) - 10.0).abs() < 1e-9);
        // No probes: the rates only; a single generated token has no TPOT.
        let m = derive(&work(), s, Some(100.0), Some(1.0), None, None);
        assert_eq!(m.len(), 2);
        let one = Shape { gen_len: 1, ..s };
        assert_eq!(derive(&work(), one, None, Some(1.0), None, None).len(), 0);
    }
}
