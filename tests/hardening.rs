//! Hardening: faults on one connection never touch another, memory stays
//! bounded against a stalled peer, failover and failback, thousands of
//! concurrent connections, and no secret or payload byte in the logs at
//! `trace`; thousands of clients connecting and dropping at once. Each case
//! adds a row to the hardening summary (`bash tests/hardening-summary.sh`,
//! rows under target/hardening-summary/).

mod common;

use std::time::{Duration, Instant};

use aws_lc_rs::digest::{digest, SHA256};
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// Raises this process's soft fd limit to its hard limit.
fn raise_fd_limit() -> u64 {
    // SAFETY: plain libc calls on a local struct.
    unsafe {
        let mut l = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut l);
        l.rlim_cur = l.rlim_max.min(65536);
        libc::setrlimit(libc::RLIMIT_NOFILE, &l);
        l.rlim_cur
    }
}

/// A checksummed echo exchange of `len` bytes over a fresh connection.
async fn checksummed(port: u16, len: usize, seed: u8) -> bool {
    let data: Vec<u8> = (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect();
    match roundtrip(port, &data).await {
        Ok(back) => digest(&SHA256, &back).as_ref() == digest(&SHA256, &data).as_ref(),
        Err(_) => false,
    }
}

/// How many connections a test with thousands of them opens: `want`, or
/// fewer where the open-file limit (after [`raise_fd_limit`]) cannot hold
/// `per_conn` descriptors each in this process plus a margin, or where the
/// machine has a single core. Printed, so a smaller run says so.
fn sized(want: usize, per_conn: u64) -> usize {
    let limit = raise_fd_limit();
    let by_fds = (limit.saturating_sub(512) / per_conn) as usize;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let by_cores = if cores < 2 { want / 2 } else { want };
    let n = want.min(by_fds).min(by_cores);
    assert!(
        n >= want / 4,
        "fd limit {limit} too low even for {} connections (raise the hard RLIMIT_NOFILE)",
        want / 4
    );
    if n < want {
        println!("NOTE: {n} connections instead of {want} (fd limit {limit}, {cores} cores)");
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_end_only_their_own_connection_and_memory_stays_bounded() {
    let dir = tmpdir();
    let pki = Pki::new(dir.path());
    let summary = Summary::new("faults_end_only_their_own_connection_and_memory_stays_bounded");
    let echo = pki.echo().await;
    // A server that resets its connection after reading 100 KB.
    let resetter = tls_server(pki.server_config(), |mut s| async move {
        let mut buf = vec![0u8; 100_000];
        let _ = s.read_exact(&mut buf).await;
        let (tcp, _) = s.into_inner();
        let _ = tcp.set_zero_linger();
    })
    .await;
    // A server that accepts the handshake and then never reads.
    let staller = tls_server(pki.server_config(), |s| async move {
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(s);
    })
    .await;
    let refused = free_port();
    let ca = format!("ca = \"{}\"", pki.ca_path.display());
    let (p_echo, p_reset, p_stall, p_refused) =
        (free_port(), free_port(), free_port(), free_port());
    let routes = [
        route(
            "healthy",
            p_echo,
            &[format!("localhost:{}", echo.port())],
            &ca,
        ),
        route(
            "resets",
            p_reset,
            &[format!("localhost:{}", resetter.port())],
            &ca,
        ),
        route(
            "stalls",
            p_stall,
            &[format!("localhost:{}", staller.port())],
            &ca,
        ),
        route("refuses", p_refused, &[format!("localhost:{refused}")], &ca),
    ]
    .join("\n");
    let s = Sidecar::start(dir.path(), &routes);

    // A long checksummed stream runs through every fault.
    let healthy = tokio::spawn(async move {
        let mut ok = true;
        for i in 0..20u8 {
            ok &= checksummed(p_echo, 256 * 1024, i).await;
        }
        ok
    });

    // The upstream refuses.
    let r = roundtrip(p_refused, b"x").await;
    assert!(r.as_ref().map_or(true, |b| b.is_empty()));
    s.wait_connections("refuses", "connect_error", 1.0);
    summary.row(
        "upstream refuses the TCP connection",
        "a route whose upstream port is closed; one client",
        "client closed or reset; `connect_error` counted; other routes unaffected",
        &match &r {
            Ok(b) => format!("client closed after {} bytes; `connect_error` 1", b.len()),
            Err(e) => format!("client: {e}; `connect_error` 1"),
        },
        true,
        "",
    );

    // The upstream resets mid-stream.
    let mut c = TcpStream::connect(("127.0.0.1", p_reset)).await.unwrap();
    let _ = c.write_all(&vec![1u8; 300_000]).await;
    let mut b = [0u8; 16];
    let r = tokio::time::timeout(patience(10), c.read(&mut b))
        .await
        .unwrap();
    assert!(matches!(r, Err(_) | Ok(0)), "{r:?}");
    assert!(s.wait_log("route=resets", 5));
    summary.row(
        "upstream resets mid-stream",
        "TLS upstream reads 100 KB of 300 KB, then resets (SO_LINGER 0)",
        "client sees an error or EOF, never a clean end of data; logged; others unaffected",
        &match &r {
            Ok(n) => format!("client read {n} bytes, then the end; logged"),
            Err(e) => format!("client: {e}; logged"),
        },
        true,
        "",
    );

    // The upstream stalls: the sidecar must not buffer what the client pushes.
    let before = rss_kib(s.pid());
    let mut c = TcpStream::connect(("127.0.0.1", p_stall)).await.unwrap();
    let chunk = vec![7u8; 1 << 20];
    let mut pushed = 0usize;
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(3) {
        match tokio::time::timeout(Duration::from_millis(500), c.write_all(&chunk)).await {
            Ok(Ok(())) => pushed += chunk.len(),
            _ => break,
        }
    }
    let grown = rss_kib(s.pid()).saturating_sub(before);
    assert!(
        pushed < 64 << 20,
        "backpressure: the client could push {pushed} bytes into a stalled peer"
    );
    assert!(
        grown < 8 * 1024,
        "the sidecar grew {grown} KiB while the peer stalled"
    );
    summary.row(
        "upstream stalls (stops reading)",
        "TLS upstream never reads; the client pushes 1 MiB writes for 3 s",
        "backpressure: client held back (< 64 MiB), sidecar RSS grows < 8 MiB",
        &format!(
            "client held back after {} KiB (socket buffers)",
            pushed / 1024
        ),
        true,
        &format!("sidecar RSS +{grown} KiB"),
    );
    drop(c);

    let intact = healthy.await.unwrap();
    summary.row(
        "healthy stream alongside the faults",
        "20 × 256 KiB SHA-256-checked echoes through a fourth route while the three faults run",
        "every byte intact",
        if intact {
            "every SHA-256 matched"
        } else {
            "a digest differed"
        },
        intact,
        "",
    );
    assert!(
        intact,
        "the checksummed healthy stream lost or changed a byte"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_that_disappears_and_comes_back_is_left_for_the_backup_then_used_again() {
    let dir = tmpdir();
    let pki = Pki::new(dir.path());
    let named = |name: &'static str| {
        move |mut s: tokio_rustls::server::TlsStream<TcpStream>| async move {
            let _ = s.write_all(name.as_bytes()).await;
            let _ = s.shutdown().await;
        }
    };
    let primary_port = free_port();
    let backup = tls_server(pki.server_config(), named("backup")).await;
    let p = free_port();
    let s = Sidecar::start(
        dir.path(),
        &tls_route(
            "fo",
            p,
            &[
                format!("localhost:{primary_port}"),
                format!("localhost:{}", backup.port()),
            ],
            &pki.ca_path,
        ),
    );
    async fn who(p: u16) -> String {
        let mut c = TcpStream::connect(("127.0.0.1", p)).await.unwrap();
        let mut out = String::new();
        let _ = tokio::time::timeout(patience(5), c.read_to_string(&mut out)).await;
        out
    }
    assert_eq!(who(p).await, "backup", "the primary is down");
    // The primary comes back on its address.
    let l = tokio::net::TcpListener::bind(("127.0.0.1", primary_port))
        .await
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(pki.server_config());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            if let Ok(s) = acceptor.accept(tcp).await {
                named("primary")(s).await;
            }
        }
    });
    assert_eq!(
        who(p).await,
        "primary",
        "the next connection uses the primary again"
    );
    let label = format!("localhost:{primary_port}");
    let errors = s.metric(
        "tls_sidecar_upstream_connect_errors_total",
        &[("route", "fo"), ("upstream", &label)],
    );
    Summary::new(
        "a_primary_that_disappears_and_comes_back_is_left_for_the_backup_then_used_again",
    )
    .row(
        "primary down, then back",
        "route with a primary (port closed) and a backup; the primary then starts listening",
        "backup serves while the primary is down; the next connection uses the primary; one connect error counted for it",
        &format!(
            "backup, then primary; connect errors counted for the primary: {}",
            errors.unwrap_or(0.0)
        ),
        errors == Some(1.0),
        "",
    );
    assert_eq!(errors, Some(1.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_concurrent_connections_each_echo_and_rss_per_connection_is_reported() {
    let _alone = heavy().await;
    let n = sized(2000, 3);
    let dir = tmpdir();
    let pki = Pki::new(dir.path());
    let echo = pki.echo().await;
    let p = free_port();
    // The test is about holding connections, not about handshake time:
    // on a loaded machine 2,000 upstream handshakes (a debug build at both
    // ends) can take longer than the default 10 s bound, which would reset
    // a client (issue 27 saw it while other builds ran).
    let keys = format!("handshake_timeout = \"{}s\"", patience(60).as_secs());
    let route = pki.route_with("many", p, echo, &keys);
    let s = Sidecar::start_at(dir.path(), &route, "warn");
    let idle_rss = rss_kib(s.pid());
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        let mut c = TcpStream::connect(("127.0.0.1", p)).await.unwrap();
        let msg = format!("{i:08}");
        c.write_all(msg.as_bytes()).await.unwrap();
        conns.push((c, msg));
    }
    for (c, msg) in conns.iter_mut() {
        let mut b = [0u8; 8];
        tokio::time::timeout(patience(20), c.read_exact(&mut b))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&b, msg.as_bytes());
    }
    s.wait_metric(
        "tls_sidecar_connections_active",
        &[("route", "many")],
        n as f64,
    );
    let loaded = rss_kib(s.pid());
    let per_conn = (loaded.saturating_sub(idle_rss)) as f64 / n as f64;
    println!("\n{n} idle relayed TLS connections: sidecar RSS {idle_rss} KiB → {loaded} KiB, {per_conn:.1} KiB per connection\n");
    Summary::new(
        "two_thousand_concurrent_connections_each_echo_and_rss_per_connection_is_reported",
    )
    .row(
        &format!("{n} concurrent connections"),
        &format!(
            "{n} clients held open at once through one plain → TLS route, each echoing 8 bytes"
        ),
        "every echo verified; all counted active; < 64 KiB RSS each",
        &format!("every echo verified; sidecar RSS {idle_rss} KiB → {loaded} KiB"),
        per_conn < 64.0,
        &format!("{per_conn:.1} KiB RSS per idle relayed connection"),
    );
    // Loose bound here; the benchmark (benches/) reports the precise figure.
    assert!(per_conn < 64.0, "{per_conn} KiB per connection");
    drop(conns);
    s.wait_metric("tls_sidecar_connections_active", &[("route", "many")], 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_key_material_or_payload_reaches_the_logs_even_at_trace() {
    let dir = tmpdir();
    let pki = Pki::new(dir.path());
    let echo = tls_echo(server_config(
        &pki.server.0,
        &pki.server.1,
        Some(&pki.ca_path),
    ))
    .await;
    let p = free_port();
    let (c, k) = (
        pki.client.0.display().to_string(),
        pki.client.1.display().to_string(),
    );
    let s = Sidecar::start_with(
        dir.path(),
        &route(
            "secret",
            p,
            &[format!("localhost:{}", echo.port())],
            &format!(
                "ca = \"{}\"\ncert = \"{c}\"\nkey = \"{k}\"",
                pki.ca_path.display()
            ),
        ),
        &[("TLS_SIDECAR_LOG", "trace")],
    );
    const PAYLOAD: &str = "PAYLOAD-7f3a9c-do-not-log";
    assert_eq!(
        roundtrip(p, PAYLOAD.as_bytes()).await.unwrap(),
        PAYLOAD.as_bytes()
    );
    assert!(s.wait_log("connection closed", 5));
    let logs = s.logs();
    assert!(logs.contains("TRACE"), "trace logging was on");
    assert!(!logs.contains(PAYLOAD), "payload in the logs");
    let key_pem = std::fs::read_to_string(&pki.client.1).unwrap();
    for line in key_pem.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!logs.contains(line), "private key material in the logs");
    }
    assert!(!logs.contains("PRIVATE KEY"));
    // Key-log style secret lines (rustls logs extension *names* such as
    // extended_master_secret at trace; those are not secrets).
    for secret_word in [
        "CLIENT_TRAFFIC_SECRET",
        "SERVER_TRAFFIC_SECRET",
        "CLIENT_RANDOM ",
    ] {
        assert!(!logs.contains(secret_word), "{secret_word} in the logs");
    }
    Summary::new("no_key_material_or_payload_reaches_the_logs_even_at_trace").row(
        "no secrets in the logs",
        "mutual-TLS route at `TLS_SIDECAR_LOG=trace`; a marked payload relayed",
        "no payload byte, private-key line or key-log secret in the log",
        &format!("{} log lines searched, none found", logs.lines().count()),
        true,
        "",
    );
}

/// The kernel's count of connections dropped because a listen queue was
/// full (TcpExt ListenOverflows, this network namespace).
fn listen_overflows() -> u64 {
    let text = std::fs::read_to_string("/proc/net/netstat").unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("TcpExt:")).collect();
    if lines.len() < 2 {
        return 0;
    }
    let names = lines[0].split_whitespace();
    let values = lines[1].split_whitespace();
    names
        .zip(values)
        .find(|(n, _)| *n == "ListenOverflows")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

/// The first 43 bytes of a ClientHello whose record header announces 200:
/// a client that stops half way through its hello.
const HALF_HELLO: &[u8] = &[
    0x16, 0x03, 0x01, 0x00, 0xc8, // handshake record, 200 bytes
    0x01, 0x00, 0x00, 0xc4, // ClientHello, 196 bytes
    0x03, 0x03, // legacy version TLS 1.2
    0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a,
    0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a,
    0x5a, // random, then nothing more
];

/// What a flood did: clients connected, and how they left.
struct Flood {
    connected: usize,
    closed: usize,
    half_hello: usize,
    reset: usize,
    took: Duration,
}

/// `n` clients connect at once; when all are connected (or failed to), a
/// third close at once, a third send half a ClientHello and close, a third
/// reset (SO_LINGER 0). `released` is notified when they let go.
async fn flood(port: u16, n: usize, released: std::sync::Arc<tokio::sync::Notify>) -> Flood {
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(n + 1));
    let t0 = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let barrier = barrier.clone();
        tasks.spawn(async move {
            let c =
                tokio::time::timeout(patience(20), TcpStream::connect(("127.0.0.1", port))).await;
            barrier.wait().await;
            let Ok(Ok(mut c)) = c else {
                return None;
            };
            match i % 3 {
                0 => drop(c),
                1 => {
                    let _ = c.write_all(HALF_HELLO).await;
                    drop(c);
                }
                _ => {
                    let _ = c.set_zero_linger();
                    drop(c);
                }
            }
            Some(i % 3)
        });
    }
    barrier.wait().await;
    released.notify_one();
    let (mut closed, mut half_hello, mut reset) = (0, 0, 0);
    while let Some(r) = tasks.join_next().await {
        match r.unwrap() {
            Some(0) => closed += 1,
            Some(1) => half_hello += 1,
            Some(_) => reset += 1,
            None => {}
        }
    }
    Flood {
        connected: closed + half_hello + reset,
        closed,
        half_hello,
        reset,
        took: t0.elapsed(),
    }
}

/// Sends `len` bytes through `s` (an echo path) while reading them back;
/// pauses after half until `go_on` is notified, so that the stream spans a
/// flood. True if the SHA-256 of what came back equals what was sent.
async fn sha256_echo<S>(s: S, len: usize, go_on: std::sync::Arc<tokio::sync::Notify>) -> bool
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let (mut r, mut w) = tokio::io::split(s);
    let chunk: Vec<u8> = (0..64 * 1024u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let writer = tokio::spawn(async move {
        let mut sent = aws_lc_rs::digest::Context::new(&SHA256);
        let mut n = 0;
        while n < len {
            if n == len / 2 {
                go_on.notified().await;
            }
            let k = chunk.len().min(len - n);
            // Vary the content per chunk so reordering would show.
            let mut c = chunk[..k].to_vec();
            c[0] = (n / chunk.len()) as u8;
            w.write_all(&c).await?;
            sent.update(&c);
            n += k;
        }
        w.shutdown().await?;
        Ok::<_, std::io::Error>(sent.finish())
    });
    let mut got = aws_lc_rs::digest::Context::new(&SHA256);
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0;
    loop {
        match tokio::time::timeout(patience(60), r.read(&mut buf)).await {
            Ok(Ok(0)) => break,
            Ok(Ok(k)) => {
                got.update(&buf[..k]);
                total += k;
            }
            _ => return false,
        }
    }
    match writer.await {
        Ok(Ok(sent)) => total == len && sent.as_ref() == got.finish().as_ref(),
        _ => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_thousand_clients_connect_and_drop_at_once_while_a_checksummed_stream_holds() {
    let _alone = heavy().await;
    const LEN: usize = 16 << 20;
    let summary = Summary::new(
        "three_thousand_clients_connect_and_drop_at_once_while_a_checksummed_stream_holds",
    );
    // This process holds n clients plus n upstream ends of the TLS echo; the
    // sidecar (which inherits the limit) 2n at most.
    let n = sized(3000, 2);
    let dir = tmpdir();
    let pki = Pki::new(dir.path());
    // Behind the TLS listener: a plain echo. Behind the plain listener: a TLS echo.
    let bport = plain_echo().await;
    let tls_backend = pki.echo().await;
    let (p_listen, p_connect) = (free_port(), free_port());
    let routes = format!(
        "[[route]]\nname = \"flood-listen\"\nlisten = \"127.0.0.1:{p_listen}\"\nconnect = [\"127.0.0.1:{bport}\"]\n[route.listen_tls]\ncert = \"{}\"\nkey = \"{}\"\n\n{}",
        pki.server.0.display(),
        pki.server.1.display(),
        pki.route_to("flood-connect", p_connect, tls_backend)
    );
    let s = Sidecar::start_at(dir.path(), &routes, "error");
    let pid = s.pid();
    let tls_client = client_config(&pki.ca_path, None);

    for (name, port) in [("flood-listen", p_listen), ("flood-connect", p_connect)] {
        let baseline = fd_count(pid);
        // The healthy stream, paused half way until the flood lets go.
        let go_on = std::sync::Arc::new(tokio::sync::Notify::new());
        let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let healthy = if name == "flood-listen" {
            let tls = tokio_rustls::TlsConnector::from(tls_client.clone())
                .connect("localhost".try_into().unwrap(), tcp)
                .await
                .unwrap();
            tokio::spawn(sha256_echo(tls, LEN, go_on.clone()))
        } else {
            tokio::spawn(sha256_echo(tcp, LEN, go_on.clone()))
        };
        // Peak fds while the flood is on.
        let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let peak = {
            let sampling = sampling.clone();
            std::thread::spawn(move || {
                let mut peak = 0;
                while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                    peak = peak.max(fd_count(pid));
                    std::thread::sleep(Duration::from_millis(20));
                }
                peak
            })
        };
        let overflows_before = listen_overflows();
        let f = flood(port, n, go_on).await;
        let overflows = listen_overflows() - overflows_before;
        let intact = tokio::time::timeout(patience(120), healthy)
            .await
            .map(|r| r.unwrap_or(false))
            .unwrap_or(false);

        // Afterwards: everything closed, fds back near the baseline.
        let deadline = Instant::now() + patience(30);
        let mut fds = fd_count(pid);
        while Instant::now() < deadline {
            let active = s.metric("tls_sidecar_connections_active", &[("route", name)]);
            fds = fd_count(pid);
            if active.unwrap_or(0.0) == 0.0 && fds <= baseline + 4 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        sampling.store(false, std::sync::atomic::Ordering::Relaxed);
        let peak = peak.join().unwrap();

        // It still accepts and relays.
        let still = if name == "flood-listen" {
            let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            let mut tls = tokio_rustls::TlsConnector::from(tls_client.clone())
                .connect("localhost".try_into().unwrap(), tcp)
                .await
                .unwrap();
            tls.write_all(b"after the flood").await.unwrap();
            let mut b = [0u8; 15];
            tls.read_exact(&mut b).await.is_ok() && &b == b"after the flood"
        } else {
            roundtrip(port, b"after the flood").await.ok().as_deref()
                == Some(b"after the flood".as_slice())
        };

        // What the metrics say about the flood.
        let scrape = s.metrics();
        let result = |r: &str| {
            metric_value(
                &scrape,
                "tls_sidecar_connections_total",
                &[("route", name), ("result", r)],
            )
            .unwrap_or(0.0) as usize
        };
        let reasons: Vec<(String, usize)> = scrape
            .lines()
            .filter(|l| {
                l.starts_with("tls_sidecar_handshake_errors_total{")
                    && l.contains(&format!("route=\"{name}\""))
            })
            .filter_map(|l| {
                let reason = l.split("reason=\"").nth(1)?.split('"').next()?;
                let side = l.split("side=\"").nth(1)?.split('"').next()?;
                let v: f64 = l.rsplit_once(' ')?.1.parse().ok()?;
                Some((format!("{side}/{reason}"), v as usize))
            })
            .collect();
        let failed: usize = reasons.iter().map(|(_, v)| v).sum();
        let (ok, hs_err, timeouts) = (result("ok"), result("handshake_error"), result("timeout"));
        let counted = ok + hs_err + timeouts + result("connect_error") + result("refused_limit");
        // Two healthy connections (the stream and the one after) plus the
        // flood. A client that resets while its connection still waits for
        // room in the kernel's full accept queue (backlog 4096, capped by
        // net.core.somaxconn) is dropped by
        // the kernel and never reaches the sidecar: only resets may be missing.
        let expected_total = f.connected + 2;
        let uncounted = expected_total.saturating_sub(counted);
        let accounted =
            counted <= expected_total && uncounted <= f.reset && (uncounted == 0 || overflows > 0);
        let (want, metrics_held) = if name == "flood-listen" {
            (
                "every flood client a `handshake_error` with reason `peer_closed` (EOF or reset before a whole ClientHello); the 2 healthy ones `ok`",
                ok == 2
                    && hs_err + uncounted == f.connected
                    && failed == hs_err
                    && reasons
                        .iter()
                        .all(|(r, _)| r == "listen/peer_closed" || r == "listen/timeout"),
            )
        } else {
            (
                "every flood client relayed and closed (`ok`: the upstream handshake succeeds, the client's going is a normal end; `timeout` only if an upstream handshake could not finish in time), no other handshake error",
                ok + timeouts == counted && failed == timeouts,
            )
        };
        let reasons_text = if reasons.is_empty() {
            "no handshake errors".to_owned()
        } else {
            reasons
                .iter()
                .map(|(r, v)| format!("{r} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let held =
            f.connected == n && intact && still && fds <= baseline + 4 && accounted && metrics_held;
        let kind = if name == "flood-listen" {
            "TLS listener (terminating)"
        } else {
            "plain → TLS route"
        };
        println!(
            "\n{kind}: {n} clients in {:.1} s; fds baseline {baseline}, peak {peak}, after {fds}; results ok {ok}, handshake_error {hs_err}, timeout {timeouts}; {reasons_text}\n",
            f.took.as_secs_f64()
        );
        summary.row(
            &format!("{n} clients connect and drop at once — {kind}"),
            &format!(
                "{n} concurrent connects, then at once {} close, {} send half a ClientHello and close, {} reset (SO_LINGER 0); a 16 MiB SHA-256 echo through the same route spans the moment",
                f.closed, f.half_hello, f.reset
            ),
            &format!("stream intact; new clients served after; fds back to baseline; {want}"),
            &format!(
                "{} of {n} connected in {:.1} s; stream {}; served after: {}; connections counted {counted} of {expected_total} (ok {ok}, handshake_error {hs_err}, timeout {timeouts}; {uncounted} resets never reached the sidecar, kernel accept-queue overflows {overflows}); {reasons_text}",
                f.connected,
                f.took.as_secs_f64(),
                if intact { "intact" } else { "BROKEN" },
                if still { "yes" } else { "no" },
            ),
            held,
            &format!("sidecar fds: baseline {baseline}, peak {peak}, after {fds}"),
        );
        assert_eq!(f.connected, n, "{name}: not every flood client connected");
        assert!(intact, "{name}: the 16 MiB checksummed stream broke");
        assert!(still, "{name}: the route no longer serves");
        assert!(
            fds <= baseline + 4,
            "{name}: fds {fds} after the flood, baseline {baseline}"
        );
        assert!(
            accounted,
            "{name}: connections counted {counted} of {expected_total}; only resets ({}) may be missing\n{scrape}",
            f.reset
        );
        assert!(metrics_held, "{name}: {reasons_text}\n{scrape}");
    }
}
