//! Generation metrics from per-emission timestamps, with one set of formulas for every
//! backend (design.md §3): TTFT, TPOT, ITL, end-to-end latency, prefill throughput.

use crate::metric::{Metric, MetricId};

/// One output emission of a generation: `tokens` new tokens per sequence at `t_ns`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Emission {
    /// Nanoseconds since the request started (taken where the work runs).
    pub t_ns: u64,
    /// Tokens this emission carries per sequence (1 for an in-process decode step).
    pub tokens: u32,
}

/// What one generation request produced: the harness derives TTFT, TPOT, ITL and
/// end-to-end latency from it with one set of formulas for every backend.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GenerationTrace {
    /// Sequences generated together.
    pub batch: usize,
    /// Prompt tokens per sequence.
    pub prompt_tokens: usize,
    /// Emissions in time order; the first one ends prefill.
    pub emissions: Vec<Emission>,
}

impl GenerationTrace {
    /// Output tokens per sequence.
    pub fn output_tokens(&self) -> u64 {
        self.emissions.iter().map(|e| e.tokens as u64).sum()
    }
}

/// Raw samples cap per metric; beyond it, samples are thinned evenly and the total kept.
pub const MAX_STORED_SAMPLES: usize = 100_000;

const NS_PER_MS: f64 = 1e6;

/// Per-request latency samples (ms) of one trace.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct TraceLatencies {
    pub ttft: Option<f64>,
    pub e2e: Option<f64>,
    /// None when a sequence produced a single token (TPOT undefined).
    pub tpot: Option<f64>,
    pub itl: Vec<f64>,
    /// batch x prompt tokens / TTFT, tok/s.
    pub prefill_tps: Option<f64>,
}

/// TTFT = first emission; E2E = last emission; TPOT = (E2E - TTFT) / (tokens - 1);
/// ITL: each gap between emissions, an emission of k tokens giving k samples of gap/k.
pub fn latencies(trace: &GenerationTrace) -> TraceLatencies {
    let mut out = TraceLatencies::default();
    let (Some(first), Some(last)) = (trace.emissions.first(), trace.emissions.last()) else {
        return out;
    };
    let ttft = first.t_ns as f64 / NS_PER_MS;
    let e2e = last.t_ns as f64 / NS_PER_MS;
    out.ttft = Some(ttft);
    out.e2e = Some(e2e);
    let tokens = trace.output_tokens();
    if tokens > 1 {
        out.tpot = Some((e2e - ttft) / (tokens - 1) as f64);
    }
    for pair in trace.emissions.windows(2) {
        let gap = pair[1].t_ns.saturating_sub(pair[0].t_ns) as f64 / NS_PER_MS;
        let k = pair[1].tokens.max(1);
        out.itl
            .extend(std::iter::repeat_n(gap / k as f64, k as usize));
    }
    if ttft > 0.0 {
        out.prefill_tps = Some((trace.batch * trace.prompt_tokens) as f64 / (ttft / 1e3));
    }
    out
}

/// Keeps at most [`MAX_STORED_SAMPLES`] evenly spaced samples; returns the original count
/// when thinned.
pub fn cap_samples(samples: Vec<f64>) -> (Vec<f64>, Option<u64>) {
    if samples.len() <= MAX_STORED_SAMPLES {
        return (samples, None);
    }
    let total = samples.len();
    let step = total as f64 / MAX_STORED_SAMPLES as f64;
    let kept = (0..MAX_STORED_SAMPLES)
        .map(|i| samples[(i as f64 * step) as usize])
        .collect();
    (kept, Some(total as u64))
}

/// Latency metrics over many traces.
pub fn generation_metrics(traces: &[GenerationTrace], source: &str, seed: u64) -> Vec<Metric> {
    let mut ttft = Vec::new();
    let mut e2e = Vec::new();
    let mut tpot = Vec::new();
    let mut itl = Vec::new();
    let mut prefill = Vec::new();
    for t in traces {
        let l = latencies(t);
        ttft.extend(l.ttft);
        e2e.extend(l.e2e);
        tpot.extend(l.tpot);
        itl.extend(l.itl);
        prefill.extend(l.prefill_tps);
    }
    let mut out = Vec::new();
    for (id, samples) in [
        (MetricId::Ttft, ttft),
        (MetricId::Tpot, tpot),
        (MetricId::Itl, itl),
        (MetricId::E2eLatency, e2e),
        (MetricId::PrefillThroughput, prefill),
    ] {
        if samples.is_empty() {
            continue;
        }
        out.push(sampled_capped(id, samples, source, seed));
    }
    out
}

/// A sampled metric whose stats use every sample but whose stored samples are capped.
pub fn sampled_capped(id: MetricId, samples: Vec<f64>, source: &str, seed: u64) -> Metric {
    let mut m = Metric::sampled(id, samples, source, seed);
    let (kept, total) = cap_samples(std::mem::take(&mut m.samples));
    m.samples = kept;
    m.samples_total = total;
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace(points: &[(u64, u32)]) -> GenerationTrace {
        GenerationTrace {
            batch: 2,
            prompt_tokens: 10,
            emissions: points
                .iter()
                .map(|&(t, k)| Emission { t_ns: t, tokens: k })
                .collect(),
        }
    }

    #[test]
    fn hand_worked_single_token_steps() {
        // tokens at 50 ms, 60 ms, 75 ms, 80 ms
        let l = latencies(&trace(&[
            (50_000_000, 1),
            (60_000_000, 1),
            (75_000_000, 1),
            (80_000_000, 1),
        ]));
        assert_eq!(l.ttft, Some(50.0));
        assert_eq!(l.e2e, Some(80.0));
        // (80 - 50) / (4 - 1) = 10 ms
        assert_eq!(l.tpot, Some(10.0));
        assert_eq!(l.itl, vec![10.0, 15.0, 5.0]);
        // 2 x 10 prompt tokens in 50 ms = 400 tok/s
        assert_eq!(l.prefill_tps, Some(400.0));
    }

    #[test]
    fn chunks_of_several_tokens_count_as_several() {
        // first chunk 1 token at 20 ms, then a chunk of 3 tokens at 50 ms, then 1 at 60 ms
        let l = latencies(&trace(&[(20_000_000, 1), (50_000_000, 3), (60_000_000, 1)]));
        // 5 tokens: TPOT = (60 - 20) / 4 = 10 ms
        assert_eq!(l.tpot, Some(10.0));
        assert_eq!(l.itl, vec![10.0, 10.0, 10.0, 10.0]);
    }

    #[test]
    fn single_token_has_no_tpot() {
        let l = latencies(&trace(&[(5_000_000, 1)]));
        assert_eq!((l.ttft, l.tpot, l.itl.len()), (Some(5.0), None, 0));
        assert_eq!(latencies(&trace(&[])), TraceLatencies::default());
    }

    #[test]
    fn capping_keeps_count() {
        let (kept, total) = cap_samples((0..MAX_STORED_SAMPLES * 3).map(|i| i as f64).collect());
        assert_eq!(kept.len(), MAX_STORED_SAMPLES);
        assert_eq!(total, Some(3 * MAX_STORED_SAMPLES as u64));
        assert_eq!(kept[1], 3.0);
    }
}
