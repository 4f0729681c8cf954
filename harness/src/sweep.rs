//! Scaling sweeps (`[sweep]` in a suite): the runs are taken in increasing order of one axis
//! (e.g. `prompt_len` 128 → the model's context), and a sweep ends early, with its reason
//! recorded, when a run breaks a time or memory budget or fails. Runs of the same sweep are
//! the ones that agree on every other axis. This module owns the configuration and the
//! decision; `invocation` applies it (skipped runs go to the manifest, the run that ended a
//! sweep carries a `sweep_stopped` warning).
//!
//! ```toml
//! [sweep]
//! axis = "prompt_len"
//! budgets = ["ttft:p50 <= 5000", "peak_rss <= 4GiB"]
//! ```

use crate::axes::AxisValue;
use crate::records::tracks::Condition;
use crate::records::RunSpec;
use crate::records::SweepConfig;
use crate::records::{RunResult, RunState};
use crate::warnings::{Warning, WarningKind};
use std::collections::BTreeMap;

/// The swept axis value of a run (−∞ when it has none).
fn value(cfg: &SweepConfig, spec: &RunSpec) -> f64 {
    spec.param(&cfg.axis)
        .and_then(AxisValue::as_f64)
        .unwrap_or(f64::NEG_INFINITY)
}

/// The other axes' values: runs with the same key are one sweep.
fn key(cfg: &SweepConfig, spec: &RunSpec) -> String {
    spec.params
        .iter()
        .filter(|(k, _)| **k != cfg.axis)
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The specs in run order: increasing axis value, the matrix order otherwise kept.
pub fn order(cfg: &SweepConfig, specs: &[RunSpec]) -> Vec<RunSpec> {
    let mut out = specs.to_vec();
    out.sort_by(|a, b| value(cfg, a).total_cmp(&value(cfg, b)));
    out
}

/// Where each sweep stands during an invocation.
#[derive(Debug, Default)]
pub struct SweepState {
    /// Sweep key → (axis value of the run that ended it, reason).
    stopped: BTreeMap<String, (f64, String)>,
}

impl SweepState {
    /// Why `spec` is not run (its sweep ended at a smaller value), if it is not.
    pub fn skip_reason(&self, cfg: &SweepConfig, spec: &RunSpec) -> Option<String> {
        let (at, why) = self.stopped.get(&key(cfg, spec))?;
        (value(cfg, spec) > *at).then(|| {
            format!(
                "not run: the {} sweep ended at {} = {}: {why}",
                cfg.axis,
                cfg.axis,
                AxisValue::Float(*at)
            )
        })
    }

    /// Looks at a finished run; when it ends its sweep, records that and returns the warning
    /// the run should carry. An interrupted run ends nothing (the invocation stops anyway).
    pub fn observe(&mut self, cfg: &SweepConfig, r: &RunResult) -> Option<Warning> {
        let reason = match r.status.state {
            RunState::Interrupted => return None,
            RunState::Failed => format!(
                "the run failed ({})",
                r.status.reason.as_deref().unwrap_or("no reason given")
            ),
            RunState::Ok => {
                let broken: Vec<String> = cfg
                    .budgets
                    .iter()
                    .filter_map(|b| Condition::parse(b).ok())
                    .filter_map(|c| r.breaks(&c))
                    .collect();
                if broken.is_empty() {
                    return None;
                }
                broken.join("; ")
            }
        };
        let at = value(cfg, &r.config);
        self.stopped
            .insert(key(cfg, &r.config), (at, reason.clone()));
        Some(Warning {
            kind: WarningKind::SweepStopped,
            message: format!(
                "The {} sweep ends here ({} = {}): {reason}; larger values were not run.",
                cfg.axis,
                cfg.axis,
                AxisValue::Float(at)
            ),
            hint: "Raise the [sweep] budgets or run on a machine with more memory to go further."
                .into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use crate::metric::MetricId;

    fn run(len: i64, rss: f64) -> RunResult {
        let mut r = fixtures::result("long", 1, "c", &[(MetricId::PeakRss, vec![rss])]);
        r.config
            .params
            .insert("prompt_len".into(), AxisValue::Int(len));
        r
    }

    #[test]
    fn a_broken_budget_ends_the_sweep_of_the_same_other_axes() {
        let cfg = SweepConfig {
            axis: "prompt_len".into(),
            budgets: vec!["peak_rss <= 1GB".into()],
        };
        cfg.check().unwrap();
        let specs: Vec<RunSpec> = [1024, 128, 512, 256]
            .iter()
            .map(|&l| run(l, 0.0).config)
            .collect();
        let order: Vec<f64> = super::order(&cfg, &specs)
            .iter()
            .map(|s| value(&cfg, s))
            .collect();
        assert_eq!(order, vec![128.0, 256.0, 512.0, 1024.0]);
        let mut st = SweepState::default();
        assert!(st.observe(&cfg, &run(128, 0.4e9)).is_none());
        let w = st.observe(&cfg, &run(256, 1.5e9)).unwrap();
        assert_eq!(w.kind, WarningKind::SweepStopped);
        assert!(
            w.message
                .contains("(prompt_len = 256): peak_rss 1500000000 bytes, budget <= 1000000000"),
            "{}",
            w.message
        );
        let why = st.skip_reason(&cfg, &run(512, 0.0).config).unwrap();
        assert!(
            why.starts_with("not run: the prompt_len sweep ended at prompt_len = 256"),
            "{why}"
        );
        assert!(st.skip_reason(&cfg, &run(128, 0.0).config).is_none());
        // another batch is another sweep
        let mut other = run(512, 0.0);
        other
            .config
            .params
            .insert("batch".into(), AxisValue::Int(8));
        assert!(st.skip_reason(&cfg, &other.config).is_none());
        // a failed run ends its sweep too
        let mut failed = other.clone();
        failed.status.state = RunState::Failed;
        failed.status.reason = Some("out of memory".into());
        assert!(st
            .observe(&cfg, &failed)
            .unwrap()
            .message
            .contains("the run failed (out of memory)"));
        let mut bigger = other.config.clone();
        bigger
            .params
            .insert("prompt_len".into(), AxisValue::Int(1024));
        assert!(st.skip_reason(&cfg, &bigger).is_some());
    }

    #[test]
    fn bad_config_is_explained() {
        let bad = SweepConfig {
            axis: "prompt_length".into(),
            budgets: vec![],
        };
        assert!(bad
            .check()
            .unwrap_err()
            .contains("[sweep] axis 'prompt_length'"));
        let bad = SweepConfig {
            axis: "prompt_len".into(),
            budgets: vec!["peak_rss <= lots".into()],
        };
        assert!(bad
            .check()
            .unwrap_err()
            .starts_with("[sweep] budget 'peak_rss <= lots'"));
    }
}
