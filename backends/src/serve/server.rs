//! The connection side of `effbench serve`: an accept loop over hyper's HTTP/1.1 connections
//! with the limits a server reachable by other programs needs — at most `max_connections`
//! open at once (one over the cap gets a JSON 503 and is closed), a header read timeout that
//! also closes connections idle between requests, a body read timeout (in the handlers) —
//! and a graceful shutdown with a deadline: on the shutdown signal it stops accepting, closes
//! idle connections, refuses new requests, lets running ones finish for the grace period,
//! aborts the rest, and returns at the latest [`FLUSH`] after that.

use super::engine::{run_guarded, Engine};
use super::queue::Queue;
use super::{api, App};
use anyhow::{Context, Result};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// After the grace period has aborted the running requests, connections have this long to
/// send their last bytes before the server returns anyway.
pub const FLUSH: Duration = Duration::from_secs(5);

/// Connection limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Open connections at most.
    pub max_connections: usize,
    /// A request's headers must arrive within this (also: longest idle keep-alive).
    pub header_timeout: Duration,
    /// After the shutdown signal, running requests may finish for this long.
    pub grace: Duration,
}

/// Serves `app` with `engine` on `listener` until `shutdown` resolves, then shuts down
/// gracefully within `limits.grace` + [`FLUSH`].
pub async fn run(
    listener: TcpListener,
    engine: Engine,
    app: App,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    let queue: Arc<Queue> = app.queue.clone();
    let engine_thread = std::thread::Builder::new()
        .name("effbench-serve-engine".into())
        .spawn({
            let queue = queue.clone();
            move || run_guarded(engine, queue)
        })
        .context("cannot start the engine thread")?;
    let service = TowerToHyperService::new(api::router(Arc::new(app)));
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    eprintln!("effbench serve: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tokio::spawn(refuse(stream, limits.max_connections));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let conn = http.serve_connection(TokioIo::new(stream), service.clone());
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
            drop(permit);
        });
    }
    drop(listener);
    queue.close();
    let drained = async {
        tokio::select! {
            _ = graceful.shutdown() => {}
            _ = tokio::time::sleep(limits.grace) => {
                queue.abort();
                let _ = tokio::time::timeout(FLUSH, slots.acquire_many(limits.max_connections as u32)).await;
            }
        }
    };
    drained.await;
    queue.abort();
    let joined = tokio::task::spawn_blocking(move || engine_thread.join()).await;
    if !matches!(joined, Ok(Ok(()))) {
        anyhow::bail!("the engine thread could not be joined");
    }
    Ok(())
}

/// One connection too many: a JSON 503 and close, without reading the request.
async fn refuse(mut stream: tokio::net::TcpStream, cap: usize) {
    let body = serde_json::json!({"error": {
        "message": format!("too many open connections (--max-connections {cap}); retry later"),
        "type": "server_error", "param": null, "code": null}})
    .to_string();
    let reply = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(reply.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}
