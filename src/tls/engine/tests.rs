//! The unbuffered TLS client against a rustls server (tokio-rustls) over
//! in-memory pipes: half-close, truncation, close_notify, KeyUpdate,
//! session tickets, backpressure, idle memory, handshake errors. The relay
//! over it (bulk both ways, splice) is tested in `route::tls_relay_tests`;
//! the helpers both use are in `testing`.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{duplex, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio_rustls::server::TlsStream as ServerStream;
use tokio_rustls::TlsAcceptor;

use super::buffers::{POOL_IN, RECORD_PLAIN, STASH_SIZE};
use super::testing::{name, pair, pki, pki_named};
use super::*;
use crate::labels::Reason;

/// `count` long DNS names, "localhost" first: a leaf for them is about
/// 56 bytes per name.
fn many_names(count: usize) -> Vec<String> {
    std::iter::once("localhost".to_owned())
        .chain((1..count).map(|i| format!("host-{i:05}.a-long-subdomain-for-size.example.com")))
        .collect()
}

/// A ping and its pong; the client holds no buffer before or after.
async fn ping_pong_holds_no_buffer_when_idle(
    c: &mut TlsClient<DuplexStream>,
    s: &mut ServerStream<DuplexStream>,
) {
    assert_eq!(c.buffered_capacity(), 0, "after the handshake");
    c.write_all(b"ping").await.unwrap();
    c.flush().await.unwrap();
    let mut b = [0u8; 4];
    s.read_exact(&mut b).await.unwrap();
    s.write_all(b"pong").await.unwrap();
    s.flush().await.unwrap();
    c.read_exact(&mut b).await.unwrap();
    assert_eq!(&b, b"pong");
    assert_eq!(c.buffered_capacity(), 0, "idle again");
}

#[tokio::test]
async fn tls12_works_and_an_idle_connection_holds_no_buffer() {
    let p = pki(&[&rustls::version::TLS12]);
    let (mut c, mut s) = pair(&p, 64 * 1024).await;
    assert_eq!(
        c.session().protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    ping_pong_holds_no_buffer_when_idle(&mut c, &mut s).await;
}

#[tokio::test]
async fn a_server_certificate_near_the_64_kib_limit_works_and_idle_holds_no_buffer() {
    let names = many_names(1200);
    for versions in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let p = pki_named(&[versions], &names);
        let (mut c, mut s) = pair(&p, 64 * 1024).await;
        let leaf_len = c.session().peer_certificates().unwrap()[0].len();
        assert!(
            (56 * 1024..0x1_0000).contains(&leaf_len),
            "leaf {leaf_len} bytes"
        );
        ping_pong_holds_no_buffer_when_idle(&mut c, &mut s).await;
        // The pool never keeps a handshake-sized buffer.
        POOL_IN.with(|p| assert!(p.all(|b| b.len() == IN_SIZE)));
    }
}

#[tokio::test]
async fn a_server_certificate_over_the_64_kib_limit_is_refused_with_its_reason() {
    // A certificate over 64 KiB is refused by rustls's own parser, so the
    // server sends a chain padded with two 50 KB certificates (the
    // certificates after the first are not parsed by the sender).
    let p = pki(&[&rustls::version::TLS13]);
    let ca = crate::pki::Ca::new("padding CA");
    let names = many_names(1000);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let padding = CertificateDer::from(ca.leaf("padding", &names).cert_der);
    let leaf = ca.leaf("localhost", &["localhost"]);
    let server = rustls::ServerConfig::builder_with_provider(crate::tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![
                CertificateDer::from(leaf.cert_der.clone()),
                padding.clone(),
                padding,
            ],
            PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap(),
        )
        .unwrap();
    let (c, s) = duplex(64 * 1024);
    let (c, _s) = tokio::join!(
        connect(p.client.clone(), name(), c),
        TlsAcceptor::from(Arc::new(server)).accept(s)
    );
    let e = c.err().expect("a certificate message over 64 KiB fails");
    assert!(
        crate::tls::reason::describe(&e)
            .starts_with("a handshake message is larger than the 64 KiB"),
        "{}",
        crate::tls::reason::describe(&e)
    );
}

#[tokio::test]
async fn half_close_each_way() {
    let p = pki(&[&rustls::version::TLS13]);
    // Ours first: close_notify + FIN, and the server's data still arrives.
    let (mut c, mut s) = pair(&p, 1 << 20).await;
    c.write_all(b"request").await.unwrap();
    c.shutdown().await.unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"request");
    s.write_all(&[9u8; 100_000]).await.unwrap();
    s.shutdown().await.unwrap();
    let mut back = Vec::new();
    c.read_to_end(&mut back).await.unwrap();
    assert_eq!(back.len(), 100_000);

    // Theirs first: a clean end to our reads, and we can still write.
    let (mut c, mut s) = pair(&p, 1 << 20).await;
    s.write_all(b"banner").await.unwrap();
    s.shutdown().await.unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"banner");
    assert_eq!(c.read(&mut [0u8; 8]).await.unwrap(), 0, "stays at the end");
    c.write_all(&[7u8; 100_000]).await.unwrap();
    c.shutdown().await.unwrap();
    let mut up = Vec::new();
    s.read_to_end(&mut up).await.unwrap();
    assert_eq!(up.len(), 100_000);
}

#[tokio::test]
async fn a_tcp_end_without_close_notify_is_unexpected_eof_after_the_data() {
    let p = pki(&[&rustls::version::TLS13]);
    let (mut c, mut s) = pair(&p, 64 * 1024).await;
    s.write_all(b"partial").await.unwrap();
    s.flush().await.unwrap();
    // Close the transport without close_notify.
    let (io, _) = s.into_inner();
    drop(io);
    let mut b = [0u8; 7];
    c.read_exact(&mut b).await.unwrap();
    assert_eq!(&b, b"partial");
    let e = c.read(&mut [0u8; 8]).await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
}

#[tokio::test]
async fn key_updates_from_the_server_are_followed_and_answered() {
    let p = pki(&[&rustls::version::TLS13]);
    let (mut c, mut s) = pair(&p, 64 * 1024).await;
    for round in 0..5u8 {
        s.get_mut().1.refresh_traffic_keys().unwrap();
        s.write_all(&[round; 40_000]).await.unwrap();
        s.flush().await.unwrap();
        let mut b = vec![0u8; 40_000];
        c.read_exact(&mut b).await.unwrap();
        assert!(b.iter().all(|&x| x == round));
        // Our answer (our own KeyUpdate) goes before this data; the server
        // decrypts it with our new keys.
        c.write_all(&[round; 30_000]).await.unwrap();
        c.flush().await.unwrap();
        let mut b = vec![0u8; 30_000];
        s.read_exact(&mut b).await.unwrap();
        assert!(b.iter().all(|&x| x == round));
    }
}

#[tokio::test]
async fn session_tickets_after_the_handshake_make_the_next_connection_resume() {
    let p = pki(&[&rustls::version::TLS13]);
    let (mut c, mut s) = pair(&p, 64 * 1024).await;
    assert_eq!(
        c.session().handshake_kind(),
        Some(rustls::HandshakeKind::Full)
    );
    s.write_all(b"x").await.unwrap();
    s.flush().await.unwrap();
    let mut b = [0u8; 1];
    c.read_exact(&mut b).await.unwrap(); // the tickets came before this
    let (c2, _s2) = pair(&p, 64 * 1024).await;
    assert_eq!(
        c2.session().handshake_kind(),
        Some(rustls::HandshakeKind::Resumed)
    );
}

#[tokio::test]
async fn a_stalled_server_bounds_what_the_client_buffers() {
    let p = pki(&[&rustls::version::TLS13]);
    let (mut c, _s_never_reads) = pair(&p, 64 * 1024).await;
    let chunk = vec![1u8; 64 * 1024];
    let mut taken = 0usize;
    let r = tokio::time::timeout(Duration::from_millis(300), async {
        loop {
            taken += c.write(&chunk).await.unwrap();
        }
    })
    .await;
    assert!(r.is_err(), "the writer blocks");
    assert!(
        taken <= 64 * 1024 + OUT_SIZE + 2 * RECORD_PLAIN,
        "took {taken} bytes with a stalled peer"
    );
    assert!(c.buffered_capacity() <= OUT_SIZE + IN_SIZE + STASH_SIZE);
}

#[tokio::test]
async fn a_stalled_reader_with_a_busy_writer_bounds_the_stash() {
    // The server floods us while we only write: decrypted plaintext waits
    // in the stash, bounded by the one incoming buffer it came from.
    let p = pki(&[&rustls::version::TLS13]);
    let (mut c, s) = pair(&p, 64 * 1024).await;
    let (mut sr, mut sw) = tokio::io::split(s);
    let flood = tokio::spawn(async move {
        let _ = tokio::time::timeout(Duration::from_millis(300), async {
            loop {
                if sw.write_all(&[3u8; 16_384]).await.is_err() {
                    break;
                }
            }
        })
        .await;
        sw
    });
    let sink = tokio::spawn(async move {
        let mut b = vec![0u8; 65536];
        while sr.read(&mut b).await.unwrap_or(0) > 0 {}
    });
    for _ in 0..200 {
        c.write_all(&[5u8; 10_000]).await.unwrap();
        c.flush().await.unwrap();
        assert!(c.stashed() <= IN_SIZE, "stash {}", c.stashed());
    }
    let _ = flood.await;
    drop(sink);
}

#[tokio::test]
async fn handshake_failures_are_rustls_errors_for_the_reason_labels() {
    let p = pki(&[&rustls::version::TLS13]);
    let other = pki(&[&rustls::version::TLS13]);
    let (c, s) = duplex(64 * 1024);
    let (c, s) = tokio::join!(
        connect(other.client.clone(), name(), c),
        TlsAcceptor::from(p.server.clone()).accept(s)
    );
    let e = c.err().expect("an unknown CA fails");
    assert_eq!(crate::tls::reason::classify(&e), Reason::UnknownCa);
    let Err(se) = s else {
        panic!("the server saw our alert")
    };
    assert!(se.to_string().contains("UnknownCA"), "{se}");

    // A server that closes at once.
    let (c, s) = duplex(1024);
    drop(s);
    let e = connect(p.client.clone(), name(), c).await.err().unwrap();
    assert_eq!(crate::tls::reason::classify(&e), Reason::PeerClosed);
}

#[tokio::test]
async fn a_corrupt_record_fails_every_later_call_and_the_server_gets_our_alert() {
    let p = pki(&[&rustls::version::TLS13]);
    let (mut c, mut s) = pair(&p, 64 * 1024).await;
    // An application-data record that no key decrypts, under the server's
    // TLS, straight on its socket.
    let mut record = vec![0x17, 0x03, 0x03, 0x00, 0x20];
    record.extend_from_slice(&[0u8; 0x20]);
    s.get_mut().0.write_all(&record).await.unwrap();
    let e = c.read(&mut [0u8; 8]).await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
    let again = c.read(&mut [0u8; 8]).await.unwrap_err();
    assert_eq!(again.to_string(), e.to_string(), "a later read reports it");
    let write = c.write(b"late").await.unwrap_err();
    assert_eq!(write.to_string(), e.to_string(), "so does a write");
    let se = s.read(&mut [0u8; 8]).await.unwrap_err();
    assert!(se.to_string().contains("BadRecordMac"), "{se}");
}

#[tokio::test]
async fn a_write_behind_a_full_batch_the_socket_cannot_take_takes_nothing() {
    let p = pki(&[&rustls::version::TLS13]);
    let (mut c, _s_never_reads) = pair(&p, 1024).await;
    let chunk = vec![1u8; RECORD_PLAIN];
    for _ in 0..4 {
        let n = c.write(&chunk).await.unwrap();
        assert_eq!(n, RECORD_PLAIN, "a batch fills without the socket");
    }
    let polled = std::future::poll_fn(|cx| {
        std::task::Poll::Ready(std::pin::Pin::new(&mut c).poll_write(cx, &chunk))
    })
    .await;
    assert!(
        polled.is_pending(),
        "the full batch leaves first: {polled:?}"
    );
}
