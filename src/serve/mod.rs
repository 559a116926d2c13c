//! `run`: binds every route and the admin endpoint, then supervises them —
//! SIGHUP, a changed config file or `POST /reload` reload the config,
//! changed certificate files are picked up by themselves, SIGTERM/SIGINT
//! drain and stop. systemd is told about each step when it started us with
//! `Type=notify` or `Type=notify-reload`, and gets watchdog pings when the
//! unit sets `WatchdogSec=`.
//!
//! [`run_with`] reads as the phases, one function each: `bind`,
//! `publish`, `serve_until_signal` (the reload loop), `drain`; the reload
//! itself, rotation and the running state are in `running`.

mod running;

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admin::{self, AdminState, ReloadRequest};
use crate::config::{Config, ConfigError};
use crate::route::listener;
use crate::route::plan;
use crate::status::Board;
use crate::telemetry;
use crate::watch::{FileStamp, Fingerprint};
use running::Running;

/// Why `run` stopped before serving, or why a reload was refused.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The config, or a file it names, does not load.
    #[error(transparent)]
    Invalid(#[from] ConfigError),
    /// A valid config whose address cannot be bound.
    #[error("failed to bind {what} on {addr} (key `{key}`): {source}")]
    Bind {
        what: String,
        addr: SocketAddr,
        key: &'static str,
        source: io::Error,
    },
    /// Anything else the process could not do (signals, the pid file).
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
}

impl ServeError {
    /// Is it the config's fault (rather than the world's)? `main`'s exit
    /// status tells the two apart.
    pub fn is_invalid(&self) -> bool {
        matches!(self, ServeError::Invalid(_))
    }

    fn bind_route(name: &str, addr: SocketAddr, source: io::Error) -> ServeError {
        ServeError::Bind {
            what: format!("route \"{name}\""),
            addr,
            key: "listen",
            source,
        }
    }

    fn io(what: impl Into<String>, source: io::Error) -> ServeError {
        ServeError::Io {
            what: what.into(),
            source,
        }
    }
}

/// How often certificate, key, CA files and the config file are looked at
/// for changes.
pub const CERT_POLL: Duration = Duration::from_secs(2);
/// A changed config file must look the same this much later before it is
/// read, so an editor's half-written file is not what gets loaded.
const SETTLE: Duration = Duration::from_millis(200);

/// Options of `run` beyond the config file.
#[derive(Debug, Default, Clone)]
pub struct Options {
    /// Write the process id here once serving (removed at exit): for
    /// `tls-sidecar reload --pid-file` and init scripts.
    pub pid_file: Option<PathBuf>,
}

/// The config file, read and validated once, with the file's stamp taken
/// before the read (a write during start-up is then seen by the watch).
pub struct Loaded {
    pub config: Config,
    stamp: FileStamp,
}

impl Loaded {
    pub fn read(path: &Path) -> Result<Loaded, crate::config::ConfigError> {
        let stamp = FileStamp::of(path);
        let config = crate::config::load(path)?;
        Ok(Loaded { config, stamp })
    }
}

/// Serves the config at `path` until SIGTERM or SIGINT; returns after the
/// drain. Errors only before serving starts (bad config, a port in use).
pub async fn run(path: &Path, metrics: PrometheusHandle) -> Result<(), ServeError> {
    run_with(path, Loaded::read(path)?, metrics, Options::default()).await
}

/// [`run`] on the config `loaded` from `path` (which is still where
/// reloads read it), with options. The supervisor's life, one phase per
/// function: bind everything, publish readiness, serve (and reload) until
/// a signal, drain, stop.
pub async fn run_with(
    path: &Path,
    loaded: Loaded,
    metrics: PrometheusHandle,
    opts: Options,
) -> Result<(), ServeError> {
    let (reload_tx, reload_rx) = mpsc::channel::<ReloadRequest>(4);
    let admin_stop = CancellationToken::new();
    let mut running = bind(path, loaded, metrics, reload_tx, &admin_stop).await?;
    let mut signals = Signals::install()?;
    let watchdog = publish(&running, &opts)?;
    serve_until_signal(&mut running, &mut signals, reload_rx).await;
    let forced = drain(&mut running, &mut signals).await;
    admin_stop.cancel();
    if let Some(w) = watchdog {
        w.abort();
    }
    if let Some(p) = &opts.pid_file {
        // Only our own: a newer process may have written it since.
        if std::fs::read_to_string(p).is_ok_and(|s| s.trim() == std::process::id().to_string()) {
            let _ = std::fs::remove_file(p);
        }
    }
    tracing::info!(
        forced,
        "stopped ({forced} connection(s) closed at the end of the grace period)"
    );
    Ok(())
}

/// Bind: builds the config, binds the admin endpoint (and starts serving
/// it) and every route's listener, then starts the routes. Nothing is
/// served on a route until all of them are bound.
async fn bind(
    path: &Path,
    loaded: Loaded,
    metrics: PrometheusHandle,
    reload: mpsc::Sender<ReloadRequest>,
    admin_stop: &CancellationToken,
) -> Result<Running, ServeError> {
    let Loaded {
        config,
        stamp: config_stamp,
    } = loaded;
    // Before the certificate files are read, as in `load`.
    let fingerprint = Fingerprint::of(&config);
    let plan = plan::build(config)?;
    for w in &plan.warnings {
        tracing::warn!("{w}");
    }
    let board = Arc::new(Board::default());
    if let Some(a) = &plan.config.admin {
        bind_admin(a, metrics, &board, reload, admin_stop).await?;
    }
    let mut listeners = Vec::new();
    for rp in &plan.routes {
        let l = listener::bind(rp.route.listen)
            .map_err(|e| ServeError::bind_route(&rp.route.name, rp.route.listen, e))?;
        listeners.push(l);
    }
    let mut running = Running {
        path: path.to_owned(),
        fingerprint,
        config: plan.config.clone(),
        routes: HashMap::new(),
        conns: TaskTracker::new(),
        force: CancellationToken::new(),
        rejected: None,
        config_stamp,
        board,
    };
    // Kernel TLS: what the kernel takes is probed once, here, off the
    // runtime's threads (it can take a while on first use of a cipher),
    // before the first connection or the report in `publish` needs it.
    if running
        .config
        .routes
        .iter()
        .any(|r| r.kernel_tls == crate::config::KernelTls::Auto)
    {
        let _ = tokio::task::spawn_blocking(crate::tls::kernel::available).await;
    }
    running.start(plan, listeners);
    Ok(running)
}

/// Binds the admin endpoint and serves it until `stop`.
async fn bind_admin(
    a: &crate::config::Admin,
    metrics: PrometheusHandle,
    board: &Arc<Board>,
    reload: mpsc::Sender<ReloadRequest>,
    stop: &CancellationToken,
) -> Result<(), ServeError> {
    let l = admin::bind(a.listen)
        .await
        .map_err(|source| ServeError::Bind {
            what: "the admin endpoint".into(),
            addr: a.listen,
            key: "admin.listen",
            source,
        })?;
    tokio::spawn(admin::serve(
        l,
        AdminState {
            metrics,
            process: process_collector(),
            board: board.clone(),
            reload,
            hosts: a.hosts.clone().into(),
        },
        stop.clone(),
    ));
    tracing::info!(listen = %a.listen, "admin endpoint: /metrics /healthz /readyz /status /status.json");
    Ok(())
}

/// The signals the supervisor answers: SIGHUP reloads, SIGTERM and SIGINT
/// drain (and a second one ends the drain delay early).
struct Signals {
    hup: Signal,
    term: Signal,
    int: Signal,
}

impl Signals {
    fn install() -> Result<Signals, ServeError> {
        let handler = |kind| {
            signal(kind).map_err(|e| ServeError::io("failed to install the signal handlers", e))
        };
        Ok(Signals {
            hup: handler(SignalKind::hangup())?,
            term: handler(SignalKind::terminate())?,
            int: handler(SignalKind::interrupt())?,
        })
    }
}

/// Publish: writes the pid file, says ready (`/readyz`, systemd), starts
/// the watchdog and logs what is served.
fn publish(
    running: &Running,
    opts: &Options,
) -> Result<Option<tokio::task::JoinHandle<()>>, ServeError> {
    // After the signal handlers: a SIGHUP sent by whoever reads the pid
    // must not meet the default action (which ends the process).
    if let Some(p) = &opts.pid_file {
        std::fs::write(p, format!("{}\n", std::process::id())).map_err(|e| {
            ServeError::io(format!("failed to write the pid file {}", p.display()), e)
        })?;
    }
    telemetry::register_reloads();
    running.board.ready.store(true, Ordering::Release);
    let serving = format!("serving {} route(s)", running.routes.len());
    notify(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status(&serving),
    ]);
    let watchdog = start_watchdog();
    for rp in running.plans() {
        if let Some(engine) = crate::check::engine_line(&rp) {
            tracing::info!(route = %rp.route.name, "{engine}");
        }
    }
    tracing::info!(
        routes = running.routes.len(),
        workers = tokio::runtime::Handle::current().metrics().num_workers(),
        watch_config = running.config.watch_config,
        "serving"
    );
    Ok(watchdog)
}

/// Serve until a signal: the reload loop. SIGHUP, `POST /reload` and (with
/// `watch_config`) a changed config file reload the config; changed
/// certificate files are rotated in; SIGTERM or SIGINT ends it.
async fn serve_until_signal(
    running: &mut Running,
    signals: &mut Signals,
    mut reload_rx: mpsc::Receiver<ReloadRequest>,
) {
    let mut tick = tokio::time::interval(CERT_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = signals.hup.recv() => {
                let _ = running.reload_reported("SIGHUP").await;
            }
            Some(answer) = reload_rx.recv() => {
                let result = running.reload_reported("POST /reload").await;
                let _ = answer.send(result);
            }
            _ = tick.tick() => {
                running.rotate_if_changed();
                if running.config.watch_config && running.config_file_changed().await {
                    let _ = running.reload_reported("the config file changed").await;
                }
            }
            _ = signals.term.recv() => break,
            _ = signals.int.recv() => break,
        }
    }
}

/// Drain: readiness fails at once; the listeners keep accepting for
/// drain_delay while load balancers take the endpoint out (Kubernetes
/// removes it from Services only after the pod is marked terminating,
/// concurrently with the SIGTERM), then stop. Open connections get
/// `shutdown_grace`, then are cut. Returns how many were cut.
async fn drain(running: &mut Running, signals: &mut Signals) -> usize {
    // Without a drain_delay the listeners are closed first, so that no
    // client is accepted once /readyz says 503.
    let delay = running.config.drain_delay;
    if delay.is_zero() {
        running.close_listeners().await;
    }
    running.board.ready.store(false, Ordering::Release);
    running.board.set_draining();
    notify(&[
        sd_notify::NotifyState::Stopping,
        sd_notify::NotifyState::Status("draining"),
    ]);
    if !delay.is_zero() {
        tracing::info!(drain_delay = %humantime::format_duration(delay),
            "draining: readiness fails now; listeners keep accepting for drain_delay (a second signal ends it early)");
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = signals.term.recv() => tracing::info!("second signal: ending the drain delay early"),
            _ = signals.int.recv() => tracing::info!("second signal: ending the drain delay early"),
        }
        running.close_listeners().await;
    }
    running.conns.close();
    let grace = running.config.shutdown_grace;
    let open = running.conns.len();
    tracing::info!(open, grace = %humantime::format_duration(grace), "stopping: listeners closed, waiting for open connections");
    if tokio::time::timeout(grace, running.conns.wait())
        .await
        .is_err()
    {
        let n = running.conns.len();
        running.force.cancel();
        running.conns.wait().await;
        n
    } else {
        0
    }
}

/// Pings systemd's watchdog from the runtime every half period when the
/// unit sets `WatchdogSec=` (a runtime that stops scheduling stops pinging,
/// and systemd restarts the service).
fn start_watchdog() -> Option<tokio::task::JoinHandle<()>> {
    let period = sd_notify::watchdog_enabled()?;
    let every = (period / 2).max(Duration::from_millis(10));
    tracing::info!(every = %humantime::format_duration(every), "systemd watchdog enabled: pinging");
    Some(tokio::spawn(async move {
        let mut t = tokio::time::interval(every);
        loop {
            t.tick().await;
            notify(&[sd_notify::NotifyState::Watchdog]);
        }
    }))
}

fn process_collector() -> Arc<metrics_process::Collector> {
    let c = metrics_process::Collector::default();
    c.describe();
    Arc::new(c)
}

/// Tells systemd (when it started us with `Type=notify` or
/// `Type=notify-reload`); otherwise a no-op.
fn notify(state: &[sd_notify::NotifyState<'_>]) {
    let _ = sd_notify::notify(state);
}
