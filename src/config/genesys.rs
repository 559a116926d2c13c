//! Genesys transport parameters ("tls=1;tls-mutual=1;certificate=…;
//! trusted-ca=…;tls-target-name-check=host;sec-protocol=TLSv12"), as a
//! connection or a server port carries them in Genesys Administrator
//! (Genesys Security Deployment Guide), translated into the route's own TLS
//! keys with Genesys's meaning (issue 19).
//!
//! A pure function of the string and the table as written: it fills the
//! raw table's keys, refuses a parameter that one of our own keys also
//! sets (naming both), and returns one line per parameter saying what it
//! became, which `check` prints. Validation then treats the result like
//! any table written by hand.

use super::ciphers;
use super::raw::{RawConnectTls, RawListenTls, RawVerify};

/// Parameters that say where, not how: the route's `listen` and `connect`
/// already say that, so they are accepted and left aside.
const NOT_TLS: &[&str] = &["port", "backup-port", "address"];

const KNOWN: &[&str] = &[
    "tls",
    "tls-mutual",
    "certificate",
    "certificate-key",
    "trusted-ca",
    "tls-target-name-check",
    "tls-crl",
    "sec-protocol",
    "cipher-list",
];

/// The parameters as written, each at most once.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Splits "name=value;name=value" and refuses unknown or repeated names.
    pub fn parse(text: &str) -> Result<Params, String> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for item in text.split(';').map(str::trim).filter(|i| !i.is_empty()) {
            let (name, value) = item
                .split_once('=')
                .ok_or_else(|| format!("\"{item}\" is not name=value"))?;
            let name = name.trim();
            if !KNOWN.contains(&name) && !NOT_TLS.contains(&name) {
                return Err(format!(
                    "unknown parameter \"{name}\": the TLS parameters are {}",
                    KNOWN.join(", ")
                ));
            }
            if pairs.iter().any(|(n, _)| n == name) {
                return Err(format!("parameter \"{name}\" is given twice"));
            }
            pairs.push((name.to_owned(), value.trim().to_owned()));
        }
        Ok(Params { pairs })
    }

    /// The value of parameter `name`, if given.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.get(name)
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sets `slot` to `value` unless our own key already set it.
fn set<T>(
    slot: &mut Option<T>,
    value: T,
    param: &str,
    ours: &str,
    what: &str,
) -> Result<(), String> {
    if slot.is_some() {
        return Err(format!(
            "`{param}` here and `{ours}` both set {what}: give it in one place"
        ));
    }
    *slot = Some(value);
    Ok(())
}

/// What the common parameters of either side become.
struct Common {
    protocols: Option<Vec<String>>,
    ciphers: Option<Vec<String>>,
}

/// The parameters both sides share, one step each: `tls`, `sec-protocol`,
/// `cipher-list`, and the ones that are not TLS settings.
fn common(p: &Params, notes: &mut Vec<String>) -> Result<Common, String> {
    match p.get("tls") {
        None => notes.push("tls not given: TLS is implied by the genesys key".into()),
        Some("1") => notes.push("tls=1 → TLS".into()),
        Some("0") => {
            return Err(
                "tls=0 turns TLS off: remove the genesys parameters for a plain connection".into(),
            )
        }
        Some(v) => return Err(format!("tls={v}: use tls=1")),
    }
    let protocols = protocols(p, notes)?;
    let ciphers = cipher_list(p, notes)?;
    for (name, value) in &p.pairs {
        if NOT_TLS.contains(&name.as_str()) {
            notes.push(format!(
                "{name}={value} ignored: not a TLS setting (the route's listen and connect say where)"
            ));
        }
    }
    Ok(Common { protocols, ciphers })
}

/// `sec-protocol` as `protocols`.
fn protocols(p: &Params, notes: &mut Vec<String>) -> Result<Option<Vec<String>>, String> {
    Ok(match p.get("sec-protocol") {
        None => None,
        Some(v @ ("" | "SSLv23")) => {
            notes.push(format!(
                "sec-protocol={v} → protocols = [\"TLSv1.3\", \"TLSv1.2\"] (the highest both sides have, from TLS 1.2)"
            ));
            Some(vec!["TLSv1.3".into(), "TLSv1.2".into()])
        }
        Some("TLSv12") => {
            notes.push("sec-protocol=TLSv12 → protocols = [\"TLSv1.2\"]".into());
            Some(vec!["TLSv1.2".into()])
        }
        Some("TLSv13") => {
            notes.push("sec-protocol=TLSv13 → protocols = [\"TLSv1.3\"]".into());
            Some(vec!["TLSv1.3".into()])
        }
        Some(v @ ("TLSv1" | "TLSv11")) => {
            return Err(format!(
                "sec-protocol={v} is refused: TLS 1.0 and 1.1 are deprecated (RFC 8996); use TLSv12, TLSv13, or SSLv23 (or empty) for both"
            ))
        }
        Some(v @ ("SSLv3" | "SSLv2")) => {
            return Err(format!(
                "sec-protocol={v} is refused: SSL is broken (RFC 7568, RFC 6176); use TLSv12, TLSv13, or SSLv23 (or empty) for both"
            ))
        }
        Some(v) => {
            return Err(format!(
                "sec-protocol={v} is unknown: use TLSv12, TLSv13, or SSLv23 (or empty) for both"
            ))
        }
    })
}

/// `cipher-list` as `ciphers`: OpenSSL's names, each version without a
/// suite named keeping all of its own.
fn cipher_list(p: &Params, notes: &mut Vec<String>) -> Result<Option<Vec<String>>, String> {
    Ok(match p.get("cipher-list") {
        None => None,
        Some(list) => {
            let mut out: Vec<String> = Vec::new();
            for name in list
                .split([':', ',', ' '])
                .map(str::trim)
                .filter(|n| !n.is_empty())
            {
                let s = ciphers::suite(name).map_err(|m| format!("cipher-list: {m}"))?;
                if !out.iter().any(|o| o == s) {
                    out.push(s.to_owned());
                }
            }
            if out.is_empty() {
                return Err("cipher-list is empty: name suites or leave it out".into());
            }
            notes.push(format!("cipher-list → ciphers = {out:?}"));
            // As in OpenSSL, the list restricts the versions it names
            // suites of; the other version keeps its default suites.
            for (tls13, version) in [(true, "TLS 1.3"), (false, "TLS 1.2")] {
                if !out.iter().any(|s| ciphers::is_tls13(s) == tls13) {
                    notes.push(format!(
                        "cipher-list names no {version} suite: {version} keeps all its suites"
                    ));
                    out.extend(
                        ciphers::SUITES
                            .iter()
                            .map(|(r, _, _)| *r)
                            .filter(|r| ciphers::is_tls13(r) == tls13)
                            .map(str::to_owned),
                    );
                }
            }
            Some(out)
        }
    })
}

/// `certificate` as Genesys allows it: one file, or a comma-separated chain
/// (leaf first).
fn certificate(v: &str) -> Result<(String, Vec<String>), String> {
    let mut files = v.split(',').map(str::trim).filter(|f| !f.is_empty());
    let first = files
        .next()
        .ok_or("certificate is empty: give the certificate file")?;
    Ok((first.to_owned(), files.map(str::to_owned).collect()))
}

/// Translates the connect side's parameters into `t`.
pub fn connect(text: &str, t: &mut RawConnectTls) -> Result<Vec<String>, String> {
    let p = Params::parse(text)?;
    let mut notes = Vec::new();
    let c = common(&p, &mut notes)?;
    match p.get("tls-target-name-check") {
        Some("host") => {
            set(
                &mut t.verify,
                RawVerify::Full,
                "tls-target-name-check",
                "connect_tls.verify",
                "how the peer is verified",
            )?;
            notes.push("tls-target-name-check=host → verify = \"full\"".into());
            // Genesys (Java, OpenSSL) checks the CN when the certificate
            // has no DNS subjectAltName: so does the route, unless the
            // config says otherwise.
            if t.name_check_cn_fallback.is_none() {
                t.name_check_cn_fallback = Some(true);
                notes.push(
                    "tls-target-name-check=host → name_check_cn_fallback = true (a certificate without a DNS subjectAltName is checked by its CN, as Genesys does)"
                        .into(),
                );
            }
        }
        Some(v @ ("no" | "")) => {
            set(
                &mut t.verify,
                RawVerify::Chain,
                "tls-target-name-check",
                "connect_tls.verify",
                "how the peer is verified",
            )?;
            notes.push(format!("tls-target-name-check={v} → verify = \"chain\""));
        }
        Some(v) => return Err(format!("tls-target-name-check={v}: use host or no")),
        None if t.verify.is_none() => {
            t.verify = Some(RawVerify::Chain);
            notes.push(
                "no tls-target-name-check=host → verify = \"chain\" (Genesys checks the host name only when asked)"
                    .into(),
            );
        }
        None => {}
    }
    identity(
        &p,
        "connect_tls",
        "client",
        (&mut t.cert, &mut t.key, &mut t.genesys_chain),
        &mut notes,
    )?;
    match p.get("tls-mutual") {
        Some("1") if t.cert.is_none() => {
            return Err("tls-mutual=1 needs certificate: the identity to present".into())
        }
        Some("1") => notes.push("tls-mutual=1 → the certificate is presented (mutual TLS)".into()),
        Some("0") | None => {}
        Some(v) => return Err(format!("tls-mutual={v}: use 0 or 1")),
    }
    if let Some(v) = p.get("trusted-ca") {
        set(
            &mut t.ca,
            v.to_owned(),
            "trusted-ca",
            "connect_tls.ca",
            "the trusted CA",
        )?;
        notes.push(format!("trusted-ca → ca = {v:?}"));
    }
    revocation_and_suites(
        &p,
        c,
        "connect_tls",
        (&mut t.crl, &mut t.protocols, &mut t.ciphers),
        &mut notes,
    )?;
    Ok(notes)
}

/// Translates a server port's parameters into `t`.
pub fn listen(text: &str, t: &mut RawListenTls) -> Result<Vec<String>, String> {
    let p = Params::parse(text)?;
    let mut notes = Vec::new();
    let c = common(&p, &mut notes)?;
    if p.get("tls-target-name-check").is_some() {
        return Err(
            "tls-target-name-check is about the server a connection reaches; a listening port has none"
                .into(),
        );
    }
    identity(
        &p,
        "listen_tls",
        "server",
        (&mut t.cert, &mut t.key, &mut t.genesys_chain),
        &mut notes,
    )?;
    let mutual = match p.get("tls-mutual") {
        Some("1") => true,
        Some("0") | None => false,
        Some(v) => return Err(format!("tls-mutual={v}: use 0 or 1")),
    };
    match (mutual, p.get("trusted-ca")) {
        (true, Some(ca)) => {
            set(
                &mut t.client_ca,
                ca.to_owned(),
                "trusted-ca",
                "listen_tls.client_ca",
                "the CA of client certificates",
            )?;
            notes.push(format!(
                "tls-mutual=1, trusted-ca → client_ca = {ca:?} (clients must present a certificate it signed)"
            ));
        }
        (true, None) if t.client_ca.is_some() => {
            notes.push("tls-mutual=1 → client certificates checked against client_ca".into())
        }
        (true, None) => {
            return Err(
                "tls-mutual=1 needs trusted-ca: the CA that signs the clients' certificates".into(),
            )
        }
        (false, Some(ca)) => notes.push(format!(
            "trusted-ca={ca} not used: without tls-mutual=1 a server port asks no client certificate"
        )),
        (false, None) => {}
    }
    if p.get("tls-crl").is_some() && !mutual {
        return Err("tls-crl checks client certificates: it needs tls-mutual=1".into());
    }
    revocation_and_suites(
        &p,
        c,
        "listen_tls",
        (&mut t.crl, &mut t.protocols, &mut t.ciphers),
        &mut notes,
    )?;
    Ok(notes)
}

/// `tls-crl`, `sec-protocol` and `cipher-list`, the same on either side:
/// `side` names our table; the slots are its crl, protocols and ciphers.
fn revocation_and_suites(
    p: &Params,
    c: Common,
    side: &str,
    (crl, protocols, ciphers): (Lists, Lists, Lists),
    notes: &mut Vec<String>,
) -> Result<(), String> {
    let ours = |key: &str| format!("{side}.{key}");
    if let Some(v) = p.get("tls-crl") {
        let what = "the revocation list";
        set(crl, vec![v.to_owned()], "tls-crl", &ours("crl"), what)?;
        notes.push(format!("tls-crl → crl = [{v:?}]"));
    }
    if let Some(list) = c.protocols {
        let what = "the protocol versions";
        set(protocols, list, "sec-protocol", &ours("protocols"), what)?;
    }
    if let Some(list) = c.ciphers {
        let what = "the cipher suites";
        set(ciphers, list, "cipher-list", &ours("ciphers"), what)?;
    }
    Ok(())
}

/// A table's list slot that a Genesys parameter may fill.
type Lists<'a> = &'a mut Option<Vec<String>>;

/// `certificate` and `certificate-key`, the same on either side: `side`
/// names our keys (`connect_tls`, `listen_tls`), `whose` the identity
/// ("client", "server"); the slots are the side's cert, key and chain.
fn identity(
    p: &Params,
    side: &str,
    whose: &str,
    (cert_slot, key_slot, chain_slot): (&mut Option<String>, &mut Option<String>, &mut Vec<String>),
    notes: &mut Vec<String>,
) -> Result<(), String> {
    if let Some(v) = p.get("certificate") {
        let (cert, chain) = certificate(v)?;
        set(
            cert_slot,
            cert.clone(),
            "certificate",
            &format!("{side}.cert"),
            &format!("the {whose} certificate"),
        )?;
        notes.push(chain_note(&cert, &chain));
        *chain_slot = chain;
    }
    if let Some(v) = p.get("certificate-key") {
        set(
            key_slot,
            v.to_owned(),
            "certificate-key",
            &format!("{side}.key"),
            &format!("the {whose} key"),
        )?;
        notes.push(format!("certificate-key → key = {v:?}"));
    }
    Ok(())
}

fn chain_note(cert: &str, chain: &[String]) -> String {
    if chain.is_empty() {
        format!("certificate → cert = {cert:?}")
    } else {
        format!("certificate → cert = {cert:?}, then the chain {chain:?}")
    }
}
