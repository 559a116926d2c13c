//! Every validation rule, with the exact file, route and key it names.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use super::*;

const ROUTE: &str =
    "[[route]]\nname = \"r\"\nlisten = \"127.0.0.1:7001\"\nconnect = [\"peer.example:7022\"]\n";

fn load(text: &str) -> Result<Config, ConfigError> {
    load_str(Path::new("t.toml"), text, Some(HashMap::new()))
}

/// Asserts `text` fails naming `route` and `key`, with `words` in the message.
fn refused(text: &str, route: Option<&str>, key: Option<&str>, words: &str) {
    let e = load(text).expect_err(text);
    assert_eq!(e.file, Path::new("t.toml"), "{e}");
    assert_eq!(e.route.as_deref(), route, "{e}");
    assert_eq!(e.key.as_deref(), key, "{e}");
    let shown = e.to_string();
    assert!(shown.contains(words), "{shown:?} lacks {words:?}");
    assert!(shown.starts_with("t.toml"), "{shown}");
}

#[test]
fn a_minimal_route_gets_the_documented_defaults() {
    let c = load(&format!("{ROUTE}[route.connect_tls]\n")).unwrap();
    assert_eq!(c.shutdown_grace, Duration::from_secs(30));
    assert_eq!(c.admin, None);
    let r = &c.routes[0];
    assert_eq!(
        (
            r.connect_timeout,
            r.handshake_timeout,
            r.idle_timeout,
            r.max_connections
        ),
        (
            Duration::from_secs(5),
            Duration::from_secs(10),
            Duration::from_secs(3600),
            4096
        )
    );
    let t = r.connect_tls.as_ref().unwrap();
    assert_eq!(
        (t.start.clone(), t.verify.clone()),
        (Start::Direct, Verify::Full)
    );
    assert_eq!(t.protocols, vec![TlsVersion::Tls13, TlsVersion::Tls12]);
    assert!(t.resumption);
    assert_eq!(
        r.connect,
        vec![Upstream {
            host: "peer.example".into(),
            port: 7022
        }]
    );
}

#[test]
fn the_route_wins_over_defaults_and_durations_parse() {
    let c = load(&format!(
        "shutdown_grace = \"250ms\"\n[defaults]\nconnect_timeout = \"2s\"\nidle_timeout = \"5m\"\nmax_connections = 10\n{ROUTE}idle_timeout = \"1h\"\n"
    ))
    .unwrap();
    let r = &c.routes[0];
    assert_eq!(c.shutdown_grace, Duration::from_millis(250));
    assert_eq!(
        (r.connect_timeout, r.idle_timeout, r.max_connections),
        (Duration::from_secs(2), Duration::from_secs(3600), 10)
    );
}

#[test]
fn environment_overrides_reach_every_level() {
    let env: HashMap<String, String> = [
        ("TLS_SIDECAR__ADMIN__LISTEN", "0.0.0.0:9464"),
        ("TLS_SIDECAR__DEFAULTS__IDLE_TIMEOUT", "7m"),
        ("TLS_SIDECAR__SHUTDOWN_GRACE", "3s"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let c = load_str(
        Path::new("t.toml"),
        &format!("[admin]\nlisten = \"127.0.0.1:1\"\n{ROUTE}"),
        Some(env),
    )
    .unwrap();
    assert_eq!(c.admin.unwrap().listen, "0.0.0.0:9464".parse().unwrap());
    assert_eq!(c.routes[0].idle_timeout, Duration::from_secs(420));
    assert_eq!(c.shutdown_grace, Duration::from_secs(3));
}

#[test]
fn unknown_keys_are_errors_at_every_level() {
    refused(
        &format!("shutdown_grase = \"1s\"\n{ROUTE}"),
        None,
        None,
        "shutdown_grase",
    );
    refused(&format!("{ROUTE}lisen = \"x\"\n"), Some("r"), None, "lisen");
    refused(
        &format!("{ROUTE}[route.connect_tls]\nverfy = \"full\"\n"),
        Some("r"),
        None,
        "verfy",
    );
    refused(
        &format!("{ROUTE}[route.listen_tls]\ncert = \"a\"\nkey = \"b\"\nsni = true\n"),
        Some("r"),
        None,
        "sni",
    );
}

#[test]
fn names_listens_and_connect_lists_are_checked() {
    refused(
        &format!("{ROUTE}{ROUTE}"),
        Some("r"),
        Some("name"),
        "duplicate route name",
    );
    let other = ROUTE.replace("name = \"r\"", "name = \"s\"");
    refused(
        &format!("{ROUTE}{other}"),
        Some("s"),
        Some("listen"),
        "127.0.0.1:7001 is already used by r",
    );
    refused(
        &format!("[admin]\nlisten = \"127.0.0.1:7001\"\n{ROUTE}"),
        Some("r"),
        Some("listen"),
        "the admin endpoint",
    );
    refused(
        &ROUTE.replace("\"r\"", "\"Bad Name\""),
        Some("Bad Name"),
        Some("name"),
        "[a-z0-9_-]+",
    );
    refused(
        &ROUTE.replace("[\"peer.example:7022\"]", "[]"),
        Some("r"),
        Some("connect"),
        "the list is empty",
    );
    refused(
        &ROUTE.replace("peer.example:7022", "peer.example"),
        Some("r"),
        Some("connect[0]"),
        "is not host:port",
    );
    refused(
        &ROUTE.replace("peer.example:7022", "peer:0"),
        Some("r"),
        Some("connect[0]"),
        "is not host:port",
    );
    refused(
        &ROUTE.replace("127.0.0.1:7001", "localhost:7001"),
        Some("r"),
        Some("listen"),
        "is not an IP:port",
    );
    refused("", None, Some("route"), "no [[route]] is defined");
    assert_eq!(
        load(&ROUTE.replace("peer.example:7022", "[::1]:7022"))
            .unwrap()
            .routes[0]
            .connect[0]
            .host,
        "::1"
    );
}

#[test]
fn refused_protocol_names_say_why() {
    for (p, why) in [
        ("TLSv1", "RFC 8996"),
        ("TLSv1.1", "RFC 8996"),
        ("SSLv2", "SSL is broken"),
        ("SSLv3", "SSL is broken"),
    ] {
        refused(
            &format!("{ROUTE}[route.connect_tls]\nprotocols = [\"TLSv1.2\", \"{p}\"]\n"),
            Some("r"),
            Some("connect_tls.protocols"),
            why,
        );
        refused(
            &format!(
                "{ROUTE}[route.listen_tls]\ncert = \"c\"\nkey = \"k\"\nprotocols = [\"{p}\"]\n"
            ),
            Some("r"),
            Some("listen_tls.protocols"),
            why,
        );
    }
    refused(
        &format!("{ROUTE}[route.connect_tls]\nprotocols = [\"TLSv9\"]\n"),
        Some("r"),
        Some("connect_tls.protocols"),
        "unknown protocol",
    );
    refused(
        &format!("{ROUTE}[route.connect_tls]\nprotocols = []\n"),
        Some("r"),
        Some("connect_tls.protocols"),
        "the list is empty",
    );
}

#[test]
fn verify_modes_and_pins_are_checked() {
    let tls = |lines: &str| format!("{ROUTE}[route.connect_tls]\n{lines}\n");
    refused(
        &tls("verify = \"pin\""),
        Some("r"),
        Some("connect_tls.pins"),
        "needs pins",
    );
    refused(
        &tls("verify = \"full\"\npins = [\"sha256/AAAA\"]"),
        Some("r"),
        Some("connect_tls.pins"),
        "only used with verify = \"pin\"",
    );
    refused(
        &tls("verify = \"pin\"\npins = [\"md5/AAAA\"]"),
        Some("r"),
        Some("connect_tls.pins[0]"),
        "sha256/BASE64",
    );
    refused(
        &tls("verify = \"pin\"\npins = [\"sha256/AAAA\"]"),
        Some("r"),
        Some("connect_tls.pins[0]"),
        "32 bytes",
    );
    refused(
        &tls("verify = \"maybe\""),
        Some("r"),
        Some("connect_tls.verify"),
        "unknown verify mode",
    );
    refused(
        &tls("server_name = \"not a name!\""),
        Some("r"),
        Some("connect_tls.server_name"),
        "neither a DNS name nor an IP",
    );
    let pin = format!("sha256/{}", "A".repeat(43) + "=");
    let c = load(&tls(&format!("verify = \"pin\"\npins = [\"{pin}\"]"))).unwrap();
    assert_eq!(
        c.routes[0].connect_tls.as_ref().unwrap().verify,
        Verify::Pin(vec![[0; 32]])
    );
}

#[test]
fn certificate_and_key_come_in_pairs() {
    refused(
        &format!("{ROUTE}[route.connect_tls]\ncert = \"c.pem\"\n"),
        Some("r"),
        Some("connect_tls.key"),
        "cert is given without key",
    );
    refused(
        &format!("{ROUTE}[route.connect_tls]\nkey = \"k.pem\"\n"),
        Some("r"),
        Some("connect_tls.cert"),
        "key is given without cert",
    );
    refused(
        &format!("{ROUTE}[route.listen_tls]\ncert = \"c.pem\"\n"),
        Some("r"),
        Some("listen_tls.key"),
        "without key",
    );
    refused(
        &format!("{ROUTE}[route.listen_tls]\nsni_required = true\n"),
        Some("r"),
        Some("listen_tls.cert"),
        "needs a certificate",
    );
    refused(
        &format!("{ROUTE}[route.listen_tls]\ncert = \"c\"\nkey = \"k\"\ncerts = [{{ cert = \"c\", key = \"k\" }}]\n"),
        Some("r"),
        Some("listen_tls.certs"),
        "not both",
    );
    refused(
        &format!("{ROUTE}[route.listen_tls]\ncert = \"c\"\nkey = \"k\"\ncrl = [\"x.crl\"]\n"),
        Some("r"),
        Some("listen_tls.crl"),
        "need client_ca",
    );
    refused(
        &format!("{ROUTE}[route.listen_tls]\ncert = \"c\"\nkey = \"k\"\nalpn_required = true\n"),
        Some("r"),
        Some("listen_tls.alpn_required"),
        "non-empty alpn",
    );
    let c = load(&format!("{ROUTE}[route.listen_tls]\ncerts = [{{ cert = \"a\", key = \"b\" }}, {{ cert = \"c\", key = \"d\" }}]\n")).unwrap();
    let lt = c.routes[0].listen_tls.as_ref().unwrap();
    assert_eq!(lt.certs.len(), 2);
    assert_eq!(lt.certs[1].key_name, "listen_tls.certs[1]");
}

#[test]
fn upgrade_settings_are_consistent() {
    let tls = |lines: &str| format!("{ROUTE}[route.connect_tls]\n{lines}\n");
    refused(
        &tls("start = \"upgrade\""),
        Some("r"),
        Some("connect_tls.upgrade"),
        "needs an upgrade profile",
    );
    refused(
        &tls("start = \"upgrade\"\nupgrade = \"script\""),
        Some("r"),
        Some("connect_tls.script"),
        "non-empty script",
    );
    refused(
        &tls("start = \"upgrade\"\nupgrade = \"smtp\"\nscript = [{ send = \"x\" }]"),
        Some("r"),
        Some("connect_tls.script"),
        "only used with upgrade = \"script\"",
    );
    refused(
        &tls("upgrade = \"smtp\""),
        Some("r"),
        Some("connect_tls.upgrade"),
        "needs start = \"upgrade\"",
    );
    refused(
        &tls("start = \"later\""),
        Some("r"),
        Some("connect_tls.start"),
        "unknown start",
    );
    let c = load(&tls(
        "start = \"upgrade\"\nupgrade = \"smtp\"\nupgrade_hostname = \"gms\"",
    ))
    .unwrap();
    assert_eq!(
        c.routes[0].connect_tls.as_ref().unwrap().start,
        Start::Upgrade(Upgrade::Builtin {
            profile: "smtp".into(),
            hostname: "gms".into()
        })
    );
}

#[test]
fn durations_limits_and_log_settings_are_checked() {
    refused(
        &format!("{ROUTE}idle_timeout = \"soon\"\n"),
        Some("r"),
        Some("idle_timeout"),
        "not a duration",
    );
    refused(
        &format!("{ROUTE}connect_timeout = \"0s\"\n"),
        Some("r"),
        Some("connect_timeout"),
        "more than zero",
    );
    refused(
        &format!("{ROUTE}max_connections = 0\n"),
        Some("r"),
        Some("max_connections"),
        "at least 1",
    );
    refused(
        &format!("shutdown_grace = \"x\"\n{ROUTE}"),
        None,
        Some("shutdown_grace"),
        "not a duration",
    );
    refused(
        &format!("[defaults]\nhandshake_timeout = \"1 fortnight\"\n{ROUTE}"),
        None,
        Some("defaults.handshake_timeout"),
        "not a duration",
    );
    refused(
        &format!("[log]\nlevel = \"loud\"\n{ROUTE}"),
        None,
        Some("log.level"),
        "unknown level",
    );
    refused(
        &format!("[log]\nformat = \"xml\"\n{ROUTE}"),
        None,
        Some("log.format"),
        "unknown format",
    );
    refused(
        &format!("[admin]\nlisten = \"nowhere\"\n{ROUTE}"),
        None,
        Some("admin.listen"),
        "not an IP:port",
    );
}

#[test]
fn a_missing_file_names_the_file() {
    let e = load_with_env(
        Path::new("/nonexistent/tls-sidecar.toml"),
        Some(HashMap::new()),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/nonexistent/tls-sidecar.toml: failed to read the file"),
        "{e}"
    );
}
