//! The HTTP routes of `effbench serve`: `/health`, `/v1/models`, `/v1/completions`,
//! `/v1/chat/completions` (JSON or SSE with `usage`), `/metrics` (Prometheus text). Requests
//! are parsed by hand so that every bad one gets an OpenAI-style JSON error naming the field
//! (400, 404 for an unknown model, 503 when the queue is full or the server is stopping).
//! Streamed tokens that are ready together go out as one chunk; with `stream_options.
//! include_usage` every chunk carries the cumulative `usage` (vLLM's continuous usage
//! stats) so a client can count the tokens of a multi-token chunk, and a final chunk has
//! the totals. Dropping the response (client gone) cancels the generation.

// Handlers return a ready `Response` as the error of their parsing steps: one per bad
// request, so its size does not matter.
#![allow(clippy::result_large_err)]

use super::engine::{Event, Job, Rejected};
use super::App;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The routes over shared state.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok\n" }))
        .route("/v1/models", get(models))
        .route("/v1/completions", post(completions))
        .route("/v1/chat/completions", post(chat))
        .route("/metrics", get(metrics))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "not_found", "no such route", None) })
        .with_state(app)
}

/// An OpenAI-style error body.
pub fn error(status: StatusCode, kind: &str, message: &str, param: Option<&str>) -> Response {
    let body = json!({"error": {"message": message, "type": kind, "param": param, "code": null}});
    (status, Json(body)).into_response()
}

fn bad(message: String, param: &str) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        &message,
        Some(param),
    )
}

async fn models(State(app): State<Arc<App>>) -> Json<Value> {
    let i = &app.info;
    Json(json!({"object": "list", "data": [{
        "id": app.name, "object": "model", "created": app.created, "owned_by": "effbench",
        "max_model_len": app.context,
        "effbench": {
            "format": i.format, "arch": i.arch, "dtype": i.dtype,
            "params_total": i.params_total, "params_non_embedding": i.params_non_embedding,
            "file_bytes": i.file_bytes, "loaded_bytes": i.loaded_bytes, "sha256": i.sha256,
        }
    }]}))
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.stats.render(),
    )
        .into_response()
}

/// A validated request.
#[derive(Debug)]
struct Parsed {
    prompt: Vec<u32>,
    max_tokens: usize,
    stream: bool,
    include_usage: bool,
    ignore_eos: bool,
}

fn parse(app: &App, body: &[u8], chat: bool) -> Result<Parsed, Response> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| bad(format!("the request body is not JSON: {e}"), "body"))?;
    let o = v
        .as_object()
        .ok_or_else(|| bad("the request body must be a JSON object".into(), "body"))?;
    match o.get("model") {
        None | Some(Value::Null) => {}
        Some(Value::String(m)) if *m == app.name => {}
        Some(Value::String(m)) => {
            return Err(error(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                &format!(
                    "the model '{m}' does not exist (this server has '{}')",
                    app.name
                ),
                Some("model"),
            ))
        }
        Some(_) => return Err(bad("model must be a string".into(), "model")),
    }
    let flag = |k: &str| -> Result<bool, Response> {
        match o.get(k) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(bad(format!("{k} must be true or false"), k)),
        }
    };
    let stream = flag("stream")?;
    let ignore_eos = flag("ignore_eos")?;
    let include_usage = match o.get("stream_options") {
        None | Some(Value::Null) => false,
        Some(Value::Object(so)) => so.get("include_usage") == Some(&Value::Bool(true)),
        Some(_) => {
            return Err(bad(
                "stream_options must be an object".into(),
                "stream_options",
            ))
        }
    };
    if let Some(n) = o.get("n").filter(|n| !n.is_null()) {
        if n.as_u64() != Some(1) {
            return Err(bad("only n = 1 is supported".into(), "n"));
        }
    }
    let prompt = if chat {
        chat_prompt(app, o.get("messages"))?
    } else {
        completion_prompt(app, o.get("prompt"))?
    };
    if prompt.is_empty() {
        return Err(bad(
            "the prompt has no tokens".into(),
            if chat { "messages" } else { "prompt" },
        ));
    }
    let key = if chat && o.contains_key("max_completion_tokens") {
        "max_completion_tokens"
    } else {
        "max_tokens"
    };
    let room = app.context.saturating_sub(prompt.len());
    let max_tokens = match o.get(key) {
        None | Some(Value::Null) => {
            if chat {
                room
            } else {
                room.min(16)
            }
        }
        Some(m) => match m.as_u64() {
            Some(m) if m >= 1 => m as usize,
            _ => return Err(bad(format!("{key} must be an integer >= 1"), key)),
        },
    };
    if prompt.len() + max_tokens > app.context {
        return Err(bad(
            format!(
                "the prompt has {} tokens and {key} is {max_tokens}: more than the model's context of {} tokens",
                prompt.len(),
                app.context
            ),
            key,
        ));
    }
    Ok(Parsed {
        prompt,
        max_tokens,
        stream,
        include_usage,
        ignore_eos,
    })
}

fn encode(app: &App, text: &str, param: &str) -> Result<Vec<u32>, Response> {
    app.tokenizer
        .encode(text, true)
        .map(|e| e.get_ids().to_vec())
        .map_err(|e| bad(format!("cannot tokenize the {param}: {e}"), param))
}

fn completion_prompt(app: &App, p: Option<&Value>) -> Result<Vec<u32>, Response> {
    let ids = |a: &[Value]| -> Option<Vec<u32>> {
        a.iter()
            .map(|x| {
                x.as_u64()
                    .filter(|&i| i < app.tokenizer.get_vocab_size(true) as u64)
            })
            .map(|x| x.map(|i| i as u32))
            .collect()
    };
    match p {
        Some(Value::String(s)) => encode(app, s, "prompt"),
        Some(Value::Array(a)) if a.len() == 1 && a[0].is_string() => {
            encode(app, a[0].as_str().unwrap_or_default(), "prompt")
        }
        Some(Value::Array(a)) if a.len() == 1 && a[0].is_array() => {
            ids(a[0].as_array().map_or(&[][..], |v| v)).ok_or_else(|| {
                bad(
                    "prompt token ids must be integers in the vocabulary".into(),
                    "prompt",
                )
            })
        }
        Some(Value::Array(a)) if a.iter().all(Value::is_number) => ids(a).ok_or_else(|| {
            bad(
                "prompt token ids must be integers in the vocabulary".into(),
                "prompt",
            )
        }),
        Some(Value::Array(_)) => Err(bad(
            "only one prompt per request is supported".into(),
            "prompt",
        )),
        None | Some(Value::Null) => Err(bad("prompt is required".into(), "prompt")),
        Some(_) => Err(bad(
            "prompt must be a string or an array of token ids".into(),
            "prompt",
        )),
    }
}

fn chat_prompt(app: &App, m: Option<&Value>) -> Result<Vec<u32>, Response> {
    let Some(Value::Array(msgs)) = m else {
        return Err(bad("messages must be a non-empty array".into(), "messages"));
    };
    if msgs.is_empty() {
        return Err(bad("messages must be a non-empty array".into(), "messages"));
    }
    let mut plain = Vec::with_capacity(msgs.len());
    for (i, msg) in msgs.iter().enumerate() {
        let role = msg.get("role").and_then(Value::as_str);
        let content = match msg.get("content") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Array(parts)) => parts
                .iter()
                .map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Option<Vec<_>>>()
                .map(|v| v.concat()),
            _ => None,
        };
        match (role, content) {
            (Some(r), Some(c)) => plain.push(json!({"role": r, "content": c})),
            _ => {
                return Err(bad(
                    format!("messages[{i}] needs a string role and text content"),
                    "messages",
                ))
            }
        }
    }
    let text = match &app.chat_template {
        Some(t) => {
            let mut env = minijinja::Environment::new();
            env.add_function(
                "raise_exception",
                |m: String| -> Result<String, minijinja::Error> {
                    Err(minijinja::Error::new(
                        minijinja::ErrorKind::InvalidOperation,
                        m,
                    ))
                },
            );
            env.render_str(
                t,
                minijinja::context! { messages => minijinja::value::Value::from(minijinja::value::Serde(&plain)), add_generation_prompt => true,
                bos_token => &app.bos, eos_token => &app.eos },
            )
            .map_err(|e| bad(format!("the model's chat template failed: {e}"), "messages"))?
        }
        // No template: "role: content" lines, then "assistant:".
        None => {
            let mut s = String::new();
            for p in &plain {
                s.push_str(&format!(
                    "{}: {}\n",
                    p["role"].as_str().unwrap_or(""),
                    p["content"].as_str().unwrap_or("")
                ));
            }
            s + "assistant:"
        }
    };
    encode(app, &text, "messages")
}

async fn completions(State(app): State<Arc<App>>, body: Bytes) -> Response {
    handle(app, &body, false).await
}

async fn chat(State(app): State<Arc<App>>, body: Bytes) -> Response {
    handle(app, &body, true).await
}

async fn handle(app: Arc<App>, body: &[u8], chat: bool) -> Response {
    let p = match parse(&app, body, chat) {
        Ok(p) => p,
        Err(r) => {
            app.stats.rejected_4xx.fetch_add(1, Ordering::Relaxed);
            return r;
        }
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let n_prompt = p.prompt.len();
    let job = Job {
        prompt: p.prompt,
        max_tokens: p.max_tokens,
        ignore_eos: p.ignore_eos,
        tx,
        enqueued: Instant::now(),
    };
    if let Err(why) = app.queue.push(job) {
        app.stats.rejected_503.fetch_add(1, Ordering::Relaxed);
        let msg = match why {
            Rejected::Full => "the request queue is full; retry later",
            Rejected::Closing => "the server is shutting down",
        };
        return error(StatusCode::SERVICE_UNAVAILABLE, "server_error", msg, None);
    }
    let meta = Meta {
        id: format!(
            "{}-{}",
            if chat { "chatcmpl" } else { "cmpl" },
            NEXT_ID.fetch_add(1, Ordering::Relaxed)
        ),
        model: app.name.clone(),
        created: app.created,
        chat,
        n_prompt,
    };
    if p.stream {
        stream(meta, rx, p.include_usage)
    } else {
        whole(meta, rx).await
    }
}

/// What every response repeats.
struct Meta {
    id: String,
    model: String,
    created: u64,
    chat: bool,
    n_prompt: usize,
}

impl Meta {
    fn object(&self, chunk: bool) -> &'static str {
        match (self.chat, chunk) {
            (true, true) => "chat.completion.chunk",
            (true, false) => "chat.completion",
            (false, _) => "text_completion",
        }
    }
    fn usage(&self, completion: usize) -> Value {
        json!({"prompt_tokens": self.n_prompt, "completion_tokens": completion,
            "total_tokens": self.n_prompt + completion})
    }
    fn choice(&self, text: &str, finish: Option<&str>, first: bool, chunk: bool) -> Value {
        if !self.chat {
            return json!({"index": 0, "text": text, "logprobs": null, "finish_reason": finish});
        }
        let key = if chunk { "delta" } else { "message" };
        let mut msg = json!({"content": text});
        if first || !chunk {
            msg["role"] = json!("assistant");
        }
        json!({"index": 0, key: msg, "logprobs": null, "finish_reason": finish})
    }
    fn body(&self, choices: Value, chunk: bool, usage: Option<Value>) -> Value {
        let mut b = json!({"id": self.id, "object": self.object(chunk), "created": self.created,
            "model": self.model, "choices": choices});
        if let Some(u) = usage {
            b["usage"] = u;
        }
        b
    }
}

async fn whole(meta: Meta, mut rx: mpsc::UnboundedReceiver<Event>) -> Response {
    let mut text = String::new();
    while let Some(ev) = rx.recv().await {
        match ev {
            Event::Token(t) => text.push_str(&t),
            Event::Error(e) => {
                return error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", &e, None)
            }
            Event::Done {
                finish,
                completion_tokens,
                ..
            } => {
                let choice = meta.choice(&text, Some(finish), true, false);
                let body = meta.body(json!([choice]), false, Some(meta.usage(completion_tokens)));
                return Json(body).into_response();
            }
        }
    }
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "server_error",
        "the engine stopped",
        None,
    )
}

/// The stream's state between chunks.
struct Streaming {
    meta: Meta,
    rx: mpsc::UnboundedReceiver<Event>,
    include_usage: bool,
    tokens: usize,
    first: bool,
    /// Tokens generated but not yet sent (their text was empty).
    pending_done: Option<Event>,
    finished: bool,
}

fn sse(v: &Value) -> Bytes {
    Bytes::from(format!("data: {v}\n\n"))
}

fn stream(meta: Meta, rx: mpsc::UnboundedReceiver<Event>, include_usage: bool) -> Response {
    let st = Streaming {
        meta,
        rx,
        include_usage,
        tokens: 0,
        first: true,
        pending_done: None,
        finished: false,
    };
    let s = futures_util::stream::unfold(st, |mut st| async move {
        let out = next_chunk(&mut st).await?;
        Some((Ok::<Bytes, std::convert::Infallible>(out), st))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(s))
        .expect("static headers are valid")
}

/// The next SSE bytes: one chunk with every token ready now, or the end.
async fn next_chunk(st: &mut Streaming) -> Option<Bytes> {
    if st.finished {
        return None;
    }
    let mut text = String::new();
    let mut k = 0usize;
    loop {
        let ev = match st.pending_done.take() {
            Some(ev) => ev,
            None if k > 0 && !text.is_empty() => match st.rx.try_recv() {
                Ok(ev) => ev,
                Err(_) => break,
            },
            None => match st.rx.recv().await {
                Some(ev) => ev,
                None => Event::Error("the engine stopped".into()),
            },
        };
        match ev {
            Event::Token(t) => {
                k += 1;
                text.push_str(&t);
            }
            done => {
                if k > 0 && !text.is_empty() {
                    st.pending_done = Some(done);
                    break;
                }
                st.finished = true;
                return Some(end(st, done, k));
            }
        }
    }
    st.tokens += k;
    let m = &st.meta;
    let choice = m.choice(&text, None, st.first, true);
    st.first = false;
    let usage = st.include_usage.then(|| m.usage(st.tokens));
    Some(sse(&m.body(json!([choice]), true, usage)))
}

/// The last chunks: finish reason, usage totals, `[DONE]` (or an error event).
fn end(st: &mut Streaming, done: Event, k: usize) -> Bytes {
    st.tokens += k;
    let m = &st.meta;
    match done {
        Event::Done {
            finish,
            completion_tokens,
            ..
        } => {
            let usage = st.include_usage.then(|| m.usage(completion_tokens));
            let mut out = sse(&m.body(
                json!([m.choice("", Some(finish), st.first, true)]),
                true,
                usage.clone(),
            ))
            .to_vec();
            if let Some(u) = usage {
                out.extend_from_slice(&sse(&m.body(json!([]), true, Some(u))));
            }
            out.extend_from_slice(b"data: [DONE]\n\n");
            Bytes::from(out)
        }
        Event::Error(e) => sse(&json!({"error": {"message": e, "type": "server_error"}})),
        Event::Token(_) => unreachable!("tokens are handled by next_chunk"),
    }
}
