//! `vllm bench serve`'s spellings for `effbench loadgen`: the flags a vLLM user's command line
//! carries that effbench does the same way (most map onto loadgen's own, see
//! [`super::loadgen::Args`]), the ones that only shape vLLM's result file (`--save-result`
//! ...), and a refusal, naming the flag, of every vLLM flag effbench does not do — never a
//! silent ignore.

use anyhow::{bail, Result};

/// vLLM flags effbench does not support, with why (checked before parsing, so the error
/// names the flag and says it is vLLM's).
const UNSUPPORTED: &[(&str, &str)] = &[
    ("--use-beam-search", "beam search is not load-tested"),
    ("--logprobs", "logprobs are not requested"),
    ("--profile", "vLLM's profiler endpoints are vLLM-only"),
    ("--append-result", "each run writes its own result file"),
    ("--self-timed", "trace replay is not supported"),
    ("--no-self-timed", "trace replay is not supported"),
    ("--request-id-prefix", "request ids are not sent"),
    ("--lora-modules", "LoRA adapters are not load-tested"),
    ("--lora-assignment", "LoRA adapters are not load-tested"),
    (
        "--ramp-up-strategy",
        "vLLM ramps by request index; use [serving] ramp_up_s and ramp_up_start_rate (a linear ramp in time)",
    ),
    ("--ramp-up-start-rps", "see --ramp-up-strategy"),
    ("--ramp-up-end-rps", "see --ramp-up-strategy"),
    ("--chat-template-kwargs", "prompts are not rendered client-side; pass it in --extra-body"),
    ("--skip-tokenizer-init", "the tokenizer is only used for prompt lengths"),
    ("--tokenizer-mode", "tokenizers are read from tokenizer.json or GGUF"),
    ("--insecure", "TLS verification is always on"),
    ("--plot-timeline", "the run page of `effbench site` plots the run over time"),
    ("--timeline-itl-thresholds", "see --plot-timeline"),
    ("--plot-dataset-stats", "not supported"),
    ("--probe-request-rate", "probe requests are not supported"),
    ("--no-oversample", "datasets are cycled to --num-prompts"),
    ("--enable-multimodal-chat", "multimodal inputs are not supported"),
    ("--endpoint-type", "use --backend or --endpoint"),
    ("--random-batch-size", "embedding benchmarks are not supported"),
    ("--no-reranker", "reranker benchmarks are not supported"),
    ("--hf-subset", "Hugging Face datasets are not downloaded; use --dataset-path with a local file"),
    ("--hf-split", "see --hf-subset"),
    ("--hf-name", "see --hf-subset"),
    ("--hf-output-len", "see --hf-subset"),
    ("--sonnet-input-len", "the sonnet dataset is not supported"),
    ("--sonnet-output-len", "the sonnet dataset is not supported"),
    ("--sonnet-prefix-len", "the sonnet dataset is not supported"),
    ("--spec-bench-output-len", "the spec_bench dataset is not supported"),
    ("--spec-bench-category", "the spec_bench dataset is not supported"),
    ("--blazedit-min-distance", "the blazedit dataset is not supported"),
    ("--blazedit-max-distance", "the blazedit dataset is not supported"),
    ("--custom-ensure-client-side-data", "multimodal inputs are not supported"),
];

/// Prefixes of whole families of unsupported vLLM flags.
const UNSUPPORTED_PREFIXES: &[(&str, &str)] = &[
    ("--random-mm-", "multimodal inputs are not supported"),
    ("--speed-bench-", "the speed_bench dataset is not supported"),
    ("--bfcl-", "the BFCL dataset is not supported"),
];

/// vLLM flags accepted with no effect on what is measured (said on stderr).
pub const NO_EFFECT: &[(&str, &str)] = &[
    ("--disable-tqdm", "effbench's progress goes to stderr"),
    (
        "--trust-remote-code",
        "effbench never runs a model's remote code",
    ),
    ("--disable-shuffle", "datasets are read in file order"),
    (
        "--skip-chat-template",
        "dataset prompts are always sent as they are (the server renders chat templates)",
    ),
];

/// Refuses an unsupported vLLM flag in an `effbench loadgen` command line.
pub fn check_args(args: &[String]) -> Result<()> {
    if args.get(1).map(String::as_str) != Some("loadgen") {
        return Ok(());
    }
    for a in &args[2..] {
        let flag = a.split('=').next().unwrap_or(a);
        let why = UNSUPPORTED
            .iter()
            .find(|(f, _)| *f == flag)
            .map(|(_, w)| *w)
            .or_else(|| {
                UNSUPPORTED_PREFIXES
                    .iter()
                    .find(|(p, _)| flag.starts_with(p))
                    .map(|(_, w)| *w)
            });
        if let Some(why) = why {
            bail!("{flag} (a `vllm bench serve` flag) is not supported by effbench loadgen: {why}");
        }
    }
    Ok(())
}

/// The flags of a vLLM command line that only shape vLLM's outputs or have no effect here.
#[derive(clap::Args, Debug, Default)]
#[command(next_help_heading = "vLLM compatibility (`vllm bench serve` spellings)")]
pub struct VllmArgs {
    /// Write each run as vLLM's result JSON (also `effbench export --format vllm`).
    #[arg(long)]
    pub save_result: bool,
    /// With --save-result: per-request lists (ttfts, itls, input_lens ...).
    #[arg(long)]
    pub save_detailed: bool,
    /// Directory of the vLLM result files [default: the current directory].
    #[arg(long)]
    pub result_dir: Option<std::path::PathBuf>,
    /// File name of the vLLM result [default: vLLM's
    /// {label}-{rate}qps[-concurrency{n}]-{model}-{date}.json]; with several runs, -<n> is added.
    #[arg(long)]
    pub result_filename: Option<String>,
    /// Label of the vLLM result (its file name prefix) [default: --backend or openai].
    #[arg(long)]
    pub label: Option<String>,
    /// KEY=VALUE pairs added to the vLLM result.
    #[arg(long, num_args = 1.., value_name = "KEY=VALUE")]
    pub metadata: Vec<String>,
    /// Metrics whose statistics the vLLM result carries (ttft,tpot,itl,e2el) [default: ttft,tpot,itl].
    #[arg(long)]
    pub percentile_metrics: Option<String>,
    /// Percentiles in the vLLM result, e.g. 50,90,99 [default: 99].
    #[arg(long)]
    pub metric_percentiles: Option<String>,
    /// No effect: effbench's progress goes to stderr.
    #[arg(long)]
    pub disable_tqdm: bool,
    /// No effect: effbench never runs a model's remote code.
    #[arg(long)]
    pub trust_remote_code: bool,
    /// No effect: datasets are read in file order.
    #[arg(long)]
    pub disable_shuffle: bool,
    /// No effect: dataset prompts are sent as they are.
    #[arg(long)]
    pub skip_chat_template: bool,
}

impl VllmArgs {
    /// Lines for stderr about the accepted flags that change nothing.
    pub fn no_effect_notes(&self) -> Vec<String> {
        let on = [
            self.disable_tqdm,
            self.trust_remote_code,
            self.disable_shuffle,
            self.skip_chat_template,
        ];
        NO_EFFECT
            .iter()
            .zip(on)
            .filter(|(_, on)| *on)
            .map(|((f, why), _)| format!("effbench loadgen: {f} has no effect ({why})"))
            .collect()
    }

    /// `KEY=VALUE` pairs of --metadata.
    pub fn metadata_pairs(&self) -> Result<Vec<(String, String)>> {
        self.metadata
            .iter()
            .map(|m| match m.split_once('=') {
                Some((k, v)) if !k.trim().is_empty() => {
                    Ok((k.trim().to_string(), v.trim().to_string()))
                }
                _ => bail!("--metadata '{m}' is not KEY=VALUE"),
            })
            .collect()
    }
}

/// vLLM's `--goodput ttft:500 tpot:50` (ms) as effbench's `--slo` text.
pub fn goodput_to_slo(pairs: &[String]) -> Result<String> {
    let mut out = Vec::new();
    for p in pairs.iter().flat_map(|p| p.split_whitespace()) {
        let Some((k, v)) = p.split_once(':') else {
            bail!("--goodput '{p}' is not KEY:VALUE (e.g. ttft:500, in ms)");
        };
        if !["ttft", "tpot", "e2el"].contains(&k) {
            bail!("--goodput: '{k}' is not one of ttft, tpot, e2el");
        }
        let ms: f64 = v
            .parse()
            .ok()
            .filter(|x: &f64| x.is_finite() && *x > 0.0)
            .ok_or_else(|| {
                anyhow::anyhow!("--goodput {k}:{v}: the value must be a number of ms > 0")
            })?;
        out.push(format!("{k}={ms}ms"));
    }
    Ok(out.join(","))
}

/// `K:V` or `K=V` (vLLM's spelling), several per flag allowed: (name, value).
pub fn parse_headers(items: &[String]) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for (n, item) in items.iter().enumerate() {
        let cut = item.find([':', '=']);
        let Some(i) = cut else {
            // Not echoed: it may be a credential.
            bail!("--header value {} is not NAME:VALUE (or NAME=VALUE)", n + 1);
        };
        let (k, v) = (item[..i].trim(), item[i + 1..].trim());
        if !effbench_harness::records::serving::is_header_name(k) {
            bail!("--header: '{k}' is not a valid HTTP header name");
        }
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

/// `--endpoint` in effbench's (`completions`, `chat`) or vLLM's (`/v1/completions`,
/// `/v1/chat/completions`) spelling, or from vLLM's `--backend`.
pub fn endpoint(endpoint: Option<&str>, backend: Option<&str>) -> Result<String> {
    let from_backend = match backend {
        None => None,
        Some("vllm" | "openai") => Some("completions"),
        Some("openai-chat") => Some("chat"),
        Some(b) => bail!(
            "--backend {b} is not supported by effbench loadgen (vllm, openai: /v1/completions; openai-chat: /v1/chat/completions)"
        ),
    };
    let from_endpoint = match endpoint {
        None => None,
        Some("completions" | "/v1/completions" | "v1/completions") => Some("completions"),
        Some("chat" | "/v1/chat/completions" | "v1/chat/completions") => Some("chat"),
        Some(e) => bail!(
            "--endpoint {e} is not supported (completions or /v1/completions, chat or /v1/chat/completions)"
        ),
    };
    match (from_endpoint, from_backend) {
        (Some(e), Some(b)) if e != b => bail!(
            "--endpoint {} does not match --backend {} (openai-chat needs /v1/chat/completions)",
            endpoint.unwrap_or_default(),
            backend.unwrap_or_default()
        ),
        (Some(e), _) | (None, Some(e)) => Ok(e.to_string()),
        (None, None) => Ok("completions".into()),
    }
}

/// vLLM's default result file name: `{label}-{rate}qps[-concurrency{n}]-{model}-{date}.json`.
pub fn default_filename(
    label: &str,
    rate: &str,
    max_concurrency: Option<i64>,
    model: &str,
    date: &str,
) -> String {
    let base_model = model.rsplit('/').next().unwrap_or(model);
    let mc = max_concurrency.map_or(String::new(), |c| format!("-concurrency{c}"));
    format!("{label}-{rate}qps{mc}-{base_model}-{date}.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn unsupported_vllm_flags_are_named() {
        let e = check_args(&argv(&["effbench", "loadgen", "--profile"])).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("--profile (a `vllm bench serve` flag)"),
            "{e}"
        );
        let e = check_args(&argv(&[
            "effbench",
            "loadgen",
            "--random-mm-bucket-config={}",
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("--random-mm-bucket-config"), "{e}");
        assert!(check_args(&argv(&["effbench", "run", "--profile"])).is_ok());
        assert!(check_args(&argv(&["effbench", "loadgen", "--goodput", "ttft:5"])).is_ok());
    }

    #[test]
    fn goodput_headers_endpoints() {
        assert_eq!(
            goodput_to_slo(&["ttft:500".into(), "tpot:50 e2el:2000".into()]).unwrap(),
            "ttft=500ms,tpot=50ms,e2el=2000ms"
        );
        assert!(goodput_to_slo(&["itl:5".into()])
            .unwrap_err()
            .to_string()
            .contains("'itl'"));
        assert!(goodput_to_slo(&["ttft=5".into()]).is_err());
        let h = parse_headers(&["X-A: 1".into(), "Authorization=Bearer sk-1".into()]).unwrap();
        assert_eq!(h[0], ("X-A".into(), "1".into()));
        assert_eq!(h[1], ("Authorization".into(), "Bearer sk-1".into()));
        let e = parse_headers(&["secretvalue".into()])
            .unwrap_err()
            .to_string();
        assert!(!e.contains("secretvalue"), "{e}");
        assert_eq!(
            endpoint(Some("/v1/chat/completions"), None).unwrap(),
            "chat"
        );
        assert_eq!(endpoint(None, Some("openai-chat")).unwrap(), "chat");
        assert_eq!(
            endpoint(Some("/v1/completions"), Some("vllm")).unwrap(),
            "completions"
        );
        assert!(endpoint(Some("/v1/completions"), Some("openai-chat")).is_err());
        assert!(endpoint(None, Some("tgi"))
            .unwrap_err()
            .to_string()
            .contains("--backend tgi"));
        assert_eq!(
            default_filename("openai", "4.0", Some(8), "org/SmolLM2", "20250101-000000"),
            "openai-4.0qps-concurrency8-SmolLM2-20250101-000000.json"
        );
    }
}
