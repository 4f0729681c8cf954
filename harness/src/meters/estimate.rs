//! The `estimate-tdp` fallback for CPU energy when no RAPL counter is readable:
//! energy ≈ TDP / threads per package × CPU seconds this process (and its waited-for
//! children) used in the window, i.e. the package's TDP share × CPU utilisation × time.
//!
//! Always labelled `estimate-tdp` and never counted as measured energy (see
//! [`super::is_estimate`]). The TDP comes from the `cpu_tdp_w` setting, else the suite's
//! `tdp_table`, else the built-in table below by CPU model name, else a catch-all of
//! 3.5 W per hardware thread. It ignores idle and uncore power, so it is a rough lower
//! figure for a busy machine; the choice made is recorded in `config.meters.cpu_tdp`.

use super::{Meter, Reading, ESTIMATE_TDP};
use crate::metric::{Metric, MetricId};
use crate::records::TdpChoice;

/// CPU model name from /proc/cpuinfo ("" when unknown).
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_default()
}

/// Hardware threads of this machine.
pub fn machine_threads() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

/// CPU seconds used by this process and its waited-for children (utime + stime + cutime +
/// cstime from /proc/self/stat, in USER_HZ = 100 ticks).
pub fn process_cpu_seconds() -> Option<f64> {
    let own = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = own.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    // fields after the command name start at field 3 (state); utime is field 14
    let ticks: u64 = (11..15)
        .map(|i| f.get(i).and_then(|x| x.parse::<u64>().ok()))
        .sum::<Option<u64>>()?;
    Some(ticks as f64 / 100.0)
}

/// CPU energy estimated from the TDP and this process's CPU time.
pub struct TdpEstimate {
    tdp: TdpChoice,
    /// Why no counter is used (RAPL's status), recorded with the estimate.
    why: String,
    start: Option<f64>,
}

impl TdpEstimate {
    pub fn new(tdp: TdpChoice, why: impl Into<String>) -> TdpEstimate {
        TdpEstimate {
            tdp,
            why: why.into(),
            start: None,
        }
    }
}

impl Meter for TdpEstimate {
    fn name(&self) -> &'static str {
        ESTIMATE_TDP
    }
    fn start(&mut self) {
        self.start = process_cpu_seconds();
    }
    fn stop(&mut self, window_s: f64) -> Reading {
        let mut r = Reading::default();
        let (Some(c0), Some(c1)) = (self.start, process_cpu_seconds()) else {
            r.notes
                .push("energy_cpu: /proc/self/stat not readable; no estimate".into());
            return r;
        };
        let cpu_s = (c1 - c0).max(0.0);
        let joules = self.tdp.watts_per_thread() * cpu_s;
        r.metrics
            .push(Metric::scalar(MetricId::EnergyCpu, joules, ESTIMATE_TDP));
        let util = if window_s > 0.0 {
            100.0 * cpu_s / (window_s * machine_threads() as f64)
        } else {
            0.0
        };
        r.notes.push(format!(
            "energy_cpu: estimate-tdp, not measured ({}): {:.3} W per thread ({} W / {} threads, {}) \
             x {cpu_s:.2} CPU-s ({util:.0} % of {} threads over {window_s:.2} s) = {joules:.3} J",
            self.why,
            self.tdp.watts_per_thread(),
            self.tdp.tdp_w,
            self.tdp.threads,
            self.tdp.source,
            machine_threads()
        ));
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::meters::{choose_tdp, CATCH_ALL_W_PER_THREAD};
    use crate::records::TdpRow;

    #[test]
    fn table_lookup_prefers_the_longest_match() {
        let c = choose_tdp(None, None, &[], "AMD EPYC 7763 64-Core Processor", 2);
        assert_eq!((c.tdp_w, c.threads), (280.0, 128));
        assert!(c.source.contains("'EPYC 7763'"), "{}", c.source);
        let c = choose_tdp(None, None, &[], "AMD EPYC", 2);
        assert!(c.source.contains("'EPYC'"), "{}", c.source);
        let c = choose_tdp(None, None, &[], "Some RISC-V core", 2);
        assert_eq!(c.watts_per_thread(), CATCH_ALL_W_PER_THREAD);
        assert!(c.source.starts_with("catch-all"), "{}", c.source);
    }

    #[test]
    fn settings_and_user_rows_come_first() {
        let rows = [TdpRow {
            cpu: "epyc".into(),
            tdp_w: 200.0,
            threads: 100,
        }];
        let c = choose_tdp(None, None, &rows, "AMD EPYC 7763", 2);
        assert_eq!(c.watts_per_thread(), 2.0);
        let c = choose_tdp(
            Some((65.0, "--cpu-tdp-w".into())),
            None,
            &rows,
            "AMD EPYC",
            2,
        );
        assert_eq!((c.tdp_w, c.threads), (65.0, 2));
        assert!(c.source.starts_with("--cpu-tdp-w"), "{}", c.source);
        let c = choose_tdp(Some((65.0, "x".into())), Some(13), &rows, "", 2);
        assert_eq!(c.threads, 13);
    }

    #[test]
    fn estimate_is_labelled_and_follows_cpu_time() {
        let tdp = TdpChoice {
            tdp_w: 100.0,
            threads: 10,
            source: "test".into(),
        };
        let mut m = TdpEstimate::new(tdp, "no RAPL here");
        m.start();
        let t = std::time::Instant::now();
        let mut x = 0u64;
        while t.elapsed().as_millis() < 300 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let r = m.stop(0.3);
        let e = &r.metrics[0];
        assert_eq!(e.name, MetricId::EnergyCpu);
        assert_eq!(e.source, ESTIMATE_TDP);
        assert!(super::super::is_estimate(&e.source));
        // 10 W per thread x the process's CPU time: at least most of this thread's 0.3 s,
        // at most every thread of the machine busy (other tests run in this process too)
        let most = 10.0 * 0.35 * machine_threads() as f64;
        assert!(e.value > 0.5 && e.value <= most, "{}", e.value);
        assert!(
            r.notes[0].contains("not measured (no RAPL here)"),
            "{}",
            r.notes[0]
        );
    }
}
