//! `effbench serve`: an OpenAI-compatible HTTP server (axum on hyper) for any model the
//! candle backend loads, the embedded default model and presets included (a preset has no
//! tokenizer: it gets a word-level stand-in, [`stand_in_tokenizer`]). Routes in [`api`], request
//! parsing in [`request`], chat templates as transformers renders them in [`chat`], responses
//! and SSE in [`respond`]; the model runs on one engine thread fed by a fair FIFO [`queue`],
//! with continuous batching and chunked prefill ([`engine`]); connection limits, timeouts and
//! graceful shutdown in [`server`]; counters and histograms for `/metrics` in [`prom`].
//! [`serve`] runs until its shutdown future resolves, then stops taking requests, lets running
//! ones finish for a grace period and aborts the rest.

pub mod api;
pub mod chat;
pub mod detok;
pub mod engine;
pub mod prom;
pub mod queue;
pub mod request;
pub mod respond;
pub mod server;

use crate::loader;
use anyhow::{Context, Result};
use effbench_harness::{ModelInfo, ModelSpec};
use engine::Engine;
use prom::Stats;
use queue::Queue;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokenizers::Tokenizer;

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// `default`, `preset:<name>` or a path (HF directory or GGUF file).
    pub model: String,
    /// Name clients use in `"model"` [default: the reference as given].
    pub served_name: Option<String>,
    /// Weights dtype for HF models (f32, f16, bf16).
    pub dtype: String,
    /// At most this many sequences are in the batch (prefilling or decoding).
    pub max_batch: usize,
    /// At most this many tokens in one forward pass (decode tokens plus prompt chunks).
    pub max_step_tokens: usize,
    /// At most this many open connections; more get a JSON 503 and are closed.
    pub max_connections: usize,
    /// A request's headers must arrive within this; also the longest idle keep-alive.
    pub header_timeout: Duration,
    /// A request's body must arrive within this.
    pub body_timeout: Duration,
    /// At most this many requests wait; more get 503.
    pub max_queue: usize,
    /// After the shutdown signal, running requests may finish for this long.
    pub grace: Duration,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            model: "default".into(),
            served_name: None,
            dtype: "f32".into(),
            max_batch: 8,
            max_step_tokens: 512,
            max_connections: 512,
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(30),
            max_queue: 1024,
            grace: Duration::from_secs(30),
        }
    }
}

/// What the handlers share.
pub struct App {
    /// Requests waiting for the engine.
    pub queue: Arc<Queue>,
    /// What `/metrics` reports.
    pub stats: Arc<Stats>,
    /// Tokenizes prompts.
    pub tokenizer: Tokenizer,
    /// The model's chat template, compiled once (or why it does not compile), if it has one.
    pub chat_template: Option<Result<chat::ChatTemplate, String>>,
    /// The model name clients use.
    pub name: String,
    /// Facts about the weights (`/v1/models` reports them).
    pub info: ModelInfo,
    /// The model's context length.
    pub context: usize,
    /// A request's body must arrive within this.
    pub body_timeout: Duration,
    /// Server start, Unix seconds.
    pub created: u64,
}

/// A loaded model, ready to serve.
pub struct Loaded {
    engine: Engine,
    app: App,
}

impl Loaded {
    /// The model's facts.
    pub fn info(&self) -> &ModelInfo {
        &self.app.info
    }
    /// The name clients use.
    pub fn name(&self) -> &str {
        &self.app.name
    }
}

/// Range checks of the settings; the error names the flag.
pub fn check(cfg: &ServeConfig) -> Result<()> {
    // Upper caps keep every buffer and count sized from these flags far from overflow:
    // batch and step tokens size per-step buffers, connections and the queue bound memory.
    let range = |flag: &str, v: usize, hi: usize| {
        effbench_harness::limits::check_int(flag, v as i128, 1, hi as i128)
            .map_err(anyhow::Error::msg)
    };
    range("--max-batch", cfg.max_batch, 4096)?;
    range("--max-step-tokens", cfg.max_step_tokens, 1 << 20)?;
    range("--max-connections", cfg.max_connections, 65_536)?;
    range("--max-queue", cfg.max_queue, 1 << 20)?;
    if cfg.max_step_tokens < cfg.max_batch {
        anyhow::bail!(
            "--max-step-tokens ({}) must be at least --max-batch ({}): every running sequence decodes one token per step",
            cfg.max_step_tokens,
            cfg.max_batch
        );
    }
    Ok(())
}

/// Loads the model and its tokenizer (CPU), after [`check`].
pub fn load(cfg: &ServeConfig) -> Result<Loaded> {
    check(cfg)?;
    let spec = ModelSpec {
        reference: cfg.model.clone(),
    };
    let device = loader::candle_device(effbench_harness::Device::Cpu)?;
    let dtype = loader::parse_dtype(&cfg.dtype)?;
    check_memory(&spec, &cfg.dtype)?;
    let loaded = loader::load(&spec, dtype, &device)?;
    let (tokenizer, chat_template) = match spec.preset() {
        Some(_) => (stand_in_tokenizer(loaded.model.config.vocab_size)?, None),
        None => tokenizer(&loader::resolve(&spec)?)?,
    };
    let c = &loaded.model.config;
    let context = c.max_position_embeddings;
    let mut eos: Vec<u32> = c.eos_token_id.into_iter().collect();
    let token_text = |id: Option<u32>| {
        id.and_then(|i| tokenizer.id_to_token(i))
            .unwrap_or_default()
    };
    let (bos_text, eos_text) = (token_text(c.bos_token_id), token_text(c.eos_token_id));
    let special = [
        ("bos_token", bos_text.as_str()),
        ("eos_token", eos_text.as_str()),
    ];
    let compiled = chat_template.as_deref().map(|src| {
        chat::ChatTemplate::new(src, &special, chat::Clock::Local).map_err(|e| chat::describe(&e))
    });
    if let Some(Err(why)) = &compiled {
        eprintln!("effbench serve: warning: the model's chat template does not compile ({why}); chat requests will fail");
    }
    if let Some(id) = tokenizer.token_to_id("<|im_end|>") {
        if chat_template.is_some() && !eos.contains(&id) {
            eos.push(id);
        }
    }
    let stats = Arc::new(Stats::default());
    let queue = Arc::new(Queue::new(cfg.max_queue, stats.clone()));
    let name = cfg.served_name.clone().unwrap_or_else(|| cfg.model.clone());
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Ok(Loaded {
        app: App {
            queue,
            stats,
            tokenizer: tokenizer.clone(),
            chat_template: compiled,
            name,
            info: loaded.info,
            context,
            body_timeout: cfg.body_timeout,
            created,
        },
        engine: Engine {
            model: loaded.model,
            tokenizer,
            eos,
            max_batch: cfg.max_batch,
            max_step_tokens: cfg.max_step_tokens,
            context,
            panic_after: std::env::var("EFFBENCH_SERVE_ENGINE_PANIC_AFTER")
                .ok()
                .and_then(|v| v.parse().ok()),
        },
    })
}

/// The memory check before loading ([`crate::memory::check`]): the model and one short
/// request (each request sizes its own KV cache when it comes).
fn check_memory(spec: &ModelSpec, dtype: &str) -> Result<()> {
    let config = loader::model_config(spec)?;
    let (weights, act_bytes, load_transient) =
        crate::memory::weights_of(spec, &config, dtype, "none")?;
    let plan = crate::memory::Plan {
        config: &config,
        weights,
        act_bytes,
        work: crate::memory::Work::Inference {
            batch: 1,
            prompt: 1,
            gen: 1,
        },
        load_transient,
    };
    let what = format!("serving '{}' ({dtype})", spec.reference);
    crate::memory::check(&what, &plan, effbench_harness::Device::Cpu)?;
    Ok(())
}

/// A preset has no tokenizer: a word-level stand-in over its vocabulary (`<t0>`, `<t1>` ...;
/// each whitespace-separated word of a prompt is one token, unknown words `<t0>`), so
/// prompts get realistic token counts and generated ids decode to `<tN>` text.
pub fn stand_in_tokenizer(vocab: usize) -> Result<Tokenizer> {
    use tokenizers::models::wordlevel::WordLevel;
    let words: std::collections::HashMap<String, u32> =
        (0..vocab as u32).map(|i| (format!("<t{i}>"), i)).collect();
    let model = WordLevel::builder()
        .vocab(words.into_iter().collect())
        .unk_token("<t0>".into())
        .build()
        .map_err(|e| anyhow::anyhow!("stand-in tokenizer: {e}"))?;
    let mut tok = Tokenizer::new(model);
    tok.with_pre_tokenizer(Some(tokenizers::pre_tokenizers::whitespace::Whitespace {}));
    Ok(tok)
}

/// The tokenizer of a model and its chat template, if it has one: from the GGUF metadata,
/// or `tokenizer.json` / `tokenizer_config.json` beside HF weights.
fn tokenizer(path: &Path) -> Result<(Tokenizer, Option<String>)> {
    if path.is_file() {
        let (ct, _) = loader::read_gguf_header(path)?;
        let tok = crate::tokenizer::tokenizer_from_gguf(&ct)
            .with_context(|| format!("tokenizer of '{}'", path.display()))?;
        let template = ct
            .metadata
            .get("tokenizer.chat_template")
            .and_then(|v| v.to_string().ok())
            .cloned();
        return Ok((tok, template));
    }
    let file = path.join("tokenizer.json");
    let tok = Tokenizer::from_file(&file)
        .map_err(|e| anyhow::anyhow!("cannot read '{}': {e}", file.display()))?;
    let template = std::fs::read_to_string(path.join("chat_template.jinja"))
        .ok()
        .or_else(|| {
            let text = std::fs::read_to_string(path.join("tokenizer_config.json")).ok()?;
            let v: serde_json::Value = serde_json::from_str(&text).ok()?;
            hf_template(v.get("chat_template")?)
        });
    Ok((tok, template))
}

/// `chat_template` of `tokenizer_config.json`: a string, or a list of `{name, template}` of
/// which transformers uses the one named `default`.
fn hf_template(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Array(list) => list
            .iter()
            .find(|t| t.get("name").and_then(|n| n.as_str()) == Some("default"))
            .and_then(|t| t.get("template")?.as_str().map(str::to_string)),
        _ => None,
    }
}

/// Serves on `listener` until `shutdown` resolves; then refuses new requests, lets running
/// ones finish for `cfg.grace`, aborts the rest and returns within [`server::FLUSH`] after.
pub async fn serve(
    listener: tokio::net::TcpListener,
    loaded: Loaded,
    cfg: &ServeConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    let Loaded { engine, app } = loaded;
    let limits = server::Limits {
        max_connections: cfg.max_connections,
        header_timeout: cfg.header_timeout,
        grace: cfg.grace,
    };
    server::run(listener, engine, app, limits, shutdown).await
}
