//! Reaching the upstream: `connect` entries in order (primary, then
//! backups), DNS resolved at connect time, each address bounded by
//! `connect_timeout`. Every failed address is logged and counted.
//! Through the route's CONNECT proxy if it has one (`via`), and
//! with the route's PROXY header written first if it sends one.

use std::io;
use std::net::SocketAddr;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::dial::connect_one;
use super::plan::RoutePlan;
use super::{proxy_header, via};
use crate::config::Upstream;
use crate::labels::{Reason, Side};
use crate::proxy_protocol::Addrs;

/// Every upstream failed; one entry per address tried, in order.
#[derive(Debug, thiserror::Error)]
#[error("failed to connect to any upstream: {}", summary(.attempts))]
pub struct ConnectError {
    pub attempts: Vec<(String, io::Error)>,
}

fn summary(attempts: &[(String, io::Error)]) -> String {
    attempts
        .iter()
        .map(|(a, e)| format!("{a}: {e}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A connected upstream socket.
pub struct Connected {
    pub tcp: TcpStream,
    /// Which `connect` entry (0 = primary).
    pub index: usize,
    pub addr: SocketAddr,
}

/// Connects to the first upstream that answers, in order. `client`: the
/// addresses a PROXY header names, for routes that send one.
pub async fn connect(plan: &RoutePlan, client: Option<Addrs>) -> Result<Connected, ConnectError> {
    let route = &plan.route;
    let mut attempts = Vec::new();
    for (index, upstream) in route.connect.iter().enumerate() {
        let label = upstream.to_string();
        let t0 = std::time::Instant::now();
        match connect_to(plan, upstream, client).await {
            Ok((tcp, addr)) => {
                plan.metrics.upstream_connected(&label, t0.elapsed());
                let _ = tcp.set_nodelay(true);
                return Ok(Connected { tcp, index, addr });
            }
            Err(e) => {
                tracing::warn!(route = %route.name, upstream = %label, error = %e,
                    "failed to connect to upstream; trying the next one if any");
                plan.metrics
                    .upstream_connect_error(&label, t0.elapsed(), &e);
                if via::refused(&e) {
                    plan.metrics
                        .handshake_error(Side::Upstream, Reason::ProxyRefused);
                }
                attempts.push((label, e));
            }
        }
    }
    Err(ConnectError { attempts })
}

/// One upstream, as `run` reaches it: through the route's proxy
/// (`via`) or directly, then the route's PROXY header (for `client`; `None`:
/// our own connection, v1 UNKNOWN / v2 LOCAL). Also used by `probe`. The
/// address is the one the socket is connected to (the proxy's, with `via`).
pub async fn connect_to(
    plan: &RoutePlan,
    upstream: &Upstream,
    client: Option<Addrs>,
) -> io::Result<(TcpStream, SocketAddr)> {
    let timeout = plan.route.connect_timeout;
    let (mut tcp, addr) = match &plan.via {
        Some(v) => via::tunnel(v, upstream, timeout).await?,
        None => connect_one(upstream, timeout).await?,
    };
    if let Some(header) = proxy_header::outgoing(plan, client) {
        tokio::time::timeout(timeout, tcp.write_all(&header))
            .await
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    "failed to send the PROXY header in time",
                )
            })?
            .map_err(|e| {
                io::Error::new(e.kind(), format!("failed to send the PROXY header: {e}"))
            })?;
    }
    Ok((tcp, addr))
}
