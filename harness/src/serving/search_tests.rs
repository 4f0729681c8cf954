use super::*;
use crate::records::Scenario;
use crate::records::ServingConfig;
use crate::records::{StatsMethod, Status, SuiteInfo, SCHEMA_VERSION};

fn spec() -> RunSpec {
    let mut serving = ServingConfig::new("http://127.0.0.1:1");
    serving.slo.ttft_ms = Some(100.0);
    serving.search = Some(cfg(1.0, 64.0, 10));
    let mut s = RunSpec {
        serving: Some(serving),
        ..RunSpec::new("s", Scenario::Serving, "openai-http", Default::default(), 1)
    };
    s.id = spec_id(&s);
    s
}

fn cfg(low: f64, high: f64, max_steps: u32) -> SearchConfig {
    SearchConfig {
        low,
        high,
        max_steps,
        tolerance: 0.05,
    }
}

/// A run whose p99 TTFT is `ttft_per_rate` x the rate (a server that slows down with load).
fn fake_run(spec: &RunSpec, ttft_per_rate: f64, state: RunState) -> RunResult {
    let rate = spec.params["request_rate"].as_f64().unwrap();
    let ttft = rate * ttft_per_rate;
    RunResult {
        schema_version: SCHEMA_VERSION,
        id: spec.id.clone(),
        suite: SuiteInfo {
            name: "s".into(),
            description: String::new(),
            file: None,
            sha256: None,
            varying_axes: vec![],
            analysis: None,
        },
        config: spec.clone(),
        status: Status {
            state,
            reason: (state != RunState::Ok).then(|| "connection refused".into()),
        },
        started_at: String::new(),
        finished_at: String::new(),
        iterations: 10,
        measured_s: 1.0,
        model: None,
        metrics: vec![
            Metric::sampled(MetricId::Ttft, vec![ttft; 5], "test", 1),
            Metric::scalar(MetricId::RequestsFailed, 0.0, "test"),
            Metric::scalar(MetricId::Goodput, rate, "test"),
        ],
        series: vec![],
        warnings: vec![],
        stats_method: StatsMethod::current(1),
        env: crate::probe::environment(&[]),
        log: vec!["step log".into()],
    }
}

#[test]
fn bisection_finds_the_highest_passing_rate_within_the_steps() {
    let spec = spec();
    let mut rates = Vec::new();
    // p99 TTFT = 10 ms x rate: the SLO of 100 ms holds up to 10 req/s.
    // 1 pass, 64 fail, 32.5 fail, 16.75 fail, 8.875 pass, 12.8125 fail: 6 steps.
    let r = run(&spec, &cfg(1.0, 64.0, 6), |s| {
        rates.push(s.params["request_rate"].as_f64().unwrap());
        assert!(
            s.serving.as_ref().unwrap().search.is_none(),
            "steps do not search"
        );
        fake_run(s, 10.0, RunState::Ok)
    });
    assert_eq!(rates.len(), 6, "bounded by max_steps");
    assert_eq!(&rates[..4], &[1.0, 64.0, 32.5, 16.75]);
    let best = r.metric(MetricId::SloMaxRequestRate).unwrap().value;
    assert_eq!(best, 8.875);
    assert_eq!(r.id, spec.id, "the search keeps its own id");
    assert_eq!(r.config.params["request_rate"].as_f64(), Some(best));
    let pass = r.series.iter().find(|s| s.name == "search_pass").unwrap();
    assert_eq!(pass.points.len(), 6);
    assert_eq!(pass.points[0], [1.0, 1.0]);
    assert_eq!(pass.points[1], [64.0, 0.0]);
    let ttft = r
        .series
        .iter()
        .find(|s| s.name == "search_p99_ttft")
        .unwrap();
    assert_eq!(ttft.points[1], [64.0, 640.0]);
    assert!(r.series.iter().any(|s| s.name == "search_goodput"));
    assert!(r.log[0].starts_with("server search in [1, 64] req/s"));
    assert!(r.log[2].contains("64 req/s -> fail (p99 ttft 640.00 ms > 100 ms)"));
    assert!(r.log.contains(&"step log".to_string()));
}

#[test]
fn the_search_converges_within_the_tolerance() {
    let spec = spec();
    let r = run(&spec, &cfg(1.0, 64.0, 20), |s| {
        fake_run(s, 10.0, RunState::Ok)
    });
    let best = r.metric(MetricId::SloMaxRequestRate).unwrap().value;
    // the true limit is 10 req/s; the bracket ends within 5 % of it
    assert!(best <= 10.0 && best > 10.0 / 1.05, "{best}");
}

#[test]
fn tolerance_ends_the_search_early() {
    let spec = spec();
    let mut n = 0;
    let mut c = cfg(8.0, 12.0, 20);
    c.tolerance = 0.2;
    // 8 pass, 12 fail, 10 pass, then (12 - 10) / 10 = 0.2 is not above the tolerance.
    let r = run(&spec, &c, |s| {
        n += 1;
        fake_run(s, 10.0, RunState::Ok)
    });
    assert_eq!(n, 3);
    assert_eq!(r.metric(MetricId::SloMaxRequestRate).unwrap().value, 10.0);
}

#[test]
fn unbracketed_searches_say_so() {
    let spec = spec();
    // Even 1 req/s misses the SLO.
    let r = run(&spec, &cfg(1.0, 64.0, 10), |s| {
        fake_run(s, 1000.0, RunState::Ok)
    });
    assert!(r.metric(MetricId::SloMaxRequestRate).is_none());
    assert!(r
        .warnings
        .iter()
        .any(|w| w.kind == WarningKind::SloNotBracketed && w.message.contains("lower bound")));
    // Everything passes: the upper bound is reported, with a warning.
    let r = run(&spec, &cfg(1.0, 64.0, 10), |s| {
        fake_run(s, 0.001, RunState::Ok)
    });
    assert_eq!(r.metric(MetricId::SloMaxRequestRate).unwrap().value, 64.0);
    assert!(r.warnings.iter().any(|w| w.message.contains("upper bound")));
}

#[test]
fn a_failed_step_ends_the_search_as_failed() {
    let spec = spec();
    let mut n = 0;
    let r = run(&spec, &cfg(1.0, 64.0, 10), |s| {
        n += 1;
        let state = if n == 2 {
            RunState::Failed
        } else {
            RunState::Ok
        };
        fake_run(s, 10.0, state)
    });
    assert_eq!(n, 2);
    assert_eq!(r.status.state, RunState::Failed);
    assert!(r.metric(MetricId::SloMaxRequestRate).is_none());
}

#[test]
fn judge_requires_no_failures() {
    let spec = step_spec(&spec(), 1.0);
    let mut r = fake_run(&spec, 1.0, RunState::Ok);
    let slo = spec.serving.as_ref().unwrap().slo.clone();
    assert!(judge(&r, &slo).0);
    r.metrics[1].value = 2.0;
    let (pass, why) = judge(&r, &slo);
    assert!(!pass && why.starts_with("2 failed request(s)"), "{why}");
}
