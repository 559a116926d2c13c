//! The verifiers behind `verify = "chain"` and `verify = "pin"`. `full` is
//! rustls's own WebPKI verifier; `none` lives in `danger`. With CRLs, the
//! WebPKI verifiers of either side are wrapped so that a chain whose
//! revocation status is unknown names the issuer without a CRL.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, SubjectPublicKeyInfoDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, Error};

use super::material::spki_sha256;

/// `verify = "chain"`: the full WebPKI check (chain, validity, revocation),
/// except that a name mismatch is forgiven. WebPKI checks the name last, so
/// a name error means everything before it passed.
#[derive(Debug)]
pub struct ChainOnly(pub Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    delegate_signatures!(0);
}

/// `verify = "pin"`: the leaf's SubjectPublicKeyInfo SHA-256 must be one of
/// the pins. No chain is needed and dates are not checked: the pinned key is
/// the trust. The handshake signature is still verified, so the peer proves
/// it holds the pinned key.
#[derive(Debug)]
pub struct Pinned {
    pub pins: Vec<[u8; 32]>,
    pub provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let hash = spki_sha256(end_entity)
            .ok_or(Error::InvalidCertificate(CertificateError::BadEncoding))?;
        if self.pins.contains(&hash) {
            Ok(ServerCertVerified::assertion())
        } else {
            // ApplicationVerificationFailure is how the reason mapping tells a
            // pin mismatch from every WebPKI failure.
            Err(Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    provider_signatures!(provider);
}

/// Checks a handshake signature with the public key of `cert`, read as a
/// SubjectPublicKeyInfo, as rustls's own check does (TLS 1.3: rustls's
/// raw-key check; TLS 1.2: any algorithm of the scheme), without reading
/// the rest of the certificate as a WebPKI leaf.
pub fn signed_by_key(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &rustls::DigitallySignedStruct,
    algs: &rustls::crypto::WebPkiSupportedAlgorithms,
    tls13: bool,
) -> Result<HandshakeSignatureValid, Error> {
    let (_, c) = x509_parser::parse_x509_certificate(cert)
        .map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))?;
    let spki = SubjectPublicKeyInfoDer::from(c.public_key().raw);
    if tls13 {
        return rustls::crypto::verify_tls13_signature_with_raw_key(message, &spki, dss, algs);
    }
    let key = webpki::RawPublicKeyEntity::try_from(&spki)
        .map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))?;
    let candidates = algs
        .mapping
        .iter()
        .find(|(scheme, _)| *scheme == dss.scheme)
        .map(|(_, a)| *a)
        .ok_or(rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme)?;
    for alg in candidates {
        match key.verify_signature(*alg, message, dss.signature()) {
            Ok(()) => return Ok(HandshakeSignatureValid::assertion()),
            Err(webpki::Error::UnsupportedSignatureAlgorithmForPublicKeyContext(_)) => continue,
            Err(_) => break,
        }
    }
    Err(Error::InvalidCertificate(CertificateError::BadSignature))
}

/// A chain whose revocation status cannot be known: the issuer of one of
/// its certificates has no revocation list among those configured. WebPKI
/// says only `UnknownRevocationStatus`; this names the issuer for the log
/// (reason `revocation_unknown`).
#[derive(Debug, thiserror::Error)]
#[error("no revocation list (CRL) is configured for issuer \"{issuer}\" of a certificate in the chain, so its revocation status is unknown")]
pub struct RevocationUnknown {
    pub issuer: String,
}

/// The issuer of the first certificate of the chain (leaf first, then the
/// intermediates as sent, self-issued ones skipped: WebPKI checks no trust
/// anchor) that no configured CRL covers.
fn missing_crl_issuer(
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    crl_issuers: &[Vec<u8>],
) -> String {
    for der in std::iter::once(end_entity).chain(intermediates) {
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
            continue;
        };
        let issuer = cert.issuer();
        if issuer.as_raw() == cert.subject().as_raw() {
            continue;
        }
        if !crl_issuers.iter().any(|c| c.as_slice() == issuer.as_raw()) {
            return issuer.to_string();
        }
    }
    "(unknown)".to_owned()
}

/// `result`, with WebPKI's `UnknownRevocationStatus` turned into a
/// [`RevocationUnknown`] naming the issuer.
fn name_missing_crl<T>(
    result: Result<T, Error>,
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    crl_issuers: &[Vec<u8>],
) -> Result<T, Error> {
    match result {
        Err(Error::InvalidCertificate(CertificateError::UnknownRevocationStatus)) => {
            Err(Error::InvalidCertificate(CertificateError::Other(
                rustls::OtherError(Arc::new(RevocationUnknown {
                    issuer: missing_crl_issuer(end_entity, intermediates, crl_issuers),
                })),
            )))
        }
        other => other,
    }
}

/// The [`RevocationUnknown`] inside a rustls error, if that is what it is.
pub fn revocation_unknown(e: &Error) -> Option<&RevocationUnknown> {
    match e {
        Error::InvalidCertificate(CertificateError::Other(o)) => o.0.downcast_ref(),
        _ => None,
    }
}

/// A server verifier with CRLs (`full`, `chain`): names the issuer whose
/// CRL is missing when the revocation status is unknown.
#[derive(Debug)]
pub struct NamedServerRevocation {
    pub inner: Arc<dyn ServerCertVerifier>,
    /// The issuer names (DER) of the configured CRLs.
    pub crl_issuers: Vec<Vec<u8>>,
}

impl ServerCertVerifier for NamedServerRevocation {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        name_missing_crl(
            self.inner
                .verify_server_cert(end_entity, intermediates, server_name, ocsp, now),
            end_entity,
            intermediates,
            &self.crl_issuers,
        )
    }

    delegate_signatures!(inner);
}

/// The client-certificate verifier of a listener with CRLs: names the
/// issuer whose CRL is missing when the revocation status is unknown.
#[derive(Debug)]
pub struct NamedClientRevocation {
    pub inner: Arc<dyn ClientCertVerifier>,
    /// The issuer names (DER) of the configured CRLs.
    pub crl_issuers: Vec<Vec<u8>>,
}

impl ClientCertVerifier for NamedClientRevocation {
    delegate_client_auth!(inner);

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        name_missing_crl(
            self.inner
                .verify_client_cert(end_entity, intermediates, now),
            end_entity,
            intermediates,
            &self.crl_issuers,
        )
    }

    delegate_signatures!(inner);
}
