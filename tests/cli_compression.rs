//! A small compression suite end to end: variants made on demand, compression/quality/
//! fidelity/speed-up metrics in the results, analysis.json valid against its schema, `show`
//! listing everything; `--eval-text`; and the refusal to compress a GGUF model.

mod common;
use common::*;

const ANALYSIS: &str = "[analysis]\neval_tokens = 512\neval_window = 64\n";

fn compression_suite(extra: &str) -> String {
    tiny_suite(
        "comp",
        "quant = [\"none\", \"q8_0\"]\nsparsity = [0.0, 0.5]\nprompt_len = 16\ngen_len = 8",
        QUICK,
    ) + ANALYSIS
        + extra
}

/// The seeded default model's outputs are nearly uniform (perplexity ≈ 522 for every
/// variant, within Dynaboard's 1e-4 threshold), so Dynascore has no trade-off to measure on
/// it. This copy has its matrices scaled by 10: still random, but with peaked predictions
/// that compression visibly changes. Its config keeps the `effbench` section, so it is
/// evaluated on the synthetic held-out split like the default model.
fn sharpened_model(w: &Work) -> &'static str {
    use effbench_backends::default_model as dm;
    let cfg = dm::default_config();
    let mut ts = dm::seeded_tensors(&cfg, dm::DEFAULT_WEIGHTS_SEED);
    for t in ts.iter_mut().filter(|t| !t.name.contains("norm")) {
        t.data.iter_mut().for_each(|x| *x *= 10.0);
    }
    let dir = w.path().join("sharp");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("config.json"),
        dm::config_json(&cfg, "seeded").unwrap(),
    )
    .unwrap();
    std::fs::write(
        dir.join("model.safetensors"),
        dm::safetensors_bytes(&ts).unwrap(),
    )
    .unwrap();
    let tok = effbench_backends::corpus::Corpus::standard().tokenizer_json();
    std::fs::write(dir.join("tokenizer.json"), tok).unwrap();
    "sharp"
}

fn results(w: &Work) -> Vec<serde_json::Value> {
    let dir = std::fs::read_dir(w.path().join("out")).unwrap();
    dir.map(|e| e.unwrap().path())
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
        .map(|m| m["value"].as_f64().unwrap())
}

fn params(r: &serde_json::Value) -> (String, f64) {
    let p = &r["config"]["params"];
    (
        p["quant"].as_str().unwrap().to_string(),
        p["sparsity"].as_f64().unwrap(),
    )
}

#[test]
fn compression_suite_reports_everything_per_variant() {
    let w = Work::new();
    let model = sharpened_model(&w);
    w.write(
        "c.toml",
        &compression_suite("").replace("\"seeded\"", &format!("\"{model}\"")),
    );
    let o = w.run(&["run", "c.toml", "--out", "out"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rs = results(&w);
    assert_eq!(rs.len(), 4);
    // speed-ups come from the analysis stage (analysis.json), not the result files
    let text = std::fs::read_to_string(w.path().join("out/analysis.json")).unwrap();
    let a: serde_json::Value = serde_json::from_str(&text).unwrap();
    let speedup = |r: &serde_json::Value, name: &str| {
        let run = a["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["id"] == r["id"]);
        let sp = run.and_then(|x| x["speedups"].as_array())?;
        sp.iter()
            .find(|m| m["name"] == name)
            .and_then(|m| m["value"].as_f64())
    };
    let validator = jsonschema::validator_for(&effbench_harness::schema::run_result()).unwrap();
    for r in &rs {
        assert!(validator.is_valid(r), "{r}");
        let (q, s) = params(r);
        for m in [
            "model_bytes",
            "bits_per_param",
            "compression_ratio",
            "size_reduction",
            "weights_remaining",
            "perplexity",
            "eval_nll",
            "top1_agreement",
            "kl_divergence",
        ] {
            assert!(metric(r, m).is_some(), "{q} {s}: no {m}: {}", r["log"]);
        }
        for m in ["speedup_tpot", "speedup_output_throughput"] {
            assert!(
                metric(r, m).is_none(),
                "{q} {s}: a result file was rewritten"
            );
            assert!(speedup(r, m).is_some(), "{q} {s}: no {m} in analysis.json");
        }
        let ratio = metric(r, "compression_ratio").unwrap();
        if q == "none" {
            assert_eq!(ratio, 1.0, "dense storage does not shrink when pruned");
        } else {
            assert!(ratio > 3.5, "{ratio}");
        }
        let remaining = metric(r, "weights_remaining").unwrap();
        if s == 0.0 {
            assert_eq!(remaining, 100.0);
        } else {
            assert!((50.0..60.0).contains(&remaining), "{remaining}");
        }
        if (q.as_str(), s) == ("none", 0.0) {
            assert_eq!(metric(r, "top1_agreement"), Some(100.0));
            assert_eq!(metric(r, "kl_divergence"), Some(0.0));
            assert_eq!(speedup(r, "speedup_tpot"), Some(1.0));
        }
        assert_eq!(
            (metric(r, "eval_nll").unwrap()).exp(),
            metric(r, "perplexity").unwrap()
        );
    }
    // the variants were made once and cached by content hash
    let variants = std::fs::read_dir(w.path().join("results/models/variants"))
        .unwrap()
        .count();
    assert_eq!(variants, 3);
    // analysis.json: valid, fronts and Dynascore over the 4 runs
    let av = jsonschema::validator_for(&effbench_harness::schema::analysis()).unwrap();
    assert!(av.is_valid(&a), "{a}");
    assert_eq!(a["pareto"].as_array().unwrap().len(), 4);
    assert_eq!(a["dynascore"]["scores"].as_array().unwrap().len(), 4);
    assert_eq!(a["dynascore"]["metrics"][0]["metric"], "perplexity");
    // show lists size, ratio, bits/param, perplexity, agreement, KL, speed-up, fronts, Dynascore
    let o = w.run(&["show", "out"]);
    let out = stdout(&o);
    assert!(o.status.success(), "{}", stderr(&o));
    for h in [
        "model_bytes",
        "compression_ratio (x)",
        "bits_per_param",
        "weights_remaining",
        "perplexity (ppl)",
        "top1_agreement (%)",
        "kl_divergence (nats)",
        "speedup_tpot",
        "front perplexity/tpot",
        "dynascore",
        "rank",
        "hypervolume perplexity/tpot",
    ] {
        assert!(out.contains(h), "show lacks {h}:\n{out}");
    }
    // the analysis commands read the same results (metric names, senses from the metrics)
    // and agree with analysis.json
    let o = w.run(&[
        "pareto",
        "--results",
        "out",
        "--metric",
        "perplexity",
        "--metric",
        "tpot",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let front: Vec<serde_json::Value> = serde_json::from_str(&stdout(&o)).unwrap();
    let in_file = a["pareto"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| {
            f["objectives"][0]["metric"] == "perplexity" && f["objectives"][1]["metric"] == "tpot"
        })
        .unwrap();
    assert_eq!(
        front.len(),
        in_file["front"].as_array().unwrap().len(),
        "{front:?} vs {in_file}"
    );
    // the same metrics, senses, weights and offsets as analysis.json (the default policy);
    // `--perf` takes no offset, and a constant offset shifts every score alike, so scores are
    // compared relative to the best run's
    let ms = a["dynascore"]["metrics"].as_array().unwrap();
    let spec = |m: &serde_json::Value, offset: bool| {
        let mut s = format!(
            "{}:{}:{}",
            m["metric"].as_str().unwrap(),
            m["better"].as_str().unwrap(),
            m["weight"]
        );
        if offset {
            s.push_str(&format!(":{}", m["offset"]));
        }
        s
    };
    let mut args = vec!["dynascore".to_string(), "--results".into(), "out".into()];
    args.extend(["--perf".to_string(), spec(&ms[0], false)]);
    for m in &ms[1..] {
        args.extend(["--metric".to_string(), spec(m, true)]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = w.run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let d: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let (cli, file) = (
        d["scores"].as_array().unwrap(),
        a["dynascore"]["scores"].as_array().unwrap(),
    );
    assert_eq!(cli.len(), 4);
    let score = |v: &serde_json::Value| v["dynascore"].as_f64().unwrap();
    for (c, f) in cli.iter().zip(file) {
        assert_eq!(c["name"], f["label"], "same ranking");
        let (x, y) = (score(c) - score(&cli[0]), score(f) - score(&file[0]));
        assert!(
            (x - y).abs() <= 1e-9 * score(&file[0]).abs().max(1.0),
            "{c} vs {f}"
        );
    }
}

#[test]
fn eval_text_and_filters_without_the_reference_run() {
    let w = Work::new();
    w.write("c.toml", &compression_suite(""));
    // words of the default model's language and unknown ones
    let corpus = effbench_backends::corpus::Corpus::standard();
    let text = corpus.text(&corpus.heldout_tokens(300)) + " zzz qqq";
    w.write("eval.txt", &text);
    let o = w.run(&[
        "run",
        "c.toml",
        "--out",
        "out",
        "--eval-text",
        "eval.txt",
        "--filter",
        "quant=q8_0",
        "--filter",
        "sparsity=0",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rs = results(&w);
    assert_eq!(rs.len(), 1);
    let ppl = rs[0]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "perplexity")
        .unwrap();
    assert!(
        ppl["source"]
            .as_str()
            .unwrap()
            .contains("eval.txt (302 of 302 tokens)"),
        "{ppl}"
    );
    // fidelity and compression ratio need no reference run; speed-ups do, and say so
    assert!(
        metric(&rs[0], "top1_agreement").is_some() && metric(&rs[0], "compression_ratio").is_some()
    );
    assert!(metric(&rs[0], "speedup_tpot").is_none());
    assert!(
        stderr(&o).contains("no ok baseline run with quant=none sparsity=0"),
        "{}",
        stderr(&o)
    );
    // a missing or non-UTF-8 eval text is bad input
    let e = assert_clean_error(&w.run(&["run", "c.toml", "--eval-text", "nope.txt"]), 2);
    assert!(e.contains("--eval-text 'nope.txt'"), "{e}");
    std::fs::write(w.path().join("bin.txt"), [0x66, 0xff, 0xfe]).unwrap();
    let e = assert_clean_error(&w.run(&["run", "c.toml", "--eval-text", "bin.txt"]), 2);
    assert!(
        e.contains("not UTF-8 text (invalid byte at offset 1)"),
        "{e}"
    );
}

#[test]
fn compressing_a_gguf_model_is_refused_with_the_reason() {
    let w = Work::new();
    w.write("m.gguf", "not really a model");
    let suite =
        "name = \"g\"\nscenario = \"inference\"\nbackend = \"candle\"\nmodel = \"m.gguf\"\n\
                 [matrix]\nquant = [\"q8_0\", \"q4k\"]\n";
    w.write("g.toml", suite);
    let e = assert_clean_error(&w.run(&["validate", "g.toml"]), 2);
    assert!(
        e.contains("quant=q4k")
            && e.contains("is already quantized (GGUF)")
            && e.contains("HF checkpoint"),
        "{e}"
    );
    // unknown quant types and bad [analysis] fields are named
    w.write("q.toml", &tiny_suite("q", "quant = \"q9\"", QUICK));
    let e = assert_clean_error(&w.run(&["validate", "q.toml"]), 2);
    assert!(
        e.contains("axis 'quant' = q9: expected one of none, q8_0"),
        "{e}"
    );
    w.write(
        "a.toml",
        &(tiny_suite("a", "batch = 1", QUICK)
            + "[analysis]\npareto = [{ metrics = [\"perplexity\", \"speed\"] }]\n"),
    );
    let e = assert_clean_error(&w.run(&["validate", "a.toml"]), 2);
    assert!(
        e.contains("[analysis] pareto[0]: unknown metric 'speed'"),
        "{e}"
    );
}
