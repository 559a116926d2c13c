//! The sans-io upgrade engine: fed the bytes each side sends, it says what
//! to write where, what to read next, when the exchange is done, or why it
//! failed. "Need more bytes" is a normal answer, not an error, so a message
//! split across reads at any point is handled the same as a whole one.

use super::profiles::imap_greeting;
use super::script::{Matcher, Relay, Script, Step};
use super::Limits;
use crate::labels::Reason;

/// The exchange finished: start TLS on the upstream socket.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Upgraded {
    /// Bytes the client sent beyond what the exchange consumed, in order:
    /// relay them to the upstream once TLS is up.
    pub client_early: Vec<u8>,
}

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    /// The server answered, and the answer was no (`N`, `454 …`, `-ERR`,
    /// an LDAP result code).
    #[error("upgrade refused by the server: {0}")]
    Refused(String),
    /// Unexpected, malformed, oversized or smuggled bytes.
    #[error("upgrade exchange broken: {0}")]
    Protocol(String),
    /// One side closed the connection mid-exchange ("server" or "client").
    #[error("the {0} closed the connection during the upgrade exchange")]
    PeerClosed(&'static str),
    #[error("I/O error during the upgrade exchange: {0}")]
    Io(#[from] std::io::Error),
}

impl UpgradeError {
    /// The `reason` label of `tls_sidecar_handshake_errors_total`.
    pub fn reason(&self) -> Reason {
        match self {
            UpgradeError::Refused(_) => Reason::UpgradeRefused,
            UpgradeError::Protocol(_) => Reason::UpgradeProtocol,
            UpgradeError::PeerClosed(_) => Reason::PeerClosed,
            UpgradeError::Io(_) => Reason::Other,
        }
    }
}

/// What the driver must do next.
#[derive(Debug)]
pub enum Next {
    /// Write these bytes (either may be empty) and flush, then ask again.
    Write {
        upstream: Vec<u8>,
        client: Vec<u8>,
    },
    /// Read from the upstream and feed it with [`Engine::upstream_data`] or
    /// [`Engine::upstream_eof`].
    ReadUpstream,
    /// Read from the client and feed it with [`Engine::client_data`] or
    /// [`Engine::client_eof`].
    ReadClient,
    Done(Upgraded),
    Failed(UpgradeError),
}

/// One run of a [`Script`].
pub struct Engine<'s> {
    steps: &'s [Step],
    index: usize,
    limits: Limits,
    upstream_in: Vec<u8>,
    client_in: Vec<u8>,
    upstream_eof: bool,
    client_eof: bool,
    upstream_total: usize,
    client_total: usize,
    to_upstream: Vec<u8>,
    to_client: Vec<u8>,
}

/// The result of matching buffered upstream bytes.
enum Found {
    Match(usize),
    NeedMore,
    Refused(String),
    Garbage(String),
}

impl<'s> Engine<'s> {
    pub fn new(script: &'s Script, limits: Limits) -> Engine<'s> {
        Engine {
            steps: &script.steps,
            index: 0,
            limits,
            upstream_in: Vec::new(),
            client_in: Vec::new(),
            upstream_eof: false,
            client_eof: false,
            upstream_total: 0,
            client_total: 0,
            to_upstream: Vec::new(),
            to_client: Vec::new(),
        }
    }

    pub fn upstream_data(&mut self, bytes: &[u8]) {
        self.upstream_total += bytes.len();
        self.upstream_in.extend_from_slice(bytes);
    }

    pub fn client_data(&mut self, bytes: &[u8]) {
        self.client_total += bytes.len();
        self.client_in.extend_from_slice(bytes);
    }

    pub fn upstream_eof(&mut self) {
        self.upstream_eof = true;
    }

    pub fn client_eof(&mut self) {
        self.client_eof = true;
    }

    /// Advances as far as the bytes at hand allow.
    // Long: the sans-io state machine's single transition function, one match arm per state: clearer as one match than split across functions.
    pub fn step(&mut self) -> Next {
        loop {
            if !self.to_upstream.is_empty() || !self.to_client.is_empty() {
                return Next::Write {
                    upstream: std::mem::take(&mut self.to_upstream),
                    client: std::mem::take(&mut self.to_client),
                };
            }
            if self.upstream_total > self.limits.max_total {
                return fail_protocol(format!(
                    "the server sent more than {} bytes during the exchange",
                    self.limits.max_total
                ));
            }
            if self.client_total > self.limits.max_total {
                return fail_protocol(format!(
                    "the client sent more than {} bytes during the exchange",
                    self.limits.max_total
                ));
            }
            let Some(step) = self.steps.get(self.index) else {
                if !self.upstream_in.is_empty() {
                    return fail_protocol(format!(
                        "the server sent {} byte(s) after its go-ahead, before the TLS handshake (possible STARTTLS injection): {}",
                        self.upstream_in.len(),
                        printable(&self.upstream_in)
                    ));
                }
                return Next::Done(Upgraded {
                    client_early: std::mem::take(&mut self.client_in),
                });
            };
            match step {
                Step::Send(b) => {
                    self.to_upstream.extend_from_slice(b);
                    self.index += 1;
                }
                Step::Reply(b) => {
                    self.to_client.extend_from_slice(b);
                    self.index += 1;
                }
                Step::Expect { matcher, relay } => {
                    match find(matcher, &self.upstream_in, self.limits.max_message) {
                        Found::Match(n) => {
                            let taken: Vec<u8> = self.upstream_in.drain(..n).collect();
                            match relay {
                                Relay::No => {}
                                Relay::AsIs => self.to_client.extend_from_slice(&taken),
                                Relay::ImapGreeting => self.to_client.extend(imap_greeting(&taken)),
                            }
                            self.index += 1;
                        }
                        Found::NeedMore if self.upstream_eof => {
                            return Next::Failed(UpgradeError::PeerClosed("server"))
                        }
                        Found::NeedMore => return Next::ReadUpstream,
                        Found::Refused(words) => return Next::Failed(UpgradeError::Refused(words)),
                        Found::Garbage(why) => return fail_protocol(why),
                    }
                }
                Step::ClientExpect {
                    patterns,
                    answer,
                    optional,
                    repeat,
                } => {
                    let buf = &self.client_in;
                    if let Some(p) = patterns.iter().find(|p| buf.starts_with(p)) {
                        self.client_in.drain(..p.len());
                        self.to_client.extend_from_slice(answer);
                        if !repeat {
                            self.index += 1;
                        }
                        continue;
                    }
                    let could_still_match = patterns.iter().any(|p| p.starts_with(buf));
                    if could_still_match && !self.client_eof {
                        return Next::ReadClient;
                    }
                    if *optional {
                        // Something else (kept for after TLS), or nothing.
                        self.index += 1;
                    } else if self.client_eof && buf.is_empty() {
                        return Next::Failed(UpgradeError::PeerClosed("client"));
                    } else {
                        return fail_protocol(format!(
                            "the client sent unexpected bytes: {}",
                            printable(buf)
                        ));
                    }
                }
            }
        }
    }
}

fn fail_protocol(why: String) -> Next {
    Next::Failed(UpgradeError::Protocol(why))
}

fn find(m: &Matcher, buf: &[u8], max: usize) -> Found {
    match m {
        Matcher::Line {
            prefix,
            multiline,
            skip,
        } => {
            let mut at = 0;
            loop {
                let Some(end) = line_end(&buf[at..]) else {
                    return if buf.len() - at > max {
                        Found::Garbage(format!("a line from the server is longer than {max} bytes"))
                    } else {
                        Found::NeedMore
                    };
                };
                let line = &buf[at..at + end];
                at += end;
                if skip.as_ref().is_some_and(|s| line.starts_with(s)) {
                    continue;
                }
                if !line.starts_with(prefix) {
                    return Found::Refused(printable(line));
                }
                if *multiline && line.get(prefix.len()) == Some(&b'-') {
                    continue;
                }
                return Found::Match(at);
            }
        }
        Matcher::Regex(re) => match line_end(buf) {
            None if buf.len() > max => {
                Found::Garbage(format!("a line from the server is longer than {max} bytes"))
            }
            None => Found::NeedMore,
            Some(end) => {
                let line = trim_eol(&buf[..end]);
                if re.is_match(line) {
                    Found::Match(end)
                } else {
                    Found::Refused(printable(line))
                }
            }
        },
        Matcher::Bytes { bytes, refuse } => {
            if buf.starts_with(bytes) {
                return Found::Match(bytes.len());
            }
            if let Some(r) = refuse {
                if buf.starts_with(r) {
                    return Found::Refused(printable(r));
                }
            }
            let partial =
                bytes.starts_with(buf) || refuse.as_ref().is_some_and(|r| r.starts_with(buf));
            if partial {
                Found::NeedMore
            } else {
                Found::Garbage(format!(
                    "expected {} from the server, got {}",
                    printable(bytes),
                    printable(buf)
                ))
            }
        }
        Matcher::LdapSuccess => ldap_result(buf, max),
    }
}

/// The length of the first line including its LF, if complete.
fn line_end(buf: &[u8]) -> Option<usize> {
    buf.iter().position(|&b| b == b'\n').map(|i| i + 1)
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The server's words for the log: printable ASCII, the rest escaped, at
/// most 200 characters. These are protocol lines, not payload.
pub(crate) fn printable(bytes: &[u8]) -> String {
    let mut out = String::new();
    for &b in trim_eol(bytes) {
        if out.len() >= 200 {
            out.push('…');
            break;
        }
        match b {
            b' '..=b'~' => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    if out.is_empty() {
        "(nothing)".into()
    } else {
        format!("\"{out}\"")
    }
}

/// One BER TLV as (tag, value, total length).
type Tlv<'a> = (u8, &'a [u8], usize);

/// One BER TLV, or None if incomplete; Err if malformed.
fn tlv(buf: &[u8]) -> Result<Option<Tlv<'_>>, String> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let (len, header) = if buf[1] < 0x80 {
        (buf[1] as usize, 2)
    } else {
        let n = (buf[1] & 0x7f) as usize;
        if n == 0 || n > 4 {
            return Err(format!("bad BER length form 0x{:02x}", buf[1]));
        }
        if buf.len() < 2 + n {
            return Ok(None);
        }
        (
            buf[2..2 + n]
                .iter()
                .fold(0usize, |a, &b| (a << 8) | b as usize),
            2 + n,
        )
    };
    if buf.len() < header + len {
        return Ok(None);
    }
    Ok(Some((buf[0], &buf[header..header + len], header + len)))
}

/// An LDAPMessage { messageID, extendedResp [APPLICATION 24] { resultCode,
/// matchedDN, diagnosticMessage, ... } }.
fn ldap_result(buf: &[u8], max: usize) -> Found {
    let garbage = |why: String| Found::Garbage(format!("not an LDAP ExtendedResponse: {why}"));
    if buf.first().is_some_and(|&t| t != 0x30) {
        return garbage(format!("starts with {}", printable(&buf[..1])));
    }
    let (message, total) = match tlv(buf) {
        Err(e) => return garbage(e),
        Ok(None) if buf.len() > max => return garbage(format!("longer than {max} bytes")),
        Ok(None) => return Found::NeedMore,
        Ok(Some((_, v, total))) => (v, total),
    };
    let parsed = (|| {
        let (tag, _, used) = tlv(message)?.ok_or("truncated messageID")?;
        if tag != 0x02 {
            return Err("no messageID".to_owned());
        }
        let (tag, op, _) = tlv(&message[used..])?.ok_or("truncated protocolOp")?;
        if tag != 0x78 {
            return Err(format!(
                "protocolOp tag 0x{tag:02x}, not ExtendedResponse (0x78)"
            ));
        }
        let (tag, code, used) = tlv(op)?.ok_or("truncated resultCode")?;
        if tag != 0x0a || code.is_empty() {
            return Err("no resultCode".to_owned());
        }
        let code = code.iter().fold(0u32, |a, &b| (a << 8) | b as u32);
        let rest = &op[used..];
        let diagnostic = tlv(rest)
            .ok()
            .flatten()
            .and_then(|(_, _, u)| tlv(&rest[u..]).ok().flatten())
            .map(|(_, d, _)| d.to_vec())
            .unwrap_or_default();
        Ok((code, diagnostic))
    })();
    match parsed {
        Err(e) => garbage(e),
        Ok((0, _)) => Found::Match(total),
        Ok((code, diag)) => {
            Found::Refused(format!("LDAP result code {code}: {}", printable(&diag)))
        }
    }
}

#[cfg(test)]
mod tests;
