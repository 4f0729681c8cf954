//! Responses to completion requests: one JSON body, or server-sent events. Streamed tokens
//! that are ready together go out as one chunk; with `stream_options.include_usage` every
//! chunk carries the cumulative `usage` (vLLM's continuous usage stats) so a client can count
//! the tokens of a multi-token chunk, and a final chunk has the totals. Dropping the
//! response (client gone) closes the channel, which cancels the generation.

use super::api::error;
use super::queue::Event;
use axum::body::{Body, Bytes};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// What every response repeats.
pub struct Meta {
    /// `cmpl-N` or `chatcmpl-N`.
    pub id: String,
    /// The served model name.
    pub model: String,
    /// Unix seconds.
    pub created: u64,
    /// A chat completion.
    pub chat: bool,
    /// Prompt tokens.
    pub n_prompt: usize,
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

/// Waits for the end and answers with one JSON body.
pub async fn whole(meta: Meta, mut rx: mpsc::UnboundedReceiver<Event>) -> Response {
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

/// Answers with server-sent events as tokens arrive.
pub fn stream(meta: Meta, rx: mpsc::UnboundedReceiver<Event>, include_usage: bool) -> Response {
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
