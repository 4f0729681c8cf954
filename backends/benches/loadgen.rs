//! The load generator's own speed, against a trivial loopback endpoint (a minimal axum route
//! answering every request with a static 16-token SSE stream), so the numbers are the
//! client's limits, not a model's:
//! - `loadgen/inf_16tok`: requests/s at rate `inf` (criterion throughput, elements = requests);
//! - printed once before it: arrival lateness p50/p99 and send rate at a fixed Poisson rate of
//!   1,000 req/s, and peak concurrency with 2,000 streams held open (16 tokens 20 ms apart).
//!
//! `cargo bench -p effbench-backends --bench loadgen`. Generator and server share the machine.

use axum::body::{Body, Bytes};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use effbench_backends::openai_http::client::Target;
use effbench_backends::openai_http::loadgen::LoadTest;
use effbench_backends::openai_http::workload::Workload;
use effbench_harness::backend::{Window, WindowReport};
use effbench_harness::serving::{Arrival, Endpoint, ScheduleSpec, Slo};
use std::time::{Duration, Instant};

const TOKENS: usize = 16;

fn sse_body() -> Bytes {
    let mut s = String::new();
    for i in 0..TOKENS {
        s.push_str(&format!(
            "data: {{\"choices\":[{{\"index\":0,\"text\":\" t\",\"finish_reason\":{}}}],\"usage\":{{\"prompt_tokens\":8,\"completion_tokens\":{}}}}}\n\n",
            if i + 1 == TOKENS { "\"length\"" } else { "null" },
            i + 1
        ));
    }
    s.push_str("data: [DONE]\n\n");
    Bytes::from(s)
}

/// Starts the endpoint on its own runtime; returns the base URL.
fn server() -> String {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let body = sse_body();
    let fast = body.clone();
    let app = Router::new()
        .route(
            "/fast/v1/completions",
            post(move || {
                let b = fast.clone();
                async move {
                    Response::builder()
                        .header("content-type", "text/event-stream")
                        .body(Body::from(b))
                        .unwrap()
                }
            }),
        )
        .route(
            "/held/v1/completions",
            post(|| async {
                let s = futures_util::stream::unfold(0usize, |i| async move {
                    if i > TOKENS {
                        return None;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    let chunk = if i == TOKENS {
                        "data: [DONE]\n\n".to_string()
                    } else {
                        format!("data: {{\"choices\":[{{\"text\":\" t\",\"finish_reason\":{}}}],\"usage\":{{\"prompt_tokens\":8,\"completion_tokens\":{}}}}}\n\n",
                            if i + 1 == TOKENS { "\"length\"" } else { "null" }, i + 1)
                    };
                    Some((Ok::<_, std::convert::Infallible>(chunk), i + 1))
                });
                Response::builder()
                    .header("content-type", "text/event-stream")
                    .body(Body::from_stream(s))
                    .unwrap()
            }),
        );
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || rt.block_on(async { axum::serve(listener, app).await.unwrap() }));
    format!("http://{addr}")
}

struct Clock(Option<Instant>);
impl Window for Clock {
    fn begin(&mut self) {
        self.0 = Some(Instant::now());
    }
    fn end(&mut self) -> f64 {
        self.0.map_or(0.0, |t| t.elapsed().as_secs_f64())
    }
}

fn test(url: String, n: u64, rate: Option<f64>, max_concurrency: usize) -> LoadTest {
    LoadTest {
        target: Target {
            url,
            api_key: None,
            stream: true,
            timeout: Duration::from_secs(60),
        },
        workload: Workload::synthetic(
            Endpoint::Completions,
            "m",
            true,
            true,
            1,
            (8, TOKENS as u64, 0.0),
        ),
        schedule: ScheduleSpec {
            rate,
            arrival: Arrival::Poisson,
            burstiness: 1.0,
            ramp: None,
            seed: 7,
        },
        max_concurrency,
        num_prompts: n,
        warmup_requests: 0,
        slo: Slo::default(),
        max_samples: 10_000,
        seed: 1,
    }
}

fn run(
    t: &LoadTest,
    rt: &tokio::runtime::Runtime,
    client: &reqwest::Client,
) -> (WindowReport, f64) {
    let mut w = Clock(None);
    let r = t.run(rt, client, &mut w);
    assert!(r.failure.is_none(), "{:?}", r.failure);
    (r, w.end())
}

fn value(r: &WindowReport, name: &str, p99: bool) -> f64 {
    let m = r.metrics.iter().find(|m| m.name.name() == name).unwrap();
    match (&m.stats, p99) {
        (Some(s), true) => s.p99,
        _ => m.value,
    }
}

fn bench(c: &mut Criterion) {
    let base = server();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .build()
        .unwrap();
    let fast = format!("{base}/fast/v1/completions");

    let (r, _) = run(&test(fast.clone(), 3000, Some(1000.0), 0), &rt, &client);
    let lat = r
        .metrics
        .iter()
        .find(|m| m.name.name() == "arrival_lateness")
        .unwrap();
    let s = lat.stats.as_ref().unwrap();
    eprintln!(
        "poisson 1000 req/s x 3000: send rate {:.0} req/s, arrival lateness p50 {:.3} ms p99 {:.3} ms, completed {}",
        value(&r, "send_rate", false), s.p50, s.p99, value(&r, "requests_completed", false)
    );
    let (r, secs) = run(
        &test(format!("{base}/held/v1/completions"), 2000, None, 0),
        &rt,
        &client,
    );
    eprintln!(
        "2000 held streams at once: peak concurrency {}, completed {}, {:.2} s",
        value(&r, "peak_concurrency", false),
        value(&r, "requests_completed", false),
        secs
    );

    let n = 2000u64;
    let mut g = c.benchmark_group("loadgen");
    g.sample_size(10).throughput(Throughput::Elements(n));
    g.bench_function("inf_16tok", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (_, secs) = run(&test(fast.clone(), n, None, 256), &rt, &client);
                total += Duration::from_secs_f64(secs);
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
