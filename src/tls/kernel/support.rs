//! What the running kernel offers for kTLS: the `tls` ULP and which of the
//! TLS 1.3 suites we use it takes, probed once; and whether a negotiated
//! session fits. Also the ULP step of a switch, which a leg may still
//! survive on rustls when the kernel refuses it.

use rustls::{CipherSuite, ProtocolVersion};
#[cfg(target_os = "linux")]
use std::io;
use tokio::net::TcpStream;

use super::Fallback;

/// The TLS 1.3 suites the running kernel takes for kTLS.
#[derive(Debug, Clone, Copy, Default)]
pub struct Suites {
    pub aes_128_gcm: bool,
    pub aes_256_gcm: bool,
    pub chacha20_poly1305: bool,
}

/// The suites the running kernel takes, probed once: a throwaway loopback
/// socket per suite we use (TLS 1.3 AES-128-GCM, AES-256-GCM,
/// ChaCha20-Poly1305), the `tls` ULP and a zero TX key on each. Blocks
/// (the kernel may instantiate and self-test its ciphers on first use);
/// `serve` runs it once at start off the runtime's threads.
/// `Err(NoUlp)` when the kernel has no `tls` ULP.
#[cfg(target_os = "linux")]
pub fn kernel() -> Result<Suites, Fallback> {
    use std::sync::OnceLock;
    static PROBED: OnceLock<Option<Suites>> = OnceLock::new();
    let c = PROBED.get_or_init(|| match probe() {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(error = %e, "kernel TLS probe failed");
            None
        }
    });
    c.ok_or(Fallback::NoUlp)
}

/// Whether a session with this version and suite can run on kTLS here.
#[cfg(target_os = "linux")]
pub fn suite_fits(version: ProtocolVersion, suite: CipherSuite) -> Result<(), Fallback> {
    let k = kernel()?;
    if version != ProtocolVersion::TLSv1_3 {
        return Err(Fallback::Tls12);
    }
    let ok = match suite {
        CipherSuite::TLS13_AES_128_GCM_SHA256 => k.aes_128_gcm,
        CipherSuite::TLS13_AES_256_GCM_SHA384 => k.aes_256_gcm,
        CipherSuite::TLS13_CHACHA20_POLY1305_SHA256 => k.chacha20_poly1305,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(Fallback::UnsupportedSuite)
    }
}

#[cfg(not(target_os = "linux"))]
pub fn suite_fits(_: ProtocolVersion, _: CipherSuite) -> Result<(), Fallback> {
    Err(Fallback::NotLinux)
}

/// The kernel offers the `tls` ULP with at least one suite we use.
pub fn available() -> bool {
    offer().is_ok()
}

/// What the kernel offers, in words (for `check`, `probe`, the start log).
pub fn offer() -> Result<String, Fallback> {
    #[cfg(target_os = "linux")]
    {
        let k = kernel()?;
        let mut s = Vec::new();
        if k.aes_128_gcm {
            s.push("TLS13_AES_128_GCM_SHA256");
        }
        if k.aes_256_gcm {
            s.push("TLS13_AES_256_GCM_SHA384");
        }
        if k.chacha20_poly1305 {
            s.push("TLS13_CHACHA20_POLY1305_SHA256");
        }
        if s.is_empty() {
            return Err(Fallback::UnsupportedSuite);
        }
        Ok(s.join(", "))
    }
    #[cfg(not(target_os = "linux"))]
    Err(Fallback::NotLinux)
}

/// See [`kernel`]. `Ok(None)`: no `tls` ULP.
#[cfg(target_os = "linux")]
fn probe() -> io::Result<Option<Suites>> {
    use ktls_core::{setup_ulp, AeadKey, ConnectionTrafficSecrets, TlsCryptoInfoTx};
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let mut held = Vec::new();
    let mut try_one = |secrets: ConnectionTrafficSecrets| -> io::Result<Option<bool>> {
        let sock = std::net::TcpStream::connect(addr)?;
        held.push(listener.accept()?.0);
        if let Err(e) = setup_ulp(&sock) {
            if e.is_ktls_unsupported() {
                return Ok(None);
            }
            return Err(e.into());
        }
        let v = ktls_core::ProtocolVersion::TLSv1_3;
        Ok(Some(
            TlsCryptoInfoTx::new(v, secrets, 0)
                .and_then(|tx| tx.set(&sock))
                .is_ok(),
        ))
    };
    let Some(aes_128_gcm) = try_one(ConnectionTrafficSecrets::Aes128Gcm {
        key: AeadKey::new(Default::default()),
        iv: Default::default(),
        salt: Default::default(),
    })?
    else {
        return Ok(None);
    };
    let aes_256_gcm = try_one(ConnectionTrafficSecrets::Aes256Gcm {
        key: AeadKey::new(Default::default()),
        iv: Default::default(),
        salt: Default::default(),
    })?
    .unwrap_or(false);
    let chacha20_poly1305 = try_one(ConnectionTrafficSecrets::Chacha20Poly1305 {
        key: AeadKey::new(Default::default()),
        iv: Default::default(),
        salt: Default::default(),
    })?
    .unwrap_or(false);
    Ok(Some(Suites {
        aes_128_gcm,
        aes_256_gcm,
        chacha20_poly1305,
    }))
}

/// The `tls` ULP alone: until keys are set the socket passes bytes
/// through as before, so a refusal here still lets the leg stay on
/// rustls.
#[cfg(target_os = "linux")]
pub(super) fn ulp(tcp: &TcpStream) -> Result<(), Fallback> {
    ktls_core::setup_ulp(tcp).map_err(|e| {
        tracing::debug!(error = %e, "the kernel refused the tls ULP");
        if e.is_ktls_unsupported() {
            Fallback::NoUlp
        } else {
            Fallback::UlpRefused
        }
    })
}

#[cfg(not(target_os = "linux"))]
pub(super) fn ulp(_: &TcpStream) -> Result<(), Fallback> {
    Err(Fallback::NotLinux)
}
