//! Upgrade mode against real servers on loopback: PostgreSQL (hostssl only,
//! then client-certificate authentication, psql and pgbench), an SMTP
//! server that requires STARTTLS (aiosmtpd) with Python's smtplib, and a
//! made-up in-house exchange through `upgrade = "script"`.

mod common;

use std::process::{Command, Stdio};

use common::postgres::*;
use common::*;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// psql through `port` (plain, default sslmode): (success, stdout+stderr).
fn psql(port: u16, user: &str, sql: &str, extra: &[&str]) -> (bool, String) {
    let out = Command::new(pg_bin("psql"))
        .arg(format!(
            "host=127.0.0.1 port={port} user={user} dbname=postgres connect_timeout=10"
        ))
        .args(["-At", "-c", sql])
        .args(extra)
        .env("PGPASSWORD", "")
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_and_pgbench_reach_a_hostssl_only_postgres_through_the_postgres_profile() {
    let dir = tmpdir();
    let pki = Pki::new(dir.path());
    let hba = "hostssl all certuser 127.0.0.1/32 cert\nhostssl all all 127.0.0.1/32 trust\nlocal all all trust\n";
    let pg = Postgres::start(&pki, hba);
    let cert_user = pki
        .ca
        .leaf("certuser", &["certuser"])
        .write(dir.path(), "certuser")
        .unwrap();

    // Without the sidecar, a plain connection is refused by the server itself.
    let (ok, out) = psql(pg.port, "gms", "select 1", &[]);
    let (ok_plain, out_plain) = {
        let o = Command::new(pg_bin("psql"))
            .arg(format!(
                "host=127.0.0.1 port={} user=gms dbname=postgres sslmode=disable",
                pg.port
            ))
            .args(["-At", "-c", "select 1"])
            .output()
            .unwrap();
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    assert!(ok, "psql straight to the server with TLS works: {out}");
    assert!(
        !ok_plain && out_plain.contains("no encryption"),
        "the server refuses plain: {out_plain}"
    );

    let (p_trust, p_cert, p_nocert) = (free_port(), free_port(), free_port());
    let up = [format!("localhost:{}", pg.port)];
    let tls = format!(
        "start = \"upgrade\"\nupgrade = \"postgres\"\nca = \"{}\"",
        pki.ca_path.display()
    );
    let routes = [
        route("pg", p_trust, &up, &tls),
        route(
            "pg-cert",
            p_cert,
            &up,
            &format!(
                "{tls}\ncert = \"{}\"\nkey = \"{}\"",
                cert_user.0.display(),
                cert_user.1.display()
            ),
        ),
        route("pg-nocert", p_nocert, &up, &tls),
    ]
    .join("\n");
    let s = Sidecar::start(dir.path(), &routes);

    // psql (which itself sends SSLRequest, answered "N") through the sidecar:
    // the server sees an encrypted session.
    let (ok, out) = psql(
        p_trust,
        "gms",
        "select ssl, version from pg_stat_ssl where pid = pg_backend_pid()",
        &[],
    );
    assert!(ok, "{out}\n{}", s.logs());
    assert_eq!(out.trim(), "t|TLSv1.3");
    let (ok, out) = psql(p_trust, "gms", "create table t(x int); insert into t select generate_series(1, 1000); select sum(x) from t", &[]);
    assert!(ok, "{out}");
    assert_eq!(out.trim().lines().last().unwrap(), "500500");

    // Client-certificate authentication through cert/key.
    let (ok, out) = psql(
        p_cert,
        "certuser",
        "select current_user, ssl from pg_stat_ssl where pid = pg_backend_pid()",
        &[],
    );
    assert!(ok, "{out}\n{}", s.logs());
    assert_eq!(out.trim(), "certuser|t");
    // Without a client certificate the server refuses the same user.
    let (ok, out) = psql(p_nocert, "certuser", "select 1", &[]);
    assert!(!ok, "{out}");
    assert!(out.contains("certificate"), "{out}");

    // pgbench: a short, bounded run with no errors.
    let bench = |args: &[&str]| {
        Command::new(pg_bin("pgbench"))
            .args(["-h", "127.0.0.1", "-p", &p_trust.to_string(), "-U", "gms"])
            .args(args)
            .arg("postgres")
            .output()
            .unwrap()
    };
    let init = bench(&["-i", "-q", "-s", "1"]);
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let run = bench(&["-c", "4", "-j", "2", "-t", "100", "-n"]);
    let text = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        text.contains("number of transactions actually processed: 400/400"),
        "{text}"
    );
    assert!(text.contains("number of failed transactions: 0"), "{text}");
    // (PostgreSQL asks for a certificate but refuses at authentication,
    // inside the TLS session: the client sees the server's FATAL message.)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_without_ssl_is_an_upgrade_refusal() {
    let dir = tmpdir();
    let pki = Pki::new(dir.path());
    let pg = Postgres::start(
        &pki,
        "host all all 127.0.0.1/32 trust\nlocal all all trust\n",
    );
    pg.admin_sql("ALTER SYSTEM SET ssl = off");
    pg.admin_sql("SELECT pg_reload_conf()");
    pg.wait_setting("ssl", "off");
    let p = free_port();
    let s = Sidecar::start(
        dir.path(),
        &route(
            "pg-nossl",
            p,
            &[format!("localhost:{}", pg.port)],
            &format!(
                "start = \"upgrade\"\nupgrade = \"postgres\"\nca = \"{}\"",
                pki.ca_path.display()
            ),
        ),
    );
    let (ok, _) = psql(p, "gms", "select 1", &[]);
    assert!(!ok);
    s.wait_handshake_errors("pg-nossl", "connect", "upgrade_refused", 1.0);
    s.wait_connections("pg-nossl", "upgrade_error", 1.0);
    assert!(
        s.has_any_log(&[
            "upgrade refused by the server: \\\"N\\\"",
            "upgrade refused by the server: \"N\"",
        ]),
        "{}",
        s.logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtplib_sends_through_the_smtp_profile_to_a_server_that_requires_starttls() {
    let dir = tmpdir();
    let pki = Pki::new(dir.path());
    let smtp_port = free_port();
    let out = dir.path().join("mail.jsonl");
    let server = FixtureServer::start(
        "smtp_server.py",
        &[
            &smtp_port.to_string(),
            pki.server.0.to_str().unwrap(),
            pki.server.1.to_str().unwrap(),
            out.to_str().unwrap(),
        ],
    );

    let p = free_port();
    let s = Sidecar::start(
        dir.path(),
        &route("mail", p, &[format!("localhost:{smtp_port}")], &format!("start = \"upgrade\"\nupgrade = \"smtp\"\nupgrade_hostname = \"gms-host\"\nca = \"{}\"", pki.ca_path.display())),
    );
    let client = format!(
        "import smtplib\ns = smtplib.SMTP('127.0.0.1', {p}, timeout=10)\ns.ehlo('gms')\ns.sendmail('gms@example.com', ['agent@example.com'], 'Subject: hi\\r\\n\\r\\nthrough the sidecar\\r\\n')\ns.quit()\nprint('sent')\n"
    );
    let sent = Command::new("python3")
        .arg("-c")
        .arg(client)
        .output()
        .unwrap();
    drop(server);
    assert!(
        sent.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&sent.stderr),
        s.logs()
    );
    let stored = std::fs::read_to_string(&out).unwrap();
    let msg: serde_json::Value = serde_json::from_str(stored.lines().next().unwrap()).unwrap();
    assert_eq!(msg["tls"], true, "the server recorded the session as TLS");
    assert_eq!(msg["from"], "gms@example.com");
    assert!(msg["body"]
        .as_str()
        .unwrap()
        .contains("through the sidecar"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imaplib_through_the_imap_profile_is_not_told_to_starttls_or_that_login_is_disabled() {
    let dir = tmpdir();
    let pki = Pki::new(dir.path());
    let imap_port = free_port();
    let server = FixtureServer::start(
        "imap_server.py",
        &[
            &imap_port.to_string(),
            pki.server.0.to_str().unwrap(),
            pki.server.1.to_str().unwrap(),
        ],
    );

    let p = free_port();
    let s = Sidecar::start(
        dir.path(),
        &route(
            "imap",
            p,
            &[format!("localhost:{imap_port}")],
            &format!(
                "start = \"upgrade\"\nupgrade = \"imap\"\nca = \"{}\"",
                pki.ca_path.display()
            ),
        ),
    );
    // The application: Python's imaplib, on the sidecar's plain port.
    let client = format!(
        "import imaplib\nM = imaplib.IMAP4('127.0.0.1', {p}, timeout=10)\nprint(M.welcome.decode())\nprint(' '.join(sorted(M.capabilities)))\ntyp, _ = M.login('gms', 'secret')\nassert typ == 'OK', typ\ntyp, d = M.select('INBOX')\nassert (typ, d) == ('OK', [b'3']), (typ, d)\nM.logout()\nprint('done')\n"
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(client)
        .output()
        .unwrap();
    drop(server);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        s.logs()
    );
    let mut printed = stdout.lines();
    assert_eq!(
        printed.next(),
        Some("* OK [CAPABILITY IMAP4rev1 SASL-IR ID IDLE] test imap ready."),
        "the greeting as the application saw it"
    );
    assert_eq!(printed.next(), Some("AUTH=PLAIN ID IDLE IMAP4REV1 SASL-IR"));
    assert_eq!(printed.next(), Some("done"));
    Summary::new(
        "imaplib_through_the_imap_profile_is_not_told_to_starttls_or_that_login_is_disabled",
    )
    .row(
        "IMAP greeting advertising STARTTLS and LOGINDISABLED",
        "Python imaplib through the imap profile to a STARTTLS-only IMAP-style server",
        "the application's greeting has neither; LOGIN and SELECT work over the secured session",
        "greeting \"[CAPABILITY IMAP4rev1 SASL-IR ID IDLE]\"; LOGIN and SELECT ok",
        true,
        "",
    );
}

/// A made-up in-house server: greets, waits for "PROTOCOL tls", answers
/// with `answer` (plus `smuggle` in the same write), then TLS echo.
async fn inhouse_server(pki: &Pki, answer: &'static [u8], smuggle: &'static [u8]) -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let acceptor = tokio_rustls::TlsAcceptor::from(pki.server_config());
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = l.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                tcp.write_all(b"CFGSRV 8.5 READY\r\n").await.unwrap();
                let mut line = String::new();
                let mut r = BufReader::with_capacity(1, &mut tcp);
                r.read_line(&mut line).await.unwrap();
                assert_eq!(line, "PROTOCOL tls\r\n");
                let mut reply = answer.to_vec();
                reply.extend_from_slice(smuggle);
                tcp.write_all(&reply).await.unwrap();
                if answer.starts_with(b"200") {
                    if let Ok(s) = acceptor.accept(tcp).await {
                        echo(s).await;
                    }
                }
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scripted_inhouse_upgrade_works_and_refusals_and_injections_are_named() {
    let dir = tmpdir();
    let pki = Pki::new(dir.path());
    let good = inhouse_server(&pki, b"200 switching to TLS\r\n", b"").await;
    let refusing = inhouse_server(&pki, b"503 TLS disabled\r\n", b"").await;
    let injecting = inhouse_server(&pki, b"200 switching to TLS\r\n", b"200 injected\r\n").await;
    let script = format!(
        "start = \"upgrade\"\nupgrade = \"script\"\nscript = [ {{ relay = \"CFGSRV\" }}, {{ send = \"PROTOCOL tls\\r\\n\" }}, {{ expect = \"200\" }} ]\nca = \"{}\"",
        pki.ca_path.display()
    );
    let (p1, p2, p3) = (free_port(), free_port(), free_port());
    let routes = [
        route("cfg", p1, &[format!("localhost:{good}")], &script),
        route(
            "cfg-refused",
            p2,
            &[format!("localhost:{refusing}")],
            &script,
        ),
        route(
            "cfg-injected",
            p3,
            &[format!("localhost:{injecting}")],
            &script,
        ),
    ]
    .join("\n");
    let s = Sidecar::start(dir.path(), &routes);
    // The client sees the relayed greeting, then its bytes go through TLS.
    let mut c = tokio::net::TcpStream::connect(("127.0.0.1", p1))
        .await
        .unwrap();
    c.write_all(b"sent early, before the switch").await.unwrap();
    let mut greeting = [0u8; 18];
    c.read_exact(&mut greeting).await.unwrap();
    assert_eq!(&greeting, b"CFGSRV 8.5 READY\r\n");
    let mut back = [0u8; 29];
    tokio::time::timeout(patience(10), c.read_exact(&mut back))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&back, b"sent early, before the switch");

    for (port, route, reason, words) in [
        (p2, "cfg-refused", "upgrade_refused", "503 TLS disabled"),
        (p3, "cfg-injected", "upgrade_protocol", "STARTTLS injection"),
    ] {
        // The sidecar resets the client when the upgrade fails; the reset
        // may beat the end of our own connect on a busy machine.
        let mut all = Vec::new();
        match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            Ok(mut c) => {
                let _ = tokio::time::timeout(patience(10), c.read_to_end(&mut all))
                    .await
                    .unwrap();
            }
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
        }
        assert!(
            !all.windows(8).any(|w| w == b"injected"),
            "smuggled bytes never reach the client"
        );
        s.wait_handshake_errors(route, "connect", reason, 1.0);
        s.wait_connections(route, "upgrade_error", 1.0);
        assert!(s.has_log(words), "{words}: {}", s.logs());
    }
}

/// A Python server from `tests/fixtures/` (its modules installed by
/// `tests/setup.sh`), started and ready: it prints `ready` once it listens.
/// Killed when dropped.
struct FixtureServer(std::process::Child);

impl FixtureServer {
    fn start(script: &str, args: &[&str]) -> FixtureServer {
        let path = format!("{}/tests/fixtures/{script}", env!("CARGO_MANIFEST_DIR"));
        let mut child = Command::new("python3")
            .arg(&path)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("python3 {path} (tests/setup.sh): {e}"));
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line.trim(), "ready", "{path} did not start");
        FixtureServer(child)
    }
}

impl Drop for FixtureServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
