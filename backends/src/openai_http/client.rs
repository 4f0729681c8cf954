//! One OpenAI-compatible request and its timing: send, read the SSE stream (or the JSON
//! body), and turn it into a [`RequestRecord`] — token emissions relative to the send,
//! token counts from the server's `usage` (per chunk when the server streams cumulative
//! usage, else the total spread over the chunks), HTTP status, and the error kind of a
//! failure. The API key never appears in a message.

use super::sse::SseParser;
use effbench_harness::backend::{Emission, GenerationTrace};
use effbench_harness::serving::{ErrorKind, Failure, RequestRecord, TokenCounts};
use serde::Deserialize;
use std::borrow::Cow;
use std::time::{Duration, Instant};

/// Where and how requests go.
#[derive(Debug, Clone)]
pub struct Target {
    /// Full endpoint URL (`.../v1/completions`).
    pub url: String,
    /// Bearer token, from the environment variable the suite names.
    pub api_key: Option<String>,
    /// Ask for SSE streaming.
    pub stream: bool,
    /// Per-request timeout (connect to the end of the response).
    pub timeout: Duration,
    /// Extra headers sent with every request (their values are scrubbed like the key).
    pub headers: Vec<(reqwest::header::HeaderName, reqwest::header::HeaderValue)>,
    /// A client that never reuses a connection: a request whose kept-alive connection the
    /// server closed before answering is sent once more through it. `None`: no retry.
    pub fresh: Option<reqwest::Client>,
}

impl Target {
    /// A target with no extra headers and no retry client.
    pub fn new(url: impl Into<String>, stream: bool, timeout: Duration) -> Target {
        Target {
            url: url.into(),
            api_key: None,
            stream,
            timeout,
            headers: Vec::new(),
            fresh: None,
        }
    }

    /// The extra headers and the API key's `Authorization` header, for side requests (the
    /// server's `/metrics`).
    pub fn auth_headers(&self) -> Vec<(reqwest::header::HeaderName, reqwest::header::HeaderValue)> {
        let mut out = self.headers.clone();
        if let Some(k) = &self.api_key {
            if let Ok(mut v) = reqwest::header::HeaderValue::from_str(&format!("Bearer {k}")) {
                v.set_sensitive(true);
                out.push((reqwest::header::AUTHORIZATION, v));
            }
        }
        out
    }

    /// `text` with the API key and every extra header value replaced by `***`.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = match &self.api_key {
            Some(k) if !k.is_empty() => text.replace(k.as_str(), "***"),
            _ => text.to_string(),
        };
        for (_, v) in &self.headers {
            if let Ok(v) = v.to_str() {
                if v.len() >= 4 {
                    out = out.replace(v, "***");
                }
            }
        }
        out
    }
}

#[derive(Deserialize, Default)]
struct Usage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(default, borrow)]
    content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    reasoning_content: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    delta: Option<Delta<'a>>,
    #[serde(default, borrow)]
    message: Option<Delta<'a>>,
    #[serde(default, borrow)]
    finish_reason: Option<Cow<'a, str>>,
}

impl Choice<'_> {
    fn has_content(&self) -> bool {
        let some = |s: &Option<Cow<str>>| s.as_ref().is_some_and(|s| !s.is_empty());
        let delta = |d: &Option<Delta>| {
            d.as_ref()
                .is_some_and(|d| some(&d.content) || some(&d.reasoning_content))
        };
        some(&self.text) || delta(&self.delta) || delta(&self.message)
    }
}

/// A streamed chunk or a whole response body.
#[derive(Deserialize)]
struct Body<'a> {
    #[serde(default, borrow)]
    choices: Vec<Choice<'a>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

fn failure(kind: ErrorKind, message: impl Into<String>) -> Failure {
    Failure {
        kind,
        message: message.into(),
    }
}

/// Kind and one-line message of a client error (with its causes).
fn client_failure(target: &Target, e: &reqwest::Error) -> Failure {
    let kind = if e.is_timeout() {
        ErrorKind::Timeout
    } else {
        ErrorKind::Connection
    };
    let mut parts = vec![e.to_string()];
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        src = s.source();
    }
    failure(kind, target.scrub(&parts.join(": ")))
}

/// The error message of an OpenAI-style error body, else the start of the body.
fn error_message(body: &[u8]) -> String {
    let v: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let msg = v
        .as_ref()
        .and_then(|v| v.pointer("/error/message").or_else(|| v.get("message")))
        .and_then(|m| m.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned());
    msg.replace(['\n', '\r'], " ")
}

fn excerpt(data: &[u8]) -> String {
    let s = String::from_utf8_lossy(&data[..data.len().min(80)]).replace(['\n', '\r'], " ");
    format!("'{s}'")
}

/// Whether a request error is the server closing a kept-alive connection before answering
/// (reset, broken pipe, or hyper's "connection closed before message completed"), as opposed
/// to a refused connection or a timeout.
pub fn closed_before_answer(e: &reqwest::Error) -> bool {
    if e.is_timeout() || e.is_connect() {
        return false;
    }
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind as K;
            if matches!(
                io.kind(),
                K::ConnectionReset | K::BrokenPipe | K::ConnectionAborted | K::UnexpectedEof
            ) {
                return true;
            }
        }
        if s.to_string()
            .contains("connection closed before message completed")
        {
            return true;
        }
        src = s.source();
    }
    false
}

/// Sends one request with a pre-serialized JSON `body`; `sent` is the send time. When the
/// server closes the (kept-alive) connection before any answer, the request is sent once
/// more on a fresh connection (`target.fresh`) within what is left of the timeout, and the
/// record says so.
pub async fn send(
    client: &reqwest::Client,
    target: &Target,
    body: Vec<u8>,
    sent: Instant,
) -> RequestRecord {
    let mut rec = RequestRecord {
        streamed: target.stream,
        ..Default::default()
    };
    let mut req = client
        .post(&target.url)
        .timeout(target.timeout)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body);
    if let Some(k) = &target.api_key {
        req = req.bearer_auth(k);
    }
    for (k, v) in &target.headers {
        req = req.header(k, v);
    }
    let req = match req.build() {
        Ok(r) => r,
        Err(e) => {
            rec.failure = Some(client_failure(target, &e));
            return rec;
        }
    };
    // A body from bytes clones by reference count.
    let again = target
        .fresh
        .as_ref()
        .and_then(|f| Some((f, req.try_clone()?)));
    let mut resp = match client.execute(req).await {
        Ok(r) => r,
        Err(e) => match again {
            Some((fresh, mut req)) if closed_before_answer(&e) => {
                rec.retried = true;
                let left = target.timeout.saturating_sub(sent.elapsed());
                *req.timeout_mut() = Some(left.max(Duration::from_millis(1)));
                match fresh.execute(req).await {
                    Ok(r) => r,
                    Err(e) => {
                        rec.failure = Some(client_failure(target, &e));
                        return rec;
                    }
                }
            }
            _ => {
                rec.failure = Some(client_failure(target, &e));
                return rec;
            }
        },
    };
    let status = resp.status().as_u16();
    rec.http_status = Some(status);
    if !(200..300).contains(&status) {
        let mut body = Vec::new();
        while let Ok(Some(c)) = resp.chunk().await {
            body.extend_from_slice(&c);
            if body.len() > 65_536 {
                break;
            }
        }
        let msg = target.scrub(&error_message(&body));
        rec.failure = Some(failure(
            ErrorKind::of_status(status),
            format!("HTTP {status}: {msg}"),
        ));
        return rec;
    }
    if target.stream {
        read_stream(target, &mut resp, sent, &mut rec).await;
    } else {
        read_whole(target, &mut resp, sent, &mut rec).await;
    }
    rec
}

/// What the stream said so far.
#[derive(Default)]
struct StreamState {
    emissions: Vec<Emission>,
    /// Every content chunk carried a cumulative `completion_tokens`.
    cumulative: bool,
    last_cum: u64,
    usage: Usage,
    done: bool,
    finished: bool,
}

async fn read_stream(
    target: &Target,
    resp: &mut reqwest::Response,
    sent: Instant,
    rec: &mut RequestRecord,
) {
    let mut parser = SseParser::new();
    let mut st = StreamState {
        cumulative: true,
        ..Default::default()
    };
    loop {
        let chunk = match resp.chunk().await {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) => {
                rec.failure = Some(client_failure(target, &e));
                return;
            }
        };
        let t_ns = sent.elapsed().as_nanos() as u64;
        parser.feed(&chunk);
        if parser.pending_bytes() > effbench_harness::limits::MAX_LINE_BYTES as usize {
            rec.failure = Some(failure(
                ErrorKind::Protocol,
                format!(
                    "an SSE line or event longer than {} bytes (a stream without line ends?)",
                    effbench_harness::limits::MAX_LINE_BYTES
                ),
            ));
            return;
        }
        while let Some(data) = parser.next_event() {
            if let Err(f) = on_event(&data, t_ns, &mut st) {
                rec.failure = Some(Failure {
                    message: target.scrub(&f.message),
                    ..f
                });
                return;
            }
            if st.done {
                break;
            }
        }
        if st.done {
            break;
        }
    }
    let end_ns = sent.elapsed().as_nanos() as u64;
    if !st.done {
        if let Some(data) = parser.finish() {
            if let Err(f) = on_event(&data, end_ns, &mut st) {
                rec.failure = Some(f);
                return;
            }
        }
    }
    if !st.done && !st.finished {
        rec.failure = Some(failure(
            ErrorKind::Protocol,
            "the stream ended before [DONE] or a finish_reason",
        ));
        return;
    }
    finish_counts(&mut st, rec);
    rec.e2e_ns = rec.trace.emissions.last().map_or(end_ns, |e| e.t_ns);
}

/// Handles one SSE event's data.
fn on_event(data: &[u8], t_ns: u64, st: &mut StreamState) -> Result<(), Failure> {
    if data.trim_ascii() == b"[DONE]" {
        st.done = true;
        return Ok(());
    }
    let body: Body = serde_json::from_slice(data).map_err(|e| {
        failure(
            ErrorKind::Protocol,
            format!("malformed SSE data {}: {e}", excerpt(data)),
        )
    })?;
    if let Some(err) = &body.error {
        let msg = err
            .get("message")
            .and_then(|m| m.as_str())
            .map_or_else(|| err.to_string(), str::to_string);
        return Err(failure(
            ErrorKind::Server,
            format!("error in stream: {msg}"),
        ));
    }
    let content = body.choices.iter().any(Choice::has_content);
    st.finished |= body.choices.iter().any(|c| c.finish_reason.is_some());
    let cum = body.usage.as_ref().and_then(|u| u.completion_tokens);
    if content {
        match cum {
            Some(c) => {
                let k = c.saturating_sub(st.last_cum);
                st.last_cum = c;
                if k > 0 {
                    let tokens = u32::try_from(k).map_err(|_| {
                        failure(
                            ErrorKind::Protocol,
                            format!("implausible response: one chunk of {k} tokens"),
                        )
                    })?;
                    st.emissions.push(Emission { t_ns, tokens });
                }
            }
            None => {
                st.cumulative = false;
                st.emissions.push(Emission { t_ns, tokens: 1 });
            }
        }
    }
    if let Some(u) = body.usage {
        if u.prompt_tokens.is_some() {
            st.usage.prompt_tokens = u.prompt_tokens;
        }
        if u.completion_tokens.is_some() {
            st.usage.completion_tokens = u.completion_tokens;
        }
    }
    Ok(())
}

/// Output token counts per emission: exact from cumulative usage, or the usage total spread
/// evenly over the content chunks (one each when they match), or one per chunk.
fn finish_counts(st: &mut StreamState, rec: &mut RequestRecord) {
    let chunks = st.emissions.len() as u64;
    let total = st.usage.completion_tokens;
    rec.token_counts = match total {
        _ if st.cumulative && !st.emissions.is_empty() => TokenCounts::Exact,
        Some(t) if t == chunks => TokenCounts::Exact,
        Some(t) if chunks > 0 => {
            let (base, extra) = (t / chunks, t % chunks);
            for (i, e) in st.emissions.iter_mut().enumerate() {
                e.tokens = (base + u64::from((i as u64) < extra)) as u32;
            }
            st.emissions.retain(|e| e.tokens > 0);
            TokenCounts::Spread
        }
        Some(_) => TokenCounts::Exact,
        None => TokenCounts::Chunks,
    };
    let emitted: u64 = st.emissions.iter().map(|e| e.tokens as u64).sum();
    rec.output_tokens = total.unwrap_or(emitted).max(emitted);
    rec.input_tokens = st.usage.prompt_tokens.unwrap_or(0);
    rec.trace = GenerationTrace {
        batch: 1,
        prompt_tokens: rec.input_tokens as usize,
        emissions: std::mem::take(&mut st.emissions),
    };
}

async fn read_whole(
    target: &Target,
    resp: &mut reqwest::Response,
    sent: Instant,
    rec: &mut RequestRecord,
) {
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(c)) if body.len() + c.len() > effbench_harness::limits::MAX_BODY_BYTES => {
                rec.failure = Some(failure(
                    ErrorKind::Protocol,
                    format!(
                        "a response body over {} bytes",
                        effbench_harness::limits::MAX_BODY_BYTES
                    ),
                ));
                return;
            }
            Ok(Some(c)) => body.extend_from_slice(&c),
            Ok(None) => break,
            Err(e) => {
                rec.failure = Some(client_failure(target, &e));
                return;
            }
        }
    }
    rec.e2e_ns = sent.elapsed().as_nanos() as u64;
    let parsed: Body = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            rec.failure = Some(failure(
                ErrorKind::Protocol,
                format!("malformed JSON response {}: {e}", excerpt(&body)),
            ));
            return;
        }
    };
    if let Some(err) = &parsed.error {
        rec.failure = Some(failure(
            ErrorKind::Server,
            target.scrub(&format!("error in response: {err}")),
        ));
        return;
    }
    if parsed.choices.is_empty() {
        rec.failure = Some(failure(ErrorKind::Protocol, "response has no choices"));
        return;
    }
    let usage = parsed.usage.unwrap_or_default();
    rec.token_counts = if usage.completion_tokens.is_some() {
        TokenCounts::Exact
    } else {
        TokenCounts::Chunks
    };
    rec.output_tokens = usage.completion_tokens.unwrap_or(0);
    rec.input_tokens = usage.prompt_tokens.unwrap_or(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(events: &[(&str, u64)]) -> (StreamState, RequestRecord) {
        let mut st = StreamState {
            cumulative: true,
            ..Default::default()
        };
        for (data, t) in events {
            on_event(data.as_bytes(), *t, &mut st).unwrap();
        }
        let mut rec = RequestRecord::default();
        finish_counts(&mut st, &mut rec);
        (st, rec)
    }

    #[test]
    fn cumulative_usage_gives_exact_chunk_sizes() {
        let (_, rec) = stream(&[
            (
                r#"{"choices":[{"text":"a b","finish_reason":null}],"usage":{"prompt_tokens":5,"completion_tokens":2}}"#,
                10,
            ),
            (
                r#"{"choices":[{"text":"c d e","finish_reason":"length"}],"usage":{"prompt_tokens":5,"completion_tokens":5}}"#,
                40,
            ),
            ("[DONE]", 41),
        ]);
        let tokens: Vec<u32> = rec.trace.emissions.iter().map(|e| e.tokens).collect();
        assert_eq!(tokens, vec![2, 3]);
        assert_eq!((rec.output_tokens, rec.input_tokens), (5, 5));
        assert_eq!(rec.token_counts, TokenCounts::Exact);
    }

    #[test]
    fn a_final_total_is_spread_over_chunks() {
        let (_, rec) = stream(&[
            (r#"{"choices":[{"delta":{"role":"assistant"}}]}"#, 1),
            (r#"{"choices":[{"delta":{"content":"ab"}}]}"#, 10),
            (r#"{"choices":[{"delta":{"content":"cd"}}]}"#, 20),
            (
                r#"{"choices":[{"delta":{"content":"e"},"finish_reason":"stop"}]}"#,
                30,
            ),
            (
                r#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":7}}"#,
                31,
            ),
        ]);
        // the role-only chunk carries no token; 7 tokens over 3 chunks: 3, 2, 2
        let tokens: Vec<u32> = rec.trace.emissions.iter().map(|e| e.tokens).collect();
        assert_eq!(tokens, vec![3, 2, 2]);
        assert_eq!(rec.trace.emissions[0].t_ns, 10);
        assert_eq!(rec.token_counts, TokenCounts::Spread);
        assert_eq!(rec.output_tokens, 7);
    }

    #[test]
    fn one_token_per_chunk_without_usage() {
        let (_, rec) = stream(&[
            (r#"{"choices":[{"text":"x"}]}"#, 1),
            (r#"{"choices":[{"text":"y","finish_reason":"length"}]}"#, 2),
        ]);
        assert_eq!(rec.output_tokens, 2);
        assert_eq!(rec.token_counts, TokenCounts::Chunks);
    }

    #[test]
    fn bad_events_are_classified() {
        let mut st = StreamState::default();
        let e = on_event(b"{not json", 1, &mut st).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Protocol);
        assert!(
            e.message.contains("malformed SSE data '{not json'"),
            "{}",
            e.message
        );
        let e = on_event(br#"{"error":{"message":"out of memory"}}"#, 1, &mut st).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Server);
        assert!(e.message.contains("out of memory"));
    }

    #[test]
    fn scrubbing_and_error_bodies() {
        let mut t = Target::new("", true, Duration::from_secs(1));
        t.api_key = Some("sk-secret".into());
        t.headers.push((
            reqwest::header::HeaderName::from_static("x-token"),
            reqwest::header::HeaderValue::from_static("tok-123"),
        ));
        assert_eq!(
            t.scrub("bad key sk-secret, token tok-123"),
            "bad key ***, token ***"
        );
        assert_eq!(
            error_message(br#"{"error":{"message":"model not found","type":"x"}}"#),
            "model not found"
        );
        assert_eq!(error_message(b"plain\ntext"), "plain text");
    }
}
