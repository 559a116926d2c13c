//! `[route.connect_tls]`: how the upstream leg starts (direct, or an upgrade
//! with a built-in profile or the route's script), how the upstream is
//! verified, and the client identity the sidecar presents.

use std::path::PathBuf;

use base64::Engine as _;

use super::super::error::{ConfigError, RouteCtx};
use super::super::model::*;
use super::super::raw::*;
use super::script::steps;
use super::tls::{alpn, cert_key, ciphers, paths, protocols, CertFields};

pub(super) fn connect_tls(ctx: &RouteCtx<'_>, t: RawConnectTls) -> Result<ConnectTls, ConfigError> {
    let k = |key: &str| format!("connect_tls.{key}");
    let start = start(ctx, &t)?;
    let verify = verify(ctx, &t)?;
    let cn_fallback = t.name_check_cn_fallback.unwrap_or(false);
    if cn_fallback && verify != Verify::Full {
        return Err(ctx.invalid(
            &k("name_check_cn_fallback"),
            format!(
                "name_check_cn_fallback = true changes how the name is checked, and verify = \"{}\" checks no name; use it with verify = \"full\"",
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
        cn_fallback,
        genesys: Vec::new(),
    })
}

/// `start`, `upgrade`, `script` and `upgrade_hostname`, which only make
/// sense together.
fn start(ctx: &RouteCtx<'_>, t: &RawConnectTls) -> Result<Start, ConfigError> {
    let start = match (t.start.unwrap_or(RawStart::Direct), t.upgrade) {
        (RawStart::Direct, Some(_)) => {
            return Err(ctx.invalid(
                "connect_tls.upgrade",
                "an upgrade profile needs start = \"upgrade\"",
            ))
        }
        (RawStart::Direct, None) if t.script.is_some() => {
            return Err(ctx.invalid(
                "connect_tls.script",
                "a script needs start = \"upgrade\" and upgrade = \"script\"",
            ))
        }
        (RawStart::Direct, None) => Start::Direct,
        (RawStart::Upgrade, None) => {
            return Err(ctx.invalid(
                "connect_tls.upgrade",
                "start = \"upgrade\" needs an upgrade profile (\"postgres\", \"smtp\", ..., or \"script\")",
            ))
        }
        (RawStart::Upgrade, Some(upgrade)) => Start::Upgrade(self::upgrade(ctx, t, upgrade)?),
    };
    if t.upgrade_hostname.is_some() && !matches!(start, Start::Upgrade(Upgrade::Builtin { .. })) {
        return Err(ctx.invalid(
            "connect_tls.upgrade_hostname",
            "upgrade_hostname is only used with start = \"upgrade\" and a built-in upgrade profile",
        ));
    }
    Ok(start)
}

/// With `start = "upgrade"`: a built-in profile, or the route's own steps.
fn upgrade(
    ctx: &RouteCtx<'_>,
    t: &RawConnectTls,
    upgrade: RawUpgrade,
) -> Result<Upgrade, ConfigError> {
    match (upgrade.profile(), &t.script) {
        (None, Some(list)) if !list.is_empty() => Ok(Upgrade::Script(steps(ctx, list)?)),
        (None, _) => Err(ctx.invalid(
            "connect_tls.script",
            "upgrade = \"script\" needs a non-empty script = [ ... ]",
        )),
        (Some(profile), Some(_)) => Err(ctx.invalid(
            "connect_tls.script",
            format!("a script is only used with upgrade = \"script\", not \"{profile}\""),
        )),
        (Some(profile), None) => Ok(Upgrade::Builtin {
            profile,
            hostname: t
                .upgrade_hostname
                .clone()
                .unwrap_or_else(|| "tls-sidecar".into()),
        }),
    }
}

/// `verify`, and `pins` that only `verify = "pin"` takes.
fn verify(ctx: &RouteCtx<'_>, t: &RawConnectTls) -> Result<Verify, ConfigError> {
    let verify = match t.verify.unwrap_or(RawVerify::Full) {
        RawVerify::Full => Verify::Full,
        RawVerify::Chain => Verify::Chain,
        RawVerify::None => Verify::None,
        RawVerify::Pin => {
            let pins = t.pins.as_deref().unwrap_or_default();
            if pins.is_empty() {
                return Err(ctx.invalid(
                    "connect_tls.pins",
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
    };
    if t.pins.is_some() && !matches!(verify, Verify::Pin(_)) {
        return Err(ctx.invalid(
            "connect_tls.pins",
            format!(
                "pins are only used with verify = \"pin\", not \"{}\"",
                verify.as_str()
            ),
        ));
    }
    Ok(verify)
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
