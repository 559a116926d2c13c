//! DANGER: `verify = "none"`, the "trust server" mode the GMS guide asks for
//! Chat Server, UCS and E-mail Server. Any certificate is accepted, so the
//! link is encrypted but NOT authenticated: anyone on the path can pose as
//! the peer. A route using it is warned about at start, by `check`, and is
//! visible as `verify="none"` in `tls_sidecar_route_info`.

use std::sync::Arc;

use rustls::client::danger::{ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::Error;

/// Accepts every certificate; still checks that the handshake is signed by
/// the key in the certificate presented, as the TLS protocol requires.
#[derive(Debug)]
pub struct AcceptAnyCertificate {
    pub provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    signatures_by_provider!();
}
