use super::*;
use crate::fixtures::synthetic_results;
use effbench_harness::warnings::{Warning, WarningKind};
use effbench_harness::Metric;

/// Synthetic runs with everything a CPU quickstart run records (energy estimates, carbon,
/// cost, model size), so the default columns are as many as a real run's.
fn quickstart_like() -> Vec<RunResult> {
    let mut rs = synthetic_results("wide", 12, 7);
    for r in &mut rs {
        for (id, v) in [
            (MetricId::Energy, 12.5),
            (MetricId::EnergyPerOutputToken, 0.0123),
            (MetricId::Carbon, 0.0021),
            (MetricId::CostPer1mOutputTokens, 1.75),
            (MetricId::ModelBytes, 3.4e6),
        ] {
            r.metrics.push(Metric::scalar(id, v, "estimate-tdp"));
        }
    }
    rs
}

#[test]
fn summary_fits_120_columns_and_names_what_it_left_out() {
    let rs = quickstart_like();
    let all = crate::columns::default_columns(&rs);
    assert!(
        Table::from_results(&rs, &all).width() > SUMMARY_WIDTH,
        "the test needs a default table wider than {SUMMARY_WIDTH}"
    );
    let (cols, dropped) = summary_columns(&rs, SUMMARY_WIDTH);
    assert!(Table::from_results(&rs, &cols).width() <= SUMMARY_WIDTH);
    assert!(!dropped.is_empty());
    // the run and the headline metrics stay; the dropped ones are offered back
    assert!(cols.contains(&Column::Run));
    use crate::columns::Stat;
    assert!(cols.contains(&Column::Metric(MetricId::Ttft, Stat::P50)));
    assert!(cols.contains(&Column::Metric(MetricId::OutputThroughput, Stat::Value)));
    let text = summary_table(&rs, "results/x", true);
    let table_lines = text.lines().filter(|l| !l.starts_with("more columns"));
    for l in table_lines.filter(|l| !l.starts_with('~') && !l.starts_with("machine:")) {
        assert!(l.chars().count() <= SUMMARY_WIDTH, "{l}");
    }
    let hint = text
        .lines()
        .find(|l| l.starts_with("more columns"))
        .unwrap();
    for c in &dropped {
        assert!(hint.contains(&c.key()), "{hint}");
    }
    // the named columns parse back as `show --columns` takes them
    let keys = hint
        .split("--columns ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    assert!(Column::parse_list(keys).is_ok(), "{keys}");
}

#[test]
fn headers_state_the_unit_of_their_cells() {
    let rs = quickstart_like();
    let cols = [
        Column::Metric(MetricId::PeakRss, crate::columns::Stat::Value),
        Column::ModelBytes,
    ];
    let t = Table::from_results(&rs, &cols);
    // cells are `412 MiB`: the header must not claim bytes
    assert!(
        t.headers.iter().all(|h| !h.contains("(bytes)")),
        "{:?}",
        t.headers
    );
    assert!(
        t.rows[0]
            .iter()
            .all(|(c, _)| c.contains("MiB") || c.contains("KiB") || c.contains("GiB")),
        "{:?}",
        t.rows[0]
    );
}

#[test]
fn each_warning_kind_is_said_once_with_its_runs() {
    let mut rs = synthetic_results("warn", 6, 3);
    let w = |kind, msg: &str| Warning {
        kind,
        message: msg.into(),
        hint: "Close other programs.".into(),
    };
    for (i, r) in rs.iter_mut().enumerate() {
        r.warnings.push(w(
            WarningKind::BusyMachine,
            "other processes used 40 % of the CPUs.",
        ));
        if i < 2 {
            r.warnings
                .push(w(WarningKind::HighVariance, &format!("CV {i}0 %.")));
        }
    }
    let text = warnings_summary(&rs);
    assert_eq!(text.lines().count(), 2, "{text}");
    assert_eq!(text.matches("busy_machine").count(), 1, "{text}");
    assert!(
        text.contains("busy_machine (all 6 runs): other processes used 40 %"),
        "{text}"
    );
    let hv = text.lines().find(|l| l.contains("high_variance")).unwrap();
    assert!(
        hv.contains("2 of 6 runs") && hv.contains("e.g. CV 00 %"),
        "{hv}"
    );
    assert!(
        hv.contains(&rs[0].label()) && hv.contains(&rs[1].label()),
        "{hv}"
    );
    assert_eq!(warnings_summary(&synthetic_results("none", 3, 1)), "");
}
