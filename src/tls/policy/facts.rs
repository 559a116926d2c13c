//! A WebPKI refusal told with the certificate's own facts: which
//! certificate, which version, which algorithm, which extension, which
//! purposes. Errors whose rustls form the peer's alert depends on (expired,
//! unknown CA, name) pass through unchanged: `tls::explain` words them.

use rustls::pki_types::CertificateDer;
use rustls::{CertificateError, Error};
use x509_parser::certificate::X509Certificate;
use x509_parser::public_key::PublicKey;

use super::{Anchors, Role};
use crate::labels::Reason;
use crate::tls::explain::{webpki_error, Refusal};
use crate::tls::identity::sanitize;

/// Extensions WebPKI understands (RFC 5280 id-ce 15, 17, 19, 30, 31, 37;
/// the CT SCT list). A critical one outside these is refused.
const KNOWN: &[&str] = &[
    "2.5.29.15",
    "2.5.29.17",
    "2.5.29.19",
    "2.5.29.30",
    "2.5.29.31",
    "2.5.29.37",
    "1.3.6.1.4.1.11129.2.4.2",
];

/// Signature algorithms refused because collisions in their hash are
/// practical: (OID, name).
const WEAK: &[(&str, &str)] = &[
    ("1.2.840.113549.1.1.5", "sha1WithRSAEncryption"),
    ("1.3.14.3.2.29", "sha1WithRSASignature"),
    ("1.2.840.10045.4.1", "ecdsa-with-SHA1"),
    ("1.2.840.10040.4.3", "dsa-with-SHA1"),
    ("1.2.840.113549.1.1.4", "md5WithRSAEncryption"),
    ("1.2.840.113549.1.1.2", "md2WithRSAEncryption"),
];

/// The certificate's subject, escaped and bounded for a log line.
pub(super) fn subject(cert: &X509Certificate<'_>) -> String {
    sanitize(&cert.subject().to_string())
}

/// The RSA modulus size in bits; `None` for other keys.
pub(super) fn rsa_bits(cert: &X509Certificate<'_>) -> Option<usize> {
    let Ok(PublicKey::RSA(rsa)) = cert.public_key().parsed() else {
        return None;
    };
    let m = rsa.modulus;
    let start = m.iter().position(|b| *b != 0)?;
    Some((m.len() - start) * 8 - m[start].leading_zeros() as usize)
}

/// The refusal of a certificate whose extendedKeyUsage does not allow
/// `role`, naming the purposes it does allow.
pub(super) fn eku_refusal(cert: &X509Certificate<'_>, role: Role) -> Option<Refusal> {
    let eku = cert.extended_key_usage().ok()??.value;
    let allowed = match role {
        Role::Server => eku.server_auth,
        Role::Client => eku.client_auth,
    };
    if eku.any || allowed {
        return None;
    }
    let mut listed: Vec<String> = [
        (eku.server_auth, "serverAuth"),
        (eku.client_auth, "clientAuth"),
        (eku.code_signing, "codeSigning"),
        (eku.email_protection, "emailProtection"),
        (eku.time_stamping, "timeStamping"),
        (eku.ocsp_signing, "OCSPSigning"),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, n)| (*n).to_owned())
    .collect();
    listed.extend(eku.other.iter().map(|o| o.to_id_string()));
    let who = match role {
        Role::Server => "a server",
        Role::Client => "a client",
    };
    Some(Refusal::new(
        Reason::BadCertificate,
        format!(
            "the certificate \"{}\" is for {} only (extendedKeyUsage) and {who} needs {} (OpenSSL and Java refuse it too): reissue it with extendedKeyUsage={}, or without the extension",
            subject(cert),
            if listed.is_empty() { "no purpose".to_owned() } else { listed.join(", ") },
            role.eku(),
            role.eku()
        ),
    ))
}

/// `e`, told with the facts of the chain (leaf first, then the
/// intermediates as sent) when a fact makes it precise.
pub(super) fn tell(
    e: Error,
    ee: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    anchors: &Anchors,
    role: Role,
) -> Error {
    let chain: Vec<X509Certificate<'_>> = std::iter::once(ee)
        .chain(intermediates)
        .filter_map(|d| x509_parser::parse_x509_certificate(d).ok().map(|(_, c)| c))
        .collect();
    let told = match (&e, webpki_error(&e)) {
        (_, Some(w)) => webpki_fact(w, &chain, role),
        (Error::InvalidCertificate(c), None) => certificate_fact(c, &chain, anchors, role),
        _ => None,
    };
    told.map_or(e, Refusal::into_error)
}

/// A WebPKI error met outside rustls (parsing a certificate trusted as
/// itself), told as [`tell`] tells rustls's.
pub(super) fn tell_webpki(
    e: webpki::Error,
    ee: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    anchors: &Anchors,
    role: Role,
) -> Error {
    let wrapped = Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(
        std::sync::Arc::new(e),
    )));
    tell(wrapped, ee, intermediates, anchors, role)
}

fn webpki_fact(w: &webpki::Error, chain: &[X509Certificate<'_>], role: Role) -> Option<Refusal> {
    match w {
        webpki::Error::UnsupportedCertVersion => {
            let c = chain.iter().find(|c| c.version().0 != 2)?;
            let pin = match role {
                Role::Server => ", or trust its key with verify = \"pin\"",
                Role::Client => "",
            };
            Some(Refusal::new(
                Reason::BadCertificate,
                format!(
                    "the certificate \"{}\" is X.509 version {}, and only version 3 is accepted: a v{} certificate has no extensions, so it cannot say that it is not a CA (basicConstraints) nor which names it is for (subjectAltName). Reissue it as v3: openssl x509 -req … -extfile FILE, FILE holding basicConstraints=CA:FALSE and subjectAltName=DNS:<name>{pin}",
                    subject(c),
                    c.version().0 + 1,
                    c.version().0 + 1,
                ),
            ))
        }
        webpki::Error::CaUsedAsEndEntity => {
            let c = chain.first()?;
            let key = role.anchors_key();
            if c.subject().as_raw() == c.issuer().as_raw() {
                return Some(Refusal::new(
                    Reason::UnknownCa,
                    format!(
                        "the certificate \"{}\" is self-signed and is not one of the trust anchors ({key}): add this exact certificate to {key} to trust it as itself",
                        subject(c)
                    ),
                ));
            }
            Some(Refusal::new(
                Reason::BadCertificate,
                format!(
                    "the certificate \"{}\" is a CA certificate (basicConstraints CA:TRUE) used as {} own certificate; refused on purpose, as Firefox and rustls do: its key, kept on a networked host, could issue certificates for any other name under the same trust. Reissue it with basicConstraints=CA:FALSE, or add this exact certificate to {key} to trust it as itself",
                    subject(c),
                    match role { Role::Server => "a server's", Role::Client => "a client's" },
                ),
            ))
        }
        webpki::Error::UnsupportedCriticalExtension => {
            let (c, oids) = chain.iter().find_map(|c| {
                let oids: Vec<String> = c
                    .extensions()
                    .iter()
                    .filter(|x| x.critical)
                    .map(|x| x.oid.to_id_string())
                    .filter(|o| !KNOWN.contains(&o.as_str()))
                    .collect();
                (!oids.is_empty()).then_some((c, oids))
            })?;
            Some(Refusal::new(
                Reason::BadCertificate,
                format!(
                    "the certificate \"{}\" has a critical extension this verifier does not know ({}); RFC 5280 says a verifier must then refuse it, and OpenSSL and Java do: reissue it without the extension, or with it marked non-critical",
                    subject(c),
                    oids.join(", ")
                ),
            ))
        }
        webpki::Error::RequiredEkuNotFoundContext(_) | webpki::Error::EmptyEkuExtension => {
            eku_refusal(chain.first()?, role)
        }
        _ => None,
    }
}

fn certificate_fact(
    c: &CertificateError,
    chain: &[X509Certificate<'_>],
    anchors: &Anchors,
    role: Role,
) -> Option<Refusal> {
    #[allow(deprecated)]
    match c {
        CertificateError::UnsupportedSignatureAlgorithm
        | CertificateError::UnsupportedSignatureAlgorithmContext { .. } => {
            let (cert, name) = chain.iter().find_map(|cert| {
                let oid = cert.signature_algorithm.algorithm.to_id_string();
                WEAK.iter()
                    .find(|(o, _)| *o == oid)
                    .map(|(_, n)| (cert, *n))
            })?;
            Some(Refusal::new(
                Reason::BadCertificate,
                format!(
                    "the certificate \"{}\" is signed with {name}; SHA-1 and MD5 signatures are refused on purpose (collisions, SHAttered 2017 and chosen-prefix since 2020, let an attacker forge a certificate the CA never signed; OpenSSL 3 refuses them too): reissue it signed with SHA-256, openssl x509 -req -sha256 …",
                    subject(cert)
                ),
            ))
        }
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            eku_refusal(chain.first()?, role)
        }
        CertificateError::BadSignature => {
            let issuers = chain.iter().skip(1).cloned();
            let anchor_certs = anchors
                .ders
                .iter()
                .filter_map(|d| x509_parser::parse_x509_certificate(d).ok().map(|(_, c)| c));
            let small = issuers
                .chain(anchor_certs)
                .find(|c| rsa_bits(c).is_some_and(|b| b < 2048))?;
            Some(Refusal::new(
                Reason::BadCertificate,
                format!(
                    "the CA certificate \"{}\" has a {}-bit RSA key, and signatures by RSA keys under 2048 bits are refused on purpose (OpenSSL 3 refuses them too): the CA needs a new key of 2048 bits or more",
                    subject(&small),
                    rsa_bits(&small).unwrap_or(0)
                ),
            ))
        }
        _ => None,
    }
}
