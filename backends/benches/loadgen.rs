//! The load generator's own speed, against a trivial loopback endpoint (a minimal axum route
//! answering every request with a static 16-token SSE stream), so the numbers are the
//! client's limits, not a model's:
//! - `loadgen/inf_16tok`: requests/s at rate `inf` (criterion throughput, elements = requests);
//! - printed once before it: arrival lateness p50/p99 and send rate at a fixed Poisson rate of
//!   1,000 req/s, and peak concurrency with 2,000 streams held open (16 tokens 20 ms apart).
//!
//! - printed too: the generator's own CPU time per request and CPU utilisation (process CPU
//!   time minus the route's threads, read from their per-thread CPU clocks; Linux) and the
//!   process's peak RSS.
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
use effbench_harness::records::{Arrival, Endpoint, Slo};
use effbench_harness::serving::ScheduleSpec;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const TOKENS: usize = 16;

/// The threads that serve the route, so their CPU time can be taken out of the process's.
static ROUTE_THREADS: Mutex<Vec<libc::pthread_t>> = Mutex::new(Vec::new());

fn register_route_thread() {
    // SAFETY: pthread_self has no preconditions.
    ROUTE_THREADS
        .lock()
        .unwrap()
        .push(unsafe { libc::pthread_self() });
}

fn cpu_clock_s(clock: libc::clockid_t) -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec to write into.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// CPU seconds used so far by the generator: the whole process (finished threads included)
/// minus the route's threads (which live as long as the process).
fn generator_cpu_s() -> f64 {
    let route: f64 = ROUTE_THREADS
        .lock()
        .unwrap()
        .iter()
        .map(|&t| {
            let mut clock: libc::clockid_t = 0;
            // SAFETY: t is a live thread of this process; clock is written on success.
            let rc = unsafe { libc::pthread_getcpuclockid(t, &mut clock) };
            assert_eq!(rc, 0, "pthread_getcpuclockid");
            cpu_clock_s(clock)
        })
        .sum();
    cpu_clock_s(libc::CLOCK_PROCESS_CPUTIME_ID) - route
}

/// Peak resident set of the process (VmHWM), MB.
fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

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
        .on_thread_start(register_route_thread)
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
    std::thread::spawn(move || {
        register_route_thread();
        rt.block_on(async { axum::serve(listener, app).await.unwrap() })
    });
    format!("http://{addr}")
}

/// The measured window as the generator itself opens and closes it: from the first send
/// to the last response folded in. The summary statistics (bootstrap CIs) computed after it
/// are not request handling, so they are not timed.
/// Also takes the generator's CPU time over the window.
#[derive(Default)]
struct Clock {
    start: Option<Instant>,
    secs: f64,
    cpu0: f64,
    cpu_s: f64,
}
impl Window for Clock {
    fn begin(&mut self) {
        self.cpu0 = generator_cpu_s();
        self.start = Some(Instant::now());
    }
    fn end(&mut self) -> f64 {
        self.secs = self.start.map_or(0.0, |t| t.elapsed().as_secs_f64());
        self.cpu_s = generator_cpu_s() - self.cpu0;
        self.secs
    }
}

fn test(url: String, n: u64, rate: Option<f64>, max_concurrency: usize) -> LoadTest {
    LoadTest {
        target: Target::new(url, true, Duration::from_secs(60)),
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
        max_failed_pct: 0.0,
        records: None,
        scrape: None,
        ready_check: Duration::ZERO,
    }
}

/// The report, the window's seconds and the generator's CPU seconds in the window.
fn run(
    t: &LoadTest,
    rt: &tokio::runtime::Runtime,
    client: &reqwest::Client,
) -> (WindowReport, f64, f64) {
    let mut w = Clock::default();
    let r = t.run(rt, client, &mut w);
    assert!(r.failure.is_none(), "{:?}", r.failure);
    (r, w.secs, w.cpu_s)
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

    let (r, secs, cpu) = run(&test(fast.clone(), 3000, Some(1000.0), 0), &rt, &client);
    let lat = r
        .metrics
        .iter()
        .find(|m| m.name.name() == "arrival_lateness")
        .unwrap();
    let s = lat.stats.as_ref().unwrap();
    eprintln!(
        "poisson 1000 req/s x 3000: send rate {:.0} req/s, arrival lateness p50 {:.3} ms p99 {:.3} ms, completed {}; generator CPU {:.1} us/request ({:.0} % of one core)",
        value(&r, "send_rate", false), s.p50, s.p99, value(&r, "requests_completed", false),
        cpu / 3000.0 * 1e6, cpu / secs * 100.0
    );
    let (r, secs, _) = run(
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
    let t_summary = Instant::now();
    let (r, secs, cpu) = run(&test(fast.clone(), n, None, 256), &rt, &client);
    let summary_s = t_summary.elapsed().as_secs_f64() - secs;
    eprintln!(
        "rate inf x {n}: request_throughput {:.0} req/s (the generator's own metric), completed {}, window {:.3} s; generator CPU {:.1} us/request ({:.0} % of one core); summary statistics after the window {:.2} s",
        value(&r, "request_throughput", false),
        value(&r, "requests_completed", false),
        secs,
        cpu / n as f64 * 1e6,
        cpu / secs * 100.0,
        summary_s
    );
    eprintln!(
        "process peak RSS (generator and route together) {:.1} MB",
        peak_rss_mb()
    );
    let mut g = c.benchmark_group("loadgen");
    g.sample_size(10).throughput(Throughput::Elements(n));
    g.bench_function("inf_16tok", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (_, secs, _) = run(&test(fast.clone(), n, None, 256), &rt, &client);
                total += Duration::from_secs_f64(secs);
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
