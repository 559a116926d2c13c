//! Certificates and keys (PEM pairs and keystores), protocol versions,
//! ALPN and cipher suites, on either TLS table.

use super::*;

// ---------------------------------------------------------------------------
// Certificates and keys come in pairs

#[test]
fn connect_tls_cert_without_key_is_refused() {
    refused(
        &connect_tls("cert = \"c.pem\""),
        Some("r"),
        Some("connect_tls.key"),
        "cert is given without key: both are needed",
    );
}

#[test]
fn connect_tls_key_without_cert_is_refused() {
    refused(
        &connect_tls("key = \"k.pem\""),
        Some("r"),
        Some("connect_tls.cert"),
        "key is given without cert: both are needed",
    );
}

#[test]
fn listen_tls_cert_without_key_is_refused() {
    refused(
        &listen_tls("cert = \"c.pem\""),
        Some("r"),
        Some("listen_tls.key"),
        "cert is given without key: both are needed",
    );
}

#[test]
fn listen_tls_key_without_cert_is_refused() {
    refused(
        &listen_tls("key = \"k.pem\""),
        Some("r"),
        Some("listen_tls.cert"),
        "key is given without cert: both are needed",
    );
}

#[test]
fn a_client_certificate_means_mutual_tls() {
    let c = load(&connect_tls("cert = \"/etc/c.pem\"\nkey = \"/etc/c.key\"")).unwrap();
    assert_eq!(
        the_connect_tls(&c).client_cert,
        Some(CertKey {
            cert: "/etc/c.pem".into(),
            key: Some("/etc/c.key".into()),
            chain: vec![],
            password_file: None,
            key_password_file: None,
            alias: None,
            key_name: "connect_tls".into(),
            ocsp: None,
        })
    );
}

// ---------------------------------------------------------------------------
// Keystores (issue 19)

#[test]
fn a_keystore_cert_needs_no_key_but_its_password_file() {
    let c = load(&connect_tls(
        "cert = \"/etc/gms.p12\"\npassword_file = \"/etc/gms.pass\"\nalias = \"gms\"",
    ))
    .unwrap();
    let t = the_connect_tls(&c);
    assert_eq!(
        t.client_cert,
        Some(CertKey {
            cert: "/etc/gms.p12".into(),
            key: None,
            chain: vec![],
            password_file: Some("/etc/gms.pass".into()),
            key_password_file: None,
            alias: Some("gms".into()),
            key_name: "connect_tls".into(),
            ocsp: None,
        })
    );
}

#[test]
fn a_trust_store_takes_the_tables_password_unless_it_has_its_own() {
    let c = load(&connect_tls(
        "ca = \"/etc/trust.jks\"\npassword_file = \"/etc/p\"",
    ))
    .unwrap();
    assert_eq!(
        the_connect_tls(&c).ca_password_file.as_deref(),
        Some(Path::new("/etc/p"))
    );
    let c = load(&connect_tls(
        "ca = \"/etc/trust.jks\"\npassword_file = \"/etc/p\"\nca_password_file = \"/etc/q\"",
    ))
    .unwrap();
    assert_eq!(
        the_connect_tls(&c).ca_password_file.as_deref(),
        Some(Path::new("/etc/q"))
    );
}

#[test]
fn each_listen_certs_entry_may_be_a_keystore_with_the_tables_password() {
    let c = load(&listen_tls(
        "password_file = \"/etc/p\"\ncerts = [{ cert = \"a.p12\", alias = \"a\" }, { cert = \"b.jks\", password_file = \"/etc/b\" }]",
    ))
    .unwrap();
    let t = the_route(&c).listen_tls.as_ref().unwrap();
    let got: Vec<_> = t
        .certs
        .iter()
        .map(|c| (c.key.clone(), c.password_file.clone(), c.alias.clone()))
        .collect();
    assert_eq!(
        got,
        [
            (None, Some("/etc/p".into()), Some("a".into())),
            (None, Some("/etc/b".into()), None)
        ]
    );
}

#[test]
fn an_alias_without_a_cert_is_refused() {
    refused(
        &connect_tls("alias = \"gms\""),
        Some("r"),
        Some("connect_tls.alias"),
        "alias picks an entry of a keystore cert: give cert",
    );
}

#[test]
fn a_client_ca_password_without_client_ca_is_refused() {
    refused(
        &listen_tls("cert = \"c\"\nkey = \"k\"\nclient_ca_password_file = \"p\""),
        Some("r"),
        Some("listen_tls.client_ca_password_file"),
        "is the password of a client_ca keystore: give client_ca",
    );
}

// ---------------------------------------------------------------------------
// Protocols and ALPN

#[test]
fn refused_protocol_names_say_why() {
    for (p, why) in [
        ("TLSv1", "TLS 1.0 and 1.1 are deprecated (RFC 8996)"),
        ("TLSv1.0", "TLS 1.0 and 1.1 are deprecated (RFC 8996)"),
        ("TLSv1.1", "TLS 1.0 and 1.1 are deprecated (RFC 8996)"),
        ("SSLv2", "SSL is broken (RFC 6176, RFC 7568"),
        ("SSLv3", "SSL is broken (RFC 6176, RFC 7568"),
    ] {
        let words = format!("{p} is refused: {why}");
        refused(
            &connect_tls(&format!("protocols = [\"TLSv1.2\", \"{p}\"]")),
            Some("r"),
            Some("connect_tls.protocols"),
            &words,
        );
        refused(
            &listen_tls(&format!("cert = \"c\"\nkey = \"k\"\nprotocols = [\"{p}\"]")),
            Some("r"),
            Some("listen_tls.protocols"),
            &words,
        );
    }
}

#[test]
fn unknown_protocol_names_are_refused() {
    for bad in ["TLSv9", "tlsv1.2", "TLS1.2"] {
        refused(
            &connect_tls(&format!("protocols = [\"{bad}\"]")),
            Some("r"),
            Some("connect_tls.protocols"),
            &format!("unknown protocol \"{bad}\": use \"TLSv1.3\" and/or \"TLSv1.2\""),
        );
    }
}

#[test]
fn an_empty_protocol_list_is_refused() {
    refused(
        &connect_tls("protocols = []"),
        Some("r"),
        Some("connect_tls.protocols"),
        "the list is empty: give \"TLSv1.3\" and/or \"TLSv1.2\"",
    );
    refused(
        &listen_tls("cert = \"c\"\nkey = \"k\"\nprotocols = []"),
        Some("r"),
        Some("listen_tls.protocols"),
        "the list is empty",
    );
}

#[test]
fn protocols_keep_their_order_once_each() {
    let c = load(&connect_tls(
        "protocols = [\"TLSv1.2\", \"TLSv1.3\", \"TLSv1.2\"]",
    ))
    .unwrap();
    assert_eq!(
        the_connect_tls(&c).protocols,
        [TlsVersion::Tls12, TlsVersion::Tls13]
    );
}

#[test]
fn alpn_names_are_one_to_255_bytes() {
    let long = "x".repeat(256);
    for bad in ["", long.as_str()] {
        refused(
            &connect_tls(&format!("alpn = [\"http/1.1\", \"{bad}\"]")),
            Some("r"),
            Some("connect_tls.alpn"),
            "an ALPN protocol name is 1 to 255 bytes",
        );
        refused(
            &listen_tls(&format!("cert = \"c\"\nkey = \"k\"\nalpn = [\"{bad}\"]")),
            Some("r"),
            Some("listen_tls.alpn"),
            "an ALPN protocol name is 1 to 255 bytes",
        );
    }
    let c = load(&connect_tls(
        "alpn = [\"h2\", \"http/1.1\"]\nresumption = false",
    ))
    .unwrap();
    let t = the_connect_tls(&c);
    assert_eq!(t.alpn, [b"h2".to_vec(), b"http/1.1".to_vec()]);
    assert!(!t.resumption);
}

// ---------------------------------------------------------------------------
// Cipher suites

#[test]
fn ciphers_are_read_in_any_of_their_names() {
    let c = load(&connect_tls(
        "ciphers = [\"ECDHE-RSA-AES128-GCM-SHA256\", \"TLS_AES_128_GCM_SHA256\", \"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384\"]",
    ))
    .unwrap();
    assert_eq!(
        the_connect_tls(&c).ciphers,
        [
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            "TLS13_AES_128_GCM_SHA256",
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
        ]
    );
}

#[test]
fn a_cipher_rustls_lacks_is_refused() {
    refused(
        &connect_tls("ciphers = [\"AES128-SHA\"]"),
        Some("r"),
        Some("connect_tls.ciphers"),
        "\"AES128-SHA\" is not a suite rustls offers (only AEAD suites with ECDHE key exchange)",
    );
}

#[test]
fn ciphers_must_leave_a_suite_for_each_enabled_version() {
    refused(
        &listen_tls("cert = \"c\"\nkey = \"k\"\nciphers = [\"ECDHE-RSA-AES128-GCM-SHA256\"]"),
        Some("r"),
        Some("listen_tls.ciphers"),
        "no TLSv1.3 suite is listed but protocols include it: add one (e.g. TLS_AES_128_GCM_SHA256) or drop TLSv1.3 from protocols",
    );
    load(&listen_tls(
        "cert = \"c\"\nkey = \"k\"\nprotocols = [\"TLSv1.2\"]\nciphers = [\"ECDHE-RSA-AES128-GCM-SHA256\"]",
    ))
    .unwrap();
}
