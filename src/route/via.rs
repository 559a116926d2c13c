//! Upstreams through an HTTP forward proxy: a CONNECT request
//! (RFC 9110 section 9.3.6), a 2xx answer, then the route's PROXY header,
//! upgrade exchange and TLS run through the tunnel as over a direct
//! connection (the TLS name is still the upstream's). A refusal (407, 403,
//! 5xx) or a broken answer is a connect error with reason `proxy_refused`,
//! and failover moves on to the next upstream through the same proxy.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::connect::connect_one;
use super::head::{read_head, Fed, HeadError};
use crate::config::{ConfigError, Problem, Upstream, Via};
use crate::tls::material::Loader;

/// The most bytes of an answer's head we read before giving up on it.
pub const MAX_ANSWER: usize = 8192;

/// A route's proxy, built: where it is and the `Proxy-Authorization`
/// value read from `via_credentials`.
#[derive(Debug)]
pub struct ViaPlan {
    pub via: Via,
    auth: Option<Secret>,
}

/// A header value that carries a password: `Debug` shows nothing of it.
struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Reads the route's `via_credentials` file (`user:password`, one line).
/// A file that group or others can read is warned about, or refused with
/// `strict_key_permissions`, as a private key is.
pub fn build(loader: &mut Loader<'_>, via: &Via) -> Result<ViaPlan, ConfigError> {
    let auth = match &via.credentials {
        None => None,
        Some(path) => {
            let ctx = &loader.ctx;
            let text = std::fs::read_to_string(path).map_err(|source| {
                let mut e = ctx.invalid("via_credentials", "");
                e.problem = Problem::File {
                    path: path.clone(),
                    source,
                };
                e
            })?;
            let line = text.strip_suffix('\n').unwrap_or(&text);
            let line = line.strip_suffix('\r').unwrap_or(line);
            // The words never repeat the file's content.
            let bad = |why: &str| {
                ctx.invalid(
                    "via_credentials",
                    format!("{} does not hold user:password: {why}", path.display()),
                )
            };
            match line.split_once(':') {
                None => return Err(bad("there is no colon")),
                Some(("", _)) => return Err(bad("the user is empty")),
                Some(_) if line.contains('\n') => return Err(bad("it has more than one line")),
                Some(_) if line.bytes().any(|b| b.is_ascii_control()) => {
                    return Err(bad("it has a control character"))
                }
                Some(_) => {}
            }
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(path).map_or(0, |m| m.permissions().mode() & 0o777);
                if mode & 0o077 != 0 {
                    let msg = format!(
                        "{} is readable by group or others (mode {mode:04o}); make it 0600 or 0400 for the sidecar's user",
                        path.display()
                    );
                    if loader.strict_key_permissions {
                        return Err(loader.ctx.invalid(
                            "via_credentials",
                            format!("{msg} (strict_key_permissions = true)"),
                        ));
                    }
                    loader.warn(format!("key `via_credentials`: {msg}"));
                }
            }
            let b64 = base64::engine::general_purpose::STANDARD.encode(line);
            Some(Secret(format!("Basic {b64}")))
        }
    };
    Ok(ViaPlan {
        via: via.clone(),
        auth,
    })
}

/// Why the proxy gave no tunnel. Carried inside the `io::Error` of a
/// connect attempt; [`refused`] finds it there.
#[derive(Debug, thiserror::Error)]
pub enum ViaError {
    #[error("the proxy {proxy} refused CONNECT {target}: HTTP {status} {phrase}{hint}", hint = status_hint(*.status))]
    Refused {
        proxy: String,
        target: String,
        status: u16,
        phrase: String,
    },
    #[error("the proxy {proxy} gave a broken answer to CONNECT {target}: {why}")]
    Broken {
        proxy: String,
        target: String,
        why: String,
    },
}

fn status_hint(status: u16) -> &'static str {
    match status {
        407 => " (proxy authentication required: check via_credentials)",
        403 => " (the proxy does not allow this destination)",
        _ => "",
    }
}

/// Is this connect error the proxy's refusal (reason `proxy_refused`)?
pub fn refused(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|e| e.is::<ViaError>())
}

/// Opens a tunnel to `target` through the proxy, all within `timeout`
/// (connect, request, answer). The address is the proxy's.
pub async fn tunnel(
    plan: &ViaPlan,
    target: &Upstream,
    timeout: Duration,
) -> io::Result<(TcpStream, SocketAddr)> {
    let (mut tcp, addr) = connect_one(&plan.via.proxy, timeout).await.map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("failed to reach the proxy {}: {e}", plan.via),
        )
    })?;
    let request = request(target, plan.auth.as_ref().map(|s| s.0.as_str()));
    let exchange = async {
        tcp.write_all(&request).await?;
        let mut decoder = AnswerDecoder::default();
        read_head(&mut tcp, MAX_ANSWER, |b| decoder.feed(b)).await
    };
    let broken = |why: String| {
        io::Error::other(ViaError::Broken {
            proxy: plan.via.to_string(),
            target: target.to_string(),
            why,
        })
    };
    match tokio::time::timeout(timeout, exchange).await {
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "the proxy {} did not answer CONNECT {target} within {}",
                plan.via,
                humantime::format_duration(timeout)
            ),
        )),
        Ok(Err(HeadError::Io(e))) => Err(e),
        Ok(Err(HeadError::Closed)) => Err(broken("it closed the connection".into())),
        Ok(Err(HeadError::Bad(why))) => Err(broken(why.into())),
        Ok(Ok(Answer::Established)) => Ok((tcp, addr)),
        Ok(Ok(Answer::Refused { status, phrase })) => Err(io::Error::other(ViaError::Refused {
            proxy: plan.via.to_string(),
            target: target.to_string(),
            status,
            phrase,
        })),
    }
}

/// The CONNECT request for `target`.
fn request(target: &Upstream, auth: Option<&str>) -> Vec<u8> {
    let mut r = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(a) = auth {
        r.push_str("Proxy-Authorization: ");
        r.push_str(a);
        r.push_str("\r\n");
    }
    r.push_str("\r\n");
    r.into_bytes()
}

/// The proxy's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// 2xx: the tunnel is open after the answer's head.
    Established,
    /// Any other status, with the proxy's reason phrase (printable ASCII,
    /// at most 80 characters).
    Refused { status: u16, phrase: String },
}

/// Reads an HTTP/1.x answer head, sans-io: fed the bytes that arrive, it
/// claims the head and nothing after it (a 2xx head ends where the
/// tunnel's bytes, perhaps the upstream's banner, begin).
#[derive(Debug, Default)]
pub struct AnswerDecoder {
    buf: Vec<u8>,
}

const VERSION: &[u8] = b"HTTP/1.";

impl AnswerDecoder {
    pub fn feed(&mut self, data: &[u8]) -> Result<Fed<Answer>, &'static str> {
        let before = self.buf.len();
        let take = data.len().min(MAX_ANSWER + 1 - before.min(MAX_ANSWER + 1));
        self.buf.extend_from_slice(&data[..take]);
        let b = &self.buf;
        if !VERSION.starts_with(&b[..b.len().min(VERSION.len())]) {
            return Err("it is not an HTTP/1 answer");
        }
        // The status line decides a refusal at once; a 2xx needs the whole
        // head, to know where the tunnel begins.
        let Some(eol) = find(b, b"\r\n") else {
            return if b.len() > MAX_ANSWER {
                Err("the answer head is longer than 8192 bytes")
            } else {
                Ok(Fed::NeedMore)
            };
        };
        let line = &b[..eol];
        let status = match line.get(VERSION.len()..) {
            Some([v, b' ', d0, d1, d2, rest @ ..])
                if v.is_ascii_digit()
                    && [d0, d1, d2].iter().all(|d| d.is_ascii_digit())
                    && (rest.is_empty() || rest[0] == b' ') =>
            {
                (u16::from(*d0 - b'0')) * 100 + u16::from(*d1 - b'0') * 10 + u16::from(*d2 - b'0')
            }
            _ => return Err("the status line is not \"HTTP/1.x NNN reason\""),
        };
        if !(200..300).contains(&status) {
            let phrase: String = line[VERSION.len() + 5..]
                .iter()
                .skip(1)
                .take(80)
                .map(|&c| {
                    if (0x20..0x7f).contains(&c) {
                        c as char
                    } else {
                        '?'
                    }
                })
                .collect();
            let consumed = (eol + 2).saturating_sub(before).min(data.len());
            return Ok(Fed::Done(Answer::Refused { status, phrase }, consumed));
        }
        match find(b, b"\r\n\r\n") {
            Some(end) => Ok(Fed::Done(Answer::Established, end + 4 - before)),
            None if b.len() > MAX_ANSWER => Err("the answer head is longer than 8192 bytes"),
            None => Ok(Fed::NeedMore),
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `bytes` in two pieces split at every point, and a byte at a
    /// time; each way must give the same answer and claim the same bytes.
    #[track_caller]
    fn every_split(bytes: &[u8]) -> Result<(Answer, usize), &'static str> {
        let run = |chunks: &[&[u8]]| {
            let mut d = AnswerDecoder::default();
            let mut offset = 0;
            for c in chunks {
                match d.feed(c)? {
                    Fed::NeedMore => offset += c.len(),
                    Fed::Done(a, used) => return Ok((a, offset + used)),
                }
            }
            panic!("still wants more")
        };
        let whole = run(&[bytes]);
        for i in 0..=bytes.len() {
            assert_eq!(run(&[&bytes[..i], &bytes[i..]]), whole, "split at {i}");
        }
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(run(&singles), whole);
        whole
    }

    #[test]
    fn a_200_from_tinyproxy_opens_the_tunnel_and_the_banner_after_it_is_not_taken() {
        let head = b"HTTP/1.0 200 Connection established\r\nProxy-agent: tinyproxy/1.11.1\r\n\r\n";
        let bytes = [head.as_slice(), b"220 smtp.example ESMTP\r\n"].concat();
        assert_eq!(every_split(&bytes), Ok((Answer::Established, head.len())));
    }

    #[test]
    fn a_200_from_squid_without_headers_opens_the_tunnel() {
        let head = b"HTTP/1.1 200 Connection established\r\n\r\n";
        assert_eq!(every_split(head), Ok((Answer::Established, head.len())));
    }

    #[test]
    fn a_407_is_refused_with_its_status_and_phrase() {
        let bytes = b"HTTP/1.0 407 Proxy Authentication Required\r\nServer: tinyproxy/1.11.1\r\nContent-Type: text/html\r\n\r\n<html>";
        let (a, used) = every_split(bytes).unwrap();
        assert_eq!(
            a,
            Answer::Refused {
                status: 407,
                phrase: "Proxy Authentication Required".into()
            }
        );
        assert_eq!(
            used,
            b"HTTP/1.0 407 Proxy Authentication Required\r\n".len()
        );
    }

    #[test]
    fn a_403_and_a_503_are_refused() {
        assert_eq!(
            every_split(b"HTTP/1.1 403 Forbidden\r\n\r\n").unwrap().0,
            Answer::Refused {
                status: 403,
                phrase: "Forbidden".into()
            }
        );
        assert_eq!(
            every_split(b"HTTP/1.1 503\r\n\r\n").unwrap().0,
            Answer::Refused {
                status: 503,
                phrase: String::new()
            }
        );
    }

    #[test]
    fn an_answer_that_is_not_http_is_broken_at_its_first_byte() {
        let mut d = AnswerDecoder::default();
        assert_eq!(d.feed(b"S"), Err("it is not an HTTP/1 answer"));
        assert_eq!(
            every_split(b"SSH-2.0-OpenSSH_9.2\r\n"),
            Err("it is not an HTTP/1 answer")
        );
    }

    #[test]
    fn a_bad_status_line_is_broken() {
        for bad in [
            &b"HTTP/1.1 20 OK\r\n\r\n"[..],
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/1.1 abc OK\r\n\r\n",
        ] {
            assert_eq!(
                every_split(bad),
                Err("the status line is not \"HTTP/1.x NNN reason\"")
            );
        }
    }

    #[test]
    fn an_endless_answer_head_is_broken_at_the_bound() {
        let mut d = AnswerDecoder::default();
        let mut long = b"HTTP/1.1 200 OK\r\n".to_vec();
        long.extend(std::iter::repeat_n(b'x', MAX_ANSWER));
        assert_eq!(
            d.feed(&long),
            Err("the answer head is longer than 8192 bytes")
        );
    }

    #[test]
    fn the_request_names_the_target_and_carries_the_credentials() {
        let t = Upstream {
            host: "::1".into(),
            port: 7022,
        };
        assert_eq!(
            request(&t, Some("Basic dTpw")),
            b"CONNECT [::1]:7022 HTTP/1.1\r\nHost: [::1]:7022\r\nProxy-Authorization: Basic dTpw\r\n\r\n"
        );
        let t = Upstream {
            host: "gms.example".into(),
            port: 443,
        };
        assert_eq!(
            request(&t, None),
            b"CONNECT gms.example:443 HTTP/1.1\r\nHost: gms.example:443\r\n\r\n"
        );
    }

    /// Builds `via` with credentials `content` (mode `mode`); the error's
    /// key and words, or the warnings.
    fn build_with(
        content: Option<&str>,
        mode: u32,
        strict: bool,
    ) -> Result<Vec<String>, (String, String)> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("proxy.cred");
        if let Some(c) = content {
            std::fs::write(&path, c).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        let via = Via {
            proxy: Upstream {
                host: "proxy.example".into(),
                port: 3128,
            },
            credentials: Some(path),
        };
        let mut warnings = Vec::new();
        let mut loader = Loader {
            ctx: crate::config::RouteCtx {
                file: std::path::Path::new("t.toml"),
                route: "r",
            },
            warnings: &mut warnings,
            strict_key_permissions: strict,
        };
        match build(&mut loader, &via) {
            Ok(p) => {
                assert_eq!(format!("{:?}", p.auth), "Some(Secret(..))");
                Ok(warnings.iter().map(|w| w.to_string()).collect())
            }
            Err(e) => Err((e.key.clone().unwrap(), e.to_string())),
        }
    }

    #[test]
    fn credentials_are_read_from_their_file_and_made_a_basic_header() {
        assert_eq!(build_with(Some("gms:s3cret\n"), 0o600, true), Ok(vec![]));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c");
        std::fs::write(&path, "gms:pa:ss\r\n").unwrap();
        let via = Via {
            proxy: Upstream {
                host: "p".into(),
                port: 1,
            },
            credentials: Some(path),
        };
        let mut w = Vec::new();
        let mut loader = Loader {
            ctx: crate::config::RouteCtx {
                file: std::path::Path::new("t.toml"),
                route: "r",
            },
            warnings: &mut w,
            strict_key_permissions: false,
        };
        let plan = build(&mut loader, &via).unwrap();
        // base64("gms:pa:ss"): the password may hold colons; CRLF is not kept.
        assert_eq!(plan.auth.unwrap().0, "Basic Z21zOnBhOnNz");
    }

    #[test]
    fn a_missing_or_malformed_credentials_file_is_refused_without_its_content() {
        let (key, e) = build_with(None, 0o600, false).unwrap_err();
        assert_eq!(key, "via_credentials");
        assert!(
            e.contains("failed to read") && e.contains("proxy.cred"),
            "{e}"
        );
        let (_, e) = build_with(Some("s3cret\n"), 0o600, false).unwrap_err();
        assert!(
            e.contains("does not hold user:password: there is no colon") && !e.contains("s3cret"),
            "{e}"
        );
        let (_, e) = build_with(Some(":s3cret"), 0o600, false).unwrap_err();
        assert!(e.contains("the user is empty"), "{e}");
        let (_, e) = build_with(Some("a:b\nc:d\n"), 0o600, false).unwrap_err();
        assert!(e.contains("more than one line"), "{e}");
    }

    #[test]
    fn a_credentials_file_others_can_read_is_warned_about_or_refused_when_strict() {
        let w = build_with(Some("gms:s3cret"), 0o644, false).unwrap();
        assert_eq!(w.len(), 1);
        assert!(
            w[0].contains("key `via_credentials`") && w[0].contains("(mode 0644)"),
            "{w:?}"
        );
        let (_, e) = build_with(Some("gms:s3cret"), 0o640, true).unwrap_err();
        assert!(e.contains("(strict_key_permissions = true)"), "{e}");
    }

    #[test]
    fn the_secret_never_shows_in_debug() {
        let s = Secret("Basic c2VjcmV0".into());
        assert_eq!(format!("{s:?}"), "Secret(..)");
    }
}
