//! `probe`: connect to a route's upstreams exactly as `run` would (failover
//! order, upgrade exchange, TLS with the route's verifier), and report what
//! was negotiated and who the peer is. The upstream leg is set up by the
//! same code as a relayed connection's (`route::legs`).

use std::fmt::Write as _;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};

use crate::config::Upstream;
use crate::labels::Reason;
use crate::route::connect::connect_to;
use crate::route::legs::{self, HandshakeFailure, Side, Stage};
use crate::route::plan::RoutePlan;
use crate::route::via;
use crate::telemetry::ConnResult;
use crate::tls::material::CertInfo;
use crate::tls::{suite_name, version_name};

/// The result of probing one upstream address.
#[derive(Debug)]
pub struct Attempt {
    pub upstream: String,
    pub ok: bool,
    /// The failure's label, when it failed: a handshake reason, or
    /// `connect_error`.
    pub reason: Option<&'static str>,
    pub version: &'static str,
    pub cipher: &'static str,
    pub alpn: Option<String>,
    pub chain: Vec<CertInfo>,
    /// Human-readable lines for the report.
    pub lines: Vec<String>,
}

/// Probes the route's upstreams in order. Like `run`, stops at the first
/// upstream that accepts the TCP connection unless `every` is set.
pub async fn probe(rp: &RoutePlan, every: bool) -> Vec<Attempt> {
    let mut out = Vec::new();
    for i in 0..rp.route.connect.len() {
        let a = probe_one(rp, i).await;
        let connected = a.reason != Some(ConnResult::ConnectError.as_str());
        out.push(a);
        if connected && !every {
            break;
        }
    }
    out
}

/// Did the upstream `run` would use complete its handshake?
pub fn verdict(attempts: &[Attempt]) -> bool {
    attempts
        .iter()
        .find(|a| a.reason != Some(ConnResult::ConnectError.as_str()))
        .is_some_and(|a| a.ok)
}

/// One probe attempt, step by step (connect, upgrade and handshake, the
/// peer's chain), each step adding its lines to the same [`Attempt`].
async fn probe_one(rp: &RoutePlan, index: usize) -> Attempt {
    let route = &rp.route;
    let up = &route.connect[index];
    let mut a = Attempt {
        upstream: up.to_string(),
        ok: false,
        reason: None,
        version: "none",
        cipher: "none",
        alpn: None,
        chain: Vec::new(),
        lines: Vec::new(),
    };
    let Some(tcp) = connect(rp, up, &mut a).await else {
        return a;
    };
    let Some(ct) = &rp.client_tls else {
        a.ok = true;
        a.lines.push("plain TCP route: no TLS to check".into());
        return a;
    };
    let name = match legs::server_name(rp, up) {
        Ok(n) => n,
        Err(f) => {
            a.reason = Some(f.reason.as_str());
            a.lines.push(format!("handshake: FAILED: {}", f.detail));
            return a;
        }
    };
    let verify = route
        .connect_tls
        .as_ref()
        .map_or("plain", |t| t.verify.as_str());
    let facts = format!(
        "verify = \"{verify}\", name {}, trusting {}",
        name.to_str(),
        ct.trust
    );
    handshake(rp, &mut a, tcp, name, &facts).await;
    for (i, c) in a.chain.iter().enumerate() {
        a.lines.push(format!(
            "chain[{i}]: subject \"{}\" issuer \"{}\" not-after {} sans [{}]",
            c.subject,
            c.issuer,
            c.not_after_rfc3339(),
            c.sans.join(", ")
        ));
    }
    a
}

/// The connect step: through the route's proxy, with its PROXY header
/// (LOCAL). `None`: it failed, and `a` says why.
async fn connect(rp: &RoutePlan, up: &Upstream, a: &mut Attempt) -> Option<TcpStream> {
    let t0 = Instant::now();
    let (tcp, addr) = match connect_to(rp, up, None).await {
        Ok(c) => c,
        Err(e) => {
            // A proxy's refusal fails over like any connect error.
            a.reason = Some(ConnResult::ConnectError.as_str());
            let why = if via::refused(&e) {
                " (proxy_refused)"
            } else {
                ""
            };
            a.lines.push(format!("connect: FAILED{why}: {e}"));
            return None;
        }
    };
    let through = match &rp.via {
        Some(v) => format!(" (tunnel through {})", v.via),
        None => String::new(),
    };
    a.lines.push(format!(
        "connect: ok {addr}{through} in {}",
        ms(t0.elapsed())
    ));
    if let Some(v) = rp.route.proxy_protocol {
        a.lines.push(format!(
            "proxy_protocol: sent a {} header for the probe's own connection",
            v.as_str()
        ));
    }
    Some(tcp)
}

/// The upgrade and handshake step: exactly what a relayed connection runs
/// (upgrade exchange, the default TLS engine), with an empty stream where
/// the application would be, then a short read for a refusal that comes
/// after the handshake.
async fn handshake(
    rp: &RoutePlan,
    a: &mut Attempt,
    tcp: TcpStream,
    name: ServerName<'static>,
    facts: &str,
) {
    let t1 = Instant::now();
    let limit = rp.route.handshake_timeout;
    let secured = timeout(limit, async {
        let mut no_app = tokio::io::empty();
        let mut s = legs::secure_upstream(rp, &mut no_app, tcp, name.clone()).await?;
        legs::settle(&mut s, legs::SETTLE).await?;
        Ok::<_, HandshakeFailure>(s)
    })
    .await
    .map_err(|_| HandshakeFailure::timeout(Side::Upstream, limit))
    .and_then(|r| r);
    if rp.upgrade.is_some() {
        match &secured {
            Err(f) if f.stage == Stage::Upgrade => {
                a.reason = Some(f.reason.as_str());
                a.lines
                    .push(format!("upgrade: FAILED ({}): {}", f.reason, f.detail));
                return;
            }
            Err(f) if f.stage == Stage::Timeout => {}
            _ => a
                .lines
                .push(format!("upgrade: ok ({})", rp.route.connect_start())),
        }
    }
    match secured {
        Ok(s) => {
            let conn = s.tls().expect("a TLS route's upstream leg is TLS");
            negotiated(rp, a, conn, t1.elapsed(), facts);
        }
        Err(f) if f.stage == Stage::Timeout => {
            a.reason = Some(Reason::Timeout.as_str());
            a.lines.push(format!("handshake: FAILED: {}", f.detail));
        }
        Err(f) => {
            a.reason = Some(f.reason.as_str());
            a.lines
                .push(format!("handshake: FAILED ({}): {}", f.reason, f.detail));
            a.lines.push(format!("verify: {facts}"));
        }
    }
}

/// A handshake that went through: what was negotiated, who the peer is,
/// and which engine a relayed connection would run on.
fn negotiated(
    rp: &RoutePlan,
    a: &mut Attempt,
    conn: &rustls::CommonState,
    took: Duration,
    facts: &str,
) {
    a.ok = true;
    a.version = version_name(conn.protocol_version());
    a.cipher = suite_name(conn.negotiated_cipher_suite());
    a.alpn = conn
        .alpn_protocol()
        .map(|p| String::from_utf8_lossy(p).into_owned());
    a.chain = conn
        .peer_certificates()
        .unwrap_or_default()
        .iter()
        .filter_map(|c| CertInfo::parse(c))
        .collect();
    let resumed = matches!(conn.handshake_kind(), Some(rustls::HandshakeKind::Resumed));
    a.lines.push(format!(
        "handshake: ok {} {} alpn={} resumed={} in {}{}",
        a.version,
        a.cipher,
        a.alpn.as_deref().unwrap_or("-"),
        if resumed { "yes" } else { "no" },
        ms(took),
        if rp.upgrade.is_some() {
            " (upgrade exchange included)"
        } else {
            ""
        }
    ));
    a.lines.push(format!("verify: ok ({facts})"));
    a.lines.push(engine_words(rp, conn));
}

/// Which engine a relayed connection with this session would run on.
fn engine_words(rp: &RoutePlan, conn: &rustls::CommonState) -> String {
    use crate::config::KernelTls;
    use crate::tls::kernel::suite_fits;
    if rp.route.kernel_tls == KernelTls::Off {
        return "engine: userspace TLS (kernel_tls = \"off\")".into();
    }
    let fit = match (conn.protocol_version(), conn.negotiated_cipher_suite()) {
        (Some(v), Some(c)) => suite_fits(v, c.suite()),
        _ => Err(crate::tls::kernel::Fallback::Buffered),
    };
    match fit {
        Ok(()) => "engine: kernel TLS (this session's version and suite are in the kernel)".into(),
        Err(f) => format!("engine: userspace TLS ({})", f.describe()),
    }
}

/// The report for one route's attempts.
pub fn report(rp: &RoutePlan, attempts: &[Attempt]) -> String {
    let mut out = String::new();
    let total = rp.route.connect.len();
    for (i, a) in attempts.iter().enumerate() {
        let _ = writeln!(
            out,
            "route {} upstream {}/{} {}",
            rp.route.name,
            i + 1,
            total,
            a.upstream
        );
        for l in &a.lines {
            let _ = writeln!(out, "  {l}");
        }
    }
    let _ = writeln!(
        out,
        "result: {}",
        if verdict(attempts) { "OK" } else { "FAILED" }
    );
    out
}

/// One line per route for `probe --all`.
pub fn table_row(rp: &RoutePlan, attempts: &[Attempt]) -> String {
    let used = attempts
        .iter()
        .find(|a| a.reason != Some(ConnResult::ConnectError.as_str()))
        .or(attempts.last());
    let (upstream, result, version, cipher) = match used {
        Some(a) => (
            a.upstream.as_str(),
            if a.ok {
                "ok".to_owned()
            } else {
                a.reason.unwrap_or(Reason::Other.as_str()).to_owned()
            },
            a.version,
            a.cipher,
        ),
        None => ("-", "no upstream".to_owned(), "-", "-"),
    };
    format!(
        "{:<16} {:<32} {:<16} {:<8} {}",
        rp.route.name, upstream, result, version, cipher
    )
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}
