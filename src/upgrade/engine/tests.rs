//! The engine on recorded exchanges, split at every byte boundary and fed a
//! byte at a time, for every profile and step kind.

use super::*;
use crate::config::Profile;
use crate::upgrade::profiles::{LDAP_STARTTLS, PG_GSSENC_REQUEST, PG_SSL_REQUEST};
use crate::upgrade::{builtin, Script};

/// What a run produced.
#[derive(Debug)]
struct Run {
    /// Client bytes the engine never asked for: they stay in the socket
    /// and reach the upstream through the relay after TLS.
    unread_client: Vec<u8>,
    to_upstream: Vec<u8>,
    to_client: Vec<u8>,
    result: Result<Upgraded, String>,
    reason: Option<Reason>,
}

/// Runs `script`, feeding the server's and the client's recorded bytes in
/// the given chunks as the engine asks for them; after the last chunk a
/// side is at EOF.
fn run_chunks(script: &Script, server: &[&[u8]], client: &[&[u8]], limits: Limits) -> Run {
    let mut e = Engine::new(script, limits);
    let (mut s, mut c) = (server.iter(), client.iter());
    let (mut to_upstream, mut to_client) = (Vec::new(), Vec::new());
    for _ in 0..100_000 {
        match e.step() {
            Next::Write { upstream, client } => {
                to_upstream.extend(upstream);
                to_client.extend(client);
            }
            Next::ReadUpstream => match s.next() {
                Some(b) => e.upstream_data(b),
                None => e.upstream_eof(),
            },
            Next::ReadClient => match c.next() {
                Some(b) => e.client_data(b),
                None => e.client_eof(),
            },
            Next::Done(u) => {
                let unread_client = c.copied().flatten().copied().collect();
                return Run {
                    unread_client,
                    to_upstream,
                    to_client,
                    result: Ok(u),
                    reason: None,
                };
            }
            Next::Failed(err) => {
                let unread_client = c.copied().flatten().copied().collect();
                return Run {
                    unread_client,
                    to_upstream,
                    to_client,
                    reason: Some(err.reason()),
                    result: Err(err.to_string()),
                };
            }
        }
    }
    panic!("the engine did not finish");
}

/// Every way of splitting `server` and `client` in two, plus byte by byte:
/// each must give the same run.
fn every_split(script: &Script, server: &[u8], client: &[u8], check: impl Fn(&Run)) {
    for i in 0..=server.len() {
        let r = run_chunks(
            script,
            &[&server[..i], &server[i..]],
            &[client],
            Limits::default(),
        );
        check(&r);
    }
    for i in 0..=client.len() {
        let r = run_chunks(
            script,
            &[server],
            &[&client[..i], &client[i..]],
            Limits::default(),
        );
        check(&r);
    }
    let s: Vec<&[u8]> = server.chunks(1).collect();
    let c: Vec<&[u8]> = client.chunks(1).collect();
    check(&run_chunks(script, &s, &c, Limits::default()));
}

/// The exchange succeeded and the client's early bytes — held by the
/// engine or still unread — are exactly `early`, in order.
fn ok_with_early(r: &Run, early: &[u8]) {
    match &r.result {
        Ok(u) => {
            let mut all = u.client_early.clone();
            all.extend_from_slice(&r.unread_client);
            assert_eq!(all, early, "{r:?}");
        }
        Err(e) => panic!("failed: {e} ({r:?})"),
    }
}

/// `extra` arriving in the same read as the last byte of the go-ahead (for
/// every split of the exchange before it) fails the exchange as injection.
fn injection(script: &Script, exchange: &[u8], extra: &[u8], client: &[u8]) {
    let mut server = exchange.to_vec();
    server.extend_from_slice(extra);
    for i in 0..exchange.len() {
        let r = run_chunks(
            script,
            &[&server[..i], &server[i..]],
            &[client],
            Limits::default(),
        );
        assert_eq!(r.reason, Some(Reason::UpgradeProtocol), "split {i}: {r:?}");
        assert!(
            r.result
                .as_ref()
                .unwrap_err()
                .contains("STARTTLS injection"),
            "{r:?}"
        );
    }
}

const STARTUP: &[u8] = b"\x00\x00\x00\x29\x00\x03\x00\x00user\x00gms\x00database\x00cfg\x00\x00";

#[test]
fn postgres_answers_the_clients_sslrequest_with_n_and_keeps_the_startup_message_for_tls() {
    let script = builtin(Profile::Postgres, "x");
    let mut client = PG_SSL_REQUEST.to_vec();
    client.extend_from_slice(STARTUP);
    every_split(&script, b"S", &client, |r| {
        ok_with_early(r, STARTUP);
        assert_eq!(r.to_client, b"N");
        assert_eq!(r.to_upstream, PG_SSL_REQUEST);
    });
}

#[test]
fn postgres_answers_gssenc_then_ssl_requests_and_a_client_that_starts_directly() {
    let script = builtin(Profile::Postgres, "x");
    let mut client = PG_GSSENC_REQUEST.to_vec();
    client.extend_from_slice(&PG_SSL_REQUEST);
    client.extend_from_slice(STARTUP);
    every_split(&script, b"S", &client, |r| {
        ok_with_early(r, STARTUP);
        assert_eq!(r.to_client, b"NN");
    });
    // sslmode=disable: the StartupMessage comes first and is kept whole.
    every_split(&script, b"S", STARTUP, |r| {
        ok_with_early(r, STARTUP);
        assert_eq!(r.to_client, b"");
    });
    // No client bytes at all (probe): the exchange still completes.
    every_split(&script, b"S", b"", |r| ok_with_early(r, b""));
}

#[test]
fn postgres_refusal_and_garbage_and_injection() {
    let script = builtin(Profile::Postgres, "x");
    let r = run_chunks(&script, &[b"N"], &[STARTUP], Limits::default());
    assert_eq!(r.reason, Some(Reason::UpgradeRefused), "{r:?}");
    let r = run_chunks(
        &script,
        &[b"E\x00\x00\x00\x08xxxx"],
        &[STARTUP],
        Limits::default(),
    );
    assert_eq!(r.reason, Some(Reason::UpgradeProtocol), "{r:?}");
    // A byte after the go-ahead, in the same read as it: injection.
    injection(&script, b"S", b"\x16\x03\x03", STARTUP);
}

const SMTP_SERVER: &[u8] =
    b"220-mail.example ESMTP\r\n220 ready\r\n250-mail.example\r\n250-PIPELINING\r\n250 STARTTLS\r\n220 2.0.0 go ahead\r\n";

#[test]
fn smtp_relays_the_multiline_greeting_and_switches_after_220() {
    let script = builtin(Profile::Smtp, "gms-host");
    every_split(&script, SMTP_SERVER, b"", |r| {
        ok_with_early(r, b"");
        assert_eq!(r.to_client, b"220-mail.example ESMTP\r\n220 ready\r\n");
        assert_eq!(r.to_upstream, b"EHLO gms-host\r\nSTARTTLS\r\n");
    });
}

#[test]
fn smtp_454_is_a_refusal_with_the_servers_words_and_eof_is_peer_closed() {
    let script = builtin(Profile::Smtp, "h");
    let r = run_chunks(
        &script,
        &[b"220 hi\r\n250 ok\r\n454 4.7.0 TLS not available\r\n"],
        &[],
        Limits::default(),
    );
    assert_eq!(r.reason, Some(Reason::UpgradeRefused));
    assert!(r
        .result
        .unwrap_err()
        .contains("454 4.7.0 TLS not available"));
    let r = run_chunks(&script, &[b"220 hi\r\n250-ok\r\n"], &[], Limits::default());
    assert_eq!(r.reason, Some(Reason::PeerClosed));
    // The go-ahead and a smuggled response in one read.
    injection(&script, SMTP_SERVER, b"250 injected\r\n", b"");
}

#[test]
fn pop3_imap_and_ftp_switch_after_their_go_ahead() {
    let pop3 = builtin(Profile::Pop3, "h");
    every_split(&pop3, b"+OK POP3 ready\r\n+OK begin TLS\r\n", b"", |r| {
        ok_with_early(r, b"");
        assert_eq!(r.to_client, b"+OK POP3 ready\r\n");
        assert_eq!(r.to_upstream, b"STLS\r\n");
    });
    let r = run_chunks(
        &pop3,
        &[b"+OK hi\r\n-ERR not now\r\n"],
        &[],
        Limits::default(),
    );
    assert_eq!(r.reason, Some(Reason::UpgradeRefused));

    let imap = builtin(Profile::Imap, "h");
    every_split(&imap, b"* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n* BYE-ish untagged\r\na001 OK Begin TLS\r\n", b"", |r| {
        ok_with_early(r, b"");
        assert_eq!(r.to_client, b"* OK [CAPABILITY IMAP4rev1] ready\r\n");
        assert_eq!(r.to_upstream, b"a001 STARTTLS\r\n");
    });
    let r = run_chunks(
        &imap,
        &[b"* OK hi\r\na001 NO no TLS\r\n"],
        &[],
        Limits::default(),
    );
    assert_eq!(r.reason, Some(Reason::UpgradeRefused));

    let ftp = builtin(Profile::Ftp, "h");
    every_split(
        &ftp,
        b"220-Welcome\r\n220 FTP ready\r\n234 AUTH TLS ok\r\n",
        b"",
        |r| {
            ok_with_early(r, b"");
            assert_eq!(r.to_client, b"220-Welcome\r\n220 FTP ready\r\n");
            assert_eq!(r.to_upstream, b"AUTH TLS\r\n");
        },
    );
}

#[test]
fn the_imap_client_never_sees_the_plain_sessions_starttls_or_logindisabled() {
    let imap = builtin(Profile::Imap, "h");
    let server: &[u8] = b"* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS LOGINDISABLED] Dovecot ready.\r\n* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED\r\na001 OK Begin TLS negotiation now.\r\n";
    // The application's first command arrives early and waits for TLS.
    let client: &[u8] = b"a1 CAPABILITY\r\n";
    every_split(&imap, server, client, |r| {
        ok_with_early(r, client);
        assert_eq!(
            r.to_client,
            b"* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+] Dovecot ready.\r\n"
        );
        assert_eq!(r.to_upstream, b"a001 STARTTLS\r\n");
    });
    // A greeting without capabilities goes through unchanged.
    every_split(&imap, b"* OK ready\r\na001 OK go\r\n", b"", |r| {
        ok_with_early(r, b"");
        assert_eq!(r.to_client, b"* OK ready\r\n");
    });
}

/// An LDAP ExtendedResponse with `code` and a diagnostic message.
fn ldap_response(code: u8, diag: &[u8]) -> Vec<u8> {
    let mut op = vec![0x0a, 0x01, code, 0x04, 0x00, 0x04, diag.len() as u8];
    op.extend_from_slice(diag);
    let mut msg = vec![0x02, 0x01, 0x01, 0x78, op.len() as u8];
    msg.extend(op);
    let mut out = vec![0x30, msg.len() as u8];
    out.extend(msg);
    out
}

#[test]
fn ldap_starttls_success_and_refusal_and_long_form_lengths() {
    let ldap = builtin(Profile::Ldap, "h");
    let ok = ldap_response(0, b"");
    every_split(&ldap, &ok, b"", |r| {
        ok_with_early(r, b"");
        assert_eq!(r.to_upstream, LDAP_STARTTLS);
    });
    let no = ldap_response(2, b"StartTLS not supported");
    let r = run_chunks(&ldap, &[&no], &[], Limits::default());
    assert_eq!(r.reason, Some(Reason::UpgradeRefused));
    assert!(r
        .result
        .unwrap_err()
        .contains("LDAP result code 2: \"StartTLS not supported\""));
    // Long-form length (0x81 0x0e) is the same message.
    let mut long = vec![0x30, 0x81];
    long.extend_from_slice(&ok[1..]);
    every_split(&ldap, &long, b"", |r| ok_with_early(r, b""));
    let r = run_chunks(
        &ldap,
        &[b"HTTP/1.1 400 Bad Request\r\n"],
        &[],
        Limits::default(),
    );
    assert_eq!(r.reason, Some(Reason::UpgradeProtocol));
}

#[test]
fn a_script_with_every_step_kind_runs_in_order() {
    use crate::config::script::{Pattern, ScriptStep};
    let line = |prefix: &[u8], relay| ScriptStep::Line {
        prefix: prefix.to_vec(),
        multiline: false,
        skip: None,
        relay,
    };
    let steps = vec![
        ScriptStep::Client {
            pattern: b"HELLO\r\n".to_vec(),
            answer: b"HI\r\n".to_vec(),
            optional: false,
            repeat: false,
        },
        ScriptStep::Reply(b"wait\r\n".to_vec()),
        line(b"CFG", true),
        ScriptStep::Send(b"UPGRADE tls\r\n".to_vec()),
        ScriptStep::Regex(Pattern(regex::bytes::Regex::new("^2[0-9][0-9] ").unwrap())),
        ScriptStep::Send(vec![1, 2]),
        ScriptStep::Bytes(vec![0xff]),
        line(b"OK", false),
    ];
    let script = Script::from_steps(&steps);
    every_split(
        &script,
        b"CFG server v8\r\n200 upgrading\r\n\xffOK tls now\n",
        b"HELLO\r\nearly bytes",
        |r| {
            ok_with_early(r, b"early bytes");
            assert_eq!(r.to_client, b"HI\r\nwait\r\nCFG server v8\r\n");
            assert_eq!(r.to_upstream, b"UPGRADE tls\r\n\x01\x02");
        },
    );
    // A client that says something else to a required client_expect.
    let r = run_chunks(&script, &[b""], &[b"BYE\r\n"], Limits::default());
    assert_eq!(r.reason, Some(Reason::UpgradeProtocol));
    // A client that leaves.
    let r = run_chunks(&script, &[b""], &[], Limits::default());
    assert_eq!(r.reason, Some(Reason::PeerClosed));
}

#[test]
fn waits_are_bounded_by_the_byte_limits() {
    let script = builtin(Profile::Smtp, "h");
    let limits = Limits {
        max_message: 64,
        max_total: 1024,
    };
    let long_line = vec![b'2'; 100];
    let r = run_chunks(&script, &[&long_line], &[], limits);
    assert_eq!(r.reason, Some(Reason::UpgradeProtocol));
    assert!(r.result.unwrap_err().contains("longer than 64 bytes"));
    // Endless continuation lines, each short: the total limit ends it.
    let many: Vec<u8> = b"220-x\r\n".repeat(500);
    let r = run_chunks(&script, &[&many], &[], limits);
    assert_eq!(r.reason, Some(Reason::UpgradeProtocol));
}

#[test]
fn garbage_never_panics_on_any_profile() {
    let mut seed = 0x1234_5678u32;
    for &profile in Profile::ALL {
        let script = builtin(profile, "h");
        for len in 0..200 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    seed as u8
                })
                .collect();
            let _ = run_chunks(&script, &[&bytes], &[&bytes], Limits::default());
        }
    }
}
