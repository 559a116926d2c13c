//! Why a handshake failed and on which side, as the `reason` and `side`
//! labels of `tls_sidecar_handshake_errors_total` and in words for the log.
//!
//! tokio-rustls reports a rustls error as an `io::Error` wrapping the
//! `rustls::Error`; a TCP-level end shows as EOF or reset. Both map here.

use std::io;

use rustls::{AlertDescription, Error, PeerIncompatible};

/// Why a handshake failed: the `reason` label of
/// `tls_sidecar_handshake_errors_total` (the interface's names, plus
/// `ktls_refused`, documented on the metrics page, docs/src/metrics.md).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    strum::IntoStaticStr,
    strum::Display,
    strum::VariantArray,
)]
#[strum(serialize_all = "snake_case")]
pub enum Reason {
    UnknownCa,
    Expired,
    NotYetValid,
    Revoked,
    RevocationUnknown,
    NameMismatch,
    PinMismatch,
    BadCertificate,
    NoClientCert,
    ProtocolVersion,
    NoSni,
    NotAuthorized,
    UpgradeRefused,
    UpgradeProtocol,
    ProxyProtocol,
    ProxyRefused,
    Timeout,
    PeerClosed,
    /// The kernel took the `tls` ULP but refused the keys, after rustls gave
    /// them up (`kernel_tls = "auto"`): the one kTLS failure that ends a
    /// connection rather than falling back.
    KtlsRefused,
    Other,
}

impl Reason {
    /// Every reason, in label order.
    pub const ALL: &'static [Reason] = <Self as strum::VariantArray>::VARIANTS;

    /// The label.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Which check failed, in words, for a reason rustls reports.
    fn words(self) -> &'static str {
        match self {
            Reason::UnknownCa => "the certificate chain does not lead to a trusted CA",
            Reason::Expired => "the certificate has expired",
            Reason::NotYetValid => "the certificate is not valid yet",
            Reason::Revoked => "a certificate of the chain is revoked by a configured CRL",
            Reason::RevocationUnknown => {
                "no revocation list (CRL) is configured for an issuer in the chain"
            }
            Reason::NameMismatch => "the certificate does not cover the expected name",
            Reason::PinMismatch => "the certificate's public key matches none of the pins",
            Reason::BadCertificate => "a certificate was refused",
            Reason::NoClientCert => "a client certificate was required and none was presented",
            Reason::ProtocolVersion => {
                "no TLS version in common (only TLS 1.2 and 1.3 are allowed)"
            }
            Reason::NoSni => "the server does not know the name asked for (SNI)",
            Reason::NotAuthorized => "the peer refused our certificate's identity (access_denied)",
            _ => "handshake failed",
        }
    }
}

/// Which leg of a connection: the `side` label of the handshake metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr, strum::Display)]
pub enum Side {
    /// The local application's leg (`listen`).
    #[strum(serialize = "listen")]
    Client,
    /// The peer's leg (`connect`).
    #[strum(serialize = "connect")]
    Upstream,
}

impl Side {
    /// The label.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

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
    fn transport_ends_are_peer_closed_and_every_label_is_listed() {
        assert_eq!(
            classify(&io::ErrorKind::UnexpectedEof.into()),
            Reason::PeerClosed
        );
        assert_eq!(
            classify(&io::ErrorKind::ConnectionReset.into()),
            Reason::PeerClosed
        );
        assert_eq!(classify(&io::ErrorKind::TimedOut.into()), Reason::Timeout);
        assert_eq!(Reason::ALL.len(), 20);
        let mut labels: Vec<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
        labels.sort();
        labels.dedup();
        assert_eq!(labels.len(), Reason::ALL.len(), "labels are distinct");
        assert_eq!(Reason::PeerClosed.as_str(), "peer_closed");
        assert_eq!(Reason::KtlsRefused.as_str(), "ktls_refused");
        assert_eq!(
            (Side::Client.as_str(), Side::Upstream.as_str()),
            ("listen", "connect")
        );
    }
}
