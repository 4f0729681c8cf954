//! `effbench loadgen`: a load test against an OpenAI-compatible server from flags alone. It
//! takes `vllm bench serve`'s spellings too ([`super::loadgen_vllm`]), so a vLLM user's
//! command line runs unchanged. It writes the equivalent suite to `<out>/loadgen.toml` (so the
//! run can be repeated with `effbench run`) and runs it like `effbench run` does: one result
//! per request rate x max concurrency, the same tables and exit codes; `--save-result` also
//! writes each run as vLLM's result JSON.

use super::loadgen_vllm::{self as vllm, VllmArgs};
use super::run;
use anyhow::{bail, Context, Result};
use effbench_harness::records::Slo;
use std::path::PathBuf;
use std::process::ExitCode;
use toml::{Table, Value};

/// Load-test an OpenAI-compatible server (TTFT, ITL, TPOT, E2EL, goodput, throughput).
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  effbench serve &   # or any OpenAI-compatible server\n  \
effbench loadgen --base-url http://127.0.0.1:8000 --model default --num-prompts 50 --request-rate 4\n  \
effbench loadgen --base-url http://127.0.0.1:8000/v1 --model default --request-rate 1,2,4,inf \\\n      \
--max-concurrency 8 --slo ttft=500ms,tpot=50ms --out results/sweep\n  \
effbench loadgen --backend vllm --port 8080 --model m --dataset-name random --random-input-len 64 \\\n      \
--random-output-len 32 --num-prompts 50 --request-rate 4 --goodput ttft:500 tpot:50 --save-result\n\n\
Request rates are requests/s or `inf` (all at once); a comma list sweeps them. Poisson \
arrivals unless --burstiness is given (Gamma) or --arrival says otherwise. Prompt lengths are \
tokens when the model's tokenizer is found (--tokenizer, or --model as a path or cached \
Hugging Face id), else words. Unsupported `vllm bench serve` flags are refused by name."
)]
pub struct Args {
    /// Server root or its /v1 URL (loopback for tests; any host for users) [default:
    /// http://HOST:PORT].
    #[arg(long)]
    pub base_url: Option<String>,
    /// Server host when --base-url is not given.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Server port when --base-url is not given.
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// Model name sent in each request [default: the first model the server's /v1/models lists].
    #[arg(long)]
    pub model: Option<String>,
    /// Model name sent when it differs from --model (--model then only names the tokenizer).
    #[arg(long)]
    pub served_model_name: Option<String>,
    /// completions or chat (also vLLM's /v1/completions, /v1/chat/completions).
    #[arg(long)]
    pub endpoint: Option<String>,
    /// vLLM's endpoint type: vllm or openai (/v1/completions), openai-chat (/v1/chat/completions).
    #[arg(long)]
    pub backend: Option<String>,
    /// Measured requests per run.
    #[arg(long, default_value_t = 100)]
    pub num_prompts: u64,
    /// Requests sent and awaited before each run, not measured.
    #[arg(long, visible_alias = "num-warmups", default_value_t = 2)]
    pub warmup_requests: u64,
    /// Requests per second, or `inf`; a comma list sweeps.
    #[arg(long, default_value = "inf")]
    pub request_rate: String,
    /// Gamma shape of the inter-arrival gaps (1 = Poisson; < 1 burstier); implies --arrival gamma.
    #[arg(long)]
    pub burstiness: Option<f64>,
    /// poisson, constant or gamma.
    #[arg(long)]
    pub arrival: Option<String>,
    /// At most this many requests in flight (0 = unlimited); a comma list sweeps.
    #[arg(long, default_value = "0")]
    pub max_concurrency: String,
    /// Prompt length (tokens with a tokenizer, else words) [default: 128].
    #[arg(long, visible_alias = "random-input-len")]
    pub input_len: Option<u64>,
    /// max_tokens of each request [default: 128]; with a dataset, every request's.
    #[arg(long)]
    pub output_len: Option<u64>,
    /// max_tokens of synthetic requests (vLLM's spelling).
    #[arg(long)]
    pub random_output_len: Option<u64>,
    /// Lengths vary uniformly by +- this fraction.
    #[arg(long, visible_alias = "random-range-ratio", default_value_t = 0.0)]
    pub range_ratio: f64,
    /// A prefix of this many tokens shared by every synthetic prompt (before its own part).
    #[arg(long)]
    pub random_prefix_len: Option<u64>,
    /// random (synthetic), sharegpt (--dataset-path JSON), custom (--dataset-path JSONL) or
    /// prefix_repetition [default: random, or custom with --dataset].
    #[arg(long)]
    pub dataset_name: Option<String>,
    /// Prompt file: JSONL ({"prompt": ...} or {"messages": [...]}, optional "output_len"), or
    /// ShareGPT JSON with --dataset-name sharegpt.
    #[arg(long, visible_alias = "dataset-path")]
    pub dataset: Option<String>,
    /// Every conversation turn is a request carrying the turns before it (chat; a dataset).
    #[arg(long)]
    pub multi_turn: bool,
    /// Output tokens of every ShareGPT request (instead of the reply's length).
    #[arg(long)]
    pub sharegpt_output_len: Option<u64>,
    /// Output tokens of every custom (JSONL) request.
    #[arg(long)]
    pub custom_output_len: Option<u64>,
    /// prefix_repetition: tokens of each shared prefix [default: 256].
    #[arg(long)]
    pub prefix_repetition_prefix_len: Option<u64>,
    /// prefix_repetition: each request's own tokens after the prefix [default: 256].
    #[arg(long)]
    pub prefix_repetition_suffix_len: Option<u64>,
    /// prefix_repetition: number of distinct prefixes [default: 10].
    #[arg(long)]
    pub prefix_repetition_num_prefixes: Option<u64>,
    /// prefix_repetition: max_tokens [default: 128].
    #[arg(long)]
    pub prefix_repetition_output_len: Option<u64>,
    /// tokenizer.json, .gguf, a directory with tokenizer.json, or a cached Hugging Face id.
    #[arg(long)]
    pub tokenizer: Option<String>,
    /// Seed of prompts and arrivals.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Service-level objectives for goodput, e.g. ttft=200ms,tpot=50ms,e2el=2s.
    #[arg(long)]
    pub slo: Option<String>,
    /// vLLM's spelling of --slo: KEY:MS pairs, e.g. --goodput ttft:500 tpot:50.
    #[arg(long, num_args = 1.., value_name = "KEY:MS")]
    pub goodput: Vec<String>,
    /// Do not stream (no TTFT/ITL/TPOT; E2EL only).
    #[arg(long)]
    pub no_stream: bool,
    /// Send `ignore_eos: true` (the default; vLLM's spelling).
    #[arg(long, conflicts_with = "no_ignore_eos")]
    pub ignore_eos: bool,
    /// Do not send `ignore_eos: true` (for servers that reject unknown fields).
    #[arg(long)]
    pub no_ignore_eos: bool,
    /// Environment variable holding the API key (sent as a Bearer token, never written).
    #[arg(long)]
    pub api_key_env: Option<String>,
    /// Extra header NAME:VALUE (or NAME=VALUE), repeatable; values are never written.
    #[arg(long = "header", num_args = 1.., value_name = "NAME:VALUE")]
    pub headers: Vec<String>,
    /// JSON object merged into every request body, e.g. '{"top_k": 5}'.
    #[arg(long)]
    pub extra_body: Option<String>,
    /// Sampling parameter sent in every request body.
    #[arg(long)]
    pub temperature: Option<f64>,
    /// Sampling parameter sent in every request body.
    #[arg(long)]
    pub top_p: Option<f64>,
    /// Sampling parameter sent in every request body.
    #[arg(long)]
    pub top_k: Option<i64>,
    /// Sampling parameter sent in every request body.
    #[arg(long)]
    pub min_p: Option<f64>,
    /// Sampling parameter sent in every request body.
    #[arg(long)]
    pub frequency_penalty: Option<f64>,
    /// Sampling parameter sent in every request body.
    #[arg(long)]
    pub presence_penalty: Option<f64>,
    /// Sampling parameter sent in every request body.
    #[arg(long)]
    pub repetition_penalty: Option<f64>,
    /// Before warm-up, retry a test request up to this many seconds until the server answers.
    #[arg(long, default_value_t = 0.0)]
    pub ready_check_timeout_sec: f64,
    /// Per-request timeout, seconds.
    #[arg(long, default_value_t = 600.0)]
    pub timeout_s: f64,
    /// A run fails when more than this share of its requests failed (%) [default: 5].
    #[arg(long)]
    pub max_failed_pct: Option<f64>,
    /// Do not write per-request records (<run id>.requests.jsonl beside each result).
    #[arg(long)]
    pub no_request_records: bool,
    /// Scrape the server's Prometheus /metrics this often during the run (s; 0 = never) [default: 1].
    #[arg(long)]
    pub metrics_interval_s: Option<f64>,
    /// Output directory [default: results/loadgen/<UTC timestamp>].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the results as a JSON array on stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub vllm: VllmArgs,
}

/// `"1,2,inf"` as TOML values (numbers, or the string "inf").
fn list(text: &str, flag: &str, int: bool) -> Result<Value> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim) {
        let v = if part == "inf" && !int {
            Value::String("inf".into())
        } else if int {
            Value::Integer(
                part.parse::<u32>()
                    .with_context(|| format!("{flag} '{part}' is not a whole number >= 0"))?
                    .into(),
            )
        } else {
            let r: f64 = part
                .parse()
                .ok()
                .filter(|r: &f64| r.is_finite() && *r > 0.0)
                .with_context(|| format!("{flag} '{part}' is not a number > 0 or 'inf'"))?;
            Value::Float(r)
        };
        out.push(v);
    }
    Ok(if out.len() == 1 {
        out.remove(0)
    } else {
        Value::Array(out)
    })
}

fn positive(v: u64, flag: &str) -> Result<i64> {
    if v == 0 {
        bail!("{flag} must be at least 1");
    }
    Ok(v as i64)
}

impl Args {
    /// The server root URL.
    pub fn base_url(&self) -> String {
        self.base_url
            .clone()
            .unwrap_or_else(|| format!("http://{}:{}", self.host, self.port))
    }

    /// Environment variables holding the --header values (set for this process only).
    fn header_env(i: usize) -> String {
        format!("EFFBENCH_LOADGEN_HEADER_{i}")
    }

    /// Sampling flags and --extra-body as one JSON object.
    fn extra_body(&self) -> Result<Option<serde_json::Map<String, serde_json::Value>>> {
        let mut m = match &self.extra_body {
            None => serde_json::Map::new(),
            Some(text) => match serde_json::from_str::<serde_json::Value>(text) {
                Ok(serde_json::Value::Object(m)) => m,
                Ok(_) => bail!("--extra-body must be a JSON object"),
                Err(e) => bail!("--extra-body is not JSON: {e}"),
            },
        };
        let f = |x: f64| serde_json::json!(x);
        for (k, v) in [
            ("temperature", self.temperature.map(f)),
            ("top_p", self.top_p.map(f)),
            ("top_k", self.top_k.map(|x| serde_json::json!(x))),
            ("min_p", self.min_p.map(f)),
            ("frequency_penalty", self.frequency_penalty.map(f)),
            ("presence_penalty", self.presence_penalty.map(f)),
            ("repetition_penalty", self.repetition_penalty.map(f)),
        ] {
            if let Some(v) = v {
                // --extra-body wins, as in vLLM.
                m.entry(k).or_insert(v);
            }
        }
        Ok((!m.is_empty()).then_some(m))
    }
}

/// The suite the flags mean, as TOML text; `model` is the resolved model name.
pub fn suite_toml(a: &Args, model: &str) -> Result<String> {
    let mut matrix = Table::new();
    let mut serving = Table::new();
    matrix.insert(
        "request_rate".into(),
        list(&a.request_rate, "--request-rate", false)?,
    );
    matrix.insert(
        "max_concurrency".into(),
        list(&a.max_concurrency, "--max-concurrency", true)?,
    );
    let dataset_name = match (a.dataset_name.as_deref(), &a.dataset) {
        (Some(n), _) => n,
        (None, Some(_)) => "custom",
        (None, None) => "random",
    };
    let mut input_len = a.input_len.unwrap_or(128);
    let mut output_len = a.random_output_len.or(a.output_len).unwrap_or(128);
    match dataset_name {
        "random" | "prefix_repetition" => {
            if a.dataset.is_some() {
                bail!("--dataset-name {dataset_name} takes no --dataset-path (use sharegpt or custom)");
            }
        }
        "sharegpt" | "custom" => {
            let Some(d) = &a.dataset else {
                bail!("--dataset-name {dataset_name} needs --dataset-path");
            };
            serving.insert("dataset".into(), d.clone().into());
            if dataset_name == "sharegpt" {
                serving.insert("dataset_format".into(), "sharegpt".into());
            }
            let fixed = if dataset_name == "sharegpt" {
                a.sharegpt_output_len
            } else {
                a.custom_output_len
            }
            .or(a.output_len);
            if let Some(n) = fixed {
                serving.insert(
                    "dataset_output_len".into(),
                    positive(n, "the dataset output length")?.into(),
                );
            }
        }
        other => bail!(
            "--dataset-name {other} is not supported by effbench loadgen (random, sharegpt, custom, prefix_repetition)"
        ),
    }
    if a.multi_turn {
        serving.insert("multi_turn".into(), true.into());
    }
    let mut prefix = Table::new();
    if dataset_name == "prefix_repetition" {
        let groups = a.prefix_repetition_num_prefixes.unwrap_or(10);
        prefix.insert(
            "groups".into(),
            positive(groups, "--prefix-repetition-num-prefixes")?.into(),
        );
        let plen = a.prefix_repetition_prefix_len.unwrap_or(256);
        prefix.insert(
            "prefix_len".into(),
            positive(plen, "--prefix-repetition-prefix-len")?.into(),
        );
        input_len = a.prefix_repetition_suffix_len.unwrap_or(256);
        output_len = a
            .prefix_repetition_output_len
            .or(a.output_len)
            .unwrap_or(128);
    } else if let Some(p) = a.random_prefix_len.filter(|&p| p > 0) {
        if dataset_name != "random" {
            bail!("--random-prefix-len needs --dataset-name random");
        }
        prefix.insert("groups".into(), Value::Integer(1));
        prefix.insert("prefix_len".into(), Value::Integer(p as i64));
    }
    if !prefix.is_empty() {
        serving.insert("prefix".into(), Value::Table(prefix));
    }
    matrix.insert("prompt_len".into(), Value::Integer(input_len as i64));
    matrix.insert("gen_len".into(), Value::Integer(output_len as i64));
    serving.insert("base_url".into(), a.base_url().into());
    serving.insert(
        "endpoint".into(),
        vllm::endpoint(a.endpoint.as_deref(), a.backend.as_deref())?.into(),
    );
    serving.insert("stream".into(), (!a.no_stream).into());
    serving.insert("ignore_eos".into(), (!a.no_ignore_eos).into());
    serving.insert("num_prompts".into(), Value::Integer(a.num_prompts as i64));
    serving.insert(
        "warmup_requests".into(),
        Value::Integer(a.warmup_requests as i64),
    );
    serving.insert("timeout_s".into(), a.timeout_s.into());
    serving.insert("range_ratio".into(), a.range_ratio.into());
    let arrival = match (&a.arrival, a.burstiness) {
        (Some(x), _) => x.clone(),
        (None, Some(_)) => "gamma".into(),
        (None, None) => "poisson".into(),
    };
    serving.insert("arrival".into(), arrival.into());
    if let Some(b) = a.burstiness {
        if !(b.is_finite() && b > 0.0) {
            bail!("--burstiness {b} must be a number > 0");
        }
        matrix.insert("burstiness".into(), b.into());
    }
    if let Some(k) = &a.api_key_env {
        serving.insert("api_key_env".into(), k.clone().into());
    }
    // The tokenizer: --tokenizer, else --model when --served-model-name renames the model.
    let tokenizer = a
        .tokenizer
        .clone()
        .or_else(|| a.served_model_name.as_ref().and(a.model.clone()));
    if let Some(t) = tokenizer {
        serving.insert("tokenizer".into(), t.into());
    }
    let slo_text = match (&a.slo, a.goodput.is_empty()) {
        (Some(_), false) => bail!("give --slo or --goodput, not both"),
        (Some(s), true) => Some(s.clone()),
        (None, false) => Some(vllm::goodput_to_slo(&a.goodput)?),
        (None, true) => None,
    };
    if let Some(s) = &slo_text {
        let slo = Slo::parse_cli(s).map_err(|e| anyhow::anyhow!("--slo: {e}"))?;
        let v = Value::try_from(&slo).context("--slo")?;
        serving.insert("slo".into(), v);
    }
    let headers = vllm::parse_headers(&a.headers)?;
    if !headers.is_empty() {
        let mut t = Table::new();
        for (i, (name, _)) in headers.iter().enumerate() {
            t.insert(name.clone(), Args::header_env(i).into());
        }
        serving.insert("headers".into(), Value::Table(t));
    }
    if let Some(b) = a.extra_body()? {
        let v = Value::try_from(serde_json::Value::Object(b))
            .context("--extra-body: the JSON cannot be written as TOML (null values?)")?;
        serving.insert("extra_body".into(), v);
    }
    if a.ready_check_timeout_sec != 0.0 {
        serving.insert(
            "ready_check_timeout_s".into(),
            a.ready_check_timeout_sec.into(),
        );
    }
    if let Some(p) = a.max_failed_pct {
        serving.insert("max_failed_pct".into(), p.into());
    }
    if a.no_request_records {
        serving.insert("request_records".into(), false.into());
    }
    if let Some(i) = a.metrics_interval_s {
        serving.insert("metrics_interval_s".into(), i.into());
    }
    let mut top = Table::new();
    top.insert("name".into(), "loadgen".into());
    top.insert(
        "description".into(),
        "effbench loadgen: load test of an OpenAI-compatible server".into(),
    );
    top.insert("scenario".into(), "serving".into());
    top.insert("backend".into(), "openai-http".into());
    top.insert("model".into(), model.into());
    top.insert("seed".into(), Value::Integer(a.seed as i64));
    top.insert("matrix".into(), Value::Table(matrix));
    top.insert("serving".into(), Value::Table(serving));
    let mut head =
        "# Written by effbench loadgen; `effbench run` on this file repeats the load test.\n"
            .to_string();
    if !headers.is_empty() {
        head.push_str(
            "# Header values (--header) are not written: set the environment variables named in\n# [serving.headers] to repeat it.\n",
        );
    }
    Ok(format!("{head}{}", toml::to_string(&top)?))
}

/// The model name sent: --served-model-name, --model, else the server's first model.
fn model_name(a: &Args) -> Result<String> {
    if let Some(m) = a.served_model_name.clone().or_else(|| a.model.clone()) {
        return Ok(m);
    }
    let m = effbench_backends::openai_http::first_served_model(&a.base_url())
        .context("no --model given and the server's /v1/models did not name one")?;
    eprintln!("effbench loadgen: model '{m}' (the first the server lists)");
    Ok(m)
}

pub fn run(args: Args) -> Result<ExitCode> {
    // Credentials are refused before anything is written (loadgen.toml, results).
    effbench_harness::secrets::check_url("--base-url", &args.base_url())
        .map_err(anyhow::Error::msg)?;
    if let Some(k) = &args.api_key_env {
        effbench_harness::secrets::check_env_name("--api-key-env", k)
            .map_err(anyhow::Error::msg)?;
    }
    for n in args.vllm.no_effect_notes() {
        eprintln!("{n}");
    }
    let metadata = args.vllm.metadata_pairs()?;
    let vllm_opts = super::export::vllm_options(
        args.vllm.percentile_metrics.as_deref(),
        args.vllm.metric_percentiles.as_deref(),
        args.vllm.save_detailed,
    )?;
    if args.vllm.save_detailed && args.no_request_records {
        bail!("--save-detailed needs the per-request records (drop --no-request-records)");
    }
    let model = model_name(&args)?;
    let text = suite_toml(&args, &model)?;
    // The flags' suite is checked whole before it is written (ranges name the [serving] key).
    effbench_harness::Suite::parse(&text, "effbench loadgen flags")?;
    // The header values reach the run through this process's environment only.
    // Their values (an API key, say) are registered as secrets: no file written (the manifest's
    // command line included) nor any message holds them.
    for (i, (_, v)) in vllm::parse_headers(&args.headers)?.iter().enumerate() {
        effbench_harness::secrets::register(v);
        std::env::set_var(Args::header_env(i), v);
    }
    let out = args.out.clone().unwrap_or_else(|| {
        effbench_harness::invocation::default_out_dir(std::path::Path::new("results"), "loadgen")
    });
    std::fs::create_dir_all(&out)
        .with_context(|| format!("cannot create output directory '{}'", out.display()))?;
    let path = out.join("loadgen.toml");
    effbench_harness::result::write_atomic(&path, text.as_bytes())?;
    let code = run::run(run::Args {
        suite: path,
        out: Some(out.clone()),
        filter: Vec::new(),
        dry_run: false,
        json: args.json,
        meters: Default::default(),
        shard: None,
        ab: Vec::new(),
        ab_blocks: 1,
        ab_target_mde: None,
        ab_max_blocks: effbench_harness::ab::DEFAULT_MAX_BLOCKS,
        ab_target_metric: Vec::new(),
        ab_gate_config: None,
        ab_inject_slowdown: None,
        inject_delay: None,
        inject_slowdown: None,
        eval_text: None,
        no_site: false,
        resume: false,
        train_default_only: false,
    })?;
    if args.vllm.save_result {
        save_results(
            &args,
            &out,
            &model,
            effbench_dashboards::vllm::Options {
                label: args.vllm.label.clone(),
                metadata,
                ..vllm_opts
            },
        )?;
    }
    Ok(code)
}

/// `--save-result`: each run of `out` as vLLM's result JSON in --result-dir.
fn save_results(
    a: &Args,
    out: &std::path::Path,
    model: &str,
    o: effbench_dashboards::vllm::Options,
) -> Result<()> {
    let runs = super::export::vllm_results(out, &o)?;
    let dir = a
        .vllm
        .result_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("."));
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create --result-dir '{}'", dir.display()))?;
    let label = a
        .vllm
        .label
        .clone()
        .or_else(|| a.backend.clone())
        .unwrap_or_else(|| "openai".into());
    let many = runs.len() > 1;
    for (n, (_, v)) in runs.iter().enumerate() {
        let name = match &a.vllm.result_filename {
            Some(f) if many => {
                let p = std::path::Path::new(f);
                let stem = p
                    .file_stem()
                    .map_or(f.clone(), |s| s.to_string_lossy().into_owned());
                let ext = p
                    .extension()
                    .map_or(String::new(), |e| format!(".{}", e.to_string_lossy()));
                format!("{stem}-{}{ext}", n + 1)
            }
            Some(f) => f.clone(),
            None => {
                let rate = match &v["request_rate"] {
                    serde_json::Value::Number(x) => format!("{:?}", x.as_f64().unwrap_or(0.0)),
                    other => other.as_str().unwrap_or("inf").to_string(),
                };
                vllm::default_filename(
                    &label,
                    &rate,
                    v["max_concurrency"].as_i64(),
                    model,
                    v["date"].as_str().unwrap_or(""),
                )
            }
        };
        let file = dir.join(name);
        effbench_harness::result::write_atomic(
            &file,
            (serde_json::to_string(v)? + "\n").as_bytes(),
        )?;
        eprintln!("vllm result -> {}", file.display());
    }
    Ok(())
}
