use super::*;
use std::fs;

const MAX: u64 = 262_143_328_850;

fn zone(dir: &Path, name: &str, energy: u64, max: u64) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join("name"), format!("{name}\n")).unwrap();
    fs::write(dir.join("energy_uj"), format!("{energy}\n")).unwrap();
    fs::write(dir.join("max_energy_range_uj"), format!("{max}\n")).unwrap();
}

/// A powercap tree shaped like a two-socket server's: nested zones plus top-level links.
fn fake_tree() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    zone(&r.join("intel-rapl:0"), "package-0", 1_000, MAX);
    zone(&r.join("intel-rapl:0/intel-rapl:0:0"), "core", 5, MAX);
    zone(
        &r.join("intel-rapl:0/intel-rapl:0:1"),
        "dram",
        7,
        65_712_999_613,
    );
    zone(&r.join("intel-rapl:1"), "package-1", 2_000, MAX);
    zone(&r.join("intel-rapl:2"), "psys", 9, MAX);
    zone(&r.join("intel-rapl-mmio:0"), "package-0", 3, MAX);
    std::os::unix::fs::symlink(
        r.join("intel-rapl:0/intel-rapl:0:1"),
        r.join("intel-rapl:0:1"),
    )
    .unwrap();
    t
}

#[test]
fn discovers_packages_and_dram_once() {
    let t = fake_tree();
    let d = discover(t.path()).unwrap();
    let names: Vec<(&str, DomainKind)> = d.iter().map(|d| (d.name.as_str(), d.kind)).collect();
    assert_eq!(
        names,
        [
            ("package-0", DomainKind::Package),
            ("dram", DomainKind::Dram),
            ("package-1", DomainKind::Package)
        ]
    );
    assert_eq!(d[1].max_range_uj, 65_712_999_613);
    assert_eq!(d[0].read_uj().unwrap(), 1_000);
}

#[test]
fn missing_tree_and_empty_tree_are_explained() {
    let t = tempfile::tempdir().unwrap();
    let e = discover(&t.path().join("powercap")).unwrap_err();
    assert!(
        e.starts_with("RAPL: ") && e.contains("does not exist"),
        "{e}"
    );
    let e = discover(t.path()).unwrap_err();
    assert!(e.contains("no package or dram zone"), "{e}");
    zone(&t.path().join("intel-rapl:0"), "package-0", 1, MAX);
    fs::write(t.path().join("intel-rapl:0/energy_uj"), "n/a").unwrap();
    let e = discover(t.path()).unwrap_err();
    assert!(e.contains("does not hold a number"), "{e}");
}

#[test]
fn permission_errors_are_reported_with_the_path_and_fix() {
    let t = fake_tree();
    let p = t.path().join("intel-rapl:0/energy_uj");
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&p, fs::Permissions::from_mode(0o000)).unwrap();
    if fs::read_to_string(&p).is_ok() {
        // root reads anything: check the message through a real EACCES from elsewhere
        eprintln!("running as root: permission bits do not apply; checking the message only");
        let msg = read_u64_error_for_test(&p);
        assert!(
            msg.contains("permission denied on") && msg.contains("chmod a+r"),
            "{msg}"
        );
        return;
    }
    let e = discover(t.path()).unwrap_err();
    assert!(
        e.contains("permission denied on") && e.contains("intel-rapl:0/energy_uj"),
        "{e}"
    );
    assert!(e.contains("sudo chmod a+r"), "{e}");
}

/// The message `read_u64` gives for a permission error on `path`.
fn read_u64_error_for_test(path: &Path) -> String {
    let e = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
    super::io_error(path, e)
}

#[test]
fn wrap_around_uses_max_energy_range() {
    assert_eq!(wrapped_delta(100, 350, MAX), 250);
    // 262 143 000 000 -> wraps past 262 143 328 850 -> 1 000 000
    assert_eq!(wrapped_delta(262_143_000_000, 1_000_000, MAX), 1_328_850);
    let d = Domain {
        name: "package-0".into(),
        kind: DomainKind::Package,
        dir: PathBuf::from("x"),
        max_range_uj: 1_000_000,
    };
    // 0.9 J at t=0, 0.95 J at 0.1 s, wraps to 0.05 J at 0.2 s, a failed read, 0.25 J at 0.4 s
    let s = [
        (0.0, Some(900_000)),
        (0.1, Some(950_000)),
        (0.2, Some(50_000)),
        (0.3, None),
        (0.4, Some(250_000)),
    ];
    let (j, peak) = integrate(&d, &s);
    // 0.05 + (0.05 + 0.05) + 0.2 = 0.35 J; steps: 0.5 W, 1.0 W, 1.0 W (0.2 J over 0.2 s)
    assert!((j - 0.35).abs() < 1e-12, "{j}");
    assert!((peak.unwrap() - 1.0).abs() < 1e-9, "{peak:?}");
}

/// Writes a counter the way the kernel exposes it: whole-file replace, wrapping at `max`.
fn write_counter(path: &Path, v: u64) {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, format!("{v}\n")).unwrap();
    fs::rename(&tmp, path).unwrap();
}

#[test]
fn meter_sums_a_moving_counter_across_a_wrap() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("intel-rapl:0");
    let max = 1_000_000u64;
    zone(&dir, "package-0", 990_000, max);
    let domains = discover(t.path()).unwrap();
    let mut m = RaplMeter::new(domains, Duration::from_millis(5));
    m.start();
    std::thread::sleep(Duration::from_millis(30));
    let mut v = 990_000u64;
    for _ in 0..50 {
        v = (v + 3_000) % max;
        write_counter(&dir.join("energy_uj"), v);
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(30));
    let r = m.stop(0.2);
    let e = r
        .metrics
        .iter()
        .find(|m| m.name == MetricId::EnergyCpu)
        .unwrap();
    // 50 steps of 3 mJ = 0.15 J, one wrap on the way
    assert!((e.value - 0.15).abs() < 1e-9, "{} ({:?})", e.value, r.notes);
    assert_eq!(e.source, "rapl");
    let s = e.sampling.as_ref().unwrap();
    assert_eq!(s.period_ms, 5.0);
    assert!(s.samples >= 3);
    assert!(r.metrics.iter().any(|m| m.name == MetricId::CpuPowerPeak));
}
