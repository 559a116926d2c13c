//! `probe` is `run`: every route kind of the test suite, against real peers
//! (rustls servers, `openssl s_server`, a real PostgreSQL), goes through a
//! relayed connection and through `probe --all`, and the two verdicts agree
//! (issue 14, item 2).

mod common;

use std::time::Duration;

use common::postgres::Postgres;
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One route of the table and the verdict both commands must give.
struct Case {
    name: &'static str,
    port: u16,
    route: String,
    want: &'static str,
}

/// What `run` made of one connection: `ok`, a handshake reason, or
/// `connect_error`.
fn run_verdict(s: &Sidecar, name: &str) -> Option<String> {
    let scrape = s.metrics();
    let total: f64 = [
        "ok",
        "connect_error",
        "upgrade_error",
        "handshake_error",
        "timeout",
    ]
    .iter()
    .filter_map(|r| {
        metric_value(
            &scrape,
            "tls_sidecar_connections_total",
            &[("route", name), ("result", r)],
        )
    })
    .sum();
    if total < 1.0 {
        return None;
    }
    if metric_value(
        &scrape,
        "tls_sidecar_connections_total",
        &[("route", name), ("result", "connect_error")],
    ) == Some(1.0)
    {
        return Some("connect_error".into());
    }
    let prefix =
        format!("tls_sidecar_handshake_errors_total{{route=\"{name}\",side=\"connect\",reason=\"");
    for line in scrape.lines() {
        if let Some(rest) = line.strip_prefix(&prefix) {
            let reason = rest.split('"').next().unwrap();
            if !line.ends_with(" 0") {
                return Some(reason.to_owned());
            }
        }
    }
    Some("ok".into())
}

/// A "PostgreSQL" that answers every SSLRequest with `N` (no TLS).
async fn postgres_without_ssl() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut req = [0u8; 8];
                if s.read_exact(&mut req).await.is_ok() {
                    let _ = s.write_all(b"N").await;
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_and_a_relayed_connection_agree_on_every_route_kind() {
    let dir = tmpdir();
    let pki = Pki::new(dir.path());
    let other = Ca::new("Other CA");
    let stranger = other
        .leaf("localhost", &["localhost", "127.0.0.1"])
        .write(dir.path(), "stranger")
        .unwrap();
    let ca = pki.ca_path.display().to_string();
    let (cert, key) = (
        pki.server.0.display().to_string(),
        pki.server.1.display().to_string(),
    );
    let good = pki.echo().await;
    let foreign = tls_echo(server_config(&stranger.0, &stranger.1, None)).await;
    let echo_port = plain_echo().await;
    let no_ssl = postgres_without_ssl().await;
    let demands_cert = OpensslServer::start(&[
        "-cert",
        &cert,
        "-key",
        &key,
        "-rev",
        "-quiet",
        "-tls1_3",
        "-Verify",
        "1",
        "-verify_return_error",
        "-CAfile",
        &ca,
    ]);
    let pg = Postgres::start(
        &pki,
        "local all all trust\nhostssl all all 127.0.0.1/32 trust\n",
    );
    let dead = free_port();
    let client_cert = format!(
        "cert = \"{}\"\nkey = \"{}\"",
        pki.client.0.display(),
        pki.client.1.display()
    );
    let ca_line = format!("ca = \"{ca}\"");
    let mut cases = Vec::new();
    let mut case = |name: &'static str, connect: Vec<String>, tls: String, want: &'static str| {
        let port = free_port();
        cases.push(Case {
            name,
            port,
            route: route(name, port, &connect, &tls),
            want,
        });
    };
    let at = |p: u16| vec![format!("localhost:{p}")];
    case("plain", at(echo_port), String::new(), "ok");
    case("full", at(good.port()), ca_line.clone(), "ok");
    case(
        "name",
        at(good.port()),
        format!("{ca_line}\nserver_name = \"wrong.example\""),
        "name_mismatch",
    );
    case(
        "unknown-ca",
        at(foreign.port()),
        ca_line.clone(),
        "unknown_ca",
    );
    case(
        "trust",
        at(foreign.port()),
        "verify = \"none\"".into(),
        "ok",
    );
    case(
        "pin",
        at(good.port()),
        "verify = \"pin\"\npins = [\"sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"]".into(),
        "pin_mismatch",
    );
    case(
        "mtls",
        at(demands_cert.port),
        format!("{ca_line}\n{client_cert}"),
        "ok",
    );
    // TLS 1.3: the server refuses the missing certificate after our side
    // of the handshake is done.
    case(
        "mtls-missing",
        at(demands_cert.port),
        ca_line.clone(),
        "no_client_cert",
    );
    case(
        "postgres",
        at(pg.port),
        format!("{ca_line}\nstart = \"upgrade\"\nupgrade = \"postgres\""),
        "ok",
    );
    case(
        "postgres-no-ssl",
        at(no_ssl),
        format!("{ca_line}\nstart = \"upgrade\"\nupgrade = \"postgres\""),
        "upgrade_refused",
    );
    case(
        "failover",
        vec![
            format!("localhost:{dead}"),
            format!("localhost:{}", good.port()),
        ],
        ca_line.clone(),
        "ok",
    );
    case("dead", at(dead), ca_line.clone(), "connect_error");

    let routes: Vec<String> = cases.iter().map(|c| c.route.clone()).collect();
    let s = Sidecar::start(dir.path(), &routes.join("\n"));

    // `run`: one relayed connection per route.
    for c in &cases {
        // A refusing route resets the client as soon as the upstream side
        // fails; on a busy machine that reset can come before connect()
        // has returned (ECONNRESET from connect itself). The connection was
        // accepted and is counted all the same.
        let mut conn = match TcpStream::connect(("127.0.0.1", c.port)).await {
            Ok(conn) => conn,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => continue,
            Err(e) => panic!("{}: {e}", c.name),
        };
        let _ = conn.write_all(b"hello\n").await;
        let mut buf = [0u8; 64];
        let _ = tokio::time::timeout(patience(3), conn.read(&mut buf)).await;
        drop(conn);
    }
    let mut ran = Vec::new();
    for c in &cases {
        let deadline = std::time::Instant::now() + patience(15);
        let v = loop {
            let v = run_verdict(&s, c.name);
            let settled = v.as_deref().is_some_and(|v| v != "ok" || c.want == "ok");
            if settled || std::time::Instant::now() > deadline {
                break v.unwrap_or_else(|| "not counted".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        ran.push(v);
    }

    // `probe --all`: one row per route.
    let (code, table, _) = cli(&[&"probe", &"--all", &"-c", &s.config]);
    let mut rows = Vec::new();
    for c in &cases {
        let row = table
            .lines()
            .find(|l| l.split_whitespace().next() == Some(c.name))
            .unwrap_or_else(|| panic!("no row for {}:\n{table}", c.name));
        rows.push(row.split_whitespace().nth(2).unwrap().to_owned());
    }

    let mut report = String::new();
    for ((c, run), probe) in cases.iter().zip(&ran).zip(&rows) {
        report.push_str(&format!(
            "{:<16} want {:<16} run {:<16} probe {}\n",
            c.name, c.want, run, probe
        ));
    }
    println!("{report}");
    let agree = cases
        .iter()
        .zip(&ran)
        .zip(&rows)
        .filter(|((c, run), probe)| run == probe && *run == c.want)
        .count();
    Summary::new("probe_and_a_relayed_connection_agree_on_every_route_kind").row(
        "probe is run",
        "12 route kinds (plain, full, wrong name, unknown CA, trust, pin, mTLS, TLS 1.3 mTLS refused after the handshake, real PostgreSQL upgrade, upgrade refused, failover, dead) through a relayed connection and `probe --all`",
        "both give the same verdict, the expected one, on every route",
        &format!("{agree} of {} agree", cases.len()),
        agree == cases.len(),
        "",
    );
    for ((c, run), probe) in cases.iter().zip(&ran).zip(&rows) {
        assert_eq!(
            run,
            probe,
            "run and probe disagree on {}:\n{report}\n{}",
            c.name,
            s.logs()
        );
        assert_eq!(run, c.want, "{}:\n{report}", c.name);
    }
    assert_eq!(code, 3, "probe --all fails (exit 3) when a route fails");
}
