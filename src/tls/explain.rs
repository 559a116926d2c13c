//! A refused certificate in words an operator can act on: for every error
//! rustls and WebPKI report, the metric reason and a sentence that names
//! the cause and the fix (issue 23: a well-formed certificate refused on
//! purpose must never read as "malformed"). [`Refusal`] carries a sentence
//! made with facts read from the certificate itself (`tls::policy`).

use std::sync::Arc;

use rustls::{CertRevocationListError, CertificateError, Error, OtherError};

use crate::labels::Reason;

/// A certificate refused with a sentence of its own: by one of our rules
/// (`tls::policy`), or a WebPKI refusal told with the certificate's facts
/// (its version, its signature algorithm, its extensions).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text}")]
pub struct Refusal {
    /// The `reason` label.
    pub reason: Reason,
    /// Cause and fix.
    pub text: String,
}

impl Refusal {
    pub fn new(reason: Reason, text: impl Into<String>) -> Refusal {
        Refusal {
            reason,
            text: text.into(),
        }
    }

    /// As rustls's error (rustls sends the `certificate_unknown` alert).
    pub fn into_error(self) -> Error {
        Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(self))))
    }
}

/// The [`Refusal`] inside a rustls error, if that is what it is.
pub fn refusal(e: &Error) -> Option<&Refusal> {
    match e {
        Error::InvalidCertificate(CertificateError::Other(o)) => o.0.downcast_ref(),
        _ => None,
    }
}

/// The WebPKI error inside a rustls error (the ones rustls passes on as
/// `CertificateError::Other`), if that is what it is.
pub fn webpki_error(e: &Error) -> Option<&webpki::Error> {
    match e {
        Error::InvalidCertificate(CertificateError::Other(o)) => o.0.downcast_ref(),
        _ => None,
    }
}

const NAME_FIX: &str = "the certificate does not cover the expected name: connect by a name in its subjectAltName, set connect_tls.server_name, or reissue it with subjectAltName=DNS:<name> (a certificate naming the host only in its CN is accepted with name_check_cn_fallback = true)";
const FETCH_CRL: &str =
    "fetch a current, complete (v2, not delta or indirect) CRL from the CA and give it in `crl`";

const UNDESCRIBED: &str = "the certificate was refused by a check without a description here: see the detail that follows";

/// Reason and sentence for every WebPKI error.
pub fn webpki(e: &webpki::Error) -> (Reason, &'static str) {
    encoding(e)
        .or_else(|| chain(e))
        .or_else(|| names(e))
        .or_else(|| algorithms(e))
        .or_else(|| revocation(e))
        .unwrap_or((Reason::BadCertificate, UNDESCRIBED))
}

/// A certificate that breaks X.509's encoding: the one case called
/// malformed.
fn encoding(e: &webpki::Error) -> Option<(Reason, &'static str)> {
    use webpki::Error as W;
    Some(match e {
        W::BadDer | W::BadDerTime | W::TrailingData(_) | W::SignatureAlgorithmMismatch | W::InvalidSerialNumber => (
            Reason::BadCertificate,
            "the certificate is malformed (its DER encoding breaks X.509): have it reissued by its CA",
        ),
        W::ExtensionValueInvalid | W::MalformedExtensions => (
            Reason::BadCertificate,
            "an extension of the certificate is malformed (its value breaks RFC 5280's encoding): have it reissued",
        ),
        _ => return None,
    })
}

/// The chain: anchors, CA flags, dates, purposes, path limits.
#[allow(deprecated)]
fn chain(e: &webpki::Error) -> Option<(Reason, &'static str)> {
    use webpki::Error as W;
    use Reason as R;
    Some(match e {
        W::CaUsedAsEndEntity => (
            R::BadCertificate,
            "the peer's own certificate is a CA certificate (basicConstraints CA:TRUE) and not itself a trust anchor: reissue it with basicConstraints=CA:FALSE, or put this exact certificate among the trust anchors to trust it as itself",
        ),
        W::EndEntityUsedAsCa => (
            R::BadCertificate,
            "a certificate that issued another in the chain is not a CA (no basicConstraints CA:TRUE): reissue that intermediate with basicConstraints=critical,CA:TRUE",
        ),
        W::CertDistrusted => (
            R::UnknownCa,
            "a key in the chain is explicitly distrusted: have the certificate reissued under another CA",
        ),
        W::CertExpired { .. } | W::InvalidCertValidity => (R::Expired, EXPIRED),
        W::CertNotValidYet { .. } => (R::NotYetValid, NOT_YET),
        W::UnknownIssuer => (
            R::UnknownCa,
            "the certificate chain does not lead to a trusted CA: add the issuing CA to the trust anchors (`ca`, `client_ca`), or have the peer send its intermediate certificates",
        ),
        W::MaximumPathBuildCallsExceeded | W::MaximumPathDepthExceeded | W::MaximumSignatureChecksExceeded => (
            R::UnknownCa,
            "the certificate chain does not lead to a trusted CA within the search limits (too many or too deep intermediates): have the peer send only its chain from leaf to CA",
        ),
        W::PathLenConstraintViolated => (
            R::BadCertificate,
            "the chain has more intermediates than a CA's pathLenConstraint allows: reissue the intermediates under a CA that permits them",
        ),
        W::EmptyEkuExtension | W::RequiredEkuNotFound | W::RequiredEkuNotFoundContext(_) => (R::BadCertificate, EKU),
        W::UnsupportedCertVersion => (
            R::BadCertificate,
            "the certificate is not X.509 version 3 (a v1 certificate has no extensions, so it cannot say it is not a CA nor which names it covers): reissue it as v3 with openssl x509 -req … -extfile FILE (FILE: basicConstraints=CA:FALSE and subjectAltName=DNS:<name>), or trust its key with verify = \"pin\"",
        ),
        W::UnsupportedCriticalExtension => (R::BadCertificate, CRITICAL),
        _ => return None,
    })
}

/// The name asked for, and CAs' name constraints.
fn names(e: &webpki::Error) -> Option<(Reason, &'static str)> {
    use webpki::Error as W;
    Some(match e {
        W::CertNotValidForName(_) => (Reason::NameMismatch, NAME_FIX),
        W::MalformedDnsIdentifier | W::UnsupportedNameType => (
            Reason::NameMismatch,
            "the expected name, or a name in the certificate, is not a DNS name or IP address a certificate can be checked for: set connect_tls.server_name to the host's DNS name",
        ),
        W::NameConstraintViolation | W::MalformedNameConstraint | W::InvalidNetworkMaskConstraint | W::MaximumNameConstraintComparisonsExceeded => (
            Reason::NameMismatch,
            "a CA of the chain is restricted (nameConstraints) to names this certificate goes beyond, or its restriction cannot be read: reissue the certificate under a CA allowed for its names",
        ),
        _ => return None,
    })
}

/// Signatures: refused algorithms and keys.
#[allow(deprecated)]
fn algorithms(e: &webpki::Error) -> Option<(Reason, &'static str)> {
    use webpki::Error as W;
    Some(match e {
        W::InvalidSignatureForPublicKey => (Reason::BadCertificate, BAD_SIGNATURE),
        W::UnsupportedSignatureAlgorithm | W::UnsupportedSignatureAlgorithmContext(_) => {
            (Reason::BadCertificate, WEAK_ALGORITHM)
        }
        W::UnsupportedSignatureAlgorithmForPublicKey
        | W::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => {
            (Reason::BadCertificate, KEY_TYPE)
        }
        _ => return None,
    })
}

/// Revocation: the certificate's status, and the configured CRLs.
#[allow(deprecated)]
fn revocation(e: &webpki::Error) -> Option<(Reason, &'static str)> {
    use webpki::Error as W;
    use Reason as R;
    Some(match e {
        W::CertRevoked => (
            R::Revoked,
            "a certificate of the chain is revoked by a configured CRL: the peer needs a new certificate",
        ),
        W::UnknownRevocationStatus => (
            R::RevocationUnknown,
            "no revocation list (CRL) is configured for an issuer in the chain: add that CA's CRL to `crl`",
        ),
        W::CrlExpired { .. } => (R::RevocationUnknown, CRL_STALE),
        W::IssuerNotCrlSigner | W::InvalidCrlSignatureForPublicKey | W::UnsupportedCrlSignatureAlgorithm | W::UnsupportedCrlSignatureAlgorithmContext(_) | W::UnsupportedCrlSignatureAlgorithmForPublicKey | W::UnsupportedCrlSignatureAlgorithmForPublicKeyContext(_) => (
            R::RevocationUnknown,
            "a configured CRL is not signed in a way that can be trusted (wrong issuer key, an issuer without cRLSign, or a refused algorithm): fetch a current, complete (v2, not delta or indirect) CRL from the CA and give it in `crl`",
        ),
        W::InvalidCrlNumber | W::UnsupportedCrlIssuingDistributionPoint | W::UnsupportedCrlVersion | W::UnsupportedDeltaCrl | W::UnsupportedIndirectCrl | W::UnsupportedRevocationReason | W::UnsupportedRevocationReasonsPartitioning => (
            R::RevocationUnknown,
            "a configured CRL has a form that cannot be checked (delta, indirect, partitioned, v1 or a bad CRL number): fetch a current, complete (v2, not delta or indirect) CRL from the CA and give it in `crl`",
        ),
        _ => return None,
    })
}

const EXPIRED: &str = "the certificate has expired (or its notAfter precedes its notBefore): renew it, or correct this host's clock";
const NOT_YET: &str =
    "the certificate is not valid yet: check both hosts' clocks, or wait for its notBefore";
const EKU: &str = "the certificate's extendedKeyUsage does not allow this use (a server needs serverAuth, a client clientAuth): reissue it with extendedKeyUsage=serverAuth for a server or clientAuth for a client (or without the extension)";
const CRITICAL: &str = "the certificate carries a critical extension this verifier does not know, and RFC 5280 says a verifier must then refuse it: reissue it without that extension or with it marked non-critical";
const BAD_SIGNATURE: &str = "a signature in the chain does not verify with its issuer's key (the certificate was altered, a different CA has the same name, or the issuer's RSA key is shorter than 2048 bits): check that the trust anchors hold the CA that really issued it";
const WEAK_ALGORITHM: &str = "a certificate of the chain is signed with an algorithm refused on purpose (SHA-1 or MD5, which collisions let an attacker forge): reissue it signed with SHA-256 or better (openssl x509 -req -sha256)";
const KEY_TYPE: &str = "a signature in the chain uses a key type or size that is not supported (DSA, an unknown curve, RSA under 2048 bits): reissue with RSA 2048+, ECDSA P-256/P-384 or Ed25519";
const CRL_STALE: &str = "a configured CRL is past its nextUpdate, so revocations since then are not known: fetch a current one";

/// Reason and sentence for a rustls certificate error (a WebPKI error or a
/// [`Refusal`] inside `Other` included).
#[allow(deprecated)]
pub fn certificate(e: &CertificateError) -> (Reason, String) {
    use CertificateError as C;
    use Reason as R;
    let fixed = |r: Reason, s: &str| (r, s.to_owned());
    match e {
        C::Other(o) => {
            if let Some(r) = o.0.downcast_ref::<Refusal>() {
                return (r.reason, r.text.clone());
            }
            if let Some(r) = o.0.downcast_ref::<super::verify::RevocationUnknown>() {
                return (R::RevocationUnknown, r.to_string());
            }
            match o.0.downcast_ref::<webpki::Error>() {
                Some(w) => {
                    let (r, s) = webpki(w);
                    (r, s.to_owned())
                }
                None => fixed(R::BadCertificate, UNDESCRIBED),
            }
        }
        C::BadEncoding => webpki_words(&webpki::Error::BadDer),
        C::Expired | C::ExpiredContext { .. } => webpki_words(&webpki::Error::InvalidCertValidity),
        C::NotValidYet | C::NotValidYetContext { .. } => fixed(R::NotYetValid, NOT_YET),
        C::Revoked => webpki_words(&webpki::Error::CertRevoked),
        C::UnhandledCriticalExtension => webpki_words(&webpki::Error::UnsupportedCriticalExtension),
        C::UnknownIssuer => webpki_words(&webpki::Error::UnknownIssuer),
        C::UnknownRevocationStatus => webpki_words(&webpki::Error::UnknownRevocationStatus),
        C::ExpiredRevocationList | C::ExpiredRevocationListContext { .. } => fixed(R::RevocationUnknown, CRL_STALE),
        C::BadSignature => webpki_words(&webpki::Error::InvalidSignatureForPublicKey),
        C::UnsupportedSignatureAlgorithm | C::UnsupportedSignatureAlgorithmContext { .. } => webpki_words(&webpki::Error::UnsupportedSignatureAlgorithm),
        C::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => webpki_words(&webpki::Error::UnsupportedSignatureAlgorithmForPublicKey),
        C::NotValidForName | C::NotValidForNameContext { .. } => fixed(R::NameMismatch, NAME_FIX),
        C::InvalidPurpose | C::InvalidPurposeContext { .. } => fixed(R::BadCertificate, EKU),
        C::InvalidOcspResponse => fixed(R::BadCertificate, "the stapled OCSP response is invalid: the peer should staple a fresh response from its CA, or none"),
        C::ApplicationVerificationFailure => fixed(R::PinMismatch, "the certificate's public key matches none of the pins: pin the key the peer now uses (see `probe`), or have the peer use the pinned key"),
        _ => fixed(R::BadCertificate, UNDESCRIBED),
    }
}

fn webpki_words(e: &webpki::Error) -> (Reason, String) {
    let (r, s) = webpki(e);
    (r, s.to_owned())
}

/// Reason and sentence for an error about a configured revocation list
/// met during a handshake.
pub fn revocation_list(e: &CertRevocationListError) -> (Reason, String) {
    (
        Reason::RevocationUnknown,
        format!("a configured CRL cannot be used ({e:?}): {FETCH_CRL}"),
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rustls::pki_types::UnixTime;

    use super::*;

    fn t(secs: u64) -> UnixTime {
        UnixTime::since_unix_epoch(Duration::from_secs(secs))
    }

    fn name() -> webpki::InvalidNameContext {
        webpki::InvalidNameContext {
            expected: rustls::pki_types::ServerName::try_from("gms.example.com")
                .unwrap()
                .to_owned(),
            presented: vec!["web.example.com".into()],
        }
    }

    fn eku() -> webpki::RequiredEkuNotFoundContext {
        webpki::RequiredEkuNotFoundContext {
            required: webpki::KeyUsage::server_auth(),
            present: vec![vec![1, 3, 6, 1, 5, 5, 7, 3, 2]],
        }
    }

    fn alg() -> webpki::UnsupportedSignatureAlgorithmContext {
        webpki::UnsupportedSignatureAlgorithmContext {
            signature_algorithm_id: vec![6, 9, 42, 134, 72, 134, 247, 13, 1, 1, 5],
            supported_algorithms: vec![],
        }
    }

    fn alg_for_key() -> webpki::UnsupportedSignatureAlgorithmForPublicKeyContext {
        webpki::UnsupportedSignatureAlgorithmForPublicKeyContext {
            signature_algorithm_id: vec![],
            public_key_algorithm_id: vec![],
        }
    }

    /// Checks each WebPKI error's reason and sentence, directly and as
    /// rustls hands it on (inside `Other`). Only a broken encoding may be
    /// called malformed.
    fn check(cases: &[(webpki::Error, Reason, bool)]) {
        for (w, want, malformed) in cases {
            let (reason, sentence) = webpki(w);
            assert_eq!(reason, *want, "{w:?}");
            assert_eq!(
                sentence.contains("malformed"),
                *malformed,
                "{w:?}: {sentence}"
            );
            assert!(
                sentence.contains(": "),
                "{w:?} names a fix after its cause: {sentence}"
            );
            let e =
                Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(w.clone()))));
            assert_eq!(super::super::reason::classify_rustls(&e), *want, "{w:?}");
        }
    }

    #[test]
    fn webpki_encoding_errors_alone_are_called_malformed() {
        use webpki::Error as W;
        let b = Reason::BadCertificate;
        check(&[
            (W::BadDer, b, true),
            (W::BadDerTime, b, true),
            (W::TrailingData(webpki::DerTypeId::Certificate), b, true),
            (W::SignatureAlgorithmMismatch, b, true),
            (W::InvalidSerialNumber, b, true),
            (W::ExtensionValueInvalid, b, true),
            (W::MalformedExtensions, b, true),
        ]);
    }

    #[test]
    #[allow(deprecated)]
    fn webpki_chain_and_signature_errors_have_a_reason_and_a_fix() {
        use webpki::Error as W;
        use Reason as R;
        check(&[
            (W::CaUsedAsEndEntity, R::BadCertificate, false),
            (W::EndEntityUsedAsCa, R::BadCertificate, false),
            (W::CertDistrusted, R::UnknownCa, false),
            (
                W::CertExpired {
                    time: t(2),
                    not_after: t(1),
                },
                R::Expired,
                false,
            ),
            (W::InvalidCertValidity, R::Expired, false),
            (
                W::CertNotValidYet {
                    time: t(1),
                    not_before: t(2),
                },
                R::NotYetValid,
                false,
            ),
            (W::UnknownIssuer, R::UnknownCa, false),
            (W::MaximumPathBuildCallsExceeded, R::UnknownCa, false),
            (W::MaximumPathDepthExceeded, R::UnknownCa, false),
            (W::MaximumSignatureChecksExceeded, R::UnknownCa, false),
            (W::PathLenConstraintViolated, R::BadCertificate, false),
            (W::EmptyEkuExtension, R::BadCertificate, false),
            (W::RequiredEkuNotFound, R::BadCertificate, false),
            (W::UnsupportedCertVersion, R::BadCertificate, false),
            (W::UnsupportedCriticalExtension, R::BadCertificate, false),
            (W::InvalidSignatureForPublicKey, R::BadCertificate, false),
            (W::UnsupportedSignatureAlgorithm, R::BadCertificate, false),
            (
                W::UnsupportedSignatureAlgorithmForPublicKey,
                R::BadCertificate,
                false,
            ),
            (
                W::RequiredEkuNotFoundContext(eku()),
                R::BadCertificate,
                false,
            ),
            (
                W::UnsupportedSignatureAlgorithmContext(alg()),
                R::BadCertificate,
                false,
            ),
            (
                W::UnsupportedSignatureAlgorithmForPublicKeyContext(alg_for_key()),
                R::BadCertificate,
                false,
            ),
        ]);
    }

    #[test]
    #[allow(deprecated)]
    fn webpki_name_and_revocation_errors_have_a_reason_and_a_fix() {
        use webpki::Error as W;
        use Reason as R;
        let n = R::NameMismatch;
        let u = R::RevocationUnknown;
        check(&[
            (W::CertNotValidForName(name()), n, false),
            (W::MalformedDnsIdentifier, n, false),
            (W::UnsupportedNameType, n, false),
            (W::NameConstraintViolation, n, false),
            (W::MalformedNameConstraint, n, false),
            (W::InvalidNetworkMaskConstraint, n, false),
            (W::MaximumNameConstraintComparisonsExceeded, n, false),
            (W::CertRevoked, R::Revoked, false),
            (W::UnknownRevocationStatus, u, false),
            (
                W::CrlExpired {
                    time: t(2),
                    next_update: t(1),
                },
                u,
                false,
            ),
            (W::IssuerNotCrlSigner, u, false),
            (W::InvalidCrlSignatureForPublicKey, u, false),
            (W::UnsupportedCrlSignatureAlgorithm, u, false),
            (W::UnsupportedCrlSignatureAlgorithmForPublicKey, u, false),
            (W::UnsupportedCrlSignatureAlgorithmContext(alg()), u, false),
            (
                W::UnsupportedCrlSignatureAlgorithmForPublicKeyContext(alg_for_key()),
                u,
                false,
            ),
            (W::InvalidCrlNumber, u, false),
            (W::UnsupportedCrlIssuingDistributionPoint, u, false),
            (W::UnsupportedCrlVersion, u, false),
            (W::UnsupportedDeltaCrl, u, false),
            (W::UnsupportedIndirectCrl, u, false),
            (W::UnsupportedRevocationReason, u, false),
            (W::UnsupportedRevocationReasonsPartitioning, u, false),
        ]);
    }

    /// What rustls makes of the WebPKI errors it names itself.
    #[test]
    #[allow(deprecated)]
    fn every_rustls_certificate_error_has_a_reason_and_a_sentence() {
        use CertificateError as C;
        use Reason as R;
        let cases = [
            (C::BadEncoding, R::BadCertificate),
            (C::Expired, R::Expired),
            (
                C::ExpiredContext {
                    time: t(2),
                    not_after: t(1),
                },
                R::Expired,
            ),
            (C::NotValidYet, R::NotYetValid),
            (
                C::NotValidYetContext {
                    time: t(1),
                    not_before: t(2),
                },
                R::NotYetValid,
            ),
            (C::Revoked, R::Revoked),
            (C::UnhandledCriticalExtension, R::BadCertificate),
            (C::UnknownIssuer, R::UnknownCa),
            (C::UnknownRevocationStatus, R::RevocationUnknown),
            (C::ExpiredRevocationList, R::RevocationUnknown),
            (C::BadSignature, R::BadCertificate),
            (C::UnsupportedSignatureAlgorithm, R::BadCertificate),
            (C::NotValidForName, R::NameMismatch),
            (C::InvalidPurpose, R::BadCertificate),
            (C::InvalidOcspResponse, R::BadCertificate),
            (C::ApplicationVerificationFailure, R::PinMismatch),
        ];
        for (c, want) in cases {
            let (reason, sentence) = certificate(&c);
            assert_eq!(reason, want, "{c:?}");
            assert_eq!(sentence.contains("malformed"), c == C::BadEncoding, "{c:?}");
            assert!(sentence.contains(": "), "{c:?}: {sentence}");
        }
    }

    #[test]
    fn a_refusal_keeps_its_own_reason_and_words() {
        let e = Refusal::new(Reason::UnknownCa, "self-signed: add it to ca").into_error();
        assert_eq!(refusal(&e).unwrap().text, "self-signed: add it to ca");
        assert_eq!(super::super::reason::classify_rustls(&e), Reason::UnknownCa);
        let Error::InvalidCertificate(c) = &e else {
            unreachable!()
        };
        assert_eq!(
            certificate(c),
            (Reason::UnknownCa, "self-signed: add it to ca".into())
        );
    }
}
