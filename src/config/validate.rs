//! Raw file → runtime model. Every rule about what a config may say lives
//! here, and each failure names the file, the route and the key.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;

use super::error::{ConfigError, Problem, RouteCtx};
use super::model::*;
use super::raw::*;
use super::{ciphers, genesys};

const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(3600);
const DEFAULT_MAX_CONNECTIONS: usize = 4096;
const MAX_WORKERS: u64 = 1024;
const MAX_STOP_DURATION: Duration = Duration::from_secs(86_400);
const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 86_400);

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
        }),
        None => None,
    };
    let log = log(raw.log.as_ref()).map_err(|(k, m)| top(k, m))?;

    let defaults = raw.defaults.unwrap_or_default();
    let d = Defaults {
        connect_timeout: opt_duration(&defaults.connect_timeout, DEFAULT_CONNECT_TIMEOUT)
            .map_err(|m| top("defaults.connect_timeout", m))?,
        handshake_timeout: opt_duration(&defaults.handshake_timeout, DEFAULT_HANDSHAKE_TIMEOUT)
            .map_err(|m| top("defaults.handshake_timeout", m))?,
        idle_timeout: opt_duration(&defaults.idle_timeout, DEFAULT_IDLE_TIMEOUT)
            .map_err(|m| top("defaults.idle_timeout", m))?,
        max_connections: max_connections(defaults.max_connections, DEFAULT_MAX_CONNECTIONS)
            .map_err(|m| top("defaults.max_connections", m))?,
        kernel_tls: match &raw.kernel_tls {
            Some(v) => KernelTls::parse(v).map_err(|m| top("kernel_tls", m))?,
            None => KernelTls::default(),
        },
    };

    if raw.route.is_empty() {
        return Err(top(
            "route",
            "no [[route]] is defined: nothing to serve".into(),
        ));
    }

    let mut routes = Vec::with_capacity(raw.route.len());
    let mut names: HashMap<String, usize> = HashMap::new();
    // Every address bound so far, and by what: a route, or the admin endpoint.
    let mut bound: Vec<(SocketAddr, String)> = Vec::new();
    if let Some(a) = &admin {
        bound.push((a.listen, "the admin endpoint".into()));
    }
    for (index, value) in raw.route.into_iter().enumerate() {
        let label = route_label(&value, index);
        let rr: RawRoute = value.try_deserialize().map_err(|e| {
            let message = e.to_string();
            ConfigError {
                file: file.clone(),
                route: Some(label.clone()),
                key: syntax_key(&message),
                problem: Problem::Syntax(message),
            }
        })?;
        let ctx = RouteCtx {
            file: &file,
            route: &label,
        };
        let route = route(&ctx, rr, &d)?;
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

struct Defaults {
    connect_timeout: Duration,
    handshake_timeout: Duration,
    idle_timeout: Duration,
    max_connections: usize,
    kernel_tls: KernelTls,
}

/// The key a serde/`config` message is about, dotted from the route:
/// "unknown field `verfy`, … for key `connect_tls`" → `connect_tls.verfy`,
/// "invalid type: …, for key `max_connections`" → `max_connections`,
/// "missing configuration field \"name\"" → `name`.
fn syntax_key(message: &str) -> Option<String> {
    let quoted = |after: &str, open: char, close: char| {
        let rest = &message[message.find(after)? + after.len()..];
        let rest = rest.strip_prefix(open)?;
        Some(rest[..rest.find(close)?].to_owned())
    };
    let table = quoted(" for key ", '`', '`');
    let field = quoted("unknown field ", '`', '`')
        .or_else(|| quoted("missing field ", '`', '`'))
        .or_else(|| quoted("missing configuration field ", '"', '"'));
    let key = match (table, field) {
        (Some(t), Some(f)) => format!("{t}.{f}"),
        (t, f) => t.or(f)?,
    };
    // `config` writes a missing field inside an array entry without its
    // dot ("listen_tls.certs[0]key"): put it back.
    let mut dotted = String::with_capacity(key.len() + 1);
    let mut chars = key.chars().peekable();
    while let Some(c) = chars.next() {
        dotted.push(c);
        if c == ']' && chars.peek().is_some_and(|n| *n != '.' && *n != '[') {
            dotted.push('.');
        }
    }
    Some(dotted)
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

fn route(ctx: &RouteCtx<'_>, r: RawRoute, d: &Defaults) -> Result<Route, ConfigError> {
    if r.name.is_empty()
        || !r
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return Err(ctx.invalid(
            "name",
            format!("{:?} is not a valid route name: use [a-z0-9_-]+", r.name),
        ));
    }
    let listen = socket_addr(&r.listen).map_err(|m| ctx.invalid("listen", m))?;
    if r.connect.is_empty() {
        return Err(ctx.invalid("connect", "the list is empty: give at least one host:port"));
    }
    let connect = r
        .connect
        .iter()
        .enumerate()
        .map(|(i, c)| upstream(c).map_err(|m| ctx.invalid(&format!("connect[{i}]"), m)))
        .collect::<Result<Vec<_>, _>>()?;

    let connect_tls = match (r.connect_tls, r.genesys) {
        (t, Some(params)) => {
            let mut t = t.unwrap_or_default();
            let notes = genesys::connect(&params, &mut t).map_err(|m| ctx.invalid("genesys", m))?;
            let mut ct = connect_tls(ctx, t)?;
            ct.genesys = notes;
            Some(ct)
        }
        (Some(t), None) => Some(connect_tls(ctx, t)?),
        (None, None) => None,
    };
    let listen_tls = match r.listen_tls {
        Some(mut t) => {
            let notes = match t.genesys.take() {
                Some(params) => genesys::listen(&params, &mut t)
                    .map_err(|m| ctx.invalid("listen_tls.genesys", m))?,
                None => Vec::new(),
            };
            let mut lt = listen_tls(ctx, t)?;
            lt.genesys = notes;
            Some(lt)
        }
        None => None,
    };
    Ok(Route {
        name: r.name,
        listen,
        connect,
        connect_timeout: opt_duration(&r.connect_timeout, d.connect_timeout)
            .map_err(|m| ctx.invalid("connect_timeout", m))?,
        handshake_timeout: opt_duration(&r.handshake_timeout, d.handshake_timeout)
            .map_err(|m| ctx.invalid("handshake_timeout", m))?,
        idle_timeout: opt_duration(&r.idle_timeout, d.idle_timeout)
            .map_err(|m| ctx.invalid("idle_timeout", m))?,
        max_connections: max_connections(r.max_connections, d.max_connections)
            .map_err(|m| ctx.invalid("max_connections", m))?,
        connect_tls,
        listen_tls,
        proxy_protocol: proxy_protocol(ctx, r.proxy_protocol.as_deref())?,
        accept_proxy_protocol: r.accept_proxy_protocol.unwrap_or(false),
        via: via(ctx, r.via.as_deref(), r.via_credentials)?,
        kernel_tls: match &r.kernel_tls {
            Some(v) => KernelTls::parse(v).map_err(|m| ctx.invalid("kernel_tls", m))?,
            None => d.kernel_tls,
        },
    })
}

// PROXY protocol and the CONNECT proxy.
fn proxy_protocol(
    ctx: &RouteCtx<'_>,
    v: Option<&str>,
) -> Result<Option<ProxyProtocol>, ConfigError> {
    match v {
        None => Ok(None),
        Some("v1") => Ok(Some(ProxyProtocol::V1)),
        Some("v2") => Ok(Some(ProxyProtocol::V2)),
        Some(other) => Err(ctx.invalid(
            "proxy_protocol",
            format!("unknown PROXY protocol version {other:?}: use \"v1\" or \"v2\""),
        )),
    }
}

/// `via = "http://host:port"`: nothing else (no https, path or
/// credentials); `via_credentials` only with it.
fn via(
    ctx: &RouteCtx<'_>,
    url: Option<&str>,
    credentials: Option<String>,
) -> Result<Option<Via>, ConfigError> {
    let Some(url) = url else {
        if credentials.is_some() {
            return Err(ctx.invalid(
                "via_credentials",
                "proxy credentials need a proxy: via = \"http://host:port\"",
            ));
        }
        return Ok(None);
    };
    let Some(rest) = url.strip_prefix("http://") else {
        return Err(ctx.invalid(
            "via",
            format!("{url:?} is not http://host:port (an HTTP CONNECT proxy)"),
        ));
    };
    if rest.contains('@') {
        // Never repeat the URL: it holds a password.
        return Err(ctx.invalid(
            "via",
            "credentials do not go in the URL: put user:password in a file named by via_credentials",
        ));
    }
    let proxy = upstream(rest.strip_suffix('/').unwrap_or(rest))
        .map_err(|m| ctx.invalid("via", format!("{url:?} is not http://host:port: {m}")))?;
    if let Some(c) = &credentials {
        if c.is_empty() {
            return Err(ctx.invalid("via_credentials", "the path is empty"));
        }
    }
    Ok(Some(Via {
        proxy,
        credentials: credentials.map(PathBuf::from),
    }))
}

fn connect_tls(ctx: &RouteCtx<'_>, t: RawConnectTls) -> Result<ConnectTls, ConfigError> {
    let k = |key: &str| format!("connect_tls.{key}");
    let start = match t.start.as_deref().unwrap_or("direct") {
        "direct" => {
            if t.upgrade.is_some() {
                return Err(ctx.invalid(
                    &k("upgrade"),
                    "an upgrade profile needs start = \"upgrade\"",
                ));
            }
            if t.script.is_some() {
                return Err(ctx.invalid(
                    &k("script"),
                    "a script needs start = \"upgrade\" and upgrade = \"script\"",
                ));
            }
            Start::Direct
        }
        "upgrade" => match t.upgrade.as_deref() {
            None => {
                return Err(ctx.invalid(
                    &k("upgrade"),
                    "start = \"upgrade\" needs an upgrade profile (\"postgres\", \"smtp\", ..., or \"script\")",
                ))
            }
            Some("script") => match t.script {
                Some(steps) if !steps.is_empty() => Start::Upgrade(Upgrade::Script(steps)),
                _ => {
                    return Err(ctx.invalid(
                        &k("script"),
                        "upgrade = \"script\" needs a non-empty script = [ ... ]",
                    ))
                }
            },
            Some(profile) => {
                if t.script.is_some() {
                    return Err(ctx.invalid(
                        &k("script"),
                        format!("a script is only used with upgrade = \"script\", not \"{profile}\""),
                    ));
                }
                Start::Upgrade(Upgrade::Builtin {
                    profile: profile.to_owned(),
                    hostname: t
                        .upgrade_hostname
                        .clone()
                        .unwrap_or_else(|| "tls-sidecar".into()),
                })
            }
        },
        other => {
            return Err(ctx.invalid(
                &k("start"),
                format!("unknown start {other:?}: use \"direct\" or \"upgrade\""),
            ))
        }
    };

    if t.upgrade_hostname.is_some() && !matches!(start, Start::Upgrade(Upgrade::Builtin { .. })) {
        return Err(ctx.invalid(
            &k("upgrade_hostname"),
            "upgrade_hostname is only used with start = \"upgrade\" and a built-in upgrade profile",
        ));
    }

    let verify = match t.verify.as_deref().unwrap_or("full") {
        "full" => Verify::Full,
        "chain" => Verify::Chain,
        "none" => Verify::None,
        "pin" => {
            let pins = t.pins.as_deref().unwrap_or_default();
            if pins.is_empty() {
                return Err(ctx.invalid(
                    &k("pins"),
                    "verify = \"pin\" needs pins = [\"sha256/BASE64\", ...]",
                ));
            }
            Verify::Pin(
                pins.iter()
                    .enumerate()
                    .map(|(i, p)| {
                        pin(p).map_err(|m| ctx.invalid(&format!("connect_tls.pins[{i}]"), m))
                    })
                    .collect::<Result<_, _>>()?,
            )
        }
        other => {
            return Err(ctx.invalid(
                &k("verify"),
                format!(
                    "unknown verify mode {other:?}: use \"full\", \"chain\", \"pin\" or \"none\""
                ),
            ))
        }
    };
    if t.pins.is_some() && !matches!(verify, Verify::Pin(_)) {
        return Err(ctx.invalid(
            &k("pins"),
            format!(
                "pins are only used with verify = \"pin\", not \"{}\"",
                verify.as_str()
            ),
        ));
    }
    if let Some(name) = &t.server_name {
        if rustls_pki_types::ServerName::try_from(name.as_str()).is_err() {
            return Err(ctx.invalid(
                &k("server_name"),
                format!("{name:?} is neither a DNS name nor an IP address"),
            ));
        }
    }
    let client_cert = cert_key(
        ctx,
        "connect_tls",
        CertFields {
            cert: t.cert,
            key: t.key,
            chain: t.genesys_chain,
            password_file: t.password_file.clone(),
            key_password_file: t.key_password_file,
            alias: t.alias,
        },
    )?;
    let protocols =
        protocols(t.protocols.as_deref()).map_err(|m| ctx.invalid(&k("protocols"), m))?;
    let ciphers =
        ciphers(t.ciphers.as_deref(), &protocols).map_err(|m| ctx.invalid(&k("ciphers"), m))?;
    Ok(ConnectTls {
        start,
        verify,
        server_name: t.server_name,
        ca: t.ca.map(PathBuf::from),
        crl: paths(t.crl),
        client_cert,
        protocols,
        alpn: alpn(t.alpn.as_deref()).map_err(|m| ctx.invalid(&k("alpn"), m))?,
        resumption: t.resumption.unwrap_or(true),
        ca_password_file: t.ca_password_file.or(t.password_file).map(PathBuf::from),
        ciphers,
        genesys: Vec::new(),
    })
}

fn listen_tls(ctx: &RouteCtx<'_>, t: RawListenTls) -> Result<ListenTls, ConfigError> {
    let single = cert_key(
        ctx,
        "listen_tls",
        CertFields {
            cert: t.cert,
            key: t.key,
            chain: t.genesys_chain,
            password_file: t.password_file.clone(),
            key_password_file: t.key_password_file.clone(),
            alias: t.alias.clone(),
        },
    )?;
    let certs = match (single, t.certs) {
        (Some(_), Some(_)) => {
            return Err(ctx.invalid(
                "listen_tls.certs",
                "give either cert/key or certs = [...], not both",
            ))
        }
        (Some(one), None) => vec![CertKey {
            ocsp: t.ocsp.clone().map(PathBuf::from),
            ..one
        }],
        (None, Some(list)) if list.is_empty() => {
            return Err(ctx.invalid(
                "listen_tls.certs",
                "the list is empty: give at least one { cert, key }",
            ))
        }
        (None, Some(list)) => list
            .into_iter()
            .enumerate()
            .map(|(i, ck)| {
                let ocsp = ck.ocsp.map(PathBuf::from);
                cert_key(
                    ctx,
                    &format!("listen_tls.certs[{i}]"),
                    CertFields {
                        cert: Some(ck.cert),
                        key: ck.key,
                        chain: Vec::new(),
                        password_file: ck.password_file.or_else(|| t.password_file.clone()),
                        key_password_file: ck
                            .key_password_file
                            .or_else(|| t.key_password_file.clone()),
                        alias: ck.alias,
                    },
                )
                .map(|c| CertKey {
                    ocsp,
                    ..c.expect("cert is given")
                })
            })
            .collect::<Result<_, _>>()?,
        (None, None) => return Err(ctx.invalid(
            "listen_tls.cert",
            "TLS termination needs a certificate: cert and key, or certs = [{ cert, key }, ...]",
        )),
    };
    if t.ocsp.is_some() && certs[0].key_name != "listen_tls" {
        return Err(ctx.invalid(
            "listen_tls.ocsp",
            "with certs = [...], give ocsp in each entry: { cert, key, ocsp }",
        ));
    }
    if t.crl.is_some() && t.client_ca.is_none() {
        return Err(ctx.invalid(
            "listen_tls.crl",
            "revocation lists for client certificates need client_ca",
        ));
    }
    let allow = match t.allow {
        Some(_) if t.client_ca.is_none() => {
            return Err(ctx.invalid(
                "listen_tls.allow",
                "an allow list needs client_ca: only a verified client certificate has an identity to match",
            ))
        }
        Some(raw) => Some(allow(ctx, raw)?),
        None => None,
    };
    let alpn_list = alpn(t.alpn.as_deref()).map_err(|m| ctx.invalid("listen_tls.alpn", m))?;
    let alpn_required = t.alpn_required.unwrap_or(false);
    if alpn_required && alpn_list.is_empty() {
        return Err(ctx.invalid(
            "listen_tls.alpn_required",
            "alpn_required = true needs a non-empty alpn list",
        ));
    }
    let protocols =
        protocols(t.protocols.as_deref()).map_err(|m| ctx.invalid("listen_tls.protocols", m))?;
    let ciphers = ciphers(t.ciphers.as_deref(), &protocols)
        .map_err(|m| ctx.invalid("listen_tls.ciphers", m))?;
    if t.client_ca_password_file.is_some() && t.client_ca.is_none() {
        return Err(ctx.invalid(
            "listen_tls.client_ca_password_file",
            "is the password of a client_ca keystore: give client_ca",
        ));
    }
    Ok(ListenTls {
        certs,
        client_ca: t.client_ca.map(PathBuf::from),
        crl: paths(t.crl),
        sni_required: t.sni_required.unwrap_or(false),
        protocols,
        alpn: alpn_list,
        alpn_required,
        allow,
        client_ca_password_file: t
            .client_ca_password_file
            .or(t.password_file)
            .map(PathBuf::from),
        ciphers,
        genesys: Vec::new(),
    })
}

/// `listen_tls.allow`: each entry checked for its kind, DNS names lower-cased.
fn allow(ctx: &RouteCtx<'_>, raw: RawAllow) -> Result<Allow, ConfigError> {
    fn each<T>(
        ctx: &RouteCtx<'_>,
        kind: &str,
        list: Option<Vec<String>>,
        check: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Vec<T>, ConfigError> {
        list.unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(i, v)| {
                check(v).map_err(|m| ctx.invalid(&format!("listen_tls.allow.{kind}[{i}]"), m))
            })
            .collect()
    }
    let out = Allow {
        dns: each(ctx, "dns", raw.dns, dns_pattern)?,
        uri: each(ctx, "uri", raw.uri, |u| {
            let scheme = u.split_once(':').map(|(s, _)| s).unwrap_or("");
            if scheme.is_empty()
                || !scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
                || u.len() == scheme.len() + 1
            {
                Err(format!(
                    "{u:?} is not a URI such as \"spiffe://example.org/gms\""
                ))
            } else if u.contains('*') {
                Err(format!(
                    "{u:?}: URI entries match exactly; \"*\" is no wildcard here"
                ))
            } else {
                Ok(u.to_owned())
            }
        })?,
        ip: each(ctx, "ip", raw.ip, |a| {
            a.parse::<std::net::IpAddr>()
                .map_err(|_| format!("{a:?} is not an IP address"))
        })?,
        email: each(ctx, "email", raw.email, |e| match e.split_once('@') {
            Some((l, d)) if !l.is_empty() && !d.is_empty() => Ok(e.to_owned()),
            _ => Err(format!("{e:?} is not an email address")),
        })?,
        cn: each(ctx, "cn", raw.cn, non_empty)?,
        ou: each(ctx, "ou", raw.ou, non_empty)?,
    };
    if out.is_empty() {
        return Err(ctx.invalid(
            "listen_tls.allow",
            "the allow list names no identity: give at least one of dns, uri, ip, email, cn, ou (or remove allow to let every verified client in)",
        ));
    }
    Ok(out)
}

fn non_empty(s: &str) -> Result<String, String> {
    if s.is_empty() {
        Err("an empty name matches nothing".into())
    } else {
        Ok(s.to_owned())
    }
}

/// A DNS name, or `*.` and a name: the wildcard is only ever the whole
/// leftmost label (as in certificates, RFC 6125 6.4.3), so it covers exactly
/// one label.
fn dns_pattern(s: &str) -> Result<String, String> {
    let rest = s.strip_prefix("*.").unwrap_or(s);
    if rest.contains('*') {
        return Err(format!(
            "{s:?}: \"*\" is only allowed as the whole leftmost label (\"*.example.com\")"
        ));
    }
    let ok = !rest.is_empty()
        && rest.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if !ok {
        return Err(format!("{s:?} is not a DNS name"));
    }
    Ok(s.to_ascii_lowercase())
}

/// The keys of one certificate setting, as written.
struct CertFields {
    cert: Option<String>,
    key: Option<String>,
    chain: Vec<String>,
    password_file: Option<String>,
    key_password_file: Option<String>,
    alias: Option<String>,
}

/// A certificate with its key: PEM `cert` and `key`, or a keystore `cert`
/// (PKCS#12 or JKS, told by content when loaded) with its `password_file`.
fn cert_key(
    ctx: &RouteCtx<'_>,
    table: &str,
    f: CertFields,
) -> Result<Option<CertKey>, ConfigError> {
    let ck = |cert: String, key: Option<String>| CertKey {
        cert: cert.into(),
        key: key.map(PathBuf::from),
        chain: f.chain.iter().map(PathBuf::from).collect(),
        password_file: f.password_file.clone().map(PathBuf::from),
        key_password_file: f.key_password_file.clone().map(PathBuf::from),
        alias: f.alias.clone(),
        key_name: table.to_owned(),
        ocsp: None,
    };
    match (f.cert.clone(), f.key.clone()) {
        (Some(cert), Some(key)) => Ok(Some(ck(cert, Some(key)))),
        (Some(cert), None) if f.password_file.is_some() => Ok(Some(ck(cert, None))),
        (None, None) if f.alias.is_some() => Err(ctx.invalid(
            &format!("{table}.alias"),
            "alias picks an entry of a keystore cert: give cert",
        )),
        (None, None) => Ok(None),
        (Some(_), None) => Err(ctx.invalid(
            &format!("{table}.key"),
            "cert is given without key: both are needed (a PKCS#12 or JKS keystore cert needs password_file instead)",
        )),
        (None, Some(_)) => Err(ctx.invalid(
            &format!("{table}.cert"),
            "key is given without cert: both are needed",
        )),
    }
}

/// Cipher suites in any of their names, to rustls names; every enabled
/// protocol version must keep at least one.
fn ciphers(list: Option<&[String]>, versions: &[TlsVersion]) -> Result<Vec<String>, String> {
    let Some(list) = list else {
        return Ok(Vec::new());
    };
    let mut out: Vec<String> = Vec::new();
    for name in list {
        let s = ciphers::suite(name)?;
        if !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    }
    for (v, tls13, example) in [
        (TlsVersion::Tls13, true, "TLS_AES_128_GCM_SHA256"),
        (TlsVersion::Tls12, false, "ECDHE-RSA-AES128-GCM-SHA256"),
    ] {
        if versions.contains(&v) && !out.iter().any(|s| ciphers::is_tls13(s) == tls13) {
            return Err(format!(
                "no {} suite is listed but protocols include it: add one (e.g. {example}) or drop {} from protocols",
                v.as_str(),
                v.as_str()
            ));
        }
    }
    Ok(out)
}

fn paths(list: Option<Vec<String>>) -> Vec<PathBuf> {
    list.unwrap_or_default()
        .into_iter()
        .map(PathBuf::from)
        .collect()
}

fn log(raw: Option<&RawLog>) -> Result<Log, (&'static str, String)> {
    let level = raw
        .and_then(|l| l.level.clone())
        .unwrap_or_else(|| "info".into());
    if !["error", "warn", "info", "debug", "trace"].contains(&level.as_str()) {
        return Err((
            "log.level",
            format!("unknown level {level:?}: use error, warn, info, debug or trace"),
        ));
    }
    let format = match raw.and_then(|l| l.format.as_deref()).unwrap_or("text") {
        "text" => LogFormat::Text,
        "json" => LogFormat::Json,
        other => {
            return Err((
                "log.format",
                format!("unknown format {other:?}: use \"text\" or \"json\""),
            ))
        }
    };
    Ok(Log { level, format })
}

/// "250ms", "10s", "5m", "1h" (humantime syntax); zero is refused.
pub(crate) fn duration(s: &str) -> Result<Duration, String> {
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
fn stop_duration(s: &str, zero_ok: bool) -> Result<Duration, String> {
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

fn opt_duration(s: &Option<String>, default: Duration) -> Result<Duration, String> {
    s.as_deref().map(duration).unwrap_or(Ok(default))
}

fn max_connections(v: Option<u64>, default: usize) -> Result<usize, String> {
    match v {
        None => Ok(default),
        Some(0) => Err("must be at least 1".into()),
        Some(n) => usize::try_from(n).map_err(|_| format!("{n} is too large")),
    }
}

fn socket_addr(s: &str) -> Result<SocketAddr, String> {
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
fn upstream(s: &str) -> Result<Upstream, String> {
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

/// "sha256/BASE64" of a SubjectPublicKeyInfo.
fn pin(s: &str) -> Result<[u8; 32], String> {
    let b64 = s
        .strip_prefix("sha256/")
        .ok_or_else(|| format!("{s:?}: a pin is written \"sha256/BASE64\""))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| format!("{s:?}: not valid base64: {e}"))?;
    bytes
        .try_into()
        .map_err(|v: Vec<u8>| format!("{s:?}: a SHA-256 pin is 32 bytes, this is {}", v.len()))
}

/// Only TLS 1.2 and 1.3 can be enabled; the rest are refused with the reason.
fn protocols(list: Option<&[String]>) -> Result<Vec<TlsVersion>, String> {
    let Some(list) = list else {
        return Ok(vec![TlsVersion::Tls13, TlsVersion::Tls12]);
    };
    if list.is_empty() {
        return Err("the list is empty: give \"TLSv1.3\" and/or \"TLSv1.2\"".into());
    }
    let mut out = Vec::new();
    for p in list {
        let v = match p.as_str() {
            "TLSv1.3" => TlsVersion::Tls13,
            "TLSv1.2" => TlsVersion::Tls12,
            "TLSv1" | "TLSv1.0" | "TLSv1.1" => {
                return Err(format!(
                    "{p} is refused: TLS 1.0 and 1.1 are deprecated (RFC 8996) and unsupported by Jetty in current GMS; use \"TLSv1.3\" and/or \"TLSv1.2\""
                ))
            }
            "SSLv2" | "SSLv3" => {
                return Err(format!(
                    "{p} is refused: SSL is broken (RFC 6176, RFC 7568: DROWN, POODLE); use \"TLSv1.3\" and/or \"TLSv1.2\""
                ))
            }
            other => {
                return Err(format!(
                    "unknown protocol {other:?}: use \"TLSv1.3\" and/or \"TLSv1.2\""
                ))
            }
        };
        if !out.contains(&v) {
            out.push(v);
        }
    }
    Ok(out)
}

fn alpn(list: Option<&[String]>) -> Result<Vec<Vec<u8>>, String> {
    list.unwrap_or_default()
        .iter()
        .map(|p| {
            if p.is_empty() || p.len() > 255 {
                Err(format!("{p:?}: an ALPN protocol name is 1 to 255 bytes"))
            } else {
                Ok(p.as_bytes().to_vec())
            }
        })
        .collect()
}
