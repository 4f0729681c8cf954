use super::*;
use crate::fixtures::{inject, synthetic_results};

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap()
}

#[test]
fn builds_every_page_and_data_json() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("site");
    let mut rs = synthetic_results("a", 30, 1);
    rs.extend(synthetic_results("b", 5, 2));
    let s = build(rs, &Options::new(&out)).unwrap();
    assert_eq!((s.suites, s.runs), (2, 35));
    assert!(out.join("index.html").is_file());
    assert!(out.join("suites/synthetic-a.html").is_file());
    assert!(out.join("assets/site.js").is_file());
    let runs = std::fs::read_dir(out.join("runs")).unwrap().count();
    assert_eq!(runs, 35);
    let data: serde_json::Value = serde_json::from_str(&read(&out.join("data.json"))).unwrap();
    assert_eq!(data["suites"].as_array().unwrap().len(), 2);
    let suite = &data["suites"][0];
    assert!(suite["dynascore"]["metrics"][0][0] == "output_throughput");
    let run = &suite["runs"][0];
    assert_eq!(run["rank"], 1);
    assert_eq!(run["metrics"]["ttft"]["unit"], "ms");
    let page = read(&out.join("suites/synthetic-a.html"));
    assert!(page.contains("ttft") && page.contains("tok/s") && page.contains("<svg"));
    assert!(page.contains("id=\"eb-data\""));
    // the site carries its definitions: every page links metrics.html, which has every metric
    assert!(
        page.contains("metrics.html\">metrics.html</a>") && page.contains("metrics.html#dynascore")
    );
    assert!(
        !page.contains("design.md"),
        "a published site cites no repository file"
    );
    let defs = read(&out.join("metrics.html"));
    for m in effbench_harness::MetricId::ALL {
        assert!(
            defs.contains(&format!("<tr id=\"{}\">", m.name())),
            "{}",
            m.name()
        );
    }
    assert!(defs.contains("id=\"dynascore\"") && defs.contains("id=\"pareto\""));
    // a rebuild replaces the old site (stale pages removed); a foreign directory is refused
    build(synthetic_results("a", 3, 1), &Options::new(&out)).unwrap();
    assert_eq!(std::fs::read_dir(out.join("runs")).unwrap().count(), 3);
    assert!(!out.join("suites/synthetic-b.html").exists());
    let foreign = dir.path().join("mine");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(foreign.join("notes.txt"), "x").unwrap();
    let e = build(synthetic_results("a", 3, 1), &Options::new(&foreign)).unwrap_err();
    assert!(e.to_string().contains("holds no effbench site"), "{e}");
}

#[test]
fn big_suites_load_rows_lazily_and_stay_small() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("site");
    let mut o = Options::new(&out);
    o.inline_limit = 10_000;
    build(synthetic_results("big", 400, 3), &o).unwrap();
    let page = read(&out.join("suites/synthetic-big.html"));
    assert!(!page.contains("id=\"eb-data\""));
    assert!(page.contains("synthetic-big.rows.js"));
    let js = read(&out.join("suites/synthetic-big.rows.js"));
    assert!(js.starts_with("window.EB_DATA = {"));
    // the first page of rows is in the HTML
    assert_eq!(page.matches("<tr data-key=").count(), 100);
}

/// Every user-provided string in every page is escaped: the payload never appears raw, and
/// the only script elements are the site's own.
#[test]
fn user_strings_are_escaped_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("site");
    let payload = "<script>alert(1)</script><img src=x onerror=alert(2)>\"'&";
    let mut rs = synthetic_results("xss", 12, 4);
    inject(&mut rs, payload);
    build(rs, &Options::new(&out)).unwrap();
    let mut pages = vec![out.join("index.html")];
    for d in ["suites", "runs"] {
        for e in std::fs::read_dir(out.join(d)).unwrap() {
            pages.push(e.unwrap().path());
        }
    }
    assert!(pages.len() > 12);
    for p in pages {
        let html = read(&p);
        assert!(!html.contains("<script>alert"), "{}", p.display());
        assert!(!html.contains("<img src=x"), "{}", p.display());
        assert!(!html.contains("onerror=alert(2)>"), "{}", p.display());
        let own = html
            .matches("<script src=\"../assets/site.js\"></script>")
            .count()
            + html
                .matches("<script type=\"application/json\" id=\"eb-data\">")
                .count()
            + html
                .matches("<script type=\"application/json\" id=\"eb-data-src\">")
                .count();
        assert_eq!(html.matches("<script").count(), own, "{}", p.display());
        if p.extension().is_some_and(|e| e == "html") && p.to_string_lossy().contains("/runs/") {
            assert!(
                html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;")
                    || html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
                "{}",
                p.display()
            );
        }
    }
}

#[test]
fn slugs_and_keys_are_safe_file_names() {
    assert_eq!(slug("Quick Start/../x"), "quick-start----x");
    assert_eq!(slug("<>"), "suite");
    let mut rs = synthetic_results("k", 2, 1);
    rs[0].id = "../../etc/passwd".into();
    let keys = page_keys(&rs);
    assert!(
        keys.iter().all(|k| k
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')),
        "{keys:?}"
    );
}

#[test]
fn small_or_failed_suites_explain_the_missing_dynascore() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("site");
    let mut rs = synthetic_results("one", 1, 1);
    let mut failed = synthetic_results("failed", 2, 1);
    for r in &mut failed {
        r.status.state = effbench_harness::records::RunState::Failed;
        r.status.reason = Some("out of memory".into());
        r.metrics.clear();
    }
    rs.extend(failed);
    let s = build(rs, &Options::new(&out)).unwrap();
    assert_eq!(s.suites, 2);
    let one = read(&out.join("suites/synthetic-one.html"));
    assert!(
        one.contains("Dynascore needs at least 2 successful runs"),
        "{one}"
    );
    let failed = read(&out.join("suites/synthetic-failed.html"));
    assert!(failed.contains("out of memory") && failed.contains("status-failed"));
    assert!(failed.contains("Not enough runs with metrics to plot"));
}

/// Estimated values (estimate-tdp energy) stay out of the leaderboard, plots and Dynascore;
/// measured energy goes in; the page names what was left out.
#[test]
fn estimates_stay_out_of_the_leaderboard() {
    use effbench_harness::{Metric, MetricId};
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("site");
    let mut rs = synthetic_results("est", 6, 4);
    for (i, r) in rs.iter_mut().enumerate() {
        let e = 1.0 + i as f64;
        r.metrics
            .push(Metric::scalar(MetricId::Energy, e, "estimate-tdp"));
        r.metrics
            .push(Metric::scalar(MetricId::PowerAvg, 10.0 * e, "rapl"));
    }
    let s = build(rs, &Options::new(&out)).unwrap();
    assert_eq!(s.runs, 6);
    let data: serde_json::Value = serde_json::from_str(&read(&out.join("data.json"))).unwrap();
    let suite = &data["suites"][0];
    let dyna: Vec<&str> = suite["dynascore"]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m[0].as_str().unwrap())
        .collect();
    assert!(
        !dyna.contains(&"energy") && dyna.contains(&"power_avg"),
        "{dyna:?}"
    );
    // data.json keeps the estimate with its source, for anyone who wants it
    assert_eq!(
        suite["runs"][0]["metrics"]["energy"]["source"],
        "estimate-tdp"
    );
    let page = read(&out.join("suites/synthetic-est.html"));
    assert!(page.contains("id=\"estimates-note\""), "note missing");
    let head = &page[page.find("<thead>").unwrap()..page.find("</thead>").unwrap()];
    assert!(!head.contains(">energy<"), "{head}");
    assert!(head.contains(">power_avg<"), "{head}");
}
