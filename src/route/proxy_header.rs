//! The PROXY protocol on a route's sockets: the header a load
//! balancer in front sends (`accept_proxy_protocol`), read before anything
//! else and never passed on as data; and the header we send the upstream
//! (`proxy_protocol`), carrying the client it names or the socket's own.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::net::TcpStream;
use tokio::time::timeout;

use super::head::{read_head, Fed, HeadError};
use super::legs::{HandshakeFailure, Side, Stage};
use super::plan::RoutePlan;
use crate::config::Config;
use crate::proxy_protocol::{self, Addrs, Decoded, Decoder};
use crate::tls::material::Warning;
use crate::tls::reason::Reason;

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

/// Routes that accept a PROXY header from anyone on a listener others than
/// this host can reach: any of them may name any client it likes.
pub fn open_warnings(config: &Config) -> Vec<Warning> {
    config
        .routes
        .iter()
        .filter(|r| {
            r.accept_proxy_protocol
                && r.accept_proxy_protocol_from.is_none()
                && !r.listen.ip().is_loopback()
        })
        .map(|r| Warning {
            route: Some(r.name.clone()),
            message: format!(
                "accept_proxy_protocol = true on {} trusts a PROXY header from anyone who reaches it: name the load balancers with accept_proxy_protocol_from = [\"10.0.0.0/8\", …]",
                r.listen
            ),
        })
        .collect()
}

/// Routes that send a PROXY header to a listener of this same config that
/// does not accept one: that route would take the header for its client's
/// first bytes (a TLS listener fails the handshake, a plain one relays it).
/// Only IP literals and `localhost` are matched; names are not resolved.
pub fn self_warnings(config: &Config) -> Vec<Warning> {
    let mut out = Vec::new();
    for r in config.routes.iter().filter(|r| r.proxy_protocol.is_some()) {
        // Through a proxy, the connect entries are the proxy's to reach.
        if r.via.is_some() {
            continue;
        }
        for up in &r.connect {
            let ips: Vec<IpAddr> = match up.host.parse::<IpAddr>() {
                Ok(ip) => vec![ip],
                Err(_) if up.host.eq_ignore_ascii_case("localhost") => {
                    vec![Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()]
                }
                Err(_) => continue,
            };
            let target = config.routes.iter().find(|t| {
                t.listen.port() == up.port
                    && (ips.contains(&t.listen.ip())
                        // A wildcard listener surely has the loopback
                        // addresses; other addresses may not be this host's.
                        || (t.listen.ip().is_unspecified() && ips.iter().any(|i| i.is_loopback())))
            });
            if let Some(t) = target.filter(|t| !t.accept_proxy_protocol) {
                out.push(Warning {
                    route: Some(r.name.clone()),
                    message: format!(
                        "proxy_protocol = \"{}\" sends a PROXY header to {up}, which is route \"{}\" of this config, and that route has accept_proxy_protocol = false: it will take the header for the client's data{}",
                        r.proxy_protocol.map_or("", |p| p.as_str()),
                        t.name,
                        if t.listen_tls.is_some() { " and fail the TLS handshake" } else { "" }
                    ),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        crate::config::load_str(
            std::path::Path::new("t.toml"),
            text,
            Some(Default::default()),
        )
        .unwrap()
    }

    const TLS_IN: &str =
        "[[route]]\nname = \"in\"\nlisten = \"0.0.0.0:7443\"\nconnect = [\"127.0.0.1:8080\"]\n";

    #[test]
    fn sending_a_header_to_our_own_listener_that_does_not_accept_one_is_warned_about() {
        let c = config(&format!(
            "{TLS_IN}[route.listen_tls]\ncert = \"c\"\nkey = \"k\"\n[[route]]\nname = \"out\"\nlisten = \"127.0.0.1:7001\"\nconnect = [\"localhost:7443\"]\nproxy_protocol = \"v1\"\n"
        ));
        let w = self_warnings(&c);
        assert_eq!(w.len(), 1);
        assert_eq!(
            w[0].to_string(),
            "route \"out\": proxy_protocol = \"v1\" sends a PROXY header to localhost:7443, which is route \"in\" of this config, and that route has accept_proxy_protocol = false: it will take the header for the client's data and fail the TLS handshake"
        );
    }

    #[test]
    fn no_warning_when_our_listener_accepts_the_header_or_the_upstream_is_elsewhere() {
        let accepting = format!(
            "{TLS_IN}accept_proxy_protocol = true\n[[route]]\nname = \"out\"\nlisten = \"127.0.0.1:7001\"\nconnect = [\"127.0.0.1:7443\"]\nproxy_protocol = \"v2\"\n"
        );
        assert_eq!(self_warnings(&config(&accepting)), vec![]);
        let elsewhere = format!(
            "{TLS_IN}[[route]]\nname = \"out\"\nlisten = \"127.0.0.1:7001\"\nconnect = [\"192.0.2.1:7443\", \"gms.example:7443\"]\nproxy_protocol = \"v2\"\n"
        );
        assert_eq!(self_warnings(&config(&elsewhere)), vec![]);
    }

    #[test]
    fn accepting_a_header_from_anyone_off_loopback_is_warned_about() {
        let open = format!("{TLS_IN}accept_proxy_protocol = true\n");
        let w = open_warnings(&config(&open));
        assert_eq!(w.len(), 1);
        assert_eq!(
            w[0].to_string(),
            "route \"in\": accept_proxy_protocol = true on 0.0.0.0:7443 trusts a PROXY header from anyone who reaches it: name the load balancers with accept_proxy_protocol_from = [\"10.0.0.0/8\", …]"
        );
        let listed = format!("{open}accept_proxy_protocol_from = [\"10.0.0.0/8\"]\n");
        assert_eq!(open_warnings(&config(&listed)), vec![]);
        let loopback = "[[route]]\nname = \"lo\"\nlisten = \"127.0.0.1:7443\"\nconnect = [\"127.0.0.1:8080\"]\naccept_proxy_protocol = true\n";
        assert_eq!(open_warnings(&config(loopback)), vec![]);
    }
}
