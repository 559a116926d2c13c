//! Outbound TLS in every verify mode, against real TLS servers: accepted
//! and refused exactly as the mode says, each refusal counted by reason.

mod common;

use common::*;

const MSG: &[u8] = b"GMS says hello\n";

fn errors(s: &Sidecar, route: &str, reason: &str) -> Option<f64> {
    s.metric(
        "tls_sidecar_handshake_errors_total",
        &[("route", route), ("side", "connect"), ("reason", reason)],
    )
}

/// Asserts the route refuses: the client sees a reset or an empty stream,
/// and the reason is counted once.
async fn assert_refused(s: &Sidecar, route: &str, port: u16, reason: &str) {
    let got = roundtrip(port, MSG).await;
    assert!(
        got.as_ref().map_or(true, |b| b.is_empty()),
        "{route}: expected refusal, got {got:?}"
    );
    s.wait_handshake_errors(route, "connect", reason, 1.0);
    s.wait_connections(route, "handshake_error", 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_verification_accepts_the_right_peer_and_refuses_unknown_ca_wrong_name_and_expired() {
    let dir = tmpdir();
    let pki = Pki::new(dir.path());
    let good = pki.echo().await;
    let other_ca = Ca::new("Other CA");
    let stranger = other_ca
        .leaf("localhost", &["localhost", "127.0.0.1"])
        .write(dir.path(), "stranger")
        .unwrap();
    let stranger = tls_echo(server_config(&stranger.0, &stranger.1, None)).await;
    let expired = pki
        .ca
        .leaf_valid(
            "localhost",
            &["localhost"],
            Validity {
                from_days: -30,
                to_days: -1,
            },
        )
        .write(dir.path(), "expired")
        .unwrap();
    let expired = tls_echo(server_config(&expired.0, &expired.1, None)).await;
    let future = pki
        .ca
        .leaf_valid(
            "localhost",
            &["localhost"],
            Validity {
                from_days: 2,
                to_days: 30,
            },
        )
        .write(dir.path(), "future")
        .unwrap();
    let future = tls_echo(server_config(&future.0, &future.1, None)).await;

    let ca = pki.ca_path.display().to_string();
    let ports: Vec<u16> = (0..6).map(|_| free_port()).collect();
    let tls = format!("verify = \"full\"\nca = \"{ca}\"");
    let routes = [
        route(
            "good",
            ports[0],
            &[format!("localhost:{}", good.port())],
            &tls,
        ),
        route(
            "by-ip",
            ports[1],
            &[format!("127.0.0.1:{}", good.port())],
            &tls,
        ),
        route(
            "unknown-ca",
            ports[2],
            &[format!("localhost:{}", stranger.port())],
            &tls,
        ),
        route(
            "wrong-name",
            ports[3],
            &[format!("127.0.0.1:{}", good.port())],
            &format!("{tls}\nserver_name = \"stat.example.com\""),
        ),
        route(
            "expired",
            ports[4],
            &[format!("localhost:{}", expired.port())],
            &tls,
        ),
        route(
            "not-yet",
            ports[5],
            &[format!("localhost:{}", future.port())],
            &tls,
        ),
    ]
    .join("\n");
    let s = Sidecar::start(dir.path(), &routes);

    assert_eq!(roundtrip(ports[0], MSG).await.unwrap(), MSG);
    // An IP address works as the verified name (the leaf has an IP SAN).
    assert_eq!(roundtrip(ports[1], MSG).await.unwrap(), MSG);
    assert_refused(&s, "unknown-ca", ports[2], "unknown_ca").await;
    assert_refused(&s, "wrong-name", ports[3], "name_mismatch").await;
    assert_refused(&s, "expired", ports[4], "expired").await;
    assert_refused(&s, "not-yet", ports[5], "not_yet_valid").await;
    assert_eq!(errors(&s, "good", "unknown_ca"), None);
    s.wait_connections("good", "ok", 1.0);
    assert!(s.has_log("reason=\"name_mismatch\""), "{}", s.logs());
    assert!(
        s.has_log("stat.example.com"),
        "the log names the name that failed"
    );
    assert!(s.has_log(&format!("CA file {ca}")), "the log names the CA");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chain_mode_ignores_the_name_but_still_checks_the_chain() {
    let dir = tmpdir();
    let pki = Pki::new(dir.path());
    let good = pki.echo().await;
    let stranger = Ca::new("Other CA")
        .leaf("x", &["localhost"])
        .write(dir.path(), "stranger")
        .unwrap();
    let stranger = tls_echo(server_config(&stranger.0, &stranger.1, None)).await;
    let ca = pki.ca_path.display();
    let tls = format!("verify = \"chain\"\nca = \"{ca}\"\nserver_name = \"not-the-name.example\"");
    let (p1, p2) = (free_port(), free_port());
    let routes = [
        route(
            "chain-ok",
            p1,
            &[format!("127.0.0.1:{}", good.port())],
            &tls,
        ),
        route(
            "chain-bad",
            p2,
            &[format!("127.0.0.1:{}", stranger.port())],
            &tls,
        ),
    ]
    .join("\n");
    let s = Sidecar::start(dir.path(), &routes);
    assert_eq!(roundtrip(p1, MSG).await.unwrap(), MSG);
    assert_refused(&s, "chain-bad", p2, "unknown_ca").await;
    assert!(
        s.has_any_log(&["verify = \\\"chain\\\"", "verify = \"chain\""]),
        "weak mode warned at start"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pin_mode_accepts_the_pinned_key_without_a_chain_and_refuses_any_other() {
    let dir = tmpdir();
    let pinned = pki::self_signed("pinned", &["pinned.example"]);
    let pin = tls_sidecar::tls::material::pin_string(
        &tls_sidecar::tls::material::spki_sha256(&pinned.cert_der).unwrap(),
    );
    let (c, k) = pinned.write(dir.path(), "pinned").unwrap();
    let pinned_srv = tls_echo(server_config(&c, &k, None)).await;
    let (c2, k2) = pki::self_signed("other", &["pinned.example"])
        .write(dir.path(), "other")
        .unwrap();
    let other_srv = tls_echo(server_config(&c2, &k2, None)).await;
    let tls = format!("verify = \"pin\"\npins = [\"{pin}\"]\nserver_name = \"pinned.example\"");
    let (p1, p2) = (free_port(), free_port());
    let routes = [
        route(
            "pin-ok",
            p1,
            &[format!("127.0.0.1:{}", pinned_srv.port())],
            &tls,
        ),
        route(
            "pin-bad",
            p2,
            &[format!("127.0.0.1:{}", other_srv.port())],
            &tls,
        ),
    ]
    .join("\n");
    let s = Sidecar::start(dir.path(), &routes);
    assert_eq!(roundtrip(p1, MSG).await.unwrap(), MSG);
    assert_refused(&s, "pin-bad", p2, "pin_mismatch").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trust_mode_accepts_a_self_signed_peer_and_is_warned_about_and_labelled() {
    let dir = tmpdir();
    let (c, k) = pki::self_signed("chat-server", &["chat.example"])
        .write(dir.path(), "chat")
        .unwrap();
    let srv = tls_echo(server_config(&c, &k, None)).await;
    let p = free_port();
    let s = Sidecar::start(
        dir.path(),
        &route(
            "chat",
            p,
            &[format!("127.0.0.1:{}", srv.port())],
            "verify = \"none\"",
        ),
    );
    assert_eq!(roundtrip(p, MSG).await.unwrap(), MSG);
    assert!(s.has_any_log(&["verify = \\\"none\\\"", "verify = \"none\""]));
    assert_eq!(
        s.metric(
            "tls_sidecar_route_info",
            &[
                ("route", "chat"),
                ("listen", &format!("127.0.0.1:{p}")),
                ("connect_start", "direct"),
                ("verify", "none"),
                ("mutual", "false"),
                engine_labels()[0],
                engine_labels()[1],
            ]
        ),
        Some(1.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_presents_the_client_certificate_and_a_missing_or_foreign_one_is_refused() {
    let dir = tmpdir();
    let pki = Pki::new(dir.path());
    let srv = tls_echo(server_config(
        &pki.server.0,
        &pki.server.1,
        Some(&pki.ca_path),
    ))
    .await;
    let foreign = Ca::new("Foreign CA")
        .leaf("intruder", &["intruder"])
        .write(dir.path(), "foreign")
        .unwrap();
    let ca = pki.ca_path.display();
    let up = [format!("localhost:{}", srv.port())];
    let (p1, p2, p3) = (free_port(), free_port(), free_port());
    let routes = [
        route(
            "stat",
            p1,
            &up,
            &format!(
                "ca = \"{ca}\"\ncert = \"{}\"\nkey = \"{}\"",
                pki.client.0.display(),
                pki.client.1.display()
            ),
        ),
        route("stat-nocert", p2, &up, &format!("ca = \"{ca}\"")),
        route(
            "stat-foreign",
            p3,
            &up,
            &format!(
                "ca = \"{ca}\"\ncert = \"{}\"\nkey = \"{}\"",
                foreign.0.display(),
                foreign.1.display()
            ),
        ),
    ]
    .join("\n");
    let s = Sidecar::start(dir.path(), &routes);
    assert_eq!(roundtrip(p1, MSG).await.unwrap(), MSG);
    assert_eq!(
        s.metric(
            "tls_sidecar_route_info",
            &[
                ("route", "stat"),
                ("listen", &format!("127.0.0.1:{p1}")),
                ("connect_start", "direct"),
                ("verify", "full"),
                ("mutual", "true"),
                engine_labels()[0],
                engine_labels()[1],
            ]
        ),
        Some(1.0)
    );
    // In TLS 1.3 the server's refusal of the client certificate arrives
    // after the client's handshake is done, so the first read fails: the
    // client must see an error, never data.
    let r = roundtrip(p2, MSG).await;
    assert!(r.as_ref().map_or(true, |b| b.is_empty()), "{r:?}");
    let r = roundtrip(p3, MSG).await;
    assert!(r.as_ref().map_or(true, |b| b.is_empty()), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_s_server_is_verified_and_a_client_certificate_it_demands_is_presented() {
    let dir = tmpdir();
    let pki = Pki::new(dir.path());
    let ca = pki.ca_path.display().to_string();
    let plain = pki.s_server_rev(false);
    let mutual = pki.s_server_rev(true);
    let (p1, p2, p3) = (free_port(), free_port(), free_port());
    let routes = [
        route(
            "msgserver",
            p1,
            &[format!("localhost:{}", plain.port)],
            &format!("ca = \"{ca}\""),
        ),
        route(
            "statserver",
            p2,
            &[format!("localhost:{}", mutual.port)],
            &format!(
                "ca = \"{ca}\"\ncert = \"{}\"\nkey = \"{}\"",
                pki.client.0.display(),
                pki.client.1.display()
            ),
        ),
        route(
            "statserver-nocert",
            p3,
            &[format!("localhost:{}", mutual.port)],
            &format!("ca = \"{ca}\"\nprotocols = [\"TLSv1.2\"]"),
        ),
    ]
    .join("\n");
    let s = Sidecar::start(dir.path(), &routes);
    // s_server -rev answers each line reversed.
    let got = line_through(p1, b"hello\n").await.unwrap();
    assert_eq!(got, b"olleh\n");
    let got = line_through(p2, b"stats\n").await.unwrap();
    assert_eq!(
        got,
        b"stats"
            .iter()
            .rev()
            .copied()
            .chain(*b"\n")
            .collect::<Vec<u8>>()
    );
    // TLS 1.2: the refusal of a missing client certificate is part of the handshake.
    let r = roundtrip(p3, b"x\n").await;
    assert!(r.as_ref().map_or(true, |b| b.is_empty()), "{r:?}");
    s.wait_connections("statserver-nocert", "handshake_error", 1.0);
}
