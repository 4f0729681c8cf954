//! A minimal OpenAI-style streaming server in its own process, to measure the load generator
//! rather than a model: every `POST` gets the same SSE stream of `--tokens` completion chunks
//! (cumulative `usage` in each) and `[DONE]`, chunked transfer encoding, keep-alive;
//! `GET /v1/models` lists one model `m`; anything else is a 404. Hand-written HTTP/1.1 on
//! tokio (no framework), `--threads` runtime threads (default 1), so nearly all of its CPU
//! is socket I/O.
//!
//!   cargo run --release -p effbench-backends --example sse_server -- --port 8000 [--tokens 16]
//!       [--threads 1] [--gap-us 0]
//!
//! Prints `listening on http://127.0.0.1:PORT` on stdout (`--port 0` picks a free port).
//! `--gap-us` sends the chunks that far apart (held-open streams) instead of in one write.
//! Used by `scripts/bench-loadgen.sh`; loopback only.

use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

struct Opts {
    port: u16,
    tokens: usize,
    threads: usize,
    gap: Duration,
}

fn opts() -> Opts {
    let mut o = Opts {
        port: 8000,
        tokens: 16,
        threads: 1,
        gap: Duration::ZERO,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let v = args.get(i + 1).cloned().unwrap_or_default();
        let num = |v: &str| -> u64 {
            v.parse().unwrap_or_else(|_| {
                eprintln!("sse_server: {} needs a whole number, got '{v}'", args[i]);
                std::process::exit(2)
            })
        };
        match args[i].as_str() {
            "--port" => o.port = num(&v) as u16,
            "--tokens" => o.tokens = num(&v).max(1) as usize,
            "--threads" => o.threads = num(&v).max(1) as usize,
            "--gap-us" => o.gap = Duration::from_micros(num(&v)),
            other => {
                eprintln!("sse_server: unknown argument '{other}' (--port, --tokens, --threads, --gap-us)");
                std::process::exit(2)
            }
        }
        i += 2;
    }
    o
}

/// The SSE events of one response, each a complete `data: ...\n\n`.
fn events(tokens: usize) -> Vec<String> {
    let mut out: Vec<String> = (0..tokens)
        .map(|i| {
            format!(
                "data: {{\"id\":\"x\",\"object\":\"text_completion\",\"model\":\"m\",\"choices\":[{{\"index\":0,\"text\":\" t\",\"finish_reason\":{}}}],\"usage\":{{\"prompt_tokens\":8,\"completion_tokens\":{}}}}}\n\n",
                if i + 1 == tokens { "\"length\"" } else { "null" },
                i + 1
            )
        })
        .collect();
    out.push("data: [DONE]\n\n".into());
    out
}

const HEAD: &str =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";

fn chunk(e: &str) -> String {
    format!("{:x}\r\n{e}\r\n", e.len())
}

fn fixed(status: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

struct Responses {
    stream: Vec<u8>,
    events: Vec<String>,
    models: Vec<u8>,
    missing: Vec<u8>,
    gap: Duration,
}

/// Length of the first complete request in `buf` and whether it is a POST / a models GET.
fn request(buf: &[u8]) -> Option<(usize, &[u8])> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = &buf[..end];
    let mut len = 0usize;
    for line in head.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() > 15 && line[..15].eq_ignore_ascii_case(b"content-length:") {
            len = std::str::from_utf8(&line[15..])
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
        }
    }
    let total = end + 4 + len;
    (buf.len() >= total).then_some((total, head))
}

async fn serve(mut s: TcpStream, r: Arc<Responses>) -> std::io::Result<()> {
    s.set_nodelay(true)?;
    let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut tmp = vec![0u8; 16 * 1024];
    loop {
        while let Some((n, head)) = request(&buf) {
            if head.starts_with(b"POST ") {
                if r.gap.is_zero() {
                    s.write_all(&r.stream).await?;
                } else {
                    s.write_all(HEAD.as_bytes()).await?;
                    for e in &r.events {
                        tokio::time::sleep(r.gap).await;
                        s.write_all(chunk(e).as_bytes()).await?;
                    }
                    s.write_all(b"0\r\n\r\n").await?;
                }
            } else if head.starts_with(b"GET /v1/models ") {
                s.write_all(&r.models).await?;
            } else {
                s.write_all(&r.missing).await?;
            }
            buf.drain(..n);
        }
        let k = s.read(&mut tmp).await?;
        if k == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&tmp[..k]);
    }
}

fn main() {
    let o = opts();
    let events = events(o.tokens);
    let mut stream = HEAD.as_bytes().to_vec();
    for e in &events {
        stream.extend_from_slice(chunk(e).as_bytes());
    }
    stream.extend_from_slice(b"0\r\n\r\n");
    let r = Arc::new(Responses {
        stream,
        events,
        models: fixed(
            "200 OK",
            "{\"object\":\"list\",\"data\":[{\"id\":\"m\",\"object\":\"model\",\"owned_by\":\"sse_server\"}]}",
        ),
        missing: fixed("404 Not Found", "{\"error\":{\"message\":\"not found\"}}"),
        gap: o.gap,
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(o.threads)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        let l = TcpListener::bind(("127.0.0.1", o.port))
            .await
            .unwrap_or_else(|e| {
                eprintln!("sse_server: cannot listen on 127.0.0.1:{}: {e}", o.port);
                std::process::exit(1)
            });
        println!("listening on http://{}", l.local_addr().expect("bound"));
        use std::io::Write;
        let _ = std::io::stdout().flush();
        loop {
            let Ok((s, _)) = l.accept().await else {
                continue;
            };
            let r = r.clone();
            tokio::spawn(async move {
                let _ = serve(s, r).await;
            });
        }
    });
}
