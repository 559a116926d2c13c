//! The status page against a running sidecar with live routes: four routes
//! that have each seen real traffic (failover to a backup with mutual TLS
//! and a client certificate expiring in 20 days; TLS termination with a
//! server certificate expiring in 5 days; a trust-mode route whose peer
//! presents a certificate with a hostile subject; a route failing on an
//! unknown CA). `/status.json` is checked value by value, the HTML for
//! escaping and for the absence of key material, and then headless
//! Chromium loads `/status` (tests/status_page.py) and checks what it
//! shows. The screenshot goes to target/status-page.png, and to
//! docs/src/images/status.png with TLS_SIDECAR_UPDATE_SCREENSHOT=1 (the manual's status page).

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HOSTILE: &str = "<script>document.title='pwned'</script>";

fn p(path: &Path) -> String {
    path.display().to_string()
}

/// Everything the page is about: (sidecar, statserver's port, the held
/// connection, the key files' PEM texts).
struct Scene {
    s: Sidecar,
    _held: TcpStream,
    keys: Vec<String>,
    _dir: tempfile::TempDir,
}

async fn scene() -> Scene {
    let dir = tmpdir();
    let d = dir.path();
    let pki = Pki::new(d);
    let soon = |days| Validity {
        from_days: -1,
        to_days: days,
    };
    let client = pki
        .ca
        .leaf_valid("gms-client", &["gms-client"], soon(20))
        .write(d, "client20")
        .unwrap();
    let web = pki
        .ca
        .leaf_valid("gms-web.example", &["localhost", "127.0.0.1"], soon(5))
        .write(d, "web5")
        .unwrap();
    let hostile = pki::self_signed(HOSTILE, &["legacy.example"])
        .write(d, "hostile")
        .unwrap();

    let mutual_up = tls_echo(server_config(
        &pki.server.0,
        &pki.server.1,
        Some(&pki.ca_path),
    ))
    .await
    .port();
    let hostile_up = tls_echo(server_config(&hostile.0, &hostile.1, None))
        .await
        .port();
    let plain_up = plain_echo().await;
    let dead = free_port();
    let ports: Vec<u16> = (0..4).map(|_| free_port()).collect();
    let web_route = format!(
        "[[route]]\nname = \"gms-web\"\nlisten = \"127.0.0.1:{}\"\nconnect = [\"127.0.0.1:{plain_up}\"]\n\
         [route.listen_tls]\ncert = \"{}\"\nkey = \"{}\"\n",
        ports[1],
        p(&web.0),
        p(&web.1)
    );
    let routes = [
        route(
            "statserver",
            ports[0],
            &[
                format!("127.0.0.1:{dead}"),
                format!("localhost:{mutual_up}"),
            ],
            &format!(
                "ca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"",
                p(&pki.ca_path),
                p(&client.0),
                p(&client.1)
            ),
        ),
        web_route,
        route(
            "legacy-trust",
            ports[2],
            &[format!("127.0.0.1:{hostile_up}")],
            "verify = \"none\"",
        ),
        route(
            "failing",
            ports[3],
            &[format!("localhost:{hostile_up}")],
            &format!("ca = \"{}\"", p(&pki.ca_path)),
        ),
    ]
    .concat();
    let s = Sidecar::start(d, &routes);

    for _ in 0..3 {
        assert_eq!(roundtrip(ports[0], b"stat").await.unwrap(), b"stat");
    }
    let mut held = TcpStream::connect(("127.0.0.1", ports[0])).await.unwrap();
    held.write_all(b"hi").await.unwrap();
    let mut b = [0u8; 2];
    held.read_exact(&mut b).await.unwrap();

    let tcp = TcpStream::connect(("127.0.0.1", ports[1])).await.unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(client_config(&pki.ca_path, None))
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap();
    tls.write_all(b"web").await.unwrap();
    let mut b = [0u8; 3];
    tls.read_exact(&mut b).await.unwrap();
    drop(tls);

    for _ in 0..2 {
        assert_eq!(roundtrip(ports[2], b"legacy").await.unwrap(), b"legacy");
        assert!(!matches!(roundtrip(ports[3], b"x").await, Ok(ref v) if v == b"x"));
    }
    let keys = [&client.1, &web.1, &hostile.1, &pki.server.1]
        .iter()
        .map(|k| std::fs::read_to_string(k).unwrap())
        .collect();
    Scene {
        s,
        _held: held,
        keys,
        _dir: dir,
    }
}

fn json(s: &Sidecar) -> Value {
    let (code, body) = http_get(s.admin, "/status.json").unwrap();
    assert_eq!(code, 200);
    serde_json::from_str(&body).unwrap()
}

/// Waits until the connection counts have all landed (the failing route's
/// outcome is counted just after its client sees the end).
fn settled(s: &Sidecar) -> Value {
    let deadline = std::time::Instant::now() + patience(10);
    loop {
        let v = json(s);
        let count = |route: usize, result: &str| {
            v["routes"][route]["recent"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["result"] == result)
                .unwrap()["count"]
                .as_u64()
                .unwrap()
        };
        if count(0, "ok") == 4 && count(3, "handshake_error") == 2 && count(1, "ok") == 1 {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "{v:#}\n{}", s.logs());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_json_shows_each_routes_upstreams_outcomes_failures_and_certificates() {
    let sc = scene().await;
    let v = settled(&sc.s);
    assert_eq!(v["ready"], true);
    assert_eq!(v["draining"], false);
    assert_eq!(v["pid"], sc.s.pid());
    assert_eq!(v["window_minutes"], 15);
    assert_eq!(v["reloads"]["generation"], 0);
    let names: Vec<&str> = v["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["statserver", "gms-web", "legacy-trust", "failing"]);

    let stat = &v["routes"][0];
    assert_eq!(stat["connect_start"], "direct");
    assert_eq!(stat["verify"], "full");
    assert_eq!(stat["mutual"], true);
    assert_eq!(stat["trust_mode"], false);
    assert_eq!(stat["open_connections"], 1);
    let ups = stat["upstreams"].as_array().unwrap();
    assert_eq!(ups.len(), 2);
    assert_eq!(ups[0]["last_result"], "error");
    assert!(ups[0]["last_error"]
        .as_str()
        .unwrap()
        .contains("Connection refused"));
    assert_eq!(
        (ups[0]["connected"].as_u64(), ups[0]["failed"].as_u64()),
        (Some(0), Some(4))
    );
    assert_eq!(ups[1]["last_result"], "ok");
    assert_eq!(
        (ups[1]["connected"].as_u64(), ups[1]["failed"].as_u64()),
        (Some(4), Some(0))
    );
    assert!(ups[1]["last_latency_ms"].as_f64().unwrap() >= 0.0);
    let recent: Vec<(String, u64)> = stat["recent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["result"].as_str().unwrap().to_owned(),
                c["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        recent,
        [
            ("ok", 4),
            ("refused_limit", 0),
            ("connect_error", 0),
            ("upgrade_error", 0),
            ("handshake_error", 0),
            ("timeout", 0)
        ]
        .map(|(r, n)| (r.to_owned(), n))
    );
    let cert = |route: &Value, role: &str| -> Value {
        route["certificates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["role"] == role)
            .unwrap_or_else(|| panic!("no {role} certificate in {route:#}"))
            .clone()
    };
    let client = cert(stat, "client");
    assert_eq!(client["subject"], "CN=gms-client");
    // 20 days from the moment it was made, in whole days (the encoding
    // keeps whole seconds).
    assert!(
        matches!(client["days_left"].as_i64(), Some(19 | 20)),
        "{client}"
    );
    assert_eq!(client["level"], "warning");
    assert_eq!(cert(stat, "ca")["level"], "ok");
    assert_eq!(cert(stat, "peer")["subject"], "CN=localhost");

    let web = &v["routes"][1];
    assert_eq!(web["listen_tls"], true);
    assert_eq!(web["connect_start"], "plain");
    let server = cert(web, "server");
    assert!(
        matches!(server["days_left"].as_i64(), Some(4 | 5)),
        "{server}"
    );
    assert_eq!(server["level"], "critical");

    let trust = &v["routes"][2];
    assert_eq!(trust["trust_mode"], true);
    assert_eq!(trust["verify"], "none");
    assert_eq!(cert(trust, "peer")["subject"], format!("CN={HOSTILE}"));

    let failing = &v["routes"][3];
    assert_eq!(
        failing["failures"],
        serde_json::json!([{"side": "connect", "reason": "unknown_ca", "count": 2}])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_escapes_peer_subjects_and_shows_no_key_material() {
    let sc = scene().await;
    settled(&sc.s);
    let (code, page) = http_get(sc.s.admin, "/status").unwrap();
    assert_eq!(code, 200);
    assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
    assert!(
        page.contains("CN=&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;"),
        "{page}"
    );
    assert!(!page.to_lowercase().contains("<script"), "{page}");
    assert!(
        !page.contains("src=\"http") && !page.contains("href=\"http"),
        "no external asset"
    );
    let json = http_get(sc.s.admin, "/status.json").unwrap().1;
    for text in [&page, &json] {
        assert!(!text.contains("PRIVATE KEY"));
        for key in &sc.keys {
            // Any line of a key's base64 body.
            for line in key
                .lines()
                .filter(|l| !l.starts_with("-----") && l.len() > 20)
            {
                assert!(!text.contains(line), "key material on the page");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_shows_the_status_page_as_an_operator_should_see_it() {
    let sc = scene().await;
    settled(&sc.s);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let shot = root.join("target/status-page.png");
    let url = format!("http://{}/status", sc.s.admin);
    let out = tokio::time::timeout(
        patience(180),
        tokio::process::Command::new("python3")
            .arg(root.join("tests/status_page.py"))
            .arg(&url)
            .arg(&shot)
            .output(),
    )
    .await
    .expect("the browser test finishes within 3 minutes")
    .expect("python3 (install the browser test's tools with tests/setup.sh)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "tests/status_page.py failed (tests/setup.sh installs chromium, chromium-driver and selenium):\n{text}"
    );
    assert!(
        text.contains("ok   the peer's hostile subject is shown as text"),
        "{text}"
    );
    let png = std::fs::read(&shot).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    if std::env::var_os("TLS_SIDECAR_UPDATE_SCREENSHOT").is_some() {
        std::fs::create_dir_all(root.join("docs")).unwrap();
        std::fs::copy(&shot, root.join("docs/src/images/status.png")).unwrap();
    }
}
