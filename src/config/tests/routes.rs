//! A route's own keys: names, listen addresses, upstreams, PROXY protocol,
//! the CONNECT proxy and kernel TLS.

use super::*;

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
        "failed to parse: \"v3\" is not one of \"v1\", \"v2\"",
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
        "\"https://proxy.example:3128\": a proxy reached over TLS is not supported: use http://host:port",
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
fn credentials_in_an_https_or_upper_case_via_url_are_never_repeated() {
    for url in [
        "https://user:s3cret@proxy:3128",
        "HTTP://user:s3cret@proxy:3128",
        "HTTPS://user:s3cret@proxy:3128/",
        "user:s3cret@proxy:3128",
        "http://user:s3cret@proxy",
        "socks5://user:s3cret@proxy:1080",
    ] {
        let text = format!("{ROUTE}via = \"{url}\"\n");
        let e = load(&text).unwrap_err();
        let shown = e.to_string();
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("***@proxy"), "{shown}");
        assert!(
            shown.contains("credentials do not go in the URL"),
            "{shown}"
        );
        assert_eq!(e.key.as_deref(), Some("via"), "{shown}");
    }
}

#[test]
fn an_upper_case_http_scheme_is_http() {
    let c = load(&format!("{ROUTE}via = \"HTTP://proxy.example:3128\"\n")).unwrap();
    assert_eq!(
        the_route(&c).via.as_ref().unwrap().to_string(),
        "http://proxy.example:3128"
    );
}

#[test]
fn a_syntax_error_on_the_via_line_does_not_quote_its_password() {
    let text = format!("{ROUTE}via = \"http://user:s3cret@proxy:3128\" oops\n");
    let shown = load(&text).unwrap_err().to_string();
    assert!(!shown.contains("s3cret"), "{shown}");
    assert!(shown.contains("***@proxy"), "{shown}");
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

#[test]
fn accept_proxy_protocol_from_is_read_as_address_blocks() {
    let c = load(&format!(
        "{ROUTE}accept_proxy_protocol = true\naccept_proxy_protocol_from = [\"10.0.0.0/8\", \"192.0.2.7/32\", \"::1/128\", \"198.51.100.1\"]\n"
    ))
    .unwrap();
    let from = the_route(&c).accept_proxy_protocol_from.clone().unwrap();
    let shown: Vec<String> = from.iter().map(|c| c.to_string()).collect();
    assert_eq!(
        shown,
        ["10.0.0.0/8", "192.0.2.7/32", "::1/128", "198.51.100.1/32"]
    );
    let inside = |ip: &str| from.iter().any(|c| c.contains(ip.parse().unwrap()));
    assert!(inside("10.255.0.1"));
    assert!(inside("192.0.2.7"));
    assert!(inside("::1"));
    assert!(
        inside("::ffff:10.1.2.3"),
        "an IPv4-mapped address is its IPv4 form"
    );
    assert!(!inside("11.0.0.1"));
    assert!(!inside("192.0.2.8"));
    assert!(!inside("::2"));
    assert!(!inside("127.0.0.1"));
    assert_eq!(
        the_route(&load(ROUTE).unwrap()).accept_proxy_protocol_from,
        None
    );
}

#[test]
fn accept_proxy_protocol_from_needs_accept_proxy_protocol_and_valid_blocks() {
    let key = Some("accept_proxy_protocol_from");
    let needs = "it names who may send a PROXY header, and this route accepts none: set accept_proxy_protocol = true";
    refused(
        &format!("{ROUTE}accept_proxy_protocol_from = [\"10.0.0.0/8\"]\n"),
        Some("r"),
        key,
        needs,
    );
    refused(
        &format!(
            "{ROUTE}accept_proxy_protocol = false\naccept_proxy_protocol_from = [\"10.0.0.0/8\"]\n"
        ),
        Some("r"),
        key,
        needs,
    );
    let on = format!("{ROUTE}accept_proxy_protocol = true\n");
    refused(
        &format!("{on}accept_proxy_protocol_from = []\n"),
        Some("r"),
        key,
        "the list is empty",
    );
    for (block, words) in [
        (
            "10.0.0.0/33",
            "\"10.0.0.0/33\": the prefix length must be 0 to 32",
        ),
        ("::1/129", "\"::1/129\": the prefix length must be 0 to 128"),
        ("10.0.0.0/", "the prefix length must be 0 to 32"),
        (
            "lb.example/32",
            "\"lb.example/32\" is not an address block such as \"10.0.0.0/8\"",
        ),
        (
            "10.1.2.3/8",
            "\"10.1.2.3/8\" has bits set past its /8: did you mean \"10.0.0.0/8\"?",
        ),
    ] {
        refused(
            &format!("{on}accept_proxy_protocol_from = [\"192.0.2.7/32\", \"{block}\"]\n"),
            Some("r"),
            Some("accept_proxy_protocol_from[1]"),
            words,
        );
    }
}
