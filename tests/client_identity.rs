//! Client identity rules (`listen_tls.allow`) with a real client: openssl
//! s_client presenting certificates from the route's client CA, some whose
//! identity is on the list (SPIFFE URI, wildcard DNS, OU) and some not.

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// openssl s_client presenting `client`, reading until the server closes;
/// returns (exit code, stdout+stderr).
fn s_client_as(port: u16, ca: &Path, client: &(PathBuf, PathBuf), version: &str) -> (i32, String) {
    let (cert, key) = (client.0.to_str().unwrap(), client.1.to_str().unwrap());
    s_client(port, ca, &[version, "-ign_eof", "-cert", cert, "-key", key])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_clients_whose_identity_is_allowed_get_through_and_the_rules_reload() {
    let dir = tmpdir();
    let pki = Pki::new(dir.path());
    let backend = greeter().await;
    let leaf = |name: &str, cn: &str, ou: Option<&str>, sans: &[&str]| {
        pki.ca
            .leaf_named(cn, ou, sans)
            .write(dir.path(), name)
            .unwrap()
    };
    let spiffe = leaf("spiffe", "workload", None, &["spiffe://example.org/gms"]);
    let node = leaf("node", "node1", None, &["node1.gms.example.com"]);
    let by_ou = leaf("by-ou", "operator", Some("Genesys"), &[]);
    // Not allowed: one label too deep for the wildcard, a SPIFFE ID under
    // the allowed one, and a CN written to forge a log line.
    let deep = leaf(
        "deep",
        "evil\" reason=\"ok\nINFO forged",
        None,
        &["a.node1.gms.example.com", "spiffe://example.org/gms/admin"],
    );

    let p = free_port();
    let tls = |allow: &str| {
        format!(
            "{}\nclient_ca = \"{}\"\nallow = {{ {allow} }}",
            pki.listen_tls(),
            pki.ca_path.display()
        )
    };
    let allow =
        "uri = [\"spiffe://example.org/gms\"], dns = [\"*.gms.example.com\"], ou = [\"Genesys\"]";
    let s = Sidecar::start(dir.path(), &listen_route("gms-in", p, backend, &tls(allow)));

    for (who, client) in [("spiffe", &spiffe), ("node", &node), ("by-ou", &by_ou)] {
        for v in ["-tls1_3", "-tls1_2"] {
            let (code, out) = s_client_as(p, &pki.ca_path, client, v);
            assert!(
                out.contains("\nhello\n"),
                "{who} {v} was not served:\n{out}"
            );
            assert_eq!(code, 0, "{who} {v}:\n{out}");
        }
    }

    for v in ["-tls1_3", "-tls1_2"] {
        let (code, out) = s_client_as(p, &pki.ca_path, &deep, v);
        assert_ne!(code, 0, "{v}: {out}");
        assert!(
            !out.contains("\nhello\n"),
            "{v}: the refused client got data:\n{out}"
        );
        assert!(
            out.contains("alert access denied"),
            "{v}: no access_denied alert:\n{out}"
        );
    }
    s.wait_handshake_errors("gms-in", "listen", "not_authorized", 2.0);
    assert!(s.has_any_log(&["reason=\"not_authorized\"", "reason=not_authorized"]));
    let logs = s.logs();
    let refusal = logs
        .lines()
        .find(|l| l.contains("reason=\"not_authorized\"") || l.contains("reason=not_authorized"))
        .unwrap_or_else(|| panic!("no refusal line:\n{logs}"));
    assert!(
        refusal.contains(
            r#"it presented dns=\"a.node1.gms.example.com\" uri=\"spiffe://example.org/gms/admin\" cn=\"evil\\\" reason=\\\"ok\\nINFO forged\""#
        ) || refusal.contains(
            r#"it presented dns="a.node1.gms.example.com" uri="spiffe://example.org/gms/admin" cn="evil\" reason=\"ok\nINFO forged""#
        ),
        "the presented identity is named, escaped: {refusal}"
    );
    assert!(
        !logs.lines().any(|l| l.starts_with("INFO forged")),
        "a CN forged a log line:\n{logs}"
    );

    // The rules are part of the config: a reload lets the deep name in and
    // no longer the OU.
    s.reload(
        "",
        &listen_route(
            "gms-in",
            p,
            backend,
            &tls("dns = [\"a.node1.gms.example.com\"]"),
        ),
        1.0,
    );
    let (code, out) = s_client_as(p, &pki.ca_path, &deep, "-tls1_3");
    assert_eq!((code, out.contains("\nhello\n")), (0, true), "{out}");
    let (code, out) = s_client_as(p, &pki.ca_path, &by_ou, "-tls1_3");
    assert!(code != 0 && out.contains("alert access denied"), "{out}");
    s.wait_handshake_errors("gms-in", "listen", "not_authorized", 3.0);
    Summary::new("only_clients_whose_identity_is_allowed_get_through_and_the_rules_reload").row(
        "client identity rules",
        "openssl s_client (TLS 1.3 and 1.2) with certificates from the client CA: SPIFFE URI, wildcard DNS and OU on the allow list; a deeper DNS name, a longer SPIFFE ID and a log-forging CN not; then a reload that swaps the rules",
        "allowed ones served; others get access_denied, reason not_authorized, identity logged escaped; the reload applies the new rules",
        "as expected",
        true,
        "",
    );
}
