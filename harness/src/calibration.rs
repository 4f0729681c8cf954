//! `effbench gate --calibrate`: the noise between invocations on this machine, measured by an
//! A/A run (the same build on both sides of `run --ab`), per metric, written as a gate file
//! whose `[metric.X] invocation_sd_pct` / `invocation_df` the gate pools with the spread it
//! observes (so one block, or one run a side, can still be tested).
//!
//! Per run and metric the invocations are fitted as in a comparison
//! ([`crate::analysis::invocations::fit`]: ln values, ABBA blocks and the side as fixed
//! effects); the residual sums of squares and degrees of freedom of all runs are pooled per
//! metric: sd = 100 · sqrt(Σ SS / Σ df).

use crate::analysis::invocations::{fast_decile, fit, summarize, Invocation, Spread, Summary};
use crate::metric::MetricId;
use crate::records::{RunResult, RunState};

/// One metric's calibrated spread, and the runs behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSpread {
    pub metric: MetricId,
    pub spread: Spread,
    /// (run label, its own spread).
    pub per_run: Vec<(String, Spread)>,
}

/// Results of one side with the ABBA block of each (aligned).
pub struct Side<'a> {
    pub results: &'a [RunResult],
    pub blocks: Option<&'a [usize]>,
}

impl<'a> Side<'a> {
    /// A side with blocks when they line up with the results (else unblocked).
    pub fn new(results: &'a [RunResult], blocks: &'a [usize]) -> Side<'a> {
        Side {
            results,
            blocks: (blocks.len() == results.len()).then_some(blocks),
        }
    }
}

/// The invocations of one run and metric, each with its fast decile when it has one.
fn invocations(side: &Side, id: &str, metric: MetricId) -> Vec<(Invocation, Option<f64>)> {
    side.results
        .iter()
        .enumerate()
        .filter(|(_, r)| r.id == id && r.status.state == RunState::Ok)
        .filter_map(|(i, r)| {
            r.metric(metric).map(|m| {
                (
                    Invocation {
                        value: m.value,
                        block: side.blocks.and_then(|b| b.get(i).copied()),
                        samples: m.samples.len(),
                    },
                    fast_decile(&m.samples, m.better),
                )
            })
        })
        .collect()
}

/// The pooled spread of every metric measured on both sides with positive values and some
/// degrees of freedom, in metric-table order. Metrics that did not vary at all are left out
/// (a zero spread would make any later change look certain).
pub fn calibrate(a: &Side, b: &Side) -> Vec<MetricSpread> {
    let mut ids: Vec<(&str, String)> = Vec::new();
    for r in a.results {
        if !ids.iter().any(|(i, _)| *i == r.id) {
            ids.push((&r.id, r.label()));
        }
    }
    let mut out = Vec::new();
    for metric in MetricId::ALL.iter().copied() {
        let (mut ss, mut df) = (0.0, 0.0);
        let mut per_run = Vec::new();
        for (id, label) in &ids {
            // As the gate's default summary sees them, so the calibrated spread is the spread
            // of the very values the gate compares.
            let (x, y, _) = summarize(
                invocations(a, id, metric),
                invocations(b, id, metric),
                Summary::default(),
            );
            if x.is_empty() || y.is_empty() {
                continue;
            }
            if let Some(f) = fit(&x, &y).filter(|f| f.log && f.df > 0.0) {
                ss += f.ss;
                df += f.df;
                per_run.push((label.clone(), f.spread().expect("log fit with df")));
            }
        }
        if df > 0.0 && ss > 0.0 {
            out.push(MetricSpread {
                metric,
                spread: Spread {
                    sd_pct: 100.0 * (ss / df).sqrt(),
                    df,
                },
                per_run,
            });
        }
    }
    out
}

/// The comment lines of a calibrated gate file: what, where, when, from which A/A run, and
/// the load average at writing time.
pub fn header(from: &str, blocks: usize, a: &[RunResult], b: &[RunResult]) -> Vec<String> {
    let machine = a.first().map(crate::history::machine).unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into());
    vec![
        "effbench gate --calibrate: noise between invocations of an A/A run on this machine".into(),
        format!(
            "machine: {machine}; written {}; load average {load}",
            chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")
        ),
        format!(
            "from: {from} ({blocks} ABBA block(s), {} + {} invocations)",
            a.len(),
            b.len()
        ),
        "use: effbench gate --config THIS_FILE ... (only for this machine and these [measure] settings)"
            .into(),
    ]
}

/// A gate file with the calibrated spreads; `header` lines become comments at the top.
pub fn to_toml(spreads: &[MetricSpread], header: &[String]) -> String {
    let mut t = String::new();
    for h in header {
        t.push_str(&format!("# {h}\n"));
    }
    t.push_str(
        "# invocation_sd_pct: standard deviation of ln(value) x 100 between invocations, ABBA\n\
         # block effects and the A/B difference removed; invocation_df: its degrees of freedom.\n\
         # The gate pools them with the spread it observes. Add your own thresholds beside them.\n\n",
    );
    t.push_str(&format!(
        "# The spreads are of this summary of each invocation's samples; keep the two together.\n\
         invocation_summary = \"{}\"\n",
        Summary::default().name()
    ));
    for s in spreads {
        let runs: Vec<String> = s
            .per_run
            .iter()
            .map(|(l, sp)| format!("{} {:.2}", if l.is_empty() { "-" } else { l }, sp.sd_pct))
            .collect();
        t.push_str(&format!(
            "\n[metric.{}]\ninvocation_sd_pct = {:.4}   # per run: {}\ninvocation_df = {}\n",
            s.metric,
            s.spread.sd_pct,
            runs.join(", "),
            s.spread.df
        ));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::result;
    use crate::gate::GateConfig;

    fn run(v: f64) -> RunResult {
        result("s", 1, "abc", &[(MetricId::OutputThroughput, vec![v, v])])
    }

    #[test]
    fn pooled_spread_by_hand_and_a_valid_gate_file() {
        // One block: A = 100, 102; B = 101, 99. Cells: ln values; SS = within-cell SS (the
        // block holds both sides, one block: no between-block term); df = 1 + 1.
        let a = [run(100.0), run(102.0)];
        let b = [run(101.0), run(99.0)];
        let blocks = [0, 0];
        let s = calibrate(
            &Side {
                results: &a,
                blocks: Some(&blocks),
            },
            &Side {
                results: &b,
                blocks: Some(&blocks),
            },
        );
        assert_eq!(s.len(), 1, "only throughput has values");
        let h = |x: f64, y: f64| (x.ln() - y.ln()).powi(2) / 2.0;
        let want = 100.0 * ((h(100.0, 102.0) + h(101.0, 99.0)) / 2.0).sqrt();
        assert!((s[0].spread.sd_pct - want).abs() < 1e-9, "{s:?}");
        assert_eq!(s[0].spread.df, 2.0);
        let text = to_toml(&s, &["calibrated here".into()]);
        assert!(text.starts_with("# calibrated here\n"), "{text}");
        let cfg = GateConfig::parse(&text, "cal.toml").unwrap();
        let sp = cfg.spread(MetricId::OutputThroughput).unwrap();
        assert!((sp.sd_pct - want).abs() < 1e-3 && sp.df == 2.0, "{sp:?}");
        // Constant values have no spread to write.
        let c = calibrate(
            &Side {
                results: &a[..1],
                blocks: None,
            },
            &Side {
                results: &[run(100.0), run(100.0)],
                blocks: None,
            },
        );
        assert!(c.is_empty(), "{c:?}");
    }
}
