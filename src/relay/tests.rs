//! The relay's behaviour on in-memory streams: both directions, half-close
//! each way, truncation, resets, idle timeout, backpressure.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{duplex, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use super::testing::client_half_closes_and_downstream_flows;
use super::*;

const IDLE: Duration = Duration::from_secs(3600);

/// A stream that plays back `reads` (then stays pending), records writes.
struct Scripted {
    reads: VecDeque<io::Result<Vec<u8>>>,
    written: Vec<u8>,
    shut_down: bool,
    flushes: usize,
    /// Writes fail with this (a peer that reset).
    refuse_writes: Option<io::ErrorKind>,
    /// Writes never complete (a peer that does not read).
    stall_writes: bool,
}

impl Scripted {
    fn new(reads: Vec<io::Result<Vec<u8>>>) -> Scripted {
        Scripted {
            reads: reads.into(),
            written: Vec::new(),
            shut_down: false,
            flushes: 0,
            refuse_writes: None,
            stall_writes: false,
        }
    }
}

impl Source for Scripted {}

impl AsyncRead for Scripted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.reads.pop_front() {
            Some(Ok(b)) => {
                buf.put_slice(&b);
                Poll::Ready(Ok(()))
            }
            Some(Err(e)) => Poll::Ready(Err(e)),
            None => Poll::Pending,
        }
    }
}

impl AsyncWrite for Scripted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(kind) = self.refuse_writes {
            return Poll::Ready(Err(kind.into()));
        }
        if self.stall_writes {
            return Poll::Pending;
        }
        self.written.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.flushes += 1;
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.shut_down = true;
        Poll::Ready(Ok(()))
    }
}

/// Runs a relay between two duplex pipes; returns the test's ends.
fn pair() -> (
    (tokio::io::DuplexStream, tokio::io::DuplexStream),
    (tokio::io::DuplexStream, tokio::io::DuplexStream),
) {
    let (client_app, client_relay) = duplex(64 * 1024);
    let (upstream_relay, upstream_peer) = duplex(64 * 1024);
    ((client_app, client_relay), (upstream_relay, upstream_peer))
}

#[tokio::test]
async fn bytes_flow_both_ways_and_both_ends_close_cleanly() {
    for swap in [false, true] {
        let ((mut app, mut c), (mut u, mut peer)) = pair();
        let relay = tokio::spawn(async move {
            if swap {
                relay(&mut u, &mut c, IDLE, &()).await
            } else {
                relay(&mut c, &mut u, IDLE, &()).await
            }
        });
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let d2 = data.clone();
        let writer = tokio::spawn(async move {
            app.write_all(&d2).await.unwrap();
            app.shutdown().await.unwrap();
            let mut back = Vec::new();
            app.read_to_end(&mut back).await.unwrap();
            back
        });
        let mut got = Vec::new();
        peer.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, data);
        peer.write_all(b"reply").await.unwrap();
        peer.shutdown().await.unwrap();
        assert_eq!(writer.await.unwrap(), b"reply");
        let out = relay.await.unwrap();
        assert!(matches!(out.end, End::Closed), "{:?}", out.end);
        let (sent, received) = if swap {
            (5, data.len() as u64)
        } else {
            (data.len() as u64, 5)
        };
        assert_eq!((out.upstream_bytes, out.downstream_bytes), (sent, received));
    }
}

#[tokio::test]
async fn half_close_from_client_keeps_downstream_flowing() {
    let ((mut app, mut c), (mut u, mut peer)) = pair();
    let relay = tokio::spawn(async move { relay(&mut c, &mut u, IDLE, &()).await });
    client_half_closes_and_downstream_flows(&mut app, &mut peer).await;
    assert!(matches!(relay.await.unwrap().end, End::Closed));
}

#[tokio::test]
async fn half_close_from_upstream_keeps_upstream_flowing() {
    let ((mut app, mut c), (mut u, mut peer)) = pair();
    let relay = tokio::spawn(async move { relay(&mut c, &mut u, IDLE, &()).await });
    peer.write_all(b"banner").await.unwrap();
    peer.shutdown().await.unwrap();
    let mut got = [0u8; 6];
    app.read_exact(&mut got).await.unwrap();
    assert_eq!(
        app.read(&mut [0u8; 1]).await.unwrap(),
        0,
        "the upstream's end reaches the client"
    );
    app.write_all(b"still talking").await.unwrap();
    app.shutdown().await.unwrap();
    let mut up = Vec::new();
    peer.read_to_end(&mut up).await.unwrap();
    assert_eq!(up, b"still talking");
    assert!(matches!(relay.await.unwrap().end, End::Closed));
}

#[tokio::test]
async fn a_truncated_upstream_delivers_every_byte_then_reports_truncation() {
    let mut client = Scripted::new(vec![]);
    let mut upstream = Scripted::new(vec![
        Ok(b"first ".to_vec()),
        Ok(b"second".to_vec()),
        Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "peer closed connection without sending TLS close_notify",
        )),
    ]);
    let out = relay(&mut client, &mut upstream, IDLE, &()).await;
    assert_eq!(client.written, b"first second");
    assert!(
        client.flushes >= 1,
        "what was written is flushed before the failure is reported"
    );
    assert!(
        !client.shut_down,
        "a truncation is not turned into a clean end"
    );
    match out.end {
        End::Upstream(f) => assert_eq!(f.kind, FailKind::Truncated),
        other => panic!("{other:?}"),
    }
    assert_eq!(out.downstream_bytes, 12);
}

#[tokio::test]
async fn a_client_reset_is_the_clients_failure_and_reported_as_reset() {
    for swap in [false, true] {
        let mut failing = Scripted::new(vec![
            Ok(b"x".to_vec()),
            Err(io::ErrorKind::ConnectionReset.into()),
        ]);
        let mut other = Scripted::new(vec![]);
        let out = if swap {
            relay(&mut other, &mut failing, IDLE, &()).await
        } else {
            relay(&mut failing, &mut other, IDLE, &()).await
        };
        assert_eq!(other.written, b"x");
        assert!(!other.shut_down);
        match (swap, out.end) {
            (false, End::Client(f)) | (true, End::Upstream(f)) => {
                assert_eq!(f.kind, FailKind::Reset)
            }
            (_, e) => panic!("{e:?}"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn idle_timeout_ends_a_connection_that_moves_no_byte() {
    let ((mut app, mut c), (mut u, mut peer)) = pair();
    let relay =
        tokio::spawn(async move { relay(&mut c, &mut u, Duration::from_secs(60), &()).await });
    // Activity keeps it open past the timeout...
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_secs(40)).await;
        app.write_all(b"ping").await.unwrap();
        let mut b = [0u8; 4];
        peer.read_exact(&mut b).await.unwrap();
    }
    assert!(!relay.is_finished());
    // ...then silence ends it.
    tokio::time::sleep(Duration::from_secs(61)).await;
    let out = relay.await.unwrap();
    assert!(matches!(out.end, End::Idle { .. }), "{:?}", out.end);
    assert_eq!(out.upstream_bytes, 12);
}

/// A reader with endless data that counts what was taken from it.
struct Firehose(Arc<AtomicUsize>);

impl Source for Firehose {}

impl AsyncRead for Firehose {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = buf.remaining();
        buf.put_slice(&vec![7u8; n]);
        self.0.fetch_add(n, Ordering::Relaxed);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Firehose {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        b: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(b.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[tokio::test]
async fn a_stalled_reader_holds_memory_to_one_buffer() {
    let taken = Arc::new(AtomicUsize::new(0));
    let mut client = Firehose(taken.clone());
    // The upstream's side has a 1 KiB pipe that nobody reads.
    let (mut u, _peer_never_reads) = duplex(1024);
    let r = tokio::time::timeout(
        Duration::from_millis(200),
        relay(&mut client, &mut u, IDLE, &()),
    )
    .await;
    assert!(r.is_err(), "the relay waits for the stalled side");
    let t = taken.load(Ordering::Relaxed);
    assert!(
        t <= BUFFER_SIZE + 1024,
        "read {t} bytes from a client whose peer is stalled"
    );
}

#[tokio::test]
async fn bytes_are_observed_as_they_move() {
    struct Count(AtomicUsize, AtomicUsize);
    impl Observe for Count {
        fn upstream(&self, n: usize) {
            self.0.fetch_add(n, Ordering::Relaxed);
        }
        fn downstream(&self, n: usize) {
            self.1.fetch_add(n, Ordering::Relaxed);
        }
    }
    let count = Count(AtomicUsize::new(0), AtomicUsize::new(0));
    let mut client = Scripted::new(vec![Ok(vec![1; 10]), Ok(vec![])]);
    let mut upstream = Scripted::new(vec![Ok(vec![2; 3]), Ok(vec![])]);
    let out = relay(&mut client, &mut upstream, IDLE, &count).await;
    assert!(matches!(out.end, End::Closed));
    assert_eq!(
        (
            count.0.load(Ordering::Relaxed),
            count.1.load(Ordering::Relaxed)
        ),
        (10, 3)
    );
    assert!(
        client.shut_down && upstream.shut_down,
        "each clean end became a shutdown of the other side"
    );
}

#[tokio::test]
async fn a_refused_write_lets_the_other_direction_finish_first() {
    // The upstream sent a whole response and its clean end, then reset
    // because the client was still sending: the response is passed on
    // whole, with its clean end, before the relay reports the reset.
    for swap in [false, true] {
        let mut sender = Scripted::new(vec![Ok(b"more request".to_vec())]);
        let mut responder = Scripted::new(vec![Ok(b"whole response".to_vec()), Ok(Vec::new())]);
        responder.refuse_writes = Some(io::ErrorKind::ConnectionReset);
        let out = if swap {
            relay(&mut responder, &mut sender, IDLE, &()).await
        } else {
            relay(&mut sender, &mut responder, IDLE, &()).await
        };
        assert_eq!(sender.written, b"whole response");
        assert!(sender.shut_down, "the response's clean end was passed on");
        let f = match (swap, out.end) {
            (false, End::Upstream(f)) | (true, End::Client(f)) => f,
            (_, e) => panic!("{e:?}"),
        };
        assert_eq!(f.kind, FailKind::Reset);
        assert!(f.writing && f.other_done, "{f:?}");
        let (to_sender_done, to_responder_done) = if swap {
            (out.upstream_done, out.downstream_done)
        } else {
            (out.downstream_done, out.upstream_done)
        };
        assert!(to_sender_done && !to_responder_done);
    }
}

#[tokio::test]
async fn a_stop_signal_cuts_the_relay() {
    let ((_app, mut c), (mut u, _peer)) = pair();
    let out = relay_until(&mut c, &mut u, IDLE, &(), std::future::ready(())).await;
    assert!(matches!(out.end, End::Cut), "{:?}", out.end);
    assert!(!out.upstream_done && !out.downstream_done);
}

#[tokio::test(start_paused = true)]
async fn idle_timeout_says_whether_bytes_were_left_in_flight() {
    let mut client = Scripted::new(vec![Ok(b"stuck".to_vec())]);
    let mut upstream = Scripted::new(vec![]);
    upstream.stall_writes = true;
    let out = relay(&mut client, &mut upstream, Duration::from_secs(5), &()).await;
    assert!(
        matches!(out.end, End::Idle { in_flight: true }),
        "{:?}",
        out.end
    );
    let mut client = Scripted::new(vec![]);
    let mut upstream = Scripted::new(vec![]);
    let out = relay(&mut client, &mut upstream, Duration::from_secs(5), &()).await;
    assert!(
        matches!(out.end, End::Idle { in_flight: false }),
        "{:?}",
        out.end
    );
}
