//! One step of an upgrade script, as written in TOML (`RawStep`:
//! `script = [ { send = "STARTTLS\r\n" }, { expect = "OK" } ]`) and as
//! checked (`ScriptStep`: one action, its bytes decoded, its regex built).
//!
//! `validate` turns the one into the other and names the step and key that
//! is wrong; the upgrade layer runs the checked steps
//! (`upgrade::Script::from_steps`).

use serde::Deserialize;

/// A step as written: exactly one action key, and the modifiers it takes.
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

/// The action of a step: which of [`RawStep`]'s action keys it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Action {
    Send,
    SendHex,
    Expect,
    ExpectHex,
    ExpectRegex,
    Relay,
    Reply,
    ReplyHex,
    ClientExpect,
    ClientExpectHex,
}

impl Action {
    /// The key, as written.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl RawStep {
    /// Every action key this step has, with its value, in [`Action`]'s order.
    pub fn actions(&self) -> Vec<(Action, &str)> {
        [
            (Action::Send, &self.send),
            (Action::SendHex, &self.send_hex),
            (Action::Expect, &self.expect),
            (Action::ExpectHex, &self.expect_hex),
            (Action::ExpectRegex, &self.expect_regex),
            (Action::Relay, &self.relay),
            (Action::Reply, &self.reply),
            (Action::ReplyHex, &self.reply_hex),
            (Action::ClientExpect, &self.client_expect),
            (Action::ClientExpectHex, &self.client_expect_hex),
        ]
        .into_iter()
        .filter_map(|(action, value)| Some((action, value.as_deref()?)))
        .collect()
    }
}

/// A checked step of a route's script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptStep {
    /// `send`, `send_hex`: sidecar → upstream.
    Send(Vec<u8>),
    /// `reply`, `reply_hex`: sidecar → client.
    Reply(Vec<u8>),
    /// `expect`, `relay`: upstream → sidecar, the next line starts with
    /// `prefix` (`relay = ""`: any line). With `multiline`, `PREFIX-…` lines
    /// continue until `PREFIX …`; lines starting with `skip` are passed over;
    /// with `relay`, the line(s) are passed on to the client.
    Line {
        prefix: Vec<u8>,
        multiline: bool,
        skip: Option<Vec<u8>>,
        relay: bool,
    },
    /// `expect_regex`: upstream → sidecar, the next line matches.
    Regex(Pattern),
    /// `expect_hex`: upstream → sidecar, exactly these bytes.
    Bytes(Vec<u8>),
    /// `client_expect`, `client_expect_hex`: client → sidecar, answered with
    /// `answer`; `optional`: the client may send something else (kept for
    /// after TLS) or nothing; `repeat`: may come any number of times.
    Client {
        pattern: Vec<u8>,
        answer: Vec<u8>,
        optional: bool,
        repeat: bool,
    },
}

/// A regex that compiled. Compared by its source, so the model stays
/// comparable.
#[derive(Clone)]
pub struct Pattern(pub regex::bytes::Regex);

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

impl Eq for Pattern {}

impl std::fmt::Debug for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pattern({:?})", self.0.as_str())
    }
}
