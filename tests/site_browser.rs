//! The static site in a real browser (headless Chromium driven over the DevTools pipe):
//! sorting a column, moving a Dynascore slider (the ranking must change exactly as the Rust
//! implementation predicts), JavaScript/Rust arithmetic parity to 1e-9, hostile strings that
//! must stay inert, lazily loaded row data, and the site `effbench run` writes. Screenshots
//! go to results/ as CI artifacts. Skips with a reason when Chromium is absent, unless
//! EFFBENCH_REQUIRE_EXTERNAL=1.

#[path = "common/cdp.rs"]
mod cdp;
mod common;
#[path = "common/site_page.rs"]
mod site_page;

use cdp::{chromium_or_skip, Browser};
use common::*;
use effbench_dashboards::fixtures::{inject, synthetic_results};
use effbench_harness::analysis::dynascore::{dynascore, DynaMetric};
use effbench_harness::Better;
use serde_json::json;
use site_page::*;

#[test]
fn leaderboard_sorts_reranks_and_matches_rust_in_chromium() {
    let Some(exe) = chromium_or_skip("leaderboard_sorts_reranks_and_matches_rust_in_chromium")
    else {
        return;
    };
    let w = Work::new();
    let mut rs = synthetic_results("browser", 27, 5);
    inject(&mut rs, PAYLOAD);
    for r in &rs {
        effbench_harness::result::write_json(
            &w.path().join("res").join(format!("{}.json", r.id)),
            r,
        )
        .unwrap();
    }
    let o = w.run(&["site", "res", "--out", "site"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("site: site/index.html"),
        "{}",
        stdout(&o)
    );

    let mut b = Browser::launch(&exe);
    b.open(&url(&w.path().join("site/index.html")));
    inert(&mut b, "index");
    let href = b.eval("document.querySelector('a[href^=\"suites/\"]').getAttribute('href')");
    b.open(&url(&w.path().join("site").join(href.as_str().unwrap())));
    b.wait_for("window.EB && EB.data");
    inert(&mut b, "suite page");
    let data = page_data(&mut b);
    let n = data["rows"].as_array().unwrap().len();
    assert_eq!(n, 27);

    // 1. the default ranking is Rust's
    let defaults: Vec<f64> = data["dyna"]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["weight"].as_f64().unwrap())
        .collect();
    let (m0, rows) = rust_input(&data, &defaults);
    let r0 = dynascore(&m0, &rows).unwrap();
    let before = expected_rank_order(&data, &r0);
    assert_eq!(dom_keys(&mut b), before, "initial ranking");

    // 2. sorting a column by clicking its header: best (lowest ttft) first, then reversed
    let cols = data["cols"].as_array().unwrap();
    let c = cols.iter().position(|c| c["key"] == "ttft").unwrap();
    let mut by_ttft: Vec<usize> = (0..n).collect();
    let v = |i: usize| data["rows"][i]["v"][c].as_f64().unwrap_or(f64::INFINITY);
    by_ttft.sort_by(|&a, &b| v(a).total_cmp(&v(b)).then(a.cmp(&b)));
    let keys = |idx: &[usize]| -> Vec<String> {
        idx.iter()
            .map(|&i| data["rows"][i]["k"].as_str().unwrap().to_string())
            .collect()
    };
    b.click(&format!("th[data-sort=\"v:{c}\"]"));
    assert_eq!(dom_keys(&mut b), keys(&by_ttft), "sorted by ttft ascending");
    b.click(&format!("th[data-sort=\"v:{c}\"]"));
    let mut desc = by_ttft.clone();
    desc.sort_by(|&a, &b| v(b).total_cmp(&v(a)).then(a.cmp(&b)));
    assert_eq!(dom_keys(&mut b), keys(&desc), "sorted by ttft descending");
    b.click("th[data-sort=\"rank\"]");
    assert_eq!(dom_keys(&mut b), before);

    // 3. moving the ttft weight slider to its maximum re-ranks exactly as Rust predicts
    let k = data["dyna"]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .position(|m| m["name"] == "ttft")
        .unwrap();
    b.press(&format!("#w-{k}"), "End", 35);
    let weights: Vec<f64> = b
        .eval(
            "Array.from(document.querySelectorAll('input[type=range][data-i]')).map(e => +e.value)",
        )
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert_eq!(weights[k], 10.0, "the slider moved to its maximum");
    let (m1, _) = rust_input(&data, &weights);
    let r1 = dynascore(&m1, &rows).unwrap();
    let after = expected_rank_order(&data, &r1);
    assert_ne!(
        after, before,
        "the fixture must make this weight change the ranking"
    );
    assert_eq!(dom_keys(&mut b), after, "ranking after moving the slider");
    let shown: Vec<(String, f64)> = b
        .eval("Array.from(document.querySelectorAll('#leaderboard tbody tr')).map(tr => [tr.dataset.key, tr.children[1].dataset.score])")
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p[1] != "")
        .map(|p| (p[0].as_str().unwrap().to_string(), p[1].as_str().unwrap().parse().unwrap()))
        .collect();
    for (row, (key, score)) in r1.rows.iter().zip(&shown) {
        let d = &data["dyna"]["rows"][row.index];
        assert_eq!(
            data["rows"][d.as_u64().unwrap() as usize]["k"]
                .as_str()
                .unwrap(),
            key
        );
        assert!(
            (score - row.dynascore).abs() <= 1e-9 * row.dynascore.abs().max(1.0),
            "{key}: {score} vs {}",
            row.dynascore
        );
    }
    b.screenshot(&artifact("site-browser-test.png"));

    // 4. the same arithmetic on many weight vectors, a hand-worked table and the error cases
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let (mut identical, mut compared) = (0, 0);
    let varies: Vec<bool> = data["dyna"]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["varies"] == true)
        .collect();
    for trial in 0..40 {
        // as the page allows: metrics that do not vary keep weight 0
        let w: Vec<f64> = (0..m0.len())
            .map(|k| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                if varies[k] {
                    (seed % 21) as f64 * 0.5
                } else {
                    0.0
                }
            })
            .collect();
        let (m, _) = rust_input(&data, &w);
        let rust = dynascore(&m, &rows);
        compared += rust.as_ref().map_or(0, |r| r.rows.len());
        identical += assert_same(
            &js_dynascore(&mut b, &m, &rows),
            &rust,
            &format!("trial {trial} {w:?}"),
        );
    }
    eprintln!("JS vs Rust: {identical} of {compared} scores bit-identical");
    assert!(compared >= 30 * 26, "too few successful trials: {compared}");
    // the same operations in the same order give the same bits, not merely close numbers
    assert_eq!(
        identical, compared,
        "scores within 1e-9 but not bit-identical"
    );
    let hand = [
        DynaMetric {
            name: "acc".into(),
            better: Better::Higher,
            weight: 4.0,
            offset: 0.0,
        },
        DynaMetric {
            name: "thr".into(),
            better: Better::Higher,
            weight: 1.0,
            offset: 0.0,
        },
        DynaMetric {
            name: "mem".into(),
            better: Better::Lower,
            weight: 1.0,
            offset: 16.0,
        },
    ];
    let table = vec![
        vec![70.0, 100.0, 4.0],
        vec![80.0, 50.0, 8.0],
        vec![90.0, 20.0, 12.0],
    ];
    let js = js_dynascore(&mut b, &hand, &table);
    assert_same(&js, &dynascore(&hand, &table), "hand-worked");
    assert_eq!(js["rows"][0]["dynascore"], json!(62.5));
    for (rows, what) in [
        (vec![vec![1.0, 2.0, 3.0]], "one row"),
        (
            vec![vec![1.0, 2.0, 3.0], vec![1.0, 3.0, 4.0]],
            "flat performance",
        ),
        (
            vec![vec![1.0, 2.0, 3.0], vec![2.0, 2.0, 4.0]],
            "zero variance",
        ),
        (vec![vec![1.0, 2.0], vec![2.0, 2.0, 4.0]], "dimension"),
    ] {
        assert_same(
            &js_dynascore(&mut b, &hand, &rows),
            &dynascore(&hand, &rows),
            what,
        );
    }

    // 5. number formatting agrees with the Rust formatter the server-rendered rows use
    let values = [
        0.0,
        1e-4,
        0.00123,
        0.0123,
        0.125,
        0.375,
        1.005,
        2.5,
        12.25,
        99.95,
        123.5,
        1234.5,
        999999.5,
        1e6,
        1.125e7,
        -3.25159,
        512.0,
        1023.9,
        1024.0,
        3670016.0,
        135e6,
        2.5e9,
        f64::NAN,
    ];
    for unit in ["ms", "bytes", "count", "tok/s"] {
        let js = b.eval(&format!(
            "[{}].map(v => EB.fmt(v, {unit:?}))",
            values
                .iter()
                .map(|v| if v.is_nan() {
                    "NaN".to_string()
                } else {
                    format!("{v:e}")
                })
                .collect::<Vec<_>>()
                .join(",")
        ));
        for (i, v) in values.iter().enumerate() {
            assert_eq!(
                js[i].as_str().unwrap(),
                effbench_dashboards::format::value(*v, unit),
                "fmt({v}, {unit})"
            );
        }
    }

    // 6. a run page with the payload everywhere stays inert and has its charts
    let first = data["rows"][0]["k"].as_str().unwrap().to_string();
    b.open(&url(&w
        .path()
        .join("site/runs")
        .join(format!("{first}.html"))));
    inert(&mut b, "run page");
    assert!(
        b.eval("document.querySelectorAll('svg.chart').length")
            .as_u64()
            .unwrap()
            >= 4
    );
    let errors = b.errors();
    assert!(
        errors.is_empty(),
        "page errors (a CSP report means markup was injected): {errors:?}"
    );
}

#[test]
fn big_suite_loads_rows_on_demand_in_chromium() {
    let Some(exe) = chromium_or_skip("big_suite_loads_rows_on_demand_in_chromium") else {
        return;
    };
    let w = Work::new();
    let rs = synthetic_results("lazy", 300, 9);
    for r in &rs {
        effbench_harness::result::write_json(
            &w.path().join("res").join(format!("{}.json", r.id)),
            r,
        )
        .unwrap();
    }
    let o = w.run(&[
        "site",
        "res",
        "--out",
        "site",
        "--inline-limit",
        "1000",
        "--page-size",
        "50",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let mut b = Browser::launch(&exe);
    b.open(&url(&w.path().join("site/suites/synthetic-lazy.html")));
    assert_eq!(
        b.eval("document.getElementById('eb-data') === null && !window.EB_DATA"),
        json!(true)
    );
    assert_eq!(dom_keys(&mut b).len(), 50, "the first page is in the HTML");
    b.click("th[data-sort=\"v:0\"]");
    b.wait_for("window.EB_DATA && EB.data");
    let data = b.eval("window.EB_DATA");
    let c = 0;
    let v = |i: usize| data["rows"][i]["v"][c].as_f64().unwrap_or(f64::INFINITY);
    let mut idx: Vec<usize> = (0..300).collect();
    let desc = data["cols"][c]["better"] == "higher";
    idx.sort_by(|&a, &b| {
        if desc {
            v(b).total_cmp(&v(a))
        } else {
            v(a).total_cmp(&v(b))
        }
        .then(a.cmp(&b))
    });
    let want: Vec<String> = idx[..50]
        .iter()
        .map(|&i| data["rows"][i]["k"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(dom_keys(&mut b), want);
    b.click("#next");
    assert_eq!(
        dom_keys(&mut b)[0],
        data["rows"][idx[50]]["k"].as_str().unwrap()
    );
    assert!(b.errors().is_empty(), "{:?}", b.errors());
}

/// What a user sees after `effbench run`: the site's path is printed, and the page shows the
/// runs in a table with plots, without errors.
#[test]
fn run_writes_a_site_that_opens_in_chromium() {
    let Some(exe) = chromium_or_skip("run_writes_a_site_that_opens_in_chromium") else {
        return;
    };
    let w = Work::new();
    w.write(
        "s.toml",
        &tiny_suite(
            "tiny",
            "dtype = [\"f32\", \"bf16\"]\nbatch = [1, 2]\nprompt_len = 8\ngen_len = 4",
            QUICK,
        ),
    );
    let o = w.run(&["run", "s.toml"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("site: results/site/index.html"),
        "{}",
        stderr(&o)
    );
    let mut b = Browser::launch(&exe);
    b.open(&url(&w.path().join("results/site/suites/tiny.html")));
    b.wait_for("window.EB && EB.data");
    assert_eq!(dom_keys(&mut b).len(), 4);
    assert!(
        b.eval("document.querySelectorAll('#plots svg.chart').length")
            .as_u64()
            .unwrap()
            >= 2
    );
    let headers = b
        .eval("document.querySelector('#leaderboard thead').innerText")
        .as_str()
        .unwrap()
        .to_string();
    for h in [
        "ttft",
        "output_throughput",
        "peak_rss",
        "tok/s",
        "ms",
        "bytes",
        "hardware",
        "date",
    ] {
        assert!(headers.contains(h), "missing header {h}: {headers}");
    }
    b.screenshot(&artifact("site-run-suite.png"));
    let key = dom_keys(&mut b)[0].clone();
    b.open(&url(&w
        .path()
        .join("results/site/runs")
        .join(format!("{key}.html"))));
    assert!(
        b.eval("document.querySelectorAll('svg.chart').length")
            .as_u64()
            .unwrap()
            >= 4
    );
    b.screenshot(&artifact("site-run-page.png"));
    assert!(b.errors().is_empty(), "{:?}", b.errors());
}
