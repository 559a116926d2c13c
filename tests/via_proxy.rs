//! Upstreams through a real HTTP CONNECT forward proxy: tinyproxy (Debian),
//! started on a loopback port with Basic authentication and a list of
//! ports it allows CONNECT to. The upstream is a rustls echo server whose
//! certificate is for `localhost`: the route names it `localhost:PORT`, the
//! proxy resolves that name, and the TLS name stays the upstream's.

mod common;

use std::path::{Path, PathBuf};

use common::daemon::Daemon;
use common::*;

const USER: &str = "gms";
const PASSWORD: &str = "s3cret-Pa55";

/// tinyproxy on a free port, asking for Basic auth, allowing CONNECT only
/// to `ports`.
fn tinyproxy(dir: &Path, ports: &[u16]) -> (Daemon, u16) {
    let port = free_port();
    let mut conf = format!(
        "Port {port}\nListen 127.0.0.1\nTimeout 30\nLogLevel Info\nMaxClients 50\nAllow 127.0.0.1\nBasicAuth {USER} {PASSWORD}\n"
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

/// The credentials file, `user:password` and a newline, mode 0600.
fn credentials(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join("proxy.cred");
    std::fs::write(&p, format!("{USER}:{PASSWORD}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

/// A TLS route through the proxy on `proxy` to `upstreams`, trusting `ca`;
/// `creds`: its `via_credentials`.
fn via_route(
    name: &str,
    port: u16,
    upstreams: &[String],
    proxy: u16,
    creds: Option<&Path>,
    ca: &Path,
) -> String {
    let mut keys = format!("via = \"http://127.0.0.1:{proxy}\"\n");
    if let Some(c) = creds {
        keys.push_str(&format!("via_credentials = \"{}\"\n", c.display()));
    }
    // The route's keys go before its [route.connect_tls] table.
    tls_route(name, port, upstreams, ca).replacen(
        "[route.connect_tls]",
        &format!("{keys}[route.connect_tls]"),
        1,
    )
}

/// Does a message come back through the route? The client reads the echo
/// before it closes: tinyproxy ends both directions of a tunnel at the
/// first FIN (no half-close), so `roundtrip`'s shutdown-then-read races.
async fn echoes(port: u16) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let msg = b"hello through the tunnel";
    let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    if s.write_all(msg).await.is_err() {
        return false;
    }
    let mut back = [0u8; 24];
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), s.read_exact(&mut back));
    matches!(read.await, Ok(Ok(_))) && &back == msg
}

// Multi-threaded: the upstream runs in this runtime while the test waits
// for `probe`, a child process, synchronously.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_upstream_is_reached_through_tinyproxy_with_basic_auth_and_keeps_its_name() {
    let dir = tmpdir();
    let pki = Pki::new(dir.path());
    let up = tls_echo(pki.server_config()).await;
    let (proxy_d, proxy) = tinyproxy(dir.path(), &[up.port()]);
    let creds = credentials(dir.path());
    let port = free_port();
    let s = Sidecar::start(
        dir.path(),
        &via_route(
            "via",
            port,
            &[format!("localhost:{}", up.port())],
            proxy,
            Some(&creds),
            &pki.ca_path,
        ),
    );
    assert!(echoes(port).await, "{}\n{}", s.logs(), proxy_d.output());
    s.wait_connections("via", "ok", 1.0);
    // The proxy opened the tunnel to the name, not to an address we chose.
    assert!(
        proxy_d
            .output()
            .contains(&format!("CONNECT localhost:{} HTTP/1.1", up.port())),
        "{}",
        proxy_d.output()
    );
    // The password is in no log line (debug level, the whole connection).
    assert!(
        s.wait_log("connection closed route=via", 10),
        "{}",
        s.logs()
    );
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    assert!(!s.logs().contains(PASSWORD) && !s.logs().contains(&b64));

    // `check` shows the proxy; `probe` goes through it.
    let (_, text, _) = cli(&[&"check", &"-c", &s.config]);
    assert!(
        text.contains(&format!(
            "via http://127.0.0.1:{proxy} (credentials from {})",
            creds.display()
        )),
        "{text}"
    );
    let (code, text, _) = cli(&[&"probe", &"-c", &s.config, &"via"]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains(&format!("(tunnel through http://127.0.0.1:{proxy})")),
        "{text}"
    );
    assert!(text.contains("verify: ok"), "{text}");
}

#[tokio::test]
async fn a_proxy_refusal_is_a_connect_error_with_reason_proxy_refused_and_its_status_logged() {
    let dir = tmpdir();
    let pki = Pki::new(dir.path());
    let up = tls_echo(pki.server_config()).await;
    let denied = tls_echo(pki.server_config()).await;
    let (proxy_d, proxy) = tinyproxy(dir.path(), &[up.port()]);
    let creds = credentials(dir.path());
    let (noauth, forbidden) = (free_port(), free_port());
    let routes = [
        // No credentials: 407.
        via_route(
            "noauth",
            noauth,
            &[format!("localhost:{}", up.port())],
            proxy,
            None,
            &pki.ca_path,
        ),
        // A port the proxy does not allow: 403.
        via_route(
            "forbidden",
            forbidden,
            &[format!("localhost:{}", denied.port())],
            proxy,
            Some(&creds),
            &pki.ca_path,
        ),
    ]
    .concat();
    let s = Sidecar::start(dir.path(), &routes);

    for (route, port, status) in [
        ("noauth", noauth, "HTTP 407"),
        ("forbidden", forbidden, "HTTP 403"),
    ] {
        assert!(!echoes(port).await, "{route} went through");
        s.wait_handshake_errors(route, "connect", "proxy_refused", 1.0);
        s.wait_connections(route, "connect_error", 1.0);
        // The log is read from the sidecar's stderr by a thread: wait for it.
        s.wait_log(&format!("route={route}"), 10);
        s.wait_log(status, 10);
        let logs = s.logs();
        assert!(
            logs.lines().any(|l| l.contains(&format!("route={route}"))
                && l.contains(&format!(
                    "the proxy http://127.0.0.1:{proxy} refused CONNECT localhost:"
                ))
                && l.contains(status)),
            "{route}: no {status} logged:\n{logs}\n{}",
            proxy_d.output()
        );
    }
    assert!(s.has_log("(proxy authentication required: check via_credentials)"));
}

#[tokio::test]
async fn failover_moves_through_the_proxy_to_the_next_upstream() {
    let dir = tmpdir();
    let pki = Pki::new(dir.path());
    let up = tls_echo(pki.server_config()).await;
    // The primary's port is refused by the proxy (403), the backup's allowed.
    let primary = free_port();
    let (proxy_d, proxy) = tinyproxy(dir.path(), &[up.port()]);
    let creds = credentials(dir.path());
    let port = free_port();
    let s = Sidecar::start(
        dir.path(),
        &via_route(
            "failover",
            port,
            &[
                format!("localhost:{primary}"),
                format!("localhost:{}", up.port()),
            ],
            proxy,
            Some(&creds),
            &pki.ca_path,
        ),
    );
    assert!(echoes(port).await, "{}\n{}", s.logs(), proxy_d.output());
    s.wait_metric(
        "tls_sidecar_upstream_connect_errors_total",
        &[
            ("route", "failover"),
            ("upstream", &format!("localhost:{primary}")),
        ],
        1.0,
    );
    s.wait_connections("failover", "ok", 1.0);
    assert!(s.wait_log("HTTP 403", 10), "{}", s.logs());
}

#[tokio::test]
async fn the_proxy_header_goes_through_the_tunnel_to_nginx_with_the_original_client() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tmpdir();
    let ng = free_port();
    let _nginx = Daemon::nginx_proxy_protocol(dir.path(), ng);
    let (proxy_d, proxy) = tinyproxy(dir.path(), &[ng]);
    let creds = credentials(dir.path());
    let port = free_port();
    let s = Sidecar::start(
        dir.path(),
        &format!(
            "[[route]]\nname = \"pp-via\"\nlisten = \"127.0.0.1:{port}\"\nconnect = [\"127.0.0.1:{ng}\"]\nproxy_protocol = \"v1\"\nvia = \"http://127.0.0.1:{proxy}\"\nvia_credentials = \"{}\"\n",
            creds.display()
        ),
    );
    // From 127.0.0.2: the sidecar and the proxy connect from 127.0.0.1.
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut tcp = sock.connect(([127, 0, 0, 1], port).into()).await.unwrap();
    let me = tcp.local_addr().unwrap();
    tcp.write_all(b"GET / HTTP/1.0\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tcp.read_to_end(&mut out),
    )
    .await;
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.starts_with("HTTP/1.1 200") && text.ends_with(&format!("\r\n\r\n{me}\n")),
        "{text:?}\n{}\n{}",
        s.logs(),
        proxy_d.output()
    );
}

#[tokio::test]
async fn a_proxy_that_is_down_is_a_connect_error_naming_the_proxy() {
    let dir = tmpdir();
    let pki = Pki::new(dir.path());
    let (port, proxy) = (free_port(), free_port());
    let s = Sidecar::start(
        dir.path(),
        &via_route(
            "down",
            port,
            &["localhost:7022".into()],
            proxy,
            None,
            &pki.ca_path,
        ),
    );
    assert!(!echoes(port).await);
    s.wait_connections("down", "connect_error", 1.0);
    assert!(
        s.wait_log(
            &format!("failed to reach the proxy http://127.0.0.1:{proxy}: "),
            10
        ),
        "{}",
        s.logs()
    );
    // Not the proxy's refusal: nothing counted as proxy_refused.
    assert_eq!(
        s.metric(
            "tls_sidecar_handshake_errors_total",
            &[
                ("route", "down"),
                ("side", "connect"),
                ("reason", "proxy_refused")
            ]
        ),
        None
    );
}
