//! Process memory from procfs: peak RSS (VmHWM) over the measured window, and the RSS
//! (VmRSS) sampled on a background thread as the `rss` series.
//!
//! VmHWM is the process's high-water mark since start; writing "5" to /proc/self/clear_refs
//! (Linux >= 4.0) resets it to the current RSS, so the peak is that of the window. If the
//! reset is refused the peak covers the whole process so far, and the result says so.

use super::sampler::Sampler;
use super::{Meter, Reading, PROCFS_RSS};
use crate::metric::{Metric, MetricId};
use crate::records::Series;
use std::time::Duration;

pub struct PeakRss {
    reset_ok: bool,
    period: Duration,
    sampler: Option<Sampler<Option<u64>>>,
}

impl PeakRss {
    pub fn new() -> PeakRss {
        PeakRss::with_period(Duration::from_millis(100))
    }
    /// RSS sampled every `period`.
    pub fn with_period(period: Duration) -> PeakRss {
        PeakRss {
            reset_ok: false,
            period,
            sampler: None,
        }
    }
}

impl Default for PeakRss {
    fn default() -> Self {
        PeakRss::new()
    }
}

/// A `/proc/self/status` field in bytes (the file reports kB).
pub fn status_bytes(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        let kb: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kb * 1024)
    })
}

fn read_status_field(field: &str) -> Option<u64> {
    status_bytes(&std::fs::read_to_string("/proc/self/status").ok()?, field)
}

/// Current resident set size of this process.
pub fn current_rss() -> Option<u64> {
    read_status_field("VmRSS")
}

/// Peak resident set size of this process (since start or the last reset).
pub fn peak_rss() -> Option<u64> {
    read_status_field("VmHWM")
}

impl Meter for PeakRss {
    fn name(&self) -> &'static str {
        "memory"
    }
    fn start(&mut self) {
        self.reset_ok = std::fs::write("/proc/self/clear_refs", "5").is_ok();
        self.sampler = Some(Sampler::start(self.period, current_rss));
    }
    fn stop(&mut self, _window_s: f64) -> Reading {
        let mut r = Reading::default();
        if let Some(s) = self.sampler.take() {
            let points: Vec<[f64; 2]> = s
                .stop()
                .into_iter()
                .filter_map(|(t, v)| v.map(|b| [t, b as f64]))
                .collect();
            if !points.is_empty() {
                r.series.push(Series {
                    name: "rss".into(),
                    x_unit: "s".into(),
                    y_unit: "bytes".into(),
                    source: PROCFS_RSS.into(),
                    period_ms: Some(self.period.as_secs_f64() * 1e3),
                    points,
                });
            }
        }
        match peak_rss() {
            Some(b) => {
                let source = if self.reset_ok {
                    "procfs VmHWM"
                } else {
                    "procfs VmHWM (process lifetime)"
                };
                r.metrics
                    .push(Metric::scalar(MetricId::PeakRss, b as f64, source));
                if !self.reset_ok {
                    r.notes.push(
                        "peak_rss: /proc/self/clear_refs could not be written, so the peak covers \
                         the whole process, not only the measured window"
                            .into(),
                    );
                }
            }
            None => r
                .notes
                .push("peak_rss: /proc/self/status not readable; not measured".into()),
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_fields() {
        let s = "Name:\tx\nVmHWM:\t  123456 kB\nVmRSS:\t   1000 kB\n";
        assert_eq!(status_bytes(s, "VmHWM"), Some(123456 * 1024));
        assert_eq!(status_bytes(s, "VmRSS"), Some(1000 * 1024));
        assert_eq!(status_bytes(s, "VmSwap"), None);
    }

    #[test]
    fn peak_covers_an_allocation_in_the_window() {
        let mut m = PeakRss::new();
        m.start();
        let v = vec![1u8; 64 << 20];
        std::hint::black_box(&v);
        let r = m.stop(0.1);
        let peak = r.metrics[0].value;
        assert!(peak >= (64 << 20) as f64, "peak {peak}");
        let rss = &r.series[0];
        assert_eq!((rss.name.as_str(), rss.period_ms), ("rss", Some(100.0)));
        assert!(rss.points.len() >= 2, "a sample at start and one at stop");
        assert!(rss.points.last().unwrap()[1] >= (64 << 20) as f64);
    }
}
