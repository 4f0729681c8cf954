//! Helpers shared by the backend integration tests.
#![allow(dead_code)]

use effbench_harness::axes::AxisValue;
use effbench_harness::records::{MeasureConfig, Scenario};
use effbench_harness::RunSpec;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A run spec for the candle backend with the given axis values (others at defaults).
pub fn spec(params: &[(&str, AxisValue)]) -> RunSpec {
    let mut map: BTreeMap<String, AxisValue> = effbench_backends::candle_infer::CandleBackend
        .describe_axes()
        .into_iter()
        .collect();
    for (k, v) in params {
        map.insert(k.to_string(), v.clone());
    }
    RunSpec {
        id: "test".into(),
        measure: MeasureConfig {
            warmup_iters: 1,
            warmup_s: 0.0,
            min_iters: 2,
            min_duration_s: 0.0,
            max_iters: 2,
            max_duration_s: 10.0,
            target_rel_ci: 0.0,
            inject_delay_ms: 0.0,
            inject_slowdown_pct: 0.0,
        },
        ..RunSpec::new("test", Scenario::Inference, "candle", map, 7)
    }
}

pub fn s(v: &str) -> AxisValue {
    AxisValue::Str(v.into())
}

pub fn i(v: i64) -> AxisValue {
    AxisValue::Int(v)
}

/// A fresh copy of the default model in a temporary directory.
pub fn default_model(tmp: &Path) -> PathBuf {
    effbench_backends::default_model::ensure_seeded_model_in(tmp).unwrap()
}

trait DescribeAxes {
    fn describe_axes(&self) -> Vec<(String, AxisValue)>;
}

impl DescribeAxes for effbench_backends::candle_infer::CandleBackend {
    fn describe_axes(&self) -> Vec<(String, AxisValue)> {
        use effbench_harness::Backend;
        self.describe()
            .axes
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect()
    }
}
