//! `import stunnel`, differentially: one stunnel.conf is run by the real
//! stunnel (Debian's stunnel4, foreground, no pid file) and then, imported
//! by `tls-sidecar import stunnel` and accepted by `check`, by the sidecar
//! on the same ports, against the same peers. Each service is a
//! verification case; each is tried against every peer, and the two must
//! agree: the same bytes relayed, or both refusing.
//!
//! Client side (`client = yes`): `openssl s_server -rev` upstreams with a
//! good certificate (localhost, 127.0.0.1, under the CA), one for another
//! name under the same CA, and one for localhost under an unknown CA.
//! Server side (`client = no`, `requireCert`): rustls clients with a
//! certificate under the CA (named gms-client), one under the CA with
//! another name, one under an unknown CA, and none.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::served::Served;
use common::*;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// What a connection through the relay came to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Relayed(String),
    Refused,
}

/// Client-side cases: (service name, its verification options, what each
/// upstream should come to: good, wrong name, unknown CA).
const CLIENT_CASES: &[(&str, &str, [bool; 3])] = &[
    ("no verify", "CAfile = @CA", [true, true, true]),
    (
        "verifyChain",
        "verifyChain = yes\nCAfile = @CA",
        [true, true, false],
    ),
    (
        "verifyChain checkHost",
        "verifyChain = yes\nCAfile = @CA\ncheckHost = localhost",
        [true, false, false],
    ),
    (
        "verifyChain checkIP",
        "verifyChain = yes\nCAfile = @CA\ncheckIP = 127.0.0.1",
        [true, false, false],
    ),
    (
        "verify = 2",
        "verify = 2\nCAfile = @CA",
        [true, true, false],
    ),
    (
        "verify = 4 (peer)",
        "verify = 4\nCAfile = @GOOD",
        [true, false, false],
    ),
    (
        "TLSv1.2, one suite",
        "verifyChain = yes\nCAfile = @CA\ncheckHost = localhost\nsslVersion = TLSv1.2\nciphers = ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256",
        [true, false, false],
    ),
    (
        "CApath system",
        "verifyChain = yes\nCApath = /etc/ssl/certs\ncheckHost = localhost",
        [false, false, false],
    ),
];

const UPSTREAMS: [&str; 3] = ["good", "wrong name", "unknown CA"];

/// Server-side cases: (service name, options, what each client should come
/// to: CA's gms-client, CA's other name, unknown CA, no certificate).
const SERVER_CASES: &[(&str, &str, [bool; 4])] = &[
    (
        "requireCert verifyChain",
        "verifyChain = yes\nrequireCert = yes\nCAfile = @CA",
        [true, true, false, false],
    ),
    (
        "verify = 2 checkHost",
        "verify = 2\nCAfile = @CA\ncheckHost = gms-client",
        [true, false, false, false],
    ),
    (
        "no client cert",
        "requireCert = no",
        [true, true, true, true],
    ),
];

const CLIENTS: [&str; 4] = [
    "CA gms-client",
    "CA other name",
    "unknown CA",
    "no certificate",
];

/// Every certificate of the test.
struct Certs {
    ca: PathBuf,
    server: (PathBuf, PathBuf),
    wrong_name: (PathBuf, PathBuf),
    unknown_ca: (PathBuf, PathBuf),
    client: (PathBuf, PathBuf),
    other_client: (PathBuf, PathBuf),
    stranger: (PathBuf, PathBuf),
}

fn certs(dir: &Path) -> Certs {
    let pki = Pki::new(dir);
    let other = Ca::new("Unknown CA");
    Certs {
        ca: pki.ca_path.clone(),
        server: pki.server.clone(),
        wrong_name: pki
            .ca
            .leaf("other.example", &["other.example"])
            .write(dir, "wrong")
            .unwrap(),
        unknown_ca: other
            .leaf("localhost", &["localhost", "127.0.0.1"])
            .write(dir, "unknown")
            .unwrap(),
        client: pki.client.clone(),
        other_client: pki
            .ca
            .leaf("intruder", &["intruder"])
            .write(dir, "intruder")
            .unwrap(),
        stranger: other
            .leaf("gms-client", &["gms-client"])
            .write(dir, "stranger")
            .unwrap(),
    }
}

/// The stunnel.conf: one service per (case, upstream) on the client side,
/// one per server case; with the ports each listens on.
fn conf(c: &Certs, upstreams: &[u16; 3], echo: u16) -> (String, Vec<u16>, Vec<u16>) {
    let mut text =
        "; the differential test's stunnel.conf\nforeground = yes\npid =\ndebug = 4\n".to_owned();
    let mut client_ports = Vec::new();
    for (i, (case, opts, _)) in CLIENT_CASES.iter().enumerate() {
        for (u, up) in upstreams.iter().enumerate() {
            let port = free_port();
            client_ports.push(port);
            let opts = opts
                .replace("@CA", &c.ca.display().to_string())
                .replace("@GOOD", &c.server.0.display().to_string());
            text.push_str(&format!(
                "\n; {case}, against the {} upstream\n[client {i}.{u}]\nclient = yes\naccept = 127.0.0.1:{port}\nconnect = 127.0.0.1:{up}\n{opts}\n",
                UPSTREAMS[u]
            ));
        }
    }
    let mut server_ports = Vec::new();
    for (i, (case, opts, _)) in SERVER_CASES.iter().enumerate() {
        let port = free_port();
        server_ports.push(port);
        text.push_str(&format!(
            "\n; {case}\n[server {i}]\naccept = 127.0.0.1:{port}\nconnect = 127.0.0.1:{echo}\ncert = {}\nkey = {}\n{}\n",
            c.server.0.display(),
            c.server.1.display(),
            opts.replace("@CA", &c.ca.display().to_string())
        ));
    }
    (text, client_ports, server_ports)
}

/// stunnel4 in the foreground on the conf; killed on drop.
struct Stunnel(Child);

impl Stunnel {
    fn start(conf: &Path, log: &Path, ports: &[u16]) -> Stunnel {
        let child = Command::new("stunnel4")
            .arg(conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .expect("stunnel4 (install it with tests/setup.sh)");
        let mut s = Stunnel(child);
        let deadline = std::time::Instant::now() + patience(20);
        for p in ports {
            while std::net::TcpStream::connect(("127.0.0.1", *p)).is_err() {
                if let Ok(Some(st)) = s.0.try_wait() {
                    panic!(
                        "stunnel4 exited ({st}): {}",
                        std::fs::read_to_string(log).unwrap()
                    );
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "stunnel4 does not listen on {p}"
                );
                std::thread::sleep(Duration::from_millis(25));
            }
        }
        s
    }
}

impl Drop for Stunnel {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A line through a plain connection to `port` (a client-side service).
async fn plain(port: u16) -> Outcome {
    match line_through(port, b"hello upstream\n").await {
        Ok(l) if !l.is_empty() => Outcome::Relayed(String::from_utf8_lossy(&l).into_owned()),
        _ => Outcome::Refused,
    }
}

/// A line through a TLS connection to `port` (a server-side service),
/// presenting `cert` when given.
async fn tls(port: u16, ca: &Path, cert: Option<&(PathBuf, PathBuf)>) -> Outcome {
    let config: Arc<rustls::ClientConfig> =
        client_config(ca, cert.map(|(c, k)| (c.as_path(), k.as_path())));
    let attempt = async {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut s = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await?;
        s.write_all(b"hello listener\n").await?;
        let mut line = Vec::new();
        BufReader::new(s).read_until(b'\n', &mut line).await?;
        Ok::<_, std::io::Error>(line)
    };
    match tokio::time::timeout(patience(10), attempt).await {
        Ok(Ok(l)) if !l.is_empty() => Outcome::Relayed(String::from_utf8_lossy(&l).into_owned()),
        _ => Outcome::Refused,
    }
}

/// Every case through whatever serves the ports now: client side then
/// server side, in the tables' order.
async fn run_cases(c: &Certs, client_ports: &[u16], server_ports: &[u16]) -> Vec<Outcome> {
    let mut out = Vec::new();
    for p in client_ports {
        out.push(plain(*p).await);
    }
    for p in server_ports {
        for cert in [
            Some(&c.client),
            Some(&c.other_client),
            Some(&c.stranger),
            None,
        ] {
            out.push(tls(*p, &c.ca, cert).await);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stunnel_and_the_imported_routes_relay_and_refuse_alike_for_every_verification_case() {
    let dir = tmpdir();
    let c = certs(dir.path());
    let s_servers: Vec<OpensslServer> = [&c.server, &c.wrong_name, &c.unknown_ca]
        .iter()
        .map(|(cert, key)| {
            let (cert, key) = (cert.display().to_string(), key.display().to_string());
            OpensslServer::start(&["-cert", &cert, "-key", &key, "-rev", "-quiet"])
        })
        .collect();
    let upstreams = [s_servers[0].port, s_servers[1].port, s_servers[2].port];
    let echo = plain_echo().await;
    let (text, client_ports, server_ports) = conf(&c, &upstreams, echo);
    let conf_path = dir.path().join("stunnel.conf");
    std::fs::write(&conf_path, &text).unwrap();
    let all_ports: Vec<u16> = client_ports.iter().chain(&server_ports).copied().collect();

    let by_stunnel = {
        let _st = Stunnel::start(&conf_path, &dir.path().join("stunnel.log"), &all_ports);
        run_cases(&c, &client_ports, &server_ports).await
    };

    let config = dir.path().join("sidecar.toml");
    let (code, out, err) = cli(&[&"import", &"stunnel", &conf_path, &"--out", &config]);
    assert_eq!(code, 0, "import: {out}{err}");
    let (code, out, err) = cli(&[&"check", &"-c", &config]);
    assert_eq!(
        code,
        0,
        "check: {out}{err}\n{}",
        std::fs::read_to_string(&config).unwrap()
    );
    let by_sidecar = {
        let _served = Served::start(&config, &all_ports);
        run_cases(&c, &client_ports, &server_ports).await
    };

    let mut rows = Vec::new();
    for (case, _, want) in CLIENT_CASES {
        for (u, up) in UPSTREAMS.iter().enumerate() {
            rows.push((format!("client: {case}"), *up, want[u]));
        }
    }
    for (case, _, want) in SERVER_CASES {
        for (k, who) in CLIENTS.iter().enumerate() {
            rows.push((format!("server: {case}"), *who, want[k]));
        }
    }
    let show = |o: &Outcome| match o {
        Outcome::Relayed(l) => format!("relayed {:?}", l.trim_end()),
        Outcome::Refused => "refused".to_owned(),
    };
    println!("| case | peer | stunnel 5.68 | tls-sidecar | agree |\n|---|---|---|---|---|");
    let mut wrong = Vec::new();
    for (((case, peer, want), st), sc) in rows.iter().zip(&by_stunnel).zip(&by_sidecar) {
        let agree = st == sc;
        println!(
            "| {case} | {peer} | {} | {} | {} |",
            show(st),
            show(sc),
            if agree { "yes" } else { "**no**" }
        );
        let expected_ok = matches!(st, Outcome::Relayed(_)) == *want;
        if !agree || !expected_ok {
            wrong.push(format!(
                "{case} / {peer}: stunnel {}, sidecar {}, expected {}",
                show(st),
                show(sc),
                if *want { "relayed" } else { "refused" }
            ));
        }
    }
    assert_eq!(rows.len(), 36);
    assert_eq!(by_stunnel.len(), rows.len());
    assert!(
        wrong.is_empty(),
        "{}\nthe config:\n{}",
        wrong.join("\n"),
        std::fs::read_to_string(&config).unwrap()
    );
}
