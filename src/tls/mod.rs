//! TLS: certificate material from files, rustls client and server configs for
//! each route, the verifiers behind each `verify` mode, certificate name
//! matching (`names`), client identity rules (`identity`), stapled OCSP responses (`ocsp`), trust parity with OpenSSL
//! and Java (`policy`), and the mapping of handshake failures to the
//! reasons and sentences operators see in logs and metrics (`reason`,
//! `explain`).
//!
//! Everything above runs at load (and reload) time; connections only clone
//! the `Arc`s built here. The two engines run per connection, on the hot
//! path: `engine`, the upstream TLS client on rustls's unbuffered API, and
//! `kernel`, the switch of a TLS leg to kernel TLS (kTLS) after the
//! handshake. `route` picks one per leg (the `engine` label of
//! `route_info`).

/// The three signature methods of a rustls verifier that hands them to
/// another verifier in `self.$field`: every verifier here differs only in
/// its certificate policy, never in how handshake signatures are checked.
macro_rules! delegate_signatures {
    ($field:tt) => {
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &rustls::pki_types::CertificateDer<'_>,
            dss: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            self.$field.verify_tls12_signature(message, cert, dss)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &rustls::pki_types::CertificateDer<'_>,
            dss: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            self.$field.verify_tls13_signature(message, cert, dss)
        }

        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.$field.supported_verify_schemes()
        }
    };
}

/// The three methods of a rustls client-certificate verifier that say what
/// is asked of clients, handed to the verifier in `self.$field`: the
/// wrappers here add a check after the inner one, never change what is asked.
macro_rules! delegate_client_auth {
    ($field:tt) => {
        fn offer_client_auth(&self) -> bool {
            self.$field.offer_client_auth()
        }

        fn client_auth_mandatory(&self) -> bool {
            self.$field.client_auth_mandatory()
        }

        fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
            self.$field.root_hint_subjects()
        }
    };
}

/// The same three methods for a verifier that checks signatures itself,
/// with the algorithms of the crypto provider in `self.$field`, by the
/// certificate's public key alone (`verify::signed_by_key`): the key is
/// what `pin` trusts, and a certificate WebPKI cannot read as a leaf
/// (X.509 v1) still proves it holds it.
macro_rules! provider_signatures {
    ($field:tt) => {
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &rustls::pki_types::CertificateDer<'_>,
            dss: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            $crate::tls::verify::signed_by_key(
                message,
                cert,
                dss,
                &self.$field.signature_verification_algorithms,
                false,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &rustls::pki_types::CertificateDer<'_>,
            dss: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            $crate::tls::verify::signed_by_key(
                message,
                cert,
                dss,
                &self.$field.signature_verification_algorithms,
                true,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.$field
                .signature_verification_algorithms
                .supported_schemes()
        }
    };
}

pub mod client;
pub mod danger;
pub mod engine;
pub mod explain;
pub mod identity;
pub mod kernel;
pub mod keystore;
pub mod material;
pub mod names;
pub mod ocsp;
pub mod policy;
pub mod reason;
pub mod server;
pub mod verify;

use std::sync::{Arc, OnceLock};

use rustls::crypto::CryptoProvider;

use crate::config::TlsVersion;

/// The one crypto provider (aws-lc-rs), shared by every config.
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .clone()
}

/// The provider with only the cipher suites named (rustls names, as the
/// config layer resolved them); empty: every suite.
pub fn provider_with(ciphers: &[String]) -> Arc<CryptoProvider> {
    let all = provider();
    if ciphers.is_empty() {
        return all;
    }
    let mut p = (*all).clone();
    p.cipher_suites.retain(|s| {
        s.suite()
            .as_str()
            .is_some_and(|n| ciphers.iter().any(|c| c == n))
    });
    Arc::new(p)
}

/// Draws a few random bytes from the provider, so that the one-off seeding
/// of its random generator (aws-lc gathers CPU-jitter entropy: tens of
/// milliseconds of CPU, once per process) happens now rather than in the
/// first handshake.
pub fn warm_up() {
    let mut b = [0u8; 32];
    // A failure here would fail the first handshake too, with its reason.
    let _ = provider().secure_random.fill(&mut b);
}

/// The rustls protocol versions for a validated list.
pub(crate) fn versions(list: &[TlsVersion]) -> Vec<&'static rustls::SupportedProtocolVersion> {
    list.iter()
        .map(|v| match v {
            TlsVersion::Tls13 => &rustls::version::TLS13,
            TlsVersion::Tls12 => &rustls::version::TLS12,
        })
        .collect()
}

/// "TLSv1.3" / "TLSv1.2" for a negotiated version, as in the interface's labels.
pub fn version_name(v: Option<rustls::ProtocolVersion>) -> &'static str {
    match v {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
        Some(_) => "other",
        None => "none",
    }
}

/// The IANA name of a negotiated cipher suite ("TLS13_AES_128_GCM_SHA256").
pub fn suite_name(s: Option<rustls::SupportedCipherSuite>) -> &'static str {
    s.and_then(|s| s.suite().as_str()).unwrap_or("none")
}
