//! The scalar forms of the file: durations, socket addresses, upstream
//! `host:port` entries and connection limits. Each returns the message of
//! its refusal; the caller names the key.

use std::net::SocketAddr;
use std::time::Duration;

use super::super::model::{Cidr, Upstream};

const MAX_STOP_DURATION: Duration = Duration::from_secs(86_400);
const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 86_400);

/// "250ms", "10s", "5m", "1h" (humantime syntax); zero is refused.
pub(super) fn duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim()).map_err(|e| {
        format!("{s:?} is not a duration such as \"250ms\", \"10s\" or \"5m\": {e}")
    })?;
    if d.is_zero() {
        return Err(format!("{s:?}: a duration must be more than zero"));
    }
    // A deadline is "now + duration": past a few hundred billion years that
    // overflows the clock and panics the connection it times (the relay's
    // idle timer). No timeout needs more than a century.
    if d > MAX_DURATION {
        return Err(format!("{s:?}: a duration must be at most 100 years"));
    }
    Ok(d)
}

/// A step of the shutdown (`shutdown_grace`, `drain_delay`): a duration of
/// at most a day (a stop that takes longer is a mistake: the orchestrator's
/// own grace period will have killed the process long before). Zero only
/// where `zero_ok`.
pub(super) fn stop_duration(s: &str, zero_ok: bool) -> Result<Duration, String> {
    if s.trim_start().starts_with('-') {
        return Err(format!("{s:?}: a duration cannot be negative"));
    }
    let d = match humantime::parse_duration(s.trim()) {
        Ok(d) if d.is_zero() && zero_ok => return Ok(d),
        _ => duration(s)?,
    };
    if d > MAX_STOP_DURATION {
        return Err(format!("{s:?}: at most 1 day"));
    }
    Ok(d)
}

pub(super) fn opt_duration(s: &Option<String>, default: Duration) -> Result<Duration, String> {
    s.as_deref().map(duration).unwrap_or(Ok(default))
}

pub(super) fn max_connections(v: Option<u64>, default: usize) -> Result<usize, String> {
    match v {
        None => Ok(default),
        Some(0) => Err("must be at least 1".into()),
        Some(n) => usize::try_from(n).map_err(|_| format!("{n} is too large")),
    }
}

pub(super) fn socket_addr(s: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr = s.parse().map_err(|_| {
        format!("{s:?} is not an IP:port address (e.g. \"127.0.0.1:7021\" or \"[::1]:7021\")")
    })?;
    // Port 0 would bind a random port that no client could be told about.
    if addr.port() == 0 {
        return Err(format!(
            "{s:?}: port 0 is not a port clients can be pointed at"
        ));
    }
    Ok(addr)
}

/// "host:port" or "[v6]:port"; the host is resolved at connect time.
pub(super) fn upstream(s: &str) -> Result<Upstream, String> {
    let bad =
        || format!("{s:?} is not host:port (e.g. \"stat-a.example.com:7022\" or \"[::1]:7022\")");
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, p) = rest.split_once("]:").ok_or_else(bad)?;
        (h, p)
    } else {
        let (h, p) = s.rsplit_once(':').ok_or_else(bad)?;
        if h.contains(':') {
            return Err(bad());
        }
        (h, p)
    };
    let port: u16 = port.parse().map_err(|_| bad())?;
    if host.is_empty() || port == 0 {
        return Err(bad());
    }
    // The host is resolved (and, for TLS, verified) at connect time: refuse
    // here what could never be a DNS name or an IP address, and brackets
    // around anything but an IPv6 literal.
    let bracketed = s.starts_with('[');
    if bracketed && host.parse::<std::net::Ipv6Addr>().is_err() {
        return Err(format!("{s:?}: only an IPv6 address goes in brackets"));
    }
    if rustls_pki_types::ServerName::try_from(host).is_err() {
        return Err(format!(
            "{s:?}: {host:?} is neither a DNS name nor an IP address"
        ));
    }
    Ok(Upstream {
        host: host.to_owned(),
        port,
    })
}

/// "10.0.0.0/8", "192.0.2.7/32", "::1/128": an address and a prefix length
/// (a bare address is its own /32 or /128). Host bits set past the prefix
/// are refused: "10.1.2.3/8" more likely means a typo than 10.0.0.0/8.
pub(super) fn cidr(s: &str) -> Result<Cidr, String> {
    let (ip, prefix) = match s.split_once('/') {
        Some((ip, p)) => (ip, Some(p)),
        None => (s, None),
    };
    let addr: std::net::IpAddr = ip.parse().map_err(|_| {
        format!("{s:?} is not an address block such as \"10.0.0.0/8\" or \"::1/128\"")
    })?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        Some(p) => match p.parse::<u8>() {
            Ok(n) if n <= max && !p.starts_with('+') => n,
            _ => return Err(format!("{s:?}: the prefix length must be 0 to {max}")),
        },
    };
    let block = Cidr { addr, prefix };
    let net = Cidr {
        addr: mask(addr, prefix),
        prefix,
    };
    if net != block {
        return Err(format!(
            "{s:?} has bits set past its /{prefix}: did you mean \"{net}\"?"
        ));
    }
    Ok(block)
}

fn mask(addr: std::net::IpAddr, prefix: u8) -> std::net::IpAddr {
    use std::net::IpAddr;
    let p = u32::from(prefix);
    match addr {
        IpAddr::V4(a) => {
            let m = u32::MAX.checked_shl(32 - p).unwrap_or(0);
            IpAddr::V4((u32::from(a) & m).into())
        }
        IpAddr::V6(a) => {
            let m = u128::MAX.checked_shl(128 - p).unwrap_or(0);
            IpAddr::V6((u128::from(a) & m).into())
        }
    }
}
