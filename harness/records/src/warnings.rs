//! Measurement-quality warnings: each a named kind with what was seen and the option that
//! helps (as hyperfine does). Stored in the result and printed after each run.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WarningKind {
    /// Iteration times vary a lot.
    HighVariance,
    /// The first measured iterations were much slower than the rest.
    SlowFirstIterations,
    /// Fewer measured iterations than `min_iters` (time cap or interrupt).
    FewerSamplesThanAsked,
    /// Other processes used a noticeable share of the CPUs during the run.
    BusyMachine,
    /// A meter's window was shorter than its counter's update period.
    ShortMeterWindow,
    /// Clocks dropped during the run (thermal or power throttling).
    Throttling,
    /// Something was estimated rather than measured.
    Estimated,
    /// A delay was injected into every measured iteration (`run --inject-delay`, a test knob).
    InjectedDelay,
    /// Serving: the load generator sent requests well after their scheduled time.
    GeneratorLate,
    /// Serving: some requests failed.
    RequestFailures,
    /// Serving: responses had fewer output tokens than asked for.
    ShortOutputs,
    /// Serving: the server search did not bracket the highest passing rate.
    SloNotBracketed,
    /// A `[sweep]` ended at this run (a budget broken or the run failed); larger values of
    /// the swept axis were not run.
    SweepStopped,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Warning {
    pub kind: WarningKind,
    /// What was observed, with numbers.
    pub message: String,
    /// The option or action that helps.
    pub hint: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.message, self.hint)
    }
}

/// Coefficient of variation above which a run is flagged.
pub const HIGH_CV_PCT: f64 = 10.0;
/// First iterations slower than this multiple of the median of the rest are flagged.
pub const SLOW_START_FACTOR: f64 = 1.5;
/// Other processes' share of total CPU time above which the machine counts as busy.
pub const BUSY_SHARE: f64 = 0.10;

/// The warning every result measured with `--inject-delay` carries.
pub fn injected_delay(ms: f64) -> Warning {
    Warning {
        kind: WarningKind::InjectedDelay,
        message: format!(
            "Every measured iteration includes an injected sleep of {ms} ms (--inject-delay): \
             iteration-time based metrics (throughputs) are deliberately slowed; latencies \
             timed by the backend are not."
        ),
        hint: "Only for testing compare/gate; run without --inject-delay for real numbers.".into(),
    }
}

/// The `--inject-slowdown` test knob was on (same kind as an injected delay: a test knob).
pub fn injected_slowdown(pct: f64) -> Warning {
    Warning {
        kind: WarningKind::InjectedDelay,
        message: format!(
            "Every measured iteration was slowed by {pct} % of its own time (--inject-slowdown, \
             a busy wait inside the timed iteration): iteration-time based metrics (throughputs, \
             cpu_time) are deliberately worse; latencies timed by the backend are not."
        ),
        hint: "Only for testing compare/gate; run without --inject-slowdown for real numbers."
            .into(),
    }
}

/// Warnings about the iteration times of a measured window (ms, in order).
pub fn check_iterations(times_ms: &[f64], min_iters: u64) -> Vec<Warning> {
    let mut out = Vec::new();
    if (times_ms.len() as u64) < min_iters {
        out.push(Warning {
            kind: WarningKind::FewerSamplesThanAsked,
            message: format!(
                "Only {} measured iterations of the {min_iters} asked for.",
                times_ms.len()
            ),
            hint: "Raise [measure] max_duration_s (or max_iters) so min_iters fits.".into(),
        });
    }
    if times_ms.len() >= 3 {
        let sd = crate::stats::stdev(times_ms);
        let mean = crate::stats::mean(times_ms);
        let cv = if mean > 0.0 { 100.0 * sd / mean } else { 0.0 };
        if cv > HIGH_CV_PCT {
            out.push(Warning {
                kind: WarningKind::HighVariance,
                message: format!("Iteration times vary a lot (CV {cv:.1} % > {HIGH_CV_PCT} %)."),
                hint: "Quiet the machine, raise [measure] warmup_iters and min_duration_s, \
                       or set target_rel_ci to measure until the mean is stable."
                    .into(),
            });
        }
    }
    if times_ms.len() >= 5 {
        let k = (times_ms.len() / 10).max(1);
        let rest_median = crate::stats::percentile(&times_ms[k..], 0.5);
        let first = crate::stats::mean(&times_ms[..k]);
        if rest_median > 0.0 && first > SLOW_START_FACTOR * rest_median {
            out.push(Warning {
                kind: WarningKind::SlowFirstIterations,
                message: format!(
                    "The first {k} measured iteration(s) took {:.1}x the median of the rest.",
                    first / rest_median
                ),
                hint: "Raise [measure] warmup_iters or warmup_s so caches and allocators settle \
                       before measuring."
                    .into(),
            });
        }
    }
    out
}

/// Warning when `[measure]` caps ended a training run before its last step.
pub fn training_cut_short(max_iters: u64, max_duration_s: f64) -> Warning {
    Warning {
        kind: WarningKind::FewerSamplesThanAsked,
        message: format!(
            "Training stopped at a [measure] cap (max_iters = {}, max_duration_s = {}) before its \
             last step.",
            max_iters, max_duration_s
        ),
        hint: "Raise [measure] max_duration_s (and max_iters) above the training's length; \
               `effbench run --resume` continues from the checkpoint."
            .into(),
    }
}

/// Warning when other processes used more than [`BUSY_SHARE`] of the machine.
pub fn check_busy(other_share: f64, load_avg_1m: Option<f64>, cores: usize) -> Option<Warning> {
    (other_share > BUSY_SHARE).then(|| Warning {
        kind: WarningKind::BusyMachine,
        message: format!(
            "Other processes used {:.0} % of the machine's {cores} CPU(s) during the run{}.",
            100.0 * other_share,
            load_avg_1m
                .map(|l| format!(" (1-min load average {l:.2})"))
                .unwrap_or_default()
        ),
        hint: "Stop other work on the machine, or pin effbench to idle cores with taskset.".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(w: &[Warning]) -> Vec<WarningKind> {
        w.iter().map(|w| w.kind).collect()
    }

    #[test]
    fn steady_run_has_no_warning() {
        let t = [10.0, 10.1, 9.9, 10.0, 10.05, 9.95, 10.0];
        assert!(check_iterations(&t, 5).is_empty());
    }

    #[test]
    fn noisy_slow_start_and_short_runs_are_flagged() {
        let t = [30.0, 10.0, 10.2, 9.8, 10.1, 10.0, 9.9, 10.0];
        let w = check_iterations(&t, 5);
        assert_eq!(
            kinds(&w),
            [WarningKind::HighVariance, WarningKind::SlowFirstIterations]
        );
        assert!(w[1].message.contains("3.0x"), "{}", w[1].message);
        let w = check_iterations(&[10.0, 10.0], 5);
        assert_eq!(kinds(&w), [WarningKind::FewerSamplesThanAsked]);
        assert!(w[0].hint.contains("max_duration_s"));
    }

    #[test]
    fn busy_machine_threshold() {
        assert!(check_busy(0.05, Some(0.3), 2).is_none());
        let w = check_busy(0.4, Some(2.5), 2).unwrap();
        assert!(
            w.message.contains("40 %") && w.message.contains("2.50"),
            "{}",
            w.message
        );
    }
}
