//! The `openai-http` backend: a load generator for OpenAI-compatible servers (vLLM, TGI,
//! llama.cpp's server, Ollama, `effbench serve` ...), scenario `serving`. One run is one load
//! test (see [`loadgen`]): the `[serving]` table says where and what, the axes
//! `request_rate`, `max_concurrency`, `burstiness`, `prompt_len` and `gen_len` say how much.
//!
//! - [`client`]: one request, SSE parsing, token counts, error kinds, the stale-connection
//!   retry.
//! - [`sse`]: the incremental event-stream parser.
//! - [`workload`]: request bodies from synthetic, shared-prefix or dataset prompts;
//!   [`datasets`] reads JSON lines and ShareGPT, [`prompts`] makes token-accurate text.
//! - [`loadgen`]: schedule keeping, concurrency, ready check, warm-up, aggregation, records.
//! - [`scrape`]: the server's Prometheus metrics during the window.

pub mod client;
pub mod datasets;
pub mod loadgen;
pub mod prompts;
pub mod scrape;
pub mod sse;
pub mod workload;

use anyhow::{bail, Context, Result};
use effbench_harness::axes::AxisValue;
use effbench_harness::backend::{IterationCtx, Sample, Window, WindowReport};
use effbench_harness::limits;
use effbench_harness::records::ModelFormat;
use effbench_harness::records::{Arrival, ServingConfig};
use effbench_harness::serving::{Ramp, ScheduleSpec};
use effbench_harness::{Backend, Capabilities, ModelInfo, RunSpec, Scenario, Session};
use std::time::Duration;

/// The backend's registry name.
pub const NAME: &str = "openai-http";

/// The OpenAI-compatible HTTP load generator.
#[derive(Debug, Default, Clone, Copy)]
pub struct OpenAiHttp;

fn serving(spec: &RunSpec) -> std::result::Result<&ServingConfig, String> {
    spec.serving
        .as_ref()
        .ok_or_else(|| "the suite has no [serving] table (base_url, ...)".to_string())
}

/// `None` for `inf`.
fn rate(spec: &RunSpec) -> std::result::Result<Option<f64>, String> {
    match spec.param("request_rate") {
        None => Ok(None),
        Some(v) if v.as_str() == Some("inf") => Ok(None),
        Some(v) => v
            .as_f64()
            .filter(|r| r.is_finite() && *r > 0.0)
            .map(Some)
            .ok_or_else(|| format!("request_rate {v} is not a number > 0 or \"inf\"")),
    }
}

impl Backend for OpenAiHttp {
    fn describe(&self) -> Capabilities {
        Capabilities {
            name: NAME,
            description: "load generator for OpenAI-compatible servers (/v1/completions, /v1/chat/completions; SSE)",
            scenarios: vec![Scenario::Serving],
            dtypes: vec![],
            devices: vec!["cpu"],
            formats: vec![ModelFormat::Remote, ModelFormat::Hf, ModelFormat::Gguf],
            axes: vec![
                ("model", AxisValue::from("default")),
                ("request_rate", AxisValue::from("inf")),
                ("max_concurrency", AxisValue::Int(0)),
                ("burstiness", AxisValue::Float(1.0)),
                ("prompt_len", AxisValue::Int(128)),
                ("gen_len", AxisValue::Int(128)),
            ],
        }
    }

    fn validate(&self, spec: &RunSpec) -> std::result::Result<(), String> {
        let s = serving(spec)?;
        s.check()?;
        let rate = rate(spec)?;
        let burst = spec
            .param("burstiness")
            .and_then(AxisValue::as_f64)
            .unwrap_or(1.0);
        if burst != 1.0 && s.arrival != Arrival::Gamma {
            return Err(format!(
                "burstiness {burst} needs [serving] arrival = \"gamma\" (arrival is \"{}\")",
                s.arrival.name()
            ));
        }
        if rate.is_none() && s.ramp_up_s > 0.0 {
            return Err("[serving] ramp_up_s needs a finite request_rate".into());
        }
        if let Some(env) = &s.api_key_env {
            if std::env::var_os(env).is_none() {
                return Err(format!(
                    "[serving] api_key_env = \"{env}\": the environment variable {env} is not set"
                ));
            }
        }
        headers(s).map_err(|e| format!("{e:#}"))?;
        if let Some(t) = &s.tokenizer {
            prompts::locate(t)
                .ok_or_else(|| format!("[serving] tokenizer: {}", prompts::not_found(t)))?;
        }
        if let Some(d) = &s.dataset {
            // Read with word counts here; the run counts with its tokenizer.
            workload(spec, s, prompts::PromptMaker::words("validation"))
                .map_err(|e| format!("[serving] dataset = \"{d}\": {e:#}"))?;
        }
        Ok(())
    }

    fn load(&self, spec: &RunSpec) -> Result<Box<dyn Session>> {
        self.validate(spec).map_err(anyhow::Error::msg)?;
        let s = serving(spec).map_err(anyhow::Error::msg)?.clone();
        let api_key = match &s.api_key_env {
            Some(env) => {
                let k = std::env::var(env)
                    .with_context(|| format!("environment variable {env} (api_key_env)"))?;
                // Scrubbed from everything written, should a server echo it back.
                effbench_harness::secrets::register(&k);
                Some(k)
            }
            None => None,
        };
        let workers = if s.workers > 0 {
            s.workers
        } else {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name("effbench-loadgen")
            .enable_all()
            .build()
            .context("cannot start the load generator's runtime")?;
        let url = s.url();
        // Idle pooled connections are dropped after 3 s, before common servers' keep-alive
        // timeouts (llama.cpp's and uvicorn's 5 s) close them under a request in flight.
        let builder = || {
            let b = reqwest::Client::builder()
                .tcp_nodelay(true)
                .pool_idle_timeout(Duration::from_secs(3))
                .connect_timeout(limits::seconds_clamped(s.timeout_s.min(30.0)));
            if is_loopback(&url) {
                b.no_proxy()
            } else {
                b
            }
        };
        let client = builder().build().context("cannot build the HTTP client")?;
        // The one retry after a stale kept-alive connection goes through a client that keeps
        // no idle connection, so it always opens a fresh one.
        let fresh = builder()
            .pool_max_idle_per_host(0)
            .build()
            .context("cannot build the HTTP client")?;
        let model = spec.model().reference;
        let info = rt.block_on(model_info(&client, &s, &model, api_key.as_deref()));
        let rate = rate(spec).map_err(anyhow::Error::msg)?;
        let maker = prompts::prompt_maker(s.tokenizer.as_deref(), &model)?;
        let records = match (&spec.out_dir, s.request_records) {
            (Some(dir), true) => Some((
                dir.join(format!(
                    "{}.{}",
                    spec.id,
                    effbench_harness::serving::lines::SUFFIX
                )),
                s.max_request_records,
            )),
            _ => None,
        };
        let test = loadgen::LoadTest {
            target: client::Target {
                url,
                api_key,
                stream: s.stream,
                timeout: limits::seconds("[serving] timeout_s", s.timeout_s)
                    .map_err(anyhow::Error::msg)?,
                headers: headers(&s)?,
                fresh: Some(fresh),
            },
            workload: workload(spec, &s, maker)?,
            schedule: ScheduleSpec {
                rate,
                arrival: s.arrival,
                burstiness: spec
                    .param("burstiness")
                    .and_then(AxisValue::as_f64)
                    .unwrap_or(1.0),
                ramp: (s.ramp_up_s > 0.0).then_some(Ramp {
                    start_rate: s.ramp_up_start_rate,
                    ramp_s: s.ramp_up_s,
                }),
                seed: spec.seed ^ effbench_harness::metric::name_hash("arrivals"),
            },
            max_concurrency: spec.usize_param("max_concurrency").unwrap_or(0),
            num_prompts: s.num_prompts,
            warmup_requests: s.warmup_requests,
            slo: s.slo.clone(),
            max_samples: s.max_samples,
            seed: spec.seed,
            max_failed_pct: s.max_failed_pct,
            records,
            scrape: (s.metrics_interval_s > 0.0).then(|| {
                (
                    format!("{}/metrics", s.root_url()),
                    Duration::from_secs_f64(s.metrics_interval_s),
                )
            }),
            ready_check: Duration::from_secs_f64(s.ready_check_timeout_s),
        };
        Ok(Box::new(HttpSession {
            info,
            rt,
            client,
            test,
            workers,
        }))
    }
}

/// The extra headers of `[serving.headers]`, their values read from the environment.
fn headers(
    s: &ServingConfig,
) -> Result<Vec<(reqwest::header::HeaderName, reqwest::header::HeaderValue)>> {
    let mut out = Vec::new();
    for (name, env) in &s.headers {
        let value = std::env::var(env).map_err(|_| {
            anyhow::anyhow!(
                "[serving.headers] {name} = \"{env}\": the environment variable {env} is not set"
            )
        })?;
        let n = reqwest::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| anyhow::anyhow!("[serving.headers] {name:?} is not a header name"))?;
        let mut v = reqwest::header::HeaderValue::from_str(&value).map_err(|_| {
            anyhow::anyhow!(
                "[serving.headers] {name}: the value in {env} is not a valid header value"
            )
        })?;
        v.set_sensitive(true);
        out.push((n, v));
    }
    Ok(out)
}

/// The workload of a run.
fn workload(
    spec: &RunSpec,
    s: &ServingConfig,
    maker: prompts::PromptMaker,
) -> Result<workload::Workload> {
    let model = spec.model().reference;
    let gen_len = spec.usize_param("gen_len")? as u64;
    let prompt_len = spec.usize_param("prompt_len")? as u64;
    let w = match (&s.dataset, &s.prefix) {
        (Some(d), _) => workload::Workload::dataset(
            s.endpoint,
            &model,
            (s.stream, s.ignore_eos),
            spec.seed,
            &workload::DatasetSpec {
                path: std::path::Path::new(d),
                format: s.dataset_format,
                multi_turn: s.multi_turn,
                fixed_output_len: s.dataset_output_len,
                limit: (s.num_prompts + s.warmup_requests + 1) as usize,
            },
            gen_len,
            maker,
        )?,
        (None, Some(p)) => workload::Workload::prefix(
            s.endpoint,
            &model,
            s.stream,
            s.ignore_eos,
            spec.seed,
            p.clone(),
            (prompt_len, gen_len, s.range_ratio),
        )
        .with_maker(maker),
        (None, None) => workload::Workload::synthetic(
            s.endpoint,
            &model,
            s.stream,
            s.ignore_eos,
            spec.seed,
            (prompt_len, gen_len, s.range_ratio),
        )
        .with_maker(maker),
    };
    Ok(w.with_extra_body(s.extra_body.clone()))
}

/// The first model the server at `base_url` lists in `/v1/models` (vLLM's default when no
/// model is named).
pub fn first_served_model(base_url: &str) -> Result<String> {
    let cfg = ServingConfig::new(base_url);
    let url = cfg.models_url();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start a runtime")?;
    rt.block_on(async {
        let mut b = reqwest::Client::builder().timeout(Duration::from_secs(30));
        if is_loopback(&url) {
            b = b.no_proxy();
        }
        let r = b
            .build()?
            .get(&url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        let status = r.status();
        if !status.is_success() {
            bail!("GET {url}: HTTP {}", status.as_u16());
        }
        let v: serde_json::Value = r
            .json()
            .await
            .with_context(|| format!("GET {url}: not JSON"))?;
        v.pointer("/data/0/id")
            .and_then(|i| i.as_str())
            .map(str::to_string)
            .with_context(|| format!("GET {url}: no model listed"))
    })
}

/// Whether a URL's host is 127.0.0.0/8, ::1 or localhost.
pub fn is_loopback(url: &str) -> bool {
    let rest = url.split("://").nth(1).unwrap_or(url);
    let host_port = rest.split('/').next().unwrap_or("");
    let host_port = host_port.rsplit('@').next().unwrap_or(host_port);
    let host = if let Some(h) = host_port.strip_prefix('[') {
        h.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    host == "localhost"
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// What the server says about the model (`GET /v1/models`); `effbench serve` adds the
/// weights' facts under `"effbench"`. Never fails: an unreachable server shows in the run.
async fn model_info(
    client: &reqwest::Client,
    s: &ServingConfig,
    model: &str,
    api_key: Option<&str>,
) -> ModelInfo {
    let mut info = ModelInfo {
        name: model.to_string(),
        format: "remote".into(),
        arch: "unknown".into(),
        dtype: "unknown".into(),
        ..Default::default()
    };
    info.details
        .insert("base_url".into(), serde_json::json!(s.base_url));
    info.details
        .insert("endpoint".into(), serde_json::json!(s.url()));
    let mut req = client.get(s.models_url()).timeout(Duration::from_secs(10));
    if let Some(k) = api_key {
        req = req.bearer_auth(k);
    }
    let listed: Option<serde_json::Value> = match req.send().await {
        Ok(r) if r.status().is_success() => r.json().await.ok(),
        _ => None,
    };
    let entry = listed.as_ref().and_then(|v| {
        v.get("data")?
            .as_array()?
            .iter()
            .find(|m| m.get("id").and_then(|i| i.as_str()) == Some(model))
            .cloned()
    });
    match entry {
        None => {
            info.details.insert(
                "server_model".into(),
                serde_json::json!("not listed by /v1/models (or the server did not answer)"),
            );
        }
        Some(e) => {
            for key in ["owned_by", "max_model_len", "root"] {
                if let Some(v) = e.get(key) {
                    info.details.insert(key.into(), v.clone());
                }
            }
            if let Some(eb) = e.get("effbench") {
                let text = |k: &str| eb.get(k).and_then(|v| v.as_str()).map(str::to_string);
                let num = |k: &str| eb.get(k).and_then(|v| v.as_u64());
                info.format = text("format").unwrap_or(info.format);
                info.arch = text("arch").unwrap_or(info.arch);
                info.dtype = text("dtype").unwrap_or(info.dtype);
                info.params_total = num("params_total").unwrap_or(0);
                info.params_non_embedding = num("params_non_embedding").unwrap_or(0);
                info.file_bytes = num("file_bytes").unwrap_or(0);
                info.loaded_bytes = num("loaded_bytes").unwrap_or(0);
                info.sha256 = text("sha256");
                info.details
                    .insert("served_by".into(), serde_json::json!("effbench serve"));
            }
        }
    }
    info
}

/// A load test ready to run.
pub struct HttpSession {
    info: ModelInfo,
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
    test: loadgen::LoadTest,
    workers: usize,
}

impl Session for HttpSession {
    fn model_info(&self) -> &ModelInfo {
        &self.info
    }

    fn iteration(&mut self, _ctx: IterationCtx) -> Result<Sample> {
        bail!("the openai-http backend measures whole windows (run_window), not iterations")
    }

    fn run_window(&mut self, window: &mut dyn Window) -> Option<Result<WindowReport>> {
        let mut report = self.test.run(&self.rt, &self.client, window);
        let t = &self.test;
        report.notes.insert(
            0,
            format!(
                "load: {} measured + {} warm-up requests to {} ({}), {} arrivals at {}, max_concurrency {}, {} generator threads; {}",
                t.num_prompts,
                t.warmup_requests,
                t.target.url,
                if t.target.stream { "streaming" } else { "not streaming" },
                t.schedule.arrival.name(),
                t.schedule
                    .rate
                    .map_or("inf".to_string(), |r| format!("{r} req/s")),
                if t.max_concurrency == 0 {
                    "unlimited".to_string()
                } else {
                    t.max_concurrency.to_string()
                },
                self.workers,
                t.workload.describe(),
            ),
        );
        let mut at = 1;
        if t.workload.ignore_eos {
            report
                .notes
                .insert(at, "ignore_eos = true was sent with every request".into());
            at += 1;
        }
        for n in t.workload.notes() {
            report.notes.insert(at, n);
            at += 1;
        }
        if !t.target.headers.is_empty() {
            let names: Vec<&str> = t.target.headers.iter().map(|(k, _)| k.as_str()).collect();
            report.notes.insert(
                at,
                format!("extra headers sent (values withheld): {}", names.join(", ")),
            );
        }
        for n in report.notes.iter_mut() {
            *n = t.target.scrub(n);
        }
        if let Some(f) = report.failure.as_mut() {
            *f = t.target.scrub(f);
        }
        Some(Ok(report))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback("http://127.0.0.1:8000/v1"));
        assert!(is_loopback("http://localhost:1"));
        assert!(is_loopback("http://[::1]:80/x"));
        assert!(is_loopback("http://user:pw@127.0.0.2"));
        assert!(!is_loopback("https://api.openai.com/v1"));
        assert!(!is_loopback("http://10.0.0.1:8000"));
    }

    #[test]
    fn rates() {
        let mut spec: RunSpec = serde_json::from_value(serde_json::json!({
            "id": "x", "suite": "s", "scenario": "serving", "backend": NAME,
            "params": {"request_rate": "inf"}, "seed": 1, "measure": {}
        }))
        .unwrap();
        assert_eq!(rate(&spec), Ok(None));
        spec.params
            .insert("request_rate".into(), AxisValue::Float(2.5));
        assert_eq!(rate(&spec), Ok(Some(2.5)));
        assert!(serving(&spec).unwrap_err().contains("[serving]"));
    }
}
