//! Hardening: faults on one connection never touch another, memory stays
//! bounded against a stalled peer, failover and failback, thousands of
//! concurrent connections, and no secret or payload byte in the logs at
//! `trace`. Each case adds a row to the summary printed at the end of the
//! test (and written to target/hardening-summary.md).

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

fn summary(rows: &[(String, String)]) {
    let mut out = String::from("| case | what held |\n|---|---|\n");
    for (case, held) in rows {
        out.push_str(&format!("| {case} | {held} |\n"));
    }
    println!("\n{out}");
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/target");
    let _ = std::fs::create_dir_all(dir);
    let path = format!("{dir}/hardening-summary-{}.md", std::process::id());
    let _ = std::fs::write(path, out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_end_only_their_own_connection_and_memory_stays_bounded() {
    let dir = tmpdir();
    let pki = Pki::new(dir.path());
    let mut rows = Vec::new();
    let echo = tls_echo(server_config(&pki.server.0, &pki.server.1, None)).await;
    // A server that resets its connection after reading 100 KB.
    let resetter = tls_server(
        server_config(&pki.server.0, &pki.server.1, None),
        |mut s| async move {
            let mut buf = vec![0u8; 100_000];
            let _ = s.read_exact(&mut buf).await;
            let (tcp, _) = s.into_inner();
            let _ = tcp.set_zero_linger();
        },
    )
    .await;
    // A server that accepts the handshake and then never reads.
    let staller = tls_server(
        server_config(&pki.server.0, &pki.server.1, None),
        |s| async move {
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(s);
        },
    )
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
    s.wait_metric(
        "tls_sidecar_connections_total",
        &[("route", "refuses"), ("result", "connect_error")],
        1.0,
    );
    rows.push((
        "upstream refuses the TCP connection".into(),
        "client reset; `connect_error` counted; others unaffected".into(),
    ));

    // The upstream resets mid-stream.
    let mut c = TcpStream::connect(("127.0.0.1", p_reset)).await.unwrap();
    let _ = c.write_all(&vec![1u8; 300_000]).await;
    let mut b = [0u8; 16];
    let r = tokio::time::timeout(Duration::from_secs(10), c.read(&mut b))
        .await
        .unwrap();
    assert!(matches!(r, Err(_) | Ok(0)), "{r:?}");
    assert!(s.wait_log("route=resets", 5));
    rows.push((
        "upstream resets mid-stream".into(),
        "client reset, logged; others unaffected".into(),
    ));

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
    rows.push((
        "upstream stalls (stops reading)".into(),
        format!(
            "client held back after {} KiB (socket buffers); sidecar RSS grew {grown} KiB",
            pushed / 1024
        ),
    ));
    drop(c);

    assert!(
        healthy.await.unwrap(),
        "the checksummed healthy stream lost or changed a byte"
    );
    rows.push((
        "20 × 256 KiB checksummed echo alongside all faults".into(),
        "every byte intact".into(),
    ));
    summary(&rows);
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
    let backup = tls_server(
        server_config(&pki.server.0, &pki.server.1, None),
        named("backup"),
    )
    .await;
    let p = free_port();
    let s = Sidecar::start(
        dir.path(),
        &route(
            "fo",
            p,
            &[
                format!("localhost:{primary_port}"),
                format!("localhost:{}", backup.port()),
            ],
            &format!("ca = \"{}\"", pki.ca_path.display()),
        ),
    );
    async fn who(p: u16) -> String {
        let mut c = TcpStream::connect(("127.0.0.1", p)).await.unwrap();
        let mut out = String::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), c.read_to_string(&mut out)).await;
        out
    }
    assert_eq!(who(p).await, "backup", "the primary is down");
    // The primary comes back on its address.
    let l = tokio::net::TcpListener::bind(("127.0.0.1", primary_port))
        .await
        .unwrap();
    let acceptor =
        tokio_rustls::TlsAcceptor::from(server_config(&pki.server.0, &pki.server.1, None));
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
    assert_eq!(
        s.metric(
            "tls_sidecar_upstream_connect_errors_total",
            &[("route", "fo"), ("upstream", &label)]
        ),
        Some(1.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_concurrent_connections_each_echo_and_rss_per_connection_is_reported() {
    const N: usize = 2000;
    let limit = raise_fd_limit();
    assert!(
        limit >= 3 * N as u64,
        "fd limit {limit} too low for {N} connections"
    );
    let dir = tmpdir();
    let pki = Pki::new(dir.path());
    let echo = tls_echo(server_config(&pki.server.0, &pki.server.1, None)).await;
    let p = free_port();
    let admin: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = dir.path().join("tls-sidecar.toml");
    std::fs::write(
        &config,
        format!(
            "[admin]\nlisten = \"{admin}\"\n[log]\nlevel = \"warn\"\n{}",
            route(
                "many",
                p,
                &[format!("localhost:{}", echo.port())],
                &format!("ca = \"{}\"", pki.ca_path.display())
            )
        ),
    )
    .unwrap();
    let s = Sidecar::spawn(&config, admin, &[]);
    s.wait_ready();
    let idle_rss = rss_kib(s.pid());
    let mut conns = Vec::with_capacity(N);
    for i in 0..N {
        let mut c = TcpStream::connect(("127.0.0.1", p)).await.unwrap();
        let msg = format!("{i:08}");
        c.write_all(msg.as_bytes()).await.unwrap();
        conns.push((c, msg));
    }
    for (c, msg) in conns.iter_mut() {
        let mut b = [0u8; 8];
        tokio::time::timeout(Duration::from_secs(20), c.read_exact(&mut b))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&b, msg.as_bytes());
    }
    s.wait_metric(
        "tls_sidecar_connections_active",
        &[("route", "many")],
        N as f64,
    );
    let loaded = rss_kib(s.pid());
    let per_conn = (loaded.saturating_sub(idle_rss)) as f64 / N as f64;
    println!("\n{N} idle relayed TLS connections: sidecar RSS {idle_rss} KiB → {loaded} KiB, {per_conn:.1} KiB per connection\n");
    summary(&[(
        format!("{N} concurrent TLS connections through one route"),
        format!("every echo verified; {per_conn:.1} KiB RSS per idle relayed connection"),
    )]);
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
}
