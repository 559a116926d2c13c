//! The supervisor's running state: the routes it serves, and how it starts
//! them, reloads the config as a whole or not at all, picks up changed
//! certificate files and closes the listeners for the drain.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{notify, ServeError, SETTLE};
use crate::config::Config;
use crate::route::listener::{self, RouteHandle};
use crate::route::plan::{self, Plan, RoutePlan};
use crate::sandbox;
use crate::status::Board;
use crate::telemetry;
use crate::watch::{FileStamp, Fingerprint};

/// The running state the supervisor owns.
pub(super) struct Running {
    pub(super) path: PathBuf,
    pub(super) config: Config,
    pub(super) routes: HashMap<String, RouteHandle>,
    pub(super) conns: TaskTracker,
    pub(super) force: CancellationToken,
    pub(super) fingerprint: Fingerprint,
    /// The fingerprint of material that failed to load, so it is reported once.
    pub(super) rejected: Option<Fingerprint>,
    /// The config file as last read (or refused), for the config watch.
    pub(super) config_stamp: FileStamp,
    pub(super) board: Arc<Board>,
}

impl Running {
    /// Stops every route's listener and waits until each socket is closed.
    pub(super) async fn close_listeners(&mut self) {
        for h in self.routes.values_mut() {
            h.closed().await;
        }
    }

    /// Starts serving every route of `plan` on the already bound `listeners`.
    pub(super) fn start(&mut self, plan: Plan, listeners: Vec<TcpListener>) {
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
    pub(super) fn plans(&self) -> Vec<Arc<RoutePlan>> {
        self.config
            .routes
            .iter()
            .filter_map(|r| self.routes.get(&r.name).map(RouteHandle::plan))
            .collect()
    }

    /// Has the config file changed since it was last read, and stayed so
    /// for [`SETTLE`]?
    pub(super) async fn config_file_changed(&mut self) -> bool {
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
    pub(super) async fn reload_reported(&mut self, trigger: &'static str) -> Result<(), String> {
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
                // A file outside the sandbox's directories: say so.
                let hint = match &e {
                    ServeError::Invalid(c) => sandbox::explain(c),
                    _ => None,
                }
                .map(|h| format!(" ({h})"))
                .unwrap_or_default();
                // The log line, STATUS=, the 409 answer and /status all
                // take `why`: redacted here once more, whatever its source.
                let why = crate::config::redact::userinfo(&format!("{e}{hint}")).into_owned();
                tracing::error!(
                    trigger,
                    "config reload refused, the previous config keeps serving: {why}"
                );
                // Counted once the line is written: whoever sees the count
                // finds the line.
                telemetry::reload(false);
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
    pub(super) fn retain_route_series(&self) {
        telemetry::retain_routes(self.routes.values().map(|h| {
            let plan = h.plan();
            let connect = plan.route.connect.iter().map(|u| u.to_string()).collect();
            (h.name.as_str(), connect)
        }));
        crate::route::stapling::retain(&self.routes.keys().map(|n| n.as_str()).collect());
    }

    /// Re-reads the config file and applies it as a whole, or not at all.
    pub(super) async fn reload(&mut self) -> Result<(), ServeError> {
        // Whatever the outcome, this version of the file has been seen: the
        // watch reacts to the next change, not to this one again.
        self.config_stamp = FileStamp::of(&self.path);
        let (fingerprint, plan) = load(&self.path)?;
        for w in &plan.warnings {
            tracing::warn!("{w}");
        }
        self.warn_restart_only(&plan.config);
        // Bind every new address first: if one fails, nothing has changed.
        let fresh = self.bind_moved(&plan)?;
        self.commit(plan.routes, fresh);
        self.retain_route_series();
        self.fingerprint = fingerprint;
        self.rejected = None;
        self.config = plan.config;
        Ok(())
    }

    /// Says which changed keys take effect only at the next start.
    fn warn_restart_only(&self, new: &Config) {
        if new.sandbox != self.config.sandbox {
            tracing::warn!("sandbox changed: it is entered (or not) only at start; the change takes effect at the next start");
        }
        if new.admin != self.config.admin {
            tracing::warn!("admin.listen changed: the admin endpoint moves only on restart");
        }
        // Once per change of the key (removing it included), unless the new
        // value is what already runs.
        let running = tokio::runtime::Handle::current().metrics().num_workers();
        if new.workers != self.config.workers && new.workers != Some(running) {
            tracing::warn!(
                running,
                "workers changed: the runtime's thread count changes only on restart"
            );
        }
    }

    /// Binds the listen address of every route of `plan` that is new or
    /// moved, by route name; the first that fails is the error.
    fn bind_moved(&self, plan: &Plan) -> Result<HashMap<String, TcpListener>, ServeError> {
        let mut fresh = HashMap::new();
        for rp in &plan.routes {
            let keep = self
                .routes
                .get(&rp.route.name)
                .is_some_and(|h| h.plan().route.listen == rp.route.listen);
            if !keep {
                let l = listener::bind(rp.route.listen)
                    .map_err(|e| ServeError::bind_route(&rp.route.name, rp.route.listen, e))?;
                fresh.insert(rp.route.name.clone(), l);
            }
        }
        Ok(fresh)
    }

    /// Commits the new routes: gone or moved routes stop accepting, moved
    /// and new ones start on their `fresh` listener, the others take their
    /// new plan. A route that moves keeps its count of open connections:
    /// max_connections is per route, not per listener.
    fn commit(&mut self, routes: Vec<Arc<RoutePlan>>, mut fresh: HashMap<String, TcpListener>) {
        let names: Vec<String> = self.routes.keys().cloned().collect();
        let mut counts = HashMap::new();
        for name in names {
            let gone = !routes.iter().any(|rp| rp.route.name == name);
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
        for rp in routes {
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
    }

    /// Rebuilds every route from the current config when a certificate,
    /// key, CA or CRL file changed; keeps the old ones if the new files do
    /// not load (a half-written pair, say).
    pub(super) fn rotate_if_changed(&mut self) {
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
