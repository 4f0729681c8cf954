//! The HTTP routes of `effbench serve`: `/health`, `/v1/models`, `/v1/completions`,
//! `/v1/chat/completions` (JSON or SSE with `usage`, see [`respond`](super::respond)),
//! `/metrics` (Prometheus text). Every error is an OpenAI-style JSON error: bad requests
//! name the field (400; 404 for an unknown model; 413 for a body over [`MAX_BODY`]; 408 for
//! a body that does not arrive within the body timeout; 503 when the queue is full, the
//! server is stopping or the engine has failed), and a last layer turns whatever else would
//! leave without a JSON body (405 for a wrong method, an unknown route) into one.

use super::queue::{Job, Rejected};
use super::respond::{stream, whole, Meta};
use super::{request, App};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Largest request body accepted (a full context of token ids is well under 100 KiB).
pub const MAX_BODY: usize = 2 << 20;

/// The routes over shared state.
pub fn router(app: Arc<App>) -> Router {
    let routes = Router::new()
        .route("/health", get(health))
        .route("/v1/models", get(models))
        .route("/v1/completions", post(completions))
        .route("/v1/chat/completions", post(chat))
        .route("/metrics", get(metrics))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "not_found", "no such route", None) })
        .with_state(app);
    // Around the whole router (a layer on `routes` would sit inside each method router,
    // before it adds its `Allow` header).
    Router::new()
        .fallback_service(routes)
        .layer(middleware::from_fn(json_errors))
}

/// Any error response without a JSON body (axum's own 405, for one) gets one, naming the
/// method and path; its headers (`Allow`) are kept.
async fn json_errors(req: Request, next: Next) -> Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let res = next.run(req).await;
    let status = res.status();
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return res;
    }
    let message = match status {
        StatusCode::METHOD_NOT_ALLOWED => {
            let allow = res
                .headers()
                .get(header::ALLOW)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            format!("{method} is not allowed on {path} (allowed: {allow})")
        }
        s => format!(
            "{method} {path}: {}",
            s.canonical_reason().unwrap_or("error")
        ),
    };
    let kind = if status.is_client_error() {
        "invalid_request_error"
    } else {
        "server_error"
    };
    let (mut parts, _) = res.into_parts();
    let mut fresh = error(status, kind, &message, None);
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    std::mem::swap(fresh.headers_mut(), &mut parts.headers);
    fresh
}

/// 200 while the engine runs; 503 with the reason once it has failed.
async fn health(State(app): State<Arc<App>>) -> Response {
    match app.queue.health() {
        Ok(()) => "ok\n".into_response(),
        Err(why) => error(StatusCode::SERVICE_UNAVAILABLE, "server_error", &why, None),
    }
}

/// An OpenAI-style error body.
pub fn error(status: StatusCode, kind: &str, message: &str, param: Option<&str>) -> Response {
    let body = json!({"error": {"message": message, "type": kind, "param": param, "code": null}});
    (status, Json(body)).into_response()
}

/// A 400 naming the bad field.
pub fn bad(message: String, param: &str) -> Response {
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

async fn completions(State(app): State<Arc<App>>, body: Body) -> Response {
    handle(app, body, false).await
}

async fn chat(State(app): State<Arc<App>>, body: Body) -> Response {
    handle(app, body, true).await
}

/// The whole body within the body timeout and [`MAX_BODY`], or the JSON error to send.
async fn read_body(app: &App, body: Body) -> Result<axum::body::Bytes, Response> {
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            &format!("the request body is larger than {MAX_BODY} bytes"),
            Some("body"),
        )
    };
    // A declared length over the limit is refused before any of the body is read.
    if axum::body::HttpBody::size_hint(&body).lower() > MAX_BODY as u64 {
        return Err(too_large());
    }
    match tokio::time::timeout(app.body_timeout, axum::body::to_bytes(body, MAX_BODY)).await {
        Ok(Ok(b)) => Ok(b),
        Ok(Err(e)) => {
            let over = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            Err(if over {
                too_large()
            } else {
                bad(format!("cannot read the request body: {e}"), "body")
            })
        }
        Err(_) => Err(error(
            StatusCode::REQUEST_TIMEOUT,
            "invalid_request_error",
            &format!(
                "the request body did not arrive within {} s",
                app.body_timeout.as_secs_f64()
            ),
            Some("body"),
        )),
    }
}

async fn handle(app: Arc<App>, body: Body, chat: bool) -> Response {
    let body = match read_body(&app, body).await {
        Ok(b) => b,
        Err(r) => {
            app.stats.rejected_4xx.fetch_add(1, Ordering::Relaxed);
            return r;
        }
    };
    let p = match request::parse(&app, &body, chat) {
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
            Rejected::Full => "the request queue is full; retry later".to_string(),
            Rejected::Closing => "the server is shutting down".to_string(),
            Rejected::Dead(why) => why,
        };
        return error(StatusCode::SERVICE_UNAVAILABLE, "server_error", &msg, None);
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
