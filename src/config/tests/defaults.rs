//! Defaults and their resolution, top-level settings (the sandbox among
//! them), timeouts and limits, `[admin]` and `[log]`.

use super::*;

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
            level: LogLevel::Info,
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
            cn_fallback: false,
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
            level: LogLevel::Debug,
            format: LogFormat::Json
        }
    );
}

#[test]
fn the_sandbox_is_on_unless_turned_off() {
    assert!(load(ROUTE).unwrap().sandbox);
    assert!(!load(&format!("sandbox = false\n{ROUTE}")).unwrap().sandbox);
    refused(
        &format!("sandbox = \"maybe\"\n{ROUTE}"),
        None,
        Some("sandbox"),
        "failed to parse: invalid type: string \"maybe\", expected a boolean",
    );
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
        "failed to parse: \"loud\" is not one of \"error\", \"warn\", \"info\", \"debug\", \"trace\"",
    );
    refused(
        &format!("[log]\nformat = \"xml\"\n{ROUTE}"),
        None,
        Some("log.format"),
        "failed to parse: \"xml\" is not one of \"text\", \"json\"",
    );
}
