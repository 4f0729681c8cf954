//! The serving engine: one thread owns the model and runs continuous batching with chunked
//! prefill. Each step it admits queued requests (FIFO) while fewer than `max_batch` run,
//! then schedules one forward pass under a token budget (`max_step_tokens`): one token for
//! every sequence that is decoding, and the rest of the budget for prompt chunks of the
//! sequences still prefilling, oldest first — so a newly admitted prompt shares passes with
//! the running decodes instead of stalling them ([`Llama::forward_segments`], as vLLM's and
//! llama.cpp's schedulers do). A sequence whose prompt is complete gets its first token from
//! that pass. Decoding is greedy; text is detokenized incrementally ([`Detok`]). A request
//! whose receiver is gone (client disconnected) is dropped at the next step; on shutdown the
//! engine finishes what runs until the grace deadline, then aborts it. If the thread panics,
//! [`run_guarded`] marks the queue dead so that nobody waits for it.

use super::detok::Detok;
use super::prom::Stats;
use super::queue::{Event, Job, Queue};
use crate::llama::{argmax_rows, Cache, Llama, Segment};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;
use tokenizers::Tokenizer;

/// A sequence in the batch: prefilling while `fed < prompt.len()`, then decoding.
struct Seq {
    job: Job,
    cache: Cache,
    /// Prompt tokens already in the cache.
    fed: usize,
    generated: Vec<u32>,
    detok: Detok,
    first_token: Option<Instant>,
}

impl Seq {
    fn decoding(&self) -> bool {
        self.fed == self.job.prompt.len()
    }
}

/// The model side of the server.
pub struct Engine {
    /// The model.
    pub model: Llama,
    /// Its tokenizer (detokenizes the output).
    pub tokenizer: Tokenizer,
    /// Token ids that end a sequence.
    pub eos: Vec<u32>,
    /// Most sequences in the batch (prefilling or decoding).
    pub max_batch: usize,
    /// Most tokens in one forward pass (decode tokens + prompt chunks); at least `max_batch`.
    pub max_step_tokens: usize,
    /// The model's context length.
    pub context: usize,
    /// Fault injection for the tests: panic when admitting request number `n + 1`.
    pub panic_after: Option<u64>,
}

/// Runs the engine; if it panics, the queue is marked dead with the panic's message (the
/// running requests' channels close as the unwinding drops them, the waiting ones get the
/// message) and `/health` reports it.
pub fn run_guarded(engine: Engine, queue: Arc<Queue>) {
    let q = queue.clone();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || engine.run(q)));
    if let Err(payload) = outcome {
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        queue.fail(&format!("the engine thread stopped: {msg}"));
    }
}

impl Engine {
    /// Runs until the queue is closed and empty (or aborted).
    pub fn run(self, queue: Arc<Queue>) {
        let stats = queue.stats.clone();
        let mut running: Vec<Seq> = Vec::new();
        let mut admitted_total = 0u64;
        loop {
            let mut admitted = Vec::new();
            {
                let mut s = queue.lock();
                while running.is_empty() && s.jobs.is_empty() && !s.closing {
                    s = queue.wake.wait(s).unwrap_or_else(|p| p.into_inner());
                }
                if s.abort {
                    for job in s.jobs.drain(..) {
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
                admitted_total += 1;
                if self.panic_after.is_some_and(|n| admitted_total > n) {
                    panic!("fault injected for tests (EFFBENCH_SERVE_ENGINE_PANIC_AFTER)");
                }
                stats.queue_wait.observe(job.enqueued.elapsed());
                // Room for the prompt and some output; the cache grows if it runs out.
                let cache = self
                    .model
                    .new_cache(job.prompt.len() + job.max_tokens.min(256));
                running.push(Seq {
                    job,
                    cache,
                    fed: 0,
                    generated: Vec::new(),
                    detok: Detok::default(),
                    first_token: None,
                });
            }
            // Abandoned sequences leave; the rest advance together.
            running.retain(|s| self.keep(&stats, s));
            stats.running.store(running.len() as u64, Ordering::Relaxed);
            if running.is_empty() {
                continue;
            }
            match self.step(&mut running) {
                Ok(tokens) => {
                    stats.batch_size.observe_value(running.len() as f64);
                    stats.step_tokens.observe_value(tokens as f64);
                }
                Err(e) => {
                    for seq in running.drain(..) {
                        stats.failed.fetch_add(1, Ordering::Relaxed);
                        let _ = seq.job.tx.send(Event::Error(format!("forward pass: {e}")));
                    }
                }
            }
            running.retain(|s| self.keep(&stats, s));
            stats.running.store(running.len() as u64, Ordering::Relaxed);
        }
    }

    /// One forward pass over the scheduled tokens; returns how many there were.
    fn step(&self, running: &mut [Seq]) -> candle_core::Result<usize> {
        let decoding = running.iter().filter(|s| s.decoding()).count();
        let mut budget = self.max_step_tokens.saturating_sub(decoding);
        // Tokens per sequence this step (0: a prefill that waits for budget).
        let plan: Vec<usize> = running
            .iter()
            .map(|s| {
                if s.decoding() {
                    return 1;
                }
                let n = (s.job.prompt.len() - s.fed).min(budget);
                budget -= n;
                n
            })
            .collect();
        let mut segs: Vec<Segment> = Vec::with_capacity(running.len());
        for (seq, &n) in running.iter_mut().zip(&plan) {
            if n == 0 {
                continue;
            }
            let Seq {
                job,
                cache,
                fed,
                generated,
                ..
            } = seq;
            let (ids, logits) = if *fed == job.prompt.len() {
                let last = generated.last().expect("a decoding sequence has a token");
                (std::slice::from_ref(last), true)
            } else {
                (&job.prompt[*fed..*fed + n], *fed + n == job.prompt.len())
            };
            segs.push(Segment { ids, cache, logits });
        }
        let next = argmax_rows(&self.model.forward_segments(&mut segs)?)?;
        drop(segs);
        let mut next = next.into_iter();
        let mut tokens = 0;
        for (seq, &n) in running.iter_mut().zip(&plan) {
            tokens += n;
            if n == 0 {
                continue;
            }
            if !seq.decoding() {
                seq.fed += n;
                if !seq.decoding() {
                    continue; // more of the prompt to come
                }
            }
            let id = next.next().expect("one logits row per completed segment");
            self.push_token(seq, id);
        }
        Ok(tokens)
    }

    /// Records a generated token and sends its text.
    fn push_token(&self, seq: &mut Seq, id: u32) {
        seq.first_token.get_or_insert_with(Instant::now);
        seq.generated.push(id);
        if !seq.job.ignore_eos && self.eos.contains(&id) {
            return;
        }
        let delta = seq.detok.next(&self.tokenizer, &seq.generated);
        let _ = seq.job.tx.send(Event::Token(delta));
    }

    /// False (after telling the client) when a sequence is done or its client is gone.
    fn keep(&self, stats: &Stats, seq: &Seq) -> bool {
        if seq.job.tx.is_closed() {
            stats.cancelled.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        let Some(&last) = seq.generated.last() else {
            return true; // still prefilling
        };
        let n = seq.generated.len();
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
