//! One route's own keys: its name, where it listens and connects, its
//! timeouts and limits, PROXY protocol and the CONNECT proxy; its TLS tables
//! go to `connect` and `listen`.

use std::path::PathBuf;

use super::super::error::{ConfigError, RouteCtx};
use super::super::genesys;
use super::super::model::*;
use super::super::raw::*;
use super::super::redact;
use super::values::{cidr, max_connections, opt_duration, socket_addr, upstream};
use super::{connect, listen, Defaults};

pub(super) fn route(ctx: &RouteCtx<'_>, r: RawRoute, d: &Defaults) -> Result<Route, ConfigError> {
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
            let mut ct = connect::connect_tls(ctx, t)?;
            ct.genesys = notes;
            Some(ct)
        }
        (Some(t), None) => Some(connect::connect_tls(ctx, t)?),
        (None, None) => None,
    };
    let listen_tls = match r.listen_tls {
        Some(mut t) => {
            let notes = match t.genesys.take() {
                Some(params) => genesys::listen(&params, &mut t)
                    .map_err(|m| ctx.invalid("listen_tls.genesys", m))?,
                None => Vec::new(),
            };
            let mut lt = listen::listen_tls(ctx, t)?;
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
        proxy_protocol: r.proxy_protocol,
        accept_proxy_protocol_from: proxy_senders(
            ctx,
            r.accept_proxy_protocol,
            r.accept_proxy_protocol_from,
        )?,
        accept_proxy_protocol: r.accept_proxy_protocol.unwrap_or(false),
        via: via(ctx, r.via.as_deref(), r.via_credentials)?,
        kernel_tls: r.kernel_tls.unwrap_or(d.kernel_tls),
    })
}

/// `accept_proxy_protocol_from`: a non-empty list of address blocks, only
/// with `accept_proxy_protocol = true` (alone it would trust nobody for a
/// header nobody is asked for: surely a mistake).
fn proxy_senders(
    ctx: &RouteCtx<'_>,
    accept: Option<bool>,
    from: Option<Vec<String>>,
) -> Result<Option<Vec<Cidr>>, ConfigError> {
    const KEY: &str = "accept_proxy_protocol_from";
    let Some(from) = from else { return Ok(None) };
    if accept != Some(true) {
        return Err(ctx.invalid(
            KEY,
            "it names who may send a PROXY header, and this route accepts none: set accept_proxy_protocol = true",
        ));
    }
    if from.is_empty() {
        return Err(ctx.invalid(
            KEY,
            "the list is empty: name the load balancers' address blocks, such as \"10.0.0.0/8\"",
        ));
    }
    from.iter()
        .enumerate()
        .map(|(i, c)| cidr(c.trim()).map_err(|m| ctx.invalid(&format!("{KEY}[{i}]"), m)))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// `via = "http://host:port"` (the scheme in any case): nothing else (no
/// https, path or credentials); `via_credentials` only with it. No message
/// repeats a password written in the URL: it is shown redacted.
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
    let shown = redact::url(url);
    if redact::has_userinfo(url) {
        return Err(ctx.invalid(
            "via",
            format!("{shown:?}: credentials do not go in the URL: put user:password in a file named by via_credentials"),
        ));
    }
    let rest = match url.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
        Some((scheme, _)) if scheme.eq_ignore_ascii_case("https") => {
            return Err(ctx.invalid(
                "via",
                format!("{shown:?}: a proxy reached over TLS is not supported: use http://host:port (the route's own TLS runs inside the tunnel)"),
            ))
        }
        _ => {
            return Err(ctx.invalid(
                "via",
                format!("{shown:?} is not http://host:port (an HTTP CONNECT proxy)"),
            ))
        }
    };
    let proxy = upstream(rest.strip_suffix('/').unwrap_or(rest))
        .map_err(|m| ctx.invalid("via", format!("{shown:?} is not http://host:port: {m}")))?;
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
