//! Metric names (exactly those of the interface), their descriptions, the
//! Prometheus recorder, and per-route handles so the connection path only
//! bumps atomics. The handles also feed the status page's recent-activity
//! record (`activity`), so the connection path reports each event once.

use std::sync::Arc;
use std::time::Duration;

use metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Counter,
    Gauge, Histogram, Unit,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::activity::{self, RouteActivity};
use crate::labels::{Reason, Side};
pub mod owned;

pub use owned::{retain_routes, MAX_SUBJECT};

/// The `/metrics` text: the recorder's series of the routes being served,
/// then the series kept in [`owned`] (certificate expiry, CRL nextUpdate).
pub fn render(handle: &PrometheusHandle) -> String {
    owned::render(&handle.render())
}

pub const CONNECTIONS_TOTAL: &str = "tls_sidecar_connections_total";
pub const CONNECTIONS_ACTIVE: &str = "tls_sidecar_connections_active";
pub const BYTES_TOTAL: &str = "tls_sidecar_bytes_total";
pub const HANDSHAKE_DURATION: &str = "tls_sidecar_handshake_duration_seconds";
pub const HANDSHAKE_ERRORS: &str = "tls_sidecar_handshake_errors_total";
pub const UPSTREAM_CONNECT_ERRORS: &str = "tls_sidecar_upstream_connect_errors_total";
pub const TLS_SESSIONS: &str = "tls_sidecar_tls_sessions_total";
pub const CERT_EXPIRY: &str = "tls_sidecar_certificate_expiry_timestamp_seconds";
pub const CRL_NEXT_UPDATE: &str = "tls_sidecar_crl_next_update_timestamp_seconds";
pub const CONFIG_RELOADS: &str = "tls_sidecar_config_reloads_total";
pub const ROUTE_INFO: &str = "tls_sidecar_route_info";
pub const OCSP_NEXT_UPDATE: &str = "tls_sidecar_ocsp_next_update_timestamp_seconds";
pub const OCSP_FETCHES: &str = "tls_sidecar_ocsp_fetches_total";
pub const KTLS_FALLBACKS: &str = "tls_sidecar_ktls_fallbacks_total";

/// Handshake buckets: 100 µs to 10 s (a loopback TLS 1.3 handshake takes
/// about a millisecond; a distant RSA peer or an upgrade exchange, far more).
pub const HANDSHAKE_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// A connection's outcome: the `result` label of `connections_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::VariantArray)]
#[strum(serialize_all = "snake_case")]
pub enum ConnResult {
    Ok,
    RefusedLimit,
    ConnectError,
    UpgradeError,
    HandshakeError,
    Timeout,
}

impl ConnResult {
    /// Every outcome, in label order.
    pub const ALL: &'static [ConnResult] = <Self as strum::VariantArray>::VARIANTS;

    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Installs the global Prometheus recorder and returns the handle that
/// renders the text format. Call once per process.
pub fn install() -> Result<PrometheusHandle, String> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(HANDSHAKE_DURATION.into()), HANDSHAKE_BUCKETS)
        .map_err(|e| e.to_string())?
        .install_recorder()
        .map_err(|e| e.to_string())?;
    describe();
    Ok(handle)
}

fn describe() {
    describe_counter!(CONNECTIONS_TOTAL, "Accepted client connections by outcome.");
    describe_gauge!(CONNECTIONS_ACTIVE, "Open relayed connections.");
    describe_counter!(
        BYTES_TOTAL,
        Unit::Bytes,
        "Bytes relayed; direction upstream is client to peer."
    );
    describe_histogram!(
        HANDSHAKE_DURATION,
        Unit::Seconds,
        "TLS handshake time, upgrade exchange included."
    );
    describe_counter!(HANDSHAKE_ERRORS, "Failed handshakes by side and reason.");
    describe_counter!(
        UPSTREAM_CONNECT_ERRORS,
        "Failed TCP connects per upstream address."
    );
    describe_counter!(TLS_SESSIONS, "Established TLS sessions.");
    // CERT_EXPIRY and CRL_NEXT_UPDATE are rendered by `owned`.
    describe_counter!(CONFIG_RELOADS, "Configuration reloads by result.");
    describe_counter!(
        KTLS_FALLBACKS,
        "Connections of kernel_tls = \"auto\" routes left on the userspace TLS engine, by reason."
    );
    // OCSP_NEXT_UPDATE is rendered by `owned`.
    describe_counter!(
        OCSP_FETCHES,
        "ocsp = \"auto\" fetches from the certificate's responder, by result."
    );
}

/// The `connections_active` gauge of a route, which also keeps the status
/// page's count of open connections.
#[derive(Debug, Clone)]
pub struct ActiveGauge {
    gauge: Gauge,
    activity: Arc<RouteActivity>,
}

impl ActiveGauge {
    pub fn increment(&self, n: f64) {
        self.gauge.increment(n);
        self.activity.open_add(n as i64);
    }

    pub fn decrement(&self, n: f64) {
        self.gauge.decrement(n);
        self.activity.open_add(-(n as i64));
    }
}

/// Handles for one route, made once when the route is loaded.
#[derive(Debug, Clone)]
pub struct RouteMetrics {
    pub route: String,
    pub active: ActiveGauge,
    /// The route's recent activity, shared across reloads.
    pub activity: Arc<RouteActivity>,
    pub bytes_up: Counter,
    pub bytes_down: Counter,
    /// One counter a result, in `ConnResult::ALL`'s order.
    results: Vec<Counter>,
    pub handshake_connect: Histogram,
    pub handshake_listen: Histogram,
}

impl RouteMetrics {
    pub fn new(route: &str) -> RouteMetrics {
        let r = route.to_owned();
        let result =
            |res: &'static str| counter!(CONNECTIONS_TOTAL, "route" => r.clone(), "result" => res);
        let activity = activity::route(route);
        RouteMetrics {
            route: r.clone(),
            active: ActiveGauge {
                gauge: gauge!(CONNECTIONS_ACTIVE, "route" => r.clone()),
                activity: activity.clone(),
            },
            activity,
            bytes_up: counter!(BYTES_TOTAL, "route" => r.clone(), "direction" => "upstream"),
            bytes_down: counter!(BYTES_TOTAL, "route" => r.clone(), "direction" => "downstream"),
            results: ConnResult::ALL.iter().map(|c| result(c.as_str())).collect(),
            handshake_connect: histogram!(HANDSHAKE_DURATION, "route" => r.clone(), "side" => Side::Upstream.as_str()),
            handshake_listen: histogram!(HANDSHAKE_DURATION, "route" => r.clone(), "side" => Side::Client.as_str()),
        }
    }

    /// Counts a connection's outcome.
    pub fn connection(&self, result: ConnResult) {
        // `results` is in `ConnResult::ALL`'s order.
        self.results[result as usize].increment(1);
        self.activity.connection(result.as_str());
    }

    pub fn handshake_error(&self, side: Side, reason: Reason) {
        self.activity.failure(side, reason);
        counter!(HANDSHAKE_ERRORS, "route" => self.route.clone(), "side" => side.as_str(),
            "reason" => reason.as_str())
        .increment(1);
    }

    /// A connection of a `kernel_tls = "auto"` route stayed on the
    /// userspace engine; logged once per route and reason.
    pub fn ktls_fallback(&self, reason: &'static str, why: &str) {
        counter!(KTLS_FALLBACKS, "route" => self.route.clone(), "reason" => reason).increment(1);
        static SEEN: std::sync::Mutex<Vec<(String, &'static str)>> =
            std::sync::Mutex::new(Vec::new());
        let mut seen = SEEN.lock().unwrap_or_else(|p| p.into_inner());
        if !seen.iter().any(|(r, w)| *r == self.route && *w == reason) {
            seen.push((self.route.clone(), reason));
            tracing::info!(route = %self.route, reason,
                "kernel TLS not used, userspace TLS engine instead: {why} (logged once per reason)");
        }
    }

    pub fn handshake_time(&self, side: Side, took: Duration) {
        match side {
            Side::Client => self.handshake_listen.record(took.as_secs_f64()),
            Side::Upstream => self.handshake_connect.record(took.as_secs_f64()),
        }
    }

    /// A failed TCP connect to `upstream` after `took`.
    pub fn upstream_connect_error(&self, upstream: &str, took: Duration, error: &std::io::Error) {
        counter!(UPSTREAM_CONNECT_ERRORS, "route" => self.route.clone(), "upstream" => upstream.to_owned()).increment(1);
        self.activity
            .upstream(upstream, took, Some(error.to_string()));
    }

    /// A TCP connect to `upstream` that succeeded after `took`.
    pub fn upstream_connected(&self, upstream: &str, took: Duration) {
        self.activity.upstream(upstream, took, None);
    }

    pub fn session(&self, side: Side, version: &'static str, cipher: &'static str, resumed: bool) {
        counter!(TLS_SESSIONS, "route" => self.route.clone(), "side" => side.as_str(), "version" => version,
            "cipher" => cipher, "resumed" => if resumed { "true" } else { "false" })
        .increment(1);
    }

    /// The not-after of every certificate configured on the route (role,
    /// subject, Unix seconds); replaces the route's previous set.
    pub fn configured_certs(&self, certs: Vec<(&'static str, String, i64)>) {
        owned::set_configured(&self.route, certs);
    }

    /// The certificate the peer at connect entry `upstream` presented:
    /// replaces that entry's `role="peer"` series, whatever its subject.
    pub fn peer_cert_expiry(&self, upstream: &str, subject: &str, not_after: i64) {
        self.activity.peer(subject, not_after);
        owned::set_peer(&self.route, upstream, subject, not_after);
    }

    /// The nextUpdate of every CRL configured on the route (issuer, Unix
    /// seconds); replaces the route's previous set.
    pub fn crl_next_update(&self, crls: Vec<(String, i64)>) {
        owned::set_crls(&self.route, crls);
    }

    /// The OCSP staples of the route's certificates: (subject, until when
    /// its response is stapled, asked at each scrape).
    pub fn ocsp_staples(&self, staples: Vec<(String, owned::StapledUntil)>) {
        owned::set_ocsp(&self.route, staples);
    }

    /// One `ocsp = "auto"` fetch and its result (`ok`, `error`, `revoked`).
    pub fn ocsp_fetch(&self, result: &'static str) {
        counter!(OCSP_FETCHES, "route" => self.route.clone(), "result" => result).increment(1);
    }

    /// The route's `route_info` series: how it is configured, and the TLS
    /// engine it runs (`engine`: "ktls", "userspace", or "plain" for a
    /// route without a TLS leg).
    pub fn info(&self, info: RouteInfo<'_>) {
        owned::set_info(
            &self.route,
            &[
                ("listen", info.listen),
                ("connect_start", info.connect_start),
                ("verify", info.verify),
                ("mutual", if info.mutual { "true" } else { "false" }),
                ("kernel_tls", info.kernel_tls),
                ("engine", info.engine),
            ],
        );
    }
}

/// The labels of a route's `route_info` series, but its name.
#[derive(Debug, Clone, Copy)]
pub struct RouteInfo<'a> {
    pub listen: &'a str,
    pub connect_start: &'static str,
    pub verify: &'static str,
    pub mutual: bool,
    /// `kernel_tls` as configured: "auto" or "off".
    pub kernel_tls: &'static str,
    /// "ktls", "userspace" or "plain".
    pub engine: &'static str,
}

impl crate::relay::Observe for RouteMetrics {
    fn upstream(&self, n: usize) {
        self.bytes_up.increment(n as u64);
    }
    fn downstream(&self, n: usize) {
        self.bytes_down.increment(n as u64);
    }
}

/// Makes both reload series exist from the start at 0, so an alert on
/// `increase(...{result="error"}[..]) > 0` sees the first failure.
pub fn register_reloads() {
    for result in ["ok", "error"] {
        counter!(CONFIG_RELOADS, "result" => result).increment(0);
    }
}

/// Counts a config reload: `ok` or `error`.
pub fn reload(ok: bool) {
    counter!(CONFIG_RELOADS, "result" => if ok { "ok" } else { "error" }).increment(1);
}
