//! Encoders, retrieval, budget tracks and scaling sweeps through the CLI: the retrieval suite
//! (suites/retrieval.toml with the real all-MiniLM-L6-v2 and the beir-mini fixture, cut down
//! to f32) end to end with its metrics, analysis, tracks in `report` and the site's panels;
//! the embedding scenario; a malformed dataset and a corpus too big for memory; and a
//! `[sweep]` that ends at a budget. Tests that need MiniLM skip, saying why, when it is not
//! installed (and fail under EFFBENCH_REQUIRE_EXTERNAL=1).

mod common;
use common::*;
use std::path::{Path, PathBuf};

fn minilm(test: &str) -> Option<PathBuf> {
    match effbench_backends::encoder::model::find_minilm() {
        Ok(d) => Some(d),
        Err(why) if std::env::var("EFFBENCH_REQUIRE_EXTERNAL").is_ok_and(|v| v == "1") => {
            panic!("{test}: {why}, and EFFBENCH_REQUIRE_EXTERNAL=1")
        }
        Err(why) => {
            eprintln!("SKIPPED {test}: {why}");
            None
        }
    }
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// suites/retrieval.toml with absolute model and dataset paths and a short measurement.
fn retrieval_suite(model: &Path, extra_retrieval: &str) -> String {
    let text = std::fs::read_to_string(repo().join("suites/retrieval.toml")).unwrap();
    let dataset = repo().join("suites/data/beir-mini");
    text.replace(
        "model = \"$EFFBENCH_MINILM_DIR\"",
        &format!("model = {:?}", model.display().to_string()),
    )
    .replace(
        "dataset = \"suites/data/beir-mini\"",
        &format!(
            "dataset = {:?}{extra_retrieval}",
            dataset.display().to_string()
        ),
    )
    .replace(
        "min_iters = 26             # every query twice",
        "min_iters = 5",
    )
    .replace(
        "min_duration_s = 1.0\nmax_iters = 500\nmax_duration_s = 5.0",
        "min_duration_s = 0.0\nmax_iters = 500\nmax_duration_s = 5.0",
    )
}

fn results(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().to_string();
            n.ends_with(".json") && n != "manifest.json" && n != "analysis.json"
        })
        .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
        .collect()
}

fn metric(r: &serde_json::Value, name: &str) -> Option<f64> {
    r["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .and_then(|m| m["value"].as_f64())
}

fn param<'a>(r: &'a serde_json::Value, axis: &str) -> &'a serde_json::Value {
    &r["config"]["params"][axis]
}

#[test]
fn retrieval_suite_end_to_end_with_tracks_and_site() {
    let Some(model) = minilm("retrieval_suite_end_to_end_with_tracks_and_site") else {
        return;
    };
    let w = Work::new();
    w.write("retrieval.toml", &retrieval_suite(&model, ""));
    let o = w.run(&[
        "run",
        "retrieval.toml",
        "--filter",
        "dtype=f32",
        "--out",
        "out",
        "--no-site",
    ]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    // tracks printed after the run
    assert!(
        err.contains(
            "track index-20kB (suite retrieval): max ndcg_at_10 within index_bytes <= 20000"
        ),
        "{err}"
    );
    let rs = results(&w.path().join("out"));
    assert_eq!(rs.len(), 6, "f32 x 3 indexes x 2 sparsities");
    for r in &rs {
        let index = param(r, "index").as_str().unwrap();
        let pruned = param(r, "sparsity").as_f64().unwrap() > 0.0;
        assert_eq!(r["status"]["state"], "ok", "{}", r["status"]);
        let bytes = metric(r, "index_bytes").unwrap();
        // 40 documents x 384 dims
        let want = match index {
            "exact" => 40.0 * 384.0 * 4.0,
            "int8" => 40.0 * 384.0 + 8.0 * 384.0,
            _ => 40.0 * 6.0 * 8.0,
        };
        assert_eq!(bytes, want, "{index}");
        let ndcg = metric(r, "ndcg_at_10").unwrap();
        let recall = metric(r, "recall_at_10").unwrap();
        assert!((0.0..=1.0).contains(&ndcg) && (0.0..=100.0).contains(&recall));
        let overlap = metric(r, "overlap_at_10").unwrap();
        if index == "exact" && !pruned {
            assert_eq!(overlap, 100.0, "the reference itself");
            // a real encoder finds the hand-labelled answers of the fixture
            assert!(ndcg > 0.7 && recall > 80.0, "ndcg {ndcg} recall {recall}");
        } else {
            assert!(
                overlap > 20.0 && overlap <= 100.0,
                "{index} pruned={pruned}: {overlap}"
            );
        }
        for m in [
            "query_latency",
            "search_latency",
            "query_throughput",
            "corpus_encode_time",
            "index_build_time",
            "flops_per_embedding",
            "cost_per_1k_queries",
            "peak_rss",
        ] {
            assert!(metric(r, m).is_some(), "{m} missing in {index}");
        }
        assert!(r["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["name"] == "query_latency" && m["stats"]["p99"].is_number()));
        let src = r["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == "ndcg_at_10")
            .unwrap()["source"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            src.contains("qrels/test.tsv") && src.contains("12 judged queries"),
            "{src}"
        );
        let log = r["log"].to_string();
        assert!(
            log.contains("quality measures: recall@10 and nDCG@10 against"),
            "{log}"
        );
        assert!(r["config"]["tracks"].as_array().unwrap().len() == 4);
    }
    // analysis.json: Dynascore of quality, latency and cost over the six runs
    let a: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(w.path().join("out/analysis.json")).unwrap())
            .unwrap();
    let d = &a["dynascore"];
    assert_eq!(d["metrics"][0]["metric"], "ndcg_at_10", "{a}");
    assert_eq!(d["scores"].as_array().map(Vec::len), Some(6), "{a}");
    // report: the table and the suite's tracks, with the runs out of budget and why
    let o = w.run(&["report", "out", "--format", "markdown"]);
    let md = stdout(&o);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        md.contains("### track index-20kB (suite retrieval)"),
        "{md}"
    );
    assert!(
        md.contains("index_bytes 61440 bytes, budget <= 20000"),
        "exact indexes are out: {md}"
    );
    w.write("t.toml", "[[tracks]]\nname = \"mine\"\nbudgets = [\"index_bytes <= 2kB\"]\nobjective = \"max overlap_at_10\"\n");
    let o = w.run(&["report", "out", "--tracks", "t.toml"]);
    let txt = stdout(&o);
    assert!(
        txt.contains("track mine (all results): max overlap_at_10 within index_bytes <= 2000"),
        "{txt}"
    );
    let mine = txt.split("track mine").nth(1).unwrap();
    assert_eq!(
        mine.matches("index=binary").count(),
        2,
        "only the binary runs fit: {txt}"
    );
    assert_eq!(
        mine.matches("budget <= 2000").count(),
        4,
        "the others are out: {txt}"
    );
    w.write(
        "bad.toml",
        "[[tracks]]\nname = \"x\"\nobjective = \"max quality\"\n",
    );
    let o = w.run(&["report", "out", "--tracks", "bad.toml"]);
    let line = assert_clean_error(&o, 2);
    assert!(
        line.contains("bad.toml: [[tracks]] #1: objective 'max quality'"),
        "{line}"
    );
    // the site: Dynascore on quality, the tracks panel and the ELUE-style encoder view
    let o = w.run(&["site", "out", "--out", "site"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let page = std::fs::read_to_string(w.path().join("site/suites/retrieval.html")).unwrap();
    assert!(
        page.contains("performance metric <b>ndcg_at_10</b>"),
        "Dynascore starts from quality"
    );
    assert!(page.contains("<h2>Budget tracks</h2>") && page.contains("index-20kB"));
    assert!(page.contains("run(s) out of budget"));
    assert!(page.contains("Encoders: quality against size and compute"));
}

#[test]
fn pruned_variant_is_judged_against_the_unpruned_f32_reference() {
    let Some(model) = minilm("pruned_variant_is_judged_against_the_unpruned_f32_reference") else {
        return;
    };
    let w = Work::new();
    w.write("retrieval.toml", &retrieval_suite(&model, ""));
    let o = w.run(&[
        "run",
        "retrieval.toml",
        "--filter",
        "sparsity=0.3",
        "--filter",
        "index=exact",
        "--out",
        "out",
        "--no-site",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rs = results(&w.path().join("out"));
    assert_eq!(rs.len(), 1);
    let overlap = metric(&rs[0], "overlap_at_10").unwrap();
    assert!(overlap > 20.0 && overlap < 100.0, "{overlap}");
    assert!(rs[0]["log"]
        .to_string()
        .contains("the reference (f32, unpruned, exact) encoded corpus and queries again"));
}

#[test]
fn bad_datasets_and_big_corpora_fail_the_run_with_the_reason() {
    let Some(model) = minilm("bad_datasets_and_big_corpora_fail_the_run_with_the_reason") else {
        return;
    };
    let w = Work::new();
    // a corpus too big for the memory limit is refused with the estimate
    w.write(
        "big.toml",
        &retrieval_suite(&model, "\nmemory_limit = \"10kB\""),
    );
    let o = w.run(&[
        "run",
        "big.toml",
        "--filter",
        "dtype=f32",
        "--filter",
        "index=binary",
        "--filter",
        "sparsity=0",
        "--out",
        "big",
        "--no-site",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let r = &results(&w.path().join("big"))[0];
    let why = r["status"]["reason"].as_str().unwrap();
    assert!(
        why.starts_with("refused: the corpus of 40 documents x 384 dims needs about"),
        "{why}"
    );
    assert!(why.contains("[retrieval] memory_limit: 0.000 GiB"), "{why}");
    // a malformed corpus line names file and line
    let data = w.path().join("bad-data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::copy(
        repo().join("suites/data/beir-mini/queries.jsonl"),
        data.join("queries.jsonl"),
    )
    .unwrap();
    std::fs::write(
        data.join("corpus.jsonl"),
        "{\"_id\": \"a\", \"text\": \"fine\"}\n{\"_id\": \"b\", \"txt\": \"typo\"}\n",
    )
    .unwrap();
    let suite = retrieval_suite(&model, "").replace(
        &repo().join("suites/data/beir-mini").display().to_string(),
        &data.display().to_string(),
    );
    w.write("bad.toml", &suite);
    let o = w.run(&[
        "run",
        "bad.toml",
        "--filter",
        "dtype=f32",
        "--filter",
        "index=exact",
        "--filter",
        "sparsity=0",
        "--out",
        "bad",
        "--no-site",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let r = &results(&w.path().join("bad"))[0];
    let why = r["status"]["reason"].as_str().unwrap();
    assert!(
        why.ends_with("corpus.jsonl:2: no \"text\" (a string) in record 'b'"),
        "{why}"
    );
    // a suite without [retrieval] is refused before anything runs
    w.write(
        "none.toml",
        "name = \"r\"\nscenario = \"retrieval\"\nbackend = \"candle-encoder\"\n",
    );
    let line = assert_clean_error(&w.run(&["run", "none.toml"]), 2);
    assert!(line.contains("needs a [retrieval] table"), "{line}");
}

#[test]
fn embedding_scenario_reports_throughput_flops_and_mfu() {
    let Some(model) = minilm("embedding_scenario_reports_throughput_flops_and_mfu") else {
        return;
    };
    let w = Work::new();
    w.write(
        "emb.toml",
        &format!(
            "name = \"emb\"\nscenario = \"embedding\"\nbackend = \"candle-encoder\"\nmodel = {:?}\n[matrix]\nbatch = 2\nseq_len = 16\n[measure]\n{QUICK}\n",
            model.display().to_string()
        ),
    );
    let o = w.run(&["run", "emb.toml", "--out", "out", "--no-site"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r = &results(&w.path().join("out"))[0];
    // 2 N T + 4 L H T^2 with N = 6 (4 x 384^2 + 2 x 384 x 1536) = 10 616 832, T = 16
    let want = 2.0 * 10_616_832.0 * 16.0 + 4.0 * 6.0 * 384.0 * 256.0;
    assert_eq!(metric(r, "flops_per_embedding"), Some(want));
    let emb_s = metric(r, "embedding_throughput").unwrap();
    let tok_s = metric(r, "total_throughput").unwrap();
    assert!(
        (tok_s / emb_s - 16.0).abs() < 1e-9,
        "16 tokens per embedding"
    );
    assert!(metric(r, "mfu").unwrap() > 0.0 && metric(r, "batch_latency").is_some());
    assert!(r["env"]["peak_flops"]["flops_per_s"].as_f64().unwrap() > 0.0);
    assert!(
        metric(r, "request_throughput").is_none(),
        "embeddings, not batches, are counted"
    );
}

/// A [sweep] whose budget every run breaks ends each sweep after its first run; without
/// budgets the whole sweep runs and the site draws the curves.
#[test]
fn a_sweep_ends_at_its_budget_and_the_site_plots_the_curves() {
    let w = Work::new();
    let base = tiny_suite(
        "long",
        "prompt_len = [8, 16, 32, 64]\ngen_len = 2\nbatch = [1, 2]",
        QUICK,
    );
    w.write(
        "stop.toml",
        &format!("{base}[sweep]\naxis = \"prompt_len\"\nbudgets = [\"ttft:p50 <= 0.000001\"]\n"),
    );
    let o = w.run(&["run", "stop.toml", "--out", "stop", "--no-site"]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains(
            "skipped batch=1 prompt_len=16: not run: the prompt_len sweep ended at prompt_len = 8"
        ),
        "{err}"
    );
    let rs = results(&w.path().join("stop"));
    assert_eq!(rs.len(), 2, "one run per sweep (batch 1 and 2)");
    for r in &rs {
        assert_eq!(param(r, "prompt_len"), 8);
        let warn = r["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["kind"] == "sweep_stopped");
        assert!(warn.is_some(), "{}", r["warnings"]);
    }
    let m: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(w.path().join("stop/manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(m["skipped"].as_array().unwrap().len(), 6, "{m}");
    assert!(
        m["skipped"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("ttft:p50"),
        "{m}"
    );
    // no budget: every length runs, shortest first, and the site plots them
    w.write(
        "all.toml",
        &format!("{base}[sweep]\naxis = \"prompt_len\"\n"),
    );
    let o = w.run(&["run", "all.toml", "--out", "all", "--no-site"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(results(&w.path().join("all")).len(), 8);
    let o = w.run(&["site", "all", "--out", "site"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let page = std::fs::read_to_string(w.path().join("site/suites/long.html")).unwrap();
    assert!(page.contains("<h2>Scaling with prompt_len</h2>"));
    assert!(page.contains("ttft vs prompt_len") && page.contains("peak_rss vs prompt_len"));
    // a bad sweep is refused before anything runs
    w.write(
        "bad.toml",
        &format!("{base}[sweep]\naxis = \"prompt_length\"\n"),
    );
    let line = assert_clean_error(&w.run(&["run", "bad.toml"]), 2);
    assert!(line.contains("[sweep] axis 'prompt_length'"), "{line}");
}
