//! The load generator's streaming throughput against a server in *another process*
//! (`examples/sse_server.rs`: 16-token SSE streams, hand-written HTTP/1.1), so the numbers
//! are the client's own limits with the server's CPU outside the generator's process: per
//! round, requests/s over the measured window at rate `inf`, the generator's CPU per request
//! (this whole process's user + system time; the server is not in it) and the server's CPU
//! per request (from /proc/<pid>/stat), and the 1-minute load average (the machine may be
//! shared: compare rounds run side by side, and rerun on a quiet machine).
//!
//!   scripts/bench-loadgen.sh            # builds the server and runs this
//!   EFFBENCH_SSE_SERVER=path cargo bench -p effbench-backends --bench loadgen_process
//!
//! Environment: `LOADGEN_REQUESTS` (default 20000), `LOADGEN_ROUNDS` (5),
//! `LOADGEN_CONCURRENCY` (256), `LOADGEN_WORKERS` (generator threads, 2),
//! `LOADGEN_SERVER_THREADS` (1).

use effbench_backends::openai_http::client::Target;
use effbench_backends::openai_http::loadgen::LoadTest;
use effbench_backends::openai_http::workload::Workload;
use effbench_harness::backend::Window;
use effbench_harness::records::{Arrival, Endpoint, Slo};
use effbench_harness::serving::ScheduleSpec;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU seconds (user + system) of this process so far.
fn self_cpu_s() -> f64 {
    // SAFETY: getrusage writes into the struct we pass.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    assert_eq!(rc, 0, "getrusage");
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 * 1e-6;
    t(u.ru_utime) + t(u.ru_stime)
}

/// CPU seconds (user + system) of process `pid`, from /proc/<pid>/stat.
fn proc_cpu_s(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    // fields after the command: state(0) ... utime(11) stime(12), in clock ticks
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks(11) + ticks(12)) / hz
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn server_exe() -> PathBuf {
    if let Some(p) = std::env::var_os("EFFBENCH_SSE_SERVER") {
        return PathBuf::from(p);
    }
    // target/<profile>/deps/<bench> -> target/<profile>/examples/sse_server
    let exe = std::env::current_exe().expect("current exe");
    let profile_dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let p = profile_dir.join("examples").join("sse_server");
    assert!(
        p.is_file(),
        "{} not built: run scripts/bench-loadgen.sh (or cargo build --release -p effbench-backends --example sse_server)",
        p.display()
    );
    p
}

#[derive(Default)]
struct Clock {
    start: Option<Instant>,
    cpu0: f64,
    srv0: f64,
    pid: u32,
    secs: f64,
    cpu_s: f64,
    srv_s: f64,
}

impl Window for Clock {
    fn begin(&mut self) {
        self.cpu0 = self_cpu_s();
        self.srv0 = proc_cpu_s(self.pid);
        self.start = Some(Instant::now());
    }
    fn end(&mut self) -> f64 {
        self.secs = self.start.map_or(0.0, |t| t.elapsed().as_secs_f64());
        self.cpu_s = self_cpu_s() - self.cpu0;
        self.srv_s = proc_cpu_s(self.pid) - self.srv0;
        self.secs
    }
}

fn main() {
    // `cargo test` runs benches with --bench only when asked; a plain run does the work.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n = env_or("LOADGEN_REQUESTS", 20_000);
    let rounds = env_or("LOADGEN_ROUNDS", 5);
    let conc = env_or("LOADGEN_CONCURRENCY", 256) as usize;
    let workers = env_or("LOADGEN_WORKERS", 2) as usize;
    let srv_threads = env_or("LOADGEN_SERVER_THREADS", 1);
    let mut child = Command::new(server_exe())
        .args(["--port", "0", "--threads", &srv_threads.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start sse_server");
    let pid = child.id();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("server address");
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .expect("sse_server prints its address")
        .to_string();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let test = LoadTest {
        target: Target::new(
            format!("{base}/v1/completions"),
            true,
            Duration::from_secs(60),
        ),
        workload: Workload::synthetic(Endpoint::Completions, "m", true, true, 1, (8, 16, 0.0)),
        schedule: ScheduleSpec {
            rate: None,
            arrival: Arrival::Poisson,
            burstiness: 1.0,
            ramp: None,
            seed: 7,
        },
        max_concurrency: conc,
        num_prompts: n,
        warmup_requests: conc as u64,
        slo: Slo::default(),
        max_samples: 10_000,
        seed: 1,
        max_failed_pct: 0.0,
        records: None,
        scrape: None,
        ready_check: Duration::ZERO,
    };
    println!(
        "loadgen vs sse_server (separate process, {srv_threads} thread(s)): {n} streaming requests of 16 tokens per round, rate inf, max concurrency {conc}, {workers} generator threads"
    );
    println!("round | req/s | generator CPU us/req | server CPU us/req | load avg (1 5 15 min)");
    let mut rates = Vec::new();
    for round in 1..=rounds {
        let mut w = Clock {
            pid,
            ..Default::default()
        };
        let r = test.run(&rt, &client, &mut w);
        assert!(r.failure.is_none(), "{:?}", r.failure);
        let completed = r
            .metrics
            .iter()
            .find(|m| m.name.name() == "requests_completed")
            .map_or(0.0, |m| m.value);
        let rate = completed / w.secs;
        rates.push(rate);
        println!(
            "{round} | {rate:.0} | {:.1} | {:.1} | {}",
            w.cpu_s / completed * 1e6,
            w.srv_s / completed * 1e6,
            loadavg()
        );
    }
    rates.sort_by(f64::total_cmp);
    println!(
        "median {:.0} req/s, best {:.0} req/s over {rounds} rounds",
        rates[rates.len() / 2],
        rates[rates.len() - 1]
    );
    let _ = child.kill();
    let _ = child.wait();
}
