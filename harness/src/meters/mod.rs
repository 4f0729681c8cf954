//! Meters: measurements taken around the measured window (never the warm-up), by the
//! runner, whatever the backend. Each meter is one module behind the [`Meter`] trait.

pub mod cpu;
pub mod memory;

use crate::metric::Metric;
use crate::result::Series;
use crate::warnings::Warning;

/// What a meter saw over one window.
#[derive(Debug, Default)]
pub struct Reading {
    pub metrics: Vec<Metric>,
    pub series: Vec<Series>,
    pub warnings: Vec<Warning>,
    /// Lines for the result's log (e.g. which fallback was used and why).
    pub notes: Vec<String>,
}

/// A meter started and stopped around the measured window.
pub trait Meter: Send {
    fn name(&self) -> &'static str;
    /// Called right before the first measured iteration.
    fn start(&mut self);
    /// Called right after the last measured iteration; `window_s` is the measured wall time.
    fn stop(&mut self, window_s: f64) -> Reading;
}

/// The meters every run gets on this machine.
pub fn default_meters() -> Vec<Box<dyn Meter>> {
    vec![
        Box::new(memory::PeakRss::new()),
        Box::new(cpu::CpuShare::new()),
    ]
}
