//! Built-in upgrade profiles, written as data in the same steps a route's
//! own `script` uses.

use super::script::{Matcher, Relay, Script, Step};
use crate::config::Profile;

/// PostgreSQL's SSLRequest: length 8, code 80877103.
pub const PG_SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
/// PostgreSQL's GSSENCRequest: length 8, code 80877104.
pub const PG_GSSENC_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30];

/// RFC 4511 ExtendedRequest { messageID 1, requestName 1.3.6.1.4.1.1466.20037 }.
pub const LDAP_STARTTLS: &[u8] = b"\x30\x1d\x02\x01\x01\x77\x18\x80\x161.3.6.1.4.1.1466.20037";

fn line(prefix: &str, multiline: bool, relay: Relay) -> Step {
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

/// The built-in `profile`; `hostname` is what the sidecar calls itself
/// where the protocol asks (SMTP EHLO).
pub fn builtin(profile: Profile, hostname: &str) -> Script {
    let steps = match profile {
        // The local side is plain: a client's own SSLRequest or GSSENCRequest
        // is answered "N" (as many times as it asks); whatever else it sends
        // first (the StartupMessage) is kept for after TLS. Upstream: our
        // SSLRequest, then "S" to go on, "N" is a refusal.
        Profile::Postgres => vec![
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
                relay: Relay::No,
            },
        ],
        // RFC 3207: the client sees the server's greeting; its own EHLO goes
        // through TLS.
        Profile::Smtp => vec![
            line("220", true, Relay::AsIs),
            send(&format!("EHLO {hostname}\r\n")),
            line("250", true, Relay::No),
            send("STARTTLS\r\n"),
            line("220", false, Relay::No),
        ],
        // RFC 2595.
        Profile::Pop3 => vec![
            line("+OK", false, Relay::AsIs),
            send("STLS\r\n"),
            line("+OK", false, Relay::No),
        ],
        // RFC 3501 6.2.1. The greeting's capabilities describe the plain
        // session (STARTTLS, LOGINDISABLED); the application is on the
        // secured one, so it gets the greeting without them.
        Profile::Imap => vec![
            line("* OK", false, Relay::ImapGreeting),
            send("a001 STARTTLS\r\n"),
            Step::Expect {
                matcher: Matcher::Line {
                    prefix: b"a001 OK".to_vec(),
                    multiline: false,
                    skip: Some(b"* ".to_vec()),
                },
                relay: Relay::No,
            },
        ],
        // RFC 4217 (the control connection).
        Profile::Ftp => vec![
            line("220", true, Relay::AsIs),
            send("AUTH TLS\r\n"),
            line("234", false, Relay::No),
        ],
        Profile::Ldap => vec![
            Step::Send(LDAP_STARTTLS.to_vec()),
            Step::Expect {
                matcher: Matcher::LdapSuccess,
                relay: Relay::No,
            },
        ],
    };
    Script { steps }
}

/// Capabilities of an IMAP server's plain session that are false on the
/// secured one the application is given.
const IMAP_PLAIN_ONLY: &[&[u8]] = &[b"STARTTLS", b"LOGINDISABLED"];

/// An IMAP greeting line (`* OK [CAPABILITY IMAP4rev1 STARTTLS
/// LOGINDISABLED] ready\r\n`) without the plain-session capabilities in its
/// CAPABILITY response code; every other byte as it came. A greeting
/// without that code is returned unchanged.
pub(super) fn imap_greeting(line: &[u8]) -> Vec<u8> {
    const CODE: &[u8] = b"[CAPABILITY ";
    let Some(open) = line
        .windows(CODE.len())
        .position(|w| w.eq_ignore_ascii_case(CODE))
    else {
        return line.to_vec();
    };
    let list_start = open + CODE.len();
    let Some(close) = line[list_start..].iter().position(|&b| b == b']') else {
        return line.to_vec();
    };
    let list = &line[list_start..list_start + close];
    let kept: Vec<&[u8]> = list
        .split(|&b| b == b' ')
        .filter(|cap| {
            !cap.is_empty() && !IMAP_PLAIN_ONLY.iter().any(|p| cap.eq_ignore_ascii_case(p))
        })
        .collect();
    let mut out = Vec::with_capacity(line.len());
    out.extend_from_slice(&line[..list_start]);
    out.extend_from_slice(&kept.join(&b' '));
    out.extend_from_slice(&line[list_start + close..]);
    out
}

#[cfg(test)]
mod tests {
    use super::imap_greeting;

    #[test]
    fn the_imap_greeting_loses_only_its_plain_session_capabilities() {
        let cases: [(&[u8], &[u8]); 6] = [
            (
                b"* OK [CAPABILITY IMAP4rev1 SASL-IR STARTTLS LOGINDISABLED ID] Dovecot ready.\r\n",
                b"* OK [CAPABILITY IMAP4rev1 SASL-IR ID] Dovecot ready.\r\n",
            ),
            (
                b"* OK [capability starttls IMAP4rev1 logindisabled] hi\n",
                b"* OK [capability IMAP4rev1] hi\n",
            ),
            (b"* OK IMAP4rev1 ready\r\n", b"* OK IMAP4rev1 ready\r\n"),
            (
                b"* OK [ALERT] STARTTLS is text here\r\n",
                b"* OK [ALERT] STARTTLS is text here\r\n",
            ),
            (
                b"* OK [CAPABILITY IMAP4rev1 STARTTLSX] hi\r\n",
                b"* OK [CAPABILITY IMAP4rev1 STARTTLSX] hi\r\n",
            ),
            // No closing bracket: not a response code, left alone.
            (
                b"* OK [CAPABILITY IMAP4rev1 STARTTLS\r\n",
                b"* OK [CAPABILITY IMAP4rev1 STARTTLS\r\n",
            ),
        ];
        for (greeting, want) in cases {
            assert_eq!(
                imap_greeting(greeting),
                want,
                "{}",
                String::from_utf8_lossy(greeting)
            );
        }
    }
}
