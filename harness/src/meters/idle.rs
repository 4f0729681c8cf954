//! The idle baseline: the energy meters run for `idle_baseline_s` seconds while effbench
//! does nothing, before the suite's first run. Each energy component's idle power then
//! gives every run `idle_power` and `energy_net = energy - idle_power x measured time`.

use super::derived::IdleBaseline;
use super::{energy_meters, Reading, COMPONENTS};
use crate::interrupt;
use crate::records::{GpuSelection, MeterSettings};
use std::time::{Duration, Instant};

/// Baselines are shared by runs that meter the same things: with `gpus = "auto"` that
/// depends on the run's device, otherwise not.
pub fn key(s: &MeterSettings, device: &str) -> String {
    match s.gpus {
        GpuSelection::Auto if device.starts_with("cuda") => device.to_string(),
        _ => String::new(),
    }
}

/// Measures the idle power of each energy component for `s.idle_baseline_s` seconds
/// (cut short by Ctrl-C). Returns the baseline and lines for the results' logs.
pub fn measure(s: &MeterSettings, device: &str) -> (IdleBaseline, Vec<String>) {
    let mut meters = energy_meters(s, device, 0);
    for m in meters.iter_mut() {
        m.start();
    }
    let t0 = Instant::now();
    let want = crate::limits::seconds_clamped(s.idle_baseline_s);
    while t0.elapsed() < want && !interrupt::requested() {
        std::thread::sleep((want - t0.elapsed().min(want)).min(Duration::from_millis(50)));
    }
    let window = t0.elapsed().as_secs_f64();
    let mut reading = Reading::default();
    for m in meters.iter_mut() {
        reading.extend(m.stop(window));
    }
    let mut baseline = IdleBaseline {
        seconds: window,
        ..Default::default()
    };
    let mut parts = Vec::new();
    for m in reading
        .metrics
        .iter()
        .filter(|m| COMPONENTS.contains(&m.name))
    {
        let w = if window > 0.0 { m.value / window } else { 0.0 };
        baseline.power_w.insert(m.name, (w, m.source.clone()));
        parts.push(format!("{} {w:.2} W ({})", m.name, m.source));
    }
    let mut notes = vec![format!(
        "idle baseline over {window:.1} s{}: {}",
        if device.is_empty() {
            String::new()
        } else {
            format!(" for {device}")
        },
        if parts.is_empty() {
            "no energy meter".to_string()
        } else {
            parts.join(", ")
        }
    )];
    notes.extend(
        reading
            .notes
            .into_iter()
            .map(|n| format!("idle baseline: {n}")),
    );
    (baseline, notes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::MetricId;

    #[test]
    fn an_idle_process_estimates_almost_nothing() {
        let s = MeterSettings {
            idle_baseline_s: 0.2,
            powercap_root: "/nonexistent/powercap".into(),
            ..Default::default()
        };
        let (b, notes) = measure(&s, "cpu");
        assert!(b.seconds >= 0.2);
        let (w, src) = &b.power_w[&MetricId::EnergyCpu];
        assert_eq!(src, "estimate-tdp");
        // this thread sleeps, but tests running beside it in the process use CPU time:
        // the estimate is bounded by every thread of the machine busy
        let bound = crate::records::meters::CATCH_ALL_W_PER_THREAD
            * crate::meters::estimate::machine_threads() as f64;
        assert!(*w <= bound * 1.2, "{w} W");
        assert!(
            notes[0].starts_with("idle baseline over 0.2 s"),
            "{notes:?}"
        );
        assert!(notes
            .iter()
            .any(|n| n.contains("RAPL: /nonexistent/powercap does not exist")));
    }

    #[test]
    fn keys_follow_the_gpu_selection() {
        let s = MeterSettings::default();
        assert_eq!(key(&s, "cpu"), "");
        assert_eq!(key(&s, "cuda:1"), "cuda:1");
        let all = MeterSettings {
            gpus: GpuSelection::All,
            ..Default::default()
        };
        assert_eq!(key(&all, "cuda:1"), "");
    }
}
