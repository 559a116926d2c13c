//! Built-in upgrade profiles, written as data in the same steps a route's
//! own `script` uses.

use super::script::{Matcher, Script, Step};

/// Every built-in profile name.
pub const BUILTIN: &[&str] = &["postgres", "smtp", "pop3", "imap", "ftp", "ldap"];

/// PostgreSQL's SSLRequest: length 8, code 80877103.
pub const PG_SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
/// PostgreSQL's GSSENCRequest: length 8, code 80877104.
pub const PG_GSSENC_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30];

/// RFC 4511 ExtendedRequest { messageID 1, requestName 1.3.6.1.4.1.1466.20037 }.
pub const LDAP_STARTTLS: &[u8] = b"\x30\x1d\x02\x01\x01\x77\x18\x80\x161.3.6.1.4.1.1466.20037";

fn line(prefix: &str, multiline: bool, relay: bool) -> Step {
    Step::Expect {
        matcher: Matcher::Line {
            prefix: prefix.as_bytes().to_vec(),
            multiline,
            skip: None,
        },
        relay,
    }
}

fn send(s: &str) -> Step {
    Step::Send(s.as_bytes().to_vec())
}

/// The built-in profile `name`; `hostname` is what the sidecar calls itself
/// where the protocol asks (SMTP EHLO).
pub fn builtin(name: &str, hostname: &str) -> Option<Script> {
    let steps = match name {
        // The local side is plain: a client's own SSLRequest or GSSENCRequest
        // is answered "N" (as many times as it asks); whatever else it sends
        // first (the StartupMessage) is kept for after TLS. Upstream: our
        // SSLRequest, then "S" to go on, "N" is a refusal.
        "postgres" => vec![
            Step::ClientExpect {
                patterns: vec![PG_SSL_REQUEST.to_vec(), PG_GSSENC_REQUEST.to_vec()],
                answer: b"N".to_vec(),
                optional: true,
                repeat: true,
            },
            Step::Send(PG_SSL_REQUEST.to_vec()),
            Step::Expect {
                matcher: Matcher::Bytes {
                    bytes: b"S".to_vec(),
                    refuse: Some(b"N".to_vec()),
                },
                relay: false,
            },
        ],
        // RFC 3207: the client sees the server's greeting; its own EHLO goes
        // through TLS.
        "smtp" => vec![
            line("220", true, true),
            send(&format!("EHLO {hostname}\r\n")),
            line("250", true, false),
            send("STARTTLS\r\n"),
            line("220", false, false),
        ],
        // RFC 2595.
        "pop3" => vec![
            line("+OK", false, true),
            send("STLS\r\n"),
            line("+OK", false, false),
        ],
        "imap" => vec![
            line("* OK", false, true),
            send("a001 STARTTLS\r\n"),
            Step::Expect {
                matcher: Matcher::Line {
                    prefix: b"a001 OK".to_vec(),
                    multiline: false,
                    skip: Some(b"* ".to_vec()),
                },
                relay: false,
            },
        ],
        // RFC 4217 (the control connection).
        "ftp" => vec![
            line("220", true, true),
            send("AUTH TLS\r\n"),
            line("234", false, false),
        ],
        "ldap" => vec![
            Step::Send(LDAP_STARTTLS.to_vec()),
            Step::Expect {
                matcher: Matcher::LdapSuccess,
                relay: false,
            },
        ],
        _ => return None,
    };
    Some(Script { steps })
}
