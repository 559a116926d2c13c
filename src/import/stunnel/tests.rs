//! The translation, option by option, on texts (no disk): what each
//! becomes, what is listed, what is refused with file and line.

use std::path::Path;

use super::model::Conf;
use super::parse::lines;
use super::translate::translate;
use super::StunnelError;
use crate::import::Import;

fn pins(file: &str) -> Result<Vec<String>, String> {
    match file {
        "/peer.pem" => Ok(vec![format!("sha256/{}=", "A".repeat(43))]),
        _ => Err("cannot be read".into()),
    }
}

fn import(text: &str) -> Result<Import, StunnelError> {
    let conf = Conf::build(&lines(Path::new("s.conf"), text)?)?;
    translate(&conf, Path::new("s.conf"), &pins)
}

/// The TOML, with the config at /c.toml; it must load.
fn toml(text: &str) -> String {
    let t = import(text).unwrap().text_for(Path::new("/c.toml"));
    crate::config::load_str(Path::new("t"), &t, Some(Default::default()))
        .unwrap_or_else(|e| panic!("{e}\n{t}"));
    t
}

fn refused(text: &str) -> String {
    import(text).unwrap_err().to_string()
}

fn has(t: &str, lines: &[&str]) {
    for l in lines {
        assert!(t.contains(l), "{l:?} missing from:\n{t}");
    }
}

const CLIENT: &str = "[up]\nclient = yes\naccept = 127.0.0.1:7021\nconnect = a.example:7022\n";

#[test]
fn a_client_service_with_verify_chain_and_check_host_is_a_full_verify_route() {
    let t = toml(&format!(
        "{CLIENT}connect = b.example:7022\nverifyChain = yes\nCAfile = /ca.pem\ncheckHost = stat.example\nTIMEOUTconnect = 3\n"
    ));
    has(&t, &[
        "[[route]]\nname = \"up\"\nlisten = \"127.0.0.1:7021\"\nconnect = [\"a.example:7022\", \"b.example:7022\"]\nconnect_timeout = \"3s\"\nidle_timeout = \"43200s\"\n",
        "[route.connect_tls]\nca = \"/ca.pem\"\nverify = \"full\"\nserver_name = \"stat.example\"\n",
        "protocols = [\"TLSv1.3\", \"TLSv1.2\"]\n",
        "#   TIMEOUTidle = 43200 (stunnel's default) → idle_timeout = \"43200s\"\n",
    ]);
}

#[test]
fn each_verification_case_maps_as_stunnel_decides_it() {
    for (opts, want) in [
        ("CAfile = /ca.pem", "verify = \"none\"\n"),
        (
            "verifyChain = yes\nCAfile = /ca.pem",
            "ca = \"/ca.pem\"\nverify = \"chain\"\n",
        ),
        (
            "verify = 2\nCApath = /etc/ssl/certs",
            "[route.connect_tls]\nverify = \"chain\"\n",
        ),
        (
            "verifyChain = yes\nCAfile = /ca.pem\ncheckIP = 10.0.0.1",
            "verify = \"full\"\nserver_name = \"10.0.0.1\"\n",
        ),
        (
            "verify = 4\nCAfile = /peer.pem",
            "verify = \"pin\"\npins = [\"sha256/AAAA",
        ),
        (
            "verifyChain = yes\nCAfile = /ca.pem\nsni = stat.example",
            "verify = \"chain\"\nserver_name = \"stat.example\"\n",
        ),
    ] {
        has(&toml(&format!("{CLIENT}{opts}\n")), &[want]);
    }
    has(
        &toml(&format!("{CLIENT}CAfile = /ca.pem\n")),
        &["#   CAfile = /ca.pem: not used without verifyChain or verifyPeer\n"],
    );
}

#[test]
fn verification_that_cannot_be_kept_is_refused_at_its_line() {
    for (opts, want) in [
        ("verifyChain = yes", "s.conf:5: verifyChain = yes without CAfile or CApath (stunnel refuses this too)"),
        ("verifyChain = yes\nCApath = /etc/stunnel/certs", "s.conf:6: CApath = /etc/stunnel/certs: the route reads its trust anchors from one file: concatenate the directory's certificates (cat /etc/stunnel/certs/*.pem > ca.pem) and give CAfile"),
        ("verifyChain = yes\nCAfile = /ca.pem\ncheckEmail = a@b", "s.conf:7: checkEmail = a@b on a client service: the route checks a server by its DNS name or IP address (checkHost, checkIP)"),
        ("verifyChain = yes\nCAfile = /ca.pem\ncheckHost = a\nsni = b", "s.conf:8: sni = b and checkHost/checkIP = a differ: the route sends as SNI the name it verifies; make them one"),
        ("verifyPeer = yes\nCAfile = /missing.pem", "s.conf:6: CAfile = /missing.pem: cannot be read"),
        ("CAfile = /ca.pem\ncheckHost = x", "s.conf:6: checkHost = x without verifyChain or verifyPeer: stunnel refuses this too (\"Either verifyChain or verifyPeer has to be enabled\")"),
        ("CRLpath = /crl", "s.conf:5: CRLpath = /crl: the route reads CRLs from files: give CRLfile (cat /crl/*.r* > crl.pem)"),
        ("sslVersionMax = TLSv1.1", "s.conf:5: the versions allowed are all older than TLSv1.2, which is the oldest the route speaks"),
    ] {
        assert_eq!(refused(&format!("{CLIENT}{opts}\n")), want);
    }
}

const SERVER: &str = "[web]\naccept = 8443\nconnect = 8080\ncert = /web.pem\n";

#[test]
fn a_server_service_requiring_certificates_is_a_listen_tls_route_with_client_ca_and_allow() {
    let t = toml(&format!(
        "{SERVER}key = /web.key\nverifyChain = yes\nrequireCert = yes\nCAfile = /clients.pem\ncheckHost = gms\ncheckEmail = ops@example.com\nCRLfile = /c.crl\n"
    ));
    has(&t, &[
        "listen = \"0.0.0.0:8443\"\nconnect = [\"localhost:8080\"]\n",
        "[route.listen_tls]\ncert = \"/web.pem\"\nkey = \"/web.key\"\nclient_ca = \"/clients.pem\"\nallow = { dns = [\"gms\"], email = [\"ops@example.com\"] }\ncrl = [\"/c.crl\"]\n",
    ]);
    // No key: stunnel reads it from cert's file.
    has(
        &toml(SERVER),
        &["cert = \"/web.pem\"\nkey = \"/web.pem\"\n"],
    );
    assert_eq!(
        refused(&format!("{SERVER}requireCert = yes\n")),
        "s.conf:5: requireCert = yes without verifyChain: stunnel takes any client certificate; the route verifies every certificate it asks for (add verifyChain and CAfile)"
    );
    assert_eq!(
        refused(&format!("{SERVER}verify = 3\nCAfile = /c.pem\n")),
        "s.conf:5: verifyPeer = yes in a server service: clients are checked against their CA (verifyChain with CAfile, and checkHost/checkIP/checkEmail for who)"
    );
    assert_eq!(
        refused("[web]\naccept = 8443\nconnect = 8080\n"),
        "s.conf:2: a server service (client = no) needs cert"
    );
}

#[test]
fn exec_psk_and_transparent_are_refused_by_name() {
    for (opt, want) in [
        ("exec = /usr/sbin/pppd", "s.conf:5: exec = /usr/sbin/pppd: refused: a route relays to a network address; it starts no program (put the program behind a port)"),
        ("PSKsecrets = /psk.txt", "s.conf:5: PSKsecrets = /psk.txt: refused: TLS with pre-shared keys is not offered; use certificates"),
        ("transparent = source", "s.conf:5: transparent = source: refused: the route connects from its own address to the connect address; transparent proxying (TPROXY, the original destination) is not offered"),
        ("protocol = socks", "s.conf:5: protocol = socks: not offered (the route's upgrades: pgsql, smtp, imap, pop3, ldap; connect; proxy)"),
    ] {
        assert_eq!(refused(&format!("{CLIENT}{opt}\n")), want);
    }
}

#[test]
fn protocols_become_upgrades_via_and_proxy_headers_and_the_proxy_password_a_secret() {
    has(
        &toml(&format!("{CLIENT}protocol = pgsql\n")),
        &["start = \"upgrade\"\nupgrade = \"postgres\"\n"],
    );
    has(
        &toml(&format!(
            "{CLIENT}protocol = smtp\nprotocolHost = gms.example\n"
        )),
        &["upgrade = \"smtp\"\nupgrade_hostname = \"gms.example\"\n"],
    );
    has(
        &toml(&format!("{SERVER}protocol = proxy\n")),
        &["proxy_protocol = \"v1\"\n"],
    );
    let imp = import(&format!(
        "{CLIENT}protocol = connect\nprotocolHost = api.example:443\nprotocolUsername = gms\nprotocolPassword = s3cret\n"
    ))
    .unwrap();
    let t = imp.text_for(Path::new("/c.toml"));
    has(
        &t,
        &[
            "connect = [\"api.example:443\"]\n",
            "via = \"http://a.example:7022\"\nvia_credentials = \"/c.toml.up.via.credentials\"\n",
        ],
    );
    assert!(!t.contains("s3cret"));
    assert_eq!(imp.secrets[0].suffix, ".up.via.credentials");
    assert_eq!(imp.secrets[0].password.expose(), "gms:s3cret");
    assert_eq!(
        refused(&format!("{SERVER}protocol = smtp\n")),
        "s.conf:5: protocol = smtp in a server service (client = no): the route does an upgrade's client side only, towards the upstream"
    );
}

#[test]
fn section_names_become_legal_unique_route_names_and_process_options_are_listed() {
    let t = toml(
        "foreground = yes\npid =\nsetuid = stunnel4\n[GMS web (HTTPS)]\naccept = 1443\nconnect = 1080\ncert = /w.pem\n[gms-web--https-]\naccept = 2443\nconnect = 2080\ncert = /w.pem\nrenegotiation = no\n"
    );
    has(&t, &[
        "name = \"gms-web--https-\"\n",
        "name = \"gms-web--https--2\"\n",
        "#   foreground = yes (s.conf:1)\n#   pid = (empty) (s.conf:2)\n#   setuid = stunnel4 (s.conf:3)\n",
        "#   renegotiation = no (s.conf:12): no tls-sidecar equivalent\n",
    ]);
}

#[test]
fn versions_suites_and_pkcs12_certificates_are_mapped() {
    let t = toml(&format!(
        "{CLIENT}sslVersionMin = TLSv1.2\nsslVersionMax = TLSv1.2\nciphers = ECDHE-RSA-AES128-GCM-SHA256:AES256-SHA:HIGH\ncert = /gms.p12\ncurves = P-256\n"
    ));
    has(&t, &[
        "protocols = [\"TLSv1.2\"]\n",
        "ciphers = [\"TLS13_AES_256_GCM_SHA384\", \"TLS13_AES_128_GCM_SHA256\", \"TLS13_CHACHA20_POLY1305_SHA256\", \"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\"]\n",
        "cert = \"/gms.p12\"\npassword_file = \"/c.toml.up.p12.password\"\n",
        "#   ciphers: AES256-SHA:HIGH not a suite rustls offers for TLSv1.2 (rules and non-AEAD suites have no equivalent)\n",
        "#   curves = P-256: rustls offers its own groups (X25519, P-256, P-384)\n",
    ]);
}

#[test]
fn debians_stock_sample_translates_with_ocsp_listed() {
    let sample = include_str!("../../../tests/fuzz/seeds/stunnel/debian-stunnel.conf-sample");
    let t = toml(sample);
    assert_eq!(t.matches("[[route]]").count(), 3);
    has(&t, &[
        "name = \"gmail-pop3\"\nlisten = \"127.0.0.1:110\"\nconnect = [\"pop.gmail.com:995\"]\n",
        "[route.connect_tls]\nverify = \"full\"\nserver_name = \"pop.gmail.com\"\n",
        "#   OCSPaia = yes: the route asks no OCSP responder; it checks revocation with CRLs only (give CRLfile, as crl)\n",
    ]);
}

#[test]
fn a_file_without_services_and_an_include_without_the_disk_are_refused() {
    assert_eq!(
        refused("foreground = yes\n"),
        "s.conf:1: no [service] section: nothing to translate"
    );
    assert_eq!(
        super::translate_text(Path::new("s.conf"), "include = /etc/stunnel/conf.d\n")
            .unwrap_err()
            .to_string(),
        "s.conf:1: include needs the files it names"
    );
}

/// The typed model: defaults, legacy levels, bad values.
mod model {
    use std::path::Path;

    use super::super::model::Conf;
    use super::super::parse::lines;
    use super::super::StunnelError;

    fn conf(text: &str) -> Result<Conf, StunnelError> {
        Conf::build(&lines(Path::new("s.conf"), text)?)
    }

    #[test]
    fn services_start_from_the_global_defaults_and_process_options_stay_global() {
        let c = conf(
            "foreground = yes\npid =\nclient = yes\nCAfile = /ca.pem\nverifyChain = yes\n[a]\naccept = 1\nconnect = x:2\nconnect = y:2\n[b]\nclient = no\nsetuid = nobody\n",
        )
        .unwrap();
        let keys: Vec<_> = c.process.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys, ["foreground", "pid"]);
        let (a, b) = (&c.services[0].s, &c.services[1].s);
        assert!(a.client && a.verify_chain && !b.client && b.verify_chain);
        assert_eq!(a.connect, ["x:2", "y:2"]);
        assert_eq!(b.ca_file.as_deref(), Some("/ca.pem"));
        assert_eq!(b.process[0].key, "setuid");
        assert_eq!(a.at["connect"].line, 9);
    }

    #[test]
    fn the_legacy_verify_levels_are_stunnels_three_switches() {
        for (level, chain, peer, require) in [
            (0, false, false, false),
            (1, true, false, false),
            (2, true, false, true),
            (3, true, true, true),
            (4, false, true, true),
        ] {
            let c = conf(&format!("[a]\nverify = {level}\n")).unwrap();
            let s = &c.services[0].s;
            assert_eq!(
                (s.verify_chain, s.verify_peer, s.require_cert),
                (chain, peer, require),
                "verify = {level}"
            );
        }
        assert_eq!(
            conf("[a]\nverify = 5\n").unwrap_err().to_string(),
            "s.conf:2: verify = \"5\": bad verify level (0 to 4)"
        );
    }

    #[test]
    fn bad_values_are_refused_where_they_are_and_unhonourable_options_kept_with_why() {
        assert_eq!(
            conf("[a]\nclient = maybe\n").unwrap_err().to_string(),
            "s.conf:2: client = \"maybe\": the argument needs to be either 'yes' or 'no'"
        );
        assert_eq!(
            conf("[a]\nsslVersion = TLSv9\n").unwrap_err().to_string(),
            "s.conf:2: sslVersion = \"TLSv9\": not one of all, SSLv2, SSLv3, TLSv1, TLSv1.1, TLSv1.2, TLSv1.3"
        );
        let c = conf("[a]\nexec = /bin/sh\ntransparent = none\nrenegotiation = no\nprotocolPassword = s3cret\n").unwrap();
        let s = &c.services[0].s;
        assert_eq!(s.refused.len(), 1);
        assert_eq!(s.refused[0].0.key, "exec");
        assert_eq!(s.other[0].key, "renegotiation");
        assert!(!format!("{s:?}").contains("s3cret"));
    }
}

#[test]
fn include_splices_a_directorys_files_in_name_order_where_it_stands() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("conf.d")).unwrap();
    std::fs::write(
        d.join("conf.d/01-b.conf"),
        "[b]\naccept = 2\nconnect = 3\ncert = /b.pem\n",
    )
    .unwrap();
    std::fs::write(
        d.join("conf.d/00-a.conf"),
        "[a]\naccept = 1\nconnect = 3\ncert = /a.pem\n",
    )
    .unwrap();
    std::fs::write(
        d.join("stunnel.conf"),
        "foreground = yes\ninclude = conf.d\n",
    )
    .unwrap();
    let t = super::import(&d.join("stunnel.conf"))
        .unwrap()
        .text_for(Path::new("/c.toml"));
    let (a, b) = (
        t.find("name = \"a\"").unwrap(),
        t.find("name = \"b\"").unwrap(),
    );
    assert!(a < b, "{t}");
    has(
        &t,
        &[&format!(
            "# [b] ({}:1):\n",
            d.join("conf.d/01-b.conf").display()
        )],
    );
    std::fs::write(d.join("conf.d/02-bad.conf"), "[c]\naccept 4\n").unwrap();
    assert_eq!(
        super::import(&d.join("stunnel.conf"))
            .unwrap_err()
            .to_string(),
        format!(
            "{}:2: \"accept 4\": no '=' found (stunnel wants option = value)",
            d.join("conf.d/02-bad.conf").display()
        )
    );
}
