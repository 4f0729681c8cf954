//! `effbench serve`: an OpenAI-compatible HTTP server (axum) for any model the candle backend
//! loads, the embedded default model and presets included (a preset has no tokenizer: it
//! gets a word-level stand-in, [`stand_in_tokenizer`]). Routes in [`api`]; the model runs on one
//! engine thread with a fair FIFO queue and continuous batching ([`engine`]); counters and
//! histograms for `/metrics` in [`prom`]. [`serve`] runs until its shutdown future resolves,
//! then stops taking requests, lets running ones finish for a grace period and aborts the rest.

pub mod api;
pub mod engine;
pub mod prom;

use crate::loader;
use anyhow::{Context, Result};
use effbench_harness::{ModelInfo, ModelSpec};
use engine::{Engine, Queue};
use prom::Stats;
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
    /// At most this many sequences decode together.
    pub max_batch: usize,
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
    /// The model's Jinja chat template, if it has one.
    pub chat_template: Option<String>,
    /// Text of the bos token (for the chat template).
    pub bos: String,
    /// Text of the eos token (for the chat template).
    pub eos: String,
    /// The model name clients use.
    pub name: String,
    /// Facts about the weights (`/v1/models` reports them).
    pub info: ModelInfo,
    /// The model's context length.
    pub context: usize,
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

/// Loads the model and its tokenizer (CPU).
pub fn load(cfg: &ServeConfig) -> Result<Loaded> {
    if cfg.max_batch == 0 {
        anyhow::bail!("--max-batch must be at least 1");
    }
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
            chat_template,
            bos: bos_text,
            eos: eos_text,
            name,
            info: loaded.info,
            context,
            created,
        },
        engine: Engine {
            model: loaded.model,
            tokenizer,
            eos,
            max_batch: cfg.max_batch,
            context,
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
    let template = std::fs::read_to_string(path.join("tokenizer_config.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v.get("chat_template")?.as_str().map(str::to_string));
    Ok((tok, template))
}

/// Serves on `listener` until `shutdown` resolves; then refuses new requests, lets running
/// ones finish for `grace`, aborts the rest and returns when every connection is closed.
pub async fn serve(
    listener: tokio::net::TcpListener,
    loaded: Loaded,
    grace: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let Loaded { engine, app } = loaded;
    let queue = app.queue.clone();
    let engine_thread = std::thread::Builder::new()
        .name("effbench-serve-engine".into())
        .spawn({
            let queue = queue.clone();
            move || engine.run(queue)
        })
        .context("cannot start the engine thread")?;
    let router = api::router(Arc::new(app));
    let q2 = queue.clone();
    let signal = async move {
        shutdown.await;
        q2.close();
        let q3 = q2.clone();
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            q3.abort();
        });
    };
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(signal)
        .await;
    queue.close();
    let joined = tokio::task::spawn_blocking(move || engine_thread.join()).await;
    served.context("the HTTP server failed")?;
    if !matches!(joined, Ok(Ok(()))) {
        anyhow::bail!("the engine thread panicked");
    }
    Ok(())
}
