//! `probe`: connect to a route's upstreams exactly as `run` would (failover
//! order, upgrade exchange, TLS with the route's verifier), and report what
//! was negotiated and who the peer is.

use std::fmt::Write as _;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::time::{timeout, Instant};
use tokio_rustls::TlsConnector;

use crate::route::connect::connect_to;
use crate::route::plan::RoutePlan;
use crate::route::via;
use crate::tls::material::CertInfo;
use crate::tls::reason::{classify, describe};
use crate::tls::{suite_name, version_name};
use crate::upgrade;

/// The result of probing one upstream address.
#[derive(Debug)]
pub struct Attempt {
    pub upstream: String,
    pub ok: bool,
    /// The failure reason label, when it failed.
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
    for (i, up) in rp.route.connect.iter().enumerate() {
        let a = probe_one(rp, i).await;
        let connected = a.reason != Some("connect_error");
        out.push(a);
        if connected && !every {
            break;
        }
        let _ = up;
    }
    out
}

/// Did the upstream `run` would use complete its handshake?
pub fn verdict(attempts: &[Attempt]) -> bool {
    attempts
        .iter()
        .find(|a| a.reason != Some("connect_error"))
        .is_some_and(|a| a.ok)
}

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
    let t0 = Instant::now();
    // [i16-net] Through the route's proxy, with its PROXY header (LOCAL).
    let (mut tcp, addr) = match connect_to(rp, up, None).await {
        Ok(c) => c,
        Err(e) => {
            // A proxy's refusal fails over like any connect error.
            a.reason = Some("connect_error");
            let why = if via::refused(&e) {
                " (proxy_refused)"
            } else {
                ""
            };
            a.lines.push(format!("connect: FAILED{why}: {e}"));
            return a;
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
    if let Some(v) = route.proxy_protocol {
        a.lines.push(format!(
            "proxy_protocol: sent a {} header for the probe's own connection",
            v.as_str()
        ));
    }
    let Some(ct) = &rp.client_tls else {
        a.ok = true;
        a.lines.push("plain TCP route: no TLS to check".into());
        return a;
    };
    if let Some(script) = &rp.upgrade {
        // No application behind the probe: the client side of the exchange
        // is an empty stream that has nothing to say.
        let (mut client, _app) = tokio::io::duplex(64);
        let t1 = Instant::now();
        match timeout(
            route.handshake_timeout,
            upgrade::drive(script, &mut client, &mut tcp, upgrade::Limits::default()),
        )
        .await
        {
            Ok(Ok(_)) => a.lines.push(format!(
                "upgrade: ok ({}) in {}",
                route.connect_start(),
                ms(t1.elapsed())
            )),
            Ok(Err(e)) => {
                a.reason = Some(e.reason());
                a.lines
                    .push(format!("upgrade: FAILED ({}): {e}", e.reason()));
                return a;
            }
            Err(_) => {
                a.reason = Some("timeout");
                a.lines.push(format!(
                    "upgrade: FAILED: no go-ahead within {}",
                    ms(route.handshake_timeout)
                ));
                return a;
            }
        }
    }
    let name = match ct
        .server_name
        .clone()
        .map(Ok)
        .unwrap_or_else(|| ServerName::try_from(up.host.clone()))
    {
        Ok(n) => n,
        Err(e) => {
            a.reason = Some("other");
            a.lines.push(format!(
                "handshake: FAILED: {:?} is not a TLS name: {e}",
                up.host
            ));
            return a;
        }
    };
    let t2 = Instant::now();
    let verify = route
        .connect_tls
        .as_ref()
        .map_or("plain", |t| t.verify.as_str());
    match timeout(
        route.handshake_timeout,
        TlsConnector::from(ct.config.clone()).connect(name.clone(), tcp),
    )
    .await
    {
        Ok(Ok(tls)) => {
            let conn = tls.get_ref().1;
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
                "handshake: ok {} {} alpn={} resumed={} in {}",
                a.version,
                a.cipher,
                a.alpn.as_deref().unwrap_or("-"),
                if resumed { "yes" } else { "no" },
                ms(t2.elapsed())
            ));
            a.lines.push(format!(
                "verify: ok (verify = \"{verify}\", name {}, trusting {})",
                name.to_str(),
                ct.trust
            ));
        }
        Ok(Err(e)) => {
            let reason = classify(&e);
            a.reason = Some(reason);
            let detail = describe(&e);
            a.lines
                .push(format!("handshake: FAILED ({reason}): {detail}"));
            a.lines.push(format!(
                "verify: verify = \"{verify}\", name {}, trusting {}",
                name.to_str(),
                ct.trust
            ));
        }
        Err(_) => {
            a.reason = Some("timeout");
            a.lines.push(format!(
                "handshake: FAILED: not finished within {}",
                ms(route.handshake_timeout)
            ));
        }
    }
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
        .find(|a| a.reason != Some("connect_error"))
        .or(attempts.last());
    let (upstream, result, version, cipher) = match used {
        Some(a) => (
            a.upstream.as_str(),
            if a.ok {
                "ok".to_owned()
            } else {
                a.reason.unwrap_or("other").to_owned()
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
