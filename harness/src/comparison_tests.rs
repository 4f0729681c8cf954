use super::*;
use crate::fixtures::{result, ripple};

fn run(batch: i64, ttft_mean: f64, tput_mean: f64) -> RunResult {
    result(
        "s",
        batch,
        "abc",
        &[
            (MetricId::Ttft, ripple(40, ttft_mean, 3.0)),
            (MetricId::OutputThroughput, ripple(40, tput_mean, 3.0)),
            (MetricId::PeakRss, vec![1e8]),
        ],
    )
}

fn input<'a>(name: &'a str, rs: &'a [RunResult]) -> Input<'a> {
    Input {
        name,
        path: name,
        results: rs,
    }
}

#[test]
fn same_numbers_are_unchanged_and_pass_the_gate() {
    let base = vec![run(1, 10.0, 100.0), run(4, 20.0, 300.0)];
    let c = compare(
        &input("base", &base),
        &input("new", &base),
        &GateConfig::default(),
    )
    .unwrap();
    assert_eq!(c.summary.runs_compared, 2);
    assert_eq!(
        c.summary.metrics_compared, 4,
        "peak_rss has one value: skipped"
    );
    assert_eq!(c.summary.unchanged, 4);
    assert!(
        c.notes.iter().any(|n| n.contains("peak_rss")),
        "{:?}",
        c.notes
    );
    assert!(c.gate_outcome(&GateConfig::default()).passed);
}

#[test]
fn slower_ttft_and_lower_throughput_regress() {
    let base = vec![run(1, 10.0, 100.0)];
    let new = vec![run(1, 11.0, 90.0)];
    // One invocation a side: the noise between invocations is unknown, so the default
    // unreplicated band (±10 %) holds a 10 % change: not a regression, and a note says why.
    let c = compare(
        &input("base", &base),
        &input("new", &new),
        &GateConfig::default(),
    )
    .unwrap();
    assert_eq!(c.summary.regressed, 0, "{:#?}", c.runs);
    assert!(
        c.notes
            .iter()
            .any(|n| n.contains("one invocation per side")),
        "{:?}",
        c.notes
    );
    // A narrower unreplicated band (a user who accepts the risk) lets it regress.
    let narrow = GateConfig {
        unreplicated_band_pct: 5.0,
        ..GateConfig::default()
    };
    let c = compare(&input("base", &base), &input("new", &new), &narrow).unwrap();
    assert_eq!(c.summary.regressed, 2, "{:#?}", c.runs);
    let g = c.gate_outcome(&narrow);
    assert!(!g.passed);
    assert_eq!(g.failures.len(), 2);
    assert!(
        g.failures[0].contains("batch=1 ttft: regressed +10.00 %"),
        "{g:?}"
    );
    // Swapped: both improved.
    let c = compare(&input("base", &new), &input("new", &base), &narrow).unwrap();
    assert_eq!(c.summary.improved, 2);
    // Not gated, or tolerated by a threshold: the gate passes.
    let cfg = GateConfig::parse(
        "unreplicated_band_pct = 5\n[metric.ttft]\ngate = false\n[metric.output_throughput]\nmax_regression_pct = 15\n",
        "g.toml",
    )
    .unwrap();
    let c = compare(&input("base", &base), &input("new", &new), &cfg).unwrap();
    assert_eq!(c.summary.regressed, 1, "ttft still reported");
    assert!(c.gate_outcome(&cfg).passed);
}

#[test]
fn missing_extra_and_failed_runs_are_listed() {
    let base = vec![
        run(1, 10.0, 100.0),
        run(2, 10.0, 100.0),
        run(4, 10.0, 100.0),
    ];
    let mut failed = run(2, 10.0, 100.0);
    failed.status = crate::records::Status {
        state: RunState::Failed,
        reason: Some("out of memory".into()),
    };
    let new = vec![run(1, 10.0, 100.0), failed, run(8, 10.0, 100.0)];
    let c = compare(
        &input("baseline", &base),
        &input("current", &new),
        &GateConfig::default(),
    )
    .unwrap();
    assert_eq!(c.runs.len(), 1);
    assert_eq!(c.missing.len(), 1);
    assert_eq!(c.missing[0].label, "batch=4");
    assert_eq!(c.extra[0].label, "batch=8");
    assert_eq!(c.not_ok[0].side, "current");
    assert!(c.not_ok[0]
        .reason
        .as_deref()
        .unwrap()
        .contains("out of memory"));
    let g = c.gate_outcome(&GateConfig::default());
    assert!(
        !g.passed && g.failures[0].contains("failed: out of memory"),
        "{g:?}"
    );
    let cfg = GateConfig {
        fail_on_failed: false,
        fail_on_missing: true,
        ..GateConfig::default()
    };
    let g = c.gate_outcome(&cfg);
    assert_eq!(
        g.failures,
        vec!["batch=4: missing from current".to_string()]
    );
}

#[test]
fn replicates_are_pooled_and_scalars_become_samples() {
    let base = vec![run(1, 10.0, 100.0), run(1, 10.0, 100.0)];
    let mut slow = run(1, 10.0, 100.0);
    slow.metrics[2].value = 2e8;
    let new = vec![slow.clone(), slow];
    let c = compare(
        &input("A", &base),
        &input("B", &new),
        &GateConfig::default(),
    )
    .unwrap();
    let r = &c.runs[0];
    assert_eq!((r.base_results, r.new_results), (2, 2));
    let ttft = r
        .metrics
        .iter()
        .find(|m| m.metric == MetricId::Ttft)
        .unwrap();
    // The invocation is the unit: 2 a side, each the mean of its 40 samples.
    assert_eq!((ttft.result.base.n, ttft.result.base.samples), (2, 80));
    let rss = r
        .metrics
        .iter()
        .find(|m| m.metric == MetricId::PeakRss)
        .unwrap();
    assert_eq!(rss.result.base.n, 2);
    assert!((rss.result.change_pct - 100.0).abs() < 1e-9);
    // Invocations are compared with the t-test on their values whatever `test` says: two
    // identical values a side have no spread, so a doubling is a certain regression.
    assert_eq!(
        rss.result.verdict,
        Verdict::Regressed,
        "{}",
        rss.result.reason
    );
    let welch = GateConfig {
        test: crate::analysis::verdict::TestChoice::Welch,
        ..GateConfig::default()
    };
    let c = compare(&input("A", &base), &input("B", &new), &welch).unwrap();
    let rss = c.runs[0]
        .metrics
        .iter()
        .find(|m| m.metric == MetricId::PeakRss)
        .unwrap();
    assert_eq!(
        rss.result.verdict,
        Verdict::Regressed,
        "{}",
        rss.result.reason
    );
}

#[test]
fn explicit_metrics_and_mismatched_sets() {
    let base = vec![run(1, 10.0, 100.0)];
    let cfg = GateConfig {
        metrics: vec![MetricId::PeakRss, MetricId::Itl],
        ..GateConfig::default()
    };
    let c = compare(&input("base", &base), &input("new", &base), &cfg).unwrap();
    let m = &c.runs[0].metrics;
    assert_eq!(m.len(), 1, "itl is absent on both sides");
    assert_eq!(
        m[0].result.verdict,
        Verdict::Inconclusive,
        "a single value cannot be tested"
    );
    assert!(c
        .notes
        .iter()
        .any(|n| n.contains("absent on one side): itl")));
    let other = vec![result("other", 1, "abc", &[])];
    let mut other = other;
    other[0].id = "ffffffffffffffff".into();
    let e = compare(
        &input("base", &base),
        &input("new", &other),
        &GateConfig::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("nothing to compare: no run of base"), "{e}");
    assert!(!e.contains('\n'));
}

#[test]
fn notes_name_machines_and_injected_delays() {
    let base = vec![run(1, 10.0, 100.0)];
    let mut new = vec![run(1, 10.0, 100.0)];
    new[0].env.cpu_model = "Other CPU".into();
    new[0].config.measure.inject_delay_ms = 5.0;
    let c = compare(
        &input("base", &base),
        &input("new", &new),
        &GateConfig::default(),
    )
    .unwrap();
    assert!(
        c.notes.iter().any(|n| n.contains("different machines")),
        "{:?}",
        c.notes
    );
    assert!(
        c.notes.iter().any(|n| n.contains("injected delay of 5 ms")),
        "{:?}",
        c.notes
    );
    assert_eq!(c.new.injected_delay_ms, vec![5.0]);
    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(json["kind"], "effbench-comparison");
    assert_eq!(json["runs"][0]["metrics"][0]["verdict"], "unchanged");
}

#[test]
fn a_single_new_run_is_judged_against_its_history() {
    // Six earlier baseline runs of the same spec and machine, ttft 10.0 .. 10.5 ms (a drifting
    // machine); the new run alone, no baseline directory: the prediction test of one new value
    // against the history's spread (pooled two-sample t-test with one value on the new side).
    let mut past = Vec::new();
    for (k, v) in [10.0, 10.2, 10.1, 10.4, 10.3, 10.5].iter().enumerate() {
        let mut r = run(1, *v, 100.0);
        r.started_at = format!("2026-01-0{}T00:00:00.000Z", k + 1);
        past.push(r);
    }
    let (entries, skipped) = crate::history::entries_from(&past, Some("main"));
    assert!(skipped.is_empty());
    let cfg = GateConfig {
        metrics: vec![MetricId::Ttft],
        ..GateConfig::default()
    };
    fn design(h: &[crate::history::Entry]) -> Design<'_> {
        Design {
            history: Some(h),
            history_path: "h.jsonl".into(),
            ..Design::default()
        }
    }
    let judge = |ttft: f64, entries: &[crate::history::Entry]| {
        let mut now = run(1, ttft, 100.0);
        now.started_at = "2026-02-01T00:00:00.000Z".into();
        let new = vec![now];
        compare_with(
            &input("history", &[]),
            &input("new", &new),
            &cfg,
            &design(entries),
        )
        .unwrap()
    };
    // 10.3 ms: inside the history's spread.
    let c = judge(10.3, &entries);
    let r = &c.runs[0];
    assert_eq!(r.history.len(), 6, "{:?}", r.history);
    let m = &r.metrics[0].result;
    assert_eq!((m.base.n, m.new.n), (6, 1));
    assert_eq!(m.unit, crate::analysis::verdict::Unit::Invocation);
    assert!(
        m.method
            .contains("6 of the base from the history (h.jsonl)"),
        "{}",
        m.method
    );
    assert_ne!(m.verdict, Verdict::Regressed, "{}", m.reason);
    assert!(m.mde_pct.is_some());
    assert!(c.gate_outcome(&cfg).passed);
    // 13 ms: far beyond it (sd of ln values ~1.8 %, +27 % from the mean).
    let c = judge(13.0, &entries);
    assert_eq!(c.runs[0].metrics[0].result.verdict, Verdict::Regressed);
    assert!(!c.gate_outcome(&cfg).passed);
    // Fewer than history_min (5) earlier runs: not used, and nothing else to compare with.
    let short: Vec<_> = entries
        .iter()
        .filter(|e| e.started_at.as_str() < "2026-01-04")
        .cloned()
        .collect();
    let mut now = run(1, 13.0, 100.0);
    now.started_at = "2026-02-01T00:00:00.000Z".into();
    let new = vec![now];
    let e = compare_with(
        &input("history", &[]),
        &input("new", &new),
        &cfg,
        &design(&short),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("fewer than 5 earlier runs"), "{e}");
}
