//! The `[serving]` suite table: where the server is, what to send, how requests arrive
//! (besides the `request_rate`, `max_concurrency` and `burstiness` axes), the SLOs and the
//! optional server search. Resolved unchanged into every run of the suite and part of the
//! run id. Errors name the field.

use super::arrivals::Arrival;
use super::extras::{self, DatasetFormat, PrefixConfig};
use super::record::Slo;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub use crate::axes::{MAX_REQUEST_RATE, MIN_REQUEST_RATE};

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
    #[serde(default, skip_serializing_if = "extras::is_jsonl")]
    pub dataset_format: DatasetFormat,
    /// Every turn of a conversation is a request carrying the turns before it (chat endpoint,
    /// a dataset of conversations); a turn is sent once the previous one has finished.
    #[serde(default, skip_serializing_if = "extras::is_false")]
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
    #[serde(default, skip_serializing_if = "extras::is_zero")]
    pub ready_check_timeout_s: f64,
    /// The run fails when more than this share of its measured requests failed (%).
    #[serde(
        default = "extras::default_max_failed_pct",
        skip_serializing_if = "extras::is_default_max_failed_pct"
    )]
    pub max_failed_pct: f64,
    /// One JSON line per measured request in `<run id>.requests.jsonl` beside the result.
    #[serde(default = "yes", skip_serializing_if = "extras::is_true")]
    pub request_records: bool,
    /// At most this many record lines (the rest are counted, not written).
    #[serde(
        default = "extras::default_max_request_records",
        skip_serializing_if = "extras::is_default_max_request_records"
    )]
    pub max_request_records: u64,
    /// Scrape the server's Prometheus `/metrics` this often during the window (s; 0 = never).
    #[serde(
        default = "extras::default_metrics_interval_s",
        skip_serializing_if = "extras::is_default_metrics_interval_s"
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
        extras::check(self)
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

#[cfg(test)]
mod tests {
    use super::*;

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
