//! The queue between the HTTP handlers and the engine thread: requests wait in one FIFO
//! (fair: first come, first admitted), each with the channel its events go to. The queue
//! also carries the engine's state — running, closing (shutdown: no new requests), aborted
//! (grace period over) or dead (the engine thread failed: every waiting and new request gets
//! an error instead of hanging, and `/health` says why).

use super::prom::Stats;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;
use tokio::sync::mpsc::UnboundedSender;

/// What a request hears from the engine.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// One generated token and the text it completes (may be empty, e.g. part of a
    /// multi-byte character).
    Token(String),
    /// The end: `"stop"` (eos), `"length"` (max_tokens or context) or `"abort"` (shutdown).
    Done {
        /// Why it ended.
        finish: &'static str,
        /// Tokens of the prompt.
        prompt_tokens: usize,
        /// Tokens generated (an eos included).
        completion_tokens: usize,
    },
    /// The model or the engine failed.
    Error(String),
}

/// A queued request.
pub struct Job {
    /// Prompt token ids.
    pub prompt: Vec<u32>,
    /// Stop after this many generated tokens.
    pub max_tokens: usize,
    /// Go on past eos.
    pub ignore_eos: bool,
    /// Where the request's events go; closed when the client is gone.
    pub tx: UnboundedSender<Event>,
    /// Arrival time (TTFT and queue wait start here).
    pub enqueued: Instant,
}

/// Why a request was not queued.
#[derive(Debug, PartialEq)]
pub enum Rejected {
    /// The queue holds `max_queue` requests.
    Full,
    /// The server is shutting down.
    Closing,
    /// The engine thread failed (the reason).
    Dead(String),
}

#[derive(Default)]
pub(super) struct State {
    pub(super) jobs: VecDeque<Job>,
    pub(super) closing: bool,
    /// Abort whatever runs (the grace period is over).
    pub(super) abort: bool,
    /// Why the engine thread stopped, if it failed.
    pub(super) dead: Option<String>,
}

/// The queue between the HTTP handlers and the engine thread.
pub struct Queue {
    state: Mutex<State>,
    pub(super) wake: Condvar,
    max_queue: usize,
    /// What `/metrics` reports.
    pub stats: Arc<Stats>,
}

impl Queue {
    /// An empty queue holding at most `max_queue` waiting requests.
    pub fn new(max_queue: usize, stats: Arc<Stats>) -> Queue {
        Queue {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            max_queue,
            stats,
        }
    }

    /// The state, even if a thread panicked while holding the lock (the state stays
    /// consistent: every change under the lock is a single assignment or push/pop).
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a job (FIFO).
    pub fn push(&self, job: Job) -> Result<(), Rejected> {
        let mut s = self.lock();
        if let Some(why) = &s.dead {
            return Err(Rejected::Dead(why.clone()));
        }
        if s.closing {
            return Err(Rejected::Closing);
        }
        if s.jobs.len() >= self.max_queue {
            return Err(Rejected::Full);
        }
        s.jobs.push_back(job);
        self.stats
            .queued
            .store(s.jobs.len() as u64, Ordering::Relaxed);
        self.wake.notify_one();
        Ok(())
    }

    /// No new requests; the engine stops when the running ones are done.
    pub fn close(&self) {
        self.lock().closing = true;
        self.wake.notify_all();
    }

    /// Abort running and queued requests now.
    pub fn abort(&self) {
        let mut s = self.lock();
        s.closing = true;
        s.abort = true;
        self.wake.notify_all();
    }

    /// The engine thread failed: refuse new requests and fail the waiting ones with `why`.
    pub fn fail(&self, why: &str) {
        let mut s = self.lock();
        s.dead = Some(why.to_string());
        for job in s.jobs.drain(..) {
            self.stats.failed.fetch_add(1, Ordering::Relaxed);
            let _ = job.tx.send(Event::Error(why.to_string()));
        }
        self.stats.queued.store(0, Ordering::Relaxed);
        self.wake.notify_all();
    }

    /// `Err(why)` once the engine thread has failed.
    pub fn health(&self) -> Result<(), String> {
        match &self.lock().dead {
            Some(why) => Err(why.clone()),
            None => Ok(()),
        }
    }
}
