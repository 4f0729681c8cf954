//! Streaming aggregation of a load test's [`RequestRecord`]s into metrics, in memory that
//! does not grow with the run: each latency keeps an HDR histogram (3 significant digits),
//! exact running count/mean/variance/min/max, and a uniform reservoir of at most
//! `max_samples` raw samples. Up to the cap, statistics are the exact ones of every sample
//! (as everywhere in effbench); beyond it, percentiles come from the histogram, mean and
//! standard deviation stay exact, the bootstrap CIs are computed on the reservoir, and the
//! metric says so (`samples_total`, `source`).

use super::record::{ErrorKind, RequestRecord, TokenCounts};
use super::timeline::Timeline;
use crate::backend::Work;
use crate::metric::{name_hash, Metric, MetricId};
use crate::records::Slo;
use crate::stats::Stats;
use crate::trace::sampled_capped;
use crate::warnings::{Warning, WarningKind};
use hdrhistogram::Histogram;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

/// Source of the client-side timings.
pub const CLIENT_CLOCK: &str = "client wall-clock (monotonic)";
/// Appended to the source of a metric whose samples were capped.
pub const CAPPED_NOTE: &str =
    "; samples capped: percentiles from an HDR histogram (3 significant digits), mean/stdev exact, CIs and stored samples from a uniform reservoir";
/// p99 arrival lateness above which the generator is said not to keep its schedule (ms).
pub const LATE_P99_MS: f64 = 10.0;
/// Example messages kept per error kind.
const EXAMPLES_PER_KIND: usize = 3;

/// One latency distribution, bounded in memory.
struct Dist {
    hist: Histogram<u64>,
    reservoir: Vec<f64>,
    cap: usize,
    seen: u64,
    mean: f64,
    m2: f64,
    min: f64,
    max: f64,
    rng: ChaCha8Rng,
}

impl Dist {
    fn new(cap: usize, seed: u64) -> Dist {
        Dist {
            hist: Histogram::new(3).expect("3 significant digits is valid"),
            reservoir: Vec::new(),
            cap: cap.max(1),
            seen: 0,
            mean: 0.0,
            m2: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// Adds one sample in ms.
    fn add(&mut self, ms: f64) {
        if !ms.is_finite() {
            return;
        }
        self.seen += 1;
        // Welford's running mean and sum of squared deviations.
        let d = ms - self.mean;
        self.mean += d / self.seen as f64;
        self.m2 += d * (ms - self.mean);
        self.min = self.min.min(ms);
        self.max = self.max.max(ms);
        // `record` grows the auto-resizing histogram; `saturating_record` would clamp.
        let _ = self.hist.record((ms.max(0.0) * 1e6) as u64);
        if self.reservoir.len() < self.cap {
            self.reservoir.push(ms);
        } else {
            let j = self.rng.random_range(0..self.seen);
            if (j as usize) < self.cap {
                self.reservoir[j as usize] = ms;
            }
        }
    }

    fn metric(self, id: MetricId, seed: u64) -> Option<Metric> {
        if self.seen == 0 {
            return None;
        }
        if self.seen as usize <= self.cap {
            return Some(sampled_capped(id, self.reservoir, CLIENT_CLOCK, seed));
        }
        let n = self.seen as f64;
        let stdev = (self.m2 / (n - 1.0)).max(0.0).sqrt();
        let q = |p: f64| self.hist.value_at_quantile(p) as f64 / 1e6;
        let boot = Stats::from_samples(&self.reservoir, seed ^ name_hash(id.name()));
        let stats = Stats {
            count: self.seen as usize,
            mean: self.mean,
            stdev,
            cv_pct: if self.mean == 0.0 {
                0.0
            } else {
                100.0 * stdev / self.mean.abs()
            },
            min: self.min,
            p50: q(0.50),
            p90: q(0.90),
            p95: q(0.95),
            p99: q(0.99),
            max: self.max,
            ci95_mean: boot.as_ref().map_or([self.mean; 2], |b| b.ci95_mean),
            ci95_median: boot.as_ref().map_or([q(0.5); 2], |b| b.ci95_median),
            bootstrap_resamples: boot.as_ref().map_or(0, |b| b.bootstrap_resamples),
        };
        let mut m = Metric::scalar(id, self.mean, format!("{CLIENT_CLOCK}{CAPPED_NOTE}"));
        m.stats = Some(stats);
        m.samples = self.reservoir;
        m.samples_total = Some(self.seen);
        Some(m)
    }
}

/// Everything a load test's measured window observed, folded in request by request.
pub struct Aggregate {
    slo: Slo,
    seed: u64,
    ttft: Dist,
    tpot: Dist,
    itl: Dist,
    e2e: Dist,
    lateness: Dist,
    pub sent: u64,
    pub completed: u64,
    pub good: u64,
    failures: BTreeMap<ErrorKind, u64>,
    statuses: BTreeMap<u16, u64>,
    examples: BTreeMap<ErrorKind, Vec<String>>,
    input_tokens: u64,
    output_tokens: u64,
    requested_tokens: u64,
    short_outputs: u64,
    min_output: u64,
    spread: u64,
    chunk_counted: u64,
    retried: u64,
    timeline: Timeline,
}

/// What [`Aggregate::finish`] produces.
#[derive(Debug, Default)]
pub struct Summary {
    pub metrics: Vec<Metric>,
    pub notes: Vec<String>,
    pub warnings: Vec<Warning>,
    /// Work of the successful requests (for energy per token, cost ...).
    pub work: Work,
    /// Latency, throughput and concurrency over time ([`Timeline`]).
    pub series: Vec<crate::records::Series>,
}

impl Aggregate {
    /// `max_samples` caps the raw samples kept per latency metric.
    pub fn new(slo: Slo, max_samples: usize, seed: u64) -> Aggregate {
        let d = |name: &str| Dist::new(max_samples, seed ^ name_hash(name));
        Aggregate {
            slo,
            seed,
            ttft: d("ttft"),
            tpot: d("tpot"),
            itl: d("itl"),
            e2e: d("e2e"),
            lateness: d("lateness"),
            sent: 0,
            completed: 0,
            good: 0,
            failures: BTreeMap::new(),
            statuses: BTreeMap::new(),
            examples: BTreeMap::new(),
            input_tokens: 0,
            output_tokens: 0,
            requested_tokens: 0,
            short_outputs: 0,
            min_output: u64::MAX,
            spread: 0,
            chunk_counted: 0,
            retried: 0,
            timeline: Timeline::new(),
        }
    }

    /// Failed requests of a kind so far.
    pub fn failures(&self, kind: ErrorKind) -> u64 {
        self.failures.get(&kind).copied().unwrap_or(0)
    }

    pub fn failed(&self) -> u64 {
        self.failures.values().sum()
    }

    /// Folds in one measured request.
    pub fn add(&mut self, r: &RequestRecord) {
        self.sent += 1;
        self.timeline.add(r);
        self.lateness.add(r.lateness_ns as f64 / 1e6);
        if r.retried {
            self.retried += 1;
        }
        if let Some(s) = r.http_status.filter(|s| !(200..300).contains(s)) {
            *self.statuses.entry(s).or_default() += 1;
        }
        if let Some(f) = &r.failure {
            *self.failures.entry(f.kind).or_default() += 1;
            let ex = self.examples.entry(f.kind).or_default();
            if ex.len() < EXAMPLES_PER_KIND && !ex.contains(&f.message) {
                ex.push(f.message.clone());
            }
            return;
        }
        self.completed += 1;
        let l = r.latencies();
        self.ttft.add_opt(l.ttft);
        self.tpot.add_opt(l.tpot);
        self.e2e.add_opt(l.e2e);
        for x in &l.itl {
            self.itl.add(*x);
        }
        if self.slo.met_by(true, &l) {
            self.good += 1;
        }
        self.input_tokens += r.input_tokens;
        self.output_tokens += r.output_tokens;
        self.requested_tokens += r.requested_output_tokens;
        self.min_output = self.min_output.min(r.output_tokens);
        if r.output_tokens < r.requested_output_tokens {
            self.short_outputs += 1;
        }
        if r.streamed {
            match r.token_counts {
                TokenCounts::Exact => {}
                TokenCounts::Spread => self.spread += 1,
                TokenCounts::Chunks => self.chunk_counted += 1,
            }
        }
    }

    /// Metrics over a measured window of `window_s` seconds. `send_span_s` is the time from
    /// the first to the last send; `peak_concurrency` the most requests in flight at once.
    pub fn finish(self, window_s: f64, send_span_s: f64, peak_concurrency: u64) -> Summary {
        let mut out = Summary {
            series: self.timeline.series((window_s * 1e9) as u64),
            ..Default::default()
        };
        let seed = self.seed;
        let src = CLIENT_CLOCK;
        let m = &mut out.metrics;
        for (dist, id) in [
            (self.ttft, MetricId::Ttft),
            (self.tpot, MetricId::Tpot),
            (self.itl, MetricId::Itl),
            (self.e2e, MetricId::E2eLatency),
        ] {
            m.extend(dist.metric(id, seed));
        }
        let late = self.lateness.metric(MetricId::ArrivalLateness, seed);
        if let Some(p99) = late.as_ref().and_then(|l| l.stats.as_ref()).map(|s| s.p99) {
            if p99 > LATE_P99_MS {
                out.warnings.push(Warning {
                    kind: WarningKind::GeneratorLate,
                    message: format!(
                        "The load generator sent requests late: p99 arrival lateness {p99:.2} ms > {LATE_P99_MS} ms, so the offered load is lower and burstier than configured."
                    ),
                    hint: "Quiet the machine, give the generator more [serving] workers, or run it on another host.".into(),
                });
            }
        }
        m.extend(late);
        if window_s > 0.0 {
            let per_s = |x: u64| x as f64 / window_s;
            m.push(Metric::scalar(
                MetricId::RequestThroughput,
                per_s(self.completed),
                src,
            ));
            m.push(Metric::scalar(
                MetricId::OutputThroughput,
                per_s(self.output_tokens),
                src,
            ));
            m.push(Metric::scalar(
                MetricId::TotalThroughput,
                per_s(self.output_tokens + self.input_tokens),
                src,
            ));
            if !self.slo.is_empty() {
                m.push(Metric::scalar(MetricId::Goodput, per_s(self.good), src));
            }
        }
        if !self.slo.is_empty() && self.sent > 0 {
            m.push(Metric::scalar(
                MetricId::SloAttainment,
                100.0 * self.good as f64 / self.sent as f64,
                src,
            ));
        }
        if send_span_s > 0.0 && self.sent > 1 {
            // n sends span n-1 gaps.
            m.push(Metric::scalar(
                MetricId::SendRate,
                (self.sent - 1) as f64 / send_span_s,
                src,
            ));
        }
        m.push(Metric::scalar(
            MetricId::PeakConcurrency,
            peak_concurrency as f64,
            src,
        ));
        m.push(Metric::scalar(
            MetricId::RequestsCompleted,
            self.completed as f64,
            src,
        ));
        let failed: u64 = self.failures.values().sum();
        m.push(Metric::scalar(MetricId::RequestsFailed, failed as f64, src));
        if self.retried > 0 {
            m.push(Metric::scalar(
                MetricId::RequestsRetried,
                self.retried as f64,
                src,
            ));
        }
        for (kind, n) in &self.failures {
            m.push(Metric::scalar(kind.metric(), *n as f64, src));
        }
        out.work = Work {
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
            requests: self.completed,
        };
        let n = &mut out.notes;
        n.push(format!(
            "requests: {} sent, {} completed, {} failed{}",
            self.sent,
            self.completed,
            failed,
            if self.slo.is_empty() {
                String::new()
            } else {
                format!(", {} met the SLOs ({})", self.good, self.slo.describe())
            }
        ));
        if self.completed > 0 {
            n.push(format!(
                "tokens: {} prompt, {} output of {} asked for (fewest in one request: {})",
                self.input_tokens, self.output_tokens, self.requested_tokens, self.min_output
            ));
        }
        if !self.statuses.is_empty() {
            let s: Vec<String> = self
                .statuses
                .iter()
                .map(|(code, k)| format!("HTTP {code} x{k}"))
                .collect();
            n.push(format!("HTTP error statuses: {}", s.join(", ")));
        }
        for (kind, ex) in &self.examples {
            n.push(format!(
                "{} failures, e.g.: {}",
                kind.name(),
                ex.join(" | ")
            ));
        }
        if self.retried > 0 {
            n.push(format!(
                "{} request(s) found their kept-alive connection closed by the server before any answer and were sent once more on a fresh connection (their latencies count from the first send)",
                self.retried
            ));
        }
        if self.spread > 0 {
            n.push(format!(
                "{} streamed request(s) gave only a total token count: it was spread evenly over their chunks for ITL",
                self.spread
            ));
        }
        if self.chunk_counted > 0 {
            n.push(format!(
                "{} streamed request(s) reported no usage: one token per content chunk was assumed",
                self.chunk_counted
            ));
        }
        if self.short_outputs > 0 {
            out.warnings.push(Warning {
                kind: WarningKind::ShortOutputs,
                message: format!(
                    "{} of {} completed requests returned fewer output tokens than asked for (fewest: {}).",
                    self.short_outputs, self.completed, self.min_output
                ),
                hint: "Set [serving] ignore_eos = true (if the server supports it) so every request generates max_tokens.".into(),
            });
        }
        if failed > 0 {
            out.warnings.push(Warning {
                kind: WarningKind::RequestFailures,
                message: format!("{failed} of {} requests failed.", self.sent),
                hint: "See the failure counts by kind and the log's examples; raise [serving] timeout_s or lower the request rate.".into(),
            });
        }
        out
    }
}

impl Dist {
    fn add_opt(&mut self, x: Option<f64>) {
        if let Some(x) = x {
            self.add(x);
        }
    }
}

#[cfg(test)]
#[path = "aggregate_tests.rs"]
mod tests;
