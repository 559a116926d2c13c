//! The status page: what the sidecar serves and how it has gone lately, as
//! one self-contained HTML page (`GET /status`, no script, no external
//! asset) and the same data as JSON (`GET /status.json`) for scripts.
//!
//! The supervisor keeps a [`Board`] current (the serving route plans, the
//! reload results, readiness); the admin endpoint renders a [`Snapshot`] of
//! it together with each route's recent activity. Everything printed that
//! comes from the config or a certificate is escaped: a peer certificate's
//! subject is text an attacker chose. No key material is ever read here —
//! only certificate subjects and dates, addresses and counters.

mod html;
mod view;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use serde::Serialize;

pub use html::{escape, html};
pub use view::{
    expiry_level, json, CertView, Count, Failure, RouteView, Snapshot, UpstreamView, CRITICAL_DAYS,
    WARN_DAYS,
};

use crate::activity::WINDOW_MINUTES;
use crate::route::plan::RoutePlan;
use view::{route_view, unix};

/// What the supervisor tells the status page.
#[derive(Debug)]
pub struct Board {
    routes: RwLock<Vec<Arc<RoutePlan>>>,
    reloads: Mutex<Reloads>,
    /// `/readyz` answers 200 while this is true.
    pub ready: Arc<AtomicBool>,
    draining: AtomicBool,
    started: SystemTime,
}

/// Config reloads since start, by any trigger (SIGHUP, the config watch,
/// `tls-sidecar reload`).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Reloads {
    /// Counts every finished reload, accepted or refused: a client that saw
    /// generation N before asking knows its answer once this passes N.
    pub generation: u64,
    pub ok: u64,
    pub error: u64,
    /// Why the last reload was refused, if it was.
    pub last_error: Option<String>,
}

impl Default for Board {
    fn default() -> Self {
        Board {
            routes: RwLock::new(Vec::new()),
            reloads: Mutex::new(Reloads::default()),
            ready: Arc::new(AtomicBool::new(false)),
            draining: AtomicBool::new(false),
            started: SystemTime::now(),
        }
    }
}

impl Board {
    /// The routes now serving, in config order.
    pub fn set_routes(&self, routes: Vec<Arc<RoutePlan>>) {
        *self.routes.write().unwrap_or_else(|p| p.into_inner()) = routes;
    }

    /// Records a finished reload.
    pub fn reloaded(&self, result: Result<(), String>) {
        let mut r = self.reloads.lock().unwrap_or_else(|p| p.into_inner());
        r.generation += 1;
        match result {
            Ok(()) => {
                r.ok += 1;
                r.last_error = None;
            }
            Err(e) => {
                r.error += 1;
                r.last_error = Some(e);
            }
        }
    }

    pub fn reloads(&self) -> Reloads {
        self.reloads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Everything the page shows, now.
    pub fn snapshot(&self) -> Snapshot {
        let now = SystemTime::now();
        let routes = self
            .routes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|rp| route_view(rp, now))
            .collect();
        Snapshot {
            version: env!("CARGO_PKG_VERSION"),
            pid: std::process::id(),
            generated_unix: unix(now),
            started_unix: unix(self.started),
            ready: self.ready.load(Ordering::Acquire),
            draining: self.draining.load(Ordering::Acquire),
            reloads: self.reloads(),
            window_minutes: WINDOW_MINUTES,
            routes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reloads_count_every_result_and_keep_the_last_refusal() {
        let b = Board::default();
        b.reloaded(Err("bad".into()));
        assert_eq!(
            b.reloads(),
            Reloads {
                generation: 1,
                ok: 0,
                error: 1,
                last_error: Some("bad".into())
            }
        );
        b.reloaded(Ok(()));
        assert_eq!(
            b.reloads(),
            Reloads {
                generation: 2,
                ok: 1,
                error: 1,
                last_error: None
            }
        );
    }
}
