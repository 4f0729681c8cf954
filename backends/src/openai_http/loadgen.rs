//! The load generator: warm-up requests (awaited, never measured), then the measured window —
//! a dispatcher thread that keeps the seeded arrival schedule precisely (sleep, then a short
//! spin) and hands each request to a tokio runtime, an optional concurrency cap, and an
//! aggregator thread that folds each finished request into streamed statistics, so memory
//! stays flat however long the run, and streams each request's record to the records file.
//! A request that cannot connect stops the dispatch (the server is gone); Ctrl-C cancels what
//! is in flight. Either way the completed requests' results are kept. The run fails when the
//! server became unreachable, when every request failed, or when more than `max_failed_pct`
//! of them failed. Optional: a ready check before warm-up, the server's Prometheus metrics
//! scraped during the window ([`super::scrape`]), conversation turns that wait for the turn
//! before them.

use super::client::{self, Target};
use super::scrape::Scraper;
use super::workload::Workload;
use effbench_harness::backend::{Window, WindowReport};
use effbench_harness::interrupt;
use effbench_harness::records::Slo;
use effbench_harness::serving::lines::LineWriter;
use effbench_harness::serving::{Aggregate, ErrorKind, RequestRecord, Schedule, ScheduleSpec};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, Notify, OwnedSemaphorePermit, Semaphore};

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
    /// The run fails when more than this share of its requests failed (%).
    pub max_failed_pct: f64,
    /// Per-request records file and its line cap.
    pub records: Option<(PathBuf, u64)>,
    /// The server's Prometheus endpoint and scrape period.
    pub scrape: Option<(String, Duration)>,
    /// Retry a test request this long until the server answers (zero: no check).
    pub ready_check: Duration,
}

/// Timing and ordering of one dispatched request.
struct Slot {
    index: u64,
    max_tokens: u64,
    prompt_len: u64,
    ready: Instant,
    permit: Option<OwnedSemaphorePermit>,
    /// Wait for the previous turn of the conversation.
    after: Option<oneshot::Receiver<()>>,
    /// Signals the next turn.
    done: Option<oneshot::Sender<()>>,
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
async fn one(shared: Arc<Shared>, body: Vec<u8>, mut slot: Slot) -> RequestRecord {
    let notified = shared.cancel.notified();
    tokio::pin!(notified);
    notified.as_mut().enable();
    let mut ready = slot.ready;
    if let Some(prev) = slot.after.take() {
        // A later turn: ready once the previous turn finished (or failed).
        tokio::select! {
            _ = prev => {}
            _ = &mut notified => {}
        }
        ready = ready.max(Instant::now());
    }
    let sent = Instant::now();
    let body_len = body.len();
    let since = sent.duration_since(shared.t0).as_nanos() as u64;
    let mut rec = if shared.cancelled.load(Ordering::SeqCst) {
        cancelled_record(&shared.target)
    } else {
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
    rec.done_ns = sent.elapsed().as_nanos() as u64;
    drop(slot.permit.take());
    if let Some(d) = slot.done.take() {
        let _ = d.send(());
    }
    rec.index = slot.index;
    rec.sent_ns = since;
    rec.lateness_ns = sent.saturating_duration_since(ready).as_nanos() as u64;
    rec.requested_output_tokens = slot.max_tokens;
    rec.planned_prompt_len = slot.prompt_len;
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
        if !self.ready_check.is_zero() {
            window.phase("ready check");
            match self.ready(rt, client) {
                Ok(note) => report.notes.push(note),
                Err(reason) => {
                    report.failure = Some(reason);
                    return report;
                }
            }
        }
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
        let scraper = self.scrape.as_ref().map(|(url, period)| {
            Scraper::start(
                rt,
                client.clone(),
                url.clone(),
                self.target.auth_headers(),
                *period,
                shared.t0,
            )
        });
        let (tx, rx) = mpsc::channel::<RequestRecord>();
        let mut agg = Aggregate::new(self.slo.clone(), self.max_samples, self.seed);
        let mut lines = self
            .records
            .as_ref()
            .map(|(path, max)| LineWriter::create(path, *max));
        let aggregator = std::thread::spawn(move || {
            for rec in rx {
                agg.add(&rec);
                if let Some(l) = lines.as_mut() {
                    l.add(&rec);
                }
            }
            (agg, lines.map(LineWriter::finish))
        });
        let sem =
            (self.max_concurrency > 0).then(|| Arc::new(Semaphore::new(self.max_concurrency)));
        let mut interrupted = false;
        let mut stopped_early = false;
        let mut last_progress = Instant::now();
        let mut head_free: Option<Instant> = None;
        let mut prev_done: Option<oneshot::Receiver<()>> = None;
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
            let (done, next) = if self.workload.ordered_turns() {
                let (d, n) = oneshot::channel();
                (Some(d), Some(n))
            } else {
                (None, None)
            };
            let after = std::mem::replace(&mut prev_done, next).filter(|_| req.after_previous);
            let slot = Slot {
                index: i as u64,
                max_tokens: req.max_tokens,
                prompt_len: req.prompt_len,
                ready,
                permit,
                after,
                done,
            };
            let (shared2, tx2) = (shared.clone(), tx.clone());
            rt.spawn(async move {
                let rec = one(shared2, req.body, slot).await;
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
        let (agg, lines_note) = aggregator
            .join()
            .expect("the aggregator thread does not panic");
        let window_s = window.end();
        let scraped = scraper.map(|s| s.finish(rt));
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
        let (sent, completed, failed) = (agg.sent, agg.completed, agg.failed());
        let cancelled = agg.failures(ErrorKind::Cancelled);
        let summary = agg.finish(window_s, span, shared.peak.load(Ordering::Relaxed));
        report.metrics = summary.metrics;
        report.notes.extend(summary.notes);
        report.notes.extend(lines_note);
        report.warnings = summary.warnings;
        report.work = summary.work;
        report.series = summary.series;
        if let Some((series, note)) = scraped {
            report.series.extend(series);
            report.notes.push(note);
        }
        report.units = sent;
        report.interrupted = interrupted;
        report.failure = verdict(
            (sent, completed, failed - cancelled),
            self.num_prompts,
            stopped_early,
            interrupted,
            self.max_failed_pct,
        );
        report
    }

    /// Sends a test request (the first warm-up request's body) until the server answers it
    /// with success, for up to `ready_check`; `Err` says why the run cannot start.
    fn ready(
        &self,
        rt: &tokio::runtime::Runtime,
        client: &reqwest::Client,
    ) -> Result<String, String> {
        let start = Instant::now();
        let mut tries = 0u32;
        loop {
            if interrupt::requested() {
                return Err("interrupted during the ready check".into());
            }
            tries += 1;
            let req = self.workload.request(self.num_prompts);
            let rec = rt.block_on(client::send(client, &self.target, req.body, Instant::now()));
            let f = match rec.failure {
                None => {
                    return Ok(format!(
                    "ready check: the server answered a test request after {:.1} s ({tries} tr{})",
                    start.elapsed().as_secs_f64(),
                    if tries == 1 { "y" } else { "ies" }
                ))
                }
                Some(f) => f,
            };
            if start.elapsed() >= self.ready_check {
                return Err(format!(
                    "the server was not ready within {:.0} s (ready check, {tries} tries); last: {} ({})",
                    self.ready_check.as_secs_f64(),
                    f.message,
                    f.kind.name()
                ));
            }
            std::thread::sleep(Duration::from_millis(500).min(self.ready_check / 4));
        }
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
                // Conversation turns are warmed up as independent requests.
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

/// Why a finished window fails, if it does: `(sent, completed, failed)` counts exclude
/// requests cancelled by effbench.
fn verdict(
    (sent, completed, failed): (u64, u64, u64),
    planned: u64,
    stopped_early: bool,
    interrupted: bool,
    max_failed_pct: f64,
) -> Option<String> {
    if stopped_early {
        return Some(format!(
            "server unreachable: stopped after {sent} of {planned} requests ({completed} completed); see failures_connection"
        ));
    }
    if interrupted {
        return None;
    }
    if completed == 0 && sent > 0 {
        return Some(format!(
            "all {sent} requests failed; see the failure counts and the log"
        ));
    }
    let pct = if sent > 0 {
        100.0 * failed as f64 / sent as f64
    } else {
        0.0
    };
    (pct > max_failed_pct).then(|| {
        format!(
            "{failed} of {sent} requests failed ({pct:.1} % > max_failed_pct {max_failed_pct} %); see the failure counts and the log"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::verdict;

    #[test]
    fn failure_threshold() {
        // one lost request of 40 stays under the default 5 %
        assert_eq!(verdict((40, 39, 1), 40, false, false, 5.0), None);
        let v = verdict((40, 37, 3), 40, false, false, 5.0).unwrap();
        assert!(
            v.contains("3 of 40 requests failed (7.5 % > max_failed_pct 5 %)"),
            "{v}"
        );
        assert!(verdict((10, 0, 10), 10, false, false, 100.0)
            .unwrap()
            .contains("all 10 requests failed"));
        assert!(verdict((3, 2, 1), 10, true, false, 100.0)
            .unwrap()
            .contains("unreachable"));
        assert_eq!(
            verdict((3, 0, 0), 10, false, true, 0.0),
            None,
            "Ctrl-C is not a failure"
        );
        assert!(
            verdict((5, 4, 1), 5, false, false, 0.0).is_some(),
            "threshold 0: any failure"
        );
    }
}
