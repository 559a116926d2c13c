//! Test support for the userspace engine, shared by its own tests and by
//! the relay-over-TLS tests (`route::tls_relay_tests`): a throwaway PKI
//! and rustls configs for it, a connected client/server pair over an
//! in-memory pipe, and a seeded byte pattern to send and check.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{duplex, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio_rustls::server::TlsStream as ServerStream;
use tokio_rustls::TlsAcceptor;

use super::{connect, TlsClient};

pub(crate) struct Pki {
    pub(crate) server: Arc<rustls::ServerConfig>,
    pub(crate) client: Arc<rustls::ClientConfig>,
}

pub(crate) fn pki(versions: &[&'static rustls::SupportedProtocolVersion]) -> Pki {
    pki_named(versions, &["localhost"])
}

/// A server certificate for `names`.
pub(crate) fn pki_named<S: AsRef<str>>(
    versions: &[&'static rustls::SupportedProtocolVersion],
    names: &[S],
) -> Pki {
    let names: Vec<&str> = names.iter().map(AsRef::as_ref).collect();
    let provider = crate::tls::provider();
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let ca = crate::pki::Ca::new(&format!("test CA {n}"));
    let leaf = ca.leaf("localhost", &names);
    let server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(leaf.cert_der.clone())],
            PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap(),
        )
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.cert_pem().as_bytes()).unwrap())
        .unwrap();
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Pki {
        server: Arc::new(server),
        client: Arc::new(client),
    }
}

pub(crate) fn name() -> ServerName<'static> {
    ServerName::try_from("localhost").unwrap()
}

pub(crate) async fn pair(
    p: &Pki,
    pipe: usize,
) -> (TlsClient<DuplexStream>, ServerStream<DuplexStream>) {
    let (c, s) = duplex(pipe);
    let (c, s) = tokio::join!(
        connect(p.client.clone(), name(), c),
        TlsAcceptor::from(p.server.clone()).accept(s)
    );
    (c.expect("client handshake"), s.expect("server handshake"))
}

fn pattern(seed: u64, len: usize) -> impl Iterator<Item = u8> {
    let mut x = seed | 1;
    (0..len).map(move |_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x as u8
    })
}

/// Writes `len` pattern bytes in odd-sized chunks, then shuts down.
pub(crate) async fn send<W: AsyncWrite + Unpin>(w: &mut W, seed: u64, len: usize) {
    let data: Vec<u8> = pattern(seed, len).collect();
    let mut off = 0;
    let mut step = 1;
    while off < len {
        let n = (len - off).min(step);
        w.write_all(&data[off..off + n]).await.unwrap();
        off += n;
        step = (step * 7 + 1) % 70_000 + 1;
    }
    w.shutdown().await.unwrap();
}

/// Reads to the end and checks the bytes against the pattern.
pub(crate) async fn check<R: AsyncRead + Unpin>(r: &mut R, seed: u64, len: usize) {
    let mut want = pattern(seed, len);
    let mut buf = vec![0u8; 50_000];
    let mut got = 0;
    loop {
        let n = r.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        for b in &buf[..n] {
            assert_eq!(Some(*b), want.next(), "byte {got}");
            got += 1;
        }
    }
    assert_eq!(got, len);
}
