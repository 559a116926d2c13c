//! Who may act on the admin endpoint, read from a request's headers alone:
//! the DNS-rebinding guard (every request's `Host` must be an IP literal,
//! `localhost` or a name in `[admin] hosts`) and the browser guard on
//! `POST /reload` (no `Origin`, no `Sec-Fetch-Site`, no body type a page
//! may send without a CORS preflight).
//!
//! A page on another origin can make a browser send a "simple" request
//! (`fetch(url, {mode: "no-cors", method: "POST"})`, a form) to any
//! address the browser reaches, loopback included; it cannot read the
//! answer, but the request acts. Every such request from a current browser
//! carries `Sec-Fetch-Site`, and a cross-origin one `Origin`; a body type
//! other than the three CORS-safelisted ones forces a preflight, which we
//! never answer. A DNS-rebinding page reaches us under its own name, which
//! the `Host` check refuses.

use hyper::header::{HeaderMap, CONTENT_TYPE, HOST, ORIGIN};

/// Why a request is refused, with the status to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// 421: the `Host` names someone else (or is missing or malformed).
    Host,
    /// 403: the request comes from a browser, or could have.
    Browser(&'static str),
}

impl Refusal {
    pub fn words(self) -> &'static str {
        match self {
            Refusal::Host => "misdirected request: the Host header is not an IP address, localhost or a name in [admin] hosts\n",
            Refusal::Browser(why) => why,
        }
    }
}

/// Is the `Host` header one we answer to? `hosts`: lowercase names.
pub fn host(headers: &HeaderMap, hosts: &[String]) -> Result<(), Refusal> {
    let mut values = headers.get_all(HOST).iter();
    let (Some(v), None) = (values.next(), values.next()) else {
        return Err(Refusal::Host);
    };
    let v = v.to_str().map_err(|_| Refusal::Host)?;
    if allowed_host(v, hosts) {
        Ok(())
    } else {
        Err(Refusal::Host)
    }
}

/// `v`: a `Host` value, `name[:port]` or `[v6][:port]`.
fn allowed_host(v: &str, hosts: &[String]) -> bool {
    let name = match v.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((ip6, port))
                if port.is_empty() || port.strip_prefix(':').is_some_and(valid_port) =>
            {
                return ip6.parse::<std::net::Ipv6Addr>().is_ok();
            }
            _ => return false,
        },
        None => match v.rsplit_once(':') {
            Some((name, port)) if valid_port(port) => name,
            Some(_) => return false,
            None => v,
        },
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    name.parse::<std::net::Ipv4Addr>().is_ok()
        || name.eq_ignore_ascii_case("localhost")
        || hosts.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// `:port`'s digits (an empty port is allowed by RFC 3986's authority).
fn valid_port(p: &str) -> bool {
    p.is_empty() || (p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// May this `POST /reload` act? Not from a browser: no `Origin`, no
/// `Sec-Fetch-*`, and either no body type or `application/json`.
pub fn not_a_browser(headers: &HeaderMap) -> Result<(), Refusal> {
    if headers.contains_key(ORIGIN) {
        return Err(Refusal::Browser(
            "reload refused: the request carries an Origin header (a browser sent it)\n",
        ));
    }
    if headers.keys().any(|k| k.as_str().starts_with("sec-fetch-")) {
        return Err(Refusal::Browser(
            "reload refused: the request carries a Sec-Fetch header (a browser sent it)\n",
        ));
    }
    let mut types = headers.get_all(CONTENT_TYPE).iter();
    match (types.next(), types.next()) {
        (None, _) => Ok(()),
        (Some(t), None) if is_json(t.as_bytes()) => Ok(()),
        _ => Err(Refusal::Browser(
            "reload refused: send no body or Content-Type: application/json (other types are what a web page may send)\n",
        )),
    }
}

/// `application/json`, perhaps with parameters.
fn is_json(t: &[u8]) -> bool {
    let essence = t.split(|&b| b == b';').next().unwrap_or_default();
    essence
        .trim_ascii()
        .eq_ignore_ascii_case(b"application/json")
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                hyper::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn ip_literals_localhost_and_listed_names_are_answered() {
        let hosts = vec!["gms-1.example.com".to_owned()];
        for ok in [
            "127.0.0.1:9464",
            "127.0.0.1",
            "10.1.2.3:80",
            "[::1]:9464",
            "[::1]",
            "localhost:9464",
            "LocalHost",
            "localhost.",
            "gms-1.example.com",
            "GMS-1.Example.Com:9464",
        ] {
            assert_eq!(host(&headers(&[("host", ok)]), &hosts), Ok(()), "{ok}");
        }
    }

    #[test]
    fn other_names_missing_or_doubled_hosts_get_421() {
        let hosts = vec!["gms-1.example.com".to_owned()];
        for bad in [
            "evil.example",
            "evil.example:9464",
            "127.0.0.1.evil.example",
            "localhost.evil.example",
            "gms-1.example.com.evil.example",
            "[::1]x",
            "[evil]:80",
            "::1",
            "127.0.0.1:x",
            "127.0.0.1:123456",
            "",
        ] {
            assert_eq!(
                host(&headers(&[("host", bad)]), &hosts),
                Err(Refusal::Host),
                "{bad}"
            );
        }
        assert_eq!(host(&headers(&[]), &hosts), Err(Refusal::Host));
        let two = headers(&[("host", "127.0.0.1"), ("host", "evil.example")]);
        assert_eq!(host(&two, &hosts), Err(Refusal::Host));
    }

    #[test]
    fn reload_refuses_what_a_browser_sends() {
        for h in [
            vec![("origin", "http://evil.example")],
            vec![("origin", "null")],
            vec![("sec-fetch-site", "cross-site")],
            vec![("sec-fetch-mode", "no-cors")],
            vec![("content-type", "text/plain;charset=UTF-8")],
            vec![("content-type", "application/x-www-form-urlencoded")],
            vec![("content-type", "multipart/form-data; boundary=x")],
            vec![
                ("content-type", "application/json"),
                ("content-type", "text/plain"),
            ],
        ] {
            assert!(not_a_browser(&headers(&h)).is_err(), "{h:?}");
        }
    }

    #[test]
    fn reload_accepts_no_body_type_or_json() {
        for h in [
            vec![],
            vec![("content-length", "0")],
            vec![("content-type", "application/json")],
            vec![("content-type", "Application/JSON; charset=utf-8")],
        ] {
            assert_eq!(not_a_browser(&headers(&h)), Ok(()), "{h:?}");
        }
    }
}
