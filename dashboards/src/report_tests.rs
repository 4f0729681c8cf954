use super::*;
use crate::columns::Stat;
use crate::fixtures::synthetic_results;
use effbench_harness::MetricId;

fn opts() -> Options {
    Options::default()
}

#[test]
fn one_row_per_run_in_natural_order_with_hardware() {
    let rs = synthetic_results("r", 6, 1);
    let rep = build(&rs, &opts()).unwrap();
    assert_eq!(rep.rows.len(), 6);
    assert!(rep.columns.contains(&Column::Hardware));
    // dtype order within equal batch/prompt: bf16, f16, f32 (text order)
    let runs: Vec<String> = rep
        .rows
        .iter()
        .map(|r| match &r.cells[0] {
            Cell::Text(t) => t.clone(),
            c => panic!("{c:?}"),
        })
        .collect();
    assert!(runs[0].contains("dtype=bf16 batch=1"), "{runs:?}");
    assert!(runs[1].contains("dtype=bf16 batch=4"), "{runs:?}");
}

#[test]
fn sort_best_first_and_reverse() {
    let rs = synthetic_results("r", 9, 1);
    let col = Column::Metric(MetricId::OutputThroughput, Stat::Value);
    let mut o = opts();
    o.columns = Some(vec![Column::Run, col.clone()]);
    o.sort = Some(col);
    let rep = build(&rs, &o).unwrap();
    let v: Vec<f64> = rep
        .rows
        .iter()
        .map(|r| r.cells[1].number().unwrap())
        .collect();
    assert!(v.windows(2).all(|w| w[0] >= w[1]), "{v:?}");
    o.reverse = true;
    let rep = build(&rs, &o).unwrap();
    let v: Vec<f64> = rep
        .rows
        .iter()
        .map(|r| r.cells[1].number().unwrap())
        .collect();
    assert!(v.windows(2).all(|w| w[0] <= w[1]), "{v:?}");
    // lower-is-better metric: ascending, sorting by a column that is not shown
    o.reverse = false;
    o.sort = Some(Column::Metric(MetricId::Ttft, Stat::P50));
    let rep = build(&rs, &o).unwrap();
    let ttft: Vec<f64> = rep
        .rows
        .iter()
        .map(|r| {
            let id = &r.ids[0];
            rs.iter()
                .find(|x| &x.id == id)
                .unwrap()
                .metric(MetricId::Ttft)
                .unwrap()
                .stats
                .as_ref()
                .unwrap()
                .p50
        })
        .collect();
    assert!(ttft.windows(2).all(|w| w[0] <= w[1]), "{ttft:?}");
}

#[test]
fn group_by_takes_geometric_means() {
    let rs = synthetic_results("r", 9, 1);
    let mut o = opts();
    o.group_by = vec!["dtype".into()];
    let rep = build(&rs, &o).unwrap();
    assert_eq!(rep.rows.len(), 3);
    let k = rep
        .columns
        .iter()
        .position(|c| *c == Column::Metric(MetricId::OutputThroughput, Stat::Value))
        .unwrap();
    let f32s: Vec<f64> = rs
        .iter()
        .filter(|r| r.config.param("dtype").unwrap().to_string() == "f32")
        .map(|r| r.metric(MetricId::OutputThroughput).unwrap().value)
        .collect();
    let geo = (f32s.iter().map(|v| v.ln()).sum::<f64>() / f32s.len() as f64).exp();
    let row = rep
        .rows
        .iter()
        .find(|r| r.cells[0] == Cell::Text("dtype=f32".into()))
        .unwrap();
    assert!((row.cells[k].number().unwrap() - geo).abs() < 1e-9 * geo);
    assert_eq!(row.cells[1], Cell::Number(3.0, "count"));
    let e = build(
        &rs,
        &Options {
            group_by: vec!["color".into()],
            ..opts()
        },
    )
    .unwrap_err();
    assert!(
        e.contains("--group-by 'color'") && e.contains("dtype"),
        "{e}"
    );
}

#[test]
fn baseline_matches_other_axes_and_orients_speedup() {
    let rs = synthetic_results("r", 9, 1);
    let thr = Column::Metric(MetricId::OutputThroughput, Stat::Value);
    let ttft = Column::Metric(MetricId::Ttft, Stat::Value);
    let mut o = opts();
    o.columns = Some(vec![Column::Run, thr.clone(), ttft.clone()]);
    o.baseline = Some("dtype=f32".into());
    let rep = build(&rs, &o).unwrap();
    for row in &rep.rows {
        let r = rs.iter().find(|x| x.id == row.ids[0]).unwrap();
        let base = rs
            .iter()
            .find(|b| {
                b.config.param("dtype").unwrap().to_string() == "f32"
                    && b.config.param("batch") == r.config.param("batch")
                    && b.config.param("prompt_len") == r.config.param("prompt_len")
            })
            .unwrap();
        let v = |x: &RunResult, m| x.metric(m).unwrap().value;
        let want_thr = v(r, MetricId::OutputThroughput) / v(base, MetricId::OutputThroughput);
        let want_ttft = v(base, MetricId::Ttft) / v(r, MetricId::Ttft);
        assert!((row.speedup[1].unwrap() - want_thr).abs() < 1e-12);
        assert!((row.speedup[2].unwrap() - want_ttft).abs() < 1e-12);
        assert_eq!(row.is_baseline, base.id == r.id);
        assert_eq!(row.speedup[0], None);
    }
    let e = build(
        &rs,
        &Options {
            baseline: Some("dtype=f64".into()),
            ..opts()
        },
    )
    .unwrap_err();
    assert!(e.contains("matches no run"), "{e}");
    // grouped: the group's value names the baseline
    let mut g = opts();
    g.group_by = vec!["dtype".into()];
    g.baseline = Some("f32".into());
    let rep = build(&rs, &g).unwrap();
    assert_eq!(rep.rows.iter().filter(|r| r.is_baseline).count(), 1);
    g.baseline = Some("f64".into());
    assert!(build(&rs, &g).unwrap_err().contains("names no group"));
}

#[test]
fn speedup_directions() {
    assert_eq!(speedup(10.0, 5.0, Better::Lower), Some(2.0));
    assert_eq!(speedup(10.0, 5.0, Better::Higher), Some(0.5));
    assert_eq!(speedup(0.0, 5.0, Better::Higher), None);
}

#[test]
fn estimates_are_marked_in_table_and_markdown_and_listed_in_json() {
    use crate::export::{exporter, Format};
    let mut rs = synthetic_results("e", 2, 1);
    rs[0].metrics.push(effbench_harness::Metric::scalar(
        MetricId::Energy,
        2.5,
        "estimate-tdp",
    ));
    rs[1].metrics.push(effbench_harness::Metric::scalar(
        MetricId::Energy,
        3.5,
        "rapl",
    ));
    let rep = build(&rs, &opts()).unwrap();
    let k = rep
        .columns
        .iter()
        .position(|c| *c == Column::Metric(MetricId::Energy, Stat::Value))
        .unwrap();
    let est: Vec<bool> = rep.rows.iter().map(|r| r.estimated[k]).collect();
    assert_eq!(est.iter().filter(|e| **e).count(), 1);
    assert!(rep.notes.iter().any(|n| n.starts_with("~ estimate")));
    let render = |f| String::from_utf8(exporter(f).serialize(&rep).unwrap()).unwrap();
    assert!(render(Format::Table).contains("~2.50"));
    assert!(render(Format::Markdown).contains("~2.50"));
    assert!(!render(Format::Markdown).contains("~3.50"));
    let json: serde_json::Value = serde_json::from_str(&render(Format::Json)).unwrap();
    let marked: Vec<&serde_json::Value> = json["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r.get("estimated"))
        .collect();
    assert_eq!(marked, [&serde_json::json!(["energy"])]);
    // CSV keeps plain numbers; the energy source column says which is which
    assert!(render(Format::Csv).contains("estimate-tdp"));
}
