//! [`RunSpec`]: one run of a suite, fully resolved (what `matrix` expands a suite into, what
//! the runner measures, and what every result records), and its stable id.

use crate::axes::{self, AxisValue};
use crate::{Device, MeasureConfig, MeterSettings, ModelSpec, RunAnalysis, Scenario};
use anyhow::{anyhow, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// One fully resolved run: every axis the backend uses has a value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    /// Stable id: hash of what is measured (scenario, backend, axis values, seed, options),
    /// not of how long (`measure`), so results stay comparable when measurement settings change.
    pub id: String,
    pub suite: String,
    pub scenario: Scenario,
    pub backend: String,
    /// Axis values (model, device, dtype, batch ...), defaults filled in.
    pub params: BTreeMap<String, AxisValue>,
    pub seed: u64,
    pub measure: MeasureConfig,
    /// Meter settings resolved from the suite's `[meters]` and CLI flags (not in the id).
    #[serde(default)]
    pub meters: MeterSettings,
    /// Backend-specific settings from the suite's `[options]`.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub options: serde_json::Map<String, serde_json::Value>,
    /// The suite's `[serving]` table (serving scenario only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serving: Option<crate::ServingConfig>,
    /// Reference variant and quality evaluation from the suite's `[analysis]` (not part of
    /// the id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<RunAnalysis>,
    /// The suite's `[retrieval]` table (retrieval scenario only; part of the id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retrieval: Option<crate::retrieval::RetrievalConfig>,
    /// The suite's budget tracks (not part of the id), so reports and the site can rank the
    /// suite's results by them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tracks: Vec<crate::TrackConfig>,
    /// Continue from this run's last checkpoint (`effbench run --resume`); like `measure`,
    /// not part of the id, so the resumed run has the id of the one it continues.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resume: bool,
    /// The directory the run's result goes to, set by the invocation just before the run, so
    /// a session can stream files beside it (`<out_dir>/<id>.<suffix>`: a load test's
    /// per-request records). Neither recorded nor part of the id.
    #[serde(skip)]
    pub out_dir: Option<std::path::PathBuf>,
}

impl RunSpec {
    /// A spec of these axis values with everything else at its default (measurement and
    /// meter settings, no `[options]`, `[serving]`, `[analysis]` or resume) and its id
    /// computed. Specs built by hand (tests, benches, tools) start here and override what
    /// they need, so a new field is added in one place.
    pub fn new(
        suite: impl Into<String>,
        scenario: Scenario,
        backend: impl Into<String>,
        params: BTreeMap<String, AxisValue>,
        seed: u64,
    ) -> RunSpec {
        let mut spec = RunSpec {
            id: String::new(),
            suite: suite.into(),
            scenario,
            backend: backend.into(),
            params,
            seed,
            measure: MeasureConfig::default(),
            meters: MeterSettings::default(),
            options: serde_json::Map::new(),
            serving: None,
            analysis: None,
            retrieval: None,
            tracks: Vec::new(),
            resume: false,
            out_dir: None,
        };
        spec.id = spec_id(&spec);
        spec
    }

    pub fn param(&self, axis: &str) -> Option<&AxisValue> {
        self.params.get(axis)
    }
    /// A string axis value (errors name the axis).
    pub fn str_param(&self, axis: &str) -> Result<&str> {
        self.param(axis)
            .and_then(AxisValue::as_str)
            .ok_or_else(|| anyhow!("run {} has no string value for axis '{axis}'", self.id))
    }
    /// A non-negative integer axis value.
    pub fn usize_param(&self, axis: &str) -> Result<usize> {
        self.param(axis)
            .and_then(AxisValue::as_i64)
            .and_then(|i| usize::try_from(i).ok())
            .ok_or_else(|| anyhow!("run {} has no integer value for axis '{axis}'", self.id))
    }
    pub fn model(&self) -> ModelSpec {
        ModelSpec {
            reference: self
                .param("model")
                .map_or_else(|| "default".to_string(), |v| v.to_string()),
        }
    }
    pub fn device(&self) -> Result<Device> {
        Device::parse(
            self.param("device")
                .and_then(AxisValue::as_str)
                .unwrap_or("cpu"),
        )
    }
    /// `axis=value` pairs for the axes listed, e.g. the ones that vary within a suite.
    pub fn label(&self, axes: &[String]) -> String {
        axes.iter()
            .filter_map(|a| self.params.get(a).map(|v| format!("{a}={v}")))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Stable id of what a run measures: first 16 hex digits of SHA-256 over canonical JSON
/// (scenario, backend, axis values, seed, options, and the `[serving]` table when present).
pub fn spec_id(spec: &RunSpec) -> String {
    let params: BTreeMap<&String, &AxisValue> = spec
        .params
        .iter()
        .filter(|(k, v)| !axes::is_neutral(k, v))
        .collect();
    let mut canonical = serde_json::json!({
        "scenario": spec.scenario,
        "backend": spec.backend,
        "params": params,
        "seed": spec.seed,
        "options": spec.options,
    });
    // Only when present, so the ids of other scenarios are unchanged.
    if let Some(serving) = &spec.serving {
        canonical["serving"] = serde_json::to_value(serving).unwrap_or_default();
    }
    if let Some(retrieval) = &spec.retrieval {
        canonical["retrieval"] = serde_json::to_value(retrieval).unwrap_or_default();
    }
    let digest = Sha256::digest(canonical_json(&canonical).as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// JSON text with object keys sorted at every level, whatever map order serde_json uses.
pub fn canonical_json(v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let body: Vec<String> = keys
                .iter()
                .map(|k| {
                    format!(
                        "{}:{}",
                        Value::String(k.to_string()),
                        canonical_json(&m[*k])
                    )
                })
                .collect();
            format!("{{{}}}", body.join(","))
        }
        Value::Array(a) => {
            format!(
                "[{}]",
                a.iter().map(canonical_json).collect::<Vec<_>>().join(",")
            )
        }
        other => other.to_string(),
    }
}
