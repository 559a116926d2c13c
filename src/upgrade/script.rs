//! The form of an upgrade exchange the engine runs: a list of steps. A
//! route's script arrives checked and decoded from `config`
//! ([`ScriptStep`]); the built-in profiles are written in these steps
//! directly (`profiles`).

use regex::bytes::Regex;

use crate::config::script::ScriptStep;

/// One step of an exchange.
#[derive(Debug, Clone)]
pub enum Step {
    /// Sidecar → upstream.
    Send(Vec<u8>),
    /// Sidecar → client.
    Reply(Vec<u8>),
    /// Upstream → sidecar, consumed; `relay` says what the client gets of it.
    Expect { matcher: Matcher, relay: Relay },
    /// Client → sidecar: one of `patterns`, answered with `answer`.
    ClientExpect {
        patterns: Vec<Vec<u8>>,
        answer: Vec<u8>,
        /// The client may send something else (kept for after TLS) or nothing.
        optional: bool,
        /// May come any number of times.
        repeat: bool,
    },
}

/// What the client gets of the bytes an `Expect` step consumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relay {
    /// Nothing: the exchange is between the sidecar and the upstream.
    No,
    /// The bytes as they came (a greeting the application waits for).
    AsIs,
    /// An IMAP greeting without the capabilities that belong to the plain
    /// session (`STARTTLS`, `LOGINDISABLED`): the application is on a
    /// secured session and must believe it (issue 14).
    ImapGreeting,
}

/// What an `Expect` step accepts from the upstream.
#[derive(Debug, Clone)]
pub enum Matcher {
    /// The next line starts with `prefix`. With `multiline`, lines
    /// `PREFIX-…` continue until `PREFIX …`. Lines starting with `skip` are
    /// passed over. Any other complete line is a refusal.
    Line {
        prefix: Vec<u8>,
        multiline: bool,
        skip: Option<Vec<u8>>,
    },
    /// The next line matches the regex; any other line is a refusal.
    Regex(Regex),
    /// Exactly these bytes; `refuse` (if given) is a refusal, anything else
    /// is a protocol error.
    Bytes {
        bytes: Vec<u8>,
        refuse: Option<Vec<u8>>,
    },
    /// One BER-framed LDAPMessage holding an ExtendedResponse with
    /// resultCode 0 (RFC 4511 StartTLS); another result code is a refusal.
    LdapSuccess,
}

/// An exchange, ready for the engine.
#[derive(Debug, Clone)]
pub struct Script {
    pub steps: Vec<Step>,
}

impl Script {
    /// A route's checked `script = [...]`, in the engine's steps.
    pub fn from_steps(steps: &[ScriptStep]) -> Script {
        let steps = steps.iter().map(step).collect();
        Script { steps }
    }
}

fn step(s: &ScriptStep) -> Step {
    match s {
        ScriptStep::Send(bytes) => Step::Send(bytes.clone()),
        ScriptStep::Reply(bytes) => Step::Reply(bytes.clone()),
        ScriptStep::Line {
            prefix,
            multiline,
            skip,
            relay,
        } => Step::Expect {
            matcher: Matcher::Line {
                prefix: prefix.clone(),
                multiline: *multiline,
                skip: skip.clone(),
            },
            relay: if *relay { Relay::AsIs } else { Relay::No },
        },
        ScriptStep::Regex(pattern) => Step::Expect {
            matcher: Matcher::Regex(pattern.0.clone()),
            relay: Relay::No,
        },
        ScriptStep::Bytes(bytes) => Step::Expect {
            matcher: Matcher::Bytes {
                bytes: bytes.clone(),
                refuse: None,
            },
            relay: Relay::No,
        },
        ScriptStep::Client {
            pattern,
            answer,
            optional,
            repeat,
        } => Step::ClientExpect {
            patterns: vec![pattern.clone()],
            answer: answer.clone(),
            optional: *optional,
            repeat: *repeat,
        },
    }
}
