//! CPU package and DRAM energy from RAPL through the Linux powercap interface
//! (`<root>/intel-rapl:N[:M]/{name,energy_uj,max_energy_range_uj}`; AMD uses the same
//! interface on recent kernels). The root is injectable so tests use a fake tree.
//!
//! Counters are sampled on a background thread; each step's difference is corrected for
//! wrap-around with `max_energy_range_uj`, so windows longer than a wrap period still add
//! up. A counter that cannot be read (since Linux 5.10 energy_uj is readable by root only)
//! is reported with the path and the fix; nothing silently replaces it.

use super::sampler::Sampler;
use super::{Meter, Reading, RAPL};
use crate::metric::{Metric, MetricId};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomainKind {
    Package,
    Dram,
}

/// One RAPL zone effbench reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Domain {
    /// The zone's `name` file (`package-0`, `dram`).
    pub name: String,
    pub kind: DomainKind,
    pub dir: PathBuf,
    pub max_range_uj: u64,
}

impl Domain {
    pub fn energy_path(&self) -> PathBuf {
        self.dir.join("energy_uj")
    }
    /// The counter now, µJ.
    pub fn read_uj(&self) -> Result<u64, String> {
        read_u64(&self.energy_path())
    }
    fn label(&self) -> String {
        let zone = self
            .dir
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().to_string());
        format!("{} ({zone})", self.name)
    }
}

fn read_u64(path: &Path) -> Result<u64, String> {
    match std::fs::read_to_string(path) {
        Ok(s) => s
            .trim()
            .parse()
            .map_err(|_| format!("RAPL: '{}' does not hold a number", path.display())),
        Err(e) => Err(io_error(path, e)),
    }
}

/// One line for a failed read: permission errors name the path and the fix.
fn io_error(path: &Path, e: std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::PermissionDenied {
        format!(
            "RAPL: permission denied on {} (energy_uj is readable by root only since Linux 5.10; \
             run as root or `sudo chmod a+r {}`)",
            path.display(),
            path.display()
        )
    } else {
        format!("RAPL: cannot read {}: {e}", path.display())
    }
}

/// Difference of two readings of a counter that wraps to 0 after `max_range_uj`.
pub fn wrapped_delta(before: u64, after: u64, max_range_uj: u64) -> u64 {
    if after >= before {
        after - before
    } else {
        max_range_uj.saturating_sub(before) + after
    }
}

/// Finds the package and DRAM zones under `root`, and checks their counters can be read.
/// Zones appear both nested and as top-level links on real systems; each is taken once.
/// `psys`, `core`, `uncore` and the MMIO duplicate of the package are skipped (they would
/// double count).
pub fn discover(root: &Path) -> Result<Vec<Domain>, String> {
    if !root.exists() {
        return Err(format!(
            "RAPL: {} does not exist (no powercap driver: a VM, a container without /sys, \
             or a kernel without intel_rapl)",
            root.display()
        ));
    }
    let mut dirs = Vec::new();
    collect_zones(root, &mut dirs, 0);
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for dir in dirs {
        let real = std::fs::canonicalize(&dir).unwrap_or_else(|_| dir.clone());
        if seen.contains(&real) {
            continue;
        }
        seen.push(real);
        let Ok(name) = std::fs::read_to_string(dir.join("name")) else {
            continue;
        };
        let name = name.trim().to_string();
        let kind = if name.starts_with("package") {
            DomainKind::Package
        } else if name == "dram" {
            DomainKind::Dram
        } else {
            continue;
        };
        let max_range_uj = read_u64(&dir.join("max_energy_range_uj"))?;
        let d = Domain {
            name,
            kind,
            dir,
            max_range_uj,
        };
        d.read_uj()?;
        out.push(d);
    }
    if out.is_empty() {
        return Err(format!(
            "RAPL: no package or dram zone (intel-rapl:*) under {}",
            root.display()
        ));
    }
    out.sort_by(|a, b| a.dir.cmp(&b.dir));
    Ok(out)
}

fn collect_zones(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        if name.starts_with("intel-rapl:") && p.is_dir() {
            out.push(p.clone());
            if depth < 2 {
                collect_zones(&p, out, depth + 1);
            }
        }
    }
}

/// Energy per domain over a sampled window: wrap-corrected sum of step differences (J),
/// and the highest power of a step (W).
pub fn integrate(domain: &Domain, samples: &[(f64, Option<u64>)]) -> (f64, Option<f64>) {
    let mut total_uj = 0u64;
    let mut peak: Option<f64> = None;
    let mut prev: Option<(f64, u64)> = None;
    for (t, v) in samples {
        let Some(v) = *v else { continue };
        if let Some((pt, pv)) = prev {
            let d = wrapped_delta(pv, v, domain.max_range_uj);
            total_uj += d;
            if t - pt > 0.0 {
                let w = d as f64 / 1e6 / (t - pt);
                peak = Some(peak.map_or(w, |p: f64| p.max(w)));
            }
        }
        prev = Some((*t, v));
    }
    (total_uj as f64 / 1e6, peak)
}

/// Meter over the RAPL zones found by [`discover`].
pub struct RaplMeter {
    domains: Vec<Domain>,
    period: Duration,
    sampler: Option<Sampler<Vec<Option<u64>>>>,
}

impl RaplMeter {
    pub fn new(domains: Vec<Domain>, period: Duration) -> RaplMeter {
        RaplMeter {
            domains,
            period,
            sampler: None,
        }
    }
}

impl Meter for RaplMeter {
    fn name(&self) -> &'static str {
        RAPL
    }
    fn start(&mut self) {
        let domains = self.domains.clone();
        self.sampler = Some(Sampler::start(self.period, move || {
            domains.iter().map(|d| d.read_uj().ok()).collect()
        }));
    }
    fn stop(&mut self, _window_s: f64) -> Reading {
        let mut r = Reading::default();
        let Some(sampler) = self.sampler.take() else {
            return r;
        };
        let samples = sampler.stop();
        let period_ms = self.period.as_secs_f64() * 1e3;
        let mut package = (0.0, false, None::<f64>);
        let mut dram = (0.0, false);
        for (i, d) in self.domains.iter().enumerate() {
            let series: Vec<(f64, Option<u64>)> = samples.iter().map(|(t, v)| (*t, v[i])).collect();
            let good = series.iter().filter(|s| s.1.is_some()).count();
            if good < series.len() {
                r.notes.push(format!(
                    "RAPL: {} of {} reads of {} failed during the window",
                    series.len() - good,
                    series.len(),
                    d.energy_path().display()
                ));
            }
            if good < 2 {
                continue;
            }
            let (j, peak) = integrate(d, &series);
            match d.kind {
                DomainKind::Package => {
                    package.0 += j;
                    package.1 = true;
                    // peak of the packages' sum is approximated by the sum of their peaks
                    package.2 = Some(package.2.unwrap_or(0.0) + peak.unwrap_or(0.0));
                }
                DomainKind::Dram => {
                    dram.0 += j;
                    dram.1 = true;
                }
            }
            r.notes.push(format!(
                "RAPL {}: {j:.3} J from {good} reads every {period_ms:.0} ms",
                d.label()
            ));
        }
        let n = samples.len() as u64;
        if package.1 {
            r.metrics.push(
                Metric::scalar(MetricId::EnergyCpu, package.0, RAPL).with_sampling(period_ms, n),
            );
            if let Some(p) = package.2 {
                r.metrics.push(
                    Metric::scalar(MetricId::CpuPowerPeak, p, RAPL).with_sampling(period_ms, n),
                );
            }
        }
        if dram.1 {
            r.metrics.push(
                Metric::scalar(MetricId::EnergyDram, dram.0, RAPL).with_sampling(period_ms, n),
            );
        }
        r
    }
}

#[cfg(test)]
#[path = "rapl_tests.rs"]
mod tests;
