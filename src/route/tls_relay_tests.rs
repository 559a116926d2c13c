//! The relay over the upstream TLS engine (`tls::engine`) against a
//! rustls server over in-memory pipes: bulk both ways through the splice
//! path, a truncation by the upstream, a stalled client bounding what the
//! engine holds. Here because `route` is where the relay and the engine
//! meet; the engine's own tests are in `tls::engine::tests`, the helpers
//! both use in `tls::engine::testing`.

use std::time::Duration;

use tokio::io::{duplex, AsyncWriteExt};

use crate::relay::{relay, End, FailKind};
use crate::tls::engine::testing::{check, pair, pki, send};
use crate::tls::engine::{IN_SIZE, OUT_SIZE, STASH_SIZE};

#[tokio::test]
async fn sixty_four_mib_both_ways_through_the_relay_arrive_intact() {
    const LEN: usize = 64 << 20;
    let p = pki(&[&rustls::version::TLS13]);
    let (tls, server) = pair(&p, 256 * 1024).await;
    let (mut app, mut client) = duplex(256 * 1024);
    let mut tls = tls;
    let relay = tokio::spawn(async move {
        let out = relay(&mut client, &mut tls, Duration::from_secs(60), &()).await;
        let held = tls.buffered_capacity();
        (out, held)
    });
    let (mut sr, mut sw) = tokio::io::split(server);
    let (mut ar, mut aw) = tokio::io::split(&mut app);
    tokio::join!(
        send(&mut aw, 1, LEN),
        check(&mut sr, 1, LEN),
        send(&mut sw, 2, LEN),
        check(&mut ar, 2, LEN),
    );
    let (out, held) = relay.await.unwrap();
    assert!(matches!(out.end, End::Closed), "{:?}", out.end);
    assert_eq!(
        (out.upstream_bytes, out.downstream_bytes),
        (LEN as u64, LEN as u64)
    );
    assert_eq!(held, 0, "nothing in flight: no buffer held");
}

#[tokio::test]
async fn an_upstream_tcp_end_without_close_notify_is_a_truncation() {
    let p = pki(&[&rustls::version::TLS13]);
    let (tls, s) = pair(&p, 64 * 1024).await;
    let mut tls = tls;
    let (io, _) = s.into_inner();
    drop(io);
    let (_app, mut client) = duplex(1024);
    let out = relay(&mut client, &mut tls, Duration::from_secs(5), &()).await;
    match out.end {
        End::Upstream(f) => assert_eq!(f.kind, FailKind::Truncated),
        e => panic!("{e:?}"),
    }
}

#[tokio::test]
async fn splicing_to_a_stalled_client_holds_at_most_one_batch_of_plaintext() {
    let p = pki(&[&rustls::version::TLS13]);
    let (mut tls, s) = pair(&p, 1 << 20).await;
    let (_sr, mut sw) = tokio::io::split(s);
    let flood = tokio::spawn(async move {
        let _ = tokio::time::timeout(Duration::from_millis(500), async {
            loop {
                if sw.write_all(&[3u8; 16_384]).await.is_err() {
                    break;
                }
            }
        })
        .await;
        sw
    });
    // The client's side takes 1 KiB and is never read.
    let (_app_never_reads, mut client) = duplex(1024);
    let r = tokio::time::timeout(
        Duration::from_millis(300),
        relay(&mut client, &mut tls, Duration::from_secs(60), &()),
    )
    .await;
    assert!(r.is_err(), "the relay waits for the stalled client");
    assert!(
        tls.stashed() <= STASH_SIZE,
        "stash {} with a stalled writer",
        tls.stashed()
    );
    assert!(tls.buffered_capacity() <= IN_SIZE + STASH_SIZE + OUT_SIZE);
    drop(flood);
}
