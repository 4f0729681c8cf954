//! `effbench serve`: an OpenAI-compatible server for a model the candle backend loads
//! (effbench_backends::serve), on 127.0.0.1 by default. SIGTERM, SIGHUP or Ctrl-C stops it
//! gracefully: no new requests, idle connections closed, running requests finish within
//! `--grace-s` (then are aborted), and it exits with 128 + the signal's number.

use anyhow::{Context, Result};
use effbench_backends::serve::{self, ServeConfig};
use std::process::ExitCode;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Serve a model over HTTP (/v1/completions, /v1/chat/completions, /v1/models, /health, /metrics).
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  effbench serve                       (the embedded default model on 127.0.0.1:8000)\n  \
effbench serve --model $EFFBENCH_SMOLLM2_GGUF --port 8001 --max-batch 16\n  \
effbench serve --model preset:smollm2-135m --dtype bf16   (random weights, stand-in tokenizer)\n  \
curl -s 127.0.0.1:8000/v1/completions -H 'content-type: application/json' \\\n    \
-d '{\"model\":\"default\",\"prompt\":\"the\",\"max_tokens\":8}'"
)]
pub struct Args {
    /// `default` (the embedded model), `preset:<name>` (a published architecture with random
    /// weights, e.g. preset:qwen2.5-0.5b) or a path: an HF directory or a GGUF file.
    #[arg(long, default_value = "default")]
    pub model: String,
    /// The model name clients send [default: the --model value].
    #[arg(long)]
    pub served_model_name: Option<String>,
    /// Address to listen on (loopback by default; 0.0.0.0 exposes the server).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port (0 picks a free one; the chosen address is printed).
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// Weights dtype for HF models and presets (f32, f16, bf16); GGUF weights stay quantized.
    #[arg(long, default_value = "f32")]
    pub dtype: String,
    /// At most this many requests in the batch (continuous batching); 1 = one at a time.
    #[arg(long, default_value_t = 8)]
    pub max_batch: usize,
    /// At most this many tokens per forward pass: one per decoding request, the rest for
    /// chunks of prompts being prefilled (vLLM's --max-num-batched-tokens). At least --max-batch.
    #[arg(long, alias = "max-num-batched-tokens", default_value_t = 512)]
    pub max_step_tokens: usize,
    /// Compute threads for the model [default: CANDLE_NUM_THREADS / RAYON_NUM_THREADS, else
    /// the physical cores].
    #[arg(long)]
    pub threads: Option<usize>,
    /// At most this many open connections; one more gets a JSON 503 and is closed.
    #[arg(long, default_value_t = 512)]
    pub max_connections: usize,
    /// A request's headers must arrive within this many seconds; a connection idle this long
    /// between requests is closed too.
    #[arg(long, default_value_t = 30.0)]
    pub header_timeout_s: f64,
    /// A request's body must arrive within this many seconds (else 408).
    #[arg(long, default_value_t = 30.0)]
    pub body_timeout_s: f64,
    /// At most this many requests wait for a batch slot; more are refused with 503.
    #[arg(long, default_value_t = 1024)]
    pub max_queue: usize,
    /// After SIGTERM/SIGHUP/Ctrl-C, running requests may finish for this long, then are aborted.
    #[arg(long, default_value_t = 30.0)]
    pub grace_s: f64,
}

/// A timeout flag: [`effbench_harness::limits::seconds`]'s range, and more than 0.
fn timeout(flag: &str, v: f64) -> Result<Duration> {
    let d = effbench_harness::limits::seconds(flag, v).map_err(anyhow::Error::msg)?;
    if d.is_zero() {
        anyhow::bail!("{flag} = {v} must be more than 0 s");
    }
    Ok(d)
}

pub fn run(args: Args) -> Result<ExitCode> {
    let cfg = ServeConfig {
        model: args.model.clone(),
        served_name: args.served_model_name.clone(),
        dtype: args.dtype.clone(),
        max_batch: args.max_batch,
        max_step_tokens: args.max_step_tokens,
        max_connections: args.max_connections,
        header_timeout: timeout("--header-timeout-s", args.header_timeout_s)?,
        body_timeout: timeout("--body-timeout-s", args.body_timeout_s)?,
        max_queue: args.max_queue,
        grace: effbench_harness::limits::seconds("--grace-s", args.grace_s)
            .map_err(anyhow::Error::msg)?,
    };
    if let Some(n) = args.threads {
        if n == 0 || n > 4096 {
            anyhow::bail!("--threads must be from 1 to 4096, got {n}");
        }
        // Read by candle's thread pools when they start (on the first forward pass); no
        // other thread runs yet.
        std::env::set_var("CANDLE_NUM_THREADS", n.to_string());
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    }
    serve::check(&cfg)?;
    let loaded = serve::load(&cfg).with_context(|| format!("--model {}", args.model))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("effbench-serve")
        .enable_all()
        .build()
        .context("cannot start the server's runtime")?;
    let addr = format!("{}:{}", args.host, args.port);
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(&addr))
        .with_context(|| format!("cannot listen on {addr} (--host/--port)"))?;
    let local = listener.local_addr()?;
    let info = loaded.info();
    eprintln!(
        "effbench serve: model '{}' ({} {}, {} params), max batch {}, {} tokens per step, greedy decoding",
        loaded.name(),
        info.format,
        info.dtype,
        info.params_total,
        cfg.max_batch,
        cfg.max_step_tokens,
    );
    eprintln!("effbench serve: listening on http://{local} (SIGTERM, SIGHUP or Ctrl-C stops)");
    let caught = Arc::new(AtomicI32::new(0));
    let grace = cfg.grace;
    let stop = {
        let caught = caught.clone();
        async move {
            let (sig, name) = stop_signal().await;
            caught.store(sig, Ordering::SeqCst);
            eprintln!(
                "effbench serve: {name}: stopping (no new requests; running ones finish within {} s or are aborted)",
                grace.as_secs_f64()
            );
        }
    };
    rt.block_on(serve::serve(listener, loaded, &cfg, stop))?;
    let sig = caught.load(Ordering::SeqCst);
    eprintln!("effbench serve: stopped");
    Ok(ExitCode::from((128 + sig).clamp(0, 255) as u8))
}

/// Resolves with the signal's number and name on SIGTERM, SIGHUP or Ctrl-C (the
/// process-wide interrupt flag, set by the CLI's Ctrl-C handler).
async fn stop_signal() -> (i32, &'static str) {
    use tokio::signal::unix::{signal, Signal, SignalKind};
    async fn recv(s: &mut Option<Signal>) {
        match s {
            Some(s) => {
                s.recv().await;
            }
            None => std::future::pending().await,
        }
    }
    let mut term = signal(SignalKind::terminate()).ok();
    let mut hup = signal(SignalKind::hangup()).ok();
    loop {
        tokio::select! {
            _ = recv(&mut term) => return (libc::SIGTERM, "SIGTERM"),
            _ = recv(&mut hup) => return (libc::SIGHUP, "SIGHUP"),
            _ = tokio::time::sleep(Duration::from_millis(100)) => {
                if effbench_harness::interrupt::requested() {
                    return (libc::SIGINT, "Ctrl-C");
                }
            }
        }
    }
}
