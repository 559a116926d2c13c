//! `connect_tls.script`: steps as written become typed steps, in order, and
//! a bad step is named by its index and key.

use super::*;
use script::ScriptStep;

/// A route whose upgrade is `script = <steps>`.
fn scripted(steps: &str) -> String {
    connect_tls(&format!(
        "start = \"upgrade\"\nupgrade = \"script\"\nscript = {steps}"
    ))
}

/// The checked steps of a route loaded from `scripted(steps)`.
fn steps_of(steps: &str) -> Vec<ScriptStep> {
    let c = load(&scripted(steps)).unwrap();
    match &the_connect_tls(&c).start {
        Start::Upgrade(Upgrade::Script(steps)) => steps.clone(),
        other => panic!("not a script: {other:?}"),
    }
}

#[test]
fn every_step_kind_is_read_into_its_typed_step_in_order() {
    let steps = steps_of(
        r#"[ { send = "STARTTLS\r\n" }, { expect = "OK" }, { relay = "220", multiline = true },
             { client_expect_hex = "00000008 04d2162f", answer = "N", optional = true, repeat = true },
             { expect_hex = "53" }, { expect_regex = "^2\\d\\d " }, { reply = "hi\r\n" },
             { send_hex = "01 02" }, { reply_hex = "ff" }, { expect = "a001 OK", skip = "* " },
             { client_expect = "HELLO", answer_hex = "4849" } ]"#,
    );
    let line = |prefix: &[u8], multiline, skip: Option<&[u8]>, relay| ScriptStep::Line {
        prefix: prefix.to_vec(),
        multiline,
        skip: skip.map(<[u8]>::to_vec),
        relay,
    };
    let regex = regex::bytes::Regex::new(r"^2\d\d ").unwrap();
    assert_eq!(
        steps,
        vec![
            ScriptStep::Send(b"STARTTLS\r\n".to_vec()),
            line(b"OK", false, None, false),
            line(b"220", true, None, true),
            ScriptStep::Client {
                pattern: vec![0, 0, 0, 8, 4, 0xd2, 0x16, 0x2f],
                answer: b"N".to_vec(),
                optional: true,
                repeat: true,
            },
            ScriptStep::Bytes(vec![0x53]),
            ScriptStep::Regex(script::Pattern(regex)),
            ScriptStep::Reply(b"hi\r\n".to_vec()),
            ScriptStep::Send(vec![1, 2]),
            ScriptStep::Reply(vec![0xff]),
            line(b"a001 OK", false, Some(b"* "), false),
            ScriptStep::Client {
                pattern: b"HELLO".to_vec(),
                answer: b"HI".to_vec(),
                optional: false,
                repeat: false,
            },
        ]
    );
}

#[test]
fn relay_with_an_empty_prefix_takes_any_line() {
    assert_eq!(
        steps_of(r#"[ { relay = "" } ]"#),
        vec![ScriptStep::Line {
            prefix: Vec::new(),
            multiline: false,
            skip: None,
            relay: true
        }]
    );
}

#[test]
fn a_bad_step_is_named_by_its_index_and_key() {
    for (steps, key, words) in [
        (
            r#"[ { send = "a" }, { send = "b", expect = "c" } ]"#,
            "script[1].expect",
            "one action per step, this one has send and expect",
        ),
        (
            r#"[ { expect_hex = "0g" } ]"#,
            "script[0].expect_hex",
            "\"0g\" is not hex bytes",
        ),
        (
            r#"[ { expect_hex = "123" } ]"#,
            "script[0].expect_hex",
            "odd number of digits",
        ),
        (
            r#"[ { expect_regex = "(" } ]"#,
            "script[0].expect_regex",
            "not a valid regex",
        ),
        (
            r#"[ { send = "x", multiline = true } ]"#,
            "script[0].multiline",
            "multiline applies to expect and relay, not send",
        ),
        (
            r#"[ { reply = "x", skip = "* " } ]"#,
            "script[0].skip",
            "skip applies to line steps, not reply",
        ),
        (
            r#"[ { expect = "x", answer = "N" } ]"#,
            "script[0].answer",
            "answer applies to client_expect, not expect",
        ),
        (
            r#"[ { client_expect = "x", answer = "N", answer_hex = "4e" } ]"#,
            "script[0].answer_hex",
            "give answer or answer_hex, not both",
        ),
        (
            r#"[ { multiline = true } ]"#,
            "script[0].send",
            "a step needs one action: send, expect, relay, reply or client_expect",
        ),
        (
            r#"[ { expect = "" } ]"#,
            "script[0].expect",
            "must not be empty (use relay = \"\" to accept any line)",
        ),
        (
            r#"[ { send_hex = "" } ]"#,
            "script[0].send_hex",
            "must not be empty",
        ),
        (
            r#"[ { client_expect = "" } ]"#,
            "script[0].client_expect",
            "must not be empty",
        ),
    ] {
        refused(
            &scripted(steps),
            Some("r"),
            Some(&format!("connect_tls.{key}")),
            words,
        );
    }
}
