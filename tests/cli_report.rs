//! `effbench report` and `effbench site` from the command line: the four report formats over
//! results of two machines, and bad input (missing paths, unknown columns, axes and formats,
//! a corrupt result file) failing with one line naming the cause and exit code 2.

mod common;

use common::*;
use effbench_dashboards::fixtures::synthetic_results;

/// 12 synthetic results (two machines) under `res/`.
fn results(w: &Work) {
    for r in synthetic_results("cli", 12, 3) {
        effbench_harness::result::write_json(
            &w.path().join("res").join(format!("{}.json", r.id)),
            &r,
        )
        .unwrap();
    }
}

#[test]
fn report_writes_all_four_formats() {
    let w = Work::new();
    results(&w);
    for format in ["table", "markdown", "csv", "json"] {
        let o = w.run(&["report", "res", "--format", format]);
        assert_eq!(o.status.code(), Some(0), "{format}: {}", stderr(&o));
        let out = stdout(&o);
        match format {
            "table" => assert!(out.contains("ttft") && out.contains("(ms)"), "{out}"),
            "markdown" => assert!(out.lines().nth(1).unwrap().starts_with("|--"), "{out}"),
            "csv" => {
                let lines: Vec<&str> = out.lines().collect();
                assert_eq!(lines.len(), 13, "header + one line per run: {out}");
                assert!(lines[0].contains("ttft p50 (ms)"), "{}", lines[0]);
            }
            _ => {
                let v: serde_json::Value = serde_json::from_str(&out).unwrap();
                assert_eq!(v["rows"].as_array().unwrap().len(), 12);
            }
        }
        assert!(
            out.contains("Synthetic CPU A"),
            "{format}: hardware shown: {out}"
        );
    }
    let o = w.run(&[
        "report",
        "res",
        "--group-by",
        "dtype",
        "--baseline",
        "f32",
        "--format",
        "csv",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("speed-up (x)"), "{}", stdout(&o));
}

#[test]
fn report_and_site_reject_bad_input_with_one_line() {
    let w = Work::new();
    results(&w);
    let cases: &[(&[&str], &str)] = &[
        (&["report", "missing-dir"], "missing-dir"),
        (&["report", "res", "--format", "xml"], "xml"),
        (
            &["report", "res", "--columns", "ttft,nosuchmetric"],
            "nosuchmetric",
        ),
        (&["report", "res", "--sort", "nosuchmetric"], "nosuchmetric"),
        (&["report", "res", "--group-by", "nosuchaxis"], "nosuchaxis"),
        (&["site", "res", "--out", "out", "--plot", "ttft"], "--plot"),
        (&["site", "missing-dir", "--out", "out"], "missing-dir"),
    ];
    for (args, needle) in cases {
        let line = assert_clean_error(&w.run(args), 2);
        assert!(line.contains(needle), "{args:?}: {line}");
    }
    // a file that claims to be a result but does not parse is named
    w.write("res/broken.json", r#"{"schema_version": 1, "id": 5}"#);
    let line = assert_clean_error(&w.run(&["report", "res"]), 2);
    assert!(line.contains("broken.json"), "{line}");
    let line = assert_clean_error(&w.run(&["site", "res", "--out", "out"]), 2);
    assert!(line.contains("broken.json"), "{line}");
    // a non-empty directory that is not an earlier site is never overwritten
    std::fs::remove_file(w.path().join("res/broken.json")).unwrap();
    w.write("precious/notes.txt", "keep me");
    let line = assert_clean_error(&w.run(&["site", "res", "--out", "precious"]), 2);
    assert!(line.contains("precious"), "{line}");
    assert!(w.path().join("precious/notes.txt").is_file());
}
