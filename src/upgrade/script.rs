//! The compiled form of an upgrade exchange: a list of steps, each with its
//! bytes decoded and its regex built, checked once at load.

use regex::bytes::Regex;

use crate::config::script::RawStep;

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

/// A compiled exchange.
#[derive(Debug, Clone)]
pub struct Script {
    pub steps: Vec<Step>,
}

/// A script step that cannot be compiled.
#[derive(Debug, thiserror::Error)]
#[error("step {index} (`{key}`): {message}")]
pub struct ScriptError {
    /// 0-based position in `script`.
    pub index: usize,
    pub key: &'static str,
    pub message: String,
}

impl Script {
    /// Compiles a route's `script = [...]`.
    pub fn compile(raw: &[RawStep]) -> Result<Script, ScriptError> {
        let steps = raw
            .iter()
            .enumerate()
            .map(|(i, s)| step(i, s))
            .collect::<Result<_, _>>()?;
        Ok(Script { steps })
    }
}

// Long: one match arm per script action, each validating its own keys.
fn step(index: usize, s: &RawStep) -> Result<Step, ScriptError> {
    let err = |key: &'static str, message: String| ScriptError {
        index,
        key,
        message,
    };
    let actions: Vec<&'static str> = [
        ("send", s.send.is_some()),
        ("send_hex", s.send_hex.is_some()),
        ("expect", s.expect.is_some()),
        ("expect_hex", s.expect_hex.is_some()),
        ("expect_regex", s.expect_regex.is_some()),
        ("relay", s.relay.is_some()),
        ("reply", s.reply.is_some()),
        ("reply_hex", s.reply_hex.is_some()),
        ("client_expect", s.client_expect.is_some()),
        ("client_expect_hex", s.client_expect_hex.is_some()),
    ]
    .into_iter()
    .filter_map(|(k, present)| present.then_some(k))
    .collect();
    let action = match actions.as_slice() {
        [one] => *one,
        [] => {
            return Err(err(
                "send",
                "a step needs one action: send, expect, relay, reply or client_expect (or a _hex/_regex form)".into(),
            ))
        }
        many => return Err(err(many[1], format!("one action per step, this one has {}", many.join(" and ")))),
    };
    let line_step = matches!(action, "expect" | "expect_regex" | "relay");
    if s.multiline.is_some() && !matches!(action, "expect" | "relay") {
        return Err(err(
            "multiline",
            format!("multiline applies to expect and relay, not {action}"),
        ));
    }
    if s.skip.is_some() && !line_step {
        return Err(err(
            "skip",
            format!("skip applies to line steps, not {action}"),
        ));
    }
    let client = matches!(action, "client_expect" | "client_expect_hex");
    for (key, present) in [
        ("optional", s.optional.is_some()),
        ("repeat", s.repeat.is_some()),
        ("answer", s.answer.is_some()),
        ("answer_hex", s.answer_hex.is_some()),
    ] {
        if present && !client {
            return Err(err(
                key,
                format!("{key} applies to client_expect, not {action}"),
            ));
        }
    }
    let text = |v: &Option<String>| v.clone().unwrap_or_default().into_bytes();
    let hex = |key: &'static str, v: &Option<String>| {
        decode_hex(v.as_deref().unwrap_or_default()).map_err(|m| err(key, m))
    };
    let nonempty = |key: &'static str, b: Vec<u8>| {
        if b.is_empty() {
            Err(err(key, "must not be empty".into()))
        } else {
            Ok(b)
        }
    };
    Ok(match action {
        "send" => Step::Send(nonempty("send", text(&s.send))?),
        "send_hex" => Step::Send(nonempty("send_hex", hex("send_hex", &s.send_hex)?)?),
        "reply" => Step::Reply(nonempty("reply", text(&s.reply))?),
        "reply_hex" => Step::Reply(nonempty("reply_hex", hex("reply_hex", &s.reply_hex)?)?),
        "expect" | "relay" => {
            let prefix = if action == "expect" {
                text(&s.expect)
            } else {
                text(&s.relay)
            };
            if action == "expect" && prefix.is_empty() {
                return Err(err(
                    "expect",
                    "must not be empty (use relay = \"\" to accept any line)".into(),
                ));
            }
            Step::Expect {
                matcher: Matcher::Line {
                    prefix,
                    multiline: s.multiline.unwrap_or(false),
                    skip: s.skip.clone().map(String::into_bytes),
                },
                relay: if action == "relay" {
                    Relay::AsIs
                } else {
                    Relay::No
                },
            }
        }
        "expect_regex" => {
            let re = Regex::new(s.expect_regex.as_deref().unwrap_or_default())
                .map_err(|e| err("expect_regex", format!("not a valid regex: {e}")))?;
            Step::Expect {
                matcher: Matcher::Regex(re),
                relay: Relay::No,
            }
        }
        "expect_hex" => Step::Expect {
            matcher: Matcher::Bytes {
                bytes: nonempty("expect_hex", hex("expect_hex", &s.expect_hex)?)?,
                refuse: None,
            },
            relay: Relay::No,
        },
        _ => {
            let pattern = if action == "client_expect" {
                nonempty("client_expect", text(&s.client_expect))?
            } else {
                nonempty(
                    "client_expect_hex",
                    hex("client_expect_hex", &s.client_expect_hex)?,
                )?
            };
            if s.answer.is_some() && s.answer_hex.is_some() {
                return Err(err(
                    "answer_hex",
                    "give answer or answer_hex, not both".into(),
                ));
            }
            let answer = if s.answer_hex.is_some() {
                hex("answer_hex", &s.answer_hex)?
            } else {
                text(&s.answer)
            };
            Step::ClientExpect {
                patterns: vec![pattern],
                answer,
                optional: s.optional.unwrap_or(false),
                repeat: s.repeat.unwrap_or(false),
            }
        }
    })
}

/// "00 00 00 08 04d2162f" → bytes; spaces allowed between bytes.
pub(crate) fn decode_hex(s: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if digits.len() % 2 != 0 {
        return Err(format!("{s:?} is not hex bytes: odd number of digits"));
    }
    digits
        .chunks(2)
        .map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|p| u8::from_str_radix(p, 16).ok())
                .ok_or_else(|| format!("{s:?} is not hex bytes"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<RawStep> {
        #[derive(serde::Deserialize)]
        struct T {
            script: Vec<RawStep>,
        }
        let c = config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .build()
            .unwrap();
        c.try_deserialize::<T>()
            .map(|t| t.script)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_toml_script_compiles_into_steps_in_order() {
        let s = Script::compile(&parse(
            r#"script = [ { send = "STARTTLS\r\n" }, { expect = "OK" }, { relay = "220", multiline = true },
                          { client_expect_hex = "00000008 04d2162f", answer = "N", optional = true, repeat = true },
                          { expect_hex = "53" }, { expect_regex = "^2\\d\\d " }, { reply = "hi\r\n" } ]"#,
        ))
        .unwrap();
        assert_eq!(s.steps.len(), 7);
        assert!(matches!(&s.steps[0], Step::Send(b) if b == b"STARTTLS\r\n"));
        assert!(matches!(
            &s.steps[2],
            Step::Expect {
                relay: Relay::AsIs,
                matcher: Matcher::Line {
                    multiline: true,
                    ..
                }
            }
        ));
        assert!(
            matches!(&s.steps[3], Step::ClientExpect { patterns, answer, optional: true, repeat: true }
            if patterns[0] == [0, 0, 0, 8, 4, 0xd2, 0x16, 0x2f] && answer == b"N")
        );
    }

    #[test]
    fn a_bad_step_is_named_with_its_index_and_key() {
        let cases = [
            (
                r#"script = [ { send = "a" }, { send = "b", expect = "c" } ]"#,
                1,
                "expect",
                "one action per step",
            ),
            (
                r#"script = [ { expect_hex = "0g" } ]"#,
                0,
                "expect_hex",
                "not hex",
            ),
            (
                r#"script = [ { expect_hex = "123" } ]"#,
                0,
                "expect_hex",
                "odd number",
            ),
            (
                r#"script = [ { expect_regex = "(" } ]"#,
                0,
                "expect_regex",
                "not a valid regex",
            ),
            (
                r#"script = [ { send = "x", multiline = true } ]"#,
                0,
                "multiline",
                "applies to expect and relay",
            ),
            (
                r#"script = [ { expect = "x", answer = "N" } ]"#,
                0,
                "answer",
                "applies to client_expect",
            ),
            (
                r#"script = [ { multiline = true } ]"#,
                0,
                "send",
                "needs one action",
            ),
            (
                r#"script = [ { expect = "" } ]"#,
                0,
                "expect",
                "must not be empty",
            ),
        ];
        for (text, index, key, words) in cases {
            let e = Script::compile(&parse(text)).unwrap_err();
            assert_eq!((e.index, e.key), (index, key), "{text}");
            assert!(e.to_string().contains(words), "{e}");
        }
    }

    #[test]
    fn unknown_keys_in_a_step_are_refused() {
        let c = config::Config::builder()
            .add_source(config::File::from_str(
                r#"script = [ { sned = "x" } ]"#,
                config::FileFormat::Toml,
            ))
            .build()
            .unwrap();
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct T {
            script: Vec<RawStep>,
        }
        let e = c.try_deserialize::<T>().unwrap_err().to_string();
        assert!(e.contains("sned"), "{e}");
    }
}
