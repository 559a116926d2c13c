//! Why a handshake failed, as the `reason` label of
//! `tls_sidecar_handshake_errors_total` and in words for the log.
//!
//! tokio-rustls reports a rustls error as an `io::Error` wrapping the
//! `rustls::Error`; a TCP-level end shows as EOF or reset. Both map here.

use std::io;

use rustls::{AlertDescription, CertificateError, Error, PeerIncompatible};

/// Every reason label the interface names for handshake errors.
pub const REASONS: &[&str] = &[
    "unknown_ca",
    "expired",
    "not_yet_valid",
    "revoked",
    "revocation_unknown",
    "name_mismatch",
    "pin_mismatch",
    "bad_certificate",
    "no_client_cert",
    "protocol_version",
    "no_sni",
    "not_authorized",
    "upgrade_refused",
    "upgrade_protocol",
    "proxy_protocol",
    "proxy_refused",
    "timeout",
    "peer_closed",
    "other",
];

/// The words for a client whose verified certificate `listen_tls.allow`
/// refused (reason `not_authorized`); `who` is already escaped.
pub fn not_authorized(who: &impl std::fmt::Display) -> String {
    format!("the client certificate is valid but its identity matches no entry of listen_tls.allow (refused with access_denied); it presented {who}")
}

/// The reason label for a failed handshake.
pub fn classify(err: &io::Error) -> &'static str {
    if let Some(e) = err.get_ref().and_then(|e| e.downcast_ref::<Error>()) {
        return classify_rustls(e);
    }
    match err.kind() {
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => "peer_closed",
        io::ErrorKind::TimedOut => "timeout",
        _ => "other",
    }
}

/// The reason label for a rustls error, whichever side detected it.
pub fn classify_rustls(e: &Error) -> &'static str {
    use AlertDescription as A;
    use CertificateError as C;
    use PeerIncompatible as P;
    match e {
        Error::InvalidCertificate(C::UnknownIssuer) => "unknown_ca",
        Error::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => "expired",
        Error::InvalidCertificate(C::NotValidYet | C::NotValidYetContext { .. }) => "not_yet_valid",
        Error::InvalidCertificate(C::Revoked) => "revoked",
        Error::InvalidCertificate(C::UnknownRevocationStatus) => "revocation_unknown",
        e if super::verify::revocation_unknown(e).is_some() => "revocation_unknown",
        Error::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => {
            "name_mismatch"
        }
        Error::InvalidCertificate(C::ApplicationVerificationFailure) => "pin_mismatch",
        Error::InvalidCertificate(_) => "bad_certificate",
        Error::NoCertificatesPresented => "no_client_cert",
        Error::PeerIncompatible(
            P::Tls12NotOffered
            | P::Tls12NotOfferedOrEnabled
            | P::Tls13RequiredForQuic
            | P::ServerDoesNotSupportTls12Or13
            | P::ServerTlsVersionIsDisabledByOurConfig
            | P::SupportedVersionsExtensionRequired
            // A ClientHello without signature_algorithms is from before TLS 1.2.
            | P::SignatureAlgorithmsExtensionRequired,
        ) => "protocol_version",
        Error::AlertReceived(A::ProtocolVersion) => "protocol_version",
        Error::AlertReceived(A::UnknownCA) => "unknown_ca",
        Error::AlertReceived(A::CertificateExpired) => "expired",
        Error::AlertReceived(A::CertificateRevoked) => "revoked",
        Error::AlertReceived(A::CertificateRequired) => "no_client_cert",
        Error::AlertReceived(A::BadCertificate | A::UnsupportedCertificate | A::CertificateUnknown) => {
            "bad_certificate"
        }
        Error::AlertReceived(A::UnrecognisedName) => "no_sni",
        Error::AlertReceived(A::AccessDenied) => "not_authorized",
        _ => "other",
    }
}

/// A failed handshake in words an operator understands: which check failed
/// first, then rustls's own precise message.
pub fn describe(err: &io::Error) -> String {
    let Some(e) = rustls_error(err) else {
        return match err.kind() {
            io::ErrorKind::UnexpectedEof => {
                "the peer closed the connection during the handshake".into()
            }
            io::ErrorKind::ConnectionReset => {
                "the peer reset the connection during the handshake".into()
            }
            _ => err.to_string(),
        };
    };
    if let Some(r) = super::verify::revocation_unknown(e) {
        return r.to_string();
    }
    if let Error::InvalidMessage(rustls::InvalidMessage::HandshakePayloadTooLarge) = e {
        return format!("a handshake message is larger than the 64 KiB TLS implementations accept (a certificate chain or CA list too long): {e}");
    }
    let what = match classify_rustls(e) {
        "unknown_ca" => "the certificate chain does not lead to a trusted CA",
        "expired" => "the certificate has expired",
        "not_yet_valid" => "the certificate is not valid yet",
        "revoked" => "a certificate of the chain is revoked by a configured CRL",
        "revocation_unknown" => "no revocation list (CRL) is configured for an issuer in the chain",
        "name_mismatch" => "the certificate does not cover the expected name",
        "pin_mismatch" => "the certificate's public key matches none of the pins",
        "bad_certificate" => "the certificate is malformed or uses a refused algorithm",
        "no_client_cert" => "a client certificate was required and none was presented",
        "protocol_version" => "no TLS version in common (only TLS 1.2 and 1.3 are allowed)",
        "no_sni" => "the server does not know the name asked for (SNI)",
        "not_authorized" => "the peer refused our certificate's identity (access_denied)",
        _ => "handshake failed",
    };
    format!("{what}: {e}")
}

/// The rustls error inside an I/O error, if any, for a precise log message.
pub fn rustls_error(err: &io::Error) -> Option<&Error> {
    err.get_ref().and_then(|e| e.downcast_ref::<Error>())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrap(e: Error) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }

    #[test]
    fn certificate_failures_map_to_their_reasons() {
        let cases = [
            (CertificateError::UnknownIssuer, "unknown_ca"),
            (CertificateError::Expired, "expired"),
            (CertificateError::NotValidYet, "not_yet_valid"),
            (CertificateError::Revoked, "revoked"),
            (
                CertificateError::UnknownRevocationStatus,
                "revocation_unknown",
            ),
            (CertificateError::NotValidForName, "name_mismatch"),
            (
                CertificateError::ApplicationVerificationFailure,
                "pin_mismatch",
            ),
            (CertificateError::BadSignature, "bad_certificate"),
        ];
        for (c, want) in cases {
            assert_eq!(classify(&wrap(Error::InvalidCertificate(c))), want);
        }
    }

    #[test]
    fn alerts_from_the_peer_map_to_their_reasons() {
        assert_eq!(
            classify(&wrap(Error::AlertReceived(
                AlertDescription::CertificateRequired
            ))),
            "no_client_cert"
        );
        assert_eq!(
            classify(&wrap(Error::AlertReceived(
                AlertDescription::ProtocolVersion
            ))),
            "protocol_version"
        );
        assert_eq!(
            classify(&wrap(Error::AlertReceived(AlertDescription::UnknownCA))),
            "unknown_ca"
        );
    }

    #[test]
    fn transport_ends_are_peer_closed_and_every_label_is_listed() {
        assert_eq!(
            classify(&io::ErrorKind::UnexpectedEof.into()),
            "peer_closed"
        );
        assert_eq!(
            classify(&io::ErrorKind::ConnectionReset.into()),
            "peer_closed"
        );
        assert_eq!(classify(&io::ErrorKind::TimedOut.into()), "timeout");
        assert_eq!(REASONS.len(), 19);
    }
}
