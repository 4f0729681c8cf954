use super::*;
use crate::records::RunSpec;
use crate::records::Scenario;
use crate::records::{StatsMethod, Status, SuiteInfo};

fn run(id: &str, quant: &str, sparsity: f64, batch: i64, metrics: &[(MetricId, f64)]) -> RunResult {
    let params: BTreeMap<String, AxisValue> = [
        ("model", AxisValue::from("default")),
        ("quant", AxisValue::from(quant)),
        ("sparsity", AxisValue::Float(sparsity)),
        ("batch", AxisValue::Int(batch)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    RunResult {
        schema_version: SCHEMA_VERSION,
        id: id.into(),
        suite: SuiteInfo {
            name: "c".into(),
            description: String::new(),
            file: None,
            sha256: None,
            varying_axes: vec!["quant".into(), "sparsity".into(), "batch".into()],
            analysis: None,
        },
        config: RunSpec {
            id: id.into(),
            ..RunSpec::new("c", Scenario::Inference, "candle", params, 1)
        },
        status: Status {
            state: RunState::Ok,
            reason: None,
        },
        started_at: String::new(),
        finished_at: String::new(),
        iterations: 1,
        measured_s: 1.0,
        model: None,
        metrics: metrics
            .iter()
            .map(|(m, v)| Metric::scalar(*m, *v, "test"))
            .collect(),
        series: Vec::new(),
        warnings: Vec::new(),
        stats_method: StatsMethod::current(1),
        env: crate::probe::environment(&[]),
        log: Vec::new(),
    }
}

fn value(r: &RunResult, m: MetricId) -> Option<f64> {
    r.metric(m).map(|m| m.value)
}

use MetricId::*;

#[test]
fn speedups_use_the_baseline_with_the_same_other_axes() {
    let mut rs = vec![
        run(
            "a",
            "none",
            0.0,
            1,
            &[(Tpot, 10.0), (OutputThroughput, 100.0)],
        ),
        run(
            "b",
            "q8_0",
            0.0,
            1,
            &[(Tpot, 5.0), (OutputThroughput, 150.0)],
        ),
        run("c", "none", 0.0, 4, &[(Tpot, 20.0)]),
        run("d", "q8_0", 0.0, 4, &[(Tpot, 40.0)]),
        run("e", "q4k", 0.5, 2, &[(Tpot, 1.0)]), // no baseline with batch 2
    ];
    let before = rs.clone();
    let a = analyze("c", &AnalysisConfig::default(), &rs);
    assert_eq!(rs, before, "the analysis never changes a result");
    let sp = |i: usize, m: MetricId| {
        a.runs[i]
            .speedups
            .iter()
            .find(|x| x.name == m)
            .map(|x| x.value)
    };
    assert_eq!(sp(0, SpeedupTpot), Some(1.0));
    assert_eq!(sp(1, SpeedupTpot), Some(2.0)); // 10 / 5
    assert_eq!(sp(1, SpeedupOutputThroughput), Some(1.5)); // 150 / 100
    assert_eq!(sp(3, SpeedupTpot), Some(0.5)); // 20 / 40: batch 4 vs batch 4
    assert_eq!(sp(4, SpeedupTpot), None);
    assert_eq!(a.runs[3].speedup_baseline.as_deref(), Some("c"));
    assert!(a.runs[0].is_reference && a.runs[0].is_baseline && !a.runs[1].is_reference);
    assert!(
        a.notes
            .iter()
            .any(|n| n.contains("quant=q4k") && n.contains("no speed-ups")),
        "{:?}",
        a.notes
    );
    // lending the speed-ups to results (in memory) replaces, never duplicates
    with_speedups(&mut rs, &a);
    with_speedups(&mut rs, &a);
    assert_eq!(value(&rs[1], SpeedupTpot), Some(2.0));
    assert_eq!(
        rs[1]
            .metrics
            .iter()
            .filter(|m| m.name == SpeedupTpot)
            .count(),
        1
    );
}

#[test]
fn the_speedup_formula() {
    assert_eq!(speedup(10.0, 5.0, Better::Lower), Some(2.0));
    assert_eq!(speedup(10.0, 5.0, Better::Higher), Some(0.5));
    assert_eq!(speedup(0.0, 5.0, Better::Higher), None);
    assert_eq!(speedup(-2.0, -1.0, Better::Lower), None);
    assert_eq!(speedup(f64::INFINITY, 1.0, Better::Lower), None);
}

#[test]
fn sets_are_one_suite_on_one_machine_newest_result_per_run() {
    let cfg = Some(AnalysisConfig::default());
    let mut rs = vec![
        run("a", "none", 0.0, 1, &[(Tpot, 10.0)]),
        run("b", "q8_0", 0.0, 1, &[(Tpot, 5.0)]),
        run("a", "none", 0.0, 1, &[(Tpot, 20.0)]), // a newer result of run a
        run("b", "q8_0", 0.0, 1, &[(Tpot, 1.0)]),  // run b on another machine
    ];
    for (i, r) in rs.iter_mut().enumerate() {
        r.suite.analysis = cfg.clone();
        r.started_at = format!("2026-01-0{}T00:00:00Z", i + 1);
    }
    rs[3].env.hostname = "elsewhere".into();
    let sets = lend_speedups(&mut rs);
    assert_eq!(sets.len(), 2);
    assert_eq!(sets[0].members, [2, 1]);
    assert_eq!(value(&rs[1], SpeedupTpot), Some(4.0)); // 20 / 5: against the newer a
    assert_eq!(value(&rs[0], SpeedupTpot), None); // the older a is not in the set
    assert_eq!(value(&rs[3], SpeedupTpot), None); // no baseline on its machine
}

#[test]
fn default_fronts_hypervolume_and_dynascore() {
    // perplexity (lower), output_throughput (higher), model_bytes (lower)
    let rs = vec![
        run(
            "a",
            "none",
            0.0,
            1,
            &[
                (Perplexity, 10.0),
                (OutputThroughput, 100.0),
                (ModelBytes, 400.0),
                (Tpot, 10.0),
            ],
        ),
        run(
            "b",
            "q8_0",
            0.0,
            1,
            &[
                (Perplexity, 10.5),
                (OutputThroughput, 150.0),
                (ModelBytes, 100.0),
                (Tpot, 7.0),
            ],
        ),
        run(
            "c",
            "q4k",
            0.0,
            1,
            &[
                (Perplexity, 12.0),
                (OutputThroughput, 140.0),
                (ModelBytes, 60.0),
                (Tpot, 7.5),
            ],
        ),
        run(
            "d",
            "q4k",
            0.5,
            1,
            &[
                (Perplexity, 30.0),
                (OutputThroughput, 120.0),
                (ModelBytes, 60.0),
                (Tpot, 8.0),
            ],
        ),
    ];
    let a = analyze("c", &AnalysisConfig::default(), &rs);
    assert_eq!(a.pareto.len(), 4, "{:?}", a.notes);
    // perplexity vs tpot: a (best ppl) and b (fastest) are on it; c, d are dominated by b
    let f = &a.pareto[0];
    assert_eq!(f.objectives[1].metric, Tpot);
    assert_eq!(f.front, vec!["a", "b"]);
    // Reference point: worst ppl 30 + 10 % of range (20) = 32; worst tpot 10 + 0.3 = 10.3.
    // Area from (32, 10.3): a gives (32-10)*(10.3-10) = 6.6; b adds (32-10.5)*(10-7) = 64.5.
    let rp = f.reference_point.as_ref().unwrap();
    assert!(
        (rp[0] - 32.0).abs() < 1e-12 && (rp[1] - 10.3).abs() < 1e-12,
        "{rp:?}"
    );
    assert!(
        (f.hypervolume.unwrap() - 71.1).abs() < 1e-9,
        "{:?}",
        f.hypervolume
    );
    // perplexity vs size: a, b, c (d has the same size as c but worse perplexity)
    assert_eq!(a.pareto[2].front, vec!["a", "b", "c"]);
    assert_eq!(a.pareto[3].objectives.len(), 3);
    // Dynascore defaults (default_setup): perplexity 4, output_throughput 1, model_bytes 1
    // (no peak_rss), budgets as offsets; tpot has weight 0.
    let d = a.dynascore.as_ref().unwrap();
    assert_eq!(d.metrics[0].metric, Perplexity);
    assert_eq!(d.metrics[0].better, Better::Lower);
    assert!((d.metrics[0].weight_normalized - 4.0 / 6.0).abs() < 1e-12);
    assert_eq!(d.scores.len(), 4);
    assert_eq!(d.scores[0].rank, 1);
    // the ranking is the one the pure function gives on the same numbers
    let direct = dynascore(
        &[
            DynaMetric {
                name: "p".into(),
                better: Better::Lower,
                weight: 4.0,
                offset: 30.0,
            },
            DynaMetric {
                name: "t".into(),
                better: Better::Higher,
                weight: 1.0,
                offset: 0.0,
            },
            DynaMetric {
                name: "m".into(),
                better: Better::Lower,
                weight: 1.0,
                offset: 400.0,
            },
        ],
        &[
            vec![10.0, 100.0, 400.0],
            vec![10.5, 150.0, 100.0],
            vec![12.0, 140.0, 60.0],
            vec![30.0, 120.0, 60.0],
        ],
    )
    .unwrap();
    for (got, want) in d.scores.iter().zip(&direct.rows) {
        assert_eq!(got.id, ["a", "b", "c", "d"][want.index]);
        assert_eq!(got.dynascore, want.dynascore);
    }
}

#[test]
fn configured_fronts_and_failed_runs() {
    let mut rs = vec![
        run(
            "a",
            "none",
            0.0,
            1,
            &[(Perplexity, 10.0), (ModelBytes, 400.0)],
        ),
        run(
            "b",
            "q8_0",
            0.0,
            1,
            &[(Perplexity, 11.0), (ModelBytes, 100.0)],
        ),
        run("c", "q4k", 0.0, 1, &[(Perplexity, 12.0)]),
    ];
    rs[1].status.state = RunState::Failed;
    let cfg = AnalysisConfig {
        pareto: vec![ParetoConfig {
            metrics: vec!["perplexity".into(), "model_bytes".into()],
            reference_point: Some(vec![20.0, 500.0]),
        }],
        ..Default::default()
    };
    let a = analyze("c", &cfg, &rs);
    let f = &a.pareto[0];
    assert_eq!(f.considered, vec!["a"]);
    assert_eq!(f.hypervolume, Some(10.0 * 100.0));
    assert_eq!(f.reference_point_source.as_deref(), Some("suite"));
    assert!(a
        .notes
        .iter()
        .any(|n| n.contains("quant=q8_0") && n.contains("Failed")));
    assert!(a
        .notes
        .iter()
        .any(|n| n.contains("quant=q4k") && n.contains("no model_bytes")));
    // a single run left: Dynascore cannot rank
    assert!(a.dynascore.is_none());
}
