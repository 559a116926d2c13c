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

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::activity::WINDOW_MINUTES;
use crate::route::plan::RoutePlan;

/// Days to expiry under which a certificate is shown as a warning.
pub const WARN_DAYS: i64 = 30;
/// And as critical.
pub const CRITICAL_DAYS: i64 = 7;

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

fn unix(t: SystemTime) -> i64 {
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

fn route_view(rp: &RoutePlan, now: SystemTime) -> RouteView {
    let a = &rp.metrics.activity;
    let now_unix = unix(now);
    let recent = a.recent();
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
        a.peers()
            .iter()
            .map(|p| cert("peer", &p.subject, p.not_after)),
    );
    let seen = a.upstreams();
    let upstreams = rp
        .route
        .connect
        .iter()
        .map(|u| {
            let address = u.to_string();
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
        })
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
        recent: crate::telemetry::RESULTS
            .iter()
            .map(|r| Count {
                result: r,
                count: recent
                    .results
                    .iter()
                    .find(|(k, _)| k == r)
                    .map_or(0, |(_, n)| *n),
            })
            .collect(),
        failures: recent
            .failures
            .iter()
            .map(|((side, reason), count)| Failure {
                side,
                reason,
                count: *count,
            })
            .collect(),
        certificates,
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// The JSON form.
pub fn json(s: &Snapshot) -> String {
    serde_json::to_string_pretty(s).expect("plain data serializes")
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters (a subject may hold any byte) are shown,
            // not passed on to the browser.
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

fn format_unix(t: i64) -> String {
    let d = UNIX_EPOCH + Duration::from_secs(t.max(0) as u64);
    humantime::format_rfc3339_seconds(d).to_string()
}

const STYLE: &str = "\
body{font-family:system-ui,sans-serif;margin:1.5em;color:#1d2329;background:#f6f7f9}\
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.15em;margin:0}\
.meta{color:#5b6570;margin-bottom:1em}\
.route{background:#fff;border:1px solid #d5dae0;border-radius:6px;padding:.8em 1em;margin-bottom:1em}\
.route.trust{border-left:6px solid #c0392b}\
table{border-collapse:collapse;margin:.4em 0 .6em}\
th,td{text-align:left;padding:.2em .8em .2em 0;vertical-align:top;font-size:.92em}\
th{color:#5b6570;font-weight:600}\
.badge{display:inline-block;border-radius:3px;padding:0 .4em;margin-left:.4em;font-size:.8em;background:#e4e8ec}\
.badge.trust{background:#c0392b;color:#fff;font-weight:700}\
td.ok{color:#1e7e34}td.error{color:#b52a1c;font-weight:600}td.none{color:#8a939c}\
tr.warning td{background:#fff3cd}tr.critical td{background:#f8d7da}tr.expired td{background:#dc3545;color:#fff}\
.state{font-weight:700}.state.ready{color:#1e7e34}.state.notready{color:#b52a1c}\
code{font-size:.95em}";

/// The HTML page. It refreshes itself every 10 seconds (a meta refresh: no
/// script).
pub fn html(s: &Snapshot) -> String {
    let mut h = String::with_capacity(8192);
    let state = match (s.ready, s.draining) {
        (_, true) => ("notready", "draining"),
        (true, false) => ("ready", "ready"),
        (false, false) => ("notready", "not ready"),
    };
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"10\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>tls-sidecar status</title><style>{STYLE}</style></head><body>\n\
         <h1>tls-sidecar status</h1>\n<div class=\"meta\">version {} · pid {} · \
         <span class=\"state {}\" id=\"state\">{}</span> · up since {} · \
         reloads: {} ok, {} refused{} · counts over the last {} minutes · generated {}</div>\n",
        escape(s.version),
        s.pid,
        state.0,
        state.1,
        format_unix(s.started_unix),
        s.reloads.ok,
        s.reloads.error,
        match &s.reloads.last_error {
            Some(e) => format!(" (last refused: {})", escape(e)),
            None => String::new(),
        },
        s.window_minutes,
        format_unix(s.generated_unix),
    );
    for r in &s.routes {
        route_html(&mut h, r);
    }
    h.push_str("</body></html>\n");
    h
}

fn route_html(h: &mut String, r: &RouteView) {
    let name = escape(&r.name);
    let _ = write!(
        h,
        "<section class=\"route{}\" id=\"route-{name}\" data-route=\"{name}\">\n<h2>{name}",
        if r.trust_mode { " trust" } else { "" },
    );
    if r.trust_mode {
        h.push_str(
            "<span class=\"badge trust\" title=\"verify = none: any upstream certificate is accepted\">\
             TRUST MODE: upstream not verified</span>",
        );
    }
    let tls_in = if r.listen_tls { "TLS" } else { "plain" };
    let tls_out = match r.connect_start {
        "plain" => "plain".to_owned(),
        start => format!("TLS ({start}), verify {}", r.verify),
    };
    let _ = write!(
        h,
        "</h2>\n<table class=\"summary\"><tr><th>listen</th><td><code>{}</code> ({tls_in})</td>\
         <th>upstream</th><td>{}{}</td><th>open connections</th><td class=\"open\">{}</td></tr></table>\n",
        escape(&r.listen),
        escape(&tls_out),
        if r.mutual { ", mutual TLS" } else { "" },
        r.open_connections,
    );

    h.push_str("<table class=\"upstreams\"><tr><th>#</th><th>upstream</th><th>last connect</th><th>latency</th><th>at</th><th>connected</th><th>failed</th></tr>\n");
    for (i, u) in r.upstreams.iter().enumerate() {
        let result = match (&u.last_result, &u.last_error) {
            (&"error", Some(e)) => format!("error: {}", escape(e)),
            (res, _) => res.to_string(),
        };
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td><code>{}</code></td><td class=\"{}\">{result}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if i == 0 { "primary".to_owned() } else { format!("backup {i}") },
            escape(&u.address),
            u.last_result,
            u.last_latency_ms.map_or("-".to_owned(), |l| format!("{l:.1} ms")),
            u.last_unix.map_or("-".to_owned(), format_unix),
            u.connected,
            u.failed,
        );
    }
    h.push_str("</table>\n<table class=\"recent\"><tr>");
    for c in &r.recent {
        let _ = write!(h, "<th>{}</th>", c.result);
    }
    h.push_str("</tr><tr>");
    for c in &r.recent {
        let class = match (c.result, c.count) {
            (_, 0) => "none",
            ("ok", _) => "ok",
            _ => "error",
        };
        let _ = write!(
            h,
            "<td class=\"{class}\" data-result=\"{}\">{}</td>",
            c.result, c.count
        );
    }
    h.push_str("</tr></table>\n");
    if !r.failures.is_empty() {
        h.push_str("<table class=\"failures\"><tr><th>handshake failures</th><th>side</th><th>count</th></tr>\n");
        for f in &r.failures {
            let _ = writeln!(
                h,
                "<tr><td class=\"error\">{}</td><td>{}</td><td>{}</td></tr>",
                f.reason, f.side, f.count
            );
        }
        h.push_str("</table>\n");
    }
    if !r.certificates.is_empty() {
        h.push_str("<table class=\"certs\"><tr><th>certificate</th><th>subject</th><th>not after</th><th>days left</th></tr>\n");
        for c in &r.certificates {
            let _ = writeln!(
                h,
                "<tr class=\"{}\" data-role=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td class=\"days\">{}</td></tr>",
                c.level,
                c.role,
                c.role,
                escape(&c.subject),
                format_unix(c.not_after_unix),
                c.days_left,
            );
        }
        h.push_str("</table>\n");
    }
    h.push_str("</section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_leaves_no_markup_and_no_control_character() {
        assert_eq!(
            escape("CN=<script>alert('x')</script>&\"\u{1b}[31m"),
            "CN=&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;\\u{1b}[31m"
        );
    }

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

    #[test]
    fn the_page_escapes_a_hostile_reload_error_and_names_its_state() {
        let b = Board::default();
        b.reloaded(Err("<img src=x onerror=alert(1)>".into()));
        let page = html(&b.snapshot());
        assert!(
            page.contains("&lt;img src=x onerror=alert(1)&gt;"),
            "{page}"
        );
        assert!(!page.contains("<img"), "{page}");
        assert!(!page.contains("<script"), "{page}");
        assert!(page.contains(">not ready<"), "{page}");
    }
}
