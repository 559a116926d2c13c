//! `[route.listen_tls]`: the certificates a TLS listener serves (one, or one
//! per SNI name), client certificates and the identities allowed in.

use std::path::PathBuf;

use super::super::error::{ConfigError, RouteCtx};
use super::super::model::*;
use super::super::raw::*;
use super::tls::{alpn, cert_key, ciphers, paths, protocols, CertFields};

pub(super) fn listen_tls(
    ctx: &RouteCtx<'_>,
    mut t: RawListenTls,
) -> Result<ListenTls, ConfigError> {
    let certs = certs(ctx, &mut t)?;
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
        resumption: t.resumption.unwrap_or(true),
    })
}

/// `cert` and `key` (one certificate), or `certs = [...]` (one per SNI
/// name, the first the default), each entry with the table's passwords
/// unless it has its own.
fn certs(ctx: &RouteCtx<'_>, t: &mut RawListenTls) -> Result<Vec<CertKey>, ConfigError> {
    let single = cert_key(
        ctx,
        "listen_tls",
        CertFields {
            cert: t.cert.take(),
            key: t.key.take(),
            chain: std::mem::take(&mut t.genesys_chain),
            password_file: t.password_file.clone(),
            key_password_file: t.key_password_file.clone(),
            alias: t.alias.clone(),
        },
    )?;
    match (single, t.certs.take()) {
        (Some(_), Some(_)) => Err(ctx.invalid(
            "listen_tls.certs",
            "give either cert/key or certs = [...], not both",
        )),
        (Some(one), None) => Ok(vec![CertKey {
            ocsp: t.ocsp.as_deref().map(Ocsp::from_config),
            ..one
        }]),
        (None, Some(list)) if list.is_empty() => Err(ctx.invalid(
            "listen_tls.certs",
            "the list is empty: give at least one { cert, key }",
        )),
        (None, Some(list)) => list
            .into_iter()
            .enumerate()
            .map(|(i, ck)| {
                let ocsp = ck.ocsp.as_deref().map(Ocsp::from_config);
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
            .collect(),
        (None, None) => Err(ctx.invalid(
            "listen_tls.cert",
            "TLS termination needs a certificate: cert and key, or certs = [{ cert, key }, ...]",
        )),
    }
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
