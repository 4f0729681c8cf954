//! Export for github-action-benchmark (benchmark-action/github-action-benchmark), tools
//! `customSmallerIsBetter` and `customBiggerIsBetter`: a JSON array of
//! `{name, unit, value, range, extra}`. The action takes one direction per file, so entries
//! are split by each metric's `better`.

use crate::format;
use effbench_harness::records::RunState;
use effbench_harness::{Better, MetricId, RunResult};
use serde::{Deserialize, Serialize};

/// One entry of the action's custom JSON format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Chart key: `suite run-label metric`, stable across commits (the run label comes from
    /// the spec's axes).
    pub name: String,
    pub unit: String,
    pub value: f64,
    /// `± half-width of the 95 % CI of the mean` when the metric has samples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<String>,
    /// Shown in the chart's tooltip: sample count, percentiles, run id, commit, machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<String>,
}

/// The action's tool name for a direction.
pub fn tool_name(better: Better) -> &'static str {
    match better {
        Better::Lower => "customSmallerIsBetter",
        Better::Higher => "customBiggerIsBetter",
    }
}

/// Entries of every ok run for `metrics` (all when empty) whose direction is `better`.
pub fn entries(results: &[RunResult], metrics: &[MetricId], better: Better) -> Vec<Entry> {
    let mut out = Vec::new();
    for r in results.iter().filter(|r| r.status.state == RunState::Ok) {
        for m in &r.metrics {
            if m.better != better || (!metrics.is_empty() && !metrics.contains(&m.name)) {
                continue;
            }
            let label = r.label();
            let mut extra = vec![format!("run {}", r.id)];
            let range = m.stats.as_ref().map(|s| {
                extra.push(format!(
                    "n={} mean={} p50={} p99={} cv={}%",
                    s.count,
                    format::value(s.mean, &m.unit),
                    format::value(s.p50, &m.unit),
                    format::value(s.p99, &m.unit),
                    format::sig3(s.cv_pct)
                ));
                let half = (s.ci95_mean[1] - s.ci95_mean[0]) / 2.0;
                format!("± {}", format::sig3(half))
            });
            let commit: String = r.env.git_commit.chars().take(12).collect();
            extra.push(format!(
                "commit {}{}",
                if commit.is_empty() {
                    "unknown"
                } else {
                    &commit
                },
                if r.env.git_dirty { "-dirty" } else { "" }
            ));
            extra.push(format!(
                "{} ({} threads)",
                r.env.cpu_model, r.env.cpu_threads
            ));
            extra.push(format!("source {}", m.source));
            if r.config.measure.inject_delay_ms > 0.0 {
                extra.push(format!(
                    "INJECTED DELAY {} ms per iteration (test knob)",
                    r.config.measure.inject_delay_ms
                ));
            }
            out.push(Entry {
                name: format!("{} {} {}", r.suite.name, label, m.name),
                unit: m.unit.clone(),
                value: m.value,
                range,
                extra: Some(extra.join("\n")),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use effbench_harness::fixtures::{result, ripple};

    #[test]
    fn splits_by_direction_with_range_and_extra() {
        let rs = vec![result(
            "s",
            4,
            "0123456789abcdef",
            &[
                (MetricId::Ttft, ripple(10, 5.0, 2.0)),
                (MetricId::OutputThroughput, ripple(10, 300.0, 2.0)),
                (MetricId::PeakRss, vec![1e8]),
            ],
        )];
        let lower = entries(&rs, &[], Better::Lower);
        assert_eq!(lower.len(), 2);
        assert_eq!(lower[0].name, "s batch=4 ttft");
        assert_eq!(lower[0].unit, "ms");
        assert!(lower[0].range.as_deref().unwrap().starts_with("± "));
        let extra = lower[0].extra.as_deref().unwrap();
        assert!(
            extra.contains("n=10") && extra.contains("commit 0123456789ab"),
            "{extra}"
        );
        assert_eq!(lower[1].range, None, "peak_rss is a single value");
        let higher = entries(&rs, &[], Better::Higher);
        assert_eq!(higher.len(), 1);
        assert_eq!(higher[0].value, rs[0].metrics[1].value);
        assert_eq!(entries(&rs, &[MetricId::Ttft], Better::Higher).len(), 0);
        let json = serde_json::to_value(&lower).unwrap();
        assert!(json[1].get("range").is_none());
        assert_eq!(tool_name(Better::Higher), "customBiggerIsBetter");
    }
}
