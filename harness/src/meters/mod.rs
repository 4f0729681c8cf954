//! Meters: measurements taken around the measured window (never the warm-up), by the
//! runner, whatever the backend. Each meter is one module behind the [`Meter`] trait; a
//! meter that samples does so on a background thread ([`sampler`]) at the configured period.
//!
//! - [`memory`]: peak RSS (VmHWM) and the sampled RSS series; [`cpu`]: busy-machine share.
//! - [`gpu`] (through [`nvml`]): GPU energy, power, memory, utilisation, clocks, temperature.
//! - [`rapl`]: CPU package and DRAM energy; [`estimate`]: the labelled `estimate-tdp`
//!   fallback when RAPL cannot be read.
//! - [`derived`]: total/net energy, per-work energy, carbon and cost; [`idle`]: the idle
//!   baseline; [`survey`]: what works on this machine (`effbench meters`).
//! - [`settings`]: the `[meters]` suite table and its resolution.

pub mod cpu;
pub mod derived;
pub mod estimate;
pub mod gpu;
pub mod idle;
pub mod memory;
pub mod nvml;
pub mod rapl;
pub mod sampler;
pub mod settings;
pub mod survey;

use crate::metric::{Metric, MetricId};
use crate::records::RunSpec;
use crate::records::Series;
use crate::records::{GpuSelection, MeterSettings};
use crate::warnings::Warning;
use std::time::Duration;

pub use crate::metric::is_estimate;

// Sources of meter figures (the `source` of each metric).
pub const NVML_COUNTER: &str = "nvml-energy-counter";
pub const NVML_POWER: &str = "nvml-power-samples";
pub const NVML: &str = "nvml";
pub const RAPL: &str = "rapl";
pub const ESTIMATE_TDP: &str = "estimate-tdp";
pub const PROCFS_RSS: &str = "procfs VmRSS";

/// The per-component energy metrics that `energy` adds up.
pub const COMPONENTS: &[MetricId] = &[
    MetricId::EnergyGpu,
    MetricId::EnergyCpu,
    MetricId::EnergyDram,
];

/// What a meter saw over one window.
#[derive(Debug, Default)]
pub struct Reading {
    pub metrics: Vec<Metric>,
    pub series: Vec<Series>,
    pub warnings: Vec<Warning>,
    /// Lines for the result's log (e.g. which fallback was used and why).
    pub notes: Vec<String>,
}

impl Reading {
    pub fn extend(&mut self, other: Reading) {
        self.metrics.extend(other.metrics);
        self.series.extend(other.series);
        self.warnings.extend(other.warnings);
        self.notes.extend(other.notes);
    }
}

/// A meter started and stopped around the measured window.
pub trait Meter: Send {
    fn name(&self) -> &'static str;
    /// Called right before the first measured iteration.
    fn start(&mut self);
    /// Called right after the last measured iteration; `window_s` is the measured wall time.
    fn stop(&mut self, window_s: f64) -> Reading;
}

/// The process meters (memory, busy machine) with default settings.
pub fn default_meters() -> Vec<Box<dyn Meter>> {
    vec![
        Box::new(memory::PeakRss::new()),
        Box::new(cpu::CpuShare::new()),
    ]
}

fn period(s: &MeterSettings) -> Duration {
    crate::limits::seconds_clamped(s.period_ms / 1e3)
}

/// Every meter for a run: the energy meters (first, so their final samples are closest
/// to the window's end), process memory and the busy-machine check.
pub fn for_run(spec: &RunSpec) -> Vec<Box<dyn Meter>> {
    let mut out = energy_meters(&spec.meters, &device_of(spec), spec.seed);
    out.push(Box::new(memory::PeakRss::with_period(period(&spec.meters))));
    out.push(Box::new(cpu::CpuShare::new()));
    out
}

/// The run's device as written (`cpu`, `cuda:0`).
pub fn device_of(spec: &RunSpec) -> String {
    spec.device().map(|d| d.to_string()).unwrap_or_default()
}

/// The energy meters: the GPU meter when GPUs are selected for `device` (`cpu`, `cuda:N`),
/// and RAPL, or the `estimate-tdp` fallback with the reason RAPL is unavailable.
pub fn energy_meters(s: &MeterSettings, device: &str, seed: u64) -> Vec<Box<dyn Meter>> {
    let mut out: Vec<Box<dyn Meter>> = Vec::new();
    if let Some(g) = gpu_meter(s, device, seed) {
        out.push(Box::new(g));
    }
    match rapl::discover(std::path::Path::new(&s.powercap_root)) {
        Ok(domains) => out.push(Box::new(rapl::RaplMeter::new(domains, period(s)))),
        Err(why) => out.push(Box::new(estimate::TdpEstimate::new(s.cpu_tdp.clone(), why))),
    }
    out
}

/// The GPU meter for a selection, `None` when no GPU is wanted.
fn gpu_meter(s: &MeterSettings, device: &str, seed: u64) -> Option<gpu::GpuMeter> {
    let wanted = match &s.gpus {
        GpuSelection::None => false,
        GpuSelection::Auto => device.starts_with("cuda"),
        GpuSelection::All | GpuSelection::List(_) => true,
    };
    if !wanted {
        return None;
    }
    let chosen = nvml::shared().and_then(|n| {
        let idx = nvml::select(&n, &s.gpus, device)?;
        Ok((n, idx))
    });
    Some(match chosen {
        Ok((_, idx)) if idx.is_empty() => gpu::GpuMeter::unavailable("NVML: no GPU found"),
        Ok((n, idx)) => {
            let devices = idx
                .iter()
                .map(|&i| gpu::GpuDevice {
                    index: i,
                    name: nvml::name(&n, i),
                })
                .collect();
            gpu::GpuMeter::new(
                devices,
                Box::new(nvml::NvmlSource::new(n, idx)),
                period(s),
                seed,
            )
        }
        Err(why) => gpu::GpuMeter::unavailable(why),
    })
}
