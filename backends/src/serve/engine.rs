//! The serving engine: one thread owns the model and runs continuous batching. Requests wait
//! in one FIFO queue (fair: first come, first admitted); between decode steps the engine
//! admits queued requests up to `max_batch` (each prefilled on its own), then advances every
//! running sequence by one token in a single batched pass ([`Llama::decode_step`]). Decoding
//! is greedy. A request whose receiver is gone (client disconnected) is dropped at the next
//! step; on shutdown the engine finishes what runs until the grace deadline, then aborts it.

use super::prom::Stats;
use crate::llama::{argmax_rows, Cache, Llama, Logits};
use candle_core::Tensor;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;
use tokenizers::Tokenizer;
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
    /// The model failed.
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
}

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    closing: bool,
    /// Abort whatever runs (the grace period is over).
    abort: bool,
}

/// The queue between the HTTP handlers and the engine thread.
pub struct Queue {
    state: Mutex<State>,
    wake: Condvar,
    max_queue: usize,
    stats: Arc<Stats>,
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
    /// Queues a job (FIFO).
    pub fn push(&self, job: Job) -> Result<(), Rejected> {
        let mut s = self.state.lock().expect("queue lock");
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
        self.state.lock().expect("queue lock").closing = true;
        self.wake.notify_all();
    }
    /// Abort running and queued requests now.
    pub fn abort(&self) {
        let mut s = self.state.lock().expect("queue lock");
        s.closing = true;
        s.abort = true;
        self.wake.notify_all();
    }
}

/// A running sequence.
struct Seq {
    job: Job,
    cache: Cache,
    generated: Vec<u32>,
    /// Bytes of the decoded text already sent.
    sent_len: usize,
    first_token: Option<Instant>,
}

/// The model side of the server.
pub struct Engine {
    /// The model.
    pub model: Llama,
    /// Its tokenizer (detokenizes the output).
    pub tokenizer: Tokenizer,
    /// Token ids that end a sequence.
    pub eos: Vec<u32>,
    /// Most sequences decoded together.
    pub max_batch: usize,
    /// The model's context length.
    pub context: usize,
}

impl Engine {
    /// Runs until the queue is closed and empty (or aborted).
    pub fn run(self, queue: Arc<Queue>) {
        let stats = queue.stats.clone();
        let mut running: Vec<Seq> = Vec::new();
        loop {
            let mut admitted = Vec::new();
            {
                let mut s = queue.state.lock().expect("queue lock");
                while running.is_empty() && s.jobs.is_empty() && !s.closing {
                    s = queue.wake.wait(s).expect("queue lock");
                }
                if s.abort {
                    admitted.extend(s.jobs.drain(..));
                    for job in admitted.drain(..) {
                        finish_job(&stats, &job, "abort", 0, None);
                    }
                    for seq in running.drain(..) {
                        let n = seq.generated.len();
                        finish_job(&stats, &seq.job, "abort", n, seq.first_token);
                    }
                    return;
                }
                if running.is_empty() && s.jobs.is_empty() && s.closing {
                    return;
                }
                while running.len() + admitted.len() < self.max_batch {
                    match s.jobs.pop_front() {
                        Some(j) => admitted.push(j),
                        None => break,
                    }
                }
                stats.queued.store(s.jobs.len() as u64, Ordering::Relaxed);
            }
            for job in admitted {
                if job.tx.is_closed() {
                    stats.cancelled.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                stats.queue_wait.observe(job.enqueued.elapsed());
                match self.prefill(job) {
                    Ok(seq) => running.push(seq),
                    Err((job, e)) => {
                        stats.failed.fetch_add(1, Ordering::Relaxed);
                        let _ = job.tx.send(Event::Error(format!("prefill: {e}")));
                    }
                }
            }
            // Finished or abandoned sequences leave; the rest advance together.
            running.retain(|s| self.keep(&stats, s));
            stats.running.store(running.len() as u64, Ordering::Relaxed);
            if running.is_empty() {
                continue;
            }
            if let Err(e) = self.step(&mut running) {
                for seq in running.drain(..) {
                    stats.failed.fetch_add(1, Ordering::Relaxed);
                    let _ = seq.job.tx.send(Event::Error(format!("decode step: {e}")));
                }
            }
            stats.batch_size.observe_value(running.len() as f64);
            running.retain(|s| self.keep(&stats, s));
            stats.running.store(running.len() as u64, Ordering::Relaxed);
        }
    }

    /// Hands the job back with the error, so its client hears why.
    #[allow(clippy::result_large_err)]
    fn prefill(&self, job: Job) -> Result<Seq, (Job, candle_core::Error)> {
        let mut cache = self.model.new_cache(job.prompt.len() + job.max_tokens);
        let logits = Tensor::from_vec(
            job.prompt.clone(),
            (1, job.prompt.len()),
            &self.model.device,
        )
        .and_then(|ids| self.model.forward(&ids, Some(&mut cache), Logits::Last))
        .and_then(|l| argmax_rows(&l));
        match logits {
            Ok(next) => {
                let mut seq = Seq {
                    job,
                    cache,
                    generated: Vec::new(),
                    sent_len: 0,
                    first_token: None,
                };
                self.push_token(&mut seq, next[0]);
                Ok(seq)
            }
            Err(e) => Err((job, e)),
        }
    }

    fn step(&self, running: &mut [Seq]) -> candle_core::Result<()> {
        let ids: Vec<u32> = running
            .iter()
            .map(|s| *s.generated.last().expect("a running sequence has a token"))
            .collect();
        let next = {
            let mut caches: Vec<&mut Cache> = running.iter_mut().map(|s| &mut s.cache).collect();
            argmax_rows(&self.model.decode_step(&ids, &mut caches)?)?
        };
        for (seq, id) in running.iter_mut().zip(next) {
            self.push_token(seq, id);
        }
        Ok(())
    }

    /// Records a generated token and sends its text.
    fn push_token(&self, seq: &mut Seq, id: u32) {
        seq.first_token.get_or_insert_with(Instant::now);
        seq.generated.push(id);
        if !seq.job.ignore_eos && self.eos.contains(&id) {
            return;
        }
        // Special tokens are decoded as text (like `skip_special_tokens: false`): every
        // generated token is visible to the client, which is what timing needs.
        let text = self
            .tokenizer
            .decode(&seq.generated, false)
            .unwrap_or_default();
        let delta = if text.len() > seq.sent_len
            && text.is_char_boundary(seq.sent_len)
            && !text.ends_with('\u{fffd}')
        {
            let d = text[seq.sent_len..].to_string();
            seq.sent_len = text.len();
            d
        } else {
            String::new()
        };
        let _ = seq.job.tx.send(Event::Token(delta));
    }

    /// False (after telling the client) when a sequence is done or its client is gone.
    fn keep(&self, stats: &Stats, seq: &Seq) -> bool {
        if seq.job.tx.is_closed() {
            stats.cancelled.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        let n = seq.generated.len();
        let last = *seq
            .generated
            .last()
            .expect("a running sequence has a token");
        let finish = if !seq.job.ignore_eos && self.eos.contains(&last) {
            "stop"
        } else if n >= seq.job.max_tokens || seq.job.prompt.len() + n >= self.context {
            "length"
        } else {
            return true;
        };
        finish_job(stats, &seq.job, finish, n, seq.first_token);
        false
    }
}

fn finish_job(stats: &Stats, job: &Job, finish: &'static str, n: usize, first: Option<Instant>) {
    let now = Instant::now();
    if finish == "abort" {
        stats.aborted.fetch_add(1, Ordering::Relaxed);
    } else {
        stats.succeeded.fetch_add(1, Ordering::Relaxed);
    }
    stats
        .prompt_tokens
        .fetch_add(job.prompt.len() as u64, Ordering::Relaxed);
    stats
        .generation_tokens
        .fetch_add(n as u64, Ordering::Relaxed);
    if let Some(f) = first {
        stats.ttft.observe(f - job.enqueued);
        if n > 1 {
            stats.tpot.observe((now - f) / (n as u32 - 1));
        }
    }
    stats.e2e.observe(now - job.enqueued);
    let _ = job.tx.send(Event::Done {
        finish,
        prompt_tokens: job.prompt.len(),
        completion_tokens: n,
    });
}
