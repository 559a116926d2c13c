//! The CONNECT answer decoder on every byte split (answers as tinyproxy
//! and squid give them), the request, and the credentials file.

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
fn a_head_ending_in_bare_lf_opens_the_tunnel_and_leaves_the_banner() {
    for head in [
        &b"HTTP/1.1 200 Connection established\n\n"[..],
        b"HTTP/1.0 200 OK\nProxy-agent: x\n\n",
        b"HTTP/1.1 200 OK\r\nVia: 1.1 a\n\r\n",
        b"HTTP/1.1 200 OK\nVia: 1.1 a\r\n\n",
    ] {
        let bytes = [head, b"\nbanner\r\n\r\n"].concat();
        assert_eq!(
            every_split(&bytes),
            Ok((Answer::Established, head.len())),
            "{head:?}"
        );
    }
}

#[test]
fn a_refusal_with_a_bare_lf_status_line_is_refused_at_once() {
    let bytes = b"HTTP/1.1 407 Proxy Authentication Required\nServer: x\n\n";
    let (a, used) = every_split(bytes).unwrap();
    assert_eq!(
        a,
        Answer::Refused {
            status: 407,
            phrase: "Proxy Authentication Required".into()
        }
    );
    assert_eq!(used, b"HTTP/1.1 407 Proxy Authentication Required\n".len());
}

#[test]
fn interim_1xx_answers_are_skipped_before_the_final_one() {
    let interim =
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\nLink: </a>; rel=preload\n\n";
    let ok = b"HTTP/1.1 200 Connection established\r\n\r\n";
    let bytes = [interim.as_slice(), ok, b"220 banner\r\n"].concat();
    assert_eq!(
        every_split(&bytes),
        Ok((Answer::Established, interim.len() + ok.len()))
    );
    // A refusal after an interim answer: its status line is claimed.
    let bytes = [
        &b"HTTP/1.1 100 Continue\r\n\r\n"[..],
        b"HTTP/1.1 403 Forbidden\r\n\r\n",
    ]
    .concat();
    assert_eq!(
        every_split(&bytes),
        Ok((
            Answer::Refused {
                status: 403,
                phrase: "Forbidden".into()
            },
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 403 Forbidden\r\n".len()
        ))
    );
    // What follows an interim answer must be an answer too.
    assert_eq!(
        every_split(b"HTTP/1.1 100 Continue\r\n\r\nhello\r\n"),
        Err("it is not an HTTP/1 answer")
    );
}

#[test]
fn a_101_cannot_answer_connect() {
    assert_eq!(
        every_split(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n")
            .unwrap()
            .0,
        Answer::Refused {
            status: 101,
            phrase: "Switching Protocols".into()
        }
    );
}

#[test]
fn endless_interim_answers_are_broken_at_the_bound() {
    let mut d = AnswerDecoder::default();
    let many = b"HTTP/1.1 100 Continue\r\n\r\n".repeat(MAX_ANSWER / 20);
    assert_eq!(
        d.feed(&many),
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
