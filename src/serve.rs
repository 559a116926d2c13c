//! `run`: binds every route and the admin endpoint, then supervises them —
//! SIGHUP, a changed config file or `POST /reload` reload the config,
//! changed certificate files are picked up by themselves, SIGTERM/SIGINT
//! drain and stop. systemd is told about each step when it started us with
//! `Type=notify` or `Type=notify-reload`, and gets watchdog pings when the
//! unit sets `WatchdogSec=`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admin::{self, AdminState, ReloadRequest};
use crate::config::{Config, ConfigError};
use crate::route::listener::{self, RouteHandle};
use crate::route::plan::{self, Plan, RoutePlan};
use crate::sandbox;
use crate::status::Board;
use crate::telemetry;
use crate::watch::{FileStamp, Fingerprint};

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

/// The running state the supervisor owns.
struct Running {
    path: PathBuf,
    config: Config,
    routes: HashMap<String, RouteHandle>,
    conns: TaskTracker,
    force: CancellationToken,
    fingerprint: Fingerprint,
    /// The fingerprint of material that failed to load, so it is reported once.
    rejected: Option<Fingerprint>,
    /// The config file as last read (or refused), for the config watch.
    config_stamp: FileStamp,
    board: Arc<Board>,
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
pub async fn run(path: &Path, metrics: PrometheusHandle) -> anyhow::Result<()> {
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
) -> anyhow::Result<()> {
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
        let l = admin::bind(a.listen).await.with_context(|| {
            format!(
                "failed to bind the admin endpoint on {} (key `admin.listen`)",
                a.listen
            )
        })?;
        tokio::spawn(admin::serve(
            l,
            AdminState {
                metrics,
                process: process_collector(),
                board: board.clone(),
                reload: reload_tx.clone(),
            },
            admin_stop.clone(),
        ));
        tracing::info!(listen = %a.listen, "admin endpoint: /metrics /healthz /readyz /status /status.json");
    }

    let mut listeners = Vec::new();
    for rp in &plan.routes {
        let l = listener::bind(rp.route.listen).with_context(|| {
            format!(
                "failed to bind route \"{}\" on {} (key `listen`)",
                rp.route.name, rp.route.listen
            )
        })?;
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
        let _ = tokio::task::spawn_blocking(crate::relay::ktls::available).await;
    }
    running.start(plan, listeners);

    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    // After the handlers: a SIGHUP sent by whoever reads the pid must not
    // meet the default action (which ends the process).
    if let Some(p) = &opts.pid_file {
        std::fs::write(p, format!("{}\n", std::process::id()))
            .with_context(|| format!("failed to write the pid file {}", p.display()))?;
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

impl Running {
    /// Stops every route's listener and waits until each socket is closed.
    async fn close_listeners(&mut self) {
        for h in self.routes.values_mut() {
            h.closed().await;
        }
    }

    /// Starts serving every route of `plan` on the already bound `listeners`.
    fn start(&mut self, plan: Plan, listeners: Vec<TcpListener>) {
        for (rp, l) in plan.routes.into_iter().zip(listeners) {
            rp.publish_metrics();
            let h = listener::spawn(
                l,
                rp,
                self.conns.clone(),
                self.force.clone(),
                Arc::default(),
            );
            self.routes.insert(h.name.clone(), h);
        }
        self.board.set_routes(self.plans());
        self.retain_route_series();
    }

    /// The serving routes' plans, in config order.
    fn plans(&self) -> Vec<Arc<RoutePlan>> {
        self.config
            .routes
            .iter()
            .filter_map(|r| self.routes.get(&r.name).map(RouteHandle::plan))
            .collect()
    }

    /// Has the config file changed since it was last read, and stayed so
    /// for [`SETTLE`]?
    async fn config_file_changed(&mut self) -> bool {
        let now = FileStamp::of(&self.path);
        if now == self.config_stamp {
            return false;
        }
        tokio::time::sleep(SETTLE).await;
        FileStamp::of(&self.path) == now
    }

    /// Reloads, and reports the result everywhere it is looked for: the
    /// log, `config_reloads_total`, the status page, and systemd (the
    /// `Type=notify-reload` protocol: RELOADING=1 with MONOTONIC_USEC, then
    /// READY=1, with a STATUS= line that says whether it was refused).
    async fn reload_reported(&mut self, trigger: &'static str) -> Result<(), String> {
        // MONOTONIC_USEC lets Type=notify-reload units match the reload to
        // this message; Type=notify ignores it.
        match sd_notify::NotifyState::monotonic_usec_now() {
            Ok(now) => notify(&[sd_notify::NotifyState::Reloading, now]),
            Err(_) => notify(&[sd_notify::NotifyState::Reloading]),
        }
        let result = match self.reload().await {
            Ok(()) => {
                telemetry::reload(true);
                tracing::info!(routes = self.routes.len(), trigger, "config reloaded");
                let status = format!("serving {} route(s); last reload ok", self.routes.len());
                notify(&[
                    sd_notify::NotifyState::Status(&status),
                    sd_notify::NotifyState::Ready,
                ]);
                Ok(())
            }
            Err(e) => {
                telemetry::reload(false);
                // A file outside the sandbox's directories: say so.
                let hint = e
                    .downcast_ref::<ConfigError>()
                    .and_then(sandbox::explain)
                    .map(|h| format!(" ({h})"))
                    .unwrap_or_default();
                let why = format!("{e:#}{hint}");
                tracing::error!(
                    trigger,
                    "config reload refused, the previous config keeps serving: {why}"
                );
                // One line: STATUS= ends at the newline.
                let status = format!(
                    "reload refused, the previous config keeps serving: {}",
                    why.replace('\n', " ")
                );
                notify(&[
                    sd_notify::NotifyState::Status(&status),
                    sd_notify::NotifyState::Ready,
                ]);
                Err(why)
            }
        };
        self.board.reloaded(result.clone());
        self.board.set_routes(self.plans());
        result
    }

    /// Series of routes (and peer series of connect entries) no longer
    /// served leave `/metrics`.
    fn retain_route_series(&self) {
        telemetry::retain_routes(self.routes.values().map(|h| {
            let plan = h.plan();
            let connect = plan.route.connect.iter().map(|u| u.to_string()).collect();
            (h.name.as_str(), connect)
        }));
    }

    /// Re-reads the config file and applies it as a whole, or not at all.
    async fn reload(&mut self) -> anyhow::Result<()> {
        // Whatever the outcome, this version of the file has been seen: the
        // watch reacts to the next change, not to this one again.
        self.config_stamp = FileStamp::of(&self.path);
        let (fingerprint, plan) = load(&self.path)?;
        for w in &plan.warnings {
            tracing::warn!("{w}");
        }
        if plan.config.sandbox != self.config.sandbox {
            tracing::warn!("sandbox changed: it is entered (or not) only at start; the change takes effect at the next start");
        }
        if plan.config.admin != self.config.admin {
            tracing::warn!("admin.listen changed: the admin endpoint moves only on restart");
        }
        // Once per change of the key (removing it included), unless the new
        // value is what already runs.
        let running = tokio::runtime::Handle::current().metrics().num_workers();
        if plan.config.workers != self.config.workers && plan.config.workers != Some(running) {
            tracing::warn!(
                running,
                "workers changed: the runtime's thread count changes only on restart"
            );
        }
        // Bind every new address first: if one fails, nothing has changed.
        let mut fresh = HashMap::new();
        for rp in &plan.routes {
            let keep = self
                .routes
                .get(&rp.route.name)
                .is_some_and(|h| h.plan().route.listen == rp.route.listen);
            if !keep {
                let l = listener::bind(rp.route.listen).with_context(|| {
                    format!(
                        "failed to bind route \"{}\" on {} (key `listen`)",
                        rp.route.name, rp.route.listen
                    )
                })?;
                fresh.insert(rp.route.name.clone(), l);
            }
        }
        // Commit. A route that moves keeps its count of open connections:
        // max_connections is per route, not per listener.
        let names: Vec<String> = self.routes.keys().cloned().collect();
        let mut counts = HashMap::new();
        for name in names {
            let gone = !plan.routes.iter().any(|rp| rp.route.name == name);
            if gone || fresh.contains_key(&name) {
                if let Some(h) = self.routes.remove(&name) {
                    h.stop();
                    tracing::info!(route = %name, open = h.active.load(Ordering::Relaxed),
                        "route stopped accepting; its open connections carry on");
                    if !gone {
                        counts.insert(name, h.active.clone());
                    }
                }
            }
        }
        for rp in plan.routes {
            rp.publish_metrics();
            match fresh.remove(&rp.route.name) {
                Some(l) => {
                    tracing::info!(route = %rp.route.name, listen = %rp.route.listen, "route listening");
                    let active = counts.remove(&rp.route.name).unwrap_or_default();
                    let h = listener::spawn(l, rp, self.conns.clone(), self.force.clone(), active);
                    self.routes.insert(h.name.clone(), h);
                }
                None => self.routes[&rp.route.name].update(rp),
            }
        }
        self.retain_route_series();
        self.fingerprint = fingerprint;
        self.rejected = None;
        self.config = plan.config;
        Ok(())
    }

    /// Rebuilds every route from the current config when a certificate,
    /// key, CA or CRL file changed; keeps the old ones if the new files do
    /// not load (a half-written pair, say).
    fn rotate_if_changed(&mut self) {
        let now = Fingerprint::of(&self.config);
        if now == self.fingerprint || Some(&now) == self.rejected.as_ref() {
            return;
        }
        match plan::build(self.config.clone()) {
            Ok(plan) => {
                for w in &plan.warnings {
                    tracing::warn!("{w}");
                }
                for rp in plan.routes {
                    rp.publish_metrics();
                    if let Some(h) = self.routes.get(&rp.route.name) {
                        h.update(rp);
                    }
                }
                tracing::info!("certificate files changed: new handshakes use them");
                self.board.set_routes(self.plans());
                self.fingerprint = now;
                self.rejected = None;
            }
            Err(e) => {
                let hint = sandbox::explain(&e)
                    .map(|h| format!(" ({h})"))
                    .unwrap_or_default();
                tracing::warn!(
                    "certificate files changed but do not load yet; keeping the previous ones: {e}{hint}"
                );
                self.rejected = Some(now);
            }
        }
    }
}

/// Reads the config at `path` and builds it, with the fingerprint of its
/// material files taken BEFORE they are read: a file replaced while they
/// are read then differs from the fingerprint, and the next look at the
/// files rebuilds (taken after, it would match the new file while the plan
/// holds the old one, and the change would never be seen; issue 14).
fn load(path: &Path) -> Result<(Fingerprint, Plan), crate::config::ConfigError> {
    let config = crate::config::load(path)?;
    let fingerprint = Fingerprint::of(&config);
    Ok((fingerprint, plan::build(config)?))
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
