//! One step of an upgrade script as written in TOML:
//! `script = [ { send = "STARTTLS\r\n" }, { expect = "OK" } ]`.
//!
//! Each step has exactly one action key; the upgrade layer compiles the
//! list (`upgrade::Script::compile`) and says which step and key is wrong.

use serde::Deserialize;

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    /// Sidecar → upstream, text.
    pub send: Option<String>,
    /// Sidecar → upstream, hex bytes ("00000008 04d2162f").
    pub send_hex: Option<String>,
    /// Upstream → sidecar: the next line must start with this text; the
    /// whole line (CRLF or LF included) is consumed.
    pub expect: Option<String>,
    /// Upstream → sidecar: exactly these bytes.
    pub expect_hex: Option<String>,
    /// Upstream → sidecar: the next line must match this regex.
    pub expect_regex: Option<String>,
    /// Like `expect`, and the line(s) are passed on to the client (a greeting
    /// the client expects to see). "" accepts any line.
    pub relay: Option<String>,
    /// Sidecar → client, text.
    pub reply: Option<String>,
    /// Sidecar → client, hex bytes.
    pub reply_hex: Option<String>,
    /// Client → sidecar: the client must send this text.
    pub client_expect: Option<String>,
    /// Client → sidecar: the client must send these bytes.
    pub client_expect_hex: Option<String>,

    /// expect/relay: `250-…` lines continue until `250 …`.
    pub multiline: Option<bool>,
    /// expect/relay: lines starting with this are skipped (IMAP's `* `).
    pub skip: Option<String>,
    /// client_expect: the client may send something else instead (kept and
    /// relayed after TLS), or nothing.
    pub optional: Option<bool>,
    /// client_expect: may come any number of times.
    pub repeat: Option<bool>,
    /// client_expect: sent to the client when it matched (text / hex).
    pub answer: Option<String>,
    pub answer_hex: Option<String>,
}
