use super::*;
use crate::records::GpuSelection;
use serde::Deserialize;

#[test]
fn defaults_are_recorded_with_their_source() {
    let s = MeterSettings::default();
    assert_eq!(s.period_ms, 100.0);
    assert_eq!(s.grid_intensity, 475.0);
    assert_eq!(s.pue, 1.0);
    assert_eq!(s.price_per_hour, None);
    assert!(s.sources["grid_intensity"].contains("world average"));
    assert!(s.sources["price_per_hour"].contains("not set"));
}

#[test]
fn cli_overrides_suite_and_says_so() {
    let suite = MetersConfig {
        pue: Some(1.2),
        grid_intensity: Some(300.0),
        grid_intensity_source: Some("Ember 2023, Germany".into()),
        price_per_hour: Some(2.0),
        ..Default::default()
    };
    let cli = MetersConfig {
        pue: Some(1.5),
        ..Default::default()
    };
    let s = resolve(&suite, &cli, "").unwrap();
    assert_eq!(s.pue, 1.5);
    assert_eq!(s.sources["pue"], "--pue");
    assert_eq!(s.grid_intensity, 300.0);
    assert_eq!(
        s.sources["grid_intensity"],
        "suite [meters] grid_intensity: Ember 2023, Germany"
    );
    assert_eq!(s.price_per_hour, Some(2.0));
}

#[test]
fn bad_values_name_the_field_or_flag() {
    let bad = MetersConfig {
        pue: Some(0.5),
        ..Default::default()
    };
    let e = resolve(&bad, &MetersConfig::default(), "").unwrap_err();
    assert!(e.starts_with("[meters] pue = 0.5 must be >= 1"), "{e}");
    let e = resolve(&MetersConfig::default(), &bad, "").unwrap_err();
    assert!(e.starts_with("--pue 0.5 must be >= 1"), "{e}");
    let bad = MetersConfig {
        period_ms: Some(0.0),
        ..Default::default()
    };
    let e = resolve(&MetersConfig::default(), &bad, "").unwrap_err();
    assert_eq!(e, "--meter-period-ms 0 must be at least 1 (milliseconds)");
}

#[test]
fn gpu_selection_forms() {
    assert_eq!(GpuSelection::parse("all").unwrap(), GpuSelection::All);
    assert_eq!(
        GpuSelection::parse("0, 2").unwrap(),
        GpuSelection::List(vec![0, 2])
    );
    assert!(GpuSelection::parse("some").is_err());
    #[derive(Deserialize)]
    struct T {
        gpus: GpuSelection,
    }
    let t: T = toml::from_str("gpus = [1, 3]").unwrap();
    assert_eq!(t.gpus, GpuSelection::List(vec![1, 3]));
    let t: T = toml::from_str("gpus = \"none\"").unwrap();
    assert_eq!(t.gpus, GpuSelection::None);
    let e = toml::from_str::<T>("gpus = \"most\"").err().unwrap();
    assert!(e.message().contains("\"auto\""), "{e}");
    let json = serde_json::to_string(&GpuSelection::List(vec![0])).unwrap();
    assert_eq!(json, "[0]");
    assert_eq!(
        serde_json::to_string(&GpuSelection::All).unwrap(),
        "\"all\""
    );
}
