//! The spliced relay on loopback sockets: the buffered relay's semantics
//! (both directions, half-close each way, resets, idle timeout, counting),
//! bounded memory behind a stalled reader, no pipe while idle, and the
//! buffered fallback when no pipe can be made.

use std::future::poll_fn;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::digest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{sleep, timeout, Instant};

use super::linux::{pooled, Direction, NO_PIPES, PIPE_SIZE};
use crate::relay::Relay;

/// The spliced relay's driver, to poll by hand.
fn splice_relay(idle: Duration) -> Relay<Direction, Direction> {
    Relay::new(Direction::new(), Direction::new(), idle)
}
use super::relay_tcp;
use crate::relay::testing::client_half_closes_and_downstream_flows;
use crate::relay::{End, FailKind, Observe, Outcome};

const IDLE: Duration = Duration::from_secs(3600);
const MIB: usize = 1024 * 1024;

/// Two connected loopback sockets.
async fn tcp_pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (a, b) = tokio::join!(TcpStream::connect(l.local_addr().unwrap()), l.accept());
    let (a, (b, _)) = (a.unwrap(), b.unwrap());
    a.set_nodelay(true).unwrap();
    b.set_nodelay(true).unwrap();
    (a, b)
}

/// (app, client side of the relay), (upstream side of the relay, peer).
async fn pairs() -> ((TcpStream, TcpStream), (TcpStream, TcpStream)) {
    (tcp_pair().await, tcp_pair().await)
}

#[derive(Default)]
struct Count(AtomicU64, AtomicU64);

impl Observe for Count {
    fn upstream(&self, n: usize) {
        self.0.fetch_add(n as u64, Ordering::Relaxed);
    }
    fn downstream(&self, n: usize) {
        self.1.fetch_add(n as u64, Ordering::Relaxed);
    }
}

fn spawn_relay(
    mut c: TcpStream,
    mut u: TcpStream,
    idle: Duration,
    count: Arc<Count>,
) -> tokio::task::JoinHandle<(Outcome, usize)> {
    tokio::spawn(async move {
        let out = relay_tcp(&mut c, &mut u, idle, &*count).await;
        (out, pooled())
    })
}

#[tokio::test]
async fn sixty_four_mib_each_way_at_once_arrive_intact_and_counted() {
    let size = 64 * MIB;
    let ((mut app, c), (u, mut peer)) = pairs().await;
    let count = Arc::new(Count::default());
    let relay = spawn_relay(c, u, IDLE, count.clone());
    let (mut app_r, mut app_w) = app.split();
    let (mut peer_r, mut peer_w) = peer.split();
    let (up_sent, up_got, down_sent, down_got) = tokio::join!(
        send_half(&mut app_w, size, 1),
        receive_half(&mut peer_r),
        send_half(&mut peer_w, size, 2),
        receive_half(&mut app_r),
    );
    assert_eq!(up_got, (size, up_sent), "client → upstream intact");
    assert_eq!(down_got, (size, down_sent), "upstream → client intact");
    let (out, pooled) = relay.await.unwrap();
    assert!(matches!(out.end, End::Closed), "{:?}", out.end);
    assert_eq!(
        (out.upstream_bytes, out.downstream_bytes),
        (size as u64, size as u64)
    );
    assert_eq!(
        (
            count.0.load(Ordering::Relaxed),
            count.1.load(Ordering::Relaxed)
        ),
        (size as u64, size as u64),
        "every byte observed"
    );
    assert_eq!(pooled, 2, "both pipes went back to the pool, empty");
}

/// Writes `total` pseudo-random bytes, then FIN; returns their SHA-256.
async fn send_half(w: &mut tokio::net::tcp::WriteHalf<'_>, total: usize, seed: u64) -> Vec<u8> {
    let mut ctx = digest::Context::new(&digest::SHA256);
    let mut x = seed | 1;
    let mut chunk = vec![0u8; 256 * 1024];
    let mut left = total;
    while left > 0 {
        for b in chunk.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b.copy_from_slice(&x.to_le_bytes());
        }
        let n = left.min(chunk.len());
        w.write_all(&chunk[..n]).await.unwrap();
        ctx.update(&chunk[..n]);
        left -= n;
    }
    w.shutdown().await.unwrap();
    ctx.finish().as_ref().to_vec()
}

/// Reads to the end; returns the byte count and their SHA-256.
async fn receive_half(r: &mut tokio::net::tcp::ReadHalf<'_>) -> (usize, Vec<u8>) {
    let mut ctx = digest::Context::new(&digest::SHA256);
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0;
    loop {
        let n = r.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
        total += n;
    }
    (total, ctx.finish().as_ref().to_vec())
}

#[tokio::test]
async fn half_close_from_client_keeps_downstream_flowing() {
    let ((mut app, c), (u, mut peer)) = pairs().await;
    let relay = spawn_relay(c, u, IDLE, Arc::default());
    client_half_closes_and_downstream_flows(&mut app, &mut peer).await;
    let (out, _) = relay.await.unwrap();
    assert!(matches!(out.end, End::Closed), "{:?}", out.end);
    assert_eq!((out.upstream_bytes, out.downstream_bytes), (7, 100_000));
}

#[tokio::test]
async fn half_close_from_upstream_keeps_upstream_flowing() {
    let ((mut app, c), (u, mut peer)) = pairs().await;
    let relay = spawn_relay(c, u, IDLE, Arc::default());
    peer.write_all(b"banner").await.unwrap();
    peer.shutdown().await.unwrap();
    let mut got = Vec::new();
    app.read_to_end(&mut got).await.unwrap(); // the upstream's FIN reached the client
    assert_eq!(got, b"banner");
    for i in 0..100u8 {
        app.write_all(&[i; 1000]).await.unwrap();
    }
    app.shutdown().await.unwrap();
    let mut up = Vec::new();
    peer.read_to_end(&mut up).await.unwrap();
    assert_eq!(up.len(), 100_000);
    let (out, _) = relay.await.unwrap();
    assert!(matches!(out.end, End::Closed), "{:?}", out.end);
}

/// Ends a socket with a TCP reset.
fn reset(s: TcpStream) {
    s.set_zero_linger().unwrap();
    drop(s);
}

#[tokio::test]
async fn a_reset_on_either_side_ends_the_relay_as_that_sides_reset() {
    for upstream_resets in [false, true] {
        let ((mut app, c), (u, mut peer)) = pairs().await;
        let relay = spawn_relay(c, u, IDLE, Arc::default());
        // Bytes flow first, both ways.
        app.write_all(b"ping").await.unwrap();
        let mut b = [0u8; 4];
        peer.read_exact(&mut b).await.unwrap();
        peer.write_all(b"pong").await.unwrap();
        app.read_exact(&mut b).await.unwrap();
        let survivor = if upstream_resets {
            reset(peer);
            app
        } else {
            reset(app);
            peer
        };
        let (out, _) = timeout(Duration::from_secs(10), relay)
            .await
            .expect("a reset ends the relay")
            .unwrap();
        match (upstream_resets, &out.end) {
            (false, End::Client(f)) | (true, End::Upstream(f)) => {
                assert_eq!(f.kind, FailKind::Reset, "{f:?}")
            }
            (_, e) => panic!("upstream_resets={upstream_resets}: {e:?}"),
        }
        assert_eq!((out.upstream_bytes, out.downstream_bytes), (4, 4));
        drop(survivor);
    }
}

#[tokio::test]
async fn idle_timeout_ends_a_connection_that_moves_no_byte() {
    let idle = Duration::from_millis(400);
    let ((mut app, c), (u, mut peer)) = pairs().await;
    let relay = spawn_relay(c, u, idle, Arc::default());
    let started = Instant::now();
    // Activity keeps it open past the timeout...
    for _ in 0..4 {
        sleep(Duration::from_millis(200)).await;
        app.write_all(b"ping").await.unwrap();
        let mut b = [0u8; 4];
        peer.read_exact(&mut b).await.unwrap();
    }
    assert!(!relay.is_finished(), "activity keeps it open");
    let quiet = Instant::now();
    // ...then silence ends it.
    let (out, _) = timeout(Duration::from_secs(10), relay)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(out.end, End::Idle { .. }), "{:?}", out.end);
    assert!(quiet.elapsed() >= idle - Duration::from_millis(50));
    assert!(started.elapsed() >= Duration::from_millis(800));
    assert_eq!(out.upstream_bytes, 16);
}

#[tokio::test]
async fn a_stalled_reader_bounds_what_is_in_flight_to_one_pipe() {
    let ((app, mut c), (mut u, _peer_never_reads)) = pairs().await;
    let written = Arc::new(AtomicU64::new(0));
    let w2 = written.clone();
    let firehose = tokio::spawn(async move {
        let mut app = app;
        let chunk = vec![7u8; 64 * 1024];
        loop {
            if app.write_all(&chunk).await.is_err() {
                return;
            }
            w2.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
    });
    let mut s = splice_relay(IDLE);
    let count = Count::default();
    macro_rules! drive {
        ($ms:expr) => {
            timeout(
                Duration::from_millis($ms),
                poll_fn(|cx| s.poll(cx, &mut c, &mut u, &count)),
            )
            .await
        };
    }
    assert!(drive!(1000).is_err(), "the relay waits for the reader");
    let w1 = written.load(Ordering::Relaxed);
    assert!(drive!(300).is_err());
    let w2 = written.load(Ordering::Relaxed);
    assert_eq!(
        w1, w2,
        "the writer is held back: nothing more is taken from it"
    );
    let in_flight = s.up.in_flight_bytes();
    assert!(
        in_flight > 0 && in_flight <= PIPE_SIZE as u64,
        "{in_flight} bytes in flight in the relay"
    );
    assert!(
        count.0.load(Ordering::Relaxed) + in_flight <= w1,
        "the relay moved only what was written"
    );
    firehose.abort();
}

#[tokio::test]
async fn an_idle_connection_holds_no_pipe() {
    let ((mut app, mut c), (mut u, mut peer)) = pairs().await;
    let mut s = splice_relay(IDLE);
    let exchange = async {
        app.write_all(b"hello").await.unwrap();
        let mut b = [0u8; 5];
        peer.read_exact(&mut b).await.unwrap();
        peer.write_all(b"world").await.unwrap();
        app.read_exact(&mut b).await.unwrap();
        sleep(Duration::from_millis(100)).await;
    };
    tokio::select! {
        e = poll_fn(|cx| s.poll(cx, &mut c, &mut u, &())) => panic!("relay ended: {e:?}"),
        () = exchange => {}
    }
    assert_eq!((s.up.bytes(), s.down.bytes()), (5, 5));
    assert!(
        !s.up.holds_pipe() && !s.down.holds_pipe(),
        "idle: no pipe held"
    );
    assert!(pooled() >= 1, "the pipes are pooled for the next burst");
}

#[tokio::test]
async fn without_pipes_it_copies_through_a_buffer_with_the_same_result() {
    NO_PIPES.with(|f| f.set(true));
    let ((mut app, c), (u, mut peer)) = pairs().await;
    let count = Arc::new(Count::default());
    let relay = spawn_relay(c, u, IDLE, count.clone());
    let size = 4 * MIB;
    let (mut app_r, mut app_w) = app.split();
    let (mut peer_r, mut peer_w) = peer.split();
    let (up_sent, up_got, down_sent, down_got) = tokio::join!(
        send_half(&mut app_w, size, 3),
        receive_half(&mut peer_r),
        send_half(&mut peer_w, size, 4),
        receive_half(&mut app_r),
    );
    assert_eq!(up_got, (size, up_sent));
    assert_eq!(down_got, (size, down_sent));
    let (out, pooled) = relay.await.unwrap();
    NO_PIPES.with(|f| f.set(false));
    assert!(matches!(out.end, End::Closed), "{:?}", out.end);
    assert_eq!(
        (out.upstream_bytes, out.downstream_bytes),
        (size as u64, size as u64)
    );
    assert_eq!(count.0.load(Ordering::Relaxed), size as u64);
    assert_eq!(pooled, 0, "no pipe was made");
}
