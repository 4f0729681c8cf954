//! The `[serving]` suite table: where the server is, what to send, how requests arrive
//! (besides the `request_rate`, `max_concurrency` and `burstiness` axes), the SLOs and the
//! optional server search. Resolved unchanged into every run of the suite and part of the
//! run id. Errors name the field.

use super::extras;

pub use crate::axes::{MAX_REQUEST_RATE, MIN_REQUEST_RATE};
use crate::records::ServingConfig;

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
    use crate::records::{Endpoint, SearchConfig};

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
