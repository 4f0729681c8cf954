//! The measurement loop for one run: load, warm up (unmeasured), measure until `min_iters`
//! AND `min_duration_s` hold (capped by `max_iters`/`max_duration_s`, optional adaptive stop),
//! then derive metrics, warnings and the [`RunResult`]. Training runs (fixed steps) ignore the
//! minimums and run until the session is done, still capped by `max_iters`/`max_duration_s`.
//! A failing or panicking backend ends the run as `failed`; Ctrl-C ends it as `interrupted`;
//! samples gathered so far are kept.
//! Sessions that measure a whole window themselves (serving load tests) get a [`Window`]
//! that wraps the meters around exactly their measured part. One spec is one run here: a
//! `[serving.search]`, which is one full run per step, is driven by the invocation
//! (`crate::serving::search`).

use crate::backend::{Backend, GenerationTrace, IterationCtx, Sample, Session, Window, Work};
use crate::counters::{self, Counters, Event, Snapshot};
use crate::env::Environment;
use crate::interrupt;
use crate::meters::derived::{IdleBaseline, Inputs};
use crate::meters::{self, Meter};
use crate::metric::{Metric, MetricId};
use crate::progress::Progress;
use crate::records::RunSpec;
use crate::records::Scenario;
use crate::records::{RunResult, RunState, Series, StatsMethod, Status, SuiteInfo, SCHEMA_VERSION};
use crate::trace;
use crate::warnings;
use crate::window::{apply_window_report, MeterWindow};
use anyhow::{anyhow, Result};
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

pub use crate::backend::WALL_CLOCK;

/// What the loop gathered, before it becomes metrics.
#[derive(Default)]
struct Gathered {
    iteration_ms: Vec<f64>,
    /// Work of each measured iteration, aligned with `iteration_ms`.
    iteration_work: Vec<Work>,
    traces: Vec<GenerationTrace>,
    values: BTreeMap<MetricId, Vec<f64>>,
    work: Work,
    measured_s: f64,
    /// The session reported that it has no more work.
    done: bool,
    /// Per-iteration process counters (crate::counters), one entry per measured iteration
    /// without reported overhead: CPU ms, and the hardware events that could be opened.
    cpu_ms: Vec<f64>,
    /// `None` once a read failed or the kernel multiplexed the counter (dropped, noted).
    hw: Vec<(MetricId, Option<Vec<f64>>)>,
    /// Lines for the result's log (unavailable or dropped counters).
    notes: Vec<String>,
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Runs a session call, turning panics into errors.
fn guarded<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            Err(anyhow!("backend panicked during {what}: {msg}"))
        }
    }
}

/// One line from an error and its causes: the first line of each (some libraries append a
/// backtrace to their message), joined with ": ", repeats dropped.
pub fn error_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = cause.to_string();
        let first = text.lines().next().unwrap_or("").trim().to_string();
        if !first.is_empty() && !parts.iter().any(|p| p.contains(&first)) {
            parts.push(first);
        }
    }
    parts.join(": ")
}

/// Runs one spec with its backend; never panics, always returns a result to store.
/// The meters are those of [`meters::for_run`]; no idle baseline.
pub fn run_spec(
    spec: &RunSpec,
    backend: &dyn Backend,
    suite: &SuiteInfo,
    env: &Environment,
    progress: &dyn Progress,
) -> RunResult {
    run_spec_with(
        spec,
        backend,
        suite,
        env,
        progress,
        meters::for_run(spec),
        None,
    )
}

/// [`run_spec`] with the given meters (started right before the first measured iteration,
/// stopped right after the last) and an optional idle baseline for net energy.
pub fn run_spec_with(
    spec: &RunSpec,
    backend: &dyn Backend,
    suite: &SuiteInfo,
    env: &Environment,
    progress: &dyn Progress,
    mut meters: Vec<Box<dyn Meter>>,
    idle: Option<&IdleBaseline>,
) -> RunResult {
    let mut result = new_result(spec, suite, env);
    progress.phase("loading");
    let t_load = Instant::now();
    let mut session = match guarded("load", || backend.load(spec)) {
        Ok(s) => s,
        Err(e) => {
            set_failure(&mut result, &e, backend);
            result.finished_at = now_rfc3339();
            return result;
        }
    };
    let load_ms = t_load.elapsed().as_secs_f64() * 1e3;
    result.model = Some(session.model_info().clone());
    result.metrics.extend(model_metrics(session.model_info()));
    for w in backend.warnings(spec) {
        result.log.push(format!("warning: {w}"));
    }
    result
        .metrics
        .push(Metric::scalar(MetricId::LoadTime, load_ms, WALL_CLOCK));

    let mut gathered = Gathered::default();
    let clock = session.timestamp_source();
    let (outcome, is_window) = measure_session(
        spec,
        session.as_mut(),
        &mut meters,
        &mut gathered,
        progress,
        &mut result,
    );
    if let Err(e) = outcome {
        set_failure(&mut result, &e, backend);
    }
    progress.phase(if result.status.state == RunState::Ok {
        "finishing"
    } else {
        "saving"
    });
    finish_session(session.as_mut(), &mut result, backend);
    if !is_window {
        result.iterations = gathered.iteration_ms.len() as u64;
    }
    result.measured_s = gathered.measured_s;
    add_derived(spec, &gathered, &clock, idle, is_window, &mut result);
    drop_non_finite(&mut result);
    order_metrics(&mut result.metrics);
    result.finished_at = now_rfc3339();
    result
}

/// A result for `spec` before anything ran: state ok, nothing measured.
fn new_result(spec: &RunSpec, suite: &SuiteInfo, env: &Environment) -> RunResult {
    RunResult {
        schema_version: SCHEMA_VERSION,
        id: spec.id.clone(),
        suite: suite.clone(),
        config: spec.clone(),
        status: Status {
            state: RunState::Ok,
            reason: None,
        },
        started_at: now_rfc3339(),
        finished_at: String::new(),
        iterations: 0,
        measured_s: 0.0,
        model: None,
        metrics: Vec::new(),
        series: Vec::new(),
        warnings: Vec::new(),
        stats_method: StatsMethod::current(spec.seed),
        env: env.clone(),
        log: Vec::new(),
    }
}

/// Marks the run interrupted (a signal) or failed, with the error's line and the details the
/// backend gives for it (an external worker's stderr tail, ...).
fn set_failure(result: &mut RunResult, e: &anyhow::Error, backend: &dyn Backend) {
    let interrupted = e.is::<interrupt::Interrupted>() || interrupt::requested();
    result.status = Status {
        state: if interrupted {
            RunState::Interrupted
        } else {
            RunState::Failed
        },
        reason: Some(error_line(e)),
    };
    if !interrupted {
        result.log.extend(backend.error_details(e));
    }
}

/// The measured window: the session's own (serving) or the iteration loop, with the meters'
/// readings added to `result`. Returns the outcome and whether the session measured the
/// window itself.
fn measure_session(
    spec: &RunSpec,
    session: &mut dyn Session,
    meters: &mut [Box<dyn Meter>],
    gathered: &mut Gathered,
    progress: &dyn Progress,
    result: &mut RunResult,
) -> (Result<()>, bool) {
    let mut window = MeterWindow::new(meters, progress);
    let windowed = guarded("the measured window", || {
        session.run_window(&mut window).transpose()
    });
    if !matches!(windowed, Ok(None)) {
        // The session measured a whole window itself (serving).
        window.end();
        gathered.measured_s = window.measured_s;
        let reading = window.reading.take().unwrap_or_default();
        result.metrics.extend(reading.metrics);
        result.series.extend(reading.series);
        result.warnings.extend(reading.warnings);
        result.log.extend(reading.notes);
        let outcome = windowed.and_then(|report| {
            apply_window_report(report.unwrap_or_default(), result, &mut gathered.work)
        });
        return (outcome, true);
    }
    drop(window);
    let outcome = measure(spec, session, meters, gathered, progress);
    result.log.append(&mut gathered.notes);
    // Meters stop right after the window whatever happened in it.
    for m in meters.iter_mut() {
        let reading = m.stop(gathered.measured_s);
        result.metrics.extend(reading.metrics);
        result.series.extend(reading.series);
        result.warnings.extend(reading.warnings);
        result.log.extend(reading.notes);
    }
    (outcome, false)
}

/// The session's closing call (`finish` after a good run, `stop` otherwise): its metrics, and
/// the peaks the roofline needs.
fn finish_session(session: &mut dyn Session, result: &mut RunResult, backend: &dyn Backend) {
    let extras = if result.status.state == RunState::Ok {
        guarded("finish", || session.finish())
    } else {
        guarded("stop", || session.stopped())
    };
    match extras {
        Ok(extras) => {
            result.metrics.extend(extras.metrics);
            result.series.extend(extras.series);
            result.log.extend(extras.notes);
        }
        Err(e) if result.status.state == RunState::Ok => {
            result.status = Status {
                state: RunState::Failed,
                reason: Some(error_line(&e)),
            };
            result.log.extend(backend.error_details(&e));
        }
        Err(e) => result
            .log
            .push(format!("after the run stopped: {}", error_line(&e))),
    }
    result.env.peak_flops = session.peak_flops();
    result.env.peak_bandwidth = session.peak_bandwidth();
}

/// Metrics computed from what was gathered (latency, throughput, roofline, energy and the
/// like) and the run's warnings.
fn add_derived(
    spec: &RunSpec,
    gathered: &Gathered,
    clock: &str,
    idle: Option<&IdleBaseline>,
    is_window: bool,
    result: &mut RunResult,
) {
    result
        .metrics
        .extend(gathered_metrics(gathered, clock, spec.seed, spec.scenario));
    let roofline = roofline_metrics(spec, result);
    result.metrics.extend(roofline);
    let derived = meters::derived::derive(&Inputs {
        metrics: &result.metrics,
        window_s: gathered.measured_s,
        work: gathered.work,
        scenario: spec.scenario,
        params: result.model.as_ref().map(|m| m.params_total),
        settings: &spec.meters,
        idle,
    });
    result.metrics.extend(derived.metrics);
    result.warnings.extend(derived.warnings);
    result.log.extend(derived.notes);
    if !gathered.iteration_ms.is_empty() {
        result.series.push(iteration_series(&gathered.iteration_ms));
    }
    if !is_window {
        result.warnings.extend(warnings::check_iterations(
            &gathered.iteration_ms,
            spec.measure.min_iters,
        ));
    }
    if spec.measure.inject_delay_ms > 0.0 {
        result
            .warnings
            .push(warnings::injected_delay(spec.measure.inject_delay_ms));
    }
    if spec.measure.inject_slowdown_pct > 0.0 {
        result.warnings.push(warnings::injected_slowdown(
            spec.measure.inject_slowdown_pct,
        ));
    }
    if spec.scenario == Scenario::Training && result.status.state == RunState::Ok && !gathered.done
    {
        result.warnings.push(warnings::training_cut_short(
            spec.measure.max_iters,
            spec.measure.max_duration_s,
        ));
    }
}

/// JSON has no NaN/inf: a metric without a finite value is dropped and the log says so.
fn drop_non_finite(result: &mut RunResult) {
    let (finite, dropped): (Vec<Metric>, Vec<Metric>) = std::mem::take(&mut result.metrics)
        .into_iter()
        .partition(|m| m.value.is_finite());
    result.metrics = finite;
    for m in dropped {
        result.log.push(format!(
            "{}: no finite value (samples not finite); not reported",
            m.name
        ));
    }
}

/// Size metrics of a model with local weights (params and bytes as stored; design.md §3).
pub fn model_metrics(info: &crate::records::ModelInfo) -> Vec<Metric> {
    let mut out = Vec::new();
    if info.params_total > 0 {
        let src = "model architecture (counted from the shapes)";
        out.push(Metric::scalar(
            MetricId::ParamsTotal,
            info.params_total as f64,
            src,
        ));
        out.push(Metric::scalar(
            MetricId::ParamsNonEmbedding,
            info.params_non_embedding as f64,
            src,
        ));
    }
    if info.file_bytes > 0 {
        out.push(Metric::scalar(
            MetricId::ModelBytes,
            info.file_bytes as f64,
            "weight file size on disk",
        ));
        if info.params_total > 0 {
            out.push(Metric::scalar(
                MetricId::BitsPerParam,
                8.0 * info.file_bytes as f64 / info.params_total as f64,
                "8 x weight file bytes / params_total",
            ));
        }
    }
    out
}

/// Warm-up then the measured window.
fn measure(
    spec: &RunSpec,
    session: &mut dyn Session,
    meters: &mut [Box<dyn Meter>],
    g: &mut Gathered,
    progress: &dyn Progress,
) -> Result<()> {
    let m = &spec.measure;
    // Training (fixed steps) runs until the session is done, capped by the maximums.
    let until_done = spec.scenario == Scenario::Training;
    progress.phase("warm-up");
    let t_warm = Instant::now();
    let mut i = 0u64;
    while i < m.warmup_iters || t_warm.elapsed().as_secs_f64() < m.warmup_s {
        if interrupt::requested() {
            return Err(interrupt::Interrupted.into());
        }
        let s = guarded("warm-up", || {
            session.iteration(IterationCtx {
                index: i,
                warmup: true,
            })
        })?;
        i += 1;
        if s.done {
            // Everything happened in the warm-up: nothing is left to measure.
            g.done = true;
            return Ok(());
        }
    }
    progress.phase("measuring");
    let mut counters = open_counters(session, g);
    for meter in meters.iter_mut() {
        meter.start();
    }
    let t0 = Instant::now();
    let mut n = 0u64;
    loop {
        if interrupt::requested() {
            g.measured_s = t0.elapsed().as_secs_f64();
            return Err(interrupt::Interrupted.into());
        }
        let before = counters.as_mut().map(Counters::read);
        let t = Instant::now();
        if m.inject_delay_ms > 0.0 {
            // Test knob, inside the timed iteration so every backend is slowed the same way.
            std::thread::sleep(crate::limits::seconds_clamped(m.inject_delay_ms / 1e3));
        }
        let t_work = Instant::now();
        let sample = guarded("a measured iteration", || {
            session.iteration(IterationCtx {
                index: n,
                warmup: false,
            })
        });
        if m.inject_slowdown_pct > 0.0 {
            // Test knob: the iteration takes this much longer, as busy work (CPU time too).
            let worked = t_work.elapsed();
            let until = t_work + worked + worked.mul_f64(m.inject_slowdown_pct / 100.0);
            while Instant::now() < until {
                std::hint::spin_loop();
            }
        }
        let dt = t.elapsed().as_secs_f64();
        let after = counters.as_mut().map(Counters::read);
        g.measured_s = t0.elapsed().as_secs_f64();
        let sample: Sample = sample?;
        if let (Some(a), Some(b), true) = (before, after, sample.overhead_s == 0.0) {
            record_counters(g, &a, &b);
        }
        let dt = (dt - sample.overhead_s).max(0.0);
        n += 1;
        g.iteration_ms.push(dt * 1e3);
        g.iteration_work.push(sample.work);
        g.work.input_tokens += sample.work.input_tokens;
        g.work.output_tokens += sample.work.output_tokens;
        g.work.requests += sample.work.requests;
        g.traces.extend(sample.generation);
        for (id, v) in sample.values {
            g.values.entry(id).or_default().push(v);
        }
        let elapsed = g.measured_s;
        progress.iteration(n, m.min_iters, elapsed, m.min_duration_s);
        g.done = sample.done;
        if sample.done || n >= m.max_iters || elapsed >= m.max_duration_s {
            return Ok(());
        }
        let minimums_met = !until_done && n >= m.min_iters && elapsed >= m.min_duration_s;
        if minimums_met
            && (m.target_rel_ci <= 0.0 || rel_half_width_normal(&g.iteration_ms) <= m.target_rel_ci)
        {
            return Ok(());
        }
    }
}

/// The per-iteration counters for an in-process session (`None` for a session whose work
/// runs in another process: a worker's CPU is not this process's). Notes say what is missing.
fn open_counters(session: &dyn Session, g: &mut Gathered) -> Option<Counters> {
    if session.timestamp_source() != WALL_CLOCK {
        g.notes.push(format!(
            "cpu_time, instructions, cycles: not measured; the work runs in another process \
             ({}), whose CPU is not this process's",
            session.timestamp_source()
        ));
        return None;
    }
    let c = Counters::open();
    for why in &c.unavailable {
        g.notes
            .push(format!("counter unavailable, not measured: {why}"));
    }
    g.hw = c
        .hardware
        .iter()
        .map(|p| {
            let id = match p.event() {
                Event::Cycles => MetricId::Cycles,
                _ => MetricId::Instructions,
            };
            (id, Some(Vec::new()))
        })
        .collect();
    Some(c)
}

fn record_counters(g: &mut Gathered, a: &Snapshot, b: &Snapshot) {
    g.cpu_ms
        .push(b.cpu_ns.saturating_sub(a.cpu_ns) as f64 / 1e6);
    for (i, (id, v)) in g.hw.iter_mut().enumerate() {
        match (a.hw[i], b.hw[i], v.as_mut()) {
            (Some(x), Some(y), Some(v)) => v.push(y.saturating_sub(x) as f64),
            (_, _, Some(_)) => {
                *v = None;
                g.notes.push(format!(
                    "{id}: dropped, the kernel multiplexed the counter or a read failed \
                     (the counts would be estimates)"
                ));
            }
            _ => {}
        }
    }
}

/// Normal-approximation 95 % CI half-width of the mean relative to the mean (used for the
/// adaptive stop, where a bootstrap per iteration would cost too much).
pub fn rel_half_width_normal(xs: &[f64]) -> f64 {
    if xs.len() < 3 {
        return f64::INFINITY;
    }
    let mean = crate::stats::mean(xs);
    if mean == 0.0 {
        return f64::INFINITY;
    }
    1.96 * crate::stats::stdev(xs) / (xs.len() as f64).sqrt() / mean.abs()
}

/// Latency and per-iteration metrics; `clock` is the source of the session's timestamps.
/// Throughput is over the harness's own measured window. Training sessions report their own
/// token rates (`train_throughput`); the tokens they put in [`Work`] only feed the per-token
/// energy, so no inference throughput is derived for them.
fn gathered_metrics(g: &Gathered, clock: &str, seed: u64, scenario: Scenario) -> Vec<Metric> {
    let mut out = trace::generation_metrics(&g.traces, clock, seed);
    for (id, v) in &g.values {
        out.push(trace::sampled_capped(*id, v.clone(), clock, seed));
    }
    if !g.cpu_ms.is_empty() {
        out.push(Metric::sampled(
            MetricId::CpuTime,
            g.cpu_ms.clone(),
            counters::CPU_TIME_SOURCE,
            seed,
        ));
    }
    for (id, v) in &g.hw {
        if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
            out.push(Metric::sampled(*id, v.clone(), counters::PERF_SOURCE, seed));
        }
    }
    let window_s: f64 = g.iteration_ms.iter().sum::<f64>() / 1e3;
    if window_s > 0.0 && scenario != Scenario::Training {
        let per_iter = |f: fn(&Work) -> u64| -> Vec<f64> {
            g.iteration_work
                .iter()
                .zip(&g.iteration_ms)
                .map(|(w, ms)| f(w) as f64 / (ms / 1e3))
                .collect()
        };
        type Count = fn(&Work) -> u64;
        let throughput: [(MetricId, Count); 3] = [
            (MetricId::OutputThroughput, |w| w.output_tokens),
            (MetricId::TotalThroughput, |w| {
                w.output_tokens + w.input_tokens
            }),
            (requests_metric(scenario), |w| w.requests),
        ];
        for (id, f) in throughput {
            let total = f(&g.work);
            if total > 0 {
                out.push(Metric::aggregate(
                    id,
                    total as f64 / window_s,
                    per_iter(f),
                    WALL_CLOCK,
                    seed,
                ));
            }
        }
    }
    out
}

/// What a completed request is per scenario: an embedded sequence (embedding), an answered
/// query (retrieval), else a request (a batch in-process).
fn requests_metric(scenario: Scenario) -> MetricId {
    match scenario {
        Scenario::Embedding => MetricId::EmbeddingThroughput,
        Scenario::Retrieval => MetricId::QueryThroughput,
        _ => MetricId::RequestThroughput,
    }
}

/// MBU and prefill MFU of an inference run whose backend reported its model's work.
fn roofline_metrics(spec: &RunSpec, r: &RunResult) -> Vec<Metric> {
    let Some(work) = r.model.as_ref().and_then(|m| m.roofline.as_ref()) else {
        return Vec::new();
    };
    let (Ok(batch), Ok(prompt_len), Ok(gen_len)) = (
        spec.usize_param("batch"),
        spec.usize_param("prompt_len"),
        spec.usize_param("gen_len"),
    ) else {
        return Vec::new();
    };
    if spec.scenario != Scenario::Inference {
        return Vec::new();
    }
    let mean = |id: MetricId| r.metric(id).map(|m| m.value);
    crate::roofline::derive(
        work,
        crate::roofline::Shape {
            batch,
            prompt_len,
            gen_len,
        },
        mean(MetricId::Ttft),
        mean(MetricId::Tpot),
        r.env.peak_bandwidth.as_ref(),
        r.env.peak_flops.as_ref(),
    )
}

/// Metrics in table order, so results read the same whatever produced them.
fn order_metrics(metrics: &mut [Metric]) {
    metrics.sort_by_key(|m| MetricId::ALL.iter().position(|x| *x == m.name));
}

/// A series of (iteration index, iteration time ms), kept for plots.
pub fn iteration_series(times_ms: &[f64]) -> Series {
    Series {
        name: "iteration_time".into(),
        x_unit: "iteration".into(),
        y_unit: "ms".into(),
        source: WALL_CLOCK.into(),
        period_ms: None,
        points: times_ms
            .iter()
            .enumerate()
            .map(|(i, t)| [i as f64, *t])
            .collect(),
    }
}

#[cfg(test)]
#[path = "runner_tests.rs"]
mod tests;
