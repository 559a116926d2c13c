//! Why a handshake failed, from the error rustls or the socket gave: the
//! `reason` label (`crate::labels::Reason`) of
//! `tls_sidecar_handshake_errors_total`, and in words for the log.
//!
//! tokio-rustls reports a rustls error as an `io::Error` wrapping the
//! `rustls::Error`; a TCP-level end shows as EOF or reset. Both map here.

use std::io;

use rustls::{AlertDescription, Error, PeerIncompatible};

use crate::labels::Reason;

/// The words for a client whose verified certificate `listen_tls.allow`
/// refused (reason `not_authorized`); `who` is already escaped.
pub fn not_authorized(who: &impl std::fmt::Display) -> String {
    format!("the client certificate is valid but its identity matches no entry of listen_tls.allow (refused with access_denied); it presented {who}")
}

/// The reason label for a failed handshake.
pub fn classify(err: &io::Error) -> Reason {
    if let Some(e) = err.get_ref().and_then(|e| e.downcast_ref::<Error>()) {
        return classify_rustls(e);
    }
    match err.kind() {
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => Reason::PeerClosed,
        io::ErrorKind::TimedOut => Reason::Timeout,
        _ => Reason::Other,
    }
}

/// The reason label for a rustls error, whichever side detected it.
pub fn classify_rustls(e: &Error) -> Reason {
    use AlertDescription as A;
    use PeerIncompatible as P;
    match e {
        // Every certificate error, WebPKI's and our own refusals inside
        // `Other` included: `explain` has the table.
        Error::InvalidCertificate(c) => super::explain::certificate(c).0,
        Error::InvalidCertRevocationList(_) => Reason::RevocationUnknown,
        Error::NoCertificatesPresented => Reason::NoClientCert,
        Error::PeerIncompatible(
            P::Tls12NotOffered
            | P::Tls12NotOfferedOrEnabled
            | P::Tls13RequiredForQuic
            | P::ServerDoesNotSupportTls12Or13
            | P::ServerTlsVersionIsDisabledByOurConfig
            | P::SupportedVersionsExtensionRequired
            // A ClientHello without signature_algorithms is from before TLS 1.2.
            | P::SignatureAlgorithmsExtensionRequired,
        ) => Reason::ProtocolVersion,
        Error::AlertReceived(A::ProtocolVersion) => Reason::ProtocolVersion,
        Error::AlertReceived(A::UnknownCA) => Reason::UnknownCa,
        Error::AlertReceived(A::CertificateExpired) => Reason::Expired,
        Error::AlertReceived(A::CertificateRevoked) => Reason::Revoked,
        Error::AlertReceived(A::CertificateRequired) => Reason::NoClientCert,
        Error::AlertReceived(A::BadCertificate | A::UnsupportedCertificate | A::CertificateUnknown) => {
            Reason::BadCertificate
        }
        Error::AlertReceived(A::UnrecognisedName) => Reason::NoSni,
        Error::AlertReceived(A::AccessDenied) => Reason::NotAuthorized,
        _ => Reason::Other,
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
    match e {
        // Our own sentences stand alone; WebPKI's and rustls's get rustls's
        // words after them (names, times, the WebPKI error's name).
        Error::InvalidCertificate(c) => {
            let (_, sentence) = super::explain::certificate(c);
            if super::explain::refusal(e).is_some()
                || super::verify::revocation_unknown(e).is_some()
            {
                return sentence;
            }
            return format!("{sentence} ({e})");
        }
        Error::InvalidCertRevocationList(l) => return super::explain::revocation_list(l).1,
        _ => {}
    }
    if let Error::InvalidMessage(rustls::InvalidMessage::HandshakePayloadTooLarge) = e {
        return format!("a handshake message is larger than the 64 KiB TLS implementations accept (a certificate chain or CA list too long): {e}");
    }
    let what = classify_rustls(e).words();
    format!("{what}: {e}")
}

/// The rustls error inside an I/O error, if any, for a precise log message.
pub fn rustls_error(err: &io::Error) -> Option<&Error> {
    err.get_ref().and_then(|e| e.downcast_ref::<Error>())
}

#[cfg(test)]
mod tests {
    use rustls::CertificateError;

    use super::*;

    fn wrap(e: Error) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }

    #[test]
    fn certificate_failures_map_to_their_reasons() {
        let cases = [
            (CertificateError::UnknownIssuer, Reason::UnknownCa),
            (CertificateError::Expired, Reason::Expired),
            (CertificateError::NotValidYet, Reason::NotYetValid),
            (CertificateError::Revoked, Reason::Revoked),
            (
                CertificateError::UnknownRevocationStatus,
                Reason::RevocationUnknown,
            ),
            (CertificateError::NotValidForName, Reason::NameMismatch),
            (
                CertificateError::ApplicationVerificationFailure,
                Reason::PinMismatch,
            ),
            (CertificateError::BadSignature, Reason::BadCertificate),
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
            Reason::NoClientCert
        );
        assert_eq!(
            classify(&wrap(Error::AlertReceived(
                AlertDescription::ProtocolVersion
            ))),
            Reason::ProtocolVersion
        );
        assert_eq!(
            classify(&wrap(Error::AlertReceived(AlertDescription::UnknownCA))),
            Reason::UnknownCa
        );
    }

    #[test]
    fn transport_ends_are_peer_closed_or_timeout() {
        assert_eq!(
            classify(&io::ErrorKind::UnexpectedEof.into()),
            Reason::PeerClosed
        );
        assert_eq!(
            classify(&io::ErrorKind::ConnectionReset.into()),
            Reason::PeerClosed
        );
        assert_eq!(classify(&io::ErrorKind::TimedOut.into()), Reason::Timeout);
    }
}
