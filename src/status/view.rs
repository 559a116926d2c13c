//! The status page's data: a [`Snapshot`] of the serving routes, their
//! recent activity and certificates, as the HTML page shows it and as
//! `/status.json` serializes it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::Reloads;
use crate::route::plan::RoutePlan;

/// Days to expiry under which a certificate is shown as a warning.
pub const WARN_DAYS: i64 = 30;
/// And as critical.
pub const CRITICAL_DAYS: i64 = 7;

/// The page's data (`/status.json`).
#[derive(Debug, Serialize)]
pub struct Snapshot {
    pub version: &'static str,
    pub pid: u32,
    pub generated_unix: i64,
    pub started_unix: i64,
    pub ready: bool,
    pub draining: bool,
    pub reloads: Reloads,
    /// `recent` and `failures` count over this many minutes.
    pub window_minutes: u64,
    pub routes: Vec<RouteView>,
}

#[derive(Debug, Serialize)]
pub struct RouteView {
    pub name: String,
    pub listen: String,
    /// TLS terminated on the listen side.
    pub listen_tls: bool,
    /// `plain`, `direct` or `upgrade`.
    pub connect_start: &'static str,
    /// `full`, `chain`, `pin`, `none`, or `plain` without TLS upstream.
    pub verify: &'static str,
    /// `verify = "none"`: any upstream certificate is accepted.
    pub trust_mode: bool,
    pub mutual: bool,
    pub open_connections: u64,
    pub upstreams: Vec<UpstreamView>,
    /// Connection outcomes over the window, every outcome listed.
    pub recent: Vec<Count>,
    /// Handshake failures over the window by side and reason.
    pub failures: Vec<Failure>,
    pub certificates: Vec<CertView>,
    /// The OCSP staple of each listen certificate that has `ocsp`.
    pub ocsp: Vec<OcspView>,
}

#[derive(Debug, Serialize)]
pub struct OcspView {
    pub subject: String,
    /// `file` or `auto`.
    pub source: &'static str,
    /// `stapled`, `stale` (held, not valid now: not stapled) or `none`.
    pub state: &'static str,
    /// What the response says: `good`, `revoked`, `unknown`.
    pub status: Option<&'static str>,
    pub next_update_unix: Option<i64>,
    /// Why the last fetch gave nothing (`auto`).
    pub last_error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct UpstreamView {
    pub address: String,
    /// `ok`, `error`, or `none` before the first attempt.
    pub last_result: &'static str,
    pub last_error: Option<String>,
    pub last_latency_ms: Option<f64>,
    pub last_unix: Option<i64>,
    pub connected: u64,
    pub failed: u64,
}

#[derive(Debug, Serialize)]
pub struct Count {
    pub result: &'static str,
    pub count: u64,
}

#[derive(Debug, Serialize)]
pub struct Failure {
    pub side: &'static str,
    pub reason: &'static str,
    pub count: u64,
}

#[derive(Debug, Serialize)]
pub struct CertView {
    /// `client`, `server`, `ca` (configured) or `peer` (seen in a handshake).
    pub role: &'static str,
    pub subject: String,
    pub not_after_unix: i64,
    pub days_left: i64,
    /// `ok`, `warning` (under 30 days), `critical` (under 7) or `expired`.
    pub level: &'static str,
}

pub(super) fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// `ok` / `warning` / `critical` / `expired` for a certificate expiring at
/// `not_after` (Unix seconds) seen at `now`, and the whole days left.
pub fn expiry_level(not_after: i64, now: i64) -> (i64, &'static str) {
    let left = not_after - now;
    let days = left.div_euclid(86_400);
    let level = if left <= 0 {
        "expired"
    } else if days < CRITICAL_DAYS {
        "critical"
    } else if days < WARN_DAYS {
        "warning"
    } else {
        "ok"
    };
    (days, level)
}

pub(super) fn route_view(rp: &RoutePlan, now: SystemTime) -> RouteView {
    let a = &rp.metrics.activity;
    let recent = a.recent();
    let seen = a.upstreams();
    let upstreams = rp
        .route
        .connect
        .iter()
        .map(|u| upstream_view(u.to_string(), &seen))
        .collect();
    RouteView {
        name: rp.route.name.clone(),
        listen: rp.route.listen.to_string(),
        listen_tls: rp.server_tls.is_some(),
        connect_start: rp.route.connect_start(),
        verify: rp.verify_label(),
        trust_mode: rp.verify_label() == "none",
        mutual: rp.mutual(),
        open_connections: a.open(),
        upstreams,
        recent: crate::telemetry::ConnResult::ALL
            .iter()
            .map(|r| Count {
                result: r.as_str(),
                count: recent
                    .results
                    .iter()
                    .find(|(k, _)| *k == r.as_str())
                    .map_or(0, |(_, n)| *n),
            })
            .collect(),
        failures: recent
            .failures
            .iter()
            .map(|((side, reason), count)| Failure {
                side: side.as_str(),
                reason: reason.as_str(),
                count: *count,
            })
            .collect(),
        certificates: certificates(rp, now),
        ocsp: ocsp(rp, unix(now)),
    }
}

/// Each listen certificate's OCSP staple, as handshakes see it now.
fn ocsp(rp: &RoutePlan, now: i64) -> Vec<OcspView> {
    let Some(st) = &rp.server_tls else {
        return Vec::new();
    };
    st.certs
        .iter()
        .zip(&st.stapled)
        .zip(&st.ocsp)
        .filter_map(|(((_, info), s), source)| {
            let held = s.held();
            Some(OcspView {
                subject: info.subject.clone(),
                source: match source.as_ref()? {
                    crate::config::Ocsp::Auto => "auto",
                    crate::config::Ocsp::File(_) => "file",
                },
                state: match &held {
                    Some(h) if h.valid_at(now) => "stapled",
                    Some(_) => "stale",
                    None => "none",
                },
                status: held.as_ref().map(|h| h.status.as_str()),
                next_update_unix: held.as_ref().and_then(|h| h.next_update),
                last_error: s.last_error(),
            })
        })
        .collect()
}

/// What the status page says of one configured upstream, from the
/// activity `seen` for it (if any).
fn upstream_view(address: String, seen: &[crate::activity::UpstreamSeen]) -> UpstreamView {
    match seen.iter().find(|s| s.upstream == address) {
        Some(s) => UpstreamView {
            last_result: if s.error.is_none() { "ok" } else { "error" },
            last_error: s.error.clone(),
            last_latency_ms: Some(ms(s.latency)),
            last_unix: Some(unix(s.at)),
            connected: s.connected,
            failed: s.failed,
            address,
        },
        None => UpstreamView {
            address,
            last_result: "none",
            last_error: None,
            last_latency_ms: None,
            last_unix: None,
            connected: 0,
            failed: 0,
        },
    }
}

/// The route's configured certificates, then the peers' seen lately.
fn certificates(rp: &RoutePlan, now: SystemTime) -> Vec<CertView> {
    let now_unix = unix(now);
    let cert = |role: &'static str, subject: &str, not_after: i64| {
        let (days_left, level) = expiry_level(not_after, now_unix);
        CertView {
            role,
            subject: subject.to_owned(),
            not_after_unix: not_after,
            days_left,
            level,
        }
    };
    let mut certificates: Vec<CertView> = rp
        .client_tls
        .iter()
        .flat_map(|c| c.certs.iter())
        .chain(rp.server_tls.iter().flat_map(|s| s.certs.iter()))
        .map(|(role, info)| cert(role, &info.subject, info.not_after))
        .collect();
    certificates.extend(
        rp.metrics
            .activity
            .peers()
            .iter()
            .map(|p| cert("peer", &p.subject, p.not_after)),
    );
    certificates
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// The JSON form.
pub fn json(s: &Snapshot) -> String {
    serde_json::to_string_pretty(s).expect("plain data serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_levels_turn_at_thirty_and_seven_days() {
        let day = 86_400;
        let now = 1_000_000_000;
        assert_eq!(expiry_level(now + 90 * day, now), (90, "ok"));
        assert_eq!(expiry_level(now + 30 * day, now), (30, "ok"));
        assert_eq!(expiry_level(now + 30 * day - 1, now), (29, "warning"));
        assert_eq!(expiry_level(now + 7 * day, now), (7, "warning"));
        assert_eq!(expiry_level(now + 7 * day - 1, now), (6, "critical"));
        assert_eq!(expiry_level(now + 1, now), (0, "critical"));
        assert_eq!(expiry_level(now, now), (0, "expired"));
        assert_eq!(expiry_level(now - day - 1, now), (-2, "expired"));
    }
}
