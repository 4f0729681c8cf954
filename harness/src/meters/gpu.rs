//! GPU meter: samples power, the energy counter, memory, utilisation, SM clock,
//! temperature and throttle reasons of the selected GPUs on a background thread, then
//! turns the samples into metrics, series and warnings ([`summarize`], a pure function).
//!
//! Energy is the difference of NVML's total-energy counter (Volta and newer) when it moved
//! at least twice in the window; otherwise (unsupported, or a window shorter than the
//! counter's update period, which would read 0 J) it is the trapezoid of the sampled power
//! over the window (power x time for a single sample), with a `short_meter_window`
//! warning when the counter existed but was too coarse.

use super::sampler::{energy_from_power, Sampler};
use super::{Meter, Reading, NVML, NVML_COUNTER, NVML_POWER};
use crate::metric::{Metric, MetricId};
use crate::records::Series;
use crate::trace::sampled_capped;
use crate::warnings::{Warning, WarningKind};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One read of one GPU; `None` where the device does not support a field.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GpuSample {
    pub power_mw: Option<u32>,
    pub energy_mj: Option<u64>,
    pub mem_used: Option<u64>,
    /// Memory of this process and its children, when NVML lists them.
    pub proc_mem: Option<u64>,
    pub util_pct: Option<u32>,
    pub sm_clock_mhz: Option<u32>,
    pub temp_c: Option<u32>,
    /// NVML throttle-reason bits.
    pub throttle: Option<u64>,
}

/// Something that reads the metered GPUs (NVML in production).
pub trait GpuSource: Send {
    /// One sample per metered GPU, in the meter's device order.
    fn sample(&mut self) -> Vec<GpuSample>;
}

/// A metered GPU.
#[derive(Debug, Clone, PartialEq)]
pub struct GpuDevice {
    pub index: u32,
    pub name: String,
}

type SharedSource = Arc<Mutex<Box<dyn GpuSource>>>;

pub struct GpuMeter {
    devices: Vec<GpuDevice>,
    /// `Err`: why the GPUs cannot be read (reported in the run's log).
    source: Result<SharedSource, String>,
    period: Duration,
    seed: u64,
    sampler: Option<Sampler<Vec<GpuSample>>>,
}

impl GpuMeter {
    pub fn new(
        devices: Vec<GpuDevice>,
        source: Box<dyn GpuSource>,
        period: Duration,
        seed: u64,
    ) -> GpuMeter {
        GpuMeter {
            devices,
            source: Ok(Arc::new(Mutex::new(source))),
            period,
            seed,
            sampler: None,
        }
    }

    /// A meter that only reports why GPUs cannot be metered; the run goes on without them.
    pub fn unavailable(reason: impl Into<String>) -> GpuMeter {
        GpuMeter {
            devices: vec![],
            source: Err(reason.into()),
            period: Duration::from_millis(100),
            seed: 0,
            sampler: None,
        }
    }
}

impl Meter for GpuMeter {
    fn name(&self) -> &'static str {
        NVML
    }
    fn start(&mut self) {
        if let Ok(src) = &self.source {
            let src = src.clone();
            self.sampler = Some(Sampler::start(self.period, move || {
                src.lock().map(|mut s| s.sample()).unwrap_or_default()
            }));
        }
    }
    fn stop(&mut self, window_s: f64) -> Reading {
        match (&self.source, self.sampler.take()) {
            (Err(why), _) => Reading {
                notes: vec![format!("GPU meter unavailable, GPUs not metered: {why}")],
                ..Default::default()
            },
            (Ok(_), Some(s)) => summarize(
                &self.devices,
                &s.stop(),
                window_s,
                self.period.as_secs_f64() * 1e3,
                self.seed,
            ),
            (Ok(_), None) => Reading::default(),
        }
    }
}

fn series(name: String, unit: &str, source: &str, period_ms: f64, points: Vec<[f64; 2]>) -> Series {
    Series {
        name,
        x_unit: "s".into(),
        y_unit: unit.into(),
        source: source.into(),
        period_ms: Some(period_ms),
        points,
    }
}

/// Energy of one GPU over the window: (joules, source), plus notes and warnings.
fn gpu_energy(
    dev: &GpuDevice,
    power: &[(f64, f64)],
    counter: &[(f64, u64)],
    window_s: f64,
    period_ms: f64,
    r: &mut Reading,
) -> Option<(f64, &'static str)> {
    let changes = counter.windows(2).filter(|w| w[0].1 != w[1].1).count();
    let trapezoid = energy_from_power(power, window_s);
    let label = format!("gpu{} ({})", dev.index, dev.name);
    let monotonic = counter.windows(2).all(|w| w[0].1 <= w[1].1);
    if counter.len() >= 2 && changes >= 2 && monotonic {
        let j = (counter[counter.len() - 1].1 - counter[0].1) as f64 / 1e3;
        r.notes.push(match trapezoid {
            Some(t) if j > 0.0 => format!(
                "{label}: energy counter {j:.3} J, power trapezoid {t:.3} J ({:+.1} %), \
                 {} power samples every {period_ms:.0} ms",
                100.0 * (t - j) / j,
                power.len()
            ),
            _ => format!("{label}: energy counter {j:.3} J (no power samples to compare)"),
        });
        return Some((j, NVML_COUNTER));
    }
    let t = trapezoid?;
    if counter.len() >= 2 {
        r.warnings.push(Warning {
            kind: WarningKind::ShortMeterWindow,
            message: format!(
                "GPU {}: the NVML energy counter changed {changes} time(s) in the {:.0} ms window, \
                 too coarse to use; GPU energy is sampled power x time instead ({t:.3} J).",
                dev.index,
                window_s * 1e3
            ),
            hint: "Measure longer windows: raise [measure] min_duration_s (1 s or more).".into(),
        });
    } else if counter.is_empty() {
        r.notes.push(format!(
            "{label}: no energy counter (needs Volta or newer); energy from power samples"
        ));
    }
    r.notes.push(format!(
        "{label}: power trapezoid {t:.3} J from {} power samples every {period_ms:.0} ms",
        power.len()
    ));
    Some((t, NVML_POWER))
}

/// Turns per-tick samples of `devices` into a reading.
pub fn summarize(
    devices: &[GpuDevice],
    ticks: &[(f64, Vec<GpuSample>)],
    window_s: f64,
    period_ms: f64,
    seed: u64,
) -> Reading {
    let mut r = Reading::default();
    let n = ticks.len() as u64;
    let field = |k: usize, f: &dyn Fn(&GpuSample) -> Option<f64>| -> Vec<(f64, f64)> {
        ticks
            .iter()
            .filter_map(|(t, s)| s.get(k).and_then(f).map(|v| (*t, v)))
            .collect()
    };
    let mut energy = 0.0;
    let mut sources: Vec<&str> = Vec::new();
    let (mut util, mut clock, mut temp) = (Vec::new(), Vec::new(), Vec::new());
    for (k, dev) in devices.iter().enumerate() {
        let power = field(k, &|s| s.power_mw.map(|p| p as f64 / 1e3));
        let counter: Vec<(f64, u64)> = ticks
            .iter()
            .filter_map(|(t, s)| s.get(k).and_then(|s| s.energy_mj).map(|e| (*t, e)))
            .collect();
        match gpu_energy(dev, &power, &counter, window_s, period_ms, &mut r) {
            Some((j, src)) => {
                energy += j;
                if !sources.contains(&src) {
                    sources.push(src);
                }
            }
            None => r.notes.push(format!(
                "gpu{}: neither energy counter nor power readable; no GPU energy",
                dev.index
            )),
        }
        let mut add = |name: &str, unit: &str, pts: &[(f64, f64)], into: Option<&mut Vec<f64>>| {
            if pts.is_empty() {
                return;
            }
            if let Some(v) = into {
                v.extend(pts.iter().map(|p| p.1));
            }
            r.series.push(series(
                format!("gpu{}_{name}", dev.index),
                unit,
                NVML,
                period_ms,
                pts.iter().map(|p| [p.0, p.1]).collect(),
            ));
        };
        add("power", "W", &power, None);
        add(
            "memory_used",
            "bytes",
            &field(k, &|s| s.mem_used.map(|b| b as f64)),
            None,
        );
        let u = field(k, &|s| s.util_pct.map(f64::from));
        add("utilization", "%", &u, Some(&mut util));
        let c = field(k, &|s| s.sm_clock_mhz.map(f64::from));
        add("sm_clock", "MHz", &c, Some(&mut clock));
        add(
            "temperature",
            "degC",
            &field(k, &|s| s.temp_c.map(f64::from)),
            Some(&mut temp),
        );
        if let Some(w) = throttling(dev, ticks, k, &u, &c) {
            r.warnings.push(w);
        }
    }
    if !sources.is_empty() {
        r.metrics.push(
            Metric::scalar(MetricId::EnergyGpu, energy, sources.join(" + "))
                .with_sampling(period_ms, n),
        );
    }
    // peaks of the per-tick sums over GPUs
    let peak = |f: &dyn Fn(&GpuSample) -> Option<f64>| -> Option<f64> {
        ticks
            .iter()
            .filter_map(|(_, s)| {
                let v: Vec<f64> = s.iter().filter_map(f).collect();
                (!v.is_empty()).then(|| v.iter().sum::<f64>())
            })
            .reduce(f64::max)
    };
    let peaks = [
        (
            MetricId::GpuPowerPeak,
            peak(&|s| s.power_mw.map(|p| p as f64 / 1e3)),
        ),
        (
            MetricId::GpuMemoryPeak,
            peak(&|s| s.mem_used.map(|b| b as f64)),
        ),
        (
            MetricId::GpuProcessMemoryPeak,
            peak(&|s| s.proc_mem.map(|b| b as f64)),
        ),
    ];
    for (id, v) in peaks {
        if let Some(v) = v {
            r.metrics
                .push(Metric::scalar(id, v, NVML).with_sampling(period_ms, n));
        }
    }
    if !devices.is_empty() && peak(&|s| s.proc_mem.map(|b| b as f64)).is_none() {
        r.notes.push(
            "gpu_process_memory_peak: NVML listed no GPU memory of this process tree \
             (no CUDA context, or processes in another PID namespace)"
                .into(),
        );
    }
    for (id, v) in [
        (MetricId::GpuUtilization, util),
        (MetricId::GpuSmClock, clock),
        (MetricId::GpuTemperature, temp),
    ] {
        if !v.is_empty() {
            r.metrics
                .push(sampled_capped(id, v, NVML, seed).with_sampling(period_ms, n));
        }
    }
    r
}

/// A throttling warning when NVML reported power/thermal slowdown in any sample, or the SM
/// clock fell more than 10 % below its window maximum while the GPU was busy.
fn throttling(
    dev: &GpuDevice,
    ticks: &[(f64, Vec<GpuSample>)],
    k: usize,
    util: &[(f64, f64)],
    clock: &[(f64, f64)],
) -> Option<Warning> {
    let bits: Vec<u64> = ticks
        .iter()
        .filter_map(|(_, s)| s.get(k).and_then(|s| s.throttle))
        .collect();
    let slowed: Vec<Vec<&str>> = bits
        .iter()
        .map(|b| super::nvml::slowdown_reasons(*b))
        .filter(|r| !r.is_empty())
        .collect();
    let mut reasons: Vec<&str> = slowed.iter().flatten().copied().collect();
    reasons.sort();
    reasons.dedup();
    let busy: Vec<f64> = clock
        .iter()
        .zip(util)
        .filter(|(_, u)| u.1 >= 50.0)
        .map(|(c, _)| c.1)
        .collect();
    let (lo, hi) = (
        busy.iter().copied().reduce(f64::min),
        busy.iter().copied().reduce(f64::max),
    );
    let dropped = matches!((lo, hi), (Some(l), Some(h)) if l < 0.9 * h);
    if slowed.is_empty() && !dropped {
        return None;
    }
    let mut msg = format!("GPU {} ({}) ran below full clocks:", dev.index, dev.name);
    if !slowed.is_empty() {
        msg.push_str(&format!(
            " {} in {} of {} samples;",
            reasons.join(", "),
            slowed.len(),
            bits.len()
        ));
    }
    if let (Some(l), Some(h)) = (lo, hi) {
        msg.push_str(&format!(" busy SM clock {l:.0}-{h:.0} MHz."));
    }
    Some(Warning {
        kind: WarningKind::Throttling,
        message: msg,
        hint: "Check cooling and power limits (`nvidia-smi -q -d PERFORMANCE`); compare runs \
               only at equal clocks, e.g. locked with `nvidia-smi -lgc`."
            .into(),
    })
}

#[cfg(test)]
#[path = "gpu_tests.rs"]
mod tests;
