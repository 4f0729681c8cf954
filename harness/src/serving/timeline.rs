//! A load test over time, for the run page: latency by send time, throughput and in-flight
//! requests by wall time, as [`Series`] with x in seconds since the start of the measured
//! window. Requests are folded in as they finish into time bins that start 10 ms wide; when
//! the window outgrows [`MAX_BINS`] bins, neighbours merge and the width doubles, so memory
//! stays bounded however long the run and the whole window is always covered.
//!
//! - `ttft_over_time`, `e2el_over_time`: mean over the requests *sent* in each bin (ms);
//! - `request_throughput_over_time`: requests that *finished* successfully per second;
//! - `output_throughput_over_time`: output tokens per second by emission time (a chunk's
//!   tokens count when it arrived; non-streamed responses at their end);
//! - `concurrency_over_time`: time-averaged requests in flight (send to finish, failures
//!   included).

use super::aggregate::CLIENT_CLOCK;
use super::record::RequestRecord;
use crate::records::Series;

/// Most bins kept.
pub const MAX_BINS: usize = 256;
const FIRST_WIDTH_NS: u64 = 10_000_000;

#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Bin {
    ttft_sum: f64,
    ttft_n: u64,
    e2el_sum: f64,
    e2el_n: u64,
    completed: u64,
    tokens: u64,
    /// Sum of in-flight time inside the bin (ns); / width = mean concurrency.
    busy_ns: f64,
}

impl Bin {
    fn merge(&mut self, o: &Bin) {
        self.ttft_sum += o.ttft_sum;
        self.ttft_n += o.ttft_n;
        self.e2el_sum += o.e2el_sum;
        self.e2el_n += o.e2el_n;
        self.completed += o.completed;
        self.tokens += o.tokens;
        self.busy_ns += o.busy_ns;
    }
}

/// Time-binned request statistics.
#[derive(Debug, Clone)]
pub struct Timeline {
    width_ns: u64,
    bins: Vec<Bin>,
}

impl Default for Timeline {
    fn default() -> Timeline {
        Timeline::new()
    }
}

impl Timeline {
    pub fn new() -> Timeline {
        Timeline {
            width_ns: FIRST_WIDTH_NS,
            bins: Vec::new(),
        }
    }

    /// Current bin width (ns).
    pub fn width_ns(&self) -> u64 {
        self.width_ns
    }

    /// Makes room for time `t_ns` (merging bins as needed); returns its bin.
    fn bin(&mut self, t_ns: u64) -> usize {
        while (t_ns / self.width_ns) as usize >= MAX_BINS {
            let merged: Vec<Bin> = self
                .bins
                .chunks(2)
                .map(|c| {
                    let mut b = c[0];
                    if let Some(o) = c.get(1) {
                        b.merge(o);
                    }
                    b
                })
                .collect();
            self.bins = merged;
            self.width_ns *= 2;
        }
        let i = (t_ns / self.width_ns) as usize;
        if self.bins.len() <= i {
            self.bins.resize(i + 1, Bin::default());
        }
        i
    }

    /// Folds in one finished request.
    pub fn add(&mut self, r: &RequestRecord) {
        let start = r.sent_ns;
        let end = start + r.done_ns.max(r.e2e_ns);
        // Room for the latest time first: merging moves earlier bins.
        self.bin(end);
        let s = self.bin(start);
        if r.ok() {
            let l = r.latencies();
            let b = &mut self.bins[s];
            if let Some(t) = l.ttft {
                b.ttft_sum += t;
                b.ttft_n += 1;
            }
            if let Some(e) = l.e2e {
                b.e2el_sum += e;
                b.e2el_n += 1;
            }
            let done = start + r.e2e_ns;
            let d = self.bin(done);
            self.bins[d].completed += 1;
            if r.streamed && !r.trace.emissions.is_empty() {
                for e in &r.trace.emissions {
                    let i = self.bin(start + e.t_ns);
                    self.bins[i].tokens += u64::from(e.tokens);
                }
            } else {
                self.bins[d].tokens += r.output_tokens;
            }
        }
        // In-flight time, split over the bins it covers.
        let w = self.width_ns;
        let mut t = start;
        while t < end {
            let i = (t / w) as usize;
            let bin_end = (i as u64 + 1) * w;
            let upto = bin_end.min(end);
            self.bins[i].busy_ns += (upto - t) as f64;
            t = upto;
        }
    }

    /// The series over a window of `window_ns` (bins past it are dropped).
    pub fn series(&self, window_ns: u64) -> Vec<Series> {
        let w = self.width_ns as f64;
        let n = self
            .bins
            .len()
            .min(((window_ns as f64 / w).ceil() as usize).max(1));
        let bins = &self.bins[..n];
        let x = |i: usize| (i as f64 + 0.5) * w / 1e9;
        let mk = |name: &str, y_unit: &str, points: Vec<[f64; 2]>| Series {
            name: name.into(),
            x_unit: "s".into(),
            y_unit: y_unit.into(),
            source: format!("{CLIENT_CLOCK}; bins of {} ms", fmt_ms(w / 1e6)),
            period_ms: None,
            points,
        };
        let mean = |sum: fn(&Bin) -> (f64, u64)| -> Vec<[f64; 2]> {
            bins.iter()
                .enumerate()
                .filter_map(|(i, b)| {
                    let (s, n) = sum(b);
                    (n > 0).then(|| [x(i), s / n as f64])
                })
                .collect()
        };
        let per_s = |v: fn(&Bin) -> f64| -> Vec<[f64; 2]> {
            bins.iter()
                .enumerate()
                .map(|(i, b)| [x(i), v(b) / (w / 1e9)])
                .collect()
        };
        let mut out = vec![
            mk("ttft_over_time", "ms", mean(|b| (b.ttft_sum, b.ttft_n))),
            mk("e2el_over_time", "ms", mean(|b| (b.e2el_sum, b.e2el_n))),
            mk(
                "request_throughput_over_time",
                "req/s",
                per_s(|b| b.completed as f64),
            ),
            mk(
                "output_throughput_over_time",
                "tok/s",
                per_s(|b| b.tokens as f64),
            ),
            mk(
                "concurrency_over_time",
                "requests",
                bins.iter()
                    .enumerate()
                    .map(|(i, b)| [x(i), b.busy_ns / w])
                    .collect(),
            ),
        ];
        out.retain(|s| !s.points.is_empty());
        out
    }
}

/// `10`, `20.5`: a bin width for the series' source text.
pub fn fmt_ms(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{Emission, GenerationTrace};

    fn rec(sent_ms: u64, ttft_ms: u64, e2e_ms: u64, tokens: u32) -> RequestRecord {
        RequestRecord {
            sent_ns: sent_ms * 1_000_000,
            streamed: true,
            output_tokens: tokens as u64,
            trace: GenerationTrace {
                batch: 1,
                prompt_tokens: 1,
                emissions: vec![
                    Emission {
                        t_ns: ttft_ms * 1_000_000,
                        tokens: 1,
                    },
                    Emission {
                        t_ns: e2e_ms * 1_000_000,
                        tokens: tokens - 1,
                    },
                ],
            },
            e2e_ns: e2e_ms * 1_000_000,
            done_ns: e2e_ms * 1_000_000,
            ..Default::default()
        }
    }

    fn find<'a>(s: &'a [Series], name: &str) -> &'a Series {
        s.iter().find(|x| x.name == name).unwrap()
    }

    #[test]
    fn hand_worked_bins() {
        let mut t = Timeline::new();
        // sent at 0 ms, first token at 5 ms, last (3 more) at 15 ms
        t.add(&rec(0, 5, 15, 4));
        // sent at 2 ms, TTFT 7 ms, ends at 2 + 8 = 10 ms
        t.add(&rec(2, 7, 8, 2));
        let s = t.series(20_000_000);
        // both sent in bin 0 (0-10 ms): mean TTFT (5 + 7) / 2
        assert_eq!(find(&s, "ttft_over_time").points, vec![[0.005, 6.0]]);
        // finished: request 2 at 10 ms (bin 1), request 1 at 15 ms (bin 1): 2 per 10 ms
        let thr = &find(&s, "request_throughput_over_time").points;
        assert_eq!(thr.len(), 2);
        assert!((thr[1][1] - 200.0).abs() < 1e-9, "{thr:?}");
        // tokens: bin 0 gets 1 (5 ms) + 1 (9 ms) = 2, bin 1 gets 3 (15 ms) + 1 (10 ms) = 4
        let tok = &find(&s, "output_throughput_over_time").points;
        assert!((tok[0][1] - 200.0).abs() < 1e-9 && (tok[1][1] - 400.0).abs() < 1e-9);
        // in flight: bin 0 has 10 ms + 8 ms busy -> 1.8; bin 1 has 5 ms -> 0.5
        let c = &find(&s, "concurrency_over_time").points;
        assert!(
            (c[0][1] - 1.8).abs() < 1e-9 && (c[1][1] - 0.5).abs() < 1e-9,
            "{c:?}"
        );
    }

    #[test]
    fn long_windows_merge_bins_and_keep_totals() {
        let mut t = Timeline::new();
        let n = 1000u64;
        for i in 0..n {
            t.add(&rec(i * 10, 1, 5, 3));
        }
        assert!(t.bins.len() <= MAX_BINS);
        assert!(t.width_ns() > FIRST_WIDTH_NS);
        let w = t.width_ns() as f64 / 1e9;
        let s = t.series(n * 10_000_000);
        let total: f64 = find(&s, "request_throughput_over_time")
            .points
            .iter()
            .map(|p| p[1] * w)
            .sum();
        assert!((total - n as f64).abs() < 1e-6, "{total}");
        let busy: f64 = find(&s, "concurrency_over_time")
            .points
            .iter()
            .map(|p| p[1] * w)
            .sum();
        // each request is in flight for 5 ms
        assert!((busy - n as f64 * 0.005).abs() < 1e-9, "{busy}");
    }
}
