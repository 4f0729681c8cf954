//! The load generator's client against real HTTP on 127.0.0.1: a small axum server whose
//! routes send several tokens per SSE chunk, a malformed stream, error statuses, a stream cut
//! mid-way and a response slower than the timeout; and a scripted HTTP/1.1 peer on a raw
//! socket that closes a kept-alive connection under the next request (the race llama.cpp's
//! server loses to clients at its 5 s keep-alive timeout), which no real server does on cue.
//! Each test sends a handful of requests.

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use effbench_backends::openai_http::client::{send, Target};
use effbench_harness::serving::{ErrorKind, RequestRecord, TokenCounts};
use std::time::{Duration, Instant};

/// SSE chunks of 3, 1 and 2 tokens with cumulative usage, 30 ms apart.
async fn chunked() -> Response {
    let s = futures_util::stream::unfold(0usize, |i| async move {
        let cum = [3, 4, 6];
        let text = ["a b c", " d", " e f"];
        let out = match i {
            0..=2 => {
                if i > 0 {
                    tokio::time::sleep(Duration::from_millis(30)).await;
                }
                format!(
                    "data: {{\"choices\":[{{\"index\":0,\"text\":\"{}\",\"finish_reason\":{}}}],\"usage\":{{\"prompt_tokens\":4,\"completion_tokens\":{}}}}}\n\n",
                    text[i],
                    if i == 2 { "\"length\"" } else { "null" },
                    cum[i]
                )
            }
            3 => "data: [DONE]\n\n".to_string(),
            _ => return None,
        };
        Some((Ok::<_, std::convert::Infallible>(out), i + 1))
    });
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(s))
        .unwrap()
}

/// A first good chunk, then bytes that are not JSON.
async fn malformed() -> Response {
    (
        [("content-type", "text/event-stream")],
        "data: {\"choices\":[{\"text\":\"a\"}]}\n\ndata: {not json\n\n",
    )
        .into_response()
}

/// One chunk, then the connection drops without [DONE] (the body stream fails).
async fn cut() -> Response {
    let s = futures_util::stream::unfold(0usize, |i| async move {
        match i {
            0 => Some((
                Ok(String::from("data: {\"choices\":[{\"text\":\"a\"}]}\n\n")),
                1,
            )),
            _ => Some((Err(std::io::Error::other("server died")), 2)),
        }
    });
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(s))
        .unwrap()
}

async fn slow() -> Response {
    tokio::time::sleep(Duration::from_secs(5)).await;
    "late".into_response()
}

fn server(rt: &tokio::runtime::Runtime) -> String {
    let app = Router::new()
        .route("/chunked/v1/completions", post(chunked))
        .route("/malformed/v1/completions", post(malformed))
        .route("/cut/v1/completions", post(cut))
        .route("/slow/v1/completions", post(slow))
        .route(
            "/e500/v1/completions",
            post(|| async {
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "{\"error\":{\"message\":\"boom\"}}",
                )
            }),
        )
        .route(
            "/e429/v1/completions",
            post(|| async {
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    "{\"error\":{\"message\":\"slow down\"}}",
                )
            }),
        );
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn request(rt: &tokio::runtime::Runtime, url: String, timeout: Duration) -> RequestRecord {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let target = Target::new(url, true, timeout);
    let body = br#"{"model":"m","prompt":"x","max_tokens":6,"stream":true}"#.to_vec();
    rt.block_on(send(&client, &target, body, Instant::now()))
}

#[test]
fn multi_token_chunks_give_tpot_and_itl_per_token() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let base = server(&rt);
    let rec = request(
        &rt,
        format!("{base}/chunked/v1/completions"),
        Duration::from_secs(10),
    );
    assert!(rec.ok(), "{:?}", rec.failure);
    assert_eq!((rec.output_tokens, rec.input_tokens), (6, 4));
    assert_eq!(rec.token_counts, TokenCounts::Exact);
    let tokens: Vec<u32> = rec.trace.emissions.iter().map(|e| e.tokens).collect();
    assert_eq!(tokens, vec![3, 1, 2]);
    let l = rec.latencies();
    let (ttft, e2e_tokens) = (l.ttft.unwrap(), l.e2e.unwrap());
    // TPOT = (last emission - TTFT) / (6 - 1): two gaps (30 ms apart at the server) over 5 tokens.
    let last = rec.trace.emissions[2].t_ns as f64 / 1e6;
    assert!((l.tpot.unwrap() - (last - ttft) / 5.0).abs() < 1e-9);
    // (No lower bound from the server's 30 ms sleeps: a client that reads the first chunk late
    // sees shorter gaps, so such a bound fails on a loaded machine.)
    assert!(l.tpot.unwrap() > 0.0, "{:?}", l.tpot);
    assert!(e2e_tokens >= last);
    // ITL: gaps after the first emission; the 1-token chunk gives one sample, the 2-token
    // chunk two samples of half its gap.
    assert_eq!(l.itl.len(), 3);
    let e = &rec.trace.emissions;
    let gap = |a: usize, b: usize| (e[b].t_ns - e[a].t_ns) as f64 / 1e6;
    assert!((l.itl[0] - gap(0, 1)).abs() < 1e-9);
    assert!((l.itl[1] - gap(1, 2) / 2.0).abs() < 1e-9 && (l.itl[2] - l.itl[1]).abs() < 1e-9);
}

#[test]
fn faults_are_classified_by_kind() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let base = server(&rt);
    let kind = |route: &str, timeout: f64| {
        let rec = request(
            &rt,
            format!("{base}/{route}/v1/completions"),
            Duration::from_secs_f64(timeout),
        );
        (rec.failure.map(|f| (f.kind, f.message)), rec.http_status)
    };
    let (f, status) = kind("malformed", 10.0);
    assert_eq!(f.unwrap().0, ErrorKind::Protocol);
    assert_eq!(status, Some(200));
    let (f, status) = kind("e500", 10.0);
    let (k, msg) = f.unwrap();
    assert_eq!((k, status), (ErrorKind::Http5xx, Some(500)));
    assert!(msg.contains("boom"), "{msg}");
    assert_eq!(kind("e429", 10.0).0.unwrap().0, ErrorKind::Http4xx);
    assert_eq!(kind("cut", 10.0).0.unwrap().0, ErrorKind::Connection);
    assert_eq!(kind("slow", 0.3).0.unwrap().0, ErrorKind::Timeout);
    // Nothing listens: a connection failure without a status.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let rec = request(
        &rt,
        format!("http://127.0.0.1:{port}/v1/completions"),
        Duration::from_secs(5),
    );
    assert_eq!(rec.failure.unwrap().kind, ErrorKind::Connection);
    assert_eq!(rec.http_status, None);
}

/// One HTTP/1.1 request read off a socket: returns false when the peer closed first.
fn read_request(s: &mut std::net::TcpStream) -> bool {
    use std::io::Read;
    let mut buf = Vec::new();
    let mut b = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return true;
            }
        }
        match s.read(&mut b) {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&b[..n]),
        }
    }
}

fn answer(s: &mut std::net::TcpStream) {
    use std::io::Write;
    let body = "data: {\"choices\":[{\"text\":\" a\",\"finish_reason\":\"length\"}],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}\n\ndata: [DONE]\n\n";
    write!(
        s,
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
}

/// A peer that answers the first request of every connection, and on its first connection
/// reads a second request and closes without answering it. Returns its URL.
fn closing_peer(connections: usize) -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for (n, conn) in l.incoming().take(connections).enumerate() {
            let mut s = conn.unwrap();
            if read_request(&mut s) {
                answer(&mut s);
            }
            if n == 0 && read_request(&mut s) {
                // the kept-alive connection dies under the request
                drop(s);
            }
        }
    });
    format!("http://{addr}/v1/completions")
}

#[test]
fn a_request_on_a_connection_the_server_closed_is_retried_once_on_a_fresh_one() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let body = br#"{"model":"m","prompt":"x","max_tokens":1,"stream":true}"#;
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let fresh = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let mut target = Target::new(closing_peer(2), true, Duration::from_secs(10));
    target.fresh = Some(fresh);
    let first = rt.block_on(send(&client, &target, body.to_vec(), Instant::now()));
    assert!(first.ok() && !first.retried, "{:?}", first.failure);
    // hyper hands the connection back to the pool on a background task once the body is
    // done; give it that moment so the next request reuses it (else it opens a new one that
    // this one-connection-at-a-time peer never accepts).
    std::thread::sleep(Duration::from_millis(200));
    // Same pooled connection: the peer closes it under this request; the retry opens the
    // peer's second connection.
    let second = rt.block_on(send(&client, &target, body.to_vec(), Instant::now()));
    assert!(second.ok(), "{:?}", second.failure);
    assert!(second.retried);
    assert_eq!(second.output_tokens, 1);

    // Without a retry client the same race is a connection failure.
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let target = Target::new(closing_peer(1), true, Duration::from_secs(10));
    let first = rt.block_on(send(&client, &target, body.to_vec(), Instant::now()));
    assert!(first.ok(), "{:?}", first.failure);
    let second = rt.block_on(send(&client, &target, body.to_vec(), Instant::now()));
    let f = second
        .failure
        .expect("the closed connection fails the request");
    assert_eq!(f.kind, ErrorKind::Connection, "{}", f.message);
    assert!(!second.retried && second.http_status.is_none());
}
