use super::*;
use nvml_wrapper::bitmasks::device::ThrottleReasons;

fn dev(i: u32) -> GpuDevice {
    GpuDevice {
        index: i,
        name: format!("Test GPU {i}"),
    }
}

fn s(power_w: f64, energy_mj: Option<u64>) -> GpuSample {
    GpuSample {
        power_mw: Some((power_w * 1e3) as u32),
        energy_mj,
        mem_used: Some(1 << 30),
        util_pct: Some(90),
        sm_clock_mhz: Some(1980),
        temp_c: Some(60),
        throttle: Some(0),
        ..Default::default()
    }
}

fn metric(r: &Reading, id: MetricId) -> &Metric {
    r.metrics
        .iter()
        .find(|m| m.name == id)
        .unwrap_or_else(|| panic!("no {id} in {:?}", r.metrics))
}

#[test]
fn counter_difference_is_the_energy_and_the_trapezoid_is_noted() {
    let ticks = vec![
        (0.0, vec![s(1.0, Some(1000))]),
        (0.1, vec![s(1.5, Some(1100))]),
        (0.2, vec![s(1.5, Some(1250))]),
        (0.3, vec![s(1.5, Some(1400))]),
    ];
    let r = summarize(&[dev(0)], &ticks, 0.3, 100.0, 1);
    let e = metric(&r, MetricId::EnergyGpu);
    assert!((e.value - 0.4).abs() < 1e-12, "{}", e.value);
    assert_eq!(e.source, NVML_COUNTER);
    assert_eq!(e.sampling.as_ref().unwrap().samples, 4);
    // trapezoid: 0.1 (1 + 1.5)/2 + 0.1 x 1.5 + 0.1 x 1.5 = 0.425 J, +6.2 % vs 0.4 J
    let note = r
        .notes
        .iter()
        .find(|n| n.contains("power trapezoid"))
        .unwrap();
    assert!(
        note.contains("energy counter 0.400 J, power trapezoid 0.425 J (+6.2 %)"),
        "{note}"
    );
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert_eq!(metric(&r, MetricId::GpuPowerPeak).value, 1.5);
    assert_eq!(
        metric(&r, MetricId::GpuMemoryPeak).value,
        (1u64 << 30) as f64
    );
    assert_eq!(metric(&r, MetricId::GpuUtilization).value, 90.0);
    assert_eq!(
        metric(&r, MetricId::GpuSmClock)
            .stats
            .as_ref()
            .unwrap()
            .count,
        4
    );
    let names: Vec<&str> = r.series.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "gpu0_power",
            "gpu0_memory_used",
            "gpu0_utilization",
            "gpu0_sm_clock",
            "gpu0_temperature"
        ]
    );
    assert_eq!(r.series[0].period_ms, Some(100.0));
}

#[test]
fn a_window_shorter_than_the_counter_period_is_not_zero_joules() {
    // the counter did not move in 30 ms; 200 W sampled twice: 200 W x 0.03 s = 6 J
    let ticks = vec![
        (0.0, vec![s(200.0, Some(5_000))]),
        (0.03, vec![s(200.0, Some(5_000))]),
    ];
    let r = summarize(&[dev(0)], &ticks, 0.03, 100.0, 1);
    let e = metric(&r, MetricId::EnergyGpu);
    assert!((e.value - 6.0).abs() < 1e-9, "{}", e.value);
    assert_eq!(e.source, NVML_POWER);
    assert_eq!(r.warnings.len(), 1);
    assert_eq!(r.warnings[0].kind, WarningKind::ShortMeterWindow);
    assert!(r.warnings[0]
        .message
        .contains("changed 0 time(s) in the 30 ms window"));
    // one change is still too coarse: 100 W x 0.05 s = 5 J, not the 0.1 J step
    let ticks = vec![
        (0.0, vec![s(100.0, Some(5_000))]),
        (0.05, vec![s(100.0, Some(5_100))]),
    ];
    let r = summarize(&[dev(0)], &ticks, 0.05, 100.0, 1);
    assert!((metric(&r, MetricId::EnergyGpu).value - 5.0).abs() < 1e-9);
    assert_eq!(r.warnings[0].kind, WarningKind::ShortMeterWindow);
}

#[test]
fn without_a_counter_the_power_trapezoid_is_used() {
    // pre-Volta: 100 -> 200 W over 1 s, 200 -> 100 W over 2 s = 150 + 300 = 450 J
    let ticks = vec![
        (0.0, vec![s(100.0, None)]),
        (1.0, vec![s(200.0, None)]),
        (3.0, vec![s(100.0, None)]),
    ];
    let r = summarize(&[dev(0)], &ticks, 3.0, 1000.0, 1);
    let e = metric(&r, MetricId::EnergyGpu);
    assert!((e.value - 450.0).abs() < 1e-9);
    assert_eq!(e.source, NVML_POWER);
    assert!(r.warnings.is_empty());
    assert!(r.notes.iter().any(|n| n.contains("no energy counter")));
}

#[test]
fn two_gpus_add_up_and_peaks_are_of_the_sum() {
    let mut a = s(100.0, Some(0));
    a.proc_mem = Some(100);
    let ticks = vec![
        (0.0, vec![a.clone(), s(50.0, Some(0))]),
        (0.5, vec![s(300.0, Some(100_000)), s(50.0, Some(25_000))]),
        (1.0, vec![s(100.0, Some(300_000)), s(250.0, Some(60_000))]),
    ];
    let r = summarize(&[dev(0), dev(1)], &ticks, 1.0, 500.0, 1);
    assert!((metric(&r, MetricId::EnergyGpu).value - 360.0).abs() < 1e-9);
    assert_eq!(metric(&r, MetricId::GpuPowerPeak).value, 350.0);
    assert_eq!(
        metric(&r, MetricId::GpuMemoryPeak).value,
        2.0 * (1u64 << 30) as f64
    );
    assert_eq!(metric(&r, MetricId::GpuProcessMemoryPeak).value, 100.0);
}

#[test]
fn throttling_is_flagged_from_reasons_or_clock_drops() {
    let mut hot = s(300.0, None);
    hot.throttle = Some(ThrottleReasons::HW_THERMAL_SLOWDOWN.bits());
    hot.sm_clock_mhz = Some(1500);
    let ticks = vec![(0.0, vec![s(300.0, None)]), (0.1, vec![hot])];
    let r = summarize(&[dev(0)], &ticks, 0.1, 100.0, 1);
    let w: Vec<&Warning> = r
        .warnings
        .iter()
        .filter(|w| w.kind == WarningKind::Throttling)
        .collect();
    assert_eq!(w.len(), 1);
    assert!(
        w[0].message
            .contains("hardware thermal slowdown in 1 of 2 samples")
            && w[0].message.contains("1500-1980 MHz"),
        "{}",
        w[0].message
    );
    // idle GPUs clock down without it being throttling
    let mut idle = s(60.0, None);
    idle.util_pct = Some(0);
    idle.sm_clock_mhz = Some(345);
    let r = summarize(
        &[dev(0)],
        &[(0.0, vec![s(300.0, None)]), (0.1, vec![idle])],
        0.1,
        100.0,
        1,
    );
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
}

#[test]
fn unavailable_gpus_are_reported_and_nothing_is_measured() {
    let mut m = GpuMeter::unavailable("NVML: libnvidia-ml.so.1 not found");
    m.start();
    let r = m.stop(1.0);
    assert!(r.metrics.is_empty());
    assert_eq!(
        r.notes,
        ["GPU meter unavailable, GPUs not metered: NVML: libnvidia-ml.so.1 not found"]
    );
}

/// A GPU whose counter advances 10 mJ per read at a steady 100 W.
struct Steady {
    energy: u64,
}

impl GpuSource for Steady {
    fn sample(&mut self) -> Vec<GpuSample> {
        self.energy += 10;
        vec![s(100.0, Some(self.energy))]
    }
}

#[test]
fn the_meter_samples_in_the_background() {
    let mut m = GpuMeter::new(
        vec![dev(0)],
        Box::new(Steady { energy: 0 }),
        Duration::from_millis(10),
        7,
    );
    m.start();
    std::thread::sleep(Duration::from_millis(100));
    let r = m.stop(0.1);
    let e = metric(&r, MetricId::EnergyGpu);
    let n = e.sampling.as_ref().unwrap().samples;
    assert!(n >= 3, "{n} samples");
    // n reads: the counter moved (n - 1) x 10 mJ
    assert!(
        (e.value - (n - 1) as f64 * 0.01).abs() < 1e-9,
        "{} vs {n}",
        e.value
    );
    assert_eq!(e.source, NVML_COUNTER);
}
