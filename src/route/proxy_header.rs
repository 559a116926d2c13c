//! The PROXY protocol on a route's sockets: the header a load
//! balancer in front sends (`accept_proxy_protocol`), read before anything
//! else and never passed on as data; and the header we send the upstream
//! (`proxy_protocol`), carrying the client it names or the socket's own.

use std::net::SocketAddr;

use tokio::net::TcpStream;
use tokio::time::timeout;

use super::head::{read_head, Fed, HeadError};
use super::legs::{HandshakeFailure, Side, Stage};
use super::plan::RoutePlan;
use crate::labels::Reason;
use crate::proxy_protocol::{self, Addrs, Decoded, Decoder};

/// The client a connection speaks for: the accepted header's addresses,
/// or the socket's (peer, local) when the route accepts no header or the
/// header names none (v1 `UNKNOWN`, v2 `LOCAL`). `None`: the header was
/// missing, bad or late; the failure is logged (with the socket's peer
/// address) and counted here, and the caller just closes the client.
///
/// A route with neither PROXY key costs nothing here: no system call, no
/// allocation (the destination, which only our own header needs, is then
/// left unspecified).
pub async fn accept(
    plan: &RoutePlan,
    tcp: &mut TcpStream,
    peer: SocketAddr,
) -> Result<Addrs, HandshakeFailure> {
    let route = &plan.route;
    if !route.accept_proxy_protocol && route.proxy_protocol.is_none() {
        return Ok(Addrs {
            source: peer,
            destination: SocketAddr::from(([0, 0, 0, 0], 0)),
        });
    }
    let own = Addrs {
        source: peer,
        destination: tcp
            .local_addr()
            .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0))),
    };
    if !route.accept_proxy_protocol {
        return Ok(own);
    }
    if let Some(from) = &route.accept_proxy_protocol_from {
        if !from.iter().any(|c| c.contains(peer.ip())) {
            // Refused before a byte is read: whatever it would say about
            // its client is not ours to believe (issue 25).
            return Err(HandshakeFailure {
                side: Side::Client,
                stage: Stage::ProxyHeader,
                reason: Reason::ProxyProtocol,
                detail: format!(
                    "{} may not send a PROXY header: it is not in accept_proxy_protocol_from",
                    peer.ip().to_canonical()
                ),
            });
        }
    }
    // Boxed: the reader's state is on the heap only while it runs.
    Box::pin(read_client_header(plan, tcp, peer, own)).await
}

async fn read_client_header(
    plan: &RoutePlan,
    tcp: &mut TcpStream,
    peer: SocketAddr,
    own: Addrs,
) -> Result<Addrs, HandshakeFailure> {
    let route = &plan.route;
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
            return Ok(addrs);
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
    Err(HandshakeFailure {
        side: Side::Client,
        stage: Stage::ProxyHeader,
        reason: Reason::ProxyProtocol,
        detail: why,
    })
}

/// The header the route sends its upstream for `client` (`None`: the
/// sidecar's own connection, as `probe` makes), if it sends one.
pub fn outgoing(plan: &RoutePlan, client: Option<Addrs>) -> Option<Vec<u8>> {
    plan.route
        .proxy_protocol
        .map(|v| proxy_protocol::encode(v, client))
}
