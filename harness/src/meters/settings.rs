//! Meter settings: the suite's `[meters]` table ([`MetersConfig`], also filled from CLI
//! flags) resolved into [`MeterSettings`], which every result stores under `config.meters`
//! together with where each value came from (`default: ...`, `suite`, `--flag`).

use super::estimate;
use crate::records::{
    GpuSelection, MeterSettings, MetersConfig, DEFAULT_GRID_INTENSITY,
    DEFAULT_GRID_INTENSITY_SOURCE, DEFAULT_PERIOD_MS, DEFAULT_POWERCAP_ROOT, DEFAULT_PUE,
    DEFAULT_PUE_SOURCE,
};
use std::collections::BTreeMap;

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
        resolve(&MetersConfig::default(), &MetersConfig::default(), "").expect("defaults are valid")
    }
}

/// Resolves the suite's `[meters]` table and CLI overrides (`cli` wins) for a machine whose
/// CPU model is `cpu_model`. Errors name the field or flag.
pub fn resolve(
    suite: &MetersConfig,
    cli: &MetersConfig,
    cpu_model: &str,
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
    let cpu_tdp = estimate::choose_tdp(
        cli.cpu_tdp_w
            .map(|w| (w, tdp_flag("cpu_tdp_w", true)))
            .or_else(|| suite.cpu_tdp_w.map(|w| (w, tdp_flag("cpu_tdp_w", false)))),
        cli.cpu_threads_per_package
            .or(suite.cpu_threads_per_package),
        &table,
        cpu_model,
        estimate::machine_threads(),
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

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;
