//! The admin endpoint: `GET /metrics` (Prometheus text), `/healthz` (200
//! while the process serves), `/readyz` (200 once every listener is bound,
//! 503 before and while draining), `/status` (the status page) and
//! `/status.json`; anything else is 404. `POST /reload` asks the supervisor
//! to reload the config and answers with the result (what `tls-sidecar
//! reload` uses); it is refused unless the client is on loopback, whatever
//! address the endpoint listens on, and refused to browsers (`guard`).
//! Every request whose `Host` is not an IP literal, `localhost` or a name
//! in `[admin] hosts` gets 421 (DNS rebinding).
//!
//! It runs on its own tasks and holds under abuse (issue 25): every client
//! is accepted at once, the connection limits close the oldest idle
//! connection rather than refuse a new one (`slots`), a request's head must
//! arrive within [`HEADER_TIMEOUT`] and a keep-alive connection is closed
//! after as long without a request. `/healthz` and `/readyz` thus answer
//! at once whatever other clients do.

mod guard;
mod slots;

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
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

pub use guard::Refusal;
pub use slots::{Marker, Slots, PER_CLIENT, TOTAL};

use crate::status::{self, Board};

/// A request to reload, answered with the result.
pub type ReloadRequest = oneshot::Sender<Result<(), String>>;

/// A client must send each request's head within this, the first on a new
/// connection as the next on a kept-alive one (hyper starts the clock when
/// it waits for a head): so an idle keep-alive connection closes after it.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(3);
/// And no connection lasts longer than this.
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
    /// `[admin] hosts`: names the `Host` header may give besides IP
    /// literals and `localhost` (lowercase).
    pub hosts: Arc<[String]>,
}

/// Serves the admin endpoint on `listener` until `stop`.
pub async fn serve(listener: TcpListener, state: AdminState, stop: CancellationToken) {
    let slots = Arc::new(Slots::default());
    loop {
        let (tcp, peer) = tokio::select! {
            _ = stop.cancelled() => return,
            r = listener.accept() => match r {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors, most likely: wait a little.
                    tracing::debug!(error = %e, "admin: failed to accept");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(slot) = slots.admit(peer.ip()) else {
            tracing::debug!(%peer, "admin: every connection is answering a request: closed");
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let conn = connection(TokioIo::new(tcp), peer, state, slot.marker());
            tokio::select! {
                _ = slot.evicted.cancelled() => {
                    tracing::debug!(%peer, "admin: idle connection closed for a newer one");
                }
                _ = tokio::time::timeout(CONNECTION_TIMEOUT, conn) => {}
            }
        });
    }
}

/// Serves one connection's requests (HTTP/1.1, keep-alive) from `peer`;
/// `marker` says when it is answering one. Public for the fuzz target.
pub async fn connection<IO>(io: TokioIo<IO>, peer: SocketAddr, state: AdminState, marker: Marker)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let state = state.clone();
        let busy = marker.busy();
        async move {
            let answer = respond(&state, peer, &req).await;
            drop(busy);
            Ok::<_, Infallible>(answer)
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .keep_alive(true)
        .max_buf_size(16 * 1024)
        .serve_connection(io, service)
        .await;
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
    if let Err(r) = guard::host(req.headers(), &state.hosts) {
        return text(StatusCode::MISDIRECTED_REQUEST, r.words());
    }
    if req.uri().path() == "/reload" {
        if req.method() != Method::POST {
            return text(StatusCode::METHOD_NOT_ALLOWED, "only POST\n");
        }
        return reload(state, peer, req).await;
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
async fn reload(
    state: &AdminState,
    peer: SocketAddr,
    req: &Request<Incoming>,
) -> Response<Full<Bytes>> {
    let plain = "text/plain; charset=utf-8";
    if !peer.ip().to_canonical().is_loopback() {
        tracing::warn!(%peer, "admin: refused POST /reload from a non-loopback address");
        return body(
            StatusCode::FORBIDDEN,
            plain,
            "reload is accepted from loopback only\n".into(),
        );
    }
    if let Err(r) = guard::not_a_browser(req.headers()) {
        tracing::warn!(%peer, "admin: refused POST /reload from a browser");
        return body(StatusCode::FORBIDDEN, plain, r.words().into());
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

/// Binds the admin address as every route binds its own: SO_REUSEADDR and
/// an accept queue as deep as the kernel allows. A plain bind's 128 let a
/// burst of connections (a flood, or its reconnecting) overflow the queue;
/// the kernel then drops SYNs, and a health check whose SYN was dropped
/// waits a full second for the retransmission, kubelet's whole timeout.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    crate::route::listener::bind(addr)
}
