//! How a connection ends, seen from a client that reads slowly (a small
//! receive buffer, a few KiB at a time): a cut is never a clean end, and a
//! clean end is never turned into a reset. Every byte the sidecar took from
//! one side reaches the other before any reset (issue 14, item 3).

mod common;

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// A client with a 4 KiB receive buffer, so bytes back up in the sidecar.
async fn slow_client(port: u16) -> TcpStream {
    let s = TcpSocket::new_v4().unwrap();
    s.set_recv_buffer_size(4096).unwrap();
    s.connect(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .unwrap()
}

/// How a slow read of the whole stream ended: the bytes, and `Ok(())` for a
/// clean EOF or the error that ended it.
struct Read {
    bytes: Vec<u8>,
    end: Result<(), ErrorKind>,
}

/// Reads 2 KiB every 2 ms until EOF or an error, at most `patience(secs)`.
async fn read_slowly<R: tokio::io::AsyncRead + Unpin>(c: &mut R, secs: u64) -> Read {
    // A signal that never comes: slow to the end.
    let (_never, rx) = tokio::sync::oneshot::channel();
    read_slowly_until(c, secs, rx).await
}

/// As [`read_slowly`] until `done` fires (the upstream has written its last
/// byte), then without pausing: the bytes still in flight then must reach
/// the client before the sidecar's reset, which waits at most
/// `ending::DRAIN` (5 s) for them. A client that kept its 2 ms pauses
/// would need longer than that where the machine is slow (the emulated
/// guest, a loaded host), and the test would measure the machine.
async fn read_slowly_until<R: tokio::io::AsyncRead + Unpin>(
    c: &mut R,
    secs: u64,
    mut done: tokio::sync::oneshot::Receiver<()>,
) -> Read {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 2048];
    let deadline = tokio::time::Instant::now() + patience(secs);
    let mut slow = true;
    loop {
        let r = tokio::time::timeout_at(deadline, c.read(&mut buf))
            .await
            .expect("the stream neither ended nor failed in time");
        match r {
            Ok(0) => return Read { bytes, end: Ok(()) },
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
            Err(e) => {
                return Read {
                    bytes,
                    end: Err(e.kind()),
                }
            }
        }
        if slow && done.try_recv().is_ok() {
            slow = false;
        }
        if slow {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

/// Until every byte written to `tcp` has been sent to the peer (poll(2)
/// with `TCP_NOTSENT_LOWAT` at 1, as the sidecar asks before a reset), or
/// `within`: a reset discards what is still unsent.
async fn sent(tcp: &tokio::net::TcpStream, within: Duration) {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    socket2::SockRef::from(tcp)
        .set_tcp_notsent_lowat(1)
        .unwrap();
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        let mut fds = [PollFd::new(tcp, PollFlags::OUT)];
        let now = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        poll(&mut fds, Some(&now)).unwrap();
        if fds[0].revents().contains(PollFlags::OUT) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the upstream's bytes were not sent within {within:?}");
}

/// Until the socket `from` → `to` (the sidecar's end of an upstream
/// connection) holds nothing unread: its Recv-Q as `ss -tn` shows it is 0.
async fn taken(from: std::net::SocketAddr, to: std::net::SocketAddr, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let out = std::process::Command::new("ss")
            .args([
                "-tnH",
                "state",
                "all",
                "src",
                &from.to_string(),
                "dst",
                &to.to_string(),
            ])
            .output()
            .expect("ss (iproute2, installed by tests/setup.sh)");
        let text = String::from_utf8_lossy(&out.stdout);
        let queued: Option<u64> = text
            .lines()
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|q| q.parse().ok());
        if queued == Some(0) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the sidecar left {queued:?} bytes unread for {within:?}: {text}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Writes this test's row of the hardening summary.
fn row(test: &str, case: &str, done: &str, expected: &str, observed: String, held: bool) {
    Summary::new(test).row(case, done, expected, &observed, held, "");
}

/// Byte `i` of the test pattern: a prefix of it is recognisable.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// A plain upstream that runs `serve` on its first connection.
async fn plain_upstream<F, Fut>(serve: F) -> SocketAddr
where
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let (s, _) = l.accept().await.unwrap();
        serve(s).await;
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_grace_expiry_resets_a_client_of_an_endless_stream() {
    let dir = tmpdir();
    let up = plain_upstream(|mut s| async move {
        let chunk = pattern(16 * 1024);
        let until = tokio::time::Instant::now() + patience(30);
        while tokio::time::Instant::now() < until && s.write_all(&chunk).await.is_ok() {}
    })
    .await;
    let p = free_port();
    let mut s = Sidecar::start(dir.path(), &route("endless", p, &[up.to_string()], ""));
    let mut c = slow_client(p).await;
    let mut first = [0u8; 1024];
    c.read_exact(&mut first).await.unwrap();
    s.signal("TERM");
    // shutdown_grace is 2 s in the test config.
    let r = read_slowly(&mut c, 20).await;
    row(
        "shutdown_grace_expiry_resets_a_client_of_an_endless_stream",
        "cut: shutdown_grace runs out on an endless stream",
        "plain route from an endless upstream, client reading slowly (4 KiB receive buffer); SIGTERM, shutdown_grace 2 s",
        "the client's read ends in a reset, never a clean EOF",
        format!("{} bytes, then {:?}", r.bytes.len(), r.end),
        r.end == Err(ErrorKind::ConnectionReset),
    );
    assert_eq!(
        r.end,
        Err(ErrorKind::ConnectionReset),
        "a stream cut at the end of shutdown_grace must not look finished ({} bytes read)",
        r.bytes.len()
    );
    assert_eq!(s.wait_exit(10), Some(0));
    assert!(s.has_log("cut"), "{}", s.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_grace_expiry_sends_a_tls_upstream_no_close_notify() {
    const REQUEST: &[u8] = b"a request that never ends";
    let dir = tmpdir();
    let pki = Pki::new(dir.path());
    let (srv, arrived, end) = tls_reader(pki.server_config(), REQUEST).await;
    let p = free_port();
    let mut s = Sidecar::start(dir.path(), &pki.route_to("cut-tls", p, srv));
    let mut c = TcpStream::connect(("127.0.0.1", p)).await.unwrap();
    c.write_all(REQUEST).await.unwrap();
    arrives(arrived, 10, "the request reached the upstream").await;
    s.signal("TERM");
    let end = arrives(end, 15, "the upstream saw its stream end").await;
    assert!(
        matches!(
            end,
            Err(ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset)
        ),
        "the upstream must see the cut as an abort, not close_notify: {end:?}"
    );
    assert_eq!(s.wait_exit(10), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_timeout_with_bytes_stuck_in_flight_resets_the_client() {
    let dir = tmpdir();
    const SENT: usize = 4 << 20;
    let up = plain_upstream(|mut s| async move {
        // More than every buffer on the way holds; then silence.
        let _ = s.write_all(&pattern(SENT)).await;
        tokio::time::sleep(Duration::from_secs(20)).await;
    })
    .await;
    let p = free_port();
    let text = route("stuck", p, &[up.to_string()], "")
        .replace("connect = [", "idle_timeout = \"1s\"\nconnect = [");
    let s = Sidecar::start(dir.path(), &text);
    let mut c = slow_client(p).await;
    // Read nothing until the idle timeout has passed.
    assert!(s.wait_log("end=", 15), "{}", s.logs());
    let r = read_slowly(&mut c, 30).await;
    row(
        "idle_timeout_with_bytes_stuck_in_flight_resets_the_client",
        "idle timeout with bytes stuck in flight",
        "upstream sends 4 MiB then goes silent; the client reads nothing until idle_timeout (1 s) has passed, then reads slowly",
        "what was in flight arrives in order, then a reset (not a FIN)",
        format!("{} of {SENT} bytes in order, then {:?}", r.bytes.len(), r.end),
        r.end == Err(ErrorKind::ConnectionReset) && r.bytes == pattern(r.bytes.len()),
    );
    assert!(r.bytes.len() < SENT);
    assert_eq!(r.bytes, pattern(r.bytes.len()), "what arrived is in order");
    assert_eq!(
        r.end,
        Err(ErrorKind::ConnectionReset),
        "an idle timeout with bytes still in flight cut the stream: {} of {SENT} bytes, then a clean end",
        r.bytes.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_tls_upstream_reaches_a_slow_client_whole_then_as_a_reset() {
    let dir = tmpdir();
    let pki = Pki::new(dir.path());
    const SENT: usize = 1 << 20;
    let (done_tx, done) = tokio::sync::oneshot::channel();
    let done_tx = std::sync::Mutex::new(Some(done_tx));
    let srv = tls_server(pki.server_config(), move |mut s| {
        let done_tx = done_tx.lock().unwrap().take();
        async move {
            s.write_all(&pattern(SENT)).await.unwrap();
            s.flush().await.unwrap();
            // Drop the TCP socket under TLS: no close_notify.
            let (tcp, _) = s.into_inner();
            drop(tcp);
            if let Some(tx) = done_tx {
                let _ = tx.send(());
            }
        }
    })
    .await;
    let p = free_port();
    let s = Sidecar::start(dir.path(), &pki.route_to("trunc-slow", p, srv));
    let mut c = slow_client(p).await;
    let r = read_slowly_until(&mut c, 60, done).await;
    row(
        "a_truncated_tls_upstream_reaches_a_slow_client_whole_then_as_a_reset",
        "truncated TLS upstream, slow client",
        "TLS upstream sends 1 MiB, then closes TCP without close_notify; the client reads slowly",
        "all 1 MiB arrives, then a reset",
        format!("{} of {SENT} bytes, then {:?}", r.bytes.len(), r.end),
        r.bytes == pattern(SENT) && r.end == Err(ErrorKind::ConnectionReset),
    );
    assert_eq!(
        r.bytes.len(),
        SENT,
        "every byte before the truncation reached the client (end {:?})",
        r.end
    );
    assert_eq!(r.bytes, pattern(SENT));
    assert_eq!(r.end, Err(ErrorKind::ConnectionReset));
    assert!(s.wait_log("truncated", 5), "{}", s.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_reset_reaches_a_slow_client_after_every_byte_read_before_it() {
    let dir = tmpdir();
    const SENT: usize = 512 * 1024;
    let up = plain_upstream(|mut s| async move {
        let _ = s.write_all(&pattern(SENT)).await;
        // Everything written has left this socket (the sidecar read it or
        // it is in the sidecar's receive queue); then a reset.
        tokio::time::sleep(Duration::from_millis(500)).await;
        s.set_zero_linger().unwrap();
        drop(s);
    })
    .await;
    let p = free_port();
    let s = Sidecar::start(dir.path(), &route("up-reset", p, &[up.to_string()], ""));
    let mut c = slow_client(p).await;
    let r = read_slowly(&mut c, 60).await;
    assert!(s.wait_log("connection closed", 10), "{}", s.logs());
    let counted = s
        .metric(
            "tls_sidecar_bytes_total",
            &[("route", "up-reset"), ("direction", "downstream")],
        )
        .unwrap_or(0.0) as usize;
    row(
        "an_upstream_reset_reaches_a_slow_client_after_every_byte_read_before_it",
        "upstream reset, slow client",
        "plain upstream sends 512 KiB, then resets (SO_LINGER 0); the client reads slowly",
        "every byte the sidecar passed on (bytes_total) arrives, then a reset",
        format!(
            "{} bytes of {counted} passed on, then {:?}",
            r.bytes.len(),
            r.end
        ),
        r.bytes.len() == counted && r.end == Err(ErrorKind::ConnectionReset),
    );
    assert_eq!(
        r.bytes.len(),
        counted,
        "every byte the sidecar passed on arrived before the reset"
    );
    assert_eq!(r.bytes, pattern(r.bytes.len()));
    assert_eq!(r.end, Err(ErrorKind::ConnectionReset));
}

/// The review's case: the upstream sends a complete response and its
/// close_notify, then resets because the client is still sending. The
/// response ended cleanly; it must reach the client whole, then end clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_complete_response_with_close_notify_survives_the_upstreams_later_reset() {
    let dir = tmpdir();
    let pki = Pki::new(dir.path());
    const RESPONSE: usize = 256 * 1024;
    let srv = tls_server(pki.server_config(), |mut s| async move {
        let mut req = [0u8; 16];
        s.read_exact(&mut req).await.unwrap();
        s.write_all(&pattern(RESPONSE)).await.unwrap();
        s.shutdown().await.unwrap(); // close_notify (and FIN)
                                     // Once the sidecar has read the records and the close_notify out
                                     // of its socket (a reset makes the kernel drop what is still
                                     // queued), reset: the client still sends.
        let (tcp, _) = s.into_inner();
        sent(&tcp, patience(30)).await;
        taken(
            tcp.peer_addr().unwrap(),
            tcp.local_addr().unwrap(),
            patience(30),
        )
        .await;
        tcp.set_zero_linger().unwrap();
        drop(tcp);
    })
    .await;
    let p = free_port();
    let s = Sidecar::start(dir.path(), &pki.route_to("resp-reset", p, srv));
    let c = slow_client(p).await;
    let (mut rd, mut wr) = c.into_split();
    let writer = tokio::spawn(async move {
        let chunk = [b'q'; 16 * 1024];
        let until = tokio::time::Instant::now() + patience(20);
        while tokio::time::Instant::now() < until {
            if wr.write_all(&chunk).await.is_err() {
                break;
            }
        }
        wr
    });
    let Read { bytes, end } = read_slowly(&mut rd, 30).await;
    row(
        "a_complete_response_with_close_notify_survives_the_upstreams_later_reset",
        "whole response + close_notify, then the upstream resets",
        "TLS upstream sends 256 KiB and close_notify, then resets while the client is still sending; the client reads slowly",
        "the whole response arrives and ends cleanly (EOF)",
        format!("{} of {RESPONSE} bytes, then {end:?}", bytes.len()),
        bytes == pattern(RESPONSE) && end == Ok(()),
    );
    assert_eq!(
        bytes.len(),
        RESPONSE,
        "the whole response reached the client (end {end:?})\n{}",
        s.logs()
    );
    assert_eq!(bytes, pattern(RESPONSE));
    assert_eq!(
        end,
        Ok(()),
        "the response ended cleanly, and so must the client's read"
    );
    let _ = writer.await;
}
