//! What a config's PROXY keys risk, told once when it is built: a route
//! that believes a PROXY header from anyone off this host, and a route that
//! sends one to a listener of the same config that does not take it.
//! `plan` adds these to its warnings; they read the config alone.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::config::Config;
use crate::tls::material::Warning;

/// Routes that accept a PROXY header from anyone on a listener others than
/// this host can reach: any of them may name any client it likes.
pub fn open_warnings(config: &Config) -> Vec<Warning> {
    config
        .routes
        .iter()
        .filter(|r| {
            r.accept_proxy_protocol
                && r.accept_proxy_protocol_from.is_none()
                && !r.listen.ip().is_loopback()
        })
        .map(|r| Warning {
            route: Some(r.name.clone()),
            message: format!(
                "accept_proxy_protocol = true on {} trusts a PROXY header from anyone who reaches it: name the load balancers with accept_proxy_protocol_from = [\"10.0.0.0/8\", …]",
                r.listen
            ),
        })
        .collect()
}

/// Routes that send a PROXY header to a listener of this same config that
/// does not accept one: that route would take the header for its client's
/// first bytes (a TLS listener fails the handshake, a plain one relays it).
/// Only IP literals and `localhost` are matched; names are not resolved.
pub fn self_warnings(config: &Config) -> Vec<Warning> {
    let mut out = Vec::new();
    for r in config.routes.iter().filter(|r| r.proxy_protocol.is_some()) {
        // Through a proxy, the connect entries are the proxy's to reach.
        if r.via.is_some() {
            continue;
        }
        for up in &r.connect {
            let ips: Vec<IpAddr> = match up.host.parse::<IpAddr>() {
                Ok(ip) => vec![ip],
                Err(_) if up.host.eq_ignore_ascii_case("localhost") => {
                    vec![Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()]
                }
                Err(_) => continue,
            };
            let target = config.routes.iter().find(|t| {
                t.listen.port() == up.port
                    && (ips.contains(&t.listen.ip())
                        // A wildcard listener surely has the loopback
                        // addresses; other addresses may not be this host's.
                        || (t.listen.ip().is_unspecified() && ips.iter().any(|i| i.is_loopback())))
            });
            if let Some(t) = target.filter(|t| !t.accept_proxy_protocol) {
                out.push(Warning {
                    route: Some(r.name.clone()),
                    message: format!(
                        "proxy_protocol = \"{}\" sends a PROXY header to {up}, which is route \"{}\" of this config, and that route has accept_proxy_protocol = false: it will take the header for the client's data{}",
                        r.proxy_protocol.map_or("", |p| p.as_str()),
                        t.name,
                        if t.listen_tls.is_some() { " and fail the TLS handshake" } else { "" }
                    ),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        crate::config::load_str(
            std::path::Path::new("t.toml"),
            text,
            Some(Default::default()),
        )
        .unwrap()
    }

    const TLS_IN: &str =
        "[[route]]\nname = \"in\"\nlisten = \"0.0.0.0:7443\"\nconnect = [\"127.0.0.1:8080\"]\n";

    #[test]
    fn sending_a_header_to_our_own_listener_that_does_not_accept_one_is_warned_about() {
        let c = config(&format!(
            "{TLS_IN}[route.listen_tls]\ncert = \"c\"\nkey = \"k\"\n[[route]]\nname = \"out\"\nlisten = \"127.0.0.1:7001\"\nconnect = [\"localhost:7443\"]\nproxy_protocol = \"v1\"\n"
        ));
        let w = self_warnings(&c);
        assert_eq!(w.len(), 1);
        assert_eq!(
            w[0].to_string(),
            "route \"out\": proxy_protocol = \"v1\" sends a PROXY header to localhost:7443, which is route \"in\" of this config, and that route has accept_proxy_protocol = false: it will take the header for the client's data and fail the TLS handshake"
        );
    }

    #[test]
    fn no_warning_when_our_listener_accepts_the_header_or_the_upstream_is_elsewhere() {
        let accepting = format!(
            "{TLS_IN}accept_proxy_protocol = true\n[[route]]\nname = \"out\"\nlisten = \"127.0.0.1:7001\"\nconnect = [\"127.0.0.1:7443\"]\nproxy_protocol = \"v2\"\n"
        );
        assert_eq!(self_warnings(&config(&accepting)), vec![]);
        let elsewhere = format!(
            "{TLS_IN}[[route]]\nname = \"out\"\nlisten = \"127.0.0.1:7001\"\nconnect = [\"192.0.2.1:7443\", \"gms.example:7443\"]\nproxy_protocol = \"v2\"\n"
        );
        assert_eq!(self_warnings(&config(&elsewhere)), vec![]);
    }

    #[test]
    fn accepting_a_header_from_anyone_off_loopback_is_warned_about() {
        let open = format!("{TLS_IN}accept_proxy_protocol = true\n");
        let w = open_warnings(&config(&open));
        assert_eq!(w.len(), 1);
        assert_eq!(
            w[0].to_string(),
            "route \"in\": accept_proxy_protocol = true on 0.0.0.0:7443 trusts a PROXY header from anyone who reaches it: name the load balancers with accept_proxy_protocol_from = [\"10.0.0.0/8\", …]"
        );
        let listed = format!("{open}accept_proxy_protocol_from = [\"10.0.0.0/8\"]\n");
        assert_eq!(open_warnings(&config(&listed)), vec![]);
        let loopback = "[[route]]\nname = \"lo\"\nlisten = \"127.0.0.1:7443\"\nconnect = [\"127.0.0.1:8080\"]\naccept_proxy_protocol = true\n";
        assert_eq!(open_warnings(&config(loopback)), vec![]);
    }
}
