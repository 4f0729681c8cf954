//! `effbench loadgen` against a real third-party server: llama.cpp's `llama-server` (built by
//! scripts/build-llamacpp.sh) on 127.0.0.1 with the SmolLM2-135M Q4_1 GGUF. Streaming and
//! plain, completions and chat, token counts from its `usage`, its error replies, a server
//! killed mid-run, connections it closes after 100 requests, an API key in a header, its
//! Prometheus metrics, and a `vllm bench serve` command line run unchanged.
//!
//! Needs `EFFBENCH_LLAMA_SERVER` (the llama-server binary) and `EFFBENCH_SMOLLM2_GGUF`; each
//! test skips with the reason without them, and fails under `EFFBENCH_REQUIRE_EXTERNAL=1`
//! (CI, where .ci/run builds the server). Bounded: a few short requests per test, every wait
//! capped.

mod common;

use common::{stderr, stdout, Work};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The server binary and the GGUF, or `None` (skipped with the reason).
fn prerequisites(test: &str) -> Option<(PathBuf, PathBuf)> {
    let get = |var: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .filter(|p| p.is_file())
    };
    match (get("EFFBENCH_LLAMA_SERVER"), get("EFFBENCH_SMOLLM2_GGUF")) {
        (Some(s), Some(g)) => Some((s, g)),
        (s, g) => {
            let why = format!(
                "{test}: needs EFFBENCH_LLAMA_SERVER (llama-server from scripts/build-llamacpp.sh{}) and EFFBENCH_SMOLLM2_GGUF{}",
                if s.is_none() { ", not set or missing" } else { "" },
                if g.is_none() { " (not set or missing)" } else { "" }
            );
            if std::env::var_os("EFFBENCH_REQUIRE_EXTERNAL").is_some() {
                panic!("{why} (required: EFFBENCH_REQUIRE_EXTERNAL is set)");
            }
            eprintln!("skipped: {why}");
            None
        }
    }
}

/// A running llama-server; killed on drop.
struct Llama {
    child: Child,
    port: u16,
    log: Arc<Mutex<String>>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Llama {
    /// Starts the server on a free port (2 slots of 512 tokens, 1 thread, --metrics) and
    /// waits until /health answers 200.
    fn start(server: &Path, gguf: &Path, extra: &[&str]) -> Llama {
        for _attempt in 0..3 {
            let port = free_port();
            let mut child = Command::new(server)
                .args(["-m", gguf.to_str().unwrap()])
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args([
                    "-t",
                    "1",
                    "-c",
                    "1024",
                    "-np",
                    "2",
                    "--metrics",
                    "--no-webui",
                ])
                .args(extra)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start llama-server");
            let err = child.stderr.take().unwrap();
            let log = Arc::new(Mutex::new(String::new()));
            let log2 = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    log2.lock().unwrap().push_str(&(line + "\n"));
                }
            });
            let mut s = Llama { child, port, log };
            let until = Instant::now() + Duration::from_secs(180);
            while Instant::now() < until {
                if let Ok(Some(_)) = s.child.try_wait() {
                    break; // exited: the port was taken, try another
                }
                if http(port, "GET", "/health", "").0 == 200 {
                    return s;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            eprintln!("llama-server did not come up on {port}: {}", s.log());
        }
        panic!("llama-server did not start");
    }
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Llama {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 exchange on a fresh connection: (status, body); (0, "") when it fails.
fn http(port: u16, method: &str, path: &str, body: &str) -> (u16, String) {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return (0, String::new());
    };
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    if s.write_all(req.as_bytes()).is_err() {
        return (0, String::new());
    }
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let Some((head, rest)) = text.split_once("\r\n\r\n") else {
        return (0, String::new());
    };
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, rest.to_string())
}

fn metric<'a>(r: &'a Value, name: &str) -> &'a Value {
    r["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no metric {name} in {}", r["metrics"]))
}

fn value(r: &Value, name: &str) -> f64 {
    metric(r, name)["value"].as_f64().unwrap()
}

/// `effbench loadgen` against the server; returns the results (and the output).
fn loadgen(
    w: &Work,
    srv: &Llama,
    gguf: &Path,
    args: &[&str],
) -> (Vec<Value>, std::process::Output) {
    let url = srv.url();
    let mut all = vec![
        "loadgen",
        "--base-url",
        &url,
        "--model",
        gguf.to_str().unwrap(),
        "--json",
    ];
    // One warm-up request unless the test sets its own count.
    if !args.contains(&"--warmup-requests") {
        all.extend_from_slice(&["--warmup-requests", "1"]);
    }
    all.extend_from_slice(args);
    let o = w.run(&all);
    let results = serde_json::from_str(&stdout(&o)).unwrap_or_else(|e| {
        panic!(
            "no JSON results ({e}): {}\nserver: {}",
            stderr(&o),
            srv.log()
        )
    });
    (results, o)
}

/// The per-request records of a run.
fn records(w: &Work, out: &str, r: &Value) -> Vec<Value> {
    let p = w
        .path()
        .join(out)
        .join(format!("{}.requests.jsonl", r["id"].as_str().unwrap()));
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn streaming_plain_completions_and_chat_with_usage_counts_and_server_metrics() {
    let Some((server, gguf)) = prerequisites("llama-server usage counts") else {
        return;
    };
    let w = Work::new();
    let srv = Llama::start(&server, &gguf, &[]);
    // Streamed completions: prompts of exactly 16 tokens (the GGUF's own vocabulary, found
    // from --model), 8 tokens out each (ignore_eos), counted from the server's usage.
    let (rs, o) = loadgen(
        &w,
        &srv,
        &gguf,
        &[
            "--num-prompts",
            "6",
            "--input-len",
            "16",
            "--output-len",
            "8",
            "--max-concurrency",
            "2",
            "--metrics-interval-s",
            "0.2",
            "--out",
            "a",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stderr(&o), srv.log());
    let r = &rs[0];
    assert_eq!(r["status"]["state"], "ok", "{}", r["status"]);
    assert_eq!(value(r, "requests_completed"), 6.0);
    assert!(metric(r, "ttft")["stats"]["count"].as_f64().unwrap() >= 6.0);
    let lines = records(&w, "a", r);
    assert_eq!(lines.len(), 6);
    for l in &lines {
        assert_eq!(l["tokens_out"], 8, "{l}");
        assert_eq!(
            l["tokens_in"], 16,
            "the server counted the planned length: {l}"
        );
        assert_eq!(l["prompt_len"], 16);
        assert_eq!(l["token_ms"].as_array().unwrap().len(), 8, "{l}");
    }
    let log = r["log"].to_string();
    assert!(log.contains("prompt lengths in tokens of"), "{log}");
    // The server's own view: llama.cpp's gauges and counters as series.
    let series: Vec<&str> = r["series"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert!(
        series.contains(&"server:llamacpp:requests_processing"),
        "{series:?}\n{log}"
    );
    assert!(series.contains(&"concurrency_over_time"), "{series:?}");

    // Chat, not streamed: E2EL only; output tokens from the final usage.
    let (rs, o) = loadgen(
        &w,
        &srv,
        &gguf,
        &[
            "--endpoint",
            "chat",
            "--no-stream",
            "--num-prompts",
            "3",
            "--input-len",
            "8",
            "--output-len",
            "4",
            "--out",
            "b",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stderr(&o), srv.log());
    let r = &rs[0];
    assert_eq!(value(r, "requests_completed"), 3.0);
    assert!(r["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["name"] != "ttft"));
    for l in records(&w, "b", r) {
        assert_eq!(l["tokens_out"], 4, "{l}");
        // the chat template adds tokens around the 8-token message
        assert!(l["tokens_in"].as_u64().unwrap() > 8, "{l}");
    }
}

#[test]
fn error_replies_are_counted_by_kind_under_the_failure_threshold() {
    let Some((server, gguf)) = prerequisites("llama-server error replies") else {
        return;
    };
    let w = Work::new();
    let srv = Llama::start(&server, &gguf, &[]);
    // One prompt longer than a slot's 512-token context among short ones.
    let long = vec!["word"; 700].join(" ");
    let data = format!(
        "{{\"prompt\": \"hello there\", \"output_len\": 2}}\n{{\"prompt\": \"{long}\", \"output_len\": 2}}\n{{\"prompt\": \"one two three\", \"output_len\": 2}}\n"
    );
    w.write("d.jsonl", &data);
    let (rs, o) = loadgen(
        &w,
        &srv,
        &gguf,
        &[
            "--dataset",
            "d.jsonl",
            "--num-prompts",
            "3",
            "--warmup-requests",
            "0",
            "--max-failed-pct",
            "50",
            "--out",
            "a",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stderr(&o), srv.log());
    let r = &rs[0];
    assert_eq!(
        r["status"]["state"], "ok",
        "1 of 3 failed, under 50 %: {}",
        r["status"]
    );
    assert_eq!(value(r, "failures_http_4xx"), 1.0);
    assert_eq!(value(r, "requests_completed"), 2.0);
    let failed: Vec<Value> = records(&w, "a", r)
        .into_iter()
        .filter(|l| l["ok"] == false)
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["status"], 400);
    assert_eq!(failed[0]["error_kind"], "http_4xx");
    let msg = failed[0]["error"].as_str().unwrap();
    assert!(msg.contains("exceeds the available context size"), "{msg}");

    // A bad request field: every request answered 400, the run fails, cleanly.
    let (rs, o) = loadgen(
        &w,
        &srv,
        &gguf,
        &[
            "--num-prompts",
            "2",
            "--warmup-requests",
            "0",
            "--input-len",
            "4",
            "--output-len",
            "2",
            "--extra-body",
            "{\"n_probs\": \"x\"}",
            "--out",
            "b",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let r = &rs[0];
    assert_eq!(r["status"]["state"], "failed");
    assert!(r["status"]["reason"]
        .as_str()
        .unwrap()
        .contains("all 2 requests failed"));
    assert_eq!(value(r, "failures_http_4xx"), 2.0);
    assert!(!stderr(&o).contains("panicked"));
}

#[test]
fn a_server_killed_mid_run_keeps_the_completed_requests() {
    let Some((server, gguf)) = prerequisites("llama-server killed mid-run") else {
        return;
    };
    let w = Work::new();
    let mut srv = Llama::start(&server, &gguf, &[]);
    let url = srv.url();
    let lg = w
        .cmd(&[
            "loadgen",
            "--base-url",
            &url,
            "--model",
            gguf.to_str().unwrap(),
            "--num-prompts",
            "40",
            "--warmup-requests",
            "0",
            "--request-rate",
            "8",
            "--arrival",
            "constant",
            "--input-len",
            "4",
            "--output-len",
            "2",
            "--out",
            "o",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the server has answered a few requests, then kill it.
    let until = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, prom) = http(srv.port, "GET", "/metrics", "");
        let done: f64 = prom
            .lines()
            .find_map(|l| l.strip_prefix("llamacpp:tokens_predicted_total "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0);
        if done >= 6.0 {
            break;
        }
        assert!(Instant::now() < until, "no progress: {prom}\n{}", srv.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    srv.child.kill().unwrap();
    let o = lg.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let rs: Vec<Value> = serde_json::from_str(&stdout(&o)).unwrap();
    let r = &rs[0];
    assert_eq!(r["status"]["state"], "failed", "{}", r["status"]);
    assert!(
        r["status"]["reason"]
            .as_str()
            .unwrap()
            .contains("unreachable"),
        "{}",
        r["status"]
    );
    let completed = value(r, "requests_completed");
    assert!((1.0..40.0).contains(&completed), "{completed}");
    assert!(value(r, "failures_connection") >= 1.0);
    // The records of what completed are on disk.
    let lines = records(&w, "o", r);
    assert!(lines.iter().filter(|l| l["ok"] == true).count() as f64 == completed);
}

#[test]
fn kept_alive_connections_the_server_closes_never_fail_the_run() {
    let Some((server, gguf)) = prerequisites("llama-server keep-alive") else {
        return;
    };
    let w = Work::new();
    let srv = Llama::start(&server, &gguf, &[]);
    // llama.cpp's HTTP server ends a kept-alive connection after 100 requests: 105 requests
    // one at a time cross that point on the same connection.
    let (rs, o) = loadgen(
        &w,
        &srv,
        &gguf,
        &[
            "--num-prompts",
            "105",
            "--max-concurrency",
            "1",
            "--input-len",
            "2",
            "--output-len",
            "1",
            "--max-failed-pct",
            "0",
            "--no-request-records",
            "--metrics-interval-s",
            "0",
            "--out",
            "o",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stderr(&o), srv.log());
    let r = &rs[0];
    assert_eq!(r["status"]["state"], "ok", "{}", r["status"]);
    assert_eq!(value(r, "requests_completed"), 105.0);
    assert_eq!(value(r, "requests_failed"), 0.0);
}

#[test]
fn an_api_key_header_reaches_the_server_and_is_never_written() {
    let Some((server, gguf)) = prerequisites("llama-server --api-key") else {
        return;
    };
    let w = Work::new();
    let key = "sk-effbench-test-7f3a";
    let srv = Llama::start(&server, &gguf, &["--api-key", key]);
    let auth = format!("Authorization: Bearer {key}");
    let (rs, o) = loadgen(
        &w,
        &srv,
        &gguf,
        &[
            "--num-prompts",
            "2",
            "--input-len",
            "4",
            "--output-len",
            "2",
            "--header",
            &auth,
            "--header",
            "X-Effbench-Test=1",
            "--out",
            "o",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stderr(&o), srv.log());
    assert_eq!(rs[0]["status"]["state"], "ok");
    // Nothing written under the output directory holds the key.
    let mut stack = vec![w.path().join("o")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let text = String::from_utf8_lossy(&std::fs::read(&p).unwrap()).to_string();
                assert!(!text.contains(key), "{} holds the key", p.display());
            }
        }
    }
    assert!(!stdout(&o).contains(key) && !stderr(&o).contains(key));
    let suite = std::fs::read_to_string(w.path().join("o/loadgen.toml")).unwrap();
    assert!(
        suite.contains("Authorization = \"EFFBENCH_LOADGEN_HEADER_0\""),
        "{suite}"
    );
    assert!(rs[0]["log"]
        .to_string()
        .contains("extra headers sent (values withheld): authorization, x-effbench-test"));
    // Without the header the server refuses: every request is a 401.
    let (rs, o) = loadgen(
        &w,
        &srv,
        &gguf,
        &[
            "--num-prompts",
            "1",
            "--warmup-requests",
            "0",
            "--input-len",
            "4",
            "--output-len",
            "2",
            "--out",
            "p",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(value(&rs[0], "failures_http_4xx"), 1.0);
}

/// A `vllm bench serve` command line (random dataset, a rate, goodput, save-result: the
/// flags of vLLM's documentation) run unchanged against llama-server.
#[test]
fn a_vllm_bench_serve_command_line_runs_unchanged() {
    let Some((server, gguf)) = prerequisites("vllm command line vs llama-server") else {
        return;
    };
    let w = Work::new();
    let srv = Llama::start(&server, &gguf, &[]);
    let port = srv.port.to_string();
    let args = common::vllm_bench_serve_args(&port, gguf.to_str().unwrap(), 32, 8, 8, 4);
    let o = w.run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stderr(&o), srv.log());
    let text = std::fs::read_to_string(w.path().join("vllm-results/bench.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["completed"], 8);
    assert_eq!(v["failed"], 0);
    assert_eq!(v["request_rate"], 4.0);
    assert_eq!(v["backend"], "openai");
    assert_eq!(
        v["total_input_tokens"],
        8 * 32,
        "token-accurate prompts: {text}"
    );
    assert_eq!(v["total_output_tokens"], 8 * 8);
    assert!(v["request_goodput"].as_f64().unwrap() > 0.0);
    for k in [
        "p99_ttft_ms",
        "p50_tpot_ms",
        "mean_itl_ms",
        "std_e2el_ms",
        "median_e2el_ms",
    ] {
        assert!(v[k].as_f64().unwrap() > 0.0, "{k}: {text}");
    }
    assert_eq!(v["ttfts"].as_array().unwrap().len(), 8);
    assert_eq!(v["input_lens"][0], 32);
}
