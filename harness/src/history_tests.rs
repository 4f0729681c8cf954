use super::*;
use crate::fixtures::{result, ripple};

fn at(i: usize, ttft: f64, tput: f64) -> RunResult {
    let mut r = result(
        "s",
        1,
        &format!("c{i:02}"),
        &[
            (MetricId::Ttft, ripple(20, ttft, 1.0)),
            (MetricId::OutputThroughput, ripple(20, tput, 1.0)),
            (MetricId::PeakRss, vec![1e8]),
        ],
    );
    r.started_at = format!("2026-01-01T00:{i:02}:00.000Z");
    r
}

#[test]
fn entries_append_once_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h/history.jsonl");
    let mut delayed = at(1, 10.0, 100.0);
    delayed.config.measure.inject_delay_ms = 5.0;
    delayed.started_at = "2026-01-02T00:00:00.000Z".into();
    let (es, skipped) = entries_from(&[at(0, 10.0, 100.0), delayed], Some("main"));
    assert_eq!(es.len(), 3, "three metrics of the ok run");
    assert_eq!(skipped.len(), 1, "injected delays never enter the history");
    assert_eq!(es[0].n, 20);
    assert!(es[0].ci95.is_some());
    assert_eq!(es[2].n, 0, "peak_rss is a single value");
    assert_eq!(es[0].tag.as_deref(), Some("main"));
    assert_eq!(append(&path, &es).unwrap(), 3);
    assert_eq!(
        append(&path, &es).unwrap(),
        0,
        "appending the same runs again adds nothing"
    );
    let (back, torn) = read(&path).unwrap();
    assert_eq!(back.len(), es.len());
    for (b, e) in back.iter().zip(&es) {
        // serde_json parses floats to within 1 ulp, not always bit-exactly.
        assert_eq!(
            (&b.run_id, b.metric, b.n, &b.tag),
            (&e.run_id, e.metric, e.n, &e.tag)
        );
        assert!((b.value - e.value).abs() <= 1e-12 * e.value.abs());
    }
    assert!(torn.is_none());
    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 3);
    assert_eq!(read(&dir.path().join("none.jsonl")).unwrap().0.len(), 0);
}

#[test]
fn torn_last_line_is_skipped_but_a_bad_middle_line_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.jsonl");
    let (es, _) = entries_from(&[at(0, 10.0, 100.0)], None);
    append(&path, &es).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(b"{\"v\":1,\"recorded_at\":\"20").unwrap();
    let (back, torn) = read(&path).unwrap();
    assert_eq!(back.len(), 3);
    assert!(torn
        .unwrap()
        .contains("history.jsonl:4: incomplete last line"));
    // The next append cuts the torn line off first.
    assert_eq!(
        append(&path, &entries_from(&[at(1, 10.0, 100.0)], None).0).unwrap(),
        3
    );
    let (back, torn) = read(&path).unwrap();
    assert_eq!((back.len(), torn), (6, None));
    f.write_all(b"not json\n{}\n").unwrap();
    let e = read(&path).unwrap_err().to_string();
    assert!(e.contains("history.jsonl:7: not a history entry"), "{e}");
}

#[test]
fn trends_find_a_regression_with_its_commit() {
    let results: Vec<RunResult> = (0..14)
        .map(|i| {
            let slow = if i >= 8 { 1.2 } else { 1.0 };
            at(i, 10.0 * slow * (1.0 + 0.003 * (i % 3) as f64), 100.0)
        })
        .rev() // file order need not be time order
        .collect();
    let (es, _) = entries_from(&results, None);
    let ts = trends(&es, &ChangePointConfig::default());
    assert_eq!(ts.len(), 3, "ttft, output_throughput, peak_rss");
    let ttft = ts.iter().find(|t| t.metric == MetricId::Ttft).unwrap();
    assert_eq!(ttft.points.len(), 14);
    assert!(ttft.points[0].started_at < ttft.points[1].started_at);
    assert_eq!(ttft.change_points.len(), 1, "{:?}", ttft.change_points);
    let c = &ttft.change_points[0];
    assert_eq!((c.change.index, c.kind.as_str()), (8, "regression"));
    assert_eq!(c.git_commit, "c08");
    assert!((c.change.change_pct - 20.0).abs() < 1.0, "{c:?}");
    assert_eq!(ttft.segments.len(), 2);
    let tput = ts
        .iter()
        .find(|t| t.metric == MetricId::OutputThroughput)
        .unwrap();
    assert!(tput.change_points.is_empty());
    let json = serde_json::to_value(ttft).unwrap();
    assert_eq!(json["change_points"][0]["kind"], "regression");
    assert_eq!(
        json["change_points"][0]["index"], 8,
        "flattened change point"
    );
}
