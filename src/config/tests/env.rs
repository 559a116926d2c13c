//! Environment overrides (`TLS_SIDECAR__…`), given as an explicit map.

use super::*;

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
        Some("shutdown_grase"),
        "unknown field `shutdown_grase`",
    );
}

#[test]
fn a_word_from_the_environment_is_read_into_its_enum() {
    let c = load_with(
        ROUTE,
        &[
            ("TLS_SIDECAR__LOG__LEVEL", "debug"),
            ("TLS_SIDECAR__LOG__FORMAT", "json"),
            ("TLS_SIDECAR__KERNEL_TLS", "auto"),
        ],
    )
    .unwrap();
    assert_eq!(
        c.log,
        Log {
            level: LogLevel::Debug,
            format: LogFormat::Json
        }
    );
    assert_eq!(the_route(&c).kernel_tls, KernelTls::Auto);
}

#[test]
fn an_unknown_word_from_the_environment_is_refused_with_the_accepted_ones() {
    refused_err(
        load_with(ROUTE, &[("TLS_SIDECAR__KERNEL_TLS", "on")]),
        "TLS_SIDECAR__KERNEL_TLS=on",
        None,
        Some("kernel_tls"),
        "\"on\" is not one of \"auto\", \"off\"",
    );
    refused_err(
        load_with(ROUTE, &[("TLS_SIDECAR__LOG__LEVEL", "1")]),
        "TLS_SIDECAR__LOG__LEVEL=1",
        None,
        Some("log.level"),
        "\"1\" is not one of \"error\", \"warn\", \"info\", \"debug\", \"trace\"",
    );
}
