//! `effbench serve`: an OpenAI-compatible server for a model the candle backend loads
//! (effbench_backends::serve), on 127.0.0.1 by default. Ctrl-C or SIGTERM stops it
//! gracefully: no new requests, running ones finish within `--grace-s`, then it exits 0.

use anyhow::{Context, Result};
use effbench_backends::serve::{self, ServeConfig};
use std::process::ExitCode;
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
    /// At most this many requests decode together (continuous batching); 1 = one at a time.
    #[arg(long, default_value_t = 8)]
    pub max_batch: usize,
    /// At most this many requests wait for a batch slot; more are refused with 503.
    #[arg(long, default_value_t = 1024)]
    pub max_queue: usize,
    /// After Ctrl-C/SIGTERM, running requests may finish for this long, then are aborted.
    #[arg(long, default_value_t = 30.0)]
    pub grace_s: f64,
}

pub fn run(args: Args) -> Result<ExitCode> {
    if !(args.grace_s.is_finite() && args.grace_s >= 0.0) {
        anyhow::bail!("--grace-s must be a number of seconds >= 0");
    }
    let cfg = ServeConfig {
        model: args.model.clone(),
        served_name: args.served_model_name.clone(),
        dtype: args.dtype.clone(),
        max_batch: args.max_batch,
        max_queue: args.max_queue,
        grace: effbench_harness::limits::seconds("--grace-s", args.grace_s)
            .map_err(anyhow::Error::msg)?,
    };
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
        "effbench serve: model '{}' ({} {}, {} params), max batch {}, greedy decoding",
        loaded.name(),
        info.format,
        info.dtype,
        info.params_total,
        args.max_batch
    );
    eprintln!("effbench serve: listening on http://{local} (Ctrl-C or SIGTERM stops)");
    rt.block_on(serve::serve(listener, loaded, cfg.grace, stop_signal()))?;
    eprintln!("effbench serve: stopped");
    Ok(ExitCode::SUCCESS)
}

/// Resolves on SIGTERM or Ctrl-C (the process-wide interrupt flag).
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).ok();
    loop {
        let tick = tokio::time::sleep(Duration::from_millis(100));
        match term.as_mut() {
            Some(t) => tokio::select! {
                _ = t.recv() => break,
                _ = tick => {}
            },
            None => tick.await,
        }
        if effbench_harness::interrupt::requested() {
            break;
        }
    }
    eprintln!("effbench serve: stopping (no new requests; running ones finish or are aborted)");
}
