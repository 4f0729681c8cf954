//! Helpers for tests/site_browser.rs: artifact paths, reading the leaderboard from the DOM,
//! and running the page's Dynascore JavaScript next to the Rust implementation.
#![allow(dead_code)]

use super::cdp::Browser;
use effbench_harness::analysis::dynascore::{DynaMetric, DynaResult};
use effbench_harness::Better;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

pub const PAYLOAD: &str = "<script>window.__xss=1</script><img src=x onerror=\"window.__xss=2\">";

pub fn artifact(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("results")
        .join(name)
}

pub fn url(p: &Path) -> String {
    format!("file://{}", p.canonicalize().unwrap().display())
}

pub fn dom_keys(b: &mut Browser) -> Vec<String> {
    let v = b.eval(
        "Array.from(document.querySelectorAll('#leaderboard tbody tr')).map(tr => tr.dataset.key)",
    );
    v.as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect()
}

pub fn better(v: &Value) -> Better {
    if v == "higher" {
        Better::Higher
    } else {
        Better::Lower
    }
}

/// The page's Dynascore input with the given weights, as the Rust function takes it.
pub fn rust_input(data: &Value, weights: &[f64]) -> (Vec<DynaMetric>, Vec<Vec<f64>>) {
    let d = &data["dyna"];
    let metrics: Vec<DynaMetric> = d["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .zip(weights)
        .map(|(m, w)| DynaMetric {
            name: m["name"].as_str().unwrap().into(),
            better: better(&m["better"]),
            weight: *w,
            offset: m["offset"].as_f64().unwrap(),
        })
        .collect();
    let rows = d["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let r = &data["rows"][i.as_u64().unwrap() as usize];
            d["metrics"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| {
                    r["v"][m["col"].as_u64().unwrap() as usize]
                        .as_f64()
                        .unwrap()
                })
                .collect()
        })
        .collect();
    (metrics, rows)
}

/// Leaderboard order sorted by rank as the page defines it: rank ascending, runs without a
/// rank last, ties in data order.
pub fn expected_rank_order(data: &Value, res: &DynaResult) -> Vec<String> {
    let rows = data["rows"].as_array().unwrap();
    let dyna_rows: Vec<usize> = data["dyna"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_u64().unwrap() as usize)
        .collect();
    let mut rank = vec![usize::MAX; rows.len()];
    for r in &res.rows {
        rank[dyna_rows[r.index]] = r.rank;
    }
    let mut idx: Vec<usize> = (0..rows.len()).collect();
    idx.sort_by_key(|&i| (rank[i], i));
    idx.iter()
        .map(|&i| rows[i]["k"].as_str().unwrap().to_string())
        .collect()
}

/// JavaScript that turns a number into the hex of its IEEE bits, so values cross the
/// DevTools protocol exactly (JSON number parsing may round the last bit).
pub const BITS: &str = "const bits = x => { const d = new DataView(new ArrayBuffer(8)); d.setFloat64(0, x); return d.getBigUint64(0).toString(16); };";

pub fn from_bits(v: &Value) -> f64 {
    f64::from_bits(u64::from_str_radix(v.as_str().unwrap(), 16).unwrap())
}

/// EB.dynascore in the page; scores, AMRS and weights come back as exact f64s.
pub fn js_dynascore(b: &mut Browser, metrics: &[DynaMetric], rows: &[Vec<f64>]) -> Value {
    let m: Vec<Value> = metrics
        .iter()
        .map(|m| json!({"name": m.name, "better": if m.better == Better::Higher { "higher" } else { "lower" }, "weight": m.weight, "offset": m.offset}))
        .collect();
    let mut v = b.eval(&format!(
        "(() => {{ {BITS} try {{ const r = EB.dynascore({}, {}); return {{rows: r.rows.map(x => ({{index: x.index, rank: x.rank, dynascore: bits(x.dynascore)}})), amrs: r.amrs.map(bits)}}; }} catch (e) {{ return {{error: e.message}}; }} }})()",
        serde_json::to_string(&m).unwrap(),
        serde_json::to_string(rows).unwrap()
    ));
    if v.get("error").is_none() {
        for r in v["rows"].as_array_mut().unwrap() {
            r["dynascore"] = json!(from_bits(&r["dynascore"]));
        }
        let amrs: Vec<f64> = v["amrs"]
            .as_array()
            .unwrap()
            .iter()
            .map(from_bits)
            .collect();
        v["amrs"] = json!(amrs);
    }
    v
}

/// The page's data with every number exactly as the page holds it.
pub fn page_data(b: &mut Browser) -> Value {
    let mut data = b.eval("EB.data");
    let exact = b.eval(&format!(
        "(() => {{ {BITS} return {{v: EB.data.rows.map(r => r.v.map(x => x === null ? null : bits(x))), off: EB.data.dyna.metrics.map(m => bits(m.offset))}}; }})()"
    ));
    for (i, row) in exact["v"].as_array().unwrap().iter().enumerate() {
        for (j, x) in row.as_array().unwrap().iter().enumerate() {
            if !x.is_null() {
                data["rows"][i]["v"][j] = json!(from_bits(x));
            }
        }
    }
    for (k, x) in exact["off"].as_array().unwrap().iter().enumerate() {
        data["dyna"]["metrics"][k]["offset"] = json!(from_bits(x));
    }
    data
}

/// JS and Rust agree: same order and ranks, scores and AMRS within 1e-9 (relative to |x| >= 1).
pub fn assert_same(
    js: &Value,
    rust: &Result<DynaResult, impl std::fmt::Display>,
    what: &str,
) -> usize {
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
    match rust {
        Err(e) => {
            assert_eq!(
                js["error"].as_str(),
                Some(e.to_string().as_str()),
                "{what}: error parity"
            );
            0
        }
        Ok(r) => {
            assert!(js.get("error").is_none(), "{what}: JS failed: {js}");
            let mut identical = 0;
            for (k, row) in r.rows.iter().enumerate() {
                let j = &js["rows"][k];
                assert_eq!(
                    j["index"].as_u64().unwrap() as usize,
                    row.index,
                    "{what}: order at {k}"
                );
                assert_eq!(
                    j["rank"].as_u64().unwrap() as usize,
                    row.rank,
                    "{what}: rank at {k}"
                );
                let s = j["dynascore"].as_f64().unwrap();
                assert!(
                    close(s, row.dynascore),
                    "{what}: score {s} vs {}",
                    row.dynascore
                );
                identical += (s == row.dynascore) as usize;
            }
            for (k, a) in r.amrs.iter().enumerate() {
                assert!(
                    close(js["amrs"][k].as_f64().unwrap(), *a),
                    "{what}: AMRS {k}"
                );
            }
            identical
        }
    }
}

pub fn inert(b: &mut Browser, page: &str) {
    assert_eq!(
        b.eval("window.__xss === undefined"),
        json!(true),
        "{page}: injected script ran"
    );
    assert_eq!(
        b.eval("document.querySelectorAll('img').length"),
        json!(0),
        "{page}: injected element"
    );
    assert_eq!(
        b.eval(&format!(
            "document.body.innerText.includes({})",
            serde_json::to_string("<script>window.__xss=1</script>").unwrap()
        )),
        json!(true),
        "{page}: the payload should be shown as text"
    );
}
