//! The model as routes: one `[[route]]` per `[service]`, its name made
//! legal, `accept`/`connect`, timeouts and protocol here, the TLS table in
//! `tls`. Every option becomes a key, a comment saying why it has none,
//! or a refusal naming it; nothing is dropped silently.

use std::path::Path;

use super::model::{Conf, Opt, Protocol, Service, Settings};
use super::parse::At;
use super::route::Route;
use super::{tls, Pins, StunnelError};
use crate::import::{secret_path, toml, Import, Secret};
use crate::tls::keystore::Password;

/// Every service as a route, in the file's order.
pub(super) fn translate(
    conf: &Conf,
    source: &Path,
    pins: Pins<'_>,
) -> Result<Import, StunnelError> {
    if conf.services.is_empty() {
        let at = At {
            file: source.to_owned(),
            line: 1,
        };
        return Err(at.error("no [service] section: nothing to translate"));
    }
    let mut out = toml::comment(&format!(
        "Imported by `tls-sidecar import stunnel {}`: one route per service.",
        source.display()
    ));
    if !conf.process.is_empty() {
        out.push_str("#\n# Process options (tls-sidecar runs in the foreground under its service manager, logs to stderr as [log] says):\n");
        for o in &conf.process {
            out.push_str(&toml::comment(&format!("  {}", shown(o))));
        }
    }
    let mut names: Vec<String> = Vec::new();
    let mut secrets = Vec::new();
    for svc in &conf.services {
        let name = legal_name(&svc.name, &names);
        names.push(name.clone());
        let r = route(svc, name, pins)?;
        out.push('\n');
        out.push_str(&render(svc, &r));
        secrets.extend(r.secrets);
    }
    Ok(Import { toml: out, secrets })
}

/// `[a-z0-9_-]+`, unique: lowercased, other characters as `-`, a number
/// added on a clash.
fn legal_name(section: &str, taken: &[String]) -> String {
    let mut base: String = section
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '_' | '-') => c,
            _ => '-',
        })
        .collect();
    if base.trim_matches('-').is_empty() {
        base = "service".into();
    }
    let mut name = base.clone();
    let mut n = 2;
    while taken.contains(&name) {
        name = format!("{base}-{n}");
        n += 1;
    }
    name
}

/// An option as a comment line, a password hidden.
fn shown(o: &Opt) -> String {
    let value = if o.key.to_ascii_lowercase().contains("password")
        || o.key.eq_ignore_ascii_case("ticketKeySecret")
        || o.key.eq_ignore_ascii_case("ticketMacSecret")
    {
        "(hidden)"
    } else if o.value.is_empty() {
        "(empty)"
    } else {
        o.value.as_str()
    };
    format!(
        "{} = {value} ({}:{})",
        o.key,
        o.at.file.display(),
        o.at.line
    )
}

fn route(svc: &Service, name: String, pins: Pins<'_>) -> Result<Route, StunnelError> {
    let s = &svc.s;
    if let Some((o, why)) = s.refused.first() {
        return Err(o
            .at
            .error(format!("{} = {}: refused: {why}", o.key, o.value)));
    }
    let mut r = Route {
        name,
        at: svc.at.clone(),
        keys: Vec::new(),
        table: if s.client {
            "connect_tls"
        } else {
            "listen_tls"
        },
        tls: Vec::new(),
        notes: Vec::new(),
        untranslated: Vec::new(),
        secrets: Vec::new(),
    };
    let accept = s.accept.as_deref().ok_or_else(|| {
        svc.at.error(format!(
            "[{}] has no accept: where should the route listen?",
            svc.name
        ))
    })?;
    let listen = listen_addr(accept).map_err(|m| r.at(s, "accept").error(m))?;
    r.key(
        format!("listen = {}", toml::string(&listen)),
        format!("accept = {accept} → listen = {listen:?}"),
    );
    upstreams(s, &mut r)?;
    timeouts(s, &mut r);
    protocol(s, &mut r)?;
    if s.client {
        tls::connect_tls(s, &mut r, pins)?;
    } else {
        tls::listen_tls(s, &mut r)?;
    }
    for o in &s.process {
        r.untranslated
            .push(format!("{}: a process setting", shown(o)));
    }
    for o in &s.other {
        r.untranslated
            .push(format!("{}: no tls-sidecar equivalent", shown(o)));
    }
    Ok(r)
}

/// `accept` as a socket address: `PORT` is every IPv4 address, as in stunnel.
fn listen_addr(v: &str) -> Result<String, String> {
    if v.starts_with('/') {
        return Err(format!(
            "accept = {v}: a Unix socket; the route listens on TCP"
        ));
    }
    if v.parse::<u16>().is_ok() {
        return Ok(format!("0.0.0.0:{v}"));
    }
    let (host, port) = v
        .rsplit_once(':')
        .ok_or_else(|| format!("accept = {v}: not [HOST:]PORT"))?;
    if port.parse::<u16>().is_err() {
        return Err(format!("accept = {v}: {port:?} is not a port"));
    }
    match host {
        "" | "*" => Ok(format!("0.0.0.0:{port}")),
        "localhost" => Ok(format!("127.0.0.1:{port}")),
        h if h.parse::<std::net::Ipv6Addr>().is_ok() => Ok(format!("[{h}]:{port}")),
        h if h.parse::<std::net::Ipv4Addr>().is_ok() => Ok(v.to_owned()),
        h => Err(format!("accept = {v}: the route listens on an IP address, not on a name ({h}): give the address")),
    }
}

/// `connect` as host:port: `PORT` is localhost's, as in stunnel.
fn upstream(v: &str) -> Result<String, String> {
    if v.starts_with('/') {
        return Err(format!(
            "connect = {v}: a Unix socket; the route connects over TCP"
        ));
    }
    if v.parse::<u16>().is_ok() {
        return Ok(format!("localhost:{v}"));
    }
    match v.rsplit_once(':') {
        Some((h, p)) if h.parse::<std::net::Ipv6Addr>().is_ok() => Ok(format!("[{h}]:{p}")),
        Some(_) => Ok(v.to_owned()),
        None => Err(format!("connect = {v}: not [HOST:]PORT")),
    }
}

/// `connect` (several: tried in order) or, for `protocol = connect`, the
/// proxy as `via` and `protocolHost` as the upstream.
fn upstreams(s: &Settings, r: &mut Route) -> Result<(), StunnelError> {
    if s.connect.is_empty() {
        return Err(r
            .at(s, "accept")
            .error("the service has no connect: where should the route connect?"));
    }
    let list = s
        .connect
        .iter()
        .map(|c| upstream(c))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|m| r.at(s, "connect").error(m))?;
    if s.protocol == Some(Protocol::Connect) && s.client {
        return via(s, r, &list);
    }
    r.key(
        format!("connect = {}", toml::strings(&list)),
        format!(
            "connect = {} → connect = {list:?} (tried in order: stunnel's failover = prio)",
            s.connect.join(", ")
        ),
    );
    Ok(())
}

/// `protocol = connect`: stunnel asks the proxy (`connect`) for a tunnel to
/// `protocolHost`; the route does the same with `via`.
fn via(s: &Settings, r: &mut Route, proxies: &[String]) -> Result<(), StunnelError> {
    let at = r.at(s, "protocol");
    let [proxy] = proxies else {
        return Err(at.error(
            "protocol = connect with several connect (proxies): the route goes through one proxy",
        ));
    };
    let target = s.protocol_host.as_deref().ok_or_else(|| {
        at.error("protocol = connect without protocolHost: the proxy must be told where to")
    })?;
    let target = upstream(target).map_err(|m| r.at(s, "protocolhost").error(m))?;
    r.key(
        format!("connect = {}", toml::strings(&[&target])),
        format!("protocolHost = {target} → connect"),
    );
    r.key(
        format!("via = {}", toml::string(&format!("http://{proxy}"))),
        format!("protocol = connect, connect = {proxy} → via = \"http://{proxy}\""),
    );
    if let Some(a) = s
        .protocol_authentication
        .as_deref()
        .filter(|a| !a.eq_ignore_ascii_case("basic"))
    {
        return Err(r.at(s, "protocolauthentication").error(format!(
            "protocolAuthentication = {a}: the route authenticates to a proxy with basic only"
        )));
    }
    match (&s.protocol_username, &s.protocol_password) {
        (Some(u), Some(p)) => {
            let suffix = format!(".{}.via.credentials", r.name);
            r.key(format!("via_credentials = {}", toml::string(&secret_path(&suffix))), format!("protocolUsername, protocolPassword → via_credentials = CONFIG{suffix} (mode 0600)"));
            r.secrets.push(Secret {
                suffix,
                password: Password::new(format!("{u}:{}", p.0)),
            });
        }
        (None, None) => {}
        _ => return Err(at.error("protocolUsername and protocolPassword go together")),
    }
    Ok(())
}

/// TIMEOUTconnect and TIMEOUTidle, with stunnel's defaults (10 s, 12 h)
/// written out so the route waits as stunnel did.
fn timeouts(s: &Settings, r: &mut Route) {
    for (v, default, key, opt) in [
        (s.timeout_connect, 10, "connect_timeout", "TIMEOUTconnect"),
        (s.timeout_idle, 43200, "idle_timeout", "TIMEOUTidle"),
    ] {
        let secs = v.unwrap_or(default);
        let from = if v.is_some() {
            String::new()
        } else {
            " (stunnel's default)".into()
        };
        r.key(
            format!("{key} = \"{secs}s\""),
            format!("{opt} = {secs}{from} → {key} = \"{secs}s\""),
        );
    }
    if let Some(c) = s.timeout_close {
        r.untranslated.push(format!("TIMEOUTclose = {c}: the route ends each direction on its own and waits for no close_notify"));
    }
}

/// `protocol`: an upgrade profile towards the upstream, or a PROXY header.
fn protocol(s: &Settings, r: &mut Route) -> Result<(), StunnelError> {
    let Some(p) = &s.protocol else {
        if let Some(h) = &s.protocol_host {
            r.untranslated
                .push(format!("protocolHost = {h}: not used without protocol"));
        }
        return Ok(());
    };
    let at = r.at(s, "protocol");
    let profile = match p {
        Protocol::Proxy => {
            r.key("proxy_protocol = \"v1\"".into(), "protocol = proxy → proxy_protocol = \"v1\" (the client's address to the upstream first)".into());
            return Ok(());
        }
        Protocol::Connect if s.client => return Ok(()),
        Protocol::Unsupported(name) => return Err(at.error(format!("protocol = {name}: not offered (the route's upgrades: pgsql, smtp, imap, pop3, ldap; connect; proxy)"))),
        _ if !s.client => {
            let v = s.protocol_word.as_deref().unwrap_or_default();
            return Err(at.error(format!("protocol = {v} in a server service (client = no): the route does an upgrade's client side only, towards the upstream")));
        }
        Protocol::Pgsql => "postgres",
        Protocol::Smtp => "smtp",
        Protocol::Imap => "imap",
        Protocol::Pop3 => "pop3",
        Protocol::Ldap => "ldap",
        Protocol::Connect => unreachable!("handled above"),
    };
    r.tls(
        "start = \"upgrade\"",
        &format!(
            "protocol = {} → start = \"upgrade\", upgrade = \"{profile}\"",
            s.protocol_word.as_deref().unwrap_or(profile)
        ),
    );
    r.tls_line(format!("upgrade = \"{profile}\""));
    match (&s.protocol_host, p) {
        (Some(h), Protocol::Smtp) => r.tls(
            &format!("upgrade_hostname = {}", toml::string(h)),
            &format!("protocolHost = {h} → upgrade_hostname (EHLO)"),
        ),
        (Some(h), _) => r.untranslated.push(format!(
            "protocolHost = {h}: used by stunnel's connect and smtp only"
        )),
        (None, _) => {}
    }
    Ok(())
}

/// The route's comments, then its TOML.
fn render(svc: &Service, r: &Route) -> String {
    let mut out = toml::comment(&format!(
        "[{}] ({}:{}):",
        svc.name,
        svc.at.file.display(),
        svc.at.line
    ));
    for n in &r.notes {
        out.push_str(&toml::comment(&format!("  {n}")));
    }
    if !r.untranslated.is_empty() {
        out.push_str("# Not translated:\n");
        for n in &r.untranslated {
            out.push_str(&toml::comment(&format!("  {n}")));
        }
    }
    out.push_str(&format!("[[route]]\nname = {}\n", toml::string(&r.name)));
    for k in &r.keys {
        out.push_str(k);
        out.push('\n');
    }
    out.push_str(&format!("\n[route.{}]\n", r.table));
    for l in &r.tls {
        out.push_str(l);
        out.push('\n');
    }
    out
}
