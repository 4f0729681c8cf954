//! The suite's `[serving]` table ([`ServingConfig`]): where the server is, what to send, how
//! requests arrive, the SLOs and the optional server search. Resolved unchanged into every run
//! of the suite and part of the run id. Checked here (errors name the field); the load test
//! itself is `effbench_harness::serving`.

use crate::axes::{MAX_REQUEST_RATE, MIN_REQUEST_RATE};
use crate::metric::MetricId;
use crate::trace::TraceLatencies;
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
    // --- workloads and record keeping (below); defaults are not serialized, so
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

impl ServingConfig {
    /// A config with defaults for everything but the URL.
    pub fn new(base_url: &str) -> ServingConfig {
        toml::from_str(&format!("base_url = {base_url:?}")).expect("defaults parse")
    }

    /// Range checks; errors name the `[serving]` field.
    pub fn check(&self) -> Result<(), String> {
        let url = self.base_url.trim();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!(
                "[serving] base_url = {} must start with http:// or https://",
                crate::escape::quoted(&crate::secrets::redact_url(&self.base_url))
            ));
        }
        if self.num_prompts == 0 {
            return Err("[serving] num_prompts must be at least 1".into());
        }
        if !(self.timeout_s.is_finite() && self.timeout_s > 0.0) {
            return Err(format!(
                "[serving] timeout_s = {} must be a number > 0",
                self.timeout_s
            ));
        }
        for (name, v) in [
            ("ramp_up_s", self.ramp_up_s),
            ("ramp_up_start_rate", self.ramp_up_start_rate),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!("[serving] {name} = {v} must be a number >= 0"));
            }
        }
        if !(0.0..1.0).contains(&self.range_ratio) {
            return Err(format!(
                "[serving] range_ratio = {} must be in [0, 1)",
                self.range_ratio
            ));
        }
        if self.max_samples == 0 {
            return Err("[serving] max_samples must be at least 1".into());
        }
        use crate::limits::{check_f64, check_int, MAX_REQUESTS, MAX_SECONDS};
        check_int(
            "[serving] num_prompts",
            self.num_prompts.into(),
            1,
            MAX_REQUESTS.into(),
        )?;
        check_int(
            "[serving] warmup_requests",
            self.warmup_requests.into(),
            0,
            MAX_REQUESTS.into(),
        )?;
        check_f64("[serving] timeout_s", self.timeout_s, 0.0, 86_400.0, " s")?;
        check_f64(
            "[serving] ramp_up_s",
            self.ramp_up_s,
            0.0,
            MAX_SECONDS,
            " s",
        )?;
        check_f64(
            "[serving] ramp_up_start_rate",
            self.ramp_up_start_rate,
            0.0,
            MAX_REQUEST_RATE,
            " req/s",
        )?;
        check_int(
            "[serving] max_samples",
            self.max_samples as i128,
            1,
            100_000_000,
        )?;
        check_int("[serving] workers", self.workers as i128, 0, 1024)?;
        crate::secrets::check_url("[serving] base_url", &self.base_url)?;
        if let Some(env) = &self.api_key_env {
            crate::secrets::check_env_name("[serving] api_key_env", env)?;
        }
        self.slo.check("[serving.slo]")?;
        if !self.stream && (self.slo.ttft_ms.is_some() || self.slo.tpot_ms.is_some()) {
            return Err(
                "[serving.slo] ttft_ms/tpot_ms need stream = true (a non-streamed response has no first-token time)"
                    .into(),
            );
        }
        if let Some(s) = &self.search {
            if !(s.low.is_finite() && s.low > 0.0 && s.high.is_finite() && s.high > s.low) {
                return Err(format!(
                    "[serving.search] needs 0 < low < high (finite), got low = {}, high = {}",
                    s.low, s.high
                ));
            }
            if s.max_steps < 2 {
                return Err("[serving.search] max_steps must be at least 2".into());
            }
            check_f64(
                "[serving.search] low",
                s.low,
                MIN_REQUEST_RATE,
                MAX_REQUEST_RATE,
                " req/s",
            )?;
            check_f64(
                "[serving.search] high",
                s.high,
                MIN_REQUEST_RATE,
                MAX_REQUEST_RATE,
                " req/s",
            )?;
            check_int("[serving.search] max_steps", s.max_steps.into(), 2, 100)?;
            check_f64("[serving.search] tolerance", s.tolerance, 0.0, 1.0, "")?;
            if !(s.tolerance.is_finite() && s.tolerance > 0.0) {
                return Err(format!(
                    "[serving.search] tolerance = {} must be a number > 0",
                    s.tolerance
                ));
            }
            if self.slo.is_empty() {
                return Err(
                    "[serving.search] needs at least one objective in [serving.slo] (ttft_ms, tpot_ms, e2el_ms)"
                        .into(),
                );
            }
        }
        check_extras(self)
    }

    /// The full endpoint URL: `base_url` (with or without a trailing `/v1`) + `/v1` + path.
    pub fn url(&self) -> String {
        format!("{}/v1{}", self.root_url(), self.endpoint.path())
    }

    /// `.../v1/models`.
    pub fn models_url(&self) -> String {
        format!("{}/v1/models", self.root_url())
    }

    /// The server root: `base_url` without a trailing `/` or `/v1` (`/metrics`, `/health`
    /// live here).
    pub fn root_url(&self) -> String {
        let base = self.base_url.trim().trim_end_matches('/');
        base.strip_suffix("/v1").unwrap_or(base).to_string()
    }
}

/// Whether `name` is a valid HTTP header name (RFC 9110 token characters).
pub fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Body fields that come from the workload; `extra_body` may set any other.
const OWN_FIELDS: [&str; 3] = ["model", "prompt", "messages"];

/// Range checks of the workload and record-keeping fields; errors name the field.
fn check_extras(c: &ServingConfig) -> Result<(), String> {
    let dataset = c.dataset.is_some();
    let chat = c.endpoint == Endpoint::Chat;
    if c.dataset_format == DatasetFormat::Sharegpt && !dataset {
        return Err("[serving] dataset_format = \"sharegpt\" needs [serving] dataset".into());
    }
    if c.multi_turn {
        if !dataset {
            return Err("[serving] multi_turn needs a dataset of conversations".into());
        }
        if !chat {
            return Err("[serving] multi_turn needs endpoint = \"chat\"".into());
        }
    }
    if c.dataset_output_len == Some(0) {
        return Err("[serving] dataset_output_len must be at least 1".into());
    }
    if let Some(p) = &c.prefix {
        if dataset {
            return Err("[serving.prefix] and [serving] dataset exclude each other".into());
        }
        if p.groups == 0 || p.prefix_len == 0 {
            return Err("[serving.prefix] groups and prefix_len must be at least 1".into());
        }
    }
    for (name, env) in &c.headers {
        if !is_header_name(name) {
            return Err(format!(
                "[serving.headers] {name:?} is not a valid HTTP header name"
            ));
        }
        if env.is_empty() || env.contains('=') {
            return Err(format!(
                "[serving.headers] {name} = {env:?} must name an environment variable"
            ));
        }
    }
    if let Some(b) = &c.extra_body {
        if let Some(k) = OWN_FIELDS.iter().find(|k| b.contains_key(**k)) {
            return Err(format!(
                "[serving.extra_body] must not set \"{k}\" (effbench sends it from the workload)"
            ));
        }
    }
    if !(c.ready_check_timeout_s.is_finite() && c.ready_check_timeout_s >= 0.0) {
        return Err(format!(
            "[serving] ready_check_timeout_s = {} must be a number >= 0",
            c.ready_check_timeout_s
        ));
    }
    if !(0.0..=100.0).contains(&c.max_failed_pct) {
        return Err(format!(
            "[serving] max_failed_pct = {} must be in [0, 100]",
            c.max_failed_pct
        ));
    }
    if !(c.metrics_interval_s.is_finite() && c.metrics_interval_s >= 0.0) {
        return Err(format!(
            "[serving] metrics_interval_s = {} must be a number >= 0",
            c.metrics_interval_s
        ));
    }
    Ok(())
}

impl Slo {
    pub fn is_empty(&self) -> bool {
        self.ttft_ms.is_none() && self.tpot_ms.is_none() && self.e2el_ms.is_none()
    }

    /// `(name, objective ms, metric)` of each objective set.
    pub fn objectives(&self) -> Vec<(&'static str, f64, MetricId)> {
        [
            ("ttft", self.ttft_ms, MetricId::Ttft),
            ("tpot", self.tpot_ms, MetricId::Tpot),
            ("e2el", self.e2el_ms, MetricId::E2eLatency),
        ]
        .into_iter()
        .filter_map(|(n, v, m)| v.map(|v| (n, v, m)))
        .collect()
    }

    /// Whether a request with these latencies meets every objective. A request with a single
    /// output token has no TPOT and meets any TPOT objective (as in vLLM's benchmark).
    pub fn met_by(&self, ok: bool, l: &TraceLatencies) -> bool {
        let within = |objective: Option<f64>, value: Option<f64>, required: bool| match objective {
            None => true,
            Some(o) => match value {
                Some(v) => v <= o,
                None => !required,
            },
        };
        ok && within(self.ttft_ms, l.ttft, true)
            && within(self.tpot_ms, l.tpot, false)
            && within(self.e2el_ms, l.e2e, true)
    }

    /// `ttft<=200ms, tpot<=50ms` for notes.
    pub fn describe(&self) -> String {
        self.objectives()
            .iter()
            .map(|(n, v, _)| format!("{n}<={v}ms"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Checks values; errors name the field under `prefix` (e.g. `[serving.slo]`).
    pub fn check(&self, prefix: &str) -> Result<(), String> {
        for (name, v, _) in self.objectives() {
            if !(v.is_finite() && v > 0.0) {
                return Err(format!("{prefix} {name}_ms = {v} must be a number > 0"));
            }
            crate::limits::check_f64(
                &format!("{prefix} {name}_ms"),
                v,
                0.0,
                crate::limits::MAX_SECONDS * 1e3,
                " ms",
            )?;
        }
        Ok(())
    }

    /// Parses the CLI form `ttft=200ms,tpot=50ms,e2el=2s` (units ms or s; bare numbers are ms).
    pub fn parse_cli(text: &str) -> Result<Slo, String> {
        let mut slo = Slo::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("--slo '{part}' is not name=value (e.g. ttft=200ms)"))?;
            let v = v.trim();
            let (num, scale) = if let Some(n) = v.strip_suffix("ms") {
                (n, 1.0)
            } else if let Some(n) = v.strip_suffix('s') {
                (n, 1e3)
            } else {
                (v, 1.0)
            };
            let ms = num
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && *x > 0.0)
                .ok_or_else(|| {
                    format!("--slo {k}={v}: expected a duration > 0 like 200ms or 2s")
                })?
                * scale;
            match k.trim() {
                "ttft" => slo.ttft_ms = Some(ms),
                "tpot" => slo.tpot_ms = Some(ms),
                "e2el" => slo.e2el_ms = Some(ms),
                other => {
                    return Err(format!(
                        "--slo: unknown objective '{other}' (ttft, tpot, e2el)"
                    ))
                }
            }
        }
        Ok(slo)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Endpoint, SearchConfig};

    #[test]
    fn urls_with_and_without_v1() {
        let mut c = ServingConfig::new("http://127.0.0.1:8000");
        assert_eq!(c.url(), "http://127.0.0.1:8000/v1/completions");
        c.base_url = "http://127.0.0.1:8000/v1/".into();
        c.endpoint = Endpoint::Chat;
        assert_eq!(c.url(), "http://127.0.0.1:8000/v1/chat/completions");
        assert_eq!(c.models_url(), "http://127.0.0.1:8000/v1/models");
    }

    #[test]
    fn defaults_and_checks() {
        let c = ServingConfig::new("http://localhost:1");
        assert!(c.stream && c.ignore_eos && c.num_prompts == 100);
        assert!(c.check().is_ok());
        let bad = |f: &dyn Fn(&mut ServingConfig)| {
            let mut c = ServingConfig::new("http://localhost:1");
            f(&mut c);
            c.check().unwrap_err()
        };
        assert!(bad(&|c| c.base_url = "localhost:1".into()).contains("base_url"));
        assert!(bad(&|c| c.timeout_s = 0.0).contains("timeout_s"));
        assert!(bad(&|c| c.range_ratio = 1.0).contains("range_ratio"));
        assert!(bad(&|c| {
            c.stream = false;
            c.slo.ttft_ms = Some(1.0)
        })
        .contains("stream = true"));
        assert!(bad(&|c| {
            c.search = Some(SearchConfig {
                low: 1.0,
                high: 4.0,
                max_steps: 4,
                tolerance: 0.1,
            })
        })
        .contains("[serving.slo]"));
        assert!(bad(&|c| c.api_key_env = Some("A=B".into())).contains("api_key_env"));
        assert!(
            bad(&|c| c.api_key_env = Some("sk-0123456789abcdefghijk".into()))
                .contains("MY_API_KEY")
        );
        let e = bad(&|c| c.base_url = "http://me:hunter2hunter2@h:1".into());
        assert!(e.contains("credentials") && !e.contains("hunter2"), "{e}");
    }
}

#[cfg(test)]
mod workload_tests {
    use super::*;
    use crate::PrefixConfig;

    #[test]
    fn header_names() {
        assert!(is_header_name("X-Request-Id"));
        assert!(is_header_name("authorization"));
        assert!(!is_header_name("bad name"));
        assert!(!is_header_name("a:b"));
        assert!(!is_header_name(""));
    }

    #[test]
    fn checks_name_the_field() {
        let bad = |f: &dyn Fn(&mut ServingConfig)| {
            let mut c = ServingConfig::new("http://localhost:1");
            f(&mut c);
            c.check().unwrap_err()
        };
        let chat = |c: &mut ServingConfig| c.endpoint = Endpoint::Chat;
        let data = |c: &mut ServingConfig| c.dataset = Some("d.json".into());
        assert!(bad(&|c| {
            data(c);
            c.multi_turn = true
        })
        .contains("endpoint = \"chat\""));
        assert!(bad(&|c| {
            chat(c);
            c.multi_turn = true
        })
        .contains("dataset"));
        assert!(bad(&|c| c.dataset_format = DatasetFormat::Sharegpt)
            .contains("needs [serving] dataset"));
        assert!(bad(&|c| {
            c.headers.insert("X-Key".into(), "A=B".into());
        })
        .contains("[serving.headers] X-Key"));
        assert!(bad(&|c| {
            c.headers.insert("X Key".into(), "K".into());
        })
        .contains("not a valid HTTP header name"));
        assert!(bad(&|c| {
            let mut m = serde_json::Map::new();
            m.insert("prompt".into(), serde_json::json!("x"));
            c.extra_body = Some(m);
        })
        .contains("\"prompt\""));
        assert!(bad(&|c| c.max_failed_pct = 101.0).contains("max_failed_pct"));
        assert!(bad(&|c| c.ready_check_timeout_s = -1.0).contains("ready_check_timeout_s"));
        assert!(bad(&|c| {
            c.prefix = Some(PrefixConfig {
                groups: 0,
                prefix_len: 4,
                suffix_len: 0,
            })
        })
        .contains("[serving.prefix]"));
        assert!(bad(&|c| {
            data(c);
            c.prefix = Some(PrefixConfig {
                groups: 2,
                prefix_len: 4,
                suffix_len: 0,
            })
        })
        .contains("exclude each other"));
    }

    #[test]
    fn defaults_are_not_serialized() {
        // Older suites keep their run ids: none of these fields appears at its default.
        let v = serde_json::to_value(ServingConfig::new("http://localhost:1")).unwrap();
        for k in [
            "dataset_format",
            "multi_turn",
            "prefix",
            "dataset_output_len",
            "tokenizer",
            "headers",
            "extra_body",
            "ready_check_timeout_s",
            "max_failed_pct",
            "request_records",
            "max_request_records",
            "metrics_interval_s",
        ] {
            assert!(v.get(k).is_none(), "{k} in {v}");
        }
    }
}
