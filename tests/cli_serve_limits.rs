//! `effbench serve` against careless and hostile clients, end to end on 127.0.0.1: idle and
//! slow connections are capped and timed out, SIGTERM and SIGHUP stop it while hundreds of
//! connections are open (exit 128 + signal), every error is an OpenAI-style JSON error,
//! absurd numbers are refused, and a failed engine is reported instead of hanging requests.
//! Bounded: at most a few hundred sockets, every wait capped.

mod common;
#[path = "common/serve.rs"]
mod serve_util;

use common::{assert_clean_error, Work};
use serde_json::Value;
use serve_util::{http, Server};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Reads until the peer closes (or `limit` passes): the bytes and whether it closed.
fn read_until_closed(s: &mut TcpStream, limit: Duration) -> (String, bool) {
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let until = Instant::now() + limit;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < until {
        match s.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&got).into(), true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return (String::from_utf8_lossy(&got).into(), true)
            }
            Err(_) => {} // timed out: try again
        }
    }
    (String::from_utf8_lossy(&got).into(), false)
}

/// The JSON error of a raw HTTP response: (status, error object).
fn json_error(raw: &str) -> (u16, Value) {
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let v: Value = serde_json::from_str(body.trim())
        .unwrap_or_else(|e| panic!("not a JSON body ({e}): {raw:?}"));
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    (status, v["error"].clone())
}

fn wait_exit(srv: &mut Server, limit: Duration) -> std::process::ExitStatus {
    let until = Instant::now() + limit;
    loop {
        if let Some(st) = srv.child.try_wait().unwrap() {
            return st;
        }
        assert!(
            Instant::now() < until,
            "serve did not stop within {limit:?}: {}",
            srv.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn connections_are_capped_and_idle_ones_time_out() {
    let w = Work::new();
    let srv = Server::start(&w, &["--max-connections", "8", "--header-timeout-s", "1"]);
    // Eight silent connections take every slot (each is accepted before the next).
    let mut idle: Vec<TcpStream> = (0..8)
        .map(|_| {
            let s = TcpStream::connect(&srv.addr).unwrap();
            std::thread::sleep(Duration::from_millis(20));
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    // The ninth gets a JSON 503 and is closed, without a request.
    let mut extra = TcpStream::connect(&srv.addr).unwrap();
    let (raw, closed) = read_until_closed(&mut extra, Duration::from_secs(20));
    assert!(closed, "{raw}");
    let (status, err) = json_error(&raw);
    assert_eq!(status, 503, "{raw}");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("too many open connections"),
        "{err}"
    );
    // The silent ones are closed by the header timeout, freeing their slots.
    for s in idle.iter_mut() {
        let (_, closed) = read_until_closed(s, Duration::from_secs(30));
        assert!(closed, "an idle connection stayed open: {}", srv.log());
    }
    let (st, body) = http(&srv.addr, "GET", "/health", "");
    assert_eq!(st, 200, "{body}");
    // A keep-alive connection idle after its request is closed the same way.
    let mut ka = TcpStream::connect(&srv.addr).unwrap();
    write!(ka, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let (raw, closed) = read_until_closed(&mut ka, Duration::from_secs(30));
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    assert!(closed, "an idle keep-alive connection stayed open");
}

#[test]
fn a_slow_body_gets_a_json_408() {
    let w = Work::new();
    let srv = Server::start(&w, &["--body-timeout-s", "1"]);
    let mut s = TcpStream::connect(&srv.addr).unwrap();
    write!(
        s,
        "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{{\"pro"
    )
    .unwrap();
    let (raw, _) = read_until_closed(&mut s, Duration::from_secs(20));
    let (status, err) = json_error(&raw);
    assert_eq!(status, 408, "{raw}");
    assert_eq!(err["param"], "body");
}

#[test]
fn sigterm_and_sighup_stop_serve_with_hundreds_of_connections_open() {
    for (sig, code) in [("TERM", 143), ("HUP", 129)] {
        let w = Work::new();
        let mut srv = Server::start(&w, &["--max-connections", "1000"]);
        let mut open: Vec<TcpStream> = (0..300)
            .map(|_| TcpStream::connect(&srv.addr).unwrap())
            .collect();
        // Some half-sent requests among them: headers without their end, a body cut short.
        for s in open.iter_mut().take(20) {
            let _ = write!(s, "POST /v1/completions HTTP/1.1\r\nHost: x\r\n");
        }
        for s in open.iter_mut().skip(20).take(20) {
            let _ = write!(
                s,
                "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{{"
            );
        }
        std::thread::sleep(Duration::from_millis(300));
        let pid = srv.child.id().to_string();
        assert!(std::process::Command::new("kill")
            .args([&format!("-{sig}"), &pid])
            .status()
            .unwrap()
            .success());
        let status = wait_exit(&mut srv, Duration::from_secs(60));
        assert_eq!(status.code(), Some(code), "SIG{sig}: {}", srv.log());
        assert!(srv.log().contains("stopped"), "{}", srv.log());
        drop(open);
    }
}

#[test]
fn every_error_is_an_openai_json_error() {
    let w = Work::new();
    let srv = Server::start(&w, &[]);
    // Wrong method: JSON 405 with the allowed one.
    let (st, body) = http(&srv.addr, "GET", "/v1/completions", "");
    assert_eq!(st, 405, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(
        v["error"]["message"].as_str().unwrap().contains("POST"),
        "{v}"
    );
    // Unknown route, malformed JSON.
    for (method, path, body, want) in [
        ("GET", "/nope", "", 404),
        ("POST", "/v1/completions", "{\"prompt\": ", 400),
        ("POST", "/v1/chat/completions", "[1, 2]", 400),
    ] {
        let (st, text) = http(&srv.addr, method, path, body);
        assert_eq!(st, want, "{method} {path}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert!(v["error"]["message"].is_string(), "{v}");
    }
    // A body over the limit: JSON 413, refused from its declared length.
    let mut s = TcpStream::connect(&srv.addr).unwrap();
    write!(
        s,
        "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        3 << 20
    )
    .unwrap();
    let (raw, _) = read_until_closed(&mut s, Duration::from_secs(20));
    let (status, err) = json_error(&raw);
    assert_eq!(status, 413, "{raw}");
    assert!(err["message"].as_str().unwrap().contains("larger than"));
    // Numbers out of range: 400 naming the field, never 200 or a wrapped context check.
    for max_tokens in [
        "18446744073709551615",
        "18446744073709551616",
        "9007199254740993",
        "-1",
        "1e30",
        "2.5",
        "\"8\"",
    ] {
        let body = format!(r#"{{"prompt": "the", "max_tokens": {max_tokens}}}"#);
        let (st, text) = http(&srv.addr, "POST", "/v1/completions", &body);
        assert_eq!(st, 400, "max_tokens {max_tokens}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["error"]["param"], "max_tokens", "{v}");
    }
    let body = r#"{"messages": [{"role": "user", "content": "hi"}], "max_completion_tokens": 18446744073709551615}"#;
    let (st, text) = http(&srv.addr, "POST", "/v1/chat/completions", body);
    assert_eq!(st, 400, "{text}");
    let (st, text) = http(
        &srv.addr,
        "POST",
        "/v1/completions",
        r#"{"prompt": [18446744073709551615]}"#,
    );
    assert_eq!(st, 400, "{text}");
    // Still serving.
    let (st, text) = http(
        &srv.addr,
        "POST",
        "/v1/completions",
        r#"{"prompt": "the", "max_tokens": 2}"#,
    );
    assert_eq!(st, 200, "{text}");
}

#[test]
fn a_dead_engine_is_reported_and_nobody_hangs() {
    let w = Work::new();
    // Fault injection: the engine thread panics when it admits its second request.
    let srv = Server::start_with(
        &w,
        &["--max-batch", "1"],
        &[("EFFBENCH_SERVE_ENGINE_PANIC_AFTER", "1")],
    );
    let body = r#"{"prompt": "the", "max_tokens": 3, "ignore_eos": true}"#;
    let (st, text) = http(&srv.addr, "POST", "/v1/completions", body);
    assert_eq!(st, 200, "{text}");
    // Two at once: one kills the engine on admission, the other waits in the queue; both
    // hear an error (http() gives up after 60 s, so a hang fails the test).
    let addr = srv.addr.clone();
    let streamed = r#"{"prompt": "the", "max_tokens": 3, "stream": true}"#;
    let other = std::thread::spawn(move || http(&addr, "POST", "/v1/completions", streamed));
    let (st, text) = http(&srv.addr, "POST", "/v1/completions", body);
    assert!(st >= 500, "{st}: {text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert!(v["error"]["message"].is_string(), "{v}");
    let (st2, text2) = other.join().unwrap();
    assert!(st2 >= 500 || text2.contains("\"error\""), "{st2}: {text2}");
    // /health says so; new requests are refused at once with the reason.
    let (st, text) = http(&srv.addr, "GET", "/health", "");
    assert_eq!(st, 503, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("engine thread stopped"),
        "{v}"
    );
    let (st, text) = http(&srv.addr, "POST", "/v1/completions", body);
    assert_eq!(st, 503, "{text}");
    assert!(text.contains("engine thread stopped"), "{text}");
}

#[test]
fn a_full_queue_gets_a_json_503_and_the_server_goes_on() {
    let w = Work::new();
    // One batch slot and one place in the queue: of six long requests sent at once, at most
    // two are taken (each runs for 200 tokens); the others are refused at once.
    let srv = Server::start(&w, &["--max-batch", "1", "--max-queue", "1"]);
    let long = r#"{"prompt": "the", "max_tokens": 200, "ignore_eos": true}"#;
    let clients: Vec<_> = (0..6)
        .map(|_| {
            let addr = srv.addr.clone();
            std::thread::spawn(move || http(&addr, "POST", "/v1/completions", long))
        })
        .collect();
    let replies: Vec<(u16, String)> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let refused: Vec<&String> = replies
        .iter()
        .filter(|(st, _)| *st == 503)
        .map(|(_, t)| t)
        .collect();
    assert!(
        refused.len() >= 4,
        "{} of 6 refused: {replies:?}",
        refused.len()
    );
    for text in &refused {
        let v: Value = serde_json::from_str(text).unwrap();
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("queue is full"),
            "{v}"
        );
    }
    for (st, text) in &replies {
        assert!(*st == 200 || *st == 503, "{st}: {text}");
    }
    let (_, m) = http(&srv.addr, "GET", "/metrics", "");
    let line = format!(
        "effbench_requests_total{{outcome=\"rejected_503\"}} {}",
        refused.len()
    );
    assert!(m.lines().any(|l| l == line), "{line} not in {m}");
    // Then it serves as before.
    let (st, text) = http(
        &srv.addr,
        "POST",
        "/v1/completions",
        r#"{"prompt": "the", "max_tokens": 2}"#,
    );
    assert_eq!(st, 200, "{text}");
}

#[test]
fn out_of_range_flags_are_refused_with_the_flag_named() {
    let w = Work::new();
    for (flags, want) in [
        (
            &["--max-step-tokens", "100000000000"][..],
            "--max-step-tokens = 100000000000 is out of range: allowed 1 to 1048576",
        ),
        (
            &["--max-connections", "0"][..],
            "--max-connections = 0 is out of range",
        ),
        (
            &["--max-batch", "5000"][..],
            "--max-batch = 5000 is out of range",
        ),
        (&["--max-queue", "0"][..], "--max-queue = 0 is out of range"),
        (
            &["--header-timeout-s", "0"][..],
            "--header-timeout-s = 0 must be more than 0 s",
        ),
        (&["--body-timeout-s", "1e300"][..], "--body-timeout-s = "),
    ] {
        let mut args = vec!["serve", "--port", "0"];
        args.extend_from_slice(flags);
        let line = assert_clean_error(&w.run(&args), 2);
        assert!(line.contains(want), "{flags:?}: {line}");
    }
}
