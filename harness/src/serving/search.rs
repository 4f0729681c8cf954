//! MLPerf-style server search: the highest request rate whose p99 TTFT, TPOT and E2EL meet
//! the SLOs with no failed request, by bounded bisection between `[serving.search] low` and
//! `high`. Each step is a full run (its own warm-up, meters and window). The result is the
//! run at the best passing rate, with `slo_max_request_rate`, and every step kept as series
//! (`search_*`, x = rate) and log lines.

use crate::axes::AxisValue;
use crate::metric::{Metric, MetricId};
use crate::records::SearchConfig;
use crate::records::Slo;
use crate::records::{spec_id, RunSpec};
use crate::records::{RunResult, RunState, Series};
use crate::warnings::{Warning, WarningKind};

/// One step of the search.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub rate: f64,
    pub pass: bool,
    /// Why it passed or failed, with the numbers.
    pub why: String,
}

/// Whether a run meets the SLOs at p99 with no failed request.
pub fn judge(r: &RunResult, slo: &Slo) -> (bool, String) {
    if r.status.state != RunState::Ok {
        return (false, format!("run {:?}", r.status.state).to_lowercase());
    }
    let mut parts = Vec::new();
    let mut pass = true;
    let failed = r.metric(MetricId::RequestsFailed).map_or(0.0, |m| m.value);
    if failed > 0.0 {
        pass = false;
        parts.push(format!("{failed} failed request(s)"));
    }
    for (name, objective, id) in slo.objectives() {
        match r.metric(id).and_then(|m| m.stats.as_ref()).map(|s| s.p99) {
            Some(p99) => {
                let ok = p99 <= objective;
                pass &= ok;
                parts.push(format!(
                    "p99 {name} {p99:.2} ms {} {objective} ms",
                    if ok { "<=" } else { ">" }
                ));
            }
            // TPOT is absent when every request produced one token: nothing to violate.
            None if id == MetricId::Tpot => parts.push(format!("no {name} samples")),
            None => {
                pass = false;
                parts.push(format!("no {name} samples"));
            }
        }
    }
    (pass, parts.join(", "))
}

/// Runs the bisection; `run(rate)` performs one full run at that rate. Returns the steps
/// and their results, in the order run.
pub fn bisect(
    cfg: &SearchConfig,
    slo: &Slo,
    mut run: impl FnMut(f64) -> RunResult,
) -> (Vec<Step>, Vec<RunResult>) {
    let mut steps = Vec::new();
    let mut results = Vec::new();
    let mut go = |rate: f64, steps: &mut Vec<Step>| -> (bool, bool) {
        let r = run(rate);
        let (pass, why) = judge(&r, slo);
        let usable = r.status.state == RunState::Ok;
        steps.push(Step { rate, pass, why });
        results.push(r);
        (pass, usable)
    };
    let (pass, usable) = go(cfg.low, &mut steps);
    if !pass || !usable {
        return (steps, results);
    }
    let (pass, usable) = go(cfg.high, &mut steps);
    if pass || !usable {
        return (steps, results);
    }
    let (mut lo, mut hi) = (cfg.low, cfg.high);
    while (steps.len() as u32) < cfg.max_steps && (hi - lo) / lo > cfg.tolerance {
        let mid = (lo + hi) / 2.0;
        let (pass, usable) = go(mid, &mut steps);
        if !usable {
            break;
        }
        if pass {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (steps, results)
}

/// The spec of one step: the search spec at a fixed rate, without the search.
pub fn step_spec(spec: &RunSpec, rate: f64) -> RunSpec {
    let mut s = spec.clone();
    if let Some(serving) = s.serving.as_mut() {
        serving.search = None;
    }
    s.params
        .insert("request_rate".into(), AxisValue::Float(rate));
    s.id = spec_id(&s);
    s
}

/// Runs the whole search for `spec` and assembles its result.
pub fn run(
    spec: &RunSpec,
    cfg: &SearchConfig,
    mut run_step: impl FnMut(&RunSpec) -> RunResult,
) -> RunResult {
    let slo = spec
        .serving
        .as_ref()
        .map(|s| s.slo.clone())
        .unwrap_or_default();
    let (steps, results) = bisect(cfg, &slo, |rate| run_step(&step_spec(spec, rate)));
    assemble(spec, cfg, &steps, results)
}

/// The result of a search: the run at the best passing rate (else the last run), with the
/// search spec's id and config, `slo_max_request_rate`, and the steps as series and notes.
pub fn assemble(
    spec: &RunSpec,
    cfg: &SearchConfig,
    steps: &[Step],
    mut results: Vec<RunResult>,
) -> RunResult {
    let best = steps
        .iter()
        .enumerate()
        .filter(|(_, s)| s.pass)
        .max_by(|a, b| a.1.rate.total_cmp(&b.1.rate))
        .map(|(i, _)| i);
    let failed_run = results.iter().position(|r| r.status.state != RunState::Ok);
    let chosen = failed_run.or(best).unwrap_or(results.len() - 1);
    let mut series = search_series(steps, &results);
    let mut r = results.swap_remove(chosen);
    let rate = steps[chosen].rate;
    r.id = spec.id.clone();
    r.config = spec.clone();
    r.config
        .params
        .insert("request_rate".into(), AxisValue::Float(rate));
    r.series.append(&mut series);
    let mut notes = vec![format!(
        "server search in [{}, {}] req/s, at most {} steps, tolerance {}: {} step(s); reported: the run at {rate} req/s",
        cfg.low,
        cfg.high,
        cfg.max_steps,
        cfg.tolerance,
        steps.len()
    )];
    for (i, s) in steps.iter().enumerate() {
        notes.push(format!(
            "search step {}: {} req/s -> {} ({})",
            i + 1,
            s.rate,
            if s.pass { "pass" } else { "fail" },
            s.why
        ));
    }
    match best {
        Some(i) if failed_run.is_none() => {
            r.metrics.push(Metric::scalar(
                MetricId::SloMaxRequestRate,
                steps[i].rate,
                "server search (bisection over full runs)",
            ));
            if steps[i].rate >= cfg.high {
                r.warnings.push(Warning {
                    kind: WarningKind::SloNotBracketed,
                    message: format!(
                        "The upper bound {} req/s already meets the SLOs; the highest passing rate may be higher.",
                        cfg.high
                    ),
                    hint: "Raise [serving.search] high.".into(),
                });
            }
        }
        None if failed_run.is_none() => r.warnings.push(Warning {
            kind: WarningKind::SloNotBracketed,
            message: format!(
                "No rate met the SLOs, not even the lower bound {} req/s.",
                cfg.low
            ),
            hint: "Lower [serving.search] low or relax [serving.slo].".into(),
        }),
        _ => {}
    }
    notes.append(&mut r.log);
    r.log = notes;
    let order = |m: &Metric| MetricId::ALL.iter().position(|x| *x == m.name);
    r.metrics.sort_by_key(order);
    r
}

fn search_series(steps: &[Step], results: &[RunResult]) -> Vec<Series> {
    let series = |name: &str, y_unit: &str, points: Vec<[f64; 2]>| Series {
        name: name.into(),
        x_unit: "req/s".into(),
        y_unit: y_unit.into(),
        source: "server search".into(),
        period_ms: None,
        points,
    };
    let p99 = |id: MetricId| -> Vec<[f64; 2]> {
        steps
            .iter()
            .zip(results)
            .filter_map(|(s, r)| {
                r.metric(id)
                    .and_then(|m| m.stats.as_ref())
                    .map(|st| [s.rate, st.p99])
            })
            .collect()
    };
    let mut out = vec![series(
        "search_pass",
        "1 = met the SLOs",
        steps
            .iter()
            .map(|s| [s.rate, if s.pass { 1.0 } else { 0.0 }])
            .collect(),
    )];
    for (name, id) in [
        ("search_p99_ttft", MetricId::Ttft),
        ("search_p99_tpot", MetricId::Tpot),
        ("search_p99_e2e_latency", MetricId::E2eLatency),
    ] {
        let pts = p99(id);
        if !pts.is_empty() {
            out.push(series(name, "ms", pts));
        }
    }
    let goodput: Vec<[f64; 2]> = steps
        .iter()
        .zip(results)
        .filter_map(|(s, r)| r.metric(MetricId::Goodput).map(|m| [s.rate, m.value]))
        .collect();
    if !goodput.is_empty() {
        out.push(series("search_goodput", "req/s", goodput));
    }
    out
}

#[cfg(test)]
#[path = "search_tests.rs"]
mod tests;
