use super::*;
use crate::fixtures;
use crate::metric::Metric;
use crate::metric::MetricId;

/// Five encoders (batch = 1..5 stands for five systems), values chosen by hand:
///
/// | run | model_bytes | peak_rss | ndcg_at_10 | query_latency samples (p99) |
/// |-----|-------------|----------|------------|------------------------------|
/// | b1  | 90 MB       | 400 MB   | 0.62       | 10, 12 (11.98)              |
/// | b2  | 23 MB       | 300 MB   | 0.55       | 4, 5 (4.99)                 |
/// | b3  | 440 MB      | 1.2 GB   | 0.71       | 40, 60 (59.8)               |
/// | b4  | 1.3 GB      | 3 GB     | 0.74       | 80, 90 (89.9)               |
/// | b5  | 12 MB       | 250 MB   | no ndcg    | 2, 3 (2.99)                 |
fn runs() -> Vec<RunResult> {
    let row = |b: i64, bytes: f64, rss: f64, ndcg: Option<f64>, lat: [f64; 2]| {
        let mut m = vec![
            (MetricId::ModelBytes, vec![bytes]),
            (MetricId::PeakRss, vec![rss]),
            (MetricId::QueryLatency, lat.to_vec()),
        ];
        if let Some(n) = ndcg {
            m.push((MetricId::NdcgAt10, vec![n]));
        }
        fixtures::result("retrieval", b, "c", &m)
    };
    vec![
        row(1, 90e6, 400e6, Some(0.62), [10.0, 12.0]),
        row(2, 23e6, 300e6, Some(0.55), [4.0, 5.0]),
        row(3, 440e6, 1.2e9, Some(0.71), [40.0, 60.0]),
        row(4, 1.3e9, 3e9, Some(0.74), [80.0, 90.0]),
        row(5, 12e6, 250e6, None, [2.0, 3.0]),
    ]
}

fn track(budgets: &[&str], objective: &str) -> TrackConfig {
    TrackConfig {
        name: "t".into(),
        description: String::new(),
        budgets: budgets.iter().map(|s| s.to_string()).collect(),
        objective: objective.into(),
    }
}

fn ranking(t: &TrackConfig) -> TrackRanking {
    let rs = runs();
    let refs: Vec<&RunResult> = rs.iter().collect();
    rank(t, &refs, &|r: &RunResult| r.label()).unwrap()
}

fn order(r: &TrackRanking) -> Vec<(&str, usize)> {
    r.ranked
        .iter()
        .map(|x| (x.label.as_str(), x.rank))
        .collect()
}

#[test]
fn best_quality_under_500_megabytes() {
    // b4 (1.3 GB) is out; b5 has no quality; the rest by nDCG: b3 0.71, b1 0.62, b2 0.55
    let r = ranking(&track(&["model_bytes <= 500MB"], "max ndcg_at_10"));
    assert_eq!(
        order(&r),
        vec![("batch=3", 1), ("batch=1", 2), ("batch=2", 3)]
    );
    assert_eq!(r.objective, "max ndcg_at_10");
    let why: Vec<(&str, &Vec<String>)> = r
        .out
        .iter()
        .map(|o| (o.label.as_str(), &o.reasons))
        .collect();
    assert_eq!(why.len(), 2);
    assert_eq!(why[0].0, "batch=4");
    assert_eq!(
        why[0].1,
        &vec!["model_bytes 1300000000 bytes, budget <= 500000000".to_string()]
    );
    assert_eq!(why[1].0, "batch=5");
    assert_eq!(why[1].1, &vec!["no ndcg_at_10 value".to_string()]);
}

#[test]
fn p99_latency_and_memory_budgets_together() {
    // p99 of two samples [a, b] (type 7) = a + 0.99 (b - a): b1 11.98, b2 4.99, b3 59.8
    // peak_rss <= 1GiB (1 073 741 824) drops b3 and b4; p99 <= 10 ms drops b1 (and b3, b4)
    let r = ranking(&track(
        &["query_latency:p99 <= 10", "peak_rss <= 1GiB"],
        "max ndcg_at_10",
    ));
    assert_eq!(order(&r), vec![("batch=2", 1)]);
    let b3 = r.out.iter().find(|o| o.label == "batch=3").unwrap();
    assert_eq!(b3.reasons.len(), 2, "{:?}", b3.reasons);
    assert!(
        b3.reasons[0].starts_with("query_latency:p99 59.80 ms, budget <= 10"),
        "{:?}",
        b3.reasons
    );
    assert!(
        b3.reasons[1].starts_with("peak_rss 1200000000 bytes"),
        "{:?}",
        b3.reasons
    );
    let b1 = r.out.iter().find(|o| o.label == "batch=1").unwrap();
    assert_eq!(
        b1.reasons,
        vec!["query_latency:p99 11.98 ms, budget <= 10".to_string()]
    );
}

#[test]
fn smallest_model_reaching_a_quality() {
    // nDCG >= 0.6: b1 (90 MB), b3 (440 MB), b4 (1.3 GB); smallest first
    let r = ranking(&track(&["ndcg_at_10 >= 0.6"], "min model_bytes"));
    assert_eq!(
        order(&r),
        vec![("batch=1", 1), ("batch=3", 2), ("batch=4", 3)]
    );
    let b2 = r.out.iter().find(|o| o.label == "batch=2").unwrap();
    assert_eq!(
        b2.reasons,
        vec!["ndcg_at_10 0.5500 score, budget >= 0.6000".to_string()]
    );
    // a metric alone keeps its own direction (model_bytes: lower is better)
    assert_eq!(
        order(&ranking(&track(&["ndcg_at_10 >= 0.6"], "model_bytes"))),
        order(&r)
    );
}

#[test]
fn ties_share_a_rank_and_failed_runs_are_out() {
    let mut rs = runs();
    rs[0].metrics.retain(|m| m.name != MetricId::NdcgAt10);
    rs[0]
        .metrics
        .push(Metric::scalar(MetricId::NdcgAt10, 0.71, "synthetic"));
    rs[2].status.state = RunState::Failed;
    rs[2].status.reason = Some("out of memory".into());
    rs[3]
        .metrics
        .push(Metric::scalar(MetricId::Energy, 5.0, "estimate-tdp"));
    let refs: Vec<&RunResult> = rs.iter().collect();
    let t = track(&["energy <= 100"], "max ndcg_at_10");
    let r = rank(&t, &refs, &|r: &RunResult| r.label()).unwrap();
    // energy exists only on b4, and there only as an estimate: nobody is inside
    assert!(r.ranked.is_empty());
    let b4 = r.out.iter().find(|o| o.label == "batch=4").unwrap();
    assert!(
        b4.reasons[0].contains("is an estimate (estimate-tdp)"),
        "{:?}",
        b4.reasons
    );
    let b3 = r.out.iter().find(|o| o.label == "batch=3").unwrap();
    assert_eq!(b3.reasons, vec!["run failed: out of memory".to_string()]);
    // without the budget: b4 0.74, b1 0.71, b2 0.55 (b3 failed, b5 has no nDCG)
    let r = rank(&track(&[], "max ndcg_at_10"), &refs, &|r: &RunResult| {
        r.label()
    })
    .unwrap();
    assert_eq!(
        order(&r),
        vec![("batch=4", 1), ("batch=1", 2), ("batch=2", 3)]
    );
    rs[3].metrics.retain(|m| m.name != MetricId::NdcgAt10);
    rs[3]
        .metrics
        .push(Metric::scalar(MetricId::NdcgAt10, 0.71, "synthetic"));
    let refs: Vec<&RunResult> = rs.iter().collect();
    let r = rank(&track(&[], "max ndcg_at_10"), &refs, &|r: &RunResult| {
        r.label()
    })
    .unwrap();
    assert_eq!(
        order(&r),
        vec![("batch=1", 1), ("batch=4", 1), ("batch=2", 3)]
    );
}

#[test]
fn bad_budgets_are_explained() {
    let e = Condition::parse("model_bytes 500").unwrap_err();
    assert!(e.contains("expected METRIC OP NUMBER"), "{e}");
    let e = Condition::parse("model_size <= 5").unwrap_err();
    assert!(e.contains("unknown metric 'model_size'"), "{e}");
    let e = Condition::parse("query_latency:p42 <= 5").unwrap_err();
    assert!(e.contains("unknown statistic 'p42'"), "{e}");
    let e = Condition::parse("query_latency <= fast").unwrap_err();
    assert!(e.contains("'fast' is not a number (in ms"), "{e}");
    assert_eq!(Condition::parse("peak_rss < 2kB").unwrap().bound, 2000.0);
    assert_eq!(Condition::parse("ndcg_at_10>=0.5").unwrap().op, ">=");
    let e = track(&[], "best ndcg").check().unwrap_err();
    assert!(e.contains("objective 'best ndcg'"), "{e}");
    let e = track(&["x"], "ndcg_at_10").check().unwrap_err();
    assert!(e.contains("budget 'x'"), "{e}");
}

#[test]
fn track_files_are_checked() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("t.toml");
    std::fs::write(&p, "[[tracks]]\nname = \"x\"\nobjective = \"max ndcg_at_10\"\nbudgets = [\"peak_rss <= 1GiB\"]\n").unwrap();
    assert_eq!(read_file(&p).unwrap()[0].budgets.len(), 1);
    std::fs::write(&p, "[[tracks]]\nname = \"x\"\nobjective = \"max ndcg\"\n").unwrap();
    let e = read_file(&p).unwrap_err().to_string();
    assert!(e.contains("[[tracks]] #1: objective 'max ndcg'"), "{e}");
    std::fs::write(&p, "[[tracks]]\nnam = \"x\"\n").unwrap();
    let e = read_file(&p).unwrap_err().to_string();
    assert!(e.contains("t.toml:2:1: unknown field `nam`"), "{e}");
}
