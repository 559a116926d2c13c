//! Genesys transport parameters (`genesys = "tls=1;…"`): each rule and
//! each refusal.

use super::*;

// ---------------------------------------------------------------------------
// Genesys transport parameters: each rule and each refusal

/// `ROUTE` with `genesys = "params"` (the connect side) and `more` lines.
fn genesys(params: &str, more: &str) -> String {
    format!("{ROUTE}genesys = \"{params}\"\n{more}")
}

/// `ROUTE` with a listen_tls table whose `genesys` is `params`.
fn listen_genesys(params: &str) -> String {
    listen_tls(&format!("genesys = \"{params}\""))
}

#[test]
fn genesys_checks_the_host_name_only_with_tls_target_name_check_host() {
    let t = load(&genesys("tls=1", "")).unwrap();
    assert_eq!(the_connect_tls(&t).verify, Verify::Chain);
    let t = load(&genesys("tls=1;tls-target-name-check=no", "")).unwrap();
    assert_eq!(the_connect_tls(&t).verify, Verify::Chain);
    let t = load(&genesys("tls=1;tls-target-name-check=host", "")).unwrap();
    assert_eq!(the_connect_tls(&t).verify, Verify::Full);
    assert!(the_connect_tls(&t).cn_fallback);
    assert_eq!(
        the_connect_tls(&t).genesys,
        [
            "tls=1 → TLS",
            "tls-target-name-check=host → verify = \"full\"",
            "tls-target-name-check=host → name_check_cn_fallback = true (a certificate without a DNS subjectAltName is checked by its CN, as Genesys does)"
        ]
    );
}

#[test]
fn genesys_name_check_keeps_an_explicit_name_check_cn_fallback_false() {
    let t = load(&genesys(
        "tls=1;tls-target-name-check=host",
        "[route.connect_tls]\nname_check_cn_fallback = false\n",
    ))
    .unwrap();
    assert_eq!(the_connect_tls(&t).verify, Verify::Full);
    assert!(!the_connect_tls(&t).cn_fallback);
}

#[test]
fn genesys_without_a_name_check_keeps_our_own_verify() {
    let t = load(&genesys(
        "tls=1",
        "[route.connect_tls]\nverify = \"full\"\n",
    ))
    .unwrap();
    assert_eq!(the_connect_tls(&t).verify, Verify::Full);
}

#[test]
fn genesys_sec_protocol_pins_a_version_or_allows_both() {
    let versions = |p: &str| {
        let c = load(&genesys(&format!("tls=1;sec-protocol={p}"), "")).unwrap();
        the_connect_tls(&c).protocols.clone()
    };
    assert_eq!(versions("TLSv12"), [TlsVersion::Tls12]);
    assert_eq!(versions("TLSv13"), [TlsVersion::Tls13]);
    assert_eq!(versions("SSLv23"), [TlsVersion::Tls13, TlsVersion::Tls12]);
    assert_eq!(versions(""), [TlsVersion::Tls13, TlsVersion::Tls12]);
}

#[test]
fn genesys_sec_protocol_tls1_is_refused_with_the_reason() {
    refused(
        &genesys("tls=1;sec-protocol=TLSv1", ""),
        Some("r"),
        Some("genesys"),
        "sec-protocol=TLSv1 is refused: TLS 1.0 and 1.1 are deprecated (RFC 8996); use TLSv12, TLSv13, or SSLv23 (or empty) for both",
    );
    refused(
        &genesys("sec-protocol=TLSv11", ""),
        Some("r"),
        Some("genesys"),
        "sec-protocol=TLSv11 is refused: TLS 1.0 and 1.1 are deprecated",
    );
    refused(
        &genesys("sec-protocol=SSLv3", ""),
        Some("r"),
        Some("genesys"),
        "sec-protocol=SSLv3 is refused: SSL is broken (RFC 7568, RFC 6176)",
    );
}

#[test]
fn genesys_cipher_list_maps_openssl_and_iana_names_and_keeps_the_other_versions_suites() {
    let c = load(&genesys(
        "tls=1;cipher-list=ECDHE-RSA-AES256-GCM-SHA384:TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        "",
    ))
    .unwrap();
    let t = the_connect_tls(&c);
    assert_eq!(
        t.ciphers,
        [
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            "TLS13_AES_256_GCM_SHA384",
            "TLS13_AES_128_GCM_SHA256",
            "TLS13_CHACHA20_POLY1305_SHA256"
        ]
    );
    assert!(t
        .genesys
        .contains(&"cipher-list names no TLS 1.3 suite: TLS 1.3 keeps all its suites".to_owned()));
}

#[test]
fn genesys_cipher_list_refuses_a_name_it_cannot_honour() {
    refused(
        &genesys(
            "tls=1;cipher-list=ECDHE-RSA-AES128-GCM-SHA256:DES-CBC3-SHA",
            "",
        ),
        Some("r"),
        Some("genesys"),
        "cipher-list: \"DES-CBC3-SHA\" is not a suite rustls offers",
    );
    refused(
        &genesys("tls=1;cipher-list=HIGH:!aNULL", ""),
        Some("r"),
        Some("genesys"),
        "cipher-list: \"HIGH\" is an OpenSSL selection rule, not a suite",
    );
}

#[test]
fn genesys_certificate_may_be_a_comma_separated_chain() {
    let c = load(&genesys(
        "tls=1;tls-mutual=1;certificate=/g/leaf.pem,/g/inter.pem;certificate-key=/g/leaf.key;trusted-ca=/g/ca.pem;tls-crl=/g/ca.crl",
        "",
    ))
    .unwrap();
    let t = the_connect_tls(&c);
    let ck = t.client_cert.as_ref().unwrap();
    assert_eq!(ck.cert, Path::new("/g/leaf.pem"));
    assert_eq!(ck.chain, [Path::new("/g/inter.pem")]);
    assert_eq!(ck.key.as_deref(), Some(Path::new("/g/leaf.key")));
    assert_eq!(t.ca.as_deref(), Some(Path::new("/g/ca.pem")));
    assert_eq!(t.crl, [Path::new("/g/ca.crl")]);
}

#[test]
fn genesys_tls_mutual_on_a_connection_needs_a_certificate() {
    refused(
        &genesys("tls=1;tls-mutual=1", ""),
        Some("r"),
        Some("genesys"),
        "tls-mutual=1 needs certificate: the identity to present",
    );
}

#[test]
fn genesys_tls_mutual_on_a_server_port_requires_client_certificates_from_trusted_ca() {
    let c = load(&listen_genesys(
        "tls=1;tls-mutual=1;certificate=/g/s.pem;certificate-key=/g/s.key;trusted-ca=/g/ca.pem",
    ))
    .unwrap();
    let t = the_route(&c).listen_tls.as_ref().unwrap();
    assert_eq!(t.client_ca.as_deref(), Some(Path::new("/g/ca.pem")));
    assert_eq!(t.certs[0].cert, Path::new("/g/s.pem"));
    let c = load(&listen_genesys(
        "tls=1;certificate=/g/s.pem;certificate-key=/g/s.key;trusted-ca=/g/ca.pem",
    ))
    .unwrap();
    let t = the_route(&c).listen_tls.as_ref().unwrap();
    assert_eq!(t.client_ca, None);
    assert!(t.genesys.contains(
        &"trusted-ca=/g/ca.pem not used: without tls-mutual=1 a server port asks no client certificate"
            .to_owned()
    ));
    refused(
        &listen_genesys("tls=1;tls-mutual=1;certificate=/g/s.pem;certificate-key=/g/s.key"),
        Some("r"),
        Some("listen_tls.genesys"),
        "tls-mutual=1 needs trusted-ca: the CA that signs the clients' certificates",
    );
}

#[test]
fn genesys_name_check_on_a_server_port_is_refused() {
    refused(
        &listen_genesys(
            "tls=1;certificate=/s.pem;certificate-key=/s.key;tls-target-name-check=host",
        ),
        Some("r"),
        Some("listen_tls.genesys"),
        "tls-target-name-check is about the server a connection reaches; a listening port has none",
    );
}

#[test]
fn genesys_and_our_own_key_for_the_same_setting_is_refused_naming_both() {
    refused(
        &genesys(
            "tls=1;certificate=/g/c.pem;certificate-key=/g/c.key",
            "[route.connect_tls]\ncert = \"/etc/c.pem\"\nkey = \"/etc/c.key\"\n",
        ),
        Some("r"),
        Some("genesys"),
        "`certificate` here and `connect_tls.cert` both set the client certificate: give it in one place",
    );
    refused(
        &genesys(
            "tls-target-name-check=host",
            "[route.connect_tls]\nverify = \"none\"\n",
        ),
        Some("r"),
        Some("genesys"),
        "`tls-target-name-check` here and `connect_tls.verify` both set how the peer is verified",
    );
    refused(
        &genesys(
            "sec-protocol=TLSv12",
            "[route.connect_tls]\nprotocols = [\"TLSv1.3\"]\n",
        ),
        Some("r"),
        Some("genesys"),
        "`sec-protocol` here and `connect_tls.protocols` both set the protocol versions",
    );
    refused(
        &listen_tls("genesys = \"tls=1;certificate=/g/s.pem;certificate-key=/g/s.key\"\ncert = \"/s.pem\"\nkey = \"/s.key\""),
        Some("r"),
        Some("listen_tls.genesys"),
        "`certificate` here and `listen_tls.cert` both set the server certificate",
    );
}

#[test]
fn genesys_refuses_unknown_parameters_and_malformed_ones() {
    refused(
        &genesys("tls=1;tls-mutal=1", ""),
        Some("r"),
        Some("genesys"),
        "unknown parameter \"tls-mutal\": the TLS parameters are tls, tls-mutual, certificate, certificate-key, trusted-ca, tls-target-name-check, tls-crl, sec-protocol, cipher-list",
    );
    refused(
        &genesys("tls", ""),
        Some("r"),
        Some("genesys"),
        "\"tls\" is not name=value",
    );
    refused(
        &genesys("tls=1;tls=1", ""),
        Some("r"),
        Some("genesys"),
        "parameter \"tls\" is given twice",
    );
    refused(
        &genesys("tls=0", ""),
        Some("r"),
        Some("genesys"),
        "tls=0 turns TLS off: remove the genesys parameters for a plain connection",
    );
}

#[test]
fn genesys_port_backup_port_and_address_are_accepted_and_noted() {
    let c = load(&genesys(
        "port=7022;backup-port=7023;address=stat-a;tls=1",
        "",
    ))
    .unwrap();
    assert_eq!(
        the_connect_tls(&c).genesys,
        [
            "tls=1 → TLS",
            "port=7022 ignored: not a TLS setting (the route's listen and connect say where)",
            "backup-port=7023 ignored: not a TLS setting (the route's listen and connect say where)",
            "address=stat-a ignored: not a TLS setting (the route's listen and connect say where)",
            "no tls-target-name-check=host → verify = \"chain\" (Genesys checks the host name only when asked)"
        ]
    );
}
