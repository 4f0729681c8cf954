//! End to end: the real `effbench serve` (seeded default model) on 127.0.0.1 and the real
//! `effbench loadgen` against it. Bounded: a handful of short requests per test, a free port
//! picked by the OS, every wait capped.

mod common;
#[path = "common/serve.rs"]
mod serve_util;

use common::{stderr, stdout, Work};
use serde_json::Value;
use serve_util::{events, http, Server};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn metric<'a>(r: &'a Value, name: &str) -> &'a Value {
    r["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no metric {name} in {}", r["metrics"]))
}

#[test]
fn serve_and_loadgen_end_to_end() {
    let w = Work::new();
    let srv = Server::start(&w, &["--max-batch", "4"]);
    let o = w.run(&[
        "loadgen",
        "--base-url",
        &srv.url(),
        "--model",
        "seeded",
        "--num-prompts",
        "12",
        "--request-rate",
        "40,inf",
        "--max-concurrency",
        "4",
        "--input-len",
        "16",
        "--output-len",
        "8",
        "--slo",
        "ttft=30s,tpot=10s",
        "--out",
        "out",
        "--json",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}\nserver: {}",
        stderr(&o),
        srv.log()
    );
    let results: Vec<Value> = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(results.len(), 2);
    for r in &results {
        assert_eq!(r["status"]["state"], "ok", "{r}");
        for id in ["ttft", "tpot", "itl", "e2e_latency"] {
            let m = metric(r, id);
            assert!(m["stats"]["p99"].as_f64().unwrap() > 0.0, "{id}: {m}");
        }
        assert_eq!(metric(r, "requests_completed")["value"], 12.0);
        // 12 requests x 8 tokens (ignore_eos), counted from the server's usage.
        assert!(metric(r, "output_throughput")["value"].as_f64().unwrap() > 0.0);
        // Generous SLOs: every request meets them, goodput = request throughput.
        assert_eq!(
            metric(r, "goodput")["value"],
            metric(r, "request_throughput")["value"]
        );
        assert!(metric(r, "peak_concurrency")["value"].as_f64().unwrap() <= 4.0);
        assert_eq!(r["model"]["details"]["served_by"], "effbench serve");
    }
    let suite = std::fs::read_to_string(w.path().join("out/loadgen.toml")).unwrap();
    assert!(suite.contains("backend = \"openai-http\""), "{suite}");
    // The site's run pages plot the requests over time (from the per-request records).
    let o = w.run(&["site", "out", "--out", "site"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let pages: Vec<String> = std::fs::read_dir(w.path().join("site/runs"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(pages.len(), 2);
    for page in &pages {
        for chart in [
            "ttft_over_time (ms)",
            "e2el_over_time (ms)",
            "request_throughput_over_time (req/s)",
            "output_throughput_over_time (tok/s)",
            "concurrency_over_time",
        ] {
            assert!(page.contains(chart), "no '{chart}' chart on a run page");
        }
    }
    // The server saw the tokens: prompt and generation counters in /metrics.
    let (st, prom) = http(&srv.addr, "GET", "/metrics", "");
    assert_eq!(st, 200);
    assert!(prom.contains("effbench_generation_tokens_total"), "{prom}");
    assert!(
        prom.contains("effbench_requests_total{outcome=\"success\"}"),
        "{prom}"
    );

    // Chat, not streamed: E2EL only, same request count.
    let o = w.run(&[
        "loadgen",
        "--base-url",
        &format!("{}/v1", srv.url()),
        "--model",
        "seeded",
        "--endpoint",
        "chat",
        "--no-stream",
        "--num-prompts",
        "4",
        "--input-len",
        "8",
        "--output-len",
        "4",
        "--out",
        "chat",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let results: Vec<Value> = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(metric(&results[0], "requests_completed")["value"], 4.0);
    assert!(
        metric(&results[0], "e2e_latency")["stats"]["p50"]
            .as_f64()
            .unwrap()
            > 0.0
    );
}

#[test]
fn token_counts_match_usage_streamed_or_not() {
    let w = Work::new();
    let srv = Server::start(&w, &[]);
    for path in ["/v1/completions", "/v1/chat/completions"] {
        let prompt = if path.contains("chat") {
            r#""messages": [{"role": "user", "content": "the of and"}]"#
        } else {
            r#""prompt": "the of and""#
        };
        let body =
            format!(r#"{{"model": "seeded", {prompt}, "max_tokens": 6, "ignore_eos": true}}"#);
        let (st, whole) = http(&srv.addr, "POST", path, &body);
        assert_eq!(st, 200, "{whole}");
        let whole: Value = serde_json::from_str(&whole).unwrap();
        assert_eq!(whole["usage"]["completion_tokens"], 6, "{whole}");
        let text = whole["choices"][0]["text"]
            .as_str()
            .or(whole["choices"][0]["message"]["content"].as_str())
            .unwrap()
            .to_string();

        let body = body.replace(
            "\"ignore_eos\": true",
            "\"ignore_eos\": true, \"stream\": true, \"stream_options\": {\"include_usage\": true}",
        );
        let (st, sse) = http(&srv.addr, "POST", path, &body);
        assert_eq!(st, 200, "{sse}");
        let ev = events(&sse);
        assert_eq!(ev.last().unwrap(), "[DONE]");
        let chunks: Vec<Value> = ev[..ev.len() - 1]
            .iter()
            .map(|e| serde_json::from_str(e).unwrap())
            .collect();
        let last = chunks.last().unwrap();
        assert_eq!(last["choices"].as_array().unwrap().len(), 0);
        assert_eq!(last["usage"]["completion_tokens"], 6);
        assert_eq!(
            last["usage"]["prompt_tokens"],
            whole["usage"]["prompt_tokens"]
        );
        let streamed: String = chunks
            .iter()
            .filter_map(|c| {
                let ch = &c["choices"][0];
                ch["text"].as_str().or(ch["delta"]["content"].as_str())
            })
            .collect();
        // Greedy decoding: the same text either way.
        assert_eq!(streamed, text);
        assert_eq!(
            chunks[chunks.len() - 2]["choices"][0]["finish_reason"],
            "length"
        );
    }
}

#[test]
fn bad_requests_get_openai_errors_and_the_server_lives() {
    let w = Work::new();
    let srv = Server::start(&w, &[]);
    let cases = [
        ("/v1/completions", "{not json", 400, "not JSON"),
        (
            "/v1/completions",
            r#"{"model": "other", "prompt": "a"}"#,
            404,
            "does not exist",
        ),
        (
            "/v1/completions",
            r#"{"prompt": "the", "max_tokens": 100000}"#,
            400,
            "context",
        ),
        (
            "/v1/completions",
            r#"{"prompt": "the", "max_tokens": 0}"#,
            400,
            "max_tokens",
        ),
        (
            "/v1/completions",
            r#"{"max_tokens": 3}"#,
            400,
            "prompt is required",
        ),
        (
            "/v1/completions",
            r#"{"prompt": ["a", "b"]}"#,
            400,
            "one prompt",
        ),
        (
            "/v1/chat/completions",
            r#"{"messages": []}"#,
            400,
            "messages",
        ),
        (
            "/v1/chat/completions",
            r#"{"messages": [{"role": 1}]}"#,
            400,
            "messages[0]",
        ),
        ("/v1/nope", "{}", 404, "no such route"),
    ];
    for (path, body, status, needle) in cases {
        let (st, text) = http(&srv.addr, "POST", path, body);
        assert_eq!(st, status, "{path} {body}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains(needle), "{body}: {msg}");
    }
    assert_eq!(http(&srv.addr, "GET", "/health", "").0, 200);
    let (_, models) = http(&srv.addr, "GET", "/v1/models", "");
    let models: Value = serde_json::from_str(&models).unwrap();
    assert_eq!(models["data"][0]["id"], "seeded");
    let (_, prom) = http(&srv.addr, "GET", "/metrics", "");
    assert!(
        prom.contains("effbench_requests_total{outcome=\"rejected_4xx\"} 8"),
        "{prom}"
    );
}

#[test]
fn a_disconnect_cancels_and_sigterm_stops_gracefully() {
    let w = Work::new();
    let mut srv = Server::start(&w, &["--max-batch", "2"]);
    let body = r#"{"prompt": "the", "max_tokens": 250, "ignore_eos": true, "stream": true}"#;
    {
        let mut s = TcpStream::connect(&srv.addr).unwrap();
        write!(
            s,
            "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut buf = [0u8; 256];
        let n = s.read(&mut buf).unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    } // dropped: the client is gone
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, prom) = http(&srv.addr, "GET", "/metrics", "");
        if prom.contains("effbench_requests_total{outcome=\"cancelled\"} 1") {
            break;
        }
        assert!(Instant::now() < until, "not cancelled: {prom}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = srv.child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let until = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(st) = srv.child.try_wait().unwrap() {
            break st;
        }
        assert!(
            Instant::now() < until,
            "serve ignored SIGTERM: {}",
            srv.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    // 128 + SIGTERM, as for every signal that stops serve.
    assert_eq!(status.code(), Some(143), "{}", srv.log());
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        srv.log().contains("effbench serve: stopped"),
        "{}",
        srv.log()
    );
}

#[test]
fn an_unreachable_server_fails_the_run_with_counts() {
    let w = Work::new();
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let o = w.run(&[
        "loadgen",
        "--base-url",
        &format!("http://127.0.0.1:{port}"),
        "--model",
        "m",
        "--num-prompts",
        "5",
        "--warmup-requests",
        "0",
        "--request-rate",
        "50",
        "--out",
        "o",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let results: Vec<Value> = serde_json::from_str(&stdout(&o)).unwrap();
    let r = &results[0];
    assert_eq!(r["status"]["state"], "failed");
    let reason = r["status"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("unreachable") || reason.contains("lost their connection"),
        "{}",
        r["status"]
    );
    assert!(metric(r, "failures_connection")["value"].as_f64().unwrap() >= 1.0);
}

#[test]
fn a_server_dying_mid_run_keeps_the_completed_requests() {
    let w = Work::new();
    let mut srv = Server::start(&w, &[]);
    let lg = w
        .cmd(&[
            "loadgen",
            "--base-url",
            &srv.url(),
            "--model",
            "seeded",
            "--num-prompts",
            "60",
            "--warmup-requests",
            "1",
            "--request-rate",
            "20",
            "--arrival",
            "constant",
            "--input-len",
            "8",
            "--output-len",
            "4",
            "--out",
            "o",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the server has answered some measured requests, then kill it.
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, prom) = http(&srv.addr, "GET", "/metrics", "");
        let done: u64 = prom
            .lines()
            .find_map(|l| l.strip_prefix("effbench_requests_total{outcome=\"success\"} "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if done >= 6 {
            break;
        }
        assert!(Instant::now() < until, "no progress: {prom}");
        std::thread::sleep(Duration::from_millis(20));
    }
    srv.child.kill().unwrap();
    let o = lg.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let results: Vec<Value> = serde_json::from_str(&stdout(&o)).unwrap();
    let r = &results[0];
    assert_eq!(r["status"]["state"], "failed", "{}", r["status"]);
    let completed = metric(r, "requests_completed")["value"].as_f64().unwrap();
    assert!((1.0..60.0).contains(&completed), "{completed}");
    assert!(metric(r, "failures_connection")["value"].as_f64().unwrap() >= 1.0);
    assert!(metric(r, "ttft")["stats"]["count"].as_f64().unwrap() >= 1.0);
}

#[test]
fn server_search_keeps_every_step() {
    let w = Work::new();
    let srv = Server::start(&w, &[]);
    let suite = format!(
        "name = \"search\"\nscenario = \"serving\"\nbackend = \"openai-http\"\nmodel = \"seeded\"\n\
         [matrix]\nmax_concurrency = 4\nprompt_len = 8\ngen_len = 4\n\
         [serving]\nbase_url = \"{}\"\nnum_prompts = 6\nwarmup_requests = 1\n\
         [serving.slo]\nttft_ms = 30000.0\n\
         [serving.search]\nlow = 2.0\nhigh = 200.0\nmax_steps = 3\n",
        srv.url()
    );
    w.write("search.toml", &suite);
    let o = w.run(&["run", "search.toml", "--out", "o", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let results: Vec<Value> = serde_json::from_str(&stdout(&o)).unwrap();
    let r = &results[0];
    // Both bounds pass a 30 s TTFT objective: the search reports the upper bound.
    assert_eq!(metric(r, "slo_max_request_rate")["value"], 200.0);
    let log = r["log"].to_string();
    assert!(log.contains("search step 1: 2 req/s -> pass"), "{log}");
    assert!(log.contains("search step 2: 200 req/s -> pass"), "{log}");
    let series: Vec<&str> = r["series"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert!(series.contains(&"search_pass"), "{series:?}");
}

/// A `vllm bench serve` command line (vLLM's documented flags: random dataset, a rate,
/// goodput, save-result) runs unchanged against `effbench serve`, and `effbench export
/// --format vllm` of the run it wrote gives the same vLLM result.
#[test]
fn a_vllm_bench_serve_command_line_runs_unchanged_and_exports_the_same_result() {
    let w = Work::new();
    let srv = Server::start(&w, &[]);
    let port = srv.addr.rsplit(':').next().unwrap().to_string();
    let args = common::vllm_bench_serve_args(&port, "seeded", 16, 4, 6, 20);
    let o = w.run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stderr(&o), srv.log());
    let saved: Value = serde_json::from_str(
        &std::fs::read_to_string(w.path().join("vllm-results/bench.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(saved["completed"], 6);
    assert_eq!(saved["failed"], 0);
    assert_eq!(saved["total_output_tokens"], 6 * 4, "--ignore-eos: {saved}");
    assert_eq!(saved["ttfts"].as_array().unwrap().len(), 6);
    // effbench's own result went to the default place; export it as vLLM would write it.
    let runs: Vec<_> = std::fs::read_dir(w.path().join("results/loadgen"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let o = w.run(&[
        "export",
        runs[0].to_str().unwrap(),
        "--format",
        "vllm",
        "--percentile-metrics",
        "ttft,tpot,itl,e2el",
        "--metric-percentiles",
        "50,99",
        "--save-detailed",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let exported: Value = serde_json::from_str(&stdout(&o)).unwrap();
    for k in [
        "completed",
        "failed",
        "total_input_tokens",
        "total_output_tokens",
        "request_rate",
        "p99_ttft_ms",
        "median_e2el_ms",
        "mean_itl_ms",
        "ttfts",
        "input_lens",
        "output_lens",
    ] {
        assert!(!saved[k].is_null(), "{k} missing from the saved result");
        assert_eq!(
            exported[k], saved[k],
            "{k}: export differs from --save-result"
        );
    }
}

/// `--ready-check-timeout-sec`: the run waits for a server that comes up late, and gives up
/// with the reason when none does.
#[test]
fn the_ready_check_waits_for_a_late_server_and_gives_up_on_none() {
    let w = Work::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let args = |timeout: &'static str, out: &'static str| {
        vec![
            "loadgen".to_string(),
            "--base-url".into(),
            format!("http://127.0.0.1:{port}"),
            "--model".into(),
            "seeded".into(),
            "--num-prompts".into(),
            "2".into(),
            "--input-len".into(),
            "4".into(),
            "--output-len".into(),
            "2".into(),
            "--ready-check-timeout-sec".into(),
            timeout.into(),
            "--out".into(),
            out.into(),
            "--json".into(),
        ]
    };
    // Nobody listens: the run fails after the timeout with the ready check's reason.
    let a = args("1", "none");
    let o = w.run(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let r: Vec<Value> = serde_json::from_str(&stdout(&o)).unwrap();
    let reason = r[0]["status"]["reason"].as_str().unwrap().to_string();
    assert!(
        reason.contains("not ready within 1 s") && reason.contains("ready check"),
        "{reason}"
    );
    // The server starts a second after the generator: the ready check waits for it.
    let a = args("120", "late");
    let child = w
        .cmd(&a.iter().map(String::as_str).collect::<Vec<_>>())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let srv = Server::start(&w, &["--port", &port]);
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stderr(&o), srv.log());
    let r: Vec<Value> = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(metric(&r[0], "requests_completed")["value"], 2.0);
    assert!(
        r[0]["log"]
            .to_string()
            .contains("ready check: the server answered"),
        "{}",
        r[0]["log"]
    );
}
