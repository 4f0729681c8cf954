//! The suite's `[meters]` section ([`MetersConfig`]) and the settings resolved from it and the
//! CLI for one run ([`MeterSettings`], stored in every result). [`resolve`] turns
//! them into settings given the machine's CPU model and thread count, which
//! `effbench_harness::meters::settings` reads.

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
impl MetersConfig {
    /// Checks ranges; `name` turns a field into how the user wrote it (`[meters] pue =` or
    /// `--pue`).
    pub fn check(&self, name: &dyn Fn(&str) -> String) -> Result<(), String> {
        if let Some(v) = self.period_ms {
            if !v.is_finite() || v < 1.0 {
                return Err(format!(
                    "{} {v} must be at least 1 (milliseconds)",
                    name("period_ms")
                ));
            }
        }
        if let Some(v) = self.cpu_tdp_w {
            if !v.is_finite() || v <= 0.0 {
                return Err(format!(
                    "{} {v} must be a number of watts > 0",
                    name("cpu_tdp_w")
                ));
            }
        }
        let non_neg = [
            ("idle_baseline_s", self.idle_baseline_s),
            ("grid_intensity", self.grid_intensity),
            ("price_per_hour", self.price_per_hour),
        ];
        for (field, v) in non_neg {
            if let Some(v) = v {
                if !v.is_finite() || v < 0.0 {
                    return Err(format!(
                        "{} = {v} must be a finite number >= 0",
                        name(field)
                    ));
                }
            }
        }
        if let Some(p) = self.pue {
            if !p.is_finite() || p < 1.0 {
                return Err(format!(
                    "{} {p} must be >= 1 (facility energy / IT energy)",
                    name("pue")
                ));
            }
        }
        if self.cpu_threads_per_package == Some(0) {
            return Err(format!(
                "{} must be at least 1",
                name("cpu_threads_per_package")
            ));
        }
        // Upper bounds (the lower ones above keep their own messages): a value past these
        // is a typo, and some (period_ms, idle_baseline_s) become durations.
        let key = |f: &str| name(f).trim_end_matches(" =").to_string();
        let bounds = [
            ("period_ms", self.period_ms, 1.0, 3_600_000.0, " ms"),
            ("idle_baseline_s", self.idle_baseline_s, 0.0, 3600.0, " s"),
            ("cpu_tdp_w", self.cpu_tdp_w, 0.0, 100_000.0, " W"),
            (
                "grid_intensity",
                self.grid_intensity,
                0.0,
                10_000.0,
                " gCO2e/kWh",
            ),
            ("pue", self.pue, 1.0, 10.0, ""),
            ("price_per_hour", self.price_per_hour, 0.0, 1e9, " $/h"),
        ];
        for (field, v, lo, hi, unit) in bounds {
            if let Some(v) = v {
                crate::limits::check_f64(&key(field), v, lo, hi, unit)?;
            }
        }
        if let Some(n) = self.cpu_threads_per_package {
            crate::limits::check_int(&key("cpu_threads_per_package"), n.into(), 1, 1 << 20)?;
        }
        if let GpuSelection::List(l) = self.gpus.as_ref().unwrap_or(&GpuSelection::Auto) {
            crate::limits::check_int(
                &format!("{} list length", key("gpus")),
                l.len() as i128,
                0,
                1024,
            )?;
        }
        crate::limits::check_int(
            &format!("{} rows", key("tdp_table")),
            self.tdp_table.len() as i128,
            0,
            10_000,
        )?;
        for (i, row) in self.tdp_table.iter().enumerate() {
            if row.tdp_w.is_nan() || row.tdp_w > 100_000.0 {
                return Err(format!(
                    "{} row {i}: tdp_w = {} is out of range: allowed 0 to 100000 W",
                    key("tdp_table"),
                    crate::limits::show(row.tdp_w)
                ));
            }
            if row.cpu.trim().is_empty()
                || !(row.tdp_w.is_finite() && row.tdp_w > 0.0)
                || row.threads == 0
            {
                return Err(format!(
                    "{} row {i} needs a non-empty cpu, tdp_w > 0 and threads >= 1",
                    name("tdp_table").trim_end_matches(" =")
                ));
            }
        }
        Ok(())
    }
}

/// The CLI flag for a `[meters]` field.
pub fn flag_name(field: &str) -> String {
    match field {
        "period_ms" => "--meter-period-ms".into(),
        other => format!("--{}", other.replace('_', "-")),
    }
}

impl Default for MeterSettings {
    fn default() -> Self {
        // No CPU model: the catch-all TDP row, which does not depend on the machine's threads.
        resolve(&MetersConfig::default(), &MetersConfig::default(), "", 1)
            .expect("defaults are valid")
    }
}

/// Resolves the suite's `[meters]` table and CLI overrides (`cli` wins) for a machine whose
/// CPU model is `cpu_model`. Errors name the field or flag.
pub fn resolve(
    suite: &MetersConfig,
    cli: &MetersConfig,
    cpu_model: &str,
    machine_threads: u32,
) -> Result<MeterSettings, String> {
    suite.check(&|f| format!("[meters] {f} ="))?;
    cli.check(&|f| flag_name(f))?;
    let mut sources = BTreeMap::new();
    // The first of (cli, suite, default) that is set, and where it came from.
    let mut pick = |field: &str, c: Option<f64>, s: Option<f64>, d: f64, why: &str| -> f64 {
        let (v, src) = match (c, s) {
            (Some(v), _) => (v, flag_name(field)),
            (None, Some(v)) => (v, format!("suite [meters] {field}")),
            (None, None) => (d, why.to_string()),
        };
        sources.insert(field.to_string(), src);
        v
    };
    let period_ms = pick(
        "period_ms",
        cli.period_ms,
        suite.period_ms,
        DEFAULT_PERIOD_MS,
        "default",
    );
    let idle_baseline_s = pick(
        "idle_baseline_s",
        cli.idle_baseline_s,
        suite.idle_baseline_s,
        0.0,
        "default: no idle baseline",
    );
    let pue = pick("pue", cli.pue, suite.pue, DEFAULT_PUE, DEFAULT_PUE_SOURCE);
    let grid_intensity = pick(
        "grid_intensity",
        cli.grid_intensity,
        suite.grid_intensity,
        DEFAULT_GRID_INTENSITY,
        DEFAULT_GRID_INTENSITY_SOURCE,
    );
    let grid_note = cli
        .grid_intensity_source
        .clone()
        .or_else(|| suite.grid_intensity_source.clone());
    if let (Some(note), Some(src)) = (grid_note, sources.get_mut("grid_intensity")) {
        *src = format!("{src}: {note}");
    }
    let price_per_hour = cli.price_per_hour.or(suite.price_per_hour);
    let price_src = match (cli.price_per_hour, suite.price_per_hour) {
        (Some(_), _) => flag_name("price_per_hour"),
        (None, Some(_)) => "suite [meters] price_per_hour".into(),
        (None, None) => "not set: no cost metrics".into(),
    };
    let price_note = cli
        .price_source
        .clone()
        .or_else(|| suite.price_source.clone());
    sources.insert(
        "price_per_hour".into(),
        match price_note {
            Some(n) if price_per_hour.is_some() => format!("{price_src}: {n}"),
            _ => price_src,
        },
    );
    let gpus = cli
        .gpus
        .clone()
        .or_else(|| suite.gpus.clone())
        .unwrap_or_default();
    sources.insert(
        "gpus".into(),
        if cli.gpus.is_some() {
            flag_name("gpus")
        } else if suite.gpus.is_some() {
            "suite [meters] gpus".into()
        } else {
            "default: the run's cuda device".into()
        },
    );
    let powercap_root = cli
        .powercap_root
        .clone()
        .or_else(|| suite.powercap_root.clone())
        .unwrap_or_else(|| DEFAULT_POWERCAP_ROOT.into());
    let mut table = cli.tdp_table.clone();
    table.extend(suite.tdp_table.iter().cloned());
    let tdp_flag = |f: &str, c: bool| {
        if c {
            flag_name(f)
        } else {
            format!("suite [meters] {f}")
        }
    };
    let cpu_tdp = choose_tdp(
        cli.cpu_tdp_w
            .map(|w| (w, tdp_flag("cpu_tdp_w", true)))
            .or_else(|| suite.cpu_tdp_w.map(|w| (w, tdp_flag("cpu_tdp_w", false)))),
        cli.cpu_threads_per_package
            .or(suite.cpu_threads_per_package),
        &table,
        cpu_model,
        machine_threads,
    );
    Ok(MeterSettings {
        period_ms,
        idle_baseline_s,
        gpus,
        powercap_root,
        cpu_tdp,
        grid_intensity,
        pue,
        price_per_hour,
        sources,
    })
}

/// Built-in rows: (substring of the CPU model name, TDP W, hardware threads per package).
/// Figures from the vendors' spec sheets; generic family rows last.
const BUILTIN: &[(&str, f64, u32)] = &[
    ("EPYC 9654", 360.0, 192),
    ("EPYC 9554", 360.0, 128),
    ("EPYC 7763", 280.0, 128),
    ("EPYC 7742", 225.0, 128),
    ("EPYC 7543", 225.0, 64),
    ("Platinum 8480", 350.0, 112),
    ("Platinum 8380", 270.0, 80),
    ("Platinum 8280", 205.0, 56),
    ("Gold 6248", 150.0, 40),
    ("i9-13900K", 125.0, 32),
    ("i7-12700K", 125.0, 20),
    ("Ryzen 9 7950X", 170.0, 32),
    ("Ryzen 9 5950X", 105.0, 32),
    // generic family rows: figures of a common part of the family
    ("EPYC", 280.0, 128),
    ("Xeon", 270.0, 80),
];

/// Catch-all when nothing matches: watts per hardware thread, typical of desktop and server
/// parts (125 W / 32 threads, 270 W / 80 threads).
pub const CATCH_ALL_W_PER_THREAD: f64 = 3.5;

/// Picks the TDP model: explicit setting, then user rows, then built-in rows (longest
/// matching name first), then the catch-all.
pub fn choose_tdp(
    explicit: Option<(f64, String)>,
    threads: Option<u32>,
    user_rows: &[TdpRow],
    cpu_model: &str,
    machine_threads: u32,
) -> TdpChoice {
    let model = cpu_model.to_ascii_lowercase();
    if let Some((tdp_w, src)) = explicit {
        let (threads, how) = match threads {
            Some(t) => (t, "given".to_string()),
            None => (machine_threads, "this machine's threads".to_string()),
        };
        return TdpChoice {
            tdp_w,
            threads,
            source: format!("{src} ({how} threads per package)"),
        };
    }
    if let Some(row) = user_rows
        .iter()
        .find(|r| !model.is_empty() && model.contains(&r.cpu.to_ascii_lowercase()))
    {
        return TdpChoice {
            tdp_w: row.tdp_w,
            threads: threads.unwrap_or(row.threads),
            source: format!("suite tdp_table row '{}'", row.cpu),
        };
    }
    let mut rows: Vec<&(&str, f64, u32)> = BUILTIN
        .iter()
        .filter(|(name, _, _)| !model.is_empty() && model.contains(&name.to_ascii_lowercase()))
        .collect();
    rows.sort_by_key(|(name, _, _)| std::cmp::Reverse(name.len()));
    if let Some((name, tdp_w, t)) = rows.first() {
        return TdpChoice {
            tdp_w: *tdp_w,
            threads: threads.unwrap_or(*t),
            source: format!("built-in table row '{name}' for CPU '{cpu_model}'"),
        };
    }
    TdpChoice {
        tdp_w: CATCH_ALL_W_PER_THREAD,
        threads: 1,
        source: format!(
            "catch-all {CATCH_ALL_W_PER_THREAD} W per hardware thread (no table row for CPU '{cpu_model}'; \
             set [meters] cpu_tdp_w and cpu_threads_per_package)"
        ),
    }
}
