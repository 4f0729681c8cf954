//! Protocol v1 of external backends (design.md §5): JSON lines over a worker process's
//! stdin/stdout. This module owns the message shapes, the version, the default per-op
//! timeouts and the error a failing worker produces ([`WorkerError`]); [`crate::worker`]
//! owns the process. docs/process-backend.md (Protocol v1) is the user-facing description.
//!
//! One request per line from effbench, exactly one reply line per request from the worker,
//! nothing else on stdout (stderr is free-form and kept for the result's log). Every request
//! carries `op` and `id`; every reply echoes `id` and is either `{"id":N,"ok":true,...}` or
//! `{"id":N,"error":{"kind":"...","message":"..."}}`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;
use std::time::Duration;

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u32 = 1;
/// Versions offered in `describe` (the worker picks one).
pub const SUPPORTED_VERSIONS: &[u32] = &[PROTOCOL_VERSION];
/// Longest reply line accepted by default (64 MiB); a longer one fails the run.
pub const DEFAULT_MAX_LINE_BYTES: usize = 64 << 20;

/// The operations of protocol v1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// Version negotiation and capabilities (always first).
    Describe,
    /// Load a model onto a device with a dtype.
    Load,
    /// One inference request: prompts in, greedy tokens and per-emission timestamps out.
    Run,
    /// Training steps on given token batches: per-step time and loss out.
    Train,
    /// Encoder forward passes (scenario `embedding`): token-id sequences in, one pooled
    /// embedding per sequence out.
    Embed,
    /// Release everything and exit.
    Shutdown,
}

impl Op {
    pub const ALL: [Op; 6] = [
        Op::Describe,
        Op::Load,
        Op::Run,
        Op::Train,
        Op::Embed,
        Op::Shutdown,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Op::Describe => "describe",
            Op::Load => "load",
            Op::Run => "run",
            Op::Train => "train",
            Op::Embed => "embed",
            Op::Shutdown => "shutdown",
        }
    }

    /// Default timeout. `describe` includes the worker's start-up (importing a framework
    /// can take tens of seconds on a cold disk); `load` includes reading weights.
    pub fn default_timeout(self) -> Duration {
        Duration::from_secs(match self {
            Op::Describe => 120,
            Op::Load => 600,
            Op::Run => 300,
            Op::Train => 300,
            Op::Embed => 300,
            Op::Shutdown => 10,
        })
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a worker failed, as far as the harness can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The command could not be started.
    Spawn,
    /// The worker exited (or closed stdout) before replying.
    Crash,
    /// No reply within the op's timeout.
    Timeout,
    /// A reply line that is not a JSON object of the protocol.
    Garbage,
    /// A reply line longer than the limit.
    HugeLine,
    /// The worker does not speak a version effbench speaks.
    Version,
    /// A well-formed reply whose content breaks the protocol (wrong id, missing field ...).
    BadReply,
    /// The worker replied with `{"error": ...}`.
    Reported,
    /// Ctrl-C: the harness stopped the worker.
    Interrupted,
}

impl Fault {
    pub fn name(self) -> &'static str {
        match self {
            Fault::Spawn => "spawn",
            Fault::Crash => "crash",
            Fault::Timeout => "timeout",
            Fault::Garbage => "garbage",
            Fault::HugeLine => "huge-line",
            Fault::Version => "version",
            Fault::BadReply => "bad-reply",
            Fault::Reported => "reported",
            Fault::Interrupted => "interrupted",
        }
    }
}

/// A failed worker operation: one-line `message` plus the worker's last stderr lines.
/// Its `Display` is the one line a failed result's `status.reason` shows; the runner puts
/// `stderr_tail` into the result's log.
#[derive(Debug, Clone)]
pub struct WorkerError {
    pub fault: Fault,
    pub op: Op,
    /// For [`Fault::Reported`]: the worker's error kind.
    pub kind: Option<String>,
    pub message: String,
    pub stderr_tail: Vec<String>,
}

/// Stderr lines quoted in the one-line reason (all of them go to the log).
const REASON_STDERR_LINES: usize = 3;

impl fmt::Display for WorkerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.fault, &self.kind) {
            (Fault::Reported, Some(kind)) => write!(
                f,
                "worker error during `{}` ({kind}): {}",
                self.op, self.message
            )?,
            _ => write!(f, "{} during `{}`", self.message, self.op)?,
        }
        let quoted: Vec<&str> = self
            .stderr_tail
            .iter()
            .map(|l| l.trim())
            .filter(|l| !l.is_empty())
            .collect();
        if !quoted.is_empty() && self.fault != Fault::Reported {
            let from = quoted.len().saturating_sub(REASON_STDERR_LINES);
            write!(f, "; worker stderr: {}", quoted[from..].join(" | "))?;
        }
        Ok(())
    }
}

impl std::error::Error for WorkerError {}

impl WorkerError {
    pub fn new(fault: Fault, op: Op, message: impl Into<String>) -> WorkerError {
        WorkerError {
            fault,
            op,
            kind: None,
            message: message.into(),
            stderr_tail: Vec::new(),
        }
    }

    /// Lines for the result's log: the worker's last stderr lines.
    pub fn log_lines(&self) -> Vec<String> {
        stderr_log_lines(&self.stderr_tail)
    }

    /// [`Self::log_lines`] of the worker error anywhere in `error`'s chain (none if there is
    /// none): what a backend that runs workers gives as `Backend::error_details`.
    pub fn log_lines_of(error: &anyhow::Error) -> Vec<String> {
        error
            .chain()
            .find_map(|c| c.downcast_ref::<WorkerError>())
            .map(WorkerError::log_lines)
            .unwrap_or_default()
    }
}

/// Prefixes stderr lines for a result's log.
pub fn stderr_log_lines(tail: &[String]) -> Vec<String> {
    tail.iter().map(|l| format!("worker stderr: {l}")).collect()
}

/// `{"error": {"kind", "message"}}` as a worker sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub kind: String,
    pub message: String,
}

/// A request line: `{"op": ..., "id": ..., <body>}`.
pub fn request_line(op: Op, id: u64, body: &Map<String, Value>) -> String {
    let mut m = Map::new();
    m.insert("op".into(), op.name().into());
    m.insert("id".into(), id.into());
    for (k, v) in body {
        m.insert(k.clone(), v.clone());
    }
    let mut line = Value::Object(m).to_string();
    line.push('\n');
    line
}

/// How a reply line is shown in an error: trimmed and cut to 120 characters.
pub fn snippet(line: &str) -> String {
    let t = line.trim();
    let cut: String = t.chars().take(120).collect();
    if cut.len() < t.len() {
        format!("{cut}…")
    } else {
        cut
    }
}

/// Checks one reply line for request `id` of `op`: a JSON object echoing `id`, with
/// `"ok": true` or an `error` body. Returns the object.
pub fn parse_reply(line: &str, op: Op, id: u64) -> Result<Map<String, Value>, WorkerError> {
    let value: Value = serde_json::from_str(line).map_err(|e| {
        WorkerError::new(
            Fault::Garbage,
            op,
            format!(
                "worker wrote a line that is not JSON ({e}): '{}'",
                snippet(line)
            ),
        )
    })?;
    let Value::Object(m) = value else {
        return Err(WorkerError::new(
            Fault::Garbage,
            op,
            format!(
                "worker wrote a JSON value that is not an object: '{}'",
                snippet(line)
            ),
        ));
    };
    match m.get("id").and_then(Value::as_u64) {
        Some(got) if got == id => {}
        Some(got) => {
            return Err(WorkerError::new(
                Fault::BadReply,
                op,
                format!("worker replied to request id {got}, expected {id}"),
            ))
        }
        None => {
            return Err(WorkerError::new(
                Fault::BadReply,
                op,
                format!(
                    "reply has no integer `id` (expected {id}): '{}'",
                    snippet(line)
                ),
            ))
        }
    }
    if let Some(err) = m.get("error") {
        let body: ErrorBody = serde_json::from_value(err.clone()).map_err(|_| {
            WorkerError::new(
                Fault::BadReply,
                op,
                format!(
                    "`error` must be {{\"kind\": string, \"message\": string}}: '{}'",
                    snippet(line)
                ),
            )
        })?;
        let mut e = WorkerError::new(Fault::Reported, op, body.message);
        e.kind = Some(body.kind);
        return Err(e);
    }
    if m.get("ok") != Some(&Value::Bool(true)) {
        return Err(WorkerError::new(
            Fault::BadReply,
            op,
            format!(
                "reply has neither \"ok\": true nor an `error`: '{}'",
                snippet(line)
            ),
        ));
    }
    Ok(m)
}

/// Deserializes a checked reply into `T`, naming the op on failure.
pub fn decode<T: serde::de::DeserializeOwned>(
    reply: Map<String, Value>,
    op: Op,
) -> Result<T, WorkerError> {
    serde_json::from_value(Value::Object(reply)).map_err(|e| {
        WorkerError::new(
            Fault::BadReply,
            op,
            format!("reply does not match protocol v1: {e}"),
        )
    })
}

/// The `describe` reply.
#[derive(Debug, Clone, Deserialize)]
pub struct DescribeReply {
    /// The version the worker chose from the ones offered.
    pub protocol: u32,
    #[serde(default)]
    pub worker: WorkerId,
    /// Scenarios it runs: `inference`, `training`.
    pub scenarios: Vec<String>,
    pub dtypes: Vec<String>,
    /// Device kinds usable now (`cpu`, `cuda`).
    pub devices: Vec<String>,
    /// The clock its timestamps come from (e.g. `time.perf_counter_ns`).
    #[serde(default)]
    pub clock: Option<String>,
    /// Free-form facts (framework versions, GPU name ...), recorded in the result.
    #[serde(default)]
    pub runtime: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct WorkerId {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub version: String,
}

/// Checks the negotiated version.
pub fn check_version(d: &DescribeReply) -> Result<(), WorkerError> {
    if SUPPORTED_VERSIONS.contains(&d.protocol) {
        return Ok(());
    }
    Err(WorkerError::new(
        Fault::Version,
        Op::Describe,
        format!(
            "worker speaks protocol version {}, effbench speaks {}",
            d.protocol,
            SUPPORTED_VERSIONS
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    ))
}

/// The `load` reply.
#[derive(Debug, Clone, Deserialize)]
pub struct LoadReply {
    pub model: LoadedModel,
    /// Token ids the model accepts are `0..vocab_size`.
    pub vocab_size: usize,
    /// Ids that are not ordinary text (bos, eos, pad ...).
    #[serde(default)]
    pub special_ids: Vec<u32>,
    /// The worker's matmul probe on its device in the run's dtype (the denominator of MFU),
    /// measured at load; recorded in the result's environment as the candle backend's is.
    #[serde(default)]
    pub peak_flops: Option<crate::env::PeakFlops>,
    /// The worker's memory-bandwidth probe on its device (the denominator of MBU), measured
    /// at load.
    #[serde(default)]
    pub peak_bandwidth: Option<crate::env::PeakBandwidth>,
}

/// What the worker loaded (effbench adds path, file bytes and SHA-256 for local files).
#[derive(Debug, Clone, Deserialize)]
pub struct LoadedModel {
    #[serde(default)]
    pub name: Option<String>,
    /// Architecture, e.g. `llama`.
    pub arch: String,
    /// Weight dtype as loaded: `f32`, `f16`, `bf16` ...
    pub dtype: String,
    pub params_total: u64,
    #[serde(default)]
    pub params_non_embedding: Option<u64>,
    /// Bytes of the weights in memory.
    #[serde(default)]
    pub loaded_bytes: Option<u64>,
    #[serde(default)]
    pub file_bytes: Option<u64>,
    #[serde(default)]
    pub details: Map<String, Value>,
    /// The model's work per token (bytes read per decode step, KV bytes per position,
    /// FLOPs), from which effbench derives MBU and prefill MFU; optional.
    #[serde(default)]
    pub roofline: Option<crate::roofline::ModelWork>,
}

/// Allocator statistics a worker may add to `run`/`train` replies (bytes, peaks since the
/// last request that set `reset_peak_memory`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct MemoryReport {
    #[serde(default)]
    pub max_allocated_bytes: Option<u64>,
    #[serde(default)]
    pub max_reserved_bytes: Option<u64>,
    /// What measured them, e.g. `torch.cuda.max_memory_allocated`.
    #[serde(default)]
    pub source: Option<String>,
}

/// One emission: `tokens` new tokens per sequence at `t_ns` after the request started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmissionMsg {
    pub t_ns: u64,
    pub tokens: u32,
}

/// The `run` reply.
#[derive(Debug, Clone, Deserialize)]
pub struct RunReply {
    pub outputs: RunOutputs,
    pub emissions: Vec<EmissionMsg>,
    /// Worker time for the whole op (request read → reply written), ns.
    #[serde(default)]
    pub op_ns: Option<u64>,
    #[serde(default)]
    pub memory: Option<MemoryReport>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RunOutputs {
    /// Generated ids, one list per sequence.
    pub token_ids: Vec<Vec<u32>>,
}

/// One training step's report.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct StepMsg {
    /// Mean cross-entropy (nats/token) of the step's batch, before the update.
    pub loss: f64,
    /// Worker time of the step (forward, backward, optimizer), ns.
    pub step_ns: u64,
}

/// The `train` reply.
#[derive(Debug, Clone, Deserialize)]
pub struct TrainReply {
    pub steps: Vec<StepMsg>,
    #[serde(default)]
    pub op_ns: Option<u64>,
    #[serde(default)]
    pub memory: Option<MemoryReport>,
}

/// The `embed` reply.
#[derive(Debug, Clone, Deserialize)]
pub struct EmbedReply {
    /// One pooled (and, when the model says so, normalized) vector per input sequence.
    pub embeddings: Vec<Vec<f32>>,
    /// Worker time of the forward pass and pooling (inputs on the device → vectors read
    /// back), ns.
    pub embed_ns: u64,
    #[serde(default)]
    pub op_ns: Option<u64>,
    #[serde(default)]
    pub memory: Option<MemoryReport>,
}

#[cfg(test)]
#[path = "protocol_tests.rs"]
mod tests;
