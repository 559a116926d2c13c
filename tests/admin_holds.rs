//! The admin endpoint holds under abuse (issue 25): 300 slow clients (a
//! partial `GET /healthz`, one byte every 2 s), or 300 idle keep-alive
//! connections, held against it while `/healthz` is asked on a new
//! connection again and again for over 5 s: every answer comes within
//! 100 ms (kubelet's probe timeout is 1 s). Before the fix, 32 slow clients
//! were served at once and every other connection, health checks included,
//! waited in the accept queue for as long as they were held.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Mutex};

const FLOOD: usize = 300;
const BOUND: Duration = Duration::from_millis(100);

/// How a flooding client behaves on its connection.
#[derive(Clone, Copy)]
enum Abuse {
    /// A partial request, a byte every 2 s.
    Slow,
    /// One complete request, its answer read, then nothing.
    Idle,
}

/// One abusive client: connects, abuses, and when the sidecar closes the
/// connection, waits 2 s and does it again, until the test ends. Tells
/// `up` once it has connected the first time.
async fn abuser(admin: SocketAddr, how: Abuse, up: mpsc::UnboundedSender<()>) {
    let mut first = true;
    loop {
        if let Ok(mut c) = TcpStream::connect(admin).await {
            if std::mem::take(&mut first) {
                let _ = up.send(());
            }
            match how {
                Abuse::Slow => {
                    for b in format!("GET /healthz HTTP/1.1\r\nHost: {admin}\r\n").bytes() {
                        if c.write_all(&[b]).await.is_err() {
                            break;
                        }
                        tokio::time::sleep(Duration::from_secs(2)).await;
                    }
                }
                Abuse::Idle => {
                    let req = format!("GET /healthz HTTP/1.1\r\nHost: {admin}\r\n\r\n");
                    let mut buf = [0u8; 512];
                    if c.write_all(req.as_bytes()).await.is_ok() {
                        // The answer, then the wait until the sidecar closes.
                        while let Ok(n) = c.read(&mut buf).await {
                            if n == 0 {
                                break;
                            }
                        }
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// `GET /healthz` on a new connection: the time to the whole answer.
async fn healthz(admin: SocketAddr) -> Duration {
    let t0 = Instant::now();
    let answer = tokio::time::timeout(patience(5), async {
        let mut c = TcpStream::connect(admin).await.unwrap();
        c.write_all(
            format!("GET /healthz HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
        let mut out = String::new();
        let _ = c.read_to_string(&mut out).await;
        out
    })
    .await
    .unwrap_or_default();
    let took = t0.elapsed();
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "no answer in {took:?}: {answer:?}"
    );
    took
}

/// One flood at a time: two would measure each other.
static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

async fn holds_under(how: Abuse) {
    let _one = ONE_AT_A_TIME.lock().await;
    let dir = tmpdir();
    let s = Sidecar::start_at(
        dir.path(),
        &format!(
            "[[route]]\nname = \"r\"\nlisten = \"127.0.0.1:{}\"\nconnect = [\"127.0.0.1:9\"]\n",
            free_port()
        ),
        "warn",
    );
    let admin = s.admin;
    let (up, mut connected) = mpsc::unbounded_channel();
    let flood: Vec<_> = (0..FLOOD)
        .map(|_| tokio::spawn(abuser(admin, how, up.clone())))
        .collect();
    for _ in 0..FLOOD {
        tokio::time::timeout(patience(30), connected.recv())
            .await
            .expect("the flood connects");
    }
    // Over 5 s, a health check every 250 ms.
    let mut times = Vec::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(6) {
        times.push(healthz(admin).await);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for f in flood {
        f.abort();
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{} /healthz under {FLOOD} {} connections: min {:.1} ms, median {:.1} ms, max {:.1} ms",
        times.len(),
        match how {
            Abuse::Slow => "slow",
            Abuse::Idle => "idle keep-alive",
        },
        ms(times[0]),
        ms(times[times.len() / 2]),
        ms(*times.last().unwrap())
    );
    assert!(times.len() >= 20, "{times:?}");
    assert!(
        times.iter().all(|t| *t < BOUND),
        "a health check took over {BOUND:?}: {times:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_answers_within_100ms_while_300_slow_clients_are_held() {
    holds_under(Abuse::Slow).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_answers_within_100ms_while_300_idle_keep_alive_connections_are_held() {
    holds_under(Abuse::Idle).await;
}

/// A kept-alive connection with no next request is closed after the
/// header timeout (3 s), and a client that never finishes its request head
/// is closed too: neither holds a slot for long.
#[tokio::test]
async fn idle_and_slow_connections_are_closed_after_the_header_timeout() {
    let dir = tmpdir();
    let s = Sidecar::start(
        dir.path(),
        &format!(
            "[[route]]\nname = \"r\"\nlisten = \"127.0.0.1:{}\"\nconnect = [\"127.0.0.1:9\"]\n",
            free_port()
        ),
    );
    let admin = s.admin;
    let mut idle = TcpStream::connect(admin).await.unwrap();
    idle.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {admin}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut slow = TcpStream::connect(admin).await.unwrap();
    slow.write_all(b"GET /hea").await.unwrap();
    let t0 = Instant::now();
    for c in [&mut idle, &mut slow] {
        let mut out = Vec::new();
        tokio::time::timeout(patience(10), c.read_to_end(&mut out))
            .await
            .expect("closed by the sidecar")
            .ok();
    }
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(6),
        "closed after {took:?}"
    );
}

/// The accept queue of a listening socket on `addr`, as `ss -ltn` shows it
/// (Send-Q of a listener is its backlog).
fn backlog(addr: SocketAddr) -> u32 {
    let out = std::process::Command::new("ss")
        .args(["-ltnH", &format!("sport = :{}", addr.port())])
        .output()
        .expect("ss (iproute2, installed by tests/setup.sh)");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains(&format!(":{} ", addr.port())))
        .unwrap_or_else(|| panic!("no listener on {addr}: {text}"));
    line.split_whitespace().nth(2).unwrap().parse().unwrap()
}

/// Found by the flood tests above on a loaded machine (issue 27's soak): a
/// burst of connections overflowed the admin listener's accept queue (128,
/// the default of a plain bind), the kernel dropped SYNs (113
/// `ListenOverflows` a run), and a health check whose SYN was dropped
/// waited for the retransmission: 1 s, kubelet's whole probe timeout. The
/// admin endpoint binds as the routes do, with a queue as deep as the
/// kernel allows.
#[tokio::test]
async fn the_admin_accept_queue_is_as_deep_as_a_routes() {
    let dir = tmpdir();
    let listen: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let s = Sidecar::start_at(
        dir.path(),
        &format!("[[route]]\nname = \"r\"\nlisten = \"{listen}\"\nconnect = [\"127.0.0.1:9\"]\n"),
        "warn",
    );
    let somaxconn: u32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let want = somaxconn.min(4096);
    assert_eq!(backlog(listen), want, "the route's accept queue");
    assert_eq!(backlog(s.admin), want, "the admin endpoint's accept queue");
}
