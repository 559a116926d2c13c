//! `check`: the report of a loaded config — one line per route and every
//! warning — printed by the `check` command.

use std::fmt::Write as _;

use crate::config::{Allow, Start, Upgrade};
use crate::route::plan::{Plan, RoutePlan};
use crate::tls::material::rfc3339;
use crate::tls::server::ServerTls;

/// The report `check` prints for a config that loaded.
pub fn report(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {} route(s)",
        plan.config.source.display(),
        plan.routes.len()
    );
    for rp in &plan.routes {
        let _ = writeln!(out, "{}", route_line(rp));
        if let Some(e) = engine_line(rp) {
            let _ = writeln!(out, "  {e}");
        }
        for (table, notes) in genesys_notes(rp) {
            for n in notes {
                let _ = writeln!(out, "  {table}: {n}");
            }
        }
    }
    if let Some(n) = plan.config.workers {
        let _ = writeln!(out, "workers: {n}");
    }
    if let Some(a) = &plan.config.admin {
        let _ = writeln!(out, "admin: http://{}/metrics", a.listen);
    }
    let sandbox = match (plan.config.sandbox, crate::sandbox::active()) {
        (false, _) => "off (sandbox = false)",
        (true, Some(_)) => {
            "on (Landlock, read-only access to the files the config names; check read them inside it, as run does)"
        }
        (true, None) => "on (Landlock, read-only access to the files the config names)",
    };
    let _ = writeln!(out, "sandbox: {sandbox}");
    for w in &plan.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    let _ = writeln!(out, "config OK ({} warning(s))", plan.warnings.len());
    out
}

/// Which TLS engine a route with a TLS leg runs, and why not kernel TLS
/// when it does not (issue 18). `None` for plain routes.
pub fn engine_line(rp: &RoutePlan) -> Option<String> {
    use crate::config::KernelTls;
    let r = &rp.route;
    if r.connect_tls.is_none() && r.listen_tls.is_none() {
        return None;
    }
    Some(match (r.kernel_tls, crate::tls::kernel::offer()) {
        (KernelTls::Off, _) => "engine: userspace TLS (kernel_tls = \"off\")".to_owned(),
        (KernelTls::Auto, Ok(suites)) => format!(
            "engine: kernel TLS for TLS 1.3 sessions with {suites}; others userspace (kernel_tls = \"auto\")"
        ),
        (KernelTls::Auto, Err(f)) => format!(
            "engine: userspace TLS (kernel_tls = \"auto\", but {})",
            f.describe()
        ),
    })
}

/// " allow=dns:2,uri:1": how many identities of each kind get in.
fn allow_words(a: &Allow) -> String {
    let kinds = [
        ("dns", a.dns.len()),
        ("uri", a.uri.len()),
        ("ip", a.ip.len()),
        ("email", a.email.len()),
        ("cn", a.cn.len()),
        ("ou", a.ou.len()),
    ];
    let list: Vec<String> = kinds
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{k}:{n}"))
        .collect();
    format!(" allow={}", list.join(","))
}

/// " ocsp=good(next-update 2026-…)" per certificate that has a response
/// (" ocsp=stale(…)" when it is held but not stapled now), " ocsp=auto"
/// for one the sidecar fetches once it runs.
fn staple_words(st: &ServerTls) -> String {
    let now = crate::tls::material::now_unix();
    st.stapled
        .iter()
        .zip(&st.ocsp)
        .filter_map(|(s, source)| match (s.held(), source) {
            (Some(s), _) => Some(format!(
                " ocsp={}(next-update {})",
                if s.valid_at(now) {
                    s.status.as_str()
                } else {
                    "stale"
                },
                s.next_update.map_or("none".to_owned(), rfc3339)
            )),
            (None, Some(crate::config::Ocsp::Auto)) => Some(" ocsp=auto".to_owned()),
            (None, _) => None,
        })
        .collect()
}

/// How each `genesys` string of a route was translated: (key, lines).
fn genesys_notes(rp: &RoutePlan) -> Vec<(&'static str, &[String])> {
    let r = &rp.route;
    let mut out = Vec::new();
    if let Some(t) = r.connect_tls.as_ref().filter(|t| !t.genesys.is_empty()) {
        out.push(("genesys", t.genesys.as_slice()));
    }
    if let Some(t) = r.listen_tls.as_ref().filter(|t| !t.genesys.is_empty()) {
        out.push(("listen_tls.genesys", t.genesys.as_slice()));
    }
    out
}

/// "name  listen tls 0.0.0.0:8443 -> connect 10.0.0.1:7022,… | start=direct verify=full mutual=yes | not-after 2027-…"
pub fn route_line(rp: &RoutePlan) -> String {
    let r = &rp.route;
    let listen = match &r.listen_tls {
        Some(t) => format!(
            "tls {}{}{}{}{}",
            r.listen,
            if t.client_ca.is_some() {
                " client-cert"
            } else {
                ""
            },
            if t.sni_required { " sni-required" } else { "" },
            t.allow.as_ref().map(allow_words).unwrap_or_default(),
            rp.server_tls.as_ref().map(staple_words).unwrap_or_default(),
        ),
        None => format!("plain {}", r.listen),
    };

    let connect = r
        .connect
        .iter()
        .map(|u| u.to_string())
        .collect::<Vec<_>>()
        .join(",");

    let mut connect = connect;
    if let Some(v) = &r.via {
        connect.push_str(&format!(" via {v}"));
        if let Some(c) = &v.credentials {
            connect.push_str(&format!(" (credentials from {})", c.display()));
        }
    }
    let modes = match &r.connect_tls {
        None => "plain".to_owned(),
        Some(t) => {
            let start = match &t.start {
                Start::Direct => "direct".to_owned(),
                Start::Upgrade(Upgrade::Builtin { profile, .. }) => format!("upgrade={profile}"),
                Start::Upgrade(Upgrade::Script(s)) => format!("upgrade=script({} steps)", s.len()),
            };
            format!(
                "start={start} verify={} mutual={} protocols={}",
                t.verify.as_str(),
                if t.client_cert.is_some() { "yes" } else { "no" },
                t.protocols
                    .iter()
                    .map(|p| p.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            )
        }
    };
    // The PROXY protocol, both ways.
    let mut modes = modes;
    if r.accept_proxy_protocol {
        modes.push_str(" | accept-proxy-protocol");
    }
    if let Some(p) = r.proxy_protocol {
        modes.push_str(if r.accept_proxy_protocol { " " } else { " | " });
        modes.push_str(&format!("proxy-protocol={}", p.as_str()));
    }
    let not_after = rp
        .client_tls
        .iter()
        .flat_map(|c| c.certs.iter())
        .chain(rp.server_tls.iter().flat_map(|s| s.certs.iter()))
        .map(|(role, i)| format!("{role} {}", rfc3339(i.not_after)))
        .collect::<Vec<_>>();
    let not_after = if not_after.is_empty() {
        "no certificate files".to_owned()
    } else {
        format!("not-after: {}", not_after.join(", "))
    };
    format!(
        "route {:<16} listen {listen} -> connect {connect} | {modes} | {not_after}",
        r.name
    )
}
