//! The labels more than one layer names: why a handshake or connection
//! failed (`Reason`, the `reason` label of
//! `tls_sidecar_handshake_errors_total`) and on which leg (`Side`). `tls`
//! maps rustls errors to them (`tls::reason`), `upgrade` its refusals,
//! `route` and `telemetry` count them; they sit below all of these so that
//! none imports another sideways for a label.

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
    pub(crate) fn words(self) -> &'static str {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_label_is_listed_once_with_the_interface_names() {
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
