//! The runner's side of a window that a session measures itself
//! ([`crate::backend::Session::run_window`], serving load tests): [`MeterWindow`] starts the
//! meters at `begin` and stops them at `end`, so they wrap exactly the measured part, and
//! [`apply_window_report`] moves the session's report into the result.

use crate::backend::Work;
use crate::backend::{Window, WindowReport};
use crate::interrupt;
use crate::meters::{Meter, Reading};
use crate::progress::Progress;
use crate::records::RunResult;
use anyhow::{anyhow, Result};
use std::time::Instant;

/// The meters around a window that a session runs itself ([`Session::run_window`]).
pub(crate) struct MeterWindow<'a> {
    meters: &'a mut [Box<dyn Meter>],
    progress: &'a dyn Progress,
    t0: Option<Instant>,
    pub(crate) measured_s: f64,
    /// The meters' readings, once the window ended.
    pub(crate) reading: Option<Reading>,
}

impl<'a> MeterWindow<'a> {
    pub(crate) fn new(
        meters: &'a mut [Box<dyn Meter>],
        progress: &'a dyn Progress,
    ) -> MeterWindow<'a> {
        MeterWindow {
            meters,
            progress,
            t0: None,
            measured_s: 0.0,
            reading: None,
        }
    }
}

impl Window for MeterWindow<'_> {
    fn begin(&mut self) {
        if self.t0.is_some() {
            return;
        }
        self.progress.phase("measuring");
        for m in self.meters.iter_mut() {
            m.start();
        }
        self.t0 = Some(Instant::now());
    }
    fn end(&mut self) -> f64 {
        if self.reading.is_none() {
            if let Some(t0) = self.t0 {
                self.measured_s = t0.elapsed().as_secs_f64();
                let mut all = Reading::default();
                for m in self.meters.iter_mut() {
                    all.extend(m.stop(self.measured_s));
                }
                self.reading = Some(all);
            }
        }
        self.measured_s
    }
    fn progress(&self, done: u64, total: u64) {
        let elapsed = self.t0.map_or(0.0, |t| t.elapsed().as_secs_f64());
        self.progress.iteration(done, total, elapsed, 0.0);
    }
    fn phase(&self, name: &str) {
        self.progress.phase(name);
    }
}

/// Moves a window report into the result; its failure or interruption becomes the outcome.
pub(crate) fn apply_window_report(
    report: WindowReport,
    result: &mut RunResult,
    work: &mut Work,
) -> Result<()> {
    result.metrics.extend(report.metrics);
    result.series.extend(report.series);
    result.warnings.extend(report.warnings);
    result.log.extend(report.notes);
    result.iterations = report.units;
    *work = report.work;
    if report.interrupted {
        return Err(interrupt::Interrupted.into());
    }
    match report.failure {
        Some(reason) => Err(anyhow!(reason)),
        None => Ok(()),
    }
}

#[cfg(test)]
#[path = "runner_window_tests.rs"]
mod tests;
