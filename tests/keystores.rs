//! Java keystores made by the real tools (issue 19): PKCS#12 from
//! `openssl pkcs12` in its legacy (RC2/3DES) and modern (AES) encryption,
//! JKS and PKCS#12 from Java's own `keytool`, used as client identity
//! against `openssl s_server -Verify`, as trust store against a real TLS
//! server, as a listener's identity rotated on disk, and each bad store
//! refused by `check` with the file, route and key.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;

const PASSWORD: &str = "gms-store-pw";

/// A password file (mode 0600, as the sidecar wants it).
fn password_file(dir: &Path, name: &str, password: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, format!("{password}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

/// `openssl pkcs12 -export` of (cert, key) plus the CA, entry `alias`.
fn openssl_p12(
    dir: &Path,
    name: &str,
    (cert, key): &(PathBuf, PathBuf),
    ca: &Path,
    alias: &str,
    legacy: bool,
) -> PathBuf {
    let out = dir.join(name);
    let pw = password_file(dir, &format!("{name}.openssl-pass"), PASSWORD);
    let mut args = vec![
        "pkcs12".to_owned(),
        "-export".into(),
        "-in".into(),
        cert.display().to_string(),
        "-inkey".into(),
        key.display().to_string(),
        "-certfile".into(),
        ca.display().to_string(),
        "-name".into(),
        alias.into(),
        "-passout".into(),
        format!("file:{}", pw.display()),
        "-out".into(),
        out.display().to_string(),
    ];
    if legacy {
        args.push("-legacy".into());
    }
    run_tool(
        "openssl",
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    out
}

/// `keytool -importkeystore` of a PKCS#12 file into a JKS (or another
/// PKCS#12) store, as GMS's own stores are made.
fn keytool_convert(dir: &Path, p12: &Path, name: &str, store_type: &str) -> PathBuf {
    let out = dir.join(name);
    let _ = std::fs::remove_file(&out);
    run_tool(
        "keytool",
        &[
            "-importkeystore",
            "-noprompt",
            "-srckeystore",
            &p12.display().to_string(),
            "-srcstoretype",
            "PKCS12",
            "-srcstorepass",
            PASSWORD,
            "-destkeystore",
            &out.display().to_string(),
            "-deststoretype",
            store_type,
            "-deststorepass",
            PASSWORD,
        ],
    );
    out
}

/// `keytool -importcert`: a trust store holding `ca` as a trusted entry.
fn keytool_trust(dir: &Path, name: &str, ca: &Path, store_type: &str) -> PathBuf {
    let out = dir.join(name);
    run_tool(
        "keytool",
        &[
            "-importcert",
            "-noprompt",
            "-alias",
            "gms-ca",
            "-file",
            &ca.display().to_string(),
            "-keystore",
            &out.display().to_string(),
            "-storetype",
            store_type,
            "-storepass",
            PASSWORD,
        ],
    );
    out
}

/// `tls-sidecar check` on a config of `routes`; (exit code, stdout, stderr).
fn check(dir: &Path, routes: &str) -> (i32, String, String) {
    let config = dir.join("check.toml");
    std::fs::write(&config, routes).unwrap();
    cli(&[&"check", &"-c", &config])
}

/// One line through a route to `s_server -rev`, read back reversed.
async fn reversed(port: u16, line: &str) -> String {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(format!("{line}\n").as_bytes()).await.unwrap();
    let mut r = BufReader::new(s);
    let mut out = String::new();
    tokio::time::timeout(patience(10), r.read_line(&mut out))
        .await
        .expect("an answer within 10 s")
        .unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mtls_route_presents_a_client_identity_from_openssl_or_keytool_pkcs12_or_jks_to_openssl_s_server(
) {
    let dir = tmpdir();
    let d = dir.path();
    let pki = Pki::new(d);
    let ca = pki.ca_path.display().to_string();
    let server = pki.s_server_rev(true);
    let legacy = openssl_p12(d, "legacy.p12", &pki.client, &pki.ca_path, "gms", true);
    let modern = openssl_p12(d, "modern.pfx", &pki.client, &pki.ca_path, "gms", false);
    let jks = keytool_convert(d, &modern, "gms.jks", "JKS");
    // keytool's own PKCS#12 (JDK 17: PBES2/AES, HmacSHA256), from the legacy one.
    let keytool_p12 = keytool_convert(d, &legacy, "gms-keytool.p12", "PKCS12");
    let pw = password_file(d, "store.pass", PASSWORD);
    let stores = [
        ("legacy", &legacy),
        ("modern", &modern),
        ("jks", &jks),
        ("keytool-p12", &keytool_p12),
    ];
    let ports: Vec<u16> = stores.iter().map(|_| free_port()).collect();
    let routes = stores
        .iter()
        .zip(&ports)
        .map(|((name, store), port)| {
            route(
                name,
                *port,
                &[format!("localhost:{}", server.port)],
                &format!(
                    "ca = \"{ca}\"\ncert = \"{}\"\npassword_file = \"{}\"\nalias = \"gms\"",
                    store.display(),
                    pw.display()
                ),
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    let s = Sidecar::start(d, &routes);
    for ((name, _), port) in stores.iter().zip(&ports) {
        assert_eq!(
            reversed(*port, name).await.trim_end(),
            name.chars().rev().collect::<String>(),
            "{name}"
        );
    }
    // s_server -Verify 1 -verify_return_error ends any handshake without
    // a client certificate its CA signed: the answers prove each store's
    // identity was presented.
    assert!(!s.logs().contains(PASSWORD), "the password reached the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jks_or_pkcs12_trust_store_from_keytool_verifies_a_real_tls_server() {
    let dir = tmpdir();
    let d = dir.path();
    let pki = Pki::new(d);
    let server = pki.s_server_rev(false);
    let jks = keytool_trust(d, "trust.jks", &pki.ca_path, "JKS");
    let p12 = keytool_trust(d, "trust.p12", &pki.ca_path, "PKCS12");
    let pw = password_file(d, "trust.pass", PASSWORD);
    // A store that trusts another CA: the same server must be refused.
    let other = Ca::new("Other CA");
    let other_pem = pki::write(d, "other.pem", &other.cert_pem()).unwrap();
    let wrong = keytool_trust(d, "other.jks", &other_pem, "JKS");
    let (p1, p2, p3) = (free_port(), free_port(), free_port());
    let up = [format!("localhost:{}", server.port)];
    let tls = |store: &Path| {
        format!(
            "ca = \"{}\"\nca_password_file = \"{}\"",
            store.display(),
            pw.display()
        )
    };
    let routes = [
        route("jks", p1, &up, &tls(&jks)),
        route("p12", p2, &up, &tls(&p12)),
        route("other", p3, &up, &tls(&wrong)),
    ]
    .join("\n");
    let s = Sidecar::start(d, &routes);
    assert_eq!(reversed(p1, "stat").await, "tats\n");
    assert_eq!(reversed(p2, "stat").await, "tats\n");
    let r = roundtrip(p3, b"stat\n").await;
    assert!(r.as_ref().map_or(true, |b| b.is_empty()), "{r:?}");
    s.wait_handshake_errors("other", "connect", "unknown_ca", 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listeners_keystore_and_password_rotated_on_disk_are_served_without_a_reload_and_never_half_applied(
) {
    let dir = tmpdir();
    let d = dir.path();
    let pki = Pki::new(d);
    let bport = plain_echo().await;
    let first = openssl_p12(d, "first.p12", &pki.server, &pki.ca_path, "gms", false);
    let jks = keytool_convert(d, &first, "gms.jks", "JKS");
    let pw = password_file(d, "gms.pass", PASSWORD);
    let p = free_port();
    let routes = format!(
        "[[route]]\nname = \"gms\"\nlisten = \"127.0.0.1:{p}\"\nconnect = [\"127.0.0.1:{bport}\"]\n[route.listen_tls]\ncert = \"{}\"\npassword_file = \"{}\"\n",
        jks.display(),
        pw.display()
    );
    let s = Sidecar::start(d, &routes);
    assert!(subject_served(p, &pki.ca_path).contains("CN=localhost"));

    // The new store: another subject, another password, both swapped in by
    // rename as a secret mount or a deploy tool would.
    let renewed = pki
        .ca
        .leaf("gms-renewed", &["localhost", "127.0.0.1"])
        .write(d, "renewed")
        .unwrap();
    let p12 = openssl_p12(d, "renewed.p12", &renewed, &pki.ca_path, "gms", false);
    let next = keytool_convert(d, &p12, "next.jks", "JKS");
    let run_pw = |p: &str| {
        // keytool -storepasswd changes the store's password in place.
        run_tool(
            "keytool",
            &[
                "-storepasswd",
                "-keystore",
                &next.display().to_string(),
                "-storepass",
                PASSWORD,
                "-new",
                p,
            ],
        );
        run_tool(
            "keytool",
            &[
                "-keypasswd",
                "-alias",
                "gms",
                "-keystore",
                &next.display().to_string(),
                "-storepass",
                p,
                "-keypass",
                PASSWORD,
                "-new",
                p,
            ],
        );
    };
    run_pw("rotated-pw-2");
    // The store first, its password not yet: nothing is half-applied, the
    // old identity keeps serving.
    std::fs::rename(&next, &jks).unwrap();
    assert!(
        s.wait_log(
            "certificate files changed but do not load yet; keeping the previous ones",
            30
        ),
        "{}",
        s.logs()
    );
    assert!(
        s.has_log("wrong password for the JKS keystore"),
        "{}",
        s.logs()
    );
    assert!(subject_served(p, &pki.ca_path).contains("CN=localhost"));
    // Then the password: the new store is served.
    let next_pw = password_file(d, "next.pass", "rotated-pw-2");
    std::fs::rename(&next_pw, &pw).unwrap();
    assert!(
        s.wait_log("certificate files changed: new handshakes use them", 30),
        "{}",
        s.logs()
    );
    assert!(subject_served(p, &pki.ca_path).contains("CN=gms-renewed"));
    assert!(!s.logs().contains("rotated-pw-2") && !s.logs().contains(PASSWORD));
}

/// The subject of the certificate a TLS listener on `port` serves, via
/// `openssl s_client` (verified against `ca`).
fn subject_served(port: u16, ca: &Path) -> String {
    let out = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args([
            "-servername",
            "localhost",
            "-verify_return_error",
            "-CAfile",
        ])
        .arg(ca)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    text.lines()
        .find(|l| l.starts_with("subject="))
        .unwrap_or_default()
        .replace(' ', "")
}

#[test]
fn bad_keystores_are_refused_naming_the_file_route_and_key() {
    let dir = tmpdir();
    let d = dir.path();
    let pki = Pki::new(d);
    let p12 = openssl_p12(d, "gms.p12", &pki.client, &pki.ca_path, "gms", false);
    let legacy = openssl_p12(d, "legacy.p12", &pki.client, &pki.ca_path, "gms", true);
    let jks = keytool_convert(d, &p12, "gms.jks", "JKS");
    let good = password_file(d, "good.pass", PASSWORD);
    let bad = password_file(d, "bad.pass", "not-the-password");
    let head = "[[route]]\nname = \"statserver\"\nlisten = \"127.0.0.1:7022\"\nconnect = [\"localhost:7023\"]\n[route.connect_tls]\n";
    let file = d.join("check.toml").display().to_string();
    let cases = [
        (
            format!("cert = \"{}\"\npassword_file = \"{}\"", p12.display(), bad.display()),
            format!(
                "{file}: route \"statserver\": key `connect_tls.password_file`: {}: wrong password for the PKCS#12 keystore (its integrity check failed)",
                p12.display()
            ),
        ),
        (
            format!("cert = \"{}\"\npassword_file = \"{}\"", legacy.display(), bad.display()),
            format!(
                "key `connect_tls.password_file`: {}: wrong password for the PKCS#12 keystore",
                legacy.display()
            ),
        ),
        (
            format!("cert = \"{}\"\npassword_file = \"{}\"", jks.display(), bad.display()),
            format!(
                "key `connect_tls.password_file`: {}: wrong password for the JKS keystore",
                jks.display()
            ),
        ),
        (
            format!(
                "cert = \"{}\"\npassword_file = \"{}\"\nalias = \"gms-old\"",
                p12.display(),
                good.display()
            ),
            format!(
                "key `connect_tls.alias`: {}: the PKCS#12 keystore has no entry \"gms-old\" (it holds: \"gms\")",
                p12.display()
            ),
        ),
        (
            format!(
                "cert = \"{}\"\npassword_file = \"{}\"\nalias = \"nope\"",
                jks.display(),
                good.display()
            ),
            format!(
                "key `connect_tls.alias`: {}: the JKS keystore has no entry \"nope\" (it holds: \"gms\")",
                jks.display()
            ),
        ),
        (
            format!(
                "cert = \"{}\"\nkey = \"{}\"",
                pki.client.0.display(),
                pki.server.1.display()
            ),
            format!(
                "key `connect_tls.key`: {} does not match the certificate in {}",
                pki.server.1.display(),
                pki.client.0.display()
            ),
        ),
        (
            format!("cert = \"{}\"\npassword_file = \"{}\"", pki.client.0.display(), good.display()),
            format!(
                "key `connect_tls.key`: {} is not a PKCS#12 or JKS keystore: a PEM cert needs key",
                pki.client.0.display()
            ),
        ),
        (
            format!("ca = \"{}\"", jks.display()),
            format!(
                "key `connect_tls.ca_password_file`: {} is a JKS trust store: give connect_tls.ca_password_file (or password_file), the file holding its password",
                jks.display()
            ),
        ),
    ];
    for (tls, words) in &cases {
        let (code, out, err) = check(d, &format!("{head}{tls}\n"));
        assert_eq!(code, 1, "accepted:\n{tls}\n{out}");
        assert!(err.contains(words.as_str()), "{err:?} lacks {words:?}");
        assert!(
            !err.contains(PASSWORD) && !err.contains("not-the-password"),
            "{err}"
        );
    }
    assert_eq!(cases.len(), 8);
}
