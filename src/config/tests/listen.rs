//! `[route.listen_tls]`: its certificates, client identity rules and OCSP
//! stapling.

use super::*;

// ---------------------------------------------------------------------------
// [route.listen_tls]

#[test]
fn listen_tls_with_neither_cert_nor_certs_is_refused() {
    refused(
        &listen_tls("sni_required = true"),
        Some("r"),
        Some("listen_tls.cert"),
        "TLS termination needs a certificate: cert and key, or certs = [{ cert, key }, ...]",
    );
}

#[test]
fn listen_tls_with_both_cert_and_certs_is_refused() {
    refused(
        &listen_tls("cert = \"c\"\nkey = \"k\"\ncerts = [{ cert = \"c\", key = \"k\" }]"),
        Some("r"),
        Some("listen_tls.certs"),
        "give either cert/key or certs = [...], not both",
    );
}

#[test]
fn an_empty_certs_list_is_refused() {
    refused(
        &listen_tls("certs = []"),
        Some("r"),
        Some("listen_tls.certs"),
        "the list is empty: give at least one { cert, key }",
    );
}

#[test]
fn a_listen_crl_without_client_ca_is_refused() {
    refused(
        &listen_tls("cert = \"c\"\nkey = \"k\"\ncrl = [\"x.crl\"]"),
        Some("r"),
        Some("listen_tls.crl"),
        "revocation lists for client certificates need client_ca",
    );
}

#[test]
fn alpn_required_without_alpn_is_refused() {
    for alpn in ["", "\nalpn = []"] {
        refused(
            &listen_tls(&format!(
                "cert = \"c\"\nkey = \"k\"\nalpn_required = true{alpn}"
            )),
            Some("r"),
            Some("listen_tls.alpn_required"),
            "alpn_required = true needs a non-empty alpn list",
        );
    }
}

#[test]
fn listen_tls_is_read_with_its_defaults_and_certs_keep_their_order() {
    let c = load(&listen_tls(
        "cert = \"/etc/web.pem\"\nkey = \"/etc/web.key\"",
    ))
    .unwrap();
    assert_eq!(
        the_route(&c).listen_tls,
        Some(ListenTls {
            certs: vec![CertKey {
                cert: "/etc/web.pem".into(),
                key: Some("/etc/web.key".into()),
                chain: vec![],
                password_file: None,
                key_password_file: None,
                alias: None,
                key_name: "listen_tls".into(),
                ocsp: None,
            }],
            client_ca: None,
            crl: vec![],
            sni_required: false,
            protocols: vec![TlsVersion::Tls13, TlsVersion::Tls12],
            alpn: vec![],
            alpn_required: false,
            allow: None,
            client_ca_password_file: None,
            ciphers: vec![],
            genesys: vec![],
            resumption: true,
        })
    );
    let c = load(&listen_tls(
        "certs = [{ cert = \"a.pem\", key = \"a.key\" }, { cert = \"b.pem\", key = \"b.key\" }]\n\
         client_ca = \"ca.pem\"\ncrl = [\"c.crl\"]\nsni_required = true\nalpn = [\"http/1.1\"]\nalpn_required = true",
    ))
    .unwrap();
    let t = the_route(&c).listen_tls.as_ref().unwrap();
    let certs: Vec<_> = t
        .certs
        .iter()
        .map(|c| {
            (
                c.cert.to_str().unwrap(),
                c.key.as_deref().unwrap().to_str().unwrap(),
                c.key_name.as_str(),
            )
        })
        .collect();
    assert_eq!(
        certs,
        [
            ("a.pem", "a.key", "listen_tls.certs[0]"),
            ("b.pem", "b.key", "listen_tls.certs[1]")
        ]
    );
    assert_eq!(t.client_ca.as_deref(), Some(Path::new("ca.pem")));
    assert_eq!(t.crl, [Path::new("c.crl")]);
    assert!(t.sni_required && t.alpn_required);
}

// ---------------------------------------------------------------------------
// Client identity rules, OCSP stapling

/// `listen_tls` with a client CA and `allow = { <entries> }`.
fn allow(entries: &str) -> String {
    listen_tls(&format!(
        "cert = \"c\"\nkey = \"k\"\nclient_ca = \"ca.pem\"\nallow = {{ {entries} }}"
    ))
}

#[test]
fn an_allow_list_is_read_by_kind_with_dns_names_lower_cased() {
    let c = load(&allow(
        "dns = [\"*.GMS.example.com\", \"web\"], uri = [\"spiffe://example.org/gms\"], \
         ip = [\"10.0.0.7\", \"::1\"], email = [\"ops@example.com\"], cn = [\"GMS node\"], ou = [\"Genesys\"]",
    ))
    .unwrap();
    let a = the_route(&c)
        .listen_tls
        .as_ref()
        .unwrap()
        .allow
        .clone()
        .unwrap();
    assert_eq!(
        a,
        Allow {
            dns: vec!["*.gms.example.com".into(), "web".into()],
            uri: vec!["spiffe://example.org/gms".into()],
            ip: vec!["10.0.0.7".parse().unwrap(), "::1".parse().unwrap()],
            email: vec!["ops@example.com".into()],
            cn: vec!["GMS node".into()],
            ou: vec!["Genesys".into()],
        }
    );
    assert_eq!(a.len(), 8);
}

#[test]
fn an_allow_list_without_client_ca_is_refused() {
    refused(
        &listen_tls("cert = \"c\"\nkey = \"k\"\nallow = { cn = [\"x\"] }"),
        Some("r"),
        Some("listen_tls.allow"),
        "an allow list needs client_ca: only a verified client certificate has an identity to match",
    );
}

#[test]
fn an_unknown_allow_kind_is_refused() {
    refused(
        &allow("spiffe = [\"x\"]"),
        Some("r"),
        Some("listen_tls.allow.spiffe"),
        "unknown field `spiffe`, expected one of `dns`, `uri`, `ip`, `email`, `cn`, `ou`",
    );
}

#[test]
fn an_empty_allow_list_is_refused() {
    for entries in ["", "dns = []"] {
        refused(
            &allow(entries),
            Some("r"),
            Some("listen_tls.allow"),
            "the allow list names no identity: give at least one of dns, uri, ip, email, cn, ou",
        );
    }
}

#[test]
fn a_dns_wildcard_is_only_the_whole_leftmost_label() {
    for bad in [
        "a*.example.com",
        "*.*.example.com",
        "gms.*.example.com",
        "*",
    ] {
        refused(
            &allow(&format!("dns = [\"ok.example.com\", \"{bad}\"]")),
            Some("r"),
            Some("listen_tls.allow.dns[1]"),
            "\"*\" is only allowed as the whole leftmost label (\"*.example.com\")",
        );
    }
    refused(
        &allow("dns = [\"bad name\"]"),
        Some("r"),
        Some("listen_tls.allow.dns[0]"),
        "\"bad name\" is not a DNS name",
    );
}

#[test]
fn bad_uri_ip_email_and_empty_names_in_an_allow_list_are_refused() {
    let cases = [
        (
            "uri = [\"gms\"]",
            "listen_tls.allow.uri[0]",
            "\"gms\" is not a URI such as \"spiffe://example.org/gms\"",
        ),
        (
            "uri = [\"spiffe://example.org/*\"]",
            "listen_tls.allow.uri[0]",
            "URI entries match exactly; \"*\" is no wildcard here",
        ),
        (
            "ip = [\"10.0.0.0/8\"]",
            "listen_tls.allow.ip[0]",
            "\"10.0.0.0/8\" is not an IP address",
        ),
        (
            "email = [\"ops\"]",
            "listen_tls.allow.email[0]",
            "\"ops\" is not an email address",
        ),
        (
            "cn = [\"a\", \"\"]",
            "listen_tls.allow.cn[1]",
            "an empty name matches nothing",
        ),
        (
            "ou = [\"\"]",
            "listen_tls.allow.ou[0]",
            "an empty name matches nothing",
        ),
    ];
    for (entries, key, words) in cases {
        refused(&allow(entries), Some("r"), Some(key), words);
    }
}

#[test]
fn ocsp_goes_with_its_certificate() {
    let c = load(&listen_tls("cert = \"c\"\nkey = \"k\"\nocsp = \"c.ocsp\"")).unwrap();
    let t = the_route(&c).listen_tls.as_ref().unwrap();
    assert_eq!(t.certs[0].ocsp, Some(Ocsp::File("c.ocsp".into())));
    let c = load(&listen_tls(
        "certs = [{ cert = \"a\", key = \"a.key\" }, { cert = \"b\", key = \"b.key\", ocsp = \"b.ocsp\" }]",
    ))
    .unwrap();
    let t = the_route(&c).listen_tls.as_ref().unwrap();
    let ocsp: Vec<_> = t.certs.iter().map(|c| c.ocsp.clone()).collect();
    assert_eq!(ocsp, [None, Some(Ocsp::File("b.ocsp".into()))]);
    let c = load(&listen_tls("cert = \"c\"\nkey = \"k\"\nocsp = \"auto\"")).unwrap();
    let t = the_route(&c).listen_tls.as_ref().unwrap();
    assert_eq!(t.certs[0].ocsp, Some(Ocsp::Auto));
}

#[test]
fn a_table_wide_ocsp_with_a_certs_list_is_refused() {
    refused(
        &listen_tls("certs = [{ cert = \"a\", key = \"a.key\" }]\nocsp = \"a.ocsp\""),
        Some("r"),
        Some("listen_tls.ocsp"),
        "with certs = [...], give ocsp in each entry: { cert, key, ocsp }",
    );
}

#[test]
fn ocsp_is_not_a_connect_tls_key() {
    refused(
        &connect_tls("cert = \"c\"\nkey = \"k\"\nocsp = \"x\""),
        Some("r"),
        Some("connect_tls.ocsp"),
        "unknown field `ocsp`",
    );
}
