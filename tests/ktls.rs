//! Kernel TLS (issue 18), with `kernel_tls = "auto"`: the same behaviour on
//! whichever engine the running kernel allows. Where the kernel has the
//! `tls` ULP (the QEMU guest of tests/ktls-guest.sh) the TLS legs must run
//! on kTLS; where it has not (a host without the module) every connection
//! must fall back to the userspace engine cleanly, counted and logged. Each
//! test asserts which engine ran, from the sidecar's log and metrics.
//! One test checks the variable by which tests/ktls-guest.sh runs every
//! other test binary on each engine in turn, and `route_info`'s labels.

mod common;

use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const AUTO: &str = "kernel_tls = \"auto\"";

/// The engine the kernel under this test allows.
fn expected_engine() -> &'static str {
    if tls_sidecar::tls::kernel::available() {
        "engine=\"ktls\""
    } else {
        "engine=\"userspace\""
    }
}

/// The sidecar ran the expected engine for route `route`: a connection
/// log line says so, and without kTLS the fallback is counted and logged.
fn assert_engine(s: &Sidecar, route: &str) {
    let want = expected_engine();
    assert!(
        s.wait_log(want, 10),
        "expected {want} in a connection log line:\n{}",
        s.logs()
    );
    if tls_sidecar::tls::kernel::available() {
        assert!(s.has_log("engine: kernel TLS for TLS 1.3"), "{}", s.logs());
        assert!(!s.logs().contains("engine=\"userspace\""), "{}", s.logs());
    } else {
        let n = s
            .metric(
                "tls_sidecar_ktls_fallbacks_total",
                &[("route", route), ("reason", "no_ulp")],
            )
            .unwrap_or(0.0);
        assert!(n >= 1.0, "fallback not counted:\n{}", s.metrics());
        assert!(
            s.has_log("kernel TLS not used, userspace TLS engine instead"),
            "{}",
            s.logs()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_route_relays_both_ways_and_carries_half_close_on_the_engine_the_kernel_allows() {
    let dir = tmpdir();
    let pki = Pki::new(dir.path());
    // The peer reads the whole request up to the client's close_notify,
    // then answers with more than a record's worth and closes cleanly.
    let srv = tls_server(
        server_config(&pki.server.0, &pki.server.1, None),
        |mut s| async move {
            let mut req = Vec::new();
            s.read_to_end(&mut req).await.unwrap();
            let mut answer = format!("got {} bytes;", req.len()).into_bytes();
            answer.extend(std::iter::repeat_n(b'a', 200_000));
            s.write_all(&answer).await.unwrap();
            s.shutdown().await.unwrap();
        },
    )
    .await;
    let p = free_port();
    let s = Sidecar::start_top(dir.path(), AUTO, &pki.route_to("half", p, srv), &[]);
    for _ in 0..2 {
        let mut c = TcpStream::connect(("127.0.0.1", p)).await.unwrap();
        c.write_all(&vec![b'q'; 100_000]).await.unwrap();
        c.shutdown().await.unwrap();
        let mut got = Vec::new();
        tokio::time::timeout(patience(30), c.read_to_end(&mut got))
            .await
            .expect("the answer and a clean end in time")
            .expect("a clean end, not an error");
        assert!(
            got.starts_with(b"got 100000 bytes;"),
            "{:?}",
            &got[..got.len().min(40)]
        );
        assert_eq!(got.len(), "got 100000 bytes;".len() + 200_000);
    }
    assert_engine(&s, "half");
    assert!(s.wait_log("end=closed", 10), "{}", s.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_upstream_is_seen_as_a_reset_by_the_client_on_either_engine() {
    let dir = tmpdir();
    let pki = Pki::new(dir.path());
    let srv = tls_server(
        server_config(&pki.server.0, &pki.server.1, None),
        |mut s| async move {
            // Once the relay runs (the client's first bytes came through).
            let mut go = [0u8; 2];
            s.read_exact(&mut go).await.unwrap();
            s.write_all(&[b'z'; 10_000]).await.unwrap();
            s.flush().await.unwrap();
            tokio::time::sleep(Duration::from_millis(300)).await;
            // Drop the TCP socket under TLS: no close_notify.
            let (tcp, _) = s.into_inner();
            drop(tcp);
        },
    )
    .await;
    let p = free_port();
    let s = Sidecar::start_top(dir.path(), AUTO, &pki.route_to("trunc", p, srv), &[]);
    let mut c = TcpStream::connect(("127.0.0.1", p)).await.unwrap();
    c.write_all(b"go").await.unwrap();
    let (got, end) = read_until_end(&mut c, 30).await;
    assert!(
        end.is_err(),
        "clean EOF after {} bytes: a truncation is not a clean end",
        got.len()
    );
    assert_eq!(got.len(), 10_000, "every byte before the truncation");
    assert_eq!(end, Err(std::io::ErrorKind::ConnectionReset));
    assert!(
        s.wait_log("upstream closed without close_notify (truncated)", 10),
        "{}",
        s.logs()
    );
    assert_engine(&s, "trunc");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_reset_reaches_the_tls_upstream_as_an_error_without_close_notify() {
    let dir = tmpdir();
    let pki = Pki::new(dir.path());
    let config = server_config(&pki.server.0, &pki.server.1, None);
    let (srv, arrived, end) = tls_reader(config, b"hello").await;
    let p = free_port();
    let s = Sidecar::start_top(dir.path(), AUTO, &pki.route_to("resets", p, srv), &[]);
    let mut c = TcpStream::connect(("127.0.0.1", p)).await.unwrap();
    c.write_all(b"hello").await.unwrap();
    arrives(arrived, 30, "the client's bytes reached the upstream").await;
    c.set_zero_linger().unwrap();
    drop(c);
    let end = arrives(end, 30, "the upstream learns of the reset").await;
    assert!(
        matches!(
            end,
            Err(std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::UnexpectedEof)
        ),
        "upstream saw {end:?}, not a reset or truncation"
    );
    assert!(
        s.wait_log("client reset the connection", 10),
        "{}",
        s.logs()
    );
    assert_engine(&s, "resets");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listen_tls_route_terminates_on_the_engine_the_kernel_allows_with_half_close() {
    let dir = tmpdir();
    let pki = Pki::new(dir.path());
    // A plain backend that echoes until the client's end, then closes.
    let backend = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bport = backend.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = backend.accept().await else {
                continue;
            };
            tokio::spawn(echo(s));
        }
    });
    let p = free_port();
    let route = format!(
        "[[route]]\nname = \"lt\"\nlisten = \"127.0.0.1:{p}\"\nconnect = [\"127.0.0.1:{bport}\"]\n[route.listen_tls]\ncert = \"{}\"\nkey = \"{}\"\n",
        pki.server.0.display(),
        pki.server.1.display()
    );
    let s = Sidecar::start_top(dir.path(), AUTO, &route, &[]);
    let connector = tokio_rustls::TlsConnector::from(client_config(&pki.ca_path, None));
    for _ in 0..2 {
        let tcp = TcpStream::connect(("127.0.0.1", p)).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut t = connector.connect(name, tcp).await.unwrap();
        let msg = vec![b'm'; 150_000];
        t.write_all(&msg).await.unwrap();
        t.shutdown().await.unwrap(); // close_notify, then FIN
        let mut got = Vec::new();
        tokio::time::timeout(patience(30), t.read_to_end(&mut got))
            .await
            .expect("the echo and a clean end in time")
            .expect("a clean end (close_notify), not an error");
        assert_eq!(got.len(), msg.len());
        assert!(got == msg);
    }
    assert_engine(&s, "lt");
    assert!(s.wait_log("end=closed", 10), "{}", s.logs());
    // Every byte counted, those rustls decrypted with the client's
    // Finished (passed on by the switch itself) too.
    let counted = || {
        s.logs()
            .lines()
            .filter(|l| l.contains("connection closed") && l.contains("bytes_up=150000 "))
            .count()
    };
    for _ in 0..100 {
        if counted() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(counted(), 2, "{}", s.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_says_which_engine_each_tls_route_runs_and_why_not_kernel_tls() {
    let dir = tmpdir();
    let pki = Pki::new(dir.path());
    let admin = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    // Route a takes the top-level "auto"; route b says "off".
    let routes = format!(
        "{}{}",
        tls_route("a", free_port(), &["localhost:1".into()], &pki.ca_path),
        tls_route("b", free_port(), &["localhost:1".into()], &pki.ca_path).replace(
            "[route.connect_tls]",
            "kernel_tls = \"off\"\n[route.connect_tls]"
        ),
    );
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, config_text(admin, AUTO, &routes, "debug")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tls-sidecar"))
        .arg("check")
        .arg("-c")
        .arg(&cfg)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("engine: userspace TLS (kernel_tls = \"off\")"),
        "{text}"
    );
    if tls_sidecar::tls::kernel::available() {
        assert!(
            text.contains("engine: kernel TLS for TLS 1.3 sessions with"),
            "{text}"
        );
    } else {
        assert!(
            text.contains("engine: userspace TLS (kernel_tls = \"auto\", but the kernel offers no \"tls\" ULP"),
            "{text}"
        );
    }
}

/// tests/ktls-guest.sh runs the relay, ending, listen and upgrade tests on
/// each engine by setting `TLS_SIDECAR__KERNEL_TLS` for the test binary;
/// this proves that a sidecar started by the tests' helpers (which drop
/// every other `TLS_SIDECAR_*` variable) runs the engine it names, and
/// that `route_info` says so: `kernel_tls` as configured, `engine` as run
/// ("plain" for a route without TLS).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sidecar_a_test_starts_runs_the_engine_the_environment_chooses() {
    let dir = tmpdir();
    let pki = Pki::new(dir.path());
    let srv = tls_echo(server_config(&pki.server.0, &pki.server.1, None)).await;
    let backend = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bport = backend.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((s, _)) = backend.accept().await {
            tokio::spawn(echo(s));
        }
    });
    let (p, q) = (free_port(), free_port());
    let plain = format!(
        "[[route]]\nname = \"plain\"\nlisten = \"127.0.0.1:{q}\"\nconnect = [\"127.0.0.1:{bport}\"]\n"
    );
    // A route whose TLS leg may only speak TLS 1.2 runs userspace whatever
    // the setting (TLS 1.2 stays on rustls).
    let r = free_port();
    let tls12 = route(
        "tls12",
        r,
        &[format!("localhost:{}", srv.port())],
        &format!(
            "ca = \"{}\"\nprotocols = [\"TLSv1.2\"]",
            pki.ca_path.display()
        ),
    );
    let routes = pki.route_to("env", p, srv) + &plain + &tls12;
    let s = Sidecar::start(dir.path(), &routes);
    assert_eq!(roundtrip(p, b"hello\n").await.unwrap(), b"hello\n");
    assert_eq!(roundtrip(q, b"hello\n").await.unwrap(), b"hello\n");
    let [kernel_tls, engine] = engine_labels();
    let want = format!("engine=\"{}\"", engine.1);
    assert!(s.wait_log(&want, 10), "expected {want}:\n{}", s.logs());
    let logs = s.logs();
    let closed: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("connection closed") && l.contains("route=env"))
        .collect();
    assert_eq!(closed.len(), 1, "{logs}");
    assert!(closed[0].contains(&want), "{logs}");
    // A route without a TLS leg says so in its log line, as in route_info.
    assert!(
        s.wait_log("connection closed route=plain", 10),
        "the plain route's connection is logged:\n{logs}"
    );
    let logs = s.logs();
    let plain_closed = logs
        .lines()
        .find(|l| l.contains("connection closed") && l.contains("route=plain"))
        .expect("the plain route's connection closed line");
    assert!(plain_closed.contains("engine=\"plain\""), "{plain_closed}");
    // route, port, connect_start, verify, engine.
    let expected = [
        ("env", p, "direct", "full", engine),
        ("plain", q, "plain", "plain", ("engine", "plain")),
        ("tls12", r, "direct", "full", ("engine", "userspace")),
    ];
    for (route, port, connect_start, verify, engine) in expected {
        let listen = format!("127.0.0.1:{port}");
        let info = [
            ("route", route),
            ("listen", listen.as_str()),
            ("connect_start", connect_start),
            ("verify", verify),
            ("mutual", "false"),
            kernel_tls,
            engine,
        ];
        assert_eq!(
            s.metric("tls_sidecar_route_info", &info),
            Some(1.0),
            "{}",
            s.metrics()
        );
    }
}
