//! The suite's `[meters]` section ([`MetersConfig`]) and the settings resolved from it and the
//! CLI for one run ([`MeterSettings`], stored in every result). Resolving them (which reads
//! the machine's CPU model) is `crate::meters::settings::resolve`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Default background sampling period of power, memory and utilisation.
pub const DEFAULT_PERIOD_MS: f64 = 100.0;

/// World-average grid carbon intensity used when none is configured.
pub const DEFAULT_GRID_INTENSITY: f64 = 475.0;

pub const DEFAULT_GRID_INTENSITY_SOURCE: &str =
    "default: world average 475 gCO2e/kWh (IEA; CodeCarbon's fallback when the region is unknown)";

pub const DEFAULT_PUE: f64 = 1.0;

pub const DEFAULT_PUE_SOURCE: &str =
    "default: 1.0, energy at the machine without facility overhead (Strubell et al. used 1.58)";

pub const DEFAULT_POWERCAP_ROOT: &str = "/sys/class/powercap";

/// Which GPUs the NVML meter reads.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum GpuSelection {
    /// The run's `device` axis: `cuda:N` meters GPU N (through CUDA_VISIBLE_DEVICES), `cpu`
    /// meters none.
    #[default]
    Auto,
    /// Every GPU NVML sees.
    All,
    /// No GPU.
    None,
    /// These NVML indices.
    List(Vec<u32>),
}

impl GpuSelection {
    /// Parses `auto`, `all`, `none` or a comma-separated list of indices (CLI form).
    pub fn parse(s: &str) -> Result<GpuSelection, String> {
        match s.trim() {
            "auto" => Ok(GpuSelection::Auto),
            "all" => Ok(GpuSelection::All),
            "none" => Ok(GpuSelection::None),
            list => list
                .split(',')
                .map(|x| x.trim().parse::<u32>())
                .collect::<Result<Vec<u32>, _>>()
                .map(GpuSelection::List)
                .map_err(|_| {
                    format!(
                        "gpus '{s}' is not \"auto\", \"all\", \"none\" or a list of GPU indices"
                    )
                }),
        }
    }
}

impl std::fmt::Display for GpuSelection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GpuSelection::Auto => f.write_str("auto"),
            GpuSelection::All => f.write_str("all"),
            GpuSelection::None => f.write_str("none"),
            GpuSelection::List(l) => {
                let s: Vec<String> = l.iter().map(|i| i.to_string()).collect();
                f.write_str(&s.join(","))
            }
        }
    }
}

impl Serialize for GpuSelection {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            GpuSelection::List(l) => GpuSelectionRepr::List(l.clone()).serialize(s),
            other => GpuSelectionRepr::Word(other.to_string()).serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for GpuSelection {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match GpuSelectionRepr::deserialize(d).map_err(|_| {
            serde::de::Error::custom(
                "gpus must be \"auto\", \"all\", \"none\" or a list of GPU indices such as [0, 1]",
            )
        })? {
            GpuSelectionRepr::List(l) => Ok(GpuSelection::List(l)),
            GpuSelectionRepr::Word(w) if !w.contains(',') && w.parse::<u32>().is_err() => {
                GpuSelection::parse(&w).map_err(serde::de::Error::custom)
            }
            GpuSelectionRepr::Word(w) => Err(serde::de::Error::custom(format!(
                "gpus = \"{w}\": write a list of indices as [0, 1]"
            ))),
        }
    }
}

impl schemars::JsonSchema for GpuSelection {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "GpuSelection".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "oneOf": [
                { "type": "string", "enum": ["auto", "all", "none"] },
                { "type": "array", "items": { "type": "integer", "minimum": 0 } }
            ]
        })
    }
}

/// A row of a TDP table: CPUs whose model name contains `cpu` (case-insensitive) draw up to
/// `tdp_w` watts per package of `threads` hardware threads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TdpRow {
    pub cpu: String,
    pub tdp_w: f64,
    pub threads: u32,
}

/// The suite's `[meters]` table; CLI flags fill the same struct and take precedence.
/// Every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetersConfig {
    /// Background sampling period of power, memory and utilisation, ms (default 100).
    pub period_ms: Option<f64>,
    /// Seconds of idle measurement before the suite; runs then report net energy (default 0).
    pub idle_baseline_s: Option<f64>,
    /// GPUs to meter: "auto" (the run's cuda device), "all", "none" or [indices].
    pub gpus: Option<GpuSelection>,
    /// Root of the powercap tree for RAPL (default /sys/class/powercap).
    pub powercap_root: Option<String>,
    /// TDP of one CPU package for the `estimate-tdp` fallback (default: table by CPU model).
    pub cpu_tdp_w: Option<f64>,
    /// Hardware threads sharing that TDP (default: the table row, else this machine's threads).
    pub cpu_threads_per_package: Option<u32>,
    /// Extra TDP table rows, checked before the built-in table.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tdp_table: Vec<TdpRow>,
    /// Grid carbon intensity, gCO2e/kWh (default 475, world average).
    pub grid_intensity: Option<f64>,
    /// Where the grid intensity comes from (recorded with it).
    pub grid_intensity_source: Option<String>,
    /// Power usage effectiveness of the facility (>= 1; default 1.0).
    pub pue: Option<f64>,
    /// Price of the hardware in $ per hour; cost metrics only when set.
    pub price_per_hour: Option<f64>,
    /// Where the price comes from (recorded with it).
    pub price_source: Option<String>,
}

/// Meter settings as resolved for a run (stored in every result under `config.meters`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MeterSettings {
    /// Background sampling period, ms.
    pub period_ms: f64,
    /// Idle measurement before the suite, s (0 = none).
    pub idle_baseline_s: f64,
    pub gpus: GpuSelection,
    pub powercap_root: String,
    /// The TDP model of the `estimate-tdp` fallback for CPU energy.
    pub cpu_tdp: TdpChoice,
    /// gCO2e per kWh.
    pub grid_intensity: f64,
    pub pue: f64,
    /// $ per hour of the hardware; no cost metrics when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_per_hour: Option<f64>,
    /// Where each value came from: `default: ...`, `suite ...` or the CLI flag.
    pub sources: BTreeMap<String, String>,
}

/// The TDP model used: `tdp_w` shared by `threads` hardware threads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TdpChoice {
    pub tdp_w: f64,
    pub threads: u32,
    /// Where the figures came from (setting, table row, catch-all).
    pub source: String,
}

impl TdpChoice {
    pub fn watts_per_thread(&self) -> f64 {
        self.tdp_w / self.threads.max(1) as f64
    }
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum GpuSelectionRepr {
    Word(String),
    List(Vec<u32>),
}
