//! What each route did lately, for the status page: connections by outcome
//! and failures by reason over the last minutes, each upstream's last
//! connect result and latency, open connections, the last peer certificates
//! seen.
//!
//! Recorded by the per-route metric handles (`telemetry::RouteMetrics`), so
//! the connection path makes no call of its own. Kept per route *name* in a
//! process-wide registry: a reload builds new handles, and the page must
//! keep showing the minutes before it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use crate::labels::{Reason, Side};

/// How many minutes the page sums over.
pub const WINDOW_MINUTES: u64 = 15;
/// Peer certificates remembered per route (the most recent subjects).
const PEERS_KEPT: usize = 8;

/// One route's recent activity.
#[derive(Debug, Default)]
pub struct RouteActivity {
    open: AtomicI64,
    window: Mutex<Window>,
    upstreams: Mutex<Vec<UpstreamSeen>>,
    peers: Mutex<Vec<PeerSeen>>,
}

/// The last connect attempt to one upstream address (a `connect` entry).
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamSeen {
    pub upstream: String,
    /// `None`: connected. `Some`: why not.
    pub error: Option<String>,
    pub latency: Duration,
    pub at: SystemTime,
    pub connected: u64,
    pub failed: u64,
}

/// A peer certificate seen in a handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSeen {
    pub subject: String,
    /// Unix seconds.
    pub not_after: i64,
    pub at: SystemTime,
}

/// Counts per minute, a ring of `WINDOW_MINUTES` buckets.
#[derive(Debug, Default)]
struct Window {
    buckets: Vec<Bucket>,
}

#[derive(Debug, Default, Clone)]
struct Bucket {
    minute: u64,
    results: Vec<(&'static str, u64)>,
    failures: Vec<((Side, Reason), u64)>,
}

/// Sums over the window.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recent {
    /// Connection outcomes (`ok`, `connect_error`, …) with their counts.
    pub results: Vec<(&'static str, u64)>,
    /// Handshake failures by (side, reason).
    pub failures: Vec<((Side, Reason), u64)>,
}

fn bump<K: PartialEq>(v: &mut Vec<(K, u64)>, key: K) {
    add(v, key, 1);
}

fn add<K: PartialEq>(v: &mut Vec<(K, u64)>, key: K, by: u64) {
    match v.iter_mut().find(|(k, _)| *k == key) {
        Some((_, n)) => *n += by,
        None => v.push((key, by)),
    }
}

impl Window {
    fn bucket(&mut self, minute: u64) -> &mut Bucket {
        let slot = (minute % WINDOW_MINUTES) as usize;
        if self.buckets.len() < WINDOW_MINUTES as usize {
            self.buckets
                .resize(WINDOW_MINUTES as usize, Bucket::default());
        }
        let b = &mut self.buckets[slot];
        if b.minute != minute {
            *b = Bucket {
                minute,
                ..Bucket::default()
            };
        }
        b
    }

    fn recent(&self, now: u64) -> Recent {
        let mut out = Recent::default();
        let oldest = now.saturating_sub(WINDOW_MINUTES - 1);
        for b in &self.buckets {
            if b.minute < oldest
                || b.minute > now
                || (b.results.is_empty() && b.failures.is_empty())
            {
                continue;
            }
            for (k, n) in &b.results {
                add(&mut out.results, *k, *n);
            }
            for (k, n) in &b.failures {
                add(&mut out.failures, *k, *n);
            }
        }
        out.results.sort();
        // In label order, as the status page shows them.
        out.failures
            .sort_by_key(|((side, reason), _)| (side.as_str(), reason.as_str()));
        out
    }
}

/// Minutes since the process started (the window's clock).
fn minute_now() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_secs() / 60
}

impl RouteActivity {
    /// A connection's outcome (`tls_sidecar_connections_total`'s `result`).
    pub fn connection(&self, result: &'static str) {
        self.connection_at(minute_now(), result);
    }

    fn connection_at(&self, minute: u64, result: &'static str) {
        let mut w = self.window.lock().unwrap_or_else(|p| p.into_inner());
        bump(&mut w.bucket(minute).results, result);
    }

    /// A failed handshake.
    pub fn failure(&self, side: Side, reason: Reason) {
        self.failure_at(minute_now(), side, reason);
    }

    fn failure_at(&self, minute: u64, side: Side, reason: Reason) {
        let mut w = self.window.lock().unwrap_or_else(|p| p.into_inner());
        bump(&mut w.bucket(minute).failures, (side, reason));
    }

    /// A connect attempt to `upstream`: `error` is `None` when it connected.
    pub fn upstream(&self, upstream: &str, latency: Duration, error: Option<String>) {
        let mut ups = self.upstreams.lock().unwrap_or_else(|p| p.into_inner());
        let i = match ups.iter().position(|u| u.upstream == upstream) {
            Some(i) => i,
            None => {
                ups.push(UpstreamSeen {
                    upstream: upstream.to_owned(),
                    error: None,
                    latency,
                    at: SystemTime::now(),
                    connected: 0,
                    failed: 0,
                });
                ups.len() - 1
            }
        };
        let u = &mut ups[i];
        if error.is_some() {
            u.failed += 1;
        } else {
            u.connected += 1;
        }
        u.error = error;
        u.latency = latency;
        u.at = SystemTime::now();
    }

    /// A peer certificate seen in a handshake.
    pub fn peer(&self, subject: &str, not_after: i64) {
        let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        peers.retain(|p| p.subject != subject);
        peers.insert(
            0,
            PeerSeen {
                subject: subject.to_owned(),
                not_after,
                at: SystemTime::now(),
            },
        );
        peers.truncate(PEERS_KEPT);
    }

    pub fn open_add(&self, n: i64) {
        self.open.fetch_add(n, Ordering::Relaxed);
    }

    /// Relayed connections open now.
    pub fn open(&self) -> u64 {
        self.open.load(Ordering::Relaxed).max(0) as u64
    }

    /// Outcomes and failures of the last `WINDOW_MINUTES` minutes.
    pub fn recent(&self) -> Recent {
        self.window
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .recent(minute_now())
    }

    /// The last attempt to each upstream seen so far.
    pub fn upstreams(&self) -> Vec<UpstreamSeen> {
        self.upstreams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The peer certificates seen, most recent first.
    pub fn peers(&self) -> Vec<PeerSeen> {
        self.peers.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The activity record of the route named `name` (made on first use; the
/// same one across reloads).
pub fn route(name: &str) -> Arc<RouteActivity> {
    static ROUTES: OnceLock<Mutex<HashMap<String, Arc<RouteActivity>>>> = OnceLock::new();
    let mut m = ROUTES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    m.entry(name.to_owned()).or_default().clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_sums_the_last_fifteen_minutes_and_forgets_older_ones() {
        let a = RouteActivity::default();
        a.connection_at(0, "ok");
        a.connection_at(3, "ok");
        a.connection_at(3, "connect_error");
        a.failure_at(14, Side::Upstream, Reason::UnknownCa);
        a.failure_at(14, Side::Upstream, Reason::UnknownCa);
        let w = a.window.lock().unwrap();
        assert_eq!(
            w.recent(14),
            Recent {
                results: vec![("connect_error", 1), ("ok", 2)],
                failures: vec![((Side::Upstream, Reason::UnknownCa), 2)],
            }
        );
        // Minute 15: minute 0 has left the window.
        assert_eq!(w.recent(15).results, vec![("connect_error", 1), ("ok", 1)]);
        drop(w);
        // Minute 18 reuses minute 3's slot: the old counts go.
        a.connection_at(18, "timeout");
        let w = a.window.lock().unwrap();
        assert_eq!(w.recent(18).results, vec![("timeout", 1)]);
        assert_eq!(
            w.recent(18).failures,
            vec![((Side::Upstream, Reason::UnknownCa), 2)]
        );
    }

    #[test]
    fn an_upstream_keeps_its_last_result_and_counts_both_kinds() {
        let a = RouteActivity::default();
        a.upstream("a:1", Duration::from_millis(3), Some("refused".into()));
        a.upstream("b:1", Duration::from_millis(1), None);
        a.upstream("a:1", Duration::from_millis(2), None);
        let ups = a.upstreams();
        assert_eq!(ups.len(), 2);
        assert_eq!(ups[0].upstream, "a:1");
        assert_eq!(ups[0].error, None);
        assert_eq!(ups[0].latency, Duration::from_millis(2));
        assert_eq!((ups[0].connected, ups[0].failed), (1, 1));
        assert_eq!((ups[1].connected, ups[1].failed), (1, 0));
    }

    #[test]
    fn peers_are_kept_most_recent_first_without_repeats() {
        let a = RouteActivity::default();
        a.peer("CN=a", 1);
        a.peer("CN=b", 2);
        a.peer("CN=a", 3);
        let p = a.peers();
        assert_eq!(
            p.iter()
                .map(|p| (p.subject.as_str(), p.not_after))
                .collect::<Vec<_>>(),
            vec![("CN=a", 3), ("CN=b", 2)]
        );
    }

    #[test]
    fn the_same_route_name_gives_the_same_record() {
        let a = route("activity-test-route");
        a.open_add(2);
        assert_eq!(route("activity-test-route").open(), 2);
    }
}
