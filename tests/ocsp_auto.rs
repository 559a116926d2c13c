//! `ocsp = "auto"` against a real responder (`openssl ocsp -index … -port
//! …`, signing with a delegated responder certificate the CA issued with
//! id-kp-OCSPSigning), seen by a real client (`openssl s_client -status`):
//! the sidecar starts and serves while no responder answers, staples the
//! response once the responder is up (retrying with back-off), keeps the
//! last good response while the responder is gone or answers garbage, and
//! staples the truth when it answers "revoked". Each change of responder
//! is followed by a SIGHUP: a new plan fetches at once.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `openssl ocsp` serving on `port` from an index that lists `serial` as
/// valid or revoked; killed on drop.
struct OcspResponder(Child);

impl OcspResponder {
    fn start(
        dir: &Path,
        port: u16,
        serial: &str,
        revoked: bool,
        signer: &(PathBuf, PathBuf),
        ca: &Path,
    ) -> Self {
        let index = dir.join(format!("index-{revoked}.txt"));
        let entry = if revoked {
            format!("R\t351231000000Z\t251201000000Z\t{serial}\tunknown\t/CN=localhost\n")
        } else {
            format!("V\t351231000000Z\t\t{serial}\tunknown\t/CN=localhost\n")
        };
        std::fs::write(&index, entry).unwrap();
        let mut child = Command::new("openssl")
            .args(["ocsp", "-index"])
            .arg(&index)
            .args(["-port", &port.to_string()])
            .arg("-rsigner")
            .arg(&signer.0)
            .arg("-rkey")
            .arg(&signer.1)
            .arg("-CA")
            .arg(ca)
            .args(["-ndays", "1"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("openssl ocsp");
        // Ready once it says so; a probe connection would hang it (it
        // serves one connection at a time and waits on an empty one).
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if line.contains("waiting for OCSP client connections") {
                    let _ = tx.send(());
                }
            }
        });
        rx.recv_timeout(patience(20))
            .expect("openssl ocsp did not start");
        OcspResponder(child)
    }
}

impl Drop for OcspResponder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The responder the certificate names, on `port`: it passes each
/// connection to the `openssl ocsp` on the port `to` holds, or, with
/// `None`, answers HTTP 200 with bytes that are not an OCSP response.
/// Aborting the task closes the port (the responder is gone).
async fn front(port: u16, to: Arc<Mutex<Option<u16>>>) -> tokio::task::JoinHandle<()> {
    let l = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move {
        while let Ok((mut c, _)) = l.accept().await {
            let target = *to.lock().unwrap();
            tokio::spawn(async move {
                match target {
                    Some(p) => {
                        if let Ok(mut up) = tokio::net::TcpStream::connect(("127.0.0.1", p)).await {
                            let _ = tokio::io::copy_bidirectional(&mut c, &mut up).await;
                        }
                    }
                    None => {
                        let mut buf = [0u8; 4096];
                        let _ = c.read(&mut buf).await;
                        let _ = c
                            .write_all(b"HTTP/1.0 200 OK\r\nContent-Type: application/ocsp-response\r\nContent-Length: 7\r\n\r\nnot DER")
                            .await;
                    }
                }
            });
        }
    })
}

fn fetches(s: &Sidecar, result: &str) -> f64 {
    s.metric(
        "tls_sidecar_ocsp_fetches_total",
        &[("route", "web"), ("result", result)],
    )
    .unwrap_or(0.0)
}

/// Waits until `fetches(result)` reaches `n`.
fn wait_fetches(s: &Sidecar, result: &str, n: f64, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while fetches(s, result) < n {
        assert!(
            Instant::now() < deadline,
            "never {n} {result} fetches:\n{}\n{}",
            s.metrics(),
            s.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn status(port: u16, ca: &Path) -> String {
    s_client(port, ca, &["-status", "-tls1_3"]).1
}

/// SIGHUP, and waits for reload number `n`.
fn hup(s: &Sidecar, n: f64) {
    s.signal("HUP");
    s.wait_metric("tls_sidecar_config_reloads_total", &[("result", "ok")], n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_fetches_keeps_the_last_good_response_and_staples_revoked() {
    let dir = tmpdir();
    let d = dir.path();
    let pki = Pki::new(d);
    let rport = free_port();
    let leaf = pki.ca.leaf_with_ocsp(
        "localhost",
        &["localhost", "127.0.0.1"],
        &format!("http://127.0.0.1:{rport}/"),
    );
    let (cert, key) = leaf.write(d, "web").unwrap();
    let chain = pki::write(
        d,
        "chain.pem",
        &format!("{}{}", leaf.cert_pem, pki.ca.cert_pem()),
    )
    .unwrap();
    let signer = pki
        .ca
        .ocsp_signer("OCSP Responder")
        .write(d, "signer")
        .unwrap();
    let serial: String = leaf.serial.iter().map(|b| format!("{b:02X}")).collect();
    let port = free_port();
    let routes = listen_route(
        "web",
        port,
        9,
        &format!(
            "cert = \"{}\"\nkey = \"{}\"\nocsp = \"auto\"",
            chain.display(),
            key.display()
        ),
    );
    drop(cert);

    // No responder yet: the sidecar starts and serves, without a staple.
    let s = Sidecar::start(d, &routes);
    wait_fetches(&s, "error", 1.0, 15);
    assert!(status(port, &pki.ca_path).contains("OCSP response: no response sent"));
    let labels = [("route", "web"), ("subject", "CN=localhost")];
    assert_eq!(
        s.metric("tls_sidecar_ocsp_next_update_timestamp_seconds", &labels),
        None
    );

    // The responder comes up: a retry fetches and staples its answer.
    let (good_port, revoked_port) = (free_port(), free_port());
    let _good = OcspResponder::start(d, good_port, &serial, false, &signer, &pki.ca_path);
    let _revoked = OcspResponder::start(d, revoked_port, &serial, true, &signer, &pki.ca_path);
    let to = Arc::new(Mutex::new(Some(good_port)));
    let up = front(rport, to.clone()).await;
    wait_fetches(&s, "ok", 1.0, 30);
    let out = status(port, &pki.ca_path);
    assert!(out.contains("Cert Status: good"), "{out}");
    assert!(out.contains("Responder Id: CN = OCSP Responder"), "{out}");
    let next = s
        .metric("tls_sidecar_ocsp_next_update_timestamp_seconds", &labels)
        .expect("stapled");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((next - (now + 86_400.0)).abs() < 600.0, "{next}");
    let json = http_get(s.admin, "/status.json").unwrap().1;
    assert!(
        json.contains("\"source\": \"auto\"") && json.contains("\"state\": \"stapled\""),
        "{json}"
    );

    // The responder goes away: the fetch fails, the last good one stays.
    up.abort();
    let _ = up.await;
    let errors = fetches(&s, "error");
    hup(&s, 1.0);
    wait_fetches(&s, "error", errors + 1.0, 15);
    assert!(s.wait_log(
        "failed to fetch the OCSP response: failed to connect to",
        10
    ));
    assert!(status(port, &pki.ca_path).contains("Cert Status: good"));

    // It answers garbage: refused, the last good one stays.
    *to.lock().unwrap() = None;
    let _up = front(rport, to.clone()).await;
    let errors = fetches(&s, "error");
    hup(&s, 2.0);
    wait_fetches(&s, "error", errors + 1.0, 15);
    assert!(
        s.wait_log(
            "answered a response that is not stapled: not a DER OCSP response",
            10
        ),
        "{}",
        s.logs()
    );
    assert!(status(port, &pki.ca_path).contains("Cert Status: good"));
    assert!(s
        .metric("tls_sidecar_ocsp_next_update_timestamp_seconds", &labels)
        .is_some());

    // It says revoked: that is what is stapled from then on.
    *to.lock().unwrap() = Some(revoked_port);
    hup(&s, 3.0);
    wait_fetches(&s, "revoked", 1.0, 15);
    let out = status(port, &pki.ca_path);
    assert!(out.contains("Cert Status: revoked"), "{out}");
    assert!(s.wait_log("the OCSP responder says the certificate is REVOKED", 10));
}
