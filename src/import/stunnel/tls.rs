//! A service's TLS options as `[route.connect_tls]` (`client = yes`) or
//! `[route.listen_tls]` (`client = no`), following stunnel's `verify.c`:
//! with neither `verifyChain` nor `verifyPeer` nothing is checked (the
//! `check*` options included); `verifyChain` checks the chain against
//! `CAfile`/`CApath`, and the name only when `checkHost`/`checkIP` say
//! which; `verifyPeer` wants the peer's own certificate in `CAfile`.

use super::model::{Settings, Version};
use super::route::Route;
use super::{Pins, StunnelError};
use crate::config::ciphers;
use crate::import::{secret_path, toml, Secret};
use crate::tls::keystore::Password;

/// Where the system's trust store lives on Debian and its kin: `CApath`
/// naming it means "the OS trust store".
const SYSTEM_CA_DIRS: &[&str] = &["/etc/ssl/certs", "/etc/ssl/certs/", "/etc/pki/tls/certs"];

/// `[route.connect_tls]`: how the upstream is verified, and our side.
pub(super) fn connect_tls(s: &Settings, r: &mut Route, pins: Pins<'_>) -> Result<(), StunnelError> {
    checks_need_verification(s, r)?;
    match (s.verify_chain, s.verify_peer) {
        (false, false) => no_verify(s, r),
        (_, true) => pinned(s, r, pins)?,
        (true, false) => chain(s, r)?,
    }
    if s.require_cert {
        r.untranslated
            .push("requireCert = yes: a server always presents a certificate".into());
    }
    cert_key(s, r)?;
    crl(s, r)?;
    versions_and_suites(s, r)
}

fn no_verify(s: &Settings, r: &mut Route) {
    r.tls(
        "verify = \"none\"",
        "verifyChain = no, verifyPeer = no → verify = \"none\" (stunnel checks nothing either)",
    );
    for (k, v) in [("CAfile", &s.ca_file), ("CApath", &s.ca_path)] {
        if let Some(v) = v {
            r.untranslated.push(format!(
                "{k} = {v}: not used without verifyChain or verifyPeer"
            ));
        }
    }
    sni_only(s, r);
}

/// `sni` where the route verifies no name: it is only what is sent.
fn sni_only(s: &Settings, r: &mut Route) {
    match s.sni.as_deref() {
        Some("") => r.untranslated.push(
            "sni = (empty): SNI cannot be turned off; the route sends the connect host's name"
                .into(),
        ),
        Some(n) => r.tls(
            &format!("server_name = {}", toml::string(n)),
            &format!("sni = {n} → server_name = {n:?} (sent as SNI)"),
        ),
        None => {}
    }
}

/// `checkHost`, `checkIP`, `checkEmail` without `verifyChain` or
/// `verifyPeer`: stunnel refuses to start (`options.c`), and so does this.
fn checks_need_verification(s: &Settings, r: &Route) -> Result<(), StunnelError> {
    if s.verify_chain || s.verify_peer {
        return Ok(());
    }
    for (key, name, list) in [
        ("checkhost", "checkHost", &s.check_host),
        ("checkip", "checkIP", &s.check_ip),
        ("checkemail", "checkEmail", &s.check_email),
    ] {
        if let Some(v) = list.first() {
            return Err(r.at(s, key).error(format!(
                "{name} = {v} without verifyChain or verifyPeer: stunnel refuses this too (\"Either verifyChain or verifyPeer has to be enabled\")"
            )));
        }
    }
    Ok(())
}

/// `verifyPeer`: the peer's own certificate must be in `CAfile`: pinned by
/// the SHA-256 of each certificate's public key.
fn pinned(s: &Settings, r: &mut Route, pins: Pins<'_>) -> Result<(), StunnelError> {
    let at = r.at(s, "verifypeer");
    if let Some(dir) = &s.ca_path {
        return Err(r.at(s, "capath").error(format!(
            "CApath = {dir} with verifyPeer: give the peers' certificates in one CAfile, which the route pins"
        )));
    }
    let Some(file) = &s.ca_file else {
        return Err(at.error(
            "verifyPeer = yes without CAfile: stunnel needs the peers' certificates there too",
        ));
    };
    let list = pins(file).map_err(|m| r.at(s, "cafile").error(format!("CAfile = {file}: {m}")))?;
    r.tls(
        "verify = \"pin\"",
        &format!("verifyPeer = yes, CAfile = {file} → verify = \"pin\" with the key of each of its {} certificates", list.len()),
    );
    r.tls_line(format!("pins = {}", toml::strings(&list)));
    if s.verify_chain {
        r.untranslated.push(
            "verifyChain = yes beside verifyPeer: the pinned certificate is trusted as itself (its chain and dates are not checked)".into(),
        );
    }
    if !(s.check_host.is_empty() && s.check_ip.is_empty() && s.check_email.is_empty()) {
        r.untranslated.push(
            "checkHost/checkIP/checkEmail: a pinned certificate is one certificate; its names are not checked".into(),
        );
    }
    sni_only(s, r);
    Ok(())
}

/// `verifyChain` on the connect side: the trust anchors, then the name.
fn chain(s: &Settings, r: &mut Route) -> Result<(), StunnelError> {
    trust(s, r, "ca")?;
    if let Some(e) = s.check_email.first() {
        return Err(r.at(s, "checkemail").error(format!(
            "checkEmail = {e} on a client service: the route checks a server by its DNS name or IP address (checkHost, checkIP)"
        )));
    }
    let names: Vec<&String> = s.check_host.iter().chain(&s.check_ip).collect();
    let Some(name) = names.first() else {
        r.tls(
            "verify = \"chain\"",
            "verifyChain = yes without checkHost/checkIP → verify = \"chain\" (the name is not checked, as in stunnel)",
        );
        sni_only(s, r);
        return Ok(());
    };
    if let Some(sni) = s
        .sni
        .as_deref()
        .filter(|n| !n.is_empty() && *n != name.as_str())
    {
        return Err(r.at(s, "sni").error(format!(
            "sni = {sni} and checkHost/checkIP = {name} differ: the route sends as SNI the name it verifies; make them one"
        )));
    }
    r.tls(
        "verify = \"full\"",
        "verifyChain = yes with checkHost/checkIP → verify = \"full\"",
    );
    r.tls(
        &format!("server_name = {}", toml::string(name)),
        &format!("checkHost/checkIP = {name} → server_name = {name:?} (verified, and sent as SNI)"),
    );
    for other in &names[1..] {
        r.untranslated.push(format!(
            "checkHost/checkIP = {other}: the route verifies one name ({name}); a server with only this one is refused"
        ));
    }
    Ok(())
}

/// `CAfile`/`CApath` as the trust anchors under `key` (`ca`, `client_ca`).
fn trust(s: &Settings, r: &mut Route, key: &str) -> Result<(), StunnelError> {
    let system = s
        .ca_path
        .as_deref()
        .is_some_and(|p| SYSTEM_CA_DIRS.contains(&p));
    if let (Some(dir), false) = (&s.ca_path, system) {
        return Err(r.at(s, "capath").error(format!(
            "CApath = {dir}: the route reads its trust anchors from one file: concatenate the directory's certificates (cat {dir}/*.pem > ca.pem) and give CAfile"
        )));
    }
    match (&s.ca_file, system) {
        (Some(f), _) => {
            r.tls(
                &format!("{key} = {}", toml::string(f)),
                &format!("CAfile = {f} → {key} = {f:?}"),
            );
            if system {
                r.untranslated.push(format!(
                    "CApath = {}: the OS trust store beside CAfile is not added; only CAfile's anchors are trusted",
                    s.ca_path.as_deref().unwrap_or_default()
                ));
            }
        }
        (None, true) if key == "ca" => r.notes.push(format!(
            "CApath = {} (the system's) → no ca: the OS trust store",
            s.ca_path.as_deref().unwrap_or_default()
        )),
        (None, true) => {
            return Err(r.at(s, "capath").error(
                "CApath = the system store for client certificates: give the clients' CA in CAfile",
            ))
        }
        (None, false) => {
            return Err(r
                .at(s, "verifychain")
                .error("verifyChain = yes without CAfile or CApath (stunnel refuses this too)"))
        }
    }
    Ok(())
}

/// `[route.listen_tls]`: our certificate, and who may connect.
pub(super) fn listen_tls(s: &Settings, r: &mut Route) -> Result<(), StunnelError> {
    checks_need_verification(s, r)?;
    if s.cert.is_none() {
        return Err(r
            .at(s, "accept")
            .error("a server service (client = no) needs cert"));
    }
    cert_key(s, r)?;
    if let Some(sni) = &s.sni {
        return Err(r.at(s, "sni").error(format!(
            "sni = {sni} in a server service (a secondary service by name): not translated; serve the names from one route with listen_tls.certs"
        )));
    }
    if s.verify_peer {
        return Err(r.at(s, "verifypeer").error(
            "verifyPeer = yes in a server service: clients are checked against their CA (verifyChain with CAfile, and checkHost/checkIP/checkEmail for who)",
        ));
    }
    if s.verify_chain {
        clients(s, r)?;
    } else if s.require_cert {
        return Err(r.at(s, "requirecert").error(
            "requireCert = yes without verifyChain: stunnel takes any client certificate; the route verifies every certificate it asks for (add verifyChain and CAfile)",
        ));
    } else {
        for (k, v) in [("CAfile", &s.ca_file), ("CApath", &s.ca_path)] {
            if let Some(v) = v {
                r.untranslated.push(format!(
                    "{k} = {v}: not used, no client certificate is asked for"
                ));
            }
        }
    }
    crl(s, r)?;
    versions_and_suites(s, r)
}

/// Client certificates: required, under `CAfile`, from whom `check*` say.
fn clients(s: &Settings, r: &mut Route) -> Result<(), StunnelError> {
    trust(s, r, "client_ca")?;
    if !s.require_cert {
        r.untranslated.push(
            "requireCert = no (verify = 1): the route asks for a client certificate only to require it; clients without one are refused".into(),
        );
    }
    let mut allow = Vec::new();
    for (kind, list) in [
        ("dns", &s.check_host),
        ("ip", &s.check_ip),
        ("email", &s.check_email),
    ] {
        if !list.is_empty() {
            allow.push(format!("{kind} = {}", toml::strings(list)));
        }
    }
    if !allow.is_empty() {
        r.tls(
            &format!("allow = {{ {} }}", allow.join(", ")),
            "checkHost/checkIP/checkEmail → allow (a verified client must have one of them)",
        );
    }
    Ok(())
}

/// `cert` and `key`; a PKCS#12 `cert` (`.p12`, `.pfx`, as stunnel tells it)
/// with the empty password stunnel tries first, in a 0600 file.
fn cert_key(s: &Settings, r: &mut Route) -> Result<(), StunnelError> {
    let Some(cert) = &s.cert else {
        if let Some(k) = &s.key {
            r.untranslated
                .push(format!("key = {k}: not used without cert"));
        }
        return Ok(());
    };
    r.tls(
        &format!("cert = {}", toml::string(cert)),
        &format!("cert = {cert} → cert"),
    );
    let lower = cert.to_ascii_lowercase();
    if lower.ends_with(".p12") || lower.ends_with(".pfx") {
        let suffix = format!(".{}.p12.password", r.name);
        r.tls(
            &format!("password_file = {}", toml::string(&secret_path(&suffix))),
            &format!("cert is PKCS#12 → password_file = CONFIG{suffix} (mode 0600), empty as stunnel tries first: write the password there if it has one"),
        );
        r.secrets.push(Secret {
            suffix,
            password: Password::new(""),
        });
        return Ok(());
    }
    let key = s.key.as_deref().unwrap_or(cert);
    r.tls(
        &format!("key = {}", toml::string(key)),
        &if s.key.is_some() {
            format!("key = {key} → key")
        } else {
            "no key: stunnel reads the key from cert's file → key = cert".into()
        },
    );
    Ok(())
}

fn crl(s: &Settings, r: &mut Route) -> Result<(), StunnelError> {
    if let Some(dir) = &s.crl_path {
        return Err(r.at(s, "crlpath").error(format!(
            "CRLpath = {dir}: the route reads CRLs from files: give CRLfile (cat {dir}/*.r* > crl.pem)"
        )));
    }
    if let Some(f) = &s.crl_file {
        r.tls(
            &format!("crl = [{}]", toml::string(f)),
            &format!("CRLfile = {f} → crl"),
        );
    }
    if s.ocsp_aia {
        r.untranslated.push(
            "OCSPaia = yes: the route asks no OCSP responder; it checks revocation with CRLs only (give CRLfile, as crl)".into(),
        );
    }
    Ok(())
}

/// `sslVersion*`, `ciphers`, `ciphersuites`, `curves`.
fn versions_and_suites(s: &Settings, r: &mut Route) -> Result<(), StunnelError> {
    let lo = s.version_min.unwrap_or(Version::Tls1);
    let hi = s.version_max.unwrap_or(Version::Tls13);
    let versions: Vec<Version> = [Version::Tls13, Version::Tls12]
        .into_iter()
        .filter(|v| (lo..=hi).contains(v))
        .collect();
    if versions.is_empty() {
        let key = ["sslversionmax", "sslversionmin", "sslversion"]
            .into_iter()
            .find(|k| s.at.contains_key(k))
            .unwrap_or("sslversion");
        return Err(r.at(s, key).error(
            "the versions allowed are all older than TLSv1.2, which is the oldest the route speaks",
        ));
    }
    let names: Vec<&str> = versions
        .iter()
        .map(|v| {
            if *v == Version::Tls13 {
                "TLSv1.3"
            } else {
                "TLSv1.2"
            }
        })
        .collect();
    r.tls(
        &format!("protocols = {}", toml::strings(&names)),
        &format!(
            "sslVersionMin = {}, sslVersionMax = {} → protocols = {names:?}{}",
            lo.name(),
            hi.name(),
            if lo < Version::Tls12 {
                " (TLSv1 and TLSv1.1 are refused by tls-sidecar)"
            } else {
                ""
            }
        ),
    );
    let t12 = suites(s.ciphers.as_deref(), "ciphers", false, r);
    let t13 = suites(s.ciphersuites.as_deref(), "ciphersuites", true, r);
    if t12.is_some() || t13.is_some() {
        let all = |tls13: bool| {
            ciphers::SUITES
                .iter()
                .map(|(n, _, _)| *n)
                .filter(|n| ciphers::is_tls13(n) == tls13)
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        let mut list = t13.unwrap_or_else(|| all(true));
        list.extend(t12.unwrap_or_else(|| all(false)));
        r.tls_line(format!("ciphers = {}", toml::strings(&list)));
    }
    if let Some(c) = &s.curves {
        r.untranslated.push(format!(
            "curves = {c}: rustls offers its own groups (X25519, P-256, P-384)"
        ));
    }
    Ok(())
}

/// The suites of one colon-separated list that rustls offers; `None` when
/// there is no list or nothing in it is one (rules such as `HIGH:!aNULL`).
fn suites(list: Option<&str>, key: &str, tls13: bool, r: &mut Route) -> Option<Vec<String>> {
    let list = list?;
    let mut kept = Vec::new();
    let mut left = Vec::new();
    for name in list.split(':').map(str::trim).filter(|n| !n.is_empty()) {
        match ciphers::suite(name) {
            Ok(n) if ciphers::is_tls13(n) == tls13 => kept.push(n.to_owned()),
            _ => left.push(name),
        }
    }
    if !left.is_empty() {
        r.untranslated.push(format!(
            "{key}: {} not a suite rustls offers for {} (rules and non-AEAD suites have no equivalent)",
            left.join(":"),
            if tls13 { "TLSv1.3" } else { "TLSv1.2" }
        ));
    }
    if kept.is_empty() {
        r.untranslated.push(format!(
            "{key} = {list}: nothing left to list; rustls's own suites are used"
        ));
        return None;
    }
    r.notes
        .push(format!("{key} → ciphers: {}", kept.join(", ")));
    Some(kept)
}
