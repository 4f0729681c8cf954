//! `effbench pareto` and `effbench dynascore` on CSV tables: hand-worked answers, both
//! output formats, and every kind of bad input (one-line error naming the row/column, exit 2).

mod common;
use common::*;

const BOARD: &str =
    "model,acc,thr,mem,notes\nA,70,100,4,x\nB,80,50,8,y\nC,90,20,12,z\nD,65,40,10,w\n";

fn json(o: &std::process::Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", stderr(o));
    serde_json::from_str(&stdout(o)).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

#[test]
fn pareto_front_in_input_order_with_hypervolume() {
    let w = Work::new();
    w.write("b.csv", BOARD);
    // acc higher, mem lower: D (65, 10) is dominated by A (70, 4); A, B, C trade off.
    let o = w.run(&[
        "pareto",
        "--csv",
        "b.csv",
        "--metric",
        "acc:higher",
        "--metric",
        "mem:lower",
    ]);
    assert_eq!(json(&o), serde_json::json!(["A", "B", "C"]));
    // Reference (60, 14): staircase of (70,4), (80,8), (90,12) = 10*10 + 10*6 + 10*2 = 180.
    let o = w.run(&[
        "pareto",
        "--csv",
        "b.csv",
        "--metric",
        "acc:higher",
        "--metric",
        "mem:lower",
        "--ref",
        "60,14",
    ]);
    let v = json(&o);
    assert_eq!(v["front"], serde_json::json!(["A", "B", "C"]));
    assert_eq!(v["hypervolume"], 180.0);
    // another name column, three objectives, table output
    let o = w.run(&[
        "pareto",
        "--csv",
        "b.csv",
        "--name",
        "notes",
        "--metric",
        "acc:higher",
        "--metric",
        "thr:higher",
        "--metric",
        "mem:lower",
        "--format",
        "table",
    ]);
    let out = stdout(&o);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        out.contains("acc (higher)") && out.contains("mem (lower)"),
        "{out}"
    );
    assert!(out.contains("3 of 4 rows on the front"), "{out}");
    let w_line = out.lines().find(|l| l.starts_with("w ")).unwrap();
    assert!(!w_line.contains("yes"), "D/w is dominated: {w_line}");
}

#[test]
fn dynascore_of_a_hand_worked_table() {
    // The table of harness::analysis::dynascore's unit test, worked there by hand:
    // A = 55.8333, B = 58.75, C = 62.5 with weights 4:1:1, memory budget 16.
    let w = Work::new();
    w.write(
        "d.csv",
        "model,acc,thr,mem\nA,70,100,4\nB,80,50,8\nC,90,20,12\n",
    );
    let o = w.run(&[
        "dynascore",
        "--csv",
        "d.csv",
        "--perf",
        "acc",
        "--metric",
        "thr:higher",
        "--metric",
        "mem:lower:1:16",
    ]);
    let v = json(&o);
    let scores = v["scores"].as_array().unwrap();
    let got: Vec<(&str, f64, u64)> = scores
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap(),
                s["dynascore"].as_f64().unwrap(),
                s["rank"].as_u64().unwrap(),
            )
        })
        .collect();
    for ((name, score, rank), (wn, ws, wr)) in got.iter().zip([
        ("C", 62.5, 1),
        ("B", 58.75, 2),
        ("A", 55.833333333333336, 3),
    ]) {
        assert_eq!((*name, *rank), (wn, wr));
        assert!((score - ws).abs() < 1e-9, "{name}: {score} vs {ws}");
    }
    assert_eq!(v["amrs"]["acc"], 1.0);
    assert!((v["amrs"]["thr"].as_f64().unwrap() - 4.0).abs() < 1e-12);
    assert!((v["amrs"]["mem"].as_f64().unwrap() - 0.4).abs() < 1e-12);
    assert!((v["weights"]["acc"].as_f64().unwrap() - 4.0 / 6.0).abs() < 1e-12);
    let o = w.run(&[
        "dynascore",
        "--csv",
        "d.csv",
        "--perf",
        "acc:1",
        "--metric",
        "thr:higher:4",
        "--format",
        "table",
    ]);
    let out = stdout(&o);
    assert!(o.status.success(), "{}", stderr(&o));
    // weights 1:4 -> A = .2*70 + .8*100/4 = 34 ranks first
    let first = out.lines().nth(2).unwrap();
    assert!(first.contains(" A ") && first.contains("34.0"), "{out}");
    assert!(out.contains("AMRS"), "{out}");
}

fn bad(csv: &str, args: &[&str]) -> String {
    let w = Work::new();
    w.write("t.csv", csv);
    let mut all = vec![args[0], "--csv", "t.csv"];
    all.extend(&args[1..]);
    assert_clean_error(&w.run(&all), 2)
}

const P: [&str; 5] = ["pareto", "--metric", "acc:higher", "--metric", "mem:lower"];
const D: [&str; 5] = ["dynascore", "--perf", "acc", "--metric", "mem:lower"];

#[test]
fn bad_csv_input_names_the_row_and_column() {
    for cmd in [&P[..], &D[..]] {
        let e = bad("model,acc\nA,1\nB,2\n", cmd);
        assert!(
            e.contains("t.csv: no column 'mem' in the header (columns: model, acc)"),
            "{e}"
        );
        let e = bad("model,acc,mem,acc\nA,1,2,3\nB,2,3,4\n", cmd);
        assert!(
            e.contains("t.csv:1: duplicate column 'acc' (columns 2 and 4)"),
            "{e}"
        );
        let e = bad("model,acc,mem\nA,1,2\nB,two,3\n", cmd);
        assert!(
            e.contains("t.csv:3: row 'B', column 'acc': 'two' is not a number"),
            "{e}"
        );
        let e = bad("model,acc,mem\nA,1,NaN\nB,2,3\n", cmd);
        assert!(
            e.contains("t.csv:2: row 'A', column 'mem': 'NaN' is not a finite number"),
            "{e}"
        );
        let e = bad("model,acc,mem\nA,1,2\n", cmd);
        assert!(
            e.contains("t.csv: 1 data row(s)") && e.contains("needs at least 2"),
            "{e}"
        );
        let e = bad("model,acc,mem\nA,1,5\nB,2,5\n", cmd);
        assert!(
            e.contains("column 'mem' is 5 in every row (zero variance)"),
            "{e}"
        );
    }
    let e = bad(
        BOARD,
        &[
            "pareto",
            "--metric",
            "acc:higher",
            "--metric",
            "mem:smaller",
        ],
    );
    assert!(
        e.contains("'mem:smaller': unknown sense 'smaller' (use higher or lower)"),
        "{e}"
    );
    let e = bad(
        BOARD,
        &["dynascore", "--perf", "acc", "--metric", "mem:less:1"],
    );
    assert!(e.contains("unknown sense 'less'"), "{e}");
    let e = bad(
        BOARD,
        &["pareto", "--metric", "acc:higher", "--metric", "mem"],
    );
    assert!(e.contains("'mem': give the sense of a CSV column"), "{e}");
    let e = bad(
        BOARD,
        &[
            "pareto",
            "--metric",
            "acc:higher",
            "--metric",
            "mem:lower",
            "--ref",
            "1",
        ],
    );
    assert!(
        e.contains("--ref '1' has 1 value(s) but there are 2 metrics"),
        "{e}"
    );
    let e = bad(
        BOARD,
        &["dynascore", "--perf", "acc", "--metric", "mem:lower:x"],
    );
    assert!(e.contains("weight 'x' is not a finite number"), "{e}");
    let e = bad("model,acc,mem\nA,1,2\nB,2,3,4\n", &P);
    assert!(
        e.contains("t.csv:3: 4 field(s) but the header has 3"),
        "{e}"
    );
    let w = Work::new();
    let e = assert_clean_error(
        &w.run(&[
            "pareto", "--csv", "none.csv", "--metric", "a:higher", "--metric", "b:lower",
        ]),
        2,
    );
    assert!(e.contains("cannot read CSV file 'none.csv'"), "{e}");
}
