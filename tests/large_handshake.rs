//! Handshake messages of any legal size (issue 14, item 1): a leaf
//! certificate of about 56 KB under an intermediate, a CertificateRequest
//! listing hundreds of CAs, and a client certificate chain as large, each
//! against a real peer (openssl s_server, curl), for `run` and `probe`; and
//! a Certificate message over the 64 KiB limit refused with its reason.

mod common;

use std::path::Path;
use std::process::Output;

use common::*;

/// `count` DNS names, "localhost" first; a leaf for them is about 50 bytes
/// per name.
fn many_names(count: usize) -> Vec<String> {
    std::iter::once("localhost".to_owned())
        .chain((1..count).map(|i| format!("host-{i:05}.a-long-subdomain-for-size.example.com")))
        .collect()
}

/// A root, an intermediate it signed and a leaf for `names` the
/// intermediate signed: writes root.pem, NAME.pem (the leaf), NAME.key,
/// NAME-chain.pem (the intermediate) and NAME-full.pem (leaf then
/// intermediate). Returns (root, the leaf's DER length).
fn big_chain(dir: &Path, name: &str, names: &[String]) -> (Ca, usize) {
    let root = Ca::new("Large Handshake Root");
    let inter = root.intermediate("Large Handshake Intermediate");
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let leaf = inter.leaf(names[0], &names);
    pki::write(dir, "root.pem", &root.cert_pem()).unwrap();
    leaf.write(dir, name).unwrap();
    pki::write(dir, &format!("{name}-chain.pem"), &inter.cert_pem()).unwrap();
    pki::write(
        dir,
        &format!("{name}-full.pem"),
        &format!("{}{}", leaf.cert_pem, inter.cert_pem()),
    )
    .unwrap();
    (root, leaf.cert_der.len())
}

fn path(dir: &Path, file: &str) -> String {
    dir.join(file).display().to_string()
}

/// Starts a sidecar on `routes`, sends `word` through `port` to the
/// `s_server -rev` behind route `name` and checks it comes back reversed,
/// then checks `probe` passes on the route; the sidecar and probe's output.
async fn reversed_then_probed(
    d: &Path,
    routes: &str,
    port: u16,
    name: &str,
    word: &str,
) -> (Sidecar, String) {
    let s = Sidecar::start(d, routes);
    let got = line_through(port, format!("{word}\n").as_bytes()).await;
    let want = format!("{}\n", word.chars().rev().collect::<String>());
    assert_eq!(
        got.as_deref().ok(),
        Some(want.as_bytes()),
        "{got:?}\n{}",
        s.logs()
    );
    let (code, out) = probe(&s.config, name);
    assert_eq!(code, 0, "{out}");
    (s, out)
}

/// `tls-sidecar probe -c config route`: (exit code, stdout then stderr).
fn probe(config: &Path, route: &str) -> (i32, String) {
    let (code, out, err) = cli(&[&"probe", &"-c", &config, &route]);
    (code, out + &err)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_56_kb_upstream_leaf_under_an_intermediate_works_in_run_and_probe() {
    let dir = tmpdir();
    let d = dir.path();
    let (_root, leaf_len) = big_chain(d, "big", &many_names(1120));
    assert!(
        (55_000..60_000).contains(&leaf_len),
        "leaf {leaf_len} bytes"
    );
    let mut rows = Vec::new();
    for (version, flag) in [("TLSv1.3", "-tls1_3"), ("TLSv1.2", "-tls1_2")] {
        let srv = OpensslServer::start(&[
            "-cert",
            &path(d, "big.pem"),
            "-key",
            &path(d, "big.key"),
            "-cert_chain",
            &path(d, "big-chain.pem"),
            flag,
            "-rev",
            "-quiet",
        ]);
        let p = free_port();
        let routes = tls_route(
            "big",
            p,
            &[format!("localhost:{}", srv.port)],
            &d.join("root.pem"),
        );
        let (s, out) = reversed_then_probed(d, &routes, p, "big", "large").await;
        assert!(out.contains(version), "{out}");
        rows.push(format!("{version}: relayed, probe ok"));
        drop(s);
    }
    Summary::new("a_56_kb_upstream_leaf_under_an_intermediate_works_in_run_and_probe").row(
        "Upstream leaf certificate of 56 KB (1,120 SANs) under an intermediate",
        "openssl s_server -cert_chain, TLS 1.3 and 1.2; a line through `run`, then `probe`",
        "both work; the incoming buffer grows for the handshake only",
        &rows.join("; "),
        true,
        &format!("leaf {leaf_len} bytes"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_request_listing_hundreds_of_cas_is_answered_with_our_client_certificate() {
    let dir = tmpdir();
    let d = dir.path();
    let pki = Pki::new(d);
    // The client CA last in a bundle of 700 CAs with long names: the
    // server's CertificateRequest names all of them (about 55 KB).
    let mut bundle = String::new();
    for i in 0..700 {
        let cn = format!("Department {i:04} issuing CA of a large enterprise trust store, G2");
        bundle.push_str(&Ca::new(&cn).cert_pem());
    }
    bundle.push_str(&pki.ca.cert_pem());
    pki::write(d, "many-cas.pem", &bundle).unwrap();
    let srv = OpensslServer::start(&[
        "-cert",
        &pki.server.0.display().to_string(),
        "-key",
        &pki.server.1.display().to_string(),
        "-Verify",
        "1",
        "-verify_return_error",
        "-CAfile",
        &path(d, "many-cas.pem"),
        "-rev",
        "-quiet",
    ]);
    let p = free_port();
    let routes = route(
        "mutual",
        p,
        &[format!("localhost:{}", srv.port)],
        &format!(
            "ca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"",
            pki.ca_path.display(),
            pki.client.0.display(),
            pki.client.1.display()
        ),
    );
    let (_s, _) = reversed_then_probed(d, &routes, p, "mutual", "listed").await;
    Summary::new("a_certificate_request_listing_hundreds_of_cas_is_answered_with_our_client_certificate").row(
        "CertificateRequest naming 701 CAs (as Java and SChannel servers send)",
        "openssl s_server -Verify -CAfile of 701 CAs; a mutual-TLS route through `run`, then `probe`",
        "our client certificate is sent and accepted",
        "relayed, probe ok",
        true,
        "about 55 KB of CA names",
    );
}

/// A sidecar whose route "web" serves the server leaf in front of
/// [`http_backend`] ("big ok"), asking for client certificates under `client_ca`, and
/// curl's `GET /` through it with the client certificate (`cert`, `key`):
/// (the sidecar, curl's output).
async fn curl_through_web(
    d: &Path,
    pki: &Pki,
    client_ca: &Path,
    cert: &Path,
    key: &Path,
) -> (Sidecar, Output) {
    let backend = http_backend("big ok\n").await;
    let p = free_port();
    let tls = format!(
        "{}\nclient_ca = \"{}\"",
        pki.listen_tls(),
        client_ca.display()
    );
    let s = Sidecar::start(d, &listen_route("web", p, backend, &tls));
    (s, curl_with_cert(p, &pki.ca_path, cert, key))
}

/// A leaf of about 50 KB (1,000 names) whose only use is to make a
/// Certificate message large.
fn padding() -> Leaf {
    let names = many_names(1000);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    Ca::new("Padding CA").leaf("padding", &names[1..])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_56_kb_client_certificate_chain_is_accepted_on_the_listen_side() {
    let dir = tmpdir();
    let d = dir.path();
    let pki = Pki::new(d);
    let (_root, leaf_len) = big_chain(d, "client", &many_names(1120));
    let (s, out) = curl_through_web(
        d,
        &pki,
        &d.join("root.pem"),
        &d.join("client-full.pem"),
        &d.join("client.key"),
    )
    .await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "big ok\n",
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        s.logs()
    );
    Summary::new("a_56_kb_client_certificate_chain_is_accepted_on_the_listen_side").row(
        "Client certificate of 56 KB under an intermediate, on a listener with client_ca",
        "curl --cert leaf+intermediate through a listen_tls route",
        "accepted and relayed",
        "accepted and relayed",
        true,
        &format!("leaf {leaf_len} bytes"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_message_over_64_kib_is_refused_with_a_clear_reason_by_run_and_probe() {
    let dir = tmpdir();
    let d = dir.path();
    let pki = Pki::new(d);
    // The server sends its leaf followed by two 50 KB certificates.
    let padding = padding();
    pki::write(d, "padding.pem", &format!("{0}{0}", padding.cert_pem)).unwrap();
    let srv = OpensslServer::start(&[
        "-cert",
        &pki.server.0.display().to_string(),
        "-key",
        &pki.server.1.display().to_string(),
        "-cert_chain",
        &path(d, "padding.pem"),
        "-rev",
        "-quiet",
    ]);
    let p = free_port();
    let routes = tls_route(
        "huge",
        p,
        &[format!("localhost:{}", srv.port)],
        &pki.ca_path,
    );
    let s = Sidecar::start(d, &routes);
    let got = line_through(p, b"x\n").await;
    assert!(got.as_ref().map_or(true, |b| b.is_empty()), "{got:?}");
    s.wait_handshake_errors("huge", "connect", "other", 1.0);
    assert!(
        s.wait_log("a handshake message is larger than the 64 KiB", 5),
        "{}",
        s.logs()
    );
    let (code, out) = probe(&s.config, "huge");
    assert_ne!(code, 0, "{out}");
    Summary::new(
        "a_certificate_message_over_64_kib_is_refused_with_a_clear_reason_by_run_and_probe",
    )
    .row(
        "Server Certificate message over the 64 KiB limit",
        "openssl s_server sending its leaf and two 50 KB certificates",
        "refused, reason `other`, the log names the size limit; probe fails",
        "refused as expected",
        true,
        "about 105 KB message",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_message_over_64_kib_is_refused_by_the_listener_with_a_clear_reason() {
    let dir = tmpdir();
    let d = dir.path();
    let pki = Pki::new(d);
    let padding = padding();
    let client = pki.ca.leaf("big-client", &["big-client"]);
    let (_, key) = client.write(d, "big-client").unwrap();
    let chain = pki::write(
        d,
        "big-client-chain.pem",
        &format!("{}{1}{1}", client.cert_pem, padding.cert_pem),
    )
    .unwrap();
    let (s, out) = curl_through_web(d, &pki, &pki.ca_path, &chain, &key).await;
    assert_ne!(String::from_utf8_lossy(&out.stdout), "big ok\n");
    s.wait_handshake_errors("web", "listen", "other", 1.0);
    assert!(
        s.wait_log("a handshake message is larger than the 64 KiB", 5),
        "{}",
        s.logs()
    );
    Summary::new(
        "a_client_certificate_message_over_64_kib_is_refused_by_the_listener_with_a_clear_reason",
    )
    .row(
        "Client Certificate message over the 64 KiB limit, at a listener",
        "curl --cert with the leaf and two 50 KB certificates to a listener with client_ca",
        "refused, reason `other`, the log names the size limit",
        "refused as expected",
        true,
        "about 105 KB message",
    );
}
