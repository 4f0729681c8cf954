//! `effbench loadgen`: a load test against an OpenAI-compatible server from flags alone
//! (vLLM's `bench serve` style). It writes the equivalent suite to `<out>/loadgen.toml` (so
//! the run can be repeated with `effbench run`) and runs it like `effbench run` does: one
//! result per request rate x max concurrency, the same tables and exit codes.

use super::run;
use anyhow::{bail, Context, Result};
use effbench_harness::serving::Slo;
use std::path::PathBuf;
use std::process::ExitCode;
use toml::{Table, Value};

/// Load-test an OpenAI-compatible server (TTFT, ITL, TPOT, E2EL, goodput, throughput).
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  effbench serve &   # or any OpenAI-compatible server\n  \
effbench loadgen --base-url http://127.0.0.1:8000 --model default --num-prompts 50 --request-rate 4\n  \
effbench loadgen --base-url http://127.0.0.1:8000/v1 --model default --request-rate 1,2,4,inf \\\n      \
--max-concurrency 8 --slo ttft=500ms,tpot=50ms --out results/sweep\n\n\
Request rates are requests/s or `inf` (all at once); a comma list sweeps them. Poisson \
arrivals unless --burstiness is given (Gamma) or --arrival says otherwise."
)]
pub struct Args {
    /// Server root or its /v1 URL (loopback for tests; any host for users).
    #[arg(long)]
    pub base_url: String,
    /// Model name sent in each request (as the server lists it in /v1/models).
    #[arg(long)]
    pub model: String,
    /// completions (/v1/completions) or chat (/v1/chat/completions).
    #[arg(long, default_value = "completions")]
    pub endpoint: String,
    /// Measured requests per run.
    #[arg(long, default_value_t = 100)]
    pub num_prompts: u64,
    /// Requests sent and awaited before each run, not measured.
    #[arg(long, default_value_t = 2)]
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
    /// Prompt length in words (one token each in typical BPE vocabularies).
    #[arg(long, default_value_t = 128)]
    pub input_len: u64,
    /// max_tokens of each request.
    #[arg(long, default_value_t = 128)]
    pub output_len: u64,
    /// Lengths vary uniformly by +- this fraction.
    #[arg(long, default_value_t = 0.0)]
    pub range_ratio: f64,
    /// JSONL prompts ({"prompt": ...} or {"messages": [...]}, optional "output_len").
    #[arg(long)]
    pub dataset: Option<String>,
    /// Seed of prompts and arrivals.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Service-level objectives for goodput, e.g. ttft=200ms,tpot=50ms,e2el=2s.
    #[arg(long)]
    pub slo: Option<String>,
    /// Do not stream (no TTFT/ITL/TPOT; E2EL only).
    #[arg(long)]
    pub no_stream: bool,
    /// Do not send `ignore_eos: true` (for servers that reject unknown fields).
    #[arg(long)]
    pub no_ignore_eos: bool,
    /// Environment variable holding the API key (sent as a Bearer token, never written).
    #[arg(long)]
    pub api_key_env: Option<String>,
    /// Per-request timeout, seconds.
    #[arg(long, default_value_t = 600.0)]
    pub timeout_s: f64,
    /// Output directory [default: results/loadgen/<UTC timestamp>].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the results as a JSON array on stdout.
    #[arg(long)]
    pub json: bool,
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

/// The suite the flags mean, as TOML text.
pub fn suite_toml(a: &Args) -> Result<String> {
    let mut matrix = Table::new();
    matrix.insert(
        "request_rate".into(),
        list(&a.request_rate, "--request-rate", false)?,
    );
    matrix.insert(
        "max_concurrency".into(),
        list(&a.max_concurrency, "--max-concurrency", true)?,
    );
    matrix.insert("prompt_len".into(), Value::Integer(a.input_len as i64));
    matrix.insert("gen_len".into(), Value::Integer(a.output_len as i64));
    let mut serving = Table::new();
    serving.insert("base_url".into(), a.base_url.clone().into());
    serving.insert("endpoint".into(), a.endpoint.clone().into());
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
    if let Some(d) = &a.dataset {
        serving.insert("dataset".into(), d.clone().into());
    }
    if let Some(k) = &a.api_key_env {
        serving.insert("api_key_env".into(), k.clone().into());
    }
    if let Some(s) = &a.slo {
        let slo = Slo::parse_cli(s).map_err(|e| anyhow::anyhow!("--slo: {e}"))?;
        let v = Value::try_from(&slo).context("--slo")?;
        serving.insert("slo".into(), v);
    }
    let mut top = Table::new();
    top.insert("name".into(), "loadgen".into());
    top.insert(
        "description".into(),
        "effbench loadgen: load test of an OpenAI-compatible server".into(),
    );
    top.insert("scenario".into(), "serving".into());
    top.insert("backend".into(), "openai-http".into());
    top.insert("model".into(), a.model.clone().into());
    top.insert("seed".into(), Value::Integer(a.seed as i64));
    top.insert("matrix".into(), Value::Table(matrix));
    top.insert("serving".into(), Value::Table(serving));
    Ok(format!(
        "# Written by effbench loadgen; `effbench run` on this file repeats the load test.\n{}",
        toml::to_string(&top)?
    ))
}

pub fn run(args: Args) -> Result<ExitCode> {
    // Credentials are refused before anything is written (loadgen.toml, results).
    effbench_harness::secrets::check_url("--base-url", &args.base_url)
        .map_err(anyhow::Error::msg)?;
    if let Some(k) = &args.api_key_env {
        effbench_harness::secrets::check_env_name("--api-key-env", k)
            .map_err(anyhow::Error::msg)?;
    }
    let text = suite_toml(&args)?;
    // The flags' suite is checked whole before it is written (ranges name the [serving] key).
    effbench_harness::Suite::parse(&text, "effbench loadgen flags")?;
    let out = args.out.clone().unwrap_or_else(|| {
        effbench_harness::invocation::default_out_dir(std::path::Path::new("results"), "loadgen")
    });
    std::fs::create_dir_all(&out)
        .with_context(|| format!("cannot create output directory '{}'", out.display()))?;
    let path = out.join("loadgen.toml");
    effbench_harness::result::write_atomic(&path, text.as_bytes())?;
    run::run(run::Args {
        suite: path,
        out: Some(out),
        filter: Vec::new(),
        dry_run: false,
        json: args.json,
        meters: Default::default(),
        shard: None,
        ab: Vec::new(),
        ab_blocks: 1,
        ab_inject_slowdown: None,
        inject_delay: None,
        inject_slowdown: None,
        eval_text: None,
        no_site: false,
        resume: false,
        train_default_only: false,
    })
}
