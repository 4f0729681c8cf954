//! One worker connection for one run: start → `describe` (version and capability checks) →
//! `load`; requests per iteration with the harness-side round trip; and at the end the
//! memory figures, the worker's stderr tail and `shutdown`. Dropping it kills and reaps the
//! worker ([`effbench_harness::worker::Worker`]).

use super::options::ProcessOptions;
use super::{resolve_model, ResolvedModel};
use crate::loader;
use anyhow::{Context, Result};
use effbench_harness::backend::{Extras, IterationCtx};
use effbench_harness::env::{PeakBandwidth, PeakFlops};
use effbench_harness::meters::memory::status_bytes;
use effbench_harness::protocol::{
    self, decode, DescribeReply, Fault, LoadReply, MemoryReport, Op, WorkerError,
};
use effbench_harness::records::ModelFormat;
use effbench_harness::trace::sampled_capped;
use effbench_harness::worker::{Reply, Worker, WorkerCommand};
use effbench_harness::{Metric, MetricId, ModelInfo, RunSpec};
use serde_json::{json, Map, Value};
use std::time::Duration;

/// Stderr lines put into a successful run's log.
const LOG_STDERR_LINES: usize = 20;

/// A started, loaded worker.
pub struct Connection {
    worker: Option<Worker>,
    /// The run's `[options]`.
    pub opts: ProcessOptions,
    /// What the worker said about itself.
    pub describe: DescribeReply,
    /// Model facts for the result.
    pub info: ModelInfo,
    /// The model as passed to the worker.
    pub model: ResolvedModel,
    /// The worker's `load` reply.
    pub load: LoadReply,
    pid: u32,
    notes: Vec<String>,
    /// Whether the worker's VmHWM was reset at the start of the measured window.
    rss_reset: Option<bool>,
    /// Allocator peaks from the last measured reply.
    pub memory: Option<MemoryReport>,
    /// `ipc_overhead` samples of measured requests, ms.
    overheads: Vec<f64>,
    seed: u64,
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

impl Connection {
    /// The matmul probe the worker measured at load, if it reports one.
    pub fn peak_flops(&self) -> Option<PeakFlops> {
        self.load.peak_flops.clone()
    }

    /// The memory-bandwidth probe the worker measured at load, if it reports one.
    pub fn peak_bandwidth(&self) -> Option<PeakBandwidth> {
        self.load.peak_bandwidth.clone()
    }

    /// Starts the worker of `spec` and loads its model.
    pub fn start(spec: &RunSpec, extra_load: Map<String, Value>) -> Result<Connection> {
        let opts = ProcessOptions::parse(&spec.options).map_err(anyhow::Error::msg)?;
        let model = resolve_model(spec)?;
        let estimate = super::check_memory(spec, &model)?;
        let argv = opts.argv(spec, &model.path).map_err(anyhow::Error::msg)?;
        let mut worker = Worker::spawn(&WorkerCommand {
            argv: argv.clone(),
            env: opts.worker_env().map_err(anyhow::Error::msg)?,
            cwd: None,
            max_line_bytes: opts.max_line_bytes,
        })?;
        let pid = worker.pid();
        let mut notes = vec![format!("worker: `{}` (pid {pid})", argv.join(" "))];

        let offer = json!({"protocol": protocol::SUPPORTED_VERSIONS});
        // A failed start-up call ends the worker: `abort` collects its whole stderr.
        let reply = worker
            .call(Op::Describe, &obj(offer), opts.timeout(Op::Describe))
            .map_err(|e| worker.abort(e))?;
        let rtt = reply.round_trip;
        let describe: DescribeReply = decode(reply.body, Op::Describe)
            .and_then(|d| protocol::check_version(&d).map(|_| d))
            .and_then(|d| check_capabilities(spec, &d).map(|_| d))
            .map_err(|e| worker.abort(e))?;
        notes.push(format!(
            "worker {} {} speaks protocol v{}; clock: {}; describe round trip {} (includes start-up)",
            or_unnamed(&describe.worker.name),
            describe.worker.version,
            describe.protocol,
            describe.clock.as_deref().unwrap_or("not stated"),
            ms(rtt)
        ));
        if !describe.runtime.is_empty() {
            notes.push(format!(
                "worker runtime: {}",
                Value::Object(describe.runtime.clone())
            ));
        }

        let mut model_json = json!({"reference": model.reference, "path": model.path,
                                    "format": format_name(model.format)});
        if let Some(p) = spec.model().preset() {
            // The architecture to build (`from_config`): effbench's reading of the preset.
            model_json["config"] = crate::preset::parse(p)?.hf_config()?;
        }
        let mut body = obj(json!({
            "scenario": spec.scenario,
            "model": model_json,
            "device": spec.device()?.to_string(),
            "dtype": spec.str_param("dtype").unwrap_or("f32"),
            "seed": spec.seed,
            "params": spec.params,
            "options": opts.worker,
        }));
        body.extend(extra_load);
        let reply = worker
            .call(Op::Load, &body, opts.timeout(Op::Load))
            .map_err(|e| worker.abort(e))?;
        notes.push(format!("load round trip {}", ms(reply.round_trip)));
        let load: LoadReply = decode(reply.body, Op::Load)
            .and_then(|l: LoadReply| match l.vocab_size {
                0 => Err(WorkerError::new(
                    Fault::BadReply,
                    Op::Load,
                    "vocab_size is 0",
                )),
                _ => check_load(&l)
                    .map(|_| l)
                    .map_err(|m| WorkerError::new(Fault::BadReply, Op::Load, m)),
            })
            .map_err(|e| worker.abort(e))?;
        let mut info = model_info(spec, &model, &load, &describe)?;
        if let Some(e) = estimate {
            info.details
                .insert("memory_estimate".into(), serde_json::to_value(e)?);
        }
        Ok(Connection {
            worker: Some(worker),
            opts,
            describe,
            info,
            model,
            load,
            pid,
            notes,
            rss_reset: None,
            memory: None,
            overheads: Vec::new(),
            seed: spec.seed,
        })
    }

    /// One request of an iteration: adds `phase` and `reset_peak_memory` (first measured
    /// iteration, when the worker's peak RSS is reset too).
    pub fn call(
        &mut self,
        op: Op,
        mut body: Map<String, Value>,
        ctx: IterationCtx,
    ) -> Result<Reply> {
        let first_measured = !ctx.warmup && ctx.index == 0;
        if first_measured {
            let path = format!("/proc/{}/clear_refs", self.pid);
            self.rss_reset = Some(std::fs::write(path, "5").is_ok());
        }
        body.insert(
            "phase".into(),
            if ctx.warmup { "warmup" } else { "measure" }.into(),
        );
        body.insert("reset_peak_memory".into(), first_measured.into());
        let timeout = self.opts.timeout(op);
        let worker = self.worker.as_mut().context("worker already shut down")?;
        Ok(worker.call(op, &body, timeout)?)
    }

    /// Ends the worker because of a problem found in a reply; the error gets its stderr.
    pub fn abort(&mut self, e: WorkerError) -> anyhow::Error {
        match self.worker.as_mut() {
            Some(w) => w.abort(e).into(),
            None => e.into(),
        }
    }

    /// `ipc_overhead` of one reply, ms: round trip minus the worker's own time.
    pub fn overhead_ms(reply_rtt: Duration, op_ns: Option<u64>) -> Option<f64> {
        let rtt = reply_rtt.as_nanos() as u64;
        op_ns.filter(|&w| w <= rtt).map(|w| (rtt - w) as f64 / 1e6)
    }

    /// Keeps what a measured reply says beyond its payload: the round-trip overhead and the
    /// allocator peaks.
    pub fn record(
        &mut self,
        ctx: IterationCtx,
        rtt: Duration,
        op_ns: Option<u64>,
        memory: Option<&MemoryReport>,
    ) {
        if ctx.warmup {
            return;
        }
        self.overheads.extend(Self::overhead_ms(rtt, op_ns));
        if let Some(m) = memory {
            use effbench_harness::plausible::MAX_MEMORY_BYTES;
            // A size no machine holds is dropped with a note, never recorded as measured.
            let fits = |v: Option<u64>| v.is_none_or(|b| b <= MAX_MEMORY_BYTES);
            if fits(m.max_allocated_bytes) && fits(m.max_reserved_bytes) {
                self.memory = Some(m.clone());
            } else if !self
                .notes
                .iter()
                .any(|n| n.starts_with("worker memory report"))
            {
                self.notes.push(format!(
                    "worker memory report ignored: more than {MAX_MEMORY_BYTES} bytes claimed"
                ));
            }
        }
    }

    /// Source label for timestamps taken in the worker.
    pub fn clock(&self) -> String {
        format!(
            "worker clock ({})",
            self.describe.clock.as_deref().unwrap_or("not stated")
        )
    }

    /// Memory metrics, notes and the stderr tail; then `shutdown`.
    pub fn finish(&mut self) -> Extras {
        let mut ex = Extras::default();
        if !self.overheads.is_empty() {
            ex.metrics.push(sampled_capped(
                MetricId::IpcOverhead,
                std::mem::take(&mut self.overheads),
                "effbench round trip minus the worker's op_ns",
                self.seed,
            ));
        }
        if let Some(m) = &self.memory {
            let source = m
                .source
                .clone()
                .unwrap_or_else(|| "worker allocator".into());
            for (id, v) in [
                (MetricId::PeakDeviceMemoryAllocated, m.max_allocated_bytes),
                (MetricId::PeakDeviceMemoryReserved, m.max_reserved_bytes),
            ] {
                if let Some(v) = v {
                    ex.metrics
                        .push(Metric::scalar(id, v as f64, source.clone()));
                }
            }
        }
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok();
        match (
            status.and_then(|s| status_bytes(&s, "VmHWM")),
            self.rss_reset,
        ) {
            (Some(b), reset) => {
                let source = if reset == Some(true) {
                    "procfs VmHWM of the worker"
                } else {
                    ex.notes.push(
                        "worker_peak_rss covers the worker's whole life: its clear_refs could \
                         not be written"
                            .into(),
                    );
                    "procfs VmHWM of the worker (process lifetime)"
                };
                ex.metrics
                    .push(Metric::scalar(MetricId::WorkerPeakRss, b as f64, source));
            }
            (None, _) => ex
                .notes
                .push("worker_peak_rss: the worker's /proc status is not readable".into()),
        }
        ex.notes.append(&mut self.notes);
        if let Some(w) = self.worker.take() {
            ex.notes
                .extend(protocol::stderr_log_lines(&w.stderr_tail(LOG_STDERR_LINES)));
            match w.shutdown(self.opts.timeout(Op::Shutdown)) {
                Ok(how) => ex.notes.push(format!("worker shut down: {how}")),
                Err(e) => ex.notes.push(format!("worker shutdown failed: {e}")),
            }
        }
        ex
    }
}

/// Sizes in a `load` reply that no machine could hold are refused, not recorded.
fn check_load(l: &LoadReply) -> std::result::Result<(), String> {
    use effbench_harness::plausible::{check_worker_size, MAX_MEMORY_BYTES, MAX_PARAMS};
    check_worker_size("vocab_size", Some(l.vocab_size as u64), 1 << 24)?;
    check_worker_size("model.params_total", Some(l.model.params_total), MAX_PARAMS)?;
    check_worker_size(
        "model.params_non_embedding",
        l.model.params_non_embedding,
        MAX_PARAMS,
    )?;
    check_worker_size("model.loaded_bytes", l.model.loaded_bytes, MAX_MEMORY_BYTES)?;
    check_worker_size("model.file_bytes", l.model.file_bytes, MAX_MEMORY_BYTES)?;
    // Probe results are divisors of MFU and MBU: a rate no device reaches is refused.
    let rate = |field: &str, v: f64, max: f64| {
        if v.is_finite() && v > 0.0 && v <= max {
            Ok(())
        } else {
            Err(format!("{field} = {v} is not a rate in (0, {max:e}]"))
        }
    };
    if let Some(p) = &l.peak_flops {
        rate("peak_flops.flops_per_s", p.flops_per_s, 1e18)?;
    }
    if let Some(p) = &l.peak_bandwidth {
        rate("peak_bandwidth.bytes_per_s", p.bytes_per_s, 1e15)?;
    }
    // The roofline is the numerator of MBU and MFU: counts no model has are refused too.
    if let Some(w) = &l.model.roofline {
        check_worker_size(
            "model.roofline.weight_bytes_per_step",
            Some(w.weight_bytes_per_step),
            MAX_MEMORY_BYTES,
        )?;
        check_worker_size(
            "model.roofline.kv_bytes_per_position",
            Some(w.kv_bytes_per_position),
            MAX_MEMORY_BYTES,
        )?;
        if w.weight_bytes_per_step == 0 {
            return Err("model.roofline.weight_bytes_per_step is 0".into());
        }
        for (field, v) in [
            ("block_flops_per_token", w.block_flops_per_token),
            ("head_flops_per_token", w.head_flops_per_token),
            (
                "attention_flops_per_position",
                w.attention_flops_per_position,
            ),
        ] {
            if !(v.is_finite() && (0.0..=1e18).contains(&v)) {
                return Err(format!(
                    "model.roofline.{field} = {v} is not a count in [0, 1e18]"
                ));
            }
        }
    }
    Ok(())
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn or_unnamed(s: &str) -> &str {
    if s.is_empty() {
        "(unnamed)"
    } else {
        s
    }
}

fn format_name(f: ModelFormat) -> &'static str {
    match f {
        ModelFormat::Hf => "hf",
        ModelFormat::Gguf => "gguf",
        ModelFormat::Remote => "remote",
        ModelFormat::Preset => "preset",
    }
}

/// The run's scenario, device kind and dtype must be among what the worker described.
fn check_capabilities(spec: &RunSpec, d: &DescribeReply) -> Result<(), WorkerError> {
    let name = or_unnamed(&d.worker.name);
    let no = |what: &str, value: &str, list: &[String]| {
        WorkerError::new(
            Fault::Reported,
            Op::Describe,
            format!(
                "worker {name} cannot use {what} '{value}' (it offers: {})",
                list.join(", ")
            ),
        )
    };
    let scenario = spec.scenario.name();
    if !d.scenarios.iter().any(|s| s == scenario) {
        return Err(no("scenario", scenario, &d.scenarios));
    }
    let device = spec.device().map(|d| d.to_string()).unwrap_or_default();
    let kind = spec.device().map(|d| d.kind()).unwrap_or("cpu");
    if !d.devices.iter().any(|s| s == kind) {
        return Err(no("device", &device, &d.devices));
    }
    let dtype = spec.str_param("dtype").unwrap_or("f32");
    if !d.dtypes.iter().any(|s| s == dtype) {
        return Err(no("dtype", dtype, &d.dtypes));
    }
    Ok(())
}

/// The result's model facts: the worker's description plus what effbench reads itself
/// (path, file bytes, SHA-256 of local weights).
fn model_info(
    spec: &RunSpec,
    m: &ResolvedModel,
    load: &LoadReply,
    d: &DescribeReply,
) -> Result<ModelInfo> {
    let w = &load.model;
    let files = match (&m.local, m.format) {
        (Some(p), ModelFormat::Gguf) => Some(vec![p.clone()]),
        (Some(p), _) if p.is_dir() => loader::safetensors_files(p).ok(),
        _ => None,
    };
    let (file_bytes, sha256) = match &files {
        Some(f) => (
            f.iter()
                .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
                .sum(),
            Some(loader::sha256_files(f)?),
        ),
        None => (w.file_bytes.unwrap_or(0), None),
    };
    let name = if spec.model().is_builtin() || spec.model().preset().is_some() {
        spec.model().reference
    } else {
        w.name.clone().unwrap_or_else(|| {
            m.local
                .as_ref()
                .and_then(|p| p.file_name())
                .map_or_else(|| m.reference.clone(), |n| n.to_string_lossy().into())
        })
    };
    let mut details: std::collections::BTreeMap<String, Value> =
        w.details.clone().into_iter().collect();
    details.insert("device".into(), json!(spec.device()?.to_string()));
    details.insert(
        "worker".into(),
        json!(format!("{} {}", or_unnamed(&d.worker.name), d.worker.version).trim()),
    );
    details.insert("protocol".into(), json!(d.protocol));
    if m.format == ModelFormat::Preset {
        details.insert("weights".into(), json!(crate::preset::WEIGHTS_LABEL));
    }
    details.insert("vocab_size".into(), json!(load.vocab_size));
    Ok(ModelInfo {
        name,
        format: if m.local.is_some() || m.format == ModelFormat::Preset {
            format_name(m.format)
        } else {
            "remote"
        }
        .into(),
        arch: w.arch.clone(),
        dtype: w.dtype.clone(),
        params_total: w.params_total,
        params_non_embedding: w.params_non_embedding.unwrap_or(0),
        file_bytes,
        loaded_bytes: w.loaded_bytes.unwrap_or(0),
        path: m.local.as_ref().map(|p| p.display().to_string()),
        sha256,
        details,
        roofline: w.roofline.clone(),
    })
}
