//! `run`: binds every route and the admin endpoint, then supervises them —
//! SIGHUP reloads the config, changed certificate files are picked up by
//! themselves, SIGTERM/SIGINT drain and stop. systemd is told about each
//! step when it started us with `Type=notify`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admin::{self, AdminState};
use crate::config::Config;
use crate::route::listener::{self, RouteHandle};
use crate::route::plan::{self, Plan};
use crate::telemetry;
use crate::watch::Fingerprint;

/// How often certificate, key and CA files are looked at for changes.
pub const CERT_POLL: Duration = Duration::from_secs(2);

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
}

/// Serves the config at `path` until SIGTERM or SIGINT; returns after the
/// drain. Errors only before serving starts (bad config, a port in use).
pub async fn run(path: &Path, metrics: PrometheusHandle) -> anyhow::Result<()> {
    let (fingerprint, plan) = load(path)?;
    for w in &plan.warnings {
        tracing::warn!("{w}");
    }
    let ready = Arc::new(AtomicBool::new(false));
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
                ready: ready.clone(),
            },
            admin_stop.clone(),
        ));
        tracing::info!(listen = %a.listen, "admin endpoint: /metrics /healthz /readyz");
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
    };
    running.start(plan, listeners);

    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    telemetry::register_reloads();
    ready.store(true, Ordering::Release);
    notify(&[sd_notify::NotifyState::Ready]);
    tracing::info!(
        routes = running.routes.len(),
        workers = tokio::runtime::Handle::current().metrics().num_workers(),
        "serving"
    );

    let mut tick = tokio::time::interval(CERT_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = hup.recv() => {
                // MONOTONIC_USEC lets Type=notify-reload units match the
                // reload to this message; Type=notify ignores it.
                match sd_notify::NotifyState::monotonic_usec_now() {
                    Ok(now) => notify(&[sd_notify::NotifyState::Reloading, now]),
                    Err(_) => notify(&[sd_notify::NotifyState::Reloading]),
                }
                match running.reload().await {
                    Ok(()) => {
                        telemetry::reload(true);
                        tracing::info!(routes = running.routes.len(), "config reloaded");
                    }
                    Err(e) => {
                        telemetry::reload(false);
                        tracing::error!("config reload refused, the previous config keeps serving: {e:#}");
                    }
                }
                notify(&[sd_notify::NotifyState::Ready]);
            }
            _ = tick.tick() => running.rotate_if_changed(),
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }

    // Drain.
    ready.store(false, Ordering::Release);
    notify(&[sd_notify::NotifyState::Stopping]);
    for h in running.routes.values() {
        h.stop();
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
    tracing::info!(
        forced,
        "stopped ({forced} connection(s) closed at the end of the grace period)"
    );
    Ok(())
}

impl Running {
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
        self.retain_route_series();
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
        let (fingerprint, plan) = load(&self.path)?;
        for w in &plan.warnings {
            tracing::warn!("{w}");
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
                self.fingerprint = now;
                self.rejected = None;
            }
            Err(e) => {
                tracing::warn!(
                    "certificate files changed but do not load yet; keeping the previous ones: {e}"
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

/// Tells systemd (when it started us with `Type=notify`); otherwise a no-op.
fn notify(state: &[sd_notify::NotifyState<'_>]) {
    let _ = sd_notify::notify(state);
}
