//! The `[serving]` settings that shape *what* a load test sends beyond synthetic prompts
//! (dataset formats, the shared-prefix workload, multi-turn conversations, the tokenizer that
//! makes prompt lengths token-accurate, extra headers and body fields) and *what it keeps*
//! (per-request records, the server's Prometheus series, the failure threshold). Each has a
//! default that leaves older suites and their run ids unchanged (defaults are not serialized).

use crate::records::DatasetFormat;
use crate::records::{Endpoint, ServingConfig};

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
pub(super) fn check(c: &ServingConfig) -> Result<(), String> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::PrefixConfig;

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
