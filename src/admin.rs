//! The admin endpoint: `GET /metrics` (Prometheus text), `/healthz` (200
//! while the process serves), `/readyz` (200 once every listener is bound,
//! 503 before and while draining), `/status` (the status page) and
//! `/status.json`; anything else is 404. `POST /reload` asks the supervisor
//! to reload the config and answers with the result (what `tls-sidecar
//! reload` uses); it is refused unless the client is on loopback, whatever
//! address the endpoint listens on.
//!
//! It runs on its own tasks with a small connection cap and header timeout,
//! so a slow or hostile admin client cannot hold the relay up.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::status::{self, Board};

/// A request to reload, answered with the result.
pub type ReloadRequest = oneshot::Sender<Result<(), String>>;

/// Admin connections served at once; more wait in the kernel's backlog.
const MAX_ADMIN_CONNECTIONS: usize = 32;
/// A client must send its request headers within this.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// And finish its exchange within this.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);

/// What the admin endpoint reports on.
#[derive(Clone)]
pub struct AdminState {
    pub metrics: PrometheusHandle,
    /// `process_*` metrics (CPU, resident memory, fds, start time),
    /// refreshed at each scrape.
    pub process: Arc<metrics_process::Collector>,
    /// Readiness, the serving routes and reload results.
    pub board: Arc<Board>,
    /// Where `POST /reload` goes: the supervisor.
    pub reload: mpsc::Sender<ReloadRequest>,
}

/// Serves the admin endpoint on `listener` until `stop`.
pub async fn serve(listener: TcpListener, state: AdminState, stop: CancellationToken) {
    let slots = Arc::new(Semaphore::new(MAX_ADMIN_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            _ = stop.cancelled() => return,
            p = slots.clone().acquire_owned() => p.expect("never closed"),
        };
        let (tcp, peer) = tokio::select! {
            _ = stop.cancelled() => return,
            r = listener.accept() => match r {
                Ok(a) => a,
                Err(e) => {
                    tracing::debug!(error = %e, "admin: failed to accept");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let state = state.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(respond(&state, peer, &req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .keep_alive(true)
                .serve_connection(TokioIo::new(tcp), service);
            let _ = tokio::time::timeout(CONNECTION_TIMEOUT, conn).await;
        });
    }
}

fn body(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("cache-control", "no-store")
        .body(Full::new(Bytes::from(body)))
        .expect("plain response")
}

async fn respond(
    state: &AdminState,
    peer: SocketAddr,
    req: &Request<Incoming>,
) -> Response<Full<Bytes>> {
    let text = |status: StatusCode, body: &'static str| {
        Response::builder()
            .status(status)
            .header("content-type", "text/plain; charset=utf-8")
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .expect("static response")
    };
    if req.uri().path() == "/reload" {
        if req.method() != Method::POST {
            return text(StatusCode::METHOD_NOT_ALLOWED, "only POST\n");
        }
        return reload(state, peer).await;
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n");
    }
    match req.uri().path() {
        "/metrics" => {
            state.process.collect();
            Response::builder()
                .header("content-type", "text/plain; version=0.0.4; charset=utf-8")
                .body(Full::new(Bytes::from(crate::telemetry::render(
                    &state.metrics,
                ))))
                .expect("metrics response")
        }
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/status" => body(
            StatusCode::OK,
            "text/html; charset=utf-8",
            status::html(&state.board.snapshot()),
        ),
        "/status.json" => body(
            StatusCode::OK,
            "application/json",
            status::json(&state.board.snapshot()),
        ),
        "/readyz" => {
            if state.board.ready.load(Ordering::Acquire) {
                text(StatusCode::OK, "ready\n")
            } else {
                text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
            }
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: try /metrics, /healthz, /readyz, /status or /status.json\n",
        ),
    }
}

/// `POST /reload`: only from loopback (the endpoint may listen on all
/// addresses for Prometheus; a reload is for whoever runs on the host).
async fn reload(state: &AdminState, peer: SocketAddr) -> Response<Full<Bytes>> {
    let plain = "text/plain; charset=utf-8";
    if !peer.ip().is_loopback() {
        tracing::warn!(%peer, "admin: refused POST /reload from a non-loopback address");
        return body(
            StatusCode::FORBIDDEN,
            plain,
            "reload is accepted from loopback only\n".into(),
        );
    }
    let (tx, rx) = oneshot::channel();
    if state.reload.send(tx).await.is_err() {
        return body(
            StatusCode::SERVICE_UNAVAILABLE,
            plain,
            "not reloading: the sidecar is stopping\n".into(),
        );
    }
    match rx.await {
        Ok(Ok(())) => body(StatusCode::OK, plain, "reloaded\n".into()),
        Ok(Err(e)) => body(
            StatusCode::CONFLICT,
            plain,
            format!("reload refused, the previous config keeps serving: {e}\n"),
        ),
        Err(_) => body(
            StatusCode::SERVICE_UNAVAILABLE,
            plain,
            "not reloading: the sidecar is stopping\n".into(),
        ),
    }
}

/// Binds the admin address; the error names it.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}
