//! The load generator: warm-up requests (awaited, never measured), then the measured window —
//! a dispatcher thread that keeps the seeded arrival schedule precisely (sleep, then a short
//! spin) and hands each request to a tokio runtime, an optional concurrency cap, and an
//! aggregator thread that folds each finished request into streamed statistics, so memory
//! stays flat however long the run. A request that cannot connect stops the dispatch (the
//! server is gone); Ctrl-C cancels what is in flight. Either way the completed requests'
//! results are kept.

use super::client::{self, Target};
use super::workload::Workload;
use effbench_harness::backend::{Window, WindowReport};
use effbench_harness::interrupt;
use effbench_harness::serving::{Aggregate, ErrorKind, RequestRecord, Schedule, ScheduleSpec, Slo};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// The dispatcher sleeps until this close to a send time, then spins (yielding).
const SPIN: Duration = Duration::from_micros(100);
/// How often a long wait checks for Ctrl-C.
const POLL: Duration = Duration::from_millis(50);

/// A whole load test.
pub struct LoadTest {
    /// Where requests go.
    pub target: Target,
    /// What each request asks.
    pub workload: Workload,
    /// When requests are sent.
    pub schedule: ScheduleSpec,
    /// 0 = unlimited.
    pub max_concurrency: usize,
    /// Measured requests.
    pub num_prompts: u64,
    /// Requests sent and awaited before the window, never measured.
    pub warmup_requests: u64,
    /// Objectives for goodput.
    pub slo: Slo,
    /// Raw samples kept per latency metric.
    pub max_samples: usize,
    /// Seed of the sample reservoir.
    pub seed: u64,
}

/// State shared by the dispatcher and the request tasks.
struct Shared {
    client: reqwest::Client,
    target: Target,
    inflight: AtomicU64,
    peak: AtomicU64,
    cancel: Notify,
    cancelled: AtomicBool,
    /// A request could not connect: stop dispatching.
    unreachable: AtomicBool,
    t0: Instant,
    first_send_ns: AtomicU64,
    last_send_ns: AtomicU64,
}

impl Shared {
    fn cancel_all(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        self.cancel.notify_waiters();
    }
}

/// Runs one request; never panics, always yields a record.
async fn one(
    shared: Arc<Shared>,
    body: Vec<u8>,
    max_tokens: u64,
    ready: Instant,
    permit: Option<OwnedSemaphorePermit>,
) -> RequestRecord {
    let notified = shared.cancel.notified();
    tokio::pin!(notified);
    notified.as_mut().enable();
    let sent = Instant::now();
    let body_len = body.len();
    let mut rec = if shared.cancelled.load(Ordering::SeqCst) {
        cancelled_record(&shared.target)
    } else {
        let since = sent.duration_since(shared.t0).as_nanos() as u64;
        shared.first_send_ns.fetch_min(since, Ordering::Relaxed);
        shared.last_send_ns.fetch_max(since, Ordering::Relaxed);
        let n = shared.inflight.fetch_add(1, Ordering::Relaxed) + 1;
        shared.peak.fetch_max(n, Ordering::Relaxed);
        let rec = tokio::select! {
            r = client::send(&shared.client, &shared.target, body, sent) => r,
            _ = &mut notified => cancelled_record(&shared.target),
        };
        shared.inflight.fetch_sub(1, Ordering::Relaxed);
        rec
    };
    drop(permit);
    rec.lateness_ns = sent.saturating_duration_since(ready).as_nanos() as u64;
    rec.requested_output_tokens = max_tokens;
    // A server's numbers are checked against what was possible (tokens asked, bytes sent).
    effbench_harness::plausible::check_request(&mut rec, body_len, sent.elapsed());
    if rec
        .failure
        .as_ref()
        .is_some_and(|f| f.kind == ErrorKind::Connection && rec.http_status.is_none())
    {
        shared.unreachable.store(true, Ordering::SeqCst);
    }
    rec
}

fn cancelled_record(target: &Target) -> RequestRecord {
    RequestRecord {
        streamed: target.stream,
        failure: Some(effbench_harness::serving::Failure {
            kind: ErrorKind::Cancelled,
            message: "cancelled by effbench".into(),
        }),
        ..Default::default()
    }
}

/// Sleeps until `target` (short spin at the end); false when Ctrl-C came first.
fn wait_until(target: Instant) -> bool {
    loop {
        if interrupt::requested() {
            return false;
        }
        let now = Instant::now();
        if now >= target {
            return true;
        }
        let left = target - now;
        if left > SPIN {
            std::thread::sleep((left - SPIN).min(POLL));
        } else {
            std::thread::yield_now();
        }
    }
}

/// A concurrency slot: `(permit, time it became free)` — `None` for the time when one was
/// free at once; `Err` on Ctrl-C.
fn acquire(
    rt: &tokio::runtime::Runtime,
    sem: &Arc<Semaphore>,
) -> Result<(OwnedSemaphorePermit, Option<Instant>), ()> {
    if let Ok(p) = sem.clone().try_acquire_owned() {
        return Ok((p, None));
    }
    loop {
        if interrupt::requested() {
            return Err(());
        }
        let got =
            rt.block_on(async { tokio::time::timeout(POLL, sem.clone().acquire_owned()).await });
        if let Ok(Ok(p)) = got {
            return Ok((p, Some(Instant::now())));
        }
    }
}

impl LoadTest {
    /// Warm-up, then the measured window inside `window.begin()`/`end()`.
    pub fn run(
        &self,
        rt: &tokio::runtime::Runtime,
        client: &reqwest::Client,
        window: &mut dyn Window,
    ) -> WindowReport {
        let mut report = WindowReport::default();
        if self.warmup_requests > 0 {
            window.phase("warm-up");
            if let Some(reason) = self.warm_up(rt, client) {
                report.failure = Some(reason);
                return report;
            }
        }
        let schedule = match Schedule::new(self.schedule) {
            Ok(s) => s,
            Err(e) => {
                report.failure = Some(e);
                return report;
            }
        };
        window.begin();
        let shared = Arc::new(Shared {
            client: client.clone(),
            target: self.target.clone(),
            inflight: AtomicU64::new(0),
            peak: AtomicU64::new(0),
            cancel: Notify::new(),
            cancelled: AtomicBool::new(false),
            unreachable: AtomicBool::new(false),
            t0: Instant::now(),
            first_send_ns: AtomicU64::new(u64::MAX),
            last_send_ns: AtomicU64::new(0),
        });
        let (tx, rx) = mpsc::channel::<RequestRecord>();
        let mut agg = Aggregate::new(self.slo.clone(), self.max_samples, self.seed);
        let aggregator = std::thread::spawn(move || {
            for rec in rx {
                agg.add(&rec);
            }
            agg
        });
        let sem =
            (self.max_concurrency > 0).then(|| Arc::new(Semaphore::new(self.max_concurrency)));
        let mut interrupted = false;
        let mut stopped_early = false;
        let mut last_progress = Instant::now();
        let mut head_free: Option<Instant> = None;
        for (i, at) in schedule.take(self.num_prompts as usize).enumerate() {
            if shared.unreachable.load(Ordering::SeqCst) {
                stopped_early = true;
                break;
            }
            let req = self.workload.request(i as u64);
            let when = effbench_harness::limits::deadline(
                shared.t0,
                effbench_harness::limits::seconds_clamped(at),
            )
            .unwrap_or(shared.t0);
            if !wait_until(when) {
                interrupted = true;
                break;
            }
            let (permit, freed) = match &sem {
                None => (None, None),
                Some(s) => match acquire(rt, s) {
                    Ok((p, freed)) => (Some(p), freed),
                    Err(()) => {
                        interrupted = true;
                        break;
                    }
                },
            };
            // Requests queue for a slot in order: one cannot be ready before the slot of
            // the request ahead of it was free.
            head_free = head_free.max(freed);
            let ready = head_free.map_or(when, |f| f.max(when));
            let (shared2, tx2) = (shared.clone(), tx.clone());
            rt.spawn(async move {
                let rec = one(shared2, req.body, req.max_tokens, ready, permit).await;
                let _ = tx2.send(rec);
            });
            if last_progress.elapsed() > Duration::from_millis(100) {
                window.progress(i as u64 + 1, self.num_prompts);
                last_progress = Instant::now();
            }
        }
        drop(tx);
        window.phase("draining");
        // Ctrl-C while draining cancels what is in flight.
        let watcher = {
            let shared = shared.clone();
            let done = Arc::new(AtomicBool::new(false));
            let done2 = done.clone();
            let h = std::thread::spawn(move || {
                while !done2.load(Ordering::SeqCst) {
                    if interrupt::requested() {
                        shared.cancel_all();
                        return;
                    }
                    std::thread::sleep(POLL);
                }
            });
            (done, h)
        };
        if interrupted {
            shared.cancel_all();
        }
        let agg = aggregator
            .join()
            .expect("the aggregator thread does not panic");
        let window_s = window.end();
        watcher.0.store(true, Ordering::SeqCst);
        let _ = watcher.1.join();
        interrupted |= interrupt::requested();
        let (first, last) = (
            shared.first_send_ns.load(Ordering::Relaxed),
            shared.last_send_ns.load(Ordering::Relaxed),
        );
        let span = if last > first {
            (last - first) as f64 / 1e9
        } else {
            0.0
        };
        let (sent, completed) = (agg.sent, agg.completed);
        let connection = agg.failures(ErrorKind::Connection);
        let summary = agg.finish(window_s, span, shared.peak.load(Ordering::Relaxed));
        report.metrics = summary.metrics;
        report.notes = summary.notes;
        report.warnings = summary.warnings;
        report.work = summary.work;
        report.units = sent;
        report.interrupted = interrupted;
        if stopped_early {
            report.failure = Some(format!(
                "server unreachable: stopped after {sent} of {} requests ({completed} completed); see failures_connection",
                self.num_prompts
            ));
        } else if connection > 0 {
            report.failure = Some(format!(
                "{connection} request(s) lost their connection to the server ({completed} of {sent} completed)"
            ));
        } else if completed == 0 && sent > 0 && !interrupted {
            report.failure = Some(format!(
                "all {sent} requests failed; see the failure counts and the log"
            ));
        }
        report
    }

    /// Sends the warm-up requests (at the concurrency cap, else all at once) and awaits them.
    /// Returns why the run cannot go on, if a warm-up request failed.
    fn warm_up(&self, rt: &tokio::runtime::Runtime, client: &reqwest::Client) -> Option<String> {
        let n = self.warmup_requests;
        let limit = if self.max_concurrency > 0 {
            self.max_concurrency.min(n as usize)
        } else {
            n as usize
        };
        let sem = Arc::new(Semaphore::new(limit.max(1)));
        let records = rt.block_on(async {
            let mut tasks = Vec::new();
            for i in 0..n {
                // Indices after the measured ones: warm-up prompts differ from measured ones.
                let req = self.workload.request(self.num_prompts + i);
                let (client, target, sem) = (client.clone(), self.target.clone(), sem.clone());
                tasks.push(tokio::spawn(async move {
                    let _permit = sem.acquire_owned().await;
                    client::send(&client, &target, req.body, Instant::now()).await
                }));
            }
            let mut out = Vec::new();
            for t in tasks {
                if let Ok(r) = t.await {
                    out.push(r);
                }
            }
            out
        });
        let failed: Vec<&RequestRecord> = records.iter().filter(|r| !r.ok()).collect();
        failed.first().map(|r| {
            let f = r.failure.as_ref().expect("failed records have a failure");
            format!(
                "{} of {n} warm-up request(s) failed ({}): {}",
                failed.len(),
                f.kind.name(),
                f.message
            )
        })
    }
}
