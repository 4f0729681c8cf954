use super::*;
use effbench_harness::Metric;

#[test]
fn keys_round_trip() {
    for spec in [
        "run",
        "id",
        "suite",
        "status",
        "hardware",
        "host",
        "date",
        "backend",
        "model",
        "params",
        "model_size",
        "runs",
        "batch",
        "ttft",
        "ttft:p99",
        "itl:cv",
        "peak_rss",
        "source:energy",
        "measured:energy",
        "measured:ttft:p99",
    ] {
        let c = Column::parse(spec).unwrap();
        assert_eq!(c.key(), spec);
    }
    assert_eq!(
        Column::parse("ttft:mean").unwrap(),
        Column::Metric(MetricId::Ttft, Stat::Value)
    );
    assert_eq!(
        Column::parse("axis:quant").unwrap(),
        Column::Axis("quant".into())
    );
}

#[test]
fn bad_columns_explain() {
    let e = Column::parse("speed").unwrap_err();
    assert!(
        e.contains("unknown column 'speed'") && e.contains("ttft"),
        "{e}"
    );
    let e = Column::parse("ttft:p42").unwrap_err();
    assert!(e.contains("unknown statistic 'p42'"), "{e}");
}

#[test]
fn headers_carry_units() {
    assert_eq!(Column::parse("ttft:p99").unwrap().header(), "ttft p99 (ms)");
    assert_eq!(
        Column::parse("output_throughput").unwrap().header(),
        "output_throughput (tok/s)"
    );
    assert_eq!(Column::parse("itl:cv").unwrap().header(), "itl cv (%)");
    assert_eq!(date("2026-11-26T13:17:39Z"), "2026-11-26 13:17");
}

fn result_with(metrics: Vec<Metric>) -> RunResult {
    let env = serde_json::json!({
        "effbench_version": "0", "git_commit": "", "git_dirty": false,
        "rustc_version": "", "build_profile": "", "target": "", "features": [],
        "hostname": "", "os": "", "kernel": "", "arch": "", "cpu_model": "",
        "cpu_cores_physical": 1, "cpu_threads": 1, "ram_bytes": 1, "gpus": [], "nvml": ""
    });
    let mut r: RunResult = serde_json::from_value(serde_json::json!({
        "schema_version": 1, "id": "x", "suite": {"name": "t"},
        "config": {"id": "x", "suite": "t", "scenario": "inference", "backend": "b",
                   "params": {}, "seed": 1, "measure": {}},
        "status": {"state": "ok"}, "started_at": "", "finished_at": "",
        "iterations": 1, "measured_s": 1.0, "metrics": [],
        "stats_method": {"percentile": "", "stdev": "", "ci": "", "bootstrap_seed": 1},
        "env": env
    }))
    .unwrap();
    r.metrics = metrics;
    r
}

#[test]
fn estimates_are_marked_and_kept_out_of_measured_columns() {
    let est = result_with(vec![Metric::scalar(MetricId::Energy, 12.0, "estimate-tdp")]);
    let real = result_with(vec![Metric::scalar(MetricId::Energy, 30.0, "rapl")]);
    let metric = Column::Metric(MetricId::Energy, Stat::Value);
    assert_eq!(metric.cell(&est), Cell::Number(12.0, "J"));
    assert!(metric.is_estimate(&est) && !metric.is_estimate(&real));
    let measured = measured_only(vec![metric.clone()]).remove(0);
    assert_eq!(measured.header(), "measured energy (J)");
    assert_eq!(measured.cell(&est), Cell::Empty, "estimates only on opt-in");
    assert_eq!(measured.cell(&real), Cell::Number(30.0, "J"));
    assert_eq!(
        Column::Source(MetricId::Energy).cell(&est),
        Cell::Text("estimate-tdp".into())
    );
}

#[test]
fn dates_with_non_ascii_text_never_panic() {
    // A result file from elsewhere may hold anything in started_at (issue 14, class 4).
    assert_eq!(date("2026-11-26T13:17:00Z"), "2026-11-26 13:17");
    for odd in [
        "2026-11-26T12😀",
        "aééééTééééééééé",
        "2026-11-26Té",
        "",
        "2026-11-2é:17",
    ] {
        assert_eq!(date(odd), odd);
    }
}
