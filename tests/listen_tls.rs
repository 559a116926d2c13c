//! TLS termination in front of a local plain port, and re-encryption, with
//! real clients: curl, openssl s_client, rustls; a real HTTP server behind.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use aws_lc_rs::digest::{Context, SHA256};
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Python's http.server on a free port, serving `dir`; killed on drop.
struct HttpServer {
    child: std::process::Child,
    port: u16,
}

impl HttpServer {
    fn start(dir: &Path) -> HttpServer {
        let port = free_port();
        let child = Command::new("python3")
            .args([
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &port.to_string(),
                "--directory",
            ])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3");
        let server = HttpServer { child, port };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return server;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("http.server did not start");
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs curl; returns (exit code, stdout).
fn curl(args: &[&str]) -> (i32, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Runs `openssl s_client` with `args`, sending nothing; returns (exit code, stdout+stderr).
fn s_client(port: u16, args: &[&str]) -> (i32, String) {
    let out = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("openssl");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_gets_a_real_page_through_the_terminator_with_tls12_and_tls13() {
    let dir = tmpdir();
    let pki = Pki::new(dir.path());
    let www = dir.path().join("www");
    std::fs::create_dir(&www).unwrap();
    std::fs::write(www.join("index.html"), "<h1>GMS over the sidecar</h1>\n").unwrap();
    let http = HttpServer::start(&www);
    let p = free_port();
    let tls = format!(
        "{}\nprotocols = [\"TLSv1.3\", \"TLSv1.2\"]\nalpn = [\"http/1.1\"]",
        pki.listen_tls()
    );
    let s = Sidecar::start(dir.path(), &listen_route("gms-https", p, http.port, &tls));
    let url = format!("https://localhost:{p}/index.html");
    let ca = pki.ca_path.display().to_string();
    let resolve = format!("localhost:{p}:127.0.0.1");
    for extra in [
        &["--tlsv1.2", "--tls-max", "1.2"][..],
        &["--tlsv1.3"][..],
        &[][..],
    ] {
        let mut args = vec!["--cacert", &ca, "--resolve", &resolve];
        args.extend_from_slice(extra);
        args.push(&url);
        let (code, body) = curl(&args);
        assert_eq!(code, 0, "curl {extra:?} failed");
        assert_eq!(body, "<h1>GMS over the sidecar</h1>\n");
    }
    s.wait_metric(
        "tls_sidecar_tls_sessions_total",
        &[
            ("route", "gms-https"),
            ("side", "listen"),
            ("version", "TLSv1.2"),
            ("cipher", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"),
            ("resumed", "false"),
        ],
        1.0,
    );
    // Without the CA, curl itself refuses the sidecar's certificate.
    let (code, _) = curl(&["--resolve", &format!("localhost:{p}:127.0.0.1"), &url]);
    assert_ne!(code, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_s_client_tls11_is_refused_and_tls12_tls13_accepted() {
    let dir = tmpdir();
    let pki = Pki::new(dir.path());
    let bport = plain_echo().await;
    let p = free_port();
    let tls = pki.listen_tls();
    let s = Sidecar::start(dir.path(), &listen_route("in", p, bport, &tls));
    let (code, out) = s_client(p, &["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"]);
    assert_ne!(code, 0, "TLS 1.1 must be refused: {out}");
    s.wait_handshake_errors("in", "listen", "protocol_version", 1.0);
    for v in ["-tls1_2", "-tls1_3"] {
        let (code, out) = s_client(
            p,
            &[
                v,
                "-CAfile",
                &pki.ca_path.display().to_string(),
                "-verify_return_error",
                "-servername",
                "localhost",
            ],
        );
        assert_eq!(code, 0, "{v}: {out}");
        assert!(out.contains("Verify return code: 0 (ok)"), "{out}");
    }
    Summary::new("openssl_s_client_tls11_is_refused_and_tls12_tls13_accepted").row(
        "client offers only TLS 1.1",
        "`openssl s_client -tls1_1` to a TLS listener; then `-tls1_2`, `-tls1_3`",
        "1.1 refused (`protocol_version` counted); 1.2 and 1.3 verified and served",
        "as expected",
        true,
        "",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sni_chooses_between_two_certificates_and_is_enforced_when_required() {
    let dir = tmpdir();
    let pki = Pki::new(dir.path());
    let web = pki
        .ca
        .leaf("gms-web", &["gms.example.com"])
        .write(dir.path(), "web")
        .unwrap();
    let api = pki
        .ca
        .leaf("gms-api", &["api.example.com", "*.api.example.com"])
        .write(dir.path(), "api")
        .unwrap();
    let bport = plain_echo().await;
    let certs = format!(
        "certs = [{{ cert = \"{}\", key = \"{}\" }}, {{ cert = \"{}\", key = \"{}\" }}]",
        web.0.display(),
        web.1.display(),
        api.0.display(),
        api.1.display()
    );
    let (p1, p2) = (free_port(), free_port());
    let routes = [
        listen_route("sni-default", p1, bport, &certs),
        listen_route(
            "sni-required",
            p2,
            bport,
            &format!("{certs}\nsni_required = true"),
        ),
    ]
    .join("\n");
    let s = Sidecar::start(dir.path(), &routes);
    let (_, out) = s_client(p1, &["-servername", "v2.api.example.com"]);
    assert!(out.contains("subject=CN = gms-api"), "{out}");
    let (_, out) = s_client(p1, &["-servername", "gms.example.com"]);
    assert!(out.contains("subject=CN = gms-web"), "{out}");
    let (_, out) = s_client(p1, &["-noservername"]);
    assert!(
        out.contains("subject=CN = gms-web"),
        "the first certificate is the default: {out}"
    );
    let (_, out) = s_client(p1, &["-servername", "unknown.example.org"]);
    assert!(out.contains("subject=CN = gms-web"), "{out}");

    let (code, out) = s_client(p2, &["-noservername"]);
    assert!(
        code != 0 || !out.contains("subject="),
        "no SNI must be refused: {out}"
    );
    let (code2, out2) = s_client(p2, &["-servername", "unknown.example.org"]);
    assert!(code2 != 0 || !out2.contains("subject="), "{out2}");
    s.wait_handshake_errors("sni-required", "listen", "no_sni", 2.0);
    assert!(
        s.has_log("unknown.example.org"),
        "the unknown name is logged"
    );
    let (_, out) = s_client(p2, &["-servername", "gms.example.com"]);
    assert!(out.contains("subject=CN = gms-web"), "{out}");
    Summary::new("sni_chooses_between_two_certificates_and_is_enforced_when_required").row(
        "client without SNI, or with an unknown name",
        "`openssl s_client -noservername` and `-servername unknown.example.org` to a listener with `sni_required = true`",
        "handshake alert, `no_sni` counted, the name logged; known names served",
        "as expected",
        true,
        "",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_are_required_and_checked_against_client_ca() {
    let dir = tmpdir();
    let pki = Pki::new(dir.path());
    let www = dir.path().join("www");
    std::fs::create_dir(&www).unwrap();
    std::fs::write(www.join("ok.txt"), "mutual ok\n").unwrap();
    let http = HttpServer::start(&www);
    let foreign = Ca::new("Foreign CA")
        .leaf("intruder", &["intruder"])
        .write(dir.path(), "foreign")
        .unwrap();
    let expired = pki
        .ca
        .leaf_valid(
            "old-client",
            &["old"],
            Validity {
                from_days: -30,
                to_days: -2,
            },
        )
        .write(dir.path(), "expired")
        .unwrap();
    let p = free_port();
    let tls = format!(
        "{}\nclient_ca = \"{}\"",
        pki.listen_tls(),
        pki.ca_path.display()
    );
    let s = Sidecar::start(dir.path(), &listen_route("mtls-in", p, http.port, &tls));
    let url = format!("https://localhost:{p}/ok.txt");
    let resolve = format!("localhost:{p}:127.0.0.1");
    let ca = pki.ca_path.display().to_string();
    let with = |c: &(std::path::PathBuf, std::path::PathBuf)| {
        curl(&[
            "--cacert",
            &ca,
            "--resolve",
            &resolve,
            "--cert",
            &c.0.display().to_string(),
            "--key",
            &c.1.display().to_string(),
            &url,
        ])
    };
    let (code, body) = with(&pki.client);
    assert_eq!((code, body.as_str()), (0, "mutual ok\n"));
    assert!(
        s.wait_log("client_cert=\"CN=gms-client\"", 5),
        "the accepted client's subject is logged"
    );
    let (code, _) = curl(&["--cacert", &ca, "--resolve", &resolve, &url]);
    assert_ne!(code, 0, "no client certificate");
    assert_ne!(with(&foreign).0, 0, "a certificate from another CA");
    assert_ne!(with(&expired).0, 0, "an expired certificate");
    s.wait_handshake_errors("mtls-in", "listen", "no_client_cert", 1.0);
    s.wait_handshake_errors("mtls-in", "listen", "unknown_ca", 1.0);
    s.wait_handshake_errors("mtls-in", "listen", "expired", 1.0);
    Summary::new("client_certificates_are_required_and_checked_against_client_ca").row(
        "client certificate missing, foreign or expired",
        "curl to a listener with `client_ca`: no certificate, one from another CA, an expired one, a good one",
        "the three refused (`no_client_cert`, `unknown_ca`, `expired`); the good one served",
        "as expected",
        true,
        "",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_garbage_clients_are_closed_while_a_healthy_one_is_served() {
    let dir = tmpdir();
    let pki = Pki::new(dir.path());
    let bport = plain_echo().await;
    let p = free_port();
    let tls = pki.listen_tls();
    let text = listen_route("guarded", p, bport, &tls).replace(
        "[route.listen_tls]",
        "handshake_timeout = \"1s\"\n[route.listen_tls]",
    );
    let s = Sidecar::start(dir.path(), &text);

    // Silent client, and a ClientHello trickled one byte a second.
    let mut silent = TcpStream::connect(("127.0.0.1", p)).await.unwrap();
    let trickle = tokio::spawn(async move {
        let mut c = TcpStream::connect(("127.0.0.1", p)).await.unwrap();
        for b in [0x16u8, 0x03, 0x01, 0x02, 0x00, 0x01] {
            if c.write_all(&[b]).await.is_err() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
        let mut buf = [0u8; 16];
        matches!(
            tokio::time::timeout(patience(3), c.read(&mut buf)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    });
    // Garbage instead of a ClientHello.
    let mut garbage = TcpStream::connect(("127.0.0.1", p)).await.unwrap();
    garbage
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();

    // A healthy rustls client meanwhile.
    let cfg = client_config(&pki.ca_path, None);
    let tcp = TcpStream::connect(("127.0.0.1", p)).await.unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(cfg)
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap();
    tls.write_all(b"healthy").await.unwrap();
    let mut b = [0u8; 7];
    tls.read_exact(&mut b).await.unwrap();
    assert_eq!(&b, b"healthy");

    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(patience(5), garbage.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert!(
        n == 0 || buf[0] == 0x15,
        "garbage gets at most an alert, then the end"
    );
    let t0 = std::time::Instant::now();
    let r = tokio::time::timeout(patience(5), silent.read(&mut buf))
        .await
        .unwrap();
    assert!(matches!(r, Ok(0) | Err(_)), "the silent client is closed");
    assert!(t0.elapsed() < Duration::from_secs(3));
    assert!(trickle.await.unwrap(), "the trickling client is closed");
    s.wait_handshake_errors("guarded", "listen", "timeout", 2.0);
    assert!(s.has_log("did not send a TLS ClientHello"), "{}", s.logs());
    // Still healthy after all that.
    tls.write_all(b"again!!").await.unwrap();
    tls.read_exact(&mut b).await.unwrap();
    assert_eq!(&b, b"again!!");
    Summary::new("slow_and_garbage_clients_are_closed_while_a_healthy_one_is_served").row(
        "silent, trickling and non-TLS clients",
        "with `handshake_timeout = 1s`: a client that sends nothing, one trickling a ClientHello a byte per 400 ms, one sending HTTP",
        "silent and trickling closed after 1 s (`timeout` counted), HTTP gets at most an alert; a healthy TLS client served throughout",
        &format!(
            "silent and trickling closed, 2 `timeout` counted; HTTP answered with {n} bytes (an alert), then closed; the healthy client served before and after"
        ),
        true,
        "",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reencrypting_route_carries_64_mib_both_ways_and_half_close_on_both_legs() {
    let dir = tmpdir();
    let pki = Pki::new(dir.path());
    let upstream = pki.echo().await;
    let p = free_port();
    let text = format!(
        "[[route]]\nname = \"reenc\"\nlisten = \"127.0.0.1:{p}\"\nconnect = [\"localhost:{}\"]\n[route.listen_tls]\ncert = \"{}\"\nkey = \"{}\"\n[route.connect_tls]\nca = \"{}\"\n",
        upstream.port(),
        pki.server.0.display(),
        pki.server.1.display(),
        pki.ca_path.display()
    );
    let _s = Sidecar::start(dir.path(), &text);
    let cfg = client_config(&pki.ca_path, None);
    let tcp = TcpStream::connect(("127.0.0.1", p)).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(cfg)
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap();
    let (mut r, mut w) = tokio::io::split(tls);
    const TOTAL: usize = 64 << 20;
    let writer = tokio::spawn(async move {
        let mut h = Context::new(&SHA256);
        let mut chunk = vec![0u8; 32 * 1024];
        for i in 0..TOTAL / chunk.len() {
            chunk
                .iter_mut()
                .enumerate()
                .for_each(|(j, b)| *b = (i * 31 + j * 7) as u8);
            h.update(&chunk);
            w.write_all(&chunk).await.unwrap();
        }
        // Half-close: close_notify to the sidecar, which carries it upstream;
        // the echo server then ends its side, which comes back to us.
        w.shutdown().await.unwrap();
        h.finish().as_ref().to_vec()
    });
    let (n, got) = sha256_to_end(&mut r).await;
    assert_eq!(
        n, TOTAL,
        "every byte came back, then a clean close_notify end"
    );
    assert_eq!(got, writer.await.unwrap());
}

/// One `openssl s_client` connection with `args` (`-sess_out F` or
/// `-sess_in F`): sends a line, waits for the echo (the server's session
/// tickets come before any application data, so they have arrived by
/// then), closes, and returns what it printed.
fn s_client_echo(port: u16, args: &[&str]) -> String {
    use std::io::{BufRead, BufReader, Write};
    let mut child = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(["-servername", "localhost"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"resumption-check\n").unwrap();
    let mut out = String::new();
    while let Ok(line) = rx.recv_timeout(patience(10)) {
        out.push_str(&line);
        out.push('\n');
        if line == "resumption-check" {
            break;
        }
    }
    drop(stdin);
    let _ = child.wait();
    let _ = reader.join();
    out.extend(rx.try_iter().map(|l| l + "\n"));
    assert!(out.contains("resumption-check\n"), "no echo: {out}");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumption_false_gives_every_client_a_full_handshake_and_the_default_resumes() {
    let dir = tmpdir();
    let pki = Pki::new(dir.path());
    let bport = plain_echo().await;
    let (on, off) = (free_port(), free_port());
    let text = format!(
        "{}{}resumption = false\n",
        listen_route("on", on, bport, &pki.listen_tls()),
        listen_route("off", off, bport, &pki.listen_tls())
    );
    let s = Sidecar::start(dir.path(), &text);
    let ca = pki.ca_path.display().to_string();
    let summary = Summary::new(
        "resumption_false_gives_every_client_a_full_handshake_and_the_default_resumes",
    );
    for version in ["-tls1_2", "-tls1_3"] {
        for (route, port, resumes) in [("on", on, true), ("off", off, false)] {
            let sess = dir.path().join(format!("{route}{version}.sess"));
            let sess = sess.display().to_string();
            let first = s_client_echo(port, &[version, "-CAfile", &ca, "-sess_out", &sess]);
            assert!(first.contains("\nNew, "), "{route} {version}: {first}");
            // Without a session ID or ticket from the server (TLS 1.2 with
            // resumption off) OpenSSL writes no session file: nothing to
            // resume, as a reconnect without one shows.
            let given = std::path::Path::new(&sess).exists();
            let again = if given {
                s_client_echo(port, &[version, "-CAfile", &ca, "-sess_in", &sess])
            } else {
                s_client_echo(port, &[version, "-CAfile", &ca])
            };
            let reused = again.contains("\nReused, ");
            assert!(
                given || !resumes,
                "{route} {version}: no session saved: {first}"
            );
            assert_eq!(
                reused, resumes,
                "{route} {version}, second connection: {again}"
            );
            summary.row(
                &format!("route {route}, {version}"),
                "`openssl s_client -sess_out`, then `-sess_in` with that session",
                if resumes {
                    "resumed"
                } else {
                    "a full handshake again"
                },
                if reused { "resumed" } else { "full handshake" },
                reused == resumes,
                "",
            );
        }
    }
    // Counted at each handshake, before the echo could come back.
    let scrape = s.metrics();
    for (route, resumed, want) in [
        ("on", "true", 2.0),
        ("on", "false", 2.0),
        ("off", "false", 4.0),
    ] {
        let labels = [
            format!("route=\"{route}\""),
            "side=\"listen\"".to_owned(),
            format!("resumed=\"{resumed}\""),
        ];
        let got: f64 = scrape
            .lines()
            .filter(|l| l.starts_with("tls_sidecar_tls_sessions_total{"))
            .filter(|l| labels.iter().all(|w| l.contains(w.as_str())))
            .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum();
        assert_eq!(got, want, "route {route}, resumed={resumed}: {scrape}");
    }
}
