//! The machine-readable forms of `check --json` and `probe --json`. The
//! field names are part of the interface (documented in
//! docs/src/cli.md): fields may be added, never renamed or dropped.

use serde_json::{json, Value};

use crate::probe::{self, Attempt};
use crate::route::plan::{Plan, RoutePlan};
use crate::tls::material::{rfc3339, CertInfo};

/// `check --json` for a config that loaded: `"valid": true`, the routes,
/// the admin address, the sandbox, the kernel's TLS offer, the warnings.
pub fn check(plan: &Plan) -> Value {
    json!({
        "config": plan.config.source.display().to_string(),
        "valid": true,
        "routes": plan.routes.iter().map(|rp| route(rp)).collect::<Vec<_>>(),
        "admin": plan.config.admin.as_ref().map(|a| a.listen.to_string()),
        "sandbox": plan.config.sandbox,
        "kernel_tls": kernel_tls(),
        "warnings": plan.warnings.iter().map(|w| json!({
            "route": w.route,
            "message": w.message,
        })).collect::<Vec<_>>(),
    })
}

/// `check --json` for a config that did not load.
pub fn invalid(config: &std::path::Path, error: &str) -> Value {
    json!({
        "config": config.display().to_string(),
        "valid": false,
        "error": error,
    })
}

/// What the running kernel offers for kernel TLS.
pub fn kernel_tls() -> Value {
    match crate::tls::kernel::offer() {
        Ok(suites) => {
            json!({ "available": true, "suites": suites.split(", ").collect::<Vec<_>>() })
        }
        Err(f) => json!({ "available": false, "reason": f.describe() }),
    }
}

/// One route as `check --json` lists it.
fn route(rp: &RoutePlan) -> Value {
    let r = &rp.route;
    let certificates = rp
        .client_tls
        .iter()
        .flat_map(|c| c.certs.iter())
        .chain(rp.server_tls.iter().flat_map(|s| s.certs.iter()))
        .map(|(role, i)| json!({ "role": role, "subject": i.subject, "not_after": rfc3339(i.not_after) }))
        .collect::<Vec<_>>();
    json!({
        "name": r.name,
        "listen": r.listen.to_string(),
        "listen_tls": r.listen_tls.is_some(),
        "client_cert_required": r.listen_tls.as_ref().is_some_and(|t| t.client_ca.is_some()),
        "connect": r.connect.iter().map(|u| u.to_string()).collect::<Vec<_>>(),
        "connect_start": r.connect_start(),
        "verify": rp.verify_label(),
        "mutual": rp.mutual(),
        "protocols": r.connect_tls.as_ref().map(|t| t.protocols.iter().map(|p| p.as_str()).collect::<Vec<_>>()),
        "kernel_tls": r.kernel_tls.as_str(),
        "engine": rp.engine().as_str(),
        "certificates": certificates,
    })
}

/// `probe --json` for one route: its verdict and every upstream tried.
pub fn probe(rp: &RoutePlan, attempts: &[Attempt]) -> Value {
    json!({
        "route": rp.route.name,
        "ok": probe::verdict(attempts),
        "attempts": attempts.iter().map(attempt).collect::<Vec<_>>(),
    })
}

fn attempt(a: &Attempt) -> Value {
    json!({
        "upstream": a.upstream,
        "ok": a.ok,
        "reason": a.reason,
        "version": a.version,
        "cipher": a.cipher,
        "alpn": a.alpn,
        "chain": a.chain.iter().map(cert).collect::<Vec<_>>(),
    })
}

fn cert(c: &CertInfo) -> Value {
    json!({
        "subject": c.subject,
        "issuer": c.issuer,
        "not_before": rfc3339(c.not_before),
        "not_after": rfc3339(c.not_after),
        "sans": c.sans,
    })
}
