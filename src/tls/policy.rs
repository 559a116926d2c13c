//! Trust parity (issue 23; the table is docs/src/trust.md): what OpenSSL 3
//! and JDK 17 accept under the same trust and name, the sidecar accepts,
//! unless refused on purpose with a sentence naming the cause and the fix.
//! WebPKI decides first; these wrappers then
//! - trust a presented certificate that *is* a configured trust anchor,
//!   byte for byte, as itself: its dates, name and extendedKeyUsage are
//!   still checked, and rustls checks the handshake signature as always
//!   (WebPKI alone refuses it: `CaUsedAsEndEntity`);
//! - with `name_check_cn_fallback` (Genesys's `tls-target-name-check=host`),
//!   let a certificate without a DNS subjectAltName name the host in its CN;
//! - refuse what WebPKI lets through but OpenSSL and Java do not: RSA keys
//!   under 2048 bits, a keyUsage without digitalSignature;
//! - tell every other refusal with the certificate's own facts (`facts`).

mod facts;

/// The signature methods of a policy verifier: the inner verifier's, with
/// a failed handshake signature told as what it means (`bad_signature`).
macro_rules! told_signatures {
    () => {
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, Error> {
            bad_signature(self.inner.verify_tls12_signature(message, cert, dss), cert)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, Error> {
            bad_signature(self.inner.verify_tls13_signature(message, cert, dss), cert)
        }

        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.inner.supported_verify_schemes()
        }
    };
}

use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, Error, RootCertStore};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

use super::explain::{webpki_error, Refusal};
use super::names::name_matches;
use crate::labels::Reason;

/// Which name check a server's certificate gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameCheck {
    /// `verify = "chain"`: none.
    None,
    /// `verify = "full"`: subjectAltName only (RFC 9525).
    San,
    /// `verify = "full"` with `name_check_cn_fallback`: subjectAltName,
    /// else the subject's CN.
    SanThenCn,
}

/// Which peer a certificate belongs to: what its extendedKeyUsage must
/// allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Server,
    Client,
}

impl Role {
    fn eku(self) -> &'static str {
        match self {
            Role::Server => "serverAuth",
            Role::Client => "clientAuth",
        }
    }

    fn anchors_key(self) -> &'static str {
        match self {
            Role::Server => "connect_tls.ca",
            Role::Client => "listen_tls.client_ca",
        }
    }
}

/// The configured trust anchors, as the certificates they were read from.
#[derive(Debug, Clone)]
pub struct Anchors {
    ders: Vec<CertificateDer<'static>>,
    /// Does any anchor restrict names (nameConstraints)? The CN is then
    /// never used: the constraints bind subjectAltName entries only.
    constrained: bool,
}

impl Anchors {
    /// `ders`: the certificates of a configured trust file (none for the
    /// OS store: no peer presents a root); `store`: every anchor in use.
    pub fn new(ders: &[CertificateDer<'static>], store: &RootCertStore) -> Anchors {
        Anchors {
            constrained: store.roots.iter().any(|a| a.name_constraints.is_some()),
            ders: ders.to_vec(),
        }
    }

    fn contains(&self, der: &CertificateDer<'_>) -> bool {
        self.ders.iter().any(|a| a.as_ref() == der.as_ref())
    }
}

/// The server-certificate verifier of `verify = "full"` and `"chain"`.
#[derive(Debug)]
pub struct ServerPolicy {
    pub inner: Arc<dyn ServerCertVerifier>,
    pub anchors: Anchors,
    pub names: NameCheck,
}

impl ServerCertVerifier for ServerPolicy {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let verdict =
            self.inner
                .verify_server_cert(end_entity, intermediates, server_name, ocsp, now);
        if let Err(e) = verdict {
            self.recover(e, end_entity, intermediates, server_name, now)?;
        }
        own_rules(end_entity)?;
        Ok(ServerCertVerified::assertion())
    }

    told_signatures!();
}

impl ServerPolicy {
    /// `Ok` when a WebPKI refusal is one this policy overrides; otherwise
    /// the refusal, told with the certificate's facts.
    fn recover(
        &self,
        e: Error,
        ee: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        name: &ServerName<'_>,
        now: UnixTime,
    ) -> Result<(), Error> {
        if is_ca_as_end_entity(&e) && self.anchors.contains(ee) {
            as_anchor(ee, Role::Server, now)?;
            return self.check_anchor_name(ee, intermediates, name);
        }
        if is_name_error(&e) && self.cn_allowed(intermediates) && cn_covers(ee, name) {
            return Ok(());
        }
        Err(facts::tell(
            e,
            ee,
            intermediates,
            &self.anchors,
            Role::Server,
        ))
    }

    /// The CN may stand in for subjectAltName: asked for, and no CA of the
    /// chain restricts names (a nameConstraints extension binds
    /// subjectAltName entries, not the CN).
    fn cn_allowed(&self, intermediates: &[CertificateDer<'_>]) -> bool {
        self.names == NameCheck::SanThenCn
            && !self.anchors.constrained
            && !intermediates.iter().any(|d| name_constrained(d))
    }

    /// The name check of a certificate trusted as itself, per `verify`.
    fn check_anchor_name(
        &self,
        ee: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        name: &ServerName<'_>,
    ) -> Result<(), Error> {
        if self.names == NameCheck::None {
            return Ok(());
        }
        let parsed = webpki::EndEntityCert::try_from(ee)
            .map_err(|e| facts::tell_webpki(e, ee, intermediates, &self.anchors, Role::Server))?;
        if parsed.verify_is_valid_for_subject_name(name).is_ok()
            || (self.cn_allowed(intermediates) && cn_covers(ee, name))
        {
            return Ok(());
        }
        Err(Error::InvalidCertificate(
            CertificateError::NotValidForNameContext {
                expected: name.to_owned(),
                presented: super::material::CertInfo::parse(ee)
                    .map(|i| i.sans)
                    .unwrap_or_default(),
            },
        ))
    }
}

/// The client-certificate verifier of a listener with `client_ca`.
#[derive(Debug)]
pub struct ClientPolicy {
    pub inner: Arc<dyn ClientCertVerifier>,
    pub anchors: Anchors,
}

impl ClientCertVerifier for ClientPolicy {
    delegate_client_auth!(inner);

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        match self
            .inner
            .verify_client_cert(end_entity, intermediates, now)
        {
            Ok(_) => {}
            Err(e) if is_ca_as_end_entity(&e) && self.anchors.contains(end_entity) => {
                as_anchor(end_entity, Role::Client, now)?;
            }
            Err(e) => {
                return Err(facts::tell(
                    e,
                    end_entity,
                    intermediates,
                    &self.anchors,
                    Role::Client,
                ))
            }
        }
        own_rules(end_entity)?;
        Ok(ClientCertVerified::assertion())
    }

    told_signatures!();
}

/// A handshake signature that does not verify with the presented
/// certificate's key: the peer does not hold that certificate's key.
fn bad_signature<T>(r: Result<T, Error>, cert: &CertificateDer<'_>) -> Result<T, Error> {
    match r {
        Err(Error::InvalidCertificate(CertificateError::BadSignature)) => {
            let who = parse(cert).map(|c| facts::subject(&c)).unwrap_or_default();
            Err(Refusal::new(
                Reason::BadCertificate,
                format!(
                    "the peer's handshake signature does not verify with the key of the certificate it presented (\"{who}\"): it does not hold that certificate's private key (a key file that does not match the certificate, or an impostor replaying a certificate); give the peer the key of its certificate"
                ),
            )
            .into_error())
        }
        other => other,
    }
}

fn is_ca_as_end_entity(e: &Error) -> bool {
    matches!(webpki_error(e), Some(webpki::Error::CaUsedAsEndEntity))
}

fn is_name_error(e: &Error) -> bool {
    matches!(
        e,
        Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
        )
    )
}

fn parse<'a>(der: &'a [u8]) -> Result<X509Certificate<'a>, Error> {
    x509_parser::parse_x509_certificate(der)
        .map(|(_, c)| c)
        .map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))
}

/// A certificate that is itself a trust anchor: what WebPKI would check
/// of a leaf, except its issuer (it is trusted by itself) and its name
/// (the caller's).
fn as_anchor(der: &CertificateDer<'_>, role: Role, now: UnixTime) -> Result<(), Error> {
    let cert = parse(der)?;
    let at = |secs: i64| UnixTime::since_unix_epoch(Duration::from_secs(secs.max(0) as u64));
    let t = now.as_secs() as i64;
    let (from, until) = (
        cert.validity().not_before.timestamp(),
        cert.validity().not_after.timestamp(),
    );
    if t < from {
        return Err(CertificateError::NotValidYetContext {
            time: now,
            not_before: at(from),
        }
        .into());
    }
    if t > until {
        return Err(CertificateError::ExpiredContext {
            time: now,
            not_after: at(until),
        }
        .into());
    }
    if let Some(why) = facts::eku_refusal(&cert, role) {
        return Err(why.into_error());
    }
    Ok(())
}

/// Does the certificate's CN cover `name`? Only a DNS name, only when the
/// certificate has no DNS subjectAltName (OpenSSL's and Java's rule), and
/// only its last CN (Java's "most specific"), wildcard as in a SAN.
fn cn_covers(der: &CertificateDer<'_>, name: &ServerName<'_>) -> bool {
    let ServerName::DnsName(host) = name else {
        return false;
    };
    let Ok(cert) = parse(der) else {
        return false;
    };
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        if san
            .value
            .general_names
            .iter()
            .any(|g| matches!(g, GeneralName::DNSName(_)))
        {
            return false;
        }
    }
    let cn = cert.subject().iter_common_name().last();
    cn.and_then(|a| a.as_str().ok())
        .is_some_and(|cn| name_matches(cn, host.as_ref()))
}

/// Has the certificate a nameConstraints extension?
fn name_constrained(der: &CertificateDer<'_>) -> bool {
    parse(der).is_ok_and(|c| matches!(c.name_constraints(), Ok(Some(_)) | Err(_)))
}

/// What WebPKI does not check of a leaf but OpenSSL 3 and JDK 17 do:
/// refused on purpose, each with its fix.
fn own_rules(der: &CertificateDer<'_>) -> Result<(), Error> {
    let cert = parse(der)?;
    if let Some(bits) = facts::rsa_bits(&cert).filter(|b| *b < 2048) {
        return Err(Refusal::new(
                Reason::BadCertificate,
                format!(
                    "the certificate \"{}\" has a {bits}-bit RSA key; RSA keys under 2048 bits are refused on purpose (NIST has disallowed them since 2013 and public efforts factor 829 bits; OpenSSL 3 refuses them too): reissue it with a new key, openssl req -newkey rsa:2048 (or -newkey ec -pkeyopt ec_paramgen_curve:P-256)",
                    facts::subject(&cert)
                ),
            )
            .into_error());
    }
    if let Ok(Some(ku)) = cert.key_usage() {
        if !ku.value.digital_signature() {
            return Err(Refusal::new(
                Reason::BadCertificate,
                format!(
                    "the certificate \"{}\" has keyUsage \"{}\" without digitalSignature, but its key signs the TLS handshake (every suite here is ECDHE or TLS 1.3; Java refuses it too): reissue it with keyUsage=digitalSignature (plus keyEncipherment if wanted), or without keyUsage",
                    facts::subject(&cert),
                    ku.value
                ),
            )
            .into_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
