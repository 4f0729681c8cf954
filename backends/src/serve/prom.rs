//! The server's counters and histograms, rendered as Prometheus text at `/metrics`:
//! requests by outcome, prompt and generated tokens, queue depth, running sequences, and
//! latency histograms (queue wait, TTFT, time per output token, end to end) plus the decode
//! batch size. Lock-free atomics; fixed buckets.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency buckets, seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
/// Upper bounds of the batch-size buckets.
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];
/// Upper bounds of the tokens-per-step buckets.
const STEP_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0,
];

/// A cumulative histogram with fixed upper bounds.
pub struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    /// Sum in millionths of the unit.
    sum_micro: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            sum_micro: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }
    /// Adds a duration (seconds).
    pub fn observe(&self, d: Duration) {
        self.observe_value(d.as_secs_f64());
    }
    /// Adds a value.
    pub fn observe_value(&self, v: f64) {
        if let Some(i) = self.bounds.iter().position(|&b| v <= b) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.sum_micro
            .fetch_add((v * 1e6).round() as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }
    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cum = 0;
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            cum += c.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {cum}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_micro.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
    }
}

/// Everything `/metrics` reports.
pub struct Stats {
    /// Requests finished normally (stop or length).
    pub succeeded: AtomicU64,
    /// Requests whose client disconnected before the end.
    pub cancelled: AtomicU64,
    /// Requests aborted by shutdown.
    pub aborted: AtomicU64,
    /// Requests the model failed on.
    pub failed: AtomicU64,
    /// Requests refused with 4xx (bad input).
    pub rejected_4xx: AtomicU64,
    /// Requests refused with 503 (queue full or shutting down).
    pub rejected_503: AtomicU64,
    /// Prompt tokens of finished requests.
    pub prompt_tokens: AtomicU64,
    /// Tokens generated for finished requests.
    pub generation_tokens: AtomicU64,
    /// Requests waiting for a batch slot.
    pub queued: AtomicU64,
    /// Sequences in the running batch.
    pub running: AtomicU64,
    /// Arrival to admission, seconds.
    pub queue_wait: Histogram,
    /// Arrival to first token, seconds.
    pub ttft: Histogram,
    /// Time per output token after the first, seconds.
    pub tpot: Histogram,
    /// Arrival to the end, seconds.
    pub e2e: Histogram,
    /// Sequences per step.
    pub batch_size: Histogram,
    /// Tokens per step (decode tokens plus prompt chunks).
    pub step_tokens: Histogram,
}

impl Default for Stats {
    fn default() -> Stats {
        Stats {
            succeeded: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
            aborted: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            rejected_4xx: AtomicU64::new(0),
            rejected_503: AtomicU64::new(0),
            prompt_tokens: AtomicU64::new(0),
            generation_tokens: AtomicU64::new(0),
            queued: AtomicU64::new(0),
            running: AtomicU64::new(0),
            queue_wait: Histogram::new(LATENCY_BUCKETS),
            ttft: Histogram::new(LATENCY_BUCKETS),
            tpot: Histogram::new(LATENCY_BUCKETS),
            e2e: Histogram::new(LATENCY_BUCKETS),
            batch_size: Histogram::new(BATCH_BUCKETS),
            step_tokens: Histogram::new(STEP_BUCKETS),
        }
    }
}

impl Stats {
    /// Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP effbench_requests_total Requests by outcome.\n# TYPE effbench_requests_total counter"
        );
        for (outcome, v) in [
            ("success", &self.succeeded),
            ("cancelled", &self.cancelled),
            ("aborted", &self.aborted),
            ("failed", &self.failed),
            ("rejected_4xx", &self.rejected_4xx),
            ("rejected_503", &self.rejected_503),
        ] {
            let _ = writeln!(
                out,
                "effbench_requests_total{{outcome=\"{outcome}\"}} {}",
                get(v)
            );
        }
        for (name, help, kind, v) in [
            (
                "effbench_prompt_tokens_total",
                "Prompt tokens processed.",
                "counter",
                &self.prompt_tokens,
            ),
            (
                "effbench_generation_tokens_total",
                "Tokens generated.",
                "counter",
                &self.generation_tokens,
            ),
            (
                "effbench_queue_depth",
                "Requests waiting for a batch slot.",
                "gauge",
                &self.queued,
            ),
            (
                "effbench_running_requests",
                "Sequences in the running batch.",
                "gauge",
                &self.running,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}",
                get(v)
            );
        }
        self.queue_wait.render(
            &mut out,
            "effbench_queue_wait_seconds",
            "Time from arrival to admission into the batch.",
        );
        self.ttft.render(
            &mut out,
            "effbench_time_to_first_token_seconds",
            "Time from arrival to the first generated token.",
        );
        self.tpot.render(
            &mut out,
            "effbench_time_per_output_token_seconds",
            "Mean time per output token after the first, per request.",
        );
        self.e2e.render(
            &mut out,
            "effbench_e2e_request_latency_seconds",
            "Time from arrival to the last token.",
        );
        self.batch_size.render(
            &mut out,
            "effbench_decode_batch_size",
            "Sequences in the batch per step (prefilling or decoding).",
        );
        self.step_tokens.render(
            &mut out,
            "effbench_step_tokens",
            "Tokens per forward pass (decode tokens plus prompt chunks).",
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let s = Stats::default();
        s.ttft.observe(Duration::from_millis(3));
        s.ttft.observe(Duration::from_millis(20));
        s.ttft.observe(Duration::from_secs(100));
        let text = s.render();
        assert!(text.contains("effbench_time_to_first_token_seconds_bucket{le=\"0.005\"} 1\n"));
        assert!(text.contains("effbench_time_to_first_token_seconds_bucket{le=\"0.025\"} 2\n"));
        assert!(text.contains("effbench_time_to_first_token_seconds_bucket{le=\"60\"} 2\n"));
        assert!(text.contains("effbench_time_to_first_token_seconds_bucket{le=\"+Inf\"} 3\n"));
        assert!(text.contains("effbench_time_to_first_token_seconds_count 3\n"));
        assert!(text.contains("effbench_time_to_first_token_seconds_sum 100.023\n"));
    }
}
