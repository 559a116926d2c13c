//! Client identity rules (`listen_tls.allow`): which verified client
//! certificates may connect. The matcher is pure — an [`Identity`] read from
//! a certificate against an [`Allow`] list — and [`AllowList`] wraps the
//! route's chain verifier with it, so a client that matches no entry is
//! refused inside the handshake with the `access_denied` alert
//! (rustls sends it for `CertificateError::ApplicationVerificationFailure`).
//!
//! A TLS 1.3 client sends its certificate after the server's Finished, so to
//! the client the refusal arrives just after its side of the handshake.

use std::cell::RefCell;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, Error};
use x509_parser::extensions::GeneralName;

use super::names::name_matches;
use crate::config::Allow;

/// What a client certificate says about who it is: subjectAltName entries,
/// then the subject's CN and OU values. Text as presented (attacker-chosen:
/// show it only through `Display`, which escapes it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    pub dns: Vec<String>,
    pub uri: Vec<String>,
    pub ip: Vec<IpAddr>,
    pub email: Vec<String>,
    pub cn: Vec<String>,
    pub ou: Vec<String>,
}

impl Identity {
    /// Reads the names of a DER certificate; `None` if it is not one.
    pub fn of(der: &[u8]) -> Option<Identity> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let mut id = Identity::default();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(d) => id.dns.push((*d).to_owned()),
                    GeneralName::URI(u) => id.uri.push((*u).to_owned()),
                    GeneralName::RFC822Name(e) => id.email.push((*e).to_owned()),
                    GeneralName::IPAddress(b) => id.ip.extend(ip_from(b)),
                    _ => {}
                }
            }
        }
        let text =
            |a: &x509_parser::x509::AttributeTypeAndValue<'_>| a.as_str().ok().map(str::to_owned);
        id.cn = cert.subject().iter_common_name().filter_map(text).collect();
        id.ou = cert
            .subject()
            .iter_organizational_unit()
            .filter_map(text)
            .collect();
        Some(id)
    }
}

fn ip_from(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => <[u8; 4]>::try_from(b).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(b).ok().map(IpAddr::from),
        _ => None,
    }
}

/// The entry of an allow list that let a client in, for the debug log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    pub kind: &'static str,
    pub entry: String,
}

/// Does `allow` let `id` in? SAN kinds are tried first (dns, uri, ip,
/// email), then the subject (cn, ou); the first entry that matches is
/// returned. A DNS entry `*.example.com` covers exactly one label
/// (`a.example.com`, not `a.b.example.com` nor `example.com`); names
/// compare without regard to ASCII case, as do email addresses. URIs (SPIFFE
/// IDs), CN and OU compare exactly.
pub fn permits(allow: &Allow, id: &Identity) -> Option<Matched> {
    let hit = |kind: &'static str, entry: &str| {
        Some(Matched {
            kind,
            entry: entry.to_owned(),
        })
    };
    for pattern in &allow.dns {
        if id
            .dns
            .iter()
            .any(|d| name_matches(pattern, d.trim_end_matches('.')))
        {
            return hit("dns", pattern);
        }
    }
    for uri in &allow.uri {
        if id.uri.iter().any(|u| u == uri) {
            return hit("uri", uri);
        }
    }
    for ip in &allow.ip {
        if id.ip.contains(ip) {
            return hit("ip", &ip.to_string());
        }
    }
    for email in &allow.email {
        if id.email.iter().any(|e| e.eq_ignore_ascii_case(email)) {
            return hit("email", email);
        }
    }
    for cn in &allow.cn {
        if id.cn.contains(cn) {
            return hit("cn", cn);
        }
    }
    for ou in &allow.ou {
        if id.ou.contains(ou) {
            return hit("ou", ou);
        }
    }
    None
}

/// At most this many names, of at most this many characters each, are
/// shown of one identity: a certificate can carry thousands.
const SHOW_NAMES: usize = 8;
const SHOW_CHARS: usize = 96;

/// `dns="a.example.com" uri="spiffe://…" cn="…"`: every value quoted with
/// control, quote, backslash and non-ASCII characters escaped, so that a
/// name cannot forge log lines or fields; long values and long lists cut.
impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ips: Vec<String> = self.ip.iter().map(|i| i.to_string()).collect();
        let all = [
            ("dns", &self.dns),
            ("uri", &self.uri),
            ("ip", &ips),
            ("email", &self.email),
            ("cn", &self.cn),
            ("ou", &self.ou),
        ];
        let total: usize = all.iter().map(|(_, v)| v.len()).sum();
        if total == 0 {
            return f.write_str("no names (no subjectAltName, CN or OU)");
        }
        let mut shown = 0;
        for (kind, values) in all {
            for v in values.iter() {
                if shown == SHOW_NAMES {
                    return write!(f, " (+{} more)", total - shown);
                }
                if shown > 0 {
                    f.write_str(" ")?;
                }
                write!(f, "{kind}=\"{}\"", sanitize(v))?;
                shown += 1;
            }
        }
        Ok(())
    }
}

/// `s` cut to [`SHOW_CHARS`] and escaped (`\n`, `\"`, `\u{…}`).
pub fn sanitize(s: &str) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i == SHOW_CHARS {
            out.push('…');
            break;
        }
        if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
            out.push(c);
        } else {
            out.extend(c.escape_default());
        }
    }
    out
}

thread_local! {
    /// The identity the allow list just refused on this thread. rustls calls
    /// the verifier inside `process_new_packets`, which tokio-rustls calls
    /// within the poll of the accept future, and that same poll returns the
    /// error: so the connection whose handshake failed takes the refusal
    /// ([`take_refusal`]) on the thread that recorded it, with no await in
    /// between. The rustls error itself has no room for the names.
    static REFUSED: RefCell<Option<Identity>> = const { RefCell::new(None) };
}

/// The identity the allow list refused in the handshake that just failed on
/// this thread, if that is why it failed.
pub fn take_refusal() -> Option<Identity> {
    REFUSED.with(|r| r.borrow_mut().take())
}

/// A route's client verifier with its allow list: the chain is verified by
/// `inner` (WebPKI, with CRLs), then the identity must match an entry.
#[derive(Debug)]
pub struct AllowList {
    pub inner: Arc<dyn ClientCertVerifier>,
    pub allow: Allow,
}

impl ClientCertVerifier for AllowList {
    delegate_client_auth!(inner);

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let id = Identity::of(end_entity)
            .ok_or(Error::InvalidCertificate(CertificateError::BadEncoding))?;
        match permits(&self.allow, &id) {
            Some(m) => {
                tracing::trace!(kind = m.kind, entry = %sanitize(&m.entry), "client identity allowed");
                Ok(verified)
            }
            None => {
                REFUSED.with(|r| *r.borrow_mut() = Some(id));
                Err(Error::InvalidCertificate(
                    CertificateError::ApplicationVerificationFailure,
                ))
            }
        }
    }

    delegate_signatures!(inner);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::Ca;

    fn id() -> Identity {
        Identity {
            dns: vec!["node1.gms.example.com".into()],
            uri: vec!["spiffe://example.org/gms".into()],
            ip: vec!["10.0.0.7".parse().unwrap()],
            email: vec!["Ops@Example.com".into()],
            cn: vec!["GMS node 1".into()],
            ou: vec!["Genesys".into()],
        }
    }

    fn allow(f: impl FnOnce(&mut Allow)) -> Allow {
        let mut a = Allow::default();
        f(&mut a);
        a
    }

    fn kind(a: &Allow, id: &Identity) -> Option<&'static str> {
        permits(a, id).map(|m| m.kind)
    }

    #[test]
    fn each_kind_matches_its_own_names() {
        let id = id();
        let cases: [(Allow, &str); 6] = [
            (
                allow(|a| a.dns = vec!["node1.gms.example.com".into()]),
                "dns",
            ),
            (
                allow(|a| a.uri = vec!["spiffe://example.org/gms".into()]),
                "uri",
            ),
            (allow(|a| a.ip = vec!["10.0.0.7".parse().unwrap()]), "ip"),
            (allow(|a| a.email = vec!["ops@example.com".into()]), "email"),
            (allow(|a| a.cn = vec!["GMS node 1".into()]), "cn"),
            (allow(|a| a.ou = vec!["Genesys".into()]), "ou"),
        ];
        for (a, want) in cases {
            assert_eq!(kind(&a, &id), Some(want));
        }
    }

    #[test]
    fn a_name_of_one_kind_does_not_match_another_kind() {
        let id = Identity {
            cn: vec!["node1.gms.example.com".into()],
            ..Identity::default()
        };
        assert_eq!(
            kind(
                &allow(|a| a.dns = vec!["node1.gms.example.com".into()]),
                &id
            ),
            None
        );
        let id = Identity {
            dns: vec!["10.0.0.7".into()],
            ..Identity::default()
        };
        assert_eq!(
            kind(&allow(|a| a.ip = vec!["10.0.0.7".parse().unwrap()]), &id),
            None
        );
    }

    #[test]
    fn a_dns_wildcard_covers_exactly_one_leftmost_label() {
        let a = allow(|a| a.dns = vec!["*.gms.example.com".into()]);
        let with = |d: &str| Identity {
            dns: vec![d.into()],
            ..Identity::default()
        };
        assert_eq!(kind(&a, &with("node1.gms.example.com")), Some("dns"));
        assert_eq!(kind(&a, &with("NODE1.GMS.example.com")), Some("dns"));
        assert_eq!(kind(&a, &with("node1.gms.example.com.")), Some("dns"));
        assert_eq!(kind(&a, &with("a.node1.gms.example.com")), None);
        assert_eq!(kind(&a, &with("gms.example.com")), None);
        assert_eq!(kind(&a, &with("node1.gms.example.com.evil")), None);
        assert_eq!(kind(&a, &with("node1-gms.example.com")), None);
    }

    #[test]
    fn uris_compare_exactly_so_a_spiffe_id_is_not_a_prefix() {
        let a = allow(|a| a.uri = vec!["spiffe://example.org/gms".into()]);
        let with = |u: &str| Identity {
            uri: vec![u.into()],
            ..Identity::default()
        };
        assert_eq!(kind(&a, &with("spiffe://example.org/gms")), Some("uri"));
        assert_eq!(kind(&a, &with("spiffe://example.org/gms/admin")), None);
        assert_eq!(kind(&a, &with("spiffe://example.org/GMS")), None);
        assert_eq!(kind(&a, &with("spiffe://evil.org/gms")), None);
    }

    #[test]
    fn san_entries_are_tried_before_the_subject() {
        let a = allow(|a| {
            a.cn = vec!["GMS node 1".into()];
            a.uri = vec!["spiffe://example.org/gms".into()];
        });
        assert_eq!(
            permits(&a, &id()),
            Some(Matched {
                kind: "uri",
                entry: "spiffe://example.org/gms".into()
            })
        );
    }

    #[test]
    fn an_identity_matching_no_entry_is_refused() {
        let a = allow(|a| {
            a.dns = vec!["*.web.example.com".into()];
            a.cn = vec!["GMS node 2".into()];
            a.ou = vec!["genesys".into()];
        });
        assert_eq!(permits(&a, &id()), None);
        assert_eq!(permits(&a, &Identity::default()), None);
    }

    #[test]
    fn an_identity_is_shown_escaped_and_cut() {
        let id = Identity {
            dns: vec!["a.example.com".into()],
            cn: vec!["evil\" route=\"x\nINFO forged \u{1b}[31m é".into()],
            ..Identity::default()
        };
        assert_eq!(
            id.to_string(),
            r#"dns="a.example.com" cn="evil\" route=\"x\nINFO forged \u{1b}[31m \u{e9}""#
        );
        let many = Identity {
            dns: (0..20).map(|i| format!("n{i}.example.com")).collect(),
            ..Identity::default()
        };
        let shown = many.to_string();
        assert!(
            shown.ends_with("dns=\"n7.example.com\" (+12 more)"),
            "{shown}"
        );
        let long = sanitize(&"x".repeat(500));
        assert_eq!(long.chars().count(), SHOW_CHARS + 1);
        assert_eq!(
            Identity::default().to_string(),
            "no names (no subjectAltName, CN or OU)"
        );
    }

    #[test]
    fn the_names_are_read_from_a_real_certificate() {
        let ca = Ca::new("Test CA");
        let leaf = ca.leaf_named(
            "GMS node 1",
            Some("Genesys"),
            &[
                "node1.gms.example.com",
                "10.0.0.7",
                "spiffe://example.org/gms",
                "ops@example.com",
            ],
        );
        let id = Identity::of(&leaf.cert_der).unwrap();
        assert_eq!(id.dns, ["node1.gms.example.com"]);
        assert_eq!(id.ip, ["10.0.0.7".parse::<IpAddr>().unwrap()]);
        assert_eq!(id.uri, ["spiffe://example.org/gms"]);
        assert_eq!(id.email, ["ops@example.com"]);
        assert_eq!(id.cn, ["GMS node 1"]);
        assert_eq!(id.ou, ["Genesys"]);
        assert_eq!(Identity::of(b"not a certificate"), None);
    }
}
