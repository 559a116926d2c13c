//! Unknown, missing and mistyped keys, and a file that cannot be read or
//! parsed: each named by file, route and key.

use super::*;

// ---------------------------------------------------------------------------
// Unknown keys

#[test]
fn an_unknown_top_level_key_is_an_error() {
    refused(
        &format!("shutdown_grase = \"1s\"\n{ROUTE}"),
        None,
        Some("shutdown_grase"),
        "unknown field `shutdown_grase`, expected one of `shutdown_grace`",
    );
}

#[test]
fn an_unknown_key_in_admin_log_or_defaults_is_an_error() {
    for (table, typo) in [("admin", "lisen"), ("log", "lvl"), ("defaults", "idle")] {
        refused(
            &format!("[{table}]\n{typo} = \"x\"\n{ROUTE}"),
            None,
            Some(&format!("{table}.{typo}")),
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

#[test]
fn a_missing_key_in_a_list_entry_is_named_with_its_entry() {
    refused(
        &listen_tls("certs = [{ cert = \"c\", key = \"k\" }, { key = \"k\" }]"),
        Some("r"),
        Some("listen_tls.certs[1].cert"),
        "missing configuration field \"cert\"",
    );
}

#[test]
fn a_mistyped_value_is_named_once_by_its_dotted_key() {
    let text = connect_tls("resumption = \"maybe\"");
    refused(
        &text,
        Some("r"),
        Some("connect_tls.resumption"),
        "failed to parse: invalid type: string \"maybe\", expected a boolean",
    );
    assert!(!load(&text).unwrap_err().to_string().contains("for key"));
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
