//! Reaching the upstream: `connect` entries in order (primary, then
//! backups), DNS resolved at connect time, each address bounded by
//! `connect_timeout`. Every failed address is logged and counted.

use std::io;
use std::net::SocketAddr;

use tokio::net::TcpStream;

use super::plan::RoutePlan;
use crate::config::Upstream;

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

/// Connects to the first upstream that answers, in order.
pub async fn connect(plan: &RoutePlan) -> Result<Connected, ConnectError> {
    let route = &plan.route;
    let mut attempts = Vec::new();
    for (index, upstream) in route.connect.iter().enumerate() {
        let label = upstream.to_string();
        let t0 = std::time::Instant::now();
        match connect_one(upstream, route.connect_timeout).await {
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
                attempts.push((label, e));
            }
        }
    }
    Err(ConnectError { attempts })
}

/// Resolves `upstream` and tries its addresses in turn, each within `timeout`.
pub(crate) async fn connect_one(
    upstream: &Upstream,
    timeout: std::time::Duration,
) -> io::Result<(TcpStream, SocketAddr)> {
    let addrs: Vec<SocketAddr> = tokio::time::timeout(
        timeout,
        tokio::net::lookup_host((upstream.host.as_str(), upstream.port)),
    )
    .await
    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "name resolution timed out"))??
    .collect();
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the name resolved to no address");
    for addr in addrs {
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => return Ok((s, addr)),
            Ok(Err(e)) => last = io::Error::new(e.kind(), format!("{addr}: {e}")),
            Err(_) => {
                last = io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "{addr}: no answer within {}",
                        humantime::format_duration(timeout)
                    ),
                )
            }
        }
    }
    Err(last)
}
