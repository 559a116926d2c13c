//! Raw file → runtime model. Every rule about what a config may say lives
//! under here, and each failure names the file, the route and the key.
//!
//! This file holds the top of the file and the checks across routes (names,
//! listen addresses); `route` one route's own keys, `connect` and `listen`
//! its two TLS tables, `tls` what those share (certificates, protocols,
//! ciphers), `script` the steps of an upgrade script, and `values` the
//! scalar forms (durations, addresses, limits).

mod connect;
mod listen;
mod route;
mod script;
mod tls;
mod values;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::{parse_error, ConfigError, Problem, RouteCtx};
use super::model::*;
use super::raw::*;
use values::{max_connections, opt_duration, socket_addr, stop_duration};

const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(3600);
const DEFAULT_MAX_CONNECTIONS: usize = 4096;
const MAX_WORKERS: u64 = 1024;

pub(super) fn validate(file: PathBuf, raw: RawFile) -> Result<Config, ConfigError> {
    let top = |key: &str, msg: String| ConfigError::top(&file, Some(key), Problem::Invalid(msg));

    let shutdown_grace = match &raw.shutdown_grace {
        Some(s) => stop_duration(s, false).map_err(|m| top("shutdown_grace", m))?,
        None => DEFAULT_SHUTDOWN_GRACE,
    };
    let drain_delay = match &raw.drain_delay {
        Some(s) => stop_duration(s, true).map_err(|m| top("drain_delay", m))?,
        None => Duration::ZERO,
    };
    let workers = match raw.workers {
        None => None,
        Some(n @ 1..=MAX_WORKERS) => Some(n as usize),
        Some(n) => {
            return Err(top(
                "workers",
                format!(
                    "{n} is out of range: 1 to {MAX_WORKERS} threads (omit it for one per CPU)"
                ),
            ))
        }
    };
    let admin = match &raw.admin {
        Some(a) => Some(Admin {
            listen: socket_addr(&a.listen).map_err(|m| top("admin.listen", m))?,
            hosts: admin_hosts(a.hosts.as_deref().unwrap_or_default())
                .map_err(|(i, m)| top(&format!("admin.hosts[{i}]"), m))?,
        }),
        None => None,
    };
    let log = Log {
        level: raw
            .log
            .as_ref()
            .and_then(|l| l.level)
            .unwrap_or(LogLevel::Info),
        format: raw
            .log
            .as_ref()
            .and_then(|l| l.format)
            .unwrap_or(LogFormat::Text),
    };
    let defaults = defaults(&file, raw.defaults.unwrap_or_default(), raw.kernel_tls)?;
    let routes = routes(&file, raw.route, &defaults, admin.as_ref())?;

    Ok(Config {
        source: file,
        shutdown_grace,
        drain_delay,
        watch_config: raw.watch_config.unwrap_or(true),
        workers,
        admin,
        log,
        strict_key_permissions: raw.strict_key_permissions.unwrap_or(false),
        sandbox: raw.sandbox.unwrap_or(true),
        routes,
    })
}

/// What a route does not set itself: `[defaults]` and the top-level
/// `kernel_tls`, over the built-in values.
struct Defaults {
    connect_timeout: Duration,
    handshake_timeout: Duration,
    idle_timeout: Duration,
    max_connections: usize,
    kernel_tls: KernelTls,
}

fn defaults(
    file: &Path,
    d: RawDefaults,
    kernel_tls: Option<KernelTls>,
) -> Result<Defaults, ConfigError> {
    let top = |key: &str, msg: String| ConfigError::top(file, Some(key), Problem::Invalid(msg));
    Ok(Defaults {
        connect_timeout: opt_duration(&d.connect_timeout, DEFAULT_CONNECT_TIMEOUT)
            .map_err(|m| top("defaults.connect_timeout", m))?,
        handshake_timeout: opt_duration(&d.handshake_timeout, DEFAULT_HANDSHAKE_TIMEOUT)
            .map_err(|m| top("defaults.handshake_timeout", m))?,
        idle_timeout: opt_duration(&d.idle_timeout, DEFAULT_IDLE_TIMEOUT)
            .map_err(|m| top("defaults.idle_timeout", m))?,
        max_connections: max_connections(d.max_connections, DEFAULT_MAX_CONNECTIONS)
            .map_err(|m| top("defaults.max_connections", m))?,
        kernel_tls: kernel_tls.unwrap_or_default(),
    })
}

/// Every `[[route]]`, each deserialized on its own so that an error in it
/// names it; then the rules across routes: unique names, and no two
/// listeners (or a listener and the admin endpoint) on one port.
fn routes(
    file: &Path,
    values: Vec<config::Value>,
    d: &Defaults,
    admin: Option<&Admin>,
) -> Result<Vec<Route>, ConfigError> {
    if values.is_empty() {
        return Err(ConfigError::top(
            file,
            Some("route"),
            Problem::Invalid("no [[route]] is defined: nothing to serve".into()),
        ));
    }
    let mut routes = Vec::with_capacity(values.len());
    let mut names: HashMap<String, usize> = HashMap::new();
    // Every address bound so far, and by what: a route, or the admin endpoint.
    let mut bound: Vec<(SocketAddr, String)> = Vec::new();
    if let Some(a) = admin {
        bound.push((a.listen, "the admin endpoint".into()));
    }
    for (index, value) in values.into_iter().enumerate() {
        let label = route_label(&value, index);
        let rr: RawRoute = serde_path_to_error::deserialize(value)
            .map_err(|e| parse_error(file, Some(&label), e))?;
        let ctx = RouteCtx {
            file,
            route: &label,
        };
        let route = route::route(&ctx, rr, d)?;
        if let Some(first) = names.insert(route.name.clone(), index) {
            return Err(ctx.invalid(
                "name",
                format!("duplicate route name (also route[{first}])"),
            ));
        }
        if let Some((addr, other)) = bound.iter().find(|(a, _)| overlaps(*a, route.listen)) {
            let how = if *addr == route.listen {
                String::new()
            } else {
                format!(" (which listens on {addr}, the same port)")
            };
            return Err(ctx.invalid(
                "listen",
                format!("{} is already used by {other}{how}", route.listen),
            ));
        }
        bound.push((route.listen, route.name.clone()));
        routes.push(route);
    }
    Ok(routes)
}

/// Would binding `b` fail because `a` is bound? Linux refuses a second
/// listener on a port already bound to the same IP or to a wildcard of its
/// family, SO_REUSEADDR or not; and `[::]` (dual-stack unless
/// net.ipv6.bindv6only is set) also holds the port for IPv4.
fn overlaps(a: SocketAddr, b: SocketAddr) -> bool {
    if a.port() != b.port() {
        return false;
    }
    let v6_any = |s: SocketAddr| s.is_ipv6() && s.ip().is_unspecified();
    if a.is_ipv4() == b.is_ipv4() {
        a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified()
    } else {
        // One of each family: only a dual-stack [::] takes the IPv4 port,
        // and only from the IPv4 wildcard or any IPv4 address.
        v6_any(a) || v6_any(b)
    }
}

/// The route's name as written, for messages about a route whose name may be
/// missing or invalid.
fn route_label(value: &config::Value, index: usize) -> String {
    value
        .clone()
        .into_table()
        .ok()
        .and_then(|t| t.get("name").cloned())
        .and_then(|v| v.into_string().ok())
        .unwrap_or_else(|| format!("route[{index}]"))
}

/// `admin.hosts`: DNS names (letters, digits, `-`, `.`), kept lowercase;
/// no port, no IP literal (those are always answered), no wildcard.
fn admin_hosts(hosts: &[String]) -> Result<Vec<String>, (usize, String)> {
    hosts
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let name = h.trim().trim_end_matches('.').to_ascii_lowercase();
            let ok = !name.is_empty()
                && name.len() <= 253
                && name.split('.').all(|l| {
                    !l.is_empty()
                        && l.len() <= 63
                        && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                });
            if ok {
                Ok(name)
            } else {
                Err((
                    i,
                    format!("{h:?} is not a host name such as \"gms-1.example.com\" (no port, no wildcard)"),
                ))
            }
        })
        .collect()
}
