//! One client connection, start to end: terminate TLS if the route listens
//! with TLS, connect upstream with failover, run the upgrade exchange and
//! the upstream TLS handshake, relay, then carry the way it ended (clean,
//! truncated, reset) through to the other side. Every failure is logged
//! once, here, and counted with its reason.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};
use tokio_rustls::{LazyConfigAcceptor, TlsConnector};

use super::connect::{connect, Connected};
use super::plan::RoutePlan;
use super::stream::Stream;
use crate::relay::{self, End, FailKind};
use crate::tls::material::CertInfo;
use crate::tls::reason::{classify, describe, rustls_error};
use crate::tls::server::ServerTls;
use crate::tls::{suite_name, version_name};
use crate::upgrade::{self, UpgradeError};

/// How long a polite close (close_notify, FIN) may take after an idle
/// timeout before the sockets are simply dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Serves one accepted client to its end. Never panics on peer input and
/// never affects another connection.
///
/// The handshakes and the connect run as boxed futures: their state (a
/// rustls handshake, the upgrade exchange) is on the heap only while they
/// run, so the task of an established, idle connection stays small.
pub async fn handle(plan: Arc<RoutePlan>, mut tcp: TcpStream, client_addr: SocketAddr) {
    let started = Instant::now();
    let route = &plan.route;
    let m = &plan.metrics;
    let _ = tcp.set_nodelay(true);

    // [i16-net] A load balancer's PROXY header, before anything else: its
    // client is the one logged and passed on. Failures are logged there.
    let Some(peer) = super::proxy_header::accept(&plan, &mut tcp, client_addr).await else {
        return;
    };
    let client_addr = peer.source;

    // 1. The client's leg.
    let mut client = match &plan.server_tls {
        None => Stream::Plain(tcp),
        Some(st) => {
            let t0 = Instant::now();
            match timeout(route.handshake_timeout, Box::pin(accept_tls(st, tcp))).await {
                Ok(Ok(s)) => {
                    m.handshake_time("listen", t0.elapsed());
                    let (_, conn) = s.get_ref();
                    let resumed =
                        matches!(conn.handshake_kind(), Some(rustls::HandshakeKind::Resumed));
                    m.session(
                        "listen",
                        version_name(conn.protocol_version()),
                        suite_name(conn.negotiated_cipher_suite()),
                        resumed,
                    );
                    let subject = conn
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .and_then(|c| CertInfo::parse(c))
                        .map(|i| i.subject);
                    tracing::debug!(route = %route.name, client = %client_addr,
                        tls = version_name(conn.protocol_version()),
                        cipher = suite_name(conn.negotiated_cipher_suite()),
                        sni = conn.server_name().unwrap_or("-"),
                        alpn = conn.alpn_protocol().map(String::from_utf8_lossy).as_deref().unwrap_or("-"),
                        client_cert = subject.as_deref().unwrap_or("-"),
                        "client TLS established");
                    Stream::Server(Box::new(s))
                }
                Ok(Err(f)) => {
                    tracing::warn!(route = %route.name, client = %client_addr, side = "listen",
                        reason = f.reason, "client TLS handshake failed: {}", f.detail);
                    m.handshake_error("listen", f.reason);
                    m.connection("handshake_error");
                    return;
                }
                Err(_) => {
                    tracing::warn!(route = %route.name, client = %client_addr, side = "listen", reason = "timeout",
                        "client TLS handshake not finished within {}", humantime::format_duration(route.handshake_timeout));
                    m.handshake_error("listen", "timeout");
                    m.connection("timeout");
                    return;
                }
            }
        }
    };

    // 2. The upstream's TCP connection, primary then backups.
    // [i16-net] `peer`: the client our PROXY header names, if the route sends one.
    let Connected {
        tcp: up_tcp,
        index,
        addr,
    } = match Box::pin(connect(&plan, Some(peer))).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(route = %route.name, client = %client_addr, "closing the client: {e}");
            m.connection("connect_error");
            client.abort();
            return;
        }
    };
    let upstream_entry = &route.connect[index];

    // 3. The upstream's leg: upgrade exchange and TLS, or plain.
    let mut upstream = match &plan.client_tls {
        None => Stream::Plain(up_tcp),
        Some(ct) => {
            let name = match ct.server_name.clone() {
                Some(n) => n,
                None => match ServerName::try_from(upstream_entry.host.clone()) {
                    Ok(n) => n,
                    Err(_) => {
                        tracing::warn!(route = %route.name, upstream = %upstream_entry,
                            "the connect host is not a valid TLS name; set connect_tls.server_name");
                        m.handshake_error("connect", "other");
                        m.connection("handshake_error");
                        client.abort();
                        return;
                    }
                },
            };
            let t0 = Instant::now();
            let secured = timeout(
                route.handshake_timeout,
                Box::pin(secure_upstream(&plan, &mut client, up_tcp, name)),
            )
            .await;
            match secured {
                Ok(Ok(s)) => {
                    m.handshake_time("connect", t0.elapsed());
                    s
                }
                Ok(Err(f)) => {
                    tracing::warn!(route = %route.name, client = %client_addr, upstream = %upstream_entry,
                        addr = %addr, side = "connect", reason = f.reason, trust = %ct.trust,
                        "upstream handshake failed: {}", f.detail);
                    m.handshake_error("connect", f.reason);
                    m.connection(if f.upgrade {
                        "upgrade_error"
                    } else {
                        "handshake_error"
                    });
                    client.abort();
                    return;
                }
                Err(_) => {
                    tracing::warn!(route = %route.name, client = %client_addr, upstream = %upstream_entry,
                        side = "connect", reason = "timeout",
                        "upstream handshake not finished within {}", humantime::format_duration(route.handshake_timeout));
                    m.handshake_error("connect", "timeout");
                    m.connection("timeout");
                    client.abort();
                    return;
                }
            }
        }
    };
    if let Some(conn) = upstream.tls() {
        let resumed = matches!(conn.handshake_kind(), Some(rustls::HandshakeKind::Resumed));
        m.session(
            "connect",
            version_name(conn.protocol_version()),
            suite_name(conn.negotiated_cipher_suite()),
            resumed,
        );
        if let Some(info) = conn
            .peer_certificates()
            .and_then(|c| c.first())
            .and_then(|c| CertInfo::parse(c))
        {
            m.cert_expiry("peer", &info.subject, info.not_after);
        }
    }

    // 4. Relay.
    m.connection("ok");
    m.active.increment(1.0);
    let outcome = match (&mut client, &mut upstream) {
        // Plain ↔ plain: splice(2) where the OS has it.
        (Stream::Plain(c), Stream::Plain(u)) => relay::relay_tcp(c, u, route.idle_timeout, m).await,
        (c, u) => relay::relay(c, u, route.idle_timeout, m).await,
    };
    m.active.decrement(1.0);

    let (tls_version, cipher) = match upstream.tls() {
        Some(t) => (
            version_name(t.protocol_version()),
            suite_name(t.negotiated_cipher_suite()),
        ),
        None => ("none", "none"),
    };
    let ended = describe_end(&outcome.end);
    let fields = (
        outcome.upstream_bytes,
        outcome.downstream_bytes,
        started.elapsed().as_millis() as u64,
    );
    // A TLS 1.3 server checks our certificate only after our side of the
    // handshake is done, so its refusal (certificate_required, unknown_ca,
    // ...) arrives as the first read. It is a handshake failure all the same.
    if let End::Upstream(f) = &outcome.end {
        if let Some(rustls::Error::AlertReceived(alert)) = rustls_error(&f.error) {
            let reason = classify(&f.error);
            if reason != "other" && outcome.downstream_bytes == 0 {
                tracing::warn!(route = %route.name, client = %client_addr, upstream = %upstream_entry,
                    side = "connect", reason, "upstream refused us after the handshake (alert {alert:?}): {}",
                    describe(&f.error));
                m.handshake_error("connect", reason);
            }
        }
    }
    match outcome.end {
        End::Closed => {}
        End::Idle => {
            let _ = timeout(CLOSE_GRACE, async {
                let _ = upstream.shutdown().await;
                let _ = client.shutdown().await;
            })
            .await;
        }
        // The upstream failed: the client must see an error, not a clean end.
        End::Upstream(_) => {
            client.abort();
            upstream.abort();
        }
        // The client failed: end the upstream without close_notify.
        End::Client(_) => {
            upstream.abort();
            client.abort();
        }
    }
    tracing::info!(route = %route.name, client = %client_addr, upstream = %upstream_entry, addr = %addr,
        tls = tls_version, cipher, bytes_up = fields.0, bytes_down = fields.1, duration_ms = fields.2,
        end = %ended, "connection closed");
}

/// A handshake failure on either leg, with its metric reason and words.
struct HandshakeFailure {
    reason: &'static str,
    detail: String,
    /// Failed during the upgrade exchange (result `upgrade_error`).
    upgrade: bool,
}

impl HandshakeFailure {
    fn tls(e: std::io::Error) -> Self {
        HandshakeFailure {
            reason: classify(&e),
            detail: describe(&e),
            upgrade: false,
        }
    }

    fn upgrade(e: UpgradeError) -> Self {
        HandshakeFailure {
            reason: e.reason(),
            detail: e.to_string(),
            upgrade: true,
        }
    }
}

/// The upgrade exchange (if any), then the TLS handshake, on `tcp`. Bytes
/// the client sent early are written once TLS is up.
async fn secure_upstream(
    plan: &RoutePlan,
    client: &mut Stream,
    mut tcp: TcpStream,
    name: ServerName<'static>,
) -> Result<Stream, HandshakeFailure> {
    let ct = plan.client_tls.as_ref().expect("called for TLS routes");
    let early = match &plan.upgrade {
        Some(script) => {
            upgrade::drive(script, client, &mut tcp, upgrade::Limits::default())
                .await
                .map_err(HandshakeFailure::upgrade)?
                .client_early
        }
        None => Vec::new(),
    };
    let mut s = if unbuffered_engine() {
        let tls = relay::tls::connect(ct.config.clone(), name, tcp)
            .await
            .map_err(HandshakeFailure::tls)?;
        Stream::Unbuffered(Box::new(tls))
    } else {
        let tls = TlsConnector::from(ct.config.clone())
            .connect(name, tcp)
            .await
            .map_err(HandshakeFailure::tls)?;
        Stream::Client(Box::new(tls))
    };
    if !early.is_empty() {
        s.write_all(&early).await.map_err(HandshakeFailure::tls)?;
        s.flush().await.map_err(HandshakeFailure::tls)?;
    }
    Ok(s)
}

/// The upstream TLS engine: rustls's unbuffered API (`relay::tls`) unless
/// the hidden `TLS_SIDECAR_TLS_ENGINE=tokio-rustls` asks for the buffered
/// baseline (for comparisons).
fn unbuffered_engine() -> bool {
    static UNBUFFERED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *UNBUFFERED.get_or_init(|| {
        std::env::var("TLS_SIDECAR_TLS_ENGINE").map_or(true, |v| v != "tokio-rustls")
    })
}

/// Terminates the client's TLS. The ClientHello is read first so that a
/// client that does not speak TLS, a missing or unknown SNI, or missing
/// ALPN is reported as such.
async fn accept_tls(
    st: &ServerTls,
    tcp: TcpStream,
) -> Result<tokio_rustls::server::TlsStream<TcpStream>, HandshakeFailure> {
    let start = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp)
        .await
        .map_err(|e| {
            let not_tls = matches!(rustls_error(&e), Some(rustls::Error::InvalidMessage(_)));
            let mut f = HandshakeFailure::tls(e);
            if not_tls {
                f.detail = format!("the client did not send a TLS ClientHello ({})", f.detail);
            }
            f
        })?;
    let hello = start.client_hello();
    let sni_refusal = match (st.sni_required, hello.server_name()) {
        (false, _) => None,
        (true, None) => {
            Some("the client sent no SNI and listen_tls.sni_required = true".to_owned())
        }
        (true, Some(n)) if !st.serves(n) => Some(format!(
            "the client asked for unknown name {n:?} and listen_tls.sni_required = true"
        )),
        (true, Some(_)) => None,
    };
    if st.alpn_required && hello.alpn().is_none_or(|mut a| a.next().is_none()) {
        return Err(HandshakeFailure {
            reason: "other",
            detail: "the client offered no ALPN protocol and listen_tls.alpn_required = true"
                .into(),
            upgrade: false,
        });
    }
    // With an SNI refusal the resolver returns no certificate, so rustls
    // ends the handshake with an alert; the reason is ours to name.
    start.into_stream(st.config.clone()).await.map_err(|e| {
        let mut f = HandshakeFailure::tls(e);
        if let Some(why) = sni_refusal {
            f.reason = "no_sni";
            f.detail = why;
        }
        f
    })
}

/// How a relay ended, in words for the log.
fn describe_end(end: &End) -> String {
    fn side(who: &str, f: &relay::Failure) -> String {
        match f.kind {
            FailKind::Truncated => {
                format!("{who} closed without close_notify (truncated); the other side was reset")
            }
            FailKind::Reset => format!("{who} reset the connection; the other side was reset"),
            FailKind::Error => format!("{who} failed: {}; the other side was reset", f.error),
        }
    }
    match end {
        End::Closed => "closed".into(),
        End::Idle => "idle timeout".into(),
        End::Client(f) => side("client", f),
        End::Upstream(f) => side("upstream", f),
    }
}
