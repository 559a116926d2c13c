//! No browser may act on the admin endpoint (issue 25): a page on another
//! origin makes headless Chromium POST to /reload the ways any page may
//! (`fetch` with `mode: "no-cors"`, with and without a body, and a form),
//! and a DNS-rebinding page reaches the endpoint under its own name
//! (tests/admin_browser.py); no reload happens and the rebound name gets
//! 421. The exact requests are replayed over a socket for their status
//! codes, and `tls-sidecar reload` still reloads.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The status line the sidecar answers `request` with.
async fn status_of(admin: std::net::SocketAddr, request: &str) -> String {
    let mut c = TcpStream::connect(admin).await.unwrap();
    c.write_all(request.as_bytes()).await.unwrap();
    let mut out = String::new();
    let _ = tokio::time::timeout(patience(10), c.read_to_string(&mut out)).await;
    out.lines().next().unwrap_or_default().to_owned()
}

fn route() -> String {
    format!(
        "[[route]]\nname = \"r\"\nlisten = \"127.0.0.1:{}\"\nconnect = [\"127.0.0.1:9\"]\n",
        free_port()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_page_in_chromium_cannot_reload_or_read_the_admin_endpoint() {
    let dir = tmpdir();
    let s = Sidecar::start(dir.path(), &route());
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = tokio::time::timeout(
        patience(180),
        tokio::process::Command::new("python3")
            .arg(root.join("tests/admin_browser.py"))
            .arg(s.admin.port().to_string())
            .output(),
    )
    .await
    .expect("the browser test finishes within 3 minutes")
    .expect("python3 (tests/setup.sh installs chromium, chromium-driver and selenium)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "tests/admin_browser.py failed:\n{text}"
    );
    assert!(
        text.contains("ok   a rebound name gets the refusal"),
        "{text}"
    );

    // The three POSTs reached the sidecar and were refused as a browser's.
    let needle = "refused POST /reload from a browser";
    let deadline = Instant::now() + patience(10);
    while s.logs().matches(needle).count() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(s.logs().matches(needle).count(), 3, "{}", s.logs());
    let reloads = |r| {
        s.metric("tls_sidecar_config_reloads_total", &[("result", r)])
            .unwrap_or(0.0)
    };
    assert_eq!((reloads("ok"), reloads("error")), (0.0, 0.0));
}

#[tokio::test]
async fn the_requests_a_browser_sends_are_refused_and_the_reload_command_passes() {
    let dir = tmpdir();
    let s = Sidecar::start(dir.path(), &route());
    let admin = s.admin;
    // What Chromium sends for fetch(url, {mode: "no-cors", method: "POST", body: "x"}).
    let browser = format!(
        "POST /reload HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\nContent-Length: 1\r\n\
         Origin: http://127.0.0.1:8000\r\nContent-Type: text/plain;charset=UTF-8\r\n\
         Sec-Fetch-Site: same-site\r\nSec-Fetch-Mode: no-cors\r\nSec-Fetch-Dest: empty\r\n\r\nx"
    );
    assert_eq!(status_of(admin, &browser).await, "HTTP/1.1 403 Forbidden");
    // Without Origin and Sec-Fetch-*, a CORS-safelisted body type still fails.
    for t in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let req = format!(
            "POST /reload HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\nContent-Type: {t}\r\nContent-Length: 0\r\n\r\n"
        );
        assert_eq!(
            status_of(admin, &req).await,
            "HTTP/1.1 403 Forbidden",
            "{t}"
        );
    }
    // DNS rebinding: the page's own name in Host.
    for path in ["/status.json", "/metrics", "/healthz", "/reload"] {
        let method = if path == "/reload" { "POST" } else { "GET" };
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: evil.example:{}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            admin.port()
        );
        assert_eq!(
            status_of(admin, &req).await,
            "HTTP/1.1 421 Misdirected Request",
            "{path}"
        );
    }
    assert_eq!(
        s.metric("tls_sidecar_config_reloads_total", &[("result", "ok")]),
        Some(0.0)
    );
    // What passes: no body type (the reload command), or JSON.
    let json = format!(
        "POST /reload HTTP/1.1\r\nHost: localhost:{}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}",
        admin.port()
    );
    assert_eq!(status_of(admin, &json).await, "HTTP/1.1 200 OK");
    let (code, out, err) = cli(&[&"reload", &"-c", &s.config]);
    assert_eq!(code, 0, "{out}{err}");
    s.wait_metric("tls_sidecar_config_reloads_total", &[("result", "ok")], 2.0);
}

/// `[admin] hosts` adds names the endpoint answers to.
#[tokio::test]
async fn a_name_listed_in_admin_hosts_is_answered() {
    let dir = tmpdir();
    let (config, admin) = write_config(dir.path(), "", &route(), "debug");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("[admin]\n", "[admin]\nhosts = [\"gms-1.example.com\"]\n");
    std::fs::write(&config, text).unwrap();
    let s = Sidecar::spawn(&config, admin, &[]);
    s.wait_ready();
    let get =
        |host: &str| format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    assert_eq!(
        status_of(admin, &get("GMS-1.example.com:9464")).await,
        "HTTP/1.1 200 OK"
    );
    assert_eq!(status_of(admin, &get("localhost")).await, "HTTP/1.1 200 OK");
    assert_eq!(
        status_of(admin, &get("gms-2.example.com")).await,
        "HTTP/1.1 421 Misdirected Request"
    );
}
