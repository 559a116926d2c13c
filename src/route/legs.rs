//! Setting up each leg of a connection: the client's (TLS termination on
//! `listen_tls` routes) and the upstream's (the upgrade exchange, then the
//! TLS handshake on the default engine). `conn` runs them for a relayed
//! connection and `probe` for its report, so what `probe` says is what
//! `run` does.

use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::LazyConfigAcceptor;

use super::plan::RoutePlan;
use super::stream::Stream;
use crate::config::Upstream;
use crate::labels::Reason;
pub use crate::labels::Side;
use crate::telemetry::ConnResult;
use crate::tls::reason::{classify, describe, rustls_error};
use crate::tls::server::ServerTls;
use crate::upgrade::{self, UpgradeError};

/// How a handshake failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The TLS handshake (or its first read, see [`settle`]).
    Tls,
    /// The upgrade exchange before TLS (result `upgrade_error`).
    Upgrade,
    /// Not finished within `handshake_timeout` (result `timeout`).
    Timeout,
    /// A load balancer's PROXY header was missing, bad or late (result
    /// `handshake_error`, reason `proxy_protocol`).
    ProxyHeader,
}

/// A handshake failure on either leg, with its metric reason and words.
#[derive(Debug)]
pub struct HandshakeFailure {
    pub side: Side,
    pub stage: Stage,
    pub reason: Reason,
    pub detail: String,
}

impl HandshakeFailure {
    pub fn tls(side: Side, e: &std::io::Error) -> Self {
        HandshakeFailure {
            side,
            stage: Stage::Tls,
            reason: classify(e),
            detail: describe(e),
        }
    }

    fn upgrade(e: UpgradeError) -> Self {
        HandshakeFailure {
            side: Side::Upstream,
            stage: Stage::Upgrade,
            reason: e.reason(),
            detail: e.to_string(),
        }
    }

    pub fn timeout(side: Side, limit: Duration) -> Self {
        HandshakeFailure {
            side,
            stage: Stage::Timeout,
            reason: Reason::Timeout,
            detail: format!("not finished within {}", humantime::format_duration(limit)),
        }
    }

    /// The `result` of `connections_total`.
    pub fn result(&self) -> ConnResult {
        match self.stage {
            Stage::Tls | Stage::ProxyHeader => ConnResult::HandshakeError,
            Stage::Upgrade => ConnResult::UpgradeError,
            Stage::Timeout => ConnResult::Timeout,
        }
    }
}

/// The TLS name of the upstream `entry`: the route's `server_name`, else
/// the connect host.
pub fn server_name(
    plan: &RoutePlan,
    entry: &Upstream,
) -> Result<ServerName<'static>, HandshakeFailure> {
    let ct = plan.client_tls.as_ref().expect("called for TLS routes");
    match &ct.server_name {
        Some(n) => Ok(n.clone()),
        None => ServerName::try_from(entry.host.clone()).map_err(|e| HandshakeFailure {
            side: Side::Upstream,
            stage: Stage::Tls,
            reason: Reason::Other,
            detail: format!(
                "the connect host {:?} is not a valid TLS name ({e}); set connect_tls.server_name",
                entry.host
            ),
        }),
    }
}

/// The upgrade exchange (if any), then the TLS handshake, on `tcp`. Bytes
/// the client sent early are written once TLS is up. `client` is the
/// application's stream, or an empty one when there is no application
/// (`probe`): optional client steps then pass at once.
pub async fn secure_upstream<C>(
    plan: &RoutePlan,
    client: &mut C,
    mut tcp: TcpStream,
    name: ServerName<'static>,
) -> Result<Stream, HandshakeFailure>
where
    C: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
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
    let tls_failure = |e: std::io::Error| HandshakeFailure::tls(Side::Upstream, &e);
    let tls = crate::tls::engine::connect(ct.config.clone(), name, tcp)
        .await
        .map_err(tls_failure)?;
    let mut s = Stream::Unbuffered(Box::new(tls));
    if !early.is_empty() {
        s.write_all(&early).await.map_err(tls_failure)?;
        s.flush().await.map_err(tls_failure)?;
    }
    Ok(s)
}

/// How long `probe` reads after the handshake: a TLS 1.3 server checks
/// our certificate only after our side of the handshake is done, so its
/// refusal arrives as the first record.
pub const SETTLE: Duration = Duration::from_millis(500);

/// After a handshake with no application behind it (`probe`): reads for
/// at most `within`. A refusal (an alert) is the handshake's failure; a
/// quiet server, data or a clean close are not.
pub async fn settle(s: &mut Stream, within: Duration) -> Result<(), HandshakeFailure> {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 1024];
    match tokio::time::timeout(within, s.read(&mut buf)).await {
        Ok(Err(e)) if matches!(rustls_error(&e), Some(rustls::Error::AlertReceived(_))) => {
            let mut f = HandshakeFailure::tls(Side::Upstream, &e);
            f.detail = format!("the server refused us after the handshake: {}", f.detail);
            Err(f)
        }
        _ => Ok(()),
    }
}

/// Terminates the client's TLS. The ClientHello is read first so that a
/// client that does not speak TLS, a missing or unknown SNI, or missing
/// ALPN is reported as such.
///
/// `exact`: read the socket one TLS record at a time during the handshake
/// (`tls::kernel::Framed`), so the leg can switch to kernel TLS after it.
pub async fn accept_tls(
    st: &ServerTls,
    tcp: TcpStream,
    exact: bool,
) -> Result<crate::tls::kernel::ServerTls, HandshakeFailure> {
    let failure = |e: std::io::Error| HandshakeFailure::tls(Side::Client, &e);
    let tcp = crate::tls::kernel::Framed::new(tcp, exact);
    let start = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp)
        .await
        .map_err(|e| {
            let not_tls = matches!(rustls_error(&e), Some(rustls::Error::InvalidMessage(_)));
            let mut f = failure(e);
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
            side: Side::Client,
            stage: Stage::Tls,
            reason: Reason::Other,
            detail: "the client offered no ALPN protocol and listen_tls.alpn_required = true"
                .into(),
        });
    }
    // With an SNI refusal the resolver returns no certificate, so rustls
    // ends the handshake with an alert; the reason is ours to name.
    start.into_stream(st.config.clone()).await.map_err(|e| {
        let mut f = failure(e);
        // The allow list refused the identity (listen_tls.allow).
        if let Some(who) = crate::tls::identity::take_refusal() {
            f.reason = Reason::NotAuthorized;
            f.detail = crate::tls::reason::not_authorized(&who);
        }
        if let Some(why) = sni_refusal {
            f.reason = Reason::NoSni;
            f.detail = why;
        }
        f
    })
}
