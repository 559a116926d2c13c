//! [i16-net] The PROXY protocol on a route's sockets: the header a load
//! balancer in front sends (`accept_proxy_protocol`), read before anything
//! else and never passed on as data; and the header we send the upstream
//! (`proxy_protocol`), carrying the client it names or the socket's own.

use std::net::SocketAddr;

use tokio::net::TcpStream;
use tokio::time::timeout;

use super::head::{read_head, Fed, HeadError};
use super::plan::RoutePlan;
use crate::proxy_protocol::{self, Addrs, Decoded, Decoder};

/// The client a connection speaks for: the accepted header's addresses,
/// or the socket's (peer, local) when the route accepts no header or the
/// header names none (v1 `UNKNOWN`, v2 `LOCAL`). `None`: the header was
/// missing, bad or late; the failure is logged (with the socket's peer
/// address) and counted here, and the caller just closes the client.
pub async fn accept(plan: &RoutePlan, tcp: &mut TcpStream, peer: SocketAddr) -> Option<Addrs> {
    let route = &plan.route;
    let own = Addrs {
        source: peer,
        destination: tcp
            .local_addr()
            .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0))),
    };
    if !route.accept_proxy_protocol {
        return Some(own);
    }
    let mut decoder = Decoder::new();
    let read = read_head(tcp, proxy_protocol::MAX_HEADER + 1, |b| {
        decoder.feed(b).map(|d| match d {
            Decoded::NeedMore => Fed::NeedMore,
            Decoded::Done { header, consumed } => Fed::Done(header, consumed),
        })
    });
    let why = match timeout(route.handshake_timeout, read).await {
        Ok(Ok(header)) => {
            let addrs = header.addrs.unwrap_or(own);
            tracing::debug!(route = %route.name, client = %addrs.source, proxy = %peer,
                version = header.version.as_str(), "PROXY header accepted");
            return Some(addrs);
        }
        Ok(Err(HeadError::Bad(e))) => e.to_string(),
        Ok(Err(HeadError::Closed)) => {
            "the client closed the connection before a complete PROXY header".to_owned()
        }
        Ok(Err(HeadError::Io(e))) => format!("failed to read the PROXY header: {e}"),
        Err(_) => format!(
            "no complete PROXY header within {} (handshake_timeout)",
            humantime::format_duration(route.handshake_timeout)
        ),
    };
    tracing::warn!(route = %route.name, client = %peer, side = "listen", reason = "proxy_protocol",
        "closing the client: {why}");
    plan.metrics.handshake_error("listen", "proxy_protocol");
    plan.metrics.connection("handshake_error");
    None
}

/// The header the route sends its upstream for `client` (`None`: the
/// sidecar's own connection, as `probe` makes), if it sends one.
pub fn outgoing(plan: &RoutePlan, client: Option<Addrs>) -> Option<Vec<u8>> {
    plan.route
        .proxy_protocol
        .map(|v| proxy_protocol::encode(v, client))
}
