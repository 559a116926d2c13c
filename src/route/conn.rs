//! One client connection, start to end: terminate TLS if the route listens
//! with TLS, connect upstream with failover, run the upgrade exchange and
//! the upstream TLS handshake, relay. How it ended is one [`Ending`],
//! handed to [`ending::finish`], the one place that logs, counts and acts
//! on it.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};
use tokio_util::sync::CancellationToken;

use super::connect::{connect, Connected};
use super::ending::{self, Ending, Finished};
use super::legs::{self, HandshakeFailure, Side};
use super::plan::RoutePlan;
use super::proxy_header;
use super::stream::Stream;
use crate::config::KernelTls;
use crate::labels::Reason;
use crate::relay;
use crate::telemetry::ConnResult;
use crate::tls::kernel::{self, Fallback};
use crate::tls::material::CertInfo;
use crate::tls::reason::classify;
use crate::tls::server::ServerTls;
use crate::tls::{suite_name, version_name};

/// Serves one accepted client to its end. Never panics on peer input and
/// never affects another connection. `cut` is the end of
/// `shutdown_grace`: the connection is then reset, never closed cleanly.
/// `held` (the route's count of open connections) is dropped at the end.
///
/// Not an `async fn`: the block captures the arguments once, where an
/// `async fn` keeps them beside the locals it moves them into
/// (rust-lang/rust#62958), in every connection's task (issue 26).
#[expect(
    clippy::manual_async_fn,
    reason = "an async fn holds its arguments twice, in every task"
)]
pub fn handle(
    plan: Arc<RoutePlan>,
    tcp: TcpStream,
    // Becomes the client a load balancer's PROXY header names, if any.
    mut client_addr: SocketAddr,
    cut: CancellationToken,
    held: impl Send,
) -> impl Future<Output = ()> + Send {
    async move {
        let _held = held;
        let started = Instant::now();
        let _ = tcp.set_nodelay(true);
        let mut legs = Legs::default();
        // In a block of its own: the set-up's result is gone once the relay
        // starts, not kept beside it for the connection's life.
        let early = {
            let set_up = tokio::select! {
                biased;
                () = cut.cancelled() => Err(Ending::CutEarly),
                // Boxed, as the ending is below: the set-up's state (the PROXY
                // header, the handshakes' timeouts, the connect) is on the heap
                // only while it runs, not in the task of every idle connection.
                r = Box::pin(establish(&plan, tcp, &mut client_addr, &mut legs)) => r,
            };
            let set_up = match set_up {
                Ok(()) if plan.route.kernel_tls == KernelTls::Auto => {
                    Box::pin(switch_to_kernel(&plan, &mut legs))
                        .await
                        .map_err(Ending::Handshake)
                }
                other => other.map(|()| 0),
            };
            match set_up {
                Ok(early) => early,
                Err(e) => return finish(&plan, client_addr, started, legs, e).await,
            }
        };
        let (Some(client), Some(upstream)) = (&mut legs.client, &mut legs.upstream) else {
            unreachable!("a set-up that succeeded has both legs")
        };
        let m = &plan.metrics;
        let idle = plan.route.idle_timeout;
        m.connection(ConnResult::Ok);
        m.active.increment(1.0);
        let mut outcome = if client.spliceable() && upstream.spliceable() {
            // Plain or kernel TLS on both sides: splice(2) where the OS has
            // it. Boxed: its state (the spliced driver and the buffered one
            // it falls back to) is larger than the buffered relay alone,
            // which every userspace TLS connection runs inline.
            Box::pin(relay::relay_spliced_until(
                client,
                upstream,
                idle,
                m,
                cut.cancelled(),
            ))
            .await
        } else {
            relay::relay_until(client, upstream, idle, m, cut.cancelled()).await
        };
        m.active.decrement(1.0);
        // The client's bytes the switch to kTLS passed on itself.
        outcome.upstream_bytes += early;
        finish(&plan, client_addr, started, legs, Ending::Relayed(outcome)).await;
    }
}

/// [`ending::finish`], boxed, as the handshakes are: the ending's state (a
/// reset's drain and linger on both sockets, each with its read buffer and
/// timers, about 5 KiB) is on the heap only while it runs. Inline, it was
/// part of every connection's task from the start, idle ones included.
fn finish(
    plan: &RoutePlan,
    client_addr: SocketAddr,
    started: Instant,
    legs: Legs,
    ending: Ending,
) -> Pin<Box<impl Future<Output = ()> + Send + '_>> {
    Box::pin(ending::finish(Finished {
        plan,
        client_addr,
        started,
        upstream_at: legs.upstream_at,
        client: legs.client,
        upstream: legs.upstream,
        ending,
    }))
}

/// A connection's legs, as far as the set-up got.
#[derive(Default)]
struct Legs {
    client: Option<Stream>,
    upstream: Option<Stream>,
    /// The `connect` entry and address in use.
    upstream_at: Option<(usize, SocketAddr)>,
}

/// Sets up both legs into `legs`, in order: a load balancer's PROXY
/// header, the client's leg, the upstream's TCP (with failover), the
/// upstream's leg. The handshakes and the connect run as boxed futures:
/// their state (a rustls handshake, the upgrade exchange) is on the heap
/// only while they run, so the task of an established, idle connection
/// stays small.
async fn establish(
    plan: &RoutePlan,
    mut tcp: TcpStream,
    client_addr: &mut SocketAddr,
    legs: &mut Legs,
) -> Result<(), Ending> {
    // 0. A load balancer's PROXY header, before anything else: its client
    // is the one logged and passed on.
    let peer = match proxy_header::accept(plan, &mut tcp, *client_addr).await {
        Ok(p) => p,
        Err(f) => {
            legs.client = Some(Stream::Plain(tcp));
            return Err(Ending::Handshake(f));
        }
    };
    *client_addr = peer.source;

    // 1. The client's leg.
    let client = match &plan.server_tls {
        None => Stream::Plain(tcp),
        Some(st) => accept_client(plan, st, tcp, *client_addr).await?,
    };
    let client = legs.client.insert(client);

    // 2. The upstream's TCP connection, primary then backups.
    // `peer`: the client our PROXY header names, if the route sends one.
    let Connected {
        tcp: up_tcp,
        index,
        addr,
    } = Box::pin(connect(plan, Some(peer)))
        .await
        .map_err(Ending::Unreachable)?;
    legs.upstream_at = Some((index, addr));

    // 3. The upstream's leg: upgrade exchange and TLS, or plain.
    let upstream = match &plan.client_tls {
        None => Stream::Plain(up_tcp),
        Some(_) => secure_upstream(plan, client, up_tcp, index).await?,
    };
    legs.upstream = Some(upstream);
    Ok(())
}

/// The client's TLS handshake on a `listen_tls` route, within
/// `handshake_timeout`; timed, recorded and logged.
async fn accept_client(
    plan: &RoutePlan,
    st: &ServerTls,
    tcp: TcpStream,
    client_addr: SocketAddr,
) -> Result<Stream, Ending> {
    let route = &plan.route;
    let limit = route.handshake_timeout;
    let t0 = Instant::now();
    let exact = route.kernel_tls == KernelTls::Auto && kernel::available();
    let s = timeout(limit, Box::pin(legs::accept_tls(st, tcp, exact)))
        .await
        .map_err(|_| HandshakeFailure::timeout(Side::Client, limit))
        .and_then(|r| r)
        .map_err(Ending::Handshake)?;
    plan.metrics.handshake_time(Side::Client, t0.elapsed());
    let (_, conn) = s.get_ref();
    record_session(plan, Side::Client, conn);
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
    Ok(Stream::Server(Box::new(s)))
}

/// The upstream's leg on a `connect_tls` route (upgrade exchange, then
/// TLS to `connect` entry `index`), within `handshake_timeout`; timed and
/// recorded, with the peer certificate's expiry.
async fn secure_upstream(
    plan: &RoutePlan,
    client: &mut Stream,
    up_tcp: TcpStream,
    index: usize,
) -> Result<Stream, Ending> {
    let route = &plan.route;
    let limit = route.handshake_timeout;
    let name = legs::server_name(plan, &route.connect[index]).map_err(Ending::Handshake)?;
    let t0 = Instant::now();
    let s = timeout(
        limit,
        Box::pin(legs::secure_upstream(plan, client, up_tcp, name)),
    )
    .await
    .map_err(|_| HandshakeFailure::timeout(Side::Upstream, limit))
    .and_then(|r| r)
    .map_err(Ending::Handshake)?;
    let m = &plan.metrics;
    m.handshake_time(Side::Upstream, t0.elapsed());
    if let Some(conn) = s.tls() {
        record_session(plan, Side::Upstream, conn);
        if let Some(info) = conn
            .peer_certificates()
            .and_then(|c| c.first())
            .and_then(|c| CertInfo::parse(c))
        {
            m.peer_cert_expiry(
                &route.connect[index].to_string(),
                &info.subject,
                info.not_after,
            );
        }
    }
    Ok(s)
}

/// `kernel_tls = "auto"`: once both legs are up, each TLS leg hands its
/// keys to the kernel, if every TLS leg can (else all stay in userspace,
/// counted and logged with the reason). A kernel that refuses the keys
/// after rustls gave them up loses the connection: a handshake failure
/// with reason `ktls_refused`. `Ok`: how many of the client's bytes it
/// passed on itself (decrypted by rustls with the client's Finished).
async fn switch_to_kernel(plan: &RoutePlan, legs: &mut Legs) -> Result<u64, HandshakeFailure> {
    let fits = |s: &Stream| match s {
        Stream::Server(t) => Some(kernel::server_fits(t)),
        Stream::Unbuffered(t) => Some(kernel::client_fits(t)),
        _ => None,
    };
    let checks: Vec<_> = [&legs.client, &legs.upstream]
        .into_iter()
        .flatten()
        .filter_map(fits)
        .collect();
    if checks.is_empty() {
        return Ok(0);
    }
    let stay = |legs: &mut Legs, f: Fallback| {
        plan.metrics.ktls_fallback(f.label(), f.describe());
        if let Some(Stream::Server(t)) = &mut legs.client {
            t.get_mut().0.pass_through();
        }
    };
    if let Some(Err(f)) = checks.iter().find(|c| c.is_err()) {
        stay(legs, *f);
        return Ok(0);
    }
    let refused = |side: Side, e: std::io::Error| HandshakeFailure {
        side,
        stage: legs::Stage::Tls,
        reason: Reason::KtlsRefused,
        detail: format!("the kernel refused the TLS keys: {e}"),
    };
    let mut early = Vec::new();
    for (side, slot) in [
        (Side::Client, &mut legs.client),
        (Side::Upstream, &mut legs.upstream),
    ] {
        let switched = match slot.take() {
            Some(Stream::Server(t)) => match kernel::from_server(*t) {
                Ok((r, bytes)) => {
                    early = bytes;
                    r.map_err(|e| refused(side, e))?
                }
                Err((t, f)) => {
                    *slot = Some(Stream::Server(t));
                    plan.metrics.ktls_fallback(f.label(), f.describe());
                    continue;
                }
            },
            Some(Stream::Unbuffered(t)) => match kernel::from_client(t) {
                Ok(r) => r.map_err(|e| refused(side, e))?,
                Err((t, f)) => {
                    *slot = Some(Stream::Unbuffered(t));
                    plan.metrics.ktls_fallback(f.label(), f.describe());
                    continue;
                }
            },
            other => {
                *slot = other;
                continue;
            }
        };
        *slot = Some(Stream::Ktls(Box::new(switched)));
    }
    pass_on_early(plan, legs, early).await
}

/// Passes on the client's first bytes, decrypted by rustls with its Finished,
/// before the relay starts. Flushed: on a leg left in userspace they would
/// otherwise wait for the relay's next write. A failure here is the
/// upstream's, not the kernel's, and says so.
async fn pass_on_early(
    plan: &RoutePlan,
    legs: &mut Legs,
    early: Vec<u8>,
) -> Result<u64, HandshakeFailure> {
    use tokio::io::AsyncWriteExt;
    // No upstream leg: nothing was passed on (set-up gives both legs).
    let (false, Some(u)) = (early.is_empty(), legs.upstream.as_mut()) else {
        return Ok(0);
    };
    let passed = async {
        u.write_all(&early).await?;
        u.flush().await
    };
    passed.await.map_err(|e| HandshakeFailure {
        side: Side::Upstream,
        stage: legs::Stage::Tls,
        reason: classify(&e),
        detail: format!("passing on the client's first bytes failed: {e}"),
    })?;
    relay::Observe::upstream(&plan.metrics, early.len());
    Ok(early.len() as u64)
}

/// Counts an established TLS session on `side`.
fn record_session(plan: &RoutePlan, side: Side, conn: &rustls::CommonState) {
    let resumed = matches!(conn.handshake_kind(), Some(rustls::HandshakeKind::Resumed));
    plan.metrics.session(
        side,
        version_name(conn.protocol_version()),
        suite_name(conn.negotiated_cipher_suite()),
        resumed,
    );
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Arc;

    use tokio::net::TcpStream;
    use tokio_util::sync::CancellationToken;

    use std::time::Duration;

    use tokio_util::sync::WaitForCancellationFuture;

    use super::super::ending::{self, Finished};
    use super::super::plan::RoutePlan;
    use super::super::stream::Stream;
    use crate::relay;
    use crate::telemetry::RouteMetrics;

    /// The size of what `f` returns: a future's size, without making one.
    fn output_size<A, R>(_: fn(A) -> R) -> usize {
        std::mem::size_of::<R>()
    }

    fn output_size5<A, B, C, D, E, R>(_: fn(A, B, C, D, E) -> R) -> usize {
        std::mem::size_of::<R>()
    }

    /// A connection's task is allocated at its full size for its whole
    /// life, however long it idles: every state it may reach counts, not
    /// only the relay's. The ending's (a drain and linger on both sockets,
    /// with read buffers) once made it 5 KiB larger, for every idle
    /// connection (issue 26); it is boxed since, as the set-up is. Moved
    /// copies of arguments count too: the relay is a named future and
    /// `handle` an `async` block for that reason.
    #[test]
    fn a_connection_task_stays_small() {
        let task = output_size5::<Arc<RoutePlan>, TcpStream, SocketAddr, CancellationToken, (), _>(
            super::handle,
        );
        let finish = output_size::<Finished<'static>, _>(ending::finish);
        type Stop = WaitForCancellationFuture<'static>;
        type S = &'static mut Stream;
        type M = &'static RouteMetrics;
        let relay = output_size5::<S, S, Duration, M, Stop, _>(
            relay::relay_until::<Stream, Stream, RouteMetrics, Stop>,
        );
        let spliced = output_size5::<S, S, Duration, M, Stop, _>(
            relay::relay_spliced_until::<Stream, Stream, RouteMetrics, Stop>,
        );
        eprintln!(
            "conn::handle future: {task} bytes; ending::finish: {finish}; relay: {relay}; spliced relay: {spliced}"
        );
        // 600 bytes in a release build, 1,224 before the relay's `Run`
        // and the unwrapped spawn (a debug build's are larger).
        assert!(task < 1024, "conn::handle's future is {task} bytes");
    }
}
