//! The gate's configuration file (`gate.toml`, also the settings of `compare`) and its
//! outcome; the pass/fail decision itself is [`crate::comparison::Comparison::gate_outcome`].
//!
//! ```toml
//! alpha = 0.01                 # significance level (invocation level: per direction)
//! test = "both"                # welch | mann-whitney | both (both p-values below alpha)
//! noise_band_pct = 2.0         # changes whose CI stays within ±2 % are noise
//! metrics = ["ttft", "output_throughput"]   # default: every metric with samples on both sides
//! fail_on_failed = true        # a run ok in the baseline but failed in the current set fails
//! fail_on_missing = false      # a baseline run absent from the current set fails
//! fail_on_inconclusive = false
//! unreplicated_band_pct = 10.0 # one invocation per side: only changes beyond ±10 % count
//! history_last = 10            # gate --history: judge against the last 10 baseline runs ...
//! history_min = 5              # ... when at least 5 exist
//! invocation_summary = "fast-decile"   # or "headline": one value per invocation (docs/gates.md)
//! [metric.ttft]
//! noise_band_pct = 3.0         # per-metric noise band
//! max_regression_pct = 5.0     # relative threshold: tolerate up to 5 % worse
//! max_regression_abs = 0.5     # absolute threshold in the metric's unit (ms here)
//! invocation_sd_pct = 1.8      # calibrated spread between invocations (gate --calibrate) ...
//! invocation_df = 22           # ... and its degrees of freedom
//! [metric.load_time]
//! gate = false                 # compared and shown, never fails the gate
//! ```

use crate::analysis::invocations::{Spread, Summary};
use crate::analysis::verdict::{Rule, TestChoice};
use crate::metric::{name_hash, MetricId};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Per-metric overrides.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise_band_pct: Option<f64>,
    /// Relative threshold: a regression must exceed this many % of the base mean.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_regression_pct: Option<f64>,
    /// Absolute threshold in the metric's unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_regression_abs: Option<f64>,
    /// `false`: compared and reported but never fails the gate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<bool>,
    /// Calibrated standard deviation between invocations on this machine, in % (SD of
    /// ln(value) x 100), as `gate --calibrate` writes it; pooled with the spread observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invocation_sd_pct: Option<f64>,
    /// Degrees of freedom behind `invocation_sd_pct`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invocation_df: Option<f64>,
}

/// Settings of `compare` and `gate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct GateConfig {
    /// Significance level, in (0, 0.5): two-sided at the iteration level; at the invocation
    /// level each direction (regressed, improved) is its own one-sided test at alpha.
    pub alpha: f64,
    pub test: TestChoice,
    pub noise_band_pct: f64,
    /// Metrics to compare; empty = every metric with at least 2 samples on both sides.
    pub metrics: Vec<MetricId>,
    pub fail_on_failed: bool,
    pub fail_on_missing: bool,
    pub fail_on_inconclusive: bool,
    /// Base seed of the bootstrap (per run and metric: seed xor FNV-1a(id/metric)).
    pub seed: u64,
    /// Band (±%) for a comparison with one invocation per side and no calibrated spread: the
    /// noise between invocations is unknown, so only a change beyond it can regress.
    pub unreplicated_band_pct: f64,
    /// `gate --history`: judge against at most this many most recent baseline runs ...
    pub history_last: usize,
    /// ... and only when at least this many exist (else the baseline side alone).
    pub history_min: usize,
    /// How each invocation's samples become its value (`fast-decile` or `headline`;
    /// analysis::invocations::Summary).
    pub invocation_summary: Summary,
    #[serde(rename = "metric", skip_serializing_if = "BTreeMap::is_empty")]
    pub per_metric: BTreeMap<MetricId, MetricRule>,
}

impl Default for GateConfig {
    fn default() -> GateConfig {
        GateConfig {
            alpha: 0.01,
            test: TestChoice::Both,
            noise_band_pct: 2.0,
            metrics: Vec::new(),
            fail_on_failed: true,
            fail_on_missing: false,
            fail_on_inconclusive: false,
            seed: 42,
            unreplicated_band_pct: 10.0,
            history_last: 10,
            history_min: 5,
            invocation_summary: Summary::default(),
            per_metric: BTreeMap::new(),
        }
    }
}

impl GateConfig {
    /// Reads a gate file; errors are one line: `file:line:col: cause`.
    pub fn load(path: &Path) -> Result<GateConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read gate config '{}'", path.display()))?;
        GateConfig::parse(&text, &path.display().to_string())
    }

    pub fn parse(text: &str, origin: &str) -> Result<GateConfig> {
        let cfg: GateConfig = toml::from_str(text).map_err(|e| {
            let msg = e.message().trim().replace('\n', " ");
            match e.span() {
                Some(span) => {
                    let (line, col) = crate::records::line_col(text, span.start);
                    anyhow::anyhow!("{origin}:{line}:{col}: {msg}")
                }
                None => anyhow::anyhow!("{origin}: {msg}"),
            }
        })?;
        cfg.check().map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
        Ok(cfg)
    }

    /// Range checks; errors name the field.
    pub fn check(&self) -> std::result::Result<(), String> {
        if !(self.alpha > 0.0 && self.alpha < 0.5) {
            return Err(format!(
                "alpha = {} must lie strictly between 0 and 0.5 (0.01 = 1 %)",
                self.alpha
            ));
        }
        let pct = |name: String, v: f64| -> std::result::Result<(), String> {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(format!("{name} = {v} must be a finite number >= 0"))
            }
        };
        pct("noise_band_pct".into(), self.noise_band_pct)?;
        pct("unreplicated_band_pct".into(), self.unreplicated_band_pct)?;
        if self.history_last < 2 || self.history_min < 2 {
            return Err(format!(
                "history_last = {} and history_min = {} must be at least 2 (a spread needs 2 runs)",
                self.history_last, self.history_min
            ));
        }
        for (m, r) in &self.per_metric {
            let fields = [
                ("noise_band_pct", r.noise_band_pct),
                ("max_regression_pct", r.max_regression_pct),
                ("max_regression_abs", r.max_regression_abs),
                ("invocation_sd_pct", r.invocation_sd_pct),
                ("invocation_df", r.invocation_df),
            ];
            for (f, v) in fields {
                if let Some(v) = v {
                    pct(format!("[metric.{m}] {f}"), v)?;
                }
            }
            if r.invocation_sd_pct.is_some() != r.invocation_df.is_some() {
                return Err(format!(
                    "[metric.{m}] invocation_sd_pct and invocation_df go together (gate --calibrate writes both)"
                ));
            }
        }
        Ok(())
    }

    /// The decision rule for `metric` of run `run_id`.
    pub fn rule(&self, metric: MetricId, run_id: &str) -> Rule {
        let o = self.per_metric.get(&metric).cloned().unwrap_or_default();
        Rule {
            alpha: self.alpha,
            test: self.test,
            noise_band_pct: o.noise_band_pct.unwrap_or(self.noise_band_pct),
            max_regression_pct: o.max_regression_pct,
            max_regression_abs: o.max_regression_abs,
            seed: self.seed ^ name_hash(&format!("{run_id}/{metric}")),
        }
    }

    /// The calibrated spread between invocations of `metric`, if any.
    pub fn spread(&self, metric: MetricId) -> Option<Spread> {
        let r = self.per_metric.get(&metric)?;
        Some(Spread {
            sd_pct: r.invocation_sd_pct?,
            df: r.invocation_df?,
        })
        .filter(|s| s.df > 0.0)
    }

    /// Whether a regression of `metric` fails the gate in a comparison where it was `sampled`
    /// (at least 2 samples in every invocation on both sides): `[metric.X] gate` when set;
    /// else every metric named in `metrics`; else the sampled metrics (per iteration, per
    /// request) and sizes in bytes (memory, model size). Single-valued figures (load time, MBU
    /// against a bandwidth probe, energy and cost derived from a window) are compared and
    /// shown but fail only when configured: one number per process carries no measure of its
    /// own noise, and on the 2-vCPU development machine they produced the history mode's
    /// false alarms (load time +30 %, MBU −35 % on unchanged code).
    pub fn gates_in(&self, metric: MetricId, sampled: bool) -> bool {
        match self.per_metric.get(&metric).and_then(|r| r.gate) {
            Some(g) => g,
            None => !self.metrics.is_empty() || sampled || metric.unit() == "bytes",
        }
    }
}

/// Pass or fail, with one line per reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GateOutcome {
    pub passed: bool,
    pub failures: Vec<String>,
}

/// Parses `--noise-band 2` / `2%` style percentages.
pub fn parse_pct(s: &str) -> Result<f64> {
    let v: f64 = s
        .trim()
        .trim_end_matches('%')
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("'{s}' is not a percentage (e.g. 2 or 2%)"))?;
    if !v.is_finite() || v < 0.0 {
        bail!("'{s}' must be a percentage >= 0");
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_valued_metrics_fail_the_gate_only_when_configured() {
        let d = GateConfig::default();
        assert_eq!(d.invocation_summary, Summary::FastDecile);
        assert!(d.gates_in(MetricId::Ttft, true));
        assert!(!d.gates_in(MetricId::LoadTime, false));
        assert!(!d.gates_in(MetricId::Mbu, false));
        assert!(
            d.gates_in(MetricId::PeakRss, false),
            "sizes in bytes stay gated"
        );
        let named = GateConfig::parse("metrics = [\"load_time\"]\n", "g.toml").unwrap();
        assert!(named.gates_in(MetricId::LoadTime, false));
        let on = GateConfig::parse("[metric.mbu]\ngate = true\n", "g.toml").unwrap();
        assert!(on.gates_in(MetricId::Mbu, false));
        let off = GateConfig::parse("[metric.ttft]\ngate = false\n", "g.toml").unwrap();
        assert!(!off.gates_in(MetricId::Ttft, true));
        let h = GateConfig::parse("invocation_summary = \"headline\"\n", "g.toml").unwrap();
        assert_eq!(h.invocation_summary, Summary::Headline);
        assert!(GateConfig::parse("invocation_summary = \"mean\"\n", "g.toml").is_err());
    }

    #[test]
    fn parses_a_full_gate_file() {
        let cfg = GateConfig::parse(
            "alpha = 0.05\ntest = \"welch\"\nmetrics = [\"ttft\"]\n\
             [metric.ttft]\nmax_regression_pct = 5\n[metric.load_time]\ngate = false\n",
            "g.toml",
        )
        .unwrap();
        assert_eq!(cfg.alpha, 0.05);
        assert_eq!(cfg.test, TestChoice::Welch);
        assert_eq!(cfg.metrics, vec![MetricId::Ttft]);
        let r = cfg.rule(MetricId::Ttft, "x");
        assert_eq!((r.noise_band_pct, r.max_regression_pct), (2.0, Some(5.0)));
        assert!(!cfg.gates_in(MetricId::LoadTime, true) && cfg.gates_in(MetricId::Ttft, true));
        assert_eq!(
            GateConfig::parse("", "e.toml").unwrap(),
            GateConfig::default()
        );
    }

    #[test]
    fn bad_gate_files_name_file_line_and_field() {
        let e = GateConfig::parse("alpha = 0.01\nnoise_band = 2\n", "g.toml").unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with("g.toml:2:1:") && msg.contains("noise_band"),
            "{msg}"
        );
        let e = GateConfig::parse("[metric.speed]\ngate = false\n", "g.toml").unwrap_err();
        assert!(e.to_string().contains("unknown metric 'speed'"), "{e}");
        let e = GateConfig::parse("alpha = 5\n", "g.toml").unwrap_err();
        assert!(e.to_string().contains("alpha = 5"), "{e}");
        let e = GateConfig::parse("[metric.ttft]\nmax_regression_pct = -1\n", "g.toml");
        assert!(e
            .unwrap_err()
            .to_string()
            .contains("[metric.ttft] max_regression_pct"));
        let e = GateConfig::parse("test = \"z\"\n", "g.toml").unwrap_err();
        assert!(e.to_string().contains("mann-whitney"), "{e}");
    }

    #[test]
    fn the_example_workflow_gate_file_is_valid() {
        let text = include_str!("../../.github/effbench-gate.toml");
        let cfg = GateConfig::parse(text, ".github/effbench-gate.toml").unwrap();
        assert_eq!(cfg.noise_band_pct, 5.0);
        assert_eq!(
            cfg.rule(MetricId::PeakRss, "x").max_regression_abs,
            Some(16777216.0)
        );
    }

    #[test]
    fn percentages_parse() {
        assert_eq!(parse_pct("2").unwrap(), 2.0);
        assert_eq!(parse_pct("2.5%").unwrap(), 2.5);
        assert!(parse_pct("-1").is_err() && parse_pct("x").is_err());
    }
}
