//! `run`: binds every route and the admin endpoint, then supervises them —
//! SIGHUP, a changed config file or `POST /reload` reload the config,
//! changed certificate files are picked up by themselves, SIGTERM/SIGINT
//! drain and stop. systemd is told about each step when it started us with
//! `Type=notify` or `Type=notify-reload`, and gets watchdog pings when the
//! unit sets `WatchdogSec=`.

mod running;

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::signal::unix::{signal, SignalKind};
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
/// reloads read it), with options.
// Long: the supervisor's life in order (bind, publish, signals, reload loop, drain); each phase is commented below.
pub async fn run_with(
    path: &Path,
    loaded: Loaded,
    metrics: PrometheusHandle,
    opts: Options,
) -> Result<(), ServeError> {
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
    let ready = board.ready.clone();
    let (reload_tx, mut reload_rx) = mpsc::channel::<ReloadRequest>(4);
    let admin_stop = CancellationToken::new();
    if let Some(a) = &plan.config.admin {
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
                reload: reload_tx.clone(),
                hosts: a.hosts.clone().into(),
            },
            admin_stop.clone(),
        ));
        tracing::info!(listen = %a.listen, "admin endpoint: /metrics /healthz /readyz /status /status.json");
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
        board: board.clone(),
    };
    // Kernel TLS: what the kernel takes is probed once, here, off the
    // runtime's threads (it can take a while on first use of a cipher),
    // before the first connection or the report below needs it.
    if running
        .config
        .routes
        .iter()
        .any(|r| r.kernel_tls == crate::config::KernelTls::Auto)
    {
        let _ = tokio::task::spawn_blocking(crate::tls::kernel::available).await;
    }
    running.start(plan, listeners);

    let handler =
        |kind| signal(kind).map_err(|e| ServeError::io("failed to install the signal handlers", e));
    let mut hup = handler(SignalKind::hangup())?;
    let mut term = handler(SignalKind::terminate())?;
    let mut int = handler(SignalKind::interrupt())?;
    // After the handlers: a SIGHUP sent by whoever reads the pid must not
    // meet the default action (which ends the process).
    if let Some(p) = &opts.pid_file {
        std::fs::write(p, format!("{}\n", std::process::id())).map_err(|e| {
            ServeError::io(format!("failed to write the pid file {}", p.display()), e)
        })?;
    }
    telemetry::register_reloads();
    ready.store(true, Ordering::Release);
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

    let mut tick = tokio::time::interval(CERT_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = hup.recv() => {
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
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    drop(reload_rx);

    // Drain: readiness fails at once; the listeners keep accepting for
    // drain_delay while load balancers take the endpoint out (Kubernetes
    // removes it from Services only after the pod is marked terminating,
    // concurrently with the SIGTERM), then stop.
    // Without a drain_delay the listeners are closed first, so that no
    // client is accepted once /readyz says 503.
    let delay = running.config.drain_delay;
    if delay.is_zero() {
        running.close_listeners().await;
    }
    ready.store(false, Ordering::Release);
    board.set_draining();
    notify(&[
        sd_notify::NotifyState::Stopping,
        sd_notify::NotifyState::Status("draining"),
    ]);
    if !delay.is_zero() {
        tracing::info!(drain_delay = %humantime::format_duration(delay),
            "draining: readiness fails now; listeners keep accepting for drain_delay (a second signal ends it early)");
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = term.recv() => tracing::info!("second signal: ending the drain delay early"),
            _ = int.recv() => tracing::info!("second signal: ending the drain delay early"),
        }
        running.close_listeners().await;
    }
    running.conns.close();
    let grace = running.config.shutdown_grace;
    let open = running.conns.len();
    tracing::info!(open, grace = %humantime::format_duration(grace), "stopping: listeners closed, waiting for open connections");
    let forced = if tokio::time::timeout(grace, running.conns.wait())
        .await
        .is_err()
    {
        let n = running.conns.len();
        running.force.cancel();
        running.conns.wait().await;
        n
    } else {
        0
    };
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
