use super::*;
use crate::metric::Better;
use crate::records::analysis::ObjectiveSpec;

fn csv_file(text: &str) -> tempfile::NamedTempFile {
    let f = tempfile::Builder::new().suffix(".csv").tempfile().unwrap();
    std::fs::write(f.path(), text).unwrap();
    f
}

fn cols(c: &[&str]) -> Vec<String> {
    c.iter().map(|s| s.to_string()).collect()
}

#[test]
fn objective_syntax() {
    let o = ObjectiveSpec::parse("lat:lower:2:16", 2).unwrap();
    assert_eq!(
        o,
        ObjectiveSpec {
            column: "lat".into(),
            better: Some(Better::Lower),
            weight: Some(2.0),
            offset: Some(16.0)
        }
    );
    let p = ObjectiveSpec::parse("acc:3", 1).unwrap();
    assert_eq!((p.better, p.weight), (None, Some(3.0)));
    let e = ObjectiveSpec::parse("lat:faster", 0).unwrap_err();
    assert!(e.contains("unknown sense 'faster'"), "{e}");
    assert!(ObjectiveSpec::parse("lat:lower:1", 0)
        .unwrap_err()
        .contains("too many fields"));
    assert!(ObjectiveSpec::parse("lat:lower:x", 2)
        .unwrap_err()
        .contains("weight 'x'"));
    assert!(ObjectiveSpec::parse("lat:lower:-1", 2)
        .unwrap_err()
        .contains(">= 0"));
    let (id, m) = ObjectiveSpec::parse_metric("perplexity", true).unwrap();
    assert_eq!((id, m.better), (MetricId::Perplexity, Some(Better::Lower)));
    assert!(ObjectiveSpec::parse_metric("ppl", false)
        .unwrap_err()
        .contains("unknown metric"));
}

#[test]
fn reads_selected_columns_with_any_name_column() {
    let f = csv_file("model,acc,lat,notes\nA,0.7,10,fast\n\"B, big\",0.9,30,slow\n");
    let t = read_csv(f.path(), None, &cols(&["lat", "acc"])).unwrap();
    assert_eq!(t.names, vec!["A", "B, big"]);
    assert_eq!(t.rows, vec![vec![10.0, 0.7], vec![30.0, 0.9]]);
    let t = read_csv(f.path(), Some("notes"), &cols(&["acc"])).unwrap();
    assert_eq!(t.names, vec!["fast", "slow"]);
    t.check_rankable("pareto").unwrap();
}

#[test]
fn bad_tables_name_the_line_and_column() {
    let err = |text: &str, c: &[&str]| -> String {
        let f = csv_file(text);
        let e = read_csv(f.path(), None, &cols(c)).unwrap_err().to_string();
        assert!(e.starts_with(&f.path().display().to_string()), "{e}");
        e
    };
    assert!(err("m,a\nx,1\n", &["b"]).contains("no column 'b' in the header (columns: m, a)"));
    assert!(err("m,a,a\nx,1,2\n", &["a"]).contains(":1: duplicate column 'a' (columns 2 and 3)"));
    let e = err("m,a\nx,1\ny,fast\n", &["a"]);
    assert!(
        e.contains(":3: row 'y', column 'a': 'fast' is not a number"),
        "{e}"
    );
    let e = err("m,a\nx,NaN\n", &["a"]);
    assert!(
        e.contains(":2: row 'x', column 'a': 'NaN' is not a finite number"),
        "{e}"
    );
    assert!(err("m,a\nx,1,2\n", &["a"]).contains(":2: 3 field(s) but the header has 2"));
    assert!(err("m,a\nx,1\nx,2\n", &["a"]).contains(":3: row name 'x' appears twice"));
    assert!(err("", &["a"]).contains("empty file"));
    assert!(err("m,a\n,1\n", &["a"]).contains("(the row name) is empty"));
    let f = csv_file("m,a,b\nx,1,5\n");
    let one = read_csv(f.path(), None, &cols(&["a"])).unwrap();
    assert!(one
        .check_rankable("dynascore")
        .unwrap_err()
        .to_string()
        .contains("1 data row(s); dynascore needs at least 2"));
    let f = csv_file("m,a,b\nx,1,5\ny,2,5\n");
    let flat = read_csv(f.path(), None, &cols(&["a", "b"])).unwrap();
    let e = flat.check_rankable("pareto").unwrap_err().to_string();
    assert!(
        e.contains("column 'b' is 5 in every row (zero variance)"),
        "{e}"
    );
}
