//! The suite's `[serving]` table ([`ServingConfig`]): where the server is, what to send, how
//! requests arrive, the SLOs and the optional server search. Resolved unchanged into every run
//! of the suite and part of the run id. Its checks are in `crate::serving::config`; the load
//! test itself is `crate::serving`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Which OpenAI endpoint requests go to.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Endpoint {
    /// `/v1/completions` with a `prompt`.
    #[default]
    Completions,
    /// `/v1/chat/completions` with `messages`.
    Chat,
}

impl Endpoint {
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Completions => "/completions",
            Endpoint::Chat => "/chat/completions",
        }
    }
    pub fn parse(s: &str) -> Result<Endpoint, String> {
        match s {
            "completions" => Ok(Endpoint::Completions),
            "chat" => Ok(Endpoint::Chat),
            _ => Err(format!("endpoint '{s}' is not 'completions' or 'chat'")),
        }
    }
}

/// MLPerf-style server search: the highest request rate whose p99 TTFT/TPOT/E2EL meet the
/// SLOs with no failed request, by bisection between `low` and `high` (each step a full run).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchConfig {
    /// Lowest rate tried (req/s).
    pub low: f64,
    /// Highest rate tried (req/s).
    pub high: f64,
    /// At most this many steps (runs), the two bounds included.
    #[serde(default = "default_max_steps")]
    pub max_steps: u32,
    /// Stop when (fail - pass) / pass is below this fraction.
    #[serde(default = "default_tolerance")]
    pub tolerance: f64,
}

fn default_max_steps() -> u32 {
    8
}

fn default_tolerance() -> f64 {
    0.05
}

/// `[serving]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServingConfig {
    /// Server root (`http://127.0.0.1:8000`) or its `/v1` URL; the endpoint path is appended.
    pub base_url: String,
    #[serde(default)]
    pub endpoint: Endpoint,
    /// Stream responses (SSE); TTFT, TPOT and ITL need it.
    #[serde(default = "yes")]
    pub stream: bool,
    /// Name of the environment variable holding the API key (sent as a Bearer token). The
    /// key itself is never written anywhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// Measured requests.
    #[serde(default = "default_num_prompts")]
    pub num_prompts: u64,
    /// Requests sent and awaited before the measured window (not in any statistic).
    #[serde(default = "default_warmup")]
    pub warmup_requests: u64,
    /// Per-request timeout, seconds (connect to the end of the response).
    #[serde(default = "default_timeout")]
    pub timeout_s: f64,
    #[serde(default)]
    pub arrival: Arrival,
    /// Linear ramp of the rate from `ramp_up_start_rate` to `request_rate` over this many
    /// seconds at the start of the window (0 = none).
    #[serde(default)]
    pub ramp_up_s: f64,
    #[serde(default)]
    pub ramp_up_start_rate: f64,
    /// Synthetic prompt/output lengths vary uniformly in [len (1 - r), len (1 + r)].
    #[serde(default)]
    pub range_ratio: f64,
    /// JSONL file of prompts (`{"prompt": ...}` or `{"messages": [...]}`, optional
    /// `"output_len"`), used instead of synthetic prompts; relative to the current directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
    /// Send `ignore_eos: true` (vLLM/llama.cpp extension) so every request generates its
    /// `max_tokens`; turn off for servers that reject unknown fields.
    #[serde(default = "yes")]
    pub ignore_eos: bool,
    #[serde(default, skip_serializing_if = "Slo::is_empty")]
    pub slo: Slo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<SearchConfig>,
    /// Raw samples kept per latency metric (statistics always use every sample).
    #[serde(default = "default_max_samples")]
    pub max_samples: usize,
    /// Load-generator threads (0 = one per core).
    #[serde(default)]
    pub workers: usize,
    // --- workloads and record keeping (serving/extras.rs); defaults are not serialized, so
    // suites that do not use them keep their run ids ---
    /// How `dataset` is read.
    #[serde(default, skip_serializing_if = "is_jsonl")]
    pub dataset_format: DatasetFormat,
    /// Every turn of a conversation is a request carrying the turns before it (chat endpoint,
    /// a dataset of conversations); a turn is sent once the previous one has finished.
    #[serde(default, skip_serializing_if = "is_false")]
    pub multi_turn: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<PrefixConfig>,
    /// Every dataset request asks for this many output tokens, whatever the line's
    /// `output_len` or the ShareGPT reply's length (vLLM's `--sharegpt-output-len`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset_output_len: Option<u64>,
    /// Tokenizer for token-accurate prompt lengths: a `tokenizer.json`, a `.gguf` file, a
    /// directory holding `tokenizer.json`, or a Hugging Face id found in the local cache.
    /// Unset: the model name is tried the same way; without a tokenizer lengths are words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokenizer: Option<String>,
    /// Extra HTTP headers: header name -> the *name* of the environment variable holding its
    /// value (values may be credentials: they are never written).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Fields merged into every request body (sampling parameters and the like); they
    /// override effbench's own defaults (`temperature`, `ignore_eos`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_body: Option<serde_json::Map<String, serde_json::Value>>,
    /// Before warm-up, retry a test request for up to this many seconds until the server
    /// answers it (0 = no check).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub ready_check_timeout_s: f64,
    /// The run fails when more than this share of its measured requests failed (%).
    #[serde(
        default = "default_max_failed_pct",
        skip_serializing_if = "is_default_max_failed_pct"
    )]
    pub max_failed_pct: f64,
    /// One JSON line per measured request in `<run id>.requests.jsonl` beside the result.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub request_records: bool,
    /// At most this many record lines (the rest are counted, not written).
    #[serde(
        default = "default_max_request_records",
        skip_serializing_if = "is_default_max_request_records"
    )]
    pub max_request_records: u64,
    /// Scrape the server's Prometheus `/metrics` this often during the window (s; 0 = never).
    #[serde(
        default = "default_metrics_interval_s",
        skip_serializing_if = "is_default_metrics_interval_s"
    )]
    pub metrics_interval_s: f64,
}

fn yes() -> bool {
    true
}

fn default_num_prompts() -> u64 {
    100
}

fn default_warmup() -> u64 {
    2
}

fn default_timeout() -> f64 {
    600.0
}

fn default_max_samples() -> usize {
    crate::trace::MAX_STORED_SAMPLES
}

/// Inter-arrival distribution.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Arrival {
    /// Exponential gaps (a Poisson process).
    #[default]
    Poisson,
    /// Equal gaps of 1/rate.
    Constant,
    /// Gamma gaps with shape = the `burstiness` axis and mean 1/rate.
    Gamma,
}

impl Arrival {
    pub fn name(self) -> &'static str {
        match self {
            Arrival::Poisson => "poisson",
            Arrival::Constant => "constant",
            Arrival::Gamma => "gamma",
        }
    }
}

/// Format of `[serving] dataset`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum DatasetFormat {
    /// JSON lines of `{"prompt": ...}` or `{"messages": [...]}`, optional `"output_len"`
    /// (vLLM's `custom` dataset is the `prompt`-only case).
    #[default]
    Jsonl,
    /// A JSON array of `{"conversations": [{"from": "human"|"gpt", "value": ...}, ...]}`
    /// (vLLM's `sharegpt`): the first human turn is the prompt, the first reply's length the
    /// output length.
    Sharegpt,
}

impl DatasetFormat {
    pub fn name(self) -> &'static str {
        match self {
            DatasetFormat::Jsonl => "jsonl",
            DatasetFormat::Sharegpt => "sharegpt",
        }
    }
}

/// `[serving.prefix]`: groups of prompts that share a prefix (to measure prefix caching).
/// Request `i` belongs to group `i % groups`; its prompt is the group's prefix of
/// `prefix_len` tokens followed by its own `suffix_len` tokens (vLLM's `prefix_repetition`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrefixConfig {
    /// Number of distinct prefixes.
    pub groups: u64,
    /// Tokens (words without a tokenizer) of each shared prefix.
    pub prefix_len: u64,
    /// Tokens of each request's own part; 0 = the `prompt_len` axis.
    #[serde(default)]
    pub suffix_len: u64,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_true(b: &bool) -> bool {
    *b
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

fn is_jsonl(f: &DatasetFormat) -> bool {
    *f == DatasetFormat::Jsonl
}

/// Default share of failed requests above which a run fails (%).
pub const DEFAULT_MAX_FAILED_PCT: f64 = 5.0;

/// Default cap on per-request record lines.
pub const DEFAULT_MAX_REQUEST_RECORDS: u64 = 1_000_000;

/// Default Prometheus scrape period (s).
pub const DEFAULT_METRICS_INTERVAL_S: f64 = 1.0;

fn default_max_failed_pct() -> f64 {
    DEFAULT_MAX_FAILED_PCT
}

fn is_default_max_failed_pct(x: &f64) -> bool {
    *x == DEFAULT_MAX_FAILED_PCT
}

fn default_max_request_records() -> u64 {
    DEFAULT_MAX_REQUEST_RECORDS
}

fn is_default_max_request_records(x: &u64) -> bool {
    *x == DEFAULT_MAX_REQUEST_RECORDS
}

fn default_metrics_interval_s() -> f64 {
    DEFAULT_METRICS_INTERVAL_S
}

fn is_default_metrics_interval_s(x: &f64) -> bool {
    *x == DEFAULT_METRICS_INTERVAL_S
}

/// Latency objectives; a request is *good* when it succeeded and meets every one set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Slo {
    /// Time to first token, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_ms: Option<f64>,
    /// Time per output token, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpot_ms: Option<f64>,
    /// End-to-end latency, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e2el_ms: Option<f64>,
}
