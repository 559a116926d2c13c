//! The TCP dial under every upstream connection: resolve a name at connect
//! time and try its addresses in turn, each bounded by the timeout. Both
//! `connect` (a direct upstream) and `via` (the CONNECT proxy) reach their
//! peer through it, so it sits below both.

use std::io;
use std::net::SocketAddr;

use tokio::net::TcpStream;

use crate::config::Upstream;

/// Resolves `upstream` and tries its addresses in turn, each within `timeout`.
pub async fn connect_one(
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
