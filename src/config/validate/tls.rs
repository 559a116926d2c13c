//! What both TLS tables share: a certificate with its key (PEM files or a
//! keystore), protocol versions, cipher suites, ALPN names and file lists.

use std::path::PathBuf;

use super::super::ciphers;
use super::super::error::{ConfigError, RouteCtx};
use super::super::model::*;

/// The keys of one certificate setting, as written.
pub(super) struct CertFields {
    pub cert: Option<String>,
    pub key: Option<String>,
    pub chain: Vec<String>,
    pub password_file: Option<String>,
    pub key_password_file: Option<String>,
    pub alias: Option<String>,
}

/// A certificate with its key: PEM `cert` and `key`, or a keystore `cert`
/// (PKCS#12 or JKS, told by content when loaded) with its `password_file`.
pub(super) fn cert_key(
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
pub(super) fn ciphers(
    list: Option<&[String]>,
    versions: &[TlsVersion],
) -> Result<Vec<String>, String> {
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

pub(super) fn paths(list: Option<Vec<String>>) -> Vec<PathBuf> {
    list.unwrap_or_default()
        .into_iter()
        .map(PathBuf::from)
        .collect()
}

/// Only TLS 1.2 and 1.3 can be enabled; the rest are refused with the reason.
pub(super) fn protocols(list: Option<&[String]>) -> Result<Vec<TlsVersion>, String> {
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

pub(super) fn alpn(list: Option<&[String]>) -> Result<Vec<Vec<u8>>, String> {
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
