//! `connect_tls.script`: each step as written becomes a checked
//! [`ScriptStep`]: exactly one action, only the modifiers that action
//! takes, hex decoded, the regex built. A refusal names the step and key
//! (`connect_tls.script[1].expect_hex`).

use regex::bytes::Regex;

use super::super::error::{ConfigError, RouteCtx};
use super::super::script::{Action, Pattern, RawStep, ScriptStep};

/// The key within the step that is wrong, and why.
type Refusal = (&'static str, String);

/// Checks a route's (non-empty) `script = [...]`.
pub(super) fn steps(ctx: &RouteCtx<'_>, raw: &[RawStep]) -> Result<Vec<ScriptStep>, ConfigError> {
    raw.iter()
        .enumerate()
        .map(|(i, s)| {
            step(s).map_err(|(key, m)| ctx.invalid(&format!("connect_tls.script[{i}].{key}"), m))
        })
        .collect()
}

fn step(s: &RawStep) -> Result<ScriptStep, Refusal> {
    let (action, value) = match s.actions().as_slice() {
        [one] => *one,
        [] => return Err((
            Action::Send.as_str(),
            "a step needs one action: send, expect, relay, reply or client_expect (or a _hex/_regex form)".into(),
        )),
        many => {
            let names: Vec<&str> = many.iter().map(|(a, _)| a.as_str()).collect();
            return Err((
                many[1].0.as_str(),
                format!("one action per step, this one has {}", names.join(" and ")),
            ));
        }
    };
    modifiers(s, action)?;
    let key = action.as_str();
    let text = || value.as_bytes().to_vec();
    let hex = || decode_hex(value).map_err(|m| (key, m));
    let non_empty = |b: Vec<u8>| {
        if b.is_empty() {
            Err((key, "must not be empty".to_owned()))
        } else {
            Ok(b)
        }
    };
    Ok(match action {
        Action::Send => ScriptStep::Send(non_empty(text())?),
        Action::SendHex => ScriptStep::Send(non_empty(hex()?)?),
        Action::Reply => ScriptStep::Reply(non_empty(text())?),
        Action::ReplyHex => ScriptStep::Reply(non_empty(hex()?)?),
        Action::Expect if value.is_empty() => {
            return Err((
                key,
                "must not be empty (use relay = \"\" to accept any line)".into(),
            ))
        }
        Action::Expect | Action::Relay => ScriptStep::Line {
            prefix: text(),
            multiline: s.multiline.unwrap_or(false),
            skip: s.skip.clone().map(String::into_bytes),
            relay: action == Action::Relay,
        },
        Action::ExpectRegex => ScriptStep::Regex(Pattern(
            Regex::new(value).map_err(|e| (key, format!("not a valid regex: {e}")))?,
        )),
        Action::ExpectHex => ScriptStep::Bytes(non_empty(hex()?)?),
        Action::ClientExpect => client(s, non_empty(text())?)?,
        Action::ClientExpectHex => client(s, non_empty(hex()?)?)?,
    })
}

/// Every modifier a step has must be one its action takes.
fn modifiers(s: &RawStep, action: Action) -> Result<(), Refusal> {
    let name = action.as_str();
    if s.multiline.is_some() && !matches!(action, Action::Expect | Action::Relay) {
        return Err((
            "multiline",
            format!("multiline applies to expect and relay, not {name}"),
        ));
    }
    let line = matches!(action, Action::Expect | Action::ExpectRegex | Action::Relay);
    if s.skip.is_some() && !line {
        return Err(("skip", format!("skip applies to line steps, not {name}")));
    }
    let client = matches!(action, Action::ClientExpect | Action::ClientExpectHex);
    for (key, present) in [
        ("optional", s.optional.is_some()),
        ("repeat", s.repeat.is_some()),
        ("answer", s.answer.is_some()),
        ("answer_hex", s.answer_hex.is_some()),
    ] {
        if present && !client {
            return Err((key, format!("{key} applies to client_expect, not {name}")));
        }
    }
    Ok(())
}

/// A `client_expect` step matching `pattern`, with its answer.
fn client(s: &RawStep, pattern: Vec<u8>) -> Result<ScriptStep, Refusal> {
    let answer = match (&s.answer, &s.answer_hex) {
        (Some(_), Some(_)) => {
            return Err(("answer_hex", "give answer or answer_hex, not both".into()))
        }
        (_, Some(hex)) => decode_hex(hex).map_err(|m| ("answer_hex", m))?,
        (text, None) => text.clone().unwrap_or_default().into_bytes(),
    };
    Ok(ScriptStep::Client {
        pattern,
        answer,
        optional: s.optional.unwrap_or(false),
        repeat: s.repeat.unwrap_or(false),
    })
}

/// "00 00 00 08 04d2162f" → bytes; spaces allowed between bytes.
fn decode_hex(s: &str) -> Result<Vec<u8>, String> {
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
