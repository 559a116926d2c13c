//! Every rule of `validate`, one test each: what a config may say, and for
//! what it may not, the exact file, route and key the error names and the
//! words that say why.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use super::*;

/// The smallest valid route; tests append keys or tables to it.
const ROUTE: &str =
    "[[route]]\nname = \"r\"\nlisten = \"127.0.0.1:7001\"\nconnect = [\"peer.example:7022\"]\n";

/// Another route, `name` listening on `listen`.
fn route(name: &str, listen: &str) -> String {
    format!(
        "[[route]]\nname = \"{name}\"\nlisten = \"{listen}\"\nconnect = [\"peer.example:7022\"]\n"
    )
}

/// `ROUTE` with a `[route.connect_tls]` table holding `lines`.
fn connect_tls(lines: &str) -> String {
    format!("{ROUTE}[route.connect_tls]\n{lines}\n")
}

/// `ROUTE` with a `[route.listen_tls]` table holding `lines`.
fn listen_tls(lines: &str) -> String {
    format!("{ROUTE}[route.listen_tls]\n{lines}\n")
}

fn load(text: &str) -> Result<Config, ConfigError> {
    load_with(text, &[])
}

/// Loads `text` with exactly these environment variables (never the
/// process's own environment).
fn load_with(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    load_str(Path::new("t.toml"), text, Some(env))
}

/// Asserts that `text` is refused with exactly this route and key, that the
/// message begins by naming file, route and key, and that it says `words`.
#[track_caller]
fn refused(text: &str, route: Option<&str>, key: Option<&str>, words: &str) {
    refused_err(load(text), text, route, key, words);
}

#[track_caller]
fn refused_err(
    result: Result<Config, ConfigError>,
    text: &str,
    route: Option<&str>,
    key: Option<&str>,
    words: &str,
) {
    let e = match result {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e,
    };
    assert_eq!(e.file, Path::new("t.toml"), "{e}");
    assert_eq!(e.route.as_deref(), route, "{e}");
    assert_eq!(e.key.as_deref(), key, "{e}");
    let shown = e.to_string();
    let mut place = "t.toml".to_owned();
    if let Some(r) = route {
        place.push_str(&format!(": route \"{r}\""));
    }
    if let Some(k) = key {
        place.push_str(&format!(": key `{k}`"));
    }
    place.push_str(": ");
    assert!(
        shown.starts_with(&place),
        "{shown:?} does not start with {place:?}"
    );
    assert!(shown.contains(words), "{shown:?} lacks {words:?}");
}

fn the_route(c: &Config) -> &Route {
    assert_eq!(c.routes.len(), 1);
    &c.routes[0]
}

fn the_connect_tls(c: &Config) -> &ConnectTls {
    the_route(c).connect_tls.as_ref().expect("connect_tls")
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

// ---------------------------------------------------------------------------
// Defaults and their resolution

#[test]
fn a_minimal_route_gets_the_built_in_defaults() {
    let c = load(ROUTE).unwrap();
    assert_eq!(c.source, Path::new("t.toml"));
    assert_eq!(c.shutdown_grace, secs(30));
    assert_eq!(c.workers, None);
    assert_eq!(c.admin, None);
    assert_eq!(
        c.log,
        Log {
            level: "info".into(),
            format: LogFormat::Text
        }
    );
    assert!(!c.strict_key_permissions);
    let r = the_route(&c);
    assert_eq!(r.name, "r");
    assert_eq!(r.listen, "127.0.0.1:7001".parse().unwrap());
    assert_eq!(
        (
            r.connect_timeout,
            r.handshake_timeout,
            r.idle_timeout,
            r.max_connections
        ),
        (secs(5), secs(10), secs(3600), 4096)
    );
    assert_eq!(
        r.connect,
        vec![Upstream {
            host: "peer.example".into(),
            port: 7022
        }]
    );
    assert_eq!((&r.connect_tls, &r.listen_tls), (&None, &None));
    assert_eq!(r.connect_start(), "plain");
}

#[test]
fn an_empty_connect_tls_table_means_direct_tls_with_full_verification() {
    let c = load(&connect_tls("")).unwrap();
    assert_eq!(
        the_connect_tls(&c),
        &ConnectTls {
            start: Start::Direct,
            verify: Verify::Full,
            server_name: None,
            ca: None,
            crl: vec![],
            client_cert: None,
            protocols: vec![TlsVersion::Tls13, TlsVersion::Tls12],
            alpn: vec![],
            resumption: true,
            ca_password_file: None,
            ciphers: vec![],
            genesys: vec![],
        }
    );
    assert_eq!(the_route(&c).connect_start(), "direct");
}

#[test]
fn a_route_setting_wins_over_defaults_and_defaults_win_over_built_ins() {
    let text = format!(
        "[defaults]\nconnect_timeout = \"2s\"\nhandshake_timeout = \"3s\"\nidle_timeout = \"5m\"\nmax_connections = 10\n\
         {ROUTE}connect_timeout = \"250ms\"\nidle_timeout = \"24h\"\n{}",
        route("s", "127.0.0.1:7002")
    );
    let c = load(&text).unwrap();
    let got: Vec<_> = c
        .routes
        .iter()
        .map(|r| {
            (
                r.connect_timeout,
                r.handshake_timeout,
                r.idle_timeout,
                r.max_connections,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (Duration::from_millis(250), secs(3), secs(86_400), 10),
            (secs(2), secs(3), secs(300), 10),
        ]
    );
    let c = load(&format!(
        "[defaults]\nidle_timeout = \"5m\"\n{ROUTE}max_connections = 7\n"
    ))
    .unwrap();
    let r = the_route(&c);
    assert_eq!(
        (
            r.connect_timeout,
            r.handshake_timeout,
            r.idle_timeout,
            r.max_connections
        ),
        (secs(5), secs(10), secs(300), 7),
        "keys [defaults] leaves out keep the built-in defaults"
    );
}

#[test]
fn durations_take_the_documented_forms() {
    for (written, want) in [
        ("250ms", Duration::from_millis(250)),
        ("10s", secs(10)),
        ("5m", secs(300)),
        ("1h", secs(3600)),
        ("1h 30m", secs(5400)),
        ("1day", secs(86_400)),
    ] {
        let c = load(&format!("shutdown_grace = \"{written}\"\n{ROUTE}")).unwrap();
        assert_eq!(c.shutdown_grace, want, "{written}");
    }
}

#[test]
fn top_level_settings_are_read() {
    let c = load(&format!(
        "strict_key_permissions = true\n[admin]\nlisten = \"[::1]:9464\"\n[log]\nlevel = \"debug\"\nformat = \"json\"\n{ROUTE}"
    ))
    .unwrap();
    assert!(c.strict_key_permissions);
    assert_eq!(c.admin.unwrap().listen, "[::1]:9464".parse().unwrap());
    assert_eq!(
        c.log,
        Log {
            level: "debug".into(),
            format: LogFormat::Json
        }
    );
}

// ---------------------------------------------------------------------------
// Environment overrides (the map is passed explicitly)

#[test]
fn admin_listen_is_overridden_from_the_environment() {
    let file = format!("[admin]\nlisten = \"127.0.0.1:9464\"\n{ROUTE}");
    let c = load_with(&file, &[("TLS_SIDECAR__ADMIN__LISTEN", "0.0.0.0:9465")]).unwrap();
    assert_eq!(c.admin.unwrap().listen, "0.0.0.0:9465".parse().unwrap());
    // Without an [admin] section in the file, the variable creates one.
    let c = load_with(ROUTE, &[("TLS_SIDECAR__ADMIN__LISTEN", "127.0.0.1:9466")]).unwrap();
    assert_eq!(c.admin.unwrap().listen, "127.0.0.1:9466".parse().unwrap());
}

#[test]
fn defaults_idle_timeout_is_overridden_from_the_environment_and_a_route_still_wins() {
    let file = format!(
        "[defaults]\nidle_timeout = \"1h\"\n{ROUTE}{}idle_timeout = \"30s\"\n",
        route("s", "127.0.0.1:7002")
    );
    let c = load_with(&file, &[("TLS_SIDECAR__DEFAULTS__IDLE_TIMEOUT", "7m")]).unwrap();
    assert_eq!(c.routes[0].idle_timeout, secs(420));
    assert_eq!(c.routes[1].idle_timeout, secs(30));
}

#[test]
fn drain_delay_defaults_to_zero_and_the_config_watch_to_on() {
    let c = load(ROUTE).unwrap();
    assert_eq!(c.drain_delay, Duration::ZERO);
    assert!(c.watch_config);
    let c = load(&format!(
        "drain_delay = \"5s\"\nwatch_config = false\n{ROUTE}"
    ))
    .unwrap();
    assert_eq!(c.drain_delay, secs(5));
    assert!(!c.watch_config);
    assert_eq!(
        load(&format!("drain_delay = \"0s\"\n{ROUTE}"))
            .unwrap()
            .drain_delay,
        Duration::ZERO
    );
    let c = load_with(ROUTE, &[("TLS_SIDECAR__DRAIN_DELAY", "7s")]).unwrap();
    assert_eq!(c.drain_delay, secs(7));
}

#[test]
fn drain_delay_and_shutdown_grace_refuse_negative_unparsable_and_over_a_day() {
    for key in ["drain_delay", "shutdown_grace"] {
        for (value, words) in [
            ("-5s", "\"-5s\": a duration cannot be negative"),
            ("soon", "\"soon\" is not a duration"),
            ("25h", "\"25h\": at most 1 day"),
            ("2days", "\"2days\": at most 1 day"),
        ] {
            refused(
                &format!("{key} = \"{value}\"\n{ROUTE}"),
                None,
                Some(key),
                words,
            );
        }
    }
    // A day itself is allowed; a zero grace is not (it would cut every
    // connection at once), a zero delay is the default.
    assert_eq!(
        load(&format!("drain_delay = \"24h\"\n{ROUTE}"))
            .unwrap()
            .drain_delay,
        secs(86_400)
    );
    refused(
        &format!("shutdown_grace = \"0s\"\n{ROUTE}"),
        None,
        Some("shutdown_grace"),
        "a duration must be more than zero",
    );
}

#[test]
fn shutdown_grace_is_overridden_from_the_environment() {
    let file = format!("shutdown_grace = \"30s\"\n{ROUTE}");
    let c = load_with(&file, &[("TLS_SIDECAR__SHUTDOWN_GRACE", "3s")]).unwrap();
    assert_eq!(c.shutdown_grace, secs(3));
}

#[test]
fn workers_are_read_from_the_file_or_the_environment_and_bounded() {
    assert_eq!(
        load(&format!("workers = 1\n{ROUTE}")).unwrap().workers,
        Some(1)
    );
    let c = load_with(ROUTE, &[("TLS_SIDECAR__WORKERS", "3")]).unwrap();
    assert_eq!(c.workers, Some(3));
    for bad in ["0", "1025"] {
        refused(
            &format!("workers = {bad}\n{ROUTE}"),
            None,
            Some("workers"),
            "out of range: 1 to 1024",
        );
    }
}

#[test]
fn variables_without_the_prefix_are_ignored() {
    let c = load_with(
        ROUTE,
        &[
            ("SHUTDOWN_GRACE", "1s"),
            ("OTHER__SHUTDOWN_GRACE", "1s"),
            ("TLS_SIDECAR_CONFIG", "/elsewhere.toml"),
        ],
    )
    .unwrap();
    assert_eq!(c.shutdown_grace, secs(30));
}

#[test]
fn a_bad_value_from_the_environment_is_refused_like_one_in_the_file() {
    refused_err(
        load_with(ROUTE, &[("TLS_SIDECAR__SHUTDOWN_GRACE", "soon")]),
        "TLS_SIDECAR__SHUTDOWN_GRACE=soon",
        None,
        Some("shutdown_grace"),
        "\"soon\" is not a duration",
    );
    refused_err(
        load_with(ROUTE, &[("TLS_SIDECAR__ADMIN__LISTEN", "everywhere")]),
        "TLS_SIDECAR__ADMIN__LISTEN=everywhere",
        None,
        Some("admin.listen"),
        "is not an IP:port address",
    );
}

#[test]
fn an_unknown_key_from_the_environment_is_an_error() {
    refused_err(
        load_with(ROUTE, &[("TLS_SIDECAR__SHUTDOWN_GRASE", "1s")]),
        "TLS_SIDECAR__SHUTDOWN_GRASE=1s",
        None,
        None,
        "unknown field `shutdown_grase`",
    );
}

// ---------------------------------------------------------------------------
// Unknown keys

#[test]
fn an_unknown_top_level_key_is_an_error() {
    refused(
        &format!("shutdown_grase = \"1s\"\n{ROUTE}"),
        None,
        None,
        "unknown field `shutdown_grase`, expected one of `shutdown_grace`",
    );
}

#[test]
fn an_unknown_key_in_admin_log_or_defaults_is_an_error() {
    for (table, typo) in [("admin", "lisen"), ("log", "lvl"), ("defaults", "idle")] {
        refused(
            &format!("[{table}]\n{typo} = \"x\"\n{ROUTE}"),
            None,
            None,
            &format!("unknown field `{typo}`"),
        );
    }
}

#[test]
fn an_unknown_key_in_a_route_names_the_route_and_the_key() {
    refused(
        &format!("{ROUTE}lisen = \"127.0.0.1:1\"\n"),
        Some("r"),
        Some("lisen"),
        "unknown field `lisen`, expected one of `name`, `listen`",
    );
}

#[test]
fn an_unknown_key_in_connect_tls_names_the_dotted_key() {
    refused(
        &connect_tls("verfy = \"full\""),
        Some("r"),
        Some("connect_tls.verfy"),
        "unknown field `verfy`",
    );
}

#[test]
fn an_unknown_key_in_listen_tls_names_the_dotted_key() {
    refused(
        &listen_tls("cert = \"c\"\nkey = \"k\"\nsni = true"),
        Some("r"),
        Some("listen_tls.sni"),
        "unknown field `sni`",
    );
}

#[test]
fn an_unknown_key_in_a_certs_entry_or_a_script_step_names_the_entry() {
    refused(
        &listen_tls("certs = [{ cert = \"c\", key = \"k\", chain = \"x\" }]"),
        Some("r"),
        Some("listen_tls.certs[0].chain"),
        "unknown field `chain`",
    );
    refused(
        &connect_tls("start = \"upgrade\"\nupgrade = \"script\"\nscript = [{ send = \"A\" }, { sned = \"B\" }]"),
        Some("r"),
        Some("connect_tls.script[1].sned"),
        "unknown field `sned`",
    );
}

#[test]
fn a_missing_or_mistyped_route_key_is_named() {
    refused(
        &format!("{ROUTE}[[route]]\nlisten = \"127.0.0.1:7002\"\nconnect = [\"x:1\"]\n"),
        Some("route[1]"),
        Some("name"),
        "missing configuration field \"name\"",
    );
    refused(
        "[[route]]\nname = \"r\"\nconnect = [\"x:1\"]\n",
        Some("r"),
        Some("listen"),
        "missing configuration field \"listen\"",
    );
    refused(
        &format!("{ROUTE}max_connections = -1\n"),
        Some("r"),
        Some("max_connections"),
        "invalid type",
    );
    refused(
        &ROUTE.replace("[\"peer.example:7022\"]", "\"peer.example:7022\""),
        Some("r"),
        Some("connect"),
        "expected a sequence",
    );
    refused(
        &listen_tls("certs = [{ cert = \"c\" }]"),
        Some("r"),
        Some("listen_tls.certs[0].key"),
        "cert is given without key: both are needed (a PKCS#12 or JKS keystore cert needs password_file instead)",
    );
}

// ---------------------------------------------------------------------------
// Routes: names, addresses, upstreams

#[test]
fn no_routes_at_all_is_an_error() {
    refused(
        "[admin]\nlisten = \"127.0.0.1:9464\"\n",
        None,
        Some("route"),
        "no [[route]] is defined: nothing to serve",
    );
    refused("", None, Some("route"), "no [[route]] is defined");
}

#[test]
fn duplicate_route_names_are_refused() {
    refused(
        &format!("{ROUTE}{}", route("r", "127.0.0.1:7002")),
        Some("r"),
        Some("name"),
        "duplicate route name (also route[0])",
    );
}

#[test]
fn invalid_route_names_are_refused() {
    for bad in ["Bad", "has space", "dot.ted", "", "ü"] {
        refused(
            &ROUTE.replace("name = \"r\"", &format!("name = \"{bad}\"")),
            Some(bad),
            Some("name"),
            "is not a valid route name: use [a-z0-9_-]+",
        );
    }
    let c = load(&ROUTE.replace("name = \"r\"", "name = \"gms-https_2\"")).unwrap();
    assert_eq!(the_route(&c).name, "gms-https_2");
}

#[test]
fn duplicate_listen_addresses_are_refused() {
    refused(
        &format!("{ROUTE}{}", route("s", "127.0.0.1:7001")),
        Some("s"),
        Some("listen"),
        "127.0.0.1:7001 is already used by r",
    );
}

#[test]
fn a_route_cannot_listen_where_the_admin_endpoint_does() {
    refused(
        &format!("[admin]\nlisten = \"127.0.0.1:7001\"\n{ROUTE}"),
        Some("r"),
        Some("listen"),
        "127.0.0.1:7001 is already used by the admin endpoint",
    );
}

#[test]
fn a_wildcard_listen_takes_its_port_on_every_address() {
    // Linux refuses these binds even with SO_REUSEADDR: the wildcard holds the port.
    for (first, second) in [
        ("0.0.0.0:7001", "127.0.0.1:7001"),
        ("127.0.0.1:7001", "0.0.0.0:7001"),
        ("[::]:7001", "127.0.0.1:7001"),
        ("0.0.0.0:7001", "[::]:7001"),
        ("[::]:7001", "[::1]:7001"),
    ] {
        refused(
            &format!("{}{}", route("a", first), route("b", second)),
            Some("b"),
            Some("listen"),
            &format!("is already used by a (which listens on {first}, the same port)"),
        );
    }
    refused(
        &format!(
            "[admin]\nlisten = \"0.0.0.0:9464\"\n{}",
            route("a", "127.0.0.1:9464")
        ),
        Some("a"),
        Some("listen"),
        "already used by the admin endpoint (which listens on 0.0.0.0:9464",
    );
}

#[test]
fn the_same_port_on_different_addresses_is_allowed() {
    for (first, second) in [
        ("127.0.0.1:7001", "127.0.0.2:7001"),
        ("0.0.0.0:7001", "[::1]:7001"),
        ("127.0.0.1:7001", "[::1]:7001"),
        ("0.0.0.0:7001", "0.0.0.0:7002"),
    ] {
        let c = load(&format!("{}{}", route("a", first), route("b", second))).unwrap();
        assert_eq!(c.routes.len(), 2, "{first} {second}");
    }
}

#[test]
fn listen_must_be_an_ip_address_and_a_port() {
    for bad in [
        "localhost:7001",
        "127.0.0.1",
        "7001",
        "[::1]",
        "127.0.0.1:70000",
    ] {
        refused(
            &ROUTE.replace("127.0.0.1:7001", bad),
            Some("r"),
            Some("listen"),
            "is not an IP:port address (e.g. \"127.0.0.1:7021\"",
        );
    }
    refused(
        &ROUTE.replace("127.0.0.1:7001", "127.0.0.1:0"),
        Some("r"),
        Some("listen"),
        "port 0 is not a port clients can be pointed at",
    );
}

#[test]
fn an_empty_connect_list_is_refused() {
    refused(
        &ROUTE.replace("[\"peer.example:7022\"]", "[]"),
        Some("r"),
        Some("connect"),
        "the list is empty: give at least one host:port",
    );
}

#[test]
fn bad_host_port_entries_are_refused_naming_their_index() {
    for (bad, words) in [
        ("peer.example", "is not host:port"),
        ("peer.example:", "is not host:port"),
        (":7022", "is not host:port"),
        ("peer.example:0", "is not host:port"),
        ("peer.example:70000", "is not host:port"),
        ("peer.example:https", "is not host:port"),
        ("::1:7022", "is not host:port"),
        ("[::1]7022", "is not host:port"),
        ("[::1]:", "is not host:port"),
        (
            "peer example:7022",
            "is neither a DNS name nor an IP address",
        ),
        (
            "-peer.example:7022",
            "is neither a DNS name nor an IP address",
        ),
        ("999.1.1.1:7022", "is neither a DNS name nor an IP address"),
        (
            "[peer.example]:7022",
            "only an IPv6 address goes in brackets",
        ),
        ("[127.0.0.1]:7022", "only an IPv6 address goes in brackets"),
    ] {
        refused(
            &ROUTE.replace(
                "[\"peer.example:7022\"]",
                &format!("[\"backup.example:7022\", \"{bad}\"]"),
            ),
            Some("r"),
            Some("connect[1]"),
            words,
        );
    }
}

#[test]
fn connect_entries_take_names_ipv4_and_bracketed_ipv6_in_order() {
    let c = load(&ROUTE.replace(
        "[\"peer.example:7022\"]",
        "[\"stat-a.genesys.example:7022\", \"192.0.2.10:7022\", \"[2001:db8::1]:7022\", \"stat_b:1\"]",
    ))
    .unwrap();
    let shown: Vec<String> = the_route(&c)
        .connect
        .iter()
        .map(|u| u.to_string())
        .collect();
    assert_eq!(
        shown,
        [
            "stat-a.genesys.example:7022",
            "192.0.2.10:7022",
            "[2001:db8::1]:7022",
            "stat_b:1"
        ]
    );
    assert_eq!(the_route(&c).connect[2].host, "2001:db8::1");
}

// ---------------------------------------------------------------------------
// Timeouts and limits

#[test]
fn bad_durations_are_refused_where_they_are_written() {
    for key in ["connect_timeout", "handshake_timeout", "idle_timeout"] {
        refused(
            &format!("{ROUTE}{key} = \"soon\"\n"),
            Some("r"),
            Some(key),
            "\"soon\" is not a duration such as \"250ms\", \"10s\" or \"5m\"",
        );
        refused(
            &format!("[defaults]\n{key} = \"10\"\n{ROUTE}"),
            None,
            Some(&format!("defaults.{key}")),
            "\"10\" is not a duration",
        );
    }
    refused(
        &format!("shutdown_grace = \"1 fortnight\"\n{ROUTE}"),
        None,
        Some("shutdown_grace"),
        "\"1 fortnight\" is not a duration",
    );
}

#[test]
fn zero_durations_are_refused() {
    for key in ["connect_timeout", "handshake_timeout", "idle_timeout"] {
        refused(
            &format!("{ROUTE}{key} = \"0s\"\n"),
            Some("r"),
            Some(key),
            "\"0s\": a duration must be more than zero",
        );
        refused(
            &format!("[defaults]\n{key} = \"0ms\"\n{ROUTE}"),
            None,
            Some(&format!("defaults.{key}")),
            "must be more than zero",
        );
    }
    refused(
        &format!("shutdown_grace = \"0s\"\n{ROUTE}"),
        None,
        Some("shutdown_grace"),
        "must be more than zero",
    );
}

#[test]
fn durations_over_a_century_are_refused_before_they_overflow_a_deadline() {
    refused(
        &format!("{ROUTE}idle_timeout = \"500000000000y\"\n"),
        Some("r"),
        Some("idle_timeout"),
        "a duration must be at most 100 years",
    );
    let c = load(&format!("{ROUTE}idle_timeout = \"99y\"\n")).unwrap();
    assert!(the_route(&c).idle_timeout > secs(99 * 365 * 86_400));
}

#[test]
fn max_connections_zero_is_refused() {
    refused(
        &format!("{ROUTE}max_connections = 0\n"),
        Some("r"),
        Some("max_connections"),
        "must be at least 1",
    );
    refused(
        &format!("[defaults]\nmax_connections = 0\n{ROUTE}"),
        None,
        Some("defaults.max_connections"),
        "must be at least 1",
    );
}

// ---------------------------------------------------------------------------
// [admin] and [log]

#[test]
fn admin_listen_must_be_an_ip_address_and_a_port() {
    refused(
        &format!("[admin]\nlisten = \"localhost:9464\"\n{ROUTE}"),
        None,
        Some("admin.listen"),
        "is not an IP:port address",
    );
}

#[test]
fn unknown_log_level_or_format_is_refused() {
    refused(
        &format!("[log]\nlevel = \"loud\"\n{ROUTE}"),
        None,
        Some("log.level"),
        "unknown level \"loud\": use error, warn, info, debug or trace",
    );
    refused(
        &format!("[log]\nformat = \"xml\"\n{ROUTE}"),
        None,
        Some("log.format"),
        "unknown format \"xml\": use \"text\" or \"json\"",
    );
}

// ---------------------------------------------------------------------------
// [route.connect_tls]: start and upgrade

#[test]
fn unknown_start_values_are_refused() {
    refused(
        &connect_tls("start = \"later\""),
        Some("r"),
        Some("connect_tls.start"),
        "unknown start \"later\": use \"direct\" or \"upgrade\"",
    );
}

#[test]
fn start_upgrade_without_upgrade_is_refused() {
    refused(
        &connect_tls("start = \"upgrade\""),
        Some("r"),
        Some("connect_tls.upgrade"),
        "start = \"upgrade\" needs an upgrade profile",
    );
}

#[test]
fn an_upgrade_profile_without_start_upgrade_is_refused() {
    for start in ["", "start = \"direct\"\n"] {
        refused(
            &connect_tls(&format!("{start}upgrade = \"smtp\"")),
            Some("r"),
            Some("connect_tls.upgrade"),
            "an upgrade profile needs start = \"upgrade\"",
        );
    }
}

#[test]
fn upgrade_script_without_a_script_is_refused() {
    for script in ["", "\nscript = []"] {
        refused(
            &connect_tls(&format!(
                "start = \"upgrade\"\nupgrade = \"script\"{script}"
            )),
            Some("r"),
            Some("connect_tls.script"),
            "upgrade = \"script\" needs a non-empty script = [ ... ]",
        );
    }
}

#[test]
fn a_script_with_a_built_in_profile_is_refused() {
    refused(
        &connect_tls("start = \"upgrade\"\nupgrade = \"postgres\"\nscript = [{ send = \"x\" }]"),
        Some("r"),
        Some("connect_tls.script"),
        "a script is only used with upgrade = \"script\", not \"postgres\"",
    );
}

#[test]
fn a_script_without_start_upgrade_is_refused() {
    refused(
        &connect_tls("script = [{ send = \"x\" }]"),
        Some("r"),
        Some("connect_tls.script"),
        "a script needs start = \"upgrade\" and upgrade = \"script\"",
    );
}

#[test]
fn upgrade_hostname_is_refused_where_no_built_in_profile_would_use_it() {
    for lines in [
        "upgrade_hostname = \"gms\"",
        "start = \"upgrade\"\nupgrade = \"script\"\nscript = [{ send = \"x\" }]\nupgrade_hostname = \"gms\"",
    ] {
        refused(
            &connect_tls(lines),
            Some("r"),
            Some("connect_tls.upgrade_hostname"),
            "upgrade_hostname is only used with start = \"upgrade\" and a built-in upgrade profile",
        );
    }
}

#[test]
fn a_built_in_profile_takes_its_hostname_or_the_default() {
    let c = load(&connect_tls(
        "start = \"upgrade\"\nupgrade = \"smtp\"\nupgrade_hostname = \"gms\"",
    ))
    .unwrap();
    assert_eq!(
        the_connect_tls(&c).start,
        Start::Upgrade(Upgrade::Builtin {
            profile: "smtp".into(),
            hostname: "gms".into()
        })
    );
    let c = load(&connect_tls("start = \"upgrade\"\nupgrade = \"postgres\"")).unwrap();
    assert_eq!(
        the_connect_tls(&c).start,
        Start::Upgrade(Upgrade::Builtin {
            profile: "postgres".into(),
            hostname: "tls-sidecar".into()
        })
    );
    assert_eq!(the_route(&c).connect_start(), "upgrade");
}

#[test]
fn an_upgrade_script_is_kept_in_order() {
    let c = load(&connect_tls(
        "start = \"upgrade\"\nupgrade = \"script\"\nscript = [{ send = \"STARTTLS\\r\\n\" }, { expect = \"OK\" }]",
    ))
    .unwrap();
    let Start::Upgrade(Upgrade::Script(steps)) = &the_connect_tls(&c).start else {
        panic!("not a script");
    };
    assert_eq!(
        steps,
        &vec![
            script::RawStep {
                send: Some("STARTTLS\r\n".into()),
                ..Default::default()
            },
            script::RawStep {
                expect: Some("OK".into()),
                ..Default::default()
            },
        ]
    );
}

// ---------------------------------------------------------------------------
// [route.connect_tls]: verification

#[test]
fn each_verify_mode_is_read() {
    for (written, want) in [
        ("full", Verify::Full),
        ("chain", Verify::Chain),
        ("none", Verify::None),
    ] {
        let c = load(&connect_tls(&format!("verify = \"{written}\""))).unwrap();
        assert_eq!(the_connect_tls(&c).verify, want);
        assert_eq!(want.as_str(), written);
    }
}

#[test]
fn unknown_verify_values_are_refused() {
    for bad in ["maybe", "Full", "strict"] {
        refused(
            &connect_tls(&format!("verify = \"{bad}\"")),
            Some("r"),
            Some("connect_tls.verify"),
            &format!("unknown verify mode \"{bad}\": use \"full\", \"chain\", \"pin\" or \"none\""),
        );
    }
}

#[test]
fn verify_pin_without_pins_is_refused() {
    for pins in ["", "\npins = []"] {
        refused(
            &connect_tls(&format!("verify = \"pin\"{pins}")),
            Some("r"),
            Some("connect_tls.pins"),
            "verify = \"pin\" needs pins = [\"sha256/BASE64\", ...]",
        );
    }
}

#[test]
fn pins_with_another_verify_mode_are_refused() {
    let pin = format!("sha256/{}=", "A".repeat(43));
    for (verify, named) in [
        ("", "full"),
        ("verify = \"full\"\n", "full"),
        ("verify = \"chain\"\n", "chain"),
        ("verify = \"none\"\n", "none"),
    ] {
        refused(
            &connect_tls(&format!("{verify}pins = [\"{pin}\"]")),
            Some("r"),
            Some("connect_tls.pins"),
            &format!("pins are only used with verify = \"pin\", not \"{named}\""),
        );
    }
}

#[test]
fn bad_pins_are_refused_naming_their_index() {
    let good = format!("sha256/{}=", "A".repeat(43));
    for (bad, words) in [
        ("md5/AAAA".to_owned(), "a pin is written \"sha256/BASE64\""),
        (format!("sha256/{}", "!".repeat(44)), "not valid base64"),
        (
            "sha256/AAAA".to_owned(),
            "a SHA-256 pin is 32 bytes, this is 3",
        ),
        (
            good.trim_start_matches("sha256/").to_owned(),
            "a pin is written \"sha256/BASE64\"",
        ),
    ] {
        refused(
            &connect_tls(&format!("verify = \"pin\"\npins = [\"{good}\", \"{bad}\"]")),
            Some("r"),
            Some("connect_tls.pins[1]"),
            words,
        );
    }
}

#[test]
fn good_pins_are_decoded_to_32_bytes_each() {
    let zeros = format!("sha256/{}=", "A".repeat(43));
    let ones = format!("sha256/{}", "/".repeat(42) + "8=");
    let c = load(&connect_tls(&format!(
        "verify = \"pin\"\npins = [\"{zeros}\", \"{ones}\"]"
    )))
    .unwrap();
    assert_eq!(
        the_connect_tls(&c).verify,
        Verify::Pin(vec![[0; 32], [0xff; 32]])
    );
}

#[test]
fn a_server_name_must_be_a_dns_name_or_an_ip_address() {
    refused(
        &connect_tls("server_name = \"not a name!\""),
        Some("r"),
        Some("connect_tls.server_name"),
        "\"not a name!\" is neither a DNS name nor an IP address",
    );
    let c = load(&connect_tls("server_name = \"192.0.2.10\"\nca = \"/etc/ca.pem\"\ncrl = [\"/etc/a.crl\", \"/etc/b.crl\"]")).unwrap();
    let t = the_connect_tls(&c);
    assert_eq!(t.server_name.as_deref(), Some("192.0.2.10"));
    assert_eq!(t.ca.as_deref(), Some(Path::new("/etc/ca.pem")));
    assert_eq!(t.crl, [Path::new("/etc/a.crl"), Path::new("/etc/b.crl")]);
}

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
// Client identity rules, OCSP stapling, the sandbox

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
    assert_eq!(t.certs[0].ocsp.as_deref(), Some(Path::new("c.ocsp")));
    let c = load(&listen_tls(
        "certs = [{ cert = \"a\", key = \"a.key\" }, { cert = \"b\", key = \"b.key\", ocsp = \"b.ocsp\" }]",
    ))
    .unwrap();
    let t = the_route(&c).listen_tls.as_ref().unwrap();
    let ocsp: Vec<_> = t.certs.iter().map(|c| c.ocsp.as_deref()).collect();
    assert_eq!(ocsp, [None, Some(Path::new("b.ocsp"))]);
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

#[test]
fn the_sandbox_is_on_unless_turned_off() {
    assert!(load(ROUTE).unwrap().sandbox);
    assert!(!load(&format!("sandbox = false\n{ROUTE}")).unwrap().sandbox);
    refused(
        &format!("sandbox = \"maybe\"\n{ROUTE}"),
        None,
        None,
        "failed to parse: invalid type: string \"maybe\", expected a boolean for key `sandbox`",
    );
}

// ---------------------------------------------------------------------------
// The file itself

#[test]
fn a_missing_file_names_the_file() {
    let e = load_with_env(
        Path::new("/nonexistent/tls-sidecar.toml"),
        Some(HashMap::new()),
    )
    .unwrap_err();
    assert_eq!(e.file, Path::new("/nonexistent/tls-sidecar.toml"));
    assert_eq!((e.route, e.key), (None, None));
    assert!(matches!(e.problem, Problem::Read(_)));
}

#[test]
fn a_toml_syntax_error_names_the_file_and_the_line() {
    refused(
        &format!("{ROUTE}connect_timeout = [\n"),
        None,
        None,
        "failed to parse: TOML parse error at line 5",
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
    assert_eq!(
        the_connect_tls(&t).genesys,
        [
            "tls=1 → TLS",
            "tls-target-name-check=host → verify = \"full\""
        ]
    );
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

// ---------------------------------------------------------------------------
// PROXY protocol and the CONNECT proxy

#[test]
fn proxy_protocol_accept_and_via_are_off_by_default() {
    let r = load(ROUTE).unwrap();
    let r = the_route(&r);
    assert_eq!(
        (r.proxy_protocol, r.accept_proxy_protocol, &r.via),
        (None, false, &None)
    );
}

#[test]
fn proxy_protocol_accept_and_via_are_read() {
    let c = load(&format!(
        "{ROUTE}proxy_protocol = \"v2\"\naccept_proxy_protocol = true\nvia = \"http://proxy.example:3128\"\nvia_credentials = \"/etc/tls-sidecar/proxy.cred\"\n"
    ))
    .unwrap();
    let r = the_route(&c);
    assert_eq!(r.proxy_protocol, Some(ProxyProtocol::V2));
    assert!(r.accept_proxy_protocol);
    assert_eq!(
        r.via,
        Some(Via {
            proxy: Upstream {
                host: "proxy.example".into(),
                port: 3128
            },
            credentials: Some("/etc/tls-sidecar/proxy.cred".into()),
        })
    );
    assert_eq!(
        r.via.as_ref().unwrap().to_string(),
        "http://proxy.example:3128"
    );
    let c = load(&format!(
        "{ROUTE}proxy_protocol = \"v1\"\nvia = \"http://[::1]:3128/\"\n"
    ))
    .unwrap();
    let r = the_route(&c);
    assert_eq!(r.proxy_protocol, Some(ProxyProtocol::V1));
    assert_eq!(r.via.as_ref().unwrap().to_string(), "http://[::1]:3128");
}

#[test]
fn an_unknown_proxy_protocol_version_is_refused() {
    refused(
        &format!("{ROUTE}proxy_protocol = \"v3\"\n"),
        Some("r"),
        Some("proxy_protocol"),
        "unknown PROXY protocol version \"v3\": use \"v1\" or \"v2\"",
    );
}

#[test]
fn accept_proxy_protocol_that_is_not_a_boolean_is_refused() {
    refused(
        &format!("{ROUTE}accept_proxy_protocol = \"maybe\"\n"),
        Some("r"),
        Some("accept_proxy_protocol"),
        "invalid type",
    );
}

#[test]
fn a_via_that_is_not_http_is_refused() {
    refused(
        &format!("{ROUTE}via = \"https://proxy.example:3128\"\n"),
        Some("r"),
        Some("via"),
        "\"https://proxy.example:3128\" is not http://host:port (an HTTP CONNECT proxy)",
    );
    refused(
        &format!("{ROUTE}via = \"proxy.example:3128\"\n"),
        Some("r"),
        Some("via"),
        "\"proxy.example:3128\" is not http://host:port (an HTTP CONNECT proxy)",
    );
}

#[test]
fn a_via_without_a_port_or_with_a_path_is_refused() {
    refused(
        &format!("{ROUTE}via = \"http://proxy.example\"\n"),
        Some("r"),
        Some("via"),
        "\"http://proxy.example\" is not http://host:port: ",
    );
    refused(
        &format!("{ROUTE}via = \"http://proxy.example:3128/x\"\n"),
        Some("r"),
        Some("via"),
        "\"http://proxy.example:3128/x\" is not http://host:port: ",
    );
}

#[test]
fn credentials_in_the_via_url_are_refused_without_repeating_them() {
    let text = format!("{ROUTE}via = \"http://gms:s3cret@proxy.example:3128\"\n");
    refused(
        &text,
        Some("r"),
        Some("via"),
        "credentials do not go in the URL: put user:password in a file named by via_credentials",
    );
    assert!(!load(&text).unwrap_err().to_string().contains("s3cret"));
}

#[test]
fn via_credentials_without_via_are_refused() {
    refused(
        &format!("{ROUTE}via_credentials = \"/etc/p\"\n"),
        Some("r"),
        Some("via_credentials"),
        "proxy credentials need a proxy: via = \"http://host:port\"",
    );
}

#[test]
fn kernel_tls_is_off_unless_set_and_a_route_may_override_the_top_level_choice() {
    let c = load(ROUTE).unwrap();
    assert_eq!(the_route(&c).kernel_tls, KernelTls::Off);
    let c = load(&format!("kernel_tls = \"auto\"\n{ROUTE}")).unwrap();
    assert_eq!(the_route(&c).kernel_tls, KernelTls::Auto);
    let c = load(&format!(
        "kernel_tls = \"auto\"\n{ROUTE}kernel_tls = \"off\"\n"
    ))
    .unwrap();
    assert_eq!(the_route(&c).kernel_tls, KernelTls::Off);
    let c = load_with(ROUTE, &[("TLS_SIDECAR__KERNEL_TLS", "auto")]).unwrap();
    assert_eq!(the_route(&c).kernel_tls, KernelTls::Auto);
}

#[test]
fn kernel_tls_takes_only_auto_or_off_and_the_error_names_the_key() {
    refused(
        &format!("kernel_tls = \"on\"\n{ROUTE}"),
        None,
        Some("kernel_tls"),
        "\"on\" is not one of \"auto\", \"off\"",
    );
    refused(
        &format!("{ROUTE}kernel_tls = \"yes\"\n"),
        Some("r"),
        Some("kernel_tls"),
        "\"yes\" is not one of \"auto\", \"off\"",
    );
}
