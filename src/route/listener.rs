//! A route's listener: accepts clients, applies `max_connections`, and
//! spawns one task per connection with a snapshot of the route's current
//! plan. A reload publishes a new plan through the `watch` channel; open
//! connections keep the plan they started with.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::conn;
use super::plan::RoutePlan;
use super::stream::Stream;
use crate::telemetry::ConnResult;

/// A serving route, as the supervisor holds it.
pub struct RouteHandle {
    pub name: String,
    plan: watch::Sender<Arc<RoutePlan>>,
    stop: CancellationToken,
    pub active: Arc<AtomicUsize>,
    /// The accept loop; it owns (and closes) the listening socket.
    accepting: tokio::task::JoinHandle<()>,
}

impl RouteHandle {
    /// New connections use `plan` from now on.
    pub fn update(&self, plan: Arc<RoutePlan>) {
        self.plan.send_replace(plan);
    }

    /// Stops accepting; open connections carry on. The socket closes as
    /// soon as the accept loop sees it (see [`RouteHandle::closed`]).
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// Stops accepting and returns once the listening socket is closed: a
    /// client connecting after this is refused by the kernel.
    pub async fn closed(&mut self) {
        self.stop.cancel();
        let _ = (&mut self.accepting).await;
    }

    pub fn plan(&self) -> Arc<RoutePlan> {
        self.plan.borrow().clone()
    }
}

/// The accept queue's depth (the kernel caps it at `net.core.somaxconn`,
/// 4096 on current kernels). A burst of thousands of clients (a GMS restart
/// reconnecting everything) must wait here, not be dropped by the kernel.
const BACKLOG: u32 = 4096;

/// Binds `addr` the way every route does (SO_REUSEADDR, a deep backlog).
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Starts accepting on `listener` for `plan`. Connection tasks are tracked
/// by `conns`; `force` closes them at the end of a shutdown grace period.
/// `active` counts the route's open connections against `max_connections`:
/// a new route's is fresh, a route that moves to another listener passes on
/// the one of its previous listener (one count per route).
pub fn spawn(
    listener: TcpListener,
    plan: Arc<RoutePlan>,
    conns: TaskTracker,
    force: CancellationToken,
    active: Arc<AtomicUsize>,
) -> RouteHandle {
    let name = plan.route.name.clone();
    let (tx, rx) = watch::channel(plan);
    let stop = CancellationToken::new();
    let accepting = tokio::spawn(accept_loop(
        listener,
        rx,
        stop.clone(),
        conns,
        force,
        active.clone(),
    ));
    RouteHandle {
        name,
        plan: tx,
        stop,
        active,
        accepting,
    }
}

/// Decrements the route's open-connection count when the connection ends.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn accept_loop(
    listener: TcpListener,
    plan: watch::Receiver<Arc<RoutePlan>>,
    stop: CancellationToken,
    conns: TaskTracker,
    force: CancellationToken,
    active: Arc<AtomicUsize>,
) {
    let mut backoff = Duration::from_millis(10);
    let mut refused_logged = tokio::time::Instant::now() - Duration::from_secs(60);
    loop {
        let accepted = tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            r = listener.accept() => r,
        };
        let (tcp, client) = match accepted {
            Ok(a) => {
                backoff = Duration::from_millis(10);
                a
            }
            Err(e) => {
                let snapshot = plan.borrow().clone();
                if is_resource_error(&e) {
                    // Out of fds or memory: wait for some to free up rather
                    // than spin on the error or exit.
                    tracing::error!(route = %snapshot.route.name, error = %e,
                        "failed to accept a client (resource exhausted); pausing {:?}", backoff);
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                } else {
                    tracing::debug!(route = %snapshot.route.name, error = %e, "failed to accept a client");
                }
                continue;
            }
        };
        let snapshot = plan.borrow().clone();
        if active.load(Ordering::Acquire) >= snapshot.route.max_connections {
            snapshot.metrics.connection(ConnResult::RefusedLimit);
            if refused_logged.elapsed() >= Duration::from_secs(1) {
                refused_logged = tokio::time::Instant::now();
                tracing::warn!(route = %snapshot.route.name, client = %client,
                    max_connections = snapshot.route.max_connections,
                    "refusing a client: the route is at max_connections (further refusals this second are counted, not logged)");
            }
            Stream::Plain(tcp).abort();
            continue;
        }
        active.fetch_add(1, Ordering::AcqRel);
        let slot = Slot(active.clone());
        let force = force.clone();
        // The connection's own future, not one wrapped in another: a
        // wrapping `async` block held a second copy of its arguments
        // beside it, in every connection's task (issue 26).
        conns.spawn(conn::handle(snapshot, tcp, client, force, slot));
    }
}

fn is_resource_error(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}
