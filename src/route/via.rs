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

use super::dial::connect_one;
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
///
/// Lines may end in CRLF or a bare LF (RFC 9112 section 2.2 lets a
/// recipient accept one), and interim 1xx answers (`100 Continue`, `103
/// Early Hints`) before the final one are read and skipped (RFC 9110
/// section 15.2); `101` is refused, since no protocol switch can answer
/// CONNECT. The whole, interim answers included, is bounded by
/// [`MAX_ANSWER`].
#[derive(Debug, Default)]
pub struct AnswerDecoder {
    buf: Vec<u8>,
    /// Where the answer being read begins in `buf` (past skipped 1xx).
    start: usize,
}

const VERSION: &[u8] = b"HTTP/1.";
const TOO_LONG: &str = "the answer head is longer than 8192 bytes";

impl AnswerDecoder {
    pub fn feed(&mut self, data: &[u8]) -> Result<Fed<Answer>, &'static str> {
        let before = self.buf.len();
        let take = data.len().min(MAX_ANSWER + 1 - before.min(MAX_ANSWER + 1));
        self.buf.extend_from_slice(&data[..take]);
        loop {
            let b = &self.buf[self.start..];
            if !VERSION.starts_with(&b[..b.len().min(VERSION.len())]) {
                return Err("it is not an HTTP/1 answer");
            }
            // The status line decides a refusal at once; a 2xx needs the
            // whole head, to know where the tunnel begins.
            let Some(eol) = memchr(b, b'\n') else {
                return self.need_more();
            };
            let line = b[..eol].strip_suffix(b"\r").unwrap_or(&b[..eol]);
            let status = status(line)?;
            let at = self.start;
            if !(100..300).contains(&status) || status == 101 {
                let consumed = (at + eol + 1).saturating_sub(before).min(data.len());
                let phrase = phrase(&line[VERSION.len() + 5..]);
                return Ok(Fed::Done(Answer::Refused { status, phrase }, consumed));
            }
            let Some(end) = head_end(&b[eol + 1..]).map(|e| at + eol + 1 + e) else {
                return self.need_more();
            };
            if status >= 200 {
                return Ok(Fed::Done(Answer::Established, end - before));
            }
            // An interim answer: the final one follows.
            self.start = end;
        }
    }

    fn need_more(&self) -> Result<Fed<Answer>, &'static str> {
        if self.buf.len() > MAX_ANSWER {
            Err(TOO_LONG)
        } else {
            Ok(Fed::NeedMore)
        }
    }
}

/// `HTTP/1.x NNN[ reason]`'s status.
fn status(line: &[u8]) -> Result<u16, &'static str> {
    match line.get(VERSION.len()..) {
        Some([v, b' ', d0, d1, d2, rest @ ..])
            if v.is_ascii_digit()
                && [d0, d1, d2].iter().all(|d| d.is_ascii_digit())
                && (rest.is_empty() || rest[0] == b' ') =>
        {
            Ok(u16::from(*d0 - b'0') * 100 + u16::from(*d1 - b'0') * 10 + u16::from(*d2 - b'0'))
        }
        _ => Err("the status line is not \"HTTP/1.x NNN reason\""),
    }
}

/// The reason phrase after the status (` reason`): printable ASCII, at
/// most 80 characters.
fn phrase(rest: &[u8]) -> String {
    rest.iter()
        .skip(1)
        .take(80)
        .map(|&c| {
            if (0x20..0x7f).contains(&c) {
                c as char
            } else {
                '?'
            }
        })
        .collect()
}

/// Where the header lines after a status line end: just past the first
/// empty line (`\n` or `\r\n`), if it has come.
fn head_end(fields: &[u8]) -> Option<usize> {
    let mut at = 0;
    loop {
        let eol = at + memchr(&fields[at..], b'\n')?;
        if fields[at..eol] == *b"" || fields[at..eol] == *b"\r" {
            return Some(eol + 1);
        }
        at = eol + 1;
    }
}

fn memchr(hay: &[u8], b: u8) -> Option<usize> {
    hay.iter().position(|&c| c == b)
}

#[cfg(test)]
mod tests;
