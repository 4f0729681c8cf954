//! Golden tests: markdown, CSV, JSON and table output of fixed synthetic results must match
//! the files in tests/golden/ byte for byte. After an intended change, regenerate them with
//! `EFFBENCH_UPDATE_GOLDEN=1 cargo test -p effbench-dashboards --test golden` and review the diff.

use effbench_dashboards::columns::Column;
use effbench_dashboards::export::{exporter, Format};
use effbench_dashboards::fixtures::synthetic_results;
use effbench_dashboards::report::{build, Options};
use std::path::PathBuf;

fn check(name: &str, got: &[u8]) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("EFFBENCH_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (create it with EFFBENCH_UPDATE_GOLDEN=1)",
            path.display()
        )
    });
    assert!(
        got == want.as_slice(),
        "{name} differs from the golden file {}:\n--- got ---\n{}\n--- want ---\n{}",
        path.display(),
        String::from_utf8_lossy(got),
        String::from_utf8_lossy(&want)
    );
}

fn render(format: Format, opts: &Options) -> Vec<u8> {
    let mut rs = synthetic_results("golden", 6, 7);
    // a model name that needs escaping in every format
    rs[0].model.as_mut().unwrap().name = "a|b,\"c\" <i>".into();
    let rep = build(&rs, opts).unwrap();
    exporter(format).serialize(&rep).unwrap()
}

fn runs() -> Options {
    Options {
        columns: Some(
            Column::parse_list(
                "run,model,ttft:p50,ttft:p99,tpot,output_throughput,peak_rss,hardware,date",
            )
            .unwrap(),
        ),
        ..Options::default()
    }
}

#[test]
fn markdown_per_run() {
    check("runs.md", &render(Format::Markdown, &runs()));
}

#[test]
fn csv_per_run() {
    check("runs.csv", &render(Format::Csv, &runs()));
}

#[test]
fn json_per_run() {
    check("runs.json", &render(Format::Json, &runs()));
}

#[test]
fn table_per_run() {
    check("runs.txt", &render(Format::Table, &runs()));
}

#[test]
fn markdown_and_csv_grouped_with_baseline() {
    let opts = Options {
        columns: Some(Column::parse_list("run,runs,ttft:p50,output_throughput,peak_rss").unwrap()),
        group_by: vec!["dtype".into()],
        baseline: Some("f32".into()),
        sort: Some(Column::parse("output_throughput").unwrap()),
        ..Options::default()
    };
    check("grouped.md", &render(Format::Markdown, &opts));
    check("grouped.csv", &render(Format::Csv, &opts));
}

#[test]
fn csv_with_baseline_per_run() {
    let opts = Options {
        columns: Some(Column::parse_list("run,ttft,output_throughput").unwrap()),
        baseline: Some("dtype=f32".into()),
        ..Options::default()
    };
    check("baseline.csv", &render(Format::Csv, &opts));
}
