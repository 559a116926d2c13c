//! Secrets stay secret, and `check` says what `run` will do with them.
//!
//! - A marker password goes through every way a credential enters the
//!   sidecar — the proxy's `via_credentials` file (accepted by a real
//!   tinyproxy, and a wrong one refused by it), a PKCS#12 keystore's password
//!   file, and `via` URLs that carry it (`https://…`, `HTTP://…`, a TOML
//!   syntax error on that line) — and every output is searched for it:
//!   `check`, `reload`, `run`'s stderr at trace level, the 409 answers of
//!   `POST /reload`, `/status`, `/status.json` and systemd's `STATUS=`.
//! - The credentials and the keystore live in a directory of their own
//!   (as `/run/secrets` would be): `run` serves them inside its Landlock
//!   sandbox, and `check` reads them inside the same sandbox.
//! - The sandbox allows a directory whole only when it holds no `private`
//!   directory the config does not name: a key there stays unreadable, and
//!   a certificate beside it is allowed alone (rotation by rename then
//!   needs a restart, and the log says so).

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::daemon::Daemon;
use common::*;

const USER: &str = "gms";
const MARKER: &str = "Mk7-s3cr3t-Q9zw";

const ENFORCED: &str = "sandbox: Landlock enforced";
const NO_LANDLOCK: &str = "sandbox: this kernel has no Landlock";

fn tinyproxy(dir: &Path, ports: &[u16]) -> (Daemon, u16) {
    let port = free_port();
    let mut conf = format!(
        "Port {port}\nListen 127.0.0.1\nTimeout 30\nLogLevel Info\nMaxClients 50\nAllow 127.0.0.1\nBasicAuth {USER} {MARKER}\n"
    );
    for p in ports {
        conf.push_str(&format!("ConnectPort {p}\n"));
    }
    let file = dir.join("tinyproxy.conf");
    std::fs::write(&file, conf).unwrap();
    let d = Daemon::start(
        dir,
        "tinyproxy",
        &["-d", "-c", file.to_str().unwrap()],
        &[port],
    );
    (d, port)
}

/// A 0600 file holding `text`.
fn private_file(path: &Path, text: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path.to_owned()
}

/// `openssl pkcs12 -export` of the server leaf, protected by MARKER.
fn keystore(pki: &Pki, dir: &Path) -> PathBuf {
    let out = dir.join("web.p12");
    run_tool(
        "openssl",
        &[
            "pkcs12",
            "-export",
            "-in",
            pki.server.0.to_str().unwrap(),
            "-inkey",
            pki.server.1.to_str().unwrap(),
            "-out",
            out.to_str().unwrap(),
            "-passout",
            &format!("pass:{MARKER}"),
        ],
    );
    out
}

/// Does a message come back through the route? Read before closing:
/// tinyproxy ends both directions of a tunnel at the first FIN, so a
/// shutdown-then-read races.
async fn echoes(port: u16) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let msg = b"through the proxy";
    let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    if s.write_all(msg).await.is_err() {
        return false;
    }
    let mut back = [0u8; 17];
    let read = tokio::time::timeout(patience(10), s.read_exact(&mut back));
    matches!(read.await, Ok(Ok(_))) && &back == msg
}

/// The notify socket systemd would give (`NOTIFY_SOCKET`).
struct Notify {
    sock: UnixDatagram,
    path: PathBuf,
}

impl Notify {
    fn bind(dir: &Path) -> Notify {
        let path = dir.join("notify.sock");
        Notify {
            sock: UnixDatagram::bind(&path).unwrap(),
            path,
        }
    }

    /// Every datagram until `done` holds for what was read, or 20 s.
    fn until(&self, done: impl Fn(&str) -> bool) -> String {
        let mut all = String::new();
        let deadline = Instant::now() + patience(20);
        self.sock
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut b = [0u8; 8192];
        while !done(&all) && Instant::now() < deadline {
            if let Ok(n) = self.sock.recv(&mut b) {
                all.push_str(&String::from_utf8_lossy(&b[..n]));
                all.push('\n');
            }
        }
        all
    }
}

/// `POST /reload` from loopback: (status, body).
fn post_reload(admin: std::net::SocketAddr) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(admin).unwrap();
    s.set_read_timeout(Some(patience(30))).unwrap();
    s.write_all(
        b"POST /reload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut out = String::new();
    if let Err(e) = s.read_to_string(&mut out) {
        return (0, format!("{e}: read {out:?}"));
    }
    let status = out[9..12].parse().unwrap();
    (status, out.split_once("\r\n\r\n").unwrap().1.to_owned())
}

/// The routes: `via` through the proxy with the right credentials, `deny`
/// with wrong ones, `web` serving a keystore; `via_url` replaces the
/// proxy's URL in `via` (to make it one that carries the password).
struct Routes {
    via: String,
    deny: String,
    web: String,
}

impl Routes {
    fn text(&self, via_url: Option<&str>) -> String {
        match via_url {
            None => format!("{}{}{}", self.via, self.deny, self.web),
            Some(u) => {
                let via = self
                    .via
                    .lines()
                    .map(|l| {
                        if l.starts_with("via = ") {
                            u.to_owned()
                        } else {
                            l.to_owned()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("\n");
                format!("{via}\n{}{}", self.deny, self.web)
            }
        }
    }
}

// Long: one scenario, in order: start, use every credential, then each
// refused reload, then read every output and search it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_marker_password_reaches_no_output_and_files_in_a_secrets_directory_are_served() {
    let dir = tmpdir();
    let d = dir.path();
    let secrets = tmpdir();
    let pki = Pki::new(d);
    let up = tls_echo(pki.server_config()).await;
    let (proxy_d, proxy) = tinyproxy(d, &[up.port()]);
    let good = private_file(
        &secrets.path().join("proxy.cred"),
        &format!("{USER}:{MARKER}\n"),
    );
    let bad = private_file(
        &secrets.path().join("wrong.cred"),
        &format!("{USER}:{MARKER}-not\n"),
    );
    let p12 = keystore(&pki, secrets.path());
    let p12_pw = private_file(&secrets.path().join("web.p12.pw"), &format!("{MARKER}\n"));
    let backend = plain_echo().await;
    let (via_port, deny_port, web_port) = (free_port(), free_port(), free_port());
    let upstream = [format!("localhost:{}", up.port())];
    let via_keys = |creds: &Path| {
        format!(
            "via = \"http://127.0.0.1:{proxy}\"\nvia_credentials = \"{}\"",
            creds.display()
        )
    };
    let routes = Routes {
        via: tls_route("via", via_port, &upstream, &pki.ca_path).replace(
            "[route.connect_tls]",
            &format!("{}\n[route.connect_tls]", via_keys(&good)),
        ),
        deny: tls_route("deny", deny_port, &upstream, &pki.ca_path).replace(
            "[route.connect_tls]",
            &format!("{}\n[route.connect_tls]", via_keys(&bad)),
        ),
        web: listen_route(
            "web",
            web_port,
            backend,
            &format!(
                "cert = \"{}\"\npassword_file = \"{}\"",
                p12.display(),
                p12_pw.display()
            ),
        ),
    };
    let notify = Notify::bind(d);
    let (config, admin) = write_config(d, "", &routes.text(None), "trace");
    let s = Sidecar::spawn(
        &config,
        admin,
        &[("NOTIFY_SOCKET", notify.path.to_str().unwrap())],
    );
    s.wait_ready();
    let mut outputs: Vec<(String, String)> = Vec::new();

    // `check` reads every file inside the sandbox `run` applies, and agrees.
    let (code, out, err) = cli(&[&"check", &"-c", &config]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("config OK"), "{out}");
    let landlock = !s.logs().contains(NO_LANDLOCK);
    if landlock {
        assert!(s.logs().contains(ENFORCED), "{}", s.logs());
        assert!(
            out.contains("check read them inside it, as run does"),
            "{out}"
        );
    }
    outputs.push(("check".into(), format!("{out}{err}")));

    // Every credential in use: the tunnel opens with the right password,
    // the proxy refuses the wrong one, the keystore serves.
    assert!(echoes(via_port).await, "{}\n{}", s.logs(), proxy_d.output());
    let _ = echoes(deny_port).await;
    assert!(s.wait_log("refused CONNECT", 10), "{}", s.logs());
    let (code, text) = s_client(web_port, &pki.ca_path, &[]);
    assert!(
        code == 0 && text.contains("Verify return code: 0 (ok)"),
        "{text}"
    );

    // Reloads whose `via` carries the password: refused, redacted.
    let bad_urls = [
        format!("via = \"https://{USER}:{MARKER}@127.0.0.1:{proxy}\""),
        format!("via = \"HTTP://{USER}:{MARKER}@127.0.0.1:{proxy}\""),
        format!("via = \"http://{USER}:{MARKER}@127.0.0.1:{proxy}\" oops"),
    ];
    for (i, line) in bad_urls.iter().enumerate() {
        s.rewrite("", &routes.text(Some(line)));
        let (code, body) = post_reload(admin);
        assert_eq!(code, 409, "{body}\n{}", s.logs());
        assert!(body.contains("***@127.0.0.1"), "{body}");
        outputs.push((format!("409 #{i}"), body));
        let (code, out, err) = cli(&[&"check", &"-c", &config]);
        assert_eq!(code, 1, "{out}{err}");
        assert!(err.contains("***@127.0.0.1"), "{err}");
        outputs.push((format!("check #{i}"), format!("{out}{err}")));
        let (code, out, err) = cli(&[&"reload", &"-c", &config]);
        assert_eq!(code, 1, "{out}{err}");
        outputs.push((format!("reload #{i}"), format!("{out}{err}")));
    }
    let status = notify.until(|all| all.matches("STATUS=reload refused").count() == 3);
    assert_eq!(
        status.matches("STATUS=reload refused").count(),
        3,
        "{status}"
    );
    assert!(status.contains("***@127.0.0.1"), "{status}");
    outputs.push(("STATUS=".into(), status));
    for page in ["/status", "/status.json"] {
        let (code, body) = http_get(admin, page).unwrap();
        assert_eq!(code, 200, "{body}");
        assert!(body.contains("***@127.0.0.1"), "{page}: {body}");
        outputs.push((page.into(), body));
    }
    assert!(s.wait_log("config reload refused", 10), "{}", s.logs());
    outputs.push(("run's log (trace)".into(), s.logs()));

    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{MARKER}"));
    for (what, text) in &outputs {
        assert!(!text.is_empty(), "{what} is empty");
        assert!(
            !text.contains(MARKER) && !text.contains(&b64),
            "{what} holds the password:\n{text}"
        );
    }
    assert_eq!(outputs.len(), 14);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_directory_the_config_does_not_name_stays_closed_and_a_file_beside_it_is_allowed_alone(
) {
    let dir = tmpdir();
    let d = dir.path();
    let pki = Pki::new(d);
    let conf = d.join("conf");
    let tls = d.join("tls");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::create_dir_all(tls.join("private")).unwrap();
    // The served pair beside private/ (as /etc/ssl/web.pem would be), and
    // another identity inside it that the config does not name.
    let web = pki
        .ca
        .leaf("localhost", &["localhost"])
        .write(&tls, "web")
        .unwrap();
    let other = pki
        .ca
        .leaf("other", &["localhost"])
        .write(&tls.join("private"), "other")
        .unwrap();
    let backend = plain_echo().await;
    let port = free_port();
    let lines = |(c, k): &(PathBuf, PathBuf)| {
        format!("cert = \"{}\"\nkey = \"{}\"", c.display(), k.display())
    };
    let s = Sidecar::start(&conf, &listen_route("web", port, backend, &lines(&web)));
    let (code, text) = s_client(port, &pki.ca_path, &[]);
    assert!(code == 0 && text.contains("CN = localhost"), "{text}");
    if s.logs().contains(NO_LANDLOCK) {
        println!("NOTE: this kernel has no Landlock; the sandbox's narrowing is covered by the unit tests of src/sandbox.rs only");
        return;
    }
    assert!(s.logs().contains(ENFORCED), "{}", s.logs());

    // The private directory is closed: a reload naming a key in it is refused.
    s.rewrite("", &listen_route("web", port, backend, &lines(&other)));
    let (code, body) = post_reload(s.admin);
    assert_eq!(code, 409, "{body}");
    assert!(body.contains("Permission denied"), "{body}");
    assert!(
        body.contains("is outside the directories the sandbox allowed at start"),
        "{body}"
    );
    s.rewrite("", &listen_route("web", port, backend, &lines(&web)));

    // The certificate beside it was allowed alone: a new one renamed over
    // it is not readable, and the log says why and what to do.
    let new = pki
        .ca
        .leaf("renewed", &["localhost"])
        .write(&tls, "new")
        .unwrap();
    std::fs::rename(&new.1, &web.1).unwrap();
    std::fs::rename(&new.0, &web.0).unwrap();
    assert!(
        s.wait_log("certificate files changed but do not load yet", 15),
        "{}",
        s.logs()
    );
    assert!(
        s.logs().contains("alone, not its directory") && s.logs().contains("restart the sidecar"),
        "{}",
        s.logs()
    );
    // The old certificate keeps serving.
    let (code, text) = s_client(port, &pki.ca_path, &[]);
    assert!(code == 0 && text.contains("CN = localhost"), "{text}");
}
