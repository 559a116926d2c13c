//! Observability through the real binary: exact metric values after known
//! traffic, the admin endpoints, `promtool check metrics`, a real
//! Prometheus scraping the sidecar, and `probe` against good and bad peers.

mod common;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::*;

const MSG: &[u8] = b"0123456789";

/// A TLS echo server for `localhost` whose certificate a CA of its own
/// (written to `dir`) signed: the tests' CA does not trust it.
async fn stranger(dir: &std::path::Path) -> std::net::SocketAddr {
    let (cert, key) = Ca::new("Other CA")
        .leaf("x", &["localhost"])
        .write(dir, "x")
        .unwrap();
    tls_echo(server_config(&cert, &key, None)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_traffic_shows_up_as_exact_metric_values() {
    let dir = tmpdir();
    let pki = Pki::new(dir.path());
    let srv = pki.echo().await;
    let stranger = stranger(dir.path()).await;
    let dead = free_port();
    let ca = format!("ca = \"{}\"", pki.ca_path.display());
    let (p1, p2, p3) = (free_port(), free_port(), free_port());
    let routes = [
        route(
            "good",
            p1,
            &[
                format!("localhost:{dead}"),
                format!("localhost:{}", srv.port()),
            ],
            &ca,
        ),
        route("bad", p2, &[format!("localhost:{}", stranger.port())], &ca),
        route("dead", p3, &[format!("127.0.0.1:{dead}")], &ca),
    ]
    .join("\n");
    let s = Sidecar::start(dir.path(), &routes);
    for _ in 0..3 {
        assert_eq!(roundtrip(p1, MSG).await.unwrap(), MSG);
    }
    let _ = roundtrip(p2, MSG).await;
    let _ = roundtrip(p3, MSG).await;
    s.wait_connections("dead", "connect_error", 1.0);
    s.wait_metric("tls_sidecar_connections_active", &[("route", "good")], 0.0);

    let m = s.metrics();
    let v = |name: &str, labels: &[(&str, &str)]| metric_value(&m, name, labels);
    let dead_label = format!("localhost:{dead}");
    type Series<'a> = (&'a str, &'a [(&'a str, &'a str)], f64);
    let expected: &[Series] = &[
        (
            "tls_sidecar_connections_total",
            &[("route", "good"), ("result", "ok")],
            3.0,
        ),
        (
            "tls_sidecar_connections_total",
            &[("route", "good"), ("result", "connect_error")],
            0.0,
        ),
        (
            "tls_sidecar_connections_total",
            &[("route", "bad"), ("result", "handshake_error")],
            1.0,
        ),
        (
            "tls_sidecar_bytes_total",
            &[("route", "good"), ("direction", "upstream")],
            30.0,
        ),
        (
            "tls_sidecar_bytes_total",
            &[("route", "good"), ("direction", "downstream")],
            30.0,
        ),
        (
            "tls_sidecar_handshake_errors_total",
            &[
                ("route", "bad"),
                ("side", "connect"),
                ("reason", "unknown_ca"),
            ],
            1.0,
        ),
        (
            "tls_sidecar_handshake_duration_seconds_count",
            &[("route", "good"), ("side", "connect")],
            3.0,
        ),
        (
            "tls_sidecar_handshake_duration_seconds_bucket",
            &[("route", "good"), ("side", "connect"), ("le", "10")],
            3.0,
        ),
        (
            "tls_sidecar_upstream_connect_errors_total",
            &[("route", "good"), ("upstream", &dead_label)],
            3.0,
        ),
    ];
    for (name, labels, want) in expected {
        assert_eq!(v(name, labels), Some(*want), "{name} {labels:?}");
    }
    assert!(m.contains("le=\"0.0001\""), "buckets start at 100 µs");
    let sessions: f64 = m
        .lines()
        .filter(|l| l.starts_with("tls_sidecar_tls_sessions_total{route=\"good\""))
        .map(|l| l.rsplit_once(' ').unwrap().1.parse::<f64>().unwrap())
        .sum();
    assert_eq!(sessions, 3.0);
    let ca_info =
        tls_sidecar::tls::material::CertInfo::parse(&load_chain(&pki.ca_path)[0]).unwrap();
    assert_eq!(
        v(
            "tls_sidecar_certificate_expiry_timestamp_seconds",
            &[("route", "good"), ("role", "ca"), ("subject", "CN=Test CA")]
        ),
        Some(ca_info.not_after as f64)
    );
    let peer = tls_sidecar::tls::material::CertInfo::parse(&pki.server_leaf.cert_der).unwrap();
    assert_eq!(
        v(
            "tls_sidecar_certificate_expiry_timestamp_seconds",
            &[
                ("route", "good"),
                ("role", "peer"),
                ("upstream", &format!("localhost:{}", srv.port())),
                ("subject", "CN=localhost")
            ]
        ),
        Some(peer.not_after as f64)
    );
    assert!(
        m.contains("process_resident_memory_bytes"),
        "process metrics are exported"
    );
    for forbidden in ["client=", "addr=", "peer="] {
        assert!(
            !m.contains(forbidden),
            "no client address as a label ({forbidden})"
        );
    }

    // The admin endpoint's other paths.
    assert_eq!(http_get(s.admin, "/healthz").unwrap().0, 200);
    assert_eq!(http_get(s.admin, "/readyz").unwrap().0, 200);
    assert_eq!(http_get(s.admin, "/nope").unwrap().0, 404);
    // `healthcheck` (for images without curl) says the same, by exit status.
    for (path, code, says) in [("/readyz", 0, ""), ("/nope", 1, "unhealthy: HTTP/1.1 404")] {
        let url = format!("http://{}{path}", s.admin);
        let (got, _, err) = cli(&[&"healthcheck", &url]);
        assert_eq!(got, code, "{url}: {err}");
        assert!(err.starts_with(says), "{url}: {err}");
    }
    let (got, _, err) = cli(&[&"healthcheck", &"https://127.0.0.1/readyz"]);
    assert_eq!(
        (got, err.trim()),
        (
            1,
            "unhealthy: only http:// URLs, not \"https://127.0.0.1/readyz\""
        )
    );

    // promtool agrees it is well-formed Prometheus text.
    promtool_accepts(&m);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_the_sidecar_and_sees_the_series() {
    let dir = tmpdir();
    let pki = Pki::new(dir.path());
    let srv = pki.echo().await;
    let p = free_port();
    let s = Sidecar::start(dir.path(), &pki.route_to("scraped", p, srv));
    assert_eq!(roundtrip(p, MSG).await.unwrap(), MSG);
    let prom_port = free_port();
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: tls-sidecar\n    static_configs:\n      - targets: ['{}']\n", s.admin),
    )
    .unwrap();
    let mut prom = Command::new("prometheus")
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus (installed by tests/setup.sh)");
    let addr: std::net::SocketAddr = format!("127.0.0.1:{prom_port}").parse().unwrap();
    let mut found = None;
    for _ in 0..120 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if let Some((200, body)) = http_get(
            addr,
            "/api/v1/query?query=tls_sidecar_connections_total%7Bresult%3D%22ok%22%7D",
        ) {
            let json: serde_json::Value = serde_json::from_str(&body).unwrap();
            if let Some(first) = json["data"]["result"]
                .as_array()
                .and_then(|r| r.first())
                .cloned()
            {
                found = Some(first);
                break;
            }
        }
    }
    let _ = prom.kill();
    let _ = prom.wait();
    let series = found.expect("prometheus never saw tls_sidecar_connections_total");
    assert_eq!(series["metric"]["route"], "scraped");
    assert_eq!(series["metric"]["result"], "ok");
    assert_eq!(series["metric"]["job"], "tls-sidecar");
    assert_eq!(series["value"][1], "1");
}

/// `tls-sidecar probe -c config ARGS`: (exit code, stdout then stderr).
fn probe(config: &std::path::Path, args: &[&str]) -> (i32, String) {
    let mut cmd = cli_command(&[&"probe", &"-c", &config]);
    cmd.args(args);
    let (code, out, err) = cli_output(cmd);
    (code, out + &err)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_reports_the_handshake_and_chain_and_its_exit_code_tells_good_from_bad() {
    let dir = tmpdir();
    let pki = Pki::new(dir.path());
    let srv = pki.echo().await;
    let stranger = stranger(dir.path()).await;
    let dead = free_port();
    let ca = format!("ca = \"{}\"\nalpn = [\"http/1.1\"]", pki.ca_path.display());
    let config = dir.path().join("probe.toml");
    let text = [
        route(
            "good",
            free_port(),
            &[
                format!("localhost:{dead}"),
                format!("localhost:{}", srv.port()),
            ],
            &ca,
        ),
        route(
            "bad",
            free_port(),
            &[format!("localhost:{}", stranger.port())],
            &ca,
        ),
        route("dead", free_port(), &[format!("localhost:{dead}")], &ca),
    ]
    .join("\n");
    std::fs::write(&config, text).unwrap();

    let (code, out) = probe(&config, &["good"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("upstream 1/2") && out.contains("connect: FAILED"),
        "the dead primary is shown: {out}"
    );
    assert!(
        out.contains("upstream 2/2") && out.contains("handshake: ok TLSv1.3"),
        "{out}"
    );
    assert!(
        out.contains("chain[0]: subject \"CN=localhost\" issuer \"CN=Test CA\""),
        "{out}"
    );
    assert!(out.contains("sans [localhost, 127.0.0.1]"), "{out}");
    assert!(out.contains("verify: ok"), "{out}");
    assert!(out.contains("result: OK"), "{out}");

    let (code, out) = probe(&config, &["bad"]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("handshake: FAILED (unknown_ca)"), "{out}");
    assert!(out.contains("does not lead to a trusted CA"), "{out}");

    let (code, out) = probe(&config, &["dead"]);
    assert_eq!(code, 3, "{out}");
    let (code, out) = probe(&config, &["nosuch"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("no route named \"nosuch\""), "{out}");

    let (code, out) = probe(&config, &["--all"]);
    assert_eq!(code, 3, "one bad route fails the table: {out}");
    let rows: Vec<&str> = out.lines().collect();
    assert_eq!(rows.len(), 4, "{out}");
    assert!(
        rows[1].starts_with("good") && rows[1].contains(" ok "),
        "{out}"
    );
    assert!(
        rows[2].starts_with("bad") && rows[2].contains("unknown_ca"),
        "{out}"
    );
    assert!(
        rows[3].starts_with("dead") && rows[3].contains("connect_error"),
        "{out}"
    );
}

/// A TLS server whose certificate can be swapped between connections (a
/// renewal under a new name, a replaced server behind one address).
async fn switchable_server(
    first: Arc<rustls::ServerConfig>,
) -> (u16, Arc<std::sync::Mutex<Arc<rustls::ServerConfig>>>) {
    let current = Arc::new(std::sync::Mutex::new(first));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let c = current.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            let cfg = c.lock().unwrap().clone();
            tokio::spawn(async move {
                if let Ok(s) = tokio_rustls::TlsAcceptor::from(cfg).accept(tcp).await {
                    echo(s).await;
                }
            });
        }
    });
    (port, current)
}

/// The `role="peer"` expiry series of `route` in a scrape.
fn peer_series(m: &str, route: &str) -> Vec<String> {
    m.lines()
        .filter(|l| {
            l.starts_with("tls_sidecar_certificate_expiry_timestamp_seconds{")
                && l.contains(&format!("route=\"{route}\""))
                && l.contains("role=\"peer\"")
        })
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_certificate_series_stay_one_per_upstream_and_a_removed_routes_series_go() {
    let dir = tmpdir();
    let d = dir.path();
    let pki = Pki::new(d);
    let cfg = |leaf: &Leaf, name: &str| {
        let (c, k) = leaf.write(d, name).unwrap();
        server_config(&c, &k, None)
    };
    let old = pki.ca.leaf("stat-old", &["localhost"]);
    let new = pki.ca.leaf("stat-renewed", &["localhost"]);
    let (port, current) = switchable_server(cfg(&old, "old")).await;
    // A trust-mode route: the peer picks its subject at every connection.
    let self_signed = tls_sidecar::pki::self_signed("trusted-0", &["localhost"]);
    let (open_port, open_current) = switchable_server(cfg(&self_signed, "ss0")).await;
    let (p1, p2) = (free_port(), free_port());
    let upstream = format!("localhost:{port}");
    let routes = [
        tls_route("stat", p1, std::slice::from_ref(&upstream), &pki.ca_path),
        route(
            "open",
            p2,
            &[format!("localhost:{open_port}")],
            "verify = \"none\"",
        ),
    ]
    .join("\n");
    let s = Sidecar::start(d, &routes);
    assert_eq!(roundtrip(p1, MSG).await.unwrap(), MSG);
    *current.lock().unwrap() = cfg(&new, "new");
    assert_eq!(roundtrip(p1, MSG).await.unwrap(), MSG);
    let renewed = tls_sidecar::tls::material::CertInfo::parse(&new.cert_der).unwrap();
    s.wait_metric(
        "tls_sidecar_certificate_expiry_timestamp_seconds",
        &[
            ("route", "stat"),
            ("role", "peer"),
            ("upstream", &upstream),
            ("subject", "CN=stat-renewed"),
        ],
        renewed.not_after as f64,
    );
    let m = s.metrics();
    assert_eq!(peer_series(&m, "stat").len(), 1, "{m}");

    // Twenty subjects from the trust-mode peer: still one series.
    for i in 1..=20 {
        let leaf = tls_sidecar::pki::self_signed(&format!("trusted-{i}"), &["localhost"]);
        *open_current.lock().unwrap() = cfg(&leaf, &format!("ss{i}"));
        assert_eq!(roundtrip(p2, MSG).await.unwrap(), MSG);
    }
    s.wait_connections("open", "ok", 20.0);
    let m = s.metrics();
    let open = peer_series(&m, "open");
    assert_eq!(open.len(), 1, "{m}");
    assert!(open[0].contains("subject=\"CN=trusted-20\""), "{open:?}");

    // A reload that removes route "open": none of its series is left.
    assert!(m.lines().filter(|l| l.contains("route=\"open\"")).count() > 5);
    s.reload(
        "",
        &tls_route("stat", p1, std::slice::from_ref(&upstream), &pki.ca_path),
        1.0,
    );
    let m = s.metrics();
    let left: Vec<&str> = m.lines().filter(|l| l.contains("route=\"open\"")).collect();
    assert!(left.is_empty(), "series of the removed route: {left:?}");
    assert_eq!(peer_series(&m, "stat").len(), 1, "{m}");
    promtool_accepts(&m);
    Summary::new("peer_certificate_series_stay_one_per_upstream_and_a_removed_routes_series_go").row(
        "Peer certificate series under renewals, a trust-mode peer and a route removal",
        "one upstream renews under a new subject; a verify = \"none\" peer shows 21 subjects; a reload removes that route",
        "one peer series per route and upstream, the newest; no series of the removed route",
        "one series each, the newest subject; none left of the removed route",
        true,
        "21 subjects, 1 series",
    );
}

/// `promtool check metrics` finds no error in the scrape `m`. Lint notes
/// about naming are printed for some process_* series of the exporter; what
/// must not appear is an error about our own series.
fn promtool_accepts(m: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (installed by tests/setup.sh)");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(m.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !text.contains("error") && !text.lines().any(|l| l.starts_with("tls_sidecar")),
        "{text}"
    );
}
